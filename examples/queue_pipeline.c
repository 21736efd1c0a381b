/* SPDX-License-Identifier: MIT */
/* queue_pipeline.c [COUNT] - a producer and a consumer process passing
 * variable-size messages through a pshm queue without copying them: the
 * producer builds each message in place in the ring (reserve/commit), the
 * consumer reads it in place (peek/release). The queue is AUTO: it goes
 * away when both processes have closed it, or died. */
#include <pshm.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct reading {
    uint64_t seq;
    double values[]; /* a variable number of them */
};

static int consumer(const char *name)
{
    pshm_queue *q;
    int rc = pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q);
    if (rc != 0) {
        fprintf(stderr, "consumer: open: %s\n", pshm_strerror(rc));
        return 1;
    }
    uint64_t n = 0;
    double total = 0;
    for (;;) {
        const void *p;
        size_t len;
        rc = pshm_queue_peek(q, &p, &len); /* waits; -PSHM_ECLOSED at the end */
        if (rc == -PSHM_ECLOSED)
            break;
        if (rc != 0) {
            fprintf(stderr, "consumer: peek: %s\n", pshm_strerror(rc));
            return 1;
        }
        const struct reading *r = p; /* aligned for any type, contiguous */
        size_t k = (len - sizeof *r) / sizeof(double);
        for (size_t i = 0; i < k; i++)
            total += r->values[i];
        n++;
        pshm_queue_release(q);
    }
    pshm_queue_info st;
    pshm_queue_info_init(&st);
    pshm_queue_fstat(q, &st);
    printf("consumer: %llu messages, sum %.0f; queue: %llu committed, %llu bytes, "
           "%llu waits on empty\n",
           (unsigned long long)n, total, (unsigned long long)st.messages,
           (unsigned long long)st.bytes, (unsigned long long)st.waits_empty);
    fflush(stdout);
    pshm_queue_close(q);
    return 0;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 100000;
    pshm_queue_options opt;
    pshm_queue *q;
    char name[64];

    snprintf(name, sizeof name, "queue_pipeline_%ld", (long)getpid());
    pshm_queue_options_init(&opt);
    opt.queue_mode = PSHM_QUEUE_SPSC;
    opt.ring_bytes = 256 * 1024;
    opt.max_msg = sizeof(struct reading) + 64 * sizeof(double);
    opt.lifetime = PSHM_AUTO;
    int rc = pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &opt, &q);
    if (rc != 0) {
        fprintf(stderr, "create: %s (%s)\n", pshm_strerror(rc), pshm_errname(rc));
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        pshm_queue_close(q); /* the child's copy: unmaps only */
        _exit(consumer(name));
    }
    for (long i = 0; i < count; i++) {
        size_t k = (size_t)(i % 64) + 1;
        void *p;
        rc = pshm_queue_reserve(q, sizeof(struct reading) + k * sizeof(double), &p);
        if (rc != 0) {
            fprintf(stderr, "reserve: %s\n", pshm_strerror(rc));
            return 1;
        }
        struct reading *r = p; /* written in place, in shared memory */
        r->seq = (uint64_t)i;
        for (size_t j = 0; j < k; j++)
            r->values[j] = 1.0;
        pshm_queue_commit(q, sizeof *r + k * sizeof(double));
    }
    pshm_queue_close(q); /* the last producer: the consumer drains, then sees the end */
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
