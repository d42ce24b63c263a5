// SPDX-License-Identifier: MIT
/* mm's reports to the console: `vm` (SPEC §8, like WinDbg's !vm), a space's regions, and the
 * live MDLs. */
#include <arch/pt.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <mm/pool.h>
#include <mm/mdl.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/vm.h>
#include "vm_internal.h"

/* A line of the `vm` report: a log line, or plain (the monitor's command, as its others). */
static void __printf(2, 3) say(bool plain, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (plain) {
		char buf[256];
		int n = kvsnprintf(buf, sizeof(buf) - 1, fmt, ap);
		size_t len = (size_t)n < sizeof(buf) - 1 ? (size_t)n : sizeof(buf) - 2;
		buf[len++] = '\n';
		console_write(buf, len);
	} else {
		vklog(LOG_INFO, fmt, ap);
	}
	va_end(ap);
}

#define LINE(label, pages) \
	say(plain, "vm:   %-20s %10llu (%12llu KiB)", label, (unsigned long long)(pages), (unsigned long long)(pages)*4)

static void report(bool plain)
{
	struct pmm_stats ps;
	struct charge_stats cs;
	struct pool_tag_stats tags[32];
	struct mdl_stats ms;

	pmm_get_stats(&pmm_main, &ps);
	mdl_get_stats(&ms);
	charge_get(&cs);
	say(plain, "vm: *** Virtual Memory Usage ***");
	LINE("Physical memory:", ps.total);
	LINE("Available pages:", ps.free);
	LINE("Committed pages:", cs.total);
	LINE("Commit limit:", cs.limit);
	LINE("Commit peak:", cs.peak);
	LINE("Locked pages:", cs.locked);
	LINE("Pinned pages:", ms.pinned_pages);
	LINE("Page-table pages:", ps.state[PAGE_TABLE]);
	LINE("Kernel pages:", ps.state[PAGE_KERNEL]);
	LINE("Pool pages:", pool_pages());
	LINE("Pool tables:", pool_table_pages());
	LINE("Page-table roots:", vm_root_count());
	LINE("Anonymous pages:", ps.state[PAGE_ANON]);
	LINE("MDL pages:", ps.state[PAGE_MDL]);
	say(plain, "vm:   %-20s %10llu", "MDLs:", (unsigned long long)ms.mdls);
	struct tlb_stats ts = tlb_stats_total();
	say(plain, "vm:   %-20s %10llu rounds (%llu of the kernel half), %llu IPIs",
	    "TLB shootdowns:", (unsigned long long)ts.rounds, (unsigned long long)ts.kernel_rounds,
	    (unsigned long long)ts.ipis);
	unsigned n = pool_tag_usage(tags, 32);
	say(plain, "vm:   Pool usage by tag:    Tag     Allocs      Frees   Bytes in use");
	for (unsigned i = 0; i < n; i++) {
		char name[5];
		pool_tag_name(tags[i].tag, name);
		say(plain, "vm:                         %-4s %10llu %10llu %14llu", name,
		    (unsigned long long)tags[i].allocs, (unsigned long long)tags[i].frees,
		    (unsigned long long)tags[i].bytes);
	}
	for (struct lookaside *l = lookaside_lists(); l; l = l->next_list)
		say(plain, "vm:   Lookaside '%s': %zu-byte blocks, depth %u, %u cached; %llu allocs, %llu hits",
		    l->name, l->size, l->depth, l->count, (unsigned long long)l->allocs, (unsigned long long)l->hits);
	say(plain, "vm:   Space '%s': %llu regions, %llu committed, %llu resident, %llu locked pages",
	    kernel_space.name, (unsigned long long)kernel_space.tree.count, (unsigned long long)kernel_space.committed,
	    (unsigned long long)kernel_space.resident, (unsigned long long)kernel_space.locked);
}

void vm_report(void) { report(false); }

void vm_print_report(void) { report(true); }

static const char *cache_name(unsigned flags)
{
	switch (flags & VMM_FLAG_CACHE_MASK) {
	case VMM_FLAG_WRITE_THROUGH:
		return "WT";
	case VMM_FLAG_WRITE_COMBINE:
		return "WC";
	case VMM_FLAG_CACHE_DISABLE:
		return "UC";
	default:
		return "WB";
	}
}

static void prot_string(unsigned prot, char out[4])
{
	out[0] = (prot & VMM_FLAG_READ) ? 'r' : '-';
	out[1] = (prot & VMM_FLAG_WRITE) ? 'w' : '-';
	out[2] = (prot & VMM_FLAG_EXECUTE) ? 'x' : '-';
	out[3] = 0;
}

/* bytes (a multiple of 4 KiB) as "4K", "12M", "1G": the largest unit that divides it. */
static void human_size(uint64_t bytes, char out[24])
{
	if (bytes && bytes % (1ull << 30) == 0)
		ksnprintf(out, 24, "%lluG", (unsigned long long)(bytes >> 30));
	else if (bytes && bytes % (1ull << 20) == 0)
		ksnprintf(out, 24, "%lluM", (unsigned long long)(bytes >> 20));
	else
		ksnprintf(out, 24, "%lluK", (unsigned long long)(bytes >> 10));
}

void vm_print_regions(struct vm_space *vs)
{
	static const char states[] = { [VM_RESERVED] = 'R', [VM_COMMITTED] = 'C', [VM_GUARD] = 'G' };
	static const char *const kinds[] = { [VMR_ANON] = "", [VMR_IO] = "io ", [VMR_FRAMES] = "frames " };

	vm_lock(vs);
	console_printf("  %-18s %-20s %-8s %-4s %-5s %-20s %s\n", "BASE", "SIZE", "RESIDENT", "MAX", "CACHE", "FLAGS",
		       "RUNS (state:pages/protection, L: locked)");
	for (struct vm_region *r = vm_first_region_locked(vs); r; r = vm_next_region_locked(vs, r)) {
		char max[4], runs[120];
		size_t at = 0;
		prot_string(r->max_prot, max);
		uint64_t npages = vmr_pages(r);
		for (uint32_t i = 0; i < r->runs.n && at < sizeof(runs) - 24; i++) {
			const struct vm_run *run = &r->runs.v[i];
			char prot[4];
			prot_string(run->prot, prot);
			at += (size_t)ksnprintf(runs + at, sizeof(runs) - at, "%s%c:%llu%s%s%s", i ? " " : "",
						states[run->state],
						(unsigned long long)(vm_runs_end(&r->runs, i, npages) - run->start),
						run->state == VM_GUARD ? "" : "/", run->state == VM_GUARD ? "" : prot,
						run->locked ? "L" : "");
		}
		if (at >= sizeof(runs) - 24)
			ksnprintf(runs + at, sizeof(runs) - at, " ...");
		char flags[24];
		ksnprintf(flags, sizeof(flags), "%s%s%s%s%s", kinds[r->kind],
			  (r->flags & VMM_FLAG_LOW_GUARD) ? "lg " : "", (r->flags & VMM_FLAG_HIGH_GUARD) ? "hg " : "",
			  (r->flags & VMM_FLAG_GROW_DOWN) ? "gd " : "", r->name);
		char human[24], size[40];
		human_size(npages * PAGE_SIZE, human);
		ksnprintf(size, sizeof(size), "%#llx (%s)", (unsigned long long)(npages * PAGE_SIZE), human);
		console_printf("  %#018llx %-20s %-8llu %-4s %-5s %-20s %s\n", (unsigned long long)vmr_base(r), size,
			       (unsigned long long)r->resident, max, cache_name(r->flags), flags, runs);
	}
	vm_unlock(vs);
}

void vm_print_page(struct vm_space *vs, uint64_t va)
{
	struct vm_info vi;
	char prot[4];

	if (va >= USER_END || vm_query(vs, va, &vi) != rcOk)
		return;
	prot_string(vi.flags, prot);
	switch (vi.state) {
	case VMM_STATE_COMMITTED:
		if (vi.resident)
			console_printf("  vm: committed, resident, %s %s\n", prot, cache_name(vi.flags));
		else
			console_printf(
				"  vm: committed, not resident: demand-zero (a touch maps a zeroed frame), %s %s\n",
				prot, cache_name(vi.flags));
		break;
	case VMM_STATE_RESERVED:
		console_printf("  vm: reserved (a commit would make it usable)\n");
		break;
	case VMM_STATE_GUARD:
		console_printf("  vm: guard page (never accessible)\n");
		break;
	default:
		console_printf("  vm: free (no region)\n");
		break;
	}
}

void vm_print_maps(struct vm_space *vs)
{
	vm_lock(vs);
	console_printf("  %-37s %8s %8s %-4s %s\n", "START-END", "SIZE", "RSS", "MAX", "LABEL");
	for (struct vm_region *r = vm_first_region_locked(vs); r; r = vm_next_region_locked(vs, r)) {
		char max[4], size[24], rss[24];
		uint64_t base = vmr_base(r), bytes = vmr_pages(r) * PAGE_SIZE;
		prot_string(r->max_prot, max);
		human_size(bytes, size);
		human_size(r->resident * PAGE_SIZE, rss);
		const char *label = (r->flags & VMM_FLAG_GROW_DOWN) ? "[stack]"
				    : r->kind == VMR_IO             ? "[io]"
				    : strcmp(r->name, "elf") == 0   ? "[elf]"
				    : strcmp(r->name, "mdl") == 0   ? "[mdl]"
								    : "[anon]";
		console_printf("  %#018llx-%#018llx %8s %8s %-4s %s\n", (unsigned long long)base,
			       (unsigned long long)(base + bytes), size, rss, max, label);
	}
	vm_unlock(vs);
}

/* ------------------------------------------------------------------ a region's usage map */

#define USAGE_PER_LINE  64
#define USAGE_MAX_LINES 32 /* 2048 pages (8 MiB) shown at most */

struct usage_line {
	uint64_t base;
	bool present[USAGE_PER_LINE];
};

static int mark_present(uint64_t start, uint64_t end, bool present, void *arg)
{
	struct usage_line *u = arg;
	for (uint64_t va = start; present && va < end; va += PAGE_SIZE)
		u->present[(va - u->base) / PAGE_SIZE] = true;
	return 0;
}

/* The usage map is read into a snapshot under the space's lock (a character a page, at most
 * USAGE_PER_LINE * USAGE_MAX_LINES of them, on the stack) and printed after it is dropped:
 * the UART's pace must not keep the space locked with interrupts off. */
bool vm_print_usage(struct vm_space *vs, uint64_t va)
{
	static const char symbol[5] = { '#', 'L', '-', '.', 'G' };
	char map[USAGE_PER_LINE * USAGE_MAX_LINES];
	uint64_t count[5] = { 0 }; /* resident, locked, not resident, reserved, guard (of those shown) */

	vm_lock(vs);
	struct vm_region *r = va < USER_END ? vm_region_find_locked(vs, va) : NULL;
	if (!r) {
		vm_unlock(vs);
		return false;
	}
	uint64_t base = vmr_base(r), npages = vmr_pages(r), resident = r->resident;
	uint64_t shown = MIN(npages, (uint64_t)sizeof(map));
	for (uint64_t first = 0; first < shown; first += USAGE_PER_LINE) {
		uint64_t k = MIN((uint64_t)USAGE_PER_LINE, shown - first);
		struct usage_line u = { .base = base + first * PAGE_SIZE };
		pt_scan_residency(&vs->pt, u.base, k * PAGE_SIZE, mark_present, &u);
		for (uint64_t i = 0; i < k; i++) {
			const struct vm_run *run = &r->runs.v[vm_runs_find(&r->runs, first + i)];
			unsigned what = run->state == VM_GUARD      ? 4
					: run->state == VM_RESERVED ? 3
					: !u.present[i]             ? 2
					: run->locked               ? 1
								    : 0;
			count[what]++;
			map[first + i] = symbol[what];
		}
	}
	vm_unlock(vs);

	char human[24];
	human_size(npages * PAGE_SIZE, human);
	console_printf("usage map of the region at %#llx-%#llx (%s, %llu pages, %llu resident), a character a page:\n",
		       (unsigned long long)base, (unsigned long long)(base + npages * PAGE_SIZE), human,
		       (unsigned long long)npages, (unsigned long long)resident);
	console_printf(
		"  # resident  L resident, locked  - committed, not resident (demand-zero)  . reserved  G guard\n");
	for (uint64_t first = 0; first < shown; first += USAGE_PER_LINE)
		console_printf("  %#018llx %.*s\n", (unsigned long long)(base + first * PAGE_SIZE),
			       (int)MIN((uint64_t)USAGE_PER_LINE, shown - first), map + first);
	if (shown < npages)
		console_printf("  ... %llu more pages not shown\n", (unsigned long long)(npages - shown));
	console_printf(
		"  %llu resident (%llu of them locked), %llu committed not resident, %llu reserved, %llu guard%s\n",
		(unsigned long long)(count[0] + count[1]), (unsigned long long)count[1], (unsigned long long)count[2],
		(unsigned long long)count[3], (unsigned long long)count[4],
		shown < npages ? " (of the pages shown)" : "");
	return true;
}

static void mdl_line(const struct mdl *m, void *arg)
{
	static const char *const kinds[] = { [MDL_RAM] = "ram", [MDL_IO] = "io", [MDL_DESCRIBED] = "described" };
	char runs[96];
	size_t at = 0;
	uint64_t frames = 0;

	(void)arg;
	for (uint32_t i = 0; i < m->nruns; i++) {
		const struct mdl_run *r = &m->runs[i];
		frames += r->pfn == MDL_FICTITIOUS ? 0 : r->count;
		if (at < sizeof(runs) - 32)
			at += r->pfn == MDL_FICTITIOUS
				      ? (size_t)ksnprintf(runs + at, sizeof(runs) - at, "%s[%llu fictitious]",
							  i ? " " : "", (unsigned long long)r->count)
				      : (size_t)ksnprintf(runs + at, sizeof(runs) - at, "%s[%#llx+%llu]", i ? " " : "",
							  (unsigned long long)(r->pfn << PAGE_SHIFT),
							  (unsigned long long)r->count);
	}
	if (at >= sizeof(runs) - 32)
		ksnprintf(runs + at, sizeof(runs) - at, " ...");
	console_printf("  %p %-9s %8llu bytes %5llu pages (%llu frames) max %c%c%c cache %s: %s\n", (const void *)m,
		       kinds[m->kind], (unsigned long long)m->bytes, (unsigned long long)m->pages,
		       (unsigned long long)frames, (m->max_prot & VMM_FLAG_READ) ? 'r' : '-',
		       (m->max_prot & VMM_FLAG_WRITE) ? 'w' : '-', (m->max_prot & VMM_FLAG_EXECUTE) ? 'x' : '-',
		       cache_name(m->cache), runs);
}

static void mdl_head(const struct mdl_stats *ms, void *arg)
{
	(void)arg;
	console_printf("%llu MDLs, %llu pinned pages\n", (unsigned long long)ms->mdls,
		       (unsigned long long)ms->pinned_pages);
}

void mdl_report(void) { mdl_for_each(mdl_head, mdl_line, NULL); }

/* ------------------------------------------------------------------ frames */

void buddy_report(void)
{
	static const char *const zones[PMM_NR_ZONES] = { "low (below 4 GiB)", "high" };
	struct pmm_stats st;

	pmm_get_stats(&pmm_main, &st);
	console_printf("free blocks by order (order n: 2^n pages); %llu free pages, %llu in the per-CPU cache\n",
		       (unsigned long long)st.free, (unsigned long long)st.pcp);
	for (unsigned z = 0; z < PMM_NR_ZONES; z++) {
		console_printf("zone %-18s %8llu pages:", zones[z], (unsigned long long)st.zone_free[z]);
		for (unsigned o = 0; o < PMM_NR_ORDERS; o++)
			console_printf(" %llu", (unsigned long long)st.free_blocks[z][o]);
		console_printf("\n");
	}
}

void pfn_report(uint64_t pa)
{
	static const char *const types[] = { "WB", "WT", "WC", "UC" };
	uint64_t pfn = pa >> PAGE_SHIFT;

	if (!pmm_pfn_is_ram(&pmm_main, pfn)) {
		console_printf(
			"pfn %#llx: not RAM the allocator accounts for (device memory, a hole, or past the end)\n",
			(unsigned long long)pfn);
		return;
	}
	if (!pmm_pfn_described(&pmm_main, pfn)) {
		console_printf("pfn %#llx: RAM without a descriptor (the page database's own frames)\n",
			       (unsigned long long)pfn);
		return;
	}
	const struct page *p = pmm_page(&pmm_main, pfn);
	struct page snap = *p; /* one read of each field: the frame may change meanwhile */
	console_printf("pfn %#llx (pa %#llx): %s, refs %u, pins %u, order %u (max %u), type %s%s%s, owner word %#x\n",
		       (unsigned long long)pfn, (unsigned long long)(pfn << PAGE_SHIFT),
		       page_state_name((enum page_state)snap.state), snap.refcount, snap.pincount, snap.order,
		       snap.max_order, types[(snap.flags & PG_TYPE_MASK) >> PG_TYPE_SHIFT],
		       (snap.flags & PG_PCP) ? ", in the per-CPU cache" : "",
		       (snap.flags & PG_POISONED) ? ", poisoned" : "", snap.private);
}
