// SPDX-License-Identifier: MIT
#include <arch/pt.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/bootmem.h>

static struct bootmem_range free_ranges[BOOTMEM_MAX_RANGES];
static unsigned nr_free;
static uint64_t limit = GiB(4); /* the early tables map only the first 4 GiB */
static struct bootmem_stats stats;
static struct bootmem_used used[BOOTMEM_MAX_USED];
static unsigned nr_used;
static bool retired;

/* Records [base, end) as taken for `use`, merging with a neighbour of the same use. */
static void log_used(uint64_t base, uint64_t end, enum bootmem_use use)
{
	if (base >= end)
		return;
	for (unsigned i = 0; i < nr_used; i++) {
		if (used[i].use != use)
			continue;
		if (used[i].end == base) {
			used[i].end = end;
			return;
		}
		if (used[i].base == end) {
			used[i].base = base;
			return;
		}
	}
	KASSERT_MSG(nr_used < BOOTMEM_MAX_USED, "bootmem: more than %d used ranges", BOOTMEM_MAX_USED);
	used[nr_used++] = (struct bootmem_used){ base, end, use };
}

/* Forgets [base, end) (a page given back), splitting the entry that holds it. */
static void unlog_used(uint64_t base, uint64_t end)
{
	for (unsigned i = 0; i < nr_used; i++) {
		struct bootmem_used u = used[i];
		if (base < u.base || end > u.end)
			continue;
		used[i] = used[--nr_used];
		log_used(u.base, base, u.use);
		log_used(end, u.end, u.use);
		return;
	}
	panic("bootmem: freeing %#llx, which bootmem never handed out", (unsigned long long)base);
}

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
static uint64_t claim(uint64_t base, uint64_t end, enum bootmem_use use, bool log)
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
		if (log)
			log_used(MAX(r.base, base), MIN(r.end, end), use);
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
		uint64_t dup = claim(base, end, BOOTMEM_KERNEL, false);
		stats.usable += end - base - dup;
		insert_range(base, end);
	}

	stats.claimed += claim(0, MiB(1), BOOTMEM_RESERVED, true);
	stats.claimed += claim(KERNEL_LOAD_PA, kernel_pa_end, BOOTMEM_KERNEL, true);
	stats.claimed += claim(bi->info_start, bi->info_end, BOOTMEM_KERNEL, true);
	for (unsigned i = 0; i < bi->nr_modules; i++)
		stats.claimed += claim(bi->modules[i].start, bi->modules[i].end, BOOTMEM_KERNEL, true);
	if (bi->symtab_pa)
		stats.claimed += claim(bi->symtab_pa, bi->symtab_pa + bi->symtab_size, BOOTMEM_KERNEL, true);
	if (bi->strtab_pa)
		stats.claimed += claim(bi->strtab_pa, bi->strtab_pa + bi->strtab_size, BOOTMEM_KERNEL, true);
}

uint64_t bootmem_alloc(uint64_t size, uint64_t align, uint64_t max_pa, enum bootmem_use use)
{
	KASSERT_MSG(!retired, "bootmem_alloc after the physical allocator took over");
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
		if (use != BOOTMEM_PAGE_DB)
			memset(phys_to_virt(pa), 0, size);
		log_used(pa, pa + size, use);
		stats.allocated += size;
		return pa;
	}
	return 0;
}

void bootmem_free_page(uint64_t pa)
{
	KASSERT(is_aligned(pa, PAGE_SIZE) && !retired);
	unlog_used(pa, pa + PAGE_SIZE);
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

unsigned bootmem_used_ranges(const struct bootmem_used **out)
{
	*out = used;
	return nr_used;
}

void bootmem_retire(void) { retired = true; }

static uint64_t pt_alloc(void) { return bootmem_alloc(PAGE_SIZE, PAGE_SIZE, UINT64_MAX, BOOTMEM_PAGE_TABLE); }

const struct pt_frame_source bootmem_pt_source = { .alloc = pt_alloc, .free = bootmem_free_page };
