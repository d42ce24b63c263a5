/* SPDX-License-Identifier: MIT */
/* The TSC as the kernel's clock. */
#ifndef ARCH_TIME_H
#define ARCH_TIME_H

#include <knmm/compiler.h>

/* TSC at the first instruction of boot/entry.S. */
extern uint64_t boot_entry_tsc;
/* TSC ticks per millisecond (0 until calibrated). */
extern uint64_t tsc_khz;

/* Measures the TSC against the PIT (2 ms). Deterministic under QEMU -icount. */
void tsc_calibrate(void);
uint64_t tsc_to_ns(uint64_t ticks);
/* Nanoseconds since kernel entry (0 until the clock is calibrated). */
uint64_t clock_ns(void);

#endif
