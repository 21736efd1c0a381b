/* SPDX-License-Identifier: MIT */
/*
 * queue_internal.h - what src/queue*.c share: the shared layout, the handle,
 * and the hidden entry points the tests and the fuzz target use. The layout
 * and the protocols are described in src/queue.c's top comment.
 */
#ifndef PSHM_QUEUE_INTERNAL_H
#define PSHM_QUEUE_INTERNAL_H

#include "os/os.h"

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ------------------------------------------------------------ constants */

#define Q_MAGIC 0x314555514D485350ULL /* "PSHMQUE1" in memory (little-endian) */
#define Q_VERSION 3u /* 2: SPSC records on whole cache lines; 3: batch claims (queue_many.c) */
#define Q_CL 64u            /* cache line */
#define Q_HDR_SIZE 512u     /* header, 8 lines */
#define Q_PART_SIZE 128u    /* participant slot, 2 lines */
#define Q_REC 16u           /* record / cell header in front of every payload */
#define Q_RING_ALIGN 4096u  /* the ring starts on a page */
#define Q_MAX_RING ((uint64_t)1 << 40)
#define Q_MAX_MSG ((uint64_t)1 << 30)
#define Q_INIT_LIVE 1024    /* liveness byte of the initialiser */

/* header.state */
enum { Q_EMPTY = 0, Q_INITIALISING = 1, Q_READY = 2 };
/* header.flags */
#define Q_F_OVERWRITE 1u

/* participant state: low 8 bits status, high 24 bits generation */
enum { Q_P_FREE = 0, Q_P_LIVE = 1 };
#define Q_P_STATUS(s) ((s)&0xffu)
#define Q_P_GEN(s) ((s) >> 8)
#define Q_GEN_MASK 0xffffffu

/* SPSC record: flags in the top bits of len */
#define Q_R_PAD (1u << 31)
#define Q_R_RETURNED (1u << 30)
#define Q_R_LEN(l) ((l) & ((1u << 30) - 1))

/* ------------------------------------------------------------ layout */

/*
 * The header. Line 0-1: identity and geometry, written once by the
 * initialiser. Line 2: control words written rarely. Lines 3-6: the futex
 * words and the two indices, each on its own line so the producer's and the
 * consumer's stores never share one.
 */
struct qhdr {
    /* line 0 */
    uint64_t magic;
    uint32_t version;
    uint32_t abi;
    uint32_t state;
    uint32_t mode;
    uint32_t flags;
    uint32_t nparts;
    uint32_t max_deliveries;
    uint32_t rec_hdr;
    uint64_t max_msg;
    uint64_t ring_size;
    uint64_t slot_size;
    /* line 1 */
    uint64_t nslots;
    uint64_t parts_off;
    uint64_t ring_off;
    uint64_t total_size;
    int64_t creator_pid;
    uint64_t creator_start;
    uint8_t pad1[16];
    /* line 2: control */
    uint32_t closed;
    uint32_t prod_owner;      /* SPSC/BROADCAST: participant index + 1, 0 = none */
    uint32_t cons_owner;      /* SPSC: participant index + 1, 0 = none */
    uint32_t pad2a;
    uint64_t sub_epoch;       /* BROADCAST: bumped by joining subscribers */
    uint64_t redeliver_epoch; /* MPMC: bumped when a message is put back behind the consumers */
    uint64_t orphans_clean;   /* MPMC: a redeliver_epoch at which a whole scan for messages
                                 put back found none (0 in a new queue: none yet) */
    uint8_t pad2[24];
    /* line 3: consumers sleep here (not empty) */
    uint32_t ne_seq;
    uint32_t ne_sleepers;
    uint8_t pad3[56];
    /* line 4: producers sleep here (not full) */
    uint32_t nf_seq;
    uint32_t nf_sleepers;
    uint8_t pad4[56];
    /* line 5: producer index (SPSC: byte position after the last commit, a
     * hint - records carry their own commit word; MPMC: enqueue position, a
     * hint anyone may advance; BROADCAST: next message number) */
    uint64_t head;
    uint64_t pub_min;         /* BROADCAST: the producer's view of the slowest subscriber */
    uint8_t pad5[48];
    /* line 6: consumer index (SPSC tail, MPMC dequeue position) */
    uint64_t tail;
    uint8_t pad6[56];
    /* line 7 */
    uint8_t pad7[64];
};

/*
 * A participant slot. Line A: who holds it (written at claim) and the loss
 * counters that recoverers update for a dead holder. Line B: the holder's
 * own hot words.
 */
struct qpart {
    uint32_t state;
    uint32_t role;
    int64_t pid;
    uint64_t start;
    uint64_t ev_lost;    /* count << 24 | generation of the last dead holder counted */
    uint64_t ev_redeliv;
    uint64_t ev_drop;
    uint64_t cancelled;  /* by the holder: reservations cancelled / abandoned at close */
    uint64_t returned;   /* by the holder: peeked messages given back at close */
    /* line B */
    uint64_t cur;        /* pending reservation/peek: position + 1, 0 = none */
    uint64_t cursor;     /* BROADCAST subscriber: next message number; SPSC/MPMC consumer
                            holding a batch (queue_many.c): SPSC, the position after
                            its last record + 1; MPMC, 1 (its cells carry it); 0 = none */
    uint64_t sent;
    uint64_t received;
    uint64_t bytes;
    uint64_t waits_full;
    uint64_t waits_empty;
    uint64_t dropped;    /* by the holder: corrupt messages dropped, overruns seen */
};

/*
 * SPSC record header. seq is the commit word: position + 1 once the record
 * is committed (stale values from earlier laps never match). A PAD record's
 * seq commits the PAD and the record after it at once: the producer stores
 * the record's seq first, then the PAD's.
 */
struct qrec {
    uint64_t seq;
    uint32_t len;   /* payload length | Q_R_PAD | Q_R_RETURNED */
    uint32_t tries; /* tries << 24 | generation of the last dead consumer counted */
};

/* MPMC / BROADCAST cell header. */
struct qcell {
    uint64_t word; /* MPMC: state (below); BROADCAST: message number, | Q_B_BUSY while written */
    uint32_t len;
    uint32_t pad;
};

/*
 * MPMC cell state: position (40 bits, compared modulo 2^40) | phase (3) |
 * tries (5: earlier deliveries that ended in a consumer's death) |
 * returned (1) | participant (15: the holder while WRITING or READING).
 */
enum { Q_FREE = 0, Q_WRITING = 1, Q_FULL = 2, Q_READING = 3, Q_LOST = 4 };
#define Q_POS_BITS 40
#define Q_POS_MASK ((((uint64_t)1) << Q_POS_BITS) - 1)
#define Q_MK(pos, ph, tries, ret, part)                                         \
    ((((uint64_t)(pos)&Q_POS_MASK) << 24) | ((uint64_t)(ph) << 21) |           \
     ((uint64_t)(tries) << 16) | ((uint64_t)(ret) << 15) | (uint64_t)(part))
#define Q_S_POS(s) ((s) >> 24)
#define Q_S_PHASE(s) ((unsigned)(((s) >> 21) & 7u))
#define Q_S_TRIES(s) ((unsigned)(((s) >> 16) & 31u))
#define Q_S_RET(s) ((unsigned)(((s) >> 15) & 1u))
#define Q_S_PART(s) ((unsigned)((s)&0x7fffu))

/* signed distance a - b between two 40-bit positions */
static inline int64_t q_pdiff(uint64_t a, uint64_t b)
{
    return (int64_t)(((a - b) & Q_POS_MASK) << 24) >> 24;
}

#define Q_B_BUSY ((uint64_t)1 << 63)

/* ------------------------------------------------------------ atomics */

#define Q_LD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define Q_LDA(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define Q_LDS(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define Q_ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define Q_STR(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define Q_STS(p, v) ((void)__atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST))
#define Q_CAS(p, e, d)                                                          \
    __atomic_compare_exchange_n((p), (e), (d), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
/* a counter only its single writer updates */
#define Q_INC(p, n) Q_ST((p), Q_LD(p) + (n))

/* An MPMC index seen at pos whose cell is claimed by someone else: move it
 * to pos + 1 (queue_ops.c, "Moving head and tail"). Several may help at
 * once: a CAS, after a load so that late helpers (the common case: the
 * claimer moved it) do not take the line for a locked instruction that
 * would fail anyway. */
static inline void help_advance(uint64_t *idx, uint64_t pos)
{
    uint64_t e = pos;
    if (Q_LD(idx) == pos)
        (void)Q_CAS(idx, &e, pos + 1);
}

static inline void q_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ------------------------------------------------------------ geometry */

/* What validation extracts from a header; trusted (process-local) afterwards. */
typedef struct qgeom {
    uint32_t mode, flags, nparts, max_deliveries;
    uint64_t max_msg, ring_size, slot_size, nslots, ring_off, total_size;
} qgeom;

/*
 * Check a queue header at the start of `size` bytes (any alignment; it is
 * copied first). Returns 0 and *g, -EAGAIN if the state is not READY yet,
 * -PSHM_EKIND (no magic), -PSHM_EVERSION, -PSHM_EABI, -PSHM_EBADFORMAT.
 * Pure: it reads only [mem, mem + size). The fuzz target's first half.
 */
PSHM__HIDDEN int pshm__queue_validate(const void *mem, size_t size, qgeom *g);

/*
 * What pshm_queue_stat and pshm_queue_participants read, from the object
 * open as fd (size bytes; any descriptor that pread and F_OFD_GETLK take):
 * header, participant table and SPSC record headers copied out with pread.
 * st (may be NULL) and parts as for those. Also the fuzz target's
 * (tests/fuzz/fuzz_inspect.c).
 */
PSHM__HIDDEN int pshm__queue_inspect_fd(int fd, uint64_t size, pshm_queue_info *st,
                                        pshm_queue_participant *parts, size_t cap, size_t *n);

/* The ABI word this build writes and expects. */
PSHM__HIDDEN uint32_t pshm__queue_abi(void);

/*
 * Fuzz/test hook: treat `mem` (size bytes, 64-byte aligned, writable, a
 * private copy) as a queue and drain up to max messages as a detached
 * consumer (no liveness locks, no waiting), checking every bound on the
 * way. Returns the number of messages drained or a negative code.
 */
PSHM__HIDDEN long pshm__queue_fuzz_drain(void *mem, size_t size, long max);
/* The same in batches of up to `batch` claims (pshm_queue_trypeekmany;
 * BROADCAST, or batch 0: one peek at a time). */
PSHM__HIDDEN long pshm__queue_fuzz_drain_batch(void *mem, size_t size, long max, size_t batch);

/* ------------------------------------------------------------ the handle */

enum { Q_NONE = 0, Q_RESERVED = 1, Q_PEEKED = 2, Q_MANY = 3 /* a batch (queue_many.c) */ };

struct qmap; /* queue_map.c: the process's one mapping of a queue */

struct pshm_queue {
    pshm_block *blk;
    struct qmap *map;   /* base lies in it (the block's own mapping is not used) */
    unsigned char *base;
    struct qhdr *h;
    struct qpart *parts;
    struct qpart *self; /* our slot (NULL when detached) */
    unsigned char *ring;
    int fd;             /* -1 when detached */
    pid_t pid;          /* the process that opened it; a forked copy only unmaps */
    qgeom g;            /* trusted copy of the geometry */
    uint64_t mask;      /* SPSC: ring_size - 1; others: nslots - 1 */
    int me;             /* our participant index, -1 detached */
    int role;
    unsigned spin, recover_ms;
    int keep_open;
    long long next_scan_ns;
    /* indices, process-local copies */
    uint64_t pos;       /* SPSC producer: head; SPSC consumer: tail; BROADCAST: head / cursor */
    uint64_t other;     /* cached view of the other side's index / BROADCAST cached min */
    unsigned gate;      /* BROADCAST producer: index + 1 of the slowest subscriber at the
                           last pshm__q_bcast_min, 0 = none */
    uint32_t gate_st;   /* its slot's state word then */
    uint64_t last_epoch;
    /* the pending reservation or peek */
    int pending;
    uint64_t p_pos;     /* SPSC: record position; MPMC/BROADCAST: message position */
    uint64_t p_next;    /* SPSC: position after the record */
    uint64_t p_state;   /* MPMC: the cell state we hold */
    size_t p_max;       /* reserved size */
    unsigned char *p_hdr;
    /* the last message handed out */
    int have_info;
    pshm_queue_msg_info info;
    uint64_t lost_acc;  /* BROADCAST: overruns since the last message delivered */
    /* the batch of claims held (pending == Q_MANY), oldest first */
    size_t m_n, m_cap;
    uint64_t *m_claim;  /* SPSC: the position after each record; MPMC: the cell state held */
    uint64_t m_next;    /* SPSC: where the next claim starts */
};

/* ------------------------------------------------------------ shared by queue*.c */

/* queue_map.c: make blk (a fresh handle's block) use the mapping of its
 * queue that this process's handles share (its own mapping becomes that
 * mapping if it is the first), counted. 0, or -errno with *out NULL (blk
 * unchanged). pshm__q_unmap drops the count after blk is closed. */
PSHM__HIDDEN int pshm__q_map(pshm_block *blk, struct qmap **out);
PSHM__HIDDEN void pshm__q_unmap(struct qmap *m); /* NULL: nothing */

PSHM__HIDDEN long long pshm__q_now_ns(void);
/* Try to recover participant p; returns 1 if it was dead and is recovered,
 * 0 if alive (or busy, or free), <0 on error. */
PSHM__HIDDEN int pshm__q_reap(pshm_queue *q, unsigned p);
/* Recover every dead participant (rate-limited by recover_ms unless force). */
PSHM__HIDDEN void pshm__q_scan(pshm_queue *q, int force);
/* Wake whoever sleeps on seq, if the sleepers flag says someone does. The
 * caller published with a seq_cst RMW before this load; the check is
 * inline (it runs on every commit and release), the wake is not. */
PSHM__HIDDEN void pshm__q_wake_sleepers(uint32_t *seq, uint32_t *sleepers);
static inline void pshm__q_wake(uint32_t *seq, uint32_t *sleepers)
{
    if (__atomic_load_n(sleepers, __ATOMIC_SEQ_CST) != 0)
        pshm__q_wake_sleepers(seq, sleepers);
}

static inline struct qpart *q_part(const pshm_queue *q, unsigned i)
{
    return (struct qpart *)((unsigned char *)q->parts + (size_t)i * Q_PART_SIZE);
}

static inline struct qcell *q_cell(const pshm_queue *q, uint64_t pos)
{
    return (struct qcell *)(q->ring + (size_t)(pos & q->mask) * q->g.slot_size);
}

/* ------------------------------------------------------------ MPMC dequeue */

/* What a consumer's look at the MPMC dequeue position found. */
enum { Q_LOOK_FULL = 1, Q_LOOK_AGAIN = 2, Q_LOOK_EMPTY = 3, Q_LOOK_BEHIND = 4 };

/*
 * One look at the MPMC dequeue position, shared by the claim loops of one
 * message (queue_ops.c, mpmc_try_peek) and of a batch (queue_many.c,
 * mpmc_many); h is q->h, passed so that the caller's loop keeps it in a
 * register (read from q here, it was loaded again on every turn: one more
 * instruction a peek). Sets the position, its cell, the cell's word and
 * the word's lap against the position (> 0 ahead, < 0 an older lap), and
 * returns
 *  Q_LOOK_FULL: a committed message: the caller claims it (CAS FULL ->
 *    READING) and, if the CAS fails, looks again;
 *  Q_LOOK_AGAIN: the position is stale (the cell holds a later lap or a
 *    claimed message, or a LOST one, which it frees): it helped the
 *    position on; look again;
 *  Q_LOOK_EMPTY: nothing committed at the position (a free cell, one being
 *    written, an older lap not yet released): see q_mpmc_empty.
 */
static inline int q_mpmc_look(pshm_queue *q, struct qhdr *h, uint64_t *posp, struct qcell **cp,
                              uint64_t *sp, int64_t *dp)
{
    uint64_t pos = Q_LDA(&h->tail);
    struct qcell *c = q_cell(q, pos);
    uint64_t s = Q_LDA(&c->word);
    int64_t d = q_pdiff(Q_S_POS(s), pos);

    *posp = pos;
    *cp = c;
    *sp = s;
    *dp = d;
    if (d > 0) {
        help_advance(&h->tail, pos);
        return Q_LOOK_AGAIN;
    }
    if (d < 0)
        return Q_LOOK_EMPTY;
    switch (Q_S_PHASE(s)) {
    case Q_FULL:
        return Q_LOOK_FULL;
    case Q_LOST:
        /* a dead writer's reservation, or a dropped message: skip it */
        if (Q_CAS(&c->word, &s, Q_MK(pos + q->g.nslots, Q_FREE, 0, 0, 0)))
            pshm__q_wake(&h->nf_seq, &h->nf_sleepers);
        help_advance(&h->tail, pos);
        return Q_LOOK_AGAIN;
    case Q_READING:
        help_advance(&h->tail, pos);
        return Q_LOOK_AGAIN;
    default: /* FREE or WRITING: nothing at pos yet */
        return Q_LOOK_EMPTY;
    }
}

/*
 * After Q_LOOK_EMPTY at pos (cell c, word s, lap d): Q_LOOK_AGAIN if the
 * position or the cell moved meanwhile; -EAGAIN if the queue is open or a
 * producer is writing at pos; closed: -PSHM_ECLOSED if *final is set, else
 * it sets *final, recovers the dead (pshm__q_scan) and returns
 * Q_LOOK_BEHIND: the caller claims what was put back behind the position,
 * if anything, before saying closed.
 */
static inline int q_mpmc_empty(pshm_queue *q, struct qhdr *h, uint64_t pos, struct qcell *c,
                               uint64_t s, int64_t d, int *final)
{
    int closed = Q_LDA(&h->closed) != 0;

    if (Q_LDA(&h->tail) != pos || Q_LDA(&c->word) != s)
        return Q_LOOK_AGAIN;
    if (!closed || (d == 0 && Q_S_PHASE(s) == Q_WRITING))
        return -EAGAIN;
    if (*final)
        return -PSHM_ECLOSED;
    *final = 1;
    if (q->fd >= 0)
        pshm__q_scan(q, 1);
    return Q_LOOK_BEHIND;
}

/* The ring bytes of an SPSC record of an n-byte message (n < 2^32 here):
 * header and payload rounded up to whole cache lines, so the producer
 * writing record k+1 never shares a line with the consumer reading record k
 * (bench/README.md: 1.4x the 64-byte stream rate of 16-byte packing). */
static inline uint64_t q_rec64(uint64_t n) { return (Q_REC + n + Q_CL - 1) & ~(uint64_t)(Q_CL - 1); }

/* Operation forms. */
enum { Q_TRY = 0, Q_TIMED = 1, Q_BLOCK = 2 };

PSHM__HIDDEN int pshm__q_reserve(pshm_queue *q, size_t n, void **ptr, int form,
                                 const struct timespec *deadline);
PSHM__HIDDEN int pshm__q_commit(pshm_queue *q, size_t n);
PSHM__HIDDEN int pshm__q_cancel(pshm_queue *q);
PSHM__HIDDEN int pshm__q_peek(pshm_queue *q, const void **ptr, size_t *len, int form,
                              const struct timespec *deadline);
PSHM__HIDDEN int pshm__q_release(pshm_queue *q);
/* give back a pending peek (close) */
PSHM__HIDDEN void pshm__q_return(pshm_queue *q);
/* queue_many.c: give back every claim of the batch (close), and recover a
 * dead holder's batch (reap_locked, under its slot's lock; mark is the
 * slot's cursor word, nonzero). */
PSHM__HIDDEN void pshm__q_many_return(pshm_queue *q);
PSHM__HIDDEN void pshm__q_many_recover(pshm_queue *q, unsigned p, uint32_t gen, uint64_t cur,
                                       uint64_t mark);
/* queue.c: count n events for the dead holder of generation gen, at most
 * once per generation (the word is count << 24 | gen). */
PSHM__HIDDEN void pshm__q_ev_add(uint64_t *word, uint32_t gen, uint64_t n);
/* SPSC: is the record at pos committed? 1 (and the record: position after
 * any PAD, len word, next position), 0, or -PSHM_EBADFORMAT. */
PSHM__HIDDEN int pshm__q_spsc_committed(const pshm_queue *q, uint64_t pos, uint64_t *mpos,
                                        uint32_t *len, uint64_t *next);
/* SPSC: where a new producer starts (scrubs what a dead one left). */
PSHM__HIDDEN uint64_t pshm__q_spsc_start(pshm_queue *q);
PSHM__HIDDEN uint64_t pshm__q_bcast_start(pshm_queue *q);
/* BROADCAST: recompute the slowest subscriber */
PSHM__HIDDEN uint64_t pshm__q_bcast_min(pshm_queue *q);

#endif
