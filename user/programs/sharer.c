// SPDX-License-Identifier: MIT
/*
 * Two tasks sharing memory through an MDL, for make run's monitor to look at (regions,
 * pte, mdl). "sharer-a" makes a 2-page MDL, maps it, writes a greeting, starts "sharer-b"
 * and gives it the MDL read-only and a handle to itself; "sharer-b" maps the MDL, prints the
 * greeting. Then each waits for the other to end: both stay, blocked, until terminated.
 */
#include <knlib.h>

#define PAGE 4096ull

int main(int argc, char **argv)
{
	const char *me = argc > 0 ? argv[0] : "";
	Handle mdl, other, remote;
	char *p = RTL_NULL;

	if (!strcmp(me, "sharer-a")) {
		if (KnPmmMdlCreate(2 * PAGE, VMM_FLAG_READ | VMM_FLAG_WRITE, &mdl) != rcOk ||
		    KnPmmMdlMap(mdl, 0, 2 * PAGE, RTL_NULL, VMM_FLAG_READ | VMM_FLAG_WRITE, (void **)&p) != rcOk)
			return 1;
		ksnprintf(p + PAGE, 64, "hello from sharer-a");
		printf("sharer-a: MDL mapped at %p (2 pages, read-write); code at %p\n", (void *)p, (void *)main);
		if (KnTaskCreate("sharer-b", "sharer", 0, &other) != rcOk)
			return 2;
		KnHandleTransfer(other, mdl, KN_RIGHT_MAP_READ, &remote);
		KnTaskResume(other); /* (running now: it may hold a handle to us) */
		KnHandleTransfer(other, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &remote);
		KnTaskWait(other, KN_TASK_STATE_EXITED, ~0ull);
		return 0;
	}
	if (!strcmp(me, "sharer-b")) {
		mdl = find_handle(KN_HANDLE_TYPE_MDL, 0);
		if (!mdl || KnPmmMdlMap(mdl, 0, 2 * PAGE, RTL_NULL, VMM_FLAG_READ, (void **)&p) != rcOk)
			return 1;
		printf("sharer-b: MDL mapped at %p (read-only) reads \"%s\"\n", (void *)p, p + PAGE);
		KnDebugNop(); /* a known point: the gdb test stops the kernel in this call */
		while (!(other = find_handle(KN_HANDLE_TYPE_TASK, 0)))
			KnTaskWait(KN_HANDLE_SELF, KN_TASK_STATE_RUNNING, 0); /* (until sharer-a has given it) */
		KnTaskWait(other, KN_TASK_STATE_EXITED, ~0ull);
		return 0;
	}
	return 3;
}
