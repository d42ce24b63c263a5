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

/* The order rule: l's rank must be above every rank cpu holds, that is above the last one's. */
static const spinlock_t *conflict_on(unsigned cpu, const spinlock_t *l)
{
	const struct held_locks *h = held_here(cpu);
	const spinlock_t *top = h->n ? h->lock[h->n - 1] : NULL;
	return top && top->rank >= l->rank ? top : NULL;
}

const spinlock_t *spin_order_conflict(const spinlock_t *l) { return conflict_on(spin_this_cpu(), l); }

unsigned spin_held_count(void) { return held_here(spin_this_cpu())->n; }

/* Everything debug builds check before a CPU queues for a lock. */
void spin_check_acquire_(const spinlock_t *l, unsigned cpu, bool irqs_may_be_on)
{
	if (unlikely(READ_ONCE(l->owner) == cpu))
		panic("spinlock '%s' taken recursively", l->name);
	KASSERT_MSG(l->rank > LOCK_RANK_NONE && l->rank < LOCK_RANK_COUNT, "lock '%s' has no rank (%u)", l->name,
		    l->rank);
	const spinlock_t *c = conflict_on(cpu, l);
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

void spin_note_acquired_(const spinlock_t *l, unsigned cpu)
{
	struct held_locks *h = held_here(cpu);
	KASSERT(h->n < LOCK_RANK_COUNT); /* (ranks rise strictly: at most one lock of each) */
	h->lock[h->n++] = l;
}

void spin_note_released_(const spinlock_t *l, unsigned cpu)
{
	if (unlikely(READ_ONCE(l->owner) != cpu))
		panic("unlocking '%s', which this CPU does not hold", l->name);
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

void spin_assert_only_held(const spinlock_t *l, const char *where)
{
	const struct held_locks *h = held_here(spin_this_cpu());
	for (unsigned i = 0; i < h->n; i++)
		if (h->lock[i] != l)
			panic("%s with lock '%s' (rank %u) held", where, h->lock[i]->name, h->lock[i]->rank);
}
#else
const spinlock_t *spin_order_conflict(const spinlock_t *l)
{
	(void)l;
	return NULL;
}
unsigned spin_held_count(void) { return 0; }
#endif

static unsigned cpus_online = 1;
static void (*wait_hook)(void);

void spin_set_cpus_online(unsigned n) { WRITE_ONCE(cpus_online, n); }
void spin_set_wait_hook(void (*hook)(void)) { wait_hook = hook; }

void spin_wait_(spinlock_t *l, uint16_t ticket)
{
	/* (Debug builds looked at the owner before taking the ticket.) With one CPU, the holder
	 * can only be this CPU itself: waiting would never end. */
	if (READ_ONCE(cpus_online) <= 1)
		panic("spinlock '%s' taken recursively", l->name);
	void (*hook)(void) = READ_ONCE(wait_hook);
	while (__atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != ticket) {
		local_cpu_relax();
		if (hook)
			hook(); /* (a TLB shootdown waiting for this CPU: it may hold the lock) */
	}
}

void spin_unlock_unheld_(const spinlock_t *l) { panic("unlocking '%s', which is not held", l->name); }

void spin_assert_held_fail(const spinlock_t *l, const char *file, int line)
{
	panic("lock '%s' not held at %s:%d", l->name, file, line);
}

void spin_break(spinlock_t *l)
{
	WRITE_ONCE(l->owner, (uint16_t)SPIN_NO_OWNER);
	__atomic_store_n(&l->serving, __atomic_load_n(&l->next, __ATOMIC_RELAXED), __ATOMIC_RELEASE);
}
