/* SPDX-License-Identifier: MIT */
/*
 * Threads and the scheduler (docs/tasks.md).
 *
 * One run queue for every CPU, round-robin, under one lock (the scheduler's, rank
 * LOCK_RANK_SCHED, taken with interrupts off). Ring-3 code is preempted: each CPU's local
 * APIC timer ticks every SCHED_TICK_MS and asks for a reschedule, taken on the way back to
 * ring 3 (or in the idle loop). Kernel code switches only where it blocks or yields. A CPU
 * with nothing to run halts; a CPU that queues a thread wakes a halted one that may run it
 * with an IPI. Functions named ..._locked expect the scheduler's lock held (sched_lock).
 *
 * A thread that exits becomes a zombie once it is off the CPU; the reaper thread frees its
 * kernel stack and, for the last thread of a task, tears the task down (task.c).
 */
#ifndef KERNEL_SCHED_H
#define KERNEL_SCHED_H

#include <arch/trap.h>
#include <knmm/list.h>

#define SCHED_TICK_MS 10
#define KSTACK_SIZE   16384
#define SCHED_ANY_CPU (~0ull) /* an affinity that allows every CPU */

enum thread_state {
	THREAD_NEW,      /* created, not yet runnable */
	THREAD_RUNNABLE, /* on the run queue */
	THREAD_RUNNING,
	THREAD_BLOCKED, /* on a wait queue */
	THREAD_DEAD,    /* exited: waiting for the reaper */
};

struct task;
struct wait_queue;

struct thread {
	uint64_t saved_rsp; /* arch_switch's stack pointer while off the CPU */
	uint64_t kstack_base, kstack_size;
	struct task *task; /* NULL for kernel threads */
	enum thread_state state;
	struct list_head run_link;  /* run queue, or the wait queue it sleeps on */
	struct list_head task_link; /* its task's threads */
	struct list_head all_link;  /* every thread, or the zombie list */
	char name[24];
	uint64_t id;
	void (*entry)(void *);
	void *arg;
	/* blocking */
	struct wait_queue *waiting_on;
	uint64_t deadline_ns; /* 0: none */
	bool timed_out;
	bool killed;       /* its task is going away: leave at the next chance */
	bool is_idle;      /* a CPU's idle thread: never queued, runs when nothing else may */
	unsigned cpu;      /* the CPU it runs on, or last ran on */
	uint64_t affinity; /* the CPUs it may run on (bit i: CPU i) */
	/* ring 3 */
	uint8_t *fpu; /* FXSAVE area of user threads */
	/* the exception that stopped it (frozen for a dump), or exc_vector == UINT64_MAX */
	uint64_t exc_vector, exc_error, exc_cr2;
	uint64_t last_fault_rip, last_fault_addr; /* the last page fault it took */
};

struct wait_queue {
	struct list_head waiters;
};

#define WAIT_QUEUE_INIT(name)                \
	{                                    \
		LIST_HEAD_INIT(name.waiters) \
	}
static inline void wq_init(struct wait_queue *wq) { list_init(&wq->waiters); }

/* The boot context becomes thread "main"; creates the idle and reaper threads. */
void sched_init(void);
/* Starts the timer: from here on ring 3 is preempted. */
void sched_start_timer(void);

struct thread *current_thread(void);
/* A kernel thread running entry(arg) (runnable at once); NULL if out of memory. */
struct thread *thread_create_kernel(const char *name, void (*entry)(void *), void *arg);
/* A thread of `task` that will enter ring 3 at `rip` with stack `rsp` and rdi/rsi = a0/a1;
 * not runnable until thread_start(). */
struct thread *thread_create_user(struct task *task, const char *name, uint64_t rip, uint64_t rsp, uint64_t a0,
				  uint64_t a1);
void thread_start(struct thread *t);
/* The current thread ends (never returns). */
__noreturn void thread_exit(void);
/* The ring-3 register frame of a thread (valid while it is in the kernel or off the CPU). */
struct trap_frame *thread_user_frame(const struct thread *t);

/* The CPU at the end of its start-up (kernel/smp.c): its boot stack becomes its idle thread,
 * which then runs whatever the run queue has for it. Interrupts off. */
__noreturn void sched_cpu_start(uint64_t stack_base, uint64_t stack_size);
/* CPUs that run threads (bit i of an affinity mask is CPU i; CPU numbers are
 * this_cpu()->id). */
unsigned sched_cpu_count(void);

/* The scheduler's lock, with interrupts off; returns the previous interrupt state. A wait
 * is: take it, test the condition, wq_wait_locked, and release it (wakers take it too, so
 * no wake-up falls between the test and the sleep). */
bool sched_lock(void);
void sched_unlock(bool irq);

/* Gives the CPU to the next runnable thread (the current one stays runnable). */
void schedule(void);
void sched_yield(void);
/* A preemption point for long kernel work (the kernel is not preempted otherwise): gives the
 * CPU to another thread if the timer asked for it. Only where no lock is held (with
 * interrupts off it does nothing). */
void sched_preempt_point(void);
/* Called on every return to ring 3 (interrupts off): reschedules if asked, and ends the
 * thread if its task is being torn down. */
void sched_return_to_user(struct trap_frame *tf);

/* Sleeps on wq until woken or until clock_ns() >= deadline_ns (0: no deadline). The
 * scheduler's lock must be held (check the condition and sleep atomically); it is held again
 * on return. Returns false on timeout, true when woken. A killed thread returns at once. */
bool wq_wait_locked(struct wait_queue *wq, uint64_t deadline_ns);
void wq_wake_all(struct wait_queue *wq);
void wq_wake_all_locked(struct wait_queue *wq);
/* Wakes one specific sleeping thread (used when its task is terminated). */
void thread_wake(struct thread *t);
/* Gets t to its next safe point now: wakes it if it sleeps, sends its CPU a reschedule IPI
 * if it runs on another one (a freeze or a termination must not wait for its next tick). */
void thread_wake_or_kick(struct thread *t);
/* Sets the CPUs t may run on (bit i: CPU i). The caller checked that the mask holds an online
 * CPU, and holds t's task lock (t cannot be reaped meanwhile). A thread running where it may
 * no longer run leaves that CPU at its next return to ring 3. */
void sched_set_affinity(struct thread *t, uint64_t mask);

/* Threads alive (created and not yet reaped). */
uint64_t sched_thread_count(void);

#endif
