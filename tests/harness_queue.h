/* SPDX-License-Identifier: MIT */
/*
 * harness_queue.h - test helpers that need the queue's internal layout
 * (src/queue_internal.h), for the tests that scribble on a copy of a queue
 * block (tests/test_queue.c, tests/test_queue_many.c).
 */
#ifndef PSHM_TEST_HARNESS_QUEUE_H
#define PSHM_TEST_HARNESS_QUEUE_H

#include "harness.h"
#include "queue_internal.h"

/* Copy the queue block at src (size bytes, geometry g) into m, then flip
 * 1 + round % 8 bits of the copy's ring at places drawn from the
 * generator *seed (advanced once a bit): the same seed and rounds give the
 * same damage. */
static inline void th_queue_scribble(void *m, const void *src, size_t size, const qgeom *g,
                                     uint64_t *seed, int round)
{
    unsigned char *ring = (unsigned char *)m + g->ring_off;

    memcpy(m, src, size);
    for (int k = 0; k < 1 + round % 8; k++) {
        *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
        ring[(*seed >> 33) % g->ring_size] ^= (unsigned char)(1u << (*seed >> 61));
    }
}

#endif
