# SPDX-License-Identifier: MIT
"""Golden test of `pshm sync ...` and of what `pshm ls` shows for sync objects.

The transcript of a fixed session (commands, exit codes, stdout, stderr) is
compared with sync.golden after replacing the test's unique name prefix with
NAME and process ids with PID. PSHM_UPDATE_GOLDEN=1 rewrites the file.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import ls_objects  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("PSHM_BUILD") or ROOT / "build").resolve()
PSHM = str(BUILD / "pshm")
GOLDEN = pathlib.Path(__file__).with_name("sync.golden")


class Session:
    def __init__(self, base):
        self.base = base
        self.lines = []
        self.pids = {}

    def norm(self, text):
        text = text.replace(self.base, "NAME")
        for pid, tag in self.pids.items():
            text = re.sub(r"\b%d\b" % pid, tag, text)
        # pids of the short-lived commands themselves (a refused lock's)
        return re.sub(r"\bpid[ =]\d+", lambda m: m.group(0)[:4] + "PID", text)

    def run(self, *args, want=0):
        p = subprocess.run([PSHM, *args], capture_output=True, text=True, timeout=30)
        self.record(args, p.returncode, p.stdout, p.stderr)
        assert p.returncode == want, (args, p.returncode, p.stdout, p.stderr)
        return p.stdout

    def record(self, args, code, out, err):
        self.lines.append(self.norm("$ pshm %s   [exit %d]" % (" ".join(args), code)))
        self.lines += [self.norm(line) for line in out.splitlines()]
        self.lines += [self.norm("! " + line) for line in err.splitlines()]

    def start(self, tag, *args):
        """Start a long-running command; returns once it printed its first line."""
        p = subprocess.Popen([PSHM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pids[p.pid] = tag
        first = p.stdout.readline()
        self.lines.append(self.norm("$ pshm %s &   [%s]" % (" ".join(args), tag)))
        self.lines.append(self.norm(first.rstrip("\n")))
        return p

    def finish(self, p, sig):
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        self.record(("# %s got %s" % (self.pids[p.pid], signal.Signals(sig).name),), p.returncode, out, err)

    def ls_kinds(self):
        objs = ls_objects(self.base + "*").values()
        mine = sorted((o["name"], o["summary"]) for o in objs)
        self.lines.append("$ pshm ls   [only NAME*: name, kind]")
        self.lines += [self.norm("%s  %s" % m) for m in mine]


@pytest.fixture
def session():
    base = "pshmcli_%s" % uuid.uuid4().hex[:10]
    s = Session(base)
    yield s
    for e in os.listdir("/dev/shm"):
        if e.startswith(base):
            os.unlink(os.path.join("/dev/shm", e))


def test_sync_cli_golden(session):
    s, n = session, session.base
    s.run("sync", "--help")
    # semaphore
    s.run("sync", "create", "sem", n + "_sem", "--value", "3")
    s.run("sync", "info", n + "_sem")
    s.run("sync", "post", n + "_sem", "2")
    s.run("sync", "wait", n + "_sem")
    s.run("sync", "info", "--json", n + "_sem")
    s.run("sync", "create", "sem", n + "_empty", "--undo")
    s.run("sync", "wait", n + "_empty", "--timeout", "30", want=1)
    # event
    s.run("sync", "create", "event", n + "_ev", "--manual")
    s.run("sync", "set", n + "_ev")
    s.run("sync", "wait", n + "_ev")
    s.run("sync", "info", n + "_ev")
    s.run("sync", "reset", n + "_ev")
    s.run("sync", "wait", n + "_ev", "--timeout", "20", want=1)
    # barrier of one
    s.run("sync", "create", "barrier", n + "_bar", "--count", "1")
    s.run("sync", "wait", n + "_bar")
    s.run("sync", "info", n + "_bar")
    # a mutex held by a process that is then killed
    s.run("sync", "create", "mutex", n + "_mtx")
    holder = s.start("HOLDER", "sync", "lock", n + "_mtx")
    s.run("sync", "info", n + "_mtx")
    s.run("sync", "lock", n + "_mtx", "--timeout", "20", want=1)
    s.ls_kinds()
    holder.kill()
    holder.wait(timeout=30)
    s.lines.append("# HOLDER killed (SIGKILL)")
    s.run("sync", "info", n + "_mtx")
    # a plain lock must not destroy recoverability: it refuses, leaving the
    # owner-dead state for the next locker, and names the recover command
    s.run("sync", "lock", n + "_mtx", want=1)
    s.run("sync", "lock", n + "_mtx", want=1)
    s.run("sync", "info", n + "_mtx")
    s.run("sync", "recover", n + "_mtx")
    s.run("sync", "info", n + "_mtx")
    s.run("sync", "recover", n + "_mtx")
    holder = s.start("HOLDER2", "sync", "lock", n + "_mtx")
    s.run("sync", "recover", n + "_mtx", want=1)
    holder.kill()
    holder.wait(timeout=30)
    s.lines.append("# HOLDER2 killed (SIGKILL)")
    fixer = s.start("FIXER", "sync", "lock", n + "_mtx", "--consistent")
    s.finish(fixer, signal.SIGTERM)
    s.run("sync", "info", n + "_mtx")
    # a read lock
    s.run("sync", "create", "rwlock", n + "_rw")
    reader = s.start("READER", "sync", "lock", n + "_rw", "--read")
    s.run("sync", "info", n + "_rw")
    s.run("sync", "lock", n + "_rw", "--timeout", "20", want=1)
    s.finish(reader, signal.SIGINT)
    s.run("sync", "create", "cond", n + "_cv")
    s.ls_kinds()
    # mistakes
    s.run("create", n + "_raw", "4096")
    s.run("sync", "info", n + "_raw", want=1)
    s.run("sync", "post", n + "_mtx", want=1)
    s.run("sync", "create", "spoon", n + "_x", want=2)
    s.run("sync", "create", "barrier", n + "_x", want=2)
    s.run("sync", "create", "sem", n + "_sem", want=1)
    s.run("sync", "info", n + "_missing", want=1)
    s.run("sync", want=2)

    text = "\n".join(s.lines) + "\n"
    if os.environ.get("PSHM_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


# ---------------------------------------------------------------- attacker
# Issue 11: corrupted bytes of every sync kind, through every CLI command
# that reads or uses them. Each command must end (within its deadline, plus
# a margin for a loaded machine) with an exit status, never a signal.

ATTACK_KINDS = [
    ("mutex", [], [("sync", "recover", "{n}", "--timeout", "20")]),
    ("cond", [], []),
    ("sem", ["--undo", "--value", "1"], [("sync", "wait", "{n}", "--timeout", "20"), ("sync", "post", "{n}")]),
    ("rwlock", [], [("sync", "recover", "{n}", "--timeout", "20")]),
    ("barrier", ["--count", "2"], [("sync", "wait", "{n}", "--timeout", "20"), ("sync", "reset", "{n}")]),
    ("event", [], [("sync", "wait", "{n}", "--timeout", "20"), ("sync", "set", "{n}"), ("sync", "reset", "{n}")]),
]
READERS = [("sync", "info", "{n}"), ("info", "--json", "{n}"), ("ls", "{n}"),
           ("dump", "{n}", "--length", "256")]


def run_attacked(args):
    try:
        p = subprocess.run([PSHM, *args], capture_output=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("%s: still running after 15 s" % " ".join(args))
    assert p.returncode >= 0, (args, "killed by signal %d" % -p.returncode, p.stderr[-300:])
    assert p.returncode in (0, 1), (args, p.returncode, p.stderr[-300:])


@pytest.mark.parametrize("kind,opts,users", ATTACK_KINDS, ids=[k[0] for k in ATTACK_KINDS])
def test_corrupt_sync_objects_never_crash_or_hang_the_cli(session, kind, opts, users):
    import random
    n = "%s_%s" % (session.base, kind)
    session.run("sync", "create", kind, n, *opts)
    path = os.path.join("/dev/shm", n)
    pristine = open(path, "rb").read()
    seed = int(os.environ.get("PSHM_SEED") or random.randrange(1 << 30))
    print("PSHM_SEED=%d" % seed)
    rnd = random.Random(seed)
    # words of the header and of the object's first 32 bytes (the lock word
    # and the owner always): all of them with PSHM_SOAK set, else 8 at random
    offs = list(range(0, min(len(pristine), 96), 4))
    if not os.environ.get("PSHM_SOAK"):
        offs = sorted(set(rnd.sample(offs, 6) + [72, 80]))
    for off in offs:
        for val in (0xffffffff, 0x80000000, rnd.getrandbits(32)):
            data = bytearray(pristine)
            data[off:off + 4] = val.to_bytes(4, "little")
            with open(path, "r+b") as f:
                f.write(data)
            for cmd in READERS + users:
                run_attacked([a.format(n=n) for a in cmd])
    with open(path, "r+b") as f:
        f.write(pristine)


def test_dump_of_a_held_mutex_shows_no_addresses(session):
    """Every byte of a held mutex is accounted for: its id, the holder's
    tid in the lock word, the holder's identity (tid, start time), the
    waiter count and state - no pointer, no thread-local address."""
    n = session.base + "_held"
    session.run("sync", "create", "mutex", n)
    holder = session.start("HOLDER", "sync", "lock", n)
    try:
        out = subprocess.run([PSHM, "dump", n], capture_output=True, text=True, timeout=30).stdout
        raw = bytearray()
        for line in out.splitlines():
            m = re.match(r"^([0-9a-f]{8})  ([0-9a-f ]+)\|", line)
            if m:
                off = int(m.group(1), 16)
                while len(raw) < off:  # a '*' line: repeats of zeros here
                    raw += b"\0"
                raw += bytes.fromhex(m.group(2).replace(" ", ""))
            elif re.match(r"^[0-9a-f]{8}$", line):  # the end
                raw += bytes(int(line, 16) - len(raw))
        obj = raw[64:64 + 64]
        start = int(open("/proc/%d/stat" % holder.pid).read().rsplit(")", 1)[1].split()[19])
        word = int.from_bytes(obj[8:12], "little")
        owner = int.from_bytes(obj[16:24], "little")
        assert word & 0x7fffffff == holder.pid
        assert owner == (holder.pid << 32) | (start & 0xffffffff)
        assert obj[12:16] == b"\0\0\0\0"
        assert obj[32:] == bytes(32), "bytes past the mutex's fields are not zero"
    finally:
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=30)
