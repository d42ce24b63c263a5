/* SPDX-License-Identifier: MIT */
/* Intrusive doubly-linked circular lists with a sentinel head. */
#ifndef KNMM_LIST_H
#define KNMM_LIST_H

#include <knmm/compiler.h>

struct list_head {
	struct list_head *next, *prev;
};

#define LIST_HEAD_INIT(name)     \
	{                        \
		&(name), &(name) \
	}

static inline void list_init(struct list_head *h) { h->next = h->prev = h; }
static inline bool list_empty(const struct list_head *h) { return h->next == h; }

static inline void list_insert_(struct list_head *n, struct list_head *prev, struct list_head *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}
/* After the head (LIFO use) / before it (FIFO use). */
static inline void list_add(struct list_head *n, struct list_head *h) { list_insert_(n, h, h->next); }
static inline void list_add_tail(struct list_head *n, struct list_head *h) { list_insert_(n, h->prev, h); }

static inline void list_del(struct list_head *n)
{
	n->next->prev = n->prev;
	n->prev->next = n->next;
	n->next = n->prev = NULL;
}

/* Moves every entry of `from` to the end of `to`; `from` is left empty. */
static inline void list_splice_tail_init(struct list_head *from, struct list_head *to)
{
	if (list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	list_init(from);
}

#define list_entry(ptr, type, member)     container_of(ptr, type, member)
#define list_first_entry(h, type, member) list_entry((h)->next, type, member)
#define list_for_each(pos, h)             for (pos = (h)->next; pos != (h); pos = pos->next)

#endif
