/* SPDX-License-Identifier: MIT */
/* hello.c - the README's example: create a block, attach from a child, read. */
#include <pshm.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    pshm_block_options opt;
    pshm_block *blk;
    int rc;

    pshm_block_options_init(&opt);
    opt.lifetime = PSHM_AUTO; /* gone when the last process closes it or dies */
    rc = pshm_block_create(NULL, 4096, &opt, &blk);
    if (rc != 0) {
        fprintf(stderr, "create: %s\n", pshm_strerror(rc));
        return 1;
    }
    strcpy(pshm_block_data(blk), "hello from the parent");

    if (fork() == 0) { /* any process can attach by name */
        pshm_block *b;
        if (pshm_block_open(pshm_block_name(blk), NULL, &b) != 0)
            _exit(1);
        printf("child read: %s\n", (char *)pshm_block_data(b));
        fflush(stdout);
        pshm_block_close(b);
        _exit(0);
    }
    wait(NULL);
    pshm_block_close(blk); /* last holder: the name is removed */
    return 0;
}
