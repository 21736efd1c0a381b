/* test_queue.c - queues: modes, waiting, closing, bad input, and crashes
 * (SIGKILL injection at every step of reserve/commit/peek/release). */
#include "harness.h"
#include "queue_internal.h"

#include <errno.h>
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
    o.mode = mode;
    o.capacity = cap;
    o.max_msg = max_msg;
    return o;
}

static pshm_queue_stats qstat(pshm_queue *q)
{
    pshm_queue_stats st;
    CHECK_OK(pshm_queue_stat(q, &st, sizeof st));
    return st;
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
    o.mode = 7;
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
    CHECK_EQ(pshm_queue_get_mode(p), PSHM_QUEUE_SPSC);
    CHECK_EQ(pshm_queue_max_msg(p), 100);
    pshm_queue_stats st = qstat(p);
    CHECK_EQ(st.capacity, 1024); /* power of two, >= 2 records of 16 + 112 */
    CHECK_EQ(st.producers, 1);
    CHECK_EQ(st.consumers, 0);
    CHECK_ERR(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &x), -EEXIST);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &c));
    CHECK_EQ(qstat(c).consumers, 1);
    o.block.open_existing = 1;
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
    o.capacity_msgs = 5;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    st = qstat(p);
    CHECK_EQ(st.capacity, 8);
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
    CHECK_ERR(pshm_queue_inspect(name, NULL, 0, NULL, 0, NULL), -PSHM_EKIND);
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
    h->version = 2;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EVERSION);
    *h = saved;
    h->abi ^= 1;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EABI);
    *h = saved;
    h->nslots = 1u << 30;
    CHECK_ERR(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_queue_inspect(name, NULL, 0, NULL, 0, NULL), -PSHM_EBADFORMAT);
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
    pshm_queue_stats st = qstat(c);
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
    CHECK(qstat(c).closed);
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

    o.capacity_msgs = 4;
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
        CHECK_OK(pshm_queue_msginfo(c, &mi));
        CHECK_EQ(mi.lost, 1001 - 4);
        int first;
        memcpy(&first, buf, sizeof first);
        CHECK_EQ(first, 1001 - 4);
        CHECK_EQ(qstat(c).overruns, 1001 - 4);
    } else {
        CHECK(n >= 4);
        CHECK(n <= 8);
        struct timespec dl;
        deadline_ms(&dl, 20);
        CHECK_ERR(pshm_queue_timedsend(p, &n, sizeof n, &dl), -ETIMEDOUT);
        CHECK_EQ(qstat(p).waits_full, 1);
        CHECK_EQ(qstat(p).depth, (uint64_t)n);
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
    CHECK_EQ(qstat(p).capacity, 1024);
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
    CHECK_EQ(qstat(c).received, 3000);
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
    CHECK_OK(pshm_queue_close_producer(c2)); /* anyone may close it */
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
        CHECK_OK(pshm_queue_msginfo(c, &mi));
        CHECK_EQ(mi.returned, 1);
        CHECK_EQ(mi.attempts, 0);
        CHECK_OK(pshm_queue_recv(c, buf, sizeof buf, &len));
        CHECK(len == 1 && buf[0] == 'b');
        CHECK_EQ(qstat(c).redeliveries, 1);
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
    pshm_queue_stats st = qstat(c);
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
        for (int tries = 0; qstat(ctl).consumers < (unsigned)ncons && tries < 5000; tries++)
            th_sleep_ms(2);
        CHECK_EQ(qstat(ctl).consumers, ncons);
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
