// SPDX-License-Identifier: MIT
/*
 * Freeze and dump (SPEC §6, §7): a task that freezes itself is dumped by the collector, and
 * the dump changes neither the free-page count nor the commit charge; a dumpable task that
 * crashes on its stack guard is frozen (not terminated) and dumped; a task that is not
 * dumpable is terminated; KnTaskFreeze, KnTaskGetThreadContext and KnTaskGetNextVmRegion
 * with their refusals; terminating the dumped tasks gives every frame back. The runner
 * checks the core files (build/dumps/) with readelf and gdb.
 *
 * Also: region MDLs take no frame while they live and charge exactly the frames they pin;
 * the region flags of what dumpee built; an MDL of a region keeps its frames (and what they
 * hold) after the task is terminated; dumpable tasks that fail with #UD or a write to a
 * read-only page are frozen with the exception, error code, address and rip of the fault.
 *
 * KnTaskVmQuery (KN_RIGHT_VM_READ): on the frozen dumpee it says what dumpee's own KnVmQuery
 * said of each page of its region with a read-only stretch; on a running task and on
 * oneself what KnVmQuery says; every refusal with its code, writing nothing and faulting
 * nothing in (the target's resident pages and the free-page count stay); a handle passed on
 * with VM_READ only works for it and nothing else; an exited task's space is all free.
 * A task whose program file name is longer than 15 bytes (handle_child.elf) is dumped too:
 * the runner checks that gdb matches its core with the program by build-id; so is a task
 * frozen with 3 threads (threads.core: a thread's notes each).
 */
#include <knlib.h>

#define PAGE       4096ull
#define ALL_RIGHTS (KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE)
#define SECONDS(n) ((n)*1000000000ull)

/* Runs the collector on `target` (it gets a FREEZE|DUMP|VM_READ handle); returns its exit code. */
static int collect(Handle target, const char *name)
{
	char task[KN_TASK_NAME_MAX + 1];
	Handle c, remote;
	int code = -1;

	ksnprintf(task, sizeof(task), "dump:%s", name);
	if (KnTaskCreate(task, "collector", 0, &c) != rcOk)
		return -100;
	KnHandleTransfer(c, target, KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_VM_READ, &remote);
	KnTaskResume(c);
	KnTaskWait(c, KN_TASK_STATE_EXITED, ~0ull);
	KnTaskGetExitCode(c, &code);
	KnHandleClose(c);
	return code;
}

#define RW          (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES_COM     (VMM_FLAG_RESERVE | VMM_FLAG_COMMIT)
#define MAX_REGIONS 64
#define WINDOW      (16ull << 20)

/* Region flags with the default cache mode spelled either way (0 or WRITE_BACK) made 0. */
static int plain(int flags)
{
	return (flags & VMM_FLAG_CACHE_MASK) == VMM_FLAG_WRITE_BACK ? flags & ~VMM_FLAG_CACHE_MASK : flags;
}

/* The resident pages an MDL of `size` bytes holds: its read-only mappings' usage maps (a
 * window at a time; fictitious pages map as not resident and are never touched). ~0 on
 * error. */
static uint64_t mdl_frames(Handle mdl, uint64_t size)
{
	uint64_t used = 0;
	for (uint64_t off = 0; off < size; off += WINDOW) {
		uint64_t len = size - off < WINDOW ? size - off : WINDOW, start = 0;
		void *va;
		if (KnPmmMdlMap(mdl, off, len, RTL_NULL, VMM_FLAG_READ, &va) != rcOk)
			return ~0ull;
		for (;;) {
			rtl_size_t c[64], n = 0;
			rtl_bool first = 0;
			if (KnPmmMdlGetUsageMap(va, start, c, 64, &first, &n) != rcOk) {
				KnVmUnmap(va, len);
				return ~0ull;
			}
			if (n == 0)
				break;
			for (rtl_size_t i = 0; i < n; i++) {
				if ((i % 2 == 0) == !!first)
					used += c[i];
				start += c[i];
			}
		}
		KnVmUnmap(va, len);
	}
	return used;
}

/* The region of frozen task t that holds [va, va + n): its MDL handle (to close), base and
 * flags. Walks from cursor 0 (a region's base may be below va). */
static bool region_at(Handle t, uint64_t va, uint64_t n, Handle *mdl, uint64_t *base, int *flags)
{
	const uint8_t *cursor = 0;
	for (;;) {
		void *b;
		rtl_size_t size;
		Handle m;
		if (KnTaskGetNextVmRegion(t, cursor, &b, &size, flags, &m) != rcOk)
			return false;
		uint64_t lo = (uint64_t)(uintptr_t)b;
		if (va >= lo && va + n <= lo + size) {
			*mdl = m;
			*base = lo;
			return true;
		}
		KnHandleClose(m);
		if (lo > va)
			return false;
		cursor = (const uint8_t *)b + size;
	}
}

/* n bytes (within one page) at va of frozen task t, read through its region's MDL. */
static bool peek_task(Handle t, uint64_t va, void *buf, uint64_t n)
{
	Handle mdl;
	uint64_t base;
	int flags;
	void *p;
	if (!region_at(t, va, n, &mdl, &base, &flags))
		return false;
	uint64_t off = (va - base) & ~(PAGE - 1);
	bool ok = KnPmmMdlMap(mdl, off, PAGE, RTL_NULL, VMM_FLAG_READ, &p) == rcOk;
	if (ok) {
		memcpy(buf, (const uint8_t *)p + (va - base - off), n);
		KnVmUnmap(p, PAGE);
	}
	KnHandleClose(mdl);
	return ok;
}

/* What dumpee builds (user/programs/dumpee.c): each region's reservation and the flags
 * KnTaskGetNextVmRegion must give it (SPEC §6: protections, COMMIT, LOCKED, cache, guards,
 * GROW_DOWN). */
static const struct {
	const char *name;
	uint64_t base, size;
	int flags;
} dumpee_regions[] = {
	{ "committed", 0x200000000ull, 4 * PAGE, RES_COM | RW },
	{ "lazy", 0x200200000ull, 16 * PAGE, RES_COM | RW },
	{ "locked", 0x200400000ull, 4 * PAGE, RES_COM | VMM_FLAG_LOCKED | RW },
	{ "guarded", 0x200600000ull, 4 * PAGE, RES_COM | RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD },
	{ "growdown", 0x200800000ull, 17 * PAGE, RES_COM | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD },
	{ "shared", 0x200a00000ull, 2 * PAGE, RES_COM | RW },
	{ "writecombine", 0x200c00000ull, 2 * PAGE, RES_COM | RW | VMM_FLAG_WRITE_COMBINE },
	{ "protected", 0x200e00000ull, 8 * PAGE, RES_COM | RW }, /* (pages 2-3 read-only: READ|WRITE in all) */
};
/* dumpee's protected region (user/programs/dumpee.c): pages 2 and 3 read-only, pages 0, 2,
 * 3 and 6 touched; its own KnVmQuery of page i at base + ANSWERS + i * sizeof(KnVmInfo). */
#define PROTECTED_BASE    0x200e00000ull
#define PROTECTED_PAGES   8
#define PROTECTED_ANSWERS 512
#define NR_DUMPEE_REGIONS (sizeof(dumpee_regions) / sizeof(dumpee_regions[0]))

/* A region as KnTaskGetNextVmRegion gave it, with what the call added to the commit charge. */
struct seen_region {
	uint64_t base, size, charged;
	int flags;
	Handle mdl;
};

static bool same_info(const KnVmInfo *a, const KnVmInfo *b)
{
	return a->regionBase == b->regionBase && a->regionSize == b->regionSize && a->state == b->state &&
	       !!a->resident == !!b->resident && a->flags == b->flags && a->runSize == b->runSize;
}

/* The resident pages of task t, counted with KnTaskVmQuery over the whole user half (a run
 * at a time); ~0 on failure. */
static uint64_t resident_of(Handle t)
{
	uint64_t n = 0;
	for (uint64_t at = PAGE; at < 0x00007ffffffff000ull;) {
		KnVmInfo vi;
		if (KnTaskVmQuery(t, (const void *)(uintptr_t)at, &vi) != rcOk || vi.runSize == 0)
			return ~0ull;
		if (vi.resident)
			n += vi.runSize / PAGE;
		at += vi.runSize;
	}
	return n;
}

/* KnTaskVmQuery on the frozen dumpee's protected region: page by page what dumpee's own
 * KnVmQuery said (read from the answers it left in the region), and the read-only stretch
 * as such; querying faults nothing in. */
static void protected_queries(Handle h)
{
	KnMemStats before = mem_stats();
	uint64_t resident = resident_of(h);
	unsigned same = 0;
	static KnVmInfo got[PROTECTED_PAGES]; /* (static: the test's stack must not grow, frames are counted) */
	KnVmInfo own;
	for (unsigned i = 0; i < PROTECTED_PAGES; i++) {
		uint64_t va = PROTECTED_BASE + i * PAGE;
		Retcode rc = KnTaskVmQuery(h, (const void *)(uintptr_t)(va + 123), &got[i]);
		bool read = peek_task(h, PROTECTED_BASE + PROTECTED_ANSWERS + i * sizeof(KnVmInfo), &own, sizeof(own));
		if (rc == rcOk && read && same_info(&got[i], &own))
			same++;
		else
			printf("    # page %u: rc %d; KnTaskVmQuery state %d flags %#x resident %d run %#llx; its own "
			       "state %d flags %#x resident %d run %#llx\n",
			       i, rc, got[i].state, got[i].flags, got[i].resident, (unsigned long long)got[i].runSize,
			       own.state, own.flags, own.resident, (unsigned long long)own.runSize);
	}
	ktap_check(same == PROTECTED_PAGES,
		   "KnTaskVmQuery of a frozen child's pages says what the child's own KnVmQuery said", "%u of %u", same,
		   PROTECTED_PAGES);
	const KnVmInfo *ro = &got[2], *rw = &got[1];
	ktap_check(ro->regionBase == (void *)PROTECTED_BASE && ro->regionSize == PROTECTED_PAGES * PAGE &&
			   ro->state == VMM_STATE_COMMITTED && ro->resident &&
			   (ro->flags & VMM_FLAG_RWX_MASK) == VMM_FLAG_READ &&
			   (ro->flags & (VMM_FLAG_RESERVE | VMM_FLAG_COMMIT)) == (VMM_FLAG_RESERVE | VMM_FLAG_COMMIT) &&
			   ro->runSize == 2 * PAGE,
		   "the read-only stretch: its region, committed, resident, READ only, a run of 2 pages",
		   "base %p size %#llx state %d resident %d flags %#x run %#llx", ro->regionBase,
		   (unsigned long long)ro->regionSize, ro->state, ro->resident, ro->flags,
		   (unsigned long long)ro->runSize);
	ktap_check(rw->state == VMM_STATE_COMMITTED && (rw->flags & VMM_FLAG_RWX_MASK) == RW &&
			   (got[4].flags & VMM_FLAG_RWX_MASK) == RW &&
			   (got[3].flags & VMM_FLAG_RWX_MASK) == VMM_FLAG_READ,
		   "the pages around it are read-write", "flags %#x %#x %#x", rw->flags, got[3].flags, got[4].flags);
	KnMemStats after = mem_stats();
	ktap_check(resident != ~0ull && resident_of(h) == resident && after.freePages == before.freePages,
		   "querying faulted nothing in (the task's resident pages and the free pages the same)",
		   "resident %llu -> %llu, free %llu -> %llu", (unsigned long long)resident,
		   (unsigned long long)resident_of(h), (unsigned long long)before.freePages,
		   (unsigned long long)after.freePages);
}

static void self_freeze(void)
{
	KnMemStats s0 = mem_stats();
	Handle h;
	int state = 0, flags;
	ktap_rc(KnTaskCreate("dumpee", "dumpee", 0, &h), rcOk, "create dumpee");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_FROZEN, SECONDS(60)), rcOk, "it freezes itself");
	KnTaskGetState(h, &state);
	ktap_check(state == KN_TASK_STATE_FROZEN, "its state is FROZEN", "state %d", state);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_EXITED, 50000000ull), rcBusy, "and stays frozen");

	KnThreadContext ctx;
	ktap_rc(KnTaskGetThreadContext(h, 0, &ctx), rcOk, "thread context");
	ktap_check(ctx.r12 == 0x1212121212121212ull && ctx.r13 == 0x1313131313131313ull &&
			   ctx.r14 == 0x1414141414141414ull && ctx.r15 == 0x1515151515151515ull && ctx.rax == rcOk,
		   "it holds the registers the task set before freezing", "r12 %#llx rax %#llx",
		   (unsigned long long)ctx.r12, (unsigned long long)ctx.rax);
	ktap_check(ctx.exception == KN_NO_EXCEPTION && ctx.rip > 0x400000 && ctx.rip < 0x500000 && ctx.cs == 0x2b,
		   "frozen by request, in its code, in ring 3", "rip %#llx cs %#llx", (unsigned long long)ctx.rip,
		   (unsigned long long)ctx.cs);
	/* The program part: dumpee's module and the program headers of its ELF (a static
	 * executable at 4 MiB with text, rodata and bss segments: build/user/dumpee.elf). */
	ktap_check(strcmp(ctx.program, "dumpee") == 0 && ctx.entry >= 0x400000 && ctx.entry < 0x500000 &&
			   ctx.phentsize == 56 && ctx.phnum >= 3 && ctx.nloads >= 3 && ctx.nloads <= ctx.phnum &&
			   ctx.loads[0].vaddr == 0x400000 && (ctx.loads[0].flags & 1) && ctx.loads[0].filesz > 0,
		   "its program: module, entry, program headers, PT_LOADs",
		   "program '%s' entry %#llx phentsize %u phnum %u nloads %u", ctx.program,
		   (unsigned long long)ctx.entry, ctx.phentsize, ctx.phnum, ctx.nloads);
	uint64_t frozen_rip = ctx.rip, frozen_rsp = ctx.rsp;
	ktap_rc(KnTaskGetThreadContext(h, 1, &ctx), rcEof, "there is one thread");
	ktap_rc(KnTaskGetThreadContext(h, 0, (KnThreadContext *)0xffffffff80000000ull), rcFault,
		"thread context into the kernel half");

	/* The regions, in order, with rcEof after the last. Their MDLs stay open until the end
	 * of the walk: building one takes no frame (free pages stay where they were after every
	 * call), and each charges exactly the resident frames it pins (docs/mdl.md). */
	static struct seen_region seen[MAX_REGIONS];
	KnMemStats frozen = mem_stats(), prev = frozen;
	unsigned regions = 0, took_frames = 0;
	bool ordered = true, readonly = true;
	uint64_t last_end = 0;
	const uint8_t *cursor = 0;
	Retcode rc;
	for (;;) {
		void *base, *va;
		rtl_size_t size;
		Handle mdl;
		rc = KnTaskGetNextVmRegion(h, cursor, &base, &size, &flags, &mdl);
		KnMemStats now = mem_stats();
		if (now.freePages != frozen.freePages && !took_frames++)
			printf("    # region %u at %p: free pages %llu -> %llu\n", regions, base,
			       (unsigned long long)frozen.freePages, (unsigned long long)now.freePages);
		if (rc != rcOk)
			break;
		if (regions < MAX_REGIONS)
			seen[regions] = (struct seen_region){ (uint64_t)(uintptr_t)base, size,
							      now.commitCharge - prev.commitCharge, flags, mdl };
		else
			KnHandleClose(mdl);
		prev = now;
		regions++;
		ordered &= (uint64_t)(uintptr_t)base >= last_end && size > 0;
		readonly &= KnPmmMdlMap(mdl, 0, PAGE, RTL_NULL, VMM_FLAG_READ | VMM_FLAG_WRITE, &va) == rcAccessDenied;
		last_end = (uint64_t)(uintptr_t)base + size;
		cursor = (const uint8_t *)base + size;
	}
	ktap_check(rc == rcEof && regions >= 10 && regions <= MAX_REGIONS && ordered,
		   "its regions, in order, then rcEof", "rc %d, %u regions", rc, regions);
	ktap_check(readonly, "each region's MDL maps read-only only", NULL);
	ktap_check(took_frames == 0, "building the region MDLs took no frame (free pages the same after each call)",
		   "%u calls changed the free-page count", took_frames);
	/* Each region's charge is exactly its MDL's physical pages (counted through a mapping),
	 * twice over for memory that is not write-back (a frame of another memory type may need
	 * a page table of the direct map: docs/vm.md, "Memory types"). */
	unsigned wrong = 0;
	uint64_t frames = 0, charged = 0;
	for (unsigned i = 0; i < regions && i < MAX_REGIONS; i++) {
		uint64_t n = mdl_frames(seen[i].mdl, seen[i].size);
		uint64_t want = n * ((plain(seen[i].flags) & VMM_FLAG_CACHE_MASK) ? 2 : 1);
		frames += n;
		charged += want;
		if (want != seen[i].charged && wrong++ < 4)
			printf("    # region %#llx: its MDL holds %llu frames, the call charged %llu (want %llu)\n",
			       (unsigned long long)seen[i].base, (unsigned long long)n,
			       (unsigned long long)seen[i].charged, (unsigned long long)want);
	}
	KnMemStats alive = mem_stats();
	ktap_check(wrong == 0 && frames > 0 && alive.commitCharge == frozen.commitCharge + charged &&
			   alive.freePages == frozen.freePages,
		   "while they live, the MDLs charge exactly the frames they pin, and take none",
		   "%u regions wrong; %llu frames, charge %llu -> %llu", wrong, (unsigned long long)frames,
		   (unsigned long long)frozen.commitCharge, (unsigned long long)alive.commitCharge);
	/* The flags of what dumpee built, of its stack and of its code. */
	unsigned matched = 0;
	for (unsigned k = 0; k < NR_DUMPEE_REGIONS; k++) {
		char what[64];
		unsigned i = 0;
		while (i < regions && i < MAX_REGIONS && seen[i].base != dumpee_regions[k].base)
			i++;
		bool found = i < regions && i < MAX_REGIONS;
		ksnprintf(what, sizeof(what), "region %s: its size and flags", dumpee_regions[k].name);
		matched += ktap_check(found && seen[i].size == dumpee_regions[k].size &&
					      plain(seen[i].flags) == dumpee_regions[k].flags,
				      what, "found %d size %#llx flags %#x, expected %#llx %#x", found,
				      found ? (unsigned long long)seen[i].size : 0ull, found ? seen[i].flags : 0,
				      (unsigned long long)dumpee_regions[k].size, dumpee_regions[k].flags);
	}
	int stack_flags = -1, code_flags = -1;
	for (unsigned i = 0; i < regions && i < MAX_REGIONS; i++) {
		if (frozen_rsp >= seen[i].base && frozen_rsp < seen[i].base + seen[i].size)
			stack_flags = plain(seen[i].flags);
		if (frozen_rip >= seen[i].base && frozen_rip < seen[i].base + seen[i].size)
			code_flags = plain(seen[i].flags);
	}
	ktap_check(stack_flags == (RES_COM | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD),
		   "the stack's region: committed, read-write, grow-down, low guard", "flags %#x", stack_flags);
	ktap_check(code_flags == (RES_COM | VMM_FLAG_READ | VMM_FLAG_EXECUTE),
		   "the code's region: committed, read-execute", "flags %#x", code_flags);
	for (unsigned i = 0; i < regions && i < MAX_REGIONS; i++)
		KnHandleClose(seen[i].mdl);
	ktap_counters_back(&frozen, "walking the regions (and closing their MDLs) changes nothing");
	protected_queries(h);

	/* The dump: counters the same before and after. */
	KnMemStats before = mem_stats();
	int code = collect(h, "dumpee");
	ktap_check(code == 0, "the collector dumps it", "exit code %d", code);
	ktap_counters_back(&before, "the dump changed neither free pages nor the commit charge");
	/* Keep the MDL of the region with the committed marker across the termination. */
	static const char marker[] = "KNMM-COMMITTED-MARKER";
	Handle pin = 0;
	uint64_t pin_base = 0, pin_size = 4 * PAGE;
	int pin_flags;
	bool have = region_at(h, 0x200000000ull + 100, sizeof(marker), &pin, &pin_base, &pin_flags);
	ktap_check(have && pin_base == 0x200000000ull, "the MDL of the region with the committed marker", NULL);
	ktap_rc(KnTaskTerminate(h), rcOk, "terminate the frozen task");
	KnTaskGetExitCode(h, &code);
	ktap_check(code == KN_EXIT_TERMINATED, "... it ends, terminated", "code %d", code);
	KnHandleClose(h);
	uint64_t held = have ? mdl_frames(pin, pin_size) : 0;
	ktap_check(held == 4, "after the termination its MDL still holds the region's 4 frames", "%llu",
		   (unsigned long long)held);
	const char *m = RTL_NULL;
	ktap_rc(have ? KnPmmMdlMap(pin, 0, pin_size, RTL_NULL, VMM_FLAG_READ, (void **)&m) : rcNotFound, rcOk,
		"map the MDL of the terminated task's region");
	ktap_check(m && memcmp(m + 100, marker, sizeof(marker)) == 0 && m[3 * PAGE] == 1,
		   "its pinned frames still hold the marker and the task's writes", "read %.24s",
		   m ? m + 100 : "(nothing)");
	if (m)
		KnVmUnmap((void *)m, pin_size);
	/* (the MDL's own pool blocks may keep pool pages too: at least its frames come back) */
	KnMemStats pinned = mem_stats();
	if (have)
		KnHandleClose(pin);
	KnMemStats closed = mem_stats();
	ktap_check(closed.freePages >= pinned.freePages + 4 && closed.commitCharge + 4 <= pinned.commitCharge,
		   "closing that MDL gives its frames and their charge back", "free %llu -> %llu, charge %llu -> %llu",
		   (unsigned long long)pinned.freePages, (unsigned long long)closed.freePages,
		   (unsigned long long)pinned.commitCharge, (unsigned long long)closed.commitCharge);
	ktap_counters_back(&s0, "every frame back after the dumped task is terminated and the MDL closed");
}

static void refusals(void)
{
	Handle spinner, weak, h;
	void *base;
	rtl_size_t size;
	int flags, state = 0;
	Handle mdl = 0x5eed;
	KnThreadContext ctx;

	KnTaskCreate("spinner", "spin", 0, &spinner);
	ktap_rc(KnTaskFreeze(spinner), rcWrongState, "freeze: a task that has not started");
	KnTaskResume(spinner);
	ktap_rc(KnTaskGetNextVmRegion(spinner, 0, &base, &size, &flags, &mdl), rcWrongState, "regions: a running task");
	ktap_rc(KnTaskGetThreadContext(spinner, 0, &ctx), rcWrongState, "thread context: a running task");
	KnHandleTransfer(KN_HANDLE_SELF, spinner, KN_RIGHT_TERMINATE, &weak);
	ktap_rc(KnTaskFreeze(weak), rcAccessDenied, "freeze: without KN_RIGHT_FREEZE");
	ktap_rc(KnTaskFreeze(spinner), rcOk, "freeze a busy loop from outside");
	ktap_rc(KnTaskWait(spinner, KN_TASK_STATE_FROZEN, SECONDS(10)), rcOk, "... it stops");
	ktap_rc(KnTaskFreeze(spinner), rcOk, "freeze: again (already frozen)");
	/* A task blocked in a system call gets to its safe point too. */
	Handle waiter, remote;
	KnTaskCreate("actor-wait", "actor", 0, &waiter);
	KnHandleTransfer(waiter, spinner, 0, &remote);
	KnTaskResume(waiter);
	ktap_rc(KnTaskWait(waiter, KN_TASK_STATE_EXITED, 100000000ull), rcBusy, "a task blocked in KnTaskWait");
	ktap_rc(KnTaskFreeze(waiter), rcOk, "freeze it");
	ktap_rc(KnTaskWait(waiter, KN_TASK_STATE_FROZEN, SECONDS(10)), rcOk, "... it is frozen");
	KnTaskTerminate(waiter);
	KnHandleClose(waiter);
	ktap_rc(KnTaskGetNextVmRegion(weak, 0, &base, &size, &flags, &mdl), rcAccessDenied,
		"regions: without KN_RIGHT_DUMP");
	ktap_rc(KnTaskGetThreadContext(weak, 0, &ctx), rcAccessDenied, "thread context: without KN_RIGHT_DUMP");
	ktap_rc(KnTaskGetNextVmRegion(0x12345, 0, &base, &size, &flags, &mdl), rcBadHandle, "regions: a bad handle");
	ktap_rc(KnTaskGetNextVmRegion(spinner, (void *)0x00007ffffffff000ull, &base, &size, &flags, &mdl), rcEof,
		"regions: nothing above the cursor");
	ktap_rc(KnTaskGetNextVmRegion(spinner, 0, &base, &size, &flags, (Handle *)0xffffffff80000000ull), rcFault,
		"regions: handle output in the kernel half");
	ktap_check(mdl == 0x5eed, "no failed call wrote an output", NULL);
	ktap_rc(KnTaskTerminate(spinner), rcOk, "terminate the frozen busy loop");
	KnTaskGetState(spinner, &state);
	ktap_check(state == KN_TASK_STATE_EXITED, "... it exits", "state %d", state);
	ktap_rc(KnTaskFreeze(spinner), rcWrongState, "freeze: an exited task");
	KnHandleClose(weak);
	KnHandleClose(spinner);
	ktap_rc(KnTaskCreate("x", "nop", 0, &h), rcOk, "a task to hand out");
	KnHandleClose(h);
}

/* KnTaskVmQuery's refusals, on a running task; each leaves the output alone and faults
 * nothing in, in the target or in the caller. */
static void task_vm_query(void)
{
	KnMemStats s0 = mem_stats();
	Handle spin, weak, vmonly, h;
	KnVmInfo vi, own;
	Retcode rc;

	ktap_rc(KnTaskCreate("vmq-spin", "spin", 0, &spin), rcOk, "vm query: a task to look at");
	/* A created task has its space already: its program, its stack. */
	rc = KnTaskVmQuery(spin, (const void *)0x400000, &vi);
	ktap_check(rc == rcOk && vi.state == VMM_STATE_COMMITTED && vi.resident &&
			   (vi.flags & VMM_FLAG_RWX_MASK) == (VMM_FLAG_READ | VMM_FLAG_EXECUTE) &&
			   vi.regionBase == (void *)0x400000,
		   "vm query: a created task's code: committed, resident, read-execute",
		   "rc %d state %d resident %d flags %#x base %p", rc, vi.state, vi.resident, vi.flags, vi.regionBase);
	KnTaskResume(spin);
	KnTaskWait(spin, KN_TASK_STATE_EXITED, 20000000ull); /* (let it run) */
	rc = KnTaskVmQuery(spin, (const void *)0x400000, &vi);
	ktap_check(rc == rcOk && vi.state == VMM_STATE_COMMITTED &&
			   (vi.flags & VMM_FLAG_RWX_MASK) == (VMM_FLAG_READ | VMM_FLAG_EXECUTE),
		   "vm query: a running task's code", "rc %d state %d flags %#x", rc, vi.state, vi.flags);
	rc = KnTaskVmQuery(spin, (const void *)0x100000000000ull, &vi);
	ktap_check(rc == rcOk &&
			   (vi.state == VMM_STATE_FREE || vi.state == VMM_STATE_RESERVED ||
			    vi.state == VMM_STATE_COMMITTED || vi.state == VMM_STATE_GUARD) &&
			   vi.runSize > 0,
		   "vm query: anywhere in a running task's user half", "rc %d state %d run %#llx", rc, vi.state,
		   (unsigned long long)vi.runSize);

	/* Oneself: KN_HANDLE_SELF has VM_READ, and says what KnVmQuery says. */
	static const uint64_t mine[] = { 0x400000, 0x1000, 0x00007fffffffe000ull };
	unsigned same = 0;
	for (unsigned i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		same += KnTaskVmQuery(KN_HANDLE_SELF, (const void *)(uintptr_t)mine[i], &vi) == rcOk &&
			KnVmQuery((const void *)(uintptr_t)mine[i], &own) == rcOk && same_info(&vi, &own);
	int local = 0;
	same += KnTaskVmQuery(KN_HANDLE_SELF, &local, &vi) == rcOk && KnVmQuery(&local, &own) == rcOk &&
		same_info(&vi, &own);
	ktap_check(same == 4, "vm query: of oneself (KN_HANDLE_SELF), what KnVmQuery says", "%u of 4", same);

	/* Refusals: nothing written, nothing faulted in. The output is a sentinel, or a
	 * committed page of ours that was never touched (it must stay so). */
	uint8_t *lazy = KnVmAllocate(RTL_NULL, 2 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_HIGH_GUARD | RW);
	KnVmInfo *untouched = (KnVmInfo *)(lazy + PAGE);
	KnTaskVmQuery(spin, (const void *)0x400000, (KnVmInfo *)lazy); /* (page 0: now resident) */
	KnHandleTransfer(KN_HANDLE_SELF, spin, KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE, &weak);
	KnMemStats before = mem_stats();
	uint64_t target = resident_of(spin);
	memset(&vi, 0x5a, sizeof(vi));
	KnVmInfo sentinel = vi;
	ktap_rc(KnTaskVmQuery(0x12345, (const void *)0x400000, &vi), rcBadHandle, "vm query: a made-up handle");
	KnHandleTransfer(KN_HANDLE_SELF, spin, KN_RIGHT_VM_READ, &h);
	KnHandleClose(h);
	ktap_rc(KnTaskVmQuery(h, (const void *)0x400000, &vi), rcBadHandle, "vm query: a closed handle");
	Handle mdl = 0;
	KnPmmMdlCreate(PAGE, RW, &mdl);
	ktap_rc(KnTaskVmQuery(mdl, (const void *)0x400000, &vi), rcBadHandle, "vm query: an MDL handle");
	KnHandleClose(mdl);
	ktap_rc(KnTaskVmQuery(weak, (const void *)0x400000, &vi), rcAccessDenied,
		"vm query: a handle without KN_RIGHT_VM_READ");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0, &vi), rcInvalidArgument, "vm query: address 0");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0xfff, &vi), rcInvalidArgument, "vm query: address 0xfff");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0x00007ffffffff000ull, &vi), rcInvalidArgument,
		"vm query: the first address past the user half");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0xffffffff80000000ull, &vi), rcInvalidArgument,
		"vm query: a kernel address");
	ktap_check(memcmp(&vi, &sentinel, sizeof(vi)) == 0, "vm query: no refused call wrote its output", NULL);
	ktap_rc(KnTaskVmQuery(spin, (const void *)0x400000, (KnVmInfo *)0xffffffff80000000ull), rcFault,
		"vm query: output in the kernel half");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0x400000, RTL_NULL), rcFault, "vm query: output NULL");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0x400000, (KnVmInfo *)0x400000), rcFault,
		"vm query: output in our read-only code");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0x400000, (KnVmInfo *)(lazy + 2 * PAGE - 8)), rcFault,
		"vm query: output running into a guard page");
	ktap_rc(KnTaskVmQuery(0x12345, (const void *)0, untouched), rcBadHandle,
		"vm query: a bad handle and a bad address, output in an untouched page");
	ktap_rc(KnTaskVmQuery(weak, (const void *)0x400000, untouched), rcAccessDenied,
		"vm query: no right, output in an untouched page");
	ktap_rc(KnTaskVmQuery(spin, (const void *)0xffffffff80000000ull, untouched), rcInvalidArgument,
		"vm query: a kernel address, output in an untouched page");
	ktap_rc(KnTaskVmQuery(0x12345, (const void *)0x400000, (KnVmInfo *)0xffffffff80000000ull), rcFault,
		"vm query: the output is checked first (bad handle and bad output: rcFault)");
	rc = KnVmQuery(untouched, &vi);
	ktap_check(rc == rcOk && !vi.resident, "vm query: refused calls left our untouched output page untouched",
		   "rc %d resident %d", rc, vi.resident);
	KnMemStats after = mem_stats();
	uint64_t now = resident_of(spin);
	ktap_check(target != ~0ull && now == target && after.freePages == before.freePages,
		   "vm query: refused calls faulted nothing in (target's resident pages, free pages the same)",
		   "target %llu -> %llu, free %llu -> %llu", (unsigned long long)target, (unsigned long long)now,
		   (unsigned long long)before.freePages, (unsigned long long)after.freePages);

	/* A handle passed on with VM_READ only: it queries, and does nothing else; no rights
	 * can be added on the way. */
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, spin, KN_RIGHT_VM_READ, &vmonly), rcOk,
		"vm query: pass the handle on with VM_READ only");
	rc = KnTaskVmQuery(vmonly, (const void *)0x400000, &vi);
	ktap_check(rc == rcOk && vi.regionBase == (void *)0x400000, "vm query: ... which queries", "rc %d", rc);
	ktap_rc(KnTaskFreeze(vmonly), rcAccessDenied, "vm query: ... and cannot freeze");
	ktap_rc(KnTaskTerminate(vmonly), rcAccessDenied, "vm query: ... nor terminate");
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, weak, KN_RIGHT_VM_READ, &h), rcAccessDenied,
		"vm query: VM_READ cannot be added to a handle without it");
	/* Given to another task with fewer rights: it has just those. */
	Handle other, remote;
	uint32_t rights = 0;
	KnTaskCreate("vmq-holder", "nop", 0, &other);
	ktap_rc(KnHandleTransfer(other, vmonly, KN_RIGHT_VM_READ | KN_RIGHT_FREEZE, &remote), rcAccessDenied,
		"vm query: a VM_READ-only handle passes on no FREEZE");
	KnTaskTerminate(other);
	KnHandleClose(other);
	for (rtl_size_t i = 0;; i++) {
		Handle e;
		int type;
		rtl_uint32_t r;
		if (KnHandleEnumerate(i, &e, &type, &r) != rcOk)
			break;
		if (e == spin)
			rights = r;
	}
	ktap_check((rights & (KN_RIGHT_VM_READ | KN_RIGHT_VM_WRITE | KN_RIGHT_VM_OPERATION)) ==
			   (KN_RIGHT_VM_READ | KN_RIGHT_VM_WRITE | KN_RIGHT_VM_OPERATION),
		   "vm query: a creator holds VM_READ, VM_WRITE and VM_OPERATION on its child", "rights %#x", rights);

	/* Gone: its space is empty. */
	KnTaskTerminate(spin);
	rc = KnTaskVmQuery(spin, (const void *)0x400000, &vi);
	ktap_check(rc == rcOk && vi.state == VMM_STATE_FREE && !vi.resident,
		   "vm query: an exited task's space is all free", "rc %d state %d", rc, vi.state);
	KnHandleClose(vmonly);
	KnHandleClose(weak);
	KnHandleClose(spin);
	KnVmUnmap(lazy, 2 * PAGE);
	ktap_counters_back(&s0, "vm query: every frame back");
}

/*
 * Starts PROGRAM as task NAME, which freezes itself, and dumps it as DUMP.core with the
 * collector; then ends it and checks every frame came back. `what` names the task's case.
 */
static void dump_self_frozen(const char *name, const char *program, const char *dump, const char *what)
{
	KnMemStats s0 = mem_stats();
	Handle h;
	int state = 0;

	char back[64];
	ksnprintf(back, sizeof(back), "%s: every frame back", dump);
	ktap_rc(KnTaskCreate(name, program, 0, &h), rcOk, what);
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, SECONDS(60)), rcOk, "it freezes itself");
	KnTaskGetState(h, &state);
	ktap_check(state == KN_TASK_STATE_FROZEN, "it is frozen", "state %d", state);
	int code = collect(h, dump);
	ktap_check(code == 0, "the collector dumps it", "exit code %d", code);
	KnTaskTerminate(h);
	KnHandleClose(h);
	ktap_counters_back(&s0, back);
}

/* A task whose program file name (handle_child.elf, 16 bytes) does not fit in a core's
 * pr_fname: dumped as freeze-me.core, which the runner loads in gdb with handle_child.elf. */
static void long_name(void)
{
	dump_self_frozen("freeze-me", "handle_child", "freeze-me", "a program with a 16-byte file name");
}

/* A task frozen with 3 threads (test_threads' thr-frozen): dumped as threads.core, in which
 * the runner wants one NT_PRSTATUS, and one [New LWP] in gdb, per thread. */
static void threaded(void) { dump_self_frozen("thr-frozen", "test_threads", "threads", "a task with 3 threads"); }

static void crashes(void)
{
	KnMemStats s0 = mem_stats();
	Handle h;
	int state = 0, code = 0;
	KnThreadContext ctx;

	/* Not dumpable: terminated. */
	code = run_task("vm-recurse", "vmchild", 0);
	ktap_check(code == KN_EXIT_EXCEPTION, "a crashing task that is not dumpable is terminated", "code %d", code);
	/* Dumpable: frozen where it failed, then dumped. */
	ktap_rc(KnTaskCreate("stack-crash", "vmchild", KN_TASK_DUMPABLE, &h), rcOk, "a dumpable task");
	KnTaskResume(h);
	ktap_rc(KnTaskWait(h, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, SECONDS(60)), rcOk, "it crashes");
	KnTaskGetState(h, &state);
	ktap_check(state == KN_TASK_STATE_FROZEN, "... and is frozen, not terminated", "state %d", state);
	ktap_rc(KnTaskGetThreadContext(h, 0, &ctx), rcOk, "the crashed thread's context");
	ktap_check(strcmp(ctx.program, "vmchild") == 0, "its program is vmchild", "program '%s'", ctx.program);
	ktap_check(ctx.exception == 14 && ctx.cr2 != 0 && ctx.rip > 0x400000 && ctx.rip < 0x500000,
		   "a page fault, with its address and rip", "exception %llu cr2 %#llx rip %#llx",
		   (unsigned long long)ctx.exception, (unsigned long long)ctx.cr2, (unsigned long long)ctx.rip);
	printf("    # stack-crash: cr2 %#llx rip %#llx\n", (unsigned long long)ctx.cr2, (unsigned long long)ctx.rip);
	code = collect(h, "stack-crash");
	ktap_check(code == 0, "the collector dumps it", "exit code %d", code);
	KnTaskTerminate(h);
	KnHandleClose(h);
	ktap_counters_back(&s0, "crashes: every frame back");
}

/* A dumpable vmchild that fails in `role`: frozen, not terminated, where it failed; then
 * terminated with every frame back. */
static void dumpable_crash(const char *role, uint64_t vector, uint64_t error, uint64_t cr2, const uint8_t *insn,
			   unsigned insn_len)
{
	KnMemStats s0 = mem_stats();
	KnThreadContext ctx = { 0 };
	Handle h;
	int state = 0, code = 0;
	char name[96];

#define CHECK(cond, what, ...)                                       \
	do {                                                         \
		ksnprintf(name, sizeof(name), "%s: %s", role, what); \
		ktap_check(cond, name, __VA_ARGS__);                 \
	} while (0)
	Retcode rc = KnTaskCreate(role, "vmchild", KN_TASK_DUMPABLE, &h);
	CHECK(rc == rcOk, "a dumpable task", "rc %d", rc);
	if (rc != rcOk)
		return;
	KnTaskResume(h);
	rc = KnTaskWait(h, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, SECONDS(60));
	KnTaskGetState(h, &state);
	CHECK(rc == rcOk && state == KN_TASK_STATE_FROZEN, "frozen by its exception, not terminated", "rc %d state %d",
	      rc, state);
	rc = KnTaskWait(h, KN_TASK_STATE_EXITED, 50000000ull);
	CHECK(rc == rcBusy, "and stays frozen", "rc %d", rc);
	rc = KnTaskGetThreadContext(h, 0, &ctx);
	CHECK(rc == rcOk && ctx.exception == vector && ctx.errorCode == error && ctx.cr2 == cr2 && ctx.cs == 0x2b,
	      "its context names the exception, its error code and address", "exception %llu error %#llx cr2 %#llx",
	      (unsigned long long)ctx.exception, (unsigned long long)ctx.errorCode, (unsigned long long)ctx.cr2);
	uint8_t bytes[8] = { 0 };
	bool read = ctx.rip > 0x400000 && ctx.rip < 0x500000 && peek_task(h, ctx.rip, bytes, insn_len);
	CHECK(read && memcmp(bytes, insn, insn_len) == 0,
	      "rip is the faulting instruction (its bytes, read from the frozen task)",
	      "rip %#llx bytes %02x %02x %02x", (unsigned long long)ctx.rip, bytes[0], bytes[1], bytes[2]);
	printf("    # %s: exception %llu rip %#llx cr2 %#llx\n", role, (unsigned long long)ctx.exception,
	       (unsigned long long)ctx.rip, (unsigned long long)ctx.cr2);
	if (cr2) {
		uint8_t v = 0;
		Handle mdl;
		uint64_t base = 0;
		int flags = 0;
		bool found = region_at(h, cr2, 1, &mdl, &base, &flags);
		if (found)
			KnHandleClose(mdl);
		CHECK(ctx.rdi == cr2 && found && base == cr2 && plain(flags) == (RES_COM | VMM_FLAG_READ) &&
			      peek_task(h, cr2, &v, 1) && v == 1,
		      "the page is read-only and kept what was there before (the write did not happen)",
		      "rdi %#llx base %#llx flags %#x byte %u", (unsigned long long)ctx.rdi, (unsigned long long)base,
		      flags, v);
	}
	rc = KnTaskTerminate(h);
	KnTaskGetState(h, &state);
	KnTaskGetExitCode(h, &code);
	CHECK(rc == rcOk && state == KN_TASK_STATE_EXITED && code == KN_EXIT_TERMINATED, "terminated",
	      "rc %d state %d code %d", rc, state, code);
	KnHandleClose(h);
	ksnprintf(name, sizeof(name), "%s: every frame back", role);
	ktap_counters_back(&s0, name);
#undef CHECK
}

/* A 1 GiB region with 16 resident pages, in a guest whose commit limit is below the
 * collector's 64 MiB mapping window (the 64 MiB configurations): the collector narrows its
 * window instead of failing, and the runner checks every page's bytes in sparse.core. */
static void big_sparse(void)
{
	dump_self_frozen("sparse:1024:16", "actor", "sparse", "a task with a 1 GiB sparse region");
}

int main(void)
{
	ktap_start();
	stack_pregrow(16 * 1024); /* (the deepest calls' stack, before the first snapshot) */
	KnMemStats start = mem_stats();
	self_freeze();
	refusals();
	task_vm_query();
	long_name();
	threaded();
	crashes();
	dumpable_crash("ud-crash", 6, 0, 0, (const uint8_t[]){ 0x0f, 0x0b }, 2);
	/* A user-mode write to a present page: error code P | W | U. */
	dumpable_crash("ro-crash", 14, 7, 0x50000000ull, (const uint8_t[]){ 0xc6, 0x07, 0x02 }, 3);
	big_sparse();
	ktap_counters_back(&start, "test_dump: free pages and commit charge end where they began");
	ktap_done();
}
