// SPDX-License-Identifier: MIT
/*
 * The host test binary: the pure parts of knmm (PTE encoding, address arithmetic, string
 * helpers, printf, trap decoding, the physical allocator, the address-space core) under ASan
 * and UBSan: its own KTEST cases (the test_*.c files here) through the kernel's test harness, with
 * the same KTAP output. Usage: knmm-host-tests [GLOBS]
 */
#include <knmm/ktest.h>

int main(int argc, char **argv) { return ktest_run(argc > 1 ? argv[1] : "*") ? 1 : 0; }
