# SPDX-License-Identifier: MIT
"""pshm.shared_memory: a drop-in for :mod:`multiprocessing.shared_memory`.

``SharedMemory`` and ``ShareableList`` take the stdlib's arguments, have its
attributes, methods, ``repr`` and pickling, and raise the same exception
types for the same bad input. What differs is how long a block lives: no
resource tracker process is involved; the kernel is the witness (see the
README, "Python": lifetimes).

- ``close()`` keeps the block for other processes; ``unlink()`` removes it.
- A process that attaches (``create=False``) never removes a block
  (the stdlib's gh-82300).
- ``create=True, track=True`` (the default): the block belongs to this
  program's lifetime group (the top-level process and every process it
  started). It is removed when ``unlink()`` is called or when the last
  process of the program ends, SIGKILL included; a child that creates a
  block and exits does not take it along.
- ``create=True, track=False``: the block stays until it is unlinked.
"""
import os
import secrets
import struct
import types
from functools import partial

from . import _shm

__all__ = ["SharedMemory", "ShareableList"]

_O_CREX = os.O_CREAT | os.O_EXCL
_O_CREAT, _O_EXCL, _O_RDWR = os.O_CREAT, os.O_EXCL, os.O_RDWR
_USE_POSIX = True
# The random names: CPython's prefix, with 64 random bits (CPython has 32).
_SHM_NAME_PREFIX = "/psm_"
_SHM_SAFE_NAME_LENGTH = 21
_encoding = "utf8"


def _make_filename():
    "Create a random name for a shared memory block."
    return _SHM_NAME_PREFIX + secrets.token_hex(8)


def _lifetime(track):
    return _shm.LIFETIME_GROUP if track else _shm.LIFETIME_PERSIST


class SharedMemory:
    """Create a new shared memory block or attach to an existing one.

    ``SharedMemory(name=None, create=False, size=0, *, track=True)``, as
    :class:`multiprocessing.shared_memory.SharedMemory`. ``name`` is given
    without a leading slash; ``size`` is ignored when attaching.

    ``close()`` ends this handle and keeps the block; ``unlink()`` removes
    it. With ``track=True`` (default) a created block is also removed when
    the program that created it ends, however it ends; with ``track=False``
    it stays until unlinked. Attaching never removes a block.

    Buffers taken from ``buf`` (memoryviews, numpy arrays) keep the mapping
    alive: after ``close()`` they stay valid until released, so ``close()``
    never raises ``BufferError`` and a view never points at unmapped
    memory.
    """

    # Defaults, as the stdlib's (enables close() and unlink() on a
    # half-made object, and a subclass may set _flags).
    _name = None
    _fd = -1
    _mmap = None
    _buf = None
    _block = None
    _flags = os.O_RDWR
    _mode = 0o600
    _prepend_leading_slash = True

    def __init__(self, name=None, create=False, size=0, *, track=True):
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if create:
            self._flags = _O_CREX | _O_RDWR
            if size == 0:
                raise ValueError("'size' must be a positive number different from zero")
        self._track = track
        flags = self._flags
        if flags == _O_RDWR and name is not None:
            # attach: the common case, kept short (bench_shm.py's attach+close)
            block = _shm.Block("/" + name, 0, 0)
        elif name is None and not flags & _O_EXCL:
            raise ValueError("'name' can only be None if create=True")
        else:
            block = self._create_or_open(name, flags, size, _lifetime(track))
        self._block = block
        self._name = "/" + block.name
        self._size = block.size
        self._buf = memoryview(block)

    @staticmethod
    def _create_or_open(name, flags, size, lifetime):
        if flags & _O_EXCL:
            if name is None:
                while True:
                    name = _make_filename()
                    try:
                        block = _shm.Block(name, 1, size, lifetime)
                    except FileExistsError:
                        continue
                    break
            else:
                block = _shm.Block("/" + name, 1, size, lifetime)
            return block
        if flags & _O_CREAT:
            return _shm.Block("/" + name, 2, size, lifetime)
        return _shm.Block("/" + name, 0, 0)

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass

    def __reduce__(self):
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self):
        return f"{self.__class__.__name__}({self.name!r}, size={self.size})"

    @property
    def buf(self):
        "A memoryview of contents of the shared memory block."
        return self._buf

    @property
    def name(self):
        "Unique name that identifies the shared memory block."
        reported = self._name
        if reported and reported.startswith("/"):
            reported = reported[1:]
        return reported

    @property
    def size(self):
        "Size in bytes."
        return self._size

    def close(self):
        """Close access to the shared memory from this instance; the block
        stays for other processes. Views still exported from ``buf`` keep
        the mapping until they are released."""
        # Not buf.release() and block.close(): numpy takes the buffer and
        # gives it back at once, keeping only a reference to the object
        # under it (numpy#18294: after the stdlib's close the array points
        # at unmapped memory). Dropping our references instead lets the
        # block live exactly as long as anything uses it - an array's base,
        # a memoryview's export - and unmap when the last one goes (at once
        # when nothing else holds it).
        self._buf = None
        self._block = None

    def unlink(self):
        """Remove the shared memory block's name; processes that have it
        mapped keep their mapping. Call it once across all processes: a
        second call raises FileNotFoundError."""
        if self._name:
            if self._block is not None:
                self._block.unlink()
            else:
                _shm.unlink(self._name)

    # ---- beyond the stdlib: the seed example's three methods

    def get_addr(self):
        """The address of the mapping in this process (an int), for ctypes,
        cffi or numba. Valid while this handle is open."""
        if self._block is None:
            raise ValueError("operation on a closed SharedMemory")
        return self._block.addr

    def get_value(self, index, count=1, dtype="B"):
        """Read ``count`` items of type ``dtype`` at element ``index``
        without making a view. ``dtype`` is a :mod:`struct` format character
        (``"i"``, ``"d"``...) or anything with ``.char`` (a numpy dtype).
        Returns one value when count is 1, else a list."""
        if self._block is None:
            raise ValueError("operation on a closed SharedMemory")
        code = getattr(dtype, "char", dtype)
        if isinstance(dtype, type):
            code = getattr(dtype(), "dtype", None)
            code = code.char if code is not None else dtype
        itemsize = struct.calcsize(code)
        if index < 0 or count < 0 or (index + count) * itemsize > self._size:
            raise IndexError("get_value: items beyond the end of the block")
        vals = struct.unpack_from("=%d%s" % (count, code), self._buf, index * itemsize)
        return vals[0] if count == 1 else list(vals)

    def create_view(self, cls=None, dtype=None, shape=None, offset=0):
        """A context manager yielding a view of the block: a numpy array
        (``cls=numpy.ndarray``, the default; ``dtype`` default uint8,
        ``shape`` default: as many items as fit) or a ``memoryview``
        (``cls=memoryview``, cast to ``dtype`` if given), starting
        ``offset`` bytes into the block. At the end of the ``with`` a
        memoryview is released; a numpy array is dropped by pshm, and one
        the caller kept keeps the block mapped (never dangling) until it
        goes. ``close()`` never meets ``BufferError``."""
        return _View(self, cls, dtype, shape, offset)

    # ---- the stdlib's private names that code in the wild reads

    @property
    def _fd(self):
        return self._block.fd if self._block is not None else -1


class _View:
    def __init__(self, shm, cls, dtype, shape, offset):
        self._shm, self._cls, self._dtype, self._shape, self._offset = shm, cls, dtype, shape, offset
        self._mv = None
        self._view = None

    def __enter__(self):
        if self._shm._buf is None:
            raise ValueError("operation on a closed SharedMemory")
        if not 0 <= self._offset <= self._shm.size:
            raise ValueError("offset outside the block")
        self._mv = self._shm._buf[self._offset:]
        if self._cls is memoryview:
            view = self._mv
            if self._dtype is not None:
                view = view.cast(getattr(self._dtype, "char", self._dtype))
            if self._shape is not None:
                view = view.cast(view.format, list(self._shape) if not isinstance(self._shape, int) else [self._shape])
            self._view = view
            return view
        import numpy

        cls = numpy.ndarray if self._cls is None else self._cls
        dtype = numpy.dtype(numpy.uint8 if self._dtype is None else self._dtype)
        shape = self._shape
        if shape is None:
            shape = (len(self._mv) // dtype.itemsize,)
        self._view = cls(shape, dtype=dtype, buffer=self._mv)
        return self._view

    def __exit__(self, *exc):
        # A memoryview is released (using it afterwards raises ValueError).
        # A numpy array kept past the with keeps the block mapped until it
        # goes: it never points at unmapped memory.
        view, self._view = self._view, None
        mv, self._mv = self._mv, None
        for m in (view, mv):
            if isinstance(m, memoryview):
                try:
                    m.release()
                except BufferError:
                    pass  # something still exports from it: it lives on
        return False


class ShareableList(_shm.List):
    """A fixed-length list of int, float, bool, None, str and bytes items in
    one shared memory block, byte-compatible with the stdlib's
    :class:`multiprocessing.shared_memory.ShareableList` (either side reads
    and writes the other's lists).

    ``ShareableList(sequence=None, *, name=None)``: create a list from
    ``sequence`` (a new block, named ``name`` or at random), or attach to
    the list in block ``name``. Gets and sets run in C; a failed set
    changes nothing; str slots are sized in UTF-8 bytes (gh-88336).
    The block is created with ``track=True`` semantics; ``shm`` is its
    :class:`SharedMemory`.
    """

    def __init__(self, sequence=None, *, name=None):
        if name is None or sequence is not None:
            items = list(sequence) if sequence else []
            created = self._create(name, items, _shm.LIFETIME_GROUP)
        else:
            created = self._attach(name)
        self.shm = SharedMemory(created)

    def __reduce__(self):
        return partial(self.__class__, name=self.shm.name), ()

    def __repr__(self):
        return f"{self.__class__.__name__}({list(self)}, name={self.shm.name!r})"

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def _list_len(self):
        return len(self)

    def _get_packing_format(self, position):
        "Gets the packing format for a single value stored in the list."
        n = len(self)
        position = position if position >= 0 else position + n
        if position >= n or position < 0:
            raise IndexError("Requested position out of range.")
        buf = self.shm.buf
        data = struct.unpack_from("q", buf, 8 + n * 8)[0]
        off = (n + 2) * 8 + data + position * 8
        return bytes(buf[off:off + 8]).rstrip(b"\x00").decode(_encoding)

    def count(self, value):
        "L.count(value) -> integer -- return number of occurrences of value."
        n = self._count(value)
        if n is None:
            n = sum(value == entry for entry in self)
        return n

    def index(self, value):
        """L.index(value) -> integer -- return first index of value.
        Raises ValueError if the value is not present."""
        i = self._index(value)
        if i is None:
            for position, entry in enumerate(self):
                if value == entry:
                    return position
            raise ValueError(f"{value!r} not in this container")
        return i

    __class_getitem__ = classmethod(types.GenericAlias)
