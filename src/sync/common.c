/* SPDX-License-Identifier: MIT */
/*
 * sync/common.c - what the primitives share (the ABI word, id checks, the
 * waiting slice, attach checks). The primitives are one per file: mutex.c,
 * cond.c, sem.c, rwlock.c, barrier.c, event.c; lock.c is the robust lock
 * under the mutex, the rwlock and the undo semaphore; named.c makes, opens
 * and inspects named objects. The contract is in include/pshm.h; the
 * layouts in sync/sync_internal.h.
 *
 * Why each primitive is built the way it is
 * -----------------------------------------
 * Everything that can be *held* needs a witness of its holder's death that
 * does not depend on the holder running any code, and no pointer or
 * process-local datum may live in the shared bytes (a peer could rewrite
 * it and steer our writes). So every hold records an identity (tid or pid
 * + the kernel's start time for it) and whoever waits asks the kernel
 * (/proc) whether that task still lives: a reused pid has another start
 * time, a zombie counts as dead.
 *   mutex    = one pshm__lock (lock.c): a futex word holding the holder's
 *              tid, and its identity beside it;
 *   rwlock   = a gate lock held by the writer, and one lock per reader
 *              slot: every hold, read or write, is a lock held by the
 *              holding thread;
 *   sem undo = a lock around the value and the per-process records, with
 *              an intent record so a change cut short by death is rolled
 *              back by whoever gets owner-dead;
 *   barrier  = an identity per participant (one that has not arrived yet
 *              holds nothing a lock could stand for).
 * A waiter asks the kernel only after a slice of sleep without news (a few
 * ms at first, growing to PSHM_SYNC_RECHECK_MS), so the uncontended paths
 * never do.
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
#include <time.h>

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
