/* SPDX-License-Identifier: MIT */
/* Helpers shared by the in-kernel tests. */
#ifndef TESTS_KERNEL_KTEST_UTIL_H
#define TESTS_KERNEL_KTEST_UTIL_H

#include <arch/pt.h>
#include <arch/trap.h>
#include <knmm/ktest.h>

/* A zeroed 4 KiB frame for a test, and its release. */
uint64_t test_frame_alloc(void);
void test_frame_free(uint64_t pa);

/* Gives every pool size class a slab segment (allocating and freeing one block each), so
 * that a test's own pool use does not map and charge new segments: after this, commit
 * charge, free pages and page-table counts move only with what the test does. The harness
 * trims the pool before and after each test, so nothing is left behind. */
void test_mm_settle(void);

/* Reads / writes one byte at `addr` under cpu_catch_fault: true if it faulted (fi filled). */
bool test_read_faults(uint64_t addr, struct fault_info *fi);
bool test_write_faults(uint64_t addr, uint8_t value, struct fault_info *fi);
/* Calls the code at `addr` under cpu_catch_fault: true if it faulted. */
bool test_exec_faults(uint64_t addr, struct fault_info *fi);

#endif
