/* SPDX-License-Identifier: MIT */
/* The local APIC: the scheduler's periodic timer. The legacy PIC is masked. */
#ifndef ARCH_APIC_H
#define ARCH_APIC_H

#include <knmm/compiler.h>

#define VEC_TIMER    32
#define VEC_SPURIOUS 0xff

/* Physical address of this CPU's local APIC registers (IA32_APIC_BASE). */
uint64_t apic_phys_base(void);
/* Enables the APIC mapped at `regs` (uncached) and masks the 8259 PIC. */
void apic_init(volatile uint32_t *regs);
uint32_t apic_version(void);
/* Measures the timer against the TSC and starts it: one interrupt every `ms` milliseconds
 * on VEC_TIMER. Returns the timer count per period. */
uint32_t apic_timer_start(unsigned ms);
void apic_eoi(void);

#endif
