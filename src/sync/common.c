/* SPDX-License-Identifier: MIT */
/*
 * sync.c - mutex, condition variable, semaphore, read-write lock, barrier
 * and event for processes sharing memory, surviving the death of any of
 * them. The contract is in include/pshm.h; the layouts in sync/sync_internal.h.
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

#include "../os/futex.h"
#include "../os/liveness.h"
#include "../os/os.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
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

uint32_t pshm__sync_abi(void)
{
    return SYNC_ABI;
}

/* Why an id is not the one wanted. Cold. */
int pshm__sync_id_error(uint64_t id, pshm_sync_kind want)
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


int pshm__sync_wait_slice(uint32_t *w, uint32_t expect, const struct timespec *deadline)
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

/* ------------------------------------------------------ robust mutexes */

int pshm__rm_init(pthread_mutex_t *pm)
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
int pshm__rm_trylock(pthread_mutex_t *pm)
{
    int r = pthread_mutex_trylock(pm);
    if (UNLIKELY(r == ENOTRECOVERABLE))
        trylock_fixup(pm);
    return r;
}

/* Lock with an absolute CLOCK_MONOTONIC deadline; returns an errno value. */
int pshm__rm_timedlock(pthread_mutex_t *pm, const struct timespec *deadline)
{
#if defined(PSHM__HAVE_CLOCKLOCK)
    return pthread_mutex_clocklock(pm, CLOCK_MONOTONIC, deadline);
#elif defined(PSHM__TSAN)
    /* ThreadSanitizer's pthread_mutex_timedlock does not count EOWNERDEAD
     * as acquired (its lock and trylock do): poll with trylock instead. */
    for (long step_us = 20;; step_us = step_us < 1000 ? step_us * 2 : 1000) {
        struct timespec now, d = {0, step_us * 1000};
        int r = pshm__rm_trylock(pm);
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
        int r = pshm__rm_trylock(pm);
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
int pshm__rm_lock(pthread_mutex_t *pm, int try, const struct timespec *deadline)
{
    if (try)
        return pshm__rm_trylock(pm);
    for (;;) {
        struct timespec until;
        mono_now(&until);
        until = ts_plus_ms(until, PSHM_SYNC_RECHECK_MS);
        int last = deadline && !ts_lt(&until, deadline);
        int r = pshm__rm_timedlock(pm, last ? deadline : &until);
        if (r != ETIMEDOUT || last)
            return r;
    }
}

int pshm__rm_consistent(pthread_mutex_t *pm)
{
#ifdef PSHM__HAVE_ROBUST
    return pthread_mutex_consistent(pm);
#else
    (void)pm;
    return ENOTSUP;
#endif
}

void pshm__rm_unlock(pthread_mutex_t *pm)
{
    /* We hold it: failing to release it would corrupt every other user. */
    PSHM__CHECK(pthread_mutex_unlock(pm));
}

/* An errno value from a lock to a return code. */
int pshm__sync_lock_code(int r)
{
    switch (r) {
    case 0: return 0;
    case EOWNERDEAD: return -PSHM_EOWNERDEAD;
    case ENOTRECOVERABLE: return -PSHM_ENOTRECOVERABLE;
    default: return -r;
    }
}

int pshm__sync_mem_ok(const void *mem, size_t size, size_t need)
{
    return mem && size >= need && ((uintptr_t)mem % PSHM_SYNC_ALIGN) == 0;
}

/* What every _attach checks first: an out pointer, memory large and aligned
 * enough, holding an object of kind (the id is every object's first word).
 * 0 or the error to return. */
int pshm__sync_attach_check(void *mem, size_t size, size_t need, pshm_sync_kind kind, int have_out)
{
    if (!have_out || !pshm__sync_mem_ok(mem, size, need))
        return -EINVAL;
    CHECK_OBJ(mem, *(const uint64_t *)mem, kind);
    return 0;
}
_Static_assert(offsetof(struct pshm_mutex, id) == 0 && offsetof(struct pshm_cond, id) == 0 &&
                   offsetof(struct pshm_sem, id) == 0 &&
                   offsetof(struct pshm_rwlock, head.h.id) == 0 &&
                   offsetof(struct pshm_barrier, id) == 0 && offsetof(struct pshm_event, id) == 0,
               "the id is every object's first word");
