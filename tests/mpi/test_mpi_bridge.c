/* SPDX-License-Identifier: MIT */
/*
 * test_mpi_bridge.c - queues across nodes. Every message carries its
 * producer's id, a sequence number and a checksum of its bytes; consumers on
 * the other nodes check that each producer's messages arrive complete, in
 * order, each exactly once (no loss, no duplicate: nobody dies here).
 *
 *   test_mpi_bridge pipeline   4 ranks, 2 pseudo-nodes: producers on node 0
 *                              (a rank and a forked local process), the
 *                              bridge endpoints, a consumer rank on node 1;
 *                              every source queue mode; and the endpoints
 *                              producing and consuming themselves, polling
 *   test_mpi_bridge fanout     4 ranks, 4 pseudo-nodes: node 0 to nodes 1-3,
 *                              producer and consumers are local processes
 *                              (forked, not in the job)
 */
#include "mpitest.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#define HDR 24 /* id, seq, checksum */
#define MAXMSG 65536 /* the largest message a test sends */

static pshm_mpi_job *job;
/* Nonzero: every fourth message is edge-1, edge or edge+1 bytes long (the
 * bridge's large-message threshold, to cross it exactly). */
static size_t edge;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* Message `seq` of producer `id`: a length and bytes that follow from both. */
static size_t msg_make(unsigned char *m, size_t max, uint64_t id, uint64_t seq)
{
    uint64_t st = id * 1000003 + seq, sum;
    size_t len = HDR + (size_t)(mt_next(&st) % (max - HDR + 1));
    if (edge && seq % 4 == 3)
        len = edge - 1 + (size_t)(seq / 4 % 3);
    memcpy(m, &id, 8);
    memcpy(m + 8, &seq, 8);
    for (size_t i = HDR; i < len; i++)
        m[i] = (unsigned char)mt_next(&st);
    sum = fnv(fnv(UINT64_C(0xcbf29ce484222325), m, 16), m + HDR, len - HDR);
    memcpy(m + 16, &sum, 8);
    return len;
}

/* Checks one received message against what its producer sent. */
static int msg_check(const unsigned char *m, size_t len, size_t max, uint64_t *id, uint64_t *seq)
{
    static unsigned char want[MAXMSG];
    if (len < HDR || len > max)
        return 0;
    memcpy(id, m, 8);
    memcpy(seq, m + 8, 8);
    return msg_make(want, max, *id, *seq) == len && memcmp(want, m, len) == 0;
}

/* Send n messages of producer id. br: this rank is also the source
 * endpoint, in the same thread: it polls the bridge after every eighth
 * message and while the ring is full (pshm_mpi_bridge_poll), then until the
 * end of stream is acknowledged. */
static int produce(const char *qname, pshm_mpi_bridge *br, uint64_t id, uint64_t n, size_t max)
{
    pshm_queue *q = NULL;
    static unsigned char m[MAXMSG];
    int rc = pshm_queue_open(qname, PSHM_QUEUE_PRODUCER, NULL, &q);
    for (uint64_t s = 0; rc == 0 && s < n; s++) {
        size_t len = msg_make(m, max, id, s);
        if (!br) {
            rc = pshm_queue_send(q, m, len);
            continue;
        }
        while ((rc = pshm_queue_trysend(q, m, len)) == -EAGAIN)
            if ((rc = pshm_mpi_bridge_poll(br)) != 0)
                break;
        if (rc == 0 && s % 8 == 7)
            rc = pshm_mpi_bridge_poll(br);
        if (rc > 0)
            rc = -EPROTO; /* the end of stream before the producer closed */
    }
    int rc2 = pshm_queue_close(q); /* the last producer: the stream ends */
    while (br && rc == 0 && (rc = pshm_mpi_bridge_poll(br)) == 0)
        ;
    return rc < 0 ? rc : rc2;
}

/* Receive until the end of stream; every producer's messages in order,
 * each exactly once: next[id] is the sequence number expected. br: this
 * rank is also the destination endpoint, polled whenever q is empty.
 * Returns 0 or a description of what went wrong in err. */
static int consume(pshm_queue *q, pshm_mpi_bridge *br, int nprod, uint64_t n, size_t max,
                   char *err, size_t cap)
{
    uint64_t next[8] = {0}, id, seq;
    static unsigned char m[MAXMSG];
    size_t len;
    int rc;
    for (;;) {
        rc = br ? pshm_queue_tryrecv(q, m, sizeof m, &len) : pshm_queue_recv(q, m, sizeof m, &len);
        if (rc == -EAGAIN && br && (rc = pshm_mpi_bridge_poll(br)) >= 0)
            continue;
        if (rc != 0)
            break;
        if (!msg_check(m, len, max, &id, &seq)) {
            snprintf(err, cap, "a corrupt message (len %zu)", len);
            return -1;
        }
        if (id >= (uint64_t)nprod || seq != next[id]) {
            snprintf(err, cap, "producer %llu: seq %llu, expected %llu", (unsigned long long)id,
                     (unsigned long long)seq, (unsigned long long)(id < 8 ? next[id] : 0));
            return -1;
        }
        next[id]++;
    }
    if (rc != -PSHM_ECLOSED) {
        snprintf(err, cap, "recv: %s", pshm_mpi_strerror(rc));
        return -1;
    }
    for (int i = 0; i < nprod; i++)
        if (next[i] != n) {
            snprintf(err, cap, "producer %d: %llu of %llu messages", i,
                     (unsigned long long)next[i], (unsigned long long)n);
            return -1;
        }
    return 0;
}

static int wait_child(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct mode {
    const char *tag;
    pshm_queue_mode qm;
    int release_early;
    uint64_t n; /* messages per producer */
    unsigned window; /* the bridge's window; 0: the default */
    size_t max;      /* largest message; 0: 512 */
    size_t edge;     /* 0, or edge below for every fourth message */
    int from_slot;   /* large messages sent straight from their source slots */
    int embedded;    /* the endpoints produce and consume in their own thread, polling the
                        bridge (pshm_mpi_bridge_poll); ranks 1 and 3 do nothing */
};

/* Node 0: rank 0 the bridge's source endpoint, rank 1 a producer and a
 * forked local producer; node 1: rank 2 the destination endpoint, rank 3 the
 * consumer. */
static void pipeline_mode(const struct mode *md)
{
    pshm_queue_options qo;
    pshm_mpi_bridge_options bo;
    pshm_mpi_bridge *br = NULL;
    pshm_mpi_bridge_info bi;
    const char *name = mt_name(md->tag);
    char src[PSHM_NAME_MAX + 1], dst[PSHM_NAME_MAX + 1];
    int rank = pshm_mpi_job_rank(job), one = 1;
    size_t max = md->max ? md->max : 512;
    edge = md->edge;
    int nprod = md->qm == PSHM_QUEUE_MPMC && !md->embedded ? 2 : 1;
    pshm_queue *cq = NULL;

    pshm_queue_options_init(&qo);
    qo.queue_mode = md->qm;
    qo.max_msg = max;
    qo.ring_bytes = 64 << 10; /* small: the bridge meets full queues */
    if (max > 512)
        qo.ring_bytes = 8 * max; /* and the destination ring wraps every few messages */
    qo.max_participants = 4; /* the bridge takes one slot, whatever its window */
    qo.lifetime = PSHM_AUTO; /* the job's lifetime (the queue default is PERSIST) */
    qo.watch = 1;
    pshm_mpi_bridge_options_init(&bo);
    bo.release_early = md->release_early;
    bo.batch_bytes = 16 << 10;
    if (md->window)
        bo.window = md->window;
    if (md->edge)
        bo.large_bytes = md->edge; /* the threshold, crossed by the sizes */
    bo.large_from_slot = md->from_slot;
    CHECK_OK(pshm_mpi_bridge_create(job, name, 0, &one, 1, &qo, &bo, &br));
    CHECK_OK(pshm_mpi_node_name(job, 0, name, src, sizeof src, NULL));
    CHECK_OK(pshm_mpi_node_name(job, 1, name, dst, sizeof dst, NULL));
    if (rank == 0) {
        /* the source endpoint: one consumer handle, not one per message */
        pshm_queue_info si;
        pshm_queue_info_init(&si);
        CHECK_OK(pshm_queue_stat(src, &si));
        CHECK_EQ(si.consumers, 1);
    }
    if (rank == (md->embedded ? 2 : 3)) /* subscribe before anything is sent (broadcast) */
        CHECK_OK(pshm_queue_open(dst, PSHM_QUEUE_CONSUMER, NULL, &cq));
    MPI_Barrier(MPI_COMM_WORLD);

    if (md->embedded) {
        char err[200];
        if (rank == 0)
            CHECK_OK(produce(src, br, 0, md->n, max));
        if (rank == 2 && consume(cq, br, 1, md->n, max, err, sizeof err) != 0)
            MT_FAIL("%s: %s", md->tag, err);
        if (rank == 2)
            CHECK_OK(pshm_queue_close(cq));
    } else if (rank == 0 || rank == 2) {
        CHECK_OK(pshm_mpi_bridge_run(br));
    } else if (rank == 1) {
        pid_t child = -1;
        if (nprod == 2) {
            child = fork();
            CHECK(child >= 0);
            if (child == 0)
                _exit(produce(src, NULL, 1, md->n, max) == 0 ? 0 : 1);
        }
        CHECK_OK(produce(src, NULL, 0, md->n, max));
        if (child > 0)
            CHECK_EQ(wait_child(child), 0);
    } else if (rank == 3) {
        char err[200];
        if (consume(cq, NULL, nprod, md->n, max, err, sizeof err) != 0)
            MT_FAIL("%s: %s", md->tag, err);
        CHECK_OK(pshm_queue_close(cq));
    }
    pshm_mpi_bridge_info_init(&bi);
    CHECK_OK(pshm_mpi_bridge_fstat(br, &bi));
    CHECK_EQ(bi.role, rank == 0 ? 1 : rank == 2 ? 2 : 0);
    if (rank == 0 || rank == 2) {
        CHECK_EQ(bi.done, 1);
        CHECK_EQ(bi.messages, md->n * (uint64_t)nprod);
        CHECK(bi.batches >= 1);
        /* a batch holds at most the window's messages (until acknowledged) */
        if (rank == 0 && md->window && !md->release_early)
            CHECK(bi.batches >= md->n * (uint64_t)nprod / md->window);
        /* messages of large_bytes and more go on their own (from a copy
         * with release_early) */
        if (bo.large_bytes && max >= bo.large_bytes)
            CHECK(bi.large > 0 && bi.large < bi.messages);
        else
            CHECK_EQ(bi.large, 0);
    }
    CHECK_OK(pshm_mpi_bridge_close(br));
    MPI_Barrier(MPI_COMM_WORLD);
    /* the job's lifetime: with every handle closed, both queues are gone */
    pshm_queue_info qi;
    pshm_queue_info_init(&qi);
    CHECK_ERR(pshm_queue_stat(src, &qi), -ENOENT);
    CHECK_ERR(pshm_queue_stat(dst, &qi), -ENOENT);
}

static void pipeline_mpmc(void)
{
    struct mode m = {"mpmc", PSHM_QUEUE_MPMC, 0, 20000, 0, 0, 0, 0, 0};
    pipeline_mode(&m);
}
static void pipeline_mpmc_window4(void)
{
    struct mode m = {"mpmcw", PSHM_QUEUE_MPMC, 0, 2000, 4, 0, 0, 0, 0};
    pipeline_mode(&m);
}
static void pipeline_spsc(void)
{
    struct mode m = {"spsc", PSHM_QUEUE_SPSC, 0, 20000, 0, 0, 0, 0, 0}; /* batch claims: a window too */
    pipeline_mode(&m);
}
static void pipeline_spsc_early(void)
{
    struct mode m = {"spsce", PSHM_QUEUE_SPSC, 1, 20000, 0, 0, 0, 0, 0};
    pipeline_mode(&m);
}
/* Large messages: sizes either side of the large_bytes threshold (and
 * exactly at it), mixed with small ones, through a destination ring of 8 of
 * them; batch claims with the default window and a window of 8,
 * release_early and BROADCAST (one at a time); sent from a copy and
 * straight from the source slots (the default; with release_early from a
 * copy all the same). */
static void pipeline_large(void)
{
    static const struct mode ms[] = {
        {"mpmcl", PSHM_QUEUE_MPMC, 0, 1500, 0, 40000, 16 << 10, 0, 0},
        {"spscl", PSHM_QUEUE_SPSC, 0, 1500, 8, 40000, 16 << 10, 0, 0},
        {"spscle", PSHM_QUEUE_SPSC, 1, 1000, 0, 40000, 16 << 10, 0, 0},
        {"bcastl", PSHM_QUEUE_BROADCAST, 0, 500, 0, 40000, 16 << 10, 0, 0},
        /* straight from the source slots (no copy at the source), the default */
        {"mpmcls", PSHM_QUEUE_MPMC, 0, 1500, 0, 40000, 16 << 10, 1, 0},
        {"spscls", PSHM_QUEUE_SPSC, 0, 1500, 8, 40000, 16 << 10, 1, 0},
        {"spscles", PSHM_QUEUE_SPSC, 1, 1000, 0, 40000, 16 << 10, 1, 0},
    };
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
        pipeline_mode(&ms[i]);
}
/* The endpoints produce and consume themselves, one thread a rank, polling
 * the bridge: small messages in batches (a small ring, so the producer
 * polls while it is full), large ones from a copy and from their slots,
 * release_early, and a window of 8. */
static void pipeline_embedded(void)
{
    static const struct mode ms[] = {
        {"mpmcp", PSHM_QUEUE_MPMC, 0, 20000, 0, 0, 0, 0, 1},
        {"spscpl", PSHM_QUEUE_SPSC, 0, 1500, 8, 40000, 16 << 10, 0, 1},
        {"mpmcpls", PSHM_QUEUE_MPMC, 0, 1500, 0, 40000, 16 << 10, 1, 1},
        {"spscpe", PSHM_QUEUE_SPSC, 1, 20000, 0, 0, 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
        pipeline_mode(&ms[i]);
}
static void pipeline_broadcast(void)
{
    struct mode m = {"bcast", PSHM_QUEUE_BROADCAST, 1, 20000, 0, 0, 0, 0, 0};
    pipeline_mode(&m);
}

/* Arguments every endpoint can check at create. */
static void bridge_errors(void)
{
    pshm_mpi_bridge *br = (pshm_mpi_bridge *)1;
    pshm_mpi_bridge_options bo;
    pshm_queue_options qo;
    int self = 0, two = 2, one = 1;

    CHECK_ERR(pshm_mpi_bridge_create(job, mt_name("e1"), 0, &self, 1, NULL, NULL, &br), -EINVAL);
    CHECK(br == NULL);
    CHECK_ERR(pshm_mpi_bridge_create(job, mt_name("e2"), 0, &two, 1, NULL, NULL, &br), -EINVAL);
    pshm_mpi_bridge_options_init(&bo);
    bo.endpoint = 2; /* nodes have two ranks */
    CHECK_ERR(pshm_mpi_bridge_create(job, mt_name("e3"), 0, &one, 1, NULL, &bo, &br),
              -PSHM_EMPI_ENDPOINT);
    bo.endpoint = pshm_mpi_job_rank(job) % 2; /* ranks disagree */
    CHECK_ERR(pshm_mpi_bridge_create(job, mt_name("e4"), 0, &one, 1, NULL, &bo, &br),
              -PSHM_EMPI_MISMATCH);
    /* a destination queue that cannot take the source's largest message */
    const char *name = mt_name("e5");
    char dst[PSHM_NAME_MAX + 1];
    pshm_queue *small = NULL;
    CHECK_OK(pshm_mpi_node_name(job, 1, name, dst, sizeof dst, NULL));
    pshm_queue_options_init(&qo);
    qo.max_msg = 64;
    if (pshm_mpi_job_rank(job) == 0)
        CHECK_OK(pshm_queue_create(dst, PSHM_QUEUE_CONSUMER, &qo, &small));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_ERR(pshm_mpi_bridge_create(job, name, 0, &one, 1, NULL, NULL, &br), -PSHM_ETOOBIG);
    MPI_Barrier(MPI_COMM_WORLD);
    if (small) {
        CHECK_OK(pshm_block_unlink(pshm_queue_block(small)));
        pshm_queue_close(small);
    }
}

/* Node 0 to nodes 1, 2 and 3: every destination gets every message. The
 * producer and the consumers are local processes, not ranks. */
static void fanout(void)
{
    pshm_queue_options qo;
    pshm_mpi_bridge_options bo;
    pshm_mpi_bridge *br = NULL;
    const char *name = mt_name("fan");
    char mine[PSHM_NAME_MAX + 1];
    int dst[3] = {1, 2, 3}, node = pshm_mpi_job_node(job);
    uint64_t n = 20000;
    size_t max = 1024;
    pid_t child;

    CHECK_EQ(pshm_mpi_job_nodes(job), 4);
    pshm_queue_options_init(&qo);
    qo.queue_mode = PSHM_QUEUE_MPMC;
    qo.max_msg = max;
    qo.ring_bytes = 128 << 10;
    qo.lifetime = PSHM_AUTO;
    qo.watch = 1;
    pshm_mpi_bridge_options_init(&bo);
    bo.window = 32;
    CHECK_OK(pshm_mpi_bridge_create(job, name, 0, dst, 3, &qo, &bo, &br));
    CHECK_OK(pshm_mpi_node_name(job, node, name, mine, sizeof mine, NULL));
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        if (node == 0)
            _exit(produce(mine, NULL, 0, n, max) == 0 ? 0 : 1);
        pshm_queue *q = NULL;
        char err[200];
        if (pshm_queue_open(mine, PSHM_QUEUE_CONSUMER, NULL, &q) != 0)
            _exit(2);
        int r = consume(q, NULL, 1, n, max, err, sizeof err);
        if (r != 0)
            fprintf(stderr, "fan-out consumer on node %d: %s\n", node, err);
        pshm_queue_close(q);
        _exit(r == 0 ? 0 : 1);
    }
    CHECK_OK(pshm_mpi_bridge_run(br));
    CHECK_EQ(wait_child(child), 0);
    CHECK_OK(pshm_mpi_bridge_close(br));
}

int main(int argc, char **argv)
{
    mt_init(&argc, &argv);
    if (argc < 2)
        MT_FAIL("usage: test_mpi_bridge pipeline|fanout");
    CHECK_OK(pshm_mpi_job_open(MPI_COMM_WORLD, NULL, &job));
    if (strcmp(argv[1], "pipeline") == 0) {
        MT_RUN(pipeline_mpmc);
        MT_RUN(pipeline_mpmc_window4);
        MT_RUN(pipeline_spsc);
        MT_RUN(pipeline_spsc_early);
        MT_RUN(pipeline_broadcast);
        MT_RUN(pipeline_large);
        MT_RUN(pipeline_embedded);
        MT_RUN(bridge_errors);
    } else if (strcmp(argv[1], "fanout") == 0) {
        MT_RUN(fanout);
    } else {
        MT_FAIL("unknown mode %s", argv[1]);
    }
    CHECK_OK(pshm_mpi_job_close(job));
    return mt_finish();
}
