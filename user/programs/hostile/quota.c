// SPDX-License-Identifier: MIT
/*
 * Issue 13 / SPEC §14: per-task quotas (KnTaskSetQuota, KnTaskGetQuota, right QUOTA): the
 * task "hostile-quota" (user.hostile_quota). First the SPEC §9 cases of both calls (handles: made-up, closed,
 * wrong type, KN_HANDLE_SELF, missing right; pointers: kernel half, unmapped, NULL,
 * read-only, running into a guard page; an exited task), then the behaviour: children of
 * qchild.c, each given one limit before it runs, try to pass it (see that file).
 */
#include "common.h"

static const uint64_t ro_quota[5] = { 1, 2, 3, 4, 5 };

static const KnQuota q_unlimited = { KN_QUOTA_UNLIMITED, KN_QUOTA_UNLIMITED, KN_QUOTA_UNLIMITED, KN_QUOTA_UNLIMITED,
				     KN_QUOTA_UNLIMITED };

static bool quota_equal(const KnQuota *a, const KnQuota *b) { return !memcmp(a, b, sizeof(*a)); }

static bool all_bytes(const void *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (((const uint8_t *)p)[i] != v)
			return false;
	return true;
}

static Handle find_task_handle(Handle h, rtl_uint32_t *rights)
{
	for (rtl_size_t i = 0;; i++) {
		Handle x;
		int t;
		if (KnHandleEnumerate(i, &x, &t, rights) != rcOk)
			return 0;
		if (x == h)
			return x;
	}
}

static void api_cases(void)
{
	Handle c, e, closed, weak, mdl;
	KnQuota lim, use, set;
	rtl_uint32_t rights = 0;
	KnMemStats s0 = mem_stats();

	ktap_rc(KnTaskCreate("q-api", "nop", 0, &c), rcOk, "api: a child (not started)");
	bool found = find_task_handle(c, &rights) != 0;
	ktap_check(found && (rights & KN_RIGHT_QUOTA), "api: its creator holds QUOTA on it", "rights %#x", rights);
	ktap_rc(KnTaskGetQuota(c, &lim, &use), rcOk, "api: get its limits and usage");
	ktap_check(quota_equal(&lim, &q_unlimited), "api: no limits by default", NULL);
	ktap_check(use.commitPages > 0 && use.regions >= 2 && use.tasks == 0 && use.lockedPages == 0,
		   "api: it uses commit and regions already (image, stack), no tasks, nothing locked",
		   "commit %llu regions %llu tasks %llu locked %llu", (unsigned long long)use.commitPages,
		   (unsigned long long)use.regions, (unsigned long long)use.tasks, (unsigned long long)use.lockedPages);
	set = (KnQuota){ use.commitPages + 100, 10, 20, 30, 2 };
	ktap_rc(KnTaskSetQuota(c, &set), rcOk, "api: set its limits");
	ktap_check(KnTaskGetQuota(c, &lim, &use) == rcOk && quota_equal(&lim, &set), "api: ... read back as set", NULL);
	KnQuota below = set;
	below.commitPages = 1;
	ktap_rc(KnTaskSetQuota(c, &below), rcOk, "api: a limit below its usage is allowed");
	ktap_check(KnTaskGetQuota(c, &lim, &use) == rcOk && lim.commitPages == 1 && use.commitPages > 1,
		   "api: ... nothing taken away", NULL);
	ktap_rc(KnTaskSetQuota(c, &set), rcOk, "api: set back");

	/* Handles. */
	ktap_rc(KnTaskSetQuota(0, &set), rcBadHandle, "api: set, handle 0");
	ktap_rc(KnTaskSetQuota(0x12345, &set), rcBadHandle, "api: set, a made-up handle");
	ktap_rc(KnTaskGetQuota(0x12345, &lim, &use), rcBadHandle, "api: get, a made-up handle");
	KnTaskCreate("q-closed", "nop", 0, &closed);
	KnHandleClose(closed);
	ktap_rc(KnTaskSetQuota(closed, &set), rcBadHandle, "api: set, a closed handle");
	ktap_rc(KnTaskGetQuota(closed, &lim, &use), rcBadHandle, "api: get, a closed handle");
	KnPmmMdlCreate(PAGE, RW, &mdl);
	ktap_rc(KnTaskSetQuota(mdl, &set), rcBadHandle, "api: set, an MDL handle");
	ktap_rc(KnTaskGetQuota(mdl, &lim, &use), rcBadHandle, "api: get, an MDL handle");
	KnHandleClose(mdl);
	ktap_rc(KnTaskSetQuota(KN_HANDLE_SELF, &set), rcAccessDenied, "api: set, KN_HANDLE_SELF (no QUOTA right)");
	ktap_rc(KnTaskSetQuota(KnTaskSelf(), &q_unlimited), rcAccessDenied, "api: ... not even to unlimited");
	ktap_rc(KnTaskGetQuota(KN_HANDLE_SELF, &lim, &use), rcOk, "api: get, KN_HANDLE_SELF");
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, c, KN_RIGHT_FREEZE | KN_RIGHT_TERMINATE, &weak), rcOk,
		"api: a handle to it without QUOTA");
	ktap_rc(KnTaskSetQuota(weak, &q_unlimited), rcAccessDenied, "api: set through it is denied");
	ktap_rc(KnTaskGetQuota(weak, &lim, &use), rcOk, "api: get through it is fine (any handle)");
	ktap_check(quota_equal(&lim, &set), "api: ... the denied set changed nothing", NULL);
	KnHandleClose(weak);

	/* The input. */
	void *const bad[] = { KERNEL, UNMAPPED, RTL_NULL };
	const char *const what[] = { "kernel half", "unmapped", "NULL" };
	char name[96];
	for (unsigned i = 0; i < 3; i++) {
		ksnprintf(name, sizeof(name), "api: set, limits %s", what[i]);
		ktap_rc(KnTaskSetQuota(c, bad[i]), rcFault, name);
	}
	uint8_t *g = KnVmAllocate(RTL_NULL, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW | VMM_FLAG_HIGH_GUARD);
	ktap_check(g != RTL_NULL, "api: a page with a guard page after it", NULL);
	if (!g)
		return;
	KnQuota *straddling = (KnQuota *)(g + PAGE - 16); /* commitPages and lockedPages readable */
	straddling->commitPages = 7;
	straddling->lockedPages = 7;
	ktap_rc(KnTaskSetQuota(c, straddling), rcFault, "api: set, limits running into a guard page");
	ktap_check(KnTaskGetQuota(c, &lim, &use) == rcOk && quota_equal(&lim, &set), "api: ... changed nothing", NULL);

	/* The outputs: a bad one is rcFault, and the other is not written either. */
	for (unsigned i = 0; i < 3; i++) {
		memset(&use, SENTINEL, sizeof(use));
		ksnprintf(name, sizeof(name), "api: get, limits %s", what[i]);
		ktap_rc(KnTaskGetQuota(c, bad[i], &use), rcFault, name);
		ksnprintf(name, sizeof(name), "api: ... (limits %s) usage not written", what[i]);
		ktap_check(all_bytes(&use, sizeof(use), SENTINEL), name, NULL);
		memset(&lim, SENTINEL, sizeof(lim));
		ksnprintf(name, sizeof(name), "api: get, usage %s", what[i]);
		ktap_rc(KnTaskGetQuota(c, &lim, bad[i]), rcFault, name);
		ksnprintf(name, sizeof(name), "api: ... (usage %s) limits not written", what[i]);
		ktap_check(all_bytes(&lim, sizeof(lim), SENTINEL), name, NULL);
	}
	memset(&use, SENTINEL, sizeof(use));
	ktap_rc(KnTaskGetQuota(c, (KnQuota *)(void *)ro_quota, &use), rcFault, "api: get, limits read-only");
	ktap_check(all_bytes(&use, sizeof(use), SENTINEL) && ro_quota[0] == 1, "api: ... nothing written", NULL);
	memset(g, SENTINEL, PAGE);
	memset(&lim, SENTINEL, sizeof(lim));
	ktap_rc(KnTaskGetQuota(c, &lim, (KnQuota *)(g + PAGE - 16)), rcFault,
		"api: get, usage running into a guard page");
	ktap_check(all_bytes(g, PAGE, SENTINEL) && all_bytes(&lim, sizeof(lim), SENTINEL),
		   "api: ... nothing written, before the guard page nor to limits", NULL);
	memset(&use, SENTINEL, sizeof(use));
	ktap_rc(KnTaskGetQuota(c, (KnQuota *)(g + PAGE - 16), &use), rcFault,
		"api: get, limits running into a guard page");
	ktap_check(all_bytes(g, PAGE, SENTINEL) && all_bytes(&use, sizeof(use), SENTINEL),
		   "api: ... nothing written, before the guard page nor to usage", NULL);
	KnVmUnmap(g, PAGE);

	/* An exited task: no more limits to set; what is charged to it (nothing) can be read. */
	ktap_rc(KnTaskCreate("q-exited", "nop", 0, &e), rcOk, "api: a child that exits");
	KnTaskResume(e);
	KnTaskWait(e, KN_TASK_STATE_EXITED, ~0ull);
	ktap_rc(KnTaskSetQuota(e, &set), rcWrongState, "api: set, an exited task");
	memset(&use, SENTINEL, sizeof(use));
	ktap_rc(KnTaskGetQuota(e, &lim, &use), rcOk, "api: get, an exited task");
	ktap_check(use.commitPages <= 1 && use.lockedPages == 0 && use.handles == 0 && use.regions == 0 &&
			   use.tasks == 0,
		   "api: ... nothing is charged to it any more (but its task object, while we hold it)",
		   "commit %llu locked %llu handles %llu regions %llu tasks %llu", (unsigned long long)use.commitPages,
		   (unsigned long long)use.lockedPages, (unsigned long long)use.handles,
		   (unsigned long long)use.regions, (unsigned long long)use.tasks);
	KnHandleClose(e);
	KnHandleClose(c);
	KnMemStats s1 = mem_stats();
	ktap_check(s1.freePages == s0.freePages && s1.commitCharge == s0.commitCharge && s1.tasks == s0.tasks,
		   "api: all back", "free %llu -> %llu, charge %llu -> %llu, tasks %llu -> %llu",
		   (unsigned long long)s0.freePages, (unsigned long long)s1.freePages,
		   (unsigned long long)s0.commitCharge, (unsigned long long)s1.commitCharge,
		   (unsigned long long)s0.tasks, (unsigned long long)s1.tasks);
}

/* Runs hostile_qchild as `role` with one limit changed relative to its usage before it runs. */
enum quota_which { Q_COMMIT, Q_LOCKED, Q_HANDLES, Q_REGIONS, Q_TASKS };

static void behaviour(const char *role, enum quota_which which, uint64_t above_usage, const char *what)
{
	Handle c;
	KnQuota lim, use;
	int code = -1;
	char name[128];
	KnMemStats s0 = mem_stats();
	KnQuota mine_before = { 0 }, ignored;
	KnTaskGetQuota(KN_HANDLE_SELF, &ignored, &mine_before);

	if (KnTaskCreate(role, PROGRAM, 0, &c) != rcOk) {
		ktap_check(false, what, "cannot create %s", role);
		return;
	}
	Retcode rc = KnTaskGetQuota(c, &lim, &use);
	if (rc == rcOk) {
		lim = q_unlimited;
		switch (which) {
		case Q_COMMIT:
			lim.commitPages = use.commitPages + above_usage;
			break;
		case Q_LOCKED:
			lim.lockedPages = use.lockedPages + above_usage;
			break;
		case Q_HANDLES:
			lim.handles = use.handles + above_usage;
			break;
		case Q_REGIONS:
			lim.regions = use.regions + above_usage;
			break;
		case Q_TASKS:
			lim.tasks = use.tasks + above_usage;
			break;
		}
		rc = KnTaskSetQuota(c, &lim);
	}
	if (rc != rcOk) { /* no limit: running it would only eat memory */
		ktap_check(false, what, "no limit could be set (%d): not run", rc);
		KnHandleClose(c);
		return;
	}
	KnTaskResume(c);
	KnTaskWait(c, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(c, &code);
	ktap_check(code == 0, what, "%s: %d checks failed", role, code);
	ksnprintf(name, sizeof(name), "%s: exited, nothing is charged to it (but its task object, while we hold it)",
		  role);
	KnQuota u = { 1, 1, 1, 1, 1 };
	mem_stats(); /* (what it left to end is ended by then) */
	rc = KnTaskGetQuota(c, &lim, &u);
	ktap_check(rc == rcOk && u.commitPages <= 1 && u.lockedPages == 0 && u.handles == 0 && u.regions == 0 &&
			   u.tasks == 0,
		   name, "commit %llu locked %llu handles %llu regions %llu tasks %llu",
		   (unsigned long long)u.commitPages, (unsigned long long)u.lockedPages, (unsigned long long)u.handles,
		   (unsigned long long)u.regions, (unsigned long long)u.tasks);
	KnHandleClose(c);
	KnQuota mine_after;
	mem_stats();
	rc = KnTaskGetQuota(KN_HANDLE_SELF, &lim, &mine_after);
	ksnprintf(name, sizeof(name), "%s: closed, our usage is back", role);
	ktap_check(rc == rcOk && !memcmp(&mine_after, &mine_before, sizeof(mine_before)), name,
		   "commit %llu -> %llu, tasks %llu -> %llu, handles %llu -> %llu",
		   (unsigned long long)mine_before.commitPages, (unsigned long long)mine_after.commitPages,
		   (unsigned long long)mine_before.tasks, (unsigned long long)mine_after.tasks,
		   (unsigned long long)mine_before.handles, (unsigned long long)mine_after.handles);
	ksnprintf(name, sizeof(name), "%s: all back", role);
	KnMemStats s1 = mem_stats();
	ktap_check(s1.freePages == s0.freePages && s1.commitCharge == s0.commitCharge && s1.tasks == s0.tasks, name,
		   "free %llu -> %llu, charge %llu -> %llu, tasks %llu -> %llu", (unsigned long long)s0.freePages,
		   (unsigned long long)s1.freePages, (unsigned long long)s0.commitCharge,
		   (unsigned long long)s1.commitCharge, (unsigned long long)s0.tasks, (unsigned long long)s1.tasks);
}

static int quota_main(void)
{
	ktap_start();
	grow_handle_table(64);
	api_cases();
	behaviour("q-commit", Q_COMMIT, 64, "a child cannot commit past its commit limit");
	behaviour("q-regions", Q_REGIONS, 3, "a child cannot make regions past its regions limit");
	behaviour("q-handles", Q_HANDLES, 4, "a child cannot open handles past its handles limit");
	behaviour("q-tasks", Q_TASKS, 2, "a child cannot create tasks past its tasks limit");
	behaviour("q-locked", Q_LOCKED, 8, "a child cannot lock or pin pages past its locked limit");
	behaviour("q-hier", Q_COMMIT, 512, "a grandchild is bounded by its parent's limit and counted in its usage");
	ktap_done();
}
