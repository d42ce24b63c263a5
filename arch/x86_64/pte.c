// SPDX-License-Identifier: MIT
/*
 * PTE encoding and decoding: the only place MMU_* flags become x86 bits and back.
 * Pure functions; built into the kernel and into the host tests.
 */
#include <arch/cpu.h>
#include <arch/pte.h>

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

static void put(char **p, char *end, const char *s)
{
	while (*s && *p < end - 1)
		*(*p)++ = *s++;
}

void pte_describe(pte_t e, enum pt_level level, char *buf, unsigned size)
{
	char *p = buf, *end = buf + size;
	bool leaf = pte_is_leaf(e, level);

	if (size == 0)
		return;
	put(&p, end, pte_present(e) ? "P " : "-- ");
	put(&p, end, pte_writable(e) ? "RW " : "RO ");
	put(&p, end, pte_user(e) ? "US " : "SU ");
	put(&p, end, (e & PTE_PWT) ? "PWT " : "--- ");
	put(&p, end, (e & PTE_PCD) ? "PCD " : "--- ");
	put(&p, end, pte_accessed(e) ? "A " : "- ");
	put(&p, end, (leaf && pte_dirty(e)) ? "D " : "- ");
	put(&p, end, (level != PT_LEVEL_PT && (e & PTE_PS)) ? "PS " : "-- ");
	put(&p, end, (leaf && pte_global(e)) ? "G " : "- ");
	put(&p, end, pte_nx(e) ? "NX" : "X ");
	if (leaf) {
		char pat[] = " pat=0";
		pat[5] = (char)('0' + pte_pat_index(e, level));
		put(&p, end, pat);
	}
	*p = '\0';
}
