// SPDX-License-Identifier: MIT
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/pt.h>
#include <knmm/log.h>
#include <knmm/printf.h>
#include <knmm/string.h>

struct cpu_features cpu_features;

#define BIT(n) (1u << (n))

void cpu_detect(void)
{
	struct cpu_features *f = &cpu_features;
	uint32_t a, b, c, d, max, maxext;

	cpuid(0, 0, &max, &b, &c, &d);
	memcpy(f->vendor + 0, &b, 4);
	memcpy(f->vendor + 4, &d, 4);
	memcpy(f->vendor + 8, &c, 4);
	f->vendor[12] = '\0';

	cpuid(1, 0, &a, &b, &c, &d);
	f->clflush = d & BIT(19);
	f->clflush_line = ((b >> 8) & 0xff) * 8;
	if (!f->clflush_line)
		f->clflush = false;
	f->pge = d & BIT(13);
	f->pat = d & BIT(16);
	f->apic = d & BIT(9);
	f->pcid = c & BIT(17);
	f->x2apic = c & BIT(21);
	f->tsc_deadline = c & BIT(24);
	f->hypervisor = c & BIT(31);

	if (max >= 7) {
		cpuid(7, 0, &a, &b, &c, &d);
		f->fsgsbase = b & BIT(0);
		f->smep = b & BIT(7);
		f->erms = b & BIT(9);
		f->invpcid = b & BIT(10);
		f->smap = b & BIT(20);
	}

	cpuid(0x80000000, 0, &maxext, &b, &c, &d);
	if (maxext >= 0x80000001) {
		cpuid(0x80000001, 0, &a, &b, &c, &d);
		f->syscall = d & BIT(11);
		f->nx = d & BIT(20);
		f->page_1g = d & BIT(26);
	}
	if (maxext >= 0x80000004) {
		for (uint32_t leaf = 0; leaf < 3; leaf++) {
			uint32_t w[4];
			cpuid(0x80000002 + leaf, 0, &w[0], &w[1], &w[2], &w[3]);
			memcpy(f->brand + leaf * 16, w, sizeof(w));
		}
		f->brand[48] = '\0';
	}
	f->phys_bits = 36;
	f->virt_bits = 48;
	if (maxext >= 0x80000008) {
		cpuid(0x80000008, 0, &a, &b, &c, &d);
		f->phys_bits = a & 0xff;
		f->virt_bits = (a >> 8) & 0xff;
	}
}

static void pat_init(void)
{
	bool irq = irq_save();

	/* SDM 11.12.4: flush caches and TLBs around a PAT change. */
	__asm__ __volatile__("wbinvd" ::: "memory");
	wrmsr(MSR_PAT, PAT_MSR_VALUE);
	__asm__ __volatile__("wbinvd" ::: "memory");
	tlb_flush_all();
	irq_restore(irq);
}

void cpu_init(void)
{
	uint64_t cr4 = read_cr4();

	/* boot/entry.S turned on EFER.NXE and CR0.WP already; make sure they stay on. */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	write_cr0(read_cr0() | CR0_WP);
	if (cpu_features.pge)
		cr4 |= CR4_PGE;
	if (cpu_features.smep)
		cr4 |= CR4_SMEP;
	if (cpu_features.smap)
		cr4 |= CR4_SMAP;
	write_cr4(cr4);
	if (cpu_features.pat)
		pat_init();
}

void cpu_log_features(void)
{
	const struct cpu_features *f = &cpu_features;
	char buf[160];
	static const struct {
		const char *name;
		size_t off;
	} names[] = {
#define F(x) { #x, offsetof(struct cpu_features, x) }
		F(nx),
		F(smep),
		F(smap),
		F(pcid),
		F(invpcid),
		F(erms),
		F(pat),
		F(pge),
		F(fsgsbase),
		F(apic),
		F(x2apic),
		F(tsc_deadline),
		F(syscall),
		F(hypervisor),
#undef F
		{ "1g-pages", offsetof(struct cpu_features, page_1g) },
	};
	int n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (*(const bool *)((const char *)f + names[i].off))
			n += ksnprintf(buf + n, sizeof(buf) - (size_t)n, " %s", names[i].name);
	const char *brand = f->brand;
	while (*brand == ' ')
		brand++;
	pr_info("cpu: %s \"%s\", %u-bit physical, %u-bit virtual addresses", f->vendor, brand, f->phys_bits,
		f->virt_bits);
	pr_info("cpu: features:%s", buf);
	pr_info("cpu: enabled: NX%s%s%s%s, PAT with WB WT UC- UC WC", (read_cr4() & CR4_SMEP) ? " SMEP" : "",
		(read_cr4() & CR4_SMAP) ? " SMAP" : "", (read_cr4() & CR4_PGE) ? " global-pages" : "",
		(read_cr0() & CR0_WP) ? " WP" : "");
}

void cache_flush_range(const void *va, uint64_t size)
{
	if (!cpu_features.clflush) {
		cache_flush_all();
		return;
	}
	uintptr_t line = cpu_features.clflush_line, a = (uintptr_t)va & ~(line - 1), end = (uintptr_t)va + size;
	__asm__ __volatile__("mfence" ::: "memory");
	for (; a < end; a += line)
		__asm__ __volatile__("clflush (%0)" ::"r"(a) : "memory");
	__asm__ __volatile__("mfence" ::: "memory");
}
