// SPDX-License-Identifier: MIT
/* mm start-up after the kernel's own tables exist. */
#include <arch/pt.h>
#include <arch/trap.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <mm/mdl.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include <mm/vm.h>

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

void mm_init(const struct boot_info *bi)
{
	pmm_init(bi);

	uint64_t free = pmm_free_pages();
	charge_init(free - kernel_reserve(free));
	vm_init();
	mdl_init();

	/* Every top-level entry of the kernel half exists now; user roots will copy them. */
	if (pt_prealloc_kernel(KDYN_BASE, KDYN_SIZE) != rcOk)
		panic("mm: no memory for the kernel dynamic area's tables");
	pt_seal_kernel_top();
	const struct vm_space_params kp = {
		.name = "kernel", .lo = KSPACE_BASE, .hi = KSPACE_END, .root = &kernel_pt_root
	};
	if (vm_space_init(&kernel_space, &kp) != rcOk)
		panic("mm: cannot set up the kernel address space");

	trap_set_stack_namer(kstack_describe);
	pr_info("vm: commit limit %llu pages (%llu MiB); kernel dynamic area %#llx-%#llx (pool area %llu GiB)",
		(unsigned long long)(free - kernel_reserve(free)),
		(unsigned long long)((free - kernel_reserve(free)) >> 8), (unsigned long long)KDYN_BASE,
		(unsigned long long)(KDYN_BASE + KDYN_SIZE), (unsigned long long)(KPOOL_SIZE >> 30));
}
