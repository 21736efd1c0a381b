# SPDX-License-Identifier: MIT
"""The CLI as a daily tool: JSON documents, ls columns, safe names, '--',
sizes, modes, the new subcommands (array create, write, queue send --stdin,
queue recv --raw), dump's squeezing, and messages that name what was found."""
import os
import pwd
import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CLI, Transcript, ls_objects, run, run_json, strict_json  # noqa: E402


def runb(args, stdin=None):
    """Run the CLI with bytes in and out."""
    return subprocess.run([CLI, *args], capture_output=True, timeout=60, input=stdin)


def shm(name):
    return "/dev/shm/" + name


# ------------------------------------------------------------------ JSON


def test_info_json_is_one_document_with_every_field(names):
    make, made = names
    a, l, q, m, missing = make("A"), make("L"), make("Q"), make("M"), make("MISSING")
    assert run(["create", a, "4K"]).returncode == 0
    assert run(["list-create", l, "1", "'x'"]).returncode == 0
    assert run(["queue", "create", q, "--messages", "8", "--max-msg", "64"]).returncode == 0
    assert run(["queue", "send", q, "one", "two"]).returncode == 0
    assert run(["sync", "create", "mutex", m]).returncode == 0
    doc = run_json(["info", "--json", a, l, q, m, missing], want=1)
    objs = {o["name"]: o for o in doc["objects"]}
    assert list(objs) == [a, l, q, m]
    assert doc["errors"] == [{"name": missing, "error": "ENOENT", "message": "No such file or directory"}]
    text = run(["info", a]).stdout
    fields = {"name", "path", "size", "uid", "user", "gid", "group", "mode", "modified", "mtime_ns",
              "readable", "lifetime", "marked", "stale", "holders", "mapped", "creator_pid",
              "creator_alive", "kind", "summary", "details"}
    for o in objs.values():
        assert set(o) == fields, set(o) ^ fields
    # every field the text shows, with the same values
    o = objs[a]
    assert o["path"] == shm(a) and "path:     %s" % shm(a) in text
    assert o["size"] == 4096 and o["mode"] == "0600" and o["readable"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", o["modified"])
    assert o["mtime_ns"] // 10 ** 9 == int(os.stat(shm(a)).st_mtime)
    assert o["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert o["lifetime"] == "persist" and o["holders"] is None and o["kind"] == "raw"
    # kinds and their details are fields, not text
    assert objs[l]["kind"] == "list" and objs[l]["details"] == {"len": 2, "data_bytes": 16}
    d = objs[q]["details"]
    assert objs[q]["kind"] == "queue" and d["mode"] == "spsc" and d["depth"] == 2
    assert d["max_msg"] == 64 and d["shut_down"] is False
    d = objs[m]["details"]
    assert objs[m]["kind"] == "sync" and d["kind"] == "mutex" and d["locked"] is False
    assert d["owner_pid"] is None and d["notrecoverable"] is False
    run(["rm", a, l, q, m])


def test_ls_json_and_pattern(names):
    make, made = names
    a, b = make("JOB_1"), make("JOB_2")
    other = make("OTHER")
    for n in (a, b, other):
        assert run(["create", n, "1K"]).returncode == 0
    prefix = a[: a.index("JOB_1")]
    doc = run_json(["ls", "--json", prefix + "JOB_*"])
    assert sorted(o["name"] for o in doc["objects"]) == [a, b]
    text = run(["ls", prefix + "JOB_*"]).stdout.splitlines()
    assert [line.split()[0] for line in text[1:]] == [a, b]
    # several patterns: the union, in name order
    assert sorted(ls_objects(prefix + "JOB_1", prefix + "OTHER")) == [a, other]
    assert run_json(["ls", "--json", prefix + "NOTHING*"])["objects"] == []
    run(["rm", a, b, other])


# ------------------------------------------------------------------ ls columns


def width(s):
    """Terminal columns of s (what wcwidth gives for these characters)."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in s)


def column_starts(line, heads):
    """Display columns where each header word starts in the header line."""
    return [width(line[: line.index(h)]) for h in heads]


def test_ls_columns_stay_aligned(names):
    make, made = names
    wide = make("wide_\u4e2d\u6587\u540d\u5b57_\u00e9\u00e8")
    long_ = make("a_rather_long_name_" + "x" * 60)
    mutex = make("M")
    assert run(["create", wide, "3K"]).returncode == 0
    assert run(["create", long_, "1.5M"]).returncode == 0
    assert run(["sync", "create", "mutex", mutex]).returncode == 0
    holder = subprocess.Popen([CLI, "sync", "lock", mutex], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"  # a long KIND: "mutex locked pid=..."
        prefix = wide[: wide.index("wide_")]
        lines = run(["ls", prefix + "*"]).stdout.splitlines()
        heads = ["NAME", "SIZE", "OWNER", "MODE", "LIFETIME", "MAPPED", "CREATOR", "KIND"]
        assert lines[0].split() == heads
        starts = column_starts(lines[0], heads)
        assert len(lines) == 4
        for line in lines[1:]:
            cells = re.split(r"  +", line.strip())
            # SIZE and MAPPED are right-aligned: they end where their header ends
            pos = 0
            for c, cell in enumerate(cells):
                at = line.index(cell, pos)
                col = width(line[:at])
                if heads[c] in ("SIZE", "MAPPED"):
                    assert col + width(cell) == starts[c] + len(heads[c]), (line, cell)
                else:
                    assert col == starts[c], (line, cell, col, starts[c])
                pos = at + len(cell)
        kinds = [line[line.index("mutex"):] for line in lines if mutex in line]
        assert kinds and kinds[0].startswith("mutex locked pid=%d" % holder.pid)
    finally:
        holder.terminate()
        holder.wait(10)
        run(["rm", wide, long_, mutex])


def test_owner_is_a_user_name_or_the_number():
    name = "pshmcli_owner_%d" % os.getpid()
    assert run(["create", name, "64"]).returncode == 0
    try:
        uid = 54321
        while True:  # a uid no user has
            try:
                pwd.getpwuid(uid)
                uid += 1
            except KeyError:
                break
        os.chown(shm(name), uid, -1)
        line = [x for x in run(["ls", name]).stdout.splitlines() if x.startswith(name)][0]
        assert line.split()[2] == str(uid)
        o = ls_objects(name)[name]
        assert o["uid"] == uid and o["user"] == str(uid)
        assert "owner:    %d (uid %d)" % (uid, uid) in run(["info", name]).stdout
    finally:
        os.unlink(shm(name))


# ------------------------------------------------------------------ odd names


ODD = [b"nl\nfake line", b"esc\x1b[31mred", b"tab\there", b"back\\slash", b"bidi\xe2\x80\xaeevil",
       b"latin1\xe9\xff", b"c1\xc2\x9bcsi", b"bell\x07"]


def test_odd_names_are_escaped_and_json_stays_strict():
    tag = b"pshmcli_odd_%d_" % os.getpid()
    made = [tag + o for o in ODD]
    for n in made:
        with open(b"/dev/shm/" + n, "wb") as f:
            f.write(b"\0" * 32)
    try:
        for args in (["ls", tag + b"*"], ["info", *made], ["dump", made[0]], ["info", tag + b"missing\n"]):
            r = runb(args)
            for stream in (r.stdout, r.stderr):
                # nothing a terminal would act on: no C0/C1 controls but the
                # line ends, no bidi overrides, no bytes that are not UTF-8
                text = stream.decode("utf-8", errors="strict")
                assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text), (args, text)
        ls = runb(["ls", tag + b"*"]).stdout.decode()
        assert len(ls.splitlines()) == 1 + len(ODD)  # a newline in a name fakes no line
        for shown in ["nl\\nfake line", "esc\\x1b[31mred", "tab\\there", "back\\\\slash", "bidi\\u202eevil",
                      "latin1\\xe9\\xff", "c1\\u009bcsi", "bell\\x07"]:
            assert shown in ls, shown
        # JSON: strict UTF-8, and the exact bytes come back through name_hex
        doc = strict_json(runb(["ls", "--json", tag + b"*"]).stdout)
        back = set()
        for o in doc["objects"]:
            raw = bytes.fromhex(o["name_hex"]) if "name_hex" in o else o["name"].encode()
            back.add(raw)
            assert ("name_hex" in o) == (raw != raw.decode("utf-8", "replace").encode())
        assert back == set(made)
        doc = strict_json(runb(["info", "--json", *made, tag + b"gone\xff"]).stdout)
        assert len(doc["objects"]) == len(ODD)
        assert doc["errors"][0]["name_hex"] == (tag + b"gone\xff").hex()
    finally:
        for n in made:
            os.unlink(b"/dev/shm/" + n)


def test_names_starting_with_a_dash_work_everywhere(names, tmp_path):
    make, made = names
    tag = make("x")
    d = "-" + tag  # a name that looks like an option
    made[d] = "-x"  # (removed at the end with the others)
    t = Transcript(made)
    for args in [
        ("create", d, "64"), ("create", "--", d, "64"), ("info", "--", d), ("ls", "--", d),
        ("write", "--offset", "8", "--", d, str(tmp_path / "in")), ("dump", "--length", "16", "--", d),
        ("gc", "--", d), ("rm", "--", d),
        ("list-create", "--", d, "-1", "-2.5", "-inf"), ("list", "--", d), ("list", "--get", "-1", "--", d),
        ("list", "--set", "0", "-7", "--", d), ("list", "--", d), ("rm", "--", d),
        ("array", "create", "--", d, "u1", "4"), ("array", "info", "--", d), ("rm", "--", d),
        ("queue", "create", "--mode", "mpmc", "--", d), ("queue", "send", "--", d, "-m1", "--m2"),
        ("queue", "stat", "--", d), ("queue", "recv", "--count", "2", "--", d), ("queue", "close", "--", d),
        ("rm", "--", d),
        ("sync", "create", "--value", "2", "--", "sem", d), ("sync", "post", "--", d), ("sync", "wait", "--", d),
        ("sync", "info", "--", d), ("rm", "--", d), ("rm", "--", "--help"),
    ]:
        if args[0] == "write":  # the input file is shown as IN
            (tmp_path / "in").write_bytes(b"WRITTEN!")
            t.add(args[:-1] + ("IN",), run(list(args)))
            continue
        t.cmd(*args)
    t.check("dash_names")


# ------------------------------------------------------------------ numbers and modes


def test_sizes_take_T_and_decimals_that_make_whole_bytes(names):
    make, made = names
    a = make("A")
    t = Transcript(made)
    t.cmd("create", a, "1.5K")
    t.cmd("create", a + "_b", "1.5")
    t.cmd("create", a + "_b", "0.1K")
    t.cmd("create", a + "_b", "1.0000000000000000000000000000000001M")
    t.cmd("create", a + "_b", "16777216T")
    t.cmd("dump", a, "--offset", "1.5K")
    t.cmd("dump", a, "--offset", "0.5K", "--length", "0.03125K")
    t.cmd("rm", a)
    t.check("sizes")
    assert not os.path.exists(shm(a + "_b"))
    assert run(["create", a, "0.25M", "--sparse"]).returncode == 0
    assert os.stat(shm(a)).st_size == 1 << 18
    os.unlink(shm(a))
    assert run(["create", a, "1T", "--sparse"]).returncode == 0
    assert os.stat(shm(a)).st_size == 1 << 40
    os.unlink(shm(a))


def test_modes_are_permission_bits_only(names):
    make, made = names
    a = make("A")
    t = Transcript(made)
    for mode in ("4777", "2755", "1777", "07777", "0o644", "8"):
        for cmd in (["create", a, "64"], ["sync", "create", "mutex", a], ["array", "create", a, "u1"]):
            t.cmd(*cmd, "--mode", mode)
    t.check("modes")
    assert not os.path.exists(shm(a))
    assert run(["create", a, "64", "--mode", "0777"]).returncode == 0
    assert os.stat(shm(a)).st_mode & 0o7777 == 0o777 & ~current_umask()
    os.unlink(shm(a))


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


# ------------------------------------------------------------------ new subcommands


def test_array_create(names):
    make, made = names
    a, f, z, b = make("A"), make("F"), make("Z"), make("B")
    assert run(["array", "create", a, "float64", "3", "4"]).returncode == 0
    m = np.load(shm(a), mmap_mode="r")
    assert m.dtype == np.float64 and m.shape == (3, 4) and m.flags["C_CONTIGUOUS"] and not m.any()
    assert run(["array", "create", f, ">i2", "2", "5", "--fortran"]).returncode == 0
    m = np.load(shm(f), mmap_mode="r")
    assert m.dtype == np.dtype(">i2") and m.shape == (2, 5) and m.flags["F_CONTIGUOUS"]
    assert run(["array", "create", z, "bool"]).returncode == 0
    assert np.load(shm(z)).shape == ()
    t = Transcript(made)
    t.cmd("array", "create", b, "float65", "3")
    t.cmd("array", "create", b, "f8", "-3")
    t.cmd("array", "create", b, "f8", "x")
    t.cmd("array", "create", b)
    t.cmd("array", "create", a, "f8", "1")
    t.cmd("array", "info", a)
    t.check("array_create")
    assert not os.path.exists(shm(b))
    run(["rm", a, f, z])


def test_write_bytes_into_a_block(names, tmp_path):
    make, made = names
    a = make("A")
    assert run(["create", a, "64"]).returncode == 0
    r = runb(["write", a, "--offset", "10"], stdin=b"from\0stdin")
    assert r.returncode == 0 and r.stdout == b"", r.stderr
    (tmp_path / "f").write_bytes(b"FILE")
    assert run(["write", a, str(tmp_path / "f")]).returncode == 0
    assert runb(["write", a, "--offset", "60", "-"], stdin=b"1234").returncode == 0
    data = open(shm(a), "rb").read()
    assert data[:4] == b"FILE" and data[10:20] == b"from\0stdin" and data[60:] == b"1234"
    assert len(data) == 64
    missing = make("MISSING")
    t = Transcript(dict(made, **{str(tmp_path): "TMP"}))
    t.cmd("write", a, "--offset", "61", input="1234")  # one byte too many: nothing written
    t.cmd("write", a, "--offset", "65", input="")
    t.cmd("write", a, str(tmp_path / "missing"))
    t.cmd("write", missing, input="x")
    t.check("write")
    assert open(shm(a), "rb").read() == data
    run(["rm", a])


def test_queue_send_stdin_and_recv_raw(names):
    make, made = names
    q = make("Q")
    assert run(["queue", "create", q, "--mode", "mpmc", "--messages", "4", "--max-msg", "1024"]).returncode == 0
    payload = bytes(range(256)) + b"\n\0end"
    assert runb(["queue", "send", q, "--stdin"], stdin=payload).returncode == 0
    assert runb(["queue", "send", q, "-"], stdin=b"second").returncode == 0
    r = runb(["queue", "recv", q, "--raw"])
    assert r.returncode == 0 and r.stdout == payload
    r = runb(["queue", "recv", q, "--raw", "--count", "1"])
    assert r.stdout == b"second"
    t = Transcript(made)
    t.cmd("queue", "send", q, "--stdin", "extra")
    t.cmd("queue", "send", q, "--stdin", input="x" * 1025)  # larger than max-msg
    t.cmd("queue", "recv", q, "--raw", "--timeout", "10")
    t.cmd("queue", "close", q)
    t.cmd("queue", "send", q, "after the end")  # we shut it down ourselves
    t.cmd("queue", "create", make("P"), "--participants", "1")
    t.cmd("queue", "create", make("P"), "--max-deliveries", "0")
    t.cmd("rm", q)
    t.check("queue_raw")


# ------------------------------------------------------------------ dump


def test_dump_squeezes_repeats_as_hexdump_does(names):
    make, made = names
    a = make("A")
    assert run(["create", a, "300"]).returncode == 0
    data = bytearray(300)
    data[0:5] = b"start"
    data[100:103] = b"mid"
    data[250:] = b"\xab" * 50
    with open(shm(a), "r+b") as f:
        f.write(data)
    for extra in ([], ["--offset", "7"], ["--offset", "16", "--length", "200"], ["--offset", "300"]):
        ours = run(["dump", a, *extra]).stdout
        off = int(extra[1]) if extra and extra[0] == "--offset" else 0
        ln = ["-n", extra[extra.index("--length") + 1]] if "--length" in extra else []
        theirs = subprocess.run(["hexdump", "-C", "-s", str(off), *ln, shm(a)],
                                capture_output=True, text=True, check=True).stdout
        assert ours == theirs, (extra, ours, theirs)
    assert "*\n" in run(["dump", a]).stdout
    run(["rm", a])


# ------------------------------------------------------------------ messages


def test_messages_name_what_was_found(names):
    make, made = names
    arr, lst, q, raw, m = make("ARR"), make("LST"), make("Q"), make("RAW"), make("M")
    assert run(["array", "create", arr, "f8", "3"]).returncode == 0
    assert run(["list-create", lst, "1", "2", "3"]).returncode == 0
    assert run(["queue", "create", q]).returncode == 0
    assert run(["create", raw, "4K"]).returncode == 0
    assert run(["sync", "create", "mutex", m]).returncode == 0
    t = Transcript(made)
    t.cmd("list", arr)
    t.cmd("list", q)
    t.cmd("list", "--set", "0", "1", arr)
    t.cmd("sync", "info", arr)
    t.cmd("sync", "lock", lst)
    t.cmd("queue", "stat", lst)
    t.cmd("queue", "recv", m)
    t.cmd("array", "info", lst)
    t.cmd("array", "info", raw)
    t.cmd("array", "save", q, "-")
    t.cmd("sync", "wait", m)
    t.cmd("sync", "wait", arr, "--timeout", "10")
    t.check("kind_messages")
    run(["rm", arr, lst, q, raw, m])


def test_what_is_not_a_shared_memory_object(names):
    tag = "pshmcli_ftype_%d_" % os.getpid()
    fifo, link, d = tag + "fifo", tag + "link", tag + "dir"
    os.mkfifo(shm(fifo))
    os.symlink("/etc/hostname", shm(link))
    os.mkdir(shm(d))
    try:
        t = Transcript({tag: "T_"})
        for n in (fifo, link, d):
            t.cmd("info", n)
        # a FIFO never blocks a command that reads or writes objects
        t.cmd("dump", fifo)
        t.cmd("write", fifo, input="x")
        t.cmd("list", fifo)
        t.cmd("array", "info", fifo)
        t.cmd("queue", "stat", fifo)
        t.cmd("sync", "info", fifo)
        t.cmd("gc", link)
        t.cmd("ls", tag + "*")
        t.check("ftype")
    finally:
        os.unlink(shm(fifo))
        os.unlink(shm(link))
        os.rmdir(shm(d))
