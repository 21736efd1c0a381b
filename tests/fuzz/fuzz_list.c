/* SPDX-License-Identifier: MIT */
/*
 * fuzz_list.c - libFuzzer target for the ShareableList parser and item
 * codec (src/list.c): any bytes are either rejected with a layout code or
 * give a list whose every item reads, formats and can be set, without a
 * read or write outside the buffer. Seeds: tests/fuzz/seeds/fuzz_list/.
 */
#include "list_internal.h"

#include <sanitizer/asan_interface.h> /* the fuzz build has ASan: poisoning is real */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pshm__list_layout lay;
    /* 8-aligned (the parser's contract; mappings are page-aligned), rounded
     * up to 8 for aligned_alloc - and the rounding poisoned, so that to
     * AddressSanitizer the buffer is exactly `size` bytes and a read past
     * the end is caught, not read as zeros. */
    size_t alloc = size ? (size + 7) / 8 * 8 : 8;
    unsigned char *buf = aligned_alloc(8, alloc);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    ASAN_POISON_MEMORY_REGION(buf + size, alloc - size);
    int r = pshm__list_parse(buf, size, &lay);
    if (r != 0) {
        check(r <= -PSHM_ELIST_SIZE && r >= -PSHM_ELIST_MISMATCH);
        ASAN_UNPOISON_MEMORY_REGION(buf + size, alloc - size);
        free(buf);
        return 0;
    }
    check(lay.size == size);
    uint64_t n = lay.n < 4096 ? lay.n : 4096;
    for (uint64_t i = 0; i < n; i++) {
        pshm_value v, w;
        pshm_vtype t;
        char f[9];
        size_t cap;
        r = pshm__list_item_get(buf, &lay, i, &v);
        check(r == 0 || r == -PSHM_ELIST_UTF8);
        check(pshm__list_item_type(buf, &lay, i, &t) == 0);
        check(r != 0 || t == v.type);
        check(pshm__list_item_format(buf, &lay, i, f) == 0);
        check(pshm__list_item_capacity(buf, &lay, i, &cap) == 0 && cap >= 8);
        if (r == 0 && (v.type == PSHM_STR || v.type == PSHM_BYTES))
            check(v.s.len <= cap);
        /* Sets of each kind, then read back. */
        switch (i % 4) {
        case 0: w = pshm_value_int((int64_t)i * -7); break;
        case 1: w = pshm_value_float(0.5 * (double)i); break;
        case 2: w = pshm_value_bytes(buf, cap < size ? cap : size); break;
        default: w = pshm_value_str("abcdefgh", 8); break;
        }
        if (w.type == PSHM_BYTES) {
            /* bytes from the buffer itself: copy first (set may overlap) */
            static unsigned char tmp[64];
            w.s.len = w.s.len < sizeof tmp ? w.s.len : sizeof tmp;
            memcpy(tmp, buf, w.s.len);
            w.s.ptr = (const char *)tmp;
        }
        check(pshm__list_item_set(buf, &lay, i, &w) == 0);
        check(pshm__list_item_get(buf, &lay, i, &v) == 0 && v.type == w.type);
        check(pshm__list_parse(buf, size, &lay) == 0); /* a set keeps the list valid */
    }
    ASAN_UNPOISON_MEMORY_REGION(buf + size, alloc - size);
    free(buf);
    return 0;
}
