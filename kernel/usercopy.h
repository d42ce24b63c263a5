/* SPDX-License-Identifier: MIT */
/*
 * Copies between the kernel and the current task. Every user pointer is checked (inside the
 * user half, no wrap) and every access may fault: a lazy page is made resident on the way,
 * anything else (unmapped, guard, read-only for a write) ends the copy with rcFault. With
 * SMAP, these are the only places the kernel touches user memory.
 */
#ifndef KERNEL_USERCOPY_H
#define KERNEL_USERCOPY_H

#include <kn/retcode.h>
#include <knmm/compiler.h>

Retcode copy_from_user(void *dst, uint64_t usrc, uint64_t n);
Retcode copy_to_user(uint64_t udst, const void *src, uint64_t n);
/* A NUL-terminated string of at most max - 1 bytes: rcFault, or rcInvalidArgument when no
 * NUL comes within max bytes. */
Retcode copy_string_from_user(char *dst, uint64_t usrc, uint64_t max);

#endif
