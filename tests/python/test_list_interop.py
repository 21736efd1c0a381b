# SPDX-License-Identifier: MIT
"""pshm's ShareableList against CPython's (multiprocessing.shared_memory), in
both directions: same bytes, same values, same errors -- except where CPython
is buggy, where pshm must be right and CPython must still read pshm's lists.

CPython 3.11 registers even attached blocks with its resource tracker, which
unlinks them when the process exits: whoever attaches to a block it did not
create unregisters it (gh-82300)."""
import json
import math
import os
import random
import struct
import subprocess

import pytest
from multiprocessing import resource_tracker, shared_memory

from conftest import AUTO, run_py
from list_helpers import (ERR, PList, PshmError, RawStr, RawType, lib, same,
                          same_list)

ShareableList = shared_memory.ShareableList
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
EXAMPLE = [1, 2.5, "hi", b"ab", None, True]
# The table, byte for byte (little-endian, as the test machine).
EXAMPLE_HEX = (
    "0600000000000000"
    "0000000000000000" "0800000000000000" "1000000000000000" "1800000000000000"
    "2000000000000000" "2800000000000000" "3000000000000000"
    "0100000000000000" "0000000000000440" "6869000000000000" "6162000000000000"
    "0000000000000000" "0000000000000001"
    "7100000000000000" "6400000000000000" "3873000000000000" "3873000000000000"
    "7878787878783f78" "787878787878783f"
    "000001020300"
)


def attach(name):
    """CPython's view of a block someone else owns (unregistered even when
    ShareableList fails after SharedMemory attached)."""
    try:
        return ShareableList(name=name)
    finally:
        resource_tracker.unregister("/" + name, "shared_memory")


def cpy_bytes(sl):
    return bytes(sl.shm.buf)


@pytest.fixture
def made():
    """CPython lists a test creates; closed and unlinked at the end."""
    lists = []
    yield lists
    for sl in lists:
        sl.shm.close()
        try:
            sl.shm.unlink()
        except FileNotFoundError:
            pass


@pytest.fixture
def plist(name):
    """Create pshm lists under the test's name (unlinked by the name fixture)."""
    handles = []

    def make(items, **kw):
        pl = PList.create(name, items, **kw)
        handles.append(pl)
        return pl

    yield make
    for pl in handles:
        pl.close()


def cpy_list(made, items):
    sl = ShareableList(items)
    made.append(sl)
    return sl


def error_kind(fn):
    """Run fn; return None or the Python class that matters (IndexError, ...)."""
    try:
        fn()
    except IndexError:
        return IndexError
    except UnicodeDecodeError:
        return ValueError
    except ValueError:
        return ValueError
    return None


# ---------------------------------------------------------------- layout

def test_worked_example_byte_for_byte(plist, made):
    pl = plist(EXAMPLE)
    sl = cpy_list(made, EXAMPLE)
    assert len(pl.raw()) == 166
    assert pl.raw() == cpy_bytes(sl)
    if struct.pack("=q", 1) == struct.pack("<q", 1):
        assert pl.raw().hex() == EXAMPLE_HEX
    assert pl.format == sl.format == "qd8s8sxxxxxx?xxxxxxxx?"


ASCII_LISTS = [
    [],
    [I64_MIN, I64_MAX, -1, 0, 1, -123456789],
    [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 5e-324, 1.7976931348623157e308],
    ["", b"", "1234567", "12345678", "123456789012345", "1234567890123456", b"\x00\x01\xff"],
    [True, False, None, True, None],
    ["a\x00b", b"a\x00b", "x" * 100, b"y" * 1000],
    [1, 2.5, "hi", b"ab", None, True] * 50,
]


@pytest.mark.parametrize("items", ASCII_LISTS)
def test_same_bytes_as_cpython(plist, made, items):
    """For everything CPython stores correctly, pshm writes the same bytes."""
    pl = plist(items)
    sl = cpy_list(made, items)
    assert pl.raw() == cpy_bytes(sl)
    assert pl.format == sl.format
    assert len(pl) == len(sl)


EVERY_TYPE = [
    I64_MIN, I64_MAX, -42, 0, float("nan"), float("inf"), float("-inf"), -0.0, 3.14159,
    True, False, None, "", b"", "ascii", b"\x00bytes\xff", "a\x00b",
    "é", "中文", "😀", "aé中😀", "é" * 5, "😀" * 3, "12345678", b"12345678",
]

READ_ALL = """
import json, struct, sys
from multiprocessing import shared_memory, resource_tracker
sl = shared_memory.ShareableList(name=sys.argv[1])
resource_tracker.unregister(sl.shm._name, "shared_memory")
def enc(v):
    if isinstance(v, bytes): return ["bytes", v.hex()]
    if isinstance(v, float): return ["float", struct.pack("d", v).hex()]
    return [type(v).__name__, v]
print(json.dumps({"items": [enc(sl[i]) for i in range(len(sl))], "format": sl.format}))
sl.shm.close()
"""


def decode_json(items):
    out = []
    for t, v in items:
        if t == "bytes":
            out.append(bytes.fromhex(v))
        elif t == "float":
            out.append(struct.unpack("d", bytes.fromhex(v))[0])
        else:
            out.append(v)
    return out


def test_cpython_reads_every_type_from_pshm(plist):
    pl = plist(EVERY_TYPE)
    got = json.loads(run_py(READ_ALL, pl.name).stdout)
    assert same_list(decode_json(got["items"]), EVERY_TYPE)
    assert got["format"] == pl.format
    # -0.0 keeps its sign, NaN stays NaN
    assert struct.pack("d", decode_json(got["items"])[7]) == struct.pack("d", -0.0)


def test_pshm_reads_every_type_from_cpython(made):
    # what CPython stores whole: str whose UTF-8 length gets the same slot as its length
    ok = [v for v in EVERY_TYPE if not isinstance(v, str) or len(v.encode()) // 8 == len(v) // 8]
    assert "é" in ok and "é" * 5 not in ok
    sl = cpy_list(made, ok)
    pl = PList.open(sl.shm.name)
    try:
        assert same_list(pl.tolist(), [sl[i] for i in range(len(sl))])
        assert same_list(pl.tolist(), ok)
        assert pl.format == sl.format
        assert [pl.type(i) for i in range(len(ok))] == [type(v).__name__ for v in ok]
    finally:
        pl.close()


# ------------------------------------------------------------- UTF-8

@pytest.mark.parametrize("ch", ["a", "é", "中", "😀"])
def test_utf8_1_to_4_bytes_all_lengths(name, ch):
    """str slots are sized by UTF-8 bytes; CPython reads every one right."""
    items = [ch * n for n in range(0, 21)] + ["a" + ch * n for n in range(0, 9)]
    pl = PList.create(name, items)
    try:
        for k, s in enumerate(items):
            assert pl.capacity(k) == 8 * (len(s.encode()) // 8 + 1)
        sl = attach(name)
        assert [sl[i] for i in range(len(sl))] == items
        assert pl.tolist() == items
        sl.shm.close()
    finally:
        pl.close()


def test_gh88336_pshm_is_right_where_cpython_truncates(name, made):
    s = "é" * 5  # 5 characters, 10 bytes
    sl = cpy_list(made, [s])
    assert sl.format == "8s" and sl[0] == "éééé"  # CPython's bug, on this machine's 3.11
    pl = PList.create(name, [s])
    try:
        assert pl.format == "16s"
        other = attach(name)
        assert other[0] == s
        other.shm.close()
    finally:
        pl.close()


def test_str_cut_inside_a_character_is_an_error_on_both_sides(made):
    sl = cpy_list(made, ["aé" * 3])  # 6 characters, 9 bytes in 8: cut after 0xc3
    with pytest.raises(UnicodeDecodeError):
        sl[0]
    pl = PList.open(sl.shm.name)
    try:
        with pytest.raises(PshmError) as e:
            pl[0]
        assert e.value.name == "PSHM_ELIST_UTF8"
        assert pl.type(0) == "str"
    finally:
        pl.close()


def test_invalid_utf8_str_is_refused_by_pshm(name):
    for bad in [b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xff", b"a\xe4\xb8"]:
        with pytest.raises(PshmError) as e:
            PList.create(name, [1, RawStr(bad)])
        assert e.value.name == "PSHM_ELIST_UTF8"
        assert not os.path.exists("/dev/shm/" + name)
        with pytest.raises(UnicodeDecodeError):
            bad.decode("utf-8")  # Python's decoder agrees


def test_trailing_nuls_are_stripped_on_both_sides(plist, made):
    """gh-106939 is inherent in the format: both sides see the same value."""
    items = ["ab\x00\x00", b"x\x00", "\x00", "a\x00b"]
    pl = plist(items)
    sl = cpy_list(made, items)
    assert pl.raw() == cpy_bytes(sl)
    want = ["ab", b"x", "", "a\x00b"]
    assert pl.tolist() == want == [sl[i] for i in range(4)]


# ------------------------------------------------------------ get/set

def test_sets_cross_in_both_directions(plist):
    pl = plist([0, 0.0, "12345678", b"", None, False])
    sl = attach(pl.name)
    try:
        pl[0], pl[1], pl[2], pl[3], pl[4], pl[5] = I64_MIN, float("-inf"), "中文ab", b"1234567", True, None
        assert same_list([sl[i] for i in range(6)], [I64_MIN, float("-inf"), "中文ab", b"1234567", True, None])
        sl[0], sl[1], sl[2], sl[3], sl[4], sl[5] = "str!", b"by", 2.5, None, I64_MAX, -7
        assert same_list(pl.tolist(), ["str!", b"by", 2.5, None, I64_MAX, -7])
        assert pl.format == sl.format == "8s8sdxxxxxx?xqq"
    finally:
        sl.shm.close()


SET_VALUES = [0, -1, 7, I64_MIN, I64_MAX, 0.5, -0.0, float("inf"), float("nan"), True, False, None,
              "", "a", "abcdefg", "abcdefgh", "abcdefghi", "é", "éé" * 4, "😀😀", b"", b"\x00\xff",
              b"12345678", b"123456789", "x" * 16, "x" * 17, "x" * 24, "x" * 25]


def test_random_sets_give_cpythons_bytes(plist, made):
    """The same sequence of sets on a CPython list and a pshm list leaves the
    same bytes after every step, including type changes, full slots and
    the errors both raise (index out of range, value too long)."""
    rnd = random.Random(20240611)
    items = [1, "abc", b"0123456789", None, True, 2.5, "x" * 20, 0]
    pl = plist(items)
    sl = cpy_list(made, items)
    n = len(items)
    for step in range(3000):
        i = rnd.randrange(-n, n + 2)
        v = rnd.choice(SET_VALUES)

        def cset():
            sl[i] = v

        def pset():
            pl[i] = v
        ck, pk = error_kind(cset), error_kind(pset)
        assert ck == pk, (step, i, v, ck, pk)
        assert pl.raw() == cpy_bytes(sl), (step, i, v)
    assert same_list(pl.tolist(), [sl[i] for i in range(n)])
    assert pl.format == sl.format


def test_exactly_full_slots(plist, made):
    items = ["1234567", b"123456789012345", 0]
    pl = plist(items)
    sl = cpy_list(made, items)
    for i, full, over in [(0, "abcdefgh", "abcdefghi"), (1, b"f" * 16, b"f" * 17), (2, "é" * 4, "é" * 4 + "a")]:
        sl[i] = full
        pl[i] = full
        assert pl[i] == sl[i] == full
        with pytest.raises(ValueError):
            sl[i] = over
        with pytest.raises(ValueError):
            pl[i] = over
        assert pl.raw() == cpy_bytes(sl)
    assert pl.capacity(0) == 8 and pl.capacity(1) == 16 and pl.capacity(2) == 8


def test_special_floats_keep_their_bits_both_ways(plist):
    vals = [float("nan"), float("inf"), float("-inf"), -0.0, 5e-324, -1.5e300]
    pl = plist([0.0] * len(vals))
    sl = attach(pl.name)
    try:
        for k, v in enumerate(vals):
            pl[k] = v
            assert struct.pack("d", sl[k]) == struct.pack("d", v)
            sl[k] = -v if not math.isnan(v) else v
            assert struct.pack("d", pl[k]) == struct.pack("d", sl[k])
    finally:
        sl.shm.close()


# ------------------------------------------------------------ big lists

BIG = 100_000


def big_items():
    out = []
    for i in range(BIG):
        k = i % 6
        out.append([i * 7 - 3, i + 0.5, "s%d" % i, b"b%d" % i, None, i % 4 == 1][k])
    return out


BIG_CHECK = """
import hashlib, sys
from multiprocessing import shared_memory, resource_tracker
sl = shared_memory.ShareableList(name=sys.argv[1])
resource_tracker.unregister(sl.shm._name, "shared_memory")
print(len(sl), hashlib.sha256(repr([sl[i] for i in range(len(sl))]).encode()).hexdigest())
sl[-2] = "cpython"
sl.shm.close()
"""


def test_hundred_thousand_items(plist, made):
    import hashlib
    items = big_items()
    pl = plist(items)
    # byte for byte with CPython's own (all ASCII)
    sl = cpy_list(made, items)
    assert pl.raw() == cpy_bytes(sl)
    # CPython in another process reads all of pshm's, and writes one back
    out = run_py(BIG_CHECK, pl.name).stdout.split()
    assert out == [str(BIG), hashlib.sha256(repr(items).encode()).hexdigest()]
    assert pl[BIG - 2] == "cpython"
    # pshm reads all of CPython's
    other = PList.open(sl.shm.name)
    try:
        assert len(other) == BIG
        assert same_list(other.tolist(), items)
        assert other.count(None) == BIG // 6 + (BIG % 6 > 4)
    finally:
        other.close()


# ------------------------------------------------------------- errors

def test_index_errors_where_cpython_reads_and_writes_wrong_bytes(plist, made):
    pl = plist(EXAMPLE)
    sl = cpy_list(made, EXAMPLE)
    n = len(EXAMPLE)
    for i in (n, n + 1, 1 << 40):
        with pytest.raises(IndexError):
            sl[i]
        with pytest.raises(IndexError):
            pl[i]
    # sl[-n-1]: CPython adds n twice, reads the formats area as an item and
    # raises KeyError for a garbage code instead of IndexError.
    with pytest.raises(Exception) as e:
        sl[-n - 1]
    assert not isinstance(e.value, IndexError)
    before_p, before_c = pl.raw(), cpy_bytes(sl)
    with pytest.raises(IndexError):
        pl[-n - 1]
    with pytest.raises(IndexError):
        pl[-n - 1] = 1
    assert pl.raw() == before_p
    # ... and CPython's sl[-n-1] = 1 succeeds, writing over the formats.
    sl[-n - 1] = 1
    assert cpy_bytes(sl) != before_c


def test_value_too_long_changes_nothing_on_both_sides(plist, made):
    pl = plist(EXAMPLE)
    sl = cpy_list(made, EXAMPLE)
    for i in range(len(EXAMPLE)):
        with pytest.raises(ValueError):
            sl[i] = "x" * 9
        with pytest.raises(PshmError) as e:
            pl[i] = "x" * 9
        assert e.value.name == "PSHM_ELIST_NOSPACE"
        assert pl.raw() == cpy_bytes(sl)


def test_int_outside_int64_corrupts_cpython_not_pshm(plist, made, cli):
    """CPython writes the 'q' format before packing 2**64 fails, and
    struct.pack_into zeroes the slot before it fails: 'hi' becomes the int 0.
    pshm refuses the value before writing anything."""
    sl = cpy_list(made, EXAMPLE)
    with pytest.raises(struct.error):
        sl[2] = 1 << 64
    assert sl.format.startswith("qdq")  # corrupted
    assert sl[2] == 0
    pl = plist(EXAMPLE)
    before = pl.raw()
    with pytest.raises(OverflowError):
        pl[2] = 1 << 64  # the C API takes an int64: Python-side check
    r = subprocess.run([cli, "list", pl.name, "--set", "2", str(1 << 64)], capture_output=True, text=True)
    assert r.returncode == 1 and "does not fit in int64" in r.stderr
    assert pl.raw() == before and pl[2] == "hi"


def test_unsupported_type_changes_nothing(plist, made):
    pl = plist(EXAMPLE)
    sl = cpy_list(made, EXAMPLE)
    before = pl.raw()
    with pytest.raises(KeyError):
        sl[0] = [1]
    with pytest.raises(PshmError) as e:
        pl[0] = RawType(42)
    assert e.value.code == -22  # -EINVAL
    assert pl.raw() == before == cpy_bytes(sl)


def test_failed_create_leaks_in_cpython_not_in_pshm(name, monkeypatch):
    # CPython draws a random psm_ name; make it draw ours, so the test looks
    # at its own name only (never at other people's blocks in /dev/shm).
    cname = name + "_cpython"
    monkeypatch.setattr(shared_memory, "_make_filename", lambda: "/" + cname)
    try:
        with pytest.raises(struct.error):
            ShareableList([1 << 64])
        # CPython created the block, then failed to fill it: the half-made list
        with open("/dev/shm/" + cname, "rb") as f:
            data = f.read()
        assert len(data) == 41 and data[:24] == struct.pack("qqq", 1, 0, 8)
    finally:
        if os.path.exists("/dev/shm/" + cname):
            resource_tracker.unregister("/" + cname, "shared_memory")
            os.unlink("/dev/shm/" + cname)
    # pshm checks every value first: nothing is created.
    with pytest.raises(OverflowError):
        PList.create(name, [1 << 64])
    for bad, code in [([RawStr(b"\xff")], -ERR["ELIST_UTF8"]), ([b"z" * 9999992], -ERR["ELIST_TOOBIG"]),
                      ([1, RawType(9)], -22)]:  # -EINVAL
        with pytest.raises(PshmError) as e:
            PList.create(name, bad)
        assert e.value.code == code
        assert not os.path.exists("/dev/shm/" + name)


def test_longest_item(name):
    # CPython refuses a str whose format would need 9 characters (an assert).
    with pytest.raises(AssertionError):
        ShareableList(["x" * 9999992])
    pl = PList.create(name, [b"x" * 9999991])
    try:
        assert pl.format == "9999992s"
        sl = attach(name)
        assert sl[0] == b"x" * 9999991
        sl.shm.close()
    finally:
        pl.close()


def test_name_taken(plist, made):
    sl = cpy_list(made, [1])
    with pytest.raises(PshmError) as e:
        PList.create(sl.shm.name, [2])
    assert e.value.code == -17  # EEXIST
    assert sl[0] == 1


def test_index_and_count_match_cpython(plist, made):
    items = [1, 1.0, True, 0, -0.0, False, float("nan"), "ab", b"ab", None, "", b"", I64_MAX, 2.0 ** 63, 0.5]
    probes = [1, 1.0, True, 0, 0.0, -0.0, False, float("nan"), "ab", b"ab", None, "", b"", I64_MAX,
              2 ** 63 - 1, 9223372036854775807.0, 0.5, 2, "zz", b"zz"]
    pl = plist(items)
    sl = cpy_list(made, items)
    for p in probes:
        assert pl.count(p) == sl.count(p), p
        try:
            want = sl.index(p)
        except ValueError:
            with pytest.raises(PshmError) as e:
                pl.index(p)
            assert e.value.name == "PSHM_ELIST_NOTFOUND"
        else:
            assert pl.index(p) == want, p


def test_read_only_handle(plist):
    pl = plist(EXAMPLE)
    ro = PList.open(pl.name, readonly=True)
    try:
        assert ro.tolist()[:3] == [1, 2.5, "hi"]
        with pytest.raises(PshmError) as e:
            ro[0] = 5
        assert e.value.name == "PSHM_ELIST_READONLY"
    finally:
        ro.close()


# ------------------------------------------------- invalid blocks (open)

def _mut(data, at, new):
    b = bytearray(data)
    b[at:at + len(new)] = new
    return bytes(b)


def corrupt_cases():
    sl = ShareableList([7, "abc", None, True])
    good = bytes(sl.shm.buf)
    sl.shm.close()
    sl.shm.unlink()
    fo, co = 48 + 32, 48 + 32 + 32
    q = lambda v: struct.pack("q", v)  # noqa: E731
    # name: (bytes, pshm's code, CPython's behaviour: "open"/"read" exception or "garbage")
    return {
        "random": (bytes(random.Random(5).randrange(256) for _ in range(116)), "COUNT", "open"),
        "truncated": (good[:100], "SIZE", "read"),
        "N_too_large": (_mut(good, 0, q(1000)), "COUNT", "open"),
        "N_negative": (_mut(good, 0, q(-1)), "COUNT", "open"),
        "offsets_decreasing": (_mut(good, 24, q(0)), "OFFSETS", "garbage"),
        "offsets_out_of_range": (_mut(good, 40, q(1 << 20)), "OFFSETS", "read"),
        "offsets_misaligned": (_mut(good, 24, q(12)), "OFFSETS", "garbage"),
        "unknown_format": (_mut(good, fo, b"z"), "FORMAT", "read"),
        "format_longer_than_slot": (_mut(good, fo + 8, b"9s"), "FORMAT", "garbage"),
        "unknown_code": (_mut(good, co, bytes([4])), "CODE", "read"),
        "negative_code": (_mut(good, co, bytes([255])), "CODE", "read"),
        "format_code_mismatch": (_mut(good, co, bytes([1])), "MISMATCH", "read"),
        "zeroed_block": (bytes(4096), "SIZE", "garbage"),
        "trailing_bytes": (good + bytes(8), "SIZE", "garbage"),
    }


CASES = corrupt_cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_blocks_have_a_clear_code(pshm, name, case):
    data, code, cpy = CASES[case]
    h = pshm.create(name, len(data))
    pshm.buf(h)[:] = data
    try:
        with pytest.raises(PshmError) as e:
            PList.open(name)
        assert e.value.name == "PSHM_ELIST_" + code
        assert e.value.code == -ERR["ELIST_" + code]
        # CPython on the same bytes: fails somewhere, or reads garbage.
        try:
            sl = attach(name)
        except Exception:
            assert cpy == "open"
            return
        try:
            try:
                [sl[i] for i in range(len(sl))]
            except Exception:
                assert cpy == "read"
            else:
                assert cpy == "garbage"
        finally:
            sl.shm.close()
    finally:
        pshm.close(h)


# ------------------------------------------------------------ lifetimes

def test_auto_list_shared_with_cpython(name):
    pl = PList.create(name, EXAMPLE, lifetime=AUTO)
    got = json.loads(run_py(READ_ALL, name).stdout)
    assert same_list(decode_json(got["items"]), EXAMPLE)
    assert os.path.exists("/dev/shm/" + name)
    pl.close()
    assert not os.path.exists("/dev/shm/" + name)


def test_random_name(made):
    pl = PList.create(None, [1, "x"])
    try:
        assert pl.name.startswith("psm_")
        sl = attach(pl.name)
        assert sl[1] == "x"
        sl.shm.close()
        pl.unlink()
    finally:
        pl.close()



# ---------------------------------------------------------- concurrency

def test_cpython_reader_never_sees_a_torn_pshm_write(name):
    """A pshm writer process (test_list's tear_writer helper) flips an int
    and a float between two 8-byte patterns; CPython reads them meanwhile."""
    from conftest import BUILD
    pats = {0x0101010101010101, 0x0202020202020202}
    pl = PList.create(name, [0, 0.0, False, False])
    sl = attach(name)
    w = subprocess.Popen([os.path.join(BUILD, "tests", "test_list"), "--helper", "tear_writer", name, "0"])
    try:
        while sl[0] == 0:  # the writer is starting
            assert w.poll() is None
        for k in range(200_000):
            a = sl[0] & (2 ** 64 - 1)
            b = struct.unpack("Q", struct.pack("d", sl[1]))[0]
            assert a in pats, hex(a)
            assert b in pats or b == 0, hex(b)
        sl[2] = sl[3] = True  # both "readers done" flags: the writer stops
        assert w.wait(timeout=60) == 0
    finally:
        if w.poll() is None:
            w.kill()
        sl.shm.close()
        pl.close()
