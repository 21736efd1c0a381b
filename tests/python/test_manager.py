# SPDX-License-Identifier: MIT
"""pshm.SharedMemoryManager removes everything it made at shutdown(), at
the end of a with block, and when the process that started it dies
(SIGKILL included) or its server does; it is a BaseManager: register(),
connect() from an unrelated process, get_server()."""
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import pshm
import pshm.managers
from test_lifetime import exists, kill_and_expect_gone, program, wait_gone


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


# ------------------------------------------------- the server: a drop-in BaseManager

AUTHKEY = b"pshm-test-manager"

CLIENT = """
    import sys, pshm
    smm = pshm.SharedMemoryManager(address=sys.argv[1], authkey=bytes.fromhex(sys.argv[2]))
    smm.connect()
    a = smm.SharedMemory(256)
    a.buf[0] = 42
    b = smm.ShareableList(["x", 2])
    print(a.name, b.shm.name, flush=True)
"""


def client(address):
    """Connect from an unrelated program, make a block and a list, exit; their names."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(textwrap.dedent(CLIENT))
    try:
        out = subprocess.run([sys.executable, f.name, address, AUTHKEY.hex()],
                             capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_an_unrelated_process_connects_and_its_blocks_go_at_shutdown():
    smm = pshm.SharedMemoryManager(authkey=AUTHKEY)
    smm.start()
    assert isinstance(smm.address, str)
    names = client(smm.address)
    assert len(names) == 2 and all(exists(n) for n in names)  # the client exited
    assert pshm.SharedMemory(names[0]).buf[0] == 42
    assert list(pshm.ShareableList(name=names[1])) == ["x", 2]
    smm.shutdown()
    assert not any(exists(n) for n in names)


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n += k
        return self.n


class CountingManager(pshm.SharedMemoryManager):
    pass


CountingManager.register("Counter", Counter)


def test_register_and_a_registered_typeid_shared_across_connections():
    with CountingManager(authkey=AUTHKEY) as m:
        c = m.Counter()
        assert c.add(2) == 2
        other = CountingManager(address=m.address, authkey=AUTHKEY)
        other.connect()
        assert other.Counter().add(5) == 5       # a new one in the same server
        sl = other.ShareableList([1, 2, 3])      # and blocks from the connection
        name = sl.shm.name
        assert exists(name)
        assert c.add(1) == 3
    assert not exists(name)


def test_get_server_serves_in_this_process():
    import threading
    from multiprocessing import ProcessError
    from multiprocessing.managers import dispatch

    smm = pshm.SharedMemoryManager(address=("127.0.0.1", 0), authkey=AUTHKEY)
    server = smm.get_server()
    assert isinstance(server, pshm.managers.SharedMemoryServer)
    def serve():
        with pytest.raises(SystemExit):      # how serve_forever ends at shutdown
            server.serve_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client_mgr = pshm.SharedMemoryManager(address=server.address, authkey=AUTHKEY)
    client_mgr.connect()
    a = client_mgr.SharedMemory(64)
    assert exists(a.name)
    with client_mgr._Client(server.address, authkey=AUTHKEY) as conn:
        assert dispatch(conn, None, "list_segments") == [a.name]
    with client_mgr._Client(server.address, authkey=AUTHKEY) as conn:
        dispatch(conn, None, "shutdown")    # one request per connection
    t.join(10)
    assert not t.is_alive() and not exists(a.name)
    smm2 = pshm.SharedMemoryManager()
    smm2.start()
    with pytest.raises(ProcessError):
        smm2.get_server()
    smm2.shutdown()


STARTER = """
    import time, pshm
    smm = pshm.SharedMemoryManager(authkey=bytes.fromhex("%s"))
    smm.start()
    a = smm.SharedMemory(4096)
    print(smm.address, smm._process.pid, a.name, flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("victim", ["starter", "server"])
def test_sigkill_of_the_starter_or_the_server_removes_every_block(victim):
    """Blocks made by the starter and by a connected unrelated process go when the
    starter is SIGKILLed (the server follows it through a pidfd), or when the server
    itself is (each block's watcher)."""
    p = program(STARTER % AUTHKEY.hex())
    address, server_pid, own = p.stdout.readline().split()
    names = [own] + client(address)
    assert all(exists(n) for n in names)
    time.sleep(0.1)
    assert all(exists(n) for n in names)
    os.kill(p.pid if victim == "starter" else int(server_pid), signal.SIGKILL)
    assert all(wait_gone(n) for n in names)
    if victim == "starter":
        p.wait()
        for _ in range(500):                  # the server exits after its cleanup
            try:
                os.kill(int(server_pid), 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the server outlived its starter")
    else:
        p.kill()
        p.wait()
