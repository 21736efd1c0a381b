# SPDX-License-Identifier: MIT
"""The README's first Python example runs as documented (right after make,
from the top of the tree with PYTHONPATH=build/python) and prints what its
comments promise."""
import os
import re
import subprocess
import sys

from conftest import BUILD

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def first_python_example():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("\n## Python\n"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_first_python_example():
    code = first_python_example()
    assert "PYTHONPATH=build/python" in code
    expected = [line.split("#", 1)[1].strip() for line in code.splitlines() if line.startswith("print(")]
    assert len(expected) == 2
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PSHM_GROUP")}
    env["PYTHONPATH"] = os.path.relpath(os.path.join(BUILD, "python"), ROOT)  # build/python
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == expected
