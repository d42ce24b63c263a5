// SPDX-License-Identifier: MIT
/* The programs tasks are made from: the loader's boot modules, by name (kernel/modules.h). */
#include <knmm/string.h>
#include <kernel/modules.h>

static const struct boot_module *modules;
static unsigned nmodules;

void modules_init(const struct boot_info *bi)
{
	modules = bi->modules;
	nmodules = bi->nr_modules;
}

const struct boot_module *module_find(const char *name)
{
	for (unsigned i = 0; i < nmodules; i++)
		if (strcmp(modules[i].name, name) == 0)
			return &modules[i];
	return NULL;
}
