/* SPDX-License-Identifier: MIT */
/*
 * Memory descriptor lists (SPEC §5, docs/mdl.md): a size and a list of runs of physical
 * frames, or fictitious runs (a count, no frames). An MDL holds a reference and a pin on
 * each frame it lists; a mapping of it holds a reference per mapped page. A frame goes back
 * to the allocator when the last of them is gone, in any order.
 *
 * Kinds: RAM MDLs (created, copied from a buffer, cloned, or locked over a range of an
 * address space: NT's MmProbeAndLockPages) and I/O MDLs (a physical range that is not RAM,
 * for privileged tasks). An MDL made by mdl_describe() lists nothing until it is locked.
 */
#ifndef MM_MDL_H
#define MM_MDL_H

#include <kn/retcode.h>
#include <knmm/list.h>
#include <mm/charge.h>
#include <mm/vm.h>
#include <stdbool.h>
#include <stdint.h>

struct vm_space;

#define MDL_FICTITIOUS UINT64_MAX /* a run's pfn: pages with no frame */

struct mdl_run {
	uint64_t pfn;   /* first frame, or MDL_FICTITIOUS */
	uint64_t count; /* pages */
};

enum mdl_kind {
	MDL_RAM,       /* frames from the page database, referenced and pinned */
	MDL_IO,        /* one physical range outside RAM: no descriptors, nothing pinned */
	MDL_DESCRIBED, /* a user range not (yet) locked: lists nothing */
};

struct mdl {
	uint64_t bytes;       /* the size asked for */
	uint64_t pages;       /* bytes rounded up to pages: what the runs cover */
	uint8_t kind;         /* enum mdl_kind */
	uint8_t max_prot;     /* VMM_FLAG_READ | WRITE | EXECUTE: the most a mapping may have */
	uint16_t cache;       /* VMM_FLAG_CACHE_*: how every mapping caches it (0: write-back) */
	uint64_t charge;      /* commit pages this MDL holds against the limit */
	uint64_t locked;      /* pages charged to the account's locked-pages limit (probe and lock) */
	struct account *acct; /* who pays for it (mm/charge.h; NULL: the kernel); a reference */
	uint32_t nruns, cap;
	struct mdl_run *runs;
	/* described / locked user ranges (probe-and-lock) */
	struct vm_space *space;
	uint64_t va;
	struct list_head link; /* every MDL, for the report */
};

/* Reading an MDL (its fields are mm's): its account, its size in bytes and pages, its cache
 * mode (VMM_FLAG_CACHE_*, 0: write-back), and its runs (*n of them). */
static inline struct account *mdl_account(const struct mdl *m) { return m->acct; }
static inline uint64_t mdl_size(const struct mdl *m) { return m->bytes; }
static inline uint64_t mdl_pages(const struct mdl *m) { return m->pages; }
static inline unsigned mdl_cache(const struct mdl *m) { return m->cache; }
static inline const struct mdl_run *mdl_runs(const struct mdl *m, uint32_t *n)
{
	*n = m->nruns;
	return m->runs;
}
/* Lowers the most any mapping of a described MDL may allow (before it is locked: FromVm). */
static inline void mdl_limit_prot(struct mdl *m, unsigned prot) { m->max_prot = (uint8_t)(m->max_prot & prot); }

/*
 * Flags of MDL creation: a protection (READ, READ|WRITE, READ|EXECUTE or RWX), the most any
 * mapping may have, and at most one cache mode. Anything else is rcInvalidArgument.
 */
bool mdl_flags_valid(unsigned flags);

/* Boot: registers the MDL headers' lookaside list. */
void mdl_init(void);

/*
 * Every constructor takes the account that pays for the MDL (mm/charge.h; NULL: the
 * kernel): its header and run array as bookkeeping, its frames as commit, pinned user pages
 * as locked pages, for as long as the MDL lives (it keeps a reference on the account).
 */

/* `bytes` of zeroed frames (rounded up to pages). rcInvalidArgument (size 0 or flags),
 * rcOutOfMemory (commit limit or frames: nothing is left behind). */
Retcode mdl_create(uint64_t bytes, unsigned flags, struct account *acct, struct mdl **out);
/* The same, for a caller that writes every byte itself: the frames hold what they held.
 * The caller overwrites all of [0, pages * PAGE_SIZE) before anyone can see the MDL (or
 * frees it). */
Retcode mdl_create_unzeroed(uint64_t bytes, unsigned flags, struct account *acct, struct mdl **out);
/* An I/O MDL over [pa, pa + bytes), which must lie outside RAM and the direct map, below the
 * CPU's physical limit. rcInvalidArgument otherwise. */
Retcode mdl_create_phys(uint64_t pa, uint64_t bytes, unsigned flags, struct account *acct, struct mdl **out);
/* A second MDL over the same frames (fictitious runs stay fictitious). rcOutOfMemory. */
Retcode mdl_clone(const struct mdl *m, struct account *acct, struct mdl **out);
/*
 * An MDL over frames the caller found resident (runs given in order), taking a reference and
 * a pin on each: what KnTaskGetNextVmRegion builds. Fictitious runs are allowed. The caller
 * holds the space's lock so the frames cannot go meanwhile.
 */
Retcode mdl_create_from_runs(const struct mdl_run *runs, uint32_t nruns, unsigned flags, struct account *acct,
			     struct mdl **out);
/* Appends `pages` fictitious pages to a RAM MDL (a segment's .bss after its file bytes). */
Retcode mdl_add_fictitious(struct mdl *m, uint64_t pages);
/* Releases an MDL: unpins and unreferences its frames, returns its charge, frees it. */
void mdl_free(struct mdl *m);

/* The kernel address of page `i` of a RAM MDL (its frame in the direct map), or NULL for a
 * fictitious page. O(runs): for one page; a loop over pages takes a cursor. */
void *mdl_page_address(const struct mdl *m, uint64_t i);

/* Pages of an MDL in order, O(1) each after an O(runs) start (filling and reading MDL
 * memory from the kernel). */
struct mdl_cursor {
	const struct mdl *m;
	uint32_t run;    /* the run holding the next page (nruns: past the end) */
	uint64_t in_run; /* its index in that run */
};
void mdl_cursor_init(struct mdl_cursor *c, const struct mdl *m, uint64_t first_page);
/* The next page's kernel address (NULL for a fictitious page, or past the end), and advances. */
void *mdl_cursor_next(struct mdl_cursor *c);

/* ---- building an MDL (mm/mdl.c; for mm's own MDL makers: mdl_vm.c, mmsvc.c) ---- */
/* An empty MDL of `kind` (charged to acct, NULL: the kernel) with flags' protection as its
 * maximum and flags' cache mode, `bytes` and `pages` as given; RAM MDLs get runs appended,
 * then mdl_take_frames (or mdl_hold_frames, for frames charged elsewhere). NULL: no memory. */
struct mdl *mdl_new(enum mdl_kind kind, unsigned flags, uint64_t bytes, uint64_t pages, struct account *acct);
/* Appends a run, merging it with the last one where they touch. rcOutOfMemory. */
Retcode mdl_append_run(struct mdl *m, uint64_t pfn, uint64_t count);
/* Room for `n` runs in all, so that that many appends cannot fail. rcOutOfMemory. */
Retcode mdl_reserve_runs(struct mdl *m, uint64_t n);
/* Charges the frames of the runs appended and takes a reference and a pin on each; its size
 * becomes the pages listed. rcOutOfMemory (the commit limit: nothing taken, runs dropped). */
Retcode mdl_take_frames(struct mdl *m);
/* Takes the MDL's reference and pin on every frame it lists (no charge). */
void mdl_hold_frames(struct mdl *m);
/* Drops what the MDL holds on its frames (references, pins, charge, locked pages); it lists
 * nothing afterwards. */
void mdl_release_frames(struct mdl *m);

/* ---- MDLs and address spaces (mm/mdl_vm.c) ---- */
/*
 * Maps pages [first, first + npages) of an MDL into a new region at `addr` (0: anywhere)
 * with `flags`: a protection and optionally a cache mode (else the MDL's). The region's
 * maximum protection, for now and for any later KnVmProtect, is the MDL's maximum limited
 * by `max_prot` (what the caller's handle allows): more is rcAccessDenied. RAM MDLs: the
 * region is committed (charged like any commit); frames are mapped, each taking a reference;
 * fictitious pages are committed-not-resident (a touch gives the mapper a zeroed frame of its
 * own). I/O MDLs: an uncharged I/O region. All or nothing. *out gets the base. Codes as
 * vm_allocate, plus rcAccessDenied.
 */
Retcode vm_map_mdl(struct vm_space *vs, const struct mdl *m, uint64_t first, uint64_t npages, uint64_t addr,
		   unsigned flags, unsigned max_prot, const char *name, uint64_t *out);
/*
 * Makes [addr, addr + size) resident and appends its frames to m's runs, then takes a
 * reference and a pin on each (probe and lock); m takes the region's cache mode, which must
 * be `cache` unless that is MDL_CACHE_ANY. `access`: the protection bits every page, and
 * its region's maximum, must allow (VMM_FLAG_READ, WRITE, EXECUTE). Everything is checked before a page is
 * made resident. rcInvalidArgument (not inside one region, not all committed, not anonymous
 * memory, another cache mode), rcAccessDenied (protection), rcBusy (another thread is making
 * the region resident), rcOutOfMemory. On failure nothing is pinned.
 */
Retcode vm_pin_range(struct vm_space *vs, uint64_t addr, uint64_t size, unsigned access, unsigned cache, struct mdl *m);
/*
 * The region whose base is the lowest at or above `cursor`, for a dump: its reservation
 * (*base, *size), *flags (the region's flags, RESERVE, the protections of its pages, COMMIT
 * and LOCKED if any page is so) and an MDL over it (read-only, the region's cache mode): a
 * physical run per resident stretch, a fictitious run per other stretch (all of an I/O
 * region). Pins the frames; allocates none. The MDL is charged to `acct` (the dumper).
 * rcEof, rcOutOfMemory.
 */
Retcode vm_region_mdl(struct vm_space *vs, uint64_t cursor, uint64_t *base, uint64_t *size, unsigned *flags,
		      struct account *acct, struct mdl **out);

/* ---- NT-style services (probe and lock, system mappings, pool buffers: mm/mmsvc.c) ---- */

/* Describes [va, va + size) of a space without locking anything (NT IoAllocateMdl). */
Retcode mdl_describe(struct vm_space *vs, uint64_t va, uint64_t size, struct account *acct, struct mdl **out);
/*
 * Makes the described range resident and pins its frames (NT MmProbeAndLockPages): every
 * page must be committed, with a protection that allows `access` (VMM_FLAG_READ, WRITE,
 * EXECUTE: all the bits given); lazy pages get their frames; the MDL takes the region's
 * cache mode, which must be `cache` (a VMM_FLAG_CACHE_* mode, 0 or VMM_FLAG_WRITE_BACK for
 * write-back) unless that is MDL_CACHE_ANY. Everything is checked before any page is made
 * resident. The charge covers the frames for as long as the lock lasts.
 *   rcBusy             the MDL is already locked (a second lock is refused)
 *   rcInvalidArgument  the range leaves its region, or holds reserved, free or guard pages,
 *                      or the region's cache mode is not `cache`
 *   rcAccessDenied     a page's protection does not allow the access
 *   rcOutOfMemory      commit, frames or run storage (nothing is left locked)
 */
#define MDL_CACHE_ANY (~0u)
Retcode mdl_probe_and_lock(struct mdl *m, unsigned access, unsigned cache);
/* Unpins and unreferences the frames: the MDL describes its range again (NT MmUnlockPages). */
void mdl_unlock(struct mdl *m);
/* An MDL over a pool block (NT MmBuildMdlForNonPagedPool), page-granular: the pages the
 * block touches. rcInvalidArgument if it is not pool memory. */
Retcode mdl_build_for_pool(const void *buf, uint64_t size, struct mdl **out);
/*
 * Maps a RAM MDL (no fictitious pages) into the kernel's system-mapping area (NT
 * MmGetSystemAddressForMdlSafe / MmMapLockedPagesSpecifyCache) with its cache mode: `cache`
 * is 0 or the MDL's own (a frame has one memory type: another is refused, as Windows refuses
 * a cache type that conflicts with the PFN's). Unmapped with mdl_unmap_system. NULL on
 * failure.
 */
void *mdl_map_system(const struct mdl *m, unsigned cache);
void mdl_unmap_system(void *va, const struct mdl *m);

/* ---- statistics and the report ---- */
struct mdl_stats {
	uint64_t mdls, pinned_pages;
};
void mdl_get_stats(struct mdl_stats *out);
/* Under one hold of the MDLs' lock: head (if not NULL) with the statistics, then fn for every
 * live MDL, so the two agree (neither takes a lock but the console's). */
void mdl_for_each(void (*head)(const struct mdl_stats *s, void *arg), void (*fn)(const struct mdl *m, void *arg),
		  void *arg);
/* One line per live MDL: address, kind, size, maximum protection, cache, runs (the
 * monitor's `mdl`; mm/report.c). */
void mdl_report(void);

#endif
