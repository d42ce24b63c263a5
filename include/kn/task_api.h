/* SPDX-License-Identifier: MIT */
/*
 * Tasks (SPEC §6). A task is an address space, a handle table and threads, made from a
 * program (a static ELF64 executable loaded by GRUB as a module: the kernel's ROM file
 * system). Its main thread starts at the ELF entry with rdi = argc and rsi = argv, where
 * argv[0] is the task's name and argv[argc] is NULL; its stack is a GROW_DOWN | LOW_GUARD
 * region. A task made by KnTaskCreate has argc 1; the kernel can give a task it makes (the
 * monitor's `run`) up to KN_TASK_ARGS_MAX more arguments, of KN_TASK_ARGS_BYTES at most with
 * their NULs (the name's included): the strings, then the vector, at the top of its stack.
 */
#ifndef KN_TASK_API_H
#define KN_TASK_API_H

#include <kn/retcode.h>
#include <kn/types.h>
#include <kn/vmm_api.h>

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

#define KN_TASK_NAME_MAX   31
#define KN_TASK_ARGS_MAX   16   /* arguments after argv[0] */
#define KN_TASK_ARGS_BYTES 1024 /* the strings of argv[0..argc-1], NULs included */

/*
 * Creates a task named `name` (at most KN_TASK_NAME_MAX bytes) from the program module
 * `program`, suspended; *task gets a handle with every task right.
 *   rcInvalidArgument  bad flags, empty or long name, or the program is not a valid ELF64
 *                      executable (the reason is in the kernel log)
 *   rcNotFound         no such program
 *   rcAccessDenied     KN_TASK_PRIVILEGED asked by an unprivileged task
 *   rcOutOfMemory      no memory, a quota of the caller or an ancestor (tasks, commit), or
 *                      the caller is 63 levels below a task the kernel made (nothing is
 *                      left behind)
 *   rcFault            name, program or task is a bad pointer
 */
Retcode KnTaskCreate(const char *name, const char *program, int flags, Handle *task);

/* Starts a created task. rcBadHandle, rcWrongState (not in CREATED). */
Retcode KnTaskResume(Handle task);

/*
 * Freezes a task: each of its threads stops at a safe point (on its way back to ring 3; a
 * thread blocked in the kernel is woken to get there), and the task is FROZEN once all
 * have. A frozen task never runs again; it can be examined (KnTaskGetThreadContext,
 * KnTaskGetNextVmRegion) and terminated. A task may freeze itself (KN_HANDLE_SELF): the call
 * does not come back. A KN_TASK_DUMPABLE task is frozen, instead of terminated, by an
 * exception it does not handle.
 *   rcOk               frozen, or freezing (wait for KN_TASK_STATE_FROZEN), or already so
 *   rcBadHandle, rcAccessDenied (no KN_RIGHT_FREEZE)
 *   rcWrongState       the task has not started, or has exited
 */
Retcode KnTaskFreeze(Handle task);

/* The task's state (KN_TASK_STATE_*). rcBadHandle, rcFault. */
Retcode KnTaskGetState(Handle task, int *state);

/*
 * Waits until the task's state is one of `states` (a set of KN_TASK_STATE_*), at most
 * timeoutNs nanoseconds (0: just look; ~0: forever).
 *   rcOk, rcBadHandle, rcInvalidArgument (no known state in the set),
 *   rcBusy (timed out, or the caller is being terminated or frozen),
 *   rcWrongState (the caller waits for itself to be in a state other than RUNNING)
 */
Retcode KnTaskWait(Handle task, int states, rtl_uint64_t timeoutNs);

/* Ends a task (KN_RIGHT_TERMINATE); its exit code becomes KN_EXIT_TERMINATED. Terminating
 * an exited task is rcOk. rcBadHandle, rcAccessDenied. Returns after it has exited. */
Retcode KnTaskTerminate(Handle task);

/* Ends the calling task with `code`: every thread of it (kn/thread_api.h). */
void KnTaskExit(int code) __attribute__((noreturn));

/* The caller's own task: KN_HANDLE_SELF. */
Handle KnTaskSelf(void);

/* The exit code of an exited task. rcWrongState if it has not exited. */
Retcode KnTaskGetExitCode(Handle task, int *code);

/* Output: channel 0 is the console (COM1), channel 1 the dump sink (COM2). On the console
 * every line the task prints is prefixed with its id ("  7| "), and bytes that are not
 * printable ASCII, newline or tab show as '?'. The whole buffer is checked first; it is
 * written in chunks, other tasks running in between.
 * rcInvalidArgument (unknown channel, len above 64 KiB), rcFault (buffer not readable:
 * nothing written). */
Retcode KnDebugWrite(int channel, const void *buf, rtl_size_t len);

/* A system call that does nothing (for measuring the round trip). */
Retcode KnDebugNop(void);

#define KN_PROGRAM_LOADS_MAX 8 /* PT_LOADs a thread context describes */

/* The state of a thread of a frozen task (KnTaskGetThreadContext). */
typedef struct {
	rtl_uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	rtl_uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	rtl_uint64_t rip, rflags;
	rtl_uint64_t cs, ss, ds, es, fs, gs; /* ds = es = the user data selector; fs = gs = 0 */
	rtl_uint64_t fsBase, gsBase;         /* 0: knmm gives tasks no way to set them (no
						arch_prctl, CR4.FSGSBASE off) */
	rtl_uint64_t threadId;
	rtl_uint64_t exception; /* the vector of the exception that stopped it (14: page fault, 13:
				   general protection, ...), or KN_NO_EXCEPTION */
	rtl_uint64_t errorCode; /* its error code */
	rtl_uint64_t cr2;       /* for a page fault: the address */
	/* The task's program, the same in every thread's context (what a core file's
	   NT_PRPSINFO, NT_FILE and NT_AUXV say): */
	char program[32];              /* the boot module it was made from (KnTaskCreate's
					  `program`), NUL-terminated; its file is /boot/PROGRAM.elf */
	rtl_uint64_t entry;            /* the ELF header's e_entry */
	rtl_uint64_t phoff;            /* its e_phoff: where the program headers are in the file
					  (and in memory, if a PT_LOAD's file bytes cover them) */
	rtl_uint32_t phentsize, phnum; /* its e_phentsize and e_phnum */
	rtl_uint32_t nloads;           /* PT_LOAD segments in `loads` (the first KN_PROGRAM_LOADS_MAX) */
	rtl_uint32_t pad0;
	struct {
		rtl_uint64_t vaddr, memsz, offset, filesz; /* p_vaddr, p_memsz, p_offset, p_filesz */
		rtl_uint32_t flags, pad;                   /* p_flags (PF_R 4, PF_W 2, PF_X 1) */
	} loads[KN_PROGRAM_LOADS_MAX];
} KnThreadContext;
#define KN_NO_EXCEPTION (~(rtl_uint64_t)0)

/*
 * The registers of thread `index` (0, 1, ...) of a frozen task, as it stopped: its threads
 * that had not exited (KnThreadExit), in the order they were made, the main thread first
 * unless it exited; the list stays as it is while the task is frozen. A system
 * call made by a thread clobbers its rcx and r11 (which hold rip and rflags). Every thread's
 * context also names the task's program and gives its ELF header's entry and program-header
 * counts and its PT_LOAD segments, read from the module (what a core file's NT_PRPSINFO,
 * NT_FILE and NT_AUXV need, docs/dump.md).
 *   rcOk, rcEof (no thread `index`), rcBadHandle, rcAccessDenied (no KN_RIGHT_DUMP),
 *   rcWrongState (not frozen), rcFault (ctx)
 */
Retcode KnTaskGetThreadContext(Handle task, rtl_size_t index, KnThreadContext *ctx);

/*
 * The region of a frozen task whose base is the lowest at or above `cursor`: its reservation
 * (*base, *size, guard pages included), *flags (KnVmQuery's region flags: the protections
 * its pages have, COMMIT if any are committed, LOCKED, cache mode, guards, GROW_DOWN), and
 * *mdl, a handle (KN_RIGHT_MAP_READ) to an MDL over it: a physical run for each resident
 * stretch, a fictitious run for each other stretch (device memory is fictitious too). It
 * allocates no frames; it pins the frames, so they stay for as long as the MDL, even if
 * the task is terminated. Start with cursor 0, continue with *base + *size.
 *   rcEof              no region at or above cursor
 *   rcBadHandle, rcAccessDenied (no KN_RIGHT_DUMP), rcWrongState (not frozen)
 *   rcOutOfMemory      the commit limit (the MDL charges its frames while it lives)
 *   rcFault            an output pointer
 */
Retcode KnTaskGetNextVmRegion(Handle task, const void *cursor, void **base, rtl_size_t *size, int *flags, Handle *mdl);

/*
 * KnVmQuery (kn/vmm_api.h) on the address space of `task` (KN_RIGHT_VM_READ): what it says
 * of the page holding addr, read under the task's space lock as it is at that moment. It
 * changes nothing in the task (no page faulted in, no stack grown); the task may be in any
 * state (an exited task's space is all free). A dump collector walks a region's runs with
 * it (runSize) to give each stretch its own protection.
 *   rcOk
 *   rcFault            info is not a writable user address (checked first: nothing else
 *                      is looked at)
 *   rcBadHandle, rcAccessDenied (no KN_RIGHT_VM_READ)
 *   rcInvalidArgument  addr is not in the user half
 */
Retcode KnTaskVmQuery(Handle task, const void *addr, KnVmInfo *info);

/*
 * The KnVm* calls (kn/vmm_api.h) on the address space of `task` (KN_RIGHT_VM_OPERATION):
 * the same arguments, semantics and codes as KnVmAllocateEx, KnVmCommit, KnVmDecommit,
 * KnVmProtect and KnVmUnmap on the caller's own space (LOCKED commits, grow-down regions,
 * guard pages, MDL mappings, program segments, busy regions alike), plus:
 *   rcBadHandle        not a task handle of the caller (KN_HANDLE_SELF is one)
 *   rcAccessDenied     the handle lacks KN_RIGHT_VM_OPERATION
 *   rcWrongState       the task is being terminated or has exited: its space is torn down
 *                      (or about to be), and nothing is added to it
 * They are checked in that order (KnTaskVmAllocate's `out` before them all: rcFault), and
 * before the range and flags. The task may be created (not started: a parent preparing a
 * child's memory), running (its threads' faults and calls and these are serialized by the
 * space's lock; a change is seen by its threads when the call returns) or frozen. A task
 * being terminated waits for the calls already under way before it tears its space down.
 *
 * Charges: what a call commits is charged to `task`'s account, so it counts against the
 * quotas of the task and of every ancestor (the caller's too when the caller created it):
 * past one, rcOutOfMemory. Locked pages likewise. Frames and charge come back when the range
 * is decommitted or unmapped, or when the task ends.
 *
 * KnTaskVmAllocate's `out` is in the caller's space; it gets the base of the region made in
 * the task's space (checked first: a bad `out` is rcFault and nothing is made).
 */
Retcode KnTaskVmAllocate(Handle task, void *addr, rtl_size_t size, int flags, void **out);
Retcode KnTaskVmCommit(Handle task, void *addr, rtl_size_t size, int flags);
Retcode KnTaskVmDecommit(Handle task, void *addr, rtl_size_t size);
Retcode KnTaskVmProtect(Handle task, void *addr, rtl_size_t size, int newFlags);
Retcode KnTaskVmUnmap(Handle task, void *addr, rtl_size_t size);

/*
 * Copy between the caller's space and a task's (SPEC §14): KnTaskReadMemory copies `size`
 * bytes at the task's `addr` into the caller's `buf` (KN_RIGHT_VM_READ), KnTaskWriteMemory
 * copies the caller's `buf` to the task's `addr` (KN_RIGHT_VM_WRITE). A page of the task at a
 * time, in order, faulting pages in as the task would (a committed page that was never
 * touched gets its zeroed frame, already charged to the task), and stopping at the first
 * page that cannot be read or written; *done says how many bytes were copied. Stops are:
 * free, reserved or guard pages (another task's access grows no stack and consumes no
 * guard), device memory and pages that are not write-back, for a read a page without READ.
 * A write may go to a read-only or executable page of the task (a debugger's breakpoint) —
 * but not to a page of a mapping that can never be writable (an MDL mapped without WRITE)
 * whose frame someone else still holds: the task gets no private copy (yet), so that write
 * would reach memory it was only given to read; it stops there. On x86 nothing more is
 * needed for code written this way (the caches are coherent; no TLB entry changes).
 * The task may be in any state; one that has exited has nothing left to copy (rcFault).
 * The caller's buffer is in the caller's space (with KN_HANDLE_SELF both are); buffers that
 * overlap are copied forward, 512 bytes at a time, not as memmove would. Another thread of
 * the caller unmapping its buffer meanwhile also stops the copy (at a 512-byte boundary).
 *   rcOk               *done == size, or 0 < *done < size: stopped at the first page that
 *                      could not be copied
 *   rcFault            done is not a writable user address, or buf is not (for a read:
 *                      writable, for a write: readable) memory of the caller for all of
 *                      size (checked first: nothing else is looked at); or nothing could
 *                      be copied. Nothing is written then, *done neither.
 *   rcBadHandle, rcAccessDenied (no KN_RIGHT_VM_READ / KN_RIGHT_VM_WRITE)
 * size 0 is rcOk with *done 0. Long copies give the CPU away every 256 pages.
 */
Retcode KnTaskReadMemory(Handle task, const void *addr, void *buf, rtl_size_t size, rtl_size_t *done);
Retcode KnTaskWriteMemory(Handle task, void *addr, const void *buf, rtl_size_t size, rtl_size_t *done);

/*
 * Quotas (SPEC §14): what a task and every task it created (directly or not) may make the
 * kernel spend, counted together: a task's usage includes its descendants', and a charge
 * must fit under the limit of the task and of every ancestor. Going over is rcOutOfMemory
 * and changes nothing.
 *
 *   commitPages  pages of commit: committed pages, their page tables and the page-table
 *                root, MDLs it created, kernel stacks of its threads, and the kernel's
 *                bookkeeping for it (regions, runs, handle tables, MDL headers and run
 *                arrays, task and thread objects), rounded up to pages
 *   lockedPages  pages committed with VMM_FLAG_LOCKED, and pages pinned by the MDLs it
 *                made with KnPmmMdlCreateFromVm
 *   handles      open handles in its handle table
 *   regions      regions of its address space
 *   tasks        tasks it created that have not been released (counted in its usage; not
 *                itself)
 *
 * Charges stay with the task that caused them: an MDL's pages are charged to the task that
 * created it for as long as the MDL lives, even after a handle went to another task.
 */
typedef struct {
	rtl_uint64_t commitPages;
	rtl_uint64_t lockedPages;
	rtl_uint64_t handles;
	rtl_uint64_t regions;
	rtl_uint64_t tasks;
} KnQuota;
#define KN_QUOTA_UNLIMITED (~(rtl_uint64_t)0) /* a limit that is no limit (the default) */

/*
 * Sets the limits of `task` (KN_RIGHT_QUOTA). A limit below what the task already uses is
 * allowed: nothing is taken away, but nothing more is charged until its usage is below it.
 * KN_HANDLE_SELF lacks the right: a task cannot change its own limits, only those of the
 * tasks it holds QUOTA handles to (a creator gets the right on its children); whatever it
 * sets, its own limits and its ancestors' still bound the whole subtree.
 *   rcOk
 *   rcBadHandle, rcAccessDenied (no KN_RIGHT_QUOTA)
 *   rcWrongState       the task has exited
 *   rcFault            limits is not readable
 */
Retcode KnTaskSetQuota(Handle task, const KnQuota *limits);

/*
 * The limits of `task` and what it (with its descendants) uses now. Any handle to the task
 * will do; an exited task reports what is still charged to it: MDLs it made that outlive
 * it, and the bookkeeping of its task object while handles keep that. A task that is
 * being torn down still counts until its teardown is done (KnDebugGetStats waits for
 * pending teardowns).
 *   rcOk, rcBadHandle, rcFault (limits or usage not writable: nothing is written)
 */
Retcode KnTaskGetQuota(Handle task, KnQuota *limits, KnQuota *usage);

/* Memory counters, for tests and tools. */
typedef struct {
	rtl_uint64_t freePages; /* free physical pages */
	rtl_uint64_t totalPages;
	rtl_uint64_t commitCharge;
	rtl_uint64_t commitLimit;
	rtl_uint64_t tasks; /* tasks that exist (not yet released) */
	rtl_uint64_t threads;
	rtl_uint64_t taskCommit;   /* the caller's commit: its committed pages and their page tables
				      (a committed page that is not write-back costs two) */
	rtl_uint64_t taskResident; /* the caller's resident pages */
	rtl_uint64_t faultAround;  /* neighbours a fault also maps, for new tasks (mem.faultaround) */
	rtl_bool aslr;             /* new tasks place regions at random (aslr=on) */
} KnMemStats;

/* Fills *stats after returning cached memory to the allocators (so that counts compare).
 * rcFault. */
Retcode KnDebugGetStats(KnMemStats *stats);

#endif
