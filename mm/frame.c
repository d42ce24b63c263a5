// SPDX-License-Identifier: MIT
/* Frames with a memory type: the direct map follows (mm/frame.h); and which physical ranges
 * the direct map leaves out (device space, mm_phys_is_io). */
#include <arch/cpu.h>
#include <arch/pt.h>
#include <kn/flags.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>
#include "frame.h"
#include <mm/mm.h>
#include <mm/pmm.h>

/* Changes to the direct map's entries (splits, types, merges). */
static spinlock_t alias_lock = SPINLOCK_INIT("direct map types", LOCK_RANK_DIRECT_MAP);

static unsigned alias_mmu(enum frame_type t)
{
	static const unsigned cache[] = { [FRAME_WB] = MMU_CACHE_WB,
					  [FRAME_WT] = MMU_CACHE_WT,
					  [FRAME_WC] = MMU_CACHE_WC,
					  [FRAME_UC] = MMU_CACHE_UC };
	return MMU_READ | MMU_WRITE | MMU_GLOBAL | cache[t];
}

static enum frame_type type_now(const struct page *p) { return (p->flags & PG_TYPE_MASK) >> PG_TYPE_SHIFT; }

Retcode frame_set_type(struct page *p, unsigned cache)
{
	enum frame_type t = frame_type_of(cache);
	if (t == FRAME_WB)
		return rcOk;
	KASSERT_MSG(type_now(p) == FRAME_WB, "frame %#llx: typed twice", (unsigned long long)page_to_pa(p));
	uint64_t pa = page_to_pa(p);
	bool irq = spin_lock_irqsave(&alias_lock);
	/* The entry first (pt_protect flushes it from the TLB), then the cache lines: nothing
	 * write-back of the frame is left anywhere afterwards. */
	Retcode rc = pt_protect(&kernel_pt_root, DIRECT_MAP_BASE + pa, PAGE_SIZE, alias_mmu(t));
	if (rc == rcOk)
		p->flags = (uint8_t)(p->flags | (t << PG_TYPE_SHIFT));
	spin_unlock_irqrestore(&alias_lock, irq);
	if (rc == rcOk)
		cache_flush_range(phys_to_virt(pa), PAGE_SIZE);
	return rc;
}

struct page *frame_alloc(unsigned cache, enum page_state state)
{
	if (frame_type_of(cache) == FRAME_WB)
		return pmm_alloc(0, PMM_ZERO, state);
	struct page *p = pmm_alloc(0, 0, state);
	if (!p)
		return NULL;
	if (frame_set_type(p, cache) != rcOk) {
		pmm_free(p, 0);
		return NULL;
	}
	zero_pages(phys_to_virt(page_to_pa(p)), 1); /* through the direct map, now of its type */
	return p;
}

void frame_clear_type(struct page *p)
{
	enum frame_type t = type_now(p);
	if (t == FRAME_WB)
		return;
	if (t == FRAME_WC)
		write_combining_flush();
	uint64_t alias = DIRECT_MAP_BASE + page_to_pa(p);
	bool irq = spin_lock_irqsave(&alias_lock);
	Retcode rc = pt_protect(&kernel_pt_root, alias, PAGE_SIZE, alias_mmu(FRAME_WB)); /* (split: cannot fail) */
	KASSERT_MSG(rc == rcOk, "frame %#llx: restoring its direct-map entry: %d", (unsigned long long)page_to_pa(p),
		    rc);
	pt_collapse(&kernel_pt_root, alias); /* a large page again where all its frames are write-back */
	p->flags = (uint8_t)(p->flags & ~PG_TYPE_MASK);
	spin_unlock_irqrestore(&alias_lock, irq);
}

void frame_free(struct page *p)
{
	frame_clear_type(p);
	pmm_free(p, 0);
}

/* ------------------------------------------------------------------ device space */

static int found_leaf(const struct pt_leaf *leaf, void *arg)
{
	(void)leaf;
	(void)arg;
	return 1;
}

bool mm_phys_is_io(uint64_t first, uint64_t end)
{
	/* Memory the direct map covers (RAM, ACPI tables, the edges of those ranges) is mapped
	 * write-back there: a second, uncached mapping would give it two memory types. */
	static const struct pt_walk_ops any_leaf = { .leaf = found_leaf };

	if (first >= end || end > DIRECT_MAP_SIZE || (phys_addr_bits() < 64 && end > (1ull << phys_addr_bits())))
		return false;
	/* One walk of the direct map over the range (large pages, absent levels skipped). */
	return pt_walk_range(&kernel_pt_root, DIRECT_MAP_BASE + first, end - first, &any_leaf, NULL) == 0;
}
