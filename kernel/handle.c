// SPDX-License-Identifier: MIT
#include <kn/task_api.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/charge.h>
#include <mm/pool.h>
#include <kernel/handle.h>

#define TABLE_TAG   POOL_TAG('H', 'n', 'd', 'l')
#define GEN_MASK    ((1u << (32 - HANDLE_SLOT_BITS)) - 1)
#define GEN_RETIRED UINT32_MAX /* a slot that used all its generations: never handed out again */

void kobj_get(struct kobject *o)
{
	uint32_t was = __atomic_fetch_add(&o->refs, 1, __ATOMIC_ACQ_REL);
	KASSERT_MSG(was != 0, "reference to a dead object");
}

/* One live handle of o fewer (its table stopped counting, or it closed): tell the object
 * when none is left. The caller holds a reference and no table lock. */
static void live_dropped(struct kobject *o)
{
	uint32_t left = __atomic_sub_fetch(&o->live, 1, __ATOMIC_ACQ_REL);
	KASSERT_MSG(left != UINT32_MAX, "live handle count underflow");
	if (left == 0 && o->unreachable)
		o->unreachable(o);
}

/* A handle to o went away (`counted`: it was a live one): drop what it held. */
static void handle_dropped(struct kobject *o, bool counted)
{
	__atomic_sub_fetch(&o->handles, 1, __ATOMIC_ACQ_REL);
	if (counted)
		live_dropped(o);
	kobj_put(o);
}

void kobj_put(struct kobject *o)
{
	uint32_t left = __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL);
	KASSERT_MSG(left != UINT32_MAX, "object reference underflow");
	if (left == 0)
		o->release(o);
}

void handle_table_init(struct handle_table *ht, uint64_t owner_id, struct account *acct)
{
	memset(ht, 0, sizeof(*ht));
	ht->lock = (spinlock_t)SPINLOCK_INIT("handles", LOCK_RANK_HANDLES);
	ht->acct = acct;
	ht->counting = true;
	if (acct)
		account_get(acct);
	/* A well-mixed per-task start for the generations (Knuth's multiplicative hash). */
	ht->salt = (uint32_t)((owner_id * 2654435761u) >> 7) & GEN_MASK;
}

static Handle make(const struct handle_table *ht, uint32_t slot)
{
	uint32_t g = (ht->salt + ht->v[slot].gen) & GEN_MASK;
	return (g << HANDLE_SLOT_BITS) | slot;
}

/* The slot's next generation; after the last of its 2^20 it is retired (a value is never
 * handed out twice). Lock held. */
static void next_gen_locked(struct handle_table *ht, uint32_t slot)
{
	spin_assert_held(&ht->lock);
	if (++ht->v[slot].gen > GEN_MASK) {
		ht->v[slot].gen = GEN_RETIRED;
		ht->retired++;
	}
}

/* Moves a free slot's generation past values a handle must never have: generation bits 0,
 * and the value KN_HANDLE_SELF (slot 4095). Skipping (not remapping) keeps every value the
 * slot gives distinct. False if that retired the slot. Lock held. */
static bool skip_reserved_gens_locked(struct handle_table *ht, uint32_t slot)
{
	spin_assert_held(&ht->lock);
	while (ht->v[slot].gen != GEN_RETIRED) {
		Handle h = make(ht, slot);
		if ((h >> HANDLE_SLOT_BITS) != 0 && h != KN_HANDLE_SELF)
			return true;
		next_gen_locked(ht, slot);
	}
	return false;
}

/* The slot of h if it is open in ht, else 0. Lock held. */
static uint32_t slot_of_any_locked(const struct handle_table *ht, Handle h)
{
	spin_assert_held(&ht->lock);
	uint32_t slot = h & (HANDLE_MAX_SLOTS - 1);
	if (slot == 0 || slot >= ht->cap || !ht->v[slot].obj || ht->v[slot].gen == GEN_RETIRED || make(ht, slot) != h)
		return 0;
	return slot;
}

/* The same for handles that are in use (not reserved: those are invisible until committed). */
static uint32_t slot_of_locked(const struct handle_table *ht, Handle h)
{
	spin_assert_held(&ht->lock);
	uint32_t slot = slot_of_any_locked(ht, h);
	return slot && !ht->v[slot].pending ? slot : 0;
}

/* Makes the table hold `cap` slots (at least); false without memory. Lock held. */
static bool grow_locked(struct handle_table *ht, uint32_t cap)
{
	spin_assert_held(&ht->lock);
	if (cap > HANDLE_MAX_SLOTS)
		cap = HANDLE_MAX_SLOTS;
	if (cap <= ht->cap)
		return true;
	struct handle_entry *v = kmem_alloc(ht->acct, cap * sizeof(*v), TABLE_TAG);
	if (!v)
		return false;
	memset(v, 0, cap * sizeof(*v));
	if (ht->v) {
		memcpy(v, ht->v, ht->cap * sizeof(*v));
		kmem_free(ht->acct, ht->v);
	}
	ht->v = v;
	ht->cap = cap;
	return true;
}

Retcode handle_table_reserve(struct handle_table *ht, uint32_t slots)
{
	bool irq = spin_lock_irqsave(&ht->lock);
	bool ok = grow_locked(ht, slots);
	spin_unlock_irqrestore(&ht->lock, irq);
	return ok ? rcOk : rcOutOfMemory;
}

/* A free slot that can take a handle (growing the table if needed), or 0. Lock held. */
static uint32_t free_slot_locked(struct handle_table *ht)
{
	spin_assert_held(&ht->lock);
	for (;;) {
		uint32_t slot = 1;
		while (slot < ht->cap && (ht->v[slot].obj || ht->v[slot].gen == GEN_RETIRED))
			slot++;
		if (slot < ht->cap) {
			if (skip_reserved_gens_locked(ht, slot))
				return slot;
			continue; /* that slot just retired: look again */
		}
		/* Full, or no table yet (slot 0 is never used). */
		if (slot + 1 > HANDLE_MAX_SLOTS || !grow_locked(ht, ht->cap ? ht->cap * 2 : 16))
			return 0;
	}
}

static Retcode alloc_entry(struct handle_table *ht, struct kobject *obj, uint32_t rights, bool pending, Handle *out)
{
	bool irq = spin_lock_irqsave(&ht->lock);
	Retcode rc = rcOk;
	uint32_t slot = 0;

	if (ht->closed) {
		rc = rcWrongState;
		goto out;
	}
	if ((rc = account_charge(ht->acct, ACCT_HANDLES, 1)) != rcOk)
		goto out;
	if (!(slot = free_slot_locked(ht))) {
		account_uncharge(ht->acct, ACCT_HANDLES, 1);
		rc = rcOutOfMemory;
		goto out;
	}
	kobj_get(obj);
	__atomic_add_fetch(&obj->handles, 1, __ATOMIC_ACQ_REL);
	if (ht->counting)
		__atomic_add_fetch(&obj->live, 1, __ATOMIC_ACQ_REL);
	ht->v[slot].counted = ht->counting;
	ht->v[slot].obj = obj;
	ht->v[slot].rights = rights;
	ht->v[slot].pending = pending;
	ht->count++;
	*out = make(ht, slot);
out:
	spin_unlock_irqrestore(&ht->lock, irq);
	return rc;
}

Retcode handle_alloc(struct handle_table *ht, struct kobject *obj, uint32_t rights, Handle *out)
{
	return alloc_entry(ht, obj, rights, false, out);
}

Retcode handle_reserve(struct handle_table *ht, struct kobject *obj, uint32_t rights, Handle *out)
{
	return alloc_entry(ht, obj, rights, true, out);
}

void handle_commit(struct handle_table *ht, Handle h)
{
	bool irq = spin_lock_irqsave(&ht->lock);
	uint32_t slot = slot_of_any_locked(ht, h);
	KASSERT_MSG(slot && ht->v[slot].pending, "committing handle %#x, which is not reserved", h);
	ht->v[slot].pending = false;
	spin_unlock_irqrestore(&ht->lock, irq);
}

Retcode handle_get(struct handle_table *ht, Handle h, uint8_t type, uint32_t need, struct kobject **obj,
		   uint32_t *rights)
{
	bool irq = spin_lock_irqsave(&ht->lock);
	uint32_t slot = slot_of_locked(ht, h);
	Retcode rc = rcOk;

	if (!slot || (type && ht->v[slot].obj->type != type))
		rc = rcBadHandle;
	else if ((ht->v[slot].rights & need) != need)
		rc = rcAccessDenied;
	else {
		*obj = ht->v[slot].obj;
		kobj_get(*obj);
		if (rights)
			*rights = ht->v[slot].rights;
	}
	spin_unlock_irqrestore(&ht->lock, irq);
	return rc;
}

static Retcode close_entry(struct handle_table *ht, Handle h, bool pending)
{
	bool irq = spin_lock_irqsave(&ht->lock);
	uint32_t slot = pending ? slot_of_any_locked(ht, h) : slot_of_locked(ht, h);
	struct kobject *obj = NULL;
	bool counted = false;

	if (slot) {
		obj = ht->v[slot].obj;
		counted = ht->v[slot].counted;
		ht->v[slot].obj = NULL;
		ht->v[slot].rights = 0;
		next_gen_locked(ht, slot); /* the old value is stale from now on, for good */
		ht->count--;
	}
	spin_unlock_irqrestore(&ht->lock, irq);
	if (!obj)
		return rcBadHandle;
	account_uncharge(ht->acct, ACCT_HANDLES, 1);
	handle_dropped(obj, counted);
	return rcOk;
}

Retcode handle_close(struct handle_table *ht, Handle h) { return close_entry(ht, h, false); }

void handle_abandon(struct handle_table *ht, Handle h)
{
	Retcode rc = close_entry(ht, h, true);
	KASSERT_MSG(rc == rcOk, "abandoning handle %#x: %d", h, rc);
}

Retcode handle_enumerate(struct handle_table *ht, uint64_t index, Handle *h, uint8_t *type, uint32_t *rights)
{
	bool irq = spin_lock_irqsave(&ht->lock);
	Retcode rc = rcEof;

	for (uint32_t slot = 1; slot < ht->cap; slot++) {
		if (!ht->v[slot].obj || ht->v[slot].pending)
			continue;
		if (index-- == 0) {
			*h = make(ht, slot);
			*type = ht->v[slot].obj->type;
			*rights = ht->v[slot].rights;
			rc = rcOk;
			break;
		}
	}
	spin_unlock_irqrestore(&ht->lock, irq);
	return rc;
}

void handle_table_destroy(struct handle_table *ht)
{
	for (uint32_t slot = 1;;) {
		struct kobject *obj = NULL;
		bool counted = false;
		bool irq = spin_lock_irqsave(&ht->lock);
		ht->closed = true;
		for (; slot < ht->cap && !obj; slot++) {
			if (ht->v[slot].obj) {
				obj = ht->v[slot].obj;
				counted = ht->v[slot].counted;
				ht->v[slot].obj = NULL;
				next_gen_locked(ht, slot);
				ht->count--;
			}
		}
		spin_unlock_irqrestore(&ht->lock, irq);
		if (!obj)
			break;
		account_uncharge(ht->acct, ACCT_HANDLES, 1);
		handle_dropped(obj, counted); /* outside the lock: releasing may take other locks */
	}
	kmem_free(ht->acct, ht->v);
	ht->v = NULL;
	ht->cap = 0;
	if (ht->acct)
		account_put(ht->acct);
	ht->acct = NULL;
}

void handle_table_stop_counting(struct handle_table *ht)
{
	/* One entry at a time: telling an object may end a task, which takes other locks. */
	for (uint32_t slot = 1;;) {
		struct kobject *obj = NULL;
		bool irq = spin_lock_irqsave(&ht->lock);
		ht->counting = false;
		for (; slot < ht->cap && !obj; slot++) {
			if (ht->v[slot].obj && ht->v[slot].counted) {
				obj = ht->v[slot].obj;
				ht->v[slot].counted = false;
				kobj_get(obj);
			}
		}
		spin_unlock_irqrestore(&ht->lock, irq);
		if (!obj)
			break;
		live_dropped(obj);
		kobj_put(obj);
	}
}

void handle_table_for_each(struct handle_table *ht, void (*fn)(struct kobject *o, uint32_t rights, void *arg),
			   void *arg)
{
	bool irq = spin_lock_irqsave(&ht->lock);
	for (uint32_t slot = 1; slot < ht->cap; slot++)
		if (ht->v[slot].obj)
			fn(ht->v[slot].obj, ht->v[slot].rights, arg);
	spin_unlock_irqrestore(&ht->lock, irq);
}
