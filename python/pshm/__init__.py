# SPDX-License-Identifier: MIT
"""pshm: shared memory between processes on one machine, over libpshm.

A drop-in for :mod:`multiprocessing.shared_memory` (``SharedMemory``,
``ShareableList``, ``SharedMemoryManager``) whose lifetimes are witnessed by
the kernel instead of a resource tracker, plus numpy arrays, process-shared
locks and zero-copy queues.
"""
import os as _os

from . import _shm

__version__ = _shm.PSHM_VERSION

# This program's lifetime group (what track=True blocks belong to): joined
# at import, so that children started later (fork, spawn, forkserver,
# subprocess) are members of the same group through PSHM_GROUP.
# If no group can be made here (no OFD locks, /dev/shm full), importing
# still works; creating a track=True block then raises the reason.
try:
    _os.environ["PSHM_GROUP"] = _shm.group_join()
except OSError:
    pass

# ---- the stdlib drop-in (branch python) ----
from .shared_memory import SharedMemory, ShareableList  # noqa: E402
from .managers import SharedMemoryManager  # noqa: E402

__all__ = ["__version__", "SharedMemory", "ShareableList", "SharedMemoryManager"]

# ---- beyond the stdlib (branch pyext): add the imports and their __all__
# entries here, e.g.
#   from .synchronize import Lock, RLock, ...
#   from .queues import Queue, SimpleQueue
#   from .arrays import ...
from .synchronize import (Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event,
                          Barrier, OwnerDeadError, NotRecoverableError)
from .queues import Queue, SimpleQueue, ShutDown, MessageLostError
from .arrays import create_array, open_array, share_array, array_block, unlink_array

__all__ += ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event",
            "Barrier", "OwnerDeadError", "NotRecoverableError",
            "Queue", "SimpleQueue", "ShutDown", "MessageLostError",
            "create_array", "open_array", "share_array", "array_block", "unlink_array"]
# ---- end of pyext's imports
