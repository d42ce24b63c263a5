// SPDX-License-Identifier: MIT
/*
 * GDT and TSS, one of each per CPU. The TSS carries the ring-0 stack for entries from ring 3
 * and the IST stacks that #DF, NMI and #MC always switch to, so that they run on a good stack
 * even when the current one is gone (a kernel stack overflow ends in #DF on IST_DF). The
 * boot CPU's IST stacks are in .bss (gdt_init runs before mm); the others' come from the
 * kernel (smp_start_cpus, arch/smp.h).
 */
#include <arch/gdt.h>
#include <arch/percpu.h>
#include <arch/trap.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>
#include "smp_internal.h"

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __packed;

struct gdt_ptr {
	uint16_t limit;
	uint64_t base;
} __packed;

static struct tss tss[SPIN_MAX_CPUS] __aligned(16);
static uint8_t boot_ist_stacks[IST_COUNT][IST_STACK_SIZE] __aligned(16);
/* Every CPU's IST stack tops (0: no such CPU yet), for ist_stack_name. */
static uint64_t ist_tops[SPIN_MAX_CPUS][IST_COUNT];

/* Access byte and flags spelled out: P, DPL, S, type; L (64-bit code), G, D/B. */
#define SEG_KERNEL_CODE64 0x00af9a000000ffffull
#define SEG_KERNEL_DATA   0x00cf92000000ffffull
#define SEG_USER_DATA     0x00cff2000000ffffull
#define SEG_USER_CODE64   0x00affa000000ffffull

#define GDT_ENTRIES 8
static uint64_t gdt[SPIN_MAX_CPUS][GDT_ENTRIES] __aligned(16);

const char *ist_stack_name(uint64_t addr)
{
	static const char *const names[IST_COUNT] = { "double-fault IST stack", "NMI IST stack",
						      "machine-check IST stack" };
	for (unsigned c = 0; c < SPIN_MAX_CPUS; c++)
		for (unsigned i = 0; i < IST_COUNT; i++)
			if (ist_tops[c][i] && addr >= ist_tops[c][i] - IST_STACK_SIZE && addr < ist_tops[c][i])
				return names[i];
	return NULL;
}

/* (this_cpu: thread switches run after percpu_init) */
void tss_set_kernel_stack(uint64_t rsp0) { tss[this_cpu()->id].rsp[0] = rsp0; }

/* Builds CPU `index`'s TSS (IST stacks at ist_top[], IST_DF/NMI/MC order) and GDT, loads
 * both and reloads the segment registers. */
static void gdt_setup(unsigned index, const uint64_t ist_top[IST_COUNT])
{
	struct tss *t = &tss[index];
	uint64_t *g = gdt[index];
	uint64_t base = (uint64_t)(uintptr_t)t;
	uint64_t limit = sizeof(*t) - 1;

	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < IST_COUNT; i++) {
		t->ist[i] = ist_top[i]; /* ist[n - 1] is IST n: IST_DF, IST_NMI, IST_MC are 1, 2, 3 */
		ist_tops[index][i] = ist_top[i];
	}
	t->iomap_base = sizeof(*t); /* no I/O permission bitmap: ring 3 gets no ports */

	g[0] = 0;
	g[GDT_KERNEL_CS / 8] = SEG_KERNEL_CODE64;
	g[GDT_KERNEL_DS / 8] = SEG_KERNEL_DATA;
	g[GDT_USER32_CS / 8] = 0; /* no 32-bit user code: compatibility mode cannot be entered */
	g[GDT_USER_DS / 8] = SEG_USER_DATA;
	g[GDT_USER_CS / 8] = SEG_USER_CODE64;
	/* 64-bit TSS descriptor: type 9 (available TSS), present, 16 bytes. */
	g[GDT_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | ((limit >> 16 & 0xf) << 48) |
			 ((base >> 24 & 0xff) << 56);
	g[GDT_TSS / 8 + 1] = base >> 32;

	struct gdt_ptr p = { sizeof(gdt[index]) - 1, (uint64_t)(uintptr_t)g };
	__asm__ __volatile__("lgdt %0\n\t"
			     "pushq %1\n\t"
			     "leaq 1f(%%rip), %%rax\n\t"
			     "pushq %%rax\n\t"
			     "lretq\n"
			     "1:\n\t"
			     "movl %2, %%eax\n\t"
			     "movl %%eax, %%ds\n\t"
			     "movl %%eax, %%es\n\t"
			     "movl %%eax, %%ss\n\t"
			     "xorl %%eax, %%eax\n\t"
			     "movl %%eax, %%fs\n\t"
			     "movl %%eax, %%gs\n\t"
			     "ltr %w3"
			     :
			     : "m"(p), "i"(GDT_KERNEL_CS), "i"(GDT_KERNEL_DS), "r"((uint16_t)GDT_TSS)
			     : "rax", "memory");
}

void gdt_init(void)
{
	uint64_t top[IST_COUNT];

	for (unsigned i = 0; i < IST_COUNT; i++)
		top[i] = (uint64_t)(uintptr_t)(boot_ist_stacks[i] + IST_STACK_SIZE);
	gdt_setup(0, top);
}

void gdt_init_ap(unsigned index, const uint64_t ist_top[IST_COUNT])
{
	KASSERT(index > 0 && index < SPIN_MAX_CPUS);
	gdt_setup(index, ist_top);
}
