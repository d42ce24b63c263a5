/* SPDX-License-Identifier: MIT */
/*
 * The geometry of x86-64 4-level paging: the levels, what one entry at each maps, the index
 * of an address in a table, canonical addresses. What callers of the page-table layer
 * (arch/pt.h) may know; the entries' bits are arch/pte.h's, which only arch and the tests
 * include. Usable from assembly (the constants).
 */
#ifndef ARCH_PAGING_H
#define ARCH_PAGING_H

#define PT_ENTRIES    512
#define PT_INDEX_BITS 9
#define VA_BITS       48

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>

/* Level 0 holds 4 KiB PTEs, 1 PDEs, 2 PDPTEs, 3 PML4Es. */
enum pt_level {
	PT_LEVEL_PT = 0,
	PT_LEVEL_PD = 1,
	PT_LEVEL_PDPT = 2,
	PT_LEVEL_PML4 = 3,
};

/* Bytes mapped by one entry at `level`. */
static inline uint64_t pt_level_size(enum pt_level level) { return 1ull << (12 + PT_INDEX_BITS * level); }
/* Index of va's entry in the table at `level`. */
static inline unsigned pt_index(uint64_t va, enum pt_level level)
{
	return (unsigned)(va >> (12 + PT_INDEX_BITS * level)) & (PT_ENTRIES - 1);
}
/* Bits 48..63 equal bit 47. */
static inline bool va_is_canonical(uint64_t va)
{
	return (uint64_t)((int64_t)(va << (64 - VA_BITS)) >> (64 - VA_BITS)) == va;
}
/* Sign-extends bit 47 (turns a table-index composition into a usable address). */
static inline uint64_t va_canonicalize(uint64_t va)
{
	return (uint64_t)((int64_t)(va << (64 - VA_BITS)) >> (64 - VA_BITS));
}
#endif

#endif
