/* SPDX-License-Identifier: MIT */
/* array_consumer.c NAME - attach to an array block by name, learn its dtype
 * and shape from the block, and reduce it: the total and the column sums of
 * a 2-d float64 matrix (C or Fortran order; the strides say where each
 * element is). */
#include <pshm.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    pshm_block_options opt;
    pshm_array *arr;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: array_consumer NAME\n");
        return 2;
    }
    pshm_block_options_init(&opt);
    opt.readonly = 1;
    rc = pshm_array_open(argv[1], &opt, &arr);
    if (rc != 0) {
        fprintf(stderr, "array_consumer: %s: %s\n", argv[1], pshm_strerror(rc));
        return 1;
    }
    const pshm_dtype *dt = pshm_array_dtype(arr);
    pshm_dtype native;
    pshm_dtype_parse(PSHM_DT_FLOAT64, &native);
    if (strcmp(dt->descr, native.descr) != 0 || pshm_array_ndim(arr) != 2) {
        fprintf(stderr, "array_consumer: %s holds %s with %d dimensions; want a 2-d %s matrix\n",
                argv[1], dt->descr, pshm_array_ndim(arr), native.descr);
        pshm_array_close(arr);
        return 1;
    }
    const int64_t *shape = pshm_array_shape(arr), *strides = pshm_array_strides(arr);
    const char *base = pshm_array_data(arr);
    double total = 0;
    printf("array_consumer: '%s' is %s (%lld, %lld), %s order: column sums [", argv[1], dt->descr,
           (long long)shape[0], (long long)shape[1], pshm_array_fortran_order(arr) ? "Fortran" : "C");
    for (int64_t j = 0; j < shape[1]; j++) {
        double col = 0;
        for (int64_t i = 0; i < shape[0]; i++)
            col += *(const double *)(base + i * strides[0] + j * strides[1]);
        printf("%s%.1f", j ? ", " : "", col);
        total += col;
    }
    printf("], sum %.1f\n", total);
    pshm_array_close(arr);
    return 0;
}
