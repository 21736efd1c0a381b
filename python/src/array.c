/* SPDX-License-Identifier: MIT */
/*
 * array.c - pshm._array: a handle on a pshm array block (a .npy image in
 * shared memory) that exports its elements as a buffer, for
 * pshm/arrays.py, which wraps it in a numpy array (the handle becomes the
 * array's base). numpy is never imported here.
 *
 * Arrays are made on Views: small objects that hold the Handle and export
 * its elements. numpy releases a buffer export at once and keeps the
 * exporting object as the array's base, so the Handle counts its live Views
 * (not buffer exports): the mapping lives as long as any array made from it,
 * and close() refuses with BufferError while one exists, as mmap.close()
 * does. A view never outlives its memory.
 */
#include "common.h"

#include <errno.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    pshm_array *a;
    PyObject *name;
    Py_ssize_t exports; /* Views alive */
    int readonly;
} ArrayObject;

typedef struct {
    PyObject_HEAD
    ArrayObject *owner;
} ViewObject;

typedef struct {
    PyTypeObject *view_type;
} module_state;

static int is_open(ArrayObject *self)
{
    if (self->a)
        return 0;
    PyErr_Format(PyExc_ValueError, "array '%U' is closed", self->name);
    return -1;
}

static ArrayObject *wrap(PyTypeObject *type, pshm_array *a, int readonly)
{
    ArrayObject *self = (ArrayObject *)type->tp_alloc(type, 0);

    if (!self) {
        pshm_array_close(a);
        return NULL;
    }
    self->a = a;
    self->readonly = readonly;
    self->name = PyUnicode_FromString(pshm_block_name(pshm_array_block(a)));
    if (!self->name) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

/* Handle(name, descr, shape, fortran=False, lifetime=0, exist_ok=False,
 * mode=0o600): create (name None: a random one). */
static PyObject *Array_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "descr", "shape", "fortran", "lifetime", "exist_ok",
                             "mode", NULL};
    PyObject *name, *shape, *seq;
    const char *descr;
    int fortran = 0, lifetime = 0, exist_ok = 0, r;
    unsigned mode = 0600;
    int64_t dims[PSHM_ARRAY_MAXDIM];
    char cname[PSHM_NAME_MAX + 2];
    pshm_block_options opt;
    pshm_array *a = NULL;
    Py_ssize_t ndim;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "OsO|pipI:Handle", kwlist, &name, &descr, &shape,
                                     &fortran, &lifetime, &exist_ok, &mode))
        return NULL;
    if (name != Py_None && pshmpy_name(name, cname, sizeof cname) < 0)
        return NULL;
    if (lifetime < PSHM_PERSIST || lifetime > PSHM_OWNED) {
        PyErr_Format(PyExc_ValueError, "unknown lifetime %d", lifetime);
        return NULL;
    }
    seq = PySequence_Fast(shape, "shape must be a sequence of ints");
    if (!seq)
        return NULL;
    ndim = PySequence_Fast_GET_SIZE(seq);
    if (ndim > PSHM_ARRAY_MAXDIM) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "an array has at most %d dimensions", PSHM_ARRAY_MAXDIM);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < ndim; i++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));

        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
        dims[i] = v;
    }
    Py_DECREF(seq);
    pshm_block_options_init(&opt);
    opt.lifetime = (pshm_lifetime)lifetime;
    opt.mode = mode;
    opt.open_existing = exist_ok;
    Py_BEGIN_ALLOW_THREADS
    r = pshm_array_create(name == Py_None ? NULL : cname, descr, (int)ndim, dims, fortran, &opt, &a);
    Py_END_ALLOW_THREADS
    if (r < 0) {
        if (r == -PSHM_EARRAY_MISMATCH)
            return PyErr_Format(PyExc_FileExistsError,
                                "array '%U' exists with another dtype, shape or order", name);
        return pshmpy_raise(r, name == Py_None ? NULL : name);
    }
    return (PyObject *)wrap(type, a, 0);
}

/* open(name, readonly=False) -> Handle */
static PyObject *mod_open(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "readonly", NULL};
    PyObject *name, *type, *res;
    int readonly = 0, r;
    char cname[PSHM_NAME_MAX + 2];
    pshm_block_options opt;
    pshm_array *a = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:open", kwlist, &name, &readonly))
        return NULL;
    if (pshmpy_name(name, cname, sizeof cname) < 0)
        return NULL;
    pshm_block_options_init(&opt);
    opt.readonly = readonly;
    Py_BEGIN_ALLOW_THREADS
    r = pshm_array_open(cname, &opt, &a);
    Py_END_ALLOW_THREADS
    if (r < 0) {
        if (r == -PSHM_EARRAY_MAGIC)
            return PyErr_Format(PyExc_ValueError, "'%U' is not an array block (%s)", name,
                                pshm_strerror(r));
        return pshmpy_raise(r, name);
    }
    type = PyObject_GetAttrString(m, "Handle");
    if (!type) {
        pshm_array_close(a);
        return NULL;
    }
    res = (PyObject *)wrap((PyTypeObject *)type, a, readonly);
    Py_DECREF(type);
    return res;
}

static void Array_dealloc(ArrayObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    pshm_array_close(self->a);
    Py_XDECREF(self->name);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* view() -> View: the elements as a buffer, counted while alive. */
static PyObject *Array_view(ArrayObject *self, PyObject *unused)
{
    module_state *st = PyType_GetModuleState(Py_TYPE(self));
    ViewObject *v;

    (void)unused;
    if (is_open(self) < 0)
        return NULL;
    v = PyObject_New(ViewObject, st->view_type);
    if (!v)
        return NULL;
    v->owner = (ArrayObject *)Py_NewRef(self);
    self->exports++;
    return (PyObject *)v;
}

static int View_getbuffer(ViewObject *self, Py_buffer *view, int flags)
{
    ArrayObject *a = self->owner;

    if (is_open(a) < 0)
        return -1;
    return PyBuffer_FillInfo(view, (PyObject *)self, pshm_array_data(a->a),
                             (Py_ssize_t)pshm_array_nbytes(a->a), a->readonly, flags);
}

static void View_dealloc(ViewObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    self->owner->exports--;
    Py_DECREF(self->owner);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static PyObject *View_get_handle(ViewObject *self, void *unused)
{
    (void)unused;
    return Py_NewRef(self->owner);
}

static PyGetSetDef View_getset[] = {
    {"handle", (getter)View_get_handle, NULL, "the array block's Handle", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot View_slots[] = {
    {Py_bf_getbuffer, View_getbuffer},
    {Py_tp_dealloc, View_dealloc},
    {Py_tp_getset, View_getset},
    {Py_tp_doc, "The elements of an array block as a buffer (internal)."},
    {0, NULL},
};

static PyType_Spec View_spec = {
    .name = "pshm._array.View",
    .basicsize = sizeof(ViewObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = View_slots,
};

static PyObject *Array_close(ArrayObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (self->exports > 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot close array '%U': %zd view(s) of it still exist", self->name,
                     self->exports);
        return NULL;
    }
    r = pshm_array_close(self->a);
    self->a = NULL;
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Array_unlink(ArrayObject *self, PyObject *unused)
{
    char cname[PSHM_NAME_MAX + 2];
    int r;

    (void)unused;
    if (self->a) {
        r = pshm_block_unlink(pshm_array_block(self->a));
    } else {
        if (pshmpy_name(self->name, cname, sizeof cname) < 0)
            return NULL;
        r = pshm_unlink(cname);
    }
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Array_get_name(ArrayObject *self, void *unused)
{
    (void)unused;
    return Py_NewRef(self->name);
}

static PyObject *Array_get_closed(ArrayObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(self->a == NULL);
}

static PyObject *Array_get_readonly(ArrayObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(self->readonly);
}

/* geometry -> (descr, shape, fortran_order, nbytes, lifetime) */
static PyObject *Array_geometry(ArrayObject *self, PyObject *unused)
{
    PyObject *shape;
    int ndim;

    (void)unused;
    if (is_open(self) < 0)
        return NULL;
    ndim = pshm_array_ndim(self->a);
    shape = PyTuple_New(ndim);
    if (!shape)
        return NULL;
    for (int i = 0; i < ndim; i++) {
        PyObject *v = PyLong_FromLongLong(pshm_array_shape(self->a)[i]);

        if (!v) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, i, v);
    }
    return Py_BuildValue("(sNinz)", pshm_array_descr(self->a), shape,
                         pshm_array_fortran_order(self->a), (Py_ssize_t)pshm_array_nbytes(self->a),
                         pshm_lifetime_name(pshm_block_lifetime(pshm_array_block(self->a))));
}

static PyObject *Array_repr(ArrayObject *self)
{
    return PyUnicode_FromFormat("<pshm array block '%U'%s>", self->name,
                                self->a ? "" : " (closed)");
}

static PyMethodDef Array_methods[] = {
    {"close", (PyCFunction)Array_close, METH_NOARGS,
     "close(): unmap (BufferError while numpy arrays or memoryviews use it)."},
    {"unlink", (PyCFunction)Array_unlink, METH_NOARGS, "unlink(): remove the block's name."},
    {"view", (PyCFunction)Array_view, METH_NOARGS,
     "view() -> View: the elements as a buffer; the handle stays open while it lives."},
    {"geometry", (PyCFunction)Array_geometry, METH_NOARGS,
     "geometry() -> (descr, shape, fortran_order, nbytes, lifetime)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Array_getset[] = {
    {"name", (getter)Array_get_name, NULL, "the block's name", NULL},
    {"closed", (getter)Array_get_closed, NULL, "True after close()", NULL},
    {"readonly", (getter)Array_get_readonly, NULL, "True if mapped read-only", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Array_slots[] = {
    {Py_tp_new, Array_new},
    {Py_tp_dealloc, Array_dealloc},
    {Py_tp_methods, Array_methods},
    {Py_tp_getset, Array_getset},
    {Py_tp_repr, Array_repr},
    {Py_tp_doc, "A pshm array block: its elements as a buffer (internal: see pshm.arrays; "
                "numpy arrays made by pshm have it as their base)."},
    {0, NULL},
};

static PyType_Spec Array_spec = {
    .name = "pshm._array.Handle",
    .basicsize = sizeof(ArrayObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Array_slots,
};

static int array_exec(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    PyObject *t = PyType_FromModuleAndSpec(m, &Array_spec, NULL);

    if (!t || PyModule_AddObject(m, "Handle", t) < 0) {
        Py_XDECREF(t);
        return -1;
    }
    st->view_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &View_spec, NULL);
    if (!st->view_type || PyModule_AddObjectRef(m, "View", (PyObject *)st->view_type) < 0)
        return -1;
    return PyModule_AddIntConstant(m, "MAXDIM", PSHM_ARRAY_MAXDIM);
}

static int array_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *st = PyModule_GetState(m);

    Py_VISIT(st->view_type);
    return 0;
}

static int array_clear(PyObject *m)
{
    module_state *st = PyModule_GetState(m);

    Py_CLEAR(st->view_type);
    return 0;
}

static PyMethodDef module_methods[] = {
    {"open", (PyCFunction)(void (*)(void))mod_open, METH_VARARGS | METH_KEYWORDS,
     "open(name, readonly=False) -> Handle on an existing array block."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot array_slots[] = {
    {Py_mod_exec, array_exec},
    {0, NULL},
};

static struct PyModuleDef array_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pshm._array",
    .m_doc = "pshm array blocks as buffers (internal; see pshm.arrays).",
    .m_size = sizeof(module_state),
    .m_methods = module_methods,
    .m_slots = array_slots,
    .m_traverse = array_traverse,
    .m_clear = array_clear,
};

PyMODINIT_FUNC PyInit__array(void)
{
    return PyModuleDef_Init(&array_module);
}
