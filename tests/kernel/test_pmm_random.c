// SPDX-License-Identifier: MIT
/*
 * The physical page manager on the real memory map, driven by a seeded random sequence of
 * block allocations (plain and split), frees and contiguous allocations (alignment, highest
 * address, below 4 GiB), checked against a model after every step (SPEC §3, issue 3).
 *
 * The model: the frames that were free when the test began (a sorted, merged snapshot of the
 * free lists, the per-CPU cache drained first) and the blocks the test holds now (sorted by
 * frame). Nothing else allocates while the test runs, so a frame is free now exactly when it
 * was free at the start and is not in a live block; every new block must lie in the first
 * and overlap nothing of the second. Both lookups are binary searches.
 *
 * The page database is read with the rule of mm/pmm.c: the block holding a frame is found by
 * trying the aligned heads above it from the largest order down; the first whose descriptor
 * has that order heads it (tails of blocks hold stale descriptors and are never read).
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include "ktest_util.h"

#define SEED     0x6b6e6d6d70726e67ull
#define STEPS    3000
#define MAX_LIVE 128
#define TAG      POOL_TAG('T', 'p', 'm', 'R')
#define LOW_END  PMM_ZONE_LOW_END_PFN

enum blk_kind { BLK_BUDDY, BLK_SPLIT, BLK_CONTIG, BLK_KINDS };

struct blk {
	uint64_t pfn, n;
	uint8_t kind, order;
};

struct range {
	uint64_t start, end; /* pfns */
};

struct model {
	struct ktest_ctx *t;
	unsigned step;
	uint64_t rng;
	struct range *free0; /* free at the start, sorted, merged */
	unsigned nfree0;
	struct blk *live; /* sorted by pfn */
	unsigned nlive;
	uint64_t live_pages, start_free;
	/* what the sequence did, so that the test can tell it covered the cases */
	unsigned ok[BLK_KINDS], failed[BLK_KINDS], low, high, limited;
};

static uint64_t next_rand(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rand_below(struct model *m, uint64_t n) { return next_rand(&m->rng) % n; }

/* Records a failure naming the step and the seed; false, so that callers can stop. */
#define MCHECK(m, cond, fmt, ...)                                                                       \
	({                                                                                              \
		bool ok_ = (cond);                                                                      \
		(m)->t->checks++;                                                                       \
		if (!ok_)                                                                               \
			ktest_fail((m)->t, __FILE__, __LINE__, "step %u (seed %#llx): " fmt, (m)->step, \
				   (unsigned long long)SEED, ##__VA_ARGS__);                            \
		ok_;                                                                                    \
	})

/* ------------------------------------------------------------------ the page database */

/* The block holding pfn: its head and descriptor (see the comment at the top). */
static bool block_of(uint64_t pfn, uint64_t *head, const struct page **d)
{
	for (int k = PMM_MAX_ORDER; k >= 0; k--) {
		uint64_t h = pfn & ~((1ull << k) - 1);
		if (!pmm_pfn_described(&pmm_main, h))
			continue;
		const struct page *p = pmm_page(&pmm_main, h);
		if (p->order == (unsigned)k) {
			*head = h;
			*d = p;
			return true;
		}
	}
	return false;
}

/* Frames of a block that get a page-database look-up: all of a small one, else a sample. */
static uint64_t probe_frame(uint64_t n, unsigned i, unsigned *count)
{
	if (n <= 32) {
		*count = (unsigned)n;
		return i;
	}
	*count = 10;
	return i == 9 ? n - 1 : (n / 9) * i;
}

/* Every frame of b is inside an allocated block: b itself (buddy: one block of b->order;
 * split and contiguous: blocks of one frame), in state `state`. */
static bool db_says_allocated(struct model *m, const struct blk *b)
{
	unsigned count = 1;
	for (unsigned i = 0; i < count; i++) {
		uint64_t f = b->pfn + probe_frame(b->n, i, &count), head = 0;
		const struct page *d = NULL;
		bool found = block_of(f, &head, &d);
		uint64_t want_head = b->kind == BLK_BUDDY ? b->pfn : f;
		unsigned want_order = b->kind == BLK_BUDDY ? b->order : 0;
		if (!MCHECK(m,
			    found && head == want_head && d->order == want_order && d->state == PAGE_KERNEL &&
				    d->refcount == 1 && d->pincount == 0 && !(d->flags & PG_PCP),
			    "frame %#llx of a new block (kind %u, %llu frames at %#llx): head %#llx order %u state %s "
			    "refs %u",
			    (unsigned long long)f, b->kind, (unsigned long long)b->n, (unsigned long long)b->pfn,
			    (unsigned long long)head, d ? d->order : 0, d ? page_state_name(d->state) : "-",
			    d ? d->refcount : 0))
			return false;
	}
	return true;
}

/* Every frame of b (just freed) is inside a free block: on a free list or in the cache. */
static bool db_says_free(struct model *m, const struct blk *b)
{
	unsigned count = 1;
	for (unsigned i = 0; i < count; i++) {
		uint64_t f = b->pfn + probe_frame(b->n, i, &count), head = 0;
		const struct page *d = NULL;
		bool found = block_of(f, &head, &d);
		if (!MCHECK(m, found && d->state == PAGE_FREE && head + (1ull << d->order) > f,
			    "freed frame %#llx: block at %#llx order %u is %s", (unsigned long long)f,
			    (unsigned long long)head, d ? d->order : 0, d ? page_state_name(d->state) : "-"))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ the model */

static void sift_down(struct range *r, unsigned i, unsigned n)
{
	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && r[c + 1].start > r[c].start)
			c++;
		if (r[i].start >= r[c].start)
			break;
		struct range x = r[i];
		r[i] = r[c];
		r[c] = x;
		i = c;
	}
}

static void sort_ranges(struct range *r, unsigned n) /* heapsort by start */
{
	for (unsigned s = n / 2; s-- > 0;)
		sift_down(r, s, n);
	for (unsigned end = n; end > 1;) {
		end--;
		struct range x = r[0];
		r[0] = r[end];
		r[end] = x;
		sift_down(r, 0, end);
	}
}

/* The free lists, as sorted merged ranges; the number of blocks (> cap: did not fit). */
static unsigned snapshot_free(struct range *r, unsigned cap, unsigned *nranges)
{
	unsigned n = 0;

	bool irq = spin_lock_irqsave(&pmm_main.lock);
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++) {
			struct list_head *pos;
			list_for_each(pos, &pmm_main.zone[z].free[o]) {
				uint64_t pfn = pmm_pfn(&pmm_main, list_entry(pos, struct page, lru));
				if (n < cap)
					r[n] = (struct range){ pfn, pfn + (1ull << o) };
				n++;
			}
		}
	unsigned cached = 0;
	for (unsigned c = 0; c < SPIN_MAX_CPUS; c++)
		cached += READ_ONCE(pmm_main.pcp[c].count);
	spin_unlock_irqrestore(&pmm_main.lock, irq);
	if (n > cap || cached)
		return cap + 1;
	sort_ranges(r, n);
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++) {
		if (k && r[k - 1].end == r[i].start)
			r[k - 1].end = r[i].end;
		else
			r[k++] = r[i];
	}
	*nranges = k;
	return n;
}

/* [pfn, pfn + n) was free when the test began. */
static bool was_free(const struct model *m, uint64_t pfn, uint64_t n)
{
	unsigned lo = 0, hi = m->nfree0;
	while (lo < hi) { /* the first range that ends above pfn */
		unsigned mid = (lo + hi) / 2;
		if (m->free0[mid].end <= pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nfree0 && m->free0[lo].start <= pfn && pfn + n <= m->free0[lo].end;
}

/* Where a block starting at pfn goes in the live array. */
static unsigned live_slot(const struct model *m, uint64_t pfn)
{
	unsigned lo = 0, hi = m->nlive;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (m->live[mid].pfn < pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Checks a new block against the model and the page database, then adds it. */
static bool take(struct model *m, struct blk b)
{
	unsigned i = live_slot(m, b.pfn);
	bool apart = (i == 0 || m->live[i - 1].pfn + m->live[i - 1].n <= b.pfn) &&
		     (i == m->nlive || b.pfn + b.n <= m->live[i].pfn);

	if (!MCHECK(m, apart, "block %#llx+%llu overlaps a live block", (unsigned long long)b.pfn,
		    (unsigned long long)b.n) ||
	    !MCHECK(m, was_free(m, b.pfn, b.n), "block %#llx+%llu was not free", (unsigned long long)b.pfn,
		    (unsigned long long)b.n) ||
	    !MCHECK(m, (b.pfn < LOW_END) == (b.pfn + b.n - 1 < LOW_END), "block %#llx+%llu straddles 4 GiB",
		    (unsigned long long)b.pfn, (unsigned long long)b.n) ||
	    !db_says_allocated(m, &b))
		return false;
	memmove(&m->live[i + 1], &m->live[i], (m->nlive - i) * sizeof(*m->live));
	m->live[i] = b;
	m->nlive++;
	m->live_pages += b.n;
	m->ok[b.kind]++;
	if (b.pfn < LOW_END)
		m->low++;
	else
		m->high++;
	return true;
}

static bool release(struct model *m, unsigned i)
{
	struct blk b = m->live[i];
	struct page *p = pmm_page(&pmm_main, b.pfn);

	switch (b.kind) {
	case BLK_BUDDY:
		pmm_free(p, b.order);
		break;
	case BLK_SPLIT: /* frame by frame, from either end */
		if (b.pfn & 1)
			for (uint64_t k = b.n; k-- > 0;)
				pmm_free(p + k, 0);
		else
			for (uint64_t k = 0; k < b.n; k++)
				pmm_free(p + k, 0);
		break;
	default:
		pmm_free_contig_in(&pmm_main, p, b.n);
		break;
	}
	memmove(&m->live[i], &m->live[i + 1], (m->nlive - i - 1) * sizeof(*m->live));
	m->nlive--;
	m->live_pages -= b.n;
	return db_says_free(m, &b);
}

/* ------------------------------------------------------------------ the steps */

static unsigned random_order(struct model *m)
{
	uint64_t r = rand_below(m, 100);
	return r < 60   ? (unsigned)rand_below(m, 3)
	       : r < 92 ? 3 + (unsigned)rand_below(m, 4)
			: 7 + (unsigned)rand_below(m, 4);
}

/* pmm_alloc of one block (kept whole or split into frames). */
static bool step_block(struct model *m, bool split)
{
	unsigned order = random_order(m);
	unsigned flags = (rand_below(m, 10) < 3 ? PMM_LOW : 0) | (order <= 4 && rand_below(m, 10) == 0 ? PMM_ZERO : 0);
	struct page *p = pmm_alloc(order, flags, PAGE_KERNEL);

	if (!p) {
		/* Refused only when no allowed zone has a block of the order or above. */
		struct pmm_stats st;
		uint64_t blocks = 0;
		pmm_get_stats(&pmm_main, &st);
		for (unsigned z = 0; z < PMM_NR_ZONES; z++)
			for (unsigned o = order; o < PMM_NR_ORDERS; o++)
				blocks += (z == PMM_ZONE_LOW || !(flags & PMM_LOW)) ? st.free_blocks[z][o] : 0;
		m->failed[split ? BLK_SPLIT : BLK_BUDDY]++;
		return MCHECK(m, blocks == 0, "order %u flags %#x refused with %llu blocks that fit", order, flags,
			      (unsigned long long)blocks);
	}
	struct blk b = { pmm_pfn(&pmm_main, p), 1ull << order, split ? BLK_SPLIT : BLK_BUDDY, (uint8_t)order };
	if (!MCHECK(m, is_aligned(b.pfn, b.n), "order %u block at pfn %#llx", order, (unsigned long long)b.pfn) ||
	    !MCHECK(m, !(flags & PMM_LOW) || b.pfn + b.n <= LOW_END, "PMM_LOW block at pfn %#llx",
		    (unsigned long long)b.pfn))
		return false;
	if (flags & PMM_ZERO) {
		const uint64_t *w = page_to_va(p);
		uint64_t nonzero = 0;
		for (uint64_t k = 0; k < (b.n << PAGE_SHIFT) / 8; k++)
			nonzero |= w[k];
		if (!MCHECK(m, nonzero == 0, "PMM_ZERO block at pfn %#llx is not zero", (unsigned long long)b.pfn))
			return false;
	}
	if (split)
		pmm_split_allocation(&pmm_main, p, order);
	return take(m, b);
}

/* pmm_alloc_contig_in with a random size, alignment and highest address. */
static bool step_contig(struct model *m)
{
	uint64_t r = rand_below(m, 100), top_pa = m->free0[m->nfree0 - 1].end << PAGE_SHIFT;
	uint64_t n = rand_below(m, 4) ? 1 + rand_below(m, 48) : 49 + rand_below(m, 300);
	uint64_t align = 1ull << rand_below(m, 7);
	uint64_t limit = r < 25   ? MiB(16)
			 : r < 50 ? GiB(4)
			 : r < 70 ? UINT64_MAX
			 : r < 97 ? MiB(16) + align_down(rand_below(m, top_pa), PAGE_SIZE)
				  : MiB(1); /* nothing up there is free */
	unsigned flags = rand_below(m, 5) == 0 ? PMM_LOW : 0;
	struct page *p = pmm_alloc_contig_in(&pmm_main, n, align, limit, flags, PAGE_KERNEL);

	if (limit != UINT64_MAX)
		m->limited++;
	if (limit == MiB(1) && !MCHECK(m, p == NULL, "contiguous block below 1 MiB (all reserved) at %#llx",
				       (unsigned long long)(p ? page_to_pa(p) : 0)))
		return false;
	if (!p) {
		m->failed[BLK_CONTIG]++;
		return true;
	}
	struct blk b = { pmm_pfn(&pmm_main, p), n, BLK_CONTIG, 0 };
	uint64_t end_pa = (b.pfn + n) << PAGE_SHIFT;
	if (!MCHECK(m, is_aligned(b.pfn, align), "%llu frames aligned to %llu at pfn %#llx", (unsigned long long)n,
		    (unsigned long long)align, (unsigned long long)b.pfn) ||
	    !MCHECK(m, end_pa <= limit, "%llu frames end at %#llx above the limit %#llx", (unsigned long long)n,
		    (unsigned long long)end_pa, (unsigned long long)limit) ||
	    !MCHECK(m, !(flags & PMM_LOW) || end_pa <= GiB(4), "PMM_LOW contiguous block ends at %#llx",
		    (unsigned long long)end_pa))
		return false;
	return take(m, b);
}

KTEST(pmm, random_sequence_against_a_model)
{
	struct pmm_stats st0, st;
	struct model m = { .t = t, .rng = SEED };
	char why[160] = "";

	/* The model's memory first, so that its pool pages are not in the snapshot. */
	pmm_drain_pcp(&pmm_main);
	pmm_get_stats(&pmm_main, &st0);
	unsigned cap = 256;
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
			cap += (unsigned)st0.free_blocks[z][o];
	m.free0 = pool_alloc(cap * sizeof(*m.free0), TAG);
	m.live = pool_alloc(MAX_LIVE * sizeof(*m.live), TAG);
	if (!m.free0 || !m.live) {
		pool_free(m.free0);
		pool_free(m.live);
		ktest_fail(t, __FILE__, __LINE__, "no pool memory for the model");
		return;
	}
	pmm_drain_pcp(&pmm_main);
	pmm_get_stats(&pmm_main, &st0);
	unsigned nblocks = snapshot_free(m.free0, cap, &m.nfree0);
	if (nblocks > cap || !m.nfree0) {
		ktest_fail(t, __FILE__, __LINE__, "free lists: %u blocks, room for %u (or a frame in the cache)",
			   nblocks, cap);
		goto out;
	}
	uint64_t listed = 0;
	for (unsigned i = 0; i < m.nfree0; i++)
		listed += m.free0[i].end - m.free0[i].start;
	KT_EXPECT_EQ(listed, st0.free); /* the snapshot holds every free frame */
	m.start_free = pmm_free_pages();
	KT_EXPECT_EQ(m.start_free, st0.free);

	for (m.step = 0; m.step < STEPS && !t->failures; m.step++) {
		bool ok;
		if (m.nlive == MAX_LIVE || (m.nlive && rand_below(&m, 100) < 45)) {
			ok = release(&m, (unsigned)rand_below(&m, m.nlive));
		} else {
			uint64_t r = rand_below(&m, 100);
			ok = r < 45 ? step_block(&m, false) : r < 60 ? step_block(&m, true) : step_contig(&m);
		}
		if (ok)
			MCHECK(&m, pmm_free_pages() == m.start_free - m.live_pages,
			       "%llu frames free, expected %llu - %llu live", (unsigned long long)pmm_free_pages(),
			       (unsigned long long)m.start_free, (unsigned long long)m.live_pages);
		if (ok && m.step % 500 == 499 && !pmm_check(&pmm_main, why, sizeof(why)))
			MCHECK(&m, false, "pmm_check: %s", why);
	}
	unsigned steps = m.step;
	while (m.nlive)
		release(&m, (unsigned)rand_below(&m, m.nlive));
	KT_EXPECT_EQ(pmm_free_pages(), m.start_free);

	/* Everything back: the same free blocks of every order in every zone. */
	pmm_drain_pcp(&pmm_main);
	pmm_get_stats(&pmm_main, &st);
	KT_EXPECT_EQ(st.free, st0.free);
	KT_EXPECT_EQ(st.state[PAGE_KERNEL], st0.state[PAGE_KERNEL]);
	unsigned differ = 0;
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
			if (st.free_blocks[z][o] != st0.free_blocks[z][o]) {
				if (!differ++)
					ktest_fail(t, __FILE__, __LINE__,
						   "zone %u order %u: %llu free blocks, %llu at the start", z, o,
						   (unsigned long long)st.free_blocks[z][o],
						   (unsigned long long)st0.free_blocks[z][o]);
			}
	KT_EXPECT_EQ(differ, 0);
	KT_EXPECT(pmm_check(&pmm_main, why, sizeof(why)));

	/* The sequence ran to its end and covered what it is for. */
	KT_EXPECT_EQ(steps, STEPS);
	for (unsigned k = 0; k < BLK_KINDS; k++)
		KT_EXPECT_GE(m.ok[k], 100);
	KT_EXPECT_GE(m.limited, 100);
	KT_EXPECT_GE(m.low, 100);
	if (st0.zone_free[PMM_ZONE_HIGH])
		KT_EXPECT_GE(m.high, 100);
out:
	pool_free(m.free0);
	pool_free(m.live);
}
