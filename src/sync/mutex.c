/* SPDX-License-Identifier: MIT */
/*
 * mutex.c - the robust mutex (include/pshm.h, "Mutex").
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

/* --------------------------------------------------------------- mutex */

int pshm_mutex_init(void *mem, size_t size, pshm_mutex **out)
{
    pshm_mutex *m = mem;
    int r;

    if (out)
        *out = NULL;
    if (!out || !pshm__sync_mem_ok(mem, size, PSHM_MUTEX_SIZE))
        return -EINVAL;
    memset(m, 0, sizeof *m);
    r = pshm__rm_init(&m->pm);
    if (r != 0)
        return r;
    STORE(&m->id, SYNC_ID(PSHM_SYNC_MUTEX));
    *out = m;
    return 0;
}

int pshm_mutex_attach(void *mem, size_t size, pshm_mutex **out)
{
    int r = pshm__sync_attach_check(mem, size, PSHM_MUTEX_SIZE, PSHM_SYNC_MUTEX, out != NULL);

    if (out)
        *out = r ? NULL : mem;
    return r;
}

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
    return pshm__sync_lock_code(r);
}

/* Everything but the uncontended success: checks, trylock's odd results,
 * blocking. r is what a first trylock returned, or -1 if none was made. */
static __attribute__((noinline)) int mutex_lock_slow(pshm_mutex *m, int r, int try,
                                                     const struct timespec *deadline)
{
    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    if (r < 0)
        r = pshm__rm_trylock(&m->pm);
    if (r == EBUSY && !try) {
        INC(&m->waiters);
        r = pshm__rm_lock(&m->pm, 0, deadline);
        DEC(&m->waiters);
    }
    return mutex_took(m, r);
}

/* The uncontended lock is the one path that must cost next to nothing on
 * top of glibc's: one compare for the tag, trylock, one store. */
static inline int mutex_lock_fast(pshm_mutex *m, int try)
{
    if (LIKELY(m && LOADR(&m->id) == SYNC_ID(PSHM_SYNC_MUTEX))) {
        int r = pshm__rm_trylock(&m->pm);
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
    r = pshm__rm_consistent(&m->pm);
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
    r = pshm__rm_trylock(&m->pm);
    if (r == EBUSY || r == EDEADLK)
        return -EBUSY;
    if (r == 0 || r == EOWNERDEAD) {
        (void)pshm__rm_consistent(&m->pm);
        pshm__rm_unlock(&m->pm);
    }
    STORE(&m->id, PSHM__SYNC_DEAD_ID);
    (void)pthread_mutex_destroy(&m->pm);
    return 0;
}
