// SPDX-License-Identifier: MIT
/*
 * Run by test_handles, which gives it one task handle (to the parent) with the FREEZE right
 * only before resuming it. Exit code: the number of things that were not as expected.
 */
#include <knlib.h>

int main(void)
{
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
