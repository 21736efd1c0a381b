#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh [BUILD] [shm|tcp] [ARGS...] - run bench_mpi as 2 ranks on 2
# pseudo-nodes (tests/mpi/run.sh).
#   shm (default): Open MPI's transports on one machine (btl vader; every
#        window on osc/rdma: MPI_Win_create windows by single-copy CMA,
#        MPI_Win_allocate ones by load/store in shared memory)
#   tcp: the network path forced for every window alike (btl self,tcp on
#        the loopback, osc/pt2pt)
# Prints the table; writes BUILD/bench/mpi/bench_mpi.json (shm) or
# bench_mpi_tcp.json (tcp) unless ARGS give --json.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
transport=shm
case ${1:-} in shm|tcp) transport=$1; shift ;; esac
json=bench_mpi.json
[ "$transport" = shm ] || json=bench_mpi_$transport.json
PSHM_MPI_TIMEOUT=${PSHM_MPI_TIMEOUT:-900} exec "$top/tests/mpi/run.sh" 2 "$transport" 2 \
    "$build/bench/mpi/bench_mpi" --transport "$transport" --json "$build/bench/mpi/$json" "$@"
