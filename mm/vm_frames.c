// SPDX-License-Identifier: MIT
/*
 * The frames behind ranges of an address space (mm/vm_frames.h): mapping runs of frames
 * someone else holds, pinning a range's frames, and the runs of a region for a dump. Knows
 * no MDL: what keeps the frames is the caller's (mm/mdl_vm.c).
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/pmm.h>
#include "vm_frames.h"
#include "vm_internal.h"

/* ------------------------------------------------------------------ mapping frames */

/* Maps the runs `next` gives at va in region r, each mapped frame taking a reference. All or
 * nothing (rcOutOfMemory for a table). */
static Retcode map_runs_locked(struct vm_space *vs, struct vm_region *r, uint64_t va, uint64_t npages, unsigned mmu,
			       vm_next_run_fn next, void *arg)
{
	vm_assert_held(vs);
	uint64_t at = va, pfn, pages;
	Retcode rc = rcOk;

	while (rc == rcOk && next(arg, &pfn, &pages)) {
		if (pfn != VM_NO_FRAME) {
			uint64_t pa = pfn << PAGE_SHIFT;
			rc = pt_map(&vs->pt, at, pa, pages * PAGE, mmu, PT_LEVEL_PT);
			if (rc != rcOk)
				break;
			for (uint64_t k = 0; k < pages; k++)
				page_ref(pa_to_page(pa + k * PAGE));
			r->resident += pages;
			vs->resident += pages;
		}
		at += pages * PAGE;
	}
	if (rc != rcOk)
		vm_unmap_pages_locked(vs, r, va, npages); /* drops exactly the references taken above */
	return rc;
}

Retcode vm_map_frames(struct vm_space *vs, uint64_t va, uint64_t npages, unsigned prot, unsigned max_prot,
		      vm_next_run_fn next, void *arg)
{
	Retcode rc;

	vm_lock(vs);
	struct vm_region *r = vm_region_find_locked(vs, va);
	/* (the region was made just now; another thread of the task could have unmapped it) */
	if (!r || vmr_base(r) != va || vmr_pages(r) != npages || r->resident) {
		rc = rcBusy;
	} else {
		r->max_prot = (uint8_t)max_prot;
		rc = map_runs_locked(vs, r, va, npages, vm_mmu_flags(vs, prot, r->flags), next, arg);
	}
	vm_unlock(vs);
	if (rc != rcOk)
		vm_free_dead(vs);
	return rc;
}

/* ------------------------------------------------------------------ pinning */

struct pin_ctx {
	const struct vm_pin_sink *sink;
	Retcode rc;
};

static int pin_leaf(const struct pt_leaf *leaf, void *arg)
{
	struct pin_ctx *c = arg;
	c->rc = c->sink->run(c->sink->arg, leaf->pa >> PAGE_SHIFT, leaf->size / PAGE);
	return c->rc != rcOk;
}

Retcode vm_pin_frames(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access, unsigned cache,
		      const struct vm_pin_sink *sink)
{
	static const struct pt_walk_ops frames = { .leaf = pin_leaf };
	struct vm_region *r;

	if (!range_args_ok(vs, addr, size) || !access || (access & ~(unsigned)VMM_FLAG_RWX_MASK))
		return rcInvalidArgument;
	vm_lock(vs);
	Retcode rc = vm_find_range_locked(vs, addr, size, &r);
	uint64_t first = 0, count = size / PAGE;
	if (rc == rcOk) {
		first = (addr - vmr_base(r)) / PAGE;
		if (r->kind != VMR_ANON || vm_runs_count_locked(vs, r, first, count, VM_COMMITTED, false) != count ||
		    (cache != VM_CACHE_ANY && vm_cache_mode(cache) != vm_cache_mode(r->flags)))
			rc = rcInvalidArgument;
		else if (!allows(r->max_prot, access))
			rc = rcAccessDenied;
	}
	for (uint64_t pos = first; rc == rcOk && pos < first + count;) {
		uint32_t i = vm_runs_find(&r->runs, pos);
		if (!allows(r->runs.v[i].prot, access))
			rc = rcAccessDenied;
		pos = vm_runs_end(&r->runs, i, vmr_pages(r));
	}
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc != rcOk) {
		vm_unlock(vs);
		return rc;
	}
	/* Everything that can fail before a page is made resident: the sink's room for a run
	 * per page (frames may come in any order), and the frames, zeroed with no lock held
	 * (busy). */
	struct list_head pool = LIST_HEAD_INIT(pool);
	uint64_t holes = vm_holes_locked(vs, addr, count);
	unsigned cache_flags = r->flags;
	r->busy++;
	vm_unlock(vs);
	rc = sink->prepare(sink->arg, count);
	if (rc == rcOk)
		rc = vm_frames_get(&pool, holes, cache_flags);
	vm_lock(vs);
	if (rc == rcOk)
		rc = vm_populate_locked(vs, r, first, count, &pool);
	busy_end_locked(vs, r);
	if (rc == rcOk) {
		struct pin_ctx c = { .sink = sink, .rc = rcOk };
		pt_walk_range(&vs->pt, addr, size, &frames, &c);
		KASSERT(c.rc == rcOk); /* (room was made for every page) */
		/* Every frame given: only now the caller takes its references and pins. */
		sink->take(sink->arg, vm_cache_mode(r->flags));
	}
	vm_unlock(vs);
	vm_frames_put(&pool);
	vm_free_dead(vs);
	return rc;
}

/* ------------------------------------------------------------------ a region's runs (dumps) */

struct region_runs {
	const struct vm_region_sink *sink;
	uint64_t at; /* where the next stretch starts */
	Retcode rc;
};

static int region_leaf(const struct pt_leaf *leaf, void *arg)
{
	struct region_runs *rr = arg;
	/* (a leaf can start before the range: take its part in it) */
	uint64_t skip = rr->at > leaf->va ? (rr->at - leaf->va) / PAGE : 0;
	rr->rc = rr->sink->run(rr->sink->arg, (leaf->pa >> PAGE_SHIFT) + skip, leaf->size / PAGE - skip);
	rr->at = leaf->va + leaf->size;
	return rr->rc != rcOk;
}

static int region_hole(uint64_t start, uint64_t end, void *arg)
{
	struct region_runs *rr = arg;
	rr->rc = rr->sink->run(rr->sink->arg, VM_NO_FRAME, (end - start) / PAGE);
	rr->at = end;
	return rr->rc != rcOk;
}

Retcode vm_region_frames(struct vm_space *vs, uint64_t cursor, const struct vm_region_sink *sink,
			 struct vm_region_info *out)
{
	static const struct pt_walk_ops stretches = { .leaf = region_leaf, .hole = region_hole };

	vm_lock(vs);
	struct vm_region *r = region_of(vm_tree_ceil(&vs->tree, cursor));
	if (!r) {
		vm_unlock(vs);
		return rcEof;
	}
	uint64_t npages = vmr_pages(r);
	struct vm_region_info ri = { .base = vmr_base(r),
				     .size = npages * PAGE,
				     .flags = vm_region_summary_locked(vs, r),
				     .cache = r->flags & VMM_FLAG_CACHE_MASK };
	struct region_runs rr = { .sink = sink, .at = vmr_base(r), .rc = sink->begin(sink->arg, &ri) };
	if (rr.rc == rcOk && r->kind == VMR_IO)
		rr.rc = sink->run(sink->arg, VM_NO_FRAME, npages); /* device memory is not dumped */
	else if (rr.rc == rcOk)
		pt_walk_range(&vs->pt, vmr_base(r), npages * PAGE, &stretches, &rr);
	if (rr.rc == rcOk) /* the frames are taken while the lock keeps them where they are */
		rr.rc = sink->end(sink->arg);
	vm_unlock(vs);
	if (rr.rc == rcOk)
		*out = ri;
	return rr.rc;
}
