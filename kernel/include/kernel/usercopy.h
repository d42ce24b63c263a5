/* SPDX-License-Identifier: MIT */
/*
 * Copies between the kernel and the current task. Every user pointer is checked (inside the
 * user half, no wrap).
 *   - Inputs (copy_from_user, copy_string_from_user) are read through the frames behind
 *     them (vm_read): every page must be readable memory, a committed page that was never
 *     touched reads as zeros and stays untouched. Reading an input never changes the task.
 *   - Outputs (copy_to_user) are written through the task's mappings with fault recovery: a
 *     lazy page is made resident on the way; anything else (unmapped, guard, read-only) ends
 *     the copy with rcFault. Handlers check their outputs first (syscall_probe_output), so
 *     this happens only when another thread of the task changes its memory meanwhile. With
 *     SMAP, this is the only place the kernel touches user mappings.
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
