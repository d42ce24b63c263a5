/* SPDX-License-Identifier: MIT */
/*
 * Threads as the CPU sees them (docs/tasks.md): the stack a new thread starts from, the frame
 * it first enters ring 3 with, the switch from one thread to another, the kernel stack the
 * CPU enters on from ring 3, and the idle wait. The scheduler (kernel/sched.c) keeps one
 * saved stack pointer per thread and knows nothing of what lies behind it.
 *
 * A thread's kernel stack, top down: its ring-3 frame (struct trap_frame, user threads only:
 * where the CPU pushes the interrupted ring-3 state on every entry), then what arch_switch
 * saved (or what arch_thread_stack_init prepared, before the thread first ran).
 */
#ifndef ARCH_THREAD_H
#define ARCH_THREAD_H

#include <arch/cpu.h>
#include <arch/trap.h>

/*
 * Saves the running thread's callee-saved registers and flags on its stack, stores its stack
 * pointer in *from_rsp and continues on the stack at to_rsp: one that arch_switch saved, or
 * one arch_thread_stack_init prepared (entry.S). Interrupts off.
 */
void arch_switch(uint64_t *from_rsp, uint64_t to_rsp);

/*
 * Prepares the kernel stack whose (16-byte aligned) top is `top` for a thread that has not
 * run: the first arch_switch to the returned stack pointer calls entry(arg), with interrupts
 * off, RFLAGS.AC clear and no frame above it (backtraces end there). entry never returns.
 */
uint64_t arch_thread_stack_init(uint64_t top, void (*entry)(void *), void *arg);

/* The ring-3 frame of a thread whose kernel stack ends at `kstack_top`. */
static inline struct trap_frame *arch_user_frame(uint64_t kstack_top)
{
	return (struct trap_frame *)(uintptr_t)(kstack_top - sizeof(struct trap_frame));
}

/* Fills a new user thread's ring-3 frame: it starts at `rip` with stack `rsp`, rdi/rsi =
 * a0/a1, every other register zero, the user code and data selectors, interrupts on. */
void arch_user_frame_init(struct trap_frame *tf, uint64_t rip, uint64_t rsp, uint64_t a0, uint64_t a1);

/* Leaves for ring 3 through `tf`, the frame on top of the running thread's kernel stack
 * (the way every interrupt returns). Interrupts off; never returns. */
__noreturn void arch_enter_user(struct trap_frame *tf);

/* The stack the CPU switches to when ring 3 enters the kernel (SYSCALL, interrupts): the
 * top of the running thread's kernel stack. Set on every switch. */
void arch_set_kernel_stack(uint64_t top);

/* Waits for an interrupt: enables interrupts and halts in one step (the interrupt that ends
 * the wait cannot slip in between). Called with interrupts off; returns with them on, after
 * the interrupt was handled. */
void arch_idle(void);

/* Whether supervisor access to user pages is open (RFLAGS.AC under SMAP). Ring 3 can set AC;
 * the kernel must never run with it outside the copy routines. Always false without SMAP
 * (AC means nothing in ring 0 then). */
static inline bool arch_user_access_open(void) { return cpu_features.smap && (read_rflags() & RFLAGS_AC); }

#endif
