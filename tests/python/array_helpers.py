# SPDX-License-Identifier: MIT
"""ctypes wrappers for pshm's array API (include/pshm.h, section array)."""
import ctypes
import io

import numpy as np

from conftest import PERSIST, BlockOptions, load_lib

MAXDIM = 64
DESCR_MAX = 16

# pshm's error codes for arrays (PSHM_ERRNO_MAP_ARRAY) and the generic ones used.
EVERSION = 1009
EARRAY_MAGIC = 1040
EARRAY_SHORT = 1041
EARRAY_HEADERLEN = 1042
EARRAY_HEADER = 1043
EARRAY_DTYPE = 1044
EARRAY_STRUCT = 1045
EARRAY_SHAPE = 1046
EARRAY_NDIM = 1047
EARRAY_OVERFLOW = 1048
EARRAY_TRUNCATED = 1049
EARRAY_ALIGN = 1050
EARRAY_MISMATCH = 1051


class Dtype(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_char),
        ("byteorder", ctypes.c_char),
        ("itemsize", ctypes.c_size_t),
        ("descr", ctypes.c_char * DESCR_MAX),
    ]


class PshmError(OSError):
    def __init__(self, code, name):
        super().__init__(-code, name)
        self.code = -code
        self.name = name


class Array:
    """An open pshm_array handle."""

    def __init__(self, api, handle):
        self.api = api
        self.h = handle

    @property
    def lib(self):
        return self.api.lib

    @property
    def descr(self):
        return self.lib.pshm_array_descr(self.h).decode()

    @property
    def dtype(self):
        return self.lib.pshm_array_dtype(self.h).contents

    @property
    def ndim(self):
        return self.lib.pshm_array_ndim(self.h)

    @property
    def shape(self):
        p = self.lib.pshm_array_shape(self.h)
        return tuple(p[i] for i in range(self.ndim))

    @property
    def strides(self):
        p = self.lib.pshm_array_strides(self.h)
        return tuple(p[i] for i in range(self.ndim))

    @property
    def nbytes(self):
        return self.lib.pshm_array_nbytes(self.h)

    @property
    def nitems(self):
        return self.lib.pshm_array_nitems(self.h)

    @property
    def data_offset(self):
        return self.lib.pshm_array_data_offset(self.h)

    @property
    def fortran_order(self):
        return bool(self.lib.pshm_array_fortran_order(self.h))

    @property
    def version(self):
        v = self.lib.pshm_array_version(self.h)
        return (v >> 8, v & 0xFF)

    @property
    def data(self):
        return self.lib.pshm_array_data(self.h)

    @property
    def name(self):
        return self.lib.pshm_block_name(self.lib.pshm_array_block(self.h)).decode()

    @property
    def block_size(self):
        return self.lib.pshm_block_size(self.lib.pshm_array_block(self.h))

    def buf(self):
        """The element bytes, as a ctypes array over the shared memory."""
        return (ctypes.c_ubyte * self.nbytes).from_address(self.data)

    def view(self):
        """A numpy view of the C handle's memory, built from what pshm reports."""
        dt = np.dtype(self.descr)
        n = max(self.nbytes, 1)
        raw = (ctypes.c_ubyte * n).from_address(self.data)
        return np.ndarray(self.shape, dtype=dt, buffer=raw, strides=self.strides)

    def unlink(self):
        rc = self.lib.pshm_block_unlink(self.lib.pshm_array_block(self.h))
        self.api.check(rc)

    def close(self):
        rc = self.lib.pshm_array_close(self.h)
        self.h = None
        self.api.check(rc)


class ArrayApi:
    def __init__(self):
        lib = load_lib()
        p = ctypes.c_void_p
        i64p = ctypes.POINTER(ctypes.c_int64)
        lib.pshm_dtype_parse.argtypes = [ctypes.c_char_p, ctypes.POINTER(Dtype)]
        lib.pshm_array_create.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, i64p,
                                          ctypes.c_int, ctypes.POINTER(BlockOptions), ctypes.POINTER(p)]
        lib.pshm_array_create_from_npy.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                                   ctypes.POINTER(BlockOptions), ctypes.POINTER(p)]
        lib.pshm_array_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(BlockOptions), ctypes.POINTER(p)]
        lib.pshm_array_close.argtypes = [p]
        lib.pshm_array_block.argtypes = [p]
        lib.pshm_array_block.restype = p
        lib.pshm_array_dtype.argtypes = [p]
        lib.pshm_array_dtype.restype = ctypes.POINTER(Dtype)
        lib.pshm_array_descr.argtypes = [p]
        lib.pshm_array_descr.restype = ctypes.c_char_p
        lib.pshm_array_ndim.argtypes = [p]
        lib.pshm_array_shape.argtypes = [p]
        lib.pshm_array_shape.restype = i64p
        lib.pshm_array_strides.argtypes = [p]
        lib.pshm_array_strides.restype = i64p
        lib.pshm_array_data.argtypes = [p]
        lib.pshm_array_data.restype = p
        for f in ("data_offset", "nbytes"):
            getattr(lib, "pshm_array_" + f).argtypes = [p]
            getattr(lib, "pshm_array_" + f).restype = ctypes.c_size_t
        lib.pshm_array_nitems.argtypes = [p]
        lib.pshm_array_nitems.restype = ctypes.c_uint64
        lib.pshm_array_fortran_order.argtypes = [p]
        lib.pshm_array_version.argtypes = [p]
        lib.pshm_errname.argtypes = [ctypes.c_int]
        self.lib = lib

    def check(self, rc):
        if rc != 0:
            raise PshmError(rc, self.lib.pshm_errname(rc).decode())

    def options(self, lifetime=PERSIST, **kw):
        o = BlockOptions(ctypes.sizeof(BlockOptions), 0o600, lifetime, 0, 0, 0, 0, 0)
        for k, v in kw.items():
            setattr(o, k, v)
        return o

    def dtype_parse(self, descr):
        d = Dtype()
        self.check(self.lib.pshm_dtype_parse(descr.encode(), ctypes.byref(d)))
        return d

    def create(self, name, descr, shape, fortran=False, lifetime=PERSIST, **kw):
        h = ctypes.c_void_p()
        shp = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        o = self.options(lifetime, **kw)
        self.check(self.lib.pshm_array_create(name.encode() if name else None, descr.encode(), len(shape),
                                              shp, int(fortran), ctypes.byref(o), ctypes.byref(h)))
        return Array(self, h)

    def create_from_npy(self, name, image, lifetime=PERSIST, **kw):
        h = ctypes.c_void_p()
        o = self.options(lifetime, **kw)
        self.check(self.lib.pshm_array_create_from_npy(name.encode() if name else None, image, len(image),
                                                       ctypes.byref(o), ctypes.byref(h)))
        return Array(self, h)

    def open(self, name, **kw):
        h = ctypes.c_void_p()
        o = self.options(**kw)
        self.check(self.lib.pshm_array_open(name.encode(), ctypes.byref(o), ctypes.byref(h)))
        return Array(self, h)


def npy_bytes(arr, **kw):
    """What np.save writes for arr."""
    b = io.BytesIO()
    np.save(b, arr, **kw)
    return b.getvalue()


def header_len(image):
    """The data offset of a .npy image."""
    if image[6] == 1:
        return 10 + int.from_bytes(image[8:10], "little")
    return 12 + int.from_bytes(image[8:12], "little")
