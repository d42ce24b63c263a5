/* SPDX-License-Identifier: MIT */
#ifndef KERNEL_SYSCALL_H
#define KERNEL_SYSCALL_H

#include <arch/trap.h>
#include <kn/retcode.h>
#include <kn/syscall_table.h>

struct syscall_args {
	uint64_t a[6]; /* rdi, rsi, rdx, r10, r8, r9 */
};

typedef int64_t (*syscall_fn)(const struct syscall_args *args);

/* The handlers, one per line of include/kn/syscall_table.h: kernel/syscall.c (debug,
 * tasks, handles), kernel/syscall_vm.c (memory), kernel/syscall_taskmem.c (another
 * task's memory), kernel/syscall_mdl.c, kernel/syscall_dump.c and kernel/syscall_thread.c
 * (threads of the caller's task). */
#define SYSCALL_DECLARE(n, name, handler) int64_t handler(const struct syscall_args *a);
KN_SYSCALLS(SYSCALL_DECLARE)
#undef SYSCALL_DECLARE

/* An int argument: the upper half of its register is not defined by the C ABI. */
static inline unsigned syscall_flags(uint64_t reg) { return (uint32_t)reg; }

struct mdl;
/* A handle with `rights` in the caller's table for MDL m, written to uout (the handle takes
 * m over: it is freed on failure). */
Retcode syscall_publish_mdl(struct mdl *m, uint32_t rights, uint64_t uout);
/* The same in two steps, for calls that have more to do in between and must not fail after
 * it: a reserved handle (handle_reserve) taking m over (freed on failure), then the value
 * written to uout and the handle made usable (abandoned, with m, if the write fails). */
Retcode syscall_reserve_mdl(struct mdl *m, uint32_t rights, Handle *h);
Retcode syscall_commit_mdl(Handle h, uint64_t uout);
/* The task behind a handle of the caller (KN_HANDLE_SELF included), with a reference, if
 * the handle has `need`. rcBadHandle, rcAccessDenied. */
struct task;
Retcode syscall_get_task(Handle h, uint32_t need, struct task **out);

/* rcFault unless the caller could write `size` bytes at `out` (asked of its address space:
 * nothing is touched), so that a call checks its outputs before it does anything. */
Retcode syscall_probe_output(uint64_t out, uint64_t size);
/* Whether the caller could read `size` bytes at `in` (user half, readable memory; asked of
 * its address space, nothing is faulted in): inputs are checked whole before a call acts. */
bool syscall_input_ok(uint64_t in, uint64_t size);

/* Registers syscall_dispatch as the SYSCALL entry's handler (before the first task runs). */
void syscall_init(void);
/* A system call: the SYSCALL entry's handler, with interrupts on. */
void syscall_dispatch(struct trap_frame *tf);

#endif
