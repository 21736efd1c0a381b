#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py - build the benchmark report from the bench programs' results.

    bench/report.py DIR [--readme README.md --link PREFIX [--report FILE]] [--label TEXT]

DIR (build/bench) holds one JSON file per bench program (bench_queue.json,
bench_sync.json, ...). This writes DIR/report.md and DIR/*.png (matplotlib)
and, with --readme, replaces the README's block between
"<!-- bench:begin -->" and "<!-- bench:end -->" with the main table and
links to the report and the plots (PREFIX: where they are, relative to the
README).

Adding a section (the hook for bench/python and any later program): write a
file DIR/<name>.json of this shape and it gets its own section, in "order":

    {"bench": "python", "title": "Python module against the stdlib", "order": 60,
     "summary": "markdown paragraph",
     "versions": {"cpython": "3.11.2"},
     "missing":  [{"peer": "numpy", "reason": "not installed"}],
     "tables":   [{"title": "...", "columns": ["op", "pshm", "stdlib", "ratio"],
                   "rows": [["get", "1.2 M/s", "0.3 M/s", "4.0x"]], "note": "..."}],
     "plots":    [{"file": "python_get.png", "kind": "bars", "title": "...",
                   "xlabel": "", "ylabel": "ops/s", "logx": 0, "logy": 1,
                   "series": [{"label": "pshm", "ref": 0, "x": [0], "y": [1.2e6]}]}],
     "findings": ["one markdown line per finding"]}

Also read: DIR/mpi/bench_mpi.json, the raw results bench/mpi/run.sh writes
("bench": "mpi" with "rma", "local" and "queue" lists instead of tables),
turned into a section here; the sections of bench/python/*.py ("bench"
starting with "python") are grouped under "Python against the stdlib".

Only "bench" is required. Plot kinds: "lines" (x against y, log axes as
asked; "ref": 1 draws a hardware reference dashed), "cdf" (x = values, y =
cumulative fraction), "bars" (one bar per series: its first y). Rows with a
single cell are sub-headings. A table with "main": 1 is the report's
headline and the one the README shows.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(results):
    """What the figures were measured on."""
    cpu, flags = "unknown", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    glibc = " ".join(platform.libc_ver()).strip() or sh(["ldd", "--version"]).split("\n")[0]
    m = {
        "CPU": cpu + (" (virtual machine)" if " hypervisor" in flags else ""),
        "CPUs online": str(os.cpu_count()),
        "kernel": platform.system() + " " + platform.release(),
        "C library": glibc,
        "compiler": sh(["cc", "--version"]).split("\n")[0],
        "Python": platform.python_version(),
    }
    try:
        import matplotlib
        m["matplotlib"] = matplotlib.__version__
    except ImportError:
        m["matplotlib"] = "not installed (apt-get install python3-matplotlib): no plots"
    versions = {}
    for r in results:
        versions.update(r.get("versions", {}))
    for k in sorted(versions):
        m[k] = versions[k]
    loads = [(r["bench"], r.get("loadavg_start", ""), r.get("loadavg_end", "")) for r in results
             if r.get("loadavg_start")]
    if loads:
        m["load average (start / end)"] = "; ".join(
            "%s %s / %s" % (b, " ".join(s.split()[:3]), " ".join(e.split()[:3])) for b, s, e in loads)
    cpus = {(r.get("cpu0"), r.get("cpu1")) for r in results if "cpu0" in r}
    if cpus:
        m["pinned to"] = ", ".join("cpu%s and cpu%s" % c for c in cpus if c[0] is not None)
    commit = sh(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short",
                 "HEAD"])
    if commit:
        m["pshm commit"] = commit
    return m


def md_table(t):
    cols = t["columns"]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join(
        ["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    for row in t["rows"]:
        if len(row) == 1 and len(cols) > 1:
            out.append("| **" + row[0] + "** |" + " |" * (len(cols) - 1))
        else:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    text = "\n".join(out)
    if t.get("note"):
        text += "\n\n" + t["note"] + "."
    return text


KERNEL = ("pipe", "unix socket", "posix mq")
REF_STYLES = ["--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]


def styles(series, plt):
    """One look per series: hardware references black and dashed, pshm in
    blues and greens, the peers in warm colours, the kernel's IPC grey."""
    cool = plt.get_cmap("winter")
    warm = plt.get_cmap("autumn")
    pshm = [s for s in series if s["label"].startswith("pshm")]
    kern = [s for s in series if s["label"].startswith(KERNEL)]
    peers = [s for s in series if not s.get("ref") and s not in pshm and s not in kern]
    out, nref = {}, 0
    for s in series:
        lab = s["label"]
        if s.get("ref"):
            out[lab] = dict(color="black", linestyle=REF_STYLES[nref % len(REF_STYLES)],
                            linewidth=1.3)
            nref += 1
        elif s in pshm:
            i = pshm.index(s)
            out[lab] = dict(color=cool(i / max(1, len(pshm) - 1)), linestyle="-", linewidth=2.2)
        elif s in peers:
            i = peers.index(s)
            out[lab] = dict(color=warm(i / max(1, len(peers))), linestyle="-", linewidth=1.6)
        else:
            i = kern.index(s)
            out[lab] = dict(color=str(0.35 + 0.2 * i), linestyle=":", linewidth=1.4)
    return out


def size_label(x, _pos=None):
    for unit, n in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if x >= n:
            return "%g %s" % (x / n, unit)
    return "%g B" % x


def plot(p, outdir):
    """Draw one plot spec; returns the file name, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return None
    series = [s for s in p.get("series", []) if s.get("y")]
    if not series:
        return None
    kind = p.get("kind", "lines")
    look = styles(series, plt)
    if kind == "cdf":
        fig, axes = plt.subplots(1, 2, figsize=(14, 6.2))
    else:
        fig, ax = plt.subplots(figsize=(11, 6.2))
        axes = [ax]
    if kind == "bars":
        ax = axes[0]
        labels = [s["label"] for s in series]
        vals = [s["y"][0] if s["y"][0] is not None else 0 for s in series]
        colors = [look[s["label"]]["color"] for s in series]
        ax.barh(range(len(vals)), vals, color=colors,
                hatch=None, edgecolor=["black" if s.get("ref") else "none" for s in series])
        ax.set_yticks(range(len(vals)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        if p.get("logy"):
            ax.set_xscale("log")
        ax.set_xlabel(p.get("ylabel", ""))
        ax.grid(True, axis="x", alpha=0.3)
    else:
        for s in series:
            pts = [(x, y) for x, y in zip(s["x"], s["y"]) if x is not None and y is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            st = look[s["label"]]
            if kind == "cdf":
                axes[0].step(xs, ys, where="post", label=s["label"], **st)
                tail = [(x, 1 - y) for x, y in pts if y < 1]
                if tail:
                    axes[1].step([t[0] for t in tail], [t[1] for t in tail], where="post", **st)
            else:
                axes[0].plot(xs, ys, marker=None if s.get("ref") else "o", markersize=3,
                             label=s["label"], **st)
        for ax in axes:
            if p.get("logx"):
                ax.set_xscale("log", base=2 if kind == "lines" else 10)
            ax.set_xlabel(p.get("xlabel", ""))
            ax.grid(True, which="both", alpha=0.3)
        if kind == "lines" and p.get("logx"):
            axes[0].xaxis.set_major_formatter(FuncFormatter(size_label))
        if p.get("logy"):
            axes[0].set_yscale("log")
        axes[0].set_ylabel(p.get("ylabel", ""))
        if kind == "cdf":
            axes[1].set_yscale("log")
            axes[1].set_ylim(1e-4, 1)
            axes[1].set_ylabel("fraction of messages slower (the tail)")
            axes[1].set_title("tail: 1 - CDF", fontsize=9)
        axes[0].legend(fontsize=7, loc="best", ncol=2 if len(series) > 10 else 1)
    axes[0].set_title(p.get("title", ""), fontsize=10)
    fig.tight_layout()
    name = p["file"]
    fig.savefig(os.path.join(outdir, name), dpi=110)
    plt.close(fig)
    return name


def fmt_us(sec):
    return "%.2f" % (sec * 1e6) if isinstance(sec, (int, float)) and sec > 0 else "n/a"


def fmt_ratio(a, b):
    ok = all(isinstance(x, (int, float)) and x > 0 for x in (a, b))
    return "%.2fx" % (a / b) if ok else "n/a"


def size_text(n):
    return size_label(n).replace(".0 ", " ")


def from_mpi(r):
    """bench/mpi/run.sh's raw results -> a report section."""
    if r.get("tables") or not any(k in r for k in ("rma", "local", "queue")):
        return r
    out = dict(r)
    out.setdefault("title", "pshm over MPI: %s ranks on %s pseudo-nodes of this machine" % (
        r.get("ranks", "?"), r.get("nodes", "?")))
    out.setdefault("order", 50)
    out.setdefault("summary", "bench/mpi/run.sh (bench_mpi under mpirun, Open MPI's shared-memory "
                   "transport between pseudo-nodes of one machine): pshm's MPI layer against "
                   "plain MPI calls doing the same job. Best of the program's rounds; ratios are "
                   "pshm / MPI (time: lower is better for pshm, rate: higher).")
    tables = []
    def paired(x, k):
        v = x.get(k)
        return "%.2fx" % v if v else "n/a"

    rows = [[size_text(x["size"]),
             fmt_us(x.get("pshm_get_s")), fmt_us(x.get("create_get_s")),
             fmt_ratio(x.get("pshm_get_s"), x.get("create_get_s")), paired(x, "paired_create_get"),
             fmt_us(x.get("shm_get_s")), fmt_us(x.get("mpi_get_s")),
             fmt_us(x.get("pshm_put_s")), fmt_us(x.get("create_put_s")),
             fmt_ratio(x.get("pshm_put_s"), x.get("create_put_s")), paired(x, "paired_create_put"),
             fmt_us(x.get("shm_put_s")), fmt_us(x.get("mpi_put_s"))]
            for x in r.get("rma", [])]
    if rows:
        tables.append({"title": "remote array access (us per operation)",
                       "columns": ["size", "pshm get", "Win_create get", "pshm / Win_create",
                                   "paired", "/dev/shm window get", "Win_allocate get",
                                   "pshm put", "Win_create put", "pshm / Win_create", "paired",
                                   "/dev/shm window put", "Win_allocate put"],
                       "rows": rows,
                       "note": "pshm's slab window is MPI_Win_create over memory that exists "
                               "(the node's pshm block); so is the 'Win_create' baseline (over "
                               "malloc'd memory) and the '/dev/shm window' one (over a /dev/shm "
                               "mapping, without pshm): on one machine Open MPI moves their "
                               "bytes with the kernel's single copy, as a network would with "
                               "its own transfer. MPI_Win_allocate lets Open MPI place the "
                               "window in shared memory it maps into both ranks, a direct "
                               "load/store path that only exists inside one machine: shown, "
                               "but the 1.1x target is against Win_create. 'pshm / Win_create' "
                               "divides the best rounds; 'paired' is the median over the rounds "
                               "of the ratio within each round (the two measured milliseconds "
                               "apart), which a drift of the machine's memory speed between "
                               "rounds does not move"})
    rows = [[size_text(x["size"]), "%.1f" % (x["view_s"] * 1e9), "%.1f" % (x["copy_s"] * 1e9)]
            for x in r.get("local", []) if x.get("view_s") and x.get("copy_s")]
    if rows:
        tables.append({"title": "local reads of a distributed array (ns per read)",
                       "columns": ["size", "view (zero-copy)", "get (copy)"], "rows": rows})
    def rate(v):
        return "%.0f" % v if v else "n/a"

    rows, prows = [], []
    ring_mib, from_slot = 8, None
    for x in r.get("queue", []):
        b, e, m = x.get("bridge_msgs_per_s"), x.get("bridge_early_msgs_per_s"), x.get("mpi_msgs_per_s")
        g, c = x.get("mpi_ring_msgs_per_s"), x.get("bridge_staged_msgs_per_s")
        rows.append([size_text(x["size"]), rate(b), rate(e), rate(c), rate(m),
                     rate(g), fmt_ratio(b, m), fmt_ratio(e, m), fmt_ratio(c, m),
                     fmt_ratio(b, g), fmt_ratio(c, g),
                     str(x.get("messages", ""))])
        pc, pl, ec, el, ma = (x.get("pipeline_msgs_per_s"), x.get("pipeline_zero_copy_msgs_per_s"),
                              x.get("embedded_msgs_per_s"), x.get("embedded_zero_copy_msgs_per_s"),
                              x.get("mpi_app_msgs_per_s"))
        if pc and ma:
            prows.append([size_text(x["size"]), rate(pc), rate(pl), rate(ec), rate(el), rate(ma),
                          paired(x, "paired_pipeline"), paired(x, "paired_pipeline_zero_copy"),
                          paired(x, "paired_embedded"), paired(x, "paired_embedded_zero_copy")])
            ring_mib, from_slot = x.get("ring_mib", 8), x.get("large_from_slot")
    if rows:
        tables.append({"title": "a queue across nodes: the bridge alone against MPI_Send/MPI_Recv (messages/s)",
                       "columns": ["size", "bridge (window)", "bridge (release_early)",
                                   "bridge (large from a copy)",
                                   "MPI_Send/Recv, one buffer", "MPI_Send/Recv, rings' footprint",
                                   "window / MPI one buffer", "early / MPI one buffer",
                                   "copy / MPI one buffer", "window / MPI rings' footprint",
                                   "copy / MPI rings' footprint", "messages"],
                       "rows": rows,
                       "note": "A backlog: both of the bridge's rings hold the whole stream, "
                               "written before the timing (the source filled, the destination "
                               "warmed by a lap), so the bridge reads and writes memory that is "
                               "not in cache. Large messages (128 KiB and up) go straight from "
                               "their source slots by default, or from a copy "
                               "(large_from_slot = 0; release_early too); "
                               "'one buffer' sends from and receives into one reused buffer, "
                               "'rings' footprint' message i at i x size in buffers of the rings' "
                               "size"})
    if prows:
        tables.append({"title": "a pipeline across nodes: producer -> queue -> bridge -> queue -> "
                                "consumer, against MPI_Send/MPI_Recv with the same application "
                                "work (messages/s; ratios paired)",
                       "columns": ["size", "threads: batches", "threads: large on their own",
                                   "embedded: batches", "embedded: large on their own",
                                   "MPI_Send/Recv", "threads b / MPI", "threads l / MPI",
                                   "embedded b / MPI", "embedded l / MPI"],
                       "rows": prows,
                       "note": "Rings of about %d MiB; the producer writes each message in place "
                               "(its sequence number), the consumer reads it in place; MPI's "
                               "sender writes the number into its buffer, the receiver checks it. "
                               "'threads': the application's producer and consumer are threads "
                               "beside the bridge's endpoints (four threads on this machine's "
                               "CPUs); 'embedded': each endpoint rank produces or consumes "
                               "itself, polling the bridge (pshm_mpi_bridge_poll), one thread a "
                               "rank as MPI's. Large messages sent %s. Ratios: the median over "
                               "the rounds of the ratio within each round" % (
                                   ring_mib, "straight from their slots" if from_slot != 0
                                   else "from a copy")})
    out["tables"] = tables
    return out


def load(d):
    results = []
    paths = sorted(glob.glob(os.path.join(d, "*.json"))) + sorted(
        glob.glob(os.path.join(d, "mpi", "*.json")))
    for path in paths:
        try:
            with open(path) as f:
                r = json.load(f)
        except (OSError, ValueError) as e:
            print("report: %s: %s (left out)" % (path, e), file=sys.stderr)
            continue
        if isinstance(r, dict) and r.get("bench"):
            if r["bench"] == "mpi":
                r = from_mpi(r)
            r["_file"] = os.path.relpath(path, d)
            results.append(r)
    results.sort(key=lambda r: (r.get("order", 100), r["bench"]))
    return results


def main_table(results):
    for r in results:
        for t in r.get("tables", []):
            if t.get("main"):
                return r, t
    return None, None


def _num(d, *path):
    for k in path:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def references(results):
    """Markdown: which hardware reference is the limit of the same work, with
    this run's figures (from bench_queue's "data"), for the main table."""
    q = next((r for r in results if r["bench"] == "queue" and r.get("data")), None)
    if not q:
        return []
    d, out = q["data"], []
    fixed = [(_num(d, k, "busy", "p50"), k) for k in (
        "raw ping-pong, flags in one line", "raw ping-pong, a flag per line",
        "raw ping-pong, one line, 4 pauses a poll")]
    fixed = [x for x in fixed if x[0]]
    r1 = _num(d, "raw ring, one-line records (48 B), index published", "busy", "p50")
    r2 = _num(d, "raw ring, 64 B + header (2 lines), index published", "busy", "p50")
    pz = d.get("pshm spsc zero-copy", {}).get("busy", {})
    p48 = d.get("pshm spsc zero-copy, 48 B: record = one line", {}).get("busy", {})
    if fixed and r1 and r2 and pz.get("vs_ring") and pz.get("ring_vs_best"):
        best, which = min(fixed)
        out.append(
            "**Busy latency: a fixed line against a ring.** The raw ping-pongs hand a flag "
            "back and forth in one fixed cache line; a queue cannot: every message lands in "
            "the next slot of a ring, a line the other side last touched a lap ago. The raw "
            "ring rows measure that on the same CPUs (pshm's depth and record size, a sequence "
            "word per slot, release stores, no checks, no crash records): here %.0f ns (one-line "
            "records) and %.0f ns (64 B + header) against %.0f ns for the best fixed-line "
            "ping-pong (%s) in their own cells; within pshm's cells, whose references are taken "
            "a moment before on the same CPUs, the two-line ring is %.2fx the best fixed line. "
            "pshm spsc zero-copy is %.2fx the best fixed line "
            "(\"vs raw\") but %.2fx the ring of the same record size (\"p50 vs ring raw\"; 48 B, "
            "one line: %s). %s (bench/README.md, \"Where the nanoseconds go\", has the profile and "
            "what each remaining cost buys)."
            % (r1, r2, best, which, pz["ring_vs_best"], pz.get("vs_raw", 0), pz["vs_ring"],
               "%.2fx" % p48["vs_ring"] if p48.get("vs_ring") else "not run",
               "In this run most of the gap to the 1.10x target is the ring, which any queue is, "
               "not pshm's code" if pz["ring_vs_best"] - 1 > pz["vs_ring"] - 1 else
               "In this run the ring itself cost less than pshm's own path on top of it"))
    sizes = sorted({int(k) for v in d.values() for k in (v.get("throughput") or {})})
    size = 1048576 if 1048576 in sizes else (sizes[-1] if sizes else None)

    def gbs(label):
        v = _num(d, label, "throughput", str(size))
        return v * size / 1e9 if v else None

    hz, hc = gbs("raw hand-off, read in place"), gbs("raw hand-off, copied out")
    mh, mc = gbs("memcpy, one thread, same bytes (hot)"), gbs("memcpy, one thread, cold source")
    pzt, pct = gbs("pshm spsc zero-copy"), gbs("pshm spsc copying")
    if size and hz and mh and pzt:
        vz = _num(d, "pshm spsc zero-copy", "vs_hand", str(size))
        vc = _num(d, "pshm spsc copying", "vs_hand", str(size))
        out.append(
            "**Throughput: a hand-off against a memcpy (%s).** Moving a message is one core "
            "writing each byte into shared memory and the other core reading it: every cache "
            "line crosses between the two cores (through L3 or memory once the ring outgrows "
            "L2), plus a flag a message. The raw hand-off does exactly that and nothing more "
            "(a ring of the same depth, one buffer, a flag a slot): it is the limit of the same "
            "work, and \"vs hand-off\" is taken against it (%.2f GB/s read in place, %s copied "
            "out here). A memcpy on one thread moves nothing between cores: %.2f GB/s on the "
            "same bytes again and again (hot, in that core's cache), %s from a cold source. So "
            "the hand-off itself is %.2fx the hot memcpy: that is what crossing between cores "
            "costs, on any queue (when the VM puts the two CPUs on hyper-threads of one core, the "
            "lines never leave that core's cache and the hand-off comes near the memcpy). pshm "
            "spsc zero-copy moves %.2f GB/s: %s the hand-off, %.2fx "
            "the hot memcpy; copying %s GB/s, %s the hand-off."
            % (size_text(size), hz, "%.2f GB/s" % hc if hc else "n/a", mh,
               "%.2f GB/s" % mc if mc else "n/a", hz / mh, pzt,
               "%.2fx" % vz if vz else "n/a", pzt / mh, "%.2f" % pct if pct else "n/a",
               "%.2fx" % vc if vc else "n/a"))
    return out


PYTHON_TITLE = "Python against the stdlib"
PYTHON_INTRO = ("The `pshm` Python module against what the standard library offers for the same "
                "job (bench/python/*.py, run by scripts/bench.sh when `import pshm` works).")


def build(d, label):
    results = load(d)
    if not results:
        print("report: no results in %s" % d, file=sys.stderr)
        return None
    quick = any(r.get("quick") for r in results)
    rounds = sorted({r.get("rounds") for r in results if r.get("rounds")})
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    m = machine(results)
    out = ["# pshm benchmark report", ""]
    out.append("%s; %s run%s. Each bench program ran its systems in interleaved rounds "
               "(%s), every figure is the median over the rounds with its min-max range where "
               "shown, and every ratio is taken within a round against the reference named in "
               "its column." % (label, "a quick (`QUICK=1`)" if quick else "a full", "",
                                "rounds: " + ", ".join(str(x) for x in rounds) if rounds else "-"))
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    out += ["| %s | %s |" % (k, v) for k, v in m.items()]
    out += ["", "## How to reproduce", "",
            "    git clone <pshm> && cd pshm",
            "    make bench%s        # installs the peers (Debian 12, as root), builds, runs, "
            "writes build/bench/report.md" % (" QUICK=1" if quick else ""),
            "",
            "`make bench QUICK=1` is the quick version (fewer rounds, sizes and samples, no "
            "experiments); `make bench PUBLISH=1` also copies the report to bench/results/ and "
            "rewrites the README's figures. Each program also runs alone, e.g. "
            "`build/bench/bench_queue [--quick] [--json F] [latency|throughput]`; "
            "`PSHM_BENCH_ROUNDS=n` sets the rounds, `PSHM_BENCH_ONLY=pshm,Boost` picks systems "
            "(bench/README.md has the rest). The two processes of every measurement are pinned "
            "to the first two CPUs the bench may use.", ""]
    missing = [(r.get("title", r["bench"]), x["peer"], x["reason"]) for r in results
               for x in r.get("missing", [])]
    if missing:
        out += ["## Not measured in this run", ""]
        seen = set()
        for title, peer, reason in missing:
            if (peer, reason) in seen:
                continue
            seen.add((peer, reason))
            out.append("- %s: **%s** - %s" % (title, peer, reason))
        out.append("")
    r0, t0 = main_table(results)
    if t0:
        out += ["## Main table", "", "### " + t0["title"], "", md_table(t0), ""]
    refs = references(results)
    if refs:
        out += ["### Which reference is the limit of the same work", ""]
        for x in refs:
            out += [x, ""]
    python_said = False
    for r in results:
        h = "##"
        if r["bench"].startswith("python"):
            if not python_said:
                out += ["## " + PYTHON_TITLE, "", PYTHON_INTRO, ""]
                python_said = True
            h = "###"
        if r.get("title") or r.get("summary") or r.get("tables") or r.get("plots"):
            out += [h + " " + r.get("title", r["bench"]), ""]
        if r.get("summary"):
            out += [r["summary"], ""]
        for t in r.get("tables", []):
            if t is t0:
                continue
            out += [h + "# " + t["title"], "", md_table(t), ""]
        for p in r.get("plots", []):
            f = plot(p, d)
            if f:
                out += ["![%s](%s)" % (p.get("title", f), f), ""]
            else:
                out += ["(plot %s not drawn: matplotlib missing or no data)" % p.get("file"), ""]
        if r.get("findings"):
            out += [h + "# Findings", ""] + ["- " + x for x in r["findings"]] + [""]
    out += ["---", "Generated %s by bench/report.py from %s." % (
        now, ", ".join(r["_file"] for r in results)), ""]
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(out))
    return results, t0, m


def readme(path, link, label, results, t0, report=None):
    """Replace the README's bench block with the main table and the plots.
    link: where the plots are, report: the report (both relative to the
    README; report defaults to LINK/report.md)."""
    report = report or link + "/report.md"
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        print("report: %s has no %s ... %s block" % (path, begin, end), file=sys.stderr)
        return False
    plots = [p for r in results for p in r.get("plots", [])
             if os.path.exists(os.path.join(os.path.dirname(path), link, p["file"]))]
    body = [begin, "",
            "Figures from `make bench` on %s ([full report](%s), with the machine, "
            "every table, the run-to-run ranges and how to reproduce it). Medians of "
            "interleaved rounds; each ratio is against the reference its column names, "
            "measured in the same round." % (label, report), ""]
    if t0:
        body += [md_table(t0), ""]
    r0 = next((r for r in results if any(t is t0 for t in r.get("tables", []))), None)
    if r0 and r0.get("findings"):
        body += ["Findings of that run (every cell where a peer is ahead of pshm, and the "
                 "targets):", ""] + ["- " + x for x in r0["findings"]] + [""]
    if plots:
        body += ["Plots: " + ", ".join("[%s](%s/%s)" % (p.get("title", p["file"]).split(" (")[0],
                                                         link, p["file"]) for p in plots), ""]
    body.append(end)
    text = text[:text.index(begin)] + "\n".join(body) + text[text.index(end) + len(end):]
    # the other benches' blocks: their tables marked "readme"
    for r in results:
        b, e = "<!-- bench:%s:begin -->" % r["bench"], "<!-- bench:%s:end -->" % r["bench"]
        if b not in text or e not in text:
            continue
        anchor = r.get("title", r["bench"]).lower()
        anchor = re.sub(r"[^a-z0-9 -]", "", anchor).replace(" ", "-")
        part = [b, "", "From `make bench` on %s ([report](%s#%s)); medians of interleaved "
                "rounds, each ratio against the reference its table names:" % (label, report, anchor), ""]
        for t in r.get("tables", []):
            if t.get("readme"):
                part += ["**" + t["title"] + "**", "", md_table(t), ""]
        part.append(e)
        text = text[:text.index(b)] + "\n".join(part) + text[text.index(e) + len(e):]
    with open(path, "w") as f:
        f.write(text)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--readme")
    ap.add_argument("--link", default="bench/results")
    ap.add_argument("--label")
    ap.add_argument("--report", help="the report's path relative to the README "
                    "(default LINK/report.md)")
    a = ap.parse_args()
    label = a.label or os.environ.get("PSHM_BENCH_LABEL") or "this machine, %s" % (
        datetime.date.today().isoformat())
    built = build(a.dir, label)
    if not built:
        return 1
    results, t0, _ = built
    print("report: %s" % os.path.join(a.dir, "report.md"))
    if a.readme and not readme(a.readme, a.link, label, results, t0, a.report):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
