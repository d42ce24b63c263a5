// SPDX-License-Identifier: MIT
/* The `vm` report (SPEC §8), like WinDbg's !vm. */
#include <arch/pt.h>
#include <knmm/log.h>
#include <knmm/pool.h>
#include "mdl.h"
#include "mm.h"
#include "pmm.h"
#include "vm.h"

#define LINE(label, pages)                                                                         \
	pr_info("vm:   %-20s %10llu (%12llu KiB)", label, (unsigned long long)(pages),                   \
		(unsigned long long)(pages) * 4)

void vm_report(void)
{
	struct pmm_stats ps;
	struct vm_commit_stats cs;
	struct pool_tag_stats tags[32];
	struct mdl_stats ms;

	pmm_get_stats(&pmm_main, &ps);
	mdl_get_stats(&ms);
	vm_commit_get(&cs);
	pr_info("vm: *** Virtual Memory Usage ***");
	LINE("Physical memory:", ps.total);
	LINE("Available pages:", ps.free);
	LINE("Committed pages:", cs.charge);
	LINE("Commit limit:", cs.limit);
	LINE("Commit peak:", cs.peak);
	LINE("Locked pages:", cs.locked);
	LINE("Pinned pages:", ms.pinned_pages);
	LINE("Page-table pages:", ps.state[PAGE_TABLE]);
	LINE("Kernel pages:", ps.state[PAGE_KERNEL]);
	LINE("Pool pages:", pool_pages());
	LINE("Anonymous pages:", ps.state[PAGE_ANON]);
	LINE("MDL pages:", ps.state[PAGE_MDL]);
	pr_info("vm:   %-20s %10llu", "MDLs:", (unsigned long long)ms.mdls);
	unsigned n = pool_tag_usage(tags, 32);
	pr_info("vm:   Pool usage by tag:    Tag     Allocs      Frees   Bytes in use");
	for (unsigned i = 0; i < n; i++) {
		char name[5];
		pool_tag_name(tags[i].tag, name);
		pr_info("vm:                         %-4s %10llu %10llu %14llu", name, (unsigned long long)tags[i].allocs,
			(unsigned long long)tags[i].frees, (unsigned long long)tags[i].bytes);
	}
	for (struct lookaside *l = lookaside_lists(); l; l = l->next_list)
		pr_info("vm:   Lookaside '%s': %zu-byte blocks, depth %u, %u cached; %llu allocs, %llu hits", l->name,
			l->size, l->depth, l->count, (unsigned long long)l->allocs, (unsigned long long)l->hits);
	pr_info("vm:   Space '%s': %llu regions, %llu committed, %llu resident, %llu locked pages", kernel_space.name,
		(unsigned long long)kernel_space.tree.count, (unsigned long long)kernel_space.committed,
		(unsigned long long)kernel_space.resident, (unsigned long long)kernel_space.locked);
}
