// SPDX-License-Identifier: MIT
/*
 * Freezing and examining tasks (include/kn/task_api.h, docs/dump.md): KnTaskFreeze,
 * KnTaskGetThreadContext and KnTaskGetNextVmRegion, what the dump collector is made of.
 */
#include <arch/gdt.h>
#include <kn/task_api.h>
#include <knmm/elf.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include <mm/mdl.h>
#include <mm/vm.h>
#include <kernel/modules.h>
#include <kernel/sched.h>
#include <kernel/syscall.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

int64_t sys_task_freeze(const struct syscall_args *a)
{
	struct task *t;
	Retcode rc = syscall_get_task((Handle)a->a[0], KN_RIGHT_FREEZE, &t);

	if (rc != rcOk)
		return rc;
	rc = task_freeze(t);
	task_put(t);
	return rc; /* a task freezing itself parks on its way back to ring 3 */
}

/* A frozen task behind a handle with the DUMP right, with a reference. */
static Retcode frozen_task(Handle h, struct task **out)
{
	Retcode rc = syscall_get_task(h, KN_RIGHT_DUMP, out);

	if (rc == rcOk && (*out)->state != KN_TASK_STATE_FROZEN) {
		task_put(*out);
		rc = rcWrongState;
	}
	return rc;
}

/* The program part of a thread context: from the task's module, checked when it was loaded
 * (elf_check) and kept by the kernel. */
static void program_of(const struct task *t, KnThreadContext *c)
{
	const struct boot_module *mod = t->program;
	const Elf64_Ehdr *eh = phys_to_virt(mod->start);

	kstrlcpy(c->program, mod->name, sizeof(c->program));
	c->entry = eh->e_entry;
	c->phoff = eh->e_phoff;
	c->phentsize = eh->e_phentsize;
	c->phnum = eh->e_phnum;
	for (unsigned i = 0; i < eh->e_phnum && c->nloads < KN_PROGRAM_LOADS_MAX; i++) {
		const Elf64_Phdr *p = (const void *)((const uint8_t *)eh + eh->e_phoff + (uint64_t)i * eh->e_phentsize);
		if (p->p_type != PT_LOAD)
			continue;
		c->loads[c->nloads].vaddr = p->p_vaddr;
		c->loads[c->nloads].memsz = p->p_memsz;
		c->loads[c->nloads].offset = p->p_offset;
		c->loads[c->nloads].filesz = p->p_filesz;
		c->loads[c->nloads].flags = p->p_flags;
		c->nloads++;
	}
}

int64_t sys_task_get_thread_context(const struct syscall_args *a)
{
	uint64_t index = a->a[1];
	KnThreadContext c = { 0 };
	struct task *t;
	Retcode rc = syscall_probe_output(a->a[2], sizeof(c));

	if (rc == rcOk)
		rc = frozen_task((Handle)a->a[0], &t);
	if (rc != rcOk)
		return rc;
	rc = rcEof;
	bool irq = spin_lock_irqsave(&t->lock);
	struct list_head *pos;
	uint64_t i = 0;
	list_for_each(pos, &t->threads) {
		/* Its live threads in creation order (one that exited is not on the list); one
		 * told to leave (the task is being terminated) is skipped: its kernel stack, and
		 * the frame on it, may go at any moment. */
		const struct thread *th = list_entry(pos, struct thread, task_link);
		if (th->killed || i++ != index)
			continue;
		/* Parked: its ring-3 state is the frame at the top of its kernel stack. */
		const struct trap_frame *f = thread_user_frame(th);
		c = (KnThreadContext){
			.rax = f->rax,
			.rbx = f->rbx,
			.rcx = f->rcx,
			.rdx = f->rdx,
			.rsi = f->rsi,
			.rdi = f->rdi,
			.rbp = f->rbp,
			.rsp = f->rsp,
			.r8 = f->r8,
			.r9 = f->r9,
			.r10 = f->r10,
			.r11 = f->r11,
			.r12 = f->r12,
			.r13 = f->r13,
			.r14 = f->r14,
			.r15 = f->r15,
			.rip = f->rip,
			.rflags = f->rflags,
			.cs = f->cs,
			.ss = f->ss,
			.ds = GDT_USER_DS | SEL_RPL3,
			.es = GDT_USER_DS | SEL_RPL3,
			.threadId = th->id,
			.exception = th->exc_vector,
			.errorCode = th->exc_vector == UINT64_MAX ? 0 : th->exc_error,
			.cr2 = th->exc_cr2,
		};
		rc = rcOk;
		break;
	}
	spin_unlock_irqrestore(&t->lock, irq);
	if (rc == rcOk)
		program_of(t, &c);
	task_put(t);
	return rc == rcOk ? copy_to_user(a->a[2], &c, sizeof(c)) : rc;
}

int64_t sys_task_get_next_vm_region(const struct syscall_args *a)
{
	uint64_t base = 0, size = 0;
	unsigned flags = 0;
	struct mdl *m;
	struct task *t;
	Retcode rc;

	/* Every output first, so that a bad one changes nothing (and takes no pins). */
	if ((rc = syscall_probe_output(a->a[2], sizeof(uint64_t))) != rcOk ||
	    (rc = syscall_probe_output(a->a[3], sizeof(uint64_t))) != rcOk ||
	    (rc = syscall_probe_output(a->a[4], sizeof(int))) != rcOk ||
	    (rc = syscall_probe_output(a->a[5], sizeof(Handle))) != rcOk)
		return rc;
	if ((rc = frozen_task((Handle)a->a[0], &t)) != rcOk)
		return rc;
	rc = vm_region_mdl(&t->vs, a->a[1], &base, &size, &flags, current_task()->acct, &m);
	task_put(t);
	/* The handle before any output: it is what can still be refused (a full table, a
	 * quota), and a refused call writes nothing. */
	Handle h;
	if (rc != rcOk || (rc = syscall_reserve_mdl(m, KN_RIGHT_MAP_READ, &h)) != rcOk)
		return rc;
	int f = (int)flags;
	if ((rc = copy_to_user(a->a[2], &base, sizeof(base))) != rcOk ||
	    (rc = copy_to_user(a->a[3], &size, sizeof(size))) != rcOk ||
	    (rc = copy_to_user(a->a[4], &f, sizeof(f))) != rcOk) {
		handle_abandon(&current_task()->handles, h); /* (the MDL goes with it) */
		return rc;
	}
	return syscall_commit_mdl(h, a->a[5]);
}
