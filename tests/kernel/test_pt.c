// SPDX-License-Identifier: MIT
/*
 * The page-table layer on private roots: map / unmap / protect / translate round trips with
 * 4 KiB, 2 MiB and 1 GiB pages, splitting, argument checks, rollback on allocation failure,
 * the range walk, and TLB invalidation on an active root.
 */
#include <arch/cpu.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include "ktest_util.h"

#define RW (MMU_READ | MMU_WRITE)

/* A user-type root to play with; never holds user-accessible pages. */
static bool root_begin(struct ktest_ctx *t, struct pt_root *r, uint64_t *tables_before)
{
	*tables_before = pt_table_pages();
	if (pt_root_create(r, true) != rcOk) {
		ktest_fail(t, __FILE__, __LINE__, "pt_root_create failed");
		return false;
	}
	return true;
}

static void root_end(struct ktest_ctx *t, struct pt_root *r, uint64_t tables_before)
{
	pt_root_destroy(r);
	KT_EXPECT_EQ(pt_table_pages(), tables_before);
}

static bool maps(const struct pt_root *r, uint64_t va, uint64_t pa, uint64_t size)
{
	struct pt_mapping m;
	return pt_translate(r, va, &m) && m.pa == pa && m.size == size;
}

KTEST(pt, map_translate_unmap_4k)
{
	struct pt_root r;
	uint64_t before;

	KT_ASSERT(root_begin(t, &r, &before));
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x12345000, 3 * PAGE_SIZE, RW, PT_LEVEL_PDPT), rcOk);
	KT_EXPECT(maps(&r, 0x400000, 0x12345000, PAGE_SIZE));
	KT_EXPECT(maps(&r, 0x402abc, 0x12347abc, PAGE_SIZE));
	KT_EXPECT(!pt_translate(&r, 0x403000, NULL));
	KT_EXPECT(!pt_translate(&r, 0x3ff000, NULL));
	/* PML4 + PDPT + PD + PT */
	KT_EXPECT_EQ(pt_table_pages(), before + 4);
	KT_EXPECT_EQ(pt_unmap(&r, 0x400000, 3 * PAGE_SIZE, NULL, NULL), rcOk);
	KT_EXPECT(!pt_translate(&r, 0x400000, NULL));
	/* Empty tables are freed: only the PML4 is left. */
	KT_EXPECT_EQ(pt_table_pages(), before + 1);
	root_end(t, &r, before);
}

KTEST(pt, map_translate_unmap_2m)
{
	struct pt_root r;
	uint64_t before;

	KT_ASSERT(root_begin(t, &r, &before));
	KT_EXPECT_EQ(pt_map(&r, 0x40000000, 0x80000000, SIZE_2M * 2, RW, PT_LEVEL_PD), rcOk);
	KT_EXPECT(maps(&r, 0x40000000, 0x80000000, SIZE_2M));
	KT_EXPECT(maps(&r, 0x40312345, 0x80312345, SIZE_2M));
	KT_EXPECT_EQ(pt_table_pages(), before + 3); /* no PT needed */
	KT_EXPECT_EQ(pt_unmap(&r, 0x40000000, SIZE_2M * 2, NULL, NULL), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), before + 1);
	root_end(t, &r, before);
}

KTEST(pt, map_translate_unmap_1g)
{
	struct pt_root r;
	uint64_t before;

	if (!cpu_features.page_1g)
		KT_SKIP("CPU has no 1 GiB pages");
	KT_ASSERT(root_begin(t, &r, &before));
	KT_EXPECT_EQ(pt_map(&r, GiB(8), GiB(3), GiB(1), RW, PT_LEVEL_PDPT), rcOk);
	KT_EXPECT(maps(&r, GiB(8) + 0x1234567, GiB(3) + 0x1234567, SIZE_1G));
	KT_EXPECT_EQ(pt_table_pages(), before + 2);
	KT_EXPECT_EQ(pt_unmap(&r, GiB(8), GiB(1), NULL, NULL), rcOk);
	root_end(t, &r, before);
}

/* The largest page that fits is chosen at every step. */
KTEST(pt, map_mixed_sizes)
{
	struct pt_root r;
	uint64_t before, base = GiB(1) - PAGE_SIZE, size = PAGE_SIZE + GiB(1) + SIZE_2M + PAGE_SIZE;
	uint64_t top = cpu_features.page_1g ? SIZE_1G : SIZE_2M;

	KT_ASSERT(root_begin(t, &r, &before));
	KT_ASSERT_EQ(pt_map(&r, base, base, size, RW, PT_LEVEL_PDPT), rcOk);
	KT_EXPECT(maps(&r, base, base, PAGE_SIZE));
	KT_EXPECT(maps(&r, GiB(1), GiB(1), top));
	KT_EXPECT(maps(&r, GiB(2) - 1, GiB(2) - 1, top));
	KT_EXPECT(maps(&r, GiB(2), GiB(2), SIZE_2M));
	KT_EXPECT(maps(&r, GiB(2) + SIZE_2M, GiB(2) + SIZE_2M, PAGE_SIZE));
	KT_EXPECT(!pt_translate(&r, base + size, NULL));
	KT_EXPECT_EQ(pt_unmap(&r, base, size, NULL, NULL), rcOk);
	root_end(t, &r, before);
}

KTEST(pt, map_refuses_overlap_and_changes_nothing)
{
	struct pt_root r;
	uint64_t before, tables;

	KT_ASSERT(root_begin(t, &r, &before));
	KT_ASSERT_EQ(pt_map(&r, 0x600000, 0x1000000, PAGE_SIZE, RW, PT_LEVEL_PT), rcOk);
	tables = pt_table_pages();
	KT_EXPECT_EQ(pt_map(&r, 0x5ff000, 0x2000000, 3 * PAGE_SIZE, MMU_READ, PT_LEVEL_PT), rcAlreadyExists);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x2000000, SIZE_2M * 2, MMU_READ, PT_LEVEL_PD), rcAlreadyExists);
	KT_EXPECT(maps(&r, 0x600000, 0x1000000, PAGE_SIZE));
	KT_EXPECT(!pt_translate(&r, 0x5ff000, NULL));
	KT_EXPECT(!pt_translate(&r, 0x601000, NULL));
	KT_EXPECT_EQ(pt_table_pages(), tables);
	KT_EXPECT_EQ(pt_unmap(&r, 0x600000, PAGE_SIZE, NULL, NULL), rcOk);
	root_end(t, &r, before);
}

KTEST(pt, map_rejects_bad_arguments)
{
	struct pt_root r;
	uint64_t before;

	KT_ASSERT(root_begin(t, &r, &before));
	KT_EXPECT_EQ(pt_map(&r, 0x400001, 0x1000, PAGE_SIZE, RW, PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1001, PAGE_SIZE, RW, PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1000, PAGE_SIZE + 1, RW, PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1000, 0, RW, PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0xfffffffffffff000ull, 0x1000, 2 * PAGE_SIZE, RW, PT_LEVEL_PT), rcInvalidArgument);
	/* crosses the end of the lower canonical half */
	KT_EXPECT_EQ(pt_map(&r, 0x00007ffffffff000ull, 0x1000, 2 * PAGE_SIZE, RW, PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0x0000800000000000ull, 0x1000, PAGE_SIZE, RW, PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1000, PAGE_SIZE, MMU_WRITE, PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1000, PAGE_SIZE, MMU_READ | (7u << MMU_CACHE_SHIFT), PT_LEVEL_PT),
		     rcInvalidArgument);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1000, PAGE_SIZE, MMU_READ | (1u << 20), PT_LEVEL_PT), rcInvalidArgument);
	KT_EXPECT_EQ(pt_unmap(&r, 0x400800, PAGE_SIZE, NULL, NULL), rcInvalidArgument);
	KT_EXPECT_EQ(pt_protect(&r, 0x400000, 0, MMU_READ), rcInvalidArgument);
	KT_EXPECT_EQ(pt_table_pages(), before + 1);
	root_end(t, &r, before);
}

struct collected {
	unsigned n;
	uint64_t va[8], pa[8], size[8];
};

static void collect(uint64_t va, uint64_t pa, uint64_t size, void *arg)
{
	struct collected *c = arg;
	if (c->n < 8) {
		c->va[c->n] = va;
		c->pa[c->n] = pa;
		c->size[c->n] = size;
	}
	c->n++;
}

KTEST(pt, unmap_splits_large_pages)
{
	struct pt_root r;
	uint64_t before;
	struct collected c = { 0 };

	KT_ASSERT(root_begin(t, &r, &before));
	KT_ASSERT_EQ(pt_map(&r, 0x40000000, 0x80000000, SIZE_2M, RW | MMU_CACHE_WC, PT_LEVEL_PD), rcOk);
	KT_EXPECT_EQ(pt_unmap(&r, 0x40001000, PAGE_SIZE, collect, &c), rcOk);
	KT_EXPECT_EQ(c.n, 1);
	KT_EXPECT_EQ(c.va[0], 0x40001000);
	KT_EXPECT_EQ(c.pa[0], 0x80001000);
	KT_EXPECT_EQ(c.size[0], PAGE_SIZE);
	KT_EXPECT(maps(&r, 0x40000000, 0x80000000, PAGE_SIZE));
	KT_EXPECT(!pt_translate(&r, 0x40001000, NULL));
	KT_EXPECT(maps(&r, 0x40002000, 0x80002000, PAGE_SIZE));
	KT_EXPECT(maps(&r, 0x401ff000, 0x801ff000, PAGE_SIZE));
	struct pt_mapping m;
	KT_ASSERT(pt_translate(&r, 0x40100000, &m));
	KT_EXPECT_EQ(m.mmu_flags & ~MMU_GLOBAL, RW | MMU_CACHE_WC); /* attributes survive the split */
	KT_EXPECT_EQ(pt_unmap(&r, 0x40000000, SIZE_2M, NULL, NULL), rcOk);
	root_end(t, &r, before);
}

KTEST(pt, protect_changes_flags_and_cache_bits)
{
	static const unsigned modes[] = { MMU_CACHE_WB, MMU_CACHE_WT, MMU_CACHE_WC, MMU_CACHE_UCM, MMU_CACHE_UC };
	static const unsigned pat_index[] = { PAT_INDEX_WB, PAT_INDEX_WT, PAT_INDEX_WC, PAT_INDEX_UCM, PAT_INDEX_UC };
	struct pt_root r;
	uint64_t before;

	KT_ASSERT(root_begin(t, &r, &before));
	KT_ASSERT_EQ(pt_map(&r, 0x400000, 0x1000000, 4 * PAGE_SIZE, RW, PT_LEVEL_PT), rcOk);
	KT_ASSERT_EQ(pt_map(&r, 0x40000000, 0x80000000, SIZE_2M, RW, PT_LEVEL_PD), rcOk);
	for (unsigned i = 0; i < ARRAY_SIZE(modes); i++) {
		struct pt_trace tr;
		KT_EXPECT_EQ(pt_protect(&r, 0x401000, PAGE_SIZE, MMU_READ | MMU_EXEC | modes[i]), rcOk);
		pt_trace(&r, 0x401000, &tr);
		KT_ASSERT_EQ(tr.n, 4);
		KT_EXPECT_EQ(pte_pat_index(tr.step[3].entry, PT_LEVEL_PT), pat_index[i]);
		KT_EXPECT(!pte_writable(tr.step[3].entry));
		KT_EXPECT(!pte_nx(tr.step[3].entry));

		KT_EXPECT_EQ(pt_protect(&r, 0x40000000, SIZE_2M, MMU_READ | modes[i]), rcOk);
		pt_trace(&r, 0x40000000, &tr);
		KT_ASSERT_EQ(tr.n, 3);
		KT_EXPECT_EQ(pte_pat_index(tr.step[2].entry, PT_LEVEL_PD), pat_index[i]);
		KT_EXPECT(pte_nx(tr.step[2].entry));
	}
	/* Neighbours keep their flags. */
	struct pt_mapping m;
	KT_ASSERT(pt_translate(&r, 0x400000, &m));
	KT_EXPECT_EQ(m.mmu_flags, RW);
	KT_ASSERT(pt_translate(&r, 0x402000, &m));
	KT_EXPECT_EQ(m.mmu_flags, RW);
	KT_EXPECT_EQ(pt_unmap(&r, 0x400000, 4 * PAGE_SIZE, NULL, NULL), rcOk);
	KT_EXPECT_EQ(pt_unmap(&r, 0x40000000, SIZE_2M, NULL, NULL), rcOk);
	root_end(t, &r, before);
}

struct walk_log {
	unsigned n;
	char kind[16];
	uint64_t start[16], end[16];
};

static int log_leaf(const struct pt_leaf *l, void *arg)
{
	struct walk_log *w = arg;
	if (w->n < 16) {
		w->kind[w->n] = 'L';
		w->start[w->n] = l->va;
		w->end[w->n] = l->va + l->size;
	}
	w->n++;
	return 0;
}

static int log_hole(uint64_t start, uint64_t end, void *arg)
{
	struct walk_log *w = arg;
	if (w->n < 16) {
		w->kind[w->n] = 'H';
		w->start[w->n] = start;
		w->end[w->n] = end;
	}
	w->n++;
	return 0;
}

/* A 64 TiB walk with two pages mapped is five callbacks: hole, leaf, hole, leaf, hole. */
KTEST(pt, walk_range_reports_leaves_and_maximal_holes)
{
	static const struct pt_walk_ops ops = { .leaf = log_leaf, .hole = log_hole };
	struct pt_root r;
	uint64_t before;
	struct walk_log w = { 0 };
	uint64_t a = 0x7f0000001000ull, b = GiB(300);

	KT_ASSERT(root_begin(t, &r, &before));
	KT_ASSERT_EQ(pt_map(&r, b, 0x5000, PAGE_SIZE, RW, PT_LEVEL_PT), rcOk);
	KT_ASSERT_EQ(pt_map(&r, a, 0x6000, PAGE_SIZE, RW, PT_LEVEL_PT), rcOk);
	KT_EXPECT_EQ(pt_walk_range(&r, PAGE_SIZE, USER_END - PAGE_SIZE, &ops, &w), 0);
	KT_ASSERT_EQ(w.n, 5);
	KT_EXPECT(w.kind[0] == 'H' && w.start[0] == PAGE_SIZE && w.end[0] == b);
	KT_EXPECT(w.kind[1] == 'L' && w.start[1] == b && w.end[1] == b + PAGE_SIZE);
	KT_EXPECT(w.kind[2] == 'H' && w.start[2] == b + PAGE_SIZE && w.end[2] == a);
	KT_EXPECT(w.kind[3] == 'L' && w.start[3] == a);
	KT_EXPECT(w.kind[4] == 'H' && w.start[4] == a + PAGE_SIZE && w.end[4] == USER_END);
	KT_EXPECT_EQ(pt_unmap(&r, PAGE_SIZE, USER_END - PAGE_SIZE, NULL, NULL), rcOk);
	root_end(t, &r, before);
}

KTEST(pt, out_of_memory_rolls_back)
{
	struct pt_root r;
	uint64_t before;

	KT_ASSERT(root_begin(t, &r, &before));
	/* Three 4 KiB pages spread over three page-directory entries need PDPT + PD + 3 PTs. */
	for (unsigned budget = 0; budget < 5; budget++) {
		test_tables_fail_after(budget);
		KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1000000, 2 * SIZE_2M + PAGE_SIZE, RW, PT_LEVEL_PT), rcOutOfMemory);
		KT_EXPECT_EQ(pt_table_pages(), before + 1);
		KT_EXPECT(!pt_translate(&r, 0x400000, NULL));
	}
	test_tables_fail_after(5);
	KT_EXPECT_EQ(pt_map(&r, 0x400000, 0x1000000, 2 * SIZE_2M + PAGE_SIZE, RW, PT_LEVEL_PT), rcOk);
	test_tables_restore();
	KT_EXPECT_EQ(pt_unmap(&r, 0x400000, 2 * SIZE_2M + PAGE_SIZE, NULL, NULL), rcOk);
	root_end(t, &r, before);
}

/* On the active root, unmap/map/protect take effect at once: the TLB is invalidated. */
KTEST(pt, tlb_invalidation_on_active_root)
{
	struct pt_root r;
	uint64_t before, va = 0x10000000;
	uint64_t fa = test_frame_alloc(), fb = test_frame_alloc();
	struct fault_info fi;

	KT_ASSERT(fa && fb);
	memset(phys_to_virt(fa), 0xaa, PAGE_SIZE);
	memset(phys_to_virt(fb), 0xbb, PAGE_SIZE);
	KT_ASSERT(root_begin(t, &r, &before));
	/* Supervisor pages in the user half: SMAP does not apply to them. */
	KT_ASSERT_EQ(pt_map(&r, va, fa, PAGE_SIZE, RW, PT_LEVEL_PT), rcOk);
	pt_activate(&r);
	KT_EXPECT_EQ(*(volatile uint8_t *)(uintptr_t)va, 0xaa);
	KT_EXPECT_EQ(pt_unmap(&r, va, PAGE_SIZE, NULL, NULL), rcOk);
	KT_EXPECT(test_read_faults(va, &fi));
	KT_EXPECT_EQ(pt_map(&r, va, fb, PAGE_SIZE, RW, PT_LEVEL_PT), rcOk);
	KT_EXPECT_EQ(*(volatile uint8_t *)(uintptr_t)va, 0xbb);
	*(volatile uint8_t *)(uintptr_t)va = 0xcc;
	KT_EXPECT_EQ(pt_protect(&r, va, PAGE_SIZE, MMU_READ), rcOk);
	KT_EXPECT(test_write_faults(va, 0xdd, &fi));
	KT_EXPECT_EQ(fi.error & (PF_ERR_P | PF_ERR_W), PF_ERR_P | PF_ERR_W);
	KT_EXPECT_EQ(*(volatile uint8_t *)(uintptr_t)va, 0xcc);
	pt_activate(&kernel_pt_root);
	KT_EXPECT_EQ(pt_unmap(&r, va, PAGE_SIZE, NULL, NULL), rcOk);
	root_end(t, &r, before);
	test_frame_free(fa);
	test_frame_free(fb);
}

KTEST(pt, trace_decodes_each_level)
{
	struct pt_trace tr;
	char buf[96];

	pt_trace(&kernel_pt_root, (uint64_t)(uintptr_t)&pt_trace, &tr);
	KT_ASSERT_EQ(tr.n, 4);
	KT_EXPECT_EQ(tr.step[0].level, PT_LEVEL_PML4);
	KT_EXPECT_EQ(tr.step[0].index, 511);
	KT_EXPECT_EQ(tr.step[0].table_pa, kernel_pt_root.pml4_pa);
	KT_EXPECT(strcmp(tr.step[0].level_name, "PML4") == 0 && strcmp(tr.step[3].level_name, "PT") == 0);
	KT_EXPECT(pte_is_leaf(tr.step[3].entry, PT_LEVEL_PT));
	pte_describe(tr.step[3].entry, PT_LEVEL_PT, buf, sizeof(buf));
	KT_EXPECT(strcmp(buf, tr.step[3].text) == 0);
	KT_EXPECT(strncmp(buf, "page ", 5) == 0);
	KT_EXPECT(strstr(buf, "  P RO S") != NULL); /* kernel text: read-only, supervisor */
	KT_EXPECT(strstr(buf, " G") != NULL && strstr(buf, " NX") == NULL);
	KT_EXPECT(strncmp(tr.step[0].text, "table ", 6) == 0);
}

/* A split 2 MiB page whose 4 KiB entries agree again collapses back, freeing its table. */
KTEST(pt, collapse_undoes_a_split)
{
	struct pt_root r;
	uint64_t before, tables;

	KT_ASSERT(root_begin(t, &r, &before));
	KT_ASSERT_EQ(pt_map(&r, 0x40000000, 0x80000000, SIZE_2M, RW, PT_LEVEL_PD), rcOk);
	tables = pt_table_pages();
	KT_EXPECT_EQ(pt_protect(&r, 0x40005000, PAGE_SIZE, MMU_READ | MMU_CACHE_UC), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables + 1);
	pt_collapse(&r, 0x40005000); /* attributes still differ: stays split */
	KT_EXPECT(maps(&r, 0x40005000, 0x80005000, PAGE_SIZE));
	KT_EXPECT_EQ(pt_protect(&r, 0x40005000, PAGE_SIZE, RW), rcOk);
	pt_collapse(&r, 0x40005000);
	KT_EXPECT(maps(&r, 0x40005000, 0x80005000, SIZE_2M));
	KT_EXPECT_EQ(pt_table_pages(), tables);
	/* A hole also prevents it. */
	KT_EXPECT_EQ(pt_unmap(&r, 0x40001000, PAGE_SIZE, NULL, NULL), rcOk);
	pt_collapse(&r, 0x40000000);
	KT_EXPECT(!pt_translate(&r, 0x40001000, NULL));
	KT_EXPECT(maps(&r, 0x40002000, 0x80002000, PAGE_SIZE));
	KT_EXPECT_EQ(pt_unmap(&r, 0x40000000, SIZE_2M, NULL, NULL), rcOk);
	root_end(t, &r, before);
}
