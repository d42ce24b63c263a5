"""Drives the monitor over the serial line (SPEC §8), for tests/run.py.

Boots build/knmm-monitor.iso (make run's setup without ASLR: the demo leaves a frozen
`stack-crash` and two tasks sharing an MDL), sends every command, bad ones included, and
checks each answer against what the boot log says: the addresses `sharer-a` logged, the
memory totals of the boot's vm report, the programs among the modules.
"""
import os
import re
import time

import qemu
from extract_dumps import extract

PROMPT = "knmm> "


class Session:
    def __init__(self, boot):
        self.boot = boot
        self.asked = 0

    def prompts(self):
        return self.boot.text().count(PROMPT)

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
        parts = self.boot.text().split(PROMPT)
        return parts[self.asked]


def check(build, accel, logdir):
    """[(name, ok, detail)]"""
    iso = os.path.join(build, "knmm-monitor.iso")
    log = os.path.join(logdir, "monitor.log")
    com2 = os.path.join(logdir, "monitor.com2")
    if os.path.exists(com2):
        os.remove(com2)
    boot = qemu.Boot(qemu.qemu_args(iso, "1G", "max", accel, com2=com2), 240, log).start()
    results = []

    def expect(name, ok, detail=""):
        results.append((f"monitor: {name}", bool(ok), detail))

    s = Session(boot)
    if not s.wait_prompts(1, 180):
        boot.kill()
        return [("monitor: boots to the prompt", False, boot.text()[-1500:])]
    start = boot.text()
    expect("boots to the prompt after the demo and the vm report", "vm: *** Virtual Memory Usage ***" in start)
    mdl_at = re.search(r"sharer-a: MDL mapped at (0x[0-9a-f]+) \(2 pages, read-write\); code at (0x[0-9a-f]+)", start)
    physical = re.search(r"vm:   Physical memory:\s+(\d+)", start)
    expect("sharer-a logged its MDL mapping", mdl_at, start[-800:])
    if not mdl_at or not physical:
        boot.kill()
        return results
    mdl_va, code_va = int(mdl_at.group(1), 16), int(mdl_at.group(2), 16)

    out = s.ask("help")
    expect("help lists every command", all(c in out for c in ("vm", "tasks", "regions TASK", "pte TASK VA", "pool", "mdl",
                                                               "run PROGRAM", "dump TASK", "halt")), out)
    out = s.ask("tasks")
    expect("tasks: sharer-a and sharer-b running, stack-crash frozen",
           re.search(r"running .*sharer-a", out) and re.search(r"running .*sharer-b", out)
           and re.search(r"frozen .*stack-crash", out), out)
    out = s.ask("regions sharer-a")
    expect("regions: the MDL mapping sharer-a logged, 2 pages, resident, read-write at most",
           re.search(rf"^\s+{mdl_va:#018x} 0x2000\s+2\s+rw-\s+WB\s+mdl\s+C:2/rw-", out, re.M), out)
    expect("regions: its program's text segment, read-execute",
           re.search(r"^\s+0x0000000000400000 0x[0-9a-f]+\s+\d+\s+r-x\s+WB\s+elf", out, re.M), out)
    out = s.ask(f"pte sharer-a {code_va:x}")
    leaf = re.search(r"^\s+PT\s*\[\s*\d+\] 0x[0-9a-f]+\s+page .*$", out, re.M)
    expect("pte: the code page is present, user, read-only and executable (no NX)",
           leaf and " US" in leaf.group(0) and " RO" in leaf.group(0) and " NX" not in leaf.group(0), out)
    out = s.ask(f"pte sharer-a {mdl_va:x}")
    leaf = re.search(r"^\s+PT\s*\[\s*\d+\] 0x[0-9a-f]+\s+page .*$", out, re.M)
    expect("pte: the MDL page is present, user, writable and NX, write-back",
           leaf and " RW" in leaf.group(0) and " NX" in leaf.group(0) and "PAT=0 (WB)" in leaf.group(0), out)
    out = s.ask("pte sharer-a 7fff00000000")
    expect("pte: an unmapped address stops at a level that is not present", "not present" in out, out)
    out = s.ask("vm")
    again = re.search(r"vm:   Physical memory:\s+(\d+)", out)
    expect("vm: the same physical memory as at boot", again and again.group(1) == physical.group(1), out[-600:])
    expect("vm: a line for each task", re.search(r"vm:   Task .*sharer-a .*private commit", out), out[-600:])
    out = s.ask("pool")
    expect("pool: usage by tag", "Tag" in out and re.search(r"^ VmRg\s+\d+", out, re.M), out)
    out = s.ask("mdl")
    expect("mdl: sharer-a's MDL with its two pinned frames",
           re.search(r"^\d+ MDLs, \d+ pinned pages", out, re.M) and re.search(r"ram\s+8192 bytes\s+2 pages \(2 frames\)",
                                                                               out), out)
    out = s.ask("tasksx\x7f")
    expect("line editing: backspace", "sharer-a" in out and "unknown command" not in out, out)
    for line, want in (("bogus", "unknown command 'bogus'"), ("regions", "regions takes 1 argument"),
                       ("pte sharer-a", "pte takes 2 arguments"), ("pte sharer-a zz", "bad address 'zz'"),
                       ("pte sharer-a 8000000000000000", "bad address"), ("regions nosuch", "no task 'nosuch'"),
                       ("dump nosuch", "no task 'nosuch'"), ("run nosuch", "no program 'nosuch'"),
                       ("halt now", "halt takes 0 arguments")):
        out = s.ask(line)
        expect(f"'{line}' is answered with one line: {want}", want in out and out.count("\n") <= 2, out)
    out = s.ask("run hello")
    expect("run: starts a program", re.search(r"started task \d+ 'hello'", out), out)
    out = s.ask("dump sharer-b", timeout=120)
    expect("dump: freezes a running task and dumps it", re.search(r"dump of task \d+ 'sharer-b': done", out), out)
    out = s.ask("tasks")
    expect("after the dump sharer-b is frozen, hello has run",
           re.search(r"frozen .*sharer-b", out) and "hello from hello" in boot.text(), out)
    boot.send("halt\r")
    status = boot.wait()
    expect("halt leaves QEMU (status 33)", status == qemu.EXIT_PASS, f"status {status}")
    expect("no panic", "KERNEL PANIC" not in boot.text(), boot.text()[-1000:])
    done, problems = extract(com2, os.path.join(build, "dumps", "monitor"))
    expect("the dump's core file is on COM2", any(name == "sharer-b" for name, _, _ in done) and not problems,
           f"{done} {problems}")
    return results
