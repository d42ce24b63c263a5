/* SPDX-License-Identifier: MIT */
/*
 * Threads of a task (issue 16). A task starts with one thread (kn/task_api.h); these calls
 * add more to the caller's own task, end them, and place them on CPUs. Every thread of a
 * task shares its address space, handles and account; a thread's kernel stack, FPU area and
 * object are charged to the task's account like the main thread's (kn/task_api.h, "Quotas":
 * commitPages). Thread ids are the kernel's (KnThreadContext's threadId, a core file's LWP
 * numbers): unique while the kernel runs, never 0.
 *
 * The task ends when its last live thread ends: KnThreadExit of the last one is
 * KnTaskExit(0). KnTaskExit, KnTaskTerminate and an unhandled exception in any thread end
 * (or, for KN_TASK_DUMPABLE, freeze) the whole task, every thread of it. A frozen task's
 * threads are listed by KnTaskGetThreadContext in creation order.
 */
#ifndef KN_THREAD_API_H
#define KN_THREAD_API_H

#include <kn/retcode.h>
#include <kn/types.h>

/*
 * A new thread in the caller's task, runnable at once: it enters ring 3 at `entry` with
 * rsp = stackTop and rdi = arg, every other register 0 (rflags: IF). stackTop must be
 * 16-byte aligned: the entry gets what _start gets (crt0.S), an aligned stack with no
 * return address on it, so `entry` is not a C function that may return; libkn's
 * thread_create (knlib.h) calls a C function on the new stack and KnThreadExit after it.
 * The stack is the caller's business (a region it allocated); the kernel only checks the
 * addresses. *tid gets the new thread's id.
 *   rcOk
 *   rcFault            tid is not a writable user address (checked first: nothing is made)
 *   rcInvalidArgument  entry is not a user address, or stackTop is not in (the bottom of the
 *                      user half, its top] or not 16-byte aligned
 *   rcOutOfMemory      the task's quota (or an ancestor's) or the kernel's memory: nothing
 *                      is kept
 *   rcWrongState       the task is being terminated or frozen
 */
Retcode KnThreadCreate(rtl_uintptr_t entry, rtl_uintptr_t arg, rtl_uintptr_t stackTop, rtl_uint32_t *tid);

/* Ends the calling thread; when it is the last live thread of its task, the task ends with
 * exit code 0, as KnTaskExit(0). Its kernel resources (and their charge) go back once it is
 * off the CPU (the kernel's reaper: KnDebugGetStats may count it a moment longer). */
void KnThreadExit(void) __attribute__((noreturn));

/*
 * The CPUs thread `tid` of the caller's task may run on: bit i of mask is CPU i (numbers as
 * KnThreadGetCpu gives them). tid 0 is the caller. A new thread may run on any CPU. Bits of
 * CPUs that are not online are kept but mean nothing (no CPU comes online later today).
 *   rcOk
 *   rcInvalidArgument  mask holds no online CPU (checked first)
 *   rcNotFound         no live thread of the caller's task has that id (another task's
 *                      thread, one that exited, or no thread at all)
 */
Retcode KnThreadSetAffinity(rtl_uint32_t tid, rtl_uint64_t mask);

/* The CPU the caller is running on (a snapshot: it may run elsewhere by the time it looks)
 * and the number of CPUs online, numbered 0 to *ncpus - 1. Both pointers are required.
 *   rcOk, rcFault (either is not a writable user address: nothing is written) */
Retcode KnThreadGetCpu(rtl_uint32_t *cpu, rtl_uint32_t *ncpus);

/* Gives the CPU to another runnable thread, if there is one (of any task); the caller stays
 * runnable. What a thread waiting for another of its task spins on. */
void KnThreadYield(void);

#endif
