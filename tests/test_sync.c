/* SPDX-License-Identifier: MIT */
/*
 * test_sync.c - mutex, cond, sem, rwlock, barrier, event: behaviour across
 * processes and threads, death of holders and waiters, named objects and
 * their headers, and SIGKILL at random points (the kill_* tests; at least
 * 1000 kills in all). PSHM_SOAK=1 multiplies the kills by 10; PSHM_SEED
 * fixes the random sequence (each kill test prints the seed it used).
 */
#include "harness.h"

#include "sync/sync_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static struct timespec in_ms(long long ms)
{
    struct timespec t;
    CHECK_OK(pshm_deadline(&t, ms));
    return t;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}


/* Spin-sleep until *p >= want, at most ms; returns 1 if reached. */
static int until_ge(volatile uint64_t *p, uint64_t want, int ms)
{
    long long end = now_ms() + ms;
    while (ALOAD(p) < want) {
        if (now_ms() > end)
            return 0;
        usleep(200);
    }
    return 1;
}

/* The child is blocked in the kernel (state S) - i.e. waiting, not running. */
static int sleeping(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

static void wait_sleeping(pid_t pid)
{
    long long end = now_ms() + 10000;
    while (!sleeping(pid)) {
        CHECK(now_ms() < end);
        usleep(500);
    }
    usleep(2000); /* and give it time to be really inside the futex wait */
}

static void kill_wait(pid_t pid)
{
    kill(pid, SIGKILL);
    CHECK_EQ(th_wait(pid, 10000), 128 + SIGKILL);
}


/* ------------------------------------------------- layout and checking */

TEST(sizes_alignment_and_bad_arguments)
{
    char *mem = th_shared(65536);
    pshm_mutex *m = (pshm_mutex *)1;
    pshm_sem *s;
    pshm_barrier *b;

    CHECK(sizeof(struct pshm_mutex) <= PSHM_MUTEX_SIZE);
    CHECK_ERR(pshm_mutex_init(mem, PSHM_MUTEX_SIZE - 1, &m), -EINVAL);
    CHECK(m == NULL);
    CHECK_ERR(pshm_mutex_init(mem + 4, PSHM_MUTEX_SIZE, &m), -EINVAL);
    CHECK_ERR(pshm_mutex_init(NULL, PSHM_MUTEX_SIZE, &m), -EINVAL);
    CHECK_ERR(pshm_mutex_init(mem, PSHM_MUTEX_SIZE, NULL), -EINVAL);
    CHECK_OK(pshm_mutex_init(mem + 8, PSHM_MUTEX_SIZE, &m)); /* 8 is enough */
    CHECK(m == (pshm_mutex *)(mem + 8));
    CHECK_ERR(pshm_sem_init(mem, PSHM_SEM_SIZE, 1, PSHM_SEM_UNDO, &s), -EINVAL);
    CHECK_ERR(pshm_sem_init(mem, PSHM_SEM_SIZE, PSHM_SEM_VALUE_MAX + 1u, 0, &s), -EINVAL);
    CHECK_ERR(pshm_sem_init(mem, PSHM_SEM_SIZE, 1, 4, &s), -EINVAL);
    CHECK_ERR(pshm_barrier_init(mem, PSHM_BARRIER_SIZE(4) - 1, 4, &b), -EINVAL);
    CHECK_ERR(pshm_barrier_init(mem, 65536, 0, &b), -EINVAL);
    CHECK_ERR(pshm_barrier_init(mem, 65536, PSHM_BARRIER_MAX + 1, &b), -EINVAL);
    CHECK_ERR(pshm_mutex_lock(NULL), -EINVAL);
    CHECK_ERR(pshm_deadline(NULL, 1), -EINVAL);
    struct timespec t;
    CHECK_ERR(pshm_deadline(&t, -1), -EINVAL);
    t.tv_sec = 0;
    t.tv_nsec = 1000000000L;
    CHECK_ERR(pshm_mutex_timedlock(m, &t), -EINVAL);
    CHECK_ERR(pshm_mutex_timedlock(m, NULL), -EINVAL);
    CHECK_STR(pshm_errname(-PSHM_EBROKEN), "PSHM_EBROKEN");
    CHECK_STR(pshm_errname(-PSHM_EREADERDEAD), "PSHM_EREADERDEAD");
}

/* Every call on bytes that are not its kind of object fails cleanly. */
TEST(calls_on_wrong_or_garbage_bytes_fail_cleanly)
{
    uint64_t mem[1024];
    pshm_mutex *m;
    pshm_cond *c;
    pshm_event *e;
    pshm_sem *s;

    memset(mem, 0, sizeof mem);
    CHECK_ERR(pshm_mutex_lock((pshm_mutex *)mem), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_mutex_attach(mem, sizeof mem, &m), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_sem_post((pshm_sem *)mem), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_rwlock_rdlock((pshm_rwlock *)mem), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_barrier_wait((pshm_barrier *)mem, NULL), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_event_set((pshm_event *)mem), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_cond_signal((pshm_cond *)mem), -PSHM_EBADFORMAT);

    CHECK_OK(pshm_cond_init(mem, sizeof mem, &c));
    CHECK_ERR(pshm_mutex_lock((pshm_mutex *)mem), -PSHM_EKIND);
    CHECK_ERR(pshm_mutex_attach(mem, sizeof mem, &m), -PSHM_EKIND);
    CHECK_ERR(pshm_cond_wait(c, (pshm_mutex *)mem), -PSHM_EKIND);
    mem[0] ^= 0xffull; /* the version byte */
    CHECK_ERR(pshm_cond_signal(c), -PSHM_EVERSION);
    mem[0] ^= 0xffull;
    mem[0] ^= 1ull << 40; /* the ABI word */
    CHECK_ERR(pshm_cond_signal(c), -PSHM_EABI);
    mem[0] ^= 1ull << 40;
    CHECK_OK(pshm_cond_signal(c));
    CHECK_OK(pshm_cond_destroy(c));
    CHECK_ERR(pshm_cond_signal(c), -PSHM_EBADFORMAT);

    /* random bytes: never a crash */
    unsigned x = 12345;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
            x = x * 1103515245u + 12345u;
            mem[i] = ((uint64_t)x << 32) ^ (x * 2654435761u);
        }
        CHECK(pshm_mutex_trylock((pshm_mutex *)mem) < 0);
        CHECK(pshm_sem_trywait((pshm_sem *)mem) < 0);
        CHECK(pshm_event_trywait((pshm_event *)mem) < 0);
        CHECK(pshm_barrier_trywait((pshm_barrier *)mem, NULL) < 0);
        CHECK(pshm_rwlock_tryrdlock((pshm_rwlock *)mem) < 0);
        pshm_sync_info in;
        pshm_sync_info_init(&in);
        CHECK(pshm_sync_stat_mem(mem, sizeof mem, &in) < 0);
    }
    /* a valid tag over nonsense fields: the checked counts keep us in bounds */
    pshm_barrier *b;
    CHECK_OK(pshm_barrier_init(mem, sizeof mem, 3, &b));
    b->count = 100000;
    CHECK_ERR(pshm_barrier_trywait(b, NULL), -PSHM_EBADFORMAT);
    b->count = 3;
    b->count_check = 0;
    CHECK_ERR(pshm_barrier_join(b), -PSHM_EBADFORMAT);
    CHECK_OK(pshm_sem_init(mem, sizeof mem, 1, PSHM_SEM_UNDO, &s));
    s->nslots = 5;
    CHECK_ERR(pshm_sem_trywait(s), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_sem_attach(mem, sizeof mem, &s), -PSHM_EBADFORMAT);
    CHECK_OK(pshm_event_init(mem, sizeof mem, PSHM_EVENT_SET, &e));
    CHECK_ERR(pshm_event_attach(mem, PSHM_EVENT_SIZE - 1, &e), -EINVAL);
}

/* --------------------------------------------------------------- mutex */

typedef struct mshared {
    char mem[PSHM_MUTEX_SIZE] __attribute__((aligned(64)));
    char mem2[PSHM_COND_SIZE] __attribute__((aligned(64)));
    char mem3[PSHM_COND_SIZE] __attribute__((aligned(64)));
    uint64_t a, b, n;
    uint64_t flag, got_dead, got_ok, got_notrec, other;
    uint64_t ring[16];
    uint64_t head, tail, produced_sum, consumed_sum, consumed_n;
} mshared;

static mshared *MS;

static int child_trylock(void *arg)
{
    (void)arg;
    return -pshm_mutex_trylock((pshm_mutex *)MS->mem);
}

static int child_unlock(void *arg)
{
    (void)arg;
    return -pshm_mutex_unlock((pshm_mutex *)MS->mem);
}

static int child_timedlock(void *arg)
{
    (void)arg;
    struct timespec d = in_ms(30);
    return -pshm_mutex_timedlock((pshm_mutex *)MS->mem, &d);
}

static int child_lock_and_die(void *arg)
{
    pshm_mutex *m = (pshm_mutex *)MS->mem;
    if (pshm_mutex_lock(m) != 0)
        return 1;
    MS->a = 1; /* half an update */
    AINC(&MS->flag);
    if (arg)
        pause(); /* wait to be killed */
    _exit(0);    /* or exit holding it */
}

TEST(mutex_basic_across_processes)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    CHECK_OK(pshm_mutex_attach(MS->mem, sizeof MS->mem, &m));
    CHECK_OK(pshm_mutex_lock(m));
    CHECK_ERR(pshm_mutex_lock(m), -EDEADLK);
    CHECK_ERR(pshm_mutex_trylock(m), -EBUSY); /* a try says busy, as POSIX's */
    CHECK_EQ(th_wait(th_fork(child_trylock, NULL), 5000), EBUSY);
    CHECK_EQ(th_wait(th_fork(child_unlock, NULL), 5000), EPERM);
    CHECK_EQ(th_wait(th_fork(child_timedlock, NULL), 5000), ETIMEDOUT);
    CHECK_ERR(pshm_mutex_consistent(m), -EINVAL);
    CHECK_ERR(pshm_mutex_destroy(m), -EBUSY);
    CHECK_OK(pshm_mutex_unlock(m));
    CHECK_ERR(pshm_mutex_unlock(m), -EPERM);
    /* a deadline in the past still takes a free mutex */
    struct timespec past = {0, 0};
    CHECK_OK(pshm_mutex_timedlock(m, &past));
    CHECK_OK(pshm_mutex_unlock(m));
    CHECK_EQ(th_wait(th_fork(child_trylock, NULL), 5000), 0); /* and exits holding it */
    CHECK_ERR(pshm_mutex_lock(m), -PSHM_EOWNERDEAD);
    CHECK_OK(pshm_mutex_consistent(m));
    CHECK_OK(pshm_mutex_unlock(m));
    CHECK_OK(pshm_mutex_destroy(m));
    CHECK_ERR(pshm_mutex_lock(m), -PSHM_EBADFORMAT);
}

#define NPROC 4
#define NINC 20000

static int child_increment(void *arg)
{
    pshm_mutex *m = (pshm_mutex *)MS->mem;
    (void)arg;
    for (int i = 0; i < NINC; i++) {
        if (pshm_mutex_lock(m) != 0)
            return 2;
        uint64_t v = MS->n; /* a deliberately non-atomic read-modify-write */
        MS->n = v + 1;
        if (pshm_mutex_unlock(m) != 0)
            return 3;
    }
    return 0;
}

TEST(mutex_n_processes_times_m_increments)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;
    pid_t p[NPROC];

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    for (int i = 0; i < NPROC; i++)
        p[i] = th_fork(child_increment, NULL);
    for (int i = 0; i < NPROC; i++)
        CHECK_EQ(th_wait(p[i], 60000), 0);
    CHECK_EQ(MS->n, NPROC * NINC);
}

static void *thread_increment(void *arg)
{
    return (void *)(intptr_t)child_increment(arg);
}

TEST(mutex_threads_and_processes)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;
    pthread_t t[NPROC];
    pid_t p;

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    p = th_fork(child_increment, NULL);
    for (int i = 0; i < NPROC; i++)
        CHECK_OK(pthread_create(&t[i], NULL, thread_increment, NULL));
    for (int i = 0; i < NPROC; i++) {
        void *rv;
        CHECK_OK(pthread_join(t[i], &rv));
        CHECK(rv == NULL);
    }
    CHECK_EQ(th_wait(p, 60000), 0);
    CHECK_EQ(MS->n, (NPROC + 1) * NINC);
}

/* A waiter blocked in lock: exactly one of them hears of the death. */
static int child_lock_report(void *arg)
{
    pshm_mutex *m = (pshm_mutex *)MS->mem;
    int r = pshm_mutex_lock(m);
    (void)arg;
    if (r == -PSHM_EOWNERDEAD) {
        AINC(&MS->got_dead);
        MS->b = MS->a; /* repair */
        if (pshm_mutex_consistent(m) != 0)
            return 2;
    } else if (r == 0) {
        AINC(&MS->got_ok);
    } else if (r == -PSHM_ENOTRECOVERABLE) {
        AINC(&MS->got_notrec);
        return 0;
    } else {
        return 3;
    }
    if (MS->a != MS->b)
        return 4;
    return pshm_mutex_unlock(m) == 0 ? 0 : 5;
}

TEST(mutex_owner_death_reported_exactly_once)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;
    pid_t w[3];

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    pid_t holder = th_fork(child_lock_and_die, (void *)1);
    CHECK(until_ge(&MS->flag, 1, 10000));
    for (int i = 0; i < 3; i++)
        w[i] = th_fork(child_lock_report, NULL);
    for (int i = 0; i < 3; i++)
        wait_sleeping(w[i]);
    pshm_sync_info in;
    pshm_sync_info_init(&in);
    CHECK_OK(pshm_sync_stat_mem(MS->mem, sizeof MS->mem, &in));
    CHECK_EQ(in.kind, PSHM_SYNC_MUTEX);
    CHECK_EQ(in.locked, 1);
    CHECK_EQ(in.owner_pid, holder);
    CHECK_EQ(in.owner_alive, 1);
    CHECK_EQ(in.waiters, 3);
    kill_wait(holder);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_wait(w[i], 10000), 0);
    CHECK_EQ(MS->got_dead, 1);
    CHECK_EQ(MS->got_ok, 2);
    CHECK_OK(pshm_mutex_lock(m));
    CHECK_OK(pshm_mutex_unlock(m));
}

/*
 * The wake-up lost to a dead waiter. An unlock wakes one waiter; if that
 * one is killed before it takes the lock and a third thread takes the free
 * lock first (a trylock), glibc's "has waiters" mark is gone and the next
 * unlock wakes nobody. The kill cannot be timed into that window reliably,
 * so the test makes the state it leaves - a free word without the mark and
 * a waiter asleep - by hand (the lock's futex word): the waiter must still
 * get the lock.
 */
TEST(mutex_waiter_survives_a_wake_up_lost_to_a_dead_waiter)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    pid_t holder = th_fork(child_lock_and_die, (void *)1);
    CHECK(until_ge(&MS->flag, 1, 10000));
    pid_t w = th_fork(child_lock_report, NULL);
    wait_sleeping(w);
    MS->b = MS->a;
    uint32_t *word = &m->lk.word;
    ASTORE(word, 0);                  /* released; its wake-up went to the dead */
    CHECK_OK(pshm_mutex_trylock(m));  /* taken without the mark... */
    CHECK_OK(pshm_mutex_unlock(m));   /* ...so released without a wake-up */
    kill_wait(holder);                /* holds nothing any more */
    CHECK_EQ(th_wait(w, 5000), 0);
    CHECK_EQ(MS->got_ok, 1);
    CHECK_EQ(MS->got_dead, 0);
}

TEST(mutex_unlock_without_consistent_is_not_recoverable)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;
    char desc[128];
    pshm_sync_info in;
    pshm_sync_info_init(&in);

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    pid_t holder = th_fork(child_lock_and_die, NULL); /* exits holding it */
    CHECK_EQ(th_wait(holder, 10000), 0);
    CHECK_OK(pshm_sync_stat_mem(MS->mem, sizeof MS->mem, &in));
    CHECK_EQ(in.owner_alive, 0);
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    char want[128];
    snprintf(want, sizeof want, "mutex locked pid=%ld(dead) waiters=0", (long)holder);
    CHECK_STR(desc, want);
    CHECK_ERR(pshm_mutex_lock(m), -PSHM_EOWNERDEAD);
    CHECK_OK(pshm_sync_stat_mem(MS->mem, sizeof MS->mem, &in));
    CHECK_EQ(in.inconsistent, 1);
    pid_t w = th_fork(child_lock_report, NULL);
    wait_sleeping(w);
    CHECK_OK(pshm_mutex_unlock(m)); /* without consistent */
    CHECK_EQ(th_wait(w, 10000), 0);
    CHECK_EQ(MS->got_notrec, 1);
    CHECK_ERR(pshm_mutex_lock(m), -PSHM_ENOTRECOVERABLE);
    CHECK_ERR(pshm_mutex_trylock(m), -PSHM_ENOTRECOVERABLE);
    CHECK_OK(pshm_sync_stat_mem(MS->mem, sizeof MS->mem, &in));
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    CHECK_STR(desc, "mutex notrecoverable waiters=0");
    /* Race a stale state word: glibc's trylock then takes the lock word and
     * reports ENOTRECOVERABLE; the word must still be free afterwards. */
    m->state = PSHM__MS_OK;
    CHECK_ERR(pshm_mutex_trylock(m), -PSHM_ENOTRECOVERABLE);
    m->state = PSHM__MS_OK;
    CHECK_EQ(th_wait(th_fork(child_trylock, NULL), 5000), PSHM_ENOTRECOVERABLE & 0xff);
    m->state = PSHM__MS_OK;
    CHECK_ERR(pshm_mutex_lock(m), -PSHM_ENOTRECOVERABLE);
}

/* ---------------------------------------------------------------- cond */

#define RING 16
#define ITEMS 20000

static int producer(void *arg)
{
    pshm_mutex *m = (pshm_mutex *)MS->mem;
    pshm_cond *not_empty = (pshm_cond *)MS->mem2, *not_full = (pshm_cond *)MS->mem3;
    uint64_t base = (uint64_t)(intptr_t)arg * ITEMS;

    for (uint64_t i = 1; i <= ITEMS; i++) {
        if (pshm_mutex_lock(m) != 0)
            return 2;
        while (MS->tail - MS->head == RING)
            if (pshm_cond_wait(not_full, m) != 0)
                return 3;
        MS->ring[MS->tail % RING] = base + i;
        MS->tail++;
        MS->produced_sum += base + i;
        if (pshm_cond_signal(not_empty) != 0)
            return 4;
        pshm_mutex_unlock(m);
    }
    return 0;
}

static int consumer(void *arg)
{
    pshm_mutex *m = (pshm_mutex *)MS->mem;
    pshm_cond *not_empty = (pshm_cond *)MS->mem2, *not_full = (pshm_cond *)MS->mem3;
    (void)arg;

    for (;;) {
        if (pshm_mutex_lock(m) != 0)
            return 2;
        while (MS->tail == MS->head && !MS->flag)
            if (pshm_cond_wait(not_empty, m) != 0)
                return 3;
        if (MS->tail == MS->head && MS->flag) {
            pshm_mutex_unlock(m);
            return 0;
        }
        MS->consumed_sum += MS->ring[MS->head % RING];
        MS->head++;
        MS->consumed_n++;
        pshm_cond_signal(not_full);
        pshm_mutex_unlock(m);
    }
}

static void *consumer_thread(void *arg)
{
    return (void *)(intptr_t)consumer(arg);
}

static void *producer_thread(void *arg)
{
    return (void *)(intptr_t)producer(arg);
}

/* Two producer processes, two consumer processes and two consumer threads,
 * a 16-slot ring and signal (not broadcast): a lost wake-up would hang. */
TEST_TIMEOUT(cond_producer_consumer_no_lost_wakeup, 120)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;
    pshm_cond *c1, *c2;
    pid_t p[4];
    pthread_t t[3];

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    CHECK_OK(pshm_cond_init(MS->mem2, sizeof MS->mem2, &c1));
    CHECK_OK(pshm_cond_init(MS->mem3, sizeof MS->mem3, &c2));
    p[0] = th_fork(producer, (void *)0);
    p[1] = th_fork(producer, (void *)1);
    p[2] = th_fork(consumer, NULL);
    p[3] = th_fork(consumer, NULL);
    CHECK_OK(pthread_create(&t[0], NULL, consumer_thread, NULL));
    CHECK_OK(pthread_create(&t[1], NULL, consumer_thread, NULL));
    CHECK_OK(pthread_create(&t[2], NULL, producer_thread, (void *)2));
    CHECK_EQ(th_wait(p[0], 100000), 0);
    CHECK_EQ(th_wait(p[1], 100000), 0);
    void *rv;
    CHECK_OK(pthread_join(t[2], &rv));
    CHECK(rv == NULL);
    /* done: wake the consumers for good */
    CHECK_OK(pshm_mutex_lock(m));
    MS->flag = 1;
    CHECK_OK(pshm_cond_broadcast(c1));
    CHECK_OK(pshm_mutex_unlock(m));
    CHECK_EQ(th_wait(p[2], 30000), 0);
    CHECK_EQ(th_wait(p[3], 30000), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(pthread_join(t[i], &rv));
        CHECK(rv == NULL);
    }
    uint64_t n = 3 * (uint64_t)ITEMS;
    CHECK_EQ(MS->consumed_n, n);
    CHECK_EQ(MS->consumed_sum, MS->produced_sum);
    CHECK_EQ(MS->produced_sum, n * (n + 1) / 2);
}

static int cond_waiter(void *arg)
{
    pshm_mutex *m = (pshm_mutex *)MS->mem;
    pshm_cond *c = (pshm_cond *)MS->mem2;
    (void)arg;
    if (pshm_mutex_lock(m) != 0)
        return 2;
    AINC(&MS->n);
    while (!MS->flag)
        if (pshm_cond_wait(c, m) != 0)
            return 3;
    AINC(&MS->got_ok);
    pshm_mutex_unlock(m);
    return 0;
}

TEST(cond_timeout_signal_broadcast_and_dead_waiters)
{
    MS = th_shared(sizeof *MS);
    pshm_mutex *m;
    pshm_cond *c;
    pid_t w[4];

    CHECK_OK(pshm_mutex_init(MS->mem, sizeof MS->mem, &m));
    CHECK_OK(pshm_cond_init(MS->mem2, sizeof MS->mem2, &c));
    CHECK_OK(pshm_cond_signal(c)); /* nobody waits: nothing happens */
    CHECK_OK(pshm_mutex_lock(m));
    struct timespec d = in_ms(50);
    long long t0 = now_ms();
    CHECK_ERR(pshm_cond_timedwait(c, m, &d), -ETIMEDOUT);
    CHECK(now_ms() - t0 >= 49);
    CHECK_OK(pshm_mutex_unlock(m)); /* relocked on timeout */
    CHECK_ERR(pshm_cond_wait(c, m), -EPERM); /* not holding m */

    for (int i = 0; i < 4; i++)
        w[i] = th_fork(cond_waiter, NULL);
    CHECK(until_ge(&MS->n, 4, 10000));
    for (int i = 0; i < 4; i++)
        wait_sleeping(w[i]);
    /* waiters die: signallers and the other waiters do not notice */
    kill_wait(w[0]);
    kill_wait(w[1]);
    CHECK_OK(pshm_mutex_lock(m));
    MS->flag = 1;
    CHECK_OK(pshm_cond_signal(c));
    CHECK_OK(pshm_mutex_unlock(m));
    /* one signal wakes one live waiter; the other follows within the recheck */
    CHECK(until_ge(&MS->got_ok, 1, 10000));
    CHECK_OK(pshm_cond_broadcast(c));
    CHECK_EQ(th_wait(w[2], 10000), 0);
    CHECK_EQ(th_wait(w[3], 10000), 0);
    CHECK_EQ(MS->got_ok, 2);
}

/* ----------------------------------------------------------- semaphore */

typedef struct sshared {
    char sem[PSHM_SEM_UNDO_SIZE] __attribute__((aligned(64)));
    char sem2[PSHM_SEM_SIZE] __attribute__((aligned(64)));
    uint64_t n, flag, got, bad;
} sshared;

static sshared *SS;

static int sem_taker(void *arg)
{
    pshm_sem *s = (pshm_sem *)SS->sem;
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < k; i++)
        if (pshm_sem_wait(s) != 0)
            return 2;
    AINC(&SS->got);
    return 0;
}

static int sem_poster(void *arg)
{
    pshm_sem *s = (pshm_sem *)SS->sem;
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < k; i++)
        if (pshm_sem_post(s) != 0)
            return 2;
    return 0;
}

TEST(sem_basic_across_processes)
{
    SS = th_shared(sizeof *SS);
    pshm_sem *s;
    unsigned v;

    CHECK_OK(pshm_sem_init(SS->sem, PSHM_SEM_SIZE, 2, 0, &s));
    CHECK_OK(pshm_sem_attach(SS->sem, PSHM_SEM_SIZE, &s));
    CHECK_OK(pshm_sem_trywait(s));
    CHECK_OK(pshm_sem_wait(s));
    CHECK_ERR(pshm_sem_trywait(s), -EAGAIN);
    struct timespec d = in_ms(30);
    CHECK_ERR(pshm_sem_timedwait(s, &d), -ETIMEDOUT);
    pid_t w = th_fork(sem_taker, (void *)3);
    wait_sleeping(w);
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 0);
    pshm_sync_info in;
    pshm_sync_info_init(&in);
    char desc[128];
    CHECK_OK(pshm_sync_stat_mem(SS->sem, PSHM_SEM_SIZE, &in));
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    CHECK_STR(desc, "sem value=0 waiters=1");
    CHECK_EQ(th_wait(th_fork(sem_poster, (void *)5), 5000), 0);
    CHECK_EQ(th_wait(w, 5000), 0);
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 2);
    /* the ceiling */
    CHECK_OK(pshm_sem_init(SS->sem2, PSHM_SEM_SIZE, PSHM_SEM_VALUE_MAX, 0, &s));
    CHECK_ERR(pshm_sem_post(s), -EOVERFLOW);
    CHECK_OK(pshm_sem_wait(s));
    CHECK_OK(pshm_sem_post(s));
}

TEST(sem_many_posters_many_waiters)
{
    SS = th_shared(sizeof *SS);
    pshm_sem *s;
    pid_t p[8];
    unsigned v;

    CHECK_OK(pshm_sem_init(SS->sem, PSHM_SEM_SIZE, 0, 0, &s));
    for (int i = 0; i < 4; i++)
        p[i] = th_fork(sem_taker, (void *)5000);
    for (int i = 4; i < 8; i++)
        p[i] = th_fork(sem_poster, (void *)5000);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(th_wait(p[i], 60000), 0);
    CHECK_EQ(SS->got, 4);
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 0);
}

static int undo_holder(void *arg)
{
    pshm_sem *s = (pshm_sem *)SS->sem;
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < k; i++)
        if (pshm_sem_wait(s) != 0)
            return 2;
    AINC(&SS->got);
    pause();
    return 0;
}

TEST(sem_undo_returns_units_of_dead_holders)
{
    SS = th_shared(sizeof *SS);
    pshm_sem *s;
    unsigned v;
    pshm_sync_info in;
    pshm_sync_info_init(&in);
    char desc[128];

    CHECK_OK(pshm_sem_init(SS->sem, sizeof SS->sem, 3, PSHM_SEM_UNDO, &s));
    /* a process that waits and posts holds nothing afterwards */
    CHECK_EQ(th_wait(th_fork(sem_taker, (void *)1), 5000), 0);
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 2); /* the taker exited holding 1: not yet reaped */
    pid_t h = th_fork(undo_holder, (void *)2);
    CHECK(until_ge(&SS->got, 2, 10000));
    CHECK_OK(pshm_sync_stat_mem(SS->sem, sizeof SS->sem, &in));
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    CHECK_STR(desc, "sem value=0 waiters=0 undo holders=2 dead=1");
    kill_wait(h);
    /* all three come back: one from the exited taker, two from the killed holder */
    struct timespec d = in_ms(10000);
    for (int i = 0; i < 3; i++)
        CHECK_OK(pshm_sem_timedwait(s, &d));
    CHECK_ERR(pshm_sem_trywait(s), -EAGAIN);
    for (int i = 0; i < 3; i++)
        CHECK_OK(pshm_sem_post(s));
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 3);
    CHECK_OK(pshm_sync_stat_mem(SS->sem, sizeof SS->sem, &in));
    CHECK_EQ(in.members, 0);
    /* a post by a process that holds nothing just adds a unit */
    CHECK_EQ(th_wait(th_fork(sem_poster, (void *)1), 5000), 0);
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 4);
}

TEST(sem_undo_full_table_is_enospc)
{
    SS = th_shared(sizeof *SS);
    pshm_sem *s;
    uint64_t init_id = 0;

    CHECK_OK(pshm_sem_init(SS->sem, sizeof SS->sem, 5, PSHM_SEM_UNDO, &s));
    /* every record held by a live process (pid 1 with its real start time) */
    FILE *f = fopen("/proc/1/stat", "r");
    if (!f)
        th_skip("no /proc/1/stat");
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')') + 2;
    for (int field = 3; field < 22; field++)
        p = strchr(p, ' ') + 1;
    init_id = (1ull << 32) | (uint32_t)strtoull(p, NULL, 10);
    pshm__sem_undo *u = (pshm__sem_undo *)(SS->sem + PSHM_SEM_SIZE);
    for (int i = 0; i < PSHM_SEM_UNDO_SLOTS; i++) {
        u->slots[i].who = init_id;
        u->slots[i].held = 1;
    }
    CHECK_ERR(pshm_sem_wait(s), -ENOSPC);
    unsigned v;
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 5);
    u->slots[7].held = 0; /* a record that holds nothing is free */
    CHECK_OK(pshm_sem_wait(s));
}

/* A process killed in the middle of an undo-mode change: rolled back whole. */
static int undo_half_change(void *arg)
{
    pshm_sem *s = (pshm_sem *)SS->sem;
    pshm__sem_undo *u = (pshm__sem_undo *)(SS->sem + PSHM_SEM_SIZE);
    (void)arg;
    if (pshm__lock_acquire(&u->lock.lk, 0, NULL) != 0)
        return 2;
    /* what undo_apply does, cut short after the value changed */
    u->intent.slot = 3;
    u->intent.old_value = s->value;
    u->intent.old_who = u->slots[3].who;
    u->intent.old_held = u->slots[3].held;
    __atomic_store_n(&u->intent.valid, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&s->value, s->value - 1, __ATOMIC_SEQ_CST);
    u->slots[3].who = 77;
    _exit(0);
}

TEST(sem_undo_rolls_back_a_change_cut_short)
{
    SS = th_shared(sizeof *SS);
    pshm_sem *s;
    unsigned v;

    CHECK_OK(pshm_sem_init(SS->sem, sizeof SS->sem, 2, PSHM_SEM_UNDO, &s));
    CHECK_EQ(th_wait(th_fork(undo_half_change, NULL), 5000), 0);
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 1); /* half done */
    CHECK_OK(pshm_sem_post(s)); /* finds the lock owner-dead: rolls back, then posts */
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, 3);
    pshm__sem_undo *u = (pshm__sem_undo *)(SS->sem + PSHM_SEM_SIZE);
    CHECK_EQ(u->slots[3].who, 0);
    CHECK_EQ(u->intent.valid, 0);
}

/* ------------------------------------------------------- read-write lock */

typedef struct rshared {
    char rw[PSHM_RWLOCK_SIZE] __attribute__((aligned(64)));
    uint64_t data[8];
    uint64_t flag, n, bad, reads, writes;
} rshared;

static rshared *RS;

static int rw_try(void *arg)
{
    pshm_rwlock *rw = (pshm_rwlock *)RS->rw;
    int r = arg ? pshm_rwlock_trywrlock(rw) : pshm_rwlock_tryrdlock(rw);
    if (r == 0)
        pshm_rwlock_unlock(rw);
    return -r;
}

static int rw_read_hold(void *arg)
{
    pshm_rwlock *rw = (pshm_rwlock *)RS->rw;
    int r = pshm_rwlock_rdlock(rw);
    if (r != 0 && r != -PSHM_EREADERDEAD)
        return 2;
    AINC(&RS->n);
    if (arg)
        pause();
    until_ge(&RS->flag, 1, 10000);
    return pshm_rwlock_unlock(rw) == 0 ? 0 : 3;
}

static int rw_write_half_and_die(void *arg)
{
    pshm_rwlock *rw = (pshm_rwlock *)RS->rw;
    (void)arg;
    if (pshm_rwlock_wrlock(rw) != 0)
        return 2;
    RS->data[0] = 99; /* half of an update */
    AINC(&RS->n);
    pause();
    return 0;
}

TEST(rwlock_basic_across_processes)
{
    RS = th_shared(sizeof *RS);
    pshm_rwlock *rw;
    struct timespec d;

    CHECK_OK(pshm_rwlock_init(RS->rw, sizeof RS->rw, &rw));
    CHECK_OK(pshm_rwlock_attach(RS->rw, sizeof RS->rw, &rw));
    CHECK_ERR(pshm_rwlock_unlock(rw), -EPERM);
    CHECK_OK(pshm_rwlock_rdlock(rw));
    CHECK_OK(pshm_rwlock_rdlock(rw)); /* recursive read */
    CHECK_EQ(th_wait(th_fork(rw_try, NULL), 5000), 0);      /* readers share */
    CHECK_EQ(th_wait(th_fork(rw_try, (void *)1), 5000), EBUSY); /* writer excluded */
    CHECK_ERR(pshm_rwlock_wrlock(rw), -EDEADLK); /* upgrade would deadlock */
    pshm_sync_info in;
    pshm_sync_info_init(&in);
    CHECK_OK(pshm_sync_stat_mem(RS->rw, sizeof RS->rw, &in));
    CHECK_EQ(in.readers, 2);
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_ERR(pshm_rwlock_unlock(rw), -EPERM);
    CHECK_OK(pshm_rwlock_wrlock(rw));
    CHECK_ERR(pshm_rwlock_wrlock(rw), -EDEADLK);
    CHECK_ERR(pshm_rwlock_trywrlock(rw), -EDEADLK);
    CHECK_ERR(pshm_rwlock_rdlock(rw), -EDEADLK);
    CHECK_ERR(pshm_rwlock_tryrdlock(rw), -EDEADLK);
    CHECK_EQ(th_wait(th_fork(rw_try, NULL), 5000), EBUSY);
    CHECK_EQ(th_wait(th_fork(rw_try, (void *)1), 5000), EBUSY);
    CHECK_ERR(pshm_rwlock_consistent(rw), -EINVAL);
    CHECK_OK(pshm_sync_stat_mem(RS->rw, sizeof RS->rw, &in));
    char desc[128], want[128];
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    snprintf(want, sizeof want, "rwlock write pid=%ld waiters=0", (long)getpid());
    CHECK_STR(desc, want);
    CHECK_OK(pshm_rwlock_unlock(rw));
    /* two reader processes at once; a writer times out meanwhile */
    pid_t r1 = th_fork(rw_read_hold, NULL), r2 = th_fork(rw_read_hold, NULL);
    CHECK(until_ge(&RS->n, 2, 10000));
    d = in_ms(30);
    CHECK_ERR(pshm_rwlock_timedwrlock(rw, &d), -ETIMEDOUT);
    CHECK_OK(pshm_rwlock_timedrdlock(rw, &d)); /* a free slot: no wait */
    CHECK_OK(pshm_rwlock_unlock(rw));
    ASTORE(&RS->flag, 1);
    CHECK_EQ(th_wait(r1, 10000), 0);
    CHECK_EQ(th_wait(r2, 10000), 0);
    CHECK_OK(pshm_rwlock_trywrlock(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_destroy(rw));
    CHECK_ERR(pshm_rwlock_rdlock(rw), -PSHM_EBADFORMAT);
}

TEST(rwlock_dead_reader_is_released_and_reported_once)
{
    RS = th_shared(sizeof *RS);
    pshm_rwlock *rw;

    CHECK_OK(pshm_rwlock_init(RS->rw, sizeof RS->rw, &rw));
    pid_t r = th_fork(rw_read_hold, (void *)1);
    CHECK(until_ge(&RS->n, 1, 10000));
    CHECK_ERR(pshm_rwlock_trywrlock(rw), -EBUSY);
    kill_wait(r);
    CHECK_ERR(pshm_rwlock_wrlock(rw), -PSHM_EREADERDEAD);
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_wrlock(rw)); /* once */
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_rdlock(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
}

TEST(rwlock_dead_writer_marks_it_until_repaired)
{
    RS = th_shared(sizeof *RS);
    pshm_rwlock *rw;
    pshm_sync_info in;
    pshm_sync_info_init(&in);

    CHECK_OK(pshm_rwlock_init(RS->rw, sizeof RS->rw, &rw));
    pid_t w = th_fork(rw_write_half_and_die, NULL);
    CHECK(until_ge(&RS->n, 1, 10000));
    CHECK_ERR(pshm_rwlock_tryrdlock(rw), -EBUSY);
    kill_wait(w);
    /* readers are told, every time, until a writer repairs */
    CHECK_ERR(pshm_rwlock_rdlock(rw), -PSHM_EOWNERDEAD);
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_ERR(pshm_rwlock_tryrdlock(rw), -PSHM_EOWNERDEAD);
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_sync_stat_mem(RS->rw, sizeof RS->rw, &in));
    CHECK_EQ(in.inconsistent, 1);
    CHECK_ERR(pshm_rwlock_consistent(rw), -EPERM); /* not the writer */
    CHECK_ERR(pshm_rwlock_wrlock(rw), -PSHM_EOWNERDEAD);
    RS->data[0] = 0;
    CHECK_OK(pshm_rwlock_consistent(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_rdlock(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_wrlock(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
}

#define RW_ROUNDS 3000

static int rw_writer(void *arg)
{
    pshm_rwlock *rw = (pshm_rwlock *)RS->rw;
    uint64_t id = (uint64_t)(intptr_t)arg;
    for (int k = 0; k < RW_ROUNDS; k++) {
        if (pshm_rwlock_wrlock(rw) != 0)
            return 2;
        for (int i = 0; i < 8; i++) {
            RS->data[i] = id * 1000000 + (uint64_t)k;
            if (i == 3)
                sched_yield();
        }
        RS->writes++;
        pshm_rwlock_unlock(rw);
    }
    return 0;
}

static int rw_reader(void *arg)
{
    pshm_rwlock *rw = (pshm_rwlock *)RS->rw;
    (void)arg;
    for (int k = 0; k < 2 * RW_ROUNDS; k++) {
        int r = (k & 1) ? pshm_rwlock_rdlock(rw) : pshm_rwlock_tryrdlock(rw);
        if (r == -EBUSY)
            continue;
        if (r != 0)
            return 2;
        uint64_t v = RS->data[0];
        for (int i = 1; i < 8; i++)
            if (RS->data[i] != v)
                AINC(&RS->bad);
        AINC(&RS->reads);
        pshm_rwlock_unlock(rw);
    }
    return 0;
}

static void *rw_reader_thread(void *arg)
{
    return (void *)(intptr_t)rw_reader(arg);
}

static void *rw_writer_thread(void *arg)
{
    return (void *)(intptr_t)rw_writer(arg);
}

/* Writers and readers in processes and threads: readers never see a torn
 * update; more reader threads than slots exercise shared slots. */
TEST_TIMEOUT(rwlock_readers_and_writers_see_consistent_data, 120)
{
    RS = th_shared(sizeof *RS);
    pshm_rwlock *rw;
    pid_t p[5];
    pthread_t t[PSHM_RWLOCK_READERS + 4];
    int nt = PSHM_RWLOCK_READERS + 4;
    void *rv;

    CHECK_OK(pshm_rwlock_init(RS->rw, sizeof RS->rw, &rw));
    p[0] = th_fork(rw_writer, (void *)1);
    p[1] = th_fork(rw_writer, (void *)2);
    for (int i = 2; i < 5; i++)
        p[i] = th_fork(rw_reader, NULL);
    for (int i = 0; i < nt - 1; i++)
        CHECK_OK(pthread_create(&t[i], NULL, rw_reader_thread, NULL));
    CHECK_OK(pthread_create(&t[nt - 1], NULL, rw_writer_thread, (void *)3));
    for (int i = 0; i < 5; i++)
        CHECK_EQ(th_wait(p[i], 100000), 0);
    for (int i = 0; i < nt; i++) {
        CHECK_OK(pthread_join(t[i], &rv));
        CHECK(rv == NULL);
    }
    CHECK_EQ(RS->bad, 0);
    CHECK_EQ(RS->writes, 3 * RW_ROUNDS);
    CHECK(RS->reads > 0);
}

/* ------------------------------------------------------------- barrier */

#define BPARTIES 4
#define BPHASES 300

typedef struct bshared {
    char bar[PSHM_BARRIER_SIZE(64)] __attribute__((aligned(64)));
    uint64_t arrived[BPHASES];
    uint64_t serial[BPHASES];
    uint64_t order[BPHASES][BPARTIES]; /* how many waits got each arrival index */
    uint64_t n, flag, broken, bad;
} bshared;

static bshared *BS;

static int bar_worker(void *arg)
{
    pshm_barrier *b = (pshm_barrier *)BS->bar;
    (void)arg;
    if (pshm_barrier_join(b) != 0)
        return 2;
    for (int k = 0; k < BPHASES; k++) {
        AINC(&BS->arrived[k]);
        unsigned arrival = BPARTIES;
        int r = pshm_barrier_wait(b, &arrival);
        if (r < 0)
            return 3;
        if (arrival >= BPARTIES)
            return 4;
        AINC(&BS->order[k][arrival]);
        if (arrival == BPARTIES - 1)
            AINC(&BS->serial[k]);
        /* everyone arrived at phase k before anyone left it */
        if (ALOAD(&BS->arrived[k]) != BPARTIES)
            AINC(&BS->bad);
    }
    return 0;
}

static void *bar_thread(void *arg)
{
    return (void *)(intptr_t)bar_worker(arg);
}

TEST_TIMEOUT(barrier_phases_across_processes_and_threads, 120)
{
    BS = th_shared(sizeof *BS);
    pshm_barrier *b;
    pid_t p[2];
    pthread_t t[2];
    void *rv;

    CHECK_OK(pshm_barrier_init(BS->bar, PSHM_BARRIER_SIZE(BPARTIES), BPARTIES, &b));
    CHECK_OK(pshm_barrier_attach(BS->bar, PSHM_BARRIER_SIZE(BPARTIES), &b));
    p[0] = th_fork(bar_worker, NULL);
    p[1] = th_fork(bar_worker, NULL);
    CHECK_OK(pthread_create(&t[0], NULL, bar_thread, NULL));
    CHECK_OK(pthread_create(&t[1], NULL, bar_thread, NULL));
    for (int i = 0; i < 2; i++)
        CHECK_EQ(th_wait(p[i], 100000), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(pthread_join(t[i], &rv));
        CHECK(rv == NULL);
    }
    CHECK_EQ(BS->bad, 0);
    for (int k = 0; k < BPHASES; k++) {
        CHECK_EQ(BS->serial[k], 1);
        for (int i = 0; i < BPARTIES; i++)
            CHECK_EQ(BS->order[k][i], 1); /* each arrival index once per phase */
    }
}

static int bar_waiter(void *arg)
{
    pshm_barrier *b = (pshm_barrier *)BS->bar;
    if (pshm_barrier_join(b) != 0)
        return 2;
    AINC(&BS->n);
    if (arg)
        pause(); /* joined, never arrives */
    int r = pshm_barrier_wait(b, NULL);
    return r == -PSHM_EBROKEN ? 10 : r < 0 ? 3 : 0;
}

TEST(barrier_dead_participant_breaks_it_and_reset_recovers)
{
    BS = th_shared(sizeof *BS);
    pshm_barrier *b;
    pshm_sync_info in;
    pshm_sync_info_init(&in);
    char desc[128];

    CHECK_OK(pshm_barrier_init(BS->bar, PSHM_BARRIER_SIZE(3), 3, &b));
    pid_t lazy = th_fork(bar_waiter, (void *)1);
    pid_t w = th_fork(bar_waiter, NULL);
    CHECK(until_ge(&BS->n, 2, 10000));
    wait_sleeping(w);
    CHECK_OK(pshm_sync_stat_mem(BS->bar, sizeof BS->bar, &in));
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    CHECK_STR(desc, "barrier 1/3 members=2");
    kill_wait(lazy);
    long long t0 = now_ms();
    CHECK_ERR(pshm_barrier_wait(b, NULL), -PSHM_EBROKEN); /* noticed within a recheck or two */
    CHECK(now_ms() - t0 < 5000);
    CHECK_EQ(th_wait(w, 10000), 10);
    CHECK_ERR(pshm_barrier_wait(b, NULL), -PSHM_EBROKEN); /* stays broken */
    CHECK_OK(pshm_sync_stat_mem(BS->bar, sizeof BS->bar, &in));
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    CHECK_STR(desc, "barrier 2/3 broken members=3 dead=2");
    CHECK_OK(pshm_barrier_reset(b));
    CHECK_OK(pshm_sync_stat_mem(BS->bar, sizeof BS->bar, &in));
    CHECK_EQ(in.members, 1); /* only this thread is left */
    BS->n = 0;
    pid_t w1 = th_fork(bar_waiter, NULL), w2 = th_fork(bar_waiter, NULL);
    CHECK(until_ge(&BS->n, 2, 10000));
    CHECK_OK(pshm_barrier_wait(b, NULL));
    CHECK_EQ(th_wait(w1, 10000), 0);
    CHECK_EQ(th_wait(w2, 10000), 0);
}

static int bar_trywaiter(void *arg)
{
    pshm_barrier *b = (pshm_barrier *)BS->bar;
    (void)arg;
    AINC(&BS->n);
    return pshm_barrier_wait(b, NULL) == 0 ? 0 : 2;
}

TEST(barrier_timeout_trywait_join_leave)
{
    BS = th_shared(sizeof *BS);
    pshm_barrier *b;

    CHECK_OK(pshm_barrier_init(BS->bar, PSHM_BARRIER_SIZE(2), 2, &b));
    CHECK_ERR(pshm_barrier_trywait(b, NULL), -EAGAIN);
    CHECK_ERR(pshm_barrier_leave(b), 0);
    CHECK_ERR(pshm_barrier_leave(b), -ENOENT);
    struct timespec d = in_ms(50);
    CHECK_ERR(pshm_barrier_timedwait(b, &d, NULL), -ETIMEDOUT);
    CHECK_ERR(pshm_barrier_trywait(b, NULL), -PSHM_EBROKEN);
    CHECK_OK(pshm_barrier_reset(b));
    pid_t w = th_fork(bar_trywaiter, NULL);
    wait_sleeping(w);
    unsigned arrival = 7;
    CHECK_OK(pshm_barrier_trywait(b, &arrival));
    CHECK_EQ(arrival, 1); /* the waiter came first */
    CHECK_EQ(th_wait(w, 10000), 0);
    /* a third thread finds no place */
    CHECK_OK(pshm_barrier_init(BS->bar, PSHM_BARRIER_SIZE(1), 1, &b));
    arrival = 7;
    CHECK_OK(pshm_barrier_wait(b, &arrival));
    CHECK_EQ(arrival, 0); /* count 1: always first and last */
    CHECK_EQ(th_wait(th_fork(bar_trywaiter, NULL), 5000), 2);
}

/* --------------------------------------------------------------- event */

typedef struct eshared {
    char ev[PSHM_EVENT_SIZE] __attribute__((aligned(64)));
    uint64_t n, got;
} eshared;

static eshared *ES;

static int ev_waiter(void *arg)
{
    pshm_event *e = (pshm_event *)ES->ev;
    (void)arg;
    AINC(&ES->n);
    if (pshm_event_wait(e) != 0)
        return 2;
    AINC(&ES->got);
    return 0;
}

TEST(event_auto_and_manual_reset)
{
    ES = th_shared(sizeof *ES);
    pshm_event *e;
    pid_t w[3];
    pshm_sync_info in;
    pshm_sync_info_init(&in);
    char desc[128];

    /* auto: stays set until one waiter takes it */
    CHECK_OK(pshm_event_init(ES->ev, sizeof ES->ev, 0, &e));
    CHECK_ERR(pshm_event_trywait(e), -EAGAIN);
    CHECK_OK(pshm_event_set(e));
    CHECK_OK(pshm_event_set(e)); /* no count: still one */
    CHECK_OK(pshm_event_wait(e));
    CHECK_ERR(pshm_event_trywait(e), -EAGAIN);
    struct timespec d = in_ms(20);
    CHECK_ERR(pshm_event_timedwait(e, &d), -ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        w[i] = th_fork(ev_waiter, NULL);
    for (int i = 0; i < 3; i++)
        wait_sleeping(w[i]);
    CHECK_OK(pshm_sync_stat_mem(ES->ev, sizeof ES->ev, &in));
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, NULL));
    CHECK_STR(desc, "event auto unset waiters=3");
    for (int k = 1; k <= 3; k++) {
        CHECK_OK(pshm_event_set(e));
        CHECK(until_ge(&ES->got, (uint64_t)k, 10000));
        usleep(20000);
        CHECK_EQ(ALOAD(&ES->got), k); /* exactly one per set */
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_wait(w[i], 10000), 0);

    /* manual: releases everyone and stays set until reset */
    ES->got = 0;
    CHECK_OK(pshm_event_init(ES->ev, sizeof ES->ev, PSHM_EVENT_MANUAL, &e));
    for (int i = 0; i < 3; i++)
        w[i] = th_fork(ev_waiter, NULL);
    for (int i = 0; i < 3; i++)
        wait_sleeping(w[i]);
    CHECK_OK(pshm_event_set(e));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(th_wait(w[i], 10000), 0);
    CHECK_OK(pshm_event_wait(e));
    CHECK_OK(pshm_event_trywait(e));
    CHECK_OK(pshm_event_reset(e));
    CHECK_ERR(pshm_event_trywait(e), -EAGAIN);
    CHECK_OK(pshm_event_init(ES->ev, sizeof ES->ev, PSHM_EVENT_MANUAL | PSHM_EVENT_SET, &e));
    CHECK_OK(pshm_event_trywait(e));
    CHECK_ERR(pshm_event_init(ES->ev, sizeof ES->ev, 8, &e), -EINVAL);
}

/* ------------------------------------------------------- named objects */

/* An exec'd process (another address space layout) uses each named object. */
HELPER(use_named)
{
    const char *base = argv[0];
    char name[256];
    pshm_sync *h;
    (void)argc;

    snprintf(name, sizeof name, "%s_m", base);
    if (pshm_sync_open(name, PSHM_SYNC_MUTEX, NULL, &h) != 0 ||
        pshm_mutex_lock(pshm_sync_mutex(h)) != 0 || pshm_mutex_unlock(pshm_sync_mutex(h)) != 0 ||
        pshm_sync_close(h) != 0)
        return 2;
    snprintf(name, sizeof name, "%s_s", base);
    if (pshm_sync_open(name, PSHM_SYNC_SEM, NULL, &h) != 0 || pshm_sem_post(pshm_sync_sem(h)) != 0 ||
        pshm_sync_close(h) != 0)
        return 3;
    snprintf(name, sizeof name, "%s_e", base);
    if (pshm_sync_open(name, PSHM_SYNC_EVENT, NULL, &h) != 0 ||
        pshm_event_set(pshm_sync_event(h)) != 0 || pshm_sync_close(h) != 0)
        return 4;
    snprintf(name, sizeof name, "%s_rw", base);
    if (pshm_sync_open(name, PSHM_SYNC_NONE, NULL, &h) != 0 || !pshm_sync_rwlock(h) ||
        pshm_rwlock_wrlock(pshm_sync_rwlock(h)) != 0 ||
        pshm_rwlock_unlock(pshm_sync_rwlock(h)) != 0 || pshm_sync_close(h) != 0)
        return 5;
    snprintf(name, sizeof name, "%s_c", base);
    if (pshm_sync_open(name, PSHM_SYNC_COND, NULL, &h) != 0 ||
        pshm_cond_broadcast(pshm_sync_cond(h)) != 0 || pshm_sync_close(h) != 0)
        return 6;
    snprintf(name, sizeof name, "%s_b", base);
    if (pshm_sync_open(name, PSHM_SYNC_BARRIER, NULL, &h) != 0 ||
        pshm_barrier_wait(pshm_sync_barrier(h), NULL) != 0 || pshm_sync_close(h) != 0)
        return 7;
    return 0;
}

TEST(named_objects_of_every_kind)
{
    char base[128], name[160];
    pshm_sync *hm, *hs, *he, *hrw, *hc, *hb, *h2;
    pshm_sync_options o;
    pshm_sync_info in;
    char desc[128];
    size_t len = 0;

    pshm_sync_info_init(&in);
    snprintf(base, sizeof base, "%s", th_name("named"));
    snprintf(name, sizeof name, "%s_m", base);
    CHECK_ERR(pshm_sync_create(name, PSHM_SYNC_NONE, NULL, &hm), -EINVAL);
    CHECK_ERR(pshm_sync_create(name, (pshm_sync_kind)99, NULL, &hm), -EINVAL);
    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_MUTEX, NULL, &hm));
    CHECK_ERR(pshm_sync_create(name, PSHM_SYNC_MUTEX, NULL, &h2), -EEXIST);
    CHECK(h2 == NULL);
    CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_SEM, NULL, &h2), -PSHM_EKIND);
    CHECK(pshm_sync_sem(hm) == NULL); /* typed getters: NULL for another kind */
    CHECK(pshm_sync_mutex(NULL) == NULL);
    pshm_mutex *m = pshm_sync_mutex(hm);
    CHECK(m != NULL);
    CHECK_STR(pshm_block_name(pshm_sync_block(hm)), name);
    CHECK(pshm_sync_block(NULL) == NULL);
    CHECK_OK(pshm_sync_stat(name, &in));
    CHECK_EQ(in.named, 1);
    CHECK_EQ(in.kind, PSHM_SYNC_MUTEX);
    CHECK_OK(pshm_sync_describe(&in, desc, sizeof desc, &len));
    CHECK_STR(desc, "mutex unlocked waiters=0");
    CHECK_EQ(len, strlen(desc));
    CHECK_OK(pshm_sync_describe(&in, NULL, 0, &len)); /* asking for the length */
    CHECK_EQ(len, strlen(desc));
    CHECK_ERR(pshm_sync_describe(&in, desc, 6, &len), -ERANGE);
    CHECK_STR(desc, "mutex");
    CHECK_OK(pshm_mutex_lock(m));
    CHECK_OK(pshm_sync_fstat(hm, &in));
    CHECK_EQ(in.locked, 1);
    CHECK_ERR(pshm_sync_close(hm), -EBUSY); /* held here: keep it mapped */
    CHECK_OK(pshm_mutex_unlock(m));
    CHECK_OK(pshm_sync_close(hm));

    pshm_sync_options_init(&o);
    snprintf(name, sizeof name, "%s_s", base);
    o.flags = PSHM_EVENT_SET; /* not a sem flag */
    CHECK_ERR(pshm_sync_create(name, PSHM_SYNC_SEM, &o, &hs), -EINVAL);
    o.flags = 0;
    o.value = PSHM_SEM_VALUE_MAX + 1u;
    CHECK_ERR(pshm_sync_create(name, PSHM_SYNC_SEM, &o, &hs), -EINVAL);
    o.value = 0;
    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_SEM, &o, &hs));
    CHECK_OK(pshm_sync_close(hs));
    snprintf(name, sizeof name, "%s_e", base);
    o.flags = PSHM_EVENT_MANUAL;
    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_EVENT, &o, &he));
    o.flags = 0;
    snprintf(name, sizeof name, "%s_rw", base);
    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_RWLOCK, NULL, &hrw));
    CHECK_OK(pshm_rwlock_rdlock(pshm_sync_rwlock(hrw)));
    CHECK_ERR(pshm_sync_close(hrw), -EBUSY);
    CHECK_OK(pshm_rwlock_unlock(pshm_sync_rwlock(hrw)));
    snprintf(name, sizeof name, "%s_c", base);
    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_COND, NULL, &hc));
    snprintf(name, sizeof name, "%s_b", base);
    CHECK_ERR(pshm_sync_create(name, PSHM_SYNC_BARRIER, NULL, &hb), -EINVAL); /* no count */
    o.count = 2;
    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_BARRIER, &o, &hb));
    /* open_existing attaches, keeping the existing parameters */
    o.open_existing = 1;
    o.count = 7;
    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_BARRIER, &o, &h2));
    CHECK_OK(pshm_sync_stat(name, &in));
    CHECK_EQ(in.count, 2);
    CHECK_OK(pshm_sync_close(h2));
    o.readonly = 1;
    CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_BARRIER, &o, &h2), -EINVAL);

    pid_t h = th_spawn("use_named", base, NULL);
    CHECK_OK(pshm_barrier_wait(pshm_sync_barrier(hb), NULL));
    CHECK_EQ(th_wait(h, 20000), 0);
    CHECK_OK(pshm_event_wait(pshm_sync_event(he)));
    snprintf(name, sizeof name, "%s_s", base);
    CHECK_OK(pshm_sync_open(name, PSHM_SYNC_NONE, NULL, &hs));
    CHECK_OK(pshm_sem_trywait(pshm_sync_sem(hs)));
    CHECK_OK(pshm_sync_close(hs));
    CHECK_OK(pshm_sync_close(he));
    CHECK_OK(pshm_sync_close(hrw));
    CHECK_OK(pshm_sync_close(hc));
    CHECK_OK(pshm_sync_close(hb));
    CHECK_OK(pshm_sync_close(NULL));
    const char *sfx[] = {"_m", "_s", "_e", "_rw", "_c", "_b"};
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "%s%s", base, sfx[i]);
        CHECK_OK(pshm_unlink(name));
    }
    CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_MUTEX, NULL, &h2), -ENOENT);
}

TEST(named_auto_lifetime)
{
    const char *name = th_name("auto");
    pshm_sync_options o;
    pshm_sync *s, *s2;

    pshm_sync_options_init(&o);
    o.lifetime = PSHM_AUTO;
    o.mode = 0640;
    o.value = 1;
    o.flags = PSHM_SEM_UNDO;
    if (pshm_sync_create(name, PSHM_SYNC_SEM, &o, &s) == -PSHM_ENOMARK)
        th_skip("lifetimes need tmpfs xattrs here");
    CHECK_OK(pshm_sync_open(name, PSHM_SYNC_SEM, NULL, &s2));
    CHECK_OK(pshm_sem_wait(pshm_sync_sem(s2)));
    CHECK_OK(pshm_sync_close(s));
    CHECK(th_exists(name));
    CHECK_OK(pshm_sync_close(s2));
    CHECK(!th_exists(name));
}

/* Write a block by hand, as a broken or foreign writer would. */
static void raw_block(const char *name, size_t size, void (*fill)(pshm__sync_hdr *h, void *ud), void *ud)
{
    pshm_block *b;
    CHECK_OK(pshm_block_create(name, size, NULL, &b));
    if (fill)
        fill(pshm_block_data(b), ud);
    CHECK_OK(pshm_block_close(b));
}

static void fill_valid(pshm__sync_hdr *h, void *ud)
{
    pshm_mutex *m;
    (void)ud;
    h->magic = PSHM__SYNC_HDR_MAGIC;
    h->version = PSHM__SYNC_VERSION;
    h->kind = PSHM_SYNC_MUTEX;
    h->abi = pshm__sync_abi();
    h->obj_off = PSHM__SYNC_HDR_SIZE;
    h->obj_size = PSHM_MUTEX_SIZE;
    CHECK_OK(pshm_mutex_init((char *)h + PSHM__SYNC_HDR_SIZE, PSHM_MUTEX_SIZE, &m));
    h->state = PSHM__HS_READY;
}

typedef struct corrupt {
    size_t off;
    uint32_t val;
    int width;
} corrupt;

static void fill_corrupt(pshm__sync_hdr *h, void *ud)
{
    corrupt *c = ud;
    fill_valid(h, NULL);
    if (c->width == 2)
        memcpy((char *)h + c->off, &(uint16_t){(uint16_t)c->val}, 2);
    else
        memcpy((char *)h + c->off, &c->val, 4);
}

static int child_noop(void *arg)
{
    (void)arg;
    return 0;
}

TEST(named_headers_are_checked)
{
    const char *name = th_name("hdr");
    pshm_sync *m;
    pshm_sync_options o;
    pshm_sync_info in;
    pshm_sync_info_init(&in);
    struct {
        corrupt c;
        int want;
    } cases[] = {
        {{offsetof(pshm__sync_hdr, magic), 0x12345678, 4}, -PSHM_EKIND},
        {{offsetof(pshm__sync_hdr, version), PSHM__SYNC_VERSION + 1, 2}, -PSHM_EVERSION},
        {{offsetof(pshm__sync_hdr, abi), 0x1234, 4}, -PSHM_EABI},
        {{offsetof(pshm__sync_hdr, kind), PSHM_SYNC_SEM, 2}, -PSHM_EKIND},
        {{offsetof(pshm__sync_hdr, obj_off), 8, 4}, -PSHM_EBADFORMAT},
        {{offsetof(pshm__sync_hdr, obj_size), 1u << 30, 4}, -PSHM_EBADFORMAT},
        {{offsetof(pshm__sync_hdr, obj_size), 8, 4}, -PSHM_EBADFORMAT},
        {{offsetof(pshm__sync_hdr, state), 7, 4}, -PSHM_EBADFORMAT},
        {{PSHM__SYNC_HDR_SIZE, 0, 4}, -PSHM_EBADFORMAT}, /* the object's tag */
    };

    raw_block(name, PSHM__SYNC_HDR_SIZE + PSHM_MUTEX_SIZE, fill_valid, NULL);
    CHECK_OK(pshm_sync_open(name, PSHM_SYNC_MUTEX, NULL, &m));
    CHECK_OK(pshm_mutex_lock(pshm_sync_mutex(m)));
    CHECK_OK(pshm_mutex_unlock(pshm_sync_mutex(m)));
    CHECK_OK(pshm_sync_close(m));
    CHECK_OK(pshm_unlink(name));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_block(name, PSHM__SYNC_HDR_SIZE + PSHM_MUTEX_SIZE, fill_corrupt, &cases[i].c);
        CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_MUTEX, NULL, &m), cases[i].want);
        CHECK(m == NULL);
        int r = pshm_sync_stat(name, &in);
        CHECK(r < 0);
        CHECK_OK(pshm_unlink(name));
    }
    /* too small for a header: not a sync object */
    raw_block(name, 10, NULL, NULL);
    CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_MUTEX, NULL, &m), -PSHM_EKIND);
    CHECK_OK(pshm_unlink(name));
    /* zeros: nobody is making it - given up after the timeout */
    pshm_sync_options_init(&o);
    o.open_timeout_ms = 50;
    raw_block(name, 4096, NULL, NULL);
    CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_MUTEX, &o, &m), -PSHM_EKIND);
    CHECK_ERR(pshm_sync_stat(name, &in), -PSHM_EKIND);
    /* a live creator still initialising: time out; a dead one: not recoverable */
    pshm_block *b;
    CHECK_OK(pshm_block_open(name, NULL, &b));
    pshm__sync_hdr *h = pshm_block_data(b);
    h->magic = PSHM__SYNC_HDR_MAGIC;
    h->initialiser = 0;
    h->state = PSHM__HS_INITIALISING;
    CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_MUTEX, &o, &m), -ETIMEDOUT);
    CHECK_ERR(pshm_sync_stat(name, &in), -EAGAIN);
    pid_t dead = th_fork(child_noop, NULL);
    CHECK_EQ(th_wait(dead, 5000), 0);
    h->initialiser = (uint64_t)dead << 32;
    CHECK_ERR(pshm_sync_open(name, PSHM_SYNC_MUTEX, &o, &m), -PSHM_ENOTRECOVERABLE);
    CHECK_OK(pshm_block_close(b));
    CHECK_OK(pshm_unlink(name));
}

/* ------------------------------------------------------ SIGKILL at random */

/*
 * A crew of worker processes loops on one primitive; each bumps its own
 * progress counter per completed operation and checks what it can of the
 * invariants (a worker that finds one broken exits non-zero). The test
 * kills a random worker at a random moment - holding, waiting, or between -
 * starts a replacement, and then requires every worker to make progress
 * within PROGRESS_MS: a death that blocked a survivor fails the test there
 * and then (the generous harness timeouts only leave room for PSHM_SOAK).
 */
#define MAXW 8
#define PROGRESS_MS 20000

typedef struct crew_shared {
    uint64_t progress[MAXW];
    uint64_t stop, recovered, told, bad, kills;
    uint64_t a, b;             /* mutex-protected pair: a == b outside the lock */
    uint64_t data[8];          /* rwlock-protected: all equal outside a write */
    uint64_t head, tail;       /* cond-protected queue */
    uint64_t go, broken[MAXW]; /* barrier */
    uint64_t inwin[MAXW];      /* 1 while the worker is inside the storm's critical window */
    uint64_t win_kills;        /* kills that landed there (outside kills and armed points) */
    int64_t pending[MAXW];     /* sem: +1 while posting, -1 while waiting */
    int64_t amb_post, amb_wait; /* sem: operations of killed workers that may or may not have happened */
    uint64_t posted, taken;    /* sem: operations known done */
    char m[PSHM_MUTEX_SIZE] __attribute__((aligned(64)));
    char c1[PSHM_COND_SIZE] __attribute__((aligned(64)));
    char c2[PSHM_COND_SIZE] __attribute__((aligned(64)));
    char sem[PSHM_SEM_UNDO_SIZE] __attribute__((aligned(64)));
    char ev[PSHM_EVENT_SIZE] __attribute__((aligned(64)));
    char rw[PSHM_RWLOCK_SIZE] __attribute__((aligned(64)));
    char bar[PSHM_BARRIER_SIZE(MAXW)] __attribute__((aligned(64)));
} crew_shared;

static crew_shared *CS;

typedef struct crew {
    int n;
    pid_t pid[MAXW];
    int (*fn)(void *);
    const char *point; /* a fault point inside the library, in the window */
    int armed;         /* kills made by arming it */
} crew;

static void crew_start(crew *c, int i)
{
    c->pid[i] = th_fork(c->fn, (void *)(intptr_t)i);
}

/* A worker that ended by itself ended badly. */
static void crew_check(crew *c)
{
    th_check_workers(c->pid, c->n);
}

/* Every worker completes another operation within PROGRESS_MS. */
static void crew_progress(crew *c)
{
    th_await_progress(CS->progress, c->pid, c->n, PROGRESS_MS);
}

/* What a killed worker leaves: whether it died in the window, and (sem)
 * the operation it may or may not have done. */
static void crew_account(int i, int in_window)
{
    if (in_window || ALOAD(&CS->inwin[i]))
        AINC(&CS->win_kills);
    ASTORE(&CS->inwin[i], 0);
    if (CS->pending[i] > 0)
        CS->amb_post++;
    else if (CS->pending[i] < 0)
        CS->amb_wait++;
    CS->pending[i] = 0;
}

static void crew_kill_one(crew *c, int i)
{
    kill(c->pid[i], SIGKILL);
    int code = th_wait(c->pid[i], 10000);
    if (code != 128 + SIGKILL)
        th_fail(__FILE__, __LINE__, "worker %d ended with %d before the kill", i, code);
    AINC(&CS->kills);
    crew_account(i, 0);
}

static crew *ARMED;
static int armed_worker(void *arg)
{
    th_rnd_worker(ALOAD(&CS->kills));
    th_arm(ARMED->point, th_rnd() % 64);
    return ARMED->fn(arg);
}

/* Replace worker i by one armed to die at the crew's fault point - inside
 * the library, in the window - and wait until it has. */
static void crew_kill_armed(crew *c, int i)
{
    crew_kill_one(c, i);
    ARMED = c;
    th_died_at(th_fork(armed_worker, (void *)(intptr_t)i), c->point, PROGRESS_MS);
    AINC(&CS->kills);
    crew_account(i, 1);
    c->armed++;
}

/* The storm's kills landed in its window often enough to mean something:
 * at least `floor_pct` percent of them, and every armed one. */
static void crew_window_floor(crew *c, int floor_pct)
{
    fprintf(stderr, "    in the window: %llu of %llu kills (%d armed at %s)\n",
            (unsigned long long)CS->win_kills, (unsigned long long)CS->kills, c->armed,
            c->point ? c->point : "-");
    CHECK(CS->win_kills * 100 >= CS->kills * (uint64_t)floor_pct);
}

static void crew_run(crew *c, int kills, int max_gap_us)
{
    for (int i = 0; i < c->n; i++)
        crew_start(c, i);
    crew_progress(c);
    for (int k = 0; k < kills; k++) {
        usleep(th_rnd() % (unsigned)max_gap_us);
        int i = (int)(th_rnd() % (unsigned)c->n);
        if (c->point && k % 10 == 9)
            crew_kill_armed(c, i);
        else
            crew_kill_one(c, i);
        crew_start(c, i);
        crew_check(c);
        crew_progress(c);
    }
}

/* Stop: workers finish; those stuck waiting for a peer that stopped first
 * are killed. Whoever ended by itself must have ended well. */
static void crew_stop(crew *c)
{
    ASTORE(&CS->stop, 1);
    long long end = now_ms() + 3000;
    for (int i = 0; i < c->n; i++) {
        int st;
        pid_t r;
        while ((r = waitpid(c->pid[i], &st, WNOHANG)) == 0 && now_ms() < end)
            usleep(500);
        if (r == 0) {
            kill(c->pid[i], SIGKILL);
            waitpid(c->pid[i], &st, 0);
            crew_account(i, 0);
            continue;
        }
        CHECK(WIFEXITED(st));
        CHECK_EQ(WEXITSTATUS(st), 0);
    }
}

static void spin(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        ;
}

/* -- mutex: holders die mid-update; the next locker repairs */

static int kw_mutex(void *arg)
{
    int me = (int)(intptr_t)arg;
    pshm_mutex *m = (pshm_mutex *)CS->m;
    while (!ALOAD(&CS->stop)) {
        struct timespec d = in_ms(1000);
        int r = (me & 1) ? pshm_mutex_lock(m) : pshm_mutex_timedlock(m, &d);
        if (r == -ETIMEDOUT)
            continue;
        if (r == -PSHM_EOWNERDEAD) {
            CS->b = CS->a;
            AINC(&CS->recovered);
            if (pshm_mutex_consistent(m) != 0)
                return 2;
        } else if (r != 0) {
            return 3;
        }
        ASTORE(&CS->inwin[me], 1); /* holding it */
        if (CS->a != CS->b)
            return 4; /* a clean lock with a torn pair: broken exclusion */
        CS->a++;
        spin(200);
        CS->b++;
        ASTORE(&CS->inwin[me], 0);
        if (pshm_mutex_unlock(m) != 0)
            return 5;
        AINC(&CS->progress[me]);
    }
    return 0;
}

TEST_TIMEOUT(kill_mutex_holders_and_waiters, 900)
{
    CS = th_shared(sizeof *CS);
    pshm_mutex *m;
    crew c = {.n = 5, .fn = kw_mutex, .point = "sync.lock.taken"};

    th_rnd_seed("kill_mutex");
    CHECK_OK(pshm_mutex_init(CS->m, sizeof CS->m, &m));
    crew_run(&c, 250 * th_soak(), 3000);
    crew_stop(&c);
    int r = pshm_mutex_trylock(m);
    if (r == -PSHM_EOWNERDEAD) {
        CS->b = CS->a;
        CHECK_OK(pshm_mutex_consistent(m));
    } else {
        CHECK_OK(r);
    }
    CHECK_EQ(CS->a, CS->b);
    CHECK(CS->recovered > 0);
    CHECK_OK(pshm_mutex_unlock(m));
    fprintf(stderr, "    kills=%llu recovered=%llu\n", (unsigned long long)CS->kills,
            (unsigned long long)CS->recovered);
    crew_window_floor(&c, 8);
}

/* -- cond: producers and consumers over a queue, killed anywhere */

#define CQ 8

static int kw_cond(void *arg)
{
    int me = (int)(intptr_t)arg, producer = me < 2;
    pshm_mutex *m = (pshm_mutex *)CS->m;
    pshm_cond *not_empty = (pshm_cond *)CS->c1, *not_full = (pshm_cond *)CS->c2;
    while (!ALOAD(&CS->stop)) {
        int r = pshm_mutex_lock(m);
        if (r == -PSHM_EOWNERDEAD) {
            /* head and tail are single stores under the lock: nothing to
             * repair, and no state correct locking cannot produce to hide */
            AINC(&CS->recovered);
            if (pshm_mutex_consistent(m) != 0)
                return 2;
        } else if (r != 0) {
            return 3;
        }
        for (;;) {
            if (ALOAD(&CS->stop))
                break;
            if (producer ? CS->tail - CS->head < CQ : CS->tail != CS->head)
                break;
            struct timespec d = in_ms(500);
            r = pshm_cond_timedwait(producer ? not_full : not_empty, m, &d);
            if (r == -PSHM_EOWNERDEAD) {
                AINC(&CS->recovered);
                if (pshm_mutex_consistent(m) != 0)
                    return 4;
            } else if (r != 0 && r != -ETIMEDOUT) {
                return 5;
            }
        }
        if (ALOAD(&CS->stop)) {
            pshm_mutex_unlock(m);
            break;
        }
        ASTORE(&CS->inwin[me], 1); /* holding the mutex, changing the queue */
        if (CS->tail < CS->head || CS->tail - CS->head > CQ)
            return 7; /* 0 <= tail - head <= capacity, always */
        if (producer)
            CS->tail++;
        else
            CS->head++;
        if (pshm_cond_signal(producer ? not_empty : not_full) != 0)
            return 8;
        ASTORE(&CS->inwin[me], 0);
        if (pshm_mutex_unlock(m) != 0)
            return 6;
        AINC(&CS->progress[me]);
    }
    return 0;
}

TEST_TIMEOUT(kill_cond_producers_and_consumers, 900)
{
    CS = th_shared(sizeof *CS);
    pshm_mutex *m;
    pshm_cond *c1, *c2;
    crew c = {.n = 5, .fn = kw_cond, .point = "sync.lock.taken"};

    th_rnd_seed("kill_cond");
    CHECK_OK(pshm_mutex_init(CS->m, sizeof CS->m, &m));
    CHECK_OK(pshm_cond_init(CS->c1, sizeof CS->c1, &c1));
    CHECK_OK(pshm_cond_init(CS->c2, sizeof CS->c2, &c2));
    crew_run(&c, 200 * th_soak(), 3000);
    crew_stop(&c);
    fprintf(stderr, "    kills=%llu recovered=%llu\n", (unsigned long long)CS->kills,
            (unsigned long long)CS->recovered);
    CHECK(CS->tail >= CS->head && CS->tail - CS->head <= CQ);
    crew_window_floor(&c, 3);
}

/* -- sem: posters and waiters; a woken waiter killed before it takes the
 * unit must not strand the others */

static int kw_sem(void *arg)
{
    int me = (int)(intptr_t)arg;
    pshm_sem *s = (pshm_sem *)CS->sem;
    while (!ALOAD(&CS->stop)) {
        if (me < 2) {
            unsigned v;
            if (pshm_sem_getvalue(s, &v) == 0 && v > 16) {
                usleep(50);
                continue;
            }
            CS->pending[me] = 1;
            ASTORE(&CS->inwin[me], 1);
            if (pshm_sem_post(s) != 0)
                return 2;
            AINC(&CS->posted);
            CS->pending[me] = 0;
            ASTORE(&CS->inwin[me], 0);
        } else {
            struct timespec d = in_ms(500);
            CS->pending[me] = -1;
            ASTORE(&CS->inwin[me], 1);
            int r = (me & 1) ? pshm_sem_wait(s) : pshm_sem_timedwait(s, &d);
            if (r == 0)
                AINC(&CS->taken);
            CS->pending[me] = 0;
            ASTORE(&CS->inwin[me], 0);
            if (r == -ETIMEDOUT)
                continue;
            if (r != 0)
                return 3;
        }
        AINC(&CS->progress[me]);
    }
    return 0;
}

TEST_TIMEOUT(kill_sem_posters_and_waiters, 900)
{
    CS = th_shared(sizeof *CS);
    pshm_sem *s;
    crew c = {.n = 6, .fn = kw_sem};

    th_rnd_seed("kill_sem");
    CHECK_OK(pshm_sem_init(CS->sem, PSHM_SEM_SIZE, 0, 0, &s));
    crew_run(&c, 150 * th_soak(), 3000);
    crew_stop(&c);
    /* Units are conserved: the value is what the posts made minus what the
     * waits took, give or take the operations killed in the middle. */
    unsigned v;
    CHECK_OK(pshm_sem_getvalue(s, &v));
    int64_t known = (int64_t)CS->posted - (int64_t)CS->taken;
    fprintf(stderr, "    posted=%llu taken=%llu value=%u in doubt: %lld posts, %lld waits\n",
            (unsigned long long)CS->posted, (unsigned long long)CS->taken, v,
            (long long)CS->amb_post, (long long)CS->amb_wait);
    CHECK((int64_t)v >= known - CS->amb_wait && (int64_t)v <= known + CS->amb_post);
    crew_window_floor(&c, 20);
}

/* -- sem with undo: holders killed while holding units; without undo the
 * units would leak and everyone would stop */

#define UNDO_UNITS 2

static int kw_sem_undo(void *arg)
{
    int me = (int)(intptr_t)arg;
    pshm_sem *s = (pshm_sem *)CS->sem;
    while (!ALOAD(&CS->stop)) {
        struct timespec d = in_ms(2000);
        int r = pshm_sem_timedwait(s, &d);
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0)
            return 2;
        ASTORE(&CS->inwin[me], 1); /* holding a unit */
        spin(2000);
        ASTORE(&CS->inwin[me], 0);
        if (pshm_sem_post(s) != 0)
            return 3;
        AINC(&CS->progress[me]);
    }
    return 0;
}

TEST_TIMEOUT(kill_sem_undo_holders, 900)
{
    CS = th_shared(sizeof *CS);
    pshm_sem *s;
    crew c = {.n = 4, .fn = kw_sem_undo, .point = "sync.sem.undo.changing"};
    unsigned v;

    th_rnd_seed("kill_sem_undo");
    CHECK_OK(pshm_sem_init(CS->sem, sizeof CS->sem, UNDO_UNITS, PSHM_SEM_UNDO, &s));
    crew_run(&c, 100 * th_soak(), 3000);
    crew_stop(&c);
    /* every unit comes home: the dead holders' ones within a recheck */
    struct timespec d = in_ms(10000);
    for (int i = 0; i < UNDO_UNITS; i++)
        CHECK_OK(pshm_sem_timedwait(s, &d));
    CHECK_ERR(pshm_sem_trywait(s), -EAGAIN);
    for (int i = 0; i < UNDO_UNITS; i++)
        CHECK_OK(pshm_sem_post(s));
    CHECK_OK(pshm_sem_getvalue(s, &v));
    CHECK_EQ(v, UNDO_UNITS);
    crew_window_floor(&c, 10);
}

/* -- rwlock: writers killed mid-write, readers killed mid-read */

static int kw_rwlock(void *arg)
{
    int me = (int)(intptr_t)arg, writer = me < 2;
    pshm_rwlock *rw = (pshm_rwlock *)CS->rw;
    uint64_t k = 0;
    while (!ALOAD(&CS->stop)) {
        struct timespec d = in_ms(1000);
        int r = writer ? ((me & 1) ? pshm_rwlock_wrlock(rw) : pshm_rwlock_timedwrlock(rw, &d))
                       : ((me & 1) ? pshm_rwlock_rdlock(rw) : pshm_rwlock_timedrdlock(rw, &d));
        if (r == -ETIMEDOUT)
            continue;
        if (r == -PSHM_EREADERDEAD)
            AINC(&CS->told);
        else if (r == -PSHM_EOWNERDEAD)
            AINC(&CS->recovered);
        else if (r != 0)
            return 2;
        ASTORE(&CS->inwin[me], 1); /* holding it */
        if (writer) {
            if (r == -PSHM_EOWNERDEAD) {
                for (int i = 1; i < 8; i++)
                    CS->data[i] = CS->data[0];
                if (pshm_rwlock_consistent(rw) != 0)
                    return 3;
            }
            k++;
            for (int i = 0; i < 8; i++) {
                CS->data[i] = ((uint64_t)me << 40) | k;
                spin(100);
            }
        } else if (r != -PSHM_EOWNERDEAD) {
            for (int i = 1; i < 8; i++)
                if (CS->data[i] != CS->data[0])
                    return 4; /* a torn write seen without being told */
            spin(500);
        }
        ASTORE(&CS->inwin[me], 0);
        if (pshm_rwlock_unlock(rw) != 0)
            return 5;
        AINC(&CS->progress[me]);
    }
    return 0;
}

TEST_TIMEOUT(kill_rwlock_readers_and_writers, 900)
{
    CS = th_shared(sizeof *CS);
    pshm_rwlock *rw;
    crew c = {.n = 6, .fn = kw_rwlock, .point = "sync.lock.taken"};

    th_rnd_seed("kill_rwlock");
    CHECK_OK(pshm_rwlock_init(CS->rw, sizeof CS->rw, &rw));
    crew_run(&c, 200 * th_soak(), 3000);
    crew_stop(&c);
    fprintf(stderr, "    kills=%llu writer-died=%llu reader-died=%llu\n",
            (unsigned long long)CS->kills, (unsigned long long)CS->recovered,
            (unsigned long long)CS->told);
    CHECK(CS->recovered + CS->told > 0);
    crew_window_floor(&c, 8);
}

/* -- event: a setter and waiters (auto reset) */

/* The setter sets the (auto-reset) event and waits until a waiter took it;
 * it never sets it again to rescue a sleeping waiter. Waiters wait without
 * a deadline. A set left untaken for EV_LOST_MS while waiters sleep is a
 * lost wake-up (a wake-up taken by a killed waiter must reach another
 * within PSHM_SYNC_RECHECK_MS). */
#define EV_LOST_MS 3000

static int kw_event(void *arg)
{
    int me = (int)(intptr_t)arg;
    pshm_event *e = (pshm_event *)CS->ev;
    while (!ALOAD(&CS->stop)) {
        if (me == 0) {
            if (pshm_event_set(e) != 0)
                return 2;
            long long t0 = now_ms();
            while (ALOAD(&e->state) != 0 && !ALOAD(&CS->stop))
                if (now_ms() - t0 > EV_LOST_MS)
                    return 4; /* set, and the waiters asleep: a lost wake-up */
                else
                    usleep(100);
        } else {
            ASTORE(&CS->inwin[me], 1); /* waiting */
            int r = pshm_event_wait(e);
            ASTORE(&CS->inwin[me], 0);
            if (r != 0)
                return 3;
        }
        AINC(&CS->progress[me]);
    }
    return 0;
}

TEST_TIMEOUT(kill_event_setter_and_waiters, 900)
{
    CS = th_shared(sizeof *CS);
    pshm_event *e;
    crew c = {.n = 5, .fn = kw_event};

    th_rnd_seed("kill_event");
    CHECK_OK(pshm_event_init(CS->ev, sizeof CS->ev, 0, &e));
    crew_run(&c, 100 * th_soak(), 3000);
    crew_stop(&c);
    crew_window_floor(&c, 20);
}

/* -- barrier: a participant killed anywhere breaks the phase for the
 * others, who must hear of it (not wait for ever); reset lets a replacement
 * in and the phases go on. */

static int kw_barrier(void *arg)
{
    int me = (int)(intptr_t)arg;
    pshm_barrier *b = (pshm_barrier *)CS->bar;
    uint64_t go = ALOAD(&CS->go);
    if (pshm_barrier_join(b) != 0)
        return 2;
    while (!ALOAD(&CS->stop)) {
        int r = pshm_barrier_wait(b, NULL);
        if (r >= 0) {
            AINC(&CS->progress[me]);
            continue;
        }
        if (r != -PSHM_EBROKEN)
            return 3;
        /* report, then wait for the test to reset and restart */
        AINC(&CS->broken[me]);
        while (ALOAD(&CS->go) == go && !ALOAD(&CS->stop))
            usleep(200);
        go = ALOAD(&CS->go);
    }
    return 0;
}

TEST_TIMEOUT(kill_barrier_participants, 900)
{
    CS = th_shared(sizeof *CS);
    pshm_barrier *b;
    crew c = {.n = 4, .fn = kw_barrier};
    int kills = 50 * th_soak();

    th_rnd_seed("kill_barrier");
    CHECK_OK(pshm_barrier_init(CS->bar, PSHM_BARRIER_SIZE(4), 4, &b));
    for (int i = 0; i < c.n; i++)
        crew_start(&c, i);
    crew_progress(&c);
    for (int k = 0; k < kills; k++) {
        uint64_t snap[MAXW];
        usleep(th_rnd() % 3000);
        int v = (int)(th_rnd() % (unsigned)c.n);
        for (int i = 0; i < c.n; i++)
            snap[i] = ALOAD(&CS->broken[i]);
        crew_kill_one(&c, v);
        /* every survivor is told, within a bounded time */
        for (int i = 0; i < c.n; i++) {
            if (i == v)
                continue;
            if (!until_ge(&CS->broken[i], snap[i] + 1, PROGRESS_MS))
                th_fail(__FILE__, __LINE__, "survivor %d never heard of the death (kill %d)", i, k);
        }
        CHECK_OK(pshm_barrier_reset(b));
        crew_start(&c, v);
        AINC(&CS->go);
        crew_check(&c);
        crew_progress(&c);
    }
    crew_stop(&c);
}
