// SPDX-License-Identifier: MIT
/*
 * Issue 13: ring 3 cannot hurt the kernel. One program for all of its ring-3 tests and their
 * children, told apart by the task's name (argv[0]): the ISO holds at most 32 modules
 * (BOOT_MAX_MODULES), and the tree already had 31. The parts are in hostile/; the kernel
 * runs them from tests/kernel/test_hostile.c.
 *
 *   test_hostile     user.hostile: findings 1 (what a task costs is charged), 3 (orphans),
 *                    5 (failing calls change nothing), 6 (marked task output; KnDebugWrite)
 *   hostile-wrap     user.hostile_handle_wrap: finding 4 (handle values never come back)
 *   hostile-quota    user.hostile_quota: SPEC §14 quotas
 *   hostile-reserve  zz_last.user_hostile_reserve: finding 1 (the reserve out of reach)
 *   frag-N           user.hostile_mdl_fragmented: finding 2 (FromBuf over single frames)
 *   orphan-crash, hold, q-*: children of the above
 */
#include "hostile/common.h"
#include "hostile/findings.c"
#include "hostile/wrap.c"
#include "hostile/quota.c"
#include "hostile/reserve.c"
#include "hostile/child.c"
#include "hostile/qchild.c"

int main(int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : "";
	int code;

	if (!strcmp(name, "test_hostile"))
		return findings_main();
	if (!strcmp(name, "hostile-wrap"))
		return wrap_main();
	if (!strcmp(name, "hostile-quota"))
		return quota_main();
	if (!strcmp(name, "hostile-reserve"))
		return reserve_main();
	if ((code = child_main(name)) >= 0 || (code = qchild_main(name)) >= 0)
		return code;
	printf("test_hostile: no part is called %s\n", name);
	return 99;
}
