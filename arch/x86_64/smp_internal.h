/* SPDX-License-Identifier: MIT */
/*
 * What starting CPUs (smp.c, trampoline.S) needs from the other arch files, and they from
 * it. Private to arch/x86_64.
 */
#ifndef ARCH_X86_64_SMP_INTERNAL_H
#define ARCH_X86_64_SMP_INTERNAL_H

/* Offsets in the trampoline page (trampoline.S) of what the boot CPU fills in before each
 * start-up IPI. Usable from assembly. */
#define TRAMP_GDT_PTR    0xf00 /* 2-byte limit, 4-byte base: the trampoline's GDT */
#define TRAMP_FAR32      0xf08 /* 4-byte offset, 2-byte selector: the jump to 32-bit code */
#define TRAMP_FAR64      0xf10 /* the same, to 64-bit code */
#define TRAMP_CR3        0xf18 /* the temporary PML4 (below 4 GiB) */
#define TRAMP_KERNEL_CR3 0xf20 /* the kernel's PML4 */
#define TRAMP_ENTRY      0xf28 /* kernel virtual address of smp_ap_entry64 */
#define TRAMP_STACK      0xf30 /* the CPU's stack top */
#define TRAMP_INDEX      0xf38 /* the CPU's index */
#define TRAMP_GDT        0xf40 /* null, 32-bit code, data, 64-bit code */
#define TRAMP_SEL_CODE32 0x08
#define TRAMP_SEL_DATA   0x10
#define TRAMP_SEL_CODE64 0x18

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>
#include <arch/gdt.h>
#include <knmm/layout.h>

/* trampoline.S: the real-mode code, copied to SMP_TRAMPOLINE_PA. */
extern const char smp_trampoline_start[], smp_trampoline_end[];
/* trampoline.S: where the new CPU enters the kernel's half (rdi = its index). */
extern const char smp_ap_entry64[];

/* percpu.c: n CPUs have started. */
void percpu_note_started(unsigned n);
/* gdt.c: CPU index's GDT and TSS (with these IST stacks), loaded. */
void gdt_init_ap(unsigned index, const uint64_t ist_top[IST_COUNT]);
/* idt.c: loads the (shared) IDT. */
void idt_load(void);
/* apic.c: this CPU's APIC enabled like the boot CPU's; its timer at the boot CPU's tick. */
void apic_init_ap(void);
void apic_timer_start_ap(void);
/* apic.c: the start-up sequence's interrupts. */
void apic_send_init(uint32_t dest_apic_id);
void apic_send_startup(uint32_t dest_apic_id, uint64_t code_pa);
/* apic.c sets it before the panic's NMI to the others; trap.c halts a CPU that then takes an
 * NMI. */
extern volatile bool smp_stopping;

#endif /* __ASSEMBLER__ */
#endif
