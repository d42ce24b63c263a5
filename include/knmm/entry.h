/* SPDX-License-Identifier: MIT */
/*
 * The only call that goes up the layers at link time (docs/architecture.md): the entry point
 * the loader's code jumps to. Everything else a lower layer needs from a higher one is a
 * hook the higher one registers (the SYSCALL entry's handler too).
 */
#ifndef KNMM_ENTRY_H
#define KNMM_ENTRY_H

#include <knmm/compiler.h>

/* boot/entry.S: the loader's magic and information block, in long mode on the boot stack. */
__noreturn void kmain(uint32_t magic, uint64_t info_pa);

#endif
