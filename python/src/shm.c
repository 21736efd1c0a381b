// SPDX-License-Identifier: MIT
/*
 * shm.c - pshm._shm: the SharedMemory core, ShareableList's hot paths and
 * lifetime groups (issue 10). Multi-phase init; the types are heap types
 * kept in the module state.
 */
#include "common.h"

#include <errno.h>
#include <structmember.h>

typedef struct shm_state {
    PyObject *block_type;
    PyObject *list_type;
    PyObject *struct_error; /* struct.error: what the stdlib raises for an int out of range */
} shm_state;

static shm_state *state_of(PyObject *mod)
{
    return (shm_state *)PyModule_GetState(mod);
}

/* ================================================================ Block */

/*
 * A mapped block. It exports its memory through the buffer protocol and
 * counts the exports: close() with exports left only marks it closed, and
 * the last release unmaps (numpy#18294: a view that outlives close() stays
 * valid instead of pointing at unmapped memory).
 */
typedef struct {
    PyObject_HEAD
    pshm_block *b;
    Py_ssize_t exports;
    int closing;       /* close() was called while exports > 0 */
    PyObject *name;    /* str, without the leading slash; kept after close */
    Py_ssize_t size;
    PyObject *weakrefs;
} BlockObject;

static int block_end(BlockObject *self)
{
    pshm_block *b = self->b;
    int r;

    self->b = NULL;
    self->closing = 0;
    if (!b)
        return 0;
    Py_BEGIN_ALLOW_THREADS
    r = pshm_block_close(b);
    Py_END_ALLOW_THREADS
    return r;
}

static PyObject *block_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "mode", "size", "lifetime", "readonly", "watch", NULL};
    char nm[PSHM_NAME_MAX + 3];
    PyObject *name_obj;
    int mode = 0, lifetime = PSHM_PERSIST, readonly = 0, watch = 0, r;
    Py_ssize_t size = 0;
    pshm_block_options o;
    pshm_block *b = NULL;
    BlockObject *self;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|inipp:Block", kwlist, &name_obj, &mode,
                                     &size, &lifetime, &readonly, &watch))
        return NULL;
    if (pshmpy_name(name_obj, nm, sizeof nm) < 0)
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "'size' must be a positive integer");
        return NULL;
    }
    pshm_block_options_init(&o);
    o.lifetime = (pshm_lifetime)lifetime;
    o.readonly = readonly;
    o.watch = watch;
    o.open_existing = mode == 2;
    Py_BEGIN_ALLOW_THREADS
    if (mode == 0 || (mode == 2 && size == 0))
        r = pshm_block_open(nm, &o, &b);
    else
        r = pshm_block_create(nm, (size_t)size, &o, &b);
    Py_END_ALLOW_THREADS
    if (r != 0)
        return pshmpy_raise(r, name_obj);
    self = (BlockObject *)type->tp_alloc(type, 0);
    if (!self)
        goto fail;
    self->b = b;
    self->size = (Py_ssize_t)pshm_block_size(b);
    self->name = PyUnicode_DecodeFSDefault(pshm_block_name(b));
    if (!self->name) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
fail:
    if (mode != 0 && pshm_block_created(b))
        (void)pshm_block_unlink(b);
    (void)pshm_block_close(b);
    return NULL;
}

static void block_dealloc(BlockObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    (void)block_end(self);
    Py_CLEAR(self->name);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int block_traverse(BlockObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int block_getbuffer(BlockObject *self, Py_buffer *view, int flags)
{
    if (!self->b || self->closing) {
        PyErr_SetString(PyExc_ValueError, "operation on a closed shared memory block");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, pshm_block_data(self->b), self->size,
                          pshm_block_readonly(self->b), flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void block_releasebuffer(BlockObject *self, Py_buffer *view)
{
    if (--self->exports == 0 && self->closing)
        (void)block_end(self);
}

PyDoc_STRVAR(block_close_doc, "close()\n--\n\n"
             "Release this handle. The mapping lasts until the last buffer exported\n"
             "from it (memoryview, numpy array) is released; never raises BufferError.");

static PyObject *block_close(BlockObject *self, PyObject *unused)
{
    int r;

    if (self->exports > 0) {
        self->closing = 1;
        Py_RETURN_NONE;
    }
    r = block_end(self);
    if (r != 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(block_unlink_doc, "unlink()\n--\n\n"
             "Remove the block's name (only if it still names this block while open).");

static PyObject *block_unlink(BlockObject *self, PyObject *unused)
{
    int r;

    if (self->b && !self->closing)
        r = pshm_block_unlink(self->b);
    else
        r = pshm_unlink(PyUnicode_AsUTF8(self->name));
    if (r != 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *block_get_name(BlockObject *self, void *c) { return Py_NewRef(self->name); }
static PyObject *block_get_size(BlockObject *self, void *c) { return PyLong_FromSsize_t(self->size); }
static PyObject *block_get_closed(BlockObject *self, void *c)
{
    return PyBool_FromLong(!self->b || self->closing);
}
static PyObject *block_get_exports(BlockObject *self, void *c) { return PyLong_FromSsize_t(self->exports); }

static int block_open_check(BlockObject *self)
{
    if (!self->b || self->closing) {
        PyErr_SetString(PyExc_ValueError, "operation on a closed shared memory block");
        return -1;
    }
    return 0;
}

static PyObject *block_get_addr(BlockObject *self, void *c)
{
    if (block_open_check(self) < 0)
        return NULL;
    return PyLong_FromVoidPtr(pshm_block_data(self->b));
}
static PyObject *block_get_fd(BlockObject *self, void *c)
{
    return PyLong_FromLong(self->b ? pshm_block_fd(self->b) : -1);
}
static PyObject *block_get_created(BlockObject *self, void *c)
{
    return PyBool_FromLong(self->b ? pshm_block_created(self->b) : 0);
}
static PyObject *block_get_lifetime(BlockObject *self, void *c)
{
    if (block_open_check(self) < 0)
        return NULL;
    return PyUnicode_FromString(pshm_lifetime_name(pshm_block_lifetime(self->b)));
}

static PyMethodDef block_methods[] = {
    {"close", (PyCFunction)block_close, METH_NOARGS, block_close_doc},
    {"unlink", (PyCFunction)block_unlink, METH_NOARGS, block_unlink_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef block_getset[] = {
    {"name", (getter)block_get_name, NULL, "The name, without a leading slash.", NULL},
    {"size", (getter)block_get_size, NULL, "Size in bytes.", NULL},
    {"closed", (getter)block_get_closed, NULL, "True once close() was called.", NULL},
    {"exports", (getter)block_get_exports, NULL, "Buffers exported and not yet released.", NULL},
    {"addr", (getter)block_get_addr, NULL, "Address of the mapping in this process.", NULL},
    {"fd", (getter)block_get_fd, NULL, "The descriptor of the object (-1 once closed).", NULL},
    {"created", (getter)block_get_created, NULL, "True if this handle created the block.", NULL},
    {"lifetime", (getter)block_get_lifetime, NULL, "'persist', 'auto', 'owned' or 'group'.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef block_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BlockObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(block_doc, "Block(name, mode=0, size=0, lifetime=0, readonly=False, watch=False)\n--\n\n"
             "A mapped pshm block (the core of pshm.SharedMemory). mode: 0 open,\n"
             "1 create, 2 create or open. lifetime: LIFETIME_* constants.");

static PyType_Slot block_slots[] = {
    {Py_tp_new, block_new},
    {Py_tp_dealloc, block_dealloc},
    {Py_tp_traverse, block_traverse},
    {Py_tp_methods, block_methods},
    {Py_tp_getset, block_getset},
    {Py_tp_members, block_members},
    {Py_tp_doc, (void *)block_doc},
    {Py_bf_getbuffer, block_getbuffer},
    {Py_bf_releasebuffer, block_releasebuffer},
    {0, NULL},
};

static PyType_Spec block_spec = {
    .name = "pshm._shm.Block",
    .basicsize = sizeof(BlockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = block_slots,
};

/* ================================================================= List */

/*
 * The hot paths of pshm.ShareableList (a Python subclass adds the stdlib's
 * attributes): item get and set, len, count, index, format, over list.c.
 */
typedef struct {
    PyObject_HEAD
    pshm_list *l;
    PyObject *weakrefs;
    PyObject *dict;
} ListObject;

static struct PyModuleDef shm_module;

static shm_state *state_by_type(PyTypeObject *tp)
{
    PyObject *mod = PyType_GetModuleByDef(tp, &shm_module);
    return mod ? state_of(mod) : NULL;
}

static int list_check(ListObject *self)
{
    if (!self->l) {
        PyErr_SetString(PyExc_ValueError, "ShareableList is not attached");
        return -1;
    }
    return 0;
}

static PyObject *value_to_py(const pshm_value *v)
{
    switch (v->type) {
    case PSHM_NONE: Py_RETURN_NONE;
    case PSHM_INT: return PyLong_FromLongLong(v->i);
    case PSHM_FLOAT: return PyFloat_FromDouble(v->f);
    case PSHM_BOOL: return PyBool_FromLong(v->b);
    case PSHM_STR: return PyUnicode_DecodeUTF8(v->s.ptr, (Py_ssize_t)v->s.len, "strict");
    case PSHM_BYTES: return PyBytes_FromStringAndSize(v->s.ptr, (Py_ssize_t)v->s.len);
    }
    PyErr_SetString(PyExc_ValueError, "unknown ShareableList item type");
    return NULL;
}

/*
 * A Python value as a pshm_value, with the stdlib's rules and exceptions:
 * int, float, bool, None by exact type (others: KeyError, as the stdlib's
 * _types_mapping lookup), str and bytes (subclasses too when `loose`); an
 * int outside int64 is struct.error. Returns 1 and *out, 0 if the type is
 * not storable (exception set), -1 on other errors.
 */
static int py_to_value(PyObject *o, pshm_value *out, int loose, PyTypeObject *tp)
{
    memset(out, 0, sizeof *out);
    if (o == Py_None) {
        out->type = PSHM_NONE;
        return 1;
    }
    if (PyBool_Check(o)) {
        out->type = PSHM_BOOL;
        out->b = o == Py_True;
        return 1;
    }
    if (PyLong_CheckExact(o)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) {
            shm_state *st = state_by_type(tp);
            if (!st)
                return -1;
            PyErr_SetString(st->struct_error,
                            "'q' format requires -9223372036854775808 <= number <= "
                            "9223372036854775807");
            return -1;
        }
        if (v == -1 && PyErr_Occurred())
            return -1;
        out->type = PSHM_INT;
        out->i = v;
        return 1;
    }
    if (PyFloat_CheckExact(o)) {
        out->type = PSHM_FLOAT;
        out->f = PyFloat_AS_DOUBLE(o);
        return 1;
    }
    if (loose ? PyUnicode_Check(o) : PyUnicode_CheckExact(o)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s)
            return -1;
        out->type = PSHM_STR;
        out->s.ptr = s;
        out->s.len = (size_t)n;
        return 1;
    }
    if (loose ? PyBytes_Check(o) : PyBytes_CheckExact(o)) {
        out->type = PSHM_BYTES;
        out->s.ptr = PyBytes_AS_STRING(o);
        out->s.len = (size_t)PyBytes_GET_SIZE(o);
        return 1;
    }
    PyErr_SetObject(PyExc_KeyError, (PyObject *)Py_TYPE(o));
    return 0;
}

static PyObject *list_name(ListObject *self)
{
    return PyUnicode_DecodeFSDefault(pshm_block_name(pshm_list_block(self->l)));
}

static PyObject *list_raise(ListObject *self, int r)
{
    PyObject *n = self->l && pshm_list_block(self->l) ? list_name(self) : NULL;

    if (self->l && !n)
        return NULL;
    pshmpy_raise(r, n);
    Py_XDECREF(n);
    return NULL;
}

PyDoc_STRVAR(list_create_doc, "_create(name, items, lifetime, watch=False)\n--\n\n"
             "Create the list block (name None: a random name) holding items.");

static PyObject *list_create(ListObject *self, PyObject *args)
{
    PyObject *name_obj, *seq, *fast = NULL;
    char nm[PSHM_NAME_MAX + 3];
    int lifetime, watch = 0, r, ok = 1;
    pshm_block_options o;
    pshm_value *vals = NULL;
    Py_ssize_t n, i;
    pshm_list *l = NULL;

    if (!PyArg_ParseTuple(args, "OOi|p", &name_obj, &seq, &lifetime, &watch))
        return NULL;
    if (self->l) {
        PyErr_SetString(PyExc_ValueError, "ShareableList already attached");
        return NULL;
    }
    if (name_obj != Py_None && pshmpy_name(name_obj, nm, sizeof nm) < 0)
        return NULL;
    fast = PySequence_Fast(seq, "ShareableList needs a sequence");
    if (!fast)
        return NULL;
    n = PySequence_Fast_GET_SIZE(fast);
    vals = PyMem_Calloc(n ? (size_t)n : 1, sizeof *vals);
    if (!vals) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    for (i = 0; i < n && ok; i++)
        ok = py_to_value(PySequence_Fast_GET_ITEM(fast, i), &vals[i], 0, Py_TYPE(self)) == 1;
    if (!ok)
        goto done;
    pshm_block_options_init(&o);
    o.lifetime = (pshm_lifetime)lifetime;
    o.watch = watch;
    r = pshm_list_create(name_obj == Py_None ? NULL : nm, vals, (size_t)n, &o, &l);
    if (r != 0) {
        pshmpy_raise(r, name_obj == Py_None ? NULL : name_obj);
        ok = 0;
        goto done;
    }
    self->l = l;
done:
    PyMem_Free(vals);
    Py_DECREF(fast);
    if (!ok)
        return NULL;
    return list_name(self);
}

PyDoc_STRVAR(list_attach_doc, "_attach(name)\n--\n\nAttach to the list in the block `name`.");

static PyObject *list_attach(ListObject *self, PyObject *name_obj)
{
    char nm[PSHM_NAME_MAX + 3];
    pshm_list *l = NULL;
    int r;

    if (self->l) {
        PyErr_SetString(PyExc_ValueError, "ShareableList already attached");
        return NULL;
    }
    if (pshmpy_name(name_obj, nm, sizeof nm) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    r = pshm_list_open(nm, NULL, &l);
    Py_END_ALLOW_THREADS
    if (r != 0)
        return pshmpy_raise(r, name_obj);
    self->l = l;
    return list_name(self);
}

static Py_ssize_t list_len(ListObject *self)
{
    if (list_check(self) < 0)
        return -1;
    return (Py_ssize_t)pshm_list_len(self->l);
}

static PyObject *list_item(ListObject *self, Py_ssize_t i)
{
    pshm_value v;
    int r;

    if (list_check(self) < 0)
        return NULL;
    r = pshm_list_get(self->l, (int64_t)i, &v);
    if (r == -PSHM_ELIST_INDEX) {
        PyErr_SetString(PyExc_IndexError, "index out of range");
        return NULL;
    }
    if (r != 0)
        return list_raise(self, r);
    return value_to_py(&v);
}

static Py_ssize_t index_of(PyObject *key)
{
    if (!PyIndex_Check(key)) {
        PyErr_Format(PyExc_TypeError, "ShareableList indices must be integers, not %.100s",
                     Py_TYPE(key)->tp_name);
        return -1;
    }
    return PyNumber_AsSsize_t(key, PyExc_IndexError);
}

static PyObject *list_subscript(ListObject *self, PyObject *key)
{
    Py_ssize_t i = index_of(key);

    if (i == -1 && PyErr_Occurred())
        return NULL;
    return list_item(self, i);
}

static int list_ass_subscript(ListObject *self, PyObject *key, PyObject *value)
{
    Py_ssize_t i;
    pshm_value v;
    int r;

    if (!value) {
        PyErr_SetString(PyExc_TypeError, "ShareableList items cannot be deleted");
        return -1;
    }
    i = index_of(key);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (list_check(self) < 0)
        return -1;
    if (i < -(Py_ssize_t)pshm_list_len(self->l) || i >= (Py_ssize_t)pshm_list_len(self->l)) {
        PyErr_SetString(PyExc_IndexError, "assignment index out of range");
        return -1;
    }
    if (py_to_value(value, &v, 1, Py_TYPE(self)) != 1)
        return -1;
    r = pshm_list_set(self->l, (int64_t)i, &v);
    if (r == 0)
        return 0;
    if (r == -PSHM_ELIST_NOSPACE) {
        PyErr_SetString(PyExc_ValueError, "bytes/str item exceeds available storage");
        return -1;
    }
    list_raise(self, r);
    return -1;
}

/* count/index over list.c when the value is storable; None (no exception)
 * when it is not, and the Python layer compares item by item. */
static int search_value(ListObject *self, PyObject *value, pshm_value *v)
{
    int r;

    if (list_check(self) < 0)
        return -1;
    r = py_to_value(value, v, 0, Py_TYPE(self));
    if (r != 1) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static PyObject *list_count(ListObject *self, PyObject *value)
{
    pshm_value v;
    size_t n;
    int r = search_value(self, value, &v);

    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    r = pshm_list_count(self->l, &v, &n);
    if (r != 0)
        return list_raise(self, r);
    return PyLong_FromSize_t(n);
}

static PyObject *list_index(ListObject *self, PyObject *value)
{
    pshm_value v;
    size_t n;
    int r = search_value(self, value, &v);

    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    r = pshm_list_index(self->l, &v, &n);
    if (r == -PSHM_ELIST_NOTFOUND) {
        PyErr_Format(PyExc_ValueError, "%R not in this container", value);
        return NULL;
    }
    if (r != 0)
        return list_raise(self, r);
    return PyLong_FromSize_t(n);
}

static PyObject *list_get_format(ListObject *self, void *c)
{
    size_t len = 0;
    char *buf;
    PyObject *res;
    int r;

    if (list_check(self) < 0)
        return NULL;
    r = pshm_list_format(self->l, NULL, 0, &len);
    if (r != 0)
        return list_raise(self, r);
    buf = PyMem_Malloc(len + 1);
    if (!buf)
        return PyErr_NoMemory();
    r = pshm_list_format(self->l, buf, len + 1, &len);
    res = r == 0 ? PyUnicode_FromStringAndSize(buf, (Py_ssize_t)len) : list_raise(self, r);
    PyMem_Free(buf);
    return res;
}

static PyObject *list_get_addr(ListObject *self, void *c)
{
    if (list_check(self) < 0)
        return NULL;
    return PyLong_FromVoidPtr(pshm_block_data(pshm_list_block(self->l)));
}

static void list_dealloc(ListObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    (void)pshm_list_close(self->l);
    self->l = NULL;
    Py_CLEAR(self->dict);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int list_traverse(ListObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->dict);
    return 0;
}

static int list_clear(ListObject *self)
{
    Py_CLEAR(self->dict);
    return 0;
}

static PyObject *list_close(ListObject *self, PyObject *unused)
{
    pshm_list *l = self->l;
    int r;

    self->l = NULL;
    Py_BEGIN_ALLOW_THREADS
    r = pshm_list_close(l);
    Py_END_ALLOW_THREADS
    if (r != 0)
        return pshmpy_raise(r, NULL);
    Py_RETURN_NONE;
}

static PyMethodDef list_methods[] = {
    {"_close", (PyCFunction)list_close, METH_NOARGS, "Release the list's handle."},
    {"_create", (PyCFunction)list_create, METH_VARARGS, list_create_doc},
    {"_attach", (PyCFunction)list_attach, METH_O, list_attach_doc},
    {"_count", (PyCFunction)list_count, METH_O, "count over list.c, or None if not storable"},
    {"_index", (PyCFunction)list_index, METH_O, "index over list.c, or None if not storable"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef list_getset[] = {
    {"format", (getter)list_get_format, NULL,
     "The struct packing format used by all currently stored items.", NULL},
    {"_addr", (getter)list_get_addr, NULL, "Address of the list's mapping.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef list_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ListObject, weakrefs), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(ListObject, dict), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot list_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, list_dealloc},
    {Py_tp_traverse, list_traverse},
    {Py_tp_clear, list_clear},
    {Py_tp_methods, list_methods},
    {Py_tp_getset, list_getset},
    {Py_tp_members, list_members},
    {Py_tp_doc, (void *)"The C core of pshm.ShareableList."},
    {Py_sq_length, list_len},
    {Py_sq_item, list_item},
    {Py_mp_length, list_len},
    {Py_mp_subscript, list_subscript},
    {Py_mp_ass_subscript, list_ass_subscript},
    {0, NULL},
};

static PyType_Spec list_spec = {
    .name = "pshm._shm.List",
    .basicsize = sizeof(ListObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = list_slots,
};

/* ============================================================ functions */

PyDoc_STRVAR(unlink_doc, "unlink(name)\n--\n\nRemove the block `name` (a leading '/' is dropped).");

static PyObject *mod_unlink(PyObject *mod, PyObject *name_obj)
{
    char nm[PSHM_NAME_MAX + 3];
    int r;

    if (pshmpy_name(name_obj, nm, sizeof nm) < 0)
        return NULL;
    r = pshm_unlink(nm);
    if (r != 0)
        return pshmpy_raise(r, name_obj);
    Py_RETURN_NONE;
}

/* ----------------------------------------------- helpers for the tests */

PyDoc_STRVAR(raise_doc, "_raise(code, name=None)\n--\n\n"
             "Raise the exception pshm maps the C return code `code` to (tests).");

static PyObject *mod_raise(PyObject *mod, PyObject *args)
{
    int code;
    PyObject *name = NULL;

    if (!PyArg_ParseTuple(args, "i|O", &code, &name))
        return NULL;
    return pshmpy_raise(code, name == Py_None ? NULL : name);
}

static int sleep_fn(void *ctx, const struct timespec *until)
{
    (void)ctx;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, until, NULL) == EINTR)
        ;
    return -ETIMEDOUT;
}

PyDoc_STRVAR(wait_doc, "_wait(timeout)\n--\n\n"
             "Wait `timeout` seconds (None: forever) the way every blocking pshm call\n"
             "waits: GIL released, signals checked between slices. Returns False at\n"
             "the timeout; a signal handler's exception propagates (tests).");

static PyObject *mod_wait(PyObject *mod, PyObject *timeout)
{
    pshmpy_deadline d;
    int r;

    if (pshmpy_deadline_from(timeout, &d) < 0)
        return NULL;
    r = pshmpy_wait(sleep_fn, NULL, &d);
    if (r == PSHMPY_EXC)
        return NULL;
    if (r == -ETIMEDOUT)
        Py_RETURN_FALSE;
    return pshmpy_raise(r, NULL);
}

PyDoc_STRVAR(group_join_doc, "group_join(id=None)\n--\n\n"
             "Join this program's lifetime group (id None: the PSHM_GROUP environment\n"
             "variable, or a new group). Returns the group id.");

static PyObject *group_id_str(void)
{
    char id[PSHM_NAME_MAX + 1];
    int r = pshm_group_id(id, sizeof id, NULL);

    if (r != 0)
        return pshmpy_raise(r, NULL);
    return PyUnicode_FromString(id);
}

static PyObject *mod_group_join(PyObject *mod, PyObject *args)
{
    const char *id = NULL;
    int r;

    if (!PyArg_ParseTuple(args, "|z", &id))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    r = pshm_group_join(id);
    Py_END_ALLOW_THREADS
    if (r != 0)
        return pshmpy_raise(r, NULL);
    return group_id_str();
}

static PyObject *mod_group_id(PyObject *mod, PyObject *unused)
{
    return group_id_str();
}

/* The C API's own time for what SharedMemory does, measured in the same
 * process as the Python figures (bench/python/bench_shm.py). */
PyDoc_STRVAR(bench_doc, "_bench_c(name, n, what, lifetime)\n--\n\n"
             "Mean ns per op over n ops of the C API: what 0 = create+close+unlink of a\n"
             "4 KiB block `name`, 1 = open+close of the existing block `name` (benchmarks).");

static PyObject *mod_bench_c(PyObject *mod, PyObject *args)
{
    const char *name;
    long n, i;
    int what, lifetime, r = 0;
    pshm_block_options o;
    struct timespec t0, t1;
    pshm_block *b = NULL;

    if (!PyArg_ParseTuple(args, "slii", &name, &n, &what, &lifetime))
        return NULL;
    if (n <= 0) {
        PyErr_SetString(PyExc_ValueError, "n must be > 0");
        return NULL;
    }
    pshm_block_options_init(&o);
    o.lifetime = (pshm_lifetime)lifetime;
    Py_BEGIN_ALLOW_THREADS
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < n && r == 0; i++) {
        if (what == 0) {
            r = pshm_block_create(name, 4096, &o, &b);
            if (r == 0)
                r = pshm_block_unlink(b);
        } else {
            r = pshm_block_open(name, NULL, &b);
        }
        if (b)
            (void)pshm_block_close(b);
        b = NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    Py_END_ALLOW_THREADS
    if (r != 0)
        return pshmpy_raise(r, NULL);
    return PyFloat_FromDouble(((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                              (double)n);
}

static PyMethodDef shm_methods[] = {
    {"_bench_c", mod_bench_c, METH_VARARGS, bench_doc},
    {"group_join", mod_group_join, METH_VARARGS, group_join_doc},
    {"group_id", mod_group_id, METH_NOARGS, "group_id()\n--\n\nThis process's lifetime group id."},
    {"unlink", mod_unlink, METH_O, unlink_doc},
    {"_raise", mod_raise, METH_VARARGS, raise_doc},
    {"_wait", mod_wait, METH_O, wait_doc},
    {NULL, NULL, 0, NULL},
};

static int shm_exec(PyObject *mod)
{
    shm_state *st = state_of(mod);
    PyObject *structmod;

    if (PyModule_AddStringConstant(mod, "PSHM_VERSION", pshm_version_string()) < 0)
        return -1;
    if (PyModule_AddIntConstant(mod, "LIFETIME_PERSIST", PSHM_PERSIST) < 0 ||
        PyModule_AddIntConstant(mod, "LIFETIME_AUTO", PSHM_AUTO) < 0 ||
        PyModule_AddIntConstant(mod, "LIFETIME_OWNED", PSHM_OWNED) < 0 ||
        PyModule_AddIntConstant(mod, "LIFETIME_GROUP", PSHM_GROUP) < 0)
        return -1;
    structmod = PyImport_ImportModule("struct");
    if (!structmod)
        return -1;
    st->struct_error = PyObject_GetAttrString(structmod, "error");
    Py_DECREF(structmod);
    if (!st->struct_error)
        return -1;
    st->block_type = PyType_FromModuleAndSpec(mod, &block_spec, NULL);
    if (!st->block_type || PyModule_AddObjectRef(mod, "Block", st->block_type) < 0)
        return -1;
    st->list_type = PyType_FromModuleAndSpec(mod, &list_spec, NULL);
    if (!st->list_type || PyModule_AddObjectRef(mod, "List", st->list_type) < 0)
        return -1;
    return 0;
}

static int shm_traverse(PyObject *mod, visitproc visit, void *arg)
{
    shm_state *st = state_of(mod);
    Py_VISIT(st->block_type);
    Py_VISIT(st->list_type);
    Py_VISIT(st->struct_error);
    return 0;
}

static int shm_clear(PyObject *mod)
{
    shm_state *st = state_of(mod);
    Py_CLEAR(st->block_type);
    Py_CLEAR(st->list_type);
    Py_CLEAR(st->struct_error);
    return 0;
}

static void shm_free(void *mod)
{
    (void)shm_clear((PyObject *)mod);
}

static PyModuleDef_Slot shm_slots[] = {
    {Py_mod_exec, shm_exec},
    {0, NULL},
};

static struct PyModuleDef shm_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pshm._shm",
    .m_doc = "pshm's C core: SharedMemory, ShareableList and lifetime groups over libpshm.",
    .m_size = sizeof(shm_state),
    .m_methods = shm_methods,
    .m_slots = shm_slots,
    .m_traverse = shm_traverse,
    .m_clear = shm_clear,
    .m_free = shm_free,
};

PyMODINIT_FUNC PyInit__shm(void)
{
    return PyModuleDef_Init(&shm_module);
}
