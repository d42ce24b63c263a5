// SPDX-License-Identifier: MIT
/*
 * Linked only into build/kernel-selfcheck.elf. The runner boots it and must report both
 * tests as failures: it proves that `make test` can fail, and it exercises the panic path:
 * overflowing a kernel stack (from the dynamic area) into its guard page ends in a double
 * fault on its IST stack and a panic that names the stack and prints a backtrace with
 * symbol names.
 */
#include <arch/trap.h>
#include <knmm/ktest.h>
#include <mm/mm.h>

KTEST(selfcheck, deliberate_failure) { KT_EXPECT_EQ(1 + 1, 3); }

/* Stops only at an absurd depth the 16 KiB boot stack can never reach. */
__noinline static unsigned selfcheck_recurse(unsigned depth)
{
	volatile char frame[256];

	frame[0] = (char)depth;
	if (depth > 1000000)
		return frame[0];
	return selfcheck_recurse(depth + 1) + frame[0];
}

static void overflow(void *arg) { *(unsigned *)arg = selfcheck_recurse(0); }

KTEST(selfcheck, stack_overflow_panics)
{
	uint64_t base;
	unsigned result = 0;

	KT_ASSERT_EQ(kstack_alloc("selfcheck", 16384, &base), rcOk);
	arch_call_on_stack(overflow, &result, base + 16384);
	KT_EXPECT(result != 0);
}
