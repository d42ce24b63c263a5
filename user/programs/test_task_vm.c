// SPDX-License-Identifier: MIT
/*
 * KnTaskVmAllocate, KnTaskVmCommit, KnTaskVmDecommit, KnTaskVmProtect and KnTaskVmUnmap
 * (SPEC §14, KN_RIGHT_VM_OPERATION): a parent prepares a created child's memory, each
 * effect seen with KnTaskVmQuery and by the child itself once started (tvmchild); the same
 * on a running and on a frozen task, and on oneself through KN_HANDLE_SELF; what a child
 * commits is charged to it and to its parent, and its quota refuses more; every refusal
 * with its code, changing nothing in the target or in the counters; a task being
 * terminated or gone is rcWrongState; every frame and page of charge back at the end.
 */
#include <knlib.h>

#define PAGE   4096ull
#define AT     0x60000000ull /* tvmchild's region (user/programs/tvmchild.c) */
#define GROW   (AT + 16 * PAGE)
#define RW     (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES    VMM_FLAG_RESERVE
#define COM    VMM_FLAG_COMMIT
#define KERNEL ((void *)0xffffffff80000000ull)

static void *va(uint64_t a) { return (void *)(uintptr_t)a; }

/* What KnTaskVmQuery says of the page at a (state -1 if it refused). */
static KnVmInfo query(Handle t, uint64_t a)
{
	KnVmInfo i = { .state = -1 };
	if (KnTaskVmQuery(t, va(a), &i) != rcOk)
		i.state = -1;
	return i;
}

static bool page_is(Handle t, uint64_t a, int state, int prot)
{
	KnVmInfo i = query(t, a);
	return i.state == state && (i.flags & VMM_FLAG_RWX_MASK) == prot;
}

static KnQuota usage_of(Handle t)
{
	KnQuota lim, use = { 0 };
	KnTaskGetQuota(t, &lim, &use);
	return use;
}

/* What a refused call must leave as it was: the target's usage (commit, locked pages,
 * regions), the kernel's free pages and charge, and what KnTaskVmQuery says around AT. */
struct snap {
	KnQuota use;
	uint64_t free, charge;
	uint64_t h;
};

static struct snap snap(Handle t)
{
	struct snap s = { .use = usage_of(t) };
	KnMemStats m = mem_stats();
	s.free = m.freePages;
	s.charge = m.commitCharge;
	s.h = 1469598103934665603ull;
	for (uint64_t a = AT - PAGE; a < AT + 24 * PAGE; a += PAGE) {
		KnVmInfo i = query(t, a);
		uint64_t v[] = { (uint64_t)i.state,    (uint64_t)(uintptr_t)i.regionBase,
				 i.regionSize,         (uint64_t)i.flags,
				 (uint64_t)i.resident, i.runSize };
		for (unsigned k = 0; k < 6; k++)
			s.h = (s.h ^ v[k]) * 1099511628211ull;
	}
	return s;
}

static bool same(const struct snap *a, const struct snap *b)
{
	return a->use.commitPages == b->use.commitPages && a->use.lockedPages == b->use.lockedPages &&
	       a->use.regions == b->use.regions && a->free == b->free && a->charge == b->charge && a->h == b->h;
}

/* A refusal: its code, and nothing changed. */
static void refused(Handle t, Retcode got, Retcode want, const char *name, const struct snap *before)
{
	struct snap now = snap(t);
	ktap_check(got == want && same(before, &now), name, "returned %d (expected %d), %s", got, want,
		   same(before, &now) ? "nothing changed" : "something changed");
}

/* A created child prepared by its parent, then started: it sees what was made. */
static void prepare_child(void)
{
	Handle c;
	void *out = RTL_NULL;
	Retcode rc;

	ktap_rc(KnTaskCreate("tvm-check", "tvmchild", 0, &c), rcOk, "a child, created, not started");
	KnQuota u0 = usage_of(c), p0 = usage_of(KN_HANDLE_SELF);
	rc = KnTaskVmAllocate(c, va(AT), 8 * PAGE, RES | RW, &out);
	ktap_check(rc == rcOk && out == va(AT), "allocate: a reserved region in the child", "rc %d out %p", rc, out);
	KnVmInfo i = query(c, AT);
	ktap_check(i.state == VMM_STATE_RESERVED && i.regionBase == va(AT) && i.regionSize == 8 * PAGE &&
			   (i.flags & VMM_FLAG_RWX_MASK) == RW,
		   "allocate: KnTaskVmQuery sees it", "state %d base %p size %#llx flags %#x", i.state, i.regionBase,
		   (unsigned long long)i.regionSize, i.flags);
	KnVmInfo mine;
	KnVmQuery(va(AT), &mine);
	ktap_check(mine.state == VMM_STATE_FREE, "allocate: nothing in the caller's own space", "state %d", mine.state);
	ktap_check(usage_of(c).regions == u0.regions + 1, "allocate: the child's region count", "%llu -> %llu",
		   (unsigned long long)u0.regions, (unsigned long long)usage_of(c).regions);

	/* Commit 4 pages lazily: 4 pages and a window's tables (3) charged to the child, and
	 * to us, its parent (a usage includes the descendants'). */
	uint64_t cu = usage_of(c).commitPages, pu = usage_of(KN_HANDLE_SELF).commitPages;
	ktap_rc(KnTaskVmCommit(c, va(AT), 4 * PAGE, 0), rcOk, "commit: 4 pages, lazily");
	i = query(c, AT);
	ktap_check(i.state == VMM_STATE_COMMITTED && !i.resident && i.runSize == 4 * PAGE,
		   "commit: committed, not resident", "state %d resident %d run %#llx", i.state, i.resident,
		   (unsigned long long)i.runSize);
	uint64_t cu2 = usage_of(c).commitPages, pu2 = usage_of(KN_HANDLE_SELF).commitPages;
	ktap_check(cu2 - cu >= 4 + 3 && cu2 - cu <= 4 + 3 + 1 && pu2 - pu == cu2 - cu,
		   "commit: charged to the child's account, and so to its parent's", "child +%llu, parent +%llu",
		   (unsigned long long)(cu2 - cu), (unsigned long long)(pu2 - pu));
	ktap_rc(KnTaskVmCommit(c, va(AT + 2 * PAGE), PAGE, VMM_FLAG_LOCKED), rcOk, "commit: one page LOCKED");
	i = query(c, AT + 2 * PAGE);
	ktap_check(i.state == VMM_STATE_COMMITTED && i.resident && (i.flags & VMM_FLAG_LOCKED) &&
			   usage_of(c).lockedPages == u0.lockedPages + 1,
		   "commit: LOCKED: resident, locked, counted in the child's locked pages", "resident %d flags %#x",
		   i.resident, i.flags);
	ktap_check(usage_of(KN_HANDLE_SELF).lockedPages == p0.lockedPages + 1, "commit: ... and in its parent's",
		   "%llu", (unsigned long long)usage_of(KN_HANDLE_SELF).lockedPages);
	ktap_rc(KnTaskVmProtect(c, va(AT + 4 * PAGE), 4 * PAGE, VMM_FLAG_READ), rcOk,
		"protect: reserved pages read-only");
	ktap_check(page_is(c, AT + 4 * PAGE, VMM_STATE_RESERVED, VMM_FLAG_READ) &&
			   page_is(c, AT + 7 * PAGE, VMM_STATE_RESERVED, VMM_FLAG_READ) &&
			   page_is(c, AT + 3 * PAGE, VMM_STATE_COMMITTED, RW),
		   "protect: KnTaskVmQuery sees the protection, the neighbours kept theirs", "%s", "no");
	ktap_rc(KnTaskVmDecommit(c, va(AT + 3 * PAGE), PAGE), rcOk, "decommit: page 3");
	ktap_check(page_is(c, AT + 3 * PAGE, VMM_STATE_RESERVED, RW) && usage_of(c).commitPages == cu2 - 1,
		   "decommit: reserved again, its page of charge back", "usage %llu",
		   (unsigned long long)usage_of(c).commitPages);
	/* A grow-down region with its guard, as the own-space call makes it. */
	rc = KnTaskVmAllocate(c, va(GROW + PAGE), 4 * PAGE, RES | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD, &out);
	ktap_check(rc == rcOk && out == va(GROW + PAGE) && page_is(c, GROW, VMM_STATE_GUARD, 0) &&
			   page_is(c, GROW + 4 * PAGE, VMM_STATE_COMMITTED, RW) &&
			   page_is(c, GROW + 3 * PAGE, VMM_STATE_RESERVED, RW),
		   "allocate: grow-down with a low guard: top page committed, guard below", "rc %d out %p", rc, out);
	ktap_rc(KnTaskVmCommit(c, va(GROW), 2 * PAGE, 0), rcInvalidArgument, "commit: a guard page in the range");
	/* A region made and unmapped. */
	rc = KnTaskVmAllocate(c, va(AT + 32 * PAGE), 2 * PAGE, RES | COM | RW, &out);
	ktap_check(rc == rcOk && page_is(c, AT + 32 * PAGE, VMM_STATE_COMMITTED, RW), "allocate: committed", "rc %d",
		   rc);
	ktap_rc(KnTaskVmUnmap(c, va(AT + 32 * PAGE), 2 * PAGE), rcOk, "unmap: the whole region");
	ktap_check(query(c, AT + 32 * PAGE).state == VMM_STATE_FREE, "unmap: free again", "state %d",
		   query(c, AT + 32 * PAGE).state);
	ktap_rc(KnTaskVmUnmap(c, va(AT + 32 * PAGE), 2 * PAGE), rcNotFound, "unmap: free space");
	/* The child sees it all from the inside. */
	int code = -1;
	KnTaskResume(c);
	KnTaskWait(c, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(c, &code);
	ktap_check(code == 0, "the child, started, finds what its parent made (and uses it: writes, grows)",
		   "exit code %d", code);
	KnHandleClose(c);
}

/* A page committed, then made read-only by the parent: the child's write faults. */
static void protect_seen(void)
{
	Handle c;
	void *out;
	int code = 0;

	KnTaskCreate("tvm-ro", "tvmchild", 0, &c);
	Retcode a = KnTaskVmAllocate(c, va(AT), PAGE, RES | COM | RW, &out);
	Retcode p = KnTaskVmProtect(c, va(AT), PAGE, VMM_FLAG_READ);
	KnTaskResume(c);
	KnTaskWait(c, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(c, &code);
	ktap_check(a == rcOk && p == rcOk && code == KN_EXIT_EXCEPTION,
		   "protect: a child writing to a page its parent made read-only faults", "rc %d %d, exit code %d", a,
		   p, code);
	KnHandleClose(c);
}

/* Every refusal, on a created child, changing nothing. */
static void refusals(void)
{
	Handle c, weak, oponly, mdl, closed;
	void *out = va(0x1234);
	struct snap s;

	KnTaskCreate("tvm-target", "spin", 0, &c);
	KnTaskVmAllocate(c, va(AT), 4 * PAGE, RES | RW, &out);
	KnTaskVmCommit(c, va(AT), PAGE, 0);
	KnHandleTransfer(KN_HANDLE_SELF, c, KN_RIGHT_VM_READ | KN_RIGHT_TERMINATE | KN_RIGHT_VM_WRITE, &weak);
	KnHandleTransfer(KN_HANDLE_SELF, c, KN_RIGHT_VM_OPERATION, &oponly);
	KnPmmMdlCreate(PAGE, 0, &mdl);
	KnTaskCreate("tvm-closed", "nop", 0, &closed);
	KnTaskTerminate(closed);
	KnHandleClose(closed);
	s = snap(c);

	/* Handles. */
	refused(c, KnTaskVmAllocate(0x12345, va(AT + 8 * PAGE), PAGE, RES | COM | RW, &out), rcBadHandle,
		"allocate: a made-up handle", &s);
	refused(c, KnTaskVmCommit(closed, va(AT), PAGE, 0), rcBadHandle, "commit: a closed handle", &s);
	refused(c, KnTaskVmDecommit(mdl, va(AT), PAGE), rcBadHandle, "decommit: an MDL handle", &s);
	refused(c, KnTaskVmProtect(mdl, va(AT), PAGE, VMM_FLAG_READ), rcBadHandle, "protect: an MDL handle", &s);
	refused(c, KnTaskVmUnmap(0, va(AT), 4 * PAGE), rcBadHandle, "unmap: handle 0", &s);
	/* No VM_OPERATION (VM_READ and VM_WRITE are not it). */
	refused(c, KnTaskVmAllocate(weak, va(AT + 8 * PAGE), PAGE, RES | COM | RW, &out), rcAccessDenied,
		"allocate: no VM_OPERATION", &s);
	refused(c, KnTaskVmCommit(weak, va(AT + PAGE), PAGE, 0), rcAccessDenied, "commit: no VM_OPERATION", &s);
	refused(c, KnTaskVmDecommit(weak, va(AT), PAGE), rcAccessDenied, "decommit: no VM_OPERATION", &s);
	refused(c, KnTaskVmProtect(weak, va(AT), PAGE, VMM_FLAG_READ), rcAccessDenied, "protect: no VM_OPERATION", &s);
	refused(c, KnTaskVmUnmap(weak, va(AT), 4 * PAGE), rcAccessDenied, "unmap: no VM_OPERATION", &s);
	Handle h;
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, weak, KN_RIGHT_VM_OPERATION, &h), rcAccessDenied,
		"VM_OPERATION cannot be added to a handle without it");
	/* KnTaskVmAllocate's output, in the caller's space, first: nothing made in the child. */
	refused(c, KnTaskVmAllocate(c, va(AT + 8 * PAGE), PAGE, RES | COM | RW, KERNEL), rcFault,
		"allocate: output in the kernel half: nothing made", &s);
	refused(c, KnTaskVmAllocate(c, va(AT + 8 * PAGE), PAGE, RES | COM | RW, RTL_NULL), rcFault,
		"allocate: output NULL", &s);
	refused(c, KnTaskVmAllocate(c, RTL_NULL, PAGE, RES | COM | RW | VMM_FLAG_LOCKED, (void **)0x400000), rcFault,
		"allocate: output in our (read-only) code", &s);
	refused(c, KnTaskVmAllocate(0x12345, va(AT + 8 * PAGE), PAGE, RES | COM | RW, KERNEL), rcFault,
		"allocate: a bad output is found before a bad handle", &s);
	refused(c, KnTaskVmAllocate(weak, va(AT + 8 * PAGE), PAGE, RES | COM | RW, KERNEL), rcFault,
		"allocate: ... and before a missing right", &s);
	/* The KnVm* codes. */
	refused(c, KnTaskVmAllocate(c, va(AT), PAGE, RES | RW, &out), rcAlreadyExists, "allocate: over a region", &s);
	refused(c, KnTaskVmAllocate(c, va(AT + 8 * PAGE), PAGE, COM | RW, &out), rcInvalidArgument,
		"allocate: no RESERVE", &s);
	refused(c, KnTaskVmAllocate(c, KERNEL, PAGE, RES | RW, &out), rcInvalidArgument, "allocate: the kernel half",
		&s);
	refused(c, KnTaskVmAllocate(c, RTL_NULL, 1ull << 46, RES | COM | RW, &out), rcOutOfMemory,
		"allocate: a commit past the limit", &s);
	refused(c, KnTaskVmCommit(c, va(AT), 0, 0), rcInvalidArgument, "commit: size 0", &s);
	refused(c, KnTaskVmCommit(c, va(AT + 1), PAGE, 0), rcInvalidArgument, "commit: unaligned", &s);
	refused(c, KnTaskVmCommit(c, va(AT), PAGE, VMM_FLAG_READ), rcInvalidArgument, "commit: other flag bits", &s);
	refused(c, KnTaskVmCommit(c, va(AT + 2 * PAGE), 4 * PAGE, 0), rcInvalidArgument,
		"commit: a range leaving its region", &s);
	refused(c, KnTaskVmCommit(c, va(AT + 64 * PAGE), PAGE, 0), rcNotFound, "commit: free space", &s);
	refused(c, KnTaskVmDecommit(c, KERNEL, PAGE), rcInvalidArgument, "decommit: the kernel half", &s);
	refused(c, KnTaskVmDecommit(c, va(AT + 64 * PAGE), PAGE), rcNotFound, "decommit: free space", &s);
	refused(c, KnTaskVmProtect(c, va(AT), PAGE, VMM_FLAG_WRITE), rcInvalidArgument, "protect: not a protection",
		&s);
	refused(c, KnTaskVmProtect(c, va(0x400000), PAGE, VMM_FLAG_RWX_MASK), rcAccessDenied,
		"protect: a program segment beyond its protection", &s);
	refused(c, KnTaskVmUnmap(c, va(AT), 8 * PAGE), rcInvalidArgument, "unmap: a range leaving its region", &s);
	refused(c, KnTaskVmUnmap(c, va(AT + 64 * PAGE), PAGE), rcNotFound, "unmap: free space", &s);

	/* VM_OPERATION alone is enough. */
	ktap_rc(KnTaskVmCommit(oponly, va(AT + PAGE), PAGE, 0), rcOk, "a handle with VM_OPERATION only: commit");
	ktap_rc(KnTaskVmUnmap(oponly, va(AT), 4 * PAGE), rcOk, "... and unmap");
	/* Gone: rcWrongState, nothing made (the output still checked first). */
	KnTaskTerminate(c);
	s = snap(c);
	refused(c, KnTaskVmAllocate(c, va(AT), PAGE, RES | COM | RW, &out), rcWrongState, "allocate: an exited task",
		&s);
	refused(c, KnTaskVmCommit(c, va(AT), PAGE, 0), rcWrongState, "commit: an exited task", &s);
	refused(c, KnTaskVmDecommit(c, va(AT), PAGE), rcWrongState, "decommit: an exited task", &s);
	refused(c, KnTaskVmProtect(c, va(AT), PAGE, VMM_FLAG_READ), rcWrongState, "protect: an exited task", &s);
	refused(c, KnTaskVmUnmap(c, va(AT), PAGE), rcWrongState, "unmap: an exited task", &s);
	refused(c, KnTaskVmAllocate(c, va(AT), PAGE, RES | COM | RW, KERNEL), rcFault,
		"allocate: an exited task, a bad output: rcFault first", &s);
	KnHandleClose(weak);
	KnHandleClose(oponly);
	KnHandleClose(mdl);
	KnHandleClose(c);
}

/* A running task (its thread races with the calls: the space lock serializes them), then
 * frozen. */
static void running_and_frozen(void)
{
	Handle c;
	void *out = RTL_NULL;
	unsigned ok = 0;
	int state = 0;

	KnTaskCreate("tvm-spin", "spin", 0, &c);
	KnTaskResume(c);
	for (unsigned n = 0; n < 64; n++) {
		uint64_t a = AT + n * 4 * PAGE;
		ok += KnTaskVmAllocate(c, va(a), 2 * PAGE, RES | RW, &out) == rcOk &&
		      KnTaskVmCommit(c, va(a), 2 * PAGE, n % 2 ? VMM_FLAG_LOCKED : 0) == rcOk &&
		      KnTaskVmProtect(c, va(a), PAGE, VMM_FLAG_READ) == rcOk &&
		      KnTaskVmDecommit(c, va(a + PAGE), PAGE) == rcOk &&
		      page_is(c, a, VMM_STATE_COMMITTED, VMM_FLAG_READ) &&
		      page_is(c, a + PAGE, VMM_STATE_RESERVED, RW) &&
		      (n % 4 != 3 || KnTaskVmUnmap(c, va(a), 2 * PAGE) == rcOk);
	}
	KnTaskGetState(c, &state);
	ktap_check(ok == 64 && state == KN_TASK_STATE_RUNNING, "a running task: 64 rounds of every call",
		   "%u of 64, state %d", ok, state);
	KnTaskFreeze(c);
	Retcode w = KnTaskWait(c, KN_TASK_STATE_FROZEN, 10000000000ull);
	Retcode a = KnTaskVmAllocate(c, va(AT + 512 * PAGE), PAGE, RES | COM | RW | VMM_FLAG_LOCKED, &out);
	Retcode u = KnTaskVmUnmap(c, va(AT), 2 * PAGE);
	ktap_check(w == rcOk && a == rcOk && u == rcOk && query(c, AT + 512 * PAGE).resident &&
			   query(c, AT).state == VMM_STATE_FREE,
		   "a frozen task: allocate (LOCKED), unmap", "wait %d, rc %d %d", w, a, u);
	KnTaskTerminate(c);
	KnHandleClose(c);
}

/* KN_HANDLE_SELF carries VM_OPERATION: the calls on one's own space. */
static void on_self(void)
{
	void *out = RTL_NULL;
	KnVmInfo i;

	Retcode rc = KnTaskVmAllocate(KN_HANDLE_SELF, RTL_NULL, 2 * PAGE, RES | RW, &out);
	ktap_check(rc == rcOk && KnVmQuery(out, &i) == rcOk && i.state == VMM_STATE_RESERVED,
		   "self: KnTaskVmAllocate(KN_HANDLE_SELF) makes a region KnVmQuery sees", "rc %d", rc);
	ktap_rc(KnTaskVmCommit(KN_HANDLE_SELF, out, PAGE, 0), rcOk, "self: commit");
	((volatile char *)out)[0] = 1;
	ktap_rc(KnTaskVmProtect(KN_HANDLE_SELF, out, PAGE, VMM_FLAG_READ), rcOk, "self: protect");
	ktap_check(KnVmQuery(out, &i) == rcOk && (i.flags & VMM_FLAG_RWX_MASK) == VMM_FLAG_READ &&
			   ((volatile char *)out)[0] == 1,
		   "self: read-only now, its byte kept", "flags %#x", i.flags);
	ktap_rc(KnTaskVmDecommit(KN_HANDLE_SELF, out, PAGE), rcOk, "self: decommit");
	ktap_rc(KnTaskVmUnmap(KN_HANDLE_SELF, out, 2 * PAGE), rcOk, "self: unmap");
	ktap_check(KnVmQuery(out, &i) == rcOk && i.state == VMM_STATE_FREE, "self: gone", "state %d", i.state);
}

/* A child with a small commit quota: its parent's commit in it is refused past it. */
static void quota(void)
{
	Handle c;
	void *out = RTL_NULL;

	KnTaskCreate("tvm-quota", "spin", 0, &c);
	KnTaskVmAllocate(c, va(AT), 16 * PAGE, RES | RW, &out);
	KnQuota lim = { KN_QUOTA_UNLIMITED, KN_QUOTA_UNLIMITED, KN_QUOTA_UNLIMITED, KN_QUOTA_UNLIMITED,
			KN_QUOTA_UNLIMITED };
	lim.commitPages = usage_of(c).commitPages + 8; /* a page, its window's tables, bookkeeping */
	KnTaskSetQuota(c, &lim);
	struct snap s = snap(c);
	refused(c, KnTaskVmCommit(c, va(AT), 16 * PAGE, 0), rcOutOfMemory,
		"quota: the parent's commit past the child's quota", &s);
	refused(c, KnTaskVmAllocate(c, va(AT + 32 * PAGE), 16 * PAGE, RES | COM | RW, &out), rcOutOfMemory,
		"quota: ... and an allocation that commits", &s);
	ktap_rc(KnTaskVmCommit(c, va(AT), PAGE, 0), rcOk, "quota: a commit that fits");
	KnTaskTerminate(c);
	KnHandleClose(c);
}

int main(void)
{
	ktap_start();
	KnMemStats s0 = mem_stats(), s;
	s = mem_stats();
	prepare_child();
	ktap_counters_back(&s, "prepare: every frame and page of charge back");
	s = mem_stats();
	protect_seen();
	ktap_counters_back(&s, "protect: every frame and page of charge back");
	s = mem_stats();
	refusals();
	ktap_counters_back(&s, "refusals: every frame and page of charge back");
	s = mem_stats();
	running_and_frozen();
	ktap_counters_back(&s, "running: every frame and page of charge back");
	s = mem_stats();
	on_self();
	ktap_counters_back(&s, "self: every frame and page of charge back");
	s = mem_stats();
	quota();
	ktap_counters_back(&s, "quota: every frame and page of charge back");
	ktap_counters_back(&s0, "every frame and page of charge back");
	ktap_done();
}
