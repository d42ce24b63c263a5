/* SPDX-License-Identifier: MIT */
/* Helpers shared by the in-kernel tests. */
#ifndef TESTS_KERNEL_KTEST_UTIL_H
#define TESTS_KERNEL_KTEST_UTIL_H

#include <arch/pt.h>
#include <arch/trap.h>
#include <knmm/ktest.h>
#include <knmm/list.h>

/* A zeroed 4 KiB frame for a test, and its release. */
uint64_t test_frame_alloc(void);
void test_frame_free(uint64_t pa);

/* Gives every pool size class a slab segment (allocating and freeing one block each), so
 * that a test's own pool use does not map and charge new segments: after this, commit
 * charge, free pages and page-table counts move only with what the test does. The harness
 * trims the pool before and after each test, so nothing is left behind. */
void test_mm_settle(void);

struct vm_space;
/* A private user address space for a test (after test_mm_settle), and its end: the space's
 * own consistency check counts as one of the test's checks, then it is destroyed. */
bool test_space_begin(struct ktest_ctx *t, struct vm_space *vs);
void test_space_end(struct ktest_ctx *t, struct vm_space *vs);
/* Pages of [va, va + size) mapped in the space's tables. */
uint64_t test_resident_pages(struct vm_space *vs, uint64_t va, uint64_t size);

/* Page-table frames run out after `n` more (test_tables_restore puts the real source
 * back). The tables made meanwhile keep their occupancy summaries. */
void test_tables_fail_after(unsigned n);
void test_tables_restore(void);

/* Takes free frames (largest blocks first) onto `held` (through their lru links) until
 * exactly `keep` are left free: the next allocations beyond those fail for real. False if
 * fewer than `keep` were free. test_frames_release gives them all back. */
bool test_frames_hold(uint64_t keep, struct list_head *held);
void test_frames_release(struct list_head *held);

/* Reads / writes one byte at `addr` under cpu_catch_fault: true if it faulted (fi filled). */
bool test_read_faults(uint64_t addr, struct fault_info *fi);
bool test_write_faults(uint64_t addr, uint8_t value, struct fault_info *fi);
/* Calls the code at `addr` under cpu_catch_fault: true if it faulted. */
bool test_exec_faults(uint64_t addr, struct fault_info *fi);

#endif
