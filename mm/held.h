/* SPDX-License-Identifier: MIT */
/*
 * How mm's ..._locked functions check the lock they expect (docs/locking.md): the first thing
 * each does is mm_assert_held(&lock), spin_assert_held in the kernels with debug checks
 * (KNMM_DEBUG: make run, make test, the host tests) and nothing in the benchmark kernel,
 * like mm's other debug checks: its hot paths (a fault, a reservation) go through a dozen
 * of them.
 */
#ifndef MM_HELD_H
#define MM_HELD_H

#include <knmm/spinlock.h>

#ifdef KNMM_DEBUG
#define mm_assert_held(l) spin_assert_held(l)
#else
#define mm_assert_held(l) ((void)sizeof(l))
#endif

#endif
