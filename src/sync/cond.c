/* SPDX-License-Identifier: MIT */
/*
 * cond.c - the condition variable: a sequence word, no pthread_cond_t.
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

/* ---------------------------------------------------------------- cond */

int pshm_cond_init(void *mem, size_t size, pshm_cond **out)
{
    pshm_cond *c = mem;

    if (out)
        *out = NULL;
    if (!out || !pshm__sync_mem_ok(mem, size, PSHM_COND_SIZE))
        return -EINVAL;
    memset(c, 0, sizeof *c);
    STORE(&c->id, SYNC_ID(PSHM_SYNC_COND));
    *out = c;
    return 0;
}

int pshm_cond_attach(void *mem, size_t size, pshm_cond **out)
{
    int r = pshm__sync_attach_check(mem, size, PSHM_COND_SIZE, PSHM_SYNC_COND, out != NULL);

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
        r = pshm__sync_wait_slice(&c->seq, seq, deadline);
        if (LOAD(&c->seq) != seq) {
            r = 0;
            break;
        }
        if (r < 0)
            break;
    }
    DEC(&c->waiters);
    rl = pshm_mutex_lock(m);
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
