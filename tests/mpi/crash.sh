#!/bin/sh
# SPDX-License-Identifier: MIT
# crash.sh PROGRAM job|bridge - the two crash tests of test_mpi_crash.c.
#   job:    a rank SIGKILLed mid-job: mpirun fails, and within 30 s nothing
#           the job made is left in /dev/shm (the AUTO lifetime's watchers).
#   bridge: a bridge whose source endpoint is SIGKILLed mid-stream, then a
#           second job's bridge: every message arrives at least once, with
#           no more duplicates than the guarantee allows.
set -u
prog=$1 what=$2
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "crash.sh $what: FAIL: $*" >&2; rm -f /dev/shm/"$name"*; exit 1; }
case $what in
job)
    name=pshmkill_$$
    out=$("$here/run.sh" 4 shm 2 "$prog" job "$name" 2>&1) && fail "the job did not fail"
    echo "$out" | grep -q "made the objects" || { echo "$out" >&2; fail "the job failed before making its objects"; }
    i=0
    while ls /dev/shm | grep -q "^$name"; do
        i=$((i + 1))
        [ $i -le 300 ] || fail "left behind: $(ls /dev/shm | grep "^$name" | tr '\n' ' ')"
        sleep 0.1
    done
    echo "job killed: nothing left in /dev/shm"
    ;;
bridge)
    name=pshmcrash_$$ n=30000
    "$prog" fill "$name" $n || fail "fill"
    "$here/run.sh" 2 shm 2 "$prog" bridge "$name" 5000 && fail "the first job was not killed"
    "$here/run.sh" 2 shm 2 "$prog" bridge "$name" 0 || fail "the second bridge"
    # duplicates: at most the bridge's default window (messages in flight)
    "$prog" drain "$name" $n default || fail "drain"
    rm -f /dev/shm/"$name".pn0 /dev/shm/"$name".pn1
    ;;
*) echo "usage: crash.sh PROGRAM job|bridge" >&2; exit 2 ;;
esac
echo "1 passed, 0 failed"
