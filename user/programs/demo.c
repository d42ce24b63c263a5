// SPDX-License-Identifier: MIT
/*
 * What make run shows: a dumpable task overflows its stack into the guard page, is frozen
 * instead of terminated, and the dump collector writes its core file to the dump sink,
 * which make run turns into build/dumps/stack-crash.core for gdb. The crashed task stays
 * frozen, and two tasks that share memory through an MDL stay running, for the monitor. A
 * frozen task lives only while something that can act holds a handle to it (docs/tasks.md):
 * the demo leaves, so it gives its handle to sharer-a, which stays.
 */
#include <knlib.h>

int main(void)
{
	Handle crash, collector, remote;
	KnThreadContext ctx;
	int state = 0, code = -1;

	printf("demo: starting 'stack-crash', a dumpable task that recurses until its stack runs out\n");
	if (KnTaskCreate("stack-crash", "vmchild", KN_TASK_DUMPABLE, &crash) != rcOk)
		return 1;
	KnTaskResume(crash);
	KnTaskWait(crash, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetState(crash, &state);
	if (state != KN_TASK_STATE_FROZEN || KnTaskGetThreadContext(crash, 0, &ctx) != rcOk)
		return 2;
	printf("demo: it is frozen where it failed: page fault at %#llx, rip %#llx, rsp %#llx\n",
	       (unsigned long long)ctx.cr2, (unsigned long long)ctx.rip, (unsigned long long)ctx.rsp);
	printf("demo: the dump collector writes its core file to the dump sink (COM2)\n");
	if (KnTaskCreate("dump:stack-crash", "collector", 0, &collector) != rcOk)
		return 3;
	KnHandleTransfer(collector, crash, KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_VM_READ, &remote);
	KnTaskResume(collector);
	KnTaskWait(collector, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(collector, &code);
	KnHandleClose(collector);
	/* make run's ISO root is the sysroot: gdb finds /boot/vmchild.elf (the core's NT_FILE) there. */
	printf("demo: %s; look at it with: gdb -iex 'set sysroot build/knmm.iso-root' build/user/vmchild.elf "
	       "build/dumps/stack-crash.core\n",
	       code == 0 ? "dumped" : "the dump failed");
	/* Shared memory, for `regions`, `pte` and `mdl`; sharer-a keeps stack-crash frozen (for
	 * `regions stack-crash`). */
	Handle a;
	if (KnTaskCreate("sharer-a", "sharer", 0, &a) != rcOk)
		return 4;
	if (KnHandleTransfer(a, crash, KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE, &remote) != rcOk)
		return 5;
	KnHandleClose(crash);
	KnTaskResume(a);
	KnTaskWait(a, KN_TASK_STATE_EXITED, 200000000ull); /* (time for both to say hello) */
	KnHandleClose(a);
	return code;
}
