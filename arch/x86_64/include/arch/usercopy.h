/* SPDX-License-Identifier: MIT */
/* The copy routine the kernel writes to user memory with (entry.S; kernel/usercopy.c). */
#ifndef ARCH_USERCOPY_H
#define ARCH_USERCOPY_H

#include <knmm/compiler.h>

/*
 * Copies n bytes and returns how many it did NOT copy (0 when all went well). A fault on
 * either side lands in the routine's exception-table fixup, after the trap layer has asked
 * the user_copy_fault hook to resolve it (a lazy page) and the hook could not. Bracket the
 * call with user_access_begin/end (arch/cpu.h: SMAP).
 */
uint64_t arch_copy_user_bytes(void *dst, const void *src, uint64_t n);

#endif
