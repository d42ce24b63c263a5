/* SPDX-License-Identifier: MIT */
/*
 * Arch-neutral mapping attributes. Generic code (mm/, kernel/) speaks only these; the arch
 * layer turns them into page-table bits (arch/x86_64: P/RW/US/NX/G and PAT/PCD/PWT).
 */
#ifndef KNMM_MMU_H
#define KNMM_MMU_H

#define MMU_READ      (1u << 0)
#define MMU_WRITE     (1u << 1)
#define MMU_EXEC      (1u << 2)
#define MMU_USER      (1u << 3) /* accessible from ring 3 */
#define MMU_GLOBAL    (1u << 4) /* kernel mapping shared by every address space */
#define MMU_PERM_MASK (MMU_READ | MMU_WRITE | MMU_EXEC)

/* Cache mode: a field, exactly one value. */
#define MMU_CACHE_SHIFT 8
#define MMU_CACHE_MASK  (7u << MMU_CACHE_SHIFT)
#define MMU_CACHE_WB    (0u << MMU_CACHE_SHIFT) /* write-back (default) */
#define MMU_CACHE_WT    (1u << MMU_CACHE_SHIFT) /* write-through */
#define MMU_CACHE_WC    (2u << MMU_CACHE_SHIFT) /* write-combining */
#define MMU_CACHE_UCM   (3u << MMU_CACHE_SHIFT) /* uncached, MTRRs may override (UC-) */
#define MMU_CACHE_UC    (4u << MMU_CACHE_SHIFT) /* uncached */
#define MMU_CACHE_COUNT 5

#define MMU_FLAGS_VALID (MMU_PERM_MASK | MMU_USER | MMU_GLOBAL | MMU_CACHE_MASK)

#ifndef __ASSEMBLER__
static inline unsigned mmu_cache(unsigned flags) { return flags & MMU_CACHE_MASK; }
const char *mmu_cache_name(unsigned flags);
#endif

#endif
