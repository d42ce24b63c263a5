// SPDX-License-Identifier: MIT
/*
 * The memory system calls (include/kn/vmm_api.h): thin shells around the address-space core
 * (mm/vm_*.c) on the caller's own space (KnTaskVmQuery: on another task's). The core checks every argument and changes
 * nothing on failure; these check the user pointers, first, so that a bad output pointer also leaves everything as it
 * was.
 */
#include <kn/handle_api.h>
#include <kn/vmm_api.h>
#include <mm/vm.h>
#include <kernel/syscall.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

static struct vm_space *own_space(void) { return &current_task()->vs; }

int64_t sys_vm_allocate(const struct syscall_args *a)
{
	uint64_t addr = a->a[0], size = a->a[1], out = a->a[3], va;
	Retcode rc = syscall_probe_output(out, sizeof(uint64_t));

	if (rc != rcOk)
		return rc;
	rc = vm_allocate(own_space(), addr, size, syscall_flags(a->a[2]), &va);
	if (rc != rcOk)
		return rc;
	rc = copy_to_user(out, &va, sizeof(va));
	if (rc != rcOk) /* another thread unmapped the output meanwhile: undo */
		vm_unmap(own_space(), va, size);
	return rc;
}

int64_t sys_vm_commit(const struct syscall_args *a)
{
	unsigned flags = syscall_flags(a->a[2]);

	/* COMMIT says nothing more than the call's name; LOCKED makes it eager. */
	if (flags & ~(unsigned)(VMM_FLAG_COMMIT | VMM_FLAG_LOCKED))
		return rcInvalidArgument;
	return vm_commit(own_space(), a->a[0], a->a[1], flags & VMM_FLAG_LOCKED);
}

int64_t sys_vm_decommit(const struct syscall_args *a) { return vm_decommit(own_space(), a->a[0], a->a[1]); }

int64_t sys_vm_protect(const struct syscall_args *a)
{
	return vm_protect(own_space(), a->a[0], a->a[1], syscall_flags(a->a[2]));
}

int64_t sys_vm_unmap(const struct syscall_args *a) { return vm_unmap(own_space(), a->a[0], a->a[1]); }

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
