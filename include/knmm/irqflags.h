/* SPDX-License-Identifier: MIT */
/* Local interrupt masking for per-CPU data (no-ops in the host build, which has no interrupts). */
#ifndef KNMM_IRQFLAGS_H
#define KNMM_IRQFLAGS_H

#include <knmm/compiler.h>

#ifdef KNMM_HOST
static inline bool local_irq_save(void) { return false; }
static inline void local_irq_restore(bool on) { (void)on; }
#else
#include <arch/irqflags.h>
static inline bool local_irq_save(void) { return irq_save(); }
static inline void local_irq_restore(bool on) { irq_restore(on); }
#endif

#endif
