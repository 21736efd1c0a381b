/* SPDX-License-Identifier: MIT */
/*
 * bench_mpmc.c - what an MPMC message costs a consumer against the number
 * of consumer handles it holds.
 *
 *   build/bench/bench_mpmc [--quick] [--json FILE]
 *   PSHM_BENCH_ROUNDS=n   rounds (default 5, --quick 2)
 *
 * A fresh MPMC queue of 65536 cells of 64 bytes (8 MiB of ring: the MPI
 * bridge sizes its queues to the stream). A producer process (cpu0) fills
 * it with 60000 messages; a consumer process (cpu1), which opened N
 * consumer handles (1, 2, 8, 64) before, drains them with trypeek, timed;
 * then both do it a second time. No side ever waits for the other inside a
 * timed pass, so the figure is the consumer's own cost per message. Rows:
 *  - window: the way the MPI bridge uses its handles. Every handle peeks one
 *    message and holds it (a claim) in turn; a handle's claim is released
 *    just before it peeks again, so N - 1 claims are held at every peek.
 *    First pass (the ring new to the consumer) and second pass;
 *  - idle: handle 0 peeks and releases; the N - 1 others are open, idle.
 * A queue whose per-message cost grows with the handles (a scan over the
 * participants, the claims or the ring; memory mapped once per handle)
 * shows here as throughput falling with N. Rounds are interleaved (round r
 * runs every cell before round r + 1); figures are medians with the
 * min-max range.
 */
#include "common.h"

#include "pshm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define NCELLS 65536 /* 8 MiB of ring: the MPI bridge sizes its queues to the stream */
#define MAXH 64
#define FILL 60000
#define NPASS 2

static const unsigned NH[] = {1, 2, 8, 64};
#define NN ((int)(sizeof NH / sizeof NH[0]))
enum { K_WINDOW, K_IDLE, NK };
/* the table's rows: (kind, pass) */
#define NROW 3
static const int RK[NROW] = {K_WINDOW, K_WINDOW, K_IDLE}, RP[NROW] = {0, 1, 0};
static const char *const RNAME[NROW] = {"window (N - 1 claims held), first pass",
                                        "window (N - 1 claims held), second pass",
                                        "idle (1 handle peeks, N - 1 open), first pass"};
static const char *const RSHORT[NROW] = {"window, first pass", "window, second pass", "idle"};

static bench_opts O;

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_mpmc: %s: %s\n", what, pshm_strerror(r));
    exit(1);
}

/* shared between the bench and its two children */
struct ctl {
    volatile int ready;   /* consumer: its handles are open */
    volatile int filled;  /* producer: passes filled */
    volatile int drained; /* consumer: passes drained */
    volatile double seconds[NPASS];
};

static void snooze(void)
{
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
}

/* Fills the queue with FILL messages, NPASS times, each after the consumer
 * drained the last. */
static void producer(const char *name, struct ctl *ctl)
{
    pshm_queue *q;
    unsigned char buf[MSG];
    int r;

    bench_pin(0);
    memset(buf, 0x5a, sizeof buf);
    r = pshm_queue_open(name, PSHM_QUEUE_PRODUCER, NULL, &q);
    if (r != 0)
        die("open producer", r);
    for (int pass = 0; pass < NPASS; pass++) {
        while (ctl->drained < pass)
            snooze();
        for (uint64_t i = 0; i < FILL; i++) {
            memcpy(buf, &i, sizeof i);
            if ((r = pshm_queue_send(q, buf, sizeof buf)) != 0)
                die("send", r);
        }
        ctl->filled = pass + 1;
    }
    pshm_queue_close(q);
    _exit(0);
}

/* Drains each fill with n handles, timed. */
static void consumer(const char *name, struct ctl *ctl, unsigned n, int kind)
{
    pshm_queue *h[MAXH];
    const void *m;
    size_t len;
    uint64_t sum = 0;
    int r;

    bench_pin(1);
    for (unsigned i = 0; i < n; i++)
        if ((r = pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &h[i])) != 0)
            die("open consumer", r);
    ctl->ready = 1;
    for (int pass = 0; pass < NPASS; pass++) {
        while (ctl->filled <= pass)
            snooze();
        unsigned next = 0, held = 0;
        double t0 = bench_now();
        for (uint64_t got = 0; got < FILL; got++) {
            pshm_queue *c = kind == K_IDLE ? h[0] : h[next];
            if (kind != K_IDLE && held == n) {
                if ((r = pshm_queue_release(c)) != 0)
                    die("release", r);
                held--;
            }
            if ((r = pshm_queue_trypeek(c, &m, &len)) != 0)
                die("peek", r);
            sum += *(const unsigned char *)m;
            if (kind == K_IDLE) {
                if ((r = pshm_queue_release(c)) != 0)
                    die("release", r);
            } else {
                held++;
                next = (next + 1) % n;
            }
        }
        for (unsigned i = 0; i < n; i++)
            (void)pshm_queue_release(h[i]);
        ctl->seconds[pass] = bench_now() - t0;
        ctl->drained = pass + 1;
    }
    for (unsigned i = 0; i < n; i++)
        pshm_queue_close(h[i]);
    _exit(sum == 1 ? 3 : 0);
}

/* One cell: messages per second of each pass into rate[], -1 if it failed. */
static void cell(unsigned n, int kind, double *rate)
{
    char name[64];
    pshm_queue_options o;
    pshm_queue *own;
    struct ctl *ctl;
    int r;

    snprintf(name, sizeof name, "pshm_bench_%ld_mpmc", (long)getpid());
    pshm_queue_options_init(&o);
    o.queue_mode = PSHM_QUEUE_MPMC;
    o.max_msg = MSG;
    o.messages = NCELLS;
    o.max_participants = 128;
    o.keep_open = 1;
    r = pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &own);
    if (r != 0)
        die("create", r);
    pshm_queue_close(own);
    ctl = mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ctl == MAP_FAILED)
        die("mmap", -errno);
    memset((void *)ctl, 0, sizeof *ctl);
    pid_t pc = fork();
    if (pc == 0)
        consumer(name, ctl, n, kind);
    while (!ctl->ready)
        snooze();
    pid_t pp = fork();
    if (pp == 0)
        producer(name, ctl);
    int st, ok = 1;
    waitpid(pp, &st, 0);
    ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    waitpid(pc, &st, 0);
    ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    for (int p = 0; p < NPASS; p++)
        rate[p] = ok && ctl->seconds[p] > 0 ? FILL / ctl->seconds[p] : -1;
    munmap((void *)ctl, sizeof *ctl);
    pshm_unlink(name);
}

int main(int argc, char **argv)
{
    static double v[NROW][NN][64];
    double rate[NPASS];

    bench_parse(&argc, argv, &O, 5, 2);
    if (O.rounds > 64)
        O.rounds = 64;
    bjson *j = bj_open(O.json);
    bj_begin_report(j, "mpmc", "MPMC: a consumer's cost against the consumer handles it holds", 15,
                    &O);
    bj_strf(j, "summary",
            "A fresh MPMC queue of %d cells of 64 bytes; a producer process (cpu0) fills it with "
            "%d messages, a consumer process (cpu1) holding N consumer handles drains them with "
            "trypeek, twice; nobody waits inside a timed pass. *window*: the handles peek in turn "
            "and each holds its claim until its next turn (the MPI bridge's way: N - 1 claims "
            "held at every peek); *idle*: one handle peeks and releases, the others are open. "
            "Medians of %d interleaved rounds, with the min-max range. Throughput should not "
            "fall with N.",
            NCELLS, FILL, O.rounds);
    bench_progress_init("bench_mpmc");
    int total = O.rounds * NK * NN, done = 0;
    for (int rd = 0; rd < O.rounds; rd++)
        for (int k = 0; k < NK; k++)
            for (int i = 0; i < NN; i++) {
                bench_progress((double)done++ / total, "round %d/%d, %s, %u handles", rd + 1,
                               O.rounds, k == K_WINDOW ? "window" : "idle", NH[i]);
                cell(NH[i], k, rate);
                for (int r = 0; r < NROW; r++)
                    if (RK[r] == k)
                        v[r][i][rd] = rate[RP[r]];
            }
    bench_progress_end();

    btable *t = bt_new("MPMC, 64 B messages: messages/s a consumer drains, against its handles",
                       2 + NN,
                       BT_COLS("handles held by the consumer", "N = 1", "N = 2", "N = 8",
                               "N = 64", "N = 64 / N = 1"));
    double med[NROW][NN];
    for (int r = 0; r < NROW; r++) {
        const char *row[2 + NN];
        row[0] = RNAME[r];
        for (int i = 0; i < NN; i++) {
            bench_stat s = bench_stat_of(v[r][i], O.rounds);
            char cellbuf[96];
            med[r][i] = s.med;
            snprintf(cellbuf, sizeof cellbuf, "%s (%s)", bench_fmt_rate(s.med),
                     bench_fmt_spread(s.min / 1e6, s.max / 1e6, "%.2f"));
            row[1 + i] = strdup(cellbuf);
        }
        row[1 + NN] = bench_fmt_ratio(med[r][0] > 0 && med[r][NN - 1] > 0
                                          ? med[r][NN - 1] / med[r][0]
                                          : -1);
        bt_row(t, row);
        for (int i = 0; i < NN; i++)
            free((char *)row[1 + i]);
    }
    bt_note(t, "In brackets: the range over the rounds, in millions of messages per second");
    bt_readme(t);
    bt_emit(t, j);

    bj_plot_begin(j, "mpmc_handles.png", "lines",
                  "MPMC: messages/s a consumer drains against its handles", "consumer handles",
                  "messages/s", 1, 1);
    for (int r = 0; r < NROW; r++) {
        double x[NN];
        for (int i = 0; i < NN; i++)
            x[i] = NH[i];
        bj_series(j, RSHORT[r], 0, x, med[r], NN);
    }
    bj_plot_end(j);
    for (int r = 0; r < NROW; r++)
        if (med[r][0] > 0 && med[r][NN - 1] > 0 && med[r][NN - 1] < 0.8 * med[r][0])
            bj_finding(j, "MPMC %s: %s with 64 handles against %s with 1 (%s).", RSHORT[r],
                       bench_fmt_rate(med[r][NN - 1]), bench_fmt_rate(med[r][0]),
                       bench_fmt_ratio(med[r][NN - 1] / med[r][0]));
    bj_end_report(j);
    return bj_close(j) == 0 ? 0 : 1;
}
