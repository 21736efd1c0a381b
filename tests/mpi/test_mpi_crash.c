/* SPDX-License-Identifier: MIT */
/*
 * test_mpi_crash.c - what a killed job leaves, and what a killed bridge
 * delivers. Driven by crash.sh:
 *
 *   test_mpi_crash job PREFIX          (MPI) make a darray, a node block and a
 *                                      bridge's queues with the job's lifetime,
 *                                      then SIGKILL one rank: crash.sh checks
 *                                      that mpirun fails and nothing named
 *                                      PREFIX* is left in /dev/shm
 *   test_mpi_crash fill NAME N         (no MPI) PERSIST MPMC queues NAME.pn0
 *                                      (N messages with sequence numbers and
 *                                      checksums, then shut down) and NAME.pn1
 *   test_mpi_crash bridge NAME KILL    (MPI, 2 pseudo-nodes) bridge NAME.pn0 to
 *                                      NAME.pn1; the source endpoint SIGKILLs
 *                                      itself once KILL messages were
 *                                      acknowledged (0: run to the end)
 *   test_mpi_crash drain NAME N WINDOW|default (no MPI) every message 0..N-1 arrived
 *                                      at least once, intact; duplicates at
 *                                      most WINDOW and never more than the
 *                                      source queue's counted redeliveries
 */
#include "mpitest.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

#define MAXMSG 256

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static size_t msg_make(unsigned char *m, uint64_t seq)
{
    uint64_t st = seq, sum;
    size_t len = 16 + (size_t)(mt_next(&st) % (MAXMSG - 16 + 1));
    memcpy(m, &seq, 8);
    for (size_t i = 16; i < len; i++)
        m[i] = (unsigned char)mt_next(&st);
    memset(m + 8, 0, 8);
    sum = fnv(m, len);
    memcpy(m + 8, &sum, 8);
    return len;
}

static void qnames(const char *name, char *src, char *dst)
{
    snprintf(src, PSHM_NAME_MAX + 1, "%s.pn0", name);
    snprintf(dst, PSHM_NAME_MAX + 1, "%s.pn1", name);
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "test_mpi_crash: %s: %s\n", what, pshm_mpi_strerror(rc));
    return 1;
}

static int fill(const char *name, uint64_t n)
{
    char src[PSHM_NAME_MAX + 1], dst[PSHM_NAME_MAX + 1];
    unsigned char m[MAXMSG];
    pshm_queue_options qo;
    pshm_queue *p = NULL, *d = NULL;
    int rc;

    qnames(name, src, dst);
    pshm_queue_options_init(&qo);
    qo.queue_mode = PSHM_QUEUE_MPMC;
    qo.max_msg = MAXMSG;
    qo.messages = n + 16; /* the whole stream fits: fill never waits */
    qo.max_participants = 256;
    if ((rc = pshm_queue_create(dst, PSHM_QUEUE_CONSUMER, &qo, &d)) != 0)
        return die("create destination", rc);
    pshm_queue_close(d);
    if ((rc = pshm_queue_create(src, PSHM_QUEUE_PRODUCER, &qo, &p)) != 0)
        return die("create source", rc);
    for (uint64_t s = 0; s < n; s++)
        if ((rc = pshm_queue_send(p, m, msg_make(m, s))) != 0)
            return die("send", rc);
    return pshm_queue_close(p) ? 1 : 0; /* the last producer: shut down */
}

static int drain(const char *name, uint64_t n, uint64_t window)
{
    char src[PSHM_NAME_MAX + 1], dst[PSHM_NAME_MAX + 1];
    unsigned char m[MAXMSG + 1], want[MAXMSG];
    unsigned *seen = calloc(n, sizeof *seen);
    pshm_queue_info si;
    pshm_queue *q = NULL;
    uint64_t dups = 0, seq;
    size_t len;
    int rc;

    qnames(name, src, dst);
    if ((rc = pshm_queue_open(dst, PSHM_QUEUE_CONSUMER, NULL, &q)) != 0)
        return die("open destination", rc);
    while ((rc = pshm_queue_tryrecv(q, m, sizeof m, &len)) == 0) {
        memcpy(&seq, m, 8);
        if (len < 16 || seq >= n || msg_make(want, seq) != len || memcmp(want, m, len) != 0) {
            fprintf(stderr, "drain: a corrupt message (len %zu)\n", len);
            return 1;
        }
        dups += seen[seq]++ > 0;
    }
    if (rc != -PSHM_ECLOSED)
        return die("recv (the stream should have ended)", rc);
    pshm_queue_close(q);
    for (uint64_t s = 0; s < n; s++)
        if (!seen[s]) {
            fprintf(stderr, "drain: message %llu was lost\n", (unsigned long long)s);
            return 1;
        }
    pshm_queue_info_init(&si);
    if ((rc = pshm_queue_stat(src, &si)) != 0)
        return die("stat source", rc);
    printf("drain: %llu messages, %llu duplicates, %llu redeliveries counted at the source\n",
           (unsigned long long)n, (unsigned long long)dups, (unsigned long long)si.redeliveries);
    /* the killed bridge held at most the window: no more comes back */
    if (dups > window || dups > si.redeliveries || si.redeliveries > window) {
        fprintf(stderr, "drain: more duplicates than the guarantee allows\n");
        return 1;
    }
    free(seen);
    return 0;
}

static int bridge(const char *name, uint64_t kill_after)
{
    pshm_mpi_job *job = NULL;
    pshm_mpi_bridge *br = NULL;
    pshm_mpi_bridge_info bi;
    pshm_queue_options qo;
    struct timespec dl;
    int one = 1, rc;

    CHECK_OK(pshm_mpi_job_open(MPI_COMM_WORLD, NULL, &job));
    CHECK_EQ(pshm_mpi_job_nodes(job), 2);
    pshm_queue_options_init(&qo); /* the queues exist: PERSIST, as made */
    CHECK_OK(pshm_mpi_bridge_create(job, name, 0, &one, 1, &qo, NULL, &br));
    pshm_mpi_bridge_info_init(&bi);
    do {
        /* to be killed mid-stream: one step a call (a deadline already
         * passed), so the kill comes right after kill_after messages - in 5
         * ms slices a fast bridge moved the whole stream before the check */
        pshm_deadline(&dl, kill_after ? 0 : 5);
        rc = pshm_mpi_bridge_timedrun(br, &dl);
        CHECK_OK(pshm_mpi_bridge_fstat(br, &bi));
        if (kill_after && bi.role == 1 && bi.messages >= kill_after) {
            printf("killing the source endpoint after %llu messages\n",
                   (unsigned long long)bi.messages);
            fflush(stdout);
            raise(SIGKILL);
        }
    } while (rc == -ETIMEDOUT);
    CHECK_OK(rc);
    CHECK_OK(pshm_mpi_bridge_close(br));
    CHECK_OK(pshm_mpi_job_close(job));
    MPI_Finalize();
    return 0;
}

/* Objects with the job's lifetime on every node, then one rank dies. */
static int job_kill(const char *prefix)
{
    pshm_mpi_job *job = NULL;
    pshm_mpi_darray *a = NULL;
    pshm_mpi_bridge *br = NULL;
    pshm_block *b = NULL;
    char n1[128], n2[128], n3[128];
    int64_t shape[2] = {100, 100};
    int one = 1;

    CHECK_OK(pshm_mpi_job_open(MPI_COMM_WORLD, NULL, &job));
    snprintf(n1, sizeof n1, "%s_arr", prefix);
    snprintf(n2, sizeof n2, "%s_blk", prefix);
    snprintf(n3, sizeof n3, "%s_q", prefix);
    CHECK_OK(pshm_mpi_darray_create(job, n1, "<f8", 2, shape, NULL, &a));
    CHECK_OK(pshm_mpi_block_create(job, n2, 1 << 16, NULL, &b));
    CHECK_OK(pshm_mpi_bridge_create(job, n3, 0, &one, 1, NULL, NULL, &br));
    MPI_Barrier(MPI_COMM_WORLD);
    if (pshm_mpi_job_rank(job) == 0) {
        printf("made the objects\n");
        fflush(stdout);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (pshm_mpi_job_rank(job) == pshm_mpi_job_size(job) - 1)
        raise(SIGKILL);
    MPI_Barrier(MPI_COMM_WORLD); /* never completes: mpirun ends the job */
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "job") == 0) {
        mt_init(&argc, &argv);
        return job_kill(argv[2]);
    }
    if (argc >= 4 && strcmp(argv[1], "bridge") == 0) {
        mt_init(&argc, &argv);
        return bridge(argv[2], strtoull(argv[3], NULL, 10));
    }
    if (argc >= 4 && strcmp(argv[1], "fill") == 0)
        return fill(argv[2], strtoull(argv[3], NULL, 10));
    if (argc >= 5 && strcmp(argv[1], "drain") == 0) {
        /* "default": the window a bridge made with default options keeps */
        pshm_mpi_bridge_options bo;
        pshm_mpi_bridge_options_init(&bo);
        uint64_t w = strcmp(argv[4], "default") == 0 ? bo.window : strtoull(argv[4], NULL, 10);
        return drain(argv[2], strtoull(argv[3], NULL, 10), w);
    }
    fprintf(stderr, "usage: see the top of test_mpi_crash.c\n");
    return 2;
}
