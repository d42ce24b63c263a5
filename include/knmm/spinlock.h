/* SPDX-License-Identifier: MIT */
/*
 * Spinlocks that check themselves (STYLE.md 6, SPEC §11, docs/locking.md).
 *
 * A ticket lock: CPUs that want it take a ticket and spin (cpu_relax) until it is served, in
 * the order they came. Every lock has a rank (knmm/lockrank.h).
 *
 * Debug builds (KNMM_DEBUG, the default make) record each lock's owner (the CPU holding it)
 * and keep, per CPU, the locks it holds. They panic when a CPU takes a lock it holds
 * already ("taken recursively"), takes one out of rank order (naming both), breaks the
 * interrupt rule of lockrank.h, or releases a lock it does not hold.
 *
 * Builds without debug checks (DEBUG=0, the benchmark kernel) keep the fast path to a ticket
 * and a compare: no owner is recorded. They panic on a lock released while free, and, while
 * one CPU runs, on a lock found held on the way in (it can only be this CPU's: taken
 * recursively); with several CPUs that case spins.
 *
 * Functions that expect a lock held are named ..._locked and say so with spin_assert_held(),
 * which debug builds check (held by this CPU) and other builds compile away.
 *
 * The CPU number comes from a hook that arch registers once per-CPU data is set up
 * (spin_set_cpu_ops); until then every lock is taken by CPU 0.
 */
#ifndef KNMM_SPINLOCK_H
#define KNMM_SPINLOCK_H

#include <knmm/compiler.h>
#include <knmm/irqflags.h>
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
#define SPINLOCK_INIT(n, r)                               \
	{                                                 \
		0, 0, SPIN_NO_OWNER, (uint8_t)(r), 0, (n) \
	}

/* This CPU's number, as the registered hook says (0 before it is). */
extern unsigned (*spin_cpu_id_hook)(void);
static inline unsigned spin_this_cpu(void) { return spin_cpu_id_hook ? spin_cpu_id_hook() : 0; }

/* Whether some CPU holds the lock (a snapshot: only its holder can rely on it). */
static inline bool spin_is_locked(const spinlock_t *l) { return READ_ONCE(l->next) != READ_ONCE(l->serving); }

#ifdef KNMM_DEBUG
/* Whether this CPU holds the lock (debug builds: the others record no owner). */
static inline bool spin_held_here(const spinlock_t *l) { return READ_ONCE(l->owner) == spin_this_cpu(); }
#endif

/* The slow paths and the debug checks, out of line (kernel/lib/spinlock.c). */
void spin_wait_(spinlock_t *l, uint16_t ticket);
__noreturn void spin_unlock_unheld_(const spinlock_t *l);
#ifdef KNMM_DEBUG
void spin_check_acquire_(const spinlock_t *l, unsigned cpu, bool irqs_may_be_on);
void spin_note_acquired_(const spinlock_t *l, unsigned cpu);
void spin_note_released_(const spinlock_t *l, unsigned cpu);
#endif

/*
 * The fast paths are inline. A free lock costs a ticket and a compare; debug builds also
 * ask the CPU's number, record the owner and check the order.
 */
static __always_inline void spin_acquire_(spinlock_t *l, bool irqs_may_be_on)
{
#ifdef KNMM_DEBUG
	unsigned cpu = spin_this_cpu();
	spin_check_acquire_(l, cpu, irqs_may_be_on);
#else
	(void)irqs_may_be_on;
#endif
	uint16_t ticket = __atomic_fetch_add(&l->next, 1, __ATOMIC_ACQUIRE);
	if (unlikely(__atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != ticket))
		spin_wait_(l, ticket);
#ifdef KNMM_DEBUG
	WRITE_ONCE(l->owner, (uint16_t)cpu);
	spin_note_acquired_(l, cpu);
#endif
}

static __always_inline void spin_release_(spinlock_t *l)
{
#ifdef KNMM_DEBUG
	spin_note_released_(l, spin_this_cpu());
	WRITE_ONCE(l->owner, (uint16_t)SPIN_NO_OWNER);
#else
	if (unlikely(!spin_is_locked(l)))
		spin_unlock_unheld_(l);
#endif
	/* Only the holder writes serving: the next ticket in line goes in. */
	__atomic_store_n(&l->serving, (uint16_t)(l->serving + 1), __ATOMIC_RELEASE);
}

/* Takes the lock with interrupts off; returns the previous interrupt state. */
static __always_inline bool spin_lock_irqsave(spinlock_t *l)
{
	bool irq = local_irq_save();
	spin_acquire_(l, false);
	return irq;
}

static __always_inline void spin_unlock_irqrestore(spinlock_t *l, bool irq_was_on)
{
	spin_release_(l);
	local_irq_restore(irq_was_on);
}

/* Takes the lock and leaves interrupts as they are: only for a lock that no interrupt
 * handler takes (the holder is not preempted: the kernel switches only where it blocks). */
static __always_inline void spin_lock(spinlock_t *l) { spin_acquire_(l, true); }
static __always_inline void spin_unlock(spinlock_t *l) { spin_release_(l); }

void spin_assert_held_fail(const spinlock_t *l, const char *file, int line);
#ifdef KNMM_DEBUG
#define spin_assert_held(l)                                             \
	do {                                                            \
		if (unlikely(!spin_held_here(l)))                       \
			spin_assert_held_fail((l), __FILE__, __LINE__); \
	} while (0)
#else
#define spin_assert_held(l) ((void)sizeof(l))
#endif

/* Debug builds: panics unless this CPU holds no lock (before it blocks or switches), or no
 * lock but l (the scheduler's, across a switch). */
#ifdef KNMM_DEBUG
void spin_assert_none_held(const char *where);
void spin_assert_only_held(const spinlock_t *l, const char *where);
#else
static inline void spin_assert_none_held(const char *where) { (void)where; }
static inline void spin_assert_only_held(const spinlock_t *l, const char *where)
{
	(void)l;
	(void)where;
}
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
/* How many CPUs take locks (1 until arch starts others): with one, a lock found held on the
 * way in is held by this very CPU, and builds without the owner panic on it too. */
void spin_set_cpus_online(unsigned n);
/* Called on every turn of a contended lock's wait loop: arch answers the TLB shootdown
 * requests addressed to this CPU there, so that a CPU spinning with interrupts off never
 * holds up another that waits, holding the lock, for its acknowledgement. */
void spin_set_wait_hook(void (*hook)(void));

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
