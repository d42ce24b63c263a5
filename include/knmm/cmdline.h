/* SPDX-License-Identifier: MIT */
/*
 * The kernel command line: space-separated `key=value` or `key` words; the last occurrence of
 * a key wins. Options (SPEC §2): mem.faultaround=N, aslr=on|off, test=GLOB, loglevel=N,
 * init=PROGRAM; see docs/boot.md for the full list.
 */
#ifndef KNMM_CMDLINE_H
#define KNMM_CMDLINE_H

#include <knmm/compiler.h>

void cmdline_init(const char *s);
const char *cmdline_raw(void);
/* Copies the value of `key` into out; false if the key is absent (out untouched). A bare
 * `key` has the value "". */
bool cmdline_get_str(const char *key, char *out, size_t size);
uint64_t cmdline_get_u64(const char *key, uint64_t def);
/* on/off, yes/no, 1/0, true/false; a bare `key` is true. */
bool cmdline_get_bool(const char *key, bool def);

#endif
