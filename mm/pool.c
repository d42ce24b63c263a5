// SPDX-License-Identifier: MIT
/*
 * Kernel pools (see mm/pool.h, docs/vm.md).
 *
 * The pool area ([KPOOL_BASE, +512 GiB) of the dynamic area) is managed here, with its own
 * range tree and lock, so that a pool allocation never needs an address-space lock: the
 * vm code may allocate from the pool while holding one.
 *
 *   small blocks (up to 2 KiB): size classes 32..2048 bytes, carved from 64 KiB segments;
 *     each segment keeps its own free list, and a class keeps the segments that have room;
 *   large blocks: their own pages, followed by an unmapped guard page.
 * Every block is [header 16 B][data][red zone >= 8 B of 0xfd]; pool_free checks both.
 * All frames are PAGE_POOL frames from the PMM, charged to the commit limit, and so are the
 * page tables that map them: a page table per 2 MiB window and a page directory per 1 GiB
 * that holds any pool page, charged by whoever maps the first page there and given back by
 * whoever unmaps the last (otherwise small blocks spread one per window would make the
 * kernel allocate tables nobody paid for).
 */
#include <arch/pt.h>
#include <knmm/align.h>
#include <knmm/list.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include <mm/vm.h>
#include <mm/vm_tree.h>

#define HDR_SIZE     16
#define REDZONE_MIN  8
#define REDZONE_BYTE 0xfd
#define FREE_BYTE    0xdd
#define MAGIC_LIVE   0x4c4f4f50u /* "POOL" */
#define MAGIC_FREE   0x45455246u /* "FREE" */
#define CLASS_LARGE  0xff

#define SEG_PAGES 16
#define SEG_SIZE  (SEG_PAGES * PAGE_SIZE)
#define SEG_HDR   128
#define LARGE_HDR 80 /* struct large before the block header (multiple of 16) */

struct hdr {
	uint32_t magic;
	uint32_t tag;
	uint32_t size; /* requested bytes */
	uint8_t cls;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct hdr) == HDR_SIZE, "pool header size");

static const uint32_t class_size[] = { 32, 64, 128, 256, 512, 1024, 2048 };
#define NR_CLASSES ARRAY_SIZE(class_size)

/* What the pool area's tree holds: a segment or a large block, mapped [base, mapped_end)
 * (a large block's guard page, at the end of its node, is not mapped). */
struct area {
	struct vm_node node;
	uint64_t mapped_end;
};

struct segment {
	struct area area;
	struct list_head link; /* on its class's partial list while it has free blocks */
	void *free;
	uint16_t cls, live, nblocks;
};
_Static_assert(sizeof(struct segment) <= SEG_HDR, "segment header");

struct large {
	struct area area; /* the block's pages plus its guard page */
	uint64_t pages;
};
_Static_assert(sizeof(struct large) <= LARGE_HDR, "large header");

#define NR_TAGS 128
struct tag_slot {
	uint32_t tag;
	uint64_t allocs, frees, bytes;
};

static spinlock_t pool_lock = SPINLOCK_INIT("pool", LOCK_RANK_POOL);
static struct vm_tree pool_va;
static struct list_head partial[NR_CLASSES];
static bool pool_ready;
static uint64_t pages_held, tables_held; /* (tables_held: the tables charged, see tables_for_locked) */
static struct tag_slot tags[NR_TAGS];

/* ------------------------------------------------------------------ pages of the pool area */

/* pt_unmap callback: collect the frames; they are freed after the TLB flush. */
static void put_frame(uint64_t va, uint64_t pa, uint64_t size, void *arg)
{
	(void)va;
	(void)size;
	struct page *p = pa_to_page(pa);
	/* Only the pool may hold a pool page when it goes: anything else (a mapping of an MDL
	 * built over the block, say) would be left with a freed frame. */
	KASSERT_MSG(p->refcount == 1 && !p->pincount, "pool page %#llx still held (%u references, %u pins) when freed",
		    (unsigned long long)pa, p->refcount, p->pincount);
	list_add_tail(&p->lru, (struct list_head *)arg);
}

static void unmap_and_free_locked(uint64_t va, uint64_t pages)
{
	spin_assert_held(&pool_lock);
	struct list_head dead = LIST_HEAD_INIT(dead);
	Retcode rc = pt_unmap(&kernel_pt_root, va, pages * PAGE_SIZE, put_frame, &dead);
	KASSERT(rc == rcOk);
	while (!list_empty(&dead)) {
		struct page *p = list_first_entry(&dead, struct page, lru);
		list_del(&p->lru);
		pmm_free(p, 0);
	}
}

/* Whether a pool area in the tree maps a page in [lo, hi) (so the tables there exist). The
 * last area starting below hi is the only one that can. */
static bool mapped_in_locked(uint64_t lo, uint64_t hi)
{
	spin_assert_held(&pool_lock);
	struct vm_node *n = vm_tree_floor(&pool_va, hi - 1);
	return n && container_of(n, struct area, node)->mapped_end > lo;
}

/* The page tables (a table per 2 MiB window, a directory per 1 GiB) that mapping
 * [va, end) needs and no area in the tree already holds: what a new area costs in tables,
 * or what a removed one gives back. */
static uint64_t tables_for_locked(uint64_t va, uint64_t end)
{
	spin_assert_held(&pool_lock);
	uint64_t n = 0;
	for (uint64_t w = align_down(va, MiB(2)); w < end; w += MiB(2))
		n += !mapped_in_locked(w, w + MiB(2));
	for (uint64_t g = align_down(va, GiB(1)); g < end; g += GiB(1))
		n += !mapped_in_locked(g, g + GiB(1));
	return n;
}

/*
 * Maps `pages` fresh frames at a free, `align`-aligned spot of the pool area that has `gap`
 * unmapped pages after it, charged (with the tables they need) to the commit limit. Returns
 * the address (the caller builds its header there, sets it up with area_init_locked, which
 * inserts it into pool_va, before dropping the lock), or 0.
 */
static uint64_t area_get_locked(uint64_t pages, uint64_t gap, uint64_t align)
{
	spin_assert_held(&pool_lock);
	uint64_t va;

	if (!vm_tree_find_gap(&pool_va, KPOOL_BASE, KPOOL_BASE + KPOOL_SIZE, KPOOL_BASE, (pages + gap) * PAGE_SIZE,
			      align, &va))
		return 0;
	uint64_t tables = tables_for_locked(va, va + pages * PAGE_SIZE);
	if (charge_take(NULL, pages + tables) != rcOk)
		return 0;
	for (uint64_t i = 0; i < pages; i++) {
		struct page *p = pmm_alloc(0, 0, PAGE_POOL);
		if (p && pt_map(&kernel_pt_root, va + i * PAGE_SIZE, page_to_pa(p), PAGE_SIZE,
				MMU_READ | MMU_WRITE | MMU_GLOBAL, PT_LEVEL_PT) == rcOk)
			continue;
		if (p)
			pmm_free(p, 0);
		if (i)
			unmap_and_free_locked(va, i);
		charge_release(NULL, pages + tables);
		return 0;
	}
	pages_held += pages;
	tables_held += tables;
	return va;
}

static void area_init_locked(struct area *a, uint64_t va, uint64_t mapped_pages, uint64_t gap)
{
	spin_assert_held(&pool_lock);
	a->node = (struct vm_node){ .base = va, .end = va + (mapped_pages + gap) * PAGE_SIZE };
	a->mapped_end = va + mapped_pages * PAGE_SIZE;
	vm_tree_insert(&pool_va, &a->node);
}

static void area_put_locked(struct area *a, uint64_t pages)
{
	spin_assert_held(&pool_lock);
	uint64_t base = a->node.base;

	vm_tree_remove(&pool_va, &a->node);
	unmap_and_free_locked(base, pages);
	uint64_t tables = tables_for_locked(base, base + pages * PAGE_SIZE); /* (it is out of the tree) */
	charge_release(NULL, pages + tables);
	pages_held -= pages;
	tables_held -= tables;
}

/* ------------------------------------------------------------------ tags */

static struct tag_slot *tag_slot_locked(uint32_t tag)
{
	spin_assert_held(&pool_lock);
	unsigned h = (tag * 2654435761u) % NR_TAGS;

	for (unsigned i = 0; i < NR_TAGS; i++) {
		struct tag_slot *s = &tags[(h + i) % NR_TAGS];
		if (s->tag == tag || s->tag == 0) {
			s->tag = tag;
			return s;
		}
	}
	return &tags[h]; /* table full: share a slot rather than lose the count */
}

void pool_tag_name(uint32_t tag, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(tag >> (8 * i));
		out[i] = c >= 32 && c < 127 ? c : '?';
	}
	out[4] = '\0';
}

/* ------------------------------------------------------------------ blocks */

static void init_locked(void)
{
	spin_assert_held(&pool_lock);
	if (pool_ready)
		return;
	vm_tree_init(&pool_va);
	for (unsigned c = 0; c < NR_CLASSES; c++)
		list_init(&partial[c]);
	pool_ready = true;
}

static void *seal_locked(struct hdr *h, unsigned cls, size_t size, uint32_t tag, size_t room)
{
	spin_assert_held(&pool_lock);
	h->magic = MAGIC_LIVE;
	h->tag = tag;
	h->size = (uint32_t)size;
	h->cls = (uint8_t)cls;
	uint8_t *data = (uint8_t *)(h + 1);
	memset(data + size, REDZONE_BYTE, room - size);
	struct tag_slot *s = tag_slot_locked(tag);
	s->allocs++;
	s->bytes += size;
	return data;
}

static struct segment *new_segment_locked(unsigned cls)
{
	spin_assert_held(&pool_lock);
	uint64_t va = area_get_locked(SEG_PAGES, 0, SEG_SIZE);

	if (!va)
		return NULL;
	struct segment *seg = (struct segment *)va;
	*seg = (struct segment){ .cls = (uint16_t)cls };
	area_init_locked(&seg->area, va, SEG_PAGES, 0);
	seg->nblocks = (uint16_t)((SEG_SIZE - SEG_HDR) / class_size[cls]);
	for (unsigned i = seg->nblocks; i-- > 0;) {
		struct hdr *h = (struct hdr *)(va + SEG_HDR + (uint64_t)i * class_size[cls]);
		h->magic = MAGIC_FREE;
		*(void **)(h + 1) = seg->free;
		seg->free = h;
	}
	list_add(&seg->link, &partial[cls]);
	return seg;
}

/* The class of a small block of `size` bytes, or NR_CLASSES for a large one. */
static unsigned class_of(size_t size)
{
	unsigned cls = 0;
	while (cls < NR_CLASSES && size + HDR_SIZE + REDZONE_MIN > class_size[cls])
		cls++;
	return cls;
}

static uint64_t large_pages(size_t size) { return pages_of(LARGE_HDR + HDR_SIZE + size + REDZONE_MIN); }

size_t pool_block_cost(size_t size)
{
	unsigned cls = class_of(size);
	return cls < NR_CLASSES ? class_size[cls] : large_pages(size) * PAGE_SIZE;
}

size_t pool_block_size(const void *p) { return ((const struct hdr *)p - 1)->size; }

void *pool_alloc(size_t size, uint32_t tag)
{
	void *data = NULL;

	if (size == 0 || size > GiB(1))
		return NULL;
	bool irq = spin_lock_irqsave(&pool_lock);
	init_locked();
	unsigned cls = class_of(size);
	if (cls < NR_CLASSES) {
		struct segment *seg = list_empty(&partial[cls]) ? new_segment_locked(cls)
								: list_first_entry(&partial[cls], struct segment, link);
		if (seg) {
			struct hdr *h = seg->free;
			seg->free = *(void **)(h + 1);
			if (++seg->live == seg->nblocks)
				list_del(&seg->link);
			data = seal_locked(h, cls, size, tag, class_size[cls] - HDR_SIZE);
		}
	} else {
		uint64_t pages = large_pages(size);
		uint64_t va = area_get_locked(pages, 1, PAGE_SIZE);
		if (va) {
			struct large *l = (struct large *)va;
			*l = (struct large){ .pages = pages };
			area_init_locked(&l->area, va, pages, 1);
			data = seal_locked((struct hdr *)(va + LARGE_HDR), CLASS_LARGE, size, tag,
					   pages * PAGE_SIZE - LARGE_HDR - HDR_SIZE);
		}
	}
	spin_unlock_irqrestore(&pool_lock, irq);
	return data;
}

/* The header of p and the bytes after its data, or a reason it is not a live block. */
static const char *inspect(const void *p, struct hdr **out, size_t *room)
{
	uint64_t va = (uint64_t)(uintptr_t)p;

	if (va < KPOOL_BASE || va >= KPOOL_BASE + KPOOL_SIZE || !is_aligned(va, 16))
		return "not a pool address";
	struct hdr *h = (struct hdr *)p - 1;
	if (h->magic == MAGIC_FREE)
		return "already free";
	if (h->magic != MAGIC_LIVE)
		return "header overwritten (underrun or not a block)";
	if (h->cls == CLASS_LARGE) {
		const struct large *l = (const struct large *)(va - HDR_SIZE - LARGE_HDR);
		*room = l->pages * PAGE_SIZE - LARGE_HDR - HDR_SIZE;
	} else if (h->cls < NR_CLASSES) {
		*room = class_size[h->cls] - HDR_SIZE;
	} else {
		return "header overwritten (bad class)";
	}
	if (h->size > *room - REDZONE_MIN)
		return "header overwritten (bad size)";
	*out = h;
	return NULL;
}

Retcode pool_check(const void *p, char *why, size_t size)
{
	struct hdr *h;
	size_t room;
	const char *bad = inspect(p, &h, &room);

	if (bad) {
		ksnprintf(why, size, "%p: %s", p, bad);
		return rcFault;
	}
	const uint8_t *data = p;
	for (size_t i = h->size; i < room; i++) {
		if (data[i] != REDZONE_BYTE) {
			char t[5];
			pool_tag_name(h->tag, t);
			ksnprintf(why, size, "%p: red zone overwritten at +%zu (block of %u bytes, tag '%s')", p, i,
				  h->size, t);
			return rcFault;
		}
	}
	return rcOk;
}

void pool_free(void *p)
{
	char why[128];

	if (!p)
		return;
	if (pool_check(p, why, sizeof(why)) != rcOk)
		panic("pool_free: %s", why);
	bool irq = spin_lock_irqsave(&pool_lock);
	struct hdr *h = (struct hdr *)p - 1;
	struct tag_slot *s = tag_slot_locked(h->tag);
	s->frees++;
	s->bytes -= h->size;
	h->magic = MAGIC_FREE;
	if (h->cls == CLASS_LARGE) {
		struct large *l = (struct large *)((uint64_t)(uintptr_t)h - LARGE_HDR);
		area_put_locked(&l->area, l->pages);
	} else {
		struct segment *seg = (struct segment *)align_down((uint64_t)(uintptr_t)h, SEG_SIZE);
#ifdef KNMM_DEBUG
		memset(p, FREE_BYTE, class_size[h->cls] - HDR_SIZE);
#endif
		*(void **)p = seg->free;
		seg->free = h;
		if (seg->live-- == seg->nblocks)
			list_add(&seg->link, &partial[seg->cls]);
	}
	spin_unlock_irqrestore(&pool_lock, irq);
}

void pool_trim(void)
{
	bool irq = spin_lock_irqsave(&pool_lock);
	for (unsigned c = 0; pool_ready && c < NR_CLASSES; c++) {
		struct list_head *pos = partial[c].next;
		while (pos != &partial[c]) {
			struct segment *seg = list_entry(pos, struct segment, link);
			pos = pos->next;
			if (seg->live)
				continue;
			list_del(&seg->link);
			area_put_locked(&seg->area, SEG_PAGES);
		}
	}
	spin_unlock_irqrestore(&pool_lock, irq);
}

unsigned pool_tag_usage(struct pool_tag_stats *out, unsigned max)
{
	unsigned n = 0;

	bool irq = spin_lock_irqsave(&pool_lock);
	for (unsigned pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < NR_TAGS && n < max; i++) {
			const struct tag_slot *s = &tags[i];
			bool live = s->allocs != s->frees;
			if (!s->tag || live != (pass == 0))
				continue;
			out[n++] = (struct pool_tag_stats){ s->tag, s->allocs, s->frees, s->bytes };
		}
	spin_unlock_irqrestore(&pool_lock, irq);
	return n;
}

uint64_t pool_pages(void) { return READ_ONCE(pages_held); }
uint64_t pool_table_pages(void) { return READ_ONCE(tables_held); }
