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
#define PSHM_ERRNO_MAP_QUEUE(X)

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
    int watch;              /* create, AUTO/OWNED: start a watcher process that removes the block
                               the moment its last holder (AUTO) or owner (OWNED) dies, even by
                               SIGKILL, instead of at the next pshm call or gc. See below. */
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
 * opt->watch: the watcher is a detached grandchild process (so it never
 * becomes the caller's zombie) in its own session. It closes every inherited
 * descriptor, unmaps every shared-memory mapping, writes nothing, waits in the
 * kernel (a blocking OFD lock on the hold byte, granted only when no holder
 * is left), removes the name if it still refers to the block, and exits. It
 * costs one fork() at create (page tables are copied: milliseconds for a
 * large process). The caller may see one SIGCHLD for the short-lived
 * intermediate child, which pshm reaps itself. -EINVAL for PERSIST;
 * -ENOTSUP where the platform layer cannot do it.
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


#ifdef __cplusplus
}
#endif
#endif /* PSHM_H */
