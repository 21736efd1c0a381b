/* SPDX-License-Identifier: MIT */
/*
 * mpi_polled.c - a bridged queue whose endpoints are the application: one
 * rank on node 0 produces, one rank on node 1 consumes, each in its own
 * single thread, polling the bridge between its own queue operations
 * (pshm_mpi_bridge_poll) instead of giving the bridge a thread or a rank.
 *
 *   PSHM_MPI_PSEUDO_NODES=2 mpirun --oversubscribe -np 2 build/examples/mpi/mpi_polled
 *
 * (on a real cluster: mpirun -np 2 --map-by ppr:1:node, without the
 * variable). The producer writes each message in place (reserve, fill,
 * commit) and polls after every few and whenever its ring is full; the
 * consumer polls whenever its queue is empty and reads each message in
 * place (peek, use, release). Local processes on either node may use the
 * queue "ticks" by name meanwhile (`pshm ls`, `pshm queue recv`).
 */
#include <pshm_mpi.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MESSAGES 100000
#define SIZE 4096 /* bytes a message */

static void die(const char *what, int rc)
{
    fprintf(stderr, "mpi_polled: %s: %s (%s)\n", what, pshm_mpi_strerror(rc),
            pshm_mpi_errname(rc));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* One step of the bridge; 1 once the end of stream was handled. */
static int poll_bridge(pshm_mpi_bridge *br)
{
    int rc = pshm_mpi_bridge_poll(br);
    if (rc < 0)
        die("bridge poll", rc);
    return rc;
}

static void produce(pshm_mpi_job *job, pshm_mpi_bridge *br)
{
    char qname[PSHM_NAME_MAX + 1];
    pshm_queue *q;
    int rc;
    pshm_mpi_node_name(job, 0, "ticks", qname, sizeof qname, NULL);
    if ((rc = pshm_queue_open(qname, PSHM_QUEUE_PRODUCER, NULL, &q)) != 0)
        die("open", rc);
    for (uint64_t i = 0; i < MESSAGES; i++) {
        void *p;
        while ((rc = pshm_queue_tryreserve(q, SIZE, &p)) == -EAGAIN)
            poll_bridge(br); /* the ring is full: let the bridge drain it */
        if (rc != 0)
            die("reserve", rc);
        memset(p, (int)(i & 0xff), SIZE);
        memcpy(p, &i, sizeof i);
        if ((rc = pshm_queue_commit(q, SIZE)) != 0)
            die("commit", rc);
        if (i % 16 == 15) /* a batch of 16 messages on its way */
            poll_bridge(br);
    }
    pshm_queue_close(q); /* the last producer: the stream ends, also on node 1 */
    while (!poll_bridge(br))
        ; /* until node 1 has acknowledged everything */
    printf("producer (node 0): %d messages of %d bytes\n", MESSAGES, SIZE);
}

static void consume(pshm_mpi_job *job, pshm_mpi_bridge *br)
{
    char qname[PSHM_NAME_MAX + 1];
    pshm_queue *q;
    uint64_t next = 0, bad = 0;
    int rc;
    pshm_mpi_node_name(job, 1, "ticks", qname, sizeof qname, NULL);
    if ((rc = pshm_queue_open(qname, PSHM_QUEUE_CONSUMER, NULL, &q)) != 0)
        die("open", rc);
    for (;;) {
        const void *p;
        size_t len;
        uint64_t seq;
        rc = pshm_queue_trypeek(q, &p, &len);
        if (rc == -EAGAIN) { /* nothing here: let the bridge bring more */
            poll_bridge(br);
            continue;
        }
        if (rc == -PSHM_ECLOSED) /* the end of the stream, all of it read */
            break;
        if (rc != 0)
            die("peek", rc);
        memcpy(&seq, p, sizeof seq);
        bad += len != SIZE || seq != next++ ||
               ((const unsigned char *)p)[SIZE - 1] != (unsigned char)(seq & 0xff);
        if ((rc = pshm_queue_release(q)) != 0)
            die("release", rc);
    }
    pshm_queue_close(q);
    printf("consumer (node 1): %llu messages, %llu out of order or wrong\n",
           (unsigned long long)next, (unsigned long long)bad);
    if (bad || next != MESSAGES)
        MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
    pshm_mpi_job *job;
    pshm_mpi_bridge *br;
    pshm_queue_options qo;
    int rc, to_node1 = 1;

    MPI_Init(&argc, &argv); /* MPI_THREAD_SINGLE is enough */
    if ((rc = pshm_mpi_job_open(MPI_COMM_WORLD, NULL, &job)) != 0)
        die("job", rc);
    if (pshm_mpi_job_nodes(job) != 2)
        die("this example wants 2 nodes", -22);
    /* The queue "ticks" on both nodes: 4 KiB messages in a ring of 512 KiB
     * (a few hundred messages stay in cache), the job's lifetime. */
    pshm_queue_options_init(&qo);
    qo.queue_mode = PSHM_QUEUE_SPSC;
    qo.max_msg = SIZE;
    qo.ring_bytes = 512 << 10;
    qo.lifetime = PSHM_AUTO;
    qo.watch = 1;
    if ((rc = pshm_mpi_bridge_create(job, "ticks", 0, &to_node1, 1, &qo, NULL, &br)) != 0)
        die("bridge", rc);
    if (pshm_mpi_job_node_rank(job) == 0) { /* the endpoints are the application */
        if (pshm_mpi_job_node(job) == 0)
            produce(job, br);
        else
            consume(job, br);
    }
    pshm_mpi_bridge_close(br);
    pshm_mpi_job_close(job);
    MPI_Finalize();
    return 0;
}
