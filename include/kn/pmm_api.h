/* SPDX-License-Identifier: MIT */
/*
 * MDL buffers (SPEC §5): physical memory as a kernel object, for shared memory between
 * tasks, loading programs, and dumps.
 *
 * An MDL is a size and a list of runs of frames, or of fictitious pages (a count with no
 * frames). It holds its frames until its last handle is closed; each mapping holds the
 * frames it maps until it is unmapped: the frames go back when both are gone, in either
 * order. Handles carry rights (kn/handle_api.h): KN_RIGHT_MAP_READ to map at all,
 * KN_RIGHT_MAP_WRITE to map writable, KN_RIGHT_CLONE to clone. A handle that is not an MDL
 * handle of the caller's is rcBadHandle, a missing right rcAccessDenied.
 *
 * `flags` of the Create calls: the most any mapping may allow (VMM_FLAG_READ, READ|WRITE,
 * READ|EXECUTE or VMM_FLAG_RWX_MASK) and at most one cache mode (kn/flags.h); anything else
 * is rcInvalidArgument. Every output pointer that is not writable user memory is rcFault;
 * a call that fails changes nothing. Every call that makes a handle may also be
 * rcOutOfMemory because the caller's handle table is full or a quota (kn/task_api.h) is
 * reached: that is known before anything is done.
 */
#ifndef KN_PMM_API_H
#define KN_PMM_API_H

#include <kn/flags.h>
#include <kn/retcode.h>
#include <kn/types.h>

/*
 * An MDL of `size` bytes of zeroed frames (whole pages: the last page's tail is zero too).
 * *mdl gets a handle with every MDL right.
 *   rcInvalidArgument  size 0, flags
 *   rcOutOfMemory      the commit limit or frames
 */
Retcode KnPmmMdlCreate(rtl_size_t size, int flags, Handle *mdl);

/* KnPmmMdlCreate, then the `size` bytes at buf copied in. rcFault: buf is not readable. */
Retcode KnPmmMdlCreateFromBuf(const void *buf, rtl_size_t size, int flags, Handle *mdl);

/*
 * An MDL over the frames behind [addr, addr + size) of the caller: the range is made
 * resident and its frames pinned (decommitting any of it is rcBusy while the MDL lives);
 * the range is backed by the MDL's frames, so writes through either are seen by both.
 * The MDL takes the range's cache mode (flags may name it, or none).
 *   rcInvalidArgument  unaligned or empty range, not inside one region, or not all of it
 *                      committed; flags, or a cache mode other than the range's
 *   rcNotFound         addr is in free space
 *   rcAccessDenied     the range's protection (or, for a mapping of an MDL, what its handle
 *                      allowed) does not allow every protection bit flags ask
 *   rcBusy             another thread is making pages of that region resident (kn/vmm_api.h)
 *   rcOutOfMemory
 */
Retcode KnPmmMdlCreateFromVm(void *addr, rtl_size_t size, int flags, Handle *mdl);

/*
 * An MDL over device memory [pa, pa + size) (not RAM). Only for tasks created with
 * KN_TASK_PRIVILEGED.
 *   rcAccessDenied     the caller is not privileged
 *   rcInvalidArgument  unaligned pa, size 0, flags, or the range is RAM or past the CPU's
 *                      physical address width
 *   rcOutOfMemory      no memory for the MDL, or no room for its handle (a full table, a
 *                      quota)
 */
Retcode KnPmmMdlCreateFromPhys(rtl_uint64_t pa, rtl_size_t size, int flags, Handle *mdl);

/*
 * A second MDL over the same frames (sharing, not copying): a write through a mapping of
 * one is seen through a mapping of the other. The new handle has the rights of `mdl`.
 *   rcBadHandle, rcAccessDenied (no KN_RIGHT_CLONE), rcOutOfMemory
 */
Retcode KnPmmMdlClone(Handle mdl, Handle *clone);

/*
 * Maps [offset, offset + size) of the MDL (page-aligned, inside its pages) at addr (0: the
 * kernel picks, as KnVmAllocate) with `flags`: a protection as in KnVmAllocate, and
 * optionally the MDL's own cache mode. Frames are mapped as committed, resident pages;
 * fictitious pages as committed pages that are not resident (touching one gives this
 * mapping a zeroed frame of its own). KnVmProtect of the mapping cannot go above the MDL's
 * maximum. *outAddr gets the base; KnVmUnmap unmaps it.
 *   rcBadHandle
 *   rcAccessDenied     no KN_RIGHT_MAP_READ, or writable without KN_RIGHT_MAP_WRITE, or a
 *                      protection above the MDL's maximum
 *   rcInvalidArgument  unaligned or empty range, past the MDL's end, bad protection, a
 *                      cache mode other than the MDL's, addr as in KnVmAllocate
 *   rcAlreadyExists    addr given and the range is taken
 *   rcOutOfMemory
 *   rcBusy             another thread of the task unmapped or changed the new mapping's
 *                      region before it was filled (nothing stays mapped)
 *   rcFault            bad outAddr
 */
Retcode KnPmmMdlMap(Handle mdl, rtl_size_t offset, rtl_size_t size, void *addr, int flags, void **outAddr);

/* The MDL's size in bytes, as it was created. rcBadHandle, rcFault. */
Retcode KnPmmMdlGetSize(Handle mdl, rtl_size_t *size);

/*
 * Which pages of the caller's region with usable base `addr` are in use (resident), from
 * page `startPage` on, as alternating counts: counters[0 .. *usedCounters), each > 0;
 * *firstUsed says whether counters[0] counts used pages. At most countersNum counts (the
 * kernel may give fewer, at most 256 a call). Call again with startPage advanced by the
 * pages counted so far; the region is described when the counts sum to its pages, or when
 * a call gives *usedCounters == 0 (startPage at the end). Cost: the runs and page tables
 * of the region, never its pages.
 *   rcNotFound         addr is in free space
 *   rcInvalidArgument  addr is not a region's usable base, startPage is past its end,
 *                      countersNum is 0
 *   rcFault            counters (min(countersNum, 256) entries), firstUsed or usedCounters
 *                      is not writable
 */
Retcode KnPmmMdlGetUsageMap(const void *addr, rtl_size_t startPage, rtl_size_t *counters, rtl_size_t countersNum,
			    rtl_bool *firstUsed, rtl_size_t *usedCounters);

#endif
