/* SPDX-License-Identifier: MIT */
/* array_internal.h - the .npy header parser and writer, for array.c, the
 * tests and the fuzz target. Pure functions: no shared memory, no I/O. */
#ifndef PSHM_ARRAY_INTERNAL_H
#define PSHM_ARRAY_INTERNAL_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Room for any header pshm writes: the dict for PSHM_ARRAY_MAXDIM dimensions
 * of 19 digits is under 1600 bytes, plus prefix, growth room and padding. */
#define PSHM__NPY_HEADER_CAP 4096

/* What a .npy header says. */
typedef struct pshm__npy {
    int major, minor;     /* format version */
    size_t data_offset;   /* magic + version + length field + dict: where data starts */
    pshm_dtype dtype;
    int fortran_order;
    int ndim;
    int64_t shape[PSHM_ARRAY_MAXDIM];
    uint64_t nitems;      /* product of shape (1 for 0-d) */
    size_t nbytes;        /* nitems * itemsize */
} pshm__npy;

/*
 * The fixed prefix: magic, version and header length. avail bytes are
 * readable at buf. Returns 0 and *total (prefix + header length, i.e. the
 * data offset), or -PSHM_EARRAY_MAGIC, -PSHM_EVERSION,
 * -PSHM_EARRAY_HEADERLEN, -PSHM_EARRAY_SHORT (fewer bytes than the prefix).
 */
PSHM__HIDDEN int pshm__npy_prefix(const void *buf, size_t avail, int *major, int *minor,
                                  size_t *total);

/*
 * Parse the whole header (prefix and dict); avail bytes are readable at buf.
 * The data is not looked at. Returns 0 and *out, or any code of
 * pshm__npy_prefix, -PSHM_EARRAY_SHORT (header longer than avail),
 * -PSHM_EARRAY_HEADER, -PSHM_EARRAY_STRUCT, -PSHM_EARRAY_DTYPE,
 * -PSHM_EARRAY_SHAPE, -PSHM_EARRAY_NDIM, -PSHM_EARRAY_OVERFLOW.
 * It may read a byte more than once, so give it private memory, not a live
 * shared mapping (array.c copies the header out of the block first).
 */
PSHM__HIDDEN int pshm__npy_parse_header(const void *buf, size_t avail, pshm__npy *out);

/* pshm__npy_parse_header, then data_offset + nbytes <= len, else
 * -PSHM_EARRAY_TRUNCATED. What the fuzz target calls. */
PSHM__HIDDEN int pshm__npy_parse(const void *buf, size_t len, pshm__npy *out);

/*
 * Element count and byte size of a shape, numpy's way: every non-zero
 * dimension times the item size must fit INT64_MAX (and SIZE_MAX), even when
 * another dimension is 0. Returns 0, -PSHM_EARRAY_SHAPE (negative),
 * -PSHM_EARRAY_NDIM, -PSHM_EARRAY_OVERFLOW.
 */
PSHM__HIDDEN int pshm__npy_sizes(size_t itemsize, int ndim, const int64_t *shape,
                                 uint64_t *nitems, size_t *nbytes);

/*
 * Write the header numpy's np.save writes for this array into out (cap
 * bytes, at least PSHM__NPY_HEADER_CAP). Returns 0 and *len (a multiple of
 * PSHM_ARRAY_ALIGN), or -PSHM_EARRAY_NDIM / -PSHM_EARRAY_SHAPE / -ENOSPC.
 */
PSHM__HIDDEN int pshm__npy_write_header(const pshm_dtype *dt, int ndim, const int64_t *shape,
                                        int fortran_order, char *out, size_t cap, size_t *len);

#endif
