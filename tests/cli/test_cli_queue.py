# SPDX-License-Identifier: MIT
"""`pshm queue ...` and the queue KIND probe: output and exit codes against golden files."""
import json
import os
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CLI, Transcript, run, run_json  # noqa: E402


@pytest.fixture
def names():
    tag = uuid.uuid4().hex[:8]
    made = {}

    def make(alias):
        real = "pshmcliq_%d_%s_%s" % (os.getpid(), tag, alias)
        made[real] = alias
        return real

    yield make, made
    for real in made:
        try:
            os.unlink("/dev/shm/" + real)
        except FileNotFoundError:
            pass


def test_queue_help():
    t = Transcript({})
    t.cmd("queue", "--help")
    t.check("queue_help")


def test_queue_lifecycle(names):
    make, made = names
    t = Transcript(made)
    q = make("Q")
    t.cmd("queue", "create", q, "--messages", "8", "--max-msg", "64")
    t.cmd("queue", "create", q)
    t.cmd("queue", "send", q, "hello", "wor ld", "tab\there")
    t.cmd("info", q)
    t.cmd("queue", "stat", q)
    t.cmd("queue", "recv", q, "--count", "2")
    t.cmd("queue", "send", q, "x" * 65)
    t.cmd("queue", "close", q)
    t.cmd("queue", "recv", q, "--count", "5")
    t.cmd("queue", "stat", q)
    t.cmd("queue", "send", q, "late")
    t.cmd("rm", q)
    t.check("queue_lifecycle")


def test_queue_modes_and_errors(names):
    make, made = names
    t = Transcript(made)
    m, b, raw, none = make("M"), make("B"), make("RAW"), make("NONE")
    t.cmd("queue")
    t.cmd("queue", "frob")
    t.cmd("queue", "stat")
    t.cmd("queue", "create", m, "--mode", "fifo")
    t.cmd("queue", "create", m, "--overwrite")
    t.cmd("queue", "create", m, "--capacity", "0")
    t.cmd("queue", "create", m, "--mode", "mpmc", "--messages", "16", "--max-msg", "100")
    t.cmd("queue", "create", b, "--mode", "broadcast", "--overwrite", "--messages", "4")
    t.cmd("create", raw, "4K")
    t.cmd("queue", "send", m, "a", "b", "c")
    t.cmd("queue", "stat", m)
    t.cmd("queue", "stat", b)
    t.cmd("queue", "stat", raw)
    t.cmd("queue", "recv", m, "--timeout", "abc")
    t.cmd("queue", "recv", m, "--count", "3", "--timeout", "1000")
    t.cmd("queue", "recv", m, "--timeout", "20")
    t.cmd("info", m, b, raw)
    t.cmd("queue", "stat", none)
    t.cmd("rm", m, b, raw)
    t.check("queue_modes_and_errors")


def test_queue_stat_json(names):
    make, made = names
    q = make("J")
    assert run(["queue", "create", q, "--mode", "mpmc", "--messages", "4"]).returncode == 0
    assert run(["queue", "send", q, "one", "two"]).returncode == 0
    d = run_json(["queue", "stat", "--json", q])
    assert d["kind"] == "queue" and d["name"] == q
    assert d["mode"] == "mpmc" and d["slots"] == 4 and d["depth"] == 2
    assert d["messages"] == 2 and d["bytes"] == 6 and d["shut_down"] is False
    assert d["participants"] == []


def test_queue_stat_shows_live_and_dead_participants(names):
    make, made = names
    q = make("P")
    assert run(["queue", "create", q, "--mode", "mpmc", "--messages", "4"]).returncode == 0
    # a consumer that waits: alive while it waits, then killed: dead
    p = subprocess.Popen([CLI, "queue", "recv", q, "--timeout", "20000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            d = run_json(["queue", "stat", "--json", q])
            if d["consumers"] == 1:
                break
            subprocess.run(["sleep", "0.01"])
        assert d["consumers"] == 1
        part = d["participants"][0]
        assert part["pid"] == p.pid and part["alive"] is True and part["role"] == "consumer"
        p.kill()
        p.wait()
        d = run_json(["queue", "stat", "--json", q])
        assert d["consumers"] == 0 and d["dead"] == 1
        assert d["participants"][0]["alive"] is False
        # the next participant recovers the dead one
        assert run(["queue", "send", q, "m"]).returncode == 0
        d = run_json(["queue", "stat", "--json", q])
        assert d["dead"] == 0 and d["participants"] == []
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
