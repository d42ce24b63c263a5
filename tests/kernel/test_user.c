// SPDX-License-Identifier: MIT
/*
 * Ring 3: each user test program runs as one test case (its own KTAP lines, indented, are
 * the subtests); the harness checks that every page and page of commit came back. Plus the
 * refusal of malformed programs, and SMEP/SMAP seen from the kernel.
 */
#include <arch/time.h>
#include <arch/cpu.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include <knmm/cmdline.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/string.h>
#include <kernel/init.h>
#include <kernel/modules.h>
#include <kernel/options.h>
#include <kernel/task.h>
#include <mm/vm.h>
#include "ktest_util.h"

#define PROGRAM_TIMEOUT_NS 120000000000ull

static void run(struct ktest_ctx *t, const char *program)
{
	int code = run_program(program, program, 0, PROGRAM_TIMEOUT_NS);
	KT_EXPECT_EQ(code, 0);
}

KTEST(user, tasks) { run(t, "test_tasks"); }
KTEST(user, handles) { run(t, "test_handles"); }
KTEST(user, bad_pointers) { run(t, "test_badptr"); }
KTEST(user, vm) { run(t, "test_vm"); }
KTEST(user, vm_bad_input) { run(t, "test_vm_bad"); }
KTEST(user, vm_model) { run(t, "test_vm_model"); }

KTEST(user, dump) { run(t, "test_dump"); }
KTEST(user, task_memory) { run(t, "test_taskmem"); }
KTEST(user, task_vm) { run(t, "test_task_vm"); }
KTEST(user, threads) { run(t, "test_threads"); }
KTEST(user, smp_stress) { run(t, "test_smp_stress"); }
KTEST(user, tlb_coherence) { run(t, "test_tlb"); }

/* Privileged, for KnPmmMdlCreateFromPhys (its child checks the refusal without). */
KTEST(user, mdl)
{
	int code = run_program("test_mdl", "test_mdl", KN_TASK_PRIVILEGED, PROGRAM_TIMEOUT_NS);
	KT_EXPECT_EQ(code, 0);
}

KTEST(user, vm_model_faultaround)
{
	unsigned fa = kernel_faultaround;

	kernel_faultaround = 4;
	run(t, "test_vm_model");
	kernel_faultaround = fa;
}

/* The same program with the other settings: ASLR on and fault-around of 4 pages. */
KTEST(user, vm_aslr_faultaround)
{
	bool aslr = kernel_aslr;
	unsigned fa = kernel_faultaround;

	kernel_aslr = true;
	kernel_faultaround = 4;
	run(t, "test_vm");
	kernel_aslr = aslr;
	kernel_faultaround = fa;
}

/* The command-line words reach new tasks: aslr and mem.faultaround, parsed as at boot, are
 * what a task reads back (KnDebugGetStats) and what its address space does. */
KTEST(user, cmdline_options_reach_tasks)
{
	char saved[BOOT_CMDLINE_MAX];

	kstrlcpy(saved, cmdline_raw(), sizeof(saved));
	cmdline_init("test=x aslr=off mem.faultaround=3");
	kernel_apply_options();
	KT_EXPECT(!kernel_aslr);
	KT_EXPECT_EQ(kernel_faultaround, 3);
	struct task *task;
	KT_ASSERT_EQ(task_create("opts", "hello", 0, NULL, &task), rcOk);
	KT_EXPECT(!task->vs.aslr);
	KT_EXPECT_EQ(task->vs.faultaround, 3);
	task_terminate(task, KN_EXIT_TERMINATED, true);
	task_put(task);
	cmdline_init("aslr mem.faultaround=junk");
	kernel_apply_options();
	KT_EXPECT(kernel_aslr);              /* a bare word is "on" */
	KT_EXPECT_EQ(kernel_faultaround, 0); /* not a number: the default */
	cmdline_init(saved);
	kernel_apply_options();
}

/* A task blocked in KnDebugGetStats while a teardown is pending still ends when terminated
 * (and the kernel goes on). */
KTEST(user, terminate_while_settling)
{
	struct task *task;

	task_test_hold_teardown(true);
	KT_ASSERT_EQ(task_create("actor-stats", "actor", 0, NULL, &task), rcOk);
	task_resume(task);
	KT_EXPECT_EQ(task_wait(task, KN_TASK_STATE_EXITED, clock_ns() + 50000000ull),
		     rcBusy); /* it waits for the teardown */
	task_terminate(task, KN_EXIT_TERMINATED, true);
	KT_EXPECT_EQ(task->state, KN_TASK_STATE_EXITED);
	KT_EXPECT_EQ(task->exit_code, KN_EXIT_TERMINATED);
	task_put(task);
	task_test_hold_teardown(false);
}

/* A KnTaskVm* call under way when its target is terminated (task_space_hold): the teardown
 * waits for it, so what it makes in the dying space is torn down with it (the harness
 * checks every frame and page of charge came back); a new call is rcWrongState. */
KTEST(user, task_space_hold_delays_teardown)
{
	struct task *task;
	uint64_t va = 0;

	KT_ASSERT_EQ(task_create("space-hold", "spin", 0, NULL, &task), rcOk);
	KT_ASSERT_EQ(task_space_hold(task), rcOk);
	task_terminate(task, KN_EXIT_TERMINATED, false);
	KT_EXPECT_EQ(task_wait(task, KN_TASK_STATE_EXITED, clock_ns() + 50000000ull), rcBusy);
	KT_EXPECT_EQ(task_space_hold(task), rcWrongState); /* (dying: no new hold) */
	KT_EXPECT_EQ(vm_allocate(&task->vs, 0x60000000ull, 4 * PAGE_SIZE,
				 VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | VMM_FLAG_READ | VMM_FLAG_WRITE,
				 &va),
		     rcOk); /* the call under way still works on the space */
	KT_EXPECT_EQ(task->state, KN_TASK_STATE_CREATED);
	task_space_release(task);
	KT_EXPECT_EQ(task_wait(task, KN_TASK_STATE_EXITED, clock_ns() + 10000000000ull), rcOk);
	KT_EXPECT_EQ(task_space_hold(task), rcWrongState);
	struct vm_info info;
	KT_EXPECT_EQ(vm_query(&task->vs, 0x60000000ull, &info), rcOk);
	KT_EXPECT_EQ(info.state, VMM_STATE_FREE);
	task_put(task);
}

/* A task being terminated gets no new thread (KnThreadCreate's rcWrongState): nothing is
 * made, nothing charged. */
KTEST(user, no_thread_for_a_dying_task)
{
	struct task *task;
	uint64_t tid = 0, limit[ACCT_NR], before[ACCT_NR], after[ACCT_NR];

	KT_ASSERT_EQ(task_create("thr-dying", "nop", 0, NULL, &task), rcOk);
	uint64_t threads = sched_thread_count();
	account_read(task->acct, limit, before);
	task_terminate(task, KN_EXIT_TERMINATED, false); /* (nothing runs until we block) */
	KT_EXPECT_EQ(task_thread_create(task, 0x400000, 0, 0x40000000, &tid), rcWrongState);
	account_read(task->acct, limit, after);
	KT_EXPECT_EQ(sched_thread_count(), threads);
	KT_EXPECT_EQ(after[ACCT_CHARGE], before[ACCT_CHARGE]);
	KT_EXPECT_EQ(tid, 0);
	KT_EXPECT_EQ(task_wait(task, KN_TASK_STATE_EXITED, clock_ns() + 10000000000ull), rcOk);
	task_put(task);
}

/* A program frozen by another task (one it gave a handle to itself) leaves the kernel that
 * runs it waiting no more: run_program reports it frozen (not after its time limit) and
 * holds it for a dump (SPEC §6: no ring-3 action wedges a kernel thread; init is run the
 * same way). */
KTEST(user, a_frozen_program_does_not_wedge_its_runner)
{
	int code = run_program("actor", "actor-freeze-parent", 0, PROGRAM_TIMEOUT_NS);
	KT_EXPECT_EQ(code, RUN_PROGRAM_FROZEN);
	struct task *task = task_find("actor-freeze-parent");
	KT_ASSERT(task != NULL);
	KT_EXPECT_EQ(task->state, KN_TASK_STATE_FROZEN); /* (the kernel's handle keeps it) */
	task_terminate(task, KN_EXIT_TERMINATED, true);
	KT_EXPECT_EQ(task->state, KN_TASK_STATE_EXITED);
	task_put(task);
	task_drop_exited_holds();
}

/* Cache modes chosen in ring 3 reach the task's page tables through the fault path. */
KTEST(user, cache_modes_in_a_tasks_tables)
{
	static const unsigned pat[] = { PAT_INDEX_WB, PAT_INDEX_WB, PAT_INDEX_WT, PAT_INDEX_WC, PAT_INDEX_UC };
	const uint64_t at = 0x60000000ull, last = at + 4 * MiB(2);
	struct task *task;
	struct vm_info info = { 0 };

	KT_ASSERT_EQ(task_create("actor-cache", "actor", 0, NULL, &task), rcOk);
	task_resume(task);
	/* It touches the pages in order: the last one resident means all are. */
	uint64_t deadline = clock_ns() + 10000000000ull;
	while (clock_ns() < deadline && (vm_query(&task->vs, last, &info) != rcOk || !info.resident) &&
	       task->state != KN_TASK_STATE_EXITED)
		task_wait(task, KN_TASK_STATE_EXITED, clock_ns() + 5000000ull);
	KT_EXPECT(info.resident);
	for (unsigned i = 0; i < ARRAY_SIZE(pat) && info.resident; i++) {
		struct pt_trace tr;
		pt_trace(&task->vs.pt, at + i * MiB(2), &tr);
		KT_ASSERT_EQ(tr.n, 4);
		pte_t e = tr.step[3].entry;
		KT_EXPECT_EQ(pte_pat_index(e, PT_LEVEL_PT), pat[i]);
		KT_EXPECT(pte_user(e) && pte_writable(e) && pte_nx(e));
	}
	task_terminate(task, KN_EXIT_TERMINATED, true);
	task_put(task);
}

/* The loader says why it refuses each (tools/mkbadelf.py makes them):
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_magic: refused: not an ELF file
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_class: refused: not a 64-bit ELF file
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_machine: refused: not an x86-64 program
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_truncated: refused: file shorter than an ELF header
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_offset: refused: segment file bytes past the end of the file
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_overlap: refused: overlapping segments
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_kernel: refused: segment outside the user half
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_wx: refused: writable and executable segment
 * EXPECT-LOG(user.malformed_elf_refused): elf: bad_entry: refused: entry point outside the executable segments
 */
KTEST(user, malformed_elf_refused)
{
	static const char *const bad[] = { "bad_magic",   "bad_class",  "bad_machine", "bad_truncated", "bad_offset",
					   "bad_overlap", "bad_kernel", "bad_wx",      "bad_entry" };
	uint64_t tasks = task_count();

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		struct task *task = NULL;
		KT_EXPECT(module_find(bad[i]) != NULL);
		KT_EXPECT_EQ(task_create(bad[i], bad[i], 0, NULL, &task), rcInvalidArgument);
		KT_EXPECT(task == NULL);
	}
	KT_EXPECT_EQ(task_count(), tasks);
	/* The good original loads. */
	struct task *good;
	KT_ASSERT_EQ(task_create("nop", "nop", 0, NULL, &good), rcOk);
	task_terminate(good, KN_EXIT_TERMINATED, true);
	task_put(good);
}

/* With SMEP and SMAP the kernel faults on user pages outside the copy routines. */
KTEST(user, smep_and_smap)
{
	struct vm_space vs;
	struct fault_info fi;
	uint64_t data, code;

	if (!cpu_features.smap || !cpu_features.smep)
		KT_SKIP("this CPU has no SMEP/SMAP");
	test_mm_settle();
	const struct vm_space_params sp = { .name = "smap", .user = true, .lo = USER_BASE, .hi = USER_END };
	KT_ASSERT_EQ(vm_space_init(&vs, &sp), rcOk);
	KT_ASSERT_EQ(vm_allocate(&vs, 0x10000000, PAGE_SIZE,
				 VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | VMM_FLAG_READ | VMM_FLAG_WRITE,
				 &data),
		     rcOk);
	KT_ASSERT_EQ(
		vm_allocate(&vs, 0x10010000, PAGE_SIZE,
			    VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | VMM_FLAG_READ | VMM_FLAG_EXECUTE,
			    &code),
		rcOk);
	struct pt_mapping m;
	KT_ASSERT(pt_translate(&vs.pt, code, &m));
	*(uint8_t *)phys_to_virt(m.pa) = 0xc3; /* ret */
	bool irq = irq_save();                 /* nothing may switch address spaces under us */
	pt_activate(&vs.pt);
	bool read_faulted = test_read_faults(data, &fi);
	uint64_t read_error = fi.error;
	bool exec_faulted = test_exec_faults(code, &fi);
	uint64_t exec_error = fi.error;
	user_access_begin();
	bool read_with_ac = test_read_faults(data, &fi);
	user_access_end();
	pt_activate(&kernel_pt_root);
	irq_restore(irq);
	KT_EXPECT(read_faulted);
	KT_EXPECT_EQ(read_error & (PF_ERR_P | PF_ERR_U), PF_ERR_P); /* present, supervisor: SMAP */
	KT_EXPECT(exec_faulted);
	KT_EXPECT_EQ(exec_error & (PF_ERR_P | PF_ERR_I), PF_ERR_P | PF_ERR_I); /* SMEP */
	KT_EXPECT(!read_with_ac); /* inside user_access_begin/end it works */
	vm_space_destroy(&vs);
}

/* The kernel gives a task it makes arguments (the monitor's `run PROGRAM ARGS...`): `echo`
 * exits with 1000 * argc + the bytes of argv[1..], and checks argv[argc] is NULL; up to
 * KN_TASK_ARGS_MAX of them and KN_TASK_ARGS_BYTES of strings, more is refused. */
static int run_echo(struct ktest_ctx *t, unsigned argc, const char *const *args)
{
	struct task *task;
	Retcode rc = task_create_args("echo-args", "echo", 0, NULL, argc, args, &task);
	if (rc != rcOk)
		return -(int)rc;
	task_resume(task);
	KT_EXPECT_EQ(task_wait(task, KN_TASK_STATE_EXITED, clock_ns() + PROGRAM_TIMEOUT_NS), rcOk);
	int code = task->exit_code;
	task_put(task);
	return code;
}

KTEST(user, task_arguments)
{
	static const char *const three[] = { "one", "two words", "" };
	const char *many[KN_TASK_ARGS_MAX + 1];
	static char big[KN_TASK_ARGS_BYTES];

	KT_EXPECT_EQ(run_echo(t, 0, NULL), 1000);
	KT_EXPECT_EQ(run_echo(t, 3, three), 4000 + 3 + 9 + 0);
	for (unsigned i = 0; i <= KN_TASK_ARGS_MAX; i++)
		many[i] = "abc";
	KT_EXPECT_EQ(run_echo(t, KN_TASK_ARGS_MAX, many), 1000 * (1 + KN_TASK_ARGS_MAX) + 3 * KN_TASK_ARGS_MAX);
	KT_EXPECT_EQ(run_echo(t, KN_TASK_ARGS_MAX + 1, many), -(int)rcInvalidArgument);
	/* The strings with their NULs, "echo-args" included: exactly the most, then one more. */
	size_t room = KN_TASK_ARGS_BYTES - sizeof("echo-args") - 1;
	memset(big, 'x', room);
	big[room] = 0;
	const char *one[] = { big };
	KT_EXPECT_EQ(run_echo(t, 1, one), 2000 + (int)room);
	big[room] = 'x';
	big[room + 1] = 0;
	KT_EXPECT_EQ(run_echo(t, 1, one), -(int)rcInvalidArgument);
}
