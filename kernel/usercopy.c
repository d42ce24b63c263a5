// SPDX-License-Identifier: MIT
#include <arch/cpu.h>
#include <knmm/layout.h>
#include "usercopy.h"

extern uint64_t arch_copy_user_bytes(void *dst, const void *src, uint64_t n);
extern int64_t arch_copy_user_string(char *dst, const char *src, uint64_t max);

Retcode copy_from_user(void *dst, uint64_t usrc, uint64_t n)
{
	if (n == 0)
		return rcOk;
	if (!is_user_range(usrc, n))
		return rcFault;
	user_access_begin();
	uint64_t left = arch_copy_user_bytes(dst, (const void *)(uintptr_t)usrc, n);
	user_access_end();
	return left ? rcFault : rcOk;
}

Retcode copy_to_user(uint64_t udst, const void *src, uint64_t n)
{
	if (n == 0)
		return rcOk;
	if (!is_user_range(udst, n))
		return rcFault;
	user_access_begin();
	uint64_t left = arch_copy_user_bytes((void *)(uintptr_t)udst, src, n);
	user_access_end();
	return left ? rcFault : rcOk;
}

Retcode copy_string_from_user(char *dst, uint64_t usrc, uint64_t max)
{
	if (max == 0 || !is_user_addr(usrc))
		return rcFault;
	/* Never read past the user half, even when max would take us there: a string that
	 * runs into its end is as bad as one that runs into an unmapped page. */
	bool clipped = max > USER_END - usrc;
	if (clipped)
		max = USER_END - usrc;
	user_access_begin();
	int64_t n = arch_copy_user_string(dst, (const char *)(uintptr_t)usrc, max);
	user_access_end();
	if (n == -1)
		return rcFault;
	if (n < 0) {
		dst[max - 1] = '\0';
		return clipped ? rcFault : rcInvalidArgument;
	}
	return rcOk;
}
