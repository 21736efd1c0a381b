# SPDX-License-Identifier: MIT
"""pshm.managers: :class:`SharedMemoryManager`, a drop-in for the stdlib's.

As in the stdlib, ``start()`` starts a server process (a
``multiprocessing.managers.BaseManager`` server: ``register()``ed typeids,
``address``/``authkey``, ``connect()`` from any process and ``get_server()``
work as there). The difference is who makes the blocks and what removes
them. The stdlib creates each block in the calling process and tells the
server its name, which the server unlinks at ``shutdown()``: if the
process that started the manager is killed, the blocks may stay. Here the
server creates every block made through ``SharedMemory(size)`` and
``ShareableList(sequence)`` (also for a connected client), with the OWNED
lifetime and a watcher: the blocks belong to the server process, and the
kernel witnesses both deaths that matter:

* the server removes them at ``shutdown()`` (closing an OWNED handle
  unlinks it);
* the server holds a pidfd of the process that started it and waits on it
  in a thread: when that process dies (SIGKILL included), the server removes
  the blocks and exits;
* if the server itself dies (SIGKILL included), each block's watcher, a
  process waiting on the block's kernel lock, removes it.

No resource tracker and no heartbeat. The server ignores SIGINT, as the
stdlib's does (bpo-36368).
"""
import os
import select
import signal
import threading
from multiprocessing import managers as _mpm
from multiprocessing import process as _mpprocess

from . import _shm
from .shared_memory import ShareableList, SharedMemory, _make_filename

__all__ = ["SharedMemoryManager", "SharedMemoryServer"]


def _close_owner(owner):
    """Close the server's OWNED handle: the block's name goes with it."""
    if isinstance(owner, _shm.Block):
        owner.close()
    else:
        owner._close()


class SharedMemoryServer(_mpm.Server):
    """The manager's server: a ``multiprocessing.managers.Server`` that also
    creates blocks (OWNED by the server's process) and removes them at
    ``shutdown``."""

    public = _mpm.Server.public + ["create_segment", "create_list", "release_segment",
                                   "list_segments"]

    def __init__(self, *args, **kwargs):
        _mpm.Server.__init__(self, *args, **kwargs)
        self._owned = {}
        self._owned_lock = threading.Lock()
        self._closed = False

    def _keep(self, name, owner):
        with self._owned_lock:
            if self._closed:
                _close_owner(owner)
                raise ValueError("the SharedMemoryManager is shutting down")
            self._owned[name] = owner
        return name

    # Exceptions travel back as values: the server reports a raised one as
    # a RemoteError, and the stdlib's callers expect ValueError & co.
    def create_segment(self, c, size):
        """Create a block of ``size`` bytes owned by this process; its name."""
        try:
            while True:
                try:
                    owner = _shm.Block(_make_filename(), 1, size, _shm.LIFETIME_OWNED,
                                       watch=True)
                except FileExistsError:
                    continue
                return 0, self._keep(owner.name, owner)
        except Exception as e:
            return 1, e

    def create_list(self, c, sequence):
        """Create a ShareableList holding ``sequence`` owned by this process; its name."""
        try:
            owner = _shm.List()
            name = owner._create(None, list(sequence) if sequence else [],
                                 _shm.LIFETIME_OWNED, True)
            return 0, self._keep(name, owner)
        except Exception as e:
            return 1, e

    def release_segment(self, c, name):
        """Remove the block ``name`` now (it must have been made here)."""
        with self._owned_lock:
            owner = self._owned.pop(name, None)
        if owner is not None:
            _close_owner(owner)

    def list_segments(self, c):
        """The names of the blocks this server made and has not removed."""
        with self._owned_lock:
            return list(self._owned)

    def _remove_all(self):
        with self._owned_lock:
            self._closed = True
            owned, self._owned = self._owned, {}
        for owner in owned.values():
            try:
                _close_owner(owner)
            except OSError:
                pass  # already removed by someone else: nothing to do

    def shutdown(self, c):
        """Remove every block made here, then stop the server."""
        self._remove_all()
        return _mpm.Server.shutdown(self, c)


def _follow(pid, server):
    """In the server: when process ``pid`` (the manager's starter) dies, remove
    the blocks and exit. The kernel tells, through a pidfd; nothing polls."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        server._remove_all()
        os._exit(0)

    def wait():
        while True:
            r, _, _ = select.select([fd], [], [])
            if r:
                break
        server._remove_all()
        os._exit(0)

    threading.Thread(target=wait, name="pshm-manager-follow", daemon=True).start()


class SharedMemoryManager(_mpm.BaseManager):
    """``multiprocessing.managers.SharedMemoryManager`` over pshm: every block
    made through ``SharedMemory(size)`` and ``ShareableList(sequence)``, from
    this process or a ``connect()``ed one, is removed at ``shutdown()`` (or
    the end of a ``with``) and when the process that called ``start()``
    dies, however it dies (see the module documentation).

    Same constructor (``address``, ``authkey``, ``serializer``, ``ctx``,
    ``shutdown_timeout``) and methods as the stdlib's (``start``,
    ``connect``, ``register``, ``get_server``, ``shutdown``, ``address``).
    """

    _Server = SharedMemoryServer

    @classmethod
    def _run_server(cls, registry, address, authkey, serializer, writer,
                    initializer=None, initargs=()):
        # BaseManager._run_server, plus following the starter: it waits for the
        # address in start(), so it is alive (its pid its own) until we send it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # bpo-36368, as the stdlib
        if initializer is not None:
            initializer(*initargs)
        server = cls._Server(registry, address, authkey, serializer)
        parent = _mpprocess.parent_process()
        if parent is not None:
            _follow(parent.pid, server)
        writer.send(server.address)
        writer.close()
        server.serve_forever()

    def _call(self, method, arg):
        if self._state.value != _mpm.State.STARTED:
            raise ValueError("SharedMemoryManager has not been started")
        with self._Client(self._address, authkey=self._authkey) as conn:
            err, res = _mpm.dispatch(conn, None, method, (arg,))
        if err:
            raise res
        return res

    def SharedMemory(self, size):
        """A new SharedMemory block of ``size`` bytes (made by the server, removed at
        shutdown() or when the manager's starter dies)."""
        return SharedMemory(self._call("create_segment", size), track=False)

    def ShareableList(self, sequence):
        """A new ShareableList holding ``sequence`` (made by the server, removed at
        shutdown() or when the manager's starter dies)."""
        if sequence is not None:
            sequence = list(sequence)
        return ShareableList(name=self._call("create_list", sequence))

    def get_server(self):
        """A server object to run in this process (``serve_forever()``); the blocks it
        makes are then owned by this process."""
        if self._state.value != _mpm.State.INITIAL:
            from multiprocessing import ProcessError
            if self._state.value == _mpm.State.STARTED:
                raise ProcessError("Already started SharedMemoryServer")
            raise ProcessError("SharedMemoryManager has shut down")
        return self._Server(self._registry, self._address, self._authkey, self._serializer)
