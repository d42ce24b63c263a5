// SPDX-License-Identifier: MIT
#include <knlib.h>

int printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	int n = kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	KnDebugWrite(0, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	return n;
}

int puts(const char *s)
{
	KnDebugWrite(0, s, strlen(s));
	KnDebugWrite(0, "\n", 1);
	return 0;
}

static unsigned ktap_n, ktap_failed;

/* The writable part of the program's image (user/user.ld). */
extern char __data_start[], __image_end[];

void ktap_start(void)
{
	/* The loader commits .bss lazily: fault it in now, so that a test's counters move only
	 * by what the test itself does. */
	uintptr_t start = (uintptr_t)__data_start, end = (uintptr_t)__image_end;
	for (uintptr_t p = start & ~(uintptr_t)4095; p < end; p += 4096)
		(void)*(volatile char *)(p < start ? start : p);
	printf("    KTAP version 1\n");
}

bool ktap_check(bool cond, const char *name, const char *fmt, ...)
{
	char why[256] = "";
	va_list ap;

	if (!cond && fmt) {
		va_start(ap, fmt);
		kvsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	ktap_n++;
	if (cond) {
		printf("    ok %u %s\n", ktap_n, name);
	} else {
		ktap_failed++;
		printf("    not ok %u %s # %s\n", ktap_n, name, why);
	}
	return cond;
}

bool ktap_rc(Retcode got, Retcode want, const char *name)
{
	return ktap_check(got == want, name, "returned %d, expected %d", got, want);
}

void ktap_skip(const char *name, const char *reason) { printf("    ok %u %s # SKIP %s\n", ++ktap_n, name, reason); }

unsigned ktap_failures(void) { return ktap_failed; }

void ktap_done(void)
{
	printf("    1..%u\n", ktap_n);
	KnTaskExit((int)ktap_failed);
}

int run_task(const char *name, const char *program, int flags)
{
	Handle h;
	int code;
	Retcode rc = KnTaskCreate(name, program, flags, &h);
	if (rc != rcOk)
		return -1000 - rc;
	KnTaskResume(h);
	KnTaskWait(h, KN_TASK_STATE_EXITED, ~0ull);
	rc = KnTaskGetExitCode(h, &code);
	KnHandleClose(h);
	return rc == rcOk ? code : -1000 - rc;
}

void kn_thread_start(void); /* (thread_start.S) */

Retcode thread_create(void (*fn)(void *), void *arg, void *stackTop, rtl_uint32_t *tid)
{
	uintptr_t top = (uintptr_t)stackTop;
	if (top % 16 != 0)
		return rcInvalidArgument; /* (as the kernel would say: nothing is written below it) */
	uintptr_t *start = (uintptr_t *)(top - 16);
	start[0] = (uintptr_t)fn;
	start[1] = (uintptr_t)arg;
	return KnThreadCreate((rtl_uintptr_t)kn_thread_start, 0, top - 16, tid);
}

uint64_t threads_settled(uint64_t want)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < 10000; i++) {
		if ((n = mem_stats().threads) == want)
			break;
		KnThreadYield();
	}
	return n;
}

void *KnVmAllocate(void *addr, rtl_size_t size, int flags)
{
	void *out;
	return KnVmAllocateEx(addr, size, flags, &out) == rcOk ? out : RTL_NULL;
}

KnMemStats mem_stats(void)
{
	KnMemStats s;
	KnDebugGetStats(&s);
	return s;
}

__attribute__((noinline)) void stack_pregrow(rtl_size_t bytes)
{
	volatile uint8_t *pad = __builtin_alloca(bytes);
	for (rtl_size_t i = 0; i < bytes; i += 4096)
		pad[i] = 0;
}

bool ktap_counters_back(const KnMemStats *before, const char *name)
{
	KnMemStats now = mem_stats();
	return ktap_check(now.freePages == before->freePages && now.commitCharge == before->commitCharge, name,
			  "free %llu -> %llu, charge %llu -> %llu", (unsigned long long)before->freePages,
			  (unsigned long long)now.freePages, (unsigned long long)before->commitCharge,
			  (unsigned long long)now.commitCharge);
}

Handle find_handle(int type, rtl_uint32_t rights)
{
	for (rtl_size_t i = 0;; i++) {
		Handle h;
		int t;
		rtl_uint32_t r;
		if (KnHandleEnumerate(i, &h, &t, &r) != rcOk)
			return 0;
		if (t == type && (r & rights) == rights)
			return h;
	}
}
