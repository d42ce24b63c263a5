// SPDX-License-Identifier: MIT
/*
 * Issue 13, finding 1: ring 3 cannot reach the kernel reserve. The task "hostile-reserve",
 * run last of all the tests (zz_last.user_hostile_reserve), with ASLR on: on a kernel that does not charge what tasks
 * cost it, this program ends the boot with a panic ("vm: no frame for a committed page").
 *
 * The attack: suspended tasks of a one-page program until KnTaskCreate fails (it must fail
 * with rcOutOfMemory), then the rest of the commit limit committed lazily and every page
 * touched: the commit limit promised each of them a frame, so every touch must find one,
 * and the task must live. Each task took a page-table root (and more) that nobody paid
 * for, from the reserve, until there was none.
 *
 * Bounds: the tasks must eat the reserve's slack (the frames free beyond what the commit
 * limit promises), about one frame a task; most of the commit limit is committed lazily
 * first (touched only at the end), so that the tasks run into the limit after about 16 per
 * frame of slack. When there are more tasks than our handle table holds, children
 * (child.c, "hold") hold the rest. The whole commit limit is touched at the end, a few
 * seconds with 2 GiB; with 256 GiB the slack alone (4 GiB) would take a million tasks and
 * the touching ten minutes: that global attack is skipped there (ktap_skip says so).
 *
 * In every configuration, the same attack inside a quota: a child (qchild.c,
 * "q-exhaust") limited to 4096 pages more than it uses makes tasks until refused, commits
 * the rest of its quota, touches it all, and checks that every frame its subtree took is
 * charged to it.
 */
#include "common.h"

#define HOLDERS_MAX 32u
#define SLACK_MAX   16384ull /* frames of slack the global attack will eat */

static Handle own[HOLD_MAX], holders[HOLDERS_MAX];
static unsigned nown, nholders;

static uint64_t windows_charge(uint64_t pages) { return 3 * (pages / 512 + 2); } /* tables, at most */

/* A lazily committed region of as close to `pages` pages (tables included) as the limit
 * allows; *got says how many. */
static uint8_t *commit_up_to(uint64_t pages, uint64_t *got)
{
	uint64_t n = pages > windows_charge(pages) ? pages - windows_charge(pages) : 0;
	for (unsigned tries = 0; n > 0 && tries < 256; tries++) {
		void *p = RTL_NULL;
		Retcode rc = KnVmAllocateEx(RTL_NULL, n * PAGE, LAZY, &p);
		if (rc == rcOk) {
			*got = n;
			return p;
		}
		if (rc != rcOutOfMemory)
			break;
		n = n > 64 ? n - n / 64 : n - 1;
	}
	*got = 0;
	return RTL_NULL;
}

/* A holder child: it creates tasks until refused (or HOLD_MAX) and says how it went. */
static Retcode spawn_holder(unsigned *made)
{
	Handle box, h, r;
	void *p = RTL_NULL;
	Retcode rc;

	*made = 0;
	if ((rc = KnPmmMdlCreate(PAGE, RW, &box)) != rcOk)
		return rc;
	if ((rc = KnPmmMdlMap(box, 0, PAGE, RTL_NULL, RW, &p)) != rcOk ||
	    (rc = KnTaskCreate("hold", PROGRAM, 0, &h)) != rcOk) {
		if (p)
			KnVmUnmap(p, PAGE);
		KnHandleClose(box);
		return rc;
	}
	volatile uint64_t *mail = p;
	if ((rc = KnHandleTransfer(h, KN_HANDLE_SELF, 0, &r)) == rcOk &&
	    (rc = KnHandleTransfer(h, box, KN_RIGHT_MAP_READ | KN_RIGHT_MAP_WRITE, &r)) == rcOk)
		rc = KnTaskResume(h);
	holders[nholders++] = h;
	int state = 0;
	while (rc == rcOk && !__atomic_load_n(&mail[0], __ATOMIC_SEQ_CST) && KnTaskGetState(h, &state) == rcOk &&
	       state != KN_TASK_STATE_EXITED)
		KnTaskWait(h, KN_TASK_STATE_EXITED, 1000000ull); /* 1 ms: it works meanwhile */
	if (rc == rcOk) {
		if (mail[0]) {
			*made = (unsigned)mail[1];
			rc = *made == HOLD_MAX ? rcOk : (Retcode)mail[2];
		} else {
			rc = rcWrongState; /* it died */
		}
	}
	KnVmUnmap(p, PAGE);
	KnHandleClose(box);
	return rc;
}

static void release_all(void)
{
	while (nown)
		KnHandleClose(own[--nown]);
	while (nholders) {
		Handle h = holders[--nholders];
		KnTaskTerminate(h);
		KnHandleClose(h);
	}
}

static void global_exhaustion(void)
{
	KnMemStats s0 = mem_stats();
	int64_t slack = (int64_t)s0.freePages - (int64_t)(s0.commitLimit - s0.commitCharge);
	char why[160];

	printf("    # reserve: %llu free frames, %llu pages of commit left: %lld frames of slack\n",
	       (unsigned long long)s0.freePages, (unsigned long long)(s0.commitLimit - s0.commitCharge),
	       (long long)slack);
	if (slack > (int64_t)SLACK_MAX) {
		ksnprintf(
			why, sizeof(why),
			"the reserve's slack is %lld frames: eating it takes as many tasks, and the limit (%llu pages) "
			"is too much to touch (the quota attack runs instead)",
			(long long)slack, (unsigned long long)s0.commitLimit);
		ktap_skip("reserve: tasks until refused, then every committed page touched", why);
		return;
	}
	/* Most of the commit limit, lazily: the tasks get 16 pages for each frame of slack. */
	uint64_t room = s0.commitLimit - s0.commitCharge, leave = 16 * (uint64_t)(slack > 0 ? slack : 0) + 4096;
	uint64_t npre = 0, nrest = 0;
	uint8_t *pre = room > leave + 1024 ? commit_up_to(room - leave, &npre) : RTL_NULL;

	/* Tasks until refused: ours first, then holders'. */
	Retcode rc = rcOk;
	unsigned total = 0, made;
	while (nown < HOLD_MAX && (rc = KnTaskCreate("held", "nop", 0, &own[nown])) == rcOk)
		nown++;
	total = nown;
	while (rc == rcOk && nholders < HOLDERS_MAX) {
		rc = spawn_holder(&made);
		total += made;
	}
	ktap_rc(rc, rcOutOfMemory, "reserve: suspended tasks until KnTaskCreate fails: rcOutOfMemory");
	KnMemStats s1 = mem_stats();
	printf("    # reserve: %u tasks (%u holders), then %llu free frames for %llu pages of commit left\n", total,
	       nholders, (unsigned long long)s1.freePages, (unsigned long long)(s1.commitLimit - s1.commitCharge));

	/* The rest of the limit, lazily; then every promised page touched. */
	uint8_t *rest = commit_up_to(s1.commitLimit - s1.commitCharge, &nrest);
	printf("    # reserve: touching %llu + %llu lazily committed pages\n", (unsigned long long)npre,
	       (unsigned long long)nrest);
	for (uint64_t i = 0; i < npre; i++)
		pre[i * PAGE] = (uint8_t)(i + 1);
	for (uint64_t i = 0; i < nrest; i++)
		rest[i * PAGE] = (uint8_t)(i + 3);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < npre; i++)
		bad += pre[i * PAGE] != (uint8_t)(i + 1);
	for (uint64_t i = 0; i < nrest; i++)
		bad += rest[i * PAGE] != (uint8_t)(i + 3);
	ktap_check(bad == 0, "reserve: every committed page touched and read back (the kernel kept its promise)",
		   "%llu pages wrong", (unsigned long long)bad);
	if (pre)
		KnVmUnmap(pre, npre * PAGE);
	if (rest)
		KnVmUnmap(rest, nrest * PAGE);
	release_all();
	settle_tasks(s0.tasks, 500);
	stats_back(&s0, "reserve: everything back after closing them");
}

static void quota_exhaustion(void)
{
	Handle c, box, r;
	KnQuota lim, use;
	int code = -1;
	void *p = RTL_NULL;
	KnMemStats before = mem_stats();

	if (KnPmmMdlCreate(PAGE, RW, &box) != rcOk || KnPmmMdlMap(box, 0, PAGE, RTL_NULL, RW, &p) != rcOk) {
		ktap_check(false, "quota: a mailbox", NULL);
		return;
	}
	KnMemStats s0 = mem_stats();
	((volatile uint64_t *)p)[0] = s0.freePages; /* the child's baseline */
	ktap_rc(KnTaskCreate("q-exhaust", PROGRAM, 0, &c), rcOk, "quota: a child to do it");
	Retcode rc = KnTaskGetQuota(c, &lim, &use);
	if (rc == rcOk) {
		lim.commitPages = use.commitPages + 4096;
		rc = KnTaskSetQuota(c, &lim);
	}
	ktap_rc(rc, rcOk, "quota: limited to 4096 pages of commit more than it uses");
	if (rc == rcOk && KnHandleTransfer(c, box, KN_RIGHT_MAP_READ, &r) == rcOk && KnTaskResume(c) == rcOk) {
		KnTaskWait(c, KN_TASK_STATE_EXITED, ~0ull);
		KnTaskGetExitCode(c, &code);
		ktap_check(code == 0,
			   "quota: tasks until refused, the rest committed and touched: all charged, within the limit",
			   "%d checks failed", code);
	}
	KnHandleClose(c);
	KnVmUnmap(p, PAGE);
	KnHandleClose(box);
	KnMemStats s1 = mem_stats();
	ktap_check(s1.freePages == before.freePages && s1.commitCharge == before.commitCharge &&
			   s1.tasks == before.tasks,
		   "quota: everything back", "free %llu -> %llu, charge %llu -> %llu, tasks %llu -> %llu",
		   (unsigned long long)before.freePages, (unsigned long long)s1.freePages,
		   (unsigned long long)before.commitCharge, (unsigned long long)s1.commitCharge,
		   (unsigned long long)before.tasks, (unsigned long long)s1.tasks);
}

static int reserve_main(void)
{
	ktap_start();
	ktap_rc(sleeper_init(), rcOk, "a created task to wait on (our clock)");
	grow_handle_table(HOLD_MAX); /* at its full size before any baseline */
	quota_exhaustion();
	global_exhaustion();
	sleeper_done();
	ktap_done();
}
