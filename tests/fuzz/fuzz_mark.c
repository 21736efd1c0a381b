/* SPDX-License-Identifier: MIT */
/* fuzz_mark.c - the lifetime record parser (an xattr anyone with write
 * access to a block can set): never crashes, never reads past the input,
 * and accepts exactly what it would write itself (round trip). */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pshm_lifetime lt;
    long pid;
    uint64_t start;
    /* copy into an exact-size heap buffer so ASan sees any over-read */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (pshm__mark_parse(buf, size, &lt, &pid, &start) == 0) {
        char again[128];
        int n = snprintf(again, sizeof again, "pshm1 %s %ld %" PRIu64, pshm_lifetime_name(lt),
                         pid, start);
        if (n < 0 || (size_t)n != size || memcmp(again, buf, size) != 0)
            abort(); /* accepted something it would not write */
    }
    free(buf);
    return 0;
}
