/* SPDX-License-Identifier: MIT */
/* The kernel image's own symbols: its bounds (linker.ld) and the boot stack (boot/data.S). */
#ifndef KNMM_IMAGE_H
#define KNMM_IMAGE_H

/* Kernel image bounds (linker.ld). */
extern char __kernel_start[], __text_start[], __text_end[], __rodata_start[], __data_start[], __bss_start[],
	__bss_end[], __kernel_end[];
/* The boot stack: a guard page, then the stack from bottom to top (boot/data.S). */
extern char boot_stack_guard[], boot_stack_bottom[], boot_stack_top[];

#endif
