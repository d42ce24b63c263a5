// SPDX-License-Identifier: MIT
/*
 * Issue 13: ring 3 cannot hurt the kernel. The ring-3 programs (user/programs/test_hostile.c,
 * hostile_*.c) are run here, the way tests/kernel/test_user.c runs the others, with ASLR on
 * (as the fuzzer that found the issue ran: a task's stack then lies in page tables of its
 * own, and what its tables cost shows).
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/list.h>
#include <knmm/string.h>
#include <kernel/kernel.h>
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
