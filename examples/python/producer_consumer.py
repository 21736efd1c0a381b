#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A producer process and a consumer process share a numpy int32 array through pshm.

The producer creates the array in a pshm array block; the consumer is started with
nothing but names (the block's, the lock's, the events') and finds the dtype and shape in
the block itself. Each round the producer rewrites the whole array under a pshm.Lock and
sets a pshm.Event; the consumer waits for it, sums the array under the lock, checks the
sum and sets another event to ask for the next round. No byte of the array is copied
between the processes and nothing is pickled but the names.

Run it from a build tree:
    PYTHONPATH=build/python python3 examples/python/producer_consumer.py
It prints one line per round from each side and ends with
    producer and consumer agree on 3 rounds of 1000000 int32
"""
import multiprocessing as mp
import sys

import numpy as np

import pshm

N = 1_000_000
ROUNDS = 3


def expected(r):
    return r * N * (N - 1) // 2          # sum of r * arange(N)


def consumer(array_name, lock_name, ready_name, taken_name):
    a = pshm.open_array(array_name)      # dtype and shape come from the block
    lock = pshm.Lock.open(lock_name)
    ready, taken = pshm.Event.open(ready_name), pshm.Event.open(taken_name)
    print(f'consumer: opened the array by name: {a.dtype} shape {a.shape}', flush=True)
    for r in range(1, ROUNDS + 1):
        if not ready.wait(timeout=30):
            sys.exit('consumer: the producer never signalled')
        ready.clear()
        with lock:
            s = int(a.sum(dtype=np.int64))
        ok = 'ok' if s == expected(r) else 'MISMATCH'
        print(f'consumer: round {r}: sum {s} (expected {expected(r)}) {ok}', flush=True)
        if ok != 'ok':
            sys.exit(1)
        taken.set()


def main():
    a = pshm.create_array(None, (N,), np.int32)   # random name, gone with its last user
    lock, ready, taken = pshm.Lock(), pshm.Event(), pshm.Event()
    ctx = mp.get_context('spawn')                 # a fresh interpreter: names only
    p = ctx.Process(target=consumer, args=(pshm.array_block(a).name, lock.name, ready.name,
                                           taken.name))
    p.start()
    base = np.arange(N, dtype=np.int32)
    for r in range(1, ROUNDS + 1):
        with lock:
            np.multiply(base, r, out=a)           # written in place, in shared memory
        print(f'producer: round {r}: wrote {N} int32', flush=True)
        ready.set()
        if not taken.wait(timeout=30):
            sys.exit('producer: the consumer never answered')
        taken.clear()
    p.join(30)
    if p.exitcode != 0:
        sys.exit(f'consumer failed with exit code {p.exitcode}')
    print(f'producer and consumer agree on {ROUNDS} rounds of {N} int32')


if __name__ == '__main__':
    main()
