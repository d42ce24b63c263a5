// SPDX-License-Identifier: MIT
/* The command-line choices new tasks are made with (kernel/options.h). */
#include <knmm/cmdline.h>
#include <knmm/log.h>
#include <kernel/options.h>

bool kernel_aslr = true;
unsigned kernel_faultaround;

void kernel_apply_options(void)
{
	kernel_aslr = cmdline_get_bool("aslr", true);
	kernel_faultaround = (unsigned)cmdline_get_u64("mem.faultaround", 0);
	pr_info("tasks: aslr %s, fault-around %u pages", kernel_aslr ? "on" : "off", kernel_faultaround);
}
