// SPDX-License-Identifier: MIT
#include <arch/irqflags.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>

bool spin_lock_irqsave(spinlock_t *l)
{
	bool irq = irq_save();

	/* One CPU: a lock already held here can only be held by this very context. */
	if (unlikely(__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)))
		panic("spinlock '%s' taken recursively", l->name);
	return irq;
}

void spin_unlock_irqrestore(spinlock_t *l, bool irq_was_on)
{
	KASSERT_MSG(l->locked, "unlocking '%s', which is not held", l->name);
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
	irq_restore(irq_was_on);
}

void spin_lock(spinlock_t *l)
{
	if (unlikely(__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)))
		panic("spinlock '%s' taken recursively", l->name);
}

void spin_unlock(spinlock_t *l)
{
	KASSERT_MSG(l->locked, "unlocking '%s', which is not held", l->name);
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

void spin_assert_held_fail(const spinlock_t *l, const char *file, int line)
{
	panic("lock '%s' not held at %s:%d", l->name, file, line);
}
