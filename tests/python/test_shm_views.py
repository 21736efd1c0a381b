# SPDX-License-Identifier: MIT
"""Views that outlive their SharedMemory never point at unmapped memory
(numpy#18294): pshm keeps the mapping until the last view is released, so
close() never raises BufferError. And the seed example's create_view(),
get_value() and get_addr()."""
import ctypes
import gc
import weakref
import subprocess
import sys
import textwrap

import pytest

import pshm

np = pytest.importorskip("numpy")


@pytest.fixture
def shm():
    s = pshm.SharedMemory(create=True, size=4096)
    yield s
    s.close()
    s.unlink()


@pytest.mark.parametrize("make", ["ndarray", "frombuffer", "slice"])
def test_numpy_array_outlives_close(shm, make):
    if make == "ndarray":
        a = np.ndarray((1024,), dtype=np.int32, buffer=shm.buf)
    elif make == "frombuffer":
        a = np.frombuffer(shm.buf, dtype=np.int32)
    else:
        a = np.frombuffer(shm.buf[:4096], dtype=np.int32)
    a[:] = np.arange(1024)
    alive = weakref.ref(shm._block)
    shm.close()  # the stdlib raises BufferError here, or frees under numpy
    assert shm.buf is None
    assert alive() is not None  # the array keeps the mapping
    assert int(a.sum()) == sum(range(1024))
    a[5] = -1
    assert a[5] == -1
    del a
    gc.collect()
    assert alive() is None  # unmapped with the last view


def test_close_unmaps_at_once_without_views(shm):
    alive = weakref.ref(shm._block)
    shm.close()
    assert alive() is None


def test_memoryview_slice_outlives_close(shm):
    m = shm.buf[10:20]
    m[0] = 42
    shm.close()
    assert m[0] == 42
    m.release()


def test_no_segfault_in_a_fresh_process():
    # numpy#18294: with the stdlib, reading an array after close()+del can crash
    code = textwrap.dedent("""
        import gc, numpy as np, pshm
        s = pshm.SharedMemory(create=True, size=1 << 20)
        a = np.ndarray((1 << 18,), dtype=np.int32, buffer=s.buf)
        a[:] = 7
        s.close(); s.unlink(); del s; gc.collect()
        print(int(a.sum()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(7 * (1 << 18))


def test_create_view_numpy_releases_at_the_end(shm):
    with shm.create_view(np.ndarray, dtype=np.int32, shape=(8, 4), offset=64) as v:
        assert v.shape == (8, 4) and v.dtype == np.int32
        v[1, 2] = 123
    assert shm.get_value((64 // 4) + 1 * 4 + 2, dtype="i") == 123
    assert shm._block.exports == 1  # only buf itself


def test_create_view_memoryview(shm):
    with shm.create_view(memoryview, dtype="d") as m:
        assert m.format == "d" and len(m) == 4096 // 8
        m[3] = 2.5
    with pytest.raises(ValueError):
        m[0]  # released
    assert shm.get_value(3, dtype="d") == 2.5
    assert shm.get_value(3, count=2, dtype=np.float64) == [2.5, 0.0]


def test_create_view_kept_past_with_stays_valid(shm):
    with shm.create_view(np.ndarray, dtype=np.uint8) as v:
        keep = v[:10]
    keep[0] = 9
    shm.close()
    assert keep[0] == 9  # still mapped: the array holds the mapping
    assert shm.buf is None


def test_get_value_bounds(shm):
    with pytest.raises(IndexError):
        shm.get_value(4096 // 4, dtype="i")
    with pytest.raises(IndexError):
        shm.get_value(-1)


def test_get_addr_is_the_mapping(shm):
    shm.buf[:4] = b"pshm"
    addr = shm.get_addr()
    assert ctypes.string_at(addr, 4) == b"pshm"
    ctypes.memmove(addr + 4, b"!", 1)
    assert bytes(shm.buf[4:5]) == b"!"
