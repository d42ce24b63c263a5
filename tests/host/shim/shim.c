// SPDX-License-Identifier: MIT
/*
 * Host stand-ins for the kernel services that generic code calls (console, log, panic, page
 * zeroing, simulated physical memory); the locks are the kernel's own (kernel/lib/spinlock.c,
 * one CPU, no interrupts). Linked into the host tests and the host benchmarks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>

int log_level = LOG_INFO;
volatile bool panic_in_progress;
uintptr_t host_phys_base;

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
	fprintf(stderr, "KERNEL PANIC (host): ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	fflush(stderr);
	abort();
}

uint64_t clock_ns(void) { return 0; }

void zero_pages(void *va, uint64_t npages) { memset(va, 0, npages << PAGE_SHIFT); }

/* ---- pools: plain malloc on the host ---- */
#include <arch/cpu.h>
#include <mm/pool.h>

struct cpu_features cpu_features; /* no 1 GiB pages, no ERMS: the host tests use 4 KiB tables */

/* A 16-byte header before each block holds its size (pool_block_size). */
void *pool_alloc(size_t size, uint32_t tag)
{
	(void)tag;
	if (!size)
		return NULL;
	size_t *h = aligned_alloc(16, 16 + ((size + 15) & ~(size_t)15));
	if (!h)
		return NULL;
	h[0] = size;
	return (char *)h + 16;
}

void pool_free(void *p)
{
	if (p)
		free((char *)p - 16);
}
size_t pool_block_cost(size_t size) { return (size + 15) & ~(size_t)15; }
size_t pool_block_size(const void *p) { return *(const size_t *)((const char *)p - 16); }
void pool_trim(void) {}
/* Red zones are ASan's business on the host. */
Retcode pool_check(const void *p, char *why, size_t size)
{
	(void)why;
	(void)size;
	return p ? rcOk : rcInvalidArgument;
}

/* ---- device space (mm/frame.c): the host has none ---- */
#include <mm/mm.h>

bool mm_phys_is_io(uint64_t first, uint64_t end)
{
	(void)first;
	(void)end;
	return false;
}

/* ---- frames with a memory type: the host has no direct map to keep in step ---- */
#include <mm/frame.h>
#include <mm/pmm.h>

struct page *frame_alloc(unsigned cache, enum page_state state)
{
	(void)cache;
	return pmm_alloc(0, PMM_ZERO, state);
}
Retcode frame_set_type(struct page *p, unsigned cache)
{
	(void)p;
	(void)cache;
	return rcOk;
}
void frame_clear_type(struct page *p) { (void)p; }
void frame_free(struct page *p) { pmm_free(p, 0); }
