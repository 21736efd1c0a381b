#!/bin/sh
# SPDX-License-Identifier: MIT
# bench.sh - what `make bench` runs: install the peers pshm is compared with
# (as the test dependencies are: apt-get as root, else the command to run),
# build, run every bench program with --json, and build the report.
#
#   scripts/bench.sh BUILD [--quick] [--publish]
#
# Results: BUILD/bench/report.md, BUILD/bench/*.png, BUILD/bench/*.json.
# --publish also copies them to bench/results/ and rewrites the README's
# figures block from them (PSHM_BENCH_LABEL names the run, e.g.
# "a quiet 16-core Xeon, 2026-12-01").
#
# Every executable BUILD/bench/bench_* and every script bench/bench_*.py is
# run as `PROGRAM [--quick] --json BUILD/bench/NAME.json`; a program that
# writes a file in bench/report.py's format there gets its report section.
# So is every bench/python/bench_*.py (with PSHM_BUILD=BUILD, so that it
# imports BUILD/python/pshm), if `import pshm` works; if it does not, the
# report says so. A full run (not --quick) also runs bench/mpi/run.sh when
# bench_mpi was built (MPI found) and mpirun is there: its
# BUILD/bench/mpi/bench_mpi.json joins the report.
#
# PSHM_BENCH_SKIP=experiments,mpi leaves programs out (names without bench_).
#
# --publish: the report goes to bench/results/DATE-HOST.md, its plots and
# JSON to bench/results/DATE-HOST/, and the README's figure blocks are
# rewritten from it, linking that report.
set -u
build=${1:?usage: scripts/bench.sh BUILD [--quick] [--publish]}
shift
quick=""
publish=0
for a in "$@"; do
    case "$a" in
    --quick) quick=--quick ;;
    --publish) publish=1 ;;
    *) echo "bench.sh: unknown option $a" >&2; exit 2 ;;
    esac
done
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1

# The peers: all at once (each deps.sh call checks the test dependencies
# too, 2 s), then one at a time if that failed: one that cannot be had is
# reported and skipped.
scripts/deps.sh iceoryx boost zmq matplotlib >/dev/null 2>&1 ||
    for peer in iceoryx boost zmq matplotlib; do
        scripts/deps.sh "$peer" >/dev/null 2>&1 || {
            echo "bench: $peer is not installed; the report will say so. To install it:" >&2
            scripts/deps.sh "$peer" 2>&1 | sed -n 's/^ *apt-get/  apt-get/p' | tail -n 1 >&2
        }
    done
t_build=$(date +%s)
if [ -n "$quick" ]; then
    # the bench programs and the Python module only: a clean clone's quick
    # run stays short (a configured RelWithDebInfo tree is not configured
    # again: cmake --build does that itself when a CMakeLists.txt changed)
    { grep -qx 'CMAKE_BUILD_TYPE:STRING=RelWithDebInfo' "$build/CMakeCache.txt" 2>/dev/null ||
        cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; } &&
        pytargets=$(sed -n 's/^\(pshm_py_[a-z_]*\): .*/\1/p' "$build/Makefile" 2>/dev/null | sort -u) &&
        cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target bench_programs $pytargets -- --no-print-directory >/dev/null ||
        exit 1
else
    ${MAKE:-make} --no-print-directory build BUILD="$build" || exit 1
fi

out="$build/bench"
mkdir -p "$out"
rm -f "$out"/bench_*.json "$out"/*.png "$out"/report.md "$out"/run.json "$out"/mpi/bench_mpi*.json
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
t_run=$(date +%s)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
# what the benchmarks create is named pshm_bench_* (iceoryx's RouDi:
# iceoryx_mgmt and a segment named after the user in /dev/shm, its sockets
# and locks in /tmp); other files there are not ours to judge, nor is a
# pshm_bench_<pid>_* whose process still runs (another user's bench: ours
# have all ended when this is asked)
ours() {
    ls /dev/shm /dev/mqueue /tmp 2>/dev/null |
        grep -E "pshm_bench|^iceoryx_mgmt$|^roudi(\.lock)?$|^iox-unique-roudi\.lock$|^$(id -un)$" |
        while read -r f; do
            pid=$(printf '%s\n' "$f" | sed -n 's/^pshm_bench_\([0-9][0-9]*\)_.*/\1/p')
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
            printf '%s\n' "$f"
        done | sort
}
shm_before=$(ours)
status=0
for prog in "$out"/bench_* bench/bench_*.py; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    case "$prog" in *.json | *.png | *.md) continue ;; esac
    name=$(basename "$prog")
    name=${name%.py}
    case ",${PSHM_BENCH_SKIP:-}," in *",${name#bench_},"*)
        echo "== $name: skipped (PSHM_BENCH_SKIP)" >&2; continue ;;
    esac
    echo "== $name" >&2
    t_prog=$(date +%s)
    case "$prog" in
    *.py) PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$prog" $quick --json "$out/$name.json" ;;
    *) "$prog" $quick --json "$out/$name.json" ;;
    esac || { echo "bench: $name failed" >&2; status=1; }
    echo "== $name: $(($(date +%s) - t_prog)) s" >&2
done

# Python against the stdlib: bench/python/*, with the module just built
PSHM_BUILD=$(cd "$build" && pwd)
export PSHM_BUILD
pyprogs=$(ls bench/python/bench_*.py 2>/dev/null)
if [ -n "$pyprogs" ]; then
    if PYTHONPATH="$PSHM_BUILD/python${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c 'import pshm' 2>/dev/null; then
        for prog in $pyprogs; do
            name=$(basename "$prog" .py)
            echo "== $name" >&2
            t_prog=$(date +%s)
            PYTHONPATH="$PSHM_BUILD/python${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$prog" $quick --json "$out/$name.json" ||
                { echo "bench: $name failed" >&2; status=1; }
            echo "== $name: $(($(date +%s) - t_prog)) s" >&2
        done
    else
        echo "bench: import pshm fails (build/python not built?): the Python benchmarks are not run" >&2
        printf '{"bench": "python", "order": 60, "missing": [{"peer": "the pshm Python module", "reason": "import pshm failed with %s and PSHM_BUILD=%s: bench/python/*.py not run"}]}\n' \
            "$PYTHON" "$PSHM_BUILD" >"$out/bench_python_missing.json"
    fi
fi

# pshm over MPI (long: full runs only)
case ",${PSHM_BENCH_SKIP:-}," in *,mpi,*) skip_mpi=1 ;; *) skip_mpi=0 ;; esac
if [ -z "$quick" ] && [ "$skip_mpi" = 0 ] && [ -x "$out/mpi/bench_mpi" ] && command -v mpirun >/dev/null 2>&1; then
    echo "== bench_mpi (bench/mpi/run.sh)" >&2
    PSHM_MPI_TIMEOUT=${PSHM_MPI_TIMEOUT:-600} bench/mpi/run.sh "$build" --json "$out/mpi/bench_mpi.json" >&2 ||
        { echo "bench: bench/mpi/run.sh failed" >&2; status=1; }
fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
t_end=$(date +%s)
echo "bench: build $((t_run - t_build)) s, programs $((t_end - t_run)) s, load average $load_start at the start, $load_end at the end" >&2
printf '{"bench": "run", "order": 1, "loadavg_start": "%s", "loadavg_end": "%s", "started": "%s", "ended": "%s", "build_s": %s, "programs_s": %s}\n' \
    "$load_start" "$load_end" "$started" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$((t_run - t_build))" "$((t_end - t_run))" >"$out/run.json"
shm_after=$(ours)
left=$(printf '%s\n' "$shm_after" | grep -vxF -e "$shm_before" -e '' )
if [ -n "$left" ]; then
    echo "bench: left behind in /dev/shm, /dev/mqueue or /tmp:" $left >&2
    status=1
fi

if [ "$publish" = 1 ]; then
    stem="$(date -u +%Y-%m-%d)-$(hostname -s 2>/dev/null || hostname)"
    : "${PSHM_BENCH_LABEL:=$(hostname -s 2>/dev/null || hostname) ($(nproc) CPUs), $started to $(date -u '+%H:%M UTC'), load average $load_start at the start and $load_end at the end (1, 5, 15 min; a machine shared with other jobs)}"
    export PSHM_BENCH_LABEL
    dest="bench/results/$stem"
    rm -rf "$dest" "$dest.md"
    mkdir -p "$dest/mpi"
    cp "$out"/*.json "$dest"/ 2>/dev/null
    cp "$out"/mpi/*.json "$dest"/mpi/ 2>/dev/null
    rmdir "$dest/mpi" 2>/dev/null
    "$PYTHON" bench/report.py "$dest" --readme README.md --link "$dest" --report "$dest.md" || status=1
    # the report beside its directory, its plots linked into it
    sed "s#](\([A-Za-z0-9_.-]*\.png\))#]($stem/\1)#g" "$dest/report.md" >"$dest.md" && rm -f "$dest/report.md"
    "$PYTHON" bench/report.py "$out" >/dev/null || status=1
    echo "bench: published $dest.md" >&2
else
    "$PYTHON" bench/report.py "$out" || status=1
fi
exit $status
