"""Checks of the core files a boot's dump collector wrote (SPEC §7), for tests/run.py.

The test task `dumpee` logs what its core must show: each region (base, size, resident
pages), each marker string's address, a page that is not resident, and the registers it
set before freezing itself, and the read-only stretch (KnVmProtect) of its "protected"
region. The dumpable task `stack-crash` is frozen by a guard violation whose line names the
address and rip. Each check compares a core file, through readelf and gdb, with those lines.
`freeze-me` is handle_child, whose file name (16 bytes) does not fit in NT_PRPSINFO's
pr_fname: gdb must match its core with the program by build-id. `threads` is test_threads'
thr-frozen, frozen with 3 threads: its core has a thread's notes each.
"""
import os
import re
import struct
import subprocess

from extract_dumps import extract

REGION = re.compile(r"^\s*\d+\| dumpee: region (\S+) at (0x[0-9a-f]+) size (0x[0-9a-f]+) resident (\d+)$", re.M)
MARKER = re.compile(r"^\s*\d+\| dumpee: marker (KNMM-\S+-MARKER) at (0x[0-9a-f]+)$", re.M)
ZERO = re.compile(r"^\s*\d+\| dumpee: zero page at (0x[0-9a-f]+)$", re.M)
REGS = re.compile(r"^\s*\d+\| dumpee: r12=(0x[0-9a-f]+) r13=(0x[0-9a-f]+) r14=(0x[0-9a-f]+) r15=(0x[0-9a-f]+)$", re.M)
READONLY = re.compile(r"^\s*\d+\| dumpee: readonly at (0x[0-9a-f]+) size (0x[0-9a-f]+)$", re.M)
CRASH = re.compile(r"W task stack-crash: guard violation at (0x[0-9a-f]+) rip (0x[0-9a-f]+) \(frozen for a dump\)")
LOAD = re.compile(r"^\s+LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)", re.M)


def run(cmd, timeout=60):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def readelf_checks(core, log_text):
    """(name, ok, detail) for the program headers and notes of dumpee's core."""
    checks = []
    rc, out = run(["readelf", "-lW", "-n", core])
    checks.append(("readelf reads it as a core file", rc == 0 and "CORE (Core file)" in out, out[-400:]))
    checks.append(("notes: NT_PRSTATUS and NT_PRPSINFO", "NT_PRSTATUS" in out and "NT_PRPSINFO" in out, out[-400:]))
    loads = [tuple(int(x, 16) for x in m.groups()) for m in LOAD.finditer(out)]  # offset vaddr paddr filesz memsz
    regions = REGION.findall(log_text)
    checks.append(("dumpee logged its regions", len(regions) >= 7, f"{len(regions)} region lines"))
    for name, base, size, resident in regions:
        base, size, resident = int(base, 16), int(size, 16), int(resident)
        inside = [ld for ld in loads if base <= ld[1] < base + size]
        covered = sum(ld[4] for ld in inside)
        filed = sum(ld[3] for ld in inside)
        checks.append((f"region {name}: PT_LOADs cover it and carry its {resident} resident pages",
                       covered == size and filed == resident * 4096,
                       f"memsz {covered:#x} of {size:#x}, filesz {filed:#x} for {resident} pages"))
    return checks


def gdb_checks(elf, core, log_text):
    """(name, ok, detail) from gdb on dumpee's core: registers, backtrace, markers, a zero page."""
    markers = MARKER.findall(log_text)
    zero = ZERO.search(log_text)
    regs = REGS.search(log_text)
    if not markers or not zero or not regs:
        return [("dumpee logged its markers, a zero page and its registers", False, "lines missing from the log")]
    cmd = ["gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "info registers r12 r13 r14 r15", "-ex", "bt"]
    for _, addr in markers:
        cmd += ["-ex", f"x/s {addr}"]
    cmd += ["-ex", f"x/8xb {zero.group(1)}", elf, core]
    rc, out = run(cmd)
    checks = []
    for reg, want in zip(("r12", "r13", "r14", "r15"), regs.groups()):
        m = re.search(rf"^{reg}\s+(0x[0-9a-f]+)", out, re.M)
        checks.append((f"gdb: {reg} is what the task set", m is not None and int(m.group(1), 16) == int(want, 16),
                       m.group(0) if m else out[-300:]))
    checks.append(("gdb: bt names freeze_here, called from main",
                   re.search(r"#\d+ .*freeze_here", out) is not None and re.search(r"#\d+ .*main", out) is not None,
                   out[-500:]))
    for text, addr in markers:
        checks.append((f"gdb: x/s {addr} prints {text}", f'"{text}"' in out, out[-300:]))
    m = re.search(rf"^{zero.group(1)}.*:((?:\s+0x[0-9a-f]+)+)$", out, re.M)
    checks.append(("gdb: a page that was not resident reads as zeros",
                   m is not None and all(int(b, 16) == 0 for b in m.group(1).split()), out[-300:]))
    return checks


def crash_checks(elf, core, log_text):
    """(name, ok, detail): gdb shows the crashed thread's rip and the faulting address."""
    m = CRASH.search(log_text)
    if not m:
        return [("stack-crash logged its guard violation", False, "no line")]
    addr, rip = (int(x, 16) for x in m.groups())
    rc, out = run(["gdb", "-batch", "-nx", "-ex", "p/x $pc", "-ex", "p/x $_siginfo._sifields._sigfault.si_addr",
                   "-ex", "bt", elf, core])
    values = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    return [("gdb: the crash's rip", len(values) >= 1 and values[0] == rip, out[-400:]),
            ("gdb: the faulting address (siginfo)", len(values) >= 2 and values[1] == addr, out[-400:]),
            ("gdb: the crash is a SIGSEGV", "SIGSEGV" in out, out[-300:])]


# The guard pages of dumpee's regions (user/programs/dumpee.c): (low, high) by region name.
GUARDS = {"guarded": (True, True), "growdown": (True, False)}
LOADF = re.compile(r"^\s+LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)"
                   r"\s+(R?\s?W?\s?E?)\s+0x[0-9a-f]+$", re.M)


def elf_facts(elf):
    """The entry point and the PT_LOADs (vaddr, filesz, memsz, flags) of a program's ELF."""
    rc, out = run(["readelf", "-hlW", elf])
    m = re.search(r"Entry point address:\s+(0x[0-9a-f]+)", out)
    loads = [(int(v, 16), int(fs, 16), int(ms, 16), fl.replace(" ", ""))
             for _, v, fs, ms, fl in LOADF.findall(out)]
    return (int(m.group(1), 16) if m else None), loads


def flag_checks(core, elf, log_text):
    """(name, ok, detail): each PT_LOAD has its run's own protection: guard pages none, the
    program's read-only segments theirs, not their regions' read-write."""
    rc, out = run(["readelf", "-lW", core])
    loads = {int(v, 16): (int(ms, 16), fl.replace(" ", "")) for _, v, _, ms, fl in LOADF.findall(out)}
    checks = []
    for name, base, size, _ in REGION.findall(log_text):
        if name not in GUARDS:
            continue
        base, size = int(base, 16), int(size, 16)
        low, high = GUARDS[name]
        want = ([base] if low else []) + ([base + size - 4096] if high else [])
        got = [loads.get(a) for a in want]
        checks.append((f"readelf: region {name}'s guard pages are PT_LOADs of their own, with no permissions",
                       all(g == (4096, "") for g in got), f"{[hex(a) for a in want]}: {got}"))
        inner = [fl for a, (ms, fl) in loads.items() if base + (4096 if low else 0) <= a < base + size - (4096 if high else 0)]
        checks.append((f"readelf: region {name}'s usable pages are RW", inner and all(fl == "RW" for fl in inner),
                       f"{inner}"))
    m = READONLY.search(log_text)
    if not m:
        checks.append(("dumpee logged its read-only stretch", False, "no line"))
    else:
        ro, size = int(m.group(1), 16), int(m.group(2), 16)
        spans = sorted((a, a + ms, fl) for a, (ms, fl) in loads.items())
        own = [sp for sp in spans if sp[0] == ro]
        straddle = [sp for sp in spans if sp[0] < ro < sp[1] or sp[0] < ro + size < sp[1]]
        around = [sp[2] for sp in spans if sp[1] == ro or sp[0] == ro + size]
        checks.append(("readelf: a read-only stretch (KnVmProtect) of a read-write region is its own PT_LOAD, "
                       "PF_R only", own == [(ro, ro + size, "R")] and not straddle,
                       f"at {ro:#x}: {own}, straddling {straddle}"))
        checks.append(("readelf: ... and the PT_LOADs around it are read-write", around == ["RW", "RW"],
                       f"{around}"))
    _, segs = elf_facts(elf)
    for vaddr, _, memsz, fl in segs:
        if "W" in fl:
            continue
        inside = [f for a, (ms, f) in loads.items() if vaddr <= a < vaddr + memsz]
        checks.append((f"readelf: the program's {fl} segment at {vaddr:#x} is {fl} in the core",
                       inside and all(f == fl for f in inside), f"{inside}"))
    return checks


NT_GNU_BUILD_ID = 3


def elf_header(f, base=0):
    """(e_phoff, e_phentsize, e_phnum) of the ELF64 little-endian image whose ELF header is at
    file offset `base` of f, or None if there is no such header there."""
    f.seek(base)
    eh = f.read(64)
    if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1 or eh[6] != 1:
        return None
    return struct.unpack_from("<Q", eh, 32) + struct.unpack_from("<HH", eh, 54)


def program_headers(f, base=0):
    """(p_type, p_offset, p_vaddr, p_filesz) of each program header of the ELF64 image whose
    ELF header is at file offset `base` of f; nothing if there is no such header there."""
    header = elf_header(f, base)
    if header is None or header[1] != 56:
        return
    phoff, _, phnum = header
    for i in range(phnum):
        f.seek(base + phoff + i * 56)
        ph = f.read(56)
        if len(ph) < 56:
            return
        ptype, _, off, vaddr, _, filesz, _, _ = struct.unpack("<IIQQQQQQ", ph)
        yield ptype, off, vaddr, filesz


def notes(f, base=0):
    """(name, type, descriptor) of each note in the PT_NOTE segments of the image at `base`
    (offsets relative to it, as bfd reads them)."""
    for ptype, off, _, filesz in list(program_headers(f, base)):
        if ptype != 4 or not filesz:
            continue
        f.seek(base + off)
        data, at = f.read(filesz), 0
        while at + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, at)
            desc_at = at + 12 + ((namesz + 3) & ~3)
            yield data[at + 12:at + 12 + namesz].rstrip(b"\0"), ntype, data[desc_at:desc_at + descsz]
            at = desc_at + ((descsz + 3) & ~3)


def notes_build_id(f, base):
    """The GNU build-id of the ELF image whose ELF header is at file offset `base` of f, found
    as bfd finds a core's (_bfd_elf_core_find_build_id): the header, its program headers at
    base + e_phoff, each PT_NOTE's notes at base + p_offset. None if there is none."""
    return next((desc.hex() for name, ntype, desc in notes(f, base)
                 if ntype == NT_GNU_BUILD_ID and name == b"GNU"), None)


def core_build_id(core):
    """The build-id bfd finds in a core: the first PT_LOAD with file bytes that starts with an
    ELF header leading to a build-id note. (vaddr, build-id) or (None, None)."""
    with open(core, "rb") as f:
        for ptype, off, vaddr, filesz in list(program_headers(f)):
            bid = notes_build_id(f, off) if ptype == 1 and filesz >= 64 else None
            if bid:
                return vaddr, bid
    return None, None


def core_fname(core):
    """NT_PRPSINFO's pr_fname (x86-64 elf_prpsinfo: at byte 40 of the note's descriptor)."""
    with open(core, "rb") as f:
        return next((desc[40:56].split(b"\0")[0].decode(errors="replace") for _, ntype, desc in notes(f)
                     if ntype == 3 and len(desc) >= 56), None)


def build_id_checks(build, program, core):
    """(name, ok, detail): a program whose file name does not fit in pr_fname (15 bytes and a
    NUL) is matched with its core by build-id: the core's first segment of the program holds
    its ELF header, whose note is the program's build-id."""
    elf = os.path.join(build, "user", program + ".elf")
    with open(elf, "rb") as f:
        want = notes_build_id(f, 0)
    vaddr, got = core_build_id(core)
    fname = core_fname(core)
    # The control: the same program without its note is matched by name only, and gdb
    # warns (so the no-warning check of load_checks is about the build-id).
    bare_dir = os.path.join(os.path.dirname(core), "no-build-id")
    os.makedirs(bare_dir, exist_ok=True)
    bare = os.path.join(bare_dir, program + ".elf")
    rc, out = run([os.environ.get("OBJCOPY", "objcopy"), "--remove-section", ".note.gnu.build-id", elf, bare])
    if rc == 0:
        rc, out = run(["gdb", "-batch", "-nx", "-iex", f"set sysroot {os.path.join(build, 'knmm-test.iso-root')}",
                       bare, core])
    control = rc == 0 and "core file may not match" in out
    return [(f"{program}.elf has a build-id note", want is not None, f"{want}"),
            (f"control: without its build-id note, gdb says {os.path.basename(core)} may not match {program}.elf",
             control, out[:400]),
            (f"{os.path.basename(core)}: its pr_fname is cut ({program}.elf is {len(program) + 4} bytes)",
             len(program) + 4 >= 16 and fname == (program + ".elf")[:15], f"pr_fname {fname!r}"),
            (f"{os.path.basename(core)}: bfd's rule finds the program's build-id in it (at {vaddr})",
             got is not None and got == want and vaddr == 0x400000, f"core {got} at {vaddr}, program {want}")]


def load_checks(build, program, core):
    """(name, ok, detail) from gdb loading a core with its program's ELF: no warning (not
    even "core file may not match" for a program whose file name is longer than pr_fname),
    one [New LWP] per thread, the program's file mappings (NT_FILE) and its auxv (NT_AUXV).
    The sysroot is the test ISO's root, where the program's file (/boot/PROGRAM.elf) is."""
    elf = os.path.join(build, "user", program + ".elf")
    name = os.path.basename(core)
    sysroot = os.path.join(build, "knmm-test.iso-root")
    rc, out = run(["gdb", "-batch", "-nx", "-iex", f"set sysroot {sysroot}", "-ex", "info proc mappings",
                   "-ex", "info auxv", elf, core])
    _, notes = run(["readelf", "-n", core])
    threads = notes.count("NT_PRSTATUS")
    entry, segs = elf_facts(elf)
    path = f"/boot/{program}.elf"
    maps = {(int(a, 16), int(b, 16)) for a, b in
            re.findall(rf"^\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+{re.escape(path)}$", out, re.M)}
    want = {(v & ~4095, (v + fs + 4095) & ~4095) for v, fs, _, _ in segs if fs}
    m = re.search(r"^9\s+AT_ENTRY\s+.*\s(0x[0-9a-f]+)$", out, re.M)
    phdr = re.search(r"^3\s+AT_PHDR\s+.*\s(0x[0-9a-f]+)$", out, re.M)
    with open(elf, "rb") as f:
        phoff, phentsize, phnum = elf_header(f)
        mapped = [vaddr + phoff - off for ptype, off, vaddr, filesz in list(program_headers(f))
                  if ptype == 1 and off <= phoff and phoff + phentsize * phnum <= off + filesz]
    return [(f"gdb: {name} loads with {program}.elf without a warning", "warning" not in out.lower(), out[:600]),
            (f"gdb: {name}: one [New LWP] per thread ({threads})",
             threads >= 1 and out.count("[New LWP") == threads, out[:300]),
            (f"gdb: {name}: info proc mappings lists {path}'s segments", want and maps == want,
             f"listed {sorted(maps)}, segments {sorted(want)}: {out[-600:]}"),
            (f"gdb: {name}: info auxv has AT_ENTRY, the ELF's entry point",
             m is not None and entry is not None and int(m.group(1), 16) == entry,
             f"entry {entry}: {out[-400:]}"),
            (f"gdb: {name}: info auxv has AT_PHDR, where the PT_LOAD holding the program headers maps them",
             phdr is not None and mapped and int(phdr.group(1), 16) == mapped[0],
             f"mapped at {[hex(a) for a in mapped]}: {out[-400:]}")]


def thread_checks(build, core, want=3):
    """(name, ok, detail): a core of a task frozen with `want` threads has an NT_PRSTATUS
    each, with distinct LWP ids, and gdb lists them all (info threads)."""
    _, notes = run(["readelf", "-n", core])
    elf = os.path.join(build, "user", "test_threads.elf")
    _, out = run(["gdb", "-batch", "-nx", "-ex", "info threads", elf, core])
    lwps = re.findall(r"^\*?\s*\d+\s+LWP (\d+)", out, re.M)
    # The two spinners (pinned on CPUs of their own when there are CPUs enough) were
    # frozen in their ring-3 loop: each thread's own r12 and rip are in the core.
    cmds = []
    for n in range(1, want + 1):
        cmds += ["-ex", f"thread {n}", "-ex", "printf \"regs %#lx %#lx\\n\", $r12, $pc",
                 "-ex", "info symbol $pc"]
    _, regs = run(["gdb", "-batch", "-nx"] + cmds + [elf, core])
    r12 = sorted(int(v, 16) for v, _ in re.findall(r"^regs (0x[0-9a-f]+) (0x[0-9a-f]+)$", regs, re.M))
    spinning = len(re.findall(r"^pinned_spinner \+ \d+ in section \.text", regs, re.M))
    mark = 0x5350494E00
    return [(f"threads.core: an NT_PRSTATUS per thread ({want})", notes.count("NT_PRSTATUS") == want,
             f"{notes.count('NT_PRSTATUS')} notes"),
            (f"gdb: threads.core: info threads lists {want} distinct LWPs", len(set(lwps)) == want,
             f"{lwps}: {out[-400:]}"),
            ("gdb: threads.core: each spinner's own r12 (the mark + its number)",
             mark in r12 and mark + 1 in r12, f"r12 values {[hex(v) for v in r12]}: {regs[-600:]}"),
            ("gdb: threads.core: both spinners stopped in their ring-3 loop (in pinned_spinner)",
             spinning == 2, regs[-600:])]


def sparse_checks(core):
    """actor's sparse:1024:16 (user/programs/actor.c) commits 16 pages of a 1 GiB region at
    64 GiB and writes i into the first byte of page i: the core must hold exactly those
    pages, with those bytes (not zeros), and cover the whole region."""
    base, pages, n = 0x1000000000, 1024 << 8, 16
    rc, out = run(["readelf", "-lW", core])
    loads = [tuple(int(x, 16) for x in m.groups()) for m in LOAD.finditer(out)]
    inside = [ld for ld in loads if base <= ld[1] < base + (pages << 12)]
    covered = sum(ld[4] for ld in inside)
    want = {base + ((i * (pages // n) + 1) % pages) * 4096: i for i in range(n)}
    got, wrong = {}, []
    with open(core, "rb") as f:
        for off, vaddr, _, filesz, _ in inside:
            for p in range(0, filesz, 4096):
                f.seek(off + p)
                got[vaddr + p] = f.read(1)[0]
    if set(got) != set(want):
        wrong.append(f"resident pages {sorted(hex(a) for a in got)[:4]}..., expected {len(want)}")
    wrong += [f"{a:#x} holds {got[a]}, not {v}" for a, v in want.items() if a in got and got[a] != v]
    return [("sparse: PT_LOADs cover the 1 GiB region", rc == 0 and covered == pages << 12, f"memsz {covered:#x}"),
            ("sparse: its 16 resident pages, with their bytes", not wrong, "; ".join(wrong[:4]))]


def check(build, config, log_text, com2):
    """All the checks for one boot: [(name, ok, detail)]."""
    outdir = os.path.join(build, "dumps", config)
    if not os.path.exists(com2):
        return [("dump sink captured", False, f"{com2} missing")]
    done, problems = extract(com2, outdir)
    names = {name for name, _, _ in done}
    checks = [("the dump sink's frames are whole and their checksums right", not problems, "; ".join(problems)),
              ("core files for dumpee, stack-crash, sparse, freeze-me and threads",
               {"dumpee", "stack-crash", "sparse", "freeze-me", "threads"} <= names, f"found {sorted(names)}")]
    dumpee = os.path.join(outdir, "dumpee.core")
    if os.path.exists(dumpee):
        checks += readelf_checks(dumpee, log_text)
        checks += flag_checks(dumpee, os.path.join(build, "user", "dumpee.elf"), log_text)
        checks += load_checks(build, "dumpee", dumpee)
        checks += gdb_checks(os.path.join(build, "user", "dumpee.elf"), dumpee, log_text)
    sparse = os.path.join(outdir, "sparse.core")
    if os.path.exists(sparse):
        checks += sparse_checks(sparse)
    crash = os.path.join(outdir, "stack-crash.core")
    if os.path.exists(crash):
        checks += crash_checks(os.path.join(build, "user", "vmchild.elf"), crash, log_text)
        checks += load_checks(build, "vmchild", crash)
    longname = os.path.join(outdir, "freeze-me.core")
    if os.path.exists(longname):
        checks += build_id_checks(build, "handle_child", longname)
        checks += load_checks(build, "handle_child", longname)
    threads = os.path.join(outdir, "threads.core")
    if os.path.exists(threads):
        checks += thread_checks(build, threads)
        checks += load_checks(build, "test_threads", threads)
    return checks
