// SPDX-License-Identifier: MIT
/* Busy-loops: forever (until terminated) as "spin" or any other name; "spin-N" stops after
 * N million iterations and exits 0. The scheduler must preempt it either way. */
#include <knlib.h>

int main(int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : "";
	uint64_t limit = UINT64_MAX;

	if (!strncmp(name, "spin-", 5)) {
		limit = 0;
		for (const char *p = name + 5; *p >= '0' && *p <= '9'; p++)
			limit = limit * 10 + (uint64_t)(*p - '0');
		limit *= 1000000;
	}
	for (volatile uint64_t n = 0; n < limit; n++)
		;
	return 0;
}
