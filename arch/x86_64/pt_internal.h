/* SPDX-License-Identifier: MIT */
/*
 * What the page-table files share (pt.c: tables, roots, single addresses, map, collapse;
 * pt_range.c: the range walk and what is built on it). Private to arch/x86_64.
 *
 * Tables are reached through the direct map. Every table from a frame source with words
 * carries an occupancy summary; every operation that changes entries batches its TLB
 * invalidations and table frees in a struct pt_op and ends with pt_op_finish.
 */
#ifndef ARCH_X86_64_PT_INTERNAL_H
#define ARCH_X86_64_PT_INTERNAL_H

#include <arch/pt.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include <knmm/layout.h>

static inline pte_t *table_of(uint64_t pa) { return (pte_t *)phys_to_virt(pa); }

static inline bool in_user_half(uint64_t va) { return va < DIRECT_MAP_BASE; }

/* ------------------------------------------------------------------ tables (pt.c) */

/*
 * A table's summary word: SUM_TRACKED, and bit c set when entries [32c, 32c + 32) hold
 * anything. Kept by every write that can change an entry from zero to non-zero or back;
 * bulk clears (unmap, prune) refresh the chunks they touched once, at the end.
 */
#define SUM_TRACKED   (1u << 31)
#define CHUNK_SHIFT   5 /* 32 entries a chunk, 16 chunks a table */
#define CHUNK_ENTRIES (1u << CHUNK_SHIFT)
#define CHUNK_ALL     0xffffu

/* Where table frames come from (pt_set_frame_source). */
extern const struct pt_frame_source *pt_frame_src;

/* The summary of a table, or NULL if it has none (a boot table). */
static inline uint32_t *pt_summary_of(uint64_t table_pa)
{
	if (!pt_frame_src || !pt_frame_src->word)
		return NULL;
	uint32_t *w = pt_frame_src->word(table_pa);
	return (*w & SUM_TRACKED) ? w : NULL;
}
/* Recomputes chunks [c0, c1] of a table's summary from its entries. */
void pt_summary_refresh(uint64_t table_pa, unsigned c0, unsigned c1);
/* Whether chunk `c` of a table is known to be empty (false when there is no summary). */
static inline bool chunk_empty(const uint32_t *s, unsigned c) { return s && !(*s & (1u << c)); }

/* A zeroed table from the frame source (with an empty summary), or 0. */
uint64_t pt_table_alloc(void);
void pt_table_free(uint64_t pa);
bool pt_table_is_empty(uint64_t table_pa);
/* Writes an entry, keeping its table's summary. */
void pt_entry_write(pte_t *e, pte_t v);

/* [va, va+size): page-aligned, non-empty, no wrap, canonical, inside one half. */
static inline bool range_ok(uint64_t va, uint64_t size)
{
	if (!is_aligned(va, PAGE_SIZE) || !is_aligned(size, PAGE_SIZE) || !range_valid(va, size))
		return false;
	uint64_t last = va + size - 1;
	return va_is_canonical(va) && va_is_canonical(last) && in_user_half(va) == in_user_half(last);
}

/* Flags a mapping may have: readable, nothing unknown, a cache mode that exists. */
static inline bool flags_ok(unsigned mmu_flags)
{
	return (mmu_flags & MMU_READ) && !(mmu_flags & ~MMU_FLAGS_VALID) &&
	       (mmu_cache(mmu_flags) >> MMU_CACHE_SHIFT) < MMU_CACHE_COUNT;
}

/* ------------------------------------------------------------------ TLB batching (pt.c) */

#define TLB_BATCH_MAX 32

/* One operation on one root: the pages whose TLB entries it must invalidate, the tables it
 * freed (returned to the frame source after the flush), and the callers' parameters. */
struct pt_op {
	const struct pt_root *root;
	unsigned n;
	bool overflow;
	bool global; /* a global entry changed: only a CR4.PGE toggle flushes it wholesale */
	bool shared; /* a kernel-half entry changed: visible through every root */
	uint64_t va[TLB_BATCH_MAX];
	uint64_t freed; /* tables to free after the flush, linked through their first word */
	/* pt_unmap */
	pt_unmap_fn fn;
	void *arg;
	/* pt_protect */
	unsigned mmu_flags;
	pte_t pt_set; /* a 4 KiB entry's bits for mmu_flags (no address) */
};

/* The entry for va held `old` and changed: its TLB entry goes at the end of the operation. */
static inline void op_invalidate(struct pt_op *op, uint64_t va, pte_t old)
{
	if (pte_global(old))
		op->global = true;
	if (!in_user_half(va))
		op->shared = true;
	if (op->n < TLB_BATCH_MAX)
		op->va[op->n++] = va;
	else
		op->overflow = true;
}

/* A table the operation unhooked: freed after its flush. */
static inline void op_defer_free(struct pt_op *op, uint64_t table_pa)
{
	*table_of(table_pa) = op->freed;
	op->freed = table_pa;
}

/* The end of an operation: the batched flush, then the deferred table frees. */
void pt_op_finish(struct pt_op *op);

#endif
