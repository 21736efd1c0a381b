# SPDX-License-Identifier: MIT
"""pshm's .npy header parser against numpy's own reader, live: what numpy
writes and reads back, pshm opens with the same meaning; pshm never opens a
header numpy refuses; where pshm is deliberately stricter, the code says why."""
import io
import os
import random

import numpy as np
import pytest

from array_helpers import (EARRAY_DTYPE, EARRAY_HEADER, EARRAY_NDIM, EARRAY_OVERFLOW, EARRAY_SHAPE, EVERSION,
                           ArrayApi, PshmError)


@pytest.fixture(scope="module")
def api():
    return ArrayApi()


def image(dict_text, major=1, data=b"\x00" * 256, align=64):
    d = dict_text.encode("latin1")
    pre = 10 if major == 1 else 12
    pad = (-(pre + len(d) + 1)) % align
    d += b" " * pad + b"\n"
    n = len(d).to_bytes(2 if major == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([major, 0]) + n + d + data


def numpy_verdict(img):
    """(descr, shape, fortran) as numpy reads the image, or None if it refuses."""
    try:
        a = np.load(io.BytesIO(img))
    except Exception:
        return None
    # an array both C- and F-contiguous (1-d, empty, ...) has no visible order
    fortran = None if a.flags.c_contiguous and a.flags.f_contiguous else bool(a.flags.f_contiguous)
    return a.dtype.str, a.shape, fortran


def pshm_verdict(api, name, img):
    """(descr, shape, fortran), or the error code pshm gives."""
    with open("/dev/shm/" + name, "wb") as f:
        f.write(img)
    try:
        a = api.open(name)
    except PshmError as e:
        return e.code
    finally:
        os.unlink("/dev/shm/" + name)
    r = a.descr, a.shape, a.fortran_order
    a.close()
    return r


def same(np_v, ps_v):
    if np_v is None or isinstance(ps_v, int):
        return False
    descr, shape, fortran = ps_v
    return np_v[0] == descr and np_v[1] == shape and np_v[2] in (None, fortran)


BOTH_ACCEPT = [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
    "{'descr':'<f8','fortran_order':False,'shape':(3,4)}",
    " {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
    "\t{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4)}",
    "\n{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 4L), }",
    "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3, 4)}",
    "{u'descr': u'<f8', u'fortran_order': False, u'shape': (3, 4)}",
    "{'shape': (3, 4), 'fortran_order': True, 'descr': '>i2'}",
    "{'descr': '<f8',\n 'fortran_order': False,\t'shape': (3,\n 4)}\r",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3 , 4 ,) }\x0c",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (1_2,)}",
    "{'descr': 'f8', 'fortran_order': False, 'shape': (2,)}",
    "{'descr': '=i4', 'fortran_order': False, 'shape': (2,)}",
    "{'descr': '<i1', 'fortran_order': False, 'shape': (2,)}",
    "{'descr': 'a5', 'fortran_order': False, 'shape': (2,)}",
    "{'descr': '|U2', 'fortran_order': False, 'shape': (2,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': ()}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': ( )}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (00,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (-0, 3)}",
    "{'descr': '<f8', 'fortran_order': True, 'shape': (0, 3)}",
]

BOTH_REFUSE = [
    "",
    "{}",
    "[]",
    "{'descr': '<f8', 'fortran_order': False}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
    "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}",
    "{'descr': '<f8', 'fortran_order': None, 'shape': (3,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': [3, 4]}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (03,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3.0,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)},",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,),,}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}\x00",
    "{'descr': '<q8', 'fortran_order': False, 'shape': (3,)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (True, 2)}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)",
]

# numpy takes these (literal_eval is generous); pshm refuses them on purpose,
# each with the code that names what it did not accept.
PSHM_STRICTER = [
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} # comment", EARRAY_HEADER),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'descr': '<f4'}", EARRAY_HEADER),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (0x3,)}", EARRAY_HEADER),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (+3,)}", EARRAY_HEADER),
    ("({'descr': '<f8', 'fortran_order': False, 'shape': (3,)})", EARRAY_HEADER),
    ("{'descr': 'float64', 'fortran_order': False, 'shape': (3,)}", EARRAY_DTYPE),
    ("{'descr': '<f', 'fortran_order': False, 'shape': (3,)}", EARRAY_DTYPE),
    ("{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (3,)}", EARRAY_DTYPE),
    ("{'descr': '|S0', 'fortran_order': False, 'shape': (3,)}", EARRAY_DTYPE),
]


@pytest.mark.parametrize("text", BOTH_ACCEPT)
def test_both_accept_with_the_same_meaning(api, name, text):
    img = image(text)
    np_v = numpy_verdict(img)
    assert np_v is not None, "numpy refuses its own header?"
    ps_v = pshm_verdict(api, name, img)
    assert same(np_v, ps_v), (np_v, ps_v)


@pytest.mark.parametrize("text", BOTH_REFUSE)
def test_both_refuse(api, name, text):
    img = image(text, data=b"\x00" * 64)
    assert numpy_verdict(img) is None
    assert isinstance(pshm_verdict(api, name, img), int)


@pytest.mark.parametrize("text,code", PSHM_STRICTER)
def test_pshm_is_stricter_on_purpose(api, name, text, code):
    img = image(text)
    assert numpy_verdict(img) is not None
    assert pshm_verdict(api, name, img) == code


def test_versions(api, name):
    text = "{'descr': '<u2', 'fortran_order': False, 'shape': (3,)}"
    for major in (1, 2, 3):
        img = image(text, major)
        assert same(numpy_verdict(img), pshm_verdict(api, name, img))
    # 'L' suffixes are Python 2, stripped by numpy only before format 3.0
    img = image("{'descr': '<u2', 'fortran_order': False, 'shape': (3L,)}", 3)
    assert numpy_verdict(img) is None
    assert pshm_verdict(api, name, img) == EARRAY_HEADER
    img = bytearray(image(text, 1))
    img[6] = 4
    assert numpy_verdict(bytes(img)) is None
    assert pshm_verdict(api, name, bytes(img)) == EVERSION


def test_shape_codes(api, name):
    assert pshm_verdict(api, name, image("{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}")) == EARRAY_SHAPE
    big = "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}"
    assert pshm_verdict(api, name, image(big)) == EARRAY_OVERFLOW
    many = "{'descr': '<f8', 'fortran_order': False, 'shape': (%s)}" % ("1, " * 65)
    assert pshm_verdict(api, name, image(many)) == EARRAY_NDIM


def tokens_of(a, fortran):
    """The header numpy writes for a, cut into its tokens."""
    import re
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": a.dtype.str, "fortran_order": fortran, "shape": a.shape})
    text = b.getvalue()[10:].decode().rstrip()
    return re.findall(r"'[^']*'|[{}():,]|[A-Za-z_][A-Za-z_0-9]*|\d+", text)


def test_random_whitespace_between_tokens(api, name):
    rnd = random.Random(4)
    cases = [(np.zeros((3, 4), "<f8"), False), (np.zeros(5, ">i2"), False), (np.zeros((2, 3, 2), "<U3"), True),
             (np.zeros((), "?"), False)]
    for a, fortran in cases:
        toks = tokens_of(a, fortran)
        for _ in range(25):
            text = toks[0]
            for t in toks[1:]:
                text += "".join(rnd.choice(" \t\n\r\x0c") for _ in range(rnd.randrange(3))) + t
            img = image(text, data=b"\x00" * a.nbytes)
            np_v = numpy_verdict(img)
            assert np_v is not None
            assert same(np_v, pshm_verdict(api, name, img)), repr(text)


def test_random_damage_never_makes_pshm_more_liberal(api, name):
    """Delete, duplicate or replace a byte of a good header: whenever pshm
    opens the result, numpy reads it too, with the same dtype and shape."""
    rnd = random.Random(7)
    base = "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4L), }"
    alphabet = "{}()[]:,'\" \t\n0123456789-+_LuxTrueFalse<>|=ifcSUVb"
    opened = refused = 0
    for _ in range(600):
        t = list(base)
        k = rnd.randrange(len(t))
        op = rnd.randrange(3)
        if op == 0:
            del t[k]
        elif op == 1:
            t.insert(k, t[k])
        else:
            t[k] = rnd.choice(alphabet)
        img = image("".join(t), data=b"\x00" * 512)
        ps_v = pshm_verdict(api, name, img)
        if isinstance(ps_v, int):
            refused += 1
            continue
        opened += 1
        np_v = numpy_verdict(img)
        assert same(np_v, ps_v), ("".join(t), np_v, ps_v)
    assert opened > 20 and refused > 20  # both sides of the property were exercised
