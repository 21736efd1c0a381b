/* SPDX-License-Identifier: MIT */
/*
 * named.c - named objects: create, open, close, and the inspection of their bytes (stat, describe).
 */
#include "sync_internal.h"

#include "../fault.h"
#include "../inspect_internal.h"

#include "../os/futex.h"
#include "../os/liveness.h"
#include "../os/os.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- named objects */

/*
 * A named object is a block: a 64-byte header, then the object. The block
 * layer publishes the name only once the block is sized and zeroed, and
 * only its creator gets created == 1, so there is exactly one initialiser;
 * it still moves the state word EMPTY -> INITIALISING by compare-and-swap
 * (so a foreign writer cannot make two), records itself, builds the object,
 * and publishes READY with a futex wake. Attachers wait for READY with a
 * timeout, and give up early if the recorded initialiser is dead.
 */

struct pshm_sync {
    pshm_block *b;
    pshm_sync_kind kind;
    void *obj;
};

typedef struct ctor {
    pshm_sync_kind kind;
    size_t size;
    unsigned value, flags, count;
} ctor;

static int build(const ctor *c, void *mem)
{
    void *o;

    switch (c->kind) {
    case PSHM_SYNC_MUTEX: return pshm_mutex_init(mem, c->size, (pshm_mutex **)&o);
    case PSHM_SYNC_COND: return pshm_cond_init(mem, c->size, (pshm_cond **)&o);
    case PSHM_SYNC_SEM: return pshm_sem_init(mem, c->size, c->value, c->flags, (pshm_sem **)&o);
    case PSHM_SYNC_RWLOCK: return pshm_rwlock_init(mem, c->size, (pshm_rwlock **)&o);
    case PSHM_SYNC_BARRIER: return pshm_barrier_init(mem, c->size, c->count, (pshm_barrier **)&o);
    case PSHM_SYNC_EVENT: return pshm_event_init(mem, c->size, c->flags, (pshm_event **)&o);
    case PSHM_SYNC_NONE: break;
    }
    return -EINVAL;
}

/* Check a bare object of `size` bytes is a `kind` of this build. */
static int check_object(void *obj, size_t size, pshm_sync_kind kind)
{
    void *o;

    switch (kind) {
    case PSHM_SYNC_MUTEX: return pshm_mutex_attach(obj, size, (pshm_mutex **)&o);
    case PSHM_SYNC_COND: return pshm_cond_attach(obj, size, (pshm_cond **)&o);
    case PSHM_SYNC_SEM: return pshm_sem_attach(obj, size, (pshm_sem **)&o);
    case PSHM_SYNC_RWLOCK: return pshm_rwlock_attach(obj, size, (pshm_rwlock **)&o);
    case PSHM_SYNC_BARRIER: return pshm_barrier_attach(obj, size, (pshm_barrier **)&o);
    case PSHM_SYNC_EVENT: return pshm_event_attach(obj, size, (pshm_event **)&o);
    case PSHM_SYNC_NONE: break;
    }
    return -PSHM_EKIND;
}

static int kind_valid(pshm_sync_kind kind)
{
    return kind >= PSHM_SYNC_MUTEX && kind <= PSHM_SYNC_EVENT;
}

/* Header checks shared by open and inspect (state already READY). */
static int check_header(const pshm__sync_hdr *h, size_t size)
{
    uint32_t off, osz;

    if (LOADR(&h->magic) != PSHM__SYNC_HDR_MAGIC)
        return -PSHM_EKIND; /* not a named sync object at all */
    if (LOADR(&h->version) != PSHM__SYNC_VERSION)
        return -PSHM_EVERSION;
    if (LOADR(&h->abi) != SYNC_ABI)
        return -PSHM_EABI;
    off = LOADR(&h->obj_off);
    osz = LOADR(&h->obj_size);
    if (off != PSHM__SYNC_HDR_SIZE || osz < 64 || osz > size - off)
        return -PSHM_EBADFORMAT;
    if (!kind_valid((pshm_sync_kind)LOADR(&h->kind)))
        return -PSHM_EBADFORMAT;
    return 0;
}

/* Wait until the header says READY, then check it and the object; kind
 * PSHM_SYNC_NONE takes any kind. */
static int attach_block(pshm_block *b, pshm_sync_kind kind, unsigned timeout_ms,
                        pshm_sync_kind *found, void **out)
{
    size_t size = pshm_block_size(b);
    pshm__sync_hdr *h = pshm_block_data(b);
    struct timespec deadline;
    int r;

    if (size < PSHM__SYNC_HDR_SIZE)
        return -PSHM_EKIND;
    pshm_deadline(&deadline, timeout_ms);
    for (;;) {
        uint32_t st = LOAD(&h->state), magic = LOADR(&h->magic);
        if (st == PSHM__HS_READY)
            break;
        if (magic != 0 && magic != PSHM__SYNC_HDR_MAGIC)
            return -PSHM_EKIND; /* not a named sync object */
        if (st > PSHM__HS_READY)
            return magic ? -PSHM_EBADFORMAT : -PSHM_EKIND;
        {
            /* EMPTY or INITIALISING: a recorded creator that died will never
             * finish (it records itself before it claims the state). */
            uint64_t who = LOAD(&h->initialiser);
            if (who != 0 && pshm__id_alive(who) == 0)
                return -PSHM_ENOTRECOVERABLE;
        }
        struct timespec now, step;
        mono_now(&now);
        if (!ts_lt(&now, &deadline))
            return st == PSHM__HS_EMPTY && magic == 0 ? -PSHM_EKIND : -ETIMEDOUT;
        step = ts_plus_ms(now, 10);
        if (ts_lt(&deadline, &step))
            step = deadline;
        (void)pshm__futex_wait(&h->state, st, &step);
    }
    r = check_header(h, size);
    if (r != 0)
        return r;
    pshm_sync_kind k = (pshm_sync_kind)LOADR(&h->kind);
    if (kind != PSHM_SYNC_NONE && k != kind)
        return -PSHM_EKIND;
    void *obj = (char *)h + PSHM__SYNC_HDR_SIZE;
    r = check_object(obj, LOADR(&h->obj_size), k);
    if (r != 0)
        return r;
    *found = k;
    *out = obj;
    return 0;
}

/* The caller's options, or the defaults; -EINVAL if struct_size is short. */
static int read_opts(const pshm_sync_options *o, pshm_sync_options *out)
{
    pshm_sync_options_init(out);
    if (!o)
        return 0;
    if (o->struct_size < offsetof(pshm_sync_options, mode) + sizeof o->mode)
        return -EINVAL;
    size_t n = o->struct_size < sizeof *out ? o->struct_size : sizeof *out;
    memcpy(out, o, n);
    out->struct_size = sizeof *out;
    return out->readonly ? -EINVAL : 0;
}

static int handle_new(pshm_block *b, pshm_sync_kind kind, void *obj, pshm_sync **h)
{
    pshm_sync *s = malloc(sizeof *s);

    if (!s)
        return -ENOMEM;
    s->b = b;
    s->kind = kind;
    s->obj = obj;
    *h = s;
    return 0;
}

static int ctor_for(pshm_sync_kind kind, const pshm_sync_options *o, ctor *c)
{
    c->kind = kind;
    c->value = c->flags = c->count = 0;
    switch (kind) {
    case PSHM_SYNC_MUTEX: c->size = PSHM_MUTEX_SIZE; break;
    case PSHM_SYNC_COND: c->size = PSHM_COND_SIZE; break;
    case PSHM_SYNC_RWLOCK: c->size = PSHM_RWLOCK_SIZE; break;
    case PSHM_SYNC_SEM:
        if ((o->flags & ~PSHM_SEM_UNDO) || o->value > PSHM_SEM_VALUE_MAX)
            return -EINVAL;
        c->size = (o->flags & PSHM_SEM_UNDO) ? PSHM_SEM_UNDO_SIZE : PSHM_SEM_SIZE;
        c->value = o->value;
        c->flags = o->flags;
        break;
    case PSHM_SYNC_BARRIER:
        if (o->count == 0 || o->count > PSHM_BARRIER_MAX)
            return -EINVAL;
        c->size = PSHM_BARRIER_SIZE(o->count);
        c->count = o->count;
        break;
    case PSHM_SYNC_EVENT:
        if (o->flags & ~(PSHM_EVENT_MANUAL | PSHM_EVENT_SET))
            return -EINVAL;
        c->size = PSHM_EVENT_SIZE;
        c->flags = o->flags;
        break;
    default:
        return -EINVAL;
    }
    if (kind != PSHM_SYNC_SEM && kind != PSHM_SYNC_EVENT && o->flags)
        return -EINVAL;
    return 0;
}

int pshm_sync_create(const char *name, pshm_sync_kind kind, const pshm_sync_options *opt,
                     pshm_sync **out)
{
    pshm_sync_options o;
    pshm_block_options bo;
    pshm_block *b = NULL;
    pshm__sync_hdr *h;
    uint32_t empty = PSHM__HS_EMPTY;
    pshm_sync_kind found;
    ctor c;
    void *obj;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    r = read_opts(opt, &o);
    if (r == 0)
        r = ctor_for(kind, &o, &c);
    if (r != 0)
        return r;
    PSHM__BLOCK_OPTIONS_OF(&bo, &o);
    r = pshm_block_create(name, PSHM__SYNC_HDR_SIZE + c.size, &bo, &b);
    if (r != 0)
        return r;
    if (!pshm_block_created(b)) {
        r = attach_block(b, kind, o.open_timeout_ms, &found, &obj);
        if (r == 0)
            r = handle_new(b, found, obj, out);
        if (r != 0)
            pshm_block_close(b);
        return r;
    }
    h = pshm_block_data(b);
    obj = (char *)h + PSHM__SYNC_HDR_SIZE;
    /* Who makes it, and that it is a sync object, before anything else: an
     * attacher that finds us dead from here on says "not recoverable" (not
     * "timed out"), and stat says "still being made" (not "not a sync
     * object"). Only zeros - a creator killed before this line - remain
     * what the header calls a block nobody started initialising. */
    STORE(&h->initialiser, pshm__self_process());
    STORE(&h->magic, PSHM__SYNC_HDR_MAGIC);
    PSHM__FAULT("sync.create.claimed");
    if (!CAS(&h->state, &empty, (uint32_t)PSHM__HS_INITIALISING)) {
        r = -PSHM_EBADFORMAT; /* someone wrote into our new block */
        goto fail;
    }
    h->version = PSHM__SYNC_VERSION;
    h->kind = (uint16_t)c.kind;
    h->abi = SYNC_ABI;
    h->obj_off = PSHM__SYNC_HDR_SIZE;
    h->obj_size = (uint32_t)c.size;
    PSHM__FAULT("sync.create.building");
    r = build(&c, obj);
    if (r == 0)
        r = handle_new(b, kind, obj, out);
    if (r != 0)
        goto fail;
    PSHM__FAULT("sync.create.built");
    STORE(&h->state, (uint32_t)PSHM__HS_READY);
    wake(&h->state, WAKE_ALL);
    return 0;
fail:
    (void)pshm_block_unlink(b);
    pshm_block_close(b);
    return r;
}

int pshm_sync_open(const char *name, pshm_sync_kind kind, const pshm_sync_options *opt,
                   pshm_sync **out)
{
    pshm_sync_options o;
    pshm_block_options bo;
    pshm_block *b = NULL;
    pshm_sync_kind found;
    void *obj;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    r = read_opts(opt, &o);
    if (r != 0)
        return r;
    if (kind != PSHM_SYNC_NONE && !kind_valid(kind))
        return -EINVAL;
    pshm_block_options_init(&bo);
    bo.prefault = o.prefault;
    r = pshm_block_open(name, &bo, &b);
    if (r != 0)
        return r;
    r = attach_block(b, kind, o.open_timeout_ms, &found, &obj);
    if (r == 0)
        r = handle_new(b, found, obj, out);
    if (r != 0)
        pshm_block_close(b);
    return r;
}

/* Is the thread `id` one of this process's? (A lock it holds must not be
 * unmapped under it.) */
static int held_here(uint64_t id)
{
    return id != 0 && pshm__id_mine(id) == 1;
}

/* Does a thread of this process hold the object? Only the kinds with an
 * owner can say yes; the tag is checked first (the bytes are shared). */
static int held_by_us(const pshm_sync *h)
{
    if (h->kind == PSHM_SYNC_MUTEX) {
        pshm_mutex *m = h->obj;
        return LOADR(&m->id) == SYNC_ID(PSHM_SYNC_MUTEX) && pshm__lock_held_here(&m->lk);
    }
    if (h->kind == PSHM_SYNC_RWLOCK) {
        pshm_rwlock *rw = h->obj;
        if (LOADR(&rw->head.h.id) != SYNC_ID(PSHM_SYNC_RWLOCK))
            return 0;
        if (LOADR(&rw->head.h.wstate) && held_here(LOADR(&rw->head.h.wthread)))
            return 1;
        for (int i = 0; i < PSHM_RWLOCK_READERS; i++)
            if (held_here(LOADR(&rw->slots[i].s.holder)))
                return 1;
    }
    return 0;
}

int pshm_sync_close(pshm_sync *h)
{
    pshm_block *b;

    if (!h)
        return 0;
    if (held_by_us(h))
        return -EBUSY;
    b = h->b;
    free(h);
    return pshm_block_close(b);
}

pshm_block *pshm_sync_block(const pshm_sync *h)
{
    return h ? h->b : NULL;
}

#define SYNC_GETTER(T, KIND)                                                    \
    pshm_##T *pshm_sync_##T(const pshm_sync *h)                                 \
    {                                                                           \
        return h && h->kind == KIND ? (pshm_##T *)h->obj : NULL;                \
    }

SYNC_GETTER(mutex, PSHM_SYNC_MUTEX)
SYNC_GETTER(cond, PSHM_SYNC_COND)
SYNC_GETTER(sem, PSHM_SYNC_SEM)
SYNC_GETTER(rwlock, PSHM_SYNC_RWLOCK)
SYNC_GETTER(barrier, PSHM_SYNC_BARRIER)
SYNC_GETTER(event, PSHM_SYNC_EVENT)

/* ---------------------------------------------------------- inspection */

/* 64-bit fields read as two halves: a 64-bit atomic load may be a locked
 * instruction (a write) on some 32-bit targets, and inspect runs on
 * read-only mappings. A torn snapshot is acceptable here. */
static uint64_t peek64(const uint64_t *p)
{
    const uint32_t *h = (const uint32_t *)(const void *)p;
    uint64_t lo = LOADR(&h[0]), hi = LOADR(&h[1]);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (lo << 32) | hi;
#else
    return (hi << 32) | lo;
#endif
}

static void owner_info(uint64_t id, pshm_sync_info *out)
{
    int alive;

    out->owner_tid = PSHM__ID_PID(id);
    out->owner_pid = pshm__id_tgid(id);
    if (out->owner_pid <= 0)
        out->owner_pid = out->owner_tid;
    alive = pshm__id_alive(id);
    out->owner_alive = alive < 0 ? -1 : alive;
}

static int inspect_object(const void *mem, size_t size, pshm_sync_info *out)
{
    uint64_t id;
    uint32_t tag, kind;

    if (size < 8)
        return -PSHM_EBADFORMAT;
    id = peek64(mem);
    tag = (uint32_t)id;
    if (PSHM__SYNC_TAG_MAGIC(tag) != 0x5359u)
        return -PSHM_EBADFORMAT;
    if ((tag & 0xffu) != PSHM__SYNC_VERSION)
        return -PSHM_EVERSION;
    kind = (tag >> 8) & 0xffu;
    if (kind < PSHM_SYNC_MUTEX || kind > PSHM_SYNC_EVENT)
        return -PSHM_EBADFORMAT;
    if ((uint32_t)(id >> 32) != SYNC_ABI)
        return -PSHM_EABI;
    out->kind = (pshm_sync_kind)kind;
    out->version = PSHM__SYNC_VERSION;
    out->owner_alive = -1;
    switch (out->kind) {
    case PSHM_SYNC_MUTEX: {
        const struct pshm_mutex *m = mem;
        uint64_t owner;
        uint32_t w, tid;
        if (size < PSHM_MUTEX_SIZE)
            return -PSHM_EBADFORMAT;
        w = LOADR(&m->lk.word);
        tid = w & ~PSHM__LK_WAITERS;
        if (w != PSHM__LK_NOTREC && tid > PSHM__LK_TID_MAX)
            return -PSHM_EBADFORMAT; /* no value a lock word can hold */
        owner = peek64(&m->lk.owner);
        if (owner && LOADR(&m->state) == PSHM__MS_INCONSISTENT)
            owner ^= OWNER_MARK;
        out->locked = w != PSHM__LK_NOTREC && tid != 0;
        if (out->locked) /* the record, if it is the word's; else the tid alone */
            owner_info(PSHM__ID_PID(owner) == tid ? owner : (uint64_t)tid << 32, out);
        out->waiters = LOADR(&m->waiters);
        out->inconsistent = LOADR(&m->state) == PSHM__MS_INCONSISTENT;
        out->notrecoverable = w == PSHM__LK_NOTREC;
        break;
    }
    case PSHM_SYNC_COND: {
        const struct pshm_cond *c = mem;
        if (size < PSHM_COND_SIZE)
            return -PSHM_EBADFORMAT;
        out->waiters = LOADR(&c->waiters);
        out->seq = LOADR(&c->seq);
        break;
    }
    case PSHM_SYNC_SEM: {
        const struct pshm_sem *s = mem;
        if (size < PSHM_SEM_SIZE)
            return -PSHM_EBADFORMAT;
        out->value = LOADR(&s->value);
        out->waiters = LOADR(&s->waiters);
        out->flags = LOADR(&s->flags) & PSHM_SEM_UNDO;
        if (out->flags) {
            const pshm__sem_undo *u = (const void *)((const char *)mem + PSHM_SEM_SIZE);
            if (size < PSHM_SEM_UNDO_SIZE || LOADR(&s->nslots) != PSHM_SEM_UNDO_SLOTS)
                return -PSHM_EBADFORMAT;
            for (int i = 0; i < PSHM_SEM_UNDO_SLOTS; i++) {
                uint64_t who = peek64(&u->slots[i].who);
                if (who == 0 || LOADR(&u->slots[i].held) == 0)
                    continue;
                out->members++;
                out->dead += pshm__id_alive(who) == 0;
            }
        }
        break;
    }
    case PSHM_SYNC_RWLOCK: {
        const struct pshm_rwlock *rw = mem;
        if (size < PSHM_RWLOCK_SIZE)
            return -PSHM_EBADFORMAT;
        if (LOADR(&rw->head.h.wstate)) {
            uint64_t w = peek64(&rw->head.h.wthread);
            out->locked = 1;
            if (w)
                owner_info(w, out);
        }
        for (int i = 0; i < PSHM_RWLOCK_READERS; i++)
            out->readers += peek64(&rw->slots[i].s.holder) != 0;
        out->locked |= out->readers != 0;
        out->inconsistent = LOADR(&rw->head.h.incons) != 0;
        out->waiters = LOADR(&rw->head.h.waiters);
        break;
    }
    case PSHM_SYNC_BARRIER: {
        const struct pshm_barrier *b = mem;
        uint32_t n, w;
        if (size < PSHM_BARRIER_SIZE(0))
            return -PSHM_EBADFORMAT;
        n = LOADR(&b->count);
        if (n == 0 || n > PSHM_BARRIER_MAX || LOADR(&b->count_check) != ~n ||
            size < PSHM_BARRIER_SIZE(n))
            return -PSHM_EBADFORMAT;
        w = LOADR(&b->word);
        out->count = n;
        out->value = PSHM__BW_ARRIVED(w);
        out->broken = (w & PSHM__BW_BROKEN) != 0;
        out->seq = PSHM__BW_GEN(w);
        out->waiters = LOADR(&b->waiters);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t m = peek64(&b->members[i]);
            if (!m)
                continue;
            out->members++;
            out->dead += pshm__id_alive(m) == 0;
        }
        break;
    }
    case PSHM_SYNC_EVENT: {
        const struct pshm_event *e = mem;
        if (size < PSHM_EVENT_SIZE)
            return -PSHM_EBADFORMAT;
        out->value = LOADR(&e->state) != 0;
        out->flags = LOADR(&e->flags) & PSHM_EVENT_MANUAL;
        out->waiters = LOADR(&e->waiters);
        break;
    }
    case PSHM_SYNC_NONE:
        return -PSHM_EBADFORMAT;
    }
    return 0;
}

static int sinfo_ok(const pshm_sync_info *out)
{
    return out && out->struct_size >= offsetof(pshm_sync_info, kind) + sizeof out->kind;
}

/* Describe into a full-size private struct, then give the caller its
 * struct_size bytes (its struct may be older than ours). */
static int stat_mem(const void *mem, size_t size, pshm_sync_info *in)
{
    const pshm__sync_hdr *h = mem;
    int r;

    pshm_sync_info_init(in);
    in->owner_alive = -1;
    if (size >= 4 && LOADR(&h->magic) == PSHM__SYNC_HDR_MAGIC) {
        if (size < PSHM__SYNC_HDR_SIZE)
            return -PSHM_EBADFORMAT;
        uint32_t st = LOAD(&h->state);
        if (st == PSHM__HS_EMPTY || st == PSHM__HS_INITIALISING)
            return -EAGAIN;
        if (st != PSHM__HS_READY)
            return -PSHM_EBADFORMAT;
        r = check_header(h, size);
        if (r != 0)
            return r;
        r = inspect_object((const char *)mem + PSHM__SYNC_HDR_SIZE, LOADR(&h->obj_size), in);
        if (r == 0 && (uint32_t)in->kind != LOADR(&h->kind))
            r = -PSHM_EBADFORMAT;
        in->named = 1;
        return r;
    }
    return inspect_object(mem, size, in);
}

static void give(const pshm_sync_info *in, pshm_sync_info *out)
{
    size_t want = out->struct_size, n = want < sizeof *in ? want : sizeof *in;

    memcpy(out, in, n);
    out->struct_size = want;
}

int pshm_sync_stat_mem(const void *mem, size_t size, pshm_sync_info *out)
{
    pshm_sync_info in;
    int r;

    if (!mem || !sinfo_ok(out) || ((uintptr_t)mem % 8) != 0)
        return -EINVAL;
    r = stat_mem(mem, size, &in);
    if (r == 0)
        give(&in, out);
    return r;
}

int pshm_sync_fstat(const pshm_sync *h, pshm_sync_info *out)
{
    if (!h)
        return -EINVAL;
    return pshm_sync_stat_mem(pshm_block_data(h->b), pshm_block_size(h->b), out);
}

/* The most a named object's block holds: its header and the largest object. */
#define STAT_MAX (PSHM__SYNC_HDR_SIZE + PSHM_BARRIER_SIZE(PSHM_BARRIER_MAX))

/*
 * Straight through the platform layer, not pshm_block_open: opening an AUTO
 * block would make us one of its holders for a moment (and, were it stale,
 * remove it). `pshm ls` must look without touching. The bytes are copied
 * out with pread, never mapped: a peer that shrinks the object meanwhile
 * shortens what we read instead of killing us with SIGBUS.
 */
int pshm_sync_stat(const char *name, pshm_sync_info *out)
{
    pshm_sync_info in;
    uint64_t *buf, size;
    size_t got = 0;
    int fd, r;

    if (!sinfo_ok(out))
        return -EINVAL;
    r = pshm__inspect_open(name, &fd, &size);
    if (r != 0)
        return r;
    buf = malloc(STAT_MAX); /* uint64_t: aligned as the objects need */
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    r = pshm__inspect_read(fd, buf, STAT_MAX, 0, &got);
    close(fd);
    if (r == 0 && got < PSHM__SYNC_HDR_SIZE)
        r = -PSHM_EKIND;
    if (r == 0 && LOADR(&((const pshm__sync_hdr *)buf)->magic) != PSHM__SYNC_HDR_MAGIC)
        r = -PSHM_EKIND; /* not a named sync object */
    if (r == 0)
        r = stat_mem(buf, got, &in);
    free(buf);
    if (r == 0)
        give(&in, out);
    return r;
}

/* Append to buf like snprintf, tracking the wanted length. */
typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_add(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(s->len < s->cap ? s->p + s->len : NULL, s->len < s->cap ? s->cap - s->len : 0,
                  fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len += (size_t)n;
}

static void sb_owner(sbuf *s, const pshm_sync_info *in)
{
    if (!in->owner_pid)
        return;
    sb_add(s, " pid=%ld", in->owner_pid);
    if (in->owner_tid && in->owner_tid != in->owner_pid)
        sb_add(s, " tid=%ld", in->owner_tid);
    if (in->owner_alive == 0)
        sb_add(s, "(dead)");
}

int pshm_sync_describe(const pshm_sync_info *in, char *buf, size_t cap, size_t *len)
{
    sbuf s = {buf, buf ? cap : 0, 0};

    if (s.cap)
        buf[0] = 0;
    if (!sinfo_ok(in) || (!buf && cap))
        return -EINVAL;
    sb_add(&s, "%s", pshm_sync_kind_name(in->kind));
    switch (in->kind) {
    case PSHM_SYNC_MUTEX:
        if (in->notrecoverable)
            sb_add(&s, " notrecoverable");
        else if (in->locked)
            sb_add(&s, " locked");
        else
            sb_add(&s, " unlocked");
        sb_owner(&s, in);
        if (in->inconsistent)
            sb_add(&s, " inconsistent");
        sb_add(&s, " waiters=%u", in->waiters);
        break;
    case PSHM_SYNC_COND:
        sb_add(&s, " waiters=%u", in->waiters);
        break;
    case PSHM_SYNC_SEM:
        sb_add(&s, " value=%u waiters=%u", in->value, in->waiters);
        if (in->flags & PSHM_SEM_UNDO) {
            sb_add(&s, " undo holders=%u", in->members);
            if (in->dead)
                sb_add(&s, " dead=%u", in->dead);
        }
        break;
    case PSHM_SYNC_RWLOCK:
        if (in->owner_pid || (in->locked && !in->readers)) {
            sb_add(&s, " write");
            sb_owner(&s, in);
        } else if (in->readers) {
            sb_add(&s, " read readers=%u", in->readers);
        } else {
            sb_add(&s, " unlocked");
        }
        if (in->inconsistent)
            sb_add(&s, " inconsistent");
        sb_add(&s, " waiters=%u", in->waiters);
        break;
    case PSHM_SYNC_BARRIER:
        sb_add(&s, " %u/%u", in->value, in->count);
        if (in->broken)
            sb_add(&s, " broken");
        sb_add(&s, " members=%u", in->members);
        if (in->dead)
            sb_add(&s, " dead=%u", in->dead);
        break;
    case PSHM_SYNC_EVENT:
        sb_add(&s, " %s %s waiters=%u", (in->flags & PSHM_EVENT_MANUAL) ? "manual" : "auto",
               in->value ? "set" : "unset", in->waiters);
        break;
    case PSHM_SYNC_NONE:
        break;
    }
    if (len)
        *len = s.len;
    return buf && s.len >= cap ? -ERANGE : 0;
}
