// SPDX-License-Identifier: MIT
/*
 * The kernel's own work once it is up (kernel/init.h): what the command line asks for (the
 * tests, the benchmarks, the first program, the monitor), running a program as one of the
 * kernel's tasks, and settling before memory counts are compared.
 */
#include <arch/qemu.h>
#include <arch/time.h>
#include <knmm/cmdline.h>
#include <knmm/ktest.h>
#include <knmm/log.h>
#include <kn/task_api.h>
#include <mm/mm.h>
#include <kernel/bench.h>
#include <kernel/init.h>
#include <kernel/monitor.h>
#include <kernel/sched.h>
#include <kernel/task.h>

static void init_start_watched(const char *program);

__noreturn void init_run(void)
{
	char globs[BOOT_CMDLINE_MAX];
	if (cmdline_get_str("test", globs, sizeof(globs))) {
		unsigned failed = ktest_run(globs);
		qemu_exit(failed ? QEMU_EXIT_FAIL : QEMU_EXIT_PASS);
	}
	char bench[16];
	if (cmdline_get_str("bench", bench, sizeof(bench))) { /* bare `bench`, or bench=smp (kernel/bench.c) */
		qemu_exit(bench_run() ? QEMU_EXIT_PASS : QEMU_EXIT_FAIL);
	}
	char init[64];
	bool monitor = cmdline_get_bool("monitor", false);
	if (cmdline_get_str("init", init, sizeof(init))) {
		pr_info("init: starting %s", init);
		if (monitor) {
			init_start_watched(init); /* the prompt comes up at once, init runs meanwhile */
		} else {
			int code = run_program(init, init, KN_TASK_PRIVILEGED, 0);
			pr_info("init: %s exited with %d", init, code);
			qemu_exit(code == 0 ? QEMU_EXIT_PASS : QEMU_EXIT_FAIL);
		}
	}
	if (monitor)
		monitor_run();
	pr_info("knmm: boot complete; nothing to run (init=PROGRAM starts one), leaving QEMU");
	qemu_exit(QEMU_EXIT_PASS);
}

/* With the monitor, init runs as a task the kernel holds (as run_program does), watched by
 * a kernel thread of its own that logs its end when it comes: "init: NAME exited with CODE",
 * or that it froze (it then stays, held, for a dump; `kill` ends it). The kernel's handle to
 * it is closed, once it has exited, at the monitor's next command (task_drop_exited_holds). */
struct init_watch {
	struct task *t;
	Handle hold;
	bool held;
};
static struct init_watch init_watch;

static void init_watch_loop(void *arg)
{
	struct init_watch *w = arg;
	task_wait(w->t, KN_TASK_STATE_EXITED | KN_TASK_STATE_FROZEN, 0);
	if (w->t->state == KN_TASK_STATE_FROZEN && w->held) {
		pr_warn("init: %s froze; the kernel keeps it for a dump (tasks, dump, kill in the monitor)",
			w->t->name);
		task_wait(w->t, KN_TASK_STATE_EXITED, 0); /* (until the monitor kills it) */
	}
	task_wait(w->t, KN_TASK_STATE_EXITED, 0); /* (frozen without a hold: ended as an orphan) */
	pr_info("init: %s exited with %d", w->t->name, w->t->exit_code);
	task_put(w->t); /* (the hold is closed by the monitor with the others of exited tasks) */
	w->t = NULL;
}

static void init_start_watched(const char *program)
{
	struct task *t;
	Retcode rc = task_create(program, program, KN_TASK_PRIVILEGED, NULL, &t);
	if (rc != rcOk) {
		pr_err("init: cannot create it from program %s (Retcode %d)", program, (int)rc);
		return;
	}
	init_watch = (struct init_watch){ .t = t };
	init_watch.held = task_hold(t, &init_watch.hold) == rcOk;
	task_resume(t);
	if (!thread_create_kernel("init-watch", init_watch_loop, &init_watch)) {
		pr_warn("init: no memory for the thread that logs %s's exit: it runs unwatched", program);
		task_put(t); /* (the hold keeps it, and goes with the monitor's others once it exits) */
		init_watch.t = NULL;
	}
}

void kernel_settle(void)
{
	task_wait_teardowns();
	mm_trim_caches();
}

int run_program(const char *program, const char *name, unsigned flags, uint64_t timeout_ns)
{
	struct task *t;
	Retcode rc = task_create(name, program, flags, NULL, &t);

	if (rc != rcOk) {
		pr_err("task %s: cannot create it from program %s (Retcode %d)", name, program, (int)rc);
		return RUN_PROGRAM_FAILED - (int)rc;
	}
	/* The kernel holds it as a parent would: if it freezes (a dumpable crash, or a task it
	 * gave its handle to froze it), it stays for a dump instead of being ended as an orphan,
	 * and this waits for that too, never for ever. */
	Handle hold = 0;
	bool held = task_hold(t, &hold) == rcOk;
	task_resume(t);
	int code;
	if (task_wait(t, KN_TASK_STATE_EXITED | KN_TASK_STATE_FROZEN, timeout_ns ? clock_ns() + timeout_ns : 0) !=
	    rcOk) {
		pr_err("task %s: still running after %llu ms: terminated", name,
		       (unsigned long long)(timeout_ns / 1000000));
		task_terminate(t, KN_EXIT_TERMINATED, true);
		code = t->exit_code;
	} else if (t->state == KN_TASK_STATE_FROZEN && held) {
		pr_warn("task %s: frozen; the kernel keeps it for a dump (tasks, dump in the monitor)", name);
		code = RUN_PROGRAM_FROZEN;
		held = false; /* (the handle stays) */
	} else {
		task_wait(t, KN_TASK_STATE_EXITED, 0); /* (frozen without a hold: ended as an orphan) */
		code = t->exit_code;
	}
	if (held)
		task_drop_hold(hold);
	task_put(t);
	return code;
}
