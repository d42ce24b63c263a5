// SPDX-License-Identifier: MIT
/* mm start-up after the kernel's own tables exist, and the tests' leak check. */
#include <arch/pt.h>
#include <knmm/ktest.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/pool.h>
#include <knmm/printf.h>
#include "mdl.h"
#include "mm.h"
#include "pmm.h"
#include "vm.h"

/* Kept out of the commit limit for what the kernel uses without charging: page tables,
 * the per-CPU caches, slack. 1/64 of RAM, at least 1 MiB. */
static uint64_t kernel_reserve(uint64_t pages) { return MAX(pages / 64, 256); }

void mm_trim_caches(void)
{
	for (struct lookaside *l = lookaside_lists(); l; l = l->next_list)
		lookaside_trim(l);
	pool_trim();
	pmm_drain_pcp(&pmm_main);
}

/* Every in-kernel test must leave free pages and commit charge as it found them. */
static uint64_t free_before, charge_before;

static bool leak_begin(void)
{
	mm_trim_caches();
	free_before = pmm_free_pages();
	charge_before = vm_commit_charge();
	return true;
}

static bool leak_end(char *buf, size_t size)
{
	mm_trim_caches();
	uint64_t free_now = pmm_free_pages(), charge_now = vm_commit_charge();
	if (free_now == free_before && charge_now == charge_before)
		return false;
	ksnprintf(buf, size, "free pages %llu -> %llu, commit charge %llu -> %llu", (unsigned long long)free_before,
		  (unsigned long long)free_now, (unsigned long long)charge_before, (unsigned long long)charge_now);
	return true;
}

void mm_init(const struct boot_info *bi)
{
	pmm_init(bi);

	uint64_t free = pmm_free_pages();
	vm_commit_init(free - kernel_reserve(free));
	vm_init();
	mdl_init();

	/* Every top-level entry of the kernel half exists now; user roots will copy them. */
	if (pt_prealloc_kernel(KDYN_BASE, KDYN_SIZE) != rcOk)
		panic("mm: no memory for the kernel dynamic area's tables");
	pt_seal_kernel_top();
	if (vm_space_init(&kernel_space, "kernel", false, KSPACE_BASE, KSPACE_END, &kernel_pt_root, NULL) != rcOk)
		panic("mm: cannot set up the kernel address space");

	ktest_leak_check_begin = leak_begin;
	ktest_leak_check_end = leak_end;
	pr_info("vm: commit limit %llu pages (%llu MiB); kernel dynamic area %#llx-%#llx (pool area %llu GiB)",
		(unsigned long long)(free - kernel_reserve(free)), (unsigned long long)((free - kernel_reserve(free)) >> 8),
		(unsigned long long)KDYN_BASE, (unsigned long long)(KDYN_BASE + KDYN_SIZE),
		(unsigned long long)(KPOOL_SIZE >> 30));
}
