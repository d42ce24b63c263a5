/* SPDX-License-Identifier: MIT */
#ifndef KERNEL_SYSCALL_H
#define KERNEL_SYSCALL_H

#include <arch/trap.h>

struct syscall_args {
	uint64_t a[6]; /* rdi, rsi, rdx, r10, r8, r9 */
};

typedef int64_t (*syscall_fn)(const struct syscall_args *args);

/* Called by the SYSCALL entry with interrupts on. */
void syscall_dispatch(struct trap_frame *tf);

#endif
