# SPDX-License-Identifier: MIT
"""The pshm CLI's core commands: output and exit codes against golden files."""
import json
import os
import pwd
import signal
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CLI, Transcript, ls_objects, run, run_json  # noqa: E402


def test_help_texts():
    t = Transcript({})
    t.cmd("--help")
    for c in ["ls", "info", "create", "hold", "rm", "gc", "dump"]:
        t.cmd(c, "--help")
    t.check("help")


def test_usage_errors(names):
    make, made = names
    t = Transcript(made)
    a = make("A")
    t.cmd()
    t.cmd("frobnicate")
    t.cmd("create")
    t.cmd("create", a)
    t.cmd("create", a, "0")
    t.cmd("create", a, "12Q")
    t.cmd("create", a, "10", "--lifetime", "forever")
    t.cmd("create", a, "10", "--lifetime", "auto")
    t.cmd("create", a, "10", "--mode", "999")
    t.cmd("create", a, "10", "--bogus")
    t.cmd("ls", "extra")
    t.cmd("rm")
    t.cmd("info")
    t.cmd("dump")
    t.cmd("dump", a, "--offset")
    t.cmd("gc", "--bogus")
    t.check("usage_errors")
    assert not os.path.exists("/dev/shm/" + a)


def test_bad_names_and_missing_objects(names):
    make, made = names
    t = Transcript(made)
    a = make("A")
    t.cmd("create", "a/b", "10")
    t.cmd("create", ".", "10")
    t.cmd("create", "x" * 256, "10")
    t.cmd("info", a)
    t.cmd("dump", a)
    t.cmd("rm", a)
    t.cmd("hold", a)
    t.check("bad_names")


def test_create_info_dump_rm(names):
    make, made = names
    t = Transcript(made)
    a, b = make("A"), make("B")
    t.cmd("create", a, "100")
    t.cmd("create", a, "100")
    with open("/dev/shm/" + a, "r+b") as f:
        f.write(b"pshm CLI golden\x00\x01\x02\xff")
    t.cmd("info", a)
    t.cmd("dump", a, "--length", "40")
    t.cmd("dump", a, "--offset", "0x10", "--length", "8")
    t.cmd("dump", a, "--offset", "96")
    t.cmd("dump", a, "--offset", "101")
    t.cmd("create", "/" + b, "2K", "--mode", "0644")
    t.cmd("info", b)
    t.cmd("rm", a, b, make("C"))
    t.cmd("info", a)
    t.check("create_info_dump_rm")


def test_ls_lists_and_json(names):
    make, made = names
    a = make("A")
    assert run(["create", a, "1M"]).returncode == 0
    r = run(["ls", a[:-1] + "*"])  # a pattern over this test's own names only
    assert r.returncode == 0
    lines = [l for l in r.stdout.splitlines() if l.startswith(a)]
    assert len(lines) == 1
    cols = lines[0].split()
    user = pwd.getpwuid(os.getuid()).pw_name
    assert cols[1:6] == ["1MiB", user, "0600", "persist", "0"]
    assert cols[6].endswith("(dead)")  # the creating `pshm create` has exited
    assert cols[7] == "raw"
    assert r.stdout.splitlines()[0].split() == ["NAME", "SIZE", "OWNER", "MODE", "LIFETIME", "MAPPED",
                                                "CREATOR", "KIND"]
    e = ls_objects(a)[a]
    assert e["size"] == 1 << 20 and e["lifetime"] == "persist" and e["kind"] == "raw"
    assert e["mapped"] == 0 and e["stale"] is False and e["creator_alive"] is False
    assert e["user"] == user and e["uid"] == os.getuid() and e["mode"] == "0600"
    assert e["path"] == "/dev/shm/" + a and e["readable"] is True
    assert run(["rm", a]).returncode == 0


def start_hold(args):
    p = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    return p, line.strip()


def test_hold_auto_and_owned_lifetimes(names):
    make, made = names
    t = Transcript(made)
    a = make("A")
    creator, shown = start_hold(["create", a, "4K", "--lifetime", "auto", "--hold"])
    assert shown == a
    t.note("creator holds an auto block")
    t.cmd("info", a)
    holder, shown = start_hold(["hold", a])
    assert shown == a
    creator.send_signal(signal.SIGTERM)
    assert creator.wait(10) == 0
    t.note("creator ended (SIGTERM), the second holder keeps it")
    t.cmd("info", a)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    t.note("last holder killed: stale until collected")
    t.cmd("info", a)
    t.cmd("gc", "--dry-run", a)
    t.cmd("info", a)
    t.cmd("gc", a)
    t.cmd("info", a)

    b = make("B")
    owner, _ = start_hold(["create", b, "4K", "--lifetime", "owned", "--hold"])
    attacher, _ = start_hold(["hold", b])
    t.note("owned: the owner ends, the block goes even though another process holds it")
    owner.send_signal(signal.SIGINT)
    assert owner.wait(10) == 0
    t.cmd("info", b)
    attacher.send_signal(signal.SIGTERM)
    assert attacher.wait(10) == 0
    t.check("hold_lifetimes")


def test_watch_removes_at_once(names):
    make, made = names
    a = make("A")
    p, shown = start_hold(["create", a, "4K", "--lifetime", "owned", "--hold", "--watch"])
    assert shown == a
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    for _ in range(500):
        if not os.path.exists("/dev/shm/" + a):
            break
        time.sleep(0.01)
    assert not os.path.exists("/dev/shm/" + a)
    r = run(["create", a, "4K", "--watch"])
    assert r.returncode == 2 and "--watch needs" in r.stderr


def test_gc_never_touches_persist(names):
    make, made = names
    a = make("A")
    p, _ = start_hold(["create", a, "4K", "--hold"])
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    r = run(["gc", a])
    assert r.returncode == 0 and r.stdout == ""
    assert os.path.exists("/dev/shm/" + a)
    assert run(["rm", a]).returncode == 0
