// SPDX-License-Identifier: MIT
/*
 * MDL handles and the MDL system calls (include/kn/pmm_api.h). The MDL itself is mm's
 * (mm/mdl.c); this file makes it a kernel object behind handles with rights, and checks
 * every user pointer before anything is made.
 */
#include <kn/handle_api.h>
#include <kn/pmm_api.h>
#include <kn/task_api.h>
#include <knmm/align.h>
#include <knmm/layout.h>
#include <knmm/string.h>
#include <mm/mdl.h>
#include <mm/pool.h>
#include <mm/vm.h>
#include <kernel/syscall.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

#define MDL_OBJ_TAG    POOL_TAG('M', 'd', 'l', 'H')
#define ALL_MDL_RIGHTS (KN_RIGHT_MAP_READ | KN_RIGHT_MAP_WRITE | KN_RIGHT_CLONE)
#define USAGE_MAP_MAX  256 /* counts a call returns at most (SPEC §5 lets it return fewer) */

struct mdl_object {
	struct kobject obj;
	struct mdl *mdl;
};

/* The object is the MDL's bookkeeping too: charged to the MDL's account. */
static void mdl_object_release(struct kobject *o)
{
	struct mdl_object *mo = container_of(o, struct mdl_object, obj);
	struct mdl *m = mo->mdl;
	kmem_free(mdl_account(m), mo);
	mdl_free(m);
}

static struct account *own_account(void) { return current_task()->acct; }

Retcode syscall_reserve_mdl(struct mdl *m, uint32_t rights, Handle *h)
{
	struct mdl_object *mo = kmem_alloc(mdl_account(m), sizeof(*mo), MDL_OBJ_TAG);

	if (!mo) {
		mdl_free(m);
		return rcOutOfMemory;
	}
	kobj_init(&mo->obj, KN_HANDLE_TYPE_MDL, mdl_object_release);
	mo->mdl = m;
	Retcode rc = handle_reserve(&current_task()->handles, &mo->obj, rights, h);
	kobj_put(&mo->obj); /* the reserved handle holds it now, or nobody does */
	return rc;
}

Retcode syscall_commit_mdl(Handle h, uint64_t uout)
{
	Retcode rc = copy_to_user(uout, &h, sizeof(h));
	if (rc != rcOk) { /* (probed before, so only if another thread unmapped it meanwhile) */
		handle_abandon(&current_task()->handles, h);
		return rc;
	}
	handle_commit(&current_task()->handles, h);
	return rcOk;
}

Retcode syscall_publish_mdl(struct mdl *m, uint32_t rights, uint64_t uout)
{
	Handle h;
	Retcode rc = syscall_reserve_mdl(m, rights, &h);
	return rc == rcOk ? syscall_commit_mdl(h, uout) : rc;
}

/* The MDL behind a handle of the caller, with a reference on its object. */
static Retcode get_mdl(Handle h, uint32_t need, struct mdl_object **out, uint32_t *rights)
{
	struct kobject *o;
	Retcode rc = handle_get(&current_task()->handles, h, KN_HANDLE_TYPE_MDL, need, &o, rights);
	if (rc == rcOk)
		*out = container_of(o, struct mdl_object, obj);
	return rc;
}

int64_t sys_mdl_create(const struct syscall_args *a)
{
	struct mdl *m;
	Retcode rc = syscall_probe_output(a->a[2], sizeof(Handle));

	if (rc == rcOk)
		rc = mdl_create(a->a[0], syscall_flags(a->a[1]), own_account(), &m);
	return rc == rcOk ? syscall_publish_mdl(m, ALL_MDL_RIGHTS, a->a[2]) : rc;
}

/* Copies `size` bytes from the caller at buf into m's frames, a run at a time (a cursor:
 * O(runs + pages) however fragmented the frames are), giving the CPU away between chunks. */
static Retcode fill_from_user(struct mdl *m, uint64_t buf, uint64_t size)
{
	uint64_t done = 0, since = 0;
	uint32_t nruns;
	const struct mdl_run *runs = mdl_runs(m, &nruns);

	for (uint32_t r = 0; r < nruns && done < size; r++) {
		uint64_t pa = runs[r].pfn << PAGE_SHIFT, left = runs[r].count * PAGE_SIZE;
		while (left && done < size) {
			uint64_t n = MIN(MIN(left, size - done), VM_CHUNK_PAGES * PAGE_SIZE);
			Retcode rc = copy_from_user(phys_to_virt(pa), buf + done, n);
			if (rc != rcOk)
				return rc;
			pa += n;
			left -= MIN(left, align_up(n, PAGE_SIZE));
			done += n;
			if ((since += n) >= VM_CHUNK_PAGES * PAGE_SIZE) {
				since = 0;
				sched_preempt_point();
			}
		}
	}
	return rcOk;
}

int64_t sys_mdl_create_from_buf(const struct syscall_args *a)
{
	uint64_t buf = a->a[0], size = a->a[1];
	unsigned flags = syscall_flags(a->a[2]);
	struct mdl *m;
	Retcode rc = syscall_probe_output(a->a[3], sizeof(Handle));

	/* Every argument before anything is made: flags and size, then the whole input range
	 * (readable memory, asked of the address space: nothing is faulted in). */
	if (rc == rcOk && (!mdl_flags_valid(flags) || size == 0))
		rc = rcInvalidArgument;
	if (rc == rcOk && !syscall_input_ok(buf, size))
		rc = rcFault;
	/* Frames not zeroed first: every byte is written here, the buffer's, then zeros to the
	 * end of the last page. */
	if (rc == rcOk)
		rc = mdl_create_unzeroed(size, flags, own_account(), &m);
	if (rc == rcOk && (rc = fill_from_user(m, buf, size)) != rcOk)
		mdl_free(m); /* (another thread unmapped part of the buffer meanwhile) */
	if (rc == rcOk && (size & PAGE_MASK)) {
		struct mdl_cursor c;
		mdl_cursor_init(&c, m, size / PAGE_SIZE);
		memset((uint8_t *)mdl_cursor_next(&c) + (size & PAGE_MASK), 0, PAGE_SIZE - (size & PAGE_MASK));
	}
	return rc == rcOk ? syscall_publish_mdl(m, ALL_MDL_RIGHTS, a->a[3]) : rc;
}

int64_t sys_mdl_create_from_vm(const struct syscall_args *a)
{
	uint64_t addr = a->a[0], size = a->a[1];
	unsigned flags = syscall_flags(a->a[2]);
	struct mdl *m;
	Retcode rc = syscall_probe_output(a->a[3], sizeof(Handle));

	if (rc != rcOk)
		return rc;
	if (!mdl_flags_valid(flags))
		return rcInvalidArgument;
	if ((rc = mdl_describe(&current_task()->vs, addr, size, own_account(), &m)) != rcOk)
		return rc;
	/* The handle first (reserved: it may be refused by a full table or a quota), so that
	 * once pages are made resident and pinned the call cannot fail any more. */
	Handle h;
	if ((rc = syscall_reserve_mdl(m, ALL_MDL_RIGHTS, &h)) != rcOk)
		return rc;
	/* The MDL may allow no more than the range does (every bit asked, EXECUTE included:
	 * a mapping of an MDL passes on its own limit), and keeps its memory type: a cache mode
	 * named must be the range's (checked with everything else, before a page is touched). */
	unsigned prot = flags & VMM_FLAG_RWX_MASK, cache = flags & VMM_FLAG_CACHE_MASK;
	mdl_limit_prot(m, prot);
	rc = mdl_probe_and_lock(m, prot, cache ? cache : MDL_CACHE_ANY);
	if (rc != rcOk) {
		handle_abandon(&current_task()->handles, h); /* (the MDL goes with it) */
		return rc;
	}
	return syscall_commit_mdl(h, a->a[3]);
}

int64_t sys_mdl_create_from_phys(const struct syscall_args *a)
{
	struct mdl *m;
	Retcode rc = syscall_probe_output(a->a[3], sizeof(Handle));

	if (rc != rcOk)
		return rc;
	if (!(current_task()->flags & KN_TASK_PRIVILEGED))
		return rcAccessDenied;
	if ((rc = mdl_create_phys(a->a[0], a->a[1], syscall_flags(a->a[2]), own_account(), &m)) != rcOk)
		return rc;
	return syscall_publish_mdl(m, ALL_MDL_RIGHTS, a->a[3]);
}

int64_t sys_mdl_clone(const struct syscall_args *a)
{
	struct mdl_object *mo;
	struct mdl *m;
	uint32_t rights;
	Retcode rc = syscall_probe_output(a->a[1], sizeof(Handle));

	if (rc == rcOk)
		rc = get_mdl((Handle)a->a[0], KN_RIGHT_CLONE, &mo, &rights);
	if (rc != rcOk)
		return rc;
	rc = mdl_clone(mo->mdl, own_account(), &m);
	kobj_put(&mo->obj);
	return rc == rcOk ? syscall_publish_mdl(m, rights, a->a[1]) : rc;
}

int64_t sys_mdl_map(const struct syscall_args *a)
{
	uint64_t offset = a->a[1], size = a->a[2], addr = a->a[3], out = a->a[5], va;
	unsigned flags = syscall_flags(a->a[4]);
	struct mdl_object *mo;
	uint32_t rights;
	Retcode rc = syscall_probe_output(out, sizeof(uint64_t));

	if (rc == rcOk)
		rc = get_mdl((Handle)a->a[0], 0, &mo, &rights);
	if (rc != rcOk)
		return rc;
	struct mdl *m = mo->mdl;
	unsigned cache = flags & VMM_FLAG_CACHE_MASK;
	if (!(rights & KN_RIGHT_MAP_READ) || ((flags & VMM_FLAG_WRITE) && !(rights & KN_RIGHT_MAP_WRITE)))
		rc = rcAccessDenied;
	else if (!is_aligned(offset, PAGE_SIZE) || !is_aligned(size, PAGE_SIZE) ||
		 (cache && vm_cache_mode(cache) != mdl_cache(m)))
		rc = rcInvalidArgument; /* (one memory type per frame: no other cache mode) */
	else
		/* The handle's rights bound the mapping for good: no KnVmProtect past them later. */
		rc = vm_map_mdl(&current_task()->vs, m, offset / PAGE_SIZE, size / PAGE_SIZE, addr, flags & ~cache,
				(rights & KN_RIGHT_MAP_WRITE) ? VMM_FLAG_RWX_MASK : VMM_FLAG_RWX_MASK & ~VMM_FLAG_WRITE,
				"mdl", &va);
	kobj_put(&mo->obj);
	if (rc == rcOk && (rc = copy_to_user(out, &va, sizeof(va))) != rcOk)
		vm_unmap(&current_task()->vs, va, size);
	return rc;
}

int64_t sys_mdl_get_size(const struct syscall_args *a)
{
	struct mdl_object *mo;
	Retcode rc = syscall_probe_output(a->a[1], sizeof(uint64_t)); /* all of it, or nothing written */

	if (rc == rcOk)
		rc = get_mdl((Handle)a->a[0], 0, &mo, NULL);
	if (rc != rcOk)
		return rc;
	uint64_t size = mdl_size(mo->mdl);
	kobj_put(&mo->obj);
	return copy_to_user(a->a[1], &size, sizeof(size));
}

int64_t sys_mdl_get_usage_map(const struct syscall_args *a)
{
	uint64_t addr = a->a[0], start = a->a[1], ucounters = a->a[2], want = a->a[3];
	uint64_t counters[USAGE_MAP_MAX], n = 0, max = MIN(want, (uint64_t)USAGE_MAP_MAX);
	bool first_used = false;
	Retcode rc;

	if (want == 0)
		return rcInvalidArgument;
	/* Every output first, so that a bad one changes nothing. */
	if ((rc = syscall_probe_output(ucounters, max * sizeof(uint64_t))) != rcOk ||
	    (rc = syscall_probe_output(a->a[4], sizeof(rtl_bool))) != rcOk ||
	    (rc = syscall_probe_output(a->a[5], sizeof(uint64_t))) != rcOk)
		return rc;
	rc = vm_usage_map(&current_task()->vs, addr, start, counters, max, &first_used, &n);
	if (rc != rcOk)
		return rc;
	rtl_bool fu = first_used;
	if ((rc = copy_to_user(ucounters, counters, n * sizeof(uint64_t))) != rcOk ||
	    (rc = copy_to_user(a->a[4], &fu, sizeof(fu))) != rcOk)
		return rc;
	return copy_to_user(a->a[5], &n, sizeof(n));
}
