#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh [BUILD] [ARGS...] - run bench_mpi as 2 ranks on 2 pseudo-nodes
# (tests/mpi/run.sh: Open MPI's shared-memory transport on this machine).
# Prints the table; writes BUILD/bench/mpi/bench_mpi.json.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
PSHM_MPI_TIMEOUT=${PSHM_MPI_TIMEOUT:-900} exec "$top/tests/mpi/run.sh" 2 shm 2 "$build/bench/mpi/bench_mpi" "$@"
