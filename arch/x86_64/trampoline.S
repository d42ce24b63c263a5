/* SPDX-License-Identifier: MIT */
/*
 * The application processors' way from reset to the kernel (docs/smp.md).
 *
 * smp_trampoline_start..end is data to the kernel: smp.c copies it to SMP_TRAMPOLINE_PA (a
 * page below 1 MiB) and fills in the TRAMP_* slots (smp_internal.h) before each start-up
 * IPI. The CPU begins there in real mode with CS = SMP_TRAMPOLINE_PA >> 4, IP = 0. It loads
 * the trampoline's GDT, enters 32-bit protected mode, turns on PAE, the temporary PML4,
 * long mode and NX, enters 64-bit code, and jumps to smp_ap_entry64 in the kernel's half,
 * which the temporary tables map (their upper half is the kernel's). There it switches to
 * the kernel's own PML4 and calls smp_ap_start(index) on the CPU's stack.
 *
 * Every address in the copied code is either relative to the page (ds-relative in real
 * mode, ebx-relative after it) or computed here from SMP_TRAMPOLINE_PA.
 */
#include <arch/smp.h>
#include "smp_internal.h"

#define CR0_PE  (1 << 0)
#define CR0_WP  (1 << 16)
#define CR0_PG  (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)

#define TRAMP(label) (SMP_TRAMPOLINE_PA + ((label) - smp_trampoline_start))

	.section .rodata.trampoline, "a"
	.balign 16
	.globl smp_trampoline_start
smp_trampoline_start:
	.code16
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	movzwl %ax, %ebx
	shll $4, %ebx                   /* ebx = this page's physical address, kept to the end */
	lgdtl TRAMP_GDT_PTR
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl *TRAMP_FAR32              /* to .Lpm32, flat 32-bit code */

	.code32
.Lpm32:
	movl $TRAMP_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl TRAMP_CR3(%ebx), %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $(EFER_LME | EFER_NXE), %eax  /* NXE before paging: the kernel's tables use NX */
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_WP), %eax
	movl %eax, %cr0
	ljmpl *TRAMP_FAR64(%ebx)        /* to .Llm64: leaves compatibility mode */

	.code64
.Llm64:
	movl %ebx, %ebx                 /* upper halves are undefined after the mode switch */
	movq TRAMP_STACK(%rbx), %rsp
	movq TRAMP_INDEX(%rbx), %rdi
	movq TRAMP_KERNEL_CR3(%rbx), %rsi
	movq TRAMP_ENTRY(%rbx), %rax
	jmp *%rax                       /* smp_ap_entry64, in the kernel's half */

	/* The slots smp.c fills in, and the constant ones assembled here. */
	.org TRAMP_GDT_PTR
	.short 4 * 8 - 1
	.long TRAMP(.Lgdt)
	.org TRAMP_FAR32
	.long TRAMP(.Lpm32)
	.short TRAMP_SEL_CODE32
	.org TRAMP_FAR64
	.long TRAMP(.Llm64)
	.short TRAMP_SEL_CODE64
	.org TRAMP_GDT
.Lgdt:
	.quad 0
	.quad 0x00cf9a000000ffff        /* TRAMP_SEL_CODE32: 32-bit code, 4 GiB flat */
	.quad 0x00cf92000000ffff        /* TRAMP_SEL_DATA: data, 4 GiB flat */
	.quad 0x00af9a000000ffff        /* TRAMP_SEL_CODE64: 64-bit code */
	.globl smp_trampoline_end
smp_trampoline_end:

/*
 * smp_ap_entry64(index rdi, kernel PML4 rsi), on the CPU's own stack, in the kernel's half
 * of the temporary tables: from here on the kernel's own tables (the trampoline page is
 * not mapped in them, and nothing here needs it).
 */
	.text
	.globl smp_ap_entry64
smp_ap_entry64:
	movq %rsi, %cr3
	xorl %ebp, %ebp                 /* ends every backtrace */
	pushq $0                        /* fake return address */
	jmp smp_ap_start
