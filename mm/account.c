// SPDX-License-Identifier: MIT
/*
 * Account objects and the pool blocks charged to them as bookkeeping (mm/charge.h,
 * docs/quotas.md). Above the pool, which is itself charged through mm/charge.c.
 */
#include <knmm/align.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/charge.h>
#include <mm/pool.h>

#define ACCT_TAG POOL_TAG('A', 'c', 'c', 't')

struct account *account_create(struct account *parent, uint64_t id)
{
	uint64_t cost = pool_block_cost(sizeof(struct account));
	/* Every charge walks the chain to the top: its length is bounded. */
	if (parent && parent->depth + 1 >= ACCT_MAX_DEPTH)
		return NULL;
	struct account *a = pool_alloc(sizeof(*a), ACCT_TAG);
	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	a->refs = 1;
	a->id = id;
	a->depth = parent ? parent->depth + 1 : 0;
	for (unsigned r = 0; r < ACCT_NR; r++)
		a->limit[r] = ACCT_UNLIMITED;
	a->parent = parent;
	/* The account's own object is its first bookkeeping charge (it reaches the parent's
	 * usage through the chain). */
	if (account_charge_kmem(a, cost) != rcOk) {
		pool_free(a);
		return NULL;
	}
	if (parent)
		account_get(parent);
	return a;
}

void account_get(struct account *a)
{
	uint32_t was = __atomic_fetch_add(&a->refs, 1, __ATOMIC_ACQ_REL);
	KASSERT_MSG(was != 0, "reference to a released account");
}

void account_put(struct account *a)
{
	while (a) {
		uint32_t left = __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL);
		KASSERT_MSG(left != UINT32_MAX, "account %llu: reference count underflow", (unsigned long long)a->id);
		if (left)
			return;
		account_uncharge_kmem(a, pool_block_cost(sizeof(struct account)));
		for (unsigned r = 0; r < ACCT_NR; r++)
			KASSERT_MSG(a->usage[r] == 0 && a->kmem == 0,
				    "account %llu released with %llu of resource %u (%llu bookkeeping bytes) charged",
				    (unsigned long long)a->id, (unsigned long long)a->usage[r], r,
				    (unsigned long long)a->kmem);
		struct account *parent = a->parent;
		pool_free(a);
		a = parent; /* its reference on the parent goes too */
	}
}

/* ------------------------------------------------------------------ charged pool blocks */

void *kmem_alloc(struct account *a, size_t size, uint32_t tag)
{
	if (account_charge_kmem(a, pool_block_cost(size)) != rcOk)
		return NULL;
	void *p = pool_alloc(size, tag);
	if (!p)
		account_uncharge_kmem(a, pool_block_cost(size));
	return p;
}

void kmem_free(struct account *a, void *p)
{
	if (!p)
		return;
	uint64_t cost = pool_block_cost(pool_block_size(p));
	pool_free(p);
	account_uncharge_kmem(a, cost);
}

void *lookaside_alloc_charged(struct lookaside *l, struct account *a)
{
	if (account_charge_kmem(a, pool_block_cost(l->size)) != rcOk)
		return NULL;
	void *p = lookaside_alloc(l);
	if (!p)
		account_uncharge_kmem(a, pool_block_cost(l->size));
	return p;
}

void lookaside_free_charged(struct lookaside *l, struct account *a, void *p)
{
	if (!p)
		return;
	lookaside_free(l, p);
	account_uncharge_kmem(a, pool_block_cost(l->size));
}
