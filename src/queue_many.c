/* SPDX-License-Identifier: MIT */
/*
 * queue_many.c - batch claims: one consumer handle claims many messages in
 * one call (pshm_queue_peekmany) and releases them in order
 * (pshm_queue_releasemany), SPSC and MPMC; and the recovery of a batch
 * whose holder died.
 *
 * How a batch is recorded (layout version 3). The holder's participant
 * slot says "batch" in its cursor word (unused by SPSC and MPMC consumers
 * before), stored before the first claim can be handed out and cleared
 * after the last release; cur stays 0. A recoverer that finds the word set
 * (reap_locked) treats every message of the batch as it treats one peeked
 * message (queue.c, top comment), one by one:
 *  SPSC: the consumer's tail moves only at release, so a batch is always
 *    the records from tail on; cursor = the position after its last record
 *    + 1. Every record stays in the ring until released, so a dead
 *    holder's records are all delivered again to the next consumer. The
 *    recoverer counts a try on each (gen-keyed, so a recoverer killed
 *    half-way and the next one count it once) and drops those that reached
 *    max_deliveries by moving tail past them. Each batch starts at tail, so
 *    a record's tries never exceed those of the records before it: the
 *    dropped ones are always a prefix, and moving tail is enough.
 *  MPMC: each claimed cell is READING with our participant index, exactly
 *    as for one peek, and the claimer moves the dequeue position past each
 *    cell (or finds it moved) before it claims the next, so a release that
 *    frees a cell never runs ahead of the position. cursor = 1 tells the
 *    recoverer to look at every cell for READING ones held by the dead
 *    slot (O(slots), after a death only) instead of the one cur names.
 * Counting: redeliveries and drops count messages, added once per dead
 * holder's generation (pshm__q_ev_add) before any cell changes, so a
 * recoverer killed between counting and giving back does not make the next
 * one count again.
 */
#include "queue_internal.h"
#include "os/futex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

/* Room for `more` claims after the m_n held. */
static int many_room(pshm_queue *q, size_t more)
{
    size_t want = q->m_n + more;
    if (want <= q->m_cap)
        return 0;
    if (want < 64)
        want = 64;
    uint64_t *p = realloc(q->m_claim, want * sizeof *p);
    if (!p)
        return -ENOMEM;
    q->m_claim = p;
    q->m_cap = want;
    return 0;
}

/* The batch is empty again: say so in the slot. */
static void many_clear(pshm_queue *q)
{
    q->pending = Q_NONE;
    if (q->self)
        Q_STS(&q->self->cursor, 0);
}

/* ------------------------------------------------------------ SPSC */

static int spsc_many(pshm_queue *q, const void **ptrs, size_t *lens, size_t max, size_t *n)
{
    uint64_t pos = q->m_n ? q->m_next : q->pos;
    size_t k = 0;
    int r = 0;

    while (k < max) {
        uint64_t mpos, next;
        uint32_t l;
        r = pshm__q_spsc_committed(q, pos, &mpos, &l, &next);
        if (r <= 0)
            break;
        if (next - q->pos > q->g.ring_size) {
            r = -PSHM_EBADFORMAT; /* more than a ring's worth after tail */
            break;
        }
        struct qrec *rec = (struct qrec *)(q->ring + (mpos & q->mask));
        q->m_claim[q->m_n + k] = next;
        ptrs[k] = rec + 1;
        lens[k] = Q_R_LEN(l);
        pos = next;
        k++;
    }
    if (k) {
        /* announced before the caller sees any of them (the records stay
         * in the ring until released whatever happens) */
        if (q->self)
            Q_STS(&q->self->cursor, pos + 1);
        q->m_next = pos;
        q->m_n += k;
        q->pending = Q_MANY;
        *n = k;
        return 0;
    }
    if (r < 0)
        return r;
    /* empty; closed only if still empty after we saw the flag */
    if (!Q_LDA(&q->h->closed))
        return -EAGAIN;
    uint64_t m, nx;
    uint32_t l;
    r = pshm__q_spsc_committed(q, pos, &m, &l, &nx);
    return r == 0 ? -PSHM_ECLOSED : r < 0 ? r : -EAGAIN;
}

static int spsc_release_many(pshm_queue *q, size_t n)
{
    uint64_t to = q->m_claim[n - 1];

    Q_STS(&q->h->tail, to);
    q->pos = to;
    if (q->self)
        Q_INC(&q->self->received, n);
    return 0;
}

/* ------------------------------------------------------------ MPMC */

/* We hold cell c in state w (READING by us): add it to the batch, or drop
 * it if its length is corrupt. 1 taken, 0 dropped. */
static int mpmc_take(pshm_queue *q, struct qcell *c, uint64_t pos, uint64_t w, const void **ptr,
                     size_t *len)
{
    uint32_t l = Q_LD(&c->len);

    if (l > q->g.max_msg) {
        if (Q_CAS(&c->word, &w, Q_MK(pos + q->g.nslots, Q_FREE, 0, 0, 0)) && q->self)
            Q_INC(&q->self->dropped, 1);
        pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
        return 0;
    }
    q->m_claim[q->m_n] = w;
    q->m_n++;
    *ptr = c + 1;
    *len = l;
    return 1;
}

static unsigned me_part(const pshm_queue *q) { return q->me < 0 ? 0u : (unsigned)q->me; }

/* Messages put back behind the dequeue position: claim up to max. Sets
 * *bad if one was corrupt (dropped). */
static size_t mpmc_orphans_many(pshm_queue *q, const void **ptrs, size_t *lens, size_t max,
                                int *bad)
{
    uint64_t deq = Q_LDA(&q->h->tail);
    size_t k = 0;

    for (uint64_t i = 0; i < q->g.nslots && k < max; i++) {
        struct qcell *c = (struct qcell *)(q->ring + i * q->g.slot_size);
        uint64_t s = Q_LDA(&c->word);
        unsigned ph = Q_S_PHASE(s);
        uint64_t spos = Q_S_POS(s);
        if ((ph != Q_FULL && ph != Q_LOST) || (spos & q->mask) != i || q_pdiff(spos, deq) >= 0)
            continue;
        if (ph == Q_LOST) {
            if (Q_CAS(&c->word, &s, Q_MK(spos + q->g.nslots, Q_FREE, 0, 0, 0)))
                pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
            continue;
        }
        uint64_t w = Q_MK(spos, Q_READING, Q_S_TRIES(s), Q_S_RET(s), me_part(q));
        if (!Q_CAS(&c->word, &s, w))
            continue;
        if (mpmc_take(q, c, spos, w, &ptrs[k], &lens[k]))
            k++;
        else
            *bad = 1;
    }
    return k;
}

/*
 * After claiming the cell at pos: claim the full cells after it, up to
 * room, without moving the dequeue position for each (one move past them
 * all, by the caller, before any of them can be released or freed). A
 * consumer that meets one of them meanwhile finds it READING and moves the
 * position itself, as for any claimed cell. Stops at the first cell that
 * is not full or whose length is corrupt (the ordinary path drops it, after
 * the position moved). Returns how many it claimed.
 */
static size_t mpmc_run(pshm_queue *q, uint64_t pos, const void **ptrs, size_t *lens, size_t room)
{
    size_t k = 0;

    while (k < room) {
        uint64_t p = pos + 1 + k;
        struct qcell *c = q_cell(q, p);
        uint64_t s = Q_LDA(&c->word);
        if (Q_S_PHASE(s) != Q_FULL || Q_S_POS(s) != (p & Q_POS_MASK))
            break;
        uint32_t l = Q_LD(&c->len); /* stable while FULL: written before it */
        if (l > q->g.max_msg)
            break;
        uint64_t w = Q_MK(p, Q_READING, Q_S_TRIES(s), Q_S_RET(s), me_part(q));
        if (!Q_CAS(&c->word, &s, w))
            break;
        q->m_claim[q->m_n++] = w;
        ptrs[k] = c + 1;
        lens[k] = l;
        k++;
    }
    return k;
}

/* Move the dequeue position from somewhere in [pos, end) to end. */
static void advance_to(uint64_t *idx, uint64_t end)
{
    /* Also from behind pos: a single claimer's plain store (queue_ops.c,
     * claimed_advance) may have set the index back, but only to just after
     * a cell it claimed, and every position before pos was claimed when we
     * read pos from the index; so moving it to end skips no unclaimed cell,
     * and our cells are behind it before any is released. */
    uint64_t t = Q_LDA(idx);
    while (q_pdiff(t, end) < 0 && !Q_CAS(idx, &t, end))
        ;
}

static int mpmc_many(pshm_queue *q, const void **ptrs, size_t *lens, size_t max, size_t *n)
{
    struct qhdr *h = q->h;
    size_t k = 0, held = q->m_n;
    int final = 0, bad = 0, r = -EAGAIN;

    if (held == 0 && q->self)
        Q_STS(&q->self->cursor, 1); /* before the first claim */
    uint64_t ep = Q_LDA(&h->redeliver_epoch);
    if (ep != q->last_epoch) {
        k = mpmc_orphans_many(q, ptrs, lens, max, &bad);
        if (k < max)
            q->last_epoch = ep;
    }
    for (uint64_t budget = 4 * q->g.nslots + 1024; budget && k < max && !bad; budget--) {
        uint64_t pos, s;
        struct qcell *c;
        int64_t d;
        int look = q_mpmc_look(q, h, &pos, &c, &s, &d);
        if (look == Q_LOOK_FULL) {
            uint64_t w = Q_MK(pos, Q_READING, Q_S_TRIES(s), Q_S_RET(s), me_part(q));
            if (Q_CAS(&c->word, &s, w)) {
                if (Q_LD(&c->len) > q->g.max_msg) {
                    help_advance(&h->tail, pos); /* before it is freed */
                    (void)mpmc_take(q, c, pos, w, &ptrs[k], &lens[k]); /* drops it */
                    bad = 1;
                    continue;
                }
                (void)mpmc_take(q, c, pos, w, &ptrs[k], &lens[k]);
                k++;
                size_t run = mpmc_run(q, pos, ptrs + k, lens + k, max - k);
                k += run;
                /* past them all before any can be released */
                advance_to(&h->tail, pos + 1 + run);
            }
            continue;
        }
        if (look == Q_LOOK_AGAIN)
            continue;
        /* nothing committed at pos */
        if (k)
            break;
        look = q_mpmc_empty(q, h, pos, c, s, d, &final);
        if (look == Q_LOOK_AGAIN)
            continue;
        if (look != Q_LOOK_BEHIND) {
            r = look; /* -EAGAIN, or -PSHM_ECLOSED */
            break;
        }
        k = mpmc_orphans_many(q, ptrs, lens, max, &bad);
    }
    if (k) {
        q->pending = Q_MANY;
        *n = k;
        return 0;
    }
    if (held == 0)
        many_clear(q);
    return bad ? -PSHM_EBADFORMAT : r;
}

static int mpmc_release_many(pshm_queue *q, size_t n)
{
    size_t ok = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t s = q->m_claim[i], pos = Q_S_POS(s);
        struct qcell *c = q_cell(q, pos);
        ok += Q_CAS(&c->word, &s, Q_MK(pos + q->g.nslots, Q_FREE, 0, 0, 0));
    }
    if (q->self)
        Q_INC(&q->self->received, ok);
    return ok == n ? 0 : -PSHM_EBADFORMAT; /* a cell was taken from a live reader */
}

/* ------------------------------------------------------------ waiting */

static long long ts_ns(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static int try_many(pshm_queue *q, const void **ptrs, size_t *lens, size_t max, size_t *n)
{
    if (q->g.mode == PSHM_QUEUE_SPSC)
        return spsc_many(q, ptrs, lens, max, n);
    return mpmc_many(q, ptrs, lens, max, n);
}

/* Sleep until the consumers' futex word moves from s, the deadline, or (MPMC)
 * recover_ms, after looking for a dead participant in our way. */
static int many_sleep(pshm_queue *q, uint32_t s, int form, const struct timespec *deadline)
{
    struct qhdr *h = q->h;
    struct timespec lim;
    const struct timespec *tp = form == Q_TIMED ? deadline : NULL;

    if (q->g.mode == PSHM_QUEUE_MPMC) {
        uint64_t w = Q_LDA(&q_cell(q, Q_LDA(&h->tail))->word);
        if (Q_S_PHASE(w) == Q_WRITING || Q_S_PHASE(w) == Q_READING)
            (void)pshm__q_reap(q, Q_S_PART(w));
        pshm__q_scan(q, 0);
        long long t = pshm__q_now_ns() + (long long)q->recover_ms * 1000000LL;
        if (!tp || ts_ns(tp) > t) {
            lim.tv_sec = (time_t)(t / 1000000000LL);
            lim.tv_nsec = (long)(t % 1000000000LL);
            tp = &lim;
        }
    }
    if (form == Q_TIMED && pshm__q_now_ns() >= ts_ns(deadline))
        return -ETIMEDOUT;
    int r = pshm__futex_wait(&h->ne_seq, s, tp);
    if (r == -ETIMEDOUT && form == Q_TIMED && pshm__q_now_ns() >= ts_ns(deadline))
        return -ETIMEDOUT;
    return 0;
}

static int many_wait(pshm_queue *q, const void **ptrs, size_t *lens, size_t max, size_t *n,
                     int form, const struct timespec *deadline)
{
    unsigned spins = 0;
    int r;

    if (q->self)
        Q_INC(&q->self->waits_empty, 1);
    for (;;) {
        if (spins < q->spin) {
            spins++;
            q_relax();
        } else {
            uint32_t s = Q_LDA(&q->h->ne_seq);
            Q_STS(&q->h->ne_sleepers, 1);
            r = try_many(q, ptrs, lens, max, n);
            if (r != -EAGAIN)
                return r;
            r = many_sleep(q, s, form, deadline);
            if (r != 0)
                return r;
        }
        r = try_many(q, ptrs, lens, max, n);
        if (r != -EAGAIN)
            return r;
    }
}

static int peekmany(pshm_queue *q, const void **ptrs, size_t *lens, size_t max, size_t *n,
                    int form, const struct timespec *deadline)
{
    if (n)
        *n = 0;
    if (!q || !ptrs || !lens || !n || max == 0)
        return -EINVAL;
    if (q->role != PSHM_QUEUE_CONSUMER)
        return -PSHM_EROLE;
    if (q->g.mode == PSHM_QUEUE_BROADCAST)
        return -ENOTSUP;
    if (q->pending != Q_NONE && q->pending != Q_MANY)
        return -PSHM_EORDER;
    /* no more claims than the ring can hold messages */
    uint64_t most = q->g.mode == PSHM_QUEUE_SPSC ? q->g.ring_size / Q_CL : q->g.nslots;
    if (q->m_n >= most)
        return -PSHM_EORDER; /* we hold the whole ring: nothing else can come */
    if (max > most - q->m_n)
        max = (size_t)(most - q->m_n);
    int r = many_room(q, max);
    if (r != 0)
        return r;
    q->have_info = 0;
    r = try_many(q, ptrs, lens, max, n);
    if (r != -EAGAIN || form == Q_TRY)
        return r;
    return many_wait(q, ptrs, lens, max, n, form, deadline);
}

/* ------------------------------------------------------------ recovery */

static void spsc_recover(pshm_queue *q, struct qpart *pp, uint32_t gen, uint64_t end)
{
    struct qhdr *h = q->h;
    uint64_t tail = Q_LDA(&h->tail), pos = tail, drop_to = tail, nred = 0, ndrop = 0;

    if ((int64_t)(end - tail) <= 0 || end - tail > q->g.ring_size)
        return; /* all released (tail passed it), or nonsense */
    while ((int64_t)(end - pos) > 0) {
        uint64_t mpos, next;
        uint32_t l;
        if (pshm__q_spsc_committed(q, pos, &mpos, &l, &next) != 1 || next - tail > q->g.ring_size)
            break; /* not a committed record: the next consumer reports it */
        struct qrec *r = (struct qrec *)(q->ring + (mpos & q->mask));
        uint32_t tw = Q_LD(&r->tries);
        uint64_t tries = tw >> 24;
        if ((tw & Q_GEN_MASK) != gen) {
            tries = tries + 1 > 255 ? 255 : tries + 1;
            Q_STS(&r->tries, (uint32_t)(tries << 24 | gen));
        }
        if (tries >= q->g.max_deliveries && drop_to == pos) {
            ndrop++;
            drop_to = next; /* the poison prefix */
        } else {
            nred++;
        }
        pos = next;
    }
    pshm__q_ev_add(&pp->ev_drop, gen, ndrop);
    pshm__q_ev_add(&pp->ev_redeliv, gen, nred);
    if (ndrop) {
        (void)Q_CAS(&h->tail, &tail, drop_to);
        pshm__q_wake(&h->nf_seq, &h->nf_sleepers);
    }
}

static int held_by(const pshm_queue *q, uint64_t i, uint64_t s, unsigned p)
{
    return Q_S_PHASE(s) == Q_READING && Q_S_PART(s) == p && (Q_S_POS(s) & q->mask) == i;
}

static void mpmc_recover(pshm_queue *q, struct qpart *pp, unsigned p, uint32_t gen)
{
    uint64_t nred = 0, ndrop = 0;

    for (uint64_t i = 0; i < q->g.nslots; i++) {
        uint64_t s = Q_LDA(&q_cell(q, i)->word);
        if (held_by(q, i, s, p))
            *(Q_S_TRIES(s) + 1u >= q->g.max_deliveries ? &ndrop : &nred) += 1;
    }
    pshm__q_ev_add(&pp->ev_drop, gen, ndrop);
    pshm__q_ev_add(&pp->ev_redeliv, gen, nred);
    for (uint64_t i = 0; i < q->g.nslots; i++) {
        struct qcell *c = q_cell(q, i);
        uint64_t s = Q_LDA(&c->word), pos = Q_S_POS(s);
        if (!held_by(q, i, s, p))
            continue;
        unsigned t = Q_S_TRIES(s) + 1;
        uint64_t w = t >= q->g.max_deliveries ? Q_MK(pos, Q_LOST, 0, 0, 0)
                                              : Q_MK(pos, Q_FULL, t, Q_S_RET(s), 0);
        (void)Q_CAS(&c->word, &s, w);
    }
    __atomic_fetch_add(&q->h->redeliver_epoch, 1, __ATOMIC_SEQ_CST);
}

void pshm__q_many_recover(pshm_queue *q, unsigned p, uint32_t gen, uint64_t cur, uint64_t mark)
{
    struct qpart *pp = q_part(q, p);

    (void)cur; /* a batch holder keeps cur at 0 */
    if (q->g.mode == PSHM_QUEUE_SPSC)
        spsc_recover(q, pp, gen, mark - 1);
    else
        mpmc_recover(q, pp, p, gen);
}

/* Close: give every claim back, as pshm__q_return does one. */
void pshm__q_many_return(pshm_queue *q)
{
    if (q->g.mode == PSHM_QUEUE_SPSC) {
        uint64_t pos = q->pos;
        for (size_t i = 0; i < q->m_n; i++) {
            uint64_t mpos, next;
            uint32_t l;
            if (pshm__q_spsc_committed(q, pos, &mpos, &l, &next) != 1)
                break;
            struct qrec *r = (struct qrec *)(q->ring + (mpos & q->mask));
            Q_ST(&r->len, l | Q_R_RETURNED);
            pos = next;
        }
    } else {
        for (size_t i = 0; i < q->m_n; i++) {
            uint64_t s = q->m_claim[i], pos = Q_S_POS(s);
            (void)Q_CAS(&q_cell(q, pos)->word, &s,
                        Q_MK(pos, Q_FULL, Q_S_TRIES(s), 1, 0));
        }
        __atomic_fetch_add(&q->h->redeliver_epoch, 1, __ATOMIC_SEQ_CST);
    }
    if (q->self)
        Q_INC(&q->self->returned, q->m_n);
    q->m_n = 0;
    many_clear(q);
    pshm__q_wake(&q->h->ne_seq, &q->h->ne_sleepers);
}

/* ------------------------------------------------------------ public API */

int pshm_queue_peekmany(pshm_queue *q, const void **ptrs, size_t *lens, size_t max, size_t *n)
{
    return peekmany(q, ptrs, lens, max, n, Q_BLOCK, NULL);
}

int pshm_queue_trypeekmany(pshm_queue *q, const void **ptrs, size_t *lens, size_t max, size_t *n)
{
    return peekmany(q, ptrs, lens, max, n, Q_TRY, NULL);
}

int pshm_queue_timedpeekmany(pshm_queue *q, const void **ptrs, size_t *lens, size_t max,
                             size_t *n, const struct timespec *deadline)
{
    if (n)
        *n = 0;
    if (!deadline || deadline->tv_nsec < 0 || deadline->tv_nsec >= 1000000000L)
        return -EINVAL;
    return peekmany(q, ptrs, lens, max, n, Q_TIMED, deadline);
}

int pshm_queue_releasemany(pshm_queue *q, size_t n)
{
    int r;

    if (!q)
        return -EINVAL;
    if (q->role != PSHM_QUEUE_CONSUMER)
        return -PSHM_EROLE;
    if (q->pending != Q_MANY)
        return n == 0 && q->pending == Q_NONE ? 0 : -PSHM_EORDER;
    if (n > q->m_n)
        return -EINVAL;
    if (n == 0)
        return 0;
    r = q->g.mode == PSHM_QUEUE_SPSC ? spsc_release_many(q, n) : mpmc_release_many(q, n);
    q->m_n -= n;
    memmove(q->m_claim, q->m_claim + n, q->m_n * sizeof *q->m_claim);
    if (q->m_n == 0)
        many_clear(q);
    pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
    return r;
}
