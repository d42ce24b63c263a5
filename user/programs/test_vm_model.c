// SPDX-License-Identifier: MIT
/*
 * 10 000 seeded random memory calls from ring 3, valid and invalid, against the model of
 * SPEC §4 (tests/model/vm_model.c, the same model the host test drives against the kernel's
 * address-space core): every return code, every KnVmQuery answer, the contents of every
 * touched page, and every 100 calls each page of the window, every region's usage map and
 * the task's commit charge must match it. Touches (reads, writes, and calls into written
 * pages) are made only where the model says they succeed (a task that faults ends); the
 * children of test_vm prove the faults. The kernel runs it twice: with no fault-around and
 * with 4 pages.
 */
#include <knlib.h>
#include <model/vm_model.h>

#define STEPS 10000u
#define W     2048u          /* pages the model covers */
#define LO    0x200000000ull /* 2 MiB-aligned: table charges are the model's */
#define PAGE  VMM_PAGE
#define SEED  20261121ull

static struct vm_model M;
static struct vmm_page pages[W];
static struct vmm_region regions[4096];
static unsigned ok_calls[VMM_NR_OPS], failed_calls[VMM_NR_OPS];
static uint64_t charge0;

static void *va(uint64_t page) { return (void *)(uintptr_t)vmm_va(&M, page); }

static bool query_matches(uint64_t page, char *why, size_t size)
{
	KnVmInfo got;
	struct vmm_info want;
	Retcode rc = KnVmQuery(va(page), &got);

	vmm_query(&M, page, &want);
	if (rc == rcOk && got.state == want.state && !!got.resident == want.resident &&
	    (uint64_t)(uintptr_t)got.regionBase == want.region_base && got.regionSize == want.region_size &&
	    got.runSize == want.run_size && (unsigned)got.flags == want.flags)
		return true;
	ksnprintf(
		why, size,
		"query of page %llu: rc %d, state %d/%d resident %d/%d base %p/%#llx size %#llx/%#llx run %#llx/%#llx "
		"flags %#x/%#x",
		(unsigned long long)page, rc, got.state, want.state, got.resident, want.resident, got.regionBase,
		(unsigned long long)want.region_base, (unsigned long long)got.regionSize,
		(unsigned long long)want.region_size, (unsigned long long)got.runSize,
		(unsigned long long)want.run_size, got.flags, want.flags);
	return false;
}

/* KnPmmMdlGetUsageMap of every region, a few counts a call (so that startPage continuation
 * is used), against the model's. */
static bool usage_maps_match(char *why, size_t size)
{
	for (unsigned rid = 0; rid < M.max_regions; rid++) {
		if (!M.region[rid].live)
			continue;
		uint64_t first, pages, start = 0, max = 1 + rid % 3;
		vmm_region_usable(&M, (int)rid, &first, &pages);
		if (pages == 0)
			continue; /* only a guard page is left of it: no usable base */
		for (;;) {
			rtl_size_t got[3], n = 0;
			uint64_t want[3];
			rtl_bool gf = 0;
			bool wf = false;
			Retcode rc = KnPmmMdlGetUsageMap(va(first), start, got, max, &gf, &n);
			uint64_t wn = vmm_usage_map(&M, (int)rid, start, want, max, &wf);
			bool same = rc == rcOk && n == wn && (n == 0 || !!gf == wf);
			for (uint64_t i = 0; same && i < n; i++)
				same = got[i] == want[i];
			if (!same) {
				ksnprintf(why, size,
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
	}
	return true;
}

/* Every page of the window, every usage map, and the task's commit against the model's. */
static bool everything_matches(char *why, size_t size)
{
	for (uint64_t p = 0; p < W; p++)
		if (!query_matches(p, why, size))
			return false;
	if (!usage_maps_match(why, size))
		return false;
	KnMemStats st;
	KnDebugGetStats(&st);
	uint64_t want = charge0 + M.charge + vmm_table_charge(&M);
	if (st.taskCommit != want) {
		ksnprintf(why, size, "task commit %llu, model %llu", (unsigned long long)st.taskCommit,
			  (unsigned long long)want);
		return false;
	}
	return true;
}

static bool step(unsigned n, char *why, size_t size)
{
	struct vmm_call c;
	Retcode got = rcOk, want = rcOk;
	void *out = RTL_NULL;

	vmm_random_call(&M, &c);
	void *addr = (void *)(uintptr_t)c.addr;
	switch (c.op) {
	case VMM_OP_ALLOCATE:
		got = KnVmAllocateEx(addr, c.size, (int)c.flags, &out);
		want = vmm_allocate(&M, c.addr, c.size, c.flags, got == rcOk ? (uint64_t)(uintptr_t)out : 0);
		break;
	case VMM_OP_COMMIT:
		got = KnVmCommit(addr, c.size, (int)c.flags);
		want = vmm_commit(&M, c.addr, c.size, c.flags);
		break;
	case VMM_OP_DECOMMIT:
		got = KnVmDecommit(addr, c.size);
		want = vmm_decommit(&M, c.addr, c.size);
		break;
	case VMM_OP_PROTECT:
		got = KnVmProtect(addr, c.size, (int)c.flags);
		want = vmm_protect(&M, c.addr, c.size, c.flags);
		break;
	case VMM_OP_UNMAP:
		got = KnVmUnmap(addr, c.size);
		want = vmm_unmap(&M, c.addr, c.size);
		break;
	case VMM_OP_FAULT: {
		uint64_t page = (c.addr - LO) / PAGE;
		enum vmm_fault f = vmm_fault_outcome(&M, page, c.access);
		bool ok = f == VMM_RESOLVED || f == VMM_GREW;
		ok_calls[c.op] += ok;
		failed_calls[c.op] += !ok;
		if (!ok)
			return true; /* would end the task: the faults are test_vm's children */
		/* A read checks the page's contents (zero until written), a write changes them; the
		 * stamps written start with `ret`, so a written page can be executed. */
		volatile uint32_t *word = va(page);
		uint32_t want_value = M.page[page].value, stamp = (n + 1) << 8 | 0xc3;
		if (c.access == VMM_EXEC && want_value == 0) {
			ok_calls[c.op]--; /* (nothing to run there: a zero page is not code) */
			failed_calls[c.op]++;
			return true;
		}
		if (c.access == VMM_WRITE)
			*word = stamp;
		else if (c.access == VMM_EXEC)
			((void (*)(void))(void *)word)();
		else if (*word != want_value) {
			ksnprintf(why, size, "page %llu holds %#x, model %#x", (unsigned long long)page, *word,
				  want_value);
			return false;
		}
		vmm_fault(&M, page, c.access);
		if (c.access == VMM_WRITE)
			M.page[page].value = stamp;
		return query_matches(page, why, size);
	}
	case VMM_OP_QUERY:
	default:
		ok_calls[c.op]++;
		return query_matches((c.addr - LO) / PAGE, why, size);
	}
	ok_calls[c.op] += got == rcOk;
	failed_calls[c.op] += got != rcOk;
	if (got != want) {
		ksnprintf(why, size, "%s(%#llx, %#llx, %#x) = %d (at %p), model %d", vmm_op_names[c.op],
			  (unsigned long long)c.addr, (unsigned long long)c.size, c.flags, got, out, want);
		return false;
	}
	return true;
}

int main(void)
{
	char why[256] = "";
	KnMemStats st;

	ktap_start();
	stack_pregrow(32 * 1024); /* (the deepest calls' stack, before the first snapshot) */
	KnDebugGetStats(&st);
	vmm_init(&M, LO, W, pages, regions, sizeof(regions) / sizeof(regions[0]));
	M.bounded = false; /* the window lies inside the task's space ... */
	M.faultaround = (unsigned)st.faultAround;
	M.rng = SEED;
	/* ... with the pages on either side taken, so that free gaps end at the window. */
	ktap_check(KnVmAllocate((void *)(LO - PAGE), PAGE, VMM_FLAG_RESERVE | VMM_FLAG_READ) != RTL_NULL &&
			   KnVmAllocate((void *)(uintptr_t)vmm_hi(&M), PAGE, VMM_FLAG_RESERVE | VMM_FLAG_READ) !=
				   RTL_NULL,
		   "fence pages around the window", NULL);
	KnDebugGetStats(&st);
	charge0 = st.taskCommit;
	printf("    # %u calls, seed %llu, fault-around %u\n", STEPS, (unsigned long long)SEED, M.faultaround);

	unsigned n;
	for (n = 0; n < STEPS; n++)
		if (!step(n, why, sizeof(why)) || (n % 100 == 99 && !everything_matches(why, sizeof(why))))
			break;
	ktap_check(n == STEPS, "every return code, query, usage map, page and the commit charge match the model",
		   "call %u: %s", n, why);
	for (int op = 0; op < VMM_NR_OPS; op++) {
		printf("    # %-8s %5u succeeded, %5u failed\n", vmm_op_names[op], ok_calls[op], failed_calls[op]);
		char name[64];
		ksnprintf(name, sizeof(name), "%s: both outcomes were exercised", vmm_op_names[op]);
		ktap_check(ok_calls[op] >= 50 && (op == VMM_OP_QUERY || failed_calls[op] >= 50), name,
			   "%u ok, %u failed", ok_calls[op], failed_calls[op]);
	}
	ktap_done();
}
