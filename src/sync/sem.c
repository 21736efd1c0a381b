/* SPDX-License-Identifier: MIT */
/*
 * sem.c - the counting semaphore, plain (lock-free) and undo (records under a lock).
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

    if (out)
        *out = NULL;
    if (!out || (flags & ~PSHM_SEM_UNDO) || value > PSHM_SEM_VALUE_MAX ||
        !pshm__sync_mem_ok(mem, size, (flags & PSHM_SEM_UNDO) ? PSHM_SEM_UNDO_SIZE : PSHM_SEM_SIZE))
        return -EINVAL;
    memset(s, 0, sizeof *s);
    s->value = value;
    s->flags = flags;
    if (flags & PSHM_SEM_UNDO) {
        pshm__sem_undo *u = sem_undo(s);
        memset(u, 0, sizeof *u);
        pshm__lock_init(&u->lock.lk);
        s->nslots = PSHM_SEM_UNDO_SLOTS;
    }
    STORE(&s->id, SYNC_ID(PSHM_SYNC_SEM));
    *out = s;
    return 0;
}

int pshm_sem_attach(void *mem, size_t size, pshm_sem **out)
{
    pshm_sem *s = mem;
    int r = pshm__sync_attach_check(mem, size, PSHM_SEM_SIZE, PSHM_SYNC_SEM, out != NULL);

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
        r = pshm__sync_wait_slice(&s->value, 0, deadline);
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
    PSHM__FAULT("sync.sem.undo.changing"); /* the intent is written, the change not yet whole */
    STORES(&s->value, value);
    if (slot < PSHM_SEM_UNDO_SLOTS) {
        STORES(&u->slots[slot].who, who);
        STORES(&u->slots[slot].held, held);
    }
    STORES(&u->intent.valid, 0);
}

/* How long a post waits for the undo lock: it is held for a few stores by
 * a live holder, so only a stopped or misbehaving peer makes post wait. */
#define UNDO_POST_WAIT_MS 1000

/* Take the undo lock (try: without waiting; else until deadline, NULL:
 * none), rolling back what a dead holder left half done. */
static int undo_lock(pshm_sem *s, pshm__sem_undo *u, int try, const struct timespec *deadline)
{
    int r = pshm__lock_acquire(&u->lock.lk, try, deadline);

    if (r == -PSHM_EOWNERDEAD) {
        undo_rollback(s, u);
        r = pshm__lock_consistent(&u->lock.lk);
        if (r != 0)
            (void)pshm__lock_release(&u->lock.lk);
    }
    return r;
}

static void undo_unlock(pshm__sem_undo *u)
{
    (void)pshm__lock_release(&u->lock.lk);
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
        r = undo_lock(s, u, try, deadline);
        if (r == -EBUSY && try)
            return -EAGAIN; /* a try never waits, not even for the lock */
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
            undo_unlock(u);
            if (back > 1 && LOADS(&s->waiters))
                wake(&s->value, (int)(back > WAKE_ALL ? WAKE_ALL : back));
            return i >= 0 ? 0 : -ENOSPC;
        }
        if (try) {
            undo_unlock(u);
            return -EAGAIN;
        }
        INC(&s->waiters);
        undo_unlock(u);
        r = pshm__sync_wait_slice(&s->value, 0, deadline);
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

    struct timespec deadline;
    mono_now(&deadline);
    deadline = ts_plus_ms(deadline, UNDO_POST_WAIT_MS);
    r = undo_lock(s, u, 0, &deadline);
    if (r != 0)
        return r;
    v = LOADR(&s->value);
    if (v >= PSHM_SEM_VALUE_MAX) {
        undo_unlock(u);
        return -EOVERFLOW;
    }
    i = undo_find(u, me, 0);
    if (i >= 0 && LOADR(&u->slots[i].held) > 0)
        undo_apply(s, u, (uint32_t)i, v + 1, me, LOADR(&u->slots[i].held) - 1);
    else
        undo_apply(s, u, NO_SLOT, v + 1, 0, 0);
    undo_unlock(u);
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
