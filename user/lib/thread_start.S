/* SPDX-License-Identifier: MIT */
/* The first code of a thread made by thread_create (knlib.c): rsp is 16-byte aligned and
 * holds fn, then arg (KnThreadCreate's entry gets what _start gets). fn(arg) is called as C
 * calls a function; when it returns, the thread ends. */
	.text
	.globl kn_thread_start
	.type kn_thread_start, @function
kn_thread_start:
	xorl %ebp, %ebp       /* the end of every backtrace */
	movq (%rsp), %rax
	movq 8(%rsp), %rdi
	call *%rax
	call KnThreadExit
	ud2
