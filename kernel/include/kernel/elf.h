/* SPDX-License-Identifier: MIT */
#ifndef KERNEL_ELF_H
#define KERNEL_ELF_H

#include <mm/vm.h>

/*
 * Checks a static ELF64 x86-64 executable and maps its PT_LOAD segments into vs with their
 * permissions; *entry gets the entry point. A malformed file (bad magic, class, machine,
 * header sizes; segments with file bytes past the end, overlapping, outside the user half,
 * writable and executable; entry outside executable code) is rcInvalidArgument with the
 * reason logged as "elf: NAME: refused: REASON". rcOutOfMemory if memory runs out (what was
 * mapped stays in vs: the caller destroys vs). The segments' MDLs, while loading, are charged
 * to acct (the new task's account).
 */
Retcode elf_load(struct vm_space *vs, const void *file, uint64_t size, const char *name, struct account *acct,
		 uint64_t *entry);

/* The reason a file is refused, or NULL if it is acceptable (no mapping done). */
const char *elf_check(const void *file, uint64_t size, uint64_t *entry);

#endif
