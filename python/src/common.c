// SPDX-License-Identifier: MIT
/* common.c - exceptions, deadlines and signal-aware waits for every pshm
 * extension module (see common.h). */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static int is_value_error(int code)
{
    switch (-code) {
    case PSHM_EBADFORMAT:
    case PSHM_EVERSION:
    case PSHM_EABI:
    case PSHM_EKIND:
    case PSHM_EEMPTY:
    case PSHM_ENAME_NUL:
    case PSHM_ELIST_NOSPACE:
    case PSHM_ELIST_TOOBIG:
    case PSHM_ELIST_UTF8:
    case PSHM_ELIST_NOTFOUND:
        return 1;
    }
    /* the ShareableList layout codes and every array parse code */
    if (-code >= PSHM_ELIST_SIZE && -code <= PSHM_ELIST_MISMATCH)
        return 1;
    if (-code >= PSHM_EARRAY_MAGIC && -code <= PSHM_EARRAY_MISMATCH)
        return 1;
    return 0;
}

/* OSError(errno, strerror[, filename]): OSError's constructor picks the
 * errno's subclass (FileNotFoundError, PermissionError...). */
static PyObject *raise_oserror(int err, const char *msg, PyObject *name)
{
    PyObject *args, *exc;

    if (name)
        args = Py_BuildValue("(isO)", err, msg, name);
    else
        args = Py_BuildValue("(is)", err, msg);
    if (!args)
        return NULL;
    exc = PyObject_Call(PyExc_OSError, args, NULL);
    Py_DECREF(args);
    if (!exc)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *pshmpy_raise(int code, PyObject *name)
{
    const char *msg = pshm_strerror(code);

    if (code >= 0 || code == PSHMPY_EXC) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "pshm: error raised for a success code");
        return NULL;
    }
    switch (-code) {
    case ENOMEM:
        return PyErr_NoMemory();
    case PSHM_ESTALE:
        return raise_oserror(ENOENT, msg, name);
    case PSHM_ENAME_EMPTY:
    case PSHM_ENAME_SLASH:
    case PSHM_ENAME_DOT:
        return raise_oserror(EINVAL, msg, name);
    case PSHM_ENAME_LONG:
        return raise_oserror(ENAMETOOLONG, msg, name);
    case PSHM_ELIST_INDEX:
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    if (is_value_error(code)) {
        if (name)
            PyErr_Format(PyExc_ValueError, "%R: %s", name, msg);
        else
            PyErr_SetString(PyExc_ValueError, msg);
        return NULL;
    }
    if (-code < 1000) /* an errno */
        return raise_oserror(-code, strerror(-code), name);
    return raise_oserror(-code, msg, name);
}

PyObject *pshmpy_raise_str(int code, const char *name)
{
    PyObject *n = NULL;

    if (name) {
        n = PyUnicode_DecodeFSDefault(name);
        if (!n)
            return NULL;
    }
    pshmpy_raise(code, n);
    Py_XDECREF(n);
    return NULL;
}

/* --------------------------------------------------------- deadlines */

static void now_plus(double seconds, struct timespec *out)
{
    struct timespec now;
    double whole, frac;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (seconds < 0)
        seconds = 0;
    if (seconds > 1e9) /* ~31 years: forever in practice, and no overflow */
        seconds = 1e9;
    frac = modf(seconds, &whole);
    out->tv_sec = now.tv_sec + (time_t)whole;
    out->tv_nsec = now.tv_nsec + (long)(frac * 1e9);
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}

void pshmpy_deadline_in(double seconds, pshmpy_deadline *out)
{
    out->forever = 0;
    now_plus(seconds, &out->at);
}

int pshmpy_deadline_from(PyObject *timeout, pshmpy_deadline *out)
{
    double s;

    if (timeout == NULL || timeout == Py_None) {
        out->forever = 1;
        out->at.tv_sec = 0;
        out->at.tv_nsec = 0;
        return 0;
    }
    if (!PyFloat_Check(timeout) && !PyLong_Check(timeout) && !PyNumber_Check(timeout)) {
        PyErr_Format(PyExc_TypeError, "timeout must be None or a number, not %.100s",
                     Py_TYPE(timeout)->tp_name);
        return -1;
    }
    s = PyFloat_AsDouble(timeout);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(s)) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    pshmpy_deadline_in(s, out);
    return 0;
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int pshmpy_deadline_passed(const pshmpy_deadline *d)
{
    struct timespec now;

    if (d->forever)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return !ts_before(&now, &d->at);
}

/* ------------------------------------------------------------ waiting */

int pshmpy_wait(pshmpy_wait_fn fn, void *ctx, const pshmpy_deadline *d)
{
    for (;;) {
        struct timespec until;
        int r;

        now_plus(PSHMPY_SLICE_MS / 1000.0, &until);
        if (!d->forever && ts_before(&d->at, &until))
            until = d->at;
        Py_BEGIN_ALLOW_THREADS
        r = fn(ctx, &until);
        Py_END_ALLOW_THREADS
        if (r != -ETIMEDOUT)
            return r;
        if (PyErr_CheckSignals() < 0)
            return PSHMPY_EXC;
        if (pshmpy_deadline_passed(d))
            return -ETIMEDOUT;
    }
}

/* -------------------------------------------------------------- names */

int pshmpy_name(PyObject *o, char *out, size_t cap)
{
    const char *s;
    Py_ssize_t n;

    if (PyUnicode_Check(o)) {
        s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s)
            return -1;
    } else if (PyBytes_Check(o)) {
        s = PyBytes_AS_STRING(o);
        n = PyBytes_GET_SIZE(o);
    } else {
        PyErr_Format(PyExc_TypeError, "name must be str, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    if (memchr(s, '\0', (size_t)n)) {
        PyErr_SetString(PyExc_ValueError, "embedded null character");
        return -1;
    }
    if ((size_t)n + 1 > cap) {
        raise_oserror(ENAMETOOLONG, strerror(ENAMETOOLONG), o);
        return -1;
    }
    memcpy(out, s, (size_t)n);
    out[n] = '\0';
    return 0;
}
