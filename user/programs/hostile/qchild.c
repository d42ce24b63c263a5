// SPDX-License-Identifier: MIT
/*
 * Children of the quota tests (quota.c, reserve.c): each is given limits by
 * its parent (KnTaskSetQuota, before it is resumed) and tries to pass them, as its task name
 * says. Each prints its checks as KTAP lines (indented: subtests of the parent's test, named
 * after the role) and exits with the number that failed.
 *
 *   q-commit   commit pages: a commit past the limit fails with rcOutOfMemory and changes
 *              nothing (lazy, locked, an MDL); small commits up to it succeed
 *   q-regions  regions: no region past the limit (allocate, MDL map, an unmap that splits)
 *   q-handles  handles: no handle past the limit (transfer, MDL create, task create)
 *   q-tasks    tasks: no child past the limit; a released one makes room
 *   q-locked   locked pages: no locked commit or FromVm pin past the limit
 *   q-hier     a grandchild (q-eat) with no limits of its own is held by ours; our usage
 *              includes it and is back once it has exited; we cannot set our own limits
 *   q-eat      commits 16-page chunks lazily, touching each, until refused (at most
 *              EAT_MAX); exits with the number of chunks
 *   q-exhaust  issue 13 finding 1 inside a quota: creates suspended tasks until refused,
 *              commits the rest of its commit quota lazily and touches every page; every
 *              frame its subtree took (free pages fell since the baseline its parent put in
 *              the mailbox) must be covered by its usage
 */
#include "common.h"

#define EAT_MAX 4096u

static const char *q_role = "";

static void q_check(bool ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void q_check(bool ok, const char *what, const char *fmt, ...)
{
	char name[160], why[200] = "";
	va_list ap;

	ksnprintf(name, sizeof(name), "%s: %s", q_role, what);
	if (!ok && fmt) {
		va_start(ap, fmt);
		kvsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	ktap_check(ok, name, "%s", why);
}

static void q_check_rc(Retcode got, Retcode want, const char *what)
{
	q_check(got == want, what, "returned %d, expected %d", got, want);
}

/* Our limits and usage (KnTaskGetQuota of KN_HANDLE_SELF). */
static KnQuota q_lim, q_use; /* (ours, read when we start) */

/* (After KnDebugGetStats: tasks whose last handle closed are ended by then, docs/tasks.md.) */
static KnQuota q_usage(void)
{
	KnQuota l, u = { 0 };
	mem_stats();
	KnTaskGetQuota(KN_HANDLE_SELF, &l, &u);
	return u;
}

static bool q_same_usage(const KnQuota *a, const KnQuota *b)
{
	return a->commitPages == b->commitPages && a->lockedPages == b->lockedPages && a->handles == b->handles &&
	       a->regions == b->regions && a->tasks == b->tasks;
}

static void q_unchanged(const KnQuota *before, const KnMemStats *s0, const char *what)
{
	KnQuota now = q_usage();
	KnMemStats s = mem_stats();
	q_check(q_same_usage(before, &now) && s.commitCharge == s0->commitCharge && s.freePages == s0->freePages &&
			s.tasks == s0->tasks,
		what,
		"usage commit %llu -> %llu, regions %llu -> %llu, handles %llu -> %llu, tasks %llu -> %llu; charge "
		"%llu -> %llu",
		(unsigned long long)before->commitPages, (unsigned long long)now.commitPages,
		(unsigned long long)before->regions, (unsigned long long)now.regions,
		(unsigned long long)before->handles, (unsigned long long)now.handles, (unsigned long long)before->tasks,
		(unsigned long long)now.tasks, (unsigned long long)s0->commitCharge,
		(unsigned long long)s.commitCharge);
}

/* Stack pages for the whole run, committed now: a growth refused later would kill us. */
static __attribute__((noinline)) void grow_stack(void)
{
	volatile uint8_t pad[48 * 1024];
	pad[0] = 1;
	pad[sizeof(pad) - 1] = 1;
}

static void q_commit(void)
{
	void *p = RTL_NULL;
	uint64_t room = q_lim.commitPages - q_use.commitPages;
	KnMemStats s0 = mem_stats();

	q_check(q_lim.commitPages != KN_QUOTA_UNLIMITED && q_use.commitPages < q_lim.commitPages,
		"a commit limit above our usage", "limit %llu usage %llu", (unsigned long long)q_lim.commitPages,
		(unsigned long long)q_use.commitPages);
	q_check_rc(KnVmAllocateEx(RTL_NULL, (room + 1) * PAGE, LAZY, &p), rcOutOfMemory,
		   "a lazy region past the limit");
	q_unchanged(&q_use, &s0, "... changed nothing");
	q_check_rc(KnVmAllocateEx(RTL_NULL, (room + 1) * PAGE, LAZY | VMM_FLAG_LOCKED, &p), rcOutOfMemory,
		   "a locked region past the limit");
	q_unchanged(&q_use, &s0, "... changed nothing");
	Handle m = 0x5eed;
	q_check_rc(KnPmmMdlCreate((room + 1) * PAGE, RW, &m), rcOutOfMemory, "an MDL past the limit");
	q_check(m == 0x5eed, "... gave no handle", NULL);
	q_unchanged(&q_use, &s0, "... changed nothing");

	/* A reservation, committed in steps. */
	uint8_t *r = KnVmAllocate(RTL_NULL, (room + 64) * PAGE, VMM_FLAG_RESERVE | RW);
	q_check(r != RTL_NULL, "a reservation larger than the room left", NULL);
	if (!r)
		return;
	KnQuota u0 = q_usage();
	s0 = mem_stats();
	q_check_rc(KnVmCommit(r, (room + 64) * PAGE, VMM_FLAG_COMMIT), rcOutOfMemory, "committing all of it");
	KnVmInfo info;
	q_check(KnVmQuery(r, &info) == rcOk && info.state == VMM_STATE_RESERVED, "... left it reserved", NULL);
	q_unchanged(&u0, &s0, "... changed nothing");
	q_check_rc(KnVmCommit(r, 8 * PAGE, VMM_FLAG_COMMIT), rcOk, "committing 8 pages of it");
	memset(r, 1, 8 * PAGE);
	KnQuota u1 = q_usage();
	q_check(u1.commitPages >= u0.commitPages + 8 && u1.commitPages <= q_lim.commitPages,
		"... is charged, within the limit", "usage %llu -> %llu, limit %llu",
		(unsigned long long)u0.commitPages, (unsigned long long)u1.commitPages,
		(unsigned long long)q_lim.commitPages);
	/* Page by page up to the limit: never past it. */
	uint64_t pages = 8;
	while (pages < room + 64 && KnVmCommit(r + pages * PAGE, PAGE, VMM_FLAG_COMMIT) == rcOk)
		pages++;
	KnQuota u2 = q_usage();
	q_check(pages < room + 64 && u2.commitPages <= q_lim.commitPages, "committing page by page stops at the limit",
		"%llu pages committed, usage %llu, limit %llu", (unsigned long long)pages,
		(unsigned long long)u2.commitPages, (unsigned long long)q_lim.commitPages);
	for (uint64_t i = 0; i < pages; i++)
		r[i * PAGE] = 2; /* every one of them can be touched */
	q_check(r[(pages - 1) * PAGE] == 2, "... and every committed page can be touched", NULL);
	q_check_rc(KnVmCommit(r + pages * PAGE, PAGE, VMM_FLAG_LOCKED), rcOutOfMemory,
		   "then a locked page is refused too");
	KnVmUnmap(r, (room + 64) * PAGE);
	KnQuota u3 = q_usage();
	q_check(u3.commitPages == q_use.commitPages, "unmapped: usage back", "%llu, was %llu",
		(unsigned long long)u3.commitPages, (unsigned long long)q_use.commitPages);
}

static void q_regions(void)
{
	void *r[8];
	unsigned n = 0;
	uint64_t room = q_lim.regions - q_use.regions;

	q_check(q_lim.regions != KN_QUOTA_UNLIMITED && room >= 1 && room <= 8, "a regions limit a few above our usage",
		"limit %llu usage %llu", (unsigned long long)q_lim.regions, (unsigned long long)q_use.regions);
	if (room < 1 || room > 8)
		return;
	while (n < 8 && KnVmAllocateEx(RTL_NULL, 3 * PAGE, VMM_FLAG_RESERVE | RW, &r[n]) == rcOk)
		n++;
	q_check(n == room, "regions up to the limit, not past it", "%u made, room for %llu", n,
		(unsigned long long)room);
	KnMemStats s0 = mem_stats();
	KnQuota u0 = q_usage();
	void *p = RTL_NULL;
	q_check_rc(KnVmAllocateEx(RTL_NULL, PAGE, VMM_FLAG_RESERVE | RW, &p), rcOutOfMemory,
		   "one more region is refused");
	Handle m;
	q_check_rc(KnPmmMdlCreate(PAGE, RW, &m), rcOk, "an MDL (no region)");
	s0 = mem_stats();
	u0 = q_usage();
	q_check_rc(KnPmmMdlMap(m, 0, PAGE, RTL_NULL, RW, &p), rcOutOfMemory, "mapping it would make a region: refused");
	q_unchanged(&u0, &s0, "... changed nothing");
	if (n) {
		q_check_rc(KnVmUnmap((uint8_t *)r[0] + PAGE, PAGE), rcOutOfMemory,
			   "unmapping the middle of a region would split it: refused");
		KnVmInfo info;
		q_check(KnVmQuery((uint8_t *)r[0] + PAGE, &info) == rcOk && info.state == VMM_STATE_RESERVED &&
				info.regionSize == 3 * PAGE,
			"... the region is whole", NULL);
		q_check_rc(KnVmUnmap(r[0], 3 * PAGE), rcOk, "unmapping a whole region");
		q_check_rc(KnPmmMdlMap(m, 0, PAGE, RTL_NULL, RW, &p), rcOk, "... makes room for the mapping");
		KnVmUnmap(p, PAGE);
	}
	KnHandleClose(m);
	for (unsigned i = 1; i < n; i++)
		KnVmUnmap(r[i], 3 * PAGE);
	KnQuota u = q_usage();
	q_check(u.regions == q_use.regions, "usage back", "%llu, was %llu", (unsigned long long)u.regions,
		(unsigned long long)q_use.regions);
}

static void q_handles(void)
{
	Handle h[16];
	unsigned n = 0;
	uint64_t room = q_lim.handles - q_use.handles;

	q_check(q_lim.handles != KN_QUOTA_UNLIMITED && room >= 1 && room <= 16, "a handles limit a few above our usage",
		"limit %llu usage %llu", (unsigned long long)q_lim.handles, (unsigned long long)q_use.handles);
	if (room < 1 || room > 16)
		return;
	while (n < 16 && KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &h[n]) == rcOk)
		n++;
	q_check(n == room, "handles up to the limit, not past it", "%u made, room for %llu", n,
		(unsigned long long)room);
	KnMemStats s0 = mem_stats();
	KnQuota u0 = q_usage();
	Handle x = 0x5eed;
	q_check_rc(KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &x), rcOutOfMemory,
		   "one more is refused");
	q_check_rc(KnPmmMdlCreate(PAGE, RW, &x), rcOutOfMemory, "an MDL (its handle) is refused");
	q_check_rc(KnTaskCreate("q-none", "nop", 0, &x), rcOutOfMemory, "a task (its handle) is refused");
	q_check(x == 0x5eed, "... no handle given", NULL);
	q_unchanged(&u0, &s0, "... and nothing changed (no MDL, no task, no charge)");
	if (n) {
		KnHandleClose(h[--n]);
		q_check_rc(KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &h[n]), rcOk,
			   "a close makes room");
		n++;
	}
	while (n)
		KnHandleClose(h[--n]);
	KnQuota u = q_usage();
	q_check(u.handles == q_use.handles, "usage back", "%llu, was %llu", (unsigned long long)u.handles,
		(unsigned long long)q_use.handles);
}

static void q_tasks(void)
{
	Handle h[8];
	unsigned n = 0;

	q_check(q_lim.tasks == 2 && q_use.tasks == 0, "a tasks limit of 2", "limit %llu usage %llu",
		(unsigned long long)q_lim.tasks, (unsigned long long)q_use.tasks);
	while (n < 8 && KnTaskCreate("q-child", "nop", 0, &h[n]) == rcOk)
		n++;
	q_check(n == 2, "2 children, not more", "%u made", n);
	KnQuota u0 = q_usage();
	q_check(u0.tasks == n, "they are counted", "usage %llu", (unsigned long long)u0.tasks);
	KnMemStats s0 = mem_stats();
	Handle x = 0x5eed;
	q_check_rc(KnTaskCreate("q-child", "nop", 0, &x), rcOutOfMemory, "a third is refused");
	q_unchanged(&u0, &s0, "... nothing changed");
	if (n) {
		/* One runs to its end and is released: room again. */
		KnTaskResume(h[0]);
		KnTaskWait(h[0], KN_TASK_STATE_EXITED, ~0ull);
		KnHandleClose(h[0]);
		h[0] = h[--n];
		q_check_rc(KnTaskCreate("q-child", "nop", 0, &h[n]), rcOk, "a released child makes room");
		n += 1;
	}
	while (n)
		KnHandleClose(h[--n]);
	KnQuota u = q_usage();
	q_check(u.tasks == 0 && u.commitPages == q_use.commitPages, "usage back to no tasks",
		"tasks %llu, commit %llu (was %llu)", (unsigned long long)u.tasks, (unsigned long long)u.commitPages,
		(unsigned long long)q_use.commitPages);
}

static void q_locked(void)
{
	void *p = RTL_NULL;
	Handle m = 0x5eed;
	const uint64_t base = q_use.lockedPages;

	q_check(q_lim.lockedPages == base + 8, "a locked-pages limit 8 above our usage", "limit %llu usage %llu",
		(unsigned long long)q_lim.lockedPages, (unsigned long long)base);
	KnMemStats s0 = mem_stats();
	q_check_rc(KnVmAllocateEx(RTL_NULL, 9 * PAGE, LAZY | VMM_FLAG_LOCKED, &p), rcOutOfMemory,
		   "9 locked pages are refused");
	q_unchanged(&q_use, &s0, "... nothing changed");
	uint8_t *l = RTL_NULL;
	q_check_rc(KnVmAllocateEx(RTL_NULL, 8 * PAGE, LAZY | VMM_FLAG_LOCKED, (void **)&l), rcOk, "8 are fine");
	uint8_t *z = KnVmAllocate(RTL_NULL, 2 * PAGE, LAZY);
	KnQuota u0 = q_usage();
	s0 = mem_stats();
	q_check(u0.lockedPages == base + 8, "... and counted", "usage %llu", (unsigned long long)u0.lockedPages);
	q_check_rc(KnVmCommit(z, PAGE, VMM_FLAG_LOCKED), rcOutOfMemory, "one more locked page is refused");
	q_check_rc(KnPmmMdlCreateFromVm(z, PAGE, RW, &m), rcOutOfMemory, "so is pinning one with FromVm");
	q_check(m == 0x5eed, "... no handle given", NULL);
	q_unchanged(&u0, &s0, "... nothing changed");
	KnVmInfo info;
	q_check(z && KnVmQuery(z, &info) == rcOk && !info.resident, "... not even the page made resident", NULL);
	q_check_rc(KnVmDecommit(l, 4 * PAGE), rcOk, "decommitting 4 locked pages");
	q_check_rc(KnPmmMdlCreateFromVm(z, PAGE, RW, &m), rcOk, "... makes room for a pin");
	KnQuota u1 = q_usage();
	q_check(u1.lockedPages == base + 5, "4 locked and 1 pinned", "usage %llu (from %llu)",
		(unsigned long long)u1.lockedPages, (unsigned long long)base);
	KnHandleClose(m);
	KnVmUnmap(l, 8 * PAGE);
	KnVmUnmap(z, 2 * PAGE);
	KnQuota u = q_usage();
	q_check(u.lockedPages == base, "usage back", "%llu (from %llu)", (unsigned long long)u.lockedPages,
		(unsigned long long)base);
}

static void q_hier(void)
{
	Handle g;
	KnQuota gl, gu, u1;
	int code = -1;

	q_check(q_lim.commitPages != KN_QUOTA_UNLIMITED, "a commit limit", NULL);
	KnQuota mine = q_lim;
	mine.commitPages = KN_QUOTA_UNLIMITED;
	q_check_rc(KnTaskSetQuota(KN_HANDLE_SELF, &mine), rcAccessDenied, "we cannot raise our own limits");
	mine.commitPages = q_lim.commitPages / 2;
	q_check_rc(KnTaskSetQuota(KN_HANDLE_SELF, &mine), rcAccessDenied, "... nor lower them");
	KnQuota l2, u2;
	q_check(KnTaskGetQuota(KN_HANDLE_SELF, &l2, &u2) == rcOk && l2.commitPages == q_lim.commitPages,
		"... they are as set", NULL);
	q_check_rc(KnTaskCreate("q-eat", PROGRAM, 0, &g), rcOk, "a grandchild");
	q_check_rc(KnTaskGetQuota(g, &gl, &gu), rcOk, "its limits and usage");
	q_check(gl.commitPages == KN_QUOTA_UNLIMITED && gu.commitPages > 0, "... unlimited, using something", NULL);
	u1 = q_usage();
	q_check(u1.tasks == q_use.tasks + 1 && u1.commitPages >= q_use.commitPages + gu.commitPages,
		"our usage includes it (a task, and its commit)",
		"tasks %llu -> %llu, commit %llu -> %llu (it uses %llu)", (unsigned long long)q_use.tasks,
		(unsigned long long)u1.tasks, (unsigned long long)q_use.commitPages, (unsigned long long)u1.commitPages,
		(unsigned long long)gu.commitPages);
	/* Its own limit far above ours: ours still bounds it. */
	gl.commitPages = q_lim.commitPages * 4;
	q_check_rc(KnTaskSetQuota(g, &gl), rcOk, "we may set its limits (a creator has QUOTA)");
	KnTaskResume(g);
	KnTaskWait(g, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(g, &code);
	uint64_t room = q_lim.commitPages - u1.commitPages;
	q_check(code >= 1 && code < (int)EAT_MAX && (uint64_t)code * 16 <= room,
		"it committed up to our limit, not past it (nor up to its own)",
		"%d chunks of 16 pages, room was %llu pages", code, (unsigned long long)room);
	KnHandleClose(g);
	KnQuota u = q_usage();
	q_check(u.tasks == q_use.tasks && u.commitPages == q_use.commitPages, "it has exited: our usage is back",
		"tasks %llu, commit %llu (was %llu)", (unsigned long long)u.tasks, (unsigned long long)u.commitPages,
		(unsigned long long)q_use.commitPages);
}

static int q_eat(void)
{
	unsigned chunks = 0;
	uint8_t *p;
	while (chunks < EAT_MAX && (p = KnVmAllocate(RTL_NULL, 16 * PAGE, LAZY)) != RTL_NULL) {
		for (unsigned i = 0; i < 16; i++)
			p[i * PAGE] = (uint8_t)i;
		chunks++;
	}
	return (int)chunks;
}

static void q_exhaust(void)
{
	static Handle h[HOLD_MAX];
	unsigned n = 0;
	Retcode rc = rcOk;
	void *box = RTL_NULL;
	Handle mb = find_handle(KN_HANDLE_TYPE_MDL, KN_RIGHT_MAP_READ);

	q_check(mb && KnPmmMdlMap(mb, 0, PAGE, RTL_NULL, VMM_FLAG_READ, &box) == rcOk, "the baseline from our parent",
		NULL);
	q_check(q_lim.commitPages != KN_QUOTA_UNLIMITED, "a commit limit", NULL);
	if (!box || q_lim.commitPages == KN_QUOTA_UNLIMITED)
		return;
	uint64_t base_free = ((volatile uint64_t *)box)[0];
	q_use = q_usage();
	while (n < HOLD_MAX && (rc = KnTaskCreate("q-held", "nop", 0, &h[n])) == rcOk)
		n++;
	q_check_rc(rc, rcOutOfMemory, "suspended tasks until refused: rcOutOfMemory");
	KnQuota u1 = q_usage();
	q_check(u1.tasks == n && u1.commitPages <= q_lim.commitPages, "... they are counted, within the limit",
		"%u tasks, usage %llu tasks, %llu pages (limit %llu)", n, (unsigned long long)u1.tasks,
		(unsigned long long)u1.commitPages, (unsigned long long)q_lim.commitPages);
	/* The rest of the commit quota, lazily, in as few regions as it takes. */
	uint8_t *r[32];
	uint64_t sz[32], total = 0;
	unsigned nr = 0;
	for (uint64_t want = q_lim.commitPages - u1.commitPages; nr < 32 && want > 0;) {
		void *p = RTL_NULL;
		if (KnVmAllocateEx(RTL_NULL, want * PAGE, LAZY, &p) == rcOk) {
			r[nr] = p;
			sz[nr++] = want;
			total += want;
			KnQuota u = q_usage();
			want = q_lim.commitPages > u.commitPages ? q_lim.commitPages - u.commitPages : 0;
		} else {
			want = want > 64 ? want - want / 8 : want - 1;
		}
	}
	for (unsigned i = 0; i < nr; i++)
		for (uint64_t k = 0; k < sz[i]; k++)
			r[i][k * PAGE] = (uint8_t)(k + 1);
	bool same = true;
	for (unsigned i = 0; i < nr; i++)
		for (uint64_t k = 0; k < sz[i]; k++)
			same &= r[i][k * PAGE] == (uint8_t)(k + 1);
	q_check(same, "the rest of the quota committed lazily, every page touched and read back", "%llu pages",
		(unsigned long long)total);
	KnMemStats s = mem_stats();
	KnQuota u2 = q_usage();
	long long took = (long long)(base_free - s.freePages);
	q_check(took <= (long long)u2.commitPages && u2.commitPages <= q_lim.commitPages,
		"every frame our subtree took is charged to it, within the limit",
		"free pages fell by %lld since before we were made, our usage is %llu pages (limit %llu), %u tasks, "
		"%llu pages committed",
		took, (unsigned long long)u2.commitPages, (unsigned long long)q_lim.commitPages, n,
		(unsigned long long)total);
	printf("    # q-exhaust: %u tasks, %llu pages committed and touched; %lld frames taken, %llu pages charged, "
	       "limit %llu\n",
	       n, (unsigned long long)total, took, (unsigned long long)u2.commitPages,
	       (unsigned long long)q_lim.commitPages);
	for (unsigned i = 0; i < nr; i++)
		KnVmUnmap(r[i], sz[i] * PAGE);
	while (n)
		KnHandleClose(h[--n]);
	KnVmUnmap(box, PAGE);
}

/* -1: not one of these roles. */
static int qchild_main(const char *role)
{
	if (strncmp(role, "q-", 2))
		return -1;
	q_role = role;
	if (!strcmp(role, "q-eat"))
		return q_eat();
	grow_stack();
	grow_handle_table(strcmp(role, "q-exhaust") ? 64 : HOLD_MAX);
	Retcode rc = KnTaskGetQuota(KN_HANDLE_SELF, &q_lim, &q_use);
	q_check_rc(rc, rcOk, "our limits and usage");
	if (rc != rcOk)
		return (int)ktap_failures();
	if (!strcmp(role, "q-commit"))
		q_commit();
	else if (!strcmp(role, "q-regions"))
		q_regions();
	else if (!strcmp(role, "q-handles"))
		q_handles();
	else if (!strcmp(role, "q-tasks"))
		q_tasks();
	else if (!strcmp(role, "q-locked"))
		q_locked();
	else if (!strcmp(role, "q-hier"))
		q_hier();
	else if (!strcmp(role, "q-exhaust"))
		q_exhaust();
	else
		return -1;
	return (int)ktap_failures();
}
