/* SPDX-License-Identifier: MIT */
/*
 * queue.c - zero-copy message queues in a pshm block: layout, attaching,
 * participants, crash recovery, statistics. The per-mode ring algorithms
 * are in queue_ops.c.
 *
 * Layout (version 3)
 * ------------------
 *   0     struct qhdr (512 bytes): magic "PSHMQUE1", layout version, ABI word
 *         (sizes of the header, participant, record and cell structs and the
 *         pointer width), state EMPTY -> INITIALISING -> READY, mode, flags,
 *         geometry (max_msg, ring_size, slot_size, nslots, offsets); then a
 *         line of rarely written control words (closed, role owners,
 *         epochs); the consumers' futex line; the producers' futex line; the
 *         producer index line; the consumer index line.
 *   512   nparts participant slots of 128 bytes: line A says who holds the
 *         slot (state = generation << 8 | FREE/LIVE, role, pid, start time)
 *         and carries the loss counters recoverers update; line B carries
 *         the holder's own hot words (pending position, broadcast cursor,
 *         counters), so no two processes write one line in the fast path.
 *   ring_off (page aligned) the ring:
 *         SPSC: ring_size bytes (a power of two) of records: a 16-byte
 *           header {seq, len | flags, tries} then the payload, the record
 *           padded to whole cache lines (so the two sides never write one
 *           line: layout version 2; version 1 padded to 16 bytes).
 *           seq = position + 1 is stored last and commits the record: the
 *           consumer polls the header it is about to read, not an index on
 *           another cache line. A record that would cross the ring's end is
 *           preceded by a PAD record running to the end and starts at offset
 *           0; the PAD's seq is stored after the record's and commits both.
 *           max record <= ring/2, so any message fits an empty ring.
 *           Positions only grow; offset = position & (size - 1); tail (the
 *           consumer's, on its own line) frees space; head is a hint.
 *         MPMC and BROADCAST: nslots (a power of two) cells of slot_size =
 *           round_up(16 + max_msg, 64) bytes: a 16-byte header {word, len}
 *           then the payload. Cells are whole cache lines: no false sharing.
 * Only the initialiser writes the geometry; every handle validates it once
 * (pshm__queue_validate, fuzzed) and keeps a private copy, so nothing that
 * bounds memory access is re-read from shared memory. Lengths and
 * positions read from the ring later are checked against that copy.
 *
 * Initialisation: the block is created O_EXCL-style by pshm_block_create,
 * so there is one creator; it also locks the initialiser's liveness byte
 * and moves state EMPTY -> INITIALISING -> READY. Attachers poll for READY
 * up to open_timeout_ms; INITIALISING with nobody holding that byte means
 * the creator died: -PSHM_ENOTRECOVERABLE.
 *
 * Participants and the kernel as witness
 * --------------------------------------
 * Every handle claims a slot: it first takes an exclusive OFD lock on the
 * slot's liveness byte (PSHM__LIVE_BASE + index) without waiting, and only
 * then reads the slot: FREE -> it is ours; LIVE -> its holder is dead (a
 * live holder would hold the byte), so we recover it first. The lock is
 * held for the handle's life. Recovering ("reaping") another slot takes the
 * same lock without waiting: failure means alive (or being reaped by
 * someone else right now); success means dead, and serialises recoverers.
 * A recoverer updates only idempotent state, so one killed mid-recovery
 * leaves the job to the next: loss counters are words "count << 24 |
 * generation of the last dead holder counted", so a holder's death is
 * counted once however many recoverers start on it.
 *
 * Each handle has at most one pending claim (a reservation or a peek) and
 * announces it in its slot (cur = position + 1) before making it, so a
 * recoverer knows exactly where to look. A consumer may instead hold a
 * batch of peeks (pshm_queue_peekmany, queue_many.c, layout version 3): its
 * slot's cursor word says so, and the recoverer treats every message of
 * the batch as below, one by one (SPSC: the records from tail to
 * cursor - 1; MPMC: every cell READING with the dead slot as holder):
 *  SPSC producer: nothing is visible before commit; a reservation whose
 *    record (or PAD) is not committed is a lost reservation. The producer
 *    role (prod_owner) is freed; the next producer starts after the last
 *    committed record, and first un-commits a record a producer killed
 *    between the record's and its PAD's commit stores left at the lap's
 *    start (queue_ops.c).
 *  SPSC consumer: a message at or after tail was peeked, not released: it
 *    stays at tail for the next consumer (redelivery). Its record's tries
 *    word (gen-keyed like the counters) counts consumer deaths; at
 *    max_deliveries the recoverer moves tail past it (a counted drop).
 *  MPMC: a bounded queue in the style of Vyukov's, where a cell's 64-bit
 *    state is (position, phase, tries, returned, holder). Producers claim a
 *    cell by CAS FREE(p) -> WRITING(p, me) and publish FULL(p); consumers
 *    claim FULL(p) -> READING(p, me) and release to FREE(p + nslots). The
 *    shared positions (head = enqueue, tail = dequeue) are only hints that
 *    anyone may advance past a claimed cell, so a process dying between
 *    claiming a cell and moving the position wedges nothing. A dead writer's
 *    WRITING cell becomes LOST (consumers skip it: a lost reservation); a
 *    dead reader's READING cell goes back to FULL with tries + 1, or LOST
 *    at max_deliveries (a drop). A FULL cell behind the dequeue position
 *    ("orphan") is found by consumers when redeliver_epoch changes, and
 *    producers that find one in their way bump the epoch, so a recoverer
 *    killed before bumping it cannot strand the message.
 *  BROADCAST: one producer role; subscribers keep their cursor in their
 *    slot. A dead subscriber is simply dropped from the gating set. A
 *    producer killed mid-write leaves a cell marked busy and head unmoved.
 * When recovery happens: at open (every dead slot), when a handle that has
 * to wait finds the dead party in its way, and every recover_ms while it
 * waits. Never heartbeats.
 *
 * Waiting: a sleeper reads the futex sequence word, sets the sleepers flag
 * (seq_cst), re-checks its condition and sleeps; a waker publishes with a
 * seq_cst exchange and only if the flag is set clears it, bumps the
 * sequence and wakes everyone. A sleeper that died leaves the flag set
 * until the next wake clears it: a wasted syscall at worst.
 */
#include "queue_internal.h"
#include "fault.h"
#include "inspect_internal.h"
#include "os/futex.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(struct qhdr) == Q_HDR_SIZE, "header is 8 lines");
_Static_assert(sizeof(struct qpart) == Q_PART_SIZE, "participant is 2 lines");
_Static_assert(sizeof(struct qrec) == Q_REC, "record header");
_Static_assert(sizeof(struct qcell) == Q_REC, "cell header");
_Static_assert(offsetof(struct qhdr, closed) == 128, "control line");
_Static_assert(offsetof(struct qhdr, ne_seq) == 192, "consumer futex line");
_Static_assert(offsetof(struct qhdr, nf_seq) == 256, "producer futex line");
_Static_assert(offsetof(struct qhdr, head) == 320, "producer index line");
_Static_assert(offsetof(struct qhdr, tail) == 384, "consumer index line");
_Static_assert(offsetof(struct qpart, cur) == 64, "participant hot line");
_Static_assert(Q_REC >= PSHM_QUEUE_ALIGN && Q_REC % PSHM_QUEUE_ALIGN == 0, "payload alignment");
_Static_assert(PSHM_QUEUE_MAX_PARTICIPANTS < 0x7fff && Q_INIT_LIVE >= PSHM_QUEUE_MAX_PARTICIPANTS,
               "participant index fits the cell state");

uint32_t pshm__queue_abi(void)
{
    return (uint32_t)sizeof(struct qhdr) | (uint32_t)sizeof(struct qpart) << 12 |
           (uint32_t)sizeof(struct qrec) << 20 | (uint32_t)sizeof(struct qcell) << 26 |
           (uint32_t)(sizeof(void *) == 8) << 31;
}

long long pshm__q_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *pshm_queue_mode_name(pshm_queue_mode m)
{
    switch (m) {
    case PSHM_QUEUE_SPSC: return "spsc";
    case PSHM_QUEUE_MPMC: return "mpmc";
    case PSHM_QUEUE_BROADCAST: return "broadcast";
    }
    return "unknown";
}

/* ------------------------------------------------------------ geometry */

static uint64_t pow2_up(uint64_t n)
{
    uint64_t p = 1;
    while (p < n && p < ((uint64_t)1 << 62))
        p <<= 1;
    return p;
}

static int is_pow2(uint64_t n) { return n && !(n & (n - 1)); }

static uint64_t slot_for(uint64_t max_msg) { return (Q_REC + max_msg + Q_CL - 1) / Q_CL * Q_CL; }

static uint64_t ring_off_for(uint32_t nparts)
{
    uint64_t end = Q_HDR_SIZE + (uint64_t)nparts * Q_PART_SIZE;
    return (end + Q_RING_ALIGN - 1) / Q_RING_ALIGN * Q_RING_ALIGN;
}

/* The geometry a create asks for. */
static int geom_make(uint32_t mode, uint32_t flags, uint32_t nparts, uint32_t maxdel,
                     uint64_t max_msg, uint64_t ring_bytes, uint64_t messages, qgeom *g)
{
    memset(g, 0, sizeof *g);
    if (mode < PSHM_QUEUE_SPSC || mode > PSHM_QUEUE_BROADCAST)
        return -EINVAL;
    if ((flags & Q_F_OVERWRITE) && mode != PSHM_QUEUE_BROADCAST)
        return -EINVAL;
    if (nparts < 2 || nparts > PSHM_QUEUE_MAX_PARTICIPANTS)
        return -EINVAL;
    if (maxdel < 1 || maxdel > PSHM_QUEUE_MAX_DELIVERIES)
        return -EINVAL;
    if (max_msg < 1 || max_msg > Q_MAX_MSG)
        return -EINVAL;
    g->mode = mode;
    g->flags = flags;
    g->nparts = nparts;
    g->max_deliveries = maxdel;
    g->max_msg = max_msg;
    if (mode == PSHM_QUEUE_SPSC) {
        uint64_t rec = q_rec64(max_msg), r;
        if (messages) {
            if (messages > Q_MAX_RING / rec)
                return -EINVAL;
            r = messages * rec;
        } else {
            r = ring_bytes;
        }
        if (r < 2 * rec)
            r = 2 * rec;
        if (r > Q_MAX_RING)
            return -EINVAL;
        g->ring_size = pow2_up(r);
    } else {
        uint64_t slot = slot_for(max_msg), n;
        n = messages ? messages : ring_bytes / slot;
        if (n < 2)
            n = 2;
        if (n > Q_MAX_RING / slot)
            return -EINVAL;
        n = pow2_up(n);
        if (n > Q_MAX_RING / slot)
            return -EINVAL;
        g->slot_size = slot;
        g->nslots = n;
        g->ring_size = n * slot;
    }
    g->ring_off = ring_off_for(nparts);
    g->total_size = g->ring_off + g->ring_size;
    return 0;
}

int pshm__queue_validate(const void *mem, size_t size, qgeom *g)
{
    struct qhdr h;

    if (!mem || size < sizeof h)
        return -PSHM_EKIND;
    memcpy(&h, mem, sizeof h);
    if (h.magic != Q_MAGIC) {
        /* a queue being made has no magic yet */
        if (h.magic == 0 && (h.state == Q_EMPTY || h.state == Q_INITIALISING))
            return -EAGAIN;
        return -PSHM_EKIND;
    }
    if (h.state == Q_INITIALISING || h.state == Q_EMPTY)
        return -EAGAIN;
    if (h.state != Q_READY)
        return -PSHM_EBADFORMAT;
    if (h.version != Q_VERSION)
        return -PSHM_EVERSION;
    if (h.abi != pshm__queue_abi() || h.rec_hdr != Q_REC)
        return -PSHM_EABI;
    if (h.mode < PSHM_QUEUE_SPSC || h.mode > PSHM_QUEUE_BROADCAST)
        return -PSHM_EBADFORMAT;
    if ((h.flags & ~Q_F_OVERWRITE) ||
        ((h.flags & Q_F_OVERWRITE) && h.mode != PSHM_QUEUE_BROADCAST))
        return -PSHM_EBADFORMAT;
    if (h.nparts < 2 || h.nparts > PSHM_QUEUE_MAX_PARTICIPANTS)
        return -PSHM_EBADFORMAT;
    if (h.max_deliveries < 1 || h.max_deliveries > PSHM_QUEUE_MAX_DELIVERIES)
        return -PSHM_EBADFORMAT;
    if (h.max_msg < 1 || h.max_msg > Q_MAX_MSG)
        return -PSHM_EBADFORMAT;
    if (h.parts_off != Q_HDR_SIZE || h.ring_off != ring_off_for(h.nparts))
        return -PSHM_EBADFORMAT;
    if (h.mode == PSHM_QUEUE_SPSC) {
        if (!is_pow2(h.ring_size) || h.ring_size > Q_MAX_RING ||
            h.ring_size < 2 * (q_rec64(h.max_msg)) || h.slot_size != 0 || h.nslots != 0)
            return -PSHM_EBADFORMAT;
    } else {
        if (h.slot_size != slot_for(h.max_msg) || !is_pow2(h.nslots) || h.nslots < 2 ||
            h.nslots > Q_MAX_RING / h.slot_size || h.ring_size != h.nslots * h.slot_size)
            return -PSHM_EBADFORMAT;
    }
    if (h.total_size != h.ring_off + h.ring_size || h.total_size > size)
        return -PSHM_EBADFORMAT;
    if (g) {
        memset(g, 0, sizeof *g);
        g->mode = h.mode;
        g->flags = h.flags;
        g->nparts = h.nparts;
        g->max_deliveries = h.max_deliveries;
        g->max_msg = h.max_msg;
        g->ring_size = h.ring_size;
        g->slot_size = h.slot_size;
        g->nslots = h.nslots;
        g->ring_off = h.ring_off;
        g->total_size = h.total_size;
    }
    return 0;
}

/* ------------------------------------------------------------ options */

typedef struct qopts {
    pshm_queue_mode mode;
    uint64_t ring_bytes, messages, max_msg;
    int overwrite;
    unsigned nparts, maxdel, spin, recover_ms, open_timeout_ms;
    int keep_open;
    pshm_block_options block;
} qopts;

static int read_opts(const pshm_queue_options *opt, qopts *out)
{
    pshm_queue_options o;

    pshm_queue_options_init(&o);
    if (opt) {
        if (opt->struct_size < offsetof(pshm_queue_options, mode) + sizeof opt->mode)
            return -EINVAL;
        memcpy(&o, opt, opt->struct_size < sizeof o ? opt->struct_size : sizeof o);
    }
    if (o.readonly)
        return -EINVAL; /* every role writes the queue */
    memset(out, 0, sizeof *out);
    out->mode = o.queue_mode;
    out->ring_bytes = o.ring_bytes;
    out->messages = o.messages;
    out->max_msg = o.max_msg;
    out->overwrite = o.overwrite;
    out->nparts = o.max_participants;
    out->maxdel = o.max_deliveries;
    out->spin = o.spin;
    out->recover_ms = o.recover_ms ? o.recover_ms : 1;
    out->open_timeout_ms = o.open_timeout_ms;
    out->keep_open = o.keep_open;
    PSHM__BLOCK_OPTIONS_OF(&out->block, &o);
    return 0;
}

/* ------------------------------------------------------------ identity */

static struct {
    pid_t pid;
    uint64_t start;
} ident;

static void self_identity(long *pid, uint64_t *start)
{
    pid_t me = getpid();
    if (__atomic_load_n(&ident.pid, __ATOMIC_ACQUIRE) != me) {
        uint64_t s = 0;
        (void)pshm__os_proc_start(me, &s);
        __atomic_store_n(&ident.start, s, __ATOMIC_RELAXED);
        __atomic_store_n(&ident.pid, me, __ATOMIC_RELEASE);
    }
    *pid = me;
    *start = __atomic_load_n(&ident.start, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ waking */

void pshm__q_wake_sleepers(uint32_t *seq, uint32_t *sleepers)
{
    if (__atomic_exchange_n(sleepers, 0, __ATOMIC_SEQ_CST) == 0)
        return;
    __atomic_fetch_add(seq, 1, __ATOMIC_SEQ_CST);
    (void)pshm__futex_wake(seq, INT_MAX);
}

static void wake_all(pshm_queue *q)
{
    __atomic_fetch_add(&q->h->ne_seq, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&q->h->nf_seq, 1, __ATOMIC_SEQ_CST);
    Q_STS(&q->h->ne_sleepers, 0);
    Q_STS(&q->h->nf_sleepers, 0);
    (void)pshm__futex_wake(&q->h->ne_seq, INT_MAX);
    (void)pshm__futex_wake(&q->h->nf_seq, INT_MAX);
}

/* ------------------------------------------------------------ recovery */

static int64_t live_off(unsigned i) { return PSHM__LIVE_BASE + (int64_t)i; }

void pshm__q_ev_add(uint64_t *word, uint32_t gen, uint64_t n)
{
    uint64_t w = Q_LD(word);
    if ((w & Q_GEN_MASK) == gen || n == 0)
        return;
    Q_STS(word, ((w >> 24) + n) << 24 | gen);
}

/* Count one event for the dead holder of generation gen, at most once. */
static void ev_count(uint64_t *word, uint32_t gen) { pshm__q_ev_add(word, gen, 1); }

/* SPSC: the dead consumer had peeked the record at mpos. */
static void spsc_recover_consumer(pshm_queue *q, struct qpart *pp, uint32_t gen, uint64_t mpos)
{
    struct qhdr *h = q->h;
    uint64_t tail = Q_LDA(&h->tail), off, len, tries;
    struct qrec *r;
    uint32_t tw, l;

    if ((mpos & 15) || (uint64_t)(mpos - tail) >= q->g.ring_size)
        return; /* released (tail passed it), or nonsense */
    off = mpos & q->mask;
    r = (struct qrec *)(q->ring + off);
    l = Q_LD(&r->len);
    len = Q_R_LEN(l);
    if (Q_LDA(&r->seq) != mpos + 1 || (l & Q_R_PAD) || len > q->g.max_msg ||
        off + q_rec64(len) > q->g.ring_size)
        return; /* not a committed record: leave it to the consumer, which reports it */
    tw = Q_LD(&r->tries);
    if ((tw & Q_GEN_MASK) != gen) {
        tries = (tw >> 24) + 1;
        if (tries > 255)
            tries = 255;
        Q_STS(&r->tries, (uint32_t)(tries << 24 | gen));
    } else {
        tries = tw >> 24;
    }
    PSHM__FAULT("queue.reap.tried");
    if (tries >= q->g.max_deliveries) {
        ev_count(&pp->ev_drop, gen);
        PSHM__FAULT("queue.reap.counted");
        uint64_t want = tail;
        (void)__atomic_compare_exchange_n(&h->tail, &want, mpos + q_rec64(len), 0,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        pshm__q_wake(&h->nf_seq, &h->nf_sleepers);
    } else {
        ev_count(&pp->ev_redeliv, gen);
        PSHM__FAULT("queue.reap.counted");
    }
}

/* SPSC: did the reservation starting at pos get committed? */
static int spsc_reservation_committed(pshm_queue *q, uint64_t pos)
{
    uint64_t m, nx, tail = Q_LDA(&q->h->tail);
    uint32_t l;
    if ((int64_t)(pos - tail) < 0)
        return 1; /* consumed already */
    if (pos - tail >= q->g.ring_size)
        return 0;
    return pshm__q_spsc_committed(q, pos, &m, &l, &nx) == 1;
}

/* Recover slot p, whose liveness byte we hold: its holder is dead. */
static int reap_locked(pshm_queue *q, unsigned p)
{
    struct qhdr *h = q->h;
    struct qpart *pp = q_part(q, p);
    uint32_t st = Q_LDA(&pp->state), gen, role, own;
    uint64_t cur;

    if (Q_P_STATUS(st) != Q_P_LIVE)
        return 0;
    PSHM__FAULT("queue.reap.locked");
    gen = Q_P_GEN(st);
    role = Q_LD(&pp->role);
    cur = Q_LD(&pp->cur);
    if (q->g.mode != PSHM_QUEUE_BROADCAST && role == PSHM_QUEUE_CONSUMER && Q_LD(&pp->cursor)) {
        /* it held a batch: recovered message by message (queue_many.c) */
        pshm__q_many_recover(q, p, gen, cur, Q_LD(&pp->cursor));
        cur = 0;
    }
    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC:
        if (role == PSHM_QUEUE_PRODUCER) {
            if (cur && !spsc_reservation_committed(q, cur - 1))
                ev_count(&pp->ev_lost, gen);
            PSHM__FAULT("queue.reap.counted");
            own = p + 1;
            (void)Q_CAS(&h->prod_owner, &own, 0);
        } else {
            if (cur)
                spsc_recover_consumer(q, pp, gen, cur - 1);
            own = p + 1;
            (void)Q_CAS(&h->cons_owner, &own, 0);
        }
        break;
    case PSHM_QUEUE_MPMC:
        if (cur) {
            uint64_t pos = cur - 1;
            struct qcell *c = q_cell(q, pos);
            uint64_t s = Q_LDA(&c->word);
            if (role == PSHM_QUEUE_PRODUCER && s == Q_MK(pos, Q_WRITING, 0, 0, p)) {
                ev_count(&pp->ev_lost, gen);
                PSHM__FAULT("queue.reap.counted");
                (void)Q_CAS(&c->word, &s, Q_MK(pos, Q_LOST, 0, 0, 0));
            } else if (role == PSHM_QUEUE_CONSUMER && Q_S_PHASE(s) == Q_READING &&
                       Q_S_PART(s) == p && Q_S_POS(s) == (pos & Q_POS_MASK)) {
                unsigned t = Q_S_TRIES(s) + 1;
                if (t >= q->g.max_deliveries) {
                    ev_count(&pp->ev_drop, gen);
                    PSHM__FAULT("queue.reap.counted");
                    (void)Q_CAS(&c->word, &s, Q_MK(pos, Q_LOST, 0, 0, 0));
                } else {
                    ev_count(&pp->ev_redeliv, gen);
                    PSHM__FAULT("queue.reap.counted");
                    (void)Q_CAS(&c->word, &s, Q_MK(pos, Q_FULL, t, Q_S_RET(s), 0));
                }
                __atomic_fetch_add(&h->redeliver_epoch, 1, __ATOMIC_SEQ_CST);
            }
        }
        break;
    case PSHM_QUEUE_BROADCAST:
        if (role == PSHM_QUEUE_PRODUCER) {
            if (cur && (int64_t)(Q_LDA(&h->head) - (cur - 1)) <= 0 &&
                Q_LDA(&q_cell(q, cur - 1)->word) != cur - 1) /* not committed */
                ev_count(&pp->ev_lost, gen);
            PSHM__FAULT("queue.reap.counted");
            own = p + 1;
            (void)Q_CAS(&h->prod_owner, &own, 0);
        }
        break;
    }
    PSHM__FAULT("queue.reap.before_free");
    Q_ST(&pp->cur, 0);
    if (q->g.mode != PSHM_QUEUE_BROADCAST)
        Q_ST(&pp->cursor, 0);
    Q_STS(&pp->state, gen << 8 | Q_P_FREE);
    pshm__q_wake(&h->ne_seq, &h->ne_sleepers);
    pshm__q_wake(&h->nf_seq, &h->nf_sleepers);
    return 1;
}

int pshm__q_reap(pshm_queue *q, unsigned p)
{
    int r;

    if (q->fd < 0 || (int)p == q->me || p >= q->g.nparts)
        return 0;
    if (Q_P_STATUS(Q_LDA(&q_part(q, p)->state)) != Q_P_LIVE)
        return 0;
    r = pshm__os_lock_byte(q->fd, live_off(p), 'w', 0);
    if (r == -EAGAIN)
        return 0; /* alive, or someone else is recovering it */
    if (r != 0)
        return r;
    r = reap_locked(q, p);
    PSHM__CHECK(pshm__os_lock_byte(q->fd, live_off(p), 'u', 0));
    return r;
}

void pshm__q_scan(pshm_queue *q, int force)
{
    long long now = pshm__q_now_ns();

    if (!force && now < q->next_scan_ns)
        return;
    q->next_scan_ns = now + (long long)q->recover_ms * 1000000LL;
    for (unsigned i = 0; i < q->g.nparts; i++)
        (void)pshm__q_reap(q, i);
}

/* ------------------------------------------------------------ joining */

/* Take a participant slot: lock its byte first, then look. */
static int claim_slot(pshm_queue *q, int role)
{
    long pid;
    uint64_t start;

    self_identity(&pid, &start);
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < q->g.nparts; i++) {
            struct qpart *pp = q_part(q, i);
            uint32_t st = Q_LDA(&pp->state);
            if ((Q_P_STATUS(st) == Q_P_FREE) != (pass == 0))
                continue; /* free slots first; dead ones only if none is free */
            int r = pshm__os_lock_byte(q->fd, live_off(i), 'w', 0);
            if (r == -EAGAIN)
                continue;
            if (r != 0)
                return r;
            PSHM__FAULT("queue.join.locked");
            (void)reap_locked(q, i); /* LIVE under our lock: its holder died */
            st = Q_LDA(&pp->state);
            uint32_t gen = (Q_P_GEN(st) + 1) & Q_GEN_MASK;
            if (gen == 0)
                gen = 1;
            Q_ST(&pp->role, (uint32_t)role);
            Q_ST(&pp->pid, (int64_t)pid);
            Q_ST(&pp->start, start);
            Q_ST(&pp->cur, 0);
            Q_ST(&pp->cursor, 0);
            Q_STS(&pp->state, gen << 8 | Q_P_LIVE);
            PSHM__FAULT("queue.join.claimed");
            q->me = (int)i;
            q->self = pp;
            return 0;
        }
    }
    return -PSHM_ENOSLOT;
}

static void free_slot(pshm_queue *q)
{
    if (!q->self)
        return;
    uint32_t st = Q_LD(&q->self->state);
    Q_ST(&q->self->cur, 0);
    Q_STS(&q->self->state, Q_P_GEN(st) << 8 | Q_P_FREE);
    (void)pshm__os_lock_byte(q->fd, live_off((unsigned)q->me), 'u', 0);
    q->self = NULL;
    q->me = -1;
}

/* SPSC producer/consumer, BROADCAST producer: one live holder at a time. */
static int claim_role(pshm_queue *q, uint32_t *owner)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        uint32_t o = Q_LDS(owner);
        if (o == 0) {
            if (Q_CAS(owner, &o, (uint32_t)q->me + 1))
                return 0;
            continue;
        }
        unsigned p = o - 1;
        if (p >= q->g.nparts || p == (unsigned)q->me) {
            (void)Q_CAS(owner, &o, 0); /* nonsense: nobody holds it */
            continue;
        }
        struct qpart *pp = q_part(q, p);
        if (Q_P_STATUS(Q_LDA(&pp->state)) != Q_P_LIVE) {
            (void)Q_CAS(owner, &o, 0); /* its holder left without clearing it */
            continue;
        }
        int r = pshm__q_reap(q, p);
        if (r < 0)
            return r;
        if (r == 0) {
            /* alive, or being recovered by someone else right now */
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
        }
    }
    return -PSHM_EROLE;
}

/* BROADCAST: a subscriber starts at the head, and makes sure the producer's
 * view of the slowest subscriber cannot skip it (see queue_ops.c). */
static void bcast_join(pshm_queue *q)
{
    struct qhdr *h = q->h;
    uint64_t c = Q_LDA(&h->head);

    for (;;) {
        Q_STS(&q->self->cursor, c);
        if (q->g.flags & Q_F_OVERWRITE)
            break;
        __atomic_fetch_add(&h->sub_epoch, 1, __ATOMIC_SEQ_CST);
        uint64_t m = Q_LDS(&h->pub_min);
        if ((int64_t)(m - c) <= 0)
            break;
        c = m; /* the producer may already overwrite [c, m): start at m */
    }
    q->pos = c;
    q->other = c; /* our view of head: refreshed when we catch up with it */
}

static int is_producer_alive(pshm_queue *q, unsigned i)
{
    struct qpart *pp = q_part(q, i);
    if (Q_P_STATUS(Q_LDS(&pp->state)) != Q_P_LIVE || Q_LD(&pp->role) != PSHM_QUEUE_PRODUCER)
        return 0;
    return pshm__os_query_byte(q->fd, live_off(i)) == 1;
}

/* ------------------------------------------------------------ open / create */

static void q_free(pshm_queue *q)
{
    if (!q)
        return;
    pshm__q_unmap(q->map);
    free(q->m_claim);
    free(q);
}

/*
 * The header is read with pread and validated against the object's size
 * now, never through the mapping: a peer that shrank the block since it was
 * mapped makes open fail (-PSHM_EBADFORMAT, or -PSHM_EKIND if not even a
 * header is left), never raise SIGBUS. attach checks the size once more
 * just before it first touches the mapping.
 */
static int wait_ready(pshm_block *blk, unsigned timeout_ms, qgeom *g)
{
    int fd = pshm_block_fd(blk);
    size_t size = pshm_block_size(blk);
    long long end = pshm__q_now_ns() + (long long)timeout_ms * 1000000LL;

    for (;;) {
        struct qhdr h;
        uint64_t now;
        size_t got;
        int r = pshm__inspect_size(fd, &now);
        if (r == 0)
            r = pshm__inspect_read(fd, &h, sizeof h, 0, &got);
        if (r != 0)
            return r;
        if (now < size)
            return got < sizeof h ? -PSHM_EKIND : -PSHM_EBADFORMAT; /* shrunk since mapped */
        /* validate reads sizeof h bytes, and checks the geometry against size */
        r = pshm__queue_validate(&h, got < sizeof h ? got : size, g);
        if (r != -EAGAIN)
            return r;
        int held = pshm__os_query_byte(fd, live_off(Q_INIT_LIVE));
        uint32_t st = h.state;
        if (st == Q_INITIALISING && held == 0)
            return -PSHM_ENOTRECOVERABLE; /* its creator died half way */
        if (pshm__q_now_ns() > end)
            return st == Q_EMPTY && held == 0 ? -PSHM_EKIND : -ETIMEDOUT;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static int attach(pshm_block *blk, int role, const qopts *o, pshm_queue **out)
{
    pshm_queue *q;
    int r;

    if (pshm_block_readonly(blk))
        return -EACCES;
    q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->me = -1;
    r = wait_ready(blk, o->open_timeout_ms, &q->g);
    if (r != 0)
        goto fail;
    uint64_t now;
    r = pshm__inspect_size(pshm_block_fd(blk), &now);
    if (r == 0 && now < q->g.total_size)
        r = -PSHM_EBADFORMAT; /* shrunk meanwhile: the mapping is not touched */
    if (r == 0)
        r = pshm__q_map(blk, &q->map);
    if (r != 0)
        goto fail;
    q->blk = blk;
    q->base = pshm_block_data(blk);
    q->h = (struct qhdr *)q->base;
    q->parts = (struct qpart *)(q->base + Q_HDR_SIZE);
    q->ring = q->base + q->g.ring_off;
    q->fd = pshm_block_fd(blk);
    q->pid = getpid();
    q->mask = q->g.mode == PSHM_QUEUE_SPSC ? q->g.ring_size - 1 : q->g.nslots - 1;
    q->role = role;
    q->spin = o->spin;
    q->recover_ms = o->recover_ms;
    q->keep_open = o->keep_open;
    /* MPMC consumer: look for orphans at the first peek unless a whole scan
     * since the last put-back found none (queue_ops.c, mpmc_try_peek) */
    q->last_epoch = Q_LDA(&q->h->orphans_clean);

    pshm__q_scan(q, 1); /* recover whoever died since */
    r = claim_slot(q, role);
    if (r != 0)
        goto fail;
    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC:
        r = claim_role(q, role == PSHM_QUEUE_PRODUCER ? &q->h->prod_owner : &q->h->cons_owner);
        if (r != 0)
            goto fail_slot;
        /* Only tail is checked: head is a hint, and lags behind tail when a
         * producer died between committing a record and moving head
         * (pshm__q_spsc_start copes with any value). */
        if (Q_LDA(&q->h->tail) & 15) {
            r = -PSHM_EBADFORMAT;
            goto fail_role;
        }
        PSHM__FAULT("queue.join.role");
        if (role == PSHM_QUEUE_PRODUCER) {
            q->pos = pshm__q_spsc_start(q);
            PSHM__FAULT("queue.join.started");
            q->other = Q_LDA(&q->h->tail);
        } else {
            q->pos = Q_LDA(&q->h->tail);
        }
        break;
    case PSHM_QUEUE_MPMC:
        break;
    case PSHM_QUEUE_BROADCAST:
        if (role == PSHM_QUEUE_PRODUCER) {
            r = claim_role(q, &q->h->prod_owner);
            if (r != 0)
                goto fail_slot;
            PSHM__FAULT("queue.join.role");
            q->pos = pshm__q_bcast_start(q);
            PSHM__FAULT("queue.join.started");
            q->other = pshm__q_bcast_min(q);
        } else {
            bcast_join(q);
            PSHM__FAULT("queue.join.started");
        }
        break;
    }
    if (role == PSHM_QUEUE_PRODUCER && Q_LDS(&q->h->closed)) {
        r = -PSHM_ECLOSED;
        goto fail_role;
    }
    *out = q;
    return 0;
fail_role:
    if (q->g.mode != PSHM_QUEUE_MPMC) {
        uint32_t own = (uint32_t)q->me + 1;
        (void)Q_CAS(role == PSHM_QUEUE_PRODUCER ? &q->h->prod_owner : &q->h->cons_owner, &own, 0);
    }
fail_slot:
    free_slot(q);
fail:
    q_free(q);
    return r;
}

static void init_queue(pshm_block *blk, const qgeom *g)
{
    unsigned char *base = pshm_block_data(blk);
    struct qhdr *h = (struct qhdr *)base;
    long pid;
    uint64_t start;

    self_identity(&pid, &start);
    h->version = Q_VERSION;
    h->abi = pshm__queue_abi();
    h->mode = g->mode;
    h->flags = g->flags;
    h->nparts = g->nparts;
    h->max_deliveries = g->max_deliveries;
    h->rec_hdr = Q_REC;
    h->max_msg = g->max_msg;
    h->ring_size = g->ring_size;
    h->slot_size = g->slot_size;
    h->nslots = g->nslots;
    h->parts_off = Q_HDR_SIZE;
    h->ring_off = g->ring_off;
    h->total_size = g->total_size;
    h->creator_pid = pid;
    h->creator_start = start;
    if (g->mode != PSHM_QUEUE_SPSC) {
        for (uint64_t i = 0; i < g->nslots; i++) {
            struct qcell *c = (struct qcell *)(base + g->ring_off + i * g->slot_size);
            c->word = g->mode == PSHM_QUEUE_MPMC ? Q_MK(i, Q_FREE, 0, 0, 0) : Q_B_BUSY;
        }
    }
    Q_STR(&h->magic, Q_MAGIC);
}

/* What create and open check first: out, the role, the options (into o). */
static int begin(pshm_queue_role role, const pshm_queue_options *opt, qopts *o, pshm_queue **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (role != PSHM_QUEUE_PRODUCER && role != PSHM_QUEUE_CONSUMER)
        return -EINVAL;
    return read_opts(opt, o);
}

/* Attach to blk; on failure the block is closed. */
static int attach_or_close(pshm_block *blk, int role, const qopts *o, pshm_queue **out)
{
    int r = attach(blk, role, o, out);
    if (r != 0)
        pshm_block_close(blk);
    return r;
}

int pshm_queue_create(const char *name, pshm_queue_role role, const pshm_queue_options *opt,
                      pshm_queue **out)
{
    qopts o;
    qgeom g;
    pshm_block *blk = NULL;
    int r;

    r = begin(role, opt, &o, out);
    if (r != 0)
        return r;
    if (o.overwrite && o.mode != PSHM_QUEUE_BROADCAST)
        return -EINVAL;
    r = geom_make(o.mode, o.overwrite ? Q_F_OVERWRITE : 0, o.nparts, o.maxdel, o.max_msg,
                  o.ring_bytes, o.messages, &g);
    if (r != 0)
        return r;
    if (g.total_size > SIZE_MAX)
        return -EINVAL;
    /* The block is named already INITIALISING, with the initialiser's byte
     * held: an attacher never sees a queue's zeros, so a creator that dies
     * before writing anything is -PSHM_ENOTRECOVERABLE, as one that dies
     * later, and a live one is waited for (-ETIMEDOUT), never -PSHM_EKIND. */
    uint32_t initialising = Q_INITIALISING;
    pshm__prep prep = {live_off(Q_INIT_LIVE), offsetof(struct qhdr, state), &initialising,
                       sizeof initialising};
    r = pshm__block_create_prep(name, (size_t)g.total_size, &o.block, &prep, &blk);
    if (r != 0)
        return r;
    if (!pshm_block_created(blk))
        return attach_or_close(blk, role, &o, out); /* open_existing found one */
    struct qhdr *h = pshm_block_data(blk);
    if (Q_LDA(&h->state) != Q_INITIALISING)
        r = -EEXIST; /* cannot happen: we made the block */
    if (r == 0) {
        init_queue(blk, &g);
        Q_STS(&h->state, Q_READY);
        (void)pshm__os_lock_byte(pshm_block_fd(blk), live_off(Q_INIT_LIVE), 'u', 0);
        r = attach(blk, role, &o, out);
    }
    if (r != 0) {
        (void)pshm_block_unlink(blk);
        pshm_block_close(blk);
    }
    return r;
}

int pshm_queue_open(const char *name, pshm_queue_role role, const pshm_queue_options *opt,
                    pshm_queue **out)
{
    qopts o;
    pshm_block_options bo;
    pshm_block *blk = NULL;
    int r;

    r = begin(role, opt, &o, out);
    if (r != 0)
        return r;
    pshm_block_options_init(&bo);
    bo.prefault = o.block.prefault;
    r = pshm_block_open(name, &bo, &blk);
    if (r != 0)
        return r;
    PSHM__FAULT("queue.open.mapped"); /* a peer may shrink the block now */
    return attach_or_close(blk, role, &o, out);
}

int pshm_queue_close(pshm_queue *q)
{
    int r;

    if (!q)
        return 0;
    if (q->pid != getpid() || !q->self) {
        r = pshm_block_close(q->blk); /* a forked copy: unmap only */
        q_free(q);
        return r;
    }
    if (q->pending == Q_RESERVED)
        (void)pshm__q_cancel(q);
    else if (q->pending == Q_PEEKED)
        pshm__q_return(q);
    else if (q->pending == Q_MANY)
        pshm__q_many_return(q);
    PSHM__FAULT("queue.leave.begin");
    int producer = q->role == PSHM_QUEUE_PRODUCER;
    if (q->g.mode != PSHM_QUEUE_MPMC && (producer || q->g.mode == PSHM_QUEUE_SPSC)) {
        uint32_t own = (uint32_t)q->me + 1;
        (void)Q_CAS(producer ? &q->h->prod_owner : &q->h->cons_owner, &own, 0);
    }
    unsigned me = (unsigned)q->me;
    free_slot(q);
    PSHM__FAULT("queue.leave.freed");
    if (producer && !q->keep_open) {
        /* the last producer to leave closes the queue (dead ones do not count) */
        int others = 0;
        for (unsigned i = 0; i < q->g.nparts && !others; i++)
            others = i != me && is_producer_alive(q, i);
        if (!others) {
            Q_STS(&q->h->closed, 1);
            wake_all(q);
        }
    } else if (!producer) {
        pshm__q_wake(&q->h->nf_seq, &q->h->nf_sleepers);
    }
    r = pshm_block_close(q->blk);
    q_free(q);
    return r;
}

int pshm_queue_shutdown(pshm_queue *q)
{
    if (!q)
        return -EINVAL;
    Q_STS(&q->h->closed, 1);
    wake_all(q);
    return 0;
}

/* ------------------------------------------------------------ stats */

/* SPSC: count the committed messages from tail on, trusting nothing. */
static void spsc_depth(const pshm_queue *q, uint64_t *msgs, uint64_t *bytes)
{
    uint64_t tail = Q_LDA(&q->h->tail), pos = tail, n = 0;

    for (uint64_t k = 0; k <= q->g.ring_size / Q_REC && pos - tail < q->g.ring_size; k++) {
        uint64_t m, nx;
        uint32_t l;
        if (pshm__q_spsc_committed(q, pos, &m, &l, &nx) != 1 || nx - tail > q->g.ring_size)
            break;
        n++;
        pos = nx;
    }
    *msgs = n;
    *bytes = pos - tail;
}

static void fill_stats(const pshm_queue *q, pshm_queue_info *st, pshm_queue_participant *parts,
                       size_t cap, size_t *nused)
{
    const struct qhdr *h = q->h;
    size_t used = 0;
    uint64_t min_cursor = Q_LDA(&h->head);
    int have_sub = 0;

    pshm_queue_info_init(st);
    st->queue_mode = (pshm_queue_mode)q->g.mode;
    st->overwrite = !!(q->g.flags & Q_F_OVERWRITE);
    st->shut_down = Q_LDA(&h->closed) != 0;
    st->max_participants = q->g.nparts;
    st->max_deliveries = q->g.max_deliveries;
    st->ring_bytes = q->g.ring_size;
    st->slots = q->g.mode == PSHM_QUEUE_SPSC ? 0 : q->g.nslots;
    st->max_msg = q->g.max_msg;
    for (unsigned i = 0; i < q->g.nparts; i++) {
        const struct qpart *pp = q_part(q, i);
        uint32_t s = Q_LDA(&pp->state);
        st->messages += Q_LD(&pp->sent);
        st->received += Q_LD(&pp->received);
        st->bytes += Q_LD(&pp->bytes);
        st->waits_full += Q_LD(&pp->waits_full);
        st->waits_empty += Q_LD(&pp->waits_empty);
        st->lost_reservations += (Q_LD(&pp->ev_lost) >> 24) + Q_LD(&pp->cancelled);
        st->redeliveries += (Q_LD(&pp->ev_redeliv) >> 24) + Q_LD(&pp->returned);
        st->drops += Q_LD(&pp->ev_drop) >> 24;
        if (q->g.flags & Q_F_OVERWRITE)
            st->overruns += Q_LD(&pp->dropped);
        else
            st->drops += Q_LD(&pp->dropped);
        if (Q_P_STATUS(s) != Q_P_LIVE)
            continue;
        uint32_t role = Q_LD(&pp->role);
        int alive = (int)i == q->me || (q->fd >= 0 && pshm__os_query_byte(q->fd, live_off(i)) == 1);
        if (!alive)
            st->dead++;
        else if (role == PSHM_QUEUE_PRODUCER)
            st->producers++;
        else
            st->consumers++;
        if (alive && role == PSHM_QUEUE_CONSUMER && q->g.mode == PSHM_QUEUE_BROADCAST) {
            uint64_t c = Q_LD(&pp->cursor);
            if ((int64_t)(c - min_cursor) < 0)
                min_cursor = c;
            have_sub = 1;
        }
        if (parts && used < cap) {
            /* the caller's elements are parts[0].struct_size bytes apart */
            size_t esz = parts[0].struct_size;
            pshm_queue_participant p, *o = &p;
            pshm_queue_participant_init(o);
            o->index = i;
            o->role = (pshm_queue_role)role;
            o->pid = (long)Q_LD(&pp->pid);
            o->start_time = Q_LD(&pp->start);
            o->alive = alive;
            o->sent = Q_LD(&pp->sent);
            o->received = Q_LD(&pp->received);
            o->waits_full = Q_LD(&pp->waits_full);
            o->waits_empty = Q_LD(&pp->waits_empty);
            p.struct_size = esz;
            memcpy((char *)parts + used * esz, &p, esz < sizeof p ? esz : sizeof p);
        }
        used++;
    }
    if (nused)
        *nused = used;
    switch (q->g.mode) {
    case PSHM_QUEUE_SPSC:
        if (q->ring) /* inspect has no mapping: it walks a copy itself */
            spsc_depth(q, &st->depth, &st->depth_bytes);
        break;
    case PSHM_QUEUE_MPMC: {
        int64_t d = q_pdiff(Q_LDA(&h->head), Q_LDA(&h->tail));
        st->depth = d < 0 ? 0 : (uint64_t)d > q->g.nslots ? q->g.nslots : (uint64_t)d;
        st->depth_bytes = st->depth * q->g.slot_size;
        break;
    }
    case PSHM_QUEUE_BROADCAST: {
        uint64_t d = have_sub ? Q_LDA(&h->head) - min_cursor : 0;
        st->depth = d > q->g.nslots ? q->g.nslots : d;
        st->depth_bytes = st->depth * q->g.slot_size;
        break;
    }
    }
}

static int qinfo_ok(const pshm_queue_info *out)
{
    return out && out->struct_size >= offsetof(pshm_queue_info, queue_mode) + sizeof out->queue_mode;
}

static void give(const pshm_queue_info *in, pshm_queue_info *out)
{
    size_t want = out->struct_size;

    memcpy(out, in, want < sizeof *in ? want : sizeof *in);
    out->struct_size = want;
}

int pshm_queue_fstat(const pshm_queue *q, pshm_queue_info *out)
{
    pshm_queue_info s;

    if (!q || !qinfo_ok(out))
        return -EINVAL;
    fill_stats(q, &s, NULL, 0, NULL);
    give(&s, out);
    return 0;
}

/*
 * Inspection reads the ring through a window of private memory filled with
 * pread, never through a mapping (see inspect_internal.h).
 */
typedef struct ringwin {
    int fd;
    uint64_t ring_off, size; /* where the ring starts in the object; ring bytes */
    uint64_t base;           /* ring offset of buf[0] */
    size_t len;              /* valid bytes in buf */
    unsigned char buf[1 << 16];
} ringwin;

/* The record header at ring offset off (16-aligned). 0, or -1 if the object
 * ends first (a peer shrank it). */
static int win_rec(ringwin *w, uint64_t off, struct qrec *r)
{
    if (off < w->base || off + Q_REC > w->base + w->len) {
        uint64_t left = w->size - off;
        size_t n = left < sizeof w->buf ? (size_t)left : sizeof w->buf;
        if (pshm__inspect_read(w->fd, w->buf, n, w->ring_off + off, &w->len) != 0)
            w->len = 0;
        w->base = off;
        if (w->len < Q_REC)
            return -1;
    }
    memcpy(r, w->buf + (off - w->base), sizeof *r);
    return 0;
}

/* spsc_depth over copies: count the committed records from tail on, with
 * the checks pshm__q_spsc_committed makes (commit word, PAD, length). */
static void spsc_depth_read(ringwin *w, uint64_t tail, uint64_t max_msg, uint64_t *msgs,
                            uint64_t *bytes)
{
    const uint64_t R = w->size;
    uint64_t pos = tail, n = 0;

    for (uint64_t k = 0; k <= R / Q_REC && pos - tail < R && !(pos & 15); k++) {
        uint64_t off = pos & (R - 1), at = pos, len;
        struct qrec r;
        if (win_rec(w, off, &r) != 0 || r.seq != pos + 1)
            break;
        if (r.len & Q_R_PAD) { /* the record starts the next lap */
            if (off == 0)
                break;
            at = pos + R - off;
            off = 0;
            if (win_rec(w, 0, &r) != 0 || r.seq != at + 1 || (r.len & Q_R_PAD))
                break;
        }
        len = Q_R_LEN(r.len);
        if (len > max_msg || off + q_rec64(len) > R || at + q_rec64(len) - tail > R)
            break;
        n++;
        pos = at + q_rec64(len);
    }
    *msgs = n;
    *bytes = pos - tail;
}

/* Describe the queue open as fd without joining it: stats into *st (may be
 * NULL), participants into parts. Its header and participant table are
 * copied out with pread; the liveness of each participant is asked of the
 * kernel through our descriptor (F_OFD_GETLK never waits). */
int pshm__queue_inspect_fd(int fd, uint64_t size, pshm_queue_info *st,
                           pshm_queue_participant *parts, size_t cap, size_t *n)
{
    unsigned char *buf = NULL;
    ringwin *w = NULL;
    size_t got;
    pshm_queue q;
    pshm_queue_info s;
    int r;

    memset(&q, 0, sizeof q);
    buf = pshm__inspect_alloc(Q_HDR_SIZE);
    r = buf ? pshm__inspect_read(fd, buf, Q_HDR_SIZE, 0, &got) : -ENOMEM;
    if (r == 0 && got < Q_HDR_SIZE)
        r = -PSHM_EKIND; /* too small for a queue */
    if (r == 0)
        r = pshm__queue_validate(buf, size, &q.g);
    if (r == -EAGAIN && ((const struct qhdr *)buf)->state == Q_EMPTY)
        r = -PSHM_EKIND; /* all zero: a raw block, not a queue being made */
    if (r == 0) {
        /* Header and participant table again, in one read, checked again:
         * the geometry used is the one of the copy that is used. */
        free(buf);
        buf = pshm__inspect_alloc((size_t)q.g.ring_off);
        r = buf ? pshm__inspect_read(fd, buf, (size_t)q.g.ring_off, 0, &got) : -ENOMEM;
        if (r == 0 && got < q.g.ring_off)
            r = -PSHM_EBADFORMAT; /* cut short since its size was taken */
        qgeom g2;
        if (r == 0 && (r = pshm__queue_validate(buf, size, &g2)) == 0 &&
            memcmp(&g2, &q.g, sizeof g2) != 0)
            r = -PSHM_EBADFORMAT; /* rewritten between the two reads */
    }
    if (r != 0) {
        free(buf);
        return r;
    }
    q.base = buf;
    q.h = (struct qhdr *)buf;
    q.parts = (struct qpart *)(buf + Q_HDR_SIZE);
    q.ring = NULL;
    q.fd = fd;
    q.me = -1;
    q.mask = q.g.mode == PSHM_QUEUE_SPSC ? q.g.ring_size - 1 : q.g.nslots - 1;
    fill_stats(&q, &s, parts, cap, n);
    if (q.g.mode == PSHM_QUEUE_SPSC && (w = malloc(sizeof *w)) != NULL) {
        w->fd = fd;
        w->ring_off = q.g.ring_off;
        w->size = q.g.ring_size;
        w->base = 0;
        w->len = 0;
        spsc_depth_read(w, Q_LDA(&q.h->tail), q.g.max_msg, &s.depth, &s.depth_bytes);
        free(w);
    }
    if (st)
        give(&s, st);
    free(buf);
    return 0;
}

/* The same by name: opened read-only, never mapped, never held. */
static int inspect(const char *name, pshm_queue_info *st, pshm_queue_participant *parts,
                   size_t cap, size_t *n)
{
    uint64_t size;
    int fd, r = pshm__inspect_open(name, &fd, &size);

    if (r != 0)
        return r;
    r = pshm__queue_inspect_fd(fd, size, st, parts, cap, n);
    close(fd);
    return r;
}

int pshm_queue_stat(const char *name, pshm_queue_info *out)
{
    if (!qinfo_ok(out))
        return -EINVAL;
    return inspect(name, out, NULL, 0, NULL);
}

int pshm_queue_participants(const char *name, pshm_queue_participant *parts, size_t cap,
                            size_t *n)
{
    if (cap && (!parts || parts[0].struct_size <
                              offsetof(pshm_queue_participant, index) + sizeof parts[0].index))
        return -EINVAL;
    return inspect(name, NULL, cap ? parts : NULL, cap, n);
}

/* ------------------------------------------------------------ fuzz hook */

/* Drain up to max messages of a detached consumer q in batches of up to
 * `batch` claims (pshm_queue_trypeekmany), reading every byte handed out. */
static long drain_batches(pshm_queue *q, long max, size_t batch)
{
    const void *ptrs[64];
    size_t lens[64], k = 0;
    long n = 0;
    int r = 0;

    if (batch > 64)
        batch = 64;
    while (n < max) {
        r = pshm_queue_trypeekmany(q, ptrs, lens, batch < (size_t)(max - n) ? batch : (size_t)(max - n), &k);
        if (r != 0)
            break;
        for (size_t j = 0; j < k; j++) {
            const volatile unsigned char *b = ptrs[j];
            unsigned sum = 0;
            for (size_t i = 0; i < lens[j]; i++)
                sum += b[i];
            (void)sum;
        }
        r = pshm_queue_releasemany(q, k);
        n += (long)k;
        if (r != 0)
            break;
    }
    free(q->m_claim);
    return r == 0 || r == -EAGAIN || r == -PSHM_ECLOSED ? n : r;
}

long pshm__queue_fuzz_drain(void *mem, size_t size, long max)
{
    return pshm__queue_fuzz_drain_batch(mem, size, max, 0);
}

long pshm__queue_fuzz_drain_batch(void *mem, size_t size, long max, size_t batch)
{
    pshm_queue q;
    long n = 0;
    int r;

    memset(&q, 0, sizeof q);
    r = pshm__queue_validate(mem, size, &q.g);
    if (r != 0)
        return r;
    q.base = mem;
    q.h = (struct qhdr *)q.base;
    q.parts = (struct qpart *)(q.base + Q_HDR_SIZE);
    q.ring = q.base + q.g.ring_off;
    q.fd = -1;
    q.me = -1;
    q.role = PSHM_QUEUE_CONSUMER;
    q.mask = q.g.mode == PSHM_QUEUE_SPSC ? q.g.ring_size - 1 : q.g.nslots - 1;
    q.pos = q.g.mode == PSHM_QUEUE_SPSC ? Q_LD(&q.h->tail) : 0;
    q.other = Q_LD(&q.h->head);
    if (q.g.mode == PSHM_QUEUE_BROADCAST) {
        uint64_t h = Q_LD(&q.h->head);
        q.pos = h > q.g.nslots ? h - q.g.nslots : 0;
    }
    q.last_epoch = ~(uint64_t)0;
    /* and the statistics walk */
    pshm_queue_info st;
    fill_stats(&q, &st, NULL, 0, NULL);
    if (batch && q.g.mode != PSHM_QUEUE_BROADCAST)
        return drain_batches(&q, max, batch);
    while (n < max) {
        const void *p;
        size_t len;
        r = pshm__q_peek(&q, &p, &len, Q_TRY, NULL);
        if (r != 0)
            break;
        const volatile unsigned char *b = p;
        unsigned sum = 0;
        for (size_t i = 0; i < len; i++)
            sum += b[i];
        (void)sum;
        r = pshm__q_release(&q);
        if (r != 0 && r != -PSHM_EOVERWRITTEN)
            break;
        n++;
    }
    return r == 0 || r == -EAGAIN || r == -PSHM_ECLOSED ? n : r;
}

/* ------------------------------------------------------------ public API */

static int check_deadline(const struct timespec *d)
{
    return d && d->tv_nsec >= 0 && d->tv_nsec < 1000000000L;
}

int pshm_queue_reserve(pshm_queue *q, size_t n, void **ptr)
{
    return pshm__q_reserve(q, n, ptr, Q_BLOCK, NULL);
}

int pshm_queue_tryreserve(pshm_queue *q, size_t n, void **ptr)
{
    return pshm__q_reserve(q, n, ptr, Q_TRY, NULL);
}

int pshm_queue_timedreserve(pshm_queue *q, size_t n, void **ptr, const struct timespec *deadline)
{
    if (!check_deadline(deadline))
        return -EINVAL;
    return pshm__q_reserve(q, n, ptr, Q_TIMED, deadline);
}

int pshm_queue_commit(pshm_queue *q, size_t n) { return pshm__q_commit(q, n); }
int pshm_queue_cancel(pshm_queue *q) { return pshm__q_cancel(q); }

int pshm_queue_peek(pshm_queue *q, const void **ptr, size_t *len)
{
    return pshm__q_peek(q, ptr, len, Q_BLOCK, NULL);
}

int pshm_queue_trypeek(pshm_queue *q, const void **ptr, size_t *len)
{
    return pshm__q_peek(q, ptr, len, Q_TRY, NULL);
}

int pshm_queue_timedpeek(pshm_queue *q, const void **ptr, size_t *len,
                         const struct timespec *deadline)
{
    if (!check_deadline(deadline))
        return -EINVAL;
    return pshm__q_peek(q, ptr, len, Q_TIMED, deadline);
}

int pshm_queue_release(pshm_queue *q) { return pshm__q_release(q); }

static int send_form(pshm_queue *q, const void *buf, size_t len, int form,
                     const struct timespec *deadline)
{
    void *p;
    int r;

    if (!buf && len)
        return -EINVAL;
    r = pshm__q_reserve(q, len, &p, form, deadline);
    if (r != 0)
        return r;
    PSHM__FAULT("queue.send.reserved");
    if (len)
        memcpy(p, buf, len);
    PSHM__FAULT("queue.send.copied");
    return pshm__q_commit(q, len);
}

int pshm_queue_send(pshm_queue *q, const void *buf, size_t len)
{
    return send_form(q, buf, len, Q_BLOCK, NULL);
}

int pshm_queue_trysend(pshm_queue *q, const void *buf, size_t len)
{
    return send_form(q, buf, len, Q_TRY, NULL);
}

int pshm_queue_timedsend(pshm_queue *q, const void *buf, size_t len,
                         const struct timespec *deadline)
{
    if (!check_deadline(deadline))
        return -EINVAL;
    return send_form(q, buf, len, Q_TIMED, deadline);
}

static int recv_form(pshm_queue *q, void *buf, size_t cap, size_t *len, int form,
                     const struct timespec *deadline)
{
    if (!len || (!buf && cap))
        return -EINVAL;
    for (;;) {
        const void *p;
        size_t n;
        int r = pshm__q_peek(q, &p, &n, form, deadline);
        if (r != 0)
            return r;
        *len = n;
        if (n > cap)
            return -PSHM_ETRUNC; /* stays held: the next peek/recv gets it again */
        if (n)
            memcpy(buf, p, n);
        PSHM__FAULT_TAG("queue.recv.copied", buf, n);
        r = pshm__q_release(q);
        if (r == -PSHM_EOVERWRITTEN)
            continue; /* counted; what we copied is garbage: take the next one */
        return r;
    }
}

int pshm_queue_recv(pshm_queue *q, void *buf, size_t cap, size_t *len)
{
    return recv_form(q, buf, cap, len, Q_BLOCK, NULL);
}

int pshm_queue_tryrecv(pshm_queue *q, void *buf, size_t cap, size_t *len)
{
    return recv_form(q, buf, cap, len, Q_TRY, NULL);
}

int pshm_queue_timedrecv(pshm_queue *q, void *buf, size_t cap, size_t *len,
                         const struct timespec *deadline)
{
    if (!check_deadline(deadline))
        return -EINVAL;
    return recv_form(q, buf, cap, len, Q_TIMED, deadline);
}

int pshm_queue_msginfo(const pshm_queue *q, pshm_queue_msg_info *mi)
{
    size_t want;

    if (!q || !mi || mi->struct_size < offsetof(pshm_queue_msg_info, attempts) + sizeof mi->attempts)
        return -EINVAL;
    if (!q->have_info)
        return -PSHM_EORDER;
    want = mi->struct_size;
    memcpy(mi, &q->info, want < sizeof q->info ? want : sizeof q->info);
    mi->struct_size = want;
    return 0;
}

pshm_block *pshm_queue_block(const pshm_queue *q) { return q ? q->blk : NULL; }
size_t pshm_queue_max_msg(const pshm_queue *q) { return q ? (size_t)q->g.max_msg : 0; }
