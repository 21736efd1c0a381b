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

# The peers, one at a time: one that cannot be had is reported and skipped.
for peer in iceoryx boost zmq matplotlib; do
    scripts/deps.sh "$peer" >/dev/null 2>&1 || {
        echo "bench: $peer is not installed; the report will say so. To install it:" >&2
        scripts/deps.sh "$peer" 2>&1 | sed -n 's/^ *apt-get/  apt-get/p' | tail -n 1 >&2
    }
done
${MAKE:-make} --no-print-directory build BUILD="$build" || exit 1

out="$build/bench"
mkdir -p "$out"
rm -f "$out"/bench_*.json "$out"/*.png "$out"/report.md
# what the benchmarks create is named pshm_bench_* (iceoryx's RouDi:
# iceoryx_mgmt and a segment named after the user in /dev/shm, its sockets
# and locks in /tmp); other files there are not ours to judge
ours() {
    ls /dev/shm /dev/mqueue /tmp 2>/dev/null |
        grep -E "pshm_bench|^iceoryx_mgmt$|^roudi(\.lock)?$|^iox-unique-roudi\.lock$|^$(id -un)$" | sort
}
shm_before=$(ours)
status=0
for prog in "$out"/bench_* bench/bench_*.py bench/python/bench_*.py; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    case "$prog" in *.json | *.png | *.md) continue ;; esac
    name=$(basename "$prog")
    name=${name%.py}
    echo "== $name" >&2
    case "$prog" in
    *.py) PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$prog" $quick --json "$out/$name.json" ;;
    *) "$prog" $quick --json "$out/$name.json" ;;
    esac || { echo "bench: $name failed" >&2; status=1; }
done
shm_after=$(ours)
left=$(printf '%s\n' "$shm_after" | grep -vxF -e "$shm_before" -e '' )
if [ -n "$left" ]; then
    echo "bench: left behind in /dev/shm, /dev/mqueue or /tmp:" $left >&2
    status=1
fi

if [ "$publish" = 1 ]; then
    mkdir -p bench/results
    rm -f bench/results/*.png bench/results/*.json bench/results/report.md
    "$PYTHON" bench/report.py "$out" || status=1
    cp "$out"/report.md "$out"/*.png "$out"/*.json bench/results/ 2>/dev/null
    "$PYTHON" bench/report.py bench/results --readme README.md --link bench/results || status=1
else
    "$PYTHON" bench/report.py "$out" || status=1
fi
exit $status
