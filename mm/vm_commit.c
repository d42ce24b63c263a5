// SPDX-License-Identifier: MIT
/*
 * Commit and decommit (mm/vm.h, SPEC §4.2): what changes the state of pages inside one
 * anonymous region, charged (and given back) with their table windows. A locked commit makes
 * its pages resident, with the frames zeroed outside the lock.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/pmm.h>
#include "frame.h"
#include "vm_internal.h"

Retcode vm_find_anon_range_locked(struct vm_space *vs, uint64_t addr, uint64_t size, struct vm_region **out,
				  uint64_t *first)
{
	vm_assert_held(vs);
	Retcode rc = vm_find_range_locked(vs, addr, size, out);

	if (rc != rcOk)
		return rc;
	*first = (addr - vmr_base(*out)) / PAGE;
	if ((*out)->kind != VMR_ANON || vm_runs_count_locked(vs, *out, *first, size / PAGE, VM_GUARD, false))
		return rcInvalidArgument;
	return rcOk;
}

Retcode vm_commit(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags)
{
	struct vm_region *r;
	struct list_head frames = LIST_HEAD_INIT(frames);
	bool lock_pages = flags & VMM_FLAG_LOCKED;

	if ((flags & ~(unsigned)VMM_FLAG_LOCKED) || !range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	vm_lock(vs);
	uint64_t first = 0, count = size / PAGE, reserved = 0, charge = 0, was_locked = 0, windows = 0;
	Retcode rc = vm_find_anon_range_locked(vs, addr, size, &r, &first);
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc == rcOk) {
		reserved = vm_runs_count_locked(vs, r, first, count, VM_RESERVED, false);
		charge = reserved * frame_commit_cost(r->flags);
		was_locked = vm_runs_count_locked(vs, r, first, count, KEEP, true);
		rc = charge_take(vs->acct, charge);
	}
	uint64_t more_locked = lock_pages ? count - was_locked : 0;
	if (rc == rcOk && (rc = vm_locked_pages_add_locked(vs, more_locked)) != rcOk)
		charge_release(vs->acct, charge);
	if (rc == rcOk && lock_pages) {
		/* The pages are charged (frames for the committed ones were already): zero the
		 * frames with no lock held, the region busy meanwhile. */
		uint64_t holes = vm_holes_locked(vs, addr, count);
		unsigned cache = r->flags;
		r->busy++;
		vm_unlock(vs);
		Retcode frc = vm_frames_get(&frames, holes, cache);
		vm_lock(vs);
		busy_end_locked(vs, r); /* (busy: r is still the region, with the same runs) */
		if (frc != rcOk) {
			vm_locked_pages_sub_locked(vs, more_locked);
			charge_release(vs->acct, charge);
			rc = frc;
		}
	}
	/* The tables' charge with the runs' change, under the lock all along: another commit
	 * in the same window counts it once. Room for the runs only once the charge is taken:
	 * a refused commit keeps nothing. */
	if (rc == rcOk) {
		windows = vm_new_windows_locked(vs, addr, addr + size);
		if ((rc = charge_take(vs->acct, windows * VM_TABLE_CHARGE_PER_WINDOW)) == rcOk &&
		    (rc = vm_runs_reserve(&r->runs, 2, vs->acct)) != rcOk)
			charge_release(vs->acct, windows * VM_TABLE_CHARGE_PER_WINDOW);
		if (rc == rcOk && lock_pages && (rc = vm_populate_locked(vs, r, first, count, &frames)) != rcOk)
			charge_release(vs->acct, windows * VM_TABLE_CHARGE_PER_WINDOW);
		if (rc != rcOk) {
			vm_locked_pages_sub_locked(vs, more_locked);
			charge_release(vs->acct, charge);
		}
	}
	if (rc == rcOk) {
		vm_runs_apply_locked(vs, r, first, count, VM_RESERVED, VM_COMMITTED, KEEP, lock_pages ? 1 : 0);
		if (lock_pages)
			vm_runs_apply_locked(vs, r, first, count, KEEP, KEEP, KEEP, 1);
		vs->committed += reserved;
		vs->commit_extra += charge - reserved;
		vs->table_windows += windows;
	}
	vm_unlock(vs);
	vm_frames_put(&frames);
	vm_free_dead(vs);
	return rc;
}

static int find_pinned(const struct pt_leaf *leaf, void *arg)
{
	(void)arg;
	for (uint64_t off = 0; off < leaf->size; off += PAGE)
		if (page_pinned(pa_to_page(leaf->pa + off)))
			return 1;
	return 0;
}

Retcode vm_decommit(struct vm_space *vs, uint64_t addr, uint64_t size)
{
	static const struct pt_walk_ops pinned = { .leaf = find_pinned };
	struct vm_region *r;

	if (!range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	vm_lock(vs);
	uint64_t first = 0, count = size / PAGE;
	Retcode rc = vm_find_anon_range_locked(vs, addr, size, &r, &first);
	if (rc == rcOk && (r->busy || pt_walk_range(&vs->pt, addr, size, &pinned, NULL)))
		rc = rcBusy;
	if (rc == rcOk)
		rc = vm_runs_reserve(&r->runs, 2, vs->acct);
	if (rc == rcOk) {
		uint64_t committed = vm_runs_count_locked(vs, r, first, count, VM_COMMITTED, false);
		uint64_t extra = committed * (frame_commit_cost(r->flags) - 1);
		uint64_t locked = vm_runs_count_locked(vs, r, first, count, KEEP, true);
		uint64_t before = vm_committed_windows_locked(vs, win_lo(addr), win_hi(addr + size));
		vm_unmap_pages_locked(vs, r, addr, count);
		vm_runs_apply_locked(vs, r, first, count, VM_COMMITTED, VM_RESERVED, KEEP, 0);
		uint64_t gone = before - vm_committed_windows_locked(vs, win_lo(addr), win_hi(addr + size));
		vs->committed -= committed;
		vs->commit_extra -= extra;
		vm_locked_pages_sub_locked(vs, locked);
		vs->table_windows -= gone;
		charge_release(vs->acct, committed + extra + gone * VM_TABLE_CHARGE_PER_WINDOW);
	}
	vm_unlock(vs);
	vm_free_dead(vs);
	return rc;
}
