/* SPDX-License-Identifier: MIT */
/*
 * barrier.c - the barrier: one futex word per phase, members checked for death.
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
    if (!out || count == 0 || count > PSHM_BARRIER_MAX || !pshm__sync_mem_ok(mem, size, PSHM_BARRIER_SIZE(count)))
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
    int r = pshm__sync_attach_check(mem, size, PSHM_BARRIER_SIZE(0), PSHM_SYNC_BARRIER, out != NULL);

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
        r = pshm__sync_wait_slice(&b->word, w, deadline);
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
