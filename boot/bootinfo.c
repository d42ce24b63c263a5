// SPDX-License-Identifier: MIT
/*
 * Multiboot2 information -> struct boot_info. The only code that reads Multiboot2 tags.
 * Runs on the early tables, which map the first 4 GiB at the direct-map base; GRUB keeps
 * the information block, modules and loaded sections below 4 GiB (their fields are 32-bit).
 */
#include <knmm/bootinfo.h>
#include <knmm/elf.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include "multiboot2.h"

const char *boot_mem_type_name(enum boot_mem_type t)
{
	switch (t) {
	case BOOT_MEM_AVAILABLE:
		return "available";
	case BOOT_MEM_ACPI_RECLAIM:
		return "ACPI reclaimable";
	case BOOT_MEM_ACPI_NVS:
		return "ACPI NVS";
	case BOOT_MEM_BAD:
		return "bad RAM";
	default:
		return "reserved";
	}
}

static enum boot_mem_type mem_type(uint32_t t)
{
	switch (t) {
	case MB2_MEM_AVAILABLE:
		return BOOT_MEM_AVAILABLE;
	case MB2_MEM_ACPI_RECLAIM:
		return BOOT_MEM_ACPI_RECLAIM;
	case MB2_MEM_NVS:
		return BOOT_MEM_ACPI_NVS;
	case MB2_MEM_BADRAM:
		return BOOT_MEM_BAD;
	default:
		return BOOT_MEM_RESERVED;
	}
}

static void add_mem(struct boot_info *bi, uint64_t base, uint64_t size, enum boot_mem_type type)
{
	if (size == 0 || bi->nr_mem == BOOT_MAX_MEM_RANGES)
		return;
	/* Keep the map sorted by base (insertion sort: a few dozen entries). */
	unsigned i = bi->nr_mem++;
	while (i > 0 && bi->mem[i - 1].base > base) {
		bi->mem[i] = bi->mem[i - 1];
		i--;
	}
	bi->mem[i] = (struct boot_mem_range){ base, size, type };
}

static void parse_elf_sections(struct boot_info *bi, const struct mb2_tag_elf_sections *t)
{
	const char *base = (const char *)(t + 1);

	if (t->entsize < sizeof(Elf64_Shdr))
		return;
	for (uint32_t i = 0; i < t->num; i++) {
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(const void *)(base + (uint64_t)i * t->entsize);
		if (sh->sh_type != SHT_SYMTAB || sh->sh_link >= t->num || !sh->sh_addr)
			continue;
		const Elf64_Shdr *str = (const Elf64_Shdr *)(const void *)(base + (uint64_t)sh->sh_link * t->entsize);
		if (!str->sh_addr)
			continue;
		/* Non-allocated sections: GRUB loaded them and wrote their physical address. */
		bi->symtab_pa = sh->sh_addr;
		bi->symtab_size = sh->sh_size;
		bi->strtab_pa = str->sh_addr;
		bi->strtab_size = str->sh_size;
		return;
	}
}

/* Keeps the loader's copy of the RSDP: the 2.0+ one (tag 15) wins over the 1.0 one (tag 14),
 * whatever order they come in. The tables it points to stay where the firmware put them. */
static void record_rsdp(struct boot_info *bi, const struct mb2_tag_acpi *t)
{
	uint32_t len = t->size - (uint32_t)sizeof(*t);

	if (t->type == MB2_TAG_ACPI_OLD && bi->acpi_rsdp_len > 20)
		return;
	if (len > BOOT_ACPI_RSDP_MAX)
		len = BOOT_ACPI_RSDP_MAX;
	memcpy(bi->acpi_rsdp, t->rsdp, len);
	bi->acpi_rsdp_len = len;
}

bool boot_info_from_multiboot2(uint32_t magic, uint64_t info_pa, struct boot_info *bi)
{
	memset(bi, 0, sizeof(*bi));
	if (magic != MB2_BOOTLOADER_MAGIC || info_pa == 0 || (info_pa & 7))
		return false;

	const struct mb2_info_header *hdr = phys_to_virt(info_pa);
	bi->info_start = info_pa;
	bi->info_end = info_pa + hdr->total_size;

	const char *p = (const char *)(hdr + 1);
	const char *end = (const char *)hdr + hdr->total_size;
	while (p + sizeof(struct mb2_tag) <= end) {
		const struct mb2_tag *tag = (const struct mb2_tag *)(const void *)p;
		if (tag->type == MB2_TAG_END || tag->size < sizeof(*tag))
			break;
		switch (tag->type) {
		case MB2_TAG_CMDLINE:
			kstrlcpy(bi->cmdline, ((const struct mb2_tag_string *)(const void *)tag)->string,
				 sizeof(bi->cmdline));
			break;
		case MB2_TAG_LOADER_NAME:
			kstrlcpy(bi->loader, ((const struct mb2_tag_string *)(const void *)tag)->string,
				 sizeof(bi->loader));
			break;
		case MB2_TAG_MODULE: {
			const struct mb2_tag_module *m = (const void *)tag;
			if (bi->nr_modules < BOOT_MAX_MODULES) {
				struct boot_module *bm = &bi->modules[bi->nr_modules++];
				bm->start = m->mod_start;
				bm->end = m->mod_end;
				kstrlcpy(bm->name, m->cmdline, sizeof(bm->name));
			} else {
				bi->modules_dropped++;
			}
			break;
		}
		case MB2_TAG_MMAP: {
			const struct mb2_tag_mmap *mm = (const void *)tag;
			const char *e = (const char *)(mm + 1);
			for (; mm->entry_size && e + mm->entry_size <= p + tag->size; e += mm->entry_size) {
				const struct mb2_mmap_entry *me = (const void *)e;
				add_mem(bi, me->base_addr, me->length, mem_type(me->type));
			}
			break;
		}
		case MB2_TAG_ELF_SECTIONS:
			parse_elf_sections(bi, (const void *)tag);
			break;
		case MB2_TAG_ACPI_OLD:
		case MB2_TAG_ACPI_NEW:
			record_rsdp(bi, (const void *)tag);
			break;
		default:
			break;
		}
		p += (tag->size + 7) & ~7u;
	}
	return bi->nr_mem > 0;
}
