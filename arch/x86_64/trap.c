// SPDX-License-Identifier: MIT
/*
 * The trap dispatcher. Kernel-mode exceptions are fixed up (exception table), caught
 * (cpu_catch_fault) or fatal: a panic with the vector, the decoded error code, all
 * registers and a backtrace. Ring-3 exceptions and user-copy faults go to the hooks the
 * kernel registered (trap_set_user_hooks).
 */
#include <arch/cpu.h>
#include <arch/gdt.h>
#include <arch/percpu.h>
#include <arch/pt.h>
#include <arch/trap.h>
#include <knmm/align.h>
#include <knmm/image.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include "asm.h"
#include "smp_internal.h"

static irq_handler_t irq_handlers[NR_VECTORS];
static const struct trap_user_hooks *user_hooks;
static const char *(*stack_namer)(uint64_t addr);

void trap_set_user_hooks(const struct trap_user_hooks *hooks) { user_hooks = hooks; }

void (*syscall_handler)(struct trap_frame *tf);

void trap_set_syscall_handler(void (*fn)(struct trap_frame *tf)) { syscall_handler = fn; }

void trap_set_stack_namer(const char *(*namer)(uint64_t addr)) { stack_namer = namer; }

/* Which stack's guard page holds addr: the boot stack, an IST stack, or what mm names. */
static const char *stack_describe(uint64_t addr)
{
	uint64_t guard = (uint64_t)(uintptr_t)boot_stack_guard;

	if (addr >= guard && addr < guard + PAGE_SIZE)
		return "boot stack";
	const char *ist = ist_stack_name(addr);
	if (ist)
		return ist;
	return stack_namer ? stack_namer(addr) : NULL;
}

const struct extable_entry *extable_find(uint64_t rip)
{
	for (const struct extable_entry *e = __start_ex_table; e < __stop_ex_table; e++)
		if (e->insn == rip)
			return e;
	return NULL;
}

void trap_set_irq_handler(unsigned vector, irq_handler_t fn)
{
	KASSERT(vector >= VEC_IRQ_BASE && vector < NR_VECTORS);
	irq_handlers[vector] = fn;
}

static __noreturn void kernel_exception(struct trap_frame *tf, uint64_t cr2)
{
	char what[96];
	const char *stack;

	if (tf->vector == VEC_PF) {
		pf_error_describe(tf->error, what, sizeof(what));
		stack = stack_describe(cr2);
		panic_with_frame(tf, "%s at rip %#llx: %s, address %#llx%s%s", trap_name((unsigned)tf->vector),
				 (unsigned long long)tf->rip, what, (unsigned long long)cr2,
				 stack ? " in the guard page of the " : "", stack ? stack : "");
	}
	/* A #DF whose failed push (just below rsp, or at CR2) hit a guard page is a kernel stack
	 * overflow. */
	stack = NULL;
	if (tf->vector == VEC_DF) {
		stack = stack_describe(tf->rsp - 1);
		if (!stack)
			stack = stack_describe(read_cr2());
	}
	panic_with_frame(tf, "%s (vector %llu, error %#llx) at rip %#llx%s%s", trap_name((unsigned)tf->vector),
			 (unsigned long long)tf->vector, (unsigned long long)tf->error, (unsigned long long)tf->rip,
			 stack ? ": stack overflow into the guard page of the " : "", stack ? stack : "");
}

void trap_dispatch(struct trap_frame *tf)
{
	/* Interrupt delivery keeps RFLAGS.AC: ring 3 can set it, and a copy routine runs with
	 * it set. Handlers run with SMAP closed; IRET gives the interrupted code its own back. */
	user_access_end();
	if (tf->vector >= NR_EXCEPTIONS) {
		irq_handler_t fn = irq_handlers[tf->vector];
		tlb_idle_exit();         /* (a halted CPU wakes here: kernel entries it missed go first) */
		this_cpu()->irq_depth++; /* (for the locks' debug checks: docs/locking.md) */
		if (fn)
			fn(tf);
		else
			pr_warn("trap: spurious interrupt, vector %llu", (unsigned long long)tf->vector);
		this_cpu()->irq_depth--;
		if (trap_from_user(tf) && user_hooks)
			user_hooks->return_to_user(tf);
		return;
	}

	/* Another CPU panicked and stops this one (apic_send_nmi_others): stop, quietly. */
	if (tf->vector == VEC_NMI && READ_ONCE(smp_stopping))
		cpu_halt_forever();

	uint64_t cr2 = tf->vector == VEC_PF ? read_cr2() : 0;

	/* A double fault, NMI or machine check is the machine's, not the task's: it is fatal in
	 * any mode (an NMI means a hardware error here, as on NT). */
	bool machine = tf->vector == VEC_DF || tf->vector == VEC_NMI || tf->vector == VEC_MC;
	if (trap_from_user(tf) && !machine && user_hooks) {
		user_hooks->user_trap(tf, cr2);
		user_hooks->return_to_user(tf);
		return;
	}

	/* Kernel mode. The exception table first: copy routines expect page faults on user
	 * memory, where a lazy page may just need its frame. A fault on their kernel side is
	 * a kernel bug like any other. */
	const struct extable_entry *fix = extable_find(tf->rip);
	if (fix && tf->vector == VEC_PF && cr2 < USER_END && user_hooks) {
		if (user_hooks->user_copy_fault(cr2, tf->error))
			return;
		tf->rip = fix->fixup;
		return;
	}
	if (catch_ctx.armed && !machine) {
		catch_ctx.armed = 0;
		*catch_ctx.fi = (struct fault_info){ tf->vector, tf->error, cr2, tf->rip };
		tf->rip = catch_ctx.rip;
		tf->rsp = catch_ctx.rsp;
		return;
	}
	kernel_exception(tf, cr2);
}
