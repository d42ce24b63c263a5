// SPDX-License-Identifier: MIT
/*
 * A child that does one thing, named by its task's name, until it is terminated:
 *   actor-wait   blocks in KnTaskWait on the first handle it was given (its parent
 *                terminates it there: a task blocked in a system call must still end)
 *   actor-stats  calls KnDebugGetStats over and over (it may block there while another
 *                task is being torn down)
 *   actor-ac     sets RFLAGS.AC and keeps running and calling the kernel with it set (the
 *                kernel must not run with SMAP off because of it: its debug checks panic)
 *   sparse:M:N   reserves M MiB at 64 GiB, commits and touches N pages spread evenly over
 *                it, then freezes itself (what make bench dumps)
 *   actor-cache  one lazily committed page in each cache mode at CACHE_AT + i * 2 MiB
 *                (default, WB, WT, WC, UC), touched in that order, then a busy loop: the
 *                kernel's test reads the modes from the task's page tables
 *   actor-freeze-parent  starts actor-freezer with a FREEZE handle to itself, then waits
 *                for it for ever: the child freezes it (the kernel running it must not
 *                wait for ever)
 *   actor-freezer  freezes the task of the first handle it was given, then exits
 */
#include <knlib.h>

int main(int argc, char **argv)
{
	const char *role = argc > 0 ? argv[0] : "";
	KnMemStats st;

	if (!strcmp(role, "actor-wait")) {
		Handle h;
		int type;
		rtl_uint32_t rights;
		if (KnHandleEnumerate(0, &h, &type, &rights) != rcOk)
			return 1;
		KnTaskWait(h, KN_TASK_STATE_EXITED, ~0ull);
		return 2; /* it must not come back */
	}
	if (!strcmp(role, "actor-stats")) {
		for (;;)
			KnDebugGetStats(&st);
	}
	if (!strncmp(role, "sparse:", 7)) {
		uint64_t mib = 0, n = 0;
		const char *p = role + 7;
		while (*p >= '0' && *p <= '9')
			mib = mib * 10 + (uint64_t)(*p++ - '0');
		if (*p++ != ':')
			return 5;
		while (*p >= '0' && *p <= '9')
			n = n * 10 + (uint64_t)(*p++ - '0');
		uint64_t pages = mib << 8;
		uint8_t *base = KnVmAllocate((void *)0x1000000000ull, mib << 20,
					     VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE);
		if (!base || !n || n > pages)
			return 6;
		for (uint64_t i = 0; i < n; i++) {
			uint8_t *page = base + (i * (pages / n) + 1) % pages * 4096;
			if (KnVmCommit(page, 4096, 0) != rcOk)
				return 7;
			*page = (uint8_t)i;
		}
		KnTaskFreeze(KN_HANDLE_SELF);
		return 8; /* (never) */
	}
	if (!strcmp(role, "actor-cache")) {
		static const int modes[] = { 0, VMM_FLAG_WRITE_BACK, VMM_FLAG_WRITE_THROUGH, VMM_FLAG_WRITE_COMBINE,
					     VMM_FLAG_CACHE_DISABLE };
		for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			volatile uint8_t *p = KnVmAllocate((void *)(0x60000000ull + i * 0x200000ull), 4096,
							   VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_READ |
								   VMM_FLAG_WRITE | modes[i]);
			if (!p)
				return 4;
			*p = 1;
		}
		for (;;)
			;
	}
	if (!strcmp(role, "actor-freeze-parent")) {
		Handle child, remote;
		if (KnTaskCreate("actor-freezer", "actor", 0, &child) != rcOk ||
		    KnHandleTransfer(child, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &remote) != rcOk)
			return 9;
		KnTaskResume(child);
		KnTaskWait(child, KN_TASK_STATE_EXITED, ~0ull);
		for (;;) /* (frozen before it gets here) */
			KnTaskWait(KN_HANDLE_SELF, KN_TASK_STATE_FROZEN, ~0ull);
	}
	if (!strcmp(role, "actor-freezer")) {
		Handle h;
		int type;
		rtl_uint32_t rights;
		if (KnHandleEnumerate(0, &h, &type, &rights) != rcOk)
			return 10;
		return KnTaskFreeze(h) == rcOk ? 0 : 11;
	}
	if (!strcmp(role, "actor-ac")) {
		__asm__ __volatile__("pushfq; orq $0x40000, (%%rsp); popfq" ::: "memory", "cc");
		for (volatile uint64_t n = 0;; n++)
			if (n % 4096 == 0)
				KnDebugNop(); /* SYSCALL clears AC for the kernel; SYSRET brings it back */
	}
	return 3;
}
