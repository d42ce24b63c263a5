"""knmm gdb extension, loaded by `make debug` (source tools/gdb/knmm.py).

Reads kernel structures of a halted kernel through its debug symbols (never fixed
offsets: structure layouts come from the types, container_of from field offsets).
Commands:
    kn-boot             the command line, boot loader, memory map and modules it booted with
    kn-vm               physical memory, commit charge and limit and what makes up the charge,
                        locked and pinned pages, pages by state, every task's memory
    kn-tasks            every task: id, state, threads, regions, committed and resident pages
    kn-regions TASK     a task's regions (TASK: id or name), as the monitor's `regions` shows them
    kn-pte VA [TASK]    the page-table walk of VA in TASK's tables (the kernel's without TASK),
                        read through the direct map
    kn-mdl [ADDR]       every live MDL, or the one at ADDR with all its runs
"""

import gdb

BOOT_MEM_TYPES = {1: "available", 2: "reserved", 3: "ACPI reclaimable", 4: "ACPI NVS", 5: "bad RAM"}


def c_string(value):
    """A char array or pointer as a Python string."""
    try:
        return value.string(errors="replace")
    except gdb.error:
        return "?"


class KnBoot(gdb.Command):
    """kn-boot: what the kernel booted with (boot_info: command line, memory map, modules)."""

    def __init__(self):
        super().__init__("kn-boot", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        bi = gdb.parse_and_eval("boot_info")
        gdb.write(f"loader:       {c_string(bi['loader'])}\n")
        gdb.write(f"command line: {c_string(bi['cmdline'])}\n")
        n = int(bi["nr_mem"])
        gdb.write(f"memory map ({n} entries):\n")
        for i in range(n):
            m = bi["mem"][i]
            base, size, kind = int(m["base"]), int(m["size"]), int(m["type"])
            gdb.write(f"  {base:#014x}-{base + size - 1:#014x} {size >> 10:>10} KiB  "
                      f"{BOOT_MEM_TYPES.get(kind, 'reserved')}\n")
        for i in range(int(bi["nr_modules"])):
            mod = bi["modules"][i]
            gdb.write(f"module {i}: {int(mod['start']):#x}-{int(mod['end']):#x} {c_string(mod['name'])}\n")


KnBoot()


# ---------------------------------------------------------------- structures

DIRECT_MAP_BASE = 0xFFFF800000000000
PAGE = 4096
TASK_STATES = {1: "created", 2: "running", 4: "frozen", 8: "exited"}
PAGE_STATES = {0: "free", 1: "reserved", 2: "kernel", 3: "page-table", 4: "anonymous", 5: "MDL", 6: "pool"}
RUN_STATES = {1: "R", 2: "C", 3: "G"}
MDL_KINDS = {0: "ram", 1: "io", 2: "described"}
FICTITIOUS = 0xFFFFFFFFFFFFFFFF
# Commit charged per 2 MiB window of committed pages for its page tables
# (VM_TABLE_CHARGE_PER_WINDOW in mm/vm.h: a macro, which the debug information does not hold).
TABLE_CHARGE_PER_WINDOW = 3
# enum vm_region_kind, and the VMM_FLAG_* bits of kn/flags.h the region listing shows.
REGION_KINDS = {0: "", 1: "io ", 2: "frames "}
LOW_GUARD, HIGH_GUARD, GROW_DOWN, CACHE_MASK = 0x100, 0x200, 0x400, 0xF000
CACHE_NAMES = {0x2000: "WT", 0x4000: "WC", 0x8000: "UC"}


def field_offset(type_name, field):
    for f in gdb.lookup_type(type_name).fields():
        if f.name == field:
            return f.bitpos // 8
    raise gdb.GdbError(f"{type_name} has no field {field}")


def list_entries(head, type_name, member):
    """The structures on a struct list_head, as gdb values of `type_name *`."""
    offset = field_offset(type_name, member)
    ptr = gdb.lookup_type(type_name).pointer()
    node = head["next"]
    end = int(head.address)
    while int(node) != end:
        yield gdb.Value(int(node) - offset).cast(ptr)
        node = node["next"]


def tasks():
    return list(list_entries(gdb.parse_and_eval("all_tasks"), "struct task", "all_link"))


def find_task(spec):
    for t in tasks():
        if (spec.isdigit() and int(t["id"]) == int(spec)) or c_string(t["name"]) == spec:
            return t
    raise gdb.GdbError(f"no task '{spec}' (kn-tasks lists them)")


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
    offset = field_offset("struct vm_region", "node")
    ptr = gdb.lookup_type("struct vm_region").pointer()
    for node in tree_nodes(space["tree"]["root"]):
        yield gdb.Value(int(node) - offset).cast(ptr)


def prot_string(p):
    return ("r" if p & 1 else "-") + ("w" if p & 2 else "-") + ("x" if p & 4 else "-")


def mdls():
    return list(list_entries(gdb.parse_and_eval("all_mdls"), "struct mdl", "link"))


def read_u64(addr):
    return int(gdb.parse_and_eval(f"*(unsigned long long *){addr:#x}"))


class KnVm(gdb.Command):
    """kn-vm: the memory report: physical memory, the commit charge and what makes it up, locked
    and pinned pages, pages by state, every task's memory."""

    def __init__(self):
        super().__init__("kn-vm", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        pmm = gdb.parse_and_eval("pmm_main")
        charge = gdb.parse_and_eval("global_charge")
        ks = gdb.parse_and_eval("kernel_space")
        io_charge = sum(int(r["io_charge"]) for r in regions(ks))
        gdb.write(f"Physical memory:   {int(pmm['total_pages']):>10} pages\n")
        gdb.write(f"Available pages:   {int(pmm['free_pages']):>10}\n")
        gdb.write(f"Committed pages:   {int(charge['total']):>10}\n")
        gdb.write(f"Commit limit:      {int(charge['limit']):>10}\n")
        gdb.write(f"Commit peak:       {int(charge['peak']):>10}\n")
        gdb.write(f"Locked pages:      {int(charge['locked']):>10}\n")
        gdb.write(f"Pinned pages:      {int(gdb.parse_and_eval('pinned_pages')):>10}\n")
        gdb.write(f"MDLs:              {int(gdb.parse_and_eval('nr_mdls')):>10}\n")
        gdb.write("Commit charged by:\n")
        pool_pages = int(gdb.parse_and_eval("'pool.c'::pages_held"))
        gdb.write(f"  pool pages:      {pool_pages:>10}\n")
        pool_tables = int(gdb.parse_and_eval("'pool.c'::tables_held"))
        gdb.write(f"  pool tables:     {pool_tables:>10}\n")
        roots = sum(1 for t in tasks() if bool(t["vs"]["own_root"]))
        gdb.write(f"  task roots:      {roots:>10}\n")
        gdb.write(f"  MDLs:            {sum(int(m['charge']) for m in mdls()):>10}\n")
        gdb.write(f"  kernel space:    {int(ks['committed']):>10} committed, {int(ks['table_windows'])} table windows, "
                  f"{io_charge} for I/O tables; {int(ks['resident'])} resident, {int(ks['locked'])} locked\n")
        gdb.write("Pages by state:\n")
        for state, name in PAGE_STATES.items():
            gdb.write(f"  {name + ' pages:':<18}{int(pmm['state_pages'][state]):>10}\n")
        for t in tasks():
            vs = t["vs"]
            committed, windows = int(vs["committed"]), int(vs["table_windows"])
            gdb.write(f"Task {int(t['id']):<4} {c_string(t['name']):<24} {int(vs['nregions'])} regions, "
                      f"{committed} committed, {windows} table windows, private commit "
                      f"{committed + int(vs['commit_extra']) + windows * TABLE_CHARGE_PER_WINDOW} pages, "
                      f"{int(vs['resident'])} resident, "
                      f"{int(vs['locked'])} locked\n")


class KnTasks(gdb.Command):
    """kn-tasks: every task: id, state, threads, regions, committed and resident pages, name."""

    def __init__(self):
        super().__init__("kn-tasks", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        gdb.write(f"{'ID':>5}  {'STATE':<8} {'THREADS':>7} {'REGIONS':>8} {'COMMITTED':>10} {'RESIDENT':>9}  NAME\n")
        for t in tasks():
            vs = t["vs"]
            gdb.write(f"{int(t['id']):>5}  {TASK_STATES.get(int(t['state']), '?'):<8} {int(t['nthreads']):>7} "
                      f"{int(vs['nregions']):>8} {int(vs['committed']):>10} {int(vs['resident']):>9}  "
                      f"{c_string(t['name'])}\n")


class KnRegions(gdb.Command):
    """kn-regions TASK: the task's regions: base, size, resident pages, maximum protection, cache
    mode, flags, runs (the columns of the monitor's `regions`)."""

    def __init__(self):
        super().__init__("kn-regions", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        t = find_task(arg.strip())
        gdb.write(f"regions of task {int(t['id'])} '{c_string(t['name'])}' ({int(t['vs']['nregions'])}):\n")
        gdb.write(f"  {'BASE':<18} {'SIZE':<12} {'RESIDENT':<8} {'MAX':<4} {'CACHE':<5} {'FLAGS':<20} "
                  "RUNS (state:pages/protection, L: locked)\n")
        for r in regions(t["vs"]):
            base, end = int(r["node"]["base"]), int(r["node"]["end"])
            npages = (end - base) // PAGE
            runs_v, n = r["runs"]["v"], int(r["runs"]["n"])
            runs = []
            for i in range(n):
                run = runs_v[i]
                start = int(run["start"])
                stop = int(runs_v[i + 1]["start"]) if i + 1 < n else npages
                state = RUN_STATES.get(int(run["state"]), "?")
                prot = "" if state == "G" else "/" + prot_string(int(run["prot"]))
                runs.append(f"{state}:{stop - start}{prot}{'L' if int(run['locked']) else ''}")
            flags = int(r["flags"])
            names = REGION_KINDS.get(int(r["kind"]), "? ") + "".join(
                word for bit, word in ((LOW_GUARD, "lg "), (HIGH_GUARD, "hg "), (GROW_DOWN, "gd ")) if flags & bit)
            names += c_string(r["name"])
            gdb.write(f"  {base:#018x} {hex(end - base):<12} {int(r['resident']):<8} "
                      f"{prot_string(int(r['max_prot'])):<4} {CACHE_NAMES.get(flags & CACHE_MASK, 'WB'):<5} "
                      f"{names:<20} {' '.join(runs)}\n")


class KnPte(gdb.Command):
    """kn-pte VA [TASK]: the page-table entries that map VA, level by level, decoded."""

    LEVELS = ("PML4", "PDPT", "PD", "PT")

    def __init__(self):
        super().__init__("kn-pte", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        words = arg.split()
        if not words:
            raise gdb.GdbError("usage: kn-pte VA [TASK]")
        va = int(gdb.parse_and_eval(words[0]))
        if len(words) > 1:
            t = find_task(words[1])
            root = int(t["vs"]["pt"]["pml4_pa"])
            gdb.write(f"pte of {va:#x} in task {int(t['id'])} '{c_string(t['name'])}' (root {root:#x}):\n")
        else:
            root = int(gdb.parse_and_eval("kernel_pt_root.pml4_pa"))
            gdb.write(f"pte of {va:#x} in the kernel's tables (root {root:#x}):\n")
        table = root
        for depth, name in enumerate(self.LEVELS):
            index = (va >> (39 - 9 * depth)) & 511
            entry = read_u64(DIRECT_MAP_BASE + table + index * 8)
            line = f"  {name:<4}[{index:3}] {entry:#018x}"
            if not entry & 1:
                gdb.write(line + "  not present\n")
                return
            leaf = depth == 3 or bool(entry & 0x80)
            addr_mask = {1: 0x000FFFFFC0000000, 2: 0x000FFFFFFFE00000}.get(depth, 0x000FFFFFFFFFF000) if leaf \
                else 0x000FFFFFFFFFF000
            bits = ["P", "RW" if entry & 2 else "RO", "US" if entry & 4 else "S"]
            bits += [b for b, m in (("PWT", 8), ("PCD", 16), ("A", 32)) if entry & m]
            if leaf and entry & 64:
                bits.append("D")
            if depth in (1, 2) and entry & 0x80:
                bits.append("PS")
            if entry & 0x100:
                bits.append("G")
            if entry >> 63:
                bits.append("NX")
            line += f"  {'page ' if leaf else 'table'} {entry & addr_mask:#x}  {' '.join(bits)}"
            if leaf:
                pat_bit = (entry >> 7) & 1 if depth == 3 else (entry >> 12) & 1
                pat = (entry >> 3) & 1 | ((entry >> 4) & 1) << 1 | pat_bit << 2
                line += f" PAT={pat} ({('WB', 'WT', 'UC-', 'UC', 'WC', 'WP', '?', '?')[pat]})"
            gdb.write(line + "\n")
            if leaf:
                return
            table = entry & 0x000FFFFFFFFFF000


class KnMdl(gdb.Command):
    """kn-mdl [ADDR]: every live MDL (address, kind, size, runs), or the MDL at ADDR in full."""

    def __init__(self):
        super().__init__("kn-mdl", gdb.COMMAND_USER)

    def describe(self, m, full):
        runs = []
        for i in range(int(m["nruns"])):
            r = m["runs"][i]
            pfn, count = int(r["pfn"]), int(r["count"])
            runs.append(f"[{count} fictitious]" if pfn == FICTITIOUS else f"[{pfn * PAGE:#x}+{count}]")
        if not full and len(runs) > 4:
            runs = runs[:4] + ["..."]
        gdb.write(f"  {int(m):#x} {MDL_KINDS.get(int(m['kind']), '?'):<9} {int(m['bytes']):>10} bytes "
                  f"{int(m['pages']):>6} pages max {prot_string(int(m['max_prot']))} cache {int(m['cache']):#x}: "
                  f"{' '.join(runs)}\n")

    def invoke(self, arg, from_tty):
        if arg.strip():
            m = gdb.parse_and_eval(arg.strip()).cast(gdb.lookup_type("struct mdl").pointer())
            self.describe(m, True)
            return
        all_mdls = mdls()
        gdb.write(f"{len(all_mdls)} MDLs, {int(gdb.parse_and_eval('pinned_pages'))} pinned pages\n")
        for m in all_mdls:
            self.describe(m, False)


KnVm()
KnTasks()
KnRegions()
KnPte()
KnMdl()
