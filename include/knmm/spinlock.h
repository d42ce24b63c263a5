/* SPDX-License-Identifier: MIT */
/*
 * Spinlocks that check themselves (STYLE.md 6). Functions that expect a lock held are named
 * ..._locked and say so with spin_assert_held(). knmm runs one CPU today; the locks are
 * real so that SMP needs no rewrite, and a recursive acquisition panics instead of hanging.
 */
#ifndef KNMM_SPINLOCK_H
#define KNMM_SPINLOCK_H

#include <knmm/compiler.h>

typedef struct spinlock {
	volatile uint32_t locked;
	const char *name;
} spinlock_t;

#define SPINLOCK_INIT(n) { 0, (n) }

/* Takes the lock with interrupts off; returns the previous interrupt state. */
bool spin_lock_irqsave(spinlock_t *l);
void spin_unlock_irqrestore(spinlock_t *l, bool irq_was_on);
/* Takes the lock and leaves interrupts as they are: only for a lock that no interrupt
 * handler takes (the holder is not preempted: the kernel switches only where it blocks). */
void spin_lock(spinlock_t *l);
void spin_unlock(spinlock_t *l);
static inline bool spin_is_locked(const spinlock_t *l) { return READ_ONCE(l->locked) != 0; }
void spin_assert_held_fail(const spinlock_t *l, const char *file, int line);
#define spin_assert_held(l)                                                                        \
	do {                                                                                       \
		if (unlikely(!spin_is_locked(l)))                                                  \
			spin_assert_held_fail((l), __FILE__, __LINE__);                            \
	} while (0)

#endif
