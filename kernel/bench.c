// SPDX-License-Identifier: MIT
/*
 * In-kernel benchmarks (the `bench` command line; make bench). Each prints
 * `bench NAME VALUE` with VALUE in TSC ticks per unit; under QEMU -icount they repeat
 * exactly. The ring-3 figures come from the benchmark program (user/programs/bench.c),
 * run as a task after the kernel's own.
 */
#include <arch/cpu.h>
#include <arch/time.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <mm/vm.h>
#include <kernel/bench.h>
#include <kernel/init.h>
#include <kernel/main.h>

bool bench_run(void)
{
	console_printf("bench boot_to_ready %llu\n", (unsigned long long)(boot_ready_tsc - boot_entry_tsc));
	int code = run_program("bench", "bench", 0, 0);
	if (code != 0)
		pr_err("bench: the benchmark program exited with %d", code);
	return code == 0;
}
