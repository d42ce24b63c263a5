// SPDX-License-Identifier: MIT
/*
 * The dump collector (SPEC §7, docs/dump.md). Run as task "dump:NAME" with a handle (FREEZE,
 * DUMP and VM_READ rights) to the task to dump as its first handle: it waits until that task is
 * frozen, reads its threads (KnTaskGetThreadContext) and walks its regions
 * (KnTaskGetNextVmRegion). Each region's MDL is mapped read-only a window at a time, its
 * usage map says which pages are in use, and only those are read: the fictitious pages (never
 * resident in the task) are never touched, so dumping allocates nothing.
 *
 * Output: an ELF64 ET_CORE file, framed, on the dump sink (KnDebugWrite channel 1):
 *   "KNCORE1\n", the name (32 bytes, NUL-padded), the length (8 bytes, little-endian), the
 *   file, its FNV-1a 64 checksum (8 bytes).
 * tools/extract_dumps.py writes build/dumps/NAME.core from a capture of the sink.
 * The file: PT_NOTE (NT_PRSTATUS per thread, NT_SIGINFO for a thread stopped
 * by an exception, NT_PRPSINFO, NT_AUXV, NT_FILE), then one PT_LOAD per run of each region's
 * usage map, cut where the protection changes (KnTaskVmQuery: guard pages and stretches
 * protected apart are runs of their own, with their own p_flags): used runs with their
 * bytes, unused runs with none (p_filesz 0: they read as zeros).
 */
#include <knlib.h>

#define PAGE        4096ull
#define WINDOW      (64ull << 20) /* how much of a region is mapped at once (its commit) */
#define MAX_REGIONS 4096
#define MAX_RUNS    16384 /* usage-map runs in all (each a PT_LOAD: e_phnum is 16 bits) */
#define MAX_THREADS 64
#define CHUNK       (60 * 1024) /* under KnDebugWrite's 64 KiB */

struct region {
	uint64_t base, size;
	int flags;
	Handle mdl;
	uint32_t first_run, nruns;
};
struct run {
	uint64_t start, pages; /* page offset in its region, page count */
	bool used;
	uint8_t pf; /* its p_flags: the protection of its pages (a guard page: none) */
};

static struct region regions[MAX_REGIONS];
static struct run runs[MAX_RUNS];
static KnThreadContext threads[MAX_THREADS];
static unsigned nregions, nruns_total, nthreads;
static uint64_t checksum = 0xcbf29ce484222325ull, written;
static Handle task;
/* Set when bytes promised by the header could not be read: the frame is then left without
 * its checksum, cut short, so the extractor refuses the file instead of keeping zeros for
 * memory, and the kernel, which counts a frame whole by its length (the monitor's `dump`
 * says done by it), never counts it whole. */
static bool broken;
/* The mapping window: halved (down to a page) while mapping it would pass the commit limit. */
static uint64_t window = WINDOW;
static char buf[CHUNK];
static unsigned buffered;

/* ------------------------------------------------------------------ the sink */

static void flush(void)
{
	if (buffered)
		KnDebugWrite(1, buf, buffered);
	buffered = 0;
}

static void emit_raw(const void *p, uint64_t n)
{
	const uint8_t *b = p;
	while (n) {
		unsigned k = (unsigned)MIN(n, (uint64_t)(CHUNK - buffered));
		memcpy(buf + buffered, b, k);
		buffered += k;
		b += k;
		n -= k;
		if (buffered == CHUNK)
			flush();
	}
}

/* Bytes of the core file: counted and summed. */
static void emit(const void *p, uint64_t n)
{
	const uint8_t *b = p;
	for (uint64_t i = 0; i < n; i++)
		checksum = (checksum ^ b[i]) * 0x100000001b3ull;
	written += n;
	emit_raw(p, n);
}

static void emit_zeros(uint64_t n)
{
	static const uint8_t zeros[512];
	while (n) {
		uint64_t k = MIN(n, (uint64_t)sizeof(zeros));
		emit(zeros, k);
		n -= k;
	}
}

/* ------------------------------------------------------------------ ELF */

struct ehdr {
	uint8_t ident[16];
	uint16_t type, machine;
	uint32_t version;
	uint64_t entry, phoff, shoff;
	uint32_t flags;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};
struct nhdr {
	uint32_t namesz, descsz, type;
	char name[8]; /* "CORE", padded */
};
/* The x86-64 Linux layouts gdb reads (elf_prstatus, elf_prpsinfo, siginfo_t). */
struct prstatus {
	int32_t si_signo, si_code, si_errno;
	int16_t cursig;
	uint16_t pad0;
	uint64_t sigpend, sighold;
	int32_t pid, ppid, pgrp, sid;
	uint64_t times[8];
	uint64_t reg[27]; /* r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax
			     rip cs eflags rsp ss fs_base gs_base ds es fs gs */
	int32_t fpvalid;
	int32_t pad1;
};
struct prpsinfo {
	char state, sname, zomb, nice;
	uint32_t pad0;
	uint64_t flag;
	uint32_t uid, gid;
	int32_t pid, ppid, pgrp, sid;
	char fname[16];
	char psargs[80];
};
struct siginfo {
	int32_t signo, errno_, code, pad0;
	uint64_t addr;
	uint8_t rest[104];
};
_Static_assert(sizeof(struct prstatus) == 336, "elf_prstatus");
_Static_assert(sizeof(struct prpsinfo) == 136, "elf_prpsinfo");
_Static_assert(sizeof(struct siginfo) == 128, "siginfo_t");

#define NT_PRSTATUS 1
#define NT_PRPSINFO 3
#define NT_SIGINFO  0x53494749
#define NT_AUXV     6
#define NT_FILE     0x46494c45
#define AT_NULL     0
#define AT_PHDR     3
#define AT_PHENT    4
#define AT_PHNUM    5
#define AT_PAGESZ   6
#define AT_ENTRY    9

/* The signal a Unix kernel would have sent for the exception (what gdb reports). */
static int signal_of(const KnThreadContext *c)
{
	switch (c->exception) {
	case KN_NO_EXCEPTION:
		return 19; /* SIGSTOP: frozen on request */
	case 0:
		return 8; /* #DE: SIGFPE */
	case 1:
		return 5; /* #DB: SIGTRAP */
	case 3:
		return 5; /* #BP: SIGTRAP */
	case 6:
		return 4; /* #UD: SIGILL */
	case 16:
		return 8; /* #MF: SIGFPE */
	case 17:
		return 7; /* #AC: SIGBUS */
	case 19:
		return 8; /* #XM: SIGFPE */
	default:
		return 11; /* #PF, #GP, #SS, ...: SIGSEGV */
	}
}

/* si_code: for a page fault, SEGV_MAPERR (1) where nothing was mapped and SEGV_ACCERR (2)
 * where the page was there but the access was not allowed (error code bit P). */
static int sigcode_of(const KnThreadContext *c) { return c->exception == 14 && (c->errorCode & 1) ? 2 : 1; }

static uint64_t note_size(uint64_t desc) { return sizeof(struct nhdr) + ((desc + 3) & ~3ull); }

static void emit_note(uint32_t type, const void *desc, uint32_t size)
{
	struct nhdr n = { 5, size, type, "CORE" };
	emit(&n, sizeof(n));
	emit(desc, size);
	emit_zeros(((size + 3) & ~3u) - size);
}

static void prstatus_of(const KnThreadContext *c, struct prstatus *p)
{
	memset(p, 0, sizeof(*p));
	p->si_signo = p->cursig = (int16_t)signal_of(c);
	p->pid = (int32_t)c->threadId;
	const uint64_t r[27] = { c->r15,    c->r14, c->r13, c->r12,    c->rbp,    c->rbx, c->r11, c->r10, c->r9,
				 c->r8,     c->rax, c->rcx, c->rdx,    c->rsi,    c->rdi, ~0ull,  c->rip, c->cs,
				 c->rflags, c->rsp, c->ss,  c->fsBase, c->gsBase, c->ds,  c->es,  c->fs,  c->gs };
	memcpy(p->reg, r, sizeof(r));
}

/* ------------------------------------------------------------------ collecting */

/* A read-only mapping of [off, off + *len) of an MDL, *len cut to the window; the window
 * shrinks while the mapping's commit does not fit. */
static Retcode map_part(Handle mdl, uint64_t off, uint64_t *len, void **va)
{
	for (;;) {
		*len = MIN(*len, window);
		Retcode rc = KnPmmMdlMap(mdl, off, *len, RTL_NULL, VMM_FLAG_READ, va);
		if (rc != rcOutOfMemory || window == PAGE)
			return rc;
		window /= 2;
	}
}

/* The usage map of a region, read through read-only mappings of its MDL, a window at a time. */
static Retcode collect_runs(struct region *r)
{
	r->first_run = nruns_total;
	for (uint64_t off = 0, len; off < r->size; off += len) {
		void *va;
		len = r->size - off;
		Retcode rc = map_part(r->mdl, off, &len, &va);
		if (rc != rcOk)
			return rc;
		for (uint64_t page = 0; page < len / PAGE;) {
			rtl_size_t counts[64], n = 0;
			rtl_bool first = 0;
			if ((rc = KnPmmMdlGetUsageMap(va, page, counts, 64, &first, &n)) != rcOk || n == 0)
				break;
			for (rtl_size_t i = 0; i < n && rc == rcOk; i++) {
				bool used = (i % 2 == 0) == !!first;
				struct run *last = r->nruns ? &runs[nruns_total - 1] : NULL;
				if (last && last->used == used && last->start + last->pages == off / PAGE + page) {
					last->pages += counts[i]; /* (a run across two windows) */
				} else if (nruns_total == MAX_RUNS) {
					rc = rcOutOfMemory;
				} else {
					runs[nruns_total++] = (struct run){ off / PAGE + page, counts[i], used, 0 };
					r->nruns++;
				}
				page += counts[i];
			}
		}
		KnVmUnmap(va, len);
		if (rc != rcOk)
			return rc;
	}
	return rcOk;
}

static unsigned prot_to_pf(int flags)
{
	return ((flags & VMM_FLAG_READ) ? 4u : 0) | ((flags & VMM_FLAG_WRITE) ? 2u : 0) |
	       ((flags & VMM_FLAG_EXECUTE) ? 1u : 0);
}

/* Cuts run k of the region in two at page `page` (an offset in the region, inside the run). */
static Retcode cut_run(struct region *r, unsigned k, uint64_t page)
{
	struct run *u = &runs[k];
	if (nruns_total == MAX_RUNS)
		return rcOutOfMemory;
	memmove(u + 2, u + 1, (nruns_total - k - 1) * sizeof(*u));
	u[1] = (struct run){ page, u->start + u->pages - page, u->used, u->pf };
	u->pages = page - u->start;
	nruns_total++;
	r->nruns++;
	return rcOk;
}

/* Gives the region's runs (the last ones collected) their own protections: walks the
 * region's stretches with KnTaskVmQuery (its runSize) and cuts the runs wherever the
 * protection changes, so a read-only stretch of a read-write region (KnVmProtect) and a
 * guard page (no permissions) are PT_LOADs of their own. One pass over the runs. */
static Retcode split_protections(struct region *r)
{
	uint64_t end = r->base + r->size;
	unsigned prev = ~0u, k = r->first_run;
	for (uint64_t at = r->base; at < end;) {
		KnVmInfo vi;
		Retcode rc = KnTaskVmQuery(task, (const void *)(uintptr_t)at, &vi);
		if (rc != rcOk)
			return rc;
		/* The task is frozen: the region is there, as KnTaskGetNextVmRegion gave it. */
		if (vi.state == VMM_STATE_FREE || (uint64_t)(uintptr_t)vi.regionBase != r->base ||
		    vi.regionSize != r->size || vi.runSize == 0 || (vi.runSize & (PAGE - 1)))
			return rcWrongState;
		uint64_t p0 = (at - r->base) / PAGE, p1 = p0 + MIN(vi.runSize, end - at) / PAGE;
		unsigned pf = vi.state == VMM_STATE_GUARD ? 0 : prot_to_pf(vi.flags);
		while (k < r->first_run + r->nruns && runs[k].start + runs[k].pages <= p0)
			k++;
		if (k == r->first_run + r->nruns)
			return rcWrongState; /* (the usage map covers the whole region) */
		if (pf != prev && runs[k].start < p0) {
			if ((rc = cut_run(r, k, p0)) != rcOk)
				return rc;
			k++;
		}
		for (unsigned j = k; j < r->first_run + r->nruns && runs[j].start < p1; j++)
			if (runs[j].start >= p0)
				runs[j].pf = (uint8_t)pf;
		prev = pf;
		at += (p1 - p0) * PAGE;
	}
	return rcOk;
}

/* The bytes of a used run, read through mappings of just that part of the MDL. */
static void emit_used_run(Handle mdl, const struct run *u)
{
	uint64_t off = u->start * PAGE, end = off + u->pages * PAGE;

	for (uint64_t len; off < end; off += len) {
		void *va;
		len = end - off;
		if (broken || map_part(mdl, off, &len, &va) != rcOk) {
			broken = true;
			len = end - off;
			emit_zeros(len); /* (the length is in the header already) */
			continue;
		}
		emit(va, len);
		KnVmUnmap(va, len);
	}
}

/* Every used run of a region, through a fresh MDL of it (the task is frozen: the same
 * region comes back; only one region's MDL is alive at a time). */
static void emit_region(const struct region *r)
{
	void *base;
	rtl_size_t size;
	int flags;
	Handle mdl = 0; /* (a refused call leaves it 0) */

	if (!broken &&
	    (KnTaskGetNextVmRegion(task, (const void *)(uintptr_t)r->base, &base, &size, &flags, &mdl) != rcOk ||
	     (uint64_t)(uintptr_t)base != r->base || size != r->size))
		broken = true; /* (a different region's MDL is still closed below) */
	for (unsigned k = r->first_run; k < r->first_run + r->nruns; k++)
		if (runs[k].used)
			emit_used_run(mdl, &runs[k]);
	if (mdl)
		KnHandleClose(mdl);
}

/* The program's file as the task sees it: the module is loaded from /boot/PROGRAM.elf. */
static char program_path[48];
/* NT_FILE: the file-backed part of each PT_LOAD of the program (its file bytes, in whole
 * pages; .bss beyond them is anonymous), as Linux lists its file mappings. */
static uint64_t nt_file[2 + 3 * KN_PROGRAM_LOADS_MAX + (KN_PROGRAM_LOADS_MAX * sizeof(program_path)) / 8];
static uint32_t nt_file_size;
static uint64_t auxv[2 * 6];
static uint32_t auxv_size;

static void program_notes(const KnThreadContext *c)
{
	ksnprintf(program_path, sizeof(program_path), "/boot/%s.elf", c->program);
	uint64_t n = 0;
	for (unsigned i = 0; i < c->nloads && i < KN_PROGRAM_LOADS_MAX; i++) {
		if (!c->loads[i].filesz)
			continue;
		uint64_t start = c->loads[i].vaddr & ~(PAGE - 1);
		nt_file[2 + 3 * n] = start;
		nt_file[3 + 3 * n] = (c->loads[i].vaddr + c->loads[i].filesz + PAGE - 1) & ~(PAGE - 1);
		nt_file[4 + 3 * n] = c->loads[i].offset / PAGE;
		n++;
	}
	nt_file[0] = n;
	nt_file[1] = PAGE;
	char *names = (char *)&nt_file[2 + 3 * n];
	uint64_t len = strlen(program_path) + 1;
	for (uint64_t i = 0; i < n; i++)
		memcpy(names + i * len, program_path, len);
	nt_file_size = (uint32_t)((2 + 3 * n) * 8 + n * len);
	/* What the collector knows of the program from its file, as a Linux loader would give it:
	 * AT_PHDR is the address of the program headers, where the PT_LOAD whose file bytes
	 * hold them maps them (knmm programs map them at the start of their text: user.ld); a
	 * program that maps them nowhere gets no AT_PHDR. */
	uint64_t *at = auxv;
	for (unsigned i = 0; i < c->nloads && i < KN_PROGRAM_LOADS_MAX; i++) {
		uint64_t table = (uint64_t)c->phnum * c->phentsize;
		if (c->loads[i].offset <= c->phoff && c->phoff + table <= c->loads[i].offset + c->loads[i].filesz) {
			*at++ = AT_PHDR;
			*at++ = c->loads[i].vaddr + (c->phoff - c->loads[i].offset);
			break;
		}
	}
	const uint64_t a[] = { AT_PHENT, c->phentsize, AT_PHNUM, c->phnum, AT_PAGESZ, PAGE, AT_ENTRY, c->entry };
	memcpy(at, a, sizeof(a));
	at += sizeof(a) / sizeof(a[0]);
	at[0] = AT_NULL;
	at[1] = 0;
	auxv_size = (uint32_t)((at + 2 - auxv) * sizeof(auxv[0]));
}

static void write_core(const char *name)
{
	/* Layout: ELF header, program headers, notes, then the used runs' bytes, page-aligned. */
	uint64_t phnum = 1 + nruns_total, notes = 0;
	for (unsigned t = 0; t < nthreads; t++)
		notes += note_size(sizeof(struct prstatus)) +
			 (threads[t].exception != KN_NO_EXCEPTION ? note_size(sizeof(struct siginfo)) : 0);
	notes += note_size(sizeof(struct prpsinfo));
	program_notes(&threads[0]);
	notes += note_size(auxv_size) + note_size(nt_file_size);
	uint64_t notes_at = sizeof(struct ehdr) + phnum * sizeof(struct phdr);
	uint64_t data_at = (notes_at + notes + PAGE - 1) & ~(PAGE - 1), data = 0;
	for (unsigned i = 0; i < nruns_total; i++)
		data += runs[i].used ? runs[i].pages * PAGE : 0;
	uint64_t total = data_at + data;

	char framed_name[32] = { 0 };
	kstrlcpy(framed_name, name, sizeof(framed_name));
	emit_raw("KNCORE1\n", 8);
	emit_raw(framed_name, sizeof(framed_name));
	emit_raw(&total, sizeof(total));

	struct ehdr eh = { .ident = { 0x7f, 'E', 'L', 'F', 2, 1, 1 },
			   .type = 4,
			   .machine = 62,
			   .version = 1,
			   .phoff = sizeof(struct ehdr),
			   .ehsize = sizeof(struct ehdr),
			   .phentsize = sizeof(struct phdr),
			   .phnum = (uint16_t)phnum };
	emit(&eh, sizeof(eh));
	struct phdr note = { .type = 4, .offset = notes_at, .filesz = notes, .align = 4 };
	emit(&note, sizeof(note));
	uint64_t at = data_at;
	/* A run without bytes points where the data would go (p_filesz 0), never at offset 0,
	 * where gdb would read the headers and notes again. */
	for (unsigned ri = 0; ri < nregions; ri++) {
		const struct region *r = &regions[ri];
		for (unsigned k = r->first_run; k < r->first_run + r->nruns; k++) {
			uint64_t len = runs[k].pages * PAGE;
			struct phdr ph = { .type = 1,
					   .flags = runs[k].pf,
					   .offset = at,
					   .vaddr = r->base + runs[k].start * PAGE,
					   .filesz = runs[k].used ? len : 0,
					   .memsz = len,
					   .align = PAGE };
			emit(&ph, sizeof(ph));
			at += ph.filesz;
		}
	}
	for (unsigned t = 0; t < nthreads; t++) {
		struct prstatus ps;
		prstatus_of(&threads[t], &ps);
		emit_note(NT_PRSTATUS, &ps, sizeof(ps));
		if (threads[t].exception != KN_NO_EXCEPTION) {
			struct siginfo si = { .signo = signal_of(&threads[t]),
					      .code = sigcode_of(&threads[t]),
					      .addr = threads[t].cr2 };
			emit_note(NT_SIGINFO, &si, sizeof(si));
		}
	}
	struct prpsinfo pi = { .state = 0, .sname = 'T', .pid = (int32_t)threads[0].threadId };
	/* As Linux: the file's base name (cut to 15 bytes), the command line (the file, then the
	 * task's argv: its name). */
	ksnprintf(pi.fname, sizeof(pi.fname), "%s.elf", threads[0].program);
	ksnprintf(pi.psargs, sizeof(pi.psargs), "%s.elf %s", threads[0].program, name);
	emit_note(NT_PRPSINFO, &pi, sizeof(pi));
	emit_note(NT_AUXV, auxv, auxv_size);
	emit_note(NT_FILE, nt_file, nt_file_size);
	emit_zeros(data_at - notes_at - notes);
	for (unsigned ri = 0; ri < nregions; ri++)
		emit_region(&regions[ri]);
	uint64_t sum = checksum; /* (a copy: were checksum's address taken, the compiler would have
				    to reload it for every byte it hashes, as what it hashes might be it) */
	if (!broken)
		emit_raw(&sum, sizeof(sum));
	flush();
}

int main(int argc, char **argv)
{
	const char *me = argc > 0 ? argv[0] : "";
	const char *name = strncmp(me, "dump:", 5) == 0 ? me + 5 : "core";
	int state = 0;

	task = find_handle(KN_HANDLE_TYPE_TASK, KN_RIGHT_DUMP | KN_RIGHT_VM_READ);
	if (!task) {
		printf("collector: no task to dump (it needs a handle with KN_RIGHT_DUMP and KN_RIGHT_VM_READ)\n");
		return 1;
	}
	if (KnTaskWait(task, KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED, ~0ull) != rcOk ||
	    KnTaskGetState(task, &state) != rcOk || state != KN_TASK_STATE_FROZEN) {
		printf("collector: %s ended without being frozen\n", name);
		return 2;
	}
	uint64_t t0 = rdtsc();
	KnThreadContext spare;
	while (nthreads < MAX_THREADS && KnTaskGetThreadContext(task, nthreads, &threads[nthreads]) == rcOk)
		nthreads++;
	if (nthreads == MAX_THREADS && KnTaskGetThreadContext(task, nthreads, &spare) != rcEof) {
		printf("collector: cannot dump %s: more than %u threads\n", name, MAX_THREADS);
		return 3;
	}
	/* The regions and their usage maps; each region's MDL is closed once read, so the dump's
	 * charge stays at one region's (emit_region takes a fresh one for the bytes). */
	Retcode rc = rcOk;
	for (const uint8_t *cursor = 0;;) {
		struct region r = { 0 };
		void *base;
		rtl_size_t size;
		rc = KnTaskGetNextVmRegion(task, cursor, &base, &size, &r.flags, &r.mdl);
		if (rc == rcEof) {
			rc = rcOk;
			break;
		}
		if (rc != rcOk)
			break;
		if (nregions == MAX_REGIONS) {
			KnHandleClose(r.mdl);
			printf("collector: cannot dump %s: more than %u regions\n", name, MAX_REGIONS);
			return 3;
		}
		r.base = (uint64_t)(uintptr_t)base;
		r.size = size;
		rc = collect_runs(&r);
		if (rc == rcOk)
			rc = split_protections(&r);
		KnHandleClose(r.mdl);
		r.mdl = 0;
		regions[nregions++] = r;
		if (rc != rcOk)
			break;
		cursor = (const uint8_t *)base + size;
	}
	if (rc != rcOk || nthreads == 0) {
		printf("collector: cannot dump %s (Retcode %d%s)\n", name, rc,
		       nruns_total == MAX_RUNS ? ", more usage-map runs than it can hold" : "");
		return 3;
	}
	write_core(name);
	if (broken) {
		printf("collector: %s.core: memory could not be read; the frame is left without its checksum (cut "
		       "short) on purpose\n",
		       name);
		return 4;
	}
	uint64_t ticks = rdtsc() - t0;
	uint64_t used = 0;
	for (unsigned i = 0; i < nruns_total; i++)
		used += runs[i].used ? runs[i].pages : 0;
	printf("collector: %s.core: %u threads, %u regions, %llu resident pages, %llu bytes, %llu ticks\n", name,
	       nthreads, nregions, (unsigned long long)used, (unsigned long long)written, (unsigned long long)ticks);
	return 0;
}
