#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_queue_py.py - hand numpy arrays from a producer process to a consumer process.

    bench/python/bench_queue_py.py [--quick] [--json FILE]

Arrays of 1 KiB, 1 MiB and 64 MiB (uint8), one way, producer -> consumer, each method in
its own pair of processes (fork; start-up is not timed).

What a hand-off time covers: from the moment the producer's data is ready to the moment
the consumer holds the array and has read its first and last element, on the shared
CLOCK_MONOTONIC. Hand-offs go one at a time (the producer waits for the consumer's
acknowledgement before the next one; that wait is not timed), so the figure is a latency,
the median of N after W warm-up hand-offs that are not counted (the first touches of a
ring or pipe fault pages in). pshm queues are made with prefault=True (the ring is mapped
populated in both processes).

"Data ready" depends on where the producer's data is:

  mp.Queue            the array exists in the producer's memory; put() pickles it through
                      a pipe (feeder thread); get() unpickles a copy
  stdlib shm          the stdlib way: the array exists; a new SharedMemory per array, the
                      array copied in, (name, dtype, shape) through a multiprocessing.Queue;
                      the consumer attaches and reads (its close+unlink follow, untimed)
  pshm.Queue copy     the array exists; put() copies it into the ring, get() copies it out
  pshm.Queue view     the array exists; put() copies it into the ring, get_view() reads it
                      in place
  put_array copy-in   the array exists; put_array() reserves a slot, the producer copies
                      the array into it (timed: the fill is inside the hand-off), commit;
                      get_view() reads it in place
  put_array in place  the producer computes its data directly in the slot: "ready" is the
                      end of that computation, so the hand-off is the commit to the
                      consumer's get_view(). The fill itself (here: copying the array into
                      the slot, which any producer computing into its own buffer also pays)
                      is reported separately in the "fill" column
  pshm array by name  the array already lives in a pshm array block; only its name travels,
                      through a pshm.Queue, and the consumer opens the block

Draining (one more cell a size): the producer queues N copies of the same array in an
SPSC pshm.Queue (the mode of the cells above; a ring that holds all N, prefaulted), then
the consumer takes all N, reading each one's first and last element, with get() one at a
time ("drain get()") or get_many(64) ("drain get_many(64)": one claim and one release a
batch); the time of the whole drain divided by N, the median of R rounds after one that is
not counted. Both receive copies. For small arrays the ratio is what the batch saves a
message (the claims, the release, the Python calls). get_many stops a batch at about
1 MiB: a batch's copies are all alive at once, and glibc gave a freed batch of 64 MiB back
to the kernel, so every batch copied into freshly faulted pages where get() reuses the
buffer it just freed (1 MiB messages, 64 a batch: 0.1x get(); now one a call, 1.06x).

Target (issue 10): a 64 MiB hand-off at least 50x faster than multiprocessing.Queue.
multiprocessing.Queue's 64 MiB figure is mostly its own costs, not the pipe's: pickling
the array (protocol 4, a 64 MiB bytes made) and Connection.recv_bytes, which reads the
pipe 64 KiB at a time with os.read(fd, remaining), each call allocating a buffer of the
remaining size, into a growing BytesIO (on the development VM: recv_bytes of 64 MiB
1.26 s, of it 0.84 s in os.read and 0.38 s in BytesIO.write; pickle.dumps 0.75 s).
Writes bench/report.py's JSON with --json. Run from the source tree after `make`
(it puts PSHM_BUILD/python, default build/python, on sys.path).
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get('PSHM_BUILD') or os.path.join(HERE, '..', '..', 'build')
sys.path.insert(0, os.path.join(os.path.abspath(BUILD), 'python'))

import numpy as np  # noqa: E402

import pshm  # noqa: E402

SIZES = [(1 << 10, '1 KiB'), (1 << 20, '1 MiB'), (64 << 20, '64 MiB')]
METHODS = ['mp.Queue', 'stdlib shm', 'pshm.Queue copy', 'pshm.Queue view',
           'put_array copy-in', 'put_array in place', 'pshm array by name']
VIEW_SIDE = ('pshm.Queue view', 'put_array copy-in', 'put_array in place')
DRAIN = ['drain get()', 'drain get_many(64)']


def reps(size, method, quick):
    n = {1 << 10: 400, 1 << 20: 100, 64 << 20: 12}[size]
    if method in ('mp.Queue', 'stdlib shm') and size == 64 << 20:
        n = 6
    return max(3, n // 4) if quick else n


def warmups(size):
    return {1 << 10: 50, 1 << 20: 10, 64 << 20: 3}[size]


def drain_n(size, quick):
    """(messages a drain, rounds counted) for the drain cells."""
    n = {1 << 10: 4096, 1 << 20: 64, 64 << 20: 3}[size]
    return (max(2, n // 4), 2) if quick else (n, 5)


# ------------------------------------------------------------- consumer

def consume(method, q, n, ack, result):
    """Take n arrays, one at a time; report the CLOCK_MONOTONIC time each was held."""
    from multiprocessing import shared_memory
    held = []
    for _ in range(n):
        if method in VIEW_SIDE:
            with q.get_view() as a:
                a[0], a[-1]
                held.append(time.monotonic())
            del a
        elif method == 'stdlib shm':
            name, dtype, shape = q.get()
            shm = shared_memory.SharedMemory(name)
            a = np.ndarray(shape, dtype, buffer=shm.buf)
            a[0], a[-1]
            held.append(time.monotonic())
            del a
            shm.close()
            shm.unlink()
        elif method == 'pshm array by name':
            a = pshm.open_array(q.get())
            a[0], a[-1]
            held.append(time.monotonic())
            del a
        else:                               # mp.Queue, pshm.Queue copy
            a = q.get()
            a[0], a[-1]
            held.append(time.monotonic())
            del a
        ack.release()
    result.put(held)


def drain(method, q, n, rounds, go, ack, result):
    """Each round: once the producer has queued n arrays, take them all (get() one at a
    time, or get_many(64)); report each round's seconds a message."""
    per = []
    for _ in range(rounds):
        go.acquire()
        t = time.monotonic()
        got = 0
        while got < n:
            for a in (q.get_many(64) if method == 'drain get_many(64)' else [q.get()]):
                a[0], a[-1]
                got += 1
            del a
        per.append((time.monotonic() - t) / n)
        ack.release()
    result.put(per)


# ------------------------------------------------------------- producer

def produce(method, q, arr, n, pool, ack):
    """Hand n arrays off, one at a time; the times each was ready, and the fill times."""
    from multiprocessing import resource_tracker, shared_memory
    ready, fills = [], []
    for i in range(n):
        if method == 'stdlib shm':
            ready.append(time.monotonic())
            shm = shared_memory.SharedMemory(create=True, size=arr.nbytes)
            # the consumer unlinks it (its attach registered it with the tracker too)
            resource_tracker.unregister(shm._name, 'shared_memory')
            np.ndarray(arr.shape, arr.dtype, buffer=shm.buf)[:] = arr
            q.put((shm.name, arr.dtype.str, arr.shape))
            shm.close()
        elif method == 'put_array copy-in':
            ready.append(time.monotonic())
            with q.put_array(arr.shape, arr.dtype) as a:
                a[...] = arr
        elif method == 'put_array in place':
            with q.put_array(arr.shape, arr.dtype) as a:
                t = time.monotonic()
                a[...] = arr                # stands for computing the data in the slot
                ready.append(time.monotonic())
                fills.append(ready[-1] - t)
        elif method == 'pshm array by name':
            ready.append(time.monotonic())
            q.put(pool[i % len(pool)])
        else:
            ready.append(time.monotonic())
            q.put(arr)
        ack.acquire()
    return ready, fills


def one(method, size, n, w):
    """(median hand-off, median fill or None) over n hand-offs after w warm-ups."""
    ctx = mp.get_context('fork')
    arr = np.full(size, 7, dtype=np.uint8)
    pool, keep = [], []
    if method in ('mp.Queue', 'stdlib shm'):
        q = ctx.Queue()
    elif method == 'pshm array by name':
        q = pshm.Queue(mode='spsc', max_msg=4096, prefault=True)
        for _ in range(4):          # arrays made (and filled) in shared memory beforehand
            a = pshm.share_array(arr)
            keep.append(a)
            pool.append(pshm.array_block(a).name)
    else:
        q = pshm.Queue(mode='spsc', max_msg=size + 4096, prefault=True)
    ack, result = ctx.Semaphore(0), ctx.Queue()
    p = ctx.Process(target=consume, args=(method, q, n + w, ack, result))
    p.start()
    ready, fills = produce(method, q, arr, n + w, pool, ack)
    held = result.get(timeout=600)
    p.join(60)
    if p.exitcode != 0:
        raise RuntimeError(f'{method} {size}: consumer exit code {p.exitcode}')
    if method not in ('mp.Queue', 'stdlib shm'):
        q.close()
    lat = [h - r for h, r in zip(held[w:], ready[w:])]
    return statistics.median(lat), (statistics.median(fills[w:]) if fills else None)


def one_drain(method, size, n, rounds):
    """Median seconds a message of draining n queued arrays, over `rounds` rounds after
    one warm-up round."""
    ctx = mp.get_context('fork')
    arr = np.full(size, 7, dtype=np.uint8)
    q = pshm.Queue(mode='spsc', max_msg=size + 4096, ring_bytes=n * (size + 4096),
                   prefault=True)
    go, ack, result = ctx.Semaphore(0), ctx.Semaphore(0), ctx.Queue()
    p = ctx.Process(target=drain, args=(method, q, n, rounds + 1, go, ack, result))
    p.start()
    for _ in range(rounds + 1):
        for _ in range(n):
            q.put(arr)
        go.release()
        ack.acquire()
    per = result.get(timeout=600)
    p.join(60)
    if p.exitcode != 0:
        raise RuntimeError(f'{method} {size}: consumer exit code {p.exitcode}')
    q.close()
    return statistics.median(per[1:])


def first_touch(size):
    """(seconds to allocate and write `size` fresh bytes, seconds to rewrite them): the
    machine's price of memory touched for the first time, which every method that
    allocates per message (pickle buffers, pipe reads, get()'s copy, a new SharedMemory)
    pays and a reused ring does not."""
    src = np.full(size, 7, dtype=np.uint8)
    fresh, warm = [], []
    for _ in range(3):
        t = time.monotonic()
        a = np.empty(size, dtype=np.uint8)
        a[...] = src
        fresh.append(time.monotonic() - t)
        t = time.monotonic()
        a[...] = src
        warm.append(time.monotonic() - t)
        del a
    return statistics.median(fresh), statistics.median(warm)


def fmt(s):
    if s is None:
        return '-'
    if s < 1e-3:
        return f'{s * 1e6:.1f} us'
    return f'{s * 1e3:.2f} ms' if s < 1 else f'{s:.2f} s'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--json')
    ap.add_argument('--sizes', help='comma-separated subset of 1,1024,65536 (KiB)')
    args = ap.parse_args()
    sizes = SIZES
    if args.sizes:
        want = {int(k) << 10 for k in args.sizes.split(',')}
        sizes = [s for s in SIZES if s[0] in want]
    res = {}
    for size, label in sizes:
        for m in METHODS:
            res[(size, m)] = one(m, size, reps(size, m, args.quick), warmups(size))
            t, fill = res[(size, m)]
            print(f'{label:>7} {m:<20} {fmt(t):>10} per hand-off'
                  + (f'  (+ fill {fmt(fill)})' if fill is not None else ''), flush=True)
        n, rounds = drain_n(size, args.quick)
        for m in DRAIN:
            res[(size, m)] = one_drain(m, size, n, rounds)
            print(f'{label:>7} {m:<20} {fmt(res[(size, m)]):>10} per message (drain of {n})',
                  flush=True)
    rows, findings = [], []
    for size, label in sizes:
        base = res[(size, 'mp.Queue')][0]
        rows.append([label])
        for m in METHODS:
            t, fill = res[(size, m)]
            rows.append([m, fmt(t), fmt(fill), f'{base / t:.1f}x',
                         f'{base / (t + fill):.1f}x' if fill is not None else '-'])
    drain_rows = []
    for size, label in sizes:
        one_at_a_time = res[(size, 'drain get()')]
        drain_rows.append([label + f' (drain of {drain_n(size, args.quick)[0]})'])
        for m in DRAIN:
            drain_rows.append([m, fmt(res[(size, m)]), f'{one_at_a_time / res[(size, m)]:.2f}x'])
        findings.append(f'{label}: draining with get_many(64) takes '
                        f'{fmt(res[(size, "drain get_many(64)")])} a message, '
                        f'{one_at_a_time / res[(size, "drain get_many(64)")]:.2f}x the speed '
                        f'of get() one at a time ({fmt(one_at_a_time)})')
    for size, label in sizes:
        base = res[(size, 'mp.Queue')][0]
        for m in ('pshm.Queue view', 'put_array copy-in', 'put_array in place'):
            t, fill = res[(size, m)]
            x = base / t
            line = f'{label} with {m}: {x:.1f}x multiprocessing.Queue'
            if size == 64 << 20:
                line += f' (target 50x: {"met" if x >= 50 else "not met"})'
            if fill is not None:
                line += f'; {base / (t + fill):.1f}x counting the fill'
            if size == 64 << 20 or m == 'put_array in place':
                findings.append(line)
    big, big_label = sizes[-1]
    fresh, warm = first_touch(big)
    findings.append(f'this machine: writing {big_label} into fresh '
                    f'memory (np.empty + copy) takes {fmt(fresh)}, rewriting the same memory '
                    f'{fmt(warm)}: first-touch page faults dominate the methods that '
                    f'allocate per message')
    for f in findings:
        print(f)
    out = {
        'bench': 'python_queue', 'title': 'Python: numpy arrays from a producer process to a '
        'consumer process', 'order': 61,
        'summary': 'Latency of one hand-off of a uint8 array (median, one at a time, after '
                   'warm-up): from the producer\'s data being ready to the consumer holding '
                   'the array (first and last element read), bench/python/bench_queue_py.py. '
                   '"put_array in place": the producer writes the slot itself; its fill '
                   '(the copy of the array into the slot) is the "fill" column, outside the '
                   'hand-off; "put_array copy-in" counts the same copy inside it. "pshm '
                   'array by name": the array already lives in a pshm block and only its '
                   'name travels. The drain table: N arrays queued first, then taken with '
                   'get() or get_many(64), time a message (median of the rounds).',
        'versions': {'cpython': platform.python_version(), 'numpy': np.__version__},
        'tables': [{'title': 'numpy array hand-off, producer process to consumer process',
                    'columns': ['method', 'hand-off', 'fill (outside)', 'vs mp.Queue',
                                'vs mp.Queue with the fill'],
                    'rows': rows},
                   {'title': 'draining N queued arrays (SPSC, copies): get() one at a time '
                             'against get_many(64)',
                    'columns': ['method', 'per message', 'vs get()'],
                    'rows': drain_rows}],
        'findings': findings,
    }
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
