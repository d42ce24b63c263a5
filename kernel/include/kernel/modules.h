/* SPDX-License-Identifier: MIT */
/* The programs tasks are made from: the loader's boot modules (kernel/modules.c). */
#ifndef KERNEL_MODULES_H
#define KERNEL_MODULES_H

#include <knmm/bootinfo.h>

/* Boot: the modules the loader handed over (kept, not copied: they live as long as the kernel). */
void modules_init(const struct boot_info *bi);
/* The boot module (program) called `name`, or NULL. */
const struct boot_module *module_find(const char *name);

#endif
