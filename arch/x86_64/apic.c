// SPDX-License-Identifier: MIT
#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/io.h>
#include <arch/msr.h>
#include <arch/time.h>
#include <knmm/log.h>

#define APIC_ID         0x020
#define APIC_VERSION    0x030
#define APIC_TPR        0x080
#define APIC_EOI        0x0b0
#define APIC_SVR        0x0f0
#define APIC_LVT_TIMER  0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR  0x390
#define APIC_TIMER_DIV  0x3e0

#define SVR_ENABLE   (1u << 8)
#define LVT_MASKED   (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define DIV_BY_16    0x3

static volatile uint32_t *apic;

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

uint32_t apic_version(void) { return rd(APIC_VERSION); }

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
	wr(APIC_TIMER_INIT, 0);
	wr(APIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	wr(APIC_TIMER_INIT, (uint32_t)count);
	return (uint32_t)count;
}
