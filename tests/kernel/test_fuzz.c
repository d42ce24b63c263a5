// SPDX-License-Identifier: MIT
/*
 * The system-call fuzzer (user/programs/fuzz.c, docs/fuzz.md) as a test: one run of
 * `fuzz.calls` calls from seed `fuzz.seed` (kernel command line; `make fuzz` sets both, `make
 * test` takes the defaults). The program learns them from its task name, "fuzz SEED CALLS";
 * its findings are its KTAP subtests and its exit code. It runs privileged, so that
 * KnPmmMdlCreateFromPhys has a valid case too.
 */
#include <kn/task_api.h>
#include <knmm/cmdline.h>
#include <knmm/log.h>
#include <knmm/printf.h>
#include <kernel/init.h>
#include "ktest_util.h"

#define FUZZ_DEFAULT_SEED  1
#define FUZZ_DEFAULT_CALLS 20000

KTEST(user, fuzz)
{
	uint64_t seed = cmdline_get_u64("fuzz.seed", FUZZ_DEFAULT_SEED);
	uint64_t calls = cmdline_get_u64("fuzz.calls", FUZZ_DEFAULT_CALLS);
	char name[KN_TASK_NAME_MAX + 1];

	/* (both fit: 2 x 10 digits and "fuzz " are 26 bytes) */
	seed &= 0xffffffffull;
	if (calls > 0xffffffffull)
		calls = 0xffffffffull;
	ksnprintf(name, sizeof(name), "fuzz %llu %llu", (unsigned long long)seed, (unsigned long long)calls);
	/* A generous bound: tens of thousands of calls take seconds; a hang is a finding too. */
	uint64_t timeout_ns = 120000000000ull + calls * 5000000ull;
	int code = run_program("fuzz", name, KN_TASK_PRIVILEGED, timeout_ns);
	KT_EXPECT_EQ(code, 0);
}
