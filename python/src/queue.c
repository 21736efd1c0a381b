/* SPDX-License-Identifier: MIT */
/*
 * queue.c - pshm._queue: handles on libpshm queues for pshm/queues.py.
 *
 * A message is one queue record: a 16-byte frame header, the metadata the
 * Python layer chose (dtype and shape of an array, nothing for bytes), then
 * the payload at the next 16-byte boundary, so that a zero-copy view of a
 * numpy payload is aligned for any dtype. The frame is checked against the
 * record's length before anything is used: a peer's corrupt frame is a
 * ValueError, never a read outside the record.
 *
 * Copies and waits run with the GIL released (copies above COPY_GIL_MAX
 * bytes; below that a thread switch costs more than the copy). Waits try
 * once with the GIL held, then wait in PSHMPY_SLICE_MS slices.
 *
 * A View is a zero-copy message: a buffer over the record in the ring,
 * valid until Handle.release(); or, writable, the payload of a reservation
 * (the zero-copy send: reserve(), fill, commit() or cancel()). It holds a reference to its Handle, so the
 * ring stays mapped while any view (or numpy array made from one) is alive:
 * a stale view reads bytes the producer may have reused, but never faults.
 * Handle.close() refuses (BufferError) while Views are alive. (Views are
 * counted, not buffer exports: numpy releases its export at once and keeps
 * the exporting object as the array's base.)
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define COPY_GIL_MAX (64u << 10)
#define FRAME_MAGIC 0x5051u /* "QP" */
#define FRAME_META_MAX 4096u

/* The frame at the start of every record. */
typedef struct frame {
    uint16_t magic;
    uint8_t tag;     /* chosen by queues.py: bytes, bytearray, pickle, ndarray */
    uint8_t pad;
    uint32_t meta_len;
    uint64_t data_len;
} frame;

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

/* Bumped in every child after fork(): a handle opened by another process
 * generation must not be used (pshm_queue's fork rule); queues.py reopens. */
static unsigned long fork_generation;

static void after_fork_child(void)
{
    fork_generation++;
}

typedef struct {
    PyObject_HEAD
    pshm_queue *q;
    pshm_block *anchor;   /* for an anchor handle: the block kept open */
    PyObject *name;
    unsigned long generation;
    Py_ssize_t exports;   /* Views alive: numpy keeps the View (not the buffer
                             export) as an array's base, so Views are counted */
    int peeked;           /* a message is peeked and not released */
    int reserved;         /* a reservation is pending (reserve() without commit/cancel) */
    size_t reserved_n;    /* its record length, frame included */
    unsigned long reserve_seq; /* bumped at every commit/cancel: a View of an older
                                  reservation refuses new buffer exports */
    int role;
} QueueObject;

/* A View of a peeked message (read-only), or of a pending reservation's
 * payload (writable: new exports are refused once that reservation is
 * committed or cancelled, as seq tells). */
typedef struct {
    PyObject_HEAD
    QueueObject *owner;
    char *ptr;
    Py_ssize_t len;
    int writable;
    unsigned long seq;
} ViewObject;

typedef struct {
    PyTypeObject *view_type;
} module_state;

/* ------------------------------------------------------------ handles */

static int usable(QueueObject *self)
{
    if (!self->q) {
        PyErr_Format(PyExc_ValueError, "queue '%U' is closed in this handle", self->name);
        return -1;
    }
    if (self->generation != fork_generation) {
        PyErr_Format(PyExc_ValueError,
                     "queue handle on '%U' was opened by the parent of this forked process",
                     self->name);
        return -1;
    }
    return 0;
}

static const char *mode_names[] = {"", "spsc", "mpmc", "broadcast"};

static int parse_mode(const char *s)
{
    for (int i = 1; i <= 3; i++)
        if (strcmp(s, mode_names[i]) == 0)
            return i;
    return 0;
}

/* Handle(name, role, create=False, mode='spsc', max_msg=4096, ring_bytes=0,
 * messages=0, overwrite=False, lifetime=0, keep_open=True, spin=2000,
 * max_participants=64, prefault=False) */
static PyObject *Queue_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "role", "create", "mode", "max_msg", "ring_bytes",
                             "messages", "overwrite", "lifetime", "keep_open", "spin",
                             "max_participants", "prefault", NULL};
    PyObject *name = Py_None;
    const char *mode = "spsc";
    int role = 0, create = 0, overwrite = 0, lifetime = 0, keep_open = 1, prefault = 0;
    Py_ssize_t max_msg = 4096, ring_bytes = 0, messages = 0;
    unsigned spin = 2000, max_participants = 64;
    char cname[PSHM_NAME_MAX + 2];
    pshm_queue_options opt;
    pshm_queue *q = NULL;
    QueueObject *self;
    int r;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oi|psnnnpipIIp:Handle", kwlist, &name, &role,
                                     &create, &mode, &max_msg, &ring_bytes, &messages,
                                     &overwrite, &lifetime, &keep_open, &spin,
                                     &max_participants, &prefault))
        return NULL;
    if (name != Py_None && pshmpy_name(name, cname, sizeof cname) < 0)
        return NULL;
    if (role != PSHM_QUEUE_PRODUCER && role != PSHM_QUEUE_CONSUMER) {
        PyErr_Format(PyExc_ValueError, "unknown queue role %d", role);
        return NULL;
    }
    pshm_queue_options_init(&opt);
    if (!(opt.queue_mode = (pshm_queue_mode)parse_mode(mode))) {
        PyErr_Format(PyExc_ValueError, "mode must be 'spsc', 'mpmc' or 'broadcast', not '%s'",
                     mode);
        return NULL;
    }
    if (max_msg < 1 || ring_bytes < 0 || messages < 0 || lifetime < 0 || lifetime > 2) {
        PyErr_SetString(PyExc_ValueError, "max_msg must be >= 1, sizes >= 0, lifetime 0..2");
        return NULL;
    }
    opt.max_msg = (size_t)max_msg;
    if (ring_bytes)
        opt.ring_bytes = (size_t)ring_bytes;
    opt.messages = (size_t)messages;
    opt.overwrite = overwrite;
    opt.lifetime = (pshm_lifetime)lifetime;
    opt.keep_open = keep_open;
    opt.spin = spin;
    opt.max_participants = max_participants;
    opt.prefault = prefault;
    if (name == Py_None && !create) {
        PyErr_SetString(PyExc_TypeError, "opening a queue needs its name");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (create)
        r = pshm_queue_create(name == Py_None ? NULL : cname, (pshm_queue_role)role, &opt, &q);
    else
        r = pshm_queue_open(cname, (pshm_queue_role)role, &opt, &q);
    Py_END_ALLOW_THREADS
    if (r < 0) {
        if (r == -PSHM_EKIND && name != Py_None) {
            PyErr_Format(PyExc_ValueError, "'%U' is not a pshm queue", name);
            return NULL;
        }
        if (r == -PSHM_EROLE) {
            PyErr_Format(PyExc_ValueError,
                         "queue '%U': the %s role is held by another live handle (one "
                         "producer%s at a time in this mode)",
                         name, role == PSHM_QUEUE_PRODUCER ? "producer" : "consumer",
                         role == PSHM_QUEUE_PRODUCER ? "" : " and one consumer");
            return NULL;
        }
        return pshmpy_raise(r, name == Py_None ? NULL : name);
    }
    self = (QueueObject *)type->tp_alloc(type, 0);
    if (!self) {
        pshm_queue_close(q);
        return NULL;
    }
    self->q = q;
    self->role = role;
    self->generation = fork_generation;
    self->name = PyUnicode_FromString(pshm_block_name(pshm_queue_block(q)));
    if (!self->name) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void Queue_dealloc(QueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    /* In a forked child pshm_queue_close only unmaps, as the library asks. */
    if (self->q)
        pshm_queue_close(self->q);
    if (self->anchor)
        pshm_block_close(self->anchor);
    Py_XDECREF(self->name);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* -------------------------------------------------------------- waits */

typedef struct {
    pshm_queue *q;
    size_t n;
    void *ptr;
    size_t len;
} wait_ctx;

static int reserve_slice(void *c, const struct timespec *until)
{
    wait_ctx *w = c;

    return pshm_queue_timedreserve(w->q, w->n, &w->ptr, until);
}

static int peek_slice(void *c, const struct timespec *until)
{
    wait_ctx *w = c;
    const void *p;
    int r = pshm_queue_timedpeek(w->q, &p, &w->len, until);

    w->ptr = (void *)p;
    return r;
}

/* "block, timeout" -> 1 try once, 0 wait until *d, -1 exception. */
static int block_timeout(int block, PyObject *timeout, pshmpy_deadline *d)
{
    if (!block)
        return 1;
    return pshmpy_deadline_from(timeout, d) < 0 ? -1 : 0;
}

static void copy_maybe_nogil(void *dst, const void *src, size_t n)
{
    if (n <= COPY_GIL_MAX) {
        memcpy(dst, src, n);
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    memcpy(dst, src, n);
    Py_END_ALLOW_THREADS
}

/* A received copy of HUGE_COPY bytes or more lands in memory just allocated
 * (a fresh mmap inside malloc): ask for transparent huge pages before the
 * first write, as numpy does for its large arrays, or the copy pays one page
 * fault every 4 KiB (64 MiB: 16384 faults, ~10x the copy itself on a VM). A
 * hint: where THP is off it changes nothing. */
#define HUGE_COPY ((size_t)4 << 20)

static void advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    if (n < HUGE_COPY)
        return;
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, e = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

/* send(tag, meta, data, block=True, timeout=None) -> 0, or -EAGAIN /
 * -ETIMEDOUT (full), -PSHM_ECLOSED (shut down). */
static PyObject *Queue_send(QueueObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"tag", "meta", "data", "block", "timeout", NULL};
    int tag, block = 1, once, r;
    Py_buffer meta, data;
    PyObject *timeout = Py_None;
    pshmpy_deadline d;
    wait_ctx c;
    frame f;
    size_t head;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*y*|pO:send", kwlist, &tag, &meta, &data,
                                     &block, &timeout))
        return NULL;
    if (usable(self) < 0 || (once = block_timeout(block, timeout, &d)) < 0)
        goto fail;
    if ((size_t)meta.len > FRAME_META_MAX || tag < 0 || tag > 255) {
        PyErr_SetString(PyExc_ValueError, "message metadata too long");
        goto fail;
    }
    head = ALIGN16(sizeof f + (size_t)meta.len);
    c.q = self->q;
    c.n = head + (size_t)data.len;
    if (c.n > pshm_queue_max_msg(self->q)) {
        PyErr_Format(PyExc_ValueError,
                     "message of %zd bytes is larger than queue '%U' takes (max_msg=%zu bytes, "
                     "%zu of them for the payload here): make the Queue with a larger max_msg",
                     data.len, self->name, pshm_queue_max_msg(self->q),
                     pshm_queue_max_msg(self->q) > head ? pshm_queue_max_msg(self->q) - head : 0);
        goto fail;
    }
    r = pshm_queue_tryreserve(self->q, c.n, &c.ptr);
    if (r == -EAGAIN && !once)
        r = pshmpy_wait(reserve_slice, &c, &d);
    if (r == PSHMPY_EXC)
        goto fail;
    if (r == -EAGAIN || r == -ETIMEDOUT || r == -PSHM_ECLOSED) {
        PyBuffer_Release(&meta);
        PyBuffer_Release(&data);
        return PyLong_FromLong(r);
    }
    if (r < 0) {
        pshmpy_raise(r, self->name);
        goto fail;
    }
    f.magic = FRAME_MAGIC;
    f.tag = (uint8_t)tag;
    f.pad = 0;
    f.meta_len = (uint32_t)meta.len;
    f.data_len = (uint64_t)data.len;
    memcpy(c.ptr, &f, sizeof f);
    memcpy((char *)c.ptr + sizeof f, meta.buf, (size_t)meta.len);
    copy_maybe_nogil((char *)c.ptr + head, data.buf, (size_t)data.len);
    r = pshm_queue_commit(self->q, c.n);
    PyBuffer_Release(&meta);
    PyBuffer_Release(&data);
    if (r < 0)
        return pshmpy_raise(r, self->name);
    return PyLong_FromLong(0);
fail:
    PyBuffer_Release(&meta);
    PyBuffer_Release(&data);
    return NULL;
}

/* The start of a consumer's wait: 1 try once, 0 wait until *d, or -1 with
 * an exception (closed or stale handle, bad timeout, a view still held). */
static int wait_start(QueueObject *self, int block, PyObject *timeout, pshmpy_deadline *d)
{
    int once;

    if (usable(self) < 0 || (once = block_timeout(block, timeout, d)) < 0)
        return -1;
    if (self->peeked) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a view of the previous message is still held: leave its 'with' first");
        return -1;
    }
    return once;
}

/* Peek (try, then wait): 0 with c->ptr/len, a code that is an answer, or
 * PSHMPY_EXC / another error with the exception set (returns -1 then). */
static int peek(QueueObject *self, int block, PyObject *timeout, wait_ctx *c)
{
    pshmpy_deadline d;
    const void *p;
    int once, r;

    if ((once = wait_start(self, block, timeout, &d)) < 0)
        return -1;
    c->q = self->q;
    r = pshm_queue_trypeek(self->q, &p, &c->len);
    c->ptr = (void *)p;
    if (r == -EAGAIN && !once)
        r = pshmpy_wait(peek_slice, c, &d);
    if (r == PSHMPY_EXC)
        return -1;
    if (r == 0 || r == -EAGAIN || r == -ETIMEDOUT || r == -PSHM_ECLOSED)
        return r;
    pshmpy_raise(r, self->name);
    return -1;
}

/* Is the record at ptr (len bytes) a frame? 1 with *f and the offset of
 * the payload in *head, or 0. */
static int frame_ok(const void *ptr, size_t len, frame *f, size_t *head)
{
    if (len < sizeof *f)
        return 0;
    memcpy(f, ptr, sizeof *f);
    if (f->magic != FRAME_MAGIC || f->meta_len > FRAME_META_MAX)
        return 0;
    *head = ALIGN16(sizeof *f + f->meta_len);
    return *head <= len && f->data_len == len - *head;
}

/* The frame of a peeked record, checked against the record: 0 and the
 * offset of the payload, or -1 with ValueError set (the message is then
 * released: it can never be read). */
static int check_frame(QueueObject *self, const wait_ctx *c, frame *f, size_t *head)
{
    if (frame_ok(c->ptr, c->len, f, head))
        return 0;
    (void)pshm_queue_release(self->q);
    PyErr_Format(PyExc_ValueError,
                 "queue '%U': a message of %zu bytes is not a pshm.Queue message "
                 "(sent by another program?); it was dropped", self->name, c->len);
    return -1;
}

static PyObject *answer_tuple(int r)
{
    return Py_BuildValue("(iOO)", r, Py_None, Py_None);
}

/* recv and peek's common start: parse (block, timeout), wait for the next
 * message and check its frame. 1: a frame is ready in *c, *f, *head; 0:
 * return *out (the (code, None, None) answer, or NULL with an exception). */
static int next_frame(QueueObject *self, PyObject *args, PyObject *kw, const char *fmt,
                      wait_ctx *c, frame *f, size_t *head, PyObject **out)
{
    static char *kwlist[] = {"block", "timeout", NULL};
    int block = 1, r;
    PyObject *timeout = Py_None;

    *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &block, &timeout))
        return 0;
    r = peek(self, block, timeout, c);
    if (r < 0 && r != -EAGAIN && r != -ETIMEDOUT && r != -PSHM_ECLOSED)
        return 0;
    if (r) {
        *out = answer_tuple(r);
        return 0;
    }
    return check_frame(self, c, f, head) < 0 ? 0 : 1;
}

/* A received frame's meta (bytes) and data (bytes for tag 0, a writable
 * bytearray otherwise: numpy arrays built on it are writable, as a received
 * copy should be), copied out of the message at ptr. 0, or -1 with an
 * exception set and nothing made. */
static int frame_copy(const void *ptr, const frame *f, size_t head, PyObject **meta,
                      PyObject **data)
{
    *meta = PyBytes_FromStringAndSize((const char *)ptr + sizeof *f, f->meta_len);
    *data = f->tag == 0 ? PyBytes_FromStringAndSize(NULL, (Py_ssize_t)f->data_len)
                        : PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)f->data_len);
    if (!*meta || !*data) {
        Py_CLEAR(*meta);
        Py_CLEAR(*data);
        return -1;
    }
    char *dst = f->tag == 0 ? PyBytes_AS_STRING(*data) : PyByteArray_AS_STRING(*data);
    advise_huge(dst, (size_t)f->data_len);
    copy_maybe_nogil(dst, (const char *)ptr + head, (size_t)f->data_len);
    return 0;
}

/* recv(block=True, timeout=None, kind=0) -> (0, tag, meta, data) where data
 * is bytes (kind 0) or bytearray (kind 1), or (code, None, None) for
 * -EAGAIN / -ETIMEDOUT / -PSHM_ECLOSED / -PSHM_EOVERWRITTEN. */
static PyObject *Queue_recv(QueueObject *self, PyObject *args, PyObject *kw)
{
    PyObject *meta = NULL, *data = NULL, *res;
    wait_ctx c;
    frame f;
    size_t head;
    int r;

    if (!next_frame(self, args, kw, "|pO:recv", &c, &f, &head, &res))
        return res;
    if (frame_copy(c.ptr, &f, head, &meta, &data) < 0)
        return NULL; /* not consumed: the message stays next (nothing was released) */
    r = pshm_queue_release(self->q);
    if (r == -PSHM_EOVERWRITTEN) {
        Py_DECREF(meta);
        Py_DECREF(data);
        return answer_tuple(r);
    }
    if (r < 0) {
        Py_DECREF(meta);
        Py_DECREF(data);
        return pshmpy_raise(r, self->name);
    }
    res = Py_BuildValue("(iiNN)", 0, (int)f.tag, meta, data);
    return res;
}

/* peek(block=True, timeout=None) -> (0, tag, meta, View) or (code, None,
 * None). The message stays claimed by this handle until release(). */
static PyObject *Queue_peek(QueueObject *self, PyObject *args, PyObject *kw)
{
    PyObject *meta, *res;
    module_state *st = PyType_GetModuleState(Py_TYPE(self));
    ViewObject *v;
    wait_ctx c;
    frame f;
    size_t head;

    if (!next_frame(self, args, kw, "|pO:peek", &c, &f, &head, &res))
        return res;
    self->peeked = 1;
    meta = PyBytes_FromStringAndSize((const char *)c.ptr + sizeof f, f.meta_len);
    v = PyObject_New(ViewObject, st->view_type);
    if (!meta || !v) {
        Py_XDECREF(meta);
        Py_XDECREF(v);
        return NULL; /* still peeked: release() gives it up */
    }
    v->owner = (QueueObject *)Py_NewRef(self);
    self->exports++;
    v->ptr = (char *)c.ptr + head;
    v->len = (Py_ssize_t)f.data_len;
    v->writable = 0;
    v->seq = 0;
    return Py_BuildValue("(iiNN)", 0, (int)f.tag, meta, (PyObject *)v);
}

/* A batch claim (recvmany): the most messages one call claims; a larger
 * max_items is served in several calls by the caller. */
#define RECVMANY_MAX 4096u
/* ... and the bytes it copies out, after the first message: each copy is a
 * new bytes object, all alive at once, and glibc gives a freed batch of
 * many megabytes back to the kernel (its trim threshold follows the largest
 * block freed: ~2x a message), so the next batch pays a page fault and a
 * page clearing every 4 KiB. 64 messages of 1 MiB a call measured 462 us a
 * message against 48 us for get() (bench_queue_py.py, drain); one at a
 * time they cost what get() does. */
#define RECVMANY_BYTES ((size_t)1 << 20)

typedef struct many_ctx {
    pshm_queue *q;
    const void **ptrs;
    size_t *lens;
    size_t max;
    size_t n;
} many_ctx;

static int peekmany_slice(void *c, const struct timespec *until)
{
    many_ctx *m = c;

    return pshm_queue_timedpeekmany(m->q, m->ptrs, m->lens, m->max, &m->n, until);
}

/* One claimed record as recv gives it: (tag, meta, data), or (-1, None,
 * message) for a record that is not a pshm.Queue message (queues.py raises
 * ValueError for it when its turn comes, as get() does). */
static PyObject *many_item(QueueObject *self, const void *ptr, size_t len)
{
    PyObject *meta, *data;
    frame f;
    size_t head;

    if (!frame_ok(ptr, len, &f, &head))
        return Py_BuildValue("(iON)", -1, Py_None,
                             PyUnicode_FromFormat("queue '%U': a message of %zu bytes is not a "
                                                  "pshm.Queue message (sent by another "
                                                  "program?); it was dropped",
                                                  self->name, len));
    if (frame_copy(ptr, &f, head, &meta, &data) < 0)
        return NULL;
    return Py_BuildValue("(iNN)", (int)f.tag, meta, data);
}

/* Claim up to m->max messages (try, then wait): 0 with m->n, an answer
 * code, or -1 with an exception set. */
static int peekmany(QueueObject *self, int block, PyObject *timeout, many_ctx *m)
{
    pshmpy_deadline d;
    int once, r;

    if ((once = wait_start(self, block, timeout, &d)) < 0)
        return -1;
    m->q = self->q;
    r = pshm_queue_trypeekmany(self->q, m->ptrs, m->lens, m->max, &m->n);
    if (r == -EAGAIN && !once)
        r = pshmpy_wait(peekmany_slice, m, &d);
    if (r == PSHMPY_EXC)
        return -1;
    if (r == 0 || r == -EAGAIN || r == -ETIMEDOUT || r == -PSHM_ECLOSED || r == -ENOTSUP)
        return r;
    pshmpy_raise(r, self->name);
    return -1;
}

/* recvmany(max_items, block=True, timeout=None) -> (0, [(tag, meta, data),
 * ...]) with 1..min(max_items, RECVMANY_MAX) items (past the first, while
 * they add up to less than RECVMANY_BYTES), claimed with peekmany and
 * consumed with one releasemany (a record that is not a
 * pshm.Queue message is consumed too and comes as (-1, None, text)); or
 * (code, None) for -EAGAIN / -ETIMEDOUT / -PSHM_ECLOSED / -ENOTSUP (a
 * BROADCAST queue: queues.py falls back to recv). If building the list
 * fails (MemoryError) the batch is consumed all the same: a claim cannot
 * be given back one message at a time. */
static PyObject *Queue_recvmany(QueueObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"max_items", "block", "timeout", NULL};
    Py_ssize_t max;
    int block = 1, r;
    PyObject *timeout = Py_None, *list = NULL;
    many_ctx m = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|pO:recvmany", kwlist, &max, &block, &timeout))
        return NULL;
    if (max < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be >= 1");
        return NULL;
    }
    m.max = (size_t)max < RECVMANY_MAX ? (size_t)max : RECVMANY_MAX;
    m.ptrs = PyMem_Malloc(m.max * sizeof *m.ptrs);
    m.lens = PyMem_Malloc(m.max * sizeof *m.lens);
    if (!m.ptrs || !m.lens) {
        PyErr_NoMemory();
        goto out;
    }
    /* The first message (waiting for it as asked), then more without
     * waiting while they fit in RECVMANY_BYTES, claimed as many at a time
     * as the first one's size says would fit. */
    size_t want = m.max, bytes;
    m.max = 1;
    r = peekmany(self, block, timeout, &m);
    if (r < 0 && r != -EAGAIN && r != -ETIMEDOUT && r != -PSHM_ECLOSED && r != -ENOTSUP)
        goto out;
    if (r) {
        list = Py_BuildValue("(iO)", r, Py_None);
        goto out;
    }
    bytes = m.lens[0];
    while (m.n < want && bytes < RECVMANY_BYTES) {
        size_t k = (RECVMANY_BYTES - bytes) / (m.lens[0] ? m.lens[0] : 1), got = 0;
        k = k < 1 ? 1 : k > want - m.n ? want - m.n : k;
        /* an error here (nothing more, or a bad record) is the next call's */
        if (pshm_queue_trypeekmany(self->q, m.ptrs + m.n, m.lens + m.n, k, &got) != 0 || !got)
            break;
        for (size_t i = m.n; i < m.n + got; i++)
            bytes += m.lens[i];
        m.n += got;
    }
    list = PyList_New((Py_ssize_t)m.n);
    for (size_t i = 0; list && i < m.n; i++) {
        PyObject *it = many_item(self, m.ptrs[i], m.lens[i]);
        if (!it)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, it);
    }
    r = pshm_queue_releasemany(self->q, m.n);
    if (r < 0) {
        Py_XDECREF(list);
        list = NULL;
        if (!PyErr_Occurred())
            pshmpy_raise(r, self->name);
        goto out;
    }
    if (list)
        list = Py_BuildValue("(iN)", 0, list);
out:
    PyMem_Free(m.ptrs);
    PyMem_Free(m.lens);
    return list;
}

/* release() -> 0 or -PSHM_EOVERWRITTEN: give the peeked message up. */
static PyObject *Queue_release(QueueObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (usable(self) < 0)
        return NULL;
    r = pshm_queue_release(self->q);
    self->peeked = 0;
    if (r == 0 || r == -PSHM_EOVERWRITTEN)
        return PyLong_FromLong(r);
    return pshmpy_raise(r, self->name);
}

/* reserve(tag, meta, nbytes, block=True, timeout=None) -> (0, View) or
 * (code, None) for -EAGAIN / -ETIMEDOUT / -PSHM_ECLOSED. The frame (tag,
 * meta, nbytes) is written at once; the payload is the writable View's buffer,
 * published by commit() or dropped by cancel(). */
static PyObject *Queue_reserve(QueueObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"tag", "meta", "nbytes", "block", "timeout", NULL};
    int tag, block = 1, once, r;
    Py_buffer meta;
    Py_ssize_t nbytes;
    PyObject *timeout = Py_None;
    module_state *st = PyType_GetModuleState(Py_TYPE(self));
    pshmpy_deadline d;
    ViewObject *s;
    wait_ctx c;
    frame f;
    size_t head;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*n|pO:reserve", kwlist, &tag, &meta,
                                     &nbytes, &block, &timeout))
        return NULL;
    if (usable(self) < 0 || (once = block_timeout(block, timeout, &d)) < 0)
        goto fail;
    if (self->reserved) {
        PyErr_Format(PyExc_RuntimeError,
                     "queue '%U': a reservation is already pending in this handle (leave "
                     "its 'with' first)", self->name);
        goto fail;
    }
    if ((size_t)meta.len > FRAME_META_MAX || tag < 0 || tag > 255 || nbytes < 0) {
        PyErr_SetString(PyExc_ValueError, "bad reservation: metadata too long or nbytes < 0");
        goto fail;
    }
    head = ALIGN16(sizeof f + (size_t)meta.len);
    c.q = self->q;
    c.n = head + (size_t)nbytes;
    if ((size_t)nbytes > pshm_queue_max_msg(self->q) || c.n > pshm_queue_max_msg(self->q)) {
        PyErr_Format(PyExc_ValueError,
                     "message of %zd bytes is larger than queue '%U' takes (max_msg=%zu bytes, "
                     "%zu of them for the payload here): make the Queue with a larger max_msg",
                     nbytes, self->name, pshm_queue_max_msg(self->q),
                     pshm_queue_max_msg(self->q) > head ? pshm_queue_max_msg(self->q) - head : 0);
        goto fail;
    }
    s = PyObject_New(ViewObject, st->view_type);
    if (!s)
        goto fail;
    s->owner = NULL;
    r = pshm_queue_tryreserve(self->q, c.n, &c.ptr);
    if (r == -EAGAIN && !once)
        r = pshmpy_wait(reserve_slice, &c, &d);
    if (r < 0) {
        Py_DECREF(s);
        PyBuffer_Release(&meta);
        if (r == -EAGAIN || r == -ETIMEDOUT || r == -PSHM_ECLOSED)
            return Py_BuildValue("(iO)", r, Py_None);
        return r == PSHMPY_EXC ? NULL : pshmpy_raise(r, self->name);
    }
    f.magic = FRAME_MAGIC;
    f.tag = (uint8_t)tag;
    f.pad = 0;
    f.meta_len = (uint32_t)meta.len;
    f.data_len = (uint64_t)nbytes;
    memcpy(c.ptr, &f, sizeof f);
    memcpy((char *)c.ptr + sizeof f, meta.buf, (size_t)meta.len);
    PyBuffer_Release(&meta);
    self->reserved = 1;
    self->reserved_n = c.n;
    s->owner = (QueueObject *)Py_NewRef(self);
    self->exports++;
    s->ptr = (char *)c.ptr + head;
    s->len = nbytes;
    s->writable = 1;
    s->seq = self->reserve_seq;
    return Py_BuildValue("(iN)", 0, (PyObject *)s);
fail:
    PyBuffer_Release(&meta);
    return NULL;
}

/* commit() / cancel(): end the pending reservation (the whole reserved
 * record is published: the frame already says its payload length). */
static PyObject *end_reservation(QueueObject *self, int commit)
{
    int r;

    if (usable(self) < 0)
        return NULL;
    if (!self->reserved) {
        PyErr_Format(PyExc_RuntimeError, "queue '%U': no reservation is pending", self->name);
        return NULL;
    }
    self->reserved = 0;
    self->reserve_seq++;
    r = commit ? pshm_queue_commit(self->q, self->reserved_n) : pshm_queue_cancel(self->q);
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Queue_commit(QueueObject *self, PyObject *unused)
{
    (void)unused;
    return end_reservation(self, 1);
}

static PyObject *Queue_cancel(QueueObject *self, PyObject *unused)
{
    (void)unused;
    return end_reservation(self, 0);
}

static PyObject *Queue_shutdown(QueueObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (usable(self) < 0)
        return NULL;
    r = pshm_queue_shutdown(self->q);
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Queue_close(QueueObject *self, PyObject *unused)
{
    int r = 0;

    (void)unused;
    if (self->exports > 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot close queue '%U': %zd view(s) of its messages still exist",
                     self->name, self->exports);
        return NULL;
    }
    if (self->q) {
        Py_BEGIN_ALLOW_THREADS
        r = pshm_queue_close(self->q);
        Py_END_ALLOW_THREADS
        self->q = NULL;
    }
    if (self->anchor) {
        int r2 = pshm_block_close(self->anchor);

        self->anchor = NULL;
        if (!r)
            r = r2;
    }
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

/* anchor(): open a plain block handle on the queue, so that an AUTO queue
 * stays while this object lives even with no participant (see queues.py). */
static PyObject *Queue_anchor(QueueObject *self, PyObject *unused)
{
    char cname[PSHM_NAME_MAX + 2];
    int r;

    (void)unused;
    if (usable(self) < 0)
        return NULL;
    if (self->anchor)
        Py_RETURN_NONE;
    if (pshmpy_name(self->name, cname, sizeof cname) < 0)
        return NULL;
    r = pshm_block_open(cname, NULL, &self->anchor);
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Queue_drop_participant(QueueObject *self, PyObject *unused)
{
    int r;

    (void)unused;
    if (!self->q)
        Py_RETURN_NONE;
    r = pshm_queue_close(self->q);
    self->q = NULL;
    if (r < 0)
        return pshmpy_raise(r, self->name);
    Py_RETURN_NONE;
}

static PyObject *Queue_get_name(QueueObject *self, void *unused)
{
    (void)unused;
    return Py_NewRef(self->name);
}

static PyObject *Queue_get_max_msg(QueueObject *self, void *unused)
{
    (void)unused;
    return PyLong_FromSize_t(self->q ? pshm_queue_max_msg(self->q) : 0);
}

static PyObject *Queue_get_stale(QueueObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(self->generation != fork_generation);
}

static PyObject *Queue_get_closed(QueueObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(self->q == NULL && self->anchor == NULL);
}

static PyMethodDef Queue_methods[] = {
    {"send", (PyCFunction)(void (*)(void))Queue_send, METH_VARARGS | METH_KEYWORDS,
     "send(tag, meta, data, block=True, timeout=None) -> 0 or a negative code."},
    {"recv", (PyCFunction)(void (*)(void))Queue_recv, METH_VARARGS | METH_KEYWORDS,
     "recv(block=True, timeout=None) -> (0, tag, meta, data) or (code, None, None)."},
    {"peek", (PyCFunction)(void (*)(void))Queue_peek, METH_VARARGS | METH_KEYWORDS,
     "peek(block=True, timeout=None) -> (0, tag, meta, View) or (code, None, None)."},
    {"recvmany", (PyCFunction)(void (*)(void))Queue_recvmany, METH_VARARGS | METH_KEYWORDS,
     "recvmany(max_items, block=True, timeout=None) -> (0, [(tag, meta, data), ...]) or "
     "(code, None): a batch claim, consumed at once."},
    {"release", (PyCFunction)Queue_release, METH_NOARGS,
     "release() -> 0 or -EOVERWRITTEN: give up the peeked message."},
    {"reserve", (PyCFunction)(void (*)(void))Queue_reserve, METH_VARARGS | METH_KEYWORDS,
     "reserve(tag, meta, nbytes, block=True, timeout=None) -> (0, View) or (code, None)."},
    {"commit", (PyCFunction)Queue_commit, METH_NOARGS,
     "commit(): publish the pending reservation."},
    {"cancel", (PyCFunction)Queue_cancel, METH_NOARGS,
     "cancel(): drop the pending reservation."},
    {"shutdown", (PyCFunction)Queue_shutdown, METH_NOARGS, "shutdown(): end the stream."},
    {"close", (PyCFunction)Queue_close, METH_NOARGS,
     "close(): leave the queue (BufferError while views exist)."},
    {"anchor", (PyCFunction)Queue_anchor, METH_NOARGS,
     "anchor(): keep the queue's block open in this object."},
    {"drop_participant", (PyCFunction)Queue_drop_participant, METH_NOARGS,
     "drop_participant(): leave the queue, keeping the anchor."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Queue_getset[] = {
    {"name", (getter)Queue_get_name, NULL, "the queue's name", NULL},
    {"max_msg", (getter)Queue_get_max_msg, NULL, "largest record in bytes", NULL},
    {"stale", (getter)Queue_get_stale, NULL, "True in a forked child of the opener", NULL},
    {"closed", (getter)Queue_get_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Queue_slots[] = {
    {Py_tp_new, Queue_new},
    {Py_tp_dealloc, Queue_dealloc},
    {Py_tp_methods, Queue_methods},
    {Py_tp_getset, Queue_getset},
    {Py_tp_doc, "A handle on a pshm queue in one role (internal: see pshm.queues)."},
    {0, NULL},
};

static PyType_Spec Queue_spec = {
    .name = "pshm._queue.Handle",
    .basicsize = sizeof(QueueObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Queue_slots,
};

/* --------------------------------------------------------------- views */

static int View_getbuffer(ViewObject *self, Py_buffer *view, int flags)
{
    QueueObject *o = self->owner;

    if (!o->q) {
        PyErr_SetString(PyExc_ValueError, "the queue of this view is closed");
        return -1;
    }
    if (self->writable && (!o->reserved || o->reserve_seq != self->seq)) {
        PyErr_SetString(PyExc_ValueError,
                        "this reservation was committed or cancelled: its slot is gone");
        return -1;
    }
    return PyBuffer_FillInfo(view, (PyObject *)self, self->ptr, self->len, !self->writable,
                             flags);
}

static void View_dealloc(ViewObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    if (self->owner) {
        self->owner->exports--;
        Py_DECREF(self->owner);
    }
    PyObject_Free(self);
    Py_DECREF(tp);
}

static PyObject *View_len(ViewObject *self, void *unused)
{
    (void)unused;
    return PyLong_FromSsize_t(self->len);
}

static PyGetSetDef View_getset[] = {
    {"nbytes", (getter)View_len, NULL, "payload bytes", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot View_slots[] = {
    {Py_bf_getbuffer, View_getbuffer},
    {Py_tp_dealloc, View_dealloc},
    {Py_tp_getset, View_getset},
    {Py_tp_doc, "A message's payload in the ring: read-only for a peeked message, "
                "writable for a reservation (internal)."},
    {0, NULL},
};

static PyType_Spec View_spec = {
    .name = "pshm._queue.View",
    .basicsize = sizeof(ViewObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = View_slots,
};

/* stat(name) -> dict: pshm_queue_stat, without joining the queue. */
static PyObject *mod_stat(PyObject *m, PyObject *name)
{
    char cname[PSHM_NAME_MAX + 2];
    pshm_queue_info i;
    int r;

    (void)m;
    if (pshmpy_name(name, cname, sizeof cname) < 0)
        return NULL;
    pshm_queue_info_init(&i);
    Py_BEGIN_ALLOW_THREADS
    r = pshm_queue_stat(cname, &i);
    Py_END_ALLOW_THREADS
    if (r == -PSHM_EKIND) {
        PyErr_Format(PyExc_ValueError, "'%U' is not a pshm queue", name);
        return NULL;
    }
    if (r < 0)
        return pshmpy_raise(r, name);
    return Py_BuildValue(
        "{s:s,s:i,s:i,s:I,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "mode",
        pshm_queue_mode_name(i.queue_mode), "overwrite", i.overwrite, "shut_down", i.shut_down,
        "producers", i.producers, "consumers", i.consumers, "ring_bytes",
        (unsigned long long)i.ring_bytes, "slots", (unsigned long long)i.slots, "max_msg",
        (unsigned long long)i.max_msg, "depth", (unsigned long long)i.depth, "depth_bytes",
        (unsigned long long)i.depth_bytes, "messages", (unsigned long long)i.messages,
        "received", (unsigned long long)i.received, "drops", (unsigned long long)i.drops,
        "lost_reservations", (unsigned long long)i.lost_reservations, "redeliveries",
        (unsigned long long)i.redeliveries, "overruns", (unsigned long long)i.overruns);
}

/* unlink(name): remove the queue's name. */
static PyObject *mod_unlink(PyObject *m, PyObject *name)
{
    char cname[PSHM_NAME_MAX + 2];
    int r;

    (void)m;
    if (pshmpy_name(name, cname, sizeof cname) < 0)
        return NULL;
    r = pshm_unlink(cname);
    if (r < 0)
        return pshmpy_raise(r, name);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"unlink", mod_unlink, METH_O, "unlink(name): remove the queue's name."},
    {"stat", mod_stat, METH_O, "stat(name) -> dict: the queue's geometry and counters."},
    {NULL, NULL, 0, NULL},
};

/* -------------------------------------------------------------- module */

static int queue_exec(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    PyObject *t;

    t = PyType_FromModuleAndSpec(m, &Queue_spec, NULL);
    if (!t || PyModule_AddObject(m, "Handle", t) < 0) {
        Py_XDECREF(t);
        return -1;
    }
    st->view_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &View_spec, NULL);
    if (!st->view_type)
        return -1;
    if (PyModule_AddObjectRef(m, "View", (PyObject *)st->view_type) < 0)
        return -1;
#define K(n, v)                                                                \
    if (PyModule_AddIntConstant(m, n, v) < 0)                                  \
        return -1;
    K("PRODUCER", PSHM_QUEUE_PRODUCER)
    K("CONSUMER", PSHM_QUEUE_CONSUMER)
    K("EAGAIN", -EAGAIN)
    K("ETIMEDOUT", -ETIMEDOUT)
    K("ECLOSED", -PSHM_ECLOSED)
    K("EOVERWRITTEN", -PSHM_EOVERWRITTEN)
    K("ENOTSUP", -ENOTSUP)
    K("FRAME_BYTES", (long)sizeof(frame))
#undef K
    return 0;
}

static int queue_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *st = PyModule_GetState(m);

    Py_VISIT(st->view_type);
    return 0;
}

static int queue_clear(PyObject *m)
{
    module_state *st = PyModule_GetState(m);

    Py_CLEAR(st->view_type);
    return 0;
}

static PyModuleDef_Slot queue_slots[] = {
    {Py_mod_exec, queue_exec},
    {0, NULL},
};

static struct PyModuleDef queue_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pshm._queue",
    .m_doc = "Handles on pshm queues (internal; see pshm.queues).",
    .m_size = sizeof(module_state),
    .m_slots = queue_slots,
    .m_methods = module_methods,
    .m_traverse = queue_traverse,
    .m_clear = queue_clear,
};

PyMODINIT_FUNC PyInit__queue(void)
{
    static int registered;

    if (!registered) {
        pthread_atfork(NULL, NULL, after_fork_child);
        registered = 1;
    }
    return PyModuleDef_Init(&queue_module);
}
