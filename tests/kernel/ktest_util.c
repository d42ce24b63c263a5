// SPDX-License-Identifier: MIT
#include <knmm/align.h>
#include <knmm/layout.h>
#include <mm/pmm.h>
#include <mm/pool.h>
#include <mm/vm.h>
#include "ktest_util.h"

uint64_t test_frame_alloc(void)
{
	struct page *p = pmm_alloc(0, PMM_ZERO, PAGE_KERNEL);
	return p ? page_to_pa(p) : 0;
}

void test_frame_free(uint64_t pa) { pmm_free(pa_to_page(pa), 0); }

bool test_frames_hold(uint64_t keep, struct list_head *held)
{
	pmm_drain_pcp(&pmm_main);
	for (int order = PMM_MAX_ORDER; order >= 0; order--) {
		while (pmm_free_pages() >= keep + (1ull << order)) {
			struct page *p = pmm_alloc((unsigned)order, 0, PAGE_KERNEL);
			if (!p)
				break;
			list_add(&p->lru, held); /* the allocation's own descriptor holds the list */
		}
	}
	return pmm_free_pages() == keep;
}

void test_frames_release(struct list_head *held)
{
	while (!list_empty(held)) {
		struct page *p = list_first_entry(held, struct page, lru);
		list_del(&p->lru);
		pmm_free(p, p->order);
	}
}

struct probe {
	uint64_t addr;
	uint8_t value;
};

static void do_read(void *arg)
{
	struct probe *p = arg;
	p->value = *(volatile uint8_t *)(uintptr_t)p->addr;
}

static void do_write(void *arg)
{
	struct probe *p = arg;
	*(volatile uint8_t *)(uintptr_t)p->addr = p->value;
}

static void do_call(void *arg)
{
	struct probe *p = arg;
	((void (*)(void))(uintptr_t)p->addr)();
}

bool test_read_faults(uint64_t addr, struct fault_info *fi)
{
	struct probe p = { addr, 0 };
	return cpu_catch_fault(do_read, &p, fi);
}

bool test_write_faults(uint64_t addr, uint8_t value, struct fault_info *fi)
{
	struct probe p = { addr, value };
	return cpu_catch_fault(do_write, &p, fi);
}

bool test_exec_faults(uint64_t addr, struct fault_info *fi)
{
	struct probe p = { addr, 0 };
	return cpu_catch_fault(do_call, &p, fi);
}

void test_mm_settle(void)
{
	for (size_t size = 8; size <= 2048; size *= 2)
		pool_free(pool_alloc(size - 24 > 0 ? size - 24 : 1, POOL_TAG('T', 's', 'e', 't')));
}

bool test_space_begin(struct ktest_ctx *t, struct vm_space *vs)
{
	test_mm_settle();
	const struct vm_space_params sp = { .name = "test", .user = true, .lo = USER_BASE, .hi = USER_END };
	if (vm_space_init(vs, &sp) != rcOk) {
		ktest_fail(t, __FILE__, __LINE__, "vm_space_init failed");
		return false;
	}
	return true;
}

void test_space_end(struct ktest_ctx *t, struct vm_space *vs)
{
	char why[160] = "";
	bool ok = vm_space_check(vs, why, sizeof(why));
	if (!ok)
		ktest_fail(t, __FILE__, __LINE__, "vm_space_check: %s", why);
	t->checks++;
	vm_space_destroy(vs);
}

uint64_t test_resident_pages(struct vm_space *vs, uint64_t va, uint64_t size)
{
	uint64_t n = 0;
	for (uint64_t a = va; a < va + size; a += PAGE_SIZE)
		n += pt_translate(&vs->pt, a, NULL);
	return n;
}

static unsigned tables_left;
static const struct pt_frame_source *real_source;
static uint64_t failing_alloc(void) { return tables_left ? (tables_left--, real_source->alloc()) : 0; }
static void failing_free(uint64_t pa) { real_source->free(pa); }
static struct pt_frame_source failing;

void test_tables_fail_after(unsigned n)
{
	if (!real_source) {
		real_source = pt_get_frame_source();
		/* (the real source's words: tables made meanwhile keep their summaries) */
		failing = (struct pt_frame_source){ .alloc = failing_alloc,
						    .free = failing_free,
						    .word = real_source->word };
		pt_set_frame_source(&failing);
	}
	tables_left = n;
}

void test_tables_restore(void)
{
	if (real_source)
		pt_set_frame_source(real_source);
	real_source = NULL;
}
