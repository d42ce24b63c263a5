/* SPDX-License-Identifier: MIT */
/*
 * Kernel pools (NT ExAllocatePoolWithTag) and lookaside lists (ExInitializeNPagedLookasideList).
 *
 * pool_alloc(size, tag): a block of at least `size` bytes, 16-byte aligned, never paged,
 * with a red zone after it that pool_free checks (an overrun is a kernel bug: panic naming the
 * tag). Usage is counted per tag (the `pool` report, like !poolused). NULL when out of memory.
 * Blocks up to 2 KiB come from size-class slabs; larger ones get their own pages with an
 * unmapped guard page after them. All pool memory lives in the pool area of the kernel
 * dynamic area and is charged to the commit limit.
 *
 * A lookaside list keeps up to `depth` freed blocks of one size for reuse without the pool.
 */
#ifndef KNMM_POOL_H
#define KNMM_POOL_H

#include <kn/retcode.h>
#include <knmm/compiler.h>
#include <knmm/spinlock.h>

#define POOL_TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

void *pool_alloc(size_t size, uint32_t tag);
void pool_free(void *p);
/* What a block of `size` bytes really takes from the pool (its size class, or its pages):
 * the bytes charged to an account for it (mm/charge.h). */
size_t pool_block_cost(size_t size);
/* The size a live block was asked with. */
size_t pool_block_size(const void *p);
/* Checks a live block's header and red zone without freeing it: rcOk, or rcFault with a
 * description in why (tests and debugging). */
Retcode pool_check(const void *p, char *why, size_t size);

struct pool_tag_stats {
	uint32_t tag;
	uint64_t allocs, frees, bytes; /* bytes: requested sizes of the live blocks */
};
/* Usage per tag (live tags first); returns the number of entries written. */
unsigned pool_tag_usage(struct pool_tag_stats *out, unsigned max);
/* Pages of memory the pool holds (slabs and large blocks), and the page tables mapping them
 * (both charged to the commit limit). */
uint64_t pool_pages(void);
uint64_t pool_table_pages(void);
void pool_tag_name(uint32_t tag, char out[5]);
/* Returns completely free slab segments to the page allocator. */
void pool_trim(void);

struct lookaside {
	spinlock_t lock;
	const char *name;
	size_t size;
	uint32_t tag;
	unsigned depth, count; /* keep at most depth free blocks; count now */
	void *head;            /* free blocks, linked through their first word */
	uint64_t allocs, frees, hits, misses;
	struct lookaside *next_list; /* all lists, for the report */
	bool registered;
};

#define LOOKASIDE_INIT(var, n, sz, tg, dp)                                                                     \
	{                                                                                                      \
		SPINLOCK_INIT(n, LOCK_RANK_LOOKASIDE), (n), (sz), (tg), (dp), 0, NULL, 0, 0, 0, 0, NULL, false \
	}

void lookaside_register(struct lookaside *l);
void *lookaside_alloc(struct lookaside *l);
void lookaside_free(struct lookaside *l, void *p);
/* Every registered list (for the report). */
struct lookaside *lookaside_lists(void);
/* Gives every cached block back to the pool. */
void lookaside_trim(struct lookaside *l);

#endif
