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
#include <knmm/printf.h>
#include <knmm/string.h>
#include <knmm/image.h>
#include <mm/mm.h>
#include <mm/pool.h>
#include <mm/vm.h>
#include <kernel/sched.h>
#include <kernel/task.h>

#define THREAD_TAG POOL_TAG('T', 'h', 'r', 'd')
#define FPU_TAG    POOL_TAG('F', 'p', 'u', 'S')

/*
 * The scheduler's lock guards everything below that is not per-CPU: the run queue, every
 * wait queue, the thread lists (all, sleepers, zombies), each thread's state, run_link and
 * cpu, and the idle set. The timer takes it, so it is always taken with interrupts off.
 * schedule_locked() holds it across the switch: the thread switched to releases it (after
 * finish_switch_locked), so no other CPU can pick a thread whose registers are not saved yet.
 */
static spinlock_t sched_lock_ = SPINLOCK_INIT("sched", LOCK_RANK_SCHED);
static struct list_head runqueue = LIST_HEAD_INIT(runqueue);
static struct list_head all_threads = LIST_HEAD_INIT(all_threads);
static struct list_head zombies = LIST_HEAD_INIT(zombies);
static struct list_head sleepers = LIST_HEAD_INIT(sleepers); /* blocked with a deadline */
static struct wait_queue reaper_wq = WAIT_QUEUE_INIT(reaper_wq);
static unsigned reaping; /* threads the reaper took off the zombie list and is freeing */
static struct thread main_thread;
static uint64_t next_tid = 1, nthreads;
static uint64_t idle_cpus; /* CPUs halted in their idle loop, not yet sent a wake-up */
static unsigned ncpus = 1;
static unsigned nqueued; /* threads on the run queue (read without the lock by idle CPUs) */

/* What each CPU's scheduler keeps for itself (only that CPU touches its entry). */
static struct sched_cpu {
	struct thread *idle;
	struct thread *last_prev; /* the thread it switched away from (for the zombie check) */
	bool kick_deferred;       /* it queued a thread and sent no wake-up: it meant to run it */
} sched_cpus[SPIN_MAX_CPUS];

static inline unsigned cpu_index(void) { return this_cpu()->id; }
static inline uint64_t cpu_bit(unsigned cpu) { return 1ull << cpu; }

struct thread *current_thread(void) { return this_cpu()->current; }
uint64_t sched_thread_count(void) { return READ_ONCE(nthreads); }
unsigned sched_cpu_count(void) { return READ_ONCE(ncpus); }

bool sched_lock(void) { return spin_lock_irqsave(&sched_lock_); }
void sched_unlock(bool irq) { spin_unlock_irqrestore(&sched_lock_, irq); }

static uint64_t kstack_top(const struct thread *t) { return t->kstack_base + t->kstack_size; }

struct trap_frame *thread_user_frame(const struct thread *t) { return arch_user_frame(kstack_top(t)); }

/* ------------------------------------------------------------------ run queue */

/* Sends a reschedule IPI to a halted CPU (not this one) that may run t, if there is one. */
static void wake_idle_cpu_for_locked(const struct thread *t)
{
	uint64_t can = idle_cpus & t->affinity & ~cpu_bit(cpu_index());
	if (!can)
		return;
	unsigned cpu = (unsigned)__builtin_ctzll(can);
	idle_cpus &= ~cpu_bit(cpu);
	apic_send_ipi(cpu, VEC_IPI_RESCHED);
}

/*
 * t was just queued: wake a CPU halted in its idle loop that may run it, unless this CPU may
 * take it itself. It may when t may run here and t is the only thread waiting: most
 * wake-ups come from a thread about to wait in turn (a parent that started a child and waits
 * for it, a thread that wakes another and blocks), and this CPU then switches to t at once,
 * where a halted CPU would first have to wake up and t would move for nothing. If the waker
 * goes on instead, the wake-up is only put off: the CPU sends it on its way back to ring 3
 * or at its next preemption point (sched_kick_deferred). The woken CPU leaves the idle set
 * (one wake-up each).
 */
static void kick_idle_cpu_locked(const struct thread *t)
{
	struct sched_cpu *sc = &sched_cpus[cpu_index()];
	if ((t->affinity & cpu_bit(cpu_index())) && nqueued <= 1 && sc->idle) {
		sc->kick_deferred = true;
		return;
	}
	wake_idle_cpu_for_locked(t);
}

static void enqueue_locked(struct thread *t)
{
	spin_assert_held(&sched_lock_);
	t->state = THREAD_RUNNABLE;
	if (t->is_idle)
		return;
	list_add_tail(&t->run_link, &runqueue);
	nqueued++;
	kick_idle_cpu_locked(t);
}

/* Whether a queued thread may run on cpu. */
static bool queued_for_locked(unsigned cpu)
{
	struct list_head *pos;
	list_for_each(pos, &runqueue)
		if (list_entry(pos, struct thread, run_link)->affinity & cpu_bit(cpu))
			return true;
	return false;
}

/* The first runnable thread allowed on this CPU, off the queue; NULL if none. */
static struct thread *pick_locked(unsigned cpu)
{
	struct list_head *pos;
	list_for_each(pos, &runqueue) {
		struct thread *t = list_entry(pos, struct thread, run_link);
		if (t->affinity & cpu_bit(cpu)) {
			list_del(&t->run_link);
			nqueued--;
			return t;
		}
	}
	return NULL;
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
	sched_cpus[cpu_index()].last_prev = prev;
	arch_switch(&prev->saved_rsp, next->saved_rsp);
}

/* Ring 3 can open supervisor access to user pages (RFLAGS.AC under SMAP); the kernel must
 * never run with it open outside the copy routines. Checked where it could leak: interrupts
 * and switches. */
static inline void assert_smap_closed(const char *where)
{
	KASSERT_MSG(!arch_user_access_open(), "RFLAGS.AC set in the kernel (%s): SMAP is off", where);
}

/* Back on a CPU after arch_switch, the scheduler's lock still held: the thread we left may be
 * dead now that it is off its stack. */
static void finish_switch_locked(void)
{
	spin_assert_held(&sched_lock_);
	assert_smap_closed("after a switch");
	struct sched_cpu *sc = &sched_cpus[cpu_index()];
	struct thread *prev = sc->last_prev;
	sc->last_prev = NULL;
	if (prev && prev->state == THREAD_DEAD) {
		list_del(&prev->all_link);
		list_add_tail(&prev->all_link, &zombies);
		wq_wake_all_locked(&reaper_wq);
	}
}

static void schedule_locked(void)
{
	spin_assert_held(&sched_lock_);
	spin_assert_only_held(&sched_lock_, "schedule()"); /* (debug builds: no other lock across a switch) */
	unsigned cpu = cpu_index();
	struct thread *prev = current_thread(), *next;

	this_cpu()->need_resched = false;
	sched_cpus[cpu].kick_deferred = false; /* (it looks at the queue now) */
	if (prev->state == THREAD_RUNNING) {
		prev->state = THREAD_RUNNABLE;
		if (!prev->is_idle) {
			list_add_tail(&prev->run_link, &runqueue); /* (no wake-up: this CPU looks next) */
			nqueued++;
		}
	}
	next = pick_locked(cpu);
	if (!next)
		next = sched_cpus[cpu].idle;
	next->state = THREAD_RUNNING;
	next->cpu = cpu;
	if (next != prev) {
		switch_to(prev, next);
		finish_switch_locked();
	}
}

void schedule(void)
{
	bool irq = sched_lock();
	schedule_locked();
	sched_unlock(irq);
}

void sched_yield(void) { schedule(); }

/* This CPU queued a thread without waking another CPU, meaning to run it itself, and goes
 * on with the thread it has instead: wake a halted CPU for the first thread waiting now. */
static void sched_kick_deferred(void)
{
	bool irq = sched_lock();
	struct sched_cpu *sc = &sched_cpus[cpu_index()];
	if (sc->kick_deferred && !list_empty(&runqueue))
		wake_idle_cpu_for_locked(list_first_entry(&runqueue, struct thread, run_link));
	sc->kick_deferred = false;
	sched_unlock(irq);
}

void sched_preempt_point(void)
{
	/* Interrupts on means no spinlock is held here (every one disables them). */
	if (!irq_enabled())
		return;
	if (READ_ONCE(this_cpu()->need_resched))
		schedule();
	else if (READ_ONCE(sched_cpus[cpu_index()].kick_deferred))
		sched_kick_deferred();
}

void sched_set_affinity(struct thread *t, uint64_t mask)
{
	bool irq = sched_lock();
	t->affinity = mask;
	/* A thread running where it may no longer be leaves at its next return to ring 3. */
	if (t->state == THREAD_RUNNING && !(mask & cpu_bit(t->cpu))) {
		if (t->cpu == cpu_index())
			this_cpu()->need_resched = true;
		else
			apic_send_ipi(t->cpu, VEC_IPI_RESCHED);
	}
	sched_unlock(irq);
}

/* ------------------------------------------------------------------ waiting */

bool wq_wait_locked(struct wait_queue *wq, uint64_t deadline_ns)
{
	struct thread *t = current_thread();

	spin_assert_held(&sched_lock_);
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
	schedule_locked();
	return !t->timed_out;
}

static void wake_locked(struct thread *t, bool timed_out)
{
	spin_assert_held(&sched_lock_);
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

void wq_wake_all_locked(struct wait_queue *wq)
{
	spin_assert_held(&sched_lock_);
	while (!list_empty(&wq->waiters))
		wake_locked(list_first_entry(&wq->waiters, struct thread, run_link), false);
}

void wq_wake_all(struct wait_queue *wq)
{
	bool irq = sched_lock();
	wq_wake_all_locked(wq);
	sched_unlock(irq);
}

void thread_wake(struct thread *t)
{
	bool irq = sched_lock();
	wake_locked(t, false);
	sched_unlock(irq);
}

void thread_wake_or_kick(struct thread *t)
{
	bool irq = sched_lock();
	if (t->state == THREAD_BLOCKED)
		wake_locked(t, false);
	else if (t->state == THREAD_RUNNING && t->cpu != cpu_index())
		apic_send_ipi(t->cpu, VEC_IPI_RESCHED);
	sched_unlock(irq);
}

/* ------------------------------------------------------------------ the timer */

static void timer_irq(struct trap_frame *tf)
{
	(void)tf;
	assert_smap_closed("timer interrupt");
	apic_eoi();
	this_cpu()->ticks++;
	this_cpu()->need_resched = true;
	if (cpu_index() != 0) /* (the boot CPU ends sleeps: one tick serves them all) */
		return;
	uint64_t now = clock_ns();
	bool irq = sched_lock(); /* (interrupts are off already) */
	struct list_head *pos = sleepers.next;
	while (pos != &sleepers) {
		struct thread *t = list_entry(pos, struct thread, all_link);
		pos = pos->next;
		if (t->deadline_ns && now >= t->deadline_ns)
			wake_locked(t, true);
	}
	sched_unlock(irq);
}

/* Another CPU made a thread runnable for this one, or wants its thread back in the kernel
 * (a freeze, an affinity change): look at the run queue on the way out. */
static void resched_ipi(struct trap_frame *tf)
{
	(void)tf;
	apic_eoi();
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
		if (!this_cpu()->need_resched) {
			if (READ_ONCE(sched_cpus[cpu_index()].kick_deferred))
				sched_kick_deferred();
			return;
		}
		schedule();
	}
}

/* ------------------------------------------------------------------ threads */

static void thread_register(struct thread *t)
{
	bool irq = sched_lock();
	t->id = next_tid++;
	nthreads++;
	list_add_tail(&t->all_link, &all_threads);
	sched_unlock(irq);
}

static struct thread *thread_alloc(const char *name)
{
	struct thread *t = pool_alloc(sizeof(*t), THREAD_TAG);
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	kstrlcpy(t->name, name, sizeof(t->name));
	t->kstack_size = KSTACK_SIZE;
	t->exc_vector = UINT64_MAX; /* (no exception stopped it) */
	t->affinity = SCHED_ANY_CPU;
	if (kstack_alloc(name, KSTACK_SIZE, &t->kstack_base) != rcOk) {
		pool_free(t);
		return NULL;
	}
	thread_register(t);
	return t;
}

/* Every new thread starts here (on its own stack, interrupts off, the scheduler's lock held
 * by the switch that brought it here). */
static __noreturn void thread_bootstrap(void *arg)
{
	struct thread *t = arg;

	finish_switch_locked();
	sched_unlock(true);
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
		bool irq = sched_lock();
		list_del(&t->all_link);
		nthreads--;
		sched_unlock(irq);
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
	bool irq = sched_lock();
	KASSERT(t->state == THREAD_NEW);
	enqueue_locked(t);
	sched_unlock(irq);
}

__noreturn void thread_exit(void)
{
	struct thread *t = current_thread();
	sched_lock();
	t->state = THREAD_DEAD;
	schedule_locked();
	panic("thread %s ran after it exited", t->name);
}

/* ------------------------------------------------------------------ idle and reaper */

/* Each CPU's idle thread: runs what the queue has for it, else halts until an interrupt (its
 * timer, or another CPU's wake-up IPI after it queued a thread this CPU may run). */
static void idle_loop(void *arg)
{
	(void)arg;
	unsigned cpu = cpu_index();
	for (;;) {
		irq_disable();
		/* Woken by its tick with nothing queued anywhere: halt again, still in the idle set,
		 * without the lock (a CPU that queues a thread now sees this one idle and sends it a
		 * wake-up, which the halt below takes at once: interrupts are off until it). */
		if ((READ_ONCE(idle_cpus) & cpu_bit(cpu)) && !READ_ONCE(nqueued)) {
			this_cpu()->need_resched = false;
		} else {
			bool irq = sched_lock();
			(void)irq;
			idle_cpus &= ~cpu_bit(cpu);
			if (this_cpu()->need_resched || queued_for_locked(cpu)) {
				schedule_locked();
				sched_unlock(false);
				continue;
			}
			idle_cpus |= cpu_bit(cpu);
			sched_unlock(false);
		}
		tlb_idle_enter();
		arch_idle();     /* (sti; hlt: the interrupt that ends it cannot slip in before the halt) */
		tlb_idle_exit(); /* (done already by the interrupt that woke it) */
	}
}

static void reaper_loop(void *arg)
{
	(void)arg;
	for (;;) {
		bool irq = sched_lock();
		while (list_empty(&zombies))
			wq_wait_locked(&reaper_wq, 0);
		struct thread *t = list_first_entry(&zombies, struct thread, all_link);
		list_del(&t->all_link);
		nthreads--;
		reaping++;
		sched_unlock(irq);

		kstack_free(t->kstack_base, t->kstack_size);
		if (t->fpu)
			pool_free(t->fpu);
		if (t->task)
			task_thread_gone(t->task, t);
		pool_free(t);

		irq = sched_lock();
		reaping--;
		sched_unlock(irq);
	}
}

bool sched_reaper_busy_locked(void)
{
	spin_assert_held(&sched_lock_);
	/* (A thread that exited is a zombie by the time the lock is free again: its CPU moves
	 * it there in the switch away from it.) */
	return !list_empty(&zombies) || reaping;
}
/* The context running on a CPU's boot stack becomes a thread: "main" on the boot CPU,
 * that CPU's idle thread on the others. */
static void adopt_boot_context(struct thread *t, const char *name, uint64_t stack_base, uint64_t stack_size)
{
	kstrlcpy(t->name, name, sizeof(t->name));
	t->kstack_base = stack_base;
	t->kstack_size = stack_size;
	t->state = THREAD_RUNNING;
	t->affinity = SCHED_ANY_CPU;
	t->exc_vector = UINT64_MAX;
	t->cpu = cpu_index();
	thread_register(t);
	this_cpu()->current = t;
	arch_set_kernel_stack(kstack_top(t));
}

void sched_init(void)
{
	adopt_boot_context(&main_thread, "main", (uint64_t)(uintptr_t)boot_stack_bottom,
			   (uint64_t)(boot_stack_top - boot_stack_bottom));

	struct thread *idle = thread_alloc("idle0");
	if (!idle)
		panic("sched: cannot create the idle thread");
	idle->entry = idle_loop;
	idle->is_idle = true;
	idle->affinity = cpu_bit(0);
	stack_init(idle, kstack_top(idle));
	idle->state = THREAD_RUNNABLE;
	sched_cpus[0].idle = idle;
	if (!thread_create_kernel("reaper", reaper_loop, NULL))
		panic("sched: cannot create the reaper thread");
	vm_preempt_hook = sched_preempt_point; /* mm's long operations give the CPU away here */
	trap_set_irq_handler(VEC_TIMER, timer_irq);
	trap_set_irq_handler(VEC_SPURIOUS, spurious_irq);
	trap_set_irq_handler(VEC_IPI_RESCHED, resched_ipi);
}

__noreturn void sched_cpu_start(uint64_t stack_base, uint64_t stack_size)
{
	unsigned cpu = cpu_index();
	struct thread *idle = pool_alloc(sizeof(*idle), THREAD_TAG);
	if (!idle)
		panic("sched: cannot create CPU %u's idle thread", cpu);
	memset(idle, 0, sizeof(*idle));
	char name[24];
	ksnprintf(name, sizeof(name), "idle%u", cpu);
	adopt_boot_context(idle, name, stack_base, stack_size);
	idle->is_idle = true;
	idle->affinity = cpu_bit(cpu);
	sched_cpus[cpu].idle = idle;
	bool irq = sched_lock();
	if (cpu + 1 > ncpus)
		WRITE_ONCE(ncpus, cpu + 1);
	sched_unlock(irq);
	idle_loop(NULL);
	panic("sched: CPU %u's idle loop returned", cpu);
}
