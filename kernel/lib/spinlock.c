// SPDX-License-Identifier: MIT
/* Ticket spinlocks with an owner and a rank (knmm/spinlock.h, docs/locking.md). */
#include <knmm/irqflags.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>

unsigned (*spin_cpu_id_hook)(void);
static bool (*in_interrupt_hook)(void);

void spin_set_cpu_ops(const struct spin_cpu_ops *ops)
{
	in_interrupt_hook = ops->in_interrupt;
	spin_cpu_id_hook = ops->cpu_id;
}

#ifdef KNMM_DEBUG
/*
 * The locks each CPU holds, in the order it took them: ranks rise along the array, so the
 * last one has the highest. Only its own CPU touches an entry (with the lock's acquisition
 * or release), so an entry needs no lock of its own.
 */
struct held_locks {
	const spinlock_t *lock[LOCK_RANK_COUNT];
	unsigned n;
};
static struct held_locks held[SPIN_MAX_CPUS];

static struct held_locks *held_here(unsigned cpu)
{
	KASSERT_MSG(cpu < SPIN_MAX_CPUS, "CPU %u: locks track %u CPUs", cpu, SPIN_MAX_CPUS);
	return &held[cpu];
}

const spinlock_t *spin_order_conflict(const spinlock_t *l)
{
	const struct held_locks *h = held_here(spin_this_cpu());
	const spinlock_t *top = h->n ? h->lock[h->n - 1] : NULL;
	return top && top->rank >= l->rank ? top : NULL;
}

unsigned spin_held_count(void) { return held_here(spin_this_cpu())->n; }

/* Everything debug builds check before a CPU queues for a lock. */
static void check_acquire(const spinlock_t *l, bool irqs_may_be_on)
{
	KASSERT_MSG(l->rank > LOCK_RANK_NONE && l->rank < LOCK_RANK_COUNT, "lock '%s' has no rank (%u)", l->name,
		    l->rank);
	const spinlock_t *c = spin_order_conflict(l);
	if (unlikely(c))
		panic("lock order: taking '%s' (rank %u) while holding '%s' (rank %u)", l->name, l->rank, c->name,
		      c->rank);
	bool irq_rank = lock_rank_taken_in_interrupts(l->rank);
	if (unlikely(irqs_may_be_on && irq_rank && local_irq_enabled()))
		panic("lock '%s' (rank %u) is taken by interrupt handlers: spin_lock() with interrupts on", l->name,
		      l->rank);
	if (unlikely(!irq_rank && in_interrupt_hook && in_interrupt_hook()))
		panic("lock '%s' (rank %u) taken in an interrupt handler: its rank is not one interrupt handlers take",
		      l->name, l->rank);
}

static void note_acquired(const spinlock_t *l, unsigned cpu)
{
	struct held_locks *h = held_here(cpu);
	KASSERT(h->n < LOCK_RANK_COUNT); /* (ranks rise strictly: at most one lock of each) */
	h->lock[h->n++] = l;
}

static void note_released(const spinlock_t *l, unsigned cpu)
{
	struct held_locks *h = held_here(cpu);
	unsigned i = h->n;
	while (i > 0 && h->lock[i - 1] != l)
		i--;
	KASSERT_MSG(i > 0, "releasing '%s', which this CPU's held locks do not list", l->name);
	for (; i < h->n; i++) /* (a lock may go before those taken after it: the rest stay sorted) */
		h->lock[i - 1] = h->lock[i];
	h->n--;
}

void spin_assert_none_held(const char *where)
{
	const struct held_locks *h = held_here(spin_this_cpu());
	if (unlikely(h->n))
		panic("%s with lock '%s' (rank %u) held", where, h->lock[h->n - 1]->name, h->lock[h->n - 1]->rank);
}
#else
const spinlock_t *spin_order_conflict(const spinlock_t *l)
{
	(void)l;
	return NULL;
}
unsigned spin_held_count(void) { return 0; }
#endif

static inline void acquire(spinlock_t *l, bool irqs_may_be_on)
{
	unsigned cpu = spin_this_cpu();

	/* Only this CPU ever writes its own number into owner, and clears it before it lets go. */
	if (unlikely(READ_ONCE(l->owner) == cpu))
		panic("spinlock '%s' taken recursively", l->name);
#ifdef KNMM_DEBUG
	check_acquire(l, irqs_may_be_on);
#else
	(void)irqs_may_be_on;
#endif
	uint16_t ticket = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
	while (__atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != ticket)
		cpu_relax();
	WRITE_ONCE(l->owner, (uint16_t)cpu);
#ifdef KNMM_DEBUG
	note_acquired(l, cpu);
#endif
}

static inline void release(spinlock_t *l)
{
#ifdef KNMM_DEBUG
	unsigned cpu = spin_this_cpu();
	if (unlikely(READ_ONCE(l->owner) != cpu))
		panic("unlocking '%s', which this CPU does not hold", l->name);
	note_released(l, cpu);
#else
	if (unlikely(READ_ONCE(l->owner) == SPIN_NO_OWNER))
		panic("unlocking '%s', which is not held", l->name);
#endif
	WRITE_ONCE(l->owner, (uint16_t)SPIN_NO_OWNER);
	/* Only the holder writes serving: the next ticket in line goes in. */
	__atomic_store_n(&l->serving, (uint16_t)(l->serving + 1), __ATOMIC_RELEASE);
}

bool spin_lock_irqsave(spinlock_t *l)
{
	bool irq = local_irq_save();
	acquire(l, false);
	return irq;
}

void spin_unlock_irqrestore(spinlock_t *l, bool irq_was_on)
{
	release(l);
	local_irq_restore(irq_was_on);
}

void spin_lock(spinlock_t *l) { acquire(l, true); }

void spin_unlock(spinlock_t *l) { release(l); }

void spin_assert_held_fail(const spinlock_t *l, const char *file, int line)
{
	panic("lock '%s' not held at %s:%d", l->name, file, line);
}

void spin_break(spinlock_t *l)
{
	WRITE_ONCE(l->owner, (uint16_t)SPIN_NO_OWNER);
	__atomic_store_n(&l->serving, __atomic_load_n(&l->next, __ATOMIC_RELAXED), __ATOMIC_RELEASE);
}
