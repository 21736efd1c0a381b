# SPDX-License-Identifier: MIT
"""Process-shared queues over pshm's zero-copy rings (``multiprocessing.Queue``'s API).

``Queue(maxsize=0, *, name=None, mode='mpmc', max_msg=65536, ...)`` makes a queue in a
pshm queue block. Every ``put()`` writes one message straight into shared memory and
every ``get()`` takes one out: there is no feeder thread and no pipe.

What travels, and how:

* ``bytes``, ``bytearray`` and (C-contiguous) ``memoryview`` objects travel as raw bytes,
  never pickled; ``get()`` gives ``bytes`` (a ``bytearray`` for a ``bytearray``).
* numpy arrays of a plain dtype (bool, integers, floats, complex, ``S``/``U``/``V``)
  travel as raw bytes with their dtype and shape (C or Fortran order; any other layout is
  made contiguous first); ``get()`` gives a writable array of the same dtype and shape.
* anything else is pickled (protocol 5).

``get_view()`` is the zero-copy receive::

    with q.get_view() as a:      # a read-only numpy array (or memoryview for bytes)
        total = a.sum()          # ... reading the message in the ring itself

The message stays in the ring until the ``with`` ends; then it is released and its room
goes back to the producers. A memoryview it yielded is released with it (using it later
raises ``ValueError``); a numpy array cannot be invalidated, so do not use it after the
``with``: its bytes may by then belong to a newer message (it never faults: the ring stays
mapped while any view lives, and ``close()`` raises ``BufferError`` until they are gone).
For a pickled message ``get_view()`` yields the unpickled object.

Modes (``mode=``), as in the C library: ``'mpmc'`` (the default, like
``multiprocessing.Queue``: any number of producers and consumers, each message to one
consumer), ``'spsc'`` (one producer and one consumer at a time: the fastest, and it packs
variable-size messages), ``'broadcast'`` (one producer; every subscriber gets every
message committed after it subscribed: call ``subscribe()`` before the messages you want,
else the first ``get()`` subscribes; ``overwrite=True`` lets slow subscribers lose their
oldest messages instead of holding the producer back).

Sizes: a message (plus a 16-byte frame and the dtype/shape text) must fit ``max_msg``
bytes (default 64 KiB): a larger one raises ``ValueError`` naming the limit; make the queue
with a larger ``max_msg`` for big arrays. ``maxsize > 0`` makes the ring hold at least
``maxsize`` messages of ``max_msg`` bytes (``put`` blocks when it is full); otherwise the
ring has ``ring_bytes`` (default 4 MiB, at least two messages).

Timeouts raise what the stdlib raises: ``queue.Full`` from ``put``, ``queue.Empty`` from
``get``. Every wait and every copy above 64 KiB releases the GIL; Ctrl-C interrupts a
blocking ``put``/``get`` with ``KeyboardInterrupt``.

Processes: a ``Queue`` pickles to its name and configuration, so it can be passed to a
child under any start method (and opened by name: ``Queue.open(name)``). Each process
joins the queue lazily, as a producer at its first ``put`` and as a consumer at its first
``get``. A queue made without ``name`` has the ``'auto'`` lifetime (it goes when the last
process using it closes it or dies); with a ``name`` it is ``'persist'`` until
``unlink()``. A producer or consumer that dies is recovered by the library: a message a
consumer died holding is delivered again; a committed message is never lost.

Differences from ``multiprocessing.Queue``: messages have a size limit (``max_msg``);
``put`` writes synchronously (no feeder thread), so ``join_thread()`` and
``cancel_join_thread()`` do nothing; ``close()`` ends this process's participation (the
queue is not shut down for the others); ``shutdown()`` ends the stream for everyone
(``get`` then raises :class:`ShutDown` once the queue is drained, ``put`` at once);
``qsize()``, ``empty()`` and ``full()`` are snapshots, as in the stdlib.
"""

import os
import pickle
import queue as _stdqueue
import sys
import weakref

from . import _queue
from .synchronize import _lifetime

__all__ = ['Queue', 'SimpleQueue', 'ShutDown', 'Empty', 'Full', 'MessageLostError']

Empty = _stdqueue.Empty
Full = _stdqueue.Full

_T_BYTES, _T_BYTEARRAY, _T_PICKLE, _T_NDARRAY = 0, 1, 2, 3
_live = weakref.WeakSet()


class ShutDown(getattr(_stdqueue, 'ShutDown', Exception)):
    """The queue was shut down (``Queue.shutdown()``): ``put`` raises it at once, ``get``
    once every message sent before the shutdown was received."""


class MessageLostError(RuntimeError):
    """Broadcast with ``overwrite=True``: the producer overwrote the message while this
    subscriber read it (``get_view``), so what was read must be discarded."""


def _after_fork_in_child():
    # A forked child must not use its parent's queue handles (the library's rule):
    # drop them (closing in a child only unmaps); the child joins again on first use.
    for q in list(_live):
        q._prod = q._cons = q._anchor = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _encode(obj):
    """(tag, meta, data) for obj."""
    t = type(obj)
    if t is bytes:
        return _T_BYTES, b'', obj
    if t is bytearray:
        return _T_BYTEARRAY, b'', obj
    if t is memoryview and obj.c_contiguous:
        return _T_BYTES, b'', obj
    np = sys.modules.get('numpy')
    if np is not None and isinstance(obj, np.ndarray):
        dt = obj.dtype
        if dt.fields is None and not dt.hasobject and dt.subdtype is None and \
                dt.kind in 'biufcSUV' and dt.itemsize > 0:
            if obj.flags.c_contiguous:
                order, data = 'C', obj
            elif obj.flags.f_contiguous:
                order, data = 'F', obj.T
            else:
                order, data = 'C', np.ascontiguousarray(obj)
            meta = f"{dt.str};{order};{','.join(map(str, obj.shape))}".encode()
            return _T_NDARRAY, meta, data
    return _T_PICKLE, b'', pickle.dumps(obj, protocol=5)


def _decode_array(meta, buf):
    import numpy as np
    descr, order, shape = meta.decode().split(';')
    shape = tuple(int(n) for n in shape.split(',')) if shape else ()
    return np.frombuffer(buf, dtype=np.dtype(descr)).reshape(shape, order=order)


def _decode(tag, meta, data):
    if tag == _T_NDARRAY:
        return _decode_array(meta, data)
    if tag == _T_PICKLE:
        return pickle.loads(data)
    return data


def _rebuild(cls, state):
    return cls._from_state(state)


class _View:
    """The context manager ``get_view()`` returns (see the module documentation)."""

    __slots__ = ('_h', '_mv', '_obj')

    def __init__(self, h, tag, meta, view):
        self._h = h
        self._mv = memoryview(view)
        self._obj = _decode(tag, meta, self._mv) if tag != _T_BYTEARRAY else self._mv

    def __enter__(self):
        return self._obj

    def __exit__(self, *exc):
        self._obj = None
        try:
            self._mv.release()
        except BufferError:
            pass  # a numpy array made from it is still alive: see get_view
        if self._h.release() == _queue.EOVERWRITTEN:
            raise MessageLostError('the message was overwritten while it was read')


class Queue:
    """A queue of Python objects between processes (see the module documentation).

    ``Queue(maxsize=0, *, name=None, mode='mpmc', max_msg=65536, ring_bytes=None,
    overwrite=False, lifetime=None)``; ``Queue.open(name)`` attaches to an existing one.
    """

    def __init__(self, maxsize=0, *, name=None, mode='mpmc', max_msg=65536, ring_bytes=None,
                 overwrite=False, lifetime=None):
        if maxsize < 0:
            raise ValueError('maxsize must be >= 0')
        h = _queue.Handle(name, _queue.CONSUMER, True, mode=mode, max_msg=max_msg,
                          ring_bytes=ring_bytes or (4 << 20), messages=maxsize,
                          overwrite=overwrite, lifetime=_lifetime(name, lifetime))
        # The creating handle becomes an anchor: it keeps the block (and an 'auto'
        # queue's lifetime) without holding the consumer role that a child may want.
        h.anchor()
        h.drop_participant()
        self._setup(h.name, mode, maxsize)
        self._anchor = h

    def _setup(self, name, mode, maxsize):
        self._name = name
        self._mode = mode
        self._maxsize = maxsize
        self._prod = self._cons = self._anchor = None
        _live.add(self)

    @classmethod
    def open(cls, name):
        """Attach to the existing queue ``name`` (``FileNotFoundError`` if there is none,
        ``ValueError`` if it is not a queue)."""
        info = _queue.stat(name)
        self = cls.__new__(cls)
        self._setup(name, info['mode'], 0)
        return self

    @classmethod
    def _from_state(cls, state):
        self = cls.__new__(cls)
        self._setup(*state)
        return self

    def __reduce__(self):
        return (_rebuild, (type(self), (self._name, self._mode, self._maxsize)))

    @property
    def name(self):
        """The queue's name: ``Queue.open(name)`` attaches from any process."""
        return self._name

    def _producer(self):
        h = self._prod
        if h is None:
            h = self._prod = _queue.Handle(self._name, _queue.PRODUCER, False)
        return h

    def _consumer(self):
        h = self._cons
        if h is None:
            h = self._cons = _queue.Handle(self._name, _queue.CONSUMER, False)
        return h

    def subscribe(self):
        """Join as a consumer now (broadcast: receive every message sent from now on)."""
        self._consumer()

    def put(self, obj, block=True, timeout=None):
        """Send ``obj``; ``queue.Full`` if it does not fit in time (``block`` false: at
        once). ``ValueError`` if it is larger than ``max_msg``; :class:`ShutDown` after
        ``shutdown()``."""
        tag, meta, data = _encode(obj)
        r = self._producer().send(tag, meta, data, block, timeout)
        if r:
            if r == _queue.ECLOSED:
                raise ShutDown(f"queue '{self._name}' is shut down")
            raise Full
        return None

    def put_nowait(self, obj):
        """``put(obj, False)``."""
        return self.put(obj, False)

    def get(self, block=True, timeout=None):
        """Receive the next object (a copy); ``queue.Empty`` if none comes in time
        (``block`` false: at once); :class:`ShutDown` when shut down and drained."""
        r, tag, meta, data = self._get(self._consumer().recv, block, timeout)
        return _decode(tag, meta, data)

    def _get(self, fn, block, timeout):
        while True:
            res = fn(block, timeout)
            r = res[0]
            if r == 0:
                return res
            if r == _queue.ECLOSED:
                raise ShutDown(f"queue '{self._name}' is shut down")
            if r == _queue.EOVERWRITTEN:
                continue  # broadcast overwrite: that copy was garbage; the next one
            raise Empty

    def get_nowait(self):
        """``get(False)``."""
        return self.get(False)

    def get_view(self, block=True, timeout=None):
        """Zero-copy receive: a context manager yielding the next message in place (a
        read-only numpy array, a memoryview for bytes-like messages, the object for
        pickled ones), valid until the ``with`` ends. ``queue.Empty`` /
        :class:`ShutDown` as for ``get``; :class:`MessageLostError` at the end of the
        ``with`` if a broadcast overwrite happened meanwhile."""
        h = self._consumer()
        r, tag, meta, view = self._get(h.peek, block, timeout)
        return _View(h, tag, meta, view)

    def _stat(self):
        return _queue.stat(self._name)

    def qsize(self):
        """Messages waiting now (broadcast: behind the slowest subscriber). A snapshot."""
        return self._stat()['depth']

    def empty(self):
        """True if no message waits now (a snapshot)."""
        return self.qsize() == 0

    def full(self):
        """True if the queue is full now (a snapshot): ``maxsize`` messages wait, or (no
        maxsize) a message of ``max_msg`` bytes might not fit."""
        i = self._stat()
        if self._maxsize > 0:
            return i['depth'] >= self._maxsize
        if i['slots']:
            return i['depth'] >= i['slots']
        return i['depth_bytes'] + i['max_msg'] > i['ring_bytes']

    @property
    def max_msg(self):
        """The largest message in bytes, frame and metadata included."""
        return self._stat()['max_msg']

    def shutdown(self):
        """End the stream for every process, for good (see :class:`ShutDown`)."""
        h = self._prod or self._cons or self._consumer()
        h.shutdown()

    def close(self):
        """Leave the queue in this process (it stays for the others). ``BufferError``
        while a ``get_view()`` result is still alive."""
        for attr in ('_prod', '_cons', '_anchor'):
            h = getattr(self, attr)
            if h is not None:
                h.close()
                setattr(self, attr, None)

    def join_thread(self):
        """Nothing to join: ``put`` writes synchronously (kept for the stdlib's API)."""

    def cancel_join_thread(self):
        """Nothing to cancel (kept for the stdlib's API)."""

    def unlink(self):
        """Remove the queue's name (processes that have it open keep using it)."""
        _queue.unlink(self._name)

    def __repr__(self):
        return f'<pshm.Queue name={self._name!r} mode={self._mode!r}>'


class SimpleQueue(Queue):
    """``multiprocessing.SimpleQueue``: ``put``, ``get``, ``empty``, ``close`` (no size
    bound, no timeouts). Same transport as :class:`Queue`."""

    def __init__(self, *, name=None, mode='mpmc', max_msg=65536, ring_bytes=None,
                 lifetime=None):
        super().__init__(0, name=name, mode=mode, max_msg=max_msg, ring_bytes=ring_bytes,
                         lifetime=lifetime)

    def put(self, obj):
        """Send ``obj``, waiting for room."""
        return super().put(obj)

    def get(self):
        """Receive the next object, waiting for one."""
        return super().get()
