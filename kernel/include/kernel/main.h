/* SPDX-License-Identifier: MIT */
/* What kmain (kernel/main.c) leaves behind for the rest of the kernel, the tests and gdb. */
#ifndef KERNEL_MAIN_H
#define KERNEL_MAIN_H

#include <knmm/bootinfo.h>

/* The loader's information, in the kernel's own form (boot/bootinfo.c; gdb's kn-boot). */
extern struct boot_info boot_info;
/* Usable RAM in bytes, as the boot allocator found it (the gdb test compares it with the log). */
extern uint64_t mem_usable_bytes;
/* The TSC when the kernel was up (kernel_ready): `bench boot_to_ready` counts from the entry. */
extern uint64_t boot_ready_tsc;

/* gdb's anchor: the kernel is up (paging, traps, memory totals) and about to do its work.
 * Called once, by kmain. */
void kernel_ready(void);

#endif
