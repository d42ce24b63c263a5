/* SPDX-License-Identifier: MIT */
/*
 * The kernel's own address space at boot: a new PML4 with the direct map of all RAM and the
 * kernel image mapped W^X, replacing the tables boot/entry.S built.
 */
#ifndef MM_KSPACE_H
#define MM_KSPACE_H

#include <knmm/bootinfo.h>
#include <knmm/image.h>

/* Builds the kernel PML4 (frames from bootmem), switches CR3 to it and drops the boot tables.
 * Panics if memory runs out: nothing can work without it. */
void kspace_init(const struct boot_info *bi);

/* True for memory-map types the direct map covers (RAM, including ACPI's). */
bool boot_mem_is_ram(enum boot_mem_type t);

#endif
