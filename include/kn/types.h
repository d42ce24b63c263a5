/* SPDX-License-Identifier: MIT */
/* Basic types of the knmm ring-3 API (KasperskyOS-style names). */
#ifndef KN_TYPES_H
#define KN_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t rtl_size_t;
typedef uint64_t rtl_uint64_t;
typedef uint32_t rtl_uint32_t;
typedef uintptr_t rtl_uintptr_t;
typedef int rtl_bool;
typedef uint32_t Handle;

#define RTL_NULL       ((void *)0)
#define RTL_TRUE       1
#define RTL_FALSE      0
#define INVALID_HANDLE ((Handle)0)

#endif
