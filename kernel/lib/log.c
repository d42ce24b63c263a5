// SPDX-License-Identifier: MIT
/*
 * Console and log. The console is whatever arch registered (COM1); '\n' goes out as "\r\n"
 * for terminals. Log lines get "[seconds.micros] L " in front (L = E, W, I, D); task output
 * gets "ID| " (see knmm/log.h), and the console keeps track of who owns the line being
 * written. A prompt the console is told of (console_prompt_show) is erased from its line
 * by output that interrupts it, and drawn again below, with the line typed after it.
 * Every log line, prefix and all, is also kept in log_buf (knmm/log.h), for a debugger.
 */
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/printf.h>
#include <knmm/spinlock.h>
#include <knmm/string.h>

int log_level = LOG_INFO;
volatile bool panic_in_progress;

static void (*console_putc)(char c);
static uint64_t (*log_clock)(void);

void console_set_output(void (*putc)(char c)) { console_putc = putc; }
void log_set_clock(uint64_t (*now_ns)(void)) { log_clock = now_ns; }

static spinlock_t console_lock = SPINLOCK_INIT("console", LOCK_RANK_CONSOLE);
/* The line being written: its author (0 the kernel, else a task id), and whether it is
 * still empty. Lock held. */
static uint64_t line_owner;
static bool line_empty = true;

/* During a panic the lock is ignored: its holder may be the context that panicked. */
static inline void console_assert_held(void)
{
	if (!panic_in_progress)
		spin_assert_held(&console_lock);
}

static void console_put_locked(const char *s, size_t n)
{
	void (*putc)(char) = console_putc;

	console_assert_held();
	for (size_t i = 0; putc && i < n; i++) {
		if (s[i] == '\n')
			putc('\r');
		putc(s[i]);
	}
	if (n)
		line_empty = s[n - 1] == '\n';
}

/* The prompt shown (knmm/log.h), owned here so that the console can draw it again: its
 * text, the line typed after it so far, and whether other output cut it off (it is then
 * drawn again once that output has ended its line). Lock held. */
static bool prompt_shown, prompt_cut;
static char prompt_text[CONSOLE_PROMPT_MAX + 1], prompt_line[CONSOLE_PROMPT_LINE_MAX + 1];
static size_t prompt_text_len, prompt_line_len;

static void prompt_draw_locked(void)
{
	console_assert_held();
	console_put_locked(prompt_text, prompt_text_len);
	console_put_locked(prompt_line, prompt_line_len);
	prompt_cut = false;
}

/*
 * Other output comes: the prompt's line is taken away first (once), as readline does: a
 * carriage return and "erase to the end of the line" (ESC [ K), so the output takes its
 * place and the prompt is drawn again below it. A prompt and line that may have wrapped on
 * an 80-column terminal (where erasing the last row would leave the rest) are ended with a
 * newline instead, and stay above the output.
 */
#define PROMPT_ERASE_COLUMNS 80
static void prompt_interrupt_locked(void)
{
	console_assert_held();
	if (!prompt_shown || prompt_cut || panic_in_progress)
		return; /* (a panic's lines go out as they are, and no prompt after them) */
	if (prompt_text_len + prompt_line_len < PROMPT_ERASE_COLUMNS) {
		console_put_locked("\r\x1b[K", 4);
		line_empty = true;
	} else {
		console_put_locked("\n", 1);
	}
	prompt_cut = true;
}

/* Other output went out: the prompt comes back below it once its line is ended. */
static void prompt_restore_locked(void)
{
	console_assert_held();
	if (prompt_shown && prompt_cut && line_empty && !panic_in_progress) {
		line_owner = 0;
		prompt_draw_locked();
	}
}

/* Output of `owner` comes next: a line another author left open is closed first. */
static void console_claim_locked(uint64_t owner)
{
	console_assert_held();
	if (!line_empty && line_owner != owner)
		console_put_locked("\n", 1);
	line_owner = owner;
}

static bool console_lock_take(void) { return panic_in_progress ? false : spin_lock_irqsave(&console_lock); }

static void console_lock_drop(bool irq)
{
	if (!panic_in_progress)
		spin_unlock_irqrestore(&console_lock, irq);
}

void console_break_lock(void) { spin_break(&console_lock); }

/* The log ring (knmm/log.h): log_buf_next counts every byte ever appended; byte i is at
 * log_buf[i % LOG_BUF_SIZE]. Lock held (or a panic in progress). */
char log_buf[LOG_BUF_SIZE];
uint64_t log_buf_next;

static void log_buf_append_locked(const char *s, size_t n)
{
	console_assert_held();
	for (size_t i = 0; i < n; i++)
		log_buf[log_buf_next++ % LOG_BUF_SIZE] = s[i];
}

void console_write(const char *s, size_t n)
{
	bool irq = console_lock_take();
	prompt_interrupt_locked();
	console_claim_locked(0);
	console_put_locked(s, n);
	prompt_restore_locked();
	console_lock_drop(irq);
}

void console_prompt_show(const char *prompt)
{
	bool irq = console_lock_take();
	console_claim_locked(0);
	prompt_text_len = kstrlcpy(prompt_text, prompt, sizeof(prompt_text));
	if (prompt_text_len >= sizeof(prompt_text))
		prompt_text_len = sizeof(prompt_text) - 1;
	prompt_line_len = 0;
	prompt_shown = true;
	prompt_draw_locked();
	console_lock_drop(irq);
}

void console_prompt_edit(const char *echo, size_t n, const char *line, size_t len)
{
	bool irq = console_lock_take();
	console_claim_locked(0);
	if (len > CONSOLE_PROMPT_LINE_MAX)
		len = CONSOLE_PROMPT_LINE_MAX;
	memcpy(prompt_line, line, len);
	prompt_line_len = len;
	if (prompt_shown && prompt_cut)
		prompt_draw_locked(); /* (the whole line as it is now: no echo needed) */
	else
		console_put_locked(echo, n);
	console_lock_drop(irq);
}

void console_prompt_end(void)
{
	bool irq = console_lock_take();
	console_claim_locked(0);
	if (prompt_shown && prompt_cut)
		prompt_draw_locked();
	console_put_locked("\n", 1);
	prompt_shown = false;
	console_lock_drop(irq);
}

void console_write_task(uint64_t id, const char *s, size_t n)
{
	char prefix[24];
	int plen = ksnprintf(prefix, sizeof(prefix), "%3llu| ", (unsigned long long)id);

	/* Interrupts off, as for every console write: the timer's handler takes the
	 * scheduler's lock, which ranks below the console's (a panic ignores the lock). */
	if (panic_in_progress)
		return;
	bool irq = spin_lock_irqsave(&console_lock);
	prompt_interrupt_locked();
	console_claim_locked(id);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (line_empty)
			console_put_locked(prefix, (size_t)plen);
		if (c != '\n' && c != '\t' && (c < 0x20 || c > 0x7e))
			c = '?'; /* no escape sequences, carriage returns or C1 controls */
		console_put_locked(&c, 1);
	}
	prompt_restore_locked();
	spin_unlock_irqrestore(&console_lock, irq);
}

void console_printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	int n = kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void vklog(int level, const char *fmt, va_list ap)
{
	static const char letters[] = "?EWID";
	char msg[512], prefix[32];

	if (level > log_level)
		return;
	int n = kvsnprintf(msg, sizeof(msg), fmt, ap);
	size_t len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	while (len && msg[len - 1] == '\n')
		len--;

	uint64_t ns = log_clock ? log_clock() : 0;
	int plen = ksnprintf(prefix, sizeof(prefix), "[%5llu.%06llu] %c ", (unsigned long long)(ns / 1000000000u),
			     (unsigned long long)(ns / 1000u % 1000000u), letters[level < 1 || level > 4 ? 0 : level]);

	bool irq = console_lock_take();
	prompt_interrupt_locked();
	console_claim_locked(0);
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || msg[i] == '\n') {
			console_put_locked(prefix, (size_t)plen);
			console_put_locked(msg + start, i - start);
			console_put_locked("\n", 1);
			log_buf_append_locked(prefix, (size_t)plen);
			log_buf_append_locked(msg + start, i - start);
			log_buf_append_locked("\n", 1);
			start = i + 1;
		}
	}
	prompt_restore_locked();
	console_lock_drop(irq);
}

void klog(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vklog(level, fmt, ap);
	va_end(ap);
}
