#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_shm.py - pshm.SharedMemory and ShareableList against the stdlib and
against the C API, in one run on one machine (issue 10's benchmark, first
part). Not a test: nothing here asserts a speed.

    PYTHONPATH=build/python bench/python/bench_shm.py [--quick] [--json FILE]

Cells: SharedMemory create+close+unlink (track=True and track=False) and
attach+close, each for the stdlib, pshm and the C API (pshm._shm._bench_c:
the same calls in a C loop, in this process); ShareableList get and set of
int, float and str, pshm and the stdlib. Each cell is the best of 5 rounds
(--quick: 3 shorter rounds). Targets (issue 10): get and set at least 10x
the stdlib; create and attach within 1.3x of the C API.
"""
import json
import os
import platform
import sys
import time
from multiprocessing import shared_memory as std

import pshm
from pshm import _shm

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 5
N_BLOCK = 300 if QUICK else 2000
N_LIST = 20000 if QUICK else 200000


def best(fn, n):
    """Best mean ns/op over ROUNDS rounds of n calls."""
    out = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        fn(n)
        out.append((time.perf_counter_ns() - t0) / n)
    return min(out)


def name(tag):
    return f"pshm_bench_py_{os.getpid()}_{tag}"


def create_cells():
    nm = name("blk")

    def py_create(mod, **kw):
        def run(n):
            for _ in range(n):
                s = mod.SharedMemory(nm, create=True, size=4096, **kw)
                s.close()
                s.unlink()
        return run

    rows = []
    for label, kw, lifetime in (("track=True", {}, _shm.LIFETIME_GROUP),
                                ("track=False", {"track": False}, _shm.LIFETIME_PERSIST)):
        c = min(_shm._bench_c(nm, N_BLOCK, 0, lifetime) for _ in range(ROUNDS))
        p = best(py_create(pshm, **kw), N_BLOCK)
        s = best(py_create(std), N_BLOCK)  # 3.11's stdlib has no track=
        rows.append((f"create+close+unlink ({label})", p, s, c))
    keep = pshm.SharedMemory(nm, create=True, size=4096, track=False)
    try:
        def attach(mod):
            def run(n):
                for _ in range(n):
                    mod.SharedMemory(nm).close()
            return run
        c = min(_shm._bench_c(nm, N_BLOCK, 1, 0) for _ in range(ROUNDS))
        rows.append(("attach+close", best(attach(pshm), N_BLOCK), best(attach(std), N_BLOCK), c))
        # the stdlib's attachers registered the block with its tracker
        # (gh-82300): take it back, or the tracker complains at exit
        from multiprocessing import resource_tracker
        resource_tracker.unregister("/" + nm, "shared_memory")
    finally:
        keep.close()
        keep.unlink()
    return rows


def list_cells():
    rows = []
    for label, value in (("int", 12345), ("float", 2.5), ("str", "hello")):
        lists = {"pshm": pshm.ShareableList([value] * 8, name=name("pl")),
                 "stdlib": std.ShareableList([value] * 8, name=name("sl"))}
        try:
            res = {}
            for k, sl in lists.items():
                def get(n, sl=sl):
                    for _ in range(n):
                        sl[3]

                def put(n, sl=sl):
                    for _ in range(n):
                        sl[3] = value
                res[k] = (best(get, N_LIST), best(put, N_LIST))
            rows.append((f"ShareableList get ({label})", res["pshm"][0], res["stdlib"][0], None))
            rows.append((f"ShareableList set ({label})", res["pshm"][1], res["stdlib"][1], None))
        finally:
            for sl in lists.values():
                sl.shm.close()
                sl.shm.unlink()
    return rows


def fmt(ns):
    return "-" if ns is None else (f"{ns / 1000:.1f} us" if ns >= 1000 else f"{ns:.0f} ns")


def main():
    rows = create_cells() + list_cells()
    table = []
    findings = []
    for op, p, s, c in rows:
        vs_std = s / p
        vs_c = None if c is None else p / c
        table.append([op, fmt(p), fmt(s), fmt(c), f"{vs_std:.1f}x", "-" if vs_c is None else f"{vs_c:.2f}x"])
        if c is None:
            findings.append(f"{op}: pshm {vs_std:.1f}x the stdlib (target 10x: "
                            f"{'met' if vs_std >= 10 else 'missed'})")
        else:
            findings.append(f"{op}: pshm takes {vs_c:.2f}x the C API's time (target 1.3x: "
                            f"{'met' if vs_c <= 1.3 else 'missed'}), {vs_std:.1f}x faster than the stdlib")
    cols = ["op", "pshm", "stdlib", "C API", "pshm speed-up over stdlib", "pshm time / C"]
    w = [max(len(str(r[i])) for r in table + [cols]) for i in range(len(cols))]
    for r in [cols] + table:
        print("  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)))
    for f in findings:
        print("-", f)
    if "--json" in sys.argv:
        out = sys.argv[sys.argv.index("--json") + 1]
        with open(out, "w") as f:
            json.dump({"bench": "python_shm", "title": "Python: SharedMemory and ShareableList against the stdlib",
                       "order": 60,
                       "summary": "Mean time per operation, best of %d rounds, pshm's Python module against "
                                  "multiprocessing.shared_memory and against the C API's own calls in the same "
                                  "process (bench/python/bench_shm.py)." % ROUNDS,
                       "versions": {"cpython": platform.python_version(), "pshm": pshm.__version__},
                       "tables": [{"title": "SharedMemory and ShareableList", "columns": cols, "rows": table}],
                       "findings": findings}, f, indent=1)


if __name__ == "__main__":
    main()
