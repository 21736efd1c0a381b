// SPDX-License-Identifier: MIT
/*
 * test_sync_promises.c - the header's promises that crash tests from outside
 * the project found broken (issue 11), and the ones of issue 11 item 2:
 * a creator killed while making a named object, a reader's death seen by a
 * writer's failed attempt, trylock through a second handle, try-variants
 * that never wait and posts that wait with a deadline.
 */
#include "harness.h"

#include "sync/sync_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct timespec in_ms(long long ms)
{
    struct timespec t;
    CHECK_OK(pshm_deadline(&t, ms));
    return t;
}

typedef struct shared {
    char obj[PSHM_SEM_UNDO_SIZE > PSHM_RWLOCK_SIZE ? PSHM_SEM_UNDO_SIZE : PSHM_RWLOCK_SIZE]
        __attribute__((aligned(64)));
    uint64_t ready, go;
    pshm_sync_kind kind;
    const char *point;
    char name[128];
} shared;
static shared *S;

static void until_ge(volatile uint64_t *p, uint64_t want)
{
    long long end = now_ms() + 10000;
    while (ALOAD(p) < want) {
        CHECK(now_ms() < end);
        usleep(200);
    }
}

/* ----------------------------------- a creator killed while making it */

static int child_create(void *arg)
{
    pshm_sync_options o;
    pshm_sync *h;
    (void)arg;
    pshm_sync_options_init(&o);
    o.value = 1;
    th_arm(S->point, 0);
    (void)pshm_sync_create(S->name, S->kind, &o, &h);
    return 1; /* not reached: the point kills it */
}

/*
 * Killed at each window of create (after it recorded itself, while it
 * builds, after it built): open says -PSHM_ENOTRECOVERABLE whatever the
 * timeout, never -ETIMEDOUT (which means "the creator lives"), and stat
 * says -EAGAIN ("still being made"), never "not a sync object".
 */
TEST(named_create_killed_creator_is_not_recoverable)
{
    static const char *points[] = {"sync.create.claimed", "sync.create.building",
                                   "sync.create.built"};
    static const pshm_sync_kind kinds[] = {PSHM_SYNC_MUTEX, PSHM_SYNC_SEM};
    S = th_shared(sizeof *S);

    for (size_t k = 0; k < 2; k++)
        for (size_t p = 0; p < 3; p++) {
            pshm_sync_options o;
            pshm_sync_info in;
            pshm_sync *h = NULL;
            snprintf(S->name, sizeof S->name, "%s", th_name(points[p] + 12));
            S->kind = kinds[k];
            S->point = points[p];
            th_died_at(th_fork(child_create, NULL), points[p], 10000);
            pshm_sync_options_init(&o);
            for (unsigned timeout = 0; timeout <= 300; timeout += 300) {
                o.open_timeout_ms = timeout;
                CHECK_ERR(pshm_sync_open(S->name, kinds[k], &o, &h), -PSHM_ENOTRECOVERABLE);
                CHECK(h == NULL);
            }
            pshm_sync_info_init(&in);
            CHECK_ERR(pshm_sync_stat(S->name, &in), -EAGAIN);
            CHECK_OK(pshm_unlink(S->name));
        }
}

/* ------------------------------------- a dead reader and a failed writer */

static int child_reader(void *arg)
{
    pshm_rwlock *rw = (pshm_rwlock *)S->obj;
    int r = pshm_rwlock_rdlock(rw);
    if (r != 0 && r != -PSHM_EREADERDEAD)
        return 2;
    AINC(&S->ready);
    if (arg == NULL)
        for (;;)
            pause(); /* dies holding it */
    until_ge(&S->go, 1);
    return pshm_rwlock_unlock(rw) == 0 ? 0 : 3;
}

static void kill_wait(pid_t pid)
{
    kill(pid, SIGKILL);
    CHECK_EQ(th_wait(pid, 10000), 128 + SIGKILL);
}

/*
 * A reader dies while another reader holds the lock; a writer's trywrlock
 * and timedwrlock fail meanwhile (the live reader). The death must still
 * be reported, to the next caller that gets the lock - in every round,
 * whichever slots the two readers took (before, a failed attempt that
 * found the dead reader first lost the news about half the time).
 */
TEST(rwlock_reader_death_survives_a_failed_write_attempt)
{
    S = th_shared(sizeof *S);
    pshm_rwlock *rw;

    for (int round = 0; round < 8; round++) {
        CHECK_OK(pshm_rwlock_init(S->obj, sizeof S->obj, &rw));
        ASTORE(&S->ready, 0);
        ASTORE(&S->go, 0);
        pid_t live = th_fork(child_reader, (void *)1);
        pid_t dead = th_fork(child_reader, NULL);
        until_ge(&S->ready, 2);
        kill_wait(dead);
        CHECK_ERR(pshm_rwlock_trywrlock(rw), -EBUSY);
        struct timespec d = in_ms(30);
        CHECK_ERR(pshm_rwlock_timedwrlock(rw, &d), -ETIMEDOUT);
        ASTORE(&S->go, 1);
        CHECK_EQ(th_wait(live, 10000), 0);
        CHECK_ERR(pshm_rwlock_wrlock(rw), -PSHM_EREADERDEAD);
        CHECK_OK(pshm_rwlock_unlock(rw));
        CHECK_OK(pshm_rwlock_wrlock(rw)); /* told once */
        CHECK_OK(pshm_rwlock_unlock(rw));
    }
}

/* Three readers die; one write lock finds them all and reports once. */
TEST(rwlock_three_dead_readers_are_reported_once)
{
    S = th_shared(sizeof *S);
    pshm_rwlock *rw;
    pid_t p[3];

    CHECK_OK(pshm_rwlock_init(S->obj, sizeof S->obj, &rw));
    for (int i = 0; i < 3; i++)
        p[i] = th_fork(child_reader, NULL);
    until_ge(&S->ready, 3);
    for (int i = 0; i < 3; i++)
        kill_wait(p[i]);
    CHECK_ERR(pshm_rwlock_wrlock(rw), -PSHM_EREADERDEAD);
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_rdlock(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
    CHECK_OK(pshm_rwlock_wrlock(rw));
    CHECK_OK(pshm_rwlock_unlock(rw));
}

/* -------------------------------------------- two handles, one process */

TEST(named_mutex_trylock_through_a_second_handle_is_ebusy)
{
    const char *name = th_name("twice");
    pshm_sync *a, *b;

    CHECK_OK(pshm_sync_create(name, PSHM_SYNC_MUTEX, NULL, &a));
    CHECK_OK(pshm_sync_open(name, PSHM_SYNC_MUTEX, NULL, &b));
    CHECK_OK(pshm_mutex_lock(pshm_sync_mutex(a)));
    CHECK_ERR(pshm_mutex_trylock(pshm_sync_mutex(b)), -EBUSY);
    CHECK_ERR(pshm_mutex_trylock(pshm_sync_mutex(a)), -EBUSY);
    CHECK_ERR(pshm_mutex_lock(pshm_sync_mutex(b)), -EDEADLK);
    struct timespec d = in_ms(1000);
    CHECK_ERR(pshm_mutex_timedlock(pshm_sync_mutex(b), &d), -EDEADLK);
    CHECK_ERR(pshm_sync_close(b), -EBUSY); /* held by this process */
    CHECK_OK(pshm_mutex_unlock(pshm_sync_mutex(b)));
    CHECK_OK(pshm_sync_close(b));
    CHECK_OK(pshm_sync_close(a));
    CHECK_OK(pshm_unlink(name));
}

/* ------------------------------------- try never waits, post has a deadline */

static int child_hold_undo_lock(void *arg)
{
    pshm__sem_undo *u = (pshm__sem_undo *)(S->obj + PSHM_SEM_SIZE);
    (void)arg;
    if (pshm__lock_acquire(&u->lock.lk, 0, NULL) != 0)
        return 2;
    AINC(&S->ready);
    for (;;)
        pause(); /* a live holder that never lets go (a stopped peer) */
}

TEST(sem_undo_try_never_waits_and_post_has_a_deadline)
{
    S = th_shared(sizeof *S);
    pshm_sem *s;
    long long t0;

    CHECK_OK(pshm_sem_init(S->obj, sizeof S->obj, 1, PSHM_SEM_UNDO, &s));
    pid_t holder = th_fork(child_hold_undo_lock, NULL);
    until_ge(&S->ready, 1);
    t0 = now_ms();
    CHECK_ERR(pshm_sem_trywait(s), -EAGAIN);
    CHECK(now_ms() - t0 < 500);
    t0 = now_ms();
    struct timespec d = in_ms(50);
    CHECK_ERR(pshm_sem_timedwait(s, &d), -ETIMEDOUT);
    CHECK(now_ms() - t0 < 1000);
    t0 = now_ms();
    CHECK_ERR(pshm_sem_post(s), -ETIMEDOUT);
    CHECK(now_ms() - t0 >= 900 && now_ms() - t0 < 5000);
    /* A lock word no lock can hold: an error at once, from every call. */
    pshm__sem_undo *u = (pshm__sem_undo *)(S->obj + PSHM_SEM_SIZE);
    ASTORE(&u->lock.lk.word, 0x00ffffffu);
    t0 = now_ms();
    CHECK_ERR(pshm_sem_trywait(s), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_sem_post(s), -PSHM_EBADFORMAT);
    CHECK_ERR(pshm_sem_wait(s), -PSHM_EBADFORMAT);
    CHECK(now_ms() - t0 < 500);
    kill_wait(holder);
}

static int child_lock_and_stay(void *arg)
{
    (void)arg;
    if (pshm_mutex_lock((pshm_mutex *)S->obj) != 0)
        return 2;
    AINC(&S->ready);
    for (;;)
        pause(); /* dies holding it */
}

/* The holder dies: the next trylock reports it, not -EBUSY. */
TEST(mutex_trylock_reports_a_dead_owner)
{
    S = th_shared(sizeof *S);
    pshm_mutex *m;

    CHECK_OK(pshm_mutex_init(S->obj, sizeof S->obj, &m));
    pid_t q = th_fork(child_lock_and_stay, NULL);
    until_ge(&S->ready, 1);
    CHECK_ERR(pshm_mutex_trylock(m), -EBUSY);
    kill_wait(q);
    CHECK_ERR(pshm_mutex_trylock(m), -PSHM_EOWNERDEAD);
    CHECK_OK(pshm_mutex_consistent(m));
    CHECK_OK(pshm_mutex_unlock(m));
    CHECK_OK(pshm_mutex_trylock(m));
    CHECK_OK(pshm_mutex_unlock(m));
}
