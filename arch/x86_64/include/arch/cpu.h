/* SPDX-License-Identifier: MIT */
/*
 * CPU control: feature detection, control registers, interrupts, PAT.
 */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)  /* WAIT/FWAIT honour TS */
#define CR0_EM (1u << 2)  /* x87 emulation (must be off for SSE) */
#define CR0_NE (1u << 5)  /* native x87 error reporting */
#define CR0_WP (1u << 16) /* supervisor writes honour read-only pages */
#define CR0_PG (1u << 31)

#define CR4_PAE        (1u << 5)
#define CR4_PGE        (1u << 7)  /* global pages */
#define CR4_OSFXSR     (1u << 9)  /* FXSAVE/FXRSTOR and SSE for ring 3 */
#define CR4_OSXMMEXCPT (1u << 10) /* SIMD exceptions as #XM */
#define CR4_PCIDE      (1u << 17)
#define CR4_SMEP       (1u << 20)
#define CR4_SMAP       (1u << 21)

#define RFLAGS_RESERVED (1u << 1) /* always 1 */
#define RFLAGS_IF       (1u << 9)
#define RFLAGS_AC       (1u << 18)

/*
 * PAT layout programmed by cpu_init (index = PAT<<2 | PCD<<1 | PWT). Entries 0-3 keep the
 * power-on values, so page tables written before PAT is set mean the same thing; entry 4
 * becomes write-combining.
 */
#define PAT_TYPE_UC   0x00
#define PAT_TYPE_WC   0x01
#define PAT_TYPE_WT   0x04
#define PAT_TYPE_WP   0x05
#define PAT_TYPE_WB   0x06
#define PAT_TYPE_UCM  0x07 /* UC- */
#define PAT_INDEX_WB  0
#define PAT_INDEX_WT  1
#define PAT_INDEX_UCM 2
#define PAT_INDEX_UC  3
#define PAT_INDEX_WC  4
#define PAT_MSR_VALUE 0x0007040100070406ull /* PA7..PA0 = UC UC- WT WC | UC UC- WT WB */

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>
#include <arch/irqflags.h>

struct cpu_features {
	char vendor[13];
	char brand[49];
	unsigned phys_bits, virt_bits;
	bool nx, smep, smap, pcid, invpcid, page_1g, erms, pat, pge, fsgsbase;
	bool apic, x2apic, tsc_deadline, hypervisor, syscall;
	bool clflush;
	unsigned clflush_line; /* bytes a CLFLUSH line covers */
};

extern struct cpu_features cpu_features;

/* Reads CPUID into cpu_features. Call once, first thing. */
void cpu_detect(void);
/* Turns on what knmm uses: NXE, WP, PGE, SMEP/SMAP where present, and programs the PAT. */
void cpu_init(void);
/* One line naming the features found, for the boot log. */
void cpu_log_features(void);

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ __volatile__("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

#define DEFINE_CR_ACCESSORS(n)                                        \
	static inline uint64_t read_cr##n(void)                       \
	{                                                             \
		uint64_t v;                                           \
		__asm__ __volatile__("mov %%cr" #n ", %0" : "=r"(v)); \
		return v;                                             \
	}                                                             \
	static inline void write_cr##n(uint64_t v) { __asm__ __volatile__("mov %0, %%cr" #n ::"r"(v) : "memory"); }
DEFINE_CR_ACCESSORS(0)
DEFINE_CR_ACCESSORS(2)
DEFINE_CR_ACCESSORS(3)
DEFINE_CR_ACCESSORS(4)
#undef DEFINE_CR_ACCESSORS

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t read_rbp(void)
{
	uint64_t v;
	__asm__ __volatile__("mov %%rbp, %0" : "=r"(v));
	return v;
}

/* SMAP: let supervisor code touch user pages (AC set) / forbid it again. Only where the CPU has
 * SMAP (elsewhere the instructions do not exist). */
static inline void user_access_begin(void)
{
	if (cpu_features.smap)
		__asm__ __volatile__("stac" ::: "memory", "cc");
}
static inline void user_access_end(void)
{
	if (cpu_features.smap)
		__asm__ __volatile__("clac" ::: "memory", "cc");
}

/* FPU/SSE state of ring-3 threads (the kernel itself never uses it). 512 bytes, 16-aligned. */
#define FPU_STATE_SIZE 512
/* Boot CPU: turns the FPU/SSE on and keeps the clean state fpu_init_state copies. */
void fpu_init(void);
/* Any CPU: turns the FPU/SSE on (CR0, CR4, FNINIT, MXCSR) without saving anything. */
void fpu_init_cpu(void);
void fpu_init_state(void *area); /* a clean state, for a new thread */
static inline void fpu_save(void *area) { __asm__ __volatile__("fxsave64 (%0)" ::"r"(area) : "memory"); }
static inline void fpu_restore(const void *area) { __asm__ __volatile__("fxrstor64 (%0)" ::"r"(area) : "memory"); }

/* Writes back and invalidates every cache line (before a frame changes memory type). */
static inline void cache_flush_all(void) { __asm__ __volatile__("wbinvd" ::: "memory"); }
/* Writes back and evicts the cache lines of [va, va + size) from every level (CLFLUSH, or
 * WBINVD on a CPU without it): what a page needs when its memory type changes (SDM Vol. 3A
 * 11.12.4). */
void cache_flush_range(const void *va, uint64_t size);
/* Drains this CPU's write-combining buffers (SFENCE): before a write-combining page's
 * frame changes memory type again. */
static inline void write_combining_flush(void) { __asm__ __volatile__("sfence" ::: "memory"); }
/* The physical address width: addresses at or above 1 << phys_addr_bits() are no memory. */
static inline unsigned phys_addr_bits(void) { return cpu_features.phys_bits; }

/* Stops this CPU for good (interrupts off). */
__noreturn void cpu_halt_forever(void);

#endif /* __ASSEMBLER__ */
#endif
