/* SPDX-License-Identifier: MIT */
/*
 * rwlock.c - the read-write lock: a gate for writers, a slot per reader.
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

/* ------------------------------------------------------- read-write lock */

/*
 * Holds, and who witnesses them:
 *   gate          a pshm__lock; a writer holds it from wrlock to unlock, a
 *                 reader only while it passes a waiting or active writer.
 *   slots[i].lk   a pshm__lock; a reader holds one while it reads, and
 *                 records itself in slots[i].holder once it has it.
 *   wflag         1 from the moment a writer has the gate until it lets go.
 * A reader takes a free slot, records itself, then (after a full fence)
 * checks wflag. A writer sets wflag, fences, then looks at every slot's
 * holder and waits (by locking the slot) for each that is taken. By the
 * fences, either the reader sees wflag and backs off to the gate, or the
 * writer sees the reader's holder and waits for it. A writer never keeps a
 * slot, so its cost is the gate and a scan, not a lock per slot. The death
 * of a reader while the writer waits on its slot comes back as owner-dead
 * within a slice; the death of a writer leaves the gate owner-dead, found
 * by the next writer or by any reader (wflag sends them all to the gate).
 * wstate is 1 only while the writer actually holds the lock (the readers
 * drained): a writer that died with wstate set may have left the data half
 * written; one that died draining may not.
 *
 * A reader's death is news kept in the lock (rdead), not in the finder's
 * hands: whoever finds a dead reader's slot counts it there, and the next
 * caller that gets the lock - read or write - takes all of it with one
 * -PSHM_EREADERDEAD. So an attempt that finds a dead reader and then fails
 * (a trywrlock that meets a live reader next, a timedwrlock that times
 * out) loses nothing, and one write lock that finds three dead readers
 * reports once.
 */

static pshm__lock *rw_gate(pshm_rwlock *rw)
{
    return &rw->gate.lk;
}

static pshm__lock *rw_slot(pshm_rwlock *rw, int i)
{
    return &rw->slots[i].s.lk;
}

static int rw_start(uint64_t me)
{
    return (int)((PSHM__ID_PID(me) * 2654435761u) % PSHM_RWLOCK_READERS);
}

int pshm_rwlock_init(void *mem, size_t size, pshm_rwlock **out)
{
    pshm_rwlock *rw = mem;

    if (out)
        *out = NULL;
    if (!out || !pshm__sync_mem_ok(mem, size, PSHM_RWLOCK_SIZE))
        return -EINVAL;
    memset(rw, 0, sizeof *rw);
    STORE(&rw->head.h.id, SYNC_ID(PSHM_SYNC_RWLOCK));
    *out = rw;
    return 0;
}

int pshm_rwlock_attach(void *mem, size_t size, pshm_rwlock **out)
{
    int r = pshm__sync_attach_check(mem, size, PSHM_RWLOCK_SIZE, PSHM_SYNC_RWLOCK, out != NULL);

    if (out)
        *out = r ? NULL : mem;
    return r;
}

/*
 * Take reader slot i (try: without blocking). A slot whose holder died
 * comes back owner-dead: it is ours now; made consistent at once (the slot
 * protects no data), and counted in rdead if a reader held it. Records
 * `holder` (0 for a writer). 0 or a negative code.
 */
static int slot_take(pshm_rwlock *rw, int i, int try, const struct timespec *deadline,
                     uint64_t holder)
{
    int r = pshm__lock_acquire(rw_slot(rw, i), try, deadline);

    if (r == -PSHM_EOWNERDEAD) {
        if (LOADR(&rw->slots[i].s.holder) != 0)
            INC(&rw->head.h.rdead);
        r = pshm__lock_consistent(rw_slot(rw, i));
        if (r != 0) {
            (void)pshm__lock_release(rw_slot(rw, i));
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
    (void)pshm__lock_release(rw_slot(rw, i));
}

/*
 * The gate's holder died (we hold it now, owner-dead). If it was a writer
 * holding the lock, mark the lock inconsistent. Release the slots of any
 * readers that died meanwhile, clear wflag (no writer is active while we
 * hold the gate), and make the gate usable.
 */
static int rw_recover(pshm_rwlock *rw)
{
    if (LOAD(&rw->head.h.wstate)) {
        STORE(&rw->head.h.incons, 1);
        STORE(&rw->head.h.wthread, 0);
        STORE(&rw->head.h.wstate, 0);
    }
    for (int i = 0; i < PSHM_RWLOCK_READERS; i++)
        if (slot_take(rw, i, 1, NULL, 0) == 0)
            slot_drop(rw, i);
    STORES(&rw->head.h.wflag, 0);
    return pshm__lock_consistent(rw_gate(rw));
}

static int gate_lock(pshm_rwlock *rw, int try, const struct timespec *deadline)
{
    int r = pshm__lock_acquire(rw_gate(rw), 1, NULL);

    if (r == -EBUSY && !try) {
        INC(&rw->head.h.waiters);
        r = pshm__lock_acquire(rw_gate(rw), 0, deadline);
        DEC(&rw->head.h.waiters);
    }
    if (r == -PSHM_EOWNERDEAD) {
        r = rw_recover(rw);
        if (r != 0)
            (void)pshm__lock_release(rw_gate(rw));
    }
    return r;
}

/* What a caller that got the lock is told: a writer's death first, then
 * the readers' deaths not yet told (taken by exactly one caller). */
static int rw_result(pshm_rwlock *rw)
{
    if (LOAD(&rw->head.h.incons))
        return -PSHM_EOWNERDEAD;
    if (UNLIKELY(LOADR(&rw->head.h.rdead) != 0) &&
        __atomic_exchange_n(&rw->head.h.rdead, 0, __ATOMIC_SEQ_CST) != 0)
        return -PSHM_EREADERDEAD;
    return 0;
}

/* Any free slot, without blocking: its index, -EBUSY (all busy), or
 * another negative code. */
static int slot_any(pshm_rwlock *rw, int start, uint64_t me)
{
    for (int k = 0; k < PSHM_RWLOCK_READERS; k++) {
        int i = (start + k) % PSHM_RWLOCK_READERS;
        int r = slot_take(rw, i, 1, NULL, me);
        if (r == 0)
            return i;
        if (r != -EBUSY) /* trylock of a slot this thread holds says -EBUSY too */
            return r;
    }
    return -EBUSY;
}

static int rw_rdlock(pshm_rwlock *rw, int try, const struct timespec *deadline)
{
    uint64_t me;
    int start, i, r;

    CHECK_OBJ(rw, rw->head.h.id, PSHM_SYNC_RWLOCK);
    me = pshm__self_thread();
    start = rw_start(me);
    /* Fast path: no writer around, take a slot, confirm no writer came. */
    if (LIKELY(LOAD(&rw->head.h.wflag) == 0)) {
        i = slot_any(rw, start, me);
        if (i < 0 && i != -EBUSY)
            return i;
        if (i >= 0) {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (LIKELY(LOADS(&rw->head.h.wflag) == 0))
                return rw_result(rw);
            slot_drop(rw, i); /* a writer is coming: queue behind it */
        }
    }
    if (LOAD(&rw->head.h.wstate) && LOAD(&rw->head.h.wthread) == me)
        return -EDEADLK; /* the gate is ours: a try would say busy */
    for (;;) {
        /* Through the gate: while we hold it, no writer is active. */
        r = gate_lock(rw, try, deadline);
        if (r != 0)
            return r;
        i = slot_any(rw, start, me);
        (void)pshm__lock_release(rw_gate(rw));
        if (i >= 0)
            return rw_result(rw);
        if (i != -EBUSY)
            return i;
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
        r = slot_take(rw, i, 0, deadline, me);
        if (r == -EDEADLK)
            continue;
        if (r != 0)
            return r;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (LOADS(&rw->head.h.wflag) == 0)
            return rw_result(rw);
        slot_drop(rw, i);
    }
}

static int rw_wrlock(pshm_rwlock *rw, int try, const struct timespec *deadline)
{
    uint64_t me;
    int r, i;

    CHECK_OBJ(rw, rw->head.h.id, PSHM_SYNC_RWLOCK);
    me = pshm__self_thread();
    if (LOAD(&rw->head.h.wstate) && LOAD(&rw->head.h.wthread) == me)
        return -EDEADLK;
    /* A reader asking to write would wait for itself (and, holding the
     * gate meanwhile, for readers that wait for the gate). */
    for (i = 0; i < PSHM_RWLOCK_READERS; i++)
        if (LOADR(&rw->slots[i].s.holder) == me)
            return -EDEADLK;
    r = gate_lock(rw, try, deadline);
    if (r != 0)
        return r;
    STORES(&rw->head.h.wflag, 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Wait out every reader that is in: lock its slot (it is free when the
     * reader leaves, or taken over when it died) and let it go again -
     * readers that come now see wflag and queue at the gate. */
    for (i = 0; i < PSHM_RWLOCK_READERS; i++) {
        if (LOADS(&rw->slots[i].s.holder) == 0)
            continue;
        r = slot_take(rw, i, try, deadline, 0);
        if (r == 0) {
            slot_drop(rw, i);
        } else { /* busy (try), timed out, or EDEADLK */
            STORES(&rw->head.h.wflag, 0);
            (void)pshm__lock_release(rw_gate(rw));
            return r;
        }
    }
    STORE(&rw->head.h.wthread, me);
    STORE(&rw->head.h.wstate, 1);
    return rw_result(rw);
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
        (void)pshm__lock_release(rw_gate(rw));
        return 0;
    }
    start = rw_start(me);
    for (int k = 0; k < PSHM_RWLOCK_READERS; k++) {
        int i = (start + k) % PSHM_RWLOCK_READERS;
        if (LOADR(&rw->slots[i].s.holder) == me) {
            STORE(&rw->slots[i].s.holder, 0); /* release: see slot_drop */
            int r = pshm__lock_release(rw_slot(rw, i));
            if (r < 0) {
                STORER(&rw->slots[i].s.holder, me);
                return r;
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
    (void)pshm__lock_release(rw_gate(rw));
    return 0;
}
