// SPDX-License-Identifier: MIT
/*
 * panic(): the message, then the registers and backtrace and the machine's stop through the
 * operations arch registered (knmm/panic.h). A panic inside a panic gives up at once.
 */
#include <arch/irqflags.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/spinlock.h>

static int panic_depth;
static volatile unsigned panic_cpu = ~0u; /* the CPU that panicked first */
static const struct panic_ops *ops;

void panic_set_ops(const struct panic_ops *o) { ops = o; }

static __noreturn void panic_halt(void)
{
	if (ops)
		ops->halt();
	for (;;)
		cpu_halt();
}

static __noreturn void panic_finish(const struct trap_frame *tf, const char *fmt, va_list ap)
{
	char msg[256];

	irq_disable();
	if (__atomic_fetch_add(&panic_depth, 1, __ATOMIC_ACQ_REL) > 0) {
		/* Another CPU is panicking: it stops this one (stop_others); wait for it here. */
		if (panic_cpu != spin_this_cpu())
			for (;;)
				cpu_halt();
		/* A panic while panicking: say so with the least machinery and stop. */
		console_write("\nKERNEL PANIC (nested): giving up\n", 34);
		panic_halt();
	}
	panic_cpu = spin_this_cpu();
	if (ops && ops->stop_others)
		ops->stop_others();
	panic_in_progress = true;
	console_break_lock();
	kvsnprintf(msg, sizeof(msg), fmt, ap);
	pr_err("KERNEL PANIC: %s", msg);
	if (ops && tf)
		ops->dump(tf);
	pr_err("---[ end kernel panic ]---");
	panic_halt();
}

__noreturn void panic_with_frame(const struct trap_frame *tf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	panic_finish(tf, fmt, ap);
}

__noreturn __noinline void panic(const char *fmt, ...)
{
	uint64_t frame[PANIC_FRAME_BYTES / sizeof(uint64_t)] __aligned(16);
	struct trap_frame *tf = NULL;
	va_list ap;

	if (ops) {
		tf = (struct trap_frame *)frame;
		ops->capture(tf); /* rip inside panic(), rbp its frame: the backtrace starts here */
	}
	va_start(ap, fmt);
	panic_finish(tf, fmt, ap);
}
