// SPDX-License-Identifier: MIT
/*
 * Protect (mm/vm.h, SPEC §4.2): a new protection for pages inside one anonymous region, no
 * more than its maximum (an MDL mapping's), in the runs and, where pages are resident, in the
 * page tables.
 */
#include <knmm/align.h>
#include <knmm/panic.h>
#include "vm_internal.h"

Retcode vm_protect(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned prot)
{
	struct vm_region *r;

	if (!prot_valid(prot) || !range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	vm_lock(vs);
	uint64_t first = 0, count = size / PAGE;
	Retcode rc = vm_find_anon_range_locked(vs, addr, size, &r, &first);
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc == rcOk && (prot & ~(unsigned)r->max_prot))
		rc = rcAccessDenied; /* an MDL mapping: no more than the MDL allows */
	if (rc == rcOk)
		rc = vm_runs_reserve(&r->runs, 2, vs->acct);
	if (rc == rcOk) {
		vm_runs_apply_locked(vs, r, first, count, KEEP, KEEP, (uint8_t)prot, KEEP);
		if (r->resident) /* (with nothing mapped, the runs are all there is) */
			rc = pt_protect(&vs->pt, addr, size, vm_mmu_flags(vs, prot, r->flags));
		KASSERT(rc == rcOk); /* 4 KiB pages only: nothing to split */
	}
	vm_unlock(vs);
	return rc;
}
