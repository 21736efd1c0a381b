#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh BUILD - the scenario pshm exists for: a producer process puts data in
# a named block, a consumer process attaches by name and uses it, and once
# they are done the block is gone from /dev/shm.
set -euo pipefail
B=${1:-build}
name="pshm_demo_$$"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# start NAME PROGRAM ARGS...: run PROGRAM with its stdin and stdout on FIFOs
# (descriptors $NAME_in, $NAME_out; pid $NAME_pid). Not a coproc: bash drops
# a coproc's descriptors as soon as it is reaped, which races with reading
# its last line.
start() {
    local v=$1; shift
    mkfifo "$tmp/$v.in" "$tmp/$v.out"
    "$@" <"$tmp/$v.in" >"$tmp/$v.out" &
    printf -v "${v}_pid" '%s' "$!"
    local fin fout
    exec {fin}>"$tmp/$v.in" {fout}<"$tmp/$v.out"
    printf -v "${v}_in" '%s' "$fin"
    printf -v "${v}_out" '%s' "$fout"
}

echo "== raw block: producer -> consumer"
start PROD "$B/examples/producer" "$name" 16
read -r line <&"$PROD_out"
echo "$line"
"$B/pshm" info "$name" 2>/dev/null | sed 's/^/   pshm info: /' || true
"$B/examples/consumer" "$name"
exec {PROD_in}>&-           # producer's stdin closes: it closes the block
read -r line <&"$PROD_out" && echo "$line"
exec {PROD_out}<&-
wait "$PROD_pid"
if [ -e "/dev/shm/$name" ]; then
    echo "demo: FAIL: /dev/shm/$name is still there" >&2
    exit 1
fi
echo "after: /dev/shm/$name is gone (AUTO lifetime: the last holder closed it)"

echo
echo "== array block: producer -> consumer (C) -> numpy, one copy of the data"
aname="pshm_demo_array_$$"
start APROD "$B/examples/array_producer" "$aname" 1000 3
read -r line <&"$APROD_out"
echo "$line"
"$B/pshm" ls 2>/dev/null | awk -v n="$aname" 'NR == 1 || $1 == n' | sed 's/^/   pshm ls: /' || true
"$B/examples/array_consumer" "$aname"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 - "$aname" <<'PY'
import sys
import numpy as np
m = np.load("/dev/shm/" + sys.argv[1], mmap_mode="r")  # maps the block in place
order = "Fortran" if m.flags.f_contiguous and not m.flags.c_contiguous else "C"
print("python:         '%s' is %s %s, %s order: column sums [%s], sum %.1f"
      % (sys.argv[1], m.dtype.str, m.shape, order, ", ".join("%.1f" % s for s in m.sum(axis=0)), m.sum()))
PY
else
    echo "python:         no numpy for /usr/bin/python3: skipped"
fi
exec {APROD_in}>&-          # producer's stdin closes: it closes the array
read -r line <&"$APROD_out" && echo "$line"
exec {APROD_out}<&-
wait "$APROD_pid"
if [ -e "/dev/shm/$aname" ]; then
    echo "demo: FAIL: /dev/shm/$aname is still there" >&2
    exit 1
fi
echo "after: /dev/shm/$aname is gone (AUTO lifetime: the last holder closed it)"

echo
echo "== queue: producer -> consumer, 100000 variable-size messages, zero-copy"
# its queue is named queue_pipeline_<its pid>: look for that name only
"$B/examples/queue_pipeline" 100000 &
qpid=$!
wait "$qpid"
if [ -e "/dev/shm/queue_pipeline_$qpid" ]; then
    echo "demo: FAIL: the queue's block is still in /dev/shm" >&2
    exit 1
fi
echo "after: the queue's block is gone (AUTO lifetime: both sides closed it)"

echo
echo "== Python: a producer process and a consumer process share a numpy array (import pshm)"
if [ -d "$B/python/pshm" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    PYTHONPATH="$B/python" /usr/bin/python3 examples/python/producer_consumer.py
else
    echo "python:         pshm's Python module or numpy is missing: skipped"
fi
