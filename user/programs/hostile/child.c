// SPDX-License-Identifier: MIT
/*
 * Children of the issue-13 tests (findings.c, reserve.c, the kernel's
 * user.hostile_mdl_fragmented), each doing what its task name says:
 *
 *   orphan-crash  given a handle to its parent and a mailbox MDL: waits a moment (its parent
 *                 closes its handle to it meanwhile), counts itself in the mailbox's first
 *                 word, then writes to address 0 (run dumpable: frozen, and held by nobody)
 *   hold          given a handle to its parent and a mailbox MDL: creates suspended tasks of
 *                 nop until KnTaskCreate fails or it holds HOLD_MAX, writes how many (word 1)
 *                 and the last Retcode (word 2), then sets word 0 and waits until terminated
 *   frag-N        copies N pages of its own (every page a different pattern) into an MDL with
 *                 KnPmmMdlCreateFromBuf and compares them page by page through a mapping;
 *                 exits with the number of pages that differ (the kernel test runs it when
 *                 every free frame is alone)
 */
#include "common.h"

/* The kernel logs its crash (it runs dumpable: frozen, or ended at once, as nobody holds it):
 * EXPECT-LOG(user.hostile): W task orphan-crash: access violation at 0x0 rip 0x[0-9a-f]+
 */
static int orphan_crash(void)
{
	volatile uint64_t *mail = mailbox_given(KN_RIGHT_MAP_WRITE, RW);
	Handle parent = find_handle(KN_HANDLE_TYPE_TASK, 0);

	if (!mail || !parent)
		return 1;
	KnTaskWait(parent, KN_TASK_STATE_EXITED, 2000000ull); /* 2 ms: the parent lets go of us */
	__atomic_add_fetch(mail, 1, __ATOMIC_SEQ_CST);
	__asm__ __volatile__("movb $1, (%0)" : : "r"(0ull) : "memory"); /* access violation at 0x0 */
	return 2;
}

static int hold(void)
{
	static Handle h[HOLD_MAX];
	volatile uint64_t *mail = mailbox_given(KN_RIGHT_MAP_WRITE, RW);
	Handle parent = find_handle(KN_HANDLE_TYPE_TASK, 0);
	unsigned n = 0;
	Retcode rc = rcOk;

	if (!mail || !parent)
		return 1;
	while (n < HOLD_MAX && (rc = KnTaskCreate("held", "nop", 0, &h[n])) == rcOk)
		n++;
	mail[1] = n;
	mail[2] = (uint64_t)rc;
	__atomic_store_n(&mail[0], 1, __ATOMIC_SEQ_CST);
	KnTaskWait(parent, KN_TASK_STATE_EXITED, ~0ull); /* until terminated */
	return 0;
}

static uint64_t word(uint64_t page, uint64_t i)
{
	return (page << 32 | i) * 0x9e3779b97f4a7c15ull ^ 0x5a5a5a5a5a5a5a5aull;
}

static int frag_copy(uint64_t pages)
{
	const uint64_t bytes = pages * PAGE - 123; /* the last page partly: its tail must be zero */
	uint64_t *src = KnVmAllocate(RTL_NULL, pages * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	Handle h;
	void *map = RTL_NULL;
	rtl_size_t size = 0;

	if (!src)
		return 1001;
	for (uint64_t p = 0; p < pages; p++)
		for (uint64_t i = 0; i < PAGE / 8; i++)
			src[p * PAGE / 8 + i] = word(p, i);
	Retcode rc = KnPmmMdlCreateFromBuf(src, bytes, RW, &h);
	if (rc != rcOk) {
		printf("frag: KnPmmMdlCreateFromBuf of %llu pages: %d\n", (unsigned long long)pages, rc);
		return 1002;
	}
	if (KnPmmMdlGetSize(h, &size) != rcOk || size != bytes ||
	    KnPmmMdlMap(h, 0, pages * PAGE, RTL_NULL, VMM_FLAG_READ, &map) != rcOk)
		return 1003;
	const uint8_t *got = map, *want = (const uint8_t *)src;
	int bad = 0;
	for (uint64_t p = 0; p < pages; p++) {
		bool same = true;
		for (uint64_t b = p * PAGE; b < (p + 1) * PAGE && same; b++)
			same = got[b] == (b < bytes ? want[b] : 0);
		if (!same && bad++ < 4)
			printf("frag: page %llu of the MDL differs from the buffer\n", (unsigned long long)p);
	}
	printf("frag: %llu pages copied into an MDL of single frames, %d differ\n", (unsigned long long)pages, bad);
	KnVmUnmap(map, pages * PAGE);
	KnHandleClose(h);
	KnVmUnmap(src, pages * PAGE);
	return bad;
}

/* -1: not one of these roles. */
static int child_main(const char *role)
{
	if (!strcmp(role, "orphan-crash"))
		return orphan_crash();
	if (!strcmp(role, "hold"))
		return hold();
	if (!strncmp(role, "frag-", 5)) {
		uint64_t n = 0;
		for (const char *p = role + 5; *p >= '0' && *p <= '9'; p++)
			n = n * 10 + (uint64_t)(*p - '0');
		return frag_copy(n);
	}
	return -1;
}
