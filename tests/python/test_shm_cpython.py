# SPDX-License-Identifier: MIT
"""CPython's _TestSharedMemory against pshm, under fork, spawn and
forkserver (tests/python/cpython_suite.py), the three in parallel."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("test._test_multiprocessing", reason="needs libpython3.11-testsuite (scripts/deps.sh)")

RUNNER = os.path.join(os.path.dirname(__file__), "cpython_suite.py")
METHODS = ("fork", "spawn", "forkserver")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cpython")
    procs = {m: subprocess.Popen([sys.executable, RUNNER, m], cwd=tmp, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for m in METHODS}
    out = {}
    for m, p in procs.items():
        try:
            text, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate()
            text += "\n(timed out)"
        out[m] = (p.returncode, text)
    return out


@pytest.mark.parametrize("method", METHODS)
def test_cpython_shared_memory_suite(runs, method):
    rc, text = runs[method]
    summary = [line for line in text.splitlines() if line.startswith(f"[{method}]")]
    print("\n".join(summary))
    assert rc == 0, text
    assert f"[{method}] 13 run, 12 passed, 1 failed (1 on purpose)" in text
