/* SPDX-License-Identifier: MIT */
/* Segment selectors. The order suits SYSCALL/SYSRET (STAR): kernel CS, kernel SS = CS+8;
 * SYSRET takes user CS = base+16 and SS = base+8 with base = GDT_USER32_CS. */
#ifndef ARCH_GDT_H
#define ARCH_GDT_H

#define GDT_KERNEL_CS 0x08
#define GDT_KERNEL_DS 0x10
#define GDT_USER32_CS 0x18 /* SYSRET's base: a null descriptor (no 32-bit user code) */
#define GDT_USER_DS   0x20
#define GDT_USER_CS   0x28
#define GDT_TSS       0x30
#define SEL_RPL3      3

/* Each CPU has IST_COUNT interrupt stacks (IST_DF, IST_NMI, IST_MC: arch/trap.h) of
 * IST_STACK_SIZE bytes. */
#define IST_COUNT      3
#define IST_STACK_SIZE 16384

#ifndef __ASSEMBLER__
#include <knmm/compiler.h>
/* "double-fault IST stack" etc. when addr is in an IST stack of any CPU, else NULL. */
const char *ist_stack_name(uint64_t addr);
#endif

#endif
