// SPDX-License-Identifier: MIT
/*
 * Threads of the caller's task (include/kn/thread_api.h, docs/tasks.md): KnThreadCreate,
 * KnThreadExit, KnThreadSetAffinity, KnThreadGetCpu and KnThreadYield. What a thread is to
 * its task (counts, freezing, the last one's exit) is task.c's; to the CPUs, sched.c's.
 */
#include <arch/cpu.h>
#include <arch/percpu.h>
#include <kn/thread_api.h>
#include <knmm/layout.h>
#include <kernel/sched.h>
#include <kernel/syscall.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

/* The ABI's stack alignment at a thread's first instruction (as _start's, crt0.S). */
#define THREAD_STACK_ALIGN 16

int64_t sys_thread_create(const struct syscall_args *a)
{
	uint64_t entry = a->a[0], arg = a->a[1], stack_top = a->a[2], tid;
	Retcode rc = syscall_probe_output(a->a[3], sizeof(uint32_t)); /* (before anything is made) */

	if (rc != rcOk)
		return rc;
	/* The stack's top may be the end of the user half itself (the first push goes below). */
	if (!is_user_addr(entry) || stack_top <= USER_BASE || stack_top > USER_END ||
	    stack_top % THREAD_STACK_ALIGN != 0)
		return rcInvalidArgument;
	if ((rc = task_thread_create(current_task(), entry, arg, stack_top, &tid)) != rcOk)
		return rc;
	uint32_t id = (uint32_t)tid;
	/* The output was probed, but another thread of the task may have unmapped it since:
	 * the thread runs anyway (it is the caller's, and ends as any of its threads). */
	return copy_to_user(a->a[3], &id, sizeof(id));
}

int64_t sys_thread_exit(const struct syscall_args *a)
{
	(void)a;
	task_thread_exit_current();
}

int64_t sys_thread_set_affinity(const struct syscall_args *a)
{
	uint32_t tid = (uint32_t)a->a[0];
	uint64_t mask = a->a[1];
	unsigned n = sched_cpu_count();
	uint64_t online = n >= 64 ? UINT64_MAX : (1ull << n) - 1;

	if (!(mask & online))
		return rcInvalidArgument;
	return task_thread_set_affinity(current_task(), tid, mask);
}

int64_t sys_thread_get_cpu(const struct syscall_args *a)
{
	Retcode rc;

	if ((rc = syscall_probe_output(a->a[0], sizeof(uint32_t))) != rcOk ||
	    (rc = syscall_probe_output(a->a[1], sizeof(uint32_t))) != rcOk)
		return rc;
	uint32_t cpu = this_cpu()->id, ncpus = sched_cpu_count();
	if ((rc = copy_to_user(a->a[0], &cpu, sizeof(cpu))) != rcOk)
		return rc;
	return copy_to_user(a->a[1], &ncpus, sizeof(ncpus));
}

int64_t sys_thread_yield(const struct syscall_args *a)
{
	(void)a;
	sched_yield();
	return rcOk;
}
