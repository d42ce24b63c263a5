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

/*
 * What a CPU may cache. `active` is the root its CR3 points at. With PCIDs, each of its
 * PCID_SLOTS slots names the root whose entries may be cached under PCID slot + 1; a root
 * keeps its slot (and its entries) while the CPU runs others, and a CR3 load that returns
 * to it flushes nothing unless another CPU marked the slot stale meanwhile. Only the CPU
 * itself writes its fields, except `stale` (others set bits) and `senders` (the senders
 * with a request for it: bit s, requests[s]).
 */
#define PCID_SLOTS 8
struct tlb_cpu {
	uint64_t active;
	uint64_t slot_root[PCID_SLOTS];
	uint64_t stale;
	unsigned victim; /* the slot a new root takes next (round robin) */
	uint64_t senders __aligned(64);
	bool halted; /* in its idle loop's halt: kernel-half requests are left for its wake-up */
	bool missed; /* a kernel-half request it was not asked: flush everything on wake-up */
} __aligned(64);

static struct tlb_request requests[SPIN_MAX_CPUS];
static struct tlb_cpu tcpu[SPIN_MAX_CPUS];
static uint64_t online; /* the CPUs that take requests */
static bool pcid_on;
struct tlb_stats tlb_stats[SPIN_MAX_CPUS];

#define CR3_NOFLUSH (1ull << 63) /* with PCIDs: keep the new PCID's entries */

/* (GS is set up after the first pt_activate: before it, the boot CPU is 0.) */
static inline unsigned me(void) { return spin_this_cpu(); }

void tlb_flush_all_nonglobal(void) { write_cr3(read_cr3() & ~CR3_NOFLUSH); }

void tlb_flush_all(void)
{
	uint64_t cr4 = read_cr4();

	if (cr4 & CR4_PGE) { /* (flushes every PCID too) */
		write_cr4(cr4 & ~(uint64_t)CR4_PGE);
		write_cr4(cr4);
	} else {
		tlb_flush_all_nonglobal();
	}
}

static int slot_of(const struct tlb_cpu *t, uint64_t pa)
{
	for (int i = 0; i < PCID_SLOTS; i++)
		if (__atomic_load_n(&t->slot_root[i], __ATOMIC_RELAXED) == pa)
			return i;
	return -1;
}

/* This CPU drops its entries for a request: the root is active here (flush now), or sits
 * in a PCID slot (flush when it comes back), or is nowhere (its entries went with the CR3
 * load that left it). pml4_pa 0: the kernel half, global entries, in every root. */
static void flush_local(uint64_t pml4_pa, bool global, bool full, const uint64_t *va, unsigned n)
{
	struct tlb_cpu *t = &tcpu[me()];
	if (pml4_pa && (read_cr3() & PTE_ADDR_MASK) != pml4_pa) {
		int i = pcid_on ? slot_of(t, pml4_pa) : -1;
		if (i >= 0)
			__atomic_fetch_or(&t->stale, 1ull << i, __ATOMIC_SEQ_CST);
		return;
	}
	/* With PCIDs, invlpg and a CR3 reload clean the paging-structure caches of the current
	 * PCID only, and another PCID may still cache an upper-level kernel entry to a table
	 * this operation freed: a kernel-half change flushes every PCID (the CR4.PGE toggle). */
	if (pcid_on && !pml4_pa)
		tlb_flush_all();
	else if (full)
		global ? tlb_flush_all() : tlb_flush_all_nonglobal();
	else
		for (unsigned i = 0; i < n; i++)
			tlb_flush_page(va[i]); /* (global entries in every PCID, others in this one) */
}

void tlb_poll(void)
{
	unsigned self = me();
	uint64_t senders = __atomic_exchange_n(&tcpu[self].senders, 0, __ATOMIC_ACQ_REL);
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

/*
 * Whether CPU c must be asked to drop entries of the user root pa. Its stores (slot, then
 * active, then its look at stale) and ours (the tables, then stale, then our look at
 * active) are ordered by full barriers on both sides: either we see it active and ask, or
 * it sees the stale mark and flushes before it uses the slot again.
 */
static bool must_ask(unsigned c, uint64_t pa)
{
	struct tlb_cpu *t = &tcpu[c];
	if (__atomic_load_n(&t->active, __ATOMIC_SEQ_CST) == pa)
		return true;
	if (!pcid_on)
		return false;
	int i = slot_of(t, pa);
	if (i < 0)
		return false;
	__atomic_fetch_or(&t->stale, 1ull << i, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&t->active, __ATOMIC_SEQ_CST) == pa;
}

/*
 * Kernel-half requests skip a CPU halted in its idle loop: waking it (a halted vCPU, on an
 * emulator, waits for its host thread) would cost more than the flush. It marks itself halted
 * just before `sti; hlt`, and on the interrupt that wakes it (tlb_idle_exit, first thing in
 * trap_dispatch) clears the mark and then, if a sender marked it missed, flushes every entry,
 * global ones too, before any handler runs. The same full barriers as must_ask's: either
 * the sender sees it awake and asks, or it sees the missed mark. Between its mark and its
 * halt, and from the wake-up to the flush, it touches only memory that is never unmapped
 * (the image, its idle stack, the local APIC), so no stale entry is used; user roots are
 * not involved (an idle CPU runs on the kernel's root).
 */
static bool skip_halted(unsigned c)
{
	struct tlb_cpu *t = &tcpu[c];
	if (!__atomic_load_n(&t->halted, __ATOMIC_SEQ_CST))
		return false;
	__atomic_store_n(&t->missed, true, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&t->halted, __ATOMIC_SEQ_CST);
}

void tlb_idle_enter(void) { __atomic_store_n(&tcpu[me()].halted, true, __ATOMIC_SEQ_CST); }

void tlb_idle_exit(void)
{
	struct tlb_cpu *t = &tcpu[me()];
	if (!READ_ONCE(t->halted))
		return;
	__atomic_store_n(&t->halted, false, __ATOMIC_SEQ_CST);
	if (__atomic_exchange_n(&t->missed, false, __ATOMIC_SEQ_CST)) {
		tlb_flush_all();
		tlb_stats[me()].missed_flushes++;
	}
}

void tlb_invalidate(const struct pt_root *root, bool shared, bool global, bool full, const uint64_t *va, unsigned n)
{
	unsigned self = me();
	uint64_t pa = shared ? 0 : root->pml4_pa;
	uint64_t others = __atomic_load_n(&online, __ATOMIC_ACQUIRE) & ~(1ull << self);
	uint64_t targets = 0;

	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* the tables' changes before the look at the CPUs */
	if (shared) {
		for (uint64_t m = others; m; m &= m - 1) {
			unsigned c = (unsigned)__builtin_ctzll(m);
			if (!skip_halted(c))
				targets |= 1ull << c;
		}
	} else {
		for (uint64_t m = others; m; m &= m - 1) {
			unsigned c = (unsigned)__builtin_ctzll(m);
			if (must_ask(c, pa))
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
			__atomic_fetch_or(&tcpu[c].senders, 1ull << self, __ATOMIC_RELEASE);
			apic_send_ipi(c, VEC_IPI_TLB);
			tlb_stats[self].ipis++;
		}
		tlb_stats[self].rounds++;
		if (shared)
			tlb_stats[self].kernel_rounds++;
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
		pcid_on = cpu_features.pcid;
	}
	/* CR4.PCIDE may be set only while CR3's PCID is 0: it is, until the next pt_activate. */
	if (pcid_on)
		write_cr4(read_cr4() | CR4_PCIDE);
	__atomic_store_n(&tcpu[self].active, read_cr3() & PTE_ADDR_MASK, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&online, 1ull << self, __ATOMIC_SEQ_CST);
	/* Whatever changed before others could ask this CPU is flushed here. */
	tlb_flush_all();
}

bool tlb_pcid_enabled(void) { return pcid_on; }

struct tlb_stats tlb_stats_total(void)
{
	struct tlb_stats sum = { 0 };
	for (unsigned c = 0; c < SPIN_MAX_CPUS; c++) {
		sum.rounds += READ_ONCE(tlb_stats[c].rounds);
		sum.kernel_rounds += READ_ONCE(tlb_stats[c].kernel_rounds);
		sum.ipis += READ_ONCE(tlb_stats[c].ipis);
		sum.received += READ_ONCE(tlb_stats[c].received);
		sum.pcid_flushes += READ_ONCE(tlb_stats[c].pcid_flushes);
		sum.missed_flushes += READ_ONCE(tlb_stats[c].missed_flushes);
	}
	return sum;
}

void pt_activate(const struct pt_root *root)
{
	struct tlb_cpu *t = &tcpu[me()];
	uint64_t pa = root->pml4_pa;

	if (!pcid_on || !(read_cr4() & CR4_PCIDE)) {
		__atomic_store_n(&t->active, pa, __ATOMIC_SEQ_CST);
		write_cr3(pa);
		return;
	}
	int i = slot_of(t, pa);
	bool flush = true;
	if (i >= 0) {
		__atomic_store_n(&t->active, pa, __ATOMIC_SEQ_CST);
		flush = __atomic_fetch_and(&t->stale, ~(1ull << i), __ATOMIC_SEQ_CST) & (1ull << i);
	} else {
		/* A new root takes the next slot; the load flushes what its last root left. */
		i = (int)(t->victim++ % PCID_SLOTS);
		__atomic_store_n(&t->slot_root[i], pa, __ATOMIC_SEQ_CST);
		__atomic_fetch_and(&t->stale, ~(1ull << i), __ATOMIC_SEQ_CST);
		__atomic_store_n(&t->active, pa, __ATOMIC_SEQ_CST);
	}
	write_cr3(pa | (uint64_t)(i + 1) | (flush ? 0 : CR3_NOFLUSH));
	if (flush)
		tlb_stats[me()].pcid_flushes++;
}

bool pt_is_active(const struct pt_root *root) { return (read_cr3() & PTE_ADDR_MASK) == root->pml4_pa; }

struct pt_root pt_active_root(void)
{
	uint64_t pa = read_cr3() & PTE_ADDR_MASK;

	return (struct pt_root){ .pml4_pa = pa, .user = pa != kernel_pt_root.pml4_pa };
}
