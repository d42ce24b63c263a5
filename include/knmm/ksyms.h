/* SPDX-License-Identifier: MIT */
/* Kernel symbol names for backtraces, from the ELF symbol table GRUB loads with the image. */
#ifndef KNMM_KSYMS_H
#define KNMM_KSYMS_H

#include <knmm/compiler.h>

struct boot_info;
void ksyms_init(const struct boot_info *bi);
/* The function containing `addr` and the offset into it, or NULL. */
const char *ksym_lookup(uint64_t addr, uint64_t *offset);
/* Address of a named symbol, or 0. */
uint64_t ksym_address(const char *name);

#endif
