#!/usr/bin/env python3
"""The kernel's layering, read from its objects with `nm` (docs/architecture.md).

Layers, lowest first: ground (kernel/lib) < arch, boot < mm < kernel. An object may refer to
symbols of its own layer and of layers below it. An upward reference is allowed only when it
is listed in tools/layers.allow ("FROM_OBJECT SYMBOL", the entry points of include/knmm/entry.h).
Prints every upward reference (marking the allowed ones), every strongly connected component
of the object graph (allowed upcalls left out) that spans more than one layer, and a last line
    layers: upward=N allowed=A cross_layer_sccs=M objects=O
Exits 1 when an upward reference is not allowed or a cycle crosses layers.

With --kernel ELF it also checks that the production kernel links no test code: its ktests
and ktest_fixtures sections are empty, and no global symbol defined by an object under tests/
appears in it.

Usage: check_layers.py BUILD_KERNEL_DIR [--objects LIST] [--kernel build/kernel.elf] [--allow FILE]
  --objects  a file naming the kernel's objects (the Makefile writes build/kernel.objs), so
             objects left behind in the build folder by moved sources do not count
"""
import argparse
import collections
import glob
import os
import subprocess
import sys

LAYERS = (("kernel/lib/", 0, "ground"), ("arch/", 1, "arch"), ("boot/", 1, "boot"), ("mm/", 2, "mm"),
          ("kernel/", 3, "kernel"))


def layer(obj):
    for prefix, rank, name in LAYERS:
        if obj.startswith(prefix):
            return rank, name
    return 4, obj.split("/")[0]


def nm(path):
    """`nm` of one object or executable: (name, type, value or None) per symbol."""
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3:
            yield f[2], f[1], int(f[0], 16)
        elif len(f) == 2:
            yield f[1], f[0], None


def symbols(path, entries=None):
    """(defined, undefined) global symbols of one object or executable (from `entries`, its
    nm, when the caller already has them)."""
    defined, undefined = set(), set()
    for name, kind, _ in (entries if entries is not None else nm(path)):
        if kind in "TDBRWVG":
            defined.add(name)
        elif kind == "U":
            undefined.add(name)
    return defined, undefined


def sccs(nodes, edges):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(sorted(comp))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--kernel")
    ap.add_argument("--objects")
    ap.add_argument("--allow", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.allow"))
    a = ap.parse_args()

    allowed = set()
    with open(a.allow) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 2:
                allowed.add(tuple(line))

    if a.objects:
        with open(a.objects) as f:
            objs = sorted(set(f.read().split()))
    else:
        objs = glob.glob(os.path.join(a.build, "**", "*.o"), recursive=True)
    objs = [o for o in objs if not os.path.relpath(o, a.build).startswith("tests/")]
    defs, undefs = {}, {}
    for o in objs:
        name = os.path.relpath(o, a.build)[:-2]
        defs[name], undefs[name] = symbols(o)
    owner = {s: o for o, d in defs.items() for s in d}
    edges = collections.defaultdict(dict)
    for o, u in undefs.items():
        for s in u:
            d = owner.get(s)
            if d and d != o:
                edges[o].setdefault(d, set()).add(s)

    bad = 0
    up = 0
    for o in sorted(edges):
        for d in sorted(edges[o]):
            if layer(d)[0] <= layer(o)[0]:
                continue
            for s in sorted(edges[o][d]):
                up += 1
                ok = (o, s) in allowed
                bad += not ok
                print(f"{'allowed' if ok else 'UPWARD '} {o} ({layer(o)[1]}) -> {d} ({layer(d)[1]}): {s}")
    # Allowed upcalls are declared inversions (an entry point is where control starts, not
    # a dependency of the code that jumps there): the cycle search leaves them out.
    graph = {o: {d for d, syms in e.items() if any((o, s) not in allowed for s in syms)} for o, e in edges.items()}
    cross = [c for c in sccs(sorted(defs), graph)
             if len({layer(o)[1] for o in c}) > 1]
    for c in cross:
        print(f"CYCLE across layers ({len(c)} objects): {' '.join(c)}")
    print(f"layers: upward={up} allowed={up - bad} cross_layer_sccs={len(cross)} objects={len(defs)}")
    status = 1 if bad or cross else 0

    if a.kernel:
        # Tests and fixtures are static, registered through the ktests and ktest_fixtures
        # sections: the kernel's section bounds must enclose nothing. Global symbols defined
        # under tests/ must not be there either.
        entries = list(nm(a.kernel))
        bounds = {name: value for name, _, value in entries if value is not None}
        leaked = []
        for sec in ("ktests", "ktest_fixtures"):
            start, stop = bounds.get(f"__start_{sec}"), bounds.get(f"__stop_{sec}")
            if start is None or stop is None:
                leaked.append(f"section bounds of {sec} missing")
            elif stop != start:
                leaked.append(f"{(stop - start) // 8} entries in section {sec}")
        test_defs = set()
        for o in glob.glob(os.path.join(a.build, "tests", "**", "*.o"), recursive=True):
            test_defs |= symbols(o)[0]
        leaked += sorted(symbols(a.kernel, entries)[0] & test_defs)
        for s in leaked:
            print(f"TEST CODE in {a.kernel}: {s}")
        print(f"layers: {len(leaked)} test symbols or registrations in {os.path.basename(a.kernel)}")
        status |= 1 if leaked else 0
    return status


if __name__ == "__main__":
    sys.exit(main())
