#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_experiments.py - what each of the queue's guarantees costs, measured.

    bench/bench_experiments.py [--quick] [--json FILE] [--build DIR] [--runs N]

For every patch in bench/experiments/ (each removes or weakens one thing the
queue does for a README guarantee; its first lines say which), this builds
the library with the patch applied in DIR/experiments/<name> (a copy of the
tree), then runs bench_queue's pshm SPSC rows for the baseline and every
variant in interleaved runs (baseline, a, b, ..., baseline, a, b, ...), and
counts instructions per message on the fast path with callgrind when
valgrind is installed (build/bench/prof_queue). The result is a report
section (JSON, bench/report.py's format): the baseline's figures and each
variant's as a ratio, with what the removed code buys.

With --quick it only says it was skipped: building the variants takes
minutes. Not a test; the patched libraries are never installed or used
outside this measurement.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXP = os.path.join(HERE, "experiments")

# (json path, label, format) of the figures compared
FIGS = [
    (("pshm spsc zero-copy", "busy", "p50"), "busy p50 zero-copy (ns)", "%.0f", -1),
    (("pshm spsc zero-copy", "busy", "p99"), "busy p99 zero-copy (ns)", "%.0f", -1),
    (("pshm spsc copying", "busy", "p50"), "busy p50 copying (ns)", "%.0f", -1),
    (("pshm spsc zero-copy", "blocking", "p50"), "blocking p50 zero-copy (ns)", "%.0f", -1),
    (("pshm spsc zero-copy", "throughput", "64"), "64 B zero-copy (M msgs/s)", "%.2f", 1e6),
    (("pshm spsc copying", "throughput", "64"), "64 B copying (M msgs/s)", "%.2f", 1e6),
    (("pshm spsc zero-copy", "throughput", "16384"), "16 KiB zero-copy (GB/s)", "%.2f", 16384 / 1e9),
]


TTY = sys.stderr.isatty()


def progress(msg):
    """One line that rewrites itself on a terminal; plain lines otherwise."""
    if TTY:
        sys.stderr.write("\r\033[K[bench_experiments] " + msg)
        sys.stderr.flush()
    else:
        print("experiments: " + msg, file=sys.stderr)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def copy_tree(dst):
    """The source tree without build directories or git metadata."""
    def ignore(d, names):
        return [n for n in names if n.startswith("build") or n in (".git",)]
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)


def build_variant(name, patch, base_build, top):
    src = os.path.join(top, name)
    copy_tree(src)
    if patch:
        r = run(["patch", "-p1", "-s", "-i", patch], cwd=src)
        if r.returncode:
            return None, "patch does not apply: " + (r.stdout + r.stderr).strip()[:200]
    b = os.path.join(src, "build")
    r = run(["cmake", "-S", src, "-B", b, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
    if r.returncode == 0:
        r = run(["cmake", "--build", b, "--target", "bench_queue", "prof_queue", "-j", "2"])
    if r.returncode:
        return None, "build failed: " + (r.stdout + r.stderr).strip()[-200:]
    return os.path.join(b, "bench"), None


def get(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def measure(bindir, tmp, tag):
    out = os.path.join(tmp, tag + ".json")
    env = dict(os.environ, PSHM_BENCH_ONLY="pshm spsc zero-copy,pshm spsc copying",
               PSHM_BENCH_ROUNDS="1")
    r = run([os.path.join(bindir, "bench_queue"), "--quick", "--json", out], env=env,
            timeout=600)
    if r.returncode or not os.path.exists(out):
        return None
    with open(out) as f:
        return json.load(f).get("data", {})


def instructions(bindir, mode):
    """callgrind: instructions per produce+consume of a 64-byte message."""
    if not shutil.which("valgrind"):
        return None
    counts = []
    for n in (20000, 120000):
        r = run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                 os.path.join(bindir, "prof_queue"), mode, str(n)])
        refs = [l for l in r.stderr.splitlines() if "Collected" in l]
        if r.returncode or not refs:
            return None
        counts.append(int(refs[-1].split(":")[-1].strip().replace(",", "")))
    return (counts[1] - counts[0]) / 100000.0


def median(v):
    v = sorted(x for x in v if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def describe(patch):
    with open(patch) as f:
        head = []
        for line in f:
            if line.startswith(("diff ", "--- ")):
                break
            head.append(line.rstrip())
    return " ".join(x for x in head if x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("PSHM_BENCH_ROUNDS", "5")))
    a = ap.parse_args()
    rep = {"bench": "experiments", "order": 15,
           "title": "Queues: what each guarantee costs (patched builds, interleaved A/B)",
           "quick": int(a.quick), "rounds": a.runs, "tables": [], "findings": []}
    patches = sorted(p for p in os.listdir(EXP) if p.endswith(".patch")) if os.path.isdir(EXP) else []
    if a.quick:
        # the patches must still apply to the tree (a patch that no longer
        # does is found here, not in the next full run)
        stale = [p for p in patches
                 if run(["patch", "-p1", "-s", "--dry-run", "-i", os.path.join(EXP, p)],
                        cwd=ROOT).returncode != 0]
        rep["summary"] = ("Skipped in the quick run (building the patched variants takes "
                          "minutes): `make bench` or `bench/bench_experiments.py` runs it. "
                          "The %d patches were checked against the tree: %s." %
                          (len(patches), "patch does not apply: " + ", ".join(stale) +
                           " (rebase it on src/queue_ops.c)" if stale else "all apply"))
        for p in stale:
            rep["findings"].append("experiment **%s**: the patch no longer applies to the tree"
                                   % p[:-6])
        return write(a.json, rep)
    top = os.path.join(a.build, "bench", "experiments")
    if os.path.isdir(top):
        shutil.rmtree(top)
    os.makedirs(top)
    variants = [("baseline", None)] + [(p[:-6], os.path.join(EXP, p)) for p in patches]
    bins, why = {}, {}
    for name, patch in variants:
        progress("building %s" % name)
        d, err = build_variant(name, patch, a.build, top)
        if d:
            bins[name] = d
        else:
            why[name] = err
    if "baseline" not in bins:
        rep["summary"] = "The baseline did not build: %s" % why.get("baseline")
        return write(a.json, rep)
    runs = {n: [] for n in bins}
    for i in range(a.runs):
        for name in bins:
            progress("run %d/%d %s" % (i + 1, a.runs, name))
            runs[name].append(measure(bins[name], top, "%s-%d" % (name, i)))
    progress("callgrind")
    ins = {n: (instructions(bins[n], "spsc-zc"), instructions(bins[n], "spsc-copy")) for n in bins}
    if TTY:
        sys.stderr.write("\r\033[K")
    cols = ["variant", "instructions / msg zero-copy", "instructions / msg copying"] + \
        [f[1] for f in FIGS]
    rows, ratio_rows = [], []
    base = {}
    for name in bins:
        vals = []
        for path, _, fmt, scale in FIGS:
            v = median([get(r, path) for r in runs[name] if r])
            if v is not None and scale > 0:
                v = v * scale if scale < 1 else v / scale
            vals.append(v)
        if name == "baseline":
            base = dict(zip(range(len(vals)), vals), iz=ins[name][0], ic=ins[name][1])
        cells = [name]
        for v in ins[name]:
            cells.append("%.0f" % v if v is not None else "n/a")
        for (path, _, fmt, _), v in zip(FIGS, vals):
            cells.append(fmt % v if v is not None else "n/a")
        rows.append(cells)
        if name != "baseline":
            rc = [name + " / baseline"]
            for v, b in ((ins[name][0], base.get("iz")), (ins[name][1], base.get("ic"))):
                rc.append("%.2fx" % (v / b) if v and b else "n/a")
            for i, v in enumerate(vals):
                b = base.get(i)
                rc.append("%.2fx" % (v / b) if v and b else "n/a")
            ratio_rows.append(rc)
    rep["tables"].append({
        "title": "baseline and patched builds, pshm spsc (medians of %d interleaved runs)" % a.runs,
        "columns": cols, "rows": rows + [[r] for r in ["ratios to the baseline"]] + ratio_rows,
        "note": "each run is bench_queue --quick restricted to pshm spsc (one round: latency "
                "cells with their own references, throughput cells); instructions: callgrind, "
                "one process, produce + consume of a 64-byte message, including the 33 of the "
                "driver loop"})
    for name, patch in variants[1:]:
        rep["findings"].append("**%s** - %s" % (name, describe(patch)) +
                               ("" if name in bins else " (not measured: %s)" % why.get(name)))
    rep["summary"] = ("Each variant below is the library with one patch from bench/experiments/ "
                      "applied: it removes or weakens something the queue does for a README "
                      "guarantee, so the difference to the baseline is what that guarantee costs "
                      "on this machine. The variants are never shipped.")
    return write(a.json, rep)


def write(path, rep):
    text = json.dumps(rep, indent=1)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    for t in rep.get("tables", []):
        print(t["title"])
        for row in [t["columns"]] + t["rows"]:
            print("  " + " | ".join(row))
    for x in rep.get("findings", []):
        print("  " + x)
    if rep.get("summary"):
        print(rep["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
