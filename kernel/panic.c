// SPDX-License-Identifier: MIT
#include <arch/cpu.h>
#include <arch/qemu.h>
#include <arch/trap.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>

static volatile int panic_depth;

static __noreturn void panic_finish(const struct trap_frame *tf, const char *fmt, va_list ap)
{
	char msg[256];

	irq_disable();
	if (++panic_depth > 1) {
		/* A panic while panicking: say so with the least machinery and stop. */
		console_write("\nKERNEL PANIC (nested): giving up\n", 34);
		qemu_exit(QEMU_EXIT_PANIC);
	}
	panic_in_progress = true;
	console_break_lock();
	kvsnprintf(msg, sizeof(msg), fmt, ap);
	pr_err("KERNEL PANIC: %s", msg);
	trap_dump_frame(tf);
	pr_err("---[ end kernel panic ]---");
	qemu_exit(QEMU_EXIT_PANIC);
}

__noreturn void panic_with_frame(const struct trap_frame *tf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	panic_finish(tf, fmt, ap);
}

__noreturn __noinline void panic(const char *fmt, ...)
{
	struct trap_frame tf;
	va_list ap;

	trap_capture_frame(&tf); /* rip inside panic(), rbp its frame: the backtrace starts here */
	va_start(ap, fmt);
	panic_finish(&tf, fmt, ap);
}
