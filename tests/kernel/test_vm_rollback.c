// SPDX-License-Identifier: MIT
/*
 * Rollback of the vm calls that allocate as they go (SPEC §4.1, mm/vm.h: "a call that fails
 * changes nothing"): an eager, pinned vm_allocate or vm_commit on a private space runs out
 * part-way through, either of frames (the allocator really exhausted: the test holds every
 * free frame but a few) or of page tables (the failing table source of ktest_util). Each
 * failure must return rcOutOfMemory and leave the space as a query walk saw it before, with
 * the same frames behind the pages that were resident, the same free pages, commit charge,
 * locked pages and page-table pages, and a space that passes vm_space_check.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <mm/pmm.h>
#include <mm/vm.h>
#include "ktest_util.h"

#define RW  (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES VMM_FLAG_RESERVE
#define COM VMM_FLAG_COMMIT
#define LCK VMM_FLAG_LOCKED
/* The range the locked calls populate: the last two pages of a 2 MiB window, all of the
 * next one and the first two of the one after: 516 pages under three page tables. */
#define BASE   0x10000000ull
#define LO     (BASE + SIZE_2M - 2 * PAGE_SIZE)
#define NPAGES 516
#define SPAN   ((uint64_t)NPAGES * PAGE_SIZE)
/* A locked region elsewhere (under another PML4 entry: it shares no table with the range),
 * which every failure must leave as it is. */
#define OTHER 0x7f0000000000ull

struct snap {
	unsigned n;
	struct {
		uint64_t addr;
		struct vm_info i;
	} q[32];             /* the walk: one vm_query per run, lo to hi */
	uint64_t pa[NPAGES]; /* the frame behind each page of the range (0: none) */
	uint64_t free_pages, charge, locked, tables;
	uint64_t committed, resident, space_locked, nregions, windows;
};

static struct snap before, after;

static void take_snap(struct vm_space *vs, struct snap *s)
{
	struct charge_stats cs;

	memset(s, 0, sizeof(*s));
	for (uint64_t a = vs->lo; a < vs->hi && s->n < ARRAY_SIZE(s->q);) {
		s->q[s->n].addr = a;
		if (vm_query(vs, a, &s->q[s->n].i) != rcOk || s->q[s->n].i.run_size == 0)
			break; /* (the comparison sees the short walk) */
		a += s->q[s->n++].i.run_size;
	}
	for (unsigned k = 0; k < NPAGES; k++) {
		struct pt_mapping m;
		if (pt_translate(&vs->pt, LO + k * PAGE_SIZE, &m))
			s->pa[k] = m.pa;
	}
	s->free_pages = pmm_free_pages();
	charge_get(&cs);
	s->charge = cs.total;
	s->locked = cs.locked;
	s->tables = pt_table_pages();
	s->committed = vs->committed;
	s->resident = vs->resident;
	s->space_locked = vs->locked;
	s->nregions = vs->nregions;
	s->windows = vs->table_windows;
}

#define SAME(field)                                                                             \
	do {                                                                                    \
		t->checks++;                                                                    \
		if (a->field != b->field)                                                       \
			ktest_fail(t, __FILE__, line, "%s: " #field " %llu, was %llu", what,    \
				   (unsigned long long)b->field, (unsigned long long)a->field); \
	} while (0)

/* b (now) is a (before); reports against the caller's line. */
static void expect_same(struct ktest_ctx *t, int line, const char *what, const struct snap *a, const struct snap *b)
{
	SAME(n);
	for (unsigned k = 0; k < a->n && k < b->n; k++) {
		t->checks++;
		if (a->q[k].addr != b->q[k].addr || memcmp(&a->q[k].i, &b->q[k].i, sizeof(a->q[k].i)) != 0)
			ktest_fail(
				t, __FILE__, line,
				"%s: run %u at %#llx: state %d resident %d flags %#x size %#llx, was %#llx: state %d "
				"resident %d flags %#x size %#llx",
				what, k, (unsigned long long)b->q[k].addr, b->q[k].i.state, b->q[k].i.resident,
				b->q[k].i.flags, (unsigned long long)b->q[k].i.run_size,
				(unsigned long long)a->q[k].addr, a->q[k].i.state, a->q[k].i.resident, a->q[k].i.flags,
				(unsigned long long)a->q[k].i.run_size);
	}
	unsigned moved = 0;
	for (unsigned k = 0; k < NPAGES; k++)
		moved += a->pa[k] != b->pa[k];
	t->checks++;
	if (moved)
		ktest_fail(t, __FILE__, line, "%s: %u pages of the range changed frames", what, moved);
	SAME(free_pages);
	SAME(charge);
	SAME(locked);
	SAME(tables);
	SAME(committed);
	SAME(resident);
	SAME(space_locked);
	SAME(nregions);
	SAME(windows);
}

/* The space now is the space `before`, and it is sound. */
static void expect_unchanged(struct ktest_ctx *t, int line, const char *what, struct vm_space *vs)
{
	char why[160] = "";

	take_snap(vs, &after);
	expect_same(t, line, what, &before, &after);
	t->checks++;
	if (!vm_space_check(vs, why, sizeof(why)))
		ktest_fail(t, __FILE__, line, "%s: vm_space_check: %s", what, why);
}

/* An eager pinned vm_allocate of the range (alloc) or vm_commit of it, with only `keep`
 * frames free: rcOutOfMemory, and every frame it took back at once. */
static void fail_out_of_frames(struct ktest_ctx *t, int line, struct vm_space *vs, bool alloc, uint64_t keep)
{
	struct list_head held = LIST_HEAD_INIT(held);
	uint64_t out = 0, left = UINT64_MAX;
	Retcode rc = rcOk;
	char what[48];

	ksnprintf(what, sizeof(what), "%s, %llu frames free", alloc ? "vm_allocate" : "vm_commit",
		  (unsigned long long)keep);
	bool held_ok = test_frames_hold(keep, &held);
	if (held_ok) {
		rc = alloc ? vm_allocate(vs, LO, SPAN, RES | COM | LCK | RW, &out) : vm_commit(vs, LO, SPAN, LCK);
		left = pmm_free_pages();
	}
	test_frames_release(&held);
	t->checks += 3;
	if (!held_ok)
		ktest_fail(t, __FILE__, line, "%s: could not hold the other frames", what);
	else if (rc != rcOutOfMemory || out != 0 || left != keep)
		ktest_fail(t, __FILE__, line, "%s: rc %d, out %#llx, %llu frames left", what, rc,
			   (unsigned long long)out, (unsigned long long)left);
	expect_unchanged(t, line, what, vs);
}

/* The same with page tables running out after `budget` more. */
static void fail_out_of_tables(struct ktest_ctx *t, int line, struct vm_space *vs, bool alloc, unsigned budget)
{
	uint64_t out = 0;
	char what[48];

	ksnprintf(what, sizeof(what), "%s, %u page tables", alloc ? "vm_allocate" : "vm_commit", budget);
	test_tables_fail_after(budget);
	Retcode rc = alloc ? vm_allocate(vs, LO, SPAN, RES | COM | LCK | RW, &out) : vm_commit(vs, LO, SPAN, LCK);
	test_tables_restore();
	t->checks++;
	if (rc != rcOutOfMemory || out != 0)
		ktest_fail(t, __FILE__, line, "%s: rc %d, out %#llx", what, rc, (unsigned long long)out);
	expect_unchanged(t, line, what, vs);
}

/* The range is resident and locked now: the walk sees the change. */
static void expect_populated(struct ktest_ctx *t, struct vm_space *vs)
{
	unsigned missing = 0;

	take_snap(vs, &after);
	for (unsigned k = 0; k < NPAGES; k++)
		missing += after.pa[k] == 0;
	KT_EXPECT_EQ(missing, 0);
	KT_EXPECT_EQ(after.locked, before.locked + NPAGES);
	struct vm_info i;
	KT_EXPECT_EQ(vm_query(vs, LO, &i), rcOk);
	KT_EXPECT_EQ(i.state, VMM_STATE_COMMITTED);
	KT_EXPECT(i.resident && (i.flags & VMM_FLAG_LOCKED));
}

KTEST(vm, locked_allocate_out_of_frames_changes_nothing)
{
	struct vm_space vs;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, OTHER, 4 * PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	take_snap(&vs, &before);
	/* 516 frames and 5 page tables (PDPT, PD, 3 PTs) the space lacks: with fewer frames
	 * free the call fails, in the frames (first three) or in the tables (last two). */
	fail_out_of_frames(t, __LINE__, &vs, true, 0);
	fail_out_of_frames(t, __LINE__, &vs, true, 1);
	fail_out_of_frames(t, __LINE__, &vs, true, NPAGES - 1);
	fail_out_of_frames(t, __LINE__, &vs, true, NPAGES);
	fail_out_of_frames(t, __LINE__, &vs, true, NPAGES + 4);
	/* With memory to spare it works, and the walk sees it; unmapped, the space is as before. */
	KT_ASSERT_EQ(vm_allocate(&vs, LO, SPAN, RES | COM | LCK | RW, &va), rcOk);
	KT_EXPECT_EQ(va, LO);
	expect_populated(t, &vs);
	KT_EXPECT_EQ(after.n, before.n + 2);
	KT_EXPECT_EQ(after.tables, before.tables + 5);
	KT_EXPECT_EQ(after.free_pages, before.free_pages - NPAGES - 5);
	KT_EXPECT_EQ(after.charge, before.charge + NPAGES + 3 * VM_TABLE_CHARGE_PER_WINDOW);
	KT_EXPECT_EQ(vm_unmap(&vs, LO, SPAN), rcOk);
	expect_unchanged(t, __LINE__, "after the unmap", &vs);
	test_space_end(t, &vs);
}

KTEST(vm, locked_allocate_out_of_page_tables_changes_nothing)
{
	struct vm_space vs;
	uint64_t va;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, OTHER, 4 * PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	take_snap(&vs, &before);
	/* PDPT, PD, then the three PTs in address order: each one missing in turn. */
	for (unsigned budget = 0; budget < 5; budget++)
		fail_out_of_tables(t, __LINE__, &vs, true, budget);
	test_tables_fail_after(5);
	Retcode rc = vm_allocate(&vs, LO, SPAN, RES | COM | LCK | RW, &va);
	test_tables_restore();
	KT_ASSERT_EQ(rc, rcOk);
	expect_populated(t, &vs);
	KT_EXPECT_EQ(vm_unmap(&vs, LO, SPAN), rcOk);
	expect_unchanged(t, __LINE__, "after the unmap", &vs);
	test_space_end(t, &vs);
}

/* vm_commit(LOCKED) over a region that already has state in the range: lazily committed
 * pages, two of them resident (their page table exists), a read-only run. */
KTEST(vm, locked_commit_out_of_memory_changes_nothing)
{
	struct vm_space vs;
	uint64_t va, mid = BASE + SIZE_2M;

	KT_ASSERT(test_space_begin(t, &vs));
	KT_ASSERT_EQ(vm_allocate(&vs, OTHER, 4 * PAGE_SIZE, RES | COM | LCK | RW, &va), rcOk);
	KT_ASSERT_EQ(vm_allocate(&vs, BASE, 3 * SIZE_2M, RES | RW, &va), rcOk);
	KT_ASSERT_EQ(vm_commit(&vs, mid, 16 * PAGE_SIZE, 0), rcOk);
	KT_ASSERT_EQ(vm_fault(&vs, mid, VM_ACCESS_WRITE), VM_FAULT_RESOLVED);
	KT_ASSERT_EQ(vm_fault(&vs, mid + 5 * PAGE_SIZE, VM_ACCESS_WRITE), VM_FAULT_RESOLVED);
	KT_ASSERT_EQ(vm_protect(&vs, mid + 8 * PAGE_SIZE, 4 * PAGE_SIZE, VMM_FLAG_READ), rcOk);
	take_snap(&vs, &before);
	KT_EXPECT_EQ(before.resident, 4 + 2);
	KT_EXPECT_GE(before.n, 6); /* free, region runs (several), OTHER, free */
	/* 514 frames and 2 page tables (the PTs of the outer windows) are missing. */
	fail_out_of_frames(t, __LINE__, &vs, false, 0);
	fail_out_of_frames(t, __LINE__, &vs, false, 1);
	fail_out_of_frames(t, __LINE__, &vs, false, NPAGES - 3);
	fail_out_of_frames(t, __LINE__, &vs, false, NPAGES - 2);
	fail_out_of_frames(t, __LINE__, &vs, false, NPAGES - 1);
	fail_out_of_tables(t, __LINE__, &vs, false, 0);
	fail_out_of_tables(t, __LINE__, &vs, false, 1);
	/* Then it works: the two resident pages keep their frames. */
	test_tables_fail_after(2);
	Retcode rc = vm_commit(&vs, LO, SPAN, LCK);
	test_tables_restore();
	KT_ASSERT_EQ(rc, rcOk);
	expect_populated(t, &vs);
	unsigned p0 = (unsigned)((mid - LO) / PAGE_SIZE);
	KT_EXPECT(before.pa[p0] && after.pa[p0] == before.pa[p0]);
	KT_EXPECT(before.pa[p0 + 5] && after.pa[p0 + 5] == before.pa[p0 + 5]);
	KT_EXPECT_EQ(after.tables, before.tables + 2);
	KT_EXPECT_EQ(after.free_pages, before.free_pages - (NPAGES - 2) - 2);
	/* the 500 reserved pages of the range, and the two windows that had no commit */
	KT_EXPECT_EQ(after.charge, before.charge + NPAGES - 16 + 2 * VM_TABLE_CHARGE_PER_WINDOW);
	test_space_end(t, &vs);
}
