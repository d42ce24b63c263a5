// SPDX-License-Identifier: MIT
/*
 * The page-table layer (see arch/pt.h), part one: the tables themselves and single
 * addresses. Table frames and their occupancy summaries, the TLB batching every change goes
 * through, roots, the one-address walk (pt_walk: root to a wanted level, lookup or
 * allocate) and what uses it: translate, trace, map, collapse. The range walk and the
 * operations built on it (unmap, protect, residency, root teardown) are pt_range.c's; CR3
 * and the TLB instructions are tlb.c's.
 * TLB invalidations are batched per operation and issued once at its end; page-table pages
 * freed by an operation are returned to the frame source only after that flush.
 */
#include <arch/cpu.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <arch/tlb.h>
#include "pt_internal.h"

struct pt_root kernel_pt_root;

const struct pt_frame_source *pt_frame_src;
static uint64_t table_pages;
/* Once set, the kernel half's top-level entries are final: user roots copy them. */
static bool kernel_top_sealed;

void pt_set_frame_source(const struct pt_frame_source *src) { pt_frame_src = src; }
const struct pt_frame_source *pt_get_frame_source(void) { return pt_frame_src; }
uint64_t pt_table_pages(void) { return __atomic_load_n(&table_pages, __ATOMIC_RELAXED); }

/* ------------------------------------------------------------------ occupancy summaries */

static inline uint64_t table_pa_of(const pte_t *e)
{
	return virt_to_phys_direct((const void *)((uintptr_t)e & ~(uintptr_t)(PAGE_SIZE - 1)));
}

static inline unsigned index_of(const pte_t *e) { return (unsigned)(((uintptr_t)e & (PAGE_SIZE - 1)) / sizeof(pte_t)); }

void pt_summary_refresh(uint64_t table_pa, unsigned c0, unsigned c1)
{
	uint32_t *s = pt_summary_of(table_pa);
	if (!s)
		return;
	const pte_t *t = (const pte_t *)phys_to_virt(table_pa);
	for (unsigned c = c0; c <= c1; c++) {
		pte_t any = 0;
		for (unsigned i = c * CHUNK_ENTRIES; i < (c + 1) * CHUNK_ENTRIES; i++)
			any |= t[i];
		*s = any ? *s | (1u << c) : *s & ~(1u << c);
	}
}

/* Entries [i0, i1] of a table were just filled: their chunks hold something. */
static void summary_mark(uint64_t table_pa, unsigned i0, unsigned i1)
{
	uint32_t *s = pt_summary_of(table_pa);
	if (s)
		for (unsigned c = i0 >> CHUNK_SHIFT; c <= i1 >> CHUNK_SHIFT; c++)
			*s |= 1u << c;
}

void pt_entry_write(pte_t *e, pte_t v)
{
	WRITE_ONCE(*e, v);
	uint64_t table_pa = table_pa_of(e);
	unsigned c = index_of(e) >> CHUNK_SHIFT;
	if (!v) {
		pt_summary_refresh(table_pa, c, c);
		return;
	}
	uint32_t *s = pt_summary_of(table_pa);
	if (s)
		*s |= 1u << c;
}

uint64_t pt_table_alloc(void)
{
	KASSERT(pt_frame_src != NULL);
	uint64_t pa = pt_frame_src->alloc();
	if (pa) {
		KASSERT(is_aligned(pa, PAGE_SIZE));
		__atomic_add_fetch(&table_pages, 1, __ATOMIC_RELAXED); /* (under several locks: atomic) */
		if (pt_frame_src->word)
			*pt_frame_src->word(pa) = SUM_TRACKED; /* zeroed: every chunk empty */
	}
	return pa;
}

void pt_table_free(uint64_t pa)
{
	__atomic_sub_fetch(&table_pages, 1, __ATOMIC_RELAXED);
	if (pt_frame_src->word)
		*pt_frame_src->word(pa) = 0;
	pt_frame_src->free(pa);
}

bool pt_table_is_empty(uint64_t table_pa)
{
	const uint32_t *s = pt_summary_of(table_pa);
	if (s)
		return (*s & CHUNK_ALL) == 0;
	const pte_t *t = table_of(table_pa);
	for (unsigned i = 0; i < PT_ENTRIES; i++)
		if (t[i])
			return false;
	return true;
}

/* ------------------------------------------------------------------ TLB batching */

/* (An operation's batch is a struct pt_op, filled by op_invalidate and op_defer_free:
 * pt_internal.h.) */
void pt_op_finish(struct pt_op *op)
{
	/* Every CPU that may cache the old entries drops them before the tables go. */
	if (op->n || op->overflow)
		tlb_invalidate(op->root, op->shared, op->global, op->overflow, op->va, op->n);
	while (op->freed) {
		uint64_t pa = op->freed;
		op->freed = *table_of(pa);
		*table_of(pa) = 0;
		pt_table_free(pa);
	}
}

/* ------------------------------------------------------------------ roots */

Retcode pt_root_create(struct pt_root *root, bool user)
{
	uint64_t pa = pt_table_alloc();

	if (!pa)
		return rcOutOfMemory;
	root->pml4_pa = pa;
	root->user = user;
	if (user) {
		const pte_t *k = table_of(kernel_pt_root.pml4_pa);
		pte_t *t = table_of(pa);
		for (unsigned i = PT_ENTRIES / 2; i < PT_ENTRIES; i++)
			t[i] = k[i];
		pt_summary_refresh(pa, 0, PT_ENTRIES / CHUNK_ENTRIES - 1);
	}
	return rcOk;
}

Retcode pt_prealloc_kernel(uint64_t va, uint64_t size)
{
	pte_t *pml4 = table_of(kernel_pt_root.pml4_pa);

	KASSERT(!in_user_half(va) && !kernel_top_sealed);
	for (uint64_t a = va; a - va < size; a += pt_level_size(PT_LEVEL_PML4)) {
		pte_t *e = &pml4[pt_index(a, PT_LEVEL_PML4)];
		if (pte_present(*e))
			continue;
		uint64_t pa = pt_table_alloc();
		if (!pa)
			return rcOutOfMemory;
		pt_entry_write(e, pte_make_table(pa, false));
	}
	return rcOk;
}

void pt_seal_kernel_top(void) { kernel_top_sealed = true; }

/* ------------------------------------------------------------------ single-address walk */

enum pt_walk_mode {
	PT_WALK_LOOKUP, /* never changes the tables */
	PT_WALK_ALLOC,  /* creates missing intermediate tables */
};

/*
 * Returns the entry for `va` at level `want`, walking from the root. If a leaf (large page)
 * sits above `want`, returns that leaf instead; *found tells which level was returned.
 * LOOKUP: NULL when a table on the way is missing. ALLOC: missing tables are created;
 * NULL when the frame source is empty.
 */
static pte_t *pt_walk(const struct pt_root *root, uint64_t va, enum pt_level want, enum pt_walk_mode mode,
		      enum pt_level *found)
{
	pte_t *table = table_of(root->pml4_pa);

	for (enum pt_level level = PT_LEVEL_PML4;; level--) {
		pte_t *e = &table[pt_index(va, level)];
		pte_t v = READ_ONCE(*e);

		if (level == want || (pte_present(v) && pte_is_leaf(v, level))) {
			if (found)
				*found = level;
			return e;
		}
		if (!pte_present(v)) {
			if (mode == PT_WALK_LOOKUP)
				return NULL;
			/* A new kernel top-level entry would not reach roots made before it. */
			KASSERT_MSG(level != PT_LEVEL_PML4 || in_user_half(va) || !kernel_top_sealed,
				    "new kernel PML4 entry for %#llx after sealing", (unsigned long long)va);
			uint64_t pa = pt_table_alloc();
			if (!pa)
				return NULL;
			v = pte_make_table(pa, in_user_half(va));
			pt_entry_write(e, v);
		}
		table = table_of(pte_table_pa(v));
	}
}

bool pt_translate(const struct pt_root *root, uint64_t va, struct pt_mapping *out)
{
	enum pt_level level;
	pte_t *e;

	if (!va_is_canonical(va))
		return false;
	e = pt_walk(root, va, PT_LEVEL_PT, PT_WALK_LOOKUP, &level);
	if (!e || !pte_present(*e))
		return false;
	if (out) {
		pte_t v = *e;
		uint64_t size = pt_level_size(level);
		out->va = align_down(va, size);
		out->size = size;
		out->pa = pte_leaf_pa(v, level) + (va & (size - 1));
		out->mmu_flags = pte_leaf_mmu_flags(v, level);
		out->accessed = pte_accessed(v);
		out->dirty = pte_dirty(v);
	}
	return true;
}

_Static_assert(PT_TRACE_TEXT_SIZE >= PTE_DESCRIBE_SIZE, "pt_trace holds any entry's decoding");

void pt_trace(const struct pt_root *root, uint64_t va, struct pt_trace *out)
{
	static const char *const level_names[] = {
		[PT_LEVEL_PT] = "PT", [PT_LEVEL_PD] = "PD", [PT_LEVEL_PDPT] = "PDPT", [PT_LEVEL_PML4] = "PML4"
	};
	uint64_t table_pa = root->pml4_pa;

	out->n = 0;
	for (enum pt_level level = PT_LEVEL_PML4;; level--) {
		unsigned idx = pt_index(va, level);
		pte_t e = table_of(table_pa)[idx];
		out->step[out->n].level = level;
		out->step[out->n].level_name = level_names[level];
		out->step[out->n].table_pa = table_pa;
		out->step[out->n].index = idx;
		out->step[out->n].entry = e;
		pte_describe(e, level, out->step[out->n].text, sizeof(out->step[out->n].text));
		out->n++;
		if (!pte_present(e) || pte_is_leaf(e, level))
			return;
		table_pa = pte_table_pa(e);
	}
}

/* ------------------------------------------------------------------ collapse */

/* The table at `table_pa` (level `level` - 1) maps one aligned range with one set of flags:
 * the leaf that replaces it, or 0. */
static pte_t collapsible(uint64_t table_pa, enum pt_level level)
{
	const pte_t *t = table_of(table_pa);
	enum pt_level child = level - 1;
	uint64_t step = pt_level_size(child);

	if (!pte_present(t[0]) || !pte_is_leaf(t[0], child))
		return 0;
	uint64_t base = pte_leaf_pa(t[0], child);
	unsigned flags = pte_leaf_mmu_flags(t[0], child);
	if (!is_aligned(base, pt_level_size(level)))
		return 0;
	pte_t ad = PTE_A | PTE_D;
	for (unsigned i = 0; i < PT_ENTRIES; i++) {
		if (!pte_present(t[i]) || !pte_is_leaf(t[i], child) || pte_leaf_pa(t[i], child) != base + i * step ||
		    pte_leaf_mmu_flags(t[i], child) != flags)
			return 0;
		ad &= t[i];
	}
	return pte_make_leaf(base, flags, level) | ad;
}

void pt_collapse(struct pt_root *root, uint64_t va)
{
	struct pt_op op = { .root = root };

	for (enum pt_level level = PT_LEVEL_PD; level <= PT_LEVEL_PDPT; level++) {
		if (level == PT_LEVEL_PDPT && !cpu_features.page_1g)
			break;
		enum pt_level found;
		pte_t *e = pt_walk(root, va, level, PT_WALK_LOOKUP, &found);
		if (!e || found != level || !pte_present(*e) || pte_is_leaf(*e, level))
			break;
		pte_t old = *e, leaf = collapsible(pte_table_pa(old), level);
		if (!leaf)
			break;
		pt_entry_write(e, leaf);
		op_invalidate(&op, align_down(va, pt_level_size(level)), old | (leaf & PTE_G));
		op_defer_free(&op, pte_table_pa(old));
	}
	pt_op_finish(&op);
}

/* ------------------------------------------------------------------ map */

static int refuse_leaf(const struct pt_leaf *leaf, void *arg)
{
	(void)leaf;
	(void)arg;
	return 1;
}

static enum pt_level choose_level(uint64_t va, uint64_t pa, uint64_t remaining, enum pt_level max)
{
	for (enum pt_level level = max; level > PT_LEVEL_PT; level--) {
		uint64_t s = pt_level_size(level);
		if (is_aligned(va, s) && is_aligned(pa, s) && remaining >= s)
			return level;
	}
	return PT_LEVEL_PT;
}

Retcode pt_map(struct pt_root *root, uint64_t va, uint64_t pa, uint64_t size, unsigned mmu_flags,
	       enum pt_level max_level)
{
	static const struct pt_walk_ops any_leaf = { .leaf = refuse_leaf };

	/* The physical range must fit the entries' address field (bits 12..51). */
	if (!range_ok(va, size) || !is_aligned(pa, PAGE_SIZE) || !flags_ok(mmu_flags) || pa > PTE_ADDR_MASK ||
	    size > PTE_ADDR_MASK + PAGE_SIZE - pa)
		return rcInvalidArgument;
	if (max_level > PT_LEVEL_PDPT)
		max_level = PT_LEVEL_PDPT;
	if (max_level == PT_LEVEL_PDPT && !cpu_features.page_1g)
		max_level = PT_LEVEL_PD;
	/* Nothing may be mapped there yet: one lookup for a single page (every fault maps one),
	 * a range walk otherwise. */
	if (size == PAGE_SIZE) {
		pte_t *e = pt_walk(root, va, PT_LEVEL_PT, PT_WALK_LOOKUP, NULL);
		if (e && pte_present(READ_ONCE(*e)))
			return rcAlreadyExists;
	} else if (pt_walk_range(root, va, size, &any_leaf, NULL)) {
		return rcAlreadyExists;
	}

	enum pt_level cap = max_level; /* lowered for one address at a time, see below */
	for (uint64_t done = 0; done < size;) {
		enum pt_level level = choose_level(va + done, pa + done, size - done, cap), found;
		pte_t *e = pt_walk(root, va + done, level, PT_WALK_ALLOC, &found);

		if (!e) {
			/* Out of table frames: undo this call, tables included. */
			Retcode rc = pt_unmap(root, va, size, NULL, NULL);
			KASSERT(rc == rcOk);
			return rcOutOfMemory;
		}
		KASSERT(found == level);
		if (pte_present(*e)) {
			/* An empty table where a large page would go: use smaller pages here. */
			KASSERT(level > PT_LEVEL_PT && !pte_is_leaf(*e, level));
			cap = level - 1;
			continue;
		}
		pt_entry_write(e, pte_make_leaf(pa + done, mmu_flags, level));
		done += pt_level_size(level);
		cap = max_level;
		if (level == PT_LEVEL_PT && done < size) {
			/* The rest of this page table in one pass (the range was checked empty). */
			unsigned i = index_of(e) + 1, j = i;
			pte_t bits = pte_make_leaf(0, mmu_flags, PT_LEVEL_PT);
			for (; j < PT_ENTRIES && done < size; j++, done += PAGE_SIZE)
				WRITE_ONCE(e[j - i + 1], bits | ((pa + done) & PTE_ADDR_MASK));
			if (j > i)
				summary_mark(table_pa_of(e), i, j - 1);
		}
	}
	return rcOk;
}
