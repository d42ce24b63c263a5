// SPDX-License-Identifier: MIT
/*
 * The local APIC: the periodic timer, and the interrupts between CPUs (the ICR). Driven in
 * xAPIC mode through its registers, which every CPU sees at the same address (each its own).
 */
#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/io.h>
#include <arch/msr.h>
#include <arch/percpu.h>
#include <arch/time.h>
#include <arch/trap.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include "smp_internal.h"

#define APIC_ID         0x020
#define APIC_VERSION    0x030
#define APIC_TPR        0x080
#define APIC_EOI        0x0b0
#define APIC_SVR        0x0f0
#define APIC_ICR_LO     0x300 /* writing it sends the interrupt */
#define APIC_ICR_HI     0x310 /* destination APIC id in bits 31:24 */
#define APIC_LVT_TIMER  0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR  0x390
#define APIC_TIMER_DIV  0x3e0

#define SVR_ENABLE   (1u << 8)
#define LVT_MASKED   (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define DIV_BY_16    0x3

/* ICR low word (SDM Vol. 3A 11.6.1). */
#define ICR_FIXED        (0u << 8)
#define ICR_NMI          (4u << 8)
#define ICR_INIT         (5u << 8)
#define ICR_STARTUP      (6u << 8)
#define ICR_BUSY         (1u << 12) /* delivery status: send pending */
#define ICR_ASSERT       (1u << 14)
#define ICR_LEVEL        (1u << 15)
#define ICR_ALL_BUT_SELF (3u << 18) /* destination shorthand */

static volatile uint32_t *apic;
static uint32_t timer_count; /* the boot CPU's measured count per tick: every CPU's */

static inline uint32_t rd(unsigned reg) { return apic[reg / 4]; }
static inline void wr(unsigned reg, uint32_t v) { apic[reg / 4] = v; }

uint64_t apic_phys_base(void) { return rdmsr(MSR_APIC_BASE) & 0x000ffffffffff000ull; }

static void pic_disable(void)
{
	/* Remap the 8259s above the exceptions (vectors 0x20.., 0x28..), then mask them all. */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20);
	outb(0xa1, 0x28);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void apic_init(volatile uint32_t *regs)
{
	apic = regs;
	pic_disable();
	wr(APIC_TPR, 0);
	wr(APIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
}

void apic_init_ap(void)
{
	wr(APIC_TPR, 0);
	wr(APIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
}

uint32_t apic_version(void) { return rd(APIC_VERSION); }

uint32_t apic_id(void) { return rd(APIC_ID) >> 24; }

void apic_eoi(void) { wr(APIC_EOI, 0); }

uint32_t apic_timer_start(unsigned ms)
{
	/* Count down from the top for one millisecond of TSC time (the TSC was calibrated
	 * against the PIT), then program `ms` of those counts. */
	wr(APIC_TIMER_DIV, DIV_BY_16);
	wr(APIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	wr(APIC_TIMER_INIT, 0xffffffffu);
	uint64_t t0 = rdtsc();
	while (rdtsc() - t0 < tsc_khz)
		cpu_relax();
	uint64_t per_ms = 0xffffffffu - rd(APIC_TIMER_CUR);
	uint64_t count = per_ms * ms;
	if (count == 0 || count > 0xffffffffu)
		count = count ? 0xffffffffu : 100000;
	timer_count = (uint32_t)count;
	apic_timer_start_ap();
	return timer_count;
}

void apic_timer_start_ap(void)
{
	wr(APIC_TIMER_DIV, DIV_BY_16);
	wr(APIC_TIMER_INIT, 0);
	wr(APIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	wr(APIC_TIMER_INIT, timer_count);
}

/* Waits until the local APIC has sent the last interrupt written to the ICR. */
static void icr_wait_idle(void)
{
	while (rd(APIC_ICR_LO) & ICR_BUSY)
		cpu_relax();
}

/* One write of the ICR: destination first (the low word's write sends), interrupts off so
 * that no handler on this CPU writes the ICR in between. */
static void icr_send(uint32_t dest_apic_id, uint32_t lo)
{
	bool irq = irq_save();

	icr_wait_idle();
	wr(APIC_ICR_HI, dest_apic_id << 24);
	wr(APIC_ICR_LO, lo);
	icr_wait_idle();
	irq_restore(irq);
}

void apic_send_init(uint32_t dest_apic_id)
{
	icr_send(dest_apic_id, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
	icr_send(dest_apic_id, ICR_INIT | ICR_LEVEL); /* de-assert (needed by old APICs only) */
}

void apic_send_startup(uint32_t dest_apic_id, uint64_t code_pa)
{
	icr_send(dest_apic_id, ICR_STARTUP | ICR_ASSERT | (uint32_t)(code_pa >> 12));
}

void apic_send_ipi(unsigned cpu_index, unsigned vector)
{
	KASSERT(cpu_index < cpu_count() && vector >= VEC_IRQ_BASE && vector < VEC_SPURIOUS);
	icr_send(cpu_at(cpu_index)->apic_id, ICR_FIXED | ICR_ASSERT | vector);
}

void apic_send_ipi_others(unsigned vector)
{
	KASSERT(vector >= VEC_IRQ_BASE && vector < VEC_SPURIOUS);
	if (cpu_count() > 1)
		icr_send(0, ICR_ALL_BUT_SELF | ICR_FIXED | ICR_ASSERT | vector);
}

void apic_send_nmi_others(void)
{
	/* Without the APIC mapped (a panic early in boot) there are no other CPUs to stop. */
	if (apic && cpu_count() > 1) {
		WRITE_ONCE(smp_stopping, true);
		icr_send(0, ICR_ALL_BUT_SELF | ICR_NMI | ICR_ASSERT);
	}
}
