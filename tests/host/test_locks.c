// SPDX-License-Identifier: MIT
/*
 * The locks' rank rule on the host (kernel/lib/spinlock.c as the kernel has it, debug build,
 * one CPU): which acquisitions are allowed, what a CPU's held list looks like as locks come
 * and go in any order. Taking a refused lock would panic (abort), so the tests ask
 * spin_order_conflict() instead; the self-check kernel shows the real panic.
 */
#include <knmm/ktest.h>
#include <knmm/spinlock.h>

static spinlock_t task_lock = SPINLOCK_INIT("test task", LOCK_RANK_TASK);
static spinlock_t space_a = SPINLOCK_INIT("test space a", LOCK_RANK_VM_SPACE);
static spinlock_t space_b = SPINLOCK_INIT("test space b", LOCK_RANK_VM_SPACE);
static spinlock_t pool_lock = SPINLOCK_INIT("test pool", LOCK_RANK_POOL);
static spinlock_t pmm_lock = SPINLOCK_INIT("test pmm", LOCK_RANK_PMM);
static spinlock_t console_lock = SPINLOCK_INIT("test console", LOCK_RANK_CONSOLE);

KTEST(locks, ranks_rise_in_the_documented_order)
{
	/* docs/locking.md's list, outermost first. */
	static const unsigned order[] = {
		LOCK_RANK_TASKS,     LOCK_RANK_TASK,    LOCK_RANK_HANDLES,
		LOCK_RANK_VM_SPACE,  LOCK_RANK_MDLS,    LOCK_RANK_LOOKASIDE_LISTS,
		LOCK_RANK_LOOKASIDE, LOCK_RANK_POOL,    LOCK_RANK_DIRECT_MAP,
		LOCK_RANK_PMM_PCP,   LOCK_RANK_PMM,     LOCK_RANK_CHARGE,
		LOCK_RANK_SCHED,     LOCK_RANK_CONSOLE,
	};
	KT_EXPECT_EQ(ARRAY_SIZE(order), LOCK_RANK_COUNT - 1);
	for (unsigned i = 0; i < ARRAY_SIZE(order); i++)
		KT_EXPECT_EQ(order[i], i + 1);
	/* (docs/locking.md: only the scheduler's, which the timer takes) */
	KT_EXPECT_EQ(LOCK_RANKS_TAKEN_IN_INTERRUPTS, 1u << LOCK_RANK_SCHED);
}

KTEST(locks, nothing_held_allows_any_lock)
{
	KT_ASSERT_EQ(spin_held_count(), 0);
	KT_EXPECT(spin_order_conflict(&task_lock) == NULL);
	KT_EXPECT(spin_order_conflict(&console_lock) == NULL);
}

KTEST(locks, only_higher_ranks_nest)
{
	bool a = spin_lock_irqsave(&space_a);
	KT_EXPECT(spin_held_here(&space_a));
	KT_EXPECT(spin_is_locked(&space_a));
	KT_EXPECT_EQ(spin_held_count(), 1);

	/* Above: allowed. Below or the same rank (another space): refused, naming the holder. */
	KT_EXPECT(spin_order_conflict(&pool_lock) == NULL);
	KT_EXPECT(spin_order_conflict(&console_lock) == NULL);
	KT_EXPECT(spin_order_conflict(&task_lock) == &space_a);
	KT_EXPECT(spin_order_conflict(&space_b) == &space_a);

	bool b = spin_lock_irqsave(&pool_lock);
	spin_lock(&pmm_lock);
	KT_EXPECT_EQ(spin_held_count(), 3);
	/* The highest held decides: pmm refuses the pool's rank though the space allows it. */
	KT_EXPECT(spin_order_conflict(&pool_lock) == &pmm_lock);
	KT_EXPECT(spin_order_conflict(&space_b) == &pmm_lock);
	KT_EXPECT(spin_order_conflict(&console_lock) == NULL);

	spin_unlock(&pmm_lock);
	spin_unlock_irqrestore(&pool_lock, b);
	spin_unlock_irqrestore(&space_a, a);
	KT_EXPECT_EQ(spin_held_count(), 0);
	KT_EXPECT(!spin_is_locked(&space_a));
	KT_EXPECT(!spin_held_here(&pmm_lock));
}

KTEST(locks, release_in_any_order)
{
	spin_lock(&task_lock);
	spin_lock(&pool_lock);
	spin_lock(&console_lock);

	/* The outermost goes first: the others stay, still in rank order. */
	spin_unlock(&task_lock);
	KT_EXPECT_EQ(spin_held_count(), 2);
	KT_EXPECT(spin_order_conflict(&task_lock) == &console_lock);
	spin_unlock(&console_lock);
	KT_EXPECT_EQ(spin_held_count(), 1);
	KT_EXPECT(spin_order_conflict(&pmm_lock) == NULL);
	KT_EXPECT(spin_order_conflict(&task_lock) == &pool_lock);
	spin_unlock(&pool_lock);
	KT_EXPECT_EQ(spin_held_count(), 0);

	/* A released lock can be taken again, and its tickets move on. */
	spin_lock(&task_lock);
	KT_EXPECT(spin_held_here(&task_lock));
	spin_unlock(&task_lock);
	KT_EXPECT_EQ(task_lock.next, task_lock.serving);
	KT_EXPECT_EQ(task_lock.owner, SPIN_NO_OWNER);
}

KTEST(locks, break_frees_a_held_lock)
{
	/* What panic does to the console lock: whoever held it, it is free afterwards. */
	spinlock_t l = SPINLOCK_INIT("test broken", LOCK_RANK_CONSOLE);
	l.next = 5;
	l.serving = 4;
	l.owner = 3;
	spin_break(&l);
	KT_EXPECT(!spin_is_locked(&l));
	KT_EXPECT_EQ(l.owner, SPIN_NO_OWNER);
}
