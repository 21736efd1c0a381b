/* SPDX-License-Identifier: MIT */
/*
 * sync/lock.c - pshm's robust lock word, under the mutex, the read-write
 * lock's gate and reader slots, and the undo semaphore's bookkeeping.
 *
 * What is in shared memory (pshm__lock, sync_internal.h): a 32-bit futex
 * word and a 64-bit owner record. Nothing else: no pointer, no list link,
 * no address, so a peer that rewrites these bytes can steer no write of
 * ours. The word is
 *     0                           free
 *     tid | PSHM__LK_WAITERS?     held by thread tid (1..PSHM__LK_TID_MAX);
 *                                 WAITERS: someone may sleep on the word
 *     PSHM__LK_NOTREC             not recoverable (owner-died never repaired)
 * and any other value is corrupt: the caller gets -PSHM_EBADFORMAT. The
 * owner record is the holder's identity (liveness.h: tid and kernel start
 * time), written just after the word is taken, with OWNER_MARK flipped in
 * while an owner-died has not been made consistent.
 *
 * How death is witnessed: the kernel says whether the holder still lives.
 * A waiter sleeps on the word with a timeout (its slice starts at
 * LK_SLICE0_MS and doubles up to PSHM_SYNC_RECHECK_MS); when a slice ends
 * with the word unchanged, it asks the kernel about the holder (/proc: the
 * tid, its start time, zombie or not). A dead holder's word is taken over
 * by compare-and-swap from exactly the value seen, so one survivor wins and
 * gets -PSHM_EOWNERDEAD. A failed trylock asks once before saying -EBUSY,
 * so a lock whose holder died is reported to trylock too. Between taking
 * the word and writing the record, the record names someone else: then only
 * the tid is asked about (does any live task have it?), which a reused tid
 * could fool for as long as that task lives - the price of not having the
 * kernel's robust list, whose links would live in the block. The
 * uncontended lock and unlock are one compare-and-swap (and one exchange)
 * each, plus the record: the kernel is asked only on the contended path.
 *
 * The same slices give back a wake-up lost to a waiter that died after an
 * unlock woke it: the others look again within their slice.
 */
#include "sync_internal.h"

#include "../fault.h"
#include "../os/futex.h"
#include "../os/liveness.h"

#include <errno.h>
#include <signal.h>

/* A waiter's slice: 2 ms at first, doubling to 20 ms (well inside
 * PSHM_SYNC_RECHECK_MS): a dead holder is noticed within about 20 ms, for
 * the price of one /proc read per waiter every 20 ms of a long wait. */
#define LK_SLICE0_MS 2
#define LK_SLICE_MAX_MS 20

/* 1 if the word is a value the lock can hold. */
static int word_ok(uint32_t w)
{
    uint32_t tid = w & ~PSHM__LK_WAITERS;

    return w == PSHM__LK_NOTREC || (tid <= PSHM__LK_TID_MAX);
}

/*
 * Is the holder of word w dead? 1 dead, 0 alive or unknown (unknown counts
 * as alive: waiting longer is safer than breaking a live holder's lock).
 */
static int holder_dead(pshm__lock *l, uint32_t w)
{
    uint32_t tid = w & ~PSHM__LK_WAITERS;
    uint64_t owner = LOAD(&l->owner);

    if (tid == 0 || tid > PSHM__LK_TID_MAX)
        return 0;
    if (PSHM__ID_PID(owner) == tid) {
        /* The record may carry OWNER_MARK (in its start-time half). */
        int a = pshm__id_alive(owner);
        if (a == 0)
            a = pshm__id_alive(owner ^ OWNER_MARK);
        return a == 0;
    }
    /* No record for this tid (yet): ask about the tid alone. */
    return pshm__id_alive((uint64_t)tid << 32) == 0;
}

/* Take over the word w of a dead holder: -PSHM_EOWNERDEAD if we won, 1 if
 * the word moved meanwhile (look again). */
static int take_over(pshm__lock *l, uint32_t w, uint64_t me)
{
    if (!CAS(&l->word, &w, PSHM__ID_PID(me) | PSHM__LK_WAITERS))
        return 1;
    STORER(&l->owner, me ^ OWNER_MARK);
    return -PSHM_EOWNERDEAD;
}

static int mine(const pshm__lock *l, uint32_t w, uint64_t me)
{
    uint64_t o = LOADR(&l->owner);

    return (w & ~PSHM__LK_WAITERS) == PSHM__ID_PID(me) && (o == me || o == (me ^ OWNER_MARK));
}

int pshm__lock_acquire_slow(pshm__lock *l, int try, const struct timespec *deadline)
{
    uint64_t me = pshm__self_thread();
    uint32_t tid = PSHM__ID_PID(me), waited = 0;
    long slice_ms = LK_SLICE0_MS;
    int r;

    if (tid == 0 || tid > PSHM__LK_TID_MAX)
        return -EOVERFLOW; /* a tid the word cannot hold (not on Linux) */
    for (;;) {
        uint32_t w = LOAD(&l->word);
        if ((w & ~PSHM__LK_WAITERS) == 0) {
            /* Free. After a wait, keep WAITERS: others may still sleep. */
            if (CAS(&l->word, &w, tid | waited | (w & PSHM__LK_WAITERS))) {
                PSHM__FAULT("sync.lock.taken");
                STORER(&l->owner, me);
                return 0;
            }
            continue;
        }
        if (w == PSHM__LK_NOTREC)
            return -PSHM_ENOTRECOVERABLE;
        if (!word_ok(w))
            return -PSHM_EBADFORMAT;
        if (mine(l, w, me))
            return try ? -EBUSY : -EDEADLK;
        if (try) {
            if (holder_dead(l, w) && (r = take_over(l, w, me)) <= 0)
                return r;
            return -EBUSY;
        }
        if (!(w & PSHM__LK_WAITERS)) {
            if (!CAS(&l->word, &w, w | PSHM__LK_WAITERS))
                continue;
            w |= PSHM__LK_WAITERS;
        }
        /* Before the first sleep, one cheap question: is there still a task
         * with that tid at all (a holder killed and reaped is not)? */
        if (!waited && kill((pid_t)(w & ~PSHM__LK_WAITERS), 0) != 0 && errno == ESRCH &&
            holder_dead(l, w) && (r = take_over(l, w, me)) <= 0)
            return r;
        waited = PSHM__LK_WAITERS;
        struct timespec now, until;
        mono_now(&now);
        int last = 0;
        until = ts_plus_ms(now, slice_ms);
        if (deadline && !ts_lt(&until, deadline)) {
            until = *deadline;
            last = 1;
        }
        r = pshm__futex_wait(&l->word, w, &until);
        if (r == -ETIMEDOUT) {
            /* The word did not move for a whole slice (or up to the
             * deadline): is its holder alive? */
            if (holder_dead(l, w) && (r = take_over(l, w, me)) <= 0)
                return r;
            if (last)
                return -ETIMEDOUT;
            if (slice_ms < LK_SLICE_MAX_MS)
                slice_ms = slice_ms * 2 > LK_SLICE_MAX_MS ? LK_SLICE_MAX_MS : slice_ms * 2;
        } else if (r != 0 && r != -EAGAIN && r != -EINTR) {
            return r; /* the kernel refused the wait: a bug, do not spin */
        }
    }
}

int pshm__lock_release_slow(pshm__lock *l)
{
    uint64_t me = pshm__self_thread(), owner = LOADR(&l->owner);
    uint32_t w = LOAD(&l->word), old;

    if (w == PSHM__LK_NOTREC || (w & ~PSHM__LK_WAITERS) != PSHM__ID_PID(me) || me == 0)
        return -EPERM;
    if (owner != me && owner != (me ^ OWNER_MARK)) {
        /* Our tid in the word but another record: either a thread of ours
         * with the same tid that died (then it was never ours) or a peer
         * rewrote the record. Ours only if no live task is the record. */
        if (owner != 0 && pshm__id_alive(owner) == 1)
            return -EPERM;
    }
    STORER(&l->owner, 0);
    if (owner == (me ^ OWNER_MARK)) {
        /* Unlocked after owner-died without consistent: as POSIX, the lock
         * is unusable from now on; wake everyone to tell them. */
        old = __atomic_exchange_n(&l->word, PSHM__LK_NOTREC, __ATOMIC_RELEASE);
        wake(&l->word, WAKE_ALL);
        return 1;
    }
    old = __atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE);
    if (old & PSHM__LK_WAITERS)
        wake(&l->word, 1);
    return 0;
}

int pshm__lock_consistent(pshm__lock *l)
{
    uint64_t me = pshm__self_thread();
    uint32_t w = LOAD(&l->word);

    if ((w & ~PSHM__LK_WAITERS) != PSHM__ID_PID(me) || w == PSHM__LK_NOTREC)
        return -EPERM;
    if (LOADR(&l->owner) == me)
        return -EINVAL;
    if (LOADR(&l->owner) != (me ^ OWNER_MARK))
        return -EPERM;
    STORER(&l->owner, me);
    return 0;
}

int pshm__lock_held_here(const pshm__lock *l)
{
    uint32_t w = LOADR(&l->word);
    uint64_t o = LOADR(&l->owner);

    if (w == 0 || w == PSHM__LK_NOTREC || !word_ok(w))
        return 0;
    if (PSHM__ID_PID(o) != (w & ~PSHM__LK_WAITERS))
        return 0;
    return pshm__id_mine(o) == 1 || pshm__id_mine(o ^ OWNER_MARK) == 1;
}
