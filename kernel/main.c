// SPDX-License-Identifier: MIT
/*
 * kmain: from the boot hand-over to a running kernel. boot/entry.S calls it on the boot
 * stack, in long mode, on the early tables, with the loader's magic and information block.
 * This is the last place that knows the kernel came from Multiboot2. It brings the layers up
 * in order and hands over to init_run (kernel/init.c), which does what the command line asks.
 */
#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/ground.h>
#include <arch/percpu.h>
#include <arch/serial.h>
#include <arch/smp.h>
#include <arch/time.h>
#include <arch/trap.h>
#include <knmm/bootinfo.h>
#include <knmm/cmdline.h>
#include <knmm/entry.h>
#include <knmm/ksyms.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <kn/flags.h>
#include <knmm/align.h>
#include <arch/pt.h>
#include <mm/bootmem.h>
#include <mm/kspace.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <kernel/init.h>
#include <kernel/main.h>
#include <kernel/modules.h>
#include <kernel/options.h>
#include <kernel/sched.h>
#include <kernel/smp.h>
#include <kernel/task.h>
#include <kernel/syscall.h>
#include <kernel/trap_user.h>

#ifndef KNMM_VERSION
#define KNMM_VERSION "0.1"
#endif

struct boot_info boot_info;
uint64_t mem_usable_bytes;
uint64_t boot_ready_tsc;

static void log_memory_map(const struct boot_info *bi)
{
	pr_info("memory map (%u entries):", bi->nr_mem);
	for (unsigned i = 0; i < bi->nr_mem; i++) {
		const struct boot_mem_range *m = &bi->mem[i];
		pr_info("  %#014llx-%#014llx %10llu KiB  %s", (unsigned long long)m->base,
			(unsigned long long)(m->base + m->size - 1), (unsigned long long)(m->size >> 10),
			boot_mem_type_name(m->type));
	}
	for (unsigned i = 0; i < bi->nr_modules; i++)
		pr_info("module %u: %#llx-%#llx %s", i, (unsigned long long)bi->modules[i].start,
			(unsigned long long)bi->modules[i].end, bi->modules[i].name);
	if (bi->modules_dropped)
		pr_err("boot: %u modules past the first %u were left out (BOOT_MAX_MODULES)", bi->modules_dropped,
		       BOOT_MAX_MODULES);
}

/* The local APIC, mapped uncached through mm; its timer drives preemption. */
static void timer_init(void)
{
	volatile uint32_t *regs = mm_map_io_space(apic_phys_base(), PAGE_SIZE, VMM_FLAG_CACHE_DISABLE);
	if (!regs)
		panic("timer: cannot map the local APIC at %#llx", (unsigned long long)apic_phys_base());
	apic_init(regs);
	uint32_t count = apic_timer_start(SCHED_TICK_MS);
	pr_info("timer: local APIC version %#x, tick %u ms (%u counts)", apic_version() & 0xff, SCHED_TICK_MS, count);
}

/* (gdb's anchor: kernel/main.h) */
__noinline void kernel_ready(void)
{
	boot_ready_tsc = rdtsc();
	pr_info("boot: ready after %llu TSC ticks (%llu us)", (unsigned long long)(boot_ready_tsc - boot_entry_tsc),
		(unsigned long long)(tsc_to_ns(boot_ready_tsc - boot_entry_tsc) / 1000));
	barrier();
}

__noreturn void kmain(uint32_t magic, uint64_t info_pa)
{
	arch_ground_init();
	cpu_detect();
	tsc_calibrate();
	if (!boot_info_from_multiboot2(magic, info_pa, &boot_info))
		panic("boot: no usable Multiboot2 information (magic %#x, info at %#llx)", magic,
		      (unsigned long long)info_pa);
	cmdline_init(boot_info.cmdline);
	log_level = (int)cmdline_get_u64("loglevel", LOG_INFO);

	pr_info("knmm " KNMM_VERSION " - a microkernel built around its memory manager");
	pr_info("boot: loader \"%s\", command line \"%s\"", boot_info.loader, boot_info.cmdline);
	gdt_init();
	idt_init();
	trap_user_init();
	syscall_init();
	ksyms_init(&boot_info);
	cpu_init();
	cpu_log_features();
	smp_discover(&boot_info); /* (the ACPI tables are read through the early tables) */
	zero_pages_calibrate();
	log_memory_map(&boot_info);
	modules_init(&boot_info);

	bootmem_init(&boot_info, kimage_to_phys(__kernel_end));
	kspace_init(&boot_info);
	const struct bootmem_stats *bs = bootmem_stats();
	mem_usable_bytes = bs->usable;
	pr_info("memory: usable %llu bytes (%llu MiB, %llu pages); boot claimed %llu KiB; page tables %llu KiB",
		(unsigned long long)bs->usable, (unsigned long long)(bs->usable >> 20),
		(unsigned long long)(bs->usable >> 12), (unsigned long long)(bs->claimed >> 10),
		(unsigned long long)(pt_table_pages() * 4));
	pr_info("paging: kernel PML4 at %#llx; direct map at %#llx, image W^X at %#llx",
		(unsigned long long)kernel_pt_root.pml4_pa, (unsigned long long)DIRECT_MAP_BASE,
		(unsigned long long)KERNEL_VMA);
	mm_init(&boot_info);
	percpu_init();
	fpu_init();
	serial_init(COM2_PORT); /* the dump sink */
	kernel_apply_options();
	sched_init();
	tlb_cpu_join();
	task_init();
	timer_init();
	/* The other CPUs start once the local APIC and its tick are known (they reuse both) and
	 * before interrupts are on here, so no tick runs the scheduler during their start. */
	smp_boot();
	irq_enable();

	vm_report();
	kernel_ready();

	init_run();
}
