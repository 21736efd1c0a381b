// SPDX-License-Identifier: MIT
/*
 * shm.c - pshm._shm: the SharedMemory core, ShareableList's hot paths and
 * lifetime groups (issue 10). Multi-phase init; the types are heap types
 * kept in the module state.
 */
#include "common.h"

#include <errno.h>

typedef struct shm_state {
    int unused;
} shm_state;

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

static PyMethodDef shm_methods[] = {
    {"_raise", mod_raise, METH_VARARGS, raise_doc},
    {"_wait", mod_wait, METH_O, wait_doc},
    {NULL, NULL, 0, NULL},
};

static int shm_exec(PyObject *mod)
{
    if (PyModule_AddStringConstant(mod, "PSHM_VERSION", pshm_version_string()) < 0)
        return -1;
    return 0;
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
};

PyMODINIT_FUNC PyInit__shm(void)
{
    return PyModuleDef_Init(&shm_module);
}
