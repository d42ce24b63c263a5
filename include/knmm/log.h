/* SPDX-License-Identifier: MIT */
/*
 * The kernel log on the console (COM1): every line carries the time since kernel entry and
 * a level letter, e.g. "[    0.012345] I memory: 1023 MiB usable". The command line's
 * loglevel=N hides lines above level N (default 3, info).
 */
#ifndef KNMM_LOG_H
#define KNMM_LOG_H

#include <stdarg.h>
#include <knmm/compiler.h>

enum log_level {
	LOG_ERR = 1,
	LOG_WARN = 2,
	LOG_INFO = 3,
	LOG_DEBUG = 4,
};

extern int log_level;

/* One log line (a trailing newline in fmt is optional; embedded newlines start new lines). */
void klog(int level, const char *fmt, ...) __printf(2, 3);
void vklog(int level, const char *fmt, va_list ap);

#define pr_err(...)   klog(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  klog(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  klog(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) klog(LOG_DEBUG, __VA_ARGS__)

/* The kernel's raw console output, no prefix (KTAP lines, the monitor). */
void console_write(const char *s, size_t n);
void console_printf(const char *fmt, ...) __printf(1, 2);
/*
 * Output of task `id` (KnDebugWrite): every line it starts is prefixed "%3llu| " with its
 * id, and bytes that are not printable ASCII (other than newline and tab) are shown as '?'.
 * A line of one author is never continued by another: a kernel line, or another task's,
 * that arrives while a line is open starts on a new line. So a task cannot print anything
 * that passes for a kernel line (they begin with "[" or are the kernel's own raw output,
 * never with a task prefix).
 */
void console_write_task(uint64_t id, const char *s, size_t n);
/*
 * A prompt (the monitor's), which the console owns while it is shown: output that comes
 * meanwhile (a task's line, a log line) starts on a line of its own, and the prompt and the
 * line typed after it are drawn again below it, as readline does. console_prompt_show draws
 * `prompt` (at most CONSOLE_PROMPT_MAX characters); console_prompt_edit writes `echo` (the
 * bytes that turn what is shown into the new line: characters, "\b \b") and records `line`
 * (at most CONSOLE_PROMPT_LINE_MAX characters kept) as the line now typed, or, after an
 * interruption, draws the prompt and `line` again instead of the echo; console_prompt_end
 * ends the line (Enter): the prompt is no longer shown.
 */
#define CONSOLE_PROMPT_MAX      15
#define CONSOLE_PROMPT_LINE_MAX 127
void console_prompt_show(const char *prompt);
void console_prompt_edit(const char *echo, size_t n, const char *line, size_t len);
void console_prompt_end(void);
/* Used by panic: the console lock is taken without waiting (the holder may be the panicking
 * context itself). */
void console_break_lock(void);

/*
 * What the log stands on, registered by arch first thing in kmain (the ground floor calls
 * nothing above it): the console's output, one byte at a time, and the clock of the log's
 * time stamps. Until then output is dropped and time stamps read 0.
 */
void console_set_output(void (*putc)(char c));
void log_set_clock(uint64_t (*now_ns)(void));

/*
 * The log ring: every log line klog writes (not raw console or task output), with its
 * prefix and newline, is also appended to log_buf, the oldest bytes overwritten; no
 * allocation, written under the console lock (ignored during a panic). log_buf_next counts
 * the bytes ever appended: byte i is log_buf[i % LOG_BUF_SIZE]. For a debugger (the gdb
 * extension's kn-dmesg); the kernel does not read it.
 */
#define LOG_BUF_SIZE 65536
extern char log_buf[LOG_BUF_SIZE];
extern uint64_t log_buf_next;

#endif
