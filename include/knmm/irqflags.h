/* SPDX-License-Identifier: MIT */
/*
 * Local interrupt masking for per-CPU data, and the spin-wait hint (no-ops in the host
 * build, which has no interrupts).
 */
#ifndef KNMM_IRQFLAGS_H
#define KNMM_IRQFLAGS_H

#include <knmm/compiler.h>

#ifdef KNMM_HOST
static inline bool local_irq_save(void) { return false; }
static inline void local_irq_restore(bool on) { (void)on; }
static inline bool local_irq_enabled(void) { return false; }
static inline void local_cpu_relax(void) { barrier(); }
#else
#include <arch/irqflags.h>
static inline bool local_irq_save(void) { return irq_save(); }
static inline void local_irq_restore(bool on) { irq_restore(on); }
static inline bool local_irq_enabled(void) { return irq_enabled(); }
static inline void local_cpu_relax(void) { cpu_relax(); }
#endif

#endif
