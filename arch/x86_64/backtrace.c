// SPDX-License-Identifier: MIT
/*
 * Register dumps and frame-pointer backtraces for panics. Every frame pointer is checked
 * (kernel half, aligned, mapped) before it is read, so a corrupt chain ends the backtrace
 * instead of faulting inside the panic path.
 */
#include <arch/cpu.h>
#include <arch/pt.h>
#include <arch/trap.h>
#include <knmm/ksyms.h>
#include <knmm/layout.h>
#include <knmm/log.h>

#define BACKTRACE_MAX 32

static bool kernel_word_readable(uint64_t addr)
{
	struct pt_root cur = pt_active_root();

	if (!is_kernel_addr(addr) || (addr & 7) || !va_is_canonical(addr))
		return false;
	return pt_translate(&cur, addr, NULL);
}

static void print_frame_line(unsigned n, uint64_t addr)
{
	uint64_t off;
	const char *name = ksym_lookup(addr, &off);

	if (name)
		pr_err("  #%-2u %#018llx %s+%#llx", n, (unsigned long long)addr, name, (unsigned long long)off);
	else
		pr_err("  #%-2u %#018llx ?", n, (unsigned long long)addr);
}

void backtrace_print(uint64_t rip, uint64_t rbp)
{
	unsigned n = 0;

	pr_err("backtrace:");
	print_frame_line(n++, rip);
	while (rbp && n < BACKTRACE_MAX) {
		if (!kernel_word_readable(rbp) || !kernel_word_readable(rbp + 8)) {
			pr_err("  (frame pointer %#llx is not readable; backtrace ends)", (unsigned long long)rbp);
			break;
		}
		uint64_t ret = ((const uint64_t *)(uintptr_t)rbp)[1];
		uint64_t next = ((const uint64_t *)(uintptr_t)rbp)[0];
		if (ret == 0)
			break;
		/* The return address points after the call; look up the call itself. */
		print_frame_line(n++, ret - 1);
		if (next <= rbp)
			break; /* frames grow upwards; anything else is a loop or garbage */
		rbp = next;
	}
}

void trap_dump_frame(const struct trap_frame *tf)
{
	pr_err("rax %016llx rbx %016llx rcx %016llx rdx %016llx", (unsigned long long)tf->rax,
	       (unsigned long long)tf->rbx, (unsigned long long)tf->rcx, (unsigned long long)tf->rdx);
	pr_err("rsi %016llx rdi %016llx rbp %016llx rsp %016llx", (unsigned long long)tf->rsi,
	       (unsigned long long)tf->rdi, (unsigned long long)tf->rbp, (unsigned long long)tf->rsp);
	pr_err("r8  %016llx r9  %016llx r10 %016llx r11 %016llx", (unsigned long long)tf->r8,
	       (unsigned long long)tf->r9, (unsigned long long)tf->r10, (unsigned long long)tf->r11);
	pr_err("r12 %016llx r13 %016llx r14 %016llx r15 %016llx", (unsigned long long)tf->r12,
	       (unsigned long long)tf->r13, (unsigned long long)tf->r14, (unsigned long long)tf->r15);
	pr_err("rip %016llx rflags %08llx cs %04llx ss %04llx vector %llu error %#llx", (unsigned long long)tf->rip,
	       (unsigned long long)tf->rflags, (unsigned long long)tf->cs, (unsigned long long)tf->ss,
	       (unsigned long long)tf->vector, (unsigned long long)tf->error);
	pr_err("cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx", (unsigned long long)read_cr0(),
	       (unsigned long long)read_cr2(), (unsigned long long)read_cr3(), (unsigned long long)read_cr4());
	backtrace_print(tf->rip, tf->rbp);
}
