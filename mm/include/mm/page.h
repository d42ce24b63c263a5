/* SPDX-License-Identifier: MIT */
/*
 * The page database: one 32-byte descriptor per 4 KiB frame, in a virtually contiguous
 * array (PAGEDB_BASE + pfn * 32) mapped only where RAM exists (SPEC §3).
 *
 * Descriptors are initialised lazily. Valid at all times are: the head of every free block,
 * every page of the per-CPU caches, the head of every allocation (and every page of an
 * allocation after pmm_split_allocation), and every frame the boot handed over as used.
 * The tails of free blocks and of unsplit allocations hold whatever was there; nothing
 * reads them (see mm/pmm.c for why the buddy logic never needs to).
 */
#ifndef MM_PAGE_H
#define MM_PAGE_H

#include <knmm/compiler.h>
#include <knmm/list.h>

enum page_state {
	PAGE_FREE = 0,
	PAGE_RESERVED, /* firmware, the first MiB, never handed out */
	PAGE_KERNEL,   /* kernel image, boot data, page database, kernel allocations */
	PAGE_TABLE,    /* page-table pages */
	PAGE_ANON,     /* committed pages of address spaces */
	PAGE_MDL,      /* frames owned by MDL objects */
	PAGE_POOL,     /* kernel pool backing */
	PAGE_STATE_COUNT
};

/* page.flags */
#define PG_PCP      (1u << 0) /* free, parked in a per-CPU cache (not in the buddy lists) */
#define PG_POISONED (1u << 1) /* free block whose contents hold the poison pattern */
/* An allocated frame's memory type when it is not write-back: its entry in the direct map
 * was changed to match (mm/frame.h). 0 write-back, else enum frame_type. */
#define PG_TYPE_SHIFT 2
#define PG_TYPE_MASK  (3u << PG_TYPE_SHIFT)

struct page {
	struct list_head lru; /* free list, per-CPU cache, or the owner's list */
	uint32_t refcount;    /* mappings and owners holding the frame */
	uint32_t pincount;    /* MDL / probe-and-lock pins: the frame may not move or go */
	uint8_t state;        /* enum page_state */
	uint8_t order;        /* order of the block this descriptor heads */
	uint8_t max_order;    /* the largest block this frame may merge into */
	uint8_t flags;        /* PG_* */
	uint32_t private;     /* owner's word: entry count of a page table, pool tag, ... */
};

_Static_assert(sizeof(struct page) == 32, "struct page must stay 32 bytes (SPEC §3)");

const char *page_state_name(enum page_state s);

/*
 * The frame lifecycle (docs/mdl.md "Who owns a frame"): references and pins change only
 * through these. A reference is a holder (a mapping, an MDL, the allocation itself); the
 * last one to go frees the frame. A pin (an MDL's, with its reference) says the frame may
 * neither move nor go: decommit refuses a pinned range, pmm_free a pinned frame panics.
 * Atomic, so callers need no common lock; an underflow is a kernel bug (panic).
 */
__noreturn void page_count_underflow(const struct page *p, const char *count);

/* A frame just allocated: one reference (its allocator's caller), no pin. */
static inline void page_refs_init(struct page *p)
{
	p->refcount = 1;
	p->pincount = 0;
}

static inline void page_ref(struct page *p) { __atomic_add_fetch(&p->refcount, 1, __ATOMIC_ACQ_REL); }

/* Drops a reference; true if it was the last: the caller frees the frame. */
static inline bool page_unref(struct page *p)
{
	uint32_t left = __atomic_sub_fetch(&p->refcount, 1, __ATOMIC_ACQ_REL);
	if (unlikely(left == UINT32_MAX))
		page_count_underflow(p, "reference");
	return left == 0;
}

/* Takes a pin; true if it was the first (the frame became pinned). */
static inline bool page_pin(struct page *p) { return __atomic_fetch_add(&p->pincount, 1, __ATOMIC_ACQ_REL) == 0; }

/* Drops a pin; true if it was the last. */
static inline bool page_unpin(struct page *p)
{
	uint32_t left = __atomic_sub_fetch(&p->pincount, 1, __ATOMIC_ACQ_REL);
	if (unlikely(left == UINT32_MAX))
		page_count_underflow(p, "pin");
	return left == 0;
}

/* The references held now (a frame mapped once and held by nobody else has one). */
static inline uint32_t page_refs(const struct page *p) { return __atomic_load_n(&p->refcount, __ATOMIC_ACQUIRE); }

static inline bool page_pinned(const struct page *p) { return __atomic_load_n(&p->pincount, __ATOMIC_ACQUIRE) != 0; }

#endif
