/* SPDX-License-Identifier: MIT */
/*
 * peers.h - the systems pshm is measured against that live outside the
 * bench programs, each compiled in only when its library was found
 * (PSHM_BENCH_ICEORYX, PSHM_BENCH_BOOST, PSHM_BENCH_ZMQ): the queue
 * transports of bench_queue, and Boost.Interprocess's mutexes and shared
 * memory objects for bench_sync and bench_block (a C API over C++).
 *
 * Queue transports: a transport carries messages both ways between two
 * processes: dir 0 from side 0 to side 1, dir 1 back. bench_queue runs
 * every cell on two long-lived worker processes (side 0 on cpu0, side 1 on
 * cpu1, not parent and child): side 0 calls init(), then both attach(side);
 * at the end both detach() and side 0 calls fini(). Anything both sides
 * must find is named with qb_name(); a library with per-process state
 * (iceoryx's runtime) sets it up once per worker.
 */
#ifndef PSHM_BENCH_PEERS_H
#define PSHM_BENCH_PEERS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How a cell waits. */
enum {
    QB_BLOCK = 0,   /* sleep at once (pshm: spin = 0); the library's blocking call */
    QB_BUSY = 1,    /* poll: the library's try / non-blocking call in a loop */
    QB_DEFAULT = 2  /* what a user gets by default (pshm: spin, then sleep) */
};

typedef struct qb_cfg {
    size_t max;   /* largest message: the cell's message size */
    int depth;    /* messages the channel holds */
    int wait;     /* QB_BLOCK / QB_BUSY / QB_DEFAULT */
    int zc;       /* pshm: zero-copy (reserve/commit, peek/release) */
    int mode;     /* pshm: pshm_queue_mode */
} qb_cfg;

typedef struct qb_xport {
    const char *name;
    /* 0, or -1 with a reason in err (the cell is reported as not run) */
    int (*init)(const qb_cfg *c, char *err, size_t cap);
    void (*fini)(void);
    int (*attach)(const qb_cfg *c, int side, char *err, size_t cap);
    void (*detach)(void);
    /* deliver len bytes of buf (a zero-copy transport writes them into
     * its loaned memory) */
    void (*send)(int dir, const void *buf, size_t len);
    /* take the next message: a copying transport copies it into buf (cap
     * bytes); a zero-copy one reads it in place with qb_consume */
    size_t (*recv)(int dir, void *buf, size_t cap);
} qb_xport;

/* The cell's name for one of its objects, the same in both workers:
 * "pshm_bench_<worker 0's pid>_<cell>_<what>" (the bench removes whatever
 * a failed cell leaves under that prefix). */
void qb_name(char *out, size_t cap, const char *what);

/* What every zero-copy consumer does with a message in place: copy its
 * first 8 bytes (the sequence number) to buf and load one word of every
 * cache line it covers. The raw hand-off reference does the same. */
void qb_consume(const void *msg, size_t len, void *buf);

/* A transport that fails mid-cell: the reason goes to the report, the cell
 * process exits. Never returns. */
void qb_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Spin politely in a poll loop. */
static inline void qb_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#ifdef PSHM_BENCH_ICEORYX
extern const qb_xport qb_iceoryx;
/* Start RouDi with mempools for these message sizes and channel depths
 * (and stop it: also on
 * every exit path of the bench, through an atexit hook and the signals).
 * 0, or -1 with a reason. */
int qb_iceoryx_start(const size_t *sizes, const int *depths, int n, char *err, size_t cap);
void qb_iceoryx_stop(void);
const char *qb_iceoryx_version(void);
#endif
#ifdef PSHM_BENCH_BOOST
extern const qb_xport qb_boost_mq;
const char *qb_boost_version(void);

/*
 * Boost.Interprocess for bench_sync. Anonymous objects are built in memory
 * the caller shares (BP_MUTEX_SIZE / BP_COND_SIZE bytes, 64-aligned):
 * interprocess_mutex, interprocess_condition. Named ones live in their own
 * shared memory: named_mutex, named_condition (0 or -1; they print why).
 */
#define BP_MUTEX_SIZE 64
#define BP_COND_SIZE 128
int bp_mutex_init(void *mem);
void bp_mutex_lock(void *m);
void bp_mutex_unlock(void *m);
int bp_cond_init(void *mem);
void bp_cond_wait(void *c, void *m);   /* m is held */
void bp_cond_signal(void *c);
typedef struct bp_named bp_named;      /* a named_mutex + named_condition pair */
int bp_named_create(const char *name, bp_named **out);
int bp_named_open(const char *name, bp_named **out);
void bp_named_lock(bp_named *n);
void bp_named_unlock(bp_named *n);
void bp_named_wait(bp_named *n);       /* the mutex is held */
void bp_named_signal(bp_named *n);
void bp_named_close(bp_named *n);
void bp_named_remove(const char *name);

/* Boost.Interprocess for bench_block: create (and remove) or attach (and
 * detach) a shared_memory_object + mapped_region, or a
 * managed_shared_memory segment. 0 or -1 (they print why). */
int bp_shm_create(const char *name, size_t size);
int bp_shm_attach(const char *name);
int bp_managed_create(const char *name, size_t size);
int bp_managed_attach(const char *name);
int bp_managed_make(const char *name, size_t size); /* leave one to attach to */
void bp_managed_remove(const char *name);
#endif
#ifdef PSHM_BENCH_ZMQ
extern const qb_xport qb_zmq;
const char *qb_zmq_version(void);
#endif

#ifdef __cplusplus
}
#else
#include "common.h"
/* Say in the report whether Boost.Interprocess was built in, and which. */
static inline void bench_note_boost(bjson *j)
{
#ifdef PSHM_BENCH_BOOST
    bj_version(j, "boost", qb_boost_version());
#else
    bj_missing(j, "Boost.Interprocess", "not built: libboost-dev / g++ not found");
#endif
}
#endif
#endif
