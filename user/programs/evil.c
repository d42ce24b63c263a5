// SPDX-License-Identifier: MIT
/*
 * Does one forbidden thing, chosen by its task name; it must not survive it (the kernel
 * logs the exception and ends the task). Exits 99 if it does survive.
 *   kread kwrite kexec null ud div priv brk peek:HEXADDR poke:HEXADDR compat
 *
 * test_tasks runs each role (the test user.tasks); the line the kernel logs for each, which
 * the runner (tests/run.py) must find in that test's part of the log:
 * EXPECT-LOG(user.tasks): W task kread: access violation at 0xffffffff80100000 rip 0x
 * EXPECT-LOG(user.tasks): W task kwrite: access violation at 0xffff800000100000 rip 0x
 * EXPECT-LOG(user.tasks): W task kexec: access violation at 0xffffffff80100000 rip 0xffffffff80100000
 * EXPECT-LOG(user.tasks): W task null: access violation at 0x0 rip 0x
 * EXPECT-LOG(user.tasks): W task ud: invalid opcode at 0x[0-9a-f]+ rip 0x
 * EXPECT-LOG(user.tasks): W task div: divide error at 0x
 * EXPECT-LOG(user.tasks): W task priv: general protection at 0x
 * EXPECT-LOG(user.tasks): W task brk: general protection at 0x
 * EXPECT-LOG(user.tasks): W task peek:[0-9a-f]+: access violation at 0x[0-9a-f]+ rip 0x
 * EXPECT-LOG(user.tasks): W task poke:[0-9a-f]+: access violation at 0x[0-9a-f]+ rip 0x
 * A far return into the null 32-bit code descriptor: #GP, or under SMAP in QEMU a refused
 * supervisor-mode read of the return frame first.
 * EXPECT-LOG(user.tasks): W task compat: (general protection|access violation) at 0x
 */
#include <knlib.h>

static uint64_t parse_hex(const char *s)
{
	uint64_t v = 0;
	for (; *s; s++)
		v = v * 16 + (uint64_t)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
	return v;
}

int main(int argc, char **argv)
{
	const char *role = argc > 0 ? argv[0] : "";

	if (!strcmp(role, "kread"))
		(void)*(volatile uint64_t *)0xffffffff80100000ull;
	else if (!strcmp(role, "kwrite"))
		*(volatile uint64_t *)0xffff800000100000ull = 1;
	else if (!strcmp(role, "kexec"))
		((void (*)(void))0xffffffff80100000ull)();
	else if (!strcmp(role, "null"))
		(void)*(volatile uint64_t *)0;
	else if (!strcmp(role, "ud"))
		__asm__ __volatile__("ud2");
	else if (!strcmp(role, "div"))
		__asm__ __volatile__("xorl %%edx, %%edx; movl $1, %%eax; xorl %%ecx, %%ecx; divl %%ecx" ::
					     : "eax", "ecx", "edx");
	else if (!strcmp(role, "priv"))
		__asm__ __volatile__("cli");
	else if (!strcmp(role, "brk"))
		__asm__ __volatile__("int3");
	else if (!strncmp(role, "peek:", 5))
		(void)*(volatile uint64_t *)parse_hex(role + 5);
	else if (!strncmp(role, "poke:", 5))
		*(volatile uint64_t *)parse_hex(role + 5) = 0x6666666666666666ull;
	else if (!strcmp(role, "compat")) /* into 32-bit code (selector 0x18 | 3), then SYSCALL */
		__asm__ __volatile__("pushq $0x1b\n\t"
				     "leaq 1f(%%rip), %%rax\n\t"
				     "pushq %%rax\n\t"
				     "lretq\n\t"
				     ".code32\n"
				     "1: syscall\n\t"
				     ".code64\n" ::
					     : "rax", "rcx", "r11", "memory");
	printf("evil %s survived\n", role);
	return 99;
}
