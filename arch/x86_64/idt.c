// SPDX-License-Identifier: MIT
/* The IDT: an interrupt gate for every vector, each pointing at its isr.S stub (asm.h); #DF,
 * NMI and #MC switch to their IST stacks (gdt.c, each CPU's own). One table for all CPUs. */
#include <arch/gdt.h>
#include <arch/trap.h>
#include "asm.h"
#include "smp_internal.h"

struct idt_entry {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __packed;

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __packed;

#define IDT_INTERRUPT_GATE 0x8e /* present, DPL 0, 64-bit interrupt gate (IF cleared) */

static struct idt_entry idt[NR_VECTORS] __aligned(16);

static void set_gate(unsigned vec, uint64_t handler, unsigned ist)
{
	idt[vec] = (struct idt_entry){
		.offset_lo = (uint16_t)handler,
		.selector = GDT_KERNEL_CS,
		.ist = (uint8_t)ist,
		.type_attr = IDT_INTERRUPT_GATE,
		.offset_mid = (uint16_t)(handler >> 16),
		.offset_hi = (uint32_t)(handler >> 32),
	};
}

void idt_init(void)
{
	for (unsigned v = 0; v < NR_VECTORS; v++) {
		unsigned ist = v == VEC_DF ? IST_DF : v == VEC_NMI ? IST_NMI : v == VEC_MC ? IST_MC : 0;
		set_gate(v, (uint64_t)(uintptr_t)(isr_stubs + v * ISR_STUB_SIZE), ist);
	}
	idt_load();
}

void idt_load(void)
{
	struct idt_ptr p = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ __volatile__("lidt %0" ::"m"(p));
}
