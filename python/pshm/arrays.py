# SPDX-License-Identifier: MIT
"""numpy arrays in pshm array blocks: a ``.npy`` image in shared memory, used in place.

The block holds numpy's own ``.npy`` header followed by the elements, so the dtype, the
shape and the order travel with the data: a consumer needs only the name::

    a = pshm.create_array('frames', (480, 640), 'uint8')   # producer
    b = pshm.open_array('frames')                           # any other process
    b[0, 0] = 255                                           # seen by both

``create_array`` and ``open_array`` return plain ``numpy.ndarray`` objects whose
elements are the shared memory itself (no copy). The block's handle is under their
``base`` (:func:`array_block` finds it): the mapping stays as long as any array or view made
from it is alive, so an array never outlives its memory (no segfault; numpy#18294), and
``handle.close()`` raises ``BufferError`` while views exist. ``np.load(path,
mmap_mode='r+')`` on ``/dev/shm/<name>`` opens the same block.

numpy is imported by these functions only; ``import pshm`` works without it.

Lifetimes: a block made without a ``name`` gets a random one and the ``'auto'`` lifetime
(it goes when the last process that has it open closes it or dies); with a ``name`` it is
``'persist'`` until :func:`unlink_array` (or ``pshm rm``). Pass ``lifetime=`` to choose.

Element access is not synchronised: coordinate writers and readers (a :class:`pshm.Lock`,
an :class:`pshm.Event`, a :class:`pshm.Queue` message).

Dtypes: bool, integers, floats (float16 to longdouble), complex, and fixed-size ``S``,
``U`` and ``V``; structured, object and datetime dtypes raise ``ValueError``.
"""

from . import _array
from .synchronize import _lifetime

__all__ = ['create_array', 'open_array', 'share_array', 'array_block', 'unlink_array']


def _wrap(h):
    import numpy as np
    descr, shape, fortran, nbytes, lifetime = h.geometry()
    # On a View, which numpy keeps as the base: the handle counts its live views,
    # so the mapping stays while the array lives and close() refuses meanwhile.
    a = np.ndarray(shape, dtype=np.dtype(descr), buffer=h.view(),
                   order='F' if fortran else 'C')
    if h.readonly:
        a.flags.writeable = False
    return a


def create_array(name, shape, dtype, *, order='C', lifetime=None, exist_ok=False,
                 mode=0o600):
    """Create the array block ``name`` (``None``: a random name) holding a zeroed array
    of ``shape`` and ``dtype`` in ``order`` ('C' or 'F'); return it as a numpy array.

    ``exist_ok=True`` opens an existing block of that name instead, which must hold the
    same dtype, shape and order (else ``FileExistsError``). Raises ``FileExistsError``
    (the name is taken), ``ValueError`` (unsupported dtype, bad shape or name),
    ``OSError`` (no room in /dev/shm: ``ENOSPC``)."""
    import numpy as np
    dt = np.dtype(dtype)
    if dt.fields is not None or dt.hasobject or dt.subdtype is not None or \
            dt.kind not in 'biufcSUV':
        raise ValueError(f'dtype {dt} is not supported in a pshm array (structured, object '
                         'and datetime dtypes are not)')
    if order not in ('C', 'F'):
        raise ValueError("order must be 'C' or 'F'")
    if isinstance(shape, int):
        shape = (shape,)
    h = _array.Handle(name, dt.str, tuple(shape), order == 'F', _lifetime(name, lifetime),
                      exist_ok, mode)
    return _wrap(h)


def open_array(name, *, readonly=False):
    """Open the existing array block ``name`` (made by pshm, by ``np.save`` into
    /dev/shm, or any ``.npy`` image in a block) as a numpy array; dtype, shape and order
    come from the block. ``readonly=True`` maps it read-only (the array is not writeable).
    Raises ``FileNotFoundError``, ``PermissionError``, ``ValueError`` (not an array: the
    message says what is wrong with the header)."""
    return _wrap(_array.open(name, readonly))


def share_array(arr, name=None, *, lifetime=None, mode=0o600):
    """Copy the numpy array ``arr`` into a new array block (``name`` or a random one) and
    return the shared array (same dtype, shape, C or Fortran order)."""
    import numpy as np
    arr = np.asanyarray(arr)
    order = 'F' if arr.flags.f_contiguous and not arr.flags.c_contiguous else 'C'
    out = create_array(name, arr.shape, arr.dtype, order=order, lifetime=lifetime, mode=mode)
    np.copyto(out, arr)
    return out


def array_block(arr):
    """The pshm handle under a numpy array made by this module (or a view of one):
    ``.name``, ``.close()``, ``.unlink()``, ``.readonly``. ``ValueError`` for any other
    array."""
    b = arr
    while b is not None:
        if isinstance(b, _array.Handle):
            return b
        if isinstance(b, _array.View):
            return b.handle
        b = getattr(b, 'base', None)
        if isinstance(b, memoryview):
            b = b.obj
    raise ValueError('not an array in a pshm block')


def unlink_array(name):
    """Remove the array block's name (processes that have it open keep their arrays)."""
    h = _array.open(name)
    try:
        h.unlink()
    finally:
        h.close()
