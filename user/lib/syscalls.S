/* SPDX-License-Identifier: MIT */
/* libkn system call stubs, one per entry of include/kn/syscall_table.h (nothing else lists
 * them). The fourth argument moves from rcx (C ABI) to r10 (SYSCALL clobbers rcx). */
#include <kn/syscall_table.h>

#define STUB(n, name, handler) \
	.globl name; .type name, @function; name: movq %rcx, %r10; movl $n, %eax; syscall; ret;

	.text
KN_SYSCALLS(STUB)
