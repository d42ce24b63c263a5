#!/usr/bin/env python3
"""knmm's test runner (what `make test` runs).

0. `readelf -lW` of kernel.elf: three PT_LOADs, W^X; the layering check, clang-format, and the
   generated blocks of the docs (tools/gen_docs.py --check, and its --self-test);
1. the host unit tests (ASan/UBSan build of the pure mm code), KTAP on stdout;
2. the test kernel booted headless in QEMU (TCG) under every configuration of CONFIGS,
   KTAP on COM1, leaving through isa-debug-exit; in each test's part of the log, the lines
   its EXPECT-LOG comments want (collected from user/ and tests/kernel/);
3. boots that must be refused (no long mode, no NX) with their message;
4. the self-check: a kernel with a deliberately failing test and a deliberate kernel stack
   overflow, which this runner must report as failures (proof that it can fail);
5. gdb attached to a booting kernel in batch mode;
6. the same sources built with clang (when it is installed);
7. `make run INIT=PROGRAM MONITOR=0`'s exit status: a first program that exits 0 passes, one
   that exits non-zero fails.

Selection (make test TEST=... CONFIG=... QUIET=1): --test GLOBS boots the configurations with
the ISO whose command line is test=GLOBS (the kernel's comma-separated globs over its in-kernel
and ring-3 test names); --only GLOBS (comma-separated) picks steps by name (STEPS); --quiet
prints only failures and the summary. A selection that matches nothing is a failure.

Every check is one result; the last line is `N passed, M failed`, and the exit status is
non-zero on any failure, timeout or missing tool. Serial logs land in BUILD/test-logs/.
Python 3 standard library only.
"""

import argparse
import concurrent.futures
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The checks beside this file are found as the script's own folder; tools/ (qemu.py,
# extract_dumps.py, the knmm package) is the one folder added.
sys.path.insert(0, os.path.join(ROOT, "tools"))
import check_dumps  # noqa: E402
import check_gdb_ext  # noqa: E402
import check_monitor  # noqa: E402
import qemu  # noqa: E402

# name, memory, CPU model, timeout in seconds, CPUs. Every configuration runs on one CPU and
# on four (-smp 4 with -accel tcg,thread=multi: the vCPUs run in parallel on the host's cores).
BASE_CONFIGS = [
    ("64M-qemu64", "64M", "qemu64", 180),
    ("64M-max", "64M", "max", 180),
    ("2G-qemu64", "2G", "qemu64", 180),
    ("2G-max", "2G", "max", 180),
    ("256G-qemu64", "256G", "qemu64", 300),
    ("256G-max", "256G", "max", 300),
]
CONFIGS = [(name, mem, cpu, timeout, 1) for name, mem, cpu, timeout in BASE_CONFIGS] + \
    [(f"{name}-smp4", mem, cpu, timeout * 2, 4) for name, mem, cpu, timeout in BASE_CONFIGS]

PANIC = re.compile(r"KERNEL PANIC")
KTAP_RESULT = re.compile(r"^(ok|not ok) (\d+) (\S+)(?:\s+#\s*(.*))?$")
# Subtests: user test programs print KTAP indented by four spaces, before their parent's
# result line ("ok N user.PROGRAM"); the console shows each task line after its task prefix
# ("  5|     ok 1 name").
KTAP_SUB = re.compile(r"^" + qemu.TASK_PREFIX + r"    (ok|not ok) (\d+) ([^#]*?)\s*(?:#\s*(.*))?$")

# Log lines a test must make the kernel print live beside the code that causes them, as
# comments in the ring-3 programs (user/) and the in-kernel tests (tests/kernel/):
#     EXPECT-LOG(TEST [TEST...]): REGEX
# TEST is a top-level test's name (user.vm); REGEX a Python regular expression (the rest of
# the line, less a closing "*/" and the spaces around it) that must match in that test's part
# of the log: what was printed after the previous result line, up to its own. The runner
# collects them from those files; every mention of EXPECT-LOG there must have that form.
EXPECT_DIRS = ("user", os.path.join("tests", "kernel"))
EXPECT_SUFFIXES = (".c", ".h", ".S")
EXPECT_LOG = re.compile(r"EXPECT-LOG\(([^)]*)\):(.*)$")
TEST_NAME = re.compile(r"[\w.]+")


def collect_expectations(root=ROOT):
    """({test name: [(regex, "file:line")]}, [problems]) from the EXPECT-LOG comments."""
    expected, problems = {}, []
    for top in EXPECT_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for filename in sorted(f for f in filenames if f.endswith(EXPECT_SUFFIXES)):
                path = os.path.join(dirpath, filename)
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()
                for number, line in enumerate(lines, 1):
                    if "EXPECT-LOG" not in line:
                        continue
                    where = f"{os.path.relpath(path, root)}:{number}"
                    m = EXPECT_LOG.search(line)
                    tests = m.group(1).replace(",", " ").split() if m else []
                    pattern = m.group(2).strip() if m else ""
                    if pattern.endswith("*/"):
                        pattern = pattern[:-2].rstrip()
                    if not m or not tests or not pattern or not all(TEST_NAME.fullmatch(t) for t in tests):
                        problems.append(f"{where}: not 'EXPECT-LOG(TEST [TEST...]): REGEX'")
                        continue
                    try:
                        re.compile(pattern)
                    except re.error as e:
                        problems.append(f"{where}: {pattern!r} is not a regular expression ({e})")
                        continue
                    for test in tests:
                        expected.setdefault(test, []).append((pattern, where))
    return expected, problems


KTAP_PLAN = re.compile(r"^1\.\.(\d+)$")


class Results:
    def __init__(self, quiet=False):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.quiet = quiet

    def note(self, text):
        """A line of progress: not in quiet mode."""
        if not self.quiet:
            print(text, flush=True)

    def add(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(name)
        line = f"{'PASS' if ok else 'FAIL'} {name}"
        if detail and not ok:
            line += f": {detail}"
        if not ok or not self.quiet:
            print(line, flush=True)


def parse_subtests(text):
    """{parent test name: [(ok, subtest name, directive)]} from indented KTAP."""
    subs, pending = {}, []
    for raw in text.splitlines():
        line = raw.rstrip()
        m = KTAP_SUB.match(line)
        if m:
            pending.append((m.group(1) == "ok", m.group(3).strip(), m.group(4) or ""))
            continue
        m = KTAP_RESULT.match(qemu.strip_log_prefix(line))
        if m:
            if pending:
                subs[m.group(3)] = pending
            pending = []
    return subs


def test_sections(text):
    """{test name: the log lines it printed}: what comes after one top-level result line up to
    and including the next, so that a log assertion holds for its own test only."""
    sections, current = {}, []
    for raw in text.splitlines():
        current.append(raw)
        m = KTAP_RESULT.match(qemu.strip_log_prefix(raw.rstrip()))
        if m:
            sections[m.group(3)] = "\n".join(current)
            current = []
    return sections


def parse_ktap(text):
    """Returns (plan or None, [(number, ok, name, directive)], version_seen)."""
    plan = None
    results = []
    version = False
    for raw in text.splitlines():
        line = qemu.strip_log_prefix(raw.rstrip())
        if line.strip() == "KTAP version 1":
            version = True
            continue
        m = KTAP_PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = KTAP_RESULT.match(line)
        if m:
            results.append((int(m.group(2)), m.group(1) == "ok", m.group(3), m.group(4) or ""))
    return plan, results, version


def evaluate(text, status, timed_out, expect_status=qemu.EXIT_PASS):
    """Judges one boot or run of KTAP output. Returns (problems, ktap_results)."""
    problems = []
    plan, results, version = parse_ktap(text)
    if timed_out:
        problems.append("timed out")
    if not version:
        problems.append("no 'KTAP version 1' line")
    if plan is None:
        problems.append("no KTAP plan")
    else:
        numbers = [r[0] for r in results]
        if numbers != list(range(1, len(results) + 1)):
            problems.append("KTAP results out of sequence")
        if len(results) < plan:
            problems.append(f"missing tests: plan says {plan}, got {len(results)}")
        elif len(results) > plan:
            problems.append(f"more results than planned ({len(results)} > {plan})")
    failed = [r[2] for r in results if not r[1]]
    if failed:
        problems.append("failed: " + ", ".join(failed))
    if PANIC.search(qemu.kernel_lines(text)):  # (a task may print the words: its lines are marked)
        problems.append("kernel panic")
    if not timed_out and status != expect_status:
        problems.append(f"exit status {status} ({qemu.EXIT_NAMES.get(status, 'unexpected')}), "
                        f"expected {expect_status}")
    return problems, results


def tail(text, n=25):
    return "\n".join("    | " + l for l in text.splitlines()[-n:])


def report_ktap(res, prefix, problems, results, log_text, log_path, expected=None):
    """One result per test and subtest, one per line `expected` ({test: [(regex, where)]})
    wants in a passing test's part of the log, and one for the whole run."""
    expected = expected or {}
    subs = parse_subtests(log_text)
    sections = test_sections(log_text)
    for num, ok, name, directive in results:
        detail = directive
        if not ok:
            diag = [l for l in log_text.splitlines() if l.startswith(f"# {name}:")]
            detail = (directive + "; " if directive else "") + " | ".join(diag[:4])
        for sok, sname, sdir in subs.get(name, []):
            res.add(f"{prefix}/{name}/{sname}", sok, sdir)
        res.add(f"{prefix}/{name}", ok, detail)
        for pattern, where in expected.get(name, []) if ok else []:
            res.add(f"{prefix}/{name}: log has /{pattern}/", re.search(pattern, sections.get(name, "")) is not None,
                    f"no line matching {pattern!r} (EXPECT-LOG in {where}) in the test's part of the log "
                    f"(log: {log_path})")
    whole_ok = not problems
    detail = "; ".join(problems)
    if not whole_ok and log_path:
        detail += f" (log: {log_path})\n{tail(log_text)}"
    res.add(f"{prefix}: boot, plan complete, no panic, exit status", whole_ok, detail)


# ---------------------------------------------------------------- steps

def check_init_exit(build, accel, logdir):
    """`make run INIT=PROGRAM MONITOR=0` (tools/qemu.py run on an ISO whose command line is
    `init=PROGRAM`, no monitor): exit status 0 when the program exits 0, non-zero otherwise."""
    out = []
    for program, want_ok in (("hello", True), ("evil", False)):
        iso = os.path.join(build, f"knmm-init-{program}.iso")
        log = os.path.join(logdir, f"init-{program}.log")
        cmd = [sys.executable, os.path.join(ROOT, "tools", "qemu.py"), "--accel", accel, "run", "--iso", iso,
               "--mem", "256M"]
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            text, status = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired as e:
            text, status = (e.stdout or b"").decode(errors="replace"), None
        with open(log, "w") as f:
            f.write(text)
        problems = []
        if status is None:
            problems.append("timed out")
        elif (status == 0) != want_ok:
            problems.append(f"exit status {status}, expected {'0' if want_ok else 'non-zero'}")
        if not re.search(rf"init: {program} exited with {0 if want_ok else 99}\b", text):
            problems.append(f"no 'init: {program} exited with' line")
        name = (f"init: make run INIT={program} MONITOR=0 exits "
                f"{'0 (the program exits 0)' if want_ok else 'non-zero (the program exits 99)'}")
        out.append((name, not problems, "; ".join(problems) + (f" (log: {log})\n" + tail(text) if problems else "")))
    return out


def run_host_tests(res, build):
    binary = os.path.join(build, "host", "knmm-host-tests")
    if not os.path.exists(binary):
        res.add("host: test binary exists", False, f"{binary} missing (make builds it)")
        return
    try:
        p = subprocess.run([binary], capture_output=True, text=True, timeout=600)
        out, status, timed_out = p.stdout + p.stderr, p.returncode, False
    except subprocess.TimeoutExpired as e:
        out, status, timed_out = (e.stdout or b"").decode(errors="replace"), None, True
    problems, results = evaluate(out, status, timed_out, expect_status=0)
    if "ERROR: AddressSanitizer" in out or "runtime error:" in out:
        problems.append("sanitizer report")
    report_ktap(res, "host", problems, results, out, None)
    if problems:
        print(tail(out, 40))


def boot(iso, mem, cpu, accel, timeout, log_path, **kw):
    args = qemu.qemu_args(iso, mem, cpu, accel, **kw)
    b = qemu.Boot(args, timeout, log_path).start()
    b.wait()
    return b.text(), b.status, b.timed_out


# Boots with several CPUs take turns: each runs -smp 4 with one host thread per vCPU, and two
# at once on a 2-core host leave every vCPU a quarter of a core, where a vCPU that spins for
# a lock (or a TLB shootdown's answer) held by one the host has put aside only burns time.
SMP_BOOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 4))


def run_config(build, accel, name, mem, cpu, timeout, smp, logdir, iso_name="knmm-test.iso"):
    iso = os.path.join(build, iso_name)
    log = os.path.join(logdir, f"{name}.log")
    com2 = os.path.join(logdir, f"{name}.com2")  # the dump sink
    if os.path.exists(com2):
        os.remove(com2)
    start = time.monotonic()
    if smp > 1:
        with SMP_BOOTS:
            start = time.monotonic()
            text, status, timed_out = boot(iso, mem, cpu, accel, timeout, log, com2=com2, smp=smp)
    else:
        text, status, timed_out = boot(iso, mem, cpu, accel, timeout, log, com2=com2, smp=smp)
    return name, text, status, timed_out, log, time.monotonic() - start


def check_refusal(build, accel, cpu, message, logdir):
    """A CPU without long mode / NX: entry.S must say why on COM1 and stop."""
    iso = os.path.join(build, "knmm-test.iso")
    log = os.path.join(logdir, f"refuse-{cpu.replace(',', '_')}.log")
    text, status, timed_out = boot(iso, "64M", cpu, accel, 60, log)
    problems = []
    if message not in text:
        problems.append(f"no '{message}' on the console")
    if status != qemu.EXIT_BOOT_FAILED:
        problems.append(f"exit status {status}, expected {qemu.EXIT_BOOT_FAILED}")
    if "KTAP" in text:
        problems.append("the kernel ran anyway")
    return f"refuse: -cpu {cpu} stops with '{message}'", problems, text


def check_selfcheck(build, accel, logdir):
    """The runner must call this boot a failure, for each of the reasons planted in it."""
    iso = os.path.join(build, "knmm-selfcheck.iso")
    log = os.path.join(logdir, "selfcheck.log")
    text, status, timed_out = boot(iso, "256M", "max", accel, 120, log)
    problems, results = evaluate(text, status, timed_out)
    wrong = []
    if not problems:
        wrong.append("the runner judged a deliberately broken kernel as passing")
    if not any(r[2] == "selfcheck.deliberate_failure" and not r[1] for r in results):
        wrong.append("the deliberate failure was not reported as 'not ok'")
    if not any(p.startswith("missing tests") for p in problems):
        wrong.append("the test lost to the panic was not reported missing")
    if "kernel panic" not in problems:
        wrong.append("the panic was not detected")
    if status != qemu.EXIT_PANIC:
        wrong.append(f"exit status {status}, expected {qemu.EXIT_PANIC} (panic)")
    if "guard page of the kernel stack 'selfcheck'" not in text:
        wrong.append("the panic did not name the overflowed stack")
    if not re.search(r"backtrace:\n(?:.*\n)*?.*#1\s+0x[0-9a-f]+ selfcheck_recurse\+0x", text):
        wrong.append("no symbolized backtrace through selfcheck_recurse")
    for reg in ("rax ", "rip ", "cr2 ", "cr3 "):
        if reg not in text:
            wrong.append(f"register dump lacks {reg.strip()}")

    # The same kernel on its own command line: two locks taken out of rank order must panic
    # naming both (debug builds; without debug checks the test skips and says why), here with
    # four CPUs running (the checks hold per CPU; the first panic stops the others).
    lock_wrong = []
    lock_log = os.path.join(logdir, "selfcheck-locks.log")
    with SMP_BOOTS:
        lock_text, status, timed_out = boot(os.path.join(build, "knmm-selfcheck-locks.iso"), "256M", "max", accel,
                                            120, lock_log, smp=4)
    problems, results = evaluate(lock_text, status, timed_out)
    if any(r[2] == "selfcheck_locks.out_of_order_panics" and r[1] and (r[3] or "").startswith("SKIP")
           for r in results):
        lock_wrong += ["lock order (no debug checks): " + p for p in problems]
    else:
        if "kernel panic" not in problems or status != qemu.EXIT_PANIC:
            lock_wrong.append(f"lock order: no panic (exit status {status}, expected {qemu.EXIT_PANIC})")
        if not re.search(r"KERNEL PANIC: lock order: taking 'vm space' \(rank \d+\) while holding 'pmm' "
                         r"\(rank \d+\)", lock_text):
            lock_wrong.append("lock order: the panic does not name both locks ('vm space' while holding 'pmm')")
        if not re.search(r"backtrace:\n(?:.*\n)*?.*selfcheck_locks__out_of_order_panics\+0x", lock_text):
            lock_wrong.append("lock order: no backtrace through the test")
    if lock_wrong and not wrong:
        return lock_wrong, lock_text, lock_log
    return wrong + lock_wrong, text, log


def check_gdb(build, accel, logdir):
    """gdb attaches to a booting kernel, stops at kernel_ready and reads mem_usable_bytes."""
    gdb = shutil.which("gdb")
    if not gdb:
        return ["gdb not installed"], ""
    iso = os.path.join(build, "knmm-test.iso")
    kernel = os.path.join(build, "kernel-test.elf")
    log = os.path.join(logdir, "gdb-com1.log")
    if os.path.exists(log):
        os.unlink(log)
    port = qemu.free_port()
    args = qemu.qemu_args(iso, "1G", "max", accel, gdb_port=port, halted=True, serial=f"file:{log}")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    problems = []
    out = ""
    try:
        cmd = [gdb, "-batch", "-nx",
               "-ex", "set pagination off",
               "-ex", "set architecture i386:x86-64",
               "-ex", f"file {kernel}",
               "-ex", f"target remote 127.0.0.1:{port}",
               "-ex", "hbreak kernel_ready",
               "-ex", "continue",
               "-ex", "print/d mem_usable_bytes",
               "-ex", "print/x kernel_pt_root.pml4_pa",
               "-ex", "bt 3",
               "-ex", f"source {os.path.join(ROOT, 'tools', 'gdb', 'knmm.py')}",
               "-ex", "kn-boot",
               "-ex", "kill"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
            out = p.stdout + p.stderr
        except subprocess.TimeoutExpired:
            problems.append("gdb timed out")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()
    serial = qemu.read_log(log)
    m = re.search(r"memory: usable (\d+) bytes", serial)
    g = re.search(r"^\$1 = (\d+)$", out, re.M)
    if "kernel_ready" not in out:
        problems.append("gdb did not stop at kernel_ready")
    if not m:
        problems.append("serial log has no 'memory: usable N bytes' line")
    if not g:
        problems.append("gdb printed no value for mem_usable_bytes")
    if m and g and m.group(1) != g.group(1):
        problems.append(f"gdb read {g.group(1)}, the log says {m.group(1)}")
    pml4 = re.search(r"^\$2 = (0x[0-9a-f]+)$", out, re.M)
    logged = re.search(r"kernel PML4 at (0x[0-9a-f]+)", serial)
    if not pml4 or not logged or int(pml4.group(1), 16) != int(logged.group(1), 16):
        problems.append("kernel_pt_root.pml4_pa read by gdb differs from the log")
    # kn-boot must print the same memory map as the boot log.
    log_map = re.findall(r"^\[[^]]*\] I   (0x[0-9a-f]+-0x[0-9a-f]+)\s+(\d+) KiB  (.+)$", serial, re.M)
    gdb_map = re.findall(r"^  (0x[0-9a-f]+-0x[0-9a-f]+)\s+(\d+) KiB  (.+)$", out, re.M)
    if not log_map or log_map != gdb_map:
        problems.append(f"kn-boot memory map {gdb_map} differs from the log's {log_map}")
    if "command line: test=* aslr=off" not in out:
        problems.append("kn-boot did not print the command line")
    return problems, out


def check_kernel_segments(build):
    """`readelf -lW` of the kernel: three page-aligned PT_LOADs in the higher half, text R+X,
    rodata R, data+bss RW (W^X from the ELF file on)."""
    elf = os.path.join(build, "kernel.elf")
    try:
        out = subprocess.run(["readelf", "-lW", elf], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return [f"readelf failed: {e}"], ""
    loads = [ln.split() for ln in out.splitlines() if ln.split()[:1] == ["LOAD"]]
    wrong = []
    if len(loads) != 3:
        wrong.append(f"{len(loads)} PT_LOAD segments, expected 3")
    want_flags = ["RE", "R", "RW"]
    prev_end = 0
    for i, f in enumerate(loads[:3]):
        off, vaddr, memsz = int(f[1], 16), int(f[2], 16), int(f[5], 16)
        flags = "".join(f[6:-1])
        if flags != want_flags[i]:
            wrong.append(f"segment {i} flags {flags}, expected {want_flags[i]}")
        if vaddr < 0xffffffff80000000 or vaddr % 4096 or off % 4096:
            wrong.append(f"segment {i} at {vaddr:#x} (offset {off:#x}): not page-aligned in the higher half")
        if vaddr < prev_end:
            wrong.append(f"segment {i} overlaps the previous one's pages")
        prev_end = (vaddr + memsz + 4095) & ~4095
    return wrong, out


def check_layers(res, build):
    """tools/check_layers.py over the kernel's objects: no upward reference outside the
    allow-list, no cycle across layers, no test code in kernel.elf (docs/architecture.md)."""
    build = os.path.abspath(build)
    objects = os.path.join(build, "kernel.objs")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "check_layers.py"), os.path.join(build, "kernel"),
                        "--objects", objects, "--kernel", os.path.join(build, "kernel.elf")],
                       capture_output=True, text=True, timeout=300)
    if not res.quiet:
        print(p.stdout, end="")
    res.add("layers: no upward reference outside tools/layers.allow, no cycle across layers, "
            "no test code in kernel.elf", p.returncode == 0, p.stdout + p.stderr)


def c_sources():
    """Every C source and header of the project (not build output)."""
    out = []
    for top in ("arch", "boot", "include", "kernel", "mm", "tests", "tools", "user"):
        for dirpath, dirnames, files in os.walk(os.path.join(ROOT, top)):
            dirnames.sort()
            out += [os.path.join(dirpath, f) for f in sorted(files) if f.endswith((".c", ".h"))]
    return out


def check_docs(res):
    """tools/gen_docs.py --check: the generated blocks of README.md and docs/*.md are
    well-formed, known, and list what they must; --self-test: broken markers are caught."""
    script = os.path.join(ROOT, "tools", "gen_docs.py")
    for flag, name in (("--check", "docs: every generated block in README.md and docs/ well-formed and known, "
                                   "the benchmark table as tools/bench_targets.py has it (make docs)"),
                       ("--self-test", "docs: gen_docs.py --check catches broken markers and tables")):
        p = subprocess.run([sys.executable, script, flag], capture_output=True, text=True, timeout=120)
        res.add(name, p.returncode == 0, p.stdout + p.stderr)


def check_format(res):
    """`clang-format --dry-run -Werror` with the tree's .clang-format over every C file."""
    tool = shutil.which("clang-format")
    if not tool:
        res.add("format: clang-format present", False, "run `make deps`")
        return
    files = c_sources()
    bad = []
    for i in range(0, len(files), 64):
        p = subprocess.run([tool, "--style=file", "--dry-run", "-Werror"] + files[i:i + 64],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            bad.append(p.stderr)
    detail = "".join(bad)
    res.add(f"format: {len(files)} C files as .clang-format has them (make format fixes them)", not bad,
            tail(detail) if bad else "")


def check_clang(build):
    """The kernel, the self-check kernel and the host tests also build with clang."""
    clang = shutil.which("clang")
    if not clang:
        return None, "clang not installed"
    out = os.path.join(build, "clang")
    targets = [os.path.join(out, t) for t in ("kernel.elf", "kernel-test.elf", "kernel-selfcheck.elf",
                                             "host/knmm-host-tests")]
    jobs = str(max(1, os.cpu_count() or 1))
    p = subprocess.run(["make", "-s", "-j", jobs, "-C", ROOT, f"BUILD={out}", "CC=clang", "HOSTCC=clang"] + targets,
                       capture_output=True, text=True, timeout=1200)
    if p.returncode != 0:
        return ["clang build failed"], p.stdout + p.stderr
    p = subprocess.run([targets[3]], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        return ["host tests built with clang failed"], p.stdout + p.stderr
    return [], ""


# The steps --only (make test CONFIG=) picks by name, besides the configurations' names.
STEPS = ["elf", "layers", "format", "docs", "host"] + [c[0] for c in CONFIGS] + [
    "dumps", "refuse", "selfcheck", "monitor", "gdb", "clang", "init"]


def globs(text):
    return [g.strip() for g in (text or "").split(",") if g.strip()]


def matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def main():
    ap = argparse.ArgumentParser(description="knmm test runner")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--accel", default=os.environ.get("ACCEL", "tcg"))
    ap.add_argument("--only", default="*", help="comma-separated globs over step names: " + ", ".join(STEPS) +
                    " (dumps: every configuration, whose checks include the dumps of user.dump; "
                    "CONFIG=dumps TEST=user.dump runs just those)")
    ap.add_argument("--test", default="", help="comma-separated globs over the kernel's test names "
                    "(in-kernel and ring-3: pt.*, user.vm); the configurations boot BUILD/knmm-test-select.iso, "
                    "whose command line is test=GLOBS (make builds it)")
    ap.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("KNMM_TEST_JOBS", os.cpu_count() or 2)))
    opts = ap.parse_args()
    build = os.path.abspath(opts.build)
    logdir = os.path.join(build, "test-logs")
    os.makedirs(logdir, exist_ok=True)
    res = Results(opts.quiet)
    start = time.monotonic()
    only = globs(opts.only) or ["*"]
    tests = globs(opts.test)
    iso_name = "knmm-test-select.iso" if tests else "knmm-test.iso"

    def want(step):
        return matches(step, only)

    unmatched = [g for g in only if not any(fnmatch.fnmatchcase(s, g) for s in STEPS)]
    if unmatched:
        print(f"FAIL selection: CONFIG={','.join(unmatched)} matches no step (steps: {', '.join(STEPS)})", flush=True)
        print("0 passed, 1 failed", flush=True)
        return 1

    if want("elf"):
        wrong, out = check_kernel_segments(build)
        res.add("elf: kernel.elf has three PT_LOADs: text R+X, rodata R, data+bss RW, page-aligned",
                not wrong, "; ".join(wrong) + ("\n" + out if wrong else ""))
    if want("layers"):
        check_layers(res, build)
    if want("format"):
        check_format(res)
    if want("docs"):
        check_docs(res)
    expected, bad_expectations = collect_expectations()
    config_wanted = any(want(name) or want("dumps") for name, _, _, _, _ in CONFIGS)
    if config_wanted:
        res.add("expectations: every EXPECT-LOG comment in user/ and tests/kernel/ names tests and a regex",
                not bad_expectations, "; ".join(bad_expectations))
    if shutil.which(qemu.QEMU) is None:
        res.add("tools: qemu-system-x86_64 present", False, "run `make deps`")
    else:
        if want("host"):
            run_host_tests(res, build)

        jobs = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            for name, mem, cpu, timeout, smp in CONFIGS:
                if want(name) or want("dumps"):
                    jobs.append(pool.submit(run_config, build, opts.accel, name, mem, cpu, timeout, smp, logdir,
                                            iso_name))
            refusals = []
            if want("refuse"):
                refusals.append(pool.submit(check_refusal, build, opts.accel, "qemu64,-nx",
                                            "this CPU has no NX", logdir))
                refusals.append(pool.submit(check_refusal, build, opts.accel, "qemu32",
                                            "this CPU has no long mode", logdir))
            selfcheck = pool.submit(check_selfcheck, build, opts.accel, logdir) if want("selfcheck") else None
            gdbjob = pool.submit(check_gdb, build, opts.accel, logdir) if want("gdb") else None
            monitorjob = pool.submit(check_monitor.check, build, opts.accel, logdir) if want("monitor") else None
            gdbextjob = pool.submit(check_gdb_ext.check, build, ROOT, opts.accel, logdir) if want("gdb") else None
            clangjob = pool.submit(check_clang, build) if want("clang") else None
            initjob = pool.submit(check_init_exit, build, opts.accel, logdir) if want("init") else None

            for job in jobs:
                name, text, status, timed_out, log, secs = job.result()
                problems, results = evaluate(text, status, timed_out)
                res.note(f"# {name}: {len(results)} tests in {secs:.1f} s")
                if tests and not results and not problems:
                    problems.append(f"TEST={','.join(tests)} matches no test")
                report_ktap(res, name, problems, results, text, log, expected)
                ran = {r[2] for r in results}
                # (with TEST=, the tests it selects: the kernel's globs are fnmatch's * and ?)
                absent = sorted(test for test in expected if test not in ran and (not tests or matches(test, tests)))
                res.add(f"{name}: every test an EXPECT-LOG names has run", not absent,
                        "; ".join(f"{test} (EXPECT-LOG in {', '.join(sorted({w for _, w in expected[test]}))})"
                                  for test in absent))
                # The test ISO's command line says aslr=off and no mem.faultaround: the boot
                # must have read them from GRUB's command line.
                res.add(f"{name}: the command line's options reach the kernel",
                        re.search(r"I tasks: aslr off, fault-around 0 pages", text) is not None,
                        "no 'tasks: aslr off, fault-around 0 pages' line")
                if any(r[2] == "user.dump" and r[1] for r in results):
                    for check, ok, detail in check_dumps.check(build, name, text, os.path.join(logdir, f"{name}.com2")):
                        res.add(f"{name}/dumps: {check}", ok, detail)
            for job in refusals:
                name, problems, text = job.result()
                res.add(name, not problems, "; ".join(problems) + ("\n" + tail(text) if problems else ""))
            if selfcheck:
                wrong, text, log = selfcheck.result()
                res.add("selfcheck: a broken kernel (failing test, stack overflow) is reported as failed",
                        not wrong, "; ".join(wrong) + (f" (log: {log})\n" + tail(text) if wrong else ""))
            if gdbextjob:
                for name, ok, detail in gdbextjob.result():
                    res.add(name, ok, detail)
            if monitorjob:
                for name, ok, detail in monitorjob.result():
                    res.add(name, ok, detail)
            if gdbjob:
                problems, out = gdbjob.result()
                res.add("gdb: attaches, stops at kernel_ready; variables and kn-boot match the log",
                        not problems, "; ".join(problems) + ("\n" + tail(out) if problems else ""))
            if initjob:
                for name, ok, detail in initjob.result():
                    res.add(name, ok, detail)
            if clangjob:
                problems, out = clangjob.result()
                if problems is None:
                    print(f"SKIP clang: {out}")
                else:
                    res.add("clang: kernel, self-check kernel and host tests build with clang; host tests pass",
                            not problems, "; ".join(problems) + ("\n" + tail(out) if problems else ""))

    res.note(f"# {time.monotonic() - start:.0f} s")
    if res.passed == 0 and res.failed == 0:
        res.add(f"selection: CONFIG={opts.only} TEST={opts.test} ran no check", False)
    if res.failures:
        print(f"# {len(res.failures)} failed:")
        for name in res.failures:
            print(f"#   {name}")
    print(f"{res.passed} passed, {res.failed} failed", flush=True)
    return 1 if res.failed or res.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
