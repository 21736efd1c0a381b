# SPDX-License-Identifier: MIT
"""The pshm package itself: it imports from the build, maps C codes to the
right exceptions, and waits that Ctrl-C can interrupt."""
import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pshm
from pshm import _shm

# The C codes (include/pshm.h)
ENAME_SLASH, ENAME_NUL, ENAME_LONG = 1001, 1002, 1003
EBADFORMAT, EKIND, ESTALE, EOWNERDEAD = 1008, 1011, 1015, 1012
ELIST_INDEX, ELIST_NOSPACE, ELIST_OFFSETS, EARRAY_MAGIC = 1020, 1021, 1028, 1040


def test_version_matches_the_library():
    assert pshm.__version__ == _shm.PSHM_VERSION
    assert pshm.__version__.count(".") == 2


def test_the_module_is_the_build_under_test():
    # make asan sets PSHM_BUILD=build-asan: its sanitized extension must be
    # the one imported, here and in child processes
    from conftest import BUILD
    assert _shm.__file__.startswith(os.path.join(BUILD, "python", "pshm") + os.sep)
    out = subprocess.run([sys.executable, "-c", "import pshm; print(pshm._shm.__file__)"],
                         check=True, capture_output=True, text=True).stdout
    assert out.startswith(os.path.join(BUILD, "python", "pshm") + os.sep)


def test_module_is_self_contained():
    # linked against libpshm statically: importing it maps no libpshm.so
    # (checked in a fresh interpreter: this one has the ctypes tests' copy)
    out = subprocess.run([sys.executable, "-c",
                          "import pshm; print(open('/proc/self/maps').read())"],
                         check=True, capture_output=True, text=True).stdout
    assert "_shm.cpython" in out
    assert "libpshm.so" not in out


@pytest.mark.parametrize("code,exc,err", [
    (-errno.ENOENT, FileNotFoundError, errno.ENOENT),
    (-ESTALE, FileNotFoundError, errno.ENOENT),
    (-errno.EEXIST, FileExistsError, errno.EEXIST),
    (-errno.EACCES, PermissionError, errno.EACCES),
    (-errno.EPERM, PermissionError, errno.EPERM),
    (-errno.ETIMEDOUT, TimeoutError, errno.ETIMEDOUT),
    (-errno.ENOSPC, OSError, errno.ENOSPC),
    (-ENAME_SLASH, OSError, errno.EINVAL),
    (-ENAME_LONG, OSError, errno.ENAMETOOLONG),
    (-EOWNERDEAD, OSError, EOWNERDEAD),
])
def test_errno_codes_raise_oserror_subclasses(code, exc, err):
    with pytest.raises(exc) as ei:
        _shm._raise(code, "blockname")
    assert type(ei.value) is exc
    assert ei.value.errno == err
    assert ei.value.filename == "blockname"
    assert "blockname" in str(ei.value)


@pytest.mark.parametrize("code,exc", [
    (-EBADFORMAT, ValueError), (-EKIND, ValueError), (-ELIST_OFFSETS, ValueError),
    (-EARRAY_MAGIC, ValueError), (-ELIST_NOSPACE, ValueError), (-ENAME_NUL, ValueError),
    (-ELIST_INDEX, IndexError), (-errno.ENOMEM, MemoryError),
])
def test_format_codes_raise_valueerror(code, exc):
    with pytest.raises(exc) as ei:
        _shm._raise(code, "blockname")
    assert type(ei.value) is exc
    if exc is ValueError:
        assert "blockname" in str(ei.value)


def test_wait_times_out():
    t0 = time.monotonic()
    assert _shm._wait(0.15) is False
    assert time.monotonic() - t0 >= 0.14


def test_wait_rejects_bad_timeouts():
    with pytest.raises(TypeError):
        _shm._wait("1")
    with pytest.raises(ValueError):
        _shm._wait(float("nan"))
    assert _shm._wait(-1) is False


def test_ctrl_c_interrupts_a_wait_within_100ms():
    # A blocking wait runs Python's signal handlers at least every 100 ms: a
    # handler for SIGUSR1, signalled every 10 ms for 2 s, runs once per wait
    # slice (pending signals coalesce), so it counts the slices (about 40 with
    # 50 ms slices, at most 2 with 1 s slices) whatever the machine's load
    # does to one signal's latency; then SIGINT ends the wait with
    # KeyboardInterrupt. The measured latency of that SIGINT is printed.
    code = textwrap.dedent("""
        import signal, sys, time
        from pshm import _shm
        runs = 0
        def seen(*a):
            global runs
            runs += 1
        signal.signal(signal.SIGUSR1, seen)
        print("ready", flush=True)
        t0 = time.monotonic()
        try:
            _shm._wait(None)
        except KeyboardInterrupt:
            print("interrupted %d %.3f" % (runs, time.monotonic() - t0), flush=True)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, p.kill)  # a wait SIGINT cannot end: fail, never hang
    watchdog.start()
    try:
        assert p.stdout.readline() == "ready\n"
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            p.send_signal(signal.SIGUSR1)
            time.sleep(0.01)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        line = p.stdout.readline()
        took = time.monotonic() - sent
        assert line.startswith("interrupted"), line
        runs = int(line.split()[1])
        print("SIGINT to KeyboardInterrupt: %.1f ms; handler ran %d times in 2 s" % (took * 1e3, runs))
        assert runs >= 10, "the wait ran signal handlers only %d times in 2 s" % runs
    finally:
        watchdog.cancel()
        p.kill()
        p.wait()
