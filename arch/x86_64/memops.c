// SPDX-License-Identifier: MIT
/*
 * Page zeroing, the hottest loop of the memory manager (every lazy fault and locked commit
 * zeroes a frame). Two candidates: `rep stosq`, and `rep stosb` where the CPU has ERMS
 * (its fast-string path for byte stores). Which is faster depends on the machine: on ERMS
 * hardware they are close for whole pages; under QEMU TCG every iteration is one
 * instruction, so `stosq` does a page in 512 where `stosb` takes 4096. Like Linux's boot-time
 * choice of its RAID and xor routines, zero_pages_calibrate() times both once and keeps the
 * faster.
 */
#include <arch/cpu.h>
#include <knmm/align.h>
#include <knmm/log.h>
#include <knmm/string.h>

static bool use_stosb; /* until calibrated: stosq, which every x86-64 CPU runs well */

static void zero_stosb(void *va, uint64_t bytes)
{
	__asm__ __volatile__("rep stosb" : "+D"(va), "+c"(bytes) : "a"(0) : "memory");
}

static void zero_stosq(void *va, uint64_t bytes)
{
	uint64_t words = bytes / 8;
	__asm__ __volatile__("rep stosq" : "+D"(va), "+c"(words) : "a"(0) : "memory");
}

void zero_pages(void *va, uint64_t npages)
{
	uint64_t bytes = npages << PAGE_SHIFT;

	if (use_stosb)
		zero_stosb(va, bytes);
	else
		zero_stosq(va, bytes);
}

/* The best of a few runs over a page that stays in the cache. */
static uint64_t time_zeroing(void (*zero)(void *, uint64_t), void *page)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 8; i++) {
		uint64_t t0 = rdtsc();
		zero(page, PAGE_SIZE);
		uint64_t t = rdtsc() - t0;
		best = t < best ? t : best;
	}
	return best;
}

void zero_pages_calibrate(void)
{
	static uint8_t scratch[PAGE_SIZE] __aligned(PAGE_SIZE);
	uint64_t q = time_zeroing(zero_stosq, scratch), b = UINT64_MAX;

	if (cpu_features.erms)
		b = time_zeroing(zero_stosb, scratch);
	use_stosb = b < q;
	if (cpu_features.erms)
		pr_info("memops: zeroing pages with rep %s (%llu TSC ticks a page; rep %s %llu)",
			use_stosb ? "stosb" : "stosq", (unsigned long long)(use_stosb ? b : q),
			use_stosb ? "stosq" : "stosb", (unsigned long long)(use_stosb ? q : b));
	else
		pr_info("memops: zeroing pages with rep stosq (%llu TSC ticks a page; no ERMS)", (unsigned long long)q);
}
