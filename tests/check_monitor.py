"""Drives the monitor over the serial line (SPEC §8), for tests/run.py.

Boots build/knmm-monitor.iso (make run's set-up, `aslr=on` included: the demo leaves a
frozen `stack-crash` and two tasks sharing an MDL), sends every command, bad ones included,
and checks each answer against facts known without the monitor: what the boot log says
(usable pages, commit limit, reserved frames), what `sharer-a` logged creating (each
region's kind, base and size; its code and stack addresses), what it is known to have done
to each region (held here, in EXPECTED), the program headers of build/user/sharer.elf; and
the answers against each other (`vm` totals, `tasks`, `regions`, `mdl`, `pte`).

The region helpers are shared with tests/check_gdb_ext.py (kn-regions prints the same); the
table charge and the private commit come from tools/knmm/charge.py, with the constants
generated from the kernel's headers (BUILD/gdb/knmm_constants.py), as the gdb extension's.
"""
import os
import re
import struct
import time

import qemu
from extract_dumps import extract, fnv1a64, frames as sink_frames
from knmm import charge, constants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROMPT = "knmm> "
PAGE = 0x1000

# What sharer-a (user/programs/sharer.c) does to each region it logs: guard pages below and
# above the usable range it logs, resident pages, the most protection allowed, cache mode,
# flags and runs, as `regions` must show them.
EXPECTED = {
    "mdl": (0, 0, 2, "rw-", "WB", ["mdl"], ["C:2/rw-"]),
    "lazy": (0, 0, 3, "rwx", "WB", [], ["C:8/rw-"]),
    "guarded": (1, 1, 2, "rwx", "WB", ["lg", "hg"], ["G:1", "R:4/rw-", "C:2/rw-", "C:2/r--", "R:8/rw-", "G:1"]),
    "locked": (0, 0, 3, "rwx", "WB", [], ["C:3/rw-L"]),
    "wc": (0, 0, 1, "rwx", "WC", [], ["C:2/rw-"]),
    "uc": (0, 0, 1, "rwx", "UC", [], ["C:2/r--"]),
    "rx": (0, 0, 1, "rwx", "WB", [], ["C:1/r-x"]),
    "grow": (1, 0, 1, "rwx", "WB", ["lg", "gd"], ["G:1", "R:7/rw-", "C:1/rw-"]),
}
GONE = ("freed",)  # made and unmapped again: no region may be left there

SHARER_A = re.compile(r"sharer-a: MDL mapped at (0x[0-9a-f]+) \(2 pages, read-write\); code at (0x[0-9a-f]+), "
                      r"stack near (0x[0-9a-f]+)")
REGION_LOGGED = re.compile(r"^\s*\d+\| sharer-a: region (\w+) at (0x[0-9a-f]+) size (0x[0-9a-f]+)$", re.M)
REGION_LINE = re.compile(r"^  (0x[0-9a-f]{16}) (0x[0-9a-f]+) \((\d+[KMG])\)\s+(\d+)\s+([r-][w-][x-])\s+(WB|WT|WC|UC)\s*(.*)$",
                         re.M)
RUN = re.compile(r"^([RCG]):(\d+)(?:/([r-][w-][x-]))?(L?)$")
VM_LINE = re.compile(r"vm:   ([A-Za-z -]+):\s+(\d+)")
VM_TASK = re.compile(r"vm:   Task (\d+)\s+(\S+)\s+(\d+) regions, private commit (\d+) pages, (\d+) resident, "
                     r"(\d+) locked")
VM_KERNEL = re.compile(r"vm:   Space 'kernel': (\d+) regions, (\d+) committed, (\d+) resident, (\d+) locked pages")
TASK_LINE = re.compile(r"^\s+(\d+)  (\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)  (\S+)$", re.M)
LEAF = re.compile(r"^\s+PT\s*\[\s*\d+\] 0x[0-9a-f]+\s+page .*$", re.M)


# ---------------------------------------------------------------- facts and parsers

def sharer_facts(log):
    """What sharer-a logged: {"mdl_va", "code_va", "stack_va", "regions": {kind: (base, size)}}, or None."""
    m = SHARER_A.search(log)
    if not m:
        return None
    regions = {kind: (int(base, 16), int(size, 16)) for kind, base, size in REGION_LOGGED.findall(log)}
    return {"mdl_va": int(m.group(1), 16), "code_va": int(m.group(2), 16), "stack_va": int(m.group(3), 16),
            "regions": regions}


def elf_segments(path):
    """[(base, size, prot)] of the PT_LOAD segments of an ELF64 file, page-rounded: the regions
    the loader must make."""
    with open(path, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = []
    for i in range(phnum):
        p_type, p_flags, _, vaddr, _, _, memsz, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type != 1 or memsz == 0:
            continue
        base = vaddr & ~(PAGE - 1)
        end = (vaddr + memsz + PAGE - 1) & ~(PAGE - 1)
        prot = ("r" if p_flags & 4 else "-") + ("w" if p_flags & 2 else "-") + ("x" if p_flags & 1 else "-")
        out.append((base, end - base, prot))
    return out


def human_size(nbytes):
    """bytes as `regions` and `maps` show them in K/M/G: the largest unit that divides them."""
    for shift, unit in ((30, "G"), (20, "M")):
        if nbytes and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return f"{nbytes >> 10}K"


def parse_regions(text):
    """The lines of a `regions` / kn-regions listing: [dict(base, size, resident, max, cache,
    flags, runs)], and the count its header gives (None if none). A line whose size in K/M/G
    is not its hexadecimal size is not taken (so the region is missing from the listing)."""
    out = []
    for m in REGION_LINE.finditer(text):
        if human_size(int(m.group(2), 16)) != m.group(3):
            continue
        words = m.group(7).split()
        i = len(words)
        while i > 0 and RUN.match(words[i - 1]):
            i -= 1
        out.append({"base": int(m.group(1), 16), "size": int(m.group(2), 16), "resident": int(m.group(4)),
                    "max": m.group(5), "cache": m.group(6), "flags": words[:i], "runs": words[i:]})
    head = re.search(r"^regions of task \d+ '[^']*' \((\d+)\):", text, re.M)
    return out, int(head.group(1)) if head else None


def run_pages(runs):
    return [(RUN.match(r).group(1), int(RUN.match(r).group(2))) for r in runs if RUN.match(r)]


def load_constants(build):
    """The kernel's constants generated at build time (tools/knmm/constants.py), with what the
    charge arithmetic needs; constants.Missing says what is missing."""
    return constants.load(constants.path_for_build(build), need=charge.NEEDS)


def region_totals(regions, k):
    """(resident, committed pages, private commit) a listing adds up to: committed pages are
    the C runs; private commit (tools/knmm/charge.py) adds the table charge of each 2 MiB
    window they touch, and a page for each committed page that is not write-back (a
    direct-map table it may need). `k`: load_constants()."""
    resident = committed = extra = 0
    windows = set()
    for r in regions:
        resident += r["resident"]
        at = 0
        for state, n in run_pages(r["runs"]):
            if state == "C":
                committed += n
                extra += n if r["cache"] != "WB" else 0
                windows.update(charge.windows(k, r["base"] + at * PAGE, r["base"] + (at + n) * PAGE - 1))
            at += n
    return resident, committed, charge.private_commit(k, committed, extra, len(windows))


def show(r):
    return (f"{r['base']:#x} {r['size']:#x} resident {r['resident']} max {r['max']} {r['cache']} "
            f"flags {' '.join(r['flags']) or '-'} runs {' '.join(r['runs'])}")


def check_sharer_regions(text, facts, segments, where):
    """Checks a listing of sharer-a's regions against what it logged, EXPECTED and its ELF
    segments: [(name, ok, detail)]."""
    regions, count = parse_regions(text)
    results = []

    def expect(name, ok, detail=""):
        results.append((f"{where}: {name}", bool(ok), detail))

    def at(base):
        return [r for r in regions if r["base"] == base]

    expect("header count equals the regions listed", count is not None and count == len(regions),
           f"header {count}, {len(regions)} listed\n{text}")
    accounted = set()
    for kind, (below, above, resident, maxp, cache, flags, runs) in EXPECTED.items():
        logged = facts["regions"].get(kind)
        if not logged:
            expect(f"sharer-a logged its '{kind}' region", False, "no such line in the log")
            continue
        base, size = logged[0] - below * PAGE, logged[1] + (below + above) * PAGE
        want = {"base": base, "size": size, "resident": resident, "max": maxp, "cache": cache, "flags": flags,
                "runs": runs}
        got = at(base)
        accounted.update(id(r) for r in got)
        ok = len(got) == 1 and got[0] == want and sum(n for _, n in run_pages(runs)) * PAGE == size
        expect(f"'{kind}' region: size, runs, protection, cache, flags and resident pages as made",
               ok, f"want {show(want)}; got {[show(r) for r in got] or 'nothing at that base'}")
    for kind in GONE:
        logged = facts["regions"].get(kind)
        overlap = [r for r in regions if logged and r["base"] < logged[0] + logged[1] and logged[0] < r["base"] + r["size"]]
        expect(f"'{kind}' region (unmapped) is not listed", logged and not overlap,
               f"logged {logged}; overlapping {[show(r) for r in overlap]}")
    for base, size, prot in segments:
        got = at(base)
        accounted.update(id(r) for r in got)
        pages = size // PAGE
        ok = (len(got) == 1 and got[0]["size"] == size and got[0]["max"] == prot and got[0]["cache"] == "WB"
              and got[0]["flags"] == ["elf"] and got[0]["runs"] == [f"C:{pages}/{prot}"]
              and got[0]["resident"] <= pages)
        if ok and "x" in prot:
            ok = got[0]["base"] <= facts["code_va"] < got[0]["base"] + size and got[0]["resident"] >= 1
        expect(f"program segment {base:#x}+{size:#x} {prot}: elf, committed, no more than the file says",
               ok, f"got {[show(r) for r in got] or 'nothing'}")
    stack = [r for r in regions if r["base"] <= facts["stack_va"] < r["base"] + r["size"]]
    runs = run_pages(stack[0]["runs"]) if len(stack) == 1 else []
    accounted.update(id(r) for r in stack)
    expect("the stack (holding the address logged): low guard, grow-down, reserved then committed pages",
           len(stack) == 1 and stack[0]["flags"] == ["lg", "gd"] and stack[0]["max"] == "rwx"
           and [s for s, _ in runs] in (["G", "R", "C"], ["G", "C"]) and runs[0][1] == 1
           and stack[0]["runs"][-1].endswith("/rw-") and 1 <= stack[0]["resident"] <= runs[-1][1],
           f"{[show(r) for r in stack]}")
    extra = [show(r) for r in regions if id(r) not in accounted]
    expect("no region that sharer-a, its loader or its stack did not make", not extra, f"{extra}")
    return results


# ---------------------------------------------------------------- the session

# A prompt that output cut off and the console could not erase (a prompt and line of 80
# columns or more: it ends its line instead, and draws it again below, with what was typed;
# a shorter one is erased, and the boot's text() no longer has it): its line, followed by the
# task and log lines that interrupted it, up to the prompt drawn again.
CUT_PROMPT = re.compile(r"knmm> [^\n]*\n((?:(?:\s*\d+\| |\[\s*\d+\.\d+\] [EWID] )[^\n]*\n)+)(?=knmm> )")


def uncut(text):
    """The console text with each prompt that output interrupted taken out (the lines that
    interrupted it stay, before the prompt drawn again): one prompt per line typed."""
    return CUT_PROMPT.sub(lambda m: m.group(1), text)


class Session:
    def __init__(self, boot):
        self.boot = boot
        self.asked = 0

    def prompts(self):
        return uncut(self.boot.text()).count(PROMPT)

    def wait_prompts(self, n, timeout):
        end = time.monotonic() + timeout
        while self.prompts() < n and time.monotonic() < end and self.boot.proc.poll() is None:
            time.sleep(0.05)
        return self.prompts() >= n

    def ask(self, line, timeout=60):
        """Sends a line; returns what the monitor printed before its next prompt ('' on timeout)."""
        self.asked += 1
        self.boot.send(line + "\r")
        if not self.wait_prompts(self.asked + 1, timeout):
            return ""
        parts = uncut(self.boot.text()).split(PROMPT)
        return parts[self.asked]


def vm_totals(text):
    return {label.strip(): int(n) for label, n in VM_LINE.findall(text)}


def check(build, accel, logdir):
    """[(name, ok, detail)]"""
    try:
        k = load_constants(build)
    except constants.Missing as e:
        return [("monitor: the constants generated from the kernel's headers", False, str(e))]
    iso = os.path.join(build, "knmm-monitor.iso")
    log = os.path.join(logdir, "monitor.log")
    com2 = os.path.join(logdir, "monitor.com2")
    if os.path.exists(com2):
        os.remove(com2)
    boot = qemu.Boot(qemu.qemu_args(iso, "1G", "max", accel, com2=com2), 300, log).start()
    results = []

    def expect(name, ok, detail=""):
        results.append((f"monitor: {name}", bool(ok), detail))

    s = Session(boot)
    # The prompt comes at once, init (the demo) runs meanwhile: what the test needs of it is
    # waited for in the log, its end included (so that the tasks stay as they are).
    if (not s.wait_prompts(1, 180) or not boot.wait_for(r"sharer-b: MDL mapped at", 60)
            or not boot.wait_for(r"I init: demo exited with \d+", 30)):
        boot.kill()
        return [("monitor: boots to the prompt, sharer-a and sharer-b set up, the demo ends", False,
                 boot.text()[-1500:])]
    start = boot.text()
    expect("boots with make run's command line (aslr=on) to the prompt, the boot's vm report in the log",
           re.search(r'command line "aslr=on init=demo monitor"', start)
           and re.search(r"^\[\s*\d+\.\d+\] I vm: \*\*\* Virtual Memory Usage \*\*\*$", start, re.M), start[:1500])
    exited = re.search(r"I init: demo exited with (\d+)", start)
    expect("the prompt comes up while init runs (before the demo has ended), and init's exit is logged when it "
           "comes, with its code (0)", 0 <= boot.raw().find(PROMPT) < boot.raw().find("sharer-a: MDL mapped at")
           and exited.group(1) == "0", start[-1500:])
    facts = sharer_facts(start)
    usable = re.search(r"memory: usable \d+ bytes \(\d+ MiB, (\d+) pages\)", start)
    frames = re.search(r"pmm: (\d+) frames \(.*?, (\d+) reserved;", start)
    limit = re.search(r"vm: commit limit (\d+) pages", start)
    expect("sharer-a logged its MDL mapping, code and stack addresses; the boot log its memory totals",
           facts and usable and frames and limit, start[-1500:])
    if not facts or not usable or not frames or not limit:
        boot.kill()
        return results
    segments = elf_segments(os.path.join(build, "user", "sharer.elf"))
    code_va, mdl_va = facts["code_va"], facts["mdl_va"]
    made = facts["regions"]

    out = s.ask("help")
    expect("help lists every command", all(c in out for c in ("vm", "tasks", "regions TASK", "pte TASK VA", "pool", "mdl",
                                                               "run [-n NAME] [PROGRAM [ARGS...]]", "resume TASK",
                                                               "kill TASK", "usage TASK VA", "maps TASK",
                                                               "buddy", "pfn PA", "dump TASK", "halt")), out)
    out = s.ask("help run")
    expect("help run: its long usage on a line of its own, the help indented below it, no line past 100 columns",
           re.search(r"^  run \[-n NAME\] \[PROGRAM \[ARGS\.\.\.\]\]\n {20}start a program", out, re.M)
           and all(len(line) <= 100 for line in out.splitlines()[1:]), out)
    out = s.ask("help pte")
    expect("help CMD: that command's line alone", "pte TASK VA" in out and "regions" not in out, out)
    out = s.ask("\x1b[A")
    expect("line editing: the up arrow brings the last line back (help pte again), no escape echoed",
           "pte TASK VA" in out and "[A" not in out and "unknown command" not in out, out)
    out = s.ask("\x1b[D\x1b[C\x1bOPtasks")
    expect("line editing: other keys' escape sequences are swallowed", "STATE" in out and "unknown command" not in out,
           out)
    out = s.ask("x" * 200)
    expect("a line longer than the monitor takes is refused whole, with one line saying so",
           "line too long (at most 119 characters)" in out and "unknown command" not in out, out)
    tasks_out = s.ask("tasks")
    tasks = {name: dict(id=int(i), state=st, threads=int(th), regions=int(rg), committed=int(c), resident=int(r))
             for i, st, th, rg, c, r, name in TASK_LINE.findall(tasks_out)}
    expect("tasks: sharer-a and sharer-b running, stack-crash frozen",
           tasks.get("sharer-a", {}).get("state") == "running" and tasks.get("sharer-b", {}).get("state") == "running"
           and tasks.get("stack-crash", {}).get("state") == "frozen", tasks_out)

    listings = {}
    for name in tasks:
        listings[name] = s.ask(f"regions {name}")
    for where, ok, detail in check_sharer_regions(listings.get("sharer-a", ""), facts, segments, "regions sharer-a"):
        results.append((f"monitor: {where}", ok, detail))

    # pte: the pages sharer-a made, each as it must be mapped
    tables = set()

    def pte(va):
        out = s.ask(f"pte sharer-a {va:x}")
        tables.update(re.findall(r"(?:root |table )(0x[0-9a-f]+)", out))
        leaf = LEAF.search(out)
        return out, leaf.group(0) if leaf else ""

    out = s.ask("maps sharer-a")
    maps = [(int(a, 16), int(b, 16), lab) for a, b, lab in
            re.findall(r"^\s+(0x[0-9a-f]+)-(0x[0-9a-f]+)\s+\d+[KMG]\s+\d+[KMG]\s+\S+\s+(\[\w+\])$", out, re.M)]

    def label_at(va):
        return next((lab for a, b, lab in maps if a <= va < b), None)

    expect("maps: sharer-a's regions with end addresses and labels: its stack [stack], code [elf], MDL mapping [mdl]",
           maps and label_at(facts["stack_va"]) == "[stack]" and label_at(code_va) == "[elf]"
           and label_at(mdl_va) == "[mdl]" and all(a < b for a, b, _ in maps), out)
    out, leaf = pte(code_va)
    expect("pte: the code page is present, user, read-only and executable (no NX)",
           leaf and " US" in leaf and " RO" in leaf and " NX" not in leaf, out)
    expect("pte: the VM's view of the code page: committed, resident, r-x, write-back",
           "vm: committed, resident, r-x WB" in out, out)
    out, leaf = pte(mdl_va)
    expect("pte: the MDL page is present, user, writable and NX, write-back",
           leaf and " RW" in leaf and " NX" in leaf and "PAT=0 (WB)" in leaf, out)
    frame = re.search(r"page\s+(0x[0-9a-f]+)", leaf or "")
    out = s.ask(f"pfn {frame.group(1)[2:] if frame else '0'}")
    pfn = re.search(r"pfn 0x[0-9a-f]+ \(pa (0x[0-9a-f]+)\): (\S+), refs (\d+), pins (\d+)", out)
    expect("pfn: the MDL page's frame is an MDL frame, pinned, mapped (refs >= 2: the MDL and the mapping)",
           frame and pfn and int(pfn.group(1), 16) == int(frame.group(1), 16) and pfn.group(2) == "mdl"
           and int(pfn.group(3)) >= 2 and int(pfn.group(4)) >= 1, out)
    for kind, offset, want, absent, what in (
            ("wc", 0, (" RW", " NX", "(WC)"), (), "the touched write-combining page: writable, NX, a WC PAT index"),
            ("uc", PAGE, (" RO", " NX", "(UC)"), (), "the read uncached page: read-only, NX, a UC PAT index"),
            ("rx", 0, (" RO", "(WB)"), (" NX",), "the page made read-execute: read-only, executable"),
            ("lazy", 5 * PAGE, (" RW", " NX", " D", "(WB)"), (), "a written lazy page: writable, NX, dirty")):
        if kind not in made:
            expect(f"pte: {what}", False, f"sharer-a did not log its '{kind}' region")
            continue
        out, leaf = pte(made[kind][0] + offset)
        expect(f"pte: {what}", leaf and all(w in leaf for w in want) and not any(a in leaf for a in absent), out)
    for kind, offset, what, view in (("lazy", PAGE, "a committed page never touched", "vm: committed, not resident: "
                                      "demand-zero"),
                                     ("guarded", 0, "a reserved page", "vm: reserved"),
                                     ("guarded", -PAGE, "the low guard page", "vm: guard page"),
                                     ("freed", 0, "a page unmapped again", "vm: free (no region)")):
        if kind not in made:
            expect(f"pte: {what} is not present", False, f"sharer-a did not log its '{kind}' region")
            continue
        out, _ = pte(made[kind][0] + offset)
        expect(f"pte: {what} is not present, and the VM says what it is ('{view}')",
               "not present" in out and not LEAF.search(out) and view in out, out)

    # usage: the map of a region, a character a page, against what sharer-a did to it
    for kind, at, want, what in (
            ("lazy", 0, "#-#--#--", "8 committed pages, 0, 2 and 5 touched"),
            ("lazy", 6 * PAGE + 0x123, "#-#--#--", "the same region from an address inside it"),
            ("guarded", -PAGE, "G....#-#-........G",
             "guard, 4 reserved, 4 committed (4 written, 6 read), 8 reserved, guard"),
            ("locked", 0, "LLL", "3 pages resident and locked"),
            ("uc", 0, "-#", "2 uncached pages, the second read")):
        if kind not in made:
            expect(f"usage {kind}: {what}", False, f"sharer-a did not log its '{kind}' region")
            continue
        va = made[kind][0] + at
        out = s.ask(f"usage sharer-a {va:x}")
        lines = re.findall(r"^  (0x[0-9a-f]{16}) ([#L.G-]+)$", out, re.M)
        base = made[kind][0] - (PAGE if kind == "guarded" else 0)
        resident = want.count("#") + want.count("L")
        expect(f"usage {kind}: {what}: '{want}', with its legend and counts",
               lines == [(f"{base:#018x}", want)] and "# resident" in out and "G guard" in out
               and re.search(rf"^usage map of the region at {base:#x}-{base + len(want) * PAGE:#x} .*"
                             rf"{len(want)} pages, {resident} resident\)", out, re.M)
               and re.search(rf"^  {resident} resident \({want.count('L')} of them locked\), {want.count('-')} "
                             rf"committed not resident, {want.count('.')} reserved, {want.count('G')} guard$", out, re.M),
               out)
    if "freed" in made:
        out = s.ask(f"usage sharer-a {made['freed'][0]:x}")
        expect("usage of an address no region holds (the unmapped one): one line",
               "no region of task" in out and "usage map" not in out and out.count("\n") <= 2, out)

    # vm: totals against the boot log, against each other, and against tasks/regions/mdl
    mdl_out = s.ask("mdl")
    vm_out = s.ask("vm")
    vm = vm_totals(vm_out)
    vm_tasks = {name: dict(id=int(i), regions=int(rg), private=int(pc), resident=int(r), locked=int(lk))
                for i, name, rg, pc, r, lk in VM_TASK.findall(vm_out)}
    kernel = VM_KERNEL.search(vm_out)
    names = ("Physical memory", "Available pages", "Committed pages", "Commit limit", "Commit peak", "Locked pages",
             "Pinned pages", "Page-table pages", "Kernel pages", "Pool pages", "Pool tables", "Page-table roots",
             "Anonymous pages", "MDL pages", "MDLs")
    expect("vm: every total, the kernel's space and a line per task",
           all(n in vm for n in names) and kernel and set(vm_tasks) == set(tasks), vm_out[-1500:])
    expect("vm: printed plain, as the other commands (no log line's time stamp and level)",
           vm_out.count("\nvm:   ") >= len(names) and not re.search(r"^\[\s*\d+\.\d+\] ", vm_out, re.M), vm_out[:900])
    if all(n in vm for n in names) and kernel:
        boot_vm = vm_totals(start)
        expect("vm: physical memory is the boot log's usable pages (and the frames the pmm counted)",
               vm["Physical memory"] == int(usable.group(1)) == int(frames.group(1))
               and boot_vm.get("Physical memory") == vm["Physical memory"],
               f"vm {vm['Physical memory']}, log {usable.group(1)} / {frames.group(1)}")
        expect("vm: the commit limit is the one the boot log set", vm["Commit limit"] == int(limit.group(1)),
               f"vm {vm['Commit limit']}, log {limit.group(1)}")
        used = sum(vm[n] for n in ("Kernel pages", "Page-table pages", "Pool pages", "Anonymous pages", "MDL pages"))
        expect("vm: available + kernel + page-table + pool + anonymous + MDL + reserved (boot log) = physical",
               vm["Available pages"] + used + int(frames.group(2)) == vm["Physical memory"],
               f"{vm['Available pages']} + {used} + {frames.group(2)} != {vm['Physical memory']}")
        expect("vm: committed <= peak <= limit, and the commit still grantable is backed by available pages",
               vm["Committed pages"] <= vm["Commit peak"] <= vm["Commit limit"]
               and vm["Available pages"] >= vm["Commit limit"] - vm["Committed pages"], vm_out[:900])
        mdl_frames = sum(int(n) for n in re.findall(r"\((\d+) frames\)", mdl_out))
        charged = (sum(t["private"] for t in vm_tasks.values()) + int(kernel.group(2)) + vm["Pool pages"]
                   + vm["Pool tables"] + vm["Page-table roots"] + mdl_frames)
        gap = vm["Committed pages"] - charged
        expect("vm: committed = tasks' private commit + kernel committed + pool pages and tables + task roots + "
               f"MDL frames + kernel page-table charge (a multiple of {charge.table_charge(k, 1)})",
               gap >= 0 and gap % charge.table_charge(k, 1) == 0 and vm["Page-table roots"] == len(vm_tasks),
               f"committed {vm['Committed pages']}, accounted {charged} (gap {gap})")
        expect("vm: locked = the kernel's locked pages + the tasks'; sharer-a's = its 'locked' region, others none",
               vm["Locked pages"] == int(kernel.group(4)) + sum(t["locked"] for t in vm_tasks.values())
               and "locked" in made and vm_tasks.get("sharer-a", {}).get("locked") == made["locked"][1] // PAGE
               and all(t["locked"] == 0 for n, t in vm_tasks.items() if n != "sharer-a"),
               f"{vm['Locked pages']} {kernel.group(0)} {vm_tasks}")
        mdl_head = re.search(r"^(\d+) MDLs, (\d+) pinned pages", mdl_out, re.M)
        expect("vm and mdl: one MDL (sharer-a's), its 2 pages pinned",
               mdl_head and vm["MDLs"] == int(mdl_head.group(1)) == 1
               and vm["Pinned pages"] == int(mdl_head.group(2)) == made.get("mdl", (0, 0))[1] // PAGE
               and re.search(r"ram\s+8192 bytes\s+2 pages \(2 frames\)", mdl_out), mdl_out + vm_out[:900])
        expect("mdl: the cache mode by name, as regions shows it", "cache WB:" in mdl_out and "cache 0x" not in mdl_out,
               mdl_out)
        expect("vm: page-table pages at least the distinct tables the pte walks went through",
               vm["Page-table pages"] >= len(tables) >= 4, f"{vm['Page-table pages']} < {len(tables)}")
    for name, t in tasks.items():
        regions, count = parse_regions(listings[name])
        resident, committed, private = region_totals(regions, k)
        v = vm_tasks.get(name, {})
        expect(f"{name}: tasks, vm and its regions agree (regions, resident, committed, private commit with "
               f"its page-table windows)",
               count == len(regions) == t["regions"] == v.get("regions") and resident == t["resident"] == v.get("resident")
               and committed == t["committed"] and private == v.get("private"),
               f"tasks {t}; vm {v}; regions add up to {len(regions)} regions, {resident} resident, {committed} "
               f"committed, private {private}\n{listings[name]}")

    out = s.ask("pool")
    expect("pool: usage by tag", "Tag" in out and re.search(r"^ VmRg\s+\d+", out, re.M), out)
    rows = re.findall(r"^ (\S{1,4})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M)
    expect("pool: outstanding allocations per tag = allocs - frees, and only tags with bytes in use have some",
           rows and all(int(o) == int(a) - int(f) for _, a, f, o, _ in rows)
           and all((int(o) > 0) == (int(b) > 0) for _, _, _, o, b in rows), out)
    out = s.ask("tasksx\x7f")
    expect("line editing: backspace", "sharer-a" in out and "unknown command" not in out, out)
    for line, want in (("bogus", "unknown command 'bogus'"), ("regions", "regions takes 1 argument"),
                       ("pte sharer-a", "pte takes 2 arguments"), ("pte sharer-a zz", "bad address 'zz'"),
                       ("pte sharer-a 8000000000000000", "bad address"), ("regions nosuch", "no task 'nosuch'"),
                       ("dump nosuch", "no task 'nosuch'"), ("run nosuch", "no program 'nosuch'"),
                       ("halt now", "halt takes 0 arguments"), ("dump sharer-b 0", "bad time limit '0'"),
                       ("dump sharer-b 1 2", "dump takes 1 or 2 arguments"), ("kill", "kill takes 1 argument"),
                       ("kill nosuch", "no task 'nosuch'"), ("help nosuch", "no command 'nosuch'"),
                       ("pfn zz", "bad address 'zz'"), ("pfn fee00000", "not RAM"),
                       ("resume sharer-a", "only a created task can be resumed"),
                       ("resume nosuch", "no task 'nosuch'"), ("run -n greeter", "a name and a program are needed"),
                       ("run -x hello", "unknown option '-x'"), ("run -n a b " + "w " * 18, "run takes 0 to 19 arguments"),
                       ("run echo " + "w " * 17, "17 arguments, at most 16"),
                       ("run -n aname-that-is-longer-than-31-characters hello", "too long"),
                       ("usage sharer-a", "usage takes 2 arguments"), ("usage sharer-a zz", "bad address 'zz'"),
                       ("usage sharer-a 8000000000000000", "bad address"), ("usage nosuch 1000", "no task 'nosuch'"),
                       ("usage sharer-a 0", "no region of task")):
        out = s.ask(line)
        expect(f"'{line}' is answered with one line: {want}", want in out and out.count("\n") <= 2, out)
    out = s.ask("run")
    expect("run alone: lists the programs", out.startswith("programs:") or ("programs: " in out and " hello" in out
                                                                           and " sharer" in out), out)
    out = s.ask("run -n greeter hello")
    expect("run -n NAME PROGRAM: starts the program under that name", re.search(r"started task \d+ 'greeter'", out),
           out)
    out = s.ask("run -n argy echo one 'two' x=3")
    started = re.search(r"started task (\d+) 'argy' one 'two' x=3$", out, re.M)
    line = started and boot.wait_for(rf"^\s*{started.group(1)}\| argy: \[one\] \['two'\] \[x=3\] \(argc 4\)\r?$", 30)
    expect("run -n NAME PROGRAM ARGS: the program gets argv = NAME, ARGS (echo prints them)", started and line,
           out + boot.text()[-600:])
    # Output that comes while the prompt is shown: the prompt and the line typed so far are
    # drawn again below it (echo -w waits before it prints).
    out = s.ask("run echo -w 1500 late")
    late = re.search(r"started task (\d+) 'echo'", out)
    boot.send("tas")
    seen = late and boot.wait_for(rf"^\s*{late.group(1)}\| echo: \[late\] \(argc 4\)\r?\n", 30)
    time.sleep(0.3)
    text, raw = boot.text(), boot.raw()
    expect("a task's line that comes while the prompt is shown takes the prompt's place (the console erases the "
           "prompt's line: CR, ESC [ K), and the prompt and the line typed so far ('tas') are drawn again below it",
           seen and re.search(rf"knmm> tas\r\x1b\[K\s*{late.group(1)}\| echo: \[late\] \(argc 4\)\r\nknmm> tas$", raw)
           and re.search(rf"\n\s*{late.group(1)}\| echo: \[late\] \(argc 4\)\nknmm> tas$", text)
           and not re.search(r"knmm> tas\n\s*\d+\| echo: \[late\]", text),
           repr(raw[-400:]))
    out = s.ask("ks")
    expect("the line typed around the interruption is whole: 'tas' + 'ks' runs tasks",
           "STATE" in out and "unknown command" not in out, out)
    out = s.ask("buddy")
    zones = re.findall(r"^zone .*?(\d+) pages:((?: \d+)+)$", out, re.M)
    head = re.search(r"(\d+) free pages, (\d+) in the per-CPU cache", out)
    expect("buddy: per zone, the blocks of each order add up to the zone's free pages; zones + cache = free",
           zones and head and all(sum(int(n) << o for o, n in enumerate(b.split())) == int(p) for p, b in zones)
           and sum(int(p) for p, _ in zones) + int(head.group(2)) == int(head.group(1)), out)
    out = s.ask("run hello")
    expect("run: starts a program", re.search(r"started task \d+ 'hello'", out), out)
    out = s.ask("dump sharer-b", timeout=120)
    expect("dump: freezes a running task and dumps it", re.search(r"dump of task \d+ 'sharer-b': done", out), out)
    out = s.ask("dump sharer-b", timeout=120)
    expect("dump: a frozen task is dumped again (its own file: build/dumps/.../sharer-b.1.core)",
           re.search(r"dump of task \d+ 'sharer-b': done", out), out)
    # A small task with 1 ms, then more until a dump is done: what the monitor says must be
    # what reached COM2 (checked against the capture at the end): done only for a whole
    # frame (also when the collector, past its limit, was terminated after writing it all),
    # cut short only for a cut one, nothing when nothing was written.
    out = s.ask("run spin")
    spin_said = []
    for ms in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000):  # (until one is done)
        if spin_said and spin_said[-1][0] == "done":
            break
        out = s.ask(f"dump spin {ms}", timeout=60)
        said = ("done" if re.search(r"^dump of task \d+ 'spin': done", out, re.M)
                else "cut" if re.search(rf"^monitor: dump of task \d+ 'spin': the collector did not finish in {ms} ms: "
                                        r"terminated; the core on COM2 is cut short; the task stays frozen$", out, re.M)
                else "none" if re.search(rf"^monitor: dump of task \d+ 'spin': the collector did not finish in {ms} ms: "
                                         r"terminated; no core reached COM2; the task stays frozen$", out, re.M)
                else "?")
        spin_said.append((said, out))
    expect("dump spin 1, 2, 5 ... ms: each answer is one of done, cut short, nothing written; the last done",
           all(said != "?" for said, _ in spin_said) and spin_said[-1][0] == "done",
           "\n".join(out for _, out in spin_said))
    out = s.ask("tasks")
    expect("after the dump sharer-b is frozen, hello has run",
           re.search(r"frozen .*sharer-b", out) and "hello from hello" in boot.text(), out)
    out = s.ask("pte hello 400000")
    expect("pte of a task that has exited: one line, no walk",
           re.search(r"^monitor: (task \d+ 'hello' has exited: no page tables|no task 'hello')", out, re.M)
           and "pte of" not in out and out.count("\n") <= 2, out)
    # A collector that does not finish in time (1 ms for 259 resident pages) is terminated.
    t0 = time.monotonic()
    out = s.ask("dump stack-crash 1", timeout=60)
    crash_cut = re.search(r"^monitor: dump of task \d+ 'stack-crash': the collector did not finish in 1 ms: terminated; "
                          r"(the core on COM2 is cut short|no core reached COM2); the task stays frozen$", out, re.M)
    expect("dump with a time limit the collector cannot meet: one line, collector terminated, task stays frozen",
           crash_cut and out.count("\n") <= 2, out)
    expect("the monitor answers at once after that (no wait for the collector)", time.monotonic() - t0 < 30,
           f"{time.monotonic() - t0:.1f} s")
    out = s.ask("tasks")
    expect("the terminated collector is gone, stack-crash still frozen",
           "dump:" not in out and re.search(r"frozen .*stack-crash", out), out)
    out = s.ask("mdl")
    expect("the terminated collector's MDLs are released: sharer-a's MDL alone",
           re.search(r"^1 MDLs, 2 pinned pages", out, re.M), out)
    out = s.ask("kill sharer-b")
    expect("kill: terminates a (frozen) task", re.search(r"killed task \d+ 'sharer-b'", out), out)
    out = s.ask("tasks")
    expect("kill: the killed task is gone from tasks, the others stay (stack-crash still frozen)",
           "sharer-b" not in out and re.search(r"frozen .*stack-crash", out), out)
    out = s.ask("kill sharer-b")
    expect("kill of a task that is gone: one line", ("no task 'sharer-b'" in out or "has already exited" in out)
           and out.count("\n") <= 2, out)
    boot.send("halt\r")
    status = boot.wait()
    expect("halt leaves QEMU (status 33)", status == qemu.EXIT_PASS, f"status {status}")
    expect("no panic", "KERNEL PANIC" not in boot.text(), boot.text()[-1000:])
    outdir = os.path.join(build, "dumps", "monitor")
    done, problems = extract(com2, outdir)
    expect("the dump's core file is on COM2; the cut-off one is reported cut short, not taken",
           any(name == "sharer-b" for name, _, _ in done) and all("cut short" in p for p in problems)
           and [n for n, _, _ in done].count("stack-crash") == 1, f"{done} {problems}")
    paths = [os.path.basename(path) for name, path, _ in done if name == "sharer-b"]
    cores_ok = all(open(os.path.join(outdir, p), "rb").read(4) == b"\x7fELF" for p in paths)
    expect("two dumps of sharer-b: two files, sharer-b.core then sharer-b.1.core, each a core file",
           paths == ["sharer-b.core", "sharer-b.1.core"] and cores_ok, f"{paths}")
    with open(com2, "rb") as f:
        capture = f.read()
    on_com2 = ["done" if core is not None else "cut" for name, core, _ in sink_frames(capture) if name == "spin"]
    said = [said for said, _ in spin_said if said != "none"]
    expect("dump spin MS: done exactly for the frames that reached COM2 whole, cut short for those cut (in order)",
           said == on_com2, f"the monitor said {[s for s, _ in spin_said]}; COM2 holds {on_com2}")
    expect("the stack-crash dump cut at 1 ms: 'cut short' only if a cut frame is on COM2",
           crash_cut and (crash_cut.group(1) == "no core reached COM2")
           == (not [p for p in problems if p.startswith("stack-crash")]), f"{problems}")
    results += [(f"monitor: {n}", ok, d) for n, ok, d in check_extract_numbering(os.path.join(logdir, "extract"))]
    results += check_init_spin(build, accel, logdir)
    return results


def frame(name, core):
    """A dump sink frame as the collector writes it (tools/extract_dumps.py)."""
    return (b"KNCORE1\n" + name.encode().ljust(32, b"\0") + struct.pack("<Q", len(core)) + core
            + struct.pack("<Q", fnv1a64(core)))


def check_extract_numbering(outdir):
    """tools/extract_dumps.py on a capture with two frames of one name, one cut by the next
    frame, one cut by the capture's end and another name: each good frame its own file, NAME.core then NAME.1.core, in the capture's order;
    files of a longer earlier capture are removed."""
    os.makedirs(outdir, exist_ok=True)
    stale = os.path.join(outdir, "twin.2.core")
    with open(stale, "wb") as f:
        f.write(b"from an earlier capture")
    capture = os.path.join(outdir, "capture.bin")
    with open(capture, "wb") as f:
        f.write(b"noise" + frame("twin", b"first") + frame("stopped", b"its writer stopped here" * 8)[:100]
                + frame("other", b"o") + frame("twin", b"second") + frame("twin", b"cut")[:30])
    done, problems = extract(capture, outdir)
    got = [(name, os.path.basename(path), open(path, "rb").read()) for name, path, _ in done]
    want = [("twin", "twin.core", b"first"), ("other", "other.core", b"o"), ("twin", "twin.1.core", b"second")]
    return [("extract_dumps: two dumps of one name get two files (NAME.core, NAME.1.core), in order; a frame cut "
             "by the next one and one cut by the capture's end are reported cut short, the frames after the first "
             "taken", got == want and len(problems) == 2 and all("cut short" in p for p in problems)
             and "before the next frame" in problems[0], f"{got} {problems}"),
            ("extract_dumps: a numbered file of an earlier capture past this one's is removed",
             not os.path.exists(stale), stale)]


def check_init_spin(build, accel, logdir):
    """make run INIT=spin (knmm-monitor-spin.iso: `aslr=on init=spin monitor`): init never ends,
    the prompt must come at once; `tasks` shows spin running, `kill spin` ends it and its exit
    is logged."""
    results = []

    def expect(name, ok, detail=""):
        results.append((f"monitor (init=spin): {name}", bool(ok), detail))

    iso = os.path.join(build, "knmm-monitor-spin.iso")
    boot = qemu.Boot(qemu.qemu_args(iso, "256M", "max", accel), 180, os.path.join(logdir, "monitor-spin.log")).start()
    s = Session(boot)
    if not s.wait_prompts(1, 120):
        boot.kill()
        return [("monitor (init=spin): a prompt while init (spin) runs", False, boot.text()[-1500:])]
    expect("a prompt while init runs", "init: starting spin" in boot.text() and "init: spin exited" not in boot.text(),
           boot.text()[-800:])
    out = s.ask("tasks")
    expect("tasks: spin running", re.search(r"^\s+\d+  running\s+1\s+\d+\s+\d+\s+\d+  spin$", out, re.M), out)
    out = s.ask("kill spin")
    expect("kill spin: killed", re.search(r"killed task \d+ 'spin'", out), out)
    logged = boot.wait_for(r"I init: spin exited with (-?\d+)", 30)
    with open(os.path.join(ROOT, "include", "kn", "task_api.h")) as f:
        terminated = re.search(r"^#define KN_EXIT_TERMINATED \((-?\d+)\)", f.read(), re.M)
    expect("init's exit is logged when it comes, with its code (KN_EXIT_TERMINATED, from include/kn/task_api.h)",
           logged and terminated and logged.group(1) == terminated.group(1), boot.text()[-800:])
    out = s.ask("tasks")
    expect("tasks: spin is gone", "spin" not in out and "STATE" in out, out)
    boot.send("halt\r")
    status = boot.wait()
    expect("halt leaves QEMU (status 33), no panic", status == qemu.EXIT_PASS and "KERNEL PANIC" not in boot.text(),
           f"status {status}")
    return results
