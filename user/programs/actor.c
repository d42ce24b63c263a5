// SPDX-License-Identifier: MIT
/*
 * A child that does one thing, named by its task's name, until it is terminated:
 *   actor-wait   blocks in KnTaskWait on the first handle it was given (its parent
 *                terminates it there: a task blocked in a system call must still end)
 *   actor-stats  calls KnDebugGetStats over and over (it may block there while another
 *                task is being torn down)
 *   actor-ac     sets RFLAGS.AC and keeps running and calling the kernel with it set (the
 *                kernel must not run with SMAP off because of it: its debug checks panic)
 *   actor-cache  one lazily committed page in each cache mode at CACHE_AT + i * 2 MiB
 *                (default, WB, WT, WC, UC), touched in that order, then a busy loop: the
 *                kernel's test reads the modes from the task's page tables
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
	if (!strcmp(role, "actor-ac")) {
		__asm__ __volatile__("pushfq; orq $0x40000, (%%rsp); popfq" ::: "memory", "cc");
		for (volatile uint64_t n = 0;; n++)
			if (n % 4096 == 0)
				KnDebugNop(); /* SYSCALL clears AC for the kernel; SYSRET brings it back */
	}
	return 3;
}
