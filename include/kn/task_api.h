/* SPDX-License-Identifier: MIT */
/*
 * Tasks (SPEC §6). A task is an address space, a handle table and threads, made from a
 * program (a static ELF64 executable loaded by GRUB as a module: the kernel's ROM file
 * system). Its main thread starts at the ELF entry with rdi = argc (1) and rsi = argv, where
 * argv[0] is the task's name; its stack is a GROW_DOWN | LOW_GUARD region.
 */
#ifndef KN_TASK_API_H
#define KN_TASK_API_H

#include <kn/retcode.h>
#include <kn/types.h>

/* KnTaskCreate flags */
#define KN_TASK_DUMPABLE   0x1 /* frozen, not terminated, on an unhandled exception */
#define KN_TASK_PRIVILEGED 0x2 /* may use privileged calls (KnPmmMdlCreateFromPhys) */

/* Task states (bit values, so that KnTaskWait can take a set) */
#define KN_TASK_STATE_CREATED 0x1 /* made, not yet resumed */
#define KN_TASK_STATE_RUNNING 0x2
#define KN_TASK_STATE_FROZEN  0x4
#define KN_TASK_STATE_EXITED  0x8 /* and all its memory is back */

/* Exit code of a task ended by KnTaskTerminate / by an unhandled exception */
#define KN_EXIT_TERMINATED (-1)
#define KN_EXIT_EXCEPTION  (-2)

/* The handle every task has to itself (a pseudo-handle, never closed). */
#define KN_HANDLE_SELF ((Handle)0xffffffffu)

#define KN_TASK_NAME_MAX 31

/*
 * Creates a task named `name` (at most KN_TASK_NAME_MAX bytes) from the program module
 * `program`, suspended; *task gets a handle with every task right.
 *   rcInvalidArgument  bad flags, empty or long name, or the program is not a valid ELF64
 *                      executable (the reason is in the kernel log)
 *   rcNotFound         no such program
 *   rcAccessDenied     KN_TASK_PRIVILEGED asked by an unprivileged task
 *   rcOutOfMemory      no memory (nothing is left behind)
 *   rcFault            name, program or task is a bad pointer
 */
Retcode KnTaskCreate(const char *name, const char *program, int flags, Handle *task);

/* Starts a created task. rcBadHandle, rcWrongState (not in CREATED). */
Retcode KnTaskResume(Handle task);

/* Freezes a task (KN_RIGHT_FREEZE; comes with dumps). */
Retcode KnTaskFreeze(Handle task);

/* The task's state (KN_TASK_STATE_*). rcBadHandle, rcFault. */
Retcode KnTaskGetState(Handle task, int *state);

/*
 * Waits until the task's state is one of `states` (a set of KN_TASK_STATE_*), at most
 * timeoutNs nanoseconds (0: just look; ~0: forever).
 *   rcOk, rcBadHandle, rcInvalidArgument (no known state in the set),
 *   rcBusy (timed out, or the caller is being terminated),
 *   rcWrongState (the caller waits for itself to be in a state other than RUNNING)
 */
Retcode KnTaskWait(Handle task, int states, rtl_uint64_t timeoutNs);

/* Ends a task (KN_RIGHT_TERMINATE); its exit code becomes KN_EXIT_TERMINATED. Terminating
 * an exited task is rcOk. rcBadHandle, rcAccessDenied. Returns after it has exited. */
Retcode KnTaskTerminate(Handle task);

/* Ends the calling task with `code`. */
void KnTaskExit(int code) __attribute__((noreturn));

/* The caller's own task: KN_HANDLE_SELF. */
Handle KnTaskSelf(void);

/* The exit code of an exited task. rcWrongState if it has not exited. */
Retcode KnTaskGetExitCode(Handle task, int *code);

/* Output: channel 0 is the console (COM1), channel 1 the dump sink (COM2).
 * rcInvalidArgument (unknown channel, len above 64 KiB), rcFault (bad buffer). */
Retcode KnDebugWrite(int channel, const void *buf, rtl_size_t len);

/* A system call that does nothing (for measuring the round trip). */
Retcode KnDebugNop(void);

/* Memory counters, for tests and tools. */
typedef struct {
	rtl_uint64_t freePages;   /* free physical pages */
	rtl_uint64_t totalPages;
	rtl_uint64_t commitCharge;
	rtl_uint64_t commitLimit;
	rtl_uint64_t tasks;       /* tasks that exist (not yet released) */
	rtl_uint64_t threads;
	rtl_uint64_t taskCommit;  /* the caller's commit: its committed pages and their page tables */
	rtl_uint64_t taskResident; /* the caller's resident pages */
	rtl_uint64_t faultAround; /* neighbours a fault also maps, for new tasks (mem.faultaround) */
	rtl_bool aslr;            /* new tasks place regions at random (aslr=on) */
} KnMemStats;

/* Fills *stats after returning cached memory to the allocators (so that counts compare).
 * rcFault. */
Retcode KnDebugGetStats(KnMemStats *stats);

#endif
