/* SPDX-License-Identifier: MIT */
/* Bringing up the other CPUs (kernel/smp.c, docs/smp.md). */
#ifndef KERNEL_SMP_H
#define KERNEL_SMP_H

#include <knmm/compiler.h>

/*
 * Starts every CPU that smp_discover (arch/smp.h) found: allocates each one's kernel stack
 * and IST stacks, has arch start them, waits until each has marked itself online, and
 * tells the locks how many CPUs there are (spin_set_cpus_online). Logs one line per CPU
 * and "smp: N CPUs online". Call once from kmain, after the local APIC timer is set up
 * (timer_init) and before interrupts are first enabled. A CPU that cannot be given stacks
 * or does not answer is left out; the kernel goes on with the others.
 */
void smp_boot(void);

/* Whether CPU i has marked itself online (the boot CPU always has). */
bool smp_cpu_online(unsigned i);

#endif
