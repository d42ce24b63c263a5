// SPDX-License-Identifier: MIT
/* The smallest program: says hello with its name and exits 0. */
#include <knlib.h>

int main(int argc, char **argv)
{
	printf("hello from %s (argc %d)\n", argc > 0 ? argv[0] : "?", argc);
	return 0;
}
