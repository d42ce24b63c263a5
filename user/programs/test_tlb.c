// SPDX-License-Identifier: MIT
/*
 * TLB coherence across CPUs (issue 16, SPEC §11: after KnVmUnmap or KnVmProtect returns, no
 * thread on any CPU can still reach the old mapping).
 *
 * A child task (this program, argv[0] "tlb-read" or "tlb-write", created KN_TASK_DUMPABLE)
 * runs two threads:
 *   A  pinned on CPU 1: reads (tlb-read) or writes (tlb-write) one page in a tight loop,
 *      counting each access that completed in a_count (a_count++ after the access);
 *   B  pinned on CPU 2 (CPU 0 with 2 CPUs): waits until A's count rises (A is looping, the
 *      page in CPU 1's TLB), then KnVmUnmap's the page (tlb-read) or KnVmProtect's it
 *      read-only (tlb-write), and reads a_count into b_count right after the call returns.
 * A's next access after B's return must fault; the fault freezes the child, and this
 * program reads both counts from the frozen child (KnTaskReadMemory: the child is this same
 * program, so its variables are at the addresses of ours) and the faulting thread's context
 * (a page fault at the page).
 *
 * The bound: every access A starts after B's call returned faults, so after that moment
 * a_count can still move by at most one: the increment of the one access that was under
 * way when the call returned and completed before it (its a_count++ may land after the
 * return). B reads a_count after the return, so b_count is at least a_count at the return,
 * and A's final count must be <= b_count + 1 (ALLOWANCE). A final count above that means A
 * made an access that started after B's call returned: a stale TLB entry.
 *
 * A's fault freezes the whole child, B too, wherever it is. When A faults while B's call is
 * still in the kernel (the shootdown done, the rest of the unmap under way: the usual case
 * of a tight loop and KnVmUnmap) or in the few instructions between its return and its b_rc
 * store (b_count is stored first), B is frozen before it recorded anything: such a run says
 * nothing (b_rc still UNSET) and is run again. So that runs do say something, A waits a
 * while between its accesses in some of them: the run r of a case waits DELAY(r % 4) loop turns
 * (0: the tight loop) after each access, long enough at the top for B to get back to ring 3
 * and record its count between two of A's accesses. A stale TLB entry is caught either way
 * (A would go on reading through it after B's return: its count runs past B's, or it never
 * faults and the child never freezes). Each case makes at most 4 * RUNS runs, until RUNS of
 * them said something or BUDGET TSC ticks passed (TCG on a loaded host can be slow), and
 * needs at least one that said something; every one that did must hold the bound. With
 * fewer than 2 CPUs online there is nothing to test: the cases are KTAP skips.
 */
#include <knlib.h>

#define PAGE       4096ull
#define RW         (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES_COM    (VMM_FLAG_RESERVE | VMM_FLAG_COMMIT)
#define RUNS       8
#define ALLOWANCE  1  /* see above */
#define RISE       16 /* A's count must rise this much before B acts (it loops, the page in its TLB) */
#define SECONDS(n) ((n)*1000000000ull)
#define BUDGET     60000000000ull                      /* TSC ticks a case may take (some 20 s) */
#define DELAY(k)   ((k) == 0 ? 0u : 256u << (2 * (k))) /* A's wait after each access: 0, 1 Ki, 4 Ki, 16 Ki */

/* The child's: read by the parent from the frozen child at the same addresses. */
static volatile uint64_t a_count, b_count, a_ready;
#define UNSET 0x7e57e57e /* b_rc before B recorded */
static volatile int64_t b_rc = UNSET;
static uint8_t *volatile page;
static unsigned delay; /* the child's: DELAY of the digit that ends its name */

static inline void cpu_relax(void) { __asm__ __volatile__("pause" ::: "memory"); }

static rtl_uint32_t current_cpu(void)
{
	rtl_uint32_t cpu = ~0u, n = 0;
	KnThreadGetCpu(&cpu, &n);
	return cpu;
}

/* Pins the caller on `cpu` and waits until it runs there. */
static void pin(rtl_uint32_t cpu)
{
	KnThreadSetAffinity(0, 1ull << cpu);
	while (current_cpu() != cpu)
		KnThreadYield();
}

static rtl_uint32_t a_cpu(void) { return 1; }
static rtl_uint32_t b_cpu(rtl_uint32_t ncpus) { return ncpus >= 3 ? 2 : 0; }

static void reader(void *arg)
{
	(void)arg;
	pin(a_cpu());
	a_ready = 1;
	for (;;) {
		(void)*(volatile uint64_t *)page;
		a_count++;
		for (volatile unsigned i = 0; i < delay; i++) /* (no pause: under TCG it gives the vCPU away) */
			;
	}
}

static void writer(void *arg)
{
	(void)arg;
	pin(a_cpu());
	a_ready = 1;
	for (uint64_t n = 1;; n++) {
		*(volatile uint64_t *)page = n;
		a_count++;
		for (volatile unsigned i = 0; i < delay; i++) /* (no pause: under TCG it gives the vCPU away) */
			;
	}
}

/* The child: B is its main thread. Its exit codes say what went wrong before the test. */
static int child(bool write)
{
	rtl_uint32_t cpu, ncpus = 0, tid;
	if (KnThreadGetCpu(&cpu, &ncpus) != rcOk || ncpus < 2)
		return 90;
	pin(b_cpu(ncpus));
	uint8_t *stack = KnVmAllocate(RTL_NULL, 4 * PAGE, RES_COM | RW);
	page = KnVmAllocate(RTL_NULL, PAGE, RES_COM | RW);
	if (!stack || !page)
		return 91;
	page[0] = 1;
	if (thread_create(write ? writer : reader, RTL_NULL, stack + 4 * PAGE, &tid) != rcOk)
		return 92;
	while (!a_ready)
		cpu_relax();
	uint64_t c0 = a_count;
	while (a_count < c0 + RISE)
		cpu_relax();
	Retcode rc = write ? KnVmProtect(page, PAGE, VMM_FLAG_READ) : KnVmUnmap(page, PAGE);
	b_count = a_count;
	b_rc = rc;
	for (;;) /* until A's fault freezes the task */
		cpu_relax();
}

/* ------------------------------------------------------------------ the parent */

static uint64_t peek(Handle h, const volatile void *addr)
{
	uint64_t v = ~0ull;
	rtl_size_t done = 0;
	if (KnTaskReadMemory(h, (const void *)addr, &v, sizeof(v), &done) != rcOk || done != sizeof(v))
		return ~0ull;
	return v;
}

static void run_case(bool write)
{
	const char *role = write ? "tlb-write" : "tlb-read";
	unsigned said[4] = { 0 };
	unsigned good = 0, frozen = 0, faulted = 0, rc_ok = 0;
	uint64_t worst = 0, total = 0;
	char why[128] = "";

	unsigned runs = 0, unrecorded = 0;
	uint64_t t0 = rdtsc();
	for (unsigned r = 0; runs < RUNS && r < 4 * RUNS && rdtsc() - t0 < BUDGET; r++) {
		Handle h;
		int state = 0;
		char name[16];
		ksnprintf(name, sizeof(name), "%s-%u", role, r % 4);
		Retcode rc = KnTaskCreate(name, "test_tlb", KN_TASK_DUMPABLE, &h);
		if (rc != rcOk) {
			ksnprintf(why, sizeof(why), "KnTaskCreate: rc %d", (int)rc);
			continue;
		}
		KnTaskResume(h);
		KnTaskWait(h, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, SECONDS(60));
		KnTaskGetState(h, &state);
		int64_t brc = state == KN_TASK_STATE_FROZEN ? (int64_t)peek(h, &b_rc) : 0;
		if (brc == UNSET) {
			unrecorded++; /* (frozen before B recorded its count: says nothing) */
		} else if (state == KN_TASK_STATE_FROZEN) {
			frozen++;
			uint64_t a = peek(h, &a_count), b = peek(h, &b_count), at = peek(h, &page);
			KnThreadContext ctx;
			bool pf = false;
			for (rtl_size_t i = 0; KnTaskGetThreadContext(h, i, &ctx) == rcOk; i++)
				pf |= ctx.exception == 14 && ctx.cr2 >= at && ctx.cr2 < at + PAGE;
			faulted += pf;
			rc_ok += brc == rcOk;
			if (pf && brc == rcOk && a <= b + ALLOWANCE) {
				good++;
				total += a;
			} else if (!why[0]) {
				ksnprintf(why, sizeof(why), "run %u: A %llu, B %llu, rc %lld, page fault %d", r,
					  (unsigned long long)a, (unsigned long long)b, (long long)brc, pf);
			}
			if (a > b && a - b > worst)
				worst = a - b;
		} else if (!why[0]) {
			int code = 0;
			KnTaskGetExitCode(h, &code);
			ksnprintf(why, sizeof(why), "run %u: state %d, exit code %d", r, state, code);
		}
		runs += brc != UNSET;
		said[r % 4] += brc != UNSET;
		KnTaskTerminate(h);
		KnHandleClose(h);
	}
	char name[96];
	ksnprintf(name, sizeof(name), "%s: the child froze on A's page fault, every run", write ? "protect" : "unmap");
	ktap_check(frozen == runs && faulted == runs && runs > 0, name, "%u runs, %u frozen, %u on the page: %s", runs,
		   frozen, faulted, why);
	ksnprintf(name, sizeof(name), "%s: B's call was rcOk", write ? "KnVmProtect read-only" : "KnVmUnmap");
	ktap_check(rc_ok == frozen, name, "%u of %u", rc_ok, frozen);
	ksnprintf(name, sizeof(name), "%s: A's count at its fault <= B's count + %d, every run",
		  write ? "write after protect" : "read after unmap", ALLOWANCE);
	ktap_check(good == runs && runs > 0, name, "%u of %u: %s", good, runs, why);
	printf("    # %s: A's count above B's by at most %llu; A made %llu accesses a run on average; %u runs "
	       "frozen before B recorded (run again); runs that said something by A's delay 0/%u/%u/%u: "
	       "%u/%u/%u/%u\n",
	       role, (unsigned long long)worst, (unsigned long long)(good ? total / good : 0), unrecorded, DELAY(1),
	       DELAY(2), DELAY(3), said[0], said[1], said[2], said[3]);
}

int main(int argc, char **argv)
{
	if (argc > 0 && !strncmp(argv[0], "tlb-", 4)) {
		size_t n = strlen(argv[0]);
		delay = DELAY((unsigned)(argv[0][n - 1] - '0') % 4);
		return child(!strncmp(argv[0], "tlb-write", 9));
	}
	ktap_start();
	rtl_uint32_t cpu = 0, ncpus = 0;
	KnThreadGetCpu(&cpu, &ncpus);
	if (ncpus < 2) {
		ktap_skip("tlb_coherence: unmap while another CPU reads", "fewer than 2 CPUs");
		ktap_skip("tlb_coherence: protect while another CPU writes", "fewer than 2 CPUs");
		ktap_done();
	}
	printf("    # A on CPU %u, B on CPU %u of %u\n", a_cpu(), b_cpu(ncpus), ncpus);
	stack_pregrow(16 * 1024);
	KnMemStats start = mem_stats();
	run_case(false);
	run_case(true);
	ktap_counters_back(&start, "every frame and page of charge back");
	ktap_done();
}
