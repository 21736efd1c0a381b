/* SPDX-License-Identifier: MIT */
/* fuzz_queue.c - a queue's bytes are shared with every process that opens
 * it, so none of them may be trusted. Two halves:
 *  1. pshm__queue_validate over the raw input (any alignment): never
 *     crashes, never reads past the input;
 *  2. if it accepts the header, the input is drained as a detached consumer
 *     (every mode), which reads every payload byte it is handed: no length
 *     or position from the ring may take it outside the ring, and no loop
 *     may run away; then drained again, in batches (peekmany). Inputs
 *     are copied into exact-size buffers so ASan sees any over-read. */
#include "queue_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qgeom g;
    int r = pshm__queue_validate(data, size, &g);

    if (r != 0 || size > ((size_t)1 << 24))
        return 0;
    if (g.total_size > size || g.ring_off + g.ring_size != g.total_size)
        abort(); /* accepted a geometry that does not fit */
    void *m = NULL;
    if (posix_memalign(&m, 64, size) != 0)
        return 0;
    memcpy(m, data, size);
    long n = pshm__queue_fuzz_drain(m, size, 4096);
    if (n > 4096)
        abort();
    /* again from the same bytes, in batches (queue_many.c): a batch size
     * from the input's last byte */
    memcpy(m, data, size);
    n = pshm__queue_fuzz_drain_batch(m, size, 4096, 1 + data[size - 1] % 64);
    if (n > 4096)
        abort();
    free(m);
    return 0;
}
