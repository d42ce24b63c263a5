/* SPDX-License-Identifier: MIT */
/*
 * The region tree: an AVL tree of non-overlapping [base, end) ranges keyed by base, where
 * every node also knows its subtree's lowest base, highest end and the largest gap between
 * two ranges inside it. Lookup, insertion, removal and "find a free gap of this size at or
 * above this address" are O(log n). Pure code (host tests run it under ASan/UBSan).
 *
 * The caller owns the locking (the address-space lock) and the nodes (embedded in regions).
 */
#ifndef MM_VM_TREE_H
#define MM_VM_TREE_H

#include <knmm/compiler.h>

struct vm_node {
	struct vm_node *left, *right;
	uint64_t base, end;        /* this range */
	uint64_t sub_min, sub_max; /* lowest base and highest end in the subtree */
	uint64_t sub_gap;          /* largest free gap between two ranges of the subtree */
	int height;
};

struct vm_tree {
	struct vm_node *root;
	uint64_t count;
};

static inline void vm_tree_init(struct vm_tree *t) { t->root = NULL, t->count = 0; }

/* Inserts n (base/end set, not overlapping any range: the caller checked). */
void vm_tree_insert(struct vm_tree *t, struct vm_node *n);
void vm_tree_remove(struct vm_tree *t, struct vm_node *n);
/* The range containing addr, or NULL. */
struct vm_node *vm_tree_find(const struct vm_tree *t, uint64_t addr);
/* The first range with base >= addr / the last with base <= addr (NULL if none). */
struct vm_node *vm_tree_ceil(const struct vm_tree *t, uint64_t addr);
struct vm_node *vm_tree_floor(const struct vm_tree *t, uint64_t addr);
/* The range after n in address order. O(log n). */
struct vm_node *vm_tree_next(const struct vm_tree *t, const struct vm_node *n);
/* Any range intersecting [base, end)? */
bool vm_tree_overlaps(const struct vm_tree *t, uint64_t base, uint64_t end);

/*
 * The lowest x >= from, aligned to `align` (a power of two), with [x, x + size) free and
 * inside [lo, hi). false if none.
 */
bool vm_tree_find_gap(const struct vm_tree *t, uint64_t lo, uint64_t hi, uint64_t from, uint64_t size, uint64_t align,
		      uint64_t *out);

/* Checks every AVL and augmentation invariant (tests). false with a reason. */
bool vm_tree_check(const struct vm_tree *t, char *why, size_t size);

#endif
