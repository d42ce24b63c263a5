// SPDX-License-Identifier: MIT
/*
 * The address-space core (region tree, run sets, commit charge, page tables in simulated
 * memory) against a per-page model, under ASan and UBSan. A seeded random sequence of
 * allocate (anywhere / fixed, every flag), commit, decommit, protect, unmap (whole and
 * split), fault and query calls, valid and invalid; after every step the regions, every
 * page's state, protection and residency, and the commit charge must match the model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <knmm/ktest.h>
#include <mm/vm.h>
#include "shim/pmm_sim.h"

#define W     2048            /* pages in the window the model covers */
#define LO    0x400000ull     /* the space is [LO, LO + W pages) */
#define HI    (LO + W * PAGE_SIZE)
#define LIMIT 700             /* commit limit, pages */

enum { F = 0, R = VM_RESERVED, C = VM_COMMITTED, G = VM_GUARD };

struct mpage {
	uint8_t state, prot, locked, resident;
	int region; /* index into model regions, -1 if free */
};

struct mregion {
	uint64_t base, end; /* pages, window-relative */
	unsigned flags;
	bool live;
};

static struct model {
	struct mpage page[W];
	struct mregion region[4096];
	int nregions;
	uint64_t charge;
} M;

static uint64_t rng;
/* How often each kind of call succeeded and failed: the test insists on both. */
enum { OP_ALLOC, OP_COMMIT, OP_DECOMMIT, OP_PROTECT, OP_UNMAP, OP_FAULT, OP_QUERY, NR_OPS };
static const char *const op_names[NR_OPS] = { "allocate", "commit", "decommit", "protect", "unmap", "fault", "query" };
static unsigned op_ok[NR_OPS], op_fail[NR_OPS];
static void tally(int op, bool ok) { ok ? op_ok[op]++ : op_fail[op]++; }
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static uint64_t va(uint64_t page) { return LO + page * PAGE_SIZE; }

static bool prot_ok(unsigned p)
{
	return p == 1 || p == 3 || p == 5 || p == 7;
}

static bool allows(unsigned prot, enum vm_access a)
{
	return a == VM_ACCESS_WRITE ? (prot & 2) : a == VM_ACCESS_EXEC ? (prot & 4) : (prot & 1);
}

static bool same_run(const struct mpage *a, const struct mpage *b)
{
	return a->region == b->region && a->state == b->state && (a->state == G || a->prot == b->prot) &&
	       a->locked == b->locked;
}

/* ------------------------------------------------------------------ expected results */

/* Distinct 2 MiB windows holding committed pages, as if pages [first, first + count) were
 * committed too (count 0: as they are). The space charges 3 pages per window for tables. */
static uint64_t windows_if(uint64_t first, uint64_t count)
{
	uint64_t n = 0, last = UINT64_MAX;
	for (uint64_t p = 0; p < W; p++) {
		if (M.page[p].state != C && !(p >= first && p < first + count))
			continue;
		uint64_t w = va(p) >> VM_TABLE_WINDOW_SHIFT;
		if (w != last) {
			n++;
			last = w;
		}
	}
	return n;
}

/* Whether a charge of `pages` more with the windows of [first, first + count) fits. */
static bool fits(uint64_t pages, uint64_t first, uint64_t count)
{
	return M.charge + pages + VM_TABLE_CHARGE_PER_WINDOW * windows_if(first, count) <= LIMIT;
}

static unsigned random_flags(void)
{
	static const unsigned prots[] = { 1, 3, 5, 7, 1, 3, 0, 2, 4, 6 };
	unsigned f = VMM_FLAG_RESERVE | prots[below(ARRAY_SIZE(prots))];
	if (below(2))
		f |= VMM_FLAG_COMMIT;
	if (below(4) == 0)
		f |= VMM_FLAG_LOCKED;
	if (below(3) == 0)
		f |= VMM_FLAG_LOW_GUARD;
	if (below(3) == 0)
		f |= VMM_FLAG_HIGH_GUARD;
	if (below(5) == 0)
		f |= VMM_FLAG_GROW_DOWN;
	if (below(6) == 0)
		f |= VMM_FLAG_WRITE_COMBINE;
	if (below(20) == 0)
		f |= VMM_FLAG_CACHE_DISABLE;
	if (below(25) == 0)
		f &= ~(unsigned)VMM_FLAG_RESERVE;
	if (below(40) == 0)
		f |= 0x80000;
	return f;
}

static bool flags_valid(unsigned f)
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

/* Lowest page >= 0 where n pages are free (the space places first-fit from LO without ASLR). */
static int64_t first_fit(uint64_t n)
{
	for (uint64_t p = 0; p + n <= W; p++) {
		uint64_t k = 0;
		while (k < n && M.page[p + k].region < 0)
			k++;
		if (k == n)
			return (int64_t)p;
		p += k;
	}
	return -1;
}

static Retcode model_allocate(uint64_t addr, uint64_t size, unsigned f, uint64_t got)
{
	uint64_t lowg = (f & VMM_FLAG_LOW_GUARD) ? 1 : 0, highg = (f & VMM_FLAG_HIGH_GUARD) ? 1 : 0;
	uint64_t n = size / PAGE_SIZE, total = n + lowg + highg;
	int64_t base;

	if (!flags_valid(f) || size == 0 || size % PAGE_SIZE || addr % PAGE_SIZE)
		return rcInvalidArgument;
	if (addr) {
		if (addr < LO + lowg * PAGE_SIZE || addr - lowg * PAGE_SIZE + total * PAGE_SIZE > HI)
			return rcInvalidArgument;
		base = (int64_t)((addr - LO) / PAGE_SIZE - lowg);
		for (uint64_t p = 0; p < total; p++)
			if (M.page[base + p].region >= 0)
				return rcAlreadyExists;
	} else {
		if (total > W)
			return rcInvalidArgument;
		base = first_fit(total);
		if (base < 0)
			return rcOutOfMemory;
	}
	uint64_t charge = (f & VMM_FLAG_COMMIT) ? n : (f & VMM_FLAG_GROW_DOWN) ? 1 : 0;
	uint64_t c_first = (uint64_t)base + lowg + ((f & VMM_FLAG_COMMIT) ? 0 : n - 1);
	if (charge && !fits(charge, c_first, charge))
		return rcOutOfMemory;
	if (got != va((uint64_t)base + lowg))
		return -1; /* the call succeeded somewhere else: a mismatch the caller reports */
	int id = M.nregions++;
	M.region[id] = (struct mregion){ (uint64_t)base, (uint64_t)base + total, f, true };
	for (uint64_t p = 0; p < total; p++) {
		struct mpage *pg = &M.page[base + p];
		bool guard = (lowg && p == 0) || (highg && p == total - 1);
		*pg = (struct mpage){ .region = id, .prot = (uint8_t)(f & 7) };
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
		struct mpage *top = &M.page[base + lowg + n - 1];
		top->state = C;
		top->resident = 1;
	}
	M.charge += charge;
	return rcOk;
}

/* Range checks common to commit/decommit/protect/unmap; the region index in *rid. */
static Retcode model_range(uint64_t addr, uint64_t size, int *rid, uint64_t *first, uint64_t *count)
{
	if (addr % PAGE_SIZE || size % PAGE_SIZE || size == 0 || addr + size < addr || addr < LO || addr + size > HI)
		return rcInvalidArgument;
	*first = (addr - LO) / PAGE_SIZE;
	*count = size / PAGE_SIZE;
	*rid = M.page[*first].region;
	if (*rid < 0)
		return rcNotFound;
	if (*first + *count > M.region[*rid].end)
		return rcInvalidArgument;
	return rcOk;
}

static bool has_guard(uint64_t first, uint64_t count)
{
	for (uint64_t p = first; p < first + count; p++)
		if (M.page[p].state == G)
			return true;
	return false;
}

/* ------------------------------------------------------------------ comparison */

static int mark_leaf(const struct pt_leaf *leaf, void *arg)
{
	uint8_t *mapped = arg;
	for (uint64_t off = 0; off < leaf->size; off += PAGE_SIZE)
		mapped[(leaf->va + off - LO) / PAGE_SIZE] = 1;
	return 0;
}

static bool compare(struct vm_space *vs, char *why, size_t size)
{
	if (!vm_space_check(vs, why, size))
		return false;
	uint64_t want_charge = M.charge + VM_TABLE_CHARGE_PER_WINDOW * windows_if(0, 0);
	if (vm_commit_charge() != want_charge) {
		snprintf(why, size, "commit charge %llu, model %llu", (unsigned long long)vm_commit_charge(),
			 (unsigned long long)want_charge);
		return false;
	}
	/* Regions, in order. */
	struct vm_region *r = vm_first_region(vs);
	for (uint64_t p = 0; p < W;) {
		if (M.page[p].region < 0) {
			p++;
			continue;
		}
		const struct mregion *mr = &M.region[M.page[p].region];
		if (!r || vmr_base(r) != va(mr->base) || vmr_end(r) != va(mr->end)) {
			snprintf(why, size, "region at page %llu: model [%llu, %llu), space has %#llx", (unsigned long long)p,
				 (unsigned long long)mr->base, (unsigned long long)mr->end,
				 r ? (unsigned long long)vmr_base(r) : 0ull);
			return false;
		}
		p = mr->end;
		r = vm_next_region(vs, r);
	}
	if (r) {
		snprintf(why, size, "extra region at %#llx", (unsigned long long)vmr_base(r));
		return false;
	}
	/* Residency of every page, from one walk of the tables. */
	static uint8_t mapped[W];
	static const struct pt_walk_ops ops = { .leaf = mark_leaf };
	memset(mapped, 0, sizeof(mapped));
	pt_walk_range(&vs->pt, LO, HI - LO, &ops, mapped);
	for (uint64_t p = 0; p < W; p++)
		if (mapped[p] != (M.page[p].resident != 0)) {
			snprintf(why, size, "page %llu: resident %d, model %d", (unsigned long long)p, mapped[p],
				 M.page[p].resident);
			return false;
		}
	/* State, protection and lock of every page, run by run. */
	for (r = vm_first_region(vs); r; r = vm_next_region(vs, r)) {
		uint64_t base = (vmr_base(r) - LO) / PAGE_SIZE, n = vmr_pages(r);
		for (uint32_t i = 0; i < r->runs.n; i++) {
			const struct vm_run *run = &r->runs.v[i];
			for (uint64_t k = run->start; k < vm_runs_end(&r->runs, i, n); k++) {
				const struct mpage *m = &M.page[base + k];
				if (run->state != m->state || (m->state != G && run->prot != m->prot) ||
				    run->locked != m->locked) {
					snprintf(why, size, "page %llu: state %u prot %u locked %u, model %u %u %u",
						 (unsigned long long)(base + k), run->state, run->prot, run->locked,
						 m->state, m->prot, m->locked);
					return false;
				}
			}
		}
	}
	return true;
}

/* ------------------------------------------------------------------ one step */

static void random_range(uint64_t *addr, uint64_t *size)
{
	uint64_t p = below(W), n = 1 + below(below(4) ? 16 : 200);
	/* Mostly inside an existing region. */
	if (below(4) && M.page[p].region < 0) {
		for (int i = 0; i < 8 && M.page[p].region < 0; i++)
			p = below(W);
	}
	if (below(2) && M.page[p].region >= 0) {
		const struct mregion *mr = &M.region[M.page[p].region];
		n = 1 + below(mr->end - p);
	}
	*addr = va(p);
	*size = n * PAGE_SIZE;
	switch (below(30)) {
	case 0: *addr += 8; break;                       /* unaligned address */
	case 1: *size += 100; break;                     /* unaligned size */
	case 2: *size = 0; break;                        /* empty */
	case 3: *size = UINT64_MAX & ~PAGE_MASK; break;  /* wraps */
	case 4: *addr = HI; break;                       /* past the space */
	default: break;
	}
}

static bool step(struct vm_space *vs, char *why, size_t size)
{
	unsigned op = (unsigned)below(100);
	uint64_t addr, len, first, count;
	int rid;
	Retcode got, want;

	if (op < 25) { /* allocate */
		unsigned f = random_flags();
		uint64_t n = 1 + below(below(3) ? 8 : 120), out = 0;
		addr = below(2) ? 0 : va(below(W)) + (below(30) == 0 ? 4 : 0);
		len = n * PAGE_SIZE + (below(40) == 0 ? 1 : 0);
		got = vm_allocate(vs, addr, len, f, &out);
		want = model_allocate(addr, len, f, got == rcOk ? out : 0);
		tally(OP_ALLOC, got == rcOk);
		if (got != want) {
			snprintf(why, size, "allocate(%#llx, %llu pages, %#x) = %d (at %#llx), model %d",
				 (unsigned long long)addr, (unsigned long long)n, f, got, (unsigned long long)out, want);
			return false;
		}
		return true;
	}
	random_range(&addr, &len);
	if (op < 40) { /* commit */
		unsigned f = below(4) ? 0 : below(8) ? VMM_FLAG_LOCKED : VMM_FLAG_READ;
		got = vm_commit(vs, addr, len, f);
		tally(OP_COMMIT, got == rcOk);
		want = f & ~(unsigned)VMM_FLAG_LOCKED ? rcInvalidArgument : model_range(addr, len, &rid, &first, &count);
		if (want == rcOk && has_guard(first, count))
			want = rcInvalidArgument;
		uint64_t charge = 0;
		if (want == rcOk) {
			for (uint64_t p = first; p < first + count; p++)
				charge += M.page[p].state == R;
			if (!fits(charge, first, count))
				want = rcOutOfMemory;
		}
		if (want == rcOk) {
			for (uint64_t p = first; p < first + count; p++) {
				struct mpage *m = &M.page[p];
				if (m->state == R) {
					m->state = C;
					m->locked = 0;
				}
				if (f & VMM_FLAG_LOCKED) {
					m->locked = 1;
					m->resident = 1;
				}
			}
			M.charge += charge;
		}
	} else if (op < 50) { /* decommit */
		got = vm_decommit(vs, addr, len);
		tally(OP_DECOMMIT, got == rcOk);
		want = model_range(addr, len, &rid, &first, &count);
		if (want == rcOk && has_guard(first, count))
			want = rcInvalidArgument;
		if (want == rcOk)
			for (uint64_t p = first; p < first + count; p++) {
				struct mpage *m = &M.page[p];
				if (m->state == C) {
					M.charge--;
					m->state = R;
				}
				m->locked = 0;
				m->resident = 0;
			}
	} else if (op < 62) { /* protect */
		static const unsigned prots[] = { 1, 3, 5, 7, 0, 2 };
		unsigned prot = prots[below(ARRAY_SIZE(prots))];
		got = vm_protect(vs, addr, len, prot);
		tally(OP_PROTECT, got == rcOk);
		want = !prot_ok(prot) ? rcInvalidArgument : model_range(addr, len, &rid, &first, &count);
		if (want == rcOk && has_guard(first, count))
			want = rcInvalidArgument;
		if (want == rcOk)
			for (uint64_t p = first; p < first + count; p++)
				M.page[p].prot = (uint8_t)prot;
	} else if (op < 75) { /* unmap */
		got = vm_unmap(vs, addr, len);
		tally(OP_UNMAP, got == rcOk);
		want = model_range(addr, len, &rid, &first, &count);
		if (want == rcOk) {
			struct mregion *mr = &M.region[rid];
			uint64_t lg = M.page[mr->base].state == G, hg = M.page[mr->end - 1].state == G && mr->end - mr->base > 1;
			bool whole = (first == mr->base && first + count == mr->end) ||
				     (first == mr->base + lg && first + count == mr->end - hg);
			if (whole) {
				first = mr->base;
				count = mr->end - mr->base;
			}
			for (uint64_t p = first; p < first + count; p++) {
				M.charge -= M.page[p].state == C;
				M.page[p] = (struct mpage){ .region = -1 };
			}
			/* The remains become regions of their own. */
			uint64_t lo = mr->base, hi = mr->end;
			mr->live = false;
			if (first > lo) {
				int id = M.nregions++;
				M.region[id] = (struct mregion){ lo, first, mr->flags, true };
				for (uint64_t p = lo; p < first; p++)
					M.page[p].region = id;
			}
			if (first + count < hi) {
				int id = M.nregions++;
				M.region[id] = (struct mregion){ first + count, hi, mr->flags, true };
				for (uint64_t p = first + count; p < hi; p++)
					M.page[p].region = id;
			}
		}
	} else if (op < 90) { /* fault */
		static const enum vm_access acc[] = { VM_ACCESS_READ, VM_ACCESS_WRITE, VM_ACCESS_EXEC };
		enum vm_access a = acc[below(3)];
		uint64_t p = (addr - LO) / PAGE_SIZE;
		if (addr < LO || addr >= HI)
			return true;
		enum vm_fault_result fr = vm_fault(vs, addr, a), wantf = VM_FAULT_ACCESS;
		tally(OP_FAULT, fr == VM_FAULT_RESOLVED || fr == VM_FAULT_GREW);
		struct mpage *m = &M.page[p];
		if (m->region >= 0 && m->state == G) {
			wantf = VM_FAULT_GUARD;
		} else if (m->region >= 0 && m->state == C && allows(m->prot, a)) {
			wantf = VM_FAULT_RESOLVED;
			m->resident = 1;
		} else if (m->region >= 0 && m->state == R && (M.region[m->region].flags & VMM_FLAG_GROW_DOWN) &&
			   allows(m->prot, a)) {
			/* The end of p's run (same state, prot, lock); grow if committed pages follow. */
			uint64_t q = p;
			while (q + 1 < W && same_run(&M.page[q + 1], m))
				q++;
			if (q + 1 < W && M.page[q + 1].region == m->region && M.page[q + 1].state == C) {
				uint64_t n = q + 1 - p;
				if (!fits(n, p, n)) {
					wantf = VM_FAULT_STACK_OVERFLOW;
				} else {
					wantf = VM_FAULT_GREW;
					for (uint64_t k = p; k <= q; k++)
						M.page[k].state = C;
					m->resident = 1;
					M.charge += n;
				}
			}
		}
		if (fr != wantf) {
			snprintf(why, size, "fault(page %llu, access %d) = %d, model %d", (unsigned long long)p, a, fr, wantf);
			return false;
		}
		return true;
	} else { /* query */
		struct vm_info info;
		uint64_t q = below(W);
		got = vm_query(vs, va(q) + below(PAGE_SIZE), &info);
		tally(OP_QUERY, true);
		if (got != rcOk) {
			snprintf(why, size, "query failed: %d", got);
			return false;
		}
		const struct mpage *m = &M.page[q];
		uint64_t end = q + 1;
		if (m->region < 0) {
			while (end < W && M.page[end].region < 0)
				end++;
			uint64_t start = q;
			while (start > 0 && M.page[start - 1].region < 0)
				start--;
			if (info.state != VMM_STATE_FREE || info.region_base != va(start) || info.run_size != (end - q) * PAGE_SIZE ||
			    info.region_size != (end - start) * PAGE_SIZE) {
				snprintf(why, size, "query free page %llu: state %d base %#llx size %#llx run %#llx",
					 (unsigned long long)q, info.state, (unsigned long long)info.region_base,
					 (unsigned long long)info.region_size, (unsigned long long)info.run_size);
				return false;
			}
			return true;
		}
		while (end < W && same_run(&M.page[end], m) && M.page[end].resident == m->resident)
			end++;
		const struct mregion *mr = &M.region[m->region];
		int want_state = m->state == C ? VMM_STATE_COMMITTED : m->state == G ? VMM_STATE_GUARD : VMM_STATE_RESERVED;
		unsigned want_prot = m->state == G ? 0 : m->prot;
		if (info.state != want_state || info.resident != (m->resident != 0) || info.region_base != va(mr->base) ||
		    info.region_size != (mr->end - mr->base) * PAGE_SIZE || info.run_size != (end - q) * PAGE_SIZE ||
		    (info.flags & 7) != want_prot || !!(info.flags & VMM_FLAG_LOCKED) != m->locked) {
			snprintf(why, size, "query page %llu: state %d/%d resident %d/%d run %#llx/%#llx flags %#x",
				 (unsigned long long)q, info.state, want_state, info.resident, m->resident,
				 (unsigned long long)info.run_size, (unsigned long long)((end - q) * PAGE_SIZE), info.flags);
			return false;
		}
		return true;
	}
	if (got != want) {
		snprintf(why, size, "op %u on [%#llx, +%#llx) = %d, model %d", op, (unsigned long long)addr,
			 (unsigned long long)len, got, want);
		return false;
	}
	return true;
}

static void run(struct ktest_ctx *t, uint64_t seed, unsigned steps)
{
	struct pmm_sim sim;
	struct vm_space vs;
	char why[256] = "";

	KT_ASSERT(sim_create_main(&sim, 8192));
	vm_commit_init(LIMIT);
	KT_ASSERT_EQ(vm_space_init(&vs, "model", true, LO, HI, NULL), rcOk);
	memset(&M, 0, sizeof(M));
	for (unsigned p = 0; p < W; p++)
		M.page[p].region = -1;
	rng = seed;
	uint64_t free_before = pmm_main.free_pages;

	unsigned i;
	for (i = 0; i < steps; i++)
		if (!step(&vs, why, sizeof(why)) || !compare(&vs, why, sizeof(why)))
			break;
	if (i < steps)
		ktest_fail(t, __FILE__, __LINE__, "seed %llu step %u: %s", (unsigned long long)seed, i, why);
	t->checks++;
	/* Tearing the space down returns every frame, table and page of commit. */
	vm_space_destroy(&vs);
	KT_EXPECT_EQ(vm_commit_charge(), 0);
	KT_EXPECT_EQ(pmm_main.free_pages, free_before + 1); /* + the root, made after the count */
	sim_destroy(&sim);
}

KTEST(vm, model_random_operations)
{
	memset(op_ok, 0, sizeof(op_ok));
	memset(op_fail, 0, sizeof(op_fail));
	run(t, 1, 4000);
	run(t, 0xdeadbeefcafef00dull, 4000);
	run(t, 42, 4000);
	for (int op = 0; op < NR_OPS; op++) {
		printf("# vm model: %-8s %5u succeeded, %5u failed\n", op_names[op], op_ok[op], op_fail[op]);
		KT_EXPECT_GE(op_ok[op], 50);
		if (op != OP_QUERY)
			KT_EXPECT_GE(op_fail[op], 50);
	}
}

/* A 64 TiB reservation is one run and no page table; a sparse walk of it is quick. */
KTEST(vm, huge_reservation_costs_nothing)
{
	struct pmm_sim sim;
	struct vm_space vs;
	uint64_t base;

	KT_ASSERT(sim_create_main(&sim, 1024));
	vm_commit_init(512);
	KT_ASSERT_EQ(vm_space_init(&vs, "huge", true, 0x1000, 0x00007ffffffff000ull, NULL), rcOk);
	uint64_t tables = pt_table_pages(), free_pages = pmm_main.free_pages;
	KT_ASSERT_EQ(vm_allocate(&vs, 0, 64ull << 40, VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE, &base), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables);
	KT_EXPECT_EQ(pmm_main.free_pages, free_pages);
	struct vm_info info;
	KT_EXPECT_EQ(vm_query(&vs, base + (32ull << 40), &info), rcOk);
	KT_EXPECT_EQ(info.state, VMM_STATE_RESERVED);
	KT_EXPECT_EQ(info.run_size, 32ull << 40);
	/* Committing all of it passes the limit and changes nothing. */
	KT_EXPECT_EQ(vm_commit(&vs, base, 64ull << 40, 0), rcOutOfMemory);
	KT_EXPECT_EQ(vm_commit_charge(), 0);
	/* Committing a little and touching it costs one table chain. */
	KT_EXPECT_EQ(vm_commit(&vs, base + (40ull << 40), 4 * PAGE_SIZE, 0), rcOk);
	KT_EXPECT_EQ(vm_commit_charge(), 4 + VM_TABLE_CHARGE_PER_WINDOW); /* pages + their tables */
	KT_EXPECT_EQ(vm_fault(&vs, base + (40ull << 40) + 5, VM_ACCESS_WRITE), VM_FAULT_RESOLVED);
	KT_EXPECT_EQ(pt_table_pages(), tables + 3);
	KT_EXPECT_EQ(vm_unmap(&vs, base, 64ull << 40), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables);
	KT_EXPECT_EQ(vm_commit_charge(), 0);
	vm_space_destroy(&vs);
	sim_destroy(&sim);
}

/* The tree alone: random inserts and removals keep the AVL and gap augmentation right,
 * and find_gap agrees with a linear scan. */
KTEST(vm, tree_gap_search_matches_a_scan)
{
	static struct vm_node nodes[512];
	static bool used[512];
	struct vm_tree tree;
	char why[160];
	unsigned bad = 0;

	vm_tree_init(&tree);
	memset(used, 0, sizeof(used));
	rng = 99;
	for (unsigned step = 0; step < 20000; step++) {
		unsigned i = (unsigned)below(512);
		if (used[i]) {
			vm_tree_remove(&tree, &nodes[i]);
			used[i] = false;
		} else {
			/* slot i owns [i*64, i*64+64) pages; use a random sub-range */
			uint64_t s = i * 64 + below(32), e = s + 1 + below(32);
			nodes[i].base = s * PAGE_SIZE;
			nodes[i].end = e * PAGE_SIZE;
			vm_tree_insert(&tree, &nodes[i]);
			used[i] = true;
		}
		if (!vm_tree_check(&tree, why, sizeof(why))) {
			ktest_fail(t, __FILE__, __LINE__, "step %u: %s", step, why);
			return;
		}
		/* Gap search vs scan. */
		uint64_t size = (1 + below(80)) * PAGE_SIZE, from = below(512 * 64) * PAGE_SIZE, got = 0, want = 0;
		bool found = vm_tree_find_gap(&tree, 0, 512 * 64 * PAGE_SIZE, from, size, PAGE_SIZE, &got);
		/* Scan: from `from`, jump past every range in the way. */
		bool exp = false;
		for (uint64_t x = from; x + size <= 512 * 64 * PAGE_SIZE;) {
			const struct vm_node *n = vm_tree_floor(&tree, x + size - 1);
			if (!n || n->end <= x) {
				exp = true;
				want = x;
				break;
			}
			x = n->end;
		}
		if (found != exp || (found && got != want))
			bad++;
	}
	KT_EXPECT_EQ(bad, 0);
	t->checks++;
}

/* The review's case: one committed page every 2 MiB. Tables are charged with the commit,
 * so the limit stops it before frames run out, and every committed page can be touched. */
KTEST(vm, sparse_commits_charge_their_page_tables)
{
	struct pmm_sim sim;
	struct vm_space vs;
	uint64_t base, n = 0;

	KT_ASSERT(sim_create_main(&sim, 4096));
	uint64_t free_pages = pmm_main.free_pages;
	vm_commit_init(free_pages - free_pages / 64);
	KT_ASSERT_EQ(vm_space_init(&vs, "sparse", true, 0x1000, 0x00007ffffffff000ull, NULL), rcOk);
	KT_ASSERT_EQ(vm_allocate(&vs, 0, 64ull << 40, VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE, &base), rcOk);
	Retcode rc = rcOk;
	unsigned unresolved = 0;
	for (uint64_t a = base; rc == rcOk; a += 1ull << 21) {
		rc = vm_commit(&vs, a, PAGE_SIZE, 0);
		if (rc == rcOk) {
			n++;
			unresolved += vm_fault(&vs, a, VM_ACCESS_WRITE) != VM_FAULT_RESOLVED;
		}
	}
	KT_EXPECT_EQ(rc, rcOutOfMemory);
	KT_EXPECT_EQ(unresolved, 0);
	KT_EXPECT_GE(n, 100);
	char why[160] = "";
	KT_EXPECT(vm_space_check(&vs, why, sizeof(why)));
	KT_EXPECT_EQ(vm_unmap(&vs, base, 64ull << 40), rcOk);
	KT_EXPECT_EQ(vm_commit_charge(), 0);
	vm_space_destroy(&vs);
	sim_destroy(&sim);
}
