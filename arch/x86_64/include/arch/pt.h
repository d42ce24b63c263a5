/* SPDX-License-Identifier: MIT */
/*
 * The page-table layer: the one door to x86-64 page tables (STYLE.md 1 and 2).
 *
 * Callers speak arch-neutral MMU_* flags (include/knmm/mmu.h) and never see PTE bits (the
 * entries' format, arch/pte.h, is arch's: the pte report gets entries decoded). Page
 * tables are reached through the direct map. Table frames come from the frame source that
 * mm registers with pt_set_frame_source() (the boot allocator first, the PMM later); the
 * layer holds no allocation policy.
 *
 * Locking: callers serialise operations on one root (the address-space lock). The layer
 * invalidates the TLB itself: for the active root and for global (kernel-half) mappings.
 */
#ifndef ARCH_PT_H
#define ARCH_PT_H

#include <arch/paging.h>
#include <kn/retcode.h>
#include <knmm/mmu.h>

struct pt_root {
	uint64_t pml4_pa;
	bool user; /* a task's root: its lower half is private, its upper half the kernel's */
};

/*
 * Where table frames come from. alloc returns a zeroed 4 KiB frame, or 0 when out of memory.
 * `word`, if the source has it, gives a 32-bit word the page-table layer may keep for each
 * frame it got from alloc (for as long as it holds it): each table's occupancy summary, one
 * bit per 32 entries that holds any entry, which lets walks skip empty stretches and makes
 * "is this table empty" O(1). Tables from a source without it (boot) are just scanned.
 * Tables outlive the source that made them: a source that replaces another while its tables
 * exist must give the same words for their frames.
 */
struct pt_frame_source {
	uint64_t (*alloc)(void);
	void (*free)(uint64_t pa);
	uint32_t *(*word)(uint64_t pa);
};
void pt_set_frame_source(const struct pt_frame_source *src);
const struct pt_frame_source *pt_get_frame_source(void);

/* A new, empty root. For a user root the kernel half is shared with the kernel's root.
 * rcOutOfMemory if no frame. */
Retcode pt_root_create(struct pt_root *root, bool user);
/* Frees the root and every table below it in the user half. Leaves must already be gone
 * (mm unmaps every region first); a remaining leaf is a kernel bug (panic). */
void pt_root_destroy(struct pt_root *root);
/* Loads the root into CR3. */
void pt_activate(const struct pt_root *root);
/* The root whose tables the CPU uses now. */
bool pt_is_active(const struct pt_root *root);
/* The root this CPU translates through right now (CR3): a task's, or the kernel's. */
struct pt_root pt_active_root(void);

/* The kernel's root (boot: built by kspace_init, then shared by every address space). */
extern struct pt_root kernel_pt_root;

/* Creates the kernel root's top-level entries for [va, va+size) (kernel half). */
Retcode pt_prealloc_kernel(uint64_t va, uint64_t size);
/* From now on no kernel top-level entry may be created: user roots copy them at creation,
 * so all of them must exist first (a later one would be a kernel bug: panic). */
void pt_seal_kernel_top(void);

/*
 * Maps [va, va+size) to [pa, pa+size) with `mmu_flags` (MMU_READ required), using pages up
 * to `max_level` (PT_LEVEL_PT: 4 KiB only; PD: 2 MiB; PDPT: 1 GiB where the CPU has them)
 * wherever va, pa and the remaining size allow. All or nothing:
 *   rcInvalidArgument  unaligned va/pa/size, size 0, non-canonical or wrapping range, no MMU_READ
 *   rcAlreadyExists    part of the range is mapped already (nothing changed)
 *   rcOutOfMemory      no frame for a table (everything this call mapped is undone)
 */
Retcode pt_map(struct pt_root *root, uint64_t va, uint64_t pa, uint64_t size, unsigned mmu_flags,
	       enum pt_level max_level);

/* Called by pt_unmap for every leaf it removes (4 KiB pages or whole large pages). */
typedef void (*pt_unmap_fn)(uint64_t va, uint64_t pa, uint64_t size, void *arg);

/*
 * Removes every mapping in [va, va+size) (holes are fine), calling `fn` (if not NULL) for
 * each removed leaf, and frees page-table pages that become empty (never the kernel's
 * PML4-level tables). Large pages straddling an end are split first.
 *   rcInvalidArgument  unaligned or bad range
 *   rcOutOfMemory      a straddling large page could not be split (nothing removed)
 */
Retcode pt_unmap(struct pt_root *root, uint64_t va, uint64_t size, pt_unmap_fn fn, void *arg);

/*
 * Sets the permission and cache flags of every present page in [va, va+size) to `mmu_flags`
 * (holes stay holes). Codes as pt_unmap.
 */
Retcode pt_protect(struct pt_root *root, uint64_t va, uint64_t size, unsigned mmu_flags);

/*
 * Undoes splits around va: a page table whose 512 entries map one aligned, contiguous
 * physical range with identical attributes becomes a single 2 MiB entry again (and then,
 * where the CPU has them, 512 such entries a 1 GiB one), freeing the tables. For mappings
 * made with large pages and split by pt_protect/pt_unmap (the direct map).
 */
void pt_collapse(struct pt_root *root, uint64_t va);

/* What maps `va`: false if nothing. Any output may be NULL. */
struct pt_mapping {
	uint64_t va;   /* base of the page that maps the address */
	uint64_t pa;   /* physical address of the address itself */
	uint64_t size; /* page size: 4 KiB, 2 MiB or 1 GiB */
	unsigned mmu_flags;
	bool accessed, dirty;
};
bool pt_translate(const struct pt_root *root, uint64_t va, struct pt_mapping *out);

/*
 * The range walk (Linux mm_walk style): visits [start, start+size) in address order, calling
 * `leaf` for every present leaf that overlaps the range and `hole` for every maximal stretch
 * with no mapping. Empty upper-level entries are skipped whole, so a walk costs
 * O(tables present), not O(pages). A non-zero return from a callback stops the walk and is
 * returned. Read-only: callbacks must not change the tables.
 */
struct pt_leaf {
	uint64_t va, pa, size; /* the whole leaf, which may start before the range */
	unsigned mmu_flags;
	enum pt_level level;
	bool accessed, dirty;
};
struct pt_walk_ops {
	int (*leaf)(const struct pt_leaf *leaf, void *arg);
	int (*hole)(uint64_t start, uint64_t end, void *arg); /* [start, end) */
};
/*
 * The maximal stretches of [start, start + size) that are mapped (present) and not, in
 * order: fn(start, end, present, arg) for each; a nonzero return stops the scan and is
 * returned. Absent upper levels are skipped whole and the last level is scanned in a tight
 * loop, so the cost follows the tables that exist (the usage map of a 1 GiB region with a
 * few resident pages looks at a few page tables).
 */
typedef int (*pt_stretch_fn)(uint64_t start, uint64_t end, bool present, void *arg);
/* Checks the occupancy summaries of every table below [lo, hi) of a root against its
 * entries (tests). false with the reason in why. */
bool pt_check_summaries(const struct pt_root *root, uint64_t lo, uint64_t hi, char *why, size_t size);
int pt_scan_residency(const struct pt_root *root, uint64_t start, uint64_t size, pt_stretch_fn fn, void *arg);

int pt_walk_range(const struct pt_root *root, uint64_t start, uint64_t size, const struct pt_walk_ops *ops, void *arg);

/*
 * The walk of `va` through a root's tables, for the pte report: one step a level from the top
 * (PML4) down to the entry that ends it (a leaf, or one not present); n steps are valid.
 * Each step has the table holding the entry, the entry's index there, its raw value and its
 * decoding: "not present", or "page "/"table" with the address it points to and its bits,
 * e.g. "page  0x1000  P RW US A D NX PAT=4 (WC)" (pte_describe in arch/pte.h).
 */
#define PT_TRACE_TEXT_SIZE 72
struct pt_trace {
	unsigned n;
	struct {
		enum pt_level level;
		const char *level_name; /* "PML4", "PDPT", "PD", "PT" */
		uint64_t table_pa;
		unsigned index;
		uint64_t entry;
		char text[PT_TRACE_TEXT_SIZE];
	} step[4];
};
void pt_trace(const struct pt_root *root, uint64_t va, struct pt_trace *out);

/* Number of table pages this layer holds right now (all roots). */
uint64_t pt_table_pages(void);

/* TLB maintenance. */
static inline void tlb_flush_page(uint64_t va) { __asm__ __volatile__("invlpg (%0)" ::"r"(va) : "memory"); }
void tlb_flush_all_nonglobal(void);
void tlb_flush_all(void); /* including global entries */
/* This CPU takes TLB shootdown requests from now on (each CPU once, as it starts; the boot
 * CPU first, which also installs the IPI's handler). */
void tlb_cpu_join(void);
/* Answers the shootdown requests waiting for this CPU (the IPI's handler, lock waits). */
void tlb_poll(void);
/* Per CPU: shootdown rounds it sent (kernel_rounds: of the kernel half, sent to every CPU
 * awake), IPIs in them, requests it answered, CR3 loads that flushed a PCID (a new root in a
 * slot, or one marked stale), and full flushes on waking for kernel-half requests it was
 * not asked while halted. */
struct tlb_stats {
	uint64_t rounds, kernel_rounds, ipis, received, pcid_flushes, missed_flushes;
};
/* The idle loop, around its halt: kernel-half shootdowns leave a halted CPU alone, and it
 * flushes everything when it wakes if one passed it by (tlb.c). tlb_idle_exit also runs at
 * the start of every interrupt (trap_dispatch). */
void tlb_idle_enter(void);
void tlb_idle_exit(void);
/* Every CPU's figures added up (a snapshot). */
struct tlb_stats tlb_stats_total(void);
/* Whether roots get PCIDs (the CPU has them): a switch then keeps their entries. */
bool tlb_pcid_enabled(void);
extern struct tlb_stats tlb_stats[];

#endif
