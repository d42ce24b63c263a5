// SPDX-License-Identifier: MIT
/*
 * The system-call fuzzer (docs/fuzz.md): seeded random sequences of every system call of
 * include/kn/syscall_table.h, with valid and hostile arguments, each checked against the
 * contract the headers write down.
 *
 * Its task name carries the parameters: "fuzz SEED CALLS" (tests/kernel/test_fuzz.c makes it
 * from the kernel command line). Everything follows from the seed (xorshift64): the same
 * seed and count make the same calls, so a finding at call N is reproduced by running the
 * first N + 1 calls again, which is the line each finding prints.
 *
 * A "call" is one slot of the sequence: usually one system call, sometimes a touch of a
 * page the fuzzer made, or a scenario (a child that faults, an orphaned child, resource
 * pressure, a child running its own fuzzer). Slots come in rounds of ROUND_CALLS; at the
 * end of each round everything the round made is undone (children terminated and waited
 * for, handles closed, regions unmapped) and the kernel's counters must be back where the
 * round found them: free pages, commit charge, tasks, threads.
 *
 * What each system call is checked for:
 *   - its return code is one its header documents (the table `documented`, plus two rules
 *     the headers state once for all: a handle argument may be rcBadHandle, a pointer
 *     argument rcFault), and it is not rcOk when an argument the contract refuses was given
 *     (an unwritable output, an unreadable input);
 *   - registers: every general register but rax, rcx and r11, xmm0/xmm15 and the
 *     arithmetic, direction and alignment-check flags come back as they went in
 *     (docs/tasks.md), whatever garbage they held;
 *   - a failed call changed nothing: the bytes of its output buffers still hold their
 *     sentinel, KnVmQuery says the same of every page its arguments touch (a lazily
 *     committed page it read or should have written is still not resident), the handle
 *     table has the same handles (cheaply at every failure, completely now and then), and
 *     now and then the whole address space and the task's own commit and residency are
 *     compared too;
 *   - a successful call did what it says where that is cheap to see (the new region is
 *     where KnVmQuery says, an MDL has its size, a new handle value was never seen before).
 *
 * The fuzzer never hurts itself: calls that change memory get the fuzzer's own image,
 * stack and arena only with arguments the contract refuses, frames are asked for in small
 * amounts only (a call that would make the kernel allocate gigabytes is given either a
 * small size or one past the commit limit), and no handle that reaches the fuzzer itself
 * is used to freeze or terminate it.
 *
 * In child mode ("fuzzc SEED CALLS END", started by the fuzzer) it runs one round without
 * KTAP, counts its findings in a page shared with its parent, and ends as END says:
 * returning, KnTaskExit, freezing or terminating itself, or an exception.
 */
#include <knlib.h>
#include <kn/syscall_table.h>
#include "fuzz_kinds.h"

#define PAGE         4096ull
#define USER_TOP     0x00007ffffffff000ull
#define RW           (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define RES          VMM_FLAG_RESERVE
#define COM          VMM_FLAG_COMMIT
#define ROUND_CALLS  500
#define SMALL_PAGES  64 /* the most frames a call may be asked to make (a hostile size is huge) */
#define MAX_REGIONS  48
#define MAX_HANDLES  96
#define MAX_CHILDREN 10
#define MAX_PRINTED  40
#define CHILD_WAIT_S 20 /* a child must end or freeze within this (seconds of progress) */
#define ALL_TASK_RIGHTS                                                                             \
	(KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE | KN_RIGHT_QUOTA | KN_RIGHT_VM_READ | \
	 KN_RIGHT_VM_WRITE | KN_RIGHT_VM_OPERATION)
#define SELF_TASK_RIGHTS (ALL_TASK_RIGHTS & ~(uint32_t)KN_RIGHT_QUOTA) /* (never QUOTA: task_api.h) */
#define ALL_MDL_RIGHTS   (KN_RIGHT_MAP_READ | KN_RIGHT_MAP_WRITE | KN_RIGHT_CLONE)
#define SENTINEL         0xa5
#define MAILBOX_MAGIC    0x58424c49414d5a46ull /* "FZMAILBX" */

/* Where the fuzzer puts what it makes at fixed addresses (aslr=off or not). */
#define ARENA     ((uint64_t)0x500000000000ull) /* the arena: the buffers hostile pointers point into */
#define ZONE      ((uint64_t)0x540000000000ull) /* fixed-address regions of the calls */
#define ZONE_SIZE (1ull << 36)
/* Where the KnTaskVm* calls change a child's space (nothing of the child's is there). */
#define CHILD_ZONE       ((uint64_t)0x600000000000ull)
#define CHILD_ZONE_PAGES 64

/* ------------------------------------------------------------------ the call table */

enum {
#define NR(n, name, handler) NR_##name = n,
	KN_SYSCALLS(NR)
#undef NR
};
/* One past the highest call number (numbers may have gaps: a gap is an unknown number). */
union call_numbers {
#define SLOT(n, name, handler) char name[(n) + 1];
	KN_SYSCALLS(SLOT)
#undef SLOT
};
#define NCALLS      ((unsigned)sizeof(union call_numbers))
#define NR_UNKNOWN  NCALLS /* (statistics of unknown call numbers) */
#define IS_CALL(nr) ((nr) == NR_UNKNOWN || call_name[nr] != RTL_NULL)

static const char *const call_name[NCALLS + 1] = {
#define NAME(n, name, handler) [n] = #name,
	KN_SYSCALLS(NAME)
#undef NAME
		[NR_UNKNOWN] = "unknown call number",
};

/* Arguments per call, for describing one. */
static const uint8_t arity[NCALLS + 1] = {
	[NR_KnDebugNop] = 0,
	[NR_KnDebugWrite] = 3,
	[NR_KnDebugGetStats] = 1,
	[NR_KnTaskCreate] = 4,
	[NR_KnTaskResume] = 1,
	[NR_KnTaskGetState] = 2,
	[NR_KnTaskWait] = 3,
	[NR_KnTaskTerminate] = 1,
	[NR_KnTaskExit] = 1,
	[NR_KnTaskSelf] = 0,
	[NR_KnTaskGetExitCode] = 2,
	[NR_KnHandleClose] = 1,
	[NR_KnHandleTransfer] = 4,
	[NR_KnHandleEnumerate] = 4,
	[NR_KnVmAllocateEx] = 4,
	[NR_KnVmCommit] = 3,
	[NR_KnVmDecommit] = 2,
	[NR_KnVmProtect] = 3,
	[NR_KnVmUnmap] = 2,
	[NR_KnVmQuery] = 2,
	[NR_KnPmmMdlCreate] = 3,
	[NR_KnPmmMdlCreateFromBuf] = 4,
	[NR_KnPmmMdlCreateFromVm] = 4,
	[NR_KnPmmMdlCreateFromPhys] = 4,
	[NR_KnPmmMdlClone] = 2,
	[NR_KnPmmMdlMap] = 6,
	[NR_KnPmmMdlGetSize] = 2,
	[NR_KnPmmMdlGetUsageMap] = 6,
	[NR_KnTaskFreeze] = 1,
	[NR_KnTaskGetThreadContext] = 3,
	[NR_KnTaskGetNextVmRegion] = 6,
	[NR_KnTaskSetQuota] = 2,
	[NR_KnTaskGetQuota] = 3,
	[NR_KnTaskVmQuery] = 3,
	[NR_KnTaskVmAllocate] = 5,
	[NR_KnTaskVmCommit] = 4,
	[NR_KnTaskVmDecommit] = 3,
	[NR_KnTaskVmProtect] = 4,
	[NR_KnTaskVmUnmap] = 3,
	[NR_KnTaskReadMemory] = 5,
	[NR_KnTaskWriteMemory] = 5,
	[NR_KnThreadCreate] = 4,
	[NR_KnThreadExit] = 0,
	[NR_KnThreadSetAffinity] = 2,
	[NR_KnThreadGetCpu] = 2,
	[NR_KnThreadYield] = 0,
	[NR_UNKNOWN] = 6,
};

/*
 * The return codes each call's header documents (include/kn/), as a bit per Retcode.
 * Two rules the headers state once for every call are folded in: a call that takes a
 * handle may say rcBadHandle (handle_api.h: a stale, closed, foreign or wrong-type handle),
 * one that takes a pointer rcFault (retcode.h, pmm_api.h: every pointer that is not
 * readable or writable user memory). KnTaskExit and KnThreadExit do not return (neither is
 * made: the fuzzer is its task's only thread); KnTaskSelf returns a
 * handle, not a code. Unknown call numbers are rcNotSupported (docs/tasks.md).
 */
#define B(rc) (1u << (rc))
#define OK    B(rcOk)
/* (kn/vmm_api.h's rcBusy for a region another thread is making resident is left out: the
 * fuzzer is one thread, so for it that code would be a kernel bug) */
static const uint16_t documented[NCALLS + 1] = {
	[NR_KnDebugNop] = OK,
	[NR_KnDebugWrite] = OK | B(rcInvalidArgument) | B(rcFault),
	[NR_KnDebugGetStats] = OK | B(rcFault),
	[NR_KnTaskCreate] =
		OK | B(rcInvalidArgument) | B(rcNotFound) | B(rcAccessDenied) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnTaskResume] = OK | B(rcBadHandle) | B(rcWrongState),
	[NR_KnTaskGetState] = OK | B(rcBadHandle) | B(rcFault),
	[NR_KnTaskWait] = OK | B(rcBadHandle) | B(rcInvalidArgument) | B(rcBusy) | B(rcWrongState),
	[NR_KnTaskTerminate] = OK | B(rcBadHandle) | B(rcAccessDenied),
	[NR_KnTaskGetExitCode] = OK | B(rcWrongState) | B(rcBadHandle) | B(rcFault),
	[NR_KnHandleClose] = OK | B(rcBadHandle),
	[NR_KnHandleTransfer] =
		OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcWrongState) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnHandleEnumerate] = OK | B(rcEof) | B(rcFault),
	[NR_KnVmAllocateEx] = OK | B(rcInvalidArgument) | B(rcAlreadyExists) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnVmCommit] = OK | B(rcInvalidArgument) | B(rcNotFound) | B(rcOutOfMemory),
	[NR_KnVmDecommit] = OK | B(rcInvalidArgument) | B(rcNotFound) | B(rcBusy) | B(rcOutOfMemory),
	[NR_KnVmProtect] = OK | B(rcInvalidArgument) | B(rcNotFound) | B(rcAccessDenied) | B(rcOutOfMemory),
	[NR_KnVmUnmap] = OK | B(rcInvalidArgument) | B(rcNotFound) | B(rcOutOfMemory),
	[NR_KnVmQuery] = OK | B(rcInvalidArgument) | B(rcFault),
	[NR_KnPmmMdlCreate] = OK | B(rcInvalidArgument) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnPmmMdlCreateFromBuf] = OK | B(rcInvalidArgument) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnPmmMdlCreateFromVm] =
		OK | B(rcInvalidArgument) | B(rcNotFound) | B(rcAccessDenied) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnPmmMdlCreateFromPhys] = OK | B(rcAccessDenied) | B(rcInvalidArgument) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnPmmMdlClone] = OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnPmmMdlMap] = OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcInvalidArgument) | B(rcAlreadyExists) |
			   B(rcOutOfMemory) | B(rcBusy) | B(rcFault),
	[NR_KnPmmMdlGetSize] = OK | B(rcBadHandle) | B(rcFault),
	[NR_KnPmmMdlGetUsageMap] = OK | B(rcNotFound) | B(rcInvalidArgument) | B(rcFault),
	[NR_KnTaskFreeze] = OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcWrongState),
	[NR_KnTaskGetThreadContext] = OK | B(rcEof) | B(rcBadHandle) | B(rcAccessDenied) | B(rcWrongState) | B(rcFault),
	[NR_KnTaskGetNextVmRegion] =
		OK | B(rcEof) | B(rcBadHandle) | B(rcAccessDenied) | B(rcWrongState) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnTaskSetQuota] = OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcWrongState) | B(rcFault),
	[NR_KnTaskGetQuota] = OK | B(rcBadHandle) | B(rcFault),
	[NR_KnTaskVmQuery] = OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcInvalidArgument) | B(rcFault),
/* (KnVm*'s codes, and the task's: task_api.h) */
#define TASK_VM (B(rcBadHandle) | B(rcAccessDenied) | B(rcWrongState))
	[NR_KnTaskVmAllocate] =
		OK | TASK_VM | B(rcInvalidArgument) | B(rcAlreadyExists) | B(rcOutOfMemory) | B(rcFault),
	[NR_KnTaskVmCommit] = OK | TASK_VM | B(rcInvalidArgument) | B(rcNotFound) | B(rcOutOfMemory),
	[NR_KnTaskVmDecommit] = OK | TASK_VM | B(rcInvalidArgument) | B(rcNotFound) | B(rcBusy) | B(rcOutOfMemory),
	[NR_KnTaskVmProtect] =
		OK | TASK_VM | B(rcInvalidArgument) | B(rcNotFound) | B(rcAccessDenied) | B(rcOutOfMemory),
	[NR_KnTaskVmUnmap] = OK | TASK_VM | B(rcInvalidArgument) | B(rcNotFound) | B(rcOutOfMemory),
#undef TASK_VM
	[NR_KnTaskReadMemory] = OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcFault),
	[NR_KnTaskWriteMemory] = OK | B(rcBadHandle) | B(rcAccessDenied) | B(rcFault),
	[NR_KnThreadCreate] = OK | B(rcInvalidArgument) | B(rcOutOfMemory) | B(rcWrongState) | B(rcFault),
	[NR_KnThreadSetAffinity] = OK | B(rcInvalidArgument) | B(rcNotFound),
	[NR_KnThreadGetCpu] = OK | B(rcFault),
	[NR_KnThreadYield] = OK,
	[NR_UNKNOWN] = B(rcNotSupported),
};

static const char *const rc_name[RC_COUNT] = {
	"rcOk",           "rcInvalidArgument", "rcOutOfMemory", "rcNotFound", "rcAlreadyExists",
	"rcAccessDenied", "rcBadHandle",       "rcBusy",        "rcFault",    "rcWrongState",
	"rcEof",          "rcNotSupported"
};

/* ------------------------------------------------------------------ parameters and state */

static bool child_mode;
static uint64_t seed, ncalls, slot;
static unsigned child_end;
static char mem_name[16], cpu_name[16];
static bool privileged; /* KnPmmMdlCreateFromPhys works for us */
static bool limited;    /* a child fuzzer under a quota: its own set-up may meet it */

static uint64_t calls_made[NCALLS + 1], calls_failed[NCALLS + 1][RC_COUNT], harness_calls;

/* xorshift64: the one source of decisions. Nothing the kernel answers feeds it, so the
 * same seed makes the same choices as far as the answers allow. */
static uint64_t rs;
static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static bool one_in(uint64_t n) { return below(n) == 0; }
#define PICK(arr) ((arr)[below(ARRAY_SIZE(arr))])

static uint64_t mix(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 0x100000001b3ull; /* FNV-1a */
	return h;
}

/* ------------------------------------------------------------------ findings */

enum check {
	CK_CODE,
	CK_ABI,
	CK_OUTPUT,
	CK_SPACE,
	CK_HANDLES,
	CK_OWN,
	CK_RESULT,
	CK_CHILD,
	CK_ROUND,
	CK_HARNESS,
	CK_COUNT
};
static const char *const check_name[CK_COUNT] = {
	"return codes are the documented ones, and refused arguments are refused",
	"registers and flags come back from every call",
	"failed calls left their output buffers alone",
	"failed calls left the address space alone",
	"failed calls left the handle table alone",
	"failed calls left the task's own commit and residency alone",
	"successful calls did what they document",
	"children's faults and ends contained as documented",
	"free pages, commit charge, tasks, threads and the fuzzer's account back after every round",
	"the fuzzer's own set-up and clean-up worked",
};
static unsigned found[CK_COUNT];
static uint64_t first_at[CK_COUNT];
static unsigned printed, repeats;
static struct {
	uint16_t nr;
	uint8_t check, rc;
} seen[256];
static unsigned nseen;

/* Shared with the parent in child mode. */
struct mailbox {
	uint64_t magic, findings, calls, first;
};
static volatile struct mailbox *mailbox;

static void finding(enum check ck, unsigned nr, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void finding(enum check ck, unsigned nr, int rc, const char *fmt, ...)
{
	char what[360];
	va_list ap;

	if (!found[ck]++)
		first_at[ck] = slot;
	if (mailbox) {
		if (!mailbox->findings)
			mailbox->first = slot;
		mailbox->findings++;
	}
	/* One line per kind of finding (call, check, code): the same one again is counted. */
	for (unsigned i = 0; i < nseen; i++)
		if (seen[i].nr == nr && seen[i].check == ck && seen[i].rc == (uint8_t)rc) {
			repeats++;
			return;
		}
	if (nseen < ARRAY_SIZE(seen)) {
		seen[nseen].nr = (uint16_t)nr;
		seen[nseen].check = (uint8_t)ck;
		seen[nseen].rc = (uint8_t)rc;
		nseen++;
	}
	if (printed++ >= MAX_PRINTED)
		return;
	va_start(ap, fmt);
	kvsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (child_mode)
		printf("fuzz child %llu: FINDING at its call %llu: %s\n", (unsigned long long)seed,
		       (unsigned long long)slot, what);
	else
		printf("fuzz: FINDING at call %llu: %s; reproduce with: make fuzz SEED=%llu CALLS=%llu MEM=%s CPU=%s\n",
		       (unsigned long long)slot, what, (unsigned long long)seed, (unsigned long long)slot + 1, mem_name,
		       cpu_name);
}

/* ------------------------------------------------------------------ the raw system call */

/*
 * Every call goes through fz_syscall with all the registers it can set: the six arguments
 * (full 64 bits: a 32-bit argument gets garbage in its upper half now and then, which the
 * kernel must ignore), rbx, rbp, r12-r15, xmm0, xmm15 and the flags (arithmetic flags, DF
 * and AC) set to random values; it records them all after the call, for the ABI check.
 */
struct sysregs {
	uint64_t rax, rdi, rsi, rdx, r10, r8, r9; /* 0x00 */
	uint64_t rbx, rbp, r12, r13, r14, r15;    /* 0x38 */
	uint64_t rflags;                          /* 0x68 */
	uint64_t xmm0[2], xmm15[2];               /* 0x70, 0x80 */
} __attribute__((aligned(16)));

void fz_syscall(const struct sysregs *in, struct sysregs *out);
__asm__(".text\n"
	".globl fz_syscall\n"
	".type fz_syscall, @function\n"
	"fz_syscall:\n\t"
	"pushq %rbx\n\t"
	"pushq %rbp\n\t"
	"pushq %r12\n\t"
	"pushq %r13\n\t"
	"pushq %r14\n\t"
	"pushq %r15\n\t"
	"pushq %rsi\n\t"
	"movdqa 0x70(%rdi), %xmm0\n\t"
	"movdqa 0x80(%rdi), %xmm15\n\t"
	"movq 0x38(%rdi), %rbx\n\t"
	"movq 0x40(%rdi), %rbp\n\t"
	"movq 0x48(%rdi), %r12\n\t"
	"movq 0x50(%rdi), %r13\n\t"
	"movq 0x58(%rdi), %r14\n\t"
	"movq 0x60(%rdi), %r15\n\t"
	"movq 0x20(%rdi), %r10\n\t"
	"movq 0x28(%rdi), %r8\n\t"
	"movq 0x30(%rdi), %r9\n\t"
	"movq 0x18(%rdi), %rdx\n\t"
	"movq 0x10(%rdi), %rsi\n\t"
	"movq 0x00(%rdi), %rax\n\t"
	"pushq 0x68(%rdi)\n\t"
	"movq 0x08(%rdi), %rdi\n\t"
	"popfq\n\t"
	"syscall\n\t"
	"pushfq\n\t"
	"pushq %rdi\n\t"
	"movq 16(%rsp), %rdi\n\t"
	"popq 0x08(%rdi)\n\t"
	"popq 0x68(%rdi)\n\t"
	"movq %rax, 0x00(%rdi)\n\t"
	"movq %rsi, 0x10(%rdi)\n\t"
	"movq %rdx, 0x18(%rdi)\n\t"
	"movq %r10, 0x20(%rdi)\n\t"
	"movq %r8, 0x28(%rdi)\n\t"
	"movq %r9, 0x30(%rdi)\n\t"
	"movq %rbx, 0x38(%rdi)\n\t"
	"movq %rbp, 0x40(%rdi)\n\t"
	"movq %r12, 0x48(%rdi)\n\t"
	"movq %r13, 0x50(%rdi)\n\t"
	"movq %r14, 0x58(%rdi)\n\t"
	"movq %r15, 0x60(%rdi)\n\t"
	"movdqa %xmm0, 0x70(%rdi)\n\t"
	"movdqa %xmm15, 0x80(%rdi)\n\t"
	"pushq $0x202\n\t" /* DF and AC clear again for the C code */
	"popfq\n\t"
	"popq %rsi\n\t"
	"popq %r15\n\t"
	"popq %r14\n\t"
	"popq %r13\n\t"
	"popq %r12\n\t"
	"popq %rbp\n\t"
	"popq %rbx\n\t"
	"ret\n\t"
	".size fz_syscall, . - fz_syscall\n");

#define FLAGS_KEPT 0x40cd5ull /* CF PF AF ZF SF DF OF AC */

static struct sysregs regs_in, regs_out;

/* ------------------------------------------------------------------ the world */

/*
 * The arena: one region per kind of memory a hostile (or valid) pointer can point into,
 * made at the start of each round and unmapped at its end.
 */
#define OUT_PAGES 8
#define IN_PAGES  16
static struct {
	uint8_t *out;      /* OUT_PAGES resident read-write pages: valid buffers, in slices */
	uint8_t *in;       /* IN_PAGES resident pages of known bytes: big valid inputs */
	uint8_t *ro;       /* a resident read-only page of known bytes */
	uint8_t *guarded;  /* 2 resident read-write pages between a low and a high guard page */
	uint8_t *resv;     /* page 0 resident read-write, page 1 reserved */
	uint8_t *lazy;     /* 4 pages committed, not resident */
	uint8_t *lazyend;  /* page 0 resident read-write, page 1 committed and not resident */
	uint8_t *roend;    /* page 0 resident read-write, page 1 resident read-only */
	uint8_t *grow;     /* the bottom (reserved) page of a grow-down region */
	uint8_t *mdl;      /* a page of a writable mapping of an MDL */
	uint8_t *trap;     /* a page ending in text, before a guard page: for KnDebugWrite */
	uint8_t *unmapped; /* a free page */
	uint8_t *dev;      /* a page of a device mapping (read-only), or 0 */
	uint8_t *mbox;     /* the child fuzzer's mailbox, mapped here too (or 0) */
} ar;

static unsigned trap_springs;
static const char trap_line[] = "\n    not ok 999 a failing KnDebugWrite printed part of its buffer (fuzz finding)\n";

enum { RK_ANON, RK_MDL, RK_DEV };
struct region {
	uint64_t base, size; /* the usable range */
	int flags;
	uint8_t kind;
	bool live;
};
static struct region regions[MAX_REGIONS];

enum { OBJ_SELF = -2, OBJ_NONE = -1 };
enum { MK_RAM, MK_DEV, MK_REGION };
struct hrec {
	Handle h;
	uint32_t rights;
	uint8_t type;
	bool live;
	int child;        /* task handles: the child's index, or OBJ_SELF */
	uint16_t made_by; /* the call that made it */
	uint8_t mdl_kind; /* MDL handles */
	uint64_t mdl_size;
};
static struct hrec handles[MAX_HANDLES];
static Handle stale[32], foreign[16];
static unsigned nstale, nforeign;
static Handle baseline_handles[8];
static unsigned nbaseline_handles;

enum { CP_CREATED, CP_RUNNING, CP_FREEZING, CP_FROZEN, CP_EXITED };
struct child {
	bool live;
	bool never_ends; /* runs until terminated (fc-sleep): its last TERMINATE handle stays */
	uint8_t phase;
	int kind; /* index into fc_kinds, or -1 */
};
static struct child children[MAX_CHILDREN];

struct fc_kind {
	const char *name;
	uint32_t vectors;
	uint8_t how;
};
static const struct fc_kind fc_kinds[] = {
#define KIND(name, vectors, how) { name, vectors, how },
	FC_KINDS(KIND)
#undef KIND
};
static uint64_t kinds_seen[(ARRAY_SIZE(fc_kinds) + 63) / 64];
static unsigned children_run, faults_contained, fuzzers_run, children_unset;

static uint64_t baseline_regions[16];
static unsigned nbaseline_regions;
static KnMemStats stats; /* (resident: in .bss) */
static KnVmInfo qinfo;
static uint64_t commit_limit_pages;

/* ------------------------------------------------------------------ a call */

/* Kinds of pointer. */
enum pk {
	P_GOOD,
	P_MISALIGNED,
	P_LAZY,
	P_MDL,
	P_GROW,
	P_STRADDLE_LAZY,
	P_RO,
	P_TEXT,
	P_STRADDLE_RO,
	P_DEV,
	P_NULL,
	P_LOW,
	P_KERNEL,
	P_KERNEL_TOP,
	P_NONCANON,
	P_UNMAPPED,
	P_GUARD,
	P_RESERVED,
	P_STRADDLE_GUARD,
	P_STRADDLE_RESERVED,
	P_USER_END,
	P_WRAP,
	P_COUNT
};
/* Whether a buffer of that kind is writable (as an output) and readable (as an input):
 * 1 yes, 0 no, 2 either way is defensible. */
static const struct {
	const char *name;
	uint8_t writable, readable;
} pkinds[P_COUNT] = {
	[P_GOOD] = { "good", 1, 1 },
	[P_MISALIGNED] = { "misaligned", 1, 1 },
	[P_LAZY] = { "lazy page", 1, 1 },
	[P_MDL] = { "writable MDL mapping", 1, 1 },
	[P_GROW] = { "grow-down bottom", 1, 2 },
	[P_STRADDLE_LAZY] = { "ending in a lazy page", 1, 1 },
	[P_RO] = { "read-only page", 0, 1 },
	[P_TEXT] = { "program text", 0, 1 },
	[P_STRADDLE_RO] = { "running into a read-only page", 0, 1 },
	[P_DEV] = { "device mapping", 0, 2 },
	[P_NULL] = { "null", 0, 0 },
	[P_LOW] = { "page 0", 0, 0 },
	[P_KERNEL] = { "kernel half", 0, 0 },
	[P_KERNEL_TOP] = { "top of the kernel half", 0, 0 },
	[P_NONCANON] = { "non-canonical", 0, 0 },
	[P_UNMAPPED] = { "unmapped", 0, 0 },
	[P_GUARD] = { "guard page", 0, 0 },
	[P_RESERVED] = { "reserved page", 0, 0 },
	[P_STRADDLE_GUARD] = { "running into a guard page", 0, 0 },
	[P_STRADDLE_RESERVED] = { "running into a reserved page", 0, 0 },
	[P_USER_END] = { "running past the user half", 0, 0 },
	[P_WRAP] = { "wrapping", 0, 0 },
};

enum { DIR_IN, DIR_OUT };
struct buf {
	uint64_t p, n;
	uint8_t kind, dir;
	uint64_t lo, hi; /* output: the bytes holding the sentinel */
};

struct call {
	unsigned nr;
	uint64_t a[6];
	struct buf b[4];
	unsigned nb;
	uint64_t wa[4], wn[4]; /* more ranges whose pages must not change on failure */
	unsigned nw;
	uint32_t used;   /* kinds of pointer used (each special one once per call) */
	unsigned slices; /* slices of ar.out handed out */
	unsigned lazies; /* pages of ar.lazy handed out */
	bool must_fail;  /* an argument the contract refuses */
	const char *why;
	bool garbage_ok; /* 32-bit arguments may carry garbage in their upper half */
	void (*done)(struct call *c, int64_t rc);
	uint64_t x[4];
};

static void describe(char *buf, size_t size, const struct call *c);

/* ------------------------------------------------------------------ checks */

/* What KnVmQuery says about the pages of [a, a + n), as a hash (at most `max` runs). */
static uint64_t range_hash(uint64_t h, uint64_t a, uint64_t n, unsigned max)
{
	uint64_t lo = a & ~(PAGE - 1), hi = a + (n ? n : 1);
	if (hi < a || hi > USER_TOP)
		hi = USER_TOP;
	if (lo < PAGE)
		lo = PAGE;
	for (unsigned q = 0; lo < hi && q < max; q++) {
		Retcode rc = KnVmQuery((void *)lo, &qinfo);
		harness_calls++;
		h = mix(h, (uint64_t)rc);
		if (rc != rcOk || qinfo.runSize == 0)
			break;
		h = mix(mix(mix(h, (uint64_t)(uintptr_t)qinfo.regionBase), qinfo.regionSize), (uint64_t)qinfo.state);
		h = mix(mix(mix(h, (uint64_t)qinfo.resident), (uint64_t)(unsigned)qinfo.flags), qinfo.runSize);
		if (qinfo.runSize > hi - lo)
			break;
		lo += qinfo.runSize;
	}
	return h;
}

static uint64_t call_space_hash(const struct call *c)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (unsigned i = 0; i < c->nb; i++)
		h = range_hash(h, c->b[i].p, MIN(c->b[i].n ? c->b[i].n : 1, 2 * PAGE), 4);
	for (unsigned i = 0; i < c->nw; i++)
		h = range_hash(h, c->wa[i], c->wn[i], 8);
	return h;
}

static uint64_t whole_space_hash(void) { return range_hash(0xcbf29ce484222325ull, PAGE, USER_TOP - PAGE, 4096); }

/* The handles the model says are open: how many, and the one in the highest slot. */
static unsigned model_handles(Handle *last)
{
	unsigned n = 0;
	uint32_t top = 0;
	*last = 0;
	for (unsigned i = 0; i < nbaseline_handles; i++, n++)
		if ((baseline_handles[i] & 0xfff) >= top) {
			top = baseline_handles[i] & 0xfff;
			*last = baseline_handles[i];
		}
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (handles[i].live) {
			n++;
			if ((handles[i].h & 0xfff) >= top) {
				top = handles[i].h & 0xfff;
				*last = handles[i].h;
			}
		}
	return n;
}

/* While a pressure scenario fills the table with handles the model does not hold. */
static bool extra_handles;

/* Cheap: the table has as many handles as the model, and the last is the same. */
static bool handles_look_same(void)
{
	if (extra_handles)
		return true;
	Handle last, h;
	int type;
	rtl_uint32_t rights;
	unsigned n = model_handles(&last);
	harness_calls += 2;
	if (KnHandleEnumerate(n, &h, &type, &rights) != rcEof)
		return false;
	return n == 0 || (KnHandleEnumerate(n - 1, &h, &type, &rights) == rcOk && h == last);
}

static struct hrec *find_hrec(Handle h)
{
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (handles[i].live && handles[i].h == h)
			return &handles[i];
	return NULL;
}

static bool is_baseline_handle(Handle h)
{
	for (unsigned i = 0; i < nbaseline_handles; i++)
		if (baseline_handles[i] == h)
			return true;
	return false;
}

/* Complete: every handle of the table is in the model with the rights the model has. */
static bool handles_same(char *why, size_t size)
{
	Handle last;
	unsigned n = model_handles(&last), i;
	for (i = 0;; i++) {
		Handle h;
		int type;
		rtl_uint32_t rights;
		harness_calls++;
		Retcode rc = KnHandleEnumerate(i, &h, &type, &rights);
		if (rc == rcEof)
			break;
		if (rc != rcOk) {
			ksnprintf(why, size, "KnHandleEnumerate(%u) returned %d", i, rc);
			return false;
		}
		if (is_baseline_handle(h))
			continue;
		struct hrec *r = find_hrec(h);
		if (!r && extra_handles)
			continue;
		if (!r) {
			ksnprintf(why, size, "a handle %#x the fuzzer never got (type %d, rights %#x)", h, type,
				  rights);
			return false;
		}
		if (r->rights != rights || r->type != (uint8_t)type) {
			/* Not a change made by a failing call: what the call that made it gave. Said
			 * once per kind of handle, and the model takes the kernel's word from then on. */
			finding(CK_RESULT, r->made_by, 0x80 | r->type,
				"%s gave handle %#x type %d rights %#x; the contract says type %d rights %#x",
				call_name[r->made_by], h, type, rights, r->type, r->rights);
			r->rights = rights;
			r->type = (uint8_t)type;
		}
	}
	if (i != n && !extra_handles) {
		ksnprintf(why, size, "%u handles in the table, %u expected", i, n);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ pointers */

static uint64_t rnd_off(uint64_t room) { return room ? below(room) : 0; }

/* A straddling pointer: the buffer's last `k` bytes (1 <= k < n) lie past `boundary`. */
static uint64_t straddle(uint64_t boundary, uint64_t n)
{
	if (n < 2)
		return boundary; /* (a one-byte buffer cannot straddle: it lies past) */
	uint64_t k = 1 + below(MIN(n - 1, PAGE - 1));
	return boundary - (n - k);
}

static struct buf *add_buf(struct call *c, uint64_t p, uint64_t n, unsigned kind, unsigned dir)
{
	struct buf *b = &c->b[c->nb++];
	*b = (struct buf){ .p = p, .n = n, .kind = (uint8_t)kind, .dir = (uint8_t)dir };
	return b;
}

/* A slice of ar.out of up to 2 pages that no other buffer of the call uses. */
static uint8_t *out_slice(struct call *c) { return ar.out + 2 * PAGE * (c->slices++ % (OUT_PAGES / 2)); }

/*
 * A pointer of kind `kind` for a buffer of n bytes (n <= 2 pages for the arena kinds).
 * Kinds that need an arena spot nobody else in the call uses fall back to P_GOOD.
 */
static uint64_t place(struct call *c, unsigned kind, uint64_t n, unsigned *actual)
{
	uint64_t span = n ? n : 1;
	if (kind >= P_MDL && kind <= P_STRADDLE_RESERVED && kind != P_TEXT && kind != P_RO && (c->used & (1u << kind)))
		kind = P_GOOD;
	if ((kind == P_DEV && !ar.dev) || (kind == P_MDL && !ar.mdl))
		kind = P_GOOD;
	if (span > PAGE && (kind == P_LAZY || kind == P_MDL || kind == P_GROW || kind == P_RO || kind == P_DEV ||
			    kind == P_UNMAPPED || kind == P_GUARD || kind == P_RESERVED))
		kind = P_GOOD;
	c->used |= 1u << kind;
	*actual = kind;
	switch (kind) {
	case P_GOOD:
		return (uint64_t)(uintptr_t)out_slice(c) + (rnd_off(2 * PAGE - MIN(span, 2 * PAGE)) & ~7ull);
	case P_MISALIGNED:
		return (uint64_t)(uintptr_t)out_slice(c) + 1 + rnd_off(2 * PAGE - MIN(span, 2 * PAGE) - 1);
	case P_LAZY: /* (a page of its own for each buffer of the call: outputs never overlap) */
		return (uint64_t)(uintptr_t)ar.lazy + (c->lazies++ % 4) * PAGE + rnd_off(PAGE - span + 1);
	case P_MDL:
		return (uint64_t)(uintptr_t)ar.mdl + rnd_off(PAGE - span + 1);
	case P_GROW:
		return (uint64_t)(uintptr_t)ar.grow + rnd_off(PAGE - span + 1);
	case P_STRADDLE_LAZY:
		return straddle((uint64_t)(uintptr_t)ar.lazyend + PAGE, span);
	case P_RO:
		return (uint64_t)(uintptr_t)ar.ro + rnd_off(PAGE - span + 1);
	case P_TEXT:
		return 0x400000ull + rnd_off(PAGE - MIN(span, PAGE) + 1);
	case P_STRADDLE_RO:
		return straddle((uint64_t)(uintptr_t)ar.roend + PAGE, span);
	case P_DEV:
		return (uint64_t)(uintptr_t)ar.dev + rnd_off(PAGE - span + 1);
	case P_NULL:
		return 0;
	case P_LOW:
		return 1 + below(PAGE - 1);
	case P_KERNEL: {
		static const uint64_t k[] = { 0xffffffff80100000ull, 0xffff800000000000ull, 0xffffc00000000000ull };
		return PICK(k) + below(64) * 8;
	}
	case P_KERNEL_TOP:
		return 0xfffffffffffff000ull + below(PAGE - MIN(span, PAGE) + 1);
	case P_NONCANON: {
		static const uint64_t k[] = { 0x0000800000000000ull, 0x8000000000000000ull,
					      0x00007ffffffff000ull + PAGE, 0xfff0000000000000ull };
		return PICK(k) + below(64);
	}
	case P_UNMAPPED:
		return (uint64_t)(uintptr_t)ar.unmapped + rnd_off(PAGE - span + 1);
	case P_GUARD:
		return one_in(2) ? (uint64_t)(uintptr_t)ar.guarded - PAGE + rnd_off(PAGE - span + 1)
				 : (uint64_t)(uintptr_t)ar.guarded + 2 * PAGE + rnd_off(PAGE - span + 1);
	case P_RESERVED:
		return (uint64_t)(uintptr_t)ar.resv + PAGE + rnd_off(PAGE - span + 1);
	case P_STRADDLE_GUARD:
		return one_in(4) ? straddle((uint64_t)(uintptr_t)ar.guarded, span) - 0 * PAGE
				 : straddle((uint64_t)(uintptr_t)ar.guarded + 2 * PAGE, span);
	case P_STRADDLE_RESERVED:
		return straddle((uint64_t)(uintptr_t)ar.resv + PAGE, span);
	case P_USER_END:
		return one_in(4) ? USER_TOP : straddle(USER_TOP, span);
	case P_WRAP:
	default:
		return 0 - span + below(span);
	}
}

/* A kind for a buffer: about two thirds valid. */
static unsigned pick_kind(unsigned dir)
{
	static const uint8_t valid_out[] = { P_GOOD,       P_GOOD, P_GOOD, P_GOOD, P_GOOD, P_GOOD,
					     P_MISALIGNED, P_LAZY, P_LAZY, P_MDL,  P_GROW, P_STRADDLE_LAZY };
	static const uint8_t valid_in[] = { P_GOOD, P_GOOD, P_GOOD,          P_GOOD, P_GOOD, P_MISALIGNED, P_LAZY,
					    P_LAZY, P_MDL,  P_STRADDLE_LAZY, P_RO,   P_TEXT, P_STRADDLE_RO };
	if (below(3))
		return dir == DIR_OUT ? PICK(valid_out) : PICK(valid_in);
	return (unsigned)below(P_COUNT);
}

/* The byte range of an output that is ours to fill with the sentinel (writable, resident). */
static void sentinel_part(struct buf *b)
{
	uint64_t lo = 0, hi = 0, p = b->p, end = b->p + b->n;
	switch (b->kind) {
	case P_GOOD:
	case P_MISALIGNED:
	case P_MDL:
		lo = p, hi = end;
		break;
	case P_STRADDLE_LAZY:
	case P_STRADDLE_GUARD:
	case P_STRADDLE_RESERVED:
	case P_STRADDLE_RO:
		lo = p, hi = (end + PAGE - 1) & ~(PAGE - 1);
		hi -= PAGE; /* up to the boundary the buffer runs into */
		if (hi < lo)
			hi = lo;
		/* the low guard's straddle runs from the guard into the usable pages: nothing ours
		 * before the boundary */
		if (b->kind == P_STRADDLE_GUARD && p < (uint64_t)(uintptr_t)ar.guarded)
			lo = hi = 0;
		break;
	default:
		break;
	}
	b->lo = lo;
	b->hi = hi;
}

/* Adds an output of n bytes (kind picked at random unless forced) as argument `arg`. */
static void out_arg(struct call *c, unsigned arg, uint64_t n, int force)
{
	unsigned kind = force >= 0 ? (unsigned)force : pick_kind(DIR_OUT), actual;
	uint64_t p = place(c, kind, n, &actual);
	struct buf *b = add_buf(c, p, n, actual, DIR_OUT);
	sentinel_part(b);
	c->a[arg] = p;
	if (!pkinds[actual].writable && !c->must_fail) {
		c->must_fail = true;
		c->why = pkinds[actual].name;
	}
}

/* An input of n bytes whose valid content `content` (if any) is copied in where it can be. */
static void in_arg(struct call *c, unsigned arg, uint64_t n, const void *content, int force)
{
	unsigned kind = force >= 0 ? (unsigned)force : pick_kind(DIR_IN), actual;
	if (content && (kind == P_RO || kind == P_TEXT || kind == P_LAZY || kind == P_DEV || kind == P_STRADDLE_RO ||
			kind == P_STRADDLE_LAZY || kind == P_GROW))
		kind = P_GOOD; /* (these hold what they hold) */
	uint64_t p = place(c, kind, n, &actual);
	if (content && (actual == P_GOOD || actual == P_MISALIGNED || actual == P_MDL))
		memcpy((void *)(uintptr_t)p, content, n);
	add_buf(c, p, n, actual, DIR_IN);
	c->a[arg] = p;
	if (n && pkinds[actual].readable == 0 && !c->must_fail) {
		c->must_fail = true;
		c->why = pkinds[actual].name;
	}
}

/*
 * A string argument: `s` placed as a valid string most of the time; else an empty or
 * too long one, one that runs into a guard or reserved page without its NUL, one whose NUL
 * is in a lazily committed page, or a bad pointer.
 */
static void str_arg(struct call *c, unsigned arg, const char *s, bool name)
{
	size_t len = strlen(s);
	uint64_t p;
	unsigned kind = P_GOOD;
	switch (below(14)) {
	default: /* 0..6: as given */
		p = (uint64_t)(uintptr_t)out_slice(c) + below(64);
		memcpy((void *)(uintptr_t)p, s, len + 1);
		break;
	case 7: /* empty, or too long */
		p = (uint64_t)(uintptr_t)out_slice(c);
		len = one_in(3) ? 0 : name ? KN_TASK_NAME_MAX + below(3) : 62 + below(4);
		memset((void *)(uintptr_t)p, 'n', len);
		((char *)(uintptr_t)p)[len] = 0;
		if (len == 0 || (name && len > KN_TASK_NAME_MAX) || (!name && len >= 64)) {
			c->must_fail = !c->must_fail ? true : c->must_fail;
			c->why = c->why ? c->why : "empty or long string";
		}
		break;
	case 8: /* its NUL in the lazy page after it: valid, but reading it faults that page in */
		if (!(c->used & (1u << P_STRADDLE_LAZY)) && len) {
			c->used |= 1u << P_STRADDLE_LAZY;
			kind = P_STRADDLE_LAZY;
			p = (uint64_t)(uintptr_t)ar.lazyend + PAGE - len;
			memcpy((void *)(uintptr_t)p, s, len);
		} else {
			p = (uint64_t)(uintptr_t)out_slice(c);
			memcpy((void *)(uintptr_t)p, s, len + 1);
		}
		break;
	case 9: /* into a guard or reserved page, without a NUL */
	case 10: {
		unsigned k = below(2) ? P_STRADDLE_GUARD : P_STRADDLE_RESERVED;
		if (c->used & (1u << k)) {
			p = 0;
			kind = P_NULL;
		} else {
			c->used |= 1u << k;
			kind = k;
			uint64_t end = k == P_STRADDLE_GUARD ? (uint64_t)(uintptr_t)ar.guarded + 2 * PAGE
							     : (uint64_t)(uintptr_t)ar.resv + PAGE;
			uint64_t n = 1 + below(40);
			p = end - n;
			memset((void *)(uintptr_t)p, 'x', n);
		}
		c->must_fail = true;
		c->why = c->why ? c->why : "string without its NUL before a page that cannot be read";
		break;
	}
	case 11: /* in a lazy page: empty, unless a call wrote there (then it is resident) */
		kind = P_LAZY;
		p = (uint64_t)(uintptr_t)ar.lazy + below(4) * PAGE + below(PAGE);
		break;
	case 12:
	case 13: { /* a bad pointer */
		static const uint8_t bad[] = { P_NULL,  P_LOW,      P_KERNEL,   P_NONCANON, P_UNMAPPED,
					       P_GUARD, P_RESERVED, P_USER_END, P_WRAP,     P_KERNEL_TOP };
		unsigned want = PICK(bad), got;
		p = place(c, want, 1, &got);
		kind = got;
		if (!pkinds[got].readable) {
			c->must_fail = true;
			c->why = c->why ? c->why : pkinds[got].name;
		}
		break;
	}
	}
	add_buf(c, p, len + 1, kind, DIR_IN);
	c->a[arg] = p;
}

/* ------------------------------------------------------------------ handles */

static struct hrec *new_hrec(Handle h, uint8_t type, uint32_t rights, unsigned made_by)
{
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (!handles[i].live) {
			handles[i] = (struct hrec){ .h = h,
						    .type = type,
						    .rights = rights,
						    .live = true,
						    .child = OBJ_NONE,
						    .made_by = (uint16_t)made_by };
			return &handles[i];
		}
	return NULL;
}

static void forget_handle(struct hrec *r)
{
	r->live = false;
	stale[nstale++ % ARRAY_SIZE(stale)] = r->h;
}

static unsigned live_handles(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		n += handles[i].live;
	return n;
}

/* Whether value h is one of ours (open), baseline included. */
static bool is_open(Handle h) { return find_hrec(h) != NULL || is_baseline_handle(h); }

static struct hrec *random_hrec(int type)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		n += handles[i].live && (type < 0 || handles[i].type == type);
	if (!n)
		return NULL;
	unsigned k = below(n);
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (handles[i].live && (type < 0 || handles[i].type == type) && k-- == 0)
			return &handles[i];
	return NULL;
}

/* A value that is not an open handle of ours: closed, forged, foreign, 0 ... */
static Handle bad_handle_value(void)
{
	Handle h;
	if (extra_handles) /* (a forged value could be one of them: only values known dead) */
		return nstale && below(4) ? stale[below(MIN(nstale, ARRAY_SIZE(stale)))] : 0;
	for (unsigned tries = 0; tries < 8; tries++) {
		switch (below(7)) {
		case 0:
			h = nstale ? stale[below(MIN(nstale, ARRAY_SIZE(stale)))] : 0x1001;
			break;
		case 1:
			h = nforeign ? foreign[below(MIN(nforeign, ARRAY_SIZE(foreign)))] : 0x2002;
			break;
		case 2:
			h = (Handle)rnd();
			break;
		case 3: {
			struct hrec *r = random_hrec(-1);
			h = r ? r->h ^ (1u << (12 + below(20))) : 0xfff; /* another generation */
			break;
		}
		case 4: {
			struct hrec *r = random_hrec(-1);
			h = r ? (r->h & ~0xfffu) | ((r->h + 1 + below(4)) & 0xfff) : 0x3003; /* another slot */
			break;
		}
		case 5:
			h = below(2) ? 0 : 0xfff;
			break;
		default:
			h = 0xfffffffeu - (Handle)below(3);
			break;
		}
		if (!is_open(h) && h != KN_HANDLE_SELF)
			return h;
	}
	return 0;
}

/*
 * A task handle for a call that needs `right`. `harmless`: the call could freeze or end the
 * task behind it, so no handle that reaches the fuzzer itself with that right is given.
 * *rec gets the model's record (NULL for KN_HANDLE_SELF and bad values).
 */
static Handle pick_task(struct call *c, uint32_t right, bool harmless, struct hrec **rec)
{
	*rec = NULL;
	unsigned r = below(10);
	if (r < 6) {
		for (unsigned tries = 0; tries < 4; tries++) {
			struct hrec *h = random_hrec(KN_HANDLE_TYPE_TASK);
			if (!h)
				break;
			if (harmless && h->child == OBJ_SELF && (h->rights & right))
				continue;
			*rec = h;
			return h->h;
		}
	}
	if (r == 6 && !harmless)
		return KN_HANDLE_SELF;
	if (r == 7) { /* wrong type */
		struct hrec *h = random_hrec(KN_HANDLE_TYPE_MDL);
		if (h) {
			c->must_fail = true;
			c->why = "an MDL handle where a task handle goes";
			return h->h;
		}
	}
	c->must_fail = true;
	c->why = "a handle that is not open";
	return bad_handle_value();
}

static Handle pick_mdl(struct call *c, struct hrec **rec)
{
	*rec = NULL;
	unsigned r = below(10);
	if (r < 7) {
		struct hrec *h = random_hrec(KN_HANDLE_TYPE_MDL);
		if (h) {
			*rec = h;
			return h->h;
		}
	}
	if (r == 7) {
		c->must_fail = true;
		c->why = "a task handle where an MDL handle goes";
		struct hrec *h = random_hrec(KN_HANDLE_TYPE_TASK);
		return h ? h->h : KN_HANDLE_SELF;
	}
	c->must_fail = true;
	c->why = "a handle that is not open";
	return bad_handle_value();
}

/* ------------------------------------------------------------------ regions */

static struct region *new_region(uint64_t base, uint64_t size, int flags, uint8_t kind)
{
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		if (!regions[i].live) {
			regions[i] = (struct region){
				.base = base, .size = size, .flags = flags, .kind = kind, .live = true
			};
			return &regions[i];
		}
	return NULL;
}

static struct region *random_region(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		n += regions[i].live;
	if (!n)
		return NULL;
	unsigned k = below(n);
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		if (regions[i].live && k-- == 0)
			return &regions[i];
	return NULL;
}

static unsigned live_regions(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		n += regions[i].live;
	return n;
}

/* A page-aligned size: mostly small, sometimes one no commit limit can take. */
static uint64_t small_size(void)
{
	static const uint64_t pages[] = { 1, 1, 1, 2, 2, 3, 4, 5, 8, 16, 17, 32, 64 };
	return PICK(pages) * PAGE;
}

static uint64_t huge_size(void)
{
	static const uint64_t sizes[] = { 1ull << 40, 1ull << 46, 1ull << 47, ~0ull & ~(PAGE - 1), 3ull << 45 };
	uint64_t s = PICK(sizes);
	uint64_t past = (commit_limit_pages + 1 + below(1024)) * PAGE;
	return one_in(2) ? s : past;
}

/* A range for a call that changes memory: inside a region of the calls (mostly), or hostile.
 * Never one that could change the fuzzer's own memory. */
static void vm_range(struct call *c, uint64_t *addr, uint64_t *size)
{
	struct region *r = random_region();
	unsigned what = below(20);
	uint64_t a, s;
	if (r && what < 12) {
		uint64_t pages = r->size / PAGE;
		switch (what % 6) {
		case 0: /* the whole usable range */
			a = r->base, s = r->size;
			break;
		case 1: /* with its guards */
			a = r->base - ((r->flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0);
			s = r->size + ((r->flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0) +
			    ((r->flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0);
			break;
		case 2:
		case 3: { /* a part */
			uint64_t first = below(pages), n = 1 + below(MIN(pages - first, 64));
			a = r->base + first * PAGE, s = n * PAGE;
			break;
		}
		case 4: /* running past its end */
			a = r->base + below(pages) * PAGE;
			s = r->base + r->size - a + (1 + below(4)) * PAGE;
			break;
		default: /* starting before it */
			a = r->base - (1 + below(2)) * PAGE;
			s = (2 + below(4)) * PAGE;
			break;
		}
		if (one_in(12)) {
			a += 1 + below(PAGE - 1);
			c->must_fail = true;
			c->why = "unaligned address";
		} else if (one_in(12)) {
			s += 1 + below(PAGE - 1);
			c->must_fail = true;
			c->why = "unaligned size";
		}
	} else if (what < 15) { /* free space in the zone */
		a = ZONE + below(ZONE_SIZE / PAGE) * PAGE;
		s = small_size();
	} else {
		/* The fuzzer's own memory, the arena, the kernel half, the end of the user half:
		 * only with something the contract refuses. */
		static const uint64_t where[] = { 0x400000ull, 0x0ull, 0xffffffff80000000ull, USER_TOP - PAGE,
						  USER_TOP,    ARENA,  0x0000800000000000ull };
		a = PICK(where);
		if (a == ARENA)
			a = (uint64_t)(uintptr_t)(below(2) ? ar.out : ar.lazy);
		s = small_size();
		switch (below(4)) {
		case 0:
			a += 1 + below(PAGE - 1);
			break;
		case 1:
			s = 0;
			break;
		case 2:
			s = 0 - a + PAGE * below(3); /* wraps */
			break;
		default: /* (leaves the user half, or wraps) */
			s = ~0ull & ~(PAGE - 1);
			break;
		}
		c->must_fail = true;
		c->why = "a range the contract refuses";
	}
	*addr = a;
	*size = s;
	c->wa[c->nw] = a;
	c->wn[c->nw++] = MIN(s, 64 * PAGE);
}

/* ------------------------------------------------------------------ flags */

static int any_protection(void)
{
	static const int prots[] = { VMM_FLAG_READ, RW, RW, VMM_FLAG_READ | VMM_FLAG_EXECUTE, VMM_FLAG_RWX_MASK };
	return PICK(prots);
}

static int bad_protection(void)
{
	static const int prots[] = { 0, VMM_FLAG_WRITE, VMM_FLAG_EXECUTE, VMM_FLAG_WRITE | VMM_FLAG_EXECUTE };
	return PICK(prots);
}

static int any_cache(void)
{
	static const int modes[] = {
		0, 0, 0, 0, VMM_FLAG_WRITE_BACK, VMM_FLAG_WRITE_THROUGH, VMM_FLAG_WRITE_COMBINE, VMM_FLAG_CACHE_DISABLE
	};
	return PICK(modes);
}

static int unknown_bits(void)
{
	static const int bits[] = { 0x8, 0x80, 0x800, 0x10000, 0x80000, 0x40000000, (int)0x80000000u };
	return PICK(bits);
}

/* Flags for an MDL's maximum: valid mostly; two cache modes, a bad protection or unknown bits. */
static int mdl_flags(struct call *c)
{
	int f = any_protection() | any_cache();
	switch (below(10)) {
	case 0:
		f = bad_protection() | any_cache();
		break;
	case 1:
		f |= VMM_FLAG_WRITE_THROUGH | VMM_FLAG_CACHE_DISABLE;
		break;
	case 2:
		f |= unknown_bits();
		break;
	default:
		return f;
	}
	c->must_fail = true;
	c->why = c->why ? c->why : "bad flags";
	return f;
}

/* A 32-bit argument's register: sometimes garbage above the low half (which must not count). */
static uint64_t arg32(struct call *c, uint32_t v)
{
	if (c->garbage_ok && one_in(8))
		return (rnd() & 0xffffffff00000000ull) | v;
	return v;
}

/* ------------------------------------------------------------------ call generators */

static void note_new_handle(Handle h, struct call *c)
{
	for (unsigned i = 0; i < ARRAY_SIZE(stale); i++)
		if (i < nstale && stale[i] == h) {
			finding(CK_RESULT, c->nr, rcOk, "%s gave handle %#x, a value that was closed before",
				call_name[c->nr], h);
			break;
		}
	if (is_open(h) || h == 0 || h == KN_HANDLE_SELF)
		finding(CK_RESULT, c->nr, rcOk, "%s gave handle %#x, which is 0, KN_HANDLE_SELF or already open",
			call_name[c->nr], h);
}

/* Reads a handle written by a successful call (the output was checked writable). */
static Handle out_handle(const struct call *c, unsigned arg) { return *(volatile Handle *)(uintptr_t)c->a[arg]; }

static void add_mdl_handle(struct call *c, unsigned arg, uint32_t rights, uint8_t kind, uint64_t size)
{
	Handle h = out_handle(c, arg);
	note_new_handle(h, c);
	struct hrec *r = new_hrec(h, KN_HANDLE_TYPE_MDL, rights, c->nr);
	if (r) {
		r->mdl_kind = kind;
		r->mdl_size = size;
	} else {
		KnHandleClose(h); /* (the model is full: not kept) */
		harness_calls++;
	}
}

static void done_nothing(struct call *c, int64_t rc)
{
	(void)c;
	(void)rc;
}

static void gen_nop(struct call *c)
{
	c->nr = NR_KnDebugNop;
	c->done = done_nothing;
}

static void gen_debug_write(struct call *c)
{
	uint32_t ch =
		one_in(8) ? (uint32_t)PICK(((const uint32_t[]){ 2, 7, 0xffffffffu, 0x80000000u })) : (uint32_t)below(2);
	c->nr = NR_KnDebugWrite;
	c->a[0] = arg32(c, ch);
	c->done = done_nothing;
	if (ch > 1) {
		c->must_fail = true;
		c->why = "unknown channel";
	}
	if (ch == 0 || ch > 1) {
		/* The console: a whole line of text, one of the pointers that must fail, or the trap
		 * (a failing call that prints the readable part of its buffer prints a "not ok"). */
		switch (below(8)) {
		case 0: {
			uint8_t *p = out_slice(c);
			uint64_t n = 8 + below(40);
			memset(p, '.', n);
			memcpy(p, "fuzz: ", 6);
			p[n - 1] = '\n';
			add_buf(c, (uint64_t)(uintptr_t)p, n, P_GOOD, DIR_IN);
			c->a[1] = (uint64_t)(uintptr_t)p;
			c->a[2] = n;
			if (child_mode && !c->must_fail) { /* (a child's lines would cut into its parent's) */
				c->a[2] = 65537;
				c->must_fail = true;
				c->why = "longer than 64 KiB";
			}
			return;
		}
		case 1: { /* the trap (twice a run: each time it springs is a line of the log) */
			if (trap_springs >= 2) {
				c->a[1] = 0;
				c->a[2] = 1 + below(100);
				add_buf(c, 0, c->a[2], P_NULL, DIR_IN);
				c->must_fail = true;
				c->why = "null";
				return;
			}
			trap_springs++;
			uint64_t len = 600 + below(2000);
			c->a[1] = (uint64_t)(uintptr_t)ar.trap + PAGE - 512;
			c->a[2] = len;
			c->must_fail = true;
			c->why = "running into a guard page";
			add_buf(c, c->a[1], len, P_STRADDLE_GUARD, DIR_IN);
			return;
		}
		case 2: /* too long */
			c->a[1] = (uint64_t)(uintptr_t)ar.in;
			c->a[2] = 65537 + below(1u << 20);
			c->must_fail = true;
			c->why = "longer than 64 KiB";
			return;
		default: {
			/* (none with a readable start: a kernel that printed that before failing would
			 * cut the fuzzer's own lines; the trap is for that) */
			static const uint8_t bad[] = { P_NULL,     P_LOW,   P_KERNEL,   P_KERNEL_TOP, P_NONCANON,
						       P_UNMAPPED, P_GUARD, P_RESERVED, P_WRAP };
			uint64_t n = 1 + below(300);
			c->a[2] = n;
			in_arg(c, 1, n, NULL, PICK(bad));
			return;
		}
		}
	}
	/* The dump sink: any buffer (its bytes go nowhere that matters), up to a page mostly. */
	uint64_t n = one_in(16) ? 65536 : below(3) ? below(256) : below(4 * PAGE);
	if (one_in(20)) {
		n = 65537 + below(100);
		c->must_fail = true;
		c->why = "longer than 64 KiB";
	}
	c->a[2] = n;
	if (n > 2 * PAGE) {
		c->a[1] = (uint64_t)(uintptr_t)ar.in + below(IN_PAGES * PAGE - MIN(n, IN_PAGES * PAGE) + 1);
		add_buf(c, c->a[1], n, P_GOOD, DIR_IN);
	} else {
		in_arg(c, 1, n, NULL, -1);
		if (n == 0 && c->must_fail && c->why && strcmp(c->why, "longer than 64 KiB")) {
			c->must_fail = false; /* (nothing is read: any pointer will do) */
			c->why = NULL;
		}
	}
}

static void done_stats(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	const KnMemStats *s = (const KnMemStats *)(uintptr_t)c->a[0];
	if (s->freePages > s->totalPages || s->commitCharge > s->commitLimit || s->tasks == 0 || s->threads == 0)
		finding(CK_RESULT, c->nr, rcOk,
			"KnDebugGetStats: free %llu of %llu pages, charge %llu of %llu, %llu tasks",
			(unsigned long long)s->freePages, (unsigned long long)s->totalPages,
			(unsigned long long)s->commitCharge, (unsigned long long)s->commitLimit,
			(unsigned long long)s->tasks);
}

static void gen_get_stats(struct call *c)
{
	c->nr = NR_KnDebugGetStats;
	out_arg(c, 0, sizeof(KnMemStats), -1);
	c->done = done_stats;
}

/* Children a call may make: kinds that end by themselves, mostly; a sleeper now and then. */
static const char *child_program(unsigned *kind, bool *never_ends)
{
	*never_ends = false;
	unsigned k = below(ARRAY_SIZE(fc_kinds));
	if (child_mode && fc_kinds[k].how == FC_SLEEP)
		k = 0;
	*kind = k;
	*never_ends = fc_kinds[k].how == FC_SLEEP;
	return "fuzzchild";
}

static int free_child(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (!children[i].live)
			return i;
	return -1;
}

static void done_create(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	Handle h = out_handle(c, 3);
	note_new_handle(h, c);
	int i = (int)c->x[0];
	struct hrec *r = i >= 0 ? new_hrec(h, KN_HANDLE_TYPE_TASK, ALL_TASK_RIGHTS, c->nr) : NULL;
	if (!r) { /* not one the fuzzer can keep: it ends with its handle */
		KnHandleClose(h);
		harness_calls++;
		return;
	}
	r->child = i;
	children[i] = (struct child){ .live = true, .phase = CP_CREATED, .kind = (int)c->x[1], .never_ends = c->x[2] };
}

static void gen_task_create(struct call *c)
{
	static char name[KN_TASK_NAME_MAX + 1];
	unsigned kind;
	bool never_ends;
	int idx = free_child();
	const char *program = child_program(&kind, &never_ends);
	int flags = one_in(3) ? KN_TASK_DUMPABLE : 0;
	if (one_in(6))
		flags |= KN_TASK_PRIVILEGED;
	if (one_in(12)) {
		flags |= 4 << below(29); /* unknown */
		c->must_fail = true;
		c->why = "unknown flags";
	}
	if ((flags & KN_TASK_PRIVILEGED) && !privileged) {
		c->must_fail = true;
		c->why = c->why ? c->why : "PRIVILEGED asked by an unprivileged task";
	}
	c->nr = NR_KnTaskCreate;
	c->garbage_ok = true;
	if (fc_kinds[kind].how == FC_EXIT && one_in(2))
		ksnprintf(name, sizeof(name), "fc-exit-%u", (uint32_t)rnd());
	else
		ksnprintf(name, sizeof(name), "fc-%s", fc_kinds[kind].name);
	str_arg(c, 0, name, true);
	/* The program: ours mostly; a missing, malformed or over-long name now and then. */
	static const char *const programs[] = { "no-such-program", "bad_wx", "bad_magic", "bad_entry", "" };
	const char *prog = below(5) ? program : PICK(programs);
	if (prog != program) {
		c->must_fail = true;
		c->why = c->why ? c->why : "no such program, or not a valid one";
	}
	str_arg(c, 1, prog, false);
	c->a[2] = arg32(c, (uint32_t)flags);
	out_arg(c, 3, sizeof(Handle), -1);
	/* At most MAX_CHILDREN alive: past that only creations that must fail. */
	if (idx < 0 && !c->must_fail) {
		c->a[1] = 0;
		c->b[1].p = 0;
		c->b[1].kind = P_NULL;
		c->must_fail = true;
		c->why = "null program";
	}
	c->x[0] = (uint64_t)idx;
	c->x[1] = kind;
	c->x[2] = never_ends;
	c->done = done_create;
}

static void done_resume(struct call *c, int64_t rc)
{
	struct hrec *r = (struct hrec *)(uintptr_t)c->x[0];
	if (rc == rcOk && r && r->live && r->child >= 0)
		children[r->child].phase = CP_RUNNING;
}

static void gen_resume(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnTaskResume;
	c->a[0] = arg32(c, pick_task(c, 0, false, &r));
	c->garbage_ok = true;
	c->x[0] = (uint64_t)(uintptr_t)r;
	c->done = done_resume;
}

static void done_get_state(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	int s = *(volatile int *)(uintptr_t)c->a[1];
	if (s != KN_TASK_STATE_CREATED && s != KN_TASK_STATE_RUNNING && s != KN_TASK_STATE_FROZEN &&
	    s != KN_TASK_STATE_EXITED)
		finding(CK_RESULT, c->nr, rcOk, "KnTaskGetState gave state %#x", s);
	struct hrec *r = (struct hrec *)(uintptr_t)c->x[0];
	if (r && r->live && r->child >= 0 && (s == KN_TASK_STATE_FROZEN || s == KN_TASK_STATE_EXITED))
		children[r->child].phase = s == KN_TASK_STATE_FROZEN ? CP_FROZEN : CP_EXITED;
	if (c->a[0] == KN_HANDLE_SELF && s != KN_TASK_STATE_RUNNING)
		finding(CK_RESULT, c->nr, rcOk, "KnTaskGetState(KN_HANDLE_SELF) gave %#x, not RUNNING", s);
}

static void gen_get_state(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnTaskGetState;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_task(c, 0, false, &r));
	out_arg(c, 1, sizeof(int), -1);
	c->x[0] = (uint64_t)(uintptr_t)r;
	c->done = done_get_state;
}

static void gen_wait(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnTaskWait;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_task(c, 0, false, &r));
	int states = (int)(1 + below(15));
	uint64_t timeout = PICK(((const uint64_t[]){ 0, 0, 1, 1000, 100000, 1000000 }));
	switch (below(8)) {
	case 0:
		states = (int)(below(2) ? 0 : 0x10 << below(27));
		c->must_fail = true;
		c->why = "no known state";
		break;
	case 1:
		states = 0xf;
		timeout = ~0ull; /* any state will do: returns at once */
		break;
	default:
		break;
	}
	c->a[1] = arg32(c, (uint32_t)states);
	c->a[2] = timeout;
	c->done = done_nothing;
}

static void done_terminate(struct call *c, int64_t rc)
{
	struct hrec *r = (struct hrec *)(uintptr_t)c->x[0];
	if (rc == rcOk && r && r->live && r->child >= 0)
		children[r->child].phase = CP_EXITED;
}

/* A call `nr` on a task handle that needs `right` (mostly live children: `children`), which
 * must fail when the handle picked lacks it; the handle's record in x[0] for `done`. */
static struct hrec *gen_task_right(struct call *c, int nr, uint32_t right, bool children, const char *why,
				   void (*done)(struct call *, int64_t))
{
	struct hrec *r;
	c->nr = nr;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_task(c, right, children, &r));
	if ((right == KN_RIGHT_QUOTA && c->a[0] == KN_HANDLE_SELF) || (r && !(r->rights & right))) {
		c->must_fail = true;
		c->why = why;
	}
	c->x[0] = (uint64_t)(uintptr_t)r;
	c->done = done;
	return r;
}

static void gen_terminate(struct call *c)
{
	gen_task_right(c, NR_KnTaskTerminate, KN_RIGHT_TERMINATE, true, "no TERMINATE right", done_terminate);
}

static void done_exit_code(struct call *c, int64_t rc)
{
	(void)c;
	(void)rc;
}

static void gen_get_exit_code(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnTaskGetExitCode;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_task(c, 0, false, &r));
	out_arg(c, 1, sizeof(int), -1);
	c->done = done_exit_code;
}

static void gen_self(struct call *c)
{
	c->nr = NR_KnTaskSelf;
	c->done = done_nothing;
}

/* Close: never the last handle that can end a child that runs until it is ended (it would
 * run for ever), unless the child cannot run (created, frozen, exited). */
static bool may_close(const struct hrec *r)
{
	if (r->type != KN_HANDLE_TYPE_TASK || r->child < 0)
		return true;
	const struct child *ch = &children[r->child];
	if (!ch->never_ends || ch->phase == CP_CREATED || ch->phase == CP_FROZEN || ch->phase == CP_EXITED)
		return true;
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (&handles[i] != r && handles[i].live && handles[i].type == KN_HANDLE_TYPE_TASK &&
		    handles[i].child == r->child && (handles[i].rights & KN_RIGHT_TERMINATE))
			return true;
	return !(r->rights & KN_RIGHT_TERMINATE);
}

static void done_close(struct call *c, int64_t rc)
{
	struct hrec *r = (struct hrec *)(uintptr_t)c->x[0];
	if (rc != rcOk || !r || !r->live)
		return;
	int child = r->type == KN_HANDLE_TYPE_TASK ? r->child : OBJ_NONE;
	forget_handle(r);
	if (child >= 0) { /* the child goes on without us once no handle of ours reaches it */
		for (unsigned i = 0; i < MAX_HANDLES; i++)
			if (handles[i].live && handles[i].type == KN_HANDLE_TYPE_TASK && handles[i].child == child)
				return;
		children[child].live = false;
	}
}

static void gen_close(struct call *c)
{
	c->nr = NR_KnHandleClose;
	c->garbage_ok = true;
	/* (every draw made whatever is chosen: which children may be let go of depends on what
	 * they were seen doing, which depends on timing, and must not shift the sequence) */
	struct hrec *r = below(4) ? random_hrec(-1) : NULL;
	Handle bad = bad_handle_value();
	bool self = one_in(8);
	if (r && !may_close(r))
		r = NULL;
	if (r) {
		c->a[0] = arg32(c, r->h);
	} else {
		c->a[0] = arg32(c, self ? KN_HANDLE_SELF : bad);
		c->must_fail = true;
		c->why = "a handle that is not open (or KN_HANDLE_SELF)";
	}
	c->x[0] = (uint64_t)(uintptr_t)r;
	c->done = done_close;
}

static void done_transfer(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	Handle remote = out_handle(c, 3);
	struct hrec *target = (struct hrec *)(uintptr_t)c->x[0], *src = (struct hrec *)(uintptr_t)c->x[1];
	bool to_self = c->a[0] == KN_HANDLE_SELF || (target && target->child == OBJ_SELF);
	if (!to_self) {
		foreign[nforeign++ % ARRAY_SIZE(foreign)] = remote;
		return;
	}
	note_new_handle(remote, c);
	uint8_t type = src ? src->type : KN_HANDLE_TYPE_TASK;
	struct hrec *r = new_hrec(remote, type, (uint32_t)c->x[2], c->nr);
	if (!r) {
		KnHandleClose(remote);
		harness_calls++;
		return;
	}
	if (src) {
		r->child = src->child;
		r->mdl_kind = src->mdl_kind;
		r->mdl_size = src->mdl_size;
	} else {
		r->child = OBJ_SELF; /* a handle to ourselves */
	}
}

static void gen_transfer(struct call *c)
{
	struct hrec *target = NULL, *src = NULL;
	c->nr = NR_KnHandleTransfer;
	c->garbage_ok = true;
	/* The target: ourselves, a child, or a bad one. (Child fuzzers are never among the
	 * children the calls see: nothing changes their handle tables under them.) */
	switch (below(6)) {
	case 0:
		c->a[0] = KN_HANDLE_SELF;
		break;
	case 1:
	case 2:
	case 3: {
		struct hrec *t = random_hrec(KN_HANDLE_TYPE_TASK);
		if (t) {
			target = t;
			c->a[0] = t->h;
			break;
		}
	}
		/* fall through */
	default:
		c->a[0] = pick_task(c, 0, false, &target);
		break;
	}
	/* What: one of ours, ourselves, or a bad one. */
	uint32_t have = 0;
	switch (below(6)) {
	case 0:
		c->a[1] = KN_HANDLE_SELF;
		have = SELF_TASK_RIGHTS;
		break;
	case 1:
		c->a[1] = bad_handle_value();
		c->must_fail = true;
		c->why = "a handle that is not open";
		break;
	default:
		src = random_hrec(-1);
		if (src) {
			c->a[1] = src->h;
			have = src->rights;
		} else {
			c->a[1] = KN_HANDLE_SELF;
			have = SELF_TASK_RIGHTS;
		}
		break;
	}
	uint32_t rights = have & (uint32_t)rnd();
	if (one_in(8))
		rights |= (uint32_t)1 << below(32);
	/* Never give the fuzzer a handle to itself that could end or freeze it... it would not
	 * use one (pick_task), but a child given one could. */
	if (c->a[1] == KN_HANDLE_SELF || (src && src->child == OBJ_SELF))
		if (!(c->a[0] == KN_HANDLE_SELF || (target && target->child == OBJ_SELF)))
			rights &= ~(uint32_t)(KN_RIGHT_FREEZE | KN_RIGHT_TERMINATE);
	if (rights & ~have) { /* (judged on the rights passed, after that mask) */
		c->must_fail = true;
		c->why = c->why ? c->why : "rights the handle does not have";
	}
	c->a[1] = arg32(c, (uint32_t)c->a[1]);
	c->a[2] = arg32(c, rights);
	out_arg(c, 3, sizeof(Handle), -1);
	c->x[0] = (uint64_t)(uintptr_t)target;
	c->x[1] = (uint64_t)(uintptr_t)src;
	c->x[2] = rights;
	c->done = done_transfer;
}

static void done_enumerate(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	int type = *(volatile int *)(uintptr_t)c->a[2];
	if (type != KN_HANDLE_TYPE_TASK && type != KN_HANDLE_TYPE_MDL)
		finding(CK_RESULT, c->nr, rcOk, "KnHandleEnumerate gave type %d", type);
}

static void gen_enumerate(struct call *c)
{
	c->nr = NR_KnHandleEnumerate;
	c->a[0] = one_in(8) ? rnd() >> below(64) : below(live_handles() + nbaseline_handles + 2);
	out_arg(c, 1, sizeof(Handle), -1);
	out_arg(c, 2, sizeof(int), -1);
	out_arg(c, 3, sizeof(rtl_uint32_t), -1);
	c->done = done_enumerate;
}

static void done_allocate(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	uint64_t out = *(volatile uint64_t *)(uintptr_t)c->a[3], size = c->a[1];
	int flags = (int)(uint32_t)c->a[2];
	uint64_t low = (flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0, high = (flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0;
	if ((out & (PAGE - 1)) || out < PAGE + low || out + size + high > USER_TOP || (c->a[0] && out != c->a[0])) {
		finding(CK_RESULT, c->nr, rcOk, "KnVmAllocateEx(%#llx, %#llx, %#x) gave %#llx",
			(unsigned long long)c->a[0], (unsigned long long)size, flags, (unsigned long long)out);
		return;
	}
	harness_calls++;
	if (KnVmQuery((void *)(uintptr_t)out, &qinfo) != rcOk || (uint64_t)(uintptr_t)qinfo.regionBase != out - low ||
	    qinfo.regionSize != size + low + high ||
	    qinfo.state != ((flags & VMM_FLAG_COMMIT) ? VMM_STATE_COMMITTED : VMM_STATE_RESERVED) ||
	    ((flags & VMM_FLAG_LOCKED) && !qinfo.resident))
		finding(CK_RESULT, c->nr, rcOk,
			"KnVmAllocateEx(%#llx, %#llx, %#x) = %#llx: KnVmQuery says region %#llx size %#llx state %d "
			"resident %d",
			(unsigned long long)c->a[0], (unsigned long long)size, flags, (unsigned long long)out,
			(unsigned long long)(uintptr_t)qinfo.regionBase, (unsigned long long)qinfo.regionSize,
			qinfo.state, qinfo.resident);
	if (!new_region(out, size, flags, RK_ANON)) {
		KnVmUnmap((void *)(uintptr_t)out, size);
		harness_calls++;
	}
}

static void gen_allocate(struct call *c)
{
	c->nr = NR_KnVmAllocateEx;
	c->garbage_ok = true;
	int flags = RES | any_protection() | any_cache();
	uint64_t size = small_size();
	switch (below(8)) {
	case 0:
	case 1:
		break; /* reserved */
	case 2:
	case 3:
		flags |= COM;
		if (one_in(3))
			size = huge_size(); /* lazy: only charged (or refused) */
		break;
	case 4:
		flags |= COM | VMM_FLAG_LOCKED;
		if (one_in(4))
			size = huge_size(); /* refused: past the limit */
		break;
	case 5:
		flags |= VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD;
		size = (2 + below(32)) * PAGE;
		break;
	case 6:
		size = one_in(2) ? (1ull << (30 + below(12))) : small_size(); /* big reservations cost nothing */
		break;
	default:
		flags |= one_in(2) ? COM : 0;
		break;
	}
	if (one_in(3))
		flags |= VMM_FLAG_LOW_GUARD;
	if (one_in(3))
		flags |= VMM_FLAG_HIGH_GUARD;
	/* Something the contract refuses, now and then. */
	switch (below(14)) {
	case 0:
		flags &= ~RES;
		c->why = "no RESERVE";
		break;
	case 1:
		flags = (flags & ~VMM_FLAG_RWX_MASK) | bad_protection();
		c->why = "bad protection";
		break;
	case 2:
		flags |= VMM_FLAG_WRITE_COMBINE | VMM_FLAG_CACHE_DISABLE;
		c->why = "two cache modes";
		break;
	case 3:
		flags = (flags | VMM_FLAG_LOCKED) & ~COM;
		c->why = "LOCKED without COMMIT";
		break;
	case 4:
		flags |= VMM_FLAG_GROW_DOWN | COM;
		c->why = "GROW_DOWN with COMMIT";
		break;
	case 5:
		flags |= unknown_bits();
		c->why = "unknown flag bits";
		break;
	case 6:
		size = below(2) ? 0 : size + 1 + below(PAGE - 1);
		c->why = "size 0 or unaligned";
		break;
	default:
		break;
	}
	if (c->why)
		c->must_fail = true;
	if ((flags & VMM_FLAG_LOCKED) && size > SMALL_PAGES * PAGE && size <= commit_limit_pages * PAGE)
		size = (size & (PAGE - 1)) | small_size(); /* (never gigabytes of frames) */
	uint64_t addr = 0;
	switch (below(6)) {
	case 0:
	case 1:
		break;
	case 2:
	case 3:
		addr = ZONE + below(ZONE_SIZE / PAGE) * PAGE;
		break;
	case 4: { /* over (or next to) a region of ours */
		struct region *r = random_region();
		addr = r ? r->base + (below(3) - 1) * PAGE : ZONE;
		break;
	}
	default: {
		static const uint64_t where[] = {
			0x400000ull, 0x1000ull, USER_TOP - PAGE, USER_TOP, 0xffff800000000000ull, 0x0000800000000000ull,
			0x1234ull,   ARENA
		};
		addr = PICK(where);
		break;
	}
	}
	c->a[0] = addr;
	c->a[1] = size;
	c->a[2] = arg32(c, (uint32_t)flags);
	out_arg(c, 3, sizeof(void *), -1);
	c->wa[c->nw] = addr ? addr - PAGE : ZONE;
	c->wn[c->nw++] = MIN(size, 64 * PAGE) + 2 * PAGE;
	if (live_regions() >= MAX_REGIONS - 2 && !c->must_fail) {
		c->a[2] = arg32(c, (uint32_t)(flags & ~RES));
		c->must_fail = true;
		c->why = "no RESERVE";
	}
	c->done = done_allocate;
}

static void gen_commit(struct call *c)
{
	uint64_t a, s;
	c->nr = NR_KnVmCommit;
	c->garbage_ok = true;
	vm_range(c, &a, &s);
	int flags = PICK(((const int[]){ 0, VMM_FLAG_COMMIT, VMM_FLAG_LOCKED, VMM_FLAG_COMMIT | VMM_FLAG_LOCKED }));
	if (one_in(10)) {
		flags |= one_in(2) ? VMM_FLAG_READ : unknown_bits();
		c->must_fail = true;
		c->why = c->why ? c->why : "other flag bits";
	}
	if ((flags & VMM_FLAG_LOCKED) && s > SMALL_PAGES * PAGE && s <= commit_limit_pages * PAGE)
		s = (s & (PAGE - 1)) | small_size(); /* (never gigabytes of frames) */
	c->a[0] = a;
	c->a[1] = s;
	c->a[2] = arg32(c, (uint32_t)flags);
	c->done = done_nothing;
}

static void gen_decommit(struct call *c)
{
	uint64_t a, s;
	c->nr = NR_KnVmDecommit;
	vm_range(c, &a, &s);
	c->a[0] = a;
	c->a[1] = s;
	c->done = done_nothing;
}

static void gen_protect(struct call *c)
{
	uint64_t a, s;
	c->nr = NR_KnVmProtect;
	c->garbage_ok = true;
	vm_range(c, &a, &s);
	int prot = any_protection();
	if (one_in(8)) {
		prot = one_in(2) ? bad_protection()
				 : prot | (one_in(2) ? any_cache() | VMM_FLAG_WRITE_BACK : unknown_bits());
		c->must_fail = true;
		c->why = c->why ? c->why : "not a protection";
	}
	c->a[0] = a;
	c->a[1] = s;
	c->a[2] = arg32(c, (uint32_t)prot);
	c->done = done_nothing;
}

static void done_unmap(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	for (unsigned i = 0; i < MAX_REGIONS; i++) {
		struct region *r = &regions[i];
		if (r->live && c->a[0] <= r->base && c->a[0] + c->a[1] >= r->base + r->size)
			r->live = false;
	}
}

static void gen_unmap(struct call *c)
{
	uint64_t a, s;
	c->nr = NR_KnVmUnmap;
	vm_range(c, &a, &s);
	c->a[0] = a;
	c->a[1] = s;
	c->done = done_unmap;
}

/* A KnVmInfo that KnVmQuery or KnTaskVmQuery gave for `addr`: a state, a run inside its region. */
static void check_info(struct call *c, uint64_t addr, const KnVmInfo *i)
{
	uint64_t page = addr & ~(PAGE - 1), base = (uint64_t)(uintptr_t)i->regionBase;
	if (i->state < VMM_STATE_FREE || i->state > VMM_STATE_GUARD || !i->runSize || (i->runSize & (PAGE - 1)) ||
	    page < base || page >= base + i->regionSize || page + i->runSize > base + i->regionSize)
		finding(CK_RESULT, c->nr, rcOk, "%s(%#llx): region %#llx size %#llx state %d run %#llx",
			call_name[c->nr], (unsigned long long)addr, (unsigned long long)base,
			(unsigned long long)i->regionSize, i->state, (unsigned long long)i->runSize);
}

static void done_query(struct call *c, int64_t rc)
{
	if (rc == rcOk)
		check_info(c, c->a[0], (const KnVmInfo *)(uintptr_t)c->a[1]);
}

/* An address to query: in or near one of our regions, a hostile one (must_fail: not in
 * the user half), the lazy buffer, or anywhere in the user half. */
static uint64_t query_addr(struct call *c)
{
	struct region *r = random_region();
	uint64_t a;
	switch (below(8)) {
	case 0:
	case 1:
	case 2:
		a = r ? r->base + below(r->size / PAGE + 2) * PAGE + below(PAGE) - PAGE : ZONE;
		break;
	case 3: {
		static const uint64_t where[] = {
			0, 0xfff, USER_TOP, USER_TOP - 1, 0xffffffff80000000ull, 0x0000800000000000ull, ~0ull
		};
		a = PICK(where);
		if (a < PAGE || a >= USER_TOP) {
			c->must_fail = true;
			c->why = "not in the user half";
		}
		break;
	}
	case 4:
		a = (uint64_t)(uintptr_t)ar.lazy + below(4 * PAGE);
		break;
	default:
		a = PAGE + below(USER_TOP - PAGE);
		break;
	}
	return a;
}

static void gen_query(struct call *c)
{
	c->nr = NR_KnVmQuery;
	c->a[0] = query_addr(c);
	out_arg(c, 1, sizeof(KnVmInfo), -1);
	c->done = done_query;
}

static void done_mdl_create(struct call *c, int64_t rc)
{
	if (rc == rcOk)
		add_mdl_handle(c, (unsigned)c->x[0], ALL_MDL_RIGHTS, (uint8_t)c->x[1], c->x[2]);
}

static void gen_mdl_create(struct call *c)
{
	c->nr = NR_KnPmmMdlCreate;
	c->garbage_ok = true;
	/* Any byte size is an MDL's size (whole pages are made); 0 is refused. */
	uint64_t size = below(4) ? small_size() - below(2) * below(PAGE) : huge_size();
	if (one_in(12)) {
		size = 0;
		c->must_fail = true;
		c->why = "size 0";
	}
	c->a[0] = size;
	c->a[1] = arg32(c, (uint32_t)mdl_flags(c));
	out_arg(c, 2, sizeof(Handle), -1);
	c->x[0] = 2;
	c->x[1] = MK_RAM;
	c->x[2] = size;
	c->done = done_mdl_create;
}

static void gen_mdl_from_buf(struct call *c)
{
	c->nr = NR_KnPmmMdlCreateFromBuf;
	c->garbage_ok = true;
	uint64_t size = below(3) ? 1 + below(2 * PAGE) : below(2) ? small_size() : huge_size();
	if (one_in(12)) {
		size = 0;
		c->must_fail = true;
		c->why = "size 0";
	}
	c->a[1] = size;
	if (size > 2 * PAGE && size <= IN_PAGES * PAGE) {
		c->a[0] = (uint64_t)(uintptr_t)ar.in;
		add_buf(c, c->a[0], size, P_GOOD, DIR_IN);
	} else if (size > IN_PAGES * PAGE) {
		c->a[0] = (uint64_t)(uintptr_t)ar.in; /* refused: past the limit, or runs off the arena */
		c->must_fail = true;
		c->why = c->why ? c->why : "larger than the commit limit or the buffer";
		c->wa[c->nw] = c->a[0];
		c->wn[c->nw++] = IN_PAGES * PAGE + 2 * PAGE;
	} else {
		in_arg(c, 0, size, NULL, -1);
	}
	c->a[2] = arg32(c, (uint32_t)mdl_flags(c));
	out_arg(c, 3, sizeof(Handle), -1);
	c->x[0] = 3;
	c->x[1] = MK_RAM;
	c->x[2] = size;
	c->done = done_mdl_create;
}

static void gen_mdl_from_vm(struct call *c)
{
	c->nr = NR_KnPmmMdlCreateFromVm;
	c->garbage_ok = true;
	uint64_t a, s;
	switch (below(6)) {
	case 0: /* the arena's read-write pages (lazy ones too: they become resident) */
		a = (uint64_t)(uintptr_t)(below(2) ? ar.out : ar.lazy) + below(2) * PAGE;
		s = (1 + below(2)) * PAGE;
		c->wa[c->nw] = a;
		c->wn[c->nw++] = s;
		break;
	default:
		vm_range(c, &a, &s);
		break;
	}
	/* FromVm makes the range resident: never a big one that could succeed. */
	if (s > SMALL_PAGES * PAGE && s < (1ull << 47))
		s = (s & (PAGE - 1)) | small_size();
	c->a[0] = a;
	c->a[1] = s;
	c->a[2] = arg32(c, (uint32_t)mdl_flags(c));
	out_arg(c, 3, sizeof(Handle), -1);
	c->x[0] = 3;
	c->x[1] = MK_RAM;
	c->x[2] = s;
	c->done = done_mdl_create;
}

static void gen_mdl_from_phys(struct call *c)
{
	c->nr = NR_KnPmmMdlCreateFromPhys;
	c->garbage_ok = true;
	/* Device pages whose reads do nothing (the local APIC, the I/O APIC, the HPET); RAM,
	 * unaligned, empty, wrapping or past any physical address width: refused. */
	static const uint64_t devices[] = { 0xfee00000ull, 0xfec00000ull, 0xfed00000ull };
	uint64_t pa = PICK(devices), size = PAGE;
	switch (below(8)) {
	case 0:
		pa = below(2) ? 0x200000ull : 0x100000ull * (1 + below(16)); /* RAM */
		c->why = "RAM";
		break;
	case 1:
		pa += 1 + below(PAGE - 1);
		c->why = "unaligned";
		break;
	case 2:
		size = 0;
		c->why = "size 0";
		break;
	case 3:
		pa = below(2) ? 1ull << 52 : 0xfffffffffffff000ull;
		size = 2 * PAGE;
		c->why = "past the physical address width, or wrapping";
		break;
	default:
		break;
	}
	if (c->why)
		c->must_fail = true;
	if (!privileged && !c->must_fail) {
		c->must_fail = true;
		c->why = "not privileged";
	}
	c->a[0] = pa;
	c->a[1] = size;
	c->a[2] = arg32(c, (uint32_t)(one_in(4) ? mdl_flags(c) : VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE));
	out_arg(c, 3, sizeof(Handle), -1);
	c->x[0] = 3;
	c->x[1] = MK_DEV;
	c->x[2] = size;
	c->done = done_mdl_create;
}

static void done_clone(struct call *c, int64_t rc)
{
	struct hrec *src = (struct hrec *)(uintptr_t)c->x[0];
	if (rc != rcOk)
		return;
	if (!src) {
		finding(CK_RESULT, c->nr, rcOk, "KnPmmMdlClone of a handle that is not an open MDL handle succeeded");
		return;
	}
	add_mdl_handle(c, 1, src->rights, src->mdl_kind, src->mdl_size);
}

static void gen_mdl_clone(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnPmmMdlClone;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_mdl(c, &r));
	if (r && !(r->rights & KN_RIGHT_CLONE)) {
		c->must_fail = true;
		c->why = "no CLONE right";
	}
	out_arg(c, 1, sizeof(Handle), -1);
	c->x[0] = (uint64_t)(uintptr_t)r;
	c->done = done_clone;
}

static void done_map(struct call *c, int64_t rc)
{
	struct hrec *src = (struct hrec *)(uintptr_t)c->x[0];
	if (rc != rcOk)
		return;
	uint64_t out = *(volatile uint64_t *)(uintptr_t)c->a[5], size = c->a[2];
	if ((out & (PAGE - 1)) || out < PAGE || out + size > USER_TOP || (c->a[3] && out != c->a[3]))
		finding(CK_RESULT, c->nr, rcOk, "KnPmmMdlMap(size %#llx at %#llx) gave %#llx", (unsigned long long)size,
			(unsigned long long)c->a[3], (unsigned long long)out);
	uint8_t kind = src && src->mdl_kind == MK_DEV ? RK_DEV : RK_MDL;
	if (!new_region(out, size, (int)(uint32_t)c->a[4], kind)) {
		KnVmUnmap((void *)(uintptr_t)out, size);
		harness_calls++;
	}
}

static void gen_mdl_map(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnPmmMdlMap;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_mdl(c, &r));
	uint64_t pages = r && r->mdl_size ? (r->mdl_size + PAGE - 1) / PAGE : 1 + below(4);
	uint64_t off = below(pages), n = 1 + below(pages - off);
	switch (below(10)) {
	case 0:
		n = pages - off + 1 + below(4);
		c->why = "past the MDL's end";
		break;
	case 1:
		off = pages + below(4);
		c->why = "offset past the MDL's end";
		break;
	case 2:
		n = 0;
		c->why = "size 0";
		break;
	case 3:
		off = ~0ull / PAGE - below(4);
		c->why = "a wrapping range";
		break;
	default:
		break;
	}
	if (c->why && r && r->mdl_size)
		c->must_fail = true;
	else
		c->why = NULL;
	c->a[1] = off * PAGE;
	c->a[2] = n * PAGE;
	if (one_in(12)) {
		c->a[below(2) + 1] += 1 + below(PAGE - 1);
		c->must_fail = true;
		c->why = "unaligned offset or size";
	}
	uint64_t addr = 0;
	if (one_in(3)) {
		struct region *reg = random_region();
		addr = one_in(2) || !reg ? ZONE + below(ZONE_SIZE / PAGE) * PAGE : reg->base;
	} else if (one_in(10)) {
		addr = PICK(((const uint64_t[]){ 0x400000ull, USER_TOP - PAGE, 0xffff800000000000ull, 0x1001ull }));
	}
	c->a[3] = addr;
	int flags = any_protection();
	if (one_in(4))
		flags |= any_cache();
	if (one_in(10)) {
		flags = one_in(2) ? bad_protection() : flags | unknown_bits() | (one_in(2) ? VMM_FLAG_COMMIT : 0);
		c->must_fail = true;
		c->why = c->why ? c->why : "bad flags";
	}
	if (r && (flags & VMM_FLAG_WRITE) && !(r->rights & KN_RIGHT_MAP_WRITE)) {
		c->must_fail = true;
		c->why = c->why ? c->why : "writable without MAP_WRITE";
	}
	if (r && !(r->rights & KN_RIGHT_MAP_READ)) {
		c->must_fail = true;
		c->why = c->why ? c->why : "no MAP_READ";
	}
	if (live_regions() >= MAX_REGIONS - 2 && !c->must_fail) {
		c->a[2] = 0;
		c->must_fail = true;
		c->why = "size 0";
	}
	c->a[4] = arg32(c, (uint32_t)flags);
	out_arg(c, 5, sizeof(void *), -1);
	c->wa[c->nw] = addr ? addr : ZONE;
	c->wn[c->nw++] = 4 * PAGE;
	c->x[0] = (uint64_t)(uintptr_t)r;
	c->done = done_map;
}

static void done_get_size(struct call *c, int64_t rc)
{
	struct hrec *r = (struct hrec *)(uintptr_t)c->x[0];
	if (rc != rcOk || !r || !r->mdl_size)
		return;
	uint64_t size = *(volatile uint64_t *)(uintptr_t)c->a[1];
	if (size != r->mdl_size)
		finding(CK_RESULT, c->nr, rcOk, "KnPmmMdlGetSize gave %#llx for an MDL made with size %#llx",
			(unsigned long long)size, (unsigned long long)r->mdl_size);
}

static void gen_get_size(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnPmmMdlGetSize;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_mdl(c, &r));
	out_arg(c, 1, sizeof(rtl_size_t), -1);
	c->x[0] = (uint64_t)(uintptr_t)r;
	c->done = done_get_size;
}

static void done_usage_map(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	uint64_t n = *(volatile uint64_t *)(uintptr_t)c->a[5], max = MIN(c->a[3], 256);
	const volatile uint64_t *counts = (const volatile uint64_t *)(uintptr_t)c->a[2];
	uint64_t zero = n;
	for (uint64_t i = 0; i < n && i < max && zero == n; i++)
		if (counts[i] == 0)
			zero = i;
	if (n > max || zero != n) {
		char what[200];
		describe(what, sizeof(what), c);
		finding(CK_RESULT, c->nr, rcOk, "%s gave %llu counts (at most %llu asked), count %llu of them 0", what,
			(unsigned long long)n, (unsigned long long)max, (unsigned long long)zero);
	}
}

static void gen_usage_map(struct call *c)
{
	c->nr = NR_KnPmmMdlGetUsageMap;
	struct region *r = random_region();
	uint64_t a = r ? r->base : (uint64_t)(uintptr_t)ar.lazy;
	switch (below(10)) {
	case 0:
		a += PAGE;
		break;
	case 1:
		a = ZONE + below(ZONE_SIZE / PAGE) * PAGE;
		break;
	case 2:
		a = PICK(((const uint64_t[]){ 0, 0xffffffff80000000ull, USER_TOP, (uint64_t)(uintptr_t)ar.out + 8 }));
		break;
	case 3:
		a = (uint64_t)(uintptr_t)(below(2) ? ar.lazy : ar.out);
		break;
	default:
		break;
	}
	/* What is there now (the model only remembers where regions began). */
	uint64_t pages = 0;
	bool base = false;
	harness_calls++;
	if (a >= PAGE && a < USER_TOP && KnVmQuery((void *)(uintptr_t)a, &qinfo) == rcOk &&
	    qinfo.state != VMM_STATE_FREE) {
		uint64_t low = (qinfo.flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0,
			 high = (qinfo.flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0;
		base = a == (uint64_t)(uintptr_t)qinfo.regionBase + low;
		pages = (qinfo.regionSize - low - high) / PAGE;
	}
	if (!base) {
		c->must_fail = true;
		c->why = "not a region's usable base";
	}
	uint64_t start = below(pages + 1);
	if (one_in(10)) {
		start = pages + 1 + below(1000);
		c->must_fail = true;
		c->why = c->why ? c->why : "startPage past the end";
	}
	uint64_t want = PICK(((const uint64_t[]){ 1, 2, 3, 16, 256, 300, 1ull << 40 }));
	if (one_in(12)) {
		want = 0;
		c->must_fail = true;
		c->why = c->why ? c->why : "countersNum 0";
	}
	c->a[0] = a;
	c->a[1] = start;
	c->a[3] = want;
	out_arg(c, 2, MIN(want, 256) * 8, -1);
	out_arg(c, 4, sizeof(rtl_bool), -1);
	out_arg(c, 5, sizeof(rtl_size_t), -1);
	c->done = done_usage_map;
}

static void done_freeze(struct call *c, int64_t rc)
{
	struct hrec *r = (struct hrec *)(uintptr_t)c->x[0];
	if (rc == rcOk && r && r->live && r->child >= 0 && children[r->child].phase != CP_FROZEN &&
	    children[r->child].phase != CP_EXITED)
		children[r->child].phase = CP_FREEZING;
}

static void gen_freeze(struct call *c)
{
	gen_task_right(c, NR_KnTaskFreeze, KN_RIGHT_FREEZE, true, "no FREEZE right", done_freeze);
}

static void done_context(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	const KnThreadContext *t = (const KnThreadContext *)(uintptr_t)c->a[2];
	if ((t->cs & 3) != 3 || (t->ss & 3) != 3 || t->fsBase || t->gsBase)
		finding(CK_RESULT, c->nr, rcOk, "KnTaskGetThreadContext: cs %#llx ss %#llx fsBase %#llx gsBase %#llx",
			(unsigned long long)t->cs, (unsigned long long)t->ss, (unsigned long long)t->fsBase,
			(unsigned long long)t->gsBase);
}

static void gen_context(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnTaskGetThreadContext;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_task(c, KN_RIGHT_DUMP, false, &r));
	c->a[1] = one_in(4) ? rnd() >> below(64) : below(2);
	out_arg(c, 2, sizeof(KnThreadContext), -1);
	c->done = done_context;
}

static void done_next_region(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	uint64_t size = *(volatile uint64_t *)(uintptr_t)c->a[3];
	add_mdl_handle(c, 5, KN_RIGHT_MAP_READ, MK_REGION, size);
}

static void gen_next_region(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnTaskGetNextVmRegion;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_task(c, KN_RIGHT_DUMP, false, &r));
	c->a[1] = PICK(((const uint64_t[]){ 0, 0, 0x400000ull, 0x401000ull, 1ull << 30, USER_TOP, ~0ull }));
	out_arg(c, 2, sizeof(void *), -1);
	out_arg(c, 3, sizeof(rtl_size_t), -1);
	out_arg(c, 4, sizeof(int), -1);
	out_arg(c, 5, sizeof(Handle), -1);
	c->done = done_next_region;
}

/* A successful KnTaskSetQuota: KnTaskGetQuota gives back the limits that were set. */
static void done_set_quota(struct call *c, int64_t rc)
{
	struct hrec *r = (struct hrec *)(uintptr_t)c->x[0];
	KnQuota set, got, usage;
	if (rc != rcOk || !r || !r->live)
		return;
	memcpy(&set, (const void *)(uintptr_t)c->a[1], sizeof(set));
	harness_calls++;
	Retcode g = KnTaskGetQuota(r->h, &got, &usage);
	if (g != rcOk || memcmp(&set, &got, sizeof(set)))
		finding(CK_RESULT, c->nr, rcOk,
			"KnTaskSetQuota(%#x) set commit %#llx locked %#llx handles %#llx regions %#llx tasks %#llx; "
			"KnTaskGetQuota returned %d with %#llx %#llx %#llx %#llx %#llx",
			r->h, (unsigned long long)set.commitPages, (unsigned long long)set.lockedPages,
			(unsigned long long)set.handles, (unsigned long long)set.regions, (unsigned long long)set.tasks,
			g, (unsigned long long)got.commitPages, (unsigned long long)got.lockedPages,
			(unsigned long long)got.handles, (unsigned long long)got.regions,
			(unsigned long long)got.tasks);
}

static void gen_set_quota(struct call *c)
{
	KnQuota q;
	gen_task_right(c, NR_KnTaskSetQuota, KN_RIGHT_QUOTA, false, "no QUOTA right (KN_HANDLE_SELF never has it)",
		       done_set_quota);
	/* Each limit: none, generous, or tight (a child then meets it: rcOutOfMemory for its
	 * calls, an exception for its faults). */
	static const uint64_t limits[] = {
		KN_QUOTA_UNLIMITED, KN_QUOTA_UNLIMITED, 1ull << 20, 1ull << 40, 0, 1, 64, 4096
	};
	q = (KnQuota){ PICK(limits), PICK(limits), PICK(limits), PICK(limits), PICK(limits) };
	in_arg(c, 1, sizeof(q), &q, -1);
}

static void gen_get_quota(struct call *c)
{
	struct hrec *r;
	c->nr = NR_KnTaskGetQuota;
	c->garbage_ok = true;
	c->a[0] = arg32(c, pick_task(c, 0, false, &r));
	out_arg(c, 1, sizeof(KnQuota), -1);
	out_arg(c, 2, sizeof(KnQuota), -1);
	c->done = done_nothing;
}

static void done_task_query(struct call *c, int64_t rc)
{
	if (rc == rcOk)
		check_info(c, c->a[1], (const KnVmInfo *)(uintptr_t)c->a[2]);
}

/* KnTaskVmQuery: ourselves, a child (running, frozen or gone) or a bad handle, at the
 * addresses KnVmQuery gets (ours say little of a child's space, which is fine). */
static void gen_task_query(struct call *c)
{
	gen_task_right(c, NR_KnTaskVmQuery, KN_RIGHT_VM_READ, false, "no VM_READ right", done_task_query);
	c->a[1] = query_addr(c);
	out_arg(c, 2, sizeof(KnVmInfo), -1);
}

/* ------------------------------------------------------------------ KnTaskVm* */

/* The target of a KnTaskVm* call that changes a space: a child of ours (any state), or a
 * handle the call must refuse (no VM_OPERATION, a wrong type, not open). Never ourselves,
 * nor a task we did not create (a handle that reaches us could have come back through a
 * child): those are replaced by a handle that is not open. */
static void task_vm_target(struct call *c, int nr)
{
	/* Mostly a child's handle with the right, if there is one: the calls then do things. */
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		n += handles[i].live && handles[i].type == KN_HANDLE_TYPE_TASK && handles[i].child >= 0 &&
		     (handles[i].rights & KN_RIGHT_VM_OPERATION);
	if (n && below(4)) {
		unsigned k = below(n);
		for (unsigned i = 0; i < MAX_HANDLES; i++) {
			struct hrec *h = &handles[i];
			if (h->live && h->type == KN_HANDLE_TYPE_TASK && h->child >= 0 &&
			    (h->rights & KN_RIGHT_VM_OPERATION) && k-- == 0) {
				c->nr = nr;
				c->garbage_ok = true;
				c->a[0] = arg32(c, h->h);
				c->x[0] = (uint64_t)(uintptr_t)h;
				c->done = done_nothing;
				return;
			}
		}
	}
	struct hrec *r = gen_task_right(c, nr, KN_RIGHT_VM_OPERATION, true, "no VM_OPERATION right", done_nothing);
	Handle bad = bad_handle_value();
	if (r && r->child < 0 && (r->rights & KN_RIGHT_VM_OPERATION)) {
		c->a[0] = arg32(c, bad);
		c->must_fail = true;
		c->why = "a handle that is not open";
	}
}

/* A range in a child's space: in the child zone (where the other calls made regions, or
 * free: rcNotFound), or one the contract refuses (then true). Never the child's own memory. */
static struct {
	Handle h; /* the target's handle when it was made (the child may be gone since) */
	uint64_t base, size;
} child_made[16]; /* the last regions KnTaskVmAllocate made in the child zone */
static unsigned nchild_made;

static bool child_range(struct call *c, uint64_t *addr, uint64_t *size)
{
	uint64_t a = CHILD_ZONE + below(CHILD_ZONE_PAGES) * PAGE, s = (1 + below(8)) * PAGE;
	const char *why = NULL;
	unsigned n = 0, known = MIN(nchild_made, ARRAY_SIZE(child_made));
	for (unsigned i = 0; i < known; i++)
		n += child_made[i].h == (Handle)c->a[0];
	if (n && below(4)) { /* in (or over the end of) a region made there in this target */
		unsigned k = (unsigned)below(n), i = 0;
		for (; i < known; i++)
			if (child_made[i].h == (Handle)c->a[0] && k-- == 0)
				break;
		uint64_t pages = child_made[i].size / PAGE, first = below(pages);
		a = child_made[i].base + first * PAGE;
		s = (one_in(4) ? pages - first + 1 : 1 + below(pages - first)) * PAGE;
	}
	switch (below(16)) {
	case 0:
		a += 1 + below(PAGE - 1);
		why = "unaligned address";
		break;
	case 1:
		s = one_in(2) ? 0 : s + 1 + below(PAGE - 1);
		why = "size 0 or unaligned";
		break;
	case 2: {
		static const uint64_t where[] = { 0xffffffff80000000ull, USER_TOP, 0x0000800000000000ull };
		a = PICK(where);
		why = "a range outside the user half";
		break;
	}
	case 3:
		s = 0 - a + PAGE * below(3);
		why = "a range that wraps";
		break;
	default:
		break;
	}
	if (why) {
		c->must_fail = true;
		c->why = c->why ? c->why : why;
	}
	*addr = a;
	*size = s;
	return why != NULL;
}

static void done_task_allocate(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	uint64_t out = *(volatile uint64_t *)(uintptr_t)c->a[4];
	if ((out & (PAGE - 1)) || out < PAGE || out >= USER_TOP || (c->a[1] && out != c->a[1]))
		finding(CK_RESULT, c->nr, rcOk, "KnTaskVmAllocate(%#llx, %#llx, %#x) gave %#llx",
			(unsigned long long)c->a[1], (unsigned long long)c->a[2], (int)(uint32_t)c->a[3],
			(unsigned long long)out);
	else if (out >= CHILD_ZONE && out < CHILD_ZONE + CHILD_ZONE_PAGES * PAGE && c->a[2] <= 64 * PAGE)
		child_made[nchild_made++ % ARRAY_SIZE(child_made)] =
			(typeof(child_made[0])){ (Handle)c->a[0], out, c->a[2] };
}

/* KnTaskVmAllocate: a few pages at a place of the child zone (or anywhere), reserved or
 * committed (lazily, LOCKED, grow-down), with guards; or flags, a size or an output the
 * contract refuses. The child's region goes with the child. */
static void gen_task_allocate(struct call *c)
{
	uint64_t a, s;
	task_vm_target(c, NR_KnTaskVmAllocate);
	bool hostile = child_range(c, &a, &s);
	int flags = RES | any_protection() | any_cache();
	uint64_t other = 0;
	switch (below(8)) {
	case 0:
		flags |= COM | VMM_FLAG_LOCKED;
		break;
	case 1:
	case 2:
		flags |= COM;
		if (one_in(4))
			other = huge_size(); /* lazy: only charged (or refused) */
		break;
	case 3:
		flags |= VMM_FLAG_GROW_DOWN | VMM_FLAG_LOW_GUARD;
		other = (2 + below(8)) * PAGE;
		break;
	default:
		break;
	}
	if (one_in(3))
		flags |= VMM_FLAG_HIGH_GUARD;
	bool anywhere = one_in(4);
	if (!hostile) { /* (a refused range stays as it is) */
		s = other ? other : s;
		a = anywhere ? 0 : a;
	}
	switch (below(10)) {
	case 0:
		flags &= ~RES;
		c->why = c->why ? c->why : "no RESERVE";
		c->must_fail = true;
		break;
	case 1:
		flags = (flags & ~VMM_FLAG_RWX_MASK) | bad_protection();
		c->why = c->why ? c->why : "bad protection";
		c->must_fail = true;
		break;
	case 2:
		flags |= unknown_bits();
		c->why = c->why ? c->why : "unknown flag bits";
		c->must_fail = true;
		break;
	default:
		break;
	}
	c->a[1] = a;
	c->a[2] = s;
	c->a[3] = arg32(c, (uint32_t)flags);
	out_arg(c, 4, sizeof(void *), -1);
	c->done = done_task_allocate;
}

/* A KnTaskVm* call's target (a[0]) and range (a[1], a[2]) in one of our children. */
static void task_vm_range(struct call *c, int nr)
{
	uint64_t a, s;
	task_vm_target(c, nr);
	child_range(c, &a, &s);
	c->a[1] = a;
	c->a[2] = s;
}

static void gen_task_commit(struct call *c)
{
	task_vm_range(c, NR_KnTaskVmCommit);
	int flags = PICK(((const int[]){ 0, VMM_FLAG_COMMIT, VMM_FLAG_LOCKED, VMM_FLAG_COMMIT | VMM_FLAG_LOCKED }));
	if (one_in(10)) {
		flags |= one_in(2) ? VMM_FLAG_READ : unknown_bits();
		c->must_fail = true;
		c->why = c->why ? c->why : "other flag bits";
	}
	c->a[3] = arg32(c, (uint32_t)flags);
}

static void gen_task_decommit(struct call *c) { task_vm_range(c, NR_KnTaskVmDecommit); }

static void gen_task_protect(struct call *c)
{
	task_vm_range(c, NR_KnTaskVmProtect);
	int prot = any_protection();
	if (one_in(8)) {
		prot = one_in(2) ? bad_protection() : prot | unknown_bits();
		c->must_fail = true;
		c->why = c->why ? c->why : "not a protection";
	}
	c->a[3] = arg32(c, (uint32_t)prot);
}

static void gen_task_unmap(struct call *c) { task_vm_range(c, NR_KnTaskVmUnmap); }

/* Their sizes: up to a page mostly, where every kind of buffer fits; up to two pages less one
 * (a good buffer: several pages of the target) now and then. Never 0 (an output that does
 * not exist is not refused). */
static uint64_t task_memory_size(void) { return one_in(4) ? PAGE + below(PAGE) : 1 + below(PAGE); }

/* KnTaskReadMemory and KnTaskWriteMemory: *done, after a success, is in (0, size]. */
static void done_task_memory(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	uint64_t done = *(const volatile uint64_t *)(uintptr_t)c->a[4];
	if (c->a[3] ? done == 0 || done > c->a[3] : done != 0) {
		char what[200];
		describe(what, sizeof(what), c);
		finding(CK_RESULT, c->nr, 0, "%s copied %llu bytes", what, (unsigned long long)done);
	}
}

/* KnTaskReadMemory: ourselves, a child or a bad handle, at the addresses KnVmQuery gets (in
 * a child mostly free space), into an output buffer (it may fault a page in: only the
 * target's residency changes). */
static void gen_task_read(struct call *c)
{
	gen_task_right(c, NR_KnTaskReadMemory, KN_RIGHT_VM_READ, false, "no VM_READ right", done_task_memory);
	/* (outside the user half: must fail; 0x400000: every program's image, a child's too) */
	c->a[1] = one_in(4) ? 0x400000ull + below(4 * PAGE) : query_addr(c);
	uint64_t size = task_memory_size();
	c->a[3] = size;
	out_arg(c, 2, size, size > PAGE ? P_GOOD : -1);
	out_arg(c, 4, sizeof(rtl_size_t), -1);
}

/*
 * KnTaskWriteMemory: never on the fuzzer itself (harmless handles only), and never changing a
 * child: in a child that does not run (created, frozen, exited) it writes back the bytes it
 * just read there; in one that runs, or through a handle that cannot read, only at an
 * address no task has (the kernel half, page 0), which must fail.
 */
static void gen_task_write(struct call *c)
{
	static uint8_t content[2 * PAGE];
	struct hrec *r =
		gen_task_right(c, NR_KnTaskWriteMemory, KN_RIGHT_VM_WRITE, true, "no VM_WRITE right", done_task_memory);
	const struct child *ch = r && r->child >= 0 ? &children[r->child] : RTL_NULL;
	bool still = ch && ch->live && (ch->phase == CP_CREATED || ch->phase == CP_FROZEN || ch->phase == CP_EXITED);
	uint64_t size = task_memory_size(), done = 0;
	uint64_t addr = still && one_in(2) ? 0x400000ull + below(4 * PAGE) /* (its image) */ : query_addr(c);
	memset(content, 0, sizeof(content));
	if (still && (r->rights & KN_RIGHT_VM_READ) && addr >= PAGE && addr < USER_TOP) {
		harness_calls++;
		if (KnTaskReadMemory(r->h, (const void *)(uintptr_t)addr, content, size, &done) != rcOk)
			done = 0;
	}
	if (r && (r->rights & KN_RIGHT_VM_WRITE) && !done) {
		/* (nothing known to write back: where nothing can be written) */
		static const uint64_t nowhere[] = { 0, 0x10, 0xffffffff80000000ull, 0x0000800000000000ull };
		addr = PICK(nowhere);
		c->must_fail = true;
		c->why = "not in the user half";
	}
	c->a[1] = addr;
	c->a[3] = size;
	in_arg(c, 2, size, content, size > PAGE ? P_GOOD : -1);
	out_arg(c, 4, sizeof(rtl_size_t), -1);
}

/*
 * KnThreadCreate: only calls the contract refuses (a bad output, entry or stack), so that the
 * fuzzer stays one thread and a round's thread count comes back. Were one made anyway, it
 * would only end itself: its entry calls KnThreadExit, on a stack in the arena.
 */
__attribute__((noreturn)) static void thread_never(void) { KnThreadExit(); }

static void gen_thread_create(struct call *c)
{
	static const uint64_t bad_entry[] = { 0, 0xffffffff80100000ull, 0x0000800000000000ull, USER_TOP + PAGE, ~0ull };
	uint64_t entry = (uint64_t)(uintptr_t)thread_never;
	uint64_t top = (uint64_t)(uintptr_t)out_slice(c) + 2 * PAGE;
	c->nr = NR_KnThreadCreate;
	out_arg(c, 3, sizeof(rtl_uint32_t), -1);
	if (!c->must_fail || one_in(2)) {
		switch (below(3)) {
		case 0:
			entry = PICK(bad_entry);
			c->why = c->why ? c->why : "entry not a user address";
			break;
		case 1: {
			static const uint64_t bad_top[] = { 0, PAGE / 2, 0xffffffff80100000ull, USER_TOP + PAGE + 16,
							    0x0000800000000000ull };
			top = PICK(bad_top);
			c->why = c->why ? c->why : "stack not in the user half";
			break;
		}
		default:
			top -= 8; /* (not 16-byte aligned) */
			c->why = c->why ? c->why : "stack not 16-byte aligned";
			break;
		}
		c->must_fail = true;
	}
	c->a[0] = entry;
	c->a[1] = rnd();
	c->a[2] = top;
	c->done = done_nothing;
}

static rtl_uint32_t ncpus = 1; /* (KnThreadGetCpu at the start) */

static void gen_thread_affinity(struct call *c)
{
	uint64_t online = ncpus >= 64 ? ~0ull : (1ull << ncpus) - 1;
	c->nr = NR_KnThreadSetAffinity;
	c->garbage_ok = true;
	/* Ourselves (0) mostly; else an id that is not a thread of ours (ours are never known). */
	c->a[0] = arg32(c, below(4) ? 0 : (uint32_t)rnd() | 0x80000000u);
	switch (below(4)) {
	case 0:
		c->a[1] = 0;
		break;
	case 1:
		c->a[1] = online == ~0ull ? 0 : ~online & rnd();
		break;
	default:
		c->a[1] = one_in(2) ? online : 1; /* (harmless: the fuzzer may run anywhere) */
		break;
	}
	if (!(c->a[1] & online)) {
		c->must_fail = true;
		c->why = "a mask with no online CPU";
	}
	c->done = done_nothing;
}

static void done_get_cpu(struct call *c, int64_t rc)
{
	if (rc != rcOk)
		return;
	rtl_uint32_t cpu = *(volatile rtl_uint32_t *)(uintptr_t)c->a[0];
	rtl_uint32_t n = *(volatile rtl_uint32_t *)(uintptr_t)c->a[1];
	if (cpu >= n || n != ncpus)
		finding(CK_RESULT, c->nr, rcOk, "KnThreadGetCpu: CPU %u of %u (%u at the start)", cpu, n, ncpus);
}

static void gen_thread_get_cpu(struct call *c)
{
	c->nr = NR_KnThreadGetCpu;
	out_arg(c, 0, sizeof(rtl_uint32_t), -1);
	out_arg(c, 1, sizeof(rtl_uint32_t), -1);
	c->done = done_get_cpu;
}

static void gen_thread_yield(struct call *c)
{
	c->nr = NR_KnThreadYield;
	c->done = done_nothing;
}

static void gen_unknown(struct call *c)
{
	static const uint64_t numbers[] = { NCALLS,        NCALLS + 1,    64,         255,  256, 999, 0x7fffffff,
					    0x80000000ull, 0xffffffffull, 1ull << 32, ~0ull };
	c->nr = NR_UNKNOWN;
	c->x[3] = PICK(numbers);
	for (unsigned i = 0; i < 6; i++)
		c->a[i] = rnd();
	c->must_fail = true;
	c->why = "an unknown call number";
	c->done = done_nothing;
}

/* Call weights: the memory calls most, the rest evenly; quotas and unknown numbers a little. */
static const struct {
	void (*gen)(struct call *c);
	uint8_t weight;
} gens[] = {
	{ gen_nop, 1 },           { gen_debug_write, 2 },     { gen_get_stats, 2 },      { gen_task_create, 3 },
	{ gen_resume, 3 },        { gen_get_state, 3 },       { gen_wait, 3 },           { gen_terminate, 2 },
	{ gen_self, 1 },          { gen_get_exit_code, 2 },   { gen_close, 6 },          { gen_transfer, 5 },
	{ gen_enumerate, 3 },     { gen_allocate, 10 },       { gen_commit, 6 },         { gen_decommit, 5 },
	{ gen_protect, 6 },       { gen_unmap, 6 },           { gen_query, 4 },          { gen_mdl_create, 4 },
	{ gen_mdl_from_buf, 3 },  { gen_mdl_from_vm, 4 },     { gen_mdl_from_phys, 2 },  { gen_mdl_clone, 3 },
	{ gen_mdl_map, 5 },       { gen_get_size, 3 },        { gen_usage_map, 4 },      { gen_freeze, 3 },
	{ gen_context, 3 },       { gen_next_region, 3 },     { gen_set_quota, 2 },      { gen_get_quota, 2 },
	{ gen_task_query, 3 },    { gen_task_allocate, 3 },   { gen_task_commit, 3 },    { gen_task_decommit, 2 },
	{ gen_task_protect, 2 },  { gen_task_unmap, 2 },      { gen_task_read, 3 },      { gen_task_write, 3 },
	{ gen_thread_create, 2 }, { gen_thread_affinity, 2 }, { gen_thread_get_cpu, 2 }, { gen_thread_yield, 1 },
	{ gen_unknown, 1 },
};
static unsigned total_weight;

/* ------------------------------------------------------------------ performing a call */

static void describe(char *buf, size_t size, const struct call *c)
{
	size_t n = (size_t)ksnprintf(buf, size, "%s(", c->nr == NR_UNKNOWN ? "syscall" : call_name[c->nr]);
	unsigned args = arity[c->nr];
	if (c->nr == NR_UNKNOWN)
		n += (size_t)ksnprintf(buf + n, size - n, "%#llx, ", (unsigned long long)c->x[3]);
	for (unsigned i = 0; i < args && n < size; i++)
		n += (size_t)ksnprintf(buf + n, size - n, "%s%#llx", i ? ", " : "", (unsigned long long)c->a[i]);
	if (n < size)
		n += (size_t)ksnprintf(buf + n, size - n, ")");
	for (unsigned i = 0; i < c->nb && n < size; i++)
		if (c->b[i].kind != P_GOOD)
			n += (size_t)ksnprintf(buf + n, size - n, " [%s %s]", c->b[i].dir == DIR_OUT ? "out" : "in",
					       pkinds[c->b[i].kind].name);
}

static bool fill_sentinels(struct call *c)
{
	for (unsigned i = 0; i < c->nb; i++)
		if (c->b[i].dir == DIR_OUT && c->b[i].hi > c->b[i].lo)
			memset((void *)(uintptr_t)c->b[i].lo, SENTINEL, c->b[i].hi - c->b[i].lo);
	return true;
}

static bool sentinels_intact(const struct call *c, char *why, size_t size)
{
	for (unsigned i = 0; i < c->nb; i++) {
		const struct buf *b = &c->b[i];
		if (b->dir != DIR_OUT)
			continue;
		for (uint64_t p = b->lo; p < b->hi; p++)
			if (*(volatile uint8_t *)(uintptr_t)p != SENTINEL) {
				ksnprintf(why, size, "output %u (%s) written at +%llu", i, pkinds[b->kind].name,
					  (unsigned long long)(p - b->p));
				return false;
			}
	}
	/* The read-only page holds what it held. */
	for (unsigned i = 0; i < PAGE; i += 8)
		if (*(volatile uint64_t *)(uintptr_t)(ar.ro + i) != 0x0101010101010101ull * (uint8_t)(i / 8)) {
			ksnprintf(why, size, "the read-only page changed at +%u", i);
			return false;
		}
	return true;
}

static int64_t perform(struct call *c)
{
	char what[200], why[160];
	fill_sentinels(c);
	/* Decided before the call, so the random sequence does not depend on its answer. */
	bool deep = one_in(16);
	uint64_t before = call_space_hash(c), whole = 0, own_commit = 0, own_resident = 0;
	if (deep) {
		whole = whole_space_hash();
		harness_calls++;
		KnDebugGetStats(&stats);
		own_commit = stats.taskCommit;
		own_resident = stats.taskResident;
	}

	/* The registers: the arguments, and garbage everywhere else. */
	regs_in = (struct sysregs){ .rax = c->nr == NR_UNKNOWN ? c->x[3] : c->nr,
				    .rdi = c->a[0],
				    .rsi = c->a[1],
				    .rdx = c->a[2],
				    .r10 = c->a[3],
				    .r8 = c->a[4],
				    .r9 = c->a[5] };
	for (unsigned i = arity[c->nr]; i < 6 && c->nr != NR_UNKNOWN; i++)
		(&regs_in.rdi)[i] = rnd(); /* (unused argument registers) */
	regs_in.rbx = rnd();
	regs_in.rbp = rnd();
	regs_in.r12 = rnd();
	regs_in.r13 = rnd();
	regs_in.r14 = rnd();
	regs_in.r15 = rnd();
	regs_in.xmm0[0] = rnd();
	regs_in.xmm0[1] = rnd();
	regs_in.xmm15[0] = rnd();
	regs_in.xmm15[1] = rnd();
	regs_in.rflags = 0x202 | (rnd() & 0x8d5) | (one_in(8) ? 0x400 : 0) | (one_in(8) ? 0x40000 : 0);
	fz_syscall(&regs_in, &regs_out);
	int64_t rax = (int64_t)regs_out.rax;
	unsigned nr = c->nr;
	calls_made[nr]++;

	/* The ABI. */
	const uint64_t *in = &regs_in.rdi, *out = &regs_out.rdi;
	static const char *const reg_names[] = { "rdi", "rsi", "rdx", "r10", "r8",  "r9",
						 "rbx", "rbp", "r12", "r13", "r14", "r15" };
	for (unsigned i = 0; i < 12; i++)
		if (in[i] != out[i]) {
			describe(what, sizeof(what), c);
			finding(CK_ABI, nr, 0, "%s changed %s from %#llx to %#llx", what, reg_names[i],
				(unsigned long long)in[i], (unsigned long long)out[i]);
		}
	if ((regs_in.rflags ^ regs_out.rflags) & FLAGS_KEPT) {
		describe(what, sizeof(what), c);
		finding(CK_ABI, nr, 0, "%s changed rflags from %#llx to %#llx", what,
			(unsigned long long)regs_in.rflags, (unsigned long long)regs_out.rflags);
	}
	if (memcmp(regs_in.xmm0, regs_out.xmm0, 16) || memcmp(regs_in.xmm15, regs_out.xmm15, 16)) {
		describe(what, sizeof(what), c);
		finding(CK_ABI, nr, 0, "%s changed xmm0 or xmm15", what);
	}

	if (nr == NR_KnTaskSelf) {
		if (rax != KN_HANDLE_SELF) {
			finding(CK_RESULT, nr, 0, "KnTaskSelf returned %#llx", (unsigned long long)rax);
		}
		return rcOk;
	}
	/* The code. */
	if ((uint64_t)rax >= RC_COUNT || !(documented[nr] & B(rax))) {
		describe(what, sizeof(what), c);
		char codes[100];
		size_t n = 0;
		codes[0] = 0;
		for (unsigned i = 0; i < RC_COUNT && n < sizeof(codes); i++)
			if (documented[nr] & B(i))
				n += (size_t)ksnprintf(codes + n, sizeof(codes) - n, "%s%u", n ? "/" : "", i);
		finding(CK_CODE, nr, (uint64_t)rax < RC_COUNT ? (int)rax : 0xff, "%s returned %lld%s%s, documented %s",
			what, (long long)rax, (uint64_t)rax < RC_COUNT ? " " : "",
			(uint64_t)rax < RC_COUNT ? rc_name[rax] : "", codes);
	}
	if ((uint64_t)rax < RC_COUNT && rax != rcOk)
		calls_failed[nr][rax]++;
	if (rax == rcOk && c->must_fail) {
		describe(what, sizeof(what), c);
		finding(CK_CODE, nr, rcOk, "%s succeeded with %s", what,
			c->why ? c->why : "an argument the contract refuses");
	}

	if (rax != rcOk) {
		/* Nothing changed. */
		if (!sentinels_intact(c, why, sizeof(why))) {
			describe(what, sizeof(what), c);
			finding(CK_OUTPUT, nr, (int)rax, "%s returned %lld but %s", what, (long long)rax, why);
			fill_sentinels(c);
		}
		uint64_t after = call_space_hash(c);
		if (after != before) {
			describe(what, sizeof(what), c);
			finding(CK_SPACE, nr, (int)rax,
				"%s returned %lld but the pages of its arguments changed (KnVmQuery: state, residency "
				"or "
				"protection)",
				what, (long long)rax);
		}
		if (!handles_look_same()) {
			describe(what, sizeof(what), c);
			finding(CK_HANDLES, nr, (int)rax, "%s returned %lld but the handle table changed", what,
				(long long)rax);
		}
		if (deep) {
			uint64_t w = whole_space_hash();
			harness_calls++;
			KnDebugGetStats(&stats);
			if (w != whole || stats.taskCommit != own_commit || stats.taskResident != own_resident) {
				describe(what, sizeof(what), c);
				finding(w != whole ? CK_SPACE : CK_OWN, nr, (int)rax,
					"%s returned %lld but %s (task commit %llu -> %llu, resident %llu -> %llu)",
					what, (long long)rax,
					w != whole ? "the address space changed" : "the task's own counters moved",
					(unsigned long long)own_commit, (unsigned long long)stats.taskCommit,
					(unsigned long long)own_resident, (unsigned long long)stats.taskResident);
			}
			if (!handles_same(why, sizeof(why))) {
				describe(what, sizeof(what), c);
				finding(CK_HANDLES, nr, (int)rax, "%s returned %lld and then: %s", what, (long long)rax,
					why);
			}
		}
	}
	if ((uint64_t)rax < RC_COUNT)
		c->done(c, rax);
	return rax;
}

/* ------------------------------------------------------------------ the arena */

static uint8_t *arena_region(uint64_t at, uint64_t size, int flags)
{
	void *out = RTL_NULL;
	harness_calls++;
	Retcode rc = KnVmAllocateEx((void *)(uintptr_t)at, size, flags, &out);
	if (rc != rcOk)
		rc = KnVmAllocateEx(RTL_NULL, size, flags, &out); /* (taken: anywhere) */
	if (rc != rcOk) {
		if (!(limited && rc == rcOutOfMemory))
			finding(CK_HARNESS, NR_KnVmAllocateEx, rc, "the arena: KnVmAllocateEx(%#llx, %#x) returned %d",
				(unsigned long long)size, flags, rc);
		return RTL_NULL;
	}
	return out;
}

static void touch(uint8_t *p, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		p[i * PAGE] = 0;
}

static bool arena_build(void)
{
	uint64_t at = ARENA;
#define NEXT(n) (at += ((n) + 16) * PAGE, at - ((n) + 16) * PAGE) /* regions 16 pages apart */
	memset(&ar, 0, sizeof(ar));
	ar.out = arena_region(NEXT(OUT_PAGES), OUT_PAGES * PAGE, RES | COM | RW);
	ar.in = arena_region(NEXT(IN_PAGES), IN_PAGES * PAGE, RES | COM | RW);
	ar.ro = arena_region(NEXT(1), PAGE, RES | COM | RW);
	ar.guarded = arena_region(NEXT(4) + PAGE, 2 * PAGE, RES | COM | RW | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD);
	ar.resv = arena_region(NEXT(2), 2 * PAGE, RES | RW);
	ar.lazy = arena_region(NEXT(4), 4 * PAGE, RES | COM | RW);
	ar.lazyend = arena_region(NEXT(2), 2 * PAGE, RES | COM | RW);
	ar.roend = arena_region(NEXT(2), 2 * PAGE, RES | COM | RW);
	uint8_t *grow = arena_region(NEXT(8), 8 * PAGE, RES | RW | VMM_FLAG_GROW_DOWN);
	ar.trap = arena_region(NEXT(2), PAGE, RES | COM | RW | VMM_FLAG_HIGH_GUARD);
	ar.unmapped = (uint8_t *)(uintptr_t)NEXT(1);
#undef NEXT
	if (!ar.out || !ar.in || !ar.ro || !ar.guarded || !ar.resv || !ar.lazy || !ar.lazyend || !ar.roend || !grow ||
	    !ar.trap)
		return false;
	ar.grow = grow;
	touch(ar.out, OUT_PAGES);
	for (uint64_t i = 0; i < IN_PAGES * PAGE; i++)
		ar.in[i] = (uint8_t)(i * 7 + 1);
	for (unsigned i = 0; i < PAGE; i++)
		ar.ro[i] = (uint8_t)(i / 8);
	touch(ar.guarded, 2);
	harness_calls += 4;
	if (KnVmCommit(ar.resv, PAGE, 0) != rcOk)
		return false;
	ar.resv[0] = 0;
	ar.lazyend[0] = 0;
	touch(ar.roend, 2);
	for (unsigned i = 0; i < PAGE; i++)
		ar.trap[i] = ' ';
	memcpy(ar.trap + PAGE - 512, trap_line, sizeof(trap_line) - 1);
	ar.trap[PAGE - 1] = '\n';
	if (KnVmProtect(ar.ro, PAGE, VMM_FLAG_READ) != rcOk ||
	    KnVmProtect(ar.roend + PAGE, PAGE, VMM_FLAG_READ) != rcOk)
		return false;
	/* A writable mapping of an MDL (the mapping alone keeps its frame). */
	Handle m;
	void *p = RTL_NULL;
	harness_calls += 3;
	if (KnPmmMdlCreate(PAGE, RW, &m) == rcOk) {
		if (KnPmmMdlMap(m, 0, PAGE, RTL_NULL, RW, &p) == rcOk) {
			ar.mdl = p;
			ar.mdl[0] = 0;
		}
		KnHandleClose(m);
	}
	/* A device page, read-only (the local APIC: reading it does nothing). */
	if (privileged) {
		harness_calls += 3;
		if (KnPmmMdlCreateFromPhys(0xfee00000ull, PAGE, VMM_FLAG_READ | VMM_FLAG_CACHE_DISABLE, &m) == rcOk) {
			if (KnPmmMdlMap(m, 0, PAGE, RTL_NULL, VMM_FLAG_READ, &p) == rcOk)
				ar.dev = p;
			KnHandleClose(m);
		}
	}
	/* The unmapped page must be free. */
	harness_calls++;
	if (KnVmQuery(ar.unmapped, &qinfo) != rcOk || qinfo.state != VMM_STATE_FREE)
		ar.unmapped = (uint8_t *)(uintptr_t)0x0000100000000000ull;
	return true;
}

/* ------------------------------------------------------------------ children */

/*
 * Waits up to `seconds` for a child to reach one of `states`, a second at a time: the guest's
 * clock follows the host's, so a host that stops QEMU for a minute (the machine is shared)
 * would make one long wait expire with the child never having run. A stall eats one step.
 */
static Retcode wait_steps(Handle h, int states, unsigned seconds)
{
	Retcode rc = rcBusy;
	for (unsigned i = 0; i < seconds && rc == rcBusy; i++) {
		harness_calls++;
		rc = KnTaskWait(h, states, 1000000000ull);
	}
	return rc;
}

/*
 * Checks how a child ended (or froze): `dumpable` children freeze where a plain one is
 * terminated. `forced`: the fuzzer terminated it. Returns false (after a finding) if wrong.
 */
static bool check_child_end(Handle h, int kind, bool dumpable, const char *name)
{
	int state = 0, code = 0;
	harness_calls++;
	Retcode rc = wait_steps(h, KN_TASK_STATE_EXITED | KN_TASK_STATE_FROZEN, CHILD_WAIT_S);
	KnTaskGetState(h, &state);
	if (rc != rcOk) {
		finding(CK_CHILD, NR_KnTaskWait, rc, "child %s neither ended nor froze in %u s (state %d, wait %d)",
			name, CHILD_WAIT_S, state, rc);
		return false;
	}
	const struct fc_kind *k = &fc_kinds[kind];
	if (state == KN_TASK_STATE_FROZEN) {
		bool frozen_ok = k->how == FC_FREEZE || (dumpable && (k->how == FC_FAULT || k->how == FC_MAY_SURVIVE));
		if (!frozen_ok) {
			finding(CK_CHILD, NR_KnTaskFreeze, 0, "child %s (%sdumpable) is frozen", name,
				dumpable ? "" : "not ");
			return false;
		}
		KnThreadContext ctx;
		harness_calls += 2;
		rc = KnTaskGetThreadContext(h, 0, &ctx);
		if (rc != rcOk) {
			finding(CK_CHILD, NR_KnTaskGetThreadContext, rc,
				"child %s frozen: KnTaskGetThreadContext returned %d", name, rc);
			return false;
		}
		bool vec_ok = k->how == FC_FREEZE ? ctx.exception == KN_NO_EXCEPTION
						  : ctx.exception < 32 && (k->vectors & (1u << ctx.exception));
		if (!vec_ok || (ctx.cs & 3) != 3) {
			finding(CK_CHILD, NR_KnTaskGetThreadContext, 0,
				"child %s frozen with exception %lld (error %#llx, cr2 %#llx, rip %#llx, cs %#llx): "
				"expected "
				"vectors %#x",
				name, (long long)ctx.exception, (unsigned long long)ctx.errorCode,
				(unsigned long long)ctx.cr2, (unsigned long long)ctx.rip, (unsigned long long)ctx.cs,
				k->vectors);
			return false;
		}
		if (KnTaskGetThreadContext(h, 1, &ctx) != rcEof) {
			finding(CK_CHILD, NR_KnTaskGetThreadContext, 0, "child %s has a second thread", name);
			return false;
		}
		/* Its regions: each with an MDL handle, closed again. */
		uint64_t cursor = 0, nregions = 0;
		for (;;) {
			void *base;
			rtl_size_t size;
			int flags;
			Handle mdl;
			harness_calls++;
			rc = KnTaskGetNextVmRegion(h, (void *)(uintptr_t)cursor, &base, &size, &flags, &mdl);
			if (rc != rcOk)
				break;
			nregions++;
			KnHandleClose(mdl);
			harness_calls++;
			cursor = (uint64_t)(uintptr_t)base + size;
		}
		/* (a region's MDL charges its frames to us while it lives: under a quota it may not
		 * fit, which is the documented rcOutOfMemory) */
		bool quota_met = limited && rc == rcOutOfMemory;
		if (!quota_met && (rc != rcEof || nregions < 3)) {
			finding(CK_CHILD, NR_KnTaskGetNextVmRegion, rc, "child %s frozen: %llu regions, then %d", name,
				(unsigned long long)nregions, rc);
			return false;
		}
		harness_calls += 3;
		if (KnTaskTerminate(h) != rcOk || KnTaskGetExitCode(h, &code) != rcOk || code != KN_EXIT_TERMINATED) {
			finding(CK_CHILD, NR_KnTaskTerminate, 0, "child %s frozen, then terminated: exit code %d", name,
				code);
			return false;
		}
		return true;
	}
	harness_calls++;
	KnTaskGetExitCode(h, &code);
	if (code == FC_SETUP_FAILED) { /* (its set-up met the commit limit: nothing to judge) */
		children_unset++;
		return true;
	}
	bool ok;
	switch (k->how) {
	case FC_FAULT:
		ok = !dumpable && code == KN_EXIT_EXCEPTION;
		break;
	case FC_MAY_SURVIVE:
		ok = code == FC_SURVIVED || (!dumpable && code == KN_EXIT_EXCEPTION);
		break;
	case FC_TERM:
		ok = code == KN_EXIT_TERMINATED;
		break;
	case FC_EXIT: {
		const char *n = name + 3 + strlen(k->name);
		uint64_t want = 0;
		if (*n == '-')
			parse_u64(n + 1, &want, NULL);
		ok = code == (int)(uint32_t)want;
		break;
	}
	default:
		ok = false;
		break;
	}
	if (!ok)
		finding(CK_CHILD, NR_KnTaskExit, 0, "child %s (%sdumpable) exited with %d%s", name,
			dumpable ? "" : "not ", code, code == FC_SURVIVED ? ": it survived what it did" : "");
	return ok;
}

/* Scenario: a child that does one forbidden thing (the kinds in turn), plain or dumpable. */
static void scenario_fault(void)
{
	static unsigned next;
	unsigned kind = next++ % ARRAY_SIZE(fc_kinds);
	bool dumpable = one_in(2);
	char name[KN_TASK_NAME_MAX + 1];
	Handle h;

	if (fc_kinds[kind].how == FC_SLEEP) {
		/* It sleeps in the kernel until frozen or terminated, dumpable or not. */
		ksnprintf(name, sizeof(name), "fc-%s", fc_kinds[kind].name);
		harness_calls += 5;
		if (KnTaskCreate(name, "fuzzchild", dumpable ? KN_TASK_DUMPABLE : 0, &h) != rcOk)
			return;
		KnTaskResume(h);
		int state = 0, code = 0;
		Retcode rc = KnTaskWait(h, KN_TASK_STATE_EXITED | KN_TASK_STATE_FROZEN, 2000000ull);
		KnTaskGetState(h, &state);
		if (rc == rcOk && KnTaskGetExitCode(h, &code) == rcOk && code == FC_SETUP_FAILED)
			children_unset++; /* (no memory for its grandchild) */
		else if (rc != rcBusy || state != KN_TASK_STATE_RUNNING)
			finding(CK_CHILD, NR_KnTaskWait, rc, "child %s should sleep: wait %d, state %d", name, rc,
				state);
		if (one_in(2)) {
			harness_calls += 3;
			rc = KnTaskFreeze(h);
			Retcode w = wait_steps(h, KN_TASK_STATE_FROZEN, CHILD_WAIT_S);
			if (rc != rcOk || w != rcOk)
				finding(CK_CHILD, NR_KnTaskFreeze, rc, "child %s: freeze %d, wait for FROZEN %d", name,
					rc, w);
		}
		harness_calls += 3;
		if (KnTaskTerminate(h) != rcOk || KnTaskGetExitCode(h, &code) != rcOk ||
		    (code != KN_EXIT_TERMINATED && code != FC_SETUP_FAILED))
			finding(CK_CHILD, NR_KnTaskTerminate, 0, "child %s terminated: exit code %d", name, code);
		KnHandleClose(h);
		children_run++;
		kinds_seen[kind / 64] |= 1ull << (kind % 64);
		return;
	}
	if (fc_kinds[kind].how == FC_EXIT && one_in(2))
		ksnprintf(name, sizeof(name), "fc-exit-%u", (uint32_t)rnd());
	else
		ksnprintf(name, sizeof(name), "fc-%s", fc_kinds[kind].name);
	harness_calls += 2;
	Retcode rc = KnTaskCreate(name, "fuzzchild", dumpable ? KN_TASK_DUMPABLE : 0, &h);
	if (rc != rcOk) {
		if (rc != rcOutOfMemory)
			finding(CK_HARNESS, NR_KnTaskCreate, rc, "creating child %s returned %d", name, rc);
		return;
	}
	KnTaskResume(h);
	if (check_child_end(h, (int)kind, dumpable, name))
		faults_contained++;
	children_run++;
	kinds_seen[kind / 64] |= 1ull << (kind % 64);
	harness_calls += 2;
	KnTaskTerminate(h);
	KnHandleClose(h);
}

/*
 * Scenario: a child whose last handle closes while it is created, frozen or about to
 * freeze (a dumpable child that faults after its parent let go): the kernel must end it
 * (the round's task count says whether it did).
 */
static void scenario_orphan(void)
{
	static const char *const names[] = { "fc-sleep", "fc-ud2", "fc-freeze", "fc-kread", "fc-exit" };
	unsigned how = below(4);
	const char *name = PICK(names);
	if (how == 2 && !strcmp(name, "fc-sleep"))
		name = "fc-ud2"; /* (a running sleeper nobody holds sleeps for ever, as it may) */
	Handle h, extra = 0;
	harness_calls += 4;
	if (KnTaskCreate(name, "fuzzchild", how == 2 ? KN_TASK_DUMPABLE : 0, &h) != rcOk)
		return;
	if (one_in(2)) { /* and it holds a handle to itself, or to another created task */
		Handle remote;
		KnTaskCreate("fc-orphan-peer", "nop", 0, &extra);
		KnHandleTransfer(h, extra ? extra : h, KN_RIGHT_FREEZE, &remote);
	}
	switch (how) {
	case 0: /* created, never started */
		break;
	case 1: /* a sleeper, frozen */
		if (!strcmp(name, "fc-sleep") || !strcmp(name, "fc-freeze")) {
			KnTaskResume(h);
			KnTaskFreeze(h);
			wait_steps(h, KN_TASK_STATE_FROZEN, CHILD_WAIT_S);
		}
		break;
	case 2: /* dumpable: it freezes (or ends) after the handle is gone */
		KnTaskResume(h);
		break;
	default: /* started: it ends by itself, or (the sleeper) gets frozen first */
		KnTaskResume(h);
		if (!strcmp(name, "fc-sleep")) {
			KnTaskFreeze(h);
			wait_steps(h, KN_TASK_STATE_FROZEN, CHILD_WAIT_S);
		}
		break;
	}
	harness_calls += 2;
	KnHandleClose(h);
	if (extra)
		KnHandleClose(extra);
}

static void one_call_of(void (*const *set)(struct call *c), unsigned n);

/* Scenario: a running child of ours to change with the KnTaskVm* calls (an fc-sleep,
 * blocked in the kernel while they act on its space), then a burst of them, mostly on it:
 * the random sequence seldom holds a child long enough for them to do much. It stays for
 * the rest of the round. Its record says never_ends: may_close must keep its last TERMINATE
 * handle, or a running task that nothing holds would run on (only created and frozen tasks
 * are ended as orphans) and the round end with it and its unstarted grandchild. */
static void scenario_task_vm(void)
{
	static void (*const calls[])(struct call * c) = { gen_task_allocate, gen_task_allocate, gen_task_commit,
							  gen_task_decommit, gen_task_protect,  gen_task_unmap,
							  gen_task_query };
	int idx = free_child();
	Handle h;
	if (idx < 0)
		return;
	harness_calls += 2; /* (create, resume) */
	if (KnTaskCreate("fc-sleep", "fuzzchild", 0, &h) != rcOk)
		return;
	KnTaskResume(h);
	struct hrec *r = new_hrec(h, KN_HANDLE_TYPE_TASK, ALL_TASK_RIGHTS, NR_KnTaskCreate);
	if (!r) {
		harness_calls++;
		KnHandleClose(h);
		return;
	}
	r->child = idx;
	children[idx] = (struct child){ .live = true, .phase = CP_RUNNING, .kind = -1, .never_ends = true };
	for (unsigned i = 0; i < 24; i++)
		one_call_of(calls, ARRAY_SIZE(calls));
}

/* Scenario: a child running its own fuzzer (unprivileged, one round), which ends as told. */
static void scenario_child_fuzzer(void)
{
	int idx = free_child();
	if (idx < 0 || child_mode)
		return;
	char name[KN_TASK_NAME_MAX + 1];
	unsigned end = below(5), calls = 100 + below(300);
	bool dumpable = one_in(2);
	ksnprintf(name, sizeof(name), "fuzzc %u %u %u", (uint32_t)rnd(), calls, end);
	Handle h, box, remote;
	harness_calls += 6;
	if (KnTaskCreate(name, "fuzz", dumpable ? KN_TASK_DUMPABLE : 0, &h) != rcOk)
		return;
	/* The mailbox: an MDL page both map. */
	void *p = RTL_NULL;
	if (KnPmmMdlCreate(PAGE, RW, &box) != rcOk) {
		KnHandleClose(h);
		return;
	}
	if (KnPmmMdlMap(box, 0, PAGE, RTL_NULL, RW, &p) != rcOk ||
	    KnHandleTransfer(h, box, KN_RIGHT_MAP_READ | KN_RIGHT_MAP_WRITE, &remote) != rcOk) {
		KnHandleClose(box);
		KnHandleClose(h);
		return;
	}
	KnHandleClose(box);
	volatile struct mailbox *mb = p;
	mb->magic = 0;
	/* Half of them under a quota a little above what they use now: their calls meet it
	 * (rcOutOfMemory, and nothing changed), their set-up may too (not a finding then). */
	KnQuota limits, usage;
	bool quota = one_in(2);
	harness_calls++;
	if (quota && KnTaskGetQuota(h, &limits, &usage) == rcOk) {
		limits = (KnQuota){ usage.commitPages + 150 + below(450), usage.lockedPages + 16 + below(200),
				    usage.handles + 16 + below(32), usage.regions + 20 + below(40),
				    usage.tasks + below(3) };
		harness_calls++;
		Retcode q = KnTaskSetQuota(h, &limits);
		if (q != rcOk)
			finding(CK_RESULT, NR_KnTaskSetQuota, q, "KnTaskSetQuota of a new child fuzzer returned %d", q);
	}
	KnTaskResume(h);
	/* Wait for it here (it is small): then the mailbox says what it found. It counts its
	 * calls there: it is stuck only when the count stops moving for CHILD_WAIT_S steps. */
	int state = 0, code = 0;
	Retcode rc = rcBusy;
	uint64_t seen_calls = 0;
	for (unsigned still = 0; rc == rcBusy && still < CHILD_WAIT_S; still++) {
		rc = wait_steps(h, KN_TASK_STATE_EXITED | KN_TASK_STATE_FROZEN, 1);
		if (mb->calls != seen_calls) {
			seen_calls = mb->calls;
			still = 0;
		}
	}
	KnTaskGetState(h, &state);
	KnTaskGetExitCode(h, &code);
	harness_calls += 2;
	fuzzers_run++;
	if (rc != rcOk) {
		finding(CK_CHILD, NR_KnTaskWait, rc,
			"child fuzzer '%s'%s made no call for %u s (state %d, at its call %llu)", name,
			quota ? " (under a quota)" : "", CHILD_WAIT_S, state, (unsigned long long)seen_calls);
	} else if (mb->magic != MAILBOX_MAGIC) {
		finding(CK_CHILD, NR_KnTaskCreate, 0, "child fuzzer '%s' never reported (state %d, exit code %d)", name,
			state, code);
	} else {
		if (mb->findings)
			finding(CK_CHILD, NR_KnTaskCreate, (int)mb->findings,
				"child fuzzer '%s'%s made %llu findings, the first at its call %llu (its lines are "
				"above)",
				name, quota ? " (under a quota)" : "", (unsigned long long)mb->findings,
				(unsigned long long)mb->first);
		/* How it ended: 0 returned its findings, 1 KnTaskExit(0), 2 froze, 3 terminated
		 * itself, 4 ud2. */
		bool ok;
		switch (end) {
		case 0:
			ok = state == KN_TASK_STATE_EXITED && code == (int)mb->findings;
			break;
		case 1:
			ok = state == KN_TASK_STATE_EXITED && code == 0;
			break;
		case 2:
			ok = state == KN_TASK_STATE_FROZEN;
			break;
		case 3:
			ok = state == KN_TASK_STATE_EXITED && code == KN_EXIT_TERMINATED;
			break;
		default:
			ok = dumpable ? state == KN_TASK_STATE_FROZEN
				      : state == KN_TASK_STATE_EXITED && code == KN_EXIT_EXCEPTION;
			break;
		}
		if (!ok)
			finding(CK_CHILD, NR_KnTaskExit, 0,
				"child fuzzer '%s' (%sdumpable) ended in state %d with code %d", name,
				dumpable ? "" : "not ", state, code);
	}
	harness_calls += 3;
	KnTaskTerminate(h);
	KnHandleClose(h);
	KnVmUnmap(p, PAGE);
}

/* ------------------------------------------------------------------ pressure */

/* How often each kind of pressure ran, and the most it reached. */
static struct {
	unsigned runs;
	uint64_t most;
} pressure[4];

static void pressure_note(unsigned kind, uint64_t reached)
{
	pressure[kind].runs++;
	if (reached > pressure[kind].most)
		pressure[kind].most = reached;
}

static void random_calls(unsigned n);

/* Many regions, then random calls among them. */
static void pressure_regions(void)
{
	static uint64_t made[4096];
	unsigned n = 0;
	uint64_t want = child_mode ? 200 : 4096;
	for (; n < want; n++) {
		void *p;
		harness_calls++;
		if (KnVmAllocateEx(RTL_NULL, PAGE, RES | RW | (n % 3 ? 0 : COM), &p) != rcOk)
			break;
		made[n] = (uint64_t)(uintptr_t)p;
	}
	pressure_note(0, n);
	random_calls(20);
	for (unsigned i = 0; i < n; i++) {
		harness_calls++;
		KnVmUnmap((void *)(uintptr_t)made[i], PAGE);
	}
}

/*
 * A full handle table (copies of our own handle, without rights), then calls that make
 * handles: each must fail with rcOutOfMemory and change nothing (an MDL made, pages pinned
 * or outputs written before the handle was refused would show). A frozen child first, so
 * that KnTaskGetNextVmRegion has one to walk.
 */
static void pressure_handles(void)
{
	static void (*const makers[])(struct call * c) = { gen_task_create,  gen_transfer,    gen_mdl_create,
							   gen_mdl_from_buf, gen_mdl_from_vm, gen_mdl_from_phys,
							   gen_mdl_clone,    gen_next_region, gen_next_region };
	unsigned n = 0;
	Handle h;
	int idx = free_child();
	harness_calls += 3;
	if (idx >= 0 && KnTaskCreate("fc-freeze", "fuzzchild", KN_TASK_DUMPABLE, &h) == rcOk) {
		struct hrec *r = new_hrec(h, KN_HANDLE_TYPE_TASK, ALL_TASK_RIGHTS, NR_KnTaskCreate);
		if (r) {
			r->child = idx;
			children[idx] = (struct child){ .live = true, .phase = CP_RUNNING, .kind = -1 };
			KnTaskResume(h);
			if (wait_steps(h, KN_TASK_STATE_FROZEN, CHILD_WAIT_S) == rcOk)
				children[idx].phase = CP_FROZEN;
		} else {
			KnHandleClose(h);
		}
	}
	for (; n < 5000; n++) {
		harness_calls++;
		if (KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, 0, &h) != rcOk)
			break;
	}
	pressure_note(1, n);
	/* (the model does not know them: the handle checks look past them while they are there) */
	extra_handles = true;
	for (unsigned i = 0; i < 30; i++)
		one_call_of(makers, ARRAY_SIZE(makers));
	random_calls(10);
	extra_handles = false;
	for (unsigned i = 0;;) {
		int type;
		rtl_uint32_t rights;
		harness_calls++;
		if (KnHandleEnumerate(i, &h, &type, &rights) != rcOk)
			break;
		if (type == KN_HANDLE_TYPE_TASK && rights == 0 && !find_hrec(h) && !is_baseline_handle(h)) {
			harness_calls++;
			KnHandleClose(h);
		} else {
			i++;
		}
	}
}

/* Commit up to (near) the limit, lazily, touch a bounded part, then random calls. */
static void pressure_commit(void)
{
	harness_calls++;
	KnDebugGetStats(&stats);
	uint64_t left = stats.commitLimit > stats.commitCharge ? stats.commitLimit - stats.commitCharge : 0;
	uint64_t n = left > 64 ? left - 64 : 0;
	void *p = RTL_NULL;
	unsigned tries = 0;
	while (n && tries++ < 64) {
		harness_calls++;
		if (KnVmAllocateEx((void *)(uintptr_t)(ZONE + ZONE_SIZE), n * PAGE, RES | COM | RW, &p) == rcOk)
			break;
		n -= n / 16 + 1;
	}
	if (!p)
		return;
	pressure_note(2, n);
	/* Touch at most 16 MiB of it: a committed page must never fail to appear. */
	uint64_t touchable = MIN(n, 4096);
	for (uint64_t i = 0; i < touchable; i++)
		((volatile uint8_t *)p)[i * PAGE] = 1;
	random_calls(30);
	harness_calls++;
	KnVmUnmap(p, n * PAGE);
}

/* Many created (never started) children: they hold memory; closing their handles ends them. */
static void pressure_tasks(void)
{
	static Handle made[128];
	unsigned n = 0;
	for (; n < ARRAY_SIZE(made); n++) {
		harness_calls++;
		if (KnTaskCreate("fc-exit", "fuzzchild", 0, &made[n]) != rcOk)
			break;
	}
	pressure_note(3, n);
	/* (the model does not know them either) */
	extra_handles = true;
	random_calls(30);
	extra_handles = false;
	for (unsigned i = 0; i < n; i++) {
		harness_calls++;
		KnHandleClose(made[i]);
	}
}

/* ------------------------------------------------------------------ rounds */

static void one_call(void)
{
	struct call c;
	memset(&c, 0, sizeof(c));
	unsigned w = below(total_weight);
	unsigned i = 0;
	while (w >= gens[i].weight) {
		w -= gens[i].weight;
		i++;
	}
	gens[i].gen(&c);
	perform(&c);
}

/* One call of a given few (a scenario's). */
static void one_call_of(void (*const *set)(struct call *c), unsigned n)
{
	struct call c;
	memset(&c, 0, sizeof(c));
	set[below(n)](&c);
	perform(&c);
}

/* n random calls inside a scenario (not counted as slots: they belong to the scenario). */
static void random_calls(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		one_call();
}

/* A touch: a read or write of a page of a region the calls made, where its state allows. */
static void touch_slot(void)
{
	struct region *r = random_region();
	if (!r || r->kind == RK_DEV)
		return;
	uint64_t a = r->base + below(MIN(r->size / PAGE, 64)) * PAGE + below(PAGE);
	bool write = one_in(2);
	uint8_t value = (uint8_t)rnd();
	harness_calls++;
	if (KnVmQuery((void *)(uintptr_t)a, &qinfo) != rcOk || qinfo.state != VMM_STATE_COMMITTED ||
	    !(qinfo.flags & VMM_FLAG_READ) || (write && !(qinfo.flags & VMM_FLAG_WRITE)))
		return;
	if (write)
		*(volatile uint8_t *)(uintptr_t)a = value;
	else
		(void)*(volatile uint8_t *)(uintptr_t)a;
}

static void one_slot(void)
{
	unsigned r = below(1000);
	if (r < 40) {
		touch_slot();
	} else if (r < 55) {
		scenario_fault();
	} else if (r < 58) {
		scenario_orphan();
	} else if (r < 62) {
		scenario_task_vm();
	} else if (r < 63 && !child_mode) {
		if (one_in(4))
			scenario_child_fuzzer();
		else
			switch (below(4)) {
			case 0:
				pressure_regions();
				break;
			case 1:
				pressure_handles();
				break;
			case 2:
				pressure_commit();
				break;
			default:
				pressure_tasks();
				break;
			}
	} else {
		one_call();
	}
}

/* Ends every child: terminated and waited for; returns false if one would not go. */
static void end_children(void)
{
	for (unsigned i = 0; i < MAX_HANDLES; i++) {
		struct hrec *r = &handles[i];
		if (!r->live || r->type != KN_HANDLE_TYPE_TASK || r->child < 0 || !(r->rights & KN_RIGHT_TERMINATE))
			continue;
		harness_calls++;
		Retcode rc = KnTaskTerminate(r->h);
		if (rc != rcOk)
			finding(CK_HARNESS, NR_KnTaskTerminate, rc, "round clean-up: KnTaskTerminate(%#x) returned %d",
				r->h, rc);
	}
}

/* Closes every handle but the baseline's, and checks that the model knew them all. */
static void close_all_handles(void)
{
	char why[160];
	if (!handles_same(why, sizeof(why)))
		finding(CK_HANDLES, NR_KnHandleEnumerate, 0, "at the end of the round: %s", why);
	for (unsigned i = 0;;) {
		Handle h;
		int type;
		rtl_uint32_t rights;
		harness_calls++;
		if (KnHandleEnumerate(i, &h, &type, &rights) != rcOk)
			break;
		if (is_baseline_handle(h)) {
			i++;
			continue;
		}
		harness_calls++;
		Retcode rc = KnHandleClose(h);
		if (rc != rcOk) {
			finding(CK_HARNESS, NR_KnHandleClose, rc, "round clean-up: KnHandleClose(%#x) returned %d", h,
				rc);
			i++;
		}
	}
	memset(handles, 0, sizeof(handles));
	memset(children, 0, sizeof(children));
}

static bool is_baseline_region(uint64_t base)
{
	for (unsigned i = 0; i < nbaseline_regions; i++)
		if (baseline_regions[i] == base)
			return true;
	return false;
}

/* Unmaps every region but the baseline's (the program, its stack). */
static void unmap_all(void)
{
	for (uint64_t a = PAGE; a < USER_TOP;) {
		harness_calls++;
		if (KnVmQuery((void *)(uintptr_t)a, &qinfo) != rcOk || !qinfo.runSize)
			break;
		uint64_t base = (uint64_t)(uintptr_t)qinfo.regionBase, size = qinfo.regionSize;
		if (qinfo.state == VMM_STATE_FREE || is_baseline_region(base)) {
			a = base + size;
			continue;
		}
		harness_calls++;
		Retcode rc = KnVmUnmap((void *)(uintptr_t)base, size);
		if (rc != rcOk) {
			finding(CK_HARNESS, NR_KnVmUnmap, rc, "round clean-up: KnVmUnmap(%#llx, %#llx) returned %d",
				(unsigned long long)base, (unsigned long long)size, rc);
			a = base + size;
		}
	}
	memset(regions, 0, sizeof(regions));
}

static unsigned rounds, rounds_back;

/* The fuzzer's own account at the start of the round (KnTaskGetQuota of itself). */
static KnQuota usage0;

static bool own_usage(KnQuota *usage)
{
	KnQuota limits;
	harness_calls++;
	return KnTaskGetQuota(KN_HANDLE_SELF, &limits, usage) == rcOk;
}

static void round_end(const KnMemStats *s0, uint64_t first_slot)
{
	end_children();
	close_all_handles();
	unmap_all();
	memset(&ar, 0, sizeof(ar));
	if (child_mode)
		return;
	harness_calls++;
	KnDebugGetStats(&stats);
	/*
	 * Children the round let go of while they ran (an orphan that freezes or faults later, a
	 * child whose last handle a call closed) end on their own, soon: give them up to a
	 * hundred short waits (a created nop to wait on; a stalled host eats one), then judge.
	 */
	for (unsigned i = 0; i < 100 && stats.tasks != s0->tasks; i++) {
		Handle timer;
		harness_calls += 4;
		if (KnTaskCreate("fc-timer", "nop", 0, &timer) != rcOk)
			break;
		KnTaskWait(timer, KN_TASK_STATE_RUNNING, 20000000ull);
		KnHandleClose(timer);
		KnDebugGetStats(&stats);
	}
	rounds++;
	KnQuota u1;
	if (own_usage(&u1) && memcmp(&u1, &usage0, sizeof(u1)))
		finding(CK_ROUND, NR_KnTaskGetQuota, 0,
			"after the round of calls %llu..%llu the fuzzer's account says commit %llu -> %llu, locked "
			"%llu -> "
			"%llu, handles %llu -> %llu, regions %llu -> %llu, tasks %llu -> %llu",
			(unsigned long long)first_slot, (unsigned long long)slot,
			(unsigned long long)usage0.commitPages, (unsigned long long)u1.commitPages,
			(unsigned long long)usage0.lockedPages, (unsigned long long)u1.lockedPages,
			(unsigned long long)usage0.handles, (unsigned long long)u1.handles,
			(unsigned long long)usage0.regions, (unsigned long long)u1.regions,
			(unsigned long long)usage0.tasks, (unsigned long long)u1.tasks);
	if (stats.freePages != s0->freePages || stats.commitCharge != s0->commitCharge || stats.tasks != s0->tasks ||
	    stats.threads != s0->threads || stats.taskCommit != s0->taskCommit ||
	    stats.taskResident != s0->taskResident) {
		finding(CK_ROUND, NR_KnDebugGetStats, 0,
			"after the round of calls %llu..%llu: free pages %llu -> %llu, commit %llu -> %llu, tasks %llu "
			"-> %llu, "
			"threads %llu -> %llu, own commit %llu -> %llu, own resident %llu -> %llu",
			(unsigned long long)first_slot, (unsigned long long)slot, (unsigned long long)s0->freePages,
			(unsigned long long)stats.freePages, (unsigned long long)s0->commitCharge,
			(unsigned long long)stats.commitCharge, (unsigned long long)s0->tasks,
			(unsigned long long)stats.tasks, (unsigned long long)s0->threads,
			(unsigned long long)stats.threads, (unsigned long long)s0->taskCommit,
			(unsigned long long)stats.taskCommit, (unsigned long long)s0->taskResident,
			(unsigned long long)stats.taskResident);
	} else {
		rounds_back++;
	}
}

static void run(void)
{
	KnMemStats s0;
	uint64_t next_progress = 100000;
	while (slot < ncalls) {
		harness_calls++;
		KnDebugGetStats(&s0);
		if (!child_mode)
			own_usage(&usage0);
		commit_limit_pages = s0.commitLimit;
		uint64_t first = slot, end = MIN(ncalls, (slot / ROUND_CALLS + 1) * ROUND_CALLS);
		if (!arena_build()) {
			if (!limited)
				finding(CK_HARNESS, NR_KnVmAllocateEx, 0, "the arena could not be built");
			round_end(&s0, first);
			slot = end;
			continue;
		}
		for (; slot < end; slot++) {
			one_slot();
			if (mailbox)
				mailbox->calls = slot + 1;
		}
		slot--; /* (the round's findings are at its last call) */
		round_end(&s0, first);
		slot++;
		if (!child_mode && slot >= next_progress) {
			unsigned total = 0;
			for (unsigned i = 0; i < CK_COUNT; i++)
				total += found[i];
			printf("    # fuzz: %llu calls, %u findings\n", (unsigned long long)slot, total);
			next_progress += 100000;
		}
	}
}

/* ------------------------------------------------------------------ set-up */

static uint64_t parse_num(const char **p)
{
	uint64_t v = 0;
	while (**p == ' ')
		(*p)++;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (uint64_t)(*(*p)++ - '0');
	return v;
}

/* Names for the reproducer: the memory size QEMU was given (rounded up to a power of two)
 * and the CPU model (SMEP: -cpu max). */
static void machine_names(void)
{
	harness_calls++;
	KnDebugGetStats(&stats);
	uint64_t mib = (stats.totalPages * PAGE + (1ull << 20) - 1) >> 20, p2 = 1;
	while (p2 < mib)
		p2 <<= 1;
	if (p2 >= 1024)
		ksnprintf(mem_name, sizeof(mem_name), "%lluG", (unsigned long long)(p2 >> 10));
	else
		ksnprintf(mem_name, sizeof(mem_name), "%lluM", (unsigned long long)p2);
	uint32_t a = 7, b, c = 0, d;
	__asm__ __volatile__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	kstrlcpy(cpu_name, (b & (1u << 7)) ? "max" : "qemu64", sizeof(cpu_name));
}

/* What exists before the first round: kept out of every clean-up. */
static void take_baseline(void)
{
	nbaseline_regions = 0;
	for (uint64_t a = PAGE; a < USER_TOP;) {
		harness_calls++;
		if (KnVmQuery((void *)(uintptr_t)a, &qinfo) != rcOk || !qinfo.runSize)
			break;
		if (qinfo.state != VMM_STATE_FREE && nbaseline_regions < ARRAY_SIZE(baseline_regions))
			baseline_regions[nbaseline_regions++] = (uint64_t)(uintptr_t)qinfo.regionBase;
		a = (uint64_t)(uintptr_t)qinfo.regionBase + qinfo.regionSize;
	}
	nbaseline_handles = 0;
	for (unsigned i = 0; nbaseline_handles < ARRAY_SIZE(baseline_handles); i++) {
		Handle h;
		int type;
		rtl_uint32_t rights;
		harness_calls++;
		if (KnHandleEnumerate(i, &h, &type, &rights) != rcOk)
			break;
		baseline_handles[nbaseline_handles++] = h;
	}
}

/* The handle table at its largest once: its growth is not what a round should see. */
static void grow_handle_table(void)
{
	Handle h;
	unsigned n = 0;
	while (n < 5000 && KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, 0, &h) == rcOk)
		n++;
	harness_calls += n + 1;
	for (;;) {
		int type;
		rtl_uint32_t rights;
		harness_calls += 2;
		if (KnHandleEnumerate(nbaseline_handles, &h, &type, &rights) != rcOk || KnHandleClose(h) != rcOk)
			break;
	}
}

/* The writable part of the program's image (user/user.ld). */
extern char __data_start[], __image_end[];

/* Faults in .data and .bss (as ktap_start does), so that no call below moves them. */
static void touch_image(void)
{
	for (uintptr_t a = (uintptr_t)__data_start & ~(PAGE - 1); a < (uintptr_t)__image_end; a += PAGE)
		(void)*(volatile char *)(a < (uintptr_t)__data_start ? (uintptr_t)__data_start : a);
}

int main(int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : "";
	const char *p;

	if (!strncmp(name, "fuzz ", 5)) {
		p = name + 5;
	} else if (!strncmp(name, "fuzzc ", 6)) {
		child_mode = true;
		p = name + 6;
	} else {
		return 0; /* (a task made from this program under another name: nothing to do) */
	}
	seed = parse_num(&p);
	ncalls = parse_num(&p);
	child_end = (unsigned)parse_num(&p);
	rs = (seed + 1) * 0x9e3779b97f4a7c15ull;
	rs = rs ? rs : 1;
	for (unsigned i = 0; i < ARRAY_SIZE(gens); i++)
		total_weight += gens[i].weight;

	if (!child_mode)
		ktap_start();
	else
		touch_image();
	stack_pregrow(64 * 1024); /* (the deepest calls' stack, before the first snapshot) */
	machine_names();
	rtl_uint32_t cpu; /* (what KnThreadGetCpu's answers are checked against) */
	KnThreadGetCpu(&cpu, &ncpus);
	harness_calls++;
	/* Privileged: the kernel test starts the fuzzer with KN_TASK_PRIVILEGED. */
	Handle probe;
	harness_calls++;
	privileged = KnPmmMdlCreateFromPhys(0xfee00000ull, PAGE, VMM_FLAG_READ, &probe) == rcOk;
	if (privileged)
		KnHandleClose(probe);
	take_baseline();
	if (child_mode) {
		/* The mailbox: the first MDL handle, mapped; then it is a baseline handle no more. */
		for (unsigned i = 0; i < nbaseline_handles; i++) {
			void *m = RTL_NULL;
			harness_calls++;
			if (KnPmmMdlMap(baseline_handles[i], 0, PAGE, RTL_NULL, RW, &m) == rcOk) {
				mailbox = m;
				KnHandleClose(baseline_handles[i]);
				break;
			}
		}
		take_baseline();
		KnQuota limits, usage;
		harness_calls++;
		if (KnTaskGetQuota(KN_HANDLE_SELF, &limits, &usage) == rcOk)
			limited = limits.commitPages != KN_QUOTA_UNLIMITED || limits.handles != KN_QUOTA_UNLIMITED ||
				  limits.regions != KN_QUOTA_UNLIMITED || limits.lockedPages != KN_QUOTA_UNLIMITED ||
				  limits.tasks != KN_QUOTA_UNLIMITED;
		if (mailbox) {
			mailbox->findings = 0;
			mailbox->calls = 0;
			mailbox->magic = MAILBOX_MAGIC;
		}
	} else {
		grow_handle_table();
		printf("    # fuzz: seed %llu, %llu calls, %s of memory, CPU %s%s\n", (unsigned long long)seed,
		       (unsigned long long)ncalls, mem_name, cpu_name, privileged ? ", privileged" : "");
	}

	run();

	unsigned total = 0;
	for (unsigned i = 0; i < CK_COUNT; i++)
		total += found[i];
	if (child_mode) {
		switch (child_end) {
		case 0:
			return (int)total;
		case 1:
			KnTaskExit(0);
		case 2:
			KnTaskFreeze(KN_HANDLE_SELF);
			return 100;
		case 3:
			KnTaskTerminate(KN_HANDLE_SELF);
			return 101;
		default:
			__asm__ __volatile__("ud2");
			return 102;
		}
	}

	/* The summary: calls per system call and how they failed. */
	uint64_t all = 0;
	for (unsigned nr = 0; nr <= NCALLS; nr++)
		all += calls_made[nr];
	printf("    # fuzz: %llu calls (%llu system calls, %llu more by the harness), %u rounds, %u findings (%u "
	       "repeats)\n",
	       (unsigned long long)slot, (unsigned long long)all, (unsigned long long)harness_calls, rounds, total,
	       repeats);
	for (unsigned nr = 0; nr <= NCALLS; nr++) {
		if (!IS_CALL(nr))
			continue;
		char line[400];
		size_t n = (size_t)ksnprintf(line, sizeof(line), "    # %s: %llu", call_name[nr],
					     (unsigned long long)calls_made[nr]);
		for (unsigned rc = 1; rc < RC_COUNT && n < sizeof(line); rc++)
			if (calls_failed[nr][rc])
				n += (size_t)ksnprintf(line + n, sizeof(line) - n, ", %s %llu", rc_name[rc],
						       (unsigned long long)calls_failed[nr][rc]);
		printf("%s\n", line);
	}
	unsigned kinds = 0;
	for (unsigned k = 0; k < ARRAY_SIZE(fc_kinds); k++)
		kinds += (kinds_seen[k / 64] >> (k % 64)) & 1;
	printf("    # fuzz: %u children of %u kinds (%u faults contained, %u could not set up for want of memory), %u "
	       "child "
	       "fuzzers\n",
	       children_run, kinds, faults_contained, children_unset, fuzzers_run);

	printf("    # fuzz: pressure: %u times up to %llu regions, %u times %llu more handles (a full table), %u times "
	       "%llu pages committed (the limit), %u times %llu tasks\n",
	       pressure[0].runs, (unsigned long long)pressure[0].most, pressure[1].runs,
	       (unsigned long long)pressure[1].most, pressure[2].runs, (unsigned long long)pressure[2].most,
	       pressure[3].runs, (unsigned long long)pressure[3].most);

	for (unsigned i = 0; i < CK_COUNT; i++)
		ktap_check(found[i] == 0, check_name[i], "%u findings, the first at call %llu", found[i],
			   (unsigned long long)first_at[i]);
	/* Coverage, once the run is long enough to promise it. */
	if (ncalls >= 5000) {
		unsigned missing = 0;
		for (unsigned nr = 0; nr < NCALLS; nr++)
			missing += IS_CALL(nr) && nr != NR_KnTaskExit && nr != NR_KnThreadExit && !calls_made[nr];
		ktap_check(missing == 0 && kinds == ARRAY_SIZE(fc_kinds),
			   "every system call made, every kind of child run",
			   "%u calls never made, %u of %u kinds of child", missing, kinds,
			   (unsigned)ARRAY_SIZE(fc_kinds));
	}
	ktap_done();
}
