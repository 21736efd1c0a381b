/* SPDX-License-Identifier: MIT */
/*
 * sync_internal.h - the shared layouts of the synchronisation objects
 * (sync.c). Every field another process can see is here, so the layouts and
 * their ABI word are in one place; tests include it to corrupt headers on
 * purpose. Shared words are plain integers accessed only with __atomic
 * builtins (the futex calls take their address).
 */
#ifndef PSHM_SYNC_INTERNAL_H
#define PSHM_SYNC_INTERNAL_H

#include "internal.h"

#include <pthread.h>
#include <stdint.h>

#define PSHM__SYNC_VERSION 1

/* Object tag, low 32 bits of the id: 'S' 'Y', the kind, the version. */
#define PSHM__SYNC_TAG(kind) ((0x5359u << 16) | ((uint32_t)(kind) << 8) | PSHM__SYNC_VERSION)
#define PSHM__SYNC_TAG_MAGIC(tag) ((tag) >> 16)
#define PSHM__SYNC_DEAD_ID 0xdeaddeaddeaddeadull

/* A pthread_mutex_t padded to one unit, so neighbours never share its line. */
typedef union pshm__sync_unit {
    pthread_mutex_t pm;
    char pad[PSHM__SYNC_UNIT];
} pshm__sync_unit;

struct pshm_mutex {
    uint64_t id;       /* ABI word << 32 | tag */
    pthread_mutex_t pm;
    uint64_t owner;    /* holder's thread identity (liveness.h), 0 when unlocked */
    uint32_t waiters;  /* threads blocked in lock (a hint) */
    uint32_t state;    /* PSHM__MS_* */
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
        pthread_mutex_t pm;
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

#endif
