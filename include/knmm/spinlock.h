/* SPDX-License-Identifier: MIT */
/*
 * Spinlocks that check themselves (STYLE.md 6, SPEC §11, docs/locking.md).
 *
 * A ticket lock: CPUs that want it take a ticket and spin (cpu_relax) until it is served, in
 * the order they came. Each lock knows the CPU holding it (its owner) and has a rank
 * (knmm/lockrank.h). Every build panics when a CPU takes a lock it already holds ("taken
 * recursively") or releases one it does not hold. Debug builds (KNMM_DEBUG) also keep, per
 * CPU, the locks it holds, and panic when one is taken out of rank order, naming both, or
 * breaks the interrupt rule of lockrank.h.
 *
 * Functions that expect a lock held are named ..._locked and say so with spin_assert_held()
 * (in debug builds: held by this CPU; otherwise: held).
 *
 * The CPU number comes from a hook that arch registers once per-CPU data is set up
 * (spin_set_cpu_ops); until then every lock is taken by CPU 0.
 */
#ifndef KNMM_SPINLOCK_H
#define KNMM_SPINLOCK_H

#include <knmm/compiler.h>
#include <knmm/lockrank.h>

#define SPIN_MAX_CPUS 64
#define SPIN_NO_OWNER 0xffffu

typedef struct spinlock {
	uint16_t next;    /* the ticket the next CPU to come takes */
	uint16_t serving; /* the ticket now allowed in: free when serving == next */
	uint16_t owner;   /* the CPU holding it, SPIN_NO_OWNER while free */
	uint8_t rank;     /* enum lock_rank */
	uint8_t reserved;
	const char *name;
} spinlock_t;

/* Every lock is defined with its name and rank: SPINLOCK_INIT("pool", LOCK_RANK_POOL). */
#define SPINLOCK_INIT(n, r) { 0, 0, SPIN_NO_OWNER, (uint8_t)(r), 0, (n) }

/* Takes the lock with interrupts off; returns the previous interrupt state. */
bool spin_lock_irqsave(spinlock_t *l);
void spin_unlock_irqrestore(spinlock_t *l, bool irq_was_on);
/* Takes the lock and leaves interrupts as they are: only for a lock that no interrupt
 * handler takes (the holder is not preempted: the kernel switches only where it blocks). */
void spin_lock(spinlock_t *l);
void spin_unlock(spinlock_t *l);

/* Whether some CPU holds the lock (a snapshot: only its holder can rely on it). */
static inline bool spin_is_locked(const spinlock_t *l)
{
	return READ_ONCE(l->next) != READ_ONCE(l->serving);
}

/* This CPU's number, as the registered hook says (0 before it is). */
extern unsigned (*spin_cpu_id_hook)(void);
static inline unsigned spin_this_cpu(void) { return spin_cpu_id_hook ? spin_cpu_id_hook() : 0; }

/* Whether this CPU holds the lock. */
static inline bool spin_held_here(const spinlock_t *l) { return READ_ONCE(l->owner) == spin_this_cpu(); }

void spin_assert_held_fail(const spinlock_t *l, const char *file, int line);
#ifdef KNMM_DEBUG
#define spin_assert_held(l)                                                                        \
	do {                                                                                       \
		if (unlikely(!spin_held_here(l)))                                                  \
			spin_assert_held_fail((l), __FILE__, __LINE__);                            \
	} while (0)
#else
#define spin_assert_held(l)                                                                        \
	do {                                                                                       \
		if (unlikely(READ_ONCE((l)->owner) == SPIN_NO_OWNER))                              \
			spin_assert_held_fail((l), __FILE__, __LINE__);                            \
	} while (0)
#endif

/* Debug builds: panics unless this CPU holds no lock (before it blocks or switches). */
#ifdef KNMM_DEBUG
void spin_assert_none_held(const char *where);
#else
static inline void spin_assert_none_held(const char *where) { (void)where; }
#endif

/*
 * What the locks need from arch, registered once per-CPU data works:
 *   cpu_id        this CPU's number, below SPIN_MAX_CPUS
 *   in_interrupt  whether this CPU is running an interrupt handler (debug checks only)
 */
struct spin_cpu_ops {
	unsigned (*cpu_id)(void);
	bool (*in_interrupt)(void);
};
void spin_set_cpu_ops(const struct spin_cpu_ops *ops);

/*
 * Debug builds: the lock this CPU holds that forbids taking l now (one of l's rank or
 * above), or NULL. Taking l then panics; tests ask first.
 */
const spinlock_t *spin_order_conflict(const spinlock_t *l);
/* Debug builds: how many locks this CPU holds (0 otherwise). */
unsigned spin_held_count(void);

/* For panic: frees the lock whoever holds it (the holder may be the panicking context). */
void spin_break(spinlock_t *l);

#endif
