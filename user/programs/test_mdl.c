// SPDX-License-Identifier: MIT
/*
 * MDL buffers from ring 3 (SPEC §5): shared memory with a child through handles with
 * rights; frames freed exactly once whatever the order of closing and unmapping; Clone
 * shares, FromBuf copies, FromVm pins; FromPhys for privileged tasks only (the kernel runs
 * this program privileged; its child is not); the usage map; every call with the bad input
 * of SPEC §9, changing nothing.
 */
#include <knlib.h>

#define PAGE     4096ull
#define RW       (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define PATTERN1 0x1111111111111111ull
#define PATTERN2 0x2222222222222222ull
#define READY    0x5245414459ull
#define KERNEL   ((void *)0xffffffff80000000ull)
#define UNMAPPED ((void *)0x0000100000000000ull)

/* Fixed places, 2 MiB apart. */
static uint8_t *slot(unsigned i) { return (uint8_t *)(uintptr_t)(0x200000000ull + i * 0x200000ull); }

static void *map(Handle h, uint64_t off, uint64_t size, void *at, int flags)
{
	void *out = RTL_NULL;
	return KnPmmMdlMap(h, off, size, at, flags, &out) == rcOk ? out : RTL_NULL;
}

static void shared_memory(void)
{
	KnMemStats s0 = mem_stats();
	Handle buf, box, child, remote;
	int code = -1;

	ktap_rc(KnPmmMdlCreate(4 * PAGE, RW, &buf), rcOk, "shared: create a 4-page buffer");
	ktap_rc(KnPmmMdlCreate(PAGE, RW, &box), rcOk, "shared: and a mailbox page");
	volatile uint64_t *words = map(buf, 0, 4 * PAGE, RTL_NULL, RW), *mailbox = map(box, 0, PAGE, RTL_NULL, RW);
	ktap_check(words && mailbox, "shared: both mapped here", NULL);
	if (!words || !mailbox)
		return;
	for (uint64_t i = 0; i < 4 * PAGE / 8; i++)
		words[i] = PATTERN1;
	ktap_rc(KnTaskCreate("mdl-reader", "mdlchild", 0, &child), rcOk, "shared: create the reader");
	ktap_rc(KnHandleTransfer(child, buf, KN_RIGHT_MAP_READ, &remote), rcOk, "shared: give it MAP_READ only");
	ktap_rc(KnHandleTransfer(child, box, KN_RIGHT_MAP_READ | KN_RIGHT_MAP_WRITE, &remote), rcOk,
		"shared: and the mailbox, writable");
	KnTaskResume(child);
	uint64_t spins = 0;
	while (mailbox[0] != READY && ++spins < 2000000000ull)
		;
	ktap_check(mailbox[0] == READY, "shared: the reader saw our pattern and said so through the mailbox", NULL);
	/* Word 0 last: the reader, on another CPU perhaps, looks at the rest once word 0 changed
	 * (x86 makes stores visible in order). */
	for (uint64_t i = 4 * PAGE / 8; i-- > 0;)
		words[i] = PATTERN2;
	KnTaskWait(child, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(child, &code);
	ktap_check(code == 0, "shared: it mapped read-only (not writable, no clone) and saw our later writes",
		   "%d problems", code);
	KnHandleClose(child);
	ktap_check(words[0] == PATTERN2, "shared: our frames outlive the reader's mappings", NULL);
	KnVmUnmap((void *)words, 4 * PAGE);
	KnVmUnmap((void *)mailbox, PAGE);
	KnHandleClose(buf);
	KnHandleClose(box);
	ktap_counters_back(&s0, "shared: every frame back once both sides are done");
}

/* Closing and unmapping in every order frees the frames exactly once. */
static void release_orders(void)
{
	KnMemStats s0 = mem_stats();
	Handle h, c;

	/* Close first: the mapping keeps the frames. */
	KnPmmMdlCreate(8 * PAGE, RW, &h);
	uint64_t *p = map(h, 0, 8 * PAGE, RTL_NULL, RW);
	p[1000] = 7;
	KnHandleClose(h);
	KnMemStats mid = mem_stats();
	ktap_check(p && p[1000] == 7 && mid.freePages < s0.freePages, "close, then unmap: the mapping keeps the frames",
		   NULL);
	KnVmUnmap(p, 8 * PAGE);
	ktap_counters_back(&s0, "close, then unmap: all back");
	/* Unmap first: the MDL keeps them. */
	KnPmmMdlCreate(8 * PAGE, RW, &h);
	p = map(h, 0, 8 * PAGE, RTL_NULL, RW);
	p[1000] = 9;
	KnVmUnmap(p, 8 * PAGE);
	p = map(h, 0, 8 * PAGE, RTL_NULL, VMM_FLAG_READ);
	ktap_check(p && p[1000] == 9, "unmap, then map again: the MDL kept the frames", NULL);
	KnVmUnmap(p, 8 * PAGE);
	KnHandleClose(h);
	ktap_counters_back(&s0, "unmap, then close: all back");
	/* A clone and two mappings, released in a mixed order. */
	KnPmmMdlCreate(8 * PAGE, RW, &h);
	KnPmmMdlClone(h, &c);
	uint64_t *a = map(h, 0, 8 * PAGE, RTL_NULL, RW), *b = map(c, 4 * PAGE, 4 * PAGE, RTL_NULL, RW);
	a[4 * PAGE / 8] = 0x77; /* page 4: the first page of b */
	KnHandleClose(h);
	KnVmUnmap(a, 8 * PAGE);
	KnHandleClose(c);
	ktap_check(b && b[0] == 0x77, "clone: its mapping still shows what was written through the other", NULL);
	KnVmUnmap(b, 4 * PAGE);
	ktap_counters_back(&s0, "clone and two mappings, mixed order: all back");
}

static void clone_from_buf_from_vm(void)
{
	KnMemStats s0 = mem_stats();
	Handle h, c, v;

	/* Clone shares. */
	KnPmmMdlCreate(2 * PAGE, RW, &h);
	ktap_rc(KnPmmMdlClone(h, &c), rcOk, "clone");
	uint64_t *a = map(h, 0, 2 * PAGE, RTL_NULL, RW), *b = map(c, 0, 2 * PAGE, RTL_NULL, RW);
	a[600] = 42;
	ktap_check(b && b[600] == 42, "clone: a write through one mapping is seen through the other", NULL);
	KnVmUnmap(a, 2 * PAGE);
	KnVmUnmap(b, 2 * PAGE);
	KnHandleClose(h);
	KnHandleClose(c);
	/* FromBuf copies (any byte size; the rest of the last page is zero). */
	static char text[5000];
	for (unsigned i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + i % 26);
	rtl_size_t size = 0;
	ktap_rc(KnPmmMdlCreateFromBuf(text, sizeof(text), VMM_FLAG_READ, &h), rcOk, "from buf: 5000 bytes");
	ktap_rc(KnPmmMdlGetSize(h, &size), rcOk, "get size");
	ktap_check(size == 5000, "its size is what was asked", "%llu", (unsigned long long)size);
	text[10] = '!';
	char *m = map(h, 0, 2 * PAGE, RTL_NULL, VMM_FLAG_READ);
	ktap_check(m && m[10] == 'a' + 10 && m[4999] == (char)('a' + 4999 % 26) && m[5000] == 0 && m[2 * PAGE - 1] == 0,
		   "from buf: a copy (later changes to the buffer are not in it; the tail is zero)", NULL);
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, RTL_NULL, RW, (void **)&m), rcAccessDenied,
		"from buf: a read-only MDL cannot be mapped writable");
	KnVmUnmap(m, 2 * PAGE);
	KnHandleClose(h);
	/* FromVm pins and makes lazy pages resident. */
	uint8_t *r = KnVmAllocate(slot(0), 8 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	KnVmInfo info;
	KnVmQuery(r, &info);
	ktap_check(r && !info.resident, "from vm: a lazy range", NULL);
	ktap_rc(KnPmmMdlCreateFromVm(r, 8 * PAGE, RW, &v), rcOk, "from vm");
	KnVmQuery(r, &info);
	ktap_check(info.resident && info.runSize == 8 * PAGE, "from vm: the range is resident now", NULL);
	ktap_rc(KnVmDecommit(r + PAGE, PAGE), rcBusy, "from vm: decommit is refused while the MDL pins it");
	uint8_t *alias = map(v, 0, 8 * PAGE, RTL_NULL, RW);
	alias[5 * PAGE + 1] = 0x42;
	r[6 * PAGE + 2] = 0x43;
	ktap_check(alias && r[5 * PAGE + 1] == 0x42 && alias[6 * PAGE + 2] == 0x43,
		   "from vm: the range and a mapping of its MDL are the same memory", NULL);
	KnVmUnmap(alias, 8 * PAGE);
	KnHandleClose(v);
	ktap_rc(KnVmDecommit(r + PAGE, PAGE), rcOk, "from vm: decommit works once the MDL is gone");
	uint8_t *ro = KnVmAllocate(slot(1), PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_READ);
	ktap_rc(KnPmmMdlCreateFromVm(ro, PAGE, RW, &v), rcAccessDenied, "from vm: writable MDL of read-only memory");
	ktap_rc(KnPmmMdlCreateFromVm(ro, PAGE, VMM_FLAG_READ, &v), rcOk, "from vm: read-only MDL of it");
	KnHandleClose(v);
	ktap_rc(KnPmmMdlCreateFromVm(r, PAGE, VMM_FLAG_READ | VMM_FLAG_EXECUTE, &v), rcAccessDenied,
		"from vm: executable MDL of data (no EXECUTE)");
	ktap_rc(KnPmmMdlCreateFromVm(r, PAGE, RW | VMM_FLAG_CACHE_DISABLE, &v), rcInvalidArgument,
		"from vm: another cache mode than the memory's");
	/* Over a mapping the handle made read-only: no more than that either. */
	Handle w, weak;
	KnPmmMdlCreate(PAGE, RW, &w);
	KnHandleTransfer(KN_HANDLE_SELF, w, KN_RIGHT_MAP_READ, &weak);
	uint8_t *rom = map(weak, 0, PAGE, RTL_NULL, VMM_FLAG_READ);
	ktap_rc(KnVmProtect(rom, PAGE, RW), rcAccessDenied, "a MAP_READ mapping cannot be made writable later");
	ktap_rc(KnPmmMdlCreateFromVm(rom, PAGE, RW, &v), rcAccessDenied, "... nor reached writable through FromVm");
	ktap_rc(KnPmmMdlCreateFromVm(rom, PAGE, VMM_FLAG_READ, &v), rcOk, "from vm over it, read-only: fine");
	ktap_rc(KnPmmMdlMap(v, 0, PAGE, RTL_NULL, RW, (void **)&m), rcAccessDenied,
		"... and its MDL maps read-only only");
	KnHandleClose(v);
	KnVmUnmap(rom, PAGE);
	KnHandleClose(weak);
	KnHandleClose(w);
	KnVmUnmap(r, 8 * PAGE);
	KnVmUnmap(ro, PAGE);
	ktap_counters_back(&s0, "clone, from buf, from vm: all back");
}

static void from_phys(void)
{
	KnMemStats s0 = mem_stats();
	Handle h;
	ktap_rc(KnPmmMdlCreateFromPhys(0x200000, PAGE, VMM_FLAG_READ, &h), rcInvalidArgument,
		"from phys: RAM is refused");
	ktap_rc(KnPmmMdlCreateFromPhys(0xfee00010ull, PAGE, VMM_FLAG_READ, &h), rcInvalidArgument,
		"from phys: unaligned");
	/* The local APIC (privileged: the kernel runs this program so): its version register. */
	ktap_rc(KnPmmMdlCreateFromPhys(0xfee00000ull, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &h), rcOk,
		"from phys: the local APIC's page, uncached");
	volatile uint32_t *apic = map(h, 0, PAGE, RTL_NULL, VMM_FLAG_READ);
	uint32_t version = apic ? apic[0x30 / 4] & 0xff : 0;
	ktap_check(version >= 0x10 && version <= 0x15, "from phys: mapped, its version register reads as an APIC's",
		   "version %#x", version);
	KnMemStats mid = mem_stats();
	ktap_check(mid.commitCharge > s0.commitCharge, "from phys: the mapping's page tables are charged", NULL);
	KnVmUnmap((void *)apic, PAGE);
	KnHandleClose(h);
	ktap_counters_back(&s0, "from phys: all back");
	ktap_rc(KnPmmMdlCreateFromPhys(0xfec00000ull, 2 * PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &h), rcOk,
		"from phys: two pages of device space");
	void *io = map(h, 0, 2 * PAGE, RTL_NULL, VMM_FLAG_READ);
	ktap_rc(KnVmUnmap(io, PAGE), rcInvalidArgument, "from phys: a device mapping is not unmapped in part");
	ktap_rc(KnVmUnmap(io, 2 * PAGE), rcOk, "from phys: ... but whole");
	KnHandleClose(h);
	ktap_counters_back(&s0, "from phys: all back again");
	int code = run_task("mdl-phys", "mdlchild", 0);
	ktap_check(code == 0, "from phys: refused to an unprivileged task", "code %d", code);
}

/* Counts from a usage map call; returns usedCounters, or -1 on error. */
static long usage(const void *base, uint64_t start, rtl_size_t *c, uint64_t max, rtl_bool *first)
{
	rtl_size_t n = 99;
	return KnPmmMdlGetUsageMap(base, start, c, max, first, &n) == rcOk ? (long)n : -1;
}

static bool counts_are(const rtl_size_t *c, long n, long want_n, const rtl_size_t *want)
{
	if (n != want_n)
		return false;
	for (long i = 0; i < n; i++)
		if (c[i] != want[i])
			return false;
	return true;
}

static void usage_map(void)
{
	rtl_size_t c[16];
	rtl_bool first = 7;
	uint8_t *p = KnVmAllocate(slot(2), 64 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);

	long n = usage(p, 0, c, 16, &first);
	ktap_check(n == 1 && c[0] == 64 && !first, "usage: a fresh lazy region is one unused run", "n %ld", n);
	p[10 * PAGE] = 1;
	n = usage(p, 0, c, 16, &first);
	ktap_check(counts_are(c, n, 3, (rtl_size_t[]){ 10, 1, 53 }) && !first,
		   "usage: touching page 10 makes three runs", NULL);
	p[20 * PAGE] = p[21 * PAGE] = p[22 * PAGE] = p[40 * PAGE] = p[63 * PAGE] = 1;
	n = usage(p, 0, c, 16, &first);
	ktap_check(counts_are(c, n, 8, (rtl_size_t[]){ 10, 1, 9, 3, 17, 1, 22, 1 }) && !first,
		   "usage: a pattern of touches gives its exact alternating counts", "n %ld", n);
	n = usage(p, 10, c, 16, &first);
	ktap_check(counts_are(c, n, 7, (rtl_size_t[]){ 1, 9, 3, 17, 1, 22, 1 }) && first,
		   "usage: from startPage 10 the first count is of used pages", NULL);
	/* Two counts a call, continued through startPage until the counts sum to the pages. */
	uint64_t start = 0, calls = 0, sum = 0;
	bool alternate = true, next = false; /* the kind the next count must be */
	for (;;) {
		n = usage(p, start, c, 2, &first);
		if (n <= 0)
			break;
		if (calls++ && (bool)first != next)
			alternate = false; /* each call continues where the last one stopped */
		next = first;
		for (long i = 0; i < n; i++) {
			start += c[i];
			next = !next;
		}
		sum = start;
	}
	ktap_check(n == 0 && sum == 64 && calls == 4 && alternate,
		   "usage: two counts a call: 4 calls cover the region, then usedCounters is 0",
		   "n %ld sum %llu calls %llu", n, (unsigned long long)sum, (unsigned long long)calls);
	/* LOCKED is one used run; decommitting its middle splits it. */
	uint8_t *l = KnVmAllocate(slot(3), 16 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW);
	n = usage(l, 0, c, 16, &first);
	ktap_check(n == 1 && c[0] == 16 && first, "usage: a LOCKED region is one used run", NULL);
	KnVmDecommit(l + 4 * PAGE, 4 * PAGE);
	n = usage(l, 0, c, 16, &first);
	ktap_check(counts_are(c, n, 3, (rtl_size_t[]){ 4, 4, 8 }) && first, "usage: decommitting its middle splits it",
		   NULL);
	/* A region with guard pages is described from its usable base. */
	uint8_t *g = KnVmAllocate(slot(4) + PAGE, 4 * PAGE,
				  VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD);
	n = usage(g, 0, c, 16, &first);
	ktap_check(n == 1 && c[0] == 4, "usage: guard pages are not counted", NULL);
	/* Bad input: the code, and no output written. */
	rtl_size_t fresh[2] = { 5, 5 }, cnt = 77;
	rtl_bool fu = 3;
	ktap_rc(KnPmmMdlGetUsageMap(p + PAGE, 0, fresh, 2, &fu, &cnt), rcInvalidArgument, "usage: not a region base");
	ktap_rc(KnPmmMdlGetUsageMap(slot(4), 0, fresh, 2, &fu, &cnt), rcInvalidArgument,
		"usage: the guard page, not the usable base");
	ktap_rc(KnPmmMdlGetUsageMap(slot(5), 0, fresh, 2, &fu, &cnt), rcNotFound, "usage: free space");
	ktap_rc(KnPmmMdlGetUsageMap(p, 65, fresh, 2, &fu, &cnt), rcInvalidArgument, "usage: startPage past the end");
	ktap_rc(KnPmmMdlGetUsageMap(p, 0, fresh, 0, &fu, &cnt), rcInvalidArgument, "usage: countersNum 0");
	ktap_rc(KnPmmMdlGetUsageMap(KERNEL, 0, fresh, 2, &fu, &cnt), rcInvalidArgument, "usage: a kernel address");
	ktap_rc(KnPmmMdlGetUsageMap(p, 0, KERNEL, 2, &fu, &cnt), rcFault, "usage: counters in the kernel half");
	ktap_rc(KnPmmMdlGetUsageMap(p, 0, UNMAPPED, 2, &fu, &cnt), rcFault, "usage: counters unmapped");
	ktap_rc(KnPmmMdlGetUsageMap(p, 0, RTL_NULL, 2, &fu, &cnt), rcFault, "usage: counters NULL");
	ktap_rc(KnPmmMdlGetUsageMap(p, 0, (rtl_size_t *)(void *)"read-only", 1, &fu, &cnt), rcFault,
		"usage: counters read-only");
	ktap_rc(KnPmmMdlGetUsageMap(p, 0, fresh, 2, KERNEL, &cnt), rcFault, "usage: firstUsed in the kernel half");
	ktap_rc(KnPmmMdlGetUsageMap(p, 0, fresh, 2, &fu, UNMAPPED), rcFault, "usage: usedCounters unmapped");
	ktap_check(fresh[0] == 5 && fresh[1] == 5 && fu == 3 && cnt == 77, "usage: failed calls wrote nothing", NULL);
	ktap_rc(KnPmmMdlGetUsageMap(p, 64, fresh, 2, &fu, &cnt), rcOk, "usage: startPage at the end");
	ktap_check(cnt == 0, "... gives usedCounters 0", NULL);
	KnVmUnmap(p, 64 * PAGE);
	KnVmUnmap(l, 16 * PAGE);
	KnVmUnmap(g, 4 * PAGE);
}

/* Every MDL call with the bad input of SPEC §9: its code, and nothing created or mapped. */
static void bad_input(void)
{
	KnMemStats s0 = mem_stats();
	Handle h, weak, task, out = 0x5eed;
	void *va = (void *)0x5eed;
	rtl_size_t size = 77;

	KnPmmMdlCreate(4 * PAGE, RW, &h);
	KnHandleTransfer(KN_HANDLE_SELF, h, KN_RIGHT_MAP_READ, &weak);
	KnTaskCreate("nop", "nop", 0, &task);
	s0 = mem_stats();
	/* Create */
	ktap_rc(KnPmmMdlCreate(0, RW, &out), rcInvalidArgument, "create: size 0");
	ktap_rc(KnPmmMdlCreate(1ull << 62, RW, &out), rcOutOfMemory, "create: more than the commit limit");
	ktap_rc(KnPmmMdlCreate(PAGE, 0, &out), rcInvalidArgument, "create: no protection");
	ktap_rc(KnPmmMdlCreate(PAGE, VMM_FLAG_WRITE, &out), rcInvalidArgument, "create: write-only");
	ktap_rc(KnPmmMdlCreate(PAGE, RW | VMM_FLAG_WRITE_COMBINE | VMM_FLAG_CACHE_DISABLE, &out), rcInvalidArgument,
		"create: two cache modes");
	ktap_rc(KnPmmMdlCreate(PAGE, RW | VMM_FLAG_COMMIT, &out), rcInvalidArgument, "create: an allocation flag");
	ktap_rc(KnPmmMdlCreate(PAGE, RW, (Handle *)KERNEL), rcFault, "create: handle output in the kernel half");
	ktap_rc(KnPmmMdlCreate(PAGE, RW, (Handle *)UNMAPPED), rcFault, "create: handle output unmapped");
	ktap_rc(KnPmmMdlCreate(PAGE, RW, (Handle *)(void *)"read-only"), rcFault, "create: handle output read-only");
	/* FromBuf */
	ktap_rc(KnPmmMdlCreateFromBuf(KERNEL, PAGE, RW, &out), rcFault, "from buf: a kernel buffer");
	ktap_rc(KnPmmMdlCreateFromBuf(UNMAPPED, PAGE, RW, &out), rcFault, "from buf: an unmapped buffer");
	ktap_rc(KnPmmMdlCreateFromBuf(RTL_NULL, PAGE, RW, &out), rcFault, "from buf: NULL");
	ktap_rc(KnPmmMdlCreateFromBuf((void *)0x00007ffffffff000ull - 16, 64, RW, &out), rcFault,
		"from buf: running past the user half");
	/* FromVm */
	uint8_t *r = KnVmAllocate(slot(6), 4 * PAGE, VMM_FLAG_RESERVE | RW);
	KnVmCommit(r, PAGE, 0);
	s0 = mem_stats();
	ktap_rc(KnPmmMdlCreateFromVm(r + 1, PAGE, RW, &out), rcInvalidArgument, "from vm: unaligned address");
	ktap_rc(KnPmmMdlCreateFromVm(r, 100, RW, &out), rcInvalidArgument, "from vm: unaligned size");
	ktap_rc(KnPmmMdlCreateFromVm(r, 0, RW, &out), rcInvalidArgument, "from vm: size 0");
	ktap_rc(KnPmmMdlCreateFromVm(r, 2 * PAGE, RW, &out), rcInvalidArgument, "from vm: reserved pages in the range");
	ktap_rc(KnPmmMdlCreateFromVm(r, 8 * PAGE, RW, &out), rcInvalidArgument, "from vm: past the region");
	ktap_rc(KnPmmMdlCreateFromVm(slot(7), PAGE, RW, &out), rcNotFound, "from vm: free space");
	ktap_rc(KnPmmMdlCreateFromVm(KERNEL, PAGE, RW, &out), rcInvalidArgument, "from vm: the kernel half");
	ktap_rc(KnPmmMdlCreateFromVm(r, PAGE, RW | 0x80000, &out), rcInvalidArgument, "from vm: unknown flag");
	ktap_rc(KnPmmMdlCreateFromVm(r, PAGE, RW, (Handle *)UNMAPPED), rcFault, "from vm: handle output unmapped");
	/* Clone, Map, GetSize: handles and rights */
	ktap_rc(KnPmmMdlClone(weak, &out), rcAccessDenied, "clone: without KN_RIGHT_CLONE");
	ktap_rc(KnPmmMdlClone(0x12345, &out), rcBadHandle, "clone: a made-up handle");
	ktap_rc(KnPmmMdlClone(task, &out), rcBadHandle, "clone: a task handle (wrong type)");
	ktap_rc(KnPmmMdlClone(h, (Handle *)KERNEL), rcFault, "clone: output in the kernel half");
	ktap_rc(KnPmmMdlMap(weak, 0, PAGE, RTL_NULL, RW, &va), rcAccessDenied, "map: writable without MAP_WRITE");
	ktap_rc(KnPmmMdlMap(KN_HANDLE_SELF, 0, PAGE, RTL_NULL, VMM_FLAG_READ, &va), rcBadHandle,
		"map: the self handle");
	ktap_rc(KnPmmMdlMap(task, 0, PAGE, RTL_NULL, VMM_FLAG_READ, &va), rcBadHandle,
		"map: a task handle (wrong type)");
	ktap_rc(KnPmmMdlMap(h, 1, PAGE, RTL_NULL, RW, &va), rcInvalidArgument, "map: unaligned offset");
	ktap_rc(KnPmmMdlMap(h, 0, 100, RTL_NULL, RW, &va), rcInvalidArgument, "map: unaligned size");
	ktap_rc(KnPmmMdlMap(h, 0, 0, RTL_NULL, RW, &va), rcInvalidArgument, "map: size 0");
	ktap_rc(KnPmmMdlMap(h, 2 * PAGE, 4 * PAGE, RTL_NULL, RW, &va), rcInvalidArgument, "map: past the MDL's end");
	ktap_rc(KnPmmMdlMap(h, 0x7ffffffffffff000ull, 0x1000000000000000ull, RTL_NULL, RW, &va), rcInvalidArgument,
		"map: offset + size overflow");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, RTL_NULL, VMM_FLAG_WRITE, &va), rcInvalidArgument, "map: write-only");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, RTL_NULL, VMM_FLAG_RWX_MASK, &va), rcAccessDenied, "map: above the maximum");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, RTL_NULL, RW | VMM_FLAG_WRITE_COMBINE, &va), rcInvalidArgument,
		"map: another cache mode");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, r, RW, &va), rcAlreadyExists, "map: over a region");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, (void *)0x1001, RW, &va), rcInvalidArgument, "map: unaligned address");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, KERNEL, RW, &va), rcInvalidArgument, "map: in the kernel half");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, RTL_NULL, RW, (void **)KERNEL), rcFault, "map: output in the kernel half");
	ktap_rc(KnPmmMdlMap(h, 0, PAGE, RTL_NULL, RW, (void **)UNMAPPED), rcFault, "map: output unmapped");
	ktap_rc(KnPmmMdlGetSize(task, &size), rcBadHandle, "get size: a task handle");
	ktap_rc(KnPmmMdlGetSize(h, (rtl_size_t *)KERNEL), rcFault, "get size: output in the kernel half");
	ktap_check(out == 0x5eed && va == (void *)0x5eed && size == 77, "no failed call wrote an output", NULL);
	ktap_counters_back(&s0, "no failed call made or mapped anything");
	/* The other way round: an MDL handle where a task handle belongs. */
	int state;
	ktap_rc(KnTaskGetState(h, &state), rcBadHandle, "task calls: an MDL handle (wrong type)");
	ktap_rc(KnTaskTerminate(h), rcBadHandle, "task terminate: an MDL handle (wrong type)");
	/* Stale and closed handles. */
	Handle gone;
	KnPmmMdlCreate(PAGE, RW, &gone);
	KnHandleClose(gone);
	ktap_rc(KnPmmMdlMap(gone, 0, PAGE, RTL_NULL, RW, &va), rcBadHandle, "map: a closed handle");
	ktap_rc(KnPmmMdlGetSize(gone, &size), rcBadHandle, "get size: a closed handle");
	KnVmUnmap(r, 4 * PAGE);
	KnHandleClose(h);
	KnHandleClose(weak);
	KnHandleClose(task);
}

/* The CPU's physical address width (CPUID 0x80000008), what FromPhys checks ranges against. */
static unsigned phys_bits(void)
{
	uint32_t a, b, c, d;
	__asm__ __volatile__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000000u), "c"(0));
	if (a < 0x80000008u)
		return 36;
	__asm__ __volatile__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000008u), "c"(0));
	return a & 0xff;
}

/* More of SPEC §9 for the Create calls: size 0, unknown flags, overflowing and out-of-range
 * physical ranges, bad handle outputs; each with its code, no output written, no frame taken
 * and no charge left (a FromBuf whose copy fails half way gives back what it took). */
static void bad_create_calls(void)
{
	static const char ro[64] = "read-only";
	static char text[64] = "some bytes";
	void *const outs[] = { KERNEL, UNMAPPED, (void *)ro };
	const char *const what[] = { "in the kernel half", "unmapped", "read-only" };
	char name[96];
	Handle out = 0x5eed;
	uint64_t apic = 0xfee00000ull, top = 1ull << phys_bits();

	/* A touched page with free space after it (slot 9 is never used). */
	uint8_t *one = KnVmAllocate(slot(8), PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW);
	ktap_check(one != RTL_NULL, "bad create: a locked page to copy from", NULL);
	if (!one)
		return;
	KnMemStats s0 = mem_stats();
	/* Create */
	ktap_rc(KnPmmMdlCreate(PAGE, RW | 0x80000, &out), rcInvalidArgument, "create: unknown flag bit 0x80000");
	ktap_rc(KnPmmMdlCreate(PAGE, RW | 0x10000, &out), rcInvalidArgument, "create: unknown flag bit 0x10000");
	ktap_rc(KnPmmMdlCreate(PAGE, (int)(RW | 0x80000000u), &out), rcInvalidArgument, "create: unknown flag bit 31");
	ktap_rc(KnPmmMdlCreate(PAGE, RW | VMM_FLAG_LOW_GUARD, &out), rcInvalidArgument, "create: a guard flag");
	ktap_rc(KnPmmMdlCreate(~0ull, RW, &out), rcInvalidArgument, "create: a size that overflows when rounded up");
	/* FromBuf */
	ktap_rc(KnPmmMdlCreateFromBuf(text, 0, RW, &out), rcInvalidArgument, "from buf: size 0");
	ktap_rc(KnPmmMdlCreateFromBuf(text, sizeof(text), RW | 0x80000, &out), rcInvalidArgument,
		"from buf: unknown flag bit");
	ktap_rc(KnPmmMdlCreateFromBuf(text, sizeof(text), RW | VMM_FLAG_RESERVE, &out), rcInvalidArgument,
		"from buf: an allocation flag");
	ktap_rc(KnPmmMdlCreateFromBuf(text, sizeof(text), 0, &out), rcInvalidArgument, "from buf: no protection");
	ktap_rc(KnPmmMdlCreateFromBuf(one, 2 * PAGE, RW, &out), rcFault,
		"from buf: a buffer whose second page is unmapped (the copy fails half way)");
	ktap_rc(KnPmmMdlCreateFromBuf(one + PAGE - 8, 16, RW, &out), rcFault,
		"from buf: a 16-byte buffer across into free space");
	/* FromPhys (this task is privileged: the arguments are what is refused) */
	ktap_rc(KnPmmMdlCreateFromPhys(apic, 0, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &out), rcInvalidArgument,
		"from phys: size 0");
	ktap_rc(KnPmmMdlCreateFromPhys(apic, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE | 0x80000, &out),
		rcInvalidArgument, "from phys: unknown flag bit");
	ktap_rc(KnPmmMdlCreateFromPhys(apic, PAGE, VMM_FLAG_READ | VMM_FLAG_COMMIT, &out), rcInvalidArgument,
		"from phys: an allocation flag");
	ktap_rc(KnPmmMdlCreateFromPhys(apic, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE | VMM_FLAG_WRITE_COMBINE,
				       &out),
		rcInvalidArgument, "from phys: two cache modes");
	ktap_rc(KnPmmMdlCreateFromPhys(apic, ~0ull, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &out), rcInvalidArgument,
		"from phys: a size that overflows when rounded up");
	ktap_rc(KnPmmMdlCreateFromPhys(apic, 0xffffffffffff0000ull, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &out),
		rcInvalidArgument, "from phys: pa + size wraps");
	ktap_rc(KnPmmMdlCreateFromPhys(0xfffffffffffff000ull, 2 * PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &out),
		rcInvalidArgument, "from phys: the last page of the 64-bit space and past it");
	ktap_rc(KnPmmMdlCreateFromPhys(top, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &out), rcInvalidArgument,
		"from phys: at the CPU's physical address width");
	ktap_rc(KnPmmMdlCreateFromPhys(top - PAGE, 2 * PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &out),
		rcInvalidArgument, "from phys: running past the physical address width");
	ktap_rc(KnPmmMdlCreateFromPhys(1ull << 63, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &out),
		rcInvalidArgument, "from phys: at 2^63");
	/* Bad handle outputs, for each Create call (and Clone), with arguments that are otherwise fine. */
	Handle h;
	KnPmmMdlCreate(PAGE, RW, &h);
	KnMemStats s1 = mem_stats();
	for (unsigned i = 0; i < 3; i++) {
		ksnprintf(name, sizeof(name), "from buf: handle output %s", what[i]);
		ktap_rc(KnPmmMdlCreateFromBuf(text, sizeof(text), RW, outs[i]), rcFault, name);
		ksnprintf(name, sizeof(name), "from phys: handle output %s", what[i]);
		ktap_rc(KnPmmMdlCreateFromPhys(apic, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, outs[i]), rcFault,
			name);
		ksnprintf(name, sizeof(name), "from vm: handle output %s", what[i]);
		ktap_rc(KnPmmMdlCreateFromVm(one, PAGE, RW, outs[i]), rcFault, name);
		ksnprintf(name, sizeof(name), "clone: handle output %s", what[i]);
		ktap_rc(KnPmmMdlClone(h, outs[i]), rcFault, name);
	}
	ktap_check(strcmp(ro, "read-only") == 0, "bad create: the read-only output is unchanged", NULL);
	ktap_counters_back(&s1, "bad create: no failed call with a bad output left an MDL, a frame or a charge");
	rtl_size_t size = 0;
	ktap_rc(KnPmmMdlGetSize(h, (rtl_size_t *)(void *)ro), rcFault, "get size: output read-only");
	ktap_rc(KnPmmMdlGetSize(h, (rtl_size_t *)UNMAPPED), rcFault, "get size: output unmapped");
	ktap_rc(KnPmmMdlGetSize(h, &size), rcOk, "get size: the handle still works");
	ktap_check(size == PAGE, "... and says one page", "%llu", (unsigned long long)size);
	KnHandleClose(h);
	ktap_check(out == 0x5eed, "bad create: no failed call wrote the handle output", "%#x", out);
	ktap_counters_back(&s0, "bad create: free pages and commit charge unchanged");
	/* A failed FromVm must not leave its pin: decommit would be rcBusy. */
	ktap_rc(KnVmDecommit(one, PAGE), rcOk, "bad create: no pin was left on the source page");
	KnVmUnmap(one, PAGE);
}

/* Handles that are no MDL handle of ours, in every call that takes one: never allocated,
 * forged (a live slot with another generation), closed, and the self pseudo-handle; and
 * the usage map of a mapping that is gone. */
static void bogus_handles(void)
{
	Handle h, gone, c = 0x5eed;
	void *va = (void *)0x5eed;
	rtl_size_t size = 77, cnt = 77, counters[4] = { 5, 5, 5, 5 };
	rtl_bool fu = 3;
	char name[96];

	KnMemStats start = mem_stats();
	KnPmmMdlCreate(2 * PAGE, RW, &h);
	KnPmmMdlCreate(PAGE, RW, &gone);
	void *m = map(gone, 0, PAGE, RTL_NULL, RW);
	KnHandleClose(gone);
	KnMemStats s0 = mem_stats();
	const Handle bogus[] = { 0, 0x12345, 0xdeadbeef, (Handle)(h ^ 0x80000000u), gone, KN_HANDLE_SELF };
	const char *const what[] = { "handle 0",        "a never-allocated value",
				     "0xdeadbeef",      "a forged generation of a live slot",
				     "a closed handle", "the self pseudo-handle" };
	for (unsigned i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++) {
		ksnprintf(name, sizeof(name), "map: %s", what[i]);
		ktap_rc(KnPmmMdlMap(bogus[i], 0, PAGE, RTL_NULL, VMM_FLAG_READ, &va), rcBadHandle, name);
		ksnprintf(name, sizeof(name), "get size: %s", what[i]);
		ktap_rc(KnPmmMdlGetSize(bogus[i], &size), rcBadHandle, name);
		ksnprintf(name, sizeof(name), "clone: %s", what[i]);
		ktap_rc(KnPmmMdlClone(bogus[i], &c), rcBadHandle, name);
	}
	/* GetUsageMap takes a mapping's base, not a handle: the mapping of a closed handle is
	 * still there (it holds the frame); once unmapped, its base is free space. */
	ktap_rc(KnPmmMdlGetUsageMap(m, 0, counters, 4, &fu, &cnt), rcOk, "usage: the mapping of a closed handle");
	ktap_check(cnt == 1 && counters[0] == 1 && fu, "... is one used page", "n %llu", (unsigned long long)cnt);
	ktap_counters_back(&s0, "bogus handles: no call made, mapped or charged anything");
	KnVmUnmap(m, PAGE);
	cnt = 77;
	counters[0] = 5;
	fu = 3;
	ktap_rc(KnPmmMdlGetUsageMap(m, 0, counters, 4, &fu, &cnt), rcNotFound,
		"usage: the base of an unmapped mapping");
	ktap_rc(KnPmmMdlGetUsageMap((void *)(uintptr_t)0x12345, 0, counters, 4, &fu, &cnt), rcInvalidArgument,
		"usage: a handle value as an address (not a region base)");
	ktap_rc(KnPmmMdlGetUsageMap(slot(9), 0, counters, 4, &fu, &cnt), rcNotFound, "usage: a never-mapped address");
	ktap_check(c == 0x5eed && va == (void *)0x5eed && size == 77 && cnt == 77 && counters[0] == 5 && fu == 3,
		   "bogus handles: no failed call wrote an output", NULL);
	ktap_rc(KnPmmMdlGetSize(h, &size), rcOk, "bogus handles: the live handle still works");
	KnHandleClose(h);
	ktap_counters_back(&start, "bogus handles: unmapping the last mapping of the closed MDL freed its frame");
}

int main(void)
{
	ktap_start();
	KnMemStats start = mem_stats();
	shared_memory();
	release_orders();
	clone_from_buf_from_vm();
	from_phys();
	usage_map();
	bad_input();
	bad_create_calls();
	bogus_handles();
	ktap_counters_back(&start, "test_mdl: free pages and commit charge end where they began");
	ktap_done();
}
