"""knmm gdb extension, loaded by `make debug` (source tools/gdb/knmm.py).

Reads kernel structures of a halted kernel through its debug symbols (never fixed
offsets). Commands:
    kn-boot     the command line, boot loader, memory map and modules the kernel booted with
"""

import gdb

BOOT_MEM_TYPES = {1: "available", 2: "reserved", 3: "ACPI reclaimable", 4: "ACPI NVS", 5: "bad RAM"}


def c_string(value):
    """A char array or pointer as a Python string."""
    try:
        return value.string(errors="replace")
    except gdb.error:
        return "?"


class KnBoot(gdb.Command):
    """kn-boot: what the kernel booted with (boot_info: command line, memory map, modules)."""

    def __init__(self):
        super().__init__("kn-boot", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        bi = gdb.parse_and_eval("boot_info")
        gdb.write(f"loader:       {c_string(bi['loader'])}\n")
        gdb.write(f"command line: {c_string(bi['cmdline'])}\n")
        n = int(bi["nr_mem"])
        gdb.write(f"memory map ({n} entries):\n")
        for i in range(n):
            m = bi["mem"][i]
            base, size, kind = int(m["base"]), int(m["size"]), int(m["type"])
            gdb.write(f"  {base:#014x}-{base + size - 1:#014x} {size >> 10:>10} KiB  "
                      f"{BOOT_MEM_TYPES.get(kind, 'reserved')}\n")
        for i in range(int(bi["nr_modules"])):
            mod = bi["modules"][i]
            gdb.write(f"module {i}: {int(mod['start']):#x}-{int(mod['end']):#x} {c_string(mod['name'])}\n")


KnBoot()
