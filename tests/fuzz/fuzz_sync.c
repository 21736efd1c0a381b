/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sync.c - the parsers of shared synchronisation bytes: a named
 * object's block (header + object) and bare embedded objects, as
 * pshm_sync_stat_mem, pshm_sync_describe and every pshm_<kind>_attach read
 * them. Whatever the bytes, they must return an error or a description,
 * never crash or read out of bounds. (Operations are not fuzzed: they hand
 * the bytes of a valid-looking pthread_mutex_t to glibc.)
 */
#include <stdint.h>
#include <string.h>

#include "pshm.h"

#define CAP (64 + PSHM_BARRIER_SIZE(PSHM_BARRIER_MAX))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint64_t buf[CAP / 8];
    pshm_sync_info in;
    char desc[256];
    void *o;

    if (size > sizeof buf)
        size = sizeof buf;
    memset(buf, 0, sizeof buf);
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
    return 0;
}
