// SPDX-License-Identifier: MIT
/*
 * The child test_task_vm prepares before it starts (KnTaskVm*), checking from the inside
 * what its parent made of its address space, by its task name:
 *
 * "tvm-check": at AT, a region of 8 pages whose pages 0-2 are committed read-write, page 3
 * reserved read-write, pages 4-7 reserved read-only; and at AT + 16 pages a grow-down
 * region of 4 pages with a low guard. It writes and reads back pages 0-2 and grows the
 * grow-down region to its bottom. Exits 0, or the number of the first check that failed.
 *
 * "tvm-ro": writes to AT, which its parent committed and then made read-only: an access
 * violation (the kernel ends it: KN_EXIT_EXCEPTION).
 * EXPECT-LOG(user.task_vm): W task tvm-ro: access violation at 0x60000000 rip 0x
 */
#include <knlib.h>

#define AT   0x60000000ull
#define PAGE 4096ull
#define RW   (VMM_FLAG_READ | VMM_FLAG_WRITE)

static volatile uint8_t *at(uint64_t a) { return (volatile uint8_t *)(uintptr_t)a; }

static bool is(uint64_t a, int state, int prot)
{
	KnVmInfo i;
	return KnVmQuery((const void *)(uintptr_t)a, &i) == rcOk && i.state == state &&
	       (i.flags & VMM_FLAG_RWX_MASK) == prot;
}

static int check(void)
{
	for (unsigned p = 0; p < 3; p++)
		if (!is(AT + p * PAGE, VMM_STATE_COMMITTED, RW))
			return 1;
	if (!is(AT + 3 * PAGE, VMM_STATE_RESERVED, RW))
		return 2;
	for (unsigned p = 4; p < 8; p++)
		if (!is(AT + p * PAGE, VMM_STATE_RESERVED, VMM_FLAG_READ))
			return 3;
	for (unsigned p = 0; p < 3; p++)
		*at(AT + p * PAGE + 7) = (uint8_t)(0x40 + p);
	for (unsigned p = 0; p < 3; p++)
		if (*at(AT + p * PAGE + 7) != 0x40 + p)
			return 4;
	/* The grow-down region: usable [AT + 17 pages, AT + 21 pages), its guard below. */
	uint64_t g = AT + 17 * PAGE;
	if (!is(g + 3 * PAGE, VMM_STATE_COMMITTED, RW) || !is(g, VMM_STATE_RESERVED, RW) ||
	    !is(g - PAGE, VMM_STATE_GUARD, 0))
		return 5;
	for (uint64_t a = g + 4 * PAGE; a > g; a -= PAGE)
		*at(a - 8) = 1; /* grows it, a page at a time */
	if (!is(g, VMM_STATE_COMMITTED, RW))
		return 6;
	return 0;
}

int main(int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : "";

	if (!strcmp(name, "tvm-check"))
		return check();
	if (!strcmp(name, "tvm-ro")) {
		*at(AT) = 1;
		return 100; /* (it must not get here) */
	}
	return 99;
}
