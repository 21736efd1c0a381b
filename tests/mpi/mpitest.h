/* SPDX-License-Identifier: MIT */
/*
 * mpitest.h - the MPI tests' checks. A test program is one MPI job: every
 * rank runs every case; a failed check prints rank, place and values and
 * aborts the whole job (MPI_Abort), so mpirun exits non-zero and the ctest
 * entry fails. Rank 0 prints "ok NAME" per case and, at the end, the plain
 * "N passed, 0 failed" line. mpirun runs under `timeout` (run.sh), so a hang
 * fails too.
 */
#ifndef PSHM_MPITEST_H
#define PSHM_MPITEST_H

#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pshm_mpi.h"

static int mt_rank_, mt_passed_;

#define MT_FAIL(...)                                                            \
    do {                                                                        \
        fprintf(stderr, "rank %d: %s:%d: ", mt_rank_, __FILE__, __LINE__);     \
        fprintf(stderr, __VA_ARGS__);                                           \
        fprintf(stderr, "\n");                                                  \
        fflush(stderr);                                                         \
        MPI_Abort(MPI_COMM_WORLD, 1);                                           \
    } while (0)
#define CHECK(c)                                                                \
    do {                                                                        \
        if (!(c))                                                               \
            MT_FAIL("CHECK(%s)", #c);                                           \
    } while (0)
#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long mt_a_ = (long long)(a), mt_b_ = (long long)(b);               \
        if (mt_a_ != mt_b_)                                                     \
            MT_FAIL("%s == %s: %lld != %lld", #a, #b, mt_a_, mt_b_);            \
    } while (0)
#define CHECK_ERR(expr, want)                                                   \
    do {                                                                        \
        int mt_r_ = (expr), mt_w_ = (want);                                     \
        if (mt_r_ != mt_w_)                                                     \
            MT_FAIL("%s: got %s (%d), want %s (%d)", #expr, pshm_mpi_errname(mt_r_), mt_r_, \
                    pshm_mpi_errname(mt_w_), mt_w_);                            \
    } while (0)
#define CHECK_OK(expr) CHECK_ERR(expr, 0)

static inline void mt_init(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &mt_rank_);
}

/* Run one case on every rank; all ranks finish it before the next. */
#define MT_RUN(fn)                                                              \
    do {                                                                        \
        fn();                                                                   \
        MPI_Barrier(MPI_COMM_WORLD);                                            \
        if (mt_rank_ == 0) {                                                    \
            printf("ok %s\n", #fn);                                             \
            fflush(stdout);                                                     \
        }                                                                       \
        mt_passed_++;                                                           \
    } while (0)

static inline int mt_finish(void)
{
    if (mt_rank_ == 0)
        printf("%d passed, 0 failed\n", mt_passed_);
    MPI_Finalize();
    return 0;
}

/* The run's seed: PSHM_SEED or the clock, agreed by every rank (rank 0's),
 * printed so a failing run can be replayed. */
static inline uint64_t mt_seed(const char *label)
{
    uint64_t s = 0;
    const char *e = getenv("PSHM_SEED");
    if (mt_rank_ == 0) {
        s = e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL) * 2654435761u;
        printf("%s: PSHM_SEED=%" PRIu64 "\n", label, s);
        fflush(stdout);
    }
    MPI_Bcast(&s, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    return s;
}

/* splitmix64: one stream, the same on every rank that seeds it alike. */
static inline uint64_t mt_next(uint64_t *st)
{
    uint64_t z = (*st += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
static inline int64_t mt_range(uint64_t *st, int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(mt_next(st) % (uint64_t)(hi - lo + 1));
}

/* A name unique to this job: PREFIX_<rank 0's pid>_tag. */
static inline const char *mt_name(const char *tag)
{
    static char buf[8][128];
    static int i;
    long pid = (long)getpid();
    MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    char *b = buf[i++ % 8];
    snprintf(b, 128, "pshmmpi_%ld_%s", pid, tag);
    return b;
}

#endif
