/* SPDX-License-Identifier: MIT */
/*
 * bench_sync.c - pshm's synchronisation next to what people use instead.
 * Not a test: it prints a table and asserts nothing.
 *
 *   uncontended  one thread, lock+unlock (or wait+post) in a loop: pshm vs
 *                glibc's robust process-shared pthread_mutex_t (and
 *                pthread_rwlock_t, sem_wait/sem_post).
 *   round trip   two processes ping-pong (pinned to two CPUs): raw futex,
 *                pshm event, pshm sem, POSIX named sem, pshm mutex+cond.
 *   wake         post-to-wake latency: the waiter is asleep in the kernel,
 *                the poster reads the clock and posts, the waiter reads the
 *                clock when it returns. Raw futex wake, pshm sem, pshm event,
 *                POSIX named sem. Samples of all variants are interleaved so
 *                that drift on a shared machine hits them alike.
 *
 * Usage: bench_sync [--quick] [uncontended|roundtrip|wake]
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

#include "pshm.h"

static int quick;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

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
}

/* Pin the calling process to the n-th CPU it may run on. */
static int ncpus_allowed(void)
{
    cpu_set_t s;
    return sched_getaffinity(0, sizeof s, &s) == 0 ? CPU_COUNT(&s) : 1;
}

static int cpu_of[2] = {-1, -1};

static void pin(int which)
{
    cpu_set_t s;
    if (cpu_of[which] < 0)
        return;
    CPU_ZERO(&s);
    CPU_SET(cpu_of[which], &s);
    sched_setaffinity(0, sizeof s, &s);
}

static void choose_cpus(void)
{
    cpu_set_t s;
    int n = 0;
    if (sched_getaffinity(0, sizeof s, &s) != 0 || CPU_COUNT(&s) < 2)
        return;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &s))
            cpu_of[n++] = c;
}

/* ---------------------------------------------------------- uncontended */

typedef double (*loop_fn)(long n);

/* Best (lowest) time per iteration of a and of b, measured in alternating
 * short runs: on a shared machine the load changes from second to second,
 * and alternating makes both sides see the same machine. */
static void best_pair(loop_fn a, loop_fn b, long n, int runs, double *ba, double *bb)
{
    *ba = *bb = 1e30;
    a(n / 4); /* warm up: first-use costs (thread identity, page faults) */
    if (b)
        b(n / 4);
    for (int i = 0; i < runs; i++) {
        double v = a(n);
        if (v < *ba)
            *ba = v;
        if (b) {
            v = b(n);
            if (v < *bb)
                *bb = v;
        }
    }
}

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

static void uncontended(void)
{
    long n = quick ? 200000 : 500000;
    int runs = quick ? 10 : 40;
    struct {
        const char *what, *base;
        loop_fn a, b;
    } rows[] = {
        {"mutex lock+unlock", "robust pshared pthread_mutex", u_pshm_mutex, u_glibc_mutex},
        {"sem post+wait", "sem_post+sem_wait (pshared)", u_pshm_sem, u_posix_sem},
        {"rwlock rdlock+unlock", "pthread_rwlock (pshared)", u_pshm_rd, u_glibc_rd},
        {"rwlock wrlock+unlock", "pthread_rwlock (pshared)", u_pshm_wr, u_glibc_wr},
        {"event set+wait", "-", u_pshm_event, NULL},
    };

    printf("\nuncontended, one thread (ns per pair; best of %d alternating runs of %ld)\n", runs, n);
    printf("  %-22s %8s   %-30s %8s %7s\n", "pshm", "ns", "baseline", "ns", "ratio");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double a, b;
        best_pair(rows[i].a, rows[i].b, n, runs, &a, &b);
        if (rows[i].b)
            printf("  %-22s %8.1f   %-30s %8.1f %6.2fx\n", rows[i].what, a, rows[i].base, b, a / b);
        else
            printf("  %-22s %8.1f   %-30s\n", rows[i].what, a, rows[i].base);
    }
}

/* ----------------------------------------------------------- round trip */

enum { RT_FUTEX, RT_EVENT, RT_SEM, RT_POSIX, RT_MUTEX_COND, RT_N };
static const char *rt_names[RT_N] = {"raw futex", "pshm event (auto)", "pshm sem",
                                     "POSIX sem (sem_open)", "pshm mutex+cond"};

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
            pshm_mutex_lock(M);
            while (R->turn != (uint32_t)me)
                pshm_cond_wait(C, M);
            R->turn = !me;
            pshm_cond_signal(C);
            pshm_mutex_unlock(M);
            break;
        }
    }
}

static double round_trip(int kind, long n)
{
    pid_t pid;
    int st;

    R->turn = 0;
    pid = fork();
    if (pid == 0) {
        pin(1);
        rt_side(kind, 1, n + 1000);
        _exit(0);
    }
    rt_side(kind, 0, 1000); /* warm up */
    uint64_t t0 = now_ns();
    rt_side(kind, 0, n);
    double us = (double)(now_ns() - t0) / (double)n / 1000.0;
    waitpid(pid, &st, 0);
    return us;
}

static void round_trips(void)
{
    long n = quick ? 3000 : 20000;
    double us[RT_N];

    printf("\nround trip between two processes (us per ping-pong, %ld each)\n", n);
    for (int k = 0; k < RT_N; k++)
        us[k] = round_trip(k, n);
    for (int k = 0; k < RT_N; k++)
        printf("  %-26s %8.2f   %5.2fx raw futex\n", rt_names[k], us[k], us[k] / us[RT_FUTEX]);
}

/* ------------------------------------------------- post-to-wake latency */

enum { WK_FUTEX, WK_SEM, WK_EVENT, WK_POSIX, WK_N };
static const char *wk_names[WK_N] = {"raw futex wake", "pshm sem post", "pshm event set",
                                     "POSIX sem_post (sem_open)"};

static void spin_until(uint32_t *w, uint32_t v)
{
    while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != v) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* The waiter: for each command, say ready, sleep in that primitive's wait,
 * and report the time from the poster's clock reading to its own. */
static void wake_child(void)
{
    pin(1);
    for (uint32_t seq = 1;; seq++) {
        spin_until(&R->cmd, seq);
        int kind = (int)(__atomic_load_n(&R->t0, __ATOMIC_ACQUIRE) & 0xff);
        if (kind == 0xff)
            _exit(0);
        __atomic_store_n(&R->ready, seq, __ATOMIC_RELEASE);
        switch (kind) {
        case WK_FUTEX: raw_wait(&R->f1); break;
        case WK_SEM: pshm_sem_wait(S1); break;
        case WK_EVENT: pshm_event_wait(E1); break;
        case WK_POSIX:
            while (sem_wait(NS1) != 0)
                ;
            break;
        }
        uint64_t t1 = now_ns();
        R->lat = t1 - __atomic_load_n(&R->t0, __ATOMIC_ACQUIRE);
        __atomic_store_n(&R->done, seq, __ATOMIC_RELEASE);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void wake_latency(void)
{
    int rounds = quick ? 4 : 10, per = quick ? 50 : 200;
    uint64_t *lat[WK_N];
    int nlat = 0;
    uint32_t seq = 0;
    pid_t pid;
    int st;

    for (int k = 0; k < WK_N; k++)
        lat[k] = calloc((size_t)(rounds * per), sizeof(uint64_t));
    pid = fork();
    if (pid == 0)
        wake_child();
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < WK_N; k++) {
            for (int i = 0; i < per; i++) {
                seq++;
                __atomic_store_n(&R->t0, (uint64_t)k, __ATOMIC_RELEASE);
                __atomic_store_n(&R->cmd, seq, __ATOMIC_RELEASE);
                spin_until(&R->ready, seq);
                /* let the waiter get into the kernel and sleep */
                struct timespec d = {0, 100000};
                nanosleep(&d, NULL);
                uint64_t t0 = now_ns();
                __atomic_store_n(&R->t0, t0, __ATOMIC_RELEASE);
                switch (k) {
                case WK_FUTEX: raw_post(&R->f1); break;
                case WK_SEM: pshm_sem_post(S1); break;
                case WK_EVENT: pshm_event_set(E1); break;
                case WK_POSIX: sem_post(NS1); break;
                }
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

    printf("\npost-to-wake latency, waiter asleep (us; %d samples each, interleaved)\n", nlat);
    printf("  %-26s %8s %8s %8s   %s\n", "", "median", "p90", "p99", "median vs raw futex");
    double base = 0;
    for (int k = 0; k < WK_N; k++) {
        qsort(lat[k], (size_t)nlat, sizeof(uint64_t), cmp_u64);
        double med = lat[k][nlat / 2] / 1000.0, p90 = lat[k][nlat * 9 / 10] / 1000.0,
               p99 = lat[k][nlat * 99 / 100] / 1000.0;
        if (k == 0)
            base = med;
        printf("  %-26s %8.2f %8.2f %8.2f   %5.2fx\n", wk_names[k], med, p90, p99, med / base);
        free(lat[k]);
    }
}

int main(int argc, char **argv)
{
    int only = 0; /* 1 uncontended, 2 round trip, 3 wake */

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "uncontended") == 0)
            only = 1;
        else if (strcmp(argv[i], "roundtrip") == 0)
            only = 2;
        else if (strcmp(argv[i], "wake") == 0)
            only = 3;
        else {
            fprintf(stderr, "usage: bench_sync [--quick] [uncontended|roundtrip|wake]\n");
            return 2;
        }
    }
    setup();
    choose_cpus();
    printf("pshm sync benchmark: %d CPUs allowed; ", ncpus_allowed());
    if (cpu_of[0] >= 0)
        printf("two-process tests pinned to CPU %d and CPU %d\n", cpu_of[0], cpu_of[1]);
    else
        printf("one CPU: two-process tests unpinned\n");
    pin(0);
    if (!only || only == 1)
        uncontended();
    if (!only || only == 2)
        round_trips();
    if (!only || only == 3)
        wake_latency();
    return 0;
}
