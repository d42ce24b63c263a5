// SPDX-License-Identifier: MIT
/*
 * The physical page manager on the real memory map (every QEMU size: 64 MiB to 256 GiB).
 * The harness also checks that each test leaves the free-page count as it found it.
 */
#include <arch/pt.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include <kernel/main.h>
#include <mm/kspace.h>
#include <mm/pmm.h>
#include "ktest_util.h"

static void expect_sound(struct ktest_ctx *t)
{
	char why[160] = "";
	bool ok = pmm_check(&pmm_main, why, sizeof(why));
	if (!ok)
		ktest_fail(t, __FILE__, __LINE__, "pmm_check: %s", why);
	t->checks++;
}

KTEST(pmm, invariants_on_the_real_map)
{
	struct pmm_stats st;

	expect_sound(t);
	pmm_get_stats(&pmm_main, &st);
	KT_EXPECT_EQ(st.total, mem_usable_bytes >> PAGE_SHIFT);
	uint64_t sum = 0, listed = 0;
	for (unsigned s = 0; s < PAGE_STATE_COUNT; s++)
		sum += st.state[s];
	KT_EXPECT_EQ(sum, st.total);
	KT_EXPECT_EQ(st.state[PAGE_FREE], st.free);
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
			listed += st.free_blocks[z][o] << o;
	KT_EXPECT_EQ(listed + st.pcp, st.free);
	KT_EXPECT_GE(st.state[PAGE_TABLE], 1);
	KT_EXPECT_GE(st.state[PAGE_KERNEL], 1);
}

KTEST(pmm, boot_frames_have_their_state)
{
	uint64_t text = kimage_to_phys(__text_start);
	struct pt_mapping m;

	KT_EXPECT_EQ(pa_to_page(text)->state, PAGE_KERNEL);
	KT_EXPECT_EQ(pa_to_page(kimage_to_phys(__kernel_end) - PAGE_SIZE)->state, PAGE_KERNEL);
	KT_EXPECT_EQ(pa_to_page(PAGE_SIZE)->state, PAGE_RESERVED); /* the first MiB */
	KT_EXPECT_EQ(pa_to_page(kernel_pt_root.pml4_pa)->state, PAGE_TABLE);
	/* The page database's own frames are counted but have no descriptor. */
	KT_ASSERT(pt_translate(&kernel_pt_root, PAGEDB_BASE + (text >> PAGE_SHIFT) * sizeof(struct page), &m));
	KT_EXPECT(!pmm_pfn_described(&pmm_main, m.pa >> PAGE_SHIFT));
	KT_EXPECT(pmm_pfn_described(&pmm_main, text >> PAGE_SHIFT));
}

KTEST(pmm, alloc_free_every_order)
{
	uint64_t before = pmm_free_pages();

	for (unsigned order = 0; order <= 10; order++) {
		struct page *p = pmm_alloc(order, 0, PAGE_KERNEL);
		if (!p)
			continue; /* 64 MiB machines may lack the largest blocks */
		uint64_t pa = page_to_pa(p);
		KT_EXPECT(is_aligned(pa, PAGE_SIZE << order));
		KT_EXPECT_EQ(p->state, PAGE_KERNEL);
		KT_EXPECT_EQ(p->order, order);
		KT_EXPECT_EQ(p->refcount, 1);
		KT_EXPECT(pmm_pfn_described(&pmm_main, pa >> PAGE_SHIFT));
		KT_EXPECT_EQ(pmm_free_pages(), before - (1ull << order));
		pmm_free(p, order);
		KT_EXPECT_EQ(pmm_free_pages(), before);
	}
	expect_sound(t);
}

KTEST(pmm, zeroed_allocations_are_zero)
{
	struct page *p = pmm_alloc(1, 0, PAGE_KERNEL);
	KT_ASSERT(p);
	memset(page_to_va(p), 0xee, 2 * PAGE_SIZE);
	pmm_free(p, 1);
	p = pmm_alloc(1, PMM_ZERO, PAGE_KERNEL);
	KT_ASSERT(p);
	const uint64_t *w = page_to_va(p);
	unsigned nonzero = 0;
	for (unsigned i = 0; i < 2 * PAGE_SIZE / 8; i++)
		nonzero += w[i] != 0;
	KT_EXPECT_EQ(nonzero, 0);
	pmm_free(p, 1);
}

KTEST(pmm, freed_frames_are_poisoned)
{
#ifdef KNMM_DEBUG
	struct page *p = pmm_alloc(0, 0, PAGE_KERNEL);
	KT_ASSERT(p);
	uint8_t *b = page_to_va(p);
	memset(b, 0, PAGE_SIZE);
	pmm_free(p, 0);
	/* Still reachable through the direct map: every byte holds the poison now. */
	unsigned wrong = 0;
	for (unsigned i = 0; i < PAGE_SIZE; i++)
		wrong += b[i] != PMM_POISON_BYTE;
	KT_EXPECT_EQ(wrong, 0);
#else
	KT_SKIP("poisoning is a debug-build feature");
#endif
}

KTEST(pmm, contiguous_below_16m)
{
	struct page *p = pmm_alloc_contig_in(&pmm_main, 16, 16, MiB(16), PMM_ZERO, PAGE_KERNEL);
	KT_ASSERT(p);
	uint64_t pa = page_to_pa(p);
	KT_EXPECT_LE(pa + 16 * PAGE_SIZE, MiB(16));
	KT_EXPECT(is_aligned(pa, 16 * PAGE_SIZE));
	unsigned bad = 0, nonzero = 0;
	for (unsigned i = 0; i < 16; i++) {
		bad += p[i].state != PAGE_KERNEL || p[i].order != 0 || p[i].refcount != 1;
		const uint64_t *w = page_to_va(p + i);
		for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
			nonzero += w[k] != 0;
	}
	KT_EXPECT_EQ(bad, 0);
	KT_EXPECT_EQ(nonzero, 0);
	pmm_free_contig_in(&pmm_main, p, 16);
	expect_sound(t);
}

KTEST(pmm, contiguous_below_4g_odd_size)
{
	/* 300 frames (not a power of two): the unused tail goes back at once. */
	uint64_t before = pmm_free_pages();
	struct page *p = pmm_alloc_contig_in(&pmm_main, 300, 1, GiB(4), 0, PAGE_KERNEL);
	KT_ASSERT(p);
	KT_EXPECT_LE(page_to_pa(p) + 300 * PAGE_SIZE, GiB(4));
	KT_EXPECT_EQ(pmm_free_pages(), before - 300);
	expect_sound(t);
	pmm_free_contig_in(&pmm_main, p, 300);
	/* Impossible requests fail cleanly. */
	KT_EXPECT(pmm_alloc_contig_in(&pmm_main, 16, 1, MiB(1), 0, PAGE_KERNEL) == NULL); /* all reserved */
	KT_EXPECT(pmm_alloc_contig_in(&pmm_main, 0, 1, GiB(4), 0, PAGE_KERNEL) == NULL);
	KT_EXPECT(pmm_alloc_contig_in(&pmm_main, 1, 3, GiB(4), 0, PAGE_KERNEL) == NULL);
	KT_EXPECT(pmm_alloc_contig_in(&pmm_main, 1ull << 20, 1, UINT64_MAX, 0, PAGE_KERNEL) == NULL);
}

KTEST(pmm, claim_given_range)
{
	/* Find a free range, give it back, then claim it by address. */
	struct page *p = pmm_alloc_contig_in(&pmm_main, 8, 8, GiB(4), 0, PAGE_KERNEL);
	KT_ASSERT(p);
	uint64_t pa = page_to_pa(p), before;
	pmm_free_contig_in(&pmm_main, p, 8);
	before = pmm_free_pages();
	KT_EXPECT_EQ(pmm_claim_in(&pmm_main, pa, 8, PAGE_KERNEL), rcOk);
	KT_EXPECT_EQ(pmm_free_pages(), before - 8);
	KT_EXPECT_EQ(pa_to_page(pa + 5 * PAGE_SIZE)->state, PAGE_KERNEL);
	KT_EXPECT_EQ(pmm_claim_in(&pmm_main, pa + PAGE_SIZE, 2, PAGE_KERNEL), rcBusy);
	KT_EXPECT_EQ(pmm_claim_in(&pmm_main, kimage_to_phys(__text_start), 1, PAGE_KERNEL), rcBusy);
	KT_EXPECT_EQ(pmm_claim_in(&pmm_main, 0xa0000, 1, PAGE_KERNEL), rcNotFound); /* VGA hole */
	KT_EXPECT_EQ(pmm_claim_in(&pmm_main, pa + 1, 1, PAGE_KERNEL), rcInvalidArgument);
	KT_EXPECT_EQ(pmm_claim_in(&pmm_main, pa, 0, PAGE_KERNEL), rcInvalidArgument);
	KT_EXPECT_EQ(pmm_free_pages(), before - 8);
	expect_sound(t);
	pmm_free_contig_in(&pmm_main, pa_to_page(pa), 8);
	KT_EXPECT_EQ(pmm_free_pages(), before);
}

/* Allocate everything (largest blocks first), fail, free everything: the free lists return
 * to the blocks they held. Costs O(blocks), so it runs on 256 GiB too. */
KTEST(pmm, exhaustion_and_recovery)
{
	struct pmm_stats before, after;
	struct list_head held = LIST_HEAD_INIT(held);
	uint64_t nblocks = 0;

	pmm_drain_pcp(&pmm_main);
	pmm_get_stats(&pmm_main, &before);
	for (int order = PMM_MAX_ORDER; order >= 0; order--) {
		struct page *p;
		while ((p = pmm_alloc((unsigned)order, 0, PAGE_KERNEL)) != NULL) {
			list_add(&p->lru, &held); /* the allocation's own descriptor holds the list */
			nblocks++;
		}
	}
	KT_EXPECT_EQ(pmm_free_pages(), 0);
	KT_EXPECT(pmm_alloc(0, 0, PAGE_KERNEL) == NULL);
	KT_EXPECT(pmm_alloc(0, PMM_LOW, PAGE_KERNEL) == NULL);
	KT_EXPECT(pmm_alloc_contig_in(&pmm_main, 1, 1, UINT64_MAX, 0, PAGE_KERNEL) == NULL);
	KT_EXPECT_NE(nblocks, 0);
	expect_sound(t);
	while (!list_empty(&held)) {
		struct page *p = list_first_entry(&held, struct page, lru);
		list_del(&p->lru);
		pmm_free(p, p->order);
	}
	pmm_drain_pcp(&pmm_main);
	pmm_get_stats(&pmm_main, &after);
	KT_EXPECT_EQ(after.free, before.free);
	KT_EXPECT(memcmp(after.free_blocks, before.free_blocks, sizeof(before.free_blocks)) == 0);
	expect_sound(t);
	/* And it works again. */
	struct page *p = pmm_alloc(0, PMM_ZERO, PAGE_KERNEL);
	KT_EXPECT(p != NULL);
	if (p)
		pmm_free(p, 0);
}

KTEST(pmm, page_tables_come_from_the_pmm)
{
	struct pmm_stats a, b;
	struct pt_root r;

	pmm_get_stats(&pmm_main, &a);
	KT_ASSERT_EQ(pt_root_create(&r, true), rcOk);
	KT_ASSERT_EQ(pt_map(&r, 0x400000, 0x1000000, PAGE_SIZE, MMU_READ, PT_LEVEL_PT), rcOk);
	pmm_get_stats(&pmm_main, &b);
	KT_EXPECT_EQ(b.state[PAGE_TABLE], a.state[PAGE_TABLE] + 4); /* PML4, PDPT, PD, PT */
	KT_EXPECT_EQ(pa_to_page(r.pml4_pa)->state, PAGE_TABLE);
	KT_EXPECT_EQ(pt_unmap(&r, 0x400000, PAGE_SIZE, NULL, NULL), rcOk);
	pt_root_destroy(&r);
	pmm_get_stats(&pmm_main, &b);
	KT_EXPECT_EQ(b.state[PAGE_TABLE], a.state[PAGE_TABLE]);
}
