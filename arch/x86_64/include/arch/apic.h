/* SPDX-License-Identifier: MIT */
/*
 * The local APIC: the scheduler's periodic timer and the interrupts between CPUs (IPIs).
 * The legacy PIC is masked.
 */
#ifndef ARCH_APIC_H
#define ARCH_APIC_H

#include <knmm/compiler.h>

/* The vectors the local APIC raises. The IPI vectors go through trap_dispatch like the
 * timer's (a handler registered with trap_set_irq_handler, which must call apic_eoi). */
#define VEC_TIMER       32
#define VEC_IPI_RESCHED 0xf0 /* another CPU asks this one to look at its run queue */
#define VEC_IPI_TLB     0xf1 /* another CPU asks this one to flush TLB entries */
#define VEC_SPURIOUS    0xff

/* Physical address of this CPU's local APIC registers (IA32_APIC_BASE). */
uint64_t apic_phys_base(void);
/* Enables the APIC mapped at `regs` (uncached) and masks the 8259 PIC. */
void apic_init(volatile uint32_t *regs);
uint32_t apic_version(void);
/* Measures the timer against the TSC and starts it: one interrupt every `ms` milliseconds
 * on VEC_TIMER. Returns the timer count per period. */
uint32_t apic_timer_start(unsigned ms);
void apic_eoi(void);
/* This CPU's local APIC id. */
uint32_t apic_id(void);

/*
 * Interrupts to other CPUs (after smp_start_cpus, arch/smp.h; before it there are none to
 * send to). Each returns once this CPU's APIC has sent the interrupt (delivery status idle),
 * not when the target has handled it. Usable with interrupts on or off.
 *   apic_send_ipi         `vector` (VEC_IPI_*) to CPU `cpu_index` (< cpu_count())
 *   apic_send_ipi_others  `vector` to every CPU but this one
 *   apic_send_nmi_others  an NMI to every CPU but this one: the panic path's stop (a CPU
 *                         that takes it while the machine is stopping halts, smp.c)
 */
void apic_send_ipi(unsigned cpu_index, unsigned vector);
void apic_send_ipi_others(unsigned vector);
void apic_send_nmi_others(void);

#endif
