// SPDX-License-Identifier: MIT
/* Per-CPU data, SYSCALL setup and FPU state. */
#include <arch/cpu.h>
#include <arch/gdt.h>
#include <arch/msr.h>
#include <arch/percpu.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>
#include "asm.h"

struct cpu cpu0;

static uint8_t fpu_clean[FPU_STATE_SIZE] __aligned(16);

static unsigned cpu_id(void) { return this_cpu()->id; }
static bool cpu_in_interrupt(void) { return this_cpu()->irq_depth != 0; }

/* What the locks ask arch (knmm/spinlock.h): usable from here on, GS points at cpu0. */
static const struct spin_cpu_ops lock_cpu_ops = { .cpu_id = cpu_id, .in_interrupt = cpu_in_interrupt };

void percpu_init(void)
{
	cpu0.self = &cpu0;
	wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)&cpu0);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
	spin_set_cpu_ops(&lock_cpu_ops);

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

void fpu_init(void)
{
	write_cr0((read_cr0() & ~(uint64_t)CR0_EM) | CR0_MP | CR0_NE);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
	__asm__ __volatile__("fninit" ::: "memory");
	uint32_t mxcsr = 0x1f80; /* all SIMD exceptions masked, round to nearest */
	__asm__ __volatile__("ldmxcsr %0" ::"m"(mxcsr));
	fpu_save(fpu_clean);
}

void fpu_init_state(void *area) { memcpy(area, fpu_clean, FPU_STATE_SIZE); }
