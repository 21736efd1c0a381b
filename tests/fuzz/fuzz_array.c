/* SPDX-License-Identifier: MIT */
/* fuzz_array.c - libFuzzer over the .npy header parser (array.c), the only
 * code that reads bytes of an array block another process wrote.
 * Properties: no crash and no read outside the input (ASan); a header that
 * parses describes data inside the input; writing it again as numpy would
 * and parsing that gives the same array. */
#include "array_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pshm__npy h, again;
    char hdr[PSHM__NPY_HEADER_CAP];
    size_t len;

    /* An exact-size heap copy, so reading one byte past the end is caught. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int r = pshm__npy_parse(buf, size, &h);
    if (r == 0) {
        if (h.data_offset > size || h.nbytes > size - h.data_offset)
            abort();
        if (h.ndim < 0 || h.ndim > PSHM_ARRAY_MAXDIM)
            abort();
        if (pshm__npy_write_header(&h.dtype, h.ndim, h.shape, h.fortran_order, hdr, sizeof hdr,
                                   &len) != 0)
            abort();
        if (len % PSHM_ARRAY_ALIGN != 0 || pshm__npy_parse_header(hdr, len, &again) != 0)
            abort();
        if (strcmp(again.dtype.descr, h.dtype.descr) != 0 || again.ndim != h.ndim ||
            again.fortran_order != h.fortran_order || again.nbytes != h.nbytes ||
            memcmp(again.shape, h.shape, (size_t)h.ndim * sizeof h.shape[0]) != 0)
            abort();
    } else if (strcmp(pshm_errname(r), "UNKNOWN") == 0) {
        abort(); /* every failure is one of the documented codes */
    }
    free(buf);
    return 0;
}
