// SPDX-License-Identifier: MIT
/*
 * A region's pages (mm/vm_internal.h): frames got and put outside the lock, populating
 * non-resident pages, unmapping them (frames that lose their last reference wait on the
 * space's dead list until the lock is dropped), editing and counting runs, releasing pages
 * and removing a region. Every operation of vm_map.c, vm_commit.c, vm_fault.c and
 * vm_frames.c is made of these.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include "frame.h"
#include "vm_internal.h"

/* ------------------------------------------------------------------ frames */

struct unmap_ctx {
	bool owns_frames;
	uint64_t pages;
	struct list_head *dead; /* frames whose last reference went: freed after the TLB flush */
};

static void unmap_cb(uint64_t va, uint64_t pa, uint64_t size, void *arg)
{
	struct unmap_ctx *c = arg;
	(void)va;
	for (uint64_t off = 0; off < size; off += PAGE) {
		c->pages++;
		if (!c->owns_frames)
			continue;
		struct page *p = pa_to_page(pa + off);
		if (page_unref(p))
			list_add_tail(&p->lru, c->dead);
	}
}

/* Frames to the allocator, a chunk at a time with a preemption point between chunks (in
 * debug builds each free also poisons the frame). No lock held. */
void vm_frames_put(struct list_head *frames)
{
	for (uint64_t n = 1; !list_empty(frames); n++) {
		struct page *p = list_first_entry(frames, struct page, lru);
		list_del(&p->lru);
		frame_free(p);
		if (n % VM_CHUNK_PAGES == 0)
			vm_preempt_point();
	}
}

/* `n` zeroed frames of the cache mode's type onto `frames`, zeroed outside any lock with a
 * preemption point between chunks (so a large locked commit does not zero with interrupts
 * off). rcOutOfMemory with the list as it was. */
Retcode vm_frames_get(struct list_head *frames, uint64_t n, unsigned cache)
{
	struct list_head got = LIST_HEAD_INIT(got);
	for (uint64_t i = 0; i < n; i++) {
		struct page *p = frame_alloc(cache, PAGE_ANON);
		if (!p) {
			vm_frames_put(&got);
			return rcOutOfMemory;
		}
		list_add_tail(&p->lru, &got);
		if ((i + 1) % VM_CHUNK_PAGES == 0)
			vm_preempt_point();
	}
	list_splice_tail_init(&got, frames);
	return rcOk;
}

/* Unmaps [va, va + npages) of region r: frames lose the mapping's reference, and those that
 * lose their last wait on the space's dead list (the TLB flushed before pt_unmap returns)
 * until the operation drops the lock and calls vm_free_dead. */
void vm_unmap_pages_locked(struct vm_space *vs, struct vm_region *r, uint64_t va, uint64_t npages)
{
	vm_assert_held(vs);
	struct unmap_ctx c = { .owns_frames = r->kind != VMR_IO, .dead = &vs->dead };

	if (!r->resident)
		return; /* nothing of the region is mapped: no tables to walk */
	Retcode rc = pt_unmap(&vs->pt, va, npages * PAGE, unmap_cb, &c); /* flushes before returning */

	KASSERT(rc == rcOk); /* 4 KiB pages only: nothing to split */
	r->resident -= c.pages;
	vs->resident -= c.pages;
}

/* Frees what vm_unmap_pages_locked left on the dead list. Every operation that may unmap calls it
 * after dropping the lock. */
void vm_free_dead(struct vm_space *vs)
{
	struct list_head dead = LIST_HEAD_INIT(dead);
	if (list_empty(&vs->dead))
		return; /* (this operation unmapped no frame that lost its last reference) */
	vm_lock(vs);
	list_splice_tail_init(&vs->dead, &dead);
	vm_unlock(vs);
	vm_frames_put(&dead);
}

/* ------------------------------------------------------------------ populate */

struct span {
	uint64_t start, end;
};

struct span_vec {
	unsigned n, cap;
	struct span *v;
	struct span inline_v[4];
	bool failed;
};

static int collect_hole(uint64_t start, uint64_t end, void *arg)
{
	struct span_vec *sv = arg;
	if (sv->n == sv->cap) {
		unsigned cap = sv->cap * 2;
		struct span *v = pool_alloc(cap * sizeof(*v), POOL_TAG('V', 'm', 'S', 'p'));
		if (!v) {
			sv->failed = true;
			return 1;
		}
		memcpy(v, sv->v, sv->n * sizeof(*v));
		if (sv->v != sv->inline_v)
			pool_free(sv->v);
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = (struct span){ start, end };
	return 0;
}

static void span_vec_free(struct span_vec *sv)
{
	if (sv->v != sv->inline_v)
		pool_free(sv->v);
}

static int count_hole(uint64_t start, uint64_t end, void *arg)
{
	*(uint64_t *)arg += (end - start) / PAGE;
	return 0;
}

/* Non-resident pages in [va, va + npages) (O(tables present)). Lock held. */
uint64_t vm_holes_locked(struct vm_space *vs, uint64_t va, uint64_t npages)
{
	vm_assert_held(vs);
	static const struct pt_walk_ops holes_only = { .hole = count_hole };
	uint64_t n = 0;
	pt_walk_range(&vs->pt, va, npages * PAGE, &holes_only, &n);
	return n;
}

struct count_ctx {
	uint64_t pages;
};

static int count_leaf(const struct pt_leaf *leaf, void *arg)
{
	((struct count_ctx *)arg)->pages += leaf->size / PAGE;
	return 0;
}

/* Mapped pages in [va, va + size) (O(tables present)). */
uint64_t vm_count_mapped_locked(struct vm_space *vs, uint64_t va, uint64_t size)
{
	vm_assert_held(vs);
	static const struct pt_walk_ops counter = { .leaf = count_leaf };
	struct count_ctx c = { 0 };
	pt_walk_range(&vs->pt, va, size, &counter, &c);
	return c.pages;
}

/*
 * Gives every non-resident page of pages [first, first + count) of region r a frame from
 * `frames` (zeroed, of the region's type: callers allocate them before taking the lock, see
 * vm_frames_get), mapped with its run's protection; frames it does not need stay on the list.
 * If the list is short (a caller that could not count the holes beforehand) the rest is
 * allocated here. All or nothing: the holes are found first, every frame is at hand next,
 * and a mapping that fails undoes this call's mappings only. Lock held.
 */
Retcode vm_populate_locked(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count,
			   struct list_head *frames)
{
	vm_assert_held(vs);
	static const struct pt_walk_ops holes_only = { .hole = collect_hole };
	struct span_vec holes = { .cap = 4 };
	uint64_t va0 = vmr_base(r) + first * PAGE, need = 0, have = 0;
	Retcode rc = rcOk;

	holes.v = holes.inline_v;
	pt_walk_range(&vs->pt, va0, count * PAGE, &holes_only, &holes);
	if (holes.failed) {
		span_vec_free(&holes);
		return rcOutOfMemory;
	}
	for (unsigned i = 0; i < holes.n; i++)
		need += (holes.v[i].end - holes.v[i].start) / PAGE;
	struct list_head *pos;
	list_for_each(pos, frames)
		if (++have >= need)
			break;
	for (; have < need; have++) {
		struct page *p = frame_alloc(r->flags, PAGE_ANON);
		if (!p) {
			rc = rcOutOfMemory;
			break;
		}
		list_add_tail(&p->lru, frames);
	}
	for (unsigned h = 0; rc == rcOk && h < holes.n; h++) {
		for (uint64_t va = holes.v[h].start; va < holes.v[h].end; va += PAGE) {
			uint32_t ri = vm_runs_find(&r->runs, (va - vmr_base(r)) / PAGE);
			struct page *p = list_first_entry(frames, struct page, lru);
			unsigned mmu = vm_mmu_flags(vs, r->runs.v[ri].prot, r->flags);
			rc = pt_map(&vs->pt, va, page_to_pa(p), PAGE, mmu, PT_LEVEL_PT);
			if (rc != rcOk) {
				/* Undo this call's mappings: the holes before h, and h up to va (their
				 * frames go to the dead list: freed after the lock). */
				for (unsigned k = 0; k <= h; k++) {
					uint64_t end = k == h ? va : holes.v[k].end;
					if (end > holes.v[k].start)
						vm_unmap_pages_locked(vs, r, holes.v[k].start,
								      (end - holes.v[k].start) / PAGE);
				}
				break;
			}
			list_del(&p->lru);
			p->lru.next = p->lru.prev = NULL;
			r->resident++;
			vs->resident++;
		}
	}
	span_vec_free(&holes);
	return rc;
}

/* ------------------------------------------------------------------ runs */

/* Applies (state, prot, locked) to runs in [first, first + count): KEEP leaves a field, and
 * `only_state` (if not KEEP) restricts the change to runs in that state. Capacity 2 reserved. */
void vm_runs_apply_locked(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count, uint8_t only_state,
			  uint8_t state, uint8_t prot, uint8_t locked)
{
	vm_assert_held(vs);
	struct vm_runs *runs = &r->runs;
	uint64_t npages = vmr_pages(r), end = first + count;

	/* By page position: merges may move run boundaries, positions only move forward. Only
	 * the first and last pieces can split a run, so two spare runs are enough. */
	for (uint64_t pos = first; pos < end;) {
		uint32_t i = vm_runs_find(runs, pos);
		struct vm_run run = runs->v[i];
		uint64_t stop = MIN(vm_runs_end(runs, i, npages), end);
		uint8_t st = state == KEEP ? run.state : state;
		uint8_t pr = prot == KEEP ? run.prot : prot;
		uint8_t lk = locked == KEEP ? run.locked : locked;
		if ((only_state == KEEP || run.state == only_state) &&
		    (st != run.state || pr != run.prot || lk != run.locked))
			vm_runs_set(runs, npages, pos, stop - pos, st, pr, lk);
		pos = stop;
	}
}

/* ------------------------------------------------------------------ release */

/* Unmaps and uncharges pages [first, first + count) of r (its runs stay as they are). */
void vm_release_pages_locked(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count)
{
	vm_assert_held(vs);
	uint64_t committed = r->kind == VMR_ANON ? vm_runs_count_locked(vs, r, first, count, VM_COMMITTED, false) : 0;
	uint64_t extra = committed * (frame_commit_cost(r->flags) - 1);
	uint64_t locked = vm_runs_count_locked(vs, r, first, count, KEEP, true);

	vm_unmap_pages_locked(vs, r, vmr_base(r) + first * PAGE, count);
	vs->committed -= committed;
	vs->commit_extra -= extra;
	vm_locked_pages_sub_locked(vs, locked);
	charge_release(vs->acct, committed + extra);
}

void vm_remove_region_locked(struct vm_space *vs, struct vm_region *r)
{
	vm_assert_held(vs);
	vm_release_pages_locked(vs, r, 0, vmr_pages(r));
	vm_tree_remove(&vs->tree, &r->node);
	vm_region_count_sub_locked(vs);
	charge_release(vs->acct, r->io_charge);
}
