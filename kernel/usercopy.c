// SPDX-License-Identifier: MIT
/* Copies between the kernel and the current task (kernel/usercopy.h, docs/tasks.md). */
#include <arch/cpu.h>
#include <arch/usercopy.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <mm/vm.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

Retcode copy_from_user(void *dst, uint64_t usrc, uint64_t n)
{
	if (n == 0)
		return rcOk;
	if (!is_user_range(usrc, n))
		return rcFault;
	/* Read through the frames, not through the task's mappings: an input never faults a
	 * page in, so a call that then fails has changed nothing (and one that succeeds has not
	 * made its input buffer resident either). */
	return vm_read(&current_task()->vs, usrc, dst, n);
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
	 * runs into its end is as bad as one that runs into an unreadable page. */
	bool clipped = max > USER_END - usrc;
	if (clipped)
		max = USER_END - usrc;
	/* A page at a time (only pages the string reaches are looked at), as copy_from_user. */
	for (uint64_t done = 0; done < max;) {
		uint64_t n = MIN(max - done, PAGE_SIZE - ((usrc + done) & PAGE_MASK));
		if (vm_read(&current_task()->vs, usrc + done, dst + done, n) != rcOk)
			return rcFault;
		for (uint64_t i = done; i < done + n; i++)
			if (dst[i] == '\0')
				return rcOk;
		done += n;
	}
	dst[max - 1] = '\0';
	return clipped ? rcFault : rcInvalidArgument;
}
