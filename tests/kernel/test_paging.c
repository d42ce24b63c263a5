// SPDX-License-Identifier: MIT
/* The kernel's own address space: W^X image, direct map of all RAM, boot tables gone. */
#include <arch/cpu.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <kernel/main.h>
#include <mm/kspace.h>
#include "ktest_util.h"

static uint64_t va_of(const void *p) { return (uint64_t)(uintptr_t)p; }

/* Every page of [start, end) maps with exactly `want` permissions (read/write/exec) and G. */
static unsigned count_wrong_pages(const char *start, const char *end, unsigned want)
{
	unsigned wrong = 0;

	for (uint64_t va = va_of(start); va < va_of(end); va += PAGE_SIZE) {
		struct pt_mapping m;
		if (!pt_translate(&kernel_pt_root, va, &m) ||
		    (m.mmu_flags & (MMU_PERM_MASK | MMU_GLOBAL | MMU_USER)) != (want | MMU_GLOBAL))
			wrong++;
		else if (m.pa != kimage_to_phys((const void *)(uintptr_t)va))
			wrong++;
	}
	return wrong;
}

KTEST(paging, image_text_is_read_exec)
{
	KT_EXPECT_EQ(count_wrong_pages(__text_start, __rodata_start, MMU_READ | MMU_EXEC), 0);
}

KTEST(paging, image_rodata_is_read_only_nx)
{
	KT_EXPECT_EQ(count_wrong_pages(__rodata_start, __data_start, MMU_READ), 0);
}

KTEST(paging, image_data_is_read_write_nx)
{
	KT_EXPECT_EQ(count_wrong_pages(__data_start, boot_stack_guard, MMU_READ | MMU_WRITE), 0);
	KT_EXPECT_EQ(count_wrong_pages(boot_stack_bottom, __kernel_end, MMU_READ | MMU_WRITE), 0);
}

KTEST(paging, boot_stack_guard_unmapped)
{
	struct fault_info fi;

	KT_EXPECT(!pt_translate(&kernel_pt_root, va_of(boot_stack_guard), NULL));
	KT_ASSERT(test_read_faults(va_of(boot_stack_guard) + 8, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_PF);
	KT_EXPECT_EQ(fi.error & PF_ERR_P, 0);
}

static void text_marker(void) {}

KTEST(paging, text_write_faults)
{
	struct fault_info fi;
	uint64_t target = va_of((const void *)text_marker);
	uint8_t before = *(volatile uint8_t *)(uintptr_t)target;

	KT_ASSERT(test_write_faults(target, 0xcc, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_PF);
	KT_EXPECT_EQ(fi.error & (PF_ERR_P | PF_ERR_W | PF_ERR_U), PF_ERR_P | PF_ERR_W);
	KT_EXPECT_EQ(fi.addr, target);
	KT_EXPECT_EQ(*(volatile uint8_t *)(uintptr_t)target, before);
}

static const uint8_t rodata_byte = 0x5a;

KTEST(paging, rodata_write_faults)
{
	struct fault_info fi;

	KT_ASSERT(test_write_faults(va_of(&rodata_byte), 0, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_PF);
	KT_EXPECT_EQ(fi.error & (PF_ERR_P | PF_ERR_W), PF_ERR_P | PF_ERR_W);
	KT_EXPECT_EQ(rodata_byte, 0x5a);
}

static uint8_t data_code[16] = { 0xc3 }; /* `ret`, in a data page */

KTEST(paging, data_exec_faults)
{
	struct fault_info fi;

	KT_ASSERT(test_exec_faults(va_of(data_code), &fi));
	KT_EXPECT_EQ(fi.vector, VEC_PF);
	KT_EXPECT_EQ(fi.error & (PF_ERR_P | PF_ERR_I), PF_ERR_P | PF_ERR_I);
	KT_EXPECT_EQ(fi.rip, va_of(data_code));
}

KTEST(paging, stack_exec_faults)
{
	struct fault_info fi;
	volatile uint8_t code[16] = { 0xc3 };

	KT_ASSERT(test_exec_faults(va_of((const void *)code), &fi));
	KT_EXPECT_EQ(fi.error & PF_ERR_I, PF_ERR_I);
}

KTEST(paging, directmap_covers_ram)
{
	unsigned missing = 0, wrong_pa = 0, executable = 0, ranges = 0;

	for (unsigned i = 0; i < boot_info.nr_mem; i++) {
		const struct boot_mem_range *r = &boot_info.mem[i];
		if (!boot_mem_is_ram(r->type))
			continue;
		ranges++;
		uint64_t start = align_up(r->base, PAGE_SIZE), end = align_down(r->base + r->size, PAGE_SIZE);
		/* The first and last page of the range and one page per 2 MiB in between. */
		for (uint64_t pa = start; pa < end; pa = pa == start ? align_up(pa + 1, SIZE_2M) : pa + SIZE_2M) {
			struct pt_mapping m;
			for (int k = 0; k < 2; k++) {
				uint64_t p = k == 0 ? pa : MIN(end - PAGE_SIZE, pa + SIZE_2M - PAGE_SIZE);
				if (!pt_translate(&kernel_pt_root, DIRECT_MAP_BASE + p, &m))
					missing++;
				else if (m.pa != p)
					wrong_pa++;
				else if (m.mmu_flags & MMU_EXEC)
					executable++;
			}
		}
	}
	KT_EXPECT_NE(ranges, 0);
	KT_EXPECT_EQ(missing, 0);
	KT_EXPECT_EQ(wrong_pa, 0);
	KT_EXPECT_EQ(executable, 0);
}

KTEST(paging, directmap_uses_large_pages)
{
	unsigned small = 0, big = 0, huge = 0;
	bool huge_possible = false;
	uint64_t img_start = kimage_to_phys(__kernel_start), img_end = kimage_to_phys(__kernel_end);

	for (unsigned i = 0; i < boot_info.nr_mem; i++) {
		const struct boot_mem_range *r = &boot_info.mem[i];
		if (r->type != BOOT_MEM_AVAILABLE)
			continue;
		if (align_up(r->base, SIZE_1G) + SIZE_1G <= r->base + r->size)
			huge_possible = true;
		for (uint64_t pa = align_up(r->base, SIZE_2M); pa + SIZE_2M <= r->base + r->size; pa += SIZE_2M) {
			struct pt_mapping m;
			if (ranges_overlap(pa, SIZE_2M, img_start, img_end - img_start))
				continue; /* the image alias has its own permissions */
			if (!pt_translate(&kernel_pt_root, DIRECT_MAP_BASE + pa, &m) || m.size < SIZE_2M)
				small++;
			else if (m.size == SIZE_1G)
				huge++;
			else
				big++;
		}
	}
	KT_EXPECT_EQ(small, 0);
	KT_EXPECT_NE(big + huge, 0);
	if (cpu_features.page_1g && huge_possible)
		KT_EXPECT_NE(huge, 0);
	else
		KT_EXPECT_EQ(huge, 0);
}

KTEST(paging, directmap_image_alias_read_only)
{
	struct fault_info fi;
	uint64_t alias = va_of(phys_to_virt(kimage_to_phys((const void *)text_marker)));
	struct pt_mapping m;

	KT_ASSERT(pt_translate(&kernel_pt_root, alias, &m));
	KT_EXPECT_EQ(m.mmu_flags & (MMU_WRITE | MMU_EXEC), 0);
	KT_EXPECT(test_write_faults(alias, 0xcc, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_PF);
}

KTEST(paging, boot_tables_dropped)
{
	struct fault_info fi;

	KT_EXPECT_EQ(read_cr3() & PTE_ADDR_MASK, kernel_pt_root.pml4_pa);
	/* The boot tables identity-mapped 0..4 GiB; nothing in the user half is mapped now. */
	KT_EXPECT(!pt_translate(&kernel_pt_root, KERNEL_LOAD_PA, NULL));
	KT_EXPECT(!pt_translate(&kernel_pt_root, 0, NULL));
	KT_ASSERT(test_read_faults(KERNEL_LOAD_PA, &fi));
	KT_EXPECT_EQ(fi.addr, KERNEL_LOAD_PA);
}

KTEST(paging, null_page_faults)
{
	struct fault_info fi;

	KT_ASSERT(test_read_faults(0, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_PF);
	KT_EXPECT_EQ(fi.addr, 0);
	KT_EXPECT_EQ(fi.error & (PF_ERR_P | PF_ERR_W | PF_ERR_U), 0);
}
