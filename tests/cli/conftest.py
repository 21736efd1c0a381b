# SPDX-License-Identifier: MIT
"""Fixtures shared by the CLI tests."""
import os
import uuid

import pytest


@pytest.fixture
def names():
    """make(alias) -> a unique object name; transcripts show it as alias.
    Every name made is removed from /dev/shm afterwards."""
    tag = uuid.uuid4().hex[:8]
    made = {}

    def make(alias):
        real = "pshmcli_%d_%s_%s" % (os.getpid(), tag, alias)
        made[real] = alias
        return real

    yield make, made
    for real in made:
        try:
            os.unlink("/dev/shm/" + real)
        except FileNotFoundError:
            pass
