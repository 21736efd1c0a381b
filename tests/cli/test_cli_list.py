# SPDX-License-Identifier: MIT
"""`pshm list` and `pshm list-create`: output and exit codes against golden
files (tests/cli/golden/list_*.out), and the printed items against Python's
own repr(). PSHM_UPDATE_GOLDEN=1 rewrites the golden files.

A transcript holds each command line, its stdout, its stderr and its exit
status, with the test's unique names replaced by their aliases."""
import json
import os
import random
import re
import struct
import subprocess
import sys

import pytest
from multiprocessing import shared_memory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CLI, Transcript, ls_objects, run  # noqa: E402


def test_list_help():
    t = Transcript({})
    t.cmd("list", "--help")
    t.cmd("list-create", "--help")
    t.check("list_help")


def test_list_show_get_set(names):
    make, made = names
    t = Transcript(made)
    a = make("L")
    t.cmd("list-create", a, "1", "2.5", "'hi'", "b'ab'", "None", "True")
    t.cmd("list", a)
    t.cmd("list", a, "--format")
    t.cmd("info", a)
    t.cmd("list", a, "--get", "0")
    t.cmd("list", a, "--get", "-1")
    t.cmd("list", a, "--get", "2")
    t.cmd("list", a, "--set", "2", "'é'")
    t.cmd("list", a, "--set", "0", "'abcdefgh'")
    t.cmd("list", a, "--set", "1", "None")
    t.cmd("list", a, "--set", "4", "-0.0")
    t.cmd("list", a, "--set", "5", "b'\\x00\\xff'")
    t.cmd("list", a, "--set", "-3", "0x7fffffffffffffff")
    t.cmd("list", a)
    t.cmd("list", a, "--format")
    t.cmd("rm", a)
    t.check("list_show_get_set")


def test_list_errors(names):
    make, made = names
    t = Transcript(made)
    a, raw, gone = make("L"), make("RAW"), make("GONE")
    t.cmd("list")
    t.cmd("list-create")
    t.cmd("list", a, "--get")
    t.cmd("list", a, "--set", "0")
    t.cmd("list", a, "--get", "x")
    t.cmd("list", a, "--get", "1", "--format")
    t.cmd("list", a, "--bogus")
    t.cmd("list", a, "b")
    t.cmd("list-create", a, "abc")
    t.cmd("list-create", a, "'unterminated")
    t.cmd("list-create", a, "'\\ud800'")
    t.cmd("list-create", a, "b'é'")
    t.cmd("list-create", a, "-9223372036854775809")
    t.cmd("list", gone)
    t.cmd("list-create", a, "'1234567'", "7")
    t.cmd("list-create", a, "1")
    t.cmd("list", a, "--get", "2")
    t.cmd("list", a, "--get", "-3")
    t.cmd("list", a, "--set", "0", "'123456789'")
    t.cmd("list", a, "--set", "1", "99999999999999999999")
    t.cmd("list", a, "--set", "1", "1.5.5")
    t.cmd("list", a)
    t.cmd("create", raw, "4096")
    t.cmd("list", raw)
    t.cmd("rm", a, raw)
    t.check("list_errors")
    assert not os.path.exists("/dev/shm/" + a)


def test_list_repr(names):
    make, made = names
    t = Transcript(made)
    a = make("R")
    t.cmd("list-create", a, "\"it's\"", "'say \"hi\"'", "'both \\' and \"'", "'back\\\\slash'",
          "'tab\\tnl\\ncr\\r'", "'\\x01\\x7f\\xa0\\u2028'", "'é中😀'", "b'it\\'s'", "b'\\x80\\t'",
          "1e16", "1e-05", "0.1", "100.0", "1.5e300", "-inf", "nan", "5e-324", "0.0001",
          "123456789.123", "-9223372036854775808", "0b101", "0o17", "False")
    t.cmd("list", a)
    t.cmd("rm", a)
    t.check("list_repr")


def test_ls_and_info_show_the_kind(names):
    make, made = names
    a, raw = make("L"), make("RAW")
    assert run(["list-create", a, "1", "'x'", "None"]).returncode == 0
    assert run(["create", raw, "64"]).returncode == 0
    try:
        entries = ls_objects(a, raw)
        assert entries[a]["kind"] == "list" and entries[a]["details"]["len"] == 3
        assert entries[a]["summary"] == "list len=3"
        assert entries[raw]["kind"] == "raw" and entries[raw]["details"] == {}
        assert "kind:     list len=3" in run(["info", a]).stdout
    finally:
        run(["rm", a, raw])


def _float_cases():
    rnd = random.Random(7)
    out = [0.1, 1 / 3, 2.0 ** 70, 1e15, 1e16, 1e-4, 1e-5, 123.456, 5e-324, 1.7976931348623157e308]
    for _ in range(300):
        out.append(struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0])
        out.append(rnd.uniform(-1e6, 1e6))
        out.append(float(rnd.randrange(-10 ** 18, 10 ** 18)))
    return out


def test_printed_items_equal_pythons_repr(names):
    """repr() of each item as a VALUE in, Python's repr() of the list out; and
    CPython reads the same values."""
    make, made = names
    a = make("REPR")
    chars = "aZ '\"\\\t\n\r\x00\x01\x7f\xa0\xe9\u4e2d\u2028\U0001f600"
    rnd = random.Random(11)
    strs = ["".join(rnd.choice(chars) for _ in range(rnd.randrange(0, 6))) for _ in range(200)]
    strs = [s.rstrip("\x00") for s in strs]  # trailing NULs are not stored
    byts = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 6))).rstrip(b"\x00") for _ in range(200)]
    items = _float_cases() + strs + byts + [-(1 << 63), (1 << 63) - 1, True, False, None]
    r = run(["list-create", a] + [repr(x) for x in items])
    assert r.returncode == 0, r.stderr
    r = run(["list", a])
    assert r.returncode == 0, r.stderr
    assert r.stdout == repr(items) + "\n"
    for i in (0, 7, len(items) - 1, -5):
        assert run(["list", a, "--get", str(i)]).stdout == repr(items[i]) + "\n"
    from multiprocessing import resource_tracker
    sl = shared_memory.ShareableList(name=a)
    resource_tracker.unregister(sl.shm._name, "shared_memory")
    try:
        assert repr([sl[i] for i in range(len(sl))]) == repr(items)
        assert run(["list", a, "--format"]).stdout == sl.format + "\n"
    finally:
        sl.shm.close()


def test_values_parsed_as_python_literals(names):
    """`--set INDEX VALUE` stores what Python's literal VALUE is."""
    make, made = names
    a = make("P")
    lits = ["0", "-17", "0x1F", "-0b11", "0o777", "2.5", "-1e-300", "inf", "-inf", "True", "False",
            "None", "'abc'", '"q\\"uote"', "'\\u00e9\\U0001F600'", "'\\x41\\101\\n'", "b'\\x00\\xffA'",
            "b\"'\"", "''", "b''"]
    assert run(["list-create", a] + ["'%s'" % ("x" * 15)] * len(lits)).returncode == 0
    for i, lit in enumerate(lits):
        r = run(["list", a, "--set", str(i), lit])
        assert r.returncode == 0, (lit, r.stderr)
    sl = shared_memory.ShareableList(name=a)
    try:
        from multiprocessing import resource_tracker
        resource_tracker.unregister(sl.shm._name, "shared_memory")
        import ast
        for i, lit in enumerate(lits):
            want = float(lit) if lit in ("inf", "-inf") else ast.literal_eval(lit)
            assert sl[i] == want and type(sl[i]) is type(want), lit
    finally:
        sl.shm.close()
