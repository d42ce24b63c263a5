/* SPDX-License-Identifier: MIT */
/*
 * Kernel entry from a Multiboot2 loader (GRUB).
 *
 * GRUB enters here in 32-bit protected mode, paging off, eax = Multiboot2 magic,
 * ebx = physical address of the information block. The image is linked in the higher half
 * (KERNEL_VMA + 1 MiB) and loaded at 1 MiB, so until paging is on every address used here is
 * written `sym - KERNEL_VMA` (PHYS(sym)).
 *
 * Steps: record the entry TSC; check the loader magic and that the CPU has long mode and NX
 * (otherwise print why on COM1 and stop); zero .bss; build the early tables; enable PAE,
 * long mode, NX and paging; enter 64-bit code; jump to the higher half; call kmain().
 *
 * Early tables (dropped by paging_init once the kernel has its own PML4):
 *   PML4[0]   -> identity map of 0..4 GiB with 2 MiB pages (for this code and GRUB's data)
 *   PML4[256] -> the same, as the start of the direct map (phys_to_virt works at once)
 *   PML4[511] -> PDPT[510..511] map KERNEL_VMA.. onto phys 0..2 GiB
 */
#include <knmm/layout.h>
#include "multiboot2.h"

#define PHYS(sym) ((sym) - KERNEL_VMA)

#define COM1 0x3f8
#define QEMU_EXIT_PORT 0xf4
#define QEMU_EXIT_BOOT_FAILED 0x13

#define CR0_PE (1 << 0)
#define CR0_WP (1 << 16)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)
#define EARLY_PTE_P  (1 << 0)
#define EARLY_PTE_RW (1 << 1)
#define EARLY_PTE_PS (1 << 7)

/* ---------------------------------------------------------------- Multiboot2 header */
	.section .multiboot, "a"
	.balign 8
mb2_header:
	.long MB2_HEADER_MAGIC
	.long MB2_ARCH_I386
	.long mb2_header_end - mb2_header
	.long -(MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))

	.balign 8
1:	.short MB2_HTAG_INFO_REQUEST, 0
	.long 2f - 1b
	.long MB2_TAG_MMAP, MB2_TAG_CMDLINE, MB2_TAG_MODULE, MB2_TAG_ELF_SECTIONS, MB2_TAG_LOADER_NAME
2:
	.balign 8
	.short MB2_HTAG_ENTRY, 0
	.long 12
	.long PHYS(_start)

	.balign 8
	.short MB2_HTAG_MODULE_ALIGN, 0
	.long 8

	.balign 8
	.short MB2_HTAG_END, 0
	.long 8
mb2_header_end:

/* ---------------------------------------------------------------- 32-bit entry */
	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	movl %eax, %edi                 /* magic: kept in edi up to kmain */
	movl %ebx, %esi                 /* info block: kept in esi */
	rdtsc                           /* boot_to_ready counts from here */
	movl %eax, PHYS(boot_entry_tsc)
	movl %edx, PHYS(boot_entry_tsc) + 4
	movl $PHYS(boot_stack_top), %esp

	call early_serial_init

	cmpl $MB2_BOOTLOADER_MAGIC, %edi
	jne .Lno_multiboot2

	/* CPUID must exist (EFLAGS.ID can be toggled). */
	pushfl
	popl %eax
	movl %eax, %ecx
	xorl $(1 << 21), %eax
	pushl %eax
	popfl
	pushfl
	popl %eax
	pushl %ecx
	popfl
	cmpl %eax, %ecx
	je .Lno_long_mode

	movl $0x80000000, %eax
	cpuid
	cmpl $0x80000001, %eax
	jb .Lno_long_mode
	movl $0x80000001, %eax
	cpuid
	testl $(1 << 29), %edx          /* LM */
	jz .Lno_long_mode
	testl $(1 << 20), %edx          /* NX */
	jz .Lno_nx

	/* Zero .bss (early tables and the stack live there: keep nothing on the stack across). */
	movl %edi, %ebp
	movl $PHYS(__bss_start), %edi
	movl $PHYS(__bss_end), %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl
	movl %ebp, %edi

	/* PD entries: 4 x 512 two-MiB pages = identity 0..4 GiB. */
	movl $PHYS(boot_pd), %edx
	xorl %ecx, %ecx                 /* entry index 0..2047 */
1:	movl %ecx, %eax
	shll $21, %eax                  /* low 32 bits of index * 2 MiB */
	orl $(EARLY_PTE_P | EARLY_PTE_RW | EARLY_PTE_PS), %eax
	movl %eax, (%edx, %ecx, 8)
	movl %ecx, %eax
	shrl $11, %eax                  /* high bits of index * 2 MiB */
	movl %eax, 4(%edx, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jne 1b

	/* Low PDPT: 4 entries -> the 4 PDs. */
	movl $PHYS(boot_pdpt_low), %edx
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $12, %eax
	addl $PHYS(boot_pd) + (EARLY_PTE_P | EARLY_PTE_RW), %eax
	movl %eax, (%edx, %ecx, 8)
	incl %ecx
	cmpl $4, %ecx
	jne 1b

	/* High PDPT: entries 510, 511 -> the first two PDs (phys 0..2 GiB). */
	movl $PHYS(boot_pdpt_high), %edx
	movl $PHYS(boot_pd) + (EARLY_PTE_P | EARLY_PTE_RW), %eax
	movl %eax, 510 * 8(%edx)
	addl $4096, %eax
	movl %eax, 511 * 8(%edx)

	movl $PHYS(boot_pml4), %edx
	movl $PHYS(boot_pdpt_low) + (EARLY_PTE_P | EARLY_PTE_RW), %eax
	movl %eax, 0 * 8(%edx)
	movl %eax, 256 * 8(%edx)
	movl $PHYS(boot_pdpt_high) + (EARLY_PTE_P | EARLY_PTE_RW), %eax
	movl %eax, 511 * 8(%edx)

	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl %edx, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $(EFER_LME | EFER_NXE), %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PE | CR0_PG | CR0_WP), %eax
	movl %eax, %cr0

	lgdt PHYS(boot_gdt_ptr)
	ljmp $0x08, $PHYS(.Llong_mode_low)

.Lno_multiboot2:
	movl $PHYS(msg_no_mb2), %eax
	jmp .Lfail
.Lno_long_mode:
	movl $PHYS(msg_no_lm), %eax
	jmp .Lfail
.Lno_nx:
	movl $PHYS(msg_no_nx), %eax
.Lfail:
	call early_serial_puts
	movw $QEMU_EXIT_PORT, %dx
	movl $QEMU_EXIT_BOOT_FAILED, %eax
	outl %eax, %dx                  /* leaves QEMU when isa-debug-exit is present */
1:	hlt
	jmp 1b

/* COM1: 115200 8N1, FIFO on. Clobbers eax, edx. */
early_serial_init:
	movw $COM1 + 1, %dx
	xorb %al, %al
	outb %al, %dx                   /* no interrupts */
	movw $COM1 + 3, %dx
	movb $0x80, %al
	outb %al, %dx                   /* DLAB */
	movw $COM1 + 0, %dx
	movb $1, %al
	outb %al, %dx                   /* divisor 1: 115200 baud */
	movw $COM1 + 1, %dx
	xorb %al, %al
	outb %al, %dx
	movw $COM1 + 3, %dx
	movb $0x03, %al
	outb %al, %dx                   /* 8N1 */
	movw $COM1 + 2, %dx
	movb $0xc7, %al
	outb %al, %dx                   /* FIFO on, cleared */
	movw $COM1 + 4, %dx
	movb $0x03, %al
	outb %al, %dx                   /* DTR, RTS */
	ret

/* Print the NUL-terminated string at physical address eax. Clobbers eax, ebx, edx. */
early_serial_puts:
	movl %eax, %ebx
1:	movb (%ebx), %al
	testb %al, %al
	jz 3f
	movb %al, %ah
	movw $COM1 + 5, %dx
2:	inb %dx, %al
	testb $0x20, %al
	jz 2b
	movw $COM1, %dx
	movb %ah, %al
	outb %al, %dx
	incl %ebx
	jmp 1b
3:	ret

/* ---------------------------------------------------------------- 64-bit, low half */
	.code64
.Llong_mode_low:
	movabsq $.Lhigher_half, %rax
	jmp *%rax

	.text
.Lhigher_half:
	xorl %eax, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movabsq $boot_stack_top, %rsp
	xorl %ebp, %ebp                 /* ends every backtrace */
	movl %edi, %edi                 /* upper halves are undefined after the mode switch */
	movl %esi, %esi
	pushq $0                        /* fake return address */
	jmp kmain

/* ---------------------------------------------------------------- data */
	.section .rodata
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff        /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
	.short boot_gdt_end - boot_gdt - 1
	.long PHYS(boot_gdt)

msg_no_mb2:
	.asciz "\r\nknmm: boot failed: not started by a Multiboot2 loader (use GRUB's multiboot2 command)\r\n"
msg_no_lm:
	.asciz "\r\nknmm: boot failed: this CPU has no long mode (x86-64); knmm needs a 64-bit CPU\r\n"
msg_no_nx:
	.asciz "\r\nknmm: boot failed: this CPU has no NX (execute-disable) bit; knmm needs it\r\n"

	.section .bss.boot_tables, "aw", @nobits
	.balign 4096
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4 * 4096
