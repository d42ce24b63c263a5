"""make bench's figures: each name's unit and its SPEC target (§10, §17), in one place.

tools/qemu.py prints `bench NAME VALUE` (the bare, parseable line) and then the same figure
with its unit and target; a figure over its target makes `make bench` exit non-zero.
README.md's benchmark table quotes the targets from here.
"""

# name: (unit, target, what is measured). target: None (none), an int (VALUE <= target) or
# ("x", OTHER, FACTOR): VALUE <= FACTOR * the figure OTHER.
TARGETS = {
    "boot_to_ready_256M": ("ticks", None, "kernel entry to ready, 256 MiB"),
    "syscall_null": ("ticks per call", None, "KnDebugNop round trip from ring 3"),
    "lazy_fault_per_page": ("ticks per page", 3400, "touch each page of a fresh 64 MiB lazy region"),
    "locked_commit_per_page": ("ticks per page", 3500, "KnVmAllocate 64 MiB COMMIT|LOCKED"),
    "protect_committed_per_page": ("ticks per page", 66, "RW->R, resident"),
    "unmap_committed_per_page": ("ticks per page", 640, "unmap, committed and resident"),
    "reserve_release_1MiB": ("ticks per pair", 10400, "reserve and release 1 MiB"),
    "usage_map_1GiB_sparse_per_call": ("ticks per call", 20000, "usage map of 1 GiB, 16 resident pages"),
    "mdl_map_unmap_64MiB": ("ticks per pair", None, "KnPmmMdlMap + KnVmUnmap of 64 MiB"),
    "mdl_from_buf_per_page": ("ticks per page", None, "KnPmmMdlCreateFromBuf of 64 MiB"),
    "mdl_from_buf_fragmented_per_page": ("ticks per page", ("x", "mdl_from_buf_per_page", 2),
                                         "the same, every free frame a task can reach alone"),
    "dump_1GiB_sparse": ("ticks", None, "collector on 1 GiB with 16 resident pages"),
    "dump_4GiB_sparse": ("ticks", None, "collector on 4 GiB with 16 resident pages"),
    "dump_1GiB_256_resident": ("ticks", None, "collector on 1 GiB with 256 resident pages"),
    "boot_to_ready_256G": ("ticks", None, "kernel entry to ready, 256 GiB"),
    # -smp 4 (make bench's second boot, bench=smp): 200 runs each, mean, then min and median.
    "unmap_1page_1cpu": ("ticks per call", 6000, "KnVmUnmap of a touched 1-page region, no other thread"),
    "unmap_1page_1cpu_min": ("ticks per call", None, "the same, the fastest run"),
    "unmap_1page_1cpu_median": ("ticks per call", None, "the same, the median run"),
    "tlb_shootdown_unmap_4cpu": ("ticks per call", 6500,
                                 "the same while 3 threads of the task read pages on the other 3 CPUs"),
    "tlb_shootdown_unmap_4cpu_min": ("ticks per call", None, "the same, the fastest run"),
    "tlb_shootdown_unmap_4cpu_median": ("ticks per call", None, "the same, the median run"),
}


# make bench measures the -smp 1 figures again with -smp 4 and names them NAME + this.
SMP4_SUFFIX = "@smp4"


def judge(figures):
    """[(name, value)] -> [(name, value, unit, target text, over)]; over is True when the
    figure exceeds its target (False without one)."""
    values = dict(figures)
    out = []
    for name, value in figures:
        unit, target, _ = TARGETS.get(name, ("ticks", None, ""))
        if name.endswith(SMP4_SUFFIX) and name[:-len(SMP4_SUFFIX)] in TARGETS:
            # SPEC §17: each §10 figure measured again with -smp 4 stays within 10 %.
            base = name[:-len(SMP4_SUFFIX)]
            unit, target = TARGETS[base][0], ("x", base, 1.1)
        text, over = "no target", False
        if isinstance(target, int):
            text, over = f"target <= {target}", value > target
        elif isinstance(target, tuple) and target[1] in values:
            _, other, factor = target
            limit = factor * values[other]
            ratio = value / values[other] if values[other] else float("inf")
            text, over = f"target <= {factor}x {other} = {limit:.0f} (now {ratio:.2f}x)", value > limit
        elif name == "boot_to_ready_256G" and values.get("boot_to_ready_256M"):
            text = f"no target ({value / values['boot_to_ready_256M']:.2f}x the 256 MiB boot)"
        out.append((name, value, unit, text, over))
    return out
