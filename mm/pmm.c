// SPDX-License-Identifier: MIT
/*
 * The buddy allocator (see mm/pmm.h for the interface, docs/pmm.md for the design).
 *
 * Why lazy descriptors are safe. Managed memory is always partitioned into blocks: free
 * blocks, allocations, per-CPU cache pages. A block of order k starts at a frame aligned to
 * 2^k, and its head descriptor is written whenever it becomes a head. Take any frame f aligned
 * to 2^k that lies inside a block B: if B's order were above k, B would contain the whole
 * aligned 2^k region at f. So:
 *   - freeing a block X of order k, its buddy (aligned to 2^k, and X is allocated) lies in a
 *     block of order <= k that it heads: the buddy's descriptor is current, never stale;
 *   - looking for the free block that contains frame p, trying heads align_down(p, 2^k) from
 *     the largest k down, every head tried above the true order heads a smaller block.
 * Merging must stay inside the memory that was handed to pmm_add_free, or it would read
 * descriptors of holes. Each block carries max_order: the order of the maximal block it was
 * cut from, beyond which its buddies are not this allocator's.
 */
#include <knmm/irqflags.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <mm/pmm.h>

struct pmm pmm_main;

#define PCP_HIGH        512 /* per-CPU cache: drain above this many frames */
#define PCP_BATCH_ORDER 6   /* refill/drain 64 frames at a time */

const char *page_state_name(enum page_state s)
{
	static const char *const names[PAGE_STATE_COUNT] = {
		[PAGE_FREE] = "free",        [PAGE_RESERVED] = "reserved", [PAGE_KERNEL] = "kernel",
		[PAGE_TABLE] = "page-table", [PAGE_ANON] = "anonymous",    [PAGE_MDL] = "mdl",
		[PAGE_POOL] = "pool",
	};
	return (unsigned)s < PAGE_STATE_COUNT ? names[s] : "corrupt";
}

void page_count_underflow(const struct page *p, const char *count)
{
	panic("frame %#llx (%s): %s count underflow", (unsigned long long)page_to_pa(p), page_state_name(p->state),
	      count);
}

static inline unsigned zone_of(uint64_t pfn) { return pfn < PMM_ZONE_LOW_END_PFN ? PMM_ZONE_LOW : PMM_ZONE_HIGH; }
static inline uint64_t pfn_pa(uint64_t pfn) { return pfn << PAGE_SHIFT; }

void pmm_setup(struct pmm *pm, struct page *db, bool poison)
{
	memset(pm, 0, sizeof(*pm));
	pm->lock = (spinlock_t)SPINLOCK_INIT("pmm", LOCK_RANK_PMM);
	pm->db = db;
	pm->poison = poison;
	pm->pcp_high = PCP_HIGH;
	pm->pcp_batch = 1u << PCP_BATCH_ORDER;
	for (unsigned c = 0; c < SPIN_MAX_CPUS; c++)
		pm->pcp[c].lock = (spinlock_t)SPINLOCK_INIT("pmm cache", LOCK_RANK_PMM_PCP);
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
			list_init(&pm->zone[z].free[o]);
}

/* ------------------------------------------------------------------ ranges */

static void range_insert(struct pmm_range *r, unsigned *n, uint64_t start, uint64_t end)
{
	KASSERT_MSG(*n < PMM_MAX_RANGES, "pmm: more than %d ranges", PMM_MAX_RANGES);
	unsigned i = (*n)++;
	while (i > 0 && r[i - 1].start > start) {
		r[i] = r[i - 1];
		i--;
	}
	r[i] = (struct pmm_range){ start, end };
}

static bool in_ranges(const struct pmm_range *r, unsigned n, uint64_t pfn)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (pfn < r[mid].start)
			hi = mid;
		else if (pfn >= r[mid].end)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

bool pmm_pfn_described(const struct pmm *pm, uint64_t pfn)
{
	return in_ranges(pm->ram, pm->nr_ram, pfn) && !in_ranges(pm->opaque, pm->nr_opaque, pfn);
}

bool pmm_pfn_is_ram(const struct pmm *pm, uint64_t pfn) { return in_ranges(pm->ram, pm->nr_ram, pfn); }

void pmm_add_ram(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn)
{
	if (start_pfn < end_pfn)
		range_insert(pm->ram, &pm->nr_ram, start_pfn, end_pfn);
}

/* ------------------------------------------------------------------ descriptors */

/* Only these fields mean anything in a free frame; init_allocated sets the rest. */
static inline void init_free_head(struct page *p, unsigned order, unsigned max_order, uint8_t flags)
{
	p->state = PAGE_FREE;
	p->order = (uint8_t)order;
	p->max_order = (uint8_t)max_order;
	p->flags = flags;
}

static inline void init_allocated(struct page *p, unsigned order, unsigned max_order, enum page_state state)
{
	p->state = (uint8_t)state;
	p->order = (uint8_t)order;
	p->max_order = (uint8_t)max_order;
	p->flags = 0;
	page_refs_init(p);
	p->private = 0;
	p->lru.next = p->lru.prev = NULL;
}

/* Frames leaving or joining the buddy lists as allocations (lock held). */
static void count_alloc_locked(struct pmm *pm, uint64_t n, enum page_state state)
{
	spin_assert_held(&pm->lock);
	pm->listed_pages -= n;
	pm->state_pages[PAGE_FREE] -= n;
	pm->state_pages[state] += n;
}

static void count_free_locked(struct pmm *pm, uint64_t n, enum page_state state)
{
	spin_assert_held(&pm->lock);
	pm->listed_pages += n;
	pm->state_pages[PAGE_FREE] += n;
	pm->state_pages[state] -= n;
}

/* ------------------------------------------------------------------ poisoning (debug) */

static void poison_frames(struct pmm *pm, uint64_t pfn, uint64_t n)
{
	memset(phys_to_virt(pfn_pa(pfn)), PMM_POISON_BYTE, n << PAGE_SHIFT);
	(void)pm;
}

static void check_poison(struct pmm *pm, uint64_t pfn, uint64_t n)
{
	const uint64_t pattern = 0x0101010101010101ull * PMM_POISON_BYTE;

	for (uint64_t i = 0; i < n; i++) {
		const uint64_t *w = phys_to_virt(pfn_pa(pfn + i));
		for (unsigned k = 0; k < PAGE_SIZE / 8; k++)
			if (unlikely(w[k] != pattern))
				panic("pmm: free frame %#llx (pfn %llu) was written after it was freed: offset %#x "
				      "holds %#llx",
				      (unsigned long long)pfn_pa(pfn + i), (unsigned long long)(pfn + i), k * 8,
				      (unsigned long long)w[k]);
	}
	(void)pm;
}

/* ------------------------------------------------------------------ the buddy lists */

static void list_push_locked(struct pmm *pm, struct pmm_zone *z, struct page *p, unsigned order)
{
	spin_assert_held(&pm->lock);
	list_add(&p->lru, &z->free[order]);
	z->nr_free[order]++;
}

static void list_pull_locked(struct pmm *pm, struct pmm_zone *z, struct page *p, unsigned order)
{
	spin_assert_held(&pm->lock);
	list_del(&p->lru);
	z->nr_free[order]--;
}

/* Splits the block at p (order high) down to order low, pushing the upper halves. */
static void expand_locked(struct pmm *pm, struct pmm_zone *z, struct page *p, unsigned low, unsigned high)
{
	spin_assert_held(&pm->lock);
	unsigned max_order = p->max_order;
	uint8_t poisoned = p->flags & PG_POISONED;

	while (high > low) {
		high--;
		struct page *b = p + (1ull << high);
		init_free_head(b, high, max_order, poisoned);
		list_push_locked(pm, z, b, high);
	}
	p->order = (uint8_t)low;
}

/* A block of `order` from zone z, or NULL. */
static struct page *rmqueue_locked(struct pmm *pm, struct pmm_zone *z, unsigned order)
{
	spin_assert_held(&pm->lock);
	for (unsigned o = order; o < PMM_NR_ORDERS; o++) {
		if (list_empty(&z->free[o]))
			continue;
		struct page *p = list_first_entry(&z->free[o], struct page, lru);
		list_pull_locked(pm, z, p, o);
		expand_locked(pm, z, p, order, o);
		z->free_pages -= 1ull << order;
		return p;
	}
	return NULL;
}

static struct page *rmqueue_zones_locked(struct pmm *pm, unsigned order, unsigned flags)
{
	spin_assert_held(&pm->lock);
	struct page *p = NULL;

	if (!(flags & PMM_LOW))
		p = rmqueue_locked(pm, &pm->zone[PMM_ZONE_HIGH], order);
	if (!p)
		p = rmqueue_locked(pm, &pm->zone[PMM_ZONE_LOW], order);
	return p;
}

/* Returns a free block to the lists, merging with free buddies up to its max_order. */
static void free_one_locked(struct pmm *pm, struct page *p, unsigned order, bool poisoned)
{
	spin_assert_held(&pm->lock);
	uint64_t pfn = pmm_pfn(pm, p);
	unsigned max_order = p->max_order;
	struct pmm_zone *z = &pm->zone[zone_of(pfn)];

	z->free_pages += 1ull << order;
	while (order < max_order) {
		struct page *b = pm->db + (pfn ^ (1ull << order));
		if (b->state != PAGE_FREE || b->order != order || (b->flags & PG_PCP))
			break;
		DEBUG_ASSERT(b->max_order == max_order);
		list_pull_locked(pm, z, b, order);
		poisoned = poisoned && (b->flags & PG_POISONED);
		pfn &= ~(1ull << order);
		order++;
	}
	struct page *h = pm->db + pfn;
	init_free_head(h, order, max_order, poisoned ? PG_POISONED : 0);
	list_push_locked(pm, z, h, order);
}

/* ------------------------------------------------------------------ building */

void pmm_add_free(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn)
{
	if (start_pfn < PMM_ZONE_LOW_END_PFN && end_pfn > PMM_ZONE_LOW_END_PFN) {
		pmm_add_free(pm, start_pfn, PMM_ZONE_LOW_END_PFN);
		pmm_add_free(pm, PMM_ZONE_LOW_END_PFN, end_pfn);
		return;
	}
	bool irq = spin_lock_irqsave(&pm->lock);
	struct pmm_zone *z = &pm->zone[zone_of(start_pfn)];
	for (uint64_t pfn = start_pfn; pfn < end_pfn;) {
		/* The largest aligned block that fits: nothing it could merge with is ours. */
		unsigned order = pfn ? MIN((unsigned)__builtin_ctzll(pfn), PMM_MAX_ORDER) : PMM_MAX_ORDER;
		while ((1ull << order) > end_pfn - pfn)
			order--;
		init_free_head(pm->db + pfn, order, order, 0);
		list_push_locked(pm, z, pm->db + pfn, order);
		pfn += 1ull << order;
	}
	uint64_t n = end_pfn - start_pfn;
	z->free_pages += n;
	pm->listed_pages += n;
	pm->total_pages += n;
	pm->state_pages[PAGE_FREE] += n;
	spin_unlock_irqrestore(&pm->lock, irq);
}

void pmm_add_used(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn, enum page_state state)
{
	bool irq = spin_lock_irqsave(&pm->lock);
	for (uint64_t pfn = start_pfn; pfn < end_pfn; pfn++)
		init_allocated(pm->db + pfn, 0, 0, state);
	pm->total_pages += end_pfn - start_pfn;
	pm->state_pages[state] += end_pfn - start_pfn;
	spin_unlock_irqrestore(&pm->lock, irq);
}

void pmm_add_opaque(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn, enum page_state state)
{
	if (start_pfn >= end_pfn)
		return;
	bool irq = spin_lock_irqsave(&pm->lock);
	range_insert(pm->opaque, &pm->nr_opaque, start_pfn, end_pfn);
	pm->total_pages += end_pfn - start_pfn;
	pm->state_pages[state] += end_pfn - start_pfn;
	spin_unlock_irqrestore(&pm->lock, irq);
}

/* ------------------------------------------------------------------ per-CPU caches */

/*
 * Every CPU has its own cache of order-0 frames, pm->pcp[spin_this_cpu()], under its own
 * lock. Its CPU takes that lock on every fast path (uncontended, the line stays in its own
 * cache); another CPU takes it only to empty the cache: one about to fail an allocation, a
 * contiguous allocation or a claim, pmm_drain_pcp. Frames move between a cache and the buddy
 * lists only in batches, with the cache's lock and then the pmm lock held (LOCK_RANK_PMM_PCP
 * is below LOCK_RANK_PMM); no CPU ever holds two caches' locks.
 */
static inline struct pmm_pcp *this_pcp(struct pmm *pm) { return &pm->pcp[spin_this_cpu()]; }

static inline void pcp_push_locked(struct pmm_pcp *c, struct page *p, unsigned max_order, uint8_t poisoned)
{
	spin_assert_held(&c->lock);
	init_free_head(p, 0, max_order, (uint8_t)(PG_PCP | poisoned));
	p->lru.next = c->head ? &c->head->lru : NULL;
	c->head = p;
	c->count++;
}

static inline struct page *pcp_pop_locked(struct pmm_pcp *c)
{
	spin_assert_held(&c->lock);
	struct page *p = c->head;

	if (p) {
		c->head = p->lru.next ? list_entry(p->lru.next, struct page, lru) : NULL;
		c->count--;
	}
	return p;
}

/* Moves a batch from the buddy lists into cache c (its lock held, so interrupts are off);
 * false when the lists had no frame left. */
static bool pcp_refill_locked(struct pmm *pm, struct pmm_pcp *c)
{
	spin_assert_held(&c->lock);
	unsigned moved = 0;

	spin_lock(&pm->lock);
	struct page *blk = rmqueue_zones_locked(pm, PCP_BATCH_ORDER, 0);
	if (blk) {
		uint8_t poisoned = blk->flags & PG_POISONED;
		unsigned max_order = blk->max_order;
		for (unsigned i = pm->pcp_batch; i-- > 0;)
			pcp_push_locked(c, blk + i, max_order, poisoned);
		moved = pm->pcp_batch;
	} else {
		/* No block that large left: gather single frames. */
		for (; moved < pm->pcp_batch; moved++) {
			struct page *p = rmqueue_zones_locked(pm, 0, 0);
			if (!p)
				break;
			pcp_push_locked(c, p, p->max_order, p->flags & PG_POISONED);
		}
	}
	pm->listed_pages -= moved;
	pm->state_pages[PAGE_FREE] -= moved;
	pm->pcp_moves++;
	spin_unlock(&pm->lock);
	return moved != 0;
}

/* Returns up to n frames of cache c to the buddy lists (both locks held). The batch is sorted
 * by frame number and every aligned run of consecutive frames (of one root) goes back as a
 * single block: frames freed in order then cost one list operation per run, not per frame. */
#define DRAIN_MAX 64

static void pcp_drain_locked(struct pmm *pm, struct pmm_pcp *c, unsigned n)
{
	spin_assert_held(&c->lock);
	spin_assert_held(&pm->lock);
	unsigned before = c->count;

	while (n && c->head) {
		uint64_t pfn[DRAIN_MAX];
		uint8_t poisoned[DRAIN_MAX];
		unsigned cnt = 0;

		/* LIFO pops give descending frames when they were freed ascending: fill from
		 * the back so that the common case arrives sorted. */
		unsigned want = MIN(n, DRAIN_MAX);
		while (cnt < want && c->head) {
			cnt++;
			pfn[DRAIN_MAX - cnt] = pmm_pfn(pm, pcp_pop_locked(c));
		}
		n -= cnt;
		uint64_t *v = pfn + DRAIN_MAX - cnt;
		for (unsigned i = 1; i < cnt; i++) { /* insertion sort: linear when nearly sorted */
			uint64_t x = v[i];
			unsigned j = i;
			while (j > 0 && v[j - 1] > x) {
				v[j] = v[j - 1];
				j--;
			}
			v[j] = x;
		}
		if (pm->poison)
			for (unsigned i = 0; i < cnt; i++)
				poisoned[i] = (pm->db[v[i]].flags & PG_POISONED) != 0;
		for (unsigned i = 0; i < cnt;) {
			/* The largest aligned run of consecutive cached frames starting at v[i]. */
			struct page *head = pm->db + v[i];
			unsigned k = 0;
			bool pois = pm->poison && poisoned[i];
			while (k < head->max_order && (v[i] & ((2ull << k) - 1)) == 0 && i + (2u << k) <= cnt &&
			       v[i + (2u << k) - 1] == v[i] + (2ull << k) - 1) {
				if (pm->poison)
					for (unsigned j = 1u << k; j < (2u << k); j++)
						pois = pois && poisoned[i + j];
				k++;
			}
			head->flags = 0;
			free_one_locked(pm, head, k, pois);
			i += 1u << k;
		}
	}
	pm->listed_pages += before - c->count;
	pm->state_pages[PAGE_FREE] += before - c->count;
	pm->pcp_moves++;
}

/* Empties cache c, this CPU's or another's, into the buddy lists; the frames it gave back.
 * The unlocked look at its count only skips caches that look empty (an allocation about to
 * fail cannot wait for frames still on their way into a cache anyway). */
static unsigned pcp_drain_cache(struct pmm *pm, struct pmm_pcp *c)
{
	if (!READ_ONCE(c->count))
		return 0;
	bool irq = spin_lock_irqsave(&c->lock);
	spin_lock(&pm->lock);
	unsigned n = c->count;
	pcp_drain_locked(pm, c, UINT32_MAX);
	spin_unlock(&pm->lock);
	spin_unlock_irqrestore(&c->lock, irq);
	return n;
}

/* Empties every CPU's cache, one at a time; how many frames came back. */
static uint64_t pcp_drain_all(struct pmm *pm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < SPIN_MAX_CPUS; i++)
		n += pcp_drain_cache(pm, &pm->pcp[i]);
	return n;
}

void pmm_drain_pcp(struct pmm *pm) { pcp_drain_all(pm); }

/* ------------------------------------------------------------------ allocation */

/* A block straight from the buddy lists, or NULL. */
static struct page *alloc_listed(struct pmm *pm, unsigned order, unsigned flags, enum page_state state, bool *poisoned)
{
	bool irq = spin_lock_irqsave(&pm->lock);
	struct page *p = rmqueue_zones_locked(pm, order, flags);
	if (p) {
		*poisoned = p->flags & PG_POISONED;
		init_allocated(p, order, p->max_order, state);
		count_alloc_locked(pm, 1ull << order, state);
	}
	spin_unlock_irqrestore(&pm->lock, irq);
	return p;
}

static __noinline struct page *alloc_slow(struct pmm *pm, unsigned order, unsigned flags, enum page_state state)
{
	struct page *p = NULL;
	bool poisoned = false;

	KASSERT(order <= PMM_MAX_ORDER && state != PAGE_FREE && state < PAGE_STATE_COUNT);
	if (order == 0 && !(flags & PMM_LOW)) {
		struct pmm_pcp *c = this_pcp(pm);
		bool irq = spin_lock_irqsave(&c->lock);
		if (c->head || pcp_refill_locked(pm, c)) {
			p = pcp_pop_locked(c);
			poisoned = p->flags & PG_POISONED;
			init_allocated(p, 0, p->max_order, state);
			c->state_delta[state]++;
		}
		spin_unlock_irqrestore(&c->lock, irq);
	} else {
		p = alloc_listed(pm, order, flags, state, &poisoned);
	}
	/* Nothing left on the lists: the caches (other CPUs', and for a block or a low frame
	 * this one's too) may hold free frames. Take them back and try the lists once more. */
	if (!p && pcp_drain_all(pm))
		p = alloc_listed(pm, order, flags, state, &poisoned);
	if (!p)
		return NULL;
	if (poisoned)
		check_poison(pm, pmm_pfn(pm, p), 1ull << order);
	if (flags & PMM_ZERO)
		zero_pages(phys_to_virt(pfn_pa(pmm_pfn(pm, p))), 1ull << order);
	return p;
}

struct page *pmm_alloc_in(struct pmm *pm, unsigned order, unsigned flags, enum page_state state)
{
	/* Fast path: one clean frame from this CPU's cache. */
	if (likely(order == 0 && flags == 0 && state != PAGE_FREE && state < PAGE_STATE_COUNT)) {
		struct pmm_pcp *c = this_pcp(pm);
		bool irq = spin_lock_irqsave(&c->lock);
		struct page *p = c->head;
		if (likely(p && !(p->flags & PG_POISONED))) {
			c->head = p->lru.next ? list_entry(p->lru.next, struct page, lru) : NULL;
			c->count--;
			init_allocated(p, 0, p->max_order, state);
			c->state_delta[state]++;
			spin_unlock_irqrestore(&c->lock, irq);
			return p;
		}
		spin_unlock_irqrestore(&c->lock, irq);
	}
	return alloc_slow(pm, order, flags, state);
}

/* The checks every free makes: a broken one is a kernel bug. */
static inline void check_freeable(struct pmm *pm, struct page *p, unsigned order)
{
	uint64_t pfn = pmm_pfn(pm, p);

	if (unlikely(p->state == PAGE_FREE))
		panic("pmm: double free of frame %#llx (pfn %llu): it is already free", (unsigned long long)pfn_pa(pfn),
		      (unsigned long long)pfn);
	if (unlikely(p->state == PAGE_RESERVED || p->state >= PAGE_STATE_COUNT))
		panic("pmm: freeing frame %#llx (pfn %llu) in state %s", (unsigned long long)pfn_pa(pfn),
		      (unsigned long long)pfn, page_state_name(p->state));
	if (unlikely(p->order != order))
		panic("pmm: frame %#llx (pfn %llu) freed as order %u but allocated as order %u",
		      (unsigned long long)pfn_pa(pfn), (unsigned long long)pfn, order, p->order);
	if (unlikely(p->pincount))
		panic("pmm: freeing frame %#llx (pfn %llu, %s) with %u pins", (unsigned long long)pfn_pa(pfn),
		      (unsigned long long)pfn, page_state_name(p->state), p->pincount);
	if (unlikely(p->flags & PG_TYPE_MASK))
		panic("pmm: freeing frame %#llx (pfn %llu, %s) whose direct-map entry is still of memory type %u",
		      (unsigned long long)pfn_pa(pfn), (unsigned long long)pfn, page_state_name(p->state),
		      (p->flags & PG_TYPE_MASK) >> PG_TYPE_SHIFT);
	DEBUG_ASSERT(pmm_pfn_described(pm, pfn));
}

static __noinline void free_slow(struct pmm *pm, struct page *p, unsigned order)
{
	uint64_t n = 1ull << order;
	bool poisoned = pm->poison && order <= PMM_POISON_MAX_ORDER;

	KASSERT(order <= PMM_MAX_ORDER);
	check_freeable(pm, p, order);
	if (poisoned)
		poison_frames(pm, pmm_pfn(pm, p), n);
	if (order == 0) {
		struct pmm_pcp *c = this_pcp(pm);
		bool irq = spin_lock_irqsave(&c->lock);
		c->state_delta[p->state]--;
		pcp_push_locked(c, p, p->max_order, poisoned ? PG_POISONED : 0);
		if (c->count > pm->pcp_high) {
			spin_lock(&pm->lock);
			pcp_drain_locked(pm, c, pm->pcp_batch);
			spin_unlock(&pm->lock);
		}
		spin_unlock_irqrestore(&c->lock, irq);
		return;
	}
	bool irq = spin_lock_irqsave(&pm->lock);
	count_free_locked(pm, n, p->state);
	free_one_locked(pm, p, order, poisoned);
	spin_unlock_irqrestore(&pm->lock, irq);
}

void pmm_free_in(struct pmm *pm, struct page *p, unsigned order)
{
	/* Fast path: a sound order-0 frame into this CPU's cache while it has room. */
	if (likely(order == 0 && !pm->poison && p->state != PAGE_FREE && p->state != PAGE_RESERVED &&
		   p->state < PAGE_STATE_COUNT && p->order == 0 && !p->pincount)) {
		struct pmm_pcp *c = this_pcp(pm);
		bool irq = spin_lock_irqsave(&c->lock);
		if (likely(c->count < pm->pcp_high)) {
			c->state_delta[p->state]--;
			pcp_push_locked(c, p, p->max_order, 0);
			spin_unlock_irqrestore(&c->lock, irq);
			return;
		}
		spin_unlock_irqrestore(&c->lock, irq);
	}
	free_slow(pm, p, order);
}

void pmm_split_allocation(struct pmm *pm, struct page *head, unsigned order)
{
	(void)pm;
	KASSERT(head->state != PAGE_FREE && head->order == order);
	for (uint64_t i = 1; i < (1ull << order); i++)
		init_allocated(head + i, 0, head->max_order, head->state);
	head->order = 0;
}

/* ------------------------------------------------------------------ contiguous ranges */

static unsigned order_for(uint64_t npages) { return npages <= 1 ? 0 : ilog2_u64(npages - 1) + 1; }

/*
 * Block (head, order) has been taken off the lists and the frames [start, end) inside it
 * handed out (their descriptors written). Frees the rest as maximal aligned pieces. Every
 * piece is first marked in use, so that a merge never reads the stale head of a piece not
 * yet freed; after the last free the pieces have merged as far as they can. Lock held.
 */
static void free_outside_locked(struct pmm *pm, uint64_t head, unsigned order, uint64_t start, uint64_t end,
				unsigned max_order, bool poisoned)
{
	spin_assert_held(&pm->lock);
	uint64_t piece[2 * PMM_NR_ORDERS];
	uint8_t piece_order[2 * PMM_NR_ORDERS];
	unsigned n = 0;
	/* Iterative split: a stack of blocks that overlap the taken range. */
	uint64_t stack_pfn[PMM_NR_ORDERS + 1];
	unsigned stack_order[PMM_NR_ORDERS + 1], top = 0;

	stack_pfn[top] = head;
	stack_order[top++] = order;
	while (top) {
		uint64_t pfn = stack_pfn[--top];
		unsigned o = stack_order[top];
		uint64_t size = 1ull << o;
		if (pfn >= start && pfn + size <= end)
			continue; /* taken */
		if (pfn + size <= start || pfn >= end) {
			KASSERT(n < ARRAY_SIZE(piece));
			piece[n] = pfn;
			piece_order[n++] = (uint8_t)o;
			continue;
		}
		stack_pfn[top] = pfn;
		stack_order[top++] = o - 1;
		stack_pfn[top] = pfn + size / 2;
		stack_order[top++] = o - 1;
	}
	for (unsigned i = 0; i < n; i++)
		init_allocated(pm->db + piece[i], piece_order[i], max_order, PAGE_KERNEL);
	for (unsigned i = 0; i < n; i++)
		free_one_locked(pm, pm->db + piece[i], piece_order[i], poisoned);
}

struct page *pmm_alloc_contig_in(struct pmm *pm, uint64_t npages, uint64_t align_pages, uint64_t limit_pa,
				 unsigned flags, enum page_state state)
{
	if (npages == 0 || !is_pow2(align_pages) || state == PAGE_FREE || state >= PAGE_STATE_COUNT)
		return NULL;
	unsigned order = MAX(order_for(npages), ilog2_u64(align_pages));
	uint64_t limit_pfn = limit_pa >> PAGE_SHIFT;
	if (order > PMM_MAX_ORDER)
		return NULL;

	pcp_drain_all(pm); /* cached frames may complete a block */
	bool irq = spin_lock_irqsave(&pm->lock);
	struct page *found = NULL;
	unsigned found_order = 0, zone = 0;
	for (int zi = PMM_ZONE_HIGH; zi >= PMM_ZONE_LOW && !found; zi--) {
		if ((flags & PMM_LOW) && zi == PMM_ZONE_HIGH)
			continue;
		struct pmm_zone *z = &pm->zone[zi];
		for (unsigned o = order; o < PMM_NR_ORDERS && !found; o++) {
			struct list_head *pos;
			list_for_each(pos, &z->free[o]) {
				struct page *p = list_entry(pos, struct page, lru);
				if (pmm_pfn(pm, p) + npages <= limit_pfn) {
					found = p;
					found_order = o;
					zone = (unsigned)zi;
					break;
				}
			}
		}
	}
	if (!found) {
		spin_unlock_irqrestore(&pm->lock, irq);
		return NULL;
	}
	struct pmm_zone *z = &pm->zone[zone];
	uint64_t pfn = pmm_pfn(pm, found);
	unsigned max_order = found->max_order;
	bool poisoned = found->flags & PG_POISONED;
	list_pull_locked(pm, z, found, found_order);
	expand_locked(pm, z, found, order, found_order);
	z->free_pages -= 1ull << order;
	/* Hand out frame by frame, then give back what the request does not need. */
	for (uint64_t i = 0; i < npages; i++)
		init_allocated(found + i, 0, max_order, state);
	free_outside_locked(pm, pfn, order, pfn, pfn + npages, max_order, poisoned);
	count_alloc_locked(pm, npages, state);
	spin_unlock_irqrestore(&pm->lock, irq);

	if (poisoned)
		check_poison(pm, pfn, npages);
	if (flags & PMM_ZERO)
		zero_pages(phys_to_virt(pfn_pa(pfn)), npages);
	return found;
}

void pmm_free_contig_in(struct pmm *pm, struct page *first, uint64_t npages)
{
	uint64_t pfn = pmm_pfn(pm, first);

	for (uint64_t i = 0; i < npages; i++)
		check_freeable(pm, first + i, 0);
	if (pm->poison)
		poison_frames(pm, pfn, npages);
	bool irq = spin_lock_irqsave(&pm->lock);
	for (uint64_t i = 0; i < npages; i++) {
		count_free_locked(pm, 1, first[i].state);
		free_one_locked(pm, first + i, 0, pm->poison);
	}
	spin_unlock_irqrestore(&pm->lock, irq);
}

/* ------------------------------------------------------------------ claiming a given range */

enum block_lookup { BLOCK_FREE, BLOCK_IN_USE, BLOCK_CACHED };

/*
 * The free block (on a list) containing pfn: its head and order. Lock held, caches drained
 * (BLOCK_CACHED: the frame is in a cache again, refilled meanwhile by some CPU).
 * Tries heads align_down(pfn, 2^k) from the largest k down: above the order m of the block
 * holding pfn, each is the current head of a smaller block (order < k); at k = m it is that
 * block's head. Below m it would be a tail with a stale descriptor, so the first head whose
 * order equals k decides, free or not.
 */
static enum block_lookup find_free_block_locked(struct pmm *pm, uint64_t pfn, uint64_t *head, unsigned *order)
{
	spin_assert_held(&pm->lock);
	for (int k = PMM_MAX_ORDER; k >= 0; k--) {
		uint64_t h = pfn & ~((1ull << k) - 1);
		if (!pmm_pfn_described(pm, h))
			continue;
		const struct page *p = pm->db + h;
		if (p->order != (unsigned)k)
			continue;
		if (p->state != PAGE_FREE)
			return BLOCK_IN_USE;
		if (p->flags & PG_PCP)
			return BLOCK_CACHED;
		*head = h;
		*order = (unsigned)k;
		return BLOCK_FREE;
	}
	return BLOCK_IN_USE;
}

Retcode pmm_claim_in(struct pmm *pm, uint64_t pa, uint64_t npages, enum page_state state)
{
	if (!is_aligned(pa, PAGE_SIZE) || npages == 0 || state == PAGE_FREE || state >= PAGE_STATE_COUNT)
		return rcInvalidArgument;
	uint64_t start = pa >> PAGE_SHIFT, end = start + npages;
	if (end < start || end > (UINT64_MAX >> PAGE_SHIFT))
		return rcInvalidArgument;
	for (uint64_t pfn = start; pfn < end; pfn++)
		if (!pmm_pfn_described(pm, pfn))
			return rcNotFound;

	uint64_t head;
	unsigned order;
	bool irq;
	/* Cached frames are free: drain the caches first. Another CPU may refill its cache
	 * from the range before the lock is taken; then drain again (a few times at most). */
	for (unsigned attempt = 0;; attempt++) {
		enum block_lookup r = BLOCK_FREE;
		pcp_drain_all(pm);
		irq = spin_lock_irqsave(&pm->lock);
		for (uint64_t pfn = start; pfn < end && r == BLOCK_FREE; pfn = head + (1ull << order))
			r = find_free_block_locked(pm, pfn, &head, &order);
		if (r == BLOCK_FREE)
			break;
		spin_unlock_irqrestore(&pm->lock, irq);
		if (r == BLOCK_IN_USE || attempt == 3)
			return rcBusy;
	}
	for (uint64_t pfn = start; pfn < end;) {
		enum block_lookup r = find_free_block_locked(pm, pfn, &head, &order);
		KASSERT(r == BLOCK_FREE);
		struct page *p = pm->db + head;
		struct pmm_zone *z = &pm->zone[zone_of(head)];
		unsigned max_order = p->max_order;
		bool poisoned = p->flags & PG_POISONED;
		list_pull_locked(pm, z, p, order);
		z->free_pages -= 1ull << order;
		for (uint64_t f = MAX(head, start); f < MIN(head + (1ull << order), end); f++)
			init_allocated(pm->db + f, 0, max_order, state);
		free_outside_locked(pm, head, order, start, end, max_order, poisoned);
		pfn = head + (1ull << order);
	}
	count_alloc_locked(pm, npages, state);
	spin_unlock_irqrestore(&pm->lock, irq);
	return rcOk;
}

/* ------------------------------------------------------------------ statistics and checks */

static uint64_t pcp_moves(struct pmm *pm)
{
	bool irq = spin_lock_irqsave(&pm->lock);
	uint64_t moves = pm->pcp_moves;
	spin_unlock_irqrestore(&pm->lock, irq);
	return moves;
}

void pmm_get_stats(struct pmm *pm, struct pmm_stats *st)
{
	/* Each cache under its own lock, then the lists under the pmm lock; again if a batch
	 * moved between a cache and the lists meanwhile (it would be counted twice or not at
	 * all). Allocations and frees from the caches move no frame between them: each cache's
	 * count plus its deltas changes only with a batch, so the states always add up. */
	for (unsigned attempt = 0;; attempt++) {
		uint64_t moves = pcp_moves(pm), cached = 0;
		int64_t delta[PAGE_STATE_COUNT] = { 0 };
		for (unsigned i = 0; i < SPIN_MAX_CPUS; i++) {
			struct pmm_pcp *c = &pm->pcp[i];
			bool irq = spin_lock_irqsave(&c->lock);
			cached += c->count;
			for (unsigned s = 0; s < PAGE_STATE_COUNT; s++)
				delta[s] += c->state_delta[s];
			spin_unlock_irqrestore(&c->lock, irq);
		}
		bool irq = spin_lock_irqsave(&pm->lock);
		if (pm->pcp_moves != moves && attempt < 16) {
			spin_unlock_irqrestore(&pm->lock, irq);
			continue;
		}
		memset(st, 0, sizeof(*st));
		st->total = pm->total_pages;
		st->free = pm->listed_pages + cached;
		st->pcp = cached;
		for (unsigned s = 0; s < PAGE_STATE_COUNT; s++)
			st->state[s] = pm->state_pages[s] + (uint64_t)delta[s];
		st->state[PAGE_FREE] = st->free;
		for (unsigned z = 0; z < PMM_NR_ZONES; z++) {
			st->zone_free[z] = pm->zone[z].free_pages;
			for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
				st->free_blocks[z][o] = pm->zone[z].nr_free[o];
		}
		spin_unlock_irqrestore(&pm->lock, irq);
		return;
	}
}

uint64_t pmm_free_pages_in(struct pmm *pm)
{
	struct pmm_stats st;

	pmm_get_stats(pm, &st);
	return st.free;
}

#define CHECK(cond, ...)                                   \
	do {                                               \
		if (!(cond)) {                             \
			ksnprintf(why, size, __VA_ARGS__); \
			goto fail;                         \
		}                                          \
	} while (0)

/* One CPU's cache: free order-0 frames marked cached, as many as it counts. */
static bool check_cache(struct pmm *pm, unsigned cpu, char *why, size_t size)
{
	struct pmm_pcp *c = &pm->pcp[cpu];
	unsigned cached = 0;
	bool irq = spin_lock_irqsave(&c->lock);
	spin_lock(&pm->lock);

	for (const struct page *p = c->head; p; p = p->lru.next ? list_entry(p->lru.next, struct page, lru) : NULL) {
		CHECK(p->state == PAGE_FREE && (p->flags & PG_PCP) && p->order == 0,
		      "bad page in the per-CPU cache of CPU %u: pfn %llu", cpu, (unsigned long long)pmm_pfn(pm, p));
		CHECK(++cached <= c->count, "CPU %u's cache longer than its count %u", cpu, c->count);
	}
	CHECK(cached == c->count, "CPU %u's cache count %u, found %u", cpu, c->count, cached);
	spin_unlock(&pm->lock);
	spin_unlock_irqrestore(&c->lock, irq);
	return true;
fail:
	spin_unlock(&pm->lock);
	spin_unlock_irqrestore(&c->lock, irq);
	return false;
}

bool pmm_check(struct pmm *pm, char *why, size_t size)
{
	for (unsigned cpu = 0; cpu < SPIN_MAX_CPUS; cpu++)
		if (!check_cache(pm, cpu, why, size))
			return false;

	struct pmm_stats st;
	pmm_get_stats(pm, &st);
	uint64_t states = 0;
	for (unsigned s = 0; s < PAGE_STATE_COUNT; s++)
		states += st.state[s];
	if (states != st.total) {
		ksnprintf(why, size, "states add up to %llu, total is %llu", (unsigned long long)states,
			  (unsigned long long)st.total);
		return false;
	}

	bool irq = spin_lock_irqsave(&pm->lock);
	uint64_t listed = 0;

	for (unsigned zi = 0; zi < PMM_NR_ZONES; zi++) {
		const struct pmm_zone *z = &pm->zone[zi];
		uint64_t zone_pages = 0;
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++) {
			uint64_t blocks = 0;
			const struct list_head *pos;
			list_for_each(pos, &z->free[o]) {
				const struct page *p = list_entry(pos, struct page, lru);
				uint64_t pfn = pmm_pfn(pm, p);
				CHECK(pos->next->prev == pos, "broken list links at pfn %llu", (unsigned long long)pfn);
				CHECK(p->state == PAGE_FREE && !(p->flags & PG_PCP), "pfn %llu on free list %u is %s",
				      (unsigned long long)pfn, o, page_state_name(p->state));
				CHECK(p->order == o, "pfn %llu on list %u says order %u", (unsigned long long)pfn, o,
				      p->order);
				CHECK(o <= p->max_order, "pfn %llu order %u above its max %u", (unsigned long long)pfn,
				      o, p->max_order);
				CHECK((pfn & ((1ull << o) - 1)) == 0, "pfn %llu misaligned for order %u",
				      (unsigned long long)pfn, o);
				CHECK(zone_of(pfn) == zi && zone_of(pfn + (1ull << o) - 1) == zi,
				      "block at pfn %llu order %u outside zone %u", (unsigned long long)pfn, o, zi);
				CHECK(pmm_pfn_described(pm, pfn) && pmm_pfn_described(pm, pfn + (1ull << o) - 1),
				      "block at pfn %llu order %u outside RAM", (unsigned long long)pfn, o);
				blocks++;
				zone_pages += 1ull << o;
			}
			CHECK(blocks == z->nr_free[o], "zone %u order %u: %llu blocks listed, counter says %llu", zi, o,
			      (unsigned long long)blocks, (unsigned long long)z->nr_free[o]);
		}
		CHECK(zone_pages == z->free_pages, "zone %u: %llu free pages listed, counter says %llu", zi,
		      (unsigned long long)zone_pages, (unsigned long long)z->free_pages);
		listed += zone_pages;
	}
	CHECK(listed == pm->listed_pages, "%llu pages on the lists, counter says %llu", (unsigned long long)listed,
	      (unsigned long long)pm->listed_pages);
	CHECK(pm->state_pages[PAGE_FREE] == pm->listed_pages, "free-state count differs from listed pages");
	spin_unlock_irqrestore(&pm->lock, irq);
	return true;
fail:
	spin_unlock_irqrestore(&pm->lock, irq);
	return false;
}
