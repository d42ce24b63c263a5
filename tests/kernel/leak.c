// SPDX-License-Identifier: MIT
/* The leak check around every in-kernel test: free pages and commit charge come back. */
#include <knmm/ktest.h>
#include <knmm/printf.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/vm.h>
#include <kernel/init.h>

static uint64_t free_before, charge_before;

/* (kernel_settle: teardowns finish first; on several CPUs the reaper may still be freeing
 * what a test waited for when the test goes on.) */
static void leak_begin(void)
{
	kernel_settle();
	free_before = pmm_free_pages();
	charge_before = charge_total();
}

static bool leak_end(char *buf, size_t size)
{
	kernel_settle();
	uint64_t free_now = pmm_free_pages(), charge_now = charge_total();
	if (free_now == free_before && charge_now == charge_before)
		return false;
	ksnprintf(buf, size, "free pages %llu -> %llu, commit charge %llu -> %llu", (unsigned long long)free_before,
		  (unsigned long long)free_now, (unsigned long long)charge_before, (unsigned long long)charge_now);
	return true;
}

KTEST_FIXTURE(leaked, leak_begin, leak_end);
