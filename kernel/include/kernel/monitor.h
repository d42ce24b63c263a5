/* SPDX-License-Identifier: MIT */
/* The monitor (kernel/monitor.c, docs/monitor.md). */
#ifndef KERNEL_MONITOR_H
#define KERNEL_MONITOR_H

#include <knmm/compiler.h>

/* A prompt on the serial console (the `monitor` command line), for ever. */
__noreturn void monitor_run(void);

#endif
