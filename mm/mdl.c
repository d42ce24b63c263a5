// SPDX-License-Identifier: MIT
/*
 * The MDL object (mm/mdl.h, docs/mdl.md): its runs, the references and pins it holds on its
 * frames, its charge, and creating, cloning and freeing it. What MDLs do with address spaces
 * is mm/mdl_vm.c's; the NT-style services are mm/mmsvc.c's; the report mm/report.c's.
 *
 * Frame ownership is by reference counts in the page database: an MDL holds one reference
 * and one pin on every frame it lists, a mapping one reference per mapped page. Whoever
 * drops the last reference frees the frame, so closing the last handle and unmapping the
 * last mapping may happen in either order. The pin is what makes decommit refuse a range
 * (rcBusy) while an MDL lives.
 *
 * Commit: an MDL charges the pages it holds frames for, for as long as it lives; a mapping
 * charges its pages as any commit does. A frame shared by both is charged twice, which is
 * conservative and keeps the rule that every frame in use is covered by some charge.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/printf.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>
#include "frame.h"
#include <mm/mdl.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include <mm/vm.h>

#define MDL_TAG       POOL_TAG('M', 'd', 'l', ' ')
#define RUNS_TAG      POOL_TAG('M', 'd', 'l', 'R')
#define MDL_MAX_ORDER 10 /* frames are taken in blocks of up to 4 MiB: few runs */

/* MDL headers come and go with every dump region, FromVm and mapping: a lookaside list. */
static struct lookaside mdl_header_cache = LOOKASIDE_INIT(mdl_header_cache, "mdls", sizeof(struct mdl), MDL_TAG, 32);
static spinlock_t mdl_lock = SPINLOCK_INIT("mdls", LOCK_RANK_MDLS);
static struct list_head all_mdls = LIST_HEAD_INIT(all_mdls);
static uint64_t nr_mdls, pinned_pages;

bool mdl_flags_valid(unsigned flags)
{
	unsigned prot = flags & VMM_FLAG_RWX_MASK, cache = flags & VMM_FLAG_CACHE_MASK;

	return !(flags & ~(unsigned)(VMM_FLAG_RWX_MASK | VMM_FLAG_CACHE_MASK)) &&
	       (prot == VMM_FLAG_READ || prot == (VMM_FLAG_READ | VMM_FLAG_WRITE) ||
		prot == (VMM_FLAG_READ | VMM_FLAG_EXECUTE) || prot == VMM_FLAG_RWX_MASK) &&
	       (cache & (cache - 1)) == 0;
}

void mdl_init(void) { lookaside_register(&mdl_header_cache); }

struct mdl *mdl_new(enum mdl_kind kind, unsigned flags, uint64_t bytes, uint64_t pages, struct account *acct)
{
	struct mdl *m = lookaside_alloc_charged(&mdl_header_cache, acct);
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->acct = acct;
	if (acct)
		account_get(acct);
	m->kind = (uint8_t)kind;
	m->max_prot = (uint8_t)(flags & VMM_FLAG_RWX_MASK);
	m->cache = (uint16_t)vm_cache_mode(flags);
	m->bytes = bytes;
	m->pages = pages;
	bool irq = spin_lock_irqsave(&mdl_lock);
	list_add_tail(&m->link, &all_mdls);
	nr_mdls++;
	spin_unlock_irqrestore(&mdl_lock, irq);
	return m;
}

/* Makes the run array hold `cap` runs. */
static Retcode runs_grow(struct mdl *m, uint32_t cap)
{
	struct mdl_run *v = kmem_alloc(m->acct, cap * sizeof(*v), RUNS_TAG);
	if (!v)
		return rcOutOfMemory;
	if (m->runs) {
		memcpy(v, m->runs, m->nruns * sizeof(*v));
		kmem_free(m->acct, m->runs);
	}
	m->runs = v;
	m->cap = cap;
	return rcOk;
}

Retcode mdl_reserve_runs(struct mdl *m, uint64_t n)
{
	if (n > UINT32_MAX)
		return rcOutOfMemory;
	return n <= m->cap ? rcOk : runs_grow(m, (uint32_t)n);
}

Retcode mdl_append_run(struct mdl *m, uint64_t pfn, uint64_t count)
{
	if (m->nruns) {
		struct mdl_run *last = &m->runs[m->nruns - 1];
		bool fict = pfn == MDL_FICTITIOUS, last_fict = last->pfn == MDL_FICTITIOUS;
		if (fict == last_fict && (fict || last->pfn + last->count == pfn)) {
			last->count += count;
			return rcOk;
		}
	}
	if (m->nruns == m->cap && runs_grow(m, m->cap ? m->cap * 2 : 4) != rcOk)
		return rcOutOfMemory;
	m->runs[m->nruns++] = (struct mdl_run){ pfn, count };
	return rcOk;
}

/* The frames of runs of frames, page by page, fictitious runs skipped: the one loop over an
 * MDL's runs and their pages. (A run's frames are consecutive, and so are their descriptors
 * in the page database: within a run the next one is the next descriptor.) */
struct frame_iter {
	const struct mdl_run *run, *end; /* the next run to start */
	struct page *next, *stop;        /* the rest of the current one */
};

static inline void frame_iter_init(struct frame_iter *it, const struct mdl_run *runs, uint32_t nruns)
{
	it->run = runs;
	it->end = runs + nruns;
	it->next = it->stop = NULL;
}

static inline struct page *frame_iter_next(struct frame_iter *it)
{
	while (it->next == it->stop) {
		if (it->run == it->end)
			return NULL;
		const struct mdl_run *r = it->run++;
		if (r->pfn == MDL_FICTITIOUS)
			continue;
		it->next = pa_to_page(r->pfn << PAGE_SHIFT);
		it->stop = it->next + r->count;
	}
	return it->next++;
}

/* The MDL's pin on a frame it holds a reference on. */
static void pin_frame(struct page *p)
{
	if (page_pin(p))
		__atomic_add_fetch(&pinned_pages, 1, __ATOMIC_RELAXED);
}

void mdl_hold_frames(struct mdl *m)
{
	struct frame_iter it;
	struct page *p;

	for (frame_iter_init(&it, m->runs, m->nruns); (p = frame_iter_next(&it)) != NULL;) {
		page_ref(p);
		pin_frame(p);
	}
}

static void unpin_frame(struct page *p)
{
	if (page_unpin(p))
		__atomic_sub_fetch(&pinned_pages, 1, __ATOMIC_RELAXED);
	if (page_unref(p))
		frame_free(p);
}

void mdl_release_frames(struct mdl *m)
{
	struct frame_iter it;
	struct page *p;
	uint64_t n = 0;

	if (m->kind == MDL_RAM)
		for (frame_iter_init(&it, m->runs, m->nruns); (p = frame_iter_next(&it)) != NULL;) {
			unpin_frame(p);
			if (++n % VM_CHUNK_PAGES == 0)
				vm_preempt_point(); /* (nothing when called with a lock held) */
		}
	m->nruns = 0;
	charge_release(m->acct, m->charge);
	m->charge = 0;
	account_uncharge(m->acct, ACCT_LOCKED, m->locked);
	m->locked = 0;
}

void mdl_free(struct mdl *m)
{
	mdl_release_frames(m);
	bool irq = spin_lock_irqsave(&mdl_lock);
	list_del(&m->link);
	nr_mdls--;
	spin_unlock_irqrestore(&mdl_lock, irq);
	struct account *acct = m->acct;
	kmem_free(acct, m->runs);
	lookaside_free_charged(&mdl_header_cache, acct, m);
	if (acct)
		account_put(acct);
}

static bool size_to_pages(uint64_t bytes, uint64_t *pages)
{
	uint64_t end;
	if (bytes == 0 || !align_up_checked(bytes, PAGE_SIZE, &end))
		return false;
	*pages = end / PAGE_SIZE;
	return true;
}

static unsigned floor_log2(uint64_t n)
{
	unsigned k = 0;
	while (n >>= 1)
		k++;
	return k;
}

static Retcode create(uint64_t bytes, unsigned flags, struct account *acct, bool zero, struct mdl **out)
{
	uint64_t pages;

	if (!mdl_flags_valid(flags) || !size_to_pages(bytes, &pages))
		return rcInvalidArgument;
	/* Frames of another memory type than write-back are of that type in the direct map
	 * too (mm/frame.h): zeroed through it, and charged a page of direct-map table each. */
	bool typed = frame_type_of(flags) != FRAME_WB;
	uint64_t charge = pages * frame_commit_cost(flags);
	if (charge_take(acct, charge) != rcOk)
		return rcOutOfMemory;
	struct mdl *m = mdl_new(MDL_RAM, flags, bytes, pages, acct);
	if (!m) {
		charge_release(acct, charge);
		return rcOutOfMemory;
	}
	m->charge = charge;
	unsigned order = MIN(floor_log2(pages), MDL_MAX_ORDER);
	for (uint64_t left = pages; left;) {
		struct page *p = pmm_alloc(order, typed || !zero ? 0 : PMM_ZERO, PAGE_MDL);
		if (!p) {
			if (order == 0) {
				mdl_free(m);
				return rcOutOfMemory;
			}
			order--;
			continue;
		}
		uint64_t n = 1ull << order, pfn = page_to_pa(p) >> PAGE_SHIFT;
		const struct mdl_run block = { pfn, n };
		struct frame_iter it;
		struct page *f;
		pmm_split_allocation(&pmm_main, p, order); /* frames go back one by one */
		if (mdl_append_run(m, pfn, n) != rcOk) {
			for (frame_iter_init(&it, &block, 1); (f = frame_iter_next(&it)) != NULL;)
				pmm_free(f, 0);
			mdl_free(m);
			return rcOutOfMemory;
		}
		/* the allocation's reference is the MDL's; add its pin */
		for (frame_iter_init(&it, &block, 1); (f = frame_iter_next(&it)) != NULL;)
			pin_frame(f);
		if (typed)
			for (frame_iter_init(&it, &block, 1); (f = frame_iter_next(&it)) != NULL;) {
				if (frame_set_type(f, flags) != rcOk) {
					mdl_free(m); /* (frames go back write-back: those typed, and the rest) */
					return rcOutOfMemory;
				}
				zero_pages(page_to_va(f), 1);
			}
		left -= n;
		order = MIN(order, left ? floor_log2(left) : 0);
		vm_preempt_point(); /* (between blocks of up to 4 MiB: no lock is held) */
	}
	*out = m;
	return rcOk;
}

Retcode mdl_create_phys(uint64_t pa, uint64_t bytes, unsigned flags, struct account *acct, struct mdl **out)
{
	uint64_t pages;

	if (!mdl_flags_valid(flags) || !size_to_pages(bytes, &pages) || !is_aligned(pa, PAGE_SIZE) ||
	    pa + pages * PAGE_SIZE < pa || !mm_phys_is_io(pa, pa + pages * PAGE_SIZE))
		return rcInvalidArgument;
	struct mdl *m = mdl_new(MDL_IO, flags, bytes, pages, acct);
	if (!m)
		return rcOutOfMemory;
	if (mdl_append_run(m, pa >> PAGE_SHIFT, pages) != rcOk) {
		mdl_free(m);
		return rcOutOfMemory;
	}
	*out = m;
	return rcOk;
}

Retcode mdl_take_frames(struct mdl *m)
{
	uint64_t pages = 0, frames = 0;

	for (uint32_t i = 0; i < m->nruns; i++) {
		pages += m->runs[i].count;
		frames += m->runs[i].pfn == MDL_FICTITIOUS ? 0 : m->runs[i].count;
	}
	uint64_t charge = frames * frame_commit_cost(m->cache); /* (see mdl_create) */
	if (charge_take(m->acct, charge) != rcOk) {
		m->nruns = 0; /* nothing is pinned: nothing to give back */
		return rcOutOfMemory;
	}
	m->charge = charge;
	m->pages = pages;
	m->bytes = pages * PAGE_SIZE;
	mdl_hold_frames(m);
	return rcOk;
}

Retcode mdl_create_from_runs(const struct mdl_run *runs, uint32_t nruns, unsigned flags, struct account *acct,
			     struct mdl **out)
{
	if (!mdl_flags_valid(flags) || nruns == 0)
		return rcInvalidArgument;
	struct mdl *m = mdl_new(MDL_RAM, flags, 0, 0, acct);
	if (!m)
		return rcOutOfMemory;
	Retcode rc = rcOk;
	for (uint32_t i = 0; i < nruns && rc == rcOk; i++)
		rc = runs[i].count ? mdl_append_run(m, runs[i].pfn, runs[i].count) : rcInvalidArgument;
	if (rc == rcOk)
		rc = mdl_take_frames(m);
	else
		m->nruns = 0; /* nothing pinned yet */
	if (rc != rcOk) {
		mdl_free(m);
		return rc;
	}
	*out = m;
	return rcOk;
}

Retcode mdl_add_fictitious(struct mdl *m, uint64_t pages)
{
	if (m->kind != MDL_RAM || pages == 0 || pages > UINT64_MAX / PAGE_SIZE - m->pages)
		return rcInvalidArgument;
	Retcode rc = mdl_append_run(m, MDL_FICTITIOUS, pages);
	if (rc == rcOk) {
		m->pages += pages;
		m->bytes = m->pages * PAGE_SIZE;
	}
	return rc;
}

Retcode mdl_clone(const struct mdl *m, struct account *acct, struct mdl **out)
{
	if (m->kind == MDL_DESCRIBED)
		return rcInvalidArgument;
	unsigned flags = m->max_prot | m->cache;
	if (m->kind == MDL_IO) {
		Retcode rc = mdl_create_phys(m->runs[0].pfn << PAGE_SHIFT, m->bytes, flags, acct, out);
		return rc == rcInvalidArgument ? rcOutOfMemory : rc;
	}
	Retcode rc = mdl_create_from_runs(m->runs, m->nruns, flags, acct, out);
	if (rc == rcOk)
		(*out)->bytes = m->bytes;
	return rc;
}

Retcode mdl_create(uint64_t bytes, unsigned flags, struct account *acct, struct mdl **out)
{
	return create(bytes, flags, acct, true, out);
}

Retcode mdl_create_unzeroed(uint64_t bytes, unsigned flags, struct account *acct, struct mdl **out)
{
	/* (memory of another type than write-back is zeroed anyway: through its new type) */
	return create(bytes, flags, acct, false, out);
}

void mdl_cursor_init(struct mdl_cursor *c, const struct mdl *m, uint64_t first_page)
{
	c->m = m;
	c->run = 0;
	c->in_run = first_page;
	while (c->run < m->nruns && c->in_run >= m->runs[c->run].count)
		c->in_run -= m->runs[c->run++].count;
}

void *mdl_cursor_next(struct mdl_cursor *c)
{
	const struct mdl *m = c->m;
	if (c->run >= m->nruns)
		return NULL;
	const struct mdl_run *r = &m->runs[c->run];
	void *va = (m->kind != MDL_RAM || r->pfn == MDL_FICTITIOUS) ? NULL
								    : phys_to_virt((r->pfn + c->in_run) << PAGE_SHIFT);
	if (++c->in_run == r->count) {
		c->run++;
		c->in_run = 0;
	}
	return va;
}

void *mdl_page_address(const struct mdl *m, uint64_t i)
{
	if (m->kind != MDL_RAM)
		return NULL;
	for (uint32_t r = 0; r < m->nruns; r++) {
		if (i < m->runs[r].count)
			return m->runs[r].pfn == MDL_FICTITIOUS ? NULL
								: phys_to_virt((m->runs[r].pfn + i) << PAGE_SHIFT);
		i -= m->runs[r].count;
	}
	return NULL;
}

void mdl_get_stats(struct mdl_stats *out)
{
	bool irq = spin_lock_irqsave(&mdl_lock);
	out->mdls = nr_mdls;
	out->pinned_pages = __atomic_load_n(&pinned_pages, __ATOMIC_RELAXED);
	spin_unlock_irqrestore(&mdl_lock, irq);
}

void mdl_for_each(void (*head)(const struct mdl_stats *s, void *arg), void (*fn)(const struct mdl *m, void *arg),
		  void *arg)
{
	bool irq = spin_lock_irqsave(&mdl_lock);
	struct list_head *pos;
	if (head) {
		struct mdl_stats s = { nr_mdls, __atomic_load_n(&pinned_pages, __ATOMIC_RELAXED) };
		head(&s, arg);
	}
	list_for_each(pos, &all_mdls)
		fn(list_entry(pos, struct mdl, link), arg);
	spin_unlock_irqrestore(&mdl_lock, irq);
}
