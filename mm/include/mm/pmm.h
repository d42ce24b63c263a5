/* SPDX-License-Identifier: MIT */
/*
 * The physical page manager: a buddy allocator over the page database (mm/page.h).
 *
 * An instance (struct pmm) owns some RAM: the kernel has one, pmm_main, and the tests build
 * private ones over simulated memory maps. Blocks are 2^order frames, order 0..PMM_MAX_ORDER
 * (4 KiB .. 1 GiB), aligned to their size, in two zones: below 4 GiB and above. Order-0
 * frames go through per-CPU caches. Statistics feed the `vm` report.
 *
 * Locking: every function takes the instance lock and the per-CPU cache locks itself
 * (interrupts off while held); none may be called with one held. None sleeps.
 */
#ifndef MM_PMM_H
#define MM_PMM_H

#include <kn/retcode.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/spinlock.h>
#include <mm/page.h>

#define PMM_MAX_ORDER  18 /* 1 GiB blocks: a 256 GiB machine starts with ~256 of them */
#define PMM_NR_ORDERS  (PMM_MAX_ORDER + 1)
#define PMM_MAX_RANGES 64

/* Allocation flags */
#define PMM_ZERO (1u << 0) /* fill the frames with zeros (fastest method the CPU has) */
#define PMM_LOW  (1u << 1) /* only below 4 GiB (devices with 32-bit DMA) */

enum pmm_zone_id { PMM_ZONE_LOW, PMM_ZONE_HIGH, PMM_NR_ZONES };
#define PMM_ZONE_LOW_END_PFN ((uint64_t)GiB(4) >> PAGE_SHIFT)

/* Debug builds poison frames freed in blocks up to this order and check them on reuse. */
#define PMM_POISON_MAX_ORDER 4
#define PMM_POISON_BYTE      0x6b

struct pmm_zone {
	struct list_head free[PMM_NR_ORDERS];
	uint64_t nr_free[PMM_NR_ORDERS]; /* blocks on each list */
	uint64_t free_pages;             /* in the lists (not the per-CPU cache) */
};

/*
 * One CPU's cache of free order-0 frames. Its lock is taken by its CPU on the fast paths
 * (uncontended: the line stays in that CPU's cache) and by any CPU that drains it: a CPU
 * that would otherwise fail an allocation, a contiguous allocation or claim, pmm_drain_pcp.
 * The frames it holds are free; `state_delta` counts, per state, the frames this cache
 * handed out (+1) or took back (-1), so that the fast paths write no shared counter.
 */
struct pmm_pcp {
	spinlock_t lock;   /* rank LOCK_RANK_PMM_PCP, taken before the pmm lock */
	struct page *head; /* LIFO through lru.next */
	unsigned count;
	int64_t state_delta[PAGE_STATE_COUNT];
} __aligned(64);

struct pmm_range {
	uint64_t start, end; /* pfns, [start, end) */
};

struct pmm {
	spinlock_t lock;
	struct page *db; /* the descriptor of pfn 0 (db + pfn is the descriptor of pfn) */
	struct pmm_zone zone[PMM_NR_ZONES];
	unsigned pcp_high, pcp_batch;
	bool poison;
	uint64_t total_pages; /* every RAM frame this instance accounts for */
	/* Under the lock, the caches left out: the true figures are these plus every cache's
	 * count and state_delta (pmm_get_stats, pmm_free_pages_in add them up). */
	uint64_t listed_pages; /* on the buddy lists (state_pages[PAGE_FREE] too) */
	uint64_t state_pages[PAGE_STATE_COUNT];
	uint64_t pcp_moves; /* batches moved between lists and caches (consistent sums) */
	/* RAM whose descriptors exist, and parts of it that have none (the database's own frames). */
	unsigned nr_ram, nr_opaque;
	struct pmm_range ram[PMM_MAX_RANGES], opaque[PMM_MAX_RANGES];
	struct pmm_pcp pcp[SPIN_MAX_CPUS]; /* indexed by spin_this_cpu() */
};

struct pmm_stats {
	uint64_t total, free, pcp;
	uint64_t state[PAGE_STATE_COUNT];
	uint64_t free_blocks[PMM_NR_ZONES][PMM_NR_ORDERS];
	uint64_t zone_free[PMM_NR_ZONES];
};

/* ---- building an instance (boot, tests) ---- */

/* An empty instance whose descriptor array puts pfn 0 at `db`. */
void pmm_setup(struct pmm *pm, struct page *db, bool poison);
/* Declares RAM frames [start, end) whose descriptors exist (call before the next three). */
void pmm_add_ram(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn);
/* Hands free frames to the allocator as maximal aligned blocks, initialising only the
 * block heads: O(log n) per range, independent of its size. */
void pmm_add_free(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn);
/* Frames in use since boot: their descriptors get `state`; they may be freed later (order 0). */
void pmm_add_used(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn, enum page_state state);
/* Frames counted as `state` that have no descriptor and are never freed (the page database's
 * own backing): nothing ever reads their descriptors. */
void pmm_add_opaque(struct pmm *pm, uint64_t start_pfn, uint64_t end_pfn, enum page_state state);

/* ---- allocation ---- */

/*
 * A block of 2^order frames (head descriptor returned, tails not initialised), or NULL when
 * no zone allowed by `flags` has one. The frames get `state` and a reference count of 1.
 */
struct page *pmm_alloc_in(struct pmm *pm, unsigned order, unsigned flags, enum page_state state);
/* Frees a block pmm_alloc_in returned with the same order. Double frees, frees of reserved
 * frames and order mismatches are kernel bugs: panic with the frame number and its state. */
void pmm_free_in(struct pmm *pm, struct page *page, unsigned order);

/*
 * `npages` physically contiguous frames aligned to `align_pages` (a power of two), ending at
 * or below `limit_pa` (exclusive), as npages order-0 allocations (every descriptor valid), or
 * NULL. NT MmAllocateContiguousMemory. Freed with pmm_free_contig_in.
 */
struct page *pmm_alloc_contig_in(struct pmm *pm, uint64_t npages, uint64_t align_pages, uint64_t limit_pa,
				 unsigned flags, enum page_state state);
void pmm_free_contig_in(struct pmm *pm, struct page *first, uint64_t npages);

/*
 * Takes the free frames [pa, pa + npages pages) out of the allocator with `state` (firmware
 * or device ranges that must not be handed out), as order-0 allocations.
 *   rcInvalidArgument  unaligned, empty or wrapping range
 *   rcNotFound         part of the range is not RAM this instance owns
 *   rcBusy             part of the range is not free (nothing changed)
 */
Retcode pmm_claim_in(struct pmm *pm, uint64_t pa, uint64_t npages, enum page_state state);

/* Turns an order-k allocation into 2^k order-0 allocations (initialises the tails). */
void pmm_split_allocation(struct pmm *pm, struct page *head, unsigned order);

/* Returns every CPU's cache to the buddy lists (so that blocks can merge again). */
void pmm_drain_pcp(struct pmm *pm);

/* The figures, caches included: each cache is read under its own lock, and the sum is
 * retried while batches move between lists and caches, so it is exact whenever no frame is
 * allocated or freed meanwhile (a frame allocated on one CPU and freed on another during
 * the sum may be counted in both caches' figures). */
void pmm_get_stats(struct pmm *pm, struct pmm_stats *st);
/* Free frames, cached ones included (as pmm_get_stats's `free`). */
uint64_t pmm_free_pages_in(struct pmm *pm);

/* Checks every invariant of the free lists and counters; false (reason in why) if broken. */
bool pmm_check(struct pmm *pm, char *why, size_t size);

static inline uint64_t pmm_pfn(const struct pmm *pm, const struct page *p) { return (uint64_t)(p - pm->db); }
static inline struct page *pmm_page(const struct pmm *pm, uint64_t pfn) { return pm->db + pfn; }
/* The frame has a descriptor (RAM owned by the instance, outside the opaque ranges). */
bool pmm_pfn_described(const struct pmm *pm, uint64_t pfn);
/* The frame is RAM this instance accounts for (described or not). */
bool pmm_pfn_is_ram(const struct pmm *pm, uint64_t pfn);

/* ---- the kernel's instance ---- */

extern struct pmm pmm_main;

struct boot_info;
/* Builds pmm_main from the boot allocator's view (mm/pmm_boot.c); page tables come from it
 * afterwards. */
void pmm_init(const struct boot_info *bi);

static inline struct page *pmm_alloc(unsigned order, unsigned flags, enum page_state state)
{
	return pmm_alloc_in(&pmm_main, order, flags, state);
}
static inline void pmm_free(struct page *page, unsigned order) { pmm_free_in(&pmm_main, page, order); }
static inline uint64_t page_to_pa(const struct page *p) { return pmm_pfn(&pmm_main, p) << PAGE_SHIFT; }
static inline struct page *pa_to_page(uint64_t pa) { return pmm_page(&pmm_main, pa >> PAGE_SHIFT); }
static inline void *page_to_va(const struct page *p) { return phys_to_virt(page_to_pa(p)); }
uint64_t pmm_free_pages(void);

#endif
