# SPDX-License-Identifier: MIT
"""Differential tests: the same scenarios against multiprocessing.shared_memory
and pshm, comparing results and exception types; random ShareableList
operation sequences (hypothesis); and the deliberate differences, each shown
on both sides."""
import pickle
import struct
from multiprocessing import shared_memory as std

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pshm

IMPLS = {"stdlib": std, "pshm": pshm}


def outcome(fn):
    """(result, None) or (None, exception type)."""
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - the type is what we compare
        return None, type(e)


def both(scenario):
    res = {}
    for k, mod in IMPLS.items():
        res[k] = scenario(mod)
    return res["stdlib"], res["pshm"]


# ---------------------------------------------------------------- SharedMemory

BAD_SHM_ARGS = [
    dict(create=True, size=-1), dict(create=True, size=0), dict(create=True),
    dict(create=False), dict(name=None), dict(name="pshm_t_surely_absent_x1"),
    dict(name="pshm_t_surely_absent_x1", size=10), dict(size=-2, name="x"),
    dict(name="x" * 300), dict(name=12, create=True, size=10), dict(name="a/b"),
]


@pytest.mark.parametrize("kw", BAD_SHM_ARGS, ids=repr)
def test_bad_shared_memory_arguments_raise_the_same_types(kw):
    def scenario(mod):
        r, exc = outcome(lambda: mod.SharedMemory(**kw))
        if r is not None:
            r.close()
            r.unlink()
            return "created"
        return exc
    s, p = both(scenario)
    assert s is not None and s == p


def test_shared_memory_attributes_and_repr_match(unique):
    for mod in IMPLS.values():
        name = unique()
        a = mod.SharedMemory(name, create=True, size=100)
        try:
            assert a.name == name and a.size >= 100 and len(a.buf) == a.size
            assert a._name == "/" + name
            assert repr(a) == f"SharedMemory({name!r}, size={a.size})"
            b = mod.SharedMemory(name, size=10**6)  # size ignored when attaching
            assert b.size == a.size
            a.buf[:3] = b"xyz"
            assert bytes(b.buf[:3]) == b"xyz"
            c = pickle.loads(pickle.dumps(a))
            assert type(c) is type(a) and c.name == a.name and bytes(c.buf[:3]) == b"xyz"
            c.close()
            b.close()
            with pytest.raises(FileExistsError):
                mod.SharedMemory(name, create=True, size=10)
        finally:
            a.close()
            a.unlink()
        assert a.buf is None
        with pytest.raises(FileNotFoundError):
            a.unlink()


def test_random_names_look_alike():
    for mod in IMPLS.values():
        a = mod.SharedMemory(create=True, size=1)
        try:
            assert a.name.startswith("psm_") and a._name.startswith("/psm_")
        finally:
            a.close()
            a.unlink()


# --------------------------------------------------------------- ShareableList

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
raw = st.binary(max_size=20).map(lambda b: b.rstrip(b"\0"))  # gh-106939 is common to both
values = st.one_of(int64, st.floats(allow_nan=True), st.booleans(), st.none(), ascii_text, raw)
ops = st.lists(st.one_of(
    st.tuples(st.just("get"), st.integers(-12, 14)),
    st.tuples(st.just("set"), st.integers(-12, 14), values),
    st.tuples(st.just("count"), values),
    st.tuples(st.just("index"), values),
    st.tuples(st.just("format")),
), max_size=25)


def apply(sl, op):
    n = len(sl)
    kind = op[0]
    if kind in ("get", "set") and op[1] < -n:
        return "skip"  # stdlib bug: out-of-range negative indices hit other items
    if kind == "get":
        return outcome(lambda: sl[op[1]])
    if kind == "set":
        def do():
            sl[op[1]] = op[2]
        return outcome(do)
    if kind == "count":
        return outcome(lambda: sl.count(op[1]))
    if kind == "index":
        return outcome(lambda: sl.index(op[1]))
    return outcome(lambda: sl.format)


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # both NaN
    return type(a) is type(b) and a == b


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, max_size=10), ops)
def test_random_shareable_list_sequences(items, sequence):
    s = std.ShareableList(items)
    p = pshm.ShareableList(items)
    try:
        assert s.format == p.format
        assert bytes(s.shm.buf) == bytes(p.shm.buf[:len(s.shm.buf)])  # byte for byte
        for op in sequence:
            rs, rp = apply(s, op), apply(p, op)
            if rs == "skip":
                continue
            assert rs[1] == rp[1], (op, rs, rp)
            assert same(rs[0], rp[0]), (op, rs, rp)
        assert len(s) == len(p)
        for i in range(len(s)):
            assert same(s[i], p[i]), i
        assert bytes(s.shm.buf) == bytes(p.shm.buf[:len(s.shm.buf)])
        # either side reads the other's list
        q = pshm.ShareableList(name=s.shm.name)
        assert [same(a, b) for a, b in zip(q, s)] == [True] * len(s)
        q.shm.close()
    finally:
        s.shm.close()
        s.shm.unlink()
        p.shm.close()
        p.shm.unlink()


@pytest.mark.parametrize("items", [[], [1], ["a", b"b", None], [2**63], [[1]], [1.5, True]], ids=repr)
def test_creating_lists_raises_the_same_types(items):
    def scenario(mod):
        r, exc = outcome(lambda: mod.ShareableList(items))
        if r is not None:
            f = r.format
            r.shm.close()
            r.shm.unlink()
            return f
        return exc
    s, p = both(scenario)
    assert s == p


def test_list_pickles_and_reprs_alike():
    for mod in IMPLS.values():
        sl = mod.ShareableList(range(5))
        try:
            assert repr(sl) == f"ShareableList([0, 1, 2, 3, 4], name={sl.shm.name!r})"
            other = pickle.loads(pickle.dumps(sl))
            other[1] = "x"
            assert sl[1] == "x"
            other.shm.close()
            with pytest.raises(IndexError):
                sl[5]
            with pytest.raises(IndexError):
                sl[5] = 1
        finally:
            sl.shm.close()
            sl.shm.unlink()


# ------------------------------------------- the deliberate differences, shown

def test_gh88336_non_ascii_str_keeps_all_its_bytes():
    s, p = std.ShareableList(["é" * 5]), pshm.ShareableList(["é" * 5])
    try:
        assert p[0] == "é" * 5
        assert s[0] != "é" * 5  # the stdlib keeps 8 of the 10 bytes
        assert std.ShareableList(name=p.shm.name)[0] == "é" * 5  # and reads pshm's list right
    finally:
        for x in (s, p):
            x.shm.close()
            x.shm.unlink()


def test_a_failed_set_changes_nothing():
    s, p = std.ShareableList(["abc"]), pshm.ShareableList(["abc"])
    try:
        for sl in (s, p):
            with pytest.raises(struct.error):
                sl[0] = 2**64
        assert p[0] == "abc" and p.format == "8s"
        assert s.format == "q"  # the stdlib wrote the new format before failing
    finally:
        for x in (s, p):
            x.shm.close()
            x.shm.unlink()


def test_a_failed_create_leaves_nothing(unique):
    import os
    for bad, exc in (([2**64], struct.error), (["x", [1]], KeyError)):
        name = unique()
        with pytest.raises(exc):
            pshm.ShareableList(bad, name=name)
        assert not os.path.exists("/dev/shm/" + name)
        with pytest.raises(exc):
            std.ShareableList(bad, name=name)
        if os.path.exists("/dev/shm/" + name):  # the stdlib leaks it (struct.error case)
            assert exc is struct.error
            s = std.SharedMemory(name)
            s.close()
            s.unlink()


def test_a_name_with_a_nul_is_a_valueerror():
    # the stdlib hands shm_open the name cut at the NUL ("a"): FileNotFoundError here
    with pytest.raises(ValueError):
        pshm.SharedMemory("pshm_no\0such")
    with pytest.raises(FileNotFoundError):
        std.SharedMemory("pshm_no\0such")


def test_out_of_range_negative_index_is_an_error():
    p = pshm.ShareableList([1, 2])
    try:
        with pytest.raises(IndexError):
            p[-3]
        with pytest.raises(IndexError):
            p[-3] = 5
        assert list(p) == [1, 2]
    finally:
        p.shm.close()
        p.shm.unlink()
