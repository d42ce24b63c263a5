// SPDX-License-Identifier: MIT
/*
 * make bench-host: the physical allocator's host build (optimised, no sanitizers, no debug
 * checks) on a simulated 1 GiB arena, SPEC §10 workloads, nanoseconds per unit:
 *   pmm_order0_pingpong    alloc + free of one page, per pair
 *   pmm_order0_fill_drain  allocate every page of the arena one by one, then free them all, per page
 *   pmm_mixed_orders       orders 0-9 (70/15/8/4/2/1 %), up to 4096 live blocks, random victims
 *                          (xorshift64, seed 1), per operation
 * Each figure is the median of 5 runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../shim/pmm_sim.h"

#define ARENA_PAGES (1ull << 18) /* 1 GiB */
#define RUNS        5

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof(double), cmp_double);
	return v[RUNS / 2];
}

static void make_arena(struct pmm_sim *s)
{
	/* 1 GiB of RAM starting at 1 GiB: a single maximal block, like a machine's large range. */
	static const struct pmm_range ram[] = { { ARENA_PAGES, 2 * ARENA_PAGES } };
	if (!sim_create(s, ram, 1, NULL, 0, false, false)) {
		fprintf(stderr, "bench: cannot build the arena\n");
		exit(1);
	}
	/* The simulation reserves its page database lazily, and a descriptor's first write
	 * would take a host page fault (4 KiB holds 128 descriptors): that was most of
	 * fill_drain's time, and the kernel never pays it (pmm_init maps its database at boot).
	 * Touch it all before anything is timed. */
	volatile uint8_t *db = (volatile uint8_t *)s->db;
	for (uint64_t off = 0; off < s->max_pfn * sizeof(struct page); off += 4096)
		db[off] = db[off];
}

static void fail(const char *what)
{
	fprintf(stderr, "bench: %s\n", what);
	exit(1);
}

static double pingpong(void)
{
	struct pmm_sim s;
	const unsigned n = 20000000;
	make_arena(&s);
	for (unsigned i = 0; i < 1000; i++) /* warm the per-CPU cache */
		pmm_free_in(s.pm, pmm_alloc_in(s.pm, 0, 0, PAGE_ANON), 0);
	double t0 = now_ns();
	for (unsigned i = 0; i < n; i++) {
		struct page *p = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON);
		if (!p)
			fail("pingpong: allocation failed");
		pmm_free_in(s.pm, p, 0);
	}
	double t = (now_ns() - t0) / n;
	sim_destroy(&s);
	return t;
}

static double fill_drain(void)
{
	struct pmm_sim s;
	struct page **pages = malloc(ARENA_PAGES * sizeof(*pages));
	if (!pages)
		fail("fill_drain: no memory for the page list");
	memset(pages, 0, ARENA_PAGES * sizeof(*pages)); /* (its first touch is not the allocator's) */
	make_arena(&s);
	double t0 = now_ns();
	uint64_t n = 0;
	struct page *p;
	while ((p = pmm_alloc_in(s.pm, 0, 0, PAGE_ANON)) != NULL)
		pages[n++] = p;
	for (uint64_t i = 0; i < n; i++)
		pmm_free_in(s.pm, pages[i], 0);
	double t = (now_ns() - t0) / (double)n;
	if (n != ARENA_PAGES)
		fail("fill_drain: did not get every page of the arena");
	free(pages);
	sim_destroy(&s);
	return t;
}

static uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

static unsigned pick_order(uint64_t r)
{
	unsigned pct = (unsigned)(r % 100);
	if (pct < 70)
		return 0;
	if (pct < 85)
		return 1;
	if (pct < 93)
		return 2;
	if (pct < 97)
		return 3;
	if (pct < 99)
		return 4;
	return 5 + (unsigned)((r / 100) % 5); /* the last 1 % spread over orders 5-9 */
}

static double mixed(void)
{
	enum { MAX_LIVE = 4096 };
	static struct {
		struct page *p;
		unsigned order;
	} live[MAX_LIVE];
	struct pmm_sim s;
	const unsigned ops = 10000000;
	uint64_t rng = 1;
	unsigned nlive = 0;

	make_arena(&s);
	double t0 = now_ns();
	for (unsigned i = 0; i < ops; i++) {
		uint64_t r = xorshift64(&rng);
		bool alloc = nlive == 0 || (nlive < MAX_LIVE && (r & 1));
		if (alloc) {
			unsigned order = pick_order(r >> 1);
			struct page *p = pmm_alloc_in(s.pm, order, 0, PAGE_ANON);
			if (!p)
				fail("mixed: allocation failed");
			live[nlive].p = p;
			live[nlive++].order = order;
		} else {
			unsigned victim = (unsigned)((r >> 1) % nlive);
			pmm_free_in(s.pm, live[victim].p, live[victim].order);
			live[victim] = live[--nlive];
		}
	}
	double t = (now_ns() - t0) / ops;
	while (nlive--)
		pmm_free_in(s.pm, live[nlive].p, live[nlive].order);
	sim_destroy(&s);
	return t;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		double (*fn)(void);
	} benches[] = {
		{ "pmm_order0_pingpong", pingpong },
		{ "pmm_order0_fill_drain", fill_drain },
		{ "pmm_mixed_orders", mixed },
	};
	/* Optional argument: run only the named benchmark (for profiling). */
	for (unsigned b = 0; b < sizeof(benches) / sizeof(benches[0]); b++) {
		if (argc > 1 && strcmp(argv[1], benches[b].name) != 0)
			continue;
		double v[RUNS];
		for (int i = 0; i < RUNS; i++)
			v[i] = benches[b].fn();
		printf("bench %s %.1f\n", benches[b].name, median(v));
	}
	return 0;
}
