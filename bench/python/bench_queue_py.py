#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_queue_py.py - hand numpy arrays from a producer process to a consumer process.

    bench/python/bench_queue_py.py [--quick] [--json FILE]

Arrays of 1 KiB, 1 MiB and 64 MiB (uint8), one way, producer -> consumer, each in its
own pair of processes (fork; start-up is not timed). The producer holds an existing
array and hands it off N times; the consumer takes each and reads its first and last
element. The figure is the time per hand-off: from the producer's first send to the
consumer holding the N-th array, divided by N (hand-offs overlap as far as each method
lets them). Methods:

  mp.Queue           multiprocessing.Queue: the array is pickled through a pipe
  stdlib shm         the stdlib way: a new SharedMemory per array, the array copied in,
                     (name, dtype, shape) through a multiprocessing.Queue; the consumer
                     attaches, reads, closes and unlinks
  pshm.Queue copy    pshm.Queue (spsc): put copies into the ring, get copies out
  pshm.Queue view    pshm.Queue (spsc): put copies into the ring, get_view reads in place
  pshm array by name the array already lives in a pshm array block (pshm.create_array);
                     only its name travels, through a pshm.Queue; the consumer opens it

Target (issue 10): a 64 MiB hand-off at least 50x faster than multiprocessing.Queue.
Writes bench/report.py's JSON with --json. Run from the source tree after `make`
(it puts PSHM_BUILD/python, default build/python, on sys.path).
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get('PSHM_BUILD') or os.path.join(HERE, '..', '..', 'build')
sys.path.insert(0, os.path.join(os.path.abspath(BUILD), 'python'))

import numpy as np  # noqa: E402

import pshm  # noqa: E402

SIZES = [(1 << 10, '1 KiB'), (1 << 20, '1 MiB'), (64 << 20, '64 MiB')]
METHODS = ['mp.Queue', 'stdlib shm', 'pshm.Queue copy', 'pshm.Queue view',
           'pshm array by name']


def reps(size, quick):
    n = {1 << 10: 2000, 1 << 20: 200, 64 << 20: 8}[size]
    return max(3, n // 5) if quick else n


# ------------------------------------------------------------- consumers

def consume(method, q, n, ready, result):
    """Take n arrays; put the monotonic time the n-th was held into result."""
    from multiprocessing import shared_memory
    ready.set()
    for _ in range(n):
        if method == 'mp.Queue':
            a = q.get()
            a[0], a[-1]
        elif method == 'stdlib shm':
            name, dtype, shape = q.get()
            shm = shared_memory.SharedMemory(name)
            a = np.ndarray(shape, dtype, buffer=shm.buf)
            a[0], a[-1]
            del a
            shm.close()
            shm.unlink()
        elif method == 'pshm.Queue copy':
            a = q.get()
            a[0], a[-1]
        elif method == 'pshm.Queue view':
            with q.get_view() as a:
                a[0], a[-1]
            del a
        else:
            a = pshm.open_array(q.get())
            a[0], a[-1]
            del a
    result.put(time.monotonic())


# ------------------------------------------------------------- producers

def produce(method, q, arr, n, pool):
    from multiprocessing import resource_tracker, shared_memory
    for i in range(n):
        if method == 'stdlib shm':
            shm = shared_memory.SharedMemory(create=True, size=arr.nbytes)
            # the consumer unlinks it (its attach registered it with the tracker too)
            resource_tracker.unregister(shm._name, 'shared_memory')
            np.ndarray(arr.shape, arr.dtype, buffer=shm.buf)[:] = arr
            q.put((shm.name, arr.dtype.str, arr.shape))
            shm.close()
        elif method == 'pshm array by name':
            q.put(pool[i % len(pool)])
        else:
            q.put(arr)


def one(method, size, n):
    ctx = mp.get_context('fork')
    arr = np.full(size, 7, dtype=np.uint8)
    pool, keep = [], []
    if method in ('mp.Queue', 'stdlib shm'):
        q = ctx.Queue()
    elif method == 'pshm array by name':
        q = pshm.Queue(mode='spsc', max_msg=4096)
        for _ in range(4):          # arrays made (and filled) in shared memory beforehand
            a = pshm.share_array(arr)
            keep.append(a)
            pool.append(pshm.array_block(a).name)
    else:
        q = pshm.Queue(mode='spsc', max_msg=size + 4096)
    ready, result = ctx.Event(), ctx.Queue()
    p = ctx.Process(target=consume, args=(method, q, n, ready, result))
    p.start()
    ready.wait()
    time.sleep(0.05)
    t0 = time.monotonic()
    produce(method, q, arr, n, pool)
    t1 = result.get(timeout=600)
    p.join(60)
    if p.exitcode != 0:
        raise RuntimeError(f'{method} {size}: consumer exit code {p.exitcode}')
    if hasattr(q, 'unlink') and method != 'mp.Queue':
        q.close()
    return (t1 - t0) / n


def fmt(s):
    if s < 1e-3:
        return f'{s * 1e6:.1f} us'
    return f'{s * 1e3:.2f} ms' if s < 1 else f'{s:.2f} s'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--json')
    args = ap.parse_args()
    res = {}
    for size, label in SIZES:
        for m in METHODS:
            n = reps(size, args.quick)
            if m == 'mp.Queue' and size == 64 << 20:
                n = min(n, 4 if args.quick else 6)
            res[(size, m)] = one(m, size, n)
            print(f'{label:>7} {m:<20} {fmt(res[(size, m)]):>10} per hand-off', flush=True)
    rows, findings = [], []
    for size, label in SIZES:
        base = res[(size, 'mp.Queue')]
        rows.append([label])
        for m in METHODS:
            t = res[(size, m)]
            rows.append([m, fmt(t), f'{base / t:.1f}x'])
    big = 64 << 20
    for m in ('pshm.Queue copy', 'pshm.Queue view', 'pshm array by name'):
        x = res[(big, 'mp.Queue')] / res[(big, m)]
        findings.append(f'64 MiB with {m}: {x:.1f}x multiprocessing.Queue '
                        f'(target 50x: {"met" if x >= 50 else "not met"})')
    x = res[(big, 'stdlib shm')] / res[(big, 'pshm.Queue view')]
    findings.append(f'64 MiB: pshm.Queue view is {x:.1f}x the stdlib SharedMemory way')
    for f in findings:
        print(f)
    out = {
        'bench': 'python_queue', 'title': 'Python: numpy arrays from a producer process to a '
        'consumer process', 'order': 61,
        'summary': 'Time per hand-off of a uint8 array (the producer holds it, the consumer '
                   'reads its first and last element), bench/python/bench_queue_py.py. '
                   '"pshm array by name": the array already lives in a pshm block and '
                   'only its name travels.',
        'versions': {'cpython': platform.python_version(), 'numpy': np.__version__},
        'tables': [{'title': 'numpy array hand-off, producer process to consumer process',
                    'columns': ['method', 'time per hand-off', 'vs mp.Queue'],
                    'rows': rows}],
        'findings': findings,
    }
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
