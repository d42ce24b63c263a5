/* SPDX-License-Identifier: MIT */
/*
 * What boot/entry.S leaves behind for the rest of the kernel: the TSC at the first
 * instruction and the boot stack. They live apart from the entry code so that nothing the
 * kernel refers to sits in the object that jumps up to kmain (docs/architecture.md).
 */

	.data
	.balign 8
	.globl boot_entry_tsc
boot_entry_tsc:
	.quad 0

/* The boot stack, with a page below it that paging_init leaves unmapped (an overflow then
 * faults instead of corrupting .bss). The linker script puts this section first in .bss. */
	.section .bss.boot_stack, "aw", @nobits
	.balign 4096
	.globl boot_stack_guard, boot_stack_bottom, boot_stack_top
boot_stack_guard:
	.skip 4096
boot_stack_bottom:
	.skip 16384
boot_stack_top:
