/* SPDX-License-Identifier: MIT */
/*
 * A model of the memory API's semantics (SPEC §4) over a window of pages: what every call
 * must return and what it must leave behind, page by page. Two tests drive it with the
 * same seeded random calls: the host test of the address-space core (tests/host/test_vm.c,
 * calling vm_* on page tables in simulated memory) and the ring-3 program test_vm_model
 * (calling KnVm*). Plain C, no libc: it builds for the host and for user programs.
 *
 * The model knows the window [lo, lo + npages pages) only. `bounded`: the window is the whole
 * address space (host); otherwise it lies inside a larger one, with the caller keeping the
 * pages around it taken (ring 3), and fixed placements stay inside it.
 */
#ifndef TESTS_VM_MODEL_H
#define TESTS_VM_MODEL_H

#include <kn/flags.h>
#include <kn/retcode.h>
#include <stdbool.h>
#include <stdint.h>

#define VMM_PAGE 4096ull

enum vmm_access { VMM_READ, VMM_WRITE, VMM_EXEC };
enum vmm_fault { VMM_RESOLVED, VMM_GREW, VMM_GUARD_VIOLATION, VMM_ACCESS_VIOLATION, VMM_STACK_OVERFLOW };

struct vmm_page {
	uint8_t state;  /* VMM_STATE_* */
	uint8_t prot;   /* VMM_FLAG_READ | WRITE | EXECUTE */
	uint8_t locked; /* of a LOCKED commit */
	uint8_t resident;
	int32_t region; /* index into regions; -1: free */
	uint32_t value; /* the page's first word: 0 until written, and again after decommit */
};

struct vmm_region {
	uint64_t base, end; /* pages, window-relative, guard pages included */
	unsigned flags;
	bool live;
};

/* What KnVmQuery must answer for a page. */
struct vmm_info {
	uint64_t region_base, region_size, run_size; /* bytes */
	int state;
	bool resident, locked;
	unsigned prot;
	unsigned flags; /* all of KnVmQuery's flags: RESERVE, COMMIT, protection, LOCKED, the
			   region's cache mode and GROW_DOWN, its guard flags as its pages are now */
};

struct vm_model {
	uint64_t lo; /* address of the window's first page */
	uint64_t npages;
	bool bounded;                        /* the window is the whole space */
	uint64_t limit;                      /* commit the model may take, pages (tables included) */
	unsigned table_charge, window_shift; /* table pages charged per window of committed pages */
	unsigned faultaround;                /* neighbours a fault also maps */
	bool exec_touch;                     /* the driver can make execute accesses (random calls include them) */
	uint64_t charge;                     /* commit of the committed pages (tables not included): a page each,
						two for a page that is not write-back */
	struct vmm_page *page;
	struct vmm_region *region;
	unsigned max_regions;
	uint64_t rng; /* xorshift64 state for the generators */
};

void vmm_init(struct vm_model *m, uint64_t lo, uint64_t npages, struct vmm_page *pages, struct vmm_region *regions,
	      unsigned max_regions);

/* Pseudo-random numbers: the whole sequence follows from m->rng. */
uint64_t vmm_rand(struct vm_model *m);
uint64_t vmm_below(struct vm_model *m, uint64_t n);

static inline uint64_t vmm_va(const struct vm_model *m, uint64_t page) { return m->lo + page * VMM_PAGE; }
static inline uint64_t vmm_hi(const struct vm_model *m) { return vmm_va(m, m->npages); }

/* One random call, the mix of the model tests: a quarter allocations (anywhere and fixed,
 * every flag), commits, decommits, protects, unmaps, touches and queries, valid and not. */
enum vmm_op {
	VMM_OP_ALLOCATE,
	VMM_OP_COMMIT,
	VMM_OP_DECOMMIT,
	VMM_OP_PROTECT,
	VMM_OP_UNMAP,
	VMM_OP_FAULT,
	VMM_OP_QUERY,
	VMM_NR_OPS
};
extern const char *const vmm_op_names[VMM_NR_OPS];
struct vmm_call {
	enum vmm_op op;
	uint64_t addr, size; /* FAULT and QUERY: addr only, inside the window */
	unsigned flags;      /* ALLOCATE, COMMIT: flags; PROTECT: the protection */
	enum vmm_access access;
};
void vmm_random_call(struct vm_model *m, struct vmm_call *c);

/* Whether the flags are a valid KnVmAllocate request. */
bool vmm_flags_valid(unsigned flags);
/* Random allocation flags, valid ones mostly. */
unsigned vmm_random_flags(struct vm_model *m);
/* A random range, mostly inside a region; sometimes unaligned, empty or wrapping. */
void vmm_random_range(struct vm_model *m, uint64_t *addr, uint64_t *size);

/* Table pages the space charges for its committed pages now. */
uint64_t vmm_table_charge(const struct vm_model *m);

/*
 * The calls. Each returns the code the system must return and applies the call to the model
 * when that is rcOk. vmm_allocate takes where the system placed the region (`got`) when it
 * succeeded, and returns -1 if the model would have placed it elsewhere.
 */
Retcode vmm_allocate(struct vm_model *m, uint64_t addr, uint64_t size, unsigned flags, uint64_t got);
Retcode vmm_commit(struct vm_model *m, uint64_t addr, uint64_t size, unsigned flags);
Retcode vmm_decommit(struct vm_model *m, uint64_t addr, uint64_t size);
Retcode vmm_protect(struct vm_model *m, uint64_t addr, uint64_t size, unsigned prot);
Retcode vmm_unmap(struct vm_model *m, uint64_t addr, uint64_t size);
/* A touch of page `page`: the fault's outcome, applied (residency, growth, fault-around). */
enum vmm_fault vmm_fault(struct vm_model *m, uint64_t page, enum vmm_access access);
/* The same outcome without applying it (a test in ring 3 performs only touches that
 * succeed). */
enum vmm_fault vmm_fault_outcome(const struct vm_model *m, uint64_t page, enum vmm_access access);
/* What a query of page `page` must answer. */
void vmm_query(const struct vm_model *m, uint64_t page, struct vmm_info *out);

/* Region `rid`'s usable range (without its guard pages): first page and page count. */
void vmm_region_usable(const struct vm_model *m, int rid, uint64_t *first, uint64_t *pages);
/* The usage map (SPEC §5) of region `rid` from usable page `start` on: up to `max`
 * alternating counts of resident and non-resident pages; returns how many. */
uint64_t vmm_usage_map(const struct vm_model *m, int rid, uint64_t start, uint64_t *counters, uint64_t max,
		       bool *first_used);

#endif
