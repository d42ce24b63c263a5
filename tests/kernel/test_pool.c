// SPDX-License-Identifier: MIT
/*
 * What pool_free refuses. pool_free(p) first asks pool_check(p) for its verdict on the block
 * and panics, naming the reason, on anything but rcOk (mm/pool.c); a panic ends the test
 * kernel, so these tests ask pool_check itself, with the same block, for every overrun and
 * corruption pool_free must catch, and then free the repaired blocks with pool_free.
 *
 * Layout (mm/pool.c): [header 16 B][data][red zone >= 8 B of 0xfd]; blocks up to 2 KiB live
 * in power-of-two slots of 32..2048 bytes, larger ones on their own pages, which end where
 * an unmapped guard page begins.
 */
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include "ktest_util.h"
#include <mm/pool.h>

#define TAG         POOL_TAG('P', 'l', 'R', 'z')
#define REDZONE     0xfd
#define REDZONE_MIN 8
#define HDR         16

/* Block sizes at the edges of the slots: the least red zone, one byte more (next slot), the
 * largest slot block, the smallest large block, a large block that fills its page exactly. */
static const size_t sizes[] = { 1, 8, 9, 40, 104, 232, 233, 1000, 2024, 2025, 3992, 3993, 5000, 100000 };

/* Bytes after the data that pool_check covers: to the end of the slot, or of the pages. */
static size_t room_of(const uint8_t *p, size_t size)
{
	if (size + HDR + REDZONE_MIN <= 2048) {
		size_t slot = 32;
		while (slot < size + HDR + REDZONE_MIN)
			slot *= 2;
		return slot - HDR;
	}
	uint64_t end = align_up((uint64_t)(uintptr_t)p + size + REDZONE_MIN, PAGE_SIZE);
	return (size_t)(end - (uint64_t)(uintptr_t)p);
}

/* One byte of the red zone overwritten: pool_free's verdict names it and the tag. */
static void expect_overrun_caught(struct ktest_ctx *t, uint8_t *p, size_t size, size_t at)
{
	char why[128] = "", want[48];

	p[at] = 0;
	Retcode rc = pool_check(p, why, sizeof(why));
	p[at] = REDZONE;
	ksnprintf(want, sizeof(want), "red zone overwritten at +%zu ", at);
	t->checks++;
	if (rc != rcFault || !strstr(why, want) || !strstr(why, "'PlRz'"))
		ktest_fail(t, __FILE__, __LINE__, "block of %zu bytes, byte +%zu overwritten: rc %d, '%s'", size, at,
			   rc, why);
}

KTEST(pool, free_verdict_catches_every_red_zone_byte)
{
	char why[128];
	unsigned large = 0;

	for (unsigned s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t size = sizes[s];
		uint8_t *p = pool_alloc(size, TAG);
		KT_ASSERT(p != NULL);
		size_t room = room_of(p, size);
		/* Data written to its last byte, with the red zone's own value too: no verdict. */
		memset(p, REDZONE, size);
		p[0] = 0x11;
		p[size - 1] = 0x22;
		KT_EXPECT_EQ(pool_check(p, why, sizeof(why)), rcOk);
		/* The least red zone, every byte; then the last byte before the next slot or the
		 * guard page (an overrun that faults nowhere). */
		for (size_t at = size; at < size + REDZONE_MIN; at++)
			expect_overrun_caught(t, p, size, at);
		expect_overrun_caught(t, p, size, room - 1);
		if (room > 2048 - HDR) {
			large++;
			KT_EXPECT(is_aligned((uint64_t)(uintptr_t)p + room, PAGE_SIZE));
			KT_EXPECT(!pt_translate(&kernel_pt_root, (uint64_t)(uintptr_t)p + room, NULL));
		}
		/* Repaired, it is sound again and pool_free takes it. */
		KT_EXPECT_EQ(pool_check(p, why, sizeof(why)), rcOk);
		pool_free(p);
	}
	KT_EXPECT_EQ(large, 5);
}

KTEST(pool, free_verdict_catches_bad_headers_and_pointers)
{
	char why[128];
	uint64_t local = 0;
	uint8_t *small = pool_alloc(40, TAG), *big = pool_alloc(5000, TAG);

	KT_ASSERT(small && big);
	memset(small, 0, 40); /* (no header-like words inside the data) */
	memset(big, 0, 5000);
	uint8_t *blocks[] = { small, big };
	for (unsigned b = 0; b < ARRAY_SIZE(blocks); b++) {
		uint8_t *p = blocks[b];
		uint32_t *hdr = (uint32_t *)(p - HDR); /* magic, tag, size, class */
		uint32_t saved[4];
		memcpy(saved, hdr, sizeof(saved));
		hdr[0] ^= 0x100; /* an underrun into the magic */
		KT_EXPECT_EQ(pool_check(p, why, sizeof(why)), rcFault);
		KT_EXPECT(strstr(why, "header overwritten") != NULL);
		memcpy(hdr, saved, sizeof(saved));
		hdr[2] = 1u << 20; /* a size past the block */
		KT_EXPECT_EQ(pool_check(p, why, sizeof(why)), rcFault);
		KT_EXPECT(strstr(why, "bad size") != NULL);
		memcpy(hdr, saved, sizeof(saved));
		hdr[3] = (hdr[3] & ~0xffu) | 0x7f; /* no such class */
		KT_EXPECT_EQ(pool_check(p, why, sizeof(why)), rcFault);
		KT_EXPECT(strstr(why, "bad class") != NULL);
		memcpy(hdr, saved, sizeof(saved));
		KT_EXPECT_EQ(pool_check(p, why, sizeof(why)), rcOk);
		/* Pointers that are not a block's start. */
		KT_EXPECT_EQ(pool_check(p + 8, why, sizeof(why)), rcFault); /* misaligned */
		KT_EXPECT(strstr(why, "not a pool address") != NULL);
		KT_EXPECT_EQ(pool_check(p + 32, why, sizeof(why)), rcFault); /* inside the data */
		KT_EXPECT(strstr(why, "header overwritten") != NULL);
	}
	KT_EXPECT_EQ(pool_check(&local, why, sizeof(why)), rcFault); /* a stack address */
	KT_EXPECT(strstr(why, "not a pool address") != NULL);
	pool_free(big);
	pool_free(small);
	/* A second free of a slot block: its header says free now. */
	KT_EXPECT_EQ(pool_check(small, why, sizeof(why)), rcFault);
	KT_EXPECT(strstr(why, "already free") != NULL);
}
