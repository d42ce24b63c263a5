"""The gdb extension (tools/gdb/knmm.py) on a live kernel (SPEC §8), for tests/run.py.

Boots build/knmm-monitor.iso halted under gdb and lets it run until `sharer-b` (one of the
demo tasks sharing memory through an MDL) makes its KnDebugNop call. There, every kn-*
command runs; the addresses they are given come from the serial log written so far (what
sharer-a logged), and the answers are checked against that log and against kernel
variables gdb reads directly.
"""
import os
import re
import shutil
import subprocess

import qemu

# Runs inside gdb at the breakpoint; LOG is replaced by the serial log's path.
SCRIPT = r'''
import re
log = open(LOG, errors="replace").read()
m = re.search(r"sharer-a: MDL mapped at (0x[0-9a-f]+) \(2 pages, read-write\); code at (0x[0-9a-f]+)", log)
for title, command in (("kn-tasks", "kn-tasks"), ("kn-regions", "kn-regions sharer-a"), ("kn-vm", "kn-vm"),
                       ("kn-mdl", "kn-mdl"), ("pinned", "print pinned_pages"), ("kernel", "kn-pte &pmm_main")):
    gdb.write("==%s==\n" % title)
    gdb.execute(command)
if m:
    gdb.write("==code==\n")
    gdb.execute("kn-pte %s sharer-a" % m.group(2))
    gdb.write("==data==\n")
    gdb.execute("kn-pte %s sharer-a" % m.group(1))
first = list(list_entries(gdb.parse_and_eval("all_mdls"), "struct mdl", "link"))
if first:
    gdb.write("==one-mdl==\n")
    gdb.execute("kn-mdl %#x" % int(first[0]))
gdb.write("==end==\n")
'''


def check(build, root, accel, logdir):
    """[(name, ok, detail)]"""
    gdb = shutil.which("gdb")
    if not gdb:
        return [("gdb extension: gdb installed", False, "run `make deps`")]
    log = os.path.join(logdir, "gdb-ext-com1.log")
    script = os.path.join(logdir, "gdb-ext.py")
    if os.path.exists(log):
        os.unlink(log)
    with open(script, "w") as f:
        f.write(f"LOG = {log!r}\n" + SCRIPT)
    port = qemu.free_port()
    args = qemu.qemu_args(os.path.join(build, "knmm-monitor.iso"), "1G", "max", accel, gdb_port=port, halted=True,
                          serial=f"file:{log}", com2="/dev/null")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = ""
    try:
        cmd = [gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set architecture i386:x86-64",
               "-ex", f"file {os.path.join(build, 'kernel.elf')}", "-ex", f"target remote 127.0.0.1:{port}",
               "-ex", f"source {os.path.join(root, 'tools', 'gdb', 'knmm.py')}",
               "-ex", "hbreak sys_debug_nop", "-ex", "continue", "-ex", f"source {script}", "-ex", "kill"]
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
    serial = open(log, errors="replace").read() if os.path.exists(log) else ""
    results = []

    def expect(name, ok, detail=""):
        results.append((f"gdb extension: {name}", bool(ok), detail))

    def section(name):
        m = re.search(rf"^=={name}==\n(.*?)^==", out, re.S | re.M)
        return m.group(1) if m else ""

    def leaf(text):
        m = re.search(r"^\s+PT\s*\[\s*\d+\] 0x[0-9a-f]+\s+page .*$", text, re.M)
        return m.group(0) if m else ""

    expect("gdb stops in sharer-b's KnDebugNop and runs every command", "sys_debug_nop" in out and "==end==" in out,
           out[-1200:])
    mdl_at = re.search(r"sharer-a: MDL mapped at (0x[0-9a-f]+) \(2 pages, read-write\)", serial)
    tasks = section("kn-tasks")
    expect("kn-tasks: stack-crash frozen, sharer-a and sharer-b running",
           re.search(r"frozen .*stack-crash", tasks) and re.search(r"running .*sharer-a", tasks)
           and re.search(r"running .*sharer-b", tasks), tasks)
    regions = section("kn-regions")
    expect("kn-regions: sharer-a's MDL mapping at the address it logged, 2 resident pages, rw- at most",
           mdl_at and re.search(rf"^\s+{int(mdl_at.group(1), 16):#018x} 0x2000\s+2\s+rw-\s+mdl\s+C:2/rw-", regions,
                                re.M), regions)
    vm = section("kn-vm")
    physical = re.search(r"vm:   Physical memory:\s+(\d+)", serial)
    gdb_physical = re.search(r"^Physical memory:\s+(\d+) pages", vm, re.M)
    expect("kn-vm: the physical memory the boot log reports",
           physical and gdb_physical and physical.group(1) == gdb_physical.group(1), vm)
    expect("kn-vm: a line for each task", re.search(r"^Task \d+\s+sharer-b", vm, re.M), vm)
    mdls = section("kn-mdl")
    pinned = re.search(r"^\$\d+ = (\d+)$", section("pinned"), re.M)
    listed = re.search(r"^(\d+) MDLs, (\d+) pinned pages", mdls, re.M)
    expect("kn-mdl: sharer-a's MDL, 2 pages of RAM; the pinned count gdb reads directly",
           listed and pinned and listed.group(2) == pinned.group(1) and re.search(r"ram\s+8192 bytes\s+2 pages", mdls),
           mdls + section("pinned"))
    expect("kn-mdl ADDR: one MDL in full", re.search(r"ram\s+8192 bytes\s+2 pages .*\[0x[0-9a-f]+\+2\]",
                                                    section("one-mdl")), section("one-mdl"))
    code, data = leaf(section("code")), leaf(section("data"))
    expect("kn-pte: sharer-a's code page is user, read-only, executable (no NX)",
           code and " US" in code and " RO" in code and " NX" not in code, section("code"))
    expect("kn-pte: its MDL page is user, writable, NX, write-back",
           data and " RW" in data and " NX" in data and "PAT=0 (WB)" in data, section("data"))
    expect("kn-pte: a kernel variable, in the kernel's tables: supervisor, global",
           re.search(r"page .* S .*G", section("kernel")), section("kernel"))
    return results
