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
/* Command-line choices for new tasks: aslr=on|off (default on), mem.faultaround=N (0). */
extern bool kernel_aslr;
extern unsigned kernel_faultaround;
/* Sets them from the command line (and logs them). */
void kernel_apply_options(void);

/* The boot module (program) called `name`, or NULL. */
const struct boot_module *module_find(const char *name);
/* Waits until no task is being torn down, then returns cached memory to the allocators,
 * so that free-page and commit counts can be compared. */
void kernel_settle(void);
/* Creates, runs and waits for a program; returns its exit code, or RUN_PROGRAM_FAILED - rc
 * when it could not be created (as libkn's run_task), or RUN_PROGRAM_FROZEN if it froze (it
 * stays, held by the kernel, for a dump). After `timeout_ns` (0: no limit) the task is
 * terminated. */
#define RUN_PROGRAM_FAILED (-1000)
#define RUN_PROGRAM_FROZEN (-2000)
int run_program(const char *program, const char *name, unsigned flags, uint64_t timeout_ns);

void kernel_ready(void);
/* The monitor (the `monitor` command line): a prompt on the serial console, for ever. */
__noreturn void monitor_run(void);
/* Runs the benchmarks (command line `bench`) and prints their figures; false when one of
 * them could not be measured. */
bool bench_run(void);

#endif
