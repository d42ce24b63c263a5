// SPDX-License-Identifier: MIT
#include <arch/cpu.h>
#include <knmm/align.h>
#include <knmm/string.h>

void zero_pages(void *va, uint64_t npages)
{
	uint64_t bytes = npages << PAGE_SHIFT;

	if (cpu_features.erms) {
		/* Enhanced REP MOVSB/STOSB: the byte form is the fast string path. */
		__asm__ __volatile__("rep stosb" : "+D"(va), "+c"(bytes) : "a"(0) : "memory");
	} else {
		uint64_t words = bytes / 8;
		__asm__ __volatile__("rep stosq" : "+D"(va), "+c"(words) : "a"(0) : "memory");
	}
}
