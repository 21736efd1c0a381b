# SPDX-License-Identifier: MIT
"""Queue.get_many / get_many_nowait: batch receives over pshm_queue_peekmany."""
import multiprocessing as mp
import os
import queue
import signal
import time

import numpy as np
import pytest

import pshm
import pshm.queues
from queue_helpers import broadcast_to_subscribers, ctrl_c_queue_child
from test_py_sync import ctrl_c_latency, runs_while_waiting

_T_PICKLE = 2


def _produce(q, n, start):
    for i in range(start, start + n):
        q.put(i)


def _consume_many(q, out_q):
    got = []
    try:
        while True:
            got += q.get_many(7, timeout=20)
    except pshm.ShutDown:
        out_q.put(got)


@pytest.mark.parametrize('method', ['fork', 'spawn'])
@pytest.mark.parametrize('mode', ['spsc', 'mpmc'])
def test_order_and_exactly_once_from_a_child(method, mode):
    ctx = mp.get_context(method)
    q = pshm.Queue(mode=mode, maxsize=16)
    p = ctx.Process(target=_produce, args=(q, 500, 0))
    p.start()
    got = []
    while len(got) < 500:
        batch = q.get_many(64, timeout=20)
        assert 1 <= len(batch) <= 64
        got += batch
    p.join(20)
    assert p.exitcode == 0
    assert got == list(range(500))        # in order, none lost, none twice
    with pytest.raises(queue.Empty):
        q.get_many_nowait(4)


def test_mpmc_consumers_get_each_message_once():
    ctx = mp.get_context('fork')
    q, res = pshm.Queue(mode='mpmc', maxsize=32), pshm.Queue()
    prods = [ctx.Process(target=_produce, args=(q, 150, k * 150)) for k in range(2)]
    cons = [ctx.Process(target=_consume_many, args=(q, res)) for _ in range(2)]
    for p in prods + cons:
        p.start()
    for p in prods:
        p.join(20)
    q.shutdown()                          # the consumers drain it, then stop
    a, b = res.get(timeout=30), res.get(timeout=30)
    for p in prods + cons:
        p.join(20)
        assert p.exitcode == 0
    assert sorted(a + b) == list(range(300))
    for got in (a, b):                    # each producer's messages stay in order
        for k in range(2):
            mine = [x for x in got if k * 150 <= x < (k + 1) * 150]
            assert mine == sorted(mine)


@pytest.mark.parametrize('mode', ['spsc', 'mpmc', 'broadcast'])
def test_partial_batches_bounds_and_decoding(mode):
    q = pshm.Queue(mode=mode)
    q.subscribe()
    objs = [b'raw', bytearray(b'ba'), np.arange(6).reshape(2, 3), {'k': [1, 2]}, 5]
    for o in objs:
        q.put(o)
    first = q.get_many(2)
    assert first == [b'raw', bytearray(b'ba')] and type(first[1]) is bytearray
    rest = q.get_many(100)                 # partial: only what is there, no wait
    assert len(rest) == 3 and rest[1:] == [{'k': [1, 2]}, 5]
    np.testing.assert_array_equal(rest[0], np.arange(6).reshape(2, 3))
    assert rest[0].flags.writeable
    for i in range(10):
        q.put(i)
    assert q.get_many(1) == [0]
    assert q.get_many_nowait(3) == [1, 2, 3]
    assert q.get_many(10 ** 12) == list(range(4, 10))   # a huge bound is fine
    with pytest.raises(queue.Empty):
        q.get_many(5, block=False)


@pytest.mark.parametrize('mode', ['spsc', 'mpmc'])
def test_a_batch_stops_at_about_a_mebibyte(mode):
    # past the first message, a batch takes more only while it holds less
    # than 1 MiB: 600 KiB messages come two a call, small ones all at once
    q = pshm.Queue(mode=mode, max_msg=700 << 10, ring_bytes=8 << 20)
    big = [bytes([i]) * (600 << 10) for i in range(5)]
    for b in big:
        q.put(b)
    sizes, got = [], []
    while len(got) < 5:
        batch = q.get_many(10, timeout=5)
        sizes.append(len(batch))
        got += batch
    assert sizes == [2, 2, 1] and got == big
    q = pshm.Queue(mode=mode, maxsize=100)
    for i in range(100):
        q.put(i, timeout=5)
    assert q.get_many(100, timeout=5) == list(range(100))


def test_bad_arguments():
    q = pshm.Queue()
    q.put(1)
    for bad in (0, -1):
        with pytest.raises(ValueError):
            q.get_many(bad)
    for bad in (1.5, '3', None, True):
        with pytest.raises(TypeError):
            q.get_many(bad)
    with pytest.raises(TypeError):
        q.get_many()
    assert q.get_many(np.int64(3)) == [1]   # any __index__ will do
    with pytest.raises(queue.Empty):
        q.get(timeout=-1)
    with pytest.raises(queue.Empty):
        q.get_many(2, timeout=-1)           # as get() does
    with pytest.raises(TypeError):
        q.get(timeout='x')
    with pytest.raises(TypeError):
        q.get_many(2, timeout='x')


@pytest.mark.parametrize('mode', ['spsc', 'mpmc', 'broadcast'])
def test_timeout_raises_empty(mode):
    q = pshm.Queue(mode=mode)
    q.subscribe()
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get_many(8, timeout=0.2)
    assert time.monotonic() - t0 >= 0.15


@pytest.mark.parametrize('mode', ['spsc', 'mpmc', 'broadcast'])
def test_shutdown_raises_what_get_raises(mode):
    q = pshm.Queue(mode=mode)
    q.subscribe()
    q.put(b'a')
    q.put(b'b')
    q.shutdown()
    assert q.get_many(10) == [b'a', b'b']
    with pytest.raises(pshm.ShutDown):
        q.get_many(10, timeout=5)
    with pytest.raises(pshm.ShutDown):
        q.get_many_nowait(1)


def test_broadcast_falls_back_for_every_subscriber():
    def receive(q):
        got = []
        while len(got) < 50:
            got += q.get_many(16, timeout=20)
        return got

    q = pshm.Queue(mode='broadcast')
    got = broadcast_to_subscribers(q, lambda: _produce(q, 50, 0), receive)
    assert got == [list(range(50))] * 2


@pytest.mark.parametrize('mode', ['spsc', 'mpmc'])
def test_a_message_that_fails_to_decode_loses_nothing_else(mode):
    q = pshm.Queue(mode=mode)
    q.put(0)
    q.put(1)
    q._producer().send(_T_PICKLE, b'', b'not a pickle')
    q.put(3)
    q.put(4)
    assert q.get_many(10, timeout=5) == [0, 1]   # the good ones before it
    with pytest.raises(pickle_error()):
        q.get_many(10, timeout=5)          # then its error, as get() would raise
    assert q.get(timeout=5) == 3           # the rest, received already, in order
    assert q.get_many(10, timeout=5) == [4]
    q._producer().send(_T_PICKLE, b'', b'bad again')
    q.put(6)
    with pytest.raises(pickle_error()):
        q.get_many(10, timeout=5)          # first of its batch: raised at once
    assert q.get_many(10, timeout=5) == [6]
    with pytest.raises(queue.Empty):
        q.get_many_nowait(10)


def pickle_error():
    import pickle
    return pickle.UnpicklingError


def _wait_many_then_die(q, ev):
    ev.set()
    q.get_many(10)
    os._exit(3)                            # must not get here: killed while blocked


@pytest.mark.parametrize('mode', ['spsc', 'mpmc'])
def test_consumer_killed_while_blocked_loses_nothing(mode):
    ctx = mp.get_context('fork')
    q = pshm.Queue(mode=mode)
    ev = pshm.Event()
    p = ctx.Process(target=_wait_many_then_die, args=(q, ev))
    p.start()
    assert ev.wait(20)
    time.sleep(0.2)                        # well inside the wait
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    assert p.exitcode == -signal.SIGKILL
    for i in range(5):
        q.put(i)
    got = []
    while len(got) < 5:
        got += q.get_many(10, timeout=10)
    assert got == list(range(5))
    with pytest.raises(queue.Empty):
        q.get_many(10, timeout=0.1)


def test_wait_releases_the_gil():
    q = pshm.Queue()
    runs_while_waiting(lambda: pytest.raises(queue.Empty, q.get_many, 4, timeout=1.0))


def test_ctrl_c_interrupts_a_blocked_get_many(capsys):
    q = pshm.Queue()
    ctrl_c_latency([ctrl_c_queue_child('get_many(8)'), q.name], 'ctrl-c queue get_many',
                   capsys)
