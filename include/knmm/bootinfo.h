/* SPDX-License-Identifier: MIT */
/*
 * What the kernel knows about the machine when it starts: the boot protocol's view turned
 * into the kernel's own types (boot/ fills it; nothing past kernel/main.c sees multiboot2).
 * Everything here is a copy held in kernel memory; physical ranges it names (modules,
 * symbol table) are claimed by the frame allocators before anything else is handed out.
 */
#ifndef KNMM_BOOTINFO_H
#define KNMM_BOOTINFO_H

#include <knmm/compiler.h>

enum boot_mem_type {
	BOOT_MEM_AVAILABLE = 1,
	BOOT_MEM_RESERVED,
	BOOT_MEM_ACPI_RECLAIM,
	BOOT_MEM_ACPI_NVS,
	BOOT_MEM_BAD,
};

struct boot_mem_range {
	uint64_t base;
	uint64_t size;
	enum boot_mem_type type;
};

struct boot_module {
	uint64_t start; /* physical, inclusive */
	uint64_t end;   /* physical, exclusive */
	char name[64];  /* the module's command line (GRUB: the text after the path) */
};

#define BOOT_MAX_MEM_RANGES 128
#define BOOT_MAX_MODULES    128
#define BOOT_CMDLINE_MAX    512
#define BOOT_ACPI_RSDP_MAX  36 /* the ACPI 2.0 RSDP; 1.0's is the first 20 bytes */

struct boot_info {
	char cmdline[BOOT_CMDLINE_MAX];
	char loader[64];

	unsigned nr_mem;
	struct boot_mem_range mem[BOOT_MAX_MEM_RANGES];

	unsigned nr_modules;
	unsigned modules_dropped; /* modules past BOOT_MAX_MODULES (the boot log says so) */
	struct boot_module modules[BOOT_MAX_MODULES];

	/* The boot information block itself (physical). */
	uint64_t info_start, info_end;

	/* The kernel's ELF symbol table, if the loader provided it (physical, 0 if absent). */
	uint64_t symtab_pa, symtab_size;
	uint64_t strtab_pa, strtab_size;

	/* A copy of the ACPI RSDP the loader found (the 2.0+ one when it gave both):
	 * acpi_rsdp_len bytes, 0 if there is none. */
	unsigned acpi_rsdp_len;
	uint8_t acpi_rsdp[BOOT_ACPI_RSDP_MAX];
};

const char *boot_mem_type_name(enum boot_mem_type t);

/* Fills *bi from the loader's hand-over (boot/bootinfo.c). false if the magic is wrong or
 * there is no memory map. Call while the early tables are live. */
bool boot_info_from_multiboot2(uint32_t magic, uint64_t info_pa, struct boot_info *bi);

#endif
