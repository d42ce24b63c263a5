/* SPDX-License-Identifier: MIT */
/* What the ground floor (kernel/lib) stands on, as x86 under QEMU provides it. */
#ifndef ARCH_GROUND_H
#define ARCH_GROUND_H

/*
 * Opens the console (COM1) and registers it as the log's output, the TSC clock as the log's
 * clock, and the panic operations (register capture and dump, backtrace, QEMU exit). The
 * first call of kmain: nothing is printed before it.
 */
void arch_ground_init(void);

#endif
