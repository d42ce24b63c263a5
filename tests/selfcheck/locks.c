// SPDX-License-Identifier: MIT
/*
 * Linked only into build/kernel-selfcheck.elf, and booted by the runner on its own command
 * line (test=selfcheck_locks.*: the boot of selfcheck.c's tests ends in their panic). It
 * takes two real locks out of rank order (knmm/lockrank.h): the kernel space's lock while
 * holding the physical allocator's. A debug kernel must panic naming both,
 *   lock order: taking 'vm space' (rank 4) while holding 'pmm' (rank 10)
 * and the runner checks that it did. Without debug checks (DEBUG=0) there is no order to
 * check: the test says so and skips.
 */
#include <knmm/ktest.h>
#include <knmm/spinlock.h>
#include <mm/pmm.h>
#include <mm/vm.h>

KTEST(selfcheck_locks, out_of_order_panics)
{
#ifdef KNMM_DEBUG
	bool irq = spin_lock_irqsave(&pmm_main.lock);
	bool refused = spin_order_conflict(&kernel_space.lock) == &pmm_main.lock;
	if (refused)
		spin_lock_irqsave(&kernel_space.lock); /* panics */
	spin_unlock_irqrestore(&pmm_main.lock, irq);
	KT_EXPECT(refused);
	ktest_fail(t, __FILE__, __LINE__, "a lock taken out of rank order did not panic");
#else
	ktest_skip(t, "no lock order checks without KNMM_DEBUG");
#endif
}
