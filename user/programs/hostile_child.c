// SPDX-License-Identifier: MIT
/*
 * The children of the issue-13 tests (test_hostile, hostile_reserve, the kernel's
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
#include <knlib.h>

#define PAGE     4096ull
#define RW       (VMM_FLAG_READ | VMM_FLAG_WRITE)
#define HOLD_MAX 4000

static volatile uint64_t *mailbox(void)
{
	void *p = RTL_NULL;
	Handle box = find_handle(KN_HANDLE_TYPE_MDL, KN_RIGHT_MAP_WRITE);
	if (!box || KnPmmMdlMap(box, 0, PAGE, RTL_NULL, RW, &p) != rcOk)
		return RTL_NULL;
	return p;
}

static int orphan_crash(void)
{
	volatile uint64_t *mail = mailbox();
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
	volatile uint64_t *mail = mailbox();
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

static uint64_t word(uint64_t page, uint64_t i) { return (page << 32 | i) * 0x9e3779b97f4a7c15ull ^ 0x5a5a5a5a5a5a5a5aull; }

static int frag(uint64_t pages)
{
	const uint64_t bytes = pages * PAGE - 123; /* the last page partly: its tail must be zero */
	uint64_t *src = KnVmAllocate(RTL_NULL, pages * PAGE, VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | RW);
	Handle h;
	void *map = RTL_NULL;
	rtl_size_t size = 0;

	if (!src)
		return -1;
	for (uint64_t p = 0; p < pages; p++)
		for (uint64_t i = 0; i < PAGE / 8; i++)
			src[p * PAGE / 8 + i] = word(p, i);
	Retcode rc = KnPmmMdlCreateFromBuf(src, bytes, RW, &h);
	if (rc != rcOk) {
		printf("frag: KnPmmMdlCreateFromBuf of %llu pages: %d\n", (unsigned long long)pages, rc);
		return -2;
	}
	if (KnPmmMdlGetSize(h, &size) != rcOk || size != bytes || KnPmmMdlMap(h, 0, pages * PAGE, RTL_NULL, VMM_FLAG_READ, &map) != rcOk)
		return -3;
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

int main(int argc, char **argv)
{
	const char *role = argc > 0 ? argv[0] : "";

	if (!strcmp(role, "orphan-crash"))
		return orphan_crash();
	if (!strcmp(role, "hold"))
		return hold();
	if (!strncmp(role, "frag-", 5)) {
		uint64_t n = 0;
		for (const char *p = role + 5; *p >= '0' && *p <= '9'; p++)
			n = n * 10 + (uint64_t)(*p - '0');
		return frag(n);
	}
	printf("hostile_child: unknown role %s\n", role);
	return 99;
}
