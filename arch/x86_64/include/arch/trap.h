/* SPDX-License-Identifier: MIT */
/*
 * Exceptions and interrupts: the frame the entry stubs build, the dispatcher, and the two
 * ways kernel code survives an expected fault: the exception table (copy routines) and
 * cpu_catch_fault (tests).
 */
#ifndef ARCH_TRAP_H
#define ARCH_TRAP_H

#define VEC_DE        0 /* divide error */
#define VEC_DB        1
#define VEC_NMI       2
#define VEC_BP        3
#define VEC_OF        4
#define VEC_BR        5
#define VEC_UD        6 /* invalid opcode */
#define VEC_NM        7
#define VEC_DF        8 /* double fault */
#define VEC_TS        10
#define VEC_NP        11
#define VEC_SS        12
#define VEC_GP        13 /* general protection */
#define VEC_PF        14 /* page fault */
#define VEC_MF        16
#define VEC_AC        17
#define VEC_MC        18 /* machine check */
#define VEC_XM        19
#define VEC_VE        20
#define VEC_CP        21
#define NR_EXCEPTIONS 32
#define VEC_IRQ_BASE  32
#define NR_VECTORS    256
#define VEC_SYSCALL   0x100 /* marks trap frames built by the SYSCALL entry (not an IDT vector) */

/* IST slots (TSS.ist[n-1]) */
#define IST_DF  1
#define IST_NMI 2
#define IST_MC  3

/* #PF error code bits (SDM 4.7) */
#define PF_ERR_P    (1u << 0) /* protection violation (else: not present) */
#define PF_ERR_W    (1u << 1) /* write access */
#define PF_ERR_U    (1u << 2) /* user-mode access */
#define PF_ERR_RSVD (1u << 3) /* reserved bit set in an entry */
#define PF_ERR_I    (1u << 4) /* instruction fetch */
#define PF_ERR_PK   (1u << 5) /* protection key */
#define PF_ERR_SS   (1u << 6) /* shadow stack */

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

static inline bool trap_from_user(const struct trap_frame *tf) { return (tf->cs & 3) != 0; }

void gdt_init(void);
void idt_init(void);
/* Sets the kernel stack the CPU switches to on entry from ring 3 (TSS.rsp0). */
void tss_set_kernel_stack(uint64_t rsp0);

typedef void (*irq_handler_t)(struct trap_frame *tf);
/* Installs the handler for an interrupt vector (>= VEC_IRQ_BASE). */
void trap_set_irq_handler(unsigned vector, irq_handler_t fn);

/* Called by the entry stubs. */
void trap_dispatch(struct trap_frame *tf);

/* "page fault", "general protection", ... */
const char *trap_name(unsigned vector);
/* Decodes a #PF error code: "not-present write user" etc. into buf (>= 64 bytes). */
void pf_error_describe(uint64_t error, char *buf, unsigned size);

/* Exception table: a fault at `insn` (kernel mode) resumes at `fixup`. */
struct extable_entry {
	uint64_t insn, fixup;
};
const struct extable_entry *extable_find(uint64_t rip);

/* What cpu_catch_fault caught. */
struct fault_info {
	uint64_t vector, error, addr /* CR2 for #PF */, rip;
};
/*
 * Runs fn(arg). If fn raises an exception in kernel mode, the CPU unwinds to this call,
 * which returns true with *fi describing the fault; otherwise false. For tests that provoke
 * faults on purpose. Not nestable; fn must hold no locks when it faults.
 */
bool cpu_catch_fault(void (*fn)(void *), void *arg, struct fault_info *fi);

/* Register dump and backtrace of a frame, on the console. */
void trap_dump_frame(const struct trap_frame *tf);
/* "backtrace:" followed by one "  #n 0xaddr symbol+off" line per frame (frame pointers). */
void backtrace_print(uint64_t rip, uint64_t rbp);
/* Fills a frame with the caller's registers (rip/rsp/rbp of the caller's caller). */
void trap_capture_frame(struct trap_frame *tf);

/* Runs fn(arg) on the stack whose (16-byte aligned) top is stack_top. */
void arch_call_on_stack(void (*fn)(void *), void *arg, uint64_t stack_top);

/*
 * What the layers above provide to the trap layer, registered at boot (arch calls nothing
 * above it at link time; docs/architecture.md):
 *   user_trap        an exception raised in ring 3 (resolves it or ends the task)
 *   user_copy_fault  a page fault inside a user-copy routine, at a user address: true if it
 *                    was resolved (a lazy page) and the copy may go on
 *   return_to_user   every return to ring 3 from an interrupt (rescheduling)
 * Until they are registered, an exception from ring 3 or a user-copy fault is a panic.
 */
struct trap_user_hooks {
	void (*user_trap)(struct trap_frame *tf, uint64_t cr2);
	bool (*user_copy_fault)(uint64_t addr, uint64_t error);
	void (*return_to_user)(struct trap_frame *tf);
};
void trap_set_user_hooks(const struct trap_user_hooks *hooks);

/* The handler of SYSCALL from ring 3, given the caller's registers as a trap frame (with
 * interrupts on); the kernel registers it before the first task runs. */
void trap_set_syscall_handler(void (*fn)(struct trap_frame *tf));

/* Names the stack whose guard page holds `addr` in panics ("kernel stack 'X'"), or NULL.
 * The trap layer names its own (boot, IST) stacks; mm registers the namer of the rest.
 * Called without locks (the panicking context may hold them). */
void trap_set_stack_namer(const char *(*namer)(uint64_t addr));

#endif /* __ASSEMBLER__ */
#endif
