# SPDX-License-Identifier: MIT
"""CPython's own tests of multiprocessing.shared_memory (_TestSharedMemory
from test._test_multiprocessing, Debian's libpython3.11-testsuite), run
against pshm substituted for the stdlib module.

    python3 tests/python/cpython_suite.py fork|spawn|forkserver

pshm.shared_memory replaces multiprocessing.shared_memory (in sys.modules,
so the suite's mock.patch of _make_filename reaches pshm) and
pshm.SharedMemoryManager replaces multiprocessing.managers'. The
substitution is made when this file is imported, so spawn and forkserver
children (which re-import the main module) run pshm too.

Exit status 0 when exactly the tests in EXPECTED_FAILURES fail (each with
its reason) and every other test passes; 1 otherwise (an unexpected
failure, or an expected one that passed: then the list is out of date).
"""
import os
import sys
import unittest

import multiprocessing
import multiprocessing.managers

import pshm
import pshm.shared_memory

sys.modules["multiprocessing.shared_memory"] = pshm.shared_memory
multiprocessing.shared_memory = pshm.shared_memory
multiprocessing.managers.SharedMemoryManager = pshm.SharedMemoryManager

import test._test_multiprocessing as suite  # noqa: E402

# A forkserver imports the suite (its preload) before it re-runs this file
# in each child: patch the suite's own global too.
suite.shared_memory = pshm.shared_memory

# The tests pshm fails on purpose, and why.
EXPECTED_FAILURES = {
    "test_shared_memory_ShareableList_basics":
        "asserts the stdlib's slot sizing for a copy holding 'encodés' ('8s': "
        "sized by 7 characters); pshm sizes str slots by their UTF-8 bytes "
        "('16s'), the fix for gh-88336, so the copy's format differs",
}

# Tests that pass, but run the stdlib, not pshm, in a fresh interpreter
# (python -E -c '...'), which this substitution cannot reach; pshm's own
# tests cover the same promises (tests/python/test_lifetime*.py).
RUN_THE_STDLIB = {
    "test_shared_memory_SharedMemoryManager_reuses_resource_tracker",
    "test_shared_memory_cleaned_after_process_termination",
}


def run(method):
    globs = {"__name__": "cpython_suite_" + method}
    suite.install_tests_in_module_dict(globs, method)
    cls = globs["WithProcessesTestSharedMemory"]
    globs["setUpModule"]()
    try:
        tests = unittest.TestLoader().loadTestsFromTestCase(cls)
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(tests)
    finally:
        globs["tearDownModule"]()
    failed = {}
    for test, tb in result.failures + result.errors:
        failed[test._testMethodName] = tb
    ok = True
    for name, tb in sorted(failed.items()):
        if name in EXPECTED_FAILURES:
            print(f"[{method}] expected failure: {name}: {EXPECTED_FAILURES[name]}")
        else:
            print(f"[{method}] UNEXPECTED FAILURE: {name}\n{tb}")
            ok = False
    for name in sorted(set(EXPECTED_FAILURES) - set(failed)):
        print(f"[{method}] listed as failing on purpose but passed: {name}")
        ok = False
    skipped = [t._testMethodName for t, _ in result.skipped]
    if skipped:
        print(f"[{method}] UNEXPECTED SKIPS: {skipped}")
        ok = False
    passed = result.testsRun - len(failed) - len(skipped)
    print(f"[{method}] {result.testsRun} run, {passed} passed, {len(failed)} failed "
          f"({len(set(failed) & set(EXPECTED_FAILURES))} on purpose); "
          f"{len(RUN_THE_STDLIB)} of the passes run the stdlib in a fresh interpreter: "
          f"{', '.join(sorted(RUN_THE_STDLIB))}")
    return ok


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("fork", "spawn", "forkserver"):
        sys.exit("usage: cpython_suite.py fork|spawn|forkserver")
    sys.exit(0 if run(sys.argv[1]) else 1)
