// SPDX-License-Identifier: MIT
/*
 * The children of test_vm, each doing what its task's name says.
 *
 * Most make one memory access the kernel must refuse (SPEC §4.4), at a fixed address so
 * that the runner can assert the exact log line; they must not survive: test_vm checks the
 * exit code, the runner the line "task NAME: KIND at ADDRESS".
 *
 * "vm-churn" leaves regions of every kind behind at exit (the kernel must free them);
 * "vm-fill" commits lazily up to the commit limit and touches every page (which must never
 * fail: the charge was taken up front). Both exit 0 when all went as expected.
 *
 * test_dump runs some of them as KN_TASK_DUMPABLE tasks, to be frozen where they fail:
 * "stack-crash" (its stack guard), "ud-crash" (ud2), "ro-crash" (a write to a read-only page).
 *
 * The lines the kernel logs for them, which the runner (tests/run.py) must find in the part
 * of the log of each test named: test_vm's children (the tests user.vm and, with ASLR and
 * fault-around, user.vm_aslr_faultaround)
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-free: access violation at 0x50000000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-reserved: access violation at 0x50000000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-readonly: access violation at 0x50000000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-readonly-big: access violation at 0x50028000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-nx: access violation at 0x50000000 rip 0x50000000
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-decommitted: access violation at 0x50000000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-guard-low: guard violation at 0x50000000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-guard-high: guard violation at 0x50003000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-grow-guard: guard violation at 0x50000fff rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-overflow: stack overflow at 0x50001000 rip 0x
 * EXPECT-LOG(user.vm user.vm_aslr_faultaround): W task vm-recurse: guard violation at 0x[0-9a-f]+ rip 0x
 * and test_dump's dumpable ones (user.dump), frozen where they fail:
 * EXPECT-LOG(user.dump): W task ud-crash: invalid opcode at 0x[0-9a-f]+ rip 0x[0-9a-f]+ \(frozen for a dump\)
 * EXPECT-LOG(user.dump): W task ro-crash: access violation at 0x50000000 rip 0x[0-9a-f]+ \(frozen for a dump\)
 */
#include <knlib.h>

#define AT   0x50000000ull /* well above the program, away from the stack */
#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define PAGE 4096ull

static void *at(uint64_t a) { return (void *)(uintptr_t)a; }
static uint8_t peek(uint64_t a) { return *(volatile uint8_t *)at(a); }
static void poke(uint64_t a, uint8_t v) { *(volatile uint8_t *)at(a) = v; }

static bool allocate(uint64_t a, uint64_t size, int flags)
{
	void *out;
	Retcode rc = KnVmAllocateEx(at(a), size, flags, &out);
	if (rc != rcOk || out != at(a)) {
		printf("vmchild: KnVmAllocateEx(%#llx) = %d\n", (unsigned long long)a, rc);
		return false;
	}
	return true;
}

/* Deep enough to pass any stack: each frame holds a page the compiler cannot drop. */
static unsigned recurse(unsigned depth)
{
	volatile uint8_t frame[PAGE];
	frame[0] = (uint8_t)depth;
	if (depth == ~0u) /* never: keeps the compiler from calling the recursion infinite */
		return 0;
	return recurse(depth + 1) + frame[0];
}

/* Regions of every kind, left for the kernel to clean up. */
static int churn(void)
{
	uint8_t *lazy = KnVmAllocate(0, 64 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	uint8_t *locked = KnVmAllocate(0, 32 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW);
	uint8_t *stack = KnVmAllocate(0, 32 * PAGE, VMM_FLAG_RESERVE | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD);
	uint8_t *wc = KnVmAllocate(
		0, 8 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW | VMM_FLAG_WRITE_COMBINE | VMM_FLAG_HIGH_GUARD);
	uint8_t *reserved = KnVmAllocate(0, 1ull << 30, VMM_FLAG_RESERVE | VMM_FLAG_READ);
	if (!lazy || !locked || !stack || !wc || !reserved)
		return 1;
	for (unsigned i = 0; i < 64; i += 3)
		lazy[i * PAGE] = 1;
	locked[5] = 1;
	stack[0] = 1; /* grows all the way */
	wc[7 * PAGE] = 1;
	if (KnVmCommit(reserved + (512ull << 20), 16 * PAGE, VMM_FLAG_LOCKED) != rcOk)
		return 2;
	return KnVmProtect(lazy, 8 * PAGE, VMM_FLAG_READ) == rcOk ? 0 : 3;
}

/* Everything the limit allows, committed lazily, then every page touched. */
static int fill(void)
{
	KnMemStats st;
	KnDebugGetStats(&st);
	/* A 2 MiB-aligned place: n pages need n + 3 * ceil(n / 512) of commit. */
	uint64_t left = st.commitLimit - st.commitCharge, n = left;
	while (n + 3 * ((n + 511) / 512) > left)
		n--;
	uint8_t *base = at(0x100000000ull);
	void *out;
	/* The region's own bookkeeping may take a pool page of commit first: come down to it. */
	unsigned tries = 0;
	while (KnVmAllocateEx(base, n * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW, &out) == rcOutOfMemory &&
	       ++tries < 256)
		n--;
	if (tries == 256 || out != base)
		return 1;
	/* The limit is reached: one page in a window of its own (4 pages of commit) fails. */
	if (KnVmAllocate(at(0x200000000ull), PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW) != RTL_NULL)
		return 2;
	for (uint64_t i = 0; i < n; i++)
		base[i * PAGE] = (uint8_t)i;
	for (uint64_t i = 0; i < n; i++)
		if (base[i * PAGE] != (uint8_t)i)
			return 3;
	printf("vm-fill: %llu pages committed and touched, up to the limit\n", (unsigned long long)n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *role = argc > 0 ? argv[0] : "";

	if (!strcmp(role, "vm-churn"))
		return churn();
	if (!strcmp(role, "vm-fill"))
		return fill();
	if (!strcmp(role, "vm-free")) {
		peek(AT);
	} else if (!strcmp(role, "vm-reserved")) {
		if (allocate(AT, PAGE, VMM_FLAG_RESERVE | RW))
			peek(AT);
	} else if (!strcmp(role, "vm-readonly")) {
		if (allocate(AT, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW)) {
			poke(AT, 1);
			if (KnVmProtect(at(AT), PAGE, VMM_FLAG_READ) == rcOk && peek(AT) == 1)
				poke(AT, 2);
		}
	} else if (!strcmp(role, "vm-readonly-big")) {
		/* 64 resident pages, all in the TLB, then read-only: more than a flush batch, so the
		 * kernel flushes everything; a write to any of them must fault. */
		if (allocate(AT, 64 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | RW)) {
			for (unsigned i = 0; i < 64; i++)
				poke(AT + i * PAGE, (uint8_t)i);
			if (KnVmProtect(at(AT), 64 * PAGE, VMM_FLAG_READ) == rcOk && peek(AT + 40 * PAGE) == 40)
				poke(AT + 40 * PAGE, 1);
		}
	} else if (!strcmp(role, "vm-nx")) {
		if (allocate(AT, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW)) {
			poke(AT, 0xc3); /* ret */
			((void (*)(void))at(AT))();
		}
	} else if (!strcmp(role, "vm-decommitted")) {
		if (allocate(AT, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW)) {
			poke(AT, 1);
			if (KnVmDecommit(at(AT), PAGE) == rcOk)
				peek(AT);
		}
	} else if (!strcmp(role, "vm-guard-low") || !strcmp(role, "vm-guard-high")) {
		/* usable [AT + 1 page, AT + 3 pages), guards at AT and AT + 3 pages */
		if (allocate(AT + PAGE, 2 * PAGE,
			     VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD)) {
			poke(AT + PAGE, 1);
			poke(AT + 3 * PAGE - 1, 1);
			peek(role[9] == 'l' ? AT : AT + 3 * PAGE);
		}
	} else if (!strcmp(role, "vm-grow-guard")) {
		/* usable [AT + 1 page, AT + 5 pages), grows down to its bottom, then the guard */
		if (allocate(AT + PAGE, 4 * PAGE, VMM_FLAG_RESERVE | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD)) {
			poke(AT + PAGE, 1);
			peek(AT + PAGE - 1);
		}
	} else if (!strcmp(role, "vm-overflow")) {
		/* A stack larger than the commit limit: growing to its bottom passes it. (Only as
		 * large as that: with ASLR the task's own stack lies somewhere at random, and a
		 * fixed range of 1 TiB would sometimes meet it.) */
		KnMemStats st;
		KnDebugGetStats(&st);
		uint64_t size = ((st.commitLimit + 2048) * PAGE + (1ull << 21) - 1) & ~((1ull << 21) - 1);
		if (allocate(AT + PAGE, size, VMM_FLAG_RESERVE | RW | VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD))
			poke(AT + PAGE, 1);
	} else if (!strcmp(role, "vm-recurse") || !strcmp(role, "stack-crash")) { /* (the dump test's name) */
		recurse(0);
	} else if (!strcmp(role, "ud-crash")) {
		/* test_dump: an invalid opcode; it reads the two bytes at the frozen rip (0f 0b). */
		__asm__ __volatile__("ud2");
	} else if (!strcmp(role, "ro-crash")) {
		/* test_dump: a write to a read-only page, by an instruction of known bytes (c6 07 02:
		 * movb $2, (%rdi)) with rdi = AT; the page keeps the 1 written before. */
		if (allocate(AT, PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW)) {
			poke(AT, 1);
			if (KnVmProtect(at(AT), PAGE, VMM_FLAG_READ) == rcOk)
				__asm__ __volatile__(".byte 0xc6, 0x07, 0x02" : : "D"(AT) : "memory");
		}
	}
	printf("vmchild %s survived\n", role);
	return 99;
}
