/* SPDX-License-Identifier: MIT */
/*
 * Test cases, registered at compile time in the `ktests` section and run by ktest_run() in
 * the kernel (selected by test=GLOB on the command line) or by the host test binary.
 * Results are KTAP version 1 on the console:
 *
 *   KTAP version 1
 *   1..3
 *   # pt.map_unmap_4k: tests/kernel/test_pt.c:42: expected ...   (diagnostics, if any)
 *   ok 1 pt.map_unmap_4k
 *   not ok 2 pt.something # 1 check failed
 *   ok 3 pt.huge # SKIP CPU has no 1 GiB pages
 *
 *   KTEST(pt, map_unmap_4k) { KT_EXPECT_EQ(a, b); KT_ASSERT(p != NULL); ... }
 *
 * KT_EXPECT* record a failure and go on; KT_ASSERT* also return from the test. Inside a
 * test, `t` is the test context.
 */
#ifndef KNMM_KTEST_H
#define KNMM_KTEST_H

#include <knmm/compiler.h>

struct ktest_ctx {
	const char *name;
	unsigned checks, failures;
	bool skipped;
	char skip_reason[96];
};

struct ktest {
	const char *name;
	void (*fn)(struct ktest_ctx *t);
};

#define KTEST_ID_(suite, name) ktest_##suite##__##name
#define KTEST(suite, name)                                                                                      \
	static void KTEST_ID_(suite, name)(struct ktest_ctx * t);                                               \
	static const struct ktest KTEST_ID_(suite, name##_desc) = { #suite "." #name, KTEST_ID_(suite, name) }; \
	static const struct ktest *const KTEST_ID_(suite, name##_ptr) __section("ktests") __used =              \
		&KTEST_ID_(suite, name##_desc);                                                                 \
	static void KTEST_ID_(suite, name)(struct ktest_ctx * t)

void ktest_fail(struct ktest_ctx *t, const char *file, int line, const char *fmt, ...) __printf(4, 5);
void ktest_skip(struct ktest_ctx *t, const char *reason);

#define KT_EXPECT(cond)                                                          \
	do {                                                                     \
		t->checks++;                                                     \
		if (!(cond))                                                     \
			ktest_fail(t, __FILE__, __LINE__, "expected %s", #cond); \
	} while (0)

#define KT_ASSERT(cond)                                                          \
	do {                                                                     \
		t->checks++;                                                     \
		if (!(cond)) {                                                   \
			ktest_fail(t, __FILE__, __LINE__, "required %s", #cond); \
			return;                                                  \
		}                                                                \
	} while (0)

#define KT_CMP_(a, op, b, on_fail)                                                                                \
	do {                                                                                                      \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                                  \
		t->checks++;                                                                                      \
		if (!(a_ op b_)) {                                                                                \
			ktest_fail(t, __FILE__, __LINE__, "%s %s %s: %#llx vs %#llx (%lld vs %lld)", #a, #op, #b, \
				   (unsigned long long)a_, (unsigned long long)b_, (long long)a_, (long long)b_); \
			on_fail;                                                                                  \
		}                                                                                                 \
	} while (0)

#define KT_EXPECT_EQ(a, b) KT_CMP_(a, ==, b, (void)0)
#define KT_EXPECT_NE(a, b) KT_CMP_(a, !=, b, (void)0)
#define KT_EXPECT_LE(a, b) KT_CMP_(a, <=, b, (void)0)
#define KT_EXPECT_GE(a, b) KT_CMP_(a, >=, b, (void)0)
#define KT_ASSERT_EQ(a, b) KT_CMP_(a, ==, b, return )
#define KT_ASSERT_NE(a, b) KT_CMP_(a, !=, b, return )

#define KT_SKIP(reason)                \
	do {                           \
		ktest_skip(t, reason); \
		return;                \
	} while (0)

/* Runs the tests whose names match one of the comma-separated globs; prints KTAP.
 * Returns the number of failed tests. */
unsigned ktest_run(const char *globs);

/*
 * Fixtures wrap every test: begin() runs before it, end() after it and returns true, with a
 * description in buf, when the test left something behind (a failure). They are registered
 * like tests, so only what links tests carries them (tests/kernel/leak.c: free pages and
 * commit charge must come back).
 */
struct ktest_fixture {
	const char *name;
	void (*begin)(void);
	bool (*end)(char *buf, size_t size);
};
#define KTEST_FIXTURE(id, begin_fn, end_fn)                                                                    \
	static const struct ktest_fixture ktest_fixture_##id = { #id, begin_fn, end_fn };                      \
	static const struct ktest_fixture *const ktest_fixture_##id##_ptr __section("ktest_fixtures") __used = \
		&ktest_fixture_##id

#endif
