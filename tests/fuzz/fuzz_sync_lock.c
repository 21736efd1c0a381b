// SPDX-License-Identifier: MIT
/*
 * fuzz_sync_lock.c - the state words of pshm's robust lock (src/sync/lock.c),
 * as a peer could leave them: the input gives a mutex's lock word, owner
 * record, waiter count and state (the object's id is made valid, so every
 * call reaches the lock), and the undo semaphore's lock and intent record.
 * Every operation that cannot wait - trylock, timedlock with a deadline
 * already past (one try), unlock, consistent, destroy, sem trywait and
 * getvalue, stat and describe - must return 0 or an error code: never
 * crash, never write outside the object, never wait.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pshm.h"
#include "sync/sync_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void mutex_ops(const uint8_t *data, size_t size)
{
    struct pshm_mutex *m = aligned_alloc(64, PSHM_MUTEX_SIZE);
    struct timespec past = {0, 0};
    pshm_sync_info in;
    pshm_mutex *h;
    char desc[160];
    int r;

    if (!m)
        return;
    memset(m, 0, PSHM_MUTEX_SIZE);
    if (pshm_mutex_init(m, PSHM_MUTEX_SIZE, &h) != 0) {
        free(m);
        return;
    }
    /* everything after the id, from the input */
    memcpy((char *)m + 8, data, size < PSHM_MUTEX_SIZE - 8 ? size : PSHM_MUTEX_SIZE - 8);
    pshm_sync_info_init(&in);
    if (pshm_sync_stat_mem(m, PSHM_MUTEX_SIZE, &in) == 0)
        (void)pshm_sync_describe(&in, desc, sizeof desc, NULL);
    r = pshm_mutex_trylock(h);
    if (r == -PSHM_EOWNERDEAD)
        (void)pshm_mutex_consistent(h);
    if (r == 0 || r == -PSHM_EOWNERDEAD)
        (void)pshm_mutex_unlock(h);
    r = pshm_mutex_timedlock(h, &past);
    if (r == 0 || r == -PSHM_EOWNERDEAD)
        (void)pshm_mutex_unlock(h); /* without consistent: not recoverable */
    (void)pshm_mutex_unlock(h);
    (void)pshm_mutex_consistent(h);
    (void)pshm_mutex_destroy(h);
    free(m);
}

static void sem_ops(const uint8_t *data, size_t size)
{
    char *mem = aligned_alloc(64, PSHM_SEM_UNDO_SIZE);
    pshm_sem *s;
    unsigned v;

    if (!mem)
        return;
    if (pshm_sem_init(mem, PSHM_SEM_UNDO_SIZE, 1, PSHM_SEM_UNDO, &s) != 0) {
        free(mem);
        return;
    }
    /* the undo lock (one unit) and the intent record after it */
    size_t n = PSHM__SYNC_UNIT + 64;
    memcpy(mem + PSHM_SEM_SIZE, data, size < n ? size : n);
    if (pshm_sem_trywait(s) == 0)
        (void)pshm_sem_post(s);
    (void)pshm_sem_getvalue(s, &v);
    free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* the first byte chooses the object */
    if (data[0] & 1)
        sem_ops(data + 1, size - 1);
    else
        mutex_ops(data + 1, size - 1);
    return 0;
}
