// SPDX-License-Identifier: MIT
/* PTE encoding/decoding and address splitting (arch/x86_64/pte.c, arch/pte.h). */
#include <arch/cpu.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include <knmm/ktest.h>
#include <knmm/layout.h>
#include <string.h>

KTEST(pte, address_splitting)
{
	uint64_t va = 0xffffffff80123456ull;

	KT_EXPECT_EQ(pt_index(va, PT_LEVEL_PML4), 511);
	KT_EXPECT_EQ(pt_index(va, PT_LEVEL_PDPT), 510);
	KT_EXPECT_EQ(pt_index(va, PT_LEVEL_PD), 0);
	KT_EXPECT_EQ(pt_index(va, PT_LEVEL_PT), 0x123);
	KT_EXPECT_EQ(pt_index(DIRECT_MAP_BASE, PT_LEVEL_PML4), 256);
	KT_EXPECT_EQ(pt_index(0x00007fffffffffffull, PT_LEVEL_PML4), 255);
	KT_EXPECT_EQ(pt_level_size(PT_LEVEL_PT), PAGE_SIZE);
	KT_EXPECT_EQ(pt_level_size(PT_LEVEL_PD), SIZE_2M);
	KT_EXPECT_EQ(pt_level_size(PT_LEVEL_PDPT), SIZE_1G);
	KT_EXPECT_EQ(pt_level_size(PT_LEVEL_PML4), 1ull << 39);
}

KTEST(pte, canonical_addresses)
{
	KT_EXPECT(va_is_canonical(0));
	KT_EXPECT(va_is_canonical(0x00007fffffffffffull));
	KT_EXPECT(!va_is_canonical(0x0000800000000000ull));
	KT_EXPECT(!va_is_canonical(0xffff7fffffffffffull));
	KT_EXPECT(va_is_canonical(0xffff800000000000ull));
	KT_EXPECT(va_is_canonical(UINT64_MAX));
	KT_EXPECT_EQ(va_canonicalize(0x0000800000000000ull), 0xffff800000000000ull);
	KT_EXPECT_EQ(va_canonicalize(0x00007ffffffff000ull), 0x00007ffffffff000ull);
}

KTEST(pte, leaf_bits)
{
	pte_t e = pte_make_leaf(0x123456000ull, MMU_READ | MMU_WRITE | MMU_USER, PT_LEVEL_PT);

	KT_EXPECT(pte_present(e) && pte_writable(e) && pte_user(e) && pte_nx(e) && !pte_global(e));
	KT_EXPECT_EQ(pte_leaf_pa(e, PT_LEVEL_PT), 0x123456000ull);
	KT_EXPECT_EQ(e & (PTE_PS | PTE_PWT | PTE_PCD), 0);
	e = pte_make_leaf(0x40000000ull, MMU_READ | MMU_EXEC | MMU_GLOBAL, PT_LEVEL_PDPT);
	KT_EXPECT(pte_is_leaf(e, PT_LEVEL_PDPT) && !pte_writable(e) && !pte_nx(e) && pte_global(e));
	KT_EXPECT_EQ(pte_leaf_pa(e, PT_LEVEL_PDPT), 0x40000000ull);
	/* A table entry is never a leaf above level 0 and lets everything through. */
	pte_t tbl = pte_make_table(0x5000, true);
	KT_EXPECT(!pte_is_leaf(tbl, PT_LEVEL_PD));
	KT_EXPECT(pte_writable(tbl) && pte_user(tbl) && !pte_nx(tbl));
	KT_EXPECT_EQ(pte_table_pa(tbl), 0x5000);
	/* Physical bits beyond the field never leak into flags. */
	e = pte_make_leaf(0x7ff0000000001fffull, MMU_READ, PT_LEVEL_PT);
	KT_EXPECT_EQ(e, 0x1000 | PTE_P | PTE_NX);
}

/* Every flag combination survives encode + decode at every leaf level. */
KTEST(pte, flags_round_trip)
{
	static const unsigned caches[] = { MMU_CACHE_WB, MMU_CACHE_WT, MMU_CACHE_WC, MMU_CACHE_UCM, MMU_CACHE_UC };
	unsigned bad = 0, n = 0;

	for (enum pt_level lvl = PT_LEVEL_PT; lvl <= PT_LEVEL_PDPT; lvl++)
		for (unsigned perm = 0; perm < 16; perm++)
			for (unsigned c = 0; c < ARRAY_SIZE(caches); c++) {
				unsigned f = MMU_READ | (perm & 1 ? MMU_WRITE : 0) | (perm & 2 ? MMU_EXEC : 0) |
					     (perm & 4 ? MMU_USER : 0) | (perm & 8 ? MMU_GLOBAL : 0) | caches[c];
				uint64_t pa = pt_level_size(lvl) * 3;
				pte_t e = pte_make_leaf(pa, f, lvl);
				n++;
				if (pte_leaf_mmu_flags(e, lvl) != f || pte_leaf_pa(e, lvl) != pa)
					bad++;
			}
	KT_EXPECT_EQ(n, 3 * 16 * 5);
	KT_EXPECT_EQ(bad, 0);
}

KTEST(pte, cache_modes_select_pat_entries)
{
	/* The PAT bit moves from bit 7 (4 KiB) to bit 12 (large pages). */
	pte_t e4 = pte_make_leaf(0x1000, MMU_READ | MMU_CACHE_WC, PT_LEVEL_PT);
	pte_t e2 = pte_make_leaf(0x200000, MMU_READ | MMU_CACHE_WC, PT_LEVEL_PD);
	KT_EXPECT(e4 & PTE_PAT_4K);
	KT_EXPECT(e2 & PTE_PAT_BIG);
	KT_EXPECT(e2 & PTE_PS);
	KT_EXPECT_EQ(pte_pat_index(e4, PT_LEVEL_PT), PAT_INDEX_WC);
	KT_EXPECT_EQ(pte_pat_index(e2, PT_LEVEL_PD), PAT_INDEX_WC);
	KT_EXPECT_EQ(pte_make_leaf(0, MMU_READ | MMU_CACHE_UC, PT_LEVEL_PT) & (PTE_PCD | PTE_PWT), PTE_PCD | PTE_PWT);
	KT_EXPECT_EQ(pte_make_leaf(0, MMU_READ | MMU_CACHE_UCM, PT_LEVEL_PT) & (PTE_PCD | PTE_PWT), PTE_PCD);
	KT_EXPECT_EQ(pte_make_leaf(0, MMU_READ | MMU_CACHE_WT, PT_LEVEL_PT) & (PTE_PCD | PTE_PWT), PTE_PWT);
	KT_EXPECT_EQ(pte_make_leaf(0, MMU_READ, PT_LEVEL_PT) & (PTE_PCD | PTE_PWT | PTE_PAT_4K), 0);
	/* The PAT MSR value holds the type each index claims. */
	KT_EXPECT_EQ((PAT_MSR_VALUE >> (8 * PAT_INDEX_WB)) & 0xff, PAT_TYPE_WB);
	KT_EXPECT_EQ((PAT_MSR_VALUE >> (8 * PAT_INDEX_WT)) & 0xff, PAT_TYPE_WT);
	KT_EXPECT_EQ((PAT_MSR_VALUE >> (8 * PAT_INDEX_WC)) & 0xff, PAT_TYPE_WC);
	KT_EXPECT_EQ((PAT_MSR_VALUE >> (8 * PAT_INDEX_UCM)) & 0xff, PAT_TYPE_UCM);
	KT_EXPECT_EQ((PAT_MSR_VALUE >> (8 * PAT_INDEX_UC)) & 0xff, PAT_TYPE_UC);
}

KTEST(pte, describe)
{
	char buf[96];

	pte_describe(pte_make_leaf(0x1000, MMU_READ | MMU_WRITE | MMU_USER | MMU_CACHE_WC, PT_LEVEL_PT) | PTE_A | PTE_D,
		     PT_LEVEL_PT, buf, sizeof(buf));
	KT_EXPECT(strcmp(buf, "page  0x1000  P RW US A D NX PAT=4 (WC)") == 0);
	pte_describe(pte_make_leaf(0x200000, MMU_READ | MMU_EXEC | MMU_GLOBAL | MMU_CACHE_UC, PT_LEVEL_PD), PT_LEVEL_PD,
		     buf, sizeof(buf));
	KT_EXPECT(strcmp(buf, "page  0x200000  P RO S PWT PCD PS G PAT=3 (UC)") == 0);
	pte_describe(pte_make_table(0x2000, false), PT_LEVEL_PML4, buf, sizeof(buf));
	KT_EXPECT(strcmp(buf, "table 0x2000  P RW S") == 0);
	pte_describe(0x1234, PT_LEVEL_PD, buf, sizeof(buf)); /* bits, but no P */
	KT_EXPECT(strcmp(buf, "not present") == 0);
	/* The longest text there is fits PTE_DESCRIBE_SIZE. */
	pte_describe(pte_make_leaf(PTE_ADDR_MASK_1G, MMU_READ | MMU_WRITE | MMU_USER | MMU_GLOBAL | MMU_CACHE_UCM,
				   PT_LEVEL_PDPT) |
			     PTE_A | PTE_D | PTE_PWT | PTE_PCD,
		     PT_LEVEL_PDPT, buf, sizeof(buf));
	KT_EXPECT(strlen(buf) + 1 <= PTE_DESCRIBE_SIZE);
	pte_describe(0, PT_LEVEL_PT, buf, 8); /* truncates safely */
	KT_EXPECT_EQ(strlen(buf), 7);
	pte_describe(pte_make_leaf(0x1000, MMU_READ, PT_LEVEL_PT), PT_LEVEL_PT, buf, 20);
	KT_EXPECT_EQ(strlen(buf), 19);
}
