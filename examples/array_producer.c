/* SPDX-License-Identifier: MIT */
/* array_producer.c NAME ROWS COLS - create an AUTO array block holding a
 * ROWS x COLS float64 matrix (element [i][j] = i * COLS + j), say so on
 * stdout, and keep it until stdin closes. The block is a numpy .npy image:
 * any process learns dtype and shape from the block itself. */
#include <pshm.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    pshm_block_options opt;
    pshm_array *arr;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: array_producer NAME ROWS COLS\n");
        return 2;
    }
    int64_t shape[2] = {atoll(argv[2]), atoll(argv[3])};
    if (shape[0] <= 0 || shape[1] <= 0) {
        fprintf(stderr, "array_producer: ROWS and COLS must be positive\n");
        return 2;
    }
    pshm_block_options_init(&opt);
    opt.lifetime = PSHM_AUTO;
    rc = pshm_array_create(argv[1], PSHM_DT_FLOAT64, 2, shape, 0, &opt, &arr);
    if (rc != 0) {
        fprintf(stderr, "array_producer: %s: %s\n", argv[1], pshm_strerror(rc));
        return 1;
    }
    double *m = pshm_array_data(arr); /* C order: row i starts at i * cols */
    for (int64_t i = 0; i < shape[0]; i++)
        for (int64_t j = 0; j < shape[1]; j++)
            m[i * shape[1] + j] = (double)(i * shape[1] + j);
    printf("array_producer: wrote a %lldx%lld float64 matrix to array block '%s'\n",
           (long long)shape[0], (long long)shape[1], pshm_block_name(pshm_array_block(arr)));
    fflush(stdout);
    while (getchar() != EOF) /* until the demo closes our stdin */
        ;
    pshm_array_close(arr);
    printf("array_producer: closed '%s'\n", argv[1]);
    return 0;
}
