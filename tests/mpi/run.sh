#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh NP TRANSPORT PSEUDO_NODES PROGRAM [ARGS...] - run PROGRAM as an MPI
# job of NP ranks on this machine, grouped into PSEUDO_NODES pseudo-nodes
# (PSHM_MPI_PSEUDO_NODES), under a timeout (PSHM_MPI_TIMEOUT seconds,
# default 240): a hung mpirun fails instead of hanging CI.
#   TRANSPORT shm: Open MPI's defaults on one machine (btl self,vader; RMA by
#                  osc/rdma over shared memory: single-copy, no target help)
#             tcp: the network path forced (pml ob1, btl self,tcp on the
#                  loopback; RMA emulated over messages by osc/pt2pt)
set -eu
np=$1 transport=$2 pseudo=$3
shift 3
root=""
[ "$(id -u)" = 0 ] && root="--allow-run-as-root"
case $transport in
shm) mca="--mca btl self,vader,tcp" ;;
tcp) mca="--mca pml ob1 --mca btl self,tcp --mca osc pt2pt" ;;
*) echo "run.sh: transport is shm or tcp" >&2; exit 2 ;;
esac
export PSHM_MPI_PSEUDO_NODES=$pseudo
# Open MPI keeps memory to the end by design: leak reports would be noise.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# shellcheck disable=SC2086
exec timeout -k 10 "${PSHM_MPI_TIMEOUT:-240}" mpirun $root --oversubscribe --bind-to none \
    -np "$np" $mca --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo "$@"
