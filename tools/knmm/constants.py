#!/usr/bin/env python3
"""The kernel's #define constants for the Python tools: one source, the headers.

At build time (the Makefile's rule for BUILD/gdb/knmm_constants.py):

    tools/knmm/constants.py BUILD/gdb/constants.s BUILD/gdb/knmm_constants.py

reads the assembly the compiler made of tools/gdb/constants.c, where each constant is a line
"->KNMM_CONST NAME HIGH LOW" (its value as two 32-bit halves, as the compiler computed it),
and writes a Python file of `NAME = value` lines: the C name unchanged, the value as an
unsigned 64-bit number. Nothing is typed in twice: a constant is added to constants.c and
used by its C name.

At run time, load(path) returns that file as a module (no sys.path change), or raises
Missing with a message that says what is missing and how to make it. The gdb extension finds
the file next to the kernel ELF gdb loaded (path_for_kernel) unless `set knmm-constants PATH`
says otherwise; the tests next to their build folder (path_for_build).

Enumerations are not here: the gdb extension reads them from the kernel's debug information.
"""
import importlib.util
import os
import re
import sys

# Where the generated file lives, relative to the build folder (the one holding kernel.elf).
RELATIVE_PATH = os.path.join("gdb", "knmm_constants.py")
SOURCE = "tools/gdb/constants.c"
LINE = re.compile(r"->KNMM_CONST (\w+) (-?\d+) (-?\d+)")
MASK32 = 0xFFFFFFFF


class Missing(Exception):
    """The constants file, or a constant in it, is not there: the message says which and why."""


def path_for_build(build):
    return os.path.join(build, RELATIVE_PATH)


def path_for_kernel(elf):
    """The constants made with this kernel ELF: BUILD/gdb/knmm_constants.py beside BUILD/kernel.elf."""
    return os.path.join(os.path.dirname(os.path.abspath(elf)), RELATIVE_PATH)


def parse(asm_text):
    """[(name, value)] of the KNMM_CONST lines of the compiler's output, in their order."""
    out = []
    for m in LINE.finditer(asm_text):
        high, low = int(m.group(2)) & MASK32, int(m.group(3)) & MASK32
        out.append((m.group(1), high << 32 | low))
    return out


def generate(asm_path, out_path):
    with open(asm_path) as f:
        values = parse(f.read())
    if not values:
        raise SystemExit(f"{asm_path}: no KNMM_CONST lines (is it the compiler's output of {SOURCE}?)")
    names = [n for n, _ in values]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SystemExit(f"{SOURCE}: listed more than once: {', '.join(twice)}")
    lines = [f"# The kernel's #define constants, generated at build time from {SOURCE} (the",
             "# kernel's headers) by tools/knmm/constants.py. Do not edit: make remakes it.",
             ""]
    lines += [f"{name} = {value if value < 1024 else hex(value)}" for name, value in values]
    lines += ["", "NAMES = ("] + [f"    {n!r}," for n in names] + [")", ""]
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, out_path)


def load(path, need=()):
    """The generated file at `path` as a module; Missing if it is absent, unreadable or lacks
    one of the names in `need`."""
    if not os.path.isfile(path):
        raise Missing(f"{path} is missing (the constants generated from the kernel's headers: "
                      f"`make` makes it from {SOURCE})")
    spec = importlib.util.spec_from_file_location("knmm_constants", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # (a file cut short or edited by hand)
        raise Missing(f"{path} cannot be read ({e}): remake it with `make`") from None
    lacking = [name for name in need if not hasattr(module, name)]
    if lacking:
        raise Missing(f"{path} has no {', '.join(lacking)} (made from an older {SOURCE}? run `make`)")
    return module


def main(argv):
    if len(argv) != 3:
        print("usage: constants.py BUILD/gdb/constants.s BUILD/gdb/knmm_constants.py", file=sys.stderr)
        return 2
    generate(argv[1], argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
