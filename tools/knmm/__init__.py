"""knmm's Python tooling shared by the gdb extension (tools/gdb/knmm.py) and the tests.

    constants  the #define constants of the kernel's headers, generated at build time
               (BUILD/gdb/knmm_constants.py from tools/gdb/constants.c), and their loader
    charge     the commit charged for page tables and a space's private commit

Python 3 standard library only; importing the package imports nothing else.
"""
