// SPDX-License-Identifier: MIT
/*
 * The address-space invariant checker (tests, the host model): the tree, every region's
 * runs, the page tables' residency and summaries, and the space's counters against what
 * they count.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include "frame.h"
#include "vm_internal.h"

bool vm_space_check(struct vm_space *vs, char *why, size_t size)
{
	uint64_t committed = 0, extra = 0, resident = 0, locked = 0;
	bool ok = true;

	vm_lock(vs);
	if (!vm_tree_check(&vs->tree, why, size)) {
		ok = false;
		goto out;
	}
	uint64_t regions = 0;
	for (struct vm_region *r = vm_first_region_locked(vs); r; r = vm_next_region_locked(vs, r), regions++) {
		uint64_t npages = vmr_pages(r);
		if (!vm_runs_check(&r->runs, npages, why, size)) {
			ok = false;
			goto out;
		}
		uint64_t mapped = vm_count_mapped_locked(vs, vmr_base(r), vmr_end(r) - vmr_base(r));
		if (mapped != r->resident) {
			ksnprintf(why, size, "region %#llx: %llu pages mapped, %llu counted",
				  (unsigned long long)vmr_base(r), (unsigned long long)mapped,
				  (unsigned long long)r->resident);
			ok = false;
			goto out;
		}
		/* Every mapped page is committed; every locked page is mapped. */
		if (r->kind == VMR_ANON) {
			uint64_t lk = vm_runs_count_locked(vs, r, 0, npages, KEEP, true);
			uint64_t cm = vm_runs_count_locked(vs, r, 0, npages, VM_COMMITTED, false);
			if (mapped > cm || lk > mapped) {
				ksnprintf(why, size, "region %#llx: %llu mapped, %llu committed, %llu locked",
					  (unsigned long long)vmr_base(r), (unsigned long long)mapped,
					  (unsigned long long)cm, (unsigned long long)lk);
				ok = false;
				goto out;
			}
			committed += cm;
			extra += cm * (frame_commit_cost(r->flags) - 1);
			locked += lk;
		}
		resident += mapped;
	}
	if (!pt_check_summaries(&vs->pt, vs->lo, vs->hi, why, size)) {
		ok = false;
		goto out;
	}
	if (regions != vs->nregions) {
		ksnprintf(why, size, "space: %llu regions, %llu counted", (unsigned long long)regions,
			  (unsigned long long)vs->nregions);
		ok = false;
		goto out;
	}
	uint64_t windows = vm_committed_windows_locked(vs, vs->lo, vs->hi);
	if (committed != vs->committed || resident != vs->resident || locked != vs->locked ||
	    windows != vs->table_windows || extra != vs->commit_extra) {
		ksnprintf(why, size,
			  "space counters: committed %llu/%llu resident %llu/%llu locked %llu/%llu windows %llu/%llu",
			  (unsigned long long)committed, (unsigned long long)vs->committed,
			  (unsigned long long)resident, (unsigned long long)vs->resident, (unsigned long long)locked,
			  (unsigned long long)vs->locked, (unsigned long long)windows,
			  (unsigned long long)vs->table_windows);
		ok = false;
	}
out:
	vm_unlock(vs);
	return ok;
}
