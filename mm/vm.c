// SPDX-License-Identifier: MIT
/*
 * Address spaces: regions, runs, commit charge, faults (see mm/vm.h and docs/vm.md).
 *
 * Every operation validates its arguments, takes the space lock, prepares everything that
 * can fail (charge, objects, run capacity, frames) and only then changes state, so a failing
 * call leaves nothing behind. Frames of anonymous pages carry one reference per mapping;
 * unmapping drops it and the last reference frees the frame (an MDL may hold another).
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <mm/pool.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include "frame.h"
#include <mm/mdl.h>
#include <mm/pmm.h>
#include <mm/vm.h>

#define PAGE PAGE_SIZE
#define PROT_R   VMM_FLAG_READ
#define PROT_RW  (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define PROT_RX  (VMM_FLAG_READ | VMM_FLAG_EXECUTE)
#define PROT_RWX VMM_FLAG_RWX_MASK
#define REGION_TAG POOL_TAG('V', 'm', 'R', 'g')

static struct lookaside region_cache = LOOKASIDE_INIT(region_cache, "vm regions", sizeof(struct vm_region),
						      REGION_TAG, 64);

/* ------------------------------------------------------------------ flags */

static bool prot_valid(unsigned prot)
{
	return prot == PROT_R || prot == PROT_RW || prot == PROT_RX || prot == PROT_RWX;
}

static bool cache_valid(unsigned flags)
{
	unsigned c = flags & VMM_FLAG_CACHE_MASK;
	return (c & (c - 1)) == 0;
}

unsigned vm_mmu_flags(const struct vm_space *vs, unsigned prot, unsigned region_flags)
{
	unsigned f = MMU_READ;

	if (prot & VMM_FLAG_WRITE)
		f |= MMU_WRITE;
	if (prot & VMM_FLAG_EXECUTE)
		f |= MMU_EXEC;
	f |= vs->user ? MMU_USER : MMU_GLOBAL;
	switch (region_flags & VMM_FLAG_CACHE_MASK) {
	case VMM_FLAG_WRITE_THROUGH:
		f |= MMU_CACHE_WT;
		break;
	case VMM_FLAG_WRITE_COMBINE:
		f |= MMU_CACHE_WC;
		break;
	case VMM_FLAG_CACHE_DISABLE:
		f |= MMU_CACHE_UC;
		break;
	default:
		f |= MMU_CACHE_WB;
		break;
	}
	return f;
}

/* ------------------------------------------------------------------ spaces */

void (*vm_preempt_hook)(void);
static uint64_t roots; /* spaces with a root of their own (each charged a page) */

uint64_t vm_root_count(void) { return __atomic_load_n(&roots, __ATOMIC_RELAXED); }

void vm_init(void) { lookaside_register(&region_cache); }

Retcode vm_space_init(struct vm_space *vs, const char *name, bool user, uint64_t lo, uint64_t hi,
		      const struct pt_root *root, struct account *acct)
{
	memset(vs, 0, sizeof(*vs));
	vs->lock = (spinlock_t)SPINLOCK_INIT("vm space");
	vs->name = name;
	vs->user = user;
	vs->lo = lo;
	vs->hi = hi;
	vs->mmap_base = lo;
	vs->rng = 0x9e3779b97f4a7c15ull;
	list_init(&vs->dead);
	vm_tree_init(&vs->tree);
	if (root) {
		vs->pt = *root;
		return rcOk;
	}
	/* A root of its own: a page, charged like any other page table. */
	if (charge_take(acct, 1) != rcOk)
		return rcOutOfMemory;
	if (pt_root_create(&vs->pt, user) != rcOk) {
		charge_release(acct, 1);
		return rcOutOfMemory;
	}
	vs->own_root = true;
	__atomic_add_fetch(&roots, 1, __ATOMIC_RELAXED);
	vs->acct = acct;
	if (acct)
		account_get(acct);
	return rcOk;
}

static inline struct vm_region *region_of(struct vm_node *n) { return n ? container_of(n, struct vm_region, node) : NULL; }

struct vm_region *vm_first_region(struct vm_space *vs) { return region_of(vm_tree_ceil(&vs->tree, 0)); }

struct vm_region *vm_next_region(struct vm_space *vs, struct vm_region *r)
{
	return region_of(vm_tree_next(&vs->tree, &r->node));
}

const struct vm_region *vm_region_at_unlocked(const struct vm_space *vs, uint64_t addr)
{
	return region_of(vm_tree_find(&vs->tree, addr));
}

/* ------------------------------------------------------------------ frames and mappings */

struct unmap_ctx {
	bool owns_frames;
	uint64_t pages;
	struct list_head *dead; /* frames whose last reference went: freed after the TLB flush */
};

static void unmap_cb(uint64_t va, uint64_t pa, uint64_t size, void *arg)
{
	struct unmap_ctx *c = arg;
	(void)va;
	for (uint64_t off = 0; off < size; off += PAGE) {
		c->pages++;
		if (!c->owns_frames)
			continue;
		struct page *p = pa_to_page(pa + off);
		if (page_unref(p))
			list_add_tail(&p->lru, c->dead);
	}
}

/* Frames to the allocator, a chunk at a time with a preemption point between chunks (in
 * debug builds each free also poisons the frame). No lock held. */
static void frames_put(struct list_head *frames)
{
	for (uint64_t n = 1; !list_empty(frames); n++) {
		struct page *p = list_first_entry(frames, struct page, lru);
		list_del(&p->lru);
		frame_free(p);
		if (n % VM_CHUNK_PAGES == 0)
			vm_preempt_point();
	}
}

/* `n` zeroed frames of the cache mode's type onto `frames`, zeroed outside any lock with a
 * preemption point between chunks (so a large locked commit does not zero with interrupts
 * off). rcOutOfMemory with the list as it was. */
static Retcode frames_get(struct list_head *frames, uint64_t n, unsigned cache)
{
	struct list_head got = LIST_HEAD_INIT(got);
	for (uint64_t i = 0; i < n; i++) {
		struct page *p = frame_alloc(cache, PAGE_ANON);
		if (!p) {
			frames_put(&got);
			return rcOutOfMemory;
		}
		list_add_tail(&p->lru, &got);
		if ((i + 1) % VM_CHUNK_PAGES == 0)
			vm_preempt_point();
	}
	list_splice_tail_init(&got, frames);
	return rcOk;
}

/* Unmaps [va, va + npages) of region r: frames lose the mapping's reference, and those that
 * lose their last wait on the space's dead list (the TLB flushed before pt_unmap returns)
 * until the operation drops the lock and calls free_dead. Lock held. */
static void unmap_pages(struct vm_space *vs, struct vm_region *r, uint64_t va, uint64_t npages)
{
	struct unmap_ctx c = { .owns_frames = r->kind != VMR_IO, .dead = &vs->dead };

	if (!r->resident)
		return; /* nothing of the region is mapped: no tables to walk */
	Retcode rc = pt_unmap(&vs->pt, va, npages * PAGE, unmap_cb, &c); /* flushes before returning */

	KASSERT(rc == rcOk); /* 4 KiB pages only: nothing to split */
	r->resident -= c.pages;
	vs->resident -= c.pages;
}

/* Frees what unmap_pages left on the dead list. Every operation that may unmap calls it
 * after dropping the lock. */
static void free_dead(struct vm_space *vs)
{
	struct list_head dead = LIST_HEAD_INIT(dead);
	if (list_empty(&vs->dead))
		return; /* (this operation unmapped no frame that lost its last reference) */
	bool irq = spin_lock_irqsave(&vs->lock);
	list_splice_tail_init(&vs->dead, &dead);
	spin_unlock_irqrestore(&vs->lock, irq);
	frames_put(&dead);
}

struct span {
	uint64_t start, end;
};

struct span_vec {
	unsigned n, cap;
	struct span *v;
	struct span inline_v[4];
	bool failed;
};

static int collect_hole(uint64_t start, uint64_t end, void *arg)
{
	struct span_vec *sv = arg;
	if (sv->n == sv->cap) {
		unsigned cap = sv->cap * 2;
		struct span *v = pool_alloc(cap * sizeof(*v), POOL_TAG('V', 'm', 'S', 'p'));
		if (!v) {
			sv->failed = true;
			return 1;
		}
		memcpy(v, sv->v, sv->n * sizeof(*v));
		if (sv->v != sv->inline_v)
			pool_free(sv->v);
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = (struct span){ start, end };
	return 0;
}

static void span_vec_free(struct span_vec *sv)
{
	if (sv->v != sv->inline_v)
		pool_free(sv->v);
}

static int count_hole(uint64_t start, uint64_t end, void *arg)
{
	*(uint64_t *)arg += (end - start) / PAGE;
	return 0;
}

/* Non-resident pages in [va, va + npages) (O(tables present)). Lock held. */
static uint64_t holes_in(struct vm_space *vs, uint64_t va, uint64_t npages)
{
	static const struct pt_walk_ops holes_only = { .hole = count_hole };
	uint64_t n = 0;
	pt_walk_range(&vs->pt, va, npages * PAGE, &holes_only, &n);
	return n;
}

/*
 * Gives every non-resident page of pages [first, first + count) of region r a frame from
 * `frames` (zeroed, of the region's type: callers allocate them before taking the lock, see
 * frames_get), mapped with its run's protection; frames it does not need stay on the list.
 * If the list is short (a caller that could not count the holes beforehand) the rest is
 * allocated here. All or nothing: the holes are found first, every frame is at hand next,
 * and a mapping that fails undoes this call's mappings only. Lock held.
 */
static Retcode populate(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count,
			struct list_head *frames)
{
	static const struct pt_walk_ops holes_only = { .hole = collect_hole };
	struct span_vec holes = { .cap = 4 };
	uint64_t va0 = vmr_base(r) + first * PAGE, need = 0, have = 0;
	Retcode rc = rcOk;

	holes.v = holes.inline_v;
	pt_walk_range(&vs->pt, va0, count * PAGE, &holes_only, &holes);
	if (holes.failed) {
		span_vec_free(&holes);
		return rcOutOfMemory;
	}
	for (unsigned i = 0; i < holes.n; i++)
		need += (holes.v[i].end - holes.v[i].start) / PAGE;
	struct list_head *pos;
	list_for_each(pos, frames)
		if (++have >= need)
			break;
	for (; have < need; have++) {
		struct page *p = frame_alloc(r->flags, PAGE_ANON);
		if (!p) {
			rc = rcOutOfMemory;
			break;
		}
		list_add_tail(&p->lru, frames);
	}
	for (unsigned h = 0; rc == rcOk && h < holes.n; h++) {
		for (uint64_t va = holes.v[h].start; va < holes.v[h].end; va += PAGE) {
			uint32_t ri = vm_runs_find(&r->runs, (va - vmr_base(r)) / PAGE);
			struct page *p = list_first_entry(frames, struct page, lru);
			unsigned mmu = vm_mmu_flags(vs, r->runs.v[ri].prot, r->flags);
			rc = pt_map(&vs->pt, va, page_to_pa(p), PAGE, mmu, PT_LEVEL_PT);
			if (rc != rcOk) {
				/* Undo this call's mappings: the holes before h, and h up to va (their
				 * frames go to the dead list: freed after the lock). */
				for (unsigned k = 0; k <= h; k++) {
					uint64_t end = k == h ? va : holes.v[k].end;
					if (end > holes.v[k].start)
						unmap_pages(vs, r, holes.v[k].start, (end - holes.v[k].start) / PAGE);
				}
				break;
			}
			list_del(&p->lru);
			p->lru.next = p->lru.prev = NULL;
			r->resident++;
			vs->resident++;
		}
	}
	span_vec_free(&holes);
	return rc;
}

/* ------------------------------------------------------------------ runs helpers */

enum { KEEP = 0xff };

/* Applies (state, prot, locked) to runs in [first, first + count): KEEP leaves a field, and
 * `only_state` (if not KEEP) restricts the change to runs in that state. Capacity 2 reserved. */
static void runs_apply(struct vm_region *r, uint64_t first, uint64_t count, uint8_t only_state, uint8_t state,
		       uint8_t prot, uint8_t locked)
{
	struct vm_runs *runs = &r->runs;
	uint64_t npages = vmr_pages(r), end = first + count;

	/* By page position: merges may move run boundaries, positions only move forward. Only
	 * the first and last pieces can split a run, so two spare runs are enough. */
	for (uint64_t pos = first; pos < end;) {
		uint32_t i = vm_runs_find(runs, pos);
		struct vm_run run = runs->v[i];
		uint64_t stop = MIN(vm_runs_end(runs, i, npages), end);
		uint8_t st = state == KEEP ? run.state : state;
		uint8_t pr = prot == KEEP ? run.prot : prot;
		uint8_t lk = locked == KEEP ? run.locked : locked;
		if ((only_state == KEEP || run.state == only_state) &&
		    (st != run.state || pr != run.prot || lk != run.locked))
			vm_runs_set(runs, npages, pos, stop - pos, st, pr, lk);
		pos = stop;
	}
}

/* Pages in [first, first + count) of region r in `state` (KEEP: any) and locked (if set). */
static uint64_t runs_count(const struct vm_region *r, uint64_t first, uint64_t count, uint8_t state, bool locked_only)
{
	const struct vm_runs *runs = &r->runs;
	uint64_t npages = vmr_pages(r), end = first + count, total = 0;

	for (uint32_t i = vm_runs_find(runs, first); i < runs->n && runs->v[i].start < end; i++) {
		if ((state != KEEP && runs->v[i].state != state) || (locked_only && !runs->v[i].locked))
			continue;
		total += MIN(vm_runs_end(runs, i, npages), end) - MAX(runs->v[i].start, first);
	}
	return total;
}

/*
 * The 2 MiB windows intersecting [lo, hi) that hold at least one committed page of any
 * region of the space. A window's page tables (at most a PT, a PD and a PDPT) are charged
 * while it holds one: that keeps "a committed page can always be mapped" true however
 * sparse the commits are. O(regions and runs in the range). Lock held.
 */
static uint64_t committed_windows(struct vm_space *vs, uint64_t lo, uint64_t hi)
{
	uint64_t last = UINT64_MAX, n = 0;
	struct vm_node *node = vm_tree_floor(&vs->tree, lo);

	if (!node || node->end <= lo)
		node = vm_tree_ceil(&vs->tree, lo);
	for (; node && node->base < hi; node = vm_tree_next(&vs->tree, node)) {
		struct vm_region *r = region_of(node);
		uint64_t npages = vmr_pages(r);
		uint64_t from = lo > vmr_base(r) ? (lo - vmr_base(r)) / PAGE : 0;
		for (uint32_t i = vm_runs_find(&r->runs, from); i < r->runs.n; i++) {
			uint64_t x = MAX(vmr_base(r) + r->runs.v[i].start * PAGE, lo);
			uint64_t y = MIN(vmr_base(r) + vm_runs_end(&r->runs, i, npages) * PAGE, hi);
			if (x >= hi)
				break;
			if (r->runs.v[i].state != VM_COMMITTED || x >= y)
				continue;
			uint64_t wa = x >> VM_TABLE_WINDOW_SHIFT, wb = (y - 1) >> VM_TABLE_WINDOW_SHIFT;
			if (last != UINT64_MAX && wa <= last)
				wa = last + 1;
			if (wa <= wb) {
				n += wb - wa + 1;
				last = wb;
			}
		}
	}
	return n;
}

/* The window-aligned hull of [a, b). */
static inline uint64_t win_lo(uint64_t a) { return align_down(a, 1ull << VM_TABLE_WINDOW_SHIFT); }
static inline uint64_t win_hi(uint64_t b) { return align_up(b, 1ull << VM_TABLE_WINDOW_SHIFT); }

/* Extra windows (not yet charged) that committing [a, b) would bring. Lock held. */
static uint64_t new_windows(struct vm_space *vs, uint64_t a, uint64_t b)
{
	uint64_t lo = win_lo(a), hi = win_hi(b);
	return ((hi - lo) >> VM_TABLE_WINDOW_SHIFT) - committed_windows(vs, lo, hi);
}

/* Recomputes the guard flags from the runs (after a split): LOW_GUARD if the first page is
 * a guard, HIGH_GUARD if the last one is and the region has more than one page (a region
 * left with only a guard page, after its usable pages were unmapped, is a low guard). */
static void refresh_guard_flags(struct vm_region *r)
{
	uint64_t npages = vmr_pages(r);
	const struct vm_run *last = &r->runs.v[r->runs.n - 1];

	r->flags &= ~(unsigned)(VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD);
	if (r->runs.v[0].state == VM_GUARD)
		r->flags |= VMM_FLAG_LOW_GUARD;
	if (npages > 1 && last->state == VM_GUARD && npages - last->start == 1)
		r->flags |= VMM_FLAG_HIGH_GUARD;
}

/* ------------------------------------------------------------------ argument checks */

static bool range_args_ok(const struct vm_space *vs, uint64_t addr, uint64_t size)
{
	return is_aligned(addr, PAGE) && is_aligned(size, PAGE) && size != 0 && addr + size > addr && addr >= vs->lo &&
	       addr + size <= vs->hi;
}

/* The region holding all of [addr, addr + size): rcNotFound / rcInvalidArgument. Lock held. */
static Retcode find_range(struct vm_space *vs, uint64_t addr, uint64_t size, struct vm_region **out)
{
	struct vm_region *r = region_of(vm_tree_find(&vs->tree, addr));

	if (!r)
		return rcNotFound;
	if (size > vmr_end(r) - addr)
		return rcInvalidArgument;
	*out = r;
	return rcOk;
}

/* ------------------------------------------------------------------ allocate */

static bool find_place(struct vm_space *vs, uint64_t total, uint64_t *base)
{
	uint64_t from = vs->mmap_base;

	if (vs->aslr && vs->hi - vs->lo > total) {
		uint64_t x = vs->rng;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		vs->rng = x;
		uint64_t slots = (vs->hi - vs->lo - total) / PAGE + 1;
		from = vs->lo + (x % slots) * PAGE;
	}
	return vm_tree_find_gap(&vs->tree, vs->lo, vs->hi, from, total, PAGE, base) ||
	       vm_tree_find_gap(&vs->tree, vs->lo, vs->hi, vs->lo, total, PAGE, base);
}

/* A region object, its bookkeeping charged to the space's account. */
static struct vm_region *region_alloc(struct vm_space *vs)
{
	struct vm_region *r = lookaside_alloc_charged(&region_cache, vs->acct);
	if (r)
		memset(r, 0, sizeof(*r)); /* (no run storage yet: region_free may take it back as is) */
	return r;
}

static void region_free(struct vm_space *vs, struct vm_region *r)
{
	if (!r)
		return;
	vm_runs_destroy(&r->runs, vs->acct);
	lookaside_free_charged(&region_cache, vs->acct, r);
}

/* One more region in the space: its limit and the account's. Lock held. */
static Retcode region_count_add(struct vm_space *vs)
{
	if (vs->user && vs->nregions >= VM_MAX_REGIONS)
		return rcOutOfMemory;
	Retcode rc = account_charge(vs->acct, ACCT_REGIONS, 1);
	if (rc == rcOk)
		vs->nregions++;
	return rc;
}

static void region_count_sub(struct vm_space *vs)
{
	vs->nregions--;
	account_uncharge(vs->acct, ACCT_REGIONS, 1);
}

/* Locked pages (resident until decommitted) in the space: counted, and charged to the
 * account's locked-pages limit; the report's total. Lock held. */
static Retcode locked_add(struct vm_space *vs, uint64_t pages)
{
	if (!pages)
		return rcOk;
	Retcode rc = account_charge(vs->acct, ACCT_LOCKED, pages);
	if (rc == rcOk) {
		vs->locked += pages;
		charge_locked_add((int64_t)pages);
	}
	return rc;
}

static void locked_sub(struct vm_space *vs, uint64_t pages)
{
	if (!pages)
		return;
	vs->locked -= pages;
	charge_locked_add(-(int64_t)pages);
	account_uncharge(vs->acct, ACCT_LOCKED, pages);
}

Retcode vm_allocate_named(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags,
			  enum vm_region_kind kind, const char *name, uint64_t *out)
{
	unsigned prot = flags & VMM_FLAG_RWX_MASK;

	if ((flags & ~(unsigned)VMM_FLAG_ALLOCATE_MASK) || !(flags & VMM_FLAG_RESERVE) || !prot_valid(prot) ||
	    !cache_valid(flags) || ((flags & VMM_FLAG_LOCKED) && !(flags & VMM_FLAG_COMMIT)) ||
	    ((flags & VMM_FLAG_GROW_DOWN) && (flags & (VMM_FLAG_COMMIT | VMM_FLAG_LOCKED))) ||
	    (kind != VMR_ANON && (flags & (VMM_FLAG_COMMIT | VMM_FLAG_GROW_DOWN))))
		return rcInvalidArgument;
	if (size == 0 || !is_aligned(size, PAGE) || !is_aligned(addr, PAGE))
		return rcInvalidArgument;
	uint64_t lowg = (flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0, highg = (flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0;
	uint64_t total = size + lowg + highg, base;
	if (total < size || total > vs->hi - vs->lo)
		return rcInvalidArgument;
	/* A fixed reservation [addr - lowg, +total) must lie in [lo, hi) (careful: no wrap). */
	if (addr && (addr < lowg || addr - lowg < vs->lo || addr - lowg >= vs->hi || total > vs->hi - (addr - lowg)))
		return rcInvalidArgument;

	uint64_t pages = size / PAGE, committed = 0, windows = 0, io_charge = 0;
	if (flags & VMM_FLAG_COMMIT)
		committed = pages;
	else if (flags & VMM_FLAG_GROW_DOWN)
		committed = 1;
	uint64_t charge = committed * frame_commit_cost(flags);
	/* An I/O region is mapped whole: its tables are charged like a committed region's (per
	 * 2 MiB window, for as long as it lives), or a task could make the kernel allocate
	 * page tables nobody paid for. */
	if (kind == VMR_IO) /* (the windows a range of `size` bytes can touch, wherever it lands) */
		io_charge = (win_hi(size) / (1ull << VM_TABLE_WINDOW_SHIFT) + 1) * VM_TABLE_CHARGE_PER_WINDOW;

	/* A locked region's pages are charged, then their frames zeroed, before the lock: a
	 * chunk at a time, preemptibly (never a frame taken that is not charged). */
	struct list_head frames = LIST_HEAD_INIT(frames);
	uint64_t early = 0;
	if (flags & VMM_FLAG_LOCKED) {
		if (addr) { /* (a taken range is rcAlreadyExists whatever the charge: looked at first) */
			bool irq = spin_lock_irqsave(&vs->lock);
			bool taken = vm_tree_overlaps(&vs->tree, addr - lowg, addr - lowg + total);
			spin_unlock_irqrestore(&vs->lock, irq);
			if (taken)
				return rcAlreadyExists;
		}
		if (charge_take(vs->acct, charge) != rcOk)
			return rcOutOfMemory;
		early = charge;
		if (frames_get(&frames, pages, flags) != rcOk) {
			charge_release(vs->acct, early);
			return rcOutOfMemory;
		}
	}
	struct vm_region *r = region_alloc(vs);
	if (!r) {
		frames_put(&frames);
		charge_release(vs->acct, early);
		return rcOutOfMemory;
	}
	bool irq = spin_lock_irqsave(&vs->lock);
	Retcode rc = rcOk;
	if (addr) {
		base = addr - lowg;
		if (vm_tree_overlaps(&vs->tree, base, base + total))
			rc = rcAlreadyExists;
	} else if (!find_place(vs, total, &base)) {
		rc = rcOutOfMemory;
	}
	if (rc == rcOk && charge) {
		/* the committed part: all of the usable range, or a grow-down region's top page */
		uint64_t c_end = base + lowg + size, c_start = (flags & VMM_FLAG_COMMIT) ? base + lowg : c_end - PAGE;
		windows = new_windows(vs, c_start, c_end);
	}
	/* Everything the region costs, taken together or not at all (a locked region's pages
	 * were charged already). */
	uint64_t total_charge = charge + windows * VM_TABLE_CHARGE_PER_WINDOW + io_charge;
	uint64_t lock_pages = (flags & VMM_FLAG_LOCKED) ? pages : 0;
	if (rc == rcOk && (rc = charge_take(vs->acct, total_charge - early)) == rcOk) {
		if ((rc = region_count_add(vs)) != rcOk) {
			charge_release(vs->acct, total_charge - early);
		} else if ((rc = locked_add(vs, lock_pages)) != rcOk) {
			region_count_sub(vs);
			charge_release(vs->acct, total_charge - early);
		}
	}
	if (rc != rcOk) {
		spin_unlock_irqrestore(&vs->lock, irq);
		region_free(vs, r);
		frames_put(&frames);
		charge_release(vs->acct, early);
		return rc;
	}

	memset(r, 0, sizeof(*r));
	r->node.base = base;
	r->node.end = base + total;
	r->flags = flags;
	r->kind = (uint8_t)kind;
	r->max_prot = VMM_FLAG_RWX_MASK;
	r->io_charge = io_charge;
	kstrlcpy(r->name, name ? name : "", sizeof(r->name));
	uint64_t npages = total / PAGE, first = lowg / PAGE;
	vm_runs_init(&r->runs, (flags & VMM_FLAG_COMMIT) ? VM_COMMITTED : VM_RESERVED, (uint8_t)prot);
	r->runs.v[0].locked = (flags & VMM_FLAG_LOCKED) ? 1 : 0;
	if (lowg)
		vm_runs_set(&r->runs, npages, 0, 1, VM_GUARD, 0, 0);
	if (highg)
		vm_runs_set(&r->runs, npages, npages - 1, 1, VM_GUARD, 0, 0);
	if (flags & VMM_FLAG_GROW_DOWN)
		vm_runs_set(&r->runs, npages, first + pages - 1, 1, VM_COMMITTED, (uint8_t)prot, 0);
	vm_tree_insert(&vs->tree, &r->node);

	if (flags & VMM_FLAG_LOCKED)
		rc = populate(vs, r, first, pages, &frames);
	else if (flags & VMM_FLAG_GROW_DOWN)
		rc = populate(vs, r, first + pages - 1, 1, &frames);
	if (rc != rcOk) {
		vm_tree_remove(&vs->tree, &r->node);
		locked_sub(vs, lock_pages);
		region_count_sub(vs);
		charge_release(vs->acct, total_charge);
		spin_unlock_irqrestore(&vs->lock, irq);
		region_free(vs, r);
		frames_put(&frames);
		free_dead(vs);
		return rc;
	}
	vs->committed += committed;
	vs->commit_extra += charge - committed;
	vs->table_windows += windows;
	spin_unlock_irqrestore(&vs->lock, irq);
	frames_put(&frames); /* (none left, unless a page was resident already) */
	*out = base + lowg;
	return rcOk;
}

Retcode vm_allocate(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags, uint64_t *out)
{
	return vm_allocate_named(vs, addr, size, flags, VMR_ANON, NULL, out);
}

/* ------------------------------------------------------------------ commit / decommit / protect */

/* [addr, addr + size) inside one anonymous region, with no guard page: what commit, decommit
 * and protect act on. Its region and first page. */
static Retcode find_anon_range(struct vm_space *vs, uint64_t addr, uint64_t size, struct vm_region **out,
			       uint64_t *first)
{
	Retcode rc = find_range(vs, addr, size, out);

	if (rc != rcOk)
		return rc;
	*first = (addr - vmr_base(*out)) / PAGE;
	if ((*out)->kind != VMR_ANON || runs_count(*out, *first, size / PAGE, VM_GUARD, false))
		return rcInvalidArgument;
	return rcOk;
}

/*
 * A locked commit (or pin) makes pages resident in three steps, so that the frames are zeroed
 * with no lock held: under the lock everything is checked and charged and the region is
 * marked busy (any other change to it is rcBusy meanwhile; faults go on); then the frames
 * for the pages that are not resident are allocated, preemptibly; then under the lock again
 * they are mapped. busy_end drops the mark.
 */
static void busy_end(struct vm_region *r)
{
	KASSERT(r->busy);
	r->busy--;
}

Retcode vm_commit(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned flags)
{
	struct vm_region *r;
	struct list_head frames = LIST_HEAD_INIT(frames);
	bool lock_pages = flags & VMM_FLAG_LOCKED;

	if ((flags & ~(unsigned)VMM_FLAG_LOCKED) || !range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	bool irq = spin_lock_irqsave(&vs->lock);
	uint64_t first = 0, count = size / PAGE, reserved = 0, charge = 0, was_locked = 0, windows = 0;
	Retcode rc = find_anon_range(vs, addr, size, &r, &first);
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc == rcOk) {
		reserved = runs_count(r, first, count, VM_RESERVED, false);
		charge = reserved * frame_commit_cost(r->flags);
		was_locked = runs_count(r, first, count, KEEP, true);
		rc = charge_take(vs->acct, charge);
	}
	uint64_t more_locked = lock_pages ? count - was_locked : 0;
	if (rc == rcOk && (rc = locked_add(vs, more_locked)) != rcOk)
		charge_release(vs->acct, charge);
	if (rc == rcOk && lock_pages) {
		/* The pages are charged (frames for the committed ones were already): zero the
		 * frames with no lock held, the region busy meanwhile. */
		uint64_t holes = holes_in(vs, addr, count);
		unsigned cache = r->flags;
		r->busy++;
		spin_unlock_irqrestore(&vs->lock, irq);
		Retcode frc = frames_get(&frames, holes, cache);
		irq = spin_lock_irqsave(&vs->lock);
		busy_end(r); /* (busy: r is still the region, with the same runs) */
		if (frc != rcOk) {
			locked_sub(vs, more_locked);
			charge_release(vs->acct, charge);
			rc = frc;
		}
	}
	/* The tables' charge with the runs' change, under the lock all along: another commit
	 * in the same window counts it once. Room for the runs only once the charge is taken:
	 * a refused commit keeps nothing. */
	if (rc == rcOk) {
		windows = new_windows(vs, addr, addr + size);
		if ((rc = charge_take(vs->acct, windows * VM_TABLE_CHARGE_PER_WINDOW)) == rcOk &&
		    (rc = vm_runs_reserve(&r->runs, 2, vs->acct)) != rcOk)
			charge_release(vs->acct, windows * VM_TABLE_CHARGE_PER_WINDOW);
		if (rc == rcOk && lock_pages && (rc = populate(vs, r, first, count, &frames)) != rcOk)
			charge_release(vs->acct, windows * VM_TABLE_CHARGE_PER_WINDOW);
		if (rc != rcOk) {
			locked_sub(vs, more_locked);
			charge_release(vs->acct, charge);
		}
	}
	if (rc == rcOk) {
		runs_apply(r, first, count, VM_RESERVED, VM_COMMITTED, KEEP, lock_pages ? 1 : 0);
		if (lock_pages)
			runs_apply(r, first, count, KEEP, KEEP, KEEP, 1);
		vs->committed += reserved;
		vs->commit_extra += charge - reserved;
		vs->table_windows += windows;
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	frames_put(&frames);
	free_dead(vs);
	return rc;
}

static int find_pinned(const struct pt_leaf *leaf, void *arg)
{
	(void)arg;
	for (uint64_t off = 0; off < leaf->size; off += PAGE)
		if (page_pinned(pa_to_page(leaf->pa + off)))
			return 1;
	return 0;
}

Retcode vm_decommit(struct vm_space *vs, uint64_t addr, uint64_t size)
{
	static const struct pt_walk_ops pinned = { .leaf = find_pinned };
	struct vm_region *r;

	if (!range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	bool irq = spin_lock_irqsave(&vs->lock);
	uint64_t first = 0, count = size / PAGE;
	Retcode rc = find_anon_range(vs, addr, size, &r, &first);
	if (rc == rcOk && (r->busy || pt_walk_range(&vs->pt, addr, size, &pinned, NULL)))
		rc = rcBusy;
	if (rc == rcOk)
		rc = vm_runs_reserve(&r->runs, 2, vs->acct);
	if (rc == rcOk) {
		uint64_t committed = runs_count(r, first, count, VM_COMMITTED, false);
		uint64_t extra = committed * (frame_commit_cost(r->flags) - 1);
		uint64_t locked = runs_count(r, first, count, KEEP, true);
		uint64_t before = committed_windows(vs, win_lo(addr), win_hi(addr + size));
		unmap_pages(vs, r, addr, count);
		runs_apply(r, first, count, VM_COMMITTED, VM_RESERVED, KEEP, 0);
		uint64_t gone = before - committed_windows(vs, win_lo(addr), win_hi(addr + size));
		vs->committed -= committed;
		vs->commit_extra -= extra;
		locked_sub(vs, locked);
		vs->table_windows -= gone;
		charge_release(vs->acct, committed + extra + gone * VM_TABLE_CHARGE_PER_WINDOW);
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	free_dead(vs);
	return rc;
}

Retcode vm_protect(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned prot)
{
	struct vm_region *r;

	if (!prot_valid(prot) || !range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	bool irq = spin_lock_irqsave(&vs->lock);
	uint64_t first = 0, count = size / PAGE;
	Retcode rc = find_anon_range(vs, addr, size, &r, &first);
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc == rcOk && (prot & ~(unsigned)r->max_prot))
		rc = rcAccessDenied; /* an MDL mapping: no more than the MDL allows */
	if (rc == rcOk)
		rc = vm_runs_reserve(&r->runs, 2, vs->acct);
	if (rc == rcOk) {
		runs_apply(r, first, count, KEEP, KEEP, (uint8_t)prot, KEEP);
		if (r->resident) /* (with nothing mapped, the runs are all there is) */
			rc = pt_protect(&vs->pt, addr, size, vm_mmu_flags(vs, prot, r->flags));
		KASSERT(rc == rcOk); /* 4 KiB pages only: nothing to split */
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	return rc;
}

/* ------------------------------------------------------------------ unmap */

struct count_ctx {
	uint64_t pages;
};

static int count_leaf(const struct pt_leaf *leaf, void *arg)
{
	((struct count_ctx *)arg)->pages += leaf->size / PAGE;
	return 0;
}


/* Unmaps and uncharges pages [first, first + count) of r (its runs stay as they are). */
static void release_pages(struct vm_space *vs, struct vm_region *r, uint64_t first, uint64_t count)
{
	uint64_t committed = r->kind == VMR_ANON ? runs_count(r, first, count, VM_COMMITTED, false) : 0;
	uint64_t extra = committed * (frame_commit_cost(r->flags) - 1);
	uint64_t locked = runs_count(r, first, count, KEEP, true);

	unmap_pages(vs, r, vmr_base(r) + first * PAGE, count);
	vs->committed -= committed;
	vs->commit_extra -= extra;
	locked_sub(vs, locked);
	charge_release(vs->acct, committed + extra);
}

static void remove_region_locked(struct vm_space *vs, struct vm_region *r)
{
	release_pages(vs, r, 0, vmr_pages(r));
	vm_tree_remove(&vs->tree, &r->node);
	region_count_sub(vs);
	charge_release(vs->acct, r->io_charge);
}

/* Whether r has a committed page (it has few runs: a scan is cheap). */
static bool region_has_committed(const struct vm_region *r)
{
	for (uint32_t i = 0; i < r->runs.n; i++)
		if (r->runs.v[i].state == VM_COMMITTED)
			return true;
	return false;
}

/* Windows that no longer hold committed pages: their table charge goes back. */
static void release_windows(struct vm_space *vs, uint64_t gone)
{
	vs->table_windows -= gone;
	charge_release(vs->acct, gone * VM_TABLE_CHARGE_PER_WINDOW);
}

Retcode vm_unmap(struct vm_space *vs, uint64_t addr, uint64_t size)
{
	struct vm_region *r, *tail_region = NULL;

	if (!range_args_ok(vs, addr, size))
		return rcInvalidArgument;
	struct vm_region *spare = NULL;
	bool irq = spin_lock_irqsave(&vs->lock);
	Retcode rc = find_range(vs, addr, size, &r);
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc != rcOk)
		goto out;
	uint64_t base = vmr_base(r), end = vmr_end(r), a = addr, b = addr + size;
	uint64_t ulo = base + ((r->flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0);
	uint64_t uhi = end - ((r->flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0);
	/* Only a region with committed pages can take a window's last committed page away. */
	bool had_commit = region_has_committed(r);
	uint64_t windows_before = had_commit ? committed_windows(vs, win_lo(base), win_hi(end)) : 0;
	bool whole = (a == base && b == end) || (a == ulo && b == uhi);
	if (r->kind == VMR_IO && !whole) {
		rc = rcInvalidArgument; /* a device mapping goes whole (its table charge is whole) */
		goto out;
	}
	if (whole) {
		remove_region_locked(vs, r);
		if (had_commit)
			release_windows(vs, windows_before - committed_windows(vs, win_lo(base), win_hi(end)));
		spin_unlock_irqrestore(&vs->lock, irq);
		region_free(vs, r);
		region_free(vs, spare);
		free_dead(vs);
		return rcOk;
	}
	uint64_t npages = vmr_pages(r), first = (a - base) / PAGE, count = size / PAGE;
	if (a > base && b < end) {
		/* Middle: [base, a) stays in r, [b, end) moves to a new region (the pool may be
		 * used under a space lock). */
		if (!(spare = region_alloc(vs))) {
			rc = rcOutOfMemory;
			goto out;
		}
		if ((rc = region_count_add(vs)) != rcOk)
			goto out;
		rc = vm_runs_prepare_split(&r->runs, (b - base) / PAGE, &spare->runs, vs->acct);
		if (rc != rcOk) {
			region_count_sub(vs);
			goto out;
		}
		release_pages(vs, r, first, count);
		tail_region = spare;
		spare = NULL;
		vm_runs_split(&r->runs, npages, (b - base) / PAGE, &tail_region->runs);
		tail_region->node.base = b;
		tail_region->node.end = end;
		tail_region->flags = r->flags;
		tail_region->kind = r->kind;
		tail_region->max_prot = r->max_prot;
		tail_region->io_pa = r->io_pa ? r->io_pa + (b - base) : 0;
		memcpy(tail_region->name, r->name, sizeof(r->name));
	} else {
		release_pages(vs, r, first, count);
	}
	/* Cut r down to what remains on its side, and re-key it in the tree. */
	vm_tree_remove(&vs->tree, &r->node);
	if (a == base) {
		vm_runs_drop_head(&r->runs, count);
		if (r->io_pa)
			r->io_pa += size;
		r->node.base = b;
	} else {
		/* r keeps pages [0, at); anything after moved to tail_region or was unmapped. */
		uint64_t at = (a - base) / PAGE;
		uint32_t i = vm_runs_find(&r->runs, at);
		r->runs.n = r->runs.v[i].start == at ? i : i + 1;
		r->node.end = a;
	}
	refresh_guard_flags(r);
	vm_tree_insert(&vs->tree, &r->node);
	if (tail_region) {
		/* The tail's mapped pages were counted in r. */
		struct count_ctx c = { 0 };
		static const struct pt_walk_ops counter = { .leaf = count_leaf };
		pt_walk_range(&vs->pt, b, end - b, &counter, &c);
		tail_region->resident = c.pages;
		r->resident -= c.pages;
		refresh_guard_flags(tail_region);
		vm_tree_insert(&vs->tree, &tail_region->node);
	}
	if (had_commit)
		release_windows(vs, windows_before - committed_windows(vs, win_lo(base), win_hi(end)));
out:
	spin_unlock_irqrestore(&vs->lock, irq);
	region_free(vs, spare);
	free_dead(vs);
	return rc;
}

void vm_space_destroy(struct vm_space *vs)
{
	struct vm_region *r;

	bool irq = spin_lock_irqsave(&vs->lock);
	while ((r = vm_first_region(vs)) != NULL) {
		uint64_t lo = win_lo(vmr_base(r)), hi = win_hi(vmr_end(r)), before = committed_windows(vs, lo, hi);
		remove_region_locked(vs, r);
		release_windows(vs, before - committed_windows(vs, lo, hi));
		spin_unlock_irqrestore(&vs->lock, irq);
		region_free(vs, r);
		free_dead(vs);
		irq = spin_lock_irqsave(&vs->lock);
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	KASSERT(vs->committed == 0 && vs->commit_extra == 0 && vs->resident == 0 && vs->locked == 0 &&
		vs->table_windows == 0);
	if (vs->own_root) {
		pt_root_destroy(&vs->pt);
		charge_release(vs->acct, 1);
		vs->own_root = false;
		__atomic_sub_fetch(&roots, 1, __ATOMIC_RELAXED);
	}
	if (vs->acct)
		account_put(vs->acct);
	vs->acct = NULL;
}

/* ------------------------------------------------------------------ query */

struct residency_scan {
	bool resident; /* residency of the first page */
	uint64_t stop; /* where it changes */
};

static int scan_leaf(const struct pt_leaf *leaf, void *arg)
{
	struct residency_scan *s = arg;
	if (!s->resident) {
		s->stop = leaf->va;
		return 1;
	}
	return 0;
}

static int scan_hole(uint64_t start, uint64_t end, void *arg)
{
	struct residency_scan *s = arg;
	(void)end;
	if (s->resident) {
		s->stop = start;
		return 1;
	}
	return 0;
}

Retcode vm_query(struct vm_space *vs, uint64_t addr, struct vm_info *out)
{
	static const struct pt_walk_ops scan = { .leaf = scan_leaf, .hole = scan_hole };

	addr = align_down(addr, PAGE);
	if (addr < vs->lo || addr >= vs->hi)
		return rcInvalidArgument;
	memset(out, 0, sizeof(*out));
	bool irq = spin_lock_irqsave(&vs->lock);
	struct vm_region *r = region_of(vm_tree_find(&vs->tree, addr));
	if (!r) {
		struct vm_node *prev = vm_tree_floor(&vs->tree, addr), *next = vm_tree_ceil(&vs->tree, addr);
		uint64_t lo = prev ? prev->end : vs->lo, hi = next ? next->base : vs->hi;
		out->region_base = lo;
		out->region_size = hi - lo;
		out->state = VMM_STATE_FREE;
		out->run_size = hi - addr;
		spin_unlock_irqrestore(&vs->lock, irq);
		return rcOk;
	}
	uint64_t page = (addr - vmr_base(r)) / PAGE;
	uint32_t i = vm_runs_find(&r->runs, page);
	const struct vm_run *run = &r->runs.v[i];
	uint64_t run_end = vmr_base(r) + vm_runs_end(&r->runs, i, vmr_pages(r)) * PAGE;
	struct residency_scan s = { .resident = pt_translate(&vs->pt, addr, NULL), .stop = run_end };
	pt_walk_range(&vs->pt, addr, run_end - addr, &scan, &s);

	out->region_base = vmr_base(r);
	out->region_size = vmr_end(r) - vmr_base(r);
	out->state = run->state == VM_COMMITTED ? VMM_STATE_COMMITTED
		     : run->state == VM_GUARD   ? VMM_STATE_GUARD
						: VMM_STATE_RESERVED;
	out->resident = s.resident;
	out->run_size = s.stop - addr;
	out->flags = (r->flags & (VMM_FLAG_CACHE_MASK | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD | VMM_FLAG_GROW_DOWN)) |
		     VMM_FLAG_RESERVE | (run->state == VM_GUARD ? 0 : run->prot) |
		     (run->state == VM_COMMITTED ? VMM_FLAG_COMMIT : 0) | (run->locked ? VMM_FLAG_LOCKED : 0);
	spin_unlock_irqrestore(&vs->lock, irq);
	return rcOk;
}

/* ------------------------------------------------------------------ faults */

/* Maps a fresh frame at page p of r (committed, not resident). Charged: cannot fail. */
static void fault_in(struct vm_space *vs, struct vm_region *r, uint64_t p, unsigned prot)
{
	struct page *frame = frame_alloc(r->flags, PAGE_ANON);

	if (!frame)
		panic("vm: no frame for a committed page (%llu pages charged): the commit accounting is broken",
		      (unsigned long long)charge_total());
	Retcode rc = pt_map(&vs->pt, vmr_base(r) + p * PAGE, page_to_pa(frame), PAGE, vm_mmu_flags(vs, prot, r->flags),
			    PT_LEVEL_PT);
	if (rc != rcOk)
		panic("vm: no page table for a committed page (error %d): the commit reserve is exhausted", rc);
	r->resident++;
	vs->resident++;
}

/* Up to vs->faultaround more pages of run i within faultaround pages of p: those after it
 * first, then those before it (a bounded window: touching a run from the top stays linear). */
static void fault_around(struct vm_space *vs, struct vm_region *r, uint32_t i, uint64_t p)
{
	unsigned left = vs->faultaround;
	uint64_t lo = MAX(r->runs.v[i].start, p > left ? p - left : 0);
	uint64_t hi = MIN(vm_runs_end(&r->runs, i, vmr_pages(r)), p + 1 + left);

	for (uint64_t q = p + 1; left && q < hi; q++) {
		if (!pt_translate(&vs->pt, vmr_base(r) + q * PAGE, NULL)) {
			fault_in(vs, r, q, r->runs.v[i].prot);
			left--;
		}
	}
	for (uint64_t q = p; left && q-- > lo;) {
		if (!pt_translate(&vs->pt, vmr_base(r) + q * PAGE, NULL)) {
			fault_in(vs, r, q, r->runs.v[i].prot);
			left--;
		}
	}
}

static bool access_allowed(unsigned prot, enum vm_access access)
{
	if (access == VM_ACCESS_WRITE)
		return prot & VMM_FLAG_WRITE;
	if (access == VM_ACCESS_EXEC)
		return prot & VMM_FLAG_EXECUTE;
	return prot & VMM_FLAG_READ;
}

enum vm_fault_result vm_fault(struct vm_space *vs, uint64_t addr, enum vm_access access)
{
	enum vm_fault_result res = VM_FAULT_ACCESS;

	if (addr < vs->lo || addr >= vs->hi)
		return VM_FAULT_ACCESS;
	bool irq = spin_lock_irqsave(&vs->lock);
	struct vm_region *r = region_of(vm_tree_find(&vs->tree, addr));
	if (!r || r->kind != VMR_ANON)
		goto out;
	uint64_t p = (addr - vmr_base(r)) / PAGE, va = align_down(addr, PAGE);
	uint32_t i = vm_runs_find(&r->runs, p);
	struct vm_run run = r->runs.v[i]; /* a copy: growing the run array may move it */

	if (run.state == VM_GUARD) {
		res = VM_FAULT_GUARD;
	} else if (run.state == VM_RESERVED) {
		/* Grow-down: reserved pages up to the committed part above become committed. */
		if (!(r->flags & VMM_FLAG_GROW_DOWN) || i + 1 >= r->runs.n || r->runs.v[i + 1].state != VM_COMMITTED ||
		    !access_allowed(run.prot, access))
			goto out;
		uint64_t top = r->runs.v[i + 1].start, n = top - p, extra = n * (frame_commit_cost(r->flags) - 1);
		uint64_t windows = new_windows(vs, vmr_base(r) + p * PAGE, vmr_base(r) + top * PAGE);
		if (vm_runs_reserve(&r->runs, 2, vs->acct) != rcOk ||
		    charge_take(vs->acct, n + extra + windows * VM_TABLE_CHARGE_PER_WINDOW) != rcOk) {
			res = VM_FAULT_STACK_OVERFLOW;
			goto out;
		}
		runs_apply(r, p, n, VM_RESERVED, VM_COMMITTED, KEEP, 0);
		vs->committed += n;
		vs->commit_extra += extra;
		vs->table_windows += windows;
		fault_in(vs, r, p, run.prot);
		res = VM_FAULT_GREW;
	} else if (access_allowed(run.prot, access)) {
		if (!pt_translate(&vs->pt, va, NULL)) {
			fault_in(vs, r, p, run.prot);
			fault_around(vs, r, i, p);
		}
		res = VM_FAULT_RESOLVED;
	}
out:
	spin_unlock_irqrestore(&vs->lock, irq);
	return res;
}

/* ------------------------------------------------------------------ access checks */

static bool allows(unsigned prot, unsigned access) { return (prot & access) == access; }

bool vm_check_access(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access)
{
	if (size == 0)
		return true;
	uint64_t end = align_up(addr + size, PAGE), a = align_down(addr, PAGE);
	if (addr + size < addr || a < vs->lo || end > vs->hi || end < a)
		return false;
	bool ok = true;
	bool irq = spin_lock_irqsave(&vs->lock);
	while (ok && a < end) {
		struct vm_region *r = region_of(vm_tree_find(&vs->tree, a));
		if (!r || r->kind != VMR_ANON) {
			ok = false;
			break;
		}
		uint64_t npages = vmr_pages(r);
		uint32_t i = vm_runs_find(&r->runs, (a - vmr_base(r)) / PAGE);
		const struct vm_run *run = &r->runs.v[i];
		bool growable = run->state == VM_RESERVED && (r->flags & VMM_FLAG_GROW_DOWN) && i + 1 < r->runs.n &&
				r->runs.v[i + 1].state == VM_COMMITTED;
		ok = (run->state == VM_COMMITTED || growable) && allows(run->prot, access);
		a = vmr_base(r) + vm_runs_end(&r->runs, i, npages) * PAGE;
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	return ok;
}

/* Whether page `a` (in the space) can be read: committed with READ, or a reserved page of a
 * grow-down region that an access would grow into (it reads as zeros). Lock held. */
static bool page_readable_locked(struct vm_space *vs, uint64_t a)
{
	struct vm_region *r = region_of(vm_tree_find(&vs->tree, a));
	if (!r || r->kind != VMR_ANON)
		return false;
	uint32_t i = vm_runs_find(&r->runs, (a - vmr_base(r)) / PAGE);
	const struct vm_run *run = &r->runs.v[i];
	bool growable = run->state == VM_RESERVED && (r->flags & VMM_FLAG_GROW_DOWN) && i + 1 < r->runs.n &&
			r->runs.v[i + 1].state == VM_COMMITTED;
	return (run->state == VM_COMMITTED || growable) && allows(run->prot, VMM_FLAG_READ);
}

Retcode vm_read(struct vm_space *vs, uint64_t addr, void *buf, uint64_t size)
{
	if (!vm_check_access(vs, addr, size, VMM_FLAG_READ))
		return rcFault;
	uint8_t *out = buf;
	uint64_t pages = 0;
	for (uint64_t done = 0; done < size;) {
		uint64_t a = addr + done, n = MIN(size - done, PAGE - (a & PAGE_MASK));
		struct pt_mapping m;
		bool irq = spin_lock_irqsave(&vs->lock);
		/* Page by page under the lock: the frame cannot go while it is read, and a page
		 * another thread made unreadable since the check ends the copy. */
		bool ok = page_readable_locked(vs, align_down(a, PAGE));
		if (ok && pt_translate(&vs->pt, a, &m))
			memcpy(out + done, phys_to_virt(m.pa), n);
		else if (ok)
			memset(out + done, 0, n); /* committed, never touched: zeros, and it stays so */
		spin_unlock_irqrestore(&vs->lock, irq);
		if (!ok)
			return rcFault;
		done += n;
		if (++pages % VM_CHUNK_PAGES == 0 && done < size)
			vm_preempt_point();
	}
	return rcOk;
}

/* ------------------------------------------------------------------ MDLs */

/* Maps pages [first, first + npages) of RAM MDL m at va in region r: each mapped frame
 * takes a reference. All or nothing (rcOutOfMemory for a table). Lock held. */
static Retcode map_mdl_frames(struct vm_space *vs, struct vm_region *r, const struct mdl *m, uint64_t first,
			      uint64_t npages, uint64_t va, unsigned mmu)
{
	uint64_t pos = 0; /* page of the MDL at the start of run i */
	Retcode rc = rcOk;

	for (uint32_t i = 0; i < m->nruns && rc == rcOk; pos += m->runs[i].count, i++) {
		const struct mdl_run *run = &m->runs[i];
		uint64_t lo = MAX(pos, first), hi = MIN(pos + run->count, first + npages);
		if (lo >= hi || run->pfn == MDL_FICTITIOUS)
			continue;
		uint64_t pa = (run->pfn + (lo - pos)) << PAGE_SHIFT, at = va + (lo - first) * PAGE;
		rc = pt_map(&vs->pt, at, pa, (hi - lo) * PAGE, mmu, PT_LEVEL_PT);
		if (rc != rcOk)
			break;
		for (uint64_t k = 0; k < hi - lo; k++)
			page_ref(pa_to_page(pa + k * PAGE));
		r->resident += hi - lo;
		vs->resident += hi - lo;
	}
	if (rc != rcOk)
		unmap_pages(vs, r, va, npages); /* drops exactly the references taken above */
	return rc;
}

Retcode vm_map_mdl(struct vm_space *vs, const struct mdl *m, uint64_t first, uint64_t npages, uint64_t addr,
		   unsigned flags, unsigned max_prot, const char *name, uint64_t *out)
{
	unsigned prot = flags & VMM_FLAG_RWX_MASK, cache = vm_cache_mode(flags);
	unsigned cap = m->max_prot & max_prot & VMM_FLAG_RWX_MASK;
	uint64_t va;

	if (m->kind == MDL_DESCRIBED || (flags & ~(unsigned)(VMM_FLAG_RWX_MASK | VMM_FLAG_CACHE_MASK)) ||
	    !prot_valid(prot) || !cache_valid(flags) || npages == 0 || first > m->pages || npages > m->pages - first)
		return rcInvalidArgument;
	if (prot & ~cap)
		return rcAccessDenied;
	flags = VMM_FLAG_RESERVE | prot | (cache ? cache : m->cache);
	if (m->kind == MDL_IO) {
		Retcode rc = vm_allocate_named(vs, addr, npages * PAGE, flags, VMR_IO, name, &va);
		if (rc != rcOk)
			return rc;
		rc = vm_map_io(vs, va, (m->runs[0].pfn + first) << PAGE_SHIFT, npages);
		if (rc != rcOk) {
			vm_unmap(vs, va, npages * PAGE);
			return rc;
		}
		*out = va;
		return rcOk;
	}
	Retcode rc = vm_allocate_named(vs, addr, npages * PAGE, flags | VMM_FLAG_COMMIT, VMR_ANON, name, &va);
	if (rc != rcOk)
		return rc;
	bool irq = spin_lock_irqsave(&vs->lock);
	struct vm_region *r = region_of(vm_tree_find(&vs->tree, va));
	/* (the region was made just now; another thread of the task could have unmapped it) */
	if (!r || vmr_base(r) != va || vmr_pages(r) != npages || r->resident)
		rc = rcBusy;
	else {
		r->max_prot = (uint8_t)cap;
		rc = map_mdl_frames(vs, r, m, first, npages, va, vm_mmu_flags(vs, prot, r->flags));
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	if (rc != rcOk) {
		free_dead(vs);
		if (rc != rcBusy)
			vm_unmap(vs, va, npages * PAGE);
		return rc;
	}
	*out = va;
	return rcOk;
}

struct pin_ctx {
	struct mdl *m;
	Retcode rc;
};

static int collect_frames(const struct pt_leaf *leaf, void *arg)
{
	struct pin_ctx *c = arg;
	c->rc = mdl_append_run(c->m, leaf->pa >> PAGE_SHIFT, leaf->size / PAGE);
	return c->rc != rcOk;
}

Retcode vm_pin_range(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access, unsigned cache,
		     struct mdl *m)
{
	static const struct pt_walk_ops frames = { .leaf = collect_frames };
	struct vm_region *r;

	if (!range_args_ok(vs, addr, size) || !access || (access & ~(unsigned)VMM_FLAG_RWX_MASK))
		return rcInvalidArgument;
	bool irq = spin_lock_irqsave(&vs->lock);
	Retcode rc = find_range(vs, addr, size, &r);
	uint64_t first = 0, count = size / PAGE;
	if (rc == rcOk) {
		first = (addr - vmr_base(r)) / PAGE;
		if (r->kind != VMR_ANON || runs_count(r, first, count, VM_COMMITTED, false) != count ||
		    (cache != MDL_CACHE_ANY && vm_cache_mode(cache) != vm_cache_mode(r->flags)))
			rc = rcInvalidArgument;
		else if (!allows(r->max_prot, access))
			rc = rcAccessDenied;
	}
	for (uint64_t pos = first; rc == rcOk && pos < first + count;) {
		uint32_t i = vm_runs_find(&r->runs, pos);
		if (!allows(r->runs.v[i].prot, access))
			rc = rcAccessDenied;
		pos = vm_runs_end(&r->runs, i, vmr_pages(r));
	}
	if (rc == rcOk && r->busy)
		rc = rcBusy;
	if (rc != rcOk) {
		spin_unlock_irqrestore(&vs->lock, irq);
		return rc;
	}
	/* Everything that can fail before a page is made resident: room for a run per page
	 * (frames may come in any order), and the frames, zeroed with no lock held (busy). */
	struct list_head pool = LIST_HEAD_INIT(pool);
	uint64_t holes = holes_in(vs, addr, count);
	unsigned cache_flags = r->flags;
	r->busy++;
	spin_unlock_irqrestore(&vs->lock, irq);
	rc = mdl_reserve_runs(m, count);
	if (rc == rcOk)
		rc = frames_get(&pool, holes, cache_flags);
	irq = spin_lock_irqsave(&vs->lock);
	if (rc == rcOk)
		rc = populate(vs, r, first, count, &pool);
	busy_end(r);
	struct pin_ctx c = { .m = m, .rc = rcOk };
	if (rc == rcOk) {
		pt_walk_range(&vs->pt, addr, size, &frames, &c);
		KASSERT(c.rc == rcOk); /* (room was made for every page) */
		/* Every frame listed: only now take the references and pins. */
		m->cache = (uint16_t)vm_cache_mode(r->flags);
		mdl_hold_frames(m);
	} else {
		m->nruns = 0;
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	frames_put(&pool);
	free_dead(vs);
	return rc;
}

struct usage_ctx {
	uint64_t *counters, max, n;
	bool first_used;
};

static int count_stretch(uint64_t start, uint64_t end, bool present, void *arg)
{
	struct usage_ctx *u = arg;
	if (u->n == 0)
		u->first_used = present;
	u->counters[u->n++] = (end - start) / PAGE;
	return u->n == u->max; /* full: stop */
}

Retcode vm_usage_map(struct vm_space *vs, uint64_t addr, uint64_t start, uint64_t *counters, uint64_t max,
		     bool *first_used, uint64_t *n)
{
	if (!is_aligned(addr, PAGE) || addr < vs->lo || addr >= vs->hi || max == 0)
		return rcInvalidArgument;
	bool irq = spin_lock_irqsave(&vs->lock);
	struct vm_region *r = region_of(vm_tree_find(&vs->tree, addr));
	Retcode rc = rcOk;
	uint64_t ubase = 0, pages = 0;
	if (!r) {
		rc = rcNotFound;
	} else {
		ubase = vmr_base(r) + ((r->flags & VMM_FLAG_LOW_GUARD) ? PAGE : 0);
		pages = (vmr_end(r) - ((r->flags & VMM_FLAG_HIGH_GUARD) ? PAGE : 0) - ubase) / PAGE;
		if (addr != ubase || ubase >= vmr_end(r) || start > pages)
			rc = rcInvalidArgument; /* (a region left with only a guard page has no usable base) */
	}
	struct usage_ctx u = { .counters = counters, .max = max };
	if (rc == rcOk && start < pages)
		pt_scan_residency(&vs->pt, ubase + start * PAGE, (pages - start) * PAGE, count_stretch, &u);
	spin_unlock_irqrestore(&vs->lock, irq);
	if (rc == rcOk) {
		*first_used = u.first_used;
		*n = u.n;
	}
	return rc;
}

struct region_runs {
	struct mdl *m;
	uint64_t at; /* where the next stretch starts */
	Retcode rc;
};

static int dump_leaf(const struct pt_leaf *leaf, void *arg)
{
	struct region_runs *rr = arg;
	/* (a leaf can start before the range: take its part in it) */
	uint64_t skip = rr->at > leaf->va ? (rr->at - leaf->va) / PAGE : 0;
	rr->rc = mdl_append_run(rr->m, (leaf->pa >> PAGE_SHIFT) + skip, leaf->size / PAGE - skip);
	rr->at = leaf->va + leaf->size;
	return rr->rc != rcOk;
}

static int dump_hole(uint64_t start, uint64_t end, void *arg)
{
	struct region_runs *rr = arg;
	rr->rc = mdl_append_run(rr->m, MDL_FICTITIOUS, (end - start) / PAGE);
	rr->at = end;
	return rr->rc != rcOk;
}

Retcode vm_region_mdl(struct vm_space *vs, uint64_t cursor, uint64_t *base, uint64_t *size, unsigned *flags,
		      struct account *acct, struct mdl **out)
{
	static const struct pt_walk_ops stretches = { .leaf = dump_leaf, .hole = dump_hole };

	bool irq = spin_lock_irqsave(&vs->lock);
	struct vm_region *r = region_of(vm_tree_ceil(&vs->tree, cursor));
	if (!r) {
		spin_unlock_irqrestore(&vs->lock, irq);
		return rcEof;
	}
	uint64_t npages = vmr_pages(r);
	unsigned f = (r->flags & (VMM_FLAG_CACHE_MASK | VMM_FLAG_LOW_GUARD | VMM_FLAG_HIGH_GUARD | VMM_FLAG_GROW_DOWN)) |
		     VMM_FLAG_RESERVE;
	for (uint32_t i = 0; i < r->runs.n; i++) {
		const struct vm_run *run = &r->runs.v[i];
		if (run->state != VM_GUARD)
			f |= run->prot;
		f |= (run->state == VM_COMMITTED ? VMM_FLAG_COMMIT : 0) | (run->locked ? VMM_FLAG_LOCKED : 0);
	}
	struct region_runs rr = { .m = mdl_new_ram(VMM_FLAG_READ | (r->flags & VMM_FLAG_CACHE_MASK), acct),
				  .at = vmr_base(r) };
	if (!rr.m)
		rr.rc = rcOutOfMemory;
	else if (r->kind == VMR_IO)
		rr.rc = mdl_append_run(rr.m, MDL_FICTITIOUS, npages); /* device memory is not dumped */
	else
		pt_walk_range(&vs->pt, vmr_base(r), npages * PAGE, &stretches, &rr);
	if (rr.rc == rcOk) /* pins the frames while the lock keeps them where they are */
		rr.rc = mdl_take_frames(rr.m);
	else if (rr.m)
		rr.m->nruns = 0; /* nothing pinned */
	if (rr.rc == rcOk) {
		*base = vmr_base(r);
		*size = npages * PAGE;
		*flags = f;
		*out = rr.m;
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	if (rr.rc != rcOk && rr.m)
		mdl_free(rr.m);
	return rr.rc;
}

/* ------------------------------------------------------------------ io mappings */

Retcode vm_map_io(struct vm_space *vs, uint64_t va, uint64_t pa, uint64_t npages)
{
	struct vm_region *r;

	if (!is_aligned(pa, PAGE) || !range_args_ok(vs, va, npages * PAGE))
		return rcInvalidArgument;
	bool irq = spin_lock_irqsave(&vs->lock);
	Retcode rc = find_range(vs, va, npages * PAGE, &r);
	if (rc == rcOk && r->kind != VMR_IO)
		rc = rcInvalidArgument;
	if (rc == rcOk) {
		unsigned prot = r->runs.v[vm_runs_find(&r->runs, (va - vmr_base(r)) / PAGE)].prot;
		rc = pt_map(&vs->pt, va, pa, npages * PAGE, vm_mmu_flags(vs, prot, r->flags), PT_LEVEL_PT);
		if (rc == rcOk) {
			r->io_pa = pa - (va - vmr_base(r));
			r->resident += npages;
			vs->resident += npages;
		}
	}
	spin_unlock_irqrestore(&vs->lock, irq);
	return rc;
}

/* ------------------------------------------------------------------ checking */

bool vm_space_check(struct vm_space *vs, char *why, size_t size)
{
	static const struct pt_walk_ops counter = { .leaf = count_leaf };
	uint64_t committed = 0, extra = 0, resident = 0, locked = 0;
	bool ok = true;

	bool irq = spin_lock_irqsave(&vs->lock);
	if (!vm_tree_check(&vs->tree, why, size)) {
		ok = false;
		goto out;
	}
	uint64_t regions = 0;
	for (struct vm_region *r = vm_first_region(vs); r; r = vm_next_region(vs, r), regions++) {
		uint64_t npages = vmr_pages(r);
		if (!vm_runs_check(&r->runs, npages, why, size)) {
			ok = false;
			goto out;
		}
		struct count_ctx c = { 0 };
		pt_walk_range(&vs->pt, vmr_base(r), vmr_end(r) - vmr_base(r), &counter, &c);
		if (c.pages != r->resident) {
			ksnprintf(why, size, "region %#llx: %llu pages mapped, %llu counted", (unsigned long long)vmr_base(r),
				  (unsigned long long)c.pages, (unsigned long long)r->resident);
			ok = false;
			goto out;
		}
		/* Every mapped page is committed; every locked page is mapped. */
		if (r->kind == VMR_ANON) {
			uint64_t lk = runs_count(r, 0, npages, KEEP, true);
			uint64_t cm = runs_count(r, 0, npages, VM_COMMITTED, false);
			if (c.pages > cm || lk > c.pages) {
				ksnprintf(why, size, "region %#llx: %llu mapped, %llu committed, %llu locked",
					  (unsigned long long)vmr_base(r), (unsigned long long)c.pages,
					  (unsigned long long)cm, (unsigned long long)lk);
				ok = false;
				goto out;
			}
			committed += cm;
			extra += cm * (frame_commit_cost(r->flags) - 1);
			locked += lk;
		}
		resident += c.pages;
	}
	if (!pt_check_summaries(&vs->pt, vs->lo, vs->hi, why, size)) {
		ok = false;
		goto out;
	}
	if (regions != vs->nregions) {
		ksnprintf(why, size, "space: %llu regions, %llu counted", (unsigned long long)regions,
			  (unsigned long long)vs->nregions);
		ok = false;
		goto out;
	}
	uint64_t windows = committed_windows(vs, vs->lo, vs->hi);
	if (committed != vs->committed || resident != vs->resident || locked != vs->locked ||
	    windows != vs->table_windows || extra != vs->commit_extra) {
		ksnprintf(why, size,
			  "space counters: committed %llu/%llu resident %llu/%llu locked %llu/%llu windows %llu/%llu",
			  (unsigned long long)committed, (unsigned long long)vs->committed, (unsigned long long)resident,
			  (unsigned long long)vs->resident, (unsigned long long)locked, (unsigned long long)vs->locked,
			  (unsigned long long)windows, (unsigned long long)vs->table_windows);
		ok = false;
	}
out:
	spin_unlock_irqrestore(&vs->lock, irq);
	return ok;
}
