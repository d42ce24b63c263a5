/* SPDX-License-Identifier: MIT */
/*
 * The virtual address layout (SPEC §2). Usable from assembly. docs/boot.md draws it.
 *
 *   0x0000000000001000 .. 0x00007fffffffefff   user half (page 0 never mapped)
 *   0xffff800000000000 .. +64 TiB               direct map of all RAM (NX)
 *   0xffffc00000000000 .. +2 TiB                kernel dynamic area: the pool area (first
 *                                               512 GiB), then kernel stacks, system
 *                                               mappings of MDLs and I/O mappings
 *   0xffffd00000000000 .. +16 TiB               page database (one 32-byte descriptor per frame)
 *   0xffffffff80000000 .. +2 GiB                kernel image (-mcmodel=kernel), phys 0 + offset
 */
#ifndef KNMM_LAYOUT_H
#define KNMM_LAYOUT_H

#define USER_BASE 0x0000000000001000
#define USER_END  0x00007ffffffff000 /* exclusive: the last user page is 0x7fffffffe000 */

#define DIRECT_MAP_BASE 0xffff800000000000
#define DIRECT_MAP_SIZE 0x0000400000000000 /* 64 TiB */

#define KDYN_BASE   0xffffc00000000000
#define KDYN_SIZE   0x0000020000000000 /* 2 TiB: four top-level entries, made at boot */
#define KPOOL_BASE  KDYN_BASE
#define KPOOL_SIZE  0x0000008000000000 /* 512 GiB */
#define KSPACE_BASE (KDYN_BASE + KPOOL_SIZE)
#define KSPACE_END  (KDYN_BASE + KDYN_SIZE)

#define PAGEDB_BASE 0xffffd00000000000
#define PAGEDB_SIZE 0x0000100000000000

#define KERNEL_VMA     0xffffffff80000000
#define KERNEL_LOAD_PA 0x0000000000100000 /* GRUB loads the image at 1 MiB */

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>

#ifdef KNMM_HOST
/* Host tests: simulated physical memory is a host buffer; `host_phys_base` is its address 0. */
extern uintptr_t host_phys_base;
static inline void *phys_to_virt(uint64_t pa) { return (void *)(host_phys_base + (uintptr_t)pa); }
static inline uint64_t virt_to_phys_direct(const void *va) { return (uint64_t)((uintptr_t)va - host_phys_base); }
#else
static inline void *phys_to_virt(uint64_t pa) { return (void *)(uintptr_t)(pa + DIRECT_MAP_BASE); }
static inline uint64_t virt_to_phys_direct(const void *va) { return (uint64_t)(uintptr_t)va - DIRECT_MAP_BASE; }
#endif
/* Physical address of a symbol in the kernel image. */
static inline uint64_t kimage_to_phys(const void *va) { return (uint64_t)(uintptr_t)va - KERNEL_VMA; }

static inline bool is_user_addr(uint64_t va) { return va >= USER_BASE && va < USER_END; }
/* [va, va+size) lies entirely in the user half and does not wrap. */
static inline bool is_user_range(uint64_t va, uint64_t size)
{
	return va >= USER_BASE && va < USER_END && size <= USER_END - va;
}
static inline bool is_kernel_addr(uint64_t va) { return va >= DIRECT_MAP_BASE; }
#endif

#endif
