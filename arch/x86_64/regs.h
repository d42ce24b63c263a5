/* SPDX-License-Identifier: MIT */
/*
 * The general registers of a struct trap_frame (arch/trap.h), saved and restored in one
 * place for both ways into the kernel: isr.S (interrupts, exceptions) and entry.S (SYSCALL).
 * Assembly only. The pushes go from the frame's last register field (rax) to its first
 * (r15), so after SAVE_REGS rsp points at the frame; RESTORE_REGS undoes it and leaves rsp
 * at the frame's vector field.
 */
#ifndef ARCH_X86_64_REGS_H
#define ARCH_X86_64_REGS_H

#ifndef __ASSEMBLER__
#error "arch/x86_64/regs.h is for assembly files"
#endif

/* Assembly, not C: clang-format must leave it alone. */
/* clang-format off */
.macro SAVE_REGS
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
.endm

.macro RESTORE_REGS
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
.endm

#endif
