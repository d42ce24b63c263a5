// SPDX-License-Identifier: MIT
/*
 * Boot of the physical page manager: map the page database where RAM is, then hand every
 * frame the boot allocator knows about to pmm_main with its state, and make the page-table
 * layer take its frames from the PMM. Costs O(memory-map entries + database chunks), not
 * O(frames): free memory goes in as maximal blocks whose descriptors (but the heads) are
 * never touched, and the database's own backing is never zeroed.
 */
#include <arch/pt.h>
#include <knmm/bootinfo.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <mm/bootmem.h>
#include <mm/pmm.h>

#define DB_CHUNK    SIZE_2M /* one large page of the database: 64 Ki descriptors */
#define DB_PER_PAGE (PAGE_SIZE / sizeof(struct page))

static uint64_t db_va(uint64_t pfn) { return PAGEDB_BASE + pfn * sizeof(struct page); }

static void db_map(uint64_t va, uint64_t size, enum pt_level level)
{
	uint64_t align = level == PT_LEVEL_PD ? SIZE_2M : PAGE_SIZE;
	uint64_t pa = bootmem_alloc(size, align, UINT64_MAX, BOOTMEM_PAGE_DB);

	if (!pa)
		panic("pmm: no memory for the page database (%llu KiB at %#llx)", (unsigned long long)(size >> 10),
		      (unsigned long long)va);
	Retcode rc = pt_map(&kernel_pt_root, va, pa, size, MMU_READ | MMU_WRITE | MMU_GLOBAL, level);
	if (rc != rcOk)
		panic("pmm: cannot map the page database at %#llx: error %d", (unsigned long long)va, rc);
}

/*
 * Maps the database pages that describe `n` RAM ranges (sorted, page-aligned pfns). A 2 MiB
 * chunk of the database that is at least half needed gets a large page; otherwise only the
 * needed 4 KiB pages are mapped (a 64 MiB machine needs 512 KiB, not 2 MiB).
 */
static void db_map_ranges(const struct pmm_range *r, unsigned n)
{
	for (unsigned i = 0; i < n;) {
		/* Merge the database spans of ranges that share pages. */
		uint64_t lo = align_down(db_va(r[i].start), PAGE_SIZE), hi = align_up(db_va(r[i].end), PAGE_SIZE);
		for (i++; i < n && align_down(db_va(r[i].start), PAGE_SIZE) <= hi; i++)
			hi = MAX(hi, align_up(db_va(r[i].end), PAGE_SIZE));

		for (uint64_t va = lo; va < hi;) {
			uint64_t chunk = align_down(va, DB_CHUNK), chunk_end = chunk + DB_CHUNK;
			uint64_t end = MIN(hi, chunk_end);
			/* A neighbouring span may have mapped part of this chunk already. */
			while (va < end && pt_translate(&kernel_pt_root, va, NULL))
				va += PAGE_SIZE;
			if (va >= end)
				continue;
			if (va == chunk && end - va >= DB_CHUNK / 2 &&
			    !pt_translate(&kernel_pt_root, chunk_end - PAGE_SIZE, NULL)) {
				db_map(chunk, DB_CHUNK, PT_LEVEL_PD);
				va = chunk_end;
			} else {
				db_map(va, end - va, PT_LEVEL_PT);
				va = end;
			}
		}
	}
}

static enum page_state state_for(enum bootmem_use use)
{
	switch (use) {
	case BOOTMEM_RESERVED:
		return PAGE_RESERVED;
	case BOOTMEM_PAGE_TABLE:
		return PAGE_TABLE;
	default:
		return PAGE_KERNEL;
	}
}

static uint64_t pmm_pt_alloc(void)
{
	struct page *p = pmm_alloc(0, PMM_ZERO, PAGE_TABLE);
	return p ? page_to_pa(p) : 0;
}

static void pmm_pt_free(uint64_t pa) { pmm_free(pa_to_page(pa), 0); }

/* The page-table layer keeps each table's occupancy summary in its frame's owner word. */
static uint32_t *pmm_pt_word(uint64_t pa) { return &pa_to_page(pa)->private; }

static const struct pt_frame_source pmm_pt_source = { .alloc = pmm_pt_alloc, .free = pmm_pt_free, .word = pmm_pt_word };

uint64_t pmm_free_pages(void) { return pmm_free_pages_in(&pmm_main); }

void pmm_init(const struct boot_info *bi)
{
	struct pmm_range ram[PMM_MAX_RANGES];
	unsigned nr_ram = 0;

#ifdef KNMM_DEBUG
	pmm_setup(&pmm_main, (struct page *)PAGEDB_BASE, true);
#else
	pmm_setup(&pmm_main, (struct page *)PAGEDB_BASE, false);
#endif
	/* Available RAM, page-aligned inward, sorted and merged (firmware maps may overlap or
	 * come out of order: the boot information is sorted by base). */
	for (unsigned i = 0; i < bi->nr_mem; i++) {
		const struct boot_mem_range *m = &bi->mem[i];
		uint64_t s = align_up(m->base, PAGE_SIZE) >> PAGE_SHIFT,
			 e = align_down(m->base + m->size, PAGE_SIZE) >> PAGE_SHIFT;
		if (m->type != BOOT_MEM_AVAILABLE || s >= e)
			continue;
		unsigned k = nr_ram;
		while (k > 0 && ram[k - 1].start > s)
			k--;
		if (k > 0 && s <= ram[k - 1].end) { /* overlaps or touches the one before */
			ram[k - 1].end = MAX(ram[k - 1].end, e);
		} else {
			if (nr_ram == PMM_MAX_RANGES)
				panic("pmm: more than %d RAM ranges in the memory map", PMM_MAX_RANGES);
			for (unsigned j = nr_ram++; j > k; j--)
				ram[j] = ram[j - 1];
			ram[k] = (struct pmm_range){ s, e };
			k++;
		}
		/* The grown range may now reach the ones after it. */
		while (k < nr_ram && ram[k].start <= ram[k - 1].end) {
			ram[k - 1].end = MAX(ram[k - 1].end, ram[k].end);
			for (unsigned j = k; j + 1 < nr_ram; j++)
				ram[j] = ram[j + 1];
			nr_ram--;
		}
	}
	db_map_ranges(ram, nr_ram);
	for (unsigned i = 0; i < nr_ram; i++)
		pmm_add_ram(&pmm_main, ram[i].start, ram[i].end);

	/* What the boot took, with its state; the database's own frames stay undescribed. */
	const struct bootmem_used *used;
	unsigned nr_used = bootmem_used_ranges(&used);
	for (unsigned i = 0; i < nr_used; i++) {
		uint64_t s = used[i].base >> PAGE_SHIFT, e = used[i].end >> PAGE_SHIFT;
		if (used[i].use == BOOTMEM_PAGE_DB)
			pmm_add_opaque(&pmm_main, s, e, PAGE_KERNEL);
		else
			pmm_add_used(&pmm_main, s, e, state_for(used[i].use));
	}
	const struct bootmem_range *fr;
	unsigned nr_fr = bootmem_free_ranges(&fr);
	for (unsigned i = 0; i < nr_fr; i++)
		pmm_add_free(&pmm_main, fr[i].base >> PAGE_SHIFT, fr[i].end >> PAGE_SHIFT);

	uint64_t usable = bootmem_stats()->usable >> PAGE_SHIFT;
	if (pmm_main.total_pages != usable)
		panic("pmm: accounts for %llu frames, the memory map has %llu",
		      (unsigned long long)pmm_main.total_pages, (unsigned long long)usable);
	bootmem_retire();
	pt_set_frame_source(&pmm_pt_source);

	struct pmm_stats st;
	pmm_get_stats(&pmm_main, &st);
	uint64_t blocks = 0;
	for (unsigned z = 0; z < PMM_NR_ZONES; z++)
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
			blocks += st.free_blocks[z][o];
	pr_info("pmm: %llu frames (%llu MiB): %llu free in %llu blocks, %llu kernel, %llu page-table, %llu reserved; "
		"page database %llu KiB",
		(unsigned long long)st.total, (unsigned long long)(st.total >> 8), (unsigned long long)st.free,
		(unsigned long long)blocks, (unsigned long long)st.state[PAGE_KERNEL],
		(unsigned long long)st.state[PAGE_TABLE], (unsigned long long)st.state[PAGE_RESERVED],
		(unsigned long long)(st.total * sizeof(struct page) >> 10));
	pr_info("pmm: zone below 4 GiB %llu MiB free, above %llu MiB free", (unsigned long long)(st.zone_free[0] >> 8),
		(unsigned long long)(st.zone_free[1] >> 8));
}
