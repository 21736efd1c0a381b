# SPDX-License-Identifier: MIT
"""Blocks made by pshm and by CPython's multiprocessing.shared_memory are the
same objects: each attaches to the other's and sees the same bytes."""
import os

from multiprocessing import shared_memory, resource_tracker

from conftest import AUTO, OWNED, run_py

# CPython 3.11 registers even attached blocks with its resource tracker and
# unlinks them when the attaching process exits (gh-82300): the child scripts
# unregister, as anyone sharing blocks with CPython must.
ATTACH = """
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1])
resource_tracker.unregister(shm._name, "shared_memory")
print(shm.size, bytes(shm.buf[:16]).hex())
shm.buf[16:21] = b"cpyth"
shm.close()
"""


def test_cpython_attaches_to_pshm_block(pshm, name):
    h = pshm.create(name, 4096)
    buf = pshm.buf(h)
    buf[:16] = bytes(range(1, 17))
    out = run_py(ATTACH, name).stdout.split()
    assert out == ["4096", bytes(range(1, 17)).hex()]
    assert bytes(buf[16:21]) == b"cpyth"
    pshm.unlink(h)
    pshm.close(h)


def test_pshm_attaches_to_cpython_block(pshm):
    shm = shared_memory.SharedMemory(create=True, size=10000)
    try:
        shm.buf[:5] = b"hello"
        h = pshm.open(shm.name)
        assert pshm.lib.pshm_block_size(h) == 10000
        buf = pshm.buf(h)
        assert bytes(buf[:5]) == b"hello"
        buf[5:10] = b"world"
        assert bytes(shm.buf[:10]) == b"helloworld"
        pshm.close(h)
    finally:
        shm.close()
        shm.unlink()


def test_cpython_sees_auto_block_until_last_close(pshm, name):
    h = pshm.create(name, 100, AUTO)
    pshm.buf(h)[0] = 42
    out = run_py(ATTACH, name).stdout.split()
    assert out[0] == "100" and out[1].startswith("2a")
    assert os.path.exists("/dev/shm/" + name)
    pshm.close(h)
    assert not os.path.exists("/dev/shm/" + name)


def test_owned_block_survives_cpython_attacher(pshm, name):
    h = pshm.create(name, 100, OWNED)
    run_py(ATTACH, name)
    assert os.path.exists("/dev/shm/" + name)
    pshm.close(h)
    assert not os.path.exists("/dev/shm/" + name)


def test_random_name_usable_from_cpython(pshm):
    h = pshm.create(None, 64)
    n = pshm.name(h)
    assert n.startswith("psm_") and len(n) == 20
    shm = shared_memory.SharedMemory(name=n)
    resource_tracker.unregister(shm._name, "shared_memory")
    assert shm.size == 64
    shm.close()
    pshm.unlink(h)
    pshm.close(h)
