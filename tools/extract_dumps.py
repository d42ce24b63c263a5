#!/usr/bin/env python3
"""Extracts the core files the dump collector wrote to the dump sink (COM2):

    tools/extract_dumps.py CAPTURE OUTDIR

CAPTURE is the raw COM2 output of a boot. Each dump in it is framed as
    b"KNCORE1\\n", name (32 bytes, NUL-padded), length (8 bytes, little-endian),
    the ELF core file, its FNV-1a 64 checksum (8 bytes, little-endian)
and becomes a file of its own in OUTDIR, numbered in the order the good frames of that name
come in the capture: the first NAME.core, the next NAME.1.core, then NAME.2.core, ... (as
cp --backup=numbered would not: the first keeps the plain name, so build/dumps/NAME.core is
always the first dump of NAME of that boot; numbered files of NAME left by an earlier capture
past this one's last are removed; a name with no good frame in this capture keeps its files).
Prints one line per dump, with its file; exits non-zero if a frame is cut short or its
checksum is wrong.
"""
import os
import struct
import sys

MAGIC = b"KNCORE1\n"


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def frames(capture):
    """Yields (name, core bytes or None, problem) for each frame in the capture. After a
    bad frame the search goes on from just past its magic, not from its claimed end, so a
    corrupt length cannot swallow the good frames behind it."""
    at = capture.find(MAGIC)
    while at >= 0:
        head = at + len(MAGIC)
        if head + 40 > len(capture):
            yield None, None, f"frame at {at}: cut short in its header"
            return
        name = capture[head:head + 32].split(b"\0", 1)[0].decode("ascii", "replace")
        (length,) = struct.unpack_from("<Q", capture, head + 32)
        body = head + 40
        if body + length + 8 > len(capture):
            yield name, None, f"{name}: cut short ({len(capture) - body} of {length + 8} bytes)"
            at = capture.find(MAGIC, at + 1)
            continue
        core = capture[body:body + length]
        (want,) = struct.unpack_from("<Q", capture, body + length)
        if fnv1a64(core) != want:
            # A frame whose writer stopped (a collector terminated, or one that could not read
            # memory and left its checksum out) is followed by the next frame: its claimed
            # bytes run into that frame's magic. (A whole frame may hold the magic in its
            # memory too: only a bad checksum makes it a cut.)
            inner = capture.find(MAGIC, body, body + length + 8)
            if inner >= 0:
                yield name, None, f"{name}: cut short ({inner - body} of {length + 8} bytes before the next frame)"
            else:
                yield name, None, f"{name}: checksum mismatch"
            at = capture.find(MAGIC, at + 1)
            continue
        yield name, core, None
        at = capture.find(MAGIC, body + length + 8)


def core_file_name(safe, nth):
    """The file of the nth (0, 1, ...) good frame named `safe`: NAME.core, NAME.1.core, ..."""
    return f"{safe}.core" if nth == 0 else f"{safe}.{nth}.core"


def extract(capture_path, outdir):
    """Writes a file for each good frame (core_file_name: NAME.core, NAME.1.core, ... in the
    capture's order); returns ([(name, path, size)], [problems])."""
    with open(capture_path, "rb") as f:
        capture = f.read()
    os.makedirs(outdir, exist_ok=True)
    done, problems, seen = [], [], {}
    for name, core, problem in frames(capture):
        if problem:
            problems.append(problem)
            continue
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "core"
        path = os.path.join(outdir, core_file_name(safe, seen.get(safe, 0)))
        seen[safe] = seen.get(safe, 0) + 1
        with open(path, "wb") as f:
            f.write(core)
        done.append((name, path, len(core)))
    for safe, n in seen.items():  # numbered files of an earlier capture past this one's are stale
        while os.path.exists(os.path.join(outdir, core_file_name(safe, n))):
            os.remove(os.path.join(outdir, core_file_name(safe, n)))
            n += 1
    return done, problems


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    done, problems = extract(argv[1], argv[2])
    for name, path, size in done:
        print(f"{path}: {size} bytes")
    for problem in problems:
        print(f"extract_dumps: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
