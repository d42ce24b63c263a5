// SPDX-License-Identifier: MIT
/*
 * Threads and the scheduler (kernel/sched.h, docs/tasks.md): the run queue, wait queues and
 * sleepers, the timer tick, the reaper of exited threads, and the way back to ring 3. How a
 * thread looks to the CPU (its first stack, its ring-3 frame, the switch) is arch's
 * (arch/thread.h): a thread here is a saved stack pointer and a kernel stack.
 */
#include <arch/time.h>
#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/percpu.h>
#include <arch/pt.h>
#include <arch/thread.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <knmm/image.h>
#include <mm/mm.h>
#include <mm/pool.h>
#include <mm/vm.h>
#include <kernel/sched.h>
#include <kernel/task.h>

#define THREAD_TAG POOL_TAG('T', 'h', 'r', 'd')
#define FPU_TAG    POOL_TAG('F', 'p', 'u', 'S')

static struct list_head runqueue = LIST_HEAD_INIT(runqueue);
static struct list_head all_threads = LIST_HEAD_INIT(all_threads);
static struct list_head zombies = LIST_HEAD_INIT(zombies);
static struct list_head sleepers = LIST_HEAD_INIT(sleepers); /* blocked with a deadline */
static struct wait_queue reaper_wq = WAIT_QUEUE_INIT(reaper_wq);
static struct thread main_thread, *idle_thread;
static struct thread *last_prev; /* the thread we switched away from (for the zombie check) */
static uint64_t next_tid = 1, nthreads;

struct thread *current_thread(void) { return this_cpu()->current; }
uint64_t sched_thread_count(void) { return READ_ONCE(nthreads); }
unsigned sched_cpu_count(void) { return 1; }

void sched_set_affinity(struct thread *t, uint64_t mask) { WRITE_ONCE(t->affinity, mask); }

static uint64_t kstack_top(const struct thread *t) { return t->kstack_base + t->kstack_size; }

struct trap_frame *thread_user_frame(const struct thread *t) { return arch_user_frame(kstack_top(t)); }

/* ------------------------------------------------------------------ run queue */

static void enqueue_locked(struct thread *t)
{
	KASSERT(!irq_enabled()); /* (the scheduler's lock: interrupts off) */
	t->state = THREAD_RUNNABLE;
	if (t != idle_thread)
		list_add_tail(&t->run_link, &runqueue);
}

static void switch_to(struct thread *prev, struct thread *next)
{
	if (prev->fpu)
		fpu_save(prev->fpu);
	vm_space_activate(next->task ? &next->task->vs : &kernel_space);
	arch_set_kernel_stack(kstack_top(next));
	if (next->fpu)
		fpu_restore(next->fpu);
	this_cpu()->current = next;
	last_prev = prev;
	arch_switch(&prev->saved_rsp, next->saved_rsp);
}

/* Ring 3 can open supervisor access to user pages (RFLAGS.AC under SMAP); the kernel must
 * never run with it open outside the copy routines. Checked where it could leak: interrupts
 * and switches. */
static inline void assert_smap_closed(const char *where)
{
	KASSERT_MSG(!arch_user_access_open(), "RFLAGS.AC set in the kernel (%s): SMAP is off", where);
}

/* Back on a CPU after arch_switch: the thread we left may be dead now that it is off it. */
static void finish_switch_locked(void)
{
	KASSERT(!irq_enabled());
	assert_smap_closed("after a switch");
	struct thread *prev = last_prev;
	last_prev = NULL;
	if (prev && prev->state == THREAD_DEAD) {
		list_del(&prev->all_link);
		list_add_tail(&prev->all_link, &zombies);
		wq_wake_all(&reaper_wq);
	}
}

void schedule(void)
{
	bool irq = irq_save();
	struct thread *prev = current_thread(), *next;
	spin_assert_none_held("schedule()"); /* (debug builds: no spinlock is held across a switch) */

	this_cpu()->need_resched = false;
	if (prev->state == THREAD_RUNNING)
		enqueue_locked(prev);
	if (list_empty(&runqueue)) {
		next = idle_thread;
	} else {
		next = list_first_entry(&runqueue, struct thread, run_link);
		list_del(&next->run_link);
	}
	next->state = THREAD_RUNNING;
	if (next != prev) {
		switch_to(prev, next);
		finish_switch_locked();
	}
	irq_restore(irq);
}

void sched_yield(void) { schedule(); }

void sched_preempt_point(void)
{
	/* Interrupts on means no spinlock is held here (every one disables them). */
	if (irq_enabled() && READ_ONCE(this_cpu()->need_resched))
		schedule();
}

/* ------------------------------------------------------------------ waiting */

bool wq_wait_locked(struct wait_queue *wq, uint64_t deadline_ns)
{
	struct thread *t = current_thread();

	KASSERT(!irq_enabled());
	if (t->killed)
		return true;
	t->state = THREAD_BLOCKED;
	t->waiting_on = wq;
	t->timed_out = false;
	t->deadline_ns = deadline_ns;
	list_add_tail(&t->run_link, &wq->waiters);
	if (deadline_ns) { /* the timer looks for deadlines on the sleepers list */
		list_del(&t->all_link);
		list_add_tail(&t->all_link, &sleepers);
	}
	schedule();
	return !t->timed_out;
}

static void wake_locked(struct thread *t, bool timed_out)
{
	KASSERT(!irq_enabled());
	if (t->state != THREAD_BLOCKED)
		return;
	list_del(&t->run_link);
	if (t->deadline_ns) {
		list_del(&t->all_link);
		list_add_tail(&t->all_link, &all_threads);
		t->deadline_ns = 0;
	}
	t->waiting_on = NULL;
	t->timed_out = timed_out;
	enqueue_locked(t);
}

void wq_wake_all(struct wait_queue *wq)
{
	bool irq = irq_save();
	while (!list_empty(&wq->waiters))
		wake_locked(list_first_entry(&wq->waiters, struct thread, run_link), false);
	irq_restore(irq);
}

void thread_wake(struct thread *t)
{
	bool irq = irq_save();
	wake_locked(t, false);
	irq_restore(irq);
}

/* ------------------------------------------------------------------ the timer */

static void timer_irq(struct trap_frame *tf)
{
	(void)tf;
	assert_smap_closed("timer interrupt");
	apic_eoi();
	this_cpu()->ticks++;
	uint64_t now = clock_ns();
	struct list_head *pos = sleepers.next;
	while (pos != &sleepers) {
		struct thread *t = list_entry(pos, struct thread, all_link);
		pos = pos->next;
		if (t->deadline_ns && now >= t->deadline_ns)
			wake_locked(t, true);
	}
	this_cpu()->need_resched = true;
}

static void spurious_irq(struct trap_frame *tf) { (void)tf; }

void sched_return_to_user(struct trap_frame *tf)
{
	(void)tf;
	KASSERT(!irq_enabled());
	for (;;) {
		struct thread *t = current_thread();
		if (t->task && READ_ONCE(t->task->freezing) && !t->killed)
			task_park_current(); /* (returns once the task is being terminated) */
		if (t->killed) {
			irq_enable();
			thread_exit();
		}
		if (!this_cpu()->need_resched)
			return;
		schedule();
	}
}

/* ------------------------------------------------------------------ threads */

static struct thread *thread_alloc(const char *name)
{
	struct thread *t = pool_alloc(sizeof(*t), THREAD_TAG);
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	kstrlcpy(t->name, name, sizeof(t->name));
	t->kstack_size = KSTACK_SIZE;
	t->exc_vector = UINT64_MAX; /* (no exception stopped it) */
	t->affinity = UINT64_MAX;   /* (any CPU) */
	if (kstack_alloc(name, KSTACK_SIZE, &t->kstack_base) != rcOk) {
		pool_free(t);
		return NULL;
	}
	bool irq = irq_save();
	t->id = next_tid++;
	nthreads++;
	list_add_tail(&t->all_link, &all_threads);
	irq_restore(irq);
	return t;
}

/* Every new thread starts here (on its own stack, interrupts off). */
static __noreturn void thread_bootstrap(void *arg)
{
	struct thread *t = arg;

	finish_switch_locked();
	irq_enable();
	t->entry(t->arg);
	thread_exit();
}

/* The thread's first switch to it runs thread_bootstrap(t) on the stack below `top`. */
static void stack_init(struct thread *t, uint64_t top)
{
	t->saved_rsp = arch_thread_stack_init(top, thread_bootstrap, t);
}

struct thread *thread_create_kernel(const char *name, void (*entry)(void *), void *arg)
{
	struct thread *t = thread_alloc(name);
	if (!t)
		return NULL;
	t->entry = entry;
	t->arg = arg;
	stack_init(t, kstack_top(t));
	thread_start(t);
	return t;
}

/* A user thread's first kernel code: leave for ring 3 through the frame on top of the stack. */
static __noreturn void enter_user(void *arg)
{
	struct thread *t = arg;
	irq_disable();
	sched_return_to_user(thread_user_frame(t)); /* a task ended before it began: leave here */
	arch_enter_user(thread_user_frame(t));
}

struct thread *thread_create_user(struct task *task, const char *name, uint64_t rip, uint64_t rsp, uint64_t a0,
				  uint64_t a1)
{
	struct thread *t = thread_alloc(name);
	if (!t)
		return NULL;
	t->fpu = pool_alloc(FPU_STATE_SIZE, FPU_TAG);
	if (!t->fpu) {
		kstack_free(t->kstack_base, t->kstack_size);
		bool irq = irq_save();
		list_del(&t->all_link);
		nthreads--;
		irq_restore(irq);
		pool_free(t);
		return NULL;
	}
	fpu_init_state(t->fpu);
	t->task = task;
	t->entry = enter_user;
	t->arg = t;
	struct trap_frame *tf = thread_user_frame(t);
	arch_user_frame_init(tf, rip, rsp, a0, a1);
	stack_init(t, (uint64_t)(uintptr_t)tf);
	return t;
}

void thread_start(struct thread *t)
{
	bool irq = irq_save();
	KASSERT(t->state == THREAD_NEW);
	enqueue_locked(t);
	irq_restore(irq);
}

__noreturn void thread_exit(void)
{
	irq_disable();
	struct thread *t = current_thread();
	t->state = THREAD_DEAD;
	schedule();
	panic("thread %s ran after it exited", t->name);
}

/* ------------------------------------------------------------------ idle and reaper */

static void idle_loop(void *arg)
{
	(void)arg;
	for (;;) {
		irq_disable();
		if (!list_empty(&runqueue) || this_cpu()->need_resched) {
			schedule();
			continue;
		}
		arch_idle(); /* (the interrupt that ends it cannot slip in before the halt) */
	}
}

static void reaper_loop(void *arg)
{
	(void)arg;
	for (;;) {
		irq_disable();
		while (list_empty(&zombies))
			wq_wait_locked(&reaper_wq, 0);
		struct thread *t = list_first_entry(&zombies, struct thread, all_link);
		list_del(&t->all_link);
		nthreads--;
		irq_enable();

		kstack_free(t->kstack_base, t->kstack_size);
		if (t->fpu)
			pool_free(t->fpu);
		if (t->task)
			task_thread_gone(t->task, t);
		pool_free(t);
	}
}

void sched_init(void)
{
	struct thread *m = &main_thread;

	kstrlcpy(m->name, "main", sizeof(m->name));
	m->kstack_base = (uint64_t)(uintptr_t)boot_stack_bottom;
	m->kstack_size = (uint64_t)(boot_stack_top - boot_stack_bottom);
	m->state = THREAD_RUNNING;
	m->id = next_tid++;
	m->affinity = UINT64_MAX;
	nthreads++;
	list_add_tail(&m->all_link, &all_threads);
	this_cpu()->current = m;
	arch_set_kernel_stack(kstack_top(m));

	idle_thread = thread_alloc("idle");
	if (!idle_thread)
		panic("sched: cannot create the idle thread");
	idle_thread->entry = idle_loop;
	stack_init(idle_thread, kstack_top(idle_thread));
	idle_thread->state = THREAD_RUNNABLE;
	if (!thread_create_kernel("reaper", reaper_loop, NULL))
		panic("sched: cannot create the reaper thread");
	vm_preempt_hook = sched_preempt_point; /* mm's long operations give the CPU away here */
	trap_set_irq_handler(VEC_TIMER, timer_irq);
	trap_set_irq_handler(VEC_SPURIOUS, spurious_irq);
}
