// SPDX-License-Identifier: MIT
/*
 * In-kernel benchmarks (the `bench` command line; make bench). Each prints
 * `bench NAME VALUE` with VALUE in TSC ticks per unit; under QEMU -icount they repeat
 * exactly. The ring-3 figures come from the benchmark program (user/programs/bench.c),
 * run as a task after the kernel's own. With bench=smp on the command line (make bench boots it
 * with -smp 4) only the SMP figures are measured: the program runs as "bench-smp".
 */
#include <arch/cpu.h>
#include <arch/time.h>
#include <knmm/align.h>
#include <knmm/cmdline.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/string.h>
#include <mm/vm.h>
#include <kernel/bench.h>
#include <kernel/init.h>
#include <kernel/main.h>

bool bench_run(void)
{
	char mode[16] = "";
	cmdline_get_str("bench", mode, sizeof(mode));
	bool smp = !strcmp(mode, "smp");
	if (!smp)
		console_printf("bench boot_to_ready %llu\n", (unsigned long long)(boot_ready_tsc - boot_entry_tsc));
	int code = run_program("bench", smp ? "bench-smp" : "bench", 0, 0);
	if (code != 0)
		pr_err("bench: the benchmark program exited with %d", code);
	return code == 0;
}
