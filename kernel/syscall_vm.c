// SPDX-License-Identifier: MIT
/*
 * The memory system calls (include/kn/vmm_api.h): thin shells around the address-space core
 * (mm/vm_*.c), each on the caller's own space (KnVm*) or on another task's (KnTaskVm*,
 * include/kn/task_api.h: the same helper with the target's space). The core checks every
 * argument and changes nothing on failure; these check the user pointers first, so that a
 * bad output pointer also leaves everything as it was.
 *
 * A call on another task's space holds a reference to the task and a hold on its space
 * (task_space_hold): once the task is being terminated the calls that change it are
 * rcWrongState, and its teardown waits for those under way. The space's lock serializes
 * them with the task's own threads; each space charges its own account (the target's, so
 * its quota and its ancestors'); the page-table layer invalidates the TLB only where the
 * space is active (no PCIDs: switching to it flushes its user half).
 */
#include <kn/handle_api.h>
#include <kn/vmm_api.h>
#include <mm/vm.h>
#include <kernel/syscall.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

static struct vm_space *own_space(void) { return &current_task()->vs; }

/* ------------------------------------------------------------------ on any space */

enum vm_op { VM_OP_ALLOCATE, VM_OP_COMMIT, VM_OP_DECOMMIT, VM_OP_PROTECT, VM_OP_UNMAP };

/* KnVm* call `op` with its arguments `arg` (those of vmm_api.h, in order) on space vs.
 * KnVmAllocateEx's output is in the caller's space, whichever vs is: the caller probed it
 * first (before its other checks, so that a bad one changes nothing). */
static Retcode vm_op(struct vm_space *vs, enum vm_op op, const uint64_t *arg)
{
	uint64_t va;
	unsigned flags = syscall_flags(arg[2]);
	Retcode rc;

	switch (op) {
	case VM_OP_ALLOCATE:
		if ((rc = vm_allocate(vs, arg[0], arg[1], flags, &va)) != rcOk)
			return rc;
		rc = copy_to_user(arg[3], &va, sizeof(va));
		if (rc != rcOk) /* another thread unmapped the output meanwhile: undo */
			vm_unmap(vs, va, arg[1]);
		return rc;
	case VM_OP_COMMIT:
		/* COMMIT says nothing more than the call's name; LOCKED makes it eager. */
		if (flags & ~(unsigned)(VMM_FLAG_COMMIT | VMM_FLAG_LOCKED))
			return rcInvalidArgument;
		return vm_commit(vs, arg[0], arg[1], flags & VMM_FLAG_LOCKED);
	case VM_OP_DECOMMIT:
		return vm_decommit(vs, arg[0], arg[1]);
	case VM_OP_PROTECT:
		return vm_protect(vs, arg[0], arg[1], flags);
	case VM_OP_UNMAP:
		return vm_unmap(vs, arg[0], arg[1]);
	}
	return rcInvalidArgument;
}

/* ------------------------------------------------------------------ the caller's own space */

int64_t sys_vm_allocate(const struct syscall_args *a)
{
	Retcode rc = syscall_probe_output(a->a[3], sizeof(uint64_t));
	return rc != rcOk ? rc : vm_op(own_space(), VM_OP_ALLOCATE, a->a);
}
int64_t sys_vm_commit(const struct syscall_args *a) { return vm_op(own_space(), VM_OP_COMMIT, a->a); }
int64_t sys_vm_decommit(const struct syscall_args *a) { return vm_op(own_space(), VM_OP_DECOMMIT, a->a); }
int64_t sys_vm_protect(const struct syscall_args *a) { return vm_op(own_space(), VM_OP_PROTECT, a->a); }
int64_t sys_vm_unmap(const struct syscall_args *a) { return vm_op(own_space(), VM_OP_UNMAP, a->a); }

/* ------------------------------------------------------------------ another task's space */

/* KnTaskVm*: a[0] the task (KN_RIGHT_VM_OPERATION), then the KnVm* call's arguments. The
 * output first (a bad one changes nothing), then the handle; a reference and a space hold
 * for the call (rcWrongState once the task is going). */
static int64_t on_task(const struct syscall_args *a, enum vm_op op)
{
	struct task *t;
	Retcode rc = rcOk;

	if (op == VM_OP_ALLOCATE)
		rc = syscall_probe_output(a->a[4], sizeof(uint64_t));
	if (rc == rcOk)
		rc = syscall_get_task((Handle)a->a[0], KN_RIGHT_VM_OPERATION, &t);
	if (rc != rcOk)
		return rc;
	if ((rc = task_space_hold(t)) == rcOk) {
		rc = vm_op(&t->vs, op, &a->a[1]);
		task_space_release(t);
	}
	task_put(t);
	return rc;
}

int64_t sys_task_vm_allocate(const struct syscall_args *a) { return on_task(a, VM_OP_ALLOCATE); }
int64_t sys_task_vm_commit(const struct syscall_args *a) { return on_task(a, VM_OP_COMMIT); }
int64_t sys_task_vm_decommit(const struct syscall_args *a) { return on_task(a, VM_OP_DECOMMIT); }
int64_t sys_task_vm_protect(const struct syscall_args *a) { return on_task(a, VM_OP_PROTECT); }
int64_t sys_task_vm_unmap(const struct syscall_args *a) { return on_task(a, VM_OP_UNMAP); }

/* ------------------------------------------------------------------ queries */

/* The page description in its ABI form, into `out` (probed by the caller). */
static Retcode give_info(uint64_t out, const struct vm_info *vi)
{
	KnVmInfo info = {
		.regionBase = (void *)(uintptr_t)vi->region_base,
		.regionSize = vi->region_size,
		.state = vi->state,
		.resident = vi->resident,
		.flags = (int)vi->flags,
		.runSize = vi->run_size,
	};
	return copy_to_user(out, &info, sizeof(info));
}

int64_t sys_vm_query(const struct syscall_args *a)
{
	struct vm_info vi;
	Retcode rc = syscall_probe_output(a->a[1], sizeof(KnVmInfo)); /* no half-written answer */

	if (rc == rcOk)
		rc = vm_query(own_space(), a->a[0], &vi);
	return rc == rcOk ? give_info(a->a[1], &vi) : rc;
}

/* KnVmQuery on another task's space (KN_RIGHT_VM_READ). vm_query reads the space under its
 * lock and changes nothing (no fault, no growth): the task may be running, or gone (its
 * space then has no region, and every page is free). */
int64_t sys_task_vm_query(const struct syscall_args *a)
{
	struct vm_info vi;
	struct task *t;
	Retcode rc = syscall_probe_output(a->a[2], sizeof(KnVmInfo));

	if (rc == rcOk)
		rc = syscall_get_task((Handle)a->a[0], KN_RIGHT_VM_READ, &t);
	if (rc != rcOk)
		return rc;
	rc = vm_query(&t->vs, a->a[1], &vi);
	task_put(t);
	return rc == rcOk ? give_info(a->a[2], &vi) : rc;
}
