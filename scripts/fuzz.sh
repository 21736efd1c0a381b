#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz.sh BUILD SECONDS - run every libFuzzer target for SECONDS, starting
# from its seeds (tests/fuzz/seeds/<target>) plus what earlier runs found.
set -eu
build=$(cd "$1" && pwd)
secs=$2
top=$(cd "$(dirname "$0")/.." && pwd)
n=0
for f in "$build"/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="$build/corpus-$name"
    mkdir -p "$corpus"
    seeds="$top/tests/fuzz/seeds/$name"
    [ -d "$seeds" ] || seeds=""
    echo "fuzz: $name for ${secs}s"
    (cd "$build" && "$f" -max_total_time="$secs" -print_final_stats=0 -error_exitcode=1 \
        "$corpus" $seeds 2>"$build/$name.log") || { tail -n 60 "$build/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
    n=$((n + 1))
done
echo "fuzz: $n passed, 0 failed"
