/* SPDX-License-Identifier: MIT */
/*
 * SYSCALL entry and the thread context switch.
 *
 * SYSCALL: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9; rcx holds the user rip,
 * r11 the user rflags. The entry switches to the thread's kernel stack, builds the same
 * struct trap_frame an interrupt would (vector VEC_SYSCALL), calls the handler the kernel
 * registered (trap_set_syscall_handler: syscall_dispatch) with interrupts on, and returns
 * with SYSRET (IRET when the frame's rip is not a plain lower-half address, where SYSRET
 * would fault in ring 0).
 */
#include <arch/gdt.h>
#include <arch/percpu.h>
#include <arch/trap.h>
#include <knmm/layout.h>
#include "regs.h"

	.text
	.globl syscall_entry
syscall_entry:
	swapgs
	movq %rsp, %gs:PERCPU_USER_RSP
	movq %gs:PERCPU_KERNEL_RSP, %rsp
	pushq $(GDT_USER_DS | SEL_RPL3)  /* ss */
	pushq %gs:PERCPU_USER_RSP        /* rsp */
	pushq %r11                       /* rflags */
	pushq $(GDT_USER_CS | SEL_RPL3)  /* cs */
	pushq %rcx                       /* rip */
	pushq $0                         /* error */
	pushq $VEC_SYSCALL               /* vector */
	SAVE_REGS
	xorl %ebp, %ebp                  /* backtraces stop at the user boundary */
	movq %rsp, %rdi
	sti
	call *syscall_handler(%rip)
	.globl syscall_return
syscall_return:                          /* (the gdb extension's trap-frame unwinder) */
	cli
	RESTORE_REGS
	addq $16, %rsp                   /* vector, error */
	/* rsp -> rip, cs, rflags, rsp, ss */
	movq (%rsp), %rcx
	movabsq $USER_END, %r11
	cmpq %r11, %rcx
	jae 1f                           /* not a lower-half rip: IRET instead */
	movq 16(%rsp), %r11              /* rflags */
	movq 24(%rsp), %rsp              /* user rsp */
	swapgs
	sysretq
1:	swapgs
	iretq

/*
 * void arch_switch(uint64_t *from_rsp, uint64_t to_rsp)
 * Saves the callee-saved registers on this stack, stores rsp in *from_rsp, continues on the
 * stack at to_rsp (a stack saved by arch_switch, or made by arch_thread_stack_init in
 * thread.c, which knows the order of the pops below).
 */
	.globl arch_switch
arch_switch:
	pushfq                          /* each thread keeps its own flags (IF, AC) */
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	popfq
	ret

/* First code of every new thread: rbx = entry, r12 = argument (set up by
 * arch_thread_stack_init). The entry never returns. */
	.globl arch_thread_trampoline
arch_thread_trampoline:
	xorl %ebp, %ebp
	movq %r12, %rdi
	call *%rbx
	ud2

/*
 * uint64_t arch_copy_user_bytes(void *dst, const void *src, uint64_t n)
 * Copies n bytes; returns the number NOT copied (0 when all went well). A fault on either
 * side (a bad user pointer) lands in the fixup through the exception table, after the trap
 * handler has tried to resolve it (a lazy page) and failed. The kernel writes to user memory
 * this way (outputs); it reads inputs through the frames (vm_read), which faults nothing in. The caller brackets the call
 * with user_access_begin/end (SMAP).
 */
	.globl arch_copy_user_bytes
arch_copy_user_bytes:
	movq %rdx, %rcx
.Lcopy:	rep movsb
.Lcopy_done:
	movq %rcx, %rax
	ret

	.section ex_table, "a"
	.balign 8
	.quad .Lcopy, .Lcopy_done
