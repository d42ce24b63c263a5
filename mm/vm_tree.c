// SPDX-License-Identifier: MIT
#include <knmm/align.h>
#include <knmm/printf.h>
#include <mm/vm_tree.h>

static inline int height(const struct vm_node *n) { return n ? n->height : 0; }

/* Recomputes n's height and augmentation from its children. */
static void update(struct vm_node *n)
{
	const struct vm_node *l = n->left, *r = n->right;
	uint64_t gap = 0;

	n->height = 1 + MAX(height(l), height(r));
	n->sub_min = l ? l->sub_min : n->base;
	n->sub_max = r ? r->sub_max : n->end;
	if (l) {
		gap = MAX(gap, l->sub_gap);
		gap = MAX(gap, n->base - l->sub_max);
	}
	if (r) {
		gap = MAX(gap, r->sub_gap);
		gap = MAX(gap, r->sub_min - n->end);
	}
	n->sub_gap = gap;
}

static struct vm_node *rotate_right(struct vm_node *n)
{
	struct vm_node *l = n->left;
	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct vm_node *rotate_left(struct vm_node *n)
{
	struct vm_node *r = n->right;
	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

static struct vm_node *rebalance(struct vm_node *n)
{
	update(n);
	int bf = height(n->left) - height(n->right);
	if (bf > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

static struct vm_node *insert(struct vm_node *root, struct vm_node *n)
{
	if (!root) {
		n->left = n->right = NULL;
		update(n);
		return n;
	}
	if (n->base < root->base)
		root->left = insert(root->left, n);
	else
		root->right = insert(root->right, n);
	return rebalance(root);
}

void vm_tree_insert(struct vm_tree *t, struct vm_node *n)
{
	t->root = insert(t->root, n);
	t->count++;
}

/* Detaches the minimum of the subtree into *min; returns the new subtree. */
static struct vm_node *remove_min(struct vm_node *root, struct vm_node **min)
{
	if (!root->left) {
		*min = root;
		return root->right;
	}
	root->left = remove_min(root->left, min);
	return rebalance(root);
}

static struct vm_node *remove(struct vm_node *root, const struct vm_node *n)
{
	if (!root)
		return NULL;
	if (n->base < root->base) {
		root->left = remove(root->left, n);
	} else if (n->base > root->base) {
		root->right = remove(root->right, n);
	} else {
		struct vm_node *l = root->left, *r = root->right, *min;
		if (!r)
			return l;
		r = remove_min(r, &min);
		min->left = l;
		min->right = r;
		return rebalance(min);
	}
	return rebalance(root);
}

void vm_tree_remove(struct vm_tree *t, struct vm_node *n)
{
	t->root = remove(t->root, n);
	t->count--;
	n->left = n->right = NULL;
}

struct vm_node *vm_tree_find(const struct vm_tree *t, uint64_t addr)
{
	struct vm_node *n = t->root;

	while (n) {
		if (addr < n->base)
			n = n->left;
		else if (addr >= n->end)
			n = n->right;
		else
			return n;
	}
	return NULL;
}

struct vm_node *vm_tree_ceil(const struct vm_tree *t, uint64_t addr)
{
	struct vm_node *n = t->root, *best = NULL;

	while (n) {
		if (n->base >= addr) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

struct vm_node *vm_tree_floor(const struct vm_tree *t, uint64_t addr)
{
	struct vm_node *n = t->root, *best = NULL;

	while (n) {
		if (n->base <= addr) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

struct vm_node *vm_tree_next(const struct vm_tree *t, const struct vm_node *n)
{
	return n->end ? vm_tree_ceil(t, n->end) : NULL;
}

bool vm_tree_overlaps(const struct vm_tree *t, uint64_t base, uint64_t end)
{
	const struct vm_node *n = vm_tree_floor(t, end - 1);
	return n && n->end > base;
}

/* x = the lowest aligned address >= max(start, from) with [x, x+size) inside [start, end). */
static bool fits(uint64_t start, uint64_t end, uint64_t from, uint64_t size, uint64_t align, uint64_t *out)
{
	uint64_t x = MAX(start, from);
	if (!align_up_checked(x, align, &x) || x >= end || end - x < size)
		return false;
	*out = x;
	return true;
}

struct gap_search {
	uint64_t from, size, align, prev_end;
};

/* In-order search; s->prev_end is the end of the range before the subtree. */
static bool find_gap(const struct vm_node *n, struct gap_search *s, uint64_t *out)
{
	if (!n)
		return false;
	/* Everything in this subtree ends below `from`: only the gap after it can matter. */
	bool skip = n->sub_max <= s->from;
	/* No gap in or just before the subtree is large enough. */
	if (!skip && n->sub_gap < s->size &&
	    (n->sub_min - s->prev_end < s->size || !fits(s->prev_end, n->sub_min, s->from, s->size, s->align, out)))
		skip = true;
	if (skip) {
		s->prev_end = MAX(s->prev_end, n->sub_max);
		return false;
	}
	if (find_gap(n->left, s, out))
		return true;
	if (fits(s->prev_end, n->base, s->from, s->size, s->align, out))
		return true;
	s->prev_end = n->end;
	return find_gap(n->right, s, out);
}

bool vm_tree_find_gap(const struct vm_tree *t, uint64_t lo, uint64_t hi, uint64_t from, uint64_t size, uint64_t align,
		      uint64_t *out)
{
	struct gap_search s = { .from = MAX(from, lo), .size = size, .align = align, .prev_end = lo };

	if (size == 0 || hi <= lo || size > hi - lo)
		return false;
	if (find_gap(t->root, &s, out))
		return *out + size <= hi;
	return fits(s.prev_end, hi, s.from, size, align, out);
}

/* ------------------------------------------------------------------ checking */

struct check {
	char *why;
	size_t size;
	uint64_t count, last_end;
	bool seen;
};

static bool check_node(const struct vm_node *n, struct check *c)
{
	if (!n)
		return true;
	if (!check_node(n->left, c))
		return false;
	if (n->base >= n->end) {
		ksnprintf(c->why, c->size, "empty range at %#llx", (unsigned long long)n->base);
		return false;
	}
	if (c->seen && n->base < c->last_end) {
		ksnprintf(c->why, c->size, "range %#llx overlaps or is out of order", (unsigned long long)n->base);
		return false;
	}
	c->seen = true;
	c->last_end = n->end;
	c->count++;
	struct vm_node copy = *n;
	update(&copy);
	if (copy.height != n->height || copy.sub_min != n->sub_min || copy.sub_max != n->sub_max ||
	    copy.sub_gap != n->sub_gap) {
		ksnprintf(c->why, c->size, "stale augmentation at %#llx", (unsigned long long)n->base);
		return false;
	}
	int bf = height(n->left) - height(n->right);
	if (bf < -1 || bf > 1) {
		ksnprintf(c->why, c->size, "unbalanced at %#llx (%d)", (unsigned long long)n->base, bf);
		return false;
	}
	return check_node(n->right, c);
}

bool vm_tree_check(const struct vm_tree *t, char *why, size_t size)
{
	struct check c = { .why = why, .size = size };

	if (!check_node(t->root, &c))
		return false;
	if (c.count != t->count) {
		ksnprintf(why, size, "tree holds %llu ranges, count says %llu", (unsigned long long)c.count,
			  (unsigned long long)t->count);
		return false;
	}
	return true;
}
