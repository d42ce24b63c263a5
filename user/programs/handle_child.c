// SPDX-License-Identifier: MIT
/*
 * Run by test_handles, which gives it one task handle (to the parent) with the FREEZE right
 * only before resuming it. Exit code: the number of things that were not as expected.
 *
 * Run as a task named "freeze-me" (test_dump), it freezes itself at once: a program whose
 * file name, handle_child.elf, is 16 bytes, longer than a core's NT_PRPSINFO.pr_fname
 * holds, for the check that gdb still matches its core with it (by build-id: docs/dump.md).
 */
#include <knlib.h>

int main(int argc, char **argv)
{
	if (argc > 0 && strcmp(argv[0], "freeze-me") == 0) {
		KnTaskFreeze(KN_HANDLE_SELF);
		return 99; /* (never: a frozen task does not run again) */
	}
	Handle h = 0, extra;
	int type = 0, bad = 0;
	rtl_uint32_t rights = 0;

	bad += KnHandleEnumerate(0, &h, &type, &rights) != rcOk;
	bad += type != KN_HANDLE_TYPE_TASK || rights != KN_RIGHT_FREEZE;
	bad += KnHandleEnumerate(1, &extra, &type, &rights) != rcEof;
	bad += KnTaskTerminate(h) != rcAccessDenied; /* the parent must survive this */
	int state = 0;
	bad += KnTaskGetState(h, &state) != rcOk || state != KN_TASK_STATE_RUNNING;
	bad += KnHandleClose(h) != rcOk;
	bad += KnHandleClose(h) != rcBadHandle;
	return bad;
}
