/* SPDX-License-Identifier: MIT */
/*
 * Alignment and page arithmetic. Pure functions of their arguments: the host tests check
 * them (tests/host/), and they are the only place such masks are written.
 */
#ifndef KNMM_ALIGN_H
#define KNMM_ALIGN_H

#include <knmm/compiler.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE  ((uint64_t)1 << PAGE_SHIFT)
#define PAGE_MASK  (PAGE_SIZE - 1) /* the offset-in-page bits */

#define SIZE_2M ((uint64_t)1 << 21)
#define SIZE_1G ((uint64_t)1 << 30)

#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)
#define TiB(x) ((uint64_t)(x) << 40)

/* `a` must be a power of two for all of these. */
static inline bool is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }
static inline uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }
/* Rounds up; wraps to 0 when v is within `a` of 2^64 (callers that care use align_up_checked). */
static inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
static inline bool is_aligned(uint64_t v, uint64_t a) { return (v & (a - 1)) == 0; }

/* Rounds v up to a multiple of a; false (and *out untouched) if that overflows. */
static inline bool align_up_checked(uint64_t v, uint64_t a, uint64_t *out)
{
	uint64_t r = align_up(v, a);
	if (r < v)
		return false;
	*out = r;
	return true;
}

/* [base, base+size) does not wrap around and is not empty. */
static inline bool range_valid(uint64_t base, uint64_t size) { return size != 0 && base + size > base; }

/* Two half-open ranges intersect. */
static inline bool ranges_overlap(uint64_t a, uint64_t asize, uint64_t b, uint64_t bsize)
{
	return a < b + bsize && b < a + asize;
}

static inline uint64_t pages_of(uint64_t bytes) { return (bytes + PAGE_SIZE - 1) >> PAGE_SHIFT; }

/* floor(log2(x)) for x > 0. */
static inline unsigned ilog2_u64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }

#endif
