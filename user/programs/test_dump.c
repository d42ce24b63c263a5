// SPDX-License-Identifier: MIT
/*
 * Freeze and dump (SPEC §6, §7): a task that freezes itself is dumped by the collector, and
 * the dump changes neither the free-page count nor the commit charge; a dumpable task that
 * crashes on its stack guard is frozen (not terminated) and dumped; a task that is not
 * dumpable is terminated; KnTaskFreeze, KnTaskGetThreadContext and KnTaskGetNextVmRegion
 * with their refusals; terminating the dumped tasks gives every frame back. The runner
 * checks the core files (build/dumps/) with readelf and gdb.
 */
#include <knlib.h>

#define PAGE       4096ull
#define ALL_RIGHTS (KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE)
#define SECONDS(n) ((n) * 1000000000ull)

/* Runs the collector on `target` (it gets a FREEZE|DUMP handle); returns its exit code. */
static int collect(Handle target, const char *name)
{
	char task[KN_TASK_NAME_MAX + 1];
	Handle c, remote;
	int code = -1;

	ksnprintf(task, sizeof(task), "dump:%s", name);
	if (KnTaskCreate(task, "collector", 0, &c) != rcOk)
		return -100;
	KnHandleTransfer(c, target, KN_RIGHT_FREEZE | KN_RIGHT_DUMP, &remote);
	KnTaskResume(c);
	KnTaskWait(c, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(c, &code);
	KnHandleClose(c);
	return code;
}

static void self_freeze(void)
{
	KnMemStats s0 = mem_stats();
	Handle h;
	int state = 0, flags;
	ktap_rc(KnTaskCreate("dumpee", "dumpee", 0, &h), rcOk, "create dumpee");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_FROZEN, SECONDS(60)), rcOk, "it freezes itself");
	KnTaskGetState(h, &state);
	ktap_check(state == KN_TASK_STATE_FROZEN, "its state is FROZEN", "state %d", state);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_EXITED, 50000000ull), rcBusy, "and stays frozen");

	KnThreadContext ctx;
	ktap_rc(KnTaskGetThreadContext(h, 0, &ctx), rcOk, "thread context");
	ktap_check(ctx.r12 == 0x1212121212121212ull && ctx.r13 == 0x1313131313131313ull &&
			   ctx.r14 == 0x1414141414141414ull && ctx.r15 == 0x1515151515151515ull && ctx.rax == rcOk,
		   "it holds the registers the task set before freezing", "r12 %#llx rax %#llx",
		   (unsigned long long)ctx.r12, (unsigned long long)ctx.rax);
	ktap_check(ctx.exception == KN_NO_EXCEPTION && ctx.rip > 0x400000 && ctx.rip < 0x500000 && ctx.cs == 0x2b,
		   "frozen by request, in its code, in ring 3", "rip %#llx cs %#llx", (unsigned long long)ctx.rip,
		   (unsigned long long)ctx.cs);
	ktap_rc(KnTaskGetThreadContext(h, 1, &ctx), rcEof, "there is one thread");
	ktap_rc(KnTaskGetThreadContext(h, 0, (KnThreadContext *)0xffffffff80000000ull), rcFault,
		"thread context into the kernel half");

	/* The regions, in order, with rcEof after the last. */
	KnMemStats frozen = mem_stats();
	unsigned regions = 0;
	bool ordered = true, readonly = true;
	uint64_t last_end = 0;
	const uint8_t *cursor = 0;
	Retcode rc;
	for (;;) {
		void *base, *va;
		rtl_size_t size;
		Handle mdl;
		rc = KnTaskGetNextVmRegion(h, cursor, &base, &size, &flags, &mdl);
		if (rc != rcOk)
			break;
		regions++;
		ordered &= (uint64_t)(uintptr_t)base >= last_end && size > 0;
		readonly &= KnPmmMdlMap(mdl, 0, PAGE, RTL_NULL, VMM_FLAG_READ | VMM_FLAG_WRITE, &va) == rcAccessDenied;
		KnHandleClose(mdl);
		last_end = (uint64_t)(uintptr_t)base + size;
		cursor = (const uint8_t *)base + size;
	}
	ktap_check(rc == rcEof && regions >= 10 && ordered, "its regions, in order, then rcEof", "rc %d, %u regions", rc,
		   regions);
	ktap_check(readonly, "each region's MDL maps read-only only", NULL);
	ktap_counters_back(&frozen, "walking the regions (and closing their MDLs) changes nothing");

	/* The dump: counters the same before and after. */
	KnMemStats before = mem_stats();
	int code = collect(h, "dumpee");
	ktap_check(code == 0, "the collector dumps it", "exit code %d", code);
	ktap_counters_back(&before, "the dump changed neither free pages nor the commit charge");
	ktap_rc(KnTaskTerminate(h), rcOk, "terminate the frozen task");
	KnTaskGetExitCode(h, &code);
	ktap_check(code == KN_EXIT_TERMINATED, "... it ends, terminated", "code %d", code);
	KnHandleClose(h);
	ktap_counters_back(&s0, "every frame back after the dumped task is terminated");
}

static void refusals(void)
{
	Handle spinner, weak, h;
	void *base;
	rtl_size_t size;
	int flags, state = 0;
	Handle mdl = 0x5eed;
	KnThreadContext ctx;

	KnTaskCreate("spinner", "spin", 0, &spinner);
	ktap_rc(KnTaskFreeze(spinner), rcWrongState, "freeze: a task that has not started");
	KnTaskResume(spinner);
	ktap_rc(KnTaskGetNextVmRegion(spinner, 0, &base, &size, &flags, &mdl), rcWrongState, "regions: a running task");
	ktap_rc(KnTaskGetThreadContext(spinner, 0, &ctx), rcWrongState, "thread context: a running task");
	KnHandleTransfer(KN_HANDLE_SELF, spinner, KN_RIGHT_TERMINATE, &weak);
	ktap_rc(KnTaskFreeze(weak), rcAccessDenied, "freeze: without KN_RIGHT_FREEZE");
	ktap_rc(KnTaskFreeze(spinner), rcOk, "freeze a busy loop from outside");
	ktap_rc(KnTaskWait(spinner, KN_TASK_STATE_FROZEN, SECONDS(10)), rcOk, "... it stops");
	ktap_rc(KnTaskFreeze(spinner), rcOk, "freeze: again (already frozen)");
	/* A task blocked in a system call gets to its safe point too. */
	Handle waiter, remote;
	KnTaskCreate("actor-wait", "actor", 0, &waiter);
	KnHandleTransfer(waiter, spinner, 0, &remote);
	KnTaskResume(waiter);
	ktap_rc(KnTaskWait(waiter, KN_TASK_STATE_EXITED, 100000000ull), rcBusy, "a task blocked in KnTaskWait");
	ktap_rc(KnTaskFreeze(waiter), rcOk, "freeze it");
	ktap_rc(KnTaskWait(waiter, KN_TASK_STATE_FROZEN, SECONDS(10)), rcOk, "... it is frozen");
	KnTaskTerminate(waiter);
	KnHandleClose(waiter);
	ktap_rc(KnTaskGetNextVmRegion(weak, 0, &base, &size, &flags, &mdl), rcAccessDenied, "regions: without KN_RIGHT_DUMP");
	ktap_rc(KnTaskGetThreadContext(weak, 0, &ctx), rcAccessDenied, "thread context: without KN_RIGHT_DUMP");
	ktap_rc(KnTaskGetNextVmRegion(0x12345, 0, &base, &size, &flags, &mdl), rcBadHandle, "regions: a bad handle");
	ktap_rc(KnTaskGetNextVmRegion(spinner, (void *)0x00007ffffffff000ull, &base, &size, &flags, &mdl), rcEof,
		"regions: nothing above the cursor");
	ktap_rc(KnTaskGetNextVmRegion(spinner, 0, &base, &size, &flags, (Handle *)0xffffffff80000000ull), rcFault,
		"regions: handle output in the kernel half");
	ktap_check(mdl == 0x5eed, "no failed call wrote an output", NULL);
	ktap_rc(KnTaskTerminate(spinner), rcOk, "terminate the frozen busy loop");
	KnTaskGetState(spinner, &state);
	ktap_check(state == KN_TASK_STATE_EXITED, "... it exits", "state %d", state);
	ktap_rc(KnTaskFreeze(spinner), rcWrongState, "freeze: an exited task");
	KnHandleClose(weak);
	KnHandleClose(spinner);
	ktap_rc(KnTaskCreate("x", "nop", 0, &h), rcOk, "a task to hand out");
	KnHandleClose(h);
}

static void crashes(void)
{
	KnMemStats s0 = mem_stats();
	Handle h;
	int state = 0, code = 0;
	KnThreadContext ctx;

	/* Not dumpable: terminated. */
	code = run_task("vm-recurse", "vmchild", 0);
	ktap_check(code == KN_EXIT_EXCEPTION, "a crashing task that is not dumpable is terminated", "code %d", code);
	/* Dumpable: frozen where it failed, then dumped. */
	ktap_rc(KnTaskCreate("stack-crash", "vmchild", KN_TASK_DUMPABLE, &h), rcOk, "a dumpable task");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, SECONDS(60)), rcOk, "it crashes");
	KnTaskGetState(h, &state);
	ktap_check(state == KN_TASK_STATE_FROZEN, "... and is frozen, not terminated", "state %d", state);
	ktap_rc(KnTaskGetThreadContext(h, 0, &ctx), rcOk, "the crashed thread's context");
	ktap_check(ctx.exception == 14 && ctx.cr2 != 0 && ctx.rip > 0x400000 && ctx.rip < 0x500000,
		   "a page fault, with its address and rip", "exception %llu cr2 %#llx rip %#llx",
		   (unsigned long long)ctx.exception, (unsigned long long)ctx.cr2, (unsigned long long)ctx.rip);
	printf("    # stack-crash: cr2 %#llx rip %#llx\n", (unsigned long long)ctx.cr2, (unsigned long long)ctx.rip);
	code = collect(h, "stack-crash");
	ktap_check(code == 0, "the collector dumps it", "exit code %d", code);
	KnTaskTerminate(h);
	KnHandleClose(h);
	ktap_counters_back(&s0, "crashes: every frame back");
}

int main(void)
{
	ktap_start();
	KnMemStats start = mem_stats();
	self_freeze();
	refusals();
	crashes();
	ktap_counters_back(&start, "test_dump: free pages and commit charge end where they began");
	ktap_done();
}
