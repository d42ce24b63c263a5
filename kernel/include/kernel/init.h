/* SPDX-License-Identifier: MIT */
/* The kernel's own work once it is up (kernel/init.c): what the command line asks for, the
 * programs it runs as tasks, and settling before counts are compared. */
#ifndef KERNEL_INIT_H
#define KERNEL_INIT_H

#include <knmm/compiler.h>

/* After boot: the tests (test=GLOBS), the benchmarks (bench), the first program
 * (init=PROGRAM), the monitor (monitor), in that order of precedence; then leaves QEMU. */
__noreturn void init_run(void);

/* Creates, runs and waits for a program; returns its exit code, or RUN_PROGRAM_FAILED - rc
 * when it could not be created (as libkn's run_task), or RUN_PROGRAM_FROZEN if it froze (it
 * stays, held by the kernel, for a dump). After `timeout_ns` (0: no limit) the task is
 * terminated. */
#define RUN_PROGRAM_FAILED (-1000)
#define RUN_PROGRAM_FROZEN (-2000)
int run_program(const char *program, const char *name, unsigned flags, uint64_t timeout_ns);

/* Waits until no task is being torn down, then returns cached memory to the allocators,
 * so that free-page and commit counts can be compared. */
void kernel_settle(void);

#endif
