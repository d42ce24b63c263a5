// SPDX-License-Identifier: MIT
/*
 * Faults (mm/vm.h, docs/vm.md "Faults"): what a fault is and its resolution (a frame for a
 * committed page, fault-around, grow-down growth).
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/pmm.h>
#include "frame.h"
#include "vm_internal.h"

/* ------------------------------------------------------------------ faults */

/* Maps a fresh frame at page p of r (committed, not resident): *spare, the write-back frame
 * vm_fault zeroed before it took the lock, when there is one and r is write-back; otherwise
 * one allocated (and zeroed) here. Charged: cannot fail. Inlined: vm_fault's hot path, which
 * a second caller (vm_page_get) would otherwise turn into a call (+20 ticks a lazy fault). */
static __always_inline void fault_in_locked(struct vm_space *vs, struct vm_region *r, uint64_t p, unsigned prot,
					    struct page **spare)
{
	vm_assert_held(vs);
	struct page *frame = *spare;

	if (frame && frame_type_of(r->flags) == FRAME_WB)
		*spare = NULL;
	else
		frame = frame_alloc(r->flags, PAGE_ANON);

	if (!frame)
		panic("vm: no frame for a committed page (%llu pages charged): the commit accounting is broken",
		      (unsigned long long)charge_total());
	Retcode rc = pt_map(&vs->pt, vmr_base(r) + p * PAGE, page_to_pa(frame), PAGE, vm_mmu_flags(vs, prot, r->flags),
			    PT_LEVEL_PT);
	if (rc != rcOk)
		panic("vm: no page table for a committed page (error %d): the commit reserve is exhausted", rc);
	r->resident++;
	vs->resident++;
}

/* Up to vs->faultaround more pages of run i within faultaround pages of p: those after it
 * first, then those before it (a bounded window: touching a run from the top stays linear). */
static void fault_around_locked(struct vm_space *vs, struct vm_region *r, uint32_t i, uint64_t p)
{
	struct page *none = NULL;

	vm_assert_held(vs);
	unsigned left = vs->faultaround;
	uint64_t lo = MAX(r->runs.v[i].start, p > left ? p - left : 0);
	uint64_t hi = MIN(vm_runs_end(&r->runs, i, vmr_pages(r)), p + 1 + left);

	for (uint64_t q = p + 1; left && q < hi; q++) {
		if (!pt_translate(&vs->pt, vmr_base(r) + q * PAGE, NULL)) {
			fault_in_locked(vs, r, q, r->runs.v[i].prot, &none);
			left--;
		}
	}
	for (uint64_t q = p; left && q-- > lo;) {
		if (!pt_translate(&vs->pt, vmr_base(r) + q * PAGE, NULL)) {
			fault_in_locked(vs, r, q, r->runs.v[i].prot, &none);
			left--;
		}
	}
}

static bool access_allowed(unsigned prot, enum vm_access access)
{
	if (access == VM_ACCESS_WRITE)
		return prot & VMM_FLAG_WRITE;
	if (access == VM_ACCESS_EXEC)
		return prot & VMM_FLAG_EXECUTE;
	return prot & VMM_FLAG_READ;
}

enum vm_fault_result vm_fault(struct vm_space *vs, uint64_t addr, enum vm_access access)
{
	enum vm_fault_result res = VM_FAULT_ACCESS;

	if (addr < vs->lo || addr >= vs->hi)
		return VM_FAULT_ACCESS;
	/* The frame a lazy page will most likely need, zeroed before the space lock is taken
	 * (docs/locking.md), with interrupts already off so that nothing runs between here and
	 * the lock: a CPU holds at most one such spare, and the kernel reserve (never promised
	 * by the charge) covers the frame while a fault that does not use it still holds it.
	 * With no free frame, the frame is zeroed under the lock as before. */
	bool irq = local_irq_save();
	struct page *spare = pmm_alloc(0, PMM_ZERO, PAGE_ANON);

	vm_lock(vs);
	struct vm_region *r = vm_region_find_locked(vs, addr);
	if (!r || r->kind != VMR_ANON)
		goto out;
	uint64_t p = (addr - vmr_base(r)) / PAGE, va = align_down(addr, PAGE);
	uint32_t i = vm_runs_find(&r->runs, p);
	struct vm_run run = r->runs.v[i]; /* a copy: growing the run array may move it */

	if (run.state == VM_GUARD) {
		res = VM_FAULT_GUARD;
	} else if (run.state == VM_RESERVED) {
		/* Grow-down: reserved pages up to the committed part above become committed. */
		if (!(r->flags & VMM_FLAG_GROW_DOWN) || i + 1 >= r->runs.n || r->runs.v[i + 1].state != VM_COMMITTED ||
		    !access_allowed(run.prot, access))
			goto out;
		uint64_t top = r->runs.v[i + 1].start, n = top - p, extra = n * (frame_commit_cost(r->flags) - 1);
		uint64_t windows = vm_new_windows_locked(vs, vmr_base(r) + p * PAGE, vmr_base(r) + top * PAGE);
		if (vm_runs_reserve(&r->runs, 2, vs->acct) != rcOk ||
		    charge_take(vs->acct, n + extra + windows * VM_TABLE_CHARGE_PER_WINDOW) != rcOk) {
			res = VM_FAULT_STACK_OVERFLOW;
			goto out;
		}
		vm_runs_apply_locked(vs, r, p, n, VM_RESERVED, VM_COMMITTED, KEEP, 0);
		vs->committed += n;
		vs->commit_extra += extra;
		vs->table_windows += windows;
		fault_in_locked(vs, r, p, run.prot, &spare);
		res = VM_FAULT_GREW;
	} else if (access_allowed(run.prot, access)) {
		if (!pt_translate(&vs->pt, va, NULL)) {
			fault_in_locked(vs, r, p, run.prot, &spare);
			fault_around_locked(vs, r, i, p);
		}
		res = VM_FAULT_RESOLVED;
	}
out:
	vm_unlock(vs);
	local_irq_restore(irq);
	if (spare)
		frame_free(spare);
	return res;
}

/* ------------------------------------------------------------------ access from another task */

enum page_get { GOT, NEEDS_FRAME, REFUSED };

/* What vm_page_get may do with page va (lock held): GOT with the frame taken when it is
 * resident (or, given a spare, made so), NEEDS_FRAME when it is a committed page to fault in
 * and there is no spare, REFUSED otherwise. */
static enum page_get page_get_locked(struct vm_space *vs, uint64_t va, enum vm_access access, struct page **frame,
				     struct page **spare)
{
	vm_assert_held(vs);
	struct vm_region *r = vm_region_find_locked(vs, va);
	if (!r || r->kind != VMR_ANON || vm_cache_mode(r->flags) != 0)
		return REFUSED; /* free, device memory, or not write-back */
	uint64_t p = (va - vmr_base(r)) / PAGE;
	uint32_t i = vm_runs_find(&r->runs, p);
	const struct vm_run *run = &r->runs.v[i];
	if (run->state != VM_COMMITTED) /* reserved (no growth) or guard (not consumed) */
		return REFUSED;
	if (access == VM_ACCESS_READ && !allows(run->prot, VMM_FLAG_READ))
		return REFUSED;
	struct pt_mapping m;
	if (!pt_translate(&vs->pt, va, &m)) {
		if (!spare)
			return NEEDS_FRAME;
		/* As the space's own read fault (every valid protection has READ). */
		fault_in_locked(vs, r, p, run->prot, spare);
		fault_around_locked(vs, r, i, p);
		if (!pt_translate(&vs->pt, va, &m))
			panic("vm: a page faulted in for another task is not mapped");
	}
	struct page *f = pa_to_page(align_down(m.pa, PAGE));
	/* Under the lock, one reference means the mapping is its only holder, and nothing can
	 * take another but through this space (under this lock). */
	if (access == VM_ACCESS_WRITE && !allows(r->max_prot, VMM_FLAG_WRITE) && page_refs(f) != 1)
		return REFUSED; /* someone shared it without write: no private copy yet (no COW) */
	page_ref(f);
	*frame = f;
	return GOT;
}

Retcode vm_page_get(struct vm_space *vs, uint64_t va, enum vm_access access, struct page **frame, void **kva)
{
	va = align_down(va, PAGE);
	if (va < vs->lo || va >= vs->hi)
		return rcFault;
	/* First without a spare frame: most pages asked for are resident. */
	vm_lock(vs);
	enum page_get got = page_get_locked(vs, va, access, frame, NULL);
	vm_unlock(vs);
	if (got == NEEDS_FRAME) {
		/* A committed page to fault in: as vm_fault, its frame zeroed before the lock,
		 * with interrupts off from the allocation on (one spare per CPU). */
		bool irq = local_irq_save();
		struct page *spare = pmm_alloc(0, PMM_ZERO, PAGE_ANON);
		vm_lock(vs);
		got = page_get_locked(vs, va, access, frame, &spare);
		vm_unlock(vs);
		local_irq_restore(irq);
		if (spare)
			frame_free(spare);
	}
	if (got != GOT)
		return rcFault;
	*kva = page_to_va(*frame);
	return rcOk;
}

void vm_page_put(struct page *frame)
{
	if (page_unref(frame)) /* the page was unmapped meanwhile: its last holder frees it */
		frame_free(frame);
}
