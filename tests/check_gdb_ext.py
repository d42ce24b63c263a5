"""The gdb extension (tools/gdb/knmm.py) on a live kernel (SPEC §8), for tests/run.py.

Boots build/knmm-monitor.iso (make run's set-up, `aslr=on`) halted under gdb and lets it run
until `sharer-b` (one of the demo tasks sharing memory through an MDL) makes its KnDebugNop
call; by then `sharer-a` has made and logged its regions. There, every kn-* command runs;
the addresses they are given come from the serial log written so far, and the answers are
checked against the facts tests/check_monitor.py uses (what sharer-a logged and is known to
have done, its ELF segments, the boot log) and against each other: kn-vm's commit charge
must equal, page for page, what it says makes it up. The extension finds the constants
generated from the kernel's headers beside the kernel ELF (BUILD/gdb/knmm_constants.py);
pointed at a file that is not there, its commands must say so and go on.
"""
import os
import re
import shutil
import subprocess

import qemu
from check_monitor import (EXPECTED, LEAF, PAGE, check_sharer_regions, elf_segments, load_constants, parse_regions,
                           region_totals, sharer_facts)
from knmm import charge, constants

# Runs inside gdb, stopped at kmain (before kernel_ready) first, then at sharer-b's KnDebugNop;
# LOG is replaced by the serial log's path, TOOLS by tools/ (for qemu.read_log).
SCRIPT = r'''
import re
import sys
# At kmain the kernel's structures are not set up: the commands say so in one line.
for command in EARLY:
    gdb.write("==early %s==\n" % command)
    gdb.execute(command)
gdb.write("==early-end==\n")
gdb.execute("delete")
gdb.execute("hbreak sys_debug_nop")
gdb.execute("continue")
sys.path.insert(0, TOOLS)
import qemu
log = qemu.read_log(LOG)  # (as a terminal shows it: the prompt's erased lines gone)
for command in BAD:
    gdb.write("==bad %s==\n" % command)
    gdb.execute(command)
for title, command in (("bt", "bt"), ("current", "kn-current"), ("cpu0", "print/x &'percpu.c'::cpus[0]"), ("pool", "kn-pool"), ("pte-current", "kn-pte 0x400000"),
                       ("pfn-0", "kn-pfn 0"), ("dmesg", "kn-dmesg")):
    gdb.write("==%s==\n" % title)
    gdb.execute(command)
one = mdls()
if one:
    gdb.write("==pfn-mdl==\n")
    gdb.execute("kn-pfn %#x" % (int(one[0]["runs"][0]["pfn"]) << 12))
m = re.search(r"sharer-a: MDL mapped at (0x[0-9a-f]+) \(2 pages, read-write\); code at (0x[0-9a-f]+)", log)
made = {k: int(b, 16) for k, b, _ in re.findall(r"^\s*\d+\| sharer-a: region (\w+) at (0x[0-9a-f]+) size (0x[0-9a-f]+)$", log, re.M)}
# Without the generated constants: every command that needs them says what is missing.
gdb.execute("set knmm-constants " + MISSING)
for command in ("kn-vm", "kn-tasks", "kn-regions sharer-a", "kn-pte 0x400000 sharer-a", "kn-mdl"):
    gdb.write("==missing %s==\n" % command)
    gdb.execute(command)
gdb.execute("set knmm-constants")
for title, command in (("kn-tasks", "kn-tasks"), ("kn-vm", "kn-vm"), ("kn-mdl", "kn-mdl"),
                       ("pinned", "print pinned_pages"), ("kernel", "kn-pte &pmm_main")):
    gdb.write("==%s==\n" % title)
    gdb.execute(command)
for t in tasks():
    gdb.write("==regions %s==\n" % c_string(t["name"]))
    gdb.execute("kn-regions %d" % int(t["id"]))
pages = {"code": m and int(m.group(2), 16), "data": m and int(m.group(1), 16)}
for kind, offset in (("wc", 0), ("uc", 4096), ("rx", 0), ("guarded", 0)):
    pages[kind] = made.get(kind, 0) and made[kind] + offset
for name, va in pages.items():
    if va:
        gdb.write("==pte %s==\n" % name)
        gdb.execute("kn-pte %#x sharer-a" % va)
first = mdls()
if first:
    gdb.write("==one-mdl==\n")
    gdb.execute("kn-mdl %#x" % int(first[0]))
gdb.write("==trap==\n")
# A timer interrupt: trap_dispatch's backtrace goes on past the trap frame.
gdb.execute("delete")
gdb.execute("hbreak trap_dispatch")
gdb.execute("continue")
gdb.execute("bt 12")
gdb.write("==end==\n")
'''

# Each gets one line "COMMAND: reason" (no Python traceback).
EARLY = ("kn-vm", "kn-pte 0x1000", "kn-tasks", "kn-current")
BAD = ("kn-pte zz", "kn-pte 0x800000000000", "kn-pte", "kn-pte 0x1000 no-such-task", "kn-mdl 0x1234", "kn-mdl zz",
       "kn-regions", "kn-regions no-such-task", "kn-pfn", "kn-pfn zz", "kn-pfn 0xfffffffff000", "kn-current x",
       "kn-pool x", "kn-dmesg x")
USAGE = {"kn-pte": "usage: kn-pte VA", "kn-regions": "usage: kn-regions TASK", "kn-pfn": "usage: kn-pfn PA"}

VM_TOTAL = re.compile(r"^([A-Za-z][A-Za-z -]*):\s+(\d+)(?: pages)?$", re.M)
VM_TASK = re.compile(r"^Task (\d+)\s+(\S+)\s+(\d+) regions, (\d+) committed, (\d+) table windows, private commit (\d+) "
                     r"pages, (\d+) resident, (\d+) locked$", re.M)
KN_TASK = re.compile(r"^\s+(\d+)  (\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)  (\S+)$", re.M)


def check(build, root, accel, logdir):
    """[(name, ok, detail)]"""
    gdb = shutil.which("gdb")
    if not gdb:
        return [("gdb extension: gdb installed", False, "run `make deps`")]
    log = os.path.join(logdir, "gdb-ext-com1.log")
    script = os.path.join(logdir, "gdb-ext.py")
    if os.path.exists(log):
        os.unlink(log)
    try:
        k = load_constants(build)
    except constants.Missing as e:
        return [("gdb extension: the constants generated from the kernel's headers", False, str(e))]
    missing = os.path.join(logdir, "no-such-dir", "knmm_constants.py")
    with open(script, "w") as f:
        f.write(f"LOG = {log!r}\nTOOLS = {os.path.dirname(os.path.abspath(qemu.__file__))!r}\nMISSING = {missing!r}\nEARLY = {EARLY!r}\nBAD = {BAD!r}\n" + SCRIPT)
    port = qemu.free_port()
    args = qemu.qemu_args(os.path.join(build, "knmm-monitor.iso"), "1G", "max", accel, gdb_port=port, halted=True,
                          serial=f"file:{log}", com2="/dev/null")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = ""
    try:
        cmd = [gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set architecture i386:x86-64",
               "-ex", f"file {os.path.join(build, 'kernel.elf')}", "-ex", f"target remote 127.0.0.1:{port}",
               "-ex", f"source {os.path.join(root, 'tools', 'gdb', 'knmm.py')}",
               "-ex", "hbreak kmain", "-ex", "continue", "-ex", f"source {script}", "-ex", "kill"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        out = p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        out = "gdb timed out"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()
    with open(os.path.join(logdir, "gdb-ext.out"), "w") as f:
        f.write(out)
    serial = qemu.read_log(log)
    results = []

    def expect(name, ok, detail=""):
        results.append((f"gdb extension: {name}", bool(ok), detail))

    def section(name):
        m = re.search(rf"^=={re.escape(name)}==\n(.*?)^==", out, re.S | re.M)
        return m.group(1) if m else ""

    def leaf(text):
        m = LEAF.search(text)
        return m.group(0) if m else ""

    def one_line(text, command):
        return (text.count("\n") == 1 and text.startswith(command.split()[0] + ": ") and "Traceback" not in text
                and "Python Exception" not in text)

    expect("no Python error anywhere in gdb's output", "Python Exception" not in out and "Traceback" not in out,
           "\n".join(line for line in out.splitlines() if "Python" in line or "Traceback" in line)[:1500])
    for command in EARLY:
        text = section(f"early {command}")
        expect(f"at kmain, {command} says in one line that the kernel is not ready yet",
               one_line(text, command) and "not ready" in text, text)
    for command in BAD:
        text = section(f"bad {command}")
        word = command.split()[0]
        expect(f"'{command}': a one-line reason, no Python error",
               one_line(text, command) and (USAGE[word] in text if len(command.split()) == 1 and word in USAGE
                                            else True) and ("canonical" in text if "800000000000" in command else True)
               and ("no live MDL" in text if command == "kn-mdl 0x1234" else True)
               and ("usage" in text if command.endswith(" x") else True), text)
    expect("gdb stops in sharer-b's KnDebugNop (make run's command line, aslr=on) and runs every command",
           "sys_debug_nop" in out and "==end==" in out and 'command line "aslr=on init=demo monitor"' in serial,
           out[-1200:])
    for command in ("kn-vm", "kn-tasks", "kn-regions sharer-a", "kn-pte 0x400000 sharer-a", "kn-mdl"):
        text = section(f"missing {command}")
        expect(f"{command} without the constants file: one line naming the missing file, no Python error",
               f"{command.split()[0]}: {missing} is missing" in text and "make" in text and text.count("\n") == 1
               and "Traceback" not in text and "Python Exception" not in text, text)
    facts = sharer_facts(serial)
    expect("sharer-a logged its MDL mapping, code and stack addresses", facts, serial[-1500:])
    if not facts:
        return results
    made = facts["regions"]
    tasks_out = section("kn-tasks")
    tasks = {name: dict(id=int(i), state=st, regions=int(rg), committed=int(c), resident=int(r))
             for i, st, th, rg, c, r, name in KN_TASK.findall(tasks_out)}
    expect("kn-tasks: stack-crash frozen, sharer-a and sharer-b running",
           tasks.get("stack-crash", {}).get("state") == "frozen" and tasks.get("sharer-a", {}).get("state") == "running"
           and tasks.get("sharer-b", {}).get("state") == "running", tasks_out)
    for where, ok, detail in check_sharer_regions(section("regions sharer-a"), facts,
                                                  elf_segments(os.path.join(build, "user", "sharer.elf")),
                                                  "kn-regions sharer-a"):
        results.append((f"gdb extension: {where}", ok, detail))

    vm_out = section("kn-vm")
    vm = {label.strip(): int(n) for label, n in VM_TOTAL.findall(vm_out)}
    vm_tasks = {name: dict(regions=int(rg), committed=int(c), windows=int(w), private=int(pc), resident=int(r),
                           locked=int(lk)) for i, name, rg, c, w, pc, r, lk in VM_TASK.findall(vm_out)}
    kernel = re.search(r"^  kernel space:\s+(\d+) committed, (\d+) table windows, (\d+) for I/O tables; (\d+) resident, "
                       r"(\d+) locked$", vm_out, re.M)
    by_state = vm_out.partition("Pages by state:\n")[2]
    states = {name: int(n) for name, n in re.findall(r"^  ([\w-]+) pages:\s+(\d+)$", by_state, re.M)}
    charged_by = {name: int(n) for name, n in re.findall(r"^  (pool pages|pool tables|task roots|MDLs):\s+(\d+)$",
                                                         vm_out.partition("Pages by state:")[0], re.M)}
    names = ("Physical memory", "Available pages", "Committed pages", "Commit limit", "Commit peak", "Locked pages",
             "Pinned pages", "MDLs")
    complete = all(n in vm for n in names) and kernel and len(charged_by) == 4 and len(states) == 7
    expect("kn-vm: every total, what the charge is made of, pages by state, a line per task",
           complete and set(vm_tasks) == set(tasks), vm_out)
    usable = re.search(r"memory: usable \d+ bytes \(\d+ MiB, (\d+) pages\)", serial)
    limit = re.search(r"vm: commit limit (\d+) pages", serial)
    reserved = re.search(r"pmm: \d+ frames \(.*?, (\d+) reserved;", serial)
    if complete:
        expect("kn-vm: the physical memory the boot log reports",
               usable and vm["Physical memory"] == int(usable.group(1)), vm_out)
        expect("kn-vm: the commit limit the boot log reports", limit and vm["Commit limit"] == int(limit.group(1)),
               vm_out)
        expect("kn-vm: pages by state add up to physical memory; free pages are the available ones; reserved as at boot",
               sum(states.values()) == vm["Physical memory"] and states.get("free") == vm["Available pages"]
               and reserved and states.get("reserved") == int(reserved.group(1)), vm_out)
        charged = (sum(t["private"] for t in vm_tasks.values()) + int(kernel.group(1))
                   + charge.table_charge(k, int(kernel.group(2))) + int(kernel.group(3)) + charged_by["pool pages"]
                   + charged_by["pool tables"] + charged_by["task roots"] + charged_by["MDLs"])
        expect("kn-vm: the commit charge is exactly the tasks' private commit + the kernel space's (pages, tables, "
               "I/O tables) + pool pages and tables + task roots + MDLs' charge", vm["Committed pages"] == charged,
               f"charge {vm['Committed pages']}, parts add up to {charged}\n{vm_out}")
        expect("kn-vm: committed <= peak <= limit, and the commit still grantable is backed by available pages",
               vm["Committed pages"] <= vm["Commit peak"] <= vm["Commit limit"]
               and vm["Available pages"] >= vm["Commit limit"] - vm["Committed pages"], vm_out)
        expect("kn-vm: locked = the kernel's + the tasks'; sharer-a's = its 'locked' region, others none",
               vm["Locked pages"] == int(kernel.group(5)) + sum(t["locked"] for t in vm_tasks.values())
               and "locked" in made and vm_tasks.get("sharer-a", {}).get("locked") == made["locked"][1] // PAGE
               and all(t["locked"] == 0 for n, t in vm_tasks.items() if n != "sharer-a"), vm_out)
        mdls = section("kn-mdl")
        pinned = re.search(r"^\$\d+ = (\d+)$", section("pinned"), re.M)
        listed = re.search(r"^(\d+) MDLs, (\d+) pinned pages", mdls, re.M)
        expect("kn-vm and kn-mdl: one MDL (sharer-a's, 2 pages of RAM), its 2 pages pinned, as pinned_pages says",
               listed and pinned and vm["MDLs"] == int(listed.group(1)) == 1
               and vm["Pinned pages"] == int(listed.group(2)) == int(pinned.group(1)) == made.get("mdl", (0, 0))[1] // PAGE
               and charged_by["MDLs"] == 2 and re.search(r"ram\s+8192 bytes\s+2 pages", mdls), mdls + section("pinned"))
    for name, t in tasks.items():
        regions, count = parse_regions(section(f"regions {name}"))
        resident, committed, private = region_totals(regions, k)
        v = vm_tasks.get(name, {})
        expect(f"{name}: kn-tasks, kn-vm and kn-regions agree (regions, resident, committed, private commit)",
               count == len(regions) == t["regions"] == v.get("regions") and resident == t["resident"] == v.get("resident")
               and committed == t["committed"] == v.get("committed") and private == v.get("private"),
               f"kn-tasks {t}; kn-vm {v}; kn-regions add up to {len(regions)}, {resident} resident, {committed} "
               f"committed, private {private}\n{section(f'regions {name}')}")

    expect("kn-mdl ADDR: one MDL in full, its cache mode named as the monitor names it (WB)",
           re.search(r"ram\s+8192 bytes\s+2 pages .* cache WB: .*\[0x[0-9a-f]+\+2\]", section("one-mdl")),
           section("one-mdl"))
    for page, want, absent, what in (
            ("code", (" US", " RO"), (" NX",), "sharer-a's code page is user, read-only, executable (no NX)"),
            ("data", (" RW", " NX", "PAT=0 (WB)"), (), "its MDL page is user, writable, NX, write-back"),
            ("wc", (" RW", " NX", "(WC)"), (), "its write-combining page has a WC PAT index"),
            ("uc", (" RO", " NX", "(UC)"), (), "its uncached page has a UC PAT index"),
            ("rx", (" RO", "(WB)"), (" NX",), "the page it made read-execute has no NX")):
        text = section(f"pte {page}")
        expect(f"kn-pte: {what}", leaf(text) and all(w in leaf(text) for w in want)
               and not any(a in leaf(text) for a in absent), text)
    text = section("pte guarded")
    expect("kn-pte: a reserved page of sharer-a is not present", "not present" in text and not leaf(text), text)
    expect("kn-pte: a kernel variable, in the kernel's tables: supervisor, global",
           re.search(r"page .* S .*G", section("kernel")), section("kernel"))
    current = section("current")
    cur = re.search(r"^cpu 0 \(per-CPU block (0x[0-9a-f]+), from ([^)]*)\): thread (\d+) '([^']*)' at 0x[0-9a-f]+, "
                    r"task (\d+) '([^']*)'", current, re.M)
    expect("kn-current: the CPU runs sharer-b's thread, its task as kn-tasks lists it",
           cur and cur.group(6) == "sharer-b" and int(cur.group(5)) == tasks.get("sharer-b", {}).get("id"), current)
    cpu0 = re.search(r"^\$\d+ = (0x[0-9a-f]+)$", section("cpu0"), re.M)
    expect("kn-current: finds the per-CPU block through GS base ($gs_base, in the kernel), and it is CPU 0's "
           "(print &cpus[0])", cur and cpu0 and cur.group(2) == "$gs_base" and int(cur.group(1), 16) == int(cpu0.group(1), 16),
           current + section("cpu0"))
    text = section("pte-current")
    expect("kn-pte VA without TASK walks the current task's tables (sharer-b) and says so",
           "in the current task" in text and "'sharer-b'" in text, text)
    pool = section("pool")
    pm = re.search(r"^pool: (\d+) pages, (\d+) tables$", pool, re.M)
    tags = re.findall(r"^ (\S{4})\s+(\d+)\s+(\d+)\s+(\d+)$", pool, re.M)
    expect("kn-pool: the pool pages and tables kn-vm counts, and a line per tag (allocs >= frees)",
           pm and complete and int(pm.group(1)) == charged_by["pool pages"] and int(pm.group(2)) == charged_by["pool tables"]
           and tags and all(int(a) >= int(f) for _, a, f, _ in tags), pool)
    text = section("pfn-0")
    expect("kn-pfn 0: the first frame is reserved", re.search(r"state reserved, .*refcount \d+, pincount 0", text), text)
    text = section("pfn-mdl")
    expect("kn-pfn of sharer-a's MDL page: pinned (pincount 1), referenced, write-back",
           re.search(r"refcount [1-9]\d*, pincount 1, .*type WB", text), text)
    dmesg = [line for line in section("dmesg").splitlines() if line]
    logged = [line.rstrip("\r") for line in serial.splitlines() if re.match(r"^\[\s*\d+\.\d{6}\] [EWID] ", line)]
    expect("kn-dmesg: the kernel's log lines as the serial console shows them, in order, up to the stop",
           dmesg and any("boot: ready" in line for line in dmesg) and logged[-len(dmesg):] == dmesg,
           "\n".join(dmesg[-10:]) + "\n--- serial:\n" + "\n".join(logged[-10:]))
    for title in ("bt", "trap"):
        text = section(title)
        frames = re.findall(r"^#(\d+) ", text, re.M)
        past = re.search(r"^#\d+ .* in (trap_return|syscall_return) \(\)\n#\d+ +0x[0-9a-f]+ in \S", text, re.M)
        expect(f"bt from {'sys_debug_nop (a system call)' if title == 'bt' else 'trap_dispatch (an interrupt)'} "
               "goes past the trap frame into the interrupted code, never to 0x0",
               len(frames) >= 3 and not re.search(r"0x0+ in \?\? \(\)", text) and "Python Exception" not in text
               and "corrupt stack" not in text and past, out[-3000:] if not text else text)
    return results
