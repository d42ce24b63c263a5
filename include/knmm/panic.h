/* SPDX-License-Identifier: MIT */
/*
 * Kernel bugs (broken invariants) stop the machine loudly: message, registers, backtrace
 * with symbol names, then QEMU exits with status 37 (isa-debug-exit) or the CPU halts.
 * Expected failures (bad input, out of memory) are return codes, never panics.
 */
#ifndef KNMM_PANIC_H
#define KNMM_PANIC_H

#include <knmm/compiler.h>

__noreturn void panic(const char *fmt, ...) __printf(1, 2);

struct trap_frame;
/* panic() for a trap: the registers and backtrace are the trapped context's. */
__noreturn void panic_with_frame(const struct trap_frame *tf, const char *fmt, ...) __printf(2, 3);

/* Checks an invariant in every build; `cond` is evaluated exactly once. */
#define KASSERT(cond)                                                                      \
	do {                                                                               \
		if (unlikely(!(cond)))                                                     \
			panic("assertion failed: %s at %s:%d", #cond, __FILE__, __LINE__); \
	} while (0)

#define KASSERT_MSG(cond, fmt, ...)                                                                             \
	do {                                                                                                    \
		if (unlikely(!(cond)))                                                                          \
			panic("assertion failed: %s at %s:%d: " fmt, #cond, __FILE__, __LINE__, ##__VA_ARGS__); \
	} while (0)

/* Debug-build-only checks (KNMM_DEBUG); the expression is not evaluated otherwise. */
#ifdef KNMM_DEBUG
#define DEBUG_ASSERT(cond) KASSERT(cond)
#else
#define DEBUG_ASSERT(cond) ((void)sizeof(cond))
#endif

/*
 * What panic stands on, registered by arch first thing in kmain (the ground floor calls
 * nothing above it). Until then a panic prints its message and halts.
 *   capture  fills the frame with its caller's registers (rip inside panic(), rbp its frame);
 *            panic() gives it PANIC_FRAME_BYTES of storage
 *   dump     prints a frame's registers and backtrace on the console
 *   halt     stops the machine (under QEMU: exits with the panic status)
 *   stop_others  stops every other CPU (an NMI each), before the message is printed; may be
 *            NULL (one CPU)
 */
#define PANIC_FRAME_BYTES 256
struct panic_ops {
	void (*capture)(struct trap_frame *frame);
	void (*dump)(const struct trap_frame *frame);
	__noreturn void (*halt)(void);
	void (*stop_others)(void);
};
void panic_set_ops(const struct panic_ops *ops);

/* True once panic() has started (the console then stops taking its lock). */
extern volatile bool panic_in_progress;

#endif
