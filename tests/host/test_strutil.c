// SPDX-License-Identifier: MIT
#include <knmm/ktest.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <arch/trap.h>

KTEST(str, glob_match)
{
	KT_EXPECT(glob_match("*", "anything"));
	KT_EXPECT(glob_match("*", ""));
	KT_EXPECT(glob_match("pt.*", "pt.map"));
	KT_EXPECT(!glob_match("pt.*", "paging.x"));
	KT_EXPECT(glob_match("*map*", "pt.map_unmap"));
	KT_EXPECT(glob_match("p?.m*p", "pt.map_unmap"));
	KT_EXPECT(!glob_match("p?.m*x", "pt.map_unmap"));
	KT_EXPECT(glob_match("a*b*c", "aXbYbZc"));
	KT_EXPECT(!glob_match("abc", "abcd"));
}

KTEST(str, parse_u64)
{
	uint64_t v = 0;
	const char *end;

	KT_EXPECT(parse_u64("123", &v, NULL) && v == 123);
	KT_EXPECT(parse_u64("0x1F", &v, NULL) && v == 31);
	KT_EXPECT(parse_u64("256G", &v, NULL) && v == 256ull << 30);
	KT_EXPECT(parse_u64("64m", &v, NULL) && v == 64ull << 20);
	KT_EXPECT(!parse_u64("", &v, NULL));
	KT_EXPECT(!parse_u64("0x", &v, NULL));
	KT_EXPECT(!parse_u64("12x", &v, NULL));
	KT_EXPECT(!parse_u64("18446744073709551616", &v, NULL)); /* 2^64 */
	KT_EXPECT(parse_u64("18446744073709551615", &v, NULL) && v == UINT64_MAX);
	KT_EXPECT(!parse_u64("17179869184G", &v, NULL)); /* 2^34 GiB overflows */
	KT_EXPECT(parse_u64("42 rest", &v, &end) && v == 42 && *end == ' ');
}

KTEST(str, strlcpy_truncates_and_terminates)
{
	char buf[4] = "xyz";

	KT_EXPECT_EQ(kstrlcpy(buf, "hello", sizeof(buf)), 5);
	KT_EXPECT(strcmp(buf, "hel") == 0);
	KT_EXPECT_EQ(kstrlcpy(buf, "", sizeof(buf)), 0);
	KT_EXPECT_EQ(buf[0], '\0');
}

KTEST(printf, conversions)
{
	char b[128];

	ksnprintf(b, sizeof(b), "%d|%5d|%-5d|%05d|%+d|% d", -42, 42, 42, 42, 7, 7);
	KT_EXPECT(strcmp(b, "-42|   42|42   |00042|+7| 7") == 0);
	ksnprintf(b, sizeof(b), "%x|%X|%#x|%08llx|%#018llx", 255u, 255u, 255u, 0xabcULL, 0xffffffff80000000ULL);
	KT_EXPECT(strcmp(b, "ff|FF|0xff|00000abc|0xffffffff80000000") == 0);
	ksnprintf(b, sizeof(b), "%s|%.3s|%6s|%-6s|%c|%%", "str", "abcdef", "ab", "ab", 'z');
	KT_EXPECT(strcmp(b, "str|abc|    ab|ab    |z|%") == 0);
	ksnprintf(b, sizeof(b), "%zu|%llu|%lld|%hhd|%hu|%o", (size_t)123, 18446744073709551615ULL,
		  -9223372036854775807LL - 1, (signed char)300, (unsigned short)70000, 8u);
	KT_EXPECT(strcmp(b, "123|18446744073709551615|-9223372036854775808|44|4464|10") == 0);
	ksnprintf(b, sizeof(b), "%*d|%-*d|%.*s|%p|%s", 4, 1, 3, 2, 2, "xyz", (void *)0x1000, (char *)NULL);
	KT_EXPECT(strcmp(b, "   1|2  |xy|0x1000|(null)") == 0);
	ksnprintf(b, sizeof(b), "%.0d|%.3d", 0, 5);
	KT_EXPECT(strcmp(b, "|005") == 0);
}

KTEST(printf, truncation_returns_full_length)
{
	char b[8];

	KT_EXPECT_EQ(ksnprintf(b, sizeof(b), "%s", "0123456789"), 10);
	KT_EXPECT(strcmp(b, "0123456") == 0);
	KT_EXPECT_EQ(ksnprintf(b, 0, "abc"), 3);
	KT_EXPECT_EQ(ksnprintf(b, 1, "abc"), 3);
	KT_EXPECT_EQ(b[0], '\0');
}

KTEST(trap, page_fault_error_decoding)
{
	char b[96];

	pf_error_describe(0, b, sizeof(b));
	KT_EXPECT(strcmp(b, "not-present read kernel") == 0);
	pf_error_describe(PF_ERR_P | PF_ERR_W | PF_ERR_U, b, sizeof(b));
	KT_EXPECT(strcmp(b, "protection write user") == 0);
	pf_error_describe(PF_ERR_P | PF_ERR_I, b, sizeof(b));
	KT_EXPECT(strcmp(b, "protection exec kernel") == 0);
	pf_error_describe(PF_ERR_RSVD | PF_ERR_PK, b, sizeof(b));
	KT_EXPECT(strcmp(b, "not-present read kernel reserved-bit protection-key") == 0);
	pf_error_describe(PF_ERR_P | PF_ERR_W, b, 12);
	KT_EXPECT(strcmp(b, "protection ") == 0);
}

KTEST(trap, names)
{
	KT_EXPECT(strcmp(trap_name(VEC_PF), "page fault") == 0);
	KT_EXPECT(strcmp(trap_name(VEC_GP), "general protection") == 0);
	KT_EXPECT(strcmp(trap_name(VEC_DF), "double fault") == 0);
	KT_EXPECT(strcmp(trap_name(15), "reserved exception") == 0);
	KT_EXPECT(strcmp(trap_name(40), "interrupt") == 0);
}
