// SPDX-License-Identifier: MIT
#include <knmm/align.h>
#include <knmm/ktest.h>

KTEST(align, up_down_and_checks)
{
	KT_EXPECT_EQ(align_down(0x1fff, PAGE_SIZE), 0x1000);
	KT_EXPECT_EQ(align_up(0x1001, PAGE_SIZE), 0x2000);
	KT_EXPECT_EQ(align_up(0x2000, PAGE_SIZE), 0x2000);
	KT_EXPECT_EQ(align_up(0, SIZE_2M), 0);
	KT_EXPECT(is_aligned(GiB(3), SIZE_1G));
	KT_EXPECT(!is_aligned(GiB(3) + PAGE_SIZE, SIZE_2M));
	KT_EXPECT(is_pow2(SIZE_2M));
	KT_EXPECT(!is_pow2(0));
	KT_EXPECT(!is_pow2(SIZE_2M + PAGE_SIZE));
}

KTEST(align, checked_round_up_detects_overflow)
{
	uint64_t out = 7;

	KT_EXPECT(!align_up_checked(UINT64_MAX - 10, PAGE_SIZE, &out));
	KT_EXPECT_EQ(out, 7);
	KT_EXPECT(align_up_checked(UINT64_MAX - PAGE_SIZE - 10, PAGE_SIZE, &out));
	KT_EXPECT_EQ(out, UINT64_MAX - PAGE_SIZE + 1);
}

KTEST(align, ranges)
{
	KT_EXPECT(range_valid(0x1000, 0x1000));
	KT_EXPECT(!range_valid(0x1000, 0));
	KT_EXPECT(!range_valid(UINT64_MAX - 0xfff, 0x1000)); /* ends exactly at 2^64: wraps */
	KT_EXPECT(!range_valid(UINT64_MAX, 2));
	KT_EXPECT(ranges_overlap(0x1000, 0x2000, 0x2fff, 1));
	KT_EXPECT(!ranges_overlap(0x1000, 0x2000, 0x3000, 1));
	KT_EXPECT(!ranges_overlap(0x3000, 1, 0x1000, 0x2000));
	KT_EXPECT_EQ(pages_of(0), 0);
	KT_EXPECT_EQ(pages_of(1), 1);
	KT_EXPECT_EQ(pages_of(PAGE_SIZE + 1), 2);
	KT_EXPECT_EQ(ilog2_u64(1), 0);
	KT_EXPECT_EQ(ilog2_u64(SIZE_2M), 21);
	KT_EXPECT_EQ(ilog2_u64(SIZE_2M + 1), 21);
	KT_EXPECT_EQ(ilog2_u64(UINT64_MAX), 63);
}
