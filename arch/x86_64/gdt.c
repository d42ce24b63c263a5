// SPDX-License-Identifier: MIT
/*
 * GDT and TSS. The TSS carries the ring-0 stack for entries from ring 3 and the IST stacks
 * that #DF, NMI and #MC always switch to, so that they run on a good stack even when the
 * current one is gone (a kernel stack overflow ends in #DF on IST_DF).
 */
#include <arch/gdt.h>
#include <arch/trap.h>
#include <knmm/string.h>

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

#define IST_STACK_SIZE 16384

static struct tss tss __aligned(16);
static uint8_t ist_stacks[3][IST_STACK_SIZE] __aligned(16);

/* Access byte and flags spelled out: P, DPL, S, type; L (64-bit code), G, D/B. */
#define SEG_KERNEL_CODE64 0x00af9a000000ffffull
#define SEG_KERNEL_DATA   0x00cf92000000ffffull
#define SEG_USER_DATA     0x00cff2000000ffffull
#define SEG_USER_CODE64   0x00affa000000ffffull

static uint64_t gdt[8] __aligned(16);

const char *ist_stack_name(uint64_t addr)
{
	static const char *const names[3] = { "double-fault IST stack", "NMI IST stack", "machine-check IST stack" };
	for (int i = 0; i < 3; i++)
		if (addr >= (uint64_t)(uintptr_t)ist_stacks[i] &&
		    addr < (uint64_t)(uintptr_t)ist_stacks[i] + IST_STACK_SIZE)
			return names[i];
	return NULL;
}

void tss_set_kernel_stack(uint64_t rsp0) { tss.rsp[0] = rsp0; }

void gdt_init(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss;
	uint64_t limit = sizeof(tss) - 1;

	memset(&tss, 0, sizeof(tss));
	tss.ist[IST_DF - 1] = (uint64_t)(uintptr_t)(ist_stacks[0] + IST_STACK_SIZE);
	tss.ist[IST_NMI - 1] = (uint64_t)(uintptr_t)(ist_stacks[1] + IST_STACK_SIZE);
	tss.ist[IST_MC - 1] = (uint64_t)(uintptr_t)(ist_stacks[2] + IST_STACK_SIZE);
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap: ring 3 gets no ports */

	gdt[0] = 0;
	gdt[GDT_KERNEL_CS / 8] = SEG_KERNEL_CODE64;
	gdt[GDT_KERNEL_DS / 8] = SEG_KERNEL_DATA;
	gdt[GDT_USER32_CS / 8] = 0; /* no 32-bit user code: compatibility mode cannot be entered */
	gdt[GDT_USER_DS / 8] = SEG_USER_DATA;
	gdt[GDT_USER_CS / 8] = SEG_USER_CODE64;
	/* 64-bit TSS descriptor: type 9 (available TSS), present, 16 bytes. */
	gdt[GDT_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			   ((limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
	gdt[GDT_TSS / 8 + 1] = base >> 32;

	struct gdt_ptr p = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
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
