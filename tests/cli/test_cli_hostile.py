# SPDX-License-Identifier: MIT
"""The CLI against other people's objects (issue 11's threat model): a peer
that shrinks a block while a command reads it, a peer that holds a block's
hold byte for ever, and a user who may not read a block. No command may die
of a signal, wait without end, or pretend to know what it cannot read."""
import fcntl
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CLI, Transcript, run, run_json, strict_json  # noqa: E402

HOLD_OFFSET = 0x7FFFFFFF00000000  # src/os/linux.c: the hold byte


def shm(name):
    return "/dev/shm/" + name


def make_kinds(make):
    """One object of every kind, through the CLI: {kind: name}."""
    objs = {k: make(k) for k in ("raw", "list", "array", "spsc", "mpmc", "mutex", "sem")}
    steps = [
        ["create", objs["raw"], "4K"],
        ["write", objs["raw"], "-"],
        ["list-create", objs["list"], "1", "'two'", "None", "b'four'"],
        ["array", "create", objs["array"], "f8", "10", "3"],
        ["queue", "create", objs["spsc"], "--ring-bytes", "4K", "--max-msg", "100"],
        ["queue", "send", objs["spsc"], "one", "two", "three"],
        ["queue", "create", objs["mpmc"], "--mode", "mpmc", "--messages", "8", "--max-msg", "64"],
        ["queue", "send", objs["mpmc"], "one", "two"],
        ["sync", "create", "mutex", objs["mutex"]],
        ["sync", "create", "sem", objs["sem"], "--value", "3"],
    ]
    for s in steps:
        r = run(s, input="raw bytes\n" * 10)
        assert r.returncode == 0, (s, r.stderr)
    return objs


def commands(name):
    """Every command that touches an existing object (each must end by
    itself: no hold, no wait without a timeout)."""
    return [
        ["ls", name], ["ls", "--json", name], ["info", name], ["info", "--json", name],
        ["dump", name], ["list", name], ["list", "--get", "0", name], ["list", "--format", name],
        ["array", "info", name], ["array", "info", "--json", name], ["array", "save", name, "-"],
        ["queue", "stat", name], ["queue", "stat", "--json", name], ["sync", "info", name],
        ["sync", "info", "--json", name],
        ["write", "--offset", "1", name], ["list", "--set", "0", "5", name],
        ["queue", "send", "--timeout", "50", name, "m"], ["queue", "recv", "--timeout", "50", name],
        ["sync", "post", name], ["sync", "wait", "--timeout", "50", name],
        ["sync", "recover", name], ["gc", name],
    ]


INSPECT = [["ls", "NAME"], ["ls", "--json", "NAME"], ["info", "NAME"], ["info", "--json", "NAME"],
           ["dump", "NAME"], ["list", "NAME"], ["array", "info", "NAME"], ["array", "save", "NAME", "-"],
           ["queue", "stat", "NAME"], ["sync", "info", "NAME"]]

SHRINKER = textwrap.dedent("""
    import os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    keep = os.pread(fd, os.fstat(fd).st_size, 0)
    print("ready", flush=True)
    while True:
        os.ftruncate(fd, 0)
        os.ftruncate(fd, len(keep))
        os.pwrite(fd, keep, 0)
""")

# Holds the hold byte exclusively, as a closing last holder does (and as any
# user may, for ever, on a block of their own). It first holds it shared
# beside the block's creator, and takes it exclusively once told the creator
# is gone, so the block is never stale in between (a collector could take it).
HOG = textwrap.dedent("""
    import fcntl, os, struct, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR)
    def lock(kind):
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hh4xqqi4x", kind, os.SEEK_SET, %d, 1, 0))
    lock(fcntl.F_RDLCK)
    print("shared", flush=True)
    sys.stdin.readline()
    lock(fcntl.F_WRLCK)
    print("ready", flush=True)
    time.sleep(600)
""" % HOLD_OFFSET)


def start_peer(script, path):
    p = subprocess.Popen([sys.executable, "-c", script, path], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    return p


def stop(p):
    p.kill()
    p.wait(10)


def test_no_command_dies_of_a_peer_that_shrinks_the_block(names):
    make, made = names
    objs = make_kinds(make)
    died = []
    for kind, name in objs.items():
        peer = start_peer(SHRINKER, shm(name))
        try:
            for rep in range(1):
                for args in commands(name):
                    r = subprocess.run([CLI, *args], capture_output=True, timeout=60, input=b"x")
                    # a failure is fine (the bytes change under it); a signal is not
                    if r.returncode not in (0, 1):
                        died.append((kind, args, r.returncode, r.stderr[-300:]))
        finally:
            stop(peer)
    assert not died, died


def hogged_copy(make, kind, src):
    """An AUTO block holding a copy of src's bytes whose only holder is a
    hog holding its hold byte exclusively (its creator SIGKILLed): what
    pshm_block_open waits on. Returns (name, hog)."""
    name = make("hogged_" + kind)
    data = open(shm(src), "rb").read()
    creator = subprocess.Popen([CLI, "create", name, str(len(data)), "--lifetime", "auto", "--hold"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not creator.stdout.readline():
        err = creator.stderr.read()
        creator.wait()
        if "cannot mark" in err:
            pytest.skip("AUTO lifetimes cannot be recorded here (no tmpfs xattrs): " + err)
        raise AssertionError(err)
    r = subprocess.run([CLI, "write", name, "-"], input=data, capture_output=True)
    assert r.returncode == 0, r.stderr
    hog = subprocess.Popen([sys.executable, "-c", HOG, shm(name)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    assert hog.stdout.readline() == "shared\n"
    creator.kill()
    creator.wait(10)
    hog.stdin.write("go\n")
    hog.stdin.flush()
    assert hog.stdout.readline() == "ready\n"
    return name, hog


def test_inspection_never_waits_for_a_peer_holding_the_hold_byte(names):
    make, made = names
    objs = make_kinds(make)
    for kind, src in objs.items():
        name, hog = hogged_copy(make, kind, src)
        try:
            for args in INSPECT:
                args = [name if a == "NAME" else a for a in args]
                try:
                    r = subprocess.run([CLI, *args], capture_output=True, timeout=30)
                except subprocess.TimeoutExpired:
                    pytest.fail("%s waited on the peer holding %s's hold byte" % (args, kind))
                assert r.returncode in (0, 1), (args, r.returncode, r.stderr)
            # looking removed nothing and recognised the kind
            info = run_json(["info", "--json", name])["objects"][0]
            want = {"spsc": "queue", "mpmc": "queue", "mutex": "sync", "sem": "sync"}.get(kind, kind)
            assert info["kind"] == want, (kind, info)
            assert os.path.exists(shm(name))
        finally:
            stop(hog)


# ------------------------------------------------------------------ another user

USER = "pshmcli"


@pytest.fixture(scope="module")
def other_user():
    """An unprivileged user made for these tests (kept: making one is slow)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a second user (useradd)")
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True, capture_output=True)
        pw = pwd.getpwnam(USER)
    return pw


def as_user(pw, args, **kw):
    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, preexec_fn=drop, **kw)


def test_a_user_who_may_not_read_a_block_is_told_so(names, other_user):
    make, made = names
    secret, public = make("SECRET"), make("PUBLIC")
    assert run(["list-create", secret, "1", "2"]).returncode == 0  # mode 0600, root's
    assert run(["create", public, "4K", "--mode", "0644"]).returncode == 0
    t = Transcript(made)
    for args in (["info", secret], ["info", public], ["dump", secret], ["list", secret], ["queue", "stat", secret]):
        t.add(args, as_user(other_user, args))
    t.check("other_user")
    rows = {line.split()[0]: line.split() for line in as_user(other_user, ["ls", secret, public]).stdout.splitlines()[1:]}
    # NAME SIZE OWNER MODE LIFETIME MAPPED CREATOR KIND
    assert rows[secret][2] == "root" and rows[secret][4] == "?" and rows[secret][7] == "?"
    assert rows[secret][5] == "?" and rows[secret][6] == "?"  # not "0": the user cannot know
    assert rows[public][4] == "persist" and rows[public][7] == "raw"
    doc = strict_json(as_user(other_user, ["ls", "--json", secret]).stdout.encode())
    o = doc["objects"][0]
    assert o["readable"] is False and o["kind"] is None and o["lifetime"] is None
    assert o["mapped"] is None and o["creator_pid"] is None and o["user"] == "root"
    run(["rm", secret, public])


def test_gc_that_hits_permission_denied_fails_like_gc_name(names, other_user):
    make, made = names
    a = make("A")
    p = subprocess.Popen([CLI, "create", a, "4K", "--lifetime", "auto", "--hold", "--mode", "0644"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not p.stdout.readline():
        pytest.skip("AUTO lifetimes cannot be recorded here: " + p.stderr.read())
    p.kill()
    p.wait(10)  # stale, and root's: the other user may not remove it
    r = as_user(other_user, ["gc", a])
    assert r.returncode == 1 and ("Permission denied" in r.stderr or "not permitted" in r.stderr), r
    assert os.path.exists(shm(a))
    # A global gc, as the other user, in a private /dev/shm (a mount
    # namespace with its own tmpfs) holding only such a block: a global gc on
    # the shared /dev/shm would touch other tests' objects.
    script = textwrap.dedent("""
        set -e
        mount -t tmpfs -o mode=1777 pshmtest /dev/shm
        "$CLI" create "$A" 4K --lifetime auto --hold --mode 0644 > /dev/null &
        for i in $(seq 100); do [ -e "/dev/shm/$A" ] && break; sleep 0.05; done
        kill -9 $!; wait $! || true
        set +e
        setpriv --reuid="$U" --regid="$G" --clear-groups "$CLI" gc
        echo "rc=$?"
        [ -e "/dev/shm/$A" ] && echo kept
    """)
    env = dict(os.environ, CLI=CLI, A=a, U=str(other_user.pw_uid), G=str(other_user.pw_gid))
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60, env=env)
    if "rc=" not in r.stdout:
        pytest.skip("no private /dev/shm here (unshare/mount): " + r.stderr.strip())
    assert "rc=1" in r.stdout and "kept" in r.stdout, r
    assert a in r.stderr and ("Permission denied" in r.stderr or "not permitted" in r.stderr), r
    r = run(["gc", a])
    assert r.returncode == 0 and r.stdout == "removed %s\n" % a
    assert not os.path.exists(shm(a))
