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

    if (out)
        *out = NULL;
    if (!out || !pshm__sync_mem_ok(mem, size, PSHM_MUTEX_SIZE))
        return -EINVAL;
    memset(m, 0, sizeof *m);
    pshm__lock_init(&m->lk);
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

/* Everything but the uncontended success: checks, waiting, owner death.
 * The state word only mirrors what the lock word says, for `pshm ls`. */
static __attribute__((noinline)) int mutex_lock_slow(pshm_mutex *m, int try,
                                                     const struct timespec *deadline)
{
    int r;

    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    if (try)
        r = pshm__lock_acquire_slow(&m->lk, 1, NULL);
    else {
        INC(&m->waiters);
        r = pshm__lock_acquire_slow(&m->lk, 0, deadline);
        DEC(&m->waiters);
    }
    if (r == -PSHM_EOWNERDEAD)
        STORER(&m->state, (uint32_t)PSHM__MS_INCONSISTENT);
    else if (r == -PSHM_ENOTRECOVERABLE)
        STORER(&m->state, (uint32_t)PSHM__MS_NOTRECOVERABLE);
    return r;
}

/* The uncontended lock is the one path that must cost next to nothing:
 * one compare for the tag, one compare-and-swap, one store. */
static inline int mutex_lock_fast(pshm_mutex *m, int try, const struct timespec *deadline)
{
    if (LIKELY(m && LOADR(&m->id) == SYNC_ID(PSHM_SYNC_MUTEX))) {
        uint64_t me = pshm__self_thread();
        uint32_t z = 0;
        if (LIKELY(PSHM__ID_PID(me) <= PSHM__LK_TID_MAX && CAS(&m->lk.word, &z, PSHM__ID_PID(me)))) {
            PSHM__FAULT("sync.lock.taken"); /* the word is ours, the record not yet */
            STORER(&m->lk.owner, me);
            return 0;
        }
    }
    return mutex_lock_slow(m, try, deadline);
}

int pshm_mutex_lock(pshm_mutex *m)
{
    return mutex_lock_fast(m, 0, NULL);
}

int pshm_mutex_trylock(pshm_mutex *m)
{
    return mutex_lock_fast(m, 1, NULL);
}

int pshm_mutex_timedlock(pshm_mutex *m, const struct timespec *deadline)
{
    if (deadline_bad(deadline))
        return -EINVAL;
    return mutex_lock_fast(m, 0, deadline);
}

static __attribute__((noinline)) int mutex_unlock_slow(pshm_mutex *m)
{
    int r;

    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    r = pshm__lock_release_slow(&m->lk);
    if (r == 1) {
        /* Unlocked after EOWNERDEAD without consistent: not recoverable. */
        STORER(&m->state, (uint32_t)PSHM__MS_NOTRECOVERABLE);
        r = 0;
    }
    return r;
}

int pshm_mutex_unlock(pshm_mutex *m)
{
    if (LIKELY(m && LOADR(&m->id) == SYNC_ID(PSHM_SYNC_MUTEX) &&
               LOADR(&m->lk.owner) == pshm__self_thread())) {
        STORER(&m->lk.owner, 0);
        if (UNLIKELY(__atomic_exchange_n(&m->lk.word, 0, __ATOMIC_RELEASE) & PSHM__LK_WAITERS))
            wake(&m->lk.word, 1);
        return 0;
    }
    return mutex_unlock_slow(m);
}

int pshm_mutex_consistent(pshm_mutex *m)
{
    int r;

    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    r = pshm__lock_consistent(&m->lk);
    if (r == 0)
        STORER(&m->state, (uint32_t)PSHM__MS_OK);
    return r;
}

int pshm_mutex_destroy(pshm_mutex *m)
{
    int r;

    CHECK_OBJ(m, m->id, PSHM_SYNC_MUTEX);
    r = pshm__lock_acquire(&m->lk, 1, NULL);
    if (r == -EBUSY || r == -EDEADLK)
        return -EBUSY;
    if (r == 0 || r == -PSHM_EOWNERDEAD) {
        (void)pshm__lock_consistent(&m->lk);
        (void)pshm__lock_release(&m->lk);
    }
    STORE(&m->id, PSHM__SYNC_DEAD_ID);
    return 0;
}
