/* SPDX-License-Identifier: MIT */
/*
 * Entry stubs for all 256 vectors, ISR_STUB_SIZE bytes apart (idt_init computes their
 * addresses), and the common path that builds a struct trap_frame (the registers: regs.h)
 * and calls trap_dispatch().
 */
#include <arch/trap.h>
#include "asm.h"
#include "regs.h"

#define TF_CS_AFTER_VEC 24 /* offset of cs when only vector+error are pushed */

	.text
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept NR_VECTORS
	.balign ISR_STUB_SIZE
	.if !(vec == VEC_DF || vec == VEC_TS || vec == VEC_NP || vec == VEC_SS || vec == VEC_GP || vec == VEC_PF || vec == VEC_AC || vec == VEC_CP || vec == 29 || vec == 30)
	pushq $0                        /* no error code from the CPU: keep the frame uniform */
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	testb $3, TF_CS_AFTER_VEC(%rsp)
	jz 1f
	swapgs                          /* from ring 3: kernel GS base */
1:	SAVE_REGS
	cld
	movq %rsp, %rdi
	call trap_dispatch
	.globl trap_return
trap_return:
	RESTORE_REGS
	testb $3, TF_CS_AFTER_VEC(%rsp)
	jz 2f
	swapgs
2:	addq $16, %rsp                  /* vector, error */
	iretq

/*
 * bool cpu_catch_fault(void (*fn)(void *), void *arg, struct fault_info *fi)
 * Saves callee-saved registers on the stack and the resume point in catch_ctx; the trap
 * dispatcher, on a kernel fault while armed, fills *fi and irets to .Lcaught with the saved
 * stack pointer.
 */
	.globl cpu_catch_fault
cpu_catch_fault:
	pushq %rbp
	movq %rsp, %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	subq $8, %rsp
	movq %rsp, catch_ctx + 0(%rip)  /* rsp */
	leaq .Lcaught(%rip), %rax
	movq %rax, catch_ctx + 8(%rip)  /* rip */
	movq %rdx, catch_ctx + 16(%rip) /* fi */
	movq $1, catch_ctx + 24(%rip)   /* armed */
	movq %rdi, %rax
	movq %rsi, %rdi
	call *%rax
	movq $0, catch_ctx + 24(%rip)
	xorl %eax, %eax
	jmp 1f
.Lcaught:
	movl $1, %eax
1:	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

/* void trap_capture_frame(struct trap_frame *tf): the caller's registers. */
	.globl trap_capture_frame
trap_capture_frame:
	movq %r15, 0(%rdi)
	movq %r14, 8(%rdi)
	movq %r13, 16(%rdi)
	movq %r12, 24(%rdi)
	movq %r11, 32(%rdi)
	movq %r10, 40(%rdi)
	movq %r9, 48(%rdi)
	movq %r8, 56(%rdi)
	movq %rbp, 64(%rdi)
	movq %rdi, 72(%rdi)
	movq %rsi, 80(%rdi)
	movq %rdx, 88(%rdi)
	movq %rcx, 96(%rdi)
	movq %rbx, 104(%rdi)
	movq %rax, 112(%rdi)
	movq $0, 120(%rdi)              /* vector */
	movq $0, 128(%rdi)              /* error */
	movq (%rsp), %rax
	movq %rax, 136(%rdi)            /* rip: where the caller resumes */
	movq %cs, %rax
	movq %rax, 144(%rdi)
	pushfq
	popq 152(%rdi)
	leaq 8(%rsp), %rax
	movq %rax, 160(%rdi)            /* rsp in the caller */
	movq %ss, %rax
	movq %rax, 168(%rdi)
	movq 112(%rdi), %rax
	ret

	.bss
	.balign 8
	.globl catch_ctx
catch_ctx:
	.skip 32

/*
 * void arch_call_on_stack(void (*fn)(void *), void *arg, uint64_t stack_top)
 * Runs fn(arg) on another stack (16-byte aligned top), then returns on this one. The frame
 * chain continues across the switch, so backtraces show the caller.
 */
	.text
	.globl arch_call_on_stack
arch_call_on_stack:
	pushq %rbp
	movq %rsp, %rbp
	movq %rdx, %rsp
	pushq %rbp                      /* the caller's frame, on the new stack */
	pushq $0                        /* keeps the call 16-byte aligned */
	movq %rdi, %rax
	movq %rsi, %rdi
	call *%rax
	movq %rbp, %rsp
	popq %rbp
	ret
