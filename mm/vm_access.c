// SPDX-License-Identifier: MIT
/*
 * Access without a fault (mm/vm.h): whether an access would succeed without making it (or,
 * after a fault, whether the tables now let it through), and reading and writing a space
 * from the kernel through its frames, page by page, faulting nothing in.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/pmm.h>
#include "vm_internal.h"

bool vm_check_access(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access)
{
	if (size == 0)
		return true;
	uint64_t end = align_up(addr + size, PAGE), a = align_down(addr, PAGE);
	if (addr + size < addr || a < vs->lo || end > vs->hi || end < a)
		return false;
	bool ok = true;
	vm_lock(vs);
	while (ok && a < end) {
		struct vm_region *r = vm_region_find_locked(vs, a);
		if (!r || r->kind != VMR_ANON) {
			ok = false;
			break;
		}
		uint64_t npages = vmr_pages(r);
		uint32_t i = vm_runs_find(&r->runs, (a - vmr_base(r)) / PAGE);
		const struct vm_run *run = &r->runs.v[i];
		bool growable = run->state == VM_RESERVED && (r->flags & VMM_FLAG_GROW_DOWN) && i + 1 < r->runs.n &&
				r->runs.v[i + 1].state == VM_COMMITTED;
		ok = (run->state == VM_COMMITTED || growable) && allows(run->prot, access);
		a = vmr_base(r) + vm_runs_end(&r->runs, i, npages) * PAGE;
	}
	vm_unlock(vs);
	return ok;
}

/* Whether page `a` (in the space) can be read: committed with READ, or a reserved page of a
 * grow-down region that an access would grow into (it reads as zeros). Lock held. */
static bool page_readable_locked(struct vm_space *vs, uint64_t a)
{
	vm_assert_held(vs);
	struct vm_region *r = vm_region_find_locked(vs, a);
	if (!r || r->kind != VMR_ANON)
		return false;
	uint32_t i = vm_runs_find(&r->runs, (a - vmr_base(r)) / PAGE);
	const struct vm_run *run = &r->runs.v[i];
	bool growable = run->state == VM_RESERVED && (r->flags & VMM_FLAG_GROW_DOWN) && i + 1 < r->runs.n &&
			r->runs.v[i + 1].state == VM_COMMITTED;
	return (run->state == VM_COMMITTED || growable) && allows(run->prot, VMM_FLAG_READ);
}

Retcode vm_read(struct vm_space *vs, uint64_t addr, void *buf, uint64_t size)
{
	if (!vm_check_access(vs, addr, size, VMM_FLAG_READ))
		return rcFault;
	uint8_t *out = buf;
	uint64_t pages = 0;
	for (uint64_t done = 0; done < size;) {
		uint64_t a = addr + done, n = MIN(size - done, PAGE - (a & PAGE_MASK));
		struct pt_mapping m;
		vm_lock(vs);
		/* Page by page under the lock: the frame cannot go while it is read, and a page
		 * another thread made unreadable since the check ends the copy. */
		bool ok = page_readable_locked(vs, align_down(a, PAGE));
		if (ok && pt_translate(&vs->pt, a, &m))
			memcpy(out + done, phys_to_virt(m.pa), n);
		else if (ok)
			memset(out + done, 0, n); /* committed, never touched: zeros, and it stays so */
		vm_unlock(vs);
		if (!ok)
			return rcFault;
		done += n;
		if (++pages % VM_CHUNK_PAGES == 0 && done < size)
			vm_preempt_point();
	}
	return rcOk;
}

Retcode vm_write(struct vm_space *vs, uint64_t addr, const void *buf, uint64_t size)
{
	const uint8_t *in = buf;

	if (size == 0)
		return rcOk;
	if (addr + size < addr || addr < vs->lo || addr + size > vs->hi)
		return rcFault;
	for (uint64_t done = 0; done < size;) {
		uint64_t a = addr + done, n = MIN(size - done, PAGE - (a & PAGE_MASK));
		struct pt_mapping m;
		vm_lock(vs);
		/* Page by page under the lock: the frame cannot go while it is written. */
		struct vm_region *r = vm_region_find_locked(vs, a);
		const struct vm_run *run =
			r && r->kind == VMR_ANON ? &r->runs.v[vm_runs_find(&r->runs, (a - vmr_base(r)) / PAGE)] : NULL;
		bool ok = run && run->state == VM_COMMITTED && allows(run->prot, VMM_FLAG_WRITE) &&
			  pt_translate(&vs->pt, a, &m);
		if (ok)
			memcpy(phys_to_virt(m.pa), in + done, n);
		vm_unlock(vs);
		if (!ok)
			return rcFault;
		done += n;
	}
	return rcOk;
}

bool vm_tables_allow(struct vm_space *vs, uint64_t addr, enum vm_access access)
{
	struct pt_mapping m;

	vm_lock(vs);
	bool ok = pt_translate(&vs->pt, addr, &m) && (!vs->user || (m.mmu_flags & MMU_USER)) &&
		  (access != VM_ACCESS_WRITE || (m.mmu_flags & MMU_WRITE)) &&
		  (access != VM_ACCESS_EXEC || (m.mmu_flags & MMU_EXEC));
	vm_unlock(vs);
	return ok;
}
