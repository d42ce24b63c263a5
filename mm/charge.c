// SPDX-License-Identifier: MIT
/*
 * The global charge and the accounts' counters behind quotas (mm/charge.h, docs/quotas.md).
 * Calls nothing else of mm: the pool and everything above it charge through here. The
 * account objects themselves are mm/account.c's.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>
#include <mm/charge.h>

/* The global charge and every account's counters: one leaf lock. */
static spinlock_t charge_lock = SPINLOCK_INIT("charge", LOCK_RANK_CHARGE);
static struct charge_stats global_charge;

/* ------------------------------------------------------------------ the global charge */

void charge_init(uint64_t limit_pages)
{
	bool irq = spin_lock_irqsave(&charge_lock);
	global_charge.limit = limit_pages;
	spin_unlock_irqrestore(&charge_lock, irq);
}

static bool global_fits_locked(uint64_t pages)
{
	spin_assert_held(&charge_lock);
	return pages <= global_charge.limit - global_charge.total;
}

static void global_take_locked(uint64_t pages)
{
	spin_assert_held(&charge_lock);
	global_charge.total += pages;
	global_charge.peak = MAX(global_charge.peak, global_charge.total);
}

static void global_give_locked(uint64_t pages)
{
	spin_assert_held(&charge_lock);
	KASSERT_MSG(pages <= global_charge.total, "uncharging %llu pages, only %llu charged", (unsigned long long)pages,
		    (unsigned long long)global_charge.total);
	global_charge.total -= pages;
}

void charge_locked_pages_add(int64_t pages)
{
	bool irq = spin_lock_irqsave(&charge_lock);
	global_charge.locked += (uint64_t)pages;
	spin_unlock_irqrestore(&charge_lock, irq);
}

void charge_get(struct charge_stats *out)
{
	bool irq = spin_lock_irqsave(&charge_lock);
	*out = global_charge;
	spin_unlock_irqrestore(&charge_lock, irq);
}

uint64_t charge_total(void) { return READ_ONCE(global_charge.total); }

/* ------------------------------------------------------------------ accounts */

/* Whether n more of res fits under a's limit and every ancestor's. */
static bool chain_fits_locked(const struct account *a, enum acct_res res, uint64_t n)
{
	spin_assert_held(&charge_lock);
	for (; a; a = a->parent)
		if (n > a->limit[res] || a->usage[res] > a->limit[res] - n)
			return false;
	return true;
}

static void chain_add_locked(struct account *a, enum acct_res res, uint64_t n)
{
	spin_assert_held(&charge_lock);
	for (; a; a = a->parent)
		a->usage[res] += n;
}

static void chain_sub_locked(struct account *a, enum acct_res res, uint64_t n)
{
	spin_assert_held(&charge_lock);
	for (; a; a = a->parent) {
		KASSERT_MSG(a->usage[res] >= n, "account %llu: uncharging %llu of resource %d, only %llu charged",
			    (unsigned long long)a->id, (unsigned long long)n, res, (unsigned long long)a->usage[res]);
		a->usage[res] -= n;
	}
}

Retcode account_charge(struct account *a, enum acct_res res, uint64_t n)
{
	if (!a || !n)
		return rcOk;
	bool irq = spin_lock_irqsave(&charge_lock);
	bool ok = chain_fits_locked(a, res, n);
	if (ok)
		chain_add_locked(a, res, n);
	spin_unlock_irqrestore(&charge_lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

void account_uncharge(struct account *a, enum acct_res res, uint64_t n)
{
	if (!a || !n)
		return;
	bool irq = spin_lock_irqsave(&charge_lock);
	chain_sub_locked(a, res, n);
	spin_unlock_irqrestore(&charge_lock, irq);
}

Retcode charge_take(struct account *a, uint64_t pages)
{
	if (!pages)
		return rcOk;
	bool irq = spin_lock_irqsave(&charge_lock);
	bool ok = global_fits_locked(pages) && (!a || chain_fits_locked(a, ACCT_CHARGE, pages));
	if (ok) {
		global_take_locked(pages);
		chain_add_locked(a, ACCT_CHARGE, pages);
	}
	spin_unlock_irqrestore(&charge_lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

void charge_release(struct account *a, uint64_t pages)
{
	if (!pages)
		return;
	bool irq = spin_lock_irqsave(&charge_lock);
	global_give_locked(pages);
	chain_sub_locked(a, ACCT_CHARGE, pages);
	spin_unlock_irqrestore(&charge_lock, irq);
}

Retcode account_charge_kmem(struct account *a, uint64_t bytes)
{
	if (!a || !bytes)
		return rcOk;
	bool irq = spin_lock_irqsave(&charge_lock);
	uint64_t pages = pages_of(a->kmem + bytes) - pages_of(a->kmem);
	bool ok = chain_fits_locked(a, ACCT_CHARGE, pages);
	if (ok) {
		a->kmem += bytes;
		chain_add_locked(a, ACCT_CHARGE, pages);
	}
	spin_unlock_irqrestore(&charge_lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

void account_uncharge_kmem(struct account *a, uint64_t bytes)
{
	if (!a || !bytes)
		return;
	bool irq = spin_lock_irqsave(&charge_lock);
	KASSERT_MSG(a->kmem >= bytes, "account %llu: uncharging %llu bytes of %llu", (unsigned long long)a->id,
		    (unsigned long long)bytes, (unsigned long long)a->kmem);
	uint64_t pages = pages_of(a->kmem) - pages_of(a->kmem - bytes);
	a->kmem -= bytes;
	chain_sub_locked(a, ACCT_CHARGE, pages);
	spin_unlock_irqrestore(&charge_lock, irq);
}

void account_set_limits(struct account *a, const uint64_t limit[ACCT_NR])
{
	bool irq = spin_lock_irqsave(&charge_lock);
	memcpy(a->limit, limit, sizeof(a->limit));
	spin_unlock_irqrestore(&charge_lock, irq);
}

void account_read(const struct account *a, uint64_t limit[ACCT_NR], uint64_t usage[ACCT_NR])
{
	bool irq = spin_lock_irqsave(&charge_lock);
	memcpy(limit, a->limit, sizeof(a->limit));
	memcpy(usage, a->usage, sizeof(a->usage));
	spin_unlock_irqrestore(&charge_lock, irq);
}
