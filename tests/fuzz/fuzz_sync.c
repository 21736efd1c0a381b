/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sync.c - the parsers of shared synchronisation bytes: a named
 * object's block (header + object) and bare embedded objects, as
 * pshm_sync_stat_mem, pshm_sync_describe and every pshm_<kind>_attach read
 * them. Whatever the bytes, they must return an error or a description,
 * never crash or read out of bounds. The input is copied to a heap buffer
 * of exactly its size, so a read past its end is one ASan sees. (The lock
 * words under the operations have their own target: fuzz_sync_lock.c.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pshm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pshm_sync_info in;
    char desc[256];
    void *o;
    /* malloc's alignment (16) is what the objects need (8) */
    uint64_t *buf = malloc(size ? size : 1);

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    pshm_sync_info_init(&in);
    if (pshm_sync_stat_mem(buf, size, &in) == 0) {
        (void)pshm_sync_describe(&in, desc, sizeof desc, NULL);
        (void)pshm_sync_describe(&in, desc, 5, NULL); /* truncation */
        (void)pshm_sync_kind_name(in.kind);
    }
    /* a bare object at the start, and one after a named header */
    for (size_t off = 0; off <= 64 && off < size; off += 64) {
        void *p = (char *)buf + off;
        size_t n = size - off;
        (void)pshm_mutex_attach(p, n, (pshm_mutex **)&o);
        (void)pshm_cond_attach(p, n, (pshm_cond **)&o);
        (void)pshm_sem_attach(p, n, (pshm_sem **)&o);
        (void)pshm_rwlock_attach(p, n, (pshm_rwlock **)&o);
        (void)pshm_barrier_attach(p, n, (pshm_barrier **)&o);
        (void)pshm_event_attach(p, n, (pshm_event **)&o);
        (void)pshm_sync_stat_mem(p, n, &in);
    }
    free(buf);
    return 0;
}
