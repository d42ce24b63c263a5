/* SPDX-License-Identifier: MIT */
/*
 * Leaving QEMU: with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, writing v to port
 * 0xf4 makes QEMU exit with status (v << 1) | 1. Without the device the write does nothing
 * and the caller halts instead. The runner (tests/) knows these statuses.
 */
#ifndef ARCH_QEMU_H
#define ARCH_QEMU_H

#define QEMU_EXIT_PORT        0xf4
#define QEMU_EXIT_PASS        0x10 /* status 33: every test passed / clean halt */
#define QEMU_EXIT_FAIL        0x11 /* status 35: a test failed */
#define QEMU_EXIT_PANIC       0x12 /* status 37: kernel panic */
#define QEMU_EXIT_BOOT_FAILED 0x13 /* status 39: CPU or loader unsuitable (boot/entry.S) */

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>
/* Exits QEMU if the device is there; otherwise halts this CPU for good. */
__noreturn void qemu_exit(unsigned code);
#endif

#endif
