/* SPDX-License-Identifier: MIT */
/*
 * A private PMM instance over a simulated memory map (host tests and benchmarks): the page
 * database and "physical memory" are lazily committed host mappings, so a map that reaches
 * past 4 GiB costs only what the test touches.
 */
#ifndef TESTS_HOST_PMM_SIM_H
#define TESTS_HOST_PMM_SIM_H

#include <mm/pmm.h>

#define SIM_DB_FILL 0xa5 /* every byte of an untouched descriptor */

struct pmm_sim {
	struct pmm *pm; /* &own, or &pmm_main for code that uses the kernel's instance */
	struct pmm own;
	struct page *db;
	uint64_t max_pfn;
	unsigned nr_ram, nr_reserved;
	struct pmm_range ram[16], reserved[16];
};

/* RAM ranges and reserved parts of them (pfns, sorted); `fill_db` writes SIM_DB_FILL over the
 * descriptor array first so tests can see which descriptors were ever written. */
bool sim_create(struct pmm_sim *s, const struct pmm_range *ram, unsigned nr_ram, const struct pmm_range *reserved,
		unsigned nr_reserved, bool poison, bool fill_db);
/* The same, building pmm_main (the instance kernel code such as mm/vm_*.c uses), and making it
 * the page-table layer's frame source. */
bool sim_create_main(struct pmm_sim *s, uint64_t ram_pages);
void sim_destroy(struct pmm_sim *s);
bool sim_pfn_is_ram(const struct pmm_sim *s, uint64_t pfn);
bool sim_pfn_is_reserved(const struct pmm_sim *s, uint64_t pfn);
/* The descriptor of pfn still holds the fill pattern. */
bool sim_descriptor_untouched(const struct pmm_sim *s, uint64_t pfn);

#endif
