/* SPDX-License-Identifier: MIT */
/*
 * sync/sync_internal.h - the shared layouts of the synchronisation objects
 * (src/sync/), and the helpers the primitives share. Every field another process can see is here, so the layouts and
 * their ABI word are in one place; tests include it to corrupt headers on
 * purpose. Shared words are plain integers accessed only with __atomic
 * builtins (the futex calls take their address).
 */
#ifndef PSHM_SYNC_INTERNAL_H
#define PSHM_SYNC_INTERNAL_H

#include "../fault.h"
#include "../internal.h"
#include "../os/futex.h"
#include "../os/liveness.h"

#include <stdint.h>
#include <time.h>

/* 2: pshm__lock replaced glibc's pthread_mutex_t in every lock. */
#define PSHM__SYNC_VERSION 2

/* Object tag, low 32 bits of the id: 'S' 'Y', the kind, the version. */
#define PSHM__SYNC_TAG(kind) ((0x5359u << 16) | ((uint32_t)(kind) << 8) | PSHM__SYNC_VERSION)
#define PSHM__SYNC_TAG_MAGIC(tag) ((tag) >> 16)
#define PSHM__SYNC_DEAD_ID 0xdeaddeaddeaddeadull

/*
 * pshm's robust lock (lock.c): a futex word and the holder's identity. No
 * pointers, nothing process-local: see lock.c for the design.
 */
#define PSHM__LK_WAITERS 0x80000000u /* someone may sleep on the word */
#define PSHM__LK_NOTREC 0x7fffffffu  /* not recoverable */
#define PSHM__LK_TID_MAX 0x400000u   /* Linux's PID_MAX_LIMIT: no tid is larger */

typedef struct pshm__lock {
    uint32_t word;  /* futex: 0 free, holder tid | WAITERS, or NOTREC */
    uint32_t pad_;
    uint64_t owner; /* holder's identity (^ OWNER_MARK until consistent), 0 none */
} pshm__lock;

/* A lock padded to one unit, so neighbours never share its line. */
typedef union pshm__sync_unit {
    pshm__lock lk;
    char pad[PSHM__SYNC_UNIT];
} pshm__sync_unit;

struct pshm_mutex {
    uint64_t id;       /* ABI word << 32 | tag */
    pshm__lock lk;     /* the lock; lk.owner is the holder's thread identity */
    uint32_t waiters;  /* threads blocked in lock (a hint) */
    uint32_t state;    /* PSHM__MS_*, for display only: the word decides */
};
enum { PSHM__MS_OK = 0, PSHM__MS_INCONSISTENT = 1, PSHM__MS_NOTRECOVERABLE = 2 };

struct pshm_cond {
    uint64_t id;
    uint32_t seq;      /* futex: advanced by every signal and broadcast */
    uint32_t waiters;
    char pad[48];
};

struct pshm_sem {
    uint64_t id;
    uint32_t value;    /* futex */
    uint32_t waiters;
    uint32_t flags;    /* PSHM_SEM_UNDO */
    uint32_t nslots;   /* undo records that follow (0 without PSHM_SEM_UNDO) */
    uint64_t last_reap_ms;
    char pad[32];
};

/* Undo mode: the value and the records change only under `lock`, and each
 * change is preceded by an intent record holding the old values, so the
 * next holder of a lock whose holder died rolls a half-done change back. */
typedef struct pshm__sem_slot {
    uint64_t who;      /* process identity, 0 = free */
    uint32_t held;     /* units it holds */
    uint32_t pad;
} pshm__sem_slot;

typedef struct pshm__sem_undo {
    pshm__sync_unit lock;
    struct {
        uint32_t valid;
        uint32_t slot;     /* UINT32_MAX: the change touched no record */
        uint32_t old_value;
        uint32_t old_held;
        uint64_t old_who;
        char pad[40];
    } intent;
    pshm__sem_slot slots[PSHM_SEM_UNDO_SLOTS];
} pshm__sem_undo;

typedef union pshm__rw_slot {
    struct {
        pshm__lock lk;
        uint64_t holder; /* reader's thread identity while it holds the slot */
    } s;
    char pad[PSHM__SYNC_UNIT];
} pshm__rw_slot;

struct pshm_rwlock {
    union {
        struct {
            uint64_t id;
            uint32_t wflag;   /* 1 while a writer takes or holds the lock */
            uint32_t incons;  /* 1 after a writer died writing, until consistent */
            uint64_t wthread; /* writer's thread identity while it holds the lock */
            uint32_t wstate;  /* 1 while a writer holds the lock (all slots drained) */
            uint32_t waiters;
            uint32_t rdead;   /* readers found dead, not yet reported */
        } h;
        char pad[PSHM__SYNC_UNIT];
    } head;
    pshm__sync_unit gate;
    pshm__rw_slot slots[PSHM_RWLOCK_READERS];
};

/* Barrier word: broken:1 | epoch:7 | generation:8 | arrived:16. */
#define PSHM__BW_ARRIVED(w) ((w) & 0xffffu)
#define PSHM__BW_GEN(w) (((w) >> 16) & 0xffu)
#define PSHM__BW_EPOCH(w) (((w) >> 24) & 0x7fu)
#define PSHM__BW_BROKEN 0x80000000u

struct pshm_barrier {
    uint64_t id;
    uint32_t word;         /* futex */
    uint32_t count;
    uint32_t count_check;  /* ~count: members[] is indexed by count, so it is checked twice */
    uint32_t waiters;
    uint64_t last_check_ms;
    char pad[32];
    uint64_t members[];    /* thread identities, 0 = free place */
};

struct pshm_event {
    uint64_t id;
    uint32_t state;        /* futex: 1 set, 0 not */
    uint32_t waiters;
    uint32_t flags;        /* PSHM_EVENT_MANUAL */
    char pad[44];
};

/* A named object's block: this header, then the object at obj_off. */
#define PSHM__SYNC_HDR_MAGIC 0x4e595350u /* "PSYN" */
#define PSHM__SYNC_HDR_SIZE 64
enum { PSHM__HS_EMPTY = 0, PSHM__HS_INITIALISING = 1, PSHM__HS_READY = 2 };

typedef struct pshm__sync_hdr {
    uint32_t magic;
    uint32_t state;        /* futex: EMPTY -> INITIALISING (one winner) -> READY */
    uint16_t version;
    uint16_t kind;
    uint32_t abi;
    uint32_t obj_off;
    uint32_t obj_size;
    uint64_t initialiser;  /* process identity of the creator, for a stuck INITIALISING */
    char reserved[32];
} pshm__sync_hdr;

/* The ABI word of this build. */
PSHM__HIDDEN uint32_t pshm__sync_abi(void);

/* ------------------------------------------------- shared-word access */


#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOADR(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOADS(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORER(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORES(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define INC(p) __atomic_fetch_add((p), 1, __ATOMIC_SEQ_CST)
#define DEC(p) __atomic_fetch_sub((p), 1, __ATOMIC_SEQ_CST)
#define CAS(p, expp, want)                                                      \
    __atomic_compare_exchange_n((p), (expp), (want), 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define WAKE_ALL INT32_MAX

/* ----------------------------------------------------------- the ABI */

#ifdef __BYTE_ORDER__
#define PSHM__BYTE_ORDER __BYTE_ORDER__
#else
#define PSHM__BYTE_ORDER 0
#endif

/* The ABI word: FNV-1a over everything that shapes the layouts. Two builds
 * that disagree on any of it (a 32-bit and a 64-bit process, another libc,
 * another slot count) refuse each other's objects. A constant expression, so
 * the per-call id check is one compare. */
#define FOLD(h, v) ((uint32_t)(((uint32_t)(h) ^ (uint32_t)(v)) * 16777619u))
#define SYNC_ABI                                                                \
    FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(FOLD(2166136261u,    \
        PSHM__SYNC_VERSION), sizeof(void *)), sizeof(pshm__lock)),          \
        sizeof(struct pshm_mutex)), sizeof(struct pshm_cond)),                   \
        sizeof(struct pshm_sem)), sizeof(pshm__sem_undo)),                       \
        sizeof(struct pshm_rwlock)), sizeof(struct pshm_barrier)),               \
        sizeof(struct pshm_event)), PSHM_RWLOCK_READERS), PSHM__BYTE_ORDER)
#define SYNC_ID(kind) (((uint64_t)SYNC_ABI << 32) | PSHM__SYNC_TAG(kind))

/* The error for an id that is not SYNC_ID(want). Cold. */
PSHM__HIDDEN int pshm__sync_id_error(uint64_t id, pshm_sync_kind want);

#define CHECK_OBJ(obj, idfield, kind)                                           \
    do {                                                                        \
        if (UNLIKELY(!(obj)))                                                   \
            return -EINVAL;                                                     \
        uint64_t id_ = LOADR(&(idfield));                                       \
        if (UNLIKELY(id_ != SYNC_ID(kind)))                                     \
            return pshm__sync_id_error(id_, kind);                                 \
    } while (0)

/* -------------------------------------------------------------- time */

static inline void mono_now(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}

static inline int64_t mono_ms(void)
{
    struct timespec t;

    mono_now(&t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline int ts_lt(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static inline struct timespec ts_plus_ms(struct timespec t, long long ms)
{
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static inline int deadline_bad(const struct timespec *d)
{
    return !d || d->tv_nsec < 0 || d->tv_nsec >= 1000000000L || d->tv_sec < 0;
}

enum { WOKE = 0, SLICE = 1 };

/*
 * Sleep on *w while it equals expect, until deadline (NULL: none), for at
 * most PSHM_SYNC_RECHECK_MS. Returns WOKE (woken, the word changed, or a
 * signal handler ran: look again), SLICE (the recheck interval ended: look
 * again, and check what no wake-up reports), -ETIMEDOUT, or another -errno
 * from the kernel (a bug: give up rather than spin).
 */
PSHM__HIDDEN int pshm__sync_wait_slice(uint32_t *w, uint32_t expect,
                                       const struct timespec *deadline);

static inline void wake(uint32_t *w, int n)
{
    (void)pshm__futex_wake(w, n);
}

/* ------------------------------------------------------- the lock */

/*
 * pshm's robust lock (lock.c). acquire: 0; -PSHM_EOWNERDEAD (held: its
 * holder died; owner carries OWNER_MARK until pshm__lock_consistent);
 * -PSHM_ENOTRECOVERABLE; -EDEADLK (lock by the holder; -EBUSY for try);
 * -EBUSY (try); -ETIMEDOUT (deadline; NULL: none); -PSHM_EBADFORMAT (the
 * word is no value a lock can hold). Never a signal, never a wait past the
 * deadline. release: 0, 1 (it was owner-died and not consistent: the lock
 * is now not recoverable), -EPERM (the caller does not hold it).
 */
PSHM__HIDDEN int pshm__lock_acquire_slow(pshm__lock *l, int try, const struct timespec *deadline);
PSHM__HIDDEN int pshm__lock_release_slow(pshm__lock *l);
/* 0, -EPERM (not the holder), -EINVAL (not owner-died). */
PSHM__HIDDEN int pshm__lock_consistent(pshm__lock *l);
/* 1 if a live thread of this process holds l. */
PSHM__HIDDEN int pshm__lock_held_here(const pshm__lock *l);

/* The uncontended paths: one compare-and-swap (one exchange) and the
 * record; everything else is in lock.c. */
static inline int pshm__lock_acquire(pshm__lock *l, int try, const struct timespec *deadline)
{
    uint64_t me = pshm__self_thread();
    uint32_t z = 0;

    if (LIKELY(PSHM__ID_PID(me) <= PSHM__LK_TID_MAX && CAS(&l->word, &z, PSHM__ID_PID(me)))) {
        PSHM__FAULT("sync.lock.taken"); /* the word is ours, the record not yet */
        STORER(&l->owner, me);
        return 0;
    }
    return pshm__lock_acquire_slow(l, try, deadline);
}

static inline int pshm__lock_release(pshm__lock *l)
{
    uint64_t me = pshm__self_thread();

    if (LIKELY(LOADR(&l->owner) == me)) {
        STORER(&l->owner, 0);
        if (UNLIKELY(__atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE) & PSHM__LK_WAITERS))
            wake(&l->word, 1);
        return 0;
    }
    return pshm__lock_release_slow(l);
}

static inline void pshm__lock_init(pshm__lock *l)
{
    STORER(&l->owner, 0);
    STORER(&l->word, 0);
}

/* Memory large and aligned enough for an object of `need` bytes. */
PSHM__HIDDEN int pshm__sync_mem_ok(const void *mem, size_t size, size_t need);
/* What every _attach checks first: an out pointer, memory large and aligned
 * enough, holding an object of kind. 0 or the error to return. */
PSHM__HIDDEN int pshm__sync_attach_check(void *mem, size_t size, size_t need,
                                         pshm_sync_kind kind, int have_out);

/*
 * While a mutex holder that got EOWNERDEAD has not called consistent, its
 * owner field carries this mark (flipped into the start-time half), so the
 * fast unlock - which compares the owner with the caller - falls to the
 * slow path, the one that turns that unlock into "not recoverable".
 */
#define OWNER_MARK 0x80000000ull

#endif
