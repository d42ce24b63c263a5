/* SPDX-License-Identifier: MIT */
/*
 * Flags of the memory API (SPEC §4.2), for KnVmAllocate, KnVmCommit, KnVmProtect and the MDL
 * calls. Unknown bits are rcInvalidArgument.
 *
 * Protection: exactly one of READ, READ|WRITE, READ|EXECUTE, RWX_MASK. Without EXECUTE the
 * pages are no-execute. Cache: at most one of the four modes (default write-back).
 */
#ifndef KN_FLAGS_H
#define KN_FLAGS_H

#define VMM_FLAG_READ     0x0001
#define VMM_FLAG_WRITE    0x0002
#define VMM_FLAG_EXECUTE  0x0004
#define VMM_FLAG_RWX_MASK 0x0007

#define VMM_FLAG_RESERVE 0x0010 /* required by KnVmAllocate */
#define VMM_FLAG_COMMIT  0x0020 /* lazy: a zeroed frame on first touch */
#define VMM_FLAG_LOCKED  0x0040 /* with COMMIT: every page resident at return */

#define VMM_FLAG_LOW_GUARD  0x0100 /* one never-accessible page below the usable range */
#define VMM_FLAG_HIGH_GUARD 0x0200 /* one above it */
#define VMM_FLAG_GROW_DOWN  0x0400 /* stack-like: grows downwards on touch */

#define VMM_FLAG_WRITE_BACK    0x1000
#define VMM_FLAG_WRITE_THROUGH 0x2000
#define VMM_FLAG_WRITE_COMBINE 0x4000
#define VMM_FLAG_CACHE_DISABLE 0x8000
#define VMM_FLAG_CACHE_MASK    0xf000

#define VMM_FLAG_ALLOCATE_MASK                                                                           \
	(VMM_FLAG_RWX_MASK | VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | VMM_FLAG_LOW_GUARD | \
	 VMM_FLAG_HIGH_GUARD | VMM_FLAG_GROW_DOWN | VMM_FLAG_CACHE_MASK)

/* KnVmQuery states */
#define VMM_STATE_FREE      0
#define VMM_STATE_RESERVED  1
#define VMM_STATE_COMMITTED 2
#define VMM_STATE_GUARD     3

#endif
