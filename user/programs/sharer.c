// SPDX-License-Identifier: MIT
/*
 * Two tasks sharing memory through an MDL, for make run's monitor to look at (regions,
 * pte, mdl). "sharer-a" makes a 2-page MDL, maps it, writes a greeting, then makes one
 * region of each kind the monitor shows (lazy, guarded with runs of several states and
 * protections, locked, write-combining, uncached, made executable, grow-down, and one it
 * unmaps again) and logs each: "sharer-a: region KIND at BASE size SIZE" (the usable range
 * KnVmAllocateEx gave). tests/check_monitor.py and tests/check_gdb_ext.py hold what each
 * must then look like. It starts "sharer-b" and gives it the MDL read-only and a handle to
 * itself; "sharer-b" maps the MDL, prints the greeting. Then each waits for the other to
 * end: both stay, blocked, until terminated.
 */
#include <knlib.h>

#define PAGE 4096ull
#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)

struct made {
	const char *kind;
	char *base;
	uint64_t pages;
};

static bool make(struct made *m, const char *kind, uint64_t pages, int flags)
{
	void *p = RTL_NULL;
	m->kind = kind;
	m->pages = pages;
	m->base = KnVmAllocateEx(RTL_NULL, pages * PAGE, flags | VMM_FLAG_RESERVE, &p) == rcOk ? p : RTL_NULL;
	return m->base != RTL_NULL;
}

/* The regions the monitor test looks at; 0 or the step that failed. */
static int make_regions(struct made *m, unsigned *n)
{
	volatile char *v;
	*n = 0;

	/* lazy: 8 committed pages, 3 of them touched */
	if (!make(&m[*n], "lazy", 8, VMM_FLAG_COMMIT | RW))
		return 10;
	v = m[(*n)++].base;
	v[0] = 1, v[2 * PAGE] = 1, v[5 * PAGE] = 1;

	/* guarded: 16 reserved pages between guards; 4..7 committed, 6..7 read-only; 4 and 6 touched */
	if (!make(&m[*n], "guarded", 16, RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD))
		return 11;
	v = m[(*n)++].base;
	if (KnVmCommit((char *)v + 4 * PAGE, 4 * PAGE, VMM_FLAG_COMMIT) != rcOk ||
	    KnVmProtect((char *)v + 6 * PAGE, 2 * PAGE, VMM_FLAG_READ) != rcOk)
		return 12;
	v[4 * PAGE] = 1;
	(void)v[6 * PAGE];

	/* locked: 3 pages resident and locked at once */
	if (!make(&m[(*n)++], "locked", 3, VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW))
		return 13;

	/* wc: write-combining, the first of 2 pages touched */
	if (!make(&m[*n], "wc", 2, VMM_FLAG_COMMIT | RW | VMM_FLAG_WRITE_COMBINE))
		return 14;
	v = m[(*n)++].base;
	v[0] = 1;

	/* uc: uncached, read-only, the second of 2 pages read */
	if (!make(&m[*n], "uc", 2, VMM_FLAG_COMMIT | VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE))
		return 15;
	v = m[(*n)++].base;
	(void)v[PAGE];

	/* rx: a page written, made read-execute, and run (a `ret`) */
	if (!make(&m[*n], "rx", 1, VMM_FLAG_COMMIT | RW))
		return 16;
	v = m[(*n)++].base;
	v[0] = (char)0xc3;
	if (KnVmProtect((void *)v, PAGE, VMM_FLAG_READ | VMM_FLAG_EXECUTE) != rcOk)
		return 17;
	((void (*)(void))(uintptr_t)v)();

	/* grow: a grow-down region of 8 pages below a guard (its top page committed) */
	if (!make(&m[(*n)++], "grow", 8, RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD))
		return 18;

	/* freed: 4 pages committed, touched and unmapped again (no region left) */
	if (!make(&m[*n], "freed", 4, VMM_FLAG_COMMIT | RW))
		return 19;
	v = m[(*n)++].base;
	v[0] = 1;
	if (KnVmUnmap((void *)v, 4 * PAGE) != rcOk)
		return 20;
	return 0;
}

int main(int argc, char **argv)
{
	const char *me = argc > 0 ? argv[0] : "";
	Handle mdl, other, remote;
	char *p = RTL_NULL;

	if (!strcmp(me, "sharer-a")) {
		struct made made[8];
		unsigned n;
		int step;
		if (KnPmmMdlCreate(2 * PAGE, VMM_FLAG_READ | VMM_FLAG_WRITE, &mdl) != rcOk ||
		    KnPmmMdlMap(mdl, 0, 2 * PAGE, RTL_NULL, VMM_FLAG_READ | VMM_FLAG_WRITE, (void **)&p) != rcOk)
			return 1;
		ksnprintf(p + PAGE, 64, "hello from sharer-a");
		printf("sharer-a: MDL mapped at %p (2 pages, read-write); code at %p, stack near %p\n", (void *)p,
		       (void *)main, (void *)&n);
		if ((step = make_regions(made, &n)) != 0) {
			printf("sharer-a: making the regions failed at step %d\n", step);
			return step;
		}
		printf("sharer-a: region mdl at %p size %#llx\n", (void *)p, 2 * PAGE);
		for (unsigned i = 0; i < n; i++)
			printf("sharer-a: region %s at %p size %#llx\n", made[i].kind, (void *)made[i].base,
			       made[i].pages * PAGE);
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
