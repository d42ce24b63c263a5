/* SPDX-License-Identifier: MIT */
/*
 * Shared by the parts of test_hostile (issue 13). They are one program, told apart by the
 * task's name (argv[0]), because the ISO holds at most BOOT_MAX_MODULES (32) modules and
 * the tree already has 31; the parts are #included by user/programs/test_hostile.c (files in
 * this directory are not programs of their own).
 */
#ifndef HOSTILE_COMMON_H
#define HOSTILE_COMMON_H

#include <knlib.h>

#define PAGE        4096ull
#define RW          (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define LAZY        (VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW)
#define KERNEL      ((void *)0xffffffff80100000ull)
#define UNMAPPED    ((void *)0x0000100000000000ull)
#define SENTINEL    0xa5u
#define PROGRAM     "test_hostile" /* ourselves: children are this program under another name */
#define HANDLES_MAX 4000u          /* handles we hold at most (the table has 4095 slots) */
#define HOLD_MAX    4000u          /* suspended tasks one holder keeps (reserve.c, child.c) */

/* A created task we hold: waiting for it to exit, with a timeout, is how we sleep. */
static Handle sleeper;

static inline Retcode sleeper_init(void) { return KnTaskCreate("sleeper", "nop", 0, &sleeper); }

/* (The kernel's timer ticks every 10 ms: a shorter wait takes as long.) */
#define SLEEP_MS 10u
static inline void sleep_ms(unsigned ms) { KnTaskWait(sleeper, KN_TASK_STATE_EXITED, ms * 1000000ull); }

static inline void sleeper_done(void)
{
	if (sleeper)
		KnHandleClose(sleeper);
	sleeper = 0;
}

/* A task's handle table only grows: have it at its size for what follows before a baseline
 * of free pages and commit is taken. */
static inline void grow_handle_table(unsigned n)
{
	static Handle h[HANDLES_MAX];
	unsigned i = 0;
	while (i < n && i < HANDLES_MAX &&
	       KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &h[i]) == rcOk)
		i++;
	while (i)
		KnHandleClose(h[--i]);
}

static inline void *lazy(uint64_t pages) { return KnVmAllocate(RTL_NULL, pages * PAGE, LAZY); }

static inline bool is_resident(const void *p)
{
	KnVmInfo info;
	return KnVmQuery(p, &info) == rcOk && info.resident;
}

static inline unsigned resident_pages(const void *p, uint64_t pages)
{
	unsigned n = 0;
	for (uint64_t i = 0; i < pages; i++)
		n += is_resident((const uint8_t *)p + i * PAGE);
	return n;
}

/* A page of shared memory: made and mapped here (parent), or found and mapped (child). */
static inline volatile uint64_t *mailbox_new(Handle *box)
{
	void *p = RTL_NULL;
	if (KnPmmMdlCreate(PAGE, RW, box) != rcOk)
		return RTL_NULL;
	if (KnPmmMdlMap(*box, 0, PAGE, RTL_NULL, RW, &p) != rcOk) {
		KnHandleClose(*box);
		return RTL_NULL;
	}
	return p;
}

static inline volatile uint64_t *mailbox_given(rtl_uint32_t rights, int prot)
{
	void *p = RTL_NULL;
	Handle box = find_handle(KN_HANDLE_TYPE_MDL, rights);
	if (!box || KnPmmMdlMap(box, 0, PAGE, RTL_NULL, prot, &p) != rcOk)
		return RTL_NULL;
	return p;
}

/* Free pages, commit charge, tasks and threads as in `before`. */
static inline bool stats_back(const KnMemStats *before, const char *name)
{
	KnMemStats now = mem_stats();
	return ktap_check(now.freePages == before->freePages && now.commitCharge == before->commitCharge &&
				  now.tasks == before->tasks && now.threads == before->threads,
			  name, "free %llu -> %llu, charge %llu -> %llu, tasks %llu -> %llu, threads %llu -> %llu",
			  (unsigned long long)before->freePages, (unsigned long long)now.freePages,
			  (unsigned long long)before->commitCharge, (unsigned long long)now.commitCharge,
			  (unsigned long long)before->tasks, (unsigned long long)now.tasks,
			  (unsigned long long)before->threads, (unsigned long long)now.threads);
}

/* Waits (up to `ms`) for the number of tasks to come down to `tasks`. */
static inline KnMemStats settle_tasks(uint64_t tasks, unsigned ms)
{
	KnMemStats s = mem_stats();
	for (unsigned waited = 0; s.tasks > tasks && waited < ms; waited += SLEEP_MS) {
		sleep_ms(SLEEP_MS);
		s = mem_stats();
	}
	return s;
}

#endif
