// SPDX-License-Identifier: MIT
#include <arch/cpu.h>
#include <arch/io.h>
#include <arch/time.h>
#include <knmm/log.h>

#define PIT_CH2      0x42
#define PIT_CMD      0x43
#define PIT_GATE     0x61
#define PIT_HZ       1193182u
#define CALIBRATE_MS 2u

uint64_t tsc_khz;

void tsc_calibrate(void)
{
	const uint16_t count = (uint16_t)(PIT_HZ * CALIBRATE_MS / 1000);
	uint8_t gate = inb(PIT_GATE);

	outb(PIT_GATE, (uint8_t)((gate & ~0x02) | 0x01)); /* speaker off, channel 2 gate on */
	outb(PIT_CMD, 0xb0);                              /* ch 2, lo/hi byte, mode 0 */
	outb(PIT_CH2, (uint8_t)count);
	outb(PIT_CH2, (uint8_t)(count >> 8));
	gate = inb(PIT_GATE);
	outb(PIT_GATE, (uint8_t)(gate & ~0x01)); /* a gate edge restarts the count */
	outb(PIT_GATE, (uint8_t)(gate | 0x01));

	uint64_t t0 = rdtsc();
	uint64_t spins = 0;
	while (!(inb(PIT_GATE) & 0x20)) { /* OUT2 rises at terminal count */
		if (++spins > 100000000ull)
			break;
	}
	uint64_t t1 = rdtsc();
	outb(PIT_GATE, gate & ~0x03);

	tsc_khz = (t1 - t0) / CALIBRATE_MS;
	if (spins > 100000000ull || tsc_khz == 0) {
		tsc_khz = 1000000; /* assume 1 GHz rather than divide by zero */
		pr_warn("tsc: PIT calibration failed, assuming 1 GHz");
	}
}

uint64_t tsc_to_ns(uint64_t ticks)
{
	if (!tsc_khz)
		return 0;
	/* ms * 10^6 plus the remainder, without 128-bit division (no libgcc here) */
	return ticks / tsc_khz * 1000000u + ticks % tsc_khz * 1000000u / tsc_khz;
}

uint64_t clock_ns(void) { return tsc_to_ns(rdtsc() - boot_entry_tsc); }
