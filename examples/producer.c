/* SPDX-License-Identifier: MIT */
/* producer.c NAME COUNT - create an AUTO block holding COUNT int32 values
 * (i*i), say so on stdout, and keep it until stdin closes. When this process
 * closes the block (or dies), it was the last holder, so the name goes. */
#include <pshm.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    pshm_block_options opt;
    pshm_block *blk;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: producer NAME COUNT\n");
        return 2;
    }
    long n = atol(argv[2]);
    if (n <= 0) {
        fprintf(stderr, "producer: COUNT must be positive\n");
        return 2;
    }
    pshm_block_options_init(&opt);
    opt.lifetime = PSHM_AUTO;
    rc = pshm_block_create(argv[1], (size_t)n * sizeof(int32_t), &opt, &blk);
    if (rc != 0) {
        fprintf(stderr, "producer: %s: %s\n", argv[1], pshm_strerror(rc));
        return 1;
    }
    int32_t *v = pshm_block_data(blk);
    for (long i = 0; i < n; i++)
        v[i] = (int32_t)(i * i);
    printf("producer: wrote %ld int32 values to block '%s'\n", n, pshm_block_name(blk));
    fflush(stdout);
    while (getchar() != EOF) /* until the demo closes our stdin */
        ;
    pshm_block_close(blk);
    printf("producer: closed '%s'\n", argv[1]);
    return 0;
}
