/* SPDX-License-Identifier: MIT */
/* Kernel-wide state set up by kmain. */
#ifndef KERNEL_KERNEL_H
#define KERNEL_KERNEL_H

#include <knmm/bootinfo.h>

#ifndef KNMM_VERSION
#define KNMM_VERSION "0.1"
#endif

extern struct boot_info boot_info;
extern uint64_t mem_usable_bytes;
extern uint64_t boot_ready_tsc;

void kernel_ready(void);
/* Runs the in-kernel benchmarks (command line `bench`). */
void bench_run(void);

#endif
