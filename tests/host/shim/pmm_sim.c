// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <arch/pt.h>
#include "pmm_sim.h"

extern uintptr_t host_phys_base;

static void *reserve(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

bool sim_pfn_is_ram(const struct pmm_sim *s, uint64_t pfn)
{
	for (unsigned i = 0; i < s->nr_ram; i++)
		if (pfn >= s->ram[i].start && pfn < s->ram[i].end)
			return true;
	return false;
}

bool sim_pfn_is_reserved(const struct pmm_sim *s, uint64_t pfn)
{
	for (unsigned i = 0; i < s->nr_reserved; i++)
		if (pfn >= s->reserved[i].start && pfn < s->reserved[i].end)
			return true;
	return false;
}

bool sim_descriptor_untouched(const struct pmm_sim *s, uint64_t pfn)
{
	const unsigned char *b = (const unsigned char *)(s->db + pfn);
	for (size_t i = 0; i < sizeof(struct page); i++)
		if (b[i] != SIM_DB_FILL)
			return false;
	return true;
}

static bool sim_build(struct pmm_sim *s, const struct pmm_range *ram, unsigned nr_ram, const struct pmm_range *reserved,
		      unsigned nr_reserved, bool poison, bool fill_db)
{
	for (unsigned i = 0; i < nr_ram; i++)
		s->max_pfn = s->max_pfn > ram[i].end ? s->max_pfn : ram[i].end;
	s->db = reserve(s->max_pfn * sizeof(struct page));
	void *mem = reserve(s->max_pfn << PAGE_SHIFT);
	if (!s->db || !mem) {
		fprintf(stderr, "sim: cannot reserve host memory\n");
		return false;
	}
	host_phys_base = (uintptr_t)mem;
	if (fill_db)
		memset(s->db, SIM_DB_FILL, s->max_pfn * sizeof(struct page));
	for (unsigned i = 0; i < nr_ram; i++)
		s->ram[i] = ram[i];
	for (unsigned i = 0; i < nr_reserved; i++)
		s->reserved[i] = reserved[i];
	s->nr_ram = nr_ram;
	s->nr_reserved = nr_reserved;

	if (!s->pm)
		s->pm = &s->own;
	pmm_setup(s->pm, s->db, poison);
	for (unsigned i = 0; i < nr_ram; i++)
		pmm_add_ram(s->pm, ram[i].start, ram[i].end);
	for (unsigned i = 0; i < nr_ram; i++) {
		/* free = RAM minus the reserved ranges, which are "used since boot" */
		uint64_t pfn = ram[i].start, end = ram[i].end;
		while (pfn < end) {
			uint64_t rs = end, re = end;
			for (unsigned r = 0; r < nr_reserved; r++) {
				uint64_t a = reserved[r].start > pfn ? reserved[r].start : pfn;
				if (reserved[r].end > pfn && reserved[r].start < end && a < rs) {
					rs = a;
					re = reserved[r].end < end ? reserved[r].end : end;
				}
			}
			if (rs > pfn)
				pmm_add_free(s->pm, pfn, rs);
			if (re > rs)
				pmm_add_used(s->pm, rs, re, PAGE_KERNEL);
			pfn = re;
		}
	}
	return true;
}

void sim_destroy(struct pmm_sim *s)
{
	munmap(s->db, s->max_pfn * sizeof(struct page));
	munmap((void *)host_phys_base, s->max_pfn << PAGE_SHIFT);
	host_phys_base = 0;
}

bool sim_create(struct pmm_sim *s, const struct pmm_range *ram, unsigned nr_ram, const struct pmm_range *reserved,
		unsigned nr_reserved, bool poison, bool fill_db)
{
	memset(s, 0, sizeof(*s));
	return sim_build(s, ram, nr_ram, reserved, nr_reserved, poison, fill_db);
}

static uint64_t sim_pt_alloc(void)
{
	struct page *p = pmm_alloc(0, PMM_ZERO, PAGE_TABLE);
	return p ? page_to_pa(p) : 0;
}

static void sim_pt_free(uint64_t pa) { pmm_free(pa_to_page(pa), 0); }

static uint32_t *sim_pt_word(uint64_t pa) { return &pa_to_page(pa)->private; }

static const struct pt_frame_source sim_pt_source = { .alloc = sim_pt_alloc, .free = sim_pt_free, .word = sim_pt_word };

bool sim_create_main(struct pmm_sim *s, uint64_t ram_pages)
{
	const struct pmm_range ram[] = { { 256, 256 + ram_pages } };
	memset(s, 0, sizeof(*s));
	s->pm = &pmm_main;
	if (!sim_build(s, ram, 1, NULL, 0, true, false))
		return false;
	pt_set_frame_source(&sim_pt_source);
	return true;
}
