/* SPDX-License-Identifier: MIT */
/*
 * Frames with a memory type (docs/vm.md, "Memory types"). A frame has one memory type,
 * whoever maps it: one that any mapping uses write-through, write-combining or uncached is
 * of that type in the direct map too (its entry there is split out of the large page and
 * changed, SDM Vol. 3A 11.12.4), is zeroed through that entry, and is write-back again when
 * it is freed (the direct map then merges back into large pages where it can). So there is
 * never a write-back alias of non-write-back memory, and nothing cached of it survives.
 *
 * Splitting the direct map may take two page tables (a directory per 1 GiB page, a table per
 * 2 MiB): every user of such frames charges a page of commit per frame for them on top of the
 * frame (the directories, at most one per GiB of RAM, come from the kernel reserve).
 *
 * Locking: one lock orders changes to the direct map's entries; it nests inside space locks
 * and takes the physical allocator's.
 */
#ifndef MM_FRAME_H
#define MM_FRAME_H

#include <kn/flags.h>
#include <kn/retcode.h>
#include <mm/page.h>

enum frame_type { FRAME_WB = 0, FRAME_WT = 1, FRAME_WC = 2, FRAME_UC = 3 };

/* The frame type of a VMM_FLAG_* cache mode (0 and VMM_FLAG_WRITE_BACK: FRAME_WB). */
static inline enum frame_type frame_type_of(unsigned cache)
{
	switch (cache & VMM_FLAG_CACHE_MASK) {
	case VMM_FLAG_WRITE_THROUGH:
		return FRAME_WT;
	case VMM_FLAG_WRITE_COMBINE:
		return FRAME_WC;
	case VMM_FLAG_CACHE_DISABLE:
		return FRAME_UC;
	default:
		return FRAME_WB;
	}
}
/* The commit a page of memory of this cache mode costs: 1, or 2 when it may split the direct
 * map (see above). */
static inline uint64_t frame_commit_cost(unsigned cache) { return frame_type_of(cache) == FRAME_WB ? 1 : 2; }

/* A zeroed frame (state `state`) of the cache mode's type, zeroed through a mapping of that
 * type. NULL if no frame (or no table to split the direct map). */
struct page *frame_alloc(unsigned cache, enum page_state state);
/* Gives an allocated write-back frame the cache mode's type (its contents are kept: written
 * back first). rcOutOfMemory: no table for the split (nothing changed). */
Retcode frame_set_type(struct page *p, unsigned cache);
/* Back to write-back (nothing if it is), then to the allocator. The frame's last user. */
void frame_free(struct page *p);
void frame_clear_type(struct page *p);

#endif
