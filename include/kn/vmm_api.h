/* SPDX-License-Identifier: MIT */
/*
 * The memory API of tasks (SPEC §4): regions of the caller's own address space.
 *
 * Pages are free, reserved, committed (resident once touched, or at once when LOCKED) or
 * guard pages. A commit is charged against the global commit limit when it is made, so a
 * touch of a committed page never fails for lack of memory. Flags are in kn/flags.h.
 *
 * Common rules: addresses and sizes are page-aligned, sizes non-zero, ranges do not wrap
 * and lie in the user half (0x1000 up to 0x00007ffffffff000); else rcInvalidArgument.
 * Commit, Decommit, Protect and Unmap take a range inside one region: rcNotFound when addr
 * is in free space, rcInvalidArgument when the range leaves its region. A call that fails
 * changes nothing (outputs included: they are checked before anything is done).
 *
 * Busy regions: while a locked commit or an MDL lock (KnPmmMdlCreateFromVm) of one thread
 * makes pages of a region resident, it zeroes their frames with no lock held; meanwhile
 * KnVmCommit, KnVmDecommit, KnVmProtect, KnVmUnmap and KnPmmMdlCreateFromVm of other threads
 * on that region are rcBusy and change nothing (faults go on as usual).
 *
 * Limits: a task has at most 65 536 regions, a region at most 65 536 runs (stretches of
 * pages with the same state and protection); a call that would need more, or pool memory
 * for its bookkeeping that the commit limit does not allow, is rcOutOfMemory. That holds
 * for Protect, Decommit and Unmap too when they split a region or its runs.
 */
#ifndef KN_VMM_API_H
#define KN_VMM_API_H

#include <kn/flags.h>
#include <kn/retcode.h>
#include <kn/types.h>

/*
 * Reserves a region of `size` usable bytes at `addr` (0: the kernel picks the place,
 * randomised unless the kernel runs with aslr=off). flags: VMM_FLAG_RESERVE (required),
 * one protection (READ, READ|WRITE, READ|EXECUTE, RWX_MASK), optionally COMMIT (lazy:
 * zeroed frames on first touch), COMMIT|LOCKED (every page resident at return), LOW_GUARD
 * and/or HIGH_GUARD (a never-accessible page below / above, in the reservation but not in
 * `size`), GROW_DOWN (only the top page committed; touches below grow it), one cache mode.
 * *out gets the base of the usable range.
 *   rcInvalidArgument  bad flags (no RESERVE, no or bad protection, two cache modes,
 *                      LOCKED without COMMIT, GROW_DOWN with COMMIT, unknown bits), bad
 *                      alignment, size 0, the range (guards included) wraps or leaves the
 *                      user half
 *   rcAlreadyExists    addr given and the range (guards included) overlaps a region
 *   rcOutOfMemory      no free range that large, the commit limit, or (LOCKED) frames
 *   rcFault            out is not a writable user address
 */
Retcode KnVmAllocateEx(void *addr, rtl_size_t size, int flags, void **out);

/* KnVmAllocateEx without the reason: the usable base, or RTL_NULL on failure. */
void *KnVmAllocate(void *addr, rtl_size_t size, int flags);

/*
 * Commits the reserved pages of the range (committed pages stay as they are and are not
 * charged again). flags: 0 or VMM_FLAG_COMMIT (lazy), VMM_FLAG_LOCKED with or without
 * COMMIT (every page of the range resident at return, and locked until decommitted).
 *   rcInvalidArgument  range rules, a guard page in the range, other flag bits
 *   rcNotFound         addr is in free space
 *   rcOutOfMemory      the commit limit or a quota, or (LOCKED) no frames; nothing changed
 *   rcBusy             another thread is making pages of the region resident (above)
 */
Retcode KnVmCommit(void *addr, rtl_size_t size, int flags);

/*
 * Returns the range to reserved: its frames go back to the allocator, the commit charge is
 * released, locked pages too. Reserved pages in the range are fine.
 *   rcInvalidArgument  range rules, a guard page in the range
 *   rcNotFound         addr is in free space
 *   rcBusy             a page is pinned by an MDL, or the region is busy (nothing changed)
 */
Retcode KnVmDecommit(void *addr, rtl_size_t size);

/*
 * Sets the protection of the range (reserved pages keep it for when they are committed).
 * newFlags: exactly one of READ, READ|WRITE, READ|EXECUTE, RWX_MASK. The cache mode is the
 * region's and does not change.
 *   rcInvalidArgument  range rules, a guard page in the range, another protection
 *   rcNotFound         addr is in free space
 *   rcAccessDenied     more than the region allows (an MDL mapping, or a program segment:
 *                      no more than the MDL's or the segment's protection)
 *   rcOutOfMemory      the limits above
 *   rcBusy             the region is busy (above)
 */
Retcode KnVmProtect(void *addr, rtl_size_t size, int newFlags);

/*
 * Unmaps the range: the usable range of a region (or its whole reservation) frees the
 * region, guard pages included; a part of it splits the region. Frames go back, the commit
 * charge is released.
 *   rcInvalidArgument  range rules, or a part of a device mapping (KnPmmMdlCreateFromPhys:
 *                      it is unmapped whole)
 *   rcNotFound         addr is in free space
 *   rcOutOfMemory      the limits above (a split)
 *   rcBusy             the region is busy (above)
 */
Retcode KnVmUnmap(void *addr, rtl_size_t size);

/* What KnVmQuery says about a page. */
typedef struct {
	void *regionBase; /* the region's reservation (guards included); free: the free gap */
	rtl_size_t regionSize;
	int state;          /* VMM_STATE_FREE / RESERVED / COMMITTED / GUARD */
	rtl_bool resident;  /* a frame backs the page */
	int flags;          /* RESERVE; COMMIT if committed; the page's protection (none for a
			       guard); LOCKED; the region's cache mode, guard and GROW_DOWN flags */
	rtl_size_t runSize; /* bytes from the page with the same state, protection, lock and
			       residency (free: to the end of the gap) */
} KnVmInfo;

/*
 * Describes the page holding addr (rounded down to its page).
 *   rcInvalidArgument  addr is not in the user half
 *   rcFault            info is not a writable user address
 */
Retcode KnVmQuery(const void *addr, KnVmInfo *info);

#endif
