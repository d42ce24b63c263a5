// SPDX-License-Identifier: MIT
/*
 * The MADT's list of processors (ACPI 6.5 §5.2.5 RSDP, §5.2.7 RSDT, §5.2.8 XSDT, §5.2.12
 * MADT). Boot-only: runs once, on the early tables (arch/acpi.h).
 */
#include <arch/acpi.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/string.h>

struct rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* of the first 20 bytes */
	char oem_id[6];
	uint8_t revision; /* 0: ACPI 1.0 (RSDT only), 2: 2.0+ */
	uint32_t rsdt_pa;
	uint32_t length; /* 2.0+: the whole structure */
	uint64_t xsdt_pa;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __packed;

struct sdt_header {
	char signature[4];
	uint32_t length; /* the whole table, header included */
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __packed;

struct madt {
	struct sdt_header h;
	uint32_t lapic_pa;
	uint32_t flags;
	/* entries follow: type, length, ... */
} __packed;

#define MADT_LAPIC           0 /* processor local APIC: uid, apic id (8 bits), flags */
#define MADT_X2APIC          9 /* processor local x2APIC: reserved, x2apic id, flags, uid */
#define LAPIC_ENABLED        (1u << 0)
#define LAPIC_ONLINE_CAPABLE (1u << 1) /* ACPI 6.3: may be enabled later */
#define XAPIC_MAX_ID         0xfe      /* 0xff is the broadcast destination */

/* The early tables map [0, 4 GiB) at the direct-map base. */
#define EARLY_MAP_END GiB(4)

static bool sum_ok(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum == 0;
}

/* The table at pa if it is reachable, carries `sig` (NULL: any) and sums to 0; else NULL. */
static const struct sdt_header *table_at(uint64_t pa, const char *sig)
{
	if (pa == 0 || pa >= EARLY_MAP_END - sizeof(struct sdt_header)) {
		pr_warn("smp: ACPI table at %#llx is outside the first 4 GiB, which is all the boot can read",
			(unsigned long long)pa);
		return NULL;
	}
	const struct sdt_header *h = phys_to_virt(pa);
	if (sig && memcmp(h->signature, sig, 4) != 0)
		return NULL;
	if (h->length < sizeof(*h) || pa + h->length > EARLY_MAP_END) {
		pr_warn("smp: ACPI table %.4s at %#llx: bad length %u", h->signature, (unsigned long long)pa,
			h->length);
		return NULL;
	}
	if (!sum_ok(h, h->length)) {
		pr_warn("smp: ACPI table %.4s at %#llx: bad checksum", h->signature, (unsigned long long)pa);
		return NULL;
	}
	return h;
}

/* The MADT through the XSDT (64-bit entries) or the RSDT (32-bit entries). */
static const struct madt *find_madt(const struct rsdp *r, unsigned len)
{
	bool xsdt = r->revision >= 2 && len >= sizeof(*r) && r->length >= sizeof(*r) && sum_ok(r, sizeof(*r)) &&
		    r->xsdt_pa != 0;
	const struct sdt_header *root = xsdt ? table_at(r->xsdt_pa, "XSDT") : table_at(r->rsdt_pa, "RSDT");
	if (!root)
		return NULL;
	unsigned esize = xsdt ? 8 : 4;
	const uint8_t *e = (const uint8_t *)(root + 1);
	unsigned count = (root->length - (unsigned)sizeof(*root)) / esize;
	for (unsigned i = 0; i < count; i++) {
		uint64_t pa = 0;
		memcpy(&pa, e + i * esize, esize); /* (unaligned in the RSDT: 36-byte header) */
		const struct sdt_header *h = table_at(pa, NULL);
		if (h && memcmp(h->signature, "APIC", 4) == 0) {
			pr_debug("smp: ACPI %s at %#llx, MADT at %#llx (%u bytes)", xsdt ? "XSDT" : "RSDT",
				 (unsigned long long)(xsdt ? r->xsdt_pa : r->rsdt_pa), (unsigned long long)pa,
				 h->length);
			return h->length >= sizeof(struct madt) ? (const struct madt *)h : NULL;
		}
	}
	return NULL;
}

static void add_cpu(struct acpi_cpus *out, unsigned max, uint32_t apic_id, uint32_t flags)
{
	if (!(flags & (LAPIC_ENABLED | LAPIC_ONLINE_CAPABLE)))
		return;
	for (unsigned i = 0; i < out->n; i++)
		if (out->apic_id[i] == apic_id)
			return; /* listed twice (as LAPIC and x2APIC): once is enough */
	/* The kernel drives the APIC in xAPIC mode: 8-bit destinations, 0xff is broadcast. */
	if (out->n == max || apic_id > XAPIC_MAX_ID) {
		out->skipped++;
		return;
	}
	out->apic_id[out->n++] = apic_id;
}

bool acpi_find_cpus(const uint8_t *rsdp, unsigned len, unsigned max, struct acpi_cpus *out)
{
	const struct rsdp *r = (const struct rsdp *)(const void *)rsdp;

	memset(out, 0, sizeof(*out));
	if (max > SPIN_MAX_CPUS)
		max = SPIN_MAX_CPUS;
	if (len < 20 || memcmp(r->signature, "RSD PTR ", 8) != 0 || !sum_ok(r, 20)) {
		pr_info("smp: no ACPI RSDP from the loader: one CPU");
		return false;
	}
	const struct madt *m = find_madt(r, len);
	if (!m) {
		pr_info("smp: no usable ACPI MADT: one CPU");
		return false;
	}
	out->lapic_pa = m->lapic_pa;
	const uint8_t *p = (const uint8_t *)(m + 1), *end = (const uint8_t *)m + m->h.length;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		uint32_t id, flags;
		if (p[0] == MADT_LAPIC && p[1] >= 8) {
			memcpy(&flags, p + 4, 4);
			add_cpu(out, max, p[3], flags);
		} else if (p[0] == MADT_X2APIC && p[1] >= 16) {
			memcpy(&id, p + 4, 4);
			memcpy(&flags, p + 8, 4);
			add_cpu(out, max, id, flags);
		}
		p += p[1];
	}
	return out->n > 0;
}
