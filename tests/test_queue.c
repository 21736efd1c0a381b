/* SPDX-License-Identifier: MIT */
/* test_queue.c - queues: modes, waiting, closing, bad input, and crashes
 * (SIGKILL injection at every step of reserve/commit/peek/release). */
#include "harness.h"
#include "harness_queue.h"
#include "fault.h"
#include "queue_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static void deadline_ms(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static pshm_queue_options qopts(pshm_queue_mode mode, size_t cap, size_t max_msg)
{
    pshm_queue_options o;
    pshm_queue_options_init(&o);
    o.queue_mode = mode;
    o.ring_bytes = cap;
    o.max_msg = max_msg;
    return o;
}

/* A message that proves its own integrity: who, which, and a checksum over
 * everything, with a payload derived from (instance, seq). */
typedef struct tmsg {
    uint32_t inst, seq, len, sum;
} tmsg;

static uint32_t fnv(const unsigned char *p, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static size_t msg_len(uint32_t inst, uint32_t seq, size_t max)
{
    uint32_t x = (inst * 2654435761u) ^ (seq * 40503u);
    size_t min = sizeof(tmsg);
    return min + (x % (max - min + 1));
}

static void msg_fill(void *buf, uint32_t inst, uint32_t seq, size_t len)
{
    unsigned char *b = buf;
    tmsg m = {inst, seq, (uint32_t)len, 0};
    for (size_t i = sizeof m; i < len; i++)
        b[i] = (unsigned char)(inst * 7 + seq * 13 + i);
    m.sum = fnv(b + sizeof m, len - sizeof m, fnv((unsigned char *)&m, 12, 2166136261u));
    memcpy(b, &m, sizeof m);
}

/* 0 if intact, else a description of what is wrong. */
static const char *msg_check(const void *buf, size_t len, tmsg *out)
{
    const unsigned char *b = buf;
    tmsg m;
    if (len < sizeof m)
        return "short";
    memcpy(&m, b, sizeof m);
    if (m.len != len)
        return "length";
    if (m.sum != fnv(b + sizeof m, len - sizeof m, fnv((unsigned char *)&m, 12, 2166136261u)))
        return "checksum";
    if (out)
        *out = m;
    return NULL;
}

/* ------------------------------------------------------------ basics */

TEST(options_and_bad_arguments)
{
    const char *name = th_name("opts");
    pshm_queue_options o;
    pshm_queue *q = (pshm_queue *)1;

    o = qopts(PSHM_QUEUE_SPSC, 4096, 64);
    CHECK_ERR(pshm_queue_create(name, 0, &o, &q), -EINVAL);
    CHECK(q == NULL);
    o.queue_mode = 7;
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q), -EINVAL);
    o = qopts(PSHM_QUEUE_SPSC, 4096, 0);
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q), -EINVAL);
    o = qopts(PSHM_QUEUE_MPMC, 4096, 64);
    o.overwrite = 1; /* broadcast only */
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q), -EINVAL);
    o = qopts(PSHM_QUEUE_MPMC, 4096, 64);
    o.max_deliveries = 0;
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q), -EINVAL);
    o.max_deliveries = PSHM_QUEUE_MAX_DELIVERIES + 1;
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q), -EINVAL);
    o = qopts(PSHM_QUEUE_MPMC, 4096, 64);
    o.max_participants = PSHM_QUEUE_MAX_PARTICIPANTS + 1;
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q), -EINVAL);
    CHECK(!th_exists(name));
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -ENOENT);
    CHECK_ERR(pshm_queue_create("a/b", PSHM_QUEUE_PRODUCER, NULL, &q), -PSHM_ENAME_SLASH);
    CHECK_OK(pshm_queue_close(NULL));
    CHECK_STR(pshm_queue_mode_name(PSHM_QUEUE_MPMC), "mpmc");
    CHECK_STR(pshm_errname(-PSHM_ETOOBIG), "PSHM_ETOOBIG");
}

TEST(create_open_geometry_and_exists)
{
    const char *name = th_name("geo");
    pshm_queue_options o = qopts(PSHM_QUEUE_SPSC, 1000, 100);
    pshm_queue *p = NULL, *c = NULL, *x = NULL;

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_EQ(th_queue_stat(p).queue_mode, PSHM_QUEUE_SPSC);
    CHECK_EQ(pshm_queue_max_msg(p), 100);
    pshm_queue_info st = th_queue_stat(p);
    CHECK_EQ(st.ring_bytes, 1024); /* power of two, >= 2 records of 16 + 112 */
    CHECK_EQ(st.slots, 0);
    CHECK_EQ(st.producers, 1);
    CHECK_EQ(st.consumers, 0);
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &x), -EEXIST);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &c));
    CHECK_EQ(th_queue_stat(c).consumers, 1);
    o.open_existing = 1;
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &x), -PSHM_EROLE);
    CHECK(x == NULL);
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c)); /* attaches */
    CHECK_EQ(pshm_block_created(pshm_queue_block(c)), 0);
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(p));

    /* MPMC: slots of round_up(16 + max, 64), a power of two of them */
    o = qopts(PSHM_QUEUE_MPMC, 0, 100);
    o.messages = 5;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    st = th_queue_stat(p);
    CHECK_EQ(st.slots, 8);
    CHECK_EQ(st.max_deliveries, 3);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(p));
}

TEST(attaching_to_what_is_not_a_good_queue)
{
    const char *name = th_name("bad");
    pshm_block *b = NULL;
    pshm_queue *q = NULL;
    pshm_queue_options o;

    /* a raw block: not a queue */
    CHECK_OK(pshm_block_create(name, 100, NULL, &b));
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EKIND);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
    CHECK_OK(pshm_block_create(name, 8192, NULL, &b));
    memset(pshm_block_data(b), 'x', 8192);
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EKIND);
    CHECK_ERR(pshm_queue_stat(name, &(pshm_queue_info){.struct_size = sizeof(pshm_queue_info)}), -PSHM_EKIND);
    /* a zeroed block nobody initialises: not a queue, after the timeout */
    memset(pshm_block_data(b), 0, 8192);
    pshm_queue_options_init(&o);
    o.open_timeout_ms = 50;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &q), -PSHM_EKIND);
    /* INITIALISING with nobody holding the initialiser's byte: its creator died */
    ((struct qhdr *)pshm_block_data(b))->state = Q_INITIALISING;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &q), -PSHM_ENOTRECOVERABLE);
    /* ... and with a live initialiser: we wait, then time out */
    CHECK_OK(pshm__os_lock_byte(pshm_block_fd(b), PSHM__LIVE_BASE + Q_INIT_LIVE, 'w', 0));
    pid_t child = fork();
    if (child == 0) {
        pshm_queue *qq = NULL;
        _exit(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &qq) == -ETIMEDOUT ? 0 : 1);
    }
    CHECK_EQ(th_wait(child, 10000), 0);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));

    /* a real queue, then damaged field by field */
    pshm_queue *p = NULL;
    o = qopts(PSHM_QUEUE_MPMC, 4096, 64);
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    struct qhdr *h = pshm_block_data(pshm_queue_block(p));
    struct qhdr saved = *h;
    h->version = Q_VERSION + 1; /* a later layout */
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EVERSION);
    *h = saved;
    h->version = 1; /* 16-byte-packed SPSC records: not this layout */
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EVERSION);
    *h = saved;
    h->version = 2; /* before batch claims: its recoverers would strand a batch */
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EVERSION);
    *h = saved;
    h->abi ^= 1;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EABI);
    *h = saved;
    h->nslots = 1u << 30;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_queue_stat(name, &(pshm_queue_info){.struct_size = sizeof(pshm_queue_info)}), -PSHM_EBADFORMAT);
    *h = saved;
    h->max_msg = 1000; /* slot size no longer matches */
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EBADFORMAT);
    *h = saved;
    h->mode = 9;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EBADFORMAT);
    *h = saved;
    h->state = 77;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EBADFORMAT);
    *h = saved;
    CHECK(q == NULL);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q));
    CHECK_OK(pshm_queue_close(q));
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(p));
}

/* ------------------------------------------------------------ single process */

static void roundtrip_mode(pshm_queue_mode mode)
{
    const char *name = th_name("rt");
    pshm_queue_options o = qopts(mode, 4096, 200);
    pshm_queue *p = NULL, *c = NULL;
    void *w;
    const void *r;
    size_t len;
    char buf[256];

    o.spin = 10;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    /* roles */
    CHECK_ERR(pshm_queue_trypeek(p, &r, &len), -PSHM_EROLE);
    CHECK_ERR(pshm_queue_tryreserve(c, 8, &w), -PSHM_EROLE);
    /* empty */
    CHECK_ERR(pshm_queue_trypeek(c, &r, &len), -EAGAIN);
    CHECK_ERR(pshm_queue_tryrecv(c, buf, sizeof buf, &len), -EAGAIN);
    struct timespec dl;
    deadline_ms(&dl, 20);
    CHECK_ERR(pshm_queue_timedpeek(c, &r, &len, &dl), -ETIMEDOUT);
    CHECK_ERR(pshm_queue_release(c), -PSHM_EORDER);
    CHECK_ERR(pshm_queue_commit(p, 1), -PSHM_EORDER);
    CHECK_ERR(pshm_queue_cancel(p), -PSHM_EORDER);
    /* too big */
    CHECK_ERR(pshm_queue_tryreserve(p, 201, &w), -PSHM_ETOOBIG);
    CHECK_ERR(pshm_queue_send(p, buf, 201), -PSHM_ETOOBIG);
    /* zero-copy */
    CHECK_OK(pshm_queue_reserve(p, 200, &w));
    CHECK(((uintptr_t)w % PSHM_QUEUE_ALIGN) == 0);
    CHECK_ERR(pshm_queue_tryreserve(p, 1, &w), -PSHM_EORDER);
    memcpy(w, "hello", 5);
    CHECK_ERR(pshm_queue_commit(p, 201), -EINVAL);
    CHECK_OK(pshm_queue_commit(p, 5));
    CHECK_OK(pshm_queue_peek(c, &r, &len));
    CHECK(((uintptr_t)r % PSHM_QUEUE_ALIGN) == 0);
    CHECK_EQ(len, 5);
    CHECK(memcmp(r, "hello", 5) == 0);
    const void *r2;
    CHECK_OK(pshm_queue_peek(c, &r2, &len)); /* held: the same one */
    CHECK(r2 == r);
    pshm_queue_msg_info mi;
    pshm_queue_msg_info_init(&mi);
    CHECK_OK(pshm_queue_msginfo(c, &mi));
    CHECK_EQ(mi.attempts, 0);
    CHECK_EQ(mi.lost, 0);
    CHECK_OK(pshm_queue_release(c));
    /* copying, zero length, truncation */
    CHECK_OK(pshm_queue_send(p, "", 0));
    CHECK_OK(pshm_queue_send(p, "world!", 6));
    CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
    CHECK_EQ(len, 0);
    CHECK_ERR(pshm_queue_recv(c, buf, 3, &len), -PSHM_ETRUNC);
    CHECK_EQ(len, 6);
    CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
    CHECK_EQ(len, 6);
    CHECK(memcmp(buf, "world!", 6) == 0);
    /* cancel */
    CHECK_OK(pshm_queue_reserve(p, 10, &w));
    CHECK_OK(pshm_queue_cancel(p));
    CHECK_OK(pshm_queue_send(p, "after", 5));
    CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
    CHECK_EQ(len, 5);
    CHECK_ERR(pshm_queue_tryrecv(c, buf, sizeof buf, &len), -EAGAIN);
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.messages, 4);
    CHECK_EQ(st.bytes, 16);
    CHECK_EQ(st.received, 4);
    CHECK_EQ(st.lost_reservations, 1);
    CHECK_EQ(st.waits_empty, 1); /* the timed peek */
    CHECK_EQ(st.depth, 0);
    /* closing the last producer: drain, then ECLOSED */
    CHECK_OK(pshm_queue_send(p, "last", 4));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
    CHECK_EQ(len, 4);
    CHECK_ERR(pshm_queue_recv(c, buf, sizeof buf, &len), -PSHM_ECLOSED);
    CHECK_ERR(pshm_queue_trypeek(c, &r, &len), -PSHM_ECLOSED);
    CHECK(th_queue_stat(c).shut_down);
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p), -PSHM_ECLOSED);
    CHECK(p == NULL);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(c));
}

TEST(spsc_roundtrip) { roundtrip_mode(PSHM_QUEUE_SPSC); }
TEST(mpmc_roundtrip) { roundtrip_mode(PSHM_QUEUE_MPMC); }
TEST(broadcast_roundtrip) { roundtrip_mode(PSHM_QUEUE_BROADCAST); }

static void full_mode(pshm_queue_mode mode, int overwrite)
{
    const char *name = th_name("full");
    pshm_queue_options o = qopts(mode, 0, 48);
    pshm_queue *p = NULL, *c = NULL;
    char buf[64];
    size_t len;
    int n = 0;

    o.messages = 4;
    o.overwrite = overwrite;
    o.spin = 5;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    for (;;) {
        int r = pshm_queue_trysend(p, &n, sizeof n);
        if (r == -EAGAIN)
            break;
        CHECK_OK(r);
        if (++n > 1000)
            break;
    }
    if (overwrite) {
        CHECK_EQ(n, 1001); /* never full */
        CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
        pshm_queue_msg_info mi;
        pshm_queue_msg_info_init(&mi);
        CHECK_OK(pshm_queue_msginfo(c, &mi));
        CHECK_EQ(mi.lost, 1001 - 4);
        int first;
        memcpy(&first, buf, sizeof first);
        CHECK_EQ(first, 1001 - 4);
        CHECK_EQ(th_queue_stat(c).overruns, 1001 - 4);
    } else {
        CHECK(n >= 4);
        CHECK(n <= 8);
        struct timespec dl;
        deadline_ms(&dl, 20);
        CHECK_ERR(pshm_queue_timedsend(p, &n, sizeof n, &dl), -ETIMEDOUT);
        CHECK_EQ(th_queue_stat(p).waits_full, 1);
        CHECK_EQ(th_queue_stat(p).depth, (uint64_t)n);
        CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
        int first;
        memcpy(&first, buf, sizeof first);
        CHECK_EQ(first, 0);
        CHECK_OK(pshm_queue_trysend(p, &n, sizeof n));
    }
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_queue_close(p));
}

TEST(spsc_full_and_timeout) { full_mode(PSHM_QUEUE_SPSC, 0); }
TEST(mpmc_full_and_timeout) { full_mode(PSHM_QUEUE_MPMC, 0); }
TEST(broadcast_blocking_full_and_timeout) { full_mode(PSHM_QUEUE_BROADCAST, 0); }
TEST(broadcast_overwrite_never_full) { full_mode(PSHM_QUEUE_BROADCAST, 1); }

TEST(spsc_wraps_with_padding_contiguous_and_aligned)
{
    const char *name = th_name("wrap");
    pshm_queue_options o = qopts(PSHM_QUEUE_SPSC, 1024, 300);
    pshm_queue *p = NULL, *c = NULL;
    unsigned char *ring = NULL;
    int wrapped_to_start = 0;

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_EQ(th_queue_stat(p).ring_bytes, 1024);
    size_t ring_off = (Q_HDR_SIZE + 64 * Q_PART_SIZE + Q_RING_ALIGN - 1) / Q_RING_ALIGN * Q_RING_ALIGN;
    ring = (unsigned char *)pshm_block_data(pshm_queue_block(p)) + ring_off;
    uint32_t next = 0;
    for (uint32_t seq = 0; seq < 3000; seq++) {
        size_t len = 16 + (seq * 37) % 285;
        void *w;
        int r = pshm_queue_tryreserve(p, len, &w);
        if (r == -EAGAIN || seq % 7 == 6) {
            /* full (or now and then): drain, so the ring wraps at many points */
            const void *rp;
            size_t l;
            if (r == 0)
                CHECK_OK(pshm_queue_cancel(p));
            while (pshm_queue_trypeek(c, &rp, &l) == 0) {
                tmsg m;
                CHECK(((uintptr_t)rp % 16) == 0);
                CHECK(msg_check(rp, l, &m) == NULL);
                CHECK_EQ(m.seq, next);
                next++;
                CHECK_OK(pshm_queue_release(c));
            }
            r = pshm_queue_tryreserve(p, len, &w);
        }
        CHECK_OK(r);
        CHECK(((uintptr_t)w % 16) == 0);
        CHECK((unsigned char *)w >= ring + Q_REC);
        CHECK((unsigned char *)w + len <= ring + 1024); /* contiguous, inside the ring */
        CHECK(((unsigned char *)w - Q_REC - ring) % Q_CL == 0); /* each record on its own lines */
        if ((unsigned char *)w == ring + Q_REC)
            wrapped_to_start++;
        msg_fill(w, 1, seq, len);
        CHECK_OK(pshm_queue_commit(p, len));
    }
    const void *rp;
    size_t l;
    while (pshm_queue_trypeek(c, &rp, &l) == 0) {
        tmsg m;
        CHECK(msg_check(rp, l, &m) == NULL);
        CHECK_EQ(m.seq, next);
        next++;
        CHECK_OK(pshm_queue_release(c));
    }
    CHECK_EQ(next, 3000);
    CHECK(wrapped_to_start > 50);
    CHECK_EQ(th_queue_stat(c).received, 3000);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_queue_close(p));
}

TEST(spsc_roles_are_exclusive_and_pass_on)
{
    const char *name = th_name("role");
    pshm_queue_options o = qopts(PSHM_QUEUE_SPSC, 4096, 64);
    pshm_queue *p = NULL, *p2 = NULL, *c = NULL, *c2 = NULL;
    char buf[64];
    size_t len;

    o.keep_open = 1;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p2), -PSHM_EROLE);
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c2), -PSHM_EROLE);
    CHECK_OK(pshm_queue_send(p, "one", 3));
    CHECK_OK(pshm_queue_close(p)); /* keep_open: the queue stays open */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p2));
    CHECK_OK(pshm_queue_send(p2, "two", 3));
    CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c2));
    CHECK_OK(pshm_queue_recv(c2, buf, sizeof buf, &len));
    CHECK(len == 3 && memcmp(buf, "two", 3) == 0);
    CHECK_OK(pshm_queue_shutdown(c2)); /* anyone may shut it down */
    CHECK_ERR(pshm_queue_send(p2, "x", 1), -PSHM_ECLOSED);
    CHECK_ERR(pshm_queue_recv(c2, buf, sizeof buf, &len), -PSHM_ECLOSED);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p2)));
    CHECK_OK(pshm_queue_close(c2));
    CHECK_OK(pshm_queue_close(p2));
}

TEST(closing_with_a_held_message_gives_it_back)
{
    for (int mode = PSHM_QUEUE_SPSC; mode <= PSHM_QUEUE_MPMC; mode++) {
        const char *name = th_name(mode == PSHM_QUEUE_SPSC ? "back1" : "back2");
        pshm_queue_options o = qopts(mode, 4096, 64);
        pshm_queue *p = NULL, *c = NULL;
        const void *r;
        size_t len;
        char buf[64];

        CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
        CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
        CHECK_OK(pshm_queue_send(p, "a", 1));
        CHECK_OK(pshm_queue_send(p, "b", 1));
        CHECK_OK(pshm_queue_peek(c, &r, &len));
        CHECK_OK(pshm_queue_close(c));
        CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
        CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
        CHECK(len == 1 && buf[0] == 'a');
        pshm_queue_msg_info mi;
        pshm_queue_msg_info_init(&mi);
        CHECK_OK(pshm_queue_msginfo(c, &mi));
        CHECK_EQ(mi.returned, 1);
        CHECK_EQ(mi.attempts, 0);
        CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
        CHECK(len == 1 && buf[0] == 'b');
        CHECK_EQ(th_queue_stat(c).redeliveries, 1);
        CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
        CHECK_OK(pshm_queue_close(c));
        CHECK_OK(pshm_queue_close(p));
    }
}

/* ------------------------------------------------------------ multi-process */

static int run_producer(const char *name, uint32_t inst, uint32_t count, size_t max, int zero_copy)
{
    pshm_queue *q = NULL;
    pshm_queue_options o;
    unsigned char buf[70000];

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &q) != 0)
        return 10;
    for (uint32_t seq = 0; seq < count; seq++) {
        size_t len = msg_len(inst, seq, max);
        if (zero_copy) {
            void *w;
            if (pshm_queue_reserve(q, len, &w) != 0)
                return 11;
            msg_fill(w, inst, seq, len);
            if (pshm_queue_commit(q, len) != 0)
                return 12;
        } else {
            msg_fill(buf, inst, seq, len);
            if (pshm_queue_send(q, buf, len) != 0)
                return 13;
        }
    }
    pshm_queue_close(q);
    return 0;
}

HELPER(producer)
{
    /* name inst count max zero_copy */
    return run_producer(argv[0], (uint32_t)atoi(argv[1]), (uint32_t)atoi(argv[2]),
                        (size_t)atoi(argv[3]), atoi(argv[4]));
}

TEST_TIMEOUT(spsc_two_processes_order_and_integrity, 120)
{
    const char *name = th_name("sp2");
    pshm_queue_options o = qopts(PSHM_QUEUE_SPSC, 8192, 1000);
    pshm_queue *c = NULL;
    const uint32_t N = 200000;

    o.spin = 100;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    pid_t pid = th_spawn("producer", name, "7", "200000", "1000", "1", NULL);
    for (uint32_t seq = 0; seq < N; seq++) {
        const void *r;
        size_t len;
        tmsg m;
        CHECK_OK(pshm_queue_peek(c, &r, &len));
        const char *bad = msg_check(r, len, &m);
        if (bad)
            th_fail(__FILE__, __LINE__, "message %u: %s", seq, bad);
        CHECK_EQ(m.inst, 7);
        CHECK_EQ(m.seq, seq);
        CHECK_EQ(len, msg_len(7, seq, 1000));
        CHECK_OK(pshm_queue_release(c));
    }
    CHECK_EQ(th_wait(pid, 60000), 0);
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.messages, N);
    CHECK_EQ(st.received, N);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(c));
}

/* A consumer process: counts every (inst, seq) it gets in a shared table. */
typedef struct tally {
    uint32_t bad, order;
    uint32_t got[4][20000];
} tally;

static int run_consumer(const char *name, const char *tname, int check_order)
{
    pshm_queue *q = NULL;
    pshm_block *tb = NULL;
    uint32_t last[4] = {0, 0, 0, 0};
    int first[4] = {1, 1, 1, 1};

    if (pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q) != 0 ||
        pshm_block_open(tname, NULL, &tb) != 0)
        return 10;
    tally *t = pshm_block_data(tb);
    for (;;) {
        const void *r;
        size_t len;
        tmsg m;
        int rc = pshm_queue_peek(q, &r, &len);
        if (rc == -PSHM_ECLOSED)
            break;
        if (rc != 0)
            return 11;
        if (msg_check(r, len, &m) != NULL || m.inst >= 4 || m.seq >= 20000) {
            __atomic_add_fetch(&t->bad, 1, __ATOMIC_SEQ_CST);
        } else {
            if (check_order && !first[m.inst] && m.seq <= last[m.inst])
                __atomic_add_fetch(&t->order, 1, __ATOMIC_SEQ_CST);
            first[m.inst] = 0;
            last[m.inst] = m.seq;
            __atomic_add_fetch(&t->got[m.inst][m.seq], 1, __ATOMIC_SEQ_CST);
        }
        if (pshm_queue_release(q) != 0)
            return 12;
    }
    pshm_queue_close(q);
    pshm_block_close(tb);
    return 0;
}

HELPER(consumer)
{
    return run_consumer(argv[0], argv[1], atoi(argv[2]));
}

static void many_to_many(pshm_queue_mode mode, int nprod, int ncons, uint32_t count)
{
    const char *name = th_name("mm");
    const char *tname = th_name("tally");
    pshm_queue_options o = qopts(mode, 16384, 600);
    pshm_queue *ctl = NULL;
    pshm_block *tb = NULL;
    pid_t prod[4], cons[4];
    char cnt[16];

    snprintf(cnt, sizeof cnt, "%u", count);
    o.spin = 50;
    o.keep_open = mode == PSHM_QUEUE_BROADCAST; /* ctl hands the producer role over */
    CHECK_OK(pshm_block_create(tname, sizeof(tally), NULL, &tb));
    tally *t = pshm_block_data(tb);
    /* the test holds a producer handle so the queue closes only when it says */
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &ctl));
    for (int i = 0; i < ncons; i++)
        cons[i] = th_spawn("consumer", name, tname, mode == PSHM_QUEUE_MPMC ? "0" : "1", NULL);
    if (mode == PSHM_QUEUE_BROADCAST) {
        /* subscribers see what is committed after they join: wait for them */
        for (int tries = 0; th_queue_stat(ctl).consumers < (unsigned)ncons && tries < 5000; tries++)
            th_sleep_ms(2);
        CHECK_EQ(th_queue_stat(ctl).consumers, ncons);
        /* one producer role: hand it to the child */
        CHECK_OK(pshm_queue_close(ctl));
        ctl = NULL;
    }
    for (int i = 0; i < nprod; i++) {
        char inst[8];
        snprintf(inst, sizeof inst, "%d", i);
        prod[i] = th_spawn("producer", name, inst, cnt, "600", i % 2 ? "1" : "0", NULL);
    }
    for (int i = 0; i < nprod; i++)
        CHECK_EQ(th_wait(prod[i], 100000), 0);
    if (ctl)
        CHECK_OK(pshm_queue_close(ctl)); /* the last producer: closes the queue */
    else {
        pshm_queue *q = NULL;
        CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, NULL, &q));
        CHECK_OK(pshm_queue_close(q));
    }
    for (int i = 0; i < ncons; i++)
        CHECK_EQ(th_wait(cons[i], 100000), 0);
    CHECK_EQ(t->bad, 0);
    CHECK_EQ(t->order, 0);
    uint32_t want = mode == PSHM_QUEUE_BROADCAST ? (uint32_t)ncons : 1;
    for (int i = 0; i < nprod; i++)
        for (uint32_t s = 0; s < count; s++)
            if (t->got[i][s] != want)
                th_fail(__FILE__, __LINE__, "producer %d message %u delivered %u times", i, s,
                        t->got[i][s]);
    CHECK_OK(pshm_unlink(name));
    CHECK_OK(pshm_block_unlink(tb));
    CHECK_OK(pshm_block_close(tb));
}

TEST_TIMEOUT(mpmc_three_producers_three_consumers_exactly_once, 120)
{
    many_to_many(PSHM_QUEUE_MPMC, 3, 3, 20000);
}

TEST_TIMEOUT(broadcast_every_subscriber_sees_everything_in_order, 120)
{
    many_to_many(PSHM_QUEUE_BROADCAST, 1, 3, 20000);
}

/* ------------------------------------------------------------ crashes, one at a time */

typedef struct crash_arg {
    const char *name;
    int role;
    int sends;     /* messages to send first */
    int die_after; /* 0: after reserve, 1: after peek, 2: right after open */
} crash_arg;

/* Open, do a little, and die of SIGKILL in the chosen window. */
static int crash_child(void *p)
{
    crash_arg *a = p;
    pshm_queue *q = NULL;
    pshm_queue_options o;
    unsigned char buf[128];

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(a->name, a->role, &o, &q) != 0)
        return 10;
    for (int i = 0; i < a->sends; i++) {
        msg_fill(buf, 9, (uint32_t)i, 40);
        if (pshm_queue_send(q, buf, 40) != 0)
            return 11;
    }
    if (a->die_after == 0) {
        void *w;
        if (pshm_queue_reserve(q, 40, &w) != 0)
            return 12;
        memset(w, 0xee, 20); /* half written */
    } else if (a->die_after == 1) {
        const void *r;
        size_t len;
        if (pshm_queue_peek(q, &r, &len) != 0)
            return 13;
    }
    raise(SIGKILL);
    return 14;
}

static void run_crash(const char *name, int role, int sends, int die_after)
{
    crash_arg a = {name, role, sends, die_after};
    CHECK_EQ(th_wait(th_fork(crash_child, &a), 10000), 128 + SIGKILL);
}

static int recv_msg(pshm_queue *c, int ms, tmsg *m, pshm_queue_msg_info *mi)
{
    unsigned char buf[128];
    size_t len;
    struct timespec dl;
    deadline_ms(&dl, ms);
    int r = pshm_queue_timedrecv(c, buf, sizeof buf, &len, &dl);
    if (r != 0)
        return r;
    if (msg_check(buf, len, m) != NULL)
        th_fail(__FILE__, __LINE__, "torn message");
    if (mi)
        CHECK_OK(pshm_queue_msginfo(c, mi));
    return 0;
}

TEST(spsc_producer_killed_mid_reservation)
{
    const char *name = th_name("spk");
    pshm_queue_options o = qopts(PSHM_QUEUE_SPSC, 4096, 64);
    pshm_queue *c = NULL, *p = NULL;
    tmsg m;

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    run_crash(name, PSHM_QUEUE_PRODUCER, 3, 0);
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.dead, 1);
    CHECK_EQ(st.producers, 0);
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_OK(recv_msg(c, 1000, &m, NULL));
        CHECK_EQ(m.seq, i);
    }
    CHECK_ERR(recv_msg(c, 20, &m, NULL), -ETIMEDOUT); /* the reservation published nothing */
    /* the role passes to a new producer, which recovers the dead one */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    st = th_queue_stat(c);
    CHECK_EQ(st.dead, 0);
    CHECK_EQ(st.lost_reservations, 1);
    unsigned char buf[64];
    msg_fill(buf, 1, 100, 40);
    CHECK_OK(pshm_queue_send(p, buf, 40));
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK_EQ(m.seq, 100);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c));
}

TEST(spsc_consumer_killed_after_peek_gets_it_again_until_poison)
{
    const char *name = th_name("sck");
    pshm_queue_options o = qopts(PSHM_QUEUE_SPSC, 4096, 64);
    pshm_queue *c = NULL, *p = NULL;
    pshm_queue_msg_info mi;
    pshm_queue_msg_info_init(&mi);
    unsigned char buf[64];
    tmsg m;

    o.max_deliveries = 2;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    for (uint32_t i = 0; i < 3; i++) {
        msg_fill(buf, 1, i, 40);
        CHECK_OK(pshm_queue_send(p, buf, 40));
    }
    /* a consumer dies holding message 0: the next one gets it again */
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 1);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_EQ(th_queue_stat(c).redeliveries, 1);
    const void *r;
    size_t len;
    CHECK_OK(pshm_queue_peek(c, &r, &len));
    CHECK(msg_check(r, len, &m) == NULL);
    CHECK_EQ(m.seq, 0);
    CHECK_OK(pshm_queue_msginfo(c, &mi));
    CHECK_EQ(mi.attempts, 1);
    CHECK_OK(pshm_queue_release(c));
    CHECK_OK(pshm_queue_close(c));
    /* message 1 kills two consumers: poison, dropped and counted */
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 1);
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 1);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.redeliveries, 2);
    CHECK_EQ(st.drops, 1);
    CHECK_OK(recv_msg(c, 1000, &m, &mi));
    CHECK_EQ(m.seq, 2);
    CHECK_EQ(mi.attempts, 0);
    CHECK_EQ(th_queue_stat(c).depth, 0);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c));
}

TEST(mpmc_writer_killed_mid_reservation_is_skipped)
{
    const char *name = th_name("mwk");
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 0, 64);
    pshm_queue *c = NULL, *p = NULL;
    unsigned char buf[64];
    tmsg m;

    o.messages = 4;
    o.recover_ms = 5;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    run_crash(name, PSHM_QUEUE_PRODUCER, 1, 0); /* one message, then a dead reservation */
    for (uint32_t i = 0; i < 6; i++) {
        /* more than the ring holds: the dead cell must be recycled */
        msg_fill(buf, 2, i, 40);
        struct timespec dl;
        deadline_ms(&dl, 5000);
        if (i < 2)
            CHECK_OK(pshm_queue_timedsend(p, buf, 40, &dl));
        else {
            CHECK_OK(recv_msg(c, 5000, &m, NULL));
            CHECK_OK(pshm_queue_timedsend(p, buf, 40, &dl));
        }
    }
    /* received so far: 9/0, then 2/0 .. 2/2 (the dead cell skipped) */
    for (int i = 0; i < 3; i++)
        CHECK_OK(recv_msg(c, 5000, &m, NULL));
    CHECK_EQ(m.inst, 2);
    CHECK_EQ(m.seq, 5);
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.lost_reservations, 1);
    CHECK_EQ(st.messages, 7);
    CHECK_EQ(st.received, 7);
    CHECK_EQ(st.dead, 0);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c));
}

TEST(mpmc_reader_killed_after_peek_redelivers_then_drops_poison)
{
    const char *name = th_name("mrk");
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 0, 64);
    pshm_queue *c = NULL, *p = NULL;
    pshm_queue_msg_info mi;
    pshm_queue_msg_info_init(&mi);
    unsigned char buf[64];
    tmsg m;

    o.messages = 8;
    o.recover_ms = 5;
    o.max_deliveries = 2;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    for (uint32_t i = 0; i < 3; i++) {
        msg_fill(buf, 3, i, 40);
        CHECK_OK(pshm_queue_send(p, buf, 40));
    }
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 1); /* dies holding message 0 */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c)); /* open recovers it */
    CHECK_EQ(th_queue_stat(c).redeliveries, 1);
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(recv_msg(c, 5000, &m, &mi));
        CHECK(m.seq < 3);
        seen[m.seq]++;
        CHECK_EQ(mi.attempts, m.seq == 0 ? 1 : 0);
    }
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    /* the live consumer finds a dead one while it waits */
    msg_fill(buf, 3, 10, 40);
    CHECK_OK(pshm_queue_send(p, buf, 40));
    msg_fill(buf, 3, 11, 40);
    CHECK_OK(pshm_queue_send(p, buf, 40));
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 1);
    CHECK_OK(recv_msg(c, 5000, &m, &mi));
    CHECK_EQ(m.seq, 11);
    CHECK_OK(recv_msg(c, 5000, &m, &mi));
    CHECK_EQ(m.seq, 10);
    CHECK_EQ(mi.attempts, 1);
    CHECK_EQ(th_queue_stat(c).redeliveries, 2);
    CHECK_OK(pshm_queue_close(c));
    /* poison: message 20 kills two consumers (max_deliveries = 2) */
    msg_fill(buf, 3, 20, 40);
    CHECK_OK(pshm_queue_send(p, buf, 40));
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 1);
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 1);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.drops, 1);
    CHECK_EQ(st.redeliveries, 3); /* the first death; the second one dropped it */
    CHECK_ERR(recv_msg(c, 20, &m, &mi), -ETIMEDOUT);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c));
}

/* A fresh queue of `messages` cells of 64 bytes (recover_ms 5): the producer,
 * and in *c a consumer. th_queue_pair_close unlinks and closes both. */
static pshm_queue *qpair(const char *name, pshm_queue_mode mode, size_t messages, pshm_queue **c)
{
    pshm_queue_options o = qopts(mode, 0, 64);
    pshm_queue *p = NULL;

    o.messages = messages;
    o.recover_ms = 5;
    *c = NULL;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, c));
    return p;
}

/*
 * A claimer moves head or tail with a plain store after its claim
 * (claimed_advance in queue_ops.c); a late one can set the index back, but
 * only to just after a cell it claimed. Both indices set back like that:
 * producers and consumers walk forward over what is claimed or consumed,
 * and the ring goes on in order, exactly once, full at the same depth.
 */
TEST(mpmc_index_set_back_by_a_late_claimer_is_harmless)
{
    const char *name = th_name("mib");
    pshm_queue *c, *p = qpair(name, PSHM_QUEUE_MPMC, 8, &c);
    unsigned char buf[64];
    tmsg m;

    for (uint32_t i = 0; i < 6; i++) {
        msg_fill(buf, 5, i, 40);
        CHECK_OK(pshm_queue_trysend(p, buf, 40));
    }
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_OK(recv_msg(c, 1000, &m, NULL));
        CHECK_EQ(m.seq, i);
    }
    CHECK_EQ(Q_LD(&p->h->head), 6);
    CHECK_EQ(Q_LD(&p->h->tail), 3);
    Q_STR(&p->h->head, 1); /* a producer's late store after claiming cell 0 */
    Q_STR(&p->h->tail, 1); /* a consumer's late store after claiming cell 0 */
    uint32_t n = 6;
    for (;; n++) {
        msg_fill(buf, 5, n, 40);
        int r = pshm_queue_trysend(p, buf, 40);
        if (r == -EAGAIN)
            break;
        CHECK_OK(r);
        CHECK(n < 100);
    }
    CHECK_EQ(n, 11); /* 3..10: full at 8, not earlier, not later */
    for (uint32_t i = 3; i < n; i++) {
        CHECK_OK(recv_msg(c, 1000, &m, NULL));
        CHECK_EQ(m.seq, i);
    }
    CHECK_ERR(recv_msg(c, 10, &m, NULL), -ETIMEDOUT);
    CHECK_EQ(Q_LD(&p->h->head), 11);
    CHECK_EQ(Q_LD(&p->h->tail), 11);
    th_queue_pair_close(p, c);
}

/* A consumer that takes its time: n messages of instance inst in order,
 * sleeping us microseconds after each. 0 if they all came, intact. */
typedef struct slow_arg {
    const char *name;
    int n, us;
    uint32_t inst;
} slow_arg;

static int slow_consumer(void *p)
{
    slow_arg *a = p;
    pshm_queue *q = NULL;
    pshm_queue_options o;
    tmsg m;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(a->name, PSHM_QUEUE_CONSUMER, &o, &q) != 0)
        return 10;
    for (int i = 0; i < a->n; i++) {
        if (recv_msg(q, 10000, &m, NULL) != 0)
            return 11;
        if (m.inst != a->inst || m.seq != (uint32_t)i)
            return 12;
        struct timespec ts = {0, a->us * 1000L};
        nanosleep(&ts, NULL);
    }
    return pshm_queue_close(q) == 0 ? 0 : 13;
}

/*
 * A producer spinning on a full MPMC ring polls tail, not the cell
 * (mpmc_await_tail), a bounded number of times between two looks at the
 * cell. With a slow consumer in another process it gets every free cell
 * in turn; with a consumer that holds the oldest message (tail moved past
 * it, its cell not free) it times out, and goes on once that is released.
 */
TEST_TIMEOUT(mpmc_full_ring_with_a_slow_consumer, 60)
{
    const char *name = th_name("mfs");
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 0, 64);
    pshm_queue *p = NULL, *c = NULL;
    unsigned char buf[64];
    const void *r;
    size_t len;

    o.messages = 4;
    o.spin = 1u << 16; /* the spinning phase, where the tail polls are */
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    slow_arg a = {name, 100, 200, 6};
    pid_t kid = th_fork(slow_consumer, &a);
    for (uint32_t i = 0; i < 100; i++) {
        msg_fill(buf, 6, i, 40);
        CHECK_OK(pshm_queue_send(p, buf, 40));
    }
    CHECK_EQ(th_wait(kid, 30000), 0);
    CHECK(th_queue_stat(p).waits_full > 0);
    /* a consumer holds the oldest message of a full ring */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    for (uint32_t i = 0; i < 4; i++) {
        msg_fill(buf, 6, 100 + i, 40);
        CHECK_OK(pshm_queue_trysend(p, buf, 40));
    }
    CHECK_OK(pshm_queue_trypeek(c, &r, &len));
    CHECK_EQ(Q_LD(&p->h->tail), 101); /* moved past the held message */
    struct timespec dl;
    deadline_ms(&dl, 20);
    CHECK_ERR(pshm_queue_timedsend(p, buf, 40, &dl), -ETIMEDOUT);
    CHECK_OK(pshm_queue_release(c));
    CHECK_OK(pshm_queue_trysend(p, buf, 40));
    th_queue_pair_close(p, c);
}

TEST(broadcast_dead_subscriber_does_not_hold_the_producer)
{
    const char *name = th_name("bds");
    pshm_queue_options o = qopts(PSHM_QUEUE_BROADCAST, 0, 64);
    pshm_queue *c = NULL, *p = NULL;
    unsigned char buf[64];
    tmsg m;

    o.messages = 4;
    o.recover_ms = 5;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    run_crash(name, PSHM_QUEUE_CONSUMER, 0, 2); /* subscribes, dies reading nothing */
    CHECK_EQ(th_queue_stat(p).dead, 1);
    for (uint32_t i = 0; i < 20; i++) {
        struct timespec dl;
        deadline_ms(&dl, 5000);
        msg_fill(buf, 4, i, 40);
        CHECK_OK(pshm_queue_timedsend(p, buf, 40, &dl));
        CHECK_OK(recv_msg(c, 5000, &m, NULL));
        CHECK_EQ(m.seq, i);
    }
    CHECK_EQ(th_queue_stat(p).dead, 0);
    /* a producer killed mid-write: nothing half-written is seen, the role passes on */
    CHECK_OK(pshm_queue_close(p)); /* closes the queue ... */
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(c));
}

/*
 * A subscriber polling an empty broadcast ring decides by the cell alone
 * (an older lap's message, or its message being written: not yet), and
 * reads the closed flag, not head. Closed is still reported only once
 * everything committed before the close was delivered.
 */
TEST(broadcast_empty_poll_is_decided_by_the_cell)
{
    const char *name = th_name("bep");
    pshm_queue *c, *p = qpair(name, PSHM_QUEUE_BROADCAST, 4, &c);
    unsigned char buf[64];
    const void *r;
    void *w;
    size_t len;
    tmsg m;

    CHECK_ERR(pshm_queue_trypeek(c, &r, &len), -EAGAIN); /* never written */
    for (uint32_t i = 0; i < 5; i++) {
        msg_fill(buf, 8, i, 40);
        CHECK_OK(pshm_queue_trysend(p, buf, 40));
        CHECK_OK(recv_msg(c, 1000, &m, NULL));
        CHECK_EQ(m.seq, i);
        CHECK_ERR(pshm_queue_trypeek(c, &r, &len), -EAGAIN); /* an older lap */
    }
    CHECK_OK(pshm_queue_tryreserve(p, 40, &w));
    CHECK_ERR(pshm_queue_trypeek(c, &r, &len), -EAGAIN); /* being written */
    msg_fill(w, 8, 5, 40);
    CHECK_OK(pshm_queue_commit(p, 40));
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK_EQ(m.seq, 5);
    msg_fill(buf, 8, 6, 40);
    CHECK_OK(pshm_queue_trysend(p, buf, 40));
    CHECK_OK(pshm_queue_close(p)); /* the last producer: closes the queue */
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK_EQ(m.seq, 6);
    CHECK_ERR(pshm_queue_trypeek(c, &r, &len), -PSHM_ECLOSED);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(c));
}

static void wait_consumers(pshm_queue *q, unsigned n)
{
    for (int i = 0; i < 5000 && th_queue_stat(q).consumers < n; i++)
        usleep(1000);
    CHECK_EQ(th_queue_stat(q).consumers, n);
}

/* trysend until it goes through (the gate's fast "still full" included) */
static void trysend_spin(pshm_queue *p, uint32_t inst, uint32_t seq)
{
    unsigned char buf[64];
    int r;

    msg_fill(buf, inst, seq, 40);
    while ((r = pshm_queue_trysend(p, buf, 40)) == -EAGAIN)
        q_relax();
    CHECK_OK(r);
}

/*
 * A broadcast producer on a full ring watches the slowest subscriber's
 * cursor (the gate) instead of scanning every slot, and goes on by a fresh
 * scan once the gate moved: two subscribers of different speeds, a
 * producer in a trysend loop; both see everything in order.
 */
TEST_TIMEOUT(broadcast_slow_subscribers_gate_the_producer, 60)
{
    const char *name = th_name("bsg");
    pshm_queue_options o = qopts(PSHM_QUEUE_BROADCAST, 0, 64);
    pshm_queue *p = NULL;

    o.messages = 4;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    slow_arg a = {name, 100, 100, 7}, b = {name, 100, 300, 7};
    pid_t ka = th_fork(slow_consumer, &a), kb = th_fork(slow_consumer, &b);
    wait_consumers(p, 2);
    int gated = 0;
    for (uint32_t i = 0; i < 100; i++) {
        trysend_spin(p, 7, i);
        gated |= p->gate != 0; /* a later send may clear it again */
    }
    CHECK_EQ(th_wait(ka, 30000), 0);
    CHECK_EQ(th_wait(kb, 30000), 0);
    CHECK(gated); /* the ring was full and a subscriber gated it */
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(p));
}

static int subscribe_and_stop(void *p)
{
    pshm_queue *q = NULL;
    pshm_queue_options o;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(p, PSHM_QUEUE_CONSUMER, &o, &q) != 0)
        return 10;
    for (;;)
        pause(); /* reads nothing until it is killed */
}

/* Fill the ring while the subscriber in child kid reads nothing and c
 * reads everything: the child gates the producer; then kill it. */
static void gate_and_kill(pshm_queue *p, pshm_queue *c, pid_t kid, uint32_t *seq)
{
    tmsg m;

    for (int i = 0; i < 4; i++, (*seq)++) {
        trysend_spin(p, 9, *seq);
        CHECK_OK(recv_msg(c, 1000, &m, NULL));
        CHECK_EQ(m.seq, *seq);
    }
    unsigned char buf[64];
    msg_fill(buf, 9, *seq, 40);
    CHECK_ERR(pshm_queue_trysend(p, buf, 40), -EAGAIN);
    CHECK_EQ(Q_LD(&q_part(p, p->gate - 1)->cursor), *seq - 4); /* the child gates */
    CHECK_ERR(pshm_queue_trysend(p, buf, 40), -EAGAIN);         /* by the gate alone */
    CHECK_OK(kill(kid, SIGKILL));
    CHECK_EQ(th_wait(kid, 10000), 128 + SIGKILL);
}

/*
 * The gating subscriber is killed: until it is recovered it still counts
 * (trysend never recovers), and once it is - by another handle, or by
 * the producer before it sleeps in a blocking send - its slot's state word
 * changes (the slot is not taken again here: its cursor stays behind),
 * the producer scans again and goes on.
 */
TEST(broadcast_subscriber_killed_while_gating)
{
    const char *name = th_name("bkg");
    pshm_queue *c, *p = qpair(name, PSHM_QUEUE_BROADCAST, 4, &c);
    uint32_t seq = 0;
    tmsg m;

    pid_t kid = th_fork(subscribe_and_stop, (void *)name);
    wait_consumers(p, 2);
    gate_and_kill(p, c, kid, &seq);
    unsigned char buf[64];
    msg_fill(buf, 9, seq, 40);
    CHECK_ERR(pshm_queue_trysend(p, buf, 40), -EAGAIN); /* dead, not recovered yet */
    pshm__q_scan(c, 1); /* another handle's recovery scan frees its slot */
    CHECK_EQ(th_queue_stat(p).dead, 0);
    CHECK_OK(pshm_queue_trysend(p, buf, 40));
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK_EQ(m.seq, seq++);
    /* again, recovered by the producer's own blocking send */
    kid = th_fork(subscribe_and_stop, (void *)name);
    wait_consumers(p, 2);
    gate_and_kill(p, c, kid, &seq);
    struct timespec dl;
    deadline_ms(&dl, 5000);
    CHECK_OK(pshm_queue_timedsend(p, buf, 40, &dl));
    CHECK_EQ(th_queue_stat(p).dead, 0);
    th_queue_pair_close(p, c);
}

TEST(broadcast_producer_killed_mid_write)
{
    const char *name = th_name("bpk");
    pshm_queue_options o = qopts(PSHM_QUEUE_BROADCAST, 0, 64);
    pshm_queue *c = NULL, *p = NULL;
    unsigned char buf[64];
    tmsg m;

    o.messages = 4;
    o.overwrite = 1;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    run_crash(name, PSHM_QUEUE_PRODUCER, 2, 0);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_EQ(th_queue_stat(c).lost_reservations, 1);
    msg_fill(buf, 5, 7, 40);
    CHECK_OK(pshm_queue_send(p, buf, 40));
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK_EQ(m.seq, 0);
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK_EQ(m.seq, 1);
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK_EQ(m.inst, 5);
    CHECK_ERR(recv_msg(c, 10, &m, NULL), -ETIMEDOUT);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c));
}

/* ------------------------------------------------------------ deaths while leaving */

typedef struct leave_arg {
    const char *name;
    int role, hold; /* hold: peek (consumer) or reserve (producer) before closing */
    const char *point;
} leave_arg;

static int leave_child(void *p)
{
    leave_arg *a = p;
    pshm_queue *q = NULL;
    const void *r;
    void *w;
    size_t len;

    if (pshm_queue_open(a->name, a->role, NULL, &q) != 0)
        return 10;
    if (a->hold && (a->role == PSHM_QUEUE_CONSUMER ? pshm_queue_peek(q, &r, &len)
                                                   : pshm_queue_reserve(q, 40, &w)) != 0)
        return 11;
    th_arm(a->point, 0);
    pshm_queue_close(q);
    return 12;
}

/* A consumer killed in its close after giving back the message it held, and
 * a last producer killed in its close after leaving its slot but before
 * shutting the queue down: the message comes back once (counted once), the
 * reservation is lost once, and the queue is not shut down - a crash is not
 * a close. */
TEST(deaths_while_leaving)
{
    const char *name = th_name("leave");
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 0, 64);
    pshm_queue *p = NULL, *c = NULL;
    pshm_queue_msg_info mi;
    unsigned char buf[64];
    tmsg m;

    o.messages = 8;
    o.recover_ms = 5;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    o.keep_open = 1; /* ours never shuts the queue down */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    o.keep_open = 0;
    msg_fill(buf, 6, 0, 40);
    CHECK_OK(pshm_queue_send(p, buf, 40));
    leave_arg a = {name, PSHM_QUEUE_CONSUMER, 1, "queue.leave.begin"};
    th_died_at(th_fork(leave_child, &a), "queue.leave.begin", 10000);
    pshm_queue_msg_info_init(&mi);
    CHECK_OK(recv_msg(c, 5000, &m, &mi));
    CHECK(m.inst == 6 && m.seq == 0);
    CHECK_EQ(mi.returned, 1); /* given back by the close, not by the death */
    CHECK_EQ(mi.attempts, 0);
    CHECK_EQ(th_queue_stat(c).redeliveries, 1);
    CHECK_ERR(recv_msg(c, 50, &m, &mi), -ETIMEDOUT);
    CHECK_EQ(th_queue_stat(c).redeliveries, 1); /* its recovery counted nothing more */

    /* the child is the last producer (ours, keep_open, leaves first) */
    CHECK_OK(pshm_queue_close(p));
    CHECK(!th_queue_stat(c).shut_down);
    pshm_queue_info st;
    leave_arg b = {name, PSHM_QUEUE_PRODUCER, 1, "queue.leave.freed"};
    th_died_at(th_fork(leave_child, &b), "queue.leave.freed", 10000);
    st = th_queue_stat(c);
    CHECK(!st.shut_down);
    CHECK_EQ(st.lost_reservations, 1); /* cancelled by the close: once */
    CHECK_ERR(recv_msg(c, 50, &m, &mi), -ETIMEDOUT); /* not ECLOSED */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p)); /* a new producer may come */
    CHECK_EQ(th_queue_stat(c).lost_reservations, 1);
    msg_fill(buf, 6, 1, 40);
    CHECK_OK(pshm_queue_send(p, buf, 40));
    CHECK_OK(recv_msg(c, 5000, &m, &mi));
    CHECK(m.inst == 6 && m.seq == 1);
    CHECK_OK(pshm_queue_close(p)); /* a real close: now it is shut down */
    CHECK_ERR(recv_msg(c, 5000, &m, &mi), -PSHM_ECLOSED);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(c));
}

/* ------------------------------------------------------------ SIGKILL storms */

/*
 * Producers and consumers are forked over and over and die of SIGKILL in
 * three ways: at a fault point inside the library (half the children are
 * armed with one of their role's points: reserve, commit before/between/
 * after its words and after head, the copying send and recv, peek, release,
 * joining, and recovery itself), at random points of their own (between
 * every two steps of reserve, write, commit, peek, check, record, release),
 * and from the test at random moments. Every message carries (instance,
 * sequence) and a checksum.
 *
 * Every child is traced (src/fault.h): it leaves in shared memory the last
 * library point it passed, with the message that point concerned, and the
 * operation it was doing. So after a death the test knows, message by
 * message, what the dead process held: a reservation (lost, or maybe
 * committed if it died in the instant of the commit store), a peeked
 * message (a death holding it: redelivered, or at max_deliveries dropped),
 * a release (done, or maybe done in the instant of the release store) - or
 * nothing. Consumers record each delivery with its attempts count and each
 * release. Then, message by message:
 *  - nothing torn, nothing delivered that was never committed, no
 *    reservation that died uncommitted delivered;
 *  - every committed message was consumed exactly once, or dropped;
 *  - a message consumed after k deaths holding it was delivered that last
 *    time with attempts = k, and no two deliveries carried the same
 *    attempts (a duplicate is always a redelivery after a death);
 *  - a message that was not consumed died with exactly max_deliveries
 *    holders: that is a drop;
 *  - the library's drops, redeliveries and lost reservations are exactly
 *    these, give or take the deaths the trace could not decide (counted and
 *    printed; there are almost never any).
 * And floors: enough deaths holding a message, holding a reservation, and
 * at armed points, so a storm that misses its windows fails.
 */
#define ST_MAXI 16384 /* producer instances a ledger has room for (a soak needs ~8000) */
#define ST_MAXSEQ 256 /* messages per producer instance */
#define ST_MAXC 32768 /* consumer instances */
#define ST_MAXMSG 200

/* what a worker is doing; the points it passes from op_passes on are its */
enum { OP_NONE = 0, OP_PEEK, OP_RECV, OP_RELEASE, OP_SEND };

typedef struct worker {
    pshm__fault_trace tr;
    uint32_t op, inst, seq, att; /* the operation under way and its message */
    uint64_t op_passes;          /* tr.passes when it began */
    uint32_t armed;              /* 1 + index of the armed point in its list; 0 none */
    uint32_t reserving, committed; /* producer: messages reserved / committed so far */
    uint32_t dead;               /* set by the test: it died of SIGKILL */
} worker;

typedef struct msgrec {
    uint8_t deliv;    /* bit a: a delivery with attempts a was recorded */
    uint8_t released; /* bit a: the delivery with attempts a was released */
    uint8_t rel_any;  /* releases whose attempts count is unknown (died in recv) */
    uint8_t pad;
} msgrec;

typedef struct bwitness {
    uint64_t count, lost, bad, order, last, joined;
} bwitness;

typedef struct ledger {
    uint32_t bad, order, beyond, errors, dupsame, returned, overflow;
    uint32_t last_err;
    uint64_t last_key; /* SPSC: (inst << 32 | seq) + 1 of the last message recorded */
    uint64_t viol[4];
    bwitness witness;
    worker prod[ST_MAXI];
    worker cons[ST_MAXC];
    msgrec msg[ST_MAXI][ST_MAXSEQ];
} ledger;

/* The points a storm arms, by role and mode (NULL-terminated lists). */
static const char *const prod_points_spsc[] = {
    "queue.reserve.announced", "queue.reserve.claimed", "queue.send.reserved",
    "queue.send.copied", "queue.commit.after_data", "queue.commit.before_word",
    "queue.commit.between_words", "queue.commit.after_word", "queue.commit.after_head",
    "queue.join.locked", "queue.join.claimed", "queue.join.role", "queue.join.started",
    "queue.reap.locked", "queue.reap.counted", "queue.reap.before_free", NULL};
static const char *const prod_points_mpmc[] = {
    "queue.reserve.announced", "queue.reserve.claimed", "queue.send.reserved",
    "queue.send.copied", "queue.commit.after_data", "queue.commit.before_word",
    "queue.commit.after_word", "queue.join.locked", "queue.join.claimed",
    "queue.reap.locked", "queue.reap.counted", "queue.reap.before_free", NULL};
static const char *const prod_points_bcast[] = {
    "queue.reserve.announced", "queue.reserve.claimed", "queue.commit.after_data",
    "queue.commit.before_word", "queue.commit.after_word", "queue.commit.after_head",
    "queue.join.locked", "queue.join.claimed", "queue.join.role", "queue.join.started",
    "queue.reap.locked", "queue.reap.counted", "queue.reap.before_free", NULL};
static const char *const cons_points_spsc[] = {
    "queue.peek.announced", "queue.peek.claimed", "queue.release.before",
    "queue.release.after_word", "queue.recv.copied", "queue.join.locked",
    "queue.join.claimed", "queue.join.role", "queue.reap.locked", "queue.reap.tried",
    "queue.reap.counted", "queue.reap.before_free", NULL};
static const char *const cons_points_mpmc[] = {
    "queue.peek.announced", "queue.peek.claimed", "queue.release.before",
    "queue.release.after_word", "queue.recv.copied", "queue.join.locked",
    "queue.join.claimed", "queue.reap.locked", "queue.reap.counted",
    "queue.reap.before_free", NULL};
static const char *const cons_points_bcast[] = {
    "queue.peek.claimed", "queue.release.before", "queue.release.after_word",
    "queue.join.locked", "queue.join.claimed", "queue.join.started", NULL};

/* points passed once per message: armed with a skip, so the death lands in
 * the middle of a child's life (the others - joining, recovering, a wrap's
 * second commit word - are passed a few times in a life, if at all) */
static int per_message(const char *p)
{
    return strncmp(p, "queue.join.", 11) != 0 && strncmp(p, "queue.reap.", 11) != 0 &&
           strcmp(p, "queue.commit.between_words") != 0;
}

static int is_point(const worker *w, const char *p) { return w->tr.point == pshm__fault_id(p); }

typedef struct storm {
    const char *name;
    ledger *L;
    pshm_queue_mode mode;
    int overwrite;
    int die_rate; /* a child dies at each of its own kill points with probability 1/die_rate */
    int zero_copy_odd;
    const char *const *prod_points, *const *cons_points;
    /* set by the test before each fork: who the child is */
    uint32_t index;  /* its worker slot in the ledger */
    uint64_t stream; /* its random stream (th_rnd_worker) */
} storm;

static int die_rate;
static void kill_point(void)
{
    if (die_rate && th_rnd() % (uint32_t)die_rate == 0)
        raise(SIGKILL);
}

static void ledger_error(ledger *L, int code)
{
    __atomic_store_n(&L->last_err, (uint32_t)-code, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&L->errors, 1, __ATOMIC_SEQ_CST);
}

/* In a new child: its random stream, its trace, and - every other
 * generation of a worker slot - an armed point, the role's points in turn.
 * All of it follows from (seed, slot, generation). */
static void child_start(const storm *S, worker *w, const char *const *points)
{
    uint32_t n = 0, slot = (uint32_t)(S->stream >> 32), gen = (uint32_t)S->stream;

    th_rnd_worker(S->stream);
    die_rate = S->die_rate;
    pshm__fault_trace_to(&w->tr);
    while (points[n])
        n++;
    if (gen % 2) {
        uint32_t k = (gen / 2 + slot * 5) % n;
        pshm__fault_arm(points[k], per_message(points[k]) ? th_rnd() % 8u : 0);
        w->armed = k + 1;
    }
}

static void begin_op(worker *w, uint32_t op)
{
    w->op_passes = w->tr.passes;
    ASTORE(&w->op, op);
}

static int storm_producer(void *arg)
{
    storm *S = arg;
    ledger *L = S->L;
    uint32_t inst = S->index;
    worker *w = &L->prod[inst];
    pshm_queue *q = NULL;
    pshm_queue_options o;
    unsigned char buf[ST_MAXMSG];

    child_start(S, w, S->prod_points);
    pshm_queue_options_init(&o);
    o.keep_open = 1;
    o.recover_ms = 5;
    o.spin = 50;
    kill_point();
    int r = pshm_queue_open(S->name, PSHM_QUEUE_PRODUCER, &o, &q);
    if (r == -PSHM_EROLE)
        return 0; /* SPSC: the role is still held; the test starts another */
    if (r != 0) {
        ledger_error(L, r);
        return 20;
    }
    for (uint32_t seq = 0; seq < ST_MAXSEQ; seq++) {
        size_t len = msg_len(inst, seq, ST_MAXMSG);
        int zc = S->zero_copy_odd ? (int)(th_rnd() % 2) : 1; /* else pshm_queue_send */
        struct timespec dl;
        deadline_ms(&dl, 10000);
        ASTORE(&w->reserving, seq + 1);
        kill_point();
        begin_op(w, OP_SEND);
        if (zc) {
            void *p;
            r = pshm_queue_timedreserve(q, len, &p, &dl);
            if (r != 0) {
                ledger_error(L, r);
                return 21;
            }
            kill_point();
            msg_fill(buf, inst, seq, len);
            memcpy(p, buf, len / 2);
            kill_point(); /* half written */
            memcpy((unsigned char *)p + len / 2, buf + len / 2, len - len / 2);
            kill_point();
            r = pshm_queue_commit(q, len);
        } else {
            msg_fill(buf, inst, seq, len);
            r = pshm_queue_timedsend(q, buf, len, &dl);
        }
        if (r != 0) {
            ledger_error(L, r);
            return 22;
        }
        kill_point();
        ASTORE(&w->committed, seq + 1);
        ASTORE(&w->op, OP_NONE);
    }
    pshm_queue_close(q);
    return 0;
}

/* Check a received message and record its delivery; 0 and its key, or -1. */
static int storm_record(storm *S, const void *p, size_t len, const pshm_queue_msg_info *mi,
                        tmsg *m)
{
    ledger *L = S->L;

    if (msg_check(p, len, m) != NULL || m->inst >= ST_MAXI || m->seq >= ST_MAXSEQ) {
        __atomic_add_fetch(&L->bad, 1, __ATOMIC_SEQ_CST);
        return -1;
    }
    if (m->seq >= ALOAD(&L->prod[m->inst].reserving))
        __atomic_add_fetch(&L->beyond, 1, __ATOMIC_SEQ_CST);
    if (mi->returned)
        __atomic_add_fetch(&L->returned, 1, __ATOMIC_SEQ_CST); /* nobody closes holding one */
    if (mi->attempts >= 8) {
        __atomic_add_fetch(&L->overflow, 1, __ATOMIC_SEQ_CST);
        return -1;
    }
    uint8_t bit = (uint8_t)(1u << mi->attempts);
    if (__atomic_fetch_or(&L->msg[m->inst][m->seq].deliv, bit, __ATOMIC_SEQ_CST) & bit) {
        /* a second delivery with the same attempts count: a duplicate with no death */
        __atomic_add_fetch(&L->dupsame, 1, __ATOMIC_SEQ_CST);
        L->viol[0] = m->inst, L->viol[1] = m->seq, L->viol[2] = mi->attempts;
    }
    kill_point();
    if (S->mode == PSHM_QUEUE_SPSC) {
        uint64_t key = ((uint64_t)m->inst << 32 | m->seq) + 1, last = L->last_key; /* 0: none yet */
        if (key < last || (key == last && mi->attempts == 0 && !mi->returned)) {
            __atomic_add_fetch(&L->order, 1, __ATOMIC_SEQ_CST);
            L->viol[0] = key, L->viol[1] = last, L->viol[2] = mi->attempts;
        }
        ASTORE(&L->last_key, key);
    }
    return 0;
}

static void record_release(ledger *L, const tmsg *m, unsigned attempts)
{
    __atomic_fetch_or(&L->msg[m->inst][m->seq].released, (uint8_t)(1u << attempts),
                      __ATOMIC_SEQ_CST);
}

/* Consume until closed (or idle for long): returns 0, or an error code.
 * copying: 1 pshm_queue_recv, 0 peek and release, -1 either, at random. */
static int storm_consume(storm *S, worker *w, pshm_queue *q, int idle_ms, int how)
{
    for (;;) {
        int copying = how < 0 ? (int)(th_rnd() % 2) : how;
        const void *p;
        unsigned char buf[ST_MAXMSG];
        size_t len;
        struct timespec dl;
        pshm_queue_msg_info mi;
        pshm_queue_msg_info_init(&mi);
        tmsg m;
        deadline_ms(&dl, idle_ms);
        kill_point();
        begin_op(w, copying ? OP_RECV : OP_PEEK);
        int r = copying ? pshm_queue_timedrecv(q, buf, sizeof buf, &len, &dl)
                        : pshm_queue_timedpeek(q, &p, &len, &dl);
        if (r == -PSHM_ECLOSED || r == -ETIMEDOUT) {
            ASTORE(&w->op, OP_NONE);
            return 0;
        }
        if (r != 0)
            return r;
        CHECK_OK(pshm_queue_msginfo(q, &mi));
        int ok = storm_record(S, copying ? (const void *)buf : p, len, &mi, &m);
        if (copying) {
            if (ok == 0)
                record_release(S->L, &m, mi.attempts); /* recv released it */
            ASTORE(&w->op, OP_NONE);
            continue;
        }
        kill_point();
        w->inst = ok == 0 ? m.inst : UINT32_MAX;
        w->seq = m.seq;
        w->att = mi.attempts;
        begin_op(w, OP_RELEASE);
        r = pshm_queue_release(q);
        if (r != 0)
            return r;
        if (ok == 0)
            record_release(S->L, &m, mi.attempts);
        ASTORE(&w->op, OP_NONE);
        kill_point();
    }
}

static int storm_consumer(void *arg)
{
    storm *S = arg;
    worker *w = &S->L->cons[S->index];
    pshm_queue *q = NULL;
    pshm_queue_options o;

    child_start(S, w, S->cons_points);
    pshm_queue_options_init(&o);
    o.recover_ms = 5;
    o.spin = 50;
    kill_point();
    int r = pshm_queue_open(S->name, PSHM_QUEUE_CONSUMER, &o, &q);
    if (r == -PSHM_EROLE)
        return 0;
    if (r != 0) {
        ledger_error(S->L, r);
        return 20;
    }
    r = storm_consume(S, w, q, 3000, -1);
    if (r != 0) {
        ledger_error(S->L, r);
        return 21;
    }
    pshm_queue_close(q);
    return 0;
}

typedef struct storm_counts {
    int kills_prod, kills_cons;
    uint32_t nprod, ncons; /* worker slots used */
} storm_counts;

/* Keep nprod producers and ncons consumers running, killing them, until
 * `kills` children have died of SIGKILL; then kill the rest. Every child
 * gets a ledger slot and a random stream of its own: worker (role, slot,
 * generation) draws the same numbers under the same seed. */
static storm_counts storm_loop(storm *S, int (*prod)(void *), int (*cons)(void *), int nprod,
                               int ncons, int kills, int ext_every)
{
    pid_t P[8] = {0}, C[8] = {0};
    uint32_t PI[8], CI[8], gen[16] = {0};
    storm_counts k = {0, 0, 0, 0};
    long long t0 = pshm__q_now_ns();

    th_rnd_seed("storm");
    while (k.kills_prod + k.kills_cons < kills) {
        for (int i = 0; i < nprod + ncons; i++) {
            int is_prod = i < nprod;
            pid_t *slot = is_prod ? &P[i] : &C[i - nprod];
            if (*slot)
                continue;
            uint32_t *next = is_prod ? &k.nprod : &k.ncons;
            if (*next >= (is_prod ? ST_MAXI : ST_MAXC))
                continue;
            S->index = (*next)++;
            S->stream = (uint64_t)i << 32 | gen[i]++;
            *slot = th_fork(is_prod ? prod : cons, S);
            (is_prod ? PI : CI)[is_prod ? i : i - nprod] = S->index;
        }
        int st;
        pid_t w;
        while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
            int is_prod = 0, found = 0;
            worker *wk = NULL;
            for (int i = 0; i < nprod; i++)
                if (P[i] == w)
                    P[i] = 0, is_prod = 1, found = 1, wk = &S->L->prod[PI[i]];
            for (int i = 0; i < ncons; i++)
                if (C[i] == w)
                    C[i] = 0, found = 1, wk = &S->L->cons[CI[i]];
            CHECK(found);
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
                wk->dead = 1;
                if (is_prod)
                    k.kills_prod++;
                else
                    k.kills_cons++;
            } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                th_fail(__FILE__, __LINE__, "%s child failed: status %#x, last error %s",
                        is_prod ? "producer" : "consumer", st,
                        pshm_errname(-(int)S->L->last_err));
            }
        }
        if (th_rnd() % (uint32_t)ext_every == 0) {
            /* from outside, at a random moment */
            int i = (int)(th_rnd() % (uint32_t)(nprod + ncons));
            pid_t v = i < nprod ? P[i] : C[i - nprod];
            if (v)
                kill(v, SIGKILL);
        }
        th_sleep_ms(1);
        if (k.nprod >= ST_MAXI - 16 || k.ncons >= ST_MAXC - 16)
            break; /* the ledger is full: check what we have */
        if (pshm__q_now_ns() - t0 > ((th_soak() > 1) ? 1000LL : 100LL) * 1000000000LL)
            th_fail(__FILE__, __LINE__, "storm too slow: %d kills", k.kills_prod + k.kills_cons);
    }
    for (int i = 0; i < nprod + ncons; i++) {
        pid_t v = i < nprod ? P[i] : C[i - nprod];
        if (!v)
            continue;
        kill(v, SIGKILL);
        int st;
        CHECK(waitpid(v, &st, 0) == v);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
            if (i < nprod)
                S->L->prod[PI[i]].dead = 1;
            else
                S->L->cons[CI[i - nprod]].dead = 1;
            i < nprod ? k.kills_prod++ : k.kills_cons++;
        }
    }
    return k;
}

/* ---- what the dead held: the post-mortem of the storm's ledger */

/* What a dead worker's trace and operation say about the message it had. */
enum {
    D_NONE = 0,    /* held nothing */
    D_HOLD,        /* consumer: died holding message (inst, seq), not released */
    D_MAYBE_REL,   /* consumer: died in the instant of releasing it */
    D_REL,         /* consumer: died after releasing it (maybe unrecorded) */
    D_UNKNOWN,     /* consumer: died in the instant of claiming some message */
    D_LOST,        /* producer: died holding the reservation of (inst, seq) */
    D_MAYBE_COMMIT,/* producer: died in the instant of committing it */
    D_COMMITTED,   /* producer: died after committing it */
    D_MAYBE_LOST   /* producer: died in the instant of announcing its reservation */
};

typedef struct verdict {
    int kind;
    uint32_t inst, seq;
    int att; /* attempts of the delivery (D_MAYBE_REL, D_REL), -1 if unknown */
} verdict;

static void tag_key(const worker *w, uint32_t *inst, uint32_t *seq)
{
    memcpy(inst, w->tr.tag, 4);
    memcpy(seq, w->tr.tag + 4, 4);
}

static verdict judge_consumer(const worker *w)
{
    verdict v = {D_NONE, 0, 0, -1};
    int mine = w->tr.passes > w->op_passes; /* a point of the operation under way */

    switch (w->op) {
    case OP_PEEK:
    case OP_RECV:
        if (!mine)
            break;
        if (is_point(w, "queue.peek.announced")) {
            v.kind = w->tr.killed ? D_NONE : D_UNKNOWN; /* killed there: before the claim */
        } else if (is_point(w, "queue.peek.claimed") || is_point(w, "queue.recv.copied")) {
            v.kind = D_HOLD;
            tag_key(w, &v.inst, &v.seq);
        } else if (is_point(w, "queue.release.before")) { /* inside recv */
            v.kind = w->tr.killed ? D_HOLD : D_MAYBE_REL;
            tag_key(w, &v.inst, &v.seq);
        } else if (is_point(w, "queue.release.after_word")) {
            v.kind = D_REL;
            tag_key(w, &v.inst, &v.seq);
        }
        break;
    case OP_RELEASE:
        v.inst = w->inst, v.seq = w->seq, v.att = (int)w->att;
        if (!mine)
            v.kind = D_HOLD; /* the release had not begun */
        else if (is_point(w, "queue.release.before"))
            v.kind = w->tr.killed ? D_HOLD : D_MAYBE_REL;
        else if (is_point(w, "queue.release.after_word"))
            v.kind = D_REL;
        else
            v.kind = D_HOLD;
        break;
    }
    if (v.kind != D_NONE && v.kind != D_UNKNOWN && (v.inst >= ST_MAXI || v.seq >= ST_MAXSEQ))
        v.kind = D_NONE; /* a bad message: counted as bad already */
    return v;
}

static verdict judge_producer(const worker *w, uint32_t inst, pshm_queue_mode mode)
{
    verdict v = {D_NONE, inst, 0, -1};

    if (w->op != OP_SEND || w->tr.passes <= w->op_passes || w->committed >= w->reserving)
        return v; /* no point of this send passed: nothing reserved */
    v.seq = w->reserving - 1;
    if (is_point(w, "queue.reserve.announced")) {
        /* killed there: before the reservation; after it, in the instant of
         * announcing it (SPSC, BROADCAST: the announcement is the
         * reservation) or of claiming a cell (MPMC): maybe lost */
        v.kind = w->tr.killed ? D_NONE : D_MAYBE_LOST;
    } else if (is_point(w, "queue.reserve.claimed") || is_point(w, "queue.send.reserved") ||
               is_point(w, "queue.send.copied") || is_point(w, "queue.commit.after_data")) {
        v.kind = D_LOST;
    } else if (is_point(w, "queue.commit.before_word") ||
               is_point(w, "queue.commit.between_words")) {
        v.kind = w->tr.killed ? D_LOST : D_MAYBE_COMMIT;
    } else if (is_point(w, "queue.commit.after_word") || is_point(w, "queue.commit.after_head")) {
        v.kind = D_COMMITTED;
    }
    return v; /* other points (recovering someone while it waited): nothing held */
}

typedef struct postmortem {
    /* deaths by what they held */
    uint64_t hold, maybe_rel, rel, unknown, lost, maybe_commit, committed, maybe_lost, none;
    uint64_t armed, armed_at[32];
    /* what the library must have counted, as [lo, hi] */
    uint64_t drops_lo, drops_hi, redeliv_lo, redeliv_hi, lost_lo, lost_hi;
    uint64_t need_unknown; /* deaths on messages that only unknown deaths can explain */
    uint64_t committed_msgs, consumed;
} postmortem;

static int top_bit(unsigned v)
{
    int b = -1;
    while (v)
        b++, v >>= 1;
    return b;
}

static void storm_account(storm *S, const storm_counts *k, unsigned D, postmortem *pm)
{
    ledger *L = S->L;
    uint8_t(*hold)[ST_MAXSEQ] = calloc(k->nprod ? k->nprod : 1, ST_MAXSEQ);
    uint8_t(*maybe)[ST_MAXSEQ] = calloc(k->nprod ? k->nprod : 1, ST_MAXSEQ);
    uint8_t *pfate = calloc(k->nprod ? k->nprod : 1, 1); /* verdict of the instance's last message */

    CHECK(hold && maybe && pfate);
    memset(pm, 0, sizeof *pm);
    for (uint32_t c = 0; c < k->ncons; c++) {
        const worker *w = &L->cons[c];
        if (!w->dead)
            continue;
        if (w->tr.killed) {
            pm->armed++;
            pm->armed_at[(w->armed - 1) & 31]++;
        }
        verdict v = judge_consumer(w);
        switch (v.kind) {
        case D_HOLD: pm->hold++; break;
        case D_MAYBE_REL: pm->maybe_rel++; break;
        case D_REL: pm->rel++; break;
        case D_UNKNOWN: pm->unknown++; break;
        default: pm->none++; break;
        }
        if (v.kind == D_NONE || v.kind == D_UNKNOWN || v.inst >= k->nprod)
            continue;
        if (v.kind == D_HOLD && hold[v.inst][v.seq] < 255)
            hold[v.inst][v.seq]++;
        if (v.kind == D_MAYBE_REL && maybe[v.inst][v.seq] < 255)
            maybe[v.inst][v.seq]++;
        if (v.kind == D_REL) {
            msgrec *r = &L->msg[v.inst][v.seq];
            if (v.att >= 0)
                r->released |= (uint8_t)(1u << v.att); /* the same bit, if it was recorded */
            else if (!r->released && !r->rel_any)
                r->rel_any = 1; /* died in recv after its release: once, unless recorded */
        }
    }
    for (uint32_t i = 0; i < k->nprod; i++) {
        const worker *w = &L->prod[i];
        if (!w->dead)
            continue;
        if (w->tr.killed) {
            pm->armed++;
            pm->armed_at[(w->armed - 1) & 31]++;
        }
        verdict v = judge_producer(w, i, S->mode);
        pfate[i] = (uint8_t)v.kind;
        switch (v.kind) {
        case D_LOST: pm->lost++; break;
        case D_MAYBE_COMMIT: pm->maybe_commit++; break;
        case D_COMMITTED: pm->committed++; break;
        case D_MAYBE_LOST: pm->maybe_lost++; break;
        default: pm->none++; break;
        }
    }
    for (uint32_t i = 0; i < k->nprod; i++) {
        const worker *w = &L->prod[i];
        for (uint32_t s = 0; s < ST_MAXSEQ; s++) {
            const msgrec *r = &L->msg[i][s];
            int last = w->committed < w->reserving && s == w->reserving - 1;
            int fate = last ? pfate[i] : D_NONE;
            int committed = s < w->committed || fate == D_COMMITTED;
            unsigned h = hold[i][s], mb = maybe[i][s];
            int delivered = r->deliv || r->released || r->rel_any || h || mb;
            if (fate == D_LOST) {
                pm->lost_lo++, pm->lost_hi++;
                if (delivered)
                    th_fail(__FILE__, __LINE__, "message %u/%u delivered, but its producer died "
                            "holding its reservation", i, s);
                continue;
            }
            if (fate == D_MAYBE_LOST) {
                pm->lost_hi++;
                if (delivered)
                    th_fail(__FILE__, __LINE__, "message %u/%u delivered, but its producer died "
                            "before it could reserve it", i, s);
                continue;
            }
            if (fate == D_MAYBE_COMMIT && !delivered) {
                pm->lost_hi++; /* not committed after all, or committed and dropped unseen */
                continue;
            }
            if (!committed && fate != D_MAYBE_COMMIT) {
                if (delivered)
                    th_fail(__FILE__, __LINE__, "message %u/%u delivered, never committed "
                            "(reserving %u, committed %u)", i, s, w->reserving, w->committed);
                continue;
            }
            /* committed: consumed exactly once, or dropped */
            pm->committed_msgs++;
            int rel = __builtin_popcount(r->released) + r->rel_any;
            if (rel > 1)
                th_fail(__FILE__, __LINE__, "message %u/%u consumed %d times (released mask "
                        "%#x)", i, s, rel, r->released);
            int top = top_bit(r->deliv);
            if (rel == 1) {
                pm->consumed++;
                int a = r->released ? top_bit(r->released) : -1; /* its delivery's attempts */
                if (a >= 0 && top > a)
                    th_fail(__FILE__, __LINE__, "message %u/%u delivered with attempts %d after "
                            "its release with attempts %d", i, s, top, a);
                if (a >= 0 && (int)h > a)
                    th_fail(__FILE__, __LINE__, "message %u/%u: %u consumers died holding it, "
                            "yet it was released with attempts %d", i, s, h, a);
                if (a >= (int)D)
                    th_fail(__FILE__, __LINE__, "message %u/%u released at attempts %d: it "
                            "should have been dropped", i, s, a);
                if (a >= 0 && a > (int)(h + mb))
                    pm->need_unknown += (uint64_t)a - h - mb;
                pm->redeliv_lo += h;
                pm->redeliv_hi += a >= 0 ? (unsigned)a : h + mb; /* (+ unknown deaths) */
            } else if (mb) {
                /* released in the instant it died, or its holder died: dropped */
                pm->drops_hi++;
                if (h >= D)
                    pm->drops_lo++;
                pm->redeliv_lo += h < D ? h : D - 1;
                pm->redeliv_hi += D - 1;
            } else {
                /* never consumed: its D-th holder died - a drop */
                if (h > D)
                    th_fail(__FILE__, __LINE__, "message %u/%u: %u consumers died holding it, "
                            "more than max_deliveries %u", i, s, h, D);
                if (top >= (int)D)
                    th_fail(__FILE__, __LINE__, "message %u/%u delivered with attempts %d", i,
                            s, top);
                pm->drops_lo++, pm->drops_hi++;
                pm->need_unknown += D - h;
                pm->redeliv_lo += h < D ? h : D - 1;
                pm->redeliv_hi += D - 1;
            }
        }
    }
    free(hold);
    free(maybe);
    free(pfate);
}

/* Every point a storm arms killed a child there at least once - the
 * recovery points (queue.reap.*, passed only by a child that finds someone
 * dead to recover) at least once between them. */
static void point_floors(const storm_counts *k, const ledger *L, const storm *S)
{
    for (int r = 0; r < 2; r++) {
        const char *const *pts = r ? S->cons_points : S->prod_points;
        uint64_t per[32] = {0}, reap = 0;
        int nreap = 0;
        const worker *ws = r ? L->cons : L->prod;
        uint32_t n = r ? k->ncons : k->nprod;
        for (uint32_t i = 0; i < n; i++)
            if (ws[i].dead && ws[i].tr.killed)
                per[(ws[i].armed - 1) & 31]++;
        for (int j = 0; pts[j]; j++) {
            if (strncmp(pts[j], "queue.reap.", 11) == 0) {
                reap += per[j], nreap++;
            } else if (per[j] == 0) {
                th_fail(__FILE__, __LINE__, "no %s died at %s", r ? "consumer" : "producer",
                        pts[j]);
            }
        }
        if (nreap && reap == 0)
            th_fail(__FILE__, __LINE__, "no %s died recovering another", r ? "consumer" : "producer");
    }
}

static void storm_queue(pshm_queue_mode mode, int maxdel, int kills, int nprod, int ncons)
{
    const char *name = th_name("storm");
    pshm_queue_options o = qopts(mode, 0, ST_MAXMSG);
    pshm_queue *q = NULL, *c = NULL;
    storm S = {name, NULL, mode, 0, 150, 1, NULL, NULL, 0, 0}; /* producers mix send in */

    S.prod_points = mode == PSHM_QUEUE_SPSC ? prod_points_spsc : prod_points_mpmc;
    S.cons_points = mode == PSHM_QUEUE_SPSC ? cons_points_spsc : cons_points_mpmc;
    o.messages = 16;
    o.max_deliveries = (unsigned)maxdel;
    o.keep_open = 1;
    S.L = th_shared(sizeof(ledger));
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q));
    CHECK_OK(pshm_queue_close(q)); /* the children do the work */
    storm_counts k = storm_loop(&S, storm_producer, storm_consumer, nprod, ncons, kills, 6);
    /* drain what is left: a clean consumer, and the producer side closed */
    pshm_queue_options_init(&o);
    o.recover_ms = 5;
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &q));
    CHECK_OK(pshm_queue_close(q)); /* the last live producer: closes the queue */
    die_rate = 0;
    CHECK(k.ncons < ST_MAXC);
    CHECK_OK(storm_consume(&S, &S.L->cons[k.ncons++], c, 10000, 0));
    pshm_queue_info st = th_queue_stat(c);
    ledger *L = S.L;
    postmortem pm;
    storm_account(&S, &k, (unsigned)maxdel, &pm);
    printf("    %s: %d producer + %d consumer kills (%llu at armed points), %u instances, "
           "%llu committed, %llu consumed\n"
           "      deaths holding: a message %llu, a reservation %llu; released %llu, committed "
           "%llu, nothing %llu; undecided: claim %llu, release %llu, commit %llu, cell %llu\n"
           "      library: drops %llu in [%llu, %llu], redeliveries %llu in [%llu, %llu], lost "
           "reservations %llu in [%llu, %llu]\n",
           pshm_queue_mode_name(mode), k.kills_prod, k.kills_cons,
           (unsigned long long)pm.armed, k.nprod, (unsigned long long)pm.committed_msgs,
           (unsigned long long)pm.consumed, (unsigned long long)pm.hold,
           (unsigned long long)pm.lost, (unsigned long long)pm.rel,
           (unsigned long long)pm.committed, (unsigned long long)pm.none,
           (unsigned long long)pm.unknown, (unsigned long long)pm.maybe_rel,
           (unsigned long long)pm.maybe_commit, (unsigned long long)pm.maybe_lost,
           (unsigned long long)st.drops, (unsigned long long)pm.drops_lo,
           (unsigned long long)pm.drops_hi, (unsigned long long)st.redeliveries,
           (unsigned long long)pm.redeliv_lo, (unsigned long long)pm.redeliv_hi,
           (unsigned long long)st.lost_reservations, (unsigned long long)pm.lost_lo,
           (unsigned long long)pm.lost_hi);
    if (L->order || L->dupsame)
        printf("    violation: %llx %llx %llx\n", (unsigned long long)L->viol[0],
               (unsigned long long)L->viol[1], (unsigned long long)L->viol[2]);
    fflush(stdout);
    CHECK_EQ(L->errors, 0);
    CHECK_EQ(L->bad, 0);
    CHECK_EQ(L->beyond, 0);
    CHECK_EQ(L->order, 0);
    CHECK_EQ(L->dupsame, 0);  /* every duplicate is a redelivery after a death */
    CHECK_EQ(L->returned, 0);
    CHECK_EQ(L->overflow, 0);
    /* every message the library could not show consumed is a drop the
     * deaths explain; the counters are exactly what the deaths caused */
    CHECK(pm.need_unknown <= pm.unknown);
    CHECK(st.drops >= pm.drops_lo && st.drops <= pm.drops_hi);
    CHECK(st.redeliveries >= pm.redeliv_lo && st.redeliveries <= pm.redeliv_hi + pm.unknown);
    CHECK(st.lost_reservations >= pm.lost_lo && st.lost_reservations <= pm.lost_hi);
    /* floors: the storm reached its windows */
    int f = kills / 40;
    if (pm.hold < (uint64_t)f || pm.lost < (uint64_t)f || pm.armed < (uint64_t)(kills / 8))
        th_fail(__FILE__, __LINE__, "too few deaths in the windows: %llu holding a message, %llu "
                "a reservation, %llu at armed points (floors %d, %d, %d)",
                (unsigned long long)pm.hold, (unsigned long long)pm.lost,
                (unsigned long long)pm.armed, f, f, kills / 8);
    point_floors(&k, L, &S);
    CHECK(pm.consumed > 1000);
    CHECK_EQ(st.depth, 0);
    CHECK_EQ(st.dead, 0);
    CHECK(st.shut_down);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(c));
}


TEST_TIMEOUT(spsc_sigkill_storm, 1200)
{
    storm_queue(PSHM_QUEUE_SPSC, 3, (th_soak() > 1) ? 20000 : 800, 1, 1);
}

TEST_TIMEOUT(mpmc_sigkill_storm, 1200)
{
    storm_queue(PSHM_QUEUE_MPMC, 2, (th_soak() > 1) ? 20000 : 1000, 2, 2);
}

/* Broadcast: a message's seq is its position in the stream (the head when
 * its producer instance started, plus its index), so a subscriber can check
 * that consecutive messages are consecutive positions, or that the gap is
 * exactly what it was told it lost. A witness subscriber that never dies
 * also notes which instance wrote each position, so no reservation a
 * producer died holding can have been delivered. */
#define BW_POSITIONS (1u << 20)
static uint32_t *bw_seen; /* position -> instance + 1, as the witness saw it */

static int bstorm_producer(void *arg)
{
    storm *S = arg;
    ledger *L = S->L;
    uint32_t inst = S->index;
    worker *w = &L->prod[inst];
    pshm_queue *q = NULL;
    pshm_queue_options o;
    unsigned char buf[ST_MAXMSG];

    child_start(S, w, S->prod_points);
    pshm_queue_options_init(&o);
    o.keep_open = 1;
    o.recover_ms = 5;
    o.spin = 50;
    kill_point();
    int r = pshm_queue_open(S->name, PSHM_QUEUE_PRODUCER, &o, &q);
    if (r == -PSHM_EROLE)
        return 0;
    if (r != 0) {
        ledger_error(L, r);
        return 20;
    }
    /* we hold the producer role: head is ours */
    uint64_t p0 = Q_LDA(&((struct qhdr *)pshm_block_data(pshm_queue_block(q)))->head);
    w->inst = (uint32_t)p0; /* where this instance starts */
    for (uint32_t k = 0; k < ST_MAXSEQ; k++) {
        uint32_t pos = (uint32_t)(p0 + k);
        size_t len = msg_len(inst, pos, ST_MAXMSG);
        struct timespec dl;
        void *p;
        deadline_ms(&dl, 10000);
        ASTORE(&w->reserving, k + 1);
        kill_point();
        begin_op(w, OP_SEND);
        r = pshm_queue_timedreserve(q, len, &p, &dl);
        if (r != 0) {
            ledger_error(L, r);
            return 21;
        }
        msg_fill(buf, inst, pos, len);
        memcpy(p, buf, len / 2);
        kill_point();
        memcpy((unsigned char *)p + len / 2, buf + len / 2, len - len / 2);
        kill_point();
        r = pshm_queue_commit(q, len);
        if (r != 0) {
            ledger_error(L, r);
            return 22;
        }
        kill_point();
        ASTORE(&w->committed, k + 1);
        ASTORE(&w->op, OP_NONE);
    }
    pshm_queue_close(q);
    return 0;
}

/* Read until closed (or idle); check continuity; returns 0 or an error. */
static int bstorm_read(storm *S, worker *wk, pshm_queue *q, int idle_ms, bwitness *w)
{
    int have = 0;
    uint64_t prev = 0;

    for (;;) {
        const void *p;
        size_t len;
        struct timespec dl;
        pshm_queue_msg_info mi;
        pshm_queue_msg_info_init(&mi);
        tmsg m;
        deadline_ms(&dl, idle_ms);
        kill_point();
        begin_op(wk, OP_PEEK);
        int r = pshm_queue_timedpeek(q, &p, &len, &dl);
        if (r == -PSHM_ECLOSED || r == -ETIMEDOUT)
            return 0;
        if (r != 0)
            return r;
        const char *bad = msg_check(p, len, &m); /* in place: trusted only if release says so */
        CHECK_OK(pshm_queue_msginfo(q, &mi));
        kill_point();
        begin_op(wk, OP_RELEASE);
        r = pshm_queue_release(q);
        ASTORE(&wk->op, OP_NONE);
        if (r == -PSHM_EOVERWRITTEN && S->overwrite)
            continue; /* counted in the next message's lost */
        if (r != 0)
            return r;
        if (bad) {
            __atomic_add_fetch(w ? &w->bad : (uint64_t *)&S->L->bad, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        if ((have && m.seq != prev + 1 + mi.lost) || (!S->overwrite && mi.lost)) {
            S->L->viol[0] = m.seq, S->L->viol[1] = prev, S->L->viol[2] = mi.lost;
            S->L->viol[3] = (uint64_t)m.inst;
            if (w)
                w->order++;
            else
                __atomic_add_fetch(&S->L->order, 1, __ATOMIC_SEQ_CST);
        }
        if (w) {
            w->count++;
            w->lost += mi.lost;
            w->last = m.seq;
            if (m.seq < BW_POSITIONS)
                bw_seen[m.seq] = m.inst + 1;
        }
        have = 1;
        prev = m.seq;
    }
}

static int bstorm_subscriber(void *arg)
{
    storm *S = arg;
    worker *w = &S->L->cons[S->index];
    pshm_queue *q = NULL;
    pshm_queue_options o;

    child_start(S, w, S->cons_points);
    pshm_queue_options_init(&o);
    o.spin = 50;
    kill_point();
    int r = pshm_queue_open(S->name, PSHM_QUEUE_CONSUMER, &o, &q);
    if (r != 0) {
        ledger_error(S->L, r);
        return 20;
    }
    r = bstorm_read(S, w, q, 3000, NULL);
    if (r != 0) {
        ledger_error(S->L, r);
        return 21;
    }
    pshm_queue_close(q);
    return 0;
}

static int bstorm_witness(void *arg)
{
    storm *S = arg;
    pshm_queue *q = NULL;
    bwitness *w = &S->L->witness;
    worker self;

    die_rate = 0;
    memset(&self, 0, sizeof self);
    if (pshm_queue_open(S->name, PSHM_QUEUE_CONSUMER, NULL, &q) != 0)
        return 30;
    ASTORE(&w->joined, 1);
    int r = bstorm_read(S, &self, q, 60000, w);
    pshm_queue_close(q);
    return r == 0 ? 0 : 31;
}

static int witness_joined(void *p) { return ALOAD(&((bwitness *)p)->joined) == 1; }

static void storm_broadcast(int overwrite, int kills)
{
    const char *name = th_name("bstorm");
    pshm_queue_options o = qopts(PSHM_QUEUE_BROADCAST, 0, ST_MAXMSG);
    pshm_queue *q = NULL;
    storm S = {name, NULL, PSHM_QUEUE_BROADCAST, overwrite, 150, 0, prod_points_bcast,
               cons_points_bcast, 0, 0};

    o.messages = 16;
    o.overwrite = overwrite;
    o.keep_open = 1;
    S.L = th_shared(sizeof(ledger));
    bw_seen = th_shared(BW_POSITIONS * sizeof *bw_seen);
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q));
    CHECK_OK(pshm_queue_close(q));
    pid_t wit = th_fork(bstorm_witness, &S);
    CHECK(th_until(witness_joined, &S.L->witness, 10000));
    storm_counts k = storm_loop(&S, bstorm_producer, bstorm_subscriber, 1, 3, kills, 6);
    pshm_queue_options_init(&o);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &q));
    uint64_t head = Q_LDA(&((struct qhdr *)pshm_block_data(pshm_queue_block(q)))->head);
    pshm_queue_info st = th_queue_stat(q);
    CHECK_OK(pshm_queue_close(q)); /* closes: the witness drains and leaves */
    CHECK_EQ(th_wait(wit, 60000), 0);
    ledger *L = S.L;
    bwitness *w = &L->witness;
    /* the dead producers: what they held, and was any of it delivered */
    uint64_t lost = 0, maybe = 0, committed = 0, armed = 0, sub_hold = 0;
    for (uint32_t i = 0; i < k.nprod; i++) {
        const worker *pw = &L->prod[i];
        if (!pw->dead)
            continue;
        armed += pw->tr.killed;
        verdict v = judge_producer(pw, i, PSHM_QUEUE_BROADCAST);
        uint64_t pos = (uint64_t)pw->inst + v.seq;
        if ((v.kind == D_LOST || v.kind == D_MAYBE_LOST) && pos < BW_POSITIONS &&
            bw_seen[pos] == i + 1)
            th_fail(__FILE__, __LINE__, "position %llu delivered from instance %u, which "
                    "died holding its reservation", (unsigned long long)pos, i);
        if (v.kind == D_LOST) {
            lost++;
        } else if (v.kind == D_MAYBE_COMMIT || v.kind == D_MAYBE_LOST) {
            maybe++;
        } else if (v.kind == D_COMMITTED) {
            committed++;
        }
    }
    for (uint32_t i = 0; i < k.ncons; i++) {
        const worker *cw = &L->cons[i];
        if (!cw->dead)
            continue;
        armed += cw->tr.killed;
        sub_hold += judge_consumer(cw).kind == D_HOLD;
    }
    printf("    broadcast %s: %d producer + %d subscriber kills (%llu at armed points), %u "
           "instances, head %llu, witness got %llu lost %llu, overruns %llu\n"
           "      deaths holding a reservation %llu (undecided %llu), after commit %llu, "
           "holding a message %llu; lost reservations %llu\n",
           overwrite ? "overwrite" : "blocking", k.kills_prod, k.kills_cons,
           (unsigned long long)armed, k.nprod, (unsigned long long)head,
           (unsigned long long)w->count, (unsigned long long)w->lost,
           (unsigned long long)st.overruns, (unsigned long long)lost, (unsigned long long)maybe,
           (unsigned long long)committed, (unsigned long long)sub_hold,
           (unsigned long long)st.lost_reservations);
    if (L->order || w->order)
        printf("    order: seq %llu after %llu, lost %llu, inst %llu\n", (unsigned long long)L->viol[0],
               (unsigned long long)L->viol[1], (unsigned long long)L->viol[2],
               (unsigned long long)L->viol[3]);
    fflush(stdout);
    CHECK_EQ(L->errors, 0);
    CHECK_EQ(L->bad, 0);
    CHECK_EQ(L->order, 0);
    CHECK_EQ(w->bad, 0);
    CHECK_EQ(w->order, 0);
    CHECK(head > 1000);
    if (overwrite) {
        CHECK_EQ(w->count + w->lost, head); /* every message seen or counted lost */
    } else {
        CHECK_EQ(w->count, head); /* every message, in order */
        CHECK_EQ(w->lost, 0);
        CHECK_EQ(st.overruns, 0);
        CHECK_EQ(st.drops, 0);
    }
    CHECK_EQ(w->last, head - 1);
    /* every lost reservation is a producer that died holding one */
    CHECK(st.lost_reservations >= lost && st.lost_reservations <= lost + maybe);
    int f = kills / 40;
    if (lost < (uint64_t)f || armed < (uint64_t)(kills / 8))
        th_fail(__FILE__, __LINE__, "too few deaths in the windows: %llu holding a reservation, "
                "%llu at armed points (floors %d, %d)", (unsigned long long)lost,
                (unsigned long long)armed, f, kills / 8);
    point_floors(&k, L, &S);
    CHECK_OK(pshm_unlink(name));
}

TEST_TIMEOUT(broadcast_blocking_sigkill_storm, 1200)
{
    storm_broadcast(0, (th_soak() > 1) ? 10000 : 400);
}

TEST_TIMEOUT(broadcast_overwrite_sigkill_storm, 1200)
{
    storm_broadcast(1, (th_soak() > 1) ? 10000 : 400);
}

/* ------------------------------------------------------------ fuzz seeds */

/* write_fuzz_seeds DIR: small valid queues of every mode, with messages in
 * them (and an SPSC pad record), as seeds for tests/fuzz/fuzz_queue. */
HELPER(write_fuzz_seeds)
{
    static const struct {
        const char *file;
        pshm_queue_mode mode;
        int overwrite, sends, recvs;
    } kinds[] = {
        {"spsc", PSHM_QUEUE_SPSC, 0, 5, 3},
        {"spsc_pad", PSHM_QUEUE_SPSC, 0, 9, 6},
        {"mpmc", PSHM_QUEUE_MPMC, 0, 3, 1},
        {"broadcast", PSHM_QUEUE_BROADCAST, 0, 3, 0},
        {"broadcast_overwrite", PSHM_QUEUE_BROADCAST, 1, 11, 0},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        char name[64], path[512];
        pshm_queue_options o = qopts(kinds[k].mode, 0, 48);
        pshm_queue *p = NULL, *c = NULL;
        snprintf(name, sizeof name, "pshm_seed_%ld_%zu", (long)getpid(), k);
        o.messages = 4;
        o.max_participants = 2;
        o.overwrite = kinds[k].overwrite;
        if (pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c) != 0 ||
            pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p) != 0)
            return 1;
        for (int i = 0; i < kinds[k].sends; i++) {
            unsigned char buf[48];
            size_t len = 16 + (size_t)(i * 11) % 33;
            msg_fill(buf, 1, (uint32_t)i, len);
            if (pshm_queue_send(p, buf, len) != 0)
                return 2;
            if (i < kinds[k].recvs) {
                size_t l;
                if (pshm_queue_recv(c, buf, sizeof buf, &l) != 0)
                    return 3;
            }
        }
        snprintf(path, sizeof path, "%s/%s", argv[0], kinds[k].file);
        FILE *f = fopen(path, "wb");
        pshm_block *b = pshm_queue_block(p);
        if (!f || fwrite(pshm_block_data(b), 1, pshm_block_size(b), f) != pshm_block_size(b))
            return 4;
        fclose(f);
        pshm_block_unlink(b);
        pshm_queue_close(c);
        pshm_queue_close(p);
    }
    return 0;
}

/* The fuzz target's path on real queues: a private copy validates and
 * drains exactly what is queued; with the ring scribbled over, draining
 * stays inside the copy (ASan watches) and never runs away. */
TEST(private_copies_validate_and_drain_even_when_scribbled)
{
    for (int mode = PSHM_QUEUE_SPSC; mode <= PSHM_QUEUE_BROADCAST; mode++) {
        const char *name = th_name("copy");
        pshm_queue_options o = qopts(mode, 0, 100);
        pshm_queue *p = NULL, *c = NULL;
        o.messages = 8;
        o.max_participants = 2;
        o.overwrite = mode == PSHM_QUEUE_BROADCAST;
        CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
        CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
        for (uint32_t i = 0; i < 6; i++) {
            unsigned char buf[100];
            size_t len = msg_len(1, i, 100);
            msg_fill(buf, 1, i, len);
            CHECK_OK(pshm_queue_send(p, buf, len));
        }
        pshm_block *b = pshm_queue_block(p);
        size_t size = pshm_block_size(b);
        void *m = NULL;
        CHECK(posix_memalign(&m, 64, size) == 0);
        qgeom g;
        CHECK_OK(pshm__queue_validate(pshm_block_data(b), size, &g));
        CHECK_ERR(pshm__queue_validate(pshm_block_data(b), size - 1, &g), -PSHM_EBADFORMAT);
        CHECK_ERR(pshm__queue_validate(pshm_block_data(b), 100, &g), -PSHM_EKIND);
        memcpy(m, pshm_block_data(b), size);
        CHECK_EQ(pshm__queue_fuzz_drain(m, size, 100), 6);
        uint64_t seed = 12345;
        for (int round = 0; round < 300; round++) {
            th_queue_scribble(m, pshm_block_data(b), size, &g, &seed, round);
            if (round % 5 == 0) { /* and the indices */
                struct qhdr *h = m;
                h->head += (seed >> 40) % 64;
                h->tail -= (seed >> 50) % 32;
            }
            long n = pshm__queue_fuzz_drain(m, size, 100);
            CHECK(n <= 100);
        }
        free(m);
        CHECK_OK(pshm_block_unlink(b));
        CHECK_OK(pshm_queue_close(c));
        CHECK_OK(pshm_queue_close(p));
    }
}

/* ------------------------------------------------------------ threads */

/* One handle per thread, several threads per process (ThreadSanitizer
 * watches the handles' private state here). */
typedef struct thr_arg {
    const char *name;
    int role;
    uint32_t inst, count;
    uint32_t got[2];
    int rc;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    pshm_queue *q = NULL;
    pshm_queue_options o;
    unsigned char buf[256];

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    o.spin = 20;
    a->rc = pshm_queue_open(a->name, a->role, &o, &q);
    if (a->rc != 0)
        return NULL;
    if (a->role == PSHM_QUEUE_PRODUCER) {
        for (uint32_t s = 0; s < a->count && a->rc == 0; s++) {
            size_t len = msg_len(a->inst, s, sizeof buf);
            msg_fill(buf, a->inst, s, len);
            a->rc = pshm_queue_send(q, buf, len);
        }
    } else {
        for (;;) {
            size_t len;
            tmsg m;
            int r = pshm_queue_recv(q, buf, sizeof buf, &len);
            if (r == -PSHM_ECLOSED)
                break;
            if (r != 0 || msg_check(buf, len, &m) != NULL || m.inst > 1) {
                a->rc = r ? r : -1;
                break;
            }
            a->got[m.inst]++;
        }
    }
    pshm_queue_close(q);
    return NULL;
}

TEST_TIMEOUT(handles_in_threads, 60)
{
    const char *name = th_name("thr");
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 0, 256);
    pshm_queue *ctl = NULL;
    pthread_t t[4];
    thr_arg a[4];

    o.messages = 16;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &ctl));
    for (int i = 0; i < 4; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].name = name;
        a[i].role = i < 2 ? PSHM_QUEUE_PRODUCER : PSHM_QUEUE_CONSUMER;
        a[i].inst = (uint32_t)i;
        a[i].count = 20000;
        CHECK(pthread_create(&t[i], NULL, thr_main, &a[i]) == 0);
    }
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    CHECK_OK(pshm_queue_close(ctl)); /* the last producer: closed */
    for (int i = 2; i < 4; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < 4; i++)
        CHECK_OK(a[i].rc);
    CHECK_EQ(a[2].got[0] + a[3].got[0], 20000);
    CHECK_EQ(a[2].got[1] + a[3].got[1], 20000);
    CHECK_OK(pshm_unlink(name));
}

/* A producer killed between the two commit stores of a wrapped record (its
 * own seq, then its PAD's) leaves a committed-looking record at the lap's
 * start behind an uncommitted PAD. The next producer must scrub it: here
 * its records end exactly at the ring's end, so its next record starts
 * there, and a consumer must not take the stale one while it is written.
 * The child dies inside pshm_queue_commit, at the fault point between the
 * two stores. */
static int halfcommit_child(void *p)
{
    const char *name = p;
    pshm_queue *q = NULL;
    pshm_queue_options o;
    void *w;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &q) != 0)
        return 10;
    /* at 640 of 1024: a 400-byte message (record 416) needs a PAD of 384 */
    if (pshm_queue_reserve(q, 400, &w) != 0)
        return 12;
    msg_fill(w, 66, 66, 400);
    th_arm("queue.commit.between_words", 0);
    pshm_queue_commit(q, 400);
    return 13; /* a commit without a PAD never passes that point */
}

TEST(spsc_producer_killed_between_the_two_commit_stores_of_a_wrap)
{
    const char *name = th_name("half");
    pshm_queue_options o = qopts(PSHM_QUEUE_SPSC, 1024, 400);
    pshm_queue *c = NULL, *p = NULL;
    const void *rp;
    size_t len;
    unsigned char buf[400];
    tmsg m;
    void *w;

    o.keep_open = 1;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_EQ(th_queue_stat(c).ring_bytes, 1024);
    /* two records of 320 bytes, consumed: head = tail = 640 */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    for (uint32_t i = 0; i < 2; i++) {
        msg_fill(buf, 5, i, 304);
        CHECK_OK(pshm_queue_send(p, buf, 304));
        CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
    }
    CHECK_OK(pshm_queue_close(p));
    th_died_at(th_fork(halfcommit_child, (void *)name), "queue.commit.between_words", 10000);
    CHECK_ERR(pshm_queue_trypeek(c, &rp, &len), -EAGAIN); /* its PAD is not committed */
    /* a new producer fills exactly to the ring's end (one record of 384),
     * then starts a record at the lap's start and stops half way */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_EQ(th_queue_stat(c).lost_reservations, 1);
    msg_fill(buf, 7, 0, 368);
    CHECK_OK(pshm_queue_send(p, buf, 368));
    CHECK_OK(pshm_queue_trypeek(c, &rp, &len));
    CHECK(msg_check(rp, len, &m) == NULL && m.inst == 7);
    CHECK_OK(pshm_queue_release(c));
    CHECK_OK(pshm_queue_reserve(p, 300, &w));
    unsigned char *ring = (unsigned char *)pshm_block_data(pshm_queue_block(p)) +
                          (Q_HDR_SIZE + 64 * Q_PART_SIZE + Q_RING_ALIGN - 1) / Q_RING_ALIGN * Q_RING_ALIGN;
    CHECK((unsigned char *)w == ring + Q_REC); /* at the lap's start, no PAD */
    memset(w, 0xab, 100);
    CHECK_ERR(pshm_queue_trypeek(c, &rp, &len), -EAGAIN); /* not the dead one's record */
    msg_fill(w, 8, 1, 300);
    CHECK_OK(pshm_queue_commit(p, 300));
    CHECK_OK(pshm_queue_trypeek(c, &rp, &len));
    CHECK(msg_check(rp, len, &m) == NULL && m.inst == 8 && m.seq == 1);
    CHECK_OK(pshm_queue_release(c));
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c));
}

/* A producer that commits a message and dies before it moves head, the
 * hint a new producer starts from: at the fault point inside commit. */
static int headlag_child(void *arg)
{
    const char *name = arg;
    pshm_queue_options o;
    pshm_queue *q = NULL;
    void *w;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &q) != 0)
        return 10;
    if (pshm_queue_reserve(q, 40, &w) != 0)
        return 12;
    msg_fill(w, 9, 0, 40);
    th_arm("queue.commit.after_word", 0); /* committed, head not moved */
    pshm_queue_commit(q, 40);
    return 13;
}

/* The consumer takes that message, so it is past head: a new producer must
 * still attach, count no lost reservation, and go on after the message -
 * round the ring, with nothing lost or repeated. */
static void headlag_mode(pshm_queue_mode mode)
{
    const char *name = th_name("hlag");
    pshm_queue_options o = qopts(mode, 1024, 64);
    pshm_queue *c = NULL, *p = NULL;
    unsigned char buf[64];
    pshm_queue_msg_info mi;
    pshm_queue_msg_info_init(&mi);
    tmsg m;

    o.keep_open = 1;
    if (mode == PSHM_QUEUE_BROADCAST) {
        o.ring_bytes = 0;
        o.messages = 4;
    }
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_CONSUMER, &o, &c));
    th_died_at(th_fork(headlag_child, (void *)name), "queue.commit.after_word", 10000);
    CHECK_OK(recv_msg(c, 1000, &m, NULL));
    CHECK(m.inst == 9 && m.seq == 0);
    CHECK(Q_LDA(&c->h->head) == 0);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_EQ(th_queue_stat(c).lost_reservations, 0); /* it was committed, and delivered */
    for (uint32_t i = 0; i < 40; i++) {
        msg_fill(buf, 10, i, 40);
        CHECK_OK(pshm_queue_send(p, buf, 40));
        CHECK_OK(recv_msg(c, 1000, &m, &mi));
        CHECK(m.inst == 10 && m.seq == i);
        CHECK_EQ(mi.lost, 0);
    }
    CHECK_ERR(recv_msg(c, 10, &m, NULL), -ETIMEDOUT);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(c)));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c));
}

TEST(spsc_producer_killed_before_moving_head) { headlag_mode(PSHM_QUEUE_SPSC); }
TEST(broadcast_producer_killed_before_moving_head) { headlag_mode(PSHM_QUEUE_BROADCAST); }

/* A creator killed at `point` inside pshm_queue_create. */
typedef struct early_death {
    const char *name, *point;
} early_death;

static int early_creator(void *p)
{
    early_death *e = p;
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 4096, 64);
    pshm_queue *q = NULL;

    th_arm(e->point, 0);
    (void)pshm_queue_create(e->name, PSHM_QUEUE_PRODUCER, &o, &q);
    return 3; /* never passed the point */
}

TEST(queue_whose_creator_died_before_writing_anything_is_not_recoverable)
{
    /* Killed just after the block got its name, before the queue's code
     * wrote a byte: the attacher is told the creator died, as for a death
     * later in the initialisation, not "not a queue" (and at once, not
     * after open_timeout_ms). */
    const char *points[] = {"block.create.linked", "block.create.named"};

    for (int i = 0; i < 2; i++) {
        early_death e = {th_name(i ? "early_named" : "early_linked"), points[i]};
        pshm_queue_options o;
        pshm_queue *q = NULL;
        pshm_queue_info info;

        th_died_at(th_fork(early_creator, &e), e.point, 10000);
        CHECK(th_exists(e.name));
        pshm_queue_options_init(&o);
        o.open_timeout_ms = 2000;
        CHECK_ERR(pshm_queue_open(e.name, PSHM_QUEUE_CONSUMER, &o, &q), -PSHM_ENOTRECOVERABLE);
        pshm_queue_info_init(&info);
        CHECK_ERR(pshm_queue_stat(e.name, &info), -EAGAIN); /* still being made, as far as bytes tell */
        CHECK_OK(pshm_unlink(e.name));
    }
}

/* A consumer that dies inside the copying recv, at `point`. */
typedef struct recv_death {
    const char *name, *point;
} recv_death;

static int recv_child(void *p)
{
    recv_death *d = p;
    pshm_queue *q = NULL;
    char buf[64];
    size_t n;

    if (pshm_queue_open(d->name, PSHM_QUEUE_CONSUMER, NULL, &q) != 0)
        return 10;
    th_arm(d->point, 0);
    (void)pshm_queue_recv(q, buf, sizeof buf, &n);
    return 11; /* never passed the point */
}

TEST(copying_recv_is_at_least_once_until_its_release_and_consumed_after)
{
    /* The header's promise for recv: killed before its internal release
     * (after the copy), the message is delivered again; killed after it,
     * the message was consumed, and is not. */
    const pshm_queue_mode modes[] = {PSHM_QUEUE_SPSC, PSHM_QUEUE_MPMC};
    const char *points[] = {"queue.recv.copied", "queue.release.after_word"};

    for (int m = 0; m < 2; m++) {
        for (int i = 0; i < 2; i++) {
            recv_death d = {th_name(m ? "recvd_mpmc" : "recvd_spsc"), points[i]};
            pshm_queue_options o = qopts(modes[m], 4096, 64);
            pshm_queue *p = NULL, *c = NULL;
            char buf[64];
            size_t n = 0;

            CHECK_OK(pshm_queue_create(d.name, PSHM_QUEUE_PRODUCER, &o, &p));
            CHECK_OK(pshm_queue_send(p, "one", 3));
            CHECK_OK(pshm_queue_send(p, "two", 3));
            th_died_at(th_fork(recv_child, &d), d.point, 10000);
            CHECK_OK(pshm_queue_open(d.name, PSHM_QUEUE_CONSUMER, NULL, &c));
            CHECK_OK(pshm_queue_tryrecv(c, buf, sizeof buf, &n));
            CHECK_EQ(n, 3);
            pshm_queue_info st = th_queue_stat(c);
            if (i == 0) {
                CHECK(memcmp(buf, "one", 3) == 0); /* delivered again */
                CHECK_EQ(st.redeliveries, 1);
            } else {
                CHECK(memcmp(buf, "two", 3) == 0); /* "one" was consumed */
                CHECK_EQ(st.redeliveries, 0);
            }
            CHECK_OK(pshm_queue_close(c));
            CHECK_OK(pshm_queue_close(p));
            CHECK_OK(pshm_unlink(d.name));
        }
    }
}
