/* SPDX-License-Identifier: MIT */
/* Ring-3 exceptions, user-copy faults and returns to ring 3 (kernel/trap_user.c). */
#ifndef KERNEL_TRAP_USER_H
#define KERNEL_TRAP_USER_H

/* Registers this layer's hooks with the trap layer (before the first task runs). */
void trap_user_init(void);

#endif
