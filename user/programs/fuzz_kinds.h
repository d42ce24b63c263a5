/* SPDX-License-Identifier: MIT */
/*
 * The kinds of child the fuzzer starts (user/programs/fuzzchild.c, task name "fc-KIND"),
 * with what each must end in: the exception vectors it may stop with (for a
 * KN_TASK_DUMPABLE child, KnTaskGetThreadContext's `exception`), and how it ends.
 *
 *   FC_FAULT        an exception the kernel must not let it survive: terminated
 *                   (KN_EXIT_EXCEPTION), or frozen when dumpable
 *   FC_MAY_SURVIVE  the same, except that some CPUs (or QEMU's emulation of them) allow
 *                   it: exiting with FC_SURVIVED is fine too
 *   FC_EXIT         ends with KnTaskExit(N), N in the name ("fc-exit-N") or 0
 *   FC_TERM         KnTaskTerminate(KN_HANDLE_SELF): KN_EXIT_TERMINATED
 *   FC_FREEZE       KnTaskFreeze(KN_HANDLE_SELF): frozen, dumpable or not, no exception
 *   FC_SLEEP        blocks in the kernel until it is terminated (or frozen)
 */
#ifndef FUZZ_KINDS_H
#define FUZZ_KINDS_H

/* Exit codes of fuzzchild that are not a kind's own. */
#define FC_SURVIVED     99 /* the forbidden thing worked */
#define FC_SETUP_FAILED 98 /* a call it needed to set up its fault failed */
#define FC_UNKNOWN_KIND 97

enum fc_how { FC_FAULT, FC_MAY_SURVIVE, FC_EXIT, FC_TERM, FC_FREEZE, FC_SLEEP };

#define FC_V(n) (1u << (n))
#define FC_PF   FC_V(14)
#define FC_GP   FC_V(13)
#define FC_UD   FC_V(6)

/* X(name, vectors, how) */
#define FC_KINDS(X)                                                   \
	X("kread", FC_PF, FC_FAULT)                                   \
	X("kwrite", FC_PF, FC_FAULT)                                  \
	X("kexec", FC_PF, FC_FAULT)                                   \
	X("null-read", FC_PF, FC_FAULT)                               \
	X("null-write", FC_PF, FC_FAULT)                              \
	X("null-exec", FC_PF, FC_FAULT)                               \
	X("noncanon-read", FC_GP, FC_FAULT)                           \
	X("noncanon-write", FC_GP, FC_FAULT)                          \
	X("noncanon-jump", FC_GP | FC_PF, FC_FAULT)                   \
	X("user-top-exec", FC_PF | FC_GP, FC_FAULT)                   \
	X("ud2", FC_UD, FC_FAULT)                                     \
	X("lock-nop", FC_UD, FC_FAULT)                                \
	X("div0", FC_V(0), FC_FAULT)                                  \
	X("idiv-overflow", FC_V(0), FC_FAULT)                         \
	X("cli", FC_GP, FC_FAULT)                                     \
	X("hlt", FC_GP, FC_FAULT)                                     \
	X("in", FC_GP, FC_FAULT)                                      \
	X("out", FC_GP, FC_FAULT)                                     \
	X("int3", FC_V(3) | FC_GP, FC_FAULT)                          \
	X("int1", FC_V(1) | FC_GP | FC_UD, FC_FAULT)                  \
	X("int-nmi", FC_GP, FC_FAULT)                                 \
	X("int-df", FC_GP, FC_FAULT)                                  \
	X("int-pf", FC_GP, FC_FAULT)                                  \
	X("int-mc", FC_GP, FC_FAULT)                                  \
	X("int-timer", FC_GP, FC_FAULT)                               \
	X("int-80", FC_GP | FC_V(11), FC_FAULT)                       \
	X("int-ff", FC_GP | FC_V(11), FC_FAULT)                       \
	X("single-step", FC_V(1), FC_FAULT)                           \
	X("step-syscall", FC_V(1), FC_FAULT)                          \
	X("lgdt", FC_GP, FC_FAULT)                                    \
	X("lidt", FC_GP, FC_FAULT)                                    \
	X("read-cr3", FC_GP, FC_FAULT)                                \
	X("write-cr0", FC_GP, FC_FAULT)                               \
	X("rdmsr", FC_GP, FC_FAULT)                                   \
	X("wrmsr", FC_GP, FC_FAULT)                                   \
	X("rdpmc", FC_GP, FC_MAY_SURVIVE)                             \
	X("swapgs", FC_GP | FC_UD, FC_FAULT)                          \
	X("sysret", FC_GP | FC_UD, FC_FAULT)                          \
	X("sysenter", FC_GP | FC_UD, FC_FAULT)                        \
	X("invlpg", FC_GP, FC_FAULT)                                  \
	X("wbinvd", FC_GP, FC_FAULT)                                  \
	X("bad-ds", FC_GP, FC_FAULT)                                  \
	X("kernel-ss", FC_GP, FC_FAULT)                               \
	X("iret-kernel-cs", FC_GP | FC_PF, FC_FAULT)                  \
	X("far-jmp-kernel", FC_GP | FC_PF, FC_FAULT)                  \
	X("compat", FC_GP | FC_PF, FC_FAULT)                          \
	X("movaps-unaligned", FC_GP, FC_FAULT)                        \
	X("sse-div0", FC_V(19) | FC_UD, FC_MAY_SURVIVE)               \
	X("x87-div0", FC_V(16), FC_MAY_SURVIVE)                       \
	X("alignment-check", FC_V(17), FC_MAY_SURVIVE)                \
	X("sgdt", FC_GP, FC_MAY_SURVIVE)                              \
	X("stack-overflow", FC_PF, FC_FAULT)                          \
	X("rsp-kernel", FC_PF | FC_V(12), FC_FAULT)                   \
	X("rsp-noncanon", FC_V(12) | FC_GP, FC_FAULT)                 \
	X("syscall-rsp-kernel", FC_PF | FC_V(12) | FC_GP, FC_FAULT)   \
	X("syscall-rsp-noncanon", FC_PF | FC_V(12) | FC_GP, FC_FAULT) \
	X("ret-to-kernel", FC_PF | FC_GP, FC_FAULT)                   \
	X("write-text", FC_PF, FC_FAULT)                              \
	X("write-rodata", FC_PF, FC_FAULT)                            \
	X("exec-data", FC_PF, FC_FAULT)                               \
	X("exec-rodata", FC_PF, FC_FAULT)                             \
	X("exec-stack", FC_PF, FC_FAULT)                              \
	X("guard-low", FC_PF, FC_FAULT)                               \
	X("guard-high", FC_PF, FC_FAULT)                              \
	X("reserved", FC_PF, FC_FAULT)                                \
	X("read-only", FC_PF, FC_FAULT)                               \
	X("exec-nx", FC_PF, FC_FAULT)                                 \
	X("decommitted", FC_PF, FC_FAULT)                             \
	X("unmapped", FC_PF, FC_FAULT)                                \
	X("mdl-ro-write", FC_PF, FC_FAULT)                            \
	X("mdl-nx-exec", FC_PF, FC_FAULT)                             \
	X("term", 0, FC_TERM)                                         \
	X("freeze", 0, FC_FREEZE)                                     \
	X("sleep", 0, FC_SLEEP)                                       \
	X("exit", 0, FC_EXIT)

#endif
