/* SPDX-License-Identifier: MIT */
/*
 * harness.h - every test runs in its own process (and process group) with a
 * timeout, so a crash or a deadlock fails one test instead of the run.
 * Multi-process helpers live in the same binary and are started by name
 * (th_spawn), or forked (th_fork). Tests touch only their own names (th_name,
 * or a private /dev/shm: th_private_shm): a test that leaves an object named
 * with its prefix in /dev/shm fails, and so does one that removes the
 * runner's sentinel, a stale AUTO block that a global gc would collect.
 *
 *   TEST(name) { CHECK(x); CHECK_OK(pshm_call(...)); CHECK_ERR(call, -ENOENT); }
 *   TEST_TIMEOUT(name, seconds) { ... }      // the default is 30 s
 *   TEST_PORTABLE(name) { ... }              // also run against the POSIX fallback
 *   HELPER(name) { ... return exit_code; }   // argc/argv are the extra args
 *
 * A test binary runs every test, or the ones named on its command line (an
 * unknown name is an error, exit 2); `--list` prints "name timeout_s" per
 * test, `--portable` selects the TEST_PORTABLE ones. Exit status: 1 if any
 * test failed, else 77 if every test that ran was skipped (ctest's
 * SKIP_RETURN_CODE), else 0. tests/CMakeLists.txt registers one ctest entry
 * per test, so a skipped test shows as skipped next to the others' passes.
 */
#ifndef PSHM_TEST_HARNESS_H
#define PSHM_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "pshm.h"

typedef void (*th_test_fn)(void);
typedef int (*th_helper_fn)(int argc, char **argv);

#define TH_PORTABLE 1u /* runs against the POSIX fallback too (see TEST_PORTABLE) */

void th_register(const char *name, th_test_fn fn, int timeout_s);
void th_register_flags(const char *name, th_test_fn fn, int timeout_s, unsigned flags);
void th_register_helper(const char *name, th_helper_fn fn);

#define TEST_FLAGS(name, secs, flags)                                           \
    static void test_##name(void);                                              \
    __attribute__((constructor)) static void th_reg_##name(void)                \
    {                                                                           \
        th_register_flags(#name, test_##name, secs, flags);                     \
    }                                                                           \
    static void test_##name(void)
#define TEST_TIMEOUT(name, secs) TEST_FLAGS(name, secs, 0)
#define TEST(name) TEST_FLAGS(name, 30, 0)
/* A test that needs only PERSIST blocks (no lifetimes, liveness locks,
 * /proc or mount namespaces): scripts/test-install.sh also runs it against
 * the POSIX fallback build. */
#define TEST_PORTABLE(name) TEST_FLAGS(name, 30, TH_PORTABLE)

#define HELPER(name)                                                            \
    static int helper_##name(int argc, char **argv);                            \
    __attribute__((constructor)) static void th_regh_##name(void)               \
    {                                                                           \
        th_register_helper(#name, helper_##name);                               \
    }                                                                           \
    static int helper_##name(int argc, char **argv)

void th_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* Skip the running test with a reason; a skip never counts as a pass: the
 * test shows as "skip" with the reason, and a run that only skipped exits
 * 77. Only th_skip skips: a test process that exits 77 without it fails. */
void th_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond))                                                            \
            th_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                    \
    } while (0)
#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);               \
        if (th_a_ != th_b_)                                                     \
            th_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, th_a_, th_b_); \
    } while (0)
#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *th_a_ = (a), *th_b_ = (b);                                  \
        if (!th_a_ || !th_b_ || strcmp(th_a_, th_b_) != 0)                      \
            th_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,    \
                    th_a_ ? th_a_ : "(null)", th_b_ ? th_b_ : "(null)");        \
    } while (0)
/* expr returns an int code; expect exactly `want` (0, -errno or -PSHM_E*). */
#define CHECK_ERR(expr, want)                                                   \
    do {                                                                        \
        int th_r_ = (expr), th_w_ = (want);                                     \
        if (th_r_ != th_w_)                                                     \
            th_fail(__FILE__, __LINE__, "%s: got %s (%d), want %s (%d)", #expr,  \
                    pshm_errname(th_r_), th_r_, pshm_errname(th_w_), th_w_);     \
    } while (0)
#define CHECK_OK(expr) CHECK_ERR(expr, 0)

/* A name unique to this test process: "pshmt_<pid>_<tag>". */
const char *th_name(const char *tag);
/* 1 if /dev/shm/<name> exists. */
int th_exists(const char *name);

/* Start a helper of this binary by name in a new process (fork + exec). */
pid_t th_spawn(const char *helper, ...); /* NULL-terminated string args */
/* Fork a child running fn(arg); the child exits with fn's return. */
pid_t th_fork(int (*fn)(void *), void *arg);
/* Wait for a child (at most timeout_ms); returns its exit code, 128+signal
 * if killed, or fails the test on timeout. */
int th_wait(pid_t pid, int timeout_ms);
/* In a child that is meant to die of a fault: restore the default
 * SIGSEGV/SIGBUS/SIGFPE actions (sanitizers install their own handlers). */
void th_default_signals(void);
/* Wait until cond() is true, polling every ms, at most timeout_ms. */
int th_until(int (*cond)(void *), void *arg, int timeout_ms);
void th_sleep_ms(int ms);

/* Memory that forked children share with the test process (never freed). */
void *th_shared(size_t n);
#define AINC(p) __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)
#define ALOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ASTORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* Worker crews of the SIGKILL storms: pids[i] bumps counters[i] (in
 * th_shared memory) per operation done. th_check_workers fails the test if
 * a worker ended by itself (reaping it); th_await_progress fails it unless
 * every worker does another operation within ms. At most 64 workers. */
void th_check_workers(const pid_t *pids, int n);
void th_await_progress(const uint64_t *counters, const pid_t *pids, int n, int ms);

/* Randomness for the SIGKILL storms. th_rnd_seed seeds from PSHM_SEED (or
 * the clock) and prints the seed under label, so a failing schedule can be
 * run again. th_rnd_worker(w), in a forked worker, gives it the stream of
 * (seed, w): a storm numbers its workers (slot and generation, say), so
 * worker w makes the same choices under the same seed whatever its pid and
 * whenever it runs. th_rnd_child() does the same with the number of
 * th_fork calls made before it (deterministic only if the forks are).
 * th_soak: 10 when PSHM_SOAK is set (and not "0"), else 1 - the factor long
 * runs multiply their counts by. */
void th_rnd_seed(const char *label);
unsigned th_rnd_seed_value(void);
void th_rnd_worker(uint64_t worker);
void th_rnd_child(void);
uint32_t th_rnd(void);
int th_soak(void);

/* Give the running test (and every process it starts afterwards) a
 * /dev/shm of its own: a tmpfs mounted with the options `opts` (e.g.
 * "size=1m", "huge=always") in a private mount namespace, gone with the
 * test's processes. For tests that need a whole-machine view (a global gc
 * or scan) or a special /dev/shm. Skips the test where it is not allowed
 * (needs root or CAP_SYS_ADMIN). */
void th_private_shm(const char *opts);

/* Fault points (src/fault.h; the tests link the build that has them). In a
 * forked child, th_arm(point, skip) arms `point` to kill the child at its
 * (skip+1)-th pass and traces the child into memory the test shares;
 * th_died_at(pid, point, ms) waits for that child and fails the test unless
 * it died of SIGKILL exactly there. One armed child at a time. */
void th_arm(const char *point, unsigned long skip);
void th_died_at(pid_t pid, const char *point, int timeout_ms);

/* Path of this test binary; the build directory (where the CLI lives). */
const char *th_self(void);
const char *th_bindir(void);

/* Queues. th_queue_stat: what pshm_queue_fstat says through q (fails the
 * test on an error). th_queue_pair_close: unlink the queue producer p and
 * consumer c share, then close c and p (fails the test on an error). */
pshm_queue_info th_queue_stat(pshm_queue *q);
void th_queue_pair_close(pshm_queue *p, pshm_queue *c);

#endif
