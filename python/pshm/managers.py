# SPDX-License-Identifier: MIT
"""pshm.managers: :class:`SharedMemoryManager` without a server process.

The stdlib's manager starts a server process that creates the blocks and
unlinks them at ``shutdown()``; if the process that started it is killed,
the blocks may stay. pshm's manager creates each block in the starting
process with the OWNED lifetime and a watcher: ``shutdown()`` removes them
at once, and when the starting process dies - SIGKILL included - the kernel
wakes the watchers, which remove them. No server, no tracker, no
heartbeat. Children forked while the manager runs share its handles (they
keep the blocks alive while they live, as members of the program).
"""
import os
import threading

from . import _shm
from .shared_memory import ShareableList, SharedMemory, _make_filename

__all__ = ["SharedMemoryManager"]


class SharedMemoryManager:
    """Manage shared memory blocks: every block made through
    ``SharedMemory(size)`` and ``ShareableList(sequence)`` is removed at
    ``shutdown()`` (or the end of a ``with``) and when the process that
    called ``start()`` dies, however it dies.

    Takes the stdlib's constructor arguments (``address``, ``authkey``,
    ``serializer``, ``ctx``, ``shutdown_timeout``) and ignores them: there
    is no server process to reach (``connect()``, ``register()`` and
    ``get_server()`` are not offered).
    """

    def __init__(self, address=None, authkey=None, serializer="pickle", ctx=None, *,
                 shutdown_timeout=1.0):
        self._owned = []
        self._lock = threading.Lock()
        self._started = False
        self._pid = None
        self.address = address

    def start(self, initializer=None, initargs=()):
        """Start managing. ``initializer(*initargs)`` is called here (there
        is no server process to call it in)."""
        from multiprocessing import ProcessError

        if self._started:
            raise ProcessError("Already started server")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._started = True
        self._pid = os.getpid()
        if initializer is not None:
            initializer(*initargs)

    def _check(self):
        if not self._started:
            raise ValueError("SharedMemoryManager has not been started")
        if os.getpid() != self._pid:
            raise ValueError("SharedMemoryManager belongs to the process that started it")

    def SharedMemory(self, size):
        """A new SharedMemory block of ``size`` bytes, removed at shutdown()
        or when the manager's process dies."""
        self._check()
        while True:
            try:
                owner = _shm.Block(_make_filename(), 1, size, _shm.LIFETIME_OWNED, watch=True)
            except FileExistsError:
                continue
            break
        with self._lock:
            self._owned.append(owner)
        return SharedMemory(owner.name, track=False)

    def ShareableList(self, sequence):
        """A new ShareableList holding ``sequence``, removed at shutdown()
        or when the manager's process dies."""
        self._check()
        owner = _shm.List()
        name = owner._create(None, list(sequence) if sequence else [], _shm.LIFETIME_OWNED, True)
        with self._lock:
            self._owned.append(owner)
        return ShareableList(name=name)

    def shutdown(self):
        """Remove every block this manager made (views that processes still
        hold stay valid; the names are gone)."""
        with self._lock:
            owned, self._owned = self._owned, []
        for o in owned:
            if isinstance(o, _shm.Block):
                o.close()
            else:
                o._close()
        self._started = False

    def __enter__(self):
        if not self._started:
            self.start()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.shutdown()
