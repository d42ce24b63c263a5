#!/usr/bin/env python3
"""knmm's QEMU launcher: the one place that knows QEMU command lines.

    tools/qemu.py run   --iso build/knmm.iso [--mem 1G] [--cpu max]
    tools/qemu.py debug --iso build/knmm.iso --kernel build/kernel.elf [--gdb-port 1234]
    tools/qemu.py bench --iso build/knmm-bench.iso
    tools/qemu.py fuzz  --iso build/knmm-fuzz.iso [--mem 1G] [--cpu max] --seed N --calls N

Also imported by tests/run.py. Python 3 standard library only.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import bench_targets

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")

# isa-debug-exit statuses: (code << 1) | 1, codes from arch/x86_64/include/arch/qemu.h
EXIT_PASS = 33
EXIT_FAIL = 35
EXIT_PANIC = 37
EXIT_BOOT_FAILED = 39
EXIT_NAMES = {EXIT_PASS: "pass", EXIT_FAIL: "test failure", EXIT_PANIC: "kernel panic",
              EXIT_BOOT_FAILED: "boot refused"}

# Above this, plain -m does not work here: use a memory backend that is allocated on touch.
BACKEND_THRESHOLD = 16 << 30

LOG_PREFIX = re.compile(r"^\[\s*\d+\.\d+\] [EWID] ")
# What the kernel puts before every line a task prints on the console: its id (knmm/log.h).
TASK_PREFIX = r"\s*\d+\| "
TASK_LINE = re.compile("^" + TASK_PREFIX)


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)", text.strip().upper())
    if not m:
        raise ValueError(f"bad memory size {text!r} (use e.g. 64M, 2G, 256G)")
    shift = {"": 20, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]
    return int(m.group(1)) << shift


def qemu_args(iso, mem="1G", cpu="max", accel="tcg", icount=False, gdb_port=None, halted=False,
              exit_device=True, serial="stdio", com2=None, smp=1):
    """The QEMU command line for one boot of `iso`."""
    size = parse_size(mem)
    args = [QEMU, "-machine", "pc", "-cpu", cpu, "-smp", str(smp), "-display", "none",
            "-no-reboot", "-boot", "d", "-cdrom", iso]
    if accel == "kvm":
        args += ["-accel", "kvm"]
    elif smp > 1 and not icount:
        # One host thread per vCPU: the CPUs really run at once (QEMU's default for TCG
        # is one thread taking turns, which hides races). -icount needs the one thread
        # (QEMU refuses MTTCG with it): there the vCPUs take turns, deterministically.
        args += ["-accel", "tcg,thread=multi"]
    else:
        args += ["-accel", "tcg"]
    if size >= BACKEND_THRESHOLD:
        args += ["-object", f"memory-backend-ram,id=m0,size={size >> 20}M,reserve=off",
                 "-machine", "memory-backend=m0", "-m", f"{size >> 20}M"]
    else:
        args += ["-m", f"{size >> 20}M"]
    if icount:
        args += ["-icount", "shift=0,sleep=off"]
    if exit_device:
        args += ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    if serial == "stdio":
        args += ["-serial", "stdio", "-monitor", "none"]
    elif serial == "mon:stdio":
        args += ["-serial", "mon:stdio"]
    else:
        args += ["-serial", serial, "-monitor", "none"]
    if com2:
        args += ["-serial", f"file:{com2}"]
    if gdb_port is not None:
        args += ["-gdb", f"tcp:127.0.0.1:{gdb_port}"]
    if halted:
        args += ["-S"]
    return args


class Boot:
    """One headless boot: serial output collected, optional input, a timeout."""

    def __init__(self, args, timeout, log_path=None):
        self.args = args
        self.timeout = timeout
        self.log_path = log_path
        self.output = []
        self.status = None
        self.timed_out = False
        self.proc = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._deadline = time.monotonic() + self.timeout
        return self

    def _read(self):
        log = open(self.log_path, "wb") if self.log_path else None
        try:
            while True:
                chunk = self.proc.stdout.read1(65536)
                if not chunk:
                    break
                if log:
                    log.write(chunk)
                    log.flush()
                with self._cond:
                    self.output.append(chunk)
                    self._cond.notify_all()
        finally:
            if log:
                log.close()

    def raw(self):
        """The console output as it came (line ends and escape sequences as sent)."""
        with self._lock:
            data = b"".join(self.output)
        return data.decode("utf-8", "replace")

    def text(self):
        return render(self.raw())

    def wait_for(self, pattern, timeout=None):
        """Waits until `pattern` (regex) appears in the output after what was already matched."""
        regex = re.compile(pattern, re.M)
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        with self._cond:
            while True:  # (the lock held: text() would take it again)
                m = regex.search(render(b"".join(self.output).decode("utf-8", "replace")))
                if m:
                    return m
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return regex.search(render(b"".join(self.output).decode("utf-8", "replace")))
                self._cond.wait(min(left, 0.2))

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait(self):
        left = max(0.0, self._deadline - time.monotonic())
        try:
            self.status = self.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.kill()
            self.status = None
        self._reader.join(timeout=5)
        return self.status

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


# What a line erased by the console looks like: its text, a carriage return and ESC [ K (the
# monitor's prompt, when output interrupts it: kernel/lib/log.c).
ERASED = re.compile(r"[^\r\n]*\r\x1b\[K")


def render(text):
    """Console output as a terminal shows it: erased lines gone, line ends as "\n"."""
    return ERASED.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def read_log(path):
    """A serial log file as a terminal shows it (render), '' if there is none."""
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace", newline="") as f:
        return render(f.read())


def strip_log_prefix(line):
    return LOG_PREFIX.sub("", line)


def kernel_lines(text):
    """The console text without the lines tasks printed (which carry TASK_PREFIX): what only
    the kernel can have said."""
    return "\n".join(line for line in text.splitlines() if not TASK_LINE.match(line))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- commands

def save_dumps(com2, outdir):
    """Writes the core files found on the dump sink's capture to outdir, and says so."""
    import extract_dumps
    if not os.path.exists(com2) or os.path.getsize(com2) == 0:
        return
    done, problems = extract_dumps.extract(com2, outdir)
    for name, path, size in done:
        print(f"knmm: dump of {name}: {path} ({size} bytes)", flush=True)
    for problem in problems:
        print(f"knmm: dump sink: {problem}", file=sys.stderr)


def cmd_run(opts):
    build = os.path.dirname(opts.iso) or "."
    com2 = os.path.join(build, "run-com2.bin")  # the dump sink
    if os.path.exists(com2):
        os.remove(com2)
    args = qemu_args(opts.iso, opts.mem, opts.cpu, opts.accel, serial="mon:stdio", com2=com2)
    print(f"knmm: booting {opts.iso} with {opts.mem} of RAM, CPU {opts.cpu} "
          f"(Ctrl-A X quits QEMU)", flush=True)
    status = subprocess.call(args)
    save_dumps(com2, os.path.join(build, "dumps"))
    if status in (EXIT_PASS, 0):
        return 0
    print(f"knmm: QEMU exited with status {status} ({EXIT_NAMES.get(status, 'QEMU error')})",
          file=sys.stderr)
    return 1


def cmd_debug(opts):
    log = os.path.join(os.path.dirname(opts.iso) or ".", "debug-com1.log")
    args = qemu_args(opts.iso, opts.mem, opts.cpu, opts.accel, gdb_port=opts.gdb_port,
                     halted=True, exit_device=False, serial=f"file:{log}")
    qemu = subprocess.Popen(args, start_new_session=True)
    here = os.path.dirname(os.path.abspath(__file__))
    gdbinit = [
        "set pagination off",
        "set confirm off",
        "set architecture i386:x86-64",
        f"file {opts.kernel}",
        f"target remote 127.0.0.1:{opts.gdb_port}",
        f"source {os.path.join(here, 'gdb', 'knmm.py')}",
        "hbreak kmain",
        "continue",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
        f.write("\n".join(gdbinit) + "\n")
        script = f.name
    print(f"knmm: QEMU is halted with its gdb stub on 127.0.0.1:{opts.gdb_port}; the kernel's "
          f"serial console goes to {log} (tail -f it in another terminal).", flush=True)
    try:
        return subprocess.call(["gdb", "-q", "-x", script])
    finally:
        os.unlink(script)
        if qemu.poll() is None:
            os.killpg(qemu.pid, signal.SIGKILL)
            qemu.wait()


# (the ring-3 program's lines carry its task prefix)
BENCH_LINE = re.compile(r"^(?:" + TASK_PREFIX + r")?bench (\S+) (\d+)\s*$", re.M)


def bench_boot(iso, mem, accel="tcg", timeout=600, log_path=None, smp=1):
    """Boots the benchmark ISO under -icount and returns {name: value} from its bench lines
    (the serial log goes to log_path too). With smp > 1 the vCPUs still take turns on one
    host thread: -icount allows nothing else."""
    args = qemu_args(iso, mem, "max", accel, icount=True, com2="/dev/null",  # (the dump sink: a real UART)
                     smp=smp)
    boot = Boot(args, timeout, log_path).start()
    boot.wait()
    text = boot.text()
    if boot.status != EXIT_PASS:
        tail = "\n".join(text.splitlines()[-20:])
        raise RuntimeError(f"benchmark boot with {mem} ended with status {boot.status}:\n{tail}")
    return {m.group(1): int(m.group(2)) for m in BENCH_LINE.finditer(text)}


def cmd_bench(opts):
    figures = []
    # (each boot's serial log stays in BUILD/bench-MEM.log: tools/gen_docs.py quotes it)
    build = os.path.dirname(opts.iso) or "."
    small = bench_boot(opts.iso, "256M", opts.accel, log_path=os.path.join(build, "bench-256M.log"))
    big = bench_boot(opts.iso, "256G", opts.accel, log_path=os.path.join(build, "bench-256G.log"))
    for name, value in small.items():
        if name == "boot_to_ready":
            figures.append(("boot_to_ready_256M", value))
        else:
            figures.append((name, value))
    if "boot_to_ready" in big:
        figures.append(("boot_to_ready_256G", big["boot_to_ready"]))
    # The SMP figures (unmap without and with TLB shootdown): a boot of their own with -smp 4,
    # the kernel's bench=smp; the figures above stay those of -smp 1.
    if opts.smp_iso:
        smp = bench_boot(opts.smp_iso, "256M", opts.accel, log_path=os.path.join(build, "bench-smp4-256M.log"),
                         smp=4)
        figures.extend(smp.items())
        # The -smp 1 figures again on 4 CPUs (the other three idle): each within 10 % of its
        # -smp 1 value (bench_targets.SMP4_SUFFIX).
        again = bench_boot(opts.iso, "256M", opts.accel, log_path=os.path.join(build, "bench-256M-smp4.log"), smp=4)
        for name, value in again.items():
            if name != "boot_to_ready":
                figures.append((name + bench_targets.SMP4_SUFFIX, value))
    # The bare `bench NAME VALUE` lines first (what scripts parse), then each with its unit and
    # target (tools/bench_targets.py); a figure over its target fails make bench.
    for name, value in figures:
        print(f"bench {name} {value}", flush=True)
    judged = bench_targets.judge(figures)
    width = max((len(name) for name, *_ in judged), default=0)
    print()
    for name, value, unit, target, over in judged:
        print(f"  {name:<{width}} {value:>10} {unit:<15} {target}{'  OVER TARGET' if over else ''}")
    over = [name for name, _, _, _, o in judged if o]
    if over:
        print(f"knmm: over target: {', '.join(over)}", file=sys.stderr)
    else:
        print("knmm: every figure with a target is within it")
    return 0 if figures and not over else 1


# What the fuzzer's own run expects to see in the kernel log and need not show: each of its
# children's exceptions, the orphans the kernel ends, and the malformed programs it asks for.
FUZZ_QUIET = re.compile(r"^\[\s*\d+\.\d+\] ([WI] task|W elf:) (fc-|fuzzc |n+:)")
FUZZ_FINDING = re.compile(r"FINDING|^\s*(?:\d+\|)?\s*not ok 999 ")


def cmd_fuzz(opts):
    """Boots the fuzzer ISO (test=user.fuzz with the seed and call count on the command line),
    shows its output as it comes (less its children's expected exception lines), and says
    whether it found anything. Exit status 1 on a finding, a failure or a hang."""
    build = os.path.dirname(opts.iso) or "."
    log = os.path.join(build, "fuzz.log")
    args = qemu_args(opts.iso, opts.mem, opts.cpu, opts.accel, com2="/dev/null")
    # TCG runs several thousand calls a second; the kernel test's own bound is larger.
    timeout = 300 + opts.calls * 0.02
    print(f"knmm: fuzzing with seed {opts.seed}, {opts.calls} calls, {opts.mem} of RAM, CPU {opts.cpu} "
          f"(the whole log goes to {log})", flush=True)
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    findings, result, lines = [], None, 0
    try:
        with open(log, "w", errors="replace") as f:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n")
                f.write(line + "\n")
                if FUZZ_FINDING.search(line):
                    findings.append(line)
                m = re.search(r"(?:^|\] |\| )(ok|not ok) \d+ user\.fuzz\b", line)
                if m and not line.startswith(" "):
                    result = m.group(1)
                if not FUZZ_QUIET.search(line):
                    print(line, flush=True)
                lines += 1
        status = proc.wait()
    finally:
        timer.cancel()
    timed_out = status == -signal.SIGKILL
    problems = []
    if timed_out:
        problems.append(f"no end after {timeout:.0f} s (killed)")
    elif status != EXIT_PASS:
        problems.append(f"QEMU exited with status {status} ({EXIT_NAMES.get(status, 'QEMU error')})")
    if result is None:
        problems.append("no result line for user.fuzz")
    elif result != "ok":
        problems.append("user.fuzz failed")
    print(f"knmm: fuzz: seed {opts.seed}, {opts.calls} calls, {opts.mem}, CPU {opts.cpu}: "
          f"{len(findings)} finding line(s)" + ("; " + "; ".join(problems) if problems else ""), flush=True)
    for line in findings:
        print(f"knmm: {line.strip()}", flush=True)
    return 1 if findings or problems else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accel", default=os.environ.get("ACCEL", "tcg"), choices=["tcg", "kvm"])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--iso", required=True)
    r.add_argument("--mem", default="1G")
    r.add_argument("--cpu", default="max")
    d = sub.add_parser("debug")
    d.add_argument("--iso", required=True)
    d.add_argument("--kernel", required=True)
    d.add_argument("--mem", default="1G")
    d.add_argument("--cpu", default="max")
    d.add_argument("--gdb-port", type=int, default=1234)
    b = sub.add_parser("bench")
    b.add_argument("--iso", required=True)
    b.add_argument("--smp-iso", help="the bench=smp ISO, booted with -smp 4 for the SMP figures")
    z = sub.add_parser("fuzz")
    z.add_argument("--iso", required=True)
    z.add_argument("--mem", default="1G")
    z.add_argument("--cpu", default="max")
    z.add_argument("--seed", type=int, default=1)
    z.add_argument("--calls", type=int, default=200000)
    opts = p.parse_args(argv)
    if shutil.which(QEMU) is None:
        print(f"knmm: {QEMU} not found; run `make deps`", file=sys.stderr)
        return 1
    return {"run": cmd_run, "debug": cmd_debug, "bench": cmd_bench, "fuzz": cmd_fuzz}[opts.cmd](opts)


if __name__ == "__main__":
    sys.exit(main())
