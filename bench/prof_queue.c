/* SPDX-License-Identifier: MIT */
/*
 * prof_queue.c - the queue's fast path in one process, for an instruction
 * profile: N messages through one producer and one consumer handle of a
 * fresh queue, each produced and then consumed at once (never waiting).
 * Run it under `valgrind --tool=callgrind` twice with two N and divide the
 * difference by the difference of N: instructions per message, with no
 * cache or timing noise (bench/experiments.py does that).
 *
 *   build/bench/prof_queue MODE N      MODE: spsc-zc spsc-copy mpmc-zc mpmc-copy
 *                                            broadcast-zc broadcast-copy
 */
#include "pshm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, int r)
{
    fprintf(stderr, "prof_queue: %s: %s\n", what, pshm_strerror(r));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: prof_queue spsc-zc|spsc-copy|mpmc-zc|mpmc-copy|broadcast-zc|"
                        "broadcast-copy N\n");
        return 2;
    }
    const char *m = argv[1];
    long n = atol(argv[2]);
    int zc = strstr(m, "-zc") != NULL;
    pshm_queue_options o;
    pshm_queue_options_init(&o);
    o.queue_mode = !strncmp(m, "mpmc", 4)        ? PSHM_QUEUE_MPMC
                   : !strncmp(m, "broadcast", 9) ? PSHM_QUEUE_BROADCAST
                                                 : PSHM_QUEUE_SPSC;
    o.max_msg = 64;
    o.messages = 256;
    o.keep_open = 1;
    char name[64];
    snprintf(name, sizeof name, "pshm_bench_%ld_prof", (long)getpid());
    pshm_queue *p, *c;
    int r = pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p);
    if (r)
        die("create", r);
    r = pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c);
    if (r)
        die("open", r);
    unsigned char buf[64] = {0};
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) {
        if (zc) {
            void *w;
            const void *q;
            size_t len;
            if ((r = pshm_queue_tryreserve(p, 64, &w)) != 0)
                die("reserve", r);
            memcpy(w, buf, 64);
            if ((r = pshm_queue_commit(p, 64)) != 0)
                die("commit", r);
            if ((r = pshm_queue_trypeek(c, &q, &len)) != 0)
                die("peek", r);
            sum += *(const unsigned long *)q;
            if ((r = pshm_queue_release(c)) != 0)
                die("release", r);
        } else {
            size_t len;
            if ((r = pshm_queue_trysend(p, buf, 64)) != 0)
                die("send", r);
            if ((r = pshm_queue_tryrecv(c, buf, sizeof buf, &len)) != 0)
                die("recv", r);
        }
    }
    pshm_queue_close(c);
    pshm_queue_close(p);
    pshm_unlink(name);
    return sum == 42 ? 1 : 0;
}
