// SPDX-License-Identifier: MIT
/* MDLs mapped into and made of address spaces (moving to mm/mdl_vm.c and mm/vm_frames.c). */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/mdl.h>
#include <mm/pmm.h>
#include "vm_internal.h"

/* Maps pages [first, first + npages) of RAM MDL m at va in region r: each mapped frame
 * takes a reference. All or nothing (rcOutOfMemory for a table). Lock held. */
static Retcode map_mdl_frames(struct vm_space *vs, struct vm_region *r, const struct mdl *m, uint64_t first,
			      uint64_t npages, uint64_t va, unsigned mmu)
{
	uint64_t pos = 0; /* page of the MDL at the start of run i */
	Retcode rc = rcOk;

	for (uint32_t i = 0; i < m->nruns && rc == rcOk; pos += m->runs[i].count, i++) {
		const struct mdl_run *run = &m->runs[i];
		uint64_t lo = MAX(pos, first), hi = MIN(pos + run->count, first + npages);
		if (lo >= hi || run->pfn == MDL_FICTITIOUS)
			continue;
		uint64_t pa = (run->pfn + (lo - pos)) << PAGE_SHIFT, at = va + (lo - first) * PAGE;
		rc = pt_map(&vs->pt, at, pa, (hi - lo) * PAGE, mmu, PT_LEVEL_PT);
		if (rc != rcOk)
			break;
		for (uint64_t k = 0; k < hi - lo; k++)
			page_ref(pa_to_page(pa + k * PAGE));
		r->resident += hi - lo;
		vs->resident += hi - lo;
	}
	if (rc != rcOk)
		vm_unmap_pages_locked(vs, r, va, npages); /* drops exactly the references taken above */
	return rc;
}

Retcode vm_map_mdl(struct vm_space *vs, const struct mdl *m, uint64_t first, uint64_t npages, uint64_t addr,
		   unsigned flags, unsigned max_prot, const char *name, uint64_t *out)
{
	unsigned prot = flags & VMM_FLAG_RWX_MASK, cache = vm_cache_mode(flags);
	unsigned cap = m->max_prot & max_prot & VMM_FLAG_RWX_MASK;
	uint64_t va;

	if (m->kind == MDL_DESCRIBED || (flags & ~(unsigned)(VMM_FLAG_RWX_MASK | VMM_FLAG_CACHE_MASK)) ||
	    !prot_valid(prot) || !cache_valid(flags) || npages == 0 || first > m->pages || npages > m->pages - first)
		return rcInvalidArgument;
	if (prot & ~cap)
		return rcAccessDenied;
	flags = VMM_FLAG_RESERVE | prot | (cache ? cache : m->cache);
	if (m->kind == MDL_IO) {
		Retcode rc = vm_allocate_named(vs, addr, npages * PAGE, flags, VMR_IO, name, &va);
		if (rc != rcOk)
			return rc;
		rc = vm_map_io(vs, va, (m->runs[0].pfn + first) << PAGE_SHIFT, npages);
		if (rc != rcOk) {
			vm_unmap(vs, va, npages * PAGE);
			return rc;
		}
		*out = va;
		return rcOk;
	}
	Retcode rc = vm_allocate_named(vs, addr, npages * PAGE, flags | VMM_FLAG_COMMIT, VMR_ANON, name, &va);
	if (rc != rcOk)
		return rc;
	vm_lock(vs);
	struct vm_region *r = vm_region_find_locked(vs, va);
	/* (the region was made just now; another thread of the task could have unmapped it) */
	if (!r || vmr_base(r) != va || vmr_pages(r) != npages || r->resident)
		rc = rcBusy;
	else {
		r->max_prot = (uint8_t)cap;
		rc = map_mdl_frames(vs, r, m, first, npages, va, vm_mmu_flags(vs, prot, r->flags));
	}
	vm_unlock(vs);
	if (rc != rcOk) {
		vm_free_dead(vs);
		if (rc != rcBusy)
			vm_unmap(vs, va, npages * PAGE);
		return rc;
	}
	*out = va;
	return rcOk;
}

struct pin_ctx {
	struct mdl *m;
	Retcode rc;
};

static int collect_frames(const struct pt_leaf *leaf, void *arg)
{
	struct pin_ctx *c = arg;
	c->rc = mdl_append_run(c->m, leaf->pa >> PAGE_SHIFT, leaf->size / PAGE);
	return c->rc != rcOk;
}

Retcode vm_pin_range(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access, unsigned cache,
		     struct mdl *m)
{
	static const struct pt_walk_ops frames = { .leaf = collect_frames };
	struct vm_region *r;

	if (!range_args_ok(vs, addr, size) || !access || (access & ~(unsigned)VMM_FLAG_RWX_MASK))
		return rcInvalidArgument;
	vm_lock(vs);
	Retcode rc = vm_find_range_locked(vs, addr, size, &r);
	uint64_t first = 0, count = size / PAGE;
	if (rc == rcOk) {
		first = (addr - vmr_base(r)) / PAGE;
		if (r->kind != VMR_ANON || vm_runs_count_locked(vs, r, first, count, VM_COMMITTED, false) != count ||
		    (cache != MDL_CACHE_ANY && vm_cache_mode(cache) != vm_cache_mode(r->flags)))
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
	/* Everything that can fail before a page is made resident: room for a run per page
	 * (frames may come in any order), and the frames, zeroed with no lock held (busy). */
	struct list_head pool = LIST_HEAD_INIT(pool);
	uint64_t holes = vm_holes_locked(vs, addr, count);
	unsigned cache_flags = r->flags;
	r->busy++;
	vm_unlock(vs);
	rc = mdl_reserve_runs(m, count);
	if (rc == rcOk)
		rc = vm_frames_get(&pool, holes, cache_flags);
	vm_lock(vs);
	if (rc == rcOk)
		rc = vm_populate_locked(vs, r, first, count, &pool);
	busy_end_locked(vs, r);
	struct pin_ctx c = { .m = m, .rc = rcOk };
	if (rc == rcOk) {
		pt_walk_range(&vs->pt, addr, size, &frames, &c);
		KASSERT(c.rc == rcOk); /* (room was made for every page) */
		/* Every frame listed: only now take the references and pins. */
		m->cache = (uint16_t)vm_cache_mode(r->flags);
		mdl_hold_frames(m);
	} else {
		m->nruns = 0;
	}
	vm_unlock(vs);
	vm_frames_put(&pool);
	vm_free_dead(vs);
	return rc;
}

struct region_runs {
	struct mdl *m;
	uint64_t at; /* where the next stretch starts */
	Retcode rc;
};

static int dump_leaf(const struct pt_leaf *leaf, void *arg)
{
	struct region_runs *rr = arg;
	/* (a leaf can start before the range: take its part in it) */
	uint64_t skip = rr->at > leaf->va ? (rr->at - leaf->va) / PAGE : 0;
	rr->rc = mdl_append_run(rr->m, (leaf->pa >> PAGE_SHIFT) + skip, leaf->size / PAGE - skip);
	rr->at = leaf->va + leaf->size;
	return rr->rc != rcOk;
}

static int dump_hole(uint64_t start, uint64_t end, void *arg)
{
	struct region_runs *rr = arg;
	rr->rc = mdl_append_run(rr->m, MDL_FICTITIOUS, (end - start) / PAGE);
	rr->at = end;
	return rr->rc != rcOk;
}

Retcode vm_region_mdl(struct vm_space *vs, uint64_t cursor, uint64_t *base, uint64_t *size, unsigned *flags,
		      struct account *acct, struct mdl **out)
{
	static const struct pt_walk_ops stretches = { .leaf = dump_leaf, .hole = dump_hole };

	vm_lock(vs);
	struct vm_region *r = region_of(vm_tree_ceil(&vs->tree, cursor));
	if (!r) {
		vm_unlock(vs);
		return rcEof;
	}
	uint64_t npages = vmr_pages(r);
	unsigned f = (r->flags & (VMM_FLAG_CACHE_MASK | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD | VMM_FLAG_GROW_DOWN)) |
		     VMM_FLAG_RESERVE;
	for (uint32_t i = 0; i < r->runs.n; i++) {
		const struct vm_run *run = &r->runs.v[i];
		if (run->state != VM_GUARD)
			f |= run->prot;
		f |= (run->state == VM_COMMITTED ? VMM_FLAG_COMMIT : 0) | (run->locked ? VMM_FLAG_LOCKED : 0);
	}
	struct region_runs rr = { .m = mdl_new_ram(VMM_FLAG_READ | (r->flags & VMM_FLAG_CACHE_MASK), acct),
				  .at = vmr_base(r) };
	if (!rr.m)
		rr.rc = rcOutOfMemory;
	else if (r->kind == VMR_IO)
		rr.rc = mdl_append_run(rr.m, MDL_FICTITIOUS, npages); /* device memory is not dumped */
	else
		pt_walk_range(&vs->pt, vmr_base(r), npages * PAGE, &stretches, &rr);
	if (rr.rc == rcOk) /* pins the frames while the lock keeps them where they are */
		rr.rc = mdl_take_frames(rr.m);
	else if (rr.m)
		rr.m->nruns = 0; /* nothing pinned */
	if (rr.rc == rcOk) {
		*base = vmr_base(r);
		*size = npages * PAGE;
		*flags = f;
		*out = rr.m;
	}
	vm_unlock(vs);
	if (rr.rc != rcOk && rr.m)
		mdl_free(rr.m);
	return rr.rc;
}
