/* SPDX-License-Identifier: MIT */
/*
 * The boot frame allocator: hands out frames from the memory map before the page database
 * exists (page tables of the kernel's own PML4, the page database itself). It starts from the
 * available ranges minus everything the boot claims (first MiB, kernel image, boot
 * information, modules, symbol table), allocates top-down, and remembers what it gave away
 * so that the physical allocator can take over exactly what is left.
 */
#ifndef MM_BOOTMEM_H
#define MM_BOOTMEM_H

#include <knmm/bootinfo.h>

struct bootmem_range {
	uint64_t base, end; /* [base, end), page-aligned */
};

#define BOOTMEM_MAX_RANGES 256
#define BOOTMEM_MAX_USED   128

/* Why frames left the free list: the physical allocator gives them this state. */
enum bootmem_use {
	BOOTMEM_RESERVED,   /* the first MiB */
	BOOTMEM_KERNEL,     /* image, boot information, modules, symbols */
	BOOTMEM_PAGE_TABLE, /* tables of the kernel's own PML4 */
	BOOTMEM_PAGE_DB,    /* backing of the page database (never zeroed, never described) */
};

struct bootmem_used {
	uint64_t base, end;
	enum bootmem_use use;
};

struct bootmem_stats {
	uint64_t usable;    /* bytes in available ranges (page-aligned inward) */
	uint64_t claimed;   /* bytes of those the boot claims (first MiB, image, info, modules, symbols) */
	uint64_t allocated; /* bytes handed out by bootmem_alloc */
	uint64_t highest;   /* end of the highest available range */
};

/* Builds the free list. `kernel_pa_end` is the physical end of the kernel image. */
void bootmem_init(const struct boot_info *bi, uint64_t kernel_pa_end);

/* An `align`-aligned block of `size` bytes below `max_pa` (and below the current limit),
 * zeroed unless it is page-database backing, or 0. */
uint64_t bootmem_alloc(uint64_t size, uint64_t align, uint64_t max_pa, enum bootmem_use use);
/* Returns one page (e.g. a page table freed during boot). */
void bootmem_free_page(uint64_t pa);
/* Frames above 4 GiB become reachable once the kernel's direct map is live. */
void bootmem_set_limit(uint64_t max_pa);

const struct bootmem_stats *bootmem_stats(void);
/* The free ranges left, and what was taken (for the physical allocator). */
unsigned bootmem_free_ranges(const struct bootmem_range **ranges);
unsigned bootmem_used_ranges(const struct bootmem_used **used);
/* The physical allocator has taken over: any later bootmem_alloc is a kernel bug. */
void bootmem_retire(void);

/* pt_frame_source backed by bootmem (used until the physical allocator is up). */
extern const struct pt_frame_source bootmem_pt_source;

#endif
