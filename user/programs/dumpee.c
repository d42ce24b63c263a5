// SPDX-License-Identifier: MIT
/*
 * The task the dump test freezes and dumps (SPEC §7): it builds regions of every kind,
 * writes a marker string into each, logs what the core file must show (each region with
 * its resident pages, each marker's address, a page that is not resident, the registers it
 * sets), then loads known values into r12-r15 and freezes itself in freeze_here(). The
 * runner reads the core with readelf and gdb and compares it with these lines.
 *
 * Its last region, "protected", is read-write with a read-only stretch (KnVmProtect) in
 * the middle: the core gives that stretch a PT_LOAD of its own with PF_R only. Before
 * freezing, dumpee writes what its own KnVmQuery says of each of that region's pages into
 * the region's first page (PROTECTED_ANSWERS), where test_dump reads it and compares it with
 * what KnTaskVmQuery says from outside.
 */
#include <knlib.h>

#define PAGE 4096ull
#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES  VMM_FLAG_RESERVE
#define COM  VMM_FLAG_COMMIT

#define R12 0x1212121212121212ull
#define R13 0x1313131313131313ull
#define R14 0x1414141414141414ull
#define R15 0x1515151515151515ull

/* The protected region (test_dump.c knows these too): 8 read-write pages, pages 2 and 3
 * read-only; pages 0, 2, 3 and 6 touched. Its own KnVmQuery of page i at
 * PROTECTED_BASE + PROTECTED_ANSWERS + i * sizeof(KnVmInfo). */
#define PROTECTED_BASE    0x200e00000ull
#define PROTECTED_PAGES   8
#define PROTECTED_ANSWERS 512

/* Resident pages of a region, from its usage map. */
static uint64_t resident(const void *base)
{
	uint64_t used = 0, start = 0;
	for (;;) {
		rtl_size_t c[32], n = 0;
		rtl_bool first = 0;
		if (KnPmmMdlGetUsageMap(base, start, c, 32, &first, &n) != rcOk || n == 0)
			return used;
		for (rtl_size_t i = 0; i < n; i++) {
			if ((i % 2 == 0) == !!first)
				used += c[i];
			start += c[i];
		}
	}
}

static void marker(const char *what, char *at)
{
	ksnprintf(at, 64, "KNMM-%s-MARKER", what);
	printf("dumpee: marker %s at %p\n", at, (void *)at);
}

/* `base` is the usable base; the region's reservation may start a guard page lower. */
static void region(const char *what, void *base, uint64_t size, bool low_guard, bool high_guard)
{
	uint64_t b = (uint64_t)(uintptr_t)base - (low_guard ? PAGE : 0);
	uint64_t s = size + (low_guard ? PAGE : 0) + (high_guard ? PAGE : 0);
	printf("dumpee: region %s at %#llx size %#llx resident %llu\n", what, (unsigned long long)b,
	       (unsigned long long)s, (unsigned long long)resident(base));
}

/* Loads the known values and freezes: the call does not come back. */
__attribute__((noinline)) static void freeze_here(void)
{
	__asm__ __volatile__("movabs %0, %%r12\n\t"
			     "movabs %1, %%r13\n\t"
			     "movabs %2, %%r14\n\t"
			     "movabs %3, %%r15\n\t"
			     "movl %4, %%eax\n\t"
			     "movl %5, %%edi\n\t"
			     "syscall"
			     :
			     : "i"(R12), "i"(R13), "i"(R14), "i"(R15), "i"(28), "i"(KN_HANDLE_SELF)
			     : "rax", "rcx", "rdx", "rdi", "r11", "r12", "r13", "r14", "r15", "memory");
	printf("dumpee: still running after freezing itself\n");
	KnTaskExit(9);
}

int main(void)
{
	/* Committed, every page touched. */
	char *c = KnVmAllocate((void *)0x200000000ull, 4 * PAGE, RES | COM | RW);
	for (unsigned i = 0; i < 4; i++)
		c[i * PAGE] = 1;
	marker("COMMITTED", c + 100);
	region("committed", c, 4 * PAGE, false, false);
	/* Lazy, partly touched with a pattern (pages 0, 5 and 6); page 1 never. */
	char *l = KnVmAllocate((void *)0x200200000ull, 16 * PAGE, RES | COM | RW);
	for (unsigned i = 0; i < 64; i++)
		l[5 * PAGE + 64 + i] = (char)('a' + i % 26);
	l[0] = 1;
	l[6 * PAGE] = 1;
	marker("LAZY", l + 5 * PAGE);
	printf("dumpee: zero page at %p\n", (void *)(l + PAGE));
	region("lazy", l, 16 * PAGE, false, false);
	/* Locked. */
	char *k = KnVmAllocate((void *)0x200400000ull, 4 * PAGE, RES | COM | VMM_FLAG_LOCKED | RW);
	marker("LOCKED", k + 3 * PAGE + 8);
	region("locked", k, 4 * PAGE, false, false);
	/* With guard pages. */
	char *g = KnVmAllocate((void *)0x200601000ull, 2 * PAGE,
			       RES | COM | RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD);
	marker("GUARDED", g + PAGE);
	region("guarded", g, 2 * PAGE, true, true);
	/* Grow-down, part grown. */
	char *d = KnVmAllocate((void *)0x200801000ull, 16 * PAGE, RES | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD);
	marker("GROWDOWN", d + 10 * PAGE);
	region("growdown", d, 16 * PAGE, true, false);
	/* Shared through an MDL with another task (which holds a handle to it). */
	Handle mdl, child, remote;
	char *s = RTL_NULL;
	KnPmmMdlCreate(2 * PAGE, RW, &mdl);
	KnPmmMdlMap(mdl, 0, 2 * PAGE, (void *)0x200a00000ull, RW, (void **)&s);
	KnTaskCreate("holder", "nop", 0, &child);
	KnHandleTransfer(child, mdl, KN_RIGHT_MAP_READ, &remote);
	marker("SHARED", s + PAGE + 16);
	region("shared", s, 2 * PAGE, false, false);
	/* Write-combining. */
	char *w = KnVmAllocate((void *)0x200c00000ull, 2 * PAGE, RES | COM | RW | VMM_FLAG_WRITE_COMBINE);
	marker("WRITECOMBINE", w + 32);
	region("writecombine", w, 2 * PAGE, false, false);

	/* Read-write with a read-only stretch: its marker is written before the protection. */
	char *p = KnVmAllocate((void *)PROTECTED_BASE, PROTECTED_PAGES * PAGE, RES | COM | RW);
	p[0] = p[6 * PAGE] = 1;
	marker("READONLY", p + 2 * PAGE + 40);
	p[3 * PAGE] = 1;
	if (KnVmProtect(p + 2 * PAGE, 2 * PAGE, VMM_FLAG_READ) != rcOk)
		printf("dumpee: KnVmProtect failed\n");
	printf("dumpee: readonly at %#llx size %#llx\n", (unsigned long long)(uintptr_t)(p + 2 * PAGE), 2 * PAGE);
	region("protected", p, PROTECTED_PAGES * PAGE, false, false);
	KnVmInfo *answers = (KnVmInfo *)(p + PROTECTED_ANSWERS);
	for (unsigned i = 0; i < PROTECTED_PAGES; i++)
		KnVmQuery(p + i * PAGE, &answers[i]);

	printf("dumpee: r12=%#llx r13=%#llx r14=%#llx r15=%#llx\n", R12, R13, R14, R15);
	freeze_here();
	return 0;
}
