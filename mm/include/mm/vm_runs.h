/* SPDX-License-Identifier: MIT */
/*
 * The state of a region's pages as runs, not per page (SPEC §4.5): a sorted vector of
 * (first page, state, protection, locked) where each run lasts until the next one starts.
 * Reserving 64 TiB is one run. Pure code (host tests run it under ASan/UBSan).
 */
#ifndef MM_VM_RUNS_H
#define MM_VM_RUNS_H

#include <kn/retcode.h>
#include <knmm/compiler.h>

enum vm_page_state {
	VM_RESERVED = 1,
	VM_COMMITTED = 2,
	VM_GUARD = 3,
};

struct vm_run {
	uint64_t start; /* first page, as an index into the region */
	uint8_t state;  /* enum vm_page_state */
	uint8_t prot;   /* VMM_FLAG_READ/WRITE/EXECUTE */
	uint8_t locked; /* committed eagerly: resident until decommitted or unmapped */
	uint8_t pad[5];
};

#define VM_RUNS_INLINE 4 /* guard, reserved, committed top, guard: a stack needs no more */

/* The most runs a region may hold (each protect or commit of a middle part can add two). */
#define VM_RUNS_MAX 65536

struct vm_runs {
	uint32_t n, cap;
	struct vm_run *v; /* inline_runs or a pool block */
	struct vm_run inline_runs[VM_RUNS_INLINE];
};

struct account;

/* One run of npages pages. */
void vm_runs_init(struct vm_runs *r, uint8_t state, uint8_t prot);
/* Frees the run storage, which was charged to account a (mm/charge.h; NULL: the kernel). */
void vm_runs_destroy(struct vm_runs *r, struct account *a);
/* Room for `extra` more runs, so that the next changes cannot fail (rcOutOfMemory: the pool,
 * or a's limits: storage beyond the inline runs is charged to a). */
Retcode vm_runs_reserve(struct vm_runs *r, uint32_t extra, struct account *a);
/* The run holding page p (index into v). */
uint32_t vm_runs_find(const struct vm_runs *r, uint64_t p);
/* End page of run i, given the region's page count. */
static inline uint64_t vm_runs_end(const struct vm_runs *r, uint32_t i, uint64_t npages)
{
	return i + 1 < r->n ? r->v[i + 1].start : npages;
}
/*
 * Sets pages [first, first + count) to (state, prot, locked), merging equal neighbours.
 * Needs at most 2 extra runs of capacity: call vm_runs_reserve(r, 2) first.
 */
void vm_runs_set(struct vm_runs *r, uint64_t npages, uint64_t first, uint64_t count, uint8_t state, uint8_t prot,
		 uint8_t locked);
/* Pages of `state` in [first, first + count). */
uint64_t vm_runs_count(const struct vm_runs *r, uint64_t npages, uint64_t first, uint64_t count, uint8_t state);
/*
 * Moves the runs describing pages [at, npages) to `tail` (initialised here), renumbered from
 * 0; r keeps [0, at). Needs one extra run of capacity in r and enough in tail: call
 * vm_runs_prepare_split first.
 */
Retcode vm_runs_prepare_split(const struct vm_runs *r, uint64_t at, struct vm_runs *tail, struct account *a);
void vm_runs_split(struct vm_runs *r, uint64_t npages, uint64_t at, struct vm_runs *tail);
/* Drops pages [0, at) (renumbering the rest from 0). */
void vm_runs_drop_head(struct vm_runs *r, uint64_t at);
bool vm_runs_check(const struct vm_runs *r, uint64_t npages, char *why, size_t size);

#endif
