// SPDX-License-Identifier: MIT
/* Per-CPU data, SYSCALL setup and FPU state. */
#include <arch/cpu.h>
#include <arch/gdt.h>
#include <arch/msr.h>
#include <arch/percpu.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>
#include "asm.h"
#include "smp_internal.h"

static struct cpu cpus[SPIN_MAX_CPUS];
static unsigned nr_started = 1; /* (arch/x86_64/smp.c raises it: percpu_note_started) */

static uint8_t fpu_clean[FPU_STATE_SIZE] __aligned(16);

static unsigned cpu_id(void) { return this_cpu()->id; }
static bool cpu_in_interrupt(void) { return this_cpu()->irq_depth != 0; }

/* What the locks ask arch (knmm/spinlock.h): usable once GS points at a CPU's struct cpu. */
static const struct spin_cpu_ops lock_cpu_ops = { .cpu_id = cpu_id, .in_interrupt = cpu_in_interrupt };

unsigned cpu_count(void) { return READ_ONCE(nr_started); }

struct cpu *cpu_at(unsigned i)
{
	KASSERT(i < SPIN_MAX_CPUS);
	return &cpus[i];
}

void percpu_note_started(unsigned n) { WRITE_ONCE(nr_started, n); }

/* GS base -> CPU index's data, and the SYSCALL MSRs (every CPU has its own MSRs). */
static void percpu_load(unsigned index, uint32_t apic_id)
{
	struct cpu *c = &cpus[index];

	c->self = c;
	c->id = index;
	c->apic_id = apic_id;
	wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)c);
	wrmsr(MSR_KERNEL_GS_BASE, 0);

	/* SYSCALL lands in syscall_entry with CS/SS from STAR[47:32]; SYSRET takes user CS/SS
	 * from STAR[63:48] + 16 / + 8. Interrupts, traps, direction and AC are cleared. */
	wrmsr(MSR_STAR, ((uint64_t)GDT_USER32_CS << 48) | ((uint64_t)GDT_KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)syscall_entry);
	/* SYSCALL from compatibility mode: unreachable (the GDT has no 32-bit user code
	 * segment), but never a jump to address 0 in ring 0 either. */
	wrmsr(MSR_CSTAR, (uint64_t)(uintptr_t)syscall_entry);
	wrmsr(MSR_SFMASK, RFLAGS_IF | (1u << 8) /* TF */ | (1u << 10) /* DF */ | RFLAGS_AC | (1u << 14) /* NT */);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
}

void percpu_init(void)
{
	uint32_t a, b, c, d;

	cpuid(1, 0, &a, &b, &c, &d); /* EBX[31:24]: this CPU's initial APIC id */
	percpu_load(0, b >> 24);
	spin_set_cpu_ops(&lock_cpu_ops);
}

void percpu_init_ap(unsigned index, uint32_t apic_id) { percpu_load(index, apic_id); }

void fpu_init_cpu(void)
{
	write_cr0((read_cr0() & ~(uint64_t)CR0_EM) | CR0_MP | CR0_NE);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
	__asm__ __volatile__("fninit" ::: "memory");
	uint32_t mxcsr = 0x1f80; /* all SIMD exceptions masked, round to nearest */
	__asm__ __volatile__("ldmxcsr %0" ::"m"(mxcsr));
}

void fpu_init(void)
{
	fpu_init_cpu();
	fpu_save(fpu_clean);
}

void fpu_init_state(void *area) { memcpy(area, fpu_clean, FPU_STATE_SIZE); }
