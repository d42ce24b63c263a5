// SPDX-License-Identifier: MIT
/*
 * The children of the fuzzer (user/programs/fuzz.c, docs/fuzz.md), each doing what its task
 * name says. The name is "fc-KIND" or "fc-KIND-N" (N for the roles that take a number); the
 * fuzzer keeps the list of kinds and what each must end in (fuzz_kinds.h).
 *
 * Most kinds do one thing ring 3 must not get away with: touch kernel memory, run a
 * privileged instruction, divide by zero, jump to a non-canonical address, fall into a
 * guard page, ... The kernel must end the task (or freeze it, if it was created
 * KN_TASK_DUMPABLE) and go on. A child that survives its fault exits with FC_SURVIVED; for
 * the few kinds a CPU may allow (an alignment check without CR0.AM, SGDT without UMIP) the
 * fuzzer accepts that.
 *
 * The others: "exit-N" ends with KnTaskExit(N), "term" terminates itself, "freeze" freezes
 * itself, "sleep" blocks in the kernel until it is terminated or frozen (waiting for a
 * grandchild it never starts, which the kernel must end with it).
 */
#include <knlib.h>
#include "fuzz_kinds.h"

#define PAGE 4096ull
#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)

static volatile uint8_t data_ret[64] = { 0xc3 }; /* a `ret` in writable, no-execute data */
static const uint8_t rodata_ret[64] = { 0xc3 };

static uint64_t number_of(const char *s)
{
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

static void *region(uint64_t size, int flags)
{
	void *p = KnVmAllocate(RTL_NULL, size, flags);
	if (!p)
		KnTaskExit(FC_SETUP_FAILED);
	return p;
}

/* Deep enough to pass any stack: each frame holds a page the compiler cannot drop. */
static __attribute__((noinline)) unsigned recurse(unsigned depth)
{
	volatile uint8_t frame[PAGE];
	frame[0] = (uint8_t)depth;
	if (depth == ~0u)
		return 0;
	return recurse(depth + 1) + frame[0];
}

/* An address the compiler cannot reason about (it would refuse to compile a null write). */
static volatile uint64_t *at(uint64_t a)
{
	__asm__("" : "+r"(a));
	return (volatile uint64_t *)(uintptr_t)a;
}

static void call_at(uint64_t a)
{
	__asm__("" : "+r"(a));
	((void (*)(void))(uintptr_t)a)();
}

/* Blocks until terminated or frozen: a grandchild that never starts never runs. */
static void sleep_for_ever(void)
{
	Handle g;
	if (KnTaskCreate("fc-unstarted", "nop", 0, &g) != rcOk)
		KnTaskExit(FC_SETUP_FAILED);
	for (;;)
		KnTaskWait(g, KN_TASK_STATE_RUNNING, ~0ull);
}

int main(int argc, char **argv);

static void do_kind(const char *k)
{
	if (!strcmp(k, "kread"))
		(void)*at(0xffffffff80100000ull);
	else if (!strcmp(k, "kwrite"))
		*at(0xffff800000100000ull) = 1;
	else if (!strcmp(k, "kexec"))
		call_at(0xffffffff80100000ull);
	else if (!strcmp(k, "null-read"))
		(void)*at(0);
	else if (!strcmp(k, "null-write"))
		*at(8) = 1;
	else if (!strcmp(k, "null-exec"))
		call_at(0);
	else if (!strcmp(k, "noncanon-read"))
		(void)*at(0x0000800000000000ull);
	else if (!strcmp(k, "noncanon-write"))
		*at(0x8000000000001000ull) = 1;
	else if (!strcmp(k, "noncanon-jump"))
		call_at(0x0000800000000000ull);
	else if (!strcmp(k, "user-top-exec")) /* the last user page is not mapped: fall off it */
		call_at(0x00007ffffffffff0ull);
	else if (!strcmp(k, "ud2"))
		__asm__ __volatile__("ud2");
	else if (!strcmp(k, "lock-nop")) /* a LOCK prefix on an instruction that takes none */
		__asm__ __volatile__(".byte 0xf0, 0x90");
	else if (!strcmp(k, "div0"))
		__asm__ __volatile__("xorl %%edx, %%edx; movl $1, %%eax; xorl %%ecx, %%ecx; divl %%ecx" ::
					     : "eax", "ecx", "edx");
	else if (!strcmp(k, "idiv-overflow")) /* INT64_MIN / -1 */
		__asm__ __volatile__("movabsq $0x8000000000000000, %%rax; cqo; movq $-1, %%rcx; idivq %%rcx" ::
					     : "rax", "rcx", "rdx");
	else if (!strcmp(k, "cli"))
		__asm__ __volatile__("cli");
	else if (!strcmp(k, "hlt"))
		__asm__ __volatile__("hlt");
	else if (!strcmp(k, "in"))
		__asm__ __volatile__("inb $0x60, %%al" ::: "eax");
	else if (!strcmp(k, "out"))
		__asm__ __volatile__("movb $0, %%al; outb %%al, $0x80" ::: "eax");
	else if (!strcmp(k, "int3"))
		__asm__ __volatile__("int3");
	else if (!strcmp(k, "int1")) /* ICEBP: a #DB that skips the gate's privilege check */
		__asm__ __volatile__(".byte 0xf1");
	else if (!strcmp(k, "int-nmi"))
		__asm__ __volatile__("int $2");
	else if (!strcmp(k, "int-df"))
		__asm__ __volatile__("int $8");
	else if (!strcmp(k, "int-pf"))
		__asm__ __volatile__("int $14");
	else if (!strcmp(k, "int-mc"))
		__asm__ __volatile__("int $18");
	else if (!strcmp(k, "int-timer"))
		__asm__ __volatile__("int $0x20");
	else if (!strcmp(k, "int-80"))
		__asm__ __volatile__("int $0x80");
	else if (!strcmp(k, "int-ff"))
		__asm__ __volatile__("int $0xff");
	else if (!strcmp(k, "single-step")) /* TF, then any instruction */
		__asm__ __volatile__("pushfq; orq $0x100, (%%rsp); popfq; nop; nop" ::: "memory", "cc");
	else if (!strcmp(k, "step-syscall")) /* TF set across a SYSCALL (KnDebugNop) */
		__asm__ __volatile__("pushfq; orq $0x100, (%%rsp); popfq; xorl %%eax, %%eax; syscall; nop" ::
					     : "rax", "rcx", "r11", "memory", "cc");
	else if (!strcmp(k, "lgdt"))
		__asm__ __volatile__("subq $16, %%rsp; lgdt (%%rsp); addq $16, %%rsp" ::: "memory");
	else if (!strcmp(k, "lidt"))
		__asm__ __volatile__("subq $16, %%rsp; lidt (%%rsp); addq $16, %%rsp" ::: "memory");
	else if (!strcmp(k, "read-cr3"))
		__asm__ __volatile__("movq %%cr3, %%rax" ::: "rax");
	else if (!strcmp(k, "write-cr0"))
		__asm__ __volatile__("xorl %%eax, %%eax; movq %%rax, %%cr0" ::: "rax");
	else if (!strcmp(k, "rdmsr"))
		__asm__ __volatile__("movl $0xc0000080, %%ecx; rdmsr" ::: "rax", "rcx", "rdx");
	else if (!strcmp(k, "wrmsr")) /* LSTAR := 0 */
		__asm__ __volatile__("movl $0xc0000082, %%ecx; xorl %%eax, %%eax; xorl %%edx, %%edx; wrmsr" ::
					     : "rax", "rcx", "rdx");
	else if (!strcmp(k, "rdpmc"))
		__asm__ __volatile__("xorl %%ecx, %%ecx; rdpmc" ::: "rax", "rcx", "rdx");
	else if (!strcmp(k, "swapgs"))
		__asm__ __volatile__("swapgs");
	else if (!strcmp(k, "sysret"))
		__asm__ __volatile__("sysretq");
	else if (!strcmp(k, "sysenter"))
		__asm__ __volatile__("sysenter");
	else if (!strcmp(k, "invlpg"))
		__asm__ __volatile__("invlpg (%%rsp)" ::: "memory");
	else if (!strcmp(k, "wbinvd"))
		__asm__ __volatile__("wbinvd");
	else if (!strcmp(k, "bad-ds")) /* a selector past the end of the GDT */
		__asm__ __volatile__("movl $0xfff3, %%eax; movl %%eax, %%ds" ::: "rax");
	else if (!strcmp(k, "kernel-ss")) /* the kernel's data selector with RPL 3 */
		__asm__ __volatile__("movl $0x13, %%eax; movl %%eax, %%ss" ::: "rax");
	else if (!strcmp(k, "iret-kernel-cs")) /* an IRET frame that asks for ring 0 */
		__asm__ __volatile__("movq %%rsp, %%rax\n\t"
				     "pushq $0x23\n\t" /* ss (anything) */
				     "pushq %%rax\n\t"
				     "pushfq\n\t"
				     "pushq $0x08\n\t" /* cs: the kernel's */
				     "leaq 1f(%%rip), %%rax\n\t"
				     "pushq %%rax\n\t"
				     "iretq\n"
				     "1:" ::
					     : "rax", "memory");
	else if (!strcmp(k, "far-jmp-kernel"))
		__asm__ __volatile__("leaq 1f(%%rip), %%rax\n\t"
				     "pushq $0x08\n\t"
				     "pushq %%rax\n\t"
				     "lretq\n"
				     "1:" ::
					     : "rax", "memory");
	else if (!strcmp(k, "compat")) /* a far return into the null 32-bit code descriptor */
		__asm__ __volatile__("pushq $0x1b\n\t"
				     "leaq 1f(%%rip), %%rax\n\t"
				     "pushq %%rax\n\t"
				     "lretq\n\t"
				     ".code32\n"
				     "1: syscall\n\t"
				     ".code64\n" ::
					     : "rax", "rcx", "r11", "memory");
	else if (!strcmp(k, "movaps-unaligned"))
		__asm__ __volatile__("subq $64, %%rsp; movaps 8(%%rsp), %%xmm0; addq $64, %%rsp" ::: "xmm0", "memory");
	else if (!strcmp(k, "sse-div0")) {                         /* #XM once divide-by-zero is unmasked */
		uint32_t csr = 0x1f80 & ~0x200u, one = 0x3f800000; /* 1.0f */
		__asm__ __volatile__(
			"ldmxcsr %0; xorps %%xmm1, %%xmm1; movss %1, %%xmm0; divss %%xmm1, %%xmm0" ::"m"(csr), "m"(one)
			: "xmm0", "xmm1");
	} else if (!strcmp(k, "x87-div0")) { /* #MF at the next waiting x87 instruction */
		uint16_t cw = 0x037f & ~0x4u;
		uint64_t zero = 0; /* +0.0 */
		__asm__ __volatile__("fninit; fldcw %0; fld1; fdivl %1; fwait; fninit" ::"m"(cw), "m"(zero));
	} else if (!strcmp(k, "alignment-check")) /* #AC only where the kernel sets CR0.AM */
		__asm__ __volatile__("pushfq; orq $0x40000, (%%rsp); popfq\n\t"
				     "movl 1(%%rsp), %%eax\n\t"
				     "pushfq; andq $~0x40000, (%%rsp); popfq" ::
					     : "rax", "memory", "cc");
	else if (!strcmp(k, "sgdt")) /* #GP only with UMIP */
		__asm__ __volatile__("subq $16, %%rsp; sgdt (%%rsp); addq $16, %%rsp" ::: "memory");
	else if (!strcmp(k, "stack-overflow"))
		recurse(0);
	else if (!strcmp(k, "rsp-kernel")) /* a push onto a kernel-half stack */
		__asm__ __volatile__(
			"movq %%rsp, %%rbx; movabsq $0xffffffff80100000, %%rsp; pushq $1; movq %%rbx, %%rsp" ::
				: "rbx", "memory");
	else if (!strcmp(k, "rsp-noncanon"))
		__asm__ __volatile__(
			"movq %%rsp, %%rbx; movabsq $0x0000800000000010, %%rsp; pushq $1; movq %%rbx, %%rsp" ::
				: "rbx", "memory");
	else if (!strcmp(k, "syscall-rsp-kernel")) /* the kernel must not trust rsp: then the push faults */
		__asm__ __volatile__(
			"movq %%rsp, %%rbx; movabsq $0xffffffff80100000, %%rsp; xorl %%eax, %%eax; syscall\n\t"
			"pushq $1; movq %%rbx, %%rsp" ::
				: "rax", "rbx", "rcx", "r11", "memory");
	else if (!strcmp(k, "syscall-rsp-noncanon"))
		__asm__ __volatile__(
			"movq %%rsp, %%rbx; movabsq $0x8000000000000000, %%rsp; xorl %%eax, %%eax; syscall\n\t"
			"pushq $1; movq %%rbx, %%rsp" ::
				: "rax", "rbx", "rcx", "r11", "memory");
	else if (!strcmp(k, "ret-to-kernel"))
		__asm__ __volatile__("movabsq $0xffffffff80100000, %%rax; pushq %%rax; ret" ::: "rax", "memory");
	else if (!strcmp(k, "write-text"))
		*at((uint64_t)(uintptr_t)&main) = 0xcc;
	else if (!strcmp(k, "write-rodata"))
		*(volatile uint8_t *)(uintptr_t)rodata_ret = 0;
	else if (!strcmp(k, "exec-data"))
		call_at((uint64_t)(uintptr_t)data_ret);
	else if (!strcmp(k, "exec-rodata"))
		call_at((uint64_t)(uintptr_t)rodata_ret);
	else if (!strcmp(k, "exec-stack")) {
		volatile uint8_t code[16] = { 0xc3 };
		call_at((uint64_t)(uintptr_t)code);
	} else if (!strcmp(k, "guard-low") || !strcmp(k, "guard-high")) {
		volatile uint8_t *p = region(2 * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW | VMM_FLAG_LOW_GUARD |
							       VMM_FLAG_HIGH_GUARD);
		p[0] = 1;
		p[2 * PAGE - 1] = 1;
		(void)p[k[6] == 'l' ? -1 : (long)(2 * PAGE)];
	} else if (!strcmp(k, "reserved")) {
		volatile uint8_t *p = region(PAGE, VMM_FLAG_RESERVE | RW);
		p[0] = 1;
	} else if (!strcmp(k, "read-only")) {
		volatile uint8_t *p = region(PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
		p[0] = 1;
		if (KnVmProtect((void *)p, PAGE, VMM_FLAG_READ) != rcOk)
			KnTaskExit(FC_SETUP_FAILED);
		p[0] = 2;
	} else if (!strcmp(k, "exec-nx")) {
		volatile uint8_t *p = region(PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
		p[0] = 0xc3;
		call_at((uint64_t)(uintptr_t)p);
	} else if (!strcmp(k, "decommitted")) {
		volatile uint8_t *p = region(PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
		p[0] = 1;
		if (KnVmDecommit((void *)p, PAGE) != rcOk)
			KnTaskExit(FC_SETUP_FAILED);
		(void)p[0];
	} else if (!strcmp(k, "unmapped")) {
		volatile uint8_t *p = region(PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
		p[0] = 1;
		if (KnVmUnmap((void *)p, PAGE) != rcOk)
			KnTaskExit(FC_SETUP_FAILED);
		p[0] = 2;
	} else if (!strcmp(k, "mdl-ro-write")) { /* a read-only mapping of a writable MDL */
		Handle h;
		void *p;
		if (KnPmmMdlCreate(PAGE, RW, &h) != rcOk ||
		    KnPmmMdlMap(h, 0, PAGE, RTL_NULL, VMM_FLAG_READ, &p) != rcOk)
			KnTaskExit(FC_SETUP_FAILED);
		*(volatile uint8_t *)p = 1;
	} else if (!strcmp(k, "mdl-nx-exec")) {
		Handle h;
		void *p;
		if (KnPmmMdlCreate(PAGE, RW, &h) != rcOk || KnPmmMdlMap(h, 0, PAGE, RTL_NULL, RW, &p) != rcOk)
			KnTaskExit(FC_SETUP_FAILED);
		*(volatile uint8_t *)p = 0xc3;
		call_at((uint64_t)(uintptr_t)p);
	} else if (!strcmp(k, "term")) {
		KnTaskTerminate(KN_HANDLE_SELF);
		return; /* (it does not come back) */
	} else if (!strcmp(k, "freeze")) {
		KnTaskFreeze(KN_HANDLE_SELF);
		return;
	} else if (!strcmp(k, "sleep")) {
		sleep_for_ever();
	} else if (!strcmp(k, "exit")) {
		KnTaskExit(0);
	} else {
		KnTaskExit(FC_UNKNOWN_KIND);
	}
}

int main(int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : "";
	char kind[32];

	if (strncmp(name, "fc-", 3))
		return FC_UNKNOWN_KIND;
	kstrlcpy(kind, name + 3, sizeof(kind));
	/* "exit-N": the code is N, as a signed 32-bit number (written unsigned). */
	if (!strncmp(kind, "exit-", 5))
		KnTaskExit((int)(uint32_t)number_of(kind + 5));
	do_kind(kind);
	return FC_SURVIVED;
}
