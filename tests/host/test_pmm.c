// SPDX-License-Identifier: MIT
/*
 * The physical allocator against a model, on simulated memory maps (holes, reserved ranges,
 * odd sizes, a map above 4 GiB only, one straddling 4 GiB), under ASan and UBSan.
 * After every step of a seeded random sequence of alloc / free / contiguous / claim /
 * exhaustion, the free lists must partition exactly the frames the model says are free.
 * Several CPUs (the lock layer's CPU-number hook pointed at a variable, or threads acting as
 * CPUs): frames freed on another CPU, remote caches drained before an allocation fails,
 * counts exact.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <knmm/ktest.h>
#include "shim/pmm_sim.h"

#define LOW_END PMM_ZONE_LOW_END_PFN

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* The CPU the allocator and the locks see in the tests of several CPUs (below), and how many
 * CPUs the model's steps switch among. */
static __thread unsigned sim_cpu;
static unsigned model_cpus = 1;

/* ------------------------------------------------------------------ the model */

enum { M_FREE = 0, M_USED = 1, M_BOOT = 2, M_HOLE = 3 };

struct live {
	uint64_t pfn, npages;
	unsigned order;
	int kind; /* 0: block, 1: contiguous, 2: claimed range */
};

struct model {
	struct pmm_sim sim;
	uint64_t base, span; /* the arrays cover pfns [base, base + span) */
	uint8_t *state_mem, *mark_mem;
	uint8_t *state; /* per pfn: state[pfn] (pointer offset by -base) */
	uint8_t *mark;  /* scratch for the partition check */
	uint64_t free;
	struct live *live;
	unsigned nr_live, cap;
	uint64_t initial_blocks[PMM_NR_ZONES][PMM_NR_ORDERS];
};

static bool model_create(struct model *m, const struct pmm_range *ram, unsigned nr, const struct pmm_range *res,
			 unsigned nres, bool poison)
{
	memset(m, 0, sizeof(*m));
	if (!sim_create(&m->sim, ram, nr, res, nres, poison, true))
		return false;
	m->base = ram[0].start;
	m->span = m->sim.max_pfn - m->base;
	m->state_mem = malloc(m->span);
	m->mark_mem = malloc(m->span);
	m->state = m->state_mem - m->base;
	m->mark = m->mark_mem - m->base;
	m->cap = 1 << 16;
	m->live = malloc(m->cap * sizeof(*m->live));
	for (uint64_t p = m->base; p < m->sim.max_pfn; p++) {
		m->state[p] = !sim_pfn_is_ram(&m->sim, p) ? M_HOLE : sim_pfn_is_reserved(&m->sim, p) ? M_BOOT : M_FREE;
		m->free += m->state[p] == M_FREE;
	}
	struct pmm_stats st;
	pmm_get_stats(m->sim.pm, &st);
	memcpy(m->initial_blocks, st.free_blocks, sizeof(st.free_blocks));
	return true;
}

static void model_destroy(struct model *m)
{
	sim_destroy(&m->sim);
	free(m->state_mem);
	free(m->mark_mem);
	free(m->live);
}

/* The free lists and cache hold exactly the model's free frames, each once. */
static bool model_check(struct model *m, char *why, size_t size)
{
	struct pmm *pm = m->sim.pm;

	if (!pmm_check(pm, why, size))
		return false;
	if (pmm_free_pages_in(pm) != m->free) {
		snprintf(why, size, "allocator says %llu free, model %llu", (unsigned long long)pmm_free_pages_in(pm),
			 (unsigned long long)m->free);
		return false;
	}
	memset(m->mark_mem, 0, m->span);
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++) {
			struct list_head *pos;
			list_for_each(pos, &pm->zone[z].free[o]) {
				uint64_t pfn = pmm_pfn(pm, list_entry(pos, struct page, lru));
				for (uint64_t i = 0; i < (1ull << o); i++) {
					if (pfn + i < m->base || pfn + i >= m->sim.max_pfn || m->mark[pfn + i]++) {
						snprintf(why, size, "frame %llu listed twice or outside the map",
							 (unsigned long long)(pfn + i));
						return false;
					}
				}
			}
		}
	for (unsigned c = 0; c < SPIN_MAX_CPUS; c++)
		for (struct page *p = pm->pcp[c].head; p;
		     p = p->lru.next ? list_entry(p->lru.next, struct page, lru) : NULL)
			if (m->mark[pmm_pfn(pm, p)]++) {
				snprintf(why, size, "cached frame %llu also listed or cached twice",
					 (unsigned long long)pmm_pfn(pm, p));
				return false;
			}
	for (uint64_t p = m->base; p < m->sim.max_pfn; p++)
		if ((m->state[p] == M_FREE) != (m->mark[p] == 1)) {
			snprintf(why, size, "frame %llu: model %s, allocator %s", (unsigned long long)p,
				 m->state[p] == M_FREE ? "free" : "in use", m->mark[p] ? "free" : "in use");
			return false;
		}
	return true;
}

/* Records an allocation: every frame must be RAM the model has free. */
static bool model_take(struct model *m, uint64_t pfn, uint64_t n, unsigned order, int kind, char *why, size_t size)
{
	for (uint64_t i = 0; i < n; i++)
		if (pfn + i < m->base || pfn + i >= m->sim.max_pfn || m->state[pfn + i] != M_FREE) {
			snprintf(why, size, "frame %llu handed out but not free", (unsigned long long)(pfn + i));
			return false;
		}
	memset(m->state + pfn, M_USED, n);
	m->free -= n;
	m->live[m->nr_live++] = (struct live){ pfn, n, order, kind };
	return true;
}

static void model_release(struct model *m, unsigned idx)
{
	struct live l = m->live[idx];
	struct pmm *pm = m->sim.pm;

	if (l.kind == 0)
		pmm_free_in(pm, pmm_page(pm, l.pfn), l.order);
	else
		pmm_free_contig_in(pm, pmm_page(pm, l.pfn), l.npages);
	memset(m->state + l.pfn, M_FREE, l.npages);
	m->free += l.npages;
	m->live[idx] = m->live[--m->nr_live];
}

static void model_release_all(struct model *m)
{
	while (m->nr_live)
		model_release(m, m->nr_live - 1);
	pmm_drain_pcp(m->sim.pm);
}

/* One random step; false with a reason on any disagreement. */
static bool model_step(struct model *m, char *why, size_t size)
{
	struct pmm *pm = m->sim.pm;
	if (model_cpus > 1 && rnd_below(8) == 0)
		sim_cpu = (unsigned)rnd_below(model_cpus);
	unsigned op = (unsigned)rnd_below(100);

	if (op < 40 && m->nr_live < m->cap) {
		unsigned order = (unsigned)(rnd_below(4) ? rnd_below(3) : rnd_below(8));
		unsigned flags = rnd_below(4) == 0 ? PMM_LOW : 0;
		struct page *p = pmm_alloc_in(pm, order, flags, PAGE_ANON);
		if (!p) {
			if (order == 0 && !(flags & PMM_LOW) && m->free != 0) {
				snprintf(why, size, "order-0 allocation failed with %llu frames free",
					 (unsigned long long)m->free);
				return false;
			}
			return true;
		}
		uint64_t pfn = pmm_pfn(pm, p);
		if (pfn & ((1ull << order) - 1)) {
			snprintf(why, size, "order-%u block at misaligned pfn %llu", order, (unsigned long long)pfn);
			return false;
		}
		if ((flags & PMM_LOW) && pfn + (1ull << order) > LOW_END) {
			snprintf(why, size, "PMM_LOW block above 4 GiB (pfn %llu)", (unsigned long long)pfn);
			return false;
		}
		if (p->state != PAGE_ANON || p->refcount != 1 || p->order != order) {
			snprintf(why, size, "descriptor of a new block is wrong");
			return false;
		}
		return model_take(m, pfn, 1ull << order, order, 0, why, size);
	}
	if (op < 75 && m->nr_live) {
		model_release(m, (unsigned)rnd_below(m->nr_live));
		return true;
	}
	if (op < 85 && m->nr_live < m->cap) {
		uint64_t n = 1 + rnd_below(rnd_below(2) ? 8 : 300);
		uint64_t align = 1ull << rnd_below(7);
		uint64_t limit = rnd_below(2) ? m->sim.max_pfn : m->base + rnd_below(m->span + 1);
		struct page *p = pmm_alloc_contig_in(pm, n, align, limit << PAGE_SHIFT, 0, PAGE_KERNEL);
		if (!p)
			return true;
		uint64_t pfn = pmm_pfn(pm, p);
		if ((pfn & (align - 1)) || pfn + n > limit) {
			snprintf(why, size, "contiguous %llu@%llu at pfn %llu breaks alignment or limit %llu",
				 (unsigned long long)n, (unsigned long long)align, (unsigned long long)pfn,
				 (unsigned long long)limit);
			return false;
		}
		for (uint64_t i = 0; i < n; i++)
			if (p[i].state != PAGE_KERNEL || p[i].order != 0 || p[i].refcount != 1) {
				snprintf(why, size, "contiguous frame %llu has a wrong descriptor",
					 (unsigned long long)(pfn + i));
				return false;
			}
		return model_take(m, pfn, n, 0, 1, why, size);
	}
	if (op < 95 && m->nr_live < m->cap) {
		uint64_t n = 1 + rnd_below(40), pfn = m->base + rnd_below(m->span);
		bool all_free = pfn + n <= m->sim.max_pfn, all_ram = all_free;
		for (uint64_t i = 0; all_ram && i < n; i++) {
			all_ram = m->state[pfn + i] != M_HOLE;
			all_free = all_free && m->state[pfn + i] == M_FREE;
		}
		uint64_t before = pmm_free_pages_in(pm);
		Retcode rc = pmm_claim_in(pm, pfn << PAGE_SHIFT, n, PAGE_KERNEL);
		Retcode want = !all_ram ? rcNotFound : all_free ? rcOk : rcBusy;
		if (rc != want) {
			snprintf(why, size, "claim of %llu frames at %llu returned %d, expected %d",
				 (unsigned long long)n, (unsigned long long)pfn, rc, want);
			return false;
		}
		if (rc != rcOk)
			return before == pmm_free_pages_in(pm);
		return model_take(m, pfn, n, 0, 2, why, size);
	}
	if (op < 99) {
		pmm_drain_pcp(pm);
		return true;
	}
	/* Exhaustion (1 step in 100): everything, order 0, then recovery. */
	unsigned first = m->nr_live;
	struct page *p;
	while (m->nr_live < m->cap && (p = pmm_alloc_in(pm, 0, 0, PAGE_ANON)) != NULL)
		if (!model_take(m, pmm_pfn(pm, p), 1, 0, 0, why, size))
			return false;
	if (m->nr_live < m->cap && (m->free != 0 || pmm_free_pages_in(pm) != 0)) {
		snprintf(why, size, "exhausted allocator still counts %llu free",
			 (unsigned long long)pmm_free_pages_in(pm));
		return false;
	}
	if (m->nr_live < m->cap && pmm_alloc_in(pm, 0, PMM_LOW, PAGE_ANON)) {
		snprintf(why, size, "allocation succeeded after exhaustion");
		return false;
	}
	while (m->nr_live > first)
		model_release(m, m->nr_live - 1);
	return true;
}

static void run_model(struct ktest_ctx *t, const struct pmm_range *ram, unsigned nr, const struct pmm_range *res,
		      unsigned nres, uint64_t seed, unsigned steps)
{
	struct model m;
	char why[200] = "";

	rng_state = seed;
	KT_ASSERT(model_create(&m, ram, nr, res, nres, true));
	struct pmm *pm = m.sim.pm;
	KT_EXPECT(model_check(&m, why, sizeof(why)));

	/* Only block heads and boot-reserved frames have descriptors written at setup. */
	uint64_t written = 0, expected = 0;
	for (uint64_t p = 0; p < m.sim.max_pfn; p++)
		written += !sim_descriptor_untouched(&m.sim, p);
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
			expected += m.initial_blocks[z][o];
	for (uint64_t p = m.base; p < m.sim.max_pfn; p++)
		expected += m.state[p] == M_BOOT;
	KT_EXPECT_EQ(written, expected);

	unsigned step;
	for (step = 0; step < steps; step++)
		if (!model_step(&m, why, sizeof(why)) || !model_check(&m, why, sizeof(why)))
			break;
	if (step < steps)
		ktest_fail(t, __FILE__, __LINE__, "seed %llu step %u: %s", (unsigned long long)seed, step, why);

	/* Freeing everything restores the maximal blocks the allocator started with. */
	model_release_all(&m);
	KT_EXPECT(model_check(&m, why, sizeof(why)));
	struct pmm_stats st;
	pmm_get_stats(pm, &st);
	KT_EXPECT(memcmp(st.free_blocks, m.initial_blocks, sizeof(st.free_blocks)) == 0);
	/* Descriptors of holes were never read or written. */
	uint64_t hole_touched = 0;
	for (uint64_t p = 0; p < m.sim.max_pfn; p++)
		if ((p < m.base || m.state[p] == M_HOLE) && !sim_descriptor_untouched(&m.sim, p))
			hole_touched++;
	KT_EXPECT_EQ(hole_touched, 0);
	model_destroy(&m);
}

KTEST(pmm, model_holes_and_reserved_ranges)
{
	static const struct pmm_range ram[] = { { 1, 2000 }, { 2085, 9000 }, { 12345, 20000 } };
	static const struct pmm_range res[] = { { 100, 150 }, { 5000, 5003 }, { 19999, 20000 } };
	run_model(t, ram, 3, res, 3, 1, 3000);
	run_model(t, ram, 3, res, 3, 0x9e3779b97f4a7c15ull, 3000);
}

KTEST(pmm, model_odd_sizes)
{
	static const struct pmm_range ram[] = { { 3, 4 }, { 7, 10 }, { 11, 1030 }, { 1031, 1032 }, { 4097, 8191 } };
	run_model(t, ram, 5, NULL, 0, 7, 3000);
}

KTEST(pmm, model_above_4g_only)
{
	static const struct pmm_range ram[] = { { LOW_END + 3, LOW_END + 15000 } };
	run_model(t, ram, 1, NULL, 0, 11, 3000);
}

KTEST(pmm, model_straddling_4g)
{
	static const struct pmm_range ram[] = { { LOW_END - 5000, LOW_END + 7000 } };
	static const struct pmm_range res[] = { { LOW_END - 10, LOW_END + 10 } };
	run_model(t, ram, 1, res, 1, 13, 3000);
}

/* A whole gigabyte-aligned region goes in as 1 GiB blocks: setup writes a handful of heads. */
KTEST(pmm, large_ranges_cost_nothing_per_frame)
{
	static const struct pmm_range ram[] = { { LOW_END, LOW_END + (16ull << 18) } }; /* 16 GiB */
	struct pmm_sim s;
	KT_ASSERT(sim_create(&s, ram, 1, NULL, 0, false, false));
	struct pmm_stats st;
	pmm_get_stats(s.pm, &st);
	KT_EXPECT_EQ(st.free, 16ull << 18);
	KT_EXPECT_EQ(st.free_blocks[PMM_ZONE_HIGH][PMM_MAX_ORDER], 16);
	char why[160];
	KT_EXPECT(pmm_check(s.pm, why, sizeof(why)));
	/* An order-0 allocation splits one 1 GiB block down: 18 new heads, nothing else. */
	struct page *p = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON);
	KT_ASSERT(p != NULL);
	pmm_free_in(s.pm, p, 0);
	pmm_drain_pcp(s.pm);
	pmm_get_stats(s.pm, &st);
	KT_EXPECT_EQ(st.free_blocks[PMM_ZONE_HIGH][PMM_MAX_ORDER], 16);
	sim_destroy(&s);
}

KTEST(pmm, zones_and_low_flag)
{
	static const struct pmm_range ram[] = { { LOW_END - 64, LOW_END + 64 } };
	struct pmm_sim s;
	KT_ASSERT(sim_create(&s, ram, 1, NULL, 0, false, false));
	/* Default allocations prefer memory above 4 GiB, PMM_LOW never leaves the low zone. */
	struct page *hi = pmm_alloc_in(s.pm, 3, 0, PAGE_ANON);
	struct page *lo = pmm_alloc_in(s.pm, 3, PMM_LOW, PAGE_ANON);
	KT_ASSERT(hi && lo);
	KT_EXPECT_GE(pmm_pfn(s.pm, hi), LOW_END);
	KT_EXPECT_LE(pmm_pfn(s.pm, lo) + 8, LOW_END);
	/* The 4 GiB line is never merged across: 64 frames each side stay two 64-frame blocks. */
	pmm_free_in(s.pm, hi, 3);
	pmm_free_in(s.pm, lo, 3);
	struct pmm_stats st;
	pmm_get_stats(s.pm, &st);
	KT_EXPECT_EQ(st.free_blocks[PMM_ZONE_LOW][6], 1);
	KT_EXPECT_EQ(st.free_blocks[PMM_ZONE_HIGH][6], 1);
	sim_destroy(&s);
}

KTEST(pmm, zeroing)
{
	static const struct pmm_range ram[] = { { 16, 80 } };
	struct pmm_sim s;
	KT_ASSERT(sim_create(&s, ram, 1, NULL, 0, false, false));
	struct page *p = pmm_alloc_in(s.pm, 2, 0, PAGE_ANON);
	KT_ASSERT(p);
	memset(phys_to_virt(pmm_pfn(s.pm, p) << PAGE_SHIFT), 0x5a, 4 * PAGE_SIZE);
	pmm_free_in(s.pm, p, 2);
	p = pmm_alloc_in(s.pm, 2, PMM_ZERO, PAGE_ANON);
	KT_ASSERT(p);
	const uint8_t *b = phys_to_virt(pmm_pfn(s.pm, p) << PAGE_SHIFT);
	unsigned nonzero = 0;
	for (unsigned i = 0; i < 4 * PAGE_SIZE; i++)
		nonzero += b[i] != 0;
	KT_EXPECT_EQ(nonzero, 0);
	pmm_free_in(s.pm, p, 2);
	sim_destroy(&s);
}

/* ------------------------------------------------------------------ kernel bugs panic */

/* Runs fn in a child; true if it died by abort() with `expect` in its stderr. */
static bool dies_with(void (*fn)(void), const char *expect)
{
	int fds[2];
	if (pipe(fds) != 0)
		return false;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		signal(SIGABRT, SIG_DFL);
		fn();
		_exit(0);
	}
	close(fds[1]);
	char buf[2048] = "";
	size_t len = 0;
	ssize_t n;
	while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	bool ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(buf, expect) != NULL;
	if (!ok)
		printf("# child status %#x, stderr: %.300s\n", status, buf);
	return ok;
}

static struct pmm_sim bug_sim;
static void bug_setup(void)
{
	static const struct pmm_range ram[] = { { 256, 512 } };
	static const struct pmm_range res[] = { { 256, 260 } };
	sim_create(&bug_sim, ram, 1, res, 1, true, false);
}

static void double_free(void)
{
	bug_setup();
	struct page *p = pmm_alloc_in(bug_sim.pm, 0, 0, PAGE_ANON);
	pmm_free_in(bug_sim.pm, p, 0);
	pmm_free_in(bug_sim.pm, p, 0);
}

static void double_free_block(void)
{
	bug_setup();
	struct page *p = pmm_alloc_in(bug_sim.pm, 3, 0, PAGE_ANON);
	pmm_free_in(bug_sim.pm, p, 3);
	pmm_free_in(bug_sim.pm, p, 3);
}

static void free_reserved(void)
{
	static const struct pmm_range ram[] = { { 256, 512 } };
	sim_create(&bug_sim, ram, 1, NULL, 0, true, false);
	pmm_claim_in(bug_sim.pm, 300ull << PAGE_SHIFT, 1, PAGE_RESERVED);
	pmm_free_in(bug_sim.pm, pmm_page(bug_sim.pm, 300), 0);
}

static void wrong_order(void)
{
	bug_setup();
	struct page *p = pmm_alloc_in(bug_sim.pm, 2, 0, PAGE_ANON);
	pmm_free_in(bug_sim.pm, p, 1);
}

static void use_after_free(void)
{
	bug_setup();
	struct page *p = pmm_alloc_in(bug_sim.pm, 0, 0, PAGE_ANON);
	uint64_t pfn = pmm_pfn(bug_sim.pm, p);
	pmm_free_in(bug_sim.pm, p, 0);
	((volatile uint8_t *)phys_to_virt(pfn << PAGE_SHIFT))[123] = 1; /* write after free */
	while (pmm_alloc_in(bug_sim.pm, 0, 0, PAGE_ANON))               /* the poison check fires on reuse */
		;
}

KTEST(pmm, kernel_bugs_panic_with_frame_and_state)
{
	KT_EXPECT(dies_with(double_free, "double free of frame 0x"));
	KT_EXPECT(dies_with(double_free_block, "double free of frame 0x"));
	KT_EXPECT(dies_with(free_reserved, "freeing frame 0x12c000 (pfn 300) in state reserved"));
	KT_EXPECT(dies_with(wrong_order, "freed as order 1 but allocated as order 2"));
	KT_EXPECT(dies_with(use_after_free, "was written after it was freed: offset 0x78"));
}

KTEST(pmm, descriptor_is_32_bytes) { KT_EXPECT_EQ(sizeof(struct page), 32); }

/* ------------------------------------------------------------------ several CPUs */

/*
 * The CPU the locks and the allocator see: the shim asks spin_cpu_id_hook, which these tests
 * point at a variable they switch (thread-local, so that threads can act as CPUs too).
 */
static unsigned sim_cpu_id(void) { return sim_cpu; }
static const struct spin_cpu_ops sim_cpu_ops = { .cpu_id = sim_cpu_id };
static const struct spin_cpu_ops no_cpu_ops = { 0 };

static void cpus_begin(unsigned online)
{
	sim_cpu = 0;
	spin_set_cpu_ops(&sim_cpu_ops);
	spin_set_cpus_online(online);
}

static void cpus_end(void)
{
	sim_cpu = 0;
	spin_set_cpus_online(1);
	spin_set_cpu_ops(&no_cpu_ops);
}

static uint64_t cached_on(const struct pmm *pm, unsigned cpu) { return pm->pcp[cpu].count; }

/* Frames allocated on one CPU and freed on another go to the freeing CPU's cache; every
 * count stays exact, the caches included. */
KTEST(pmm, two_cpus_free_on_the_other_counts_exact)
{
	static const struct pmm_range ram[] = { { 4096, 4096 + 2048 } };
	struct pmm_sim s;
	struct page *p[300];
	struct pmm_stats st;
	char why[160];

	KT_ASSERT(sim_create(&s, ram, 1, NULL, 0, false, false));
	cpus_begin(2);
	for (unsigned i = 0; i < ARRAY_SIZE(p); i++)
		KT_ASSERT((p[i] = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON)) != NULL);
	KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 2048 - 300);
	uint64_t on0 = cached_on(s.pm, 0);
	KT_EXPECT_EQ(on0 % 64, 64 - 300 % 64); /* whole batches came, 300 went */
	KT_EXPECT_EQ(cached_on(s.pm, 1), 0);

	sim_cpu = 1;
	for (unsigned i = 0; i < ARRAY_SIZE(p); i++)
		pmm_free_in(s.pm, p[i], 0);
	KT_EXPECT_EQ(cached_on(s.pm, 1), 300);
	KT_EXPECT_EQ(cached_on(s.pm, 0), on0);
	pmm_get_stats(s.pm, &st);
	KT_EXPECT_EQ(st.free, 2048);
	KT_EXPECT_EQ(st.pcp, on0 + 300);
	KT_EXPECT_EQ(st.state[PAGE_ANON], 0);
	KT_EXPECT_EQ(st.state[PAGE_FREE], 2048);
	KT_EXPECT(pmm_check(s.pm, why, sizeof(why)));
	/* (CPU 1's cache alone holds +300 frames and -300 anonymous ones: the sums cancel.) */
	KT_EXPECT_EQ(s.pm->pcp[1].state_delta[PAGE_ANON], -300);
	KT_EXPECT_EQ(s.pm->pcp[0].state_delta[PAGE_ANON], 300);

	/* CPU 1 allocates from its own cache now, LIFO. */
	struct page *q = pmm_alloc_in(s.pm, 0, 0, PAGE_KERNEL);
	KT_EXPECT(q == p[299]);
	KT_EXPECT_EQ(cached_on(s.pm, 1), 299);
	pmm_get_stats(s.pm, &st);
	KT_EXPECT_EQ(st.state[PAGE_KERNEL], 1);
	KT_EXPECT_EQ(st.free, 2047);
	sim_cpu = 0;
	pmm_free_in(s.pm, q, 0);
	KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 2048);

	/* Draining empties every CPU's cache and the blocks merge back. */
	pmm_drain_pcp(s.pm);
	pmm_get_stats(s.pm, &st);
	KT_EXPECT_EQ(st.pcp, 0);
	KT_EXPECT_EQ(st.free_blocks[PMM_ZONE_LOW][11], 1);
	KT_EXPECT(pmm_check(s.pm, why, sizeof(why)));
	cpus_end();
	sim_destroy(&s);
}

/* Past the high-water mark a cache gives a batch back, whoever's frames they were. */
KTEST(pmm, cache_drains_above_its_high_water_mark)
{
	static const struct pmm_range ram[] = { { 8192, 8192 + 4096 } };
	static struct page *p[2000];
	struct pmm_sim s;
	char why[160];

	KT_ASSERT(sim_create(&s, ram, 1, NULL, 0, false, false));
	cpus_begin(2);
	for (unsigned i = 0; i < ARRAY_SIZE(p); i++)
		KT_ASSERT((p[i] = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON)) != NULL);
	sim_cpu = 1;
	for (unsigned i = 0; i < ARRAY_SIZE(p); i++) {
		pmm_free_in(s.pm, p[i], 0);
		KT_ASSERT(cached_on(s.pm, 1) <= s.pm->pcp_high);
	}
	KT_EXPECT_GE(cached_on(s.pm, 1), s.pm->pcp_high - s.pm->pcp_batch);
	KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 4096);
	KT_EXPECT(pmm_check(s.pm, why, sizeof(why)));
	cpus_end();
	sim_destroy(&s);
}

/* Every frame sits in CPU 1's cache: CPU 0's allocations take them back before failing,
 * for one frame, a block, a low frame, a contiguous range and a claim alike. */
KTEST(pmm, remote_caches_are_drained_before_failing)
{
	static const struct pmm_range ram[] = { { 256, 512 } }; /* 256 frames: below the high-water mark */
	struct pmm_sim s;
	struct page *p[256];
	char why[160];

	KT_ASSERT(sim_create(&s, ram, 1, NULL, 0, false, false));
	cpus_begin(2);
	/* Everything on CPU 0, then everything freed on CPU 1. */
	unsigned n = 0;
	while (n < ARRAY_SIZE(p) && (p[n] = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON)) != NULL)
		n++;
	KT_ASSERT_EQ(n, 256);
	KT_EXPECT(pmm_alloc_in(s.pm, 0, 0, PAGE_ANON) == NULL);
	KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 0);
	sim_cpu = 1;
	for (unsigned i = 0; i < n; i++)
		pmm_free_in(s.pm, p[i], 0);
	KT_EXPECT_EQ(cached_on(s.pm, 1), 256);
	KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 256);

	/* CPU 0: every frame again, one by one (the first failure on the lists drains CPU 1). */
	sim_cpu = 0;
	n = 0;
	while (n < ARRAY_SIZE(p) && (p[n] = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON)) != NULL)
		n++;
	KT_EXPECT_EQ(n, 256);
	KT_EXPECT_EQ(cached_on(s.pm, 1), 0);
	KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 0);
	KT_EXPECT(pmm_check(s.pm, why, sizeof(why)));

	/* A block, a low frame, a contiguous range, a claim: each finds its frames in CPU 1's cache. */
	struct {
		const char *what;
		int kind;
	} cases[] = { { "order 3", 0 }, { "PMM_LOW", 1 }, { "contiguous", 2 }, { "claim", 3 } };
	for (unsigned c = 0; c < ARRAY_SIZE(cases); c++) {
		sim_cpu = 1;
		for (unsigned i = 0; i < n; i++)
			pmm_free_in(s.pm, p[i], 0);
		KT_EXPECT_EQ(cached_on(s.pm, 1), 256);
		sim_cpu = 0;
		struct page *b = NULL;
		Retcode rc = rcOk;
		switch (cases[c].kind) {
		case 0:
			b = pmm_alloc_in(s.pm, 3, 0, PAGE_ANON);
			break;
		case 1:
			b = pmm_alloc_in(s.pm, 0, PMM_LOW, PAGE_ANON);
			break;
		case 2:
			b = pmm_alloc_contig_in(s.pm, 100, 4, 512ull << PAGE_SHIFT, 0, PAGE_KERNEL);
			break;
		case 3:
			rc = pmm_claim_in(s.pm, 300ull << PAGE_SHIFT, 50, PAGE_KERNEL);
			b = pmm_page(s.pm, 300);
			break;
		}
		if (!b || rc != rcOk)
			ktest_fail(t, __FILE__, __LINE__, "%s failed with every frame in another CPU's cache",
				   cases[c].what);
		KT_EXPECT_EQ(cached_on(s.pm, 1), 0);
		uint64_t taken = cases[c].kind == 0 ? 8 : cases[c].kind == 1 ? 1 : cases[c].kind == 2 ? 100 : 50;
		KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 256 - taken);
		KT_EXPECT(pmm_check(s.pm, why, sizeof(why)));
		/* Give it back and take every frame again for the next case. */
		if (cases[c].kind == 0)
			pmm_free_in(s.pm, b, 3);
		else if (cases[c].kind == 1)
			pmm_free_in(s.pm, b, 0);
		else if (cases[c].kind == 2)
			pmm_free_contig_in(s.pm, b, 100);
		else
			pmm_free_contig_in(s.pm, b, 50);
		n = 0;
		while (n < ARRAY_SIZE(p) && (p[n] = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON)) != NULL)
			n++;
		KT_EXPECT_EQ(n, 256);
	}
	for (unsigned i = 0; i < n; i++)
		pmm_free_in(s.pm, p[i], 0);
	pmm_drain_pcp(s.pm);
	KT_EXPECT_EQ(pmm_free_pages_in(s.pm), 256);
	KT_EXPECT(pmm_check(s.pm, why, sizeof(why)));
	cpus_end();
	sim_destroy(&s);
}

/* The model's random sequences, the CPU switching among three every few steps. */
KTEST(pmm, model_three_cpus)
{
	static const struct pmm_range ram[] = { { 1, 2000 }, { 2085, 9000 } };
	static const struct pmm_range res[] = { { 100, 150 } };
	cpus_begin(3);
	model_cpus = 3;
	run_model(t, ram, 2, res, 1, 21, 3000);
	static const struct pmm_range ram2[] = { { LOW_END - 5000, LOW_END + 7000 } };
	run_model(t, ram2, 1, NULL, 0, 22, 3000);
	model_cpus = 1;
	cpus_end();
}

/*
 * Real concurrency: threads act as CPUs (each its own CPU number). Each allocates frames
 * (order 0, now and then order 2) until the arena runs dry, hands half of them to the next
 * thread, which frees them on its CPU; a shared byte per frame catches a frame handed out
 * twice. At the end every frame is free again and the counts are exact.
 */
#include <pthread.h>

enum { STRESS_THREADS = 3, STRESS_FRAMES = 3000, STRESS_ROUNDS = 100 };
static struct pmm_sim stress_sim;
static uint8_t stress_owned[4096 + STRESS_FRAMES];
static struct page *_Atomic stress_handoff[STRESS_THREADS][STRESS_FRAMES];
static _Atomic unsigned stress_errors;
static pthread_barrier_t stress_barrier;

static void stress_take(struct page *p, unsigned order)
{
	uint64_t pfn = pmm_pfn(stress_sim.pm, p);
	for (uint64_t i = 0; i < (1ull << order); i++)
		if (__atomic_exchange_n(&stress_owned[pfn + i], 1, __ATOMIC_ACQ_REL))
			stress_errors++;
}

static void stress_give(struct page *p, unsigned order)
{
	uint64_t pfn = pmm_pfn(stress_sim.pm, p);
	for (uint64_t i = 0; i < (1ull << order); i++)
		if (!__atomic_exchange_n(&stress_owned[pfn + i], 0, __ATOMIC_ACQ_REL))
			stress_errors++;
	pmm_free_in(stress_sim.pm, p, order);
}

static void *stress_cpu(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg, next = (me + 1) % STRESS_THREADS;
	static __thread struct page *mine[STRESS_FRAMES];
	uint64_t rng = 0x1234567 + me;

	sim_cpu = me + 1; /* (CPU 0 is the test's own thread) */
	for (unsigned round = 0; round < STRESS_ROUNDS; round++) {
		unsigned n = 0;
		while (n < STRESS_FRAMES) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			unsigned order = rng % 8 == 0 && n + 4 <= STRESS_FRAMES ? 2 : 0;
			struct page *p = pmm_alloc_in(stress_sim.pm, order, 0, PAGE_ANON);
			if (!p)
				break;
			stress_take(p, order);
			if (order)
				pmm_split_allocation(stress_sim.pm, p, order);
			for (unsigned i = 0; i < (1u << order); i++)
				mine[n++] = p + i;
			if (rng % 16 == 1) /* now and then one back at once */
				stress_give(mine[--n], 0);
		}
		/* Half to the next CPU, half freed here. */
		for (unsigned i = 0; i < STRESS_FRAMES; i++)
			stress_handoff[next][i] = NULL;
		pthread_barrier_wait(&stress_barrier);
		for (unsigned i = 0; i < n; i++) {
			if (i % 2)
				stress_handoff[next][i] = mine[i];
			else
				stress_give(mine[i], 0);
		}
		pthread_barrier_wait(&stress_barrier);
		for (unsigned i = 0; i < STRESS_FRAMES; i++)
			if (stress_handoff[me][i])
				stress_give(stress_handoff[me][i], 0);
		pthread_barrier_wait(&stress_barrier);
	}
	return NULL;
}

KTEST(pmm, threads_as_cpus_share_frames)
{
	static const struct pmm_range ram[] = { { 4096, 4096 + STRESS_FRAMES } }; /* less than they want */
	pthread_t th[STRESS_THREADS];
	char why[160];

	KT_ASSERT(sim_create(&stress_sim, ram, 1, NULL, 0, false, false));
	cpus_begin(STRESS_THREADS + 1);
	memset(stress_owned, 0, sizeof(stress_owned));
	stress_errors = 0;
	pthread_barrier_init(&stress_barrier, NULL, STRESS_THREADS);
	for (unsigned i = 0; i < STRESS_THREADS; i++)
		KT_ASSERT(pthread_create(&th[i], NULL, stress_cpu, (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i < STRESS_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&stress_barrier);
	KT_EXPECT_EQ(stress_errors, 0);
	struct pmm_stats st;
	pmm_get_stats(stress_sim.pm, &st);
	KT_EXPECT_EQ(st.free, STRESS_FRAMES);
	KT_EXPECT_EQ(st.state[PAGE_ANON], 0);
	KT_EXPECT(pmm_check(stress_sim.pm, why, sizeof(why)));
	pmm_drain_pcp(stress_sim.pm);
	pmm_get_stats(stress_sim.pm, &st);
	KT_EXPECT_EQ(st.pcp, 0);
	KT_EXPECT_EQ(st.zone_free[PMM_ZONE_LOW], STRESS_FRAMES);
	KT_EXPECT(pmm_check(stress_sim.pm, why, sizeof(why)));
	cpus_end();
	sim_destroy(&stress_sim);
}
