// SPDX-License-Identifier: MIT
/*
 * Tasks: lifecycle and states, preemption (a busy loop does not starve others), isolation
 * (kernel memory, another task's memory, every kind of exception: the offender ends, the
 * rest goes on), and 200 tasks created and exited with every page and commit back.
 */
#include <knlib.h>

/* Far past the end of evil's image, so that the same address is unmapped there. */
static struct {
	char pad[256 * 1024];
	char secret[64];
} blob = { .secret = "the parent's secret" };

static bool stats_equal(const KnMemStats *a, const KnMemStats *b)
{
	return a->freePages == b->freePages && a->commitCharge == b->commitCharge && a->tasks == b->tasks &&
	       a->threads == b->threads;
}

static void lifecycle(void)
{
	Handle h;
	int state = 0, code = -5;

	ktap_rc(KnTaskCreate("child", "hello", 0, &h), rcOk, "create");
	ktap_rc(KnTaskGetState(h, &state), rcOk, "get state");
	ktap_check(state == KN_TASK_STATE_CREATED, "created until resumed", "state %d", state);
	ktap_rc(KnTaskGetExitCode(h, &code), rcWrongState, "no exit code before exit");
	ktap_rc(KnTaskResume(h), rcOk, "resume");
	ktap_rc(KnTaskResume(h), rcWrongState, "second resume");
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_EXITED, 5000000000ull), rcOk, "wait for exit");
	KnTaskGetState(h, &state);
	ktap_check(state == KN_TASK_STATE_EXITED, "exited", "state %d", state);
	ktap_rc(KnTaskGetExitCode(h, &code), rcOk, "exit code");
	ktap_check(code == 0, "exit code 0", "code %d", code);
	ktap_rc(KnTaskWait(h, 0x100, 0), rcInvalidArgument, "wait for no known state");
	ktap_rc(KnHandleClose(h), rcOk, "close");
	ktap_rc(KnTaskCreate("child", "no-such-program", 0, &h), rcNotFound, "unknown program");
	ktap_rc(KnTaskCreate("", "hello", 0, &h), rcInvalidArgument, "empty name");
	ktap_rc(KnTaskCreate("a-name-that-is-much-too-long-for-a-task", "hello", 0, &h), rcInvalidArgument,
		"long name");
	ktap_rc(KnTaskCreate("child", "hello", 0x100, &h), rcInvalidArgument, "unknown flags");
	ktap_rc(KnTaskCreate("child", "hello", KN_TASK_PRIVILEGED, &h), rcAccessDenied, "privilege not granted");
	ktap_rc(KnTaskWait(KN_HANDLE_SELF, KN_TASK_STATE_EXITED, ~0ull), rcWrongState, "waiting for our own exit");
	ktap_rc(KnTaskWait(KN_HANDLE_SELF, KN_TASK_STATE_RUNNING | KN_TASK_STATE_EXITED, ~0ull), rcOk,
		"waiting for ourselves to run");
}

/* A task blocked in a system call still ends when terminated. */
static void terminate_blocked(void)
{
	Handle spinner, waiter, remote;
	int code = 0;

	KnTaskCreate("spinner", "spin", 0, &spinner);
	KnTaskResume(spinner);
	ktap_rc(KnTaskCreate("actor-wait", "actor", 0, &waiter), rcOk, "create a task that will block");
	ktap_rc(KnHandleTransfer(waiter, spinner, 0, &remote), rcOk, "give it something to wait for");
	KnTaskResume(waiter);
	ktap_rc(KnTaskWait(waiter, KN_TASK_STATE_EXITED, 100000000ull), rcBusy, "it blocks");
	ktap_rc(KnTaskTerminate(waiter), rcOk, "terminate it while it waits");
	KnTaskGetExitCode(waiter, &code);
	ktap_check(code == KN_EXIT_TERMINATED, "it ended, terminated", "code %d", code);
	KnTaskTerminate(spinner);
	KnHandleClose(waiter);
	KnHandleClose(spinner);
}

/* Ring 3 may set RFLAGS.AC; the kernel's debug checks panic if it ever runs with it. */
static void alignment_check_flag(void)
{
	Handle h;
	int code = 0;

	ktap_rc(KnTaskCreate("actor-ac", "actor", 0, &h), rcOk, "create a task that sets RFLAGS.AC");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_EXITED, 100000000ull), rcBusy,
		"it runs with AC set (interrupts, syscalls)");
	KnTaskTerminate(h);
	KnTaskGetExitCode(h, &code);
	ktap_check(code == KN_EXIT_TERMINATED, "... and the kernel was not affected", "code %d", code);
	KnHandleClose(h);
}

static void preemption(void)
{
	Handle spinner, worker;
	int state = 0, code = 0;

	ktap_rc(KnTaskCreate("spinner", "spin", 0, &spinner), rcOk, "create a busy loop");
	KnTaskResume(spinner);
	ktap_rc(KnTaskCreate("worker", "hello", 0, &worker), rcOk, "create a worker");
	KnTaskResume(worker);
	ktap_rc(KnTaskWait(worker, KN_TASK_STATE_EXITED, 10000000000ull), rcOk,
		"the worker finishes beside the busy loop");
	/* While we wait, two busy loops share the CPU: the finite one ends only if the endless
	 * one is preempted. */
	Handle finite;
	ktap_rc(KnTaskCreate("spin-20", "spin", 0, &finite), rcOk, "create a finite busy loop");
	KnTaskResume(finite);
	ktap_rc(KnTaskWait(finite, KN_TASK_STATE_EXITED, 30000000000ull), rcOk,
		"a finite busy loop finishes beside an endless one");
	KnTaskGetExitCode(finite, &code);
	ktap_check(code == 0, "... having run to its end", "code %d", code);
	KnHandleClose(finite);
	ktap_rc(KnTaskWait(spinner, KN_TASK_STATE_EXITED, 50000000ull), rcBusy,
		"waiting for the endless one times out");
	ktap_rc(KnTaskWait(spinner, KN_TASK_STATE_EXITED, 0), rcBusy, "a timeout of 0 just looks");
	KnTaskGetState(spinner, &state);
	ktap_check(state == KN_TASK_STATE_RUNNING, "it is running", "state %d", state);
	ktap_rc(KnTaskTerminate(spinner), rcOk, "terminate the busy loop");
	KnTaskGetState(spinner, &state);
	KnTaskGetExitCode(spinner, &code);
	ktap_check(state == KN_TASK_STATE_EXITED && code == KN_EXIT_TERMINATED, "terminated", "state %d code %d", state,
		   code);
	ktap_rc(KnTaskTerminate(spinner), rcOk, "terminating an exited task");
	KnHandleClose(spinner);
	KnHandleClose(worker);
}

static void isolation(void)
{
	static const char *const roles[] = { "kread", "kwrite", "kexec", "null", "ud", "div", "priv", "brk" };
	char name[32];

	for (unsigned i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		int code = run_task(roles[i], "evil", 0);
		ksnprintf(name, sizeof(name), "%s ends the task", roles[i]);
		ktap_check(code == KN_EXIT_EXCEPTION, name, "exit code %d", code);
	}
	ksnprintf(name, sizeof(name), "peek:%llx", (unsigned long long)(uintptr_t)blob.secret);
	int code = run_task(name, "evil", 0);
	ktap_check(code == KN_EXIT_EXCEPTION, "another task's memory is not there (read)", "exit code %d", code);
	ksnprintf(name, sizeof(name), "poke:%llx", (unsigned long long)(uintptr_t)blob.secret);
	code = run_task(name, "evil", 0);
	ktap_check(code == KN_EXIT_EXCEPTION, "another task's memory is not there (write)", "exit code %d", code);
	ktap_check(strcmp(blob.secret, "the parent's secret") == 0, "our own memory is untouched", NULL);
	code = run_task("compat", "evil", 0);
	ktap_check(code == KN_EXIT_EXCEPTION, "32-bit code cannot be entered (no SYSCALL from it)", "exit code %d",
		   code);
}

static void many_tasks(void)
{
	KnMemStats before, after;
	unsigned bad = 0;

	KnDebugGetStats(&before);
	for (unsigned i = 0; i < 200; i++)
		bad += run_task("loop", "nop", 0) != 0;
	KnDebugGetStats(&after);
	ktap_check(bad == 0, "200 tasks created and exited", "%u failed", bad);
	ktap_check(stats_equal(&before, &after), "every page and commit back after 200 tasks",
		   "free %llu -> %llu, commit %llu -> %llu, tasks %llu -> %llu, threads %llu -> %llu",
		   (unsigned long long)before.freePages, (unsigned long long)after.freePages,
		   (unsigned long long)before.commitCharge, (unsigned long long)after.commitCharge,
		   (unsigned long long)before.tasks, (unsigned long long)after.tasks,
		   (unsigned long long)before.threads, (unsigned long long)after.threads);
}

int main(void)
{
	KnMemStats start, end;

	ktap_start();
	KnDebugGetStats(&start);
	lifecycle();
	preemption();
	terminate_blocked();
	alignment_check_flag();
	isolation();
	many_tasks();
	KnDebugGetStats(&end);
	ktap_check(stats_equal(&start, &end), "everything back at the end",
		   "free %llu -> %llu, commit %llu -> %llu, tasks %llu -> %llu", (unsigned long long)start.freePages,
		   (unsigned long long)end.freePages, (unsigned long long)start.commitCharge,
		   (unsigned long long)end.commitCharge, (unsigned long long)start.tasks,
		   (unsigned long long)end.tasks);
	ktap_done();
}
