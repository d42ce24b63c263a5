// SPDX-License-Identifier: MIT
/*
 * MDLs and address spaces (mm/mdl.h, docs/mdl.md): mapping an MDL into a space, an MDL over
 * a locked range of a space (the MDL part of probe and lock: FromVm), and an MDL over a
 * region's frames for a dump. Built on the address-space core's frame calls
 * (mm/vm_frames.h), which know no MDL: the MDL side of each is here.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <mm/mdl.h>
#include "vm_frames.h"

_Static_assert(MDL_FICTITIOUS == VM_NO_FRAME, "a fictitious run is a run with no frame");
_Static_assert(MDL_CACHE_ANY == VM_CACHE_ANY, "any cache mode is any cache mode");

/* ------------------------------------------------------------------ mapping */

/* The runs of pages [first, end) of an MDL, in order. */
struct mdl_runs_from {
	const struct mdl *m;
	uint32_t i;   /* the next run */
	uint64_t pos; /* the MDL's page at its start */
	uint64_t first, end;
};

static bool next_run(void *arg, uint64_t *pfn, uint64_t *pages)
{
	struct mdl_runs_from *c = arg;

	while (c->i < c->m->nruns) {
		const struct mdl_run *run = &c->m->runs[c->i++];
		uint64_t start = c->pos, lo = MAX(start, c->first), hi = MIN(start + run->count, c->end);
		c->pos += run->count;
		if (lo >= hi)
			continue;
		*pfn = run->pfn == MDL_FICTITIOUS ? VM_NO_FRAME : run->pfn + (lo - start);
		*pages = hi - lo;
		return true;
	}
	return false;
}

Retcode vm_map_mdl(struct vm_space *vs, const struct mdl *m, uint64_t first, uint64_t npages, uint64_t addr,
		   unsigned flags, unsigned max_prot, const char *name, uint64_t *out)
{
	unsigned prot = flags & VMM_FLAG_RWX_MASK, cache = vm_cache_mode(flags);
	unsigned cap = m->max_prot & max_prot & VMM_FLAG_RWX_MASK;
	uint64_t va;

	if (m->kind == MDL_DESCRIBED || (flags & ~(unsigned)(VMM_FLAG_RWX_MASK | VMM_FLAG_CACHE_MASK)) ||
	    !mdl_flags_valid(prot | cache) || npages == 0 || first > m->pages || npages > m->pages - first)
		return rcInvalidArgument;
	if (prot & ~cap)
		return rcAccessDenied;
	flags = VMM_FLAG_RESERVE | prot | (cache ? cache : m->cache);
	if (m->kind == MDL_IO) {
		Retcode rc = vm_allocate_named(vs, addr, npages * PAGE_SIZE, flags, VMR_IO, name, &va);
		if (rc != rcOk)
			return rc;
		rc = vm_map_io(vs, va, (m->runs[0].pfn + first) << PAGE_SHIFT, npages);
		if (rc != rcOk) {
			vm_unmap(vs, va, npages * PAGE_SIZE);
			return rc;
		}
		*out = va;
		return rcOk;
	}
	Retcode rc = vm_allocate_named(vs, addr, npages * PAGE_SIZE, flags | VMM_FLAG_COMMIT, VMR_ANON, name, &va);
	if (rc != rcOk)
		return rc;
	struct mdl_runs_from runs = { .m = m, .first = first, .end = first + npages };
	rc = vm_map_frames(vs, va, npages, prot, cap, next_run, &runs);
	if (rc != rcOk) {
		if (rc != rcBusy)
			vm_unmap(vs, va, npages * PAGE_SIZE);
		return rc;
	}
	*out = va;
	return rcOk;
}

/* ------------------------------------------------------------------ a locked range */

static Retcode pin_prepare(void *arg, uint64_t pages) { return mdl_reserve_runs(arg, pages); }
static Retcode pin_run(void *arg, uint64_t pfn, uint64_t pages) { return mdl_append_run(arg, pfn, pages); }

static void pin_take(void *arg, unsigned cache)
{
	struct mdl *m = arg;
	m->cache = (uint16_t)cache;
	mdl_hold_frames(m);
}

Retcode vm_pin_range(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access, unsigned cache, struct mdl *m)
{
	const struct vm_pin_sink sink = { .prepare = pin_prepare, .run = pin_run, .take = pin_take, .arg = m };
	Retcode rc = vm_pin_frames(vs, addr, size, access, cache, &sink);

	if (rc != rcOk)
		m->nruns = 0; /* nothing was pinned */
	return rc;
}

/* ------------------------------------------------------------------ a region, for a dump */

struct dump_mdl {
	struct account *acct;
	struct mdl *m;
};

static Retcode dump_begin(void *arg, const struct vm_region_info *ri)
{
	struct dump_mdl *d = arg;
	d->m = mdl_new(MDL_RAM, VMM_FLAG_READ | ri->cache, 0, 0, d->acct);
	return d->m ? rcOk : rcOutOfMemory;
}

static Retcode dump_run(void *arg, uint64_t pfn, uint64_t pages)
{
	return mdl_append_run(((struct dump_mdl *)arg)->m, pfn, pages); /* (VM_NO_FRAME: fictitious) */
}

static Retcode dump_end(void *arg) { return mdl_take_frames(((struct dump_mdl *)arg)->m); }

Retcode vm_region_mdl(struct vm_space *vs, uint64_t cursor, uint64_t *base, uint64_t *size, unsigned *flags,
		      struct account *acct, struct mdl **out)
{
	struct dump_mdl d = { .acct = acct };
	const struct vm_region_sink sink = { .begin = dump_begin, .run = dump_run, .end = dump_end, .arg = &d };
	struct vm_region_info ri;
	Retcode rc = vm_region_frames(vs, cursor, &sink, &ri);

	if (rc != rcOk) {
		if (d.m) {
			d.m->nruns = 0; /* nothing pinned */
			mdl_free(d.m);
		}
		return rc;
	}
	*base = ri.base;
	*size = ri.size;
	*flags = ri.flags;
	*out = d.m;
	return rcOk;
}
