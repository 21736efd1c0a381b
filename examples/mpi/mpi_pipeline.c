/* SPDX-License-Identifier: MIT */
/*
 * mpi_pipeline.c - a producer on node 0 and consumers on node 1 sharing a
 * distributed array and a bridged queue.
 *
 *   PSHM_MPI_PSEUDO_NODES=2 mpirun --oversubscribe -np 4 build/examples/mpi/mpi_pipeline
 *
 * (on a real cluster: mpirun -np 4 --map-by ppr:2:node, without the
 * variable). The array "frames" (FRAMES x WIDTH float64) is split across the
 * nodes: frames 0..FRAMES/2-1 live in node 0's slab, the rest in node 1's.
 * The producer (node 0, node rank 1) writes every frame with
 * pshm_mpi_darray_put - into its own node's memory directly, into node 1's
 * by MPI_Put - flushes, and then sends the frame's number on the queue
 * "frames.jobs". A bridge (the endpoints: node rank 0 on each node) forwards
 * the queue to node 1, where the consumers (every other rank of node 1) take
 * jobs from the MPMC queue and read their frame: a zero-copy view when the
 * frame is in node 1's slab, pshm_mpi_darray_get (MPI_Get) when it is on
 * node 0. While it runs, any local process can look at a node's slab:
 *
 *   python3 -c "import numpy; print(numpy.load('/dev/shm/frames.pn1', mmap_mode='r')[0, :4])"
 */
#include <pshm_mpi.h>

#include <stdio.h>
#include <stdlib.h>

#define FRAMES 64
#define WIDTH 4096

static void die(const char *what, int rc)
{
    fprintf(stderr, "mpi_pipeline: %s: %s (%s)\n", what, pshm_mpi_strerror(rc),
            pshm_mpi_errname(rc));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static double value(int64_t frame, int64_t i) { return (double)frame * 1000.0 + (double)i; }

int main(int argc, char **argv)
{
    pshm_mpi_job *job;
    pshm_mpi_darray *frames;
    pshm_mpi_bridge *br;
    pshm_queue_options qo;
    int64_t shape[2] = {FRAMES, WIDTH};
    int rc, to_node1 = 1;

    MPI_Init(&argc, &argv);
    if ((rc = pshm_mpi_job_open(MPI_COMM_WORLD, NULL, &job)) != 0)
        die("job", rc);
    int node = pshm_mpi_job_node(job), nrank = pshm_mpi_job_node_rank(job);
    if (pshm_mpi_job_nodes(job) != 2 || pshm_mpi_job_node_size(job) < 2)
        die("this example wants 2 nodes of at least 2 ranks", -22);

    /* One distributed array, and the job queue on both nodes (MPMC, so
     * several consumers share node 1's; the job's lifetime). */
    if ((rc = pshm_mpi_darray_create(job, "frames", PSHM_DT_FLOAT64, 2, shape, NULL, &frames)))
        die("darray", rc);
    pshm_queue_options_init(&qo);
    qo.queue_mode = PSHM_QUEUE_MPMC;
    qo.max_msg = 64;
    qo.lifetime = PSHM_AUTO;
    qo.watch = 1;
    if ((rc = pshm_mpi_bridge_create(job, "frames.jobs", 0, &to_node1, 1, &qo, NULL, &br)))
        die("bridge", rc);

    if (nrank == 0) {
        /* the bridge endpoints forward until the producer closes the queue */
        if ((rc = pshm_mpi_bridge_run(br)) != 0)
            die("bridge run", rc);
    } else if (node == 0 && nrank == 1) {
        char qname[PSHM_NAME_MAX + 1];
        pshm_queue *q;
        double *row = malloc(sizeof(double) * WIDTH);
        pshm_mpi_node_name(job, 0, "frames.jobs", qname, sizeof qname, NULL);
        if ((rc = pshm_queue_open(qname, PSHM_QUEUE_PRODUCER, NULL, &q)) != 0)
            die("open queue", rc);
        for (int64_t f = 0; f < FRAMES; f++) {
            int64_t start[2] = {f, 0}, count[2] = {1, WIDTH};
            for (int64_t i = 0; i < WIDTH; i++)
                row[i] = value(f, i);
            if ((rc = pshm_mpi_darray_put(frames, start, count, NULL, row)) != 0 ||
                (rc = pshm_mpi_darray_flush(frames)) != 0) /* complete before we tell */
                die("put", rc);
            if ((rc = pshm_queue_send(q, &f, sizeof f)) != 0)
                die("send", rc);
        }
        pshm_queue_close(q); /* the last producer: the stream ends, also on node 1 */
        free(row);
        printf("producer (node 0): %d frames written and announced\n", FRAMES);
    } else if (node == 1) {
        char qname[PSHM_NAME_MAX + 1];
        pshm_queue *q;
        int64_t f, views = 0, gets = 0, bad = 0, first, rows;
        size_t len;
        double *row = malloc(sizeof(double) * WIDTH);
        pshm_mpi_node_name(job, 1, "frames.jobs", qname, sizeof qname, NULL);
        pshm_mpi_darray_rows(frames, 1, &first, &rows);
        if ((rc = pshm_queue_open(qname, PSHM_QUEUE_CONSUMER, NULL, &q)) != 0)
            die("open queue", rc);
        while ((rc = pshm_queue_recv(q, &f, sizeof f, &len)) == 0) {
            int64_t start[2] = {f, 0}, count[2] = {1, WIDTH};
            const double *p = row;
            void *v;
            if (f >= first && f < first + rows) { /* in this node's slab: no copy */
                if ((rc = pshm_mpi_darray_view(frames, start, count, NULL, &v, NULL)) != 0)
                    die("view", rc);
                p = v;
                views++;
            } else { /* on node 0: one MPI_Get */
                if ((rc = pshm_mpi_darray_get(frames, start, count, NULL, row)) != 0)
                    die("get", rc);
                gets++;
            }
            for (int64_t i = 0; i < WIDTH; i++)
                bad += p[i] != value(f, i);
        }
        if (rc != -PSHM_ECLOSED)
            die("recv", rc);
        pshm_queue_close(q);
        free(row);
        printf("consumer (node 1, rank %d): %lld frames, %lld by zero-copy view, %lld by MPI_Get, "
               "%lld wrong values\n", pshm_mpi_job_rank(job), (long long)(views + gets),
               (long long)views, (long long)gets, (long long)bad);
        if (bad)
            MPI_Abort(MPI_COMM_WORLD, 1);
    }
    pshm_mpi_bridge_close(br);
    pshm_mpi_darray_close(frames); /* collective */
    pshm_mpi_job_close(job);
    MPI_Finalize();
    return 0;
}
