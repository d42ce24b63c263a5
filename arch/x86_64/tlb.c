// SPDX-License-Identifier: MIT
/*
 * CR3 and the TLB (declared in arch/pt.h): which root each CPU translates through, flushing
 * what this CPU cached, and shooting down what the others cached (docs/smp.md).
 *
 * The page-table layer batches an operation's invalidations (struct pt_op) and ends it with
 * tlb_invalidate: this CPU flushes its own entries, and every other CPU that may hold
 * entries of that root gets one request and one IPI; the operation returns (and frees the
 * tables and frames it took out) only once every one of them has acknowledged.
 *
 * Who may hold entries of a root: the CPUs whose CR3 points at it (cpu_root[]), since a CR3
 * load flushes every non-global entry; and for the kernel half, every CPU online. A CPU
 * stores its new root before it loads CR3, and a sender reads cpu_root[] after it changed
 * the tables (both with a full barrier between): either the sender sees the new root and
 * asks, or the CPU's walks see the new tables.
 *
 * A CPU answers requests in the IPI's handler, and also while it spins on a contended lock
 * (the spinlock's wait hook) or waits for its own requests' acknowledgements: CPUs spin with
 * interrupts off, and the CPU they wait for may be waiting for them.
 *
 * The host tests have their own stand-ins (tests/host/shim/arch_stubs.c): their tables live
 * in simulated memory no CPU walks.
 */
#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/percpu.h>
#include <arch/pt.h>
#include <arch/pte.h>
#include <arch/trap.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <arch/tlb.h>
#include "pt_internal.h"

/* One request per sending CPU: it sends the next only after every target acknowledged. */
struct tlb_request {
	uint64_t pml4_pa; /* a user root's entries, or 0: the kernel half (every root) */
	bool global;      /* global entries changed (kernel mappings) */
	bool full;        /* flush everything rather than the pages */
	unsigned n;
	uint64_t va[TLB_BATCH_MAX];
	uint64_t pending; /* the CPUs that have not acknowledged yet */
} __aligned(64);

/* The senders with a request for a CPU (bit s: requests[s]), one cache line per CPU. */
struct tlb_inbox {
	uint64_t senders;
} __aligned(64);

static struct tlb_request requests[SPIN_MAX_CPUS];
static struct tlb_inbox inbox[SPIN_MAX_CPUS];
static uint64_t cpu_root[SPIN_MAX_CPUS]; /* what each CPU's CR3 points at */
static uint64_t online;                  /* the CPUs that take requests */
struct tlb_stats tlb_stats[SPIN_MAX_CPUS];

/* (GS is set up after the first pt_activate: before it, the boot CPU is 0.) */
static inline unsigned me(void) { return spin_this_cpu(); }

void tlb_flush_all_nonglobal(void) { write_cr3(read_cr3()); }

void tlb_flush_all(void)
{
	uint64_t cr4 = read_cr4();

	if (cr4 & CR4_PGE) {
		write_cr4(cr4 & ~(uint64_t)CR4_PGE);
		write_cr4(cr4);
	} else {
		tlb_flush_all_nonglobal();
	}
}

static void flush_local(uint64_t pml4_pa, bool global, bool full, const uint64_t *va, unsigned n)
{
	/* A user root's entries are cached only while CR3 points at it (no PCIDs). */
	if (pml4_pa && (read_cr3() & PTE_ADDR_MASK) != pml4_pa)
		return;
	if (full)
		global ? tlb_flush_all() : tlb_flush_all_nonglobal();
	else
		for (unsigned i = 0; i < n; i++)
			tlb_flush_page(va[i]);
}

void tlb_poll(void)
{
	unsigned self = me();
	uint64_t senders = __atomic_exchange_n(&inbox[self].senders, 0, __ATOMIC_ACQ_REL);
	while (senders) {
		unsigned s = (unsigned)__builtin_ctzll(senders);
		senders &= senders - 1;
		const struct tlb_request *r = &requests[s];
		flush_local(r->pml4_pa, r->global, r->full, r->va, r->n);
		tlb_stats[self].received++;
		__atomic_fetch_and(&requests[s].pending, ~(1ull << self), __ATOMIC_RELEASE);
	}
}

static void tlb_ipi(struct trap_frame *tf)
{
	(void)tf;
	tlb_poll();
	apic_eoi();
}

void tlb_invalidate(const struct pt_root *root, bool shared, bool global, bool full, const uint64_t *va, unsigned n)
{
	unsigned self = me();
	uint64_t pa = shared ? 0 : root->pml4_pa;
	uint64_t others = __atomic_load_n(&online, __ATOMIC_ACQUIRE) & ~(1ull << self);
	uint64_t targets = 0;

	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* the tables' changes before the look at cpu_root */
	if (shared) {
		targets = others;
	} else {
		for (uint64_t m = others; m; m &= m - 1) {
			unsigned c = (unsigned)__builtin_ctzll(m);
			if (__atomic_load_n(&cpu_root[c], __ATOMIC_RELAXED) == pa)
				targets |= 1ull << c;
		}
	}
	if (targets) {
		struct tlb_request *r = &requests[self];
		KASSERT(r->pending == 0);
		r->pml4_pa = pa;
		r->global = global;
		r->full = full;
		r->n = full ? 0 : n;
		for (unsigned i = 0; i < r->n; i++)
			r->va[i] = va[i];
		__atomic_store_n(&r->pending, targets, __ATOMIC_RELEASE);
		for (uint64_t m = targets; m; m &= m - 1) {
			unsigned c = (unsigned)__builtin_ctzll(m);
			__atomic_fetch_or(&inbox[c].senders, 1ull << self, __ATOMIC_RELEASE);
			apic_send_ipi(c, VEC_IPI_TLB);
			tlb_stats[self].ipis++;
		}
		tlb_stats[self].rounds++;
	}
	/* Our own entries meanwhile. The root need not be active here for a shared change. */
	flush_local(pa, global, full, va, n);
	if (targets) {
		/* Frames and tables go back only after this: answer others' requests meanwhile
		 * (one of them may be spinning for a lock we hold, waiting for us). */
		while (__atomic_load_n(&requests[self].pending, __ATOMIC_ACQUIRE)) {
			cpu_relax();
			tlb_poll();
		}
	}
}

void tlb_cpu_join(void)
{
	unsigned self = me();
	if (self == 0) {
		trap_set_irq_handler(VEC_IPI_TLB, tlb_ipi);
		spin_set_wait_hook(tlb_poll);
	}
	__atomic_store_n(&cpu_root[self], read_cr3() & PTE_ADDR_MASK, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&online, 1ull << self, __ATOMIC_SEQ_CST);
	/* Whatever changed before others could ask this CPU is flushed here. */
	tlb_flush_all();
}

void pt_activate(const struct pt_root *root)
{
	unsigned self = me();
	__atomic_store_n(&cpu_root[self], root->pml4_pa, __ATOMIC_SEQ_CST);
	write_cr3(root->pml4_pa);
}

bool pt_is_active(const struct pt_root *root) { return (read_cr3() & PTE_ADDR_MASK) == root->pml4_pa; }

struct pt_root pt_active_root(void)
{
	uint64_t pa = read_cr3() & PTE_ADDR_MASK;

	return (struct pt_root){ .pml4_pa = pa, .user = pa != kernel_pt_root.pml4_pa };
}
