/* SPDX-License-Identifier: MIT */
/* bridge.c - forward a pshm queue's messages to the queues of the same name
 * on other nodes: the source endpoint claims messages in batches on one
 * consumer handle (pshm_queue_peekmany), packs them into wire batches and
 * MPI_Isends those; each destination endpoint MPI_Irecvs, commits in order
 * and acknowledges; the source releases, oldest first, only what every
 * destination acknowledged (unless release_early). Batches are untrusted
 * input: every field is checked against the bytes that arrived (wire.h,
 * fuzzed by tests/fuzz/fuzz_wire.c). */
#include "mpi_internal.h"
#include "wire.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#define TAG_BASE 0x2000
#define SPIN_POLLS 4096 /* MPI polls between yields while waiting */
/* Batches in flight (source) and receives posted ahead (destination): with
 * two, the source sat idle while the destination committed a batch and its
 * acknowledgement came back; four keep both sides busy. */
#define NBATCH 4

enum { ROLE_NONE = 0, ROLE_SRC = 1, ROLE_DST = 2 };

struct batch {       /* source: one batch being filled or in flight */
    char *buf;
    size_t len;          /* bytes used, header included */
    uint64_t seq;
    uint32_t count;
    int state;           /* 0 free, 1 filling, 2 in flight */
    int acks;            /* destinations that acknowledged it */
    uint32_t flags;      /* WIRE_END for the end of stream */
    uint64_t sendno;     /* batches sent before it */
    MPI_Request *sreq;   /* per destination: the batch's Isend, then one per large message */
    const void **lp;     /* large messages: where each is sent from */
    char *stage;         /* their copies (NULL when sent from their source slots,
                            claimed until released) */
    size_t *ll;
    unsigned nl;
    size_t lbytes;       /* their bytes */
};

struct pshm_mpi_bridge {
    pshm_mpi_job *job;
    int role;
    int tag_batch, tag_ack, tag_large;
    pshm_mpi_bridge_options o;
    size_t cap;          /* batch buffer size */
    size_t max_msg;
    size_t large;        /* source: messages this long go on their own (SIZE_MAX: none) */
    int from_slot;       /* source: large messages are sent straight from their slots */
    int done, closed_src, end_sent;
    unsigned idle;       /* steps in a row that moved nothing */
    pshm_mpi_bridge_info info;
    /* source: one consumer handle; the messages it holds are claimed in
     * stream order and released in that order as batches are acknowledged */
    pshm_queue *h;
    int single;          /* BROADCAST source: one peek at a time (no batch claims) */
    unsigned window;     /* messages held at most */
    unsigned per_batch;  /* messages a batch carries at most: window / NBATCH (at least 1),
                            so that four batches are in flight, not one window-sized one */
    unsigned held;       /* claimed and not released */
    const void **pp;     /* claimed, not packed yet: pp[pi..np) */
    size_t *pl;
    size_t pi, np;
    int ndst;
    int *dst;            /* destination endpoint ranks */
    struct batch b[NBATCH];
    int fill;            /* batch being filled, or -1 */
    int oldest;          /* oldest batch in flight */
    uint64_t next_seq;
    MPI_Request *areq;   /* one ack Irecv per destination */
    uint64_t *aval;
    uint64_t sent;       /* batches sent */
    uint64_t *acked;     /* per destination: batches it acknowledged */
    /* destination */
    pshm_queue *prod;
    int src;
    char *rbuf[NBATCH];
    MPI_Request rreq[NBATCH];
    int ri;              /* buffer to process next */
    uint64_t expect;
    uint32_t cur;        /* messages of rbuf[ri] committed so far */
    size_t curoff;
    int have;            /* rbuf[ri] arrived and is being committed */
    size_t rlen;
    uint64_t ackv;
    MPI_Request ackreq;
    MPI_Request lreq;    /* a large message arriving into our reservation */
    size_t llen;
};

static int deadline_passed(const struct timespec *dl)
{
    struct timespec now;
    if (!dl)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > dl->tv_sec || (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

static void deadline_in(struct timespec *ts, unsigned ms, const struct timespec *cap)
{
    pshm_deadline(ts, ms);
    if (cap && (cap->tv_sec < ts->tv_sec ||
                (cap->tv_sec == ts->tv_sec && cap->tv_nsec < ts->tv_nsec)))
        *ts = *cap;
}

/* ---- source ------------------------------------------------------------ */

static void batch_start(pshm_mpi_bridge *br, int i)
{
    struct batch *b = &br->b[i];
    b->state = 1;
    b->len = sizeof(struct wire);
    b->seq = br->next_seq;
    b->count = 0;
    b->acks = 0;
    b->nl = 0;
    b->lbytes = 0;
    br->fill = i;
}

static int batch_send(pshm_mpi_bridge *br, struct batch *b, uint32_t flags)
{
    struct wire w = {WIRE_MAGIC, flags, b->seq, b->count, 0, b->len - sizeof w};
    int rc = 0;
    memcpy(b->buf, &w, sizeof w);
    b->flags = flags;
    b->sendno = br->sent++;
    for (int i = 0; i < br->ndst && rc == 0; i++)
        rc = PSHM_MPI__CALL(MPI_Isend(b->buf, (int)b->len, MPI_BYTE, br->dst[i], br->tag_batch,
                                      br->job->comm, &b->sreq[i]));
    /* Large messages follow their batch, in stream order, from their slots
     * (MPI keeps the order of messages of one tag between two ranks). */
    for (unsigned k = 0; k < b->nl; k++)
        for (int i = 0; i < br->ndst && rc == 0; i++)
            rc = PSHM_MPI__CALL(MPI_Isend(b->lp[k], (int)b->ll[k], MPI_BYTE, br->dst[i],
                                          br->tag_large, br->job->comm,
                                          &b->sreq[(size_t)br->ndst * (1 + k) + (size_t)i]));
    b->state = 2;
    if (br->fill == b - br->b)
        br->fill = -1;
    br->info.batches++;
    return rc;
}

/* Consume the n oldest messages held. */
static int src_release(pshm_mpi_bridge *br, unsigned n)
{
    if (n == 0)
        return 0;
    br->held -= n;
    return br->single ? pshm_queue_release(br->h) : pshm_queue_releasemany(br->h, n);
}

/* A batch every destination acknowledged: release its messages. Batches
 * complete in the order they were sent (each destination acknowledges in
 * order), which is the order their messages were claimed: they are the
 * oldest held. */
static int batch_done(pshm_mpi_bridge *br, struct batch *b)
{
    int rc = PSHM_MPI__CALL(MPI_Waitall(br->ndst * (int)(1 + b->nl), b->sreq, MPI_STATUSES_IGNORE));
    if (!br->o.release_early) {
        int r = src_release(br, b->count);
        if (r != 0 && rc == 0)
            rc = r;
    }
    br->info.messages += b->count;
    b->state = 0;
    return rc;
}

/* Take acknowledgements that arrived; *moved = 1 if any did. */
static int src_acks(pshm_mpi_bridge *br, int *moved)
{
    for (int i = 0; i < br->ndst; i++) {
        /* after its end ack a destination has no receive posted (and
         * MPI_Test on a null request would say "complete") */
        while (br->areq[i] != MPI_REQUEST_NULL) {
            int flag = 0, rc;
            rc = PSHM_MPI__CALL(MPI_Test(&br->areq[i], &flag, MPI_STATUS_IGNORE));
            if (rc != 0)
                return rc;
            if (!flag)
                break;
            /* Acks come in send order; each names the sequence number after
             * its batch: a destination that acknowledges anything else is
             * broken. */
            struct batch *b = NULL;
            for (int k = 0; k < NBATCH && !b; k++)
                if (br->b[k].state == 2 && br->b[k].sendno == br->acked[i])
                    b = &br->b[k];
            if (!b || br->aval[i] != b->seq + b->count)
                return -PSHM_EMPI_SEQ;
            *moved = 1;
            br->acked[i]++;
            if (++b->acks == br->ndst) {
                rc = batch_done(br, b);
                if (rc != 0)
                    return rc;
            }
            if (b->flags & WIRE_END) {
                if (b->acks == br->ndst)
                    br->done = 1;
                break; /* no more acks after the end */
            }
            rc = PSHM_MPI__CALL(MPI_Irecv(&br->aval[i], 1, MPI_UINT64_T, br->dst[i],
                                          br->tag_ack, br->job->comm, &br->areq[i]));
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int inflight(const pshm_mpi_bridge *br)
{
    int n = 0;
    for (int k = 0; k < NBATCH; k++)
        n += br->b[k].state == 2;
    return n;
}

/* Claim up to want messages into pp/pl (np of them). wait: sleep in the
 * queue up to *wait if it is empty. */
static int src_claim(pshm_mpi_bridge *br, unsigned want, const struct timespec *wait)
{
    size_t n = 0;
    int rc;

    if (br->single) {
        rc = wait ? pshm_queue_timedpeek(br->h, &br->pp[0], &br->pl[0], wait)
                  : pshm_queue_trypeek(br->h, &br->pp[0], &br->pl[0]);
        n = rc == 0;
    } else {
        rc = wait ? pshm_queue_timedpeekmany(br->h, br->pp, br->pl, want, &n, wait)
                  : pshm_queue_trypeekmany(br->h, br->pp, br->pl, want, &n);
    }
    br->pi = 0;
    br->np = n;
    br->held += (unsigned)n;
    return rc;
}

/* Pack what the source queue has; *moved = 1 if anything was taken. If it
 * is empty and nothing else is due, sleep in the queue up to poll_ms (and
 * dl, the caller's deadline: NULL for none); the clock is read only then. */
static int src_fill(pshm_mpi_bridge *br, int *moved, const struct timespec *dl)
{
    for (;;) {
        struct batch *b;
        int rc;

        if (br->closed_src)
            return 0;
        if (br->fill < 0) {
            int i = -1;
            for (int k = 0; k < NBATCH && i < 0; k++)
                if (br->b[k].state == 0)
                    i = k;
            if (i < 0) {
                br->info.window_full++;
                return 0; /* NBATCH batches in flight */
            }
            batch_start(br, i);
        }
        b = &br->b[br->fill];
        if (b->count >= br->per_batch)
            return batch_send(br, b, 0);
        if (br->pi == br->np) {
            unsigned want = br->window - br->held;
            if (want == 0) {
                br->info.window_full++;
                return b->count ? batch_send(br, b, 0) : 0;
            }
            struct timespec w;
            int wait = b->count == 0 && inflight(br) == 0;
            if (wait)
                deadline_in(&w, br->o.poll_ms, dl);
            rc = src_claim(br, want, wait ? &w : NULL);
            if (rc == -EAGAIN || rc == -ETIMEDOUT || (rc == -PSHM_EORDER && br->held))
                return b->count ? batch_send(br, b, 0) : 0; /* send what we have now */
            if (rc == -PSHM_ECLOSED) {
                br->closed_src = 1;
                return b->count ? batch_send(br, b, 0) : 0;
            }
            if (rc != 0)
                return rc;
        }
        size_t first = br->pi;
        while (br->pi < br->np) {
            size_t len = br->pl[br->pi];
            if (len > br->max_msg)
                return -PSHM_EBADFORMAT; /* the queue promised max_msg */
            int big = len >= br->large;
            size_t room = big ? 8 : 8 + PAD8(len);
            /* A batch carries about cap bytes, its large messages included
             * (so several are in flight), and at least one message (cap
             * holds the largest one). */
            if (b->count >= br->per_batch ||
                (b->count && b->len + b->lbytes + room + (big ? len : 0) > br->cap))
                break;
            uint64_t l64 = big ? len | LARGE_BIT : len;
            memcpy(b->buf + b->len, &l64, 8);
            if (big) {
                if (b->stage) /* lbytes + len <= cap: the test above */
                    memcpy(b->stage + b->lbytes, br->pp[br->pi], len);
                b->lp[b->nl] = b->stage ? b->stage + b->lbytes : br->pp[br->pi];
                b->ll[b->nl++] = len;
                b->lbytes += len;
                br->info.large++;
            } else {
                memcpy(b->buf + b->len + 8, br->pp[br->pi], len);
            }
            b->len += room;
            b->count++;
            br->next_seq++;
            br->info.bytes += len;
            br->pi++;
        }
        *moved |= br->pi > first;
        if (br->o.release_early) {
            rc = src_release(br, (unsigned)(br->pi - first));
            if (rc != 0)
                return rc;
        }
        if (br->pi < br->np) {
            rc = batch_send(br, b, 0); /* full: the rest go in the next one */
            if (rc != 0)
                return rc;
        }
    }
}

static int src_step(pshm_mpi_bridge *br, const struct timespec *dl)
{
    int moved = 0, rc;

    rc = src_acks(br, &moved);
    if (rc != 0 || br->done)
        return rc;
    if (br->closed_src) {
        /* Drained: once everything is acknowledged, send the end. */
        if (!br->end_sent && inflight(br) == 0) {
            int i = 0; /* nothing in flight: every batch is free */
            batch_start(br, i);
            rc = batch_send(br, &br->b[i], WIRE_END);
            br->info.batches--; /* the end is not a batch of messages */
            br->end_sent = 1;
            return rc;
        }
    } else {
        rc = src_fill(br, &moved, dl);
        if (rc != 0)
            return rc;
    }
    br->idle = moved ? 0 : br->idle + 1;
    return 0;
}

/* ---- destination ------------------------------------------------------- */

static int dst_post(pshm_mpi_bridge *br, int i)
{
    return PSHM_MPI__CALL(MPI_Irecv(br->rbuf[i], (int)br->cap, MPI_BYTE, br->src, br->tag_batch,
                                    br->job->comm, &br->rreq[i]));
}

/* The large message being received into our reservation: 1 if it arrived
 * and is committed, 0 if not arrived yet, or an error (a length other than
 * its batch announced is -PSHM_EMPI_PROTO). */
static int dst_large(pshm_mpi_bridge *br)
{
    MPI_Status st;
    int flag = 0, n = -1, rc;
    rc = MPI_Test(&br->lreq, &flag, &st);
    if (rc != MPI_SUCCESS) {
        rc = pshm_mpi_error(rc);
        return rc == -PSHM_EMPI_TRUNCATE ? -PSHM_EMPI_PROTO : rc;
    }
    if (!flag) {
        br->idle++;
        return 0;
    }
    br->idle = 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (n < 0 || (size_t)n != br->llen)
        return -PSHM_EMPI_PROTO;
    rc = pshm_queue_commit(br->prod, br->llen);
    if (rc != 0)
        return rc;
    br->curoff = wire_next(br->curoff, br->llen, 1);
    br->cur++;
    br->info.messages++;
    br->info.bytes += br->llen;
    br->info.large++;
    return 1;
}

static int dst_step(pshm_mpi_bridge *br, const struct timespec *dl)
{
    char *buf = br->rbuf[br->ri];
    struct wire w;
    int rc;

    if (!br->have) {
        MPI_Status st;
        int flag = 0, n = 0;
        rc = PSHM_MPI__CALL(MPI_Test(&br->rreq[br->ri], &flag, &st));
        if (rc != 0)
            return rc;
        if (!flag) {
            br->idle++;
            return 0;
        }
        br->idle = 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        rc = n < 0 ? WIRE_EPROTO : wire_head(buf, (size_t)n, br->expect, &w);
        if (rc != WIRE_OK)
            return rc == WIRE_ESEQ ? -PSHM_EMPI_SEQ : -PSHM_EMPI_PROTO;
        br->have = 1;
        br->rlen = (size_t)n;
        br->cur = 0;
        br->curoff = sizeof w;
        br->info.batches += !(w.flags & WIRE_END);
    }
    memcpy(&w, buf, sizeof w);
    while (br->cur < w.count) {
        uint64_t len;
        void *p;
        struct timespec t;
        int big;
        if (br->lreq != MPI_REQUEST_NULL) {
            rc = dst_large(br);
            if (rc <= 0)
                return rc; /* an error, or not arrived yet */
            continue;
        }
        if (wire_entry(buf, br->rlen, br->curoff, br->max_msg, &len, &big) != WIRE_OK)
            return -PSHM_EMPI_PROTO;
        /* the clock is read only when the queue is full and we must wait */
        rc = pshm_queue_tryreserve(br->prod, (size_t)len, &p);
        if (rc == -EAGAIN) {
            deadline_in(&t, br->o.poll_ms, dl);
            rc = pshm_queue_timedreserve(br->prod, (size_t)len, &p, &t);
            if (rc == -ETIMEDOUT)
                return 0; /* destination full: come back (the deadline may have passed) */
        }
        if (rc != 0)
            return rc;
        if (big) {
            /* Its bytes come on their own, straight into the reservation;
             * MPI writes no more than len there (more is an error). */
            br->llen = (size_t)len;
            rc = PSHM_MPI__CALL(MPI_Irecv(p, (int)len, MPI_BYTE, br->src, br->tag_large,
                                          br->job->comm, &br->lreq));
            if (rc != 0)
                return rc;
            continue;
        }
        memcpy(p, buf + br->curoff + 8, (size_t)len);
        rc = pshm_queue_commit(br->prod, (size_t)len);
        if (rc != 0)
            return rc;
        br->curoff = wire_next(br->curoff, len, 0);
        br->cur++;
        br->info.messages++;
        br->info.bytes += len;
    }
    if (br->curoff != br->rlen)
        return -PSHM_EMPI_PROTO;
    /* Committed all of it: acknowledge (the previous ack has long gone). */
    rc = PSHM_MPI__CALL(MPI_Wait(&br->ackreq, MPI_STATUS_IGNORE));
    if (rc != 0)
        return rc;
    br->ackv = w.seq + w.count;
    rc = PSHM_MPI__CALL(MPI_Isend(&br->ackv, 1, MPI_UINT64_T, br->src, br->tag_ack,
                                  br->job->comm, &br->ackreq));
    if (rc != 0)
        return rc;
    br->expect = w.seq + w.count;
    br->have = 0;
    if (w.flags & WIRE_END) {
        rc = PSHM_MPI__CALL(MPI_Wait(&br->ackreq, MPI_STATUS_IGNORE));
        int r = pshm_queue_close(br->prod); /* the last producer: the stream ends here too */
        br->prod = NULL;
        br->done = 1;
        return rc != 0 ? rc : r;
    }
    rc = dst_post(br, br->ri);
    br->ri = (br->ri + 1) % NBATCH;
    return rc;
}

/* ---- create / run / close ---------------------------------------------- */

static int endpoint_open(pshm_mpi_bridge *br, const char *name, const pshm_queue_options *qopt)
{
    char nn[PSHM_NAME_MAX + 1];
    pshm_queue_options q;
    pshm_queue_info qi;
    int rc;

    rc = pshm_mpi_node_name(br->job, br->job->node, name, nn, sizeof nn, NULL);
    if (rc != 0)
        return rc;
    pshm_queue_options_init(&q);
    q.lifetime = PSHM_AUTO;
    q.watch = 1;
    if (qopt)
        memcpy(&q, qopt, qopt->struct_size < sizeof q ? qopt->struct_size : sizeof q);
    q.struct_size = sizeof q;
    q.open_existing = 1;
    if (q.lifetime == PSHM_PERSIST)
        q.watch = 0;
    if (br->role == ROLE_DST)
        return pshm_queue_create(nn, PSHM_QUEUE_PRODUCER, &q, &br->prod);

    rc = pshm_queue_create(nn, PSHM_QUEUE_CONSUMER, &q, &br->h);
    if (rc != 0)
        return rc;
    pshm_queue_info_init(&qi);
    rc = pshm_queue_fstat(br->h, &qi);
    if (rc != 0)
        return rc;
    br->max_msg = pshm_queue_max_msg(br->h);
    /* Batch claims on the one handle, any number (SPSC, MPMC); BROADCAST
     * has none: one message at a time (see the header). */
    br->single = qi.queue_mode == PSHM_QUEUE_BROADCAST;
    br->window = br->single ? 1 : br->o.window;
    /* release_early releases a message once packed: a large one cannot be
     * sent from its slot then, so it goes from a copy. */
    br->from_slot = br->o.large_from_slot && !br->o.release_early;
    br->large = br->o.large_bytes == 0 ||
                        br->o.large_bytes > br->max_msg /* none can be large: no send buffers */
                    ? SIZE_MAX
                    : br->o.large_bytes;
    br->per_batch = br->window / NBATCH ? br->window / NBATCH : 1;
    return 0;
}

static int src_setup(pshm_mpi_bridge *br)
{
    br->pp = malloc(sizeof *br->pp * br->window);
    br->pl = malloc(sizeof *br->pl * br->window);
    br->areq = malloc(sizeof *br->areq * (size_t)br->ndst);
    br->aval = calloc((size_t)br->ndst, sizeof *br->aval);
    br->acked = calloc((size_t)br->ndst, sizeof *br->acked);
    if (!br->pp || !br->pl || !br->areq || !br->aval || !br->acked)
        return -ENOMEM;
    /* large messages sent from a copy: a send buffer a batch */
    int stage = br->large != SIZE_MAX && !br->from_slot;
    for (int i = 0; i < NBATCH; i++) {
        size_t nreq = (size_t)br->ndst * (1 + (size_t)br->per_batch);
        br->b[i].buf = malloc(br->cap);
        if (stage)
            br->b[i].stage = malloc(br->cap);
        br->b[i].sreq = malloc(sizeof(MPI_Request) * nreq);
        br->b[i].lp = malloc(sizeof *br->b[i].lp * br->per_batch);
        br->b[i].ll = malloc(sizeof *br->b[i].ll * br->per_batch);
        for (size_t j = 0; br->b[i].sreq && j < nreq; j++)
            br->b[i].sreq[j] = MPI_REQUEST_NULL; /* before any failure: bridge_free reads them */
        if (!br->b[i].buf || !br->b[i].sreq || !br->b[i].lp || !br->b[i].ll ||
            (stage && !br->b[i].stage))
            return -ENOMEM;
    }
    br->fill = -1;
    for (int i = 0; i < br->ndst; i++) {
        int rc = PSHM_MPI__CALL(MPI_Irecv(&br->aval[i], 1, MPI_UINT64_T, br->dst[i],
                                          br->tag_ack, br->job->comm, &br->areq[i]));
        if (rc != 0) {
            for (int j = i; j < br->ndst; j++)
                br->areq[j] = MPI_REQUEST_NULL;
            return rc;
        }
    }
    return 0;
}

static int dst_setup(pshm_mpi_bridge *br)
{
    int rc = 0;
    for (int i = 0; i < NBATCH && rc == 0; i++) {
        br->rbuf[i] = malloc(br->cap);
        rc = br->rbuf[i] ? dst_post(br, i) : -ENOMEM;
    }
    return rc;
}

/* Cancel and complete a receive we no longer want. */
static void req_cancel(MPI_Request *r)
{
    if (*r == MPI_REQUEST_NULL)
        return;
    MPI_Cancel(r);
    MPI_Wait(r, MPI_STATUS_IGNORE);
}

/* Wait a little for a send; give up (and keep its buffer) if it will not
 * complete. Returns 1 if it completed. */
static int req_settle(MPI_Request *r)
{
    for (int i = 0; i < 2000 && *r != MPI_REQUEST_NULL; i++) {
        int flag = 0;
        if (MPI_Test(r, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || flag)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (*r == MPI_REQUEST_NULL)
        return 1;
    MPI_Request_free(r);
    return 0;
}

static void bridge_free(pshm_mpi_bridge *br, int *rcp)
{
    int keep = 0, r;
    for (int i = 0; i < NBATCH; i++) {
        if (br->b[i].sreq)
            for (size_t j = 0; j < (size_t)br->ndst * (1 + (size_t)br->per_batch); j++)
                keep |= !req_settle(&br->b[i].sreq[j]);
        if (!keep) { /* else MPI may still read them: leaked on purpose */
            free(br->b[i].buf);
            free(br->b[i].stage);
        }
        free(br->b[i].sreq);
        free(br->b[i].lp);
        free(br->b[i].ll);
    }
    req_cancel(&br->lreq); /* its reservation goes with the producer handle */
    if (br->areq)
        for (int i = 0; i < br->ndst; i++)
            req_cancel(&br->areq[i]);
    for (int i = 0; i < NBATCH; i++) {
        req_cancel(&br->rreq[i]);
        free(br->rbuf[i]);
    }
    if (br->role == ROLE_DST)
        req_settle(&br->ackreq);
    r = pshm_queue_close(br->h); /* what it holds goes back to the queue */
    if (rcp && *rcp == 0)
        *rcp = r;
    r = pshm_queue_close(br->prod);
    if (rcp && *rcp == 0)
        *rcp = r;
    free(br->pp);
    free(br->pl);
    free(br->areq);
    free(br->aval);
    free(br->acked);
    free(br->dst);
    free(br);
}

int pshm_mpi_bridge_create(pshm_mpi_job *job, const char *name, int src_node,
                           const int *dst_nodes, int ndst, const pshm_queue_options *qopt,
                           const pshm_mpi_bridge_options *opt, pshm_mpi_bridge **out)
{
    pshm_mpi_bridge *br = NULL;
    uint64_t h = PSHM_MPI__HASH0, geo[2] = {0, 0};
    int rc = 0, nr, my_ep = -1;

    if (!job)
        return -EINVAL;
    if (out)
        *out = NULL;
    br = calloc(1, sizeof *br);
    if (!br)
        rc = -ENOMEM;
    if (rc == 0) {
        pshm_mpi_bridge_options_init(&br->o);
        if (opt && opt->struct_size == 0)
            rc = -EINVAL;
        else if (opt)
            memcpy(&br->o, opt, opt->struct_size < sizeof br->o ? opt->struct_size : sizeof br->o);
        br->o.struct_size = sizeof br->o;
        br->job = job;
        br->src = -1;
        for (int i = 0; i < NBATCH; i++)
            br->rreq[i] = MPI_REQUEST_NULL;
        br->ackreq = MPI_REQUEST_NULL;
        br->lreq = MPI_REQUEST_NULL;
        if (br->o.window == 0)
            br->o.window = 1;
        if (br->o.poll_ms == 0)
            br->o.poll_ms = 1;
    }
    if (rc == 0 && (!name || !out || !dst_nodes || ndst < 1 || ndst >= job->nodes ||
                    src_node < 0 || src_node >= job->nodes || br->o.endpoint < 0 ||
                    (qopt && qopt->struct_size == 0)))
        rc = -EINVAL;
    for (int i = 0; rc == 0 && i < ndst; i++) {
        if (dst_nodes[i] < 0 || dst_nodes[i] >= job->nodes || dst_nodes[i] == src_node)
            rc = -EINVAL;
        for (int j = 0; j < i; j++)
            if (dst_nodes[j] == dst_nodes[i])
                rc = -EINVAL;
    }
    h = pshm_mpi__hash_str(h, "bridge");
    h = pshm_mpi__hash_str(h, name);
    if (rc == 0) {
        h = pshm_mpi__hash(h, &src_node, sizeof src_node);
        h = pshm_mpi__hash(h, dst_nodes, sizeof *dst_nodes * (size_t)ndst);
        int ov[4] = {br->o.endpoint, (int)br->o.window, br->o.release_early,
                     (int)br->o.batch_bytes};
        h = pshm_mpi__hash(h, ov, sizeof ov);
    }
    if (rc == 0) {
        /* endpoint ranks: every involved node must have one */
        const int *ranks;
        ranks = pshm_mpi__node_ranks(job, src_node, &nr);
        if (br->o.endpoint >= nr)
            rc = -PSHM_EMPI_ENDPOINT;
        else
            br->src = ranks[br->o.endpoint];
        br->dst = malloc(sizeof(int) * (size_t)ndst);
        if (!br->dst)
            rc = -ENOMEM;
        for (int i = 0; rc == 0 && i < ndst; i++) {
            ranks = pshm_mpi__node_ranks(job, dst_nodes[i], &nr);
            if (br->o.endpoint >= nr)
                rc = -PSHM_EMPI_ENDPOINT;
            else
                br->dst[i] = ranks[br->o.endpoint];
            if (rc == 0 && br->dst[i] == job->rank)
                my_ep = i;
        }
        br->ndst = ndst;
        if (rc == 0)
            br->role = job->rank == br->src ? ROLE_SRC : my_ep >= 0 ? ROLE_DST : ROLE_NONE;
    }
    rc = pshm_mpi__agree(job->comm, rc, h);
    if (rc != 0)
        goto fail;
    /* Tags: the n-th bridge of a job gets its own pair (collective calls
     * happen in the same order everywhere, so everyone counts alike). */
    br->tag_batch = TAG_BASE + 3 * (int)(job->bridges % 8000);
    br->tag_ack = br->tag_batch + 1;
    br->tag_large = br->tag_batch + 2;
    job->bridges++;

    if (br->role == ROLE_SRC) {
        rc = endpoint_open(br, name, qopt);
        if (rc == 0) {
            size_t need = sizeof(struct wire) + 8 + PAD8(br->max_msg);
            br->cap = br->o.batch_bytes > need ? br->o.batch_bytes : need;
            if (br->cap > INT_MAX)
                rc = -PSHM_ETOOBIG;
        }
        geo[0] = br->max_msg;
        geo[1] = br->cap;
    }
    /* Everyone learns the source's max_msg and batch size. */
    int e = MPI_Bcast(geo, 2, MPI_UINT64_T, br->src, job->comm);
    if (e != MPI_SUCCESS && rc == 0)
        rc = pshm_mpi_error(e);
    if (br->role == ROLE_DST) {
        br->max_msg = (size_t)geo[0];
        br->cap = (size_t)geo[1];
        rc = endpoint_open(br, name, qopt);
        if (rc == 0 && pshm_queue_max_msg(br->prod) < br->max_msg)
            rc = -PSHM_ETOOBIG;
    }
    rc = pshm_mpi__agree(job->comm, rc, 0);
    if (rc == 0 && br->role == ROLE_SRC)
        rc = src_setup(br);
    if (rc == 0 && br->role == ROLE_DST)
        rc = dst_setup(br);
    rc = pshm_mpi__agree(job->comm, rc, 0);
    if (rc != 0)
        goto fail;
    br->info.struct_size = sizeof br->info;
    br->info.role = br->role;
    *out = br;
    return 0;
fail:
    if (br)
        bridge_free(br, NULL);
    return rc;
}

int pshm_mpi_bridge_timedrun(pshm_mpi_bridge *br, const struct timespec *deadline)
{
    int rc = 0;
    if (!br)
        return -EINVAL;
    while (!br->done && rc == 0) {
        if (br->role == ROLE_SRC)
            rc = src_step(br, deadline);
        else if (br->role == ROLE_DST)
            rc = dst_step(br, deadline);
        else
            br->done = 1;
        if (rc == 0 && !br->done && deadline_passed(deadline))
            return -ETIMEDOUT;
        /* Waiting on the network: poll MPI (an ack or a batch comes within
         * microseconds), but let other processes run now and then - a
         * yield after every miss can cost a time slice on a busy machine. */
        if (br->idle >= SPIN_POLLS) {
            br->idle = 0;
            sched_yield();
        }
    }
    br->info.done = br->done;
    return rc;
}

int pshm_mpi_bridge_run(pshm_mpi_bridge *br)
{
    return pshm_mpi_bridge_timedrun(br, NULL);
}

int pshm_mpi_bridge_poll(pshm_mpi_bridge *br)
{
    static const struct timespec past = {0, 0}; /* "try once" (pshm.h, Timeouts) */
    int rc = pshm_mpi_bridge_timedrun(br, &past);
    return rc == 0 ? 1 : rc == -ETIMEDOUT ? 0 : rc;
}

int pshm_mpi_bridge_close(pshm_mpi_bridge *br)
{
    int rc = 0;
    if (br)
        bridge_free(br, &rc);
    return rc;
}

int pshm_mpi_bridge_fstat(const pshm_mpi_bridge *br, pshm_mpi_bridge_info *out)
{
    if (!br || !out || out->struct_size == 0)
        return -EINVAL;
    pshm_mpi_bridge_info i = br->info;
    i.role = br->role;
    i.done = br->done;
    memcpy(out, &i, out->struct_size < sizeof i ? out->struct_size : sizeof i);
    out->struct_size = out->struct_size < sizeof i ? out->struct_size : sizeof i;
    return 0;
}
