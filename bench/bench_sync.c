/* SPDX-License-Identifier: MIT */
/*
 * bench_sync.c - pshm's synchronisation next to what people use instead:
 * glibc's process-shared primitives, POSIX named semaphores and
 * Boost.Interprocess's interprocess_mutex / interprocess_condition and
 * named_mutex / named_condition. Not a test: it prints tables and asserts
 * nothing.
 *
 *   uncontended  one thread, lock+unlock (or wait+post) in a loop: pshm vs
 *                glibc's robust process-shared pthread_mutex_t (and
 *                pthread_rwlock_t, sem_wait/sem_post) and Boost's mutexes.
 *   round trip   two processes ping-pong (pinned to two CPUs): raw futex,
 *                pshm event, pshm sem, POSIX named sem, mutex + condition
 *                variable turn-taking with pshm's, Boost's anonymous and
 *                Boost's named ones.
 *   wake         post-to-wake latency: the waiter is asleep in the kernel,
 *                the poster reads the clock and posts, the waiter reads the
 *                clock when it returns. Raw futex wake, pshm sem, pshm event,
 *                POSIX named sem.
 *   handoff      lock hand-off: the waiter is asleep in lock() while the
 *                other process holds the mutex; the holder reads the clock
 *                and unlocks, the waiter reads the clock when lock()
 *                returns. pshm mutex, glibc's robust mutex, Boost's
 *                interprocess_mutex and named_mutex, against a raw futex.
 * Every part runs its variants in interleaved rounds; figures are medians.
 *
 *   death        owner death: the holder is SIGKILLed; time until the next
 *                locker (asleep in lock(), or coming later) gets owner-dead.
 *                pshm mutex against glibc's robust mutex (kernel robust list).
 *
 * Usage: bench_sync [--quick] [--json FILE] [uncontended|roundtrip|wake|handoff|death]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "peers.h"
#include "pshm.h"

static bench_opts O;
static bjson *J;

#define now_ns bench_now_ns

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_sync: %s: %s\n", what, r < 0 ? pshm_strerror(r) : strerror(r));
    exit(1);
}

#define OK(x)                                                                   \
    do {                                                                        \
        int r_ = (x);                                                           \
        if (r_ != 0)                                                            \
            die(#x, r_);                                                        \
    } while (0)

static void *shared(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap", errno);
    memset(p, 0, n);
    return p;
}

/* ----------------------------------------------------------- raw futex */

static void fx_wait(uint32_t *w, uint32_t v)
{
    syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void fx_wake(uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* A one-bit "post": 0 -> 1, taken by 1 -> 0. The least a cross-process
 * wake can cost: the word, one wait and one wake system call. */
static void raw_post(uint32_t *w)
{
    __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
    fx_wake(w);
}

static void raw_wait(uint32_t *w)
{
    uint32_t one = 1;
    while (!__atomic_compare_exchange_n(w, &one, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
        fx_wait(w, 0);
        one = 1;
    }
}

/* ----------------------------------------------------------- the region */

typedef struct region {
    char m[PSHM_MUTEX_SIZE] __attribute__((aligned(64)));
    char c[PSHM_COND_SIZE] __attribute__((aligned(64)));
    char s1[PSHM_SEM_SIZE] __attribute__((aligned(64)));
    char s2[PSHM_SEM_SIZE] __attribute__((aligned(64)));
    char e1[PSHM_EVENT_SIZE] __attribute__((aligned(64)));
    char e2[PSHM_EVENT_SIZE] __attribute__((aligned(64)));
    char rw[PSHM_RWLOCK_SIZE] __attribute__((aligned(64)));
    pthread_mutex_t pm __attribute__((aligned(64)));
    pthread_rwlock_t prw __attribute__((aligned(64)));
    sem_t us __attribute__((aligned(64)));
#ifdef PSHM_BENCH_BOOST
    char bm[BP_MUTEX_SIZE] __attribute__((aligned(64))); /* Boost interprocess_mutex */
    char bc[BP_COND_SIZE] __attribute__((aligned(64)));  /* Boost interprocess_condition */
#endif
    uint32_t f1 __attribute__((aligned(64)));
    uint32_t f2 __attribute__((aligned(64)));
    uint32_t turn __attribute__((aligned(64)));
    /* wake-latency protocol */
    uint32_t cmd __attribute__((aligned(64)));
    uint32_t ready __attribute__((aligned(64)));
    uint32_t done __attribute__((aligned(64)));
    uint64_t t0 __attribute__((aligned(64)));
    uint64_t lat;
} region;

static region *R;
static sem_t *NS1, *NS2; /* named POSIX semaphores */
static pshm_mutex *M;
static pshm_cond *C;
static pshm_sem *S1, *S2;
static pshm_event *E1, *E2;
static pshm_rwlock *RW;
#ifdef PSHM_BENCH_BOOST
static bp_named *BN; /* Boost named_mutex + named_condition */
static char bn_name[64];
#endif

static void setup(void)
{
    pthread_mutexattr_t a;
    pthread_rwlockattr_t ra;
    char name[64];

    R = shared(sizeof *R);
    OK(pshm_mutex_init(R->m, sizeof R->m, &M));
    OK(pshm_cond_init(R->c, sizeof R->c, &C));
    OK(pshm_sem_init(R->s1, sizeof R->s1, 0, 0, &S1));
    OK(pshm_sem_init(R->s2, sizeof R->s2, 0, 0, &S2));
    OK(pshm_event_init(R->e1, sizeof R->e1, 0, &E1));
    OK(pshm_event_init(R->e2, sizeof R->e2, 0, &E2));
    OK(pshm_rwlock_init(R->rw, sizeof R->rw, &RW));
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    OK(pthread_mutex_init(&R->pm, &a));
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
    OK(pthread_rwlock_init(&R->prw, &ra));
    OK(sem_init(&R->us, 1, 0));
    snprintf(name, sizeof name, "/pshm_bench_%ld_1", (long)getpid());
    NS1 = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    sem_unlink(name);
    snprintf(name, sizeof name, "/pshm_bench_%ld_2", (long)getpid());
    NS2 = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    sem_unlink(name);
    if (NS1 == SEM_FAILED || NS2 == SEM_FAILED)
        die("sem_open", errno);
#ifdef PSHM_BENCH_BOOST
    if (bp_mutex_init(R->bm) != 0 || bp_cond_init(R->bc) != 0)
        die("Boost interprocess_mutex", EIO);
    snprintf(bn_name, sizeof bn_name, "pshm_bench_%ld_bn", (long)getpid());
    if (bp_named_create(bn_name, &BN) != 0)
        die("Boost named_mutex", EIO);
#endif
}

static void teardown(void)
{
#ifdef PSHM_BENCH_BOOST
    bp_named_close(BN);
    bp_named_remove(bn_name);
#endif
}

#define pin bench_pin

/* ---------------------------------------------------------- uncontended */

typedef double (*loop_fn)(long n);

#define LOOP(name, body)                                                        \
    static double name(long n)                                                  \
    {                                                                           \
        uint64_t t0 = now_ns();                                                 \
        for (long i = 0; i < n; i++) {                                          \
            body;                                                               \
        }                                                                       \
        return (double)(now_ns() - t0) / (double)n;                             \
    }

LOOP(u_pshm_mutex, pshm_mutex_lock(M); pshm_mutex_unlock(M))
LOOP(u_glibc_mutex, pthread_mutex_lock(&R->pm); pthread_mutex_unlock(&R->pm))
LOOP(u_pshm_sem, pshm_sem_post(S1); pshm_sem_wait(S1))
LOOP(u_posix_sem, sem_post(&R->us); sem_wait(&R->us))
LOOP(u_pshm_rd, pshm_rwlock_rdlock(RW); pshm_rwlock_unlock(RW))
LOOP(u_glibc_rd, pthread_rwlock_rdlock(&R->prw); pthread_rwlock_unlock(&R->prw))
LOOP(u_pshm_wr, pshm_rwlock_wrlock(RW); pshm_rwlock_unlock(RW))
LOOP(u_glibc_wr, pthread_rwlock_wrlock(&R->prw); pthread_rwlock_unlock(&R->prw))
LOOP(u_pshm_event, pshm_event_set(E1); pshm_event_wait(E1))
#ifdef PSHM_BENCH_BOOST
LOOP(u_boost_mutex, bp_mutex_lock(R->bm); bp_mutex_unlock(R->bm))
LOOP(u_boost_named, bp_named_lock(BN); bp_named_unlock(BN))
#define BOOST(f) f
#else
#define BOOST(f) NULL
#endif

/* Median time per iteration of a and of b, measured in alternating short
 * runs: on a shared machine the load changes from second to second, and
 * alternating makes both sides see the same machine. */
static void median_pair(loop_fn a, loop_fn b, long n, int runs, double *ma, double *mb)
{
    double va[64], vb[64];
    if (runs > 64)
        runs = 64;
    a(n / 4); /* warm up: first-use costs (thread identity, page faults) */
    if (b)
        b(n / 4);
    for (int i = 0; i < runs; i++) {
        va[i] = a(n);
        vb[i] = b ? b(n) : -1;
    }
    *ma = bench_stat_of(va, runs).med;
    *mb = bench_stat_of(vb, runs).med;
}

static void uncontended(void)
{
    long n = O.quick ? 100000 : 500000;
    int runs = O.quick ? 6 : 40;
    struct {
        const char *what, *base;
        loop_fn a, b;
    } rows[] = {
        {"mutex lock+unlock", "robust pshared pthread_mutex", u_pshm_mutex, u_glibc_mutex},
        {"mutex lock+unlock", "Boost interprocess_mutex", u_pshm_mutex, BOOST(u_boost_mutex)},
        {"mutex lock+unlock", "Boost named_mutex", u_pshm_mutex, BOOST(u_boost_named)},
        {"sem post+wait", "sem_post+sem_wait (pshared)", u_pshm_sem, u_posix_sem},
        {"rwlock rdlock+unlock", "pthread_rwlock (pshared)", u_pshm_rd, u_glibc_rd},
        {"rwlock wrlock+unlock", "pthread_rwlock (pshared)", u_pshm_wr, u_glibc_wr},
        {"event set+wait", "-", u_pshm_event, NULL},
    };
    char title[160];
    snprintf(title, sizeof title,
             "uncontended, one thread (ns per pair; median of %d alternating runs of %ld)", runs, n);
    btable *t = bt_new(title, 5, BT_COLS("pshm", "ns", "baseline", "ns", "pshm / baseline"));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double a, b;
        bench_progress((double)i / 7, "uncontended: %s", rows[i].what);
        if (!rows[i].b && strcmp(rows[i].base, "-") != 0) {
            bt_row(t, BT_COLS(rows[i].what, "", rows[i].base, "not built", ""));
            continue;
        }
        median_pair(rows[i].a, rows[i].b, n, runs, &a, &b);
        bt_row(t, BT_COLS(rows[i].what, bench_fmt("%.1f", a), rows[i].base,
                          rows[i].b ? bench_fmt("%.1f", b) : "", bench_fmt_ratio(b > 0 ? a / b : -1)));
    }
    bt_readme(t);
    bt_emit(t, J);
}

/* ----------------------------------------------------------- round trip */

enum { RT_FUTEX, RT_EVENT, RT_SEM, RT_POSIX, RT_MUTEX_COND, RT_BOOST, RT_BOOST_NAMED, RT_N };
static const char *rt_names[RT_N] = {"raw futex",
                                     "pshm event (auto)",
                                     "pshm sem",
                                     "POSIX sem (sem_open)",
                                     "pshm mutex+cond",
                                     "Boost interprocess_mutex+condition",
                                     "Boost named_mutex+named_condition"};

/* whose turn it is, passed under a mutex with a condition variable */
#define TURN(lock, wait, signal, unlock)                                        \
    do {                                                                        \
        lock;                                                                   \
        while (R->turn != (uint32_t)me)                                         \
            wait;                                                               \
        R->turn = !me;                                                          \
        signal;                                                                 \
        unlock;                                                                 \
    } while (0)

static void rt_side(int kind, int me, long n)
{
    for (long i = 0; i < n; i++) {
        switch (kind) {
        case RT_FUTEX:
            if (me == 0) {
                raw_post(&R->f1);
                raw_wait(&R->f2);
            } else {
                raw_wait(&R->f1);
                raw_post(&R->f2);
            }
            break;
        case RT_EVENT:
            if (me == 0) {
                pshm_event_set(E1);
                pshm_event_wait(E2);
            } else {
                pshm_event_wait(E1);
                pshm_event_set(E2);
            }
            break;
        case RT_SEM:
            if (me == 0) {
                pshm_sem_post(S1);
                pshm_sem_wait(S2);
            } else {
                pshm_sem_wait(S1);
                pshm_sem_post(S2);
            }
            break;
        case RT_POSIX:
            if (me == 0) {
                sem_post(NS1);
                while (sem_wait(NS2) != 0)
                    ;
            } else {
                while (sem_wait(NS1) != 0)
                    ;
                sem_post(NS2);
            }
            break;
        case RT_MUTEX_COND:
            TURN(pshm_mutex_lock(M), pshm_cond_wait(C, M), pshm_cond_signal(C),
                 pshm_mutex_unlock(M));
            break;
#ifdef PSHM_BENCH_BOOST
        case RT_BOOST:
            TURN(bp_mutex_lock(R->bm), bp_cond_wait(R->bc, R->bm), bp_cond_signal(R->bc),
                 bp_mutex_unlock(R->bm));
            break;
        case RT_BOOST_NAMED:
            TURN(bp_named_lock(BN), bp_named_wait(BN), bp_named_signal(BN), bp_named_unlock(BN));
            break;
#endif
        }
    }
}

static int rt_built(int kind)
{
#ifndef PSHM_BENCH_BOOST
    if (kind == RT_BOOST || kind == RT_BOOST_NAMED)
        return 0;
#endif
    return 1;
}

static double round_trip(int kind, long n)
{
    pid_t pid;
    int st;

    long warm = O.quick ? 100 : 1000;
    R->turn = 0;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        pin(1);
        rt_side(kind, 1, n + warm);
        _exit(0);
    }
    rt_side(kind, 0, warm); /* warm up */
    uint64_t t0 = now_ns();
    rt_side(kind, 0, n);
    double us = (double)(now_ns() - t0) / (double)n / 1000.0;
    waitpid(pid, &st, 0);
    return us;
}

static void round_trips(void)
{
    int rounds = O.rounds > 64 ? 64 : O.rounds;
    long n = (O.quick ? 1000 : 20000) / rounds + 1;
    double us[RT_N][64];

    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < RT_N; k++) {
            bench_progress((double)(r * RT_N + k) / (rounds * RT_N), "round trip: %s", rt_names[k]);
            us[k][r] = rt_built(k) ? round_trip(k, n) : -1;
        }
    char title[160];
    snprintf(title, sizeof title,
             "round trip between two processes (us per ping-pong; median of %d interleaved rounds "
             "of %ld)",
             rounds, n);
    btable *t = bt_new(title, 5, BT_COLS("", "us", "range", "vs raw futex", "vs pshm mutex+cond"));
    double x[RT_N], y[RT_N];
    for (int k = 0; k < RT_N; k++) {
        bench_stat s = bench_stat_of(us[k], rounds);
        double vf[64], vp[64];
        for (int r = 0; r < rounds; r++) {
            vf[r] = us[k][r] > 0 ? us[k][r] / us[RT_FUTEX][r] : -1;
            vp[r] = us[k][r] > 0 ? us[k][r] / us[RT_MUTEX_COND][r] : -1;
        }
        bt_row(t, BT_COLS(rt_names[k], s.n ? bench_fmt("%.2f", s.med) : "not built",
                          bench_fmt_spread(s.min, s.max, "%.2f"),
                          bench_fmt_ratio(bench_stat_of(vf, rounds).med),
                          k >= RT_MUTEX_COND ? bench_fmt_ratio(bench_stat_of(vp, rounds).med) : ""));
        x[k] = k;
        y[k] = s.med;
    }
    bt_emit(t, J);
    bj_plot_begin(J, "sync_round_trip.png", "bars",
                  "round trip between two pinned processes (median us)", "", "microseconds", 0, 0);
    for (int k = 0; k < RT_N; k++)
        if (y[k] > 0)
            bj_series(J, rt_names[k], k == RT_FUTEX, &x[k], &y[k], 1);
    bj_plot_end(J);
}

/* ------------------------------------------- post-to-wake, lock hand-off */

/*
 * One protocol for both: the poster may first take something (a lock),
 * then tells the waiter to go; the waiter says it is ready and blocks; the
 * poster lets it sleep (100 us), reads the clock and posts (or unlocks);
 * the waiter reads the clock when it returns, then gives back what it got.
 */
typedef struct wk_kind {
    const char *name;
    void (*prep)(void); /* poster, before the waiter blocks */
    void (*wait)(void); /* waiter: blocks */
    void (*post)(void); /* poster: the wake (timed) */
    void (*after)(void); /* waiter, after the clock */
} wk_kind;

static void futex_wait1(void) { raw_wait(&R->f1); }
static void futex_post1(void) { raw_post(&R->f1); }
static void sem_wait1(void) { pshm_sem_wait(S1); }
static void sem_post1(void) { pshm_sem_post(S1); }
static void event_wait1(void) { pshm_event_wait(E1); }
static void event_set1(void) { pshm_event_set(E1); }
static void posix_wait1(void)
{
    while (sem_wait(NS1) != 0)
        ;
}
static void posix_post1(void) { sem_post(NS1); }
/* raw "lock": the futex word as a binary semaphore held by the poster */
static void raw_lock_take(void) { raw_wait(&R->f2); }
static void raw_lock_give(void) { raw_post(&R->f2); }
static void pm_lock(void) { pshm_mutex_lock(M); }
static void pm_unlock(void) { pshm_mutex_unlock(M); }
static void gm_lock(void) { pthread_mutex_lock(&R->pm); }
static void gm_unlock(void) { pthread_mutex_unlock(&R->pm); }
#ifdef PSHM_BENCH_BOOST
static void bm_lock(void) { bp_mutex_lock(R->bm); }
static void bm_unlock(void) { bp_mutex_unlock(R->bm); }
static void bn_lock(void) { bp_named_lock(BN); }
static void bn_unlock(void) { bp_named_unlock(BN); }
#endif

static const wk_kind WAKE[] = {
    {"raw futex wake", NULL, futex_wait1, futex_post1, NULL},
    {"pshm sem post", NULL, sem_wait1, sem_post1, NULL},
    {"pshm event set", NULL, event_wait1, event_set1, NULL},
    {"POSIX sem_post (sem_open)", NULL, posix_wait1, posix_post1, NULL},
};
static const wk_kind HANDOFF[] = {
    {"raw futex (a word taken 1 -> 0)", raw_lock_take, raw_lock_take, raw_lock_give, raw_lock_give},
    {"pshm mutex", pm_lock, pm_lock, pm_unlock, pm_unlock},
    {"glibc robust pshared pthread_mutex", gm_lock, gm_lock, gm_unlock, gm_unlock},
#ifdef PSHM_BENCH_BOOST
    {"Boost interprocess_mutex", bm_lock, bm_lock, bm_unlock, bm_unlock},
    {"Boost named_mutex", bn_lock, bn_lock, bn_unlock, bn_unlock},
#endif
};

static const wk_kind *WK; /* the set being measured (the child gets it by fork) */

static void spin_until(uint32_t *w, uint32_t v)
{
    while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != v) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* The waiter: for each command, say ready, block in that kind's wait, and
 * report the time from the poster's clock reading to its own. */
static void wake_child(void)
{
    pin(1);
    for (uint32_t seq = 1;; seq++) {
        spin_until(&R->cmd, seq);
        int kind = (int)(__atomic_load_n(&R->t0, __ATOMIC_ACQUIRE) & 0xff);
        if (kind == 0xff)
            _exit(0);
        __atomic_store_n(&R->ready, seq, __ATOMIC_RELEASE);
        WK[kind].wait();
        uint64_t t1 = now_ns();
        R->lat = t1 - __atomic_load_n(&R->t0, __ATOMIC_ACQUIRE);
        if (WK[kind].after)
            WK[kind].after();
        __atomic_store_n(&R->done, seq, __ATOMIC_RELEASE);
    }
}

static void wake_table(const char *title, const char *plot, const char *plot_title, int nk)
{
    int rounds = O.quick ? 2 : 10, per = O.quick ? 40 : 200;
    uint64_t *lat[8];
    int nlat = 0;
    uint32_t seq = 0;
    pid_t pid;
    int st;

    R->cmd = R->ready = R->done = 0;
    R->f1 = 0;
    R->f2 = 1; /* the raw "lock" is free */
    for (int k = 0; k < nk; k++)
        lat[k] = calloc((size_t)(rounds * per), sizeof(uint64_t));
    fflush(NULL);
    pid = fork();
    if (pid == 0)
        wake_child();
    for (int round = 0; round < rounds; round++) {
        bench_progress((double)round / rounds, "%s", title);
        for (int k = 0; k < nk; k++) {
            for (int i = 0; i < per; i++) {
                seq++;
                if (WK[k].prep)
                    WK[k].prep();
                __atomic_store_n(&R->t0, (uint64_t)k, __ATOMIC_RELEASE);
                __atomic_store_n(&R->cmd, seq, __ATOMIC_RELEASE);
                spin_until(&R->ready, seq);
                /* let the waiter get into the kernel and sleep */
                struct timespec d = {0, 100000};
                nanosleep(&d, NULL);
                uint64_t t0 = now_ns();
                __atomic_store_n(&R->t0, t0, __ATOMIC_RELEASE);
                WK[k].post();
                spin_until(&R->done, seq);
                lat[k][round * per + i] = R->lat;
            }
        }
        nlat += per;
    }
    seq++;
    __atomic_store_n(&R->t0, 0xff, __ATOMIC_RELEASE);
    __atomic_store_n(&R->cmd, seq, __ATOMIC_RELEASE);
    waitpid(pid, &st, 0);

    char full[200];
    snprintf(full, sizeof full, "%s (us; %d samples each, interleaved)", title, nlat);
    btable *t = bt_new(full, 6, BT_COLS("", "median", "p90", "p99", "median vs raw futex",
                                        "median vs pshm"));
    double base = 0, pshm = 0, x[8], y[8];
    for (int k = 0; k < nk; k++) {
        qsort(lat[k], (size_t)nlat, sizeof(uint64_t), bench_cmp_u64);
        double med = lat[k][nlat / 2] / 1000.0, p90 = lat[k][nlat * 9 / 10] / 1000.0,
               p99 = lat[k][nlat * 99 / 100] / 1000.0;
        if (k == 0)
            base = med;
        if (k == 1)
            pshm = med;
        bt_row(t, BT_COLS(WK[k].name, bench_fmt("%.2f", med), bench_fmt("%.2f", p90),
                          bench_fmt("%.2f", p99), bench_fmt_ratio(med / base),
                          k ? bench_fmt_ratio(med / pshm) : ""));
        x[k] = k;
        y[k] = med;
        free(lat[k]);
    }
    bt_readme(t);
    bt_emit(t, J);
    bj_plot_begin(J, plot, "bars", plot_title, "", "microseconds (median)", 0, 0);
    for (int k = 0; k < nk; k++)
        bj_series(J, WK[k].name, k == 0, &x[k], &y[k], 1);
    bj_plot_end(J);
}

static void wake_latency(void)
{
    WK = WAKE;
    wake_table("post-to-wake latency, waiter asleep", "sync_wake.png",
               "post-to-wake latency, waiter asleep in the kernel",
               (int)(sizeof WAKE / sizeof *WAKE));
}

static void handoff(void)
{
    WK = HANDOFF;
    wake_table("lock hand-off: unlock to the sleeping waiter's lock() returning",
               "sync_lock_handoff.png", "lock hand-off between two pinned processes",
               (int)(sizeof HANDOFF / sizeof *HANDOFF));
}

/* ---------------------------------------------------------- owner death */

/* Lock the mutex of kind k (0 pshm, 1 glibc's robust one); 1 if the
 * previous owner died (then it is repaired and held), 0 if plainly held. */
static int death_lock(int k)
{
    if (k == 0) {
        int r = pshm_mutex_lock(M);
        if (r == -PSHM_EOWNERDEAD)
            OK(pshm_mutex_consistent(M));
        else if (r != 0)
            die("pshm_mutex_lock", r);
        return r != 0;
    }
    int r = pthread_mutex_lock(&R->pm);
    if (r == EOWNERDEAD)
        OK(pthread_mutex_consistent(&R->pm));
    else if (r != 0)
        die("pthread_mutex_lock", r);
    return r != 0;
}

static void death_unlock(int k)
{
    if (k == 0)
        OK(pshm_mutex_unlock(M));
    else
        OK(pthread_mutex_unlock(&R->pm));
}

/* A holder that takes the lock and waits to be killed. */
static pid_t death_holder(int k)
{
    __atomic_store_n(&R->ready, 0, __ATOMIC_RELEASE);
    fflush(NULL);
    pid_t h = fork();
    if (h == 0) {
        death_lock(k);
        __atomic_store_n(&R->ready, 1, __ATOMIC_RELEASE);
        for (;;)
            pause();
    }
    spin_until(&R->ready, 1);
    return h;
}

/*
 * Owner death: the holder is SIGKILLed (a) while a waiter sleeps in lock()
 * - from kill() to the waiter's lock() returning owner-dead - and (b) before
 * anyone waits - a locker that comes after the holder was reaped, the time
 * its lock() takes. The holder holds for a varying 5..195 ms first, so the
 * waiter is caught at every point of its sleep.
 */
static void owner_death(void)
{
    int rounds = O.quick ? 5 : 30, st;
    static const char *names[2] = {"pshm mutex", "glibc robust pshared pthread_mutex"};
    double asleep[2][64], late[2][64];

    for (int round = 0; round < rounds; round++) {
        bench_progress((double)round / rounds, "owner death");
        for (int k = 0; k < 2; k++) {
            pid_t h = death_holder(k);
            __atomic_store_n(&R->done, 0, __ATOMIC_RELEASE);
            pid_t w = fork();
            if (w == 0) {
                int dead = death_lock(k);
                R->lat = now_ns() - __atomic_load_n(&R->t0, __ATOMIC_ACQUIRE);
                death_unlock(k);
                __atomic_store_n(&R->done, dead ? 1 : 2, __ATOMIC_RELEASE);
                _exit(0);
            }
            struct timespec d = {0, (5 + (round * 37) % 190) * 1000000L};
            nanosleep(&d, NULL);
            __atomic_store_n(&R->t0, now_ns(), __ATOMIC_RELEASE);
            kill(h, SIGKILL);
            waitpid(w, &st, 0);
            waitpid(h, &st, 0);
            if (R->done != 1)
                die("owner death: the waiter was not told", EIO);
            asleep[k][round] = R->lat / 1000.0;

            h = death_holder(k);
            kill(h, SIGKILL);
            waitpid(h, &st, 0);
            uint64_t t0 = now_ns();
            if (!death_lock(k))
                die("owner death: the late locker was not told", EIO);
            late[k][round] = (now_ns() - t0) / 1000.0;
            death_unlock(k);
        }
    }
    char title[200];
    snprintf(title, sizeof title,
             "owner death: SIGKILL of the holder to the next locker's owner-dead (us; %d rounds)",
             rounds);
    btable *t = bt_new(title, 5, BT_COLS("", "waiter asleep: median", "max",
                                         "late locker: median", "max"));
    for (int k = 0; k < 2; k++) {
        bench_stat a = bench_stat_of(asleep[k], rounds), l = bench_stat_of(late[k], rounds);
        bt_row(t, BT_COLS(names[k], bench_fmt("%.0f", a.med), bench_fmt("%.0f", a.max),
                          bench_fmt("%.0f", l.med), bench_fmt("%.0f", l.max)));
    }
    bt_readme(t);
    bt_emit(t, J);
}

int main(int argc, char **argv)
{
    int only = 0; /* 1 uncontended, 2 round trip, 3 wake, 4 hand-off, 5 owner death */

    bench_parse(&argc, argv, &O, 5, 2);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "uncontended") == 0)
            only = 1;
        else if (strcmp(argv[i], "roundtrip") == 0)
            only = 2;
        else if (strcmp(argv[i], "wake") == 0)
            only = 3;
        else if (strcmp(argv[i], "handoff") == 0)
            only = 4;
        else if (strcmp(argv[i], "death") == 0)
            only = 5;
        else {
            fprintf(stderr, "usage: bench_sync [--quick] [--json FILE] "
                            "[uncontended|roundtrip|wake|handoff|death]\n");
            return 2;
        }
    }
    setup();
    bench_progress_init("bench_sync");
    J = bj_open(O.json);
    bj_begin_report(J, "sync", "Locks, semaphores and events", 20, &O);
    bench_note_boost(J);
    if (bench_cpu(0) >= 0)
        printf("bench_sync: two-process tests pinned to cpu%d and cpu%d\n", bench_cpu(0),
               bench_cpu(1));
    else
        printf("bench_sync: one CPU: two-process tests unpinned\n");
    pin(0);
    if (!only || only == 1)
        uncontended();
    if (!only || only == 2)
        round_trips();
    if (!only || only == 3)
        wake_latency();
    if (!only || only == 4)
        handoff();
    if (!only || only == 5)
        owner_death();
    bench_progress_end();
    teardown();
    bj_end_report(J);
    return bj_close(J) ? 1 : 0;
}
