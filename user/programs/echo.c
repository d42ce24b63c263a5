// SPDX-License-Identifier: MIT
/*
 * Prints its arguments on one line, "NAME: [ARG1] [ARG2] ... (argc N)", and exits with
 * 1000 * argc + the bytes of its arguments (argv[1..]): what reached it, for the tests of
 * argument passing (the monitor's `run PROGRAM ARGS...`, tests/kernel/test_user.c). With
 * "-w MS" first it waits MS milliseconds before printing (on a child it never starts), so
 * that its line comes while the monitor's prompt is shown.
 */
#include <knlib.h>

int main(int argc, char **argv)
{
	char line[1024];
	int at = 0, code = 1000 * argc, first = 1;

	for (int i = 1; i < argc; i++)
		code += (int)strlen(argv[i]);
	if (argc > 2 && !strcmp(argv[1], "-w")) {
		uint64_t ms = 0;
		for (const char *p = argv[2]; *p >= '0' && *p <= '9'; p++)
			ms = ms * 10 + (uint64_t)(*p - '0');
		Handle timer;
		if (KnTaskCreate("echo-timer", "nop", 0, &timer) == rcOk) {
			KnTaskWait(timer, KN_TASK_STATE_EXITED, ms * 1000000ull); /* (it never starts) */
			KnHandleClose(timer);
		}
		first = 3;
	}
	at = ksnprintf(line, sizeof(line), "%s:", argc > 0 ? argv[0] : "?");
	for (int i = first; i < argc && at < (int)sizeof(line); i++)
		at += ksnprintf(line + at, sizeof(line) - (size_t)at, " [%s]", argv[i]);
	printf("%s (argc %d)\n", line, argc);
	return argv[argc] == RTL_NULL ? code : -1;
}
