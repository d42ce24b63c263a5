"""The commit charged for page tables and a space's private commit, computed once for every
Python tool: the gdb extension's kn-vm, and the tests that check the monitor's and kn-vm's
figures (tests/check_monitor.py, tests/check_gdb_ext.py).

The kernel charges VM_TABLE_CHARGE_PER_WINDOW pages (the PT, PD and PDPT a fault may need) for
each 2 MiB window (1 << VM_TABLE_WINDOW_SHIFT bytes) that holds committed pages, and a page
more for each committed page that is not write-back (a direct-map table it may need: the
space's commit_extra). A space's private commit is
    committed + extra + windows * VM_TABLE_CHARGE_PER_WINDOW.
`k` is the generated constants module (tools/knmm/constants.py: load).
"""

NEEDS = ("VM_TABLE_CHARGE_PER_WINDOW", "VM_TABLE_WINDOW_SHIFT")


def table_charge(k, windows):
    """The commit charged for the page tables of `windows` 2 MiB windows."""
    return windows * k.VM_TABLE_CHARGE_PER_WINDOW


def private_commit(k, committed, extra, windows):
    """A space's private commit: its committed pages, the extra pages of its non-write-back
    ones, and the table charge of the windows they lie in."""
    return committed + extra + table_charge(k, windows)


def windows(k, first, last):
    """The 2 MiB windows (as numbers) that the bytes first..last (inclusive) touch."""
    shift = k.VM_TABLE_WINDOW_SHIFT
    return range(first >> shift, (last >> shift) + 1)
