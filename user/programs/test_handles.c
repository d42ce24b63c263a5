// SPDX-License-Identifier: MIT
/* Handles: closed, stale and foreign values, missing rights, transfer and enumeration;
 * failed calls leave their outputs alone; no handle cycle can keep unstarted tasks alive. */
#include <knlib.h>

/* Tasks that never start cannot hold handles to each other (or to themselves): closing our
 * handles must end them and give everything back. */
static void no_cycles(void)
{
	Handle x, y, h = 0x5eed;
	KnMemStats before, after;

	KnDebugGetStats(&before);
	ktap_rc(KnTaskCreate("x", "nop", 0, &x), rcOk, "create x (not started)");
	ktap_rc(KnTaskCreate("y", "nop", 0, &y), rcOk, "create y (not started)");
	ktap_rc(KnHandleTransfer(x, x, KN_RIGHT_FREEZE, &h), rcWrongState, "x cannot hold a handle to itself");
	ktap_rc(KnHandleTransfer(x, y, KN_RIGHT_FREEZE, &h), rcWrongState, "x cannot hold one to y, also unstarted");
	ktap_check(h == 0x5eed, "the refused transfers left their output alone", "output %#x", h);
	ktap_rc(KnHandleTransfer(x, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &h), rcOk, "x may hold one to us (we run)");
	KnHandleClose(x);
	KnHandleClose(y);
	KnDebugGetStats(&after);
	ktap_check(after.tasks == before.tasks && after.freePages == before.freePages &&
			   after.commitCharge == before.commitCharge,
		   "closing our handles ended both, and everything came back", "tasks %llu -> %llu, free %llu -> %llu",
		   (unsigned long long)before.tasks, (unsigned long long)after.tasks,
		   (unsigned long long)before.freePages, (unsigned long long)after.freePages);
}

int main(void)
{
	Handle a, b, c, weak, remote, h;
	int state, type, code;
	rtl_uint32_t rights;

	ktap_start();
	ktap_rc(KnTaskCreate("a", "nop", 0, &a), rcOk, "create a");
	ktap_rc(KnTaskGetState(a, &state), rcOk, "a's handle works");
	ktap_rc(KnHandleClose(a), rcOk, "close a");
	ktap_rc(KnHandleClose(a), rcBadHandle, "closing twice");
	ktap_rc(KnTaskGetState(a, &state), rcBadHandle, "a closed handle");
	ktap_rc(KnTaskCreate("b", "nop", 0, &b), rcOk, "create b (may reuse a's slot)");
	ktap_check((b & 0xfff) == (a & 0xfff) && b != a, "the slot is reused with a new generation", "a %#x b %#x", a,
		   b);
	ktap_rc(KnTaskGetState(a, &state), rcBadHandle, "a stale handle stays stale");
	ktap_rc(KnTaskGetState(0, &state), rcBadHandle, "handle 0");
	ktap_rc(KnTaskGetState(0x12345, &state), rcBadHandle, "a made-up handle");

	/* Rights: a weaker copy of our own handle. */
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, b, KN_RIGHT_FREEZE, &weak), rcOk, "copy b with FREEZE only");
	ktap_rc(KnTaskTerminate(weak), rcAccessDenied, "terminate without the right");
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, weak, KN_RIGHT_TERMINATE, &h), rcAccessDenied,
		"no rights from nowhere");
	ktap_rc(KnHandleEnumerate(0, &h, &type, &rights), rcOk, "enumerate");
	ktap_check(h == b && type == KN_HANDLE_TYPE_TASK &&
			   rights == (KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE | KN_RIGHT_QUOTA |
				      KN_RIGHT_VM_READ | KN_RIGHT_VM_WRITE | KN_RIGHT_VM_OPERATION),
		   "the first handle is b with every task right", "h %#x type %d rights %#x", h, type, rights);
	h = 0x5eed;
	type = 77;
	rights = 0x5eed;
	ktap_rc(KnHandleEnumerate(2, &h, &type, &rights), rcEof, "enumerate past the end");
	ktap_check(h == 0x5eed && type == 77 && rights == 0x5eed, "... writes nothing", NULL);
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, 0x12345, KN_RIGHT_FREEZE, &h), rcBadHandle,
		"transfer of a made-up handle");
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, weak, KN_RIGHT_TERMINATE, &h), rcAccessDenied,
		"transfer of a right we lack");
	ktap_check(h == 0x5eed, "failed transfers leave their output alone", "output %#x", h);
	ktap_rc(KnTaskTerminate(b), rcOk, "terminate b (not resumed)");
	ktap_rc(KnHandleTransfer(b, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &h), rcWrongState, "transfer into an exited task");
	KnHandleClose(weak);
	KnHandleClose(b);

	/* Transfer: the child gets a FREEZE-only handle to us. */
	ktap_rc(KnTaskCreate("child", "handle_child", 0, &c), rcOk, "create the child");
	ktap_rc(KnHandleTransfer(c, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &remote), rcOk, "give it a handle to us");
	ktap_rc(KnTaskGetState(remote, &state), rcBadHandle, "its value means nothing here (foreign)");
	ktap_rc(KnHandleTransfer(c, KN_HANDLE_SELF, 0x8000, &h), rcAccessDenied, "rights we do not have");
	KnTaskResume(c);
	KnTaskWait(c, KN_TASK_STATE_EXITED, ~0ull);
	ktap_rc(KnTaskGetExitCode(c, &code), rcOk, "child exit code");
	ktap_check(code == 0, "the child saw exactly its handle and could not terminate us", "%d problems", code);
	KnHandleClose(c);
	ktap_rc(KnTaskGetState(KN_HANDLE_SELF, &state), rcOk, "the self handle");
	ktap_check(state == KN_TASK_STATE_RUNNING, "we are running", "state %d", state);
	ktap_rc(KnHandleClose(KN_HANDLE_SELF), rcBadHandle, "the self handle cannot be closed");
	no_cycles();
	ktap_done();
}
