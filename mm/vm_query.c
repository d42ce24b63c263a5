// SPDX-License-Identifier: MIT
/*
 * What a space holds, read without changing it (mm/vm.h): KnVmQuery's page description and
 * KnPmmMdlGetUsageMap's residency stretches, and what a dump reports of a region.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include "vm_internal.h"

struct residency_scan {
	bool resident; /* residency of the first page */
	uint64_t stop; /* where it changes */
};

static int scan_leaf(const struct pt_leaf *leaf, void *arg)
{
	struct residency_scan *s = arg;
	if (!s->resident) {
		s->stop = leaf->va;
		return 1;
	}
	return 0;
}

static int scan_hole(uint64_t start, uint64_t end, void *arg)
{
	struct residency_scan *s = arg;
	(void)end;
	if (s->resident) {
		s->stop = start;
		return 1;
	}
	return 0;
}

Retcode vm_query(struct vm_space *vs, uint64_t addr, struct vm_info *out)
{
	static const struct pt_walk_ops scan = { .leaf = scan_leaf, .hole = scan_hole };

	addr = align_down(addr, PAGE);
	if (addr < vs->lo || addr >= vs->hi)
		return rcInvalidArgument;
	memset(out, 0, sizeof(*out));
	vm_lock(vs);
	struct vm_region *r = vm_region_find_locked(vs, addr);
	if (!r) {
		struct vm_node *prev = vm_tree_floor(&vs->tree, addr), *next = vm_tree_ceil(&vs->tree, addr);
		uint64_t lo = prev ? prev->end : vs->lo, hi = next ? next->base : vs->hi;
		out->region_base = lo;
		out->region_size = hi - lo;
		out->state = VMM_STATE_FREE;
		out->run_size = hi - addr;
		vm_unlock(vs);
		return rcOk;
	}
	uint64_t page = (addr - vmr_base(r)) / PAGE;
	uint32_t i = vm_runs_find(&r->runs, page);
	const struct vm_run *run = &r->runs.v[i];
	uint64_t run_end = vmr_base(r) + vm_runs_end(&r->runs, i, vmr_pages(r)) * PAGE;
	struct residency_scan s = { .resident = pt_translate(&vs->pt, addr, NULL), .stop = run_end };
	pt_walk_range(&vs->pt, addr, run_end - addr, &scan, &s);

	out->region_base = vmr_base(r);
	out->region_size = vmr_end(r) - vmr_base(r);
	out->state = run->state == VM_COMMITTED ? VMM_STATE_COMMITTED
		     : run->state == VM_GUARD   ? VMM_STATE_GUARD
						: VMM_STATE_RESERVED;
	out->resident = s.resident;
	out->run_size = s.stop - addr;
	out->flags =
		(r->flags & (VMM_FLAG_CACHE_MASK | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD | VMM_FLAG_GROW_DOWN)) |
		VMM_FLAG_RESERVE | (run->state == VM_GUARD ? 0 : run->prot) |
		(run->state == VM_COMMITTED ? VMM_FLAG_COMMIT : 0) | (run->locked ? VMM_FLAG_LOCKED : 0);
	vm_unlock(vs);
	return rcOk;
}

struct usage_ctx {
	uint64_t *counters, max, n;
	bool first_used;
};

static int count_stretch(uint64_t start, uint64_t end, bool present, void *arg)
{
	struct usage_ctx *u = arg;
	if (u->n == 0)
		u->first_used = present;
	u->counters[u->n++] = (end - start) / PAGE;
	return u->n == u->max; /* full: stop */
}

Retcode vm_usage_map(struct vm_space *vs, uint64_t addr, uint64_t start, uint64_t *counters, uint64_t max,
		     bool *first_used, uint64_t *n)
{
	if (!is_aligned(addr, PAGE) || addr < vs->lo || addr >= vs->hi || max == 0)
		return rcInvalidArgument;
	vm_lock(vs);
	struct vm_region *r = vm_region_find_locked(vs, addr);
	Retcode rc = rcOk;
	uint64_t ubase = 0, pages = 0;
	if (!r) {
		rc = rcNotFound;
	} else {
		ubase = vmr_base(r) + ((r->flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0);
		pages = (vmr_end(r) - ((r->flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0) - ubase) / PAGE;
		if (addr != ubase || ubase >= vmr_end(r) || start > pages)
			rc = rcInvalidArgument; /* (a region left with only a guard page has no usable base) */
	}
	struct usage_ctx u = { .counters = counters, .max = max };
	if (rc == rcOk && start < pages)
		pt_scan_residency(&vs->pt, ubase + start * PAGE, (pages - start) * PAGE, count_stretch, &u);
	vm_unlock(vs);
	if (rc == rcOk) {
		*first_used = u.first_used;
		*n = u.n;
	}
	return rc;
}

/* ------------------------------------------------------------------ what a dump says of a region */

unsigned vm_region_summary_locked(struct vm_space *vs, const struct vm_region *r)
{
	vm_assert_held(vs);
	unsigned f =
		(r->flags & (VMM_FLAG_CACHE_MASK | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD | VMM_FLAG_GROW_DOWN)) |
		VMM_FLAG_RESERVE;

	for (uint32_t i = 0; i < r->runs.n; i++) {
		const struct vm_run *run = &r->runs.v[i];
		if (run->state != VM_GUARD)
			f |= run->prot;
		f |= (run->state == VM_COMMITTED ? VMM_FLAG_COMMIT : 0) | (run->locked ? VMM_FLAG_LOCKED : 0);
	}
	return f;
}
