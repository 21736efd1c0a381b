# SPDX-License-Identifier: MIT
"""Golden tests for `pshm array ...` and the array kind in `pshm ls`/`info`.
Regenerate the golden files with PSHM_UPDATE_GOLDEN=1 (then review the diff).
Block names and temporary paths are replaced by NAME/TMP in the output."""
import io
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import ls_objects  # noqa: E402

BUILD = os.path.abspath(os.environ.get("PSHM_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build"))
CLI = os.path.join(BUILD, "pshm")
GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
UPDATE = os.environ.get("PSHM_UPDATE_GOLDEN") == "1"


@pytest.fixture
def names():
    made = []

    def make(tag):
        n = "pshmcli_%d_%s_%s" % (os.getpid(), tag, uuid.uuid4().hex[:6])
        made.append(n)
        return n

    yield make
    for n in made:
        try:
            os.unlink("/dev/shm/" + n)
        except FileNotFoundError:
            pass


def run(*args, subs=(), stdin=None):
    """Run the CLI; return a transcript: the command, stdout, stderr, exit code."""
    r = subprocess.run([CLI, *args], capture_output=True, timeout=60, input=stdin)
    out = "$ pshm %s\n%s%s[exit %d]\n" % (" ".join(args), r.stdout.decode(errors="replace"),
                                         "".join("stderr: " + line + "\n" for line in r.stderr.decode().splitlines()),
                                         r.returncode)
    for old, new in subs:
        out = out.replace(old, new)
    return out


def golden(fname, text):
    path = os.path.join(GOLDEN, fname)
    if UPDATE:
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        want = f.read()
    assert text == want, "output differs from %s (PSHM_UPDATE_GOLDEN=1 regenerates)" % path


def save(path, arr):
    with open(path, "wb") as f:
        np.save(f, arr)


def test_help():
    golden("array_help.out", run("array", "--help") + run("array") + run("array", "frobnicate"))


def test_load_info_save(names, tmp_path):
    n = names("a")
    subs = [(n, "NAME"), (str(tmp_path), "TMP")]
    src = tmp_path / "m.npy"
    save(src, np.arange(12.0).reshape(3, 4))
    out = run("array", "load", str(src), n, subs=subs)
    out += run("array", "info", n, subs=subs)
    out += run("array", "info", "--json", n, subs=subs)
    out += run("array", "save", n, str(tmp_path / "back.npy"), subs=subs)
    golden("array_load_info_save.out", out)
    assert (tmp_path / "back.npy").read_bytes() == src.read_bytes()
    assert open("/dev/shm/" + n, "rb").read() == src.read_bytes()
    # save to stdout
    r = subprocess.run([CLI, "array", "save", n, "-"], capture_output=True)
    assert r.returncode == 0 and r.stdout == src.read_bytes()
    assert np.array_equal(np.load(io.BytesIO(r.stdout)), np.arange(12.0).reshape(3, 4))


def test_info_of_every_kind(names, tmp_path):
    out = ""
    for tag, arr in [("be", np.asfortranarray(np.arange(6, dtype=">i2").reshape(2, 3))),
                     ("u", np.array(["ab", "c"], dtype="<U4")),
                     ("s", np.zeros((2, 2), dtype="S3")),
                     ("b", np.float16(1.5)),
                     ("e", np.zeros((0, 5), dtype="?")),
                     ("c", np.zeros(3, dtype="<c16"))]:
        n = names(tag)
        f = tmp_path / (tag + ".npy")
        save(f, arr)
        subprocess.run([CLI, "array", "load", str(f), n], check=True, capture_output=True)
        out += run("array", "info", n, subs=[(n, "NAME")])
        kind = [line for line in run("info", n).splitlines() if line.startswith("kind:")]
        out += "%s\n" % kind[0]
    golden("array_info_kinds.out", out)


def test_ls_shows_array_kind(names, tmp_path):
    n = names("ls")
    f = tmp_path / "x.npy"
    save(f, np.zeros((1000, 3)))
    subprocess.run([CLI, "array", "load", str(f), n], check=True, capture_output=True)
    r = subprocess.run([CLI, "ls", n[:-2] + "*"], capture_output=True, text=True, check=True)  # own names only
    line = [x for x in r.stdout.splitlines() if x.startswith(n + " ")]
    assert len(line) == 1 and line[0].endswith("array <f8 (1000, 3)"), r.stdout
    o = ls_objects(n)[n]
    assert o["kind"] == "array" and o["summary"] == "array <f8 (1000, 3)"
    d = o["details"]
    assert d["dtype"] == "<f8" and d["shape"] == [1000, 3] and d["order"] == "C"
    assert d["strides"] == [24, 8] and d["nbytes"] == 24000


def test_load_random_name(names, tmp_path):
    f = tmp_path / "x.npy"
    save(f, np.arange(3, dtype="<u2"))
    r = subprocess.run([CLI, "array", "load", str(f)], capture_output=True, text=True)
    assert r.returncode == 0
    name = r.stdout.strip()
    names("unused")
    try:
        assert name.startswith("psm_") and len(name) == 20
        assert np.array_equal(np.load("/dev/shm/" + name, mmap_mode="r"), np.arange(3, dtype="<u2"))
    finally:
        os.unlink("/dev/shm/" + name)


def test_load_mode(names, tmp_path):
    n = names("mode")
    f = tmp_path / "x.npy"
    save(f, np.arange(3))
    old = os.umask(0)
    try:
        subprocess.run([CLI, "array", "load", str(f), n, "--mode", "0640"], check=True, capture_output=True)
    finally:
        os.umask(old)
    assert os.stat("/dev/shm/" + n).st_mode & 0o7777 == 0o640


def test_errors(names, tmp_path):
    n, raw, st = names("err"), names("raw"), names("st")
    subs = [(n, "NAME"), (raw, "RAW"), (st, "STRUCT"), (str(tmp_path), "TMP")]
    good = tmp_path / "good.npy"
    save(good, np.arange(4))
    (tmp_path / "text.npy").write_bytes(b"just some text, no magic here")
    structured = tmp_path / "struct.npy"
    save(structured, np.zeros(2, dtype=[("x", "<f8"), ("y", "<i4")]))
    short = tmp_path / "short.npy"
    short.write_bytes(good.read_bytes()[:-3])
    (tmp_path / "empty.npy").write_bytes(b"")
    subprocess.run([CLI, "create", raw, "4096"], check=True)
    with open("/dev/shm/" + st, "wb") as f:
        np.save(f, np.zeros(2, dtype=[("x", "<f8")]))
    out = ""
    out += run("array", "load", str(tmp_path / "text.npy"), n, subs=subs)
    out += run("array", "load", str(structured), n, subs=subs)
    out += run("array", "load", str(short), n, subs=subs)
    out += run("array", "load", str(tmp_path / "empty.npy"), n, subs=subs)
    out += run("array", "load", str(tmp_path / "missing.npy"), n, subs=subs)
    out += run("array", "load", str(tmp_path), n, subs=subs)
    out += run("array", "load", str(good), "bad/name", subs=subs)
    out += run("array", "load", str(good), n, subs=subs)
    out += run("array", "load", str(good), n, subs=subs)  # exists now
    out += run("array", "load", subs=subs)
    out += run("array", "load", str(good), n, "extra", subs=subs)
    out += run("array", "load", str(good), n, "--mode", "9", subs=subs)
    out += run("array", "load", str(good), n, "--frob", subs=subs)
    out += run("array", "info", subs=subs)
    out += run("array", "info", "pshmcli_does_not_exist", subs=subs)
    out += run("array", "info", raw, subs=subs)
    out += run("array", "info", st, subs=subs)
    out += [x for x in run("info", st).splitlines() if x.startswith("kind:")][0] + "\n"
    out += run("array", "save", n, subs=subs)
    out += run("array", "save", n, str(tmp_path / "no" / "such" / "dir.npy"), subs=subs)
    out += run("array", "save", raw, str(tmp_path / "x.npy"), subs=subs)
    golden("array_errors.out", out)
    assert not (tmp_path / "x.npy").exists()
