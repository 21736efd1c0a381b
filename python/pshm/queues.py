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

``reserve()`` and ``put_array()`` are the zero-copy send: the producer writes the message
straight into its slot in the ring, and the ``with`` publishes it::

    with q.put_array((4096, 4096), 'float32') as a:   # a writable array in the ring
        np.multiply(x, 2, out=a)                       # ... computed in place
    # committed here: the consumer's get()/get_view() gives an ndarray of that shape

    with q.reserve(1024) as buf:                       # a writable memoryview
        buf[:5] = b'hello'                             # (get() gives 1024 bytes)

A clean exit commits the message; an exception cancels it (nothing is sent) and goes on.
Waiting for room releases the GIL; a timeout raises ``queue.Full``, a shut-down queue
:class:`ShutDown`. At the end of the ``with`` the slot is given up: the memoryview is
released (a later access raises ``ValueError``) and the array is made read-only (a later
write raises ``ValueError``; never keep it: its bytes belong to the consumer and then to
later messages; it never faults, as the ring stays mapped while any view of it lives).
One reservation at a time per process and queue.

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

import collections
import contextlib
import operator
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
        q._stash.clear()   # the parent received them: the child must not again


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


def _decode_raw(raw):
    """An object from one recvmany item; ValueError for a record that was not a
    pshm.Queue message (tag -1: its text says so)."""
    tag, meta, data = raw
    if tag < 0:
        raise ValueError(data)
    return _decode(tag, meta, data)


def _index(n, what):
    n = n.__index__() if hasattr(n, '__index__') else n
    if not isinstance(n, int) or n < 0:
        raise ValueError(f'{what} must be non-negative integers')
    return n


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


class _Reservation:
    """The context manager ``reserve()`` and ``put_array()`` return (see the module
    documentation): reserves at ``__enter__``, commits or cancels at ``__exit__``."""

    __slots__ = ('_q', '_tag', '_meta', '_nbytes', '_block', '_timeout', '_array', '_h',
                 '_mv', '_obj')

    def __init__(self, q, tag, meta, nbytes, block, timeout, array):
        self._q, self._tag, self._meta, self._nbytes = q, tag, meta, nbytes
        self._block, self._timeout, self._array = block, timeout, array
        self._h = self._mv = self._obj = None

    def __enter__(self):
        if self._h is not None:
            raise RuntimeError('a reservation can be entered once')
        q = self._q
        h = q._producer()
        r, slot = h.reserve(self._tag, self._meta, self._nbytes, self._block, self._timeout)
        if r:
            if r == _queue.ECLOSED:
                raise ShutDown(f"queue '{q._name}' is shut down")
            raise Full
        self._h = h
        try:
            self._mv = memoryview(slot)
            del slot
            self._obj = _decode_array(self._meta, self._mv) if self._array else self._mv
        except BaseException:
            self._finish(False)
            raise
        return self._obj

    def _finish(self, commit):
        obj, mv, h = self._obj, self._mv, self._h
        self._obj = self._mv = None
        if obj is not None and obj is not mv:
            obj.flags.writeable = False
        del obj
        if mv is not None:
            try:
                mv.release()
            except BufferError:
                pass  # an array made from it is alive: it was made read-only above
        if commit:
            h.commit()
        else:
            h.cancel()

    def __exit__(self, exc_type, exc, tb):
        if self._h is None:
            return None
        self._finish(exc_type is None)
        return None

    def __del__(self):
        # Entered by hand and dropped without __exit__: cancel, or the handle would
        # keep the reservation pending and refuse every later one.
        if self._mv is not None:
            try:
                self._finish(False)
            except (ValueError, RuntimeError, OSError):
                pass  # the handle is closed or stale (a forked child): nothing to cancel


class Queue:
    """A queue of Python objects between processes (see the module documentation).

    ``Queue(maxsize=0, *, name=None, mode='mpmc', max_msg=65536, ring_bytes=None,
    overwrite=False, lifetime=None, prefault=False)``; ``Queue.open(name)`` attaches to an
    existing one. ``prefault=True`` maps the ring populated (MAP_POPULATE) in every
    process that joins it, so a large ring's first messages do not pay its page faults.
    """

    def __init__(self, maxsize=0, *, name=None, mode='mpmc', max_msg=65536, ring_bytes=None,
                 overwrite=False, lifetime=None, prefault=False):
        if maxsize < 0:
            raise ValueError('maxsize must be >= 0')
        h = _queue.Handle(name, _queue.CONSUMER, True, mode=mode, max_msg=max_msg,
                          ring_bytes=ring_bytes or (4 << 20), messages=maxsize,
                          overwrite=overwrite, lifetime=_lifetime(name, lifetime),
                          prefault=prefault)
        # The creating handle becomes an anchor: it keeps the block (and an 'auto'
        # queue's lifetime) without holding the consumer role that a child may want.
        h.anchor()
        h.drop_participant()
        self._setup(h.name, mode, maxsize, bool(prefault))
        self._anchor = h

    def _setup(self, name, mode, maxsize, prefault=False):
        self._name = name
        self._mode = mode
        self._maxsize = maxsize
        self._prefault = prefault
        self._prod = self._cons = self._anchor = None
        self._stash = collections.deque()   # received, not yet handed out: see get_many
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
        return (_rebuild, (type(self), (self._name, self._mode, self._maxsize,
                                        self._prefault)))

    @property
    def name(self):
        """The queue's name: ``Queue.open(name)`` attaches from any process."""
        return self._name

    def _producer(self):
        h = self._prod
        if h is None:
            try:
                h = _queue.Handle(self._name, _queue.PRODUCER, False, prefault=self._prefault)
            except OSError as e:
                if e.errno == -_queue.ECLOSED:   # a producer cannot join a shut-down queue
                    raise ShutDown(f"queue '{self._name}' is shut down") from None
                raise
            self._prod = h
        return h

    def _consumer(self):
        h = self._cons
        if h is None:
            h = self._cons = _queue.Handle(self._name, _queue.CONSUMER, False,
                                                 prefault=self._prefault)
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

    def reserve(self, nbytes, block=True, timeout=None):
        """Zero-copy send of ``nbytes`` raw bytes: a context manager yielding a writable
        memoryview of the message's slot in the ring; a clean exit commits it (``get()``
        gives ``bytes``), an exception cancels it. ``queue.Full`` if no room comes in
        time (``block`` false: at once), :class:`ShutDown` after ``shutdown()``,
        ``ValueError`` above ``max_msg``. See the module documentation."""
        nbytes = _index(nbytes, 'nbytes')
        return _Reservation(self, _T_BYTES, b'', nbytes, block, timeout, False)

    def put_array(self, shape, dtype, order='C', block=True, timeout=None):
        """Zero-copy send of a numpy array: a context manager yielding a writable
        ``numpy.ndarray`` of ``shape`` and ``dtype`` (``order`` 'C' or 'F') that lives in
        the message's slot (its contents are whatever the ring held: fill it all). A
        clean exit commits it (``get()``/``get_view()`` give an array of that dtype and
        shape), an exception cancels it. Errors as for :meth:`reserve`; ``TypeError``
        for a dtype that cannot travel raw (objects, structured)."""
        import numpy as np
        dt = np.dtype(dtype)
        if dt.fields is not None or dt.hasobject or dt.subdtype is not None or \
                dt.kind not in 'biufcSUV' or dt.itemsize == 0:
            raise TypeError(f'put_array: dtype {dt} cannot travel as raw bytes')
        if order not in ('C', 'F'):
            raise ValueError("order must be 'C' or 'F'")
        if isinstance(shape, int) or hasattr(shape, '__index__'):
            shape = (shape,)
        shape = tuple(_index(n, 'shape') for n in shape)
        nbytes = dt.itemsize
        for n in shape:
            nbytes *= n
        meta = f"{dt.str};{order};{','.join(map(str, shape))}".encode()
        return _Reservation(self, _T_NDARRAY, meta, nbytes, block, timeout, True)

    def put_nowait(self, obj):
        """``put(obj, False)``."""
        return self.put(obj, False)

    def get(self, block=True, timeout=None):
        """Receive the next object (a copy); ``queue.Empty`` if none comes in time
        (``block`` false: at once); :class:`ShutDown` when shut down and drained."""
        if self._stash:
            return _decode_raw(self._stash.popleft())
        r, tag, meta, data = self._get(self._consumer().recv, block, timeout)
        return _decode(tag, meta, data)

    def get_many(self, max_items, block=True, timeout=None):
        """Receive up to ``max_items`` objects, oldest first, as a list: at least one
        (``block`` true: waits as ``get()`` does; ``queue.Empty`` if none comes in
        time, or at once with ``block`` false; :class:`ShutDown` when shut down and
        drained), then whatever else is ready, without waiting for more. Each object
        is decoded as ``get()`` decodes it. SPSC and MPMC claim the batch with
        ``pshm_queue_peekmany`` and consume it with one ``pshm_queue_releasemany``
        (so the wait happens once per batch), at most 4096 messages a call, and
        after the first only while the batch holds less than 1 MiB (a batch of large
        messages, all copied out at once, would make the allocator hand each batch
        fresh pages: with 1 MiB messages it returns one a call, as fast as
        ``get()``); broadcast queues take one blocking ``get()`` and then
        non-blocking ones.
        ``TypeError`` if ``max_items`` is not an integer, ``ValueError`` if it is < 1.

        A message that cannot be decoded (not a pshm.Queue message: ``ValueError``;
        an object that does not unpickle: whatever ``pickle.loads`` raises) is
        consumed, as ``get()`` consumes it, and nothing else is lost: if it is the
        first of the batch, its exception is raised at once; otherwise the objects
        before it are returned, and the exception comes from the next
        ``get()``/``get_many()``/``get_view()`` of this ``Queue`` object. The messages
        after it wait, already received, in this object and come out, in order, from
        the next calls (``close()`` and a ``fork()`` drop them)."""
        if isinstance(max_items, bool) or not hasattr(type(max_items), '__index__'):
            raise TypeError(f'max_items must be an integer, not {type(max_items).__name__}')
        max_items = operator.index(max_items)
        if max_items < 1:
            raise ValueError('max_items must be >= 1')
        if self._stash:
            raws = [self._stash.popleft() for _ in range(min(max_items, len(self._stash)))]
        else:
            raws = self._recv_many(max_items, block, timeout)
        out = []
        for i, raw in enumerate(raws):
            try:
                out.append(_decode_raw(raw))
            except BaseException:
                # Raise for it now if it is first; else at the next call. Either
                # way the ones behind it (and it, if not first) wait in the stash.
                self._stash.extendleft(reversed(raws[i + 1 if not out else i:]))
                if not out:
                    raise
                break
        return out

    def _recv_many(self, max_items, block, timeout):
        h = self._consumer()
        r, raws = h.recvmany(max_items, block, timeout)
        if r == 0:
            return raws
        if r == _queue.ECLOSED:
            raise ShutDown(f"queue '{self._name}' is shut down")
        if r != _queue.ENOTSUP:
            raise Empty
        # Broadcast: no batch claims; one blocking recv, then non-blocking ones.
        r, tag, meta, data = self._get(h.recv, block, timeout)
        raws = [(tag, meta, data)]
        while len(raws) < max_items:
            r, tag, meta, data = (h.recv(False) + (None,))[:4]
            if r == _queue.EOVERWRITTEN:
                continue
            if r:
                break
            raws.append((tag, meta, data))
        return raws

    def get_many_nowait(self, max_items):
        """``get_many(max_items, False)``."""
        return self.get_many(max_items, False)

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
        if self._stash:   # received already by get_many (see there): a copy
            return contextlib.nullcontext(_decode_raw(self._stash.popleft()))
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
        while a ``get_view()`` result is still alive. Objects ``get_many`` received but
        has not handed out yet (only after a message that failed to decode) are dropped."""
        self._stash.clear()
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
