// SPDX-License-Identifier: MIT
/*
 * The #define constants the Python tools read (the gdb extension tools/gdb/knmm.py and the
 * tests), taken from the kernel's public headers at build time so that there is no second
 * copy of them (the model of Linux's scripts/gdb/linux/constants.py.in and asm-offsets).
 *
 * Never linked: the Makefile compiles this file to assembly (build/gdb/constants.s), where
 * each KNMM_CONST leaves a line "->KNMM_CONST NAME HIGH LOW" with the value the compiler
 * computed (two 32-bit halves: any 64-bit constant, casts and shifts included), and
 * tools/knmm/constants.py turns those lines into build/gdb/knmm_constants.py (NAME = value,
 * the C name unchanged, as an unsigned 64-bit number).
 *
 * Enumerations are not listed here: the tools read enumerators from the kernel's debug
 * information (gdb.lookup_type("enum page_state")). A constant the tools need that is a
 * #define is added here, and used in Python by its C name.
 */
#include <arch/cpu.h>
#include <arch/pte.h>
#include <kn/flags.h>
#include <kn/task_api.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <mm/mdl.h>
#include <mm/page.h>
#include <mm/vm.h>

#define KNMM_CONST(name)                                                          \
	__asm__ __volatile__("\n.ascii \"->KNMM_CONST " #name " %c0 %c1\""        \
			     :                                                    \
			     : "n"((unsigned)((unsigned long long)(name) >> 32)), \
			       "n"((unsigned)(unsigned long long)(name)))

void knmm_constants(void);

void knmm_constants(void)
{
	/* pages and the kernel's layout */
	KNMM_CONST(PAGE_SHIFT);
	KNMM_CONST(PAGE_SIZE);
	KNMM_CONST(DIRECT_MAP_BASE);

	/* task states (task.state; bit values) */
	KNMM_CONST(KN_TASK_STATE_CREATED);
	KNMM_CONST(KN_TASK_STATE_RUNNING);
	KNMM_CONST(KN_TASK_STATE_FROZEN);
	KNMM_CONST(KN_TASK_STATE_EXITED);

	/* the memory API's flags: protections (vm_run.prot, max_prot), region flags, cache modes */
	KNMM_CONST(VMM_FLAG_READ);
	KNMM_CONST(VMM_FLAG_WRITE);
	KNMM_CONST(VMM_FLAG_EXECUTE);
	KNMM_CONST(VMM_FLAG_LOW_GUARD);
	KNMM_CONST(VMM_FLAG_HIGH_GUARD);
	KNMM_CONST(VMM_FLAG_GROW_DOWN);
	KNMM_CONST(VMM_FLAG_WRITE_BACK);
	KNMM_CONST(VMM_FLAG_WRITE_THROUGH);
	KNMM_CONST(VMM_FLAG_WRITE_COMBINE);
	KNMM_CONST(VMM_FLAG_CACHE_DISABLE);
	KNMM_CONST(VMM_FLAG_CACHE_MASK);

	/* the commit charged for page tables: per 2 MiB window holding committed pages */
	KNMM_CONST(VM_TABLE_CHARGE_PER_WINDOW);
	KNMM_CONST(VM_TABLE_WINDOW_SHIFT);

	/* MDLs */
	KNMM_CONST(MDL_FICTITIOUS);

	/* page-table entries (arch/pte.h) */
	KNMM_CONST(PT_ENTRIES);
	KNMM_CONST(PT_INDEX_BITS);
	KNMM_CONST(PTE_P);
	KNMM_CONST(PTE_RW);
	KNMM_CONST(PTE_US);
	KNMM_CONST(PTE_PWT);
	KNMM_CONST(PTE_PCD);
	KNMM_CONST(PTE_A);
	KNMM_CONST(PTE_D);
	KNMM_CONST(PTE_PS);
	KNMM_CONST(PTE_PAT_4K);
	KNMM_CONST(PTE_G);
	KNMM_CONST(PTE_PAT_BIG);
	KNMM_CONST(PTE_NX);
	KNMM_CONST(PTE_ADDR_MASK);
	KNMM_CONST(PTE_ADDR_MASK_2M);
	KNMM_CONST(PTE_ADDR_MASK_1G);

	/* the PAT layout cpu_init programs, and the memory types in it (arch/cpu.h) */
	KNMM_CONST(PAT_MSR_VALUE);
	KNMM_CONST(PAT_TYPE_UC);
	KNMM_CONST(PAT_TYPE_WC);
	KNMM_CONST(PAT_TYPE_WT);
	KNMM_CONST(PAT_TYPE_WP);
	KNMM_CONST(PAT_TYPE_WB);
	KNMM_CONST(PAT_TYPE_UCM);
	/* struct page's flags (mm/page.h) and the log ring (knmm/log.h) */
	KNMM_CONST(PG_PCP);
	KNMM_CONST(PG_POISONED);
	KNMM_CONST(PG_TYPE_SHIFT);
	KNMM_CONST(PG_TYPE_MASK);
	KNMM_CONST(LOG_BUF_SIZE);
}
