// SPDX-License-Identifier: MIT
/*
 * The ring-3 benchmarks of make bench (SPEC §10). The benchmark kernel runs this program
 * after its own figures; each figure is one line "bench NAME VALUE", VALUE in TSC ticks per
 * unit (under QEMU -icount a deterministic count, the same on every run). Run as "bench-smp"
 * (the kernel's bench=smp, booted with -smp 4) it measures the SMP figures only: unmap
 * without and with TLB shootdown.
 */
#include <knlib.h>

#define PAGE   4096ull
#define RW     (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define REGION (64ull << 20) /* SPEC §10: 64 MiB */
#define PAGES  (REGION / PAGE)
#define AT     ((uint8_t *)(uintptr_t)0x100000000ull) /* 2 MiB-aligned, away from the rest */

static unsigned missing; /* figures that could not be measured: the run fails */

static void report(const char *name, uint64_t ticks, uint64_t units)
{
	printf("bench %s %llu\n", name, (unsigned long long)(ticks / units));
}

static void cannot(const char *name)
{
	printf("bench: %s could not be measured\n", name);
	missing++;
}

/* A null system call round trip: SYSCALL, the table dispatch, SYSRET. */
static void syscall_null(void)
{
	const unsigned rounds = 100000;

	for (unsigned i = 0; i < 1000; i++) /* warm the caches and the TLB */
		KnDebugNop();
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < rounds; i++)
		KnDebugNop();
	report("syscall_null", rdtsc() - t0, rounds);
}

/* Touching each page of a fresh lazily committed region: one fault each. */
static void lazy_fault(void)
{
	KnMemStats before, after;
	volatile uint8_t *p = KnVmAllocate(AT, REGION, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	if (!p) {
		cannot("lazy_fault_per_page");
		return;
	}
	KnDebugGetStats(&before);
	uint64_t t0 = rdtsc();
	for (uint64_t i = 0; i < PAGES; i++)
		p[i * PAGE] = 1;
	uint64_t t1 = rdtsc();
	KnDebugGetStats(&after);
	if (after.taskResident - before.taskResident == PAGES) /* one fault a page, nothing else */
		report("lazy_fault_per_page", t1 - t0, PAGES);
	else
		cannot("lazy_fault_per_page");
	KnVmUnmap((void *)p, REGION);
}

/* KnVmAllocate(COMMIT | LOCKED), KnVmProtect RW -> R and KnVmUnmap of the resident region. */
static void locked_protect_unmap(void)
{
	uint64_t t0 = rdtsc();
	void *p = KnVmAllocate(AT, REGION, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW);
	uint64_t t1 = rdtsc();
	if (!p) {
		cannot("locked_commit_per_page");
		return;
	}
	report("locked_commit_per_page", t1 - t0, PAGES);
	t0 = rdtsc();
	Retcode rc = KnVmProtect(p, REGION, VMM_FLAG_READ);
	t1 = rdtsc();
	if (rc == rcOk)
		report("protect_committed_per_page", t1 - t0, PAGES);
	else
		cannot("protect_committed_per_page");
	t0 = rdtsc();
	rc = KnVmUnmap(p, REGION);
	t1 = rdtsc();
	if (rc == rcOk)
		report("unmap_committed_per_page", t1 - t0, PAGES);
	else
		cannot("unmap_committed_per_page");
}

/* KnVmAllocate(RESERVE) + KnVmUnmap of 1 MiB, per pair. */
static void reserve_release(void)
{
	const unsigned rounds = 2000;

	unsigned failed = 0;

	for (unsigned i = 0; i < 16; i++) /* warm the region cache and the pool */
		KnVmUnmap(KnVmAllocate(RTL_NULL, 1 << 20, VMM_FLAG_RESERVE | RW), 1 << 20);
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < rounds; i++)
		failed += KnVmUnmap(KnVmAllocate(RTL_NULL, 1 << 20, VMM_FLAG_RESERVE | RW), 1 << 20) != rcOk;
	uint64_t t1 = rdtsc();
	if (!failed)
		report("reserve_release_1MiB", t1 - t0, rounds);
	else
		cannot("reserve_release_1MiB");
}

/* GetUsageMap of a 1 GiB region with 16 resident pages, per full description. The pages
 * are 64 MiB apart at scattered places in their page tables, so each is a table to look
 * into. (The benchmark guest has 256 MiB: committing all of 1 GiB, even lazily, passes the
 * commit limit, so the region is reserved and the 16 pages committed; the map, which
 * follows residency, is the same.) */
static void usage_map_sparse(void)
{
	const uint64_t size = 1ull << 30, pages = size / PAGE;
	const unsigned rounds = 200;
	uint8_t *p = KnVmAllocate((void *)0x4000000000ull, size, VMM_FLAG_RESERVE | RW);
	rtl_size_t counters[64], n = 0;
	rtl_bool first;

	if (!p) {
		cannot("usage_map_1GiB_sparse_per_call");
		return;
	}
	for (uint64_t i = 0; i < 16; i++) {
		uint8_t *page = p + (i * (pages / 16) + 1 + (i * 97) % 511) * PAGE;
		KnVmCommit(page, PAGE, 0);
		*page = 1;
	}
	uint64_t described = 0;
	uint64_t t0 = rdtsc();
	for (unsigned r = 0; r < rounds; r++) {
		/* One full description: calls until the counts cover the region. */
		for (uint64_t start = 0; start < pages; start += described) {
			described = 0;
			if (KnPmmMdlGetUsageMap(p, start, counters, 64, &first, &n) != rcOk || n == 0)
				break;
			for (rtl_size_t i = 0; i < n; i++)
				described += counters[i];
		}
	}
	uint64_t t1 = rdtsc();
	if (n == 33) /* 16 used runs between 17 unused ones */
		report("usage_map_1GiB_sparse_per_call", t1 - t0, rounds);
	else
		cannot("usage_map_1GiB_sparse_per_call");
	KnVmUnmap(p, size);
}

/* KnPmmMdlMap + KnVmUnmap of a 64 MiB MDL, per pair. */
static void mdl_map_unmap(void)
{
	const unsigned rounds = 8;
	Handle h;
	void *va;
	unsigned failed = 0;

	if (KnPmmMdlCreate(REGION, RW, &h) != rcOk) {
		cannot("mdl_map_unmap_64MiB");
		return;
	}
	KnPmmMdlMap(h, 0, REGION, AT, RW, &va); /* warm the tables' frames */
	KnVmUnmap(va, REGION);
	uint64_t t0 = rdtsc();
	for (unsigned r = 0; r < rounds; r++) {
		failed += KnPmmMdlMap(h, 0, REGION, AT, RW, &va) != rcOk;
		failed += KnVmUnmap(va, REGION) != rcOk;
	}
	uint64_t t1 = rdtsc();
	if (!failed)
		report("mdl_map_unmap_64MiB", t1 - t0, rounds);
	else
		cannot("mdl_map_unmap_64MiB");
	KnHandleClose(h);
}

/* KnPmmMdlCreateFromBuf of a 64 MiB buffer: once with memory as it comes, once with every
 * free frame alone (a locked region takes all the memory the commit allows and gives back
 * every other page of it), so that the MDL is 16384 runs of one frame (SPEC §17). The
 * kernel walks the runs with a cursor: the second costs about what the first does. */
static void mdl_from_buf(void)
{
	const uint64_t every = 2;
	Handle h;
	KnMemStats st;
	uint8_t *buf = KnVmAllocate(RTL_NULL, REGION, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW);

	if (!buf) {
		cannot("mdl_from_buf_per_page");
		cannot("mdl_from_buf_fragmented_per_page");
		return;
	}
	for (uint64_t i = 0; i < REGION; i += PAGE)
		buf[i] = (uint8_t)(i >> 12);
	uint64_t t0 = rdtsc();
	Retcode rc = KnPmmMdlCreateFromBuf(buf, REGION, RW, &h);
	uint64_t t1 = rdtsc();
	if (rc == rcOk) {
		report("mdl_from_buf_per_page", t1 - t0, PAGES);
		KnHandleClose(h);
	} else {
		cannot("mdl_from_buf_per_page");
	}
	/* Fragment: every page the commit still allows, locked, then every other one back. (The
	 * kernel reserve stays free in large blocks, out of ring 3's reach; the MDL takes those
	 * first, then the lone frames.) */
	KnDebugGetStats(&st);
	if (st.totalPages > (1ull << 30) / PAGE) { /* (make bench takes the figures of its 256 MiB boot) */
		printf("bench: mdl_from_buf_fragmented_per_page is measured with 256 MiB of RAM only\n");
		KnVmUnmap(buf, REGION);
		return;
	}
	uint64_t room = MIN(st.commitLimit - st.commitCharge, st.freePages), slack = 1024; /* (tables, runs) */
	uint64_t take = room > slack ? (room - slack) & ~(every - 1) : 0;
	uint8_t *frag = take >= 2 * PAGES + 2 ? KnVmAllocate(RTL_NULL, take * PAGE,
							     VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW)
					      : RTL_NULL;
	uint64_t freed = 0;
	for (uint64_t i = 1; frag && i < take; i += every)
		freed += KnVmDecommit(frag + i * PAGE, PAGE) == rcOk;
	KnDebugGetStats(&st);
	if (frag && freed >= PAGES) {
		printf("bench: mdl_from_buf_fragmented: %llu of %llu free frames alone\n", (unsigned long long)freed,
		       (unsigned long long)st.freePages);
		t0 = rdtsc();
		rc = KnPmmMdlCreateFromBuf(buf, REGION, RW, &h);
		t1 = rdtsc();
		if (rc == rcOk) {
			report("mdl_from_buf_fragmented_per_page", t1 - t0, PAGES);
			KnHandleClose(h);
		} else {
			cannot("mdl_from_buf_fragmented_per_page");
		}
	} else {
		printf("bench: fragmenting took %llu pages, freed %llu, %llu free\n", (unsigned long long)take,
		       (unsigned long long)freed, (unsigned long long)st.freePages);
		cannot("mdl_from_buf_fragmented_per_page");
	}
	if (frag)
		KnVmUnmap(frag, take * PAGE);
	KnVmUnmap(buf, REGION);
}

/* The dump collector on a frozen task with an M MiB region and N resident pages: the time
 * from starting the collector to its exit, with its output going to the dump sink. */
static void dump_sparse(const char *figure, uint64_t mib, uint64_t n)
{
	char name[KN_TASK_NAME_MAX + 1];
	Handle target, collector, remote;
	int code = -1;

	ksnprintf(name, sizeof(name), "sparse:%llu:%llu", (unsigned long long)mib, (unsigned long long)n);
	if (KnTaskCreate(name, "actor", 0, &target) != rcOk) {
		cannot(figure);
		return;
	}
	KnTaskResume(target);
	KnTaskWait(target, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, ~0ull);
	uint64_t t0 = rdtsc();
	if (KnTaskCreate("dump:sparse", "collector", 0, &collector) == rcOk) {
		KnHandleTransfer(collector, target, KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_VM_READ, &remote);
		KnTaskResume(collector);
		KnTaskWait(collector, KN_TASK_STATE_EXITED, ~0ull);
		KnTaskGetExitCode(collector, &code);
		KnHandleClose(collector);
	}
	uint64_t t1 = rdtsc();
	if (code == 0)
		report(figure, t1 - t0, 1);
	else
		cannot(figure);
	KnTaskTerminate(target);
	KnHandleClose(target);
}

/* ------------------------------------------------------------------ SMP (bench-smp) */

#define UNMAP_RUNS 200
#define UNMAP_WARM 16
#define UNMAP_AT   ((uint8_t *)(uintptr_t)0x200000000ull) /* a 2 MiB window of its own */
#define SPINNERS   3

/* Mean, min and median of n samples: `bench NAME MEAN`, `bench NAME_min MIN`, `bench
 * NAME_median MEDIAN` (the median of an even count: the lower middle one). */
static void report_samples(const char *name, uint64_t *t, unsigned n)
{
	uint64_t sum = 0;
	for (unsigned i = 1; i < n; i++) /* (insertion sort: 200 samples) */
		for (unsigned j = i; j > 0 && t[j - 1] > t[j]; j--) {
			uint64_t x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	for (unsigned i = 0; i < n; i++)
		sum += t[i];
	char line[80];
	report(name, sum, n);
	ksnprintf(line, sizeof(line), "%s_min", name);
	report(line, t[0], 1);
	ksnprintf(line, sizeof(line), "%s_median", name);
	report(line, t[(n - 1) / 2], 1);
}

/* KnVmUnmap of a touched 1-page region, `runs` times after UNMAP_WARM unmeasured ones; a
 * resident anchor page in the same page table stays mapped throughout, so each unmap takes
 * the page and its region, not the tables (as munmap of one page among others would). */
static bool unmap_samples(uint64_t *t, unsigned runs)
{
	uint8_t *anchor = KnVmAllocate(UNMAP_AT + 64 * PAGE, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	if (!anchor)
		return false;
	anchor[0] = 1;
	bool ok = true;
	for (unsigned r = 0; r < UNMAP_WARM + runs && ok; r++) {
		volatile uint8_t *p = KnVmAllocate(UNMAP_AT, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
		if (!p)
			return false;
		p[0] = 1;
		uint64_t t0 = rdtsc();
		ok = KnVmUnmap((void *)p, PAGE) == rcOk;
		uint64_t t1 = rdtsc();
		if (r >= UNMAP_WARM)
			t[r - UNMAP_WARM] = t1 - t0;
	}
	KnVmUnmap(anchor, PAGE);
	return ok;
}

static volatile uint32_t spin_stop, spin_started, spin_done;

/* A thread pinned on CPU `arg` reading its own page in a loop with `pause` in it (under
 * -icount a vCPU that spins without pause keeps the budget until its next timer). */
static void spinner(void *arg)
{
	rtl_uint32_t cpu = (rtl_uint32_t)(uintptr_t)arg, now = ~0u, n;
	volatile uint64_t *mine = KnVmAllocate(RTL_NULL, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	KnThreadSetAffinity(0, 1ull << cpu);
	while (KnThreadGetCpu(&now, &n) == rcOk && now != cpu)
		KnThreadYield();
	if (mine)
		*mine = 1;
	__atomic_fetch_add(&spin_started, 1, __ATOMIC_SEQ_CST);
	while (!spin_stop) {
		if (mine)
			(void)*mine;
		__asm__ __volatile__("pause");
	}
	if (mine)
		KnVmUnmap((void *)mine, PAGE);
	__atomic_fetch_add(&spin_done, 1, __ATOMIC_SEQ_CST);
}

static void smp_unmap(void)
{
	static uint64_t t[UNMAP_RUNS];
	rtl_uint32_t cpu, ncpus = 0, tid;

	KnThreadGetCpu(&cpu, &ncpus);
	KnThreadSetAffinity(0, 1); /* the measuring thread on CPU 0 */
	while (KnThreadGetCpu(&cpu, &ncpus) == rcOk && cpu != 0)
		KnThreadYield();
	if (unmap_samples(t, UNMAP_RUNS))
		report_samples("unmap_1page_1cpu", t, UNMAP_RUNS);
	else
		cannot("unmap_1page_1cpu");

	if (ncpus < 1 + SPINNERS) {
		printf("bench: %u CPU(s) online, tlb_shootdown_unmap_4cpu needs %u\n", ncpus, 1 + SPINNERS);
		cannot("tlb_shootdown_unmap_4cpu");
		return;
	}
	uint8_t *stacks = KnVmAllocate(RTL_NULL, SPINNERS * 4 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	unsigned made = 0;
	for (unsigned i = 0; stacks && i < SPINNERS; i++)
		made += thread_create(spinner, (void *)(uintptr_t)(i + 1), stacks + (i + 1) * 4 * PAGE, &tid) == rcOk;
	while (spin_started < made)
		__asm__ __volatile__("pause");
	bool ok = made == SPINNERS && unmap_samples(t, UNMAP_RUNS);
	spin_stop = 1;
	while (spin_done < made)
		__asm__ __volatile__("pause");
	for (unsigned i = 0; i < 64; i++) /* (they return to KnThreadExit) */
		KnThreadYield();
	printf("bench: %u unmaps with %u spinning threads (%u of them timed); the kernel counts the shootdown "
	       "rounds of the whole program\n",
	       UNMAP_WARM + UNMAP_RUNS, made, UNMAP_RUNS);
	if (ok)
		report_samples("tlb_shootdown_unmap_4cpu", t, UNMAP_RUNS);
	else
		cannot("tlb_shootdown_unmap_4cpu");
}

int main(int argc, char **argv)
{
	if (argc > 0 && !strcmp(argv[0], "bench-smp")) {
		smp_unmap();
		return missing ? 1 : 0;
	}

	/* Warm the paths once on a small region, so the figures measure the steady state. */
	void *w = KnVmAllocate(AT, 1 << 20, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW);
	KnVmProtect(w, 1 << 20, VMM_FLAG_READ);
	KnVmUnmap(w, 1 << 20);

	syscall_null();
	lazy_fault();
	locked_protect_unmap();
	reserve_release();
	usage_map_sparse();
	mdl_map_unmap();
	mdl_from_buf();
	dump_sparse("dump_1GiB_sparse", 1024, 16);
	/* How it scales: the same 16 pages in 4 GiB; 16 times as many pages in 1 GiB. */
	dump_sparse("dump_4GiB_sparse", 4096, 16);
	dump_sparse("dump_1GiB_256_resident", 1024, 256);
	return missing ? 1 : 0;
}
