// SPDX-License-Identifier: MIT
/*
 * Address spaces (mm/vm.h, docs/vm.md), the core every other vm file stands on: a space's
 * life and its region tree (lookup, placement with ASLR), region objects and the counts they
 * are charged by, locked-page counts, the table windows committed pages are charged for, and
 * the translation of VMM_FLAG_* into MMU flags. Calls no other vm_*.c file, only the tree
 * and the runs below it (mm/vm_internal.h).
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/pool.h>
#include "vm_internal.h"

#define REGION_TAG POOL_TAG('V', 'm', 'R', 'g')

static struct lookaside region_cache =
	LOOKASIDE_INIT(region_cache, "vm regions", sizeof(struct vm_region), REGION_TAG, 64);

/* ------------------------------------------------------------------ flags */

unsigned vm_mmu_flags(const struct vm_space *vs, unsigned prot, unsigned region_flags)
{
	unsigned f = MMU_READ;

	if (prot & VMM_FLAG_WRITE)
		f |= MMU_WRITE;
	if (prot & VMM_FLAG_EXECUTE)
		f |= MMU_EXEC;
	f |= vs->user ? MMU_USER : MMU_GLOBAL;
	switch (region_flags & VMM_FLAG_CACHE_MASK) {
	case VMM_FLAG_WRITE_THROUGH:
		f |= MMU_CACHE_WT;
		break;
	case VMM_FLAG_WRITE_COMBINE:
		f |= MMU_CACHE_WC;
		break;
	case VMM_FLAG_CACHE_DISABLE:
		f |= MMU_CACHE_UC;
		break;
	default:
		f |= MMU_CACHE_WB;
		break;
	}
	return f;
}

/* ------------------------------------------------------------------ spaces */

void (*vm_preempt_hook)(void);

static uint64_t roots; /* spaces with a root of their own (each charged a page) */

uint64_t vm_root_count(void) { return __atomic_load_n(&roots, __ATOMIC_RELAXED); }

void vm_init(void) { lookaside_register(&region_cache); }

Retcode vm_space_init(struct vm_space *vs, const struct vm_space_params *p)
{
	memset(vs, 0, sizeof(*vs));
	vs->lock = (spinlock_t)SPINLOCK_INIT("vm space", LOCK_RANK_VM_SPACE);
	vs->name = p->name;
	vs->user = p->user;
	vs->lo = p->lo;
	vs->hi = p->hi;
	vs->mmap_base = p->mmap_base ? p->mmap_base : p->lo;
	vs->aslr = p->aslr;
	vs->rng = 0x9e3779b97f4a7c15ull ^ p->seed;
	vs->faultaround = p->faultaround;
	list_init(&vs->dead);
	vm_tree_init(&vs->tree);
	if (p->root) {
		vs->pt = *p->root;
		return rcOk;
	}
	/* A root of its own: a page, charged like any other page table. */
	if (charge_take(p->acct, 1) != rcOk)
		return rcOutOfMemory;
	if (pt_root_create(&vs->pt, p->user) != rcOk) {
		charge_release(p->acct, 1);
		return rcOutOfMemory;
	}
	vs->own_root = true;
	__atomic_add_fetch(&roots, 1, __ATOMIC_RELAXED);
	vs->acct = p->acct;
	if (p->acct)
		account_get(p->acct);
	return rcOk;
}

void vm_space_stats(struct vm_space *vs, struct vm_space_stats *out)
{
	vm_lock(vs);
	*out = (struct vm_space_stats){
		.regions = vs->nregions,
		.committed = vs->committed,
		.resident = vs->resident,
		.locked = vs->locked,
		.table_windows = vs->table_windows,
		.private_commit = vs->committed + vs->commit_extra + vs->table_windows * VM_TABLE_CHARGE_PER_WINDOW,
	};
	vm_unlock(vs);
}

bool vm_space_trace(struct vm_space *vs, uint64_t va, struct pt_trace *out, uint64_t *root_pa)
{
	vm_lock(vs);
	uint64_t root = vs->pt.pml4_pa;
	if (root)
		pt_trace(&vs->pt, va, out);
	vm_unlock(vs);
	*root_pa = root;
	return root != 0;
}

void vm_space_activate(const struct vm_space *vs)
{
	if (!pt_is_active(&vs->pt))
		pt_activate(&vs->pt);
}

/* After its last region went (vm_space_destroy): the root, its charge, the account. */
void vm_space_fini(struct vm_space *vs)
{
	KASSERT(vs->committed == 0 && vs->commit_extra == 0 && vs->resident == 0 && vs->locked == 0 &&
		vs->table_windows == 0);
	if (vs->own_root) {
		pt_root_destroy(&vs->pt);
		charge_release(vs->acct, 1);
		vs->own_root = false;
		__atomic_sub_fetch(&roots, 1, __ATOMIC_RELAXED);
	}
	if (vs->acct)
		account_put(vs->acct);
	vs->acct = NULL;
}

/* ------------------------------------------------------------------ the region tree */

const struct vm_region *vm_region_at_unlocked(const struct vm_space *vs, uint64_t addr)
{
	return region_of(vm_tree_find(&vs->tree, addr));
}

bool vm_find_place_locked(struct vm_space *vs, uint64_t total, uint64_t *base)
{
	vm_assert_held(vs);
	uint64_t from = vs->mmap_base;

	if (vs->aslr && vs->hi - vs->lo > total) {
		uint64_t x = vs->rng;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		vs->rng = x;
		uint64_t slots = (vs->hi - vs->lo - total) / PAGE + 1;
		from = vs->lo + (x % slots) * PAGE;
	}
	return vm_tree_find_gap(&vs->tree, vs->lo, vs->hi, from, total, PAGE, base) ||
	       vm_tree_find_gap(&vs->tree, vs->lo, vs->hi, vs->lo, total, PAGE, base);
}

/* ------------------------------------------------------------------ region objects and counts */

/* A region object, its bookkeeping charged to the space's account. */
struct vm_region *vm_region_alloc(struct vm_space *vs)
{
	struct vm_region *r = lookaside_alloc_charged(&region_cache, vs->acct);
	if (r)
		memset(r, 0, sizeof(*r)); /* (no run storage yet: vm_region_free may take it back as is) */
	return r;
}

void vm_region_free(struct vm_space *vs, struct vm_region *r)
{
	if (!r)
		return;
	vm_runs_destroy(&r->runs, vs->acct);
	lookaside_free_charged(&region_cache, vs->acct, r);
}

/* ------------------------------------------------------------------ table windows */

/*
 * The 2 MiB windows intersecting [lo, hi) that hold at least one committed page of any
 * region of the space. A window's page tables (at most a PT, a PD and a PDPT) are charged
 * while it holds one: that keeps "a committed page can always be mapped" true however
 * sparse the commits are. O(regions and runs in the range). Lock held.
 */
uint64_t vm_committed_windows_locked(struct vm_space *vs, uint64_t lo, uint64_t hi)
{
	vm_assert_held(vs);
	uint64_t last = UINT64_MAX, n = 0;
	struct vm_node *node = vm_tree_floor(&vs->tree, lo);

	if (!node || node->end <= lo)
		node = vm_tree_ceil(&vs->tree, lo);
	for (; node && node->base < hi; node = vm_tree_next(&vs->tree, node)) {
		struct vm_region *r = region_of(node);
		uint64_t npages = vmr_pages(r);
		uint64_t from = lo > vmr_base(r) ? (lo - vmr_base(r)) / PAGE : 0;
		for (uint32_t i = vm_runs_find(&r->runs, from); i < r->runs.n; i++) {
			uint64_t x = MAX(vmr_base(r) + r->runs.v[i].start * PAGE, lo);
			uint64_t y = MIN(vmr_base(r) + vm_runs_end(&r->runs, i, npages) * PAGE, hi);
			if (x >= hi)
				break;
			if (r->runs.v[i].state != VM_COMMITTED || x >= y)
				continue;
			uint64_t wa = x >> VM_TABLE_WINDOW_SHIFT, wb = (y - 1) >> VM_TABLE_WINDOW_SHIFT;
			if (last != UINT64_MAX && wa <= last)
				wa = last + 1;
			if (wa <= wb) {
				n += wb - wa + 1;
				last = wb;
			}
		}
	}
	return n;
}

/* Extra windows (not yet charged) that committing [a, b) would bring. Lock held. */
uint64_t vm_new_windows_locked(struct vm_space *vs, uint64_t a, uint64_t b)
{
	vm_assert_held(vs);
	uint64_t lo = win_lo(a), hi = win_hi(b);
	return ((hi - lo) >> VM_TABLE_WINDOW_SHIFT) - vm_committed_windows_locked(vs, lo, hi);
}

/* Windows that no longer hold committed pages: their table charge goes back. */
void vm_release_windows_locked(struct vm_space *vs, uint64_t gone)
{
	vm_assert_held(vs);
	vs->table_windows -= gone;
	charge_release(vs->acct, gone * VM_TABLE_CHARGE_PER_WINDOW);
}
