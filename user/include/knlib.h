/* SPDX-License-Identifier: MIT */
/*
 * The small C library of knmm user programs: output, strings, and KTAP helpers for test
 * programs. Test programs print KTAP indented by four spaces, so that the kernel's test
 * case that runs them ("user.PROGRAM") holds them as subtests.
 */
#ifndef KNLIB_H
#define KNLIB_H

#include <kn/handle_api.h>
#include <kn/pmm_api.h>
#include <kn/retcode.h>
#include <kn/task_api.h>
#include <kn/thread_api.h>
#include <kn/vmm_api.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <stdarg.h>

/* printf to the console (KnDebugWrite channel 0). */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int puts(const char *s);

/* KTAP: ktap_start() faults in the program's .data and .bss (so that counters compared by a
 * test move only by what it does) and prints the version line, then one line per check;
 * ktap_done() prints the plan (the number of checks made) and exits with the number of
 * failures. */
void ktap_start(void);
/* "ok N name" or "not ok N name # reason"; returns cond. */
bool ktap_check(bool cond, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A retcode check: ok when got == want. */
bool ktap_rc(Retcode got, Retcode want, const char *name);
void ktap_skip(const char *name, const char *reason);
__attribute__((noreturn)) void ktap_done(void);
unsigned ktap_failures(void);

/* The first of the caller's handles to an object of `type` (KN_HANDLE_TYPE_*) with every
 * right in `rights`, or 0: how a task finds the handles it was given. */
Handle find_handle(int type, rtl_uint32_t rights);

/* The kernel's memory counters now (KnDebugGetStats: pending teardowns done first). */
KnMemStats mem_stats(void);
/* A check that the free-page count and the commit charge are where they were in `before`. */
bool ktap_counters_back(const KnMemStats *before, const char *name);
/* Grows the caller's stack by `bytes` now (touching each page), so that a test's deepest
 * calls later fault no stack page in between two snapshots of the counters. */
void stack_pregrow(rtl_size_t bytes);

/* The time stamp counter. */
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* A thread of the caller's task running fn(arg) on the stack below stackTop (16-byte
 * aligned; two words of it hold fn and arg for the start); when fn returns, the thread ends
 * (KnThreadExit). KnThreadCreate's codes. */
Retcode thread_create(void (*fn)(void *), void *arg, void *stackTop, rtl_uint32_t *tid);
/* The kernel's thread count (KnDebugGetStats) once it is `want` (the reaper frees exited
 * threads a moment after they leave), or what it is after 10000 yields. */
uint64_t threads_settled(uint64_t want);

/* Creates, resumes and waits for a program; returns its exit code (or -1000 - rc). */
int run_task(const char *name, const char *program, int flags);

#endif
