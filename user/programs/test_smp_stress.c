// SPDX-License-Identifier: MIT
/*
 * A concurrency stress of the memory API (issue 16, SPEC §11): N threads of this task
 * (N = the CPUs online, at least 2 so that they interleave on one CPU too, at most
 * MAX_THREADS), each doing ITERATIONS operations chosen by its own xorshift64 generator
 * (seeded with SEED + its index), race on
 *   - private regions: each thread has a window of the address space no other thread uses
 *     (fixed addresses), where it allocates, commits, touches, protects, decommits, unmaps
 *     (whole, or the tail) regions and creates, maps twice, unmaps and closes MDLs, and
 *     queries and usage-maps what it made;
 *   - the shared region S: each thread owns a slice of SLICE pages it writes, checks,
 *     decommits and recommits; every thread queries any page of S and usage-maps all of it;
 *   - the shared region C of constant pages (written once before the threads start): every
 *     thread protects ranges of it read-only or read-write (splitting and merging its runs
 *     under the others) and reads its pages, which never change.
 * Each thread checks only what it can know whatever the others do: every return code
 * (exactly rcOk), the values it wrote read back, a page it decommitted reads zero after it
 * recommits it, a page it unmapped is free (KnVmQuery; no other thread allocates in its
 * window), KnVmQuery's state and protection of its own pages, the usage map of its own
 * pages (a page it wrote is used, a reserved one is not, the counts add up to the region),
 * S's and C's region bounds from any thread. At the end every region is gone and the free
 * pages and the commit charge are back where they started.
 *
 * Repeatable: the operations of a thread depend only on its seed (each checks its own
 * pages, whose state only it changes), so the same seed gives the same sequence on any
 * number of CPUs; the diagnostic line "# seed S checksum X" names it (X: the sum over the
 * threads of a hash of each thread's operations and arguments, independent of the order in
 * which the threads ran).
 */
#include <knlib.h>

#define PAGE        4096ull
#define RW          (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES         VMM_FLAG_RESERVE
#define COM         VMM_FLAG_COMMIT
#define SEED        0x5eed0001ull
#define MAX_THREADS 8
#define ITERATIONS  500 /* operations per thread */
#define SLOTS       3   /* private regions a thread may hold at once */
#define SLOT_PAGES  8   /* at most, each */
#define SLICE       8   /* pages of S each thread owns */
#define CPAGES      16  /* pages of C */
#define STACK       (16 * PAGE)

/* Fixed places, 2 MiB-aligned and far from what the kernel picks (aslr=off: low addresses). */
#define S_AT          ((uint8_t *)(uintptr_t)0x180000000ull)
#define C_AT          ((uint8_t *)(uintptr_t)0x190000000ull)
#define STACKS_AT     ((uint8_t *)(uintptr_t)0x1a0000000ull)
#define WINDOW(i)     ((uint8_t *)(uintptr_t)(0x200000000ull + (uint64_t)(i)*0x4000000ull))
#define SLOT_AT(i, j) (WINDOW(i) + (uint64_t)(j)*0x400000ull)
#define MDL_AT(i, v)  (WINDOW(i) + (uint64_t)(SLOTS + (v)) * 0x400000ull)

enum {
	OP_ALLOC,
	OP_WRITE,
	OP_READ,
	OP_DECOMMIT,
	OP_COMMIT,
	OP_PROTECT,
	OP_QUERY,
	OP_UNMAP_TAIL,
	OP_UNMAP,
	OP_MDL,
	OP_USAGE,
	OP_SLICE_WRITE,
	OP_SLICE_CHECK,
	OP_SLICE_DECOMMIT,
	OP_SHARED_LOOK,
	OP_CONST,
	OP_COUNT
};

/* What a thread knows of one of its pages: committed (else reserved), read-only, and the
 * word it last wrote at both ends of the page (0: nothing since the page was committed). */
struct page {
	uint64_t val;
	bool committed, ro;
};

struct slot {
	uint8_t *base; /* NULL: no region */
	unsigned n;
	struct page pg[SLOT_PAGES];
};

struct worker {
	unsigned idx;
	uint64_t rng, sum;
	unsigned fails;
	char why[160];
	struct slot slot[SLOTS];
	struct page slice[SLICE];
	unsigned ops[OP_COUNT];
};

static struct worker workers[MAX_THREADS];
static unsigned nthreads;
static volatile uint32_t finished;

static uint64_t next(struct worker *w)
{
	uint64_t x = w->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return w->rng = x;
}

static unsigned pick(struct worker *w, unsigned n) { return (unsigned)(next(w) % n); }

/* Folds an operation and its arguments into the thread's checksum. */
static void note(struct worker *w, unsigned op, uint64_t a, uint64_t b)
{
	w->ops[op]++;
	w->sum = (w->sum ^ (op + 1)) * 0x100000001b3ull;
	w->sum = (w->sum ^ a) * 0x100000001b3ull;
	w->sum = (w->sum ^ b) * 0x100000001b3ull;
}

/* The first failure is kept (the main thread reports it); the others are counted. */
__attribute__((format(printf, 2, 3))) static void fail(struct worker *w, const char *fmt, ...)
{
	if (w->fails++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		kvsnprintf(w->why, sizeof(w->why), fmt, ap);
		va_end(ap);
	}
}

static void expect_rc(struct worker *w, Retcode got, const char *what)
{
	if (got != rcOk)
		fail(w, "%s: rc %d, expected rcOk", what, (int)got);
}

static uint64_t rd(const uint8_t *p) { return *(const volatile uint64_t *)p; }
static void wr(uint8_t *p, uint64_t v) { *(volatile uint64_t *)p = v; }

/* A page's two words: both `v`. */
static void fill(uint8_t *p, uint64_t v)
{
	wr(p, v);
	wr(p + PAGE - 8, v);
}

static bool holds(const uint8_t *p, uint64_t v) { return rd(p) == v && rd(p + PAGE - 8) == v; }

/* A value to write: never 0, tagged with the thread. */
static uint64_t value(struct worker *w) { return (next(w) | 1) ^ ((uint64_t)w->idx << 56); }

static void query_page(struct worker *w, const uint8_t *p, const struct page *m, const uint8_t *base, unsigned n,
		       const char *what)
{
	KnVmInfo i;
	Retcode rc = KnVmQuery(p, &i);
	if (rc != rcOk) {
		fail(w, "%s: KnVmQuery rc %d", what, (int)rc);
		return;
	}
	int state = m->committed ? VMM_STATE_COMMITTED : VMM_STATE_RESERVED;
	int prot = m->ro ? VMM_FLAG_READ : RW;
	if (i.state != state || (i.flags & VMM_FLAG_RWX_MASK) != prot || i.regionBase != base ||
	    i.regionSize != n * PAGE || (m->committed && m->val && !i.resident) || (!m->committed && i.resident))
		fail(w,
		     "%s: KnVmQuery of %p: state %d flags %#x resident %d region %p+%#llx, expected state %d prot %#x",
		     what, (const void *)p, i.state, i.flags, i.resident, i.regionBase,
		     (unsigned long long)i.regionSize, state, prot);
}

static void expect_free(struct worker *w, const uint8_t *p, const char *what)
{
	KnVmInfo i;
	if (KnVmQuery(p, &i) != rcOk || i.state != VMM_STATE_FREE)
		fail(w, "%s: %p not free (state %d)", what, (const void *)p, i.state);
}

/* The usage map of a region of n pages: the counts add up to n, and `used(k)` pages must be
 * used, `unused(k)` pages must not be (others: either). */
static void usage_check(struct worker *w, const uint8_t *base, unsigned n, const struct page *pg, unsigned first,
			unsigned count, const char *what)
{
	rtl_size_t counters[2 * 64], got = 0;
	rtl_bool first_used;
	unsigned page = 0;
	Retcode rc = KnPmmMdlGetUsageMap(base, 0, counters, 2 * 64, &first_used, &got);
	if (rc != rcOk) {
		fail(w, "%s: usage map rc %d", what, (int)rc);
		return;
	}
	bool used = first_used;
	for (rtl_size_t c = 0; c < got; c++, used = !used) {
		for (rtl_size_t k = 0; k < counters[c]; k++, page++) {
			if (page >= first && page < first + count) {
				const struct page *m = &pg[page - first];
				if ((m->committed && m->val && !used) || (!m->committed && used))
					fail(w, "%s: usage map says page %u %s", what, page, used ? "used" : "unused");
			}
		}
	}
	if (page != n)
		fail(w, "%s: usage map counts %u pages of %u", what, page, n);
}

/* ------------------------------------------------------------------ private regions */

static struct slot *some_region(struct worker *w)
{
	struct slot *s = &w->slot[pick(w, SLOTS)];
	return s->base ? s : RTL_NULL;
}

static void op_alloc(struct worker *w, unsigned j)
{
	struct slot *s = &w->slot[j];
	unsigned n = 1 + pick(w, SLOT_PAGES);
	bool commit = pick(w, 2);
	note(w, OP_ALLOC, j, n * 2 + commit);
	void *out = RTL_NULL;
	Retcode rc = KnVmAllocateEx(SLOT_AT(w->idx, j), n * PAGE, RES | RW | (commit ? COM : 0), &out);
	if (rc != rcOk || out != SLOT_AT(w->idx, j)) {
		fail(w, "KnVmAllocateEx of %u pages at slot %u: rc %d at %p", n, j, (int)rc, out);
		return;
	}
	s->base = out;
	s->n = n;
	for (unsigned k = 0; k < n; k++)
		s->pg[k] = (struct page){ .committed = commit };
}

static void op_private(struct worker *w, unsigned op)
{
	struct slot *s = some_region(w);
	if (!s) {
		for (unsigned j = 0; j < SLOTS; j++)
			if (!w->slot[j].base) {
				op_alloc(w, j);
				return;
			}
		return;
	}
	unsigned a = pick(w, s->n), len = 1 + pick(w, s->n - a);
	struct page *m = &s->pg[a];
	uint8_t *p = s->base + a * PAGE;
	note(w, op, (uintptr_t)p, len);
	switch (op) {
	case OP_WRITE:
		if (m->committed && !m->ro) {
			m->val = value(w);
			fill(p, m->val);
		}
		break;
	case OP_READ:
		if (m->committed && !holds(p, m->val))
			fail(w, "read %p: %#llx, wrote %#llx", (void *)p, (unsigned long long)rd(p),
			     (unsigned long long)m->val);
		break;
	case OP_DECOMMIT:
		expect_rc(w, KnVmDecommit(p, len * PAGE), "KnVmDecommit");
		for (unsigned k = 0; k < len; k++)
			m[k].committed = false, m[k].val = 0;
		break;
	case OP_COMMIT:
		expect_rc(w, KnVmCommit(p, len * PAGE, COM), "KnVmCommit");
		for (unsigned k = 0; k < len; k++) {
			if (!m[k].committed && !m[k].ro && !holds(p + k * PAGE, 0))
				fail(w, "a page decommitted and committed again does not read zero: %p",
				     (void *)(p + k * PAGE));
			m[k].committed = true;
		}
		break;
	case OP_PROTECT: {
		bool ro = pick(w, 2);
		expect_rc(w, KnVmProtect(p, len * PAGE, ro ? VMM_FLAG_READ : RW), "KnVmProtect");
		for (unsigned k = 0; k < len; k++)
			m[k].ro = ro;
		break;
	}
	case OP_QUERY:
		for (unsigned k = 0; k < len; k++)
			query_page(w, p + k * PAGE, &m[k], s->base, s->n, "private");
		break;
	case OP_USAGE:
		usage_check(w, s->base, s->n, s->pg, 0, s->n, "private");
		break;
	case OP_UNMAP_TAIL:
		if (a == 0)
			break; /* (the whole region: OP_UNMAP) */
		len = s->n - a;
		expect_rc(w, KnVmUnmap(p, len * PAGE), "KnVmUnmap (the tail)");
		s->n = a;
		for (unsigned k = 0; k < len; k++)
			expect_free(w, p + k * PAGE, "unmapped tail");
		break;
	case OP_UNMAP:
		expect_rc(w, KnVmUnmap(s->base, s->n * PAGE), "KnVmUnmap");
		for (unsigned k = 0; k < s->n; k++)
			expect_free(w, s->base + k * PAGE, "unmapped region");
		s->base = RTL_NULL;
		break;
	}
}

/* An MDL of 1..4 pages mapped twice: what one view writes the other reads; then both
 * unmapped (free) and the handle closed. */
static void op_mdl(struct worker *w)
{
	unsigned n = 1 + pick(w, 4);
	uint64_t v = value(w);
	Handle h;
	void *a = RTL_NULL, *b = RTL_NULL;
	note(w, OP_MDL, n, v);
	Retcode rc = KnPmmMdlCreate(n * PAGE, RW, &h);
	if (rc != rcOk) {
		fail(w, "KnPmmMdlCreate: rc %d", (int)rc);
		return;
	}
	expect_rc(w, KnPmmMdlMap(h, 0, n * PAGE, MDL_AT(w->idx, 0), RW, &a), "KnPmmMdlMap (first view)");
	expect_rc(w, KnPmmMdlMap(h, 0, n * PAGE, MDL_AT(w->idx, 1), VMM_FLAG_READ, &b), "KnPmmMdlMap (second view)");
	if (a == MDL_AT(w->idx, 0) && b == MDL_AT(w->idx, 1)) {
		for (unsigned k = 0; k < n; k++) {
			if (!holds((uint8_t *)b + k * PAGE, 0))
				fail(w, "a new MDL's page is not zero");
			fill((uint8_t *)a + k * PAGE, v + k);
		}
		for (unsigned k = 0; k < n; k++)
			if (!holds((uint8_t *)b + k * PAGE, v + k))
				fail(w, "the second view of an MDL does not see the first's writes");
	}
	expect_rc(w, KnVmUnmap(MDL_AT(w->idx, 0), n * PAGE), "KnVmUnmap (an MDL view)");
	bool early = pick(w, 2); /* the handle closed while a view is still mapped, or after both */
	if (early)
		expect_rc(w, KnHandleClose(h), "KnHandleClose (the MDL, one view still mapped)");
	expect_rc(w, KnVmUnmap(MDL_AT(w->idx, 1), n * PAGE), "KnVmUnmap (the other view)");
	if (!early)
		expect_rc(w, KnHandleClose(h), "KnHandleClose (the MDL)");
	expect_free(w, MDL_AT(w->idx, 0), "an unmapped MDL view");
	expect_free(w, MDL_AT(w->idx, 1), "an unmapped MDL view");
}

/* ------------------------------------------------------------------ the shared regions */

static unsigned s_pages(void) { return nthreads * SLICE; }

/* The thread's own slice of S: write, check, decommit, (re)commit. */
static void op_slice(struct worker *w, unsigned op)
{
	unsigned a = pick(w, SLICE), len = 1 + pick(w, SLICE - a);
	struct page *m = &w->slice[a];
	uint8_t *p = S_AT + (w->idx * SLICE + a) * PAGE;
	note(w, op, a, len);
	switch (op) {
	case OP_SLICE_WRITE:
		if (!m->committed) {
			expect_rc(w, KnVmCommit(p, PAGE, COM), "KnVmCommit (own slice of S)");
			if (!holds(p, 0))
				fail(w, "a page of S decommitted and committed again does not read zero");
			m->committed = true;
		}
		m->val = value(w);
		fill(p, m->val);
		break;
	case OP_SLICE_CHECK:
		for (unsigned k = 0; k < len; k++) {
			if (m[k].committed && !holds(p + k * PAGE, m[k].val))
				fail(w, "own slice of S: page %u reads %#llx, wrote %#llx", a + k,
				     (unsigned long long)rd(p + k * PAGE), (unsigned long long)m[k].val);
			query_page(w, p + k * PAGE, &m[k], S_AT, s_pages(), "own slice of S");
		}
		break;
	case OP_SLICE_DECOMMIT:
		expect_rc(w, KnVmDecommit(p, len * PAGE), "KnVmDecommit (own slice of S)");
		for (unsigned k = 0; k < len; k++)
			m[k] = (struct page){ 0 };
		break;
	}
}

/* Any page of S (another thread's, as likely as not): its region and a state it may have;
 * the usage map of all of S, checked on the thread's own slice. */
static void op_shared_look(struct worker *w)
{
	unsigned k = pick(w, s_pages());
	KnVmInfo i;
	note(w, OP_SHARED_LOOK, k, 0);
	Retcode rc = KnVmQuery(S_AT + k * PAGE, &i);
	if (rc != rcOk || i.regionBase != S_AT || i.regionSize != s_pages() * PAGE ||
	    (i.state != VMM_STATE_COMMITTED && i.state != VMM_STATE_RESERVED) || (i.flags & VMM_FLAG_RWX_MASK) != RW)
		fail(w, "KnVmQuery of page %u of S: rc %d state %d flags %#x region %p+%#llx", k, (int)rc, i.state,
		     i.flags, i.regionBase, (unsigned long long)i.regionSize);
	usage_check(w, S_AT, s_pages(), w->slice, w->idx * SLICE, SLICE, "S");
}

/* C: constant pages every thread reads while any protects ranges of it R or RW. */
static uint64_t c_value(unsigned k) { return 0xc0c0c0c000000000ull + k; }

static void op_const(struct worker *w)
{
	unsigned a = pick(w, CPAGES), len = 1 + pick(w, CPAGES - a);
	bool ro = pick(w, 2);
	note(w, OP_CONST, a * 64 + len, ro);
	expect_rc(w, KnVmProtect(C_AT + a * PAGE, len * PAGE, ro ? VMM_FLAG_READ : RW), "KnVmProtect (C)");
	for (unsigned k = 0; k < CPAGES; k += 1 + pick(w, 4))
		if (!holds(C_AT + k * PAGE, c_value(k)))
			fail(w, "page %u of C reads %#llx", k, (unsigned long long)rd(C_AT + k * PAGE));
	KnVmInfo i;
	Retcode rc = KnVmQuery(C_AT + a * PAGE, &i);
	int prot = i.flags & VMM_FLAG_RWX_MASK;
	if (rc != rcOk || i.regionBase != C_AT || i.regionSize != CPAGES * PAGE || i.state != VMM_STATE_COMMITTED ||
	    !i.resident || (prot != VMM_FLAG_READ && prot != RW))
		fail(w, "KnVmQuery of C: rc %d state %d resident %d flags %#x", (int)rc, i.state, i.resident, i.flags);
}

/* ------------------------------------------------------------------ the threads */

static void work(void *arg)
{
	struct worker *w = arg;
	for (unsigned it = 0; it < ITERATIONS; it++) {
		unsigned op = pick(w, OP_COUNT);
		switch (op) {
		case OP_ALLOC: {
			unsigned j = pick(w, SLOTS);
			if (!w->slot[j].base)
				op_alloc(w, j);
			else
				op_private(w, OP_UNMAP);
			break;
		}
		case OP_MDL:
			op_mdl(w);
			break;
		case OP_SLICE_WRITE:
		case OP_SLICE_CHECK:
		case OP_SLICE_DECOMMIT:
			op_slice(w, op);
			break;
		case OP_SHARED_LOOK:
			op_shared_look(w);
			break;
		case OP_CONST:
			op_const(w);
			break;
		default:
			op_private(w, op);
		}
	}
	/* Every private region released, and its window free. */
	for (unsigned j = 0; j < SLOTS; j++) {
		struct slot *s = &w->slot[j];
		if (s->base)
			expect_rc(w, KnVmUnmap(s->base, s->n * PAGE), "KnVmUnmap (the end)");
		s->base = RTL_NULL;
		expect_free(w, SLOT_AT(w->idx, j), "a slot at the end");
	}
	__atomic_fetch_add(&finished, 1, __ATOMIC_SEQ_CST);
}

int main(void)
{
	ktap_start();
	stack_pregrow(16 * 1024);
	rtl_uint32_t cpu = 0, ncpus = 0;
	ktap_rc(KnThreadGetCpu(&cpu, &ncpus), rcOk, "KnThreadGetCpu");
	nthreads = ncpus < 2 ? 2 : ncpus > MAX_THREADS ? MAX_THREADS : ncpus;
	printf("    # %u CPUs, %u threads of %u operations, seed %#llx\n", ncpus, nthreads, ITERATIONS,
	       (unsigned long long)SEED);
	uint64_t threads = threads_settled(mem_stats().threads);
	KnMemStats start = mem_stats();

	uint8_t *s = KnVmAllocate(S_AT, s_pages() * PAGE, RES | COM | RW);
	uint8_t *c = KnVmAllocate(C_AT, CPAGES * PAGE, RES | COM | RW);
	uint8_t *stacks = KnVmAllocate(STACKS_AT, nthreads * STACK, RES | COM | RW);
	if (!ktap_check(s == S_AT && c == C_AT && stacks == STACKS_AT, "the shared regions and the stacks", NULL))
		ktap_done();
	for (unsigned k = 0; k < CPAGES; k++)
		fill(c + k * PAGE, c_value(k));

	unsigned made = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		rtl_uint32_t tid;
		workers[i] = (struct worker){ .idx = i, .rng = SEED + i + 1 };
		for (unsigned k = 0; k < SLICE; k++)
			workers[i].slice[k].committed = true; /* (S is committed whole) */
		made += thread_create(work, &workers[i], stacks + (i + 1) * STACK, &tid) == rcOk;
	}
	ktap_check(made == nthreads, "KnThreadCreate: the workers", "%u of %u", made, nthreads);
	while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) < made)
		KnThreadYield();
	ktap_check(threads_settled(threads) == threads, "every worker ended", NULL);

	uint64_t sum = 0, ops[OP_COUNT] = { 0 };
	for (unsigned i = 0; i < nthreads; i++) {
		struct worker *w = &workers[i];
		char name[48];
		ksnprintf(name, sizeof(name), "thread %u: every check held", i);
		ktap_check(w->fails == 0, name, "%u failures, the first: %s", w->fails, w->why);
		sum += w->sum;
		for (unsigned op = 0; op < OP_COUNT; op++)
			ops[op] += w->ops[op];
	}
	printf("    # seed %#llx checksum %#llx\n", (unsigned long long)SEED, (unsigned long long)sum);
	printf("    # operations: alloc %llu write %llu read %llu decommit %llu commit %llu protect %llu query %llu "
	       "unmap-tail %llu unmap %llu mdl %llu usage %llu slice %llu/%llu/%llu shared %llu const %llu\n",
	       (unsigned long long)ops[0], (unsigned long long)ops[1], (unsigned long long)ops[2],
	       (unsigned long long)ops[3], (unsigned long long)ops[4], (unsigned long long)ops[5],
	       (unsigned long long)ops[6], (unsigned long long)ops[7], (unsigned long long)ops[8],
	       (unsigned long long)ops[9], (unsigned long long)ops[10], (unsigned long long)ops[11],
	       (unsigned long long)ops[12], (unsigned long long)ops[13], (unsigned long long)ops[14],
	       (unsigned long long)ops[15]);

	/* S: each slice holds what its owner last wrote. */
	bool slices = true;
	for (unsigned i = 0; i < nthreads; i++)
		for (unsigned k = 0; k < SLICE; k++) {
			const struct page *m = &workers[i].slice[k];
			slices &= !m->committed || holds(S_AT + (i * SLICE + k) * PAGE, m->val);
		}
	ktap_check(slices, "every slice of S holds what its owner wrote last", NULL);
	ktap_rc(KnVmUnmap(s, s_pages() * PAGE), rcOk, "KnVmUnmap S");
	ktap_rc(KnVmUnmap(c, CPAGES * PAGE), rcOk, "KnVmUnmap C");
	ktap_rc(KnVmUnmap(stacks, nthreads * STACK), rcOk, "KnVmUnmap the stacks");
	KnVmInfo i;
	bool gone = true;
	for (unsigned t = 0; t < nthreads; t++)
		for (unsigned j = 0; j < SLOTS + 2; j++)
			gone &= KnVmQuery(SLOT_AT(t, j), &i) == rcOk && i.state == VMM_STATE_FREE;
	gone &= KnVmQuery(S_AT, &i) == rcOk && i.state == VMM_STATE_FREE;
	ktap_check(gone, "every region released", NULL);
	ktap_counters_back(&start, "free pages and commit charge back to their start");
	ktap_done();
}
