/* SPDX-License-Identifier: MIT */
/* consumer.c NAME - attach to a block by name and print it as int32 values. */
#include <pshm.h>

#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    pshm_block *blk;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer NAME\n");
        return 2;
    }
    rc = pshm_block_open(argv[1], NULL, &blk);
    if (rc != 0) {
        fprintf(stderr, "consumer: %s: %s\n", argv[1], pshm_strerror(rc));
        return 1;
    }
    const int32_t *v = pshm_block_data(blk);
    size_t n = pshm_block_size(blk) / sizeof *v;
    printf("consumer: '%s' holds %zu int32 values:", pshm_block_name(blk), n);
    for (size_t i = 0; i < n; i++)
        printf(" %d", (int)v[i]);
    printf("\n");
    pshm_block_close(blk);
    return 0;
}
