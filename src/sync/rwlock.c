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
    if (!out || !pshm__sync_mem_ok(mem, size, PSHM_RWLOCK_SIZE))
        return -EINVAL;
    memset(rw, 0, sizeof *rw);
    r = pshm__rm_init(rw_gate(rw));
    for (int i = 0; r == 0 && i < PSHM_RWLOCK_READERS; i++)
        r = pshm__rm_init(rw_slot(rw, i));
    if (r != 0)
        return r;
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
 * Take reader slot i (try: without blocking). A slot whose holder died comes
 * back from glibc as EOWNERDEAD: it is ours now; made consistent at once
 * (the slot protects no data), and reported if a reader held it. Records
 * `holder` (0 for a writer). Returns an errno value.
 */
static int slot_take(pshm_rwlock *rw, int i, int try, const struct timespec *deadline,
                     uint64_t holder, int *told)
{
    int r = pshm__rm_lock(rw_slot(rw, i), try, deadline);

    if (r == EOWNERDEAD) {
        if (LOADR(&rw->slots[i].s.holder) != 0)
            *told |= RW_TOLD_READER;
        r = pshm__rm_consistent(rw_slot(rw, i));
        if (r != 0) {
            pshm__rm_unlock(rw_slot(rw, i));
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
    pshm__rm_unlock(rw_slot(rw, i));
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
    return pshm__rm_consistent(rw_gate(rw));
}

static int gate_lock(pshm_rwlock *rw, int try, const struct timespec *deadline, int *told)
{
    int r = pshm__rm_trylock(rw_gate(rw));

    if (r == EBUSY && !try) {
        INC(&rw->head.h.waiters);
        r = pshm__rm_lock(rw_gate(rw), 0, deadline);
        DEC(&rw->head.h.waiters);
    }
    if (r == EOWNERDEAD) {
        r = rw_recover(rw, told);
        if (r != 0)
            pshm__rm_unlock(rw_gate(rw));
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
            return pshm__sync_lock_code(-2 - i);
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
            return pshm__sync_lock_code(r);
        i = slot_any(rw, start, me, &told);
        pshm__rm_unlock(rw_gate(rw));
        if (i >= 0)
            return rw_result(rw, told);
        if (i <= -2)
            return pshm__sync_lock_code(-2 - i);
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
            return pshm__sync_lock_code(r);
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
        return pshm__sync_lock_code(r);
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
            pshm__rm_unlock(rw_gate(rw));
            return pshm__sync_lock_code(r);
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
        pshm__rm_unlock(rw_gate(rw));
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
    pshm__rm_unlock(rw_gate(rw));
    (void)pthread_mutex_destroy(rw_gate(rw));
    return 0;
}
