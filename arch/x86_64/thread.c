// SPDX-License-Identifier: MIT
/*
 * Threads as the CPU sees them (arch/thread.h): the stack arch_switch starts a new thread
 * from, a user thread's first ring-3 frame, the way into ring 3, the kernel stack ring 3
 * enters on, and the idle halt.
 */
#include <arch/gdt.h>
#include <arch/percpu.h>
#include <arch/thread.h>
#include <knmm/string.h>
#include "asm.h"

uint64_t arch_thread_stack_init(uint64_t top, void (*entry)(void *), void *arg)
{
	/* arch_switch pops r15, r14, r13, r12, rbx, rbp and the flags, then returns into the
	 * trampoline, which calls rbx(r12). */
	uint64_t *sp = (uint64_t *)(uintptr_t)top;
	*--sp = 0; /* alignment */
	*--sp = (uint64_t)(uintptr_t)arch_thread_trampoline;
	*--sp = RFLAGS_RESERVED;            /* rflags: interrupts off, AC clear */
	*--sp = 0;                          /* rbp */
	*--sp = (uint64_t)(uintptr_t)entry; /* rbx */
	*--sp = (uint64_t)(uintptr_t)arg;   /* r12 */
	*--sp = 0;                          /* r13 */
	*--sp = 0;                          /* r14 */
	*--sp = 0;                          /* r15 */
	return (uint64_t)(uintptr_t)sp;
}

void arch_user_frame_init(struct trap_frame *tf, uint64_t rip, uint64_t rsp, uint64_t a0, uint64_t a1)
{
	memset(tf, 0, sizeof(*tf));
	tf->rip = rip;
	tf->cs = GDT_USER_CS | SEL_RPL3;
	tf->rflags = RFLAGS_IF | RFLAGS_RESERVED;
	tf->rsp = rsp;
	tf->ss = GDT_USER_DS | SEL_RPL3;
	tf->rdi = a0;
	tf->rsi = a1;
}

__noreturn void arch_enter_user(struct trap_frame *tf)
{
	__asm__ __volatile__("movq %0, %%rsp\n\tjmp trap_return" ::"r"(tf) : "memory");
	__builtin_unreachable();
}

void arch_set_kernel_stack(uint64_t top)
{
	this_cpu()->kernel_rsp = top; /* SYSCALL (entry.S) */
	tss_set_kernel_stack(top);    /* interrupts and exceptions */
}

void arch_idle(void) { __asm__ __volatile__("sti; hlt" ::: "memory"); }
