# SPDX-License-Identifier: MIT
"""pshm.create_array / open_array / share_array: numpy arrays in pshm array blocks,
shared in place across processes, self-describing (the consumer needs only the name),
views that never outlive their memory, numpy imported only when used, errors."""
import multiprocessing as mp
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

import pshm


@pytest.fixture
def name():
    n = f'pyext_a_{os.getpid()}_{uuid.uuid4().hex[:8]}'
    yield n
    try:
        os.unlink('/dev/shm/' + n)
    except FileNotFoundError:
        pass


def _fill(name, value):
    a = pshm.open_array(name)
    a[...] = value


@pytest.mark.parametrize('method', ['fork', 'spawn', 'forkserver'])
def test_consumer_needs_only_the_name(method, name):
    a = pshm.create_array(name, (4, 5), 'float32', order='F')
    assert a.shape == (4, 5) and a.dtype == np.float32 and a.flags.f_contiguous
    assert not a.any()                                # zeroed
    p = mp.get_context(method).Process(target=_fill, args=(name, 2.5))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert (a == 2.5).all()                           # the child wrote our memory
    pshm.unlink_array(name)


@pytest.mark.parametrize('dtype', ['bool', 'int8', '>i4', 'uint64', 'float16', 'f8',
                                   'complex64', 'S3', '<U2', 'V4', 'longdouble'])
def test_dtypes_round_trip(dtype, name):
    a = pshm.create_array(name, (3,), dtype)
    b = pshm.open_array(name)
    assert b.dtype == np.dtype(dtype) and b.shape == (3,)
    # np.load sees the same array in the block
    c = np.load('/dev/shm/' + name, mmap_mode='r')
    assert c.dtype == np.dtype(dtype) and c.shape == (3,)
    del a, b, c


def test_open_what_numpy_saved(name):
    with open('/dev/shm/' + name, 'wb') as f:
        np.save(f, np.arange(6, dtype='<i2').reshape(2, 3))
    a = pshm.open_array(name)
    assert a.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_share_array_copies_and_readonly_open(name):
    src = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    a = pshm.share_array(src, name)
    assert np.array_equal(a, src) and a.flags.f_contiguous
    r = pshm.open_array(name, readonly=True)
    assert not r.flags.writeable
    with pytest.raises(ValueError):
        r[0, 0] = 1
    assert pshm.array_block(r).readonly


def test_views_keep_the_mapping_and_close_refuses(name):
    a = pshm.create_array(name, (1000,), 'int64')
    h = pshm.array_block(a)
    assert h.name == name
    v = a[10:20]
    assert pshm.array_block(v) is h
    del a
    with pytest.raises(BufferError, match='view'):
        h.close()
    v[:] = 7                        # still mapped: no crash
    assert (v == 7).all()
    del v
    h.close()
    assert h.closed
    with pytest.raises(ValueError, match='closed'):
        h.view()


def test_lifetimes(name):
    a = pshm.create_array(None, (2,), 'u1')
    path = '/dev/shm/' + pshm.array_block(a).name
    assert os.path.exists(path)
    del a                             # 'auto': goes with its last user
    assert not os.path.exists(path)
    pshm.create_array(name, (2,), 'u1')  # named: 'persist'
    assert os.path.exists('/dev/shm/' + name)
    pshm.unlink_array(name)
    assert not os.path.exists('/dev/shm/' + name)


def test_exist_ok(name):
    a = pshm.create_array(name, (2, 2), 'i4')
    a[0, 0] = 5
    b = pshm.create_array(name, (2, 2), 'i4', exist_ok=True)
    assert b[0, 0] == 5
    with pytest.raises(FileExistsError, match='another dtype'):
        pshm.create_array(name, (2, 3), 'i4', exist_ok=True)
    with pytest.raises(FileExistsError):
        pshm.create_array(name, (2, 2), 'i4')


def test_errors(name):
    with pytest.raises(FileNotFoundError) as e:
        pshm.open_array(name)
    assert e.value.filename == name
    with pytest.raises(ValueError, match='not supported'):
        pshm.create_array(name, (2,), [('x', 'i4')])
    with pytest.raises(ValueError, match='not supported'):
        pshm.create_array(name, (2,), object)
    with pytest.raises(ValueError):
        pshm.create_array(name, (-1,), 'i4')
    with pytest.raises(ValueError, match="order"):
        pshm.create_array(name, (2,), 'i4', order='K')
    with pytest.raises(ValueError, match='embedded null'):
        pshm.create_array('a\0b', (2,), 'i4')
    with pytest.raises(ValueError, match='not an array in a pshm block'):
        pshm.array_block(np.zeros(3))
    with open('/dev/shm/' + name, 'wb') as f:
        f.write(b'not an array at all, just bytes' * 4)
    with pytest.raises(ValueError, match=f"'{name}' is not an array block"):
        pshm.open_array(name)


def test_import_pshm_does_not_import_numpy():
    code = ('import sys, pshm; assert "numpy" not in sys.modules; '
            'l = pshm.Lock(); q = pshm.Queue(); q.put(b"x"); assert q.get() == b"x"; '
            'assert "numpy" not in sys.modules; print("ok")')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == 'ok', out.stderr
