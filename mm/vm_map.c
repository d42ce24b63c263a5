// SPDX-License-Identifier: MIT
/*
 * Regions made and removed (mm/vm.h): vm_allocate (reserve, commit, locked), vm_unmap of a
 * whole region or of a part of one (which splits it), vm_space_destroy (every region), and
 * the mapping of device ranges into I/O regions.
 *
 * Every operation validates its arguments, takes the space lock, prepares everything that
 * can fail (charge, objects, run capacity, frames) and only then changes state, so a failing
 * call leaves nothing behind.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/pmm.h>
#include "frame.h"
#include "vm_internal.h"

/* ------------------------------------------------------------------ allocate */

Retcode vm_allocate_named(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags, enum vm_region_kind kind,
			  const char *name, uint64_t *out)
{
	unsigned prot = flags & VMM_FLAG_RWX_MASK;

	if ((flags & ~(unsigned)VMM_FLAG_ALLOCATE_MASK) || !(flags & VMM_FLAG_RESERVE) || !prot_valid(prot) ||
	    !cache_valid(flags) || ((flags & VMM_FLAG_LOCKED) && !(flags & VMM_FLAG_COMMIT)) ||
	    ((flags & VMM_FLAG_GROW_DOWN) && (flags & (VMM_FLAG_COMMIT | VMM_FLAG_LOCKED))) ||
	    (kind != VMR_ANON && (flags & (VMM_FLAG_COMMIT | VMM_FLAG_GROW_DOWN))))
		return rcInvalidArgument;
	if (size == 0 || !is_aligned(size, PAGE) || !is_aligned(addr, PAGE))
		return rcInvalidArgument;
	uint64_t lowg = (flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0, highg = (flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0;
	uint64_t total = size + lowg + highg, base;
	if (total < size || total > vs->hi - vs->lo)
		return rcInvalidArgument;
	/* A fixed reservation [addr - lowg, +total) must lie in [lo, hi) (careful: no wrap). */
	if (addr && (addr < lowg || addr - lowg < vs->lo || addr - lowg >= vs->hi || total > vs->hi - (addr - lowg)))
		return rcInvalidArgument;

	uint64_t pages = size / PAGE, committed = 0, windows = 0, io_charge = 0;
	if (flags & VMM_FLAG_COMMIT)
		committed = pages;
	else if (flags & VMM_FLAG_GROW_DOWN)
		committed = 1;
	uint64_t charge = committed * frame_commit_cost(flags);
	/* An I/O region is mapped whole: its tables are charged like a committed region's (per
	 * 2 MiB window, for as long as it lives), or a task could make the kernel allocate
	 * page tables nobody paid for. */
	if (kind == VMR_IO) /* (the windows a range of `size` bytes can touch, wherever it lands) */
		io_charge = (win_hi(size) / (1ull << VM_TABLE_WINDOW_SHIFT) + 1) * VM_TABLE_CHARGE_PER_WINDOW;

	/* A locked region's pages are charged, then their frames zeroed, before the lock: a
	 * chunk at a time, preemptibly (never a frame taken that is not charged). */
	struct list_head frames = LIST_HEAD_INIT(frames);
	uint64_t early = 0;
	if (flags & VMM_FLAG_LOCKED) {
		if (addr) { /* (a taken range is rcAlreadyExists whatever the charge: looked at first) */
			vm_lock(vs);
			bool taken = vm_tree_overlaps(&vs->tree, addr - lowg, addr - lowg + total);
			vm_unlock(vs);
			if (taken)
				return rcAlreadyExists;
		}
		if (charge_take(vs->acct, charge) != rcOk)
			return rcOutOfMemory;
		early = charge;
		if (vm_frames_get(&frames, pages, flags) != rcOk) {
			charge_release(vs->acct, early);
			return rcOutOfMemory;
		}
	}
	struct vm_region *r = vm_region_alloc(vs);
	if (!r) {
		vm_frames_put(&frames);
		charge_release(vs->acct, early);
		return rcOutOfMemory;
	}
	vm_lock(vs);
	Retcode rc = rcOk;
	if (addr) {
		base = addr - lowg;
		if (vm_tree_overlaps(&vs->tree, base, base + total))
			rc = rcAlreadyExists;
	} else if (!vm_find_place_locked(vs, total, &base)) {
		rc = rcOutOfMemory;
	}
	if (rc == rcOk && charge) {
		/* the committed part: all of the usable range, or a grow-down region's top page */
		uint64_t c_end = base + lowg + size, c_start = (flags & VMM_FLAG_COMMIT) ? base + lowg : c_end - PAGE;
		windows = vm_new_windows_locked(vs, c_start, c_end);
	}
	/* Everything the region costs, taken together or not at all (a locked region's pages
	 * were charged already). */
	uint64_t total_charge = charge + windows * VM_TABLE_CHARGE_PER_WINDOW + io_charge;
	uint64_t lock_pages = (flags & VMM_FLAG_LOCKED) ? pages : 0;
	if (rc == rcOk && (rc = charge_take(vs->acct, total_charge - early)) == rcOk) {
		if ((rc = vm_region_count_add_locked(vs)) != rcOk) {
			charge_release(vs->acct, total_charge - early);
		} else if ((rc = vm_locked_pages_add_locked(vs, lock_pages)) != rcOk) {
			vm_region_count_sub_locked(vs);
			charge_release(vs->acct, total_charge - early);
		}
	}
	if (rc != rcOk) {
		vm_unlock(vs);
		vm_region_free(vs, r);
		vm_frames_put(&frames);
		charge_release(vs->acct, early);
		return rc;
	}

	memset(r, 0, sizeof(*r));
	r->node.base = base;
	r->node.end = base + total;
	r->flags = flags;
	r->kind = (uint8_t)kind;
	r->max_prot = VMM_FLAG_RWX_MASK;
	r->io_charge = io_charge;
	kstrlcpy(r->name, name ? name : "", sizeof(r->name));
	uint64_t npages = total / PAGE, first = lowg / PAGE;
	vm_runs_init(&r->runs, (flags & VMM_FLAG_COMMIT) ? VM_COMMITTED : VM_RESERVED, (uint8_t)prot);
	r->runs.v[0].locked = (flags & VMM_FLAG_LOCKED) ? 1 : 0;
	if (lowg)
		vm_runs_set(&r->runs, npages, 0, 1, VM_GUARD, 0, 0);
	if (highg)
		vm_runs_set(&r->runs, npages, npages - 1, 1, VM_GUARD, 0, 0);
	if (flags & VMM_FLAG_GROW_DOWN)
		vm_runs_set(&r->runs, npages, first + pages - 1, 1, VM_COMMITTED, (uint8_t)prot, 0);
	vm_tree_insert(&vs->tree, &r->node);

	if (flags & VMM_FLAG_LOCKED)
		rc = vm_populate_locked(vs, r, first, pages, &frames);
	else if (flags & VMM_FLAG_GROW_DOWN)
		rc = vm_populate_locked(vs, r, first + pages - 1, 1, &frames);
	if (rc != rcOk) {
		vm_tree_remove(&vs->tree, &r->node);
		vm_locked_pages_sub_locked(vs, lock_pages);
		vm_region_count_sub_locked(vs);
		charge_release(vs->acct, total_charge);
		vm_unlock(vs);
		vm_region_free(vs, r);
		vm_frames_put(&frames);
		vm_free_dead(vs);
		return rc;
	}
	vs->committed += committed;
	vs->commit_extra += charge - committed;
	vs->table_windows += windows;
	vm_unlock(vs);
	vm_frames_put(&frames); /* (none left, unless a page was resident already) */
	*out = base + lowg;
	return rcOk;
}

Retcode vm_allocate(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags, uint64_t *out)
{
	return vm_allocate_named(vs, addr, size, flags, VMR_ANON, NULL, out);
}

/* ------------------------------------------------------------------ unmap */

/* Recomputes the guard flags from the runs (after a split): LOW_GUARD if the first page is
 * a guard, HIGH_GUARD if the last one is and the region has more than one page (a region
 * left with only a guard page, after its usable pages were unmapped, is a low guard). */
static void refresh_guard_flags_locked(struct vm_space *vs, struct vm_region *r)
{
	vm_assert_held(vs);
	uint64_t npages = vmr_pages(r);
	const struct vm_run *last = &r->runs.v[r->runs.n - 1];

	r->flags &= ~(unsigned)(VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD);
	if (r->runs.v[0].state == VM_GUARD)
		r->flags |= VMM_FLAG_LOW_GUARD;
	if (npages > 1 && last->state == VM_GUARD && npages - last->start == 1)
		r->flags |= VMM_FLAG_HIGH_GUARD;
}

/* Whether r has a committed page (it has few runs: a scan is cheap). */
static bool region_has_committed_locked(struct vm_space *vs, const struct vm_region *r)
{
	vm_assert_held(vs);
	for (uint32_t i = 0; i < r->runs.n; i++)
		if (r->runs.v[i].state == VM_COMMITTED)
			return true;
	return false;
}

Retcode vm_unmap(struct vm_space *vs, uint64_t addr, uint64_t size)
{
	struct vm_region *r, *tail_region = NULL;

	if (!range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	struct vm_region *spare = NULL;
	vm_lock(vs);
	Retcode rc = vm_find_range_locked(vs, addr, size, &r);
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc != rcOk)
		goto out;
	uint64_t base = vmr_base(r), end = vmr_end(r), a = addr, b = addr + size;
	uint64_t ulo = base + ((r->flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0);
	uint64_t uhi = end - ((r->flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0);
	/* Only a region with committed pages can take a window's last committed page away. */
	bool had_commit = region_has_committed_locked(vs, r);
	uint64_t windows_before = had_commit ? vm_committed_windows_locked(vs, win_lo(base), win_hi(end)) : 0;
	bool whole = (a == base && b == end) || (a == ulo && b == uhi);
	if (r->kind == VMR_IO && !whole) {
		rc = rcInvalidArgument; /* a device mapping goes whole (its table charge is whole) */
		goto out;
	}
	if (whole) {
		vm_remove_region_locked(vs, r);
		if (had_commit)
			vm_release_windows_locked(
				vs, windows_before - vm_committed_windows_locked(vs, win_lo(base), win_hi(end)));
		vm_unlock(vs);
		vm_region_free(vs, r);
		vm_region_free(vs, spare);
		vm_free_dead(vs);
		return rcOk;
	}
	uint64_t npages = vmr_pages(r), first = (a - base) / PAGE, count = size / PAGE;
	if (a > base && b < end) {
		/* Middle: [base, a) stays in r, [b, end) moves to a new region (the pool may be
		 * used under a space lock). */
		if (!(spare = vm_region_alloc(vs))) {
			rc = rcOutOfMemory;
			goto out;
		}
		if ((rc = vm_region_count_add_locked(vs)) != rcOk)
			goto out;
		rc = vm_runs_prepare_split(&r->runs, (b - base) / PAGE, &spare->runs, vs->acct);
		if (rc != rcOk) {
			vm_region_count_sub_locked(vs);
			goto out;
		}
		vm_release_pages_locked(vs, r, first, count);
		tail_region = spare;
		spare = NULL;
		vm_runs_split(&r->runs, npages, (b - base) / PAGE, &tail_region->runs);
		tail_region->node.base = b;
		tail_region->node.end = end;
		tail_region->flags = r->flags;
		tail_region->kind = r->kind;
		tail_region->max_prot = r->max_prot;
		tail_region->io_pa = r->io_pa ? r->io_pa + (b - base) : 0;
		memcpy(tail_region->name, r->name, sizeof(r->name));
	} else {
		vm_release_pages_locked(vs, r, first, count);
	}
	/* Cut r down to what remains on its side, and re-key it in the tree. */
	vm_tree_remove(&vs->tree, &r->node);
	if (a == base) {
		vm_runs_drop_head(&r->runs, count);
		if (r->io_pa)
			r->io_pa += size;
		r->node.base = b;
	} else {
		/* r keeps pages [0, at); anything after moved to tail_region or was unmapped. */
		uint64_t at = (a - base) / PAGE;
		uint32_t i = vm_runs_find(&r->runs, at);
		r->runs.n = r->runs.v[i].start == at ? i : i + 1;
		r->node.end = a;
	}
	refresh_guard_flags_locked(vs, r);
	vm_tree_insert(&vs->tree, &r->node);
	if (tail_region) {
		/* The tail's mapped pages were counted in r. */
		uint64_t mapped = vm_count_mapped_locked(vs, b, end - b);
		tail_region->resident = mapped;
		r->resident -= mapped;
		refresh_guard_flags_locked(vs, tail_region);
		vm_tree_insert(&vs->tree, &tail_region->node);
	}
	if (had_commit)
		vm_release_windows_locked(vs,
					  windows_before - vm_committed_windows_locked(vs, win_lo(base), win_hi(end)));
out:
	vm_unlock(vs);
	vm_region_free(vs, spare);
	vm_free_dead(vs);
	return rc;
}

void vm_space_destroy(struct vm_space *vs)
{
	struct vm_region *r;

	vm_lock(vs);
	while ((r = vm_first_region_locked(vs)) != NULL) {
		uint64_t lo = win_lo(vmr_base(r)), hi = win_hi(vmr_end(r)),
			 before = vm_committed_windows_locked(vs, lo, hi);
		vm_remove_region_locked(vs, r);
		vm_release_windows_locked(vs, before - vm_committed_windows_locked(vs, lo, hi));
		vm_unlock(vs);
		vm_region_free(vs, r);
		vm_free_dead(vs);
		vm_lock(vs);
	}
	vm_unlock(vs);
	vm_space_fini(vs);
}

/* ------------------------------------------------------------------ io mappings */

Retcode vm_map_io(struct vm_space *vs, uint64_t va, uint64_t pa, uint64_t npages)
{
	struct vm_region *r;

	if (!is_aligned(pa, PAGE) || !range_args_ok(vs, va, npages * PAGE))
		return rcInvalidArgument;
	vm_lock(vs);
	Retcode rc = vm_find_range_locked(vs, va, npages * PAGE, &r);
	if (rc == rcOk && r->kind != VMR_IO)
		rc = rcInvalidArgument;
	if (rc == rcOk) {
		unsigned prot = r->runs.v[vm_runs_find(&r->runs, (va - vmr_base(r)) / PAGE)].prot;
		rc = pt_map(&vs->pt, va, pa, npages * PAGE, vm_mmu_flags(vs, prot, r->flags), PT_LEVEL_PT);
		if (rc == rcOk) {
			r->io_pa = pa - (va - vmr_base(r));
			r->resident += npages;
			vs->resident += npages;
		}
	}
	vm_unlock(vs);
	return rc;
}
