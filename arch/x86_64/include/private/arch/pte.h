/* SPDX-License-Identifier: MIT */
/*
 * x86-64 4-level page-table entry format (Intel SDM vol. 3A, 4.5). Every hardware bit is
 * defined once here, by bit number, and read or written through the accessors below; no
 * other file spells a PTE bit. Usable from assembly. The functions are pure, so the host
 * tests check them (tests/host/test_pte.c).
 *
 * For arch and the tests only: mm and the kernel see mappings through the page-table layer
 * (arch/pt.h) in MMU_* flags, and entries decoded to text (pt_trace).
 */
#ifndef ARCH_PTE_H
#define ARCH_PTE_H

#include <arch/paging.h>

#define PTE_BIT_P       0  /* present */
#define PTE_BIT_RW      1  /* writable */
#define PTE_BIT_US      2  /* user-accessible */
#define PTE_BIT_PWT     3  /* page write-through (PAT index bit 0) */
#define PTE_BIT_PCD     4  /* page cache disable (PAT index bit 1) */
#define PTE_BIT_A       5  /* accessed (set by the CPU) */
#define PTE_BIT_D       6  /* dirty (leaf entries, set by the CPU) */
#define PTE_BIT_PS      7  /* PDE/PDPTE: this entry maps a 2 MiB / 1 GiB page */
#define PTE_BIT_PAT_4K  7  /* 4 KiB PTE: PAT index bit 2 */
#define PTE_BIT_G       8  /* global: survives CR3 reloads (kernel mappings) */
#define PTE_BIT_PAT_BIG 12 /* 2 MiB / 1 GiB leaf: PAT index bit 2 */
#define PTE_BIT_NX      63 /* no-execute (needs EFER.NXE) */

#define PTE_P       (1ull << PTE_BIT_P)
#define PTE_RW      (1ull << PTE_BIT_RW)
#define PTE_US      (1ull << PTE_BIT_US)
#define PTE_PWT     (1ull << PTE_BIT_PWT)
#define PTE_PCD     (1ull << PTE_BIT_PCD)
#define PTE_A       (1ull << PTE_BIT_A)
#define PTE_D       (1ull << PTE_BIT_D)
#define PTE_PS      (1ull << PTE_BIT_PS)
#define PTE_PAT_4K  (1ull << PTE_BIT_PAT_4K)
#define PTE_G       (1ull << PTE_BIT_G)
#define PTE_PAT_BIG (1ull << PTE_BIT_PAT_BIG)
#define PTE_NX      (1ull << PTE_BIT_NX)

/* Physical address field: bits 12..51 (the architectural maximum, MAXPHYADDR <= 52). */
#define PTE_ADDR_MASK    0x000ffffffffff000ull
#define PTE_ADDR_MASK_2M 0x000fffffffe00000ull
#define PTE_ADDR_MASK_1G 0x000fffffc0000000ull

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>
#include <knmm/mmu.h>

typedef uint64_t pte_t;

static inline bool pte_present(pte_t e) { return (e & PTE_P) != 0; }
static inline bool pte_writable(pte_t e) { return (e & PTE_RW) != 0; }
static inline bool pte_user(pte_t e) { return (e & PTE_US) != 0; }
static inline bool pte_nx(pte_t e) { return (e & PTE_NX) != 0; }
static inline bool pte_global(pte_t e) { return (e & PTE_G) != 0; }
static inline bool pte_accessed(pte_t e) { return (e & PTE_A) != 0; }
static inline bool pte_dirty(pte_t e) { return (e & PTE_D) != 0; }
/* An entry at `level` that maps memory rather than pointing to a table. */
static inline bool pte_is_leaf(pte_t e, enum pt_level level)
{
	return level == PT_LEVEL_PT || ((level == PT_LEVEL_PD || level == PT_LEVEL_PDPT) && (e & PTE_PS));
}

static inline uint64_t pte_addr_mask(enum pt_level level)
{
	return level == PT_LEVEL_PDPT ? PTE_ADDR_MASK_1G : level == PT_LEVEL_PD ? PTE_ADDR_MASK_2M : PTE_ADDR_MASK;
}
/* Physical address in a leaf entry at `level`. */
static inline uint64_t pte_leaf_pa(pte_t e, enum pt_level level) { return e & pte_addr_mask(level); }
/* Physical address of the next-level table a non-leaf entry points to. */
static inline uint64_t pte_table_pa(pte_t e) { return e & PTE_ADDR_MASK; }

/* PAT index (0..7) of a leaf entry. */
static inline unsigned pte_pat_index(pte_t e, enum pt_level level)
{
	pte_t pat = level == PT_LEVEL_PT ? PTE_PAT_4K : PTE_PAT_BIG;
	return (unsigned)(((e & pat) ? 4 : 0) | ((e & PTE_PCD) ? 2 : 0) | ((e & PTE_PWT) ? 1 : 0));
}

/* Bits selecting PAT index `idx` in a leaf at `level`. */
static inline pte_t pte_pat_bits(unsigned idx, enum pt_level level)
{
	pte_t pat = level == PT_LEVEL_PT ? PTE_PAT_4K : PTE_PAT_BIG;
	return ((idx & 4) ? pat : 0) | ((idx & 2) ? PTE_PCD : 0) | ((idx & 1) ? PTE_PWT : 0);
}

/* MMU cache mode <-> PAT index, for the layout cpu_init programs (PAT_MSR_VALUE). */
unsigned pte_pat_index_for_cache(unsigned mmu_flags);
unsigned pte_cache_for_pat_index(unsigned idx);

/* A leaf entry mapping `pa` at `level` with arch-neutral `mmu_flags` (MMU_READ required). */
pte_t pte_make_leaf(uint64_t pa, unsigned mmu_flags, enum pt_level level);
/* The arch-neutral flags of a present leaf entry (inverse of pte_make_leaf). */
unsigned pte_leaf_mmu_flags(pte_t e, enum pt_level level);
/* A non-leaf entry pointing to the table at `table_pa`; `user` lets ring 3 through. */
pte_t pte_make_table(uint64_t table_pa, bool user);

/*
 * The entry decoded, as the monitor's `pte` shows it: "not present", or what it points to
 * ("page " with the leaf's physical address, "table" with the next table's) and its bits,
 * e.g. "page  0x1000  P RW US A D NX PAT=4 (WC)" (P, RW or RO, US or S, PWT, PCD, A, D for
 * leaves, PS above the last level, G, NX; for a leaf its PAT index and that entry's memory
 * type). PTE_DESCRIBE_SIZE bytes hold any entry; a shorter buffer gets a cut, NUL-ended text.
 */
#define PTE_DESCRIBE_SIZE 72
void pte_describe(pte_t e, enum pt_level level, char *buf, unsigned size);
#endif

#endif
