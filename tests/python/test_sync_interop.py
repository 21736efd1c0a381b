# SPDX-License-Identifier: MIT
"""Sync objects across Python (ctypes) processes, the CLI and C: what a
Python binding will rely on - named objects by name, robust death reports,
timed waits."""
import ctypes
import os
import signal
import subprocess
import sys
import uuid

import pytest

from conftest import BUILD, BlockOptions, load_lib

PSHM = os.path.join(BUILD, "pshm")
EOWNERDEAD, EAGAIN, ETIMEDOUT = 1012, 11, 110


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


MUTEX, SEM, EVENT = 1, 3, 6
SEM_UNDO = 1


class SyncOptions(ctypes.Structure):
    """pshm_sync_options: the block options' fields, then value, count, flags."""
    _fields_ = [(f, t) for f, t in BlockOptions._fields_] + [
        ("value", ctypes.c_uint), ("count", ctypes.c_uint), ("flags", ctypes.c_uint)]


def sync_options(**kw):
    o = SyncOptions(struct_size=ctypes.sizeof(SyncOptions), mode=0o600, open_timeout_ms=2000)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def sync_lib():
    lib = load_lib()
    p, pp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    lib.pshm_sync_create.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(SyncOptions), pp]
    lib.pshm_sync_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(SyncOptions), pp]
    lib.pshm_sync_close.argtypes = [p]
    for kind in ("mutex", "sem", "event"):
        getattr(lib, "pshm_sync_%s" % kind).argtypes = [p]
        getattr(lib, "pshm_sync_%s" % kind).restype = p
    for f in ("pshm_mutex_lock", "pshm_mutex_unlock", "pshm_mutex_consistent", "pshm_sem_trywait",
              "pshm_sem_post", "pshm_event_set"):
        getattr(lib, f).argtypes = [p]
    lib.pshm_event_timedwait.argtypes = [p, ctypes.POINTER(Timespec)]
    lib.pshm_sem_timedwait.argtypes = [p, ctypes.POINTER(Timespec)]
    lib.pshm_deadline.argtypes = [ctypes.POINTER(Timespec), ctypes.c_longlong]
    return lib


def deadline(lib, ms):
    ts = Timespec()
    assert lib.pshm_deadline(ctypes.byref(ts), ms) == 0
    return ts


@pytest.fixture
def name():
    base = "pshmpy_%s" % uuid.uuid4().hex[:10]
    yield base
    for e in os.listdir("/dev/shm"):
        if e.startswith(base):
            os.unlink(os.path.join("/dev/shm", e))


def test_cli_posts_python_waits(name):
    lib = sync_lib()
    h = ctypes.c_void_p()
    o = sync_options(flags=SEM_UNDO)
    assert lib.pshm_sync_create(name.encode(), SEM, ctypes.byref(o), ctypes.byref(h)) == 0
    s = lib.pshm_sync_sem(h)
    subprocess.run([PSHM, "sync", "post", name, "2"], check=True, timeout=30)
    assert lib.pshm_sem_trywait(s) == 0
    assert lib.pshm_sem_timedwait(s, ctypes.byref(deadline(lib, 1000))) == 0
    assert lib.pshm_sem_trywait(s) == -EAGAIN
    assert lib.pshm_sem_timedwait(s, ctypes.byref(deadline(lib, 20))) == -ETIMEDOUT
    assert lib.pshm_sync_close(h) == 0


CHILD = r"""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.pshm_sync_mutex.restype = ctypes.c_void_p
lib.pshm_mutex_lock.argtypes = [ctypes.c_void_p]
h = ctypes.c_void_p()
assert lib.pshm_sync_open(sys.argv[2].encode(), 1, None, ctypes.byref(h)) == 0
assert lib.pshm_mutex_lock(lib.pshm_sync_mutex(h)) == 0
print("locked", flush=True)
sys.stdin.read()
"""


def test_python_holder_killed_is_reported_once(name):
    lib = sync_lib()
    h = ctypes.c_void_p()
    assert lib.pshm_sync_create(name.encode(), MUTEX, None, ctypes.byref(h)) == 0
    m = lib.pshm_sync_mutex(h)
    child = subprocess.Popen([sys.executable, "-c", CHILD, os.path.join(BUILD, "libpshm.so"), name],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "locked\n"
    info = subprocess.run([PSHM, "sync", "info", name], capture_output=True, text=True, timeout=30).stdout
    assert "locked:    yes by pid %d (alive)" % child.pid in info
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert lib.pshm_mutex_lock(m) == -EOWNERDEAD
    assert lib.pshm_mutex_consistent(m) == 0
    assert lib.pshm_mutex_unlock(m) == 0
    assert lib.pshm_mutex_lock(m) == 0
    assert lib.pshm_mutex_unlock(m) == 0
    assert lib.pshm_sync_close(h) == 0


def test_event_set_by_cli_wakes_python(name):
    lib = sync_lib()
    subprocess.run([PSHM, "sync", "create", "event", name], check=True, timeout=30)
    h = ctypes.c_void_p()
    assert lib.pshm_sync_open(name.encode(), EVENT, None, ctypes.byref(h)) == 0
    e = lib.pshm_sync_event(h)
    setter = subprocess.Popen(["sh", "-c", "sleep 0.1; exec %s sync set %s" % (PSHM, name)])
    assert lib.pshm_event_timedwait(e, ctypes.byref(deadline(lib, 20000))) == 0
    assert setter.wait(timeout=30) == 0
    assert lib.pshm_event_timedwait(e, ctypes.byref(deadline(lib, 10))) == -ETIMEDOUT  # auto reset
    assert lib.pshm_sync_close(h) == 0
