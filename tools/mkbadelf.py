#!/usr/bin/env python3
"""Makes malformed copies of a good ELF64 program, one per way the kernel must refuse one:

    tools/mkbadelf.py GOOD.elf OUTDIR

Each output OUTDIR/bad_<what>.elf differs from GOOD in one defect. The kernel's test
(user.malformed_elf_refused) tries to start each and expects a logged refusal.
"""
import os
import struct
import sys

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
PT_LOAD, PF_X, PF_W = 1, 1, 2


def load(path):
    data = bytearray(open(path, "rb").read())
    eh = list(EHDR.unpack_from(data, 0))
    return data, eh


def phdrs(data, eh):
    phoff, phnum = eh[5], eh[10]
    return [(phoff + i * PHDR.size, list(PHDR.unpack_from(data, phoff + i * PHDR.size))) for i in range(phnum)]


def loads(data, eh):
    """The PT_LOAD headers that load something (empty ones are skipped by the kernel)."""
    return [(off, ph) for off, ph in phdrs(data, eh) if ph[0] == PT_LOAD and ph[6] > 0]


def variants(good):
    data, eh = load(good)
    if len(loads(data, eh)) < 2:
        sys.exit(f"mkbadelf: {good} needs a text and a data segment")

    def copy():
        return bytearray(data)

    out = {}
    d = copy(); d[0:4] = b"\x7fBAD"; out["magic"] = d
    d = copy(); d[4] = 1; out["class"] = d                        # ELFCLASS32
    d = copy(); struct.pack_into("<H", d, 18, 3); out["machine"] = d  # EM_386
    d = copy(); out["truncated"] = d[:40]
    # a PT_LOAD whose file bytes run past the end of the file
    d = copy(); off, ph = loads(d, eh)[0]; ph[1] = ph[1]; ph[2] = len(d) - 16; ph[5] = 4096; ph[6] = max(ph[6], 4096)
    PHDR.pack_into(d, off, *ph); out["offset"] = d
    # the data segment moved on top of the text segment
    d = copy(); (o1, p1), (o2, p2) = loads(d, eh)[0], loads(d, eh)[-1]; p2[3] = p1[3]; p2[4] = p1[4]
    PHDR.pack_into(d, o2, *p2); out["overlap"] = d
    # a segment in the kernel half
    d = copy(); off, ph = loads(d, eh)[-1]; ph[3] = 0xffffffff80400000; ph[4] = ph[3]
    PHDR.pack_into(d, off, *ph); out["kernel"] = d
    # writable and executable text
    d = copy(); off, ph = loads(d, eh)[0]; ph[1] |= PF_W | PF_X
    PHDR.pack_into(d, off, *ph); out["wx"] = d
    # entry point in the data segment
    d = copy(); e = list(eh); e[4] = loads(d, eh)[-1][1][3]; EHDR.pack_into(d, 0, *e); out["entry"] = d
    return out


def main():
    good, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    for name, data in variants(good).items():
        with open(os.path.join(outdir, f"bad_{name}.elf"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
