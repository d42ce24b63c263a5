// SPDX-License-Identifier: MIT
/*
 * The memory API from ring 3 (SPEC §4): every kind of region and what each call does to its
 * pages, seen through KnVmQuery and the kernel's counters; the commit limit; the faults
 * (in children: a task that faults ends); ASLR and fault-around as the kernel is set
 * (the kernel runs this program twice: with its defaults, and with aslr=on and
 * mem.faultaround=4).
 */
#include <knlib.h>

#define PAGE 4096ull
#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES  VMM_FLAG_RESERVE
#define COM  VMM_FLAG_COMMIT
#define LCK  VMM_FLAG_LOCKED

/* Each test works in its own 256 MiB slot (2 MiB-aligned: commit charges are exact). */
static uint8_t *slot(unsigned i) { return (uint8_t *)(uintptr_t)(0x100000000ull + i * 0x10000000ull); }

/* Commit of n pages in one 2 MiB window, with its page tables. */
static uint64_t charge_of(uint64_t n) { return n + 3; }

static KnVmInfo query(const void *addr)
{
	KnVmInfo i;
	if (KnVmQuery(addr, &i) != rcOk)
		i.state = -1;
	return i;
}

static bool is(const void *addr, int state, bool resident, uint64_t run)
{
	KnVmInfo i = query(addr);
	return i.state == state && i.resident == resident && i.runSize == run;
}

static uint8_t peek(const uint8_t *p) { return *(const volatile uint8_t *)p; }
static void poke(uint8_t *p, uint8_t v) { *(volatile uint8_t *)p = v; }

static void lazy_commit(unsigned fa)
{
	KnMemStats s0 = mem_stats();
	uint8_t *p = KnVmAllocate(slot(0), 64 * PAGE, RES | COM | RW);
	ktap_check(p == slot(0), "lazy: allocated at the fixed address", "%p", (void *)p);
	KnVmInfo i = query(p);
	ktap_check(i.state == VMM_STATE_COMMITTED && !i.resident && i.runSize == 64 * PAGE &&
			   i.regionSize == 64 * PAGE && (i.flags & (COM | VMM_FLAG_RWX_MASK | LCK)) == (COM | RW),
		   "lazy: committed, nothing resident", "state %d resident %d run %#llx flags %#x", i.state, i.resident,
		   (unsigned long long)i.runSize, i.flags);
	KnMemStats s1 = mem_stats();
	ktap_check(s1.commitCharge == s0.commitCharge + charge_of(64), "lazy: charged when committed", "%llu -> %llu",
		   (unsigned long long)s0.commitCharge, (unsigned long long)s1.commitCharge);
	/* One touch: that page, and fault-around neighbours after it (then before it). */
	ktap_check(peek(p + 3 * PAGE + 17) == 0, "lazy: a touched page reads zero", NULL);
	ktap_check(is(p, VMM_STATE_COMMITTED, false, 3 * PAGE) &&
			   is(p + 3 * PAGE, VMM_STATE_COMMITTED, true, (1 + fa) * PAGE) &&
			   is(p + (4 + fa) * PAGE, VMM_STATE_COMMITTED, false, (60 - fa) * PAGE),
		   "lazy: exactly the touched page is resident (plus fault-around)", "fault-around %u", fa);
	poke(p + 63 * PAGE, 7);
	ktap_check(is(p + (63 - fa) * PAGE, VMM_STATE_COMMITTED, true, (1 + fa) * PAGE) &&
			   is(p + (4 + fa) * PAGE, VMM_STATE_COMMITTED, false, (59 - 2 * fa) * PAGE),
		   "lazy: at the run's end, fault-around takes the pages before", NULL);
	ktap_rc(KnVmUnmap(p, 64 * PAGE), rcOk, "lazy: unmap");
	ktap_check(query(p).state == VMM_STATE_FREE, "lazy: free after unmap", NULL);
	ktap_counters_back(&s0, "lazy: free pages and commit charge are back");
}

static void locked_commit(void)
{
	KnMemStats s0 = mem_stats();
	uint8_t *p = KnVmAllocate(slot(1), 64 * PAGE, RES | COM | LCK | RW);
	KnMemStats s1 = mem_stats();
	KnVmInfo i = query(p);
	ktap_check(p && i.state == VMM_STATE_COMMITTED && i.resident && i.runSize == 64 * PAGE && (i.flags & LCK),
		   "locked: every page resident at return", "run %#llx flags %#x", (unsigned long long)i.runSize,
		   i.flags);
	ktap_check(s0.freePages - s1.freePages >= 64, "locked: the frames were taken", "%llu",
		   (unsigned long long)(s0.freePages - s1.freePages));
	ktap_check(s1.commitCharge == s0.commitCharge + charge_of(64), "locked: charged", NULL);
	bool zero = true;
	for (unsigned k = 0; k < 64; k++)
		zero &= peek(p + k * PAGE + 100) == 0;
	ktap_check(zero, "locked: pages are zeroed", NULL);
	ktap_rc(KnVmUnmap(p, 64 * PAGE), rcOk, "locked: unmap");
	ktap_counters_back(&s0, "locked: free pages and commit charge are back");
}

static void reserve_commit_decommit(unsigned fa)
{
	KnMemStats s0 = mem_stats();
	uint8_t *p = KnVmAllocate(slot(2), 16 * PAGE, RES | RW);
	ktap_check(p && is(p, VMM_STATE_RESERVED, false, 16 * PAGE), "reserve: reserved, nothing resident", NULL);
	ktap_check(mem_stats().commitCharge == s0.commitCharge, "reserve: charges nothing", NULL);
	ktap_rc(KnVmCommit(p + 4 * PAGE, 4 * PAGE, 0), rcOk, "commit part of a reservation");
	ktap_check(is(p, VMM_STATE_RESERVED, false, 4 * PAGE) &&
			   is(p + 4 * PAGE, VMM_STATE_COMMITTED, false, 4 * PAGE) &&
			   is(p + 8 * PAGE, VMM_STATE_RESERVED, false, 8 * PAGE),
		   "commit: the range is committed, the rest reserved", NULL);
	ktap_check(mem_stats().commitCharge == s0.commitCharge + charge_of(4), "commit: charged", NULL);
	ktap_rc(KnVmCommit(p + 4 * PAGE, 8 * PAGE, COM), rcOk, "commit over committed pages");
	ktap_check(mem_stats().commitCharge == s0.commitCharge + charge_of(8),
		   "commit: committed pages are not charged twice", NULL);
	poke(p + 5 * PAGE, 0x5a);
	ktap_check(query(p + 5 * PAGE).resident, "commit: a touched page is resident", NULL);
	KnMemStats s1 = mem_stats();
	ktap_rc(KnVmDecommit(p + 4 * PAGE, 8 * PAGE), rcOk, "decommit");
	KnMemStats s2 = mem_stats();
	ktap_check(is(p, VMM_STATE_RESERVED, false, 16 * PAGE), "decommit: back to reserved, nothing resident", NULL);
	/* the touched page, its fault-around neighbours, and page tables left empty */
	ktap_check(s2.freePages >= s1.freePages + 1 + fa && s2.commitCharge == s0.commitCharge,
		   "decommit: the frames and the charge go back", "free %+lld charge %+lld",
		   (long long)(s2.freePages - s1.freePages), (long long)(s2.commitCharge - s0.commitCharge));
	ktap_rc(KnVmCommit(p + 4 * PAGE, PAGE * 2, LCK), rcOk, "commit LOCKED of reserved pages");
	ktap_check(is(p + 4 * PAGE, VMM_STATE_COMMITTED, true, 2 * PAGE) && (query(p + 4 * PAGE).flags & LCK),
		   "commit LOCKED: resident and locked", NULL);
	ktap_check(peek(p + 5 * PAGE) == 0, "recommitted page reads zero, not its old contents", NULL);
	ktap_rc(KnVmDecommit(p + 4 * PAGE, 2 * PAGE), rcOk, "decommit of locked pages");
	ktap_rc(KnVmUnmap(p, 16 * PAGE), rcOk, "unmap the reservation");
	ktap_counters_back(&s0, "reserve: free pages and commit charge are back");
}

static void protect(void)
{
	uint8_t *p = KnVmAllocate(slot(3), 4 * PAGE, RES | COM | RW);
	poke(p, 1);
	ktap_rc(KnVmProtect(p, 4 * PAGE, VMM_FLAG_READ), rcOk, "protect RW -> R");
	ktap_check((query(p).flags & VMM_FLAG_RWX_MASK) == VMM_FLAG_READ && peek(p) == 1,
		   "protect: read-only, readable", NULL);
	ktap_rc(KnVmProtect(p, 2 * PAGE, RW), rcOk, "protect R -> RW (half)");
	poke(p, 2);
	poke(p + PAGE, 3);
	ktap_check(peek(p) == 2 && query(p).runSize == 2 * PAGE &&
			   (query(p + 2 * PAGE).flags & VMM_FLAG_RWX_MASK) == VMM_FLAG_READ,
		   "protect: writes succeed again; the other half stays read-only", NULL);
	/* Code: written while RW, run once RX; RWX allows both. */
	static const uint8_t code[] = { 0xb8, 42, 0, 0, 0, 0xc3 }; /* mov $42, %eax; ret */
	ktap_rc(KnVmProtect(p + 2 * PAGE, 2 * PAGE, VMM_FLAG_RWX_MASK), rcOk, "protect R -> RWX");
	memcpy(p + 2 * PAGE, code, sizeof(code));
	ktap_check(((int (*)(void))(void *)(p + 2 * PAGE))() == 42, "RWX: written and executed", NULL);
	ktap_rc(KnVmProtect(p + 2 * PAGE, 2 * PAGE, VMM_FLAG_READ | VMM_FLAG_EXECUTE), rcOk, "protect RWX -> RX");
	ktap_check(((int (*)(void))(void *)(p + 2 * PAGE))() == 42, "RX: executes", NULL);
	ktap_rc(KnVmUnmap(p, 4 * PAGE), rcOk, "protect: unmap");
}

static void cache_modes(void)
{
	static const unsigned modes[] = { 0, VMM_FLAG_WRITE_BACK, VMM_FLAG_WRITE_THROUGH, VMM_FLAG_WRITE_COMBINE,
					  VMM_FLAG_CACHE_DISABLE };
	bool ok = true;
	for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		uint8_t *p = KnVmAllocate(slot(4) + m * 0x200000, 2 * PAGE, RES | COM | RW | modes[m]);
		ok &= p && (query(p).flags & VMM_FLAG_CACHE_MASK) == (int)modes[m];
		if (p) {
			poke(p + PAGE + 9, (uint8_t)m);
			ok &= peek(p + PAGE + 9) == m;
			ok &= KnVmUnmap(p, 2 * PAGE) == rcOk;
		}
	}
	ktap_check(ok, "every cache mode: allocated, reported, usable", NULL);
}

static void guards(void)
{
	KnMemStats s0 = mem_stats();
	uint8_t *base = slot(5),
		*p = KnVmAllocate(base + PAGE, 2 * PAGE, RES | COM | RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD);
	KnVmInfo lo = query(base), hi = query(base + 3 * PAGE);
	ktap_check(p == base + PAGE && lo.state == VMM_STATE_GUARD && hi.state == VMM_STATE_GUARD &&
			   lo.regionBase == base && lo.regionSize == 4 * PAGE &&
			   is(p, VMM_STATE_COMMITTED, false, 2 * PAGE),
		   "guards: a guard page below and above the usable range", "lo %d hi %d", lo.state, hi.state);
	ktap_check((lo.flags & VMM_FLAG_RWX_MASK) == 0, "guards: no access at all", NULL);
	ktap_rc(KnVmCommit(base, PAGE, 0), rcInvalidArgument, "guards: the low guard cannot be committed");
	ktap_rc(KnVmCommit(base + 3 * PAGE, PAGE, 0), rcInvalidArgument, "guards: the high guard cannot be committed");
	ktap_rc(KnVmProtect(base, 2 * PAGE, RW), rcInvalidArgument, "guards: nor protected");
	ktap_rc(KnVmDecommit(base + 2 * PAGE, 2 * PAGE), rcInvalidArgument, "guards: nor decommitted");
	ktap_check(query(base).state == VMM_STATE_GUARD, "guards: still guards", NULL);
	ktap_rc(KnVmUnmap(p, 2 * PAGE), rcOk, "guards: unmapping the usable range");
	ktap_check(query(base).state == VMM_STATE_FREE && query(base + 3 * PAGE).state == VMM_STATE_FREE,
		   "guards: ... frees the guards too", NULL);
	ktap_counters_back(&s0, "guards: free pages and commit charge are back");
}

static void grow_down(void)
{
	KnMemStats s0 = mem_stats();
	uint8_t *base = slot(6),
		*p = KnVmAllocate(base + PAGE, 16 * PAGE, RES | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD);
	ktap_check(p == base + PAGE && is(p + 15 * PAGE, VMM_STATE_COMMITTED, true, PAGE) &&
			   is(p, VMM_STATE_RESERVED, false, 15 * PAGE) && query(base).state == VMM_STATE_GUARD,
		   "grow-down: only the top page committed and resident; a guard below", NULL);
	ktap_check(mem_stats().commitCharge == s0.commitCharge + charge_of(1), "grow-down: the top page is charged",
		   NULL);
	poke(p + 10 * PAGE + 5, 1);
	ktap_check(is(p + 10 * PAGE, VMM_STATE_COMMITTED, true, PAGE) &&
			   is(p + 11 * PAGE, VMM_STATE_COMMITTED, false, 4 * PAGE) &&
			   is(p, VMM_STATE_RESERVED, false, 10 * PAGE),
		   "grow-down: a touch commits every page up to the committed part, maps the touched one", NULL);
	ktap_check(mem_stats().commitCharge == s0.commitCharge + charge_of(6), "grow-down: growth is charged", NULL);
	poke(p, 2);
	ktap_check(is(p, VMM_STATE_COMMITTED, true, PAGE) &&
			   mem_stats().commitCharge == s0.commitCharge + charge_of(16),
		   "grow-down: grows to its bottom", NULL);
	ktap_rc(KnVmUnmap(p, 16 * PAGE), rcOk, "grow-down: unmap");
	ktap_counters_back(&s0, "grow-down: free pages and commit charge are back");
}

static void commit_limit(void)
{
	KnMemStats s0 = mem_stats();
	uint64_t left = s0.commitLimit - s0.commitCharge;
	void *out = (void *)1;
	ktap_rc(KnVmAllocateEx(slot(7), (left + 1) * PAGE, RES | COM | RW, &out), rcOutOfMemory,
		"allocating past the commit limit fails");
	ktap_check(out == (void *)1 && query(slot(7)).state == VMM_STATE_FREE, "... and maps nothing", NULL);
	ktap_counters_back(&s0, "... and changes no counter");
	uint8_t *p = KnVmAllocate(slot(7), (left + 1) * PAGE, RES | RW);
	ktap_check(p != RTL_NULL, "reserving as much is fine", NULL);
	ktap_rc(KnVmCommit(p, (left + 1) * PAGE, 0), rcOutOfMemory, "committing it fails");
	ktap_check(is(p, VMM_STATE_RESERVED, false, (left + 1) * PAGE), "... and changes nothing", NULL);
	ktap_rc(KnVmUnmap(p, (left + 1) * PAGE), rcOk, "limit: unmap");
	ktap_counters_back(&s0, "limit: counters are back");
}

static void placement(const KnMemStats *s)
{
	uint8_t *b[8];
	bool ok = true;
	for (unsigned i = 0; i < 8; i++) {
		b[i] = KnVmAllocate(RTL_NULL, 16 * PAGE, RES | RW);
		ok &= b[i] != RTL_NULL;
	}
	unsigned adjacent = 0, far = 0;
	for (unsigned i = 1; i < 8; i++) {
		adjacent += b[i] == b[i - 1] + 16 * PAGE;
		far += (uint64_t)(b[i] > b[i - 1] ? b[i] - b[i - 1] : b[i - 1] - b[i]) > (1ull << 32);
	}
	if (s->aslr)
		ktap_check(ok && adjacent == 0 && far >= 6, "ASLR: addr 0 places regions at random",
			   "adjacent %u far %u", adjacent, far);
	else
		ktap_check(ok && adjacent == 7, "no ASLR: addr 0 places regions first-fit, one after the other",
			   "adjacent %u", adjacent);
	for (unsigned i = 0; i < 8; i++)
		KnVmUnmap(b[i], 16 * PAGE);
}

/* Children that must die: each line of the log is asserted by the runner. */
static void faults(void)
{
	static const char *const roles[] = { "vm-free",       "vm-reserved",    "vm-readonly",  "vm-readonly-big",
					     "vm-nx",         "vm-decommitted", "vm-guard-low", "vm-guard-high",
					     "vm-grow-guard", "vm-overflow",    "vm-recurse" };
	char name[80];
	KnMemStats s0 = mem_stats();
	for (unsigned i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		int code = run_task(roles[i], "vmchild", 0);
		ksnprintf(name, sizeof(name), "%s: the task ends with an exception", roles[i]);
		ktap_check(code == KN_EXIT_EXCEPTION, name, "exit code %d", code);
	}
	ktap_counters_back(&s0, "faulting tasks give everything back");
	int code = run_task("vm-churn", "vmchild", 0);
	ktap_check(code == 0, "a task leaving regions of every kind exits", "exit code %d", code);
	ktap_counters_back(&s0, "... and the kernel frees them all");
}

static void fill_to_the_limit(void)
{
	KnMemStats s0 = mem_stats();
	uint64_t left = s0.commitLimit - s0.commitCharge;
	if (left > (1ull << 30) / PAGE) {
		ktap_skip("a task commits lazily up to the limit and touches every page",
			  "more than 1 GiB to commit (the 64 MiB configurations run it)");
		return;
	}
	int code = run_task("vm-fill", "vmchild", 0);
	ktap_check(code == 0, "a task commits lazily up to the limit and touches every page", "exit code %d", code);
	ktap_counters_back(&s0, "... and all of it comes back");
}

int main(void)
{
	ktap_start();
	KnMemStats s = mem_stats();
	unsigned fa = (unsigned)s.faultAround;
	printf("    # fault-around %u, ASLR %s\n", fa, s.aslr ? "on" : "off");
	lazy_commit(fa);
	locked_commit();
	reserve_commit_decommit(fa);
	protect();
	cache_modes();
	guards();
	grow_down();
	commit_limit();
	placement(&s);
	faults();
	fill_to_the_limit();
	ktap_counters_back(&s, "test_vm: free pages and commit charge end where they began");
	ktap_done();
}
