// SPDX-License-Identifier: MIT
/*
 * The kernel dynamic area (docs/vm.md): its top-level entries are made at boot and sealed,
 * the pool area is managed by mm/pool.c, and the rest is kernel_space, an address space like
 * a task's: kernel stacks, I/O mappings, uncached memory, system mappings of MDLs.
 */
#include <arch/trap.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <mm/kspace.h>
#include <mm/mm.h>
#include <mm/vm.h>
#include "vm_internal.h"

struct vm_space kernel_space;

#define KSTACK_PREFIX "kstack "

Retcode kstack_alloc(const char *name, uint64_t size, uint64_t *base)
{
	char full[24];

	ksnprintf(full, sizeof(full), KSTACK_PREFIX "%s", name);
	return vm_allocate_named(&kernel_space, 0, align_up(size, PAGE_SIZE),
				 VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_LOCKED | VMM_FLAG_READ | VMM_FLAG_WRITE |
					 VMM_FLAG_LOW_GUARD,
				 VMR_ANON, full, base);
}

void kstack_free(uint64_t base, uint64_t size)
{
	Retcode rc = vm_unmap(&kernel_space, base, align_up(size, PAGE_SIZE));
	KASSERT_MSG(rc == rcOk, "kstack_free(%#llx): %d", (unsigned long long)base, rc);
}

/* For panics (the trap layer's stack namer): which kernel stack's guard page holds addr (no
 * locks: the panicking context may hold them). */
const char *kstack_describe(uint64_t addr)
{
	static char buf[48];

	if (!kernel_space.hi)
		return NULL;
	const struct vm_region *r = vm_region_at_unlocked(&kernel_space, addr);
	if (!r || strncmp(r->name, KSTACK_PREFIX, strlen(KSTACK_PREFIX)) != 0 || addr >= vmr_base(r) + PAGE_SIZE ||
	    !(r->flags & VMM_FLAG_LOW_GUARD))
		return NULL;
	ksnprintf(buf, sizeof(buf), "kernel stack '%s'", r->name + strlen(KSTACK_PREFIX));
	return buf;
}
