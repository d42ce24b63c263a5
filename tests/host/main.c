// SPDX-License-Identifier: MIT
/*
 * The host test binary: the pure parts of knmm (PTE encoding, address arithmetic, string
 * helpers, printf, trap decoding, and later the allocators) under ASan and UBSan, with the
 * same KTEST cases and KTAP output as in the kernel. Usage: knmm-host-tests [GLOBS]
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <knmm/ktest.h>
#include <knmm/log.h>
#include <knmm/panic.h>

int log_level = LOG_INFO;
volatile bool panic_in_progress;

void console_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

void console_write(const char *s, size_t n) { fwrite(s, 1, n, stdout); }

void klog(int level, const char *fmt, ...)
{
	va_list ap;
	if (level > log_level)
		return;
	va_start(ap, fmt);
	printf("# log: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

__noreturn void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("KERNEL PANIC (host): ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	abort();
}

uint64_t clock_ns(void) { return 0; }

int main(int argc, char **argv)
{
	return ktest_run(argc > 1 ? argv[1] : "*") ? 1 : 0;
}
