// SPDX-License-Identifier: MIT
/*
 * mpi.c - pshm._mpi: libpshm_mpi under mpi4py (issue 13). The objects here
 * are thin: pshm/mpi.py turns numpy indexing into hyperslabs and buffers
 * into arrays. The communicator comes from mpi4py through its C API
 * (PyMPIComm_Get), so the job is mpi4py's MPI, initialised by it.
 *
 * Collective calls (Job(), Job.close, DArray(), DArray.close, sync, the
 * node array and bridge constructors) must be made by every rank in the
 * same order, as pshm_mpi.h says. A collective object that is garbage
 * collected without close() is leaked, not freed: freeing it would be a
 * collective call made at a time each rank's collector chooses (a hang).
 * The GIL is released around every libpshm_mpi call.
 */
#include "common.h"

#include <errno.h>
#include <mpi4py/mpi4py.h>

#include "pshm_mpi.h"

static PyObject *MPIError; /* pshm._mpi.Error(OSError): the -PSHM_EMPI_* codes */

/* A libpshm_mpi code as an exception: its own codes as Error (errno = the
 * positive code, strerror = pshm_mpi_strerror), a hyperslab out of bounds
 * as IndexError, anything else as libpshm's mapping (common.h). */
static PyObject *raise_code(int code, const char *what)
{
    if (code == -PSHM_EMPI_BOUNDS) {
        PyErr_Format(PyExc_IndexError, "%s: %s", what, pshm_mpi_strerror(code));
        return NULL;
    }
    if (code == -PSHM_EMPI_NOTLOCAL) {
        PyErr_Format(PyExc_ValueError, "%s: %s", what, pshm_mpi_strerror(code));
        return NULL;
    }
    if (code <= -1100 && code > -1120) {
        PyObject *args = Py_BuildValue("(iss)", -code, pshm_mpi_strerror(code), what);
        if (args) {
            PyErr_SetObject(MPIError, args);
            Py_DECREF(args);
        }
        return NULL;
    }
    return pshmpy_raise_str(code, what);
}

/* A sequence of ints of length n (n <= PSHM_ARRAY_MAXDIM) into out. */
static int int64s(PyObject *seq, int64_t *out, int n, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast)
        return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s: %d values expected", what, n);
        Py_DECREF(fast);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        out[i] = (int64_t)v;
    }
    Py_DECREF(fast);
    return 0;
}

/* A shape argument: 1 .. PSHM_ARRAY_MAXDIM ints into shape, *ndim. */
static int parse_shape(PyObject *o, int64_t *shape, int *ndim)
{
    Py_ssize_t n = PyObject_Length(o);
    if (n < 0)
        return -1;
    if (n < 1 || n > PSHM_ARRAY_MAXDIM) {
        PyErr_Format(PyExc_ValueError, "shape: 1 to %d axes", PSHM_ARRAY_MAXDIM);
        return -1;
    }
    *ndim = (int)n;
    return int64s(o, shape, *ndim, "shape");
}

/* tp_dealloc's end for every heap type here. */
static void free_self(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *shape_tuple(const int64_t *shape, int ndim)
{
    PyObject *t = PyTuple_New(ndim);
    for (int i = 0; t && i < ndim; i++) {
        PyObject *v = PyLong_FromLongLong((long long)shape[i]);
        if (!v) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

/* ================================================================== Job */

typedef struct {
    PyObject_HEAD
    pshm_mpi_job *job;
    PyObject *comm;     /* the mpi4py communicator it was made from */
    Py_ssize_t children; /* open darrays and bridges: close them first */
} JobObject;

static PyTypeObject *JobType, *NodeArrayType, *DArrayType, *BridgeType;

static int job_ok(JobObject *self)
{
    if (!self->job) {
        PyErr_SetString(PyExc_ValueError, "operation on a closed Job");
        return 0;
    }
    return 1;
}

static PyObject *job_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"comm", "pseudo_nodes", NULL};
    PyObject *comm;
    int pseudo = 0, rc;
    pshm_mpi_job_options o;
    pshm_mpi_job *job = NULL;
    MPI_Comm *c;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i:Job", kwlist, &comm, &pseudo))
        return NULL;
    c = PyMPIComm_Get(comm);
    if (!c)
        return NULL;
    pshm_mpi_job_options_init(&o);
    o.pseudo_nodes = pseudo;
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_job_open(*c, &o, &job);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, "Job");
    JobObject *self = (JobObject *)type->tp_alloc(type, 0);
    if (!self) {
        pshm_mpi_job_close(job); /* collective, and every rank got this far */
        return NULL;
    }
    self->job = job;
    Py_INCREF(comm);
    self->comm = comm;
    return (PyObject *)self;
}

static PyObject *job_close(JobObject *self, PyObject *unused)
{
    int rc;
    if (!self->job)
        Py_RETURN_NONE;
    if (self->children > 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Job.close: close its distributed arrays and bridges first");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_job_close(self->job);
    Py_END_ALLOW_THREADS
    self->job = NULL;
    if (rc != 0)
        return raise_code(rc, "Job.close");
    Py_RETURN_NONE;
}

static void job_dealloc(JobObject *self)
{
    /* Not closed: leaked (closing is collective; see the top). */
    Py_XDECREF(self->comm);
    free_self((PyObject *)self);
}

static PyObject *job_node_name(JobObject *self, PyObject *args)
{
    const char *name;
    int node = -1, rc;
    char buf[PSHM_NAME_MAX + 1];
    if (!PyArg_ParseTuple(args, "s|i:node_name", &name, &node) || !job_ok(self))
        return NULL;
    if (node < 0)
        node = pshm_mpi_job_node(self->job);
    rc = pshm_mpi_node_name(self->job, node, name, buf, sizeof buf, NULL);
    if (rc != 0)
        return raise_code(rc, name);
    return PyUnicode_FromString(buf);
}

static PyObject *job_leader(JobObject *self, PyObject *args)
{
    int node, rank, rc;
    if (!PyArg_ParseTuple(args, "i:node_leader", &node) || !job_ok(self))
        return NULL;
    rc = pshm_mpi_job_node_leader(self->job, node, &rank);
    if (rc != 0)
        return raise_code(rc, "node_leader");
    return PyLong_FromLong(rank);
}

#define JOB_INT(fn)                                                             \
    static PyObject *job_get_##fn(JobObject *self, void *c)                     \
    {                                                                           \
        if (!job_ok(self))                                                      \
            return NULL;                                                        \
        return PyLong_FromLong(pshm_mpi_job_##fn(self->job));                  \
    }
JOB_INT(rank)
JOB_INT(size)
JOB_INT(node)
JOB_INT(nodes)
JOB_INT(node_rank)
JOB_INT(node_size)
JOB_INT(pseudo_nodes)

static PyObject *job_get_closed(JobObject *self, void *c) { return PyBool_FromLong(!self->job); }
static PyObject *job_get_comm(JobObject *self, void *c)
{
    Py_INCREF(self->comm);
    return self->comm;
}

static PyMethodDef job_methods[] = {
    {"close", (PyCFunction)job_close, METH_NOARGS, "Collective: free the job's communicators."},
    {"node_name", (PyCFunction)job_node_name, METH_VARARGS,
     "node_name(name, node=-1): the block name of a node object on `node` (default: this one)."},
    {"node_leader", (PyCFunction)job_leader, METH_VARARGS,
     "node_leader(node): the job rank of the node's first rank."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef job_getset[] = {
    {"rank", (getter)job_get_rank, NULL, "This rank in the job.", NULL},
    {"size", (getter)job_get_size, NULL, "Ranks in the job.", NULL},
    {"node", (getter)job_get_node, NULL, "This rank's node.", NULL},
    {"nodes", (getter)job_get_nodes, NULL, "Nodes in the job.", NULL},
    {"node_rank", (getter)job_get_node_rank, NULL, "This rank within its node.", NULL},
    {"node_size", (getter)job_get_node_size, NULL, "Ranks on this node.", NULL},
    {"pseudo_nodes", (getter)job_get_pseudo_nodes, NULL, "Pseudo-nodes per machine (1: none).", NULL},
    {"closed", (getter)job_get_closed, NULL, "close() was called.", NULL},
    {"comm", (getter)job_get_comm, NULL, "The mpi4py communicator given.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot job_slots[] = {
    {Py_tp_new, job_new},
    {Py_tp_dealloc, job_dealloc},
    {Py_tp_methods, job_methods},
    {Py_tp_getset, job_getset},
    {Py_tp_doc, "Job(comm, pseudo_nodes=0): collective; the node layout of an mpi4py communicator."},
    {0, NULL},
};

static PyType_Spec job_spec = {"pshm._mpi.Job", sizeof(JobObject), 0, Py_TPFLAGS_DEFAULT, job_slots};

/* Options every node-collective create takes, from keywords. */
static void mpi_options(pshm_mpi_options *o, int persist, int open_existing)
{
    pshm_mpi_options_init(o);
    o->open_existing = open_existing;
    if (persist) {
        o->lifetime = PSHM_PERSIST;
        o->watch = 0;
    }
}

/* ============================================ buffers over shared memory */

/*
 * NodeArray (a node-shared array, pshm_mpi_array_create) and DArray (its
 * local slab) export memory through the buffer protocol and count the
 * exports: close() refuses while a view exists (BufferError), so a numpy
 * view never outlives the mapping.
 */
typedef struct {
    PyObject_HEAD
    pshm_array *arr;     /* NodeArray: owned */
    pshm_mpi_darray *da; /* DArray: owned */
    JobObject *job;
    Py_ssize_t exports;
    char *data;
    Py_ssize_t nbytes;
    int ndim;
    int64_t shape[PSHM_ARRAY_MAXDIM];
    char descr[32];
    char name[PSHM_NAME_MAX + 1];
} ArrObject;

static int arr_getbuffer(ArrObject *self, Py_buffer *view, int flags)
{
    if (!self->arr && !self->da) {
        PyErr_SetString(PyExc_ValueError, "operation on a closed array");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->nbytes, 0, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void arr_releasebuffer(ArrObject *self, Py_buffer *view) { self->exports--; }

static int arr_closable(ArrObject *self)
{
    if (self->exports > 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot close %s: %zd exported views still use its memory (del them first)",
                     self->name, self->exports);
        return 0;
    }
    return 1;
}

static void arr_fill(ArrObject *self, pshm_array *a)
{
    const pshm_dtype *dt = pshm_array_dtype(a);
    self->data = pshm_array_data(a);
    self->nbytes = (Py_ssize_t)pshm_array_nbytes(a);
    snprintf(self->descr, sizeof self->descr, "%s", dt->descr);
}

static PyObject *arr_get_shape(ArrObject *self, void *c) { return shape_tuple(self->shape, self->ndim); }
static PyObject *arr_get_descr(ArrObject *self, void *c) { return PyUnicode_FromString(self->descr); }
static PyObject *arr_get_name(ArrObject *self, void *c) { return PyUnicode_FromString(self->name); }
static PyObject *arr_get_exports(ArrObject *self, void *c) { return PyLong_FromSsize_t(self->exports); }
static PyObject *arr_get_closed(ArrObject *self, void *c)
{
    return PyBool_FromLong(!self->arr && !self->da);
}

/* ---- NodeArray ---- */

static PyObject *narr_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"job", "name", "descr", "shape", "persist", "open_existing", NULL};
    JobObject *job;
    const char *name, *descr;
    PyObject *shape_o;
    int persist = 0, existing = 0, rc, ndim;
    int64_t shape[PSHM_ARRAY_MAXDIM];
    pshm_mpi_options o;
    pshm_array *a = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!ssO|pp:NodeArray", kwlist, JobType, &job, &name,
                                     &descr, &shape_o, &persist, &existing) ||
        !job_ok(job))
        return NULL;
    if (parse_shape(shape_o, shape, &ndim) < 0)
        return NULL;
    mpi_options(&o, persist, existing);
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_array_create(job->job, name, descr, ndim, shape, 0, &o, &a);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, name);
    ArrObject *self = (ArrObject *)type->tp_alloc(type, 0);
    if (!self) {
        pshm_array_close(a);
        return NULL;
    }
    self->arr = a;
    Py_INCREF(job);
    self->job = job;
    self->ndim = ndim;
    memcpy(self->shape, shape, sizeof *shape * (size_t)ndim);
    arr_fill(self, a);
    pshm_mpi_node_name(job->job, pshm_mpi_job_node(job->job), name, self->name, sizeof self->name,
                       NULL);
    return (PyObject *)self;
}

static PyObject *narr_close(ArrObject *self, PyObject *unused)
{
    int rc;
    if (!self->arr)
        Py_RETURN_NONE;
    if (!arr_closable(self))
        return NULL;
    rc = pshm_array_close(self->arr);
    self->arr = NULL;
    if (rc != 0)
        return raise_code(rc, self->name);
    Py_RETURN_NONE;
}

static void narr_dealloc(ArrObject *self)
{
    if (self->arr)
        pshm_array_close(self->arr); /* not collective: a plain close */
    Py_XDECREF(self->job);
    free_self((PyObject *)self);
}

static PyMethodDef narr_methods[] = {
    {"close", (PyCFunction)narr_close, METH_NOARGS,
     "Close this rank's handle (not collective); BufferError while views exist."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef arr_getset[] = {
    {"shape", (getter)arr_get_shape, NULL, "The global shape.", NULL},
    {"descr", (getter)arr_get_descr, NULL, "The numpy dtype string.", NULL},
    {"name", (getter)arr_get_name, NULL, "This node's block name (NodeArray) or the darray's name.", NULL},
    {"exports", (getter)arr_get_exports, NULL, "Views exported and not yet released.", NULL},
    {"closed", (getter)arr_get_closed, NULL, "close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot narr_slots[] = {
    {Py_tp_new, narr_new},
    {Py_tp_dealloc, narr_dealloc},
    {Py_tp_methods, narr_methods},
    {Py_tp_getset, arr_getset},
    {Py_bf_getbuffer, arr_getbuffer},
    {Py_bf_releasebuffer, arr_releasebuffer},
    {Py_tp_doc, "NodeArray(job, name, descr, shape, persist=False, open_existing=False): "
                "collective; one array per node, shared by the node's ranks."},
    {0, NULL},
};

static PyType_Spec narr_spec = {"pshm._mpi.NodeArray", sizeof(ArrObject), 0, Py_TPFLAGS_DEFAULT,
                                narr_slots};

/* ---- DArray ---- */

static int da_ok(ArrObject *self)
{
    if (!self->da) {
        PyErr_SetString(PyExc_ValueError, "operation on a closed DArray");
        return 0;
    }
    return 1;
}

static PyObject *da_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"job", "name", "descr", "shape", "persist", NULL};
    JobObject *job;
    const char *name = NULL, *descr;
    PyObject *shape_o;
    int persist = 0, rc, ndim;
    int64_t shape[PSHM_ARRAY_MAXDIM];
    pshm_mpi_options o;
    pshm_mpi_darray *a = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!zsO|p:DArray", kwlist, JobType, &job, &name,
                                     &descr, &shape_o, &persist) ||
        !job_ok(job))
        return NULL;
    if (parse_shape(shape_o, shape, &ndim) < 0)
        return NULL;
    mpi_options(&o, persist, 0);
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_darray_create(job->job, name, descr, ndim, shape, &o, &a);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, name ? name : "DArray");
    ArrObject *self = (ArrObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL; /* the darray leaks: closing is collective */
    self->da = a;
    Py_INCREF(job);
    self->job = job;
    job->children++;
    self->ndim = ndim;
    memcpy(self->shape, shape, sizeof *shape * (size_t)ndim);
    arr_fill(self, pshm_mpi_darray_local(a));
    snprintf(self->name, sizeof self->name, "%s", pshm_mpi_darray_name(a));
    return (PyObject *)self;
}

static PyObject *da_close(ArrObject *self, PyObject *unused)
{
    int rc;
    if (!self->da)
        Py_RETURN_NONE;
    if (!arr_closable(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_darray_close(self->da);
    Py_END_ALLOW_THREADS
    self->da = NULL;
    self->job->children--;
    if (rc != 0)
        return raise_code(rc, self->name);
    Py_RETURN_NONE;
}

static void da_dealloc(ArrObject *self)
{
    /* Not closed: leaked (closing is collective; see the top). */
    Py_XDECREF(self->job);
    free_self((PyObject *)self);
}

/* get/put(start, count, step, buffer): buffer C-contiguous, exactly the
 * selection's bytes. */
static PyObject *da_xfer(ArrObject *self, PyObject *args, int put)
{
    PyObject *so, *co, *sto, *bo;
    int64_t start[PSHM_ARRAY_MAXDIM], count[PSHM_ARRAY_MAXDIM], step[PSHM_ARRAY_MAXDIM];
    Py_buffer buf;
    int rc;

    if (!PyArg_ParseTuple(args, "OOOO", &so, &co, &sto, &bo) || !da_ok(self))
        return NULL;
    if (int64s(so, start, self->ndim, "start") < 0 || int64s(co, count, self->ndim, "count") < 0 ||
        int64s(sto, step, self->ndim, "step") < 0)
        return NULL;
    if (PyObject_GetBuffer(bo, &buf, put ? PyBUF_C_CONTIGUOUS : (PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)) < 0)
        return NULL;
    int64_t want = (int64_t)pshm_mpi_darray_dtype(self->da)->itemsize;
    for (int d = 0; d < self->ndim; d++)
        want *= count[d] > 0 ? count[d] : 0;
    if ((int64_t)buf.len != want) {
        PyBuffer_Release(&buf);
        PyErr_Format(PyExc_ValueError, "buffer of %zd bytes for a selection of %lld", buf.len,
                     (long long)want);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = put ? pshm_mpi_darray_put(self->da, start, count, step, buf.buf)
             : pshm_mpi_darray_get(self->da, start, count, step, buf.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (rc != 0)
        return raise_code(rc, put ? "DArray.put" : "DArray.get");
    Py_RETURN_NONE;
}

static PyObject *da_get(ArrObject *self, PyObject *args) { return da_xfer(self, args, 0); }
static PyObject *da_put(ArrObject *self, PyObject *args) { return da_xfer(self, args, 1); }

/* A darray call that takes nothing but the handle, GIL released. */
static PyObject *da_call(ArrObject *self, int (*fn)(pshm_mpi_darray *), const char *what)
{
    int rc;
    if (!da_ok(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = fn(self->da);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, what);
    Py_RETURN_NONE;
}

static PyObject *da_flush(ArrObject *self, PyObject *unused)
{
    return da_call(self, pshm_mpi_darray_flush, "DArray.flush");
}

static PyObject *da_sync(ArrObject *self, PyObject *unused)
{
    return da_call(self, pshm_mpi_darray_sync, "DArray.sync");
}

static PyObject *da_rows(ArrObject *self, PyObject *args)
{
    int node = -1, rc;
    int64_t first, rows;
    if (!PyArg_ParseTuple(args, "|i:rows", &node) || !da_ok(self))
        return NULL;
    if (node < 0)
        node = pshm_mpi_job_node(self->job->job);
    rc = pshm_mpi_darray_rows(self->da, node, &first, &rows);
    if (rc != 0)
        return raise_code(rc, "DArray.rows");
    return Py_BuildValue("(LL)", (long long)first, (long long)rows);
}

static PyObject *da_get_block(ArrObject *self, void *c)
{
    if (!da_ok(self))
        return NULL;
    pshm_block *b = pshm_array_block(pshm_mpi_darray_local(self->da));
    return PyUnicode_FromString(pshm_block_name(b));
}

static PyMethodDef da_methods[] = {
    {"close", (PyCFunction)da_close, METH_NOARGS,
     "Collective: free the window and close the slab; BufferError while views exist."},
    {"get", (PyCFunction)da_get, METH_VARARGS,
     "get(start, count, step, buf): read a hyperslab into a C-contiguous writable buffer."},
    {"put", (PyCFunction)da_put, METH_VARARGS,
     "put(start, count, step, buf): write a hyperslab from a C-contiguous buffer."},
    {"flush", (PyCFunction)da_flush, METH_NOARGS, "Complete this rank's puts at their targets."},
    {"sync", (PyCFunction)da_sync, METH_NOARGS, "Collective: every earlier write visible to every later read."},
    {"rows", (PyCFunction)da_rows, METH_VARARGS, "rows(node=-1): (first, count) of the node's rows."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef da_getset[] = {
    {"shape", (getter)arr_get_shape, NULL, "The global shape.", NULL},
    {"descr", (getter)arr_get_descr, NULL, "The numpy dtype string.", NULL},
    {"name", (getter)arr_get_name, NULL, "The darray's name (no node suffix).", NULL},
    {"block_name", (getter)da_get_block, NULL, "This node's slab: the block local processes open.", NULL},
    {"exports", (getter)arr_get_exports, NULL, "Views of the slab exported and not yet released.", NULL},
    {"closed", (getter)arr_get_closed, NULL, "close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot da_slots[] = {
    {Py_tp_new, da_new},
    {Py_tp_dealloc, da_dealloc},
    {Py_tp_methods, da_methods},
    {Py_tp_getset, da_getset},
    {Py_bf_getbuffer, arr_getbuffer},
    {Py_bf_releasebuffer, arr_releasebuffer},
    {Py_tp_doc, "DArray(job, name, descr, shape, persist=False): collective; one array split by "
                "rows across the nodes. Its buffer is this node's slab."},
    {0, NULL},
};

static PyType_Spec da_spec = {"pshm._mpi.DArray", sizeof(ArrObject), 0, Py_TPFLAGS_DEFAULT, da_slots};

/* =============================================================== Bridge */

typedef struct {
    PyObject_HEAD
    pshm_mpi_bridge *br;
    JobObject *job;
} BridgeObject;

static PyObject *br_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"job", "name", "src", "dsts", "mode", "max_msg", "messages",
                             "persist", "release_early", "window", "batch_bytes",
                             "large_bytes", "large_from_slot", NULL};
    JobObject *job;
    const char *name, *mode = "mpmc";
    PyObject *dsts_o;
    int src, persist = 0, early = 0, rc, ndst;
    PyObject *from_slot = Py_None; /* None: the library's default */
    unsigned window = 0; /* 0: the library's default */
    Py_ssize_t max_msg = 4096, messages = 0, batch = 256 << 10, large = -1; /* -1: the default */
    int dsts[64];
    int64_t d64[64];
    pshm_queue_options q;
    pshm_mpi_bridge_options o;
    pshm_mpi_bridge *br = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!siO|snnppInnO:Bridge", kwlist, JobType,
                                     &job, &name, &src, &dsts_o, &mode, &max_msg, &messages,
                                     &persist, &early, &window, &batch, &large, &from_slot) ||
        !job_ok(job))
        return NULL;
    ndst = (int)PyObject_Length(dsts_o);
    if (ndst < 0)
        return NULL;
    if (ndst < 1 || ndst > 64) {
        PyErr_SetString(PyExc_ValueError, "dsts: 1 to 64 nodes");
        return NULL;
    }
    if (int64s(dsts_o, d64, ndst, "dsts") < 0)
        return NULL;
    for (int i = 0; i < ndst; i++)
        dsts[i] = (int)d64[i];
    pshm_queue_options_init(&q);
    if (strcmp(mode, "mpmc") == 0)
        q.queue_mode = PSHM_QUEUE_MPMC;
    else if (strcmp(mode, "spsc") == 0)
        q.queue_mode = PSHM_QUEUE_SPSC;
    else if (strcmp(mode, "broadcast") == 0)
        q.queue_mode = PSHM_QUEUE_BROADCAST;
    else {
        PyErr_SetString(PyExc_ValueError, "mode: 'mpmc', 'spsc' or 'broadcast'");
        return NULL;
    }
    if (max_msg < 1 || messages < 0 || batch < 1 || large < -1) {
        PyErr_SetString(PyExc_ValueError,
                        "max_msg and batch_bytes must be positive, messages and large_bytes not negative");
        return NULL;
    }
    q.max_msg = (size_t)max_msg;
    q.messages = (size_t)messages;
    if (!persist) {
        q.lifetime = PSHM_AUTO;
        q.watch = 1;
    }
    pshm_mpi_bridge_options_init(&o);
    o.release_early = early;
    if (window)
        o.window = window;
    o.batch_bytes = (size_t)batch;
    if (large >= 0)
        o.large_bytes = (size_t)large;
    if (from_slot != Py_None) {
        int f = PyObject_IsTrue(from_slot);
        if (f < 0)
            return NULL;
        o.large_from_slot = f;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_bridge_create(job->job, name, src, dsts, ndst, &q, &o, &br);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return raise_code(rc, name);
    BridgeObject *self = (BridgeObject *)type->tp_alloc(type, 0);
    if (!self) {
        pshm_mpi_bridge_close(br);
        return NULL;
    }
    self->br = br;
    Py_INCREF(job);
    self->job = job;
    job->children++;
    return (PyObject *)self;
}

static int br_ok(BridgeObject *self)
{
    if (!self->br) {
        PyErr_SetString(PyExc_ValueError, "operation on a closed Bridge");
        return 0;
    }
    return 1;
}

static int br_slice(void *ctx, const struct timespec *until)
{
    return pshm_mpi_bridge_timedrun((pshm_mpi_bridge *)ctx, until);
}

static PyObject *br_run(BridgeObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    pshmpy_deadline d;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:run", kwlist, &timeout) || !br_ok(self))
        return NULL;
    if (pshmpy_deadline_from(timeout, &d) < 0)
        return NULL;
    /* In slices with the GIL released, so Ctrl-C stops it (nothing is
     * lost: timedrun may be called again). */
    rc = pshmpy_wait(br_slice, self->br, &d);
    if (rc == PSHMPY_EXC)
        return NULL;
    if (rc != 0)
        return raise_code(rc, "Bridge.run");
    Py_RETURN_NONE;
}

static PyObject *br_poll(BridgeObject *self, PyObject *unused)
{
    int rc;
    if (!br_ok(self))
        return NULL;
    /* never waits, but a large message's copy can take a while */
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_bridge_poll(self->br);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return raise_code(rc, "Bridge.poll");
    return PyBool_FromLong(rc);
}

static PyObject *br_close(BridgeObject *self, PyObject *unused)
{
    int rc;
    if (!self->br)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    rc = pshm_mpi_bridge_close(self->br);
    Py_END_ALLOW_THREADS
    self->br = NULL;
    self->job->children--;
    if (rc != 0)
        return raise_code(rc, "Bridge.close");
    Py_RETURN_NONE;
}

static PyObject *br_info(BridgeObject *self, PyObject *unused)
{
    pshm_mpi_bridge_info i;
    if (!br_ok(self))
        return NULL;
    pshm_mpi_bridge_info_init(&i);
    pshm_mpi_bridge_fstat(self->br, &i);
    static const char *roles[] = {"none", "source", "destination"};
    return Py_BuildValue("{s:s,s:O,s:K,s:K,s:K,s:K,s:K}", "role", roles[i.role % 3], "done",
                         i.done ? Py_True : Py_False, "messages",
                         (unsigned long long)i.messages, "bytes", (unsigned long long)i.bytes,
                         "batches", (unsigned long long)i.batches, "window_full",
                         (unsigned long long)i.window_full, "large",
                         (unsigned long long)i.large);
}

static void br_dealloc(BridgeObject *self)
{
    if (self->br) { /* not collective: closing here is safe */
        pshm_mpi_bridge_close(self->br);
        self->job->children--;
    }
    Py_XDECREF(self->job);
    free_self((PyObject *)self);
}

static PyMethodDef br_methods[] = {
    {"run", (PyCFunction)(void (*)(void))br_run, METH_VARARGS | METH_KEYWORDS,
     "run(timeout=None): forward until the end of stream; TimeoutError at timeout (call again)."},
    {"poll", (PyCFunction)br_poll, METH_NOARGS,
     "poll() -> bool: one step that never waits; True once the end of stream was handled."},
    {"close", (PyCFunction)br_close, METH_NOARGS, "Close the endpoint's queue handles (not collective)."},
    {"info", (PyCFunction)br_info, METH_NOARGS, "What this endpoint has done, as a dict."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot br_slots[] = {
    {Py_tp_new, br_new},
    {Py_tp_dealloc, br_dealloc},
    {Py_tp_methods, br_methods},
    {Py_tp_doc, "Bridge(job, name, src, dsts, mode='mpmc', max_msg=4096, messages=0, persist=False, "
                "release_early=False, window=0, batch_bytes=262144, large_bytes=-1, "
                "large_from_slot=None): collective (window 0, large_bytes -1, large_from_slot "
                "None: the library's defaults)."},
    {0, NULL},
};

static PyType_Spec br_spec = {"pshm._mpi.Bridge", sizeof(BridgeObject), 0, Py_TPFLAGS_DEFAULT,
                              br_slots};

/* =============================================================== module */

static PyObject *mod_strerror(PyObject *m, PyObject *args)
{
    int code;
    if (!PyArg_ParseTuple(args, "i:strerror", &code))
        return NULL;
    return PyUnicode_FromString(pshm_mpi_strerror(code < 0 ? code : -code));
}

static PyObject *mod_errname(PyObject *m, PyObject *args)
{
    int code;
    if (!PyArg_ParseTuple(args, "i:errname", &code))
        return NULL;
    return PyUnicode_FromString(pshm_mpi_errname(code < 0 ? code : -code));
}

static PyMethodDef mod_methods[] = {
    {"strerror", mod_strerror, METH_VARARGS, "strerror(code): the text of a pshm or pshm_mpi code."},
    {"errname", mod_errname, METH_VARARGS, "errname(code): the name of a pshm or pshm_mpi code."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mpi_module = {PyModuleDef_HEAD_INIT, "pshm._mpi",
                                        "libpshm_mpi over mpi4py (see pshm.mpi).", -1, mod_methods,
                                        NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__mpi(void)
{
    PyObject *m;
    if (import_mpi4py() < 0)
        return NULL;
    m = PyModule_Create(&mpi_module);
    if (!m)
        return NULL;
    JobType = (PyTypeObject *)PyType_FromSpec(&job_spec);
    NodeArrayType = (PyTypeObject *)PyType_FromSpec(&narr_spec);
    DArrayType = (PyTypeObject *)PyType_FromSpec(&da_spec);
    BridgeType = (PyTypeObject *)PyType_FromSpec(&br_spec);
    MPIError = PyErr_NewExceptionWithDoc("pshm._mpi.Error",
                                         "A libpshm_mpi condition (-PSHM_EMPI_*): errno is the "
                                         "positive code, strerror its text.",
                                         PyExc_OSError, NULL);
    if (!JobType || !NodeArrayType || !DArrayType || !BridgeType || !MPIError ||
        PyModule_AddObjectRef(m, "Job", (PyObject *)JobType) < 0 ||
        PyModule_AddObjectRef(m, "NodeArray", (PyObject *)NodeArrayType) < 0 ||
        PyModule_AddObjectRef(m, "DArray", (PyObject *)DArrayType) < 0 ||
        PyModule_AddObjectRef(m, "Bridge", (PyObject *)BridgeType) < 0 ||
        PyModule_AddObjectRef(m, "Error", MPIError) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#define PSHMPY_MPI_CODE(name, value, msg)                                        \
    if (PyModule_AddIntConstant(m, #name, value) < 0) {                         \
        Py_DECREF(m);                                                           \
        return NULL;                                                            \
    }
    PSHM_MPI_ERRNO_MAP(PSHMPY_MPI_CODE)
#undef PSHMPY_MPI_CODE
    return m;
}
