// SPDX-License-Identifier: MIT
/*
 * test_sync_attack.c - every sync object kind, corrupted as an attacker
 * would (issue 11): every 4-byte word set to 0, 1, ~0, 0x80000000 and a
 * random value, then random words at random; after each, every operation
 * that takes a deadline (try and timed variants, unlock, consistent, post,
 * set, reset, stat, describe) runs in a child process through the opener
 * (attach for an embedded object, pshm_sync_open for a named one). Each
 * attempt must end in success or an error code, within its deadline: the
 * child must exit 0 - not die of a signal, not hang (th_wait's timeout).
 *
 * What is *not* asked: that a corrupted lock still works. A peer that can
 * write the object can make its users wait until their deadline or get an
 * error; nothing more.
 */
#include "harness.h"

#include "sync/sync_internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OBJ_MAX (PSHM_SEM_UNDO_SIZE > PSHM_RWLOCK_SIZE ? PSHM_SEM_UNDO_SIZE : PSHM_RWLOCK_SIZE)
#define DEADLINE_MS 10
/* How late a timed call may return on a loaded machine before it counts as
 * a wait past its deadline (sem post in undo mode waits up to 1 s). */
#define LATE_MS 2500

typedef struct shared {
    char obj[PSHM__SYNC_HDR_SIZE + OBJ_MAX] __attribute__((aligned(64)));
    char pristine[PSHM__SYNC_HDR_SIZE + OBJ_MAX] __attribute__((aligned(64)));
    char helper[PSHM_MUTEX_SIZE] __attribute__((aligned(64))); /* cond's mutex */
    size_t size;
    pshm_sync_kind kind;
    char name[128];
    uint32_t off, nval, vals[8], lateness_fail, bad_code;
    char what[128];
} shared;
static shared *S;

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* An operation's result: success, or an error code (never a positive value
 * or garbage); a timed one must come back in time. */
static void judge(int r, long long t0, const char *op)
{
    if (r > 0 || r < -2000) {
        snprintf(S->what, sizeof S->what, "%s returned %d", op, r);
        S->bad_code = 1;
    }
    if (now_ms() - t0 > LATE_MS) {
        snprintf(S->what, sizeof S->what, "%s took %lld ms", op, now_ms() - t0);
        S->lateness_fail = 1;
    }
}

#define DO(call)                                                                \
    do {                                                                        \
        long long t0_ = now_ms();                                               \
        struct timespec d_;                                                     \
        (void)d_;                                                               \
        pshm_deadline(&d_, DEADLINE_MS);                                        \
        judge((call), t0_, #call);                                              \
    } while (0)

#define D (&d_)

static void ops_mutex(pshm_mutex *m)
{
    int r;
    DO(r = pshm_mutex_trylock(m));
    if (r == 0 || r == -PSHM_EOWNERDEAD)
        DO(pshm_mutex_unlock(m));
    DO(r = pshm_mutex_timedlock(m, D));
    if (r == -PSHM_EOWNERDEAD)
        DO(pshm_mutex_consistent(m));
    if (r == 0 || r == -PSHM_EOWNERDEAD)
        DO(pshm_mutex_unlock(m));
    DO(pshm_mutex_unlock(m));
    DO(pshm_mutex_consistent(m));
}

static void ops_cond(pshm_cond *c)
{
    pshm_mutex *m;
    if (pshm_mutex_init(S->helper, sizeof S->helper, &m) != 0 || pshm_mutex_lock(m) != 0)
        _exit(9);
    DO(pshm_cond_timedwait(c, m, D));
    (void)pshm_mutex_unlock(m);
    DO(pshm_cond_signal(c));
    DO(pshm_cond_broadcast(c));
}

static void ops_sem(pshm_sem *s)
{
    unsigned v;
    DO(pshm_sem_trywait(s));
    DO(pshm_sem_timedwait(s, D));
    DO(pshm_sem_post(s));
    DO(pshm_sem_getvalue(s, &v));
}

static void ops_rwlock(pshm_rwlock *rw)
{
    int r;
    DO(r = pshm_rwlock_tryrdlock(rw));
    if (r == 0 || r == -PSHM_EOWNERDEAD || r == -PSHM_EREADERDEAD)
        DO(pshm_rwlock_unlock(rw));
    DO(r = pshm_rwlock_timedrdlock(rw, D));
    if (r == 0 || r == -PSHM_EOWNERDEAD || r == -PSHM_EREADERDEAD)
        DO(pshm_rwlock_unlock(rw));
    DO(r = pshm_rwlock_trywrlock(rw));
    if (r == 0 || r == -PSHM_EOWNERDEAD || r == -PSHM_EREADERDEAD)
        DO(pshm_rwlock_unlock(rw));
    DO(r = pshm_rwlock_timedwrlock(rw, D));
    if (r == -PSHM_EOWNERDEAD)
        DO(pshm_rwlock_consistent(rw));
    if (r == 0 || r == -PSHM_EOWNERDEAD || r == -PSHM_EREADERDEAD)
        DO(pshm_rwlock_unlock(rw));
    DO(pshm_rwlock_unlock(rw));
}

static void ops_barrier(pshm_barrier *b)
{
    unsigned a;
    DO(pshm_barrier_trywait(b, &a));
    DO(pshm_barrier_timedwait(b, D, &a));
    DO(pshm_barrier_reset(b));
    DO(pshm_barrier_join(b));
    DO(pshm_barrier_leave(b));
}

static void ops_event(pshm_event *e)
{
    DO(pshm_event_trywait(e));
    DO(pshm_event_timedwait(e, D));
    DO(pshm_event_set(e));
    DO(pshm_event_trywait(e));
    DO(pshm_event_reset(e));
}

/* Every operation on the object at obj (size bytes), of the kind it says
 * it is; the stat and describe of its bytes. */
static void ops_object(void *obj, size_t size, pshm_sync_kind kind)
{
    void *o;
    int r;
    switch (kind) {
    case PSHM_SYNC_MUTEX:
        if ((r = pshm_mutex_attach(obj, size, (pshm_mutex **)&o)) == 0)
            ops_mutex(o);
        break;
    case PSHM_SYNC_COND:
        if ((r = pshm_cond_attach(obj, size, (pshm_cond **)&o)) == 0)
            ops_cond(o);
        break;
    case PSHM_SYNC_SEM:
        if ((r = pshm_sem_attach(obj, size, (pshm_sem **)&o)) == 0)
            ops_sem(o);
        break;
    case PSHM_SYNC_RWLOCK:
        if ((r = pshm_rwlock_attach(obj, size, (pshm_rwlock **)&o)) == 0)
            ops_rwlock(o);
        break;
    case PSHM_SYNC_BARRIER:
        if ((r = pshm_barrier_attach(obj, size, (pshm_barrier **)&o)) == 0)
            ops_barrier(o);
        break;
    case PSHM_SYNC_EVENT:
        if ((r = pshm_event_attach(obj, size, (pshm_event **)&o)) == 0)
            ops_event(o);
        break;
    default:
        r = -EINVAL;
    }
    judge(r, now_ms(), "attach");
}

static void stat_bytes(const void *mem, size_t size)
{
    pshm_sync_info in;
    char buf[256];
    pshm_sync_info_init(&in);
    if (pshm_sync_stat_mem(mem, size, &in) == 0)
        judge(pshm_sync_describe(&in, buf, sizeof buf, NULL), now_ms(), "describe");
}

/* A child: for each value, corrupt the word at S->off, use the object,
 * restore. Exits 0 unless a call misbehaved (and says which). */
static int child_embedded(void *arg)
{
    (void)arg;
    for (uint32_t v = 0; v < S->nval; v++) {
        memcpy(S->obj, S->pristine, S->size);
        memcpy(S->obj + S->off, &S->vals[v], 4);
        ops_object(S->obj, S->size, S->kind);
        stat_bytes(S->obj, S->size);
        if (S->bad_code || S->lateness_fail)
            return 1;
    }
    return 0;
}

static int child_named(void *arg)
{
    pshm_sync_options o;
    pshm_sync_info in;
    pshm_sync *h;
    (void)arg;
    pshm_sync_options_init(&o);
    o.open_timeout_ms = DEADLINE_MS;
    for (uint32_t v = 0; v < S->nval; v++) {
        pshm_block *b; /* the attacker's own mapping */
        if (pshm_block_open(S->name, NULL, &b) != 0)
            return 8;
        char *bytes = pshm_block_data(b);
        memcpy(bytes, S->pristine, S->size);
        memcpy(bytes + S->off, &S->vals[v], 4);
        long long t0 = now_ms();
        int r = pshm_sync_open(S->name, PSHM_SYNC_NONE, &o, &h);
        judge(r, t0, "pshm_sync_open");
        if (r == 0) {
            char *obj = (char *)pshm_block_data(pshm_sync_block(h)) + PSHM__SYNC_HDR_SIZE;
            ops_object(obj, S->size - PSHM__SYNC_HDR_SIZE, S->kind);
            pshm_sync_info_init(&in);
            judge(pshm_sync_fstat(h, &in) > 0, now_ms(), "fstat");
            r = pshm_sync_close(h);
            judge(r == -EBUSY ? 0 : r, now_ms(), "close");
        }
        pshm_sync_info_init(&in);
        (void)pshm_sync_stat(S->name, &in);
        stat_bytes(bytes, S->size);
        memcpy(bytes, S->pristine, S->size);
        pshm_block_close(b);
        if (S->bad_code || S->lateness_fail)
            return 1;
    }
    return 0;
}

static void make_embedded(pshm_sync_kind kind)
{
    void *o;
    pshm_sync_options so;
    memset(S->pristine, 0, sizeof S->pristine);
    pshm_sync_options_init(&so);
    switch (kind) {
    case PSHM_SYNC_MUTEX: S->size = PSHM_MUTEX_SIZE; CHECK_OK(pshm_mutex_init(S->pristine, S->size, (pshm_mutex **)&o)); break;
    case PSHM_SYNC_COND: S->size = PSHM_COND_SIZE; CHECK_OK(pshm_cond_init(S->pristine, S->size, (pshm_cond **)&o)); break;
    case PSHM_SYNC_SEM: S->size = PSHM_SEM_UNDO_SIZE; CHECK_OK(pshm_sem_init(S->pristine, S->size, 1, PSHM_SEM_UNDO, (pshm_sem **)&o)); break;
    case PSHM_SYNC_RWLOCK: S->size = PSHM_RWLOCK_SIZE; CHECK_OK(pshm_rwlock_init(S->pristine, S->size, (pshm_rwlock **)&o)); break;
    case PSHM_SYNC_BARRIER: S->size = PSHM_BARRIER_SIZE(3); CHECK_OK(pshm_barrier_init(S->pristine, S->size, 3, (pshm_barrier **)&o)); break;
    case PSHM_SYNC_EVENT: S->size = PSHM_EVENT_SIZE; CHECK_OK(pshm_event_init(S->pristine, S->size, 0, (pshm_event **)&o)); break;
    default: CHECK(0);
    }
    S->kind = kind;
}

static void values(void)
{
    S->vals[0] = 0;
    S->vals[1] = 1;
    S->vals[2] = ~0u;
    S->vals[3] = 0x80000000u;
    S->vals[4] = th_rnd();
    S->vals[5] = (uint32_t)getpid(); /* a live tid: a lock "held" by the test itself */
    S->nval = 6;
}

/* Offsets to corrupt: every word of the first 256 bytes and of the last
 * 64 (the repeated parts - reader slots, undo records - are alike). */
static int next_off(uint32_t off, size_t size)
{
    off += 4;
    if (off >= 256 && off < size - 64)
        off = (uint32_t)(size - 64);
    return off < size ? (int)off : -1;
}

static void run_child(int (*fn)(void *))
{
    int code = th_wait(th_fork(fn, NULL), 60000);
    if (code != 0)
        th_fail(__FILE__, __LINE__, "%s word at %u: child exit %d%s%s", pshm_sync_kind_name(S->kind),
                S->off, code, S->what[0] ? ": " : "", S->what);
}

static const pshm_sync_kind KINDS[] = {PSHM_SYNC_MUTEX,  PSHM_SYNC_COND,    PSHM_SYNC_SEM,
                                       PSHM_SYNC_RWLOCK, PSHM_SYNC_BARRIER, PSHM_SYNC_EVENT};

TEST_TIMEOUT(every_word_of_every_embedded_object, 600)
{
    S = th_shared(sizeof *S);
    th_rnd_seed("attack_embedded");
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        make_embedded(KINDS[k]);
        for (int off = 0; off >= 0; off = next_off((uint32_t)off, S->size)) {
            S->off = (uint32_t)off;
            values();
            run_child(child_embedded);
        }
    }
}

TEST_TIMEOUT(random_words_of_every_embedded_object, 600)
{
    S = th_shared(sizeof *S);
    th_rnd_seed("attack_random");
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        make_embedded(KINDS[k]);
        for (int round = 0; round < 40; round++) {
            /* a few words at random over the whole object, random values */
            for (int j = 0; j < 1 + (int)(th_rnd() % 4); j++) {
                uint32_t off = (th_rnd() % (uint32_t)(S->size / 4)) * 4, v = th_rnd();
                memcpy(S->pristine + off, &v, 4);
            }
            S->off = 0;
            S->vals[0] = *(uint32_t *)(void *)S->pristine; /* the id's low word, as it is */
            S->nval = 1;
            run_child(child_embedded);
            make_embedded(KINDS[k]);
        }
    }
}

/* Named: every word of the header and of the object's first 256 bytes,
 * through pshm_sync_open, the ops, fstat, stat by name and close. */
TEST_TIMEOUT(every_word_of_every_named_object, 600)
{
    S = th_shared(sizeof *S);
    th_rnd_seed("attack_named");
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        pshm_sync_options o;
        pshm_sync *h;
        pshm_sync_options_init(&o);
        o.count = 3;
        o.value = 1;
        o.flags = KINDS[k] == PSHM_SYNC_SEM ? PSHM_SEM_UNDO : 0;
        snprintf(S->name, sizeof S->name, "%s", th_name(pshm_sync_kind_name(KINDS[k])));
        CHECK_OK(pshm_sync_create(S->name, KINDS[k], &o, &h));
        S->kind = KINDS[k];
        S->size = pshm_block_size(pshm_sync_block(h));
        CHECK(S->size <= sizeof S->pristine);
        memcpy(S->pristine, pshm_block_data(pshm_sync_block(h)), S->size);
        for (int off = 0; off >= 0; off = next_off((uint32_t)off, S->size)) {
            S->off = (uint32_t)off;
            values();
            run_child(child_named);
        }
        CHECK_OK(pshm_sync_close(h));
        CHECK_OK(pshm_unlink(S->name));
    }
}
