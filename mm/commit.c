// SPDX-License-Identifier: MIT
/* The global commit charge and the accounts behind quotas (mm/commit.h, docs/quotas.md). */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/pool.h>
#include <knmm/string.h>
#include <mm/commit.h>

#define ACCT_TAG POOL_TAG('A', 'c', 'c', 't')

/* The global charge and every account's counters: one leaf lock. */
static spinlock_t commit_lock = SPINLOCK_INIT("commit", LOCK_RANK_COMMIT);
static struct vm_commit_stats commit;

/* ------------------------------------------------------------------ the global charge */

void vm_commit_init(uint64_t limit_pages)
{
	bool irq = spin_lock_irqsave(&commit_lock);
	commit.limit = limit_pages;
	spin_unlock_irqrestore(&commit_lock, irq);
}

static bool global_fits_locked(uint64_t pages)
{
	spin_assert_held(&commit_lock);
	return pages <= commit.limit - commit.charge;
}

static void global_take_locked(uint64_t pages)
{
	spin_assert_held(&commit_lock);
	commit.charge += pages;
	commit.peak = MAX(commit.peak, commit.charge);
}

static void global_give_locked(uint64_t pages)
{
	spin_assert_held(&commit_lock);
	KASSERT_MSG(pages <= commit.charge, "uncharging %llu pages, only %llu charged", (unsigned long long)pages,
		    (unsigned long long)commit.charge);
	commit.charge -= pages;
}

Retcode vm_charge(uint64_t pages)
{
	bool irq = spin_lock_irqsave(&commit_lock);
	bool ok = global_fits_locked(pages);
	if (ok)
		global_take_locked(pages);
	spin_unlock_irqrestore(&commit_lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

void vm_uncharge(uint64_t pages)
{
	bool irq = spin_lock_irqsave(&commit_lock);
	global_give_locked(pages);
	spin_unlock_irqrestore(&commit_lock, irq);
}

void vm_locked_add(int64_t pages)
{
	bool irq = spin_lock_irqsave(&commit_lock);
	commit.locked += (uint64_t)pages;
	spin_unlock_irqrestore(&commit_lock, irq);
}

void vm_commit_get(struct vm_commit_stats *out)
{
	bool irq = spin_lock_irqsave(&commit_lock);
	*out = commit;
	spin_unlock_irqrestore(&commit_lock, irq);
}

uint64_t vm_commit_charge(void) { return READ_ONCE(commit.charge); }

/* ------------------------------------------------------------------ accounts */

/* Whether n more of res fits under a's limit and every ancestor's. */
static bool chain_fits_locked(const struct account *a, enum acct_res res, uint64_t n)
{
	spin_assert_held(&commit_lock);
	for (; a; a = a->parent)
		if (n > a->limit[res] || a->usage[res] > a->limit[res] - n)
			return false;
	return true;
}

static void chain_add_locked(struct account *a, enum acct_res res, uint64_t n)
{
	spin_assert_held(&commit_lock);
	for (; a; a = a->parent)
		a->usage[res] += n;
}

static void chain_sub_locked(struct account *a, enum acct_res res, uint64_t n)
{
	spin_assert_held(&commit_lock);
	for (; a; a = a->parent) {
		KASSERT_MSG(a->usage[res] >= n, "account %llu: uncharging %llu of resource %d, only %llu charged",
			    (unsigned long long)a->id, (unsigned long long)n, res, (unsigned long long)a->usage[res]);
		a->usage[res] -= n;
	}
}

Retcode account_charge(struct account *a, enum acct_res res, uint64_t n)
{
	if (!a || !n)
		return rcOk;
	bool irq = spin_lock_irqsave(&commit_lock);
	bool ok = chain_fits_locked(a, res, n);
	if (ok)
		chain_add_locked(a, res, n);
	spin_unlock_irqrestore(&commit_lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

void account_uncharge(struct account *a, enum acct_res res, uint64_t n)
{
	if (!a || !n)
		return;
	bool irq = spin_lock_irqsave(&commit_lock);
	chain_sub_locked(a, res, n);
	spin_unlock_irqrestore(&commit_lock, irq);
}

Retcode vm_charge_acct(struct account *a, uint64_t pages)
{
	if (!pages)
		return rcOk;
	bool irq = spin_lock_irqsave(&commit_lock);
	bool ok = global_fits_locked(pages) && (!a || chain_fits_locked(a, ACCT_COMMIT, pages));
	if (ok) {
		global_take_locked(pages);
		chain_add_locked(a, ACCT_COMMIT, pages);
	}
	spin_unlock_irqrestore(&commit_lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

void vm_uncharge_acct(struct account *a, uint64_t pages)
{
	if (!pages)
		return;
	bool irq = spin_lock_irqsave(&commit_lock);
	global_give_locked(pages);
	chain_sub_locked(a, ACCT_COMMIT, pages);
	spin_unlock_irqrestore(&commit_lock, irq);
}

Retcode account_charge_kmem(struct account *a, uint64_t bytes)
{
	if (!a || !bytes)
		return rcOk;
	bool irq = spin_lock_irqsave(&commit_lock);
	uint64_t pages = pages_of(a->kmem + bytes) - pages_of(a->kmem);
	bool ok = chain_fits_locked(a, ACCT_COMMIT, pages);
	if (ok) {
		a->kmem += bytes;
		chain_add_locked(a, ACCT_COMMIT, pages);
	}
	spin_unlock_irqrestore(&commit_lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

void account_uncharge_kmem(struct account *a, uint64_t bytes)
{
	if (!a || !bytes)
		return;
	bool irq = spin_lock_irqsave(&commit_lock);
	KASSERT_MSG(a->kmem >= bytes, "account %llu: uncharging %llu bytes of %llu", (unsigned long long)a->id,
		    (unsigned long long)bytes, (unsigned long long)a->kmem);
	uint64_t pages = pages_of(a->kmem) - pages_of(a->kmem - bytes);
	a->kmem -= bytes;
	chain_sub_locked(a, ACCT_COMMIT, pages);
	spin_unlock_irqrestore(&commit_lock, irq);
}

struct account *account_create(struct account *parent, uint64_t id)
{
	uint64_t cost = pool_block_cost(sizeof(struct account));
	/* Every charge walks the chain to the top: its length is bounded. */
	if (parent && parent->depth + 1 >= ACCT_MAX_DEPTH)
		return NULL;
	struct account *a = pool_alloc(sizeof(*a), ACCT_TAG);
	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	a->refs = 1;
	a->id = id;
	a->depth = parent ? parent->depth + 1 : 0;
	for (unsigned r = 0; r < ACCT_NR; r++)
		a->limit[r] = ACCT_UNLIMITED;
	a->parent = parent;
	/* The account's own object is its first bookkeeping charge (it reaches the parent's
	 * usage through the chain). */
	if (account_charge_kmem(a, cost) != rcOk) {
		pool_free(a);
		return NULL;
	}
	if (parent)
		account_get(parent);
	return a;
}

void account_get(struct account *a)
{
	uint32_t was = __atomic_fetch_add(&a->refs, 1, __ATOMIC_ACQ_REL);
	KASSERT_MSG(was != 0, "reference to a released account");
}

void account_put(struct account *a)
{
	while (a) {
		uint32_t left = __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL);
		KASSERT_MSG(left != UINT32_MAX, "account %llu: reference count underflow", (unsigned long long)a->id);
		if (left)
			return;
		account_uncharge_kmem(a, pool_block_cost(sizeof(struct account)));
		for (unsigned r = 0; r < ACCT_NR; r++)
			KASSERT_MSG(a->usage[r] == 0 && a->kmem == 0,
				    "account %llu released with %llu of resource %u (%llu bookkeeping bytes) charged",
				    (unsigned long long)a->id, (unsigned long long)a->usage[r], r,
				    (unsigned long long)a->kmem);
		struct account *parent = a->parent;
		pool_free(a);
		a = parent; /* its reference on the parent goes too */
	}
}

void account_set_limits(struct account *a, const uint64_t limit[ACCT_NR])
{
	bool irq = spin_lock_irqsave(&commit_lock);
	memcpy(a->limit, limit, sizeof(a->limit));
	spin_unlock_irqrestore(&commit_lock, irq);
}

void account_read(const struct account *a, uint64_t limit[ACCT_NR], uint64_t usage[ACCT_NR])
{
	bool irq = spin_lock_irqsave(&commit_lock);
	memcpy(limit, a->limit, sizeof(a->limit));
	memcpy(usage, a->usage, sizeof(a->usage));
	spin_unlock_irqrestore(&commit_lock, irq);
}

/* ------------------------------------------------------------------ charged pool blocks */

void *kmem_alloc(struct account *a, size_t size, uint32_t tag)
{
	if (account_charge_kmem(a, pool_block_cost(size)) != rcOk)
		return NULL;
	void *p = pool_alloc(size, tag);
	if (!p)
		account_uncharge_kmem(a, pool_block_cost(size));
	return p;
}

void kmem_free(struct account *a, void *p)
{
	if (!p)
		return;
	uint64_t cost = pool_block_cost(pool_block_size(p));
	pool_free(p);
	account_uncharge_kmem(a, cost);
}

void *lookaside_alloc_charged(struct lookaside *l, struct account *a)
{
	if (account_charge_kmem(a, pool_block_cost(l->size)) != rcOk)
		return NULL;
	void *p = lookaside_alloc(l);
	if (!p)
		account_uncharge_kmem(a, pool_block_cost(l->size));
	return p;
}

void lookaside_free_charged(struct lookaside *l, struct account *a, void *p)
{
	if (!p)
		return;
	lookaside_free(l, p);
	account_uncharge_kmem(a, pool_block_cost(l->size));
}
