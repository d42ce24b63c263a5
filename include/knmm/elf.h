/* SPDX-License-Identifier: MIT */
/* The ELF64 structures knmm reads (kernel symbols, user programs) and writes (core dumps). */
#ifndef KNMM_ELF_H
#define KNMM_ELF_H

#include <knmm/compiler.h>

#define EI_NIDENT   16
#define ELFMAG0     0x7f
#define ELFCLASS64  2
#define ELFDATA2LSB 1
#define EV_CURRENT  1
#define ET_EXEC     2
#define ET_CORE     4
#define EM_X86_64   62

#define PT_NULL 0
#define PT_LOAD 1
#define PT_NOTE 4
#define PF_X    1
#define PF_W    2
#define PF_R    4

#define SHT_SYMTAB       2
#define SHT_STRTAB       3
#define STT_NOTYPE       0
#define STT_FUNC         2
#define SHN_UNDEF        0
#define SHN_LORESERVE    0xff00
#define ELF64_ST_TYPE(i) ((i)&0xf)

typedef struct {
	unsigned char e_ident[EI_NIDENT];
	uint16_t e_type, e_machine;
	uint32_t e_version;
	uint64_t e_entry, e_phoff, e_shoff;
	uint32_t e_flags;
	uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
} Elf64_Ehdr;

typedef struct {
	uint32_t p_type, p_flags;
	uint64_t p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
} Elf64_Phdr;

typedef struct {
	uint32_t sh_name, sh_type;
	uint64_t sh_flags, sh_addr, sh_offset, sh_size;
	uint32_t sh_link, sh_info;
	uint64_t sh_addralign, sh_entsize;
} Elf64_Shdr;

typedef struct {
	uint32_t st_name;
	unsigned char st_info, st_other;
	uint16_t st_shndx;
	uint64_t st_value, st_size;
} Elf64_Sym;

typedef struct {
	uint32_t n_namesz, n_descsz, n_type;
} Elf64_Nhdr;

#endif
