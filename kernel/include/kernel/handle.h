/* SPDX-License-Identifier: MIT */
/*
 * Kernel objects and per-task handle tables (see include/kn/handle_api.h, docs/tasks.md).
 *
 * A handle value is ((salt + generation) mod 2^20) << 12 | slot: 4095 slots per task, slot 0
 * unused, the slot's generation bumped on every close (skipping values that would give
 * generation bits 0 or the value KN_HANDLE_SELF), and the table's salt derived from the task
 * id, so values of other tasks are (almost certainly) not valid here. A slot that has used
 * all 2^20 generations is retired for good rather than wrap: a closed value never becomes
 * valid again in that table.
 */
#ifndef KERNEL_HANDLE_H
#define KERNEL_HANDLE_H

#include <kn/handle_api.h>
#include <knmm/spinlock.h>

/*
 * A kernel object behind handles. Besides all its handles, it counts its *live* ones: those
 * in tables that can still be used (docs/tasks.md, "Orphans"): the kernel's, a running
 * task's, or a created task's that a live handle keeps. A table stops counting for good
 * (handle_table_stop_counting) when its task freezes or is found unreachable; `unreachable`
 * is told when the last live handle goes, whatever the order of events.
 */
struct kobject {
	uint32_t refs;
	uint32_t handles;                         /* open handles (each also holds a reference) */
	uint32_t live;                            /* of those, in tables that count */
	uint8_t type;                             /* KN_HANDLE_TYPE_* */
	void (*release)(struct kobject *obj);     /* the last reference is gone */
	void (*unreachable)(struct kobject *obj); /* optional: no live handle is left (called
						     with a reference held, no table lock) */
};

static inline void kobj_init(struct kobject *o, uint8_t type, void (*release)(struct kobject *))
{
	o->refs = 1;
	o->handles = 0;
	o->live = 0;
	o->type = type;
	o->release = release;
	o->unreachable = NULL;
}
void kobj_get(struct kobject *o);
void kobj_put(struct kobject *o);

#define HANDLE_SLOT_BITS 12
#define HANDLE_MAX_SLOTS (1u << HANDLE_SLOT_BITS)

struct handle_entry {
	struct kobject *obj; /* NULL: free */
	uint32_t rights;
	uint32_t gen;
	bool counted; /* counted in obj->live */
	bool pending; /* reserved: not usable nor listed until committed */
};

struct handle_table {
	spinlock_t lock;
	struct handle_entry *v;
	uint32_t cap, count;
	uint32_t retired; /* slots that used every generation */
	uint32_t salt;
	bool closed;          /* the task is gone: no new handles */
	bool counting;        /* its handles keep their objects reachable (until it stops for good) */
	struct account *acct; /* pays for the table and counts its handles (NULL: the kernel's) */
};

struct account;
/* An empty table; its storage and handles are charged to acct (a reference is kept). */
void handle_table_init(struct handle_table *ht, uint64_t owner_id, struct account *acct);
/* Room for `slots` handles from now on (rcOutOfMemory). */
Retcode handle_table_reserve(struct handle_table *ht, uint32_t slots);
/* Closes every handle and frees the table. */
void handle_table_destroy(struct handle_table *ht);
/* From now on the table's handles keep nothing reachable (its task froze, or can never run):
 * each object's live count loses them, which may make it unreachable. */
void handle_table_stop_counting(struct handle_table *ht);
/* Calls fn for each object held (with the table's lock held: fn must not block or take it). */
void handle_table_for_each(struct handle_table *ht, void (*fn)(struct kobject *o, uint32_t rights, void *arg),
			   void *arg);
/* A new handle to obj (takes a reference). rcOutOfMemory when full (or the account's handle
 * or commit limit), rcWrongState if closed. */
Retcode handle_alloc(struct handle_table *ht, struct kobject *obj, uint32_t rights, Handle *out);
/* The object behind h with a reference: rcBadHandle (not open here, or not of `type`),
 * rcAccessDenied (lacks `need` rights). type 0: any. */
/* A handle made before the call that makes it has done anything visible: reserved (charged,
 * holding its slot and a reference, but not usable nor listed) until handle_commit makes it
 * a handle, or handle_abandon closes it. So a call can be sure of its handle first, and
 * refuse with nothing changed. */
Retcode handle_reserve(struct handle_table *ht, struct kobject *obj, uint32_t rights, Handle *out);
void handle_commit(struct handle_table *ht, Handle h);
void handle_abandon(struct handle_table *ht, Handle h);
Retcode handle_get(struct handle_table *ht, Handle h, uint8_t type, uint32_t need, struct kobject **obj,
		   uint32_t *rights);
Retcode handle_close(struct handle_table *ht, Handle h);
/* The index-th open handle (slot order), or rcEof. */
Retcode handle_enumerate(struct handle_table *ht, uint64_t index, Handle *h, uint8_t *type, uint32_t *rights);

#endif
