// SPDX-License-Identifier: MIT
#include <knmm/align.h>
#include <knmm/elf.h>
#include <knmm/layout.h>
#include <knmm/log.h>
#include <knmm/panic.h>
#include <knmm/string.h>
#include <mm/mdl.h>
#include <mm/vm.h>
#include <kernel/elf.h>

#define MAX_PHDRS 64

static const Elf64_Phdr *phdr(const void *file, const Elf64_Ehdr *eh, unsigned i)
{
	return (const Elf64_Phdr *)((const uint8_t *)file + eh->e_phoff + (uint64_t)i * sizeof(Elf64_Phdr));
}

static uint64_t seg_start(const Elf64_Phdr *p) { return align_down(p->p_vaddr, PAGE_SIZE); }
static uint64_t seg_end(const Elf64_Phdr *p) { return align_up(p->p_vaddr + p->p_memsz, PAGE_SIZE); }

const char *elf_check(const void *file, uint64_t size, uint64_t *entry)
{
	const Elf64_Ehdr *eh = file;

	if (size < sizeof(*eh))
		return "file shorter than an ELF header";
	if (eh->e_ident[0] != ELFMAG0 || eh->e_ident[1] != 'E' || eh->e_ident[2] != 'L' || eh->e_ident[3] != 'F')
		return "not an ELF file (bad magic)";
	if (eh->e_ident[4] != ELFCLASS64)
		return "not a 64-bit ELF file (class)";
	if (eh->e_ident[5] != ELFDATA2LSB || eh->e_ident[6] != EV_CURRENT)
		return "not a little-endian ELF version 1 file";
	if (eh->e_type != ET_EXEC)
		return "not an executable (type)";
	if (eh->e_machine != EM_X86_64)
		return "not an x86-64 program (machine)";
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > MAX_PHDRS)
		return "bad program header table";
	if (eh->e_phoff > size || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff)
		return "program headers past the end of the file";

	unsigned loads = 0;
	bool entry_ok = false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = phdr(file, eh, i);
		if (p->p_type != PT_LOAD)
			continue;
		if (p->p_filesz > p->p_memsz)
			return "segment with more file bytes than memory bytes";
		if (p->p_memsz == 0)
			continue; /* an empty segment (a linker script's unused PHDR) loads nothing */
		loads++;
		if (p->p_offset > size || p->p_filesz > size - p->p_offset)
			return "segment file bytes past the end of the file";
		if (p->p_vaddr + p->p_memsz < p->p_vaddr || !is_user_range(seg_start(p), seg_end(p) - seg_start(p)) ||
		    seg_end(p) < p->p_vaddr)
			return "segment outside the user half (in the kernel half or wrapping)";
		if ((p->p_flags & PF_W) && (p->p_flags & PF_X))
			return "writable and executable segment (W^X)";
		for (unsigned j = 0; j < i; j++) {
			const Elf64_Phdr *q = phdr(file, eh, j);
			if (q->p_type == PT_LOAD && q->p_memsz && seg_start(p) < seg_end(q) &&
			    seg_start(q) < seg_end(p))
				return "overlapping segments";
		}
		if ((p->p_flags & PF_X) && eh->e_entry >= p->p_vaddr && eh->e_entry < p->p_vaddr + p->p_memsz)
			entry_ok = true;
	}
	if (!loads)
		return "no loadable segment";
	if (!entry_ok)
		return "entry point outside the executable segments";
	*entry = eh->e_entry;
	return NULL;
}

/* The segment as an MDL: frames for the pages that hold file bytes (zeroed, then filled),
 * fictitious pages for the rest of its memory (.bss: committed, resident when touched). */
static Retcode segment_mdl(const void *file, const Elf64_Phdr *p, unsigned prot, struct account *acct, struct mdl **out)
{
	uint64_t start = seg_start(p), pages = (seg_end(p) - start) / PAGE_SIZE;
	uint64_t file_pages = p->p_filesz ? (align_up(p->p_vaddr + p->p_filesz, PAGE_SIZE) - start) / PAGE_SIZE : 0;
	struct mdl *m;
	Retcode rc;

	if (file_pages) {
		rc = mdl_create(file_pages * PAGE_SIZE, prot, acct, &m);
		/* The file bytes go to offset p_vaddr - start of the MDL, page by page. */
		const uint8_t *src = (const uint8_t *)file + p->p_offset;
		struct mdl_cursor c;
		if (rc == rcOk)
			mdl_cursor_init(&c, m, (p->p_vaddr - start) / PAGE_SIZE);
		for (uint64_t off = p->p_vaddr - start, left = p->p_filesz; rc == rcOk && left;) {
			uint64_t n = MIN(left, PAGE_SIZE - (off & PAGE_MASK));
			memcpy((uint8_t *)mdl_cursor_next(&c) + (off & PAGE_MASK), src, n);
			src += n;
			off += n;
			left -= n;
		}
	} else {
		const struct mdl_run bss = { MDL_FICTITIOUS, pages };
		rc = mdl_create_from_runs(&bss, 1, prot, acct, &m);
		file_pages = pages;
	}
	if (rc == rcOk && pages > file_pages && (rc = mdl_add_fictitious(m, pages - file_pages)) != rcOk)
		mdl_free(m);
	if (rc == rcOk)
		*out = m;
	return rc;
}

Retcode elf_load(struct vm_space *vs, const void *file, uint64_t size, const char *name, struct account *acct,
		 uint64_t *entry)
{
	const char *why = elf_check(file, size, entry);
	const Elf64_Ehdr *eh = file;

	if (why) {
		pr_warn("elf: %s: refused: %s", name, why);
		return rcInvalidArgument;
	}
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = phdr(file, eh, i);
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		uint64_t start = seg_start(p), va;
		unsigned prot = VMM_FLAG_READ | ((p->p_flags & PF_W) ? VMM_FLAG_WRITE : 0) |
				((p->p_flags & PF_X) ? VMM_FLAG_EXECUTE : 0);
		/* One MDL per segment, mapped with the segment's protection (also its maximum: the
		 * task cannot make its text writable later), then let go: the mapping holds the
		 * frames. */
		struct mdl *m;
		Retcode rc = segment_mdl(file, p, prot, acct, &m);
		if (rc != rcOk)
			return rc;
		rc = vm_map_mdl(vs, m, 0, mdl_pages(m), start, prot, prot, "elf", &va);
		mdl_free(m);
		if (rc != rcOk)
			return rc == rcAlreadyExists ? rcInvalidArgument : rc;
	}
	return rcOk;
}
