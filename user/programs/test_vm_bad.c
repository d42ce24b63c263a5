// SPDX-License-Identifier: MIT
/*
 * Bad input to every memory call (SPEC §9): each case gets its documented code and changes
 * nothing. "Nothing" is checked by walking the whole address space with KnVmQuery before
 * and after (every region, run, state, protection and residency) and by the kernel's
 * free-page and commit counters.
 */
#include <knlib.h>

#define PAGE     4096ull
#define RW       (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES      VMM_FLAG_RESERVE
#define COM      VMM_FLAG_COMMIT
#define USER_TOP 0x00007ffffffff000ull
#define KERNEL   ((void *)0xffffffff80000000ull)

/* Two adjacent regions: A is 16 committed pages, B the 16 reserved pages after it; then
 * free space, then a read-only page for outputs. */
#define A    ((uint8_t *)(uintptr_t)0x300000000ull)
#define B    (A + 16 * PAGE)
#define END  (A + 32 * PAGE)
#define RO   ((uint8_t *)(uintptr_t)0x300100000ull)
#define FREE ((uint8_t *)(uintptr_t)0x300200000ull)
/* Outputs a failing call must not touch: a lazy page, the bottom of a grow-down region. */
#define LAZY  ((uint8_t *)(uintptr_t)0x300300000ull)
#define STACK ((uint8_t *)(uintptr_t)0x300400000ull) /* 16 pages, only the top one committed */
/* A writable page followed by a guard page. */
#define EDGE ((uint8_t *)(uintptr_t)0x300500000ull)

struct snapshot {
	uint64_t hash, runs, free_pages, charge;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 0x100000001b3ull; /* FNV-1a */
	return h;
}

/* Every run of the user half, as KnVmQuery describes it. */
static struct snapshot snap(void)
{
	struct snapshot s = { .hash = 0xcbf29ce484222325ull };
	KnMemStats st;
	for (uint64_t a = 0x1000; a < USER_TOP;) {
		KnVmInfo i;
		if (KnVmQuery((void *)a, &i) != rcOk || i.runSize == 0) {
			s.hash = 0;
			break;
		}
		s.hash = mix(mix(mix(mix(mix(mix(s.hash, a), (uint64_t)(uintptr_t)i.regionBase), i.regionSize),
				     (uint64_t)i.state),
				 (uint64_t)i.resident),
			     (uint64_t)(unsigned)i.flags);
		s.hash = mix(s.hash, i.runSize);
		s.runs++;
		a += i.runSize;
	}
	KnDebugGetStats(&st);
	s.free_pages = st.freePages;
	s.charge = st.commitCharge;
	return s;
}

static struct snapshot before;

/* One case: the code, then "nothing changed". */
static void expect(Retcode got, Retcode want, const char *what)
{
	struct snapshot now = snap();
	bool same = now.hash != 0 && now.hash == before.hash && now.runs == before.runs &&
		    now.free_pages == before.free_pages && now.charge == before.charge;
	ktap_check(got == want && same, what, "rc %d (want %d)%s", got, want,
		   same ? "" : "; the address space changed");
	before = now; /* one failure does not fail every case after it */
}

static void bad_allocate(void)
{
	void *out = (void *)0x1234, *ro_out = RO;
	static const struct {
		uintptr_t addr;
		uint64_t size;
		int flags;
		Retcode rc;
		const char *what;
	} cases[] = {
		{ 0x400000001ull, PAGE, RES | RW, rcInvalidArgument, "allocate: unaligned address" },
		{ 0x400000000ull, PAGE + 1, RES | RW, rcInvalidArgument, "allocate: unaligned size" },
		{ 0x400000000ull, 0, RES | RW, rcInvalidArgument, "allocate: size 0" },
		{ 0, 0, RES | RW, rcInvalidArgument, "allocate anywhere: size 0" },
		{ 0x400000000ull, 0 - 0x400000000ull, RES | RW, rcInvalidArgument, "allocate: addr + size wraps" },
		{ 0xfffffffffffff000ull, 2 * PAGE, RES | RW, rcInvalidArgument, "allocate: wraps past the top" },
		{ USER_TOP - PAGE, 2 * PAGE, RES | RW, rcInvalidArgument, "allocate: runs past the user half" },
		{ USER_TOP, PAGE, RES | RW, rcInvalidArgument, "allocate: at the end of the user half" },
		{ 0xffff800000000000ull, PAGE, RES | RW, rcInvalidArgument, "allocate: in the kernel half" },
		{ 0x1000ull, PAGE, RES | RW | VMM_FLAG_LOW_GUARD, rcInvalidArgument,
		  "allocate: a low guard below the user half" },
		{ USER_TOP - PAGE, PAGE, RES | RW | VMM_FLAG_HIGH_GUARD, rcInvalidArgument,
		  "allocate: a high guard past the user half" },
		{ 0, 1ull << 47, RES | RW, rcInvalidArgument, "allocate anywhere: larger than the user half" },
		{ (uintptr_t)A, PAGE, RES | RW, rcAlreadyExists, "allocate: fixed address over a region" },
		{ (uintptr_t)A - PAGE, 2 * PAGE, RES | RW, rcAlreadyExists,
		  "allocate: fixed range overlapping a region" },
		{ (uintptr_t)END, PAGE, RES | RW | VMM_FLAG_LOW_GUARD, rcAlreadyExists,
		  "allocate: low guard over a region" },
		{ (uintptr_t)A - PAGE, PAGE, RES | RW | VMM_FLAG_HIGH_GUARD, rcAlreadyExists,
		  "allocate: high guard over a region" },
		{ 0x400000000ull, PAGE, RW, rcInvalidArgument, "allocate: no RESERVE" },
		{ 0x400000000ull, PAGE, RES | RW | 0x8, rcInvalidArgument, "allocate: unknown flag 0x8" },
		{ 0x400000000ull, PAGE, RES | RW | 0x80000, rcInvalidArgument, "allocate: unknown flag 0x80000" },
		{ 0x400000000ull, PAGE, (int)(RES | RW | 0x80000000u), rcInvalidArgument,
		  "allocate: unknown flag 0x80000000" },
		{ 0x400000000ull, PAGE, RES, rcInvalidArgument, "allocate: no protection" },
		{ 0x400000000ull, PAGE, RES | VMM_FLAG_WRITE, rcInvalidArgument, "allocate: write-only" },
		{ 0x400000000ull, PAGE, RES | VMM_FLAG_EXECUTE, rcInvalidArgument, "allocate: execute-only" },
		{ 0x400000000ull, PAGE, RES | VMM_FLAG_WRITE | VMM_FLAG_EXECUTE, rcInvalidArgument,
		  "allocate: write+execute" },
		{ 0x400000000ull, PAGE, RES | RW | VMM_FLAG_WRITE_THROUGH | VMM_FLAG_WRITE_COMBINE, rcInvalidArgument,
		  "allocate: two cache modes (WT, WC)" },
		{ 0x400000000ull, PAGE, RES | RW | VMM_FLAG_WRITE_BACK | VMM_FLAG_CACHE_DISABLE, rcInvalidArgument,
		  "allocate: two cache modes (WB, UC)" },
		{ 0x400000000ull, PAGE, RES | RW | VMM_FLAG_LOCKED, rcInvalidArgument,
		  "allocate: LOCKED without COMMIT" },
		{ 0x400000000ull, PAGE, RES | RW | COM | VMM_FLAG_GROW_DOWN, rcInvalidArgument,
		  "allocate: GROW_DOWN with COMMIT" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = (void *)0x1234;
		Retcode rc = KnVmAllocateEx((void *)cases[i].addr, cases[i].size, cases[i].flags, &out);
		ktap_check(out == (void *)0x1234, cases[i].what, "the output was written");
		expect(rc, cases[i].rc, cases[i].what);
	}
	expect(KnVmAllocateEx((void *)0x400000000ull, PAGE, RES | RW, (void **)KERNEL), rcFault,
	       "allocate: output in the kernel half");
	expect(KnVmAllocateEx((void *)0x400000000ull, PAGE, RES | RW, (void **)FREE), rcFault,
	       "allocate: unmapped output");
	expect(KnVmAllocateEx((void *)0x400000000ull, PAGE, RES | RW, (void **)ro_out), rcFault,
	       "allocate: read-only output");
	expect(KnVmAllocateEx((void *)0x400000000ull, PAGE, RES | RW, RTL_NULL), rcFault, "allocate: NULL output");
	expect(KnVmAllocateEx((void *)0x400000000ull, PAGE, RES | RW, (void **)(USER_TOP - 4)), rcFault,
	       "allocate: output straddling the end of the user half");
	/* A failing call leaves even a good output alone: not faulted in, no stack grown. */
	expect(KnVmAllocateEx((void *)0x400000001ull, PAGE, RES | RW, (void **)LAZY), rcInvalidArgument,
	       "allocate: bad address, output in a lazy page (not made resident)");
	expect(KnVmAllocateEx((void *)0x400000000ull, 0, RES | RW, (void **)STACK), rcInvalidArgument,
	       "allocate: size 0, output at the bottom of a grow-down region (not grown)");
	ktap_check(KnVmAllocate((void *)0x400000001ull, PAGE, RES | RW) == RTL_NULL,
		   "KnVmAllocate: RTL_NULL on failure", NULL);
	expect(rcOk, rcOk, "KnVmAllocate: ... and nothing changed");
}

/* The range cases every range call shares. */
typedef Retcode (*range_fn)(void *addr, rtl_size_t size);
static Retcode do_commit(void *a, rtl_size_t s) { return KnVmCommit(a, s, 0); }
static Retcode do_commit_locked(void *a, rtl_size_t s) { return KnVmCommit(a, s, VMM_FLAG_LOCKED); }
static Retcode do_decommit(void *a, rtl_size_t s) { return KnVmDecommit(a, s); }
static Retcode do_protect(void *a, rtl_size_t s) { return KnVmProtect(a, s, VMM_FLAG_READ); }
static Retcode do_unmap(void *a, rtl_size_t s) { return KnVmUnmap(a, s); }

static void bad_ranges(const char *call, range_fn fn)
{
	static const struct {
		uint8_t *addr;
		uint64_t size;
		Retcode rc;
		const char *what;
	} cases[] = {
		{ A + 1, PAGE, rcInvalidArgument, "unaligned address" },
		{ A, PAGE + 1, rcInvalidArgument, "unaligned size" },
		{ A, 0, rcInvalidArgument, "size 0" },
		{ A, 0 - (uint64_t)(uintptr_t)A, rcInvalidArgument, "addr + size wraps" },
		{ (uint8_t *)(uintptr_t)(USER_TOP - PAGE), 2 * PAGE, rcInvalidArgument, "past the user half" },
		{ (uint8_t *)KERNEL, PAGE, rcInvalidArgument, "in the kernel half" },
		{ (uint8_t *)0, PAGE, rcInvalidArgument, "page 0" },
		{ FREE, PAGE, rcNotFound, "in free space" },
		{ A + 8 * PAGE, 16 * PAGE, rcInvalidArgument, "across two regions" },
		{ B + 8 * PAGE, 16 * PAGE, rcInvalidArgument, "from a region into free space" },
		{ A - PAGE, 2 * PAGE, rcNotFound, "from free space into a region" },
	};
	char what[96];
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ksnprintf(what, sizeof(what), "%s: %s", call, cases[i].what);
		expect(fn(cases[i].addr, cases[i].size), cases[i].rc, what);
	}
}

static void bad_flags(void)
{
	expect(KnVmCommit(B, PAGE, VMM_FLAG_READ), rcInvalidArgument, "commit: a protection flag");
	expect(KnVmCommit(B, PAGE, 0x80000), rcInvalidArgument, "commit: an unknown flag");
	expect(KnVmCommit(B, PAGE, VMM_FLAG_RESERVE), rcInvalidArgument, "commit: RESERVE");
	static const int prots[] = { 0,
				     VMM_FLAG_WRITE,
				     VMM_FLAG_EXECUTE,
				     VMM_FLAG_WRITE | VMM_FLAG_EXECUTE,
				     RW | VMM_FLAG_WRITE_COMBINE,
				     RW | VMM_FLAG_COMMIT,
				     RW | 0x80000 };
	char what[64];
	for (unsigned i = 0; i < sizeof(prots) / sizeof(prots[0]); i++) {
		ksnprintf(what, sizeof(what), "protect: bad protection %#x", prots[i]);
		expect(KnVmProtect(A, PAGE, prots[i]), rcInvalidArgument, what);
	}
	/* More than the commit limit allows, in a region large enough to ask for it. */
	KnMemStats st;
	KnDebugGetStats(&st);
	uint64_t n = st.commitLimit - st.commitCharge + 1;
	uint8_t *big = KnVmAllocate((void *)0x10000000000ull, n * PAGE, RES | RW);
	ktap_check(big != RTL_NULL, "a reservation larger than the commit limit", NULL);
	before = snap();
	expect(KnVmCommit(big, n * PAGE, 0), rcOutOfMemory, "commit: past the commit limit");
	expect(KnVmCommit(big, n * PAGE, VMM_FLAG_LOCKED), rcOutOfMemory, "commit LOCKED: past the commit limit");
	ktap_rc(KnVmUnmap(big, n * PAGE), rcOk, "the reservation unmapped again");
	before = snap(); /* (that was a change) */
}

static void bad_query(void)
{
	KnVmInfo info, *ro = (KnVmInfo *)RO;
	expect(KnVmQuery(KERNEL, &info), rcInvalidArgument, "query: kernel half");
	expect(KnVmQuery((void *)USER_TOP, &info), rcInvalidArgument, "query: the end of the user half");
	expect(KnVmQuery((void *)0, &info), rcInvalidArgument, "query: page 0");
	expect(KnVmQuery(A, (KnVmInfo *)KERNEL), rcFault, "query: output in the kernel half");
	expect(KnVmQuery(A, (KnVmInfo *)FREE), rcFault, "query: unmapped output");
	expect(KnVmQuery(A, ro), rcFault, "query: read-only output");
	expect(KnVmQuery(A, RTL_NULL), rcFault, "query: NULL output");
	expect(KnVmQuery(A, (KnVmInfo *)(USER_TOP - 8)), rcFault, "query: output straddling the end of the user half");
	/* Running from a writable page into a guard page: nothing written, not even the part that
	 * could have been. */
	KnVmInfo *edge = (KnVmInfo *)(EDGE + PAGE - 16);
	memset(edge, 0x77, 16);
	expect(KnVmQuery(A, edge), rcFault, "query: output running into a guard page");
	bool untouched = true;
	for (unsigned i = 0; i < 16; i++)
		untouched &= ((uint8_t *)edge)[i] == 0x77;
	ktap_check(untouched, "... and its first bytes were not written", NULL);
	ktap_rc(KnVmQuery(A, (KnVmInfo *)LAZY), rcOk, "query: into a lazy page (a good output)");
	before = snap(); /* (that faulted the page in: the one change a successful call may make) */
}

int main(void)
{
	ktap_start();
	stack_pregrow(48 * 1024); /* (the deepest calls' stack, before the first snapshot) */
	ktap_check(KnVmAllocate(A, 16 * PAGE, RES | COM | RW) == A && KnVmAllocate(B, 16 * PAGE, RES | RW) == B &&
			   KnVmAllocate(RO, PAGE, RES | COM | VMM_FLAG_READ) == RO,
		   "two adjacent regions and a read-only page", NULL);
	(void)*(volatile uint8_t *)RO; /* resident now, so that reading it changes nothing later */
	ktap_check(KnVmAllocate(LAZY, PAGE, RES | COM | RW) == LAZY &&
			   KnVmAllocate(STACK, 16 * PAGE, RES | RW | VMM_FLAG_GROW_DOWN) == STACK &&
			   KnVmAllocate(EDGE, PAGE, RES | COM | RW | VMM_FLAG_HIGH_GUARD) == EDGE,
		   "a lazy page, a grow-down region and a page before a guard", NULL);
	EDGE[0] = 1;
	for (unsigned i = 0; i < 16; i += 2)
		A[i * PAGE] = 1;
	before = snap();
	before = snap(); /* the first one made the page holding `before` resident */
	ktap_check(before.hash != 0 && before.runs > 4, "the address space can be walked", "%llu runs",
		   (unsigned long long)before.runs);
	bad_allocate();
	bad_ranges("commit", do_commit);
	bad_ranges("commit LOCKED", do_commit_locked);
	bad_ranges("decommit", do_decommit);
	bad_ranges("protect", do_protect);
	bad_ranges("unmap", do_unmap);
	bad_flags();
	bad_query();
	ktap_done();
}
