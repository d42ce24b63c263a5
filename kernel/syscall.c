// SPDX-License-Identifier: MIT
/*
 * System calls of tasks and handles (the table is include/kn/syscall_table.h). Every user
 * pointer goes through usercopy; every handle through the caller's table.
 */
#include <arch/time.h>
#include <arch/cpu.h>
#include <arch/serial.h>
#include <kn/syscall_table.h>
#include <kn/task_api.h>
#include <knmm/log.h>
#include <knmm/string.h>
#include <mm/pool.h>
#include <mm/mm.h>
#include <mm/pmm.h>
#include <kernel/init.h>
#include <kernel/options.h>
#include <kernel/sched.h>
#include <kernel/syscall.h>
#include <kernel/task.h>
#include <kernel/usercopy.h>

#define DEBUG_WRITE_MAX (64 * 1024)
/* Bytes written between two preemption points: to the console under its lock (64 bytes at
 * 115200 baud hold interrupts off for about 5.5 ms), to the dump sink with no lock. */
#define CONSOLE_CHUNK 64
#define SINK_CHUNK    1024
/* A creator's rights on the task it made; KN_HANDLE_SELF has them all but QUOTA (a task
 * cannot lift its own limits). */
#define ALL_TASK_RIGHTS                                                                             \
	(KN_RIGHT_FREEZE | KN_RIGHT_DUMP | KN_RIGHT_TERMINATE | KN_RIGHT_QUOTA | KN_RIGHT_VM_READ | \
	 KN_RIGHT_VM_WRITE | KN_RIGHT_VM_OPERATION)
#define SELF_TASK_RIGHTS (ALL_TASK_RIGHTS & ~(uint32_t)KN_RIGHT_QUOTA)

static const syscall_fn table[] = {
#define ENTRY(n, name, handler) [n] = handler,
	KN_SYSCALLS(ENTRY)
#undef ENTRY
};

void syscall_init(void) { trap_set_syscall_handler(syscall_dispatch); }

void syscall_dispatch(struct trap_frame *tf)
{
	struct syscall_args args = { { tf->rdi, tf->rsi, tf->rdx, tf->r10, tf->r8, tf->r9 } };

	if (tf->rax < ARRAY_SIZE(table) && table[tf->rax])
		tf->rax = (uint64_t)table[tf->rax](&args);
	else
		tf->rax = (uint64_t)rcNotSupported;
	irq_disable();
	sched_return_to_user(tf);
}

Retcode syscall_probe_output(uint64_t out, uint64_t size)
{
	/* Asked of the address space, not tried: a call that then fails for another reason
	 * has faulted nothing in and grown no stack. */
	if (!is_user_range(out, size) || !vm_check_access(&current_task()->vs, out, size, VMM_FLAG_WRITE))
		return rcFault;
	return rcOk;
}

bool syscall_input_ok(uint64_t in, uint64_t size)
{
	return size == 0 || (is_user_range(in, size) && vm_check_access(&current_task()->vs, in, size, VMM_FLAG_READ));
}

Retcode syscall_get_task(Handle h, uint32_t need, struct task **out)
{
	struct task *self = current_task();
	struct kobject *o;

	if (h == KN_HANDLE_SELF) {
		if ((need & SELF_TASK_RIGHTS) != need)
			return rcAccessDenied;
		task_get(self);
		*out = self;
		return rcOk;
	}
	Retcode rc = handle_get(&self->handles, h, KN_HANDLE_TYPE_TASK, need, &o, NULL);
	if (rc == rcOk)
		*out = container_of(o, struct task, obj);
	return rc;
}

/* ------------------------------------------------------------------ debug */

int64_t sys_debug_nop(const struct syscall_args *a)
{
	(void)a;
	return rcOk;
}

/*
 * Follows the frames a task writes to the dump sink (struct sink_frames, kernel/task.h): a
 * frame counts as whole once its last byte (the checksum's last) has gone out. The kernel
 * reads only the header's length; it does not hash the file again (that would double the
 * collector's cost per byte): the checksum is checked where the core is read,
 * tools/extract_dumps.py.
 */
static void sink_follow(struct sink_frames *s, const uint8_t *p, size_t n)
{
	static const char magic[8] = "KNCORE1\n";
	enum { NAME_END = 40, HEAD = 48, SUM = 8 }; /* magic, name (32), length (8, LE); checksum */

	for (size_t i = 0; i < n;) {
		if (s->head_n < HEAD) {
			uint8_t c = p[i++];
			if (s->head_n < sizeof(magic) && c != (uint8_t)magic[s->head_n]) {
				s->head_n = c == (uint8_t)magic[0]; /* (a new start: no other overlap) */
				continue;
			}
			if (s->head_n == 0)
				s->left = 0;
			else if (s->head_n >= NAME_END)
				s->left |= (uint64_t)c << (8 * (s->head_n - NAME_END));
			if (++s->head_n == sizeof(magic))
				s->started++;
			if (s->head_n == HEAD) /* (a length near 2^64 never ends: never whole) */
				s->left = s->left > UINT64_MAX - SUM ? UINT64_MAX : s->left + SUM;
		} else {
			uint64_t k = MIN((uint64_t)(n - i), s->left);
			i += k;
			s->left -= k;
			if (s->left == 0) {
				s->whole++;
				s->head_n = 0;
			}
		}
	}
}

int64_t sys_debug_write(const struct syscall_args *a)
{
	int channel = (int)a->a[0];
	uint64_t buf = a->a[1], len = a->a[2];
	char chunk[SINK_CHUNK];
	struct task *self = current_task();

	if ((channel != 0 && channel != 1) || len > DEBUG_WRITE_MAX)
		return rcInvalidArgument;
	if (!syscall_input_ok(buf, len))
		return rcFault; /* (nothing written) */
	/* A chunk at a time, each under the console lock with interrupts off only while its
	 * bytes go out, and a preemption point between chunks: a long write at 115200 baud
	 * takes seconds, during which the other tasks run. The console marks the task's lines
	 * as its own (docs/tasks.md). */
	for (uint64_t done = 0; done < len;) {
		uint64_t n = MIN(len - done, channel == 0 ? CONSOLE_CHUNK : SINK_CHUNK);
		if (copy_from_user(chunk, buf + done, n) != rcOk)
			return rcFault; /* another thread unmapped the rest meanwhile */
		if (channel == 0)
			console_write_task(self->id, chunk, n);
		else {
			serial_write(COM2_PORT, chunk, n);
			sink_follow(&self->sink, (const uint8_t *)chunk, n); /* (after: out on the wire) */
		}
		done += n;
		if (done < len)
			sched_preempt_point();
		if (READ_ONCE(current_thread()->killed))
			break; /* (terminated: it leaves on its way back to ring 3; the monitor's dump
				  verdict on a collector it terminated stands) */
	}
	return rcOk;
}

int64_t sys_debug_get_stats(const struct syscall_args *a)
{
	KnMemStats st = { 0 };
	Retcode rc = syscall_probe_output(a->a[0], sizeof(st)); /* all of it, or nothing written */

	if (rc != rcOk)
		return rc;
	kernel_settle(); /* pending teardowns finish, caches go back: counts can be compared */
	struct pmm_stats ps;
	struct charge_stats cs;
	pmm_get_stats(&pmm_main, &ps);
	charge_get(&cs);
	st.freePages = ps.free;
	st.totalPages = ps.total;
	st.commitCharge = cs.total;
	st.commitLimit = cs.limit;
	st.tasks = task_count();
	st.threads = sched_thread_count();
	struct vm_space_stats vst;
	vm_space_stats(&current_task()->vs, &vst);
	st.taskCommit = vst.private_commit;
	st.taskResident = vst.resident;
	st.faultAround = kernel_faultaround;
	st.aslr = kernel_aslr;
	return copy_to_user(a->a[0], &st, sizeof(st));
}

/* ------------------------------------------------------------------ tasks */

int64_t sys_task_create(const struct syscall_args *a)
{
	char name[KN_TASK_NAME_MAX + 1], program[64];
	struct task *self = current_task(), *t;
	Handle h;
	Retcode rc;

	if ((rc = copy_string_from_user(name, a->a[0], sizeof(name))) != rcOk ||
	    (rc = copy_string_from_user(program, a->a[1], sizeof(program))) != rcOk)
		return rc;
	unsigned flags = (unsigned)a->a[2];
	if ((flags & KN_TASK_PRIVILEGED) && !(self->flags & KN_TASK_PRIVILEGED))
		return rcAccessDenied;
	/* The output must be writable before anything is made (no half-created task). */
	if ((rc = syscall_probe_output(a->a[3], sizeof(Handle))) != rcOk)
		return rc;
	if ((rc = task_create(name, program, flags, self->acct, &t)) != rcOk)
		return rc;
	rc = handle_alloc(&self->handles, &t->obj, ALL_TASK_RIGHTS, &h);
	if (rc != rcOk) {
		task_terminate(t, KN_EXIT_TERMINATED, true);
		task_put(t);
		return rc;
	}
	task_put(t); /* the handle holds it now */
	if ((rc = copy_to_user(a->a[3], &h, sizeof(h))) != rcOk)
		handle_close(&self->handles, h); /* the last handle: the task goes */
	return rc;
}

int64_t sys_task_resume(const struct syscall_args *a)
{
	struct task *t;
	Retcode rc = syscall_get_task((Handle)a->a[0], 0, &t);
	if (rc != rcOk)
		return rc;
	rc = task_resume(t);
	task_put(t);
	return rc;
}

int64_t sys_task_get_state(const struct syscall_args *a)
{
	struct task *t;
	Retcode rc = syscall_probe_output(a->a[1], sizeof(int));
	if (rc == rcOk)
		rc = syscall_get_task((Handle)a->a[0], 0, &t);
	if (rc != rcOk)
		return rc;
	int state = t->state;
	task_put(t);
	return copy_to_user(a->a[1], &state, sizeof(state));
}

int64_t sys_task_get_exit_code(const struct syscall_args *a)
{
	struct task *t;
	Retcode rc = syscall_get_task((Handle)a->a[0], 0, &t);
	if (rc != rcOk)
		return rc;
	int code = t->exit_code;
	bool exited = t->state == KN_TASK_STATE_EXITED;
	task_put(t);
	if (!exited)
		return rcWrongState;
	if ((rc = syscall_probe_output(a->a[1], sizeof(code))) != rcOk)
		return rc; /* (all of it, or nothing written) */
	return copy_to_user(a->a[1], &code, sizeof(code));
}

int64_t sys_task_wait(const struct syscall_args *a)
{
	int states = (int)a->a[1];
	uint64_t timeout = a->a[2];
	struct task *t;

	if (!(states & (KN_TASK_STATE_CREATED | KN_TASK_STATE_RUNNING | KN_TASK_STATE_FROZEN | KN_TASK_STATE_EXITED)))
		return rcInvalidArgument;
	Retcode rc = syscall_get_task((Handle)a->a[0], 0, &t);
	if (rc != rcOk)
		return rc;
	/* A running task waiting for itself to be in another state would wait forever. */
	if (t == current_task() && !(states & KN_TASK_STATE_RUNNING)) {
		task_put(t);
		return rcWrongState;
	}
	uint64_t now = clock_ns(), deadline = 0;
	if (timeout == 0)
		deadline = now ? now : 1; /* look once */
	else if (timeout != UINT64_MAX)
		deadline = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
	rc = task_wait(t, states, deadline);
	task_put(t);
	return rc;
}

int64_t sys_task_terminate(const struct syscall_args *a)
{
	struct task *t;
	Retcode rc = syscall_get_task((Handle)a->a[0], KN_RIGHT_TERMINATE, &t);
	if (rc != rcOk)
		return rc;
	task_terminate(t, KN_EXIT_TERMINATED, true);
	task_put(t);
	return rcOk; /* when t is the caller, it leaves on the way back to ring 3 */
}

int64_t sys_task_exit(const struct syscall_args *a) { task_exit_current((int)a->a[0]); }

int64_t sys_task_self(const struct syscall_args *a)
{
	(void)a;
	return KN_HANDLE_SELF;
}

/* ------------------------------------------------------------------ handles */

int64_t sys_handle_close(const struct syscall_args *a)
{
	return handle_close(&current_task()->handles, (Handle)a->a[0]);
}

int64_t sys_handle_transfer(const struct syscall_args *a)
{
	struct task *self = current_task(), *target;
	struct kobject *obj;
	uint32_t have, rights = (uint32_t)a->a[2];
	Handle remote;
	Retcode rc;

	if ((rc = syscall_probe_output(a->a[3], sizeof(Handle))) != rcOk)
		return rc;
	if ((rc = syscall_get_task((Handle)a->a[0], 0, &target)) != rcOk)
		return rc;
	if ((Handle)a->a[1] == KN_HANDLE_SELF) {
		task_get(self);
		obj = &self->obj;
		have = SELF_TASK_RIGHTS;
	} else if ((rc = handle_get(&self->handles, (Handle)a->a[1], 0, 0, &obj, &have)) != rcOk) {
		task_put(target);
		return rc;
	}
	if ((rights & have) != rights)
		rc = rcAccessDenied;
	else if (target->dying || target->state == KN_TASK_STATE_EXITED)
		rc = rcWrongState;
	else if (target->state == KN_TASK_STATE_CREATED && obj->type == KN_HANDLE_TYPE_TASK &&
		 container_of(obj, struct task, obj)->state == KN_TASK_STATE_CREATED)
		rc = rcWrongState; /* tasks that never started would keep each other alive */
	else
		rc = handle_alloc(&target->handles, obj, rights, &remote);
	if (rc == rcOk && (rc = copy_to_user(a->a[3], &remote, sizeof(remote))) != rcOk)
		handle_close(&target->handles, remote);
	kobj_put(obj);
	task_put(target);
	return rc;
}

int64_t sys_handle_enumerate(const struct syscall_args *a)
{
	Handle h = 0;
	uint8_t type = 0;
	uint32_t rights = 0;
	int t = 0;
	Retcode rc;

	/* Bad outputs are rcFault whether or not there is a handle to report; probing them
	 * leaves them as they were (rcEof writes nothing). */
	if ((rc = syscall_probe_output(a->a[1], sizeof(h))) != rcOk ||
	    (rc = syscall_probe_output(a->a[2], sizeof(t))) != rcOk ||
	    (rc = syscall_probe_output(a->a[3], sizeof(rights))) != rcOk)
		return rc;
	if ((rc = handle_enumerate(&current_task()->handles, a->a[0], &h, &type, &rights)) != rcOk)
		return rc;
	t = type;
	copy_to_user(a->a[1], &h, sizeof(h));
	copy_to_user(a->a[2], &t, sizeof(t));
	return copy_to_user(a->a[3], &rights, sizeof(rights));
}

/* ------------------------------------------------------------------ quotas */

static void quota_to_array(const KnQuota *q, uint64_t v[ACCT_NR])
{
	v[ACCT_CHARGE] = q->commitPages;
	v[ACCT_LOCKED] = q->lockedPages;
	v[ACCT_HANDLES] = q->handles;
	v[ACCT_REGIONS] = q->regions;
	v[ACCT_TASKS] = q->tasks;
}

static KnQuota quota_from_array(const uint64_t v[ACCT_NR])
{
	return (KnQuota){ .commitPages = v[ACCT_CHARGE],
			  .lockedPages = v[ACCT_LOCKED],
			  .handles = v[ACCT_HANDLES],
			  .regions = v[ACCT_REGIONS],
			  .tasks = v[ACCT_TASKS] };
}

int64_t sys_task_set_quota(const struct syscall_args *a)
{
	KnQuota q;
	uint64_t limit[ACCT_NR];
	struct task *t;
	Retcode rc = copy_from_user(&q, a->a[1], sizeof(q));

	if (rc == rcOk)
		rc = syscall_get_task((Handle)a->a[0], KN_RIGHT_QUOTA, &t);
	if (rc != rcOk)
		return rc;
	if (t->state == KN_TASK_STATE_EXITED || t->dying) {
		rc = rcWrongState;
	} else {
		quota_to_array(&q, limit);
		account_set_limits(t->acct, limit);
	}
	task_put(t);
	return rc;
}

int64_t sys_task_get_quota(const struct syscall_args *a)
{
	uint64_t limit[ACCT_NR], usage[ACCT_NR];
	struct task *t;
	Retcode rc;

	if ((rc = syscall_probe_output(a->a[1], sizeof(KnQuota))) != rcOk ||
	    (rc = syscall_probe_output(a->a[2], sizeof(KnQuota))) != rcOk ||
	    (rc = syscall_get_task((Handle)a->a[0], 0, &t)) != rcOk)
		return rc;
	account_read(t->acct, limit, usage);
	task_put(t);
	KnQuota l = quota_from_array(limit), u = quota_from_array(usage);
	if ((rc = copy_to_user(a->a[1], &l, sizeof(l))) != rcOk)
		return rc;
	return copy_to_user(a->a[2], &u, sizeof(u));
}
