// SPDX-License-Identifier: MIT
/*
 * KnTaskReadMemory and KnTaskWriteMemory (include/kn/task_api.h, docs/vm.md "Access from
 * another task"): copies between the caller's space and a task's, a page of the task at a
 * time. mm gives the task's frame with a reference (vm_page_get), faulting it in as the task
 * would; the bytes then go through a bounce buffer on the kernel stack with no space lock
 * held, so that the caller's own faults (its lazy pages, its lock) never nest inside the
 * task's lock, and a caller that is the task itself (KN_HANDLE_SELF) may copy within one
 * frame (overlapping buffers are copied forward, a bounce buffer at a time).
 *
 * Worst case: O(size / 4 KiB) pages, each a region lookup under the task's space lock (and,
 * for a lazy page, a zeroed frame and its mapping, as the task's own fault), then the copy
 * with no lock held; a preemption point every 256 pages.
 */
#include <kn/handle_api.h>
#include <kn/task_api.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include <mm/vm.h>
#include <kernel/sched.h>
#include <kernel/syscall.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

#define BOUNCE 512 /* bytes copied at a time between the task's frame and the caller */

/* Copies n bytes between the task's frame (at kva) and the caller's buffer, a bounce buffer
 * at a time; the bytes copied: fewer than n if the caller's buffer went bad meanwhile
 * (another of its threads unmapped it), counting only whole bounce buffers. */
static uint64_t copy_page(uint8_t *kva, uint64_t ubuf, uint64_t n, bool write)
{
	uint8_t bounce[BOUNCE];
	uint64_t k = 0;

	while (k < n) {
		uint64_t c = MIN(n - k, (uint64_t)BOUNCE);
		if (write) {
			if (copy_from_user(bounce, ubuf + k, c) != rcOk)
				break;
			memcpy(kva + k, bounce, c);
		} else {
			memcpy(bounce, kva + k, c);
			if (copy_to_user(ubuf + k, bounce, c) != rcOk)
				break;
		}
		k += c;
	}
	return k;
}

/* a: task, addr (the task's), buf (the caller's), size, done (the caller's). */
static int64_t task_memory(const struct syscall_args *a, bool write)
{
	uint64_t addr = a->a[1], buf = a->a[2], size = a->a[3], done_out = a->a[4], done = 0;
	struct task *t;

	/* The caller's side first, asked of its space (nothing faulted in, in it or in the
	 * task): *done, then all of buf. */
	Retcode rc = syscall_probe_output(done_out, sizeof(uint64_t));
	if (rc == rcOk && size && (write ? !syscall_input_ok(buf, size) : syscall_probe_output(buf, size) != rcOk))
		rc = rcFault;
	if (rc == rcOk)
		rc = syscall_get_task((Handle)a->a[0], write ? KN_RIGHT_VM_WRITE : KN_RIGHT_VM_READ, &t);
	if (rc != rcOk)
		return rc;
	for (uint64_t pages = 0; done < size; pages++) {
		uint64_t at = addr + done, n = MIN(size - done, PAGE_SIZE - (at & PAGE_MASK));
		struct page *frame;
		void *kva;
		/* (the user half ends far below 2^64: a range that would wrap stops first) */
		if (!is_user_range(at, n) ||
		    vm_page_get(&t->vs, at, write ? VM_ACCESS_WRITE : VM_ACCESS_READ, &frame, &kva) != rcOk)
			break; /* the first page that cannot be read or written */
		uint64_t copied = copy_page((uint8_t *)kva + (at & PAGE_MASK), buf + done, n, write);
		vm_page_put(frame);
		done += copied;
		if (copied < n)
			break;
		if ((pages + 1) % VM_CHUNK_PAGES == 0 && done < size) {
			sched_preempt_point();
			if (READ_ONCE(current_thread()->killed))
				break; /* (terminated: it leaves on its way back to ring 3) */
		}
	}
	task_put(t);
	if (done == 0 && size != 0)
		return rcFault; /* nothing copied: nothing written, *done neither */
	return copy_to_user(done_out, &done, sizeof(done));
}

int64_t sys_task_read_memory(const struct syscall_args *a) { return task_memory(a, false); }

int64_t sys_task_write_memory(const struct syscall_args *a) { return task_memory(a, true); }
