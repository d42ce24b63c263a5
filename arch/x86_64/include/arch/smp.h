/* SPDX-License-Identifier: MIT */
/*
 * Starting the other CPUs (SPEC §11, docs/smp.md). arch finds them (ACPI MADT) and starts
 * them (INIT-SIPI-SIPI through a real-mode trampoline below 1 MiB); the kernel gives each
 * its stacks and the function it runs (kernel/smp.c).
 */
#ifndef ARCH_SMP_H
#define ARCH_SMP_H

#include <arch/gdt.h>

/*
 * The trampoline's pages: SMP_TRAMPOLINE_PA is where the application processors begin (the
 * SIPI vector is its page number), followed by the three pages of their temporary page
 * tables. They lie in the first MiB, which bootmem claims for good at boot (BOOTMEM_RESERVED,
 * mm/bootmem.c): the frame allocators never hand them out.
 */
#define SMP_TRAMPOLINE_PA    0x8000
#define SMP_TRAMPOLINE_PAGES 4

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>

struct boot_info;

/*
 * Reads the ACPI MADT through the loader's RSDP copy and keeps the list of CPUs for
 * smp_start_cpus; logs "smp: MADT lists N CPUs (APIC ids ...)". Without ACPI or a MADT the
 * list is the boot CPU alone (and says so). Call once, while the early tables are live
 * (before kspace_init): the ACPI tables are read through them (arch/acpi.h).
 */
void smp_discover(const struct boot_info *bi);
/* How many CPUs the list holds (at least 1: the boot CPU). */
unsigned smp_cpus_listed(void);

/* What a CPU runs on: its kernel stack (16-byte aligned top) and its IST stacks
 * (IST_STACK_SIZE each, in IST_DF, IST_NMI, IST_MC order). */
struct smp_cpu_stacks {
	uint64_t stack_top;
	uint64_t ist_top[IST_COUNT];
};

/*
 * Starts the listed CPUs but this one, one after the other, until `max_cpus` run or the
 * list ends. The i-th CPU to answer becomes CPU i (cpu_at(i)) and runs on stacks[i]
 * (stacks[0] is not used; the array has max_cpus entries). Each one sets itself up as the
 * boot CPU did (GDT and TSS, IDT, GS base, SYSCALL, cpu_init, FPU, local APIC and its timer
 * at the boot CPU's tick) and calls ap_main() with interrupts off; ap_main never returns.
 * A CPU that does not answer within 100 ms is logged and left out. Logs a line per CPU
 * and "smp: N CPUs online"; returns cpu_count(). Call once, from the boot CPU with
 * interrupts off, after the local APIC is set up (timer_init) and with mm up (the
 * temporary tables copy the kernel's upper half, which must not gain top-level entries
 * while CPUs start).
 */
unsigned smp_start_cpus(const struct smp_cpu_stacks *stacks, unsigned max_cpus, void (*ap_main)(void));

#endif /* __ASSEMBLER__ */
#endif
