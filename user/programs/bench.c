// SPDX-License-Identifier: MIT
/*
 * The ring-3 benchmarks of make bench. The benchmark kernel runs this program after its
 * own figures; each figure is one line "bench NAME VALUE", VALUE in TSC ticks per unit
 * (under QEMU -icount a deterministic count, the same on every run).
 */
#include <knlib.h>

/* A null system call round trip: SYSCALL, the table dispatch, SYSRET. */
static uint64_t syscall_null(void)
{
	const unsigned rounds = 100000;

	for (unsigned i = 0; i < 1000; i++) /* warm the caches and the TLB */
		KnDebugNop();
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < rounds; i++)
		KnDebugNop();
	return (rdtsc() - t0) / rounds;
}

int main(void)
{
	printf("bench syscall_null %llu\n", (unsigned long long)syscall_null());
	return 0;
}
