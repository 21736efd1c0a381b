# SPDX-License-Identifier: MIT
"""The CLI as an attacker's victim (issue 11): corrupt header words of every
kind through every inspecting command, a second unprivileged user's files,
held hold bytes and forged lifetime marks against root's ls, info and gc.
Every command must end by itself, within its deadline, with status 0 or 1
(never a signal, never usage), and --json output must stay strict JSON."""
import os
import random
import struct
import subprocess
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CLI, run, strict_json  # noqa: E402
from test_cli_hostile import HOLD_OFFSET, as_user, make_kinds, other_user, shm  # noqa: E402,F401

# What a victim runs on an object a peer wrote (NAME is replaced).
VICTIM = [["ls", "NAME"], ["ls", "--json", "NAME"], ["info", "NAME"], ["info", "--json", "NAME"],
          ["dump", "--length", "256", "NAME"], ["list", "NAME"], ["list", "--get", "0", "NAME"],
          ["array", "info", "NAME"], ["array", "info", "--json", "NAME"], ["array", "save", "NAME", "-"],
          ["queue", "stat", "NAME"], ["queue", "stat", "--json", "NAME"],
          ["queue", "recv", "--timeout", "50", "NAME"]]


def victim(name):
    """Run every command on name; the failures, as text (empty: none)."""
    bad = []
    for cmd in VICTIM:
        args = [name if a == "NAME" else a for a in cmd]
        try:
            r = subprocess.run([CLI, *args], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            bad.append("%s: still running after 10 s" % args[:-1])
            continue
        if r.returncode not in (0, 1):
            bad.append("%s: exit %d %s" % (args, r.returncode, r.stderr[-200:]))
        elif "--json" in args and r.returncode == 0:
            try:
                strict_json(r.stdout)
            except Exception as e:  # noqa: BLE001
                bad.append("%s: not strict JSON: %s" % (args, e))
    return bad


def corrupt(path, image, words):
    with open(path, "r+b") as f:
        f.truncate(len(image))
        f.write(image)
        for off, val in words:
            f.seek(off)
            f.write(struct.pack("<I", val & 0xFFFFFFFF))


SOAK = os.environ.get("PSHM_SOAK", "0") not in ("", "0")


@pytest.mark.parametrize("kind", ["list", "array", "mpmc"])
def test_every_command_survives_hostile_header_words(names, kind):
    make, made = names
    objs = make_kinds(make)
    name = objs[kind]
    with open(shm(name), "rb") as f:
        image = f.read()
    size = len(image)
    tried = []
    # Systematic: every word of the first 128 bytes (the header every kind
    # starts with) set to each hostile value; then random multi-word hits
    # anywhere in the block (seeded, the seed printed on failure).
    for off in range(0, min(128, size) - 3, 4):
        for val in (0, 1, 0xFFFFFFFF, 0x80000000, size, size + 1):
            tried.append([(off, val)])
    seed = int(os.environ.get("PSHM_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    for _ in range(25 if SOAK else 3):
        tried.append([(rnd.randrange(0, size // 4) * 4,
                       rnd.choice([rnd.getrandbits(32), size, rnd.randrange(0, 2 * size + 1)]))
                      for _ in range(rnd.randint(1, 4))])
    # Each CLI process costs milliseconds: make test runs the victim on a
    # sample of the systematic set (every fourth word, rotating values) and
    # 3 random attacks; PSHM_SOAK=1 on every word and value and 25.
    sample = [w for i, w in enumerate(tried)
              if SOAK or len(w) > 1 or (i // 6 % 4 == 0 and i % 6 == (i // 24) % 6)]
    for words in sample:
        corrupt(shm(name), image, words)
        bad = victim(name)
        assert not bad, "PSHM_SEED=%d, %s: %s" % (seed, words, bad)


SCRIPT_HOG = textwrap.dedent("""
    import fcntl, os, struct, sys, time
    d = sys.argv[1]
    # a marked file of our own whose hold byte we hold exclusively, for ever
    fd = os.open(d + "_hog", os.O_CREAT | os.O_RDWR, 0o644)
    os.ftruncate(fd, 4096)
    try:
        os.setxattr(fd, "user.pshm", b"pshm1 auto 1 1")
    except OSError:
        pass
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hh4xqqi4x", fcntl.F_WRLCK, os.SEEK_SET, %d, 1, 0))
    # and the odd things a user can put in /dev/shm
    os.mkfifo(d + "_fifo", 0o666)
    os.symlink("/etc/shadow", d + "_link")
    os.mkdir(d + "_dir")
    big = os.open(d + "_sparse", os.O_CREAT | os.O_RDWR, 0o644)
    os.ftruncate(big, 1 << 40)
    os.open(d + "_empty", os.O_CREAT | os.O_RDWR, 0o644)
    print("ready", flush=True)
    time.sleep(600)
""" % HOLD_OFFSET)


def test_another_user_cannot_hang_or_crash_roots_ls_info_gc(names, other_user):  # noqa: F811
    make, made = names
    base = shm(make("u"))
    for suffix in ("_hog", "_fifo", "_link", "_dir", "_sparse", "_empty"):
        made[os.path.basename(base) + suffix] = "u" + suffix

    def drop():
        os.setgroups([])
        os.setgid(other_user.pw_gid)
        os.setuid(other_user.pw_uid)
    p = subprocess.Popen([sys.executable, "-c", SCRIPT_HOG, base], stdout=subprocess.PIPE, text=True,
                         preexec_fn=drop)
    try:
        assert p.stdout.readline() == "ready\n"
        pattern = os.path.basename(base) + "_*"
        objs = [os.path.basename(base) + s for s in ("_hog", "_fifo", "_link", "_dir", "_sparse", "_empty")]
        for args in (["ls", pattern], ["ls", "--json", pattern], ["info", *objs], ["info", "--json", *objs],
                     ["gc", "--dry-run", *objs], ["gc", *objs], ["dump", "--length", "64", objs[0]]):
            r = subprocess.run([CLI, *args], capture_output=True, timeout=20)
            assert r.returncode in (0, 1), (args, r.returncode, r.stderr)
            if "--json" in args:
                strict_json(r.stdout)
        for o in objs:  # nothing of the user's was removed by root's gc
            assert os.path.lexists(shm(o)), o
    finally:
        p.kill()
        p.wait(10)
    os.rmdir(base + "_dir")


def test_a_forged_auto_mark_makes_roots_gc_remove_nothing(names, other_user):  # noqa: F811
    make, made = names
    a = make("victim")
    assert run(["create", a, "4K"]).returncode == 0  # root's, PERSIST
    os.chmod(shm(a), 0o666)  # others may write it, not remove it

    def forge():
        os.setgroups([])
        os.setgid(other_user.pw_gid)
        os.setuid(other_user.pw_uid)
    r = subprocess.run([sys.executable, "-c",
                        "import os,sys; os.setxattr(sys.argv[1], 'user.pshm', b'pshm1 auto 2147483646 1')",
                        shm(a)], capture_output=True, text=True, preexec_fn=forge)
    if r.returncode != 0:
        pytest.skip("cannot set a user xattr on /dev/shm here: " + r.stderr.strip())
    doc = strict_json(subprocess.run([CLI, "ls", "--json", a], capture_output=True).stdout)
    assert doc["objects"][0]["lifetime"] == "persist", doc
    r = run(["gc", a])
    assert r.returncode == 0 and "removed" not in r.stdout, r
    assert os.path.exists(shm(a))
