// SPDX-License-Identifier: MIT
/*
 * CR3 and the TLB (declared in arch/pt.h): which root the CPU translates through, and
 * flushing what it cached. The page-table layer batches its invalidations (struct pt_op)
 * and calls these at the end of an operation. The host tests have their own stand-ins
 * (tests/host/shim/arch_stubs.c): their tables live in simulated memory no CPU walks.
 */
#include <arch/cpu.h>
#include <arch/pt.h>
#include <arch/pte.h>

void tlb_flush_all_nonglobal(void) { write_cr3(read_cr3()); }

void tlb_flush_all(void)
{
	uint64_t cr4 = read_cr4();

	if (cr4 & CR4_PGE) {
		write_cr4(cr4 & ~(uint64_t)CR4_PGE);
		write_cr4(cr4);
	} else {
		tlb_flush_all_nonglobal();
	}
}

void pt_activate(const struct pt_root *root) { write_cr3(root->pml4_pa); }

bool pt_is_active(const struct pt_root *root) { return (read_cr3() & PTE_ADDR_MASK) == root->pml4_pa; }

struct pt_root pt_active_root(void)
{
	uint64_t pa = read_cr3() & PTE_ADDR_MASK;

	return (struct pt_root){ .pml4_pa = pa, .user = pa != kernel_pt_root.pml4_pa };
}
