/* SPDX-License-Identifier: MIT */
/*
 * ACPI, as far as starting CPUs needs it: RSDP -> RSDT/XSDT -> MADT, and the processors the
 * MADT lists (docs/smp.md).
 */
#ifndef ARCH_ACPI_H
#define ARCH_ACPI_H

#include <knmm/compiler.h>
#include <knmm/spinlock.h>

/* What the MADT says about the processors (acpi_find_cpus). */
struct acpi_cpus {
	unsigned n;                      /* usable entries in apic_id[] */
	unsigned skipped;                /* enabled entries left out: past max, or an APIC id above 254 */
	uint32_t apic_id[SPIN_MAX_CPUS]; /* in MADT order */
	uint64_t lapic_pa;               /* the MADT's local APIC address (0: no MADT) */
};

/*
 * Finds the MADT from a copy of the RSDP (rsdp, len bytes: the loader's, boot_info) and
 * lists the processors it calls enabled or online-capable: Local APIC entries (type 0) and
 * Local x2APIC entries (type 9), at most `max`. Every table is checksum-verified; a bad or
 * missing one means no list (false, with a log line saying why).
 *
 * The tables are read through phys_to_virt: call it while the early tables are live (they
 * map the first 4 GiB at the direct-map base, whatever the memory map says). Firmware puts
 * the tables in ACPI or plain reserved memory, which the kernel's own direct map leaves
 * out; a table above 4 GiB is refused with a log line.
 */
bool acpi_find_cpus(const uint8_t *rsdp, unsigned len, unsigned max, struct acpi_cpus *out);

#endif
