// SPDX-License-Identifier: MIT
/*
 * The host test binary: the pure parts of knmm (PTE encoding, address arithmetic, string
 * helpers, printf, trap decoding, the physical allocator) under ASan and UBSan, with the
 * same KTEST cases and KTAP output as in the kernel. Usage: knmm-host-tests [GLOBS]
 */
#include <knmm/ktest.h>

int main(int argc, char **argv)
{
	return ktest_run(argc > 1 ? argv[1] : "*") ? 1 : 0;
}
