// SPDX-License-Identifier: MIT
/* Lookaside lists: fixed-size blocks over the pool, with a depth (see mm/pool.h). */
#include <knmm/panic.h>
#include <mm/pool.h>

static struct lookaside *all_lists;
static spinlock_t lists_lock = SPINLOCK_INIT("lookaside lists", LOCK_RANK_LOOKASIDE_LISTS);

void lookaside_register(struct lookaside *l)
{
	bool irq = spin_lock_irqsave(&lists_lock);
	if (!l->registered) {
		l->registered = true;
		l->next_list = all_lists;
		all_lists = l;
	}
	spin_unlock_irqrestore(&lists_lock, irq);
}

struct lookaside *lookaside_lists(void) { return all_lists; }

void *lookaside_alloc(struct lookaside *l)
{
	bool irq = spin_lock_irqsave(&l->lock);
	void *p = l->head;
	l->allocs++;
	if (p) {
		l->head = *(void **)p;
		l->count--;
		l->hits++;
	} else {
		l->misses++;
	}
	spin_unlock_irqrestore(&l->lock, irq);
	return p ? p : pool_alloc(l->size, l->tag);
}

void lookaside_free(struct lookaside *l, void *p)
{
	if (!p)
		return;
#ifdef KNMM_DEBUG
	/* Parked blocks skip pool_free, so debug builds check their red zones here, as pool_free
	 * would (release builds check them when the list gives them back to the pool). */
	char why[96];
	if (pool_check(p, why, sizeof(why)) != rcOk)
		panic("lookaside_free(%s): %s", l->name, why);
#endif
	bool irq = spin_lock_irqsave(&l->lock);
	l->frees++;
	if (l->count < l->depth) {
		*(void **)p = l->head;
		l->head = p;
		l->count++;
		p = NULL;
	}
	spin_unlock_irqrestore(&l->lock, irq);
	if (p)
		pool_free(p);
}

void lookaside_trim(struct lookaside *l)
{
	bool irq = spin_lock_irqsave(&l->lock);
	void *p = l->head;
	l->head = NULL;
	l->count = 0;
	spin_unlock_irqrestore(&l->lock, irq);
	while (p) {
		void *next = *(void **)p;
		pool_free(p);
		p = next;
	}
}
