/* SPDX-License-Identifier: MIT */
/* Tasks: address space + handle table + threads (see include/kn/task_api.h, docs/tasks.md). */
#ifndef KERNEL_TASK_H
#define KERNEL_TASK_H

#include <kn/task_api.h>
#include <mm/vm.h>
#include <kernel/handle.h>
#include <kernel/sched.h>

struct boot_module;

/*
 * The frames a task wrote to the dump sink (KnDebugWrite channel 1, COM2), followed as they
 * go out: "KNCORE1\n", a 32-byte name, an 8-byte length, the file, its FNV-1a 64 checksum
 * (docs/dump.md). `whole` counts the frames written to their last byte (the monitor's `dump`
 * says done by it; the checksum is checked by tools/extract_dumps.py, not hashed again
 * here), `started` those whose magic went out. Written by the task's own KnDebugWrite calls,
 * a chunk at a time (the kernel is not preempted within one: sys_debug_write); read by
 * the monitor once the task has exited or been told to (then it may still write its last
 * chunk). Small (24 bytes): the header is not kept, only its length, so that struct task
 * stays in the pool's 512-byte class (472 bytes today; at 552 it took a 1 KiB block).
 */
struct sink_frames {
	uint64_t left; /* bytes of the file and its checksum still to come (the header's length + 8) */
	uint32_t started, whole;
	uint8_t head_n; /* bytes of the header (48) read */
};

struct task {
	struct kobject obj; /* handles and the living task hold references */
	uint64_t id;
	char name[KN_TASK_NAME_MAX + 1];
	const struct boot_module *program; /* the module it was made from (kept by the kernel) */
	unsigned flags;
	int state; /* KN_TASK_STATE_* */
	int exit_code;
	struct account *acct; /* what it and its descendants make the kernel spend (quotas) */
	struct vm_space vs;
	struct handle_table handles;
	spinlock_t lock;
	struct list_head threads;    /* its threads that have not exited, in creation order (one
					that exits leaves it: task_thread_exit_current) */
	unsigned nthreads;           /* threads not yet reaped (the teardown follows the last) */
	unsigned live;               /* threads on `threads`: created, not exited */
	bool dying;                  /* terminate has begun: no new threads, no new handles */
	bool freezing;               /* freeze has begun: threads park at their next safe point */
	unsigned parked;             /* threads parked (FROZEN when all live ones are) */
	unsigned space_calls;        /* KnTaskVm* calls acting on vs (task_space_hold; the
					teardown waits on state_wq for them to end) */
	struct wait_queue state_wq;  /* woken on every state change */
	struct wait_queue frozen_wq; /* parked threads sleep here until terminated */
	struct list_head all_link;
	struct sink_frames sink; /* what it wrote to the dump sink (KnDebugWrite channel 1) */
};

/* The task of the running thread (NULL in kernel threads). */
struct task *current_task(void);

/* Makes a suspended task from a program module; *out holds one reference. `parent`: the
 * account of the creating task, under which the new task's account is made and which
 * counts it against its task limit (NULL: a task of the kernel's, such as init). */
Retcode task_create(const char *name, const char *program, unsigned flags, struct account *parent, struct task **out);
/* The same, with arguments: argv[1..argc] of the program are args[0..argc-1] (argv[0] is
 * the name). rcInvalidArgument for more than KN_TASK_ARGS_MAX of them or more than
 * KN_TASK_ARGS_BYTES of strings (include/kn/task_api.h). */
Retcode task_create_args(const char *name, const char *program, unsigned flags, struct account *parent, unsigned argc,
			 const char *const *args, struct task **out);
Retcode task_resume(struct task *t);
/* Ends the task: its threads leave, and when the last is gone the reaper frees its memory,
 * closes its handles, and sets EXITED. Waits for that unless `wait` is false (the caller is
 * one of its threads). */
void task_terminate(struct task *t, int code, bool wait);
/* The current task ends (never returns). */
__noreturn void task_exit_current(int code);
/* A ring-3 exception in the current task: log it, then freeze the task if it is dumpable
 * (the thread stays stopped at the exception) or end it. */
__noreturn void task_exception(struct trap_frame *tf, const char *kind, uint64_t addr);
/* Starts freezing t (docs/dump.md): rcOk, or rcWrongState if it has not started or is
 * going. Threads park at their next safe point; t becomes FROZEN when all have. */
Retcode task_freeze(struct task *t);
/* The current thread's safe point, once its task is freezing: it parks, and stays parked
 * until the task is terminated (then it returns, and the caller lets it exit). */
void task_park_current(void);
/* Waits until t->state is in `states` or clock_ns() passes deadline (0: forever).
 * rcOk, rcBusy (timeout, or the caller is being terminated or frozen). */
Retcode task_wait(struct task *t, int states, uint64_t deadline_ns);
/* Waits until no task is being torn down and the reaper has freed every thread that exited
 * (a caller being terminated or frozen stops waiting). */
void task_wait_teardowns(void);
/* Tests: pretend a task teardown is pending (task_wait_teardowns waits for it) or stop. */
void task_test_hold_teardown(bool hold);
/*
 * A new thread of t, the caller's task (KnThreadCreate): it enters ring 3 at `entry` with
 * rsp = stack_top and rdi = arg, runnable at once; its id in *tid. Charged to t's account as
 * the main thread is. rcOutOfMemory (a quota or memory: nothing kept), rcWrongState (t is
 * being terminated or frozen: nothing made, or a thread made meanwhile leaves before it
 * reaches ring 3). The caller checked the addresses.
 */
Retcode task_thread_create(struct task *t, uint64_t entry, uint64_t arg, uint64_t stack_top, uint64_t *tid);
/* The current thread ends (KnThreadExit); when it is the last live thread of its task, the
 * task ends with code 0 (task_exit_current(0)). Never returns. */
__noreturn void task_thread_exit_current(void);
/* Sets the affinity of thread `tid` of t (0: the current thread, which must be t's) to mask
 * (sched_set_affinity). rcNotFound: no live thread of t has that id. */
Retcode task_thread_set_affinity(struct task *t, uint64_t tid, uint64_t mask);
/* Called by the reaper for each thread of t it frees. */
void task_thread_gone(struct task *t, struct thread *th);
/*
 * Keeps t's address space from being torn down while a call of another task (or of one of
 * its own threads) changes it (KnTaskVm*): rcOk, or rcWrongState once t is being
 * terminated or has exited (its space is, or is about to be, torn down: nothing may be
 * added to it). The teardown after t's last thread waits for every hold to be released,
 * which each call does before it returns (a bounded wait: the calls never block).
 */
Retcode task_space_hold(struct task *t);
void task_space_release(struct task *t);

/* Boot: the kernel's own handle table. */
void task_init(void);
/* The kernel keeps a handle to t (as a running task would): t stays reachable, so it is not
 * ended as an orphan when created or frozen (the monitor's tasks, a frozen init).
 * rcOutOfMemory. task_drop_exited_holds closes the kernel's handles to tasks that exited. */
Retcode task_hold(struct task *t, Handle *h);
void task_drop_hold(Handle h);
void task_drop_exited_holds(void);

/* The task with id or name `spec` (the first by id if several share the name), with a
 * reference; NULL if none. */
struct task *task_find(const char *spec);
/* Calls fn for every task (tasks_lock held: fn must not block). */
void task_for_each(void (*fn)(struct task *t, void *arg), void *arg);
const char *task_state_name(int state);

static inline void task_get(struct task *t) { kobj_get(&t->obj); }
static inline void task_put(struct task *t) { kobj_put(&t->obj); }
uint64_t task_count(void);

#endif
