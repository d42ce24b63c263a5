/* SPDX-License-Identifier: MIT */
/*
 * Per-CPU data, reached through GS (kernel GS base; SWAPGS on every entry from ring 3).
 * One CPU today; the layout is what the SYSCALL entry uses (offsets are fixed below).
 */
#ifndef ARCH_PERCPU_H
#define ARCH_PERCPU_H

#define PERCPU_SELF       0
#define PERCPU_KERNEL_RSP 8  /* top of the running thread's kernel stack */
#define PERCPU_USER_RSP   16 /* scratch: user rsp during SYSCALL entry */
#define PERCPU_CURRENT    24

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>

struct thread;

struct cpu {
	struct cpu *self;
	uint64_t kernel_rsp;
	uint64_t user_rsp;
	struct thread *current;
	volatile bool need_resched; /* set by the timer, acted on at the next return to ring 3 or idle */
	uint64_t ticks;
	uint32_t id;        /* this CPU's number (the locks' owner, knmm/spinlock.h) */
	uint32_t irq_depth; /* interrupt handlers running on it (trap_dispatch) */
};

_Static_assert(__builtin_offsetof(struct cpu, kernel_rsp) == PERCPU_KERNEL_RSP, "percpu layout");
_Static_assert(__builtin_offsetof(struct cpu, user_rsp) == PERCPU_USER_RSP, "percpu layout");
_Static_assert(__builtin_offsetof(struct cpu, current) == PERCPU_CURRENT, "percpu layout");

extern struct cpu cpu0;

/* Points GS at this CPU's data (kernel GS base) and clears the user one. */
void percpu_init(void);

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;
	__asm__ __volatile__("movq %%gs:0, %0" : "=r"(c));
	return c;
}
#endif

#endif
