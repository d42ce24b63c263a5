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
#include "kernel.h"

/* KnVmAllocate(RESERVE) + KnVmUnmap of 1 MiB, kernel-internal path, per pair. */
static uint64_t reserve_release_1mib(void)
{
	struct vm_space vs;
	const unsigned rounds = 2000;
	uint64_t va;

	if (vm_space_init(&vs, "bench", true, USER_BASE, USER_END, NULL) != rcOk)
		return 0;
	for (unsigned i = 0; i < 16; i++) { /* warm the region cache and the pool */
		vm_allocate(&vs, 0, MiB(1), VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE, &va);
		vm_unmap(&vs, va, MiB(1));
	}
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < rounds; i++) {
		vm_allocate(&vs, 0, MiB(1), VMM_FLAG_RESERVE | VMM_FLAG_READ | VMM_FLAG_WRITE, &va);
		vm_unmap(&vs, va, MiB(1));
	}
	uint64_t per = (rdtsc() - t0) / rounds;
	vm_space_destroy(&vs);
	return per;
}

bool bench_run(void)
{
	console_printf("bench boot_to_ready %llu\n", (unsigned long long)(boot_ready_tsc - boot_entry_tsc));
	console_printf("bench reserve_release_1MiB %llu\n", (unsigned long long)reserve_release_1mib());
	int code = run_program("bench", "bench", 0, 0);
	if (code != 0)
		pr_err("bench: the benchmark program exited with %d", code);
	return code == 0;
}
