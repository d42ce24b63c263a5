// SPDX-License-Identifier: MIT
#include <mm/charge.h>
#include <mm/pool.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <mm/vm_runs.h>

#define RUNS_TAG POOL_TAG('V', 'm', 'R', 'n')

void vm_runs_init(struct vm_runs *r, uint8_t state, uint8_t prot)
{
	r->v = r->inline_runs;
	r->cap = VM_RUNS_INLINE;
	r->n = 1;
	r->v[0] = (struct vm_run){ .start = 0, .state = state, .prot = prot };
}

void vm_runs_destroy(struct vm_runs *r, struct account *a)
{
	if (r->v != r->inline_runs)
		kmem_free(a, r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

Retcode vm_runs_reserve(struct vm_runs *r, uint32_t extra, struct account *a)
{
	if (r->n + extra <= r->cap)
		return rcOk;
	if ((uint64_t)r->n + extra > VM_RUNS_MAX)
		return rcOutOfMemory;
	uint32_t cap = MIN(MAX(r->cap * 2, r->n + extra), VM_RUNS_MAX);
	struct vm_run *v = kmem_alloc(a, cap * sizeof(*v), RUNS_TAG);
	if (!v)
		return rcOutOfMemory;
	memcpy(v, r->v, r->n * sizeof(*v));
	if (r->v != r->inline_runs)
		kmem_free(a, r->v);
	r->v = v;
	r->cap = cap;
	return rcOk;
}

uint32_t vm_runs_find(const struct vm_runs *r, uint64_t p)
{
	uint32_t lo = 0, hi = r->n; /* the last run with start <= p */

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (r->v[mid].start <= p)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static bool same(const struct vm_run *a, const struct vm_run *b)
{
	return a->state == b->state && a->prot == b->prot && a->locked == b->locked;
}

/* Makes a run start exactly at page p (p inside the region). */
static uint32_t split_at(struct vm_runs *r, uint64_t p)
{
	uint32_t i = vm_runs_find(r, p);
	if (r->v[i].start == p)
		return i;
	memmove(&r->v[i + 2], &r->v[i + 1], (r->n - i - 1) * sizeof(r->v[0]));
	r->v[i + 1] = r->v[i];
	r->v[i + 1].start = p;
	r->n++;
	return i + 1;
}

void vm_runs_set(struct vm_runs *r, uint64_t npages, uint64_t first, uint64_t count, uint8_t state, uint8_t prot,
		 uint8_t locked)
{
	uint64_t end = first + count;
	uint32_t i = split_at(r, first);
	uint32_t j = end < npages ? split_at(r, end) : r->n;

	/* Runs [i, j) become one. */
	r->v[i].state = state;
	r->v[i].prot = prot;
	r->v[i].locked = locked;
	if (j > i + 1) {
		memmove(&r->v[i + 1], &r->v[j], (r->n - j) * sizeof(r->v[0]));
		r->n -= j - i - 1;
	}
	/* Merge with the next and the previous run when equal. */
	if (i + 1 < r->n && same(&r->v[i], &r->v[i + 1])) {
		memmove(&r->v[i + 1], &r->v[i + 2], (r->n - i - 2) * sizeof(r->v[0]));
		r->n--;
	}
	if (i > 0 && same(&r->v[i - 1], &r->v[i])) {
		memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(r->v[0]));
		r->n--;
	}
}

uint64_t vm_runs_count(const struct vm_runs *r, uint64_t npages, uint64_t first, uint64_t count, uint8_t state)
{
	uint64_t end = first + count, total = 0;

	for (uint32_t i = vm_runs_find(r, first); i < r->n && r->v[i].start < end; i++) {
		if (r->v[i].state != state)
			continue;
		uint64_t s = MAX(r->v[i].start, first), e = MIN(vm_runs_end(r, i, npages), end);
		total += e - s;
	}
	return total;
}

Retcode vm_runs_prepare_split(const struct vm_runs *r, uint64_t at, struct vm_runs *tail, struct account *a)
{
	uint32_t i = vm_runs_find(r, at);
	vm_runs_init(tail, VM_RESERVED, 0);
	tail->n = 0;
	return vm_runs_reserve(tail, r->n - i, a);
}

void vm_runs_split(struct vm_runs *r, uint64_t npages, uint64_t at, struct vm_runs *tail)
{
	(void)npages;
	uint32_t i = vm_runs_find(r, at);
	/* Run i straddles `at` unless it starts there: both sides keep a copy. */
	tail->n = 0;
	for (uint32_t k = i; k < r->n; k++) {
		struct vm_run run = r->v[k];
		run.start = run.start > at ? run.start - at : 0;
		tail->v[tail->n++] = run;
	}
	r->n = r->v[i].start == at ? i : i + 1;
}

void vm_runs_drop_head(struct vm_runs *r, uint64_t at)
{
	uint32_t i = vm_runs_find(r, at);
	memmove(&r->v[0], &r->v[i], (r->n - i) * sizeof(r->v[0]));
	r->n -= i;
	r->v[0].start = at;
	for (uint32_t k = 0; k < r->n; k++)
		r->v[k].start -= at;
}

bool vm_runs_check(const struct vm_runs *r, uint64_t npages, char *why, size_t size)
{
	if (r->n == 0 || r->n > r->cap || r->v[0].start != 0) {
		ksnprintf(why, size, "runs: bad header (n %u, cap %u)", r->n, r->cap);
		return false;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->v[i].start >= npages || (i && r->v[i].start <= r->v[i - 1].start)) {
			ksnprintf(why, size, "runs: run %u starts at %llu (region %llu pages)", i,
				  (unsigned long long)r->v[i].start, (unsigned long long)npages);
			return false;
		}
		if (i && same(&r->v[i], &r->v[i - 1])) {
			ksnprintf(why, size, "runs: runs %u and %u are equal and not merged", i - 1, i);
			return false;
		}
		if (r->v[i].state < VM_RESERVED || r->v[i].state > VM_GUARD) {
			ksnprintf(why, size, "runs: run %u has state %u", i, r->v[i].state);
			return false;
		}
	}
	return true;
}
