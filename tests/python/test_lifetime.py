# SPDX-License-Identifier: MIT
"""How long pshm.SharedMemory blocks live (README, Python: lifetimes):
close() keeps, unlink() removes, attachers never remove (gh-82300),
track=False keeps until unlinked, a track=True block does not outlive its
program (SIGKILL included) while a member that made it and exited does not
take it along. Handles pickled to fork, spawn and forkserver children."""
import atexit
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import pshm

METHODS = ("fork", "spawn", "forkserver")


def exists(name):
    return os.path.exists("/dev/shm/" + name)


def wait_gone(name, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not exists(name):
            return True
        time.sleep(0.01)
    return False


def program(code):
    """A separate program (its own lifetime group: PSHM_GROUP unset) that
    prints lines; returns the Popen."""
    env = {k: v for k, v in os.environ.items() if k != "PSHM_GROUP"}
    # a file, not -c: spawn and forkserver children import the main module
    fd, path = tempfile.mkstemp(suffix=".py", prefix="pshm_prog_")
    with os.fdopen(fd, "w") as f:
        f.write(textwrap.dedent(code))
    atexit.register(os.unlink, path)
    p = subprocess.Popen([sys.executable, path], env=env, stdout=subprocess.PIPE, text=True)
    p.path = path
    return p


def kill_and_expect_gone(p, sig, count=2):
    """Read the names the program prints, check they stay while it lives,
    send sig, and check they go."""
    names = p.stdout.readline().split()
    assert len(names) == count and all(exists(n) for n in names)
    time.sleep(0.1)
    assert all(exists(n) for n in names)
    p.send_signal(sig)
    p.wait()
    assert all(wait_gone(n) for n in names)


def test_close_keeps_and_unlink_removes():
    a = pshm.SharedMemory(create=True, size=64)
    a.buf[0] = 7
    a.close()
    assert exists(a.name)
    b = pshm.SharedMemory(a.name)
    assert b.buf[0] == 7
    b.unlink()
    assert not exists(a.name)
    b.close()


def _attach_write_exit(handle_or_name, data):
    s = handle_or_name if isinstance(handle_or_name, pshm.SharedMemory) else pshm.SharedMemory(handle_or_name)
    s.buf[:len(data)] = data
    s.close()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("how", ["name", "pickled handle"])
def test_attachers_in_children_never_remove(method, how):
    ctx = mp.get_context(method)
    a = pshm.SharedMemory(create=True, size=64)
    try:
        p = ctx.Process(target=_attach_write_exit, args=(a if how != "name" else a.name, b"hello"))
        p.start()
        p.join(30)
        assert p.exitcode == 0
        assert bytes(a.buf[:5]) == b"hello"
        time.sleep(0.1)
        assert exists(a.name)  # gh-82300: the stdlib's tracker in a spawn child would remove it
    finally:
        a.close()
        a.unlink()


def test_a_killed_program_takes_its_tracked_blocks_along():
    p = program("""
        import pshm, time
        s = pshm.SharedMemory(create=True, size=4096)
        l = pshm.ShareableList([1, "two"])
        s.close()                      # close keeps the block
        print(s.name, l.shm.name, flush=True)
        time.sleep(60)
    """)
    kill_and_expect_gone(p, signal.SIGKILL)


def test_track_false_stays_until_unlinked():
    p = program("""
        import pshm, time
        s = pshm.SharedMemory(create=True, size=4096, track=False)
        print(s.name, flush=True)
        time.sleep(60)
    """)
    name = p.stdout.readline().strip()
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.3)
    try:
        assert exists(name)
    finally:
        pshm.SharedMemory(name).unlink()


def test_a_program_that_ends_normally_takes_its_blocks_along():
    p = program("""
        import pshm
        s = pshm.SharedMemory(create=True, size=4096)
        print(s.name, flush=True)
    """)
    name = p.stdout.readline().strip()
    assert p.wait() == 0
    assert wait_gone(name)


@pytest.mark.parametrize("method", METHODS)
def test_a_child_that_creates_and_exits_leaves_the_block_to_the_program(method):
    p = program(f"""
        import multiprocessing as mp, os, time, pshm

        def make(q):
            s = pshm.SharedMemory(create=True, size=4096)
            s.buf[0] = 99
            q.put(s.name)
            s.close()

        if __name__ == "__main__":
            ctx = mp.get_context({method!r})
            q = ctx.Queue()
            c = ctx.Process(target=make, args=(q,))
            c.start()
            name = q.get(timeout=30)
            c.join(30)
            time.sleep(0.2)
            s = pshm.SharedMemory(name)
            print(name, c.exitcode, s.buf[0], flush=True)
            s.close()
            time.sleep(60)
    """)
    line = p.stdout.readline().split()
    assert len(line) == 3, line
    name, code, value = line
    assert (code, value) == ("0", "99")
    assert exists(name)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert wait_gone(name)


def test_a_block_lives_while_any_member_lives():
    # the program starts a member (exec'd: it joins through PSHM_GROUP),
    # then the program is SIGKILLed: the member keeps the block, and when
    # it is killed too the block goes
    p = program("""
        import os, subprocess, sys, time, pshm
        s = pshm.SharedMemory(create=True, size=4096)
        child = subprocess.Popen([sys.executable, "-c", "import pshm, time; print('in', flush=True); time.sleep(60)"],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "in\\n"
        print(s.name, child.pid, flush=True)
        time.sleep(60)
    """)
    name, child = p.stdout.readline().split()
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.3)
    assert exists(name)
    os.kill(int(child), signal.SIGKILL)
    assert wait_gone(name)
