/* SPDX-License-Identifier: MIT */
/*
 * The parts of the Multiboot2 specification knmm uses. Boot-only: included by boot/ and by
 * kernel/main.c, nowhere else (SPEC §1). Usable from assembly.
 */
#ifndef BOOT_MULTIBOOT2_H
#define BOOT_MULTIBOOT2_H

#define MB2_HEADER_MAGIC     0xe85250d6 /* in the kernel image */
#define MB2_BOOTLOADER_MAGIC 0x36d76289 /* in eax at entry */
#define MB2_ARCH_I386        0

/* Header tags (kernel -> loader). */
#define MB2_HTAG_END          0
#define MB2_HTAG_INFO_REQUEST 1
#define MB2_HTAG_ENTRY        3
#define MB2_HTAG_MODULE_ALIGN 6

/* Information tags (loader -> kernel). */
#define MB2_TAG_END          0
#define MB2_TAG_CMDLINE      1
#define MB2_TAG_LOADER_NAME  2
#define MB2_TAG_MODULE       3
#define MB2_TAG_MMAP         6
#define MB2_TAG_ELF_SECTIONS 9
#define MB2_TAG_ACPI_OLD     14 /* a copy of the ACPI 1.0 RSDP */
#define MB2_TAG_ACPI_NEW     15 /* a copy of the ACPI 2.0+ RSDP (XSDT address) */

/* Memory map entry types. */
#define MB2_MEM_AVAILABLE    1
#define MB2_MEM_RESERVED     2
#define MB2_MEM_ACPI_RECLAIM 3
#define MB2_MEM_NVS          4
#define MB2_MEM_BADRAM       5

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>

struct mb2_info_header {
	uint32_t total_size;
	uint32_t reserved;
};

struct mb2_tag {
	uint32_t type;
	uint32_t size;
};

struct mb2_tag_string { /* CMDLINE, LOADER_NAME */
	uint32_t type, size;
	char string[];
};

struct mb2_tag_module {
	uint32_t type, size;
	uint32_t mod_start, mod_end;
	char cmdline[];
};

struct mb2_mmap_entry {
	uint64_t base_addr;
	uint64_t length;
	uint32_t type;
	uint32_t reserved;
};

struct mb2_tag_mmap {
	uint32_t type, size;
	uint32_t entry_size, entry_version;
	/* entries follow, entry_size bytes each */
};

struct mb2_tag_acpi { /* ACPI_OLD, ACPI_NEW */
	uint32_t type, size;
	uint8_t rsdp[]; /* size - 8 bytes */
};

struct mb2_tag_elf_sections {
	uint32_t type, size;
	uint32_t num, entsize, shndx;
	/* section headers follow */
};
#endif

#endif
