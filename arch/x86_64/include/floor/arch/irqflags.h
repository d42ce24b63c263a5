/* SPDX-License-Identifier: MIT */
/*
 * Interrupt flag and spin-wait hints: the only part of arch the ground floor (kernel/lib)
 * may use. This folder (arch/x86_64/include/floor) is on kernel/lib's include path; the rest
 * of arch's headers are not (docs/architecture.md).
 */
#ifndef ARCH_IRQFLAGS_H
#define ARCH_IRQFLAGS_H

#include <knmm/compiler.h>

#define RFLAGS_IF (1u << 9)

static inline uint64_t read_rflags(void)
{
	uint64_t f;
	__asm__ __volatile__("pushfq; popq %0" : "=r"(f));
	return f;
}

static inline void irq_enable(void) { __asm__ __volatile__("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ __volatile__("cli" ::: "memory"); }
static inline bool irq_enabled(void) { return (read_rflags() & RFLAGS_IF) != 0; }
/* Disable interrupts, returning whether they were on (for irq_restore). */
static inline bool irq_save(void)
{
	bool on = irq_enabled();
	irq_disable();
	return on;
}
static inline void irq_restore(bool on)
{
	if (on)
		irq_enable();
}

static inline void cpu_relax(void) { __asm__ __volatile__("pause" ::: "memory"); }
static inline void cpu_halt(void) { __asm__ __volatile__("hlt" ::: "memory"); }

#endif
