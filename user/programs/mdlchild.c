// SPDX-License-Identifier: MIT
/*
 * The children of test_mdl, each doing what its task's name says; the exit code is the
 * number of things that were not as expected.
 *
 *   mdl-reader  given (in this order) a MAP_READ-only handle to the parent's buffer and a
 *               MAP_WRITE handle to a mailbox page: maps the buffer read-only, checks the
 *               parent's first pattern, may neither map it writable nor clone it, says
 *               "ready" in the mailbox, then waits to see the parent's second pattern
 *   mdl-phys    not privileged: KnPmmMdlCreateFromPhys must be refused
 */
#include <knlib.h>

#define PAGE     4096ull
#define PATTERN1 0x1111111111111111ull
#define PATTERN2 0x2222222222222222ull
#define READY    0x5245414459ull /* "READY" */

static Handle nth_handle(unsigned i)
{
	Handle h = 0;
	int type = 0;
	rtl_uint32_t rights = 0;
	KnHandleEnumerate(i, &h, &type, &rights);
	return type == KN_HANDLE_TYPE_MDL ? h : 0;
}

static int reader(void)
{
	Handle buf = nth_handle(0), box = nth_handle(1);
	int bad = 0;
	rtl_size_t size = 0;
	void *p = RTL_NULL, *q = RTL_NULL, *w = RTL_NULL;

	bad += !buf || !box;
	bad += KnPmmMdlGetSize(buf, &size) != rcOk || size != 4 * PAGE;
	bad += KnPmmMdlMap(buf, 0, 4 * PAGE, RTL_NULL, VMM_FLAG_READ | VMM_FLAG_WRITE, &w) != rcAccessDenied;
	Handle c;
	bad += KnPmmMdlClone(buf, &c) != rcAccessDenied;
	bad += KnPmmMdlMap(buf, 0, 4 * PAGE, RTL_NULL, VMM_FLAG_READ, &p) != rcOk;
	bad += KnPmmMdlMap(box, 0, PAGE, RTL_NULL, VMM_FLAG_READ | VMM_FLAG_WRITE, &q) != rcOk;
	if (bad)
		return bad;
	/* Not later either: the handle's rights bound the mapping, and an MDL made over it. */
	Handle over;
	bad += KnVmProtect(p, 4 * PAGE, VMM_FLAG_READ | VMM_FLAG_WRITE) != rcAccessDenied;
	bad += KnPmmMdlCreateFromVm(p, PAGE, VMM_FLAG_READ | VMM_FLAG_WRITE, &over) != rcAccessDenied;
	volatile uint64_t *words = p, *mailbox = q;
	bad += words[0] != PATTERN1 || words[3 * PAGE / 8 + 5] != PATTERN1;
	mailbox[0] = READY;
	/* The parent writes its second pattern once it sees "ready": a busy wait (preempted). */
	uint64_t spins = 0;
	while (words[0] != PATTERN2 && ++spins < 2000000000ull)
		;
	bad += words[0] != PATTERN2 || words[3 * PAGE / 8 + 5] != PATTERN2;
	return bad; /* the mappings go with the task; the parent's frames stay */
}

int main(int argc, char **argv)
{
	const char *role = argc > 0 ? argv[0] : "";
	Handle h;

	if (!strcmp(role, "mdl-reader"))
		return reader();
	if (!strcmp(role, "mdl-phys"))
		return KnPmmMdlCreateFromPhys(0xfee00000ull, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &h) !=
		       rcAccessDenied;
	return 100;
}
