/* SPDX-License-Identifier: MIT */
/*
 * test_signals.c - "a signal handler never ends a wait" (README). A process
 * blocked in a pshm wait - queue peek and reserve, semaphore, event, mutex,
 * condition variable, read-write lock, barrier - gets SIGUSR1 over and over,
 * with a handler installed without SA_RESTART (so every signal interrupts
 * the system call it lands in). The wait must neither return -EINTR nor end
 * before what it waits for happens; a timed wait must end at its deadline,
 * not before. Each case counts the signals its handler ran and needs at
 * least SIG_FLOOR of them, so a case whose signals never landed fails (a
 * blocking wait is signalled until it has handled BARRAGE_MIN, on a slow
 * machine for longer than BARRAGE_MS).
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIG_FLOOR 20     /* signals handled during one wait, at least */
#define BARRAGE_MIN 100  /* a blocking wait is released once it has handled this many, */
#define BARRAGE_MS 300   /* and at least this long after the first signal */
#define DEADLINE_MS 400  /* a timed wait's deadline */

typedef struct shared {
    _Alignas(64) char mutex[PSHM_MUTEX_SIZE];
    _Alignas(64) char cond[PSHM_COND_SIZE];
    _Alignas(64) char sem[PSHM_SEM_SIZE];
    _Alignas(64) char event[PSHM_EVENT_SIZE];
    _Alignas(64) char rwlock[PSHM_RWLOCK_SIZE];
    _Alignas(64) char barrier[PSHM_BARRIER_SIZE(2)];
    int64_t deadline_ns;  /* a timed wait's deadline */
    int64_t released_ns;  /* when the test released the waiter */
    int64_t returned_ns;  /* when the wait returned */
    int rc;               /* what it returned */
    int waiting;          /* the waiter is about to wait */
    uint64_t handled;     /* signals its handler ran */
} shared;

static shared *SH;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    __atomic_add_fetch(&SH->handled, 1, __ATOMIC_RELAXED);
}

typedef int (*wait_fn)(const struct timespec *deadline); /* NULL: the blocking form */
typedef struct sig_case {
    wait_fn wait;
    int timed;
} sig_case;

static int waiter(void *arg)
{
    const sig_case *c = arg;
    struct sigaction sa;
    struct timespec dl;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = 0; /* no SA_RESTART: every signal interrupts the system call */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return 90;
    if (c->timed) {
        CHECK_OK(pshm_deadline(&dl, DEADLINE_MS));
        SH->deadline_ns = (int64_t)dl.tv_sec * 1000000000 + dl.tv_nsec;
    }
    ASTORE(&SH->waiting, 1);
    SH->rc = c->wait(c->timed ? &dl : NULL);
    SH->returned_ns = now_ns();
    return 0;
}

/*
 * Start the waiter, let it block, signal it for BARRAGE_MS (a blocking
 * wait) or until it returns (a timed one), then release it (release may be
 * NULL for timed cases). Returns what the wait returned; fails the test if
 * it returned before it was released or before its deadline, or if too few
 * signals landed.
 */
static int run_case(wait_fn w, int timed, void (*release)(void), const char *what)
{
    sig_case c = {w, timed};
    int64_t end;

    SH->waiting = 0;
    SH->handled = 0;
    SH->released_ns = INT64_MAX;
    pid_t pid = th_fork(waiter, &c);
    while (!ALOAD(&SH->waiting))
        th_sleep_ms(1);
    th_sleep_ms(20); /* in the wait by now */
    int64_t t0 = now_ns(), last = t0 + (int64_t)(DEADLINE_MS + 10000) * 1000000;
    end = t0 + (int64_t)(timed ? DEADLINE_MS + 10000 : BARRAGE_MS) * 1000000;
    for (int st; now_ns() < end || (!timed && SH->handled < BARRAGE_MIN && now_ns() < last);) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            if (!timed)
                th_fail(__FILE__, __LINE__, "%s: the wait ended before it was released: %s "
                        "(%d), after %llu signals", what, pshm_errname(SH->rc), SH->rc,
                        (unsigned long long)SH->handled);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                th_fail(__FILE__, __LINE__, "%s: waiter status %#x", what, st);
            pid = 0;
            break;
        }
        kill(pid, SIGUSR1);
        usleep(200);
    }
    if (pid) {
        if (timed)
            th_fail(__FILE__, __LINE__, "%s: still waiting %d ms after its deadline", what, 10000);
        SH->released_ns = now_ns();
        release();
        CHECK_EQ(th_wait(pid, 10000), 0);
    }
    if (SH->handled < SIG_FLOOR)
        th_fail(__FILE__, __LINE__, "%s: only %llu signals landed during the wait (floor %d)",
                what, (unsigned long long)SH->handled, SIG_FLOOR);
    if (timed && SH->returned_ns < SH->deadline_ns)
        th_fail(__FILE__, __LINE__, "%s: returned %s %.1f ms before its deadline", what,
                pshm_errname(SH->rc), (double)(SH->deadline_ns - SH->returned_ns) / 1e6);
    if (!timed && SH->returned_ns < SH->released_ns)
        th_fail(__FILE__, __LINE__, "%s: returned before it was released", what);
    return SH->rc;
}

/* ------------------------------------------------------------ queues */

static pshm_queue *QP, *QC; /* the test's producer, and (reserve) its consumer */
static const char *QNAME;

static int q_peek(const struct timespec *dl)
{
    pshm_queue *c = NULL;
    const void *p;
    size_t len;
    CHECK_OK(pshm_queue_open(QNAME, PSHM_QUEUE_CONSUMER, NULL, &c));
    int r = dl ? pshm_queue_timedpeek(c, &p, &len, dl) : pshm_queue_peek(c, &p, &len);
    if (r == 0 && (len != 5 || memcmp(p, "hello", 5) != 0))
        r = -EBADMSG;
    return r;
}

static void q_send(void) { CHECK_OK(pshm_queue_send(QP, "hello", 5)); }

static int q_reserve(const struct timespec *dl)
{
    pshm_queue *p = NULL;
    pshm_queue_options o;
    void *w;
    pshm_queue_options_init(&o);
    o.keep_open = 1;
    CHECK_OK(pshm_queue_open(QNAME, PSHM_QUEUE_PRODUCER, &o, &p));
    return dl ? pshm_queue_timedreserve(p, 8, &w, dl) : pshm_queue_reserve(p, 8, &w);
}

static void q_recv(void)
{
    char buf[64];
    size_t len;
    CHECK_OK(pshm_queue_recv(QC, buf, sizeof buf, &len));
}

TEST_TIMEOUT(queue_waits_are_not_ended_by_signal_handlers, 60)
{
    pshm_queue_options o;
    char buf[64];
    size_t len;

    SH = th_shared(sizeof *SH);
    QNAME = th_name("q");
    pshm_queue_options_init(&o);
    o.queue_mode = PSHM_QUEUE_MPMC;
    o.messages = 2;
    o.max_msg = 64;
    o.spin = 0;
    CHECK_OK(pshm_queue_create(QNAME, PSHM_QUEUE_PRODUCER, &o, &QP));
    CHECK_OK(pshm_queue_open(QNAME, PSHM_QUEUE_CONSUMER, &o, &QC));
    CHECK_OK(run_case(q_peek, 0, q_send, "queue peek"));
    CHECK_OK(pshm_queue_recv(QC, buf, sizeof buf, &len)); /* the child died holding it: back */
    CHECK_ERR(run_case(q_peek, 1, NULL, "queue timedpeek"), -ETIMEDOUT);
    /* full: a reserve waits for room */
    while (pshm_queue_trysend(QP, "x", 1) == 0)
        ;
    CHECK_OK(run_case(q_reserve, 0, q_recv, "queue reserve"));
    CHECK_ERR(run_case(q_reserve, 1, NULL, "queue timedreserve"), -ETIMEDOUT);
    CHECK_OK(pshm_unlink(QNAME));
    CHECK_OK(pshm_queue_close(QC));
    CHECK_OK(pshm_queue_close(QP));
}

/* ------------------------------------------------------------ sync */

static pshm_mutex *MX;
static pshm_cond *CV;
static pshm_sem *SEM;
static pshm_event *EV;
static pshm_rwlock *RW;
static pshm_barrier *BAR;

static int sem_w(const struct timespec *dl) { return dl ? pshm_sem_timedwait(SEM, dl) : pshm_sem_wait(SEM); }
static void sem_rel(void) { CHECK_OK(pshm_sem_post(SEM)); }
static int ev_w(const struct timespec *dl) { return dl ? pshm_event_timedwait(EV, dl) : pshm_event_wait(EV); }
static void ev_rel(void) { CHECK_OK(pshm_event_set(EV)); }
static int mx_w(const struct timespec *dl) { return dl ? pshm_mutex_timedlock(MX, dl) : pshm_mutex_lock(MX); }
static void mx_rel(void) { CHECK_OK(pshm_mutex_unlock(MX)); }
static int rw_w(const struct timespec *dl) { return dl ? pshm_rwlock_timedwrlock(RW, dl) : pshm_rwlock_wrlock(RW); }
static void rw_rel(void) { CHECK_OK(pshm_rwlock_unlock(RW)); }
static int bar_w(const struct timespec *dl)
{
    return dl ? pshm_barrier_timedwait(BAR, dl, NULL) : pshm_barrier_wait(BAR, NULL);
}
static void bar_rel(void) { CHECK_OK(pshm_barrier_wait(BAR, NULL)); }

static int cv_w(const struct timespec *dl)
{
    CHECK_OK(pshm_mutex_lock(MX));
    int r = dl ? pshm_cond_timedwait(CV, MX, dl) : pshm_cond_wait(CV, MX);
    CHECK_OK(pshm_mutex_unlock(MX));
    return r;
}

static void cv_rel(void)
{
    CHECK_OK(pshm_mutex_lock(MX)); /* the waiter is inside cond_wait, not between */
    CHECK_OK(pshm_cond_signal(CV));
    CHECK_OK(pshm_mutex_unlock(MX));
}

TEST_TIMEOUT(sync_waits_are_not_ended_by_signal_handlers, 120)
{
    SH = th_shared(sizeof *SH);
    CHECK_OK(pshm_mutex_init(SH->mutex, sizeof SH->mutex, &MX));
    CHECK_OK(pshm_cond_init(SH->cond, sizeof SH->cond, &CV));
    CHECK_OK(pshm_sem_init(SH->sem, sizeof SH->sem, 0, 0, &SEM));
    CHECK_OK(pshm_event_init(SH->event, sizeof SH->event, 0, &EV));
    CHECK_OK(pshm_rwlock_init(SH->rwlock, sizeof SH->rwlock, &RW));
    CHECK_OK(pshm_barrier_init(SH->barrier, sizeof SH->barrier, 2, &BAR));

    CHECK_OK(run_case(sem_w, 0, sem_rel, "sem wait"));
    CHECK_ERR(run_case(sem_w, 1, NULL, "sem timedwait"), -ETIMEDOUT);
    CHECK_OK(run_case(ev_w, 0, ev_rel, "event wait"));
    CHECK_ERR(run_case(ev_w, 1, NULL, "event timedwait"), -ETIMEDOUT); /* auto reset: unset again */
    CHECK_OK(pshm_mutex_lock(MX)); /* the waiter waits for us */
    CHECK_OK(run_case(mx_w, 0, mx_rel, "mutex lock"));
    /* the child exited holding it: the next locker is told */
    CHECK_ERR(pshm_mutex_lock(MX), -PSHM_EOWNERDEAD);
    CHECK_OK(pshm_mutex_consistent(MX));
    CHECK_ERR(run_case(mx_w, 1, NULL, "mutex timedlock"), -ETIMEDOUT);
    CHECK_OK(pshm_mutex_unlock(MX));
    CHECK_OK(run_case(cv_w, 0, cv_rel, "cond wait"));
    CHECK_ERR(run_case(cv_w, 1, NULL, "cond timedwait"), -ETIMEDOUT);
    CHECK_OK(pshm_rwlock_rdlock(RW)); /* the writer waits for us */
    CHECK_OK(run_case(rw_w, 0, rw_rel, "rwlock wrlock"));
    CHECK_ERR(pshm_rwlock_wrlock(RW), -PSHM_EOWNERDEAD); /* it exited holding it */
    CHECK_OK(pshm_rwlock_consistent(RW));
    CHECK_ERR(run_case(rw_w, 1, NULL, "rwlock timedwrlock"), -ETIMEDOUT);
    CHECK_OK(pshm_rwlock_unlock(RW));
    CHECK_OK(run_case(bar_w, 0, bar_rel, "barrier wait"));
    CHECK_OK(pshm_barrier_reset(BAR)); /* the child that exited keeps its place until then */
    CHECK_ERR(run_case(bar_w, 1, NULL, "barrier timedwait"), -ETIMEDOUT);
}
