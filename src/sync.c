/* SPDX-License-Identifier: MIT */
/*
 * sync.c - mutex, condition variable, semaphore, read-write lock, barrier
 * and event for processes sharing memory, surviving the death of any of
 * them. The contract is in include/pshm.h; the layouts in sync_internal.h.
 *
 * Why each primitive is built the way it is
 * -----------------------------------------
 * Everything that can be *held* needs a witness of its holder's death that
 * does not depend on the holder running any code. There are two sound ones
 * on Linux, and each primitive uses the one that fits:
 *
 * - glibc's robust mutexes. The kernel walks a dying thread's robust list,
 *   marks each mutex still held "owner died" and wakes one waiter, so death
 *   is noticed at once, with no polling, and exactly one survivor is told
 *   (glibc's EOWNERDEAD). (A waiter that is woken and dies before taking
 *   the lock can take the wake-up with it: see rm_lock.) This is the best
 *   witness there is, but it only exists for a mutex held by one thread,
 *   and the list belongs to glibc (registering our own with
 *   set_robust_list would silently unregister glibc's), so we can only use
 *   it *through* pthread_mutex_t. Hence:
 *     mutex    = one robust mutex (plus the owner for display);
 *     rwlock   = a gate mutex held by the writer, and one mutex per reader
 *                slot: every hold, read or write, is a robust mutex held by
 *                the holding thread, so the kernel releases any of them;
 *     sem undo = a robust mutex around the value and the per-process
 *                records, with an intent record so a change cut short by
 *                death is rolled back by whoever gets EOWNERDEAD.
 * - An identity (pid/tid + kernel start time) recorded in shared memory
 *   and checked against /proc. Sound (a reused pid has another start time;
 *   a zombie counts as dead) but only learnt by asking, so whoever waits
 *   asks every PSHM_SYNC_RECHECK_MS. Used where a robust mutex cannot
 *   express the hold: a barrier participant that has not arrived yet holds
 *   nothing a mutex could stand for, and semaphore units are held by a
 *   process across many calls (and released by posts from anyone).
 *
 * Things that nobody holds - a condition variable, a plain semaphore, an
 * event - are lock-free words: a dead waiter leaves nothing locked. The one
 * thing a death can take with it is a futex wake-up delivered to a waiter
 * that dies before acting on it. No witness can tell that apart from a slow
 * waiter, so every such wait sleeps at most PSHM_SYNC_RECHECK_MS at a time
 * and then looks at the word again: a unit left in a semaphore, a set auto
 * event or an advanced condition sequence is then picked up by a live
 * waiter. This costs a waiter one wake-up per interval, never a signaller.
 *
 * No pthread_cond_t anywhere: glibc's keeps internal state that a waiter
 * killed at the wrong time leaves so that signallers block for ever.
 *
 * Every shared word is a plain integer touched only through __atomic
 * builtins; futex words are 32-bit and 4-aligned. Every entry point checks
 * the object's 64-bit id (tag and ABI word) before anything else, so bytes
 * that are not an object of this build give an error, not undefined
 * behaviour. Counts read from shared memory (a barrier's count) are
 * range-checked before they index anything.
 */
#include "sync_internal.h"

#include "os/futex.h"
#include "os/liveness.h"
#include "os/os.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define PSHM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PSHM__TSAN 1
#endif
#endif

/* glibc >= 2.30 can time a mutex wait on CLOCK_MONOTONIC. ThreadSanitizer
 * (clang 14) does not intercept pthread_mutex_clocklock, and would then see
 * an unlock of a mutex it never saw locked: it gets the portable path. */
#if defined(__GLIBC__) && !defined(PSHM_FORCE_POSIX) && !defined(PSHM__TSAN) &&               \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
#define PSHM__HAVE_CLOCKLOCK 1
#endif

#if !defined(__APPLE__)
#define PSHM__HAVE_ROBUST 1
#endif

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOADR(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOADS(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORER(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORES(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define INC(p) __atomic_fetch_add((p), 1, __ATOMIC_SEQ_CST)
#define DEC(p) __atomic_fetch_sub((p), 1, __ATOMIC_SEQ_CST)
#define CAS(p, expp, want)                                                      \
    __atomic_compare_exchange_n((p), (expp), (want), 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define WAKE_ALL INT32_MAX

/* ------------------------------------------------------------ layouts */

_Static_assert(sizeof(struct pshm_mutex) <= PSHM_MUTEX_SIZE, "mutex does not fit");
_Static_assert(sizeof(struct pshm_cond) == PSHM_COND_SIZE, "cond size");
_Static_assert(sizeof(struct pshm_sem) == PSHM_SEM_SIZE, "sem size");
_Static_assert(PSHM_SEM_SIZE + sizeof(pshm__sem_undo) <= PSHM_SEM_UNDO_SIZE, "sem undo size");
_Static_assert(sizeof(struct pshm_rwlock) <= PSHM_RWLOCK_SIZE, "rwlock size");
_Static_assert(sizeof(struct pshm_barrier) == PSHM_BARRIER_SIZE(0), "barrier size");
_Static_assert(sizeof(struct pshm_event) == PSHM_EVENT_SIZE, "event size");
_Static_assert(sizeof(pshm__sync_hdr) == PSHM__SYNC_HDR_SIZE, "header size");
_Static_assert(PSHM_BARRIER_MAX < 0xffff, "arrived count is 16 bits");

#ifdef __BYTE_ORDER__
#define PSHM__BYTE_ORDER __BYTE_ORDER__
#else
#define PSHM__BYTE_ORDER 0
#endif

/* The ABI word: FNV-1a over everything that shapes the layouts. Two builds
 * that disagree on any of it (a 32-bit and a 64-bit process, another libc,
 * another slot count) refuse each other's objects. A constant expression, so
 * the per-call id check is one compare. */
#define FOLD(h, v) ((uint32_t)(((uint32_t)(h) ^ (uint32_t)(v)) * 16777619u))
#define SYNC_ABI                                                                \
    FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(2166136261u,    \
        PSHM__SYNC_VERSION), sizeof(void *)), sizeof(pthread_mutex_t)),          \
        sizeof(struct pshm_mutex)), sizeof(struct pshm_cond)),                   \
        sizeof(struct pshm_sem)), sizeof(pshm__sem_undo)),                       \
        sizeof(struct pshm_rwlock)), sizeof(struct pshm_barrier)),               \
        sizeof(struct pshm_event)), PSHM_RWLOCK_READERS), PSHM__BYTE_ORDER)
#define SYNC_ID(kind) (((uint64_t)SYNC_ABI << 32) | PSHM__SYNC_TAG(kind))

uint32_t pshm__sync_abi(void)
{
    return SYNC_ABI;
}

/* Why an id is not the one wanted. Cold. */
static int id_error(uint64_t id, pshm_sync_kind want)
{
    uint32_t tag = (uint32_t)id;

    if (PSHM__SYNC_TAG_MAGIC(tag) != 0x5359u)
        return -PSHM_EBADFORMAT;
    if ((tag & 0xffu) != PSHM__SYNC_VERSION)
        return -PSHM_EVERSION;
    if (((tag >> 8) & 0xffu) != (uint32_t)want)
        return -PSHM_EKIND;
    if ((uint32_t)(id >> 32) != SYNC_ABI)
        return -PSHM_EABI;
    return -PSHM_EBADFORMAT;
}

#define CHECK_OBJ(obj, idfield, kind)                                           \
    do {                                                                        \
        if (UNLIKELY(!(obj)))                                                   \
            return -EINVAL;                                                     \
        uint64_t id_ = LOADR(&(idfield));                                       \
        if (UNLIKELY(id_ != SYNC_ID(kind)))                                     \
            return id_error(id_, kind);                                         \
    } while (0)

const char *pshm_sync_kind_name(pshm_sync_kind kind)
{
    switch (kind) {
    case PSHM_SYNC_MUTEX: return "mutex";
    case PSHM_SYNC_COND: return "cond";
    case PSHM_SYNC_SEM: return "sem";
    case PSHM_SYNC_RWLOCK: return "rwlock";
    case PSHM_SYNC_BARRIER: return "barrier";
    case PSHM_SYNC_EVENT: return "event";
    case PSHM_SYNC_NONE: break;
    }
    return "none";
}

/* --------------------------------------------------------------- time */

static void mono_now(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}

static int64_t mono_ms(void)
{
    struct timespec t;

    mono_now(&t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int ts_lt(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static struct timespec ts_plus_ms(struct timespec t, long long ms)
{
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static int deadline_bad(const struct timespec *d)
{
    return !d || d->tv_nsec < 0 || d->tv_nsec >= 1000000000L || d->tv_sec < 0;
}

enum { WOKE = 0, SLICE = 1 };

/*
 * Sleep on *w while it equals expect, until deadline (NULL: none), for at
 * most PSHM_SYNC_RECHECK_MS. Returns WOKE (woken, the word changed, or a
 * signal handler ran: look again), SLICE (the recheck interval ended: look
 * again, and check what no wake-up reports), -ETIMEDOUT, or another -errno
 * from the kernel (a bug: give up rather than spin).
 */
static int wait_slice(uint32_t *w, uint32_t expect, const struct timespec *deadline)
{
    struct timespec now, until;
    int capped, r;

    mono_now(&now);
    if (deadline && !ts_lt(&now, deadline))
        return -ETIMEDOUT;
    until = ts_plus_ms(now, PSHM_SYNC_RECHECK_MS);
    capped = deadline && ts_lt(deadline, &until);
    if (capped)
        until = *deadline;
    r = pshm__futex_wait(w, expect, &until);
    switch (r) {
    case 0:
    case -EAGAIN:
    case -EINTR:
        return WOKE;
    case -ETIMEDOUT:
        return capped ? -ETIMEDOUT : SLICE;
    default:
        return r;
    }
}

static void wake(uint32_t *w, int n)
{
    (void)pshm__futex_wake(w, n);
}

/* ------------------------------------------------------ robust mutexes */

static int rm_init(pthread_mutex_t *pm)
{
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);

    if (r != 0)
        return -r;
    r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
#ifdef PSHM__HAVE_ROBUST
    if (r == 0)
        r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
#endif
    if (r == 0)
        r = pthread_mutex_init(pm, &a);
    pthread_mutexattr_destroy(&a);
    return -r;
}

/*
 * glibc (seen on 2.36) has pthread_mutex_trylock return ENOTRECOVERABLE
 * for a robust mutex that is not recoverable *after* its compare-and-swap
 * took the lock word, and never gives the word back: the mutex would stay
 * locked by the caller's tid, outside its robust list, and every later lock
 * would hang or fail with EDEADLK. (pthread_mutex_lock releases it.) So
 * after such a trylock we release the word as glibc's unlock would: it is
 * the robust futex word (tid | FUTEX_WAITERS), the first int of
 * pthread_mutex_t in every glibc ABI.
 */
static void trylock_fixup(pthread_mutex_t *pm)
{
#if defined(__GLIBC__) && defined(__linux__)
    uint32_t *word = (uint32_t *)(void *)pm;
    uint32_t tid = (uint32_t)syscall(SYS_gettid);
    uint32_t v = LOADR(word);

    if ((v & 0x3fffffffu) == tid && CAS(word, &v, 0) && (v & 0x80000000u))
        wake(word, WAKE_ALL);
#else
    (void)pm;
#endif
}

/* Every trylock goes through here, so that fix is never missed. */
static inline int rm_trylock(pthread_mutex_t *pm)
{
    int r = pthread_mutex_trylock(pm);
    if (UNLIKELY(r == ENOTRECOVERABLE))
        trylock_fixup(pm);
    return r;
}

/* Lock with an absolute CLOCK_MONOTONIC deadline; returns an errno value. */
static int rm_timedlock(pthread_mutex_t *pm, const struct timespec *deadline)
{
#if defined(PSHM__HAVE_CLOCKLOCK)
    return pthread_mutex_clocklock(pm, CLOCK_MONOTONIC, deadline);
#elif defined(PSHM__TSAN)
    /* ThreadSanitizer's pthread_mutex_timedlock does not count EOWNERDEAD
     * as acquired (its lock and trylock do): poll with trylock instead. */
    for (long step_us = 20;; step_us = step_us < 1000 ? step_us * 2 : 1000) {
        struct timespec now, d = {0, step_us * 1000};
        int r = rm_trylock(pm);
        if (r != EBUSY)
            return r;
        mono_now(&now);
        if (!ts_lt(&now, deadline))
            return ETIMEDOUT;
        nanosleep(&d, NULL);
    }
#else
    /* Only CLOCK_REALTIME here: wait in steps against the wall clock, and
     * decide on the monotonic clock, so setting the time cannot stretch or
     * cut the wait by more than a step. */
    for (;;) {
        struct timespec now, rt;
        int r = rm_trylock(pm);
        if (r != EBUSY)
            return r;
        mono_now(&now);
        if (!ts_lt(&now, deadline))
            return ETIMEDOUT;
        long long left_ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
                            (deadline->tv_nsec - now.tv_nsec) / 1000000 + 1;
        clock_gettime(CLOCK_REALTIME, &rt);
        rt = ts_plus_ms(rt, left_ms < 50 ? left_ms : 50);
        r = pthread_mutex_timedlock(pm, &rt);
        if (r != ETIMEDOUT)
            return r;
    }
#endif
}

/*
 * mode: 0 block, 1 try; deadline (NULL: none) only when blocking. errno
 * value back.
 *
 * A blocked waiter sleeps at most PSHM_SYNC_RECHECK_MS at a time and then
 * tries again. glibc's robust mutex wakes one waiter per contended unlock,
 * and leaves it to that waiter to mark the word "has waiters" again when it
 * takes the lock. If the woken waiter dies before it does, and another
 * thread takes the free lock with a plain compare-and-swap (any trylock or
 * uncontended lock), the mark is gone: the next unlock wakes nobody, and
 * the remaining waiters would sleep on a free mutex for ever. (The kernel's
 * robust-list walk covers the dying waiter only if the word is still free
 * when it dies.) A retry puts the mark back; an unlock meanwhile wakes it.
 */
static int rm_lock(pthread_mutex_t *pm, int try, const struct timespec *deadline)
{
    if (try)
        return rm_trylock(pm);
    for (;;) {
        struct timespec until;
        mono_now(&until);
        until = ts_plus_ms(until, PSHM_SYNC_RECHECK_MS);
        int last = deadline && !ts_lt(&until, deadline);
        int r = rm_timedlock(pm, last ? deadline : &until);
        if (r != ETIMEDOUT || last)
            return r;
    }
}

static int rm_consistent(pthread_mutex_t *pm)
{
#ifdef PSHM__HAVE_ROBUST
    return pthread_mutex_consistent(pm);
#else
    (void)pm;
    return ENOTSUP;
#endif
}

static void rm_unlock(pthread_mutex_t *pm)
{
    /* We hold it: failing to release it would corrupt every other user. */
    PSHM__CHECK(pthread_mutex_unlock(pm));
}

/* An errno value from a lock to a return code. */
static int lock_code(int r)
{
    switch (r) {
    case 0: return 0;
    case EOWNERDEAD: return -PSHM_EOWNERDEAD;
    case ENOTRECOVERABLE: return -PSHM_ENOTRECOVERABLE;
    default: return -r;
    }
}

static int mem_ok(const void *mem, size_t size, size_t need)
{
    return mem && size >= need && ((uintptr_t)mem % PSHM_SYNC_ALIGN) == 0;
}

/* What every _attach checks first: an out pointer, memory large and aligned
 * enough, holding an object of kind (the id is every object's first word).
 * 0 or the error to return. */
static int attach_check(void *mem, size_t size, size_t need, pshm_sync_kind kind, int have_out)
{
    if (!have_out || !mem_ok(mem, size, need))
        return -EINVAL;
    CHECK_OBJ(mem, *(const uint64_t *)mem, kind);
    return 0;
}
_Static_assert(offsetof(struct pshm_mutex, id) == 0 && offsetof(struct pshm_cond, id) == 0 &&
                   offsetof(struct pshm_sem, id) == 0 &&
                   offsetof(struct pshm_rwlock, head.h.id) == 0 &&
                   offsetof(struct pshm_barrier, id) == 0 && offsetof(struct pshm_event, id) == 0,
               "the id is every object's first word");

/* --------------------------------------------------------------- mutex */

int pshm_mutex_init(void *mem, size_t size, pshm_mutex **out)
{
    pshm_mutex *m = mem;
    int r;

    if (out)
        *out = NULL;
    if (!out || !mem_ok(mem, size, PSHM_MUTEX_SIZE))
        return -EINVAL;
    memset(m, 0, sizeof *m);
    r = rm_init(&m->pm);
    if (r != 0)
        return r;
    STORE(&m->id, SYNC_ID(PSHM_SYNC_MUTEX));
    *out = m;
    return 0;
}

int pshm_mutex_attach(void *mem, size_t size, pshm_mutex **out)
{
    int r = attach_check(mem, size, PSHM_MUTEX_SIZE, PSHM_SYNC_MUTEX, out != NULL);

    if (out)
        *out = r ? NULL : mem;
    return r;
}

/*
 * While a holder that got EOWNERDEAD has not called consistent, its owner
 * field carries this mark (flipped into the start-time half), so the fast
 * unlock - which compares the owner with the caller - falls to the slow
 * path, the one that turns that unlock into "not recoverable".
 */
#define OWNER_MARK 0x80000000ull

/* What a lock attempt returned (an errno value), turned into the result,
 * with the owner recorded for whoever now holds it. */
static int mutex_took(pshm_mutex *m, int r)
{
    if (LIKELY(r == 0)) {
        STORER(&m->owner, pshm__self_thread());
        return 0;
    }
    if (r == EOWNERDEAD) {
        STORER(&m->state, (uint32_t)PSHM__MS_INCONSISTENT);
        STORER(&m->owner, pshm__self_thread() ^ OWNER_MARK);
        return -PSHM_EOWNERDEAD;
    }
    if (r == ENOTRECOVERABLE)
        STORER(&m->state, (uint32_t)PSHM__MS_NOTRECOVERABLE);
    return lock_code(r);
}

/* Everything but the uncontended success: checks, trylock's odd results,
 * blocking. r is what a first trylock returned, or -1 if none was made. */
static __attribute__((noinline)) int mutex_lock_slow(pshm_mutex *m, int r, int try,
                                                     const struct timespec *deadline)
{
    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    if (r < 0)
        r = rm_trylock(&m->pm);
    if (r == EBUSY && !try) {
        INC(&m->waiters);
        r = rm_lock(&m->pm, 0, deadline);
        DEC(&m->waiters);
    }
    return mutex_took(m, r);
}

/* The uncontended lock is the one path that must cost next to nothing on
 * top of glibc's: one compare for the tag, trylock, one store. */
static inline int mutex_lock_fast(pshm_mutex *m, int try)
{
    if (LIKELY(m && LOADR(&m->id) == SYNC_ID(PSHM_SYNC_MUTEX))) {
        int r = rm_trylock(&m->pm);
        if (LIKELY(r == 0)) {
            STORER(&m->owner, pshm__self_thread());
            return 0;
        }
        return mutex_lock_slow(m, r, try, NULL);
    }
    return mutex_lock_slow(m, -1, try, NULL);
}

int pshm_mutex_lock(pshm_mutex *m)
{
    return mutex_lock_fast(m, 0);
}

int pshm_mutex_trylock(pshm_mutex *m)
{
    return mutex_lock_fast(m, 1);
}

int pshm_mutex_timedlock(pshm_mutex *m, const struct timespec *deadline)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return mutex_lock_slow(m, -1, 0, deadline);
}

static __attribute__((noinline)) int mutex_unlock_slow(pshm_mutex *m)
{
    uint64_t me, owner;
    int r;

    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    me = pshm__self_thread();
    owner = LOADR(&m->owner);
    if (owner != me && owner != (me ^ OWNER_MARK))
        return -EPERM;
    STORER(&m->owner, 0);
    /* Unlocking after EOWNERDEAD without consistent: glibc makes the mutex
     * unrecoverable; record it for `pshm ls`. */
    if (owner != me)
        STORER(&m->state, (uint32_t)PSHM__MS_NOTRECOVERABLE);
    r = pthread_mutex_unlock(&m->pm);
    if (r != 0) {
        STORER(&m->owner, owner);
        return -r;
    }
    return 0;
}

int pshm_mutex_unlock(pshm_mutex *m)
{
    if (LIKELY(m && LOADR(&m->id) == SYNC_ID(PSHM_SYNC_MUTEX) &&
               LOADR(&m->owner) == pshm__self_thread())) {
        STORER(&m->owner, 0);
        /* cannot fail: this thread holds it (glibc checks that too) */
        return -pthread_mutex_unlock(&m->pm);
    }
    return mutex_unlock_slow(m);
}

int pshm_mutex_consistent(pshm_mutex *m)
{
    uint64_t me;
    int r;

    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    me = pshm__self_thread();
    if (LOADR(&m->owner) != (me ^ OWNER_MARK))
        return LOADR(&m->owner) == me ? -EINVAL : -EPERM;
    r = rm_consistent(&m->pm);
    if (r != 0)
        return -r;
    STORER(&m->state, (uint32_t)PSHM__MS_OK);
    STORER(&m->owner, me);
    return 0;
}

int pshm_mutex_destroy(pshm_mutex *m)
{
    int r;

    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    r = rm_trylock(&m->pm);
    if (r == EBUSY || r == EDEADLK)
        return -EBUSY;
    if (r == 0 || r == EOWNERDEAD) {
        (void)rm_consistent(&m->pm);
        rm_unlock(&m->pm);
    }
    STORE(&m->id, PSHM__SYNC_DEAD_ID);
    (void)pthread_mutex_destroy(&m->pm);
    return 0;
}

/* ---------------------------------------------------------------- cond */

int pshm_cond_init(void *mem, size_t size, pshm_cond **out)
{
    pshm_cond *c = mem;

    if (out)
        *out = NULL;
    if (!out || !mem_ok(mem, size, PSHM_COND_SIZE))
        return -EINVAL;
    memset(c, 0, sizeof *c);
    STORE(&c->id, SYNC_ID(PSHM_SYNC_COND));
    *out = c;
    return 0;
}

int pshm_cond_attach(void *mem, size_t size, pshm_cond **out)
{
    int r = attach_check(mem, size, PSHM_COND_SIZE, PSHM_SYNC_COND, out != NULL);

    if (out)
        *out = r ? NULL : mem;
    return r;
}

int pshm_cond_destroy(pshm_cond *c)
{
    CHECK_OBJ(c, c->id, PSHM_SYNC_COND);
    STORE(&c->id, PSHM__SYNC_DEAD_ID);
    return 0;
}

/*
 * The waiter notes the sequence while it still holds the mutex, so any
 * signal sent after the predicate it checked changed (which needs the
 * mutex) advances the sequence past the noted value, and the futex wait
 * returns at once (the kernel compares the word under its own lock). It
 * returns when the sequence has moved, whether or not the wake-up was meant
 * for it: that is the permitted spurious wake-up, and what hands on a
 * wake-up whose receiver died.
 */
static int cond_wait(pshm_cond *c, pshm_mutex *m, const struct timespec *deadline)
{
    uint32_t seq;
    int r, rl;

    CHECK_OBJ(c, c->id, PSHM_SYNC_COND);
    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    seq = LOADS(&c->seq);
    INC(&c->waiters);
    r = pshm_mutex_unlock(m);
    if (r != 0) {
        DEC(&c->waiters);
        return r;
    }
    for (;;) {
        r = wait_slice(&c->seq, seq, deadline);
        if (LOAD(&c->seq) != seq) {
            r = 0;
            break;
        }
        if (r < 0)
            break;
    }
    DEC(&c->waiters);
    rl = mutex_lock_fast(m, 0);
    return rl != 0 ? rl : r;
}

int pshm_cond_wait(pshm_cond *c, pshm_mutex *m)
{
    return cond_wait(c, m, NULL);
}

int pshm_cond_timedwait(pshm_cond *c, pshm_mutex *m, const struct timespec *deadline)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return cond_wait(c, m, deadline);
}

static int cond_wake(pshm_cond *c, int n)
{
    CHECK_OBJ(c, c->id, PSHM_SYNC_COND);
    /* A waiter counts itself before it releases the mutex, and a signaller
     * that matters changed the predicate under that mutex: if it reads 0
     * here, nobody can be between noting the sequence and sleeping. */
    if (LOADS(&c->waiters) == 0)
        return 0;
    INC(&c->seq);
    wake(&c->seq, n);
    return 0;
}

int pshm_cond_signal(pshm_cond *c)
{
    return cond_wake(c, 1);
}

int pshm_cond_broadcast(pshm_cond *c)
{
    return cond_wake(c, WAKE_ALL);
}

/* ----------------------------------------------------------- semaphore */

#define NO_SLOT UINT32_MAX

static pshm__sem_undo *sem_undo(pshm_sem *s)
{
    return (pshm__sem_undo *)((char *)s + PSHM_SEM_SIZE);
}

/* The undo part is used only if both the flag and the slot count say so;
 * a corrupted flags word alone cannot send us past the object. */
static int sem_is_undo(const pshm_sem *s)
{
    return (LOADR(&s->flags) & PSHM_SEM_UNDO) && LOADR(&s->nslots) == PSHM_SEM_UNDO_SLOTS;
}

int pshm_sem_init(void *mem, size_t size, unsigned value, unsigned flags, pshm_sem **out)
{
    pshm_sem *s = mem;
    int r;

    if (out)
        *out = NULL;
    if (!out || (flags & ~PSHM_SEM_UNDO) || value > PSHM_SEM_VALUE_MAX ||
        !mem_ok(mem, size, (flags & PSHM_SEM_UNDO) ? PSHM_SEM_UNDO_SIZE : PSHM_SEM_SIZE))
        return -EINVAL;
    memset(s, 0, sizeof *s);
    s->value = value;
    s->flags = flags;
    if (flags & PSHM_SEM_UNDO) {
        pshm__sem_undo *u = sem_undo(s);
        memset(u, 0, sizeof *u);
        r = rm_init(&u->lock.pm);
        if (r != 0)
            return r;
        s->nslots = PSHM_SEM_UNDO_SLOTS;
    }
    STORE(&s->id, SYNC_ID(PSHM_SYNC_SEM));
    *out = s;
    return 0;
}

int pshm_sem_attach(void *mem, size_t size, pshm_sem **out)
{
    pshm_sem *s = mem;
    int r = attach_check(mem, size, PSHM_SEM_SIZE, PSHM_SYNC_SEM, out != NULL);

    if (r == 0 && (LOADR(&s->flags) & PSHM_SEM_UNDO) &&
        (!sem_is_undo(s) || size < PSHM_SEM_UNDO_SIZE))
        r = -PSHM_EBADFORMAT;
    if (out)
        *out = r ? NULL : s;
    return r;
}

int pshm_sem_destroy(pshm_sem *s)
{
    CHECK_OBJ(s, s->id, PSHM_SYNC_SEM);
    STORE(&s->id, PSHM__SYNC_DEAD_ID);
    if (sem_is_undo(s))
        (void)pthread_mutex_destroy(&sem_undo(s)->lock.pm);
    return 0;
}

/* -- plain mode: lock-free */

static int sem_take(pshm_sem *s)
{
    uint32_t v = LOADR(&s->value);

    while (v > 0)
        if (CAS(&s->value, &v, v - 1))
            return 1;
    return 0;
}

/*
 * A waiter counts itself (seq_cst) before it reads the value, a poster
 * raises the value (seq_cst) before it reads the count: one of them sees the
 * other, so a post never misses a sleeper. The futex wait itself re-checks
 * the value in the kernel.
 */
static int sem_wait_plain(pshm_sem *s, int try, const struct timespec *deadline)
{
    int r;

    if (LIKELY(sem_take(s)))
        return 0;
    if (try)
        return -EAGAIN;
    INC(&s->waiters);
    for (;;) {
        if (sem_take(s)) {
            r = 0;
            break;
        }
        r = wait_slice(&s->value, 0, deadline);
        if (r < 0)
            break;
    }
    DEC(&s->waiters);
    return r;
}

static int sem_post_plain(pshm_sem *s)
{
    uint32_t v = LOADR(&s->value);

    do {
        if (v >= PSHM_SEM_VALUE_MAX)
            return -EOVERFLOW;
    } while (!CAS(&s->value, &v, v + 1));
    if (LOADS(&s->waiters) != 0)
        wake(&s->value, 1);
    return 0;
}

/* -- undo mode: under a robust mutex, with an intent record */

/* Undo a change its maker did not finish (it died holding the lock). */
static void undo_rollback(pshm_sem *s, pshm__sem_undo *u)
{
    uint32_t slot;

    if (!LOAD(&u->intent.valid))
        return;
    slot = LOADR(&u->intent.slot);
    STORE(&s->value, LOADR(&u->intent.old_value));
    if (slot < PSHM_SEM_UNDO_SLOTS) {
        STORER(&u->slots[slot].who, LOADR(&u->intent.old_who));
        STORER(&u->slots[slot].held, LOADR(&u->intent.old_held));
    }
    STORE(&u->intent.valid, 0);
}

/* value := value, slots[slot] := {who, held}, as one step (lock held). */
static void undo_apply(pshm_sem *s, pshm__sem_undo *u, uint32_t slot, uint32_t value,
                       uint64_t who, uint32_t held)
{
    STORER(&u->intent.slot, slot);
    STORER(&u->intent.old_value, LOADR(&s->value));
    if (slot < PSHM_SEM_UNDO_SLOTS) {
        STORER(&u->intent.old_who, LOADR(&u->slots[slot].who));
        STORER(&u->intent.old_held, LOADR(&u->slots[slot].held));
    }
    STORES(&u->intent.valid, 1);
    STORES(&s->value, value);
    if (slot < PSHM_SEM_UNDO_SLOTS) {
        STORES(&u->slots[slot].who, who);
        STORES(&u->slots[slot].held, held);
    }
    STORES(&u->intent.valid, 0);
}

static int undo_lock(pshm_sem *s, pshm__sem_undo *u, const struct timespec *deadline)
{
    int r = rm_lock(&u->lock.pm, 0, deadline);

    if (r == EOWNERDEAD) {
        undo_rollback(s, u);
        r = rm_consistent(&u->lock.pm);
        if (r != 0) {
            rm_unlock(&u->lock.pm);
            return -r;
        }
    }
    return lock_code(r);
}

/* The record of process me, or (claim) a free one; -1 if none. */
static int undo_find(pshm__sem_undo *u, uint64_t me, int claim)
{
    for (int i = 0; i < PSHM_SEM_UNDO_SLOTS; i++)
        if (LOADR(&u->slots[i].who) == me)
            return i;
    if (claim)
        for (int i = 0; i < PSHM_SEM_UNDO_SLOTS; i++)
            if (LOADR(&u->slots[i].who) == 0 || LOADR(&u->slots[i].held) == 0)
                return i;
    return -1;
}

/* Give back the units of dead holders (lock held). Returns how many. */
static uint32_t undo_reap(pshm_sem *s, pshm__sem_undo *u)
{
    uint32_t back = 0;

    for (uint32_t i = 0; i < PSHM_SEM_UNDO_SLOTS; i++) {
        uint64_t who = LOADR(&u->slots[i].who);
        uint32_t held = LOADR(&u->slots[i].held), v;
        if (who == 0 || held == 0 || pshm__id_alive(who) != 0)
            continue;
        v = LOADR(&s->value);
        v = held > PSHM_SEM_VALUE_MAX - v ? PSHM_SEM_VALUE_MAX : v + held;
        undo_apply(s, u, i, v, 0, 0);
        back += held;
    }
    STORER(&s->last_reap_ms, (uint64_t)mono_ms());
    return back;
}

static int sem_wait_undo(pshm_sem *s, int try, const struct timespec *deadline)
{
    pshm__sem_undo *u = sem_undo(s);
    uint64_t me = pshm__self_process();
    int reap = 0, r;

    for (;;) {
        uint32_t back = 0, v;
        r = undo_lock(s, u, deadline);
        if (r != 0)
            return r;
        if (reap)
            back = undo_reap(s, u);
        v = LOADR(&s->value);
        if (v > 0) {
            int i = undo_find(u, me, 1);
            if (i < 0) {
                back += undo_reap(s, u);
                i = undo_find(u, me, 1);
                v = LOADR(&s->value);
            }
            if (i >= 0) {
                uint32_t held = LOADR(&u->slots[i].who) == me ? LOADR(&u->slots[i].held) : 0;
                undo_apply(s, u, (uint32_t)i, v - 1, me, held + 1);
            }
            rm_unlock(&u->lock.pm);
            if (back > 1 && LOADS(&s->waiters))
                wake(&s->value, (int)(back > WAKE_ALL ? WAKE_ALL : back));
            return i >= 0 ? 0 : -ENOSPC;
        }
        if (try) {
            rm_unlock(&u->lock.pm);
            return -EAGAIN;
        }
        INC(&s->waiters);
        rm_unlock(&u->lock.pm);
        r = wait_slice(&s->value, 0, deadline);
        DEC(&s->waiters);
        if (r < 0)
            return r;
        /* One waiter per interval asks the kernel about the holders. */
        reap = r == SLICE &&
               (uint64_t)mono_ms() - LOADR(&s->last_reap_ms) >= PSHM_SYNC_RECHECK_MS;
    }
}

static int sem_post_undo(pshm_sem *s)
{
    pshm__sem_undo *u = sem_undo(s);
    uint64_t me = pshm__self_process();
    uint32_t v;
    int i, r;

    r = undo_lock(s, u, NULL);
    if (r != 0)
        return r;
    v = LOADR(&s->value);
    if (v >= PSHM_SEM_VALUE_MAX) {
        rm_unlock(&u->lock.pm);
        return -EOVERFLOW;
    }
    i = undo_find(u, me, 0);
    if (i >= 0 && LOADR(&u->slots[i].held) > 0)
        undo_apply(s, u, (uint32_t)i, v + 1, me, LOADR(&u->slots[i].held) - 1);
    else
        undo_apply(s, u, NO_SLOT, v + 1, 0, 0);
    rm_unlock(&u->lock.pm);
    if (LOADS(&s->waiters) != 0)
        wake(&s->value, 1);
    return 0;
}

static int sem_wait(pshm_sem *s, int try, const struct timespec *deadline)
{
    CHECK_OBJ(s, s->id, PSHM_SYNC_SEM);
    if (UNLIKELY(LOADR(&s->flags) & PSHM_SEM_UNDO)) {
        if (!sem_is_undo(s))
            return -PSHM_EBADFORMAT;
        return sem_wait_undo(s, try, deadline);
    }
    return sem_wait_plain(s, try, deadline);
}

int pshm_sem_wait(pshm_sem *s)
{
    return sem_wait(s, 0, NULL);
}

int pshm_sem_trywait(pshm_sem *s)
{
    return sem_wait(s, 1, NULL);
}

int pshm_sem_timedwait(pshm_sem *s, const struct timespec *deadline)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return sem_wait(s, 0, deadline);
}

int pshm_sem_post(pshm_sem *s)
{
    CHECK_OBJ(s, s->id, PSHM_SYNC_SEM);
    if (UNLIKELY(LOADR(&s->flags) & PSHM_SEM_UNDO)) {
        if (!sem_is_undo(s))
            return -PSHM_EBADFORMAT;
        return sem_post_undo(s);
    }
    return sem_post_plain(s);
}

int pshm_sem_getvalue(pshm_sem *s, unsigned *value)
{
    CHECK_OBJ(s, s->id, PSHM_SYNC_SEM);
    if (!value)
        return -EINVAL;
    *value = LOAD(&s->value);
    return 0;
}

/* ------------------------------------------------------- read-write lock */

/*
 * Holds, and who witnesses them:
 *   gate          robust mutex; a writer holds it from wrlock to unlock, a
 *                 reader only while it passes a waiting or active writer.
 *   slots[i].pm   robust mutex; a reader holds one while it reads, and
 *                 records itself in slots[i].holder once it has it.
 *   wflag         1 from the moment a writer has the gate until it lets go.
 * A reader takes a free slot, records itself, then (after a full fence)
 * checks wflag. A writer sets wflag, fences, then looks at every slot's
 * holder and waits (by locking the slot) for each that is taken. By the
 * fences, either the reader sees wflag and backs off to the gate, or the
 * writer sees the reader's holder and waits for it. A writer never keeps a
 * slot, so its cost is the gate and a scan, not a lock per slot. The death
 * of a reader while the writer waits on its slot comes back as EOWNERDEAD
 * at once; the death of a writer leaves the gate owner-dead, found by the
 * next writer or by any reader (wflag sends them all to the gate).
 * wstate is 1 only while the writer actually holds the lock (the readers
 * drained): a writer that died with wstate set may have left the data half
 * written; one that died draining may not.
 */

#define RW_TOLD_READER 1

static pthread_mutex_t *rw_gate(pshm_rwlock *rw)
{
    return &rw->gate.pm;
}

static pthread_mutex_t *rw_slot(pshm_rwlock *rw, int i)
{
    return &rw->slots[i].s.pm;
}

static int rw_start(uint64_t me)
{
    return (int)((PSHM__ID_PID(me) * 2654435761u) % PSHM_RWLOCK_READERS);
}

int pshm_rwlock_init(void *mem, size_t size, pshm_rwlock **out)
{
    pshm_rwlock *rw = mem;
    int r;

    if (out)
        *out = NULL;
    if (!out || !mem_ok(mem, size, PSHM_RWLOCK_SIZE))
        return -EINVAL;
    memset(rw, 0, sizeof *rw);
    r = rm_init(rw_gate(rw));
    for (int i = 0; r == 0 && i < PSHM_RWLOCK_READERS; i++)
        r = rm_init(rw_slot(rw, i));
    if (r != 0)
        return r;
    STORE(&rw->head.h.id, SYNC_ID(PSHM_SYNC_RWLOCK));
    *out = rw;
    return 0;
}

int pshm_rwlock_attach(void *mem, size_t size, pshm_rwlock **out)
{
    int r = attach_check(mem, size, PSHM_RWLOCK_SIZE, PSHM_SYNC_RWLOCK, out != NULL);

    if (out)
        *out = r ? NULL : mem;
    return r;
}

/*
 * Take reader slot i (try: without blocking). A slot whose holder died comes
 * back from glibc as EOWNERDEAD: it is ours now; made consistent at once
 * (the slot protects no data), and reported if a reader held it. Records
 * `holder` (0 for a writer). Returns an errno value.
 */
static int slot_take(pshm_rwlock *rw, int i, int try, const struct timespec *deadline,
                     uint64_t holder, int *told)
{
    int r = rm_lock(rw_slot(rw, i), try, deadline);

    if (r == EOWNERDEAD) {
        if (LOADR(&rw->slots[i].s.holder) != 0)
            *told |= RW_TOLD_READER;
        r = rm_consistent(rw_slot(rw, i));
        if (r != 0) {
            rm_unlock(rw_slot(rw, i));
            return r;
        }
    }
    if (r == 0)
        STORER(&rw->slots[i].s.holder, holder);
    return r;
}

/* Clearing holder is a release: a writer that then reads 0 (acquire) and
 * goes ahead without locking the slot is ordered after our reads. */
static void slot_drop(pshm_rwlock *rw, int i)
{
    STORE(&rw->slots[i].s.holder, 0);
    rm_unlock(rw_slot(rw, i));
}

/*
 * The gate's holder died (we hold it now, EOWNERDEAD). If it was a writer
 * holding the lock, mark the lock inconsistent. Release the slots of any
 * readers that died meanwhile, clear wflag (no writer is active while we
 * hold the gate), and make the gate usable.
 */
static int rw_recover(pshm_rwlock *rw, int *told)
{
    if (LOAD(&rw->head.h.wstate)) {
        STORE(&rw->head.h.incons, 1);
        STORE(&rw->head.h.wthread, 0);
        STORE(&rw->head.h.wstate, 0);
    }
    for (int i = 0; i < PSHM_RWLOCK_READERS; i++) {
        int r = slot_take(rw, i, 1, NULL, 0, told);
        if (r == 0)
            slot_drop(rw, i);
    }
    STORES(&rw->head.h.wflag, 0);
    return rm_consistent(rw_gate(rw));
}

static int gate_lock(pshm_rwlock *rw, int try, const struct timespec *deadline, int *told)
{
    int r = rm_trylock(rw_gate(rw));

    if (r == EBUSY && !try) {
        INC(&rw->head.h.waiters);
        r = rm_lock(rw_gate(rw), 0, deadline);
        DEC(&rw->head.h.waiters);
    }
    if (r == EOWNERDEAD) {
        r = rw_recover(rw, told);
        if (r != 0)
            rm_unlock(rw_gate(rw));
    }
    return r;
}

static int rw_result(pshm_rwlock *rw, int told)
{
    if (LOAD(&rw->head.h.incons))
        return -PSHM_EOWNERDEAD;
    return (told & RW_TOLD_READER) ? -PSHM_EREADERDEAD : 0;
}

/* Any free slot, without blocking: its index, or -1 (busy), or -2 - errno. */
static int slot_any(pshm_rwlock *rw, int start, uint64_t me, int *told)
{
    for (int k = 0; k < PSHM_RWLOCK_READERS; k++) {
        int i = (start + k) % PSHM_RWLOCK_READERS;
        int r = slot_take(rw, i, 1, NULL, me, told);
        if (r == 0)
            return i;
        if (r != EBUSY && r != EDEADLK) /* EDEADLK: a slot this thread holds */
            return -2 - r;
    }
    return -1;
}

static int rw_rdlock(pshm_rwlock *rw, int try, const struct timespec *deadline)
{
    uint64_t me;
    int start, told = 0, i, r;

    CHECK_OBJ(rw, rw->head.h.id, PSHM_SYNC_RWLOCK);
    me = pshm__self_thread();
    start = rw_start(me);
    /* Fast path: no writer around, take a slot, confirm no writer came. */
    if (LIKELY(LOAD(&rw->head.h.wflag) == 0)) {
        i = slot_any(rw, start, me, &told);
        if (i <= -2)
            return lock_code(-2 - i);
        if (i >= 0) {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (LIKELY(LOADS(&rw->head.h.wflag) == 0))
                return rw_result(rw, told);
            slot_drop(rw, i); /* a writer is coming: queue behind it */
        }
    }
    for (;;) {
        /* Through the gate: while we hold it, no writer is active. */
        r = gate_lock(rw, try, deadline, &told);
        if (r != 0)
            return lock_code(r);
        i = slot_any(rw, start, me, &told);
        rm_unlock(rw_gate(rw));
        if (i >= 0)
            return rw_result(rw, told);
        if (i <= -2)
            return lock_code(-2 - i);
        if (try)
            return -EBUSY;
        /* Every slot is taken by a reader: wait for one (not holding the
         * gate, so those readers can still come and go), then re-check for
         * writers as on the fast path. */
        for (int k = 0; k < PSHM_RWLOCK_READERS; k++) {
            i = (start + k) % PSHM_RWLOCK_READERS;
            if (LOADR(&rw->slots[i].s.holder) != me)
                break;
        }
        r = slot_take(rw, i, 0, deadline, me, &told);
        if (r == EDEADLK)
            continue;
        if (r != 0)
            return lock_code(r);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (LOADS(&rw->head.h.wflag) == 0)
            return rw_result(rw, told);
        slot_drop(rw, i);
    }
}

static int rw_wrlock(pshm_rwlock *rw, int try, const struct timespec *deadline)
{
    uint64_t me;
    int told = 0, r, i;

    CHECK_OBJ(rw, rw->head.h.id, PSHM_SYNC_RWLOCK);
    me = pshm__self_thread();
    if (LOAD(&rw->head.h.wstate) && LOAD(&rw->head.h.wthread) == me)
        return -EDEADLK;
    /* A reader asking to write would wait for itself (and, holding the
     * gate meanwhile, for readers that wait for the gate). */
    for (i = 0; i < PSHM_RWLOCK_READERS; i++)
        if (LOADR(&rw->slots[i].s.holder) == me)
            return -EDEADLK;
    r = gate_lock(rw, try, deadline, &told);
    if (r != 0)
        return lock_code(r);
    STORES(&rw->head.h.wflag, 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Wait out every reader that is in: lock its slot (the kernel hands it
     * over when the reader leaves or dies) and let it go again - readers
     * that come now see wflag and queue at the gate. */
    for (i = 0; i < PSHM_RWLOCK_READERS; i++) {
        if (LOADS(&rw->slots[i].s.holder) == 0)
            continue;
        r = slot_take(rw, i, try, deadline, 0, &told);
        if (r == 0) {
            slot_drop(rw, i);
        } else { /* busy (try), timed out, or EDEADLK */
            STORES(&rw->head.h.wflag, 0);
            rm_unlock(rw_gate(rw));
            return lock_code(r);
        }
    }
    STORE(&rw->head.h.wthread, me);
    STORE(&rw->head.h.wstate, 1);
    return rw_result(rw, told);
}

int pshm_rwlock_rdlock(pshm_rwlock *rw)
{
    return rw_rdlock(rw, 0, NULL);
}

int pshm_rwlock_tryrdlock(pshm_rwlock *rw)
{
    return rw_rdlock(rw, 1, NULL);
}

int pshm_rwlock_timedrdlock(pshm_rwlock *rw, const struct timespec *deadline)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return rw_rdlock(rw, 0, deadline);
}

int pshm_rwlock_wrlock(pshm_rwlock *rw)
{
    return rw_wrlock(rw, 0, NULL);
}

int pshm_rwlock_trywrlock(pshm_rwlock *rw)
{
    return rw_wrlock(rw, 1, NULL);
}

int pshm_rwlock_timedwrlock(pshm_rwlock *rw, const struct timespec *deadline)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return rw_wrlock(rw, 0, deadline);
}

int pshm_rwlock_unlock(pshm_rwlock *rw)
{
    uint64_t me;
    int start;

    CHECK_OBJ(rw, rw->head.h.id, PSHM_SYNC_RWLOCK);
    me = pshm__self_thread();
    if (LOAD(&rw->head.h.wstate) && LOAD(&rw->head.h.wthread) == me) {
        STORE(&rw->head.h.wstate, 0);
        STORE(&rw->head.h.wthread, 0);
        STORES(&rw->head.h.wflag, 0);
        rm_unlock(rw_gate(rw));
        return 0;
    }
    start = rw_start(me);
    for (int k = 0; k < PSHM_RWLOCK_READERS; k++) {
        int i = (start + k) % PSHM_RWLOCK_READERS;
        if (LOADR(&rw->slots[i].s.holder) == me) {
            STORE(&rw->slots[i].s.holder, 0); /* release: see slot_drop */
            int r = pthread_mutex_unlock(rw_slot(rw, i));
            if (r != 0) {
                STORER(&rw->slots[i].s.holder, me);
                return -r;
            }
            return 0;
        }
    }
    return -EPERM;
}

int pshm_rwlock_consistent(pshm_rwlock *rw)
{
    CHECK_OBJ(rw, rw->head.h.id, PSHM_SYNC_RWLOCK);
    if (!LOAD(&rw->head.h.wstate) || LOAD(&rw->head.h.wthread) != pshm__self_thread())
        return -EPERM;
    if (!LOAD(&rw->head.h.incons))
        return -EINVAL;
    STORE(&rw->head.h.incons, 0);
    return 0;
}

int pshm_rwlock_destroy(pshm_rwlock *rw)
{
    int r = pshm_rwlock_trywrlock(rw);

    if (r == -EBUSY || r == -EDEADLK)
        return -EBUSY;
    if (r != 0 && r != -PSHM_EOWNERDEAD && r != -PSHM_EREADERDEAD)
        return r;
    STORE(&rw->head.h.id, PSHM__SYNC_DEAD_ID);
    STORE(&rw->head.h.wstate, 0);
    for (int i = 0; i < PSHM_RWLOCK_READERS; i++)
        (void)pthread_mutex_destroy(rw_slot(rw, i));
    rm_unlock(rw_gate(rw));
    (void)pthread_mutex_destroy(rw_gate(rw));
    return 0;
}

/* ------------------------------------------------------------- barrier */

/*
 * One 32-bit futex word holds the arrival count, the phase (generation), an
 * epoch advanced by reset, and the broken bit, so the last arriver completes
 * a phase with a single compare-and-swap: there is no moment at which a
 * death can leave a phase half-completed. Waiters sleep on the word and
 * return when the phase or epoch moved, or the broken bit is set. A waiter
 * that has slept PSHM_SYNC_RECHECK_MS checks (at most one waiter per
 * interval) that every joined participant still lives; if one died, it
 * breaks the barrier for all.
 */

static int bar_count(pshm_barrier *b, uint32_t *count)
{
    uint32_t n = LOADR(&b->count);

    if (n == 0 || n > PSHM_BARRIER_MAX || LOADR(&b->count_check) != ~n)
        return -PSHM_EBADFORMAT;
    *count = n;
    return 0;
}

int pshm_barrier_init(void *mem, size_t size, unsigned count, pshm_barrier **out)
{
    pshm_barrier *b = mem;

    if (out)
        *out = NULL;
    if (!out || count == 0 || count > PSHM_BARRIER_MAX || !mem_ok(mem, size, PSHM_BARRIER_SIZE(count)))
        return -EINVAL;
    memset(b, 0, PSHM_BARRIER_SIZE(count));
    b->count = count;
    b->count_check = ~(uint32_t)count;
    STORE(&b->id, SYNC_ID(PSHM_SYNC_BARRIER));
    *out = b;
    return 0;
}

int pshm_barrier_attach(void *mem, size_t size, pshm_barrier **out)
{
    pshm_barrier *b = mem;
    uint32_t n;
    int r = attach_check(mem, size, PSHM_BARRIER_SIZE(0), PSHM_SYNC_BARRIER, out != NULL);

    if (r == 0)
        r = bar_count(b, &n);
    if (r == 0 && size < PSHM_BARRIER_SIZE(n))
        r = -PSHM_EBADFORMAT;
    if (out)
        *out = r ? NULL : b;
    return r;
}

int pshm_barrier_destroy(pshm_barrier *b)
{
    CHECK_OBJ(b, b->id, PSHM_SYNC_BARRIER);
    STORE(&b->id, PSHM__SYNC_DEAD_ID);
    return 0;
}

static int bar_find(pshm_barrier *b, uint32_t n, uint64_t me)
{
    for (uint32_t i = 0; i < n; i++)
        if (LOADR(&b->members[i]) == me)
            return (int)i;
    return -1;
}

static int bar_join(pshm_barrier *b, uint32_t n, uint64_t me)
{
    if (bar_find(b, n, me) >= 0)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t free_ = 0;
        if (LOADR(&b->members[i]) == 0 && CAS(&b->members[i], &free_, me))
            return 0;
    }
    return -ENOSPC;
}

/* Set the broken bit unless the phase or epoch moved since `seen`. */
static void bar_break(pshm_barrier *b, uint32_t seen)
{
    uint32_t w = LOAD(&b->word);

    while (!(w & PSHM__BW_BROKEN) && PSHM__BW_GEN(w) == PSHM__BW_GEN(seen) &&
           PSHM__BW_EPOCH(w) == PSHM__BW_EPOCH(seen))
        if (CAS(&b->word, &w, w | PSHM__BW_BROKEN)) {
            wake(&b->word, WAKE_ALL);
            return;
        }
}

/* 1 if a joined participant is dead. At most one caller per interval asks. */
static int bar_any_dead(pshm_barrier *b, uint32_t n, int force)
{
    uint64_t now = (uint64_t)mono_ms(), last = LOADR(&b->last_check_ms);

    if (!force && (now - last < PSHM_SYNC_RECHECK_MS || !CAS(&b->last_check_ms, &last, now)))
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = LOADR(&b->members[i]);
        if (id != 0 && pshm__id_alive(id) == 0)
            return 1;
    }
    return 0;
}

/* mode: 0 wait, 1 try, 2 timed */
static int bar_wait(pshm_barrier *b, int mode, const struct timespec *deadline,
                    unsigned *arrival)
{
    uint64_t me;
    uint32_t n, w, seen;
    int r;

    CHECK_OBJ(b, b->id, PSHM_SYNC_BARRIER);
    r = bar_count(b, &n);
    if (r != 0)
        return r;
    me = pshm__self_thread();
    r = bar_join(b, n, me);
    if (r != 0) {
        /* No place for us: if a dead participant holds one, that is why. */
        if (bar_any_dead(b, n, 1)) {
            bar_break(b, LOAD(&b->word));
            return -PSHM_EBROKEN;
        }
        return r;
    }
    w = LOAD(&b->word);
    for (;;) {
        if (w & PSHM__BW_BROKEN)
            return -PSHM_EBROKEN;
        if (PSHM__BW_ARRIVED(w) + 1 >= n) {
            /* Last to arrive: next generation, nobody arrived, one CAS. */
            uint32_t next = (w & 0x7f000000u) | (((PSHM__BW_GEN(w) + 1) & 0xffu) << 16);
            if (CAS(&b->word, &w, next)) {
                wake(&b->word, WAKE_ALL);
                if (arrival)
                    *arrival = n - 1;
                return 0;
            }
            continue;
        }
        if (mode == 1)
            return -EAGAIN;
        if (CAS(&b->word, &w, w + 1)) {
            seen = w + 1;
            break;
        }
    }
    INC(&b->waiters);
    for (;;) {
        w = LOAD(&b->word);
        if ((w & PSHM__BW_BROKEN) || PSHM__BW_EPOCH(w) != PSHM__BW_EPOCH(seen)) {
            r = -PSHM_EBROKEN;
            break;
        }
        if (PSHM__BW_GEN(w) != PSHM__BW_GEN(seen)) {
            r = 0;
            break;
        }
        r = wait_slice(&b->word, w, deadline);
        if (r == -ETIMEDOUT) {
            /* As Python's Barrier: a timeout breaks it for everyone - unless
             * the phase completed meanwhile. */
            bar_break(b, seen);
            w = LOAD(&b->word);
            if (!(w & PSHM__BW_BROKEN) && PSHM__BW_EPOCH(w) == PSHM__BW_EPOCH(seen) &&
                PSHM__BW_GEN(w) != PSHM__BW_GEN(seen))
                r = 0;
            break;
        }
        if (r < 0)
            break;
        if (r == SLICE && bar_any_dead(b, n, 0))
            bar_break(b, seen);
    }
    DEC(&b->waiters);
    if (r == 0 && arrival)
        *arrival = PSHM__BW_ARRIVED(seen) - 1;
    return r;
}

int pshm_barrier_wait(pshm_barrier *b, unsigned *arrival)
{
    return bar_wait(b, 0, NULL, arrival);
}

int pshm_barrier_trywait(pshm_barrier *b, unsigned *arrival)
{
    return bar_wait(b, 1, NULL, arrival);
}

int pshm_barrier_timedwait(pshm_barrier *b, const struct timespec *deadline, unsigned *arrival)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return bar_wait(b, 2, deadline, arrival);
}

int pshm_barrier_join(pshm_barrier *b)
{
    uint32_t n;
    int r;

    CHECK_OBJ(b, b->id, PSHM_SYNC_BARRIER);
    r = bar_count(b, &n);
    return r != 0 ? r : bar_join(b, n, pshm__self_thread());
}

int pshm_barrier_leave(pshm_barrier *b)
{
    uint64_t me;
    uint32_t n;
    int r, i;

    CHECK_OBJ(b, b->id, PSHM_SYNC_BARRIER);
    r = bar_count(b, &n);
    if (r != 0)
        return r;
    me = pshm__self_thread();
    i = bar_find(b, n, me);
    if (i < 0)
        return -ENOENT;
    (void)CAS(&b->members[i], &me, 0);
    return 0;
}

int pshm_barrier_reset(pshm_barrier *b)
{
    uint32_t n, w;
    int r;

    CHECK_OBJ(b, b->id, PSHM_SYNC_BARRIER);
    r = bar_count(b, &n);
    if (r != 0)
        return r;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = LOADR(&b->members[i]);
        if (id != 0 && pshm__id_alive(id) == 0)
            (void)CAS(&b->members[i], &id, 0);
    }
    w = LOAD(&b->word);
    while (!CAS(&b->word, &w, (((PSHM__BW_EPOCH(w) + 1) & 0x7fu) << 24) | (PSHM__BW_GEN(w) << 16)))
        ;
    wake(&b->word, WAKE_ALL);
    return 0;
}

/* --------------------------------------------------------------- event */

static int ev_manual(const pshm_event *e)
{
    return (LOADR(&e->flags) & PSHM_EVENT_MANUAL) != 0;
}

int pshm_event_init(void *mem, size_t size, unsigned flags, pshm_event **out)
{
    pshm_event *e = mem;

    if (out)
        *out = NULL;
    if (!out || (flags & ~(PSHM_EVENT_MANUAL | PSHM_EVENT_SET)) || !mem_ok(mem, size, PSHM_EVENT_SIZE))
        return -EINVAL;
    memset(e, 0, sizeof *e);
    e->flags = flags & PSHM_EVENT_MANUAL;
    e->state = (flags & PSHM_EVENT_SET) ? 1 : 0;
    STORE(&e->id, SYNC_ID(PSHM_SYNC_EVENT));
    *out = e;
    return 0;
}

int pshm_event_attach(void *mem, size_t size, pshm_event **out)
{
    int r = attach_check(mem, size, PSHM_EVENT_SIZE, PSHM_SYNC_EVENT, out != NULL);

    if (out)
        *out = r ? NULL : mem;
    return r;
}

int pshm_event_destroy(pshm_event *e)
{
    CHECK_OBJ(e, e->id, PSHM_SYNC_EVENT);
    STORE(&e->id, PSHM__SYNC_DEAD_ID);
    return 0;
}

int pshm_event_set(pshm_event *e)
{
    CHECK_OBJ(e, e->id, PSHM_SYNC_EVENT);
    uint32_t old = __atomic_exchange_n(&e->state, 1, __ATOMIC_SEQ_CST);
    if (LOADS(&e->waiters) == 0)
        return 0;
    if (ev_manual(e)) {
        if (old == 0)
            wake(&e->state, WAKE_ALL);
    } else {
        wake(&e->state, 1);
    }
    return 0;
}

int pshm_event_reset(pshm_event *e)
{
    CHECK_OBJ(e, e->id, PSHM_SYNC_EVENT);
    STORES(&e->state, 0);
    return 0;
}

/* Did we get it? Manual: it is set. Auto: we consumed the set. */
static int ev_take(pshm_event *e, int manual)
{
    uint32_t one = 1;

    if (manual)
        return LOAD(&e->state) != 0;
    return LOADR(&e->state) != 0 && CAS(&e->state, &one, 0);
}

static int ev_wait(pshm_event *e, int try, const struct timespec *deadline)
{
    int manual, r;

    CHECK_OBJ(e, e->id, PSHM_SYNC_EVENT);
    manual = ev_manual(e);
    if (ev_take(e, manual))
        return 0;
    if (try)
        return -EAGAIN;
    INC(&e->waiters);
    for (;;) {
        if (ev_take(e, manual)) {
            r = 0;
            break;
        }
        r = wait_slice(&e->state, 0, deadline);
        if (r < 0)
            break;
    }
    DEC(&e->waiters);
    return r;
}

int pshm_event_wait(pshm_event *e)
{
    return ev_wait(e, 0, NULL);
}

int pshm_event_trywait(pshm_event *e)
{
    return ev_wait(e, 1, NULL);
}

int pshm_event_timedwait(pshm_event *e, const struct timespec *deadline)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return ev_wait(e, 0, deadline);
}

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
        if (st == PSHM__HS_INITIALISING) {
            uint64_t who = LOADR(&h->initialiser);
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
    if (!CAS(&h->state, &empty, (uint32_t)PSHM__HS_INITIALISING)) {
        r = -PSHM_EBADFORMAT; /* someone wrote into our new block */
        goto fail;
    }
    h->initialiser = pshm__self_process();
    h->version = PSHM__SYNC_VERSION;
    h->kind = (uint16_t)c.kind;
    h->abi = SYNC_ABI;
    h->obj_off = PSHM__SYNC_HDR_SIZE;
    h->obj_size = (uint32_t)c.size;
    STORE(&h->magic, PSHM__SYNC_HDR_MAGIC);
    r = build(&c, obj);
    if (r == 0)
        r = handle_new(b, kind, obj, out);
    if (r != 0)
        goto fail;
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
        return LOADR(&m->id) == SYNC_ID(PSHM_SYNC_MUTEX) &&
               (held_here(LOADR(&m->owner)) || held_here(LOADR(&m->owner) ^ OWNER_MARK));
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
        if (size < PSHM_MUTEX_SIZE)
            return -PSHM_EBADFORMAT;
        owner = peek64(&m->owner);
        if (owner && LOADR(&m->state) == PSHM__MS_INCONSISTENT)
            owner ^= OWNER_MARK;
        out->locked = owner != 0;
        if (owner)
            owner_info(owner, out);
        out->waiters = LOADR(&m->waiters);
        out->inconsistent = LOADR(&m->state) == PSHM__MS_INCONSISTENT;
        out->notrecoverable = LOADR(&m->state) == PSHM__MS_NOTRECOVERABLE;
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
    char nm[PSHM_NAME_MAX + 1];
    pshm_sync_info in;
    struct stat st;
    uint64_t *buf;
    ssize_t got;
    int fd, r;

    if (!sinfo_ok(out))
        return -EINVAL;
    r = pshm__name_norm(name, nm);
    if (r != 0)
        return r;
    r = pshm__os_stat_object(nm, &st);
    if (r != 0)
        return r;
    r = pshm__os_open(nm, 0, &fd);
    if (r != 0)
        return r;
    buf = malloc(STAT_MAX); /* uint64_t: aligned as the objects need */
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    do
        got = pread(fd, buf, STAT_MAX, 0);
    while (got < 0 && errno == EINTR);
    r = got < 0 ? -errno : 0;
    close(fd);
    if (r == 0 && got < PSHM__SYNC_HDR_SIZE)
        r = -PSHM_EKIND;
    if (r == 0 && LOADR(&((const pshm__sync_hdr *)buf)->magic) != PSHM__SYNC_HDR_MAGIC)
        r = -PSHM_EKIND; /* not a named sync object */
    if (r == 0)
        r = stat_mem(buf, (size_t)got, &in);
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
