# SPDX-License-Identifier: MIT
"""`pip install --no-build-isolation .` (the top of the tree) and `./python`
work offline with Debian's setuptools and give a self-contained module (no
libpshm.so needed)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.mark.parametrize("where", [".", "python"])
def test_pip_install_offline(tmp_path, where):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pip is not installed for this python (Debian: python3-pip)")
    # build from a copy, so the source tree gets no build/ or egg-info
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns("build*", ".git", "bench", "tests", "doc"))
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PSHM_GROUP")}
    env["PIP_NO_INDEX"] = "1"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                          "--target", str(target), str(src / where)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    env["PYTHONPATH"] = str(target)
    code = ("import pshm, sys; sl = pshm.ShareableList([1, 'a']); sl[0] = 7; print(pshm.__version__, list(sl));"
            "sl.shm.unlink(); print('libpshm.so' in open('/proc/self/maps').read(), pshm._shm.__file__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].endswith("[7, 'a']")
    assert lines[1].startswith("False " + str(target))
    for stub in ("py.typed", "shared_memory.pyi", "managers.pyi", "_shm.pyi"):
        assert (target / "pshm" / stub).exists(), stub
    if where == ".":
        mpi_from_pip(target, env)


def mpi_from_pip(target, env):
    """pshm._mpi (issue 13) is built where mpicc and mpi4py are: the MPI
    tests' Python part, run against the installed module (self-contained: no
    libpshm.so, no libpshm_mpi.so mapped)."""
    import shutil
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return
    if not shutil.which("mpicc") or not shutil.which("mpirun"):
        return
    assert list((target / "pshm").glob("_mpi.*.so")), "mpicc and mpi4py are here, but pip built no pshm._mpi"
    build = os.environ.get("PSHM_BUILD", os.path.join(ROOT, "build"))
    code = ("import pshm._mpi, runpy, sys; assert pshm._mpi.__file__.startswith(%r), pshm._mpi.__file__;"
            "assert 'libpshm' not in open('/proc/self/maps').read(), 'a libpshm*.so is mapped';"
            "sys.argv = ['test_mpi_python.py']; runpy.run_path(%r, run_name='__main__')"
            % (str(target), os.path.join(ROOT, "tests", "mpi", "test_mpi_python.py")))
    env = dict(env, PSHM_BUILD=build)
    run = subprocess.run([os.path.join(ROOT, "tests", "mpi", "run.sh"), "4", "shm", "2", sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, cwd=str(target.parent), timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    # every case of test_mpi_python ran and passed (each prints "ok NAME")
    done = re.search(r"^(\d+) passed, 0 failed$", run.stdout, re.M)
    oks = [ln for ln in run.stdout.splitlines() if ln.startswith("ok ")]
    assert done and int(done.group(1)) == len(oks) >= 5, run.stdout
