// SPDX-License-Identifier: MIT
/* What ring-3 exceptions mean (SPEC §4.4): the trap layer's hooks (arch/trap.h). */
#include <arch/cpu.h>
#include <arch/trap.h>
#include <knmm/layout.h>
#include <mm/vm.h>
#include "sched.h"
#include "task.h"

static enum vm_access access_of(uint64_t error)
{
	if (error & PF_ERR_I)
		return VM_ACCESS_EXEC;
	return (error & PF_ERR_W) ? VM_ACCESS_WRITE : VM_ACCESS_READ;
}

void kernel_user_trap(struct trap_frame *tf, uint64_t cr2)
{
	struct task *t = current_task();

	if (tf->vector != VEC_PF) {
		task_exception(tf, trap_name((unsigned)tf->vector), tf->rip);
		return;
	}
	irq_enable(); /* resolving may take locks and allocate */
	enum vm_fault_result r = cr2 < USER_END ? vm_fault(&t->vs, cr2, access_of(tf->error)) : VM_FAULT_ACCESS;
	switch (r) {
	case VM_FAULT_RESOLVED:
	case VM_FAULT_GREW:
		break;
	case VM_FAULT_GUARD:
		task_exception(tf, "guard violation", cr2);
	case VM_FAULT_STACK_OVERFLOW:
		task_exception(tf, "stack overflow", cr2);
	default:
		task_exception(tf, "access violation", cr2);
	}
	irq_disable();
}

bool kernel_user_copy_fault(uint64_t addr, uint64_t error)
{
	struct task *t = current_task();

	if (!t || addr >= USER_END)
		return false;
	bool irq = irq_enabled();
	irq_enable();
	enum vm_fault_result r = vm_fault(&t->vs, addr, access_of(error));
	if (!irq)
		irq_disable();
	return r == VM_FAULT_RESOLVED || r == VM_FAULT_GREW;
}

void kernel_return_to_user(struct trap_frame *tf)
{
	irq_disable();
	sched_return_to_user(tf);
}
