# SPDX-License-Identifier: MIT
"""Golden-file testing for the pshm CLI.

A case is a list of shell-free command lines run in order; the transcript
(command, stdout, stderr, exit status), with the test's unique name and other
run-dependent values normalised, must equal tests/cli/golden/<case>.out.
PSHM_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing.
"""
import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
BUILD = os.path.abspath(os.environ.get("PSHM_BUILD") or os.path.join(HERE, "..", "..", "build"))
CLI = os.path.join(BUILD, "pshm")


def run(args, **kw):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, **kw)


def _no_constant(name):
    raise ValueError("not strict JSON: %s" % name)


def strict_json(raw):
    """Parse a --json document as a strict consumer would: the bytes must be
    UTF-8 (strict decode), the text one JSON document without NaN/Infinity,
    versioned by "schema": 1 at the top."""
    doc = json.loads(raw.decode("utf-8", errors="strict"), parse_constant=_no_constant)
    assert isinstance(doc, dict) and doc.get("schema") == 1, doc
    return doc


def run_json(args, want=0):
    """Run a --json command; return its document (strictly parsed)."""
    r = subprocess.run([CLI, *args], capture_output=True, timeout=60)
    assert r.returncode == want, r.stderr.decode(errors="replace")
    return strict_json(r.stdout)


def ls_objects(*patterns):
    """`pshm ls --json PATTERN...`: {name: object}."""
    return {o["name"]: o for o in run_json(["ls", "--json", *patterns])["objects"]}


def normalise(text, names):
    for real, alias in names.items():
        text = text.replace(real, alias)
    text = re.sub(r"\bowner:    \S+ \(uid \d+\), group \S+ \(gid \d+\)",
                  "owner:    USER (uid UID), group GROUP (gid GID)", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "DATE", text)
    text = re.sub(r"pid \d+ \(", "pid PID (", text)
    text = re.sub(r"\b\d+\((alive|dead)\)", r"PID(\1)", text)
    text = re.sub(r'"creator_pid":\d+', '"creator_pid":PID', text)
    return text


class Transcript:
    def __init__(self, names):
        self.names = names
        self.parts = []

    def add(self, args, result):
        shown = " ".join(args)
        self.parts.append("$ pshm %s\n" % shown)
        out = result.stdout
        if args and args[0] == "ls" and "--json" not in args and "--help" not in args:
            # the names shown are shorter than the real ones: the columns'
            # alignment is tested on its own (test_ls_columns_stay_aligned)
            out = re.sub(r" {2,}", "  ", out)
        if out:
            self.parts.append(out if out.endswith("\n") else out + "\n")
        if result.stderr:
            self.parts.append("[stderr]\n" + result.stderr)
        self.parts.append("[exit %d]\n" % result.returncode)

    def cmd(self, *args, **kw):
        r = run(list(args), **kw)
        self.add(args, r)
        return r

    def note(self, text):
        self.parts.append("# %s\n" % text)

    def check(self, case):
        got = normalise("".join(self.parts), self.names)
        path = os.path.join(GOLDEN, case + ".out")
        if os.environ.get("PSHM_UPDATE_GOLDEN"):
            with open(path, "w") as f:
                f.write(got)
            return
        with open(path) as f:
            want = f.read()
        assert got == want, "CLI transcript differs from %s:\n%s" % (path, got)
