// SPDX-License-Identifier: MIT
/* The memory API's semantics, page by page (see vm_model.h). */
#include "vm_model.h"

enum { F = VMM_STATE_FREE, R = VMM_STATE_RESERVED, C = VMM_STATE_COMMITTED, G = VMM_STATE_GUARD };

void vmm_init(struct vm_model *m, uint64_t lo, uint64_t npages, struct vmm_page *pages, struct vmm_region *regions,
	      unsigned max_regions)
{
	*m = (struct vm_model){
		.lo = lo,
		.npages = npages,
		.bounded = true,
		.limit = UINT64_MAX,
		.table_charge = 3,
		.window_shift = 21,
		.page = pages,
		.region = regions,
		.max_regions = max_regions,
		.rng = 1,
		.exec_touch = true,
	};
	for (uint64_t p = 0; p < npages; p++)
		pages[p] = (struct vmm_page){ .state = F, .region = -1 };
	for (unsigned i = 0; i < max_regions; i++)
		regions[i].live = false;
}

uint64_t vmm_rand(struct vm_model *m)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

uint64_t vmm_below(struct vm_model *m, uint64_t n) { return n ? vmm_rand(m) % n : 0; }

static bool prot_ok(unsigned p) { return p == 1 || p == 3 || p == 5 || p == 7; }

static bool allows(unsigned prot, enum vmm_access a)
{
	return a == VMM_WRITE  ? (prot & VMM_FLAG_WRITE)
	       : a == VMM_EXEC ? (prot & VMM_FLAG_EXECUTE)
			       : (prot & VMM_FLAG_READ);
}

/* Pages of one run: same region, state, protection (guards have none) and lock. */
static bool same_run(const struct vmm_page *a, const struct vmm_page *b)
{
	return a->region == b->region && a->state == b->state && (a->state == G || a->prot == b->prot) &&
	       a->locked == b->locked;
}

/* ------------------------------------------------------------------ commit charge */

/* What a committed page of a region with these flags costs: a write-back page one page of
 * commit; a page of another memory type two (its frame's entry in the direct map may need a
 * page table of its own: docs/vm.md, "Memory types"). */
static uint64_t page_cost(unsigned region_flags)
{
	unsigned c = region_flags & VMM_FLAG_CACHE_MASK;
	return c && c != VMM_FLAG_WRITE_BACK ? 2 : 1;
}

static uint64_t cost_of(const struct vm_model *m, uint64_t p) { return page_cost(m->region[m->page[p].region].flags); }

/* Distinct windows holding committed pages, as if [first, first + count) were committed too. */
static uint64_t windows_if(const struct vm_model *m, uint64_t first, uint64_t count)
{
	uint64_t n = 0, last = UINT64_MAX;
	for (uint64_t p = 0; p < m->npages; p++) {
		if (m->page[p].state != C && !(p >= first && p < first + count))
			continue;
		uint64_t w = vmm_va(m, p) >> m->window_shift;
		if (w != last) {
			n++;
			last = w;
		}
	}
	return n;
}

uint64_t vmm_table_charge(const struct vm_model *m) { return m->table_charge * windows_if(m, 0, 0); }

/* Whether `pages` more, with the windows of [first, first + count), fit under the limit. */
static bool fits(const struct vm_model *m, uint64_t pages, uint64_t first, uint64_t count)
{
	uint64_t total = m->charge + pages + m->table_charge * windows_if(m, first, count);
	return m->limit == UINT64_MAX || total <= m->limit;
}

/* ------------------------------------------------------------------ generators */

bool vmm_flags_valid(unsigned f)
{
	unsigned c = f & VMM_FLAG_CACHE_MASK;
	if ((f & ~(unsigned)VMM_FLAG_ALLOCATE_MASK) || !(f & VMM_FLAG_RESERVE) || !prot_ok(f & 7) || (c & (c - 1)))
		return false;
	if ((f & VMM_FLAG_LOCKED) && !(f & VMM_FLAG_COMMIT))
		return false;
	if ((f & VMM_FLAG_GROW_DOWN) && (f & (VMM_FLAG_COMMIT | VMM_FLAG_LOCKED)))
		return false;
	return true;
}

unsigned vmm_random_flags(struct vm_model *m)
{
	static const unsigned prots[] = { 1, 3, 5, 7, 1, 3, 0, 2, 4, 6 };
	unsigned f = VMM_FLAG_RESERVE | prots[vmm_below(m, sizeof(prots) / sizeof(prots[0]))];
	if (vmm_below(m, 2))
		f |= VMM_FLAG_COMMIT;
	if (vmm_below(m, 4) == 0)
		f |= VMM_FLAG_LOCKED;
	if (vmm_below(m, 3) == 0)
		f |= VMM_FLAG_LOW_GUARD;
	if (vmm_below(m, 3) == 0)
		f |= VMM_FLAG_HIGH_GUARD;
	if (vmm_below(m, 5) == 0)
		f |= VMM_FLAG_GROW_DOWN;
	if (vmm_below(m, 6) == 0)
		f |= VMM_FLAG_WRITE_COMBINE;
	if (vmm_below(m, 20) == 0)
		f |= VMM_FLAG_CACHE_DISABLE;
	if (vmm_below(m, 25) == 0)
		f &= ~(unsigned)VMM_FLAG_RESERVE;
	if (vmm_below(m, 40) == 0)
		f |= 0x80000;
	return f;
}

void vmm_random_range(struct vm_model *m, uint64_t *addr, uint64_t *size)
{
	uint64_t p = vmm_below(m, m->npages), n = 1 + vmm_below(m, vmm_below(m, 4) ? 16 : 200);
	/* Mostly inside an existing region. */
	if (vmm_below(m, 4) && m->page[p].region < 0) {
		for (int i = 0; i < 8 && m->page[p].region < 0; i++)
			p = vmm_below(m, m->npages);
	}
	if (vmm_below(m, 2) && m->page[p].region >= 0)
		n = 1 + vmm_below(m, m->region[m->page[p].region].end - p);
	if (!m->bounded && p + n > m->npages) /* the model cannot see past the window */
		n = m->npages - p;
	*addr = vmm_va(m, p);
	*size = n * VMM_PAGE;
	switch (vmm_below(m, 30)) {
	case 0:
		*addr += 8;
		break; /* unaligned address */
	case 1:
		*size += 100;
		break; /* unaligned size */
	case 2:
		*size = 0;
		break; /* empty */
	case 3:
		*size = UINT64_MAX & ~(VMM_PAGE - 1);
		break; /* wraps */
	case 4:
		if (m->bounded)
			*addr = vmm_hi(m);
		break; /* past the space */
	default:
		break;
	}
}

const char *const vmm_op_names[VMM_NR_OPS] = { "allocate", "commit", "decommit", "protect", "unmap", "fault", "query" };

void vmm_random_call(struct vm_model *m, struct vmm_call *c)
{
	static const unsigned prots[] = { 1, 3, 5, 7, 0, 2 };
	unsigned op = (unsigned)vmm_below(m, 100);

	*c = (struct vmm_call){ .op = VMM_OP_QUERY };
	if (op < 25) {
		uint64_t n = 1 + vmm_below(m, vmm_below(m, 3) ? 8 : 120);
		c->op = VMM_OP_ALLOCATE;
		c->flags = vmm_random_flags(m);
		if (m->bounded) {
			c->addr = vmm_below(m, 2) ? 0 : vmm_va(m, vmm_below(m, m->npages));
		} else {
			/* Fixed, with room for both guards inside the window. */
			if (n > m->npages - 2)
				n = m->npages - 2;
			c->addr = vmm_va(m, 1 + vmm_below(m, m->npages - n - 1));
		}
		if (c->addr && vmm_below(m, 30) == 0)
			c->addr += 4;
		c->size = n * VMM_PAGE + (vmm_below(m, 40) == 0 ? 1 : 0);
		return;
	}
	vmm_random_range(m, &c->addr, &c->size);
	if (op < 40) {
		c->op = VMM_OP_COMMIT;
		c->flags = vmm_below(m, 4) ? 0 : vmm_below(m, 8) ? VMM_FLAG_LOCKED : VMM_FLAG_READ;
	} else if (op < 50) {
		c->op = VMM_OP_DECOMMIT;
	} else if (op < 62) {
		c->op = VMM_OP_PROTECT;
		c->flags = prots[vmm_below(m, sizeof(prots) / sizeof(prots[0]))];
	} else if (op < 75) {
		c->op = VMM_OP_UNMAP;
	} else {
		/* Touches go mostly to regions (the range's start), queries anywhere. */
		if (op >= 90 || c->addr < m->lo || c->addr >= vmm_hi(m))
			c->addr = vmm_va(m, vmm_below(m, m->npages));
		c->addr = (c->addr & ~(VMM_PAGE - 1)) + vmm_below(m, VMM_PAGE);
		c->size = 0;
		if (op < 90) {
			c->op = VMM_OP_FAULT;
			c->access = (enum vmm_access)vmm_below(m, m->exec_touch ? 3 : 2);
		}
	}
}

/* ------------------------------------------------------------------ the calls */

static int new_region(struct vm_model *m, uint64_t base, uint64_t end, unsigned flags)
{
	for (unsigned i = 0; i < m->max_regions; i++)
		if (!m->region[i].live) {
			m->region[i] = (struct vmm_region){ base, end, flags, true };
			for (uint64_t p = base; p < end; p++)
				m->page[p].region = (int32_t)i;
			return (int)i;
		}
	return -1;
}

/* Lowest page where n pages are free (placement is first-fit from the bottom without ASLR). */
static int64_t first_fit(const struct vm_model *m, uint64_t n)
{
	for (uint64_t p = 0; p + n <= m->npages; p++) {
		uint64_t k = 0;
		while (k < n && m->page[p + k].region < 0)
			k++;
		if (k == n)
			return (int64_t)p;
		p += k;
	}
	return -1;
}

Retcode vmm_allocate(struct vm_model *m, uint64_t addr, uint64_t size, unsigned f, uint64_t got)
{
	uint64_t lowg = (f & VMM_FLAG_LOW_GUARD) ? 1 : 0, highg = (f & VMM_FLAG_HIGH_GUARD) ? 1 : 0;
	uint64_t n = size / VMM_PAGE, total = n + lowg + highg;
	int64_t base;

	if (!vmm_flags_valid(f) || size == 0 || size % VMM_PAGE || addr % VMM_PAGE)
		return rcInvalidArgument;
	if (addr) {
		if (total > m->npages || addr < m->lo + lowg * VMM_PAGE ||
		    (addr - m->lo) / VMM_PAGE - lowg + total > m->npages)
			return rcInvalidArgument;
		base = (int64_t)((addr - m->lo) / VMM_PAGE - lowg);
		for (uint64_t p = 0; p < total; p++)
			if (m->page[base + p].region >= 0)
				return rcAlreadyExists;
	} else {
		if (total > m->npages)
			return rcInvalidArgument;
		base = first_fit(m, total);
		if (base < 0)
			return rcOutOfMemory;
	}
	uint64_t committed = (f & VMM_FLAG_COMMIT) ? n : (f & VMM_FLAG_GROW_DOWN) ? 1 : 0;
	uint64_t charge = committed * page_cost(f);
	uint64_t c_first = (uint64_t)base + lowg + ((f & VMM_FLAG_COMMIT) ? 0 : n - 1);
	if (charge && !fits(m, charge, c_first, committed))
		return rcOutOfMemory;
	if (got != vmm_va(m, (uint64_t)base + lowg))
		return -1; /* placed elsewhere: the caller reports the mismatch */
	if (new_region(m, (uint64_t)base, (uint64_t)base + total, f) < 0)
		return -1; /* the model is full */
	for (uint64_t p = 0; p < total; p++) {
		struct vmm_page *pg = &m->page[base + p];
		bool guard = (lowg && p == 0) || (highg && p == total - 1);
		pg->prot = (uint8_t)(f & 7);
		pg->locked = pg->resident = 0;
		pg->value = 0;
		if (guard) {
			pg->state = G;
			pg->prot = 0;
		} else if (f & VMM_FLAG_COMMIT) {
			pg->state = C;
			pg->locked = (f & VMM_FLAG_LOCKED) ? 1 : 0;
			pg->resident = pg->locked;
		} else {
			pg->state = R;
		}
	}
	if (f & VMM_FLAG_GROW_DOWN) {
		struct vmm_page *top = &m->page[base + lowg + n - 1];
		top->state = C;
		top->resident = 1;
	}
	m->charge += charge;
	return rcOk;
}

/* Checks common to commit/decommit/protect/unmap; the region in *rid, the pages in
 * [*first, *first + *count). */
static Retcode check_range(const struct vm_model *m, uint64_t addr, uint64_t size, int *rid, uint64_t *first,
			   uint64_t *count)
{
	if (addr % VMM_PAGE || size % VMM_PAGE || size == 0 || addr + size < addr)
		return rcInvalidArgument;
	if (addr < m->lo || addr >= vmm_hi(m) || (m->bounded && addr + size > vmm_hi(m)))
		return rcInvalidArgument; /* outside the space (or past the window: not generated) */
	*first = (addr - m->lo) / VMM_PAGE;
	*count = size / VMM_PAGE;
	*rid = m->page[*first].region;
	if (*rid < 0)
		return rcNotFound;
	if (*first + *count > m->region[*rid].end)
		return rcInvalidArgument;
	return rcOk;
}

static bool has_guard(const struct vm_model *m, uint64_t first, uint64_t count)
{
	for (uint64_t p = first; p < first + count; p++)
		if (m->page[p].state == G)
			return true;
	return false;
}

/* A range check plus "no guard page in it". */
static Retcode check_usable_range(const struct vm_model *m, uint64_t addr, uint64_t size, uint64_t *first,
				  uint64_t *count)
{
	int rid;
	Retcode rc = check_range(m, addr, size, &rid, first, count);
	if (rc == rcOk && has_guard(m, *first, *count))
		rc = rcInvalidArgument;
	return rc;
}

Retcode vmm_commit(struct vm_model *m, uint64_t addr, uint64_t size, unsigned f)
{
	uint64_t first, count;

	if (f & ~(unsigned)VMM_FLAG_LOCKED)
		return rcInvalidArgument;
	Retcode rc = check_usable_range(m, addr, size, &first, &count);
	if (rc != rcOk)
		return rc;
	uint64_t charge = 0;
	for (uint64_t p = first; p < first + count; p++)
		charge += m->page[p].state == R ? cost_of(m, p) : 0;
	if (!fits(m, charge, first, count))
		return rcOutOfMemory;
	for (uint64_t p = first; p < first + count; p++) {
		struct vmm_page *pg = &m->page[p];
		if (pg->state == R) {
			pg->state = C;
			pg->locked = 0;
		}
		if (f & VMM_FLAG_LOCKED) {
			pg->locked = 1;
			pg->resident = 1;
		}
	}
	m->charge += charge;
	return rcOk;
}

Retcode vmm_decommit(struct vm_model *m, uint64_t addr, uint64_t size)
{
	uint64_t first, count;
	Retcode rc = check_usable_range(m, addr, size, &first, &count);

	if (rc != rcOk)
		return rc;
	for (uint64_t p = first; p < first + count; p++) {
		struct vmm_page *pg = &m->page[p];
		if (pg->state == C) {
			m->charge -= cost_of(m, p);
			pg->state = R;
		}
		pg->locked = pg->resident = 0;
		pg->value = 0;
	}
	return rcOk;
}

Retcode vmm_protect(struct vm_model *m, uint64_t addr, uint64_t size, unsigned prot)
{
	uint64_t first, count;

	if (!prot_ok(prot))
		return rcInvalidArgument;
	Retcode rc = check_usable_range(m, addr, size, &first, &count);
	if (rc != rcOk)
		return rc;
	for (uint64_t p = first; p < first + count; p++)
		m->page[p].prot = (uint8_t)prot;
	return rcOk;
}

Retcode vmm_unmap(struct vm_model *m, uint64_t addr, uint64_t size)
{
	uint64_t first, count;
	int rid;
	Retcode rc = check_range(m, addr, size, &rid, &first, &count);

	if (rc != rcOk)
		return rc;
	struct vmm_region *mr = &m->region[rid];
	uint64_t lg = m->page[mr->base].state == G, hg = m->page[mr->end - 1].state == G && mr->end - mr->base > 1;
	/* The usable range (or all of it) frees the region, guards included. */
	if ((first == mr->base && first + count == mr->end) ||
	    (first == mr->base + lg && first + count == mr->end - hg)) {
		first = mr->base;
		count = mr->end - mr->base;
	}
	for (uint64_t p = first; p < first + count; p++) {
		m->charge -= m->page[p].state == C ? cost_of(m, p) : 0;
		m->page[p] = (struct vmm_page){ .state = F, .region = -1 };
	}
	/* What is left on either side becomes a region of its own. */
	uint64_t lo = mr->base, hi = mr->end;
	unsigned flags = mr->flags;
	mr->live = false;
	if (first > lo && new_region(m, lo, first, flags) < 0)
		return -1;
	if (first + count < hi && new_region(m, first + count, hi, flags) < 0)
		return -1;
	return rcOk;
}

/* Fault-around: up to m->faultaround more pages of p's run within that distance of p,
 * those after it first. */
static void fault_around(struct vm_model *m, uint64_t p)
{
	uint64_t left = m->faultaround, rs = p, re = p + 1;

	while (rs > 0 && same_run(&m->page[rs - 1], &m->page[p]))
		rs--;
	while (re < m->npages && same_run(&m->page[re], &m->page[p]))
		re++;
	uint64_t lo = p > left ? p - left : 0, hi = p + 1 + left;
	if (lo < rs)
		lo = rs;
	if (hi > re)
		hi = re;
	for (uint64_t q = p + 1; left && q < hi; q++)
		if (!m->page[q].resident) {
			m->page[q].resident = 1;
			left--;
		}
	for (uint64_t q = p; left && q-- > lo;)
		if (!m->page[q].resident) {
			m->page[q].resident = 1;
			left--;
		}
}

/* The outcome of a touch of page p; with `apply`, its effects too. */
static enum vmm_fault touch(struct vm_model *m, uint64_t p, enum vmm_access a, bool apply)
{
	struct vmm_page *pg = &m->page[p];

	if (pg->region < 0)
		return VMM_ACCESS_VIOLATION;
	if (pg->state == G)
		return VMM_GUARD_VIOLATION;
	if (pg->state == C && allows(pg->prot, a)) {
		if (apply && !pg->resident) {
			pg->resident = 1;
			fault_around(m, p);
		}
		return VMM_RESOLVED;
	}
	if (pg->state != R || !(m->region[pg->region].flags & VMM_FLAG_GROW_DOWN) || !allows(pg->prot, a))
		return VMM_ACCESS_VIOLATION;
	/* Grow-down: the run of p ends where committed pages of the region follow: grow to them. */
	uint64_t q = p;
	while (q + 1 < m->npages && same_run(&m->page[q + 1], pg))
		q++;
	if (q + 1 >= m->npages || m->page[q + 1].region != pg->region || m->page[q + 1].state != C)
		return VMM_ACCESS_VIOLATION;
	uint64_t n = q + 1 - p;
	if (!fits(m, n * cost_of(m, p), p, n))
		return VMM_STACK_OVERFLOW;
	if (apply) {
		for (uint64_t k = p; k <= q; k++)
			m->page[k].state = C;
		pg->resident = 1;
		m->charge += n * cost_of(m, p);
	}
	return VMM_GREW;
}

enum vmm_fault vmm_fault(struct vm_model *m, uint64_t p, enum vmm_access a) { return touch(m, p, a, true); }

enum vmm_fault vmm_fault_outcome(const struct vm_model *m, uint64_t p, enum vmm_access a)
{
	return touch((struct vm_model *)m, p, a, false); /* does not write without `apply` */
}

void vmm_query(const struct vm_model *m, uint64_t q, struct vmm_info *out)
{
	const struct vmm_page *pg = &m->page[q];
	uint64_t end = q + 1;

	if (pg->region < 0) {
		uint64_t start = q;
		while (end < m->npages && m->page[end].region < 0)
			end++;
		while (start > 0 && m->page[start - 1].region < 0)
			start--;
		*out = (struct vmm_info){
			.region_base = vmm_va(m, start),
			.region_size = (end - start) * VMM_PAGE,
			.run_size = (end - q) * VMM_PAGE,
			.state = VMM_STATE_FREE,
		};
		return;
	}
	while (end < m->npages && same_run(&m->page[end], pg) && m->page[end].resident == pg->resident)
		end++;
	const struct vmm_region *mr = &m->region[pg->region];
	unsigned prot = pg->state == G ? 0 : pg->prot;
	unsigned flags = VMM_FLAG_RESERVE | prot | (pg->state == C ? VMM_FLAG_COMMIT : 0) |
			 (pg->locked ? VMM_FLAG_LOCKED : 0) | (mr->flags & (VMM_FLAG_CACHE_MASK | VMM_FLAG_GROW_DOWN));
	/* Guard flags follow the pages: the first is a guard, the last is one (of two or more). */
	if (m->page[mr->base].state == G)
		flags |= VMM_FLAG_LOW_GUARD;
	if (mr->end - mr->base > 1 && m->page[mr->end - 1].state == G)
		flags |= VMM_FLAG_HIGH_GUARD;
	*out = (struct vmm_info){
		.region_base = vmm_va(m, mr->base),
		.region_size = (mr->end - mr->base) * VMM_PAGE,
		.run_size = (end - q) * VMM_PAGE,
		.state = pg->state,
		.resident = pg->resident != 0,
		.locked = pg->locked != 0,
		.prot = prot,
		.flags = flags,
	};
}

void vmm_region_usable(const struct vm_model *m, int rid, uint64_t *first, uint64_t *pages)
{
	const struct vmm_region *r = &m->region[rid];
	uint64_t lo = r->base, hi = r->end;

	if (m->page[lo].state == G)
		lo++;
	if (hi > lo && m->page[hi - 1].state == G)
		hi--;
	*first = lo;
	*pages = hi - lo;
}

uint64_t vmm_usage_map(const struct vm_model *m, int rid, uint64_t start, uint64_t *counters, uint64_t max,
		       bool *first_used)
{
	uint64_t first, pages, n = 0;

	vmm_region_usable(m, rid, &first, &pages);
	for (uint64_t p = first + start; p < first + pages && n < max;) {
		bool used = m->page[p].resident;
		uint64_t q = p + 1;
		while (q < first + pages && (m->page[q].resident != 0) == used)
			q++;
		if (n == 0)
			*first_used = used;
		counters[n++] = q - p;
		p = q;
	}
	return n;
}
