// SPDX-License-Identifier: MIT
/*
 * Symbol lookup over the kernel's own ELF symbol table, which GRUB loads with the image
 * (Multiboot2 ELF-sections tag) and the frame allocators keep reserved. Reached through the
 * direct map. Linear search: it only runs for panics and the monitor.
 */
#include <knmm/bootinfo.h>
#include <knmm/elf.h>
#include <knmm/ksyms.h>
#include <knmm/layout.h>
#include <knmm/string.h>

static const Elf64_Sym *syms;
static uint64_t nsyms;
static const char *strtab;
static uint64_t strtab_size;

void ksyms_init(const struct boot_info *bi)
{
	if (!bi->symtab_pa || !bi->strtab_pa)
		return;
	syms = phys_to_virt(bi->symtab_pa);
	nsyms = bi->symtab_size / sizeof(Elf64_Sym);
	strtab = phys_to_virt(bi->strtab_pa);
	strtab_size = bi->strtab_size;
}

static const char *sym_name(const Elf64_Sym *s) { return s->st_name < strtab_size ? strtab + s->st_name : "?"; }

const char *ksym_lookup(uint64_t addr, uint64_t *offset)
{
	const Elf64_Sym *best = NULL;

	for (uint64_t i = 0; i < nsyms; i++) {
		const Elf64_Sym *s = &syms[i];
		unsigned type = ELF64_ST_TYPE(s->st_info);
		/* Functions, and untyped labels of assembly code; not undefined or absolute ones. */
		if ((type != STT_FUNC && type != STT_NOTYPE) || s->st_shndx == SHN_UNDEF ||
		    s->st_shndx >= SHN_LORESERVE || s->st_value > addr || !s->st_name)
			continue;
		if (s->st_size && addr >= s->st_value + s->st_size)
			continue;
		if (!best || s->st_value > best->st_value)
			best = s;
	}
	if (!best)
		return NULL;
	*offset = addr - best->st_value;
	return sym_name(best);
}

uint64_t ksym_address(const char *name)
{
	for (uint64_t i = 0; i < nsyms; i++)
		if (syms[i].st_name && strcmp(sym_name(&syms[i]), name) == 0)
			return syms[i].st_value;
	return 0;
}
