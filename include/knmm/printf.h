/* SPDX-License-Identifier: MIT */
/*
 * Formatted output into a buffer. Supports the C99 conversions the kernel uses:
 * %d %i %u %x %X %o %c %s %p %%, flags - 0 + space #, width and precision (numbers or *),
 * and the length modifiers hh h l ll z j t. Returns the length the full output would have
 * (like snprintf); the buffer is always terminated when size > 0.
 */
#ifndef KNMM_PRINTF_H
#define KNMM_PRINTF_H

#include <stdarg.h>
#include <knmm/compiler.h>

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);

#endif
