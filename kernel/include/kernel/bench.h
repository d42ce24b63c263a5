/* SPDX-License-Identifier: MIT */
/* In-kernel benchmarks (kernel/bench.c; the `bench` command line, make bench). */
#ifndef KERNEL_BENCH_H
#define KERNEL_BENCH_H

#include <knmm/compiler.h>

/* Runs the benchmarks and prints their figures; false when one of them could not be measured. */
bool bench_run(void);

#endif
