// SPDX-License-Identifier: MIT
/* The test runner, shared by the kernel and the host test binary (see knmm/ktest.h). */
#include <stdarg.h>
#include <knmm/ktest.h>
#include <knmm/log.h>
#include <knmm/printf.h>
#include <knmm/string.h>

extern const struct ktest *const __start_ktests[], *const __stop_ktests[];

/* Weak: a build without fixtures has no such section (both bounds are then 0). */
extern const struct ktest_fixture *const __start_ktest_fixtures[] __attribute__((weak));
extern const struct ktest_fixture *const __stop_ktest_fixtures[] __attribute__((weak));

void ktest_fail(struct ktest_ctx *t, const char *file, int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	kvsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->failures++;
	console_printf("# %s: %s:%d: %s\n", t->name, file, line, msg);
}

void ktest_skip(struct ktest_ctx *t, const char *reason)
{
	t->skipped = true;
	kstrlcpy(t->skip_reason, reason, sizeof(t->skip_reason));
}

/* `name` matches one of the comma-separated globs. */
static bool selected(const char *globs, const char *name)
{
	char one[96];

	for (const char *p = globs; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len < sizeof(one)) {
			memcpy(one, p, len);
			one[len] = '\0';
			if (len && glob_match(one, name))
				return true;
		}
		p += len + (comma ? 1 : 0);
	}
	return false;
}

#define KTEST_MAX 2048

unsigned ktest_run(const char *globs)
{
	static const struct ktest *run[KTEST_MAX];
	unsigned planned = 0, n = 0, failed = 0;

	/* The selected tests in name order (link order is not stable across toolchains). */
	for (const struct ktest *const *p = __start_ktests; p < __stop_ktests && planned < KTEST_MAX; p++) {
		if (!selected(globs, (*p)->name))
			continue;
		unsigned i = planned++;
		while (i > 0 && strcmp(run[i - 1]->name, (*p)->name) > 0) {
			run[i] = run[i - 1];
			i--;
		}
		run[i] = *p;
	}
	console_printf("KTAP version 1\n1..%u\n", planned);

	for (unsigned i = 0; i < planned; i++) {
		const struct ktest *k = run[i];
		struct ktest_ctx t = { .name = k->name };
		char leak[160];

		for (const struct ktest_fixture *const *f = __start_ktest_fixtures; f < __stop_ktest_fixtures; f++)
			(*f)->begin();
		k->fn(&t);
		for (const struct ktest_fixture *const *f = __start_ktest_fixtures; f < __stop_ktest_fixtures; f++) {
			leak[0] = 0;
			if ((*f)->end(leak, sizeof(leak))) {
				console_printf("# %s: %s: %s\n", k->name, (*f)->name, leak);
				t.failures++;
			}
		}
		n++;
		if (t.failures) {
			failed++;
			console_printf("not ok %u %s # %u check%s failed\n", n, k->name, t.failures,
				       t.failures == 1 ? "" : "s");
		} else if (t.skipped) {
			console_printf("ok %u %s # SKIP %s\n", n, k->name, t.skip_reason);
		} else if (t.checks == 0) {
			/* A test that checks nothing cannot fail: count it as a failure. */
			failed++;
			console_printf("not ok %u %s # made no checks\n", n, k->name);
		} else {
			console_printf("ok %u %s\n", n, k->name);
		}
	}
	console_printf("# %u tests: %u passed, %u failed\n", n, n - failed, failed);
	return failed;
}
