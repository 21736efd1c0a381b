# SPDX-License-Identifier: MIT
"""Process-shared locks, conditions, semaphores, events and barriers.

The classes have the API of :mod:`multiprocessing.synchronize` (``acquire(block=True,
timeout=None)``, context managers, ``Condition.wait/wait_for/notify/notify_all`` ...) and
live in named pshm synchronisation objects (``pshm_sync_create``), so that

* they can be passed to child processes under every start method (fork, spawn,
  forkserver): a pickled handle carries the name and reopens it;
* an unrelated process opens them by name: ``Lock.open(name)``, ``Event.open(name)``...;
* a lock whose holder died is reported, never silently inherited: the next
  ``acquire()`` takes the lock and then raises :class:`OwnerDeadError`.

Lifetimes: an object made without a ``name`` gets a random one and the ``'auto'``
lifetime: it is removed when the last process that has it open closes it or dies
(SIGKILL included). An object made with a ``name`` is ``'persist'`` by default: it stays
until ``unlink()`` (or ``pshm rm``), so that unrelated processes can open it later. Pass
``lifetime=`` to choose.

Differences from :mod:`multiprocessing.synchronize` (all deliberate):

* ``Lock`` and ``RLock`` are owned by the thread that acquired them (they are robust
  mutexes: that is how a holder's death is witnessed). ``release()`` from another thread
  or process raises ``ValueError`` (the stdlib allows it for ``Lock``), and so does
  releasing an unlocked lock (as in the stdlib). A blocking ``Lock.acquire()`` by the
  thread that already holds it raises ``RuntimeError`` (the stdlib would hang forever);
  ``acquire(False)`` returns ``False`` as in the stdlib, and ``acquire(timeout=t)``
  returns ``False`` at once (the stdlib after ``t`` seconds).
* A lock whose holder died: :class:`OwnerDeadError` (see there).
* Handles may be pickled anywhere (not only while spawning a process), since any process
  may open them by name.
* ``Barrier``: ``action`` runs in the process that completed the phase while the others
  wait for it (a second, internal phase); if it raises, the barrier is reset, the others
  get ``BrokenBarrierError`` and the caller gets the exception. ``abort()`` breaks the
  current phase like ``reset()`` does (waiters get ``BrokenBarrierError``) but leaves the
  barrier usable. A blocked ``Barrier.wait()`` cannot be interrupted by Ctrl-C (pshm's
  barrier cannot take an arrival back): the ``KeyboardInterrupt`` is raised when the phase
  completes, breaks or times out. Every other blocking call here is interruptible.
* A participant of a barrier that dies while it waits breaks the barrier for the others
  (``BrokenBarrierError``), as a thread's death cannot in the stdlib.
"""

import os
import threading
import time

from . import _sync

__all__ = ['Lock', 'RLock', 'Condition', 'Semaphore', 'BoundedSemaphore', 'Event',
           'Barrier', 'OwnerDeadError', 'NotRecoverableError']

_LIFETIMES = {'persist': 0, 'auto': 1, 'owned': 2}


class OwnerDeadError(RuntimeError):
    """The previous holder of a lock died while holding it.

    Raised by ``acquire()`` (and by ``with lock:`` on entry, and by ``Condition.wait()``
    when it takes the lock back) **after the lock has been acquired**: the caller holds
    the lock. Repair the state the lock protects, call ``lock.consistent()``, then go on
    (``release()`` as usual)::

        try:
            lock.acquire()
        except pshm.OwnerDeadError:
            repair()
            lock.consistent()
        try:
            ...
        finally:
            lock.release()

    Releasing without ``consistent()`` makes the lock unusable for good: every later
    ``acquire()`` raises :class:`NotRecoverableError`. If the caller dies before calling
    ``consistent()``, the next acquirer gets ``OwnerDeadError`` in turn.
    ``name`` is the lock's name.
    """

    def __init__(self, name):
        super().__init__(f"the previous holder of lock '{name}' died holding it; "
                         "this thread now holds it: repair the state, then call consistent()")
        self.name = name


class NotRecoverableError(RuntimeError):
    """A lock whose dead holder's state was never marked consistent: unusable for good.

    Remove it (``unlink()``) and make a new one. ``name`` is the lock's name.
    """

    def __init__(self, name):
        super().__init__(f"lock '{name}' is not recoverable: a holder died and the next one "
                         "released it without calling consistent()")
        self.name = name


def _lifetime(name, lifetime):
    if lifetime is None:
        return 1 if name is None else 0
    try:
        return _LIFETIMES[lifetime]
    except (KeyError, TypeError):
        raise ValueError(f"lifetime must be 'persist', 'auto' or 'owned', not {lifetime!r}") from None


def _me():
    return (os.getpid(), threading.get_ident())


def _rebuild(cls, args):
    return cls._from_state(*args)


class _Base:
    """What every pshm synchronisation object has: a name, close() and unlink()."""

    __slots__ = ('_h', '__weakref__')
    _KIND = None

    @classmethod
    def open(cls, name):
        """Attach to the existing object ``name`` (``FileNotFoundError`` if there is none,
        ``ValueError`` if it is another kind of object)."""
        self = cls.__new__(cls)
        self._h = _sync.Handle(name, cls._KIND, False)
        return self

    def _state(self):
        return (self._h.name,)

    @classmethod
    def _from_state(cls, *state):
        return cls.open(*state)

    def __reduce__(self):
        return (_rebuild, (type(self), self._state()))

    @property
    def name(self):
        """The object's name: ``X.open(name)`` attaches to it from any process."""
        return self._h.name

    def close(self):
        """Unmap the object in this process (others keep it). ``RuntimeError`` while this
        process holds it."""
        self._h.close()

    def unlink(self):
        """Remove the object's name (processes that have it open keep using it)."""
        self._h.unlink()


# ----------------------------------------------------------------- locks

class Lock(_Base):
    """A non-recursive lock shared between processes (``multiprocessing.Lock``).

    ``Lock(*, name=None, lifetime=None)`` creates one; ``Lock.open(name)`` attaches to an
    existing one. See the module documentation for lifetimes and the differences from
    the stdlib, and :class:`OwnerDeadError` for a holder's death.
    """

    __slots__ = ()
    _KIND = _sync.MUTEX

    def __init__(self, *, name=None, lifetime=None, mode=0o600):
        self._h = _sync.Handle(name, _sync.MUTEX, True, lifetime=_lifetime(name, lifetime),
                               mode=mode)

    def _check(self, r, block=True, timeout=None):
        if r == 0:
            return True
        if r in (_sync.EBUSY, _sync.ETIMEDOUT):
            return False
        if r == _sync.EDEADLK and (not block or timeout is not None):
            return False
        if r == _sync.EOWNERDEAD:
            raise OwnerDeadError(self._h.name)
        if r == _sync.ENOTRECOVERABLE:
            raise NotRecoverableError(self._h.name)
        if r == _sync.EDEADLK:
            raise RuntimeError(f"deadlock: this thread already holds lock '{self._h.name}'")
        raise AssertionError(f"unexpected code {r}")

    def acquire(self, block=True, timeout=None):
        """Acquire the lock: ``True``; ``False`` if ``block`` is false and it is held, or
        at the end of ``timeout`` seconds. The wait releases the GIL; Ctrl-C interrupts
        it. Raises :class:`OwnerDeadError` (lock acquired) or
        :class:`NotRecoverableError` (not acquired)."""
        return self._check(self._h.lock(block, timeout), block, timeout)

    def release(self):
        """Release the lock. ``ValueError`` if this thread does not hold it."""
        if self._h.unlock():
            raise ValueError(f"lock '{self._h.name}' is not held by this thread "
                             "(released too many times, or by another thread)")

    def consistent(self):
        """After :class:`OwnerDeadError`, with the protected state repaired: mark the lock
        usable again. ``ValueError`` if this thread does not hold it or it is not in the
        owner-died state."""
        r = self._h.consistent()
        if r:
            raise ValueError(f"lock '{self._h.name}' is not held by this thread after an "
                             "owner died" if r == _sync.EPERM else
                             f"lock '{self._h.name}' is not in the owner-died state")

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def _owner_text(self):
        try:
            i = self._h.info()
        except Exception:
            return 'unknown'
        if not i['locked']:
            return 'None'
        if i['owner_pid'] != os.getpid():
            return 'SomeOtherProcess'
        if i['owner_tid'] == threading.get_native_id():
            return _process_name()
        return 'SomeOtherThread'

    def __repr__(self):
        return f'<{type(self).__name__}(owner={self._owner_text()})>'


def _process_name():
    import multiprocessing
    name = multiprocessing.current_process().name
    if threading.current_thread().name != 'MainThread':
        name += '|' + threading.current_thread().name
    return name


class RLock(Lock):
    """A recursive lock shared between processes (``multiprocessing.RLock``).

    The thread that holds it may acquire it again; it is released when ``release()`` has
    been called as many times. Same creation, opening and owner-death rules as
    :class:`Lock`.
    """

    __slots__ = ('_owner', '_count')

    def __init__(self, *, name=None, lifetime=None, mode=0o600):
        super().__init__(name=name, lifetime=lifetime, mode=mode)
        self._owner = None
        self._count = 0

    @classmethod
    def open(cls, name):
        self = super().open(name)
        self._owner = None
        self._count = 0
        return self

    def acquire(self, block=True, timeout=None):
        me = _me()
        if self._owner == me:
            self._count += 1
            return True
        r = self._h.lock(block, timeout)
        if r in (0, _sync.EOWNERDEAD):
            self._owner = me
            self._count = 1
        return self._check(r, block, timeout)

    def release(self):
        """Release one level. ``AssertionError`` if this thread does not hold it (as the
        stdlib)."""
        if self._owner != _me() or self._count == 0:
            raise AssertionError('attempt to release recursive lock not owned by thread')
        self._count -= 1
        if self._count == 0:
            self._owner = None
            r = self._h.unlock()
            if r:
                raise ValueError(f"lock '{self._h.name}' is not held by this thread")

    def _is_mine(self):
        return self._owner == _me()

    def __repr__(self):
        owner = self._owner_text()
        count = self._count if self._owner == _me() else (0 if owner == 'None' else 'unknown')
        return f'<RLock({owner}, {count})>'


# ------------------------------------------------------------ semaphores

class Semaphore(_Base):
    """A counting semaphore shared between processes (``multiprocessing.Semaphore``).

    ``Semaphore(value=1, *, name=None, lifetime=None, undo=False)``. With ``undo=True``
    the units a process took and did not give back are returned when it dies (SysV's
    SEM_UNDO); by default a dead process's units are gone, as in the stdlib.
    ``Semaphore.open(name)`` attaches to an existing one.
    """

    __slots__ = ()
    _KIND = _sync.SEM

    def __init__(self, value=1, *, name=None, lifetime=None, undo=False, mode=0o600):
        if value < 0:
            raise ValueError('semaphore initial value must be >= 0')
        if value > _sync.SEM_VALUE_MAX:
            raise ValueError(f'semaphore initial value must be <= {_sync.SEM_VALUE_MAX}')
        self._h = _sync.Handle(name, _sync.SEM, True, value=value,
                               flags=_sync.SEM_UNDO if undo else 0,
                               lifetime=_lifetime(name, lifetime), mode=mode)

    def acquire(self, block=True, timeout=None):
        """Take a unit: ``True``, or ``False`` without one (``block`` false, or the
        timeout passed). The wait releases the GIL; Ctrl-C interrupts it."""
        return self._h.sem_wait(block, timeout) == 0

    def release(self):
        """Give a unit back (wakes a waiter)."""
        self._h.sem_post()

    def get_value(self):
        """The value now (a snapshot)."""
        return self._h.sem_value()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        try:
            value = self.get_value()
        except Exception:
            value = 'unknown'
        return f'<{type(self).__name__}(value={value})>'


class BoundedSemaphore(Semaphore):
    """A semaphore whose ``release()`` raises ``ValueError`` above the initial value
    (``multiprocessing.BoundedSemaphore``). ``BoundedSemaphore.open(name, value)`` needs
    the bound again (the shared object does not record it)."""

    __slots__ = ('_maxvalue',)

    def __init__(self, value=1, *, name=None, lifetime=None, undo=False, mode=0o600):
        super().__init__(value, name=name, lifetime=lifetime, undo=undo, mode=mode)
        self._maxvalue = value

    @classmethod
    def open(cls, name, value=1):
        self = super().open(name)
        self._maxvalue = value
        return self

    def _state(self):
        return (self._h.name, self._maxvalue)

    def release(self):
        """Give a unit back; ``ValueError`` if the value is already at the bound."""
        if self._h.sem_value() >= self._maxvalue:
            raise ValueError('semaphore or lock released too many times')
        self._h.sem_post()

    def __repr__(self):
        try:
            value = self.get_value()
        except Exception:
            value = 'unknown'
        return f'<BoundedSemaphore(value={value}, maxvalue={self._maxvalue})>'


# ------------------------------------------------------------- condition

class Condition(_Base):
    """A condition variable shared between processes (``multiprocessing.Condition``).

    ``Condition(lock=None, *, name=None, lifetime=None)``: ``lock`` is a pshm
    :class:`Lock` or :class:`RLock` (a new ``RLock`` by default, named ``name + '.lock'``
    when ``name`` is given). ``Condition.open(name, lock=None)`` attaches to an existing
    one (and to ``RLock.open(name + '.lock')`` when ``lock`` is None).

    A condition also keeps a generation counter (a semaphore, named ``name + '.gen'``),
    so that a ``notify()`` is never lost while a waiter takes the lock back between the
    slices of an interruptible wait. ``wait()`` may therefore return ``True``
    spuriously: wait in a loop on your predicate, or use ``wait_for``.
    """

    __slots__ = ('_lock', '_gen')
    _KIND = _sync.COND

    def __init__(self, lock=None, *, name=None, lifetime=None, mode=0o600):
        if lock is None:
            lock = RLock(name=None if name is None else name + '.lock', lifetime=lifetime,
                         mode=mode)
        elif not isinstance(lock, Lock):
            raise TypeError(f'lock must be a pshm Lock or RLock, not {type(lock).__name__}')
        self._lock = lock
        self._h = _sync.Handle(name, _sync.COND, True, lifetime=_lifetime(name, lifetime),
                               mode=mode)
        self._gen = Semaphore(0, name=None if name is None else name + '.gen',
                              lifetime=lifetime, mode=mode)

    @classmethod
    def open(cls, name, lock=None, _gen=None):
        """Attach to the existing condition ``name``, with ``lock`` (default
        ``RLock.open(name + '.lock')``)."""
        self = super().open(name)
        self._lock = RLock.open(name + '.lock') if lock is None else lock
        self._gen = Semaphore.open(name + '.gen' if _gen is None else _gen)
        return self

    def _state(self):
        return (self._h.name, self._lock, self._gen.name)

    def acquire(self, block=True, timeout=None):
        """Acquire the underlying lock (see :meth:`Lock.acquire`)."""
        return self._lock.acquire(block, timeout)

    def release(self):
        """Release the underlying lock."""
        self._lock.release()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def _owned(self):
        lock = self._lock
        if isinstance(lock, RLock):
            return lock._is_mine()
        i = lock._h.info()
        return bool(i['locked']) and i['owner_pid'] == os.getpid() and \
            i['owner_tid'] == threading.get_native_id()

    def wait(self, timeout=None):
        """Release the lock (every level of an RLock), sleep until notified or
        ``timeout`` seconds passed, take the lock back. ``True`` unless it timed out.
        Ctrl-C interrupts the wait (the lock is held again when the exception arrives).
        Raises :class:`OwnerDeadError` if the lock's holder died meanwhile (lock held)."""
        lock = self._lock
        assert self._owned(), 'must acquire() condition before using wait()'
        rlock = isinstance(lock, RLock)
        if rlock:
            count, lock._owner, lock._count = lock._count, None, 0
        r = _sync.EINVAL
        try:
            r = self._h.cond_wait(lock._h, self._gen._h, timeout)
        finally:
            if rlock and r != _sync.ENOTRECOVERABLE and r != _sync.EPERM:
                lock._owner, lock._count = _me(), count
        if r == 0:
            return True
        if r == _sync.ETIMEDOUT:
            return False
        return lock._check(r)

    def wait_for(self, predicate, timeout=None):
        """Wait until ``predicate()`` is true (or the timeout passes); its last result."""
        result = predicate()
        if result:
            return result
        endtime = None if timeout is None else time.monotonic() + timeout
        waittime = None
        while not result:
            if endtime is not None:
                waittime = endtime - time.monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n=1):
        """Wake up to ``n`` waiters. The caller must hold the lock."""
        assert self._owned(), 'lock is not owned'
        self._bump()
        for _ in range(n):
            self._h.cond_notify(False)

    def notify_all(self):
        """Wake every waiter. The caller must hold the lock."""
        assert self._owned(), 'lock is not owned'
        self._bump()
        self._h.cond_notify(True)

    def _bump(self):
        # Move the generation value (see cond_slice in sync.c): up, or down near the
        # maximum; waiters only look for a change.
        if self._gen.get_value() >= 1 << 30:
            self._gen.acquire(False)
        else:
            self._gen.release()

    def unlink(self):
        """Remove the condition's names (its own and its generation counter's; the lock
        is unlinked separately, see ``lock``)."""
        self._h.unlink()
        self._gen.unlink()

    def __repr__(self):
        return f'<Condition({self._lock!r})>'


# ----------------------------------------------------------------- event

class Event(_Base):
    """A flag processes wait for (``multiprocessing.Event``): manual reset.

    ``Event(*, name=None, lifetime=None)``; ``Event.open(name)`` attaches.
    """

    __slots__ = ()
    _KIND = _sync.EVENT

    def __init__(self, *, name=None, lifetime=None, mode=0o600):
        self._h = _sync.Handle(name, _sync.EVENT, True, flags=_sync.EVENT_MANUAL,
                               lifetime=_lifetime(name, lifetime), mode=mode)

    @classmethod
    def open(cls, name):
        """Attach to the existing event ``name``."""
        self = super().open(name)
        if not self._h.info()['flags'] & _sync.EVENT_MANUAL:
            raise ValueError(f"'{name}' is an auto-reset event, not a pshm.Event")
        return self

    def is_set(self):
        """True if the flag is set."""
        return self._h.info()['value'] != 0

    def set(self):
        """Set the flag: every waiter, now and later, returns until ``clear()``."""
        self._h.event_set(True)

    def clear(self):
        """Reset the flag."""
        self._h.event_set(False)

    def wait(self, timeout=None):
        """Block until the flag is set: ``True``, or ``False`` at the timeout. Releases
        the GIL; Ctrl-C interrupts it."""
        return self._h.event_wait(timeout)

    def __repr__(self):
        return f'<Event({"set" if self.is_set() else "unset"})>'


# --------------------------------------------------------------- barrier

class Barrier(_Base):
    """A barrier for ``parties`` threads of any processes (``multiprocessing.Barrier``).

    ``Barrier(parties, action=None, timeout=None, *, name=None, lifetime=None)``;
    ``Barrier.open(name, action=None, timeout=None)`` attaches. ``wait()`` returns the
    arrival index (0 .. parties - 1) and raises ``threading.BrokenBarrierError`` when the
    barrier breaks: a timeout, ``reset()``/``abort()`` during the wait, a participant
    that died waiting. See the module documentation for ``action`` and ``abort()``.
    """

    __slots__ = ('_action', '_timeout')
    _KIND = _sync.BARRIER

    def __init__(self, parties, action=None, timeout=None, *, name=None, lifetime=None,
                 mode=0o600):
        if not 1 <= parties <= _sync.BARRIER_MAX:
            raise ValueError(f'parties must be 1 .. {_sync.BARRIER_MAX}')
        self._action = action
        self._timeout = timeout
        self._h = _sync.Handle(name, _sync.BARRIER, True, count=parties,
                               lifetime=_lifetime(name, lifetime), mode=mode)

    @classmethod
    def open(cls, name, action=None, timeout=None):
        """Attach to the existing barrier ``name``."""
        self = super().open(name)
        self._action = action
        self._timeout = timeout
        return self

    def _state(self):
        return (self._h.name, self._action, self._timeout)

    def _wait(self, deadline):
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        r, index = self._h.barrier_wait(timeout)
        if r:
            raise threading.BrokenBarrierError
        return index

    def wait(self, timeout=None):
        """Wait until ``parties`` threads wait; the arrival index."""
        if timeout is None:
            timeout = self._timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        index = self._wait(deadline)
        if self._action is not None:
            if index == self.parties - 1:
                try:
                    self._action()
                except BaseException:
                    self._h.barrier_reset()
                    raise
            self._wait(deadline)
        return index

    def reset(self):
        """Return the barrier to its empty state; current waiters get
        ``BrokenBarrierError``."""
        self._h.barrier_reset()

    def abort(self):
        """Break the current phase (waiters get ``BrokenBarrierError``); unlike the
        stdlib, the barrier is usable again at once."""
        self._h.barrier_reset()

    @property
    def parties(self):
        """The number of threads the barrier waits for."""
        return self._h.info()['count']

    @property
    def n_waiting(self):
        """How many threads wait in the current phase."""
        return self._h.info()['value']

    @property
    def broken(self):
        """True if the barrier is broken."""
        return bool(self._h.info()['broken'])

    def __repr__(self):
        return f'<Barrier(parties={self.parties}, n_waiting={self.n_waiting}, ' \
               f'broken={self.broken})>'
