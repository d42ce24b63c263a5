// SPDX-License-Identifier: MIT
/*
 * The address-space core in the kernel, on private user-type spaces (never activated): every
 * operation, with the page tables checked by walking them. The harness also checks that
 * each test leaves free pages and commit charge as it found them.
 */
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/pte.h>
#include <mm/pool.h>
#include <kernel/main.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/vm.h>
#include "ktest_util.h"

#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES  VMM_FLAG_RESERVE
#define COM  VMM_FLAG_COMMIT
#define LCK  VMM_FLAG_LOCKED
#define BASE 0x10000000ull
/* The commit charge of n pages that lie in `w` 2 MiB windows (3 table pages per window). */
#define CHARGE(n, w) ((n) + (w)*VM_TABLE_CHARGE_PER_WINDOW)

static struct vm_info query(struct vm_space *vs, uint64_t va)
{
	struct vm_info i;
	memset(&i, 0xff, sizeof(i));
	vm_query(vs, va, &i);
	return i;
}

KTEST(vm, lazy_commit_is_resident_only_when_touched)
{
	struct vm_space vs;
	uint64_t va, charge;

	KT_ASSERT(test_space_begin(t, &vs));
	charge = charge_total();
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 16 * PAGE_SIZE, RES | COM | RW, &va), rcOk);
	KT_EXPECT_EQ(va, BASE);
	KT_EXPECT_EQ(charge_total(), charge + CHARGE(16, 1));
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 16 * PAGE_SIZE), 0);
	struct vm_info i = query(&vs, va);
	KT_EXPECT_EQ(i.state, VMM_STATE_COMMITTED);
	KT_EXPECT(!i.resident);
	KT_EXPECT_EQ(i.run_size, 16 * PAGE_SIZE);
	KT_EXPECT_EQ(vm_fault(&vs, va + 5 * PAGE_SIZE + 17, VM_ACCESS_WRITE), VM_FAULT_RESOLVED);
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 16 * PAGE_SIZE), 1);
	struct pt_mapping m;
	KT_ASSERT(pt_translate(&vs.pt, va + 5 * PAGE_SIZE, &m));
	KT_EXPECT_EQ(m.mmu_flags, MMU_READ | MMU_WRITE | MMU_USER); /* NX, WB, user */
	const uint64_t *w = phys_to_virt(m.pa);
	unsigned nonzero = 0;
	for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
		nonzero += w[k] != 0;
	KT_EXPECT_EQ(nonzero, 0);
	/* Runs: 5 non-resident, 1 resident, 10 non-resident. */
	KT_EXPECT_EQ(query(&vs, va).run_size, 5 * PAGE_SIZE);
	KT_EXPECT_EQ(query(&vs, va + 5 * PAGE_SIZE).run_size, PAGE_SIZE);
	KT_EXPECT(query(&vs, va + 5 * PAGE_SIZE).resident);
	KT_EXPECT_EQ(query(&vs, va + 6 * PAGE_SIZE).run_size, 10 * PAGE_SIZE);
	test_space_end(t, &vs);
	KT_EXPECT_EQ(charge_total(), charge - 1); /* (the space's root went too) */
}

KTEST(vm, faultaround_maps_neighbours_in_the_run)
{
	struct vm_space vs;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	vs.faultaround = 3;
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 8 * PAGE_SIZE, RES | COM | RW, &va), rcOk);
	KT_EXPECT_EQ(vm_fault(&vs, va + 6 * PAGE_SIZE, VM_ACCESS_READ), VM_FAULT_RESOLVED);
	/* page 6, then 7 (end of the run), then 5 and 4 */
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 8 * PAGE_SIZE), 4);
	KT_EXPECT(pt_translate(&vs.pt, va + 4 * PAGE_SIZE, NULL));
	KT_EXPECT(!pt_translate(&vs.pt, va + 3 * PAGE_SIZE, NULL));
	test_space_end(t, &vs);
}

/* Each protection and cache mode yields its bits in the tables. */
KTEST(vm, locked_commit_protection_and_cache_bits)
{
	static const struct {
		unsigned cache, pat;
	} modes[] = { { 0, PAT_INDEX_WB },
		      { VMM_FLAG_WRITE_BACK, PAT_INDEX_WB },
		      { VMM_FLAG_WRITE_THROUGH, PAT_INDEX_WT },
		      { VMM_FLAG_WRITE_COMBINE, PAT_INDEX_WC },
		      { VMM_FLAG_CACHE_DISABLE, PAT_INDEX_UC } };
	static const unsigned prots[] = { VMM_FLAG_READ, RW, VMM_FLAG_READ | VMM_FLAG_EXECUTE, VMM_FLAG_RWX_MASK };
	struct vm_space vs;

	KT_ASSERT(test_space_begin(t, &vs));
	for (unsigned c = 0; c < ARRAY_SIZE(modes); c++) {
		for (unsigned p = 0; p < ARRAY_SIZE(prots); p++) {
			uint64_t va, charge = charge_total();
			KT_ASSERT_EQ(
				vm_allocate(&vs, 0, 4 * PAGE_SIZE, RES | COM | LCK | prots[p] | modes[c].cache, &va),
				rcOk);
			/* (a page of another memory type than write-back costs a second page: a table
			 * of the direct map it may need, docs/vm.md) */
			uint64_t extra = modes[c].pat == PAT_INDEX_WB ? 0 : 4;
			KT_EXPECT_EQ(charge_total(), charge + CHARGE(4, 1) + extra);
			KT_EXPECT_EQ(test_resident_pages(&vs, va, 4 * PAGE_SIZE), 4);
			struct pt_trace tr;
			pt_trace(&vs.pt, va + 2 * PAGE_SIZE, &tr);
			KT_ASSERT_EQ(tr.n, 4);
			pte_t e = tr.step[3].entry;
			KT_EXPECT_EQ(pte_pat_index(e, PT_LEVEL_PT), modes[c].pat);
			KT_EXPECT_EQ(pte_writable(e), !!(prots[p] & VMM_FLAG_WRITE));
			KT_EXPECT_EQ(pte_nx(e), !(prots[p] & VMM_FLAG_EXECUTE));
			KT_EXPECT(pte_user(e));
			struct vm_info i = query(&vs, va);
			KT_EXPECT_EQ(i.flags & (VMM_FLAG_RWX_MASK | VMM_FLAG_LOCKED | VMM_FLAG_CACHE_MASK),
				     prots[p] | VMM_FLAG_LOCKED | modes[c].cache);
			KT_EXPECT_EQ(vm_unmap(&vs, va, 4 * PAGE_SIZE), rcOk);
		}
	}
	test_space_end(t, &vs);
}

KTEST(vm, reserve_commit_decommit)
{
	struct vm_space vs;
	uint64_t va, charge, free_pages;

	KT_ASSERT(test_space_begin(t, &vs));
	charge = charge_total();
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 32 * PAGE_SIZE, RES | RW, &va), rcOk);
	KT_EXPECT_EQ(charge_total(), charge);
	KT_EXPECT_EQ(vm_fault(&vs, va, VM_ACCESS_READ), VM_FAULT_ACCESS); /* reserved */
	KT_EXPECT_EQ(vm_commit(&vs, va + 8 * PAGE_SIZE, 8 * PAGE_SIZE, LCK), rcOk);
	KT_EXPECT_EQ(charge_total(), charge + CHARGE(8, 1));
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 32 * PAGE_SIZE), 8);
	/* Committing an overlapping range charges only the new pages. */
	KT_EXPECT_EQ(vm_commit(&vs, va + 4 * PAGE_SIZE, 8 * PAGE_SIZE, 0), rcOk);
	KT_EXPECT_EQ(charge_total(), charge + CHARGE(12, 1));
	KT_EXPECT_EQ(query(&vs, va + 4 * PAGE_SIZE).state, VMM_STATE_COMMITTED);
	KT_EXPECT(query(&vs, va + 8 * PAGE_SIZE).flags & VMM_FLAG_LOCKED);
	KT_EXPECT(!(query(&vs, va + 4 * PAGE_SIZE).flags & VMM_FLAG_LOCKED));
	/* Decommit returns the frames (locked ones too) and the charge. */
	free_pages = pmm_free_pages();
	KT_EXPECT_EQ(vm_decommit(&vs, va, 32 * PAGE_SIZE), rcOk);
	/* the 8 frames, and the PT, PD and PDPT that became empty */
	KT_EXPECT_EQ(pmm_free_pages(), free_pages + 8 + 3);
	KT_EXPECT_EQ(charge_total(), charge);
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 32 * PAGE_SIZE), 0);
	KT_EXPECT_EQ(query(&vs, va + 8 * PAGE_SIZE).state, VMM_STATE_RESERVED);
	KT_EXPECT_EQ(query(&vs, va).run_size, 32 * PAGE_SIZE); /* one reserved run again */
	test_space_end(t, &vs);
}

KTEST(vm, decommit_of_pinned_pages_is_busy)
{
	struct vm_space vs;
	uint64_t va;
	struct pt_mapping m;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 4 * PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	KT_ASSERT(pt_translate(&vs.pt, va + PAGE_SIZE, &m));
	struct page *p = pa_to_page(m.pa);
	page_pin(p); /* what an MDL does */
	KT_EXPECT_EQ(vm_decommit(&vs, va, 4 * PAGE_SIZE), rcBusy);
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 4 * PAGE_SIZE), 4);
	KT_EXPECT_EQ(vm_decommit(&vs, va + 2 * PAGE_SIZE, 2 * PAGE_SIZE), rcOk); /* not the pinned page */
	page_unpin(p);
	KT_EXPECT_EQ(vm_decommit(&vs, va, 2 * PAGE_SIZE), rcOk);
	test_space_end(t, &vs);
}

KTEST(vm, protect_changes_the_tables)
{
	struct vm_space vs;
	uint64_t va;
	struct pt_mapping m;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 4 * PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	KT_EXPECT_EQ(vm_protect(&vs, va + PAGE_SIZE, 2 * PAGE_SIZE, VMM_FLAG_READ), rcOk);
	KT_ASSERT(pt_translate(&vs.pt, va + PAGE_SIZE, &m));
	KT_EXPECT(!(m.mmu_flags & MMU_WRITE));
	KT_ASSERT(pt_translate(&vs.pt, va, &m));
	KT_EXPECT(m.mmu_flags & MMU_WRITE);
	KT_EXPECT_EQ(vm_fault(&vs, va + PAGE_SIZE, VM_ACCESS_WRITE), VM_FAULT_ACCESS);
	KT_EXPECT_EQ(vm_fault(&vs, va + PAGE_SIZE, VM_ACCESS_EXEC), VM_FAULT_ACCESS);
	KT_EXPECT_EQ(vm_protect(&vs, va, 4 * PAGE_SIZE, VMM_FLAG_READ | VMM_FLAG_EXECUTE), rcOk);
	KT_ASSERT(pt_translate(&vs.pt, va + 3 * PAGE_SIZE, &m));
	KT_EXPECT_EQ(m.mmu_flags & (MMU_WRITE | MMU_EXEC), MMU_EXEC);
	KT_EXPECT_EQ(vm_fault(&vs, va, VM_ACCESS_EXEC), VM_FAULT_RESOLVED);
	KT_EXPECT_EQ(vm_protect(&vs, va, 4 * PAGE_SIZE, RW), rcOk);
	KT_ASSERT(pt_translate(&vs.pt, va + PAGE_SIZE, &m));
	KT_EXPECT_EQ(m.mmu_flags & (MMU_WRITE | MMU_EXEC), MMU_WRITE);
	/* Reserved pages keep a protection for when they are committed. */
	KT_EXPECT_EQ(vm_decommit(&vs, va, PAGE_SIZE), rcOk);
	KT_EXPECT_EQ(vm_protect(&vs, va, PAGE_SIZE, VMM_FLAG_READ), rcOk);
	KT_EXPECT_EQ(vm_commit(&vs, va, PAGE_SIZE, LCK), rcOk);
	KT_ASSERT(pt_translate(&vs.pt, va, &m));
	KT_EXPECT(!(m.mmu_flags & MMU_WRITE));
	test_space_end(t, &vs);
}

/* A protect rewrites the protection bits only: each cache mode's PAT index survives it (WC
 * lives in the PAT bit of a 4 KiB entry, which the fast path rewrites). */
KTEST(vm, protect_keeps_the_cache_mode)
{
	static const struct {
		unsigned cache, pat;
	} modes[] = { { VMM_FLAG_WRITE_THROUGH, PAT_INDEX_WT },
		      { VMM_FLAG_WRITE_COMBINE, PAT_INDEX_WC },
		      { VMM_FLAG_CACHE_DISABLE, PAT_INDEX_UC } };
	struct vm_space vs;

	KT_ASSERT(test_space_begin(t, &vs));
	for (unsigned c = 0; c < ARRAY_SIZE(modes); c++) {
		uint64_t va;
		KT_ASSERT_EQ(vm_allocate(&vs, 0, 40 * PAGE_SIZE, RES | COM | LCK | RW | modes[c].cache, &va), rcOk);
		KT_EXPECT_EQ(vm_protect(&vs, va, 40 * PAGE_SIZE, VMM_FLAG_READ), rcOk);
		for (unsigned p = 0; p < 40; p += 13) {
			struct pt_trace tr;
			pt_trace(&vs.pt, va + p * PAGE_SIZE, &tr);
			KT_ASSERT_EQ(tr.n, 4);
			KT_EXPECT_EQ(pte_pat_index(tr.step[3].entry, PT_LEVEL_PT), modes[c].pat);
			KT_EXPECT(!pte_writable(tr.step[3].entry));
		}
		KT_EXPECT_EQ(vm_unmap(&vs, va, 40 * PAGE_SIZE), rcOk);
	}
	test_space_end(t, &vs);
}

KTEST(vm, guard_pages)
{
	struct vm_space vs;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(
		vm_allocate(&vs, BASE, 4 * PAGE_SIZE, RES | COM | RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD, &va),
		rcOk);
	KT_EXPECT_EQ(va, BASE);
	struct vm_info lo = query(&vs, va - PAGE_SIZE), hi = query(&vs, va + 4 * PAGE_SIZE);
	KT_EXPECT_EQ(lo.state, VMM_STATE_GUARD);
	KT_EXPECT_EQ(hi.state, VMM_STATE_GUARD);
	KT_EXPECT_EQ(lo.region_base, va - PAGE_SIZE);
	KT_EXPECT_EQ(lo.region_size, 6 * PAGE_SIZE);
	KT_EXPECT_EQ(vm_fault(&vs, va - 1, VM_ACCESS_READ), VM_FAULT_GUARD);
	KT_EXPECT_EQ(vm_fault(&vs, va + 4 * PAGE_SIZE, VM_ACCESS_WRITE), VM_FAULT_GUARD);
	/* Never committable, never protectable, never decommittable. */
	KT_EXPECT_EQ(vm_commit(&vs, va - PAGE_SIZE, 2 * PAGE_SIZE, 0), rcInvalidArgument);
	KT_EXPECT_EQ(vm_protect(&vs, va + 3 * PAGE_SIZE, 2 * PAGE_SIZE, RW), rcInvalidArgument);
	KT_EXPECT_EQ(vm_decommit(&vs, va - PAGE_SIZE, PAGE_SIZE), rcInvalidArgument);
	KT_EXPECT_EQ(query(&vs, va - PAGE_SIZE).state, VMM_STATE_GUARD);
	/* Unmapping the usable range frees the guards with it. */
	KT_EXPECT_EQ(vm_unmap(&vs, va, 4 * PAGE_SIZE), rcOk);
	KT_EXPECT_EQ(query(&vs, va - PAGE_SIZE).state, VMM_STATE_FREE);
	test_space_end(t, &vs);
}

KTEST(vm, grow_down)
{
	struct vm_space vs;
	uint64_t va, charge;

	KT_ASSERT(test_space_begin(t, &vs));
	charge = charge_total();
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 16 * PAGE_SIZE, RES | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD, &va),
		     rcOk);
	/* Only the top page is committed and resident. */
	KT_EXPECT_EQ(charge_total(), charge + CHARGE(1, 1));
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 16 * PAGE_SIZE), 1);
	KT_EXPECT(pt_translate(&vs.pt, va + 15 * PAGE_SIZE, NULL));
	/* A touch at page 10 commits 10..14 (contiguously), maps page 10. */
	KT_EXPECT_EQ(vm_fault(&vs, va + 10 * PAGE_SIZE + 8, VM_ACCESS_WRITE), VM_FAULT_GREW);
	KT_EXPECT_EQ(charge_total(), charge + CHARGE(6, 1));
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 16 * PAGE_SIZE), 2);
	KT_EXPECT_EQ(query(&vs, va + 10 * PAGE_SIZE).run_size, PAGE_SIZE);
	KT_EXPECT_EQ(query(&vs, va + 11 * PAGE_SIZE).state, VMM_STATE_COMMITTED);
	KT_EXPECT_EQ(vm_fault(&vs, va + 12 * PAGE_SIZE, VM_ACCESS_READ), VM_FAULT_RESOLVED);
	/* Down to the bottom, then the guard. */
	KT_EXPECT_EQ(vm_fault(&vs, va, VM_ACCESS_WRITE), VM_FAULT_GREW);
	KT_EXPECT_EQ(charge_total(), charge + CHARGE(16, 1));
	KT_EXPECT_EQ(vm_fault(&vs, va - 8, VM_ACCESS_WRITE), VM_FAULT_GUARD);
	test_space_end(t, &vs);
	KT_EXPECT_EQ(charge_total(), charge - 1); /* (the space's root went too) */
}

KTEST(vm, grow_down_past_the_limit_is_a_stack_overflow)
{
	struct vm_space vs;
	struct charge_stats cs;
	uint64_t va, hog;

	KT_ASSERT(test_space_begin(t, &vs));
	charge_get(&cs);
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 64 * PAGE_SIZE, RES | RW | VMM_FLAG_GROW_DOWN, &va), rcOk);
	/* Take all of the remaining commit (lazily: no frames): pages plus their tables. The hog
	 * starts 2 MiB-aligned, so its n pages need ceil(n / 512) windows. */
	uint64_t left = cs.limit - charge_total(), pages = left;
	while (CHARGE(pages, (pages + 511) / 512) > left)
		pages--;
	KT_ASSERT_EQ(vm_allocate(&vs, GiB(64), pages * PAGE_SIZE, RES | COM | RW, &hog), rcOk);
	KT_EXPECT_LE(charge_total(), cs.limit);
	KT_EXPECT_GE(charge_total() + 3, cs.limit); /* nothing worth a page of growth left */
	KT_EXPECT_EQ(vm_fault(&vs, va, VM_ACCESS_WRITE), VM_FAULT_STACK_OVERFLOW);
	KT_EXPECT_EQ(query(&vs, va).state, VMM_STATE_RESERVED);
	KT_EXPECT_EQ(vm_unmap(&vs, hog, pages * PAGE_SIZE), rcOk);
	KT_EXPECT_EQ(vm_fault(&vs, va, VM_ACCESS_WRITE), VM_FAULT_GREW);
	test_space_end(t, &vs);
}

KTEST(vm, commit_past_the_limit_fails_and_changes_nothing)
{
	struct vm_space vs;
	struct charge_stats cs;
	uint64_t va, out = 0;

	KT_ASSERT(test_space_begin(t, &vs));
	charge_get(&cs);
	uint64_t left = cs.limit - cs.total, free_pages = pmm_free_pages();
	KT_EXPECT_EQ(vm_allocate(&vs, BASE, (left + 1) * PAGE_SIZE, RES | COM | RW, &out), rcOutOfMemory);
	KT_EXPECT_EQ(out, 0);
	KT_EXPECT_EQ(query(&vs, BASE).state, VMM_STATE_FREE);
	KT_EXPECT_EQ(vm_allocate(&vs, BASE, (left + 1) * PAGE_SIZE, RES | RW, &va), rcOk);
	KT_EXPECT_EQ(vm_commit(&vs, va, (left + 1) * PAGE_SIZE, 0), rcOutOfMemory);
	KT_EXPECT_EQ(query(&vs, va).state, VMM_STATE_RESERVED);
	KT_EXPECT_EQ(charge_total(), cs.total);
	KT_EXPECT_EQ(pmm_free_pages(), free_pages);
	/* Up to the limit is fine, lazily: pages plus their tables (BASE is 2 MiB-aligned). */
	uint64_t pages = left;
	while (CHARGE(pages, (pages + 511) / 512) > left)
		pages--;
	KT_EXPECT_EQ(vm_commit(&vs, va, pages * PAGE_SIZE, 0), rcOk);
	KT_EXPECT_EQ(charge_total(), cs.total + CHARGE(pages, (pages + 511) / 512));
	KT_EXPECT_EQ(vm_commit(&vs, va + pages * PAGE_SIZE, PAGE_SIZE, 0), rcOutOfMemory);
	test_space_end(t, &vs);
}

KTEST(vm, reserving_64_tib_costs_no_page_tables)
{
	struct vm_space vs;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	uint64_t tables = pt_table_pages(), free_pages = pmm_free_pages(), charge = charge_total();
	KT_ASSERT_EQ(vm_allocate(&vs, 0, 64ull << 40, RES | RW, &va), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables);
	KT_EXPECT_EQ(charge_total(), charge);
	KT_EXPECT_EQ(query(&vs, va + (63ull << 40)).run_size, 1ull << 40);
	KT_EXPECT_EQ(vm_unmap(&vs, va, 64ull << 40), rcOk);
	KT_EXPECT_EQ(pmm_free_pages(), free_pages);
	test_space_end(t, &vs);
}

KTEST(vm, empty_page_tables_are_freed)
{
	struct vm_space vs;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	uint64_t tables = pt_table_pages();
	/* Pages in two page-directory entries far apart: two PT chains. */
	KT_ASSERT_EQ(vm_allocate(&vs, 0x40000000, PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	KT_ASSERT_EQ(vm_allocate(&vs, 0x7000000000ull, PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables + 5); /* PDPT, 2 PD, 2 PT (PDPT shared) */
	KT_EXPECT_EQ(vm_unmap(&vs, 0x40000000, PAGE_SIZE), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables + 3);
	KT_EXPECT_EQ(vm_decommit(&vs, 0x7000000000ull, PAGE_SIZE), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables);
	test_space_end(t, &vs);
}

KTEST(vm, unmap_splits_regions)
{
	struct vm_space vs;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 10 * PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	KT_EXPECT_EQ(vm_unmap(&vs, va + 3 * PAGE_SIZE, 2 * PAGE_SIZE), rcOk); /* middle */
	KT_EXPECT_EQ(query(&vs, va).region_size, 3 * PAGE_SIZE);
	KT_EXPECT_EQ(query(&vs, va + 3 * PAGE_SIZE).state, VMM_STATE_FREE);
	KT_EXPECT_EQ(query(&vs, va + 5 * PAGE_SIZE).region_base, va + 5 * PAGE_SIZE);
	KT_EXPECT_EQ(query(&vs, va + 5 * PAGE_SIZE).region_size, 5 * PAGE_SIZE);
	KT_EXPECT_EQ(vm_unmap(&vs, va, PAGE_SIZE), rcOk); /* head */
	KT_EXPECT_EQ(query(&vs, va + PAGE_SIZE).region_base, va + PAGE_SIZE);
	KT_EXPECT_EQ(vm_unmap(&vs, va + 9 * PAGE_SIZE, PAGE_SIZE), rcOk); /* tail */
	KT_EXPECT_EQ(query(&vs, va + 5 * PAGE_SIZE).region_size, 4 * PAGE_SIZE);
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 10 * PAGE_SIZE), 6);
	KT_EXPECT_EQ(vs.tree.count, 2);
	test_space_end(t, &vs);
}

/* SPEC §9 cases for the internal calls: each returns its code and changes nothing. */
KTEST(vm, bad_arguments_change_nothing)
{
	struct vm_space vs;
	uint64_t va, va2, out;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 4 * PAGE_SIZE, RES | COM | RW, &va), rcOk);
	KT_ASSERT_EQ(vm_allocate(&vs, BASE + 4 * PAGE_SIZE, 4 * PAGE_SIZE, RES | RW, &va2), rcOk);
	uint64_t charge = charge_total(), free_pages = pmm_free_pages(), regions = vs.tree.count;
	/* allocate */
	KT_EXPECT_EQ(vm_allocate(&vs, BASE + 1, PAGE_SIZE, RES | RW, &out), rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE + 1, RES | RW, &out), rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, 0, 0, RES | RW, &out), rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, 0x7ffffffff000ull, 2 * PAGE_SIZE, RES | RW, &out), rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, 0xfffffffffffff000ull, PAGE_SIZE, RES | RW, &out), rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, 0, UINT64_MAX & ~PAGE_MASK, RES | RW, &out), rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, BASE + PAGE_SIZE, PAGE_SIZE, RES | RW, &out), rcAlreadyExists);
	KT_EXPECT_EQ(vm_allocate(&vs, BASE + 8 * PAGE_SIZE, PAGE_SIZE, RES | RW | VMM_FLAG_LOW_GUARD, &out),
		     rcAlreadyExists);
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RW, &out), rcInvalidArgument);                   /* no RESERVE */
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | RW | 0x100000, &out), rcInvalidArgument);  /* unknown */
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | VMM_FLAG_WRITE, &out), rcInvalidArgument); /* W only */
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES, &out), rcInvalidArgument);                  /* no access */
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | VMM_FLAG_WRITE | VMM_FLAG_EXECUTE, &out), rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | RW | VMM_FLAG_WRITE_COMBINE | VMM_FLAG_WRITE_THROUGH, &out),
		     rcInvalidArgument);
	KT_EXPECT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | RW | LCK, &out), rcInvalidArgument); /* LOCKED alone */
	/* commit / decommit / protect / unmap */
	KT_EXPECT_EQ(vm_commit(&vs, va + 1, PAGE_SIZE, 0), rcInvalidArgument);
	KT_EXPECT_EQ(vm_commit(&vs, va, 100, 0), rcInvalidArgument);
	KT_EXPECT_EQ(vm_commit(&vs, va, 0, 0), rcInvalidArgument);
	KT_EXPECT_EQ(vm_commit(&vs, va, UINT64_MAX & ~PAGE_MASK, 0), rcInvalidArgument);
	KT_EXPECT_EQ(vm_commit(&vs, BASE + 64 * PAGE_SIZE, PAGE_SIZE, 0), rcNotFound);
	KT_EXPECT_EQ(vm_commit(&vs, va + 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0), rcInvalidArgument); /* two regions */
	KT_EXPECT_EQ(vm_commit(&vs, va, PAGE_SIZE, VMM_FLAG_WRITE), rcInvalidArgument);
	KT_EXPECT_EQ(vm_commit(&vs, 0xffff800000000000ull, PAGE_SIZE, 0), rcInvalidArgument); /* kernel half */
	KT_EXPECT_EQ(vm_decommit(&vs, va + 3 * PAGE_SIZE, 2 * PAGE_SIZE), rcInvalidArgument);
	KT_EXPECT_EQ(vm_decommit(&vs, BASE + 64 * PAGE_SIZE, PAGE_SIZE), rcNotFound);
	KT_EXPECT_EQ(vm_protect(&vs, va, PAGE_SIZE, VMM_FLAG_WRITE), rcInvalidArgument);
	KT_EXPECT_EQ(vm_protect(&vs, va, PAGE_SIZE, RW | 0x8000), rcInvalidArgument);
	KT_EXPECT_EQ(vm_protect(&vs, va + 3 * PAGE_SIZE, 2 * PAGE_SIZE, RW), rcInvalidArgument);
	KT_EXPECT_EQ(vm_unmap(&vs, va + 3 * PAGE_SIZE, 2 * PAGE_SIZE), rcInvalidArgument);
	KT_EXPECT_EQ(vm_unmap(&vs, BASE + 64 * PAGE_SIZE, PAGE_SIZE), rcNotFound);
	KT_EXPECT_EQ(vm_unmap(&vs, va, 0), rcInvalidArgument);
	KT_EXPECT_EQ(vm_query(&vs, 0xffff800000000000ull, &(struct vm_info){ 0 }), rcInvalidArgument);
	/* nothing changed */
	KT_EXPECT_EQ(charge_total(), charge);
	KT_EXPECT_EQ(pmm_free_pages(), free_pages);
	KT_EXPECT_EQ(vs.tree.count, regions);
	KT_EXPECT_EQ(query(&vs, va).state, VMM_STATE_COMMITTED);
	KT_EXPECT_EQ(query(&vs, va2).state, VMM_STATE_RESERVED);
	test_space_end(t, &vs);
}

KTEST(vm, aslr_spreads_placements)
{
	struct vm_space vs;
	uint64_t a, b, c;

	KT_ASSERT(test_space_begin(t, &vs));
	vs.aslr = true;
	vs.rng = 12345;
	KT_ASSERT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | RW, &a), rcOk);
	KT_ASSERT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | RW, &b), rcOk);
	KT_ASSERT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | RW, &c), rcOk);
	/* Three random pages of a 128 TiB space: far apart, never adjacent. */
	KT_EXPECT(a != b + PAGE_SIZE && b != a + PAGE_SIZE && b != c + PAGE_SIZE && c != b + PAGE_SIZE);
	KT_EXPECT(a >= USER_BASE && c < USER_END);
	vs.aslr = false;
	KT_ASSERT_EQ(vm_allocate(&vs, 0, PAGE_SIZE, RES | RW, &a), rcOk);
	KT_EXPECT_EQ(a, USER_BASE); /* first fit from the bottom without ASLR */
	test_space_end(t, &vs);
}

/* ------------------------------------------------------------------ kernel dynamic area */

KTEST(kdyn, kernel_stacks_have_a_guard_page)
{
	uint64_t base;
	struct fault_info fi;

	KT_ASSERT_EQ(kstack_alloc("test", 16384, &base), rcOk);
	KT_EXPECT(base >= KSPACE_BASE && base < KSPACE_END);
	KT_EXPECT(!pt_translate(&kernel_pt_root, base - PAGE_SIZE, NULL));
	for (uint64_t a = base; a < base + 16384; a += PAGE_SIZE)
		KT_EXPECT(pt_translate(&kernel_pt_root, a, NULL));
	*(volatile uint64_t *)(uintptr_t)(base + 16384 - 8) = 42; /* usable */
	KT_EXPECT(test_write_faults(base - 8, 1, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_PF);
	KT_EXPECT(kstack_describe(base - 8) != NULL && strcmp(kstack_describe(base - 8), "kernel stack 'test'") == 0);
	KT_EXPECT(kstack_describe(base + 8) == NULL);
	kstack_free(base, 16384);
	KT_EXPECT(!pt_translate(&kernel_pt_root, base, NULL));
}

KTEST(pool, alloc_free_and_tags)
{
	static const size_t sizes[] = { 1, 16, 100, 500, 1000, 2000, 3000, 10000, 100000 };
	void *p[ARRAY_SIZE(sizes)];
	uint32_t tag = POOL_TAG('T', 'e', 's', 't');
	struct pool_tag_stats st[64];
	char why[128];

	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
		p[i] = pool_alloc(sizes[i], tag);
		KT_ASSERT(p[i] != NULL);
		KT_EXPECT(is_aligned((uint64_t)(uintptr_t)p[i], 16));
		memset(p[i], 0x5a, sizes[i]);
		KT_EXPECT_EQ(pool_check(p[i], why, sizeof(why)), rcOk);
	}
	unsigned n = pool_tag_usage(st, 64);
	bool found = false;
	for (unsigned i = 0; i < n; i++)
		if (st[i].tag == tag) {
			found = true;
			KT_EXPECT_EQ(st[i].allocs - st[i].frees, ARRAY_SIZE(sizes));
			KT_EXPECT_EQ(st[i].bytes, 1 + 16 + 100 + 500 + 1000 + 2000 + 3000 + 10000 + 100000);
		}
	KT_EXPECT(found);
	/* A large block is followed by an unmapped guard page. */
	uint64_t end = align_up((uint64_t)(uintptr_t)p[8] + 100000 + 8, PAGE_SIZE);
	KT_EXPECT(!pt_translate(&kernel_pt_root, end, NULL));
	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++)
		pool_free(p[i]);
	n = pool_tag_usage(st, 64);
	for (unsigned i = 0; i < n; i++)
		if (st[i].tag == tag)
			KT_EXPECT_EQ(st[i].bytes, 0);
	KT_EXPECT(pool_alloc(0, tag) == NULL);
}

KTEST(pool, red_zone_overrun_is_detected)
{
	char why[128];
	uint8_t *small = pool_alloc(40, POOL_TAG('R', 'e', 'd', 'Z'));
	uint8_t *large = pool_alloc(5000, POOL_TAG('R', 'e', 'd', 'Z'));

	KT_ASSERT(small && large);
	KT_EXPECT_EQ(pool_check(small, why, sizeof(why)), rcOk);
	small[40] = 0; /* one byte past the end */
	KT_EXPECT_EQ(pool_check(small, why, sizeof(why)), rcFault);
	KT_EXPECT(strstr(why, "red zone overwritten at +40") && strstr(why, "'RedZ'"));
	small[40] = 0xfd; /* repair, so that the free below is legal */
	large[5003] = 1;
	KT_EXPECT_EQ(pool_check(large, why, sizeof(why)), rcFault);
	large[5003] = 0xfd;
	((uint32_t *)small)[-4] ^= 1; /* the header's magic */
	KT_EXPECT_EQ(pool_check(small, why, sizeof(why)), rcFault);
	KT_EXPECT(strstr(why, "header overwritten") != NULL);
	((uint32_t *)small)[-4] ^= 1;
	pool_free(small);
	pool_free(large);
	KT_EXPECT_EQ(pool_check(small, why, sizeof(why)), rcFault); /* freed */
	KT_EXPECT(strstr(why, "already free") != NULL);
}

KTEST(pool, lookaside_reuses_blocks)
{
	static struct lookaside la = LOOKASIDE_INIT(la, "test", 96, POOL_TAG('L', 'k', 'A', 's'), 2);
	lookaside_register(&la);
	uint64_t hits = la.hits;
	void *a = lookaside_alloc(&la), *b = lookaside_alloc(&la), *c = lookaside_alloc(&la);

	KT_ASSERT(a && b && c);
	lookaside_free(&la, a);
	lookaside_free(&la, b);
	lookaside_free(&la, c); /* depth 2: this one goes back to the pool */
	KT_EXPECT_EQ(la.count, 2);
	void *d = lookaside_alloc(&la), *e = lookaside_alloc(&la);
	KT_EXPECT_EQ(la.hits, hits + 2);
	KT_EXPECT(d == b && e == a); /* LIFO */
	lookaside_free(&la, d);
	lookaside_free(&la, e);
	lookaside_trim(&la);
	KT_EXPECT_EQ(la.count, 0);
}

/* ------------------------------------------------------------------ NT-style services */

KTEST(mmsvc, map_io_space_reads_the_local_apic)
{
	if (!cpu_features.apic)
		KT_SKIP("no local APIC");
	uint64_t apic_pa = rdmsr(0x1b) & 0xffffff000ull;
	volatile uint32_t *apic = mm_map_io_space(apic_pa, PAGE_SIZE, VMM_FLAG_CACHE_DISABLE);
	KT_ASSERT(apic != NULL);
	uint32_t version = apic[0x30 / 4];  /* local APIC version register */
	KT_EXPECT_GE(version & 0xff, 0x10); /* integrated APIC */
	KT_EXPECT_LE(version & 0xff, 0x15);
	struct pt_trace tr;
	pt_trace(&kernel_pt_root, (uint64_t)(uintptr_t)apic, &tr);
	KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, PT_LEVEL_PT), PAT_INDEX_UC);
	uint64_t pa;
	KT_EXPECT(mm_get_physical_address((const void *)apic, &pa));
	KT_EXPECT_EQ(pa, apic_pa);
	mm_unmap_io_space((void *)apic, PAGE_SIZE);
	KT_EXPECT(!mm_is_address_valid((const void *)apic));
	/* RAM is refused. */
	KT_EXPECT(mm_map_io_space(MiB(2), PAGE_SIZE, 0) == NULL);
}

KTEST(mmsvc, address_services)
{
	uint64_t pa = 0;

	KT_EXPECT(mm_is_address_valid(&pa));
	KT_EXPECT(mm_get_physical_address((const void *)kernel_ready, &pa));
	KT_EXPECT_EQ(pa, kimage_to_phys((const void *)kernel_ready));
	KT_EXPECT(!mm_is_address_valid((void *)0x1000));
	KT_EXPECT(!mm_is_address_valid((void *)0x8000000000000000ull));
	KT_EXPECT(!mm_get_physical_address((void *)(KDYN_BASE + KDYN_SIZE - PAGE_SIZE), &pa));
}

KTEST(mmsvc, contiguous_below_16m)
{
	test_mm_settle();
	uint64_t charge = charge_total();
	void *p = mm_alloc_contiguous(64 * 1024, MiB(16) - 1);
	KT_ASSERT(p != NULL);
	uint64_t pa = virt_to_phys_direct(p);
	KT_EXPECT_LE(pa + 64 * 1024, MiB(16));
	KT_EXPECT_EQ(charge_total(), charge + 16);
	for (unsigned i = 1; i < 16; i++) {
		uint64_t q;
		KT_EXPECT(mm_get_physical_address((char *)p + i * PAGE_SIZE, &q) && q == pa + i * PAGE_SIZE);
	}
	mm_free_contiguous(p, 64 * 1024);
	KT_EXPECT_EQ(charge_total(), charge);
}

KTEST(mmsvc, noncached_memory_and_its_alias)
{
	uint8_t *p = mm_alloc_noncached(3 * PAGE_SIZE);
	KT_ASSERT(p != NULL);
	p[0] = 1;
	p[3 * PAGE_SIZE - 1] = 2;
	struct pt_trace tr;
	pt_trace(&kernel_pt_root, (uint64_t)(uintptr_t)p + PAGE_SIZE, &tr);
	KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, PT_LEVEL_PT), PAT_INDEX_UC);
	uint64_t pa;
	KT_ASSERT(mm_get_physical_address(p + PAGE_SIZE, &pa));
	/* The direct-map alias is uncached too (split down to a 4 KiB entry). */
	pt_trace(&kernel_pt_root, DIRECT_MAP_BASE + pa, &tr);
	KT_EXPECT_EQ(tr.step[tr.n - 1].level, PT_LEVEL_PT);
	KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, PT_LEVEL_PT), PAT_INDEX_UC);
	mm_free_noncached(p, 3 * PAGE_SIZE);
	/* Write-back again, and merged back into a large page where the neighbours agree. */
	pt_trace(&kernel_pt_root, DIRECT_MAP_BASE + pa, &tr);
	KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, tr.step[tr.n - 1].level), PAT_INDEX_WB);
}

/*
 * A frame has one memory type (docs/vm.md, "Memory types"): the frames of a lazily committed
 * write-combining, uncached or write-through region get that type in the direct map too when
 * they are faulted in (a 4 KiB entry of their own there, zeroed through it), and write-back
 * again, merged back into a large page, once they are freed.
 */
static uint64_t frame_of(struct vm_space *vs, uint64_t va)
{
	struct pt_mapping m;
	return pt_translate(&vs->pt, va, &m) ? m.pa : 0;
}

KTEST(vm, non_write_back_frames_have_that_type_in_the_direct_map)
{
	static const struct {
		unsigned cache, pat;
	} modes[] = { { VMM_FLAG_WRITE_COMBINE, PAT_INDEX_WC },
		      { VMM_FLAG_CACHE_DISABLE, PAT_INDEX_UC },
		      { VMM_FLAG_WRITE_THROUGH, PAT_INDEX_WT } };
	struct vm_space vs;

	KT_ASSERT(test_space_begin(t, &vs));
	for (unsigned c = 0; c < ARRAY_SIZE(modes); c++) {
		uint64_t va, pa[3];
		KT_ASSERT_EQ(vm_allocate(&vs, BASE, 3 * PAGE_SIZE, RES | COM | RW | modes[c].cache, &va), rcOk);
		for (unsigned p = 0; p < 3; p++) {
			KT_EXPECT_EQ(vm_fault(&vs, va + p * PAGE_SIZE, VM_ACCESS_WRITE), VM_FAULT_RESOLVED);
			pa[p] = frame_of(&vs, va + p * PAGE_SIZE);
			struct pt_trace tr;
			pt_trace(&kernel_pt_root, DIRECT_MAP_BASE + pa[p], &tr);
			KT_EXPECT_EQ(tr.step[tr.n - 1].level, PT_LEVEL_PT);
			KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, PT_LEVEL_PT), modes[c].pat);
			const uint64_t *w = phys_to_virt(pa[p]);
			unsigned nonzero = 0;
			for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
				nonzero += w[k] != 0;
			KT_EXPECT_EQ(nonzero, 0);
		}
		KT_EXPECT_EQ(vm_unmap(&vs, va, 3 * PAGE_SIZE), rcOk);
		for (unsigned p = 0; p < 3; p++) {
			struct pt_trace tr;
			pt_trace(&kernel_pt_root, DIRECT_MAP_BASE + pa[p], &tr);
			KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, tr.step[tr.n - 1].level), PAT_INDEX_WB);
		}
	}
	/* A locked write-combining region: the same, at once. */
	uint64_t va;
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 2 * PAGE_SIZE, RES | COM | LCK | RW | VMM_FLAG_WRITE_COMBINE, &va), rcOk);
	struct pt_trace tr;
	pt_trace(&kernel_pt_root, DIRECT_MAP_BASE + frame_of(&vs, va + PAGE_SIZE), &tr);
	KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, PT_LEVEL_PT), PAT_INDEX_WC);
	KT_EXPECT_EQ(vm_unmap(&vs, va, 2 * PAGE_SIZE), rcOk);
	test_space_end(t, &vs);
}
