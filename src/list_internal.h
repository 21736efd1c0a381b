/* SPDX-License-Identifier: MIT */
/*
 * list_internal.h - the ShareableList parser and item codec as pure
 * functions over bytes, so that the handle API, the tests and the fuzz
 * target (tests/fuzz/fuzz_list.c) all run the same code.
 */
#ifndef PSHM_LIST_INTERNAL_H
#define PSHM_LIST_INTERNAL_H

#include "internal.h"

#include <stdint.h>

/* Where the parts of a validated list are, in bytes from the block's start. */
typedef struct pshm__list_layout {
    uint64_t n;        /* items */
    uint64_t data_off; /* (n + 2) * 8 */
    uint64_t data_len; /* D = offsets[n] */
    uint64_t fmt_off;  /* data_off + D */
    uint64_t code_off; /* fmt_off + 8n */
    uint64_t size;     /* code_off + n: the whole list */
} pshm__list_layout;

/*
 * Validate the list in buf[0..len) and describe it. buf must be 8-byte
 * aligned (-EINVAL otherwise; mappings are page-aligned). Reads nothing
 * outside buf, whatever the bytes. Returns 0 or -PSHM_ELIST_SIZE, _COUNT,
 * _OFFSETS, _FORMAT, _CODE, _MISMATCH (see include/pshm.h).
 */
PSHM__HIDDEN int pshm__list_parse(const void *buf, size_t len, pshm__list_layout *out);

/*
 * What pshm_list_stat checks, on the object open as fd (size bytes): its
 * N, offsets, formats and codes read with pread, never the data. Returns 0
 * and *out exactly when pshm__list_parse would accept the object's bytes,
 * or a layout code. Also the fuzz target's (tests/fuzz/fuzz_inspect.c).
 */
PSHM__HIDDEN int pshm__list_stat_fd(int fd, uint64_t size, pshm__list_layout *out);

/*
 * One item of a list that pshm__list_parse accepted (buf is at least
 * lay->size bytes). i must be < lay->n. Each re-checks the item's offsets,
 * format and code, which another process may have changed since.
 */
PSHM__HIDDEN int pshm__list_item_get(const void *buf, const pshm__list_layout *lay, uint64_t i,
                                     pshm_value *out);
PSHM__HIDDEN int pshm__list_item_type(const void *buf, const pshm__list_layout *lay, uint64_t i,
                                      pshm_vtype *out);
PSHM__HIDDEN int pshm__list_item_set(void *buf, const pshm__list_layout *lay, uint64_t i,
                                     const pshm_value *v);
PSHM__HIDDEN int pshm__list_item_capacity(const void *buf, const pshm__list_layout *lay,
                                          uint64_t i, size_t *out);
/* Item i's format without NUL padding into out[9] (NUL-terminated). */
PSHM__HIDDEN int pshm__list_item_format(const void *buf, const pshm__list_layout *lay,
                                        uint64_t i, char out[9]);

/* Python's == between two values (both already validated). */
PSHM__HIDDEN int pshm__value_equal(const pshm_value *a, const pshm_value *b);
/* 1 if s[0..len) is UTF-8 as Python's strict decoder accepts it. */
PSHM__HIDDEN int pshm__utf8_valid(const unsigned char *s, size_t len);

#endif
