// SPDX-License-Identifier: MIT
/*
 * The monitor (SPEC §8, the `monitor` command line): a prompt on the serial console, for
 * looking inside the memory subsystem the way !vm, !pte and !poolused do in WinDbg.
 *
 *   help, vm, tasks, regions TASK, maps TASK, pte TASK VA, usage TASK VA, pool, mdl, buddy, pfn PA,
 *   run [-n NAME] PROGRAM [ARGS...], resume TASK, kill TASK, dump TASK [MS], halt
 *
 * TASK is a task id or name. One table (`commands`) names each command, the arguments it
 * takes, the function that runs it and its help line; a line's first word is looked up there.
 * It runs on the boot thread, polls COM1 (sleeping a few milliseconds between polls, so tasks
 * keep running), edits the line (backspace, Ctrl-U), and answers a bad command or argument
 * with one line. Nothing it is asked makes it fail, and nothing makes it wait without a bound
 * (`dump` gives the collector a time limit).
 *
 * Reports read a task's space under the space's lock (its counters, its regions, its page
 * tables: tables are freed only under that lock, or after the last region is gone, when the
 * root is zero), taken with interrupts off; they print from what they read.
 */
#include <arch/time.h>
#include <arch/cpu.h>
#include <arch/pt.h>
#include <arch/qemu.h>
#include <arch/serial.h>
#include <knmm/log.h>
#include <knmm/printf.h>
#include <knmm/string.h>
#include <mm/mdl.h>
#include <mm/mm.h>
#include <mm/pool.h>
#include <mm/vm.h>
#include <kernel/main.h>
#include <kernel/monitor.h>
#include <kernel/sched.h>
#include <kernel/task.h>

#define LINE_MAX         120
#define POLL_NS          5000000ull     /* 5 ms between looks at the UART */
#define DUMP_WAIT        10000000000ull /* for the target to stop, and the default for the collector */
#define DUMP_WAIT_MAX_MS 3600000ull

static struct wait_queue idle_wq = WAIT_QUEUE_INIT(idle_wq);

/* A character from COM1, sleeping between polls (tasks run meanwhile). */
static int read_char(void)
{
	for (;;) {
		int c = serial_getc(COM1_PORT);
		if (c >= 0)
			return c;
		bool irq = sched_lock();
		wq_wait_locked(&idle_wq, clock_ns() + POLL_NS);
		sched_unlock(irq);
	}
}

/* The last lines entered, oldest first: up and down arrows bring them back. */
#define HISTORY 16
static char history[HISTORY][LINE_MAX];
static unsigned history_len;

static void history_add(const char *line)
{
	if (!*line || (history_len && strcmp(history[history_len - 1], line) == 0))
		return;
	if (history_len == HISTORY) {
		memmove(history[0], history[1], sizeof(history[0]) * (HISTORY - 1));
		history_len--;
	}
	kstrlcpy(history[history_len++], line, LINE_MAX);
}

/* Replaces the n characters shown of the line being edited with `text`; returns the new
 * length. */
static size_t replace_shown(char *buf, size_t n, const char *text, size_t size)
{
	char echo[4 * LINE_MAX];
	size_t e = 0;
	while (n) {
		n--;
		memcpy(echo + e, "\b \b", 3);
		e += 3;
	}
	n = kstrlcpy(buf, text, size);
	if (n >= size)
		n = size - 1;
	memcpy(echo + e, buf, n);
	console_prompt_edit(echo, e + n, buf, n);
	return n;
}

/*
 * A line, echoed after the prompt: backspace, Ctrl-U (the whole line), up and down arrows
 * (history); other escape sequences (cursor keys, function keys) are swallowed, not echoed.
 * A line longer than the buffer is refused whole with one line saying so (never cut
 * silently). The console holds the prompt and the line typed so far (console_prompt_*,
 * knmm/log.h): output that comes meanwhile has both drawn again below it.
 */
static void read_line(const char *prompt, char *buf, size_t size)
{
	size_t n = 0;
	unsigned h = history_len; /* the history entry shown; history_len: the new line */
	bool too_long = false;
	console_prompt_show(prompt);
	for (;;) {
		int c = read_char();
		if (c == '\r' || c == '\n') {
			console_prompt_end();
			buf[n] = 0;
			if (too_long) {
				console_printf("monitor: line too long (at most %llu characters): ignored\n",
					       (unsigned long long)(size - 1));
				buf[0] = 0;
			}
			history_add(buf);
			return;
		}
		if (c == 0x1b) { /* ESC [ parameters final: a key that is not a character */
			int d = read_char();
			if (d != '[' && d != 'O')
				continue;
			do
				d = read_char();
			while (d >= 0x20 && d < 0x40);
			if (d == 'A' && h > 0)
				n = replace_shown(buf, n, history[--h], size);
			else if (d == 'B' && h < history_len)
				n = replace_shown(buf, n, ++h < history_len ? history[h] : "", size);
			continue;
		}
		if (c == 0x7f || c == 0x08) { /* backspace */
			if (n) {
				n--;
				console_prompt_edit("\b \b", 3, buf, n);
			}
		} else if (c == 0x15) { /* Ctrl-U: the whole line */
			n = replace_shown(buf, n, "", size);
			too_long = false;
		} else if (c >= 0x20 && c < 0x7f) {
			if (n + 1 < size) {
				buf[n++] = (char)c;
				char ch = (char)c;
				console_prompt_edit(&ch, 1, buf, n);
			} else {
				too_long = true;
			}
		}
	}
}

/* Splits a line into at most `max` words (in place). */
static unsigned split(char *line, char **argv, unsigned max)
{
	unsigned argc = 0;
	for (char *p = line; *p && argc < max;) {
		while (*p == ' ' || *p == '\t')
			*p++ = 0;
		if (!*p)
			break;
		argv[argc++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return argc;
}

static bool parse_address(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
			d = (unsigned)((*s | 0x20) - 'a' + 10);
		else
			return false;
		if (v >> 60)
			return false; /* too long */
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

static struct task *task_arg(const char *spec)
{
	struct task *t = task_find(spec);
	if (!t)
		console_printf("monitor: no task '%s' (tasks lists them)\n", spec);
	return t;
}

/* TASK for a command that reads its regions: NULL, said why, when there is no such task or it
 * has exited (its space is torn down); else a reference (task_put). */
static struct task *task_with_regions(const char *spec)
{
	struct task *t = task_arg(spec);
	if (t && t->state == KN_TASK_STATE_EXITED) {
		console_printf("monitor: task %llu '%s' has exited: no regions\n", (unsigned long long)t->id, t->name);
		task_put(t);
		t = NULL;
	}
	return t;
}

/* ------------------------------------------------------------------ commands */

/* A line has at most the command and MAX_ARGS words: more is too many. The most a command
 * takes: run -n NAME PROGRAM and KN_TASK_ARGS_MAX arguments. */
#define MAX_ARGS (3 + KN_TASK_ARGS_MAX)

/* A command's arguments (the words after its name). */
struct args {
	unsigned n;
	const char *v[MAX_ARGS];
};

static struct vm_space_stats space_stats(struct task *t)
{
	struct vm_space_stats st;
	vm_space_stats(&t->vs, &st);
	return st;
}

static void task_line(struct task *t, void *arg)
{
	(void)arg;
	struct vm_space_stats c = space_stats(t);
	console_printf("%5llu  %-8s %7u %8llu %10llu %9llu  %s\n", (unsigned long long)t->id, task_state_name(t->state),
		       t->nthreads, (unsigned long long)c.regions, (unsigned long long)c.committed,
		       (unsigned long long)c.resident, t->name);
}

static void cmd_tasks(const struct args *a)
{
	(void)a;
	console_printf("%5s  %-8s %7s %8s %10s %9s  %s\n", "ID", "STATE", "THREADS", "REGIONS", "COMMITTED", "RESIDENT",
		       "NAME");
	task_for_each(task_line, NULL);
}

static void vm_task_line(struct task *t, void *arg)
{
	(void)arg;
	struct vm_space_stats c = space_stats(t);
	console_printf("vm:   Task %-4llu %-24s %llu regions, private commit %llu pages, %llu resident, %llu locked\n",
		       (unsigned long long)t->id, t->name, (unsigned long long)c.regions,
		       (unsigned long long)c.private_commit, (unsigned long long)c.resident,
		       (unsigned long long)c.locked);
}

static void cmd_vm(const struct args *a)
{
	(void)a;
	vm_print_report();
	task_for_each(vm_task_line, NULL);
}

static void cmd_regions(const struct args *a)
{
	struct task *t = task_with_regions(a->v[0]);
	if (!t)
		return;
	console_printf("regions of task %llu '%s' (%llu):\n", (unsigned long long)t->id, t->name,
		       (unsigned long long)space_stats(t).regions);
	vm_print_regions(&t->vs);
	task_put(t);
}

static void cmd_maps(const struct args *a)
{
	struct task *t = task_with_regions(a->v[0]);
	if (!t)
		return;
	vm_print_maps(&t->vs);
	task_put(t);
}

static void cmd_pte(const struct args *a)
{
	const char *spec = a->v[0], *va_text = a->v[1];
	uint64_t va;
	if (!parse_address(va_text, &va) || !va_is_canonical(va)) {
		console_printf("monitor: bad address '%s' (hexadecimal, canonical)\n", va_text);
		return;
	}
	struct task *t = task_arg(spec);
	if (!t)
		return;
	/* A space being torn down has no regions left once its root is freed: nothing to walk. */
	struct pt_trace tr;
	uint64_t root = 0;
	bool live = t->state != KN_TASK_STATE_EXITED && vm_space_trace(&t->vs, va, &tr, &root);
	if (!live) {
		console_printf("monitor: task %llu '%s' has exited: no page tables\n", (unsigned long long)t->id,
			       t->name);
		task_put(t);
		return;
	}
	console_printf("pte of %#llx in task %llu '%s' (root %#llx):\n", (unsigned long long)va,
		       (unsigned long long)t->id, t->name, (unsigned long long)root);
	for (unsigned i = 0; i < tr.n; i++)
		console_printf("  %-4s[%3u] %#018llx  %s\n", tr.step[i].level_name, tr.step[i].index,
			       (unsigned long long)tr.step[i].entry, tr.step[i].text);
	vm_print_page(&t->vs, va);
	task_put(t);
}

static void cmd_usage(const struct args *a)
{
	uint64_t va;
	if (!parse_address(a->v[1], &va) || !va_is_canonical(va)) {
		console_printf("monitor: bad address '%s' (hexadecimal, canonical)\n", a->v[1]);
		return;
	}
	struct task *t = task_with_regions(a->v[0]);
	if (!t)
		return;
	if (!vm_print_usage(&t->vs, va))
		console_printf("monitor: no region of task %llu '%s' holds %#llx (regions lists them)\n",
			       (unsigned long long)t->id, t->name, (unsigned long long)va);
	task_put(t);
}

static void cmd_pool(const struct args *a)
{
	(void)a;
	struct pool_tag_stats tags[32];
	unsigned n = pool_tag_usage(tags, 32);
	console_printf("pool: %llu pages\n %-4s %10s %10s %12s %14s\n", (unsigned long long)pool_pages(), "Tag",
		       "Allocs", "Frees", "Outstanding", "Bytes in use");
	for (unsigned i = 0; i < n; i++) {
		char name[5];
		pool_tag_name(tags[i].tag, name);
		console_printf(" %-4s %10llu %10llu %12llu %14llu\n", name, (unsigned long long)tags[i].allocs,
			       (unsigned long long)tags[i].frees, (unsigned long long)(tags[i].allocs - tags[i].frees),
			       (unsigned long long)tags[i].bytes);
	}
}

static void cmd_resume(const struct args *a)
{
	struct task *t = task_arg(a->v[0]);
	if (!t)
		return;
	if (task_resume(t) == rcOk)
		console_printf("resumed task %llu '%s'\n", (unsigned long long)t->id, t->name);
	else
		console_printf("monitor: task %llu '%s' is %s: only a created task can be resumed (a frozen one never "
			       "runs again)\n",
			       (unsigned long long)t->id, t->name, task_state_name(t->state));
	task_put(t);
}

static void cmd_buddy(const struct args *a)
{
	(void)a;
	buddy_report();
}

static void cmd_pfn(const struct args *a)
{
	uint64_t pa;
	if (!parse_address(a->v[0], &pa)) {
		console_printf("monitor: bad address '%s' (hexadecimal)\n", a->v[0]);
		return;
	}
	pfn_report(pa);
}

static void cmd_kill(const struct args *a)
{
	struct task *t = task_arg(a->v[0]);
	if (!t)
		return;
	if (t->state == KN_TASK_STATE_EXITED) {
		console_printf("monitor: task %llu '%s' has already exited\n", (unsigned long long)t->id, t->name);
	} else {
		task_terminate(t, KN_EXIT_TERMINATED, true);
		console_printf("killed task %llu '%s'\n", (unsigned long long)t->id, t->name);
	}
	task_put(t);
}

static void cmd_mdl(const struct args *a)
{
	(void)a;
	mdl_report();
}

/* The programs `run` can start: the boot modules that are ELF programs. */
static void list_programs(void)
{
	console_printf("programs:");
	for (unsigned i = 0; i < boot_info.nr_modules; i++)
		console_printf(" %s", boot_info.modules[i].name);
	console_printf("\n");
}

/* run [-n NAME] PROGRAM [ARGS...]: the task gets argv = { NAME, ARGS..., NULL }. */
static void cmd_run(const struct args *a)
{
	if (a->n == 0) {
		list_programs();
		return;
	}
	unsigned at = 0;
	const char *name = NULL;
	if (!strcmp(a->v[0], "-n")) {
		if (a->n < 3) {
			console_printf("monitor: run -n NAME PROGRAM [ARGS...]: a name and a program are needed\n");
			return;
		}
		name = a->v[1];
		at = 2;
	} else if (a->v[0][0] == '-') {
		console_printf("monitor: run: unknown option '%s' (-n NAME is the one)\n", a->v[0]);
		return;
	}
	const char *program = a->v[at++];
	if (!name)
		name = program;
	if (strlen(name) > KN_TASK_NAME_MAX) {
		console_printf("monitor: task name '%s' is too long (at most %u characters)\n", name, KN_TASK_NAME_MAX);
		return;
	}
	unsigned argc = a->n - at;
	if (argc > KN_TASK_ARGS_MAX) {
		console_printf("monitor: run: %u arguments, at most %u\n", argc, KN_TASK_ARGS_MAX);
		return;
	}
	struct task *t;
	Retcode rc = task_create_args(name, program, 0, NULL, argc, a->v + at, &t);
	if (rc == rcNotFound) {
		console_printf("monitor: no program '%s' among the boot modules\n", program);
		return;
	}
	if (rc != rcOk) {
		console_printf("monitor: cannot start '%s' (Retcode %d)\n", program, rc);
		return;
	}
	/* The monitor holds it as a shell holds its jobs: were it to freeze, it stays for `dump`. */
	Handle hold;
	if (task_hold(t, &hold) != rcOk)
		console_printf("monitor: no room for a handle to '%s': it runs unheld\n", program);
	task_resume(t);
	console_printf("started task %llu '%s'", (unsigned long long)t->id, t->name);
	for (unsigned i = 0; i < argc; i++)
		console_printf(" %s", a->v[at + i]);
	console_printf("\n");
	task_put(t); /* it runs on; `tasks` shows it */
}

static bool parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > max / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* dump TASK [MS]: MS bounds the collector's run (default DUMP_WAIT); past it the collector
 * is terminated and the target stays frozen (the core on COM2 is then cut short). */
static void cmd_dump(const struct args *a)
{
	const char *spec = a->v[0], *limit_text = a->n > 1 ? a->v[1] : NULL;
	uint64_t limit_ms = DUMP_WAIT / 1000000;
	if (limit_text && (!parse_decimal(limit_text, DUMP_WAIT_MAX_MS, &limit_ms) || limit_ms == 0)) {
		console_printf("monitor: bad time limit '%s' (milliseconds, 1 to %llu)\n", limit_text,
			       DUMP_WAIT_MAX_MS);
		return;
	}
	struct task *t = task_arg(spec), *c = NULL;
	if (!t)
		return;
	/* Held by the monitor first: once frozen it stays (to be looked at, dumped again). */
	Handle hold;
	Retcode rc = task_hold(t, &hold);
	if (rc == rcOk)
		rc = task_freeze(t);
	if (rc == rcOk && task_wait(t, KN_TASK_STATE_FROZEN, clock_ns() + DUMP_WAIT) != rcOk)
		rc = rcBusy;
	if (rc != rcOk) {
		console_printf("monitor: cannot freeze task %llu '%s' (%s)\n", (unsigned long long)t->id, t->name,
			       rc == rcBusy          ? "it did not stop"
			       : rc == rcOutOfMemory ? "no room for the monitor's handle"
						     : "not running");
		task_put(t);
		return;
	}
	char name[KN_TASK_NAME_MAX + 1];
	ksnprintf(name, sizeof(name), "dump:%s", t->name);
	Handle h;
	rc = task_create(name, "collector", 0, NULL, &c);
	if (rc == rcOk &&
	    (rc = handle_alloc(&c->handles, &t->obj, KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_VM_READ, &h)) != rcOk)
		task_terminate(c, KN_EXIT_TERMINATED, true);
	if (rc == rcOk) {
		task_resume(c);
		/* What it did is read from what reached the sink (kernel/task.h, struct
		 * sink_frames): a frame written to its last byte is a done dump, whether or not
		 * the collector exited before its time was up. */
		bool in_time = task_wait(c, KN_TASK_STATE_EXITED, clock_ns() + limit_ms * 1000000) == rcOk;
		bool gone = in_time;
		if (!in_time) {
			/* Terminated, and waited for (boundedly too: its threads leave at their
			 * next kernel entry or wake-up). */
			task_terminate(c, KN_EXIT_TERMINATED, false);
			gone = task_wait(c, KN_TASK_STATE_EXITED, clock_ns() + DUMP_WAIT) == rcOk;
		}
		uint64_t whole = READ_ONCE(c->sink.whole), started = READ_ONCE(c->sink.started);
		if (whole && (!in_time || c->exit_code == 0)) {
			console_printf("dump of task %llu '%s': done (the core file is on COM2; make run saves it in "
				       "build/dumps/)\n",
				       (unsigned long long)t->id, t->name);
			if (!in_time)
				console_printf(
					"  (the collector had written it all, and was still running after %llu ms: "
					"%s)\n",
					(unsigned long long)limit_ms,
					gone ? "terminated" : "told to terminate, still leaving");
		} else if (in_time) {
			console_printf("monitor: dump of task %llu '%s': the collector failed (exit code %d, %s)\n",
				       (unsigned long long)t->id, t->name, c->exit_code,
				       whole     ? "its core is on COM2"
				       : started ? "its core on COM2 is cut short or broken"
						 : "no core on COM2");
		} else {
			console_printf("monitor: dump of task %llu '%s': the collector did not finish in %llu ms: %s; "
				       "%s; the task stays frozen\n",
				       (unsigned long long)t->id, t->name, (unsigned long long)limit_ms,
				       gone ? "terminated" : "told to terminate, still leaving",
				       started ? "the core on COM2 is cut short" : "no core reached COM2");
		}
	} else {
		console_printf("monitor: cannot start the collector (Retcode %d)\n", rc);
	}
	if (c)
		task_put(c);
	task_put(t);
}

static void cmd_halt(const struct args *a)
{
	(void)a;
	console_printf("halting\n");
	qemu_exit(QEMU_EXIT_PASS);
}

static void cmd_help(const struct args *a);

/* Every command: its name, how many arguments it takes, what runs it, and its help (`args`
 * names the arguments; a second help line, after a newline, is indented under the first;
 * no more than two; a usage longer than its column has a line of its own). */
static const struct command {
	const char *name;
	unsigned min_args, max_args;
	void (*fn)(const struct args *a);
	const char *args;
	const char *help;
} commands[] = {
	{ "help", 0, 1, cmd_help, "[CMD]", "this list, or one command's" },
	{ "vm", 0, 0, cmd_vm, "", "the memory report (like !vm): totals, pools, every task's memory" },
	{ "tasks", 0, 0, cmd_tasks, "", "every task: id, state, threads, regions, committed and resident pages" },
	{ "regions", 1, 1, cmd_regions, "TASK",
	  "a task's regions: base, size, resident pages, protection, cache, runs" },
	{ "maps", 1, 1, cmd_maps, "TASK", "TASK's regions as /proc/PID/maps shows them: start-end, sizes, labels" },
	{ "pte", 2, 2, cmd_pte, "TASK VA", "the page-table entries that map VA in TASK, each level decoded" },
	{ "usage", 2, 2, cmd_usage, "TASK VA",
	  "the usage map of the region holding VA: a character a page (resident,\n"
	  "locked, committed not resident, reserved, guard)" },
	{ "pool", 0, 0, cmd_pool, "", "kernel pool usage by tag (like !poolused)" },
	{ "mdl", 0, 0, cmd_mdl, "", "live MDLs with their runs and pinned pages" },
	{ "buddy", 0, 0, cmd_buddy, "", "free blocks per order and zone (like /proc/buddyinfo)" },
	{ "pfn", 1, 1, cmd_pfn, "PA", "the page descriptor of a physical address (like !pfn)" },
	{ "run", 0, MAX_ARGS, cmd_run, "[-n NAME] [PROGRAM [ARGS...]]",
	  "start a program (a boot module) as task NAME (default: the program's\n"
	  "name) with ARGS (at most 16); alone: the programs" },
	{ "resume", 1, 1, cmd_resume, "TASK", "start a task that was created and not started" },
	{ "kill", 1, 1, cmd_kill, "TASK", "terminate a task (running, created or frozen)" },
	{ "dump", 1, 2, cmd_dump, "TASK [MS]",
	  "freeze a task and dump it with the collector (a core file on COM2),\n"
	  "waiting MS milliseconds at most for it (default 10000)" },
	{ "halt", 0, 0, cmd_halt, "", "leave QEMU" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void cmd_help(const struct args *a)
{
	unsigned shown = 0;
	if (a->n == 0)
		console_printf("commands:\n");
	for (unsigned i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];
		if (a->n && strcmp(c->name, a->v[0]) != 0)
			continue;
		shown++;
		char usage[40];
		ksnprintf(usage, sizeof(usage), "%s%s%s", c->name, *c->args ? " " : "", c->args);
		const char *second = strchr(c->help, '\n');
		int first_len = second ? (int)(second - c->help) : (int)strlen(c->help);
		if (strlen(usage) > 17) /* (a long usage on a line of its own, the help below it) */
			console_printf("  %s\n%20s%.*s\n", usage, "", first_len, c->help);
		else
			console_printf("  %-17s %.*s\n", usage, first_len, c->help);
		if (second)
			console_printf("%20s%s\n", "", second + 1);
	}
	if (a->n && !shown) {
		console_printf("monitor: no command '%s' (help lists them)\n", a->v[0]);
		return;
	}
	console_printf("TASK is a task id or name; VA and PA are hexadecimal.\n");
}

/* ------------------------------------------------------------------ the loop */

static void execute(char *line)
{
	char *words[2 + MAX_ARGS]; /* (one more than any command takes: too many is seen) */
	unsigned nwords = split(line, words, 2 + MAX_ARGS);

	task_drop_exited_holds(); /* (the monitor's handles to tasks that have ended since) */
	if (nwords == 0)
		return;
	const struct command *c = NULL;
	for (unsigned i = 0; i < NCOMMANDS && !c; i++)
		if (!strcmp(words[0], commands[i].name))
			c = &commands[i];
	if (!c) {
		console_printf("monitor: unknown command '%s' (help lists them)\n", words[0]);
		return;
	}
	struct args a = { .n = nwords - 1 };
	if (a.n < c->min_args || a.n > c->max_args) {
		if (c->min_args == c->max_args)
			console_printf("monitor: %s takes %u argument%s (help shows them)\n", c->name, c->min_args,
				       c->min_args == 1 ? "" : "s");
		else
			console_printf("monitor: %s takes %u %s %u arguments (help shows them)\n", c->name, c->min_args,
				       c->max_args == c->min_args + 1 ? "or" : "to", c->max_args);
		return;
	}
	for (unsigned i = 0; i < a.n; i++)
		a.v[i] = words[1 + i];
	c->fn(&a);
}

__noreturn void monitor_run(void)
{
	char line[LINE_MAX];

	console_printf("knmm monitor: type 'help' for the commands\n");
	for (;;) {
		read_line("knmm> ", line, sizeof(line));
		execute(line);
	}
}
