// SPDX-License-Identifier: MIT
/*
 * KnTaskReadMemory and KnTaskWriteMemory (SPEC §14, include/kn/task_api.h) on a frozen
 * dumpee (user/programs/dumpee.c: regions of every kind at fixed addresses, each with a
 * marker string), and on the test itself (KN_HANDLE_SELF): reads and writes, partial copies,
 * the pages that stop a copy (free, guard, reserved, write-combining, a read-only MDL someone
 * else holds), what is faulted in (a lazy page read becomes resident; a refused call faults
 * nothing in), rights and handles; and every page and page of commit back at the end.
 */
#include <knlib.h>

#define PAGE       4096ull
#define RW         (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES_COM    (VMM_FLAG_RESERVE | VMM_FLAG_COMMIT)
#define SECONDS(n) ((n)*1000000000ull)

/* What dumpee builds (user/programs/dumpee.c). */
#define COMMITTED    0x200000000ull /* 4 pages, all touched; marker at +100 */
#define LAZY         0x200200000ull /* 16 pages; 0, 5, 6 touched */
#define GUARDED      0x200601000ull /* 2 pages, guard pages below and above */
#define GROWDOWN     0x200801000ull /* 16 pages, grown from the top; a guard page below */
#define WRITECOMBINE 0x200c00000ull /* 2 pages, write-combining */
#define PROTECTED    0x200e00000ull /* 8 pages, pages 2 and 3 read-only; marker at +2 pages + 40 */
#define FREE_SPACE   0x200100000ull /* nothing there */

static uint8_t buf[4 * PAGE];

static bool resident(Handle h, uint64_t va, int *state)
{
	KnVmInfo vi;
	if (KnTaskVmQuery(h, (const void *)(uintptr_t)va, &vi) != rcOk)
		return false;
	if (state)
		*state = vi.state;
	return vi.resident;
}

static void read_write(Handle h)
{
	rtl_size_t done = 0;
	Retcode rc;

	rc = KnTaskReadMemory(h, (const void *)(COMMITTED + 100), buf, 21, &done);
	ktap_check(rc == rcOk && done == 21 && memcmp(buf, "KNMM-COMMITTED-MARKER", 21) == 0,
		   "read: the committed region's marker", "rc %d done %llu", rc, (unsigned long long)done);
	rc = KnTaskReadMemory(h, (const void *)(PROTECTED + 2 * PAGE + 40), buf, 20, &done);
	ktap_check(rc == rcOk && done == 20 && memcmp(buf, "KNMM-READONLY-MARKER", 20) == 0,
		   "read: a read-only page's marker", "rc %d done %llu", rc, (unsigned long long)done);

	/* A read-write page, across a page boundary. */
	static const char hello[] = "hello from another task";
	rc = KnTaskWriteMemory(h, (void *)(COMMITTED + PAGE - 5), hello, sizeof(hello), &done);
	ktap_check(rc == rcOk && done == sizeof(hello), "write: a read-write page, across a page boundary",
		   "rc %d done %llu", rc, (unsigned long long)done);
	memset(buf, 0, sizeof(hello));
	rc = KnTaskReadMemory(h, (const void *)(COMMITTED + PAGE - 5), buf, sizeof(hello), &done);
	ktap_check(rc == rcOk && done == sizeof(hello) && memcmp(buf, hello, sizeof(hello)) == 0,
		   "read: what was written", "rc %d done %llu", rc, (unsigned long long)done);

	/* A read-only page of the task: written all the same (a debugger's privilege). */
	rc = KnTaskWriteMemory(h, (void *)(PROTECTED + 2 * PAGE + 40), "knmm", 4, &done);
	memset(buf, 0, 20);
	KnTaskReadMemory(h, (const void *)(PROTECTED + 2 * PAGE + 40), buf, 20, &done);
	ktap_check(rc == rcOk && memcmp(buf, "knmm-READONLY-MARKER", 20) == 0, "write: a read-only page", "rc %d", rc);

	/* A breakpoint in its code (read-execute, its ELF segment's frames its own), and back. */
	KnThreadContext ctx;
	uint8_t orig = 0, now = 0, bp = 0xcc;
	KnTaskGetThreadContext(h, 0, &ctx);
	Retcode r1 = KnTaskReadMemory(h, (const void *)ctx.entry, &orig, 1, &done);
	Retcode r2 = KnTaskWriteMemory(h, (void *)ctx.entry, &bp, 1, &done);
	Retcode r3 = KnTaskReadMemory(h, (const void *)ctx.entry, &now, 1, &done);
	ktap_check(r1 == rcOk && r2 == rcOk && r3 == rcOk && now == 0xcc && done == 1,
		   "write: a breakpoint at the entry point (read-execute code)", "rc %d %d %d byte %#x", r1, r2, r3,
		   now);
	rc = KnTaskWriteMemory(h, (void *)ctx.entry, &orig, 1, &done);
	KnTaskReadMemory(h, (const void *)ctx.entry, &now, 1, &done);
	ktap_check(rc == rcOk && now == orig, "write: the original byte back", "rc %d byte %#x, was %#x", rc, now,
		   orig);

	/* Several pages at once: all of the committed region. */
	rc = KnTaskReadMemory(h, (const void *)COMMITTED, buf, 4 * PAGE, &done);
	ktap_check(rc == rcOk && done == 4 * PAGE && memcmp(buf + 100, "KNMM-COMMITTED-MARKER", 21) == 0 &&
			   memcmp(buf + PAGE - 5, hello, sizeof(hello)) == 0,
		   "read: four pages", "rc %d done %llu", rc, (unsigned long long)done);
}

/* Copies that stop: partial (rcOk, *done short), nothing (rcFault, *done untouched). */
static void stops(Handle h)
{
	rtl_size_t done = 12345;
	Retcode rc;
	int state = 0;

	rc = KnTaskReadMemory(h, (const void *)(COMMITTED + 4 * PAGE - 100), buf, 200, &done);
	ktap_check(rc == rcOk && done == 100, "read across the region's end: the part inside", "rc %d done %llu", rc,
		   (unsigned long long)done);
	rc = KnTaskWriteMemory(h, (void *)(COMMITTED + 4 * PAGE - 100), buf, 200, &done);
	ktap_check(rc == rcOk && done == 100, "write across the region's end: the part inside", "rc %d done %llu", rc,
		   (unsigned long long)done);

	done = 12345;
	ktap_rc(KnTaskReadMemory(h, (const void *)FREE_SPACE, buf, 16, &done), rcFault, "read: free space");
	ktap_rc(KnTaskWriteMemory(h, (void *)FREE_SPACE, buf, 16, &done), rcFault, "write: free space");
	ktap_rc(KnTaskReadMemory(h, (const void *)0, buf, 16, &done), rcFault, "read: address 0");
	ktap_rc(KnTaskReadMemory(h, (const void *)0xffffffff80000000ull, buf, 16, &done), rcFault,
		"read: the kernel half");
	ktap_rc(KnTaskWriteMemory(h, (void *)0xffffffff80000000ull, buf, 16, &done), rcFault, "write: the kernel half");
	ktap_check(done == 12345, "*done untouched by the calls that copied nothing", "%llu", (unsigned long long)done);

	/* Guard pages: not consumed. */
	ktap_rc(KnTaskReadMemory(h, (const void *)(GUARDED - PAGE), buf, 16, &done), rcFault, "read: a guard page");
	ktap_rc(KnTaskWriteMemory(h, (void *)(GUARDED + 2 * PAGE), buf, 16, &done), rcFault, "write: a guard page");
	rc = KnTaskReadMemory(h, (const void *)(GUARDED + 2 * PAGE - 16), buf, 32, &done);
	ktap_check(rc == rcOk && done == 16, "read: stops at the guard page above", "rc %d done %llu", rc,
		   (unsigned long long)done);
	resident(h, GUARDED - PAGE, &state);
	int above = 0;
	resident(h, GUARDED + 2 * PAGE, &above);
	ktap_check(state == VMM_STATE_GUARD && above == VMM_STATE_GUARD, "the guard pages are still guard pages",
		   "states %d %d", state, above);

	/* A grow-down region's reserved pages: no growth. */
	ktap_rc(KnTaskReadMemory(h, (const void *)GROWDOWN, buf, 16, &done), rcFault,
		"read: a reserved page of a grow-down region");
	resident(h, GROWDOWN, &state);
	ktap_check(state == VMM_STATE_RESERVED, "the grow-down region did not grow", "state %d", state);

	/* Write-combining memory: refused. */
	ktap_rc(KnTaskReadMemory(h, (const void *)WRITECOMBINE, buf, 16, &done), rcFault,
		"read: write-combining memory");
	ktap_rc(KnTaskWriteMemory(h, (void *)WRITECOMBINE, buf, 16, &done), rcFault, "write: write-combining memory");

	done = 0;
	ktap_rc(KnTaskReadMemory(h, (const void *)COMMITTED, buf, 0, &done), rcOk, "size 0");
	ktap_check(done == 0, "size 0: nothing done", "%llu", (unsigned long long)done);
}

/* A lazy page of the task, never touched: read as zeros, and resident after (as the task's
 * own read would make it); a call refused for the caller's buffer faults nothing in. */
static void lazy(Handle h)
{
	rtl_size_t done = 0;
	uint64_t page = LAZY + 15 * PAGE, other = LAZY + 12 * PAGE;

	bool was = resident(h, page, RTL_NULL) || resident(h, other, RTL_NULL);
	ktap_rc(KnTaskReadMemory(h, (const void *)page, (void *)0x10, 64, &done), rcFault,
		"read: the caller's buffer at 0x10");
	ktap_rc(KnTaskReadMemory(h, (const void *)page, (void *)0xffffffff80000000ull, 64, &done), rcFault,
		"read: the caller's buffer in the kernel half");
	ktap_rc(KnTaskReadMemory(h, (const void *)page, (void *)0x400000, 64, &done), rcFault,
		"read: the caller's buffer in its code (read-only)");
	ktap_rc(KnTaskWriteMemory(h, (void *)page, (const void *)0x10, 64, &done), rcFault,
		"write: the caller's buffer at 0x10");
	ktap_rc(KnTaskReadMemory(h, (const void *)page, buf, 64, (rtl_size_t *)0x400000), rcFault,
		"read: *done in the caller's code");
	ktap_rc(KnTaskWriteMemory(h, (void *)page, buf, 64, RTL_NULL), rcFault, "write: done NULL");
	ktap_check(!was && !resident(h, page, RTL_NULL) && !resident(h, other, RTL_NULL),
		   "the refused calls faulted nothing in", "was %d", was);

	memset(buf, 0x5a, 64);
	Retcode rc = KnTaskReadMemory(h, (const void *)page, buf, 64, &done);
	bool zeros = true;
	for (unsigned i = 0; i < 64; i++)
		zeros &= buf[i] == 0;
	ktap_check(rc == rcOk && done == 64 && zeros, "read: a lazy page reads as zeros", "rc %d done %llu", rc,
		   (unsigned long long)done);
	ktap_check(resident(h, page, RTL_NULL), "and is resident now", "%s", "not resident");
	rc = KnTaskWriteMemory(h, (void *)other, "lazy", 4, &done);
	KnTaskReadMemory(h, (const void *)other, buf, 4, &done);
	ktap_check(rc == rcOk && memcmp(buf, "lazy", 4) == 0 && resident(h, other, RTL_NULL),
		   "write: a lazy page is faulted in and written", "rc %d", rc);
}

static void rights(Handle h)
{
	Handle weak = 0, wonly = 0, none = 0, mdl = 0;
	rtl_size_t done = 0;

	KnHandleTransfer(KN_HANDLE_SELF, h, KN_RIGHT_VM_READ, &weak);
	KnHandleTransfer(KN_HANDLE_SELF, h, KN_RIGHT_VM_WRITE, &wonly);
	KnHandleTransfer(KN_HANDLE_SELF, h, KN_RIGHT_DUMP | KN_RIGHT_TERMINATE, &none);
	ktap_rc(KnTaskReadMemory(weak, (const void *)(COMMITTED + 100), buf, 4, &done), rcOk, "read: with VM_READ");
	ktap_rc(KnTaskWriteMemory(weak, (void *)(COMMITTED + 100), buf, 4, &done), rcAccessDenied,
		"write: without VM_WRITE");
	ktap_rc(KnTaskWriteMemory(wonly, (void *)(COMMITTED + 100), buf, 4, &done), rcOk, "write: with VM_WRITE");
	ktap_rc(KnTaskReadMemory(wonly, (const void *)(COMMITTED + 100), buf, 4, &done), rcAccessDenied,
		"read: without VM_READ");
	ktap_rc(KnTaskReadMemory(none, (const void *)(COMMITTED + 100), buf, 4, &done), rcAccessDenied,
		"read: with neither");
	ktap_rc(KnTaskReadMemory(0x12345, (const void *)(COMMITTED + 100), buf, 4, &done), rcBadHandle,
		"read: a made-up handle");
	ktap_rc(KnTaskWriteMemory(0x12345, (void *)(COMMITTED + 100), buf, 4, &done), rcBadHandle,
		"write: a made-up handle");
	KnPmmMdlCreate(PAGE, RW, &mdl);
	ktap_rc(KnTaskReadMemory(mdl, (const void *)(COMMITTED + 100), buf, 4, &done), rcBadHandle,
		"read: an MDL handle");
	/* The caller's pointers are looked at before the handle. */
	ktap_rc(KnTaskReadMemory(0x12345, (const void *)(COMMITTED + 100), buf, 4, RTL_NULL), rcFault,
		"read: a made-up handle and done NULL: rcFault first");
	KnHandleClose(mdl);
	KnHandleClose(weak);
	KnHandleClose(wonly);
	KnHandleClose(none);
}

/* KN_HANDLE_SELF: copies within the caller's own space, a long one (more than 256 pages:
 * preemption points) included; and a read-only mapping of an MDL whose frames someone else
 * holds is read, never written. */
static void self(void)
{
	rtl_size_t done = 0;
	uint64_t pages = 300;
	uint8_t *a = KnVmAllocate(RTL_NULL, pages * PAGE, RES_COM | RW);
	uint8_t *b = KnVmAllocate(RTL_NULL, pages * PAGE, RES_COM | RW);
	if (!a || !b) {
		ktap_check(false, "self: two regions", "%p %p", (void *)a, (void *)b);
		return;
	}
	for (uint64_t i = 0; i < pages; i++)
		a[i * PAGE + i % 64] = (uint8_t)(i + 1);
	Retcode rc = KnTaskReadMemory(KN_HANDLE_SELF, a, b, pages * PAGE, &done);
	ktap_check(rc == rcOk && done == pages * PAGE && memcmp(a, b, pages * PAGE) == 0,
		   "self: a 300-page read within the caller's space", "rc %d done %llu", rc, (unsigned long long)done);
	rc = KnTaskWriteMemory(KN_HANDLE_SELF, a + 2048, a, 1024, &done);
	ktap_check(rc == rcOk && done == 1024 && memcmp(a + 2048, b, 1024) == 0,
		   "self: a write within one page (source and target in the same frame)", "rc %d done %llu", rc,
		   (unsigned long long)done);
	KnVmUnmap(a, pages * PAGE);
	KnVmUnmap(b, pages * PAGE);

	/* An MDL mapped read-write and, through a read-only handle, read-only: the read-only
	 * mapping can never be made writable, and the MDL holds its frame too. */
	Handle mdl = 0, ro = 0;
	uint8_t *w = RTL_NULL, *r = RTL_NULL;
	KnPmmMdlCreate(PAGE, RW, &mdl);
	KnPmmMdlMap(mdl, 0, PAGE, RTL_NULL, RW, (void **)&w);
	KnHandleTransfer(KN_HANDLE_SELF, mdl, KN_RIGHT_MAP_READ, &ro);
	KnPmmMdlMap(ro, 0, PAGE, RTL_NULL, VMM_FLAG_READ, (void **)&r);
	if (!w || !r) {
		ktap_check(false, "self: an MDL mapped twice", "%p %p", (void *)w, (void *)r);
		return;
	}
	memcpy(w, "shared", 7);
	rc = KnTaskReadMemory(KN_HANDLE_SELF, r, buf, 7, &done);
	ktap_check(rc == rcOk && memcmp(buf, "shared", 7) == 0, "self: read a read-only MDL mapping", "rc %d", rc);
	done = 777;
	ktap_rc(KnTaskWriteMemory(KN_HANDLE_SELF, r, "SHARED", 7, &done), rcFault,
		"self: write to a read-only mapping of an MDL someone else holds: refused");
	ktap_check(done == 777 && memcmp(w, "shared", 7) == 0, "the MDL's page is as it was", "done %llu",
		   (unsigned long long)done);
	rc = KnTaskWriteMemory(KN_HANDLE_SELF, w, "Shared", 7, &done);
	ktap_check(rc == rcOk && memcmp(r, "Shared", 7) == 0, "self: write to its read-write mapping", "rc %d", rc);
	KnVmUnmap(r, PAGE);
	KnVmUnmap(w, PAGE);
	KnHandleClose(ro);
	KnHandleClose(mdl);
}

/* An exited task has nothing left to copy. */
static void exited(Handle h)
{
	rtl_size_t done = 0;
	ktap_rc(KnTaskTerminate(h), rcOk, "terminate dumpee");
	ktap_rc(KnTaskReadMemory(h, (const void *)(COMMITTED + 100), buf, 4, &done), rcFault, "read: an exited task");
	ktap_rc(KnTaskWriteMemory(h, (void *)(COMMITTED + 100), buf, 4, &done), rcFault, "write: an exited task");
}

int main(void)
{
	ktap_start();
	stack_pregrow(16 * 1024); /* (the deepest calls' stack, before the first snapshot) */
	KnMemStats start = mem_stats();
	Handle h = 0;

	ktap_rc(KnTaskCreate("dumpee", "dumpee", 0, &h), rcOk, "create dumpee");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_FROZEN, SECONDS(60)), rcOk, "it freezes itself");
	read_write(h);
	stops(h);
	lazy(h);
	rights(h);
	self();
	exited(h);
	KnHandleClose(h);
	ktap_counters_back(&start, "test_taskmem: free pages and commit charge end where they began");
	ktap_done();
}
