# SPDX-License-Identifier: MIT
"""Arrays made by pshm are numpy .npy files in /dev/shm: numpy maps them in
place, and pshm opens what numpy writes. Byte equality with np.save, every
dtype, both byte orders, C and Fortran order, 0-d and empty arrays, writes
seen across processes, and a 1 GiB array."""
import io
import os
import shutil
import subprocess

import numpy as np
import pytest
from numpy.lib import format as npformat

from array_helpers import (EARRAY_ALIGN, EARRAY_MAGIC, EARRAY_STRUCT, EARRAY_TRUNCATED, ArrayApi, PshmError,
                           npy_bytes)
from conftest import AUTO, run_py

DTYPES = ["?", "i1", "u1", "<i2", ">i2", "<u2", ">u2", "<i4", ">i4", "<u4", ">u4", "<i8", ">i8", "<u8", ">u8",
          "<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "<c8", ">c8", "<c16", ">c16", "S1", "S7", "<U1", "<U5", ">U5",
          "V4"]
SHAPES = [(), (0,), (1,), (7,), (3, 4), (2, 0, 3), (4, 1, 3), (2, 3, 4, 5), (1000, 3)]


@pytest.fixture(scope="module")
def api():
    return ArrayApi()


def path(name):
    return "/dev/shm/" + name


def sample(dt, shape, order="C"):
    """Deterministic, distinct values of any dtype."""
    dt = np.dtype(dt)
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    if dt.kind == "b":
        v = i % 3 == 1
    elif dt.kind in "iu":
        v = (i * 37 + 5) % (2 ** (8 * dt.itemsize - 1) - 1)
    elif dt.kind == "f":
        v = i * 0.25 - 3
    elif dt.kind == "c":
        v = i * 0.5 + 1j * (i - 2)
    elif dt.kind == "S":
        v = np.array([("s%d" % k).encode()[: dt.itemsize] for k in i], dtype=dt)
    elif dt.kind == "U":
        v = np.array([("é%d" % k)[: dt.itemsize // 4] for k in i], dtype=dt)
    else:
        v = np.frombuffer(bytes((k * 11 + 3) % 256 for k in range(n * dt.itemsize)), dtype=dt)
    return np.array(v.reshape(shape), dtype=dt, order=order)


def reference_header(dt, shape, fortran):
    """The header numpy's own writer produces for this dict."""
    b = io.BytesIO()
    npformat._write_array_header(b, {"descr": npformat.dtype_to_descr(np.dtype(dt)), "fortran_order": fortran,
                                     "shape": shape}, None)
    return b.getvalue()


# ------------------------------------------------------------ byte equality

@pytest.mark.parametrize("dt", DTYPES)
def test_block_is_np_save_byte_for_byte(api, name, dt):
    for shape in SHAPES:
        for fortran in (False, True):
            a = api.create(name, np.dtype(dt).str, shape, fortran)
            try:
                assert a.descr == np.dtype(dt).str
                raw = open(path(name), "rb").read()
                assert len(raw) == a.data_offset + a.nbytes
                assert raw[:a.data_offset] == reference_header(dt, shape, fortran), (dt, shape, fortran)
                # fill through numpy's own mapping of the block, then compare
                # the whole block with what np.save writes for those values
                m = np.load(path(name), mmap_mode="r+")
                assert m.dtype == np.dtype(dt) and m.shape == shape
                assert m.strides == a.strides
                m[...] = sample(dt, shape)
                m.flush()
                ref = np.asarray(m).copy(order="F" if fortran else "C")
                del m
                raw = open(path(name), "rb").read()
                order = "F" if fortran else "C"
                assert raw == reference_header(dt, shape, fortran) + ref.tobytes(order=order)
                # np.save itself writes these bytes, unless the array is both C-
                # and Fortran-contiguous (then it says fortran_order False)
                if ref.flags.c_contiguous != fortran:
                    assert raw == npy_bytes(ref)
            finally:
                a.unlink()
                a.close()


def test_np_save_header_for_long_shapes(api, name):
    for shape in [(10 ** 12, 0), (1,) * 20 + (12345,), (0,) + (2,) * 30, (0, 2 ** 59)]:
        for fortran in (False, True):
            a = api.create(name, "<f8", shape, fortran)
            raw = open(path(name), "rb").read(a.data_offset)
            assert raw == reference_header("<f8", shape, fortran)
            assert a.data_offset % 64 == 0
            a.unlink()
            a.close()


# ------------------------------------------------------ numpy maps C arrays

@pytest.mark.parametrize("dt", DTYPES)
def test_c_array_loads_in_numpy_and_compares_equal(api, name, dt, tmp_path):
    shape = (5, 3)
    for order in ("C", "F"):
        a = api.create(name, np.dtype(dt).str, shape, order == "F")
        v = sample(dt, shape, order)
        a.buf()[:] = v.tobytes(order="A")  # the bytes, written through the C handle
        assert np.array_equal(a.view(), v)
        ref = tmp_path / "ref.npy"
        np.save(ref, v)
        out = run_py("import numpy as np, sys\n"
                     "m = np.load('/dev/shm/' + sys.argv[1], mmap_mode='r+')\n"
                     "ref = np.load(sys.argv[2])\n"
                     "print(m.dtype.str, m.shape, m.flags.f_contiguous and not m.flags.c_contiguous,\n"
                     "      m.dtype == ref.dtype and np.array_equal(m, ref))\n",
                     name, str(ref)).stdout
        assert out == "%s %s %s True\n" % (np.dtype(dt).str, shape, order == "F")
        a.unlink()
        a.close()


def test_writes_through_numpy_are_seen_by_c_and_back(api, name):
    a = api.create(name, "<i8", (100, 4), False, AUTO)
    view = a.view()
    view[:] = np.arange(400).reshape(100, 4)
    # another process maps the block with numpy, checks, and writes
    run_py("import numpy as np, sys\n"
           "m = np.load('/dev/shm/' + sys.argv[1], mmap_mode='r+')\n"
           "assert (m == np.arange(400).reshape(100, 4)).all(), m\n"
           "m[:, 1] = -1\n"
           "m[7] = [70, 71, 72, 73]\n"
           "m.flush()\n", name)
    assert (view[:, 1][np.arange(100) != 7] == -1).all()
    assert list(view[7]) == [70, 71, 72, 73]
    assert view[99, 3] == 399
    # and C's writes after that are seen by a new numpy mapping
    view[50, 0] = 12345
    out = run_py("import numpy as np, sys\n"
                 "m = np.load('/dev/shm/' + sys.argv[1], mmap_mode='r')\n"
                 "print(m[50, 0], int(m.sum()))\n", name).stdout.split()
    assert out == ["12345", str(int(view.sum()))]
    a.close()
    assert not os.path.exists(path(name))  # AUTO: this was the last holder


# ------------------------------------------------------ pshm opens np.save

def check_opened(a, ref):
    assert a.descr == ref.dtype.str
    assert a.shape == ref.shape
    assert a.fortran_order == bool(ref.flags.f_contiguous and not ref.flags.c_contiguous)
    assert a.nbytes == ref.nbytes
    assert a.data_offset % 64 == 0 and a.data % 64 == 0
    got = a.view()
    assert got.dtype == ref.dtype
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("dt", DTYPES)
def test_np_save_output_opens_in_pshm(api, name, dt, tmp_path, cli):
    for shape in [(), (0,), (6,), (3, 4), (2, 0, 2), (2, 3, 4)]:
        for order in ("C", "F"):
            ref = sample(dt, shape, order)
            img = npy_bytes(ref)
            # 1. the file itself in /dev/shm
            f = tmp_path / "x.npy"
            f.write_bytes(img)
            shutil.copyfile(f, path(name))
            a = api.open(name)
            check_opened(a, ref)
            a.close()
            os.unlink(path(name))
            # 2. the bytes, copied into a new block
            a = api.create_from_npy(name, img)
            check_opened(a, ref)
            assert open(path(name), "rb").read() == img  # pshm writes what numpy writes
            a.unlink()
            a.close()
            # 3. pshm array load
            out = subprocess.run([cli, "array", "load", str(f), name], capture_output=True, text=True)
            assert out.returncode == 0 and out.stdout == name + "\n", out.stderr
            a = api.open(name, readonly=1)
            check_opened(a, ref)
            a.close()
            os.unlink(path(name))


def test_raw_block_written_with_file_bytes(api, pshm, name):
    ref = sample(">c16", (4, 5), "F")
    img = npy_bytes(ref)
    h = pshm.create(name, len(img) + 100)  # trailing bytes are allowed
    pshm.buf(h)[:len(img)] = img
    a = api.open(name)
    check_opened(a, ref)
    assert a.dtype.byteorder == b">"  # reported, never converted
    assert bytes(a.buf()) == ref.tobytes(order="F")
    a.close()
    pshm.unlink(h)
    pshm.close(h)


def test_other_byte_order_is_reported_not_converted(api, name):
    ref = np.arange(6, dtype=">u4")
    a = api.create_from_npy(name, npy_bytes(ref))
    assert a.descr == ">u4"
    assert a.dtype.byteorder == b">" and a.dtype.kind == b"u" and a.dtype.itemsize == 4
    assert bytes(a.buf()) == b"".join(int(x).to_bytes(4, "big") for x in range(6))
    a.unlink()
    a.close()


def test_unicode_and_bytes(api, name):
    ref = np.array([["héllo", "wörld"], ["ß", ""]], dtype="<U6")
    a = api.create_from_npy(name, npy_bytes(ref))
    assert a.descr == "<U6" and a.dtype.itemsize == 24 and a.dtype.kind == b"U"
    assert np.array_equal(a.view(), ref)
    a.unlink()
    a.close()
    ref = np.array([b"ab", b"cde\x00f"], dtype="S5")
    a = api.create_from_npy(name, npy_bytes(ref))
    assert a.descr == "|S5" and a.dtype.byteorder == b"|"
    assert np.array_equal(a.view(), ref)
    a.unlink()
    a.close()


def test_structured_dtype_is_refused(api, name):
    ref = np.zeros(3, dtype=[("x", "<f8"), ("y", "|u1")])
    with pytest.raises(PshmError) as e:
        api.create_from_npy(name, npy_bytes(ref))
    assert e.value.code == EARRAY_STRUCT
    assert not os.path.exists(path(name))
    with open(path(name), "wb") as f:  # a structured .npy straight into /dev/shm
        np.save(f, ref)
    with pytest.raises(PshmError) as e:
        api.open(name)
    assert e.value.code == EARRAY_STRUCT


def test_formats_2_and_3_open(api, name):
    ref = sample("<i2", (3, 2))
    for version in ((2, 0), (3, 0)):
        b = io.BytesIO()
        npformat.write_array(b, ref, version=version)
        img = b.getvalue()
        assert img[6] == version[0]
        with open(path(name), "wb") as f:
            f.write(img)
        a = api.open(name)
        assert a.version == version
        check_opened(a, ref)
        a.close()
        os.unlink(path(name))
        # loading rewrites it as numpy's default writer would: format 1.0
        a = api.create_from_npy(name, img)
        assert a.version == (1, 0)
        assert open(path(name), "rb").read() == npy_bytes(ref)
        a.unlink()
        a.close()


def test_foreign_errors(api, name):
    with open(path(name), "wb") as f:
        f.write(b"hello, this is not an array" * 4)
    with pytest.raises(PshmError) as e:
        api.open(name)
    assert e.value.code == EARRAY_MAGIC
    img = npy_bytes(np.arange(10.0))
    with open(path(name), "wb") as f:
        f.write(img[:-1])
    with pytest.raises(PshmError) as e:
        api.open(name)
    assert e.value.code == EARRAY_TRUNCATED
    # numpy < 1.14 aligned the data to 16 bytes: pshm refuses to open such a
    # block (its data pointer would not be 64-byte aligned), but loads it
    d = b"{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }"
    d += b" " * (16 - (10 + len(d) + 1) % 16) + b"\n"
    old = b"\x93NUMPY\x01\x00" + len(d).to_bytes(2, "little") + d + np.arange(10.0).tobytes()
    assert (10 + len(d)) % 64 != 0
    assert np.array_equal(np.load(io.BytesIO(old)), np.arange(10.0))
    with open(path(name), "wb") as f:
        f.write(old)
    with pytest.raises(PshmError) as e:
        api.open(name)
    assert e.value.code == EARRAY_ALIGN
    os.unlink(path(name))
    a = api.create_from_npy(name, old)
    assert np.array_equal(a.view(), np.arange(10.0))
    assert open(path(name), "rb").read() == img
    a.unlink()
    a.close()


# ------------------------------------------------------------- odd shapes

def test_zero_d_and_empty_arrays_in_numpy(api, name):
    a = api.create(name, "<f8", ())
    a.view()[()] = 2.5
    out = run_py("import numpy as np, sys\n"
                 "m = np.load('/dev/shm/' + sys.argv[1], mmap_mode='r+')\n"
                 "print(m.shape, float(m))\n"
                 "m[()] = 7.25\n", name).stdout
    assert out == "() 2.5\n"
    assert a.view()[()] == 7.25
    assert a.nitems == 1 and a.nbytes == 8
    a.unlink()
    a.close()
    for shape in [(0,), (3, 0), (0, 5, 2)]:
        for fortran in (False, True):
            a = api.create(name, "<i4", shape, fortran)
            assert a.nbytes == 0 and a.nitems == 0
            assert os.path.getsize(path(name)) == a.data_offset  # the header alone
            out = run_py("import numpy as np, sys\n"
                         "for mode in ('r', 'r+'):\n"
                         "    m = np.load('/dev/shm/' + sys.argv[1], mmap_mode=mode)\n"
                         "    print(m.shape, m.dtype.str, m.size, m.strides)\n", name).stdout
            assert out == ("%s <i4 0 %s\n" % (shape, a.strides)) * 2
            assert os.path.getsize(path(name)) == a.data_offset  # numpy did not grow it
            a.unlink()
            a.close()


def test_fortran_order_in_numpy(api, name):
    a = api.create(name, "<f4", (3, 4, 2), True)
    assert a.strides == (4, 12, 48)
    v = a.view()
    ref = np.arange(24, dtype="<f4").reshape(3, 4, 2)
    v[...] = ref
    assert bytes(a.buf()) == ref.tobytes(order="F")
    out = run_py("import numpy as np, sys\n"
                 "m = np.load('/dev/shm/' + sys.argv[1], mmap_mode='r')\n"
                 "print(m.flags.f_contiguous, m.strides, m[2, 3, 1], m[1, 0, 1])\n", name).stdout
    assert out == "True (4, 12, 48) 23.0 9.0\n"
    a.unlink()
    a.close()


def test_one_gib_array(api, name):
    n = 2 ** 27  # float64: 1 GiB
    a = api.create(name, "<f8", (n,), sparse=1)
    assert a.nbytes == 2 ** 30
    assert os.path.getsize(path(name)) == a.data_offset + 2 ** 30
    v = a.view()
    idx = [0, 1, 4096, 2 ** 20 + 3, 2 ** 26, n - 1]
    for k in idx:
        v[k] = k + 0.5
    out = run_py("import numpy as np, sys\n"
                 "m = np.load('/dev/shm/' + sys.argv[1], mmap_mode='r+')\n"
                 "idx = [int(x) for x in sys.argv[2:]]\n"
                 "print(m.shape[0], m.dtype.str, sum(float(m[k]) for k in idx))\n"
                 "m[m.shape[0] - 2] = -1.0\n", name, *map(str, idx)).stdout
    assert out == "%d <f8 %r\n" % (n, sum(k + 0.5 for k in idx))
    assert v[n - 2] == -1.0
    # only what was touched is backed by memory
    st = os.stat(path(name))
    assert st.st_blocks * 512 < 64 * 2 ** 20
    a.unlink()
    a.close()
