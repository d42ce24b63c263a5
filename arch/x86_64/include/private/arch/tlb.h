/* SPDX-License-Identifier: MIT */
/* The page-table layer's end of an operation (arch/x86_64/tlb.c; host stand-in in
 * tests/host/shim/arch_stubs.c). Private to arch. */
#ifndef ARCH_TLB_H
#define ARCH_TLB_H

#include <arch/pt.h>

/* Drops the entries an operation changed from this CPU's TLB and from every other CPU's
 * that may cache them (the root's CPUs; every CPU for the kernel half), and returns once
 * they all did. full: everything (non-global, or global too), else va[0..n). */
void tlb_invalidate(const struct pt_root *root, bool shared, bool global, bool full, const uint64_t *va, unsigned n);

#endif
