// SPDX-License-Identifier: MIT
#include <arch/pt.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include "bootmem.h"

static struct bootmem_range free_ranges[BOOTMEM_MAX_RANGES];
static unsigned nr_free;
static uint64_t limit = GiB(4); /* the early tables map only the first 4 GiB */
static struct bootmem_stats stats;

static void remove_index(unsigned i)
{
	for (; i + 1 < nr_free; i++)
		free_ranges[i] = free_ranges[i + 1];
	nr_free--;
}

/* Adds [base, end) (disjoint from every free range), keeping the list sorted and merged. */
static void insert_range(uint64_t base, uint64_t end)
{
	if (base >= end)
		return;
	unsigned i = 0;
	while (i < nr_free && free_ranges[i].base < base)
		i++;
	if (i > 0 && free_ranges[i - 1].end == base) {
		free_ranges[i - 1].end = end;
		if (i < nr_free && free_ranges[i].base == end) {
			free_ranges[i - 1].end = free_ranges[i].end;
			remove_index(i);
		}
		return;
	}
	if (i < nr_free && free_ranges[i].base == end) {
		free_ranges[i].base = base;
		return;
	}
	KASSERT_MSG(nr_free < BOOTMEM_MAX_RANGES, "bootmem: more than %d free ranges", BOOTMEM_MAX_RANGES);
	for (unsigned j = nr_free++; j > i; j--)
		free_ranges[j] = free_ranges[j - 1];
	free_ranges[i] = (struct bootmem_range){ base, end };
}

/* Takes [base, end) out of the free ranges; returns the bytes actually removed. */
static uint64_t claim(uint64_t base, uint64_t end)
{
	uint64_t removed = 0;

	base = align_down(base, PAGE_SIZE);
	end = align_up(end, PAGE_SIZE);
	for (unsigned i = 0; i < nr_free;) {
		struct bootmem_range r = free_ranges[i];
		if (r.end <= base || r.base >= end) {
			i++;
			continue;
		}
		remove_index(i);
		removed += MIN(r.end, end) - MAX(r.base, base);
		if (r.base < base)
			insert_range(r.base, base);
		if (r.end > end)
			insert_range(end, r.end);
		i = 0; /* the list changed shape: look again from the start */
	}
	return removed;
}

void bootmem_init(const struct boot_info *bi, uint64_t kernel_pa_end)
{
	for (unsigned i = 0; i < bi->nr_mem; i++) {
		const struct boot_mem_range *m = &bi->mem[i];
		if (m->type != BOOT_MEM_AVAILABLE)
			continue;
		uint64_t base = align_up(m->base, PAGE_SIZE), end = align_down(m->base + m->size, PAGE_SIZE);
		if (base >= end)
			continue;
		stats.highest = MAX(stats.highest, end);
		/* Firmware maps can overlap: add only what is not free already. */
		uint64_t dup = claim(base, end);
		stats.usable += end - base - dup;
		insert_range(base, end);
	}

	stats.claimed += claim(0, MiB(1));
	stats.claimed += claim(KERNEL_LOAD_PA, kernel_pa_end);
	stats.claimed += claim(bi->info_start, bi->info_end);
	for (unsigned i = 0; i < bi->nr_modules; i++)
		stats.claimed += claim(bi->modules[i].start, bi->modules[i].end);
	if (bi->symtab_pa)
		stats.claimed += claim(bi->symtab_pa, bi->symtab_pa + bi->symtab_size);
	if (bi->strtab_pa)
		stats.claimed += claim(bi->strtab_pa, bi->strtab_pa + bi->strtab_size);
}

uint64_t bootmem_alloc(uint64_t size, uint64_t align, uint64_t max_pa)
{
	size = align_up(size, PAGE_SIZE);
	if (align < PAGE_SIZE)
		align = PAGE_SIZE;
	max_pa = MIN(max_pa, limit);

	for (unsigned i = nr_free; i-- > 0;) {
		struct bootmem_range r = free_ranges[i];
		uint64_t top = MIN(r.end, max_pa);
		if (top < r.base + size)
			continue;
		uint64_t pa = align_down(top - size, align);
		if (pa < r.base)
			continue;
		remove_index(i);
		insert_range(r.base, pa);
		insert_range(pa + size, r.end);
		memset(phys_to_virt(pa), 0, size);
		stats.allocated += size;
		return pa;
	}
	return 0;
}

void bootmem_free_page(uint64_t pa)
{
	KASSERT(is_aligned(pa, PAGE_SIZE));
	insert_range(pa, pa + PAGE_SIZE);
	stats.allocated -= PAGE_SIZE;
}

void bootmem_set_limit(uint64_t max_pa) { limit = max_pa; }

const struct bootmem_stats *bootmem_stats(void) { return &stats; }

unsigned bootmem_free_ranges(const struct bootmem_range **ranges)
{
	*ranges = free_ranges;
	return nr_free;
}

static uint64_t pt_alloc(void) { return bootmem_alloc(PAGE_SIZE, PAGE_SIZE, UINT64_MAX); }

const struct pt_frame_source bootmem_pt_source = { .alloc = pt_alloc, .free = bootmem_free_page };
