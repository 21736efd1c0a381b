# SPDX-License-Identifier: MIT
"""pshm: shared memory between processes on one machine, over libpshm.

A drop-in for :mod:`multiprocessing.shared_memory` (``SharedMemory``,
``ShareableList``, ``SharedMemoryManager``) whose lifetimes are witnessed by
the kernel instead of a resource tracker, plus numpy arrays, process-shared
locks and zero-copy queues.
"""
from . import _shm

__version__ = _shm.PSHM_VERSION

__all__ = ["__version__"]

# ---- the stdlib drop-in (branch python) ----

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
