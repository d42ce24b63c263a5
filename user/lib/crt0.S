/* SPDX-License-Identifier: MIT */
/* Program entry: rdi = argc, rsi = argv (argv[0] is the task's name), rsp 16-byte aligned. */
	.section .text.start, "ax"
	.globl _start
	.type _start, @function
_start:
	xorl %ebp, %ebp       /* the end of every backtrace */
	call main
	movl %eax, %edi
	call KnTaskExit
	ud2
