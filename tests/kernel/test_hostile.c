// SPDX-License-Identifier: MIT
/*
 * Issue 13: ring 3 cannot hurt the kernel. The ring-3 program user/programs/test_hostile.c
 * (one program, its parts in user/programs/hostile/, chosen by the task's name) is run here
 * the way tests/kernel/test_user.c runs the others, with ASLR on (as the fuzzer that found
 * the issue ran: a task's stack then lies in page tables of its own, and what its tables
 * cost shows).
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/list.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <kernel/init.h>
#include <kernel/options.h>
#include <kernel/task.h>
#include <mm/pmm.h>
#include <mm/vm.h>
#include "ktest_util.h"

#define PROGRAM_TIMEOUT_NS 300000000000ull

static void run_aslr(struct ktest_ctx *t, const char *program, const char *name, unsigned flags)
{
	bool aslr = kernel_aslr;

	kernel_aslr = true;
	int code = run_program(program, name, flags, PROGRAM_TIMEOUT_NS);
	kernel_aslr = aslr;
	KT_EXPECT_EQ(code, 0);
}

struct leftovers {
	const char *const *names;
	struct task *found[64];
	unsigned n;
};

static void collect(struct task *task, void *arg)
{
	struct leftovers *l = arg;
	if (task->state == KN_TASK_STATE_EXITED || l->n == ARRAY_SIZE(l->found))
		return;
	for (const char *const *name = l->names; *name; name++) {
		if (strcmp(task->name, *name) == 0) {
			task_get(task);
			l->found[l->n++] = task;
			return;
		}
	}
}

/* Ends the tasks of these names that a program left behind (frozen orphans nobody can reach
 * from ring 3, on a kernel that does not release them), so that the tests after it run in
 * the memory they expect. Returns how many there were. */
static unsigned end_leftovers(const char *const *names)
{
	unsigned total = 0;
	for (;;) {
		struct leftovers l = { .names = names };
		task_for_each(collect, &l);
		for (unsigned i = 0; i < l.n; i++) {
			task_terminate(l.found[i], KN_EXIT_TERMINATED, true);
			task_put(l.found[i]);
		}
		total += l.n;
		if (l.n < ARRAY_SIZE(l.found))
			return total;
	}
}

/* Findings 1 (what a task costs is charged), 3 (orphans), 5 (failed calls change nothing),
 * 6 (task output is marked: tests/run.py asserts the lines). */
KTEST(user, hostile)
{
	static const char *const names[] = { "orphan-crash", "spinner", "held", NULL };

	run_aslr(t, "test_hostile", "test_hostile", 0);
	KT_EXPECT_EQ(end_leftovers(names), 0); /* nothing of it outlives the program */
}

/* Finding 4: 2^20 + 64 open/close cycles of one handle slot; no value comes back. */
KTEST(user, hostile_handle_wrap) { run_aslr(t, "test_hostile", "hostile-wrap", 0); }

/*
 * Finding 2, correctness only (its time is a benchmark's: mdl_from_buf_fragmented_per_page):
 * KnPmmMdlCreateFromBuf when every free frame is alone, so that each run of the MDL is one
 * frame. The test takes every free frame, then gives back every other frame of what it took
 * (never two neighbours: each freed frame's buddy stays taken), enough for the program to
 * run, copy FRAG_PAGES pages of its own into an MDL and compare them page by page.
 */
#define FRAG_PAGES 1024u
#define FRAG_SPARE 1024u /* frames beyond the buffer and the MDL: the task, its tables */

/* Frees every even frame of the blocks on `held` (splitting them) until `want` are free;
 * the odd ones, and the order-0 blocks, go to `kept`. Returns how many were freed. */
static uint64_t free_every_other_frame(struct list_head *held, struct list_head *kept, uint64_t want)
{
	uint64_t freed = 0;
	while (freed < want && !list_empty(held)) {
		struct page *p = list_first_entry(held, struct page, lru);
		unsigned order = p->order;
		list_del(&p->lru);
		if (order == 0) {
			list_add(&p->lru, kept);
			continue;
		}
		uint64_t pa = page_to_pa(p);
		pmm_split_allocation(&pmm_main, p, order);
		for (uint64_t i = 0; i < (1ull << order); i++) {
			struct page *q = pa_to_page(pa + i * PAGE_SIZE);
			if ((i & 1) == 0 && freed < want) {
				pmm_free(q, 0);
				freed++;
			} else {
				list_add(&q->lru, kept);
			}
		}
	}
	return freed;
}

KTEST(user, hostile_mdl_fragmented)
{
	const uint64_t want = 2 * FRAG_PAGES + FRAG_SPARE;
	struct list_head held = LIST_HEAD_INIT(held), kept = LIST_HEAD_INIT(kept);
	char name[24];

	test_mm_settle();
	if (pmm_free_pages() < 3 * want)
		KT_SKIP("too little free memory to fragment");
	KT_ASSERT(test_frames_hold(0, &held));
	KT_EXPECT_EQ(free_every_other_frame(&held, &kept, want), want);
	pmm_drain_pcp(&pmm_main);
	KT_EXPECT_EQ(pmm_free_pages(), want);
	/* Every free frame alone: not even two neighbours to allocate. */
	struct page *pair = pmm_alloc(1, 0, PAGE_KERNEL);
	KT_EXPECT(pair == NULL);
	if (pair)
		pmm_free(pair, 1);
	ksnprintf(name, sizeof(name), "frag-%u", FRAG_PAGES);
	int code = run_program("test_hostile", name, 0, PROGRAM_TIMEOUT_NS);
	KT_EXPECT_EQ(code, 0);
	test_frames_release(&kept);
	test_frames_release(&held);
}

/* SPEC §14 quotas: the §9 cases of KnTaskSetQuota / KnTaskGetQuota, and children that try to
 * pass each limit (user/programs/hostile/quota.c, qchild.c). */
KTEST(user, hostile_quota) { run_aslr(t, "test_hostile", "hostile-quota", 0); }

/*
 * Finding 1: suspended tasks until refused, then the whole commit limit touched. Named to
 * run after every other test (tests run in name order): on a kernel whose tasks take frames
 * nobody paid for, it ends the boot with "vm: no frame for a committed page".
 */
KTEST(zz_last, user_hostile_reserve)
{
	static const char *const names[] = { "held", "hold", "q-exhaust", "q-held", NULL };

	run_aslr(t, "test_hostile", "hostile-reserve", 0);
	KT_EXPECT_EQ(end_leftovers(names), 0);
}
