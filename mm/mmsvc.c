// SPDX-License-Identifier: MIT
/* NT-style kernel memory services (see mm/mm.h). */
#include <arch/cpu.h>
#include <arch/pt.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/vm.h>

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

static int found_leaf(const struct pt_leaf *leaf, void *arg)
{
	(void)leaf;
	(void)arg;
	return 1;
}

bool mm_phys_is_io(uint64_t first, uint64_t end)
{
	/* Memory the direct map covers (RAM, ACPI tables, the edges of those ranges) is mapped
	 * write-back there: a second, uncached mapping would give it two memory types. */
	static const struct pt_walk_ops any_leaf = { .leaf = found_leaf };

	if (first >= end || end > DIRECT_MAP_SIZE || (cpu_features.phys_bits < 64 && end > (1ull << cpu_features.phys_bits)))
		return false;
	/* One walk of the direct map over the range (large pages, absent levels skipped). */
	return pt_walk_range(&kernel_pt_root, DIRECT_MAP_BASE + first, end - first, &any_leaf, NULL) == 0;
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
