/* SPDX-License-Identifier: MIT */
/*
 * bench_queue.c - pshm queues against the hardware, the kernel's IPC and
 * the libraries people pick instead (iceoryx, Boost.Interprocess
 * message_queue, ZeroMQ over ipc://), in one run, side by side.
 *
 *   build/bench/bench_queue [--quick] [--json FILE] [latency|throughput]
 *   PSHM_BENCH_ROUNDS=n   rounds (default 5, --quick 2)
 *   PSHM_BENCH_ONLY=a,b   only the systems whose name contains a or b
 *   PSHM_BENCH_TRACE=1    how long each cell took, on stderr
 *   PSHM_BENCH_SIZES=64,1048576   throughput message sizes instead of the default
 *
 * Every cell runs in two fresh processes pinned to cpu0 and cpu1 (see
 * peers.h), and the rounds are interleaved: round r runs every
 * system once before round r + 1 starts, so all see the same machine.
 * Figures are medians over the rounds, with the min-max range; every ratio
 * is taken within a round (a system and its reference from the same round)
 * and then the median of those is shown.
 *
 * Latency: one-way = ping-pong round trip / 2, 64-byte messages, quantiles
 * of the round trips. Busy: try / non-blocking calls in a loop. Blocking:
 * pshm with spin = 0 (sleeps on its futex at once), the others' blocking
 * calls. The hardware references, measured in the same rounds:
 *  - raw ping-pong, both flags in one cache line / one flag per line: the
 *    least a one-way hand-off can cost (one cache line moves);
 *  - raw 64 B message: a 16-byte header with the flag, then the 64-byte
 *    payload, which the receiver copies out: two lines move, as for any
 *    queue that carries a 64-byte message with a header;
 *  - raw ring ping-pong: each direction a ring in shared memory of pshm's
 *    depth (256) and record size, a sequence word per slot, so every
 *    message lands in a new line as in any ring (the ping-pongs above reuse
 *    one fixed line): records of one line (16-byte header + 48 B) or of
 *    two (16-byte header + 64 B, 128-byte slots), each with and without the
 *    consumer publishing its index after every message (the producer reads
 *    it once a lap, as pshm does);
 *  - raw futex ping-pong: the least a sleeping hand-off can cost (a word
 *    and a sleepers flag; FUTEX_WAKE only when someone sleeps).
 *
 * Throughput: side 0 produces, side 1 consumes, for a fixed time per cell,
 * message sizes 64 B .. 64 MiB. The producer takes every payload from a
 * 128 MiB source pool it walks through (never the same bytes twice in a
 * row, so not cache-hot); a zero-copy consumer reads every cache line of
 * the message in place, a copying one copies it out. The references:
 *  - raw hand-off: a ring in shared memory of the same depth, one slot per
 *    message (a header line with the flag, then the payload), the producer
 *    copies the payload in, the consumer reads it in place (or copies it
 *    out) and frees the slot: no checks, no crash safety. Zero-copy systems
 *    are compared with the in-place hand-off, copying ones with the copy-out
 *    hand-off;
 *  - memcpy on one thread: from the same pool (cold) and the same bytes
 *    again and again (hot, in cache up to its size).
 */
#include "common.h"
#include "peers.h"

#include "pshm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#define MIB ((size_t)1 << 20)
#define STOP UINT64_MAX
#define LAT_SIZE 64
#define POOL_SIZE (128 * MIB)

static bench_opts O;
static bjson *J;

/* ------------------------------------------------------------ quantiles */

/* The levels every latency cell reports (the CDF plot uses them all). */
static const double QL[] = {0,     0.01,  0.02,  0.05,  0.1,    0.15,   0.2,   0.25,  0.3,
                            0.35,  0.4,   0.45,  0.5,   0.55,   0.6,    0.65,  0.7,   0.75,
                            0.8,   0.85,  0.9,   0.92,  0.94,   0.95,   0.96,  0.97,  0.98,
                            0.99,  0.993, 0.995, 0.997, 0.998,  0.999,  0.9995, 0.9999, 1};
#define NQ ((int)(sizeof QL / sizeof QL[0]))
#define Q50 12
#define Q99 27
#define Q999 32
#define NREF 8 /* references a busy latency cell measures itself */
/* which reference (qref index): the fixed-line ones, then the rings */
enum { F_ONE, F_TWO, F_MSG, F_POLITE, F_RING1, F_RING1_IDX, F_RING2, F_RING2_IDX };
#define RING_DEPTH 256 /* depth_for(64): the slots of pshm's latency channels */

/* ------------------------------------------------------------ shared state */

/*
 * Two worker processes do all the measuring: worker 0 on cpu0 (side 0: the
 * pinger, the producer) and worker 1 on cpu1 (side 1), started once and
 * given one cell after another through this page, so the memory they walk
 * (the producer's source pool, the shared references) is mapped and warm
 * for every cell, and a library with per-process state (iceoryx's runtime)
 * is set up once. A cell that fails or hangs costs a restart of both.
 */
enum { C_LAT = 1, C_TP = 2, C_QUIT = 3 };

typedef struct shared {
    _Alignas(64) volatile uint64_t two_a; /* raw ping-pong: one flag per line */
    _Alignas(64) volatile uint64_t two_b;
    _Alignas(64) volatile uint64_t one[2]; /* raw ping-pong: both in one line */
    _Alignas(64) unsigned char msg[2][128]; /* raw 64 B message: [seq, len | 64 B] */
    /* raw ring ping-pong: a ring a direction (128-byte slots; the one-line
     * variant uses the first 64 * RING_DEPTH bytes as 64-byte slots), and
     * each consumer's published index on its own line */
    _Alignas(64) unsigned char ring[2][RING_DEPTH * 128];
    _Alignas(64) uint64_t ring_tail[2][8];
    _Alignas(64) uint32_t fa;             /* raw futex words and their sleepers flags */
    _Alignas(64) uint32_t fb;
    _Alignas(64) uint32_t fa_sl;
    _Alignas(64) uint32_t fb_sl;
    _Alignas(64) uint32_t stage[2];       /* where each side is in the cell (meet) */
    /* the command: written by the bench, then cmd_seq is bumped */
    _Alignas(64) uint32_t cmd_seq;
    int cmd, sys;
    size_t arg;
    /* the workers' answers: done counts cells finished (both sides) */
    _Alignas(64) uint32_t done;
    int failed;  /* side 0 could not set the cell up: err says why */
    pid_t w0;    /* worker 0: names objects (qb_name) */
    char err[256];
    double q[NQ];
    double qref[NREF][NQ]; /* the cell's own references (see lat_side) */
    double rate;        /* messages per second */
    double ref_rate;    /* the raw hand-off of the same kind, just before */
} shared;

static shared *SH;
static unsigned char *POOL; /* worker 0's source of payloads (private, warm) */
static size_t pool_size;

/* ------------------------------------------------------------ helpers */

static volatile uint64_t sink;
static qb_cfg CFG; /* the current cell's settings */
static int poll_pauses; /* ... and its system's pauses between two polls (busy) */
static uint32_t cur_seq; /* in a worker: the cell being run */

void qb_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(SH->err, sizeof SH->err, fmt, ap);
    va_end(ap);
    _exit(3);
}

void qb_name(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "pshm_bench_%ld_%u_%s", (long)SH->w0, cur_seq, what);
}

static void fail_code(const char *what, int code)
{
    qb_fail("%s: %s", what, code < 0 ? pshm_strerror(code) : strerror(code));
}

void qb_consume(const void *msg, size_t len, void *buf)
{
    const unsigned char *p = msg;
    uint64_t s = 0;
    memcpy(buf, p, len < 8 ? len : 8);
    for (size_t i = 64; i < len; i += 64)
        s += *(const volatile uint64_t *)(p + i);
    if (len > 8)
        s += *(const volatile uint64_t *)(p + len - 8);
    sink += s;
}

/* The two sides of a cell meet: both have got there. Both make the same
 * calls in the same order, and the stages are numbered from the cell's
 * sequence number, so nothing needs resetting between cells. */
static uint32_t stage_n; /* meetings so far in this cell */

static void meet(int side)
{
    uint32_t v = cur_seq * 256 + (++stage_n & 255);
    __atomic_store_n(&SH->stage[side], v, __ATOMIC_SEQ_CST);
    while ((int32_t)(__atomic_load_n(&SH->stage[!side], __ATOMIC_SEQ_CST) - v) < 0)
        qb_relax();
}

static void fwait(uint32_t *w, uint32_t v) { syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0); }
static void fwake(uint32_t *w) { syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0); }

/* ------------------------------------------------------------ pshm */

static char qname[2][96];
static pshm_queue *qs[2], *qr[2]; /* by direction: our send / recv handle */

static void pq_names(void)
{
    qb_name(qname[0], sizeof qname[0], "q0");
    qb_name(qname[1], sizeof qname[1], "q1");
}

static int pq_init(const qb_cfg *c, char *err, size_t cap)
{
    pq_names();
    for (int d = 0; d < 2; d++) {
        pshm_queue_options o;
        pshm_queue *q;
        pshm_queue_options_init(&o);
        o.queue_mode = (pshm_queue_mode)c->mode;
        o.max_msg = c->max;
        o.messages = (size_t)c->depth;
        o.keep_open = 1;
        o.prefault = 1;
        int r = pshm_queue_create(qname[d], PSHM_QUEUE_PRODUCER, &o, &q);
        if (r) {
            snprintf(err, cap, "pshm_queue_create: %s", pshm_strerror(r));
            return -1;
        }
        pshm_queue_close(q);
    }
    return 0;
}

static void pq_fini(void)
{
    pshm_unlink(qname[0]);
    pshm_unlink(qname[1]);
}

static int pq_attach(const qb_cfg *c, int side, char *err, size_t cap)
{
    pshm_queue_options o;
    pshm_queue_options_init(&o);
    pq_names();
    o.keep_open = 1;
    if (CFG.wait != QB_DEFAULT)
        o.spin = CFG.wait == QB_BUSY ? 1u << 30 : 0;
    int out = side, in = !side;
    int r = pshm_queue_open(qname[in], PSHM_QUEUE_CONSUMER, &o, &qr[in]);
    if (r == 0)
        r = pshm_queue_open(qname[out], PSHM_QUEUE_PRODUCER, &o, &qs[out]);
    if (r)
        snprintf(err, cap, "pshm_queue_open: %s", pshm_strerror(r));
    return r ? -1 : 0;
}

static void pq_detach(void)
{
    for (int d = 0; d < 2; d++) {
        pshm_queue_close(qs[d]);
        pshm_queue_close(qr[d]);
        qs[d] = qr[d] = NULL;
    }
}

static void pq_send(int dir, const void *buf, size_t len)
{
    pshm_queue *q = qs[dir];
    int r;
    if (CFG.zc) {
        void *w;
        if (CFG.wait == QB_BUSY)
            while ((r = pshm_queue_tryreserve(q, len, &w)) == -EAGAIN)
                for (int k = 0; k < poll_pauses; k++)
                    qb_relax();
        else
            r = pshm_queue_reserve(q, len, &w);
        if (r)
            fail_code("reserve", r);
        memcpy(w, buf, len);
        r = pshm_queue_commit(q, len);
    } else if (CFG.wait == QB_BUSY) {
        while ((r = pshm_queue_trysend(q, buf, len)) == -EAGAIN)
            ;
    } else {
        r = pshm_queue_send(q, buf, len);
    }
    if (r)
        fail_code("send", r);
}

static size_t pq_recv(int dir, void *buf, size_t cap)
{
    pshm_queue *q = qr[dir];
    size_t len;
    int r;
    if (CFG.zc) {
        const void *p;
        if (CFG.wait == QB_BUSY)
            while ((r = pshm_queue_trypeek(q, &p, &len)) == -EAGAIN)
                for (int k = 0; k < poll_pauses; k++)
                    qb_relax();
        else
            r = pshm_queue_peek(q, &p, &len);
        if (r)
            fail_code("peek", r);
        qb_consume(p, len, buf);
        r = pshm_queue_release(q);
    } else if (CFG.wait == QB_BUSY) {
        while ((r = pshm_queue_tryrecv(q, buf, cap, &len)) == -EAGAIN)
            ;
    } else {
        r = pshm_queue_recv(q, buf, cap, &len);
    }
    if (r)
        fail_code("recv", r);
    return len;
}

static const qb_xport x_pshm = {"pshm", pq_init, pq_fini, pq_attach, pq_detach, pq_send, pq_recv};

/* ------------------------------------------------------------ pipes, Unix sockets */

/* The pipe cells use two named FIFOs (one a direction), the socket cells
 * one connected Unix stream socket (side 0 listens, side 1 connects): the
 * two workers are not parent and child, so nothing is inherited. */
static int rfd[2] = {-1, -1}, wfd[2] = {-1, -1}; /* by direction: our read / write end */
static int lfd = -1;                            /* side 0's listening socket */
static int use_socket;

static void fd_path(char *out, size_t cap, int d)
{
    char n[96];
    qb_name(n, sizeof n, use_socket ? "sock" : d ? "fifo1" : "fifo0");
    snprintf(out, cap, "/tmp/%s", n);
}

static int fd_init(const qb_cfg *c, char *err, size_t cap)
{
    char path[128];
    (void)c;
    if (use_socket) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        fd_path(a.sun_path, sizeof a.sun_path, 0);
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0)
            goto fail;
        return 0;
    }
    for (int d = 0; d < 2; d++) {
        fd_path(path, sizeof path, d);
        if (mkfifo(path, 0600) != 0)
            goto fail;
    }
    return 0;
fail:
    snprintf(err, cap, "%s: %s", use_socket ? "unix socket" : "mkfifo", strerror(errno));
    if (lfd >= 0)
        close(lfd), lfd = -1;
    return -1;
}

static void fd_fini(void)
{
    char path[128];
    for (int d = 0; d < 2; d++) {
        fd_path(path, sizeof path, d);
        unlink(path);
    }
    if (lfd >= 0)
        close(lfd), lfd = -1;
}

static void set_blocking(int fd, int nonblock)
{
    int f = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, nonblock ? f | O_NONBLOCK : f & ~O_NONBLOCK);
}

static int fd_attach(const qb_cfg *c, int side, char *err, size_t cap)
{
    char path[128];
    int in = !side, out = side;
    if (use_socket) {
        int fd;
        if (side == 0) {
            fd = accept(lfd, NULL, NULL);
        } else {
            struct sockaddr_un a = {.sun_family = AF_UNIX};
            fd_path(a.sun_path, sizeof a.sun_path, 0);
            fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
                close(fd), fd = -1;
        }
        if (fd < 0)
            goto fail;
        if (CFG.max > 4096) {
            int sz = 4 * (int)MIB;
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        }
        rfd[in] = wfd[out] = fd;
    } else {
        /* our read end first (never blocks), then the write end once the
         * other side has opened its read end */
        fd_path(path, sizeof path, in);
        rfd[in] = open(path, O_RDONLY | O_NONBLOCK);
        if (rfd[in] < 0)
            goto fail;
        fd_path(path, sizeof path, out);
        for (int i = 0; i < 100000 && wfd[out] < 0; i++) {
            wfd[out] = open(path, O_WRONLY | O_NONBLOCK);
            if (wfd[out] < 0 && errno != ENXIO)
                goto fail;
            if (wfd[out] < 0)
                nanosleep(&(struct timespec){0, 100000}, NULL);
        }
        if (wfd[out] < 0)
            goto fail;
        set_blocking(wfd[out], 0);
        if (CFG.max > 4096)
            fcntl(wfd[out], F_SETPIPE_SZ, (int)MIB);
    }
    set_blocking(rfd[in], CFG.wait == QB_BUSY);
    return 0;
fail:
    snprintf(err, cap, "%s: %s", use_socket ? "unix socket" : "fifo", strerror(errno));
    return -1;
}

static void fd_detach(void)
{
    for (int d = 0; d < 2; d++) {
        if (rfd[d] >= 0)
            close(rfd[d]);
        if (wfd[d] >= 0 && wfd[d] != rfd[d] && wfd[d] != rfd[!d])
            close(wfd[d]);
        rfd[d] = wfd[d] = -1;
    }
}

static void fd_send(int dir, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(wfd[dir], p, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fail_code("write", errno);
        }
        p += n;
        len -= (size_t)n;
    }
}

static size_t fd_recv(int dir, void *buf, size_t cap)
{
    /* a stream: messages have the cell's size, given as cap */
    char *p = buf;
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(rfd[dir], p + got, cap - got);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fail_code("read", errno);
        }
        if (n == 0)
            qb_fail("read: end of stream");
        got += (size_t)n;
    }
    return got;
}

static const qb_xport x_fd = {"fd", fd_init, fd_fini, fd_attach, fd_detach, fd_send, fd_recv};

/* ------------------------------------------------------------ POSIX message queues */

static char mqname[2][128];
static mqd_t mqs[2];

static void mq_names(void)
{
    for (int d = 0; d < 2; d++) {
        char n[96];
        qb_name(n, sizeof n, d ? "mq1" : "mq0");
        snprintf(mqname[d], sizeof mqname[d], "/%s", n);
    }
}

static int mq_init_(const qb_cfg *c, char *err, size_t cap)
{
    mq_names();
    for (int d = 0; d < 2; d++) {
        struct mq_attr a;
        memset(&a, 0, sizeof a);
        a.mq_maxmsg = c->depth > 10 ? 10 : c->depth; /* the default fs.mqueue.msg_max */
        a.mq_msgsize = (long)c->max;
        mqd_t m = mq_open(mqname[d], O_CREAT | O_EXCL | O_RDWR, 0600, &a);
        if (m == (mqd_t)-1) {
            snprintf(err, cap, "mq_open: %s (fs.mqueue.msgsize_max)", strerror(errno));
            if (d)
                mq_unlink(mqname[0]);
            return -1;
        }
        mq_close(m);
    }
    return 0;
}

static void mq_fini_(void)
{
    mq_unlink(mqname[0]);
    mq_unlink(mqname[1]);
}

static int mq_attach_(const qb_cfg *c, int side, char *err, size_t cap)
{
    mq_names();
    for (int d = 0; d < 2; d++) {
        mqs[d] = mq_open(mqname[d], O_RDWR | (CFG.wait == QB_BUSY ? O_NONBLOCK : 0));
        if (mqs[d] == (mqd_t)-1) {
            snprintf(err, cap, "mq_open: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void mq_detach_(void)
{
    mq_close(mqs[0]);
    mq_close(mqs[1]);
}

static void mq_send_(int dir, const void *buf, size_t len)
{
    while (mq_send(mqs[dir], buf, len, 0) != 0)
        if (errno != EAGAIN && errno != EINTR)
            fail_code("mq_send", errno);
}

static size_t mq_recv_(int dir, void *buf, size_t cap)
{
    ssize_t n;
    while ((n = mq_receive(mqs[dir], buf, cap, NULL)) < 0)
        if (errno != EAGAIN && errno != EINTR)
            fail_code("mq_receive", errno);
    return (size_t)n;
}

static const qb_xport x_mq = {"mq", mq_init_, mq_fini_, mq_attach_, mq_detach_, mq_send_, mq_recv_};

/* ------------------------------------------------------------ the systems */

enum { LB = 1, LK = 2, TP = 4 }; /* busy latency, blocking latency, throughput */
enum {
    R_NONE,
    R_SPIN_ONE,  /* raw ping-pong, both flags in one line */
    R_SPIN_TWO,  /* one flag per line */
    R_SPIN_POLITE, /* both flags in one line, a few pauses between polls */
    R_MSG,       /* raw 64 B message with a header */
    R_RING1,     /* raw ring, one-line records (16 B header + 48 B) */
    R_RING1_IDX, /* ... and the consumer publishes its index */
    R_RING2,     /* raw ring, 16 B header + 64 B payload (2 lines) */
    R_RING2_IDX, /* ... and the consumer publishes its index */
    R_FUTEX,
    R_HAND_ZC,   /* raw hand-off, read in place */
    R_HAND_COPY, /* raw hand-off, copied out */
    R_MEMCPY_COLD,
    R_MEMCPY_HOT
};

typedef struct sys {
    const char *label;
    const char *group; /* "hardware", "pshm", "peer", "kernel" */
    const qb_xport *x;
    int mode, zc, sock, raw;
    unsigned where;
    const char *missing; /* not built: why */
    size_t lat_size;     /* latency message size when not 64 */
    int pauses;          /* busy cells: pause instructions between two polls */
} sys;

#define HW(l, raw, zc, where) {l, "hardware", NULL, 0, zc, 0, raw, where, NULL, 0, 0}
#define PSHM_ROW(l, m, z) {l, "pshm", &x_pshm, m, z, 0, R_NONE, LB | LK | TP, NULL, 0, 0}
#define PEER(l, group, x, zc, sock) {l, group, x, 0, zc, sock, R_NONE, LB | LK | TP, NULL, 0, 0}
#define MISSING(l, why) {l, "peer", NULL, 0, 0, 0, R_NONE, LB | LK | TP, why, 0, 0}

static const sys S[] = {
    HW("raw ping-pong, flags in one line", R_SPIN_ONE, 0, LB),
    HW("raw ping-pong, a flag per line", R_SPIN_TWO, 0, LB),
    HW("raw ping-pong, one line, 4 pauses a poll", R_SPIN_POLITE, 0, LB),
    HW("raw 64 B message + header (2 lines)", R_MSG, 0, LB),
    HW("raw ring, one-line records (48 B)", R_RING1, 0, LB),
    HW("raw ring, one-line records (48 B), index published", R_RING1_IDX, 0, LB),
    HW("raw ring, 64 B + header (2 lines)", R_RING2, 0, LB),
    HW("raw ring, 64 B + header (2 lines), index published", R_RING2_IDX, 0, LB),
    HW("raw futex ping-pong", R_FUTEX, 0, LK),
    HW("raw hand-off, read in place", R_HAND_ZC, 1, TP),
    HW("raw hand-off, copied out", R_HAND_COPY, 0, TP),
    HW("memcpy, one thread, cold source", R_MEMCPY_COLD, 0, TP),
    HW("memcpy, one thread, same bytes (hot)", R_MEMCPY_HOT, 0, TP),
    PSHM_ROW("pshm spsc zero-copy", PSHM_QUEUE_SPSC, 1),
    {"pshm spsc zero-copy, 48 B: record = one line", "pshm", &x_pshm, PSHM_QUEUE_SPSC, 1, 0,
     R_NONE, LB, NULL, 48, 0},
    /* polled like the polite raw ping-pong: the like-for-like row for it */
    {"pshm spsc zero-copy, 4 pauses a poll", "pshm", &x_pshm, PSHM_QUEUE_SPSC, 1, 0, R_NONE, LB,
     NULL, 0, 4},
    PSHM_ROW("pshm spsc copying", PSHM_QUEUE_SPSC, 0),
    PSHM_ROW("pshm mpmc zero-copy", PSHM_QUEUE_MPMC, 1),
    PSHM_ROW("pshm mpmc copying", PSHM_QUEUE_MPMC, 0),
    PSHM_ROW("pshm broadcast zero-copy", PSHM_QUEUE_BROADCAST, 1),
    PSHM_ROW("pshm broadcast copying", PSHM_QUEUE_BROADCAST, 0),
#ifdef PSHM_BENCH_ICEORYX
    PEER("iceoryx (loan/publish, take)", "peer", &qb_iceoryx, 1, 0),
#else
    MISSING("iceoryx (loan/publish, take)", "not built: libiceoryx-binding-c-dev not found"),
#endif
#ifdef PSHM_BENCH_BOOST
    PEER("Boost message_queue", "peer", &qb_boost_mq, 0, 0),
#else
    MISSING("Boost message_queue", "not built: Boost.Interprocess (libboost-dev) not found"),
#endif
#ifdef PSHM_BENCH_ZMQ
    PEER("ZeroMQ ipc:// (PAIR)", "peer", &qb_zmq, 0, 0),
#else
    MISSING("ZeroMQ ipc:// (PAIR)", "not built: libzmq (libzmq3-dev) not found"),
#endif
    PEER("pipe", "kernel", &x_fd, 0, 0),
    PEER("unix socket", "kernel", &x_fd, 0, 1),
    PEER("posix mq", "kernel", &x_mq, 0, 0),
};
#define NS ((int)(sizeof S / sizeof S[0]))

static int find_sys(int raw, int mode, int zc)
{
    for (int i = 0; i < NS; i++)
        if (S[i].raw == raw && (raw || (S[i].x == &x_pshm && S[i].mode == mode &&
                                        S[i].zc == zc && !S[i].lat_size && !S[i].pauses)))
            return i;
    return -1;
}

/* PSHM_BENCH_ONLY=a,b: only the systems whose label contains a or b */
static int selected(int s)
{
    const char *only = getenv("PSHM_BENCH_ONLY");
    char buf[256];
    if (!only || !*only)
        return 1;
    snprintf(buf, sizeof buf, "%s", only);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strstr(S[s].label, t))
            return 1;
    return 0;
}

/* the reference a throughput row is compared with */
static int hand_ref(int s) { return find_sys(S[s].zc ? R_HAND_ZC : R_HAND_COPY, 0, 0); }

/* ------------------------------------------------------------ latency */

/* how many messages a channel holds at this size: the same for everyone
 * (3 for the large ones: a pshm ring of 4 x the size, rounded to a power of two) */
static int depth_for(size_t size)
{
    size_t d = 2 * MIB / size;
    return d > 256 ? 256 : d < 3 ? 3 : (int)d;
}


static void set_cfg(int s, size_t size, int depth, int wait)
{
    CFG.max = size;
    CFG.depth = depth;
    CFG.wait = wait;
    CFG.zc = S[s].zc;
    CFG.mode = S[s].mode;
    use_socket = S[s].sock;
    poll_pauses = S[s].pauses;
}

static void quantiles(uint64_t *rtt, int n, double *q)
{
    qsort(rtt, (size_t)n, sizeof *rtt, bench_cmp_u64);
    for (int i = 0; i < NQ; i++) {
        int k = (int)(QL[i] * (n - 1) + 0.5);
        q[i] = (double)rtt[k] * bench_tsc_ns / 2; /* one way */
    }
}

/*
 * The raw blocking hand-off: a word and a sleepers flag, the least any
 * sleeping queue does. The poster publishes with a full fence and calls
 * FUTEX_WAKE only when the flag says someone sleeps; the waiter sets the
 * flag, looks once more, and sleeps. (A poster that always called
 * FUTEX_WAKE could catch the reply while still in that system call, and
 * the pair would then never sleep: a different, faster regime.)
 */
static void futex_post(uint32_t *w, uint32_t *sleepers, uint32_t v)
{
    __atomic_exchange_n(w, v, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(sleepers, __ATOMIC_SEQ_CST) &&
        __atomic_exchange_n(sleepers, 0, __ATOMIC_SEQ_CST))
        fwake(w);
}

static void futex_take(uint32_t *w, uint32_t *sleepers, uint32_t v)
{
    uint32_t x;
    while ((x = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != v) {
        __atomic_exchange_n(sleepers, 1, __ATOMIC_SEQ_CST);
        if ((x = __atomic_load_n(w, __ATOMIC_SEQ_CST)) == v)
            break;
        fwait(w, x);
    }
}

static void pause4(void)
{
    for (int k = 0; k < 4; k++)
        qb_relax();
}

/*
 * The raw ring: message i (from 1) goes in slot (i - 1) % RING_DEPTH of
 * ring[me], whose first word is the slot's sequence word, published last
 * with a release store; the receiver waits for it, copies the payload out
 * and, in the _IDX variants, publishes how far it has read (a release store
 * to its own line). The producer checks that index only when the ring may
 * be full, i.e. once a lap: in a ping-pong it never is, so what the
 * variants add is the consumer's store and the line it moves once a lap.
 */
static uint64_t ring_cached[2]; /* per process: the producer's copy of the consumer's index */

static void ring_send(int me, uint64_t i, const unsigned char *buf, size_t stride, size_t len,
                      int idx)
{
    unsigned char *slot = SH->ring[me] + ((i - 1) % RING_DEPTH) * stride;
    if (idx && i - ring_cached[me] > RING_DEPTH)
        while (i - (ring_cached[me] = __atomic_load_n(&SH->ring_tail[me][0], __ATOMIC_ACQUIRE)) >
               RING_DEPTH)
            ;
    memcpy(slot + 16, buf, len);
    *(uint64_t *)(slot + 8) = len;
    __atomic_store_n((uint64_t *)slot, i, __ATOMIC_RELEASE);
}

static void ring_recv(int me, uint64_t i, unsigned char *buf, size_t stride, int idx)
{
    unsigned char *slot = SH->ring[!me] + ((i - 1) % RING_DEPTH) * stride;
    while (__atomic_load_n((uint64_t *)slot, __ATOMIC_ACQUIRE) != i)
        ;
    size_t len = *(uint64_t *)(slot + 8);
    memcpy(buf, slot + 16, len > LAT_SIZE ? LAT_SIZE : len);
    if (idx)
        __atomic_store_n(&SH->ring_tail[!me][0], i, __ATOMIC_RELEASE);
}

static void ring_step(int me, uint64_t i, unsigned char *buf, size_t stride, int idx)
{
    size_t len = stride == 64 ? 48 : LAT_SIZE;
    if (me == 0)
        ring_send(me, i, buf, stride, len, idx);
    ring_recv(me, i, buf, stride, idx);
    if (me == 1)
        ring_send(me, i, buf, stride, len, idx);
}

/* one step of a raw reference, as side `me` (0 starts each exchange) */
static void raw_step(int raw, int me, uint64_t i, unsigned char *buf)
{
    switch (raw) {
    case R_SPIN_TWO:
        if (me == 0) {
            SH->two_b = i;
            while (SH->two_a != i)
                ;
        } else {
            while (SH->two_b != i)
                ;
            SH->two_a = i;
        }
        break;
    case R_SPIN_ONE:
        if (me == 0) {
            SH->one[1] = i;
            while (SH->one[0] != i)
                ;
        } else {
            while (SH->one[1] != i)
                ;
            SH->one[0] = i;
        }
        break;
    case R_SPIN_POLITE: /* how hard a reader hammers the line changes how fast it moves */
        if (me == 0) {
            SH->one[1] = i;
            while (SH->one[0] != i)
                pause4();
        } else {
            while (SH->one[1] != i)
                pause4();
            SH->one[0] = i;
        }
        break;
    case R_MSG: {
        /* send on msg[me], receive on msg[!me]: header (seq, len) then payload */
        unsigned char *out = SH->msg[me], *in = SH->msg[!me];
        if (me == 0) {
            memcpy(out + 16, buf, LAT_SIZE);
            __atomic_store_n((uint64_t *)out, i, __ATOMIC_RELEASE);
        }
        while (__atomic_load_n((uint64_t *)in, __ATOMIC_ACQUIRE) != i)
            ;
        memcpy(buf, in + 16, LAT_SIZE);
        if (me == 1) {
            memcpy(out + 16, buf, LAT_SIZE);
            __atomic_store_n((uint64_t *)out, i, __ATOMIC_RELEASE);
        }
        break;
    }
    case R_RING1:
    case R_RING1_IDX:
        ring_step(me, i, buf, 64, raw == R_RING1_IDX);
        break;
    case R_RING2:
    case R_RING2_IDX:
        ring_step(me, i, buf, 128, raw == R_RING2_IDX);
        break;
    case R_FUTEX: {
        uint32_t *mine = me ? &SH->fa : &SH->fb, *theirs = me ? &SH->fb : &SH->fa;
        uint32_t *my_sl = me ? &SH->fa_sl : &SH->fb_sl, *their_sl = me ? &SH->fb_sl : &SH->fa_sl;
        if (me == 0)
            futex_post(mine, my_sl, (uint32_t)i);
        futex_take(theirs, their_sl, (uint32_t)i);
        if (me == 1)
            futex_post(mine, my_sl, (uint32_t)i);
        break;
    }
    }
}

static int lat_iters(int s, int wait)
{
    int fast = S[s].raw || S[s].x == &x_pshm;
    if (wait == QB_BUSY)
        return fast ? (O.quick ? 10000 : 100000) : (O.quick ? 1000 : 20000);
    return O.quick ? 200 : 4000; /* quick: a blocking round trip is 20-200 us on a loaded VM */
}

/*
 * Set a cell up on both sides: side 0 runs init (a failure there is
 * reported, not fatal), then both attach and meet. Returns 0, or -1 when
 * init failed (both sides then skip the cell).
 */
static int cell_setup(int side, const sys *y)
{
    if (side == 0) {
        SH->failed = 0;
        if (y->x && y->x->init(&CFG, SH->err, sizeof SH->err) != 0)
            SH->failed = 1;
    }
    meet(side);
    if (SH->failed)
        return -1;
    char err[256];
    if (y->x && y->x->attach(&CFG, side, err, sizeof err) != 0)
        qb_fail("%s", err);
    meet(side);
    return 0;
}

/* ... and take it down: both detach, then side 0 runs fini. */
static void cell_teardown(int side, const sys *y)
{
    if (y->x)
        y->x->detach();
    meet(side);
    if (side == 0 && y->x)
        y->x->fini();
}

/* One ping-pong run of y as `side`: iters round trips of size-byte
 * messages after a warm-up; side 0 writes the one-way quantiles to q.
 * Returns -1 if y's init failed (both sides skip it). */
static int ping_pong(int side, const sys *y, size_t size, int iters, double *q)
{
    int warm = iters / 10 + 10;
    unsigned char buf[LAT_SIZE];
    uint64_t *rtt = side == 0 ? malloc(sizeof *rtt * (size_t)iters) : NULL;

    if (side == 0 && !rtt)
        qb_fail("out of memory");
    memset(buf, 0, sizeof buf);
    if (y->raw && side == 0) {
        SH->two_a = SH->two_b = SH->one[0] = SH->one[1] = 0;
        memset(SH->msg, 0, sizeof SH->msg);
        memset(SH->ring, 0, sizeof SH->ring);
        memset(SH->ring_tail, 0, sizeof SH->ring_tail);
        SH->fa = SH->fb = SH->fa_sl = SH->fb_sl = 0;
    }
    ring_cached[0] = ring_cached[1] = 0;
    if (cell_setup(side, y) != 0) {
        free(rtt);
        return -1;
    }
    for (int i = 1; i <= warm + iters; i++) {
        uint64_t seq = (uint64_t)i, t0 = bench_ticks();
        if (y->raw) {
            raw_step(y->raw, side, seq, buf);
        } else if (side == 1) {
            y->x->recv(0, buf, size);
            y->x->send(1, buf, size);
            continue;
        } else {
            memcpy(buf, &seq, 8);
            y->x->send(0, buf, size);
            y->x->recv(1, buf, size);
            memcpy(&seq, buf, 8);
            if (seq != (uint64_t)i)
                qb_fail("ping-pong: got message %llu, expected %d", (unsigned long long)seq, i);
        }
        uint64_t t1 = bench_ticks();
        if (side == 0 && i > warm)
            rtt[i - warm - 1] = t1 - t0;
    }
    cell_teardown(side, y);
    if (side == 0) {
        quantiles(rtt, iters, q);
        free(rtt);
    }
    return 0;
}

/*
 * One side of a latency cell. The hardware can change under us (on a VM
 * the two vCPUs may share a core one second and not the next), so every
 * cell first measures its own references on the same two CPUs, a moment
 * before: busy cells the raw ping-pongs (one line, a flag per line, one
 * line polled with pauses) and the two-line raw message, blocking cells the
 * raw futex ping-pong. The ratios use those.
 */
static void lat_side(int side, int s, int wait)
{
    const sys *y = &S[s];
    int iters = lat_iters(s, wait), ri = iters / 5 + 100;
    size_t size = y->lat_size ? y->lat_size : LAT_SIZE;

    if (!y->raw) {
        if (wait == QB_BUSY) {
            static const int refs[NREF] = {R_SPIN_ONE, R_SPIN_TWO, R_MSG, R_SPIN_POLITE,
                                           R_RING1, R_RING1_IDX, R_RING2, R_RING2_IDX};
            for (int w = 0; w < NREF; w++)
                ping_pong(side, &S[find_sys(refs[w], 0, 0)], LAT_SIZE, ri, SH->qref[w]);
        } else {
            ping_pong(side, &S[find_sys(R_FUTEX, 0, 0)], LAT_SIZE, ri, SH->qref[0]);
        }
    }
    set_cfg(s, size, depth_for(LAT_SIZE), wait); /* the channels hold as many as in throughput */
    if (ping_pong(side, y, size, iters, SH->q) != 0)
        return;
}

/* ------------------------------------------------------------ throughput */

static double cell_seconds;

/* messages sent before the clock starts: every ring twice round, so each
 * page of it has been touched by both sides (first touches are slow here) */
static uint64_t warm_for(size_t size) { return 2 * (uint64_t)depth_for(size) + 2; }

static unsigned char *pool_next(size_t *off, size_t size)
{
    if (*off + size > pool_size)
        *off = 0;
    unsigned char *p = POOL + *off;
    *off += (size + 63) & ~(size_t)63;
    return p;
}

/* The producer's loop, the same for every system: the warm-up messages,
 * then size-byte messages from the pool for secs (at least 4),
 * then STOP. Each message starts with its number. */
static void produce(void (*send)(void *ctx, const void *buf, size_t len), void *ctx, size_t size,
                    double secs)
{
    size_t off = 0;
    uint64_t seq = 0, warm = warm_for(size), timed = 0;
    int batch = size >= 65536 ? 1 : 64;
    double t0 = 0, t = 0;
    while (seq < warm || t - t0 < secs || timed < 4) {
        for (int k = 0; k < batch; k++) {
            unsigned char *src = pool_next(&off, size);
            memcpy(src, &seq, 8);
            send(ctx, src, size);
            if (++seq == warm)
                t0 = bench_now();
            if (seq > warm)
                timed++;
        }
        t = bench_now();
    }
    unsigned char *src = pool_next(&off, size);
    uint64_t stop = STOP;
    memcpy(src, &stop, 8);
    send(ctx, src, size);
}

static void xport_send(void *ctx, const void *buf, size_t len)
{
    ((const qb_xport *)ctx)->send(0, buf, len);
}

/* --- raw hand-off: a ring in a shared memory object made for the cell,
 * like every other system's (first touches cost the same) */

typedef struct hring {
    _Alignas(64) volatile uint64_t freed; /* consumer: messages consumed */
    _Alignas(64) unsigned char slots[];   /* [seq | pad to 16] payload, stride */
} hring;

static hring *H;
static char h_name[128];
static size_t h_stride, h_bytes;
static uint64_t h_nslots, h_pos, h_cached;

static void h_names(void)
{
    char n[96];
    qb_name(n, sizeof n, "raw");
    snprintf(h_name, sizeof h_name, "/%s", n);
}

static int h_init(const qb_cfg *c, char *err, size_t cap)
{
    h_names();
    int fd = shm_open(h_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)(sizeof(hring) + h_stride * h_nslots)) != 0) {
        snprintf(err, cap, "shm_open: %s", strerror(errno));
        if (fd >= 0)
            close(fd), shm_unlink(h_name);
        return -1;
    }
    close(fd);
    (void)c;
    return 0;
}

static void h_fini(void) { shm_unlink(h_name); }

static int h_attach(const qb_cfg *c, int side, char *err, size_t cap)
{
    h_bytes = sizeof(hring) + h_stride * h_nslots;
    h_names();
    int fd = shm_open(h_name, O_RDWR, 0);
    H = fd < 0 ? MAP_FAILED
               : mmap(NULL, h_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (fd >= 0)
        close(fd);
    if (H == MAP_FAILED) {
        snprintf(err, cap, "raw hand-off ring: %s", strerror(errno));
        return -1;
    }
    h_pos = h_cached = 0;
    (void)side;
    return 0;
}

static void h_detach(void) { munmap(H, h_bytes); }

/* The hand-off polls; on a machine shared with other work it gives its CPU
 * away now and then (never on a quiet one: the other side is always close). */
static void h_wait(unsigned spins)
{
    if (spins % 4096 == 4095)
        sched_yield();
    else
        qb_relax();
}

static void h_send(int dir, const void *buf, size_t len)
{
    (void)dir;
    for (unsigned spins = 0; h_pos - h_cached >= h_nslots; spins++) {
        h_cached = __atomic_load_n(&H->freed, __ATOMIC_ACQUIRE);
        if (h_pos - h_cached >= h_nslots)
            h_wait(spins);
    }
    unsigned char *slot = H->slots + (h_pos % h_nslots) * h_stride;
    memcpy(slot + 16, buf, len);
    __atomic_store_n((uint64_t *)slot, h_pos + 1, __ATOMIC_RELEASE);
    h_pos++;
}

static size_t h_recv(int dir, void *dst, size_t len)
{
    (void)dir;
    unsigned char *slot = H->slots + (h_pos % h_nslots) * h_stride;
    for (unsigned spins = 0; __atomic_load_n((uint64_t *)slot, __ATOMIC_ACQUIRE) != h_pos + 1;
         spins++)
        h_wait(spins);
    if (CFG.zc)
        qb_consume(slot + 16, len, dst);
    else
        memcpy(dst, slot + 16, len);
    h_pos++;
    __atomic_store_n(&H->freed, h_pos, __ATOMIC_RELEASE);
    return len;
}

static const qb_xport x_hand = {"raw", h_init, h_fini, h_attach, h_detach, h_send, h_recv};

static double memcpy_rate(int hot, size_t size)
{
    unsigned char *dst = malloc(size);
    size_t off = 0;
    uint64_t n = 0;
    if (!dst)
        qb_fail("out of memory");
    memset(dst, 0, size);
    unsigned char *src = pool_next(&off, size);
    for (int i = 0; i < 3; i++)
        memcpy(dst, src, size);
    double t0 = bench_now(), t = t0;
    while (t - t0 < cell_seconds || n < 4) {
        if (!hot)
            src = pool_next(&off, size);
        memcpy(dst, src, size);
        sink += dst[n % size];
        n++;
        t = bench_now();
    }
    free(dst);
    return (double)n / (t - t0);
}

/* One stream of y as `side` for secs: side 0 produces, side 1 consumes
 * and returns the rate of the messages after the warm-up (side 0: 0; -1 if
 * y's init failed). */
static double stream(int side, const sys *y, size_t size, double secs)
{
    sys raw = *y;
    double rate = 0;

    set_cfg((int)(y - S), size, depth_for(size), QB_DEFAULT);
    if (y->raw) {
        h_stride = (16 + size + 63) & ~(size_t)63;
        h_nslots = (uint64_t)CFG.depth;
        raw.x = &x_hand;
        y = &raw;
    }
    if (cell_setup(side, y) != 0)
        return -1;
    if (side == 0) {
        produce(xport_send, (void *)y->x, size, secs);
    } else {
        unsigned char *dst = malloc(size);
        uint64_t n = 0, tag, warm = warm_for(size);
        double t0 = 0, t1 = 0;
        if (!dst)
            qb_fail("out of memory");
        memset(dst, 0, size);
        for (;;) {
            y->x->recv(0, dst, size);
            memcpy(&tag, dst, 8);
            if (tag == STOP) {
                t1 = bench_now(); /* right behind the last message: no clock per message */
                break;
            }
            if (tag != n)
                qb_fail("stream: message %llu where %llu was due", (unsigned long long)tag,
                        (unsigned long long)n);
            if (++n == warm)
                t0 = bench_now();
        }
        free(dst);
        if (n <= warm || t1 <= t0)
            qb_fail("stream: only %llu messages", (unsigned long long)n);
        rate = (double)(n - warm) / (t1 - t0);
    }
    meet(side); /* the consumer has everything before the producer closes */
    cell_teardown(side, y);
    return rate;
}

/* One side of a throughput cell: the raw hand-off of the same kind first
 * (half as long: the cell's own reference, see lat_side), then y. */
static void tp_side(int side, int s, size_t size)
{
    const sys *y = &S[s];

    if (y->raw == R_MEMCPY_COLD || y->raw == R_MEMCPY_HOT) {
        if (side == 0)
            SH->rate = memcpy_rate(y->raw == R_MEMCPY_HOT, size);
        return;
    }
    if (!y->raw) {
        double r = stream(side, &S[hand_ref(s)], size, cell_seconds / 2);
        if (side == 1)
            SH->ref_rate = r;
    }
    double r = stream(side, y, size, cell_seconds);
    if (side == 1)
        SH->rate = r;
}

/* ------------------------------------------------------------ the workers */

static pid_t W[2];

static void worker(int side)
{
    bench_pin(side);
    if (side == 0) {
        /* the producer's source: private, touched once, never cache-hot as a whole */
        POOL = mmap(NULL, pool_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (POOL == MAP_FAILED)
            qb_fail("mmap: %s", strerror(errno));
        madvise(POOL, pool_size, MADV_HUGEPAGE);
        for (size_t i = 0; i < pool_size; i += 4096)
            memset(POOL + i, (int)(i >> 12), 4096);
    }
    for (uint32_t seq = 1;; seq++) {
        uint32_t c;
        while ((int32_t)((c = __atomic_load_n(&SH->cmd_seq, __ATOMIC_ACQUIRE)) - seq) < 0)
            fwait(&SH->cmd_seq, c);
        cur_seq = seq;
        stage_n = 0;
        if (SH->cmd == C_QUIT)
            break;
        if (SH->cmd == C_LAT)
            lat_side(side, SH->sys, (int)SH->arg);
        else
            tp_side(side, SH->sys, SH->arg);
        __atomic_fetch_add(&SH->done, 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, &SH->done, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    exit(0); /* not _exit: iceoryx's runtime unregisters from RouDi in exit */
}

static uint32_t bench_seq;

static void start_workers(void)
{
    pid_t parent = getpid();
    memset((void *)SH, 0, sizeof *SH);
    bench_seq = 0;
    fflush(NULL);
    for (int side = 0; side < 2; side++) {
        W[side] = fork();
        if (W[side] < 0) {
            perror("bench_queue: fork");
            exit(1);
        }
        if (side == 0 && W[0] > 0)
            SH->w0 = W[0];
        if (W[side] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            worker(side);
        }
    }
}

/* Remove what a failed cell may have left: a worker's objects are named
 * pshm_bench_<its pid>_... */
/* Remove what the bench's processes left: every pshm_bench_<pid>_* entry
 * of pid, or (pid 0) of every pid that is gone - what a bench killed with
 * SIGKILL left, no handler having run (a running bench's are not touched,
 * nor anyone else's). RouDi's config directories are among them. */
static void sweep(pid_t pid)
{
    static const char *const dirs[] = {"/dev/shm", "/dev/mqueue", "/tmp"};
    for (int d = 0; d < 3; d++) {
        DIR *dir = opendir(dirs[d]);
        struct dirent *e;
        if (!dir)
            continue;
        while ((e = readdir(dir)) != NULL) {
            char *end, path[512], in[600];
            struct stat st;
            if (strncmp(e->d_name, "pshm_bench_", 11) != 0)
                continue;
            long who = strtol(e->d_name + 11, &end, 10);
            if (who <= 0 || *end != '_' || (pid ? who != (long)pid
                                                : kill((pid_t)who, 0) == 0 || errno != ESRCH))
                continue;
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            if (lstat(path, &st) != 0 || st.st_uid != getuid())
                continue;
            if (S_ISDIR(st.st_mode)) { /* peer_iceoryx.c's RouDi directory */
                snprintf(in, sizeof in, "%s/roudi.toml", path);
                unlink(in);
                snprintf(in, sizeof in, "%s/roudi.log", path);
                unlink(in);
                rmdir(path);
            } else {
                unlink(path);
            }
        }
        closedir(dir);
    }
}

static void stop_workers(int kill_them)
{
    for (int side = 0; side < 2; side++) {
        if (W[side] <= 0)
            continue;
        if (kill_them)
            kill(W[side], SIGKILL);
    }
    if (!kill_them) {
        SH->cmd = C_QUIT;
        __atomic_store_n(&SH->cmd_seq, ++bench_seq, __ATOMIC_RELEASE);
        syscall(SYS_futex, &SH->cmd_seq, FUTEX_WAKE, 2, NULL, NULL, 0);
    }
    for (int side = 0; side < 2; side++) {
        if (W[side] <= 0)
            continue;
        waitpid(W[side], NULL, 0);
        sweep(W[side]);
        W[side] = 0;
    }
}

/* Run one cell on the workers; 0, or -1 and the reason in why. A cell that
 * takes longer than timeout_s is stopped, and the workers restarted. */
static int run_cell(int cmd, int s, size_t arg, double timeout_s, char *why, size_t cap)
{
    SH->cmd = cmd;
    SH->sys = s;
    SH->arg = arg;
    SH->err[0] = 0;
    SH->failed = 0;
    SH->rate = SH->ref_rate = -1;
    for (int w = 0; w < NREF; w++)
        for (int q = 0; q < NQ; q++)
            SH->qref[w][q] = -1;
    uint32_t want = __atomic_load_n(&SH->done, __ATOMIC_ACQUIRE) + 2;
    __atomic_store_n(&SH->cmd_seq, ++bench_seq, __ATOMIC_RELEASE);
    syscall(SYS_futex, &SH->cmd_seq, FUTEX_WAKE, 2, NULL, NULL, 0);
    double t0 = bench_now();
    static int trace = -1;
    if (trace < 0)
        trace = getenv("PSHM_BENCH_TRACE") != NULL;
    for (;;) {
        uint32_t d = __atomic_load_n(&SH->done, __ATOMIC_ACQUIRE);
        if ((int32_t)(d - want) >= 0)
            break;
        int dead = 0;
        for (int side = 0; side < 2; side++)
            if (waitpid(W[side], NULL, WNOHANG) == W[side])
                dead = 1, W[side] = -W[side]; /* reaped: only sweep it */
        if (dead || bench_now() - t0 > timeout_s) {
            snprintf(why, cap, "%s", SH->err[0] ? SH->err
                                     : dead      ? "a worker process died"
                                                 : "timed out");
            for (int side = 0; side < 2; side++)
                if (W[side] < 0) {
                    sweep(-W[side]);
                    W[side] = 0;
                }
            stop_workers(1);
            start_workers();
            return -1;
        }
        struct timespec to = {0, 100000000};
        syscall(SYS_futex, &SH->done, FUTEX_WAIT, d, &to, NULL, 0);
    }
    if (trace)
        fprintf(stderr, "bench_queue: %.3f s %s %s %zu\n", bench_now() - t0,
                cmd == C_LAT ? "latency" : "throughput", S[s].label, arg);
    if (SH->failed) {
        snprintf(why, cap, "%s", SH->err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ results */

static const size_t SIZES_FULL[] = {64,       256,       1024,      4096,       16384,     65536,
                                    262144,   1 << 20,   4 << 20,   16 << 20,   64 << 20};
static const size_t SIZES_QUICK[] = {64, 16384, 1 << 20};
static const size_t *SIZES;
static int NSZ;

static int rounds;
/* LAT[busy/block][sys][round][q] one-way ns; LREF[busy/block][sys][round][ref][q] the
 * cell's own references (busy: one line, a flag per line, two-line message;
 * blocking: futex); TPR[sys][size][round] msgs/s and TREF the cell's hand-off;
 * < 0: not run */
static double *LAT, *LREF, *TPR, *TREF;
static char why[NS][320]; /* a system's first failure */

#define LATP(k, s, r, q) LAT[(((size_t)(k) * NS + (size_t)(s)) * (size_t)rounds + (size_t)(r)) * NQ + (size_t)(q)]
#define LREFP(k, s, r, w, q)                                                    \
    LREF[((((size_t)(k) * NS + (size_t)(s)) * (size_t)rounds + (size_t)(r)) * NREF + (size_t)(w)) * NQ + (size_t)(q)]
#define TPP(s, z, r) TPR[(((size_t)(s) * (size_t)NSZ) + (size_t)(z)) * (size_t)rounds + (size_t)(r)]
#define TREFP(s, z, r) TREF[(((size_t)(s) * (size_t)NSZ) + (size_t)(z)) * (size_t)rounds + (size_t)(r)]

/* median over rounds of one latency quantile */
static bench_stat lat_stat(int k, int s, int q)
{
    double v[64];
    for (int r = 0; r < rounds; r++)
        v[r] = LATP(k, s, r, q);
    return bench_stat_of(v, rounds);
}

/* median over rounds of the per-round ratio a / b of quantile q */
static double lat_ratio(int k, int a, int b, int q)
{
    double v[64];
    for (int r = 0; r < rounds; r++) {
        double x = LATP(k, a, r, q), y = LATP(k, b, r, q);
        v[r] = x > 0 && y > 0 ? x / y : -1;
    }
    return bench_stat_of(v, rounds).med;
}

/*
 * A latency row against its reference, per round, then the median. A
 * system row uses the references it measured itself (which: 0 the best
 * raw ping-pong of the cell - one line, a flag per line or one line polled
 * with pauses, whichever had the lowest p50 -, 2 the two-line message;
 * blocking: the round's futex ping-pongs). A reference row is compared
 * with the standalone one-line (or futex) row.
 */
/* The best fixed-line raw ping-pong (one line, a flag per line, or one
 * line polled with pauses: lowest p50) cell s measured in round r. */
static int best_fixed(int s, int r)
{
    int w = F_ONE;
    for (int c = F_TWO; c <= F_POLITE; c++)
        if (c != F_MSG && LREFP(0, s, r, c, Q50) > 0 && LREFP(0, s, r, c, Q50) < LREFP(0, s, r, w, Q50))
            w = c;
    return w;
}

static double lat_vs_raw(int k, int s, int q, int which)
{
    double v[64], f[64];
    if (S[s].raw)
        return lat_ratio(k, s, find_sys(k ? R_FUTEX : R_SPIN_ONE, 0, 0), q);
    for (int r = 0; r < rounds; r++) {
        int w = k == 0 && which == 0 ? best_fixed(s, r) : which;
        double x = LATP(k, s, r, q), y = LREFP(k, s, r, k ? 0 : w, q);
        if (k == 1) {
            /* A futex ping-pong now and then runs without ever sleeping (each
             * side's wake arrives before the other side gets to its wait):
             * the blocking reference of a round is the median of the futex
             * ping-pongs all its blocking cells measured. */
            int n = 0;
            for (int t = 0; t < NS; t++)
                if (LREFP(1, t, r, 0, q) > 0)
                    f[n++] = LREFP(1, t, r, 0, q);
            y = n ? bench_stat_of(f, n).med : -1;
        }
        v[r] = x > 0 && y > 0 ? x / y : -1;
    }
    return bench_stat_of(v, rounds).med;
}

/* the like-for-like raw ring of a busy row: one-line records for a message
 * that fits one line with its header, two lines otherwise; both with the
 * consumer publishing its index, as pshm's does */
static int ring_ref(int s)
{
    return S[s].lat_size && S[s].lat_size <= 48 ? F_RING1_IDX : F_RING2_IDX;
}

/* two of the references a cell measured, a / b per round, median */
static double ref_ratio(int s, int a, int b, int q)
{
    double v[64];
    for (int r = 0; r < rounds; r++) {
        double x = LREFP(0, s, r, a, q), y = LREFP(0, s, r, b, q);
        v[r] = x > 0 && y > 0 ? x / y : -1;
    }
    return bench_stat_of(v, rounds).med;
}

/* a reference a cell measured against the best fixed-line ping-pong of
 * the same cell, per round, median */
static double ref_vs_best(int s, int a, int q)
{
    double v[64];
    for (int r = 0; r < rounds; r++) {
        double x = LREFP(0, s, r, a, q), y = LREFP(0, s, r, best_fixed(s, r), q);
        v[r] = x > 0 && y > 0 ? x / y : -1;
    }
    return bench_stat_of(v, rounds).med;
}

static bench_stat tp_stat(int s, int z)
{
    double v[64];
    for (int r = 0; r < rounds; r++)
        v[r] = TPP(s, z, r);
    return bench_stat_of(v, rounds);
}

/* a throughput row against the raw hand-off it measured just before */
static double tp_vs_hand(int s, int z)
{
    double v[64];
    if (S[s].raw)
        return S[s].raw == R_HAND_ZC || S[s].raw == R_HAND_COPY ? 1 : -1;
    for (int r = 0; r < rounds; r++) {
        double x = TPP(s, z, r), y = TREFP(s, z, r);
        v[r] = x > 0 && y > 0 ? x / y : -1;
    }
    return bench_stat_of(v, rounds).med;
}

/* a throughput row against the one-thread memcpy of the same size (the
 * same bytes, hot), per round: for scale, not a limit of the same work */
static double tp_vs_memcpy(int s, int z)
{
    double v[64];
    int m = find_sys(R_MEMCPY_HOT, 0, 0);
    for (int r = 0; r < rounds; r++) {
        double x = TPP(s, z, r), y = TPP(m, z, r);
        v[r] = x > 0 && y > 0 ? x / y : -1;
    }
    return bench_stat_of(v, rounds).med;
}

static int z_of(size_t size)
{
    for (int z = 0; z < NSZ; z++)
        if (SIZES[z] == size)
            return z;
    return -1;
}

static const char *state(int s)
{
    return S[s].missing ? S[s].missing : why[s][0] ? why[s] : NULL;
}

/* ------------------------------------------------------------ tables */

static int is_memcpy(int s) { return S[s].raw == R_MEMCPY_COLD || S[s].raw == R_MEMCPY_HOT; }
static int is_hand(int s) { return S[s].raw == R_HAND_ZC || S[s].raw == R_HAND_COPY; }

static void lat_rows(btable *t, int k)
{
    int sp = find_sys(0, PSHM_QUEUE_SPSC, 1);
    unsigned need = k == 0 ? LB : LK;
    for (int s = 0; s < NS; s++) {
        if (!(S[s].where & need) || !selected(s))
            continue;
        bench_stat a = lat_stat(k, s, Q50), b = lat_stat(k, s, Q99), c = lat_stat(k, s, Q999);
        if (a.n == 0) {
            const char *w = state(s);
            bt_row(t, BT_COLS(S[s].label, "n/a", "n/a", "n/a", "", "", "", "", "",
                              w ? w : "not run"));
            continue;
        }
        int two = k == 0 && !S[s].raw && !S[s].lat_size;
        bt_row(t, BT_COLS(S[s].label, bench_fmt_ns(a.med), bench_fmt_ns(b.med), bench_fmt_ns(c.med),
                          bench_fmt_spread(a.min, a.max, "%.0f"),
                          bench_fmt_ratio(lat_vs_raw(k, s, Q50, 0)),
                          bench_fmt_ratio(lat_vs_raw(k, s, Q99, 0)),
                          two ? bench_fmt_ratio(lat_vs_raw(k, s, Q50, F_MSG)) : "",
                          k == 0 && !S[s].raw ? bench_fmt_ratio(lat_vs_raw(k, s, Q50, ring_ref(s)))
                                              : "",
                          S[s].raw || s == sp ? "" : bench_fmt_ratio(lat_ratio(k, s, sp, Q50))));
    }
}

static void latency_tables(void)
{
    btable *t = bt_new("one-way latency, 64 B messages, ns (ping-pong round trip / 2)", 10,
                       BT_COLS("system", "p50", "p99", "p99.9", "p50 range", "p50 vs raw",
                               "p99 vs raw", "p50 vs 2-line raw", "p50 vs ring raw",
                               "p50 vs pshm"));
    bt_section(t, "busy-polling (try / non-blocking calls in a loop); raw = the best of the raw "
                  "ping-pongs, measured by the same cell just before");
    lat_rows(t, 0);
    bt_section(t, "blocking (pshm: spin = 0, sleeps at once; the others' blocking calls); "
                  "raw = the median of the raw futex ping-pongs the round's cells measured");
    lat_rows(t, 1);
    bt_note(t, "medians of %d interleaved rounds; p50 range = min-max of the rounds' p50; "
               "ratios are per cell against the references that cell measured a moment before "
               "on the same two CPUs, then the median over the rounds; 2-line raw = a 64-byte "
               "message behind a 16-byte header, copied out by the receiver (what a 64-byte "
               "message with a header moves); ring raw = the raw ring of the same record size "
               "(one line for 48 B, two for 64 B) with the consumer publishing its index, "
               "measured by the same cell (a new line a message, like any ring); 'vs pshm' = "
               "against pshm spsc zero-copy",
            rounds);
    bt_emit(t, J);
}

static void throughput_tables(void)
{
    const char *cols[16];
    char heads[16][32];
    cols[0] = "system";
    for (int z = 0; z < NSZ; z++) {
        snprintf(heads[z], sizeof heads[z], "%s", bench_fmt_size(SIZES[z]));
        cols[z + 1] = heads[z];
    }
    btable *g = bt_new("throughput, GB/s of payload (producer on one CPU, consumer on the other)",
                       NSZ + 1, cols);
    btable *r = bt_new("throughput as a ratio to the raw hand-off of the same kind, measured by "
                       "the same cell just before (zero-copy: read in place; copying: copied out)",
                       NSZ + 1, cols);
    btable *mc = bt_new("throughput as a ratio to a one-thread memcpy of the same size (the same "
                        "bytes, hot): for scale only, a memcpy hands nothing to another core",
                        NSZ + 1, cols);
    for (int s = 0; s < NS; s++) {
        if (!(S[s].where & TP) || !selected(s))
            continue;
        const char *cg[16], *cr[16], *cm[16];
        char mbuf[16][16];
        cg[0] = cr[0] = cm[0] = S[s].label;
        for (int z = 0; z < NSZ; z++) {
            bench_stat st = tp_stat(s, z);
            cg[z + 1] = st.n ? bench_fmt_gbs(st.med * (double)SIZES[z] / 1e9) : "n/a";
            cr[z + 1] = is_memcpy(s) ? "" : bench_fmt_ratio(tp_vs_hand(s, z));
            snprintf(mbuf[z], sizeof mbuf[z], "%s", bench_fmt_ratio(tp_vs_memcpy(s, z)));
            cm[z + 1] = mbuf[z];
        }
        bt_row(g, cg);
        if (!is_memcpy(s))
            bt_row(r, cr);
        if (!is_memcpy(s) || S[s].raw == R_MEMCPY_COLD)
            bt_row(mc, cm);
    }
    bt_note(g, "medians of %d interleaved rounds, %.2f s a cell after a warm-up of two laps of "
               "the ring; pshm with its default wait (spin, then sleep), kernel IPC, Boost and "
               "ZeroMQ blocking, iceoryx take loop then WaitSet; channel depth "
               "min(256, max(3, 2 MiB / size)) messages for everyone",
            O.quick ? 1 : rounds < 3 ? rounds : 3, cell_seconds);
    bt_emit(g, J);
    bt_emit(r, J);
    bt_note(mc, "which one is the limit: moving a message means one core writes each byte into "
                "shared memory and the other core reads it, so every line crosses between the "
                "two cores' caches (through L3 or memory once the ring outgrows L2), plus a flag "
                "a message; the raw hand-off does exactly that and nothing more, so it is the "
                "limit of the same work and the ratios above are taken against it. A memcpy on "
                "one thread crosses nothing (hot: source and destination stay in that core's "
                "cache): it shows what the crossing costs, the raw hand-off's own ratio here (near "
                "1 when the two CPUs are hyper-threads of one core: nothing crosses then)");
    bt_emit(mc, J);

    int z64 = z_of(64);
    if (z64 < 0)
        return;
    btable *m = bt_new("64 B messages per second", 4,
                       BT_COLS("system", "msgs/s", "range over rounds (M/s)", "vs raw hand-off"));
    for (int s = 0; s < NS; s++) {
        if (!(S[s].where & TP) || is_memcpy(s) || !selected(s))
            continue;
        bench_stat st = tp_stat(s, z64);
        bt_row(m, BT_COLS(S[s].label, bench_fmt_rate(st.med),
                          st.n ? bench_fmt_spread(st.min / 1e6, st.max / 1e6, "%.2f") : "n/a",
                          bench_fmt_ratio(tp_vs_hand(s, z64))));
    }
    bt_emit(m, J);
}

/* "301 [296-311]": a median and the range of the rounds (scaled by k) */
static const char *with_range(const char *med, bench_stat st, double k)
{
    static char ring[16][96];
    static unsigned next;
    char *b = ring[next++ % 16];
    if (st.n < 2)
        return med;
    const char *f = st.max * k >= 100 ? "%.0f" : st.max * k >= 10 ? "%.1f" : "%.2f";
    snprintf(b, 96, "%s [%s]", med, bench_fmt_spread(st.min * k, st.max * k, f));
    return b;
}

/* The headline: every system in one row, with its ratios. */
static void main_table(void)
{
    int z64 = z_of(64), z1m = z_of(MIB);
    btable *t = bt_new("Queues: pshm, its peers and the hardware (one-way latency of 64 B "
                       "messages in ns; throughput)",
                       13,
                       BT_COLS("system", "busy p50", "busy p99", "busy p99.9", "vs raw p50",
                               "p50 vs ring raw",
                               "blocking p50", "blocking p99", "vs futex p50", "64 B msgs/s",
                               "1 MiB GB/s", "1 MiB vs hand-off", "1 MiB vs memcpy"));
    for (int s = 0; s < NS; s++) {
        bench_stat a = lat_stat(0, s, Q50), b = lat_stat(0, s, Q99), c = lat_stat(0, s, Q999);
        bench_stat d = lat_stat(1, s, Q50), e = lat_stat(1, s, Q99);
        bench_stat f = z64 >= 0 ? tp_stat(s, z64) : (bench_stat){-1, -1, -1, 0};
        bench_stat g = z1m >= 0 ? tp_stat(s, z1m) : (bench_stat){-1, -1, -1, 0};
        const char *w = state(s);
        if ((!a.n && !d.n && !f.n && !g.n && !w) || !selected(s))
            continue;
        if (!a.n && !d.n && !f.n && !g.n) {
            bt_row(t, BT_COLS(S[s].label, "n/a", "", "", "", "", "", "", "", w, "", "", ""));
            continue;
        }
        bt_row(t, BT_COLS(S[s].label, a.n ? with_range(bench_fmt_ns(a.med), a, 1) : "",
                          a.n ? bench_fmt_ns(b.med) : "", a.n ? bench_fmt_ns(c.med) : "",
                          a.n ? bench_fmt_ratio(lat_vs_raw(0, s, Q50, 0)) : "",
                          a.n && !S[s].raw ? bench_fmt_ratio(lat_vs_raw(0, s, Q50, ring_ref(s)))
                                           : "",
                          d.n ? with_range(bench_fmt_ns(d.med), d, 1) : "",
                          d.n ? bench_fmt_ns(e.med) : "",
                          d.n ? bench_fmt_ratio(lat_vs_raw(1, s, Q50, 0)) : "",
                          f.n && !is_memcpy(s) ? with_range(bench_fmt_rate(f.med), f, 1e-6) : "",
                          g.n ? with_range(bench_fmt_gbs(g.med * (double)MIB / 1e9), g,
                                           (double)MIB / 1e9)
                              : "",
                          g.n && !is_memcpy(s) && !is_hand(s) ? bench_fmt_ratio(tp_vs_hand(s, z1m))
                                                              : "",
                          g.n && S[s].raw != R_MEMCPY_HOT ? bench_fmt_ratio(tp_vs_memcpy(s, z1m))
                                                          : ""));
    }
    bt_note(t, "medians of %d interleaved rounds (throughput: %d) on cpu%d/cpu%d, [min-max of "
               "the rounds]; every ratio is against the references the same cell measured a "
               "moment before on the same CPUs (vs raw: the best raw ping-pong; vs ring raw: "
               "the raw ring of the same record size, consumer index published; vs futex: the "
               "round's raw futex ping-pong; zero-copy rows against the in-place hand-off, "
               "copying rows against the copy-out one), median over the rounds; vs memcpy: "
               "against a one-thread memcpy of the same bytes (hot), for scale, not a limit: "
               "the raw hand-off (two cores, one buffer, a flag) is the limit of the same work",
            rounds, O.quick ? 1 : rounds < 3 ? rounds : 3, bench_cpu(0), bench_cpu(1));
    bt_main(t);
    bt_emit(t, J);
}

/* ------------------------------------------------------------ plots */

static void cdf_plot(int k)
{
    char file[64], title[128];
    snprintf(file, sizeof file, "queue_latency_cdf_%s.png", k ? "blocking" : "busy");
    snprintf(title, sizeof title, "one-way latency, 64 B, %s (median of %d rounds per quantile)",
             k ? "blocking" : "busy-polling", rounds);
    bj_plot_begin(J, file, "cdf", title, "one-way latency (ns)", "fraction of messages", 1, 0);
    for (int s = 0; s < NS; s++) {
        double x[NQ], y[NQ];
        int n = 0;
        for (int q = 0; q < NQ; q++) {
            bench_stat st = lat_stat(k, s, q);
            if (st.n) {
                x[n] = st.med;
                y[n++] = QL[q];
            }
        }
        if (n)
            bj_series(J, S[s].label, S[s].raw != 0, x, y, n);
    }
    bj_plot_end(J);
}

static void tp_plot(void)
{
    bj_plot_begin(J, "queue_throughput.png", "lines",
                  "throughput against message size (median of the rounds)", "message size (bytes)",
                  "GB/s of payload", 1, 1);
    for (int s = 0; s < NS; s++) {
        double x[16], y[16];
        int n = 0;
        if (!(S[s].where & TP))
            continue;
        for (int z = 0; z < NSZ; z++) {
            bench_stat st = tp_stat(s, z);
            if (st.n) {
                x[n] = (double)SIZES[z];
                y[n++] = st.med * (double)SIZES[z] / 1e9;
            }
        }
        if (n)
            bj_series(J, S[s].label, S[s].raw != 0, x, y, n);
    }
    bj_plot_end(J);
}

/* ------------------------------------------------------------ findings */

/*
 * Every cell where a peer (or the kernel) is ahead of pshm spsc, mpmc or
 * broadcast of the same kind (zero-copy against zero-copy, copying against
 * copying), with what is known of why such a cell can go that way: "beats" when
 * the two ranges over the rounds do not overlap, "ahead within the noise"
 * when they do; and how each target of issue 12 stands.
 */
/* Why a peer can be ahead in a cell of this kind: what is known of such
 * cells (bench/README.md, "where the nanoseconds go"), not a claim about
 * this run beyond it. */
static const char *why_lat(int blocking, int qi)
{
    if (blocking && qi == 0)
        return "every system here sleeps in the kernel and is woken through it; the raw futex "
               "ping-pong of the same cells is the floor, pshm's ratio to it is the blocking "
               "target below, and a difference smaller than the rounds' ranges is the scheduler's";
    if (blocking)
        return "the tail of a sleeping hand-off is scheduling delay on two vCPUs shared with "
               "other jobs (a preempted vCPU costs milliseconds), not the queue's code";
    if (qi == 2)
        return "the 99.9th percentile of a busy-polling loop on a shared VM is vCPU preemption";
    return "not expected (pshm's path is a few hundred instructions, bench/README.md); look at "
           "the rounds' ranges: a loaded machine moves busy medians by more than the gap";
}

static const char *why_tp(size_t size)
{
    if (size >= 4 * MIB)
        return "at these sizes the rate is where the bytes are: every system moves each byte "
               "between two cores through one memory bus and cache. iceoryx hands out the chunk "
               "freed last (a LIFO free list), a ring the slot freed longest ago: where the "
               "channel (3 messages) outgrows the L3 and two messages do not (16 MiB on a 32 MiB "
               "L3), iceoryx writes into memory still in cache and a ring does not; the rounds' "
               "ranges are wide there on a shared VM";
    if (size >= MIB)
        return "at 1 MiB and up every system moves each byte between two cores, and the rate "
               "is what two cores sharing one memory bus and cache get; the rounds' ranges are "
               "wide there on a shared VM";
    return "a per-message cost (pshm's: bench/README.md, instructions per message); the ring "
           "depth is the same for every system";
}

/* How a peer's lead over pshm reads: lo is the lower figure (the
 * peer's latency, pshm's throughput), hi the higher. "beats" only when the
 * rounds' ranges do not overlap and there were at least two of them. */
static const char *verdict(bench_stat lo, bench_stat hi)
{
    if (lo.n < 2 || hi.n < 2)
        return "is ahead, in a single round (no range), of";
    return lo.max < hi.min ? "beats" : "is ahead, within the noise, of";
}

/* Whether the lead survives the cells' own references (each cell measured
 * the hardware a moment before it ran): if not, the machine was faster
 * during the peer's cell, and the lead is not the peer's. */
static const char *holds(double peer, double pshm, int lower_wins)
{
    if (!(peer > 0) || !(pshm > 0))
        return "no reference measured to compare them against";
    return (lower_wins ? peer < pshm : peer > pshm)
               ? "the lead holds against the references too"
               : "against the references the lead is gone: the machine was faster during the "
                 "peer's cell, not the peer";
}

static void findings(int do_lat, int do_tp)
{
    static const int qs_[] = {Q50, Q99, Q999};
    static const char *const qn[] = {"p50", "p99", "p99.9"};
    int wins = 0;
    printf("\nfindings\n");
    for (int s = 0; s < NS; s++) {
        if (strcmp(S[s].group, "peer") && strcmp(S[s].group, "kernel"))
            continue;
        for (int mode = PSHM_QUEUE_SPSC; mode <= PSHM_QUEUE_BROADCAST; mode++) {
        int p = find_sys(0, mode, S[s].zc);
        if (p < 0)
            continue;
        for (int k = 0; k < 2 && do_lat; k++)
            for (int i = 0; i < 3; i++) {
                bench_stat a = lat_stat(k, s, qs_[i]), b = lat_stat(k, p, qs_[i]);
                if (a.n && b.n && a.med < b.med) {
                    double ra = lat_vs_raw(k, s, qs_[i], 0), rb = lat_vs_raw(k, p, qs_[i], 0);
                    char ref[160];
                    wins++;
                    snprintf(ref, sizeof ref, "%s %s", bench_fmt_ratio(ra),
                             k ? "the round's raw futex ping-pong (the same for both)"
                               : "the best raw ping-pong its own cell measured");
                    bj_finding(J, "%s %s %s at %s latency %s: %s vs %s ns (rounds %s / %s). "
                                  "Measured: %s %s, pshm %s; %s. Why: %s",
                               S[s].label, verdict(a, b), S[p].label, k ? "blocking" : "busy",
                               qn[i], bench_fmt_ns(a.med), bench_fmt_ns(b.med),
                               bench_fmt_spread(a.min, a.max, "%.0f"),
                               bench_fmt_spread(b.min, b.max, "%.0f"), S[s].label, ref,
                               bench_fmt_ratio(rb), holds(ra, rb, 1),
                               why_lat(k, i));
                }
            }
        for (int z = 0; z < NSZ && do_tp; z++) {
            bench_stat a = tp_stat(s, z), b = tp_stat(p, z);
            if (a.n && b.n && a.med > b.med) {
                double g = (double)SIZES[z] / 1e9;
                wins++;
                double ra = tp_vs_hand(s, z), rb = tp_vs_hand(p, z);
                bj_finding(J, "%s %s %s at %s throughput: %s vs %s (rounds %s / %s GB/s). "
                              "Measured: %s %s the raw hand-off its own cell streamed just "
                              "before, pshm %s; %s. Why: %s",
                           S[s].label, verdict(b, a), S[p].label, bench_fmt_size(SIZES[z]),
                           bench_fmt_gbs(a.med * g), bench_fmt_gbs(b.med * g),
                           bench_fmt_spread(a.min * g, a.max * g, "%.2f"),
                           bench_fmt_spread(b.min * g, b.max * g, "%.2f"), S[s].label,
                           bench_fmt_ratio(ra), bench_fmt_ratio(rb),
                           holds(ra, rb, 0), why_tp(SIZES[z]));
            }
        }
        }
    }
    if (!wins)
        bj_finding(J, "no peer is ahead of pshm spsc, mpmc or broadcast (of the same kind) in any "
                      "cell of this run");

    int sz = find_sys(0, PSHM_QUEUE_SPSC, 1), sc = find_sys(0, PSHM_QUEUE_SPSC, 0);
    int s48 = -1;
    for (int s = 0; s < NS; s++)
        if (S[s].lat_size)
            s48 = s;
    if (do_lat) {
        double a = lat_vs_raw(0, s48, Q50, 0), b = lat_vs_raw(0, sz, Q50, 0);
        double c = lat_vs_raw(0, sc, Q50, 0), d = lat_vs_raw(0, sz, Q50, F_MSG);
        double e = lat_vs_raw(0, sc, Q50, F_MSG);
        bj_finding(J, "target busy p50 <= 1.10x the best raw ping-pong (one line, a flag per "
                      "line, or one line polled with pauses): spsc zero-copy with a "
                      "one-line record (48 B) %s (%s); 64 B messages (two lines) %s zero-copy, %s "
                      "copying, against the two-line raw message %s / %s",
                   bench_fmt_ratio(a), a <= 1.10 ? "met" : "NOT met", bench_fmt_ratio(b),
                   bench_fmt_ratio(c), bench_fmt_ratio(d), bench_fmt_ratio(e));
        int sp = -1;
        for (int s = 0; s < NS; s++)
            if (S[s].pauses)
                sp = s;
        double pp = lat_vs_raw(0, sp, Q50, F_POLITE), pt = lat_vs_raw(0, sz, Q50, F_POLITE);
        if (sp >= 0 && pp > 0)
            bj_finding(J, "polling politely does not help pshm: against the raw ping-pong with "
                          "4 pauses a poll, pshm spsc zero-copy polled the same way is %s, polled "
                          "in a tight loop %s",
                       bench_fmt_ratio(pp), bench_fmt_ratio(pt));
        double l1 = lat_vs_raw(0, s48, Q50, F_TWO), l2 = lat_vs_raw(0, sz, Q50, F_TWO);
        bj_finding(J, "like for like: a ping-pong through two queues (one a direction) is the "
                      "raw ping-pong with a flag per line, not with both flags in one line (one "
                      "line that both sides write, which no pair of queues can share): against "
                      "it, spsc zero-copy with a one-line record (48 B) %s, 64 B (two lines) %s",
                   bench_fmt_ratio(l1), bench_fmt_ratio(l2));
        /* (a) what a new line per message costs against a fixed line, and
         * (b) pshm against the ring that does the same, all from the
         * references the spsc zero-copy cells measured */
        bj_finding(J, "a ring against a fixed line (the references the spsc zero-copy cells "
                      "measured, p50): one-line records %s the raw ping-pong with a flag per "
                      "line, 64 B + header %s the fixed two-line message; the consumer "
                      "publishing its index adds %s (one line) / %s (two lines); against the "
                      "best fixed-line ping-pong the one-line ring with index is %s, the "
                      "two-line one %s",
                   bench_fmt_ratio(ref_ratio(sz, F_RING1, F_TWO, Q50)),
                   bench_fmt_ratio(ref_ratio(sz, F_RING2, F_MSG, Q50)),
                   bench_fmt_ratio(ref_ratio(sz, F_RING1_IDX, F_RING1, Q50)),
                   bench_fmt_ratio(ref_ratio(sz, F_RING2_IDX, F_RING2, Q50)),
                   bench_fmt_ratio(ref_vs_best(sz, F_RING1_IDX, Q50)),
                   bench_fmt_ratio(ref_vs_best(sz, F_RING2_IDX, Q50)));
        bj_finding(J, "pshm against the like-for-like raw ring (same depth and record size, a "
                      "sequence word per slot, consumer index published; no checks, no crash "
                      "records, release stores): spsc zero-copy 48 B (one line) %s, 64 B (two "
                      "lines) %s zero-copy, %s copying; p99 %s / %s / %s",
                   bench_fmt_ratio(lat_vs_raw(0, s48, Q50, F_RING1_IDX)),
                   bench_fmt_ratio(lat_vs_raw(0, sz, Q50, F_RING2_IDX)),
                   bench_fmt_ratio(lat_vs_raw(0, sc, Q50, F_RING2_IDX)),
                   bench_fmt_ratio(lat_vs_raw(0, s48, Q99, F_RING1_IDX)),
                   bench_fmt_ratio(lat_vs_raw(0, sz, Q99, F_RING2_IDX)),
                   bench_fmt_ratio(lat_vs_raw(0, sc, Q99, F_RING2_IDX)));
        double f = lat_vs_raw(0, s48, Q99, 0), g = lat_vs_raw(0, sz, Q99, 0);
        double h = lat_vs_raw(0, sc, Q99, 0);
        bj_finding(J, "target busy p99 <= 1.50x the best raw ping-pong: one-line record %s "
                      "(%s); 64 B zero-copy %s, copying %s",
                   bench_fmt_ratio(f), f <= 1.5 ? "met" : "NOT met", bench_fmt_ratio(g),
                   bench_fmt_ratio(h));
        double k50 = lat_vs_raw(1, sz, Q50, 0), kc50 = lat_vs_raw(1, sc, Q50, 0);
        bj_finding(J, "target blocking p50 <= 1.05x the raw futex ping-pong: spsc zero-copy %s, "
                      "copying %s (%s)",
                   bench_fmt_ratio(k50), bench_fmt_ratio(kc50),
                   k50 <= 1.05 && kc50 <= 1.05 ? "met" : "NOT met");
    }
    if (do_tp) {
        double worst = 1e9, worst_c = 1e9;
        size_t at = 0, at_c = 0;
        for (int z = 0; z < NSZ; z++) {
            double a = tp_vs_hand(sz, z), b = tp_vs_hand(sc, z);
            if (a > 0 && a < worst)
                worst = a, at = SIZES[z];
            if (b > 0 && b < worst_c)
                worst_c = b, at_c = SIZES[z];
        }
        int zm = z_of(MIB), hz = find_sys(R_HAND_ZC, 0, 0), hc = find_sys(R_HAND_COPY, 0, 0);
        int mh = find_sys(R_MEMCPY_HOT, 0, 0), mcold = find_sys(R_MEMCPY_COLD, 0, 0);
        if (zm >= 0 && tp_stat(hz, zm).n && tp_stat(mh, zm).n)
            bj_finding(J, "the limit of the same work at 1 MiB is the raw hand-off (two cores, one "
                          "buffer, a flag): %s read in place, %s copied out, %s / %s of a "
                          "one-thread memcpy of the same bytes (%s hot, %s from a cold source), "
                          "which moves nothing between cores; pshm spsc zero-copy %s is %s the "
                          "hand-off and %s the hot memcpy, copying %s the hand-off",
                       bench_fmt_gbs(tp_stat(hz, zm).med * (double)MIB / 1e9),
                       bench_fmt_gbs(tp_stat(hc, zm).med * (double)MIB / 1e9),
                       bench_fmt_ratio(tp_vs_memcpy(hz, zm)), bench_fmt_ratio(tp_vs_memcpy(hc, zm)),
                       bench_fmt_gbs(tp_stat(mh, zm).med * (double)MIB / 1e9),
                       bench_fmt_gbs(tp_stat(mcold, zm).med * (double)MIB / 1e9),
                       bench_fmt_gbs(tp_stat(sz, zm).med * (double)MIB / 1e9),
                       bench_fmt_ratio(tp_vs_hand(sz, zm)), bench_fmt_ratio(tp_vs_memcpy(sz, zm)),
                       bench_fmt_ratio(tp_vs_hand(sc, zm)));
        bj_finding(J, "target throughput >= 0.80x the raw hand-off at every size: spsc "
                      "zero-copy at worst %s (%s), copying at worst %s (%s) (%s)",
                   bench_fmt_ratio(worst), bench_fmt_size(at), bench_fmt_ratio(worst_c),
                   bench_fmt_size(at_c), worst >= 0.8 && worst_c >= 0.8 ? "met" : "NOT met");
    }
}

/* ------------------------------------------------------------ data */

/* The medians behind the tables, for programs (bench/experiments.py):
 * "data": {label: {"busy"|"blocking": {"p50", "p99", "p999", "vs_raw"[, "vs_ring", "ring_vs_best"]},
 *                  "throughput": {size: msgs/s}, "vs_hand": {size: ratio}}} */
static void data_json(void)
{
    static const char *const kn[2] = {"busy", "blocking"};
    bj_obj(J, "data");
    for (int s = 0; s < NS; s++) {
        if (!selected(s) || S[s].missing)
            continue;
        bj_obj(J, S[s].label);
        for (int k = 0; k < 2; k++) {
            bench_stat a = lat_stat(k, s, Q50);
            if (!a.n)
                continue;
            bj_obj(J, kn[k]);
            bj_num(J, "p50", a.med);
            bj_num(J, "p99", lat_stat(k, s, Q99).med);
            bj_num(J, "p999", lat_stat(k, s, Q999).med);
            bj_num(J, "vs_raw", lat_vs_raw(k, s, Q50, 0));
            if (k == 0 && !S[s].raw) {
                bj_num(J, "vs_ring", lat_vs_raw(k, s, Q50, ring_ref(s)));
                bj_num(J, "ring_vs_best", ref_vs_best(s, ring_ref(s), Q50));
            }
            bj_end(J);
        }
        if (S[s].where & TP) {
            char key[32];
            bj_obj(J, "throughput");
            for (int z = 0; z < NSZ; z++) {
                snprintf(key, sizeof key, "%zu", SIZES[z]);
                bj_num(J, key, tp_stat(s, z).med);
            }
            bj_end(J);
            bj_obj(J, "vs_hand");
            for (int z = 0; z < NSZ; z++) {
                snprintf(key, sizeof key, "%zu", SIZES[z]);
                bj_num(J, key, tp_vs_hand(s, z));
            }
            bj_end(J);
        }
        bj_end(J);
    }
    bj_end(J);
}

/* ------------------------------------------------------------ main */

static void on_signal(int sig)
{
    stop_workers(1);
#ifdef PSHM_BENCH_ICEORYX
    qb_iceoryx_stop();
#endif
    signal(sig, SIG_DFL);
    raise(sig);
}

static void versions(void)
{
#ifdef PSHM_BENCH_ICEORYX
    bj_version(J, "iceoryx", qb_iceoryx_version());
#endif
#ifdef PSHM_BENCH_BOOST
    bj_version(J, "boost", qb_boost_version());
#endif
#ifdef PSHM_BENCH_ZMQ
    bj_version(J, "zeromq", qb_zmq_version());
#endif
    for (int s = 0; s < NS; s++)
        if (S[s].missing)
            bj_missing(J, S[s].label, "%s", S[s].missing);
}

static void note_failure(int s, const char *what, const char *w)
{
    if (!why[s][0]) {
        snprintf(why[s], sizeof why[s], "%.40s: %.256s", what, w);
        fprintf(stderr, "\rbench_queue: %s, %s: %s\n", S[s].label, what, w);
    }
}

int main(int argc, char **argv)
{
    bench_parse(&argc, argv, &O, 5, 2);
    const char *only = argc > 1 ? argv[1] : "";
    int do_lat = strcmp(only, "throughput") != 0, do_tp = strcmp(only, "latency") != 0;
    rounds = O.rounds > 64 ? 64 : O.rounds;
    cell_seconds = O.quick ? 0.04 : 0.25;
    SIZES = O.quick ? SIZES_QUICK : SIZES_FULL;
    NSZ = O.quick ? (int)(sizeof SIZES_QUICK / sizeof *SIZES_QUICK)
                  : (int)(sizeof SIZES_FULL / sizeof *SIZES_FULL);
    static size_t sizes_env[16];
    if (getenv("PSHM_BENCH_SIZES")) { /* e.g. 64,1048576 */
        char buf[256], *save = NULL;
        int n = 0;
        snprintf(buf, sizeof buf, "%s", getenv("PSHM_BENCH_SIZES"));
        for (char *t = strtok_r(buf, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
            if (strtoull(t, NULL, 10) >= 16 && strtoull(t, NULL, 10) <= (1u << 30))
                sizes_env[n++] = (size_t)strtoull(t, NULL, 10);
        if (n) {
            SIZES = sizes_env;
            NSZ = n;
        }
    }

    SH = mmap(NULL, sizeof *SH, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pool_size = POOL_SIZE;
    LAT = malloc(sizeof *LAT * 2 * NS * (size_t)rounds * NQ);
    LREF = malloc(sizeof *LREF * 2 * NS * (size_t)rounds * NREF * NQ);
    TPR = malloc(sizeof *TPR * NS * (size_t)NSZ * (size_t)rounds);
    TREF = malloc(sizeof *TREF * NS * (size_t)NSZ * (size_t)rounds);
    if (SH == MAP_FAILED || !LAT || !LREF || !TPR || !TREF) {
        fprintf(stderr, "bench_queue: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < 2 * NS * (size_t)rounds * NQ; i++)
        LAT[i] = -1;
    for (size_t i = 0; i < 2 * NS * (size_t)rounds * NREF * NQ; i++)
        LREF[i] = -1;
    for (size_t i = 0; i < NS * (size_t)NSZ * (size_t)rounds; i++)
        TPR[i] = TREF[i] = -1;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    sweep(0);

    bench_progress_init("bench_queue");
    bench_pin(0);
    bench_calibrate(); /* the workers inherit the calibration */
    J = bj_open(O.json);
    bj_begin_report(J, "queue", "Queues", 10, &O);
    bj_num(J, "cell_seconds", cell_seconds);
    bj_int(J, "latency_message_bytes", LAT_SIZE);
    char la[128];
    bench_loadavg(la, sizeof la);
    printf("bench_queue: cells pinned to cpu%d / cpu%d; %d interleaved rounds%s; load average "
           "at start: %s\n",
           bench_cpu(0), bench_cpu(1), rounds, O.quick ? " (quick)" : "", la);
    versions();

#ifdef PSHM_BENCH_ICEORYX
    {
        int is = -1;
        for (int s = 0; s < NS; s++)
            if (S[s].x == &qb_iceoryx)
                is = s;
        int depths[16];
        for (int z = 0; z < NSZ; z++)
            depths[z] = depth_for(SIZES[z]);
        char err[256];
        if (qb_iceoryx_start(SIZES, depths, NSZ, err, sizeof err) != 0) {
            snprintf(why[is], sizeof why[is], "RouDi: %.256s", err);
            bj_missing(J, S[is].label, "RouDi could not be started: %s", err);
        }
    }
#endif

    start_workers();

    /* the plan: every cell of every round, interleaved (throughput: at most
     * 3 rounds, its cells are long) */
    int total = 0, done = 0, tp_rounds = O.quick ? 1 : rounds < 3 ? rounds : 3;
    for (int s = 0; s < NS; s++) {
        if (S[s].missing || !selected(s))
            continue;
        total += rounds * do_lat * (!!(S[s].where & LB) + !!(S[s].where & LK));
        total += tp_rounds * do_tp * !!(S[s].where & TP) * NSZ;
    }
    char err[256];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2 && do_lat; k++)
            for (int s = 0; s < NS; s++) {
                if (S[s].missing || !(S[s].where & (k ? LK : LB)) || !selected(s))
                    continue;
                if (why[s][0] && S[s].x && S[s].x != &x_pshm && !strncmp(why[s], "RouDi", 5))
                    continue;
                bench_progress((double)done++ / total, "round %d/%d: latency %s, %s", r + 1,
                               rounds, k ? "blocking" : "busy", S[s].label);
                if (run_cell(C_LAT, s, k ? QB_BLOCK : QB_BUSY, 120, err, sizeof err) == 0) {
                    memcpy(&LATP(k, s, r, 0), SH->q, sizeof SH->q);
                    if (!S[s].raw)
                        memcpy(&LREFP(k, s, r, 0, 0), SH->qref, sizeof SH->qref);
                } else
                    note_failure(s, k ? "blocking latency" : "busy latency", err);
            }
        for (int z = 0; z < NSZ && do_tp && r < tp_rounds; z++)
            for (int s = 0; s < NS; s++) {
                if (S[s].missing || !(S[s].where & TP) || !selected(s))
                    continue;
                if (why[s][0] && !strncmp(why[s], "RouDi", 5))
                    continue;
                bench_progress((double)done++ / total, "round %d/%d: throughput %s, %s", r + 1,
                               rounds, bench_fmt_size(SIZES[z]), S[s].label);
                if (run_cell(C_TP, s, SIZES[z], 120, err, sizeof err) == 0) {
                    TPP(s, z, r) = SH->rate;
                    TREFP(s, z, r) = SH->ref_rate;
                } else if (strstr(err, "msgsize_max") == NULL)
                    note_failure(s, bench_fmt_size(SIZES[z]), err);
            }
    }
    bench_progress_end();
    stop_workers(0);
#ifdef PSHM_BENCH_ICEORYX
    qb_iceoryx_stop();
#endif

    if (do_lat && do_tp)
        main_table();
    if (do_lat) {
        latency_tables();
        cdf_plot(0);
        cdf_plot(1);
    }
    if (do_tp) {
        throughput_tables();
        tp_plot();
    }
    findings(do_lat, do_tp);
    data_json();
    for (int s = 0; s < NS; s++)
        if (why[s][0])
            bj_missing(J, S[s].label, "%s", why[s]);
    bench_loadavg(la, sizeof la);
    printf("\nload average at end: %s\n", la);
    bj_end_report(J);
    if (bj_close(J) != 0) {
        fprintf(stderr, "bench_queue: could not write %s\n", O.json);
        return 1;
    }
    return 0;
}
