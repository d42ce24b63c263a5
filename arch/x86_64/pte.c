// SPDX-License-Identifier: MIT
/*
 * PTE encoding and decoding: the only place MMU_* flags become x86 bits and back, and the
 * one decoder of entries into text (the monitor's `pte`, through pt_trace). Pure functions;
 * built into the kernel and into the host tests.
 */
#include <arch/cpu.h>
#include <arch/pte.h>
#include <knmm/printf.h>

unsigned pte_pat_index_for_cache(unsigned mmu_flags)
{
	switch (mmu_cache(mmu_flags)) {
	case MMU_CACHE_WT:
		return PAT_INDEX_WT;
	case MMU_CACHE_WC:
		return PAT_INDEX_WC;
	case MMU_CACHE_UCM:
		return PAT_INDEX_UCM;
	case MMU_CACHE_UC:
		return PAT_INDEX_UC;
	default:
		return PAT_INDEX_WB;
	}
}

unsigned pte_cache_for_pat_index(unsigned idx)
{
	switch (idx) {
	case PAT_INDEX_WT:
		return MMU_CACHE_WT;
	case PAT_INDEX_WC:
		return MMU_CACHE_WC;
	case PAT_INDEX_UCM:
	case 6: /* PA6 = UC- */
		return MMU_CACHE_UCM;
	case PAT_INDEX_UC:
	case 7: /* PA7 = UC */
		return MMU_CACHE_UC;
	case 5: /* PA5 = WT */
		return MMU_CACHE_WT;
	default:
		return MMU_CACHE_WB;
	}
}

pte_t pte_make_leaf(uint64_t pa, unsigned mmu_flags, enum pt_level level)
{
	pte_t e = (pa & pte_addr_mask(level)) | PTE_P;

	if (mmu_flags & MMU_WRITE)
		e |= PTE_RW;
	if (mmu_flags & MMU_USER)
		e |= PTE_US;
	if (!(mmu_flags & MMU_EXEC))
		e |= PTE_NX;
	if (mmu_flags & MMU_GLOBAL)
		e |= PTE_G;
	if (level != PT_LEVEL_PT)
		e |= PTE_PS;
	e |= pte_pat_bits(pte_pat_index_for_cache(mmu_flags), level);
	return e;
}

unsigned pte_leaf_mmu_flags(pte_t e, enum pt_level level)
{
	unsigned f = MMU_READ;

	if (pte_writable(e))
		f |= MMU_WRITE;
	if (!pte_nx(e))
		f |= MMU_EXEC;
	if (pte_user(e))
		f |= MMU_USER;
	if (pte_global(e))
		f |= MMU_GLOBAL;
	return f | pte_cache_for_pat_index(pte_pat_index(e, level));
}

pte_t pte_make_table(uint64_t table_pa, bool user)
{
	/* Permissions are decided at the leaf; upper levels allow everything. */
	return (table_pa & PTE_ADDR_MASK) | PTE_P | PTE_RW | (user ? PTE_US : 0);
}

/* The memory type PAT entry `idx` selects, as cpu_init programs the PAT (PAT_MSR_VALUE). */
static const char *pat_type_name(unsigned idx)
{
	switch ((PAT_MSR_VALUE >> (8 * (idx & 7))) & 0xff) {
	case PAT_TYPE_UC:
		return "UC";
	case PAT_TYPE_WC:
		return "WC";
	case PAT_TYPE_WT:
		return "WT";
	case PAT_TYPE_WP:
		return "WP";
	case PAT_TYPE_WB:
		return "WB";
	case PAT_TYPE_UCM:
		return "UC-";
	default:
		return "?";
	}
}

void pte_describe(pte_t e, enum pt_level level, char *buf, unsigned size)
{
	if (size == 0)
		return;
	if (!pte_present(e)) {
		ksnprintf(buf, size, "not present");
		return;
	}
	bool leaf = pte_is_leaf(e, level);
	int n = ksnprintf(buf, size, "%s %#llx  P%s%s%s%s%s%s%s%s%s", leaf ? "page " : "table",
			  (unsigned long long)(leaf ? pte_leaf_pa(e, level) : pte_table_pa(e)),
			  pte_writable(e) ? " RW" : " RO", pte_user(e) ? " US" : " S", (e & PTE_PWT) ? " PWT" : "",
			  (e & PTE_PCD) ? " PCD" : "", pte_accessed(e) ? " A" : "", leaf && pte_dirty(e) ? " D" : "",
			  level != PT_LEVEL_PT && (e & PTE_PS) ? " PS" : "", pte_global(e) ? " G" : "",
			  pte_nx(e) ? " NX" : "");
	if (leaf && n >= 0 && (unsigned)n < size)
		ksnprintf(buf + n, size - (unsigned)n, " PAT=%u (%s)", pte_pat_index(e, level),
			  pat_type_name(pte_pat_index(e, level)));
}
