// SPDX-License-Identifier: MIT
/*
 * The address-space core (region tree, run sets, commit charge, page tables in simulated
 * memory) against the model of SPEC §4 (tests/model/vm_model.c), under ASan and UBSan. A
 * seeded random sequence of allocate (anywhere / fixed, every flag), commit, decommit,
 * protect, unmap (whole and split), fault and query calls, valid and invalid; after every
 * step the regions, every page's state, protection and residency, and the commit charge
 * must match the model. (The ring-3 program test_vm_model drives the same model through the
 * system calls.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <knmm/ktest.h>
#include <mm/vm.h>
#include "mm/vm_internal.h" /* (white-box: the regions and their runs) */
#include "../model/vm_model.h"
#include "shim/pmm_sim.h"

#define W     2048        /* pages in the window the model covers */
#define LO    0x400000ull /* the space is [LO, LO + W pages) */
#define HI    (LO + W * PAGE_SIZE)
#define LIMIT 700 /* commit limit, pages */

_Static_assert(VM_RESERVED == VMM_STATE_RESERVED && VM_COMMITTED == VMM_STATE_COMMITTED && VM_GUARD == VMM_STATE_GUARD,
	       "the model's page states are the core's");

static struct vm_model M;
static uint64_t va(uint64_t page) { return vmm_va(&M, page); }
static struct vmm_page pages[W];
static struct vmm_region regions[4096];

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

/* How often each kind of call succeeded and failed: the test insists on both. */
static unsigned op_ok[VMM_NR_OPS], op_fail[VMM_NR_OPS];
static void tally(int op, bool ok) { ok ? op_ok[op]++ : op_fail[op]++; }

/* ------------------------------------------------------------------ comparison */

static int mark_leaf(const struct pt_leaf *leaf, void *arg)
{
	uint8_t *mapped = arg;
	for (uint64_t off = 0; off < leaf->size; off += PAGE_SIZE)
		mapped[(leaf->va + off - LO) / PAGE_SIZE] = 1;
	return 0;
}

/* The space's regions, residency and runs against the model's pages. */
static bool regions_match_locked(struct vm_space *vs, char *why, size_t size)
{
	vm_assert_held(vs);
	/* Regions, in order. */
	struct vm_region *r = vm_first_region_locked(vs);
	for (uint64_t p = 0; p < W;) {
		if (M.page[p].region < 0) {
			p++;
			continue;
		}
		const struct vmm_region *mr = &M.region[M.page[p].region];
		if (!r || vmr_base(r) != vmm_va(&M, mr->base) || vmr_end(r) != vmm_va(&M, mr->end)) {
			snprintf(why, size, "region at page %llu: model [%llu, %llu), space has %#llx",
				 (unsigned long long)p, (unsigned long long)mr->base, (unsigned long long)mr->end,
				 r ? (unsigned long long)vmr_base(r) : 0ull);
			return false;
		}
		p = mr->end;
		r = vm_next_region_locked(vs, r);
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
	for (r = vm_first_region_locked(vs); r; r = vm_next_region_locked(vs, r)) {
		uint64_t base = (vmr_base(r) - LO) / PAGE_SIZE, n = vmr_pages(r);
		for (uint32_t i = 0; i < r->runs.n; i++) {
			const struct vm_run *run = &r->runs.v[i];
			for (uint64_t k = run->start; k < vm_runs_end(&r->runs, i, n); k++) {
				const struct vmm_page *m = &M.page[base + k];
				if (run->state != m->state || (m->state != VMM_STATE_GUARD && run->prot != m->prot) ||
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

static bool compare(struct vm_space *vs, char *why, size_t size)
{
	if (!vm_space_check(vs, why, size))
		return false;
	uint64_t want_charge = 1 + M.charge + vmm_table_charge(&M); /* (1: the space's root) */
	if (charge_total() != want_charge) {
		snprintf(why, size, "commit charge %llu, model %llu", (unsigned long long)charge_total(),
			 (unsigned long long)want_charge);
		return false;
	}
	vm_lock(vs);
	bool ok = regions_match_locked(vs, why, size);
	vm_unlock(vs);
	return ok;
}

/* The usage map of every region, a few counts a call (so that startPage continuation is
 * used), against the model's. */
static bool usage_maps_match(struct vm_space *vs, char *why, size_t size)
{
	for (unsigned rid = 0; rid < M.max_regions; rid++) {
		if (!M.region[rid].live)
			continue;
		uint64_t first, pages, start = 0, max = 1 + rid % 3;
		vmm_region_usable(&M, (int)rid, &first, &pages);
		if (pages == 0)
			continue; /* only a guard page is left of it (after a split): no usable base */
		for (;;) {
			uint64_t got[3], want[3], n = 0, wn;
			bool gf = false, wf = false;
			Retcode rc = vm_usage_map(vs, va(first), start, got, max, &gf, &n);
			wn = vmm_usage_map(&M, (int)rid, start, want, max, &wf);
			bool same = rc == rcOk && n == wn && (n == 0 || gf == wf);
			for (uint64_t i = 0; same && i < n; i++)
				same = got[i] == want[i];
			if (!same) {
				snprintf(why, size,
					 "usage map of the region at page %llu from %llu: rc %d, %llu counts (model "
					 "%llu)",
					 (unsigned long long)first, (unsigned long long)start, rc,
					 (unsigned long long)n, (unsigned long long)wn);
				return false;
			}
			if (n == 0)
				break;
			for (uint64_t i = 0; i < n; i++)
				start += got[i];
		}
		if (start != pages) {
			snprintf(why, size, "usage map of the region at page %llu covers %llu of %llu pages",
				 (unsigned long long)first, (unsigned long long)start, (unsigned long long)pages);
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------ one step */

static const enum vm_access accesses[] = {
	[VMM_READ] = VM_ACCESS_READ, [VMM_WRITE] = VM_ACCESS_WRITE, [VMM_EXEC] = VM_ACCESS_EXEC
};
static const enum vmm_fault faults[] = { [VM_FAULT_RESOLVED] = VMM_RESOLVED,
					 [VM_FAULT_GREW] = VMM_GREW,
					 [VM_FAULT_GUARD] = VMM_GUARD_VIOLATION,
					 [VM_FAULT_ACCESS] = VMM_ACCESS_VIOLATION,
					 [VM_FAULT_STACK_OVERFLOW] = VMM_STACK_OVERFLOW };

static bool query_matches(struct vm_space *vs, uint64_t addr, char *why, size_t size)
{
	struct vm_info info;
	struct vmm_info want;
	uint64_t q = (addr - LO) / PAGE_SIZE;

	Retcode rc = vm_query(vs, addr, &info);
	vmm_query(&M, q, &want);
	if (rc != rcOk || info.state != want.state || info.resident != want.resident ||
	    info.region_base != want.region_base || info.region_size != want.region_size ||
	    info.run_size != want.run_size || info.flags != want.flags) {
		snprintf(why, size,
			 "query page %llu: rc %d state %d/%d resident %d/%d base %#llx/%#llx size %#llx/%#llx "
			 "run %#llx/%#llx flags %#x/%#x",
			 (unsigned long long)q, rc, info.state, want.state, info.resident, want.resident,
			 (unsigned long long)info.region_base, (unsigned long long)want.region_base,
			 (unsigned long long)info.region_size, (unsigned long long)want.region_size,
			 (unsigned long long)info.run_size, (unsigned long long)want.run_size, info.flags, want.flags);
		return false;
	}
	return true;
}

static bool step(struct vm_space *vs, char *why, size_t size)
{
	struct vmm_call c;
	Retcode got = rcOk, want = rcOk;
	uint64_t out = 0;

	vmm_random_call(&M, &c);
	switch (c.op) {
	case VMM_OP_ALLOCATE:
		got = vm_allocate(vs, c.addr, c.size, c.flags, &out);
		want = vmm_allocate(&M, c.addr, c.size, c.flags, got == rcOk ? out : 0);
		break;
	case VMM_OP_COMMIT:
		got = vm_commit(vs, c.addr, c.size, c.flags);
		want = vmm_commit(&M, c.addr, c.size, c.flags);
		break;
	case VMM_OP_DECOMMIT:
		got = vm_decommit(vs, c.addr, c.size);
		want = vmm_decommit(&M, c.addr, c.size);
		break;
	case VMM_OP_PROTECT:
		got = vm_protect(vs, c.addr, c.size, c.flags);
		want = vmm_protect(&M, c.addr, c.size, c.flags);
		break;
	case VMM_OP_UNMAP:
		got = vm_unmap(vs, c.addr, c.size);
		want = vmm_unmap(&M, c.addr, c.size);
		break;
	case VMM_OP_FAULT: {
		enum vmm_fault fr = faults[vm_fault(vs, c.addr, accesses[c.access])];
		enum vmm_fault wf = vmm_fault(&M, (c.addr - LO) / PAGE_SIZE, c.access);
		tally(c.op, fr == VMM_RESOLVED || fr == VMM_GREW);
		if (fr != wf) {
			snprintf(why, size, "fault(%#llx, access %d) = %d, model %d", (unsigned long long)c.addr,
				 c.access, fr, wf);
			return false;
		}
		return true;
	}
	case VMM_OP_QUERY:
	default:
		tally(c.op, true);
		return query_matches(vs, c.addr, why, size);
	}
	tally(c.op, got == rcOk);
	if (got != want) {
		snprintf(why, size, "%s(%#llx, %#llx, %#x) = %d (at %#llx), model %d", vmm_op_names[c.op],
			 (unsigned long long)c.addr, (unsigned long long)c.size, c.flags, got, (unsigned long long)out,
			 want);
		return false;
	}
	return true;
}

static void run(struct ktest_ctx *t, uint64_t seed, unsigned faultaround, unsigned steps)
{
	struct pmm_sim sim;
	struct vm_space vs;
	char why[320] = "";

	KT_ASSERT(sim_create_main(&sim, 8192));
	charge_init(LIMIT + 1); /* + the space's root, which it charges */
	const struct vm_space_params sp = {
		.name = "model", .user = true, .lo = LO, .hi = HI, .faultaround = faultaround
	};
	KT_ASSERT_EQ(vm_space_init(&vs, &sp), rcOk);
	vmm_init(&M, LO, W, pages, regions, ARRAY_SIZE(regions));
	M.limit = LIMIT;
	M.table_charge = VM_TABLE_CHARGE_PER_WINDOW;
	M.window_shift = VM_TABLE_WINDOW_SHIFT;
	M.faultaround = faultaround;
	M.rng = seed;
	uint64_t free_before = pmm_free_pages_in(&pmm_main);

	unsigned i;
	for (i = 0; i < steps; i++)
		if (!step(&vs, why, sizeof(why)) || !compare(&vs, why, sizeof(why)) ||
		    !usage_maps_match(&vs, why, sizeof(why)))
			break;
	if (i < steps)
		ktest_fail(t, __FILE__, __LINE__, "seed %llu step %u: %s", (unsigned long long)seed, i, why);
	t->checks++;
	/* Tearing the space down returns every frame, table and page of commit. */
	vm_space_destroy(&vs);
	KT_EXPECT_EQ(charge_total(), 0);
	KT_EXPECT_EQ(pmm_free_pages_in(&pmm_main), free_before + 1); /* + the root, made after the count */
	sim_destroy(&sim);
}

KTEST(vm, model_random_operations)
{
	memset(op_ok, 0, sizeof(op_ok));
	memset(op_fail, 0, sizeof(op_fail));
	run(t, 1, 0, 4000);
	run(t, 0xdeadbeefcafef00dull, 0, 4000);
	run(t, 42, 3, 4000); /* with fault-around */
	for (int op = 0; op < VMM_NR_OPS; op++) {
		printf("# vm model: %-8s %5u succeeded, %5u failed\n", vmm_op_names[op], op_ok[op], op_fail[op]);
		KT_EXPECT_GE(op_ok[op], 50);
		if (op != VMM_OP_QUERY)
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
	charge_init(512);
	const struct vm_space_params sp = { .name = "huge", .user = true, .lo = 0x1000, .hi = 0x00007ffffffff000ull };
	KT_ASSERT_EQ(vm_space_init(&vs, &sp), rcOk);
	uint64_t tables = pt_table_pages(), free_pages = pmm_free_pages_in(&pmm_main);
	KT_ASSERT_EQ(vm_allocate(&vs, 0, 64ull << 40, VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE, &base), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables);
	KT_EXPECT_EQ(pmm_free_pages_in(&pmm_main), free_pages);
	struct vm_info info;
	KT_EXPECT_EQ(vm_query(&vs, base + (32ull << 40), &info), rcOk);
	KT_EXPECT_EQ(info.state, VMM_STATE_RESERVED);
	KT_EXPECT_EQ(info.run_size, 32ull << 40);
	/* Committing all of it passes the limit and changes nothing (the space's root is the one
	 * page charged). */
	KT_EXPECT_EQ(vm_commit(&vs, base, 64ull << 40, 0), rcOutOfMemory);
	KT_EXPECT_EQ(charge_total(), 1);
	/* Committing a little and touching it costs one table chain. */
	KT_EXPECT_EQ(vm_commit(&vs, base + (40ull << 40), 4 * PAGE_SIZE, 0), rcOk);
	KT_EXPECT_EQ(charge_total(), 1 + 4 + VM_TABLE_CHARGE_PER_WINDOW); /* pages + their tables */
	KT_EXPECT_EQ(vm_fault(&vs, base + (40ull << 40) + 5, VM_ACCESS_WRITE), VM_FAULT_RESOLVED);
	KT_EXPECT_EQ(pt_table_pages(), tables + 3);
	KT_EXPECT_EQ(vm_unmap(&vs, base, 64ull << 40), rcOk);
	KT_EXPECT_EQ(pt_table_pages(), tables);
	KT_EXPECT_EQ(charge_total(), 1);
	vm_space_destroy(&vs);
	KT_EXPECT_EQ(charge_total(), 0);
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
	uint64_t free_pages = pmm_free_pages_in(&pmm_main);
	charge_init(free_pages - free_pages / 64);
	const struct vm_space_params sp = { .name = "sparse", .user = true, .lo = 0x1000, .hi = 0x00007ffffffff000ull };
	KT_ASSERT_EQ(vm_space_init(&vs, &sp), rcOk);
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
	KT_EXPECT_EQ(charge_total(), 1); /* the root */
	vm_space_destroy(&vs);
	KT_EXPECT_EQ(charge_total(), 0);
	sim_destroy(&sim);
}
