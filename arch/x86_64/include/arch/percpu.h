/* SPDX-License-Identifier: MIT */
/*
 * Per-CPU data, reached through GS (kernel GS base; SWAPGS on every entry from ring 3).
 * One struct cpu per CPU, numbered 0 (the boot CPU) to cpu_count() - 1 in the order they
 * started (docs/smp.md); the layout is what the SYSCALL entry uses (offsets are fixed below).
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
	uint32_t apic_id;   /* its local APIC's id (the destination of IPIs to it) */
} __aligned(64);            /* a cache line each: no CPU writes into another's */

_Static_assert(__builtin_offsetof(struct cpu, kernel_rsp) == PERCPU_KERNEL_RSP, "percpu layout");
_Static_assert(__builtin_offsetof(struct cpu, user_rsp) == PERCPU_USER_RSP, "percpu layout");
_Static_assert(__builtin_offsetof(struct cpu, current) == PERCPU_CURRENT, "percpu layout");

/* Boot CPU: points GS at CPU 0's data (kernel GS base), clears the user one, registers the
 * locks' CPU hooks and sets the SYSCALL MSRs. */
void percpu_init(void);
/* The same on a CPU arch has just started (arch/x86_64/smp.c), as CPU `index`. */
void percpu_init_ap(unsigned index, uint32_t apic_id);

/* How many CPUs have started (1 until smp_start_cpus, arch/smp.h, starts others). */
unsigned cpu_count(void);
/* CPU i's data, i < cpu_count() (or i < SPIN_MAX_CPUS while a CPU is being started). */
struct cpu *cpu_at(unsigned i);

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;
	__asm__ __volatile__("movq %%gs:0, %0" : "=r"(c));
	return c;
}
#endif

#endif
