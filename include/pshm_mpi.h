/* SPDX-License-Identifier: MIT */
/*
 * pshm_mpi.h - pshm arrays and queues across the nodes of an MPI job.
 *
 * libpshm_mpi is an optional library, linked against MPI (MPI-3) and built
 * only on libpshm's public API (pshm.h). Inside a node everything stays pshm
 * shared memory: zero-copy, and visible by name to local processes that are
 * not part of the job (a numpy viewer, the pshm command). Between nodes MPI
 * carries the data: one-sided communication (MPI_Get/MPI_Put on a window
 * over each node's memory) for arrays, MPI_Isend/MPI_Irecv for queues. pshm
 * has no network layer of its own.
 *
 * Every convention of pshm.h holds here (returns, naming, struct_size and
 * _init(), handles and ownership, (buf, cap, &len) text); this page says
 * only what MPI adds.
 *
 * Collective calls
 *   Functions marked "collective" must be called by every rank of the job's
 *   communicator (the one given to pshm_mpi_job_open), in the same order,
 *   with the same arguments (names, dtype, shape, nodes, options). Arguments
 *   that differ between ranks are found (a hash of them is compared) and give
 *   -PSHM_EMPI_MISMATCH on every rank instead of a hang or a wrong object.
 *   A collective call either succeeds on every rank or fails on every rank
 *   with the same code - that of the lowest rank whose own step failed (a
 *   node's creating rank, say, with -EEXIST) - and whatever the call had
 *   made on any node is removed again. Non-collective calls involve only the caller (and, for
 *   one-sided access, the memory of other nodes, not their code).
 * Errors
 *   libpshm_mpi asks MPI to return errors (MPI_ERRORS_RETURN on its own
 *   communicators and windows) and maps each MPI error class to a code
 *   (pshm_mpi_error): -ENOMEM, or one of the -PSHM_EMPI_* codes below, in
 *   their own range 1100-1119. pshm_mpi_strerror() and pshm_mpi_errname()
 *   describe every code, these and pshm.h's alike. The table is here, not in
 *   pshm.h, so that libpshm's ABI does not depend on an optional library.
 * Nodes and pseudo-nodes
 *   A node is a set of ranks that share memory (MPI_Comm_split_type with
 *   MPI_COMM_TYPE_SHARED: one machine). Nodes are numbered 0 .. nodes-1 in
 *   the order of their lowest rank. For testing on one machine, the ranks of
 *   each machine can be grouped into k pseudo-nodes (the environment
 *   variable PSHM_MPI_PSEUDO_NODES=k, or pshm_mpi_job_options.pseudo_nodes):
 *   pseudo-node j of a machine holds its ranks with machine-local rank r such
 *   that r * k / size == j (consecutive ranks). Pseudo-nodes share nothing
 *   through pshm (each has its own block names, below), so everything that
 *   crosses nodes really goes through MPI. It is a testing aid: it makes one
 *   machine behave as k nodes, at the cost of copies a real job avoids.
 * Names per node
 *   An object made on every node under the name NAME is the block NAME on
 *   each node when every node is a machine of its own. With pseudo-nodes
 *   (k > 1), node i's block is NAME.pn<i> (e.g. "field.pn1"), so the
 *   pseudo-nodes of one machine never share a block. pshm_mpi_node_name()
 *   gives the name; a local process opens exactly that name.
 * Lifetimes
 *   Objects made on the nodes default to the job's lifetime: PSHM_AUTO,
 *   held by every rank of the node that has it open, plus a watcher process
 *   (opt.watch) that removes the name the moment the last holder dies. So a
 *   job that ends, normally or killed (mpirun aborting it, SIGKILL, a node's
 *   ranks dying), leaves no block behind; a local process that opened the
 *   object by name holds it too, and the name goes when it closes.
 * Threads
 *   Handles are used by one thread at a time. libpshm_mpi makes MPI calls
 *   from the calling thread only; MPI_THREAD_SINGLE is enough if the
 *   application makes no MPI calls from other threads.
 * fork()
 *   A forked child must not use these handles (MPI does not survive fork in
 *   the child); it may use the pshm handles it inherited as pshm.h says.
 *   (Objects made with opt.watch fork a watcher process at create: it
 *   closes every descriptor and unmaps every shared mapping at once, and
 *   calls no MPI and no atexit handler.)
 * Progress
 *   One-sided access to another node completes when its MPI implementation
 *   lets it: with RDMA-capable transports (Open MPI's osc/rdma over shared
 *   memory or InfiniBand) without the target's help; with emulated RMA
 *   (osc/pt2pt over TCP) only while some rank of the target node is inside
 *   an MPI call (as MPI-3 11.7.2 permits). Ranks that wait for long outside
 *   MPI should wait in MPI (a barrier, pshm_mpi_darray_sync) or in slices.
 */
#ifndef PSHM_MPI_H
#define PSHM_MPI_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pshm.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PSHM_MPI_BUILDING) && defined(__GNUC__)
#define PSHM_MPI_API __attribute__((visibility("default")))
#else
#define PSHM_MPI_API
#endif

/* ======================================================================== */
/* Errors                                                                   */
/* ======================================================================== */

/*
 * X(NAME, value, message), as pshm.h's tables; values 1100-1119.
 * EMPI .. EMPI_PROC_FAILED: an MPI call failed, by error class (see
 * pshm_mpi_error). The others are libpshm_mpi's own conditions.
 */
#define PSHM_MPI_ERRNO_MAP(X)                                                   \
    X(EMPI, 1100, "an MPI call failed (MPI_ERR_OTHER, MPI_ERR_INTERN or an unmapped class)") \
    X(EMPI_COMM, 1101, "MPI: invalid communicator, group or rank")              \
    X(EMPI_ARG, 1102, "MPI: an argument was refused (count, datatype, tag, buffer or info)") \
    X(EMPI_RMA, 1103, "MPI: one-sided operation failed (window, range, synchronisation)") \
    X(EMPI_TRUNCATE, 1104, "MPI: message truncated")                            \
    X(EMPI_PROC_FAILED, 1105, "MPI: a process of the job failed")               \
    X(EMPI_NOTINIT, 1106, "MPI is not initialised, or already finalised")       \
    X(EMPI_MISMATCH, 1107, "ranks passed different arguments to a collective call") \
    X(EMPI_PSEUDO, 1108, "bad pseudo-node count (PSHM_MPI_PSEUDO_NODES or options): not 1..ranks per machine") \
    X(EMPI_BOUNDS, 1109, "hyperslab is outside the distributed array")          \
    X(EMPI_NOTLOCAL, 1110, "hyperslab is not entirely in this node's slab")     \
    X(EMPI_PROTO, 1111, "bridge: a malformed batch arrived (bad header, length or count)") \
    X(EMPI_SEQ, 1112, "bridge: a batch arrived out of sequence (gap or repeat)") \
    X(EMPI_ENDPOINT, 1113, "bridge: a node has no rank with the endpoint's node-local rank")

enum pshm_mpi_errno {
#define PSHM_MPI__ERR_ENUM(name, value, msg) PSHM_##name = value,
    PSHM_MPI_ERRNO_MAP(PSHM_MPI__ERR_ENUM)
#undef PSHM_MPI__ERR_ENUM
};

/*
 * pshm_mpi_strerror / pshm_mpi_errname: as pshm_strerror / pshm_errname, for
 * every code: the -PSHM_EMPI_* codes here, anything else through pshm.h's
 * functions. Static text, never allocate, thread-safe.
 */
PSHM_MPI_API const char *pshm_mpi_strerror(int code);
PSHM_MPI_API const char *pshm_mpi_errname(int code);

/*
 * pshm_mpi_error: the code for an MPI return value (MPI_SUCCESS gives 0).
 * By error class: MPI_ERR_NO_MEM -ENOMEM; COMM, GROUP, RANK -PSHM_EMPI_COMM;
 * COUNT, TYPE, TAG, BUFFER, ARG, INFO* -PSHM_EMPI_ARG; WIN, BASE, SIZE,
 * DISP, LOCKTYPE, ASSERT, RMA_* -PSHM_EMPI_RMA; TRUNCATE
 * -PSHM_EMPI_TRUNCATE; ULFM's MPIX_ERR_PROC_FAILED (where the MPI has it)
 * -PSHM_EMPI_PROC_FAILED; anything else -PSHM_EMPI. Thread-safe.
 */
PSHM_MPI_API int pshm_mpi_error(int mpi_err);

/* ======================================================================== */
/* The job: nodes of a communicator                                         */
/* ======================================================================== */

typedef struct pshm_mpi_job_options {
    size_t struct_size;   /* set by _init; do not touch */
    int pseudo_nodes;     /* pseudo-nodes per machine (testing aid, see above):
                             0 (default) reads PSHM_MPI_PSEUDO_NODES, unset means 1 */
} pshm_mpi_job_options;

static inline void pshm_mpi_job_options_init(pshm_mpi_job_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

typedef struct pshm_mpi_job pshm_mpi_job;

/*
 * pshm_mpi_job_open: collective over comm. Learns the node layout of comm
 * (machines, split into pseudo-nodes if asked) and duplicates comm, so that
 * libpshm_mpi's traffic never mixes with the application's. MPI must be
 * initialised. opt may be NULL.
 * Returns 0 and *out, or:
 *   -PSHM_EMPI_NOTINIT  MPI_Init has not been called, or MPI was finalised
 *   -PSHM_EMPI_PSEUDO   pseudo_nodes (or PSHM_MPI_PSEUDO_NODES) is not a
 *                       number from 1 to the ranks on the smallest machine
 *   -EINVAL             out NULL, comm MPI_COMM_NULL, or an intercommunicator
 *   -ENOMEM, an MPI error's code (pshm_mpi_error)
 * The handle is the caller's: pshm_mpi_job_close() it before MPI_Finalize.
 */
PSHM_MPI_API int pshm_mpi_job_open(MPI_Comm comm, const pshm_mpi_job_options *opt,
                                   pshm_mpi_job **out);

/* pshm_mpi_job_close: collective. Frees the communicators. Close every
 * darray and bridge made with the job first. NULL is a no-op. Returns 0 or
 * an MPI error's code (the handle is freed anyway). */
PSHM_MPI_API int pshm_mpi_job_close(pshm_mpi_job *job);

/*
 * Accessors (never fail; NULL handle: -1 or MPI_COMM_NULL).
 *   rank, size    this rank and the number of ranks in the job's communicator
 *   node, nodes   this rank's node and the number of nodes
 *   node_rank, node_size  this rank within its node, and the node's ranks
 *   pseudo_nodes  pseudo-nodes per machine in force (1: none)
 *   comm          the job's communicator (libpshm_mpi's duplicate: use it
 *                 only for collectives of your own if you must)
 *   node_comm     the ranks of this node (a communicator of the job's)
 */
PSHM_MPI_API int pshm_mpi_job_rank(const pshm_mpi_job *job);
PSHM_MPI_API int pshm_mpi_job_size(const pshm_mpi_job *job);
PSHM_MPI_API int pshm_mpi_job_node(const pshm_mpi_job *job);
PSHM_MPI_API int pshm_mpi_job_nodes(const pshm_mpi_job *job);
PSHM_MPI_API int pshm_mpi_job_node_rank(const pshm_mpi_job *job);
PSHM_MPI_API int pshm_mpi_job_node_size(const pshm_mpi_job *job);
PSHM_MPI_API int pshm_mpi_job_pseudo_nodes(const pshm_mpi_job *job);
PSHM_MPI_API MPI_Comm pshm_mpi_job_comm(const pshm_mpi_job *job);
PSHM_MPI_API MPI_Comm pshm_mpi_job_node_comm(const pshm_mpi_job *job);

/*
 * pshm_mpi_job_node_leader: the job rank of node `node`'s first rank (its
 * lowest), into *rank.
 * Returns 0 or -EINVAL (job NULL, node out of range, rank NULL).
 */
PSHM_MPI_API int pshm_mpi_job_node_leader(const pshm_mpi_job *job, int node, int *rank);

/*
 * pshm_mpi_node_name: the name on node `node` of a node object called
 * `name` (see "Names per node"), as (buf, cap, &len) text. Not collective.
 * Returns 0, -ERANGE (cap too small), -EINVAL (job or name NULL, node out of
 * range), -PSHM_ENAME_* (name is not a valid block name, or becomes too long
 * with the suffix).
 */
PSHM_MPI_API int pshm_mpi_node_name(const pshm_mpi_job *job, int node, const char *name,
                                    char *buf, size_t cap, size_t *len);

/* ======================================================================== */
/* Node sharing: one object per node, in one collective call                */
/* ======================================================================== */

/*
 * Options for the objects libpshm_mpi makes on the nodes: pshm_block_options'
 * fields first (same names, types and meaning), then its own. Two defaults
 * differ, because a node object belongs to the job: lifetime is PSHM_AUTO
 * and watch is 1 (see Lifetimes). Set lifetime = PSHM_PERSIST, watch = 0 for
 * objects that must outlive the job.
 */
typedef struct pshm_mpi_options {
    size_t struct_size;
    unsigned mode;            /* default 0600 */
    pshm_lifetime lifetime;   /* default PSHM_AUTO (pshm_block_options: PERSIST) */
    int readonly;             /* attachers (not the creating rank) map read-only */
    int open_existing;        /* an existing object of that name is attached, not -EEXIST */
    int prefault;
    int huge_pages;
    int sparse;
    int watch;                /* default 1 (pshm_block_options: 0); ignored for PERSIST */
    unsigned open_timeout_ms;
} pshm_mpi_options;

static inline void pshm_mpi_options_init(pshm_mpi_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->mode = 0600;
    o->lifetime = PSHM_AUTO;
    o->watch = 1;
    o->open_timeout_ms = 2000;
}

/*
 * pshm_mpi_block_create: collective. On every node, the node's first rank
 * creates the block pshm_mpi_node_name(name) of `size` bytes
 * (pshm_block_create with opt), then the node's other ranks open it; all
 * return together, each with its own pshm_block handle to its node's block.
 * name must not be NULL. opt may be NULL (pshm_mpi_options_init defaults).
 * Returns 0 and *out, or on every rank the same code: that of the failing
 * creating or opening rank (any code of pshm_block_create / pshm_block_open,
 * e.g. -EEXIST), -PSHM_EMPI_MISMATCH (different name, size or options),
 * -EINVAL (name or out NULL, size 0; job NULL: on that rank alone). On failure no block made by this call is left on any node.
 * The handle is an ordinary pshm_block (libpshm's): pshm_block_close() it,
 * not collectively; the job may be closed first.
 */
PSHM_MPI_API int pshm_mpi_block_create(pshm_mpi_job *job, const char *name, size_t size,
                                       const pshm_mpi_options *opt, pshm_block **out);

/*
 * pshm_mpi_array_create: the same for an array block (pshm_array_create
 * with descr, ndim, shape, fortran_order): every node gets its own array of
 * the whole shape. For one array split across the nodes, see darrays below.
 * Returns as pshm_mpi_block_create, plus pshm_array_create's codes.
 * The handle is an ordinary pshm_array: pshm_array_close() it.
 */
PSHM_MPI_API int pshm_mpi_array_create(pshm_mpi_job *job, const char *name, const char *descr,
                                       int ndim, const int64_t *shape, int fortran_order,
                                       const pshm_mpi_options *opt, pshm_array **out);

/* ======================================================================== */
/* Distributed arrays                                                       */
/* ======================================================================== */

/*
 * A distributed array ("darray") is one C-order n-dimensional array (ndim
 * >= 1) of shape[0] rows split along its first axis across the nodes: node i
 * of n holds rows [i * shape[0] / n, (i + 1) * shape[0] / n) (integer
 * division), its "slab", as a pshm array block named
 * pshm_mpi_node_name(name, i) with shape (rows, shape[1], ...). A local
 * process opens the slab by that name like any array
 * (numpy.load('/dev/shm/NAME', mmap_mode='r+')). Every rank of the job
 * exposes its node's slab in one MPI window (MPI_Win_create on the block's
 * memory), held in a passive-target epoch (MPI_Win_lock_all) for the
 * darray's life.
 *
 * Hyperslabs
 *   get and put take a hyperslab of the global array: start[d], count[d]
 *   and step[d] for each axis d (step NULL: all 1), selecting the elements
 *   start[d] + k * step[d] for k in [0, count[d]). buf holds the selected
 *   elements as a C-contiguous array of shape count (prod(count) * itemsize
 *   bytes). The part on this node is copied directly; the part on each other
 *   node is one MPI_Get / MPI_Put (a contiguous run of bytes where the part
 *   is contiguous in the slab, otherwise a derived datatype), split only to
 *   keep counts within an int (at most 1 GiB an operation). Remote accesses
 *   go to the ranks of the owning node in turn (origin rank mod node size),
 *   so no one rank serves everyone.
 *
 * Consistency (MPI-3's unified model; the slab is ordinary memory)
 *   get     returns when the data is in buf.
 *   put     returns when buf may be reused (MPI_Win_flush_local); the local
 *           part is already in the slab. The remote parts are complete at
 *           the target when pshm_mpi_darray_flush returns.
 *   flush   completes every pshm_mpi_darray_put this rank issued since
 *           its last flush or sync, at its targets (MPI_Win_flush to each
 *           of them; MPI_Win_flush_all past 8 distinct targets): another
 *           rank that then learns of it (a message, a barrier) and reads
 *           sees the data. Operations of your own on the window
 *           (pshm_mpi_darray_win) are yours to flush, or sync's.
 *   sync    collective: MPI_Win_flush_all on every rank, MPI_Win_sync, a barrier,
 *           MPI_Win_sync. Everything any rank wrote before its sync - puts
 *           and direct stores into its own node's slab (through the view or
 *           by a local process that finished before) - is visible to every
 *           get, view and local read made after the sync returns.
 *   Concurrent writes to the same element, or a write concurrent with a
 *   read, give undefined values for that element (MPI-3 11.7), never a
 *   crash; pshm does not lock elements. Element-wise atomicity is not
 *   promised.
 *
 * Threads: one thread at a time per darray. fork: see the top of the file.
 */
typedef struct pshm_mpi_darray pshm_mpi_darray;

/*
 * pshm_mpi_darray_create: collective. Make the slabs (one per node, the
 * node's first rank creates it, as pshm_mpi_array_create) and the window.
 * name NULL: a random "psm_..." name drawn by rank 0. ndim 1 ..
 * PSHM_ARRAY_MAXDIM; every shape[d] >= 0; any dtype pshm arrays take.
 * A node with no rows (shape[0] < nodes) gets an empty slab. opt->prefault
 * is always on here: each rank's mapping of its slab is what other nodes
 * read through (remote gets of 16 - 64 MiB from pages the owner had not
 * mapped took 1.15x - 1.55x as long on the development VM).
 * Returns 0 and *out, or on every rank: -EINVAL (ndim 0, shape NULL, out
 * NULL), -PSHM_EMPI_MISMATCH, any code of pshm_mpi_array_create, an MPI
 * error's code. On failure nothing is left on any node.
 * The handle is the caller's: pshm_mpi_darray_close() it (collective).
 */
PSHM_MPI_API int pshm_mpi_darray_create(pshm_mpi_job *job, const char *name, const char *descr,
                                        int ndim, const int64_t *shape,
                                        const pshm_mpi_options *opt, pshm_mpi_darray **out);

/* pshm_mpi_darray_close: collective (MPI_Win_free). Ends the epoch, frees
 * the window, closes the slab (an AUTO slab goes with its last holder).
 * NULL is a no-op. Returns 0 or the first error met (freed anyway). */
PSHM_MPI_API int pshm_mpi_darray_close(pshm_mpi_darray *a);

/*
 * pshm_mpi_darray_get / _put: read / write a hyperslab (see Hyperslabs).
 * Not collective. buf may be NULL only if some count is 0.
 * Returns 0, or:
 *   -EINVAL             a NULL argument, a step < 1
 *   -PSHM_EMPI_BOUNDS   a count < 0, or a selected index outside the array
 *   -EACCES             put into a slab this rank opened read-only
 *   -ENOMEM, an MPI error's code
 * A failed call may have moved part of the data.
 */
PSHM_MPI_API int pshm_mpi_darray_get(pshm_mpi_darray *a, const int64_t *start,
                                     const int64_t *count, const int64_t *step, void *buf);
PSHM_MPI_API int pshm_mpi_darray_put(pshm_mpi_darray *a, const int64_t *start,
                                     const int64_t *count, const int64_t *step,
                                     const void *buf);

/* pshm_mpi_darray_flush: complete this rank's puts at their targets (see
 * Consistency). Not collective. Returns 0 or an MPI error's code. */
PSHM_MPI_API int pshm_mpi_darray_flush(pshm_mpi_darray *a);

/* pshm_mpi_darray_sync: collective (see Consistency). Returns 0, an MPI
 * error's code. */
PSHM_MPI_API int pshm_mpi_darray_sync(pshm_mpi_darray *a);

/*
 * pshm_mpi_darray_view: zero-copy access to a hyperslab of this node's slab:
 * *ptr = the address of its first element in the slab, strides[d] (ndim
 * entries, bytes, may be NULL) = the distance between consecutive selected
 * elements along axis d (step[d] times the slab's stride). Costs the same
 * for any size: nothing is copied. Stores through it are direct stores into
 * the slab (see Consistency). Not collective.
 * Returns 0, -EINVAL, -PSHM_EMPI_BOUNDS, -PSHM_EMPI_NOTLOCAL (some selected
 * row is on another node; an empty selection is local).
 */
PSHM_MPI_API int pshm_mpi_darray_view(pshm_mpi_darray *a, const int64_t *start,
                                      const int64_t *count, const int64_t *step, void **ptr,
                                      int64_t *strides);

/*
 * pshm_mpi_darray_rows: the rows node `node` holds: [*first, *first + *rows).
 * Returns 0 or -EINVAL (node out of range, NULL pointers). Pure.
 */
PSHM_MPI_API int pshm_mpi_darray_rows(const pshm_mpi_darray *a, int node, int64_t *first,
                                      int64_t *rows);

/*
 * Accessors (never fail; NULL handle gives NULL / -1).
 *   local   this node's slab, a pshm_array owned by the darray (do not close
 *           it): its block name, data, strides
 *   ndim, shape  the global array (shape owned by the darray)
 *   dtype   the element type
 *   name    the darray's name (without a node suffix)
 *   win     the MPI window (for MPI calls of your own: e.g. MPI_Accumulate;
 *           displacement unit 1 byte, the slab's data at displacement 0)
 */
PSHM_MPI_API pshm_array *pshm_mpi_darray_local(const pshm_mpi_darray *a);
PSHM_MPI_API int pshm_mpi_darray_ndim(const pshm_mpi_darray *a);
PSHM_MPI_API const int64_t *pshm_mpi_darray_shape(const pshm_mpi_darray *a);
PSHM_MPI_API const pshm_dtype *pshm_mpi_darray_dtype(const pshm_mpi_darray *a);
PSHM_MPI_API const char *pshm_mpi_darray_name(const pshm_mpi_darray *a);
PSHM_MPI_API MPI_Win pshm_mpi_darray_win(const pshm_mpi_darray *a);

/* ======================================================================== */
/* Queues across nodes: bridges                                             */
/* ======================================================================== */

/*
 * A bridge forwards the messages of the queue `name` on one node (the
 * source) to the queue of the same name on one or more other nodes (the
 * destinations; fan-out: every destination gets every message). On each
 * node involved one rank, the endpoint (node-local rank opt.endpoint),
 * holds a handle on the node's queue: a consumer on the source node, a
 * producer on each destination. The source endpoint claims messages in
 * batches on its one handle (pshm_queue_peekmany), packs them into wire
 * batches (up to opt.batch_bytes) and sends each batch to every
 * destination with MPI_Isend; a destination endpoint receives with
 * MPI_Irecv (four batches posted ahead), commits each message into its queue
 * in order, and acknowledges the batch. Local processes on each node use the
 * queues as usual, by name.
 *
 * Wire: a batch is a 32-byte header (magic, flags, stream sequence number of
 * its first message, message count, byte count) and the messages, each as an
 * 8-byte length and its bytes padded to 8. A large message (at least
 * opt.large_bytes, 128 KiB by default) is only its length in the batch, with the top
 * bit set: its bytes follow the batch as an MPI message of their own,
 * received straight into a reservation of that length in the destination
 * queue and committed in stream order; several are in flight, as batches
 * are. By default the source sends it straight from its slot in the
 * source queue (claimed until acknowledged): the one copy is MPI's, made by
 * the network card where there is one. With opt.large_from_slot = 0, or
 * with release_early (which releases the slot at once), it is sent from a
 * copy in a send buffer of its batch. So a small message is copied three
 * times (into the batch, by MPI, out of the batch), a large one once (twice
 * from a copy). The copy pays only where MPI's copy is the kernel's (Open
 * MPI's CMA between pseudo-nodes of one machine) and the source ring is
 * not in cache, as in a backlog: from the slot the destination's core alone
 * then reads the source ring and writes its own; from a copy each side's
 * core copies half of the way, at the same time (on the development VM a
 * backlog of 256 KiB - 1 MiB messages moved 1.5x - 1.7x faster from a copy,
 * while a stream through rings that fit in cache moved as fast or faster
 * from the slot; see the README's MPI benchmark). A length that does not
 * match what arrives is -PSHM_EMPI_PROTO, and MPI never writes past the
 * reservation. Everything read from a batch is checked against the bytes
 * received (-PSHM_EMPI_PROTO), and the sequence number against the one
 * expected (-PSHM_EMPI_SEQ): shared bytes and network bytes are untrusted
 * input alike.
 *
 * Delivery across the whole path (producer -> source queue -> bridge ->
 * destination queues -> consumers)
 *   The source endpoint releases a message from the source queue only after
 *   every destination has committed it into its queue and acknowledged
 *   that (unless opt.release_early). So, on top of the local queues'
 *   guarantee (pshm.h, Queues: Participants and crashes):
 *   - While the job runs: every message committed to the source queue is
 *     committed exactly once to every destination queue, in the order the
 *     source endpoint received it (SPSC, BROADCAST: commit order; MPMC: each
 *     producer's order), and from there delivered as the destination queue
 *     delivers (at least once to a live consumer, or counted as a drop).
 *   - If the bridge dies (a rank killed, the job aborted): the messages the
 *     source endpoint had peeked and not released are still in the source
 *     queue, and the queue redelivers them to its next consumer (counted in
 *     its info.redeliveries) - typically the next job's bridge. Those that a
 *     destination had already committed then arrive twice there: at least
 *     once, duplicates at most the window in flight (opt.window messages),
 *     and never without a counted redelivery at the source. Nothing is lost
 *     unless the source queue itself goes away (a job-lifetime queue goes
 *     with the job, and its messages with it).
 *   The window: the source endpoint holds at most opt.window messages
 *   claimed and not yet released (messages in flight), all on its one
 *   consumer handle (one participant slot, SPSC or MPMC alike), in up to
 *   four batches in flight. So the bound on duplicates after a killed
 *   bridge is the window. BROADCAST has no batch claims: its window is one
 *   message (one round trip each: slow - prefer MPMC or SPSC, or
 *   release_early).
 *   opt.release_early = 1 releases each message as soon as it is copied into
 *   a batch (one handle, full batches, any mode): faster, but a bridge death
 *   loses up to four batches in flight - at most once for those.
 *   BROADCAST sources redeliver nothing after a death anyway (pshm.h), so a
 *   bridge from one is at most once whatever the option.
 * End of stream: when the source queue is shut down and drained
 * (-PSHM_ECLOSED), the source endpoint sends an end batch; each destination
 * endpoint closes its producer handle, which shuts its queue down if it was
 * the last producer (pshm.h, Closing). pshm_mpi_bridge_run then returns 0.
 */

typedef struct pshm_mpi_bridge_options {
    size_t struct_size;     /* set by _init; do not touch */
    int endpoint;           /* node-local rank of each node's endpoint, default 0 */
    size_t batch_bytes;     /* largest batch, default 256 KiB (at least one max_msg message) */
    unsigned window;        /* messages in flight: claimed from the source queue and not
                               yet acknowledged by every destination, default 1024 (0: 1).
                               The most duplicates a killed bridge can cause. A window
                               larger than the source ring holds is bounded by the ring */
    int release_early;      /* release at copy, not at acknowledgement (see above), default 0 */
    unsigned poll_ms;       /* longest sleep in a queue wait before MPI is polled again,
                               default 1 */
    size_t large_bytes;     /* messages at least this long travel on their own, received
                               straight into the destination queue (see Wire), default
                               128 KiB; 0: none. On the development VM, in a pipeline,
                               256 KiB - 1 MiB messages moved 1.2x - 2x faster so than
                               through batches, 64 KiB ones no faster */
    int large_from_slot;    /* 1 (default): send them straight from their source slots;
                               0: from a copy (see Wire; release_early implies 0) */
} pshm_mpi_bridge_options;

static inline void pshm_mpi_bridge_options_init(pshm_mpi_bridge_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->batch_bytes = (size_t)256 << 10;
    o->window = 1024;
    o->poll_ms = 1;
    o->large_bytes = (size_t)128 << 10;
    o->large_from_slot = 1;
}

typedef struct pshm_mpi_bridge pshm_mpi_bridge;

/*
 * pshm_mpi_bridge_create: collective. Set up a bridge from node src_node to
 * the ndst nodes dst_nodes[] (distinct, none equal to src_node). On each of
 * these nodes the endpoint opens the node's queue pshm_mpi_node_name(name),
 * creating it if it does not exist with qopt, as given (its lifetime too:
 * pshm_queue_options_init's default is PSHM_PERSIST; set lifetime PSHM_AUTO
 * and watch 1 for the job's lifetime). qopt NULL: pshm_queue_options_init
 * defaults but PSHM_AUTO and watch 1. qopt's open_existing is implied. So
 * when the call returns, the queue exists on
 * every node involved and local processes may open it. A destination queue
 * whose max_msg is smaller than the source's is -PSHM_ETOOBIG.
 * Returns 0 and *out on every rank (on ranks that are not endpoints the
 * handle is inert: run returns 0 at once), or on every rank: -EINVAL,
 * -PSHM_EMPI_MISMATCH, -PSHM_EMPI_ENDPOINT, -PSHM_ETOOBIG, the endpoint's
 * code of pshm_queue_create / pshm_queue_open (e.g. -PSHM_EROLE: the SPSC
 * consumer role is taken), an MPI error's code.
 * The handle is the caller's: pshm_mpi_bridge_close() it (not collective).
 */
PSHM_MPI_API int pshm_mpi_bridge_create(pshm_mpi_job *job, const char *name, int src_node,
                                        const int *dst_nodes, int ndst,
                                        const pshm_queue_options *qopt,
                                        const pshm_mpi_bridge_options *opt,
                                        pshm_mpi_bridge **out);

/*
 * pshm_mpi_bridge_run: forward until the end of stream (see above), then
 * return 0. pshm_mpi_bridge_timedrun: the same, but return -ETIMEDOUT at
 * the absolute CLOCK_MONOTONIC deadline (call again to go on; nothing is
 * lost). Both return at once with 0 on a rank that is no endpoint, and
 * with 0 after the end of stream was handled.
 * Errors: -PSHM_EMPI_PROTO, -PSHM_EMPI_SEQ (a destination; the bridge stops:
 * what was not acknowledged stays in the source queue), the codes of the
 * queue operations (-PSHM_EBADFORMAT, ...), an MPI error's code.
 */
PSHM_MPI_API int pshm_mpi_bridge_run(pshm_mpi_bridge *br);
PSHM_MPI_API int pshm_mpi_bridge_timedrun(pshm_mpi_bridge *br, const struct timespec *deadline);

/*
 * pshm_mpi_bridge_poll: one step that never waits: take the acknowledgements
 * that arrived, claim and send what the source queue holds (as one batch),
 * receive and commit what arrived at a destination. For an endpoint rank
 * that also produces or consumes in the same thread, as an MPI rank
 * usually is (no thread of its own for the bridge, MPI_THREAD_SINGLE is
 * enough): the producer calls it after every few messages it commits (each
 * call sends what is there, so after every message makes batches of one)
 * and whenever its ring is full; the consumer calls it whenever its queue is
 * empty. Returns 1 once the end of stream was handled (run's 0; at once on
 * a rank that is no endpoint), 0 if not yet, or run's errors. The same as
 * pshm_mpi_bridge_timedrun with a deadline already past, returning 1 for 0
 * and 0 for -ETIMEDOUT.
 */
PSHM_MPI_API int pshm_mpi_bridge_poll(pshm_mpi_bridge *br);

/* pshm_mpi_bridge_close: close the endpoint's queue handles (peeked
 * messages not acknowledged go back to the source queue, as for any
 * consumer that closes) and free the handle. Not collective; outstanding
 * MPI requests are cancelled. NULL is a no-op. Returns 0 or the first error. */
PSHM_MPI_API int pshm_mpi_bridge_close(pshm_mpi_bridge *br);

/* What a bridge endpoint has done (all zero on other ranks). */
typedef struct pshm_mpi_bridge_info {
    size_t struct_size;     /* set by _init */
    int role;               /* 0 none, 1 source endpoint, 2 destination endpoint */
    int done;               /* the end of stream was handled */
    uint64_t messages;      /* source: acknowledged by every destination; destination: committed */
    uint64_t bytes;         /* payload bytes of those */
    uint64_t batches;       /* batches sent (source) or received (destination) */
    uint64_t window_full;   /* source: times it stopped peeking because the window was full */
    uint64_t large;         /* messages sent (source) or received (destination) zero-copy */
} pshm_mpi_bridge_info;

static inline void pshm_mpi_bridge_info_init(pshm_mpi_bridge_info *i)
{
    memset(i, 0, sizeof *i);
    i->struct_size = sizeof *i;
}

/* pshm_mpi_bridge_fstat: fill *out. Returns 0 or -EINVAL. */
PSHM_MPI_API int pshm_mpi_bridge_fstat(const pshm_mpi_bridge *br, pshm_mpi_bridge_info *out);

#ifdef __cplusplus
}
#endif
#endif /* PSHM_MPI_H */
