# SPDX-License-Identifier: MIT
"""Shared fixtures: libpshm through ctypes, the CLI path, unique names."""
import ctypes
import os
import signal
import subprocess
import sys
import uuid

import pytest

BUILD = os.environ.get("PSHM_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
BUILD = os.path.abspath(BUILD)
PYTHON = sys.executable

# The pshm package (python/) as built into BUILD/python; exported so child
# processes (spawn, forkserver, subprocess) import the same build.
PYDIR = os.path.join(BUILD, "python")
if os.path.isdir(os.path.join(PYDIR, "pshm")):
    sys.path.insert(0, PYDIR)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in [PYDIR, os.environ.get("PYTHONPATH", "")] if p)


# A pytest started in the background of a shell without job control inherits
# SIGINT ignored, and so would every child it starts: the Ctrl-C tests would
# send SIGINT to processes that cannot see it. Python keeps an ignored SIGINT
# ignored, so give this process (and through exec, its children) the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class BlockOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("mode", ctypes.c_uint),
        ("lifetime", ctypes.c_int),
        ("readonly", ctypes.c_int),
        ("open_existing", ctypes.c_int),
        ("prefault", ctypes.c_int),
        ("huge_pages", ctypes.c_int),
        ("sparse", ctypes.c_int),
        ("watch", ctypes.c_int),
        ("open_timeout_ms", ctypes.c_uint),
    ]


PERSIST, AUTO, OWNED = 0, 1, 2


def load_lib():
    lib = ctypes.CDLL(os.path.join(BUILD, "libpshm.so"))
    p = ctypes.c_void_p
    lib.pshm_block_create.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(BlockOptions), ctypes.POINTER(p)]
    lib.pshm_block_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(BlockOptions), ctypes.POINTER(p)]
    lib.pshm_block_close.argtypes = [p]
    lib.pshm_block_unlink.argtypes = [p]
    lib.pshm_unlink.argtypes = [ctypes.c_char_p]
    lib.pshm_block_data.argtypes = [p]
    lib.pshm_block_data.restype = p
    lib.pshm_block_size.argtypes = [p]
    lib.pshm_block_size.restype = ctypes.c_size_t
    lib.pshm_block_name.argtypes = [p]
    lib.pshm_block_name.restype = ctypes.c_char_p
    lib.pshm_strerror.restype = ctypes.c_char_p
    lib.pshm_errname.restype = ctypes.c_char_p
    return lib


class Pshm:
    """A thin Python view of the C API, enough for interop tests."""

    def __init__(self):
        self.lib = load_lib()

    def options(self, lifetime=PERSIST, **kw):
        o = BlockOptions(ctypes.sizeof(BlockOptions), 0o600, lifetime, 0, 0, 0, 0, 0)
        for k, v in kw.items():
            setattr(o, k, v)
        return o

    def _check(self, rc):
        if rc != 0:
            raise OSError(-rc, self.lib.pshm_errname(rc).decode())

    def create(self, name, size, lifetime=PERSIST, **kw):
        h = ctypes.c_void_p()
        o = self.options(lifetime, **kw)
        self._check(self.lib.pshm_block_create(name.encode() if name else None, size, ctypes.byref(o), ctypes.byref(h)))
        return h

    def open(self, name, **kw):
        h = ctypes.c_void_p()
        o = self.options(**kw)
        self._check(self.lib.pshm_block_open(name.encode(), ctypes.byref(o), ctypes.byref(h)))
        return h

    def buf(self, h):
        return (ctypes.c_ubyte * self.lib.pshm_block_size(h)).from_address(self.lib.pshm_block_data(h))

    def name(self, h):
        return self.lib.pshm_block_name(h).decode()

    def close(self, h):
        self._check(self.lib.pshm_block_close(h))

    def unlink(self, h):
        self._check(self.lib.pshm_block_unlink(h))


@pytest.fixture(scope="session")
def pshm():
    return Pshm()


@pytest.fixture
def name():
    n = "pshmpy_%d_%s" % (os.getpid(), uuid.uuid4().hex[:8])
    yield n
    try:
        os.unlink("/dev/shm/" + n)
    except FileNotFoundError:
        pass


def run_py(code, *args, check=True):
    """Run code in a fresh python3 (a separate process); return its stdout."""
    r = subprocess.run([PYTHON, "-c", code, *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("child python failed (%d): %s" % (r.returncode, r.stderr))
    return r


@pytest.fixture(scope="session")
def cli():
    return os.path.join(BUILD, "pshm")


@pytest.fixture
def unique():
    """A maker of unique block names for this test (no leading slash)."""
    return lambda: "pshmpy_" + uuid.uuid4().hex[:16]
