/* SPDX-License-Identifier: MIT */
/* The kernel's string and memory functions (kernel/lib/string.c; the host build uses libc). */
#ifndef KNMM_STRING_H
#define KNMM_STRING_H

#ifdef KNMM_HOST
#include <string.h>
#else
#include <knmm/compiler.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strstr(const char *haystack, const char *needle);
#endif

#include <knmm/compiler.h>
/* Zeroes whole pages with the fastest method the CPU offers (ERMS `rep stosb` where present). */
void zero_pages(void *va, uint64_t npages);
/* Picks the faster way to zero pages on this CPU (boot, before pages are handed out). */
void zero_pages_calibrate(void);
/* Copies at most size-1 bytes and always terminates (size > 0); returns strlen(src). */
size_t kstrlcpy(char *dst, const char *src, size_t size);
/* Shell-style match of `s` against `glob` ('*' any run, '?' one char). */
bool glob_match(const char *glob, const char *s);
/* Parses an unsigned number (decimal, or hex with 0x) with an optional K/M/G/T suffix
 * (binary multiples). false on junk or overflow. `end` (optional) gets the first unparsed char. */
bool parse_u64(const char *s, uint64_t *out, const char **end);

#endif
