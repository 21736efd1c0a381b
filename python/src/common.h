/* SPDX-License-Identifier: MIT */
/*
 * common.h - what every pshm extension module (pshm._shm, _sync, _queue,
 * _array) shares: C error codes to Python exceptions, Python timeouts to
 * deadlines, and waiting with the GIL released in slices short enough that
 * Ctrl-C raises KeyboardInterrupt within 100 ms.
 */
#ifndef PSHMPY_COMMON_H
#define PSHMPY_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <time.h>

#include "pshm.h"

/*
 * pshmpy_raise: set the Python exception matching a libpshm return code and
 * return NULL. `name` (may be NULL) names the object in the message and is
 * the exception's filename for OSError. The mapping:
 *   -ENOENT, -PSHM_ESTALE             FileNotFoundError
 *   -EEXIST                           FileExistsError
 *   -EACCES, -EPERM                   PermissionError
 *   -ETIMEDOUT                        TimeoutError
 *   -PSHM_ENAME_NUL                   ValueError (as CPython for "a\0b")
 *   -PSHM_ENAME_* (others)            OSError(EINVAL) / OSError(ENAMETOOLONG),
 *                                     what shm_open gives the stdlib
 *   -PSHM_EBADFORMAT, EVERSION, EABI, EKIND, EEMPTY, the ShareableList
 *   layout codes and the array parse codes                       ValueError
 *   -PSHM_ELIST_INDEX                 IndexError
 *   -PSHM_ELIST_NOSPACE, ELIST_TOOBIG, ELIST_UTF8, ELIST_NOTFOUND ValueError
 *   -ENOMEM                           MemoryError
 *   any other -errno                  OSError(errno) (its errno subclass)
 *   any other -PSHM_E*                OSError whose errno is the positive
 *                                     pshm code and whose strerror is
 *                                     pshm_strerror(code)
 * Needs the GIL.
 */
PyObject *pshmpy_raise(int code, PyObject *name);
/* The same with a C string name (may be NULL). */
PyObject *pshmpy_raise_str(int code, const char *name);

/*
 * A deadline from a Python `timeout`: None waits forever, a number of
 * seconds (int or float) waits that long from now; a negative number is
 * treated as 0 (as multiprocessing's acquire() does). NaN is ValueError,
 * anything else TypeError.
 */
typedef struct pshmpy_deadline {
    int forever;        /* 1: no deadline */
    struct timespec at; /* CLOCK_MONOTONIC, when !forever */
} pshmpy_deadline;

/* 0, or -1 with an exception set. Needs the GIL. */
int pshmpy_deadline_from(PyObject *timeout, pshmpy_deadline *out);
/* A deadline `seconds` from now (negative: now). */
void pshmpy_deadline_in(double seconds, pshmpy_deadline *out);
/* 1 if the deadline has passed (never for forever). */
int pshmpy_deadline_passed(const pshmpy_deadline *d);

/*
 * pshmpy_wait: wait for something with the GIL released, in slices of at
 * most PSHMPY_SLICE_MS. fn(ctx, until) is called WITHOUT the GIL and must
 * return 0 (done), -ETIMEDOUT when `until` (an absolute CLOCK_MONOTONIC
 * deadline) passed without success, or another negative code (an error:
 * returned at once). Between slices the GIL is taken and
 * PyErr_CheckSignals() runs, so a signal handler that raises (Ctrl-C)
 * ends the wait within one slice.
 * Returns 0, fn's error code, -ETIMEDOUT once d has passed, or PSHMPY_EXC
 * when a signal handler raised (the exception is set).
 * Called with the GIL held; fn must not touch Python objects.
 */
#define PSHMPY_SLICE_MS 50
#define PSHMPY_EXC INT_MIN
typedef int (*pshmpy_wait_fn)(void *ctx, const struct timespec *until);
int pshmpy_wait(pshmpy_wait_fn fn, void *ctx, const pshmpy_deadline *d);

/*
 * pshmpy_name: the bytes of a name argument (str, encoded UTF-8 as
 * CPython's SharedMemory does, or bytes) into out (PSHM_NAME_MAX + 2 bytes,
 * NUL-terminated; the leading slash, if any, is kept). Returns 0, or -1 with
 * ValueError (embedded NUL), OSError(ENAMETOOLONG) or TypeError set.
 */
int pshmpy_name(PyObject *o, char *out, size_t cap);

#endif
