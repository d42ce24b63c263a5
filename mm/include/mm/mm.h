/* SPDX-License-Identifier: MIT */
/*
 * Kernel memory services, NT style (SPEC §5), kernel stacks, and mm start-up.
 * None of these may be called with an address-space lock held; none sleeps.
 */
#ifndef MM_MM_H
#define MM_MM_H

#include <kn/retcode.h>
#include <knmm/bootinfo.h>

/* Brings up the physical allocator, the commit limit and the kernel dynamic area. */
void mm_init(const struct boot_info *bi);
/* Returns cached memory (per-CPU frames, lookaside blocks, empty pool segments) to the
 * allocators, so that free-page counts can be compared (tests). */
void mm_trim_caches(void);

/* Kernel stacks: committed, resident, with an unmapped guard page below. An overflow is a
 * double fault that panics naming the stack. rcOutOfMemory if no memory. */
Retcode kstack_alloc(const char *name, uint64_t size, uint64_t *base);
void kstack_free(uint64_t base, uint64_t size);
/* Names the kernel stack whose guard page holds addr ("kernel stack 'X'"), or NULL; the trap
 * layer's stack namer for panics (lock-free). */
const char *kstack_describe(uint64_t addr);

/* The address is mapped (kernel half: the kernel's tables; user half: the current ones). */
bool mm_is_address_valid(const void *va);
/* The physical address behind va; false if nothing maps it. */
bool mm_get_physical_address(const void *va, uint64_t *pa);
/* Maps a physical range that is not RAM (device registers) with cache mode `cache`
 * (one VMM_FLAG_* cache flag, 0 = write-back). NULL if the range is RAM or bad, or no room. */
void *mm_map_io_space(uint64_t pa, uint64_t size, unsigned cache);
/* Whether the page-aligned physical range [first, end) is device space: outside the direct
 * map (so not RAM), below the CPU's physical limit, not empty. */
bool mm_phys_is_io(uint64_t first, uint64_t end);
void mm_unmap_io_space(void *va, uint64_t size);
/* Physically contiguous, zeroed memory ending at or below highest_pa (inclusive), through
 * the direct map (NT MmAllocateContiguousMemory). NULL if none. Charged to the commit. */
void *mm_alloc_contiguous(uint64_t size, uint64_t highest_pa);
void mm_free_contiguous(void *va, uint64_t size);
/* Uncached memory: its own mapping with caching disabled, and the frames' direct-map alias
 * made uncached too (no conflicting memory types). NULL if no memory. */
void *mm_alloc_noncached(uint64_t size);
void mm_free_noncached(void *va, uint64_t size);

/* The `vm` report (SPEC §8), to the console: as log lines (at boot), or plain (the
 * monitor's `vm`, as its other commands print). */
void vm_report(void);
void vm_print_report(void);
/* One line per region as Linux's /proc/PID/maps and pmap show them: start-end, size and
 * resident size in human units, the most it may allow, and a label ([stack] for a grow-down
 * region, [elf] for a program segment, [mdl] for an MDL mapping, [io], [anon]) (the
 * monitor's `maps`). */
struct vm_space;
void vm_print_maps(struct vm_space *vs);
/* What the VM says of the page at va (user half), whatever the page tables hold: "vm:
 * committed, resident, r-x WB", or for a page that is not present "committed, not resident:
 * demand-zero", "reserved", "guard page", "free" (the monitor's `pte`, as WinDbg's !pte). */
void vm_print_page(struct vm_space *vs, uint64_t va);
/* Free blocks of each order in each zone, and the per-CPU cache (the monitor's `buddy`, like
 * Linux's /proc/buddyinfo). */
void buddy_report(void);
/* The page descriptor of the frame at physical address pa: state, reference and pin counts,
 * block order, flags and memory type, the owner's word; or why there is none (the monitor's
 * `pfn`, like WinDbg's !pfn). Read without locks: a snapshot. */
void pfn_report(uint64_t pa);
struct vm_space;
/* One line per region of a space: base, size, resident pages, maximum protection, cache
 * mode, flags and name, runs (the monitor's `regions`). */
void vm_print_regions(struct vm_space *vs);
/* The usage map of the region holding va (the monitor's `usage`, like KnPmmMdlGetUsageMap,
 * a character a page: resident, locked, committed and not resident, reserved, guard), read
 * under the space's lock; false (nothing printed) if no region holds va. */
bool vm_print_usage(struct vm_space *vs, uint64_t va);

#endif
