/*
 * pshm.h - direct access to shared memory between processes on one machine.
 *
 * This header is the manual. Every function says what it does, what it returns
 * and when, who owns what, whether it is thread-safe and what happens across
 * fork(). The .c files only explain why.
 *
 * Conventions that hold for the whole library
 * -------------------------------------------
 * - Functions return 0 on success and a negative code on failure: -errno for
 *   conditions the OS names (-ENOENT, -EEXIST, -ENOSPC, -EACCES, ...), or one
 *   of the PSHM_E* codes below for conditions errno lacks. Results come back
 *   through out-parameters. pshm_strerror() and pshm_errname() describe any
 *   code; neither allocates.
 * - Constructors leave *out == NULL on failure and leave nothing behind in
 *   /dev/shm. Destructors accept NULL.
 * - Handles are not locked internally: use one handle from one thread at a
 *   time, or lock around it. Distinct handles are independent. The memory a
 *   handle maps is shared with other processes and may be used from any
 *   thread.
 * - Every descriptor pshm opens is close-on-exec.
 * - fork(): the child inherits mappings and descriptors. It may read and write
 *   the memory, and may call pshm_block_close() on inherited handles, which
 *   then only unmaps and closes: a lifetime is never ended from a forked
 *   child's copy of a handle. Open new handles in the child for anything else.
 *
 * Names
 * -----
 * A block's name is what CPython's SharedMemory.name shows: no leading slash.
 * A single leading '/' is accepted and dropped ("/foo" and "foo" are the same
 * block). A name must not be empty, must not contain '/' (after the optional
 * leading one) or NUL, must not be "." or "..", and must be at most
 * PSHM_NAME_MAX bytes (255 on Linux, 30 on macOS). Each violation has its own
 * code: PSHM_ENAME_EMPTY, PSHM_ENAME_SLASH, PSHM_ENAME_NUL, PSHM_ENAME_LONG,
 * PSHM_ENAME_DOT.
 */
#ifndef PSHM_H
#define PSHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PSHM_BUILDING) && defined(__GNUC__)
#define PSHM_API __attribute__((visibility("default")))
#else
#define PSHM_API
#endif

#define PSHM_VERSION_MAJOR 0
#define PSHM_VERSION_MINOR 1
#define PSHM_VERSION_PATCH 0
#define PSHM_VERSION_STRING "0.1.0"

/* Longest name in bytes, without the optional leading slash. */
#if defined(__APPLE__)
#define PSHM_NAME_MAX 30
#else
#define PSHM_NAME_MAX 255
#endif

/* ======================================================================== */
/* Errors                                                                   */
/* ======================================================================== */

/*
 * The pshm codes, one X-macro table per module: X(NAME, value, message).
 * Values are stable across versions; they sit far above any errno value, so
 * -errno and -PSHM_* never collide. Ranges: 1000-1019 names and blocks,
 * 1020-1039 ShareableList, 1040-1059 arrays, 1060-1079 synchronisation,
 * 1080-1099 queues.
 */
#define PSHM_ERRNO_MAP_BLOCK(X)                                                 \
    X(ENAME_EMPTY, 1000, "name is empty")                                       \
    X(ENAME_SLASH, 1001, "name contains '/' after the optional leading one")    \
    X(ENAME_NUL, 1002, "name contains a NUL byte")                              \
    X(ENAME_LONG, 1003, "name is longer than the platform allows")             \
    X(ENAME_DOT, 1004, "name is \".\" or \"..\"")                               \
    X(EEMPTY, 1005, "block has size 0 (being created by a foreign tool, or truncated)") \
    X(ENOHUGE, 1006, "the system offers no huge pages for shared memory")       \
    X(ENOMARK, 1007, "cannot mark a block's lifetime here (tmpfs user xattrs need Linux 6.6, or root)") \
    X(EBADFORMAT, 1008, "bytes in shared memory are not a valid layout")        \
    X(EVERSION, 1009, "layout version not supported by this build")             \
    X(EABI, 1010, "layout was built with different sizes (ABI mismatch)")       \
    X(EKIND, 1011, "block holds a different kind of object")                    \
    X(EOWNERDEAD, 1012, "previous owner died; state may need repair")           \
    X(ENOTRECOVERABLE, 1013, "state is not recoverable")                        \
    X(ECLOSED, 1014, "closed by the other side")                                \
    X(ESTALE, 1015, "every holder of the block died; it has been removed")

/* ---- ShareableList codes (list.c), 1020-1039 ---- */
#define PSHM_ERRNO_MAP_LIST(X)

/* ---- array codes (array.c), 1040-1059 ---- */
#define PSHM_ERRNO_MAP_ARRAY(X)

/* ---- synchronisation codes (sync.c), 1060-1079 ---- */
#define PSHM_ERRNO_MAP_SYNC(X)

/* ---- queue codes (queue.c), 1080-1099 ---- */
#define PSHM_ERRNO_MAP_QUEUE(X)                                                 \
    X(ETOOBIG, 1080, "message is larger than the queue's maximum message size") \
    X(EOVERWRITTEN, 1081, "message was overwritten while it was read (broadcast, overwrite mode)") \
    X(EROLE, 1082, "role not available: held by another live handle, or wrong for this handle") \
    X(ENOSLOT, 1083, "every participant slot of the queue is held by a live handle") \
    X(ETRUNC, 1084, "buffer is smaller than the message (nothing was consumed)") \
    X(EORDER, 1085, "call out of order (commit/release without reserve/peek, or a second one pending)")

/* All codes. */
#define PSHM_ERRNO_MAP(X)                                                       \
    PSHM_ERRNO_MAP_BLOCK(X)                                                     \
    PSHM_ERRNO_MAP_LIST(X)                                                      \
    PSHM_ERRNO_MAP_ARRAY(X)                                                     \
    PSHM_ERRNO_MAP_SYNC(X)                                                      \
    PSHM_ERRNO_MAP_QUEUE(X)

/* Negative return values: return -PSHM_ENAME_EMPTY, etc. */
enum pshm_errno {
#define PSHM__ERR_ENUM(name, value, msg) PSHM_##name = value,
    PSHM_ERRNO_MAP(PSHM__ERR_ENUM)
#undef PSHM__ERR_ENUM
};

/*
 * pshm_strerror: a static English description of any return code (0, -errno
 * or -PSHM_*). Never NULL, never allocates, thread-safe. Unknown codes give
 * "unknown error".
 */
PSHM_API const char *pshm_strerror(int code);

/*
 * pshm_errname: the symbolic name of a code: "ENOENT", "PSHM_ENAME_EMPTY",
 * "OK" for 0, "UNKNOWN" otherwise. Static, never allocates, thread-safe.
 */
PSHM_API const char *pshm_errname(int code);

/*
 * pshm_name_check: validate a user-facing name of `len` bytes (it may contain
 * NUL, which is reported). Returns 0 or one of the -PSHM_ENAME_* codes.
 */
PSHM_API int pshm_name_check(const char *name, size_t len);

/* ======================================================================== */
/* Blocks: named shared memory (CPython's SharedMemory)                     */
/* ======================================================================== */

/*
 * A block is a named POSIX shared-memory object (a file in /dev/shm on Linux)
 * mapped into this process. A block has no header: its bytes are exactly the
 * user's, so CPython's multiprocessing.shared_memory.SharedMemory(name=...)
 * attaches to any pshm block and pshm attaches to any CPython block.
 *
 * Lifetimes, chosen at create
 * ---------------------------
 * PSHM_PERSIST  The POSIX default: the name lives until someone unlinks it
 *               (pshm_block_unlink, pshm_unlink, `pshm rm`) or the machine
 *               reboots.
 * PSHM_AUTO     Unlinked when the last process that has it open closes it or
 *               dies, and never while any process still has it open. Every
 *               handle holds a shared OFD lock on the object; the kernel drops
 *               it when the handle is closed or its process dies, so no
 *               daemon or heartbeat is involved.
 * PSHM_OWNED    Unlinked when the creating process closes it, exits or dies.
 *               Attachers never unlink it and do not prolong it.
 *
 * When a process closes its handle (pshm_block_close) or exits normally
 * (an atexit hook closes what is still open), the block goes at once. After
 * SIGKILL nothing runs in the dead process, so the block goes at the latest
 * when the next pshm call touches the name (open, create, unlink, stat) or
 * when `pshm gc` / pshm_block_gc() runs. Such a block is "stale": opening it
 * removes it and returns -PSHM_ESTALE; creating its name succeeds.
 *
 * The lifetime is recorded in an extended attribute of the object
 * ("user.pshm", or "trusted.pshm" where user xattrs are not available on
 * tmpfs and the caller is root), never inside the block. Where neither is
 * possible, creating an AUTO or OWNED block fails with -PSHM_ENOMARK.
 */
typedef enum pshm_lifetime {
    PSHM_PERSIST = 0,
    PSHM_AUTO = 1,
    PSHM_OWNED = 2
} pshm_lifetime;

/* Text for a lifetime: "persist", "auto", "owned". */
PSHM_API const char *pshm_lifetime_name(pshm_lifetime lt);

/*
 * Options for create and open. Always start from pshm_block_options_init(),
 * then set fields: fields added in later versions get their defaults that
 * way, and the library reads only the fields your build knows (struct_size).
 */
typedef struct pshm_block_options {
    size_t struct_size;     /* set by _init; do not touch */
    unsigned mode;          /* permission bits at create, default 0600 (umask applies, as for shm_open) */
    pshm_lifetime lifetime; /* at create; default PSHM_PERSIST */
    int readonly;           /* open: map PROT_READ from an O_RDONLY descriptor */
    int open_existing;      /* create: if the name exists, attach to it instead of -EEXIST */
    int prefault;           /* fault every page in at create/open (MAP_POPULATE) */
    int huge_pages;         /* ask for transparent huge pages; -PSHM_ENOHUGE if the system has none for shmem */
    int sparse;             /* create: do not reserve memory (skip posix_fallocate). Faster for
                               huge, sparsely used blocks, but a full /dev/shm then shows as
                               SIGBUS at first write instead of -ENOSPC at create. */
} pshm_block_options;

static inline void pshm_block_options_init(pshm_block_options *o)
{
    pshm_block_options z = {0};
    z.struct_size = sizeof z;
    z.mode = 0600;
    z.lifetime = PSHM_PERSIST;
    *o = z;
}

typedef struct pshm_block pshm_block;

/*
 * pshm_block_create: create a block of `size` bytes (> 0) named `name`, or
 * with a random name ("psm_" and 16 hex digits from getrandom, retried on
 * collision) when name is NULL, and map it read-write. The memory is zeroed
 * and, unless opt->sparse, reserved with posix_fallocate, so a full /dev/shm
 * is -ENOSPC here instead of SIGBUS at first write. The name appears only
 * once the block is fully sized (it is created unnamed and linked into
 * place), so an attacher never sees a half-made block.
 *
 * opt may be NULL for defaults.
 * Returns 0 and *out, or:
 *   -PSHM_ENAME_*  bad name;         -EINVAL  size 0 or bad option values
 *   -EEXIST        name is taken (and !opt->open_existing)
 *   -ENOSPC        not enough shared memory;  -EACCES  permission denied
 *   -EMFILE/-ENFILE/-ENOMEM  out of resources
 *   -PSHM_ENOMARK  AUTO/OWNED lifetime cannot be recorded on this system
 *   -PSHM_ENOHUGE  huge_pages asked for but unavailable
 * With opt->open_existing an existing block is attached instead (its size is
 * its own, `size` is ignored, its lifetime is its own); pshm_block_created()
 * tells which happened. A stale AUTO/OWNED block of that name is replaced.
 * Thread-safe. The handle is owned by the caller: pshm_block_close() it.
 */
PSHM_API int pshm_block_create(const char *name, size_t size,
                               const pshm_block_options *opt, pshm_block **out);

/*
 * pshm_block_open: attach to an existing block by name; its size comes from
 * fstat. opt may be NULL; only readonly, prefault and huge_pages are read.
 * Returns 0 and *out, or:
 *   -PSHM_ENAME_*  bad name;  -ENOENT  no such block;  -EACCES  permission denied
 *   -PSHM_ESTALE   the block was AUTO/OWNED and all its holders died: it has been removed
 *   -PSHM_EEMPTY   the object has size 0
 *   -EMFILE/-ENFILE/-ENOMEM  out of resources
 * Attaching to an AUTO block makes this handle one of its holders.
 */
PSHM_API int pshm_block_open(const char *name, const pshm_block_options *opt,
                             pshm_block **out);

/*
 * pshm_block_close: unmap and release the handle; NULL is a no-op returning 0.
 * For an AUTO block whose last holder this was, and for an OWNED block closed
 * by its creator, the name is unlinked (only if it still names this block).
 * Returns 0, or the -errno of a failed unlink (the handle is freed anyway).
 */
PSHM_API int pshm_block_close(pshm_block *b);

/*
 * pshm_block_unlink: remove the name of this block, if the name still refers
 * to it (a block created later under the same name is left alone). Processes
 * that have it mapped keep their mapping. Returns 0, -ENOENT if the name is
 * gone or names another block, -EACCES/-EPERM.
 */
PSHM_API int pshm_block_unlink(pshm_block *b);

/*
 * pshm_unlink: remove a name (shm_unlink with name checks). Returns 0,
 * -PSHM_ENAME_*, -ENOENT, -EACCES/-EPERM.
 */
PSHM_API int pshm_unlink(const char *name);

/* Accessors. Valid until pshm_block_close(); name has no leading slash. */
PSHM_API void *pshm_block_data(const pshm_block *b);
PSHM_API size_t pshm_block_size(const pshm_block *b);
PSHM_API const char *pshm_block_name(const pshm_block *b);
PSHM_API pshm_lifetime pshm_block_lifetime(const pshm_block *b);
PSHM_API int pshm_block_readonly(const pshm_block *b);
/* 1 if this handle created the block, 0 if it attached to an existing one. */
PSHM_API int pshm_block_created(const pshm_block *b);
/* The descriptor of the object (owned by the handle; do not close it). */
PSHM_API int pshm_block_fd(const pshm_block *b);

/* ------------------------------------------------------------------------ */
/* Inspection and garbage collection (what `pshm ls`, `info` and `gc` use)   */
/* ------------------------------------------------------------------------ */

typedef struct pshm_info {
    char name[PSHM_NAME_MAX + 1];
    uint64_t size;
    unsigned mode;          /* permission bits */
    unsigned uid, gid;
    int64_t mtime;          /* seconds since the epoch */
    int marked;             /* 1: pshm recorded a lifetime; 0: a raw/foreign object (PERSIST) */
    pshm_lifetime lifetime;
    long creator_pid;       /* 0 when unknown (unmarked objects) */
    int creator_alive;      /* 1 alive, 0 dead, -1 unknown (pid and start time both checked) */
    int holders;            /* AUTO/OWNED: 1 if some holder lives, 0 if none (stale); -1 n/a */
    int nmapped;            /* processes that map it (from /proc; -1 if unreadable) */
} pshm_info;

/*
 * pshm_block_stat: describe the object `name` without mapping it, and without
 * changing it (a stale block is reported, holders == 0, not removed).
 * Returns 0, -PSHM_ENAME_*, -ENOENT, -EACCES.
 */
PSHM_API int pshm_block_stat(const char *name, pshm_info *out);

/*
 * pshm_block_scan: describe every shared-memory object on the machine,
 * sorted by name. *out is an array of *count entries allocated by the
 * library; free it with pshm_block_scan_free(). Objects that vanish during
 * the scan are skipped. Returns 0, -ENOMEM, or the -errno of opening the
 * shared-memory directory.
 */
PSHM_API int pshm_block_scan(pshm_info **out, size_t *count);
PSHM_API void pshm_block_scan_free(pshm_info *infos);

/*
 * pshm_block_gc: remove every stale AUTO/OWNED object (all holders dead).
 * PERSIST and foreign objects are never touched. With dry_run, nothing is
 * removed. cb (may be NULL) is called for each object removed (or that would
 * be). Objects that are not ours to remove (-EACCES/-EPERM) are reported
 * through cb with err set and skipped. Returns the number removed (or, dry,
 * removable), or a negative code if the directory cannot be read.
 */
typedef void (*pshm_gc_cb)(const pshm_info *info, int err, void *ud);
PSHM_API int pshm_block_gc(int dry_run, pshm_gc_cb cb, void *ud);

/*
 * pshm_block_collect: garbage-collect one name: remove it if it is a stale
 * AUTO/OWNED object. Returns 1 if removed, 0 if it is not stale (live,
 * PERSIST or foreign: left alone), -PSHM_ENAME_*, -ENOENT, or -EACCES/-EPERM
 * if it is stale but not ours to remove.
 */
PSHM_API int pshm_block_collect(const char *name);

/* ======================================================================== */
/* ShareableList (list.c): CPython's ShareableList, byte for byte           */
/* ======================================================================== */

/* (section: list) */


/* ======================================================================== */
/* Arrays (array.c): typed n-dimensional arrays in numpy's .npy format      */
/* ======================================================================== */

/* (section: array) */


/* ======================================================================== */
/* Synchronisation (sync.c): locks, semaphores, events, barriers            */
/* ======================================================================== */

/* (section: sync) */


/* ======================================================================== */
/* Queues (queue.c): zero-copy message queues                               */
/* ======================================================================== */

/* (section: queue) */

/*
 * A queue is a pshm block holding a ring of messages that processes pass to
 * each other without copying: a producer reserves room in the ring, writes
 * the message in place and commits it; a consumer peeks at it in place and
 * releases it. pshm_queue_send / pshm_queue_recv copy on top of that.
 *
 * Modes, chosen at create
 * -----------------------
 * PSHM_QUEUE_SPSC       one producer handle and one consumer handle at a
 *                       time; variable-size messages packed in a byte ring.
 *                       The fastest.
 * PSHM_QUEUE_MPMC       any number of producers and consumers; each message
 *                       goes to exactly one consumer. Fixed-size slots of
 *                       max_msg bytes.
 * PSHM_QUEUE_BROADCAST  one producer; every consumer ("subscriber") sees
 *                       every message committed after its open returned.
 *                       With overwrite = 0 the producer waits for the slowest
 *                       live subscriber; with overwrite = 1 it never waits,
 *                       and a subscriber that falls more than a ring behind
 *                       loses its oldest messages: the loss is counted and
 *                       reported to it (pshm_queue_msginfo, stats.overruns).
 *
 * Messages
 * --------
 * A message is 0 to max_msg bytes. Its payload is contiguous in memory (a
 * message never wraps around the ring's end) and aligned to
 * PSHM_QUEUE_ALIGN (16) bytes, enough for any C type. Order: SPSC and
 * BROADCAST deliver in commit order; in MPMC each consumer receives any one
 * producer's messages in that producer's commit order, except that a
 * redelivered message comes late.
 *
 * Participants and crashes
 * ------------------------
 * Each handle occupies a slot of the queue's participant table (its pid and
 * start time are shown by `pshm queue stat`) and holds, for its whole life,
 * an exclusive OFD lock on one byte of the block's descriptor. The kernel
 * drops that lock when the handle is closed or its process dies, so a slot
 * that says "in use" while nobody holds its byte belongs to a dead process.
 * Whoever notices (a handle that waits, opens, or finds the dead party in
 * its way) recovers the slot and whatever it held, under that byte's lock,
 * so exactly one process recovers it. There are no heartbeats.
 * - A producer that dies between reserve and commit published nothing: in
 *   SPSC and BROADCAST its reservation simply vanishes; in MPMC the slot it
 *   reserved is skipped. Either way it counts in stats.lost_reservations. A
 *   committed message is never lost by a producer's death.
 * - A consumer that dies between peek and release did not consume the
 *   message: it is delivered again (at least once) - in SPSC to the next
 *   consumer, in MPMC to any consumer - and counts in stats.redeliveries.
 *   A message whose consumers died max_deliveries times is treated as
 *   poison: it is dropped and counts in stats.drops. max_deliveries = 1
 *   makes delivery at most once: the first death drops (and counts) it.
 *   A consumer that closes its handle while holding a peeked message gives
 *   it back the same way (counted as a redelivery, not towards poison).
 * - BROADCAST: a subscriber that dies holds nothing back: a waiting producer
 *   drops it from the set it waits for. Nothing is redelivered (no other
 *   subscriber wanted its copy).
 * So: every committed message is delivered to a live consumer (in BROADCAST,
 * to every live subscriber that was subscribed when it was committed), or
 * counted in stats.drops; duplicates happen only after a consumer died or
 * closed holding the message, and each counts in stats.redeliveries. No
 * consumer is ever handed a message that is still being written, and in
 * overwrite mode a subscriber is never given a message that was overwritten
 * while it read it (copying recv checks; zero-copy release reports
 * -PSHM_EOVERWRITTEN).
 * Recovery happens within recover_ms (default 50 ms) of a waiting handle
 * needing it; a dead participant that nobody waits on is recovered by the
 * next open. A crash is not an end of stream: the queue stays open and a new
 * producer may take over.
 *
 * Closing
 * -------
 * When the last live producer handle closes (pshm_queue_close; handles
 * opened with keep_open do not count), or anyone calls
 * pshm_queue_close_producer, the queue is closed for good: consumers drain
 * what was committed, then get -PSHM_ECLOSED; producers get -PSHM_ECLOSED
 * from reserve/send and from open.
 *
 * Waiting
 * -------
 * Each operation that may wait comes in three forms: pshm_queue_X waits as
 * long as needed, pshm_queue_tryX returns -EAGAIN instead of waiting, and
 * pshm_queue_timedX waits until `deadline`, an absolute CLOCK_MONOTONIC
 * time, then returns -ETIMEDOUT. Waiting polls the queue `spin` times, then
 * sleeps on a futex; a process that commits or releases makes a system call
 * only when someone sleeps. Signals do not interrupt waits.
 *
 * Threads and fork
 * ----------------
 * A handle is for one thread at a time (one pending reservation or peek per
 * handle); open one handle per thread. Handles are independent, also within
 * one process. fork(): a child must not use the parent's handles; it may
 * pshm_queue_close() them, which then only unmaps. Note that a child that
 * keeps an inherited handle's descriptor open keeps that participant
 * "alive" after the parent dies (the lock belongs to the shared
 * description), which delays its recovery until the child exits.
 *
 * Layout (version 1; see src/queue.c for the details): a 512-byte header
 * (magic "PSHMQUE1", layout version, ABI word, state EMPTY -> INITIALISING
 * -> READY, mode, geometry; the producer and consumer indices and the two
 * futex words each on their own 64-byte line), the participant table (128
 * bytes a slot), then the ring at a page boundary. Attaching checks every
 * field; a corrupt header is -PSHM_EBADFORMAT, never a crash, and every
 * length or position read from the ring is checked against the ring.
 */

typedef enum pshm_queue_mode {
    PSHM_QUEUE_SPSC = 1,
    PSHM_QUEUE_MPMC = 2,
    PSHM_QUEUE_BROADCAST = 3
} pshm_queue_mode;

/* What a handle does. In BROADCAST mode a consumer is a subscriber. */
typedef enum pshm_queue_role {
    PSHM_QUEUE_PRODUCER = 1,
    PSHM_QUEUE_CONSUMER = 2
} pshm_queue_role;

#define PSHM_QUEUE_ALIGN 16                /* payload alignment */
#define PSHM_QUEUE_MAX_PARTICIPANTS 1024   /* largest participant table */
#define PSHM_QUEUE_MAX_DELIVERIES 31       /* largest max_deliveries */

/*
 * Options for create and open; start from pshm_queue_options_init(). The
 * fields marked "create" shape the queue and are ignored by open (the queue
 * has its own); the others belong to the handle.
 */
typedef struct pshm_queue_options {
    size_t struct_size;         /* set by _init; do not touch */
    pshm_queue_mode mode;       /* create: default PSHM_QUEUE_SPSC */
    size_t capacity;            /* create: bytes of ring, default 1 MiB. SPSC rounds up to
                                   a power of two of at least 2 records of max_msg; MPMC and
                                   BROADCAST hold capacity / slot bytes messages (slot =
                                   max_msg + 16 rounded up to 64), rounded up to a power of
                                   two, at least 2 */
    size_t capacity_msgs;       /* create: if > 0, size the ring for this many messages of
                                   max_msg bytes instead (then capacity is ignored) */
    size_t max_msg;             /* create: largest message in bytes, default 4096;
                                   1 .. 2^30 */
    int overwrite;              /* create, BROADCAST only: 1 = slow subscribers lose their
                                   oldest messages; 0 (default) = the producer waits */
    unsigned max_participants;  /* create: participant slots, default 64, at most
                                   PSHM_QUEUE_MAX_PARTICIPANTS; SPSC needs 2 */
    unsigned max_deliveries;    /* create: a message is handed out at most this many times
                                   when its consumers die holding it; default 3 */
    unsigned spin;              /* polls before sleeping, default 2000; 0 sleeps at once */
    unsigned recover_ms;        /* a waiting handle checks for dead peers at least this
                                   often, default 50 */
    unsigned open_timeout_ms;   /* how long open waits for a queue being initialised,
                                   default 2000 */
    int keep_open;              /* producer: closing this handle never closes the queue
                                   (for a passing producer, e.g. `pshm queue send`) */
    pshm_block_options block;   /* create: lifetime, permission bits, open_existing (attach
                                   to an existing queue instead of -EEXIST), prefault,
                                   huge_pages, sparse; open: prefault */
} pshm_queue_options;

static inline void pshm_queue_options_init(pshm_queue_options *o)
{
    pshm_queue_options z = {0};
    z.struct_size = sizeof z;
    z.mode = PSHM_QUEUE_SPSC;
    z.capacity = (size_t)1 << 20;
    z.max_msg = 4096;
    z.max_participants = 64;
    z.max_deliveries = 3;
    z.spin = 2000;
    z.recover_ms = 50;
    z.open_timeout_ms = 2000;
    pshm_block_options_init(&z.block);
    *o = z;
}

typedef struct pshm_queue pshm_queue;
struct timespec;

/*
 * pshm_queue_create: create the queue `name` (NULL: a random name, as for
 * blocks) and open a handle on it in `role`. opt may be NULL for defaults.
 * The block is fully initialised before any attacher can use it.
 * Returns 0 and *out, or:
 *   -EINVAL   bad role or option values (mode, sizes, max_deliveries, ...)
 *   -EEXIST   the name is taken (and !opt->block.open_existing)
 *   -PSHM_ENAME_*, -ENOSPC, -EACCES, -PSHM_ENOMARK, ...: as pshm_block_create
 *   with block.open_existing and an existing queue: whatever pshm_queue_open returns
 * On failure nothing is left behind. The handle is the caller's:
 * pshm_queue_close() it. Thread-safe.
 */
PSHM_API int pshm_queue_create(const char *name, pshm_queue_role role,
                               const pshm_queue_options *opt, pshm_queue **out);

/*
 * pshm_queue_open: attach to the queue `name` in `role`, waiting up to
 * opt->open_timeout_ms for a queue still being initialised, and recover any
 * dead participants found on the way. opt may be NULL.
 * Returns 0 and *out, or:
 *   -ENOENT, -PSHM_ENAME_*, -EACCES, -PSHM_ESTALE: as pshm_block_open
 *   -PSHM_EKIND        the block is not a queue
 *   -PSHM_EVERSION     a queue of a layout version this build does not know
 *   -PSHM_EABI         a queue made by a build with a different layout
 *   -PSHM_EBADFORMAT   the header is corrupt
 *   -ETIMEDOUT         still being initialised after open_timeout_ms
 *   -PSHM_ENOTRECOVERABLE  its creator died while initialising it
 *   -PSHM_EROLE        SPSC producer/consumer or BROADCAST producer: that role
 *                      is held by another live handle
 *   -PSHM_ENOSLOT      every participant slot is held by a live handle
 *   -PSHM_ECLOSED      producer: the queue has been closed
 * Thread-safe. The handle is the caller's: pshm_queue_close() it.
 */
PSHM_API int pshm_queue_open(const char *name, pshm_queue_role role,
                             const pshm_queue_options *opt, pshm_queue **out);

/*
 * pshm_queue_close: leave the queue and free the handle; NULL is a no-op.
 * A pending reservation is cancelled (counted as a lost reservation); a
 * peeked, unreleased message is given back for redelivery. Closing the last
 * producer closes the queue (see Closing). The block is closed as by
 * pshm_block_close (an AUTO/OWNED queue may go away). In a forked child
 * this only unmaps. Returns 0 or the code of pshm_block_close.
 */
PSHM_API int pshm_queue_close(pshm_queue *q);

/*
 * pshm_queue_close_producer: close the queue for good (any handle may call
 * it): consumers drain, then get -PSHM_ECLOSED; further reserves and sends
 * get -PSHM_ECLOSED. Sleepers are woken. Returns 0.
 */
PSHM_API int pshm_queue_close_producer(pshm_queue *q);

/*
 * Reserve room for a message of up to n bytes and return a pointer to it in
 * the ring (*ptr, PSHM_QUEUE_ALIGN-aligned, valid until commit or cancel).
 * Nothing is visible to consumers until pshm_queue_commit.
 * Returns 0, or:
 *   -PSHM_ETOOBIG   n > max_msg
 *   -PSHM_EORDER    a reservation is already pending on this handle
 *   -PSHM_EROLE     the handle is a consumer
 *   -PSHM_ECLOSED   the queue has been closed
 *   -EAGAIN (try) / -ETIMEDOUT (timed): the queue stayed full
 *   -PSHM_EBADFORMAT  the shared state is corrupt
 */
PSHM_API int pshm_queue_reserve(pshm_queue *q, size_t n, void **ptr);
PSHM_API int pshm_queue_tryreserve(pshm_queue *q, size_t n, void **ptr);
PSHM_API int pshm_queue_timedreserve(pshm_queue *q, size_t n, void **ptr,
                                     const struct timespec *deadline);

/*
 * pshm_queue_commit: publish the reserved message with its final length
 * n (<= the reserved size). Returns 0, -PSHM_EORDER (nothing reserved),
 * -EINVAL (n larger than reserved), -PSHM_EBADFORMAT (the slot was taken
 * from under us: corrupt shared state). Never waits.
 * pshm_queue_cancel: drop the pending reservation (counted as a lost
 * reservation). Returns 0 or -PSHM_EORDER.
 */
PSHM_API int pshm_queue_commit(pshm_queue *q, size_t n);
PSHM_API int pshm_queue_cancel(pshm_queue *q);

/*
 * Peek at the next message in place: *ptr (PSHM_QUEUE_ALIGN-aligned) and
 * *len stay valid until pshm_queue_release. The message stays in the queue
 * (SPSC, MPMC: claimed by this handle) until released; peeking again before
 * that returns the same message.
 * Returns 0, or:
 *   -PSHM_ECLOSED   the queue is closed and everything was consumed
 *   -PSHM_EROLE     the handle is a producer
 *   -EAGAIN (try) / -ETIMEDOUT (timed): the queue stayed empty
 *   -PSHM_EBADFORMAT  a corrupt message (bad length or position); in MPMC it
 *                   is dropped and counted, in SPSC the queue cannot go on
 * BROADCAST overwrite: the bytes may be overwritten while you read them;
 * trust them only if pshm_queue_release then returns 0.
 */
PSHM_API int pshm_queue_peek(pshm_queue *q, const void **ptr, size_t *len);
PSHM_API int pshm_queue_trypeek(pshm_queue *q, const void **ptr, size_t *len);
PSHM_API int pshm_queue_timedpeek(pshm_queue *q, const void **ptr, size_t *len,
                                  const struct timespec *deadline);

/*
 * pshm_queue_release: consume the peeked message (its room goes back to the
 * producer). Returns 0, -PSHM_EORDER (nothing peeked), or, BROADCAST
 * overwrite only, -PSHM_EOVERWRITTEN: the producer overwrote the message
 * while it was read, so what was read is garbage; the message counts as
 * lost (overrun) and the handle has moved past it anyway.
 */
PSHM_API int pshm_queue_release(pshm_queue *q);

/*
 * Copying forms: send = reserve + copy + commit; recv = peek + copy +
 * release into buf (cap bytes), *len = the message length. Same returns as
 * their parts, plus for recv -PSHM_ETRUNC: cap < the message length
 * (*len says how much is needed; the message stays in the queue, or, in
 * BROADCAST mode, stays next for this handle).
 */
PSHM_API int pshm_queue_send(pshm_queue *q, const void *buf, size_t len);
PSHM_API int pshm_queue_trysend(pshm_queue *q, const void *buf, size_t len);
PSHM_API int pshm_queue_timedsend(pshm_queue *q, const void *buf, size_t len,
                                  const struct timespec *deadline);
PSHM_API int pshm_queue_recv(pshm_queue *q, void *buf, size_t cap, size_t *len);
PSHM_API int pshm_queue_tryrecv(pshm_queue *q, void *buf, size_t cap, size_t *len);
PSHM_API int pshm_queue_timedrecv(pshm_queue *q, void *buf, size_t cap, size_t *len,
                                  const struct timespec *deadline);

/* About the message most recently peeked or received on this handle. */
typedef struct pshm_queue_msg_info {
    unsigned attempts;   /* earlier deliveries that ended with the consumer's death (0 normally) */
    unsigned returned;   /* 1 if a consumer closed its handle holding it before (SPSC, MPMC) */
    uint64_t lost;       /* BROADCAST: messages this subscriber lost (overwritten before or
                            while it read them) since the previous one it received intact */
} pshm_queue_msg_info;

/* Returns 0, or -PSHM_EORDER if no message was peeked or received yet. */
PSHM_API int pshm_queue_msginfo(const pshm_queue *q, pshm_queue_msg_info *mi);

/*
 * Statistics, summed over every participant that ever used the queue. A
 * counter a process keeps for itself may miss the one operation it was
 * killed in; what recovery counts for the dead (lost reservations,
 * redeliveries, drops after a death) is counted exactly once.
 */
typedef struct pshm_queue_stats {
    pshm_queue_mode mode;
    int overwrite;             /* BROADCAST overwrite mode */
    int closed;                /* the producer side is closed */
    unsigned max_participants, max_deliveries;
    unsigned producers, consumers; /* live handles by role */
    unsigned dead;             /* slots of dead handles not recovered yet */
    uint64_t capacity;         /* SPSC: ring bytes; MPMC/BROADCAST: messages */
    uint64_t max_msg;
    uint64_t depth;            /* messages waiting now (BROADCAST: behind the slowest subscriber) */
    uint64_t depth_bytes;      /* SPSC: ring bytes in use; others: depth * slot size */
    uint64_t messages;         /* committed */
    uint64_t bytes;            /* payload bytes committed */
    uint64_t received;         /* released by consumers (BROADCAST: summed over subscribers) */
    uint64_t waits_full;       /* blocking/timed reserves that found the queue full */
    uint64_t waits_empty;      /* blocking/timed peeks that found it empty */
    uint64_t drops;            /* committed messages dropped: poison or corrupt */
    uint64_t lost_reservations;/* reserved, never committed (producer died or cancelled) */
    uint64_t redeliveries;     /* messages handed out again (consumer died or closed holding it) */
    uint64_t overruns;         /* BROADCAST overwrite: messages subscribers lost */
} pshm_queue_stats;

/* One participant slot in use, as pshm_queue_inspect reports it. */
typedef struct pshm_queue_participant {
    unsigned index;            /* slot in the table */
    pshm_queue_role role;
    long pid;
    uint64_t start_time;       /* process start, clock ticks since boot */
    int alive;                 /* 1: holds its liveness lock; 0: dead, not recovered yet */
    uint64_t sent, received, waits_full, waits_empty;
} pshm_queue_participant;

/*
 * pshm_queue_stat: fill *st (size = sizeof *st, for forward compatibility)
 * from the shared counters. Reads only; approximate while the queue moves.
 * Returns 0 or -EINVAL.
 */
PSHM_API int pshm_queue_stat(const pshm_queue *q, pshm_queue_stats *st, size_t size);

/*
 * pshm_queue_inspect: describe the queue `name` without joining it (opens
 * the block read-only, changes nothing): statistics into *st (may be NULL)
 * and up to cap participants into parts (may be NULL), *n (may be NULL) =
 * the number of slots in use. Returns 0, or the errors of pshm_block_open,
 * -PSHM_EKIND (not a queue, or not initialised), -PSHM_EVERSION, -PSHM_EABI,
 * -PSHM_EBADFORMAT, -PSHM_ESTALE (an AUTO/OWNED block whose holders all
 * died: reported, not removed). Thread-safe.
 */
PSHM_API int pshm_queue_inspect(const char *name, pshm_queue_stats *st, size_t size,
                                pshm_queue_participant *parts, size_t cap, size_t *n);

/* Accessors. */
PSHM_API pshm_block *pshm_queue_block(const pshm_queue *q); /* owned by q */
PSHM_API pshm_queue_mode pshm_queue_get_mode(const pshm_queue *q);
PSHM_API size_t pshm_queue_max_msg(const pshm_queue *q);
/* "spsc", "mpmc", "broadcast" (or "unknown"). */
PSHM_API const char *pshm_queue_mode_name(pshm_queue_mode m);


#ifdef __cplusplus
}
#endif
#endif /* PSHM_H */
