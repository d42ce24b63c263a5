// SPDX-License-Identifier: MIT
#include <arch/pt.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <mm/bootmem.h>
#include <mm/kspace.h>

bool boot_mem_is_ram(enum boot_mem_type t)
{
	return t == BOOT_MEM_AVAILABLE || t == BOOT_MEM_ACPI_RECLAIM || t == BOOT_MEM_ACPI_NVS;
}

static void map_or_die(uint64_t va, uint64_t pa, uint64_t size, unsigned flags, enum pt_level max, const char *what)
{
	if (size == 0)
		return;
	Retcode rc = pt_map(&kernel_pt_root, va, pa, size, flags, max);
	if (rc != rcOk)
		panic("kspace: cannot map %s (%#llx..%#llx -> %#llx): error %d", what, (unsigned long long)va,
		      (unsigned long long)(va + size), (unsigned long long)pa, rc);
}

/*
 * Direct map of [base, end): read-write, no-execute, with the largest pages that fit.
 * The alias of the kernel's text and rodata is read-only, so the image cannot be changed
 * through it either.
 */
static void map_direct(uint64_t base, uint64_t end)
{
	const unsigned rw = MMU_READ | MMU_WRITE | MMU_GLOBAL, ro = MMU_READ | MMU_GLOBAL;
	uint64_t ro_start = kimage_to_phys(__kernel_start), ro_end = kimage_to_phys(__data_start);
	uint64_t a = MIN(MAX(base, ro_start), end), b = MAX(MIN(end, ro_end), a);

	map_or_die(DIRECT_MAP_BASE + base, base, a - base, rw, PT_LEVEL_PDPT, "direct map");
	map_or_die(DIRECT_MAP_BASE + a, a, b - a, ro, PT_LEVEL_PDPT, "direct map (kernel image alias)");
	map_or_die(DIRECT_MAP_BASE + b, b, end - b, rw, PT_LEVEL_PDPT, "direct map");
}

static void map_image(const char *start, const char *end, unsigned flags, const char *what)
{
	uint64_t va = (uint64_t)(uintptr_t)start;
	map_or_die(va, kimage_to_phys(start), (uint64_t)(end - start), flags | MMU_GLOBAL, PT_LEVEL_PT, what);
}

void kspace_init(const struct boot_info *bi)
{
	pt_set_frame_source(&bootmem_pt_source);
	if (pt_root_create(&kernel_pt_root, false) != rcOk)
		panic("kspace: no frame for the kernel PML4");

	/* Merge RAM ranges rounded outward to pages, then map each run once. */
	uint64_t run_base = 0, run_end = 0;
	for (unsigned i = 0; i <= bi->nr_mem; i++) {
		uint64_t b = 0, e = 0;
		if (i < bi->nr_mem) {
			if (!boot_mem_is_ram(bi->mem[i].type))
				continue;
			b = align_down(bi->mem[i].base, PAGE_SIZE);
			e = align_up(bi->mem[i].base + bi->mem[i].size, PAGE_SIZE);
			if (e > DIRECT_MAP_SIZE)
				e = DIRECT_MAP_SIZE;
			if (b >= e)
				continue;
			if (run_end > run_base && b <= run_end) {
				run_end = MAX(run_end, e);
				continue;
			}
		}
		if (run_end > run_base)
			map_direct(run_base, run_end);
		run_base = b;
		run_end = e;
	}

	/* The image, W^X: text R+X, rodata R, data and bss RW; the boot stack's guard page stays
	 * unmapped so that an overflow faults. */
	map_image(__text_start, __rodata_start, MMU_READ | MMU_EXEC, "kernel text");
	map_image(__rodata_start, __data_start, MMU_READ, "kernel rodata");
	map_image(__data_start, boot_stack_guard, MMU_READ | MMU_WRITE, "kernel data");
	map_image(boot_stack_bottom, __kernel_end, MMU_READ | MMU_WRITE, "kernel bss");

	pt_activate(&kernel_pt_root); /* the boot tables are unreachable from here on */
	bootmem_set_limit(UINT64_MAX);
}
