// SPDX-License-Identifier: MIT
/*
 * Threads of a task (include/kn/thread_api.h): several threads of this task each fill a page
 * of their own and report through memory the task shares, waiting for each other with
 * KnThreadYield; the last live thread's KnThreadExit ends the task with 0, whichever thread
 * it is; KnTaskExit, an exception or KnTaskTerminate end every thread; a task frozen with
 * three threads lists three contexts; every refused call (bad entry, stack, output, mask,
 * thread id) gets its code and makes nothing (the kernel's thread count and the task's
 * usage stay); at the commit quota KnThreadCreate is rcOutOfMemory with the usage
 * unchanged.
 *
 * The children are this program, named for what they do (argv[0]):
 *   thr-exit-main   two threads wait for the main thread's go; it leaves first
 *                   (KnThreadExit), they after it: the last one ends the task with 0
 *   thr-exit-last   three threads end (returning from their function), then the main
 *                   thread's KnThreadExit ends the task with 0
 *   thr-task-exit   a second thread calls KnTaskExit(7) while the main thread spins
 *   thr-crash       a second thread executes ud2 while two others spin
 *   thr-spin        three threads and the main one spin (KnThreadYield) until terminated
 *   thr-frozen      two threads, each pinned on a CPU of its own where there are CPUs
 *                   enough, spin in ring 3 with r12 = FROZEN_MARK + their number, and the
 *                   main one freezes the task once both run (test_dump dumps it too: one
 *                   NT_PRSTATUS per thread, and tests/check_dumps.py finds both spinners'
 *                   r12 and rip in the core)
 *   thr-quota       under a commit quota its parent set: threads until rcOutOfMemory,
 *                   which must leave its usage and the thread count as they were
 *
 * EXPECT-LOG(user.threads): W task thr-crash: invalid opcode at 0x[0-9a-f]+ rip 0x
 */
#include <knlib.h>

#define PAGE       4096ull
#define RW         (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES_COM    (VMM_FLAG_RESERVE | VMM_FLAG_COMMIT)
#define NTHREADS   4
#define STACK      (4 * PAGE)
#define SECONDS(n) ((n)*1000000000ull)
#define SPIN_MAX   1000000 /* yields a wait may take before it counts as a hang */

/* What the threads share: written by one, read by the others. */
static volatile uint32_t ready[16], go, cpu_bad, gone;
static uint8_t *pages; /* a page per thread */

/* Waits (giving the CPU away) until *flag is at least `want`; false after SPIN_MAX yields. */
static bool wait_for(volatile uint32_t *flag, uint32_t want)
{
	for (unsigned i = 0; i < SPIN_MAX; i++) {
		if (*flag >= want)
			return true;
		KnThreadYield();
	}
	return *flag >= want;
}

/* Stacks for up to n threads (16-byte aligned tops: STACK apart); NULL if none. */
static uint8_t *stacks(unsigned n) { return KnVmAllocate(RTL_NULL, n * STACK, RES_COM | RW); }
static void *top_of(uint8_t *s, unsigned i) { return s + (i + 1) * STACK; }

/* A worker: fills its page with its number, says where it runs, reports, waits for go. */
static void worker(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	rtl_uint32_t cpu = ~0u, ncpus = 0;
	memset(pages + i * PAGE, 0x40 + (int)i, PAGE);
	if (KnThreadGetCpu(&cpu, &ncpus) != rcOk || cpu >= ncpus)
		cpu_bad++;
	ready[i] = 1;
	wait_for(&go, 1);
	gone++;
}

static void spinner(void *arg)
{
	(void)arg;
	for (;;)
		KnThreadYield();
}

/* thr-frozen's spinners: pinned on CPU i + 1 (mod the CPUs), they say they run there, then
 * loop in ring 3 for good with r12 = FROZEN_MARK + i: the freeze must take them off their
 * CPUs, and the dump must hold each one's own registers. */
#define FROZEN_MARK 0x5350494e00ull /* "SPIN" */
static volatile uint32_t frozen_cpu[2];
static void pinned_spinner(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	rtl_uint32_t cpu = ~0u, ncpus = 1;
	KnThreadGetCpu(&cpu, &ncpus);
	KnThreadSetAffinity(0, 1ull << ((i + 1) % ncpus));
	KnThreadYield(); /* (leaves for the CPU it is pinned on) */
	KnThreadGetCpu(&cpu, &ncpus);
	frozen_cpu[i] = cpu;
	ready[i] = 1;
	__asm__ __volatile__("movq %0, %%r12\n"
			     "1:\n\t"
			     "pause\n\t"
			     "jmp 1b" ::"r"(FROZEN_MARK + i)
			     : "r12");
}

static void crasher(void *arg)
{
	(void)arg;
	wait_for(&go, 1);
	__asm__ __volatile__("ud2");
}

static void task_exiter(void *arg)
{
	(void)arg;
	KnTaskExit(7);
}

static void waiter(void *arg)
{
	(void)arg;
	wait_for(&go, 1);
	gone++;
}

static uint64_t usage_commit(void)
{
	KnQuota limit, usage;
	KnTaskGetQuota(KN_HANDLE_SELF, &limit, &usage);
	return usage.commitPages;
}

/* ------------------------------------------------------------------ children */

static int child(const char *role)
{
	uint8_t *s = stacks(NTHREADS);
	rtl_uint32_t tid;
	if (!s)
		return 90;
	if (!strcmp(role, "thr-exit-main")) {
		for (unsigned i = 0; i < 2; i++)
			if (thread_create(waiter, RTL_NULL, top_of(s, i), &tid) != rcOk)
				return 91;
		go = 1;
		KnThreadExit(); /* (not the last: the task goes on without its main thread) */
	}
	if (!strcmp(role, "thr-exit-last")) {
		for (unsigned i = 0; i < 3; i++)
			if (thread_create(waiter, RTL_NULL, top_of(s, i), &tid) != rcOk)
				return 92;
		go = 1;
		wait_for(&gone, 3);
		for (unsigned i = 0; i < 16; i++)
			KnThreadYield(); /* (they return to KnThreadExit) */
		KnThreadExit();          /* (the last, or one of the last) */
	}
	if (!strcmp(role, "thr-task-exit")) {
		if (thread_create(task_exiter, RTL_NULL, top_of(s, 0), &tid) != rcOk)
			return 93;
		for (;;)
			KnThreadYield();
	}
	if (!strcmp(role, "thr-crash")) {
		for (unsigned i = 0; i < 2; i++)
			if (thread_create(spinner, RTL_NULL, top_of(s, i), &tid) != rcOk)
				return 94;
		if (thread_create(crasher, RTL_NULL, top_of(s, 2), &tid) != rcOk)
			return 94;
		go = 1;
		for (;;)
			KnThreadYield();
	}
	if (!strcmp(role, "thr-spin")) {
		for (unsigned i = 0; i < 3; i++)
			if (thread_create(spinner, RTL_NULL, top_of(s, i), &tid) != rcOk)
				return 95;
		for (;;)
			KnThreadYield();
	}
	if (!strcmp(role, "thr-frozen")) {
		for (unsigned i = 0; i < 2; i++)
			if (thread_create(pinned_spinner, (void *)(uintptr_t)i, top_of(s, i), &tid) != rcOk)
				return 95;
		if (!wait_for(&ready[0], 1) || !wait_for(&ready[1], 1))
			return 96;
		rtl_uint32_t cpu = 0, ncpus = 1;
		KnThreadGetCpu(&cpu, &ncpus);
		for (unsigned i = 0; i < 2; i++)
			if (frozen_cpu[i] != (i + 1) % ncpus)
				return 97;    /* (not where it was pinned) */
		KnTaskFreeze(KN_HANDLE_SELF); /* (does not come back) */
		for (;;)
			KnThreadYield();
	}
	if (!strcmp(role, "thr-quota")) {
		/* 64 stacks committed now: then all the quota's room left is for threads. */
		enum { MAX = 64 };
		uint8_t *many = KnVmAllocate(RTL_NULL, MAX * PAGE, RES_COM | RW);
		if (!many)
			return 80;
		for (unsigned i = 0; i < MAX; i++)
			many[i * PAGE] = 0;
		for (unsigned i = 0; i < MAX; i++) {
			uint64_t before = usage_commit(), threads = mem_stats().threads;
			Retcode rc = thread_create(waiter, RTL_NULL, many + (i + 1) * PAGE, &tid);
			if (rc == rcOk)
				continue;
			if (rc != rcOk && rc != rcOutOfMemory)
				return 81;
			if (i == 0)
				return 82; /* (the quota left no room for one: the parent's mistake) */
			if (usage_commit() != before || mem_stats().threads != threads)
				return 83;
			go = 1;
			return 0; /* (the task ends: every thread with it) */
		}
		return 84; /* the quota never refused one */
	}
	return 99;
}

/* ------------------------------------------------------------------ the tests */

static void run_threads(void)
{
	uint64_t base = threads_settled(mem_stats().threads);
	uint8_t *s = stacks(NTHREADS);
	rtl_uint32_t tid[NTHREADS] = { 0 };
	unsigned made = 0;

	pages = KnVmAllocate(RTL_NULL, NTHREADS * PAGE, RES_COM | RW);
	if (!ktap_check(s && pages, "stacks and pages for the threads", NULL))
		return;
	for (unsigned i = 0; i < NTHREADS; i++)
		made += thread_create(worker, (void *)(uintptr_t)i, top_of(s, i), &tid[i]) == rcOk;
	ktap_check(made == NTHREADS, "KnThreadCreate: 4 threads", "%u made", made);
	bool distinct = true;
	for (unsigned i = 0; i < NTHREADS; i++)
		for (unsigned j = 0; j < i; j++)
			distinct &= tid[i] != 0 && tid[i] != tid[j];
	ktap_check(distinct, "their ids are distinct and not 0", "%u %u %u %u", tid[0], tid[1], tid[2], tid[3]);
	ktap_check(mem_stats().threads == base + NTHREADS, "the kernel counts them", NULL);
	unsigned seen = 0;
	for (unsigned i = 0; i < NTHREADS; i++)
		seen += wait_for(&ready[i], 1);
	ktap_check(seen == NTHREADS, "each reported through shared memory (KnThreadYield while waiting)", "%u of 4",
		   seen);
	unsigned right = 0;
	for (unsigned i = 0; i < NTHREADS; i++) {
		bool all = true;
		for (unsigned b = 0; b < PAGE; b++)
			all &= pages[i * PAGE + b] == 0x40 + i;
		right += all;
	}
	ktap_check(right == NTHREADS, "each filled its own page", "%u of 4", right);
	ktap_check(cpu_bad == 0, "KnThreadGetCpu in each: a CPU below the count", "%u wrong", cpu_bad);
	ktap_rc(KnThreadSetAffinity(tid[1], 1), rcOk, "KnThreadSetAffinity on a thread of ours");
	ktap_rc(KnThreadSetAffinity(0, ~0ull), rcOk, "KnThreadSetAffinity on ourselves (0), every CPU");
	go = 1;
	ktap_check(wait_for(&gone, NTHREADS), "they end when their function returns", "%u gone", gone);
	ktap_check(threads_settled(base) == base, "and the kernel frees them", "%llu threads, %llu before",
		   (unsigned long long)threads_settled(base), (unsigned long long)base);
	ktap_rc(KnThreadSetAffinity(tid[1], 1), rcNotFound, "KnThreadSetAffinity on a thread that ended");
	KnVmUnmap(s, NTHREADS * STACK);
	KnVmUnmap(pages, NTHREADS * PAGE);
}

/* A child of this program playing `role`: its exit code (or -1000 - rc). */
static int run_child(const char *role) { return run_task(role, "test_threads", 0); }

static void exits(void)
{
	int code = run_child("thr-exit-main");
	ktap_check(code == 0, "the main thread leaves first, the last thread's KnThreadExit ends the task with 0",
		   "code %d", code);
	code = run_child("thr-exit-last");
	ktap_check(code == 0, "threads leave, then the main thread's KnThreadExit ends the task with 0", "code %d",
		   code);
	code = run_child("thr-task-exit");
	ktap_check(code == 7, "KnTaskExit in a second thread ends every thread, with its code", "code %d", code);
	code = run_child("thr-crash");
	ktap_check(code == KN_EXIT_EXCEPTION, "an exception in one thread ends the task", "code %d", code);

	Handle h;
	int state = 0;
	uint64_t base = threads_settled(mem_stats().threads);
	ktap_rc(KnTaskCreate("thr-spin", "test_threads", 0, &h), rcOk, "a task whose 4 threads spin");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_EXITED, 200000000ull), rcBusy, "it runs");
	ktap_check(mem_stats().threads == base + 4, "with 4 threads", "%llu more",
		   (unsigned long long)(mem_stats().threads - base));
	ktap_rc(KnTaskTerminate(h), rcOk, "KnTaskTerminate");
	KnTaskGetState(h, &state);
	KnTaskGetExitCode(h, &code);
	ktap_check(state == KN_TASK_STATE_EXITED && code == KN_EXIT_TERMINATED, "every thread ended",
		   "state %d code %d", state, code);
	KnHandleClose(h);
	ktap_check(threads_settled(base) == base, "every thread freed", NULL);
}

/* A frozen task with 3 threads: 3 contexts, then rcEof; its thread ids are not ours. */
static void frozen(void)
{
	Handle h;
	KnThreadContext ctx[4];
	int code = 0;

	ktap_rc(KnTaskCreate("thr-frozen", "test_threads", 0, &h), rcOk, "a task that freezes with 3 threads");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, SECONDS(60)), rcOk, "it freezes");
	unsigned n = 0;
	while (n < 4 && KnTaskGetThreadContext(h, n, &ctx[n]) == rcOk)
		n++;
	ktap_check(n == 3, "KnTaskGetThreadContext: 3 contexts", "%u", n);
	ktap_rc(KnTaskGetThreadContext(h, 3, &ctx[3]), rcEof, "then rcEof");
	bool ok = n == 3;
	for (unsigned i = 0; i < n; i++)
		ok &= ctx[i].cs == 0x2b && ctx[i].rip >= 0x400000 && ctx[i].rip < 0x500000 &&
		      ctx[i].exception == KN_NO_EXCEPTION && (i == 0 || ctx[i].threadId > ctx[i - 1].threadId);
	ktap_check(ok, "each in ring 3, in its code, in creation order", NULL);
	ktap_check(n == 3 && ctx[1].r12 == FROZEN_MARK && ctx[2].r12 == FROZEN_MARK + 1,
		   "the spinners were stopped in their loop on their CPUs: each its own r12", "%#llx %#llx",
		   n == 3 ? (unsigned long long)ctx[1].r12 : 0ull, n == 3 ? (unsigned long long)ctx[2].r12 : 0ull);
	KnThreadContext again;
	ktap_check(n == 3 && KnTaskGetThreadContext(h, 1, &again) == rcOk && again.threadId == ctx[1].threadId &&
			   again.rip == ctx[1].rip && again.rsp == ctx[1].rsp,
		   "stable while frozen", NULL);
	ktap_rc(n ? KnThreadSetAffinity((rtl_uint32_t)ctx[0].threadId, 1) : rcNotFound, rcNotFound,
		"KnThreadSetAffinity on another task's thread: rcNotFound");
	ktap_rc(KnTaskTerminate(h), rcOk, "terminate it");
	KnTaskGetExitCode(h, &code);
	ktap_check(code == KN_EXIT_TERMINATED, "it ended", "code %d", code);
	KnHandleClose(h);
}

/* Each refused call makes nothing: the kernel's threads and our commit usage stay. */
static void refusals(void)
{
	uint8_t *s = stacks(1);
	uintptr_t top = (uintptr_t)top_of(s, 0);
	rtl_uint32_t tid = 0x5a5a5a5a;
	const uintptr_t kernel = 0xffffffff80100000ull;
	void kn_thread_start(void);
	const uintptr_t entry = (uintptr_t)kn_thread_start;
	static const rtl_uint32_t ro = 0; /* (in the read-only data) */

	uint64_t threads = threads_settled(mem_stats().threads), usage = usage_commit();
	ktap_rc(KnThreadCreate(0, 0, top, &tid), rcInvalidArgument, "KnThreadCreate: entry NULL");
	ktap_rc(KnThreadCreate(kernel, 0, top, &tid), rcInvalidArgument, "KnThreadCreate: entry in the kernel half");
	ktap_rc(KnThreadCreate(0x0000800000000000ull, 0, top, &tid), rcInvalidArgument,
		"KnThreadCreate: entry not canonical");
	ktap_rc(KnThreadCreate(entry, 0, kernel, &tid), rcInvalidArgument, "KnThreadCreate: stack in the kernel half");
	ktap_rc(KnThreadCreate(entry, 0, 0, &tid), rcInvalidArgument, "KnThreadCreate: stack NULL");
	ktap_rc(KnThreadCreate(entry, 0, top - 8, &tid), rcInvalidArgument,
		"KnThreadCreate: stack not 16-byte aligned");
	ktap_rc(KnThreadCreate(entry, 0, 0x00007ffffffff010ull, &tid), rcInvalidArgument,
		"KnThreadCreate: stack above the user half");
	ktap_rc(KnThreadCreate(entry, 0, top, RTL_NULL), rcFault, "KnThreadCreate: tid NULL");
	ktap_rc(KnThreadCreate(entry, 0, top, (rtl_uint32_t *)kernel), rcFault,
		"KnThreadCreate: tid in the kernel half");
	ktap_rc(KnThreadCreate(entry, 0, top, (rtl_uint32_t *)&ro), rcFault, "KnThreadCreate: tid read-only");
	ktap_rc(KnThreadCreate(kernel, 0, kernel, RTL_NULL), rcFault, "KnThreadCreate: the output is checked first");
	ktap_check(tid == 0x5a5a5a5a, "nothing written to tid", "%#x", tid);
	ktap_check(mem_stats().threads == threads && usage_commit() == usage, "no thread made, nothing charged",
		   "threads %llu -> %llu, usage %llu -> %llu", (unsigned long long)threads,
		   (unsigned long long)mem_stats().threads, (unsigned long long)usage,
		   (unsigned long long)usage_commit());

	rtl_uint32_t cpu = ~0u, ncpus = 0;
	ktap_rc(KnThreadGetCpu(&cpu, &ncpus), rcOk, "KnThreadGetCpu");
	ktap_check(ncpus >= 1 && ncpus <= 64 && cpu < ncpus, "a CPU below the count of CPUs", "cpu %u of %u", cpu,
		   ncpus);
	ktap_rc(KnThreadGetCpu(RTL_NULL, &ncpus), rcFault, "KnThreadGetCpu: cpu NULL");
	ktap_rc(KnThreadGetCpu(&cpu, (rtl_uint32_t *)kernel), rcFault, "KnThreadGetCpu: ncpus in the kernel half");
	ktap_rc(KnThreadGetCpu(&cpu, (rtl_uint32_t *)&ro), rcFault, "KnThreadGetCpu: ncpus read-only");
	uint64_t online = ncpus >= 64 ? ~0ull : (1ull << ncpus) - 1;
	ktap_rc(KnThreadSetAffinity(0, 0), rcInvalidArgument, "KnThreadSetAffinity: empty mask");
	if (ncpus < 64)
		ktap_rc(KnThreadSetAffinity(0, ~online), rcInvalidArgument,
			"KnThreadSetAffinity: only CPUs that are not online");
	else
		ktap_skip("KnThreadSetAffinity: only CPUs that are not online", "64 CPUs online");
	ktap_rc(KnThreadSetAffinity(0xfffffff0u, 1), rcNotFound, "KnThreadSetAffinity: unknown thread");
	ktap_rc(KnThreadSetAffinity(0xfffffff0u, 0), rcInvalidArgument, "KnThreadSetAffinity: the mask first");
	ktap_rc(KnThreadSetAffinity(0, 1), rcOk, "KnThreadSetAffinity: ourselves on CPU 0");
	ktap_rc(KnThreadSetAffinity(0, online | (1ull << 63)), rcOk, "KnThreadSetAffinity: every CPU and more");
	KnVmUnmap(s, STACK);
}

/* Under a commit quota: threads until rcOutOfMemory, with nothing charged by the refusal. */
static void quota(void)
{
	Handle h;
	KnQuota limit, usage;
	int code = -1;

	ktap_rc(KnTaskCreate("thr-quota", "test_threads", 0, &h), rcOk, "a child to put under a quota");
	KnTaskGetQuota(h, &limit, &usage);
	/* Its image, its stack as it grows, 64 pages of thread stacks, and room for a few
	 * threads (a kernel stack of 4 pages and their objects each). */
	limit.commitPages = usage.commitPages + 64 + 32 + 24;
	ktap_rc(KnTaskSetQuota(h, &limit), rcOk, "set its commit quota");
	KnTaskResume(h);
	KnTaskWait(h, KN_TASK_STATE_EXITED, SECONDS(60));
	KnTaskGetExitCode(h, &code);
	ktap_check(code == 0, "at its quota KnThreadCreate is rcOutOfMemory, with its usage and threads unchanged",
		   "code %d", code);
	KnHandleClose(h);
}

int main(int argc, char **argv)
{
	if (argc > 0 && !strncmp(argv[0], "thr-", 4))
		return child(argv[0]);
	ktap_start();
	stack_pregrow(16 * 1024);
	KnMemStats start = mem_stats();
	run_threads();
	exits();
	frozen();
	refusals();
	quota();
	ktap_counters_back(&start, "every frame and page of charge back");
	ktap_done();
}
