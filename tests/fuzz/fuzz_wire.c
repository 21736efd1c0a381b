/* SPDX-License-Identifier: MIT */
/* fuzz_wire.c - the MPI bridge's batch checks (src/mpi/wire.h), walked the
 * way a destination endpoint walks a batch that arrived: never reads past
 * the bytes received, never hands out a message longer than max_msg, and
 * accepts a batch only when its entries end exactly at its end. The input:
 * 4 bytes of max_msg, 8 of the expected sequence number, then the batch. */
#include "mpi/wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t max_msg;
    uint64_t expect, len, sum = 0;
    struct wire w;
    int big;

    if (size < 12)
        return 0;
    memcpy(&max_msg, data, 4);
    memcpy(&expect, data + 4, 8);
    max_msg = max_msg % (1u << 20) + 1; /* a queue's max_msg: 1 .. 1 MiB here */
    size -= 12;
    /* an exact-size heap copy, as MPI_Irecv leaves it: ASan sees any over-read */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 12, size);
    if (wire_head(buf, size, expect, &w) == WIRE_OK) {
        size_t off = sizeof w;
        uint32_t i;
        for (i = 0; i < w.count; i++) {
            if (wire_entry(buf, size, off, max_msg, &len, &big) != WIRE_OK)
                break;
            if (len > max_msg)
                abort(); /* a message the queue cannot take */
            if (!big)
                for (uint64_t k = 0; k < len; k++) /* what the commit copies */
                    sum += (unsigned char)buf[off + 8 + k];
            off = wire_next(off, len, big);
            if (off > size)
                abort(); /* walked past the batch */
        }
        /* accepted: every entry read and the batch ends where they do */
        if (i == w.count && off == size && sum == (uint64_t)-1)
            abort(); /* (keeps sum alive) */
    }
    free(buf);
    return 0;
}
