// SPDX-License-Identifier: MIT
/*
 * Linked only into build/kernel-selfcheck.elf. The runner boots it and must report both
 * tests as failures: it proves that `make test` can fail, and it exercises the panic path:
 * a kernel stack overflow into the boot stack's guard page ends in a double fault on its
 * IST stack and a panic that names the stack and prints a backtrace with symbol names.
 */
#include <knmm/ktest.h>

KTEST(selfcheck, deliberate_failure)
{
	KT_EXPECT_EQ(1 + 1, 3);
}

/* Stops only at an absurd depth the 16 KiB boot stack can never reach. */
__noinline static unsigned selfcheck_recurse(unsigned depth)
{
	volatile char frame[256];

	frame[0] = (char)depth;
	if (depth > 1000000)
		return frame[0];
	return selfcheck_recurse(depth + 1) + frame[0];
}

KTEST(selfcheck, stack_overflow_panics)
{
	KT_EXPECT(selfcheck_recurse(0) != 0);
}
