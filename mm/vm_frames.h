/* SPDX-License-Identifier: MIT */
/*
 * The frames behind ranges of an address space, for the parts of mm that hold frames of
 * their own (MDLs: mm/mdl_vm.c): pinning a range's frames, mapping runs of someone else's
 * frames into a region, and listing what a region holds. Nothing here knows what keeps the
 * frames: the caller's callbacks do, under the space's lock where they say so.
 *
 * Runs: (first frame, pages), in address order; VM_NO_FRAME for pages with no frame (not
 * resident, or, when mapping, left committed and not resident).
 */
#ifndef MM_VM_FRAMES_H
#define MM_VM_FRAMES_H

#include <mm/vm.h>

#define VM_NO_FRAME  UINT64_MAX
#define VM_CACHE_ANY (~0u) /* vm_pin_frames: whatever the region's cache mode is */

/* A run given to the caller (the space's lock held): rcOk, or a failure that stops it all. */
typedef Retcode (*vm_run_fn)(void *arg, uint64_t pfn, uint64_t pages);
/* The next run to map into *pfn and *pages; false after the last. */
typedef bool (*vm_next_run_fn)(void *arg, uint64_t *pfn, uint64_t *pages);

/*
 * Maps `npages` pages of the runs `next` gives at va, the base of a committed anonymous region
 * of exactly `npages` pages that the caller made just now (vm_allocate_named with
 * VMM_FLAG_COMMIT, no guard), with protection `prot`; the region's maximum protection
 * becomes max_prot. Each frame mapped takes a reference (page_ref): the caller keeps its own. All or
 * nothing: rcOutOfMemory (a table: what was mapped is unmapped; the caller unmaps the
 * region), rcBusy (the region is not that one any more: another thread unmapped it).
 */
Retcode vm_map_frames(struct vm_space *vs, uint64_t va, uint64_t npages, unsigned prot, unsigned max_prot,
		      vm_next_run_fn next, void *arg);

struct vm_pin_sink {
	/* No lock held, before any page is made resident: room for `pages` runs, so that `run`
	 * cannot fail. rcOutOfMemory stops the pin (nothing resident, nothing given). */
	Retcode (*prepare)(void *arg, uint64_t pages);
	/* Lock held, every page resident: the range's runs of frames (rcOk), then `take` with
	 * the region's cache mode: the caller's references and pins, while nothing can move. */
	vm_run_fn run;
	void (*take)(void *arg, unsigned cache);
	void *arg;
};
/*
 * Makes [addr, addr + size) resident and gives its frames to the sink (probe and lock).
 * `access`: the protection bits every page, and its region's maximum, must allow
 * (VMM_FLAG_READ, WRITE, EXECUTE); the region's cache mode must be `cache` unless that is
 * VM_CACHE_ANY. Everything is checked before a page is made resident (the frames are zeroed
 * with no lock held, the region busy meanwhile). rcInvalidArgument (not inside one region,
 * not all committed, not anonymous memory, another cache mode), rcAccessDenied (protection),
 * rcBusy (the region is busy), rcOutOfMemory. On failure the sink got no run.
 */
Retcode vm_pin_frames(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access, unsigned cache,
		      const struct vm_pin_sink *sink);

/* What a dump says of a region. */
struct vm_region_info {
	uint64_t base, size; /* the reservation, guard pages included */
	unsigned flags;      /* vm_region_summary_locked: its flags, RESERVE, its pages' protections, COMMIT, LOCKED */
	unsigned cache;      /* its VMM_FLAG_* cache mode bits */
};
struct vm_region_sink {
	/* Lock held: the region found. */
	Retcode (*begin)(void *arg, const struct vm_region_info *ri);
	/* Lock held: its runs, covering it: a run per resident stretch, VM_NO_FRAME for each
	 * other stretch (all of an I/O region: device memory is not dumped). */
	vm_run_fn run;
	/* Lock held, after the last run: take the frames while nothing can move them. */
	Retcode (*end)(void *arg);
	void *arg;
};
/*
 * The region whose base is the lowest at or above `cursor`, given to the sink; *out
 * describes it. rcEof if there is none; otherwise the first failure of the sink's calls
 * (which stops it), or rcOk.
 */
Retcode vm_region_frames(struct vm_space *vs, uint64_t cursor, const struct vm_region_sink *sink,
			 struct vm_region_info *out);

#endif
