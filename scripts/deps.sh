#!/bin/sh
# SPDX-License-Identifier: MIT
# deps.sh - make sure what the tests need is installed (Debian 12).
# As root it installs with apt-get; otherwise it prints the exact command.
# Extra arguments name optional extras: clang, libfuzzer (fuzzing) and the
# benchmark's peers: iceoryx, boost, zmq, matplotlib (scripts/bench.sh).
set -eu
PYTHON=${PYTHON:-/usr/bin/python3}
need=""
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
[ -x "$PYTHON" ] || need="$need python3"
# the CLI tests: scdoc checks the man page against its source, hexdump -C
# is what `pshm dump` is compared with
command -v scdoc >/dev/null 2>&1 || need="$need scdoc"
command -v hexdump >/dev/null 2>&1 || need="$need bsdextrautils"
if [ -x "$PYTHON" ]; then
    "$PYTHON" -c 'import numpy' >/dev/null 2>&1 || need="$need python3-numpy"
    "$PYTHON" -c 'import pytest' >/dev/null 2>&1 || need="$need python3-pytest"
    # the Python module (python/): headers, property tests, CPython's own suite
    "$PYTHON" -c 'import sysconfig, os; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' >/dev/null 2>&1 || need="$need python3-dev"
    "$PYTHON" -c 'import hypothesis' >/dev/null 2>&1 || need="$need python3-hypothesis"
    "$PYTHON" -c 'import test._test_multiprocessing' >/dev/null 2>&1 || need="$need libpython3.11-testsuite"
fi
# MPI (libpshm_mpi and its tests; issue 13): Open MPI and mpi4py.
command -v mpicc >/dev/null 2>&1 || need="$need libopenmpi-dev"
command -v mpirun >/dev/null 2>&1 || need="$need openmpi-bin"
if [ -x "$PYTHON" ]; then
    "$PYTHON" -c 'import mpi4py' >/dev/null 2>&1 || need="$need python3-mpi4py"
fi
for extra in "$@"; do
    case "$extra" in
    clang) command -v clang >/dev/null 2>&1 || need="$need clang" ;;
    libfuzzer) [ -n "$(find /usr/lib/llvm-*/lib/clang -name 'libclang_rt.fuzzer*.a' 2>/dev/null | head -n 1)" ] || need="$need libclang-rt-dev" ;;
    iceoryx)
        ls /usr/include/iceoryx/*/iceoryx_binding_c/api.h >/dev/null 2>&1 || need="$need libiceoryx-binding-c-dev"
        command -v iox-roudi >/dev/null 2>&1 || need="$need iceoryx" ;;
    boost)
        [ -f /usr/include/boost/interprocess/ipc/message_queue.hpp ] || need="$need libboost-dev"
        command -v g++ >/dev/null 2>&1 || need="$need g++" ;;
    zmq) pkg-config --exists libzmq 2>/dev/null || need="$need libzmq3-dev" ;;
    matplotlib) "$PYTHON" -c 'import matplotlib' >/dev/null 2>&1 || need="$need python3-matplotlib" ;;
    esac
done
[ -z "$need" ] && exit 0
cmd="apt-get install -y --no-install-recommends$need"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    $cmd >/dev/null
else
    echo "deps: missing$need; run as root:" >&2
    echo "  apt-get update && $cmd" >&2
    exit 1
fi
