// SPDX-License-Identifier: MIT
/*
 * NT-style kernel memory services (mm/mm.h, docs/vm.md): address checks, device and
 * contiguous and uncached memory; and those on MDLs (mm/mdl.h, docs/mdl.md): describe, probe
 * and lock, unlock, pool buffers, system mappings. Clients of the MDL object (mm/mdl.c) and
 * of the address spaces, kernel_space's above all.
 */
#include <arch/pt.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/mdl.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/vm.h>
#include "frame.h"

static struct pt_root current_root(uint64_t va)
{
	if (va >= DIRECT_MAP_BASE)
		return kernel_pt_root;
	return pt_active_root();
}

bool mm_is_address_valid(const void *va)
{
	uint64_t a = (uint64_t)(uintptr_t)va;
	struct pt_root root = current_root(a);
	return va_is_canonical(a) && pt_translate(&root, a, NULL);
}

bool mm_get_physical_address(const void *va, uint64_t *pa)
{
	uint64_t a = (uint64_t)(uintptr_t)va;
	struct pt_root root = current_root(a);
	struct pt_mapping m;

	if (!va_is_canonical(a) || !pt_translate(&root, a, &m))
		return false;
	*pa = m.pa;
	return true;
}

void *mm_map_io_space(uint64_t pa, uint64_t size, unsigned cache)
{
	uint64_t first = align_down(pa, PAGE_SIZE), end, va;

	if (size == 0 || (cache & ~(unsigned)VMM_FLAG_CACHE_MASK) || pa + size < pa ||
	    !align_up_checked(pa + size, PAGE_SIZE, &end))
		return NULL;
	if (!mm_phys_is_io(first, end))
		return NULL;
	uint64_t npages = (end - first) / PAGE_SIZE;
	if (vm_allocate_named(&kernel_space, 0, npages * PAGE_SIZE,
			      VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE | cache, VMR_IO, "io", &va) != rcOk)
		return NULL;
	if (vm_map_io(&kernel_space, va, first, npages) != rcOk) {
		vm_unmap(&kernel_space, va, npages * PAGE_SIZE);
		return NULL;
	}
	return (void *)(uintptr_t)(va + (pa - first));
}

void mm_unmap_io_space(void *va, uint64_t size)
{
	uint64_t a = (uint64_t)(uintptr_t)va, base = align_down(a, PAGE_SIZE);
	Retcode rc = vm_unmap(&kernel_space, base, align_up(a + size, PAGE_SIZE) - base);
	KASSERT_MSG(rc == rcOk, "mm_unmap_io_space(%p): %d", va, rc);
}

void *mm_alloc_contiguous(uint64_t size, uint64_t highest_pa)
{
	uint64_t npages = pages_of(size);
	uint64_t limit = highest_pa == UINT64_MAX ? UINT64_MAX : highest_pa + 1;

	if (size == 0 || charge_take(NULL, npages) != rcOk)
		return NULL;
	struct page *p = pmm_alloc_contig_in(&pmm_main, npages, 1, limit, PMM_ZERO, PAGE_KERNEL);
	if (!p) {
		charge_release(NULL, npages);
		return NULL;
	}
	return page_to_va(p);
}

void mm_free_contiguous(void *va, uint64_t size)
{
	uint64_t npages = pages_of(size);
	pmm_free_contig_in(&pmm_main, pa_to_page(virt_to_phys_direct(va)), npages);
	charge_release(NULL, npages);
}

void *mm_alloc_noncached(uint64_t size)
{
	uint64_t va, bytes = align_up(size, PAGE_SIZE);

	/* An uncached region's frames are uncached in the direct map too, and zeroed through
	 * it (mm/frame.h): no write-back alias, nothing of them left in the caches. */
	if (size == 0 || vm_allocate_named(&kernel_space, 0, bytes,
					   VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | VMM_FLAG_READ |
						   VMM_FLAG_WRITE | VMM_FLAG_CACHE_DISABLE,
					   VMR_ANON, "noncached", &va) != rcOk)
		return NULL;
	return (void *)(uintptr_t)va;
}

void mm_free_noncached(void *va, uint64_t size)
{
	Retcode rc = vm_unmap(&kernel_space, (uint64_t)(uintptr_t)va, align_up(size, PAGE_SIZE));
	KASSERT_MSG(rc == rcOk, "mm_free_noncached(%p): %d", va, rc);
}

/* ------------------------------------------------------------------ MDLs */

Retcode mdl_describe(struct vm_space *vs, uint64_t va, uint64_t size, struct account *acct, struct mdl **out)
{
	if (size == 0 || !is_aligned(va, PAGE_SIZE) || !is_aligned(size, PAGE_SIZE) || va + size < va)
		return rcInvalidArgument;
	struct mdl *m = mdl_new(MDL_DESCRIBED, VMM_FLAG_RWX_MASK, size, size / PAGE_SIZE, acct);
	if (!m)
		return rcOutOfMemory;
	m->space = vs;
	m->va = va;
	*out = m;
	return rcOk;
}

Retcode mdl_probe_and_lock(struct mdl *m, unsigned access, unsigned cache)
{
	if (m->kind != MDL_DESCRIBED)
		return rcBusy; /* locked already (or not a described range) */
	/* The range's memory type decides the charge (mm/frame.h): read it first, and have the
	 * pin insist on it (a range changed meanwhile is refused, not charged wrong). */
	struct vm_info vi;
	if (cache == MDL_CACHE_ANY && vm_query(m->space, m->va, &vi) == rcOk && vi.state != VMM_STATE_FREE)
		cache = vm_cache_mode(vi.flags);
	uint64_t charge = m->pages * (cache == MDL_CACHE_ANY ? 1 : frame_commit_cost(cache));
	if (charge_take(m->acct, charge) != rcOk)
		return rcOutOfMemory;
	if (account_charge(m->acct, ACCT_LOCKED, m->pages) != rcOk) {
		charge_release(m->acct, charge);
		return rcOutOfMemory;
	}
	Retcode rc = vm_pin_range(m->space, m->va, m->pages * PAGE_SIZE, access, cache, m);
	if (rc != rcOk) {
		account_uncharge(m->acct, ACCT_LOCKED, m->pages);
		charge_release(m->acct, charge);
		return rc;
	}
	m->kind = MDL_RAM;
	m->charge = charge;
	m->locked = m->pages;
	return rcOk;
}

void mdl_unlock(struct mdl *m)
{
	KASSERT_MSG(m->kind == MDL_RAM && m->space, "unlocking an MDL that is not a locked range");
	mdl_release_frames(m);
	m->kind = MDL_DESCRIBED;
}

Retcode mdl_build_for_pool(const void *buf, uint64_t size, struct mdl **out)
{
	uint64_t va = (uint64_t)(uintptr_t)buf, first = align_down(va, PAGE_SIZE), end;

	if (size == 0 || va < KPOOL_BASE || !align_up_checked(va + size, PAGE_SIZE, &end) ||
	    end > KPOOL_BASE + KPOOL_SIZE)
		return rcInvalidArgument;
	/* Every page must be mapped pool memory. */
	for (uint64_t a = first; a < end; a += PAGE_SIZE)
		if (!mm_is_address_valid((const void *)(uintptr_t)a))
			return rcInvalidArgument;
	struct mdl *m = mdl_new(MDL_RAM, VMM_FLAG_READ | VMM_FLAG_WRITE, size, (end - first) / PAGE_SIZE, NULL);
	if (!m)
		return rcOutOfMemory;
	for (uint64_t a = first; a < end; a += PAGE_SIZE) {
		uint64_t pa;
		mm_get_physical_address((const void *)(uintptr_t)a, &pa);
		if (mdl_append_run(m, pa >> PAGE_SHIFT, 1) != rcOk) {
			m->nruns = 0;
			mdl_free(m);
			return rcOutOfMemory;
		}
	}
	/* Pool pages are the pool's and charged by it; the pins make freeing the block while the
	 * MDL lives a loud kernel bug (pmm_free refuses pinned frames) instead of a silent one. */
	mdl_hold_frames(m);
	*out = m;
	return rcOk;
}

void *mdl_map_system(const struct mdl *m, unsigned cache)
{
	uint64_t va;

	if (m->kind != MDL_RAM || (cache & ~(unsigned)VMM_FLAG_CACHE_MASK) || (cache & (cache - 1)) ||
	    (cache && vm_cache_mode(cache) != m->cache))
		return NULL; /* (one memory type per frame: the MDL's) */
	for (uint32_t i = 0; i < m->nruns; i++)
		if (m->runs[i].pfn == MDL_FICTITIOUS)
			return NULL; /* the kernel takes no faults on its own mappings */
	unsigned prot = (m->max_prot & VMM_FLAG_WRITE) ? VMM_FLAG_READ | VMM_FLAG_WRITE : VMM_FLAG_READ;
	if (vm_map_mdl(&kernel_space, m, 0, m->pages, 0, prot | cache, m->max_prot, "mdl system", &va) != rcOk)
		return NULL;
	return (void *)(uintptr_t)va;
}

void mdl_unmap_system(void *va, const struct mdl *m)
{
	Retcode rc = vm_unmap(&kernel_space, (uint64_t)(uintptr_t)va, m->pages * PAGE_SIZE);
	KASSERT_MSG(rc == rcOk, "mdl_unmap_system(%p): %d", va, rc);
}
