/* SPDX-License-Identifier: MIT */
/*
 * sync.c - pshm._sync: one handle type over libpshm's named synchronisation
 * objects (pshm_sync_create/open). pshm/synchronize.py builds the
 * multiprocessing.synchronize API (Lock, RLock, Condition, Semaphore,
 * BoundedSemaphore, Event, Barrier) on it.
 *
 * The waits return libpshm's code as an int instead of raising when the code
 * is an answer rather than a failure (not acquired, timed out, owner died,
 * not recoverable, deadlock): the Python layer turns each into what
 * multiprocessing does (False, OwnerDeadError, ...). Everything else raises
 * through pshmpy_raise. A wait that may block first tries without giving up
 * the GIL (the uncontended case costs no thread switch), then waits in
 * slices with the GIL released (pshmpy_wait), so Ctrl-C ends it.
 */
#include "common.h"

#include <errno.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    pshm_sync *h;
    pshm_sync_kind kind;
    PyObject *name; /* str */
} SyncObject;

static const char *kind_name(pshm_sync_kind k)
{
    return pshm_sync_kind_name(k);
}

/* The handle is open and of `kind`: 0, or -1 with ValueError set. */
static int need(SyncObject *self, pshm_sync_kind kind)
{
    if (!self->h) {
        PyErr_SetString(PyExc_ValueError, "the synchronisation object is closed");
        return -1;
    }
    if (self->kind != kind) {
        PyErr_Format(PyExc_TypeError, "'%U' is a %s, not a %s", self->name,
                     kind_name(self->kind), kind_name(kind));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ new */

static PyObject *Sync_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "kind", "create", "value", "count", "flags",
                             "lifetime", "mode", NULL};
    PyObject *name = Py_None;
    int kind = 0, create = 0, lifetime = 0;
    unsigned value = 0, count = 0, flags = 0, mode = 0600;
    char cname[PSHM_NAME_MAX + 2];
    pshm_sync_options opt;
    pshm_sync *h = NULL;
    SyncObject *self;
    int r;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oi|pIIIiI:Handle", kwlist, &name, &kind,
                                     &create, &value, &count, &flags, &lifetime, &mode))
        return NULL;
    if (name != Py_None && pshmpy_name(name, cname, sizeof cname) < 0)
        return NULL;
    if (kind < PSHM_SYNC_MUTEX || kind > PSHM_SYNC_EVENT) {
        PyErr_Format(PyExc_ValueError, "unknown synchronisation kind %d", kind);
        return NULL;
    }
    if (lifetime < PSHM_PERSIST || lifetime > PSHM_OWNED) {
        PyErr_Format(PyExc_ValueError, "unknown lifetime %d", lifetime);
        return NULL;
    }
    pshm_sync_options_init(&opt);
    opt.value = value;
    opt.count = count;
    opt.flags = flags;
    opt.lifetime = (pshm_lifetime)lifetime;
    opt.mode = mode;
    Py_BEGIN_ALLOW_THREADS
    if (create)
        r = pshm_sync_create(name == Py_None ? NULL : cname, (pshm_sync_kind)kind, &opt, &h);
    else
        r = pshm_sync_open(cname, (pshm_sync_kind)kind, &opt, &h);
    Py_END_ALLOW_THREADS
    if (r < 0) {
        if (r == -PSHM_EKIND && name != Py_None) {
            PyErr_Format(PyExc_ValueError, "'%U' is not a pshm %s (%s)", name,
                         kind_name((pshm_sync_kind)kind), pshm_strerror(r));
            return NULL;
        }
        return name == Py_None ? pshmpy_raise(r, NULL) : pshmpy_raise(r, name);
    }
    self = (SyncObject *)type->tp_alloc(type, 0);
    if (!self) {
        pshm_sync_close(h);
        return NULL;
    }
    self->h = h;
    self->kind = (pshm_sync_kind)kind;
    self->name = PyUnicode_FromString(pshm_block_name(pshm_sync_block(h)));
    if (!self->name) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void Sync_dealloc(SyncObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    /* -EBUSY (a lock this process holds) keeps the mapping on purpose: the
     * kernel can only release a dead holder's lock while it is mapped. The
     * handle is then leaked with the process, as the library asks. */
    if (self->h && pshm_sync_close(self->h) == -EBUSY)
        (void)0;
    self->h = NULL;
    Py_XDECREF(self->name);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* ---------------------------------------------------------- wait helpers */

typedef struct {
    void *obj;
    void *aux;
    pshm_sem *gen;          /* cond: the generation semaphore */
    unsigned seq;           /* cond: its value when the wait began */
} wait_ctx;

static int mutex_slice(void *c, const struct timespec *until)
{
    return pshm_mutex_timedlock(((wait_ctx *)c)->obj, until);
}

static int sem_slice(void *c, const struct timespec *until)
{
    return pshm_sem_timedwait(((wait_ctx *)c)->obj, until);
}

static int event_slice(void *c, const struct timespec *until)
{
    return pshm_event_timedwait(((wait_ctx *)c)->obj, until);
}

/* Parse (block, timeout) as multiprocessing's acquire does: block=False
 * means "try once" whatever the timeout. Returns 1 to try once, 0 to wait
 * until *d, -1 with an exception set. */
static int block_timeout(PyObject *block, PyObject *timeout, pshmpy_deadline *d)
{
    int b = block ? PyObject_IsTrue(block) : 1;

    if (b < 0)
        return -1;
    if (!b)
        return 1;
    return pshmpy_deadline_from(timeout, d) < 0 ? -1 : 0;
}

/* A code that is an answer goes back as an int; PSHMPY_EXC means an
 * exception is set; anything else raises. */
static PyObject *answer(SyncObject *self, int r, const int *answers)
{
    if (r == PSHMPY_EXC)
        return NULL;
    if (r == 0)
        return PyLong_FromLong(0);
    for (; *answers; answers++)
        if (r == *answers)
            return PyLong_FromLong(r);
    return pshmpy_raise(r, self->name);
}

/* ---------------------------------------------------------------- mutex */

static const int lock_answers[] = {-EBUSY, -ETIMEDOUT, -PSHM_EOWNERDEAD,
                                   -PSHM_ENOTRECOVERABLE, -EDEADLK, 0};

/* What a try-then-wait acquire (mutex lock, semaphore wait) needs. */
typedef struct {
    pshm_sync_kind kind;
    void *(*object)(const pshm_sync *);
    int (*try)(void *);
    pshmpy_wait_fn slice;
    int busy; /* the code of try for "not now" */
    const int *answers;
} acquire_ops;

/* acquire(block=True, timeout=None) as multiprocessing's: try at once with
 * the GIL held; then, unless block is false, wait in slices without it. */
static PyObject *acquire(SyncObject *self, PyObject *args, PyObject *kw, const acquire_ops *op)
{
    static char *kwlist[] = {"block", "timeout", NULL};
    PyObject *block = NULL, *timeout = Py_None;
    pshmpy_deadline d;
    wait_ctx c;
    int once, r;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:acquire", kwlist, &block, &timeout))
        return NULL;
    if (need(self, op->kind) < 0)
        return NULL;
    once = block_timeout(block, timeout, &d);
    if (once < 0)
        return NULL;
    c.obj = op->object(self->h);
    r = op->try(c.obj);
    if (r == op->busy && !once)
        r = pshmpy_wait(op->slice, &c, &d);
    return answer(self, r, op->answers);
}

static void *sync_mutex(const pshm_sync *h)
{
    return pshm_sync_mutex(h);
}

static int mutex_try(void *m)
{
    return pshm_mutex_trylock(m);
}

static PyObject *Sync_lock(SyncObject *self, PyObject *args, PyObject *kw)
{
    static const acquire_ops ops = {PSHM_SYNC_MUTEX, sync_mutex, mutex_try, mutex_slice,
                                    -EBUSY, lock_answers};

    return acquire(self, args, kw, &ops);
}

static PyObject *Sync_unlock(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (need(self, PSHM_SYNC_MUTEX) < 0)
        return NULL;
    return PyLong_FromLong(pshm_mutex_unlock(pshm_sync_mutex(self->h)));
}

static PyObject *Sync_consistent(SyncObject *self, PyObject *unused)
{
    (void)unused;
    if (need(self, PSHM_SYNC_MUTEX) < 0)
        return NULL;
    return PyLong_FromLong(pshm_mutex_consistent(pshm_sync_mutex(self->h)));
}

/* ----------------------------------------------------------------- cond */

/* The value of a generation semaphore (see cond_wait); 0 on error. */
static unsigned gen_value(pshm_sem *gen)
{
    unsigned v = 0;

    return pshm_sem_getvalue(gen, &v) == 0 ? v : 0;
}

/* A slice that times out relocks the mutex, and a notify made meanwhile
 * (by a holder of the mutex: the relock waits for it) finds no waiter on
 * the cond and is lost to the next slice. So every notify also moves a
 * generation semaphore's value (synchronize.py), and a slice that timed out
 * reports a wake-up if the value moved since the wait began (the caller held
 * the mutex then, so the move is a notify made during this wait; at worst a
 * spurious wake-up, which condition variable users must allow). */
static int cond_slice(void *c, const struct timespec *until)
{
    wait_ctx *w = c;
    int r = pshm_cond_timedwait(w->obj, w->aux, until);

    if (r == -ETIMEDOUT && gen_value(w->gen) != w->seq)
        return 0;
    return r;
}

static const int cond_answers[] = {-ETIMEDOUT, -PSHM_EOWNERDEAD, -PSHM_ENOTRECOVERABLE,
                                   -EPERM, 0};

/* cond_wait(lock_handle, gen_handle, timeout): one wait, which may end early (a slice:
 * the caller loops on its predicate, as every condition variable user
 * must). The mutex is held again on return, whatever the code, except
 * -EPERM and -PSHM_ENOTRECOVERABLE. Between slices the mutex is taken
 * back, so a notify made while holding the lock is never lost. */
static PyObject *Sync_cond_wait(SyncObject *self, PyObject *args)
{
    SyncObject *lock, *gen;
    PyObject *timeout = Py_None;
    pshmpy_deadline d;
    wait_ctx c;
    int r;

    if (!PyArg_ParseTuple(args, "O!O!|O:cond_wait", Py_TYPE(self), &lock, Py_TYPE(self), &gen,
                          &timeout))
        return NULL;
    if (need(self, PSHM_SYNC_COND) < 0 || need(lock, PSHM_SYNC_MUTEX) < 0 ||
        need(gen, PSHM_SYNC_SEM) < 0)
        return NULL;
    if (pshmpy_deadline_from(timeout, &d) < 0)
        return NULL;
    c.obj = pshm_sync_cond(self->h);
    c.aux = pshm_sync_mutex(lock->h);
    c.gen = pshm_sync_sem(gen->h);
    c.seq = gen_value(c.gen);
    /* Between slices the mutex is held again, so a signal handler that
     * raises leaves the caller holding it, as threading.Condition does. */
    r = pshmpy_wait(cond_slice, &c, &d);
    return answer(self, r, cond_answers);
}

static PyObject *Sync_cond_notify(SyncObject *self, PyObject *args)
{
    int all = 0, r;

    if (!PyArg_ParseTuple(args, "|p:cond_notify", &all))
        return NULL;
    if (need(self, PSHM_SYNC_COND) < 0)
        return NULL;
    r = all ? pshm_cond_broadcast(pshm_sync_cond(self->h)) : pshm_cond_signal(pshm_sync_cond(self->h));
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ semaphore */

static const int sem_answers[] = {-EAGAIN, -ETIMEDOUT, 0};

static void *sync_sem(const pshm_sync *h)
{
    return pshm_sync_sem(h);
}

static int sem_try(void *sem)
{
    return pshm_sem_trywait(sem);
}

static PyObject *Sync_sem_wait(SyncObject *self, PyObject *args, PyObject *kw)
{
    static const acquire_ops ops = {PSHM_SYNC_SEM, sync_sem, sem_try, sem_slice, -EAGAIN,
                                    sem_answers};

    return acquire(self, args, kw, &ops);
}

static PyObject *Sync_sem_post(SyncObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (need(self, PSHM_SYNC_SEM) < 0)
        return NULL;
    r = pshm_sem_post(pshm_sync_sem(self->h));
    if (r == -EOVERFLOW) {
        PyErr_SetString(PyExc_ValueError, "semaphore value would exceed its maximum");
        return NULL;
    }
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Sync_sem_value(SyncObject *self, PyObject *unused)
{
    unsigned v = 0;
    int r;

    (void)unused;
    if (need(self, PSHM_SYNC_SEM) < 0)
        return NULL;
    r = pshm_sem_getvalue(pshm_sync_sem(self->h), &v);
    if (r < 0)
        return pshmpy_raise(r, self->name);
    return PyLong_FromUnsignedLong(v);
}

/* ---------------------------------------------------------------- event */

static PyObject *Sync_event_set(SyncObject *self, PyObject *args)
{
    int set = 1, r;

    if (!PyArg_ParseTuple(args, "|p:event_set", &set))
        return NULL;
    if (need(self, PSHM_SYNC_EVENT) < 0)
        return NULL;
    r = set ? pshm_event_set(pshm_sync_event(self->h)) : pshm_event_reset(pshm_sync_event(self->h));
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Sync_event_wait(SyncObject *self, PyObject *args)
{
    PyObject *timeout = Py_None;
    pshmpy_deadline d;
    wait_ctx c;
    int r;

    if (!PyArg_ParseTuple(args, "|O:event_wait", &timeout))
        return NULL;
    if (need(self, PSHM_SYNC_EVENT) < 0)
        return NULL;
    if (pshmpy_deadline_from(timeout, &d) < 0)
        return NULL;
    c.obj = pshm_sync_event(self->h);
    r = pshm_event_trywait(c.obj);
    if (r == -EAGAIN)
        r = pshmpy_wait(event_slice, &c, &d);
    if (r == PSHMPY_EXC)
        return NULL;
    if (r == -ETIMEDOUT || r == -EAGAIN)
        Py_RETURN_FALSE;
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_TRUE;
}

/* -------------------------------------------------------------- barrier */

/* Barrier waits cannot be sliced: a timed barrier wait that times out
 * breaks the barrier. So the wait runs whole with the GIL released (see
 * synchronize.py: Ctrl-C is seen when the phase completes or breaks). */
static PyObject *Sync_barrier_wait(SyncObject *self, PyObject *args)
{
    PyObject *timeout = Py_None;
    pshmpy_deadline d;
    pshm_barrier *b;
    unsigned arrival = 0;
    int r;

    if (!PyArg_ParseTuple(args, "|O:barrier_wait", &timeout))
        return NULL;
    if (need(self, PSHM_SYNC_BARRIER) < 0)
        return NULL;
    if (pshmpy_deadline_from(timeout, &d) < 0)
        return NULL;
    b = pshm_sync_barrier(self->h);
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = d.forever ? pshm_barrier_wait(b, &arrival) : pshm_barrier_timedwait(b, &d.at, &arrival);
        /* Every place is taken by a participant that has not left yet
         * (it is between its wait and its leave): it leaves at once. */
        if (r == -ENOSPC) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        Py_END_ALLOW_THREADS
        if (r != -ENOSPC || pshmpy_deadline_passed(&d))
            break;
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
    /* Leave after every wait, so that a process that is done with the
     * barrier and exits is not taken for a participant that died. */
    if (r == 0 || r == -PSHM_EBROKEN || r == -ETIMEDOUT)
        (void)pshm_barrier_leave(b);
    if (r == 0)
        return Py_BuildValue("iI", 0, arrival);
    if (r == -PSHM_EBROKEN || r == -ETIMEDOUT)
        return Py_BuildValue("iI", r, 0u);
    return pshmpy_raise(r, self->name);
}

static PyObject *Sync_barrier_reset(SyncObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (need(self, PSHM_SYNC_BARRIER) < 0)
        return NULL;
    r = pshm_barrier_reset(pshm_sync_barrier(self->h));
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

/* ----------------------------------------------------------- inspection */

static PyObject *Sync_info(SyncObject *self, PyObject *unused)
{
    pshm_sync_info i;
    int r;

    (void)unused;
    if (!self->h) {
        PyErr_SetString(PyExc_ValueError, "the synchronisation object is closed");
        return NULL;
    }
    pshm_sync_info_init(&i);
    r = pshm_sync_fstat(self->h, &i);
    if (r < 0)
        return pshmpy_raise(r, self->name);
    return Py_BuildValue("{s:s,s:I,s:i,s:l,s:l,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:i,s:K}",
                         "kind", kind_name(i.kind), "flags", i.flags, "locked", i.locked,
                         "owner_pid", i.owner_pid, "owner_tid", i.owner_tid, "owner_alive",
                         i.owner_alive, "inconsistent", i.inconsistent, "notrecoverable",
                         i.notrecoverable, "waiters", i.waiters, "value", i.value, "count",
                         i.count, "members", i.members, "dead", i.dead, "broken", i.broken,
                         "seq", i.seq);
}

static PyObject *Sync_close(SyncObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (!self->h)
        Py_RETURN_NONE;
    r = pshm_sync_close(self->h);
    if (r == -EBUSY) {
        PyErr_Format(PyExc_RuntimeError,
                     "cannot close '%U': this process holds it (release it first)", self->name);
        return NULL;
    }
    self->h = NULL;
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Sync_unlink(SyncObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (!self->h) {
        char cname[PSHM_NAME_MAX + 2];

        if (pshmpy_name(self->name, cname, sizeof cname) < 0)
            return NULL;
        r = pshm_unlink(cname);
    } else {
        r = pshm_block_unlink(pshm_sync_block(self->h));
    }
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Sync_get_name(SyncObject *self, void *unused)
{
    (void)unused;
    return Py_NewRef(self->name);
}

static PyObject *Sync_get_closed(SyncObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(self->h == NULL);
}

static PyObject *Sync_get_lifetime(SyncObject *self, void *unused)
{
    (void)unused;
    if (!self->h)
        Py_RETURN_NONE;
    return PyUnicode_FromString(pshm_lifetime_name(pshm_block_lifetime(pshm_sync_block(self->h))));
}

static PyMethodDef Sync_methods[] = {
    {"lock", (PyCFunction)(void (*)(void))Sync_lock, METH_VARARGS | METH_KEYWORDS,
     "lock(block=True, timeout=None) -> 0 or a negative libpshm code (mutex)."},
    {"unlock", (PyCFunction)Sync_unlock, METH_NOARGS, "unlock() -> 0 or -EPERM (mutex)."},
    {"consistent", (PyCFunction)Sync_consistent, METH_NOARGS,
     "consistent() -> 0, -EPERM or -EINVAL (mutex after an owner died)."},
    {"cond_wait", (PyCFunction)Sync_cond_wait, METH_VARARGS,
     "cond_wait(lock_handle, gen_handle, timeout=None) -> 0 or a negative libpshm code."},
    {"cond_notify", (PyCFunction)Sync_cond_notify, METH_VARARGS,
     "cond_notify(all=False): wake one (or every) waiter."},
    {"sem_wait", (PyCFunction)(void (*)(void))Sync_sem_wait, METH_VARARGS | METH_KEYWORDS,
     "sem_wait(block=True, timeout=None) -> 0, -EAGAIN or -ETIMEDOUT."},
    {"sem_post", (PyCFunction)Sync_sem_post, METH_NOARGS, "sem_post(): raise the value by 1."},
    {"sem_value", (PyCFunction)Sync_sem_value, METH_NOARGS, "sem_value() -> the value now."},
    {"event_set", (PyCFunction)Sync_event_set, METH_VARARGS,
     "event_set(set=True): set (or, with False, reset) the event."},
    {"event_wait", (PyCFunction)Sync_event_wait, METH_VARARGS,
     "event_wait(timeout=None) -> True when set, False at the timeout."},
    {"barrier_wait", (PyCFunction)Sync_barrier_wait, METH_VARARGS,
     "barrier_wait(timeout=None) -> (0, arrival index) or (negative code, 0)."},
    {"barrier_reset", (PyCFunction)Sync_barrier_reset, METH_NOARGS,
     "barrier_reset(): make a broken barrier usable again."},
    {"info", (PyCFunction)Sync_info, METH_NOARGS, "info() -> dict: pshm_sync_fstat's snapshot."},
    {"close", (PyCFunction)Sync_close, METH_NOARGS,
     "close(): unmap (RuntimeError while this process holds the lock)."},
    {"unlink", (PyCFunction)Sync_unlink, METH_NOARGS, "unlink(): remove the name."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sync_getset[] = {
    {"name", (getter)Sync_get_name, NULL, "the object's name (no leading slash)", NULL},
    {"closed", (getter)Sync_get_closed, NULL, "True after close()", NULL},
    {"lifetime", (getter)Sync_get_lifetime, NULL, "'persist', 'auto' or 'owned'", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Sync_slots[] = {
    {Py_tp_new, Sync_new},
    {Py_tp_dealloc, Sync_dealloc},
    {Py_tp_methods, Sync_methods},
    {Py_tp_getset, Sync_getset},
    {Py_tp_doc, "Handle(name, kind, create=False, value=0, count=0, flags=0, lifetime=0, "
                "mode=0o600)\n\nA named pshm synchronisation object (internal: use the "
                "classes of pshm.synchronize)."},
    {0, NULL},
};

static PyType_Spec Sync_spec = {
    .name = "pshm._sync.Handle",
    .basicsize = sizeof(SyncObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Sync_slots,
};

/* --------------------------------------------------------------- module */

static int sync_exec(PyObject *m)
{
    PyObject *t = PyType_FromModuleAndSpec(m, &Sync_spec, NULL);

    if (!t)
        return -1;
    if (PyModule_AddObject(m, "Handle", t) < 0) {
        Py_DECREF(t);
        return -1;
    }
#define K(n, v)                                                                \
    if (PyModule_AddIntConstant(m, n, v) < 0)                                  \
        return -1;
    K("MUTEX", PSHM_SYNC_MUTEX)
    K("COND", PSHM_SYNC_COND)
    K("SEM", PSHM_SYNC_SEM)
    K("BARRIER", PSHM_SYNC_BARRIER)
    K("EVENT", PSHM_SYNC_EVENT)
    K("SEM_UNDO", PSHM_SEM_UNDO)
    K("EVENT_MANUAL", PSHM_EVENT_MANUAL)
    K("EVENT_SET", PSHM_EVENT_SET)
    K("SEM_VALUE_MAX", (long)PSHM_SEM_VALUE_MAX)
    K("BARRIER_MAX", PSHM_BARRIER_MAX)
    K("EBUSY", -EBUSY)
    K("EAGAIN", -EAGAIN)
    K("ETIMEDOUT", -ETIMEDOUT)
    K("EDEADLK", -EDEADLK)
    K("EPERM", -EPERM)
    K("EINVAL", -EINVAL)
    K("EOWNERDEAD", -PSHM_EOWNERDEAD)
    K("ENOTRECOVERABLE", -PSHM_ENOTRECOVERABLE)
    K("EBROKEN", -PSHM_EBROKEN)
#undef K
    return 0;
}

static PyModuleDef_Slot sync_slots[] = {
    {Py_mod_exec, sync_exec},
    {0, NULL},
};

static struct PyModuleDef sync_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pshm._sync",
    .m_doc = "Named pshm synchronisation objects (internal; see pshm.synchronize).",
    .m_size = 0,
    .m_slots = sync_slots,
};

PyMODINIT_FUNC PyInit__sync(void)
{
    return PyModuleDef_Init(&sync_module);
}
