/* SPDX-License-Identifier: MIT */
/* test_queue_many.c - batch claims (pshm_queue_peekmany / releasemany):
 * SPSC and MPMC, batches that wrap the ring, partial releases, empty and
 * timeout, bad arguments, and consumers SIGKILLed holding a batch: every
 * message of it comes back (or is dropped as poison), none twice. */
#include "harness.h"
#include "harness_queue.h"
#include "queue_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static pshm_queue_options qopts(pshm_queue_mode mode, size_t max_msg)
{
    pshm_queue_options o;
    pshm_queue_options_init(&o);
    o.queue_mode = mode;
    o.max_msg = max_msg;
    o.recover_ms = 5;
    if (mode == PSHM_QUEUE_SPSC)
        o.ring_bytes = 4096; /* 64 records of 1 line, fewer of more */
    else
        o.messages = 16;
    return o;
}

/* message k: its number, then bytes derived from it; len from 4 to max */
static size_t mlen(uint32_t k, size_t max) { return 4 + (k * 7919u) % (max - 3); }

static void send_k(pshm_queue *p, uint32_t k, size_t max)
{
    unsigned char buf[512];
    size_t len = mlen(k, max);
    memcpy(buf, &k, 4);
    for (size_t i = 4; i < len; i++)
        buf[i] = (unsigned char)(k + i);
    CHECK_OK(pshm_queue_send(p, buf, len));
}

/* The number of an intact message, or fail. */
static uint32_t check_k(const void *ptr, size_t len, size_t max)
{
    const unsigned char *b = ptr;
    uint32_t k;
    CHECK(len >= 4);
    memcpy(&k, b, 4);
    CHECK_EQ(len, mlen(k, max));
    for (size_t i = 4; i < len; i++)
        CHECK_EQ(b[i], (unsigned char)(k + i));
    CHECK(((uintptr_t)ptr % PSHM_QUEUE_ALIGN) == 0);
    return k;
}

static void pair(pshm_queue_mode mode, const char *tag, size_t max, pshm_queue **p,
                 pshm_queue **c)
{
    pshm_queue_options o = qopts(mode, max);
    CHECK_OK(pshm_queue_create(th_name(tag), PSHM_QUEUE_PRODUCER, &o, p));
    CHECK_OK(pshm_queue_open(th_name(tag), PSHM_QUEUE_CONSUMER, &o, c));
}

/* ------------------------------------------------------------ basics */

TEST(bad_arguments_and_order)
{
    pshm_queue *p = NULL, *c = NULL;
    const void *ptrs[4];
    size_t lens[4], n = 99;
    struct timespec bad = {0, 1000000000L};

    pair(PSHM_QUEUE_MPMC, "bad", 64, &p, &c);
    CHECK_ERR(pshm_queue_trypeekmany(NULL, ptrs, lens, 4, &n), -EINVAL);
    CHECK_EQ(n, 0);
    CHECK_ERR(pshm_queue_trypeekmany(c, NULL, lens, 4, &n), -EINVAL);
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, NULL, 4, &n), -EINVAL);
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 4, NULL), -EINVAL);
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 0, &n), -EINVAL);
    CHECK_ERR(pshm_queue_timedpeekmany(c, ptrs, lens, 4, &n, &bad), -EINVAL);
    CHECK_ERR(pshm_queue_timedpeekmany(c, ptrs, lens, 4, &n, NULL), -EINVAL);
    CHECK_ERR(pshm_queue_trypeekmany(p, ptrs, lens, 4, &n), -PSHM_EROLE);
    CHECK_ERR(pshm_queue_releasemany(p, 1), -PSHM_EROLE);
    CHECK_ERR(pshm_queue_releasemany(NULL, 1), -EINVAL);
    CHECK_ERR(pshm_queue_releasemany(c, 1), -PSHM_EORDER); /* nothing held */
    CHECK_OK(pshm_queue_releasemany(c, 0));
    /* a single peek pending: no batch on top of it */
    send_k(p, 0, 64);
    send_k(p, 1, 64);
    CHECK_OK(pshm_queue_trypeek(c, &ptrs[0], &lens[0]));
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 4, &n), -PSHM_EORDER);
    CHECK_OK(pshm_queue_release(c));
    /* a batch held: no single peek or release on top of it */
    CHECK_OK(pshm_queue_trypeekmany(c, ptrs, lens, 4, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(check_k(ptrs[0], lens[0], 64), 1);
    CHECK_ERR(pshm_queue_trypeek(c, &ptrs[1], &lens[1]), -PSHM_EORDER);
    CHECK_ERR(pshm_queue_release(c), -PSHM_EORDER);
    pshm_queue_msg_info mi;
    pshm_queue_msg_info_init(&mi);
    CHECK_ERR(pshm_queue_msginfo(c, &mi), -PSHM_EORDER);
    CHECK_ERR(pshm_queue_releasemany(c, 2), -EINVAL); /* more than held */
    CHECK_OK(pshm_queue_releasemany(c, 1));
    CHECK_ERR(pshm_queue_releasemany(c, 1), -PSHM_EORDER);
    th_queue_pair_close(p, c);

    /* BROADCAST: not supported */
    pshm_queue_options o = qopts(PSHM_QUEUE_BROADCAST, 64);
    CHECK_OK(pshm_queue_create(th_name("badb"), PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(th_name("badb"), PSHM_QUEUE_CONSUMER, &o, &c));
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 4, &n), -ENOTSUP);
    th_queue_pair_close(p, c);
}

static void roundtrip(pshm_queue_mode mode)
{
    pshm_queue *p = NULL, *c = NULL;
    const void *ptrs[16];
    size_t lens[16], n = 0;
    struct timespec dl;

    pair(mode, mode == PSHM_QUEUE_SPSC ? "rts" : "rtm", 64, &p, &c);
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 16, &n), -EAGAIN);
    pshm_deadline(&dl, 30);
    CHECK_ERR(pshm_queue_timedpeekmany(c, ptrs, lens, 16, &n, &dl), -ETIMEDOUT);
    CHECK_EQ(n, 0);
    for (uint32_t k = 0; k < 10; k++)
        send_k(p, k, 64);
    CHECK_OK(pshm_queue_trypeekmany(c, ptrs, lens, 4, &n));
    CHECK_EQ(n, 4);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(check_k(ptrs[i], lens[i], 64), i);
    /* more claims join the batch: the first four stay valid */
    const void *first = ptrs[0];
    CHECK_OK(pshm_queue_peekmany(c, ptrs + 4, lens + 4, 12, &n));
    CHECK_EQ(n, 6);
    for (size_t i = 0; i < 10; i++)
        CHECK_EQ(check_k(ptrs[i], lens[i], 64), i);
    CHECK(first == ptrs[0]);
    pshm_queue_info st = th_queue_stat(c);
    if (mode == PSHM_QUEUE_SPSC)
        CHECK_EQ(st.depth, 10); /* claimed, not consumed (MPMC counts what is left to claim) */
    /* partial release: the oldest three */
    CHECK_OK(pshm_queue_releasemany(c, 3));
    st = th_queue_stat(c);
    CHECK_EQ(st.received, 3);
    if (mode == PSHM_QUEUE_SPSC)
        CHECK_EQ(st.depth, 7);
    for (size_t i = 3; i < 10; i++)
        CHECK_EQ(check_k(ptrs[i], lens[i], 64), i);
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 16, &n), -EAGAIN);
    CHECK_OK(pshm_queue_releasemany(c, 7));
    st = th_queue_stat(c);
    CHECK_EQ(st.received, 10);
    CHECK_EQ(st.depth, 0);
    /* single peeks work again */
    send_k(p, 10, 64);
    CHECK_OK(pshm_queue_trypeek(c, &ptrs[0], &lens[0]));
    CHECK_EQ(check_k(ptrs[0], lens[0], 64), 10);
    CHECK_OK(pshm_queue_release(c));
    /* end of stream: ECLOSED once nothing is left beyond what we hold */
    send_k(p, 11, 64);
    CHECK_OK(pshm_queue_shutdown(p));
    CHECK_OK(pshm_queue_peekmany(c, ptrs, lens, 16, &n));
    CHECK_EQ(n, 1);
    CHECK_ERR(pshm_queue_peekmany(c, ptrs + 1, lens + 1, 15, &n), -PSHM_ECLOSED);
    CHECK_OK(pshm_queue_releasemany(c, 1));
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 16, &n), -PSHM_ECLOSED);
    th_queue_pair_close(p, c);
}

TEST(spsc_roundtrip_and_partial_release) { roundtrip(PSHM_QUEUE_SPSC); }
TEST(mpmc_roundtrip_and_partial_release) { roundtrip(PSHM_QUEUE_MPMC); }

/* Many laps of the ring, with batches of every size that straddle its end
 * (SPSC: PAD records too, the lengths vary), released in pieces. */
static void wraps(pshm_queue_mode mode)
{
    pshm_queue *p = NULL, *c = NULL;
    const void *ptrs[64];
    size_t lens[64], n, held = 0;
    uint32_t sent = 0, next = 0;
    const size_t max = 200;

    pair(mode, mode == PSHM_QUEUE_SPSC ? "wrs" : "wrm", max, &p, &c);
    for (unsigned round = 0; round < 3000; round++) {
        /* fill what fits */
        for (;;) {
            unsigned char buf[256];
            uint32_t k = sent;
            size_t len = mlen(k, max);
            memcpy(buf, &k, 4);
            for (size_t i = 4; i < len; i++)
                buf[i] = (unsigned char)(k + i);
            int r = pshm_queue_trysend(p, buf, len);
            if (r == -EAGAIN)
                break;
            CHECK_OK(r);
            sent++;
            if (sent - next > 5 + round % 11)
                break;
        }
        size_t want = 1 + round % 7;
        int r = pshm_queue_trypeekmany(c, ptrs + held, lens + held, want, &n);
        if (r == -EAGAIN) {
            CHECK(held > 0 || sent == next);
            n = 0;
        } else {
            CHECK_OK(r);
            CHECK(n >= 1 && n <= want);
        }
        for (size_t i = 0; i < held + n; i++)
            CHECK_EQ(check_k(ptrs[i], lens[i], max), next + i);
        held += n;
        size_t rel = held ? 1 + round % held : 0;
        CHECK_OK(pshm_queue_releasemany(c, rel));
        memmove(ptrs, ptrs + rel, (held - rel) * sizeof *ptrs);
        memmove(lens, lens + rel, (held - rel) * sizeof *lens);
        held -= rel;
        next += (uint32_t)rel;
    }
    CHECK(next > 3000);
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.received, next);
    th_queue_pair_close(p, c);
}

TEST(spsc_batches_wrap_the_ring) { wraps(PSHM_QUEUE_SPSC); }
TEST(mpmc_batches_wrap_the_ring) { wraps(PSHM_QUEUE_MPMC); }

/* The ring held whole by one batch: nothing more can come. */
TEST(mpmc_holding_the_whole_ring)
{
    pshm_queue *p = NULL, *c = NULL;
    const void *ptrs[32];
    size_t lens[32], n = 0;

    pair(PSHM_QUEUE_MPMC, "whole", 64, &p, &c);
    for (uint32_t k = 0; k < 16; k++)
        send_k(p, k, 64);
    CHECK_OK(pshm_queue_trypeekmany(c, ptrs, lens, 32, &n));
    CHECK_EQ(n, 16);
    CHECK_ERR(pshm_queue_peekmany(c, ptrs, lens, 32, &n), -PSHM_EORDER);
    CHECK_OK(pshm_queue_releasemany(c, 16));
    th_queue_pair_close(p, c);
}

static void *late_send(void *arg)
{
    th_sleep_ms(50);
    send_k(arg, 7, 64);
    return NULL;
}

TEST(blocking_batch_waits_for_the_first_message)
{
    pshm_queue *p = NULL, *c = NULL;
    const void *ptrs[4];
    size_t lens[4], n = 0;
    pthread_t t;

    pair(PSHM_QUEUE_MPMC, "blk", 64, &p, &c);
    CHECK(pthread_create(&t, NULL, late_send, p) == 0);
    CHECK_OK(pshm_queue_peekmany(c, ptrs, lens, 4, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(check_k(ptrs[0], lens[0], 64), 7);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_OK(pshm_queue_releasemany(c, 1));
    th_queue_pair_close(p, c);
}

static void close_gives_back(pshm_queue_mode mode)
{
    pshm_queue *p = NULL, *c = NULL;
    const void *ptrs[8];
    size_t lens[8], n = 0;
    pshm_queue_options o = qopts(mode, 64);
    const char *name = th_name(mode == PSHM_QUEUE_SPSC ? "cgs" : "cgm");

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    for (uint32_t k = 0; k < 6; k++)
        send_k(p, k, 64);
    CHECK_OK(pshm_queue_trypeekmany(c, ptrs, lens, 8, &n));
    CHECK_EQ(n, 6);
    CHECK_OK(pshm_queue_releasemany(c, 2));
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    pshm_queue_msg_info mi;
    pshm_queue_msg_info_init(&mi);
    int seen[6] = {0};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(pshm_queue_trypeek(c, &ptrs[0], &lens[0]));
        seen[check_k(ptrs[0], lens[0], 64)]++;
        CHECK_OK(pshm_queue_msginfo(c, &mi));
        CHECK_EQ(mi.returned, 1);
        CHECK_EQ(mi.attempts, 0);
        CHECK_OK(pshm_queue_release(c));
    }
    CHECK(!seen[0] && !seen[1] && seen[2] == 1 && seen[3] == 1 && seen[4] == 1 && seen[5] == 1);
    CHECK_ERR(pshm_queue_trypeek(c, &ptrs[0], &lens[0]), -EAGAIN);
    CHECK_EQ(th_queue_stat(c).redeliveries, 4);
    th_queue_pair_close(p, c);
}

TEST(spsc_close_gives_the_batch_back) { close_gives_back(PSHM_QUEUE_SPSC); }
TEST(mpmc_close_gives_the_batch_back) { close_gives_back(PSHM_QUEUE_MPMC); }

/* ------------------------------------------------------------ crashes */

typedef struct {
    const char *name;
    size_t take, release; /* claim take, release the first `release`, die */
} kill_arg;

static int die_holding(void *arg)
{
    kill_arg *a = arg;
    pshm_queue *q = NULL;
    pshm_queue_options o;
    const void *ptrs[64];
    size_t lens[64], n = 0, got = 0;
    struct timespec dl;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(a->name, PSHM_QUEUE_CONSUMER, &o, &q) != 0)
        return 10;
    pshm_deadline(&dl, 5000);
    while (got < a->take) {
        /* in two claims: a batch that grew */
        size_t want = got == 0 && a->take > 1 ? a->take / 2 : a->take - got;
        if (pshm_queue_timedpeekmany(q, ptrs + got, lens + got, want, &n, &dl) != 0)
            return 11;
        got += n;
    }
    if (a->release && pshm_queue_releasemany(q, a->release) != 0)
        return 12;
    raise(SIGKILL);
    return 13;
}

static void kill_holding(const char *name, size_t take, size_t release)
{
    kill_arg a = {name, take, release};
    CHECK_EQ(th_wait(th_fork(die_holding, &a), 10000), 128 + SIGKILL);
}

static void crash(pshm_queue_mode mode)
{
    pshm_queue *p = NULL, *c = NULL;
    pshm_queue_options o = qopts(mode, 64);
    const char *name = th_name(mode == PSHM_QUEUE_SPSC ? "kls" : "klm");
    pshm_queue_msg_info mi;
    pshm_queue_msg_info_init(&mi);
    const void *ptr;
    size_t len;
    int seen[12] = {0};

    o.max_deliveries = 3;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    for (uint32_t k = 0; k < 12; k++)
        send_k(p, k, 64);
    /* a consumer dies holding 0..7 after releasing 0..2: 3..7 come back */
    kill_holding(name, 8, 3);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c)); /* open recovers it */
    pshm_queue_info st = th_queue_stat(c);
    CHECK_EQ(st.redeliveries, 5);
    CHECK_EQ(st.drops, 0);
    CHECK_EQ(st.received, 3);
    for (int i = 0; i < 9; i++) {
        CHECK_OK(pshm_queue_trypeek(c, &ptr, &len));
        uint32_t k = check_k(ptr, len, 64);
        CHECK(k >= 3 && k < 12);
        seen[k]++;
        CHECK_OK(pshm_queue_msginfo(c, &mi));
        CHECK_EQ(mi.attempts, k < 8 ? 1 : 0);
        CHECK_OK(pshm_queue_release(c));
    }
    for (int k = 0; k < 12; k++)
        CHECK_EQ(seen[k], k >= 3);
    CHECK_ERR(pshm_queue_trypeek(c, &ptr, &len), -EAGAIN);
    CHECK_OK(pshm_queue_close(c));

    /* poison: three deaths holding 20..24 (max_deliveries 3) drop all five */
    for (uint32_t k = 20; k < 25; k++)
        send_k(p, k, 64);
    for (int d = 0; d < 3; d++)
        kill_holding(name, 5, 0);
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    st = th_queue_stat(c);
    CHECK_EQ(st.drops, 5);
    CHECK_EQ(st.redeliveries, 5 + 10);
    CHECK_EQ(st.depth, 0);
    CHECK_ERR(pshm_queue_trypeek(c, &ptr, &len), -EAGAIN);
    /* and the queue goes on */
    send_k(p, 30, 64);
    CHECK_OK(pshm_queue_trypeek(c, &ptr, &len));
    CHECK_EQ(check_k(ptr, len, 64), 30);
    CHECK_OK(pshm_queue_release(c));
    th_queue_pair_close(p, c);
}

TEST(spsc_consumer_killed_holding_a_batch) { crash(PSHM_QUEUE_SPSC); }
TEST(mpmc_consumer_killed_holding_a_batch) { crash(PSHM_QUEUE_MPMC); }

/* MPMC: a live consumer waiting in peekmany finds the dead batch holder in
 * its way and takes every message back, exactly once. */
TEST(mpmc_waiting_batch_recovers_a_dead_batch)
{
    pshm_queue *p = NULL, *c = NULL;
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 64);
    const char *name = th_name("wrm");
    const void *ptrs[16];
    size_t lens[16], n = 0, got = 0;
    int seen[10] = {0};
    struct timespec dl;

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    for (uint32_t k = 0; k < 10; k++)
        send_k(p, k, 64);
    kill_holding(name, 10, 0);
    pshm_deadline(&dl, 5000);
    while (got < 10) {
        CHECK_OK(pshm_queue_timedpeekmany(c, ptrs + got, lens + got, 16 - got, &n, &dl));
        got += n;
    }
    for (size_t i = 0; i < got; i++)
        seen[check_k(ptrs[i], lens[i], 64)]++;
    for (int k = 0; k < 10; k++)
        CHECK_EQ(seen[k], 1);
    CHECK_OK(pshm_queue_releasemany(c, got));
    CHECK_EQ(th_queue_stat(c).redeliveries, 10);
    CHECK_ERR(pshm_queue_trypeekmany(c, ptrs, lens, 16, &n), -EAGAIN);
    th_queue_pair_close(p, c);
}

/* ------------------------------------------------------------ concurrency */

typedef struct {
    const char *name;
    uint32_t count;
    uint8_t *seen; /* shared */
} drain_arg;

static int batch_drainer(void *arg)
{
    drain_arg *a = arg;
    pshm_queue *q = NULL;
    const void *ptrs[32];
    size_t lens[32], n;
    pshm_queue_options o;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    if (pshm_queue_open(a->name, PSHM_QUEUE_CONSUMER, &o, &q) != 0)
        return 10;
    for (unsigned i = 0;; i++) {
        int r = pshm_queue_peekmany(q, ptrs, lens, 1 + i % 32, &n);
        if (r == -PSHM_ECLOSED)
            break;
        if (r != 0)
            return 11;
        for (size_t j = 0; j < n; j++) {
            uint32_t k;
            memcpy(&k, ptrs[j], 4);
            if (k >= a->count || lens[j] != mlen(k, 64))
                return 12;
            __atomic_add_fetch(&a->seen[k], 1, __ATOMIC_SEQ_CST);
        }
        if (pshm_queue_releasemany(q, n) != 0)
            return 13;
    }
    pshm_queue_close(q);
    return 0;
}

TEST_TIMEOUT(mpmc_batch_consumers_in_processes_exactly_once, 120)
{
    pshm_queue *p = NULL;
    pshm_queue_options o = qopts(PSHM_QUEUE_MPMC, 64);
    const char *name = th_name("mpx");
    const uint32_t count = 20000;
    drain_arg a = {name, count, th_shared(count)};
    pid_t kids[3];

    o.messages = 64;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    for (int i = 0; i < 3; i++)
        kids[i] = th_fork(batch_drainer, &a);
    for (uint32_t k = 0; k < count; k++)
        send_k(p, k, 64);
    CHECK_OK(pshm_queue_shutdown(p));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_wait(kids[i], 60000), 0);
    for (uint32_t k = 0; k < count; k++)
        if (a.seen[k] != 1)
            th_fail(__FILE__, __LINE__, "message %u seen %u times", k, a.seen[k]);
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(p));
}

/* ------------------------------------------------------------ untrusted bytes */

/* The fuzz target's batch drain (tests/fuzz/fuzz_queue.c) on private copies
 * of a real queue, intact and then scribbled on: it takes what is there and
 * never runs away. */
static void scribbled(pshm_queue_mode mode)
{
    pshm_queue *p = NULL, *c = NULL;

    pair(mode, mode == PSHM_QUEUE_SPSC ? "scs" : "scm", 64, &p, &c);
    for (uint32_t k = 0; k < 6; k++)
        send_k(p, k, 64);
    pshm_block *b = pshm_queue_block(p);
    size_t size = pshm_block_size(b);
    void *m = NULL;
    qgeom g;
    CHECK(posix_memalign(&m, 64, size) == 0);
    CHECK_OK(pshm__queue_validate(pshm_block_data(b), size, &g));
    for (size_t batch = 1; batch <= 8; batch++) {
        memcpy(m, pshm_block_data(b), size);
        CHECK_EQ(pshm__queue_fuzz_drain_batch(m, size, 100, batch), 6);
    }
    uint64_t seed = 777;
    for (int round = 0; round < 300; round++) {
        th_queue_scribble(m, pshm_block_data(b), size, &g, &seed, round);
        if (round % 5 == 0) {
            struct qhdr *h = m;
            h->tail -= (seed >> 50) % 32;
        }
        CHECK(pshm__queue_fuzz_drain_batch(m, size, 100, 1 + round % 9) <= 100);
    }
    free(m);
    th_queue_pair_close(p, c);
}

TEST(spsc_private_copies_drain_in_batches) { scribbled(PSHM_QUEUE_SPSC); }
TEST(mpmc_private_copies_drain_in_batches) { scribbled(PSHM_QUEUE_MPMC); }
