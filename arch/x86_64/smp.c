// SPDX-License-Identifier: MIT
/*
 * Finding the other CPUs (ACPI MADT) and starting them (INIT-SIPI-SIPI, SDM Vol. 3A 8.4.4
 * and the MP specification's B.4): docs/smp.md.
 *
 * One CPU is started at a time. The boot CPU fills the trampoline's slots (the new CPU's
 * index, stack, the tables), sends INIT, waits 10 ms, sends a start-up IPI, and a second one
 * after 200 us if the CPU has not answered yet; then waits up to 100 ms for it to say it is
 * alive (ap_alive). Only then are the slots rewritten for the next one.
 */
#include <arch/acpi.h>
#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/percpu.h>
#include <arch/pt.h>
#include <arch/pte.h>
#include <arch/smp.h>
#include <arch/time.h>
#include <arch/trap.h>
#include <knmm/align.h>
#include <knmm/bootinfo.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include "smp_internal.h"

#define INIT_WAIT_US   10000  /* INIT to the first start-up IPI */
#define SIPI_WAIT_US   200    /* between the two start-up IPIs */
#define ANSWER_WAIT_US 100000 /* from the first start-up IPI to "alive" */

/* The temporary tables, in the pages after the trampoline's. */
#define TRAMP_PML4_PA (SMP_TRAMPOLINE_PA + 1 * PAGE_SIZE)
#define TRAMP_PDPT_PA (SMP_TRAMPOLINE_PA + 2 * PAGE_SIZE)
#define TRAMP_PD_PA   (SMP_TRAMPOLINE_PA + 3 * PAGE_SIZE)

static struct acpi_cpus listed; /* the MADT's CPUs; after smp_discover the boot CPU is first */
static const struct smp_cpu_stacks *ap_stacks;
static void (*ap_main_fn)(void);
static volatile bool ap_alive; /* set by the CPU being started, cleared by the boot CPU */
volatile bool smp_stopping;

static void log_listed(void)
{
	char ids[SPIN_MAX_CPUS * 4 + 1];
	int n = 0;

	ids[0] = '\0';
	for (unsigned i = 0; i < listed.n; i++)
		n += ksnprintf(ids + n, sizeof(ids) - (size_t)n, "%s%u", i ? " " : "", listed.apic_id[i]);
	pr_info("smp: MADT lists %u CPU%s (APIC ids %s)", listed.n, listed.n == 1 ? "" : "s", ids);
	if (listed.skipped)
		pr_warn("smp: %u more CPUs left out (past %u CPUs, or an x2APIC id above 254)", listed.skipped,
			SPIN_MAX_CPUS);
}

void smp_discover(const struct boot_info *bi)
{
	uint32_t a, b, c, d;

	cpuid(1, 0, &a, &b, &c, &d);
	uint32_t self = b >> 24; /* the boot CPU's initial APIC id */

	if (!acpi_find_cpus(bi->acpi_rsdp, bi->acpi_rsdp_len, SPIN_MAX_CPUS, &listed)) {
		listed.n = 1;
		listed.apic_id[0] = self;
		return;
	}
	log_listed();
	/* The boot CPU first: it is CPU 0 whatever the MADT's order. */
	unsigned i = 0;
	while (i < listed.n && listed.apic_id[i] != self)
		i++;
	if (i == listed.n) {
		pr_warn("smp: the boot CPU (APIC id %u) is not in the MADT; starting no other", self);
		listed.n = 1;
		listed.apic_id[0] = self;
		return;
	}
	for (; i > 0; i--)
		listed.apic_id[i] = listed.apic_id[i - 1];
	listed.apic_id[0] = self;
}

unsigned smp_cpus_listed(void) { return listed.n ? listed.n : 1; }

/* Copies the trampoline and builds the temporary tables: PML4[0] identity-maps the first
 * 2 MiB (one large page: the trampoline's code and slots), PML4[256..511] are the kernel's
 * own entries, so the jump to smp_ap_entry64 lands in the kernel's half. */
static void trampoline_install(void)
{
	size_t size = (size_t)(smp_trampoline_end - smp_trampoline_start);
	uint64_t *pml4 = phys_to_virt(TRAMP_PML4_PA), *pdpt = phys_to_virt(TRAMP_PDPT_PA),
		 *pd = phys_to_virt(TRAMP_PD_PA);
	const uint64_t *kernel_pml4 = phys_to_virt(kernel_pt_root.pml4_pa);

	KASSERT(size <= PAGE_SIZE);
	memcpy(phys_to_virt(SMP_TRAMPOLINE_PA), smp_trampoline_start, size);
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	memset(pd, 0, PAGE_SIZE);
	pml4[0] = TRAMP_PDPT_PA | PTE_P | PTE_RW;
	pdpt[0] = TRAMP_PD_PA | PTE_P | PTE_RW;
	pd[0] = 0 | PTE_P | PTE_RW | PTE_PS;
	for (unsigned i = PT_ENTRIES / 2; i < PT_ENTRIES; i++)
		pml4[i] = kernel_pml4[i];
}

/* Fills the trampoline's slots for CPU `index`. */
static void trampoline_prepare(unsigned index)
{
	uint8_t *t = phys_to_virt(SMP_TRAMPOLINE_PA);

	*(uint64_t *)(void *)(t + TRAMP_CR3) = TRAMP_PML4_PA;
	*(uint64_t *)(void *)(t + TRAMP_KERNEL_CR3) = kernel_pt_root.pml4_pa;
	*(uint64_t *)(void *)(t + TRAMP_ENTRY) = (uint64_t)(uintptr_t)smp_ap_entry64;
	*(uint64_t *)(void *)(t + TRAMP_STACK) = ap_stacks[index].stack_top;
	*(uint64_t *)(void *)(t + TRAMP_INDEX) = index;
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* all of it before the IPI */
}

static uint64_t us_to_tsc(uint64_t us) { return us * tsc_khz / 1000; }

/* Spins (with pause: under -icount QEMU runs one CPU at a time) until the CPU being started
 * says it is alive or `us` microseconds have passed since `t0`. */
static bool wait_alive(uint64_t t0, uint64_t us)
{
	uint64_t ticks = us_to_tsc(us);

	while (!__atomic_load_n(&ap_alive, __ATOMIC_ACQUIRE)) {
		if (rdtsc() - t0 >= ticks)
			return false;
		cpu_relax();
	}
	return true;
}

static void delay_us(uint64_t us) { (void)wait_alive(rdtsc(), us); }

/* Starts the CPU with this APIC id as CPU `index`; true once it is alive. */
static bool start_one(unsigned index, uint32_t apic_id)
{
	trampoline_prepare(index);
	__atomic_store_n(&ap_alive, false, __ATOMIC_RELEASE);

	apic_send_init(apic_id);
	delay_us(INIT_WAIT_US);
	apic_send_startup(apic_id, SMP_TRAMPOLINE_PA);
	uint64_t t0 = rdtsc();
	if (!wait_alive(t0, SIPI_WAIT_US))
		apic_send_startup(apic_id, SMP_TRAMPOLINE_PA);
	return wait_alive(t0, ANSWER_WAIT_US);
}

unsigned smp_start_cpus(const struct smp_cpu_stacks *stacks, unsigned max_cpus, void (*ap_main)(void))
{
	unsigned n = 1;

	KASSERT(cpu_count() == 1 && !irq_enabled() && max_cpus <= SPIN_MAX_CPUS);
	ap_stacks = stacks;
	ap_main_fn = ap_main;
	if (listed.n > 1 && max_cpus > 1)
		trampoline_install();
	for (unsigned i = 1; i < listed.n && n < max_cpus; i++) {
		uint32_t id = listed.apic_id[i];
		if (!start_one(n, id)) {
			pr_warn("smp: the CPU with APIC id %u did not answer within %u ms; going on without it", id,
				ANSWER_WAIT_US / 1000);
			continue;
		}
		percpu_note_started(++n);
		pr_info("smp: CPU %u up (APIC id %u)", n - 1, id);
	}
	pr_info("smp: %u CPU%s online", n, n == 1 ? "" : "s");
	return n;
}

/*
 * The new CPU, from smp_ap_entry64: on its own stack, the kernel's tables, interrupts off.
 * It sets itself up as kmain set up the boot CPU, says it is alive, and runs ap_main.
 */
__noreturn void smp_ap_start(unsigned index);
__noreturn void smp_ap_start(unsigned index)
{
	gdt_init_ap(index, ap_stacks[index].ist_top);
	idt_load();
	percpu_init_ap(index, apic_id());
	cpu_init();
	fpu_init_cpu();
	apic_init_ap();
	apic_timer_start_ap();
	__atomic_store_n(&ap_alive, true, __ATOMIC_RELEASE);
	ap_main_fn();
	panic("smp: CPU %u: its main function returned", index);
}
