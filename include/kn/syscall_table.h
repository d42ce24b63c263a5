/* SPDX-License-Identifier: MIT */
/*
 * The one list of system calls. The kernel builds its dispatch table from it
 * (kernel/syscall.c) and libkn its stubs (user/lib/syscalls.S): adding a call here is the
 * only way to add one. X(number, user-visible name, kernel handler). Usable from assembly.
 *
 * ABI (docs/tasks.md): SYSCALL with the number in rax and arguments in rdi, rsi, rdx, r10,
 * r8, r9; the result (a Retcode, or the value the call documents) comes back in rax; every
 * other register except rcx and r11 is preserved.
 */
#ifndef KN_SYSCALL_TABLE_H
#define KN_SYSCALL_TABLE_H

#define KN_SYSCALLS(X)                                             \
	X(0, KnDebugNop, sys_debug_nop)                            \
	X(1, KnDebugWrite, sys_debug_write)                        \
	X(2, KnDebugGetStats, sys_debug_get_stats)                 \
	X(3, KnTaskCreate, sys_task_create)                        \
	X(4, KnTaskResume, sys_task_resume)                        \
	X(5, KnTaskGetState, sys_task_get_state)                   \
	X(6, KnTaskWait, sys_task_wait)                            \
	X(7, KnTaskTerminate, sys_task_terminate)                  \
	X(8, KnTaskExit, sys_task_exit)                            \
	X(9, KnTaskSelf, sys_task_self)                            \
	X(10, KnTaskGetExitCode, sys_task_get_exit_code)           \
	X(11, KnHandleClose, sys_handle_close)                     \
	X(12, KnHandleTransfer, sys_handle_transfer)               \
	X(13, KnHandleEnumerate, sys_handle_enumerate)             \
	X(14, KnVmAllocateEx, sys_vm_allocate)                     \
	X(15, KnVmCommit, sys_vm_commit)                           \
	X(16, KnVmDecommit, sys_vm_decommit)                       \
	X(17, KnVmProtect, sys_vm_protect)                         \
	X(18, KnVmUnmap, sys_vm_unmap)                             \
	X(19, KnVmQuery, sys_vm_query)                             \
	X(20, KnPmmMdlCreate, sys_mdl_create)                      \
	X(21, KnPmmMdlCreateFromBuf, sys_mdl_create_from_buf)      \
	X(22, KnPmmMdlCreateFromVm, sys_mdl_create_from_vm)        \
	X(23, KnPmmMdlCreateFromPhys, sys_mdl_create_from_phys)    \
	X(24, KnPmmMdlClone, sys_mdl_clone)                        \
	X(25, KnPmmMdlMap, sys_mdl_map)                            \
	X(26, KnPmmMdlGetSize, sys_mdl_get_size)                   \
	X(27, KnPmmMdlGetUsageMap, sys_mdl_get_usage_map)          \
	X(28, KnTaskFreeze, sys_task_freeze)                       \
	X(29, KnTaskGetThreadContext, sys_task_get_thread_context) \
	X(30, KnTaskGetNextVmRegion, sys_task_get_next_vm_region)  \
	X(31, KnTaskSetQuota, sys_task_set_quota)                  \
	X(32, KnTaskGetQuota, sys_task_get_quota)                  \
	X(33, KnTaskVmQuery, sys_task_vm_query)                    \
	X(34, KnTaskVmAllocate, sys_task_vm_allocate)              \
	X(35, KnTaskVmCommit, sys_task_vm_commit)                  \
	X(36, KnTaskVmDecommit, sys_task_vm_decommit)              \
	X(37, KnTaskVmProtect, sys_task_vm_protect)                \
	X(38, KnTaskVmUnmap, sys_task_vm_unmap)                    \
	X(39, KnTaskReadMemory, sys_task_read_memory)              \
	X(40, KnTaskWriteMemory, sys_task_write_memory)            \
	X(41, KnThreadCreate, sys_thread_create)                   \
	X(42, KnThreadExit, sys_thread_exit)                       \
	X(43, KnThreadSetAffinity, sys_thread_set_affinity)        \
	X(44, KnThreadGetCpu, sys_thread_get_cpu)                  \
	X(45, KnThreadYield, sys_thread_yield)

#endif
