# SPDX-License-Identifier: MIT
"""pshm.mpi under mpi4py, run as one MPI job (tests/mpi/run.sh, 4 ranks in
2 pseudo-nodes): node-shared arrays, distributed-array hyperslabs against a
numpy reference, zero-copy views, and a bridged queue with sequence numbers
and checksums, fed and drained by local processes (the pshm command) or by
the endpoint ranks themselves, polling the bridge.
A failed check aborts the whole job (mpirun exits non-zero)."""
import os
import queue
import subprocess
import sys
import traceback
import zlib

import numpy as np
from mpi4py import MPI

from pshm import Queue, SharedMemory, ShutDown, mpi

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
PSHM = os.path.join(os.environ.get("PSHM_BUILD", "build"), "pshm")


def fail(msg):
    sys.stderr.write("rank %d: %s\n" % (rank, msg))
    sys.stderr.flush()
    comm.Abort(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def uname(tag):
    return "pshmpy_%d_%s" % (comm.bcast(os.getpid(), root=0), tag)


def node_arrays(job):
    """One array per node: the node's ranks share it; a local process that
    is not in the job reads it by name (numpy.load on /dev/shm)."""
    name = uname("narr")
    a = job.node_array(name, (5, 7), "f8")
    check(a.shape == (5, 7) and a.dtype == np.float64, "node array shape/dtype")
    if job.node_rank == 0:
        a[...] = np.arange(35).reshape(5, 7) + 100 * job.node
    comm.Barrier()
    check(np.array_equal(a, np.arange(35).reshape(5, 7) + 100 * job.node),
          "a node's ranks see the node's array")
    bname = job.node_name(name)
    check(bname == "%s.pn%d" % (name, job.node), "node name %s" % bname)
    if job.node_rank == 0:
        out = subprocess.run([sys.executable, "-c",
                              "import numpy; a = numpy.load('/dev/shm/%s', mmap_mode='r');"
                              "print(float(a.sum()))" % bname],
                             capture_output=True, text=True, check=True)
        want = float((np.arange(35) + 100 * job.node).sum())
        check(float(out.stdout) == want, "local process read %s, want %s" % (out.stdout, want))
    comm.Barrier()
    del a  # the last view: the block closes


def rand_key(rng, shape):
    """A random basic index: ints, slices with steps, or a full axis."""
    key = []
    for n in shape:
        r = rng.integers(0, 4)
        if n == 0 or r == 0:
            key.append(slice(None))
        elif r == 1:
            key.append(int(rng.integers(-n, n)))
        else:
            b = int(rng.integers(0, n))
            e = int(rng.integers(b, n + 1))
            key.append(slice(b, e, int(rng.integers(1, 4))))
    return tuple(key)


def hyperslabs(job, seed):
    """Random shapes, dtypes and hyperslabs (slabs spanning nodes included):
    every write goes to the library and to a numpy reference; every read
    through the library equals the reference's."""
    shared = np.random.default_rng(seed)
    mine = np.random.default_rng(seed + 1000 * (rank + 1))
    dtypes = ["u1", "<i2", "<u4", "<f8", "<c16", "S5", "<f2", "?", "<i8"]
    for t in range(8):
        dt = np.dtype(dtypes[int(shared.integers(0, len(dtypes)))])
        ndim = int(shared.integers(1, 4))
        shape = (int(shared.integers(0, 12)),) + tuple(int(shared.integers(1, 6))
                                                       for _ in range(ndim - 1))
        ref = np.zeros(shape, dtype=dt)
        a = job.darray(uname("h%d" % t), shape, dt)
        for rnd in range(12):
            key = rand_key(shared, shape)
            vals = shared.integers(0, 255, size=ref[key].shape).astype(dt)
            if rank == rnd % comm.Get_size():
                a[key] = vals
                if rnd % 3 == 0:
                    a.flush()
            ref[key] = vals
            a.sync()
            k = rand_key(mine, shape)
            got = a[k]
            check(got.shape == ref[k].shape and got.dtype == dt,
                  "array %d: get %s shape %s, want %s" % (t, k, got.shape, ref[k].shape))
            check(np.array_equal(got, ref[k]),
                  "array %d (%s %s) round %d: a[%s] differs from the reference" % (t, dt, shape,
                                                                                 rnd, k))
            a.sync()
        first, n = a.rows()
        loc = a.local
        check(np.array_equal(loc, ref[first:first + n]), "array %d: local slab" % t)
        del loc
        a.close()


def views(job):
    """A view is zero-copy (a store through it is in the slab: another node
    gets it after sync); a view of rows elsewhere is ValueError; an index
    outside the array is IndexError; close refuses while a view exists."""
    a = job.darray(uname("views"), (8, 6), "<i4")
    first, n = a.rows()
    v = a.view((slice(first, first + n), slice(1, 6, 2)))
    check(v.shape == (n, 3), "view shape %s" % (v.shape,))
    if job.node_rank == 0:
        v[...] = 1000 * job.node + np.arange(n * 3).reshape(n, 3)
    a.sync()
    for node in range(job.nodes):
        f, m = a.rows(node)
        got = a[f:f + m, 1:6:2]
        check(np.array_equal(got, 1000 * node + np.arange(m * 3).reshape(m, 3)),
              "rows of node %d through get after a store through a view" % node)
    other = (job.node + 1) % job.nodes
    f, m = a.rows(other)
    try:
        a.view(slice(f, f + m))
        fail("a view of another node's rows was given")
    except ValueError:
        pass
    try:
        a[8]
        fail("row 8 of 8 was read")
    except IndexError:
        pass
    try:
        a.close()
        fail("close with a view alive")
    except BufferError:
        pass
    del v
    a.sync()
    a.close()


def check_endpoint(job, br, n, large_bytes):
    """An endpoint (node-local rank 0) handled the end of stream and moved n
    messages, each on its own if large_bytes was set."""
    info = br.info()
    if job.node_rank == 0:
        check(info["done"] and info["messages"] == n,
              "endpoint %s: %r, want %d messages" % (info["role"], info, n))
        check(info["large"] == (n if large_bytes else 0),
              "endpoint %s: %r, large_bytes %r" % (info["role"], info, large_bytes))


def bridge(job, large_bytes=None):
    """A queue on node 0 bridged to node 1: a local process (the pshm
    command, not in the job) sends N numbered, checksummed messages into
    node 0's queue and ends the stream; another drains node 1's queue:
    every message once, in order, intact. large_bytes=16: every message
    (16 bytes) travels on its own."""
    name = uname("q")
    n = 300
    br = job.bridge(name, 0, [1], mode="mpmc", max_msg=64, messages=n + 16,
                    large_bytes=large_bytes)
    consumer = hold = None
    if job.node == 1 and job.node_rank == 1:
        # a job-lifetime queue goes when its last holder closes, and the
        # endpoint closes at the end of stream: this rank attaches to the
        # block (a holder, not a participant) until the consumer, which may
        # start late under load, is done (without it: ENOENT now and then)
        hold = SharedMemory(job.node_name(name, 1))
        consumer = subprocess.Popen([PSHM, "queue", "recv", job.node_name(name, 1), "--count",
                                     str(n), "--timeout", "60000"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
    comm.Barrier()
    if job.node == 0 and job.node_rank == 1:
        msgs = []
        for i in range(n):
            body = "m%06d" % i
            msgs.append("%s:%08x" % (body, zlib.crc32(body.encode())))
        q = job.node_name(name, 0)
        subprocess.run([PSHM, "queue", "send", q] + msgs, check=True)
        subprocess.run([PSHM, "queue", "close", q], check=True)
    br.run(timeout=120)
    check_endpoint(job, br, n, large_bytes)
    if consumer:
        out, err = consumer.communicate(timeout=90)
        check(consumer.returncode == 0, "pshm queue recv failed: %s" % err)
        lines = out.split()
        check(len(lines) == n, "received %d messages, want %d" % (len(lines), n))
        for i, line in enumerate(lines):
            body, crc = line.split(":")
            check(body == "m%06d" % i, "message %d is %s: lost, repeated or reordered" % (i, body))
            check(int(crc, 16) == zlib.crc32(body.encode()), "message %d: bad checksum" % i)
        hold.close()
    comm.Barrier()
    br.close()


def bridge_large(job):
    bridge(job, large_bytes=16)


def bridge_polled(job, large_bytes=None):
    """The endpoints produce and consume themselves, one thread a rank,
    polling the bridge (Bridge.poll) between their own queue operations:
    node 0's endpoint puts N numbered, checksummed objects into its queue
    (polling after every eighth and while the queue is full), node 1's gets
    them (polling while its queue is empty): every one once, in order,
    intact. large_bytes=512: the objects (about 1 KiB) travel on their own."""
    name = uname("qp%d" % bool(large_bytes))
    n = 2000
    br = job.bridge(name, 0, [1], mode="mpmc", max_msg=2048, messages=32,
                    large_bytes=large_bytes)
    q = None
    if job.node_rank == 0:
        q = Queue.open(job.node_name(name, job.node))
        if job.node == 1:
            q.subscribe()
    comm.Barrier()
    if job.node_rank == 0 and job.node == 0:
        for i in range(n):
            body = b"%06d" % i * 170
            while True:
                try:
                    q.put((i, zlib.crc32(body), body), block=False)
                    break
                except queue.Full:
                    check(not br.poll(), "the end of stream before the producer closed")
            if i % 8 == 7:
                br.poll()
        q.shutdown()  # the end of the stream (the bridge drains the queue first)
        q.close()
        while not br.poll():
            pass
    elif job.node_rank == 0:
        got = 0
        while True:
            try:
                i, crc, body = q.get(block=False)
            except queue.Empty:
                br.poll()
                continue
            except ShutDown:
                break
            check(i == got, "object %d is %d: lost, repeated or reordered" % (got, i))
            check(crc == zlib.crc32(body) and body == b"%06d" % i * 170, "object %d corrupt" % i)
            got += 1
        check(got == n, "received %d objects, want %d" % (got, n))
        check(br.poll(), "the end of stream was not handled")
        q.close()
    else:
        check(br.poll(), "a rank that is no endpoint: poll is True at once")
    check_endpoint(job, br, n, large_bytes)
    comm.Barrier()
    br.close()


def bridge_polled_large(job):
    bridge_polled(job, large_bytes=512)


def main():
    seed = int(os.environ.get("PSHM_SEED", "0")) or int.from_bytes(os.urandom(4), "little")
    seed = comm.bcast(seed, root=0)
    if rank == 0:
        print("test_mpi_python: PSHM_SEED=%d" % seed, flush=True)
    job = mpi.Job()
    check(job.nodes == 2 and job.size == 4, "run with 4 ranks in 2 pseudo-nodes")
    passed = 0
    for case in (node_arrays, hyperslabs, views, bridge, bridge_large, bridge_polled,
                 bridge_polled_large):
        try:
            case(job, seed) if case is hyperslabs else case(job)
        except Exception:
            fail("%s raised:\n%s" % (case.__name__, traceback.format_exc()))
        comm.Barrier()
        passed += 1
        if rank == 0:
            print("ok %s" % case.__name__, flush=True)
    job.close()
    if rank == 0:
        print("%d passed, 0 failed" % passed, flush=True)


main()
