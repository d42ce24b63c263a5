/* SPDX-License-Identifier: MIT */
/*
 * What arch's C code knows of its assembly (entry.S, isr.S) and of the exception table
 * linker.ld gathers. Private to arch/x86_64: the layers above reach these through functions
 * (arch/thread.h, arch/trap.h, arch/usercopy.h).
 */
#ifndef ARCH_X86_64_ASM_H
#define ARCH_X86_64_ASM_H

/* isr.S: the 256 entry stubs, ISR_STUB_SIZE bytes apart (idt.c points the gates at them). */
#define ISR_STUB_SIZE 16

#ifndef __ASSEMBLER__
#include <arch/trap.h>

extern const char isr_stubs[];

/* isr.S: where every interrupt and exception returns through (the registers of the frame at
 * rsp, then IRET). arch_enter_user jumps here with rsp at a thread's ring-3 frame. */
extern const char trap_return[];

/* entry.S: the SYSCALL entry (LSTAR, CSTAR). */
extern const char syscall_entry[];
/* trap.c, for entry.S: the handler the SYSCALL entry calls (trap_set_syscall_handler). */
extern void (*syscall_handler)(struct trap_frame *tf);

/* entry.S: the first code of every new thread (arch_thread_stack_init puts it where
 * arch_switch returns to): calls rbx(r12). */
extern const char arch_thread_trampoline[];

/* isr.S: cpu_catch_fault's resume point (the trap dispatcher irets there). The layout is
 * the one isr.S writes. */
struct catch_ctx {
	uint64_t rsp, rip;
	struct fault_info *fi;
	uint64_t armed;
};
extern struct catch_ctx catch_ctx;

/* linker.ld: the exception table (ex_table sections). */
extern const struct extable_entry __start_ex_table[], __stop_ex_table[];

#endif /* __ASSEMBLER__ */
#endif
