// SPDX-License-Identifier: MIT
/* Registers what the ground floor stands on: the console, the log's clock, the panic ops. */
#include <arch/apic.h>
#include <arch/ground.h>
#include <arch/qemu.h>
#include <arch/serial.h>
#include <arch/time.h>
#include <arch/trap.h>
#include <knmm/log.h>
#include <knmm/panic.h>

_Static_assert(sizeof(struct trap_frame) <= PANIC_FRAME_BYTES, "panic() keeps a trap frame on its stack");

static void com1_putc(char c) { serial_putc(COM1_PORT, c); }

static __noreturn void panic_exit(void) { qemu_exit(QEMU_EXIT_PANIC); }

static const struct panic_ops x86_panic_ops = {
	.capture = trap_capture_frame,
	.dump = trap_dump_frame,
	.halt = panic_exit,
	.stop_others = apic_send_nmi_others,
};

void arch_ground_init(void)
{
	serial_init(COM1_PORT);
	console_set_output(com1_putc);
	log_set_clock(clock_ns);
	panic_set_ops(&x86_panic_ops);
}
