// SPDX-License-Identifier: MIT
/*
 * Issue 13 from ring 3: what a hostile task must not be able to do to the kernel. The task
 * "test_hostile" (user.hostile, run with ASLR on by tests/kernel/test_hostile.c, like the
 * fuzzer that found the issue).
 *
 *   finding 6  task output cannot pass for kernel lines: the fake lines this program prints
 *              first must reach the console marked with the task's id ("  7| ..."), which
 *              the runner asserts (tests/run.py, EXPECTED_LINES["user.hostile"]); and
 *              KnDebugWrite's limits.
 *   finding 1  (the cheap half) every frame a task costs the kernel is covered by the commit
 *              charge: suspended tasks make free pages fall by no more than the charge rises
 *              (each task's page-table root was not charged). The exhaustion itself runs
 *              last, in its own program (hostile_reserve), because today it panics.
 *   finding 3  frozen tasks nobody holds are released: 200 crashed dumpable orphans, a frozen
 *              task holding a created one, a cycle of two frozen tasks, a created task held
 *              only by a frozen one.
 *   finding 5  a call that fails changes nothing: no half-written outputs (an output running
 *              into a guard page), no lazily committed input page made resident, cache mode
 *              checked before FromVm makes anything resident; VMM_FLAG_WRITE_BACK accepted
 *              where write-back is the mode.
 */
#include "common.h"

#define ORPHANS 200

/* ------------------------------------------------------------------ finding 6 */

/* Lines a task prints that look like the kernel's own: the console must show each with the
 * task's mark in front ("%3llu| "), so the runner never takes them for a panic or a result.
 * Printed before anything else, so that today's runner (which takes "ok 999" for a result
 * line) does not hand this program's own subtests to the fake result. The runner must find
 * each, marked, in the log of the test user.hostile:
 * EXPECT-LOG(user.hostile): (?m)^ *\d+\| \[    1\.000000\] E KERNEL PANIC: fake$
 * EXPECT-LOG(user.hostile): (?m)^ *\d+\| ok 999 fake\.result$
 * EXPECT-LOG(user.hostile): (?m)^ *\d+\| hostile: two lines in one write$
 * EXPECT-LOG(user.hostile): (?m)^ *\d+\| \[    2\.000000\] E KERNEL PANIC: fake second line$
 * EXPECT-LOG(user.hostile): (?m)^ *\d+\| hostile: a line in two writes, ended here$
 * EXPECT-LOG(user.hostile): (?m)^ *\d+\| \[    3\.000000\] E KERNEL PANIC: fake after a split line$
 */
static void fake_kernel_lines(void)
{
	printf("[    1.000000] E KERNEL PANIC: fake\n");
	printf("ok 999 fake.result\n");
	/* Two lines in one write: the second needs its mark too. */
	static const char two[] = "hostile: two lines in one write\n[    2.000000] E KERNEL PANIC: fake second line\n";
	KnDebugWrite(0, two, sizeof(two) - 1);
	/* A line left open, ended by the next write, then a fake line in the same write. */
	KnDebugWrite(0, "hostile: a line in two writes,", 30);
	static const char rest[] = " ended here\n[    3.000000] E KERNEL PANIC: fake after a split line\n";
	KnDebugWrite(0, rest, sizeof(rest) - 1);
}

static void debug_write_limits(void)
{
	static const char text[] = "x";
	ktap_rc(KnDebugWrite(0, text, 64 * 1024 + 1), rcInvalidArgument, "KnDebugWrite: 64 KiB + 1 byte is refused");
	ktap_rc(KnDebugWrite(0, text, ~0ull), rcInvalidArgument, "KnDebugWrite: a length of 2^64 - 1 is refused");
	ktap_rc(KnDebugWrite(0, text, 1ull << 32), rcInvalidArgument, "KnDebugWrite: a length of 2^32 is refused");
	ktap_rc(KnDebugWrite(2, text, 1), rcInvalidArgument, "KnDebugWrite: channel 2 does not exist");
	ktap_rc(KnDebugWrite(-1, text, 1), rcInvalidArgument, "KnDebugWrite: channel -1 does not exist");
	ktap_rc(KnDebugWrite(0, text, 0), rcOk, "KnDebugWrite: nothing to write is fine");
	ktap_rc(KnDebugWrite(0, KERNEL, 0), rcOk, "KnDebugWrite: nothing to write, from anywhere");
	/* A buffer that runs from a lazily committed page into a reserved one: rcFault, and the
	 * lazy page was not made resident (nor written to the console: only its last 16 bytes
	 * are in the buffer, zeros). */
	uint8_t *r = KnVmAllocate(RTL_NULL, 2 * PAGE, VMM_FLAG_RESERVE | RW);
	ktap_check(r && KnVmCommit(r, PAGE, VMM_FLAG_COMMIT) == rcOk, "KnDebugWrite: a lazy page before a reserved one",
		   NULL);
	if (!r)
		return;
	KnMemStats s0 = mem_stats();
	ktap_rc(KnDebugWrite(0, r + PAGE - 16, 32), rcFault, "KnDebugWrite: a buffer running into a reserved page");
	ktap_check(!is_resident(r), "KnDebugWrite: ... did not make the lazy page before it resident", NULL);
	ktap_counters_back(&s0, "KnDebugWrite: ... and took no memory");
	KnVmUnmap(r, 2 * PAGE);
}

/* ------------------------------------------------------------------ finding 1, cheap half */

static void every_frame_charged(void)
{
	enum { N = 64 };
	Handle h[N];
	unsigned made = 0;
	KnMemStats s0 = mem_stats();

	while (made < N && KnTaskCreate("suspended", "nop", 0, &h[made]) == rcOk)
		made++;
	KnMemStats s1 = mem_stats();
	ktap_check(made == N, "charge: 64 suspended tasks of nop", "%u made", made);
	long long used = (long long)(s0.freePages - s1.freePages),
		  charged = (long long)(s1.commitCharge - s0.commitCharge);
	ktap_check(used <= charged, "charge: the frames they took are all covered by the commit charge",
		   "free pages fell by %lld, the charge rose by %lld: %lld frames (%lld a task) nobody paid for", used,
		   charged, used - charged, (used - charged) / (made ? made : 1));
	while (made)
		KnHandleClose(h[--made]);
	stats_back(&s0, "charge: all back after closing them");

	/* Many small kernel objects (region objects and runs, MDL headers and their objects,
	 * handle entries): the pool pages they take, and the pool area's tables, are charged too. */
	enum { REGIONS = 1000, MDLS = 300 };
	static void *r[REGIONS];
	static Handle m[MDLS];
	unsigned nr = 0, nm = 0;
	s0 = mem_stats();
	while (nr < REGIONS && (r[nr] = KnVmAllocate(RTL_NULL, 3 * PAGE, VMM_FLAG_RESERVE | RW)) != RTL_NULL) {
		KnVmCommit((uint8_t *)r[nr] + PAGE, PAGE, VMM_FLAG_COMMIT); /* three runs */
		nr++;
	}
	while (nm < MDLS && KnPmmMdlCreate(PAGE, RW, &m[nm]) == rcOk)
		nm++;
	s1 = mem_stats();
	used = (long long)(s0.freePages - s1.freePages);
	charged = (long long)(s1.commitCharge - s0.commitCharge);
	ktap_check(nr == REGIONS && nm == MDLS && used <= charged,
		   "charge: 1000 regions and 300 MDLs: every frame they took is covered by the commit charge",
		   "%u regions, %u MDLs: free pages fell by %lld, the charge rose by %lld", nr, nm, used, charged);
	while (nm)
		KnHandleClose(m[--nm]);
	while (nr)
		KnVmUnmap(r[--nr], 3 * PAGE);
	stats_back(&s0, "charge: all back after releasing them");
}

/* ------------------------------------------------------------------ finding 3 */

/* (a) Dumpable children crash after their parent (us) closed its handle: each is frozen with
 * nobody to dump or terminate it, so it must be released. Each child says it is about to
 * crash by counting in a shared page (hostile_child "orphan-crash"). */
static void orphans_crash(void)
{
	Handle box, h, r;
	volatile uint64_t *mail = mailbox_new(&box);
	unsigned made = 0;

	ktap_check(mail != RTL_NULL, "orphans: a mailbox for the crashing children", NULL);
	if (!mail)
		return;
	mail[0] = 0;
	KnMemStats s0 = mem_stats();
	for (unsigned i = 0; i < ORPHANS; i++) {
		if (KnTaskCreate("orphan-crash", PROGRAM, KN_TASK_DUMPABLE, &h) != rcOk)
			break;
		/* A handle to us (no rights) to wait on, and the mailbox. */
		if (KnHandleTransfer(h, KN_HANDLE_SELF, 0, &r) == rcOk &&
		    KnHandleTransfer(h, box, KN_RIGHT_MAP_READ | KN_RIGHT_MAP_WRITE, &r) == rcOk &&
		    KnTaskResume(h) == rcOk)
			made++;
		KnHandleClose(h); /* it has not run yet: it crashes after this */
	}
	ktap_check(made == ORPHANS, "orphans: 200 dumpable children started, their handles closed at once",
		   "%u started", made);
	for (unsigned waited = 0; mail[0] < made && waited < 20000; waited += SLEEP_MS)
		sleep_ms(SLEEP_MS);
	ktap_check(mail[0] == made, "orphans: every one of them crashed, with nobody holding it", "%llu of %u",
		   (unsigned long long)mail[0], made);
	KnMemStats s1 = settle_tasks(s0.tasks, 500);
	ktap_check(s1.tasks == s0.tasks, "orphans: the frozen orphans were released", "%llu tasks left of %u",
		   (unsigned long long)(s1.tasks - s0.tasks), made);
	stats_back(&s0, "orphans: tasks, threads, free pages and commit charge back after 200 crashes");
	KnVmUnmap((void *)mail, PAGE);
	KnHandleClose(box);
}

/* A running task (spin) that we freeze, after giving it handles. */
static bool start_spinner(Handle *h)
{
	return KnTaskCreate("spinner", "spin", 0, h) == rcOk && KnTaskResume(*h) == rcOk;
}

static bool freeze(Handle h)
{
	return KnTaskFreeze(h) == rcOk && KnTaskWait(h, KN_TASK_STATE_FROZEN, 10000000000ull) == rcOk;
}

static void frozen_holders(void)
{
	Handle f = 0, g = 0, c = 0, r;
	KnMemStats s0 = mem_stats();

	/* (b) A frozen task holding a handle to a created one: closing our handle to the frozen
	 * one releases both. */
	ktap_check(start_spinner(&f), "frozen holder: a running task", NULL);
	ktap_rc(KnTaskCreate("held", "nop", 0, &c), rcOk, "frozen holder: a created task");
	ktap_rc(KnHandleTransfer(f, c, KN_RIGHT_TERMINATE, &r), rcOk,
		"frozen holder: the running one holds the created one");
	KnHandleClose(c); /* it is the holder's alone now */
	ktap_check(freeze(f), "frozen holder: frozen", NULL);
	KnHandleClose(f);
	KnMemStats s1 = settle_tasks(s0.tasks, 300);
	ktap_check(s1.tasks == s0.tasks, "frozen holder: closing our handle to it released both", "%llu tasks left",
		   (unsigned long long)(s1.tasks - s0.tasks));
	stats_back(&s0, "frozen holder: everything back");

	/* (c) Two frozen tasks holding each other, our handles closed: both released. */
	s0 = mem_stats();
	ktap_check(start_spinner(&f) && start_spinner(&g), "cycle: two running tasks", NULL);
	ktap_rc(KnHandleTransfer(f, g, KN_RIGHT_FREEZE, &r), rcOk, "cycle: the first holds the second");
	ktap_rc(KnHandleTransfer(g, f, KN_RIGHT_FREEZE, &r), rcOk, "cycle: the second holds the first");
	ktap_check(freeze(f) && freeze(g), "cycle: both frozen", NULL);
	KnHandleClose(f);
	KnHandleClose(g);
	s1 = settle_tasks(s0.tasks, 300);
	ktap_check(s1.tasks == s0.tasks, "cycle: closing our handles released both", "%llu tasks left",
		   (unsigned long long)(s1.tasks - s0.tasks));
	stats_back(&s0, "cycle: everything back");

	/* (d) A created task held only by a frozen task (which we still hold): nobody can ever
	 * resume it, so it is ended and its memory comes back. (Its task object may stay while
	 * the frozen task's table refers to it: what is asserted is its thread, its frames and
	 * its commit, within a page for that object.) */
	s0 = mem_stats();
	ktap_check(start_spinner(&f), "created under frozen: a running task", NULL);
	ktap_rc(KnHandleTransfer(f, KN_HANDLE_SELF, 0, &r), rcOk, "created under frozen: it holds a handle already");
	KnMemStats sa = mem_stats();
	ktap_rc(KnTaskCreate("held", "nop", 0, &c), rcOk, "created under frozen: a created task");
	ktap_rc(KnHandleTransfer(f, c, KN_RIGHT_TERMINATE, &r), rcOk, "created under frozen: the running one holds it");
	KnMemStats sb = mem_stats();
	ktap_check(freeze(f), "created under frozen: the holder frozen", NULL);
	KnHandleClose(c);
	s1 = mem_stats();
	for (unsigned waited = 0; s1.threads > sa.threads && waited < 300; waited += SLEEP_MS) {
		sleep_ms(SLEEP_MS);
		s1 = mem_stats();
	}
	long long cost = (long long)(sa.freePages - sb.freePages), back = (long long)(s1.freePages - sb.freePages);
	long long charged = (long long)(sb.commitCharge - sa.commitCharge),
		  unc = (long long)(sb.commitCharge - s1.commitCharge);
	ktap_check(s1.threads == sa.threads && back >= cost - 1 && unc >= charged - 1,
		   "created under frozen: our handle closed, it is ended: its thread, frames and commit back",
		   "threads %llu -> %llu (before it: %llu); it took %lld frames and %lld pages of commit, %lld and "
		   "%lld came back",
		   (unsigned long long)sb.threads, (unsigned long long)s1.threads, (unsigned long long)sa.threads, cost,
		   charged, back, unc);
	int state = 0;
	Retcode rc = KnTaskGetState(f, &state);
	ktap_check(rc == rcOk && state == KN_TASK_STATE_FROZEN, "created under frozen: the holder is still frozen",
		   "rc %d, state %d", rc, state);
	KnHandleClose(f);
	settle_tasks(s0.tasks, 300);
	stats_back(&s0, "created under frozen: everything back");
}

/* ------------------------------------------------------------------ finding 5 */

/* An output that starts in a writable page and runs into the guard page after it. */
static uint8_t *guarded;

static void fill_guarded(void) { memset(guarded, SENTINEL, PAGE); }

static bool guarded_intact(void)
{
	for (uint64_t i = 0; i < PAGE; i++)
		if (guarded[i] != SENTINEL)
			return false;
	return true;
}

static void straddle(Retcode rc, const char *name)
{
	char line[120];
	ksnprintf(line, sizeof(line), "straddle: %s -> rcFault", name);
	ktap_rc(rc, rcFault, line);
	ksnprintf(line, sizeof(line), "straddle: %s wrote nothing", name);
	ktap_check(guarded_intact(), line, "bytes before the guard page changed");
	fill_guarded();
}

static void straddling_outputs(void)
{
	Handle mdl, done;

	guarded = KnVmAllocate(RTL_NULL, PAGE, LAZY | VMM_FLAG_HIGH_GUARD);
	ktap_check(guarded != RTL_NULL, "straddle: a page with a guard page after it", NULL);
	if (!guarded)
		return;
	uint8_t *end = guarded + PAGE;
	fill_guarded();
	KnPmmMdlCreate(3 * PAGE, RW, &mdl);
	KnTaskCreate("done", "nop", 0, &done);
	KnTaskResume(done);
	KnTaskWait(done, KN_TASK_STATE_EXITED, ~0ull);
	KnMemStats s0 = mem_stats();

	/* The four the fuzzer found. */
	straddle(KnPmmMdlGetSize(mdl, (rtl_size_t *)(end - 4)), "KnPmmMdlGetSize");
	straddle(KnTaskGetState(KN_HANDLE_SELF, (int *)(end - 2)), "KnTaskGetState");
	straddle(KnTaskGetExitCode(done, (int *)(end - 2)), "KnTaskGetExitCode");
	straddle(KnDebugGetStats((KnMemStats *)(end - 16)), "KnDebugGetStats");
	/* Every other call with an output, the same way. */
	KnVmInfo *info = (KnVmInfo *)(end - 8);
	straddle(KnVmQuery(guarded, info), "KnVmQuery");
	int type;
	rtl_uint32_t rights;
	Handle h;
	straddle(KnHandleEnumerate(0, (Handle *)(end - 2), &type, &rights), "KnHandleEnumerate handle");
	straddle(KnHandleEnumerate(0, &h, (int *)(end - 2), &rights), "KnHandleEnumerate type");
	straddle(KnTaskCreate("x", "nop", 0, (Handle *)(end - 2)), "KnTaskCreate");
	straddle(KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, KN_RIGHT_FREEZE, (Handle *)(end - 2)),
		 "KnHandleTransfer");
	straddle(KnPmmMdlCreate(PAGE, RW, (Handle *)(end - 2)), "KnPmmMdlCreate");
	straddle(KnPmmMdlClone(mdl, (Handle *)(end - 2)), "KnPmmMdlClone");
	straddle(KnVmAllocateEx(RTL_NULL, PAGE, LAZY, (void **)(end - 4)), "KnVmAllocateEx");
	straddle(KnPmmMdlMap(mdl, 0, PAGE, RTL_NULL, VMM_FLAG_READ, (void **)(end - 4)), "KnPmmMdlMap");
	rtl_bool fu;
	rtl_size_t n;
	straddle(KnPmmMdlGetUsageMap(guarded, 0, (rtl_size_t *)(end - 12), 2, &fu, &n), "KnPmmMdlGetUsageMap counters");
	rtl_size_t counts[2];
	straddle(KnPmmMdlGetUsageMap(guarded, 0, counts, 2, (rtl_bool *)(end - 2), &n),
		 "KnPmmMdlGetUsageMap firstUsed");
	straddle(KnPmmMdlGetUsageMap(guarded, 0, counts, 2, &fu, (rtl_size_t *)(end - 4)), "KnPmmMdlGetUsageMap count");
	ktap_counters_back(&s0, "straddle: no memory taken by the failed calls");
	KnMemStats s1 = mem_stats();
	ktap_check(s1.tasks == s0.tasks, "straddle: no task left behind", NULL);
	KnHandleClose(done);
	KnHandleClose(mdl);
	KnVmUnmap(guarded, PAGE);
}

/* One refused KnPmmMdlCreateFromVm over fresh lazily committed pages (region flags
 * `extra`): nothing made resident, no handle written, no memory taken. */
static void from_vm_refused(int extra, int flags, Retcode want, const char *what)
{
	Handle h = 0x5eed;
	char name[120];
	uint8_t *p = KnVmAllocate(RTL_NULL, 4 * PAGE, LAZY | extra);
	KnMemStats s0 = mem_stats();

	ksnprintf(name, sizeof(name), "FromVm: %s is refused", what);
	ktap_rc(KnPmmMdlCreateFromVm(p, 4 * PAGE, flags, &h), want, name);
	ksnprintf(name, sizeof(name), "FromVm: ... (%s) made no page resident, wrote no handle", what);
	ktap_check(p && resident_pages(p, 4) == 0 && h == 0x5eed, name, "%u of 4 pages resident, output %#x",
		   p ? resident_pages(p, 4) : 0, h);
	ksnprintf(name, sizeof(name), "FromVm: ... (%s) took no memory", what);
	ktap_counters_back(&s0, name);
	KnVmUnmap(p, 4 * PAGE);
}

static void from_vm_cache_mode(void)
{
	Handle h = 0x5eed;

	from_vm_refused(0, RW | VMM_FLAG_WRITE_COMBINE, rcInvalidArgument, "write-combining over write-back memory");
	from_vm_refused(0, RW | VMM_FLAG_CACHE_DISABLE, rcInvalidArgument, "uncached over write-back memory");
	from_vm_refused(0, RW | VMM_FLAG_WRITE_THROUGH, rcInvalidArgument, "write-through over write-back memory");
	from_vm_refused(VMM_FLAG_WRITE_COMBINE, RW | VMM_FLAG_WRITE_BACK, rcInvalidArgument,
			"write-back over write-combining memory");
	from_vm_refused(0, VMM_FLAG_READ | VMM_FLAG_EXECUTE, rcAccessDenied, "executable over read-write memory");
	/* A range whose last page is only reserved. */
	uint8_t *pr = KnVmAllocate(RTL_NULL, 3 * PAGE, VMM_FLAG_RESERVE | RW);
	ktap_check(pr && KnVmCommit(pr, 2 * PAGE, VMM_FLAG_COMMIT) == rcOk, "FromVm: 2 lazy pages, then a reserved one",
		   NULL);
	KnMemStats s0 = mem_stats();
	ktap_rc(KnPmmMdlCreateFromVm(pr, 3 * PAGE, RW, &h), rcInvalidArgument,
		"FromVm: a range ending in a reserved page");
	ktap_check(pr && resident_pages(pr, 2) == 0 && h == 0x5eed,
		   "FromVm: ... made no page resident, wrote no handle", NULL);
	ktap_counters_back(&s0, "FromVm: ... took no memory");
	KnVmUnmap(pr, 3 * PAGE);
}

static void write_back_named(void)
{
	Handle v = 0, m1 = 0, m2 = 0, m3 = 0, m4 = 0;
	void *a;
	KnMemStats s0 = mem_stats();

	/* FromVm over default (write-back) memory, naming write-back. */
	uint64_t *p = lazy(2);
	if (p)
		p[0] = 0x1234;
	ktap_rc(KnPmmMdlCreateFromVm(p, 2 * PAGE, RW | VMM_FLAG_WRITE_BACK, &v), rcOk,
		"write-back: FromVm naming VMM_FLAG_WRITE_BACK over default memory");
	ktap_rc(KnPmmMdlMap(v, 0, 2 * PAGE, RTL_NULL, RW | VMM_FLAG_WRITE_BACK, &a), rcOk,
		"write-back: KnPmmMdlMap of it naming VMM_FLAG_WRITE_BACK");
	ktap_check(v && a && ((uint64_t *)a)[0] == 0x1234, "write-back: ... maps the same memory", NULL);
	if (v && a)
		KnVmUnmap(a, 2 * PAGE);
	/* A memory region that named it when it was made. */
	uint64_t *q = KnVmAllocate(RTL_NULL, PAGE, LAZY | VMM_FLAG_WRITE_BACK);
	Handle w = 0, w2 = 0;
	ktap_rc(KnPmmMdlCreateFromVm(q, PAGE, RW, &w), rcOk,
		"write-back: FromVm without a mode over WRITE_BACK memory");
	if (w)
		KnHandleClose(w);
	ktap_rc(KnPmmMdlCreateFromVm(q, PAGE, RW | VMM_FLAG_WRITE_BACK, &w2), rcOk,
		"write-back: FromVm naming it over WRITE_BACK memory");
	if (w2)
		KnHandleClose(w2);
	/* MDLs made with no mode and with WRITE_BACK map either way. */
	KnPmmMdlCreate(PAGE, RW, &m1);
	ktap_rc(KnPmmMdlMap(m1, 0, PAGE, RTL_NULL, RW | VMM_FLAG_WRITE_BACK, &a), rcOk,
		"write-back: KnPmmMdlMap naming it, of an MDL made without a mode");
	if (m1 && a)
		KnVmUnmap(a, PAGE);
	KnPmmMdlCreate(PAGE, RW | VMM_FLAG_WRITE_BACK, &m2);
	ktap_rc(KnPmmMdlMap(m2, 0, PAGE, RTL_NULL, RW, &a), rcOk,
		"write-back: KnPmmMdlMap without a mode, of a WRITE_BACK MDL");
	if (m2 && a)
		KnVmUnmap(a, PAGE);
	ktap_rc(KnPmmMdlMap(m2, 0, PAGE, RTL_NULL, RW | VMM_FLAG_WRITE_BACK, &a), rcOk,
		"write-back: KnPmmMdlMap naming it, of a WRITE_BACK MDL");
	if (m2 && a)
		KnVmUnmap(a, PAGE);
	KnPmmMdlCreateFromBuf("abc", 3, VMM_FLAG_READ, &m3);
	ktap_rc(KnPmmMdlMap(m3, 0, PAGE, RTL_NULL, VMM_FLAG_READ | VMM_FLAG_WRITE_BACK, &a), rcOk,
		"write-back: KnPmmMdlMap naming it, of a FromBuf MDL");
	if (m3 && a)
		KnVmUnmap(a, PAGE);
	/* Another mode is still another mode. */
	KnPmmMdlCreate(PAGE, RW | VMM_FLAG_WRITE_COMBINE, &m4);
	ktap_rc(KnPmmMdlMap(m4, 0, PAGE, RTL_NULL, RW | VMM_FLAG_WRITE_BACK, &a), rcInvalidArgument,
		"write-back: ... but not for a write-combining MDL");
	ktap_rc(KnPmmMdlMap(m4, 0, PAGE, RTL_NULL, RW | VMM_FLAG_WRITE_COMBINE, &a), rcOk,
		"write-back: (which maps with its own mode)");
	if (m4 && a)
		KnVmUnmap(a, PAGE);
	if (v)
		KnHandleClose(v);
	KnHandleClose(m1);
	KnHandleClose(m2);
	KnHandleClose(m3);
	KnHandleClose(m4);
	KnVmUnmap(p, 2 * PAGE);
	KnVmUnmap(q, PAGE);
	ktap_counters_back(&s0, "write-back: all back");
}

/* Failing calls fault in no lazily committed input page. */
static void inputs_not_faulted_in(void)
{
	Handle h = 0x5eed;

	/* FromBuf: 4 lazy pages, then a reserved one. */
	uint8_t *r = KnVmAllocate(RTL_NULL, 5 * PAGE, VMM_FLAG_RESERVE | RW);
	ktap_check(r && KnVmCommit(r, 4 * PAGE, VMM_FLAG_COMMIT) == rcOk, "inputs: 4 lazy pages, then a reserved one",
		   NULL);
	KnMemStats s0 = mem_stats();
	ktap_rc(KnPmmMdlCreateFromBuf(r, 5 * PAGE, RW, &h), rcFault, "inputs: FromBuf ending in a reserved page");
	ktap_check(resident_pages(r, 4) == 0, "inputs: ... made none of the lazy pages before it resident", "%u of 4",
		   resident_pages(r, 4));
	ktap_rc(KnPmmMdlCreateFromBuf(r + 3 * PAGE, PAGE + 1, RW, &h), rcFault,
		"inputs: FromBuf whose last byte is in a reserved page");
	ktap_check(resident_pages(r, 4) == 0, "inputs: ... made none resident", "%u of 4", resident_pages(r, 4));
	ktap_check(h == 0x5eed, "inputs: ... and wrote no handle", "output %#x", h);
	ktap_counters_back(&s0, "inputs: ... and took no memory");
	KnVmUnmap(r, 5 * PAGE);

	/* FromBuf running into a guard page. */
	uint8_t *g = KnVmAllocate(RTL_NULL, 2 * PAGE, LAZY | VMM_FLAG_HIGH_GUARD);
	s0 = mem_stats();
	ktap_rc(KnPmmMdlCreateFromBuf(g, 3 * PAGE, RW, &h), rcFault, "inputs: FromBuf running into a guard page");
	ktap_check(g && resident_pages(g, 2) == 0, "inputs: ... made no page resident", NULL);
	ktap_counters_back(&s0, "inputs: ... and took no memory");
	KnVmUnmap(g, 2 * PAGE);

	/* KnTaskCreate: the strings end in a lazily committed page (its zeros are their ends). */
	static const char missing[] = "no-such-program-xyz";
	uint8_t *s = lazy(2), *t = lazy(1);
	ktap_check(s && t, "inputs: lazy pages for the strings", NULL);
	if (!s || !t)
		return;
	char *at = (char *)s + PAGE - (sizeof(missing) - 1); /* no NUL in the first page */
	memcpy(at, missing, sizeof(missing) - 1);
	s0 = mem_stats();
	ktap_rc(KnTaskCreate("x", at, 0, &h), rcNotFound,
		"inputs: KnTaskCreate of a missing program whose name ends in a lazy page");
	ktap_check(!is_resident(s + PAGE), "inputs: ... did not make that page resident", NULL);
	ktap_rc(KnTaskCreate("x", (const char *)t, 0, &h), rcNotFound,
		"inputs: KnTaskCreate with the program name in a lazy page (an empty name)");
	ktap_check(!is_resident(t), "inputs: ... did not make that page resident", NULL);
	ktap_rc(KnTaskCreate((const char *)t, "nop", 0, &h), rcInvalidArgument,
		"inputs: KnTaskCreate with the task name in a lazy page (empty)");
	ktap_check(!is_resident(t), "inputs: ... did not make that page resident", NULL);
	ktap_rc(KnTaskCreate(at + 10, "no-such-program", 0, &h), rcNotFound,
		"inputs: KnTaskCreate with a task name ending in a lazy page, missing program");
	ktap_check(!is_resident(s + PAGE), "inputs: ... did not make that page resident", NULL);
	ktap_check(h == 0x5eed, "inputs: the failed creations wrote no handle", "output %#x", h);
	KnMemStats s1 = mem_stats();
	ktap_check(s1.tasks == s0.tasks, "inputs: and made no task", NULL);
	ktap_counters_back(&s0, "inputs: ... nor took memory");

	/* Outputs in lazy pages of calls that fail for another reason stay as they were. */
	uint8_t *o = lazy(1);
	s0 = mem_stats();
	ktap_rc(KnTaskCreate("x", "no-such-program", 0, (Handle *)o), rcNotFound,
		"inputs: a failed create, output in a lazy page");
	ktap_rc(KnVmQuery(KERNEL, (KnVmInfo *)o), rcInvalidArgument, "inputs: a failed query, output in a lazy page");
	ktap_rc(KnPmmMdlCreate(0, RW, (Handle *)o), rcInvalidArgument,
		"inputs: a failed MDL create, output in a lazy page");
	ktap_rc(KnVmAllocateEx(RTL_NULL, PAGE, RW, (void **)o), rcInvalidArgument,
		"inputs: a failed allocate (no RESERVE), output in a lazy page");
	ktap_check(!is_resident(o), "inputs: ... none of them made the output page resident", NULL);
	ktap_counters_back(&s0, "inputs: ... nor took memory");
	KnVmUnmap(o, PAGE);
	KnVmUnmap(s, 2 * PAGE);
	KnVmUnmap(t, PAGE);
}

static int findings_main(void)
{
	fake_kernel_lines();
	ktap_start();
	ktap_rc(sleeper_init(), rcOk, "a created task to wait on (our clock)");
	grow_handle_table(300);
	KnMemStats start = mem_stats();

	static const struct {
		void (*fn)(void);
		const char *name;
	} parts[] = { { debug_write_limits, "KnDebugWrite" }, { every_frame_charged, "charge" },
		      { orphans_crash, "orphans" },           { frozen_holders, "frozen holders" },
		      { straddling_outputs, "straddle" },     { from_vm_cache_mode, "FromVm cache mode" },
		      { write_back_named, "write-back" },     { inputs_not_faulted_in, "inputs" } };
	for (unsigned i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		uint64_t t0 = rdtsc();
		parts[i].fn();
		printf("    # %s: %llu million TSC ticks\n", parts[i].name,
		       (unsigned long long)((rdtsc() - t0) / 1000000));
	}
	settle_tasks(start.tasks, 300);
	stats_back(&start, "everything back at the end");
	sleeper_done();
	ktap_done();
}
