/* SPDX-License-Identifier: MIT */
/*
 * Handles (SPEC §6): a task's references to kernel objects, with rights.
 *
 * A handle value is valid only in the task that holds it: values carry a per-task salt and
 * a per-slot generation, so a stale (closed) or foreign (another task's) value is
 * rcBadHandle, not somebody else's object.
 */
#ifndef KN_HANDLE_API_H
#define KN_HANDLE_API_H

#include <kn/retcode.h>
#include <kn/types.h>

/* Object types */
#define KN_HANDLE_TYPE_TASK 1
#define KN_HANDLE_TYPE_MDL  2

/* Rights on task handles */
#define KN_RIGHT_FREEZE    0x0001
#define KN_RIGHT_DUMP      0x0002
#define KN_RIGHT_TERMINATE 0x0004
#define KN_RIGHT_QUOTA     0x0008 /* KnTaskSetQuota; never on KN_HANDLE_SELF */
#define KN_RIGHT_VM_READ   0x0010 /* KnTaskVmQuery, KnTaskReadMemory: read the task's address space */
/* SPEC §14's other address-space rights: a creator gets them (and KN_HANDLE_SELF has them)
 * and they pass with KnHandleTransfer (docs/dump.md). */
#define KN_RIGHT_VM_WRITE     0x0020 /* KnTaskWriteMemory */
#define KN_RIGHT_VM_OPERATION 0x0040 /* KnTaskVmAllocate, ...Commit, ...Decommit, ...Protect, ...Unmap */
/* Rights on MDL handles */
#define KN_RIGHT_MAP_READ  0x0100
#define KN_RIGHT_MAP_WRITE 0x0200
#define KN_RIGHT_CLONE     0x0400
#define KN_RIGHTS_ALL      0x077f

/*
 * Closes a handle.
 *   rcOk
 *   rcBadHandle  h is not an open handle of the caller
 */
Retcode KnHandleClose(Handle h);

/*
 * Gives task `task` a handle to the object behind the caller's handle h, with `rights`
 * (a subset of h's). *remote gets the value, valid in that task only.
 *   rcBadHandle     task or h is not the caller's, or task is not a task handle
 *   rcAccessDenied  rights are not a subset of h's rights
 *   rcWrongState    the target task has exited, or it has not started and h is a handle to
 *                   a task that has not started either (such tasks could only keep each
 *                   other alive)
 *   rcOutOfMemory   the target's handle table is full
 *   rcFault         remote is not a writable user address
 */
Retcode KnHandleTransfer(Handle task, Handle h, rtl_uint32_t rights, Handle *remote);

/*
 * The caller's open handles, in slot order: the one at position `index` (0, 1, ...). This is
 * how a task learns the handles it was given.
 *   rcOk, rcEof (no handle at or past index), rcFault (bad output pointers)
 */
Retcode KnHandleEnumerate(rtl_size_t index, Handle *handle, int *type, rtl_uint32_t *rights);

#endif
