// SPDX-License-Identifier: MIT
/*
 * Tasks (docs/tasks.md). Lifecycle:
 *   task_create    address space with the program's segments and a grow-down stack,
 *                  handle table, a main thread that has not run: state CREATED
 *   task_resume    the main thread becomes runnable: RUNNING
 *   task_terminate every thread is told to leave (blocked ones are woken); each thread
 *                  leaves at its next return towards ring 3; the reaper frees each thread,
 *                  and after the last one the address space (every page, page table,
 *                  stack) and the handle table; then: EXITED, waiters woken
 * A task object lives while handles or its threads refer to it.
 */
#include <arch/time.h>
#include <arch/cpu.h>
#include <knmm/align.h>
#include <knmm/cmdline.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include <kernel/elf.h>
#include <kernel/modules.h>
#include <kernel/options.h>
#include <kernel/task.h>

#define TASK_TAG   POOL_TAG('T', 'a', 's', 'k')
#define STACK_SIZE MiB(1)

static spinlock_t tasks_lock = SPINLOCK_INIT("tasks", LOCK_RANK_TASKS);
static struct list_head all_tasks = LIST_HEAD_INIT(all_tasks);
static uint64_t next_id = 1, ntasks, dying; /* dying: terminated, not yet EXITED */
static struct wait_queue settle_wq = WAIT_QUEUE_INIT(settle_wq);

uint64_t task_count(void) { return READ_ONCE(ntasks); }

struct task *current_task(void)
{
	struct thread *t = current_thread();
	return t ? t->task : NULL;
}

static void task_release(struct kobject *o)
{
	struct task *t = container_of(o, struct task, obj);
	struct account *acct = t->acct;

	KASSERT_MSG(t->nthreads == 0 && (t->state == KN_TASK_STATE_EXITED), "releasing live task %s", t->name);
	bool irq = spin_lock_irqsave(&tasks_lock);
	list_del(&t->all_link);
	ntasks--;
	spin_unlock_irqrestore(&tasks_lock, irq);
	kmem_free(acct, t);
	account_put(acct);
}

/* What a thread costs its task's account: its object and FPU area as bookkeeping, its
 * kernel stack as commit (the stack's frames are charged globally where it is allocated). */
static uint64_t thread_kmem(void) { return pool_block_cost(sizeof(struct thread)) + pool_block_cost(FPU_STATE_SIZE); }
#define THREAD_STACK_PAGES (KSTACK_SIZE / PAGE_SIZE)

static Retcode thread_charge(struct account *a)
{
	if (account_charge_kmem(a, thread_kmem()) != rcOk)
		return rcOutOfMemory;
	if (account_charge(a, ACCT_CHARGE, THREAD_STACK_PAGES) != rcOk) {
		account_uncharge_kmem(a, thread_kmem());
		return rcOutOfMemory;
	}
	return rcOk;
}

static void thread_uncharge(struct account *a)
{
	account_uncharge(a, ACCT_CHARGE, THREAD_STACK_PAGES);
	account_uncharge_kmem(a, thread_kmem());
}

/*
 * No live handle refers to t any more (docs/tasks.md, "Orphans"): nobody can ever resume it
 * if it was created, nor dump, resume or end it if it is frozen. It is ended, and its own
 * handles stop keeping anything (which may end the tasks only it held, and so on). Running
 * tasks need no handle: they act on their own.
 */
static void task_unreachable(struct kobject *o)
{
	struct task *t = container_of(o, struct task, obj);
	bool irq = spin_lock_irqsave(&t->lock);
	bool orphan = !t->dying && (t->state == KN_TASK_STATE_CREATED || t->state == KN_TASK_STATE_FROZEN) &&
		      READ_ONCE(o->live) == 0;
	spin_unlock_irqrestore(&t->lock, irq);
	if (!orphan)
		return;
	/* (debug level: ring 3 can make any number of these) */
	pr_debug("task %s: %s, and nothing that can act holds a handle to it: ended", t->name,
		 t->state == KN_TASK_STATE_CREATED ? "never started" : "frozen");
	handle_table_stop_counting(&t->handles);
	task_terminate(t, KN_EXIT_TERMINATED, false);
}

/* The kernel's own handles (the monitor's, and init's if it freezes): they keep tasks
 * reachable like a running task's. */
static struct handle_table kernel_handles;

void task_init(void)
{
	handle_table_init(&kernel_handles, 0, NULL);
	if (handle_table_reserve(&kernel_handles, 64) != rcOk) /* (made now: tests count memory after) */
		panic("task: no memory for the kernel's handle table");
}

Retcode task_hold(struct task *t, Handle *h)
{
	return handle_alloc(&kernel_handles, &t->obj, KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE, h);
}

void task_drop_hold(Handle h) { handle_close(&kernel_handles, h); }

void task_drop_exited_holds(void)
{
	/* Enumerate the kernel's handles and close those whose task has exited. */
	for (uint64_t i = 0;;) {
		Handle h;
		uint8_t type;
		uint32_t rights;
		struct kobject *o;
		if (handle_enumerate(&kernel_handles, i, &h, &type, &rights) != rcOk)
			break;
		if (handle_get(&kernel_handles, h, KN_HANDLE_TYPE_TASK, 0, &o, NULL) != rcOk) {
			i++;
			continue;
		}
		bool exited = container_of(o, struct task, obj)->state == KN_TASK_STATE_EXITED;
		kobj_put(o);
		if (exited)
			handle_close(&kernel_handles, h); /* (the next one moves to index i) */
		else
			i++;
	}
}

static void set_state(struct task *t, int state)
{
	t->state = state;
	wq_wake_all(&t->state_wq);
}

/* argv = { name, args..., NULL } at the top of the stack (its top page is resident): the
 * strings (checked by task_create_args: at most KN_TASK_ARGS_BYTES), then the vector below
 * them, 16-byte aligned, where the stack pointer starts. */
static Retcode push_args(struct task *t, uint64_t top, unsigned argc, const char *const *args, uint64_t *rsp,
			 uint64_t *argv)
{
	char strings[KN_TASK_ARGS_BYTES];
	uint64_t vec[KN_TASK_ARGS_MAX + 2];
	size_t at = 0;

	for (unsigned i = 0; i <= argc; i++) {
		const char *s = i ? args[i - 1] : t->name;
		size_t n = strlen(s) + 1;
		memcpy(strings + at, s, n);
		vec[i] = at; /* (an offset until the block's address is known) */
		at += n;
	}
	uint64_t strings_at = align_down(top - 16 - at, 16);
	uint64_t argv_at = align_down(strings_at - (argc + 2) * sizeof(uint64_t), 16);
	for (unsigned i = 0; i <= argc; i++)
		vec[i] += strings_at;
	vec[argc + 1] = 0;
	if (vm_write(&t->vs, strings_at, strings, at) != rcOk ||
	    vm_write(&t->vs, argv_at, vec, (argc + 2) * sizeof(uint64_t)) != rcOk)
		return rcOutOfMemory;
	*argv = argv_at;
	*rsp = argv_at;
	return rcOk;
}

/* Undoes what task_create took before the task was published. */
static void task_unmake(struct task *t, struct account *parent, bool space)
{
	struct account *acct = t->acct;
	if (space)
		vm_space_destroy(&t->vs);
	kmem_free(acct, t);
	account_put(acct);
	account_uncharge(parent, ACCT_TASKS, 1);
}

Retcode task_create(const char *name, const char *program, unsigned flags, struct account *parent, struct task **out)
{
	return task_create_args(name, program, flags, parent, 0, NULL, out);
}

Retcode task_create_args(const char *name, const char *program, unsigned flags, struct account *parent, unsigned argc,
			 const char *const *args, struct task **out)
{
	size_t len = strlen(name);
	if (len == 0 || len > KN_TASK_NAME_MAX || (flags & ~(unsigned)(KN_TASK_DUMPABLE | KN_TASK_PRIVILEGED)))
		return rcInvalidArgument;
	if (argc > KN_TASK_ARGS_MAX)
		return rcInvalidArgument;
	size_t arg_bytes = len + 1;
	for (unsigned i = 0; i < argc; i++)
		arg_bytes += strlen(args[i]) + 1;
	if (arg_bytes > KN_TASK_ARGS_BYTES)
		return rcInvalidArgument;
	const struct boot_module *mod = module_find(program);
	if (!mod)
		return rcNotFound;

	/* It counts against its creator's task limit, and everything it costs goes to an
	 * account of its own under the creator's. */
	if (account_charge(parent, ACCT_TASKS, 1) != rcOk)
		return rcOutOfMemory;
	bool irq = spin_lock_irqsave(&tasks_lock);
	uint64_t id = next_id++;
	spin_unlock_irqrestore(&tasks_lock, irq);
	struct account *acct = account_create(parent, id);
	struct task *t = acct ? kmem_alloc(acct, sizeof(*t), TASK_TAG) : NULL;
	if (!t) {
		if (acct)
			account_put(acct);
		account_uncharge(parent, ACCT_TASKS, 1);
		return rcOutOfMemory;
	}
	memset(t, 0, sizeof(*t));
	kstrlcpy(t->name, name, sizeof(t->name));
	t->program = mod;
	t->id = id;
	t->acct = acct;
	t->flags = flags;
	t->lock = (spinlock_t)SPINLOCK_INIT("task", LOCK_RANK_TASK);
	list_init(&t->threads);
	wq_init(&t->state_wq);
	wq_init(&t->frozen_wq);

	const struct vm_space_params sp = {
		.name = t->name,
		.user = true,
		.lo = USER_BASE,
		.hi = USER_END,
		.acct = acct,
		.aslr = kernel_aslr,
		.seed = rdtsc() * (t->id | 1),
		.mmap_base = GiB(1), /* without ASLR: above the program's segments */
		.faultaround = kernel_faultaround,
	};
	Retcode rc = vm_space_init(&t->vs, &sp);
	if (rc != rcOk) {
		task_unmake(t, parent, false);
		return rc;
	}

	uint64_t entry, stack, rsp, argv;
	rc = elf_load(&t->vs, phys_to_virt(mod->start), mod->end - mod->start, t->name, acct, &entry);
	if (rc == rcOk)
		rc = vm_allocate(&t->vs, 0, STACK_SIZE,
				 VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE | VMM_FLAG_GROW_DOWN |
					 VMM_FLAG_LOW_GUARD,
				 &stack);
	if (rc == rcOk)
		rc = push_args(t, stack + STACK_SIZE, argc, args, &rsp, &argv);
	struct thread *main = NULL;
	if (rc == rcOk)
		rc = thread_charge(acct);
	if (rc == rcOk) {
		main = thread_create_user(t, t->name, entry, rsp, 1 + argc, argv);
		if (!main) {
			thread_uncharge(acct);
			rc = rcOutOfMemory;
		}
	}
	if (rc != rcOk) {
		task_unmake(t, parent, true);
		return rc;
	}

	handle_table_init(&t->handles, t->id, acct);
	kobj_init(&t->obj, KN_HANDLE_TYPE_TASK, task_release); /* the reference returned */
	t->obj.unreachable = task_unreachable;
	task_get(t); /* the main thread's */
	list_add_tail(&main->task_link, &t->threads);
	t->nthreads = t->live = 1;
	t->state = KN_TASK_STATE_CREATED;
	irq = spin_lock_irqsave(&tasks_lock);
	list_add_tail(&t->all_link, &all_tasks);
	ntasks++;
	spin_unlock_irqrestore(&tasks_lock, irq);
	*out = t;
	return rcOk;
}

Retcode task_resume(struct task *t)
{
	bool irq = spin_lock_irqsave(&t->lock);
	if (t->state != KN_TASK_STATE_CREATED || t->dying) {
		spin_unlock_irqrestore(&t->lock, irq);
		return rcWrongState;
	}
	/* Still under the lock: two resumes, or a resume and a terminate (which starts a NEW
	 * thread to make it leave), on two CPUs must not both start the main thread. */
	struct thread *main = list_first_entry(&t->threads, struct thread, task_link);
	set_state(t, KN_TASK_STATE_RUNNING);
	thread_start(main);
	spin_unlock_irqrestore(&t->lock, irq);
	return rcOk;
}

/* Whether the current thread must give up a wait: its task is being terminated or frozen
 * (it has a safe point to get to). */
static bool must_leave_wait(void)
{
	struct thread *th = current_thread();
	return th->killed || (th->task && READ_ONCE(th->task->freezing));
}

Retcode task_wait(struct task *t, int states, uint64_t deadline_ns)
{
	Retcode rc = rcOk;
	bool irq = sched_lock();

	while (!(READ_ONCE(t->state) & states)) {
		bool expired = deadline_ns && clock_ns() >= deadline_ns; /* (0 ns: just look) */
		if (must_leave_wait() || expired || !wq_wait_locked(&t->state_wq, deadline_ns)) {
			rc = (t->state & states) ? rcOk : rcBusy;
			break;
		}
	}
	sched_unlock(irq);
	return rc;
}

void task_terminate(struct task *t, int code, bool wait)
{
	bool irq = spin_lock_irqsave(&t->lock);
	if (!t->dying && t->state != KN_TASK_STATE_EXITED) {
		t->dying = true;
		__atomic_add_fetch(&dying, 1, __ATOMIC_ACQ_REL);
		t->exit_code = code;
		struct list_head *pos;
		list_for_each(pos, &t->threads) {
			struct thread *th = list_entry(pos, struct thread, task_link);
			th->killed = true;
			if (th->state == THREAD_NEW)
				thread_start(th); /* it leaves before it ever reaches ring 3 */
			else
				thread_wake_or_kick(th);
		}
	}
	spin_unlock_irqrestore(&t->lock, irq);
	if (wait && current_task() != t)
		task_wait(t, KN_TASK_STATE_EXITED, 0);
}

__noreturn void task_exit_current(int code)
{
	struct task *t = current_task();
	KASSERT(t != NULL);
	task_terminate(t, code, false);
	thread_exit();
}

__noreturn void task_exception(struct trap_frame *tf, const char *kind, uint64_t addr)
{
	struct task *t = current_task();
	struct thread *th = current_thread();
	bool dump = (t->flags & KN_TASK_DUMPABLE) && task_freeze(t) == rcOk;

	pr_warn("task %s: %s at %#llx rip %#llx%s", t->name, kind, (unsigned long long)addr,
		(unsigned long long)tf->rip, dump ? " (frozen for a dump)" : "");
	if (dump) {
		/* Stopped where it failed: its frame is the fault's, for the dump. */
		th->exc_vector = tf->vector;
		th->exc_error = tf->error;
		th->exc_cr2 = tf->vector == VEC_PF ? addr : 0;
		irq_disable();
		task_park_current();
		irq_enable();
		thread_exit(); /* terminated while frozen */
	}
	task_terminate(t, KN_EXIT_EXCEPTION, false);
	thread_exit();
}

Retcode task_freeze(struct task *t)
{
	bool irq = spin_lock_irqsave(&t->lock);
	Retcode rc = rcOk;

	if (t->dying || t->state == KN_TASK_STATE_EXITED || t->state == KN_TASK_STATE_CREATED) {
		rc = rcWrongState;
	} else if (!t->freezing) {
		t->freezing = true;
		/* Blocked threads go to their safe point now (their call returns rcBusy, which
		 * nobody will see: a frozen task never runs again). */
		struct list_head *pos;
		list_for_each(pos, &t->threads)
			thread_wake_or_kick(list_entry(pos, struct thread, task_link));
	}
	spin_unlock_irqrestore(&t->lock, irq);
	return rc;
}

/* Every live thread of t is parked: t becomes FROZEN (t->lock held). True when it just did. */
static bool freeze_complete_locked(struct task *t)
{
	spin_assert_held(&t->lock);
	if (!t->freezing || t->parked != t->live || t->state != KN_TASK_STATE_RUNNING)
		return false;
	set_state(t, KN_TASK_STATE_FROZEN);
	return true;
}

/* t has just become FROZEN (t->lock not held): it never acts again, so its handles keep
 * nothing from now on, and if nothing that can act holds it, nobody will ever dump or end
 * it: it ends now. */
static void task_frozen(struct task *t)
{
	handle_table_stop_counting(&t->handles);
	task_get(t);
	if (READ_ONCE(t->obj.live) == 0)
		task_unreachable(&t->obj);
	task_put(t);
}

void task_park_current(void)
{
	struct thread *th = current_thread();
	struct task *t = th->task;

	KASSERT(!irq_enabled());
	spin_lock_irqsave(&t->lock);
	t->parked++;
	bool frozen = freeze_complete_locked(t);
	spin_unlock_irqrestore(&t->lock, false);
	if (frozen)
		task_frozen(t);
	sched_lock();
	while (!READ_ONCE(th->killed))
		wq_wait_locked(&t->frozen_wq, 0);
	sched_unlock(false);
	spin_lock_irqsave(&t->lock);
	t->parked--;
	spin_unlock_irqrestore(&t->lock, false);
}

Retcode task_thread_create(struct task *t, uint64_t entry, uint64_t arg, uint64_t stack_top, uint64_t *tid)
{
	bool irq = spin_lock_irqsave(&t->lock);
	bool going = t->dying || t->freezing;
	spin_unlock_irqrestore(&t->lock, irq);
	if (going)
		return rcWrongState;
	if (thread_charge(t->acct) != rcOk)
		return rcOutOfMemory;
	struct thread *th = thread_create_user(t, t->name, entry, stack_top, arg, 0);
	if (!th) {
		thread_uncharge(t->acct);
		return rcOutOfMemory;
	}
	task_get(t); /* the thread's */
	irq = spin_lock_irqsave(&t->lock);
	/* Terminated or frozen while it was made (it may have blocked for memory): it is not
	 * one of the task's, and leaves before it reaches ring 3; the reaper frees it, and
	 * gives the charge back, as any other. */
	going = t->dying || t->freezing;
	if (going) {
		th->killed = true;
		list_init(&th->task_link); /* (off the list: task_thread_gone's list_del is harmless) */
	} else {
		list_add_tail(&th->task_link, &t->threads);
		t->live++;
	}
	t->nthreads++;
	*tid = th->id;
	thread_start(th);
	spin_unlock_irqrestore(&t->lock, irq);
	return going ? rcWrongState : rcOk;
}

__noreturn void task_thread_exit_current(void)
{
	struct thread *th = current_thread();
	struct task *t = th->task;

	KASSERT(t != NULL);
	bool irq = spin_lock_irqsave(&t->lock);
	if (t->dying || t->live == 1) {
		/* The last one (or the task is ending anyway): the task ends as by KnTaskExit(0). */
		spin_unlock_irqrestore(&t->lock, irq);
		task_exit_current(0);
	}
	/* Off the list of live threads now (a freeze no longer waits for it, thread contexts
	 * no longer list it); linked to itself until the reaper's list_del. */
	list_del(&th->task_link);
	list_init(&th->task_link);
	t->live--;
	bool frozen = freeze_complete_locked(t);
	spin_unlock_irqrestore(&t->lock, irq);
	if (frozen)
		task_frozen(t);
	thread_exit();
}

Retcode task_thread_set_affinity(struct task *t, uint64_t tid, uint64_t mask)
{
	Retcode rc = rcNotFound;
	bool irq = spin_lock_irqsave(&t->lock);
	struct list_head *pos;

	list_for_each(pos, &t->threads) {
		struct thread *th = list_entry(pos, struct thread, task_link);
		if (tid == 0 ? th == current_thread() : th->id == tid) {
			sched_set_affinity(th, mask);
			rc = rcOk;
			break;
		}
	}
	spin_unlock_irqrestore(&t->lock, irq);
	return rc;
}

/* The reaper freed thread th of t (its kernel stack is gone): after the last, the task. */
void task_thread_gone(struct task *t, struct thread *th)
{
	bool irq = spin_lock_irqsave(&t->lock);
	list_del(&th->task_link);
	bool last = --t->nthreads == 0;
	spin_unlock_irqrestore(&t->lock, irq);
	thread_uncharge(t->acct);
	if (last) {
		/* t is dying (its threads only leave once it is): no new space hold; the calls
		 * that hold it finish first, so nothing they add outlives the teardown. */
		irq = sched_lock();
		while (READ_ONCE(t->space_calls))
			wq_wait_locked(&t->state_wq, 0);
		sched_unlock(irq);
		/* The reaper runs on the kernel's tables: this space is not active anywhere. */
		vm_space_destroy(&t->vs);
		handle_table_destroy(&t->handles);
		account_uncharge(account_parent(t->acct), ACCT_TASKS, 1);
		set_state(t, KN_TASK_STATE_EXITED);
		__atomic_sub_fetch(&dying, 1, __ATOMIC_ACQ_REL);
		wq_wake_all(&settle_wq);
	}
	task_put(t); /* the thread's reference */
}

Retcode task_space_hold(struct task *t)
{
	bool irq = spin_lock_irqsave(&t->lock);
	Retcode rc = rcOk;

	if (t->dying || t->state == KN_TASK_STATE_EXITED || t->nthreads == 0)
		rc = rcWrongState;
	else
		t->space_calls++;
	spin_unlock_irqrestore(&t->lock, irq);
	return rc;
}

void task_space_release(struct task *t)
{
	bool irq = spin_lock_irqsave(&t->lock);
	KASSERT(t->space_calls > 0);
	if (--t->space_calls == 0)
		wq_wake_all(&t->state_wq); /* (the teardown; task_wait's waiters look again) */
	spin_unlock_irqrestore(&t->lock, irq);
}

void task_wait_teardowns(void)
{
	bool irq = sched_lock();
	/* A caller being terminated stops waiting (it may itself be what is dying). */
	while ((READ_ONCE(dying) || sched_reaper_busy_locked()) && !must_leave_wait())
		wq_wait_locked(&settle_wq, clock_ns() + 10000000ull);
	sched_unlock(irq);
}

struct task *task_find(const char *spec)
{
	uint64_t id = 0;
	bool numeric = *spec != 0;
	for (const char *p = spec; *p; p++) {
		numeric &= *p >= '0' && *p <= '9';
		id = id * 10 + (uint64_t)(*p - '0');
	}
	struct task *found = NULL;
	bool irq = spin_lock_irqsave(&tasks_lock);
	struct list_head *pos;
	list_for_each(pos, &all_tasks) {
		struct task *t = list_entry(pos, struct task, all_link);
		if (numeric ? t->id == id : strcmp(t->name, spec) == 0) {
			found = t;
			task_get(t);
			break;
		}
	}
	spin_unlock_irqrestore(&tasks_lock, irq);
	return found;
}

void task_for_each(void (*fn)(struct task *t, void *arg), void *arg)
{
	bool irq = spin_lock_irqsave(&tasks_lock);
	struct list_head *pos;
	list_for_each(pos, &all_tasks)
		fn(list_entry(pos, struct task, all_link), arg);
	spin_unlock_irqrestore(&tasks_lock, irq);
}

const char *task_state_name(int state)
{
	switch (state) {
	case KN_TASK_STATE_CREATED:
		return "created";
	case KN_TASK_STATE_RUNNING:
		return "running";
	case KN_TASK_STATE_FROZEN:
		return "frozen";
	case KN_TASK_STATE_EXITED:
		return "exited";
	default:
		return "?";
	}
}

void task_test_hold_teardown(bool hold)
{
	if (hold) {
		__atomic_add_fetch(&dying, 1, __ATOMIC_ACQ_REL);
		return;
	}
	__atomic_sub_fetch(&dying, 1, __ATOMIC_ACQ_REL);
	wq_wake_all(&settle_wq);
}
