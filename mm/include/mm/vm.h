/* SPDX-License-Identifier: MIT */
/*
 * Address spaces (SPEC §4): regions in an augmented tree (mm/vm_tree.h), page states as
 * runs (mm/vm_runs.h), resident pages only in the page tables (through arch/pt.h), charged
 * through mm/charge.h. The ring-3 memory API (KnVm*) is a thin layer over these calls; the
 * kernel uses the same calls on its own dynamic area (kernel_space).
 *
 * Semantics (SPEC §4.2-4.3), for every call:
 *   - addresses and sizes are page-aligned, sizes non-zero, ranges do not wrap and lie inside
 *     the space; otherwise rcInvalidArgument;
 *   - commit/decommit/protect/unmap take a range inside one region: rcNotFound if addr is
 *     in free space, rcInvalidArgument if the range leaves the region; commit/decommit/
 *     protect also refuse ranges that touch a guard page (rcInvalidArgument);
 *   - a call that fails changes nothing (partial work is rolled back).
 * Locking: each call takes the space's lock; none may be called with it held. None sleeps.
 */
#ifndef MM_VM_H
#define MM_VM_H

#include <arch/pt.h>
#include <kn/flags.h>
#include <kn/retcode.h>
#include <knmm/list.h>
#include <knmm/spinlock.h>
#include <mm/charge.h>
#include <mm/vm_runs.h>
#include <mm/vm_tree.h>

enum vm_region_kind {
	VMR_ANON,   /* pages of its own, allocated on commit or touch */
	VMR_IO,     /* a physical range that is not RAM (mm_map_io_space) */
	VMR_FRAMES, /* frames owned by someone else, mapped in (kernel mappings of MDLs) */
};

struct vm_region; /* private to mm (mm/vm_internal.h) */

/* Fields are mm's: outside mm, only through the calls below. */
struct vm_space {
	spinlock_t lock; /* vm_lock() (mm/vm_internal.h) */
	bool lock_irq;   /* the interrupt state vm_lock found (the holder's) */
	struct pt_root pt;
	struct vm_tree tree;
	uint64_t lo, hi;    /* where regions may be placed */
	uint64_t mmap_base; /* first-fit start for addr == 0 without ASLR */
	bool user;          /* mappings are ring-3 accessible */
	bool aslr;
	uint64_t rng;         /* xorshift64 state for ASLR */
	unsigned faultaround; /* extra pages mapped around a lazy fault (mem.faultaround) */
	const char *name;
	struct account *acct;  /* who pays for it (mm/charge.h; NULL: the kernel); a reference */
	bool own_root;         /* the root was made (and charged) for this space */
	struct list_head dead; /* frames unmapped under the lock, freed after it (lock held) */
	/* statistics (pages) */
	uint64_t committed, resident, locked;
	uint64_t commit_extra; /* charged on top of `committed` for non-write-back pages: a page
				  of direct-map table each (mm/frame.h) */
	uint64_t nregions;
	uint64_t table_windows; /* 2 MiB windows holding committed pages: charged for tables */
};

/* The most regions a task's space may hold (like Linux's max_map_count): each costs pool
 * memory, so one task cannot use up everybody's commit with bookkeeping. */
#define VM_MAX_REGIONS 65536

/* Page tables a window of committed pages can need (PT, PD, PDPT), charged with the commit
 * so that a fault in a committed page can always be mapped. */
#define VM_TABLE_CHARGE_PER_WINDOW 3
#define VM_TABLE_WINDOW_SHIFT      21

/* KnVmQuery's answer. */
struct vm_info {
	uint64_t region_base, region_size; /* for a free address: the free gap */
	int state;                         /* VMM_STATE_* */
	bool resident;
	unsigned flags;    /* VMM_FLAG_*: the page's protection, cache, region flags */
	uint64_t run_size; /* bytes from addr with the same state and residency */
};

enum vm_access { VM_ACCESS_READ, VM_ACCESS_WRITE, VM_ACCESS_EXEC };

enum vm_fault_result {
	VM_FAULT_RESOLVED,       /* a committed page got its frame (or was there already) */
	VM_FAULT_GREW,           /* a grow-down region grew and the page is mapped */
	VM_FAULT_GUARD,          /* guard violation */
	VM_FAULT_ACCESS,         /* access violation: free, reserved, or not allowed */
	VM_FAULT_STACK_OVERFLOW, /* a grow-down region could not be charged for growth */
};

/* ---- address spaces ---- */

/* Boot: registers the region objects' lookaside list. */
void vm_init(void);

/* What a space is made with. */
struct vm_space_params {
	const char *name;
	bool user;                  /* ring-3 mappings */
	uint64_t lo, hi;            /* where regions may be placed */
	const struct pt_root *root; /* the tables to use (the kernel's); NULL: a root of its own */
	struct account *acct;       /* who pays (mm/charge.h; NULL: only the global charge) */
	bool aslr;                  /* regions placed anywhere go to a random free spot */
	uint64_t seed;              /* mixed into the ASLR generator */
	uint64_t mmap_base;         /* without ASLR, first fit from here (0: lo) */
	unsigned faultaround;       /* extra pages mapped around a lazy fault (mem.faultaround) */
};

/*
 * A space placing regions in [p->lo, p->hi). With no root given, a new one (for a user space
 * its kernel half is the kernel's). Everything the space makes the kernel spend — the root,
 * committed pages and their tables, region and run bookkeeping, regions and locked pages —
 * is charged to p->acct, of which the space keeps a reference until it is destroyed.
 * rcOutOfMemory if the root cannot be charged or has no frame.
 */
Retcode vm_space_init(struct vm_space *vs, const struct vm_space_params *p);

/* A space's counters (pages), read together. */
struct vm_space_stats {
	uint64_t regions;
	uint64_t committed;      /* committed pages */
	uint64_t resident;       /* pages mapped now */
	uint64_t locked;         /* pages committed LOCKED */
	uint64_t table_windows;  /* 2 MiB windows holding committed pages (charged for tables) */
	uint64_t private_commit; /* what its pages cost the charge: committed, the second page of
				    each non-write-back one, VM_TABLE_CHARGE_PER_WINDOW per window */
};
void vm_space_stats(struct vm_space *vs, struct vm_space_stats *out);

/* The page-table walk of va in the space's tables (arch's decoded levels), taken under its
 * lock so that no table is freed while it runs; false, with *root_pa 0, for a space whose
 * tables are gone (torn down). */
bool vm_space_trace(struct vm_space *vs, uint64_t va, struct pt_trace *out, uint64_t *root_pa);

/* Makes the space's tables the CPU's (nothing if they are already). */
void vm_space_activate(const struct vm_space *vs);

/* Spaces with a page-table root of their own, each charged one page (the vm report). */
uint64_t vm_root_count(void);
/* Unmaps every region and frees the page tables (user spaces). */
void vm_space_destroy(struct vm_space *vs);

/*
 * Reserves (and with VMM_FLAG_COMMIT commits, with COMMIT|LOCKED populates) a region of
 * `size` usable bytes at usable base `addr` (0: the space picks it, randomised with ASLR).
 * *out gets the usable base. Codes: rcInvalidArgument (flags or range), rcAlreadyExists
 * (fixed range taken), rcOutOfMemory (no room, commit limit, or frames).
 */
Retcode vm_allocate(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags, uint64_t *out);
/* vm_allocate for kernel regions with a kind and a name (kernel stacks, pool, io). */
Retcode vm_allocate_named(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags, enum vm_region_kind kind,
			  const char *name, uint64_t *out);

/* Commits reserved pages of the range (flags: 0 or VMM_FLAG_LOCKED: also make every page
 * of the range resident). Already committed pages are not charged again. */
Retcode vm_commit(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags);
/* Returns the range to reserved and its frames to the allocator. rcBusy (nothing changed)
 * if a page is pinned by an MDL. */
Retcode vm_decommit(struct vm_space *vs, uint64_t addr, uint64_t size);
/* Sets the protection (one of R, RW, RX, RWX) of reserved and committed pages. */
Retcode vm_protect(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned prot);
/* Unmaps the range: the whole region (its usable range or all of it) frees it, a part of
 * it splits it. Frames go back unless someone else (an MDL) holds them. */
Retcode vm_unmap(struct vm_space *vs, uint64_t addr, uint64_t size);
/* Describes the page at addr (rounded down). rcInvalidArgument outside the space. */
Retcode vm_query(struct vm_space *vs, uint64_t addr, struct vm_info *out);

/*
 * Whether an access of [addr, addr + size) would succeed, without making it: every page is
 * committed with a protection that allows `access` (VMM_FLAG_READ or VMM_FLAG_WRITE), or
 * is a reserved page of a grow-down region that the access would grow into. Touches
 * nothing: system calls check their outputs with it before doing anything.
 */
bool vm_check_access(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access);

/*
 * Copies [addr, addr + size) of the space into buf as a read would see it, without changing
 * the space: resident pages are read through their frames, committed pages that are not
 * resident (and reserved pages a grow-down region would grow into) read as zeros and stay
 * as they are. Every page must be readable (committed with READ, anonymous memory): rcFault
 * otherwise (checked first; a page made unreadable meanwhile by another thread also stops
 * the copy, with part of buf written). May preempt between megabytes. Not with the lock.
 */
Retcode vm_read(struct vm_space *vs, uint64_t addr, void *buf, uint64_t size);

/*
 * Copies buf into [addr, addr + size) of the space through its frames, as the kernel writes
 * into a space it set up (a new task's arguments): every page must be committed, writable
 * and resident, or rcFault (nothing is made resident, nothing grows). Not with the lock.
 */
Retcode vm_write(struct vm_space *vs, uint64_t addr, const void *buf, uint64_t size);

/*
 * Another task's access to page `va` of the space (KnTaskReadMemory / KnTaskWriteMemory,
 * docs/vm.md "Access from another task"): the page's frame, resident, with a reference of
 * the caller's (vm_page_put gives it back) and its kernel address in *kva, so that the caller
 * copies through the direct map with no lock held while a concurrent decommit or unmap of
 * the page cannot free the frame (the reference is not a pin: such a decommit succeeds, and
 * the frame goes when the caller puts it). A committed page that is not resident is faulted
 * in as the space's own read fault would (a zeroed frame, fault-around; the commit charge
 * already covers it). rcFault, changing nothing, when the page cannot be accessed:
 *   - free, reserved or guard (a grow-down region does not grow, a guard page is not
 *     consumed), or not anonymous memory (device memory), or not write-back;
 *   - VM_ACCESS_READ: its protection lacks READ;
 *   - VM_ACCESS_WRITE: its protection need not allow writing (a debugger's breakpoint in
 *     code), but a page its region can never make writable (an MDL mapped without WRITE) is
 *     written only if its frame is the space's alone; a frame someone else still holds (a
 *     shared MDL) is refused rather than written.
 * Not with the lock.
 */
struct page;
Retcode vm_page_get(struct vm_space *vs, uint64_t va, enum vm_access access, struct page **frame, void **kva);
void vm_page_put(struct page *frame);

/* Whether the space's page tables, as they are, let `access` at addr through (from ring 3 in
 * a user space): a check that a resolved fault will not fault again. */
bool vm_tables_allow(struct vm_space *vs, uint64_t addr, enum vm_access access);

/* Pages a long operation handles between two preemption points. */
#define VM_CHUNK_PAGES 256

/* Long operations call this between chunks of work, holding no lock: the kernel's
 * scheduler registers a hook that gives the CPU away if a reschedule is due. */
extern void (*vm_preempt_hook)(void);
static inline void vm_preempt_point(void)
{
	if (vm_preempt_hook)
		vm_preempt_hook();
}

/* What a fault at addr is, and resolves it when it can (maps a frame, grows a stack). */
enum vm_fault_result vm_fault(struct vm_space *vs, uint64_t addr, enum vm_access access);

/* Maps physical range `pa` (not RAM) into a VMR_IO region created by vm_allocate_named
 * without COMMIT; mmu cache from the region's flags. */
Retcode vm_map_io(struct vm_space *vs, uint64_t va, uint64_t pa, uint64_t npages);

/* The cache mode of VMM_FLAG_* flags as the kernel keeps it: 0 for write-back, whether the
 * flags said VMM_FLAG_WRITE_BACK or nothing. */
static inline unsigned vm_cache_mode(unsigned flags)
{
	unsigned c = flags & VMM_FLAG_CACHE_MASK;
	return c == VMM_FLAG_WRITE_BACK ? 0 : c;
}
/*
 * The usage map of the region whose usable range starts at `addr` (SPEC §5): from page
 * `start` on, up to `max` alternating counts of resident and non-resident pages into
 * counters[], how many in *n, and whether the first count is of resident pages.
 *   rcNotFound         addr is in free space
 *   rcInvalidArgument  addr is inside a region but not its usable base, or start is past
 *                      the region's end (start == the page count gives *n == 0: done)
 */
Retcode vm_usage_map(struct vm_space *vs, uint64_t addr, uint64_t start, uint64_t *counters, uint64_t max,
		     bool *first_used, uint64_t *n);

/* Region lookup without locking, for panics (may race with changes). */
const struct vm_region *vm_region_at_unlocked(const struct vm_space *vs, uint64_t addr);

/* Checks the tree, every region's runs, and the space's counters (tests). */
bool vm_space_check(struct vm_space *vs, char *why, size_t size);

/* The kernel's own dynamic area (pools, kernel stacks, system mappings). */
extern struct vm_space kernel_space;

#endif
