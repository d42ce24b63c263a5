/* SPDX-License-Identifier: MIT */
/* The command-line choices new tasks are made with (kernel/options.c). */
#ifndef KERNEL_OPTIONS_H
#define KERNEL_OPTIONS_H

#include <knmm/compiler.h>

/* aslr=on|off (default on): new tasks' spaces place what they map at random. */
extern bool kernel_aslr;
/* mem.faultaround=N (default 0): a fault in a new task's space maps up to N more pages. */
extern unsigned kernel_faultaround;

/* Sets them from the command line (cmdline_init first), and logs them. */
void kernel_apply_options(void);

#endif
