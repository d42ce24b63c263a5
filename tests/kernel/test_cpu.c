// SPDX-License-Identifier: MIT
/* CPU setup: control registers, PAT layout, and the exception path for each kind of fault. */
#include <arch/cpu.h>
#include <arch/msr.h>
#include <arch/pte.h>
#include <knmm/align.h>
#include "ktest_util.h"

KTEST(cpu, long_mode_nx_wp)
{
	uint64_t efer = rdmsr(MSR_EFER);

	KT_EXPECT(efer & EFER_LMA);
	KT_EXPECT(efer & EFER_NXE);
	KT_EXPECT(read_cr0() & CR0_WP);
	KT_EXPECT(read_cr0() & CR0_PG);
}

KTEST(cpu, smep_smap_when_present)
{
	KT_EXPECT_EQ(!!(read_cr4() & CR4_SMEP), cpu_features.smep);
	KT_EXPECT_EQ(!!(read_cr4() & CR4_SMAP), cpu_features.smap);
	KT_EXPECT_EQ(!!(read_cr4() & CR4_PGE), cpu_features.pge);
	if (!cpu_features.smep && !cpu_features.smap)
		KT_SKIP("this CPU has neither SMEP nor SMAP");
}

/* The PAT entry that each cache mode's PTE bits select holds that memory type. */
KTEST(cpu, pat_layout)
{
	static const struct {
		unsigned mmu;
		uint8_t type;
	} modes[] = {
		{ MMU_CACHE_WB, PAT_TYPE_WB },   { MMU_CACHE_WT, PAT_TYPE_WT }, { MMU_CACHE_WC, PAT_TYPE_WC },
		{ MMU_CACHE_UCM, PAT_TYPE_UCM }, { MMU_CACHE_UC, PAT_TYPE_UC },
	};
	uint64_t pat = rdmsr(MSR_PAT);

	KT_ASSERT(cpu_features.pat);
	KT_EXPECT_EQ(pat, PAT_MSR_VALUE);
	for (unsigned i = 0; i < ARRAY_SIZE(modes); i++) {
		for (enum pt_level lvl = PT_LEVEL_PT; lvl <= PT_LEVEL_PDPT; lvl++) {
			pte_t e = pte_make_leaf(0x200000, MMU_READ | modes[i].mmu,
						lvl == PT_LEVEL_PT ? PT_LEVEL_PT : lvl);
			unsigned idx = pte_pat_index(e, lvl);
			KT_EXPECT_EQ((pat >> (idx * 8)) & 0xff, modes[i].type);
		}
	}
}

static void raise_ud(void *arg)
{
	(void)arg;
	__asm__ __volatile__("ud2");
}

static void raise_de(void *arg)
{
	(void)arg;
	__asm__ __volatile__("xorl %%edx, %%edx; movl $1, %%eax; xorl %%ecx, %%ecx; divl %%ecx" ::
				     : "eax", "ecx", "edx");
}

static void raise_bp(void *arg)
{
	(void)arg;
	__asm__ __volatile__("int3");
}

static void raise_gp(void *arg)
{
	(void)arg;
	*(volatile uint64_t *)0x8000000000000000ull = 1; /* non-canonical: #GP, not #PF */
}

KTEST(cpu, exceptions_are_dispatched)
{
	struct fault_info fi;

	KT_EXPECT(cpu_catch_fault(raise_ud, NULL, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_UD);
	KT_EXPECT(cpu_catch_fault(raise_de, NULL, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_DE);
	KT_EXPECT(cpu_catch_fault(raise_gp, NULL, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_GP);
	/* int3 is a trap: the catch still sees vector 3. */
	KT_EXPECT(cpu_catch_fault(raise_bp, NULL, &fi));
	KT_EXPECT_EQ(fi.vector, VEC_BP);
}

static void no_fault(void *arg) { *(int *)arg = 42; }

KTEST(cpu, catch_fault_returns_normally)
{
	struct fault_info fi;
	int v = 0;

	KT_EXPECT(!cpu_catch_fault(no_fault, &v, &fi));
	KT_EXPECT_EQ(v, 42);
}
