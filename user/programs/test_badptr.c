// SPDX-License-Identifier: MIT
/*
 * Every system call that takes a pointer, with every bad pointer of SPEC §9: kernel half,
 * unmapped, null, read-only output, a range running off the end of the user half. Each is
 * rcFault, and nothing changes (no task made, memory counters as before).
 */
#include <knlib.h>

#define KERNEL   ((void *)0xffffffff80100000ull)
#define UNMAPPED ((void *)0x0000100000000000ull)
#define USER_TOP 0x00007ffffffff000ull

static const char ro_buffer[64] = "read-only";

static KnMemStats before;

static void same(const char *name)
{
	KnMemStats now;
	KnDebugGetStats(&now);
	ktap_check(now.freePages == before.freePages && now.commitCharge == before.commitCharge &&
			   now.tasks == before.tasks,
		   name, "free %llu -> %llu, commit %llu -> %llu, tasks %llu -> %llu",
		   (unsigned long long)before.freePages, (unsigned long long)now.freePages,
		   (unsigned long long)before.commitCharge, (unsigned long long)now.commitCharge,
		   (unsigned long long)before.tasks, (unsigned long long)now.tasks);
}

int main(void)
{
	void *const bad[] = { KERNEL, UNMAPPED, NULL };
	const char *const what[] = { "kernel half", "unmapped", "null" };
	char name[80];
	Handle h, t;
	int v;
	rtl_uint32_t r;

	ktap_start();
	ktap_rc(KnDebugGetStats(&before), rcOk, "stats");
	for (unsigned i = 0; i < 3; i++) {
#define CASE(call, label)                                                \
	do {                                                             \
		ksnprintf(name, sizeof(name), "%s: %s", label, what[i]); \
		ktap_rc(call, rcFault, name);                            \
	} while (0)
		CASE(KnDebugWrite(0, bad[i], 8), "KnDebugWrite buffer");
		CASE(KnDebugGetStats(bad[i]), "KnDebugGetStats output");
		CASE(KnTaskCreate(bad[i], "nop", 0, &h), "KnTaskCreate name");
		CASE(KnTaskCreate("x", bad[i], 0, &h), "KnTaskCreate program");
		CASE(KnTaskCreate("x", "nop", 0, bad[i]), "KnTaskCreate output");
		CASE(KnTaskGetState(KN_HANDLE_SELF, bad[i]), "KnTaskGetState output");
		CASE(KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, 0, bad[i]), "KnHandleTransfer output");
		CASE(KnHandleEnumerate(0, bad[i], &v, &r), "KnHandleEnumerate handle");
		CASE(KnHandleEnumerate(0, &h, bad[i], &r), "KnHandleEnumerate type");
		CASE(KnHandleEnumerate(0, &h, &v, bad[i]), "KnHandleEnumerate rights");
#undef CASE
	}
	/* Read-only outputs: the kernel writes only through the copy routines, which fail. */
	ktap_rc(KnDebugGetStats((KnMemStats *)(void *)ro_buffer), rcFault, "KnDebugGetStats into read-only memory");
	ktap_rc(KnTaskCreate("x", "nop", 0, (Handle *)(void *)ro_buffer), rcFault,
		"KnTaskCreate into read-only memory");
	ktap_rc(KnTaskGetState(KN_HANDLE_SELF, (int *)(void *)ro_buffer), rcFault,
		"KnTaskGetState into read-only memory");
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, 0, (Handle *)(void *)ro_buffer), rcFault,
		"KnHandleTransfer into read-only memory");
	ktap_check(strcmp(ro_buffer, "read-only") == 0, "read-only memory unchanged", NULL);
	/* Lengths that run past the end of the user half, or wrap. */
	ktap_rc(KnDebugWrite(0, (void *)(USER_TOP - 16), 4096), rcFault, "KnDebugWrite past the user half");
	ktap_rc(KnDebugWrite(0, (void *)0xfffffffffffff000ull, 8192), rcFault, "KnDebugWrite wrapping");
	ktap_rc(KnDebugWrite(0, ro_buffer, 1 << 20), rcInvalidArgument, "KnDebugWrite longer than 64 KiB");
	ktap_rc(KnDebugWrite(7, ro_buffer, 1), rcInvalidArgument, "KnDebugWrite unknown channel");
	/* A name that does not end before its limit. */
	static char long_name[200];
	memset(long_name, 'n', sizeof(long_name) - 1);
	h = 0x5eed;
	ktap_rc(KnTaskCreate(long_name, "nop", 0, &h), rcInvalidArgument, "KnTaskCreate unterminated long name");
	ktap_rc(KnTaskCreate("x", "no-such-program", 0, &h), rcNotFound, "KnTaskCreate of a missing program");
	ktap_check(h == 0x5eed, "a failed KnTaskCreate leaves its output alone", "output %#x", h);
	/* A name that runs into the end of the user half without ending. */
	char *top = KnVmAllocate((void *)(USER_TOP - 4096), 4096,
				 VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_READ | VMM_FLAG_WRITE);
	ktap_check(top != RTL_NULL, "the last page of the user half", NULL);
	if (top) {
		memset(top, 'x', 4096);
		ktap_rc(KnTaskCreate(top + 4096 - 5, "nop", 0, &h), rcFault,
			"KnTaskCreate name running into the kernel half");
		KnVmUnmap(top, 4096);
	}
	/* Task handles in the task calls. */
	ktap_rc(KnTaskCreate("t", "nop", 0, &t), rcOk, "a task to point at");
	ktap_rc(KnTaskGetExitCode(t, (int *)KERNEL), rcWrongState, "exit code before exit (output not touched)");
	/* After it exited: the state is right, so the output is what is refused. */
	KnTaskResume(t);
	ktap_rc(KnTaskWait(t, KN_TASK_STATE_EXITED, ~0ull), rcOk, "the task exits");
	for (unsigned i = 0; i < 3; i++) {
		ksnprintf(name, sizeof(name), "KnTaskGetExitCode output after exit: %s", what[i]);
		ktap_rc(KnTaskGetExitCode(t, bad[i]), rcFault, name);
	}
	ktap_rc(KnTaskGetExitCode(t, (int *)(void *)ro_buffer), rcFault,
		"KnTaskGetExitCode output after exit: read-only");
	ktap_rc(KnTaskGetExitCode(t, (int *)(void *)(USER_TOP - 2)), rcFault,
		"KnTaskGetExitCode output after exit: running past the user half");
	ktap_check(strcmp(ro_buffer, "read-only") == 0, "read-only memory still unchanged", NULL);
	v = 77;
	ktap_rc(KnTaskGetExitCode(t, &v), rcOk, "KnTaskGetExitCode into good memory");
	ktap_check(v == 0, "... gives the exit code (0)", "code %d", v);
	KnHandleClose(t);
	/* An unknown system call. */
	int64_t rc;
	__asm__ __volatile__("syscall" : "=a"(rc) : "a"(999) : "rcx", "r11", "memory");
	ktap_rc((Retcode)rc, rcNotSupported, "unknown system call number");
	same("nothing changed");
	ktap_done();
}
