// SPDX-License-Identifier: MIT
/*
 * MDLs from the kernel's side (mm/mdl.c): frames shared by an MDL and its mappings go back
 * once both are gone, in either order; fictitious runs map as committed-not-resident; the
 * NT-style services: probe and lock (access checks, pins against decommit, no second lock),
 * system mappings with a cache mode, MDLs of pool buffers. The harness checks that every
 * test leaves free pages and the commit charge as it found them.
 */
#include <arch/cpu.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include <mm/mdl.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include <mm/vm.h>
#include "ktest_util.h"

#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define BASE 0x20000000ull

static uint64_t free_pages(void)
{
	mm_trim_caches();
	return pmm_free_pages();
}

/* The frame behind va in a space, or 0. */
static uint64_t frame_at(struct vm_space *vs, uint64_t va)
{
	struct pt_mapping m;
	return pt_translate(&vs->pt, va, &m) ? m.pa : 0;
}

static void map_and_free(struct ktest_ctx *t, bool mdl_first)
{
	struct vm_space vs;
	struct mdl *m;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	uint64_t before = free_pages();
	KT_ASSERT_EQ(mdl_create(5 * PAGE_SIZE + 17, RW, NULL, &m), rcOk);
	KT_EXPECT_EQ(m->pages, 6);
	KT_EXPECT_EQ(m->bytes, 5 * PAGE_SIZE + 17);
	memset(mdl_page_address(m, 5), 0x5a, 100);
	KT_ASSERT_EQ(vm_map_mdl(&vs, m, 0, 6, BASE, RW, VMM_FLAG_RWX_MASK, "mdl", &va), rcOk);
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 6 * PAGE_SIZE), 6);
	KT_EXPECT_EQ(frame_at(&vs, va + 5 * PAGE_SIZE), virt_to_phys_direct(mdl_page_address(m, 5)));
	KT_EXPECT_EQ(*(uint8_t *)phys_to_virt(frame_at(&vs, va + 5 * PAGE_SIZE) + 99), 0x5a);
	/* A mapping may not exceed the MDL's maximum protection, now or later. */
	uint64_t va2;
	KT_EXPECT_EQ(vm_map_mdl(&vs, m, 0, 1, 0, VMM_FLAG_RWX_MASK, VMM_FLAG_RWX_MASK, "mdl", &va2), rcAccessDenied);
	KT_EXPECT_EQ(vm_protect(&vs, va, PAGE_SIZE, VMM_FLAG_RWX_MASK), rcAccessDenied);
	KT_EXPECT_EQ(vm_protect(&vs, va, PAGE_SIZE, VMM_FLAG_READ), rcOk);
	/* Pinned by the MDL: no decommit while it lives. */
	KT_EXPECT_EQ(vm_decommit(&vs, va, PAGE_SIZE), rcBusy);
	KT_EXPECT(free_pages() <= before - 6);
	if (mdl_first) {
		mdl_free(m);
		KT_EXPECT_EQ(test_resident_pages(&vs, va, 6 * PAGE_SIZE), 6); /* the mapping keeps them */
		KT_EXPECT_EQ(vm_decommit(&vs, va, PAGE_SIZE), rcOk);          /* not pinned any more */
		KT_EXPECT_EQ(vm_unmap(&vs, va, 6 * PAGE_SIZE), rcOk);
	} else {
		KT_EXPECT_EQ(vm_unmap(&vs, va, 6 * PAGE_SIZE), rcOk);
		KT_EXPECT_EQ(*(uint8_t *)mdl_page_address(m, 5), 0x5a); /* the MDL keeps them */
		mdl_free(m);
	}
	KT_EXPECT_EQ(free_pages(), before);
	test_space_end(t, &vs);
}

KTEST(mdl, frames_go_back_mdl_freed_first) { map_and_free(t, true); }
KTEST(mdl, frames_go_back_mapping_removed_first) { map_and_free(t, false); }

/* A mapping that runs out of page tables half-way undoes itself: no reference, region or
 * charge is left behind, whichever table was the one missing. */
KTEST(mdl, map_rolls_back_when_tables_run_out)
{
	struct vm_space vs;
	struct mdl *m;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(mdl_create(MiB(6), RW, NULL, &m), rcOk); /* three 2 MiB windows: a table each */
	uint64_t before = free_pages(), charge = charge_total(),
		 refs = pa_to_page(m->runs[0].pfn << PAGE_SHIFT)->refcount;
	for (unsigned budget = 0; budget < 5; budget++) {
		test_tables_fail_after(budget);
		KT_EXPECT_EQ(vm_map_mdl(&vs, m, 0, m->pages, BASE, RW, RW, "mdl", &va), rcOutOfMemory);
		test_tables_restore();
		KT_EXPECT_EQ(vs.nregions, 0);
		KT_EXPECT_EQ(charge_total(), charge);
		KT_EXPECT_EQ(pa_to_page(m->runs[0].pfn << PAGE_SHIFT)->refcount, refs);
		KT_EXPECT_EQ(pa_to_page((m->runs[m->nruns - 1].pfn + m->runs[m->nruns - 1].count - 1) << PAGE_SHIFT)
				     ->refcount,
			     refs);
	}
	KT_EXPECT_EQ(free_pages(), before);
	KT_ASSERT_EQ(vm_map_mdl(&vs, m, 0, m->pages, BASE, RW, RW, "mdl", &va), rcOk);
	KT_EXPECT_EQ(test_resident_pages(&vs, va, MiB(6)), MiB(6) / PAGE_SIZE);
	KT_EXPECT_EQ(vm_unmap(&vs, va, MiB(6)), rcOk);
	mdl_free(m);
	test_space_end(t, &vs);
}

/* Fictitious pages map committed and not resident; a touch gives the mapper its own frame. */
KTEST(mdl, fictitious_runs_map_lazily)
{
	struct vm_space vs;
	struct mdl *real, *m;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(mdl_create(2 * PAGE_SIZE, RW, NULL, &real), rcOk);
	struct mdl_run runs[] = { { MDL_FICTITIOUS, 3 }, { real->runs[0].pfn, 2 }, { MDL_FICTITIOUS, 1 } };
	KT_ASSERT_EQ(mdl_create_from_runs(runs, 3, VMM_FLAG_READ, NULL, &m), rcOk);
	KT_EXPECT_EQ(m->pages, 6);
	KT_ASSERT_EQ(vm_map_mdl(&vs, m, 0, 6, 0, VMM_FLAG_READ, VMM_FLAG_RWX_MASK, "mdl", &va), rcOk);
	KT_EXPECT_EQ(test_resident_pages(&vs, va, 6 * PAGE_SIZE), 2);
	struct vm_info i;
	KT_EXPECT_EQ(vm_query(&vs, va, &i), rcOk);
	KT_EXPECT(i.state == VMM_STATE_COMMITTED && !i.resident && i.run_size == 3 * PAGE_SIZE);
	uint64_t counters[8], n = 0;
	bool first_used = true;
	KT_EXPECT_EQ(vm_usage_map(&vs, va, 0, counters, 8, &first_used, &n), rcOk);
	KT_EXPECT(n == 3 && !first_used && counters[0] == 3 && counters[1] == 2 && counters[2] == 1);
	KT_EXPECT_EQ(vm_fault(&vs, va + PAGE_SIZE, VM_ACCESS_READ), VM_FAULT_RESOLVED);
	uint64_t got = frame_at(&vs, va + PAGE_SIZE);
	KT_EXPECT(got && got >> PAGE_SHIFT != real->runs[0].pfn && got >> PAGE_SHIFT != real->runs[0].pfn + 1);
	KT_EXPECT_EQ(vm_usage_map(&vs, va, 0, counters, 8, &first_used, &n), rcOk);
	KT_EXPECT(n == 5 && !first_used && counters[0] == 1 && counters[1] == 1 && counters[2] == 1 &&
		  counters[3] == 2 && counters[4] == 1);
	mdl_free(m);
	mdl_free(real);
	test_space_end(t, &vs);
}

/* NT MmProbeAndLockPages: the access check, the pins, no second lock, unlock. */
KTEST(mdl, probe_and_lock)
{
	struct vm_space vs;
	struct mdl *m;
	uint64_t ro, rw;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 4 * PAGE_SIZE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_READ, &ro),
		     rcOk);
	KT_ASSERT_EQ(mdl_describe(&vs, ro, 4 * PAGE_SIZE, NULL, &m), rcOk);
	uint64_t charge = charge_total();
	KT_EXPECT_EQ(mdl_probe_and_lock(m, VMM_FLAG_WRITE, MDL_CACHE_ANY), rcAccessDenied);
	KT_EXPECT_EQ(m->nruns, 0);
	KT_EXPECT_EQ(charge_total(), charge);
	KT_EXPECT_EQ(test_resident_pages(&vs, ro, 4 * PAGE_SIZE), 0); /* refused before anything was touched */
	KT_EXPECT_EQ(mdl_probe_and_lock(m, VMM_FLAG_READ, MDL_CACHE_ANY), rcOk);
	KT_EXPECT_EQ(test_resident_pages(&vs, ro, 4 * PAGE_SIZE), 4); /* lazy pages got their frames */
	KT_EXPECT_EQ(pa_to_page(frame_at(&vs, ro + PAGE_SIZE))->pincount, 1);
	KT_EXPECT_EQ(mdl_probe_and_lock(m, VMM_FLAG_READ, MDL_CACHE_ANY), rcBusy);
	KT_EXPECT_EQ(vm_decommit(&vs, ro, 4 * PAGE_SIZE), rcBusy);
	KT_EXPECT_EQ(test_resident_pages(&vs, ro, 4 * PAGE_SIZE), 4);
	mdl_unlock(m);
	KT_EXPECT_EQ(pa_to_page(frame_at(&vs, ro + PAGE_SIZE))->pincount, 0);
	KT_EXPECT_EQ(charge_total(), charge);
	KT_EXPECT_EQ(vm_decommit(&vs, ro, 4 * PAGE_SIZE), rcOk);
	mdl_free(m);

	/* A range that leaves its region, or holds reserved pages, is refused. */
	KT_ASSERT_EQ(vm_allocate(&vs, BASE + MiB(1), 4 * PAGE_SIZE, VMM_FLAG_RESERVE | RW, &rw), rcOk);
	KT_ASSERT_EQ(mdl_describe(&vs, rw, 8 * PAGE_SIZE, NULL, &m), rcOk);
	KT_EXPECT_EQ(mdl_probe_and_lock(m, VMM_FLAG_READ, MDL_CACHE_ANY), rcInvalidArgument);
	mdl_free(m);
	KT_ASSERT_EQ(mdl_describe(&vs, rw, 4 * PAGE_SIZE, NULL, &m), rcOk);
	KT_EXPECT_EQ(mdl_probe_and_lock(m, VMM_FLAG_READ, MDL_CACHE_ANY), rcInvalidArgument);
	mdl_free(m);
	test_space_end(t, &vs);
}

/* NT MmGetSystemAddressForMdlSafe: the kernel sees the bytes the user mapping holds, with
 * the MDL's cache mode (another is refused: a frame has one memory type). */
KTEST(mdl, system_mapping_reads_the_user_bytes)
{
	struct vm_space vs;
	struct mdl *m;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(
		vm_allocate(&vs, BASE, 3 * PAGE_SIZE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW, &va),
		rcOk);
	for (unsigned p = 0; p < 3; p++)
		memset(phys_to_virt(frame_at(&vs, va + p * PAGE_SIZE)), 'a' + p, PAGE_SIZE);
	KT_ASSERT_EQ(mdl_describe(&vs, va, 3 * PAGE_SIZE, NULL, &m), rcOk);
	KT_ASSERT_EQ(mdl_probe_and_lock(m, VMM_FLAG_WRITE, MDL_CACHE_ANY), rcOk);
	uint8_t *sys = mdl_map_system(m, 0);
	KT_ASSERT(sys != NULL);
	KT_EXPECT(sys[0] == 'a' && sys[PAGE_SIZE + 7] == 'b' && sys[3 * PAGE_SIZE - 1] == 'c');
	sys[PAGE_SIZE] = 'Z';
	KT_EXPECT_EQ(*(uint8_t *)phys_to_virt(frame_at(&vs, va + PAGE_SIZE)), 'Z');
	mdl_unmap_system(sys, m);
	KT_EXPECT(!mm_is_address_valid(sys));
	/* Write-back memory cannot be mapped uncached (it would alias itself with two types). */
	KT_EXPECT(mdl_map_system(m, VMM_FLAG_CACHE_DISABLE) == NULL);
	sys = mdl_map_system(m, VMM_FLAG_WRITE_BACK); /* (its own mode, named) */
	KT_EXPECT(sys != NULL);
	if (sys)
		mdl_unmap_system(sys, m);
	mdl_unlock(m);
	mdl_free(m);
	/* An uncached MDL: its system mapping's entries carry the UC PAT index, and so does the
	 * frames' entry in the direct map. */
	KT_ASSERT_EQ(mdl_create(2 * PAGE_SIZE, RW | VMM_FLAG_CACHE_DISABLE, NULL, &m), rcOk);
	sys = mdl_map_system(m, VMM_FLAG_CACHE_DISABLE);
	KT_ASSERT(sys != NULL);
	struct pt_trace tr;
	pt_trace(&kernel_pt_root, (uint64_t)(uintptr_t)sys, &tr);
	KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, PT_LEVEL_PT), PAT_INDEX_UC);
	KT_EXPECT(sys[PAGE_SIZE + 5] == 0);
	pt_trace(&kernel_pt_root, DIRECT_MAP_BASE + (m->runs[0].pfn << PAGE_SHIFT), &tr);
	KT_EXPECT_EQ(tr.step[tr.n - 1].level, PT_LEVEL_PT);
	KT_EXPECT_EQ(pte_pat_index(tr.step[tr.n - 1].entry, PT_LEVEL_PT), PAT_INDEX_UC);
	KT_EXPECT(mdl_map_system(m, VMM_FLAG_WRITE_COMBINE) == NULL);
	mdl_unmap_system(sys, m);
	mdl_free(m);
	test_space_end(t, &vs);
}

/* NT MmBuildMdlForNonPagedPool: an MDL over a pool block, mapped again by the kernel. */
KTEST(mdl, pool_buffer)
{
	test_mm_settle();
	uint8_t *buf = pool_alloc(3 * PAGE_SIZE, POOL_TAG('T', 'm', 'd', 'l'));
	struct mdl *m;

	KT_ASSERT(buf != NULL);
	memset(buf, 0x33, 3 * PAGE_SIZE);
	KT_ASSERT_EQ(mdl_build_for_pool(buf, 3 * PAGE_SIZE, &m), rcOk);
	uint64_t in_page = (uint64_t)(uintptr_t)buf & PAGE_MASK;
	uint8_t *sys = mdl_map_system(m, 0);
	KT_ASSERT(sys != NULL);
	KT_EXPECT_EQ(sys[in_page + 5], 0x33);
	sys[in_page + 6] = 0x44;
	KT_EXPECT_EQ(buf[6], 0x44);
	mdl_unmap_system(sys, m);
	mdl_free(m);
	KT_EXPECT_EQ(mdl_build_for_pool((void *)(uintptr_t)KERNEL_VMA, 16, &m), rcInvalidArgument);
	pool_free(buf);
}

/* Clones share frames: both MDLs pin them, each holds them until it goes. */
KTEST(mdl, clone_shares_frames)
{
	struct mdl *a, *b;
	uint64_t before = free_pages();

	KT_ASSERT_EQ(mdl_create(4 * PAGE_SIZE, RW, NULL, &a), rcOk);
	KT_ASSERT_EQ(mdl_clone(a, NULL, &b), rcOk);
	KT_EXPECT_EQ(mdl_page_address(a, 3), mdl_page_address(b, 3));
	KT_EXPECT_EQ(pa_to_page(virt_to_phys_direct(mdl_page_address(a, 3)))->pincount, 2);
	mdl_free(a);
	*(uint8_t *)mdl_page_address(b, 3) = 1; /* still b's */
	KT_EXPECT_EQ(pa_to_page(virt_to_phys_direct(mdl_page_address(b, 3)))->pincount, 1);
	mdl_free(b);
	KT_EXPECT_EQ(free_pages(), before);
}
