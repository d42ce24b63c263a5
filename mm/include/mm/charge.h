/* SPDX-License-Identifier: MIT */
/*
 * What the kernel has promised (SPEC §4.1, §14, docs/quotas.md): the charge and the accounts
 * it is made to. "Commit" is the operation on pages (vm_commit, VMM_FLAG_COMMIT); "charge" is
 * what promising a page costs (NT's commit charge): charge_*.
 *
 * The charge: every page of memory the kernel may have to produce later (a committed
 * page, the page tables it needs, an MDL's frames, pool pages, kernel stacks) is charged
 * when it is promised, against one global limit (usable RAM at boot minus a kernel
 * reserve). What is charged always exists: a fault in a committed page never fails.
 *
 * Accounts: who made the kernel promise it. Each task has one; its parent is the account of
 * the task that created it, so accounts form a tree and a task's usage includes its
 * descendants' (like job objects or cgroups). A charge to an account must fit under the
 * limit of that account and of every ancestor, or it is refused and nothing changes. The
 * resources:
 *   ACCT_CHARGE   pages: what the task's commits, page tables, MDLs and kernel stacks cost,
 *                 plus its kernel bookkeeping (bytes of pool blocks, rounded up to pages per
 *                 account)
 *   ACCT_LOCKED   pages committed LOCKED, and pages pinned by its probe-and-lock MDLs
 *   ACCT_HANDLES  open handles of its table
 *   ACCT_REGIONS  regions of its space
 *   ACCT_TASKS    tasks it created that are not yet released (not itself)
 * An account lives while its task, any object charged to it, or a child account refers to it
 * (a reference count), so charges stay with the task that caused them even when an object
 * (an MDL) outlives it.
 *
 * A NULL account is the kernel's own: charges to it check and change nothing but the global
 * charge (where one is taken).
 *
 * mm/charge.c keeps the counters (it calls nothing above it); mm/account.c the account
 * objects and the pool blocks charged to them (it allocates from the pool, which itself
 * takes charge: so the charge sits below the pool, and the pool below the accounts).
 *
 * Locking: one lock ("charge", a leaf: nothing is taken under it) guards the global charge
 * and every account's counters and limits. The functions take it themselves and never
 * sleep. Those that allocate or free pool blocks (account_create, account_put, kmem_*,
 * lookaside_*_charged) take the pool's lock too, so they follow its rules
 * (docs/locking.md).
 */
#ifndef MM_CHARGE_H
#define MM_CHARGE_H

#include <kn/retcode.h>
#include <knmm/compiler.h>

/* ---- the global charge ---- */

struct charge_stats {
	uint64_t total, limit, peak; /* pages */
	uint64_t locked;             /* resident pages of locked runs, all spaces */
};

/* Sets the limit (pages): usable RAM at boot minus the kernel reserve. */
void charge_init(uint64_t limit_pages);
/* The global charge now (pages). */
uint64_t charge_total(void);
void charge_get(struct charge_stats *out);
/* The locked-pages statistic of the report (all spaces). */
void charge_locked_pages_add(int64_t pages);

/* ---- accounts ---- */

enum acct_res { ACCT_CHARGE, ACCT_LOCKED, ACCT_HANDLES, ACCT_REGIONS, ACCT_TASKS, ACCT_NR };
#define ACCT_UNLIMITED UINT64_MAX
/* Accounts below a top-level one at most: a charge walks every ancestor (with the charge
 * lock held), so a chain of tasks each creating the next cannot make it arbitrarily long. */
#define ACCT_MAX_DEPTH 64

struct account {
	struct account *parent; /* holds a reference */
	uint32_t refs;
	uint64_t id;             /* the owner's (a task id), for reports */
	unsigned depth;          /* ancestors above it (0: a top-level account) */
	uint64_t usage[ACCT_NR]; /* this account and its descendants */
	uint64_t limit[ACCT_NR];
	uint64_t kmem; /* bytes of bookkeeping charged here (not the children's); its
			  pages, rounded up, are part of usage[ACCT_CHARGE] */
};

/* The account an account's usage also counts in (NULL: a top-level account). */
static inline struct account *account_parent(const struct account *a) { return a->parent; }

/*
 * A new account under `parent` (NULL: a top-level account) with no limits, one reference
 * held by the caller. The account's own object is charged to it as bookkeeping. NULL if the
 * pool has no memory, the parent's ACCT_CHARGE limit does not allow it, or the parent is
 * ACCT_MAX_DEPTH - 1 levels deep already.
 */
struct account *account_create(struct account *parent, uint64_t id);
void account_get(struct account *a);
/* Drops a reference; the last one frees the account, which must then hold no charge (a
 * kernel bug otherwise: panic), and drops its reference on the parent. */
void account_put(struct account *a);

/* Charges n of `res` to a and its ancestors, if every limit allows: rcOutOfMemory and
 * nothing changed otherwise. a NULL: rcOk. Not for ACCT_CHARGE that the global limit must
 * cover too: charge_take. */
Retcode account_charge(struct account *a, enum acct_res res, uint64_t n);
void account_uncharge(struct account *a, enum acct_res res, uint64_t n);
/* Pages promised: charged against the global limit and a's chain (ACCT_CHARGE) together, all
 * or nothing (a NULL: the global limit only). rcOutOfMemory, nothing taken, if either would
 * pass its limit. charge_release gives them back. */
Retcode charge_take(struct account *a, uint64_t pages);
void charge_release(struct account *a, uint64_t pages);
/* Bookkeeping bytes (the real cost of pool blocks): the account's ACCT_CHARGE usage follows
 * its bytes rounded up to pages. */
Retcode account_charge_kmem(struct account *a, uint64_t bytes);
void account_uncharge_kmem(struct account *a, uint64_t bytes);

/* Limits: set (all of them at once) and read, with the usage. */
void account_set_limits(struct account *a, const uint64_t limit[ACCT_NR]);
void account_read(const struct account *a, uint64_t limit[ACCT_NR], uint64_t usage[ACCT_NR]);

/* Pool blocks charged to an account as bookkeeping (freed with the same account). */
void *kmem_alloc(struct account *a, size_t size, uint32_t tag);
void kmem_free(struct account *a, void *p);
struct lookaside;
void *lookaside_alloc_charged(struct lookaside *l, struct account *a);
void lookaside_free_charged(struct lookaside *l, struct account *a, void *p);

#endif
