/* SPDX-License-Identifier: MIT */
/*
 * Every lock of the kernel has a rank, and this is the list of them, outermost first: a CPU
 * may take a lock only while every lock it already holds has a lower rank (so two locks are
 * always taken in the same order, and no two CPUs can each wait for the other's). Two locks
 * of one rank are never held together (two address spaces, say): nothing needs that today,
 * and whatever does will need an order between them first. Debug builds (KNMM_DEBUG) check
 * every acquisition and panic naming both locks (kernel/lib/spinlock.c). docs/locking.md
 * says what each lock protects and who takes it; a new lock gets its rank here and a line
 * there.
 */
#ifndef KNMM_LOCKRANK_H
#define KNMM_LOCKRANK_H

#include <knmm/compiler.h>

enum lock_rank {
	LOCK_RANK_NONE = 0,        /* below every lock: none held */
	LOCK_RANK_TASKS,           /* the list of tasks (kernel/task.c) */
	LOCK_RANK_TASK,            /* one task's state and threads (struct task) */
	LOCK_RANK_HANDLES,         /* one handle table (kernel/handle.c) */
	LOCK_RANK_VM_SPACE,        /* one address space (struct vm_space) */
	LOCK_RANK_MDLS,            /* the list of MDLs (mm/mdl.c) */
	LOCK_RANK_LOOKASIDE_LISTS, /* the list of lookaside lists (mm/lookaside.c) */
	LOCK_RANK_LOOKASIDE,       /* one lookaside list's free blocks (struct lookaside) */
	LOCK_RANK_POOL,            /* the kernel pool (mm/pool.c) */
	LOCK_RANK_DIRECT_MAP,      /* the direct map's memory types (mm/frame.c) */
	LOCK_RANK_PMM_PCP,         /* one CPU's frame cache (struct pmm_pcp) */
	LOCK_RANK_PMM,             /* the buddy allocator (struct pmm) */
	LOCK_RANK_CHARGE,          /* the commit charge and the accounts (mm/charge.c) */
	LOCK_RANK_SCHED,           /* the run queue, wait queues and thread states (kernel/sched.c) */
	LOCK_RANK_CONSOLE,         /* the console (kernel/lib/log.c) */
	LOCK_RANK_COUNT
};

/*
 * The ranks whose locks interrupt handlers take (a bit per rank): such a lock is taken with
 * interrupts off everywhere (spin_lock_irqsave), or an interrupt on its holder's CPU could
 * wait for it for ever. The timer's handler takes the scheduler's (it ends sleeps). Debug
 * builds check both halves: spin_lock() with interrupts on of such a lock, and any lock of
 * another rank taken inside an interrupt handler, panic.
 */
#define LOCK_RANKS_TAKEN_IN_INTERRUPTS (1u << LOCK_RANK_SCHED)

static inline bool lock_rank_taken_in_interrupts(unsigned rank)
{
	return rank < 32 && (LOCK_RANKS_TAKEN_IN_INTERRUPTS & (1u << rank)) != 0;
}

#endif
