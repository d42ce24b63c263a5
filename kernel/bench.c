// SPDX-License-Identifier: MIT
/*
 * In-kernel benchmarks (the `bench` command line; make bench). Each prints
 * `bench NAME VALUE` with VALUE in TSC ticks per unit; under QEMU -icount they repeat
 * exactly. The ring-3 figures come from the benchmark program (user/programs/bench.c),
 * run as a task after the kernel's own. With bench=smp on the command line (make bench boots it
 * with -smp 4) only the SMP figures are measured: the program runs as "bench-smp".
 */
#include <arch/cpu.h>
#include <arch/pt.h>
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
#include <kernel/sched.h>

/* Shootdown rounds and the IPIs in them, sent by every CPU so far (arch/pt.h's tlb_stats). */
static void tlb_totals(uint64_t *rounds, uint64_t *ipis)
{
	*rounds = *ipis = 0;
	for (unsigned cpu = 0; cpu < sched_cpu_count() && cpu < SPIN_MAX_CPUS; cpu++) {
		*rounds += READ_ONCE(tlb_stats[cpu].rounds);
		*ipis += READ_ONCE(tlb_stats[cpu].ipis);
	}
}

bool bench_run(void)
{
	char mode[16] = "";
	cmdline_get_str("bench", mode, sizeof(mode));
	bool smp = !strcmp(mode, "smp");
	if (!smp)
		console_printf("bench boot_to_ready %llu\n", (unsigned long long)(boot_ready_tsc - boot_entry_tsc));
	uint64_t rounds0, ipis0, rounds1, ipis1;
	tlb_totals(&rounds0, &ipis0);
	int code = run_program("bench", smp ? "bench-smp" : "bench", 0, 0);
	tlb_totals(&rounds1, &ipis1);
	if (smp) /* (not a figure: the program's own lines say how many unmaps it made) */
		console_printf("bench: TLB shootdown rounds during bench-smp: %llu, IPIs in them: %llu\n",
			       (unsigned long long)(rounds1 - rounds0), (unsigned long long)(ipis1 - ipis0));
	if (code != 0)
		pr_err("bench: the benchmark program exited with %d", code);
	return code == 0;
}
