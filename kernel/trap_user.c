// SPDX-License-Identifier: MIT
/* What ring-3 exceptions mean (SPEC §4.4): the hooks this layer registers with the trap layer
 * (struct trap_user_hooks in arch/trap.h). */
#include <arch/cpu.h>
#include <arch/trap.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/vm.h>
#include <kernel/sched.h>
#include <kernel/task.h>
#include <kernel/trap_user.h>

static enum vm_access access_of(uint64_t error)
{
	if (error & PF_ERR_I)
		return VM_ACCESS_EXEC;
	return (error & PF_ERR_W) ? VM_ACCESS_WRITE : VM_ACCESS_READ;
}

/* After a fault was resolved, the tables must allow the access: otherwise the task would
 * fault again at once, for ever. Tables that disagree with the regions are a kernel bug.
 * Checked when a thread takes the same fault twice in a row (a stale TLB entry can do that
 * once), so the common path does not pay for a second walk. */
static void check_resolved(struct task *t, struct trap_frame *tf, uint64_t cr2)
{
	struct thread *th = current_thread();
	bool again = th->last_fault_rip == tf->rip && th->last_fault_addr == cr2;

	th->last_fault_rip = tf->rip;
	th->last_fault_addr = cr2;
	if (!again)
		return;
	if (!vm_tables_allow(&t->vs, cr2, access_of(tf->error)))
		panic_with_frame(tf,
				 "vm: task %s: a fault at %#llx (error %#llx) was resolved, but the page tables still "
				 "refuse the access",
				 t->name, (unsigned long long)cr2, (unsigned long long)tf->error);
}

static void user_trap(struct trap_frame *tf, uint64_t cr2)
{
	struct task *t = current_task();

	if (tf->vector != VEC_PF) {
		task_exception(tf, trap_name((unsigned)tf->vector), tf->rip);
		return;
	}
	if (tf->error & PF_ERR_RSVD)
		panic_with_frame(tf, "vm: task %s: reserved bit set in a page-table entry for %#llx", t->name,
				 (unsigned long long)cr2);
	/* A supervisor-mode access made for ring-3 code (descriptor tables, or a CPU that reads
	 * a far return's stack that way under SMAP): nothing a mapping could resolve. */
	if (!(tf->error & PF_ERR_U))
		task_exception(tf, "access violation", cr2);
	irq_enable(); /* resolving may take locks and allocate */
	enum vm_fault_result r = cr2 < USER_END ? vm_fault(&t->vs, cr2, access_of(tf->error)) : VM_FAULT_ACCESS;
	switch (r) { /* (task_exception never returns: the breaks after it are not reached) */
	case VM_FAULT_RESOLVED:
	case VM_FAULT_GREW:
		check_resolved(t, tf, cr2);
		break;
	case VM_FAULT_GUARD:
		task_exception(tf, "guard violation", cr2);
		break;
	case VM_FAULT_STACK_OVERFLOW:
		task_exception(tf, "stack overflow", cr2);
		break;
	default:
		task_exception(tf, "access violation", cr2);
		break;
	}
	irq_disable();
}

static bool user_copy_fault(uint64_t addr, uint64_t error)
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

static void return_to_user(struct trap_frame *tf)
{
	irq_disable();
	sched_return_to_user(tf);
}

static const struct trap_user_hooks hooks = {
	.user_trap = user_trap,
	.user_copy_fault = user_copy_fault,
	.return_to_user = return_to_user,
};

void trap_user_init(void) { trap_set_user_hooks(&hooks); }
