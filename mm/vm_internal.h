/* SPDX-License-Identifier: MIT */
/*
 * What the address-space files share and nobody else sees (mm/vm_*.c; the public calls are
 * in mm/vm.h): the region object, the space lock's wrappers, argument checks, and the
 * helpers one operation borrows from another.
 *
 * The files, each one idea, lowest first (a file calls only those above it in this list):
 *   vm_space.c   spaces (init, accessors, activation), the region tree (lookup, placement
 *                and ASLR), region objects and counts, locked-page counts, table windows,
 *                flags -> MMU
 *   vm_region.c  a region's pages: runs edits and counts, populate, unmapping frames and the
 *                dead list, releasing pages, removing a region
 *   vm_map.c     regions made and removed: allocate, unmap (whole or split), destroy, I/O
 *   vm_commit.c  commit, decommit, protect
 *   vm_fault.c   faults (and fault-around), a page held for another task's copy
 *                (vm_page_get)
 *   vm_access.c  access checks, reading and writing a space from the kernel
 *   vm_query.c   query, usage maps, what a region holds (for dumps)
 *   vm_frames.c  the frames of a range, resident and held, for callers that keep them (MDLs:
 *                mm/mdl_vm.c); it knows no MDL
 *   vm_check.c   the invariant checker
 *
 * Locking: every function named ..._locked expects the space's lock (vm_lock) held and says
 * so first with vm_assert_held (checked in debug builds); every other one takes it
 * itself, or needs none.
 */
#ifndef MM_VM_INTERNAL_H
#define MM_VM_INTERNAL_H

#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/list.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <mm/vm.h>

#define PAGE     PAGE_SIZE
#define PROT_R   VMM_FLAG_READ
#define PROT_RW  (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define PROT_RX  (VMM_FLAG_READ | VMM_FLAG_EXECUTE)
#define PROT_RWX VMM_FLAG_RWX_MASK

struct vm_region {
	struct vm_node node; /* [base, end) is the whole reservation, guard pages included */
	unsigned flags;      /* VMM_FLAG_* at creation: cache mode, guards, grow-down */
	uint8_t kind;        /* enum vm_region_kind */
	uint8_t max_prot;    /* the most KnVmProtect may give (an MDL mapping: the MDL's) */
	char name[23];       /* kernel regions: "kstack idle", "pool", "io lapic" */
	uint64_t resident;   /* pages mapped now */
	uint16_t busy;       /* a locked commit or pin is zeroing frames for it with the lock
				dropped: any other change is rcBusy until it is done */
	uint64_t io_pa;      /* VMR_IO: physical address of the first page */
	uint64_t io_charge;  /* VMR_IO: commit held for the page tables its mapping needs */
	struct vm_runs runs;
};

static inline uint64_t vmr_base(const struct vm_region *r) { return r->node.base; }
static inline uint64_t vmr_end(const struct vm_region *r) { return r->node.end; }
static inline uint64_t vmr_pages(const struct vm_region *r) { return (r->node.end - r->node.base) >> 12; }
static inline struct vm_region *region_of(struct vm_node *n)
{
	return n ? container_of(n, struct vm_region, node) : NULL;
}

/* ---- the space's lock: one place to make it a sleeping lock later ---- */

static inline void vm_lock(struct vm_space *vs)
{
	bool irq = spin_lock_irqsave(&vs->lock);
	vs->lock_irq = irq; /* (only the holder writes it) */
}

static inline void vm_unlock(struct vm_space *vs) { spin_unlock_irqrestore(&vs->lock, vs->lock_irq); }

#define vm_assert_held(vs) spin_assert_held(&(vs)->lock)

/* ---- argument checks ---- */

static inline bool prot_valid(unsigned prot)
{
	return prot == PROT_R || prot == PROT_RW || prot == PROT_RX || prot == PROT_RWX;
}

static inline bool cache_valid(unsigned flags)
{
	unsigned c = flags & VMM_FLAG_CACHE_MASK;
	return (c & (c - 1)) == 0;
}

static inline bool range_args_ok(const struct vm_space *vs, uint64_t addr, uint64_t size)
{
	return is_aligned(addr, PAGE) && is_aligned(size, PAGE) && size != 0 && addr + size > addr && addr >= vs->lo &&
	       addr + size <= vs->hi;
}

/* Whether protection `prot` allows every bit of `access` (VMM_FLAG_READ | WRITE | EXECUTE). */
static inline bool allows(unsigned prot, unsigned access) { return (prot & access) == access; }

/* The window-aligned hull of [a, b) (table windows: vm_space.c). */
static inline uint64_t win_lo(uint64_t a) { return align_down(a, 1ull << VM_TABLE_WINDOW_SHIFT); }
static inline uint64_t win_hi(uint64_t b) { return align_up(b, 1ull << VM_TABLE_WINDOW_SHIFT); }

/*
 * A locked commit (or pin) makes pages resident in three steps, so that the frames are zeroed
 * with no lock held: under the lock everything is checked and charged and the region is
 * marked busy (any other change to it is rcBusy meanwhile; faults go on); then the frames
 * for the pages that are not resident are allocated, preemptibly; then under the lock again
 * they are mapped. busy_end_locked drops the mark.
 */
static inline void busy_end_locked(struct vm_space *vs, struct vm_region *r)
{
	vm_assert_held(vs);
	KASSERT(r->busy);
	r->busy--;
}

/* ---- small helpers of the space and its regions, inline: every operation goes through them ---- */

enum { KEEP = 0xff };

static inline struct vm_region *vm_region_find_locked(struct vm_space *vs, uint64_t addr)
{
	vm_assert_held(vs);
	return region_of(vm_tree_find(&vs->tree, addr));
}

static inline struct vm_region *vm_first_region_locked(struct vm_space *vs)
{
	vm_assert_held(vs);
	return region_of(vm_tree_ceil(&vs->tree, 0));
}

static inline struct vm_region *vm_next_region_locked(struct vm_space *vs, struct vm_region *r)
{
	vm_assert_held(vs);
	return region_of(vm_tree_next(&vs->tree, &r->node));
}

/* The region holding all of [addr, addr + size): rcNotFound / rcInvalidArgument. Lock held. */
static inline Retcode vm_find_range_locked(struct vm_space *vs, uint64_t addr, uint64_t size, struct vm_region **out)
{
	vm_assert_held(vs);
	struct vm_region *r = vm_region_find_locked(vs, addr);

	if (!r)
		return rcNotFound;
	if (size > vmr_end(r) - addr)
		return rcInvalidArgument;
	*out = r;
	return rcOk;
}

/* [addr, addr + size) inside one anonymous region, with no guard page: what commit, decommit
 * and protect act on; its region and first page (vm_commit.c). Lock held. */
Retcode vm_find_anon_range_locked(struct vm_space *vs, uint64_t addr, uint64_t size, struct vm_region **out,
				  uint64_t *first);

/* One more region in the space: its limit and the account's. Lock held. */
static inline Retcode vm_region_count_add_locked(struct vm_space *vs)
{
	vm_assert_held(vs);
	if (vs->user && vs->nregions >= VM_MAX_REGIONS)
		return rcOutOfMemory;
	Retcode rc = account_charge(vs->acct, ACCT_REGIONS, 1);
	if (rc == rcOk)
		vs->nregions++;
	return rc;
}

static inline void vm_region_count_sub_locked(struct vm_space *vs)
{
	vm_assert_held(vs);
	vs->nregions--;
	account_uncharge(vs->acct, ACCT_REGIONS, 1);
}

/* Locked pages (resident until decommitted) in the space: counted, and charged to the
 * account's locked-pages limit; the report's total. Lock held. */
static inline Retcode vm_locked_pages_add_locked(struct vm_space *vs, uint64_t pages)
{
	vm_assert_held(vs);
	if (!pages)
		return rcOk;
	Retcode rc = account_charge(vs->acct, ACCT_LOCKED, pages);
	if (rc == rcOk) {
		vs->locked += pages;
		charge_locked_pages_add((int64_t)pages);
	}
	return rc;
}

static inline void vm_locked_pages_sub_locked(struct vm_space *vs, uint64_t pages)
{
	vm_assert_held(vs);
	if (!pages)
		return;
	vs->locked -= pages;
	charge_locked_pages_add(-(int64_t)pages);
	account_uncharge(vs->acct, ACCT_LOCKED, pages);
}

/* Pages in [first, first + count) of region r in `state` (KEEP: any) and locked (if set). */
static inline uint64_t vm_runs_count_locked(struct vm_space *vs, const struct vm_region *r, uint64_t first,
					    uint64_t count, uint8_t state, bool locked_only)
{
	vm_assert_held(vs);
	const struct vm_runs *runs = &r->runs;
	uint64_t npages = vmr_pages(r), end = first + count, total = 0;

	for (uint32_t i = vm_runs_find(runs, first); i < runs->n && runs->v[i].start < end; i++) {
		if ((state != KEEP && runs->v[i].state != state) || (locked_only && !runs->v[i].locked))
			continue;
		total += MIN(vm_runs_end(runs, i, npages), end) - MAX(runs->v[i].start, first);
	}
	return total;
}

/* ---- vm_space.c ---- */

/* After the last region of a space went: its root, their charge, its account. */
void vm_space_fini(struct vm_space *vs);
/* VMM_FLAG_* protection and cache -> MMU_* for a space. */
unsigned vm_mmu_flags(const struct vm_space *vs, unsigned prot, unsigned region_flags);
/* A free range of `total` bytes for a new region: first fit from mmap_base, or from a random
 * page with ASLR; false if there is none. */
bool vm_find_place_locked(struct vm_space *vs, uint64_t total, uint64_t *base);
/* A region object (zeroed), its bookkeeping charged to the space's account; NULL: no memory.
 * vm_region_free takes it back with its run storage (NULL: nothing). No lock needed. */
struct vm_region *vm_region_alloc(struct vm_space *vs);
void vm_region_free(struct vm_space *vs, struct vm_region *r);
/* Table windows: the 2 MiB windows intersecting [lo, hi) that hold a committed page; those
 * committing [a, b) would add; and giving back the charge of `gone` windows. */
uint64_t vm_committed_windows_locked(struct vm_space *vs, uint64_t lo, uint64_t hi);
uint64_t vm_new_windows_locked(struct vm_space *vs, uint64_t a, uint64_t b);
void vm_release_windows_locked(struct vm_space *vs, uint64_t gone);

/* ---- vm_region.c ---- */

/* `n` zeroed frames of the cache mode's type onto `frames`, a chunk at a time with a
 * preemption point between chunks; rcOutOfMemory with the list as it was. vm_frames_put gives
 * them back the same way. No lock held. */
Retcode vm_frames_get(struct list_head *frames, uint64_t n, unsigned cache);
void vm_frames_put(struct list_head *frames);
/* Unmaps [va, va + npages) of region r: frames lose the mapping's reference, and those that
 * lose their last wait on the space's dead list until the operation drops the lock and calls
 * vm_free_dead. */
void vm_unmap_pages_locked(struct vm_space *vs, struct vm_region *r, uint64_t va, uint64_t npages);
void vm_free_dead(struct vm_space *vs);
/* Non-resident pages in [va, va + npages), and mapped ones in [va, va + size). */
uint64_t vm_holes_locked(struct vm_space *vs, uint64_t va, uint64_t npages);
uint64_t vm_count_mapped_locked(struct vm_space *vs, uint64_t va, uint64_t size);
/* Gives every non-resident page of pages [first, first + count) of r a frame from `frames`
 * (allocating what is missing), all or nothing. */
Retcode vm_populate_locked(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count,
			   struct list_head *frames);
/* Applies (state, prot, locked) to r's runs in [first, first + count) (KEEP leaves a field;
 * only_state, unless KEEP, restricts it to runs in that state): room for 2 runs reserved. */
void vm_runs_apply_locked(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count, uint8_t only_state,
			  uint8_t state, uint8_t prot, uint8_t locked);
/* Unmaps and uncharges pages [first, first + count) of r (its runs stay as they are). */
void vm_release_pages_locked(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count);
/* Releases all of r's pages and takes it out of the tree (the caller frees the object after
 * the lock, and gives back the windows it held). */
void vm_remove_region_locked(struct vm_space *vs, struct vm_region *r);

/* ---- vm_query.c ---- */

/* A region's VMM_FLAG_* as a dump reports them: its own flags (cache, guards, grow-down),
 * RESERVE, the protections of its pages, COMMIT and LOCKED if any page is so. */
unsigned vm_region_summary_locked(struct vm_space *vs, const struct vm_region *r);

#endif
