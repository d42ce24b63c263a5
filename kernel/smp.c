// SPDX-License-Identifier: MIT
/*
 * Starting the other CPUs: the kernel's part (docs/smp.md). arch finds and starts them
 * (arch/smp.h); this file gives them memory, says what they run, and counts them.
 */
#include <arch/cpu.h>
#include <arch/gdt.h>
#include <arch/percpu.h>
#include <arch/pt.h>
#include <arch/smp.h>
#include <arch/time.h>
#include <knmm/align.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/spinlock.h>
#include <mm/bootmem.h>
#include <mm/mm.h>
#include <kernel/main.h>
#include <kernel/sched.h>
#include <kernel/smp.h>

#define ONLINE_WAIT_MS 100

static struct smp_cpu_stacks stacks[SPIN_MAX_CPUS];
static uint64_t online_mask = 1; /* bit i: CPU i is online (CPU 0 is the boot CPU) */

_Static_assert(SPIN_MAX_CPUS <= 64, "online_mask is one word");

bool smp_cpu_online(unsigned i)
{
	return i < SPIN_MAX_CPUS && (__atomic_load_n(&online_mask, __ATOMIC_ACQUIRE) >> i & 1);
}

/* What every other CPU runs once arch set it up (interrupts off, on stacks[i]): it marks
 * itself online, takes TLB shootdown requests from then on, and becomes a scheduler CPU whose
 * boot stack is its idle thread's. */
static __noreturn void smp_ap_main(void)
{
	unsigned i = this_cpu()->id;
	__atomic_fetch_or(&online_mask, 1ull << i, __ATOMIC_RELEASE);
	tlb_cpu_join();
	sched_cpu_start(stacks[i].stack_top - KSTACK_SIZE, KSTACK_SIZE);
}

/* The trampoline's pages are RAM (in an available range), inside the first MiB that bootmem
 * reserves for good, and hold nothing the loader left (information block, modules). */
static bool trampoline_pages_usable(const struct boot_info *bi)
{
	uint64_t base = SMP_TRAMPOLINE_PA, end = base + SMP_TRAMPOLINE_PAGES * PAGE_SIZE;
	bool ram = false, reserved = false;
	const struct bootmem_used *used;

	for (unsigned i = 0; i < bi->nr_mem; i++)
		if (bi->mem[i].type == BOOT_MEM_AVAILABLE && bi->mem[i].base <= base &&
		    bi->mem[i].base + bi->mem[i].size >= end)
			ram = true;
	for (unsigned i = 0, n = bootmem_used_ranges(&used); i < n; i++)
		if (used[i].use == BOOTMEM_RESERVED && used[i].base <= base && used[i].end >= end)
			reserved = true;
	bool loader = bi->info_start < end && bi->info_end > base;
	for (unsigned i = 0; i < bi->nr_modules; i++)
		loader |= bi->modules[i].start < end && bi->modules[i].end > base;
	if (!ram || !reserved || loader) {
		pr_warn("smp: the trampoline's pages %#llx-%#llx are %s: starting no other CPU",
			(unsigned long long)base, (unsigned long long)end - 1,
			!ram        ? "not RAM"
			: !reserved ? "not reserved at boot"
				    : "the loader's");
		return false;
	}
	return true;
}

/* A kernel stack (with its guard page) of `size` bytes named `name`: its top, or 0. */
static uint64_t stack_alloc(const char *name, uint64_t size)
{
	uint64_t base;

	if (kstack_alloc(name, size, &base) != rcOk)
		return 0;
	return base + size;
}

/* Stacks for CPU i: true if it has all of them. */
static bool stacks_alloc(unsigned i)
{
	static const char *const ist_names[IST_COUNT] = { "df", "nmi", "mc" };
	char name[16];

	ksnprintf(name, sizeof(name), "cpu%u", i);
	stacks[i].stack_top = stack_alloc(name, KSTACK_SIZE);
	for (unsigned k = 0; k < IST_COUNT; k++) {
		ksnprintf(name, sizeof(name), "cpu%u %s", i, ist_names[k]);
		stacks[i].ist_top[k] = stack_alloc(name, IST_STACK_SIZE);
	}
	if (!stacks[i].stack_top)
		return false;
	for (unsigned k = 0; k < IST_COUNT; k++)
		if (!stacks[i].ist_top[k])
			return false;
	return true;
}

static void stacks_free(unsigned i)
{
	if (stacks[i].stack_top)
		kstack_free(stacks[i].stack_top - KSTACK_SIZE, KSTACK_SIZE);
	for (unsigned k = 0; k < IST_COUNT; k++)
		if (stacks[i].ist_top[k])
			kstack_free(stacks[i].ist_top[k] - IST_STACK_SIZE, IST_STACK_SIZE);
	stacks[i] = (struct smp_cpu_stacks){ 0 };
}

void smp_boot(void)
{
	unsigned want = smp_cpus_listed(), n = 1;

	if (want > 1 && !trampoline_pages_usable(&boot_info))
		want = 1;
	for (unsigned i = 1; i < want; i++) {
		if (!stacks_alloc(i)) {
			pr_warn("smp: no memory for the stacks of CPU %u; starting %u CPUs", i, i);
			stacks_free(i);
			want = i;
			break;
		}
	}
	/* (With one CPU online a contended lock can only be held by its own CPU, and waiting
	 * panics; the CPUs about to start take locks at once.) */
	spin_set_cpus_online(want);
	if (want > 1)
		n = smp_start_cpus(stacks, want, smp_ap_main);
	else
		pr_info("smp: 1 CPU online");
	for (unsigned i = n; i < want; i++)
		stacks_free(i); /* CPUs that did not answer */
	spin_set_cpus_online(n);

	/* Each started CPU marks itself online right after arch saw it alive. */
	uint64_t all = n == 64 ? ~0ull : (1ull << n) - 1, t0 = rdtsc();
	while (__atomic_load_n(&online_mask, __ATOMIC_ACQUIRE) != all) {
		if (rdtsc() - t0 > ONLINE_WAIT_MS * tsc_khz)
			panic("smp: CPUs %#llx started but never came online",
			      (unsigned long long)(all & ~online_mask));
		cpu_relax();
	}
}
