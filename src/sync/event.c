/* SPDX-License-Identifier: MIT */
/*
 * event.c - the event, manual or auto reset.
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
    if (!out || (flags & ~(PSHM_EVENT_MANUAL | PSHM_EVENT_SET)) || !pshm__sync_mem_ok(mem, size, PSHM_EVENT_SIZE))
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
    int r = pshm__sync_attach_check(mem, size, PSHM_EVENT_SIZE, PSHM_SYNC_EVENT, out != NULL);

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
        r = pshm__sync_wait_slice(&e->state, 0, deadline);
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
