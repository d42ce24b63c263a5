/* SPDX-License-Identifier: MIT */
/*
 * knmm return codes (SPEC §9), shared by ring 3 and the kernel. Every call documents in its
 * header which of these it returns and when. Bad input always gets a code and changes nothing.
 */
#ifndef KN_RETCODE_H
#define KN_RETCODE_H

typedef int Retcode;

#define rcOk              0  /* success */
#define rcInvalidArgument 1  /* malformed argument: alignment, size, flags, range */
#define rcOutOfMemory     2  /* commit limit or physical memory exhausted */
#define rcNotFound        3  /* nothing at that address / no such object */
#define rcAlreadyExists   4  /* the range or name is taken */
#define rcAccessDenied    5  /* the handle lacks a right, or protection above the maximum */
#define rcBadHandle       6  /* stale, closed, foreign or wrong-type handle */
#define rcBusy            7  /* pages pinned by an MDL, or the object is in use */
#define rcFault           8  /* a user pointer is bad (unmapped, kernel half, read-only) */
#define rcWrongState      9  /* the object is not in a state that allows the call */
#define rcEof             10 /* iteration is over */
#define rcNotSupported    11 /* valid request the kernel or CPU cannot do */

#define RC_COUNT 12

#endif
