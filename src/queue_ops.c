/* SPDX-License-Identifier: MIT */
/*
 * queue_ops.c - reserve/commit/peek/release for the three ring kinds, and
 * the waiting around them. The layout and the recovery protocol are
 * described at the top of queue.c; this file explains the orderings.
 *
 * Publication always goes through a seq_cst read-modify-write (xchg or CAS)
 * of the index or cell word, then a load of the other side's sleepers flag:
 * that pairs with the sleeper's "set flag (seq_cst), re-check" so a wakeup is
 * never lost, and costs no system call when nobody sleeps.
 */
#include "queue_internal.h"
#include "fault.h"
#include "os/futex.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static void set_pending(pshm_queue *q, int what, uint64_t pos, unsigned char *hdr, size_t max)
{
    q->pending = what;
    q->p_pos = pos;
    q->p_hdr = hdr;
    q->p_max = max;
}

static void set_info(pshm_queue *q, unsigned attempts, unsigned returned, uint64_t lost)
{
    q->have_info = 1;
    q->info.attempts = attempts;
    q->info.returned = returned;
    q->info.lost = lost;
}

static long long ts_ns(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/*
 * Sleep on seq (whose value was s before the caller set the sleepers flag
 * and re-checked) until woken, the deadline, or - if periodic - recover_ms,
 * so the caller can look for dead peers. Returns -ETIMEDOUT only when the
 * caller's deadline has passed.
 */
static int q_sleep(pshm_queue *q, uint32_t *seq, uint32_t s, const struct timespec *deadline,
                   int periodic)
{
    struct timespec lim;
    const struct timespec *tp = deadline;

    if (periodic) {
        long long t = pshm__q_now_ns() + (long long)q->recover_ms * 1000000LL;
        if (!deadline || ts_ns(deadline) > t) {
            lim.tv_sec = (time_t)(t / 1000000000LL);
            lim.tv_nsec = (long)(t % 1000000000LL);
            tp = &lim;
        }
    }
    int r = pshm__futex_wait(seq, s, tp);
    if (r == -ETIMEDOUT && deadline && pshm__q_now_ns() >= ts_ns(deadline))
        return -ETIMEDOUT;
    return 0; /* woken, value changed, signal, periodic timeout: look again */
}

/* a consumer announces the position it is about to claim (see reap) */
static void announce(pshm_queue *q, uint64_t pos)
{
    if (q->self)
        Q_ST(&q->self->cur, pos + 1);
}

/* ------------------------------------------------------------ SPSC */

/*
 * Publication is per record: the consumer polls the commit word (seq) in
 * the header of the record at its position, the cache line it is about to
 * read anyway, instead of a separate head index. A record that needed a
 * PAD is committed in two stores, its own seq and then the PAD's, so a PAD
 * is never visible without its record. A producer killed between the two
 * leaves a "committed-looking" record at the next lap's start behind an
 * uncommitted PAD: the next producer scrubs it before it writes there
 * (pshm__q_spsc_start). head is only a hint (statistics, where a new
 * producer starts looking).
 */
static inline __attribute__((always_inline)) int
spsc_committed(const pshm_queue *q, uint64_t pos, uint64_t *mpos, uint32_t *len, uint64_t *next)
{
    const uint64_t R = q->g.ring_size;
    uint64_t off = pos & q->mask;
    const struct qrec *r = (const struct qrec *)(q->ring + off);

    /* (Touching the record's second line while polling, to fetch both at
     * once, was measured: it fights the producer for that line and costs
     * more than it saves.) */
    if ((pos & 15) || Q_LDA(&r->seq) != pos + 1)
        return 0;
    uint32_t l = Q_LD(&r->len);
    if (l & Q_R_PAD) {
        if (off == 0)
            return -PSHM_EBADFORMAT;
        pos += R - off; /* the record starts the next lap */
        off = 0;
        r = (const struct qrec *)q->ring;
        if (Q_LDA(&r->seq) != pos + 1)
            return -PSHM_EBADFORMAT; /* committed before its PAD: cannot be missing */
        l = Q_LD(&r->len);
        if (l & Q_R_PAD)
            return -PSHM_EBADFORMAT;
    }
    uint64_t n = Q_R_LEN(l);
    if (n > q->g.max_msg || off + q_rec64(n) > R)
        return -PSHM_EBADFORMAT;
    *mpos = pos;
    *len = l;
    *next = pos + q_rec64(n);
    return 1;
}

int pshm__q_spsc_committed(const pshm_queue *q, uint64_t pos, uint64_t *mpos, uint32_t *len,
                           uint64_t *next)
{
    return spsc_committed(q, pos, mpos, len, next);
}

/* Where a new SPSC producer starts: after the last committed record. */
uint64_t pshm__q_spsc_start(pshm_queue *q)
{
    const uint64_t R = q->g.ring_size;
    uint64_t tail = Q_LDA(&q->h->tail), pos = Q_LDA(&q->h->head);

    if ((pos & 15) || (int64_t)(pos - tail) < 0 || pos - tail > R)
        pos = tail; /* a hint, and not a sane one (behind tail: see attach) */
    for (;;) {
        uint64_t m, nx;
        uint32_t l;
        if (pos - tail >= R || pshm__q_spsc_committed(q, pos, &m, &l, &nx) != 1)
            break;
        pos = nx; /* committed by a producer that died before moving head */
    }
    uint64_t off = pos & q->mask;
    if (off) {
        /* a dead producer's record at the next lap's start, behind its
         * uncommitted PAD, must not look committed when we get there */
        struct qrec *r0 = (struct qrec *)q->ring;
        if (Q_LDA(&r0->seq) == pos - off + R + 1)
            Q_STS(&r0->seq, 0);
    }
    Q_STS(&q->h->head, pos);
    return pos;
}

static inline __attribute__((always_inline)) int spsc_try_reserve(pshm_queue *q, size_t n,
                                                                 void **ptr)
{
    const uint64_t R = q->g.ring_size;
    uint64_t pos = q->pos, off = pos & q->mask, rec = q_rec64(n), pad = 0;

    if (off + rec > R)
        pad = R - off;
    if (pad + rec > R - (pos - q->other)) {
        q->other = Q_LDA(&q->h->tail);
        if (pos - q->other > R || (q->other & 15))
            return -PSHM_EBADFORMAT; /* the tail makes no sense */
        if (pad + rec > R - (pos - q->other))
            return -EAGAIN;
    }
    uint64_t mpos = pos + pad;
    PSHM__FAULT("queue.reserve.announced");
    Q_ST(&q->self->cur, pos + 1); /* the reservation starts at pos (its PAD, if any) */
    if (pad) {
        struct qrec *pr = (struct qrec *)(q->ring + off);
        Q_ST(&pr->len, Q_R_PAD | (uint32_t)(pad - Q_REC));
        Q_ST(&pr->tries, 0);
    }
    struct qrec *r = (struct qrec *)(q->ring + (mpos & q->mask));
    Q_ST(&r->tries, 0);
    set_pending(q, Q_RESERVED, mpos, (unsigned char *)r, n);
    q->p_state = pad ? pos + 1 : 0;
    *ptr = r + 1;
    return 0;
}

static int spsc_commit(pshm_queue *q, size_t n)
{
    struct qrec *r = (struct qrec *)q->p_hdr;
    uint64_t next = q->p_pos + q_rec64(n);

    Q_ST(&r->len, (uint32_t)n);
    PSHM__FAULT("queue.commit.before_word");
    if (q->p_state) {
        struct qrec *pr = (struct qrec *)(q->ring + ((q->p_state - 1) & q->mask));
        Q_STR(&r->seq, q->p_pos + 1);
        PSHM__FAULT("queue.commit.between_words");
        Q_STS(&pr->seq, q->p_state); /* the PAD last: it commits both */
    } else {
        Q_STS(&r->seq, q->p_pos + 1);
    }
    PSHM__FAULT("queue.commit.after_word");
    Q_STR(&q->h->head, next);
    PSHM__FAULT("queue.commit.after_head");
    q->pos = next;
    Q_ST(&q->self->cur, 0);
    Q_INC(&q->self->sent, 1);
    Q_INC(&q->self->bytes, n);
    q->pending = Q_NONE;
    pshm__q_wake(&q->h->ne_seq, &q->h->ne_sleepers);
    return 0;
}

static inline __attribute__((always_inline)) int spsc_try_peek(pshm_queue *q, const void **ptr,
                                                              size_t *len)
{
    uint64_t mpos, next;
    uint32_t l;
    int r = spsc_committed(q, q->pos, &mpos, &l, &next);

    if (r == 0) {
        /* empty; closed only if still empty after we saw the flag */
        if (!Q_LDA(&q->h->closed))
            return -EAGAIN;
        r = spsc_committed(q, q->pos, &mpos, &l, &next);
        if (r == 0)
            return -PSHM_ECLOSED;
    }
    if (r < 0)
        return r;
    struct qrec *rec = (struct qrec *)(q->ring + (mpos & q->mask));
    PSHM__FAULT("queue.peek.announced");
    announce(q, mpos);
    PSHM__FAULT_TAG("queue.peek.claimed", rec + 1, Q_R_LEN(l));
    set_pending(q, Q_PEEKED, mpos, (unsigned char *)rec, Q_R_LEN(l));
    q->p_next = next;
    set_info(q, Q_LD(&rec->tries) >> 24, !!(l & Q_R_RETURNED), 0);
    *ptr = rec + 1;
    *len = Q_R_LEN(l);
    return 0;
}

static int spsc_release(pshm_queue *q)
{
    Q_STS(&q->h->tail, q->p_next);
    PSHM__FAULT("queue.release.after_word");
    q->pos = q->p_next;
    if (q->self) {
        Q_ST(&q->self->cur, 0);
        Q_INC(&q->self->received, 1);
    }
    q->pending = Q_NONE;
    pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
    return 0;
}

/* ------------------------------------------------------------ MPMC */

/*
 * Moving head and tail. Both are hints that only ever name a position whose
 * cells before it are all claimed (or consumed): a cell is claimed by a CAS
 * on its own word, and an index moves from pos to pos + 1 only after the
 * cell at pos was seen claimed. So:
 *  - help_advance: someone else's claim at pos, seen by us. Several may
 *    help at once: a CAS, and a load first so that helpers that come late
 *    (the common case: the claimer moved it) do not take the line for a
 *    locked instruction that would fail anyway.
 *  - claimed_advance: our own claim at pos just succeeded. Whoever moves
 *    the index from pos now moves it to pos + 1 (the claimer, or a helper
 *    who saw our claim), so a plain release store of pos + 1 is enough and
 *    saves a locked instruction a message on each side. If the index moved
 *    on meanwhile (a helper, then further claims), the store can set it back,
 *    but only to pos + 1, a position just after a claimed cell: it never
 *    skips an unclaimed one, and the walk back to the front costs at most
 *    one lap of helps (the ring cannot run more than a lap past a cell that
 *    we hold and have not published or freed). Callers move the index this
 *    way before they publish or free the cell (the rule the recovery and
 *    the waits rely on: a freed cell is behind tail).
 */
static inline void claimed_advance(uint64_t *idx, uint64_t pos)
{
    if ((int64_t)(Q_LD(idx) - pos) <= 0)
        Q_STR(idx, pos + 1);
}

/* Retries of the MPMC loops before reporting "busy": they only go round when
 * another process moved something, so this is never reached unless the
 * shared state is corrupt (then -EAGAIN beats spinning forever). */
#define Q_BUDGET(q) (4 * (q)->g.nslots + 1024)

static int mpmc_try_reserve(pshm_queue *q, size_t n, void **ptr)
{
    struct qhdr *h = q->h;

    for (uint64_t budget = Q_BUDGET(q); budget; budget--) {
        uint64_t pos = Q_LDA(&h->head);
        struct qcell *c = q_cell(q, pos);
        uint64_t s = Q_LDA(&c->word);
        int64_t d = q_pdiff(Q_S_POS(s), pos);
        if (d == 0) {
            if (Q_S_PHASE(s) == Q_FREE) {
                PSHM__FAULT("queue.reserve.announced");
                Q_ST(&q->self->cur, pos + 1); /* announce before claiming */
                uint64_t w = Q_MK(pos, Q_WRITING, 0, 0, q->me);
                if (Q_CAS(&c->word, &s, w)) {
                    claimed_advance(&h->head, pos);
                    set_pending(q, Q_RESERVED, pos, (unsigned char *)c, n);
                    q->p_state = w;
                    *ptr = c + 1;
                    return 0;
                }
                continue;
            }
            help_advance(&h->head, pos); /* claimed by someone who did not move head */
            continue;
        }
        if (d > 0) {
            help_advance(&h->head, pos); /* pos was written and consumed already */
            continue;
        }
        /* the cell still holds an older lap: full, unless it is left behind */
        if (Q_LDA(&h->head) != pos)
            continue;
        uint64_t spos = Q_S_POS(s);
        unsigned ph = Q_S_PHASE(s);
        if ((ph == Q_LOST || ph == Q_FULL) && q_pdiff(spos, Q_LDA(&h->tail)) < 0) {
            if (ph == Q_LOST) {
                /* a dropped message behind the consumers: recycle it */
                if (Q_CAS(&c->word, &s, Q_MK(spos + q->g.nslots, Q_FREE, 0, 0, 0)))
                    continue;
                continue;
            }
            /* a message put back behind the consumers: make sure they look */
            if (q->other != s) {
                q->other = s;
                __atomic_fetch_add(&h->redeliver_epoch, 1, __ATOMIC_SEQ_CST);
                pshm__q_wake(&h->ne_seq, &h->ne_sleepers);
            }
        }
        return -EAGAIN;
    }
    return -EAGAIN;
}

static int mpmc_commit(pshm_queue *q, size_t n)
{
    struct qcell *c = (struct qcell *)q->p_hdr;
    uint64_t s = q->p_state;

    Q_ST(&c->len, (uint32_t)n);
    q->pending = Q_NONE;
    PSHM__FAULT("queue.commit.before_word");
    if (!Q_CAS(&c->word, &s, Q_MK(q->p_pos, Q_FULL, 0, 0, 0))) {
        Q_ST(&q->self->cur, 0);
        return -PSHM_EBADFORMAT; /* someone took the cell from a live writer */
    }
    PSHM__FAULT("queue.commit.after_word");
    Q_ST(&q->self->cur, 0);
    Q_INC(&q->self->sent, 1);
    Q_INC(&q->self->bytes, n);
    pshm__q_wake(&q->h->ne_seq, &q->h->ne_sleepers);
    return 0;
}

/* We hold cell c in state s (READING by us): hand the message out. */
static int mpmc_deliver(pshm_queue *q, struct qcell *c, uint64_t pos, uint64_t s,
                        const void **ptr, size_t *len)
{
    uint32_t l = Q_LD(&c->len);

    if (l > q->g.max_msg) {
        /* corrupt: drop it (counted) rather than hand out a bad length */
        if (Q_CAS(&c->word, &s, Q_MK(pos + q->g.nslots, Q_FREE, 0, 0, 0)) && q->self)
            Q_INC(&q->self->dropped, 1);
        if (q->self)
            Q_ST(&q->self->cur, 0);
        pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
        return -PSHM_EBADFORMAT;
    }
    PSHM__FAULT_TAG("queue.peek.claimed", c + 1, l);
    set_pending(q, Q_PEEKED, pos, (unsigned char *)c, l);
    q->p_state = s;
    set_info(q, Q_S_TRIES(s), Q_S_RET(s), 0);
    *ptr = c + 1;
    *len = l;
    return 0;
}

/* Messages put back behind the dequeue position (a consumer died or closed
 * holding them): claim the first one. -EAGAIN if there is none. */
static int mpmc_orphans(pshm_queue *q, const void **ptr, size_t *len)
{
    uint64_t deq = Q_LDA(&q->h->tail);

    for (uint64_t i = 0; i < q->g.nslots; i++) {
        struct qcell *c = (struct qcell *)(q->ring + i * q->g.slot_size);
        uint64_t s = Q_LDA(&c->word);
        unsigned ph = Q_S_PHASE(s);
        if (ph != Q_FULL && ph != Q_LOST)
            continue;
        uint64_t spos = Q_S_POS(s);
        if ((spos & q->mask) != i || q_pdiff(spos, deq) >= 0)
            continue;
        if (ph == Q_LOST) {
            if (Q_CAS(&c->word, &s, Q_MK(spos + q->g.nslots, Q_FREE, 0, 0, 0)))
                pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
            continue;
        }
        announce(q, spos);
        PSHM__FAULT("queue.peek.announced");
        uint64_t w = Q_MK(spos, Q_READING, Q_S_TRIES(s), Q_S_RET(s), q->me < 0 ? 0 : q->me);
        if (Q_CAS(&c->word, &s, w))
            return mpmc_deliver(q, c, spos, w, ptr, len);
    }
    return -EAGAIN;
}

/*
 * A whole scan that started after reading epoch ep found no message put
 * back: every put-back up to ep (made FULL before its epoch bump) is
 * claimed. Say so, so that a handle opened later starts from ep instead of
 * scanning the whole ring at its first peek: that scan, once per handle,
 * made a fresh handle's first message cost O(slots) and a consumer with
 * many handles (the MPI bridge's window) O(handles x slots). A put-back
 * whose bump is missing (its recoverer died) is found as before: the
 * producer that meets it bumps the epoch. Only ever raised.
 */
static void orphans_clean(struct qhdr *h, uint64_t ep)
{
    uint64_t c = Q_LDA(&h->orphans_clean);
    while ((int64_t)(ep - c) > 0 && !Q_CAS(&h->orphans_clean, &c, ep))
        ;
}

static int mpmc_try_peek(pshm_queue *q, const void **ptr, size_t *len)
{
    struct qhdr *h = q->h;
    int final = 0;

    uint64_t ep = Q_LDA(&h->redeliver_epoch);
    if (ep != q->last_epoch) {
        int r = mpmc_orphans(q, ptr, len);
        if (r != -EAGAIN)
            return r; /* keep last_epoch: there may be more */
        q->last_epoch = ep;
        if (q->fd >= 0)
            orphans_clean(h, ep);
    }
    for (uint64_t budget = Q_BUDGET(q); budget; budget--) {
        uint64_t pos, s;
        struct qcell *c;
        int64_t d;
        int r = q_mpmc_look(q, h, &pos, &c, &s, &d);
        if (r == Q_LOOK_FULL) {
            announce(q, pos);
            PSHM__FAULT("queue.peek.announced");
            uint64_t w = Q_MK(pos, Q_READING, Q_S_TRIES(s), Q_S_RET(s), q->me < 0 ? 0 : q->me);
            if (Q_CAS(&c->word, &s, w)) {
                claimed_advance(&h->tail, pos);
                return mpmc_deliver(q, c, pos, w, ptr, len);
            }
            continue;
        }
        if (r == Q_LOOK_AGAIN)
            continue;
        /* empty: nothing committed at pos (or an older lap still unreleased) */
        r = q_mpmc_empty(q, h, pos, c, s, d, &final);
        if (r == Q_LOOK_AGAIN)
            continue;
        if (r != Q_LOOK_BEHIND)
            return r;
        r = mpmc_orphans(q, ptr, len);
        if (r != -EAGAIN)
            return r;
    }
    return -EAGAIN;
}

static int mpmc_release(pshm_queue *q)
{
    struct qcell *c = (struct qcell *)q->p_hdr;
    uint64_t s = q->p_state;
    int ok = Q_CAS(&c->word, &s, Q_MK(q->p_pos + q->g.nslots, Q_FREE, 0, 0, 0));

    PSHM__FAULT("queue.release.after_word");
    q->pending = Q_NONE;
    if (q->self) {
        Q_ST(&q->self->cur, 0);
        if (ok)
            Q_INC(&q->self->received, 1);
    }
    pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
    return ok ? 0 : -PSHM_EBADFORMAT;
}

/*
 * MPMC producer spinning on a full ring. The cell at head frees when a
 * consumer releases the message of the previous lap in it, and a consumer
 * moves tail past a message before it frees its cell (claimed_advance):
 * while tail stays where it is, the next cell to free is one already
 * claimed, or nothing. So poll tail, a line consumers write once a message,
 * with plain reads until it moves (at most Q_TAIL_POLLS), and only then
 * look at the cell again: polling the cell itself takes the line the
 * consumer is about to write its release into, message after message.
 * Returns the polls made (the caller's spin budget counts them).
 */
#define Q_TAIL_POLLS 64u
static unsigned mpmc_await_tail(pshm_queue *q)
{
    uint64_t t = Q_LD(&q->h->tail);
    unsigned k = 1;

    q_relax();
    while (k < Q_TAIL_POLLS && Q_LD(&q->h->tail) == t) {
        q_relax();
        k++;
    }
    return k;
}

/* Before sleeping: is a dead participant in our way? */
static void mpmc_check_way(pshm_queue *q, int producer)
{
    struct qhdr *h = q->h;
    uint64_t pos = Q_LDA(producer ? &h->head : &h->tail);
    uint64_t s = Q_LDA(&q_cell(q, pos)->word);
    unsigned ph = Q_S_PHASE(s);

    if (ph == Q_WRITING || ph == Q_READING)
        (void)pshm__q_reap(q, Q_S_PART(s));
    pshm__q_scan(q, 0);
}

/* ------------------------------------------------------------ BROADCAST */

/*
 * The producer may write message P only if every live subscriber has read
 * message P - nslots. It keeps a cached minimum of the cursors (q->other)
 * and recomputes it only when that says "full". A subscriber joining
 * publishes its cursor and then bumps sub_epoch; the producer publishes
 * each minimum it computes (pub_min) and recomputes if sub_epoch moved
 * meanwhile. Both sides store then load with seq_cst, so either the
 * producer sees the new cursor, or the subscriber sees a minimum computed
 * without it and starts at that minimum instead (bcast_join).
 */
uint64_t pshm__q_bcast_min(pshm_queue *q)
{
    struct qhdr *h = q->h;

    for (;;) {
        uint64_t e1 = Q_LDS(&h->sub_epoch), min = q->pos;
        q->gate = 0;
        for (unsigned i = 0; i < q->g.nparts; i++) {
            struct qpart *pp = q_part(q, i);
            uint32_t st = Q_LDS(&pp->state);
            if (Q_P_STATUS(st) != Q_P_LIVE || Q_LD(&pp->role) != PSHM_QUEUE_CONSUMER)
                continue;
            uint64_t c = Q_LDS(&pp->cursor);
            if ((int64_t)(c - min) < 0) {
                min = c;
                q->gate = i + 1;
                q->gate_st = st;
            }
        }
        Q_STS(&h->pub_min, min);
        if (Q_LDS(&h->sub_epoch) == e1)
            return min;
    }
}

/*
 * The ring is full by the cached minimum. Is the subscriber that set it
 * (the gate) still the same holder of its slot, and still a lap behind P?
 * Then the ring is still full whoever else moved, and the whole scan (every
 * slot's lines, and a locked exchange of pub_min) can wait until the gate
 * moves. Only "still full" is decided here: going on always takes a fresh
 * scan. A gate that died stays LIVE until it is reaped (before the producer
 * sleeps, bcast_check_way), which changes its state word.
 */
static inline int bcast_gated(const pshm_queue *q, uint64_t P)
{
    if (!q->gate)
        return 0;
    struct qpart *gp = q_part(q, q->gate - 1);
    return Q_LDA(&gp->state) == q->gate_st &&
           (int64_t)(P - Q_LDA(&gp->cursor)) >= (int64_t)q->g.nslots;
}

/*
 * Where a new broadcast producer starts: at head, or after the message a
 * producer committed (the cell's word is its number) and died before moving
 * head past. Starting at head would write a second message with that
 * number, which subscribers that read the first would never see.
 */
uint64_t pshm__q_bcast_start(pshm_queue *q)
{
    uint64_t head = Q_LDA(&q->h->head), pos = head;

    for (uint64_t k = 0; k < q->g.nslots && Q_LDA(&q_cell(q, pos)->word) == pos; k++)
        pos++;
    if (pos != head)
        Q_STS(&q->h->head, pos);
    return pos;
}

static int bcast_try_reserve(pshm_queue *q, size_t n, void **ptr)
{
    uint64_t P = q->pos;

    if (!(q->g.flags & Q_F_OVERWRITE) && P - q->other >= q->g.nslots) {
        if (bcast_gated(q, P))
            return -EAGAIN;
        q->other = pshm__q_bcast_min(q);
        if (P - q->other >= q->g.nslots)
            return -EAGAIN;
    }
    struct qcell *c = q_cell(q, P);
    PSHM__FAULT("queue.reserve.announced");
    Q_ST(&q->self->cur, P + 1);
    Q_ST(&c->word, P | Q_B_BUSY); /* readers of the old message see it change */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    set_pending(q, Q_RESERVED, P, (unsigned char *)c, n);
    *ptr = c + 1;
    return 0;
}

static int bcast_commit(pshm_queue *q, size_t n)
{
    struct qcell *c = (struct qcell *)q->p_hdr;
    uint64_t P = q->p_pos;

    Q_ST(&c->len, (uint32_t)n);
    PSHM__FAULT("queue.commit.before_word");
    Q_STR(&c->word, P);
    PSHM__FAULT("queue.commit.after_word");
    Q_STS(&q->h->head, P + 1);
    PSHM__FAULT("queue.commit.after_head");
    q->pos = P + 1;
    Q_ST(&q->self->cur, 0);
    Q_INC(&q->self->sent, 1);
    Q_INC(&q->self->bytes, n);
    q->pending = Q_NONE;
    pshm__q_wake(&q->h->ne_seq, &q->h->ne_sleepers);
    return 0;
}

static void bcast_lost(pshm_queue *q, uint64_t n)
{
    q->lost_acc += n;
    if (q->self)
        Q_INC(&q->self->dropped, n);
}

static int bcast_try_peek(pshm_queue *q, const void **ptr, size_t *len)
{
    struct qhdr *h = q->h;
    const int ow = !!(q->g.flags & Q_F_OVERWRITE);

    for (uint64_t budget = 4 * q->g.nslots + 64; budget; budget--) {
        uint64_t C = q->pos;
        struct qcell *c = q_cell(q, C);
        uint64_t s1 = Q_LDA(&c->word);
        if (s1 != C) {
            /* not committed yet, or overwritten: the head tells which. (We
             * may be ahead of head for a moment: the producer stores the
             * cell's word, then head.) */
            if ((int64_t)(q->other - C) <= 0) {
                int closed = Q_LDA(&h->closed) != 0;
                uint64_t n = s1 & ~Q_B_BUSY;
                if ((int64_t)(n - C) < 0 || n == C) {
                    /* an older lap's message, or C being written: C is not
                     * committed yet. Said by the cell alone: the head's
                     * line, which the producer writes every message, is
                     * left alone while we poll an empty ring. */
                    if (!closed)
                        return -EAGAIN;
                    if (Q_LDA(&c->word) == C)
                        continue; /* committed before the close */
                    return -PSHM_ECLOSED;
                }
                q->other = Q_LDA(&h->head);
                if ((int64_t)(q->other - C) <= 0) {
                    if (Q_LDA(&c->word) == C)
                        continue; /* committed meanwhile */
                    return closed ? -PSHM_ECLOSED : -EAGAIN;
                }
            }
            if (Q_LDA(&c->word) == C)
                continue; /* the cell is written before head moves */
            if (q->other - C > q->g.nslots) {
                /* the producer lapped us: the oldest messages are gone */
                bcast_lost(q, q->other - q->g.nslots - C);
                q->pos = q->other - q->g.nslots;
            } else {
                bcast_lost(q, 1); /* overwritten (or being overwritten) */
                q->pos = C + 1;
            }
            q->other = Q_LDA(&h->head);
            continue;
        }
        uint32_t l = Q_LD(&c->len);
        if (l > q->g.max_msg) {
            if (!ow || Q_LDA(&c->word) == C)
                return -PSHM_EBADFORMAT;
            bcast_lost(q, 1);
            q->pos = C + 1;
            continue;
        }
        PSHM__FAULT_TAG("queue.peek.claimed", c + 1, l);
        set_pending(q, Q_PEEKED, C, (unsigned char *)c, l);
        set_info(q, 0, 0, q->lost_acc);
        q->lost_acc = 0;
        *ptr = c + 1;
        *len = l;
        return 0;
    }
    return -EAGAIN;
}

static int bcast_release(pshm_queue *q)
{
    struct qcell *c = (struct qcell *)q->p_hdr;
    int ok = 1;

    if (q->g.flags & Q_F_OVERWRITE) {
        __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the reads of the payload come first */
        ok = Q_LD(&c->word) == q->p_pos;
    }
    q->pos = q->p_pos + 1;
    q->pending = Q_NONE;
    if (q->self) {
        if (q->g.flags & Q_F_OVERWRITE) {
            Q_ST(&q->self->cursor, q->pos);
            PSHM__FAULT("queue.release.after_word");
        } else {
            Q_STS(&q->self->cursor, q->pos);
            PSHM__FAULT("queue.release.after_word");
            pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
        }
    }
    if (!ok) {
        /* this one is lost too, and the next message delivered intact
         * reports every loss since the previous intact one */
        bcast_lost(q, 1);
        q->lost_acc += q->info.lost;
        return -PSHM_EOVERWRITTEN;
    }
    if (q->self)
        Q_INC(&q->self->received, 1);
    return 0;
}

/* Before sleeping on a full ring: drop dead subscribers that hold us back. */
static void bcast_check_way(pshm_queue *q)
{
    uint64_t P = q->pos;

    for (unsigned i = 0; i < q->g.nparts; i++) {
        struct qpart *pp = q_part(q, i);
        if (Q_P_STATUS(Q_LDA(&pp->state)) != Q_P_LIVE || Q_LD(&pp->role) != PSHM_QUEUE_CONSUMER)
            continue;
        if (P - Q_LDA(&pp->cursor) >= q->g.nslots)
            (void)pshm__q_reap(q, i);
    }
    q->other = pshm__q_bcast_min(q);
}

/* ------------------------------------------------------------ dispatch */

/* (Inlined into the callers: on the fast path a call layer costs more than
 * the work; see bench/README.md, "where the nanoseconds go".) */
static inline __attribute__((always_inline)) int try_reserve(pshm_queue *q, size_t n, void **ptr)
{
    int r;

    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC: r = spsc_try_reserve(q, n, ptr); break;
    case PSHM_QUEUE_MPMC: r = mpmc_try_reserve(q, n, ptr); break;
    default: r = bcast_try_reserve(q, n, ptr); break;
    }
    if (r == 0)
        PSHM__FAULT("queue.reserve.claimed");
    return r;
}

static inline __attribute__((always_inline)) int try_peek(pshm_queue *q, const void **ptr,
                                                         size_t *len)
{
    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC: return spsc_try_peek(q, ptr, len);
    case PSHM_QUEUE_MPMC: return mpmc_try_peek(q, ptr, len);
    default: return bcast_try_peek(q, ptr, len);
    }
}

/* The waiting part of reserve, after a first try found no room. */
static __attribute__((noinline)) int reserve_wait(pshm_queue *q, size_t n, void **ptr, int form,
                                                  const struct timespec *deadline)
{
    struct qhdr *h = q->h;
    unsigned spins = 0;
    int r;
    const int periodic = q->g.mode == PSHM_QUEUE_MPMC ||
                         (q->g.mode == PSHM_QUEUE_BROADCAST && !(q->g.flags & Q_F_OVERWRITE));

    Q_INC(&q->self->waits_full, 1);
    for (;;) {
        if (spins < q->spin) {
            if (q->g.mode == PSHM_QUEUE_MPMC) {
                spins += mpmc_await_tail(q);
            } else {
                spins++;
                q_relax();
            }
        } else {
            uint32_t s = Q_LDA(&h->nf_seq);
            Q_STS(&h->nf_sleepers, 1);
            if (Q_LDS(&h->closed))
                return -PSHM_ECLOSED;
            r = try_reserve(q, n, ptr);
            if (r != -EAGAIN)
                return r;
            if (q->g.mode == PSHM_QUEUE_MPMC)
                mpmc_check_way(q, 1);
            else if (periodic)
                bcast_check_way(q);
            if (form == Q_TIMED && pshm__q_now_ns() >= ts_ns(deadline))
                return -ETIMEDOUT;
            r = q_sleep(q, &h->nf_seq, s, form == Q_TIMED ? deadline : NULL, periodic);
            if (r != 0)
                return r;
        }
        if (Q_LD(&h->closed))
            return -PSHM_ECLOSED;
        r = try_reserve(q, n, ptr);
        if (r != -EAGAIN)
            return r;
    }
}

int pshm__q_reserve(pshm_queue *q, size_t n, void **ptr, int form,
                    const struct timespec *deadline)
{
    if (!q || !ptr)
        return -EINVAL;
    if (q->role != PSHM_QUEUE_PRODUCER || !q->self)
        return -PSHM_EROLE;
    if (q->pending != Q_NONE)
        return -PSHM_EORDER;
    if (n > q->g.max_msg)
        return -PSHM_ETOOBIG;
    if (Q_LD(&q->h->closed))
        return -PSHM_ECLOSED;
    int r = try_reserve(q, n, ptr);
    if (r != -EAGAIN || form == Q_TRY)
        return r;
    return reserve_wait(q, n, ptr, form, deadline);
}

int pshm__q_commit(pshm_queue *q, size_t n)
{
    if (!q)
        return -EINVAL;
    if (q->pending != Q_RESERVED)
        return -PSHM_EORDER;
    if (n > q->p_max)
        return -EINVAL;
    PSHM__FAULT("queue.commit.after_data");
    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC: return spsc_commit(q, n);
    case PSHM_QUEUE_MPMC: return mpmc_commit(q, n);
    default: return bcast_commit(q, n);
    }
}

int pshm__q_cancel(pshm_queue *q)
{
    if (!q)
        return -EINVAL;
    if (q->pending != Q_RESERVED)
        return -PSHM_EORDER;
    q->pending = Q_NONE;
    if (q->g.mode == PSHM_QUEUE_MPMC) {
        struct qcell *c = (struct qcell *)q->p_hdr;
        uint64_t s = q->p_state;
        (void)Q_CAS(&c->word, &s, Q_MK(q->p_pos, Q_LOST, 0, 0, 0));
        pshm__q_wake(&q->h->ne_seq, &q->h->ne_sleepers);
    }
    Q_ST(&q->self->cur, 0);
    Q_INC(&q->self->cancelled, 1);
    return 0;
}

/* The waiting part of peek, after a first try found nothing. */
static __attribute__((noinline)) int peek_wait(pshm_queue *q, const void **ptr, size_t *len,
                                               int form, const struct timespec *deadline)
{
    struct qhdr *h = q->h;
    unsigned spins = 0;
    int r;
    const int periodic = q->g.mode == PSHM_QUEUE_MPMC;

    if (q->self)
        Q_INC(&q->self->waits_empty, 1);
    for (;;) {
        if (spins < q->spin) {
            spins++;
            q_relax();
        } else {
            uint32_t s = Q_LDA(&h->ne_seq);
            Q_STS(&h->ne_sleepers, 1);
            r = try_peek(q, ptr, len);
            if (r != -EAGAIN)
                return r;
            if (periodic)
                mpmc_check_way(q, 0);
            if (form == Q_TIMED && pshm__q_now_ns() >= ts_ns(deadline))
                return -ETIMEDOUT;
            r = q_sleep(q, &h->ne_seq, s, form == Q_TIMED ? deadline : NULL, periodic);
            if (r != 0)
                return r;
        }
        r = try_peek(q, ptr, len);
        if (r != -EAGAIN)
            return r;
    }
}

int pshm__q_peek(pshm_queue *q, const void **ptr, size_t *len, int form,
                 const struct timespec *deadline)
{
    if (!q || !ptr || !len)
        return -EINVAL;
    if (q->role != PSHM_QUEUE_CONSUMER)
        return -PSHM_EROLE;
    if (q->pending == Q_MANY)
        return -PSHM_EORDER; /* a batch is held (queue_many.c) */
    if (q->pending == Q_PEEKED) {
        /* still held (e.g. recv said ETRUNC): the same message again */
        *ptr = q->p_hdr + Q_REC;
        *len = q->p_max;
        return 0;
    }
    int r = try_peek(q, ptr, len);
    if (r != -EAGAIN || form == Q_TRY)
        return r;
    return peek_wait(q, ptr, len, form, deadline);
}

int pshm__q_release(pshm_queue *q)
{
    if (!q)
        return -EINVAL;
    if (q->pending != Q_PEEKED)
        return -PSHM_EORDER;
    PSHM__FAULT_TAG("queue.release.before", q->p_hdr + Q_REC, q->p_max);
    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC: return spsc_release(q);
    case PSHM_QUEUE_MPMC: return mpmc_release(q);
    default: return bcast_release(q);
    }
}

void pshm__q_return(pshm_queue *q)
{
    if (q->pending != Q_PEEKED)
        return;
    q->pending = Q_NONE;
    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC: {
        struct qrec *r = (struct qrec *)q->p_hdr;
        Q_ST(&r->len, Q_LD(&r->len) | Q_R_RETURNED);
        Q_INC(&q->self->returned, 1);
        break;
    }
    case PSHM_QUEUE_MPMC: {
        struct qcell *c = (struct qcell *)q->p_hdr;
        uint64_t s = q->p_state;
        if (Q_CAS(&c->word, &s, Q_MK(q->p_pos, Q_FULL, Q_S_TRIES(s), 1, 0))) {
            Q_INC(&q->self->returned, 1);
            __atomic_fetch_add(&q->h->redeliver_epoch, 1, __ATOMIC_SEQ_CST);
            pshm__q_wake(&q->h->ne_seq, &q->h->ne_sleepers);
        }
        break;
    }
    default:
        break;
    }
    Q_ST(&q->self->cur, 0);
}
