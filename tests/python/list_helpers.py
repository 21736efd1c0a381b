# SPDX-License-Identifier: MIT
"""ctypes wrappers for pshm's ShareableList (include/pshm.h, section list),
shaped like CPython's ShareableList so tests can run one against the other."""
import ctypes
import math
import os
import struct

from conftest import BUILD, PERSIST, BlockOptions

NONE, INT, FLOAT, BOOL, STR, BYTES = range(6)


class _Buf(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Union(ctypes.Union):
    _fields_ = [("i", ctypes.c_int64), ("f", ctypes.c_double), ("b", ctypes.c_int), ("s", _Buf)]


class Value(ctypes.Structure):
    _anonymous_ = ("u",)
    _fields_ = [("type", ctypes.c_int), ("u", _Union)]


class RawStr:
    """Bytes sent to C as a *str* item (to test UTF-8 checks)."""

    def __init__(self, data):
        self.data = data


class RawType:
    """A value with an arbitrary type code (to test unknown types)."""

    def __init__(self, code):
        self.code = code


class PshmError(Exception):
    def __init__(self, code, name, msg):
        super().__init__("%s: %s" % (name, msg))
        self.code = code
        self.name = name


class PshmIndexError(PshmError, IndexError):
    pass


class PshmValueError(PshmError, ValueError):
    pass


_lib = None
ERR = {}


def lib():
    global _lib
    if _lib is None:
        L = ctypes.CDLL(os.path.join(BUILD, "libpshm.so"))
        p, i64, sz = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t
        PV = ctypes.POINTER(Value)
        L.pshm_list_create.argtypes = [ctypes.c_char_p, PV, sz, ctypes.POINTER(BlockOptions), ctypes.POINTER(p)]
        L.pshm_list_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(BlockOptions), ctypes.POINTER(p)]
        L.pshm_list_close.argtypes = [p]
        L.pshm_list_len.argtypes = [p]
        L.pshm_list_len.restype = sz
        L.pshm_list_block.argtypes = [p]
        L.pshm_list_block.restype = p
        L.pshm_list_type.argtypes = [p, i64, ctypes.POINTER(ctypes.c_int)]
        L.pshm_list_get.argtypes = [p, i64, PV]
        L.pshm_list_set.argtypes = [p, i64, PV]
        L.pshm_list_capacity.argtypes = [p, i64, ctypes.POINTER(sz)]
        L.pshm_list_count.argtypes = [p, PV, ctypes.POINTER(sz)]
        L.pshm_list_index.argtypes = [p, PV, ctypes.POINTER(sz)]
        L.pshm_list_format.argtypes = [p, ctypes.c_char_p, sz, ctypes.POINTER(sz)]
        L.pshm_vtype_name.argtypes = [ctypes.c_int]
        L.pshm_vtype_name.restype = ctypes.c_char_p
        L.pshm_block_data.argtypes = [p]
        L.pshm_block_data.restype = p
        L.pshm_block_size.argtypes = [p]
        L.pshm_block_size.restype = sz
        L.pshm_block_name.argtypes = [p]
        L.pshm_block_name.restype = ctypes.c_char_p
        L.pshm_block_unlink.argtypes = [p]
        L.pshm_strerror.restype = ctypes.c_char_p
        L.pshm_errname.restype = ctypes.c_char_p
        _lib = L
        for k in range(1020, 1040):
            n = L.pshm_errname(-k).decode()
            if n.startswith("PSHM_E"):
                ERR[n[5:]] = k
    return _lib


def check(rc):
    if rc == 0:
        return
    L = lib()
    name = L.pshm_errname(rc).decode()
    msg = L.pshm_strerror(rc).decode()
    if name == "PSHM_ELIST_INDEX":
        raise PshmIndexError(rc, name, msg)
    if name in ("PSHM_ELIST_NOSPACE", "PSHM_ELIST_NOTFOUND", "PSHM_ELIST_UTF8"):
        raise PshmValueError(rc, name, msg)
    raise PshmError(rc, name, msg)


def to_value(x):
    """A Python value as a pshm_value; returns (value, keepalive)."""
    v = Value()
    keep = None
    if isinstance(x, RawType):
        v.type = x.code
    elif x is None:
        v.type = NONE
    elif isinstance(x, bool):
        v.type, v.b = BOOL, int(x)
    elif isinstance(x, int):
        if not -(1 << 63) <= x < (1 << 63):
            raise OverflowError("int outside int64")
        v.type, v.i = INT, x
    elif isinstance(x, float):
        v.type, v.f = FLOAT, x
    elif isinstance(x, (str, bytes, RawStr)):
        if isinstance(x, str):
            data, v.type = x.encode("utf-8"), STR
        elif isinstance(x, RawStr):
            data, v.type = x.data, STR
        else:
            data, v.type = x, BYTES
        keep = ctypes.create_string_buffer(data, len(data) or 1)
        v.s.ptr = ctypes.addressof(keep)
        v.s.len = len(data)
    else:
        raise TypeError("unsupported type %r" % type(x))
    return v, keep


def from_value(v):
    if v.type == NONE:
        return None
    if v.type == INT:
        return v.i
    if v.type == FLOAT:
        return v.f
    if v.type == BOOL:
        return bool(v.b)
    data = ctypes.string_at(v.s.ptr, v.s.len) if v.s.len else b""
    return data.decode("utf-8") if v.type == STR else data


class PList:
    """pshm's list through the C API."""

    def __init__(self, handle):
        self.h = handle

    @classmethod
    def create(cls, name, items, lifetime=PERSIST):
        L = lib()
        items = list(items)
        arr = (Value * max(len(items), 1))()
        keep = []
        for k, x in enumerate(items):
            arr[k], kp = to_value(x)
            keep.append(kp)
        o = BlockOptions(ctypes.sizeof(BlockOptions), 0o600, lifetime, 0, 0, 0, 0, 0)
        h = ctypes.c_void_p()
        check(L.pshm_list_create(name.encode() if name else None, arr, len(items), ctypes.byref(o), ctypes.byref(h)))
        return cls(h)

    @classmethod
    def open(cls, name, readonly=False):
        L = lib()
        o = BlockOptions(ctypes.sizeof(BlockOptions), 0o600, PERSIST, int(readonly), 0, 0, 0, 0)
        h = ctypes.c_void_p()
        check(L.pshm_list_open(name.encode(), ctypes.byref(o), ctypes.byref(h)))
        return cls(h)

    def close(self):
        if self.h:
            check(lib().pshm_list_close(self.h))
            self.h = None

    def unlink(self):
        check(lib().pshm_block_unlink(lib().pshm_list_block(self.h)))

    @property
    def name(self):
        return lib().pshm_block_name(lib().pshm_list_block(self.h)).decode()

    def raw(self):
        """The block's bytes, copied."""
        b = lib().pshm_list_block(self.h)
        return ctypes.string_at(lib().pshm_block_data(b), lib().pshm_block_size(b))

    def __len__(self):
        return lib().pshm_list_len(self.h)

    def __getitem__(self, i):
        v = Value()
        check(lib().pshm_list_get(self.h, i, ctypes.byref(v)))
        return from_value(v)

    def __setitem__(self, i, x):
        v, keep = to_value(x)
        check(lib().pshm_list_set(self.h, i, ctypes.byref(v)))

    def type(self, i):
        t = ctypes.c_int()
        check(lib().pshm_list_type(self.h, i, ctypes.byref(t)))
        return lib().pshm_vtype_name(t.value).decode()

    def capacity(self, i):
        n = ctypes.c_size_t()
        check(lib().pshm_list_capacity(self.h, i, ctypes.byref(n)))
        return n.value

    def count(self, x):
        v, keep = to_value(x)
        n = ctypes.c_size_t()
        check(lib().pshm_list_count(self.h, ctypes.byref(v), ctypes.byref(n)))
        return n.value

    def index(self, x):
        v, keep = to_value(x)
        n = ctypes.c_size_t()
        check(lib().pshm_list_index(self.h, ctypes.byref(v), ctypes.byref(n)))
        return n.value

    @property
    def format(self):
        n = ctypes.c_size_t()
        check(lib().pshm_list_format(self.h, None, 0, ctypes.byref(n)))
        buf = ctypes.create_string_buffer(n.value + 1)
        check(lib().pshm_list_format(self.h, buf, n.value + 1, ctypes.byref(n)))
        return buf.value.decode()

    def tolist(self):
        return [self[i] for i in range(len(self))]


def same(a, b):
    """Equal values of equal types; NaN equals NaN; -0.0 differs from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("d", a) == struct.pack("d", b) or (math.isnan(a) and math.isnan(b))
    return a == b


def same_list(xs, ys):
    return len(xs) == len(ys) and all(same(x, y) for x, y in zip(xs, ys))
