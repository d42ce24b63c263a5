// SPDX-License-Identifier: MIT
/*
 * Host stand-ins for arch's CR3 and TLB functions (arch/x86_64/tlb.c): the host tests build
 * page tables in simulated memory that no CPU walks, so nothing is ever active and there is
 * nothing to flush.
 */
#include <arch/pt.h>
#include <arch/tlb.h>

void tlb_flush_all_nonglobal(void) {}
void tlb_flush_all(void) {}
void pt_activate(const struct pt_root *root) { (void)root; }
bool pt_is_active(const struct pt_root *root)
{
	(void)root;
	return false;
}
struct pt_root pt_active_root(void) { return kernel_pt_root; }
void tlb_invalidate(const struct pt_root *root, bool shared, bool global, bool full, const uint64_t *va, unsigned n)
{
	(void)root;
	(void)shared;
	(void)global;
	(void)full;
	(void)va;
	(void)n;
}
struct tlb_stats tlb_stats_total(void) { return (struct tlb_stats){ 0 }; }
void tlb_idle_enter(void) {}
void tlb_idle_exit(void) {}
