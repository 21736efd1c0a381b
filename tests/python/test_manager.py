# SPDX-License-Identifier: MIT
"""pshm.SharedMemoryManager removes everything it made at shutdown(), at
the end of a with block, and when the process that started it dies
(SIGKILL included)."""
import signal

import pytest

import pshm
from test_lifetime import exists, kill_and_expect_gone, program


def test_shutdown_removes_everything():
    smm = pshm.SharedMemoryManager()
    with pytest.raises(ValueError):
        smm.SharedMemory(9)  # not started
    smm.start()
    lists = [smm.ShareableList(range(i)) for i in range(3)]
    blocks = [smm.SharedMemory(size) for size in (32, 4096)]
    names = [x.shm.name for x in lists] + [b.name for b in blocks]
    assert all(exists(n) for n in names)
    other = pshm.ShareableList(name=lists[2].shm.name)
    assert list(other) == [0, 1]
    blocks[0].buf[0] = 5
    smm.shutdown()
    assert not any(exists(n) for n in names)
    assert blocks[0].buf[0] == 5  # handles still map the memory
    with pytest.raises(FileNotFoundError):
        pshm.SharedMemory(blocks[1].name)


def test_context_manager():
    with pshm.SharedMemoryManager() as smm:
        sl = smm.ShareableList("howdy")
        shm = smm.SharedMemory(size=128)
        names = [sl.shm.name, shm.name]
        assert list(sl) == list("howdy")
    assert not any(exists(n) for n in names)
    with pytest.raises(FileNotFoundError):
        pshm.ShareableList(name=names[0])


def test_start_twice_is_an_error():
    from multiprocessing import ProcessError

    smm = pshm.SharedMemoryManager()
    smm.start()
    with pytest.raises(ProcessError):
        smm.start()
    smm.shutdown()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_managers_process_dying_removes_its_blocks(sig):
    p = program("""
        import time, pshm
        smm = pshm.SharedMemoryManager()
        smm.start()
        a = smm.SharedMemory(4096)
        b = smm.ShareableList([1, 2.0, "three"])
        print(a.name, b.shm.name, flush=True)
        time.sleep(60)
    """)
    kill_and_expect_gone(p, sig)
