// SPDX-License-Identifier: MIT
/*
 * The page-table layer (see arch/pt.h), part two: the range walk. walk_level() visits a
 * range [start, end) in address order with callbacks for leaves, holes and (optionally) the
 * last level's entries a chunk at a time; empty upper levels and empty chunks are skipped
 * whole. pt_walk_range(), pt_scan_residency(), pt_unmap(), pt_protect() and
 * pt_root_destroy() are that walk with different callbacks; the modifying ones split large
 * pages that straddle their ends first. The summaries' own check is here too (it reads what
 * the walk trusts).
 */
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <arch/tlb.h>
#include "pt_internal.h"

/* End of the entry at `level` that holds va, clipped to `end` (the topmost entry wraps). */
static inline uint64_t entry_end(uint64_t va, enum pt_level level, uint64_t end)
{
	uint64_t size = pt_level_size(level);
	uint64_t e = align_down(va, size) + size;
	return (e == 0 || e > end) ? end : e;
}

/* ------------------------------------------------------------------ the range walk */

/*
 * The one range walk (STYLE.md 2). walk_level() visits [va, end) below one table in address
 * order and hands what it finds to the walker's callbacks:
 *   leaf(w, e, level, va)  a present leaf entry at any level; va is where the walk stands
 *                          (the leaf may start before it in a read-only walk; modifying
 *                          walks split the range's ends first, so theirs lie inside);
 *   ptes(w, t, va, end)    optional: the last level's entries [va, end) of a stretch of
 *                          non-empty chunks in a single call, for the loops where time goes
 *                          (unmap, protect, the residency scan); absent entries in it are
 *                          the callback's;
 *   hole(w, start, end)    a maximal stretch with nothing mapped, merged across absent
 *                          entries of every level and chunks the occupancy summary says
 *                          are empty, so empty upper levels cost one step each.
 * With `prune` (which needs `op`), tables the walk leaves empty are unhooked and freed once
 * the operation's TLB flush is done. A nonzero return from a callback stops the walk (after
 * the table being walked has its summary refreshed) and is returned.
 */
struct pt_walker {
	int (*leaf)(struct pt_walker *w, pte_t *e, enum pt_level level, uint64_t va);
	int (*ptes)(struct pt_walker *w, pte_t *t, uint64_t va, uint64_t end);
	int (*hole)(struct pt_walker *w, uint64_t start, uint64_t end);
	struct pt_op *op; /* modifying walks: invalidations and deferred frees */
	bool prune;
	bool in_hole; /* the hole being merged starts at hole_start */
	uint64_t hole_start;
};

static inline void walk_absent(struct pt_walker *w, uint64_t va)
{
	if (!w->in_hole) {
		w->in_hole = true;
		w->hole_start = va;
	}
}

/* Something is mapped at va (or the walk ends there): report the hole that ends at va. */
static int walk_hole_end(struct pt_walker *w, uint64_t va)
{
	if (!w->in_hole)
		return 0;
	w->in_hole = false;
	return w->hole ? w->hole(w, w->hole_start, va) : 0;
}

static int walk_level(struct pt_walker *w, uint64_t table_pa, enum pt_level level, uint64_t va, uint64_t end)
{
	pte_t *t = table_of(table_pa);
	const uint32_t *sum = pt_summary_of(table_pa);
	const uint64_t size = pt_level_size(level), span = size << CHUNK_SHIFT;
	const unsigned first = pt_index(va, level);
	int rc = 0;

	while (rc == 0) {
		unsigned i = pt_index(va, level), c = i >> CHUNK_SHIFT;
		uint64_t next;

		if (chunk_empty(sum, c)) {
			/* Empty chunks, up to the next one that holds something (or the table's end). */
			uint32_t later = (*sum & CHUNK_ALL) >> (c + 1);
			uint64_t table_end = align_down(va, span * (PT_ENTRIES / CHUNK_ENTRIES)) +
					     span * (PT_ENTRIES / CHUNK_ENTRIES);
			next = later ? align_down(va, span) + span * (1 + (uint64_t)__builtin_ctz(later)) : table_end;
			walk_absent(w, va);
		} else if (level == PT_LEVEL_PT && w->ptes) {
			/* This chunk and the non-empty ones right after it, in one call. */
			unsigned full = sum ? (unsigned)__builtin_ctz(~(*sum >> c)) : PT_ENTRIES / CHUNK_ENTRIES - c;
			next = align_down(va, span) + span * full;
			uint64_t stop = next > va && next < end ? next : end;
			if ((rc = walk_hole_end(w, va)) == 0)
				rc = w->ptes(w, t, va, stop);
		} else {
			next = entry_end(va, level, end);
			pte_t v = READ_ONCE(t[i]);
			if (!pte_present(v)) {
				/* Absent entries alike up to the chunk's end, in a tight loop. */
				unsigned stop = (i | (CHUNK_ENTRIES - 1)) + 1, j = i + 1;
				while (j < stop && !pte_present(READ_ONCE(t[j])))
					j++;
				if (j > i + 1) {
					uint64_t after = align_down(va, size) + (uint64_t)(j - i) * size;
					next = after > va && after < end ? after : end;
				}
				walk_absent(w, va);
			} else if (pte_is_leaf(v, level)) {
				KASSERT(!w->op || (is_aligned(va, size) && next - va == size));
				if ((rc = walk_hole_end(w, va)) == 0 && w->leaf)
					rc = w->leaf(w, &t[i], level, va);
			} else {
				uint64_t child = pte_table_pa(v);
				rc = walk_level(w, child, level - 1, va, next);
				/* The kernel's top-level tables are shared by every root: never freed. */
				bool shared = level == PT_LEVEL_PML4 && !in_user_half(va);
				if (w->prune && !shared && pt_table_is_empty(child)) {
					WRITE_ONCE(t[i], 0);
					op_invalidate(w->op, va, v);
					op_defer_free(w->op, child);
				}
			}
		}
		if (next <= va || next >= end) /* (past the top of the address space, or the range) */
			break;
		va = next;
	}
	/* Entries of this table may have been cleared (unmapped leaves, pruned tables): once for
	 * the chunks the range covered. */
	if (w->prune)
		pt_summary_refresh(table_pa, first >> CHUNK_SHIFT, pt_index(end - 1, level) >> CHUNK_SHIFT);
	return rc;
}

/* Walks [start, start + size) of a root, the last hole included. */
static int walk_root(struct pt_walker *w, const struct pt_root *root, uint64_t start, uint64_t size)
{
	int rc = walk_level(w, root->pml4_pa, PT_LEVEL_PML4, start, start + size);

	return rc ? rc : walk_hole_end(w, start + size);
}

/* ------------------------------------------------------------------ read-only walks */

struct ro_walk {
	struct pt_walker w;
	const struct pt_walk_ops *ops;
	void *arg;
};

static int ro_leaf(struct pt_walker *w, pte_t *e, enum pt_level level, uint64_t va)
{
	const struct ro_walk *r = container_of(w, struct ro_walk, w);
	pte_t v = READ_ONCE(*e);
	uint64_t size = pt_level_size(level);
	struct pt_leaf l = {
		.va = align_down(va, size),
		.pa = pte_leaf_pa(v, level),
		.size = size,
		.mmu_flags = pte_leaf_mmu_flags(v, level),
		.level = level,
		.accessed = pte_accessed(v),
		.dirty = pte_dirty(v),
	};
	return r->ops->leaf(&l, r->arg);
}

static int ro_hole(struct pt_walker *w, uint64_t start, uint64_t end)
{
	const struct ro_walk *r = container_of(w, struct ro_walk, w);

	return r->ops->hole(start, end, r->arg);
}

int pt_walk_range(const struct pt_root *root, uint64_t start, uint64_t size, const struct pt_walk_ops *ops, void *arg)
{
	struct ro_walk r = {
		.w = { .leaf = ops->leaf ? ro_leaf : NULL, .hole = ops->hole ? ro_hole : NULL },
		.ops = ops,
		.arg = arg,
	};

	if (size == 0)
		return 0;
	KASSERT(range_ok(start, size));
	return walk_root(&r.w, root, start, size);
}

/* The residency scan: stretches of alike residency, from leaves, holes and the last level's
 * entries read in a tight loop. */
struct stretch_scan {
	struct pt_walker w;
	pt_stretch_fn fn;
	void *arg;
	uint64_t start; /* of the stretch being built */
	bool present;
};

/* From va on the residency is `present`: extend the current stretch, or emit it and start one. */
static int stretch_add(struct stretch_scan *s, uint64_t va, bool present)
{
	if (present == s->present)
		return 0;
	int rc = va > s->start ? s->fn(s->start, va, s->present, s->arg) : 0;
	s->start = va;
	s->present = present;
	return rc;
}

static int scan_leaf(struct pt_walker *w, pte_t *e, enum pt_level level, uint64_t va)
{
	(void)e;
	(void)level;
	return stretch_add(container_of(w, struct stretch_scan, w), va, true);
}

static int scan_hole(struct pt_walker *w, uint64_t start, uint64_t end)
{
	(void)end;
	return stretch_add(container_of(w, struct stretch_scan, w), start, false);
}

static int scan_ptes(struct pt_walker *w, pte_t *t, uint64_t va, uint64_t end)
{
	struct stretch_scan *s = container_of(w, struct stretch_scan, w);
	unsigned i = pt_index(va, PT_LEVEL_PT), stop = i + (unsigned)((end - va) / PAGE_SIZE);
	int rc;

	while (i < stop) {
		bool present = pte_present(READ_ONCE(t[i]));
		unsigned j = i + 1;
		while (j < stop && pte_present(READ_ONCE(t[j])) == present)
			j++;
		if ((rc = stretch_add(s, va, present)) != 0)
			return rc;
		va += (uint64_t)(j - i) * PAGE_SIZE;
		i = j;
	}
	return 0;
}

int pt_scan_residency(const struct pt_root *root, uint64_t start, uint64_t size, pt_stretch_fn fn, void *arg)
{
	struct stretch_scan s = {
		.w = { .leaf = scan_leaf, .ptes = scan_ptes, .hole = scan_hole },
		.fn = fn,
		.arg = arg,
		.start = start,
		.present = false,
	};

	if (size == 0)
		return 0;
	KASSERT(range_ok(start, size));
	int rc = walk_root(&s.w, root, start, size);
	return rc ? rc : fn(s.start, start + size, s.present, arg);
}

/* The summaries' own check reads every entry instead of trusting them, so it is not a walk. */
static bool check_level(uint64_t table_pa, enum pt_level level, uint64_t va, uint64_t end, char *why, size_t size)
{
	const pte_t *t = table_of(table_pa);
	const uint32_t *sum = pt_summary_of(table_pa);

	if (sum) {
		uint32_t want = 0;
		for (unsigned i = 0; i < PT_ENTRIES; i++)
			if (t[i])
				want |= 1u << (i >> CHUNK_SHIFT);
		if ((*sum & CHUNK_ALL) != want) {
			ksnprintf(why, size, "table %#llx (level %d): summary %#x, entries say %#x",
				  (unsigned long long)table_pa, (int)level, *sum & CHUNK_ALL, want);
			return false;
		}
	}
	while (level > PT_LEVEL_PT && va < end) {
		uint64_t next = entry_end(va, level, end);
		pte_t e = READ_ONCE(t[pt_index(va, level)]);
		if (pte_present(e) && !pte_is_leaf(e, level) &&
		    !check_level(pte_table_pa(e), level - 1, va, next, why, size))
			return false;
		if (next == end)
			break;
		va = next;
	}
	return true;
}

bool pt_check_summaries(const struct pt_root *root, uint64_t lo, uint64_t hi, char *why, size_t size)
{
	return hi <= lo || check_level(root->pml4_pa, PT_LEVEL_PML4, lo, hi, why, size);
}

/* ------------------------------------------------------------------ splitting large pages */

static Retcode split_leaf(struct pt_op *op, pte_t *e, enum pt_level level, uint64_t va)
{
	pte_t old = *e;
	uint64_t pa = pt_table_alloc();

	if (!pa)
		return rcOutOfMemory;
	pte_t *t = table_of(pa);
	unsigned flags = pte_leaf_mmu_flags(old, level);
	uint64_t base = pte_leaf_pa(old, level), sub = pt_level_size(level - 1);
	pte_t keep = old & (PTE_A | PTE_D);
	for (unsigned i = 0; i < PT_ENTRIES; i++)
		t[i] = pte_make_leaf(base + i * sub, flags, level - 1) | keep;
	pt_summary_refresh(pa, 0, PT_ENTRIES / CHUNK_ENTRIES - 1); /* (all full) */
	pt_entry_write(e, pte_make_table(pa, pte_user(old)));
	op_invalidate(op, align_down(va, pt_level_size(level)), old);
	return rcOk;
}

/* Makes sure no large page straddles `va` (splits 1 GiB and 2 MiB leaves as needed). */
static Retcode split_at(struct pt_op *op, uint64_t va)
{
	pte_t *t = table_of(op->root->pml4_pa);

	if (!va_is_canonical(va) || is_aligned(va, SIZE_1G))
		return rcOk; /* no leaf is larger than 1 GiB */
	for (enum pt_level level = PT_LEVEL_PML4; level > PT_LEVEL_PT; level--) {
		pte_t *e = &t[pt_index(va, level)];
		if (!pte_present(*e))
			return rcOk;
		if (pte_is_leaf(*e, level)) {
			if (is_aligned(va, pt_level_size(level)))
				return rcOk;
			Retcode rc = split_leaf(op, e, level, va);
			if (rc != rcOk)
				return rc;
		}
		t = table_of(pte_table_pa(*e));
	}
	return rcOk;
}

static Retcode split_range_ends(struct pt_op *op, uint64_t va, uint64_t end)
{
	Retcode rc = split_at(op, va);

	if (rc == rcOk && va_is_canonical(end))
		rc = split_at(op, end);
	return rc;
}

/* ------------------------------------------------------------------ modifying walks */

/* Clears a present leaf entry holding `old`, queues its invalidation and reports its frame. */
static inline void unmap_entry(struct pt_op *op, pte_t *e, pte_t old, enum pt_level level, uint64_t va)
{
	WRITE_ONCE(*e, 0);
	op_invalidate(op, va, old);
	if (op->fn)
		op->fn(va, pte_leaf_pa(old, level), pt_level_size(level), op->arg);
}

static int unmap_leaf(struct pt_walker *w, pte_t *e, enum pt_level level, uint64_t va)
{
	unmap_entry(w->op, e, *e, level, va);
	return 0;
}

/* unmap_leaf over 4 KiB entries, in one loop (unmapping a resident region is mostly this). */
static int unmap_ptes(struct pt_walker *w, pte_t *t, uint64_t va, uint64_t end)
{
	for (unsigned i = pt_index(va, PT_LEVEL_PT); va < end; i++, va += PAGE_SIZE) {
		pte_t old = READ_ONCE(t[i]);
		if (pte_present(old))
			unmap_entry(w->op, &t[i], old, PT_LEVEL_PT, va);
	}
	return 0;
}

/* A modifying walk of [va, va + size): the ends split first (so every leaf lies inside), then
 * the walk, then the batched flush and the deferred table frees. */
static Retcode modify_range(struct pt_walker *w, const struct pt_root *root, uint64_t va, uint64_t size)
{
	Retcode rc = split_range_ends(w->op, va, va + size);

	if (rc == rcOk)
		walk_root(w, root, va, size);
	pt_op_finish(w->op);
	return rc;
}

Retcode pt_unmap(struct pt_root *root, uint64_t va, uint64_t size, pt_unmap_fn fn, void *arg)
{
	struct pt_op op = { .root = root, .fn = fn, .arg = arg };
	struct pt_walker w = { .leaf = unmap_leaf, .ptes = unmap_ptes, .op = &op, .prune = true };

	if (!range_ok(va, size))
		return rcInvalidArgument;
	return modify_range(&w, root, va, size);
}

static int protect_leaf(struct pt_walker *w, pte_t *e, enum pt_level level, uint64_t va)
{
	pte_t old = *e;
	pte_t new = pte_make_leaf(pte_leaf_pa(old, level), w->op->mmu_flags, level) | (old & (PTE_A | PTE_D));

	if (new != old) {
		WRITE_ONCE(*e, new);
		op_invalidate(w->op, va, old);
	}
	return 0;
}

/* protect_leaf over 4 KiB entries: where pt_protect spends its time on
 * a resident region, so the bits are computed once and each entry costs a few instructions. */
static int protect_ptes(struct pt_walker *w, pte_t *t, uint64_t va, uint64_t end)
{
	struct pt_op *op = w->op;
	const pte_t keep = PTE_ADDR_MASK | PTE_A | PTE_D, set = op->pt_set;

	for (unsigned i = pt_index(va, PT_LEVEL_PT); va < end; i++, va += PAGE_SIZE) {
		pte_t old = READ_ONCE(t[i]);
		if (!pte_present(old))
			continue;
		pte_t new = (old & keep) | set;
		if (new != old) {
			WRITE_ONCE(t[i], new);
			op_invalidate(op, va, old);
		}
	}
	return 0;
}

Retcode pt_protect(struct pt_root *root, uint64_t va, uint64_t size, unsigned mmu_flags)
{
	struct pt_op op = { .root = root, .mmu_flags = mmu_flags };
	struct pt_walker w = { .leaf = protect_leaf, .ptes = protect_ptes, .op = &op };

	if (!range_ok(va, size) || !flags_ok(mmu_flags))
		return rcInvalidArgument;
	op.pt_set = pte_make_leaf(0, mmu_flags, PT_LEVEL_PT);
	return modify_range(&w, root, va, size);
}

/* A root's tables, after its address space has unmapped everything: any leaf left is a
 * leak of the layer above. */
static int destroy_leaf(struct pt_walker *w, pte_t *e, enum pt_level level, uint64_t va)
{
	(void)w;
	panic("page-table root destroyed while %#llx still maps %#llx (level %d, entry %#llx)", (unsigned long long)va,
	      (unsigned long long)pte_leaf_pa(*e, level), (int)level, (unsigned long long)*e);
}

void pt_root_destroy(struct pt_root *root)
{
	struct pt_op op = { .root = root };
	struct pt_walker w = { .leaf = destroy_leaf, .op = &op, .prune = true };

	KASSERT(root->user && !pt_is_active(root));
	/* The user half: every table is empty below its leaves, so pruning frees them all
	 * (no flush: the root is not active and its user half is nobody else's). */
	walk_level(&w, root->pml4_pa, PT_LEVEL_PML4, 0, pt_level_size(PT_LEVEL_PML4) * (PT_ENTRIES / 2));
	pt_op_finish(&op);
	/* A CPU that ran it may still cache its entries under a PCID: the next root to get
	 * this frame must not find them there. */
	tlb_invalidate(root, false, false, true, NULL, 0);
	memset(table_of(root->pml4_pa) + PT_ENTRIES / 2, 0, PT_ENTRIES / 2 * sizeof(pte_t));
	pt_table_free(root->pml4_pa);
	root->pml4_pa = 0;
}
