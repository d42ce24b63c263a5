// SPDX-License-Identifier: MIT
#include <arch/cpu.h>
#include <arch/io.h>
#include <arch/qemu.h>

__noreturn void qemu_exit(unsigned code)
{
	outl(QEMU_EXIT_PORT, code);
	cpu_halt_forever();
}

__noreturn void cpu_halt_forever(void)
{
	for (;;) {
		irq_disable();
		cpu_halt();
	}
}
