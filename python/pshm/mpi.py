# SPDX-License-Identifier: MIT
"""pshm.mpi: pshm arrays and queues across the nodes of an MPI job (mpi4py).

Inside a node everything is pshm shared memory: numpy arrays here are views
of blocks that local processes (not in the job) open by name; between nodes
MPI carries the data (one-sided get/put for distributed arrays, batched
messages for bridged queues). The C library's manual is ``pshm_mpi.h``;
this module follows it call for call::

    from mpi4py import MPI
    from pshm import mpi

    job = mpi.Job(MPI.COMM_WORLD)                     # collective
    a = job.darray("field", (1000, 64), "f8")         # collective: rows split across nodes
    a[990:1000] = 1.5                                 # remote rows: MPI_Put
    a.sync()                                          # collective: all writes visible
    rows = a[0:10, ::2]                               # a numpy copy (MPI_Get where remote)
    mine = a.local                                    # this node's rows: zero-copy view
    del mine
    a.close(); job.close()                            # collective

Collective calls (``Job()``, ``Job.close``, ``Job.node_array``,
``Job.darray``, ``DArray.sync``, ``DArray.close``, ``Job.bridge``) must be
made by every rank, in the same order, with the same arguments. Close
distributed arrays and the job explicitly: a collective object left to the
garbage collector is leaked, never freed at a time each rank picks.
Pseudo-nodes (``PSHM_MPI_PSEUDO_NODES=k`` or ``Job(pseudo_nodes=k)``) split
one machine into k nodes with their own block names: a testing aid.
"""
import numpy as _np
from mpi4py import MPI as _MPI

from . import _mpi
from ._mpi import Error

__all__ = ["Job", "DArray", "Bridge", "Error"]


class _Closing:
    """``with`` closes (collectively, where close is collective)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _descr(dtype):
    dt = _np.dtype(dtype)
    if dt.fields is not None or dt.subdtype is not None:
        raise TypeError("pshm.mpi arrays take plain dtypes, not %r" % (dt,))
    return dt, dt.str


class Job(_Closing):
    """The node layout of a communicator (collective).

    ``comm``: an mpi4py communicator (default ``MPI.COMM_WORLD``);
    ``pseudo_nodes``: 0 reads ``PSHM_MPI_PSEUDO_NODES`` (unset: 1).
    """

    def __init__(self, comm=None, pseudo_nodes=0):
        self._h = _mpi.Job(_MPI.COMM_WORLD if comm is None else comm, pseudo_nodes)

    rank = property(lambda self: self._h.rank, doc="This rank in the job.")
    size = property(lambda self: self._h.size, doc="Ranks in the job.")
    node = property(lambda self: self._h.node, doc="This rank's node.")
    nodes = property(lambda self: self._h.nodes, doc="Nodes in the job.")
    node_rank = property(lambda self: self._h.node_rank, doc="This rank within its node.")
    node_size = property(lambda self: self._h.node_size, doc="Ranks on this node.")
    pseudo_nodes = property(lambda self: self._h.pseudo_nodes, doc="Pseudo-nodes per machine.")
    comm = property(lambda self: self._h.comm, doc="The communicator given.")
    closed = property(lambda self: self._h.closed)

    def node_name(self, name, node=None):
        """The block name of node object ``name`` on ``node`` (default: this one)."""
        return self._h.node_name(name, -1 if node is None else node)

    def node_leader(self, node):
        """The job rank of ``node``'s first rank."""
        return self._h.node_leader(node)

    def node_array(self, name, shape, dtype, *, persist=False, open_existing=False):
        """Collective: one array per node, shared by the node's ranks (the
        node's first rank creates it, the others attach). Returns a numpy
        array over the block; the block is closed when the last view of it
        goes. Lifetime: the job's (``persist=True``: stays)."""
        dt, descr = _descr(dtype)
        shape = tuple(int(n) for n in (shape if hasattr(shape, "__len__") else (shape,)))
        h = _mpi.NodeArray(self._h, name, descr, shape, persist, open_existing)
        return _np.frombuffer(h, dtype=dt).reshape(shape)

    def darray(self, name, shape, dtype, *, persist=False):
        """Collective: a distributed array (see DArray). ``name`` None: a
        random name drawn by rank 0."""
        return DArray(self, name, shape, dtype, persist=persist)

    def bridge(self, name, src, dsts, **kw):
        """Collective: forward the queue ``name`` on node ``src`` to the
        queues of the same name on nodes ``dsts`` (see Bridge)."""
        return Bridge(self, name, src, dsts, **kw)

    def close(self):
        """Collective. Close the job's distributed arrays and bridges first."""
        self._h.close()


def _hyperslab(key, shape):
    """numpy basic indexing -> (start, count, step, result shape, int axes)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (len(shape) - len(key) + 1)
        key = key[:i] + fill + key[i + 1:]
    if len(key) > len(shape):
        raise IndexError("too many indices: %d for %d axes" % (len(key), len(shape)))
    key = key + (slice(None),) * (len(shape) - len(key))
    start, count, step, out, ints = [], [], [], [], []
    for k, n in zip(key, shape):
        if isinstance(k, slice):
            b, e, s = k.indices(n)
            if s < 1:
                raise IndexError("pshm.mpi hyperslabs take positive steps only")
            c = max(0, (e - b + s - 1) // s)
            start.append(b if c else 0)
            count.append(c)
            step.append(s)
            out.append(c)
        else:
            i = int(k)
            if i < -n or i >= n:
                raise IndexError("index %d is out of bounds for an axis of size %d" % (i, n))
            start.append(i + n if i < 0 else i)
            count.append(1)
            step.append(1)
            ints.append(len(start) - 1)
    return start, count, step, tuple(out), ints


class DArray(_Closing):
    """One C-order array split along its first axis across the nodes.

    Node i of n holds rows [i*N//n, (i+1)*N//n) as a pshm array block (a
    .npy in place, ``block_name``) that local processes open by name.
    ``a[key]`` reads any basic-indexing hyperslab (ints, slices with
    positive steps, ``...``) as a new numpy array; ``a[key] = value`` writes
    one (value broadcast as numpy does). Consistency as pshm_mpi.h says:
    get returns with the data; put returns when the value may be reused;
    ``flush()`` completes this rank's puts at their targets; the collective
    ``sync()`` makes every earlier write (puts, and stores through views)
    visible to every later read.
    """

    def __init__(self, job, name, shape, dtype, *, persist=False):
        self.dtype, descr = _descr(dtype)
        shape = tuple(int(n) for n in (shape if hasattr(shape, "__len__") else (shape,)))
        self._h = _mpi.DArray(job._h, name, descr, shape, persist)
        self.shape = shape
        self.ndim = len(shape)
        self.job = job

    name = property(lambda self: self._h.name, doc="The darray's name (no node suffix).")
    block_name = property(lambda self: self._h.block_name, doc="This node's slab's block name.")
    closed = property(lambda self: self._h.closed)

    def rows(self, node=None):
        """(first, count): the rows ``node`` holds (default: this node)."""
        return self._h.rows(-1 if node is None else node)

    @property
    def local(self):
        """This node's slab as a zero-copy numpy view (rows ``rows()``).
        close() raises BufferError while such views exist."""
        first, n = self.rows()
        return _np.frombuffer(self._h, dtype=self.dtype).reshape((n,) + self.shape[1:])

    def view(self, key):
        """A zero-copy numpy view of a hyperslab that lies in this node's
        slab (global indices); ValueError if some row is on another node."""
        start, count, step, _, ints = _hyperslab(key, self.shape)
        first, n = self.rows()
        if all(c > 0 for c in count):
            last = start[0] + (count[0] - 1) * step[0]
            if start[0] < first or last >= first + n:
                raise ValueError("hyperslab rows %d..%d are not all on this node (%d..%d)"
                                 % (start[0], last, first, first + n - 1))
        local = []
        for d, (b, c, s) in enumerate(zip(start, count, step)):
            if d == 0:
                b -= first
            if d in ints:
                local.append(b)
            else:
                local.append(slice(b, b + (c - 1) * s + 1, s) if c > 0 else slice(0, 0))
        return self.local[tuple(local)]

    def __getitem__(self, key):
        start, count, step, out, _ = _hyperslab(key, self.shape)
        buf = _np.empty(count, dtype=self.dtype)
        self._h.get(start, count, step, buf)
        return buf.reshape(out)

    def get(self, key):
        """The same as ``a[key]``."""
        return self[key]

    def __setitem__(self, key, value):
        start, count, step, out, _ = _hyperslab(key, self.shape)
        v = _np.ascontiguousarray(_np.broadcast_to(_np.asarray(value, dtype=self.dtype), out))
        self._h.put(start, count, step, v.reshape(count))

    def put(self, key, value):
        """The same as ``a[key] = value``."""
        self[key] = value

    def flush(self):
        """Complete this rank's puts at their targets (not collective)."""
        self._h.flush()

    def sync(self):
        """Collective: every write before it visible to every read after."""
        self._h.sync()

    def close(self):
        """Collective: free the window, close the slab."""
        self._h.close()


class Bridge(_Closing):
    """Forward a pshm queue on one node to the queues of the same name on
    others (collective to make). On each node involved, the endpoint rank
    (node-local rank 0) holds the node's queue, created if missing (mode
    'mpmc', 'spsc' or 'broadcast'; max_msg; messages: ring size in
    messages). Local processes use the queues by name
    (``job.node_name(name, node)``). Delivery: exactly once in order while
    the job runs, at least once across a bridge's death
    (``release_early=True``: faster, at most once); see pshm_mpi.h.
    ``window``: messages in flight, claimed in batches on one consumer handle
    (None: the library's default, 1024); after a bridge's death at most that
    many are delivered twice.
    ``large_bytes``: messages at least this long travel as MPI messages of
    their own, received straight into the destination queue (None: the
    library's default, 128 KiB); they are sent straight from the source
    queue's slots, or from a copy with ``large_from_slot=False`` (None: the
    library's default, from the slots; see pshm_mpi.h, Wire).
    An endpoint rank that also produces or consumes in the same thread
    calls ``poll()`` between its own queue operations instead of ``run()``.
    """

    def __init__(self, job, name, src, dsts, *, mode="mpmc", max_msg=4096, messages=0,
                 persist=False, release_early=False, window=None, batch_bytes=256 << 10,
                 large_bytes=None, large_from_slot=None):
        self._h = _mpi.Bridge(job._h, name, src, list(dsts), mode, max_msg, messages, persist,
                              release_early, 0 if window is None else window, batch_bytes,
                              -1 if large_bytes is None else large_bytes, large_from_slot)

    def run(self, timeout=None):
        """Forward until the end of stream (returns at once on ranks that are
        no endpoint). TimeoutError at ``timeout`` seconds: call again, nothing
        is lost."""
        self._h.run(timeout)

    def poll(self):
        """One step that never waits: take acknowledgements, send what the
        source queue holds (as one batch), commit what arrived. For an
        endpoint that also produces (call it after every few puts and while
        the queue is full) or consumes (call it while the queue is empty).
        True once the end of stream was handled (at once on ranks that are no
        endpoint)."""
        return self._h.poll()

    def info(self):
        """What this endpoint has done: role, done, messages, bytes, batches,
        window_full, large (messages that travelled on their own)."""
        return self._h.info()

    def close(self):
        """Close the endpoint's queue handles (not collective)."""
        self._h.close()
