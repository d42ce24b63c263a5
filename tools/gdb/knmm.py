"""knmm gdb extension, loaded by `make debug` (source tools/gdb/knmm.py).

Reads kernel structures of a halted kernel. It holds no copy of the kernel's numbers:
  - structure layouts come from the types of the debug information (never fixed offsets;
    container_of from field offsets);
  - enumerations (page states, run states, MDL and region kinds, boot memory types, page-table
    levels) from their enumerators in the debug information;
  - #define constants (task states, VMM_FLAG_* bits, PTE bits and masks, the PAT layout,
    DIRECT_MAP_BASE, the table charge per 2 MiB window) from BUILD/gdb/knmm_constants.py,
    generated at build time from the headers (tools/gdb/constants.c, tools/knmm/constants.py).
    It is looked for beside the kernel ELF gdb loaded; `set knmm-constants PATH` names another.
    Without it, the commands that need it say what is missing, and do nothing else;
  - the kernel variables and types it reads by name are in KERNEL_NAMES, in one place.
A private commit is computed by tools/knmm/charge.py, as the tests compute it.

Commands:
    kn-boot             the command line, boot loader, memory map and modules it booted with
    kn-vm               physical memory, commit charge and limit and what makes up the charge,
                        locked and pinned pages, pages by state, every task's memory
    kn-tasks            every task: id, state, threads, regions, committed and resident pages
    kn-regions TASK     a task's regions (TASK: id or name), as the monitor's `regions` shows them
    kn-pte VA [TASK]    the page-table walk of VA in TASK's tables (without TASK: the current task's
                        on the selected CPU, as kn-current finds it, or the kernel's when no task is
                        running), read through the direct map
    kn-mdl [ADDR]       every live MDL, or the one at ADDR with all its runs
    kn-current          the current thread and its task on the CPU gdb's thread is on, from that
                        CPU's per-CPU block found as this_cpu() finds it (GS base)
    kn-pool             the kernel pool: pages, tables, allocations by tag (the monitor's `pool`)
    kn-pfn PA           the page descriptor (struct page) of a physical address
    kn-dmesg            the kernel log, from its ring buffer (log_buf, knmm/log.h), oldest first
Every command parses its arguments and says in one line what it cannot do (a bad argument, the
kernel not ready yet, memory it cannot read); none throws.

A frame unwinder (TrapUnwinder) teaches gdb the trap frame: `bt` from inside trap_dispatch or
a system call handler goes on into the interrupted code.
"""

import os
import sys

import gdb
import gdb.unwinder
from gdb.FrameDecorator import FrameDecorator

# tools/knmm (the constants' loader, the charge arithmetic), shared with the tests.
_TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)
from knmm import charge, constants  # noqa: E402

# ---------------------------------------------------------------- what is read by name

# Every kernel variable and type this extension names, in one place: when the kernel renames
# one, this is the line to change. (The commit charge's statistics: the variable
# `global_charge`, a struct charge_stats, in mm/charge.c.)
KERNEL_NAMES = {
    # variables
    "boot_info": "boot_info",
    "pmm": "pmm_main",
    "charge": "global_charge",
    "kernel_space": "kernel_space",
    "kernel_root": "kernel_pt_root",
    "all_tasks": "all_tasks",
    "all_mdls": "all_mdls",
    "nr_mdls": "nr_mdls",
    "pinned_pages": "pinned_pages",
    "pool_pages": "'pool.c'::pages_held",
    "pool_tables": "'pool.c'::tables_held",
    "pool_tags": "'pool.c'::tags",
    "ready": "boot_ready_tsc",
    "cpus": "'percpu.c'::cpus",  # the per-CPU blocks by CPU number; this_cpu() finds them by GS base
    "nr_cpus": "'percpu.c'::nr_started",  # how many of them are in use
    "log_buf": "log_buf",
    "log_next": "log_buf_next",
    "trap_return": "trap_return",
    "syscall_return": "syscall_return",
    # structures
    "task": "struct task",
    "region": "struct vm_region",
    "mdl": "struct mdl",
    "trap_frame": "struct trap_frame",
    "page": "struct page",
    # enumerations
    "page_state": "enum page_state",
    "run_state": "enum vm_page_state",
    "region_kind": "enum vm_region_kind",
    "mdl_kind": "enum mdl_kind",
    "boot_mem_type": "enum boot_mem_type",
    "pt_level": "enum pt_level",
    "frame_type": "enum frame_type",
}

# How enumerators and constants are shown, by their C names (values come from the kernel).
PAGE_STATE_LABELS = {"PAGE_FREE": "free", "PAGE_RESERVED": "reserved", "PAGE_KERNEL": "kernel",
                     "PAGE_TABLE": "page-table", "PAGE_ANON": "anonymous", "PAGE_MDL": "MDL", "PAGE_POOL": "pool"}
RUN_STATE_LABELS = {"VM_RESERVED": "R", "VM_COMMITTED": "C", "VM_GUARD": "G"}
REGION_KIND_LABELS = {"VMR_ANON": "", "VMR_IO": "io ", "VMR_FRAMES": "frames "}
BOOT_MEM_LABELS = {"BOOT_MEM_AVAILABLE": "available", "BOOT_MEM_RESERVED": "reserved",
                   "BOOT_MEM_ACPI_RECLAIM": "ACPI reclaimable", "BOOT_MEM_ACPI_NVS": "ACPI NVS",
                   "BOOT_MEM_BAD": "bad RAM"}
TASK_STATE_LABELS = {"KN_TASK_STATE_CREATED": "created", "KN_TASK_STATE_RUNNING": "running",
                     "KN_TASK_STATE_FROZEN": "frozen", "KN_TASK_STATE_EXITED": "exited"}
CACHE_LABELS = {"VMM_FLAG_WRITE_THROUGH": "WT", "VMM_FLAG_WRITE_COMBINE": "WC", "VMM_FLAG_CACHE_DISABLE": "UC"}
REGION_FLAG_LABELS = (("VMM_FLAG_LOW_GUARD", "lg "), ("VMM_FLAG_HIGH_GUARD", "hg "), ("VMM_FLAG_GROW_DOWN", "gd "))
PAT_TYPE_LABELS = {"PAT_TYPE_UC": "UC", "PAT_TYPE_WC": "WC", "PAT_TYPE_WT": "WT", "PAT_TYPE_WP": "WP",
                   "PAT_TYPE_WB": "WB", "PAT_TYPE_UCM": "UC-"}
LEVEL_LABELS = (("PT_LEVEL_PML4", "PML4"), ("PT_LEVEL_PDPT", "PDPT"), ("PT_LEVEL_PD", "PD"), ("PT_LEVEL_PT", "PT"))


class Missing(Exception):
    """Something the extension needs is not there (the constants file, a constant, a symbol, an
    enumeration): the commands say what, and stop."""


def enumerators(key):
    """{enumerator name: value} of one of KERNEL_NAMES' enumerations, from the debug info."""
    name = KERNEL_NAMES[key]
    try:
        return {f.name: int(f.enumval) for f in gdb.lookup_type(name).fields()}
    except gdb.error:
        raise Missing(f"the kernel's debug information has no {name} (KERNEL_NAMES in tools/gdb/knmm.py)") from None


def labelled(key, labels, prefix):
    """{value: label} of an enumeration; an enumerator with no label shows its name less
    `prefix`, in lower case. Counts (NAME_COUNT) are left out."""
    return {value: labels.get(name, name[len(prefix):].lower() if name.startswith(prefix) else name.lower())
            for name, value in enumerators(key).items() if not name.endswith("_COUNT")}


def symbol(key):
    """The kernel variable KERNEL_NAMES[key], as a gdb value."""
    name = KERNEL_NAMES[key]
    try:
        return gdb.parse_and_eval(name)
    except gdb.error as e:
        raise Missing(f"cannot read the kernel's {name} ({e}; KERNEL_NAMES in tools/gdb/knmm.py)") from None


def kernel_type(key):
    name = KERNEL_NAMES[key]
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise Missing(f"the kernel's debug information has no {name} (KERNEL_NAMES in tools/gdb/knmm.py)") from None


# ---------------------------------------------------------------- the generated constants

class KnConstantsPath(gdb.Parameter):
    """The constants generated from the kernel's headers at build time (BUILD/gdb/knmm_constants.py).
    Empty (the default): the one beside the kernel ELF gdb loaded."""

    set_doc = "Set the file of the kernel's constants the kn-* commands read (empty: beside the kernel ELF)."
    show_doc = "Show the file of the kernel's constants the kn-* commands read."

    def __init__(self):
        super().__init__("knmm-constants", gdb.COMMAND_DATA, gdb.PARAM_OPTIONAL_FILENAME)
        self.value = ""

    def get_set_string(self):
        return ""

    def get_show_string(self, svalue):
        try:
            return f"The kn-* commands read the kernel's constants from {constants_path()}."
        except Missing as e:
            return str(e)


_constants_param = KnConstantsPath()
_constants_cache = {}


def constants_path():
    if _constants_param.value:
        return os.path.abspath(os.path.expanduser(_constants_param.value))
    elf = gdb.current_progspace().filename
    if not elf:
        raise Missing("no kernel ELF is loaded (file build/kernel.elf) to find the constants beside, and "
                      "knmm-constants is not set")
    return constants.path_for_kernel(elf)


def consts(*need):
    """The generated constants module, with the names in `need` (Missing otherwise)."""
    path = constants_path()
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = None
    if _constants_cache.get("key") != (path, stamp):
        _constants_cache.clear()
        _constants_cache["module"] = constants.load(path)  # (Missing when absent or unreadable)
        _constants_cache["key"] = (path, stamp)
    module = _constants_cache["module"]
    lacking = [n for n in need if not hasattr(module, n)]
    if lacking:
        raise Missing(f"{path} has no {', '.join(lacking)} (made from an older tools/gdb/constants.c? run `make`)")
    return module


def named(k, labels):
    """{value: label} of constants named in `labels` ({C name: label})."""
    return {getattr(k, name): label for name, label in labels.items()}


class KnCommand(gdb.Command):
    """A kn-* command: what it needs and cannot find is said in one line, never thrown."""

    def __init__(self, name):
        super().__init__(name, gdb.COMMAND_USER)
        self.name = name

    # Commands that read the kernel's structures refuse to run before kernel_ready.
    needs_ready = True

    def invoke(self, arg, from_tty):
        try:
            if self.needs_ready:
                require_ready()
            self.run(arg)
        except (Missing, constants.Missing, gdb.GdbError, ValueError) as e:
            gdb.write(f"{self.name}: {e}\n")
        except gdb.MemoryError as e:
            gdb.write(f"{self.name}: cannot read the kernel's memory ({e})\n")
        except gdb.error as e:
            gdb.write(f"{self.name}: {e}\n")
        except Exception as e:  # a bug here: still one line, never a traceback
            gdb.write(f"{self.name}: internal error: {type(e).__name__}: {e}\n")


def require_ready():
    """The kernel's structures are set up once kmain reaches kernel_ready (boot_ready_tsc != 0)."""
    if not int(symbol("ready")):
        raise Missing(f"the kernel is not ready yet ({KERNEL_NAMES['ready']} is 0: stopped before kernel_ready); "
                      "only kn-boot and kn-dmesg work this early")


def parse_address(text, what):
    """An address argument: a number or a gdb expression (&pmm_main), as an unsigned 64-bit value."""
    try:
        return int(gdb.parse_and_eval(text)) & (2**64 - 1)
    except gdb.error as e:
        raise ValueError(f"'{text}' is not {what} ({e})") from None


def cpu_block(addr):
    """The struct cpu at addr if it is one (its `self` points at itself, as percpu_init sets
    it and this_cpu() relies on), else None."""
    if not addr:
        return None
    try:
        cpu = gdb.Value(addr).cast(symbol("cpus")[0].type.pointer()).dereference()
        return cpu if int(cpu["self"]) == addr else None
    except gdb.error:
        return None


def this_cpu():
    """(struct cpu, how it was found) for the CPU gdb's selected thread is on, as the kernel's
    this_cpu() finds it: GS base (the `gs_base` register QEMU's stub gives; `k_gs_base`, the
    swapped one, when stopped in ring 3 or between the two SWAPGS of an entry). Without a
    usable GS base, by that CPU's number (QEMU gives gdb a thread per vCPU) among the per-CPU
    blocks the kernel has (percpu.c's cpus[], nr_started of them). Missing when it cannot tell."""
    tried = []
    for reg in ("gs_base", "k_gs_base"):
        try:
            base = int(gdb.parse_and_eval(f"${reg}")) & (2**64 - 1)
        except gdb.error:
            tried.append(f"no ${reg}")
            continue
        cpu = cpu_block(base)
        if cpu is not None:
            return cpu, f"${reg}"
        tried.append(f"${reg} {base:#x} is no per-CPU block")
    thread = gdb.selected_thread()
    cpus = symbol("cpus")  # the per-CPU blocks the kernel has, by CPU number
    blocks = [cpus[i] for i in range(int(symbol("nr_cpus")))]
    if thread is not None and 1 <= thread.num <= len(blocks) and int(blocks[thread.num - 1]["self"]):
        return blocks[thread.num - 1], f"vCPU {thread.num - 1} (gdb thread {thread.num}; {'; '.join(tried)})"
    raise Missing(f"cannot tell which CPU's per-CPU block is current ({'; '.join(tried)}; gdb thread "
                  f"{thread.num if thread else '?'} of {len(blocks)} per-CPU blocks)")


def current_thread():
    """The thread running on the selected CPU (this_cpu()->current), or None."""
    cur = this_cpu()[0]["current"]
    return cur if int(cur) else None


def current_task():
    """The task of the thread running on the selected CPU (this_cpu()->current->task), or None."""
    th = current_thread()
    return th["task"] if th is not None and int(th["task"]) else None


def c_string(value):
    """A char array or pointer as a Python string."""
    try:
        return value.string(errors="replace")
    except gdb.error:
        return "?"


class KnBoot(KnCommand):
    """kn-boot: what the kernel booted with (boot_info: command line, memory map, modules)."""

    needs_ready = False

    def __init__(self):
        super().__init__("kn-boot")

    def run(self, arg):
        kinds = labelled("boot_mem_type", BOOT_MEM_LABELS, "BOOT_MEM_")
        bi = symbol("boot_info")
        gdb.write(f"loader:       {c_string(bi['loader'])}\n")
        gdb.write(f"command line: {c_string(bi['cmdline'])}\n")
        n = int(bi["nr_mem"])
        gdb.write(f"memory map ({n} entries):\n")
        for i in range(n):
            m = bi["mem"][i]
            base, size, kind = int(m["base"]), int(m["size"]), int(m["type"])
            gdb.write(f"  {base:#014x}-{base + size - 1:#014x} {size >> 10:>10} KiB  "
                      f"{kinds.get(kind, 'reserved')}\n")
        for i in range(int(bi["nr_modules"])):
            mod = bi["modules"][i]
            gdb.write(f"module {i}: {int(mod['start']):#x}-{int(mod['end']):#x} {c_string(mod['name'])}\n")


# ---------------------------------------------------------------- structures

def field_offset(key, field):
    for f in kernel_type(key).fields():
        if f.name == field:
            return f.bitpos // 8
    raise Missing(f"{KERNEL_NAMES[key]} has no field {field}")


def list_entries(head, key, member):
    """The structures on a struct list_head, as gdb values of pointers to KERNEL_NAMES[key]."""
    offset = field_offset(key, member)
    ptr = kernel_type(key).pointer()
    node = head["next"]
    end = int(head.address)
    while int(node) != end:
        yield gdb.Value(int(node) - offset).cast(ptr)
        node = node["next"]


def tasks():
    return list(list_entries(symbol("all_tasks"), "task", "all_link"))


def find_task(spec):
    for t in tasks():
        if (spec.isdigit() and int(t["id"]) == int(spec)) or c_string(t["name"]) == spec:
            return t
    raise gdb.GdbError(f"no task '{spec}' (kn-tasks lists them)")


def usage(text):
    raise gdb.GdbError(f"usage: {text}")


def tree_nodes(node):
    """In-order walk of a vm_tree (an AVL tree of struct vm_node)."""
    stack = []
    while stack or int(node):
        while int(node):
            stack.append(node)
            node = node["left"]
        node = stack.pop()
        yield node
        node = node["right"]


def regions(space):
    offset = field_offset("region", "node")
    ptr = kernel_type("region").pointer()
    for node in tree_nodes(space["tree"]["root"]):
        yield gdb.Value(int(node) - offset).cast(ptr)


def prot_string(k, p):
    return (("r" if p & k.VMM_FLAG_READ else "-") + ("w" if p & k.VMM_FLAG_WRITE else "-")
            + ("x" if p & k.VMM_FLAG_EXECUTE else "-"))


PROT_NEEDS = ("VMM_FLAG_READ", "VMM_FLAG_WRITE", "VMM_FLAG_EXECUTE")


def mdls():
    return list(list_entries(symbol("all_mdls"), "mdl", "link"))


def read_u64(addr):
    return int(gdb.parse_and_eval(f"*(unsigned long long *){addr:#x}"))


class KnVm(KnCommand):
    """kn-vm: the memory report: physical memory, the commit charge and what makes it up, locked
    and pinned pages, pages by state, every task's memory."""

    def __init__(self):
        super().__init__("kn-vm")

    def run(self, arg):
        k = consts(*charge.NEEDS)
        page_states = labelled("page_state", PAGE_STATE_LABELS, "PAGE_")
        pmm = symbol("pmm")
        charge_ = symbol("charge")
        ks = symbol("kernel_space")
        io_charge = sum(int(r["io_charge"]) for r in regions(ks))
        # The allocator's counters leave out its per-CPU caches: add every cache's frames
        # and per-state deltas (as pmm_get_stats does).
        low, high = pmm['pcp'].type.range()
        caches = [pmm['pcp'][i] for i in range(low, high + 1)]
        cached = sum(int(c['count']) for c in caches)
        gdb.write(f"Physical memory:   {int(pmm['total_pages']):>10} pages\n")
        gdb.write(f"Available pages:   {int(pmm['listed_pages']) + cached:>10}\n")
        gdb.write(f"Committed pages:   {int(charge_['total']):>10}\n")
        gdb.write(f"Commit limit:      {int(charge_['limit']):>10}\n")
        gdb.write(f"Commit peak:       {int(charge_['peak']):>10}\n")
        gdb.write(f"Locked pages:      {int(charge_['locked']):>10}\n")
        gdb.write(f"Pinned pages:      {int(symbol('pinned_pages')):>10}\n")
        gdb.write(f"MDLs:              {int(symbol('nr_mdls')):>10}\n")
        gdb.write("Commit charged by:\n")
        gdb.write(f"  pool pages:      {int(symbol('pool_pages')):>10}\n")
        gdb.write(f"  pool tables:     {int(symbol('pool_tables')):>10}\n")
        roots = sum(1 for t in tasks() if bool(t["vs"]["own_root"]))
        gdb.write(f"  task roots:      {roots:>10}\n")
        gdb.write(f"  MDLs:            {sum(int(m['charge']) for m in mdls()):>10}\n")
        gdb.write(f"  kernel space:    {int(ks['committed']):>10} committed, {int(ks['table_windows'])} table windows, "
                  f"{io_charge} for I/O tables; {int(ks['resident'])} resident, {int(ks['locked'])} locked\n")
        gdb.write("Pages by state:\n")
        for state, name in sorted(page_states.items()):
            if state == int(enumerators("page_state")["PAGE_FREE"]):
                pages = int(pmm['listed_pages']) + cached
            else:
                pages = int(pmm['state_pages'][state]) + sum(int(c['state_delta'][state]) for c in caches)
            gdb.write(f"  {name + ' pages:':<18}{pages:>10}\n")
        for t in tasks():
            vs = t["vs"]
            committed, windows = int(vs["committed"]), int(vs["table_windows"])
            private = charge.private_commit(k, committed, int(vs["commit_extra"]), windows)
            gdb.write(f"Task {int(t['id']):<4} {c_string(t['name']):<24} {int(vs['nregions'])} regions, "
                      f"{committed} committed, {windows} table windows, private commit {private} pages, "
                      f"{int(vs['resident'])} resident, {int(vs['locked'])} locked\n")


class KnTasks(KnCommand):
    """kn-tasks: every task: id, state, threads, regions, committed and resident pages, name."""

    def __init__(self):
        super().__init__("kn-tasks")

    def run(self, arg):
        states = named(consts(*TASK_STATE_LABELS), TASK_STATE_LABELS)
        gdb.write(f"{'ID':>5}  {'STATE':<8} {'THREADS':>7} {'REGIONS':>8} {'COMMITTED':>10} {'RESIDENT':>9}  NAME\n")
        for t in tasks():
            vs = t["vs"]
            gdb.write(f"{int(t['id']):>5}  {states.get(int(t['state']), '?'):<8} {int(t['nthreads']):>7} "
                      f"{int(vs['nregions']):>8} {int(vs['committed']):>10} {int(vs['resident']):>9}  "
                      f"{c_string(t['name'])}\n")


def human_size(nbytes):
    """bytes (a multiple of 4 KiB) as "4K", "12M", "1G": the largest unit that divides it (the
    monitor's human_size, mm/report.c)."""
    for shift, unit in ((30, "G"), (20, "M")):
        if nbytes and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return f"{nbytes >> 10}K"


class KnRegions(KnCommand):
    """kn-regions TASK: the task's regions: base, size (hexadecimal and K/M/G), resident pages,
    maximum protection, cache mode, flags, runs (the columns of the monitor's `regions`)."""

    def __init__(self):
        super().__init__("kn-regions")

    def run(self, arg):
        k = consts("PAGE_SIZE", "VMM_FLAG_CACHE_MASK", *PROT_NEEDS, *CACHE_LABELS,
                   *(name for name, _ in REGION_FLAG_LABELS))
        cache_names = named(k, CACHE_LABELS)
        region_flags = [(getattr(k, name), word) for name, word in REGION_FLAG_LABELS]
        run_states = labelled("run_state", RUN_STATE_LABELS, "VM_")
        guard = enumerators("run_state").get("VM_GUARD")
        kinds = labelled("region_kind", REGION_KIND_LABELS, "VMR_")
        if len(arg.split()) != 1:
            usage("kn-regions TASK (an id or a name: kn-tasks lists them)")
        t = find_task(arg.strip())
        gdb.write(f"regions of task {int(t['id'])} '{c_string(t['name'])}' ({int(t['vs']['nregions'])}):\n")
        gdb.write(f"  {'BASE':<18} {'SIZE':<20} {'RESIDENT':<8} {'MAX':<4} {'CACHE':<5} {'FLAGS':<20} "
                  "RUNS (state:pages/protection, L: locked)\n")
        for r in regions(t["vs"]):
            base, end = int(r["node"]["base"]), int(r["node"]["end"])
            npages = (end - base) // k.PAGE_SIZE
            runs_v, n = r["runs"]["v"], int(r["runs"]["n"])
            runs = []
            for i in range(n):
                run = runs_v[i]
                start, state = int(run["start"]), int(run["state"])
                stop = int(runs_v[i + 1]["start"]) if i + 1 < n else npages
                prot = "" if state == guard else "/" + prot_string(k, int(run["prot"]))
                runs.append(f"{run_states.get(state, '?')}:{stop - start}{prot}{'L' if int(run['locked']) else ''}")
            flags = int(r["flags"])
            names = kinds.get(int(r["kind"]), "? ") + "".join(word for bit, word in region_flags if flags & bit)
            names += c_string(r["name"])
            size = f"{end - base:#x} ({human_size(end - base)})"
            gdb.write(f"  {base:#018x} {size:<20} {int(r['resident']):<8} "
                      f"{prot_string(k, int(r['max_prot'])):<4} "
                      f"{cache_names.get(flags & k.VMM_FLAG_CACHE_MASK, 'WB'):<5} {names:<20} {' '.join(runs)}\n")


class KnPte(KnCommand):
    """kn-pte VA [TASK]: the page-table entries that map VA, level by level, decoded."""

    NEEDS = ("DIRECT_MAP_BASE", "PAGE_SHIFT", "PT_ENTRIES", "PT_INDEX_BITS", "PTE_P", "PTE_RW", "PTE_US", "PTE_PWT",
             "PTE_PCD", "PTE_A", "PTE_D", "PTE_PS", "PTE_PAT_4K", "PTE_G", "PTE_PAT_BIG", "PTE_NX", "PTE_ADDR_MASK",
             "PTE_ADDR_MASK_2M", "PTE_ADDR_MASK_1G", "PAT_MSR_VALUE", *PAT_TYPE_LABELS)

    def __init__(self):
        super().__init__("kn-pte")

    def run(self, arg):
        words = arg.split()
        if not words or len(words) > 2:
            usage("kn-pte VA [TASK]")
        k = consts(*self.NEEDS)
        level = enumerators("pt_level")
        lacking = [name for name, _ in LEVEL_LABELS if name not in level]
        if lacking:
            raise Missing(f"{KERNEL_NAMES['pt_level']} has no {', '.join(lacking)}")
        pt, pd, pdpt = level["PT_LEVEL_PT"], level["PT_LEVEL_PD"], level["PT_LEVEL_PDPT"]
        pat_types = named(k, PAT_TYPE_LABELS)
        # the memory type of each PAT index, as cpu_init programs the PAT
        pat_names = [pat_types.get((k.PAT_MSR_VALUE >> (8 * i)) & 0xFF, "?") for i in range(8)]
        va = parse_address(words[0], "an address")
        top = k.PAGE_SHIFT + k.PT_INDEX_BITS * 4  # bits a 4-level walk translates
        high = va >> (top - 1)
        if high not in (0, (1 << (64 - top + 1)) - 1):
            raise ValueError(f"{va:#x} is not canonical (bits 63..{top - 1} must all be equal): no table maps it")
        if len(words) > 1:
            t = find_task(words[1])
            root = int(t["vs"]["pt"]["pml4_pa"])
            gdb.write(f"pte of {va:#x} in task {int(t['id'])} '{c_string(t['name'])}' (root {root:#x}):\n")
        elif current_task() is not None:
            task = current_task()
            root = int(task["vs"]["pt"]["pml4_pa"])
            gdb.write(f"pte of {va:#x} in the current task {int(task['id'])} '{c_string(task['name'])}' "
                      f"(root {root:#x}):\n")
        else:
            root = int(symbol("kernel_root")["pml4_pa"])
            gdb.write(f"pte of {va:#x} in the kernel's tables (no current task; root {root:#x}):\n")
        if not root:
            raise Missing("that page-table root is 0: nothing to walk")
        table = root
        for name, label in LEVEL_LABELS:
            lv = level[name]
            index = (va >> (k.PAGE_SHIFT + k.PT_INDEX_BITS * lv)) & (k.PT_ENTRIES - 1)
            entry = read_u64(k.DIRECT_MAP_BASE + table + index * 8)
            line = f"  {label:<4}[{index:3}] {entry:#018x}"
            if not entry & k.PTE_P:
                gdb.write(line + "  not present\n")
                return
            big = lv in (pd, pdpt) and bool(entry & k.PTE_PS)
            leaf = lv == pt or big
            addr_mask = {pdpt: k.PTE_ADDR_MASK_1G, pd: k.PTE_ADDR_MASK_2M}.get(lv, k.PTE_ADDR_MASK) if leaf \
                else k.PTE_ADDR_MASK
            bits = ["P", "RW" if entry & k.PTE_RW else "RO", "US" if entry & k.PTE_US else "S"]
            bits += [b for b, m in (("PWT", k.PTE_PWT), ("PCD", k.PTE_PCD), ("A", k.PTE_A)) if entry & m]
            if leaf and entry & k.PTE_D:
                bits.append("D")
            if big:
                bits.append("PS")
            if entry & k.PTE_G:
                bits.append("G")
            if entry & k.PTE_NX:
                bits.append("NX")
            line += f"  {'page ' if leaf else 'table'} {entry & addr_mask:#x}  {' '.join(bits)}"
            if leaf:
                pat_bit = k.PTE_PAT_4K if lv == pt else k.PTE_PAT_BIG
                pat = (4 if entry & pat_bit else 0) | (2 if entry & k.PTE_PCD else 0) | (1 if entry & k.PTE_PWT else 0)
                line += f" PAT={pat} ({pat_names[pat]})"
            gdb.write(line + "\n")
            if leaf:
                return
            table = entry & k.PTE_ADDR_MASK


class KnMdl(KnCommand):
    """kn-mdl [ADDR]: every live MDL (address, kind, size, runs), or the MDL at ADDR in full."""

    def __init__(self):
        super().__init__("kn-mdl")

    def describe(self, k, kinds, m, full):
        cache = named(k, CACHE_LABELS).get(int(m["cache"]) & k.VMM_FLAG_CACHE_MASK, "WB")
        runs = []
        for i in range(int(m["nruns"])):
            r = m["runs"][i]
            pfn, count = int(r["pfn"]), int(r["count"])
            runs.append(f"[{count} fictitious]" if pfn == k.MDL_FICTITIOUS else f"[{pfn * k.PAGE_SIZE:#x}+{count}]")
        if not full and len(runs) > 4:
            runs = runs[:4] + ["..."]
        gdb.write(f"  {int(m):#x} {kinds.get(int(m['kind']), '?'):<9} {int(m['bytes']):>10} bytes "
                  f"{int(m['pages']):>6} pages max {prot_string(k, int(m['max_prot']))} cache {cache}: "
                  f"{' '.join(runs)}\n")

    def run(self, arg):
        k = consts("MDL_FICTITIOUS", "PAGE_SIZE", "VMM_FLAG_CACHE_MASK", *PROT_NEEDS, *CACHE_LABELS)
        kinds = labelled("mdl_kind", {}, "MDL_")
        if len(arg.split()) > 1:
            usage("kn-mdl [ADDR]")
        if arg.strip():
            addr = parse_address(arg.strip(), "an address")
            found = [m for m in mdls() if int(m) == addr]
            if not found:
                raise ValueError(f"no live MDL at {addr:#x} (kn-mdl lists them)")
            self.describe(k, kinds, found[0], True)
            return
        all_mdls = mdls()
        gdb.write(f"{len(all_mdls)} MDLs, {int(symbol('pinned_pages'))} pinned pages\n")
        for m in all_mdls:
            self.describe(k, kinds, m, False)


class KnCurrent(KnCommand):
    """kn-current: the thread running on the selected CPU (this_cpu()->current, the per-CPU block
    found through GS base) and its task."""

    def __init__(self):
        super().__init__("kn-current")

    def run(self, arg):
        if arg.strip():
            usage("kn-current")
        cpu, how = this_cpu()
        head = f"cpu {int(cpu['id'])} (per-CPU block {int(cpu.address):#x}, from {how})"
        th = cpu["current"]
        if not int(th):
            gdb.write(f"{head}: no current thread\n")
            return
        line = f"{head}: thread {int(th['id'])} '{c_string(th['name'])}' at {int(th):#x}"
        task = th["task"]
        if int(task):
            line += f", task {int(task['id'])} '{c_string(task['name'])}' at {int(task):#x}"
        else:
            line += ", a kernel thread (no task)"
        gdb.write(line + "\n")


def tag_name(tag):
    """A pool tag as pool_tag_name shows it (4 bytes, least significant first)."""
    return "".join(chr(c) if 32 <= c < 127 else "?" for c in ((tag >> (8 * i)) & 0xFF for i in range(4)))


class KnPool(KnCommand):
    """kn-pool: the kernel pool: pages and tables it holds, allocations by tag (live tags first,
    as the monitor's `pool` lists them)."""

    def __init__(self):
        super().__init__("kn-pool")

    def run(self, arg):
        if arg.strip():
            usage("kn-pool")
        pages, tables = int(symbol("pool_pages")), int(symbol("pool_tables"))
        slots = symbol("pool_tags")
        n = slots.type.sizeof // slots[0].type.sizeof
        rows = []
        for i in range(n):
            s = slots[i]
            tag = int(s["tag"])
            if tag:
                rows.append((tag, int(s["allocs"]), int(s["frees"]), int(s["bytes"])))
        rows = [r for r in rows if r[1] != r[2]] + [r for r in rows if r[1] == r[2]]
        gdb.write(f"pool: {pages} pages, {tables} tables\n {'Tag':<4} {'Allocs':>10} {'Frees':>10} {'Bytes':>14}\n")
        for tag, allocs, frees, nbytes in rows:
            gdb.write(f" {tag_name(tag):<4} {allocs:>10} {frees:>10} {nbytes:>14}\n")


class KnPfn(KnCommand):
    """kn-pfn PA: the page descriptor of the frame holding physical address PA: state, block
    order, reference and pin counts, flags, memory type, the owner's word."""

    def __init__(self):
        super().__init__("kn-pfn")

    def run(self, arg):
        if len(arg.split()) != 1:
            usage("kn-pfn PA")
        k = consts("PAGE_SHIFT", "PG_PCP", "PG_POISONED", "PG_TYPE_SHIFT", "PG_TYPE_MASK")
        pa = parse_address(arg.strip(), "a physical address")
        pfn = pa >> k.PAGE_SHIFT
        pmm = symbol("pmm")

        def within(ranges, count):
            return any(int(ranges[i]["start"]) <= pfn < int(ranges[i]["end"]) for i in range(int(count)))

        if not within(pmm["ram"], pmm["nr_ram"]) or within(pmm["opaque"], pmm["nr_opaque"]):
            raise ValueError(f"{pa:#x} (pfn {pfn:#x}) has no page descriptor (not RAM the kernel accounts for, "
                             "or the page database's own frames)")
        p = pmm["db"] + pfn
        states = labelled("page_state", PAGE_STATE_LABELS, "PAGE_")
        try:
            types = {v: n[len("FRAME_"):] for n, v in enumerators("frame_type").items()}
        except Missing:
            types = {}
        flags = int(p["flags"])
        names = [w for bit, w in ((k.PG_PCP, "pcp"), (k.PG_POISONED, "poisoned")) if flags & bit]
        mtype = (flags & k.PG_TYPE_MASK) >> k.PG_TYPE_SHIFT
        state = int(p["state"])
        gdb.write(f"pfn {pfn:#x} (pa {pfn << k.PAGE_SHIFT:#x}), descriptor at {int(p):#x}:\n")
        gdb.write(f"  state {states.get(state, state)}, order {int(p['order'])} (max {int(p['max_order'])}), "
                  f"refcount {int(p['refcount'])}, pincount {int(p['pincount'])}, flags {flags:#x}"
                  f"{' (' + ' '.join(names) + ')' if names else ''}, type {types.get(mtype, mtype)}, "
                  f"private {int(p['private']):#x}\n")


class KnDmesg(KnCommand):
    """kn-dmesg: the kernel log kept in log_buf (knmm/log.h), oldest line first."""

    needs_ready = False

    def __init__(self):
        super().__init__("kn-dmesg")

    def run(self, arg):
        if arg.strip():
            usage("kn-dmesg")
        buf, nxt = symbol("log_buf"), int(symbol("log_next"))
        size = buf.type.sizeof
        if not nxt:
            gdb.write("(the log is empty)\n")
            return
        raw = bytes(gdb.selected_inferior().read_memory(int(buf.address), size))
        if nxt <= size:
            text = raw[:nxt]
        else:
            cut = nxt % size
            text = raw[cut:] + raw[:cut]
            text = text[text.find(b"\n") + 1:]  # the oldest line was partly overwritten
        gdb.write(text.decode("ascii", errors="replace"))


# ---------------------------------------------------------------- the trap frame

class _FrameId:
    def __init__(self, sp, pc):
        self.sp, self.pc = sp, pc


TRAP_REGS = ("r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8", "rbp", "rdi", "rsi", "rdx", "rcx", "rbx", "rax")


class TrapUnwinder(gdb.unwinder.Unwinder):
    """The frame that called trap_dispatch (at trap_return, isr.S) or a system call handler
    (at syscall_return, entry.S) has the struct trap_frame at its stack pointer: the caller
    is the interrupted code, with the registers the frame saved."""

    def __init__(self):
        super().__init__("knmm-trap-frame")

    @staticmethod
    def _address(key):
        try:
            return int(gdb.parse_and_eval(f"(unsigned long)&{KERNEL_NAMES[key]}"))
        except gdb.error:
            return None

    def __call__(self, pending):
        try:
            pc = int(pending.read_register("rip"))
            if pc not in (self._address("trap_return"), self._address("syscall_return")):
                return None
            sp = int(pending.read_register("rsp"))
            tf = gdb.Value(sp).cast(kernel_type("trap_frame").pointer()).dereference()
            u64 = gdb.lookup_type("unsigned long")
            info = pending.create_unwind_info(_FrameId(gdb.Value(sp + tf.type.sizeof).cast(u64),
                                                       gdb.Value(pc).cast(u64)))
            for reg in TRAP_REGS:
                info.add_saved_register(reg, tf[reg].cast(u64))
            info.add_saved_register("rip", tf["rip"].cast(u64))
            info.add_saved_register("rsp", tf["rsp"].cast(u64))
            info.add_saved_register("eflags", tf["rflags"].cast(gdb.lookup_type("unsigned int")))
            return info
        except (gdb.error, Missing, ValueError):
            return None  # not a frame this unwinder can read: gdb's own unwinders go on



class TrapFrameFilter:
    """Where a backtrace ends: after the first frame in the lower half (user code, reached
    through a trap frame: nothing of the kernel's is below it), and before a frame at
    address 0 (the bottom of a kernel thread's stack, past arch_thread_trampoline)."""

    name = "knmm-user-boundary"
    priority = 100
    enabled = True
    LOWER_HALF_END = 1 << 47

    def filter(self, frames):
        for decorator in frames:
            pc = decorator.inferior_frame().pc()
            if pc == 0:
                return
            if pc < self.LOWER_HALF_END:
                yield _UserFrame(decorator)
                return
            yield decorator


class _UserFrame(FrameDecorator):
    """The interrupted user code: no symbols of the kernel's name it."""

    def function(self):
        return "[user code]"


KnBoot()
KnVm()
KnTasks()
KnRegions()
KnPte()
KnMdl()
KnCurrent()
KnPool()
KnPfn()
KnDmesg()
gdb.unwinder.register_unwinder(None, TrapUnwinder(), replace=True)
gdb.frame_filters[TrapFrameFilter.name] = TrapFrameFilter()
