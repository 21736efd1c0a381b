# SPDX-License-Identifier: MIT
"""Helpers shared by the pshm.Queue tests (test_py_queue.py, test_queue_many.py)."""
import multiprocessing as mp

import pshm


def broadcast_to_subscribers(q, send, receive, subscribers=2):
    """Fork `subscribers` processes that each subscribe to the broadcast queue q
    and then put receive(q) on a result queue; once all have subscribed, call
    send(). Returns what each one received (a list, in the order they finished)
    after checking that every subscriber exited 0."""
    ctx = mp.get_context('fork')
    res = pshm.Queue()
    ready = pshm.Semaphore(0)

    def sub():
        q.subscribe()
        ready.release()
        res.put(receive(q))

    subs = [ctx.Process(target=sub) for _ in range(subscribers)]
    for p in subs:
        p.start()
    for _ in subs:
        assert ready.acquire(timeout=20)
    send()
    got = [res.get(timeout=30) for _ in subs]
    for p in subs:
        p.join(20)
        assert p.exitcode == 0
    return got


def ctrl_c_queue_child(call):
    """The source of a child for test_py_sync.ctrl_c_latency: it opens the queue
    named by argv[1], prints 'waiting', blocks in q.<call>, and on Ctrl-C prints
    'KeyboardInterrupt' with its monotonic time."""
    return f'''
import sys, time, pshm
q = pshm.Queue.open(sys.argv[1])
print('waiting', flush=True)
try:
    q.{call}
except KeyboardInterrupt:
    print('KeyboardInterrupt', time.monotonic(), flush=True)
    sys.exit(0)
print('returned')
'''
