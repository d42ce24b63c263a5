/* SPDX-License-Identifier: MIT */
/*
 * The only two calls that go up the layers at link time (docs/architecture.md): the entry
 * points the lower layers' assembly jumps to. Everything else a lower layer needs from a
 * higher one is a hook the higher one registers.
 */
#ifndef KNMM_ENTRY_H
#define KNMM_ENTRY_H

#include <knmm/compiler.h>

struct trap_frame;

/* boot/entry.S: the loader's magic and information block, in long mode on the boot stack. */
__noreturn void kmain(uint32_t magic, uint64_t info_pa);
/* arch/x86_64/entry.S: a SYSCALL from ring 3, its registers as a trap frame. */
void syscall_dispatch(struct trap_frame *tf);

#endif
