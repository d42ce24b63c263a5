// SPDX-License-Identifier: MIT
/*
 * The page-table layer (see arch/pt.h). Two walkers serve everything:
 *   pt_walk()       one address, root to a wanted level (lookup or allocate);
 *   walk_level()    a range [start, end) in address order with callbacks for leaves, holes
 *                   and (optionally) the last level's entries a chunk at a time; empty upper
 *                   levels and empty chunks are skipped whole. pt_walk_range(),
 *                   pt_scan_residency(), pt_unmap(), pt_protect() and pt_root_destroy() are
 *                   that walk with different callbacks.
 * TLB invalidations are batched per operation and issued once at its end; page-table pages
 * freed by an operation are returned to the frame source only after that flush.
 */
#include <arch/cpu.h>
#include <arch/pt.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/string.h>

struct pt_root kernel_pt_root;

static const struct pt_frame_source *frame_src;
static uint64_t table_pages;
/* Once set, the kernel half's top-level entries are final: user roots copy them. */
static bool kernel_top_sealed;

void pt_set_frame_source(const struct pt_frame_source *src) { frame_src = src; }
const struct pt_frame_source *pt_get_frame_source(void) { return frame_src; }
uint64_t pt_table_pages(void) { return table_pages; }

static inline pte_t *table_of(uint64_t pa) { return (pte_t *)phys_to_virt(pa); }

/* ------------------------------------------------------------------ occupancy summaries */

/*
 * A table's summary word: SUM_TRACKED, and bit c set when entries [32c, 32c + 32) hold
 * anything. Kept by every write that can change an entry from zero to non-zero or back;
 * bulk clears (unmap, prune) refresh the chunks they touched once, at the end.
 */
#define SUM_TRACKED   (1u << 31)
#define CHUNK_SHIFT   5 /* 32 entries a chunk, 16 chunks a table */
#define CHUNK_ENTRIES (1u << CHUNK_SHIFT)
#define CHUNK_ALL     0xffffu

/* The summary of a table, or NULL if it has none (a boot table). */
static uint32_t *summary_of(uint64_t table_pa)
{
	if (!frame_src || !frame_src->word)
		return NULL;
	uint32_t *w = frame_src->word(table_pa);
	return (*w & SUM_TRACKED) ? w : NULL;
}

static inline uint64_t table_pa_of(const pte_t *e)
{
	return virt_to_phys_direct((const void *)((uintptr_t)e & ~(uintptr_t)(PAGE_SIZE - 1)));
}

static inline unsigned index_of(const pte_t *e) { return (unsigned)(((uintptr_t)e & (PAGE_SIZE - 1)) / sizeof(pte_t)); }

/* Recomputes chunks [c0, c1] of a table's summary from its entries. */
static void summary_refresh(uint64_t table_pa, unsigned c0, unsigned c1)
{
	uint32_t *s = summary_of(table_pa);
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
	uint32_t *s = summary_of(table_pa);
	if (s)
		for (unsigned c = i0 >> CHUNK_SHIFT; c <= i1 >> CHUNK_SHIFT; c++)
			*s |= 1u << c;
}

/* Writes an entry, keeping its table's summary. */
static void entry_write(pte_t *e, pte_t v)
{
	WRITE_ONCE(*e, v);
	uint64_t table_pa = table_pa_of(e);
	unsigned c = index_of(e) >> CHUNK_SHIFT;
	if (!v) {
		summary_refresh(table_pa, c, c);
		return;
	}
	uint32_t *s = summary_of(table_pa);
	if (s)
		*s |= 1u << c;
}

/* Whether chunk `c` of a table is known to be empty (false when there is no summary). */
static inline bool chunk_empty(const uint32_t *s, unsigned c) { return s && !(*s & (1u << c)); }

static uint64_t table_alloc(void)
{
	KASSERT(frame_src != NULL);
	uint64_t pa = frame_src->alloc();
	if (pa) {
		KASSERT(is_aligned(pa, PAGE_SIZE));
		table_pages++;
		if (frame_src->word)
			*frame_src->word(pa) = SUM_TRACKED; /* zeroed: every chunk empty */
	}
	return pa;
}

static void table_free(uint64_t pa)
{
	table_pages--;
	if (frame_src->word)
		*frame_src->word(pa) = 0;
	frame_src->free(pa);
}

static bool table_is_empty(uint64_t table_pa)
{
	const uint32_t *s = summary_of(table_pa);
	if (s)
		return (*s & CHUNK_ALL) == 0;
	const pte_t *t = table_of(table_pa);
	for (unsigned i = 0; i < PT_ENTRIES; i++)
		if (t[i])
			return false;
	return true;
}

static inline bool in_user_half(uint64_t va) { return va < DIRECT_MAP_BASE; }

/* ------------------------------------------------------------------ TLB batching */

#define TLB_BATCH_MAX 32

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

static void op_invalidate(struct pt_op *op, uint64_t va, pte_t old)
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

static void op_defer_free(struct pt_op *op, uint64_t table_pa)
{
	*table_of(table_pa) = op->freed;
	op->freed = table_pa;
}

static void op_finish(struct pt_op *op)
{
	/* User-half entries of an inactive root are not in this CPU's TLB (no PCIDs yet). */
	bool visible = op->shared || pt_is_active(op->root);

	if (visible && (op->n || op->overflow)) {
		if (op->overflow)
			op->global ? tlb_flush_all() : tlb_flush_all_nonglobal();
		else
			for (unsigned i = 0; i < op->n; i++)
				tlb_flush_page(op->va[i]);
	}
	while (op->freed) {
		uint64_t pa = op->freed;
		op->freed = *table_of(pa);
		*table_of(pa) = 0;
		table_free(pa);
	}
}

#ifdef KNMM_HOST
/* The host tests build tables in simulated memory that no CPU walks. */
void tlb_flush_all_nonglobal(void) {}
void tlb_flush_all(void) {}
void pt_activate(const struct pt_root *root) { (void)root; }
bool pt_is_active(const struct pt_root *root) { (void)root; return false; }
struct pt_root pt_active_root(void) { return kernel_pt_root; }
#else
void tlb_flush_all_nonglobal(void) { write_cr3(read_cr3()); }

void tlb_flush_all(void)
{
	uint64_t cr4 = read_cr4();

	if (cr4 & CR4_PGE) {
		write_cr4(cr4 & ~(uint64_t)CR4_PGE);
		write_cr4(cr4);
	} else {
		tlb_flush_all_nonglobal();
	}
}

void pt_activate(const struct pt_root *root) { write_cr3(root->pml4_pa); }

bool pt_is_active(const struct pt_root *root) { return (read_cr3() & PTE_ADDR_MASK) == root->pml4_pa; }

struct pt_root pt_active_root(void)
{
	uint64_t pa = read_cr3() & PTE_ADDR_MASK;

	return (struct pt_root){ .pml4_pa = pa, .user = pa != kernel_pt_root.pml4_pa };
}
#endif

/* ------------------------------------------------------------------ roots */

Retcode pt_root_create(struct pt_root *root, bool user)
{
	uint64_t pa = table_alloc();

	if (!pa)
		return rcOutOfMemory;
	root->pml4_pa = pa;
	root->user = user;
	if (user) {
		const pte_t *k = table_of(kernel_pt_root.pml4_pa);
		pte_t *t = table_of(pa);
		for (unsigned i = PT_ENTRIES / 2; i < PT_ENTRIES; i++)
			t[i] = k[i];
		summary_refresh(pa, 0, PT_ENTRIES / CHUNK_ENTRIES - 1);
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
		uint64_t pa = table_alloc();
		if (!pa)
			return rcOutOfMemory;
		entry_write(e, pte_make_table(pa, false));
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
			uint64_t pa = table_alloc();
			if (!pa)
				return NULL;
			v = pte_make_table(pa, in_user_half(va));
			entry_write(e, v);
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
	static const char *const level_names[] = { [PT_LEVEL_PT] = "PT", [PT_LEVEL_PD] = "PD",
						   [PT_LEVEL_PDPT] = "PDPT", [PT_LEVEL_PML4] = "PML4" };
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

/* ------------------------------------------------------------------ range checks */

/* [va, va+size): page-aligned, non-empty, no wrap, canonical, inside one half. */
static bool range_ok(uint64_t va, uint64_t size)
{
	if (!is_aligned(va, PAGE_SIZE) || !is_aligned(size, PAGE_SIZE) || !range_valid(va, size))
		return false;
	uint64_t last = va + size - 1;
	return va_is_canonical(va) && va_is_canonical(last) && in_user_half(va) == in_user_half(last);
}

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
	const uint32_t *sum = summary_of(table_pa);
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
				if (w->prune && !shared && table_is_empty(child)) {
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
		summary_refresh(table_pa, first >> CHUNK_SHIFT, pt_index(end - 1, level) >> CHUNK_SHIFT);
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

int pt_walk_range(const struct pt_root *root, uint64_t start, uint64_t size, const struct pt_walk_ops *ops,
		  void *arg)
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
	const uint32_t *sum = summary_of(table_pa);

	if (sum) {
		uint32_t want = 0;
		for (unsigned i = 0; i < PT_ENTRIES; i++)
			if (t[i])
				want |= 1u << (i >> CHUNK_SHIFT);
		if ((*sum & CHUNK_ALL) != want) {
			ksnprintf(why, size, "table %#llx (level %d): summary %#x, entries say %#x", (unsigned long long)table_pa,
				  (int)level, *sum & CHUNK_ALL, want);
			return false;
		}
	}
	while (level > PT_LEVEL_PT && va < end) {
		uint64_t next = entry_end(va, level, end);
		pte_t e = READ_ONCE(t[pt_index(va, level)]);
		if (pte_present(e) && !pte_is_leaf(e, level) && !check_level(pte_table_pa(e), level - 1, va, next, why, size))
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
	uint64_t pa = table_alloc();

	if (!pa)
		return rcOutOfMemory;
	pte_t *t = table_of(pa);
	unsigned flags = pte_leaf_mmu_flags(old, level);
	uint64_t base = pte_leaf_pa(old, level), sub = pt_level_size(level - 1);
	pte_t keep = old & (PTE_A | PTE_D);
	for (unsigned i = 0; i < PT_ENTRIES; i++)
		t[i] = pte_make_leaf(base + i * sub, flags, level - 1) | keep;
	summary_refresh(pa, 0, PT_ENTRIES / CHUNK_ENTRIES - 1); /* (all full) */
	entry_write(e, pte_make_table(pa, pte_user(old)));
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
	op_finish(w->op);
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

static bool flags_ok(unsigned mmu_flags)
{
	return (mmu_flags & MMU_READ) && !(mmu_flags & ~MMU_FLAGS_VALID) &&
	       (mmu_cache(mmu_flags) >> MMU_CACHE_SHIFT) < MMU_CACHE_COUNT;
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
	panic("page-table root destroyed while %#llx still maps %#llx (level %d, entry %#llx)",
	      (unsigned long long)va, (unsigned long long)pte_leaf_pa(*e, level), (int)level, (unsigned long long)*e);
}

void pt_root_destroy(struct pt_root *root)
{
	struct pt_op op = { .root = root };
	struct pt_walker w = { .leaf = destroy_leaf, .op = &op, .prune = true };

	KASSERT(root->user && !pt_is_active(root));
	/* The user half: every table is empty below its leaves, so pruning frees them all
	 * (no flush: the root is not active and its user half is nobody else's). */
	walk_level(&w, root->pml4_pa, PT_LEVEL_PML4, 0, pt_level_size(PT_LEVEL_PML4) * (PT_ENTRIES / 2));
	op_finish(&op);
	memset(table_of(root->pml4_pa) + PT_ENTRIES / 2, 0, PT_ENTRIES / 2 * sizeof(pte_t));
	table_free(root->pml4_pa);
	root->pml4_pa = 0;
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
		entry_write(e, leaf);
		op_invalidate(&op, align_down(va, pt_level_size(level)), old | (leaf & PTE_G));
		op_defer_free(&op, pte_table_pa(old));
	}
	op_finish(&op);
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
		entry_write(e, pte_make_leaf(pa + done, mmu_flags, level));
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
