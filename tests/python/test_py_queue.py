# SPDX-License-Identifier: MIT
"""pshm.Queue and SimpleQueue: what travels raw and what is pickled, zero-copy views,
timeouts, the three modes across processes (fork, spawn, forkserver), a producer and a
consumer SIGKILLed, shutdown, the GIL and Ctrl-C, errors."""
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest

import pshm
import pshm.queues
from queue_helpers import broadcast_to_subscribers, ctrl_c_queue_child
from test_py_sync import ctrl_c_latency, runs_while_waiting

METHODS = ['fork', 'spawn', 'forkserver']


def uname():
    return f'pyext_q_{os.getpid()}_{uuid.uuid4().hex[:8]}'


# ------------------------------------------------------------ payloads

ARRAYS = [
    np.arange(12, dtype='<i4').reshape(3, 4),
    np.asfortranarray(np.arange(12, dtype='>f8').reshape(3, 4)),
    np.arange(20, dtype=np.uint8)[::3],                  # not contiguous
    np.array(3.5),                                       # 0-d
    np.zeros((0, 5), dtype=np.int16),                    # empty
    np.array([b'ab', b'c'], dtype='S2'),
    np.array(['xyz', 'q'], dtype='<U3'),
    np.array([True, False]),
    np.arange(6, dtype=np.complex128).reshape(2, 3),
]


@pytest.mark.parametrize('arr', ARRAYS, ids=lambda a: f'{a.dtype.str}{a.shape}')
def test_numpy_arrays_travel_raw(arr, monkeypatch):
    q = pshm.Queue()
    # Arrays must not be pickled: with pickling broken they still travel.
    monkeypatch.setattr(pshm.queues, 'pickle', None)
    q.put(arr)
    b = q.get(timeout=5)
    assert type(b) is np.ndarray and b.dtype == arr.dtype and b.shape == arr.shape
    assert np.array_equal(b, arr)
    assert b.flags.writeable
    if arr.ndim == 2 and arr.flags.f_contiguous and not arr.flags.c_contiguous:
        assert b.flags.f_contiguous


def test_bytes_like_travel_raw(monkeypatch):
    q = pshm.Queue()
    monkeypatch.setattr(pshm.queues, 'pickle', None)
    q.put(b'abc')
    q.put(bytearray(b'de'))
    q.put(memoryview(b'fgh'))
    q.put(b'')
    assert q.get() == b'abc' and type(q.get()) is bytearray
    assert q.get() == b'fgh'
    assert q.get() == b''


def test_other_objects_are_pickled():
    q = pshm.Queue()
    objs = [None, 1, 'text', {'a': [1, 2]}, (1, 2.5), np.zeros(2, dtype=[('x', 'i4')]),
            np.array([1, None], dtype=object)]
    for o in objs:
        q.put(o)
    for o in objs:
        got = q.get(timeout=5)
        if isinstance(o, np.ndarray):
            assert got.dtype == o.dtype and got.tolist() == o.tolist()
        else:
            assert got == o


def test_get_view_is_zero_copy_and_released_at_the_end():
    q = pshm.Queue()
    a = np.arange(1000, dtype=np.float64)
    q.put(a)
    q.put(b'bytes')
    stat = pshm.queues._queue.stat
    with q.get_view() as v:
        assert np.array_equal(v, a) and not v.flags.writeable
        assert stat(q.name)['received'] == 0   # still held in the ring while viewed
    assert stat(q.name)['received'] == 1       # released at the end of the with
    with q.get_view() as mv:
        assert isinstance(mv, memoryview) and mv.tobytes() == b'bytes'
    with pytest.raises(ValueError):
        mv.tobytes()                   # the memoryview was released with the message
    del v
    q.close()


def test_close_refuses_while_a_view_lives():
    q = pshm.Queue()
    q.put(np.zeros(4))
    with q.get_view() as v:
        pass
    with pytest.raises(BufferError, match='view'):
        q.close()
    del v
    q.close()


def test_timeouts_and_sizes():
    q = pshm.Queue(maxsize=2, max_msg=256)
    assert q.empty() and not q.full()
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    assert time.monotonic() - t0 >= 0.15
    with pytest.raises(queue.Empty):
        q.get_nowait()
    q.put(b'1')
    q.put(b'2')
    assert q.full() and q.qsize() == 2
    n = 2
    with pytest.raises(queue.Full):
        # the ring holds at least maxsize messages (rounded up): fill it
        while True:
            q.put(b'x', timeout=0.1)
            n += 1
            assert n < 100
    with pytest.raises(queue.Full):
        q.put_nowait(b'y')
    with pytest.raises(ValueError, match='max_msg=256'):
        q.put(b'z' * 300)
    assert q.get() == b'1'


def test_errors():
    with pytest.raises(ValueError, match='mode'):
        pshm.Queue(mode='fifo')
    with pytest.raises(ValueError):
        pshm.Queue(-1)
    with pytest.raises(FileNotFoundError) as e:
        pshm.Queue.open('pyext_q_missing_' + uuid.uuid4().hex[:6])
    assert 'pyext_q_missing_' in str(e.value)
    lock = pshm.Lock()
    with pytest.raises(ValueError, match='not a pshm queue'):
        pshm.Queue.open(lock.name)
    q = pshm.Queue(mode='spsc')
    q.put(b'1')
    q2 = pshm.Queue.open(q.name)
    with pytest.raises(ValueError, match='producer role is held'):
        q2.put(b'2')


def test_shutdown():
    q = pshm.Queue()
    q.put(b'last')
    q.shutdown()
    with pytest.raises(pshm.ShutDown):
        q.put(b'more')
    assert q.get() == b'last'
    with pytest.raises(pshm.ShutDown):
        q.get(timeout=5)


def test_named_queue_opens_from_an_unrelated_process():
    name = uname()
    q = pshm.Queue(name=name, mode='spsc')
    try:
        code = textwrap.dedent(f'''
            import numpy as np, pshm
            q = pshm.Queue.open({name!r})
            q.put(np.arange(5, dtype=np.int16))
            q.put({{'done': True}})
        ''')
        subprocess.run([sys.executable, '-c', code], check=True, timeout=30)
        a = q.get(timeout=10)
        assert a.dtype == np.int16 and a.tolist() == [0, 1, 2, 3, 4]
        assert q.get(timeout=10) == {'done': True}
    finally:
        q.unlink()


def test_unnamed_queue_goes_with_its_last_user():
    q = pshm.Queue()
    path = '/dev/shm/' + q.name
    q.put(b'x')
    assert os.path.exists(path)
    del q
    assert not os.path.exists(path)


# ---------------------------------------------------- across processes

def _produce(q, n, start):
    for i in range(start, start + n):
        q.put(np.full(100, i, dtype=np.int64))


def _consume(q, n, out_q):
    got = [int(q.get(timeout=20)[0]) for _ in range(n)]
    out_q.put(got)


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('mode', ['spsc', 'mpmc'])
def test_producer_child_consumer_parent(method, mode):
    ctx = mp.get_context(method)
    q = pshm.Queue(mode=mode, maxsize=8)
    p = ctx.Process(target=_produce, args=(q, 50, 0))
    p.start()
    got = [int(q.get(timeout=20)[0]) for _ in range(50)]
    p.join(20)
    assert p.exitcode == 0
    assert got == list(range(50))       # in order, none lost


@pytest.mark.parametrize('method', ['fork', 'spawn'])
def test_mpmc_delivers_each_message_once(method):
    ctx = mp.get_context(method)
    q = pshm.Queue(mode='mpmc')
    res = pshm.Queue(mode='mpmc')
    prods = [ctx.Process(target=_produce, args=(q, 40, k * 40)) for k in range(2)]
    cons = [ctx.Process(target=_consume, args=(q, 40, res)) for _ in range(2)]
    for p in prods + cons:
        p.start()
    got = res.get(timeout=30) + res.get(timeout=30)
    for p in prods + cons:
        p.join(20)
        assert p.exitcode == 0
    assert sorted(got) == list(range(80))


def test_broadcast_every_subscriber_gets_every_message():
    q = pshm.Queue(mode='broadcast', max_msg=4096)
    got = broadcast_to_subscribers(
        q, lambda: _produce(q, 30, 0),
        lambda q: [int(q.get(timeout=20)[0]) for _ in range(30)])
    assert got == [list(range(30))] * 2


def test_simple_queue():
    ctx = mp.get_context('spawn')
    q = pshm.SimpleQueue()
    p = ctx.Process(target=_produce, args=(q, 5, 0))
    p.start()
    assert [int(q.get()[0]) for _ in range(5)] == list(range(5))
    p.join(20)
    assert q.empty()
    q.close()


# --------------------------------------------------------------- crashes

def _produce_then_hang(q, n, ev):
    _produce(q, n, 0)
    ev.set()
    time.sleep(60)


def test_sigkilled_producer_loses_no_committed_message():
    ctx = mp.get_context('fork')
    q = pshm.Queue(mode='spsc')
    ev = pshm.Event()
    p = ctx.Process(target=_produce_then_hang, args=(q, 10, ev))
    p.start()
    assert ev.wait(20)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    got = [int(q.get(timeout=10)[0]) for _ in range(10)]
    assert got == list(range(10))
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    # a crash is not a shutdown: a new producer takes over (SPSC: the dead one's role)
    q.put(b'new producer')
    assert q.get(timeout=10) == b'new producer'


def _view_then_hang(q, ev):
    with q.get_view() as v:
        assert int(v[0]) == 7
        ev.set()
        time.sleep(60)


@pytest.mark.parametrize('mode', ['spsc', 'mpmc'])
def test_sigkilled_consumer_holding_a_view_gets_it_redelivered(mode):
    ctx = mp.get_context('fork')
    q = pshm.Queue(mode=mode)
    q.put(np.full(10, 7))
    q.put(np.full(10, 8))
    ev = pshm.Event()
    p = ctx.Process(target=_view_then_hang, args=(q, ev))
    p.start()
    assert ev.wait(20)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    got = [int(q.get(timeout=10)[0]), int(q.get(timeout=10)[0])]
    assert got == [7, 8]               # the message the dead consumer held comes again
    assert pshm.queues._queue.stat(q.name)['redeliveries'] == 1


# ------------------------------------------------------- GIL and Ctrl-C

def test_get_wait_releases_the_gil():
    q = pshm.Queue()
    runs_while_waiting(lambda: pytest.raises(queue.Empty, q.get, timeout=1.0))


def test_ctrl_c_interrupts_a_blocked_get(capsys):
    q = pshm.Queue()
    ctrl_c_latency([ctrl_c_queue_child('get()'), q.name], 'ctrl-c queue get', capsys)
