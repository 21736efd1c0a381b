# SPDX-License-Identifier: MIT
"""pshm.Queue's zero-copy send: reserve() and put_array() write the message in its slot
in the ring; a clean exit commits, an exception cancels; timeouts, shutdown, the GIL;
the views are given up at the end of the with (a later access raises, never faults)."""
import multiprocessing as mp
import queue

import numpy as np
import pytest

import pshm
from test_py_sync import runs_while_waiting


def test_put_array_arrives_as_an_ndarray_of_that_dtype_and_shape():
    q = pshm.Queue(mode='spsc', max_msg=1 << 16)
    with q.put_array((3, 4), '<i4') as a:
        assert type(a) is np.ndarray and a.flags.writeable
        assert a.shape == (3, 4) and a.dtype == np.dtype('<i4')
        a[...] = np.arange(12).reshape(3, 4)
    b = q.get(timeout=5)
    assert b.dtype == np.dtype('<i4') and b.shape == (3, 4)
    assert np.array_equal(b, np.arange(12).reshape(3, 4))
    with q.put_array(5, 'f8', order='F') as a:
        a[:] = 1.5
    with q.get_view(timeout=5) as v:
        assert v.shape == (5,) and v.dtype == np.float64 and (v == 1.5).all()


def test_put_array_fortran_order():
    q = pshm.Queue(mode='spsc', max_msg=1 << 16)
    src = np.asfortranarray(np.arange(6, dtype='>f4').reshape(2, 3))
    with q.put_array(src.shape, src.dtype, order='F') as a:
        assert a.flags.f_contiguous
        a[...] = src
    b = q.get(timeout=5)
    assert b.flags.f_contiguous and np.array_equal(b, src)


def test_reserve_sends_raw_bytes():
    q = pshm.Queue(mode='mpmc', max_msg=4096)
    with q.reserve(5) as buf:
        assert type(buf) is memoryview and not buf.readonly and len(buf) == 5
        buf[:] = b'hello'
    assert q.get(timeout=5) == b'hello'


def test_an_exception_cancels_and_nothing_is_sent():
    q = pshm.Queue(mode='spsc', max_msg=4096)
    with pytest.raises(KeyError):
        with q.put_array(4, 'u1') as a:
            a[:] = 9
            raise KeyError('boom')
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    # the slot went back: the next message is the next one received
    with q.reserve(2) as b:
        b[:] = b'ok'
    assert q.get(timeout=5) == b'ok'


def test_views_are_given_up_at_the_end_of_the_with():
    q = pshm.Queue(mode='spsc', max_msg=4096)
    with q.reserve(8) as buf:
        buf[:] = b'12345678'
    with pytest.raises(ValueError):
        buf[0] = 1                       # a released memoryview
    with pytest.raises(ValueError):
        bytes(buf)
    with q.put_array(8, 'u1') as a:
        a[:] = 3
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 4                         # read-only now: it belongs to the consumer
    assert q.get(timeout=5) == b'12345678'
    assert (q.get(timeout=5) == 3).all()
    del a
    q.close()


def test_a_slot_kept_past_its_with_refuses_new_exports():
    q = pshm.Queue(mode='spsc', max_msg=4096)
    h = q._producer()
    r, slot = h.reserve(0, b'', 4)
    assert r == 0
    memoryview(slot)[:] = b'abcd'
    h.commit()
    with pytest.raises(ValueError):
        memoryview(slot)
    with pytest.raises(BufferError):
        q.close()                        # the slot object still lives
    del slot
    assert q.get(timeout=5) == b'abcd'
    q.close()


def test_one_reservation_at_a_time():
    q = pshm.Queue(mode='spsc', max_msg=4096)
    with q.reserve(4):
        with pytest.raises(RuntimeError):
            with q.reserve(4):
                pass
    r = q.reserve(1)
    with r as b:
        b[:] = b'x'
    with pytest.raises(RuntimeError):
        r.__enter__()


def test_full_timeout_and_nowait():
    q = pshm.Queue(mode='mpmc', maxsize=2, max_msg=256)
    for _ in range(2):
        with q.reserve(10):
            pass
    with pytest.raises(queue.Full):
        with q.reserve(10, timeout=0.1):
            pass
    with pytest.raises(queue.Full):
        with q.put_array(3, 'i2', block=False):
            pass
    with pytest.raises(ValueError):
        with q.reserve(1000):
            pass


def test_shutdown_raises_shutdown():
    q = pshm.Queue(mode='mpmc', max_msg=256)
    with q.reserve(1):
        pass                             # this process is a producer already
    q.shutdown()
    with pytest.raises(pshm.queues.ShutDown):
        with q.put_array(3, 'i2'):
            pass
    q2 = pshm.Queue(mode='mpmc', max_msg=256)
    q2.shutdown()                        # a producer joining after the shutdown
    with pytest.raises(pshm.queues.ShutDown):
        with q2.reserve(1):
            pass
    with pytest.raises(pshm.queues.ShutDown):
        q2.put(b'x')


def test_bad_dtype_and_shape():
    q = pshm.Queue(mode='mpmc', max_msg=256)
    with pytest.raises(TypeError):
        q.put_array(2, object)
    with pytest.raises(ValueError):
        q.put_array((2, -1), 'u1')
    with pytest.raises(ValueError):
        q.put_array(2, 'u1', order='K')


def test_waiting_reserve_releases_the_gil():
    q = pshm.Queue(mode='mpmc', maxsize=2, max_msg=256)
    for _ in range(2):
        with q.reserve(1):
            pass

    def waiter():
        with pytest.raises(queue.Full):
            with q.reserve(1, timeout=1.0):
                pass
    runs_while_waiting(waiter)


def _fill(q, n, size):
    for i in range(n):
        with q.put_array(size, 'u4') as a:
            a[:] = i


@pytest.mark.parametrize('method', ['fork', 'spawn'])
def test_producer_process_fills_in_place(method):
    ctx = mp.get_context(method)
    q = pshm.Queue(mode='spsc', maxsize=3, max_msg=(1 << 18) + 4096, prefault=True)
    p = ctx.Process(target=_fill, args=(q, 20, 1 << 16))
    p.start()
    for i in range(20):
        with q.get_view(timeout=20) as a:
            assert a.shape == (1 << 16,) and a[0] == i and a[-1] == i and (a == i).all()
    p.join(20)
    assert p.exitcode == 0


def _die_in_reservation(q):
    import os
    import signal
    with q.put_array(4, 'i4') as a:
        a[:] = 666
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize('mode', ['spsc', 'mpmc'])
def test_a_producer_sigkilled_in_its_reservation_sends_nothing(mode):
    """The reservation of a producer that dies inside its with is never published,
    and the queue goes on (an spsc producer role is taken over)."""
    ctx = mp.get_context('fork')
    q = pshm.Queue(mode=mode, max_msg=4096)
    p = ctx.Process(target=_die_in_reservation, args=(q,))
    p.start()
    p.join(20)
    assert p.exitcode == -9
    with q.put_array(4, 'i4', timeout=10) as a:
        a[:] = 7
    b = q.get(timeout=5)
    assert (b == 7).all()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)


def test_a_reservation_dropped_without_exit_is_cancelled():
    q = pshm.Queue(mode='spsc', max_msg=4096)
    r = q.reserve(3)
    r.__enter__()[:] = b'bad'
    del r                                # no __exit__: cancelled when collected
    with q.reserve(2) as b:              # not refused as "already pending"
        b[:] = b'ok'
    assert q.get(timeout=5) == b'ok'
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
