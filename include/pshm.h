/* SPDX-License-Identifier: MIT */
/*
 * pshm.h - direct access to shared memory between processes on one machine.
 *
 * This header is the manual. Every function says what it does, what it returns
 * and when, who owns what, whether it is thread-safe and what happens across
 * fork(). The .c files only explain why.
 *
 * Conventions that hold for the whole library
 * ===========================================
 * Return values
 *   Every function that can fail returns int: 0 on success, a negative code on
 *   failure: -errno for conditions the OS names (-ENOENT, -EEXIST, -ENOSPC,
 *   -EACCES, ...) or -PSHM_E* (below) for conditions errno lacks. No function
 *   returns a positive int: results (counts, flags, lengths, handles) come
 *   back through out-parameters, which are written only on success unless the
 *   function says otherwise. pshm_strerror() and pshm_errname() describe any
 *   code without allocating.
 *   Functions that cannot fail return their result directly: accessors (see
 *   Naming), the *_name() functions (static strings) and pshm_version().
 * Naming
 *   pshm_ public, pshm__ internal (never exported), PSHM_ macros and constants.
 *   Functions are pshm_<object>_<verb>, with paired verbs: create/open <->
 *   close, init <-> destroy, lock/trylock/timedlock <-> unlock, reserve <->
 *   commit, peek <-> release. A verb that may wait comes as X (waits as long
 *   as needed), tryX (never waits: -EAGAIN or -EBUSY) and timedX (waits until
 *   an absolute CLOCK_MONOTONIC deadline: -ETIMEDOUT).
 *   Accessors are pshm_<object>_<attribute>(handle): no "get_", never fail,
 *   and give a documented neutral value (NULL, 0) for a NULL handle.
 *   Inspection has one pattern: pshm_<object>_stat(name, info) describes the
 *   object by name, pshm_<object>_fstat(handle, info) through an open handle
 *   (as stat(2) and fstat(2)); both fill a pshm_<object>_info and change
 *   nothing. Enum values are PSHM_<ENUM>_<VALUE> or, for the oldest ones,
 *   PSHM_<VALUE>.
 * Structs that cross the API
 *   Options (pshm_*_options) and results (pshm_*_info, pshm_queue_participant,
 *   pshm_queue_msg_info) begin with `size_t struct_size` and have an _init()
 *   function that sets it and every default. Always start from _init(): the
 *   library reads and writes only the first struct_size bytes, so a program
 *   built against an older header keeps working with a newer library (fields
 *   are only ever appended). Options may be NULL for all defaults; a result
 *   struct whose struct_size is 0 (not initialised) is -EINVAL.
 *   Value types (pshm_value, pshm_dtype, pshm_span) have a fixed layout that
 *   never changes within a SONAME.
 * Options
 *   pshm_block_options, pshm_sync_options and pshm_queue_options begin with
 *   the same fields, with the same names, types, defaults and meaning (mode,
 *   lifetime, readonly, open_existing, prefault, huge_pages, sparse, watch,
 *   open_timeout_ms); each kind then adds its own. Durations in options are
 *   `unsigned` milliseconds; waits take absolute deadlines (pshm_deadline()).
 * Handles and ownership
 *   Anything that owns an OS resource is an opaque handle (pshm_block,
 *   pshm_list, pshm_array, pshm_sync, pshm_queue). Constructors leave
 *   *out == NULL on failure and leave nothing behind in /dev/shm; destructors
 *   accept NULL. Pointers a handle returns (data, names, shapes) are owned by
 *   the handle and valid until it is closed. Objects that live inside memory
 *   (pshm_mutex and the other synchronisation objects) are not handles: they
 *   are initialised and destroyed in place, and a named one is reached
 *   through the pshm_sync handle that maps it.
 * Text into caller buffers
 *   Functions that write text take (buf, cap, size_t *len): they write at most
 *   cap bytes, always NUL-terminated when cap > 0, and set *len (may be NULL)
 *   to the full length without the NUL. A cap too small gives -ERANGE (buf
 *   then holds a truncated prefix); buf NULL with cap 0 asks for the length
 *   and returns 0.
 * Threads
 *   Handles are not locked internally: use one handle from one thread at a
 *   time, or lock around it. Distinct handles are independent. The memory a
 *   handle maps is shared with other processes and may be used from any
 *   thread. Functions that take no handle are thread-safe.
 * fork()
 *   The child inherits mappings and descriptors. It may read and write the
 *   memory, and may close inherited handles, which then only unmaps and
 *   closes: a lifetime is never ended from a forked child's copy of a handle.
 *   Open new handles in the child for anything else. Every descriptor pshm
 *   opens is close-on-exec.
 * Shared memory is untrusted input
 *   Every offset, length and count read from a block is checked against the
 *   block before use; corrupt bytes give an error code, never a crash (see the
 *   README's reliability section for what a peer can and cannot do). A peer
 *   that may write a block may also shrink it: openers check the size at
 *   attach, but an access through a mapping past the new end raises SIGBUS
 *   in the accessing process; pshm_block_read copies out without faulting.
 *
 * Versions and the ABI
 * --------------------
 * PSHM_VERSION_* give the version of this header and pshm_version() the
 * version of the library loaded at run time. libpshm.so.N exports only the
 * functions declared here, each under a symbol version (PSHM_0.2 for this
 * release's set). The SONAME's N changes only when an existing function's
 * signature or meaning, or a value type's layout, changes; a release that only
 * adds functions (under a new symbol version) or appends fields to the
 * struct_size structs keeps it.
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
#include <string.h> /* memset, for the inline _init functions */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PSHM_BUILDING) && defined(__GNUC__)
#define PSHM_API __attribute__((visibility("default")))
#else
#define PSHM_API
#endif

#define PSHM_VERSION_MAJOR 0
#define PSHM_VERSION_MINOR 3
#define PSHM_VERSION_PATCH 0
#define PSHM_VERSION_STRING "0.3.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, as pshm_version() returns it. */
#define PSHM_VERSION_NUMBER                                                     \
    (PSHM_VERSION_MAJOR * 10000 + PSHM_VERSION_MINOR * 100 + PSHM_VERSION_PATCH)

/* The library's version at run time: PSHM_VERSION_NUMBER of the build that
 * made it, and its string ("0.3.0"). Never fail; thread-safe. */
PSHM_API unsigned pshm_version(void);
PSHM_API const char *pshm_version_string(void);

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
    X(ECLOSED, 1014, "the queue was shut down")                                \
    X(ESTALE, 1015, "the block is stale: every holder of its lifetime died")              \
    X(EFTYPE, 1016, "not a shared-memory object (a directory, symlink, FIFO or device)")

/* ---- ShareableList codes (list.c), 1020-1039 ---- */
#define PSHM_ERRNO_MAP_LIST(X)                                                  \
    X(ELIST_INDEX, 1020, "list index out of range")                             \
    X(ELIST_NOSPACE, 1021, "str or bytes value is longer than the list item's storage") \
    X(ELIST_UTF8, 1022, "str is not valid UTF-8")                               \
    X(ELIST_NOTFOUND, 1023, "value is not in the list")                         \
    X(ELIST_TOOBIG, 1024, "str or bytes value too long for a list item (at most 9999991 bytes)") \
    X(ELIST_READONLY, 1025, "list is open read-only")                           \
    X(ELIST_SIZE, 1026, "block size does not match a ShareableList layout (too small, truncated or trailing bytes)") \
    X(ELIST_COUNT, 1027, "ShareableList item count is negative or too large for the block") \
    X(ELIST_OFFSETS, 1028, "ShareableList item offsets are out of range, misaligned or decreasing") \
    X(ELIST_FORMAT, 1029, "unknown ShareableList packing format")               \
    X(ELIST_CODE, 1030, "unknown ShareableList back-transform code")            \
    X(ELIST_MISMATCH, 1031, "ShareableList packing format and back-transform code disagree")

/* ---- array codes (array.c), 1040-1059 ---- */
#define PSHM_ERRNO_MAP_ARRAY(X)                                                 \
    X(EARRAY_MAGIC, 1040, "not a .npy array: no \\x93NUMPY magic")               \
    X(EARRAY_SHORT, 1041, "the .npy header is cut short by the end of the block or file") \
    X(EARRAY_HEADERLEN, 1042, "the .npy header length is absurd")              \
    X(EARRAY_HEADER, 1043, "the .npy header is not the dict numpy writes")     \
    X(EARRAY_DTYPE, 1044, "unsupported or unknown array dtype")                \
    X(EARRAY_STRUCT, 1045, "structured dtypes (a list descr) are not supported") \
    X(EARRAY_SHAPE, 1046, "array shape has a negative dimension")              \
    X(EARRAY_NDIM, 1047, "array has more dimensions than PSHM_ARRAY_MAXDIM")   \
    X(EARRAY_OVERFLOW, 1048, "array size overflows (shape product times item size)") \
    X(EARRAY_TRUNCATED, 1049, "array data extends past the end of the block or file") \
    X(EARRAY_ALIGN, 1050, "array data does not start at a multiple of 64 bytes") \
    X(EARRAY_MISMATCH, 1051, "existing array has a different dtype, shape or order")

/* ---- synchronisation codes (sync.c), 1060-1079 ---- */
#define PSHM_ERRNO_MAP_SYNC(X)                                                  \
    X(EBROKEN, 1060, "barrier broken: a participant died or timed out, or it was reset") \
    X(EREADERDEAD, 1061, "a reader died holding the lock; its hold was released")

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

/*
 * pshm_deadline: *out = now (CLOCK_MONOTONIC) + timeout_ms, the absolute
 * deadline every timed function takes. Returns 0, or -EINVAL if out is NULL
 * or timeout_ms < 0.
 */
struct timespec; /* <time.h> */
PSHM_API int pshm_deadline(struct timespec *out, long long timeout_ms);

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
 * PSHM_GROUP    Lives until it is unlinked or until the program that made it
 *               ends: the program is a lifetime group, the process that
 *               first joined it and every process started from it (forked
 *               children by inheritance, exec'd ones through the
 *               PSHM_GROUP_ENV environment variable, see pshm_group_join).
 *               close() keeps the block; when the last member of the group
 *               exits or dies (SIGKILL included), the group's watcher
 *               removes every GROUP block the group made and did not unlink.
 *               A member that creates a block and exits does not take it
 *               along while other members live. (What Python's
 *               SharedMemory(create=True) with track=True promises, without
 *               a tracker process.) The block is recorded as PERSIST in its
 *               own mark (pshm ls shows "persist"); only the creating
 *               handle's pshm_block_lifetime() says GROUP. Not with watch
 *               (-EINVAL): the group has its own watcher. Linux only
 *               (-ENOTSUP elsewhere).
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
 *
 * A mark counts only if it cannot have been forged by someone other than
 * the object's owner, since a mark is what lets pshm remove a block and a
 * peer must never get a block removed that it could not remove itself
 * (/dev/shm is sticky: only the owner or root unlinks). trusted.pshm (only
 * root writes it) always counts, and is read in preference to user.pshm.
 * user.pshm, which anyone who may write the object can set, counts on an
 * object that no one but its owner may write (no group or other write
 * bit), or that carries the sticky bit, which only the owner or root can
 * set: creating an AUTO or OWNED block whose mode (after the umask) lets
 * group or others write sets it (pshm_block_info.mode shows 01666, say).
 * Any other mark is ignored: the object is PERSIST to every pshm call and
 * to `pshm ls` and is never collected. A peer that may write an AUTO or
 * OWNED block of yours can still rewrite its mark (turn it PERSIST, or AUTO
 * into OWNED) but cannot give a lifetime to a block you did not.
 *
 * fork(): the hold belongs to the open file description, which a forked
 * child shares, so a child that keeps an inherited AUTO (or OWNED
 * creator's) handle keeps the block held - it counts as the same holder as
 * its parent in pshm_block_info.holders and `pshm ls` - until both have
 * closed it or died. The child's close never removes the block; if the
 * parent died first, the block is stale once the child lets go and goes at
 * the next open, create or gc (or at once with opt.watch).
 */
typedef enum pshm_lifetime {
    PSHM_PERSIST = 0,
    PSHM_AUTO = 1,
    PSHM_OWNED = 2,
    PSHM_GROUP = 3
} pshm_lifetime;

/* Text for a lifetime: "persist", "auto", "owned", "group". */
PSHM_API const char *pshm_lifetime_name(pshm_lifetime lt);

/*
 * Options for create and open: the fields every options struct of the
 * library begins with (pshm_sync_options and pshm_queue_options repeat them,
 * same names, types and defaults). Start from pshm_block_options_init().
 */
typedef struct pshm_block_options {
    size_t struct_size;     /* set by _init; do not touch */
    unsigned mode;          /* create: permission bits, default 0600 (umask applies, as for
                               shm_open). Masked to 0777: setuid, setgid and sticky bits
                               are dropped (a block is never a setuid file); bits above
                               07777 are -EINVAL */
    pshm_lifetime lifetime; /* create: default PSHM_PERSIST */
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
    unsigned open_timeout_ms; /* open: how long to wait for an object whose creator is still
                               writing its header (arrays, sync objects, queues); default 2000.
                               Raw blocks never wait. */
} pshm_block_options;

static inline void pshm_block_options_init(pshm_block_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->mode = 0600;
    o->lifetime = PSHM_PERSIST;
    o->open_timeout_ms = 2000;
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
 *                  (always on the portable fallback, which offers PERSIST only)
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

/*
 * pshm_block_read: copy n bytes at offset off of b's object into buf
 * (private memory) with pread on the handle's descriptor, never through the
 * mapping, so it cannot fault: a peer that may write the block can shrink
 * it (ftruncate) at any time, and a read through the mapping past the new
 * end raises SIGBUS in the reader (see the README's Reliability section).
 * *got (may be NULL) = the bytes copied: fewer than n only if the object
 * now ends before off + n (compare pshm_block_fstat's size with
 * pshm_block_size to see that it shrank). Returns 0, -EINVAL (b NULL, or
 * buf NULL with n > 0), or -errno of pread. The bytes are a snapshot that
 * other processes may change meanwhile. Thread-safe for distinct buffers;
 * works in a forked child.
 */
PSHM_API int pshm_block_read(const pshm_block *b, uint64_t off, void *buf, size_t n,
                             size_t *got);

/* ------------------------------------------------------------------------ */
/* Lifetime groups (PSHM_GROUP)                                              */
/* ------------------------------------------------------------------------ */

/* The environment variable that carries a group to exec'd children. */
#define PSHM_GROUP_ENV "PSHM_GROUP"

/*
 * pshm_group_join: make this process a member of a lifetime group, if it is
 * not one already (then: 0, nothing changes; a forked child is a member of
 * its parent's group from birth). id names the group to join (NULL: the
 * value of PSHM_GROUP_ENV, if set); when it is not given, or that group has
 * ended, a new group is made: an anchor object "pshm_group_<16 hex>" in the
 * shared-memory directory (sparse, 17 MiB of address space, a page or two
 * of memory) and one watcher process (as for pshm_block_options.watch) that
 * removes the group's blocks and the anchor when the last member is gone.
 * On success PSHM_GROUP_ENV is set (setenv) to the group's id, so children
 * started with exec join it when they call this (or create a GROUP block).
 * Creating a PSHM_GROUP block joins implicitly; call this early (before
 * starting children) so that the program is one group. Making a new group
 * also reaps any ended group whose watcher is gone (killed, or never
 * started): its listed blocks and its anchor are removed.
 * Membership ends only with the process (or when every descriptor sharing
 * the membership is closed at exit/exec). Returns 0, -PSHM_ENAME_*, -EINVAL
 * (id is not a group's name), or the codes of pshm_block_create and of
 * starting a watcher (-EAGAIN, -ENOMEM, -ENOTSUP on the portable
 * fallback). Thread-safe. fork(): see above; exec(): membership is dropped
 * (descriptors are close-on-exec) and regained by joining again.
 */
PSHM_API int pshm_group_join(const char *id);

/*
 * pshm_group_id: this process's group id (the anchor's name), as text into
 * (buf, cap, len). Returns 0, -ENOENT (not a member), -ERANGE, -EINVAL.
 * Thread-safe.
 */
PSHM_API int pshm_group_id(char *buf, size_t cap, size_t *len);

/* ------------------------------------------------------------------------ */
/* Inspection and garbage collection (what `pshm ls`, `info` and `gc` use)   */
/* ------------------------------------------------------------------------ */

/* The longest path of an object: the shared-memory directory and a name. */
#define PSHM_PATH_MAX (PSHM_NAME_MAX + 64)

typedef struct pshm_block_info {
    size_t struct_size;     /* set by pshm_block_info_init() */
    char name[PSHM_NAME_MAX + 1];
    char path[PSHM_PATH_MAX]; /* where the object lives, e.g. "/dev/shm/NAME" (as numpy.load takes) */
    uint64_t size;
    unsigned mode;          /* permission bits (07777) */
    unsigned uid, gid;
    int64_t mtime;          /* last modification, seconds since the epoch */
    int32_t mtime_nsec;     /* ... and nanoseconds */
    int readable;           /* 1: this process may open it for reading; 0: it may not, so
                               marked, lifetime, creator, holders and nmapped are unknown */
    int marked;             /* 1: pshm recorded a lifetime; 0: a raw/foreign object (PERSIST) */
    pshm_lifetime lifetime;
    long creator_pid;       /* 0 when unknown (unmarked objects) */
    int creator_alive;      /* 1 alive, 0 dead, -1 unknown (pid and start time both checked) */
    long holders;           /* AUTO/OWNED: open handles holding its lifetime (0: stale); -1 n/a
                               or unknown. A forked child that kept an inherited handle's
                               descriptor shares that handle's hold: it is not counted again. */
    long nmapped;           /* processes that map it (from /proc; -1 if unreadable) */
} pshm_block_info;

static inline void pshm_block_info_init(pshm_block_info *i)
{
    memset(i, 0, sizeof *i);
    i->struct_size = sizeof *i;
}

/*
 * pshm_block_stat: describe the object `name` without mapping it, without
 * changing it and without waiting for anyone (a stale block is reported,
 * holders == 0, not removed). out must have been initialised with
 * pshm_block_info_init(). Returns 0, -EINVAL (out NULL or not initialised),
 * -PSHM_ENAME_*, -ENOENT, -PSHM_EFTYPE (the name is a directory, symlink,
 * FIFO or device, not a shared-memory object), -EACCES (the directory is
 * not searchable). An object this process cannot read is described from
 * what stat(2) tells, with out->readable == 0.
 */
PSHM_API int pshm_block_stat(const char *name, pshm_block_info *out);

/* pshm_block_fstat: the same for the object an open handle maps (even if
 * its name was removed or reused since: then name and path are the handle's
 * and nmapped counts this process). Returns 0 or -EINVAL. */
PSHM_API int pshm_block_fstat(const pshm_block *b, pshm_block_info *out);

/*
 * pshm_block_scan: describe every shared-memory object whose name matches
 * the shell pattern `pattern` (fnmatch(3); NULL matches all), in name
 * order: cb(info, ud) is called once per object, with an info valid only
 * during the call. cb returns 0 to go on, or a negative code to stop, which
 * pshm_block_scan then returns. Objects that vanish during the scan, and
 * entries that are not shared-memory objects, are skipped. Returns 0,
 * -EINVAL (cb NULL), -ENOMEM, the -errno of opening the directory, -ENOTSUP
 * where objects cannot be listed (the portable fallback), or cb's code.
 */
typedef int (*pshm_block_scan_cb)(const pshm_block_info *info, void *ud);
PSHM_API int pshm_block_scan(const char *pattern, pshm_block_scan_cb cb, void *ud);

/*
 * pshm_block_gc: remove every stale AUTO/OWNED object (all holders dead)
 * whose name matches `pattern` (fnmatch(3); NULL: all). PERSIST and foreign
 * objects are never touched, nor is an object the caller could not remove
 * with unlink itself. flags: 0 or PSHM_GC_DRY_RUN (remove nothing; report
 * what would be removed). cb (may be NULL) is called once per stale object
 * found: err 0 if it was removed (or would be), else why not (-EACCES,
 * -EPERM: not ours to remove). *removed (may be NULL) = objects removed
 * (dry run: removable). Returns 0 if every stale object found was removed
 * (dry run: could be), else the first error met (every object is still
 * tried), or -EINVAL, or the -errno of reading the directory (-ENOTSUP on
 * the portable fallback, which cannot list objects).
 */
#define PSHM_GC_DRY_RUN 1u
typedef void (*pshm_gc_cb)(const pshm_block_info *info, int err, void *ud);
PSHM_API int pshm_block_gc(const char *pattern, unsigned flags, pshm_gc_cb cb, void *ud,
                           size_t *removed);

/*
 * pshm_block_collect: garbage-collect one name: remove it if it is a stale
 * AUTO/OWNED object. *removed (may be NULL) = 1 if it was removed, 0 if it
 * is not stale (live, PERSIST or foreign: left alone). Returns 0,
 * -PSHM_ENAME_*, -ENOENT, -PSHM_EFTYPE, or -EACCES/-EPERM if it is stale but
 * not ours to remove.
 */
PSHM_API int pshm_block_collect(const char *name, int *removed);

/* ======================================================================== */
/* ShareableList (list.c): CPython's ShareableList, byte for byte           */
/* ======================================================================== */

/* (section: list) */

/*
 * A ShareableList is a fixed-length list of int, float, bool, None, str and
 * bytes items in one block, with exactly the bytes CPython's
 * multiprocessing.shared_memory.ShareableList uses (3.8 to 3.13 share one
 * layout). A C process and a Python process open the same list by name and
 * read and write it in both directions: pshm_list_open() takes CPython's
 * lists, and ShareableList(name=...) takes pshm's.
 *
 * Layout (native byte order; block offsets in bytes)
 * --------------------------------------------------
 *   0              N, the item count (int64)
 *   8              N+1 slot offsets (int64), relative to the data area:
 *                  offsets[0] = 0, item i owns [offsets[i], offsets[i+1]),
 *                  offsets[N] = D, the data area's size
 *   (N+2)*8        the data area, one slot per item
 *   (N+2)*8+D      N packing formats, 8 bytes each, NUL-padded:
 *                    "q"        int, int64 at the slot's start
 *                    "d"        float, a double at the slot's start
 *                    "xxxxxxx?" bool, byte 7 of the slot (nonzero = True)
 *                    "xxxxxx?x" None, 8 bytes written as zero
 *                    "<n>s"     str (UTF-8) or bytes, n bytes NUL-padded
 *   (N+2)*8+D+8N   N back-transform codes, one signed byte each:
 *                    0 int, float, bool; 1 str; 2 bytes; 3 None
 * The block is exactly 8*(2N+2) + D + N bytes. Example, checked against
 * CPython 3.11: [1, 2.5, 'hi', b'ab', None, True] is 166 bytes with format
 * "qd8s8sxxxxxx?xxxxxxxx?".
 *
 * Slots are fixed when the list is created: 8 bytes for int, float, bool
 * and None, 8*(len/8 + 1) bytes for str and bytes. Every slot size is a
 * multiple of 8 and the data area starts at a multiple of 8, so every slot
 * is 8-byte aligned in the (page-aligned) mapping; pshm rejects lists whose
 * offsets are not multiples of 8 (neither CPython nor pshm makes them).
 *
 * Where pshm differs from CPython (CPython's bugs, fixed so that CPython
 * still reads pshm's lists correctly)
 * - A str slot is sized by the UTF-8 length of the string, not by its
 *   number of characters (CPython gh-88336: ShareableList(['é'*5]) keeps 8
 *   of the 10 bytes and reads back 'éééé'). The format is "<slot>s", so
 *   CPython reads the whole string.
 * - A failed set changes nothing: the value's type, length and (for str)
 *   UTF-8 are checked before a byte is written. CPython writes the new
 *   format before packing the value, and struct.pack_into zeroes the slot
 *   before it fails: sl[i] = 2**64 on a str item leaves the int 0.
 * - Out-of-range negative indices are errors (CPython computes i + N twice,
 *   so sl[-N-1] reads, and sl[-N-1] = x writes, the wrong bytes).
 * - A failed create leaves no block (CPython leaks the block when packing
 *   fails after it was created, e.g. ShareableList([2**64])).
 * Kept for compatibility: str and bytes lose their trailing NUL bytes
 * (gh-106939): 'a\0' reads back as 'a' on both sides, because the format
 * pads with NULs and readers strip them. Embedded NULs are kept.
 *
 * Concurrency
 * - A set that keeps an int, float, bool or None item's type is one aligned
 *   8-byte store (an atomic store on every platform pshm supports), and a get
 *   of such an item is one aligned 8-byte load: a pshm reader in any process
 *   sees the old or the new value, never a mix, whatever the number of pshm
 *   writers. (CPython's reader copies the 8 bytes with memcpy, which
 *   compilers make one load on x86-64 and arm64.) CPython's writer does not
 *   give this: struct.pack_into first zeroes the 8 bytes and then writes the
 *   value, so while CPython sets an item a reader may see 0, 0.0 or False.
 * - A set that changes an item's type writes the value, then the format,
 *   then the code: a concurrent reader may see a mix (for example the new
 *   bits read under the old type), or an error code for a moment.
 * - str and bytes sets are not atomic: a concurrent reader may see part of
 *   the old and part of the new bytes (and then perhaps -PSHM_ELIST_UTF8).
 * - Lock around the list (or keep to same-type scalar sets from pshm) when
 *   readers must never see those states. No pshm call locks.
 *
 * Never trusting the bytes
 * pshm_list_open() checks the whole layout before returning: every count,
 * offset, format and code is bounds-checked, and nothing outside the block
 * is read. Each get and set checks its item again, because another process
 * may write anything at any time. A failure names its class:
 *   -PSHM_ELIST_SIZE      the block's size is not the layout's: under 16
 *                         bytes, cut inside the formats or codes, or with
 *                         bytes after them (a zeroed block is not [];
 *                         on macOS, which reports sizes rounded up to
 *                         pages, up to 16 KiB of page padding is accepted)
 *   -PSHM_ELIST_COUNT     N is negative, or its offsets table does not fit
 *   -PSHM_ELIST_OFFSETS   offsets do not start at 0, decrease, leave a slot
 *                         under 8 bytes, are not multiples of 8, or point
 *                         past the block (also a block cut inside its data)
 *   -PSHM_ELIST_FORMAT    a packing format that is none of the above, or a
 *                         "<n>s" with n larger than the slot
 *   -PSHM_ELIST_CODE      a back-transform code other than 0 to 3
 *   -PSHM_ELIST_MISMATCH  a format and a code that do not belong together
 *                         (e.g. "q" with code 1)
 * fork(): a child inherits list handles as it inherits blocks: it may get
 * and set through them, and pshm_list_close() in the child only unmaps.
 *
 * A list is visible under its name before pshm_list_create() has written it:
 * an open in that window fails with -PSHM_ELIST_SIZE (pshm writes N last);
 * pass the name on once create has returned, as with CPython.
 */

/* The type of an item. PSHM_NONE is 0, so a zeroed pshm_value is None. */
typedef enum pshm_vtype {
    PSHM_NONE = 0,
    PSHM_INT = 1,   /* int64_t */
    PSHM_FLOAT = 2, /* double */
    PSHM_BOOL = 3,
    PSHM_STR = 4,   /* UTF-8 text */
    PSHM_BYTES = 5
} pshm_vtype;

/* Python's name for a type: "NoneType", "int", "float", "bool", "str",
 * "bytes"; "unknown" for other values. Static, thread-safe. */
PSHM_API const char *pshm_vtype_name(pshm_vtype t);

/*
 * A typed value, passed in to create, set, count and index, and filled in by
 * get. For PSHM_STR and PSHM_BYTES, s.ptr/s.len describe the bytes: they are
 * not NUL-terminated, may contain NULs, and s.ptr may be NULL when s.len is
 * 0. A str must be valid UTF-8 (as Python's decoder defines it: no
 * surrogates, no overlong forms, nothing above U+10FFFF).
 */
/* A run of bytes that is not NUL-terminated and may contain NULs. */
typedef struct pshm_span {
    const char *ptr;
    size_t len;
} pshm_span;

typedef struct pshm_value {
    pshm_vtype type;
    union {
        int64_t i;   /* PSHM_INT */
        double f;    /* PSHM_FLOAT */
        int b;       /* PSHM_BOOL: 0 or 1 from get; any nonzero is True for set */
        pshm_span s; /* PSHM_STR and PSHM_BYTES */
    };
} pshm_value;

/* Constructors, for brevity: pshm_list_set(l, 0, &(pshm_value){...}) works too. */
static inline pshm_value pshm_value_none(void)
{
    pshm_value v;
    memset(&v, 0, sizeof v);
    v.type = PSHM_NONE;
    return v;
}
static inline pshm_value pshm_value_int(int64_t i)
{
    pshm_value v;
    memset(&v, 0, sizeof v);
    v.type = PSHM_INT;
    v.i = i;
    return v;
}
static inline pshm_value pshm_value_float(double f)
{
    pshm_value v;
    memset(&v, 0, sizeof v);
    v.type = PSHM_FLOAT;
    v.f = f;
    return v;
}
static inline pshm_value pshm_value_bool(int b)
{
    pshm_value v;
    memset(&v, 0, sizeof v);
    v.type = PSHM_BOOL;
    v.b = b != 0;
    return v;
}
/* str from UTF-8 bytes (len bytes, not a C string). */
static inline pshm_value pshm_value_str(const char *utf8, size_t len)
{
    pshm_value v;
    memset(&v, 0, sizeof v);
    v.type = PSHM_STR;
    v.s.ptr = utf8;
    v.s.len = len;
    return v;
}
static inline pshm_value pshm_value_bytes(const void *p, size_t len)
{
    pshm_value v;
    memset(&v, 0, sizeof v);
    v.type = PSHM_BYTES;
    v.s.ptr = (const char *)p;
    v.s.len = len;
    return v;
}

/* The longest str or bytes item, in bytes: its slot, 8*(len/8+1), must be
 * written as "<n>s" in 8 characters (n <= 9999999). */
#define PSHM_LIST_ITEM_MAX 9999991

typedef struct pshm_list pshm_list;

/*
 * pshm_list_create: create a block named `name` (NULL: a random "psm_..."
 * name, as for pshm_block_create) holding the n values items[0..n-1], and
 * return a read-write handle. items may be NULL when n is 0. The block is
 * exactly the layout's size; it takes opt's mode, lifetime (PERSIST, AUTO
 * or OWNED), prefault, huge_pages and sparse as pshm_block_create does.
 * Every value is checked before the block is made, and any failure leaves
 * no block behind and *out == NULL. Returns 0 and *out, or:
 *   -EINVAL              out is NULL, items NULL with n > 0, a value with an
 *                        unknown type or with s.ptr NULL and s.len > 0, or
 *                        opt->open_existing set (attach with pshm_list_open)
 *   -PSHM_ELIST_UTF8     a str is not valid UTF-8
 *   -PSHM_ELIST_TOOBIG   a str or bytes is longer than PSHM_LIST_ITEM_MAX
 *   -EOVERFLOW           the list would not fit in a size_t / int64
 *   any code of pshm_block_create (-EEXIST, -PSHM_ENAME_*, -ENOSPC, ...)
 * Thread-safe. The handle is the caller's: pshm_list_close() it.
 */
PSHM_API int pshm_list_create(const char *name, const pshm_value *items, size_t n,
                              const pshm_block_options *opt, pshm_list **out);

/*
 * pshm_list_open: attach to the list in the block `name` (made by pshm or
 * by CPython) and validate its whole layout (see "Never trusting the
 * bytes"); O(N). opt as for pshm_block_open; with opt->readonly every set
 * fails with -PSHM_ELIST_READONLY. Returns 0 and *out, or any code of
 * pshm_block_open, or -EINVAL (out NULL), -ENOMEM, or one of
 * -PSHM_ELIST_SIZE/COUNT/OFFSETS/FORMAT/CODE/MISMATCH; *out is NULL then.
 * N and the offsets never change after create (neither pshm nor CPython
 * ever rewrites them); the handle keeps N, and each access re-checks its
 * item's offsets. Thread-safe.
 */
PSHM_API int pshm_list_open(const char *name, const pshm_block_options *opt,
                            pshm_list **out);

/*
 * pshm_list_close: release the handle and its block (pshm_block_close: an
 * AUTO list whose last holder this was, or an OWNED list closed by its
 * creator, is removed). NULL is a no-op returning 0. Returns 0 or the code
 * of pshm_block_close (the handle is freed anyway). Pointers from
 * pshm_list_get() die with the handle.
 */
PSHM_API int pshm_list_close(pshm_list *l);

/* The number of items N (0 for NULL). Never changes for a handle. */
PSHM_API size_t pshm_list_len(const pshm_list *l);

/* The block under the list (owned by the list: do not close it). Its name
 * is pshm_block_name(pshm_list_block(l)). NULL for a snapshot
 * (pshm_list_snapshot). */
PSHM_API pshm_block *pshm_list_block(const pshm_list *l);

/*
 * Indices: every call below takes an int64_t index i; negative indices
 * count from the end as in Python (-1 is the last item). An index outside
 * [-N, N) is -PSHM_ELIST_INDEX.
 */

/*
 * pshm_list_type: the type of item i, from its format and code. Returns 0,
 * -EINVAL (NULL argument), -PSHM_ELIST_INDEX, or
 * -PSHM_ELIST_OFFSETS/FORMAT/CODE/MISMATCH if the item's bytes were
 * corrupted since open.
 */
PSHM_API int pshm_list_type(const pshm_list *l, int64_t i, pshm_vtype *out);

/*
 * pshm_list_get: read item i into *out. For int, float, bool and None the
 * value is copied (one 8-byte load). For str and bytes, out->s.ptr points
 * INTO THE SHARED MEMORY, with trailing NULs stripped (out->s.len excludes
 * them) and no terminating NUL: it stays valid until pshm_list_close(l),
 * but its bytes change when any process sets the item, so copy them if a
 * later set may race with your use. Returns 0, -EINVAL (NULL argument),
 * -PSHM_ELIST_INDEX, -PSHM_ELIST_UTF8 (a str item that is not valid UTF-8,
 * where CPython raises UnicodeDecodeError: e.g. a str CPython cut in the
 * middle of a character, gh-88336), or a layout code if the item's bytes
 * were corrupted since open. *out is unchanged on failure.
 * Thread-safe (it only reads).
 */
PSHM_API int pshm_list_get(const pshm_list *l, int64_t i, pshm_value *out);

/*
 * pshm_list_set: store v in item i. The item may change type, as in
 * CPython, as long as the value fits its slot: int, float, bool and None
 * fit any slot; str and bytes fit when their length is at most the slot
 * size (CPython's rule; a full slot has no NUL, which is fine). A str or
 * bytes item's format becomes "<slot>s". Everything is checked before
 * anything is written, so a failure changes no byte. Returns 0 or:
 *   -EINVAL               NULL argument, unknown v->type, s.ptr NULL with s.len > 0
 *   -PSHM_ELIST_INDEX     i out of range
 *   -PSHM_ELIST_NOSPACE   str/bytes longer than the item's slot
 *                         (pshm_list_capacity tells the room)
 *   -PSHM_ELIST_UTF8      str not valid UTF-8
 *   -PSHM_ELIST_READONLY  the list was opened read-only
 *   -PSHM_ELIST_OFFSETS   the item's offsets were corrupted since open
 * Atomicity: see "Concurrency" above. Not thread-safe against other sets of
 * the same item (nor is CPython's); different items are independent.
 */
PSHM_API int pshm_list_set(pshm_list *l, int64_t i, const pshm_value *v);

/*
 * pshm_list_capacity: the longest str or bytes (in bytes) item i can hold:
 * its slot size. Returns 0, -EINVAL, -PSHM_ELIST_INDEX, -PSHM_ELIST_OFFSETS.
 */
PSHM_API int pshm_list_capacity(const pshm_list *l, int64_t i, size_t *out);

/*
 * pshm_list_count / pshm_list_index: how many items equal *v, and the first
 * index (0..N-1) of one, with Python's ==: int, float and bool compare as
 * numbers (1 == 1.0 == True, 0.0 == -0.0, a NaN equals nothing, int and
 * float compare exactly), None equals None, str equals str and bytes equals
 * bytes with the same bytes (a str never equals a bytes). Every item is
 * read as by pshm_list_get. Returns 0, or -EINVAL (NULL argument, bad
 * v->type), -PSHM_ELIST_UTF8 (v is a str that is not UTF-8), any error of
 * pshm_list_get on an item (CPython raises too), and for index
 * -PSHM_ELIST_NOTFOUND when no item equals *v (CPython's ValueError). O(N).
 */
PSHM_API int pshm_list_count(const pshm_list *l, const pshm_value *v, size_t *out);
PSHM_API int pshm_list_index(const pshm_list *l, const pshm_value *v, size_t *out);

/*
 * pshm_list_format: the struct format of all items, as CPython's
 * ShareableList.format: each item's format without its NUL padding,
 * concatenated ("qd8s8sxxxxxx?xxxxxxxx?"). Writes it NUL-terminated to buf
 * (cap bytes) and its length, without the NUL, to *len (may be NULL).
 * Returns 0; -ERANGE if cap is too small (*len then tells the length
 * needed; pass buf NULL and cap 0 to ask, which returns 0); -EINVAL; a
 * layout code if an item's format was corrupted since open.
 */
PSHM_API int pshm_list_format(const pshm_list *l, char *buf, size_t cap, size_t *len);

/* ------------------------------------------------------------------------ */
/* Inspecting a list without opening it (what `pshm ls`, `info`, `list` use) */
/* ------------------------------------------------------------------------ */

typedef struct pshm_list_info {
    size_t struct_size;     /* set by pshm_list_info_init() */
    uint64_t len;           /* N, the number of items */
    uint64_t size;          /* bytes of the layout: the block's size */
    uint64_t data_bytes;    /* D, the bytes of all item slots */
} pshm_list_info;

static inline void pshm_list_info_init(pshm_list_info *i)
{
    memset(i, 0, sizeof *i);
    i->struct_size = sizeof *i;
}

/*
 * pshm_list_stat: check that the block `name` holds a list and describe it,
 * without mapping the block, without becoming one of its holders and
 * without waiting for anyone: the block is opened read-only and its N,
 * offsets, formats and codes are copied out with pread (never the item
 * data) and validated as pshm_list_open validates them. A peer that
 * shrinks or rewrites the block meanwhile makes this fail with a layout
 * code, never crash. A stale AUTO/OWNED block is described, not removed.
 * out must come from pshm_list_info_init(). Returns 0, -EINVAL,
 * -PSHM_ENAME_*, -ENOENT, -EACCES, -PSHM_EFTYPE (not a shared-memory
 * object), -ENOMEM, or one of -PSHM_ELIST_SIZE/COUNT/OFFSETS/FORMAT/CODE/
 * MISMATCH (not a list). Thread-safe.
 */
PSHM_API int pshm_list_stat(const char *name, pshm_list_info *out);

/*
 * pshm_list_snapshot: a read-only handle on a private copy of the list in
 * the block `name`, read as pshm_list_stat reads (pread, no mapping, no
 * hold, no wait), the whole block this time. Every read-only call works on
 * it (len, get, type, capacity, count, index, format); pshm_list_set gives
 * -PSHM_ELIST_READONLY, pshm_list_block gives NULL, and later changes by
 * other processes are not seen. pshm_list_get's str and bytes pointers
 * point into the copy. Returns 0 and *out (pshm_list_close() it), or the
 * codes of pshm_list_stat; *out is NULL then. Thread-safe. fork(): the copy
 * is private memory; a child may read and close its inherited copy.
 */
PSHM_API int pshm_list_snapshot(const char *name, pshm_list **out);


/* ======================================================================== */
/* Arrays (array.c): typed n-dimensional arrays in numpy's .npy format      */
/* ======================================================================== */

/* (section: array) */

/*
 * An array block is a block whose bytes are a numpy .npy file: the magic
 * "\x93NUMPY", a format version, a little-endian header length, the header
 * dict {'descr': ..., 'fortran_order': ..., 'shape': ...} padded with spaces
 * and a final '\n' to a multiple of 64 bytes, then the elements. So
 *
 *     numpy.load('/dev/shm/NAME', mmap_mode='r+')
 *
 * is a live, zero-copy view of the same memory, and every process learns the
 * dtype and shape from the block itself. pshm writes headers byte for byte as
 * numpy's np.save (numpy >= 1.24: the dict, then room for the first axis
 * (C order) or the last (Fortran order) to grow to 21 digits, then padding;
 * older numpy leaves no growth room, and both are read):
 * format 1.0, or 2.0 if the header would not fit a 16-bit length. (3.0, for
 * headers that need UTF-8, only arises for structured dtypes.) The block's
 * size is exactly the header plus the elements; numpy's mmap_mode needs no
 * more, also for arrays with no elements.
 *
 * Dtypes (pshm_dtype.kind, numpy's dtype.kind): 'b' bool (1 byte), 'i' int8
 * to int64, 'u' uint8 to uint64, 'f' float16/32/64 (and 'f16', this
 * platform's long double, as numpy names it), 'c' complex64/128 (and 'c32'),
 * 'S' fixed-size bytes S<n> (n bytes), 'U' fixed-size unicode U<n> (n UCS-4
 * code units, 4n bytes), 'V' raw bytes V<n>. Byte order '<' little, '>' big,
 * '|' not applicable (one-byte items, S and V). An array in the other byte
 * order is reported as such: pshm never converts. Not supported: structured
 * dtypes (a list descr: -PSHM_EARRAY_STRUCT), object arrays, datetime64,
 * timedelta64, and zero-size items S0/U0/V0 (-PSHM_EARRAY_DTYPE).
 *
 * A descr string is what numpy's dtype.str gives: a byte-order character,
 * the kind, the item size in bytes (for U: the number of characters), e.g.
 * "<f8", "|u1", ">i4", "|S5", "<U10", "|b1". pshm also takes '=' (native)
 * or no byte order ("f8" is native float64), and 'a' for 'S', and always
 * stores and reports the canonical form numpy writes ("=f8" and "f8" become
 * "<f8" on a little-endian machine; "<i1" becomes "|i1"). The PSHM_DT_*
 * constants name the native types.
 *
 * Shared memory is never trusted: opening an array parses a private copy of
 * the header, checks every field and checks that header + data fit the
 * block; the handle then holds its own snapshot of dtype, shape and strides.
 * Another process rewriting the header later does not change an open handle
 * (and never makes pshm read outside the block).
 *
 * Handles follow the library's rules: one thread at a time per handle, the
 * elements usable from any thread and process. Element access is not
 * synchronised by pshm: coordinate writers and readers yourself. After
 * fork() the child may use the inherited handle's data and accessors and may
 * pshm_array_close() it, which then only unmaps (see pshm_block_close).
 */

#define PSHM_ARRAY_MAXDIM 64         /* numpy 2's NPY_MAXDIMS (numpy 1.x loads at most 32) */
#define PSHM_ARRAY_ALIGN 64          /* the data starts at a multiple of this (numpy's ARRAY_ALIGN) */
#define PSHM_ARRAY_HEADER_MAX (1u << 20) /* longest header length field accepted */
#define PSHM_ARRAY_DESCR_MAX 16      /* descr buffer size with the NUL (longest: "|S2147483647") */

/* Native-order descr strings for pshm_array_create (canonicalised at create). */
#define PSHM_DT_BOOL "|b1"
#define PSHM_DT_INT8 "|i1"
#define PSHM_DT_UINT8 "|u1"
#define PSHM_DT_INT16 "=i2"
#define PSHM_DT_UINT16 "=u2"
#define PSHM_DT_INT32 "=i4"
#define PSHM_DT_UINT32 "=u4"
#define PSHM_DT_INT64 "=i8"
#define PSHM_DT_UINT64 "=u8"
#define PSHM_DT_FLOAT16 "=f2"
#define PSHM_DT_FLOAT32 "=f4"
#define PSHM_DT_FLOAT64 "=f8"
#define PSHM_DT_COMPLEX64 "=c8"
#define PSHM_DT_COMPLEX128 "=c16"

/* A parsed dtype. Plain data: copy it freely. */
typedef struct pshm_dtype {
    char kind;                        /* 'b' 'i' 'u' 'f' 'c' 'S' 'U' 'V' */
    char byteorder;                   /* '<' little, '>' big, '|' not applicable */
    size_t itemsize;                  /* bytes per element (U<n>: 4n) */
    char descr[PSHM_ARRAY_DESCR_MAX]; /* canonical numpy dtype.str, NUL-terminated */
} pshm_dtype;

/*
 * pshm_dtype_parse: parse a descr string (see above) into *out.
 * Returns 0, or -PSHM_EARRAY_DTYPE (unknown or unsupported kind, a size
 * the kind does not have, S0/U0/V0, leading zeros, trailing characters,
 * NULL), or -EINVAL if out is NULL. Pure: thread-safe, no shared memory.
 */
PSHM_API int pshm_dtype_parse(const char *descr, pshm_dtype *out);

typedef struct pshm_array pshm_array;

/*
 * pshm_array_create: create an array block named `name` (or a random
 * "psm_..." name when NULL) holding an ndim-dimensional array of dtype
 * `descr` and the given shape (ndim entries, each >= 0; shape may be NULL
 * when ndim is 0), in C order, or Fortran order if fortran_order. The block
 * is exactly header + nbytes bytes, the elements are zeroed, the data is
 * 64-byte aligned. The header is complete before the magic is stored (last,
 * with release ordering), so pshm_array_open never sees half a header; it
 * waits for a header still being written.
 *
 * opt is passed to pshm_block_create (lifetime, mode, sparse, prefault,
 * huge_pages, open_existing; NULL for defaults). With opt->open_existing and
 * an existing block of that name, the block is opened as an array instead,
 * and must hold exactly this dtype, shape and order, else
 * -PSHM_EARRAY_MISMATCH (pshm_block_created() on pshm_array_block() tells
 * which happened).
 *
 * Returns 0 and *out, or:
 *   -PSHM_EARRAY_DTYPE / -PSHM_EARRAY_STRUCT  bad or unsupported descr
 *   -PSHM_EARRAY_NDIM      ndim < 0 or > PSHM_ARRAY_MAXDIM
 *   -PSHM_EARRAY_SHAPE     a negative dimension
 *   -PSHM_EARRAY_OVERFLOW  the product of the non-zero dimensions and the
 *                          item size exceeds INT64_MAX or SIZE_MAX (numpy's
 *                          rule: it is checked even when a dimension is 0)
 *   -EINVAL                out is NULL, or shape NULL with ndim > 0
 *   -PSHM_EARRAY_MISMATCH  open_existing found a different array
 *   any code of pshm_block_create, and with open_existing any of
 *   pshm_array_open.
 * A failed create leaves nothing new in /dev/shm. Thread-safe. The handle
 * is the caller's: pshm_array_close() it.
 */
PSHM_API int pshm_array_create(const char *name, const char *descr, int ndim,
                               const int64_t *shape, int fortran_order,
                               const pshm_block_options *opt, pshm_array **out);

/*
 * pshm_array_create_from_npy: create an array block from a .npy image in
 * memory (a file's bytes, e.g. np.save output): the header is parsed and
 * checked as pshm_array_open checks a block, written again as numpy writes
 * it (identical bytes for any file current numpy wrote), and the data
 * copied. Bytes after the data are ignored. name and opt as for
 * pshm_array_create (opt->open_existing is refused with -EINVAL).
 * Returns 0 and *out, any code of the header checks (see pshm_array_open;
 * -PSHM_EARRAY_TRUNCATED if the image holds less data than the header
 * says), -EINVAL for a NULL npy or out, or any code of pshm_block_create.
 * Thread-safe.
 */
PSHM_API int pshm_array_create_from_npy(const char *name, const void *npy, size_t len,
                                        const pshm_block_options *opt, pshm_array **out);

/*
 * pshm_array_open: attach to the array block `name` (made by pshm, by
 * np.save into /dev/shm, or by anyone writing a .npy image into a block).
 * opt as for pshm_block_open (readonly, prefault, huge_pages; may be NULL).
 * If the first 4 bytes of the block are all zero (an array being created
 * right now), open waits for the magic, up to opt->open_timeout_ms, and
 * then fails with -PSHM_EARRAY_MAGIC (a zeroed raw block costs that wait).
 *
 * Accepted headers: formats 1.0, 2.0 and 3.0; the dict as numpy writes it,
 * and what numpy itself reads back from older writers: any whitespace
 * between tokens, either quote, u'' strings, trailing commas, Python 2's
 * 'L' after integers (formats 1.0 and 2.0), keys in any order. Not
 * accepted, though Python's literal_eval would take them: comments,
 * duplicate keys, non-decimal dimensions or a '+' sign, type names other
 * than a descr ('float64', 'f'), anything after the dict but whitespace.
 *
 * Returns 0 and *out, or, beside any code of pshm_block_open:
 *   -PSHM_EARRAY_MAGIC      no "\x93NUMPY" magic (not an array; also after
 *                           waiting for an all-zero block)
 *   -PSHM_EVERSION          a format version other than 1.0, 2.0, 3.0
 *   -PSHM_EARRAY_SHORT      the block ends inside the header
 *   -PSHM_EARRAY_HEADERLEN  header length field > PSHM_ARRAY_HEADER_MAX
 *   -PSHM_EARRAY_HEADER     the header is not the dict described above
 *   -PSHM_EARRAY_DTYPE, -PSHM_EARRAY_STRUCT, -PSHM_EARRAY_SHAPE,
 *   -PSHM_EARRAY_NDIM, -PSHM_EARRAY_OVERFLOW  as for create
 *   -PSHM_EARRAY_TRUNCATED  header + data are longer than the block
 *   -PSHM_EARRAY_ALIGN      the data offset is not a multiple of 64 (files
 *                           written by numpy < 1.14 were aligned to 16; load
 *                           them with pshm_array_create_from_npy, which
 *                           rewrites the header)
 * Bytes after the data are allowed. Thread-safe. The handle is the
 * caller's: pshm_array_close() it.
 */
PSHM_API int pshm_array_open(const char *name, const pshm_block_options *opt,
                             pshm_array **out);

/*
 * pshm_array_close: close the block (see pshm_block_close: an AUTO or OWNED
 * lifetime may end here) and free the handle. NULL is a no-op returning 0.
 * Returns what pshm_block_close returns. fork(): as for blocks.
 */
PSHM_API int pshm_array_close(pshm_array *a);

/*
 * Accessors. All are valid until pshm_array_close() and describe the
 * snapshot taken at create/open; pointers returned are owned by the handle.
 *   block      the underlying block (for its name, lifetime, ...). Do not
 *              close it yourself.
 *   dtype      the parsed dtype; descr is dtype->descr.
 *   ndim       0 for a 0-d array (one element).
 *   shape      ndim dimensions (a valid pointer even when ndim is 0).
 *   strides    ndim byte strides, as numpy reports for this array mapped
 *              from the file: C order (last axis itemsize) or Fortran order
 *              (first axis itemsize); a zero dimension counts as 1.
 *   data       the first element: block data + data offset, a multiple of
 *              64 bytes into a page-aligned mapping, so 64-byte aligned.
 *              Read-only memory if the handle was opened readonly.
 *   data_offset  header length in bytes (where the data starts).
 *   nbytes     bytes of element data (0 for an empty array).
 *   nitems     number of elements (1 for a 0-d array, 0 if empty).
 *   fortran_order  1 if the elements are in Fortran (column-major) order.
 *   version    the .npy format version as major * 256 + minor (0x100 = 1.0).
 * NULL handles give NULL, 0 or -1 (ndim).
 */
PSHM_API pshm_block *pshm_array_block(const pshm_array *a);
PSHM_API const pshm_dtype *pshm_array_dtype(const pshm_array *a);
PSHM_API const char *pshm_array_descr(const pshm_array *a);
PSHM_API int pshm_array_ndim(const pshm_array *a);
PSHM_API const int64_t *pshm_array_shape(const pshm_array *a);
PSHM_API const int64_t *pshm_array_strides(const pshm_array *a);
PSHM_API void *pshm_array_data(const pshm_array *a);
PSHM_API size_t pshm_array_data_offset(const pshm_array *a);
PSHM_API size_t pshm_array_nbytes(const pshm_array *a);
PSHM_API uint64_t pshm_array_nitems(const pshm_array *a);
PSHM_API int pshm_array_fortran_order(const pshm_array *a);
PSHM_API int pshm_array_version(const pshm_array *a);

/*
 * Inspecting an array without opening it (what `pshm ls`, `info` and
 * `array info` use): the geometry pshm_array_open would give, as values.
 */
typedef struct pshm_array_info {
    size_t struct_size;     /* set by pshm_array_info_init() */
    pshm_dtype dtype;
    int ndim;
    int fortran_order;
    int version;            /* .npy format version, major * 256 + minor */
    uint64_t data_offset;   /* where the elements start (header length) */
    uint64_t nbytes;        /* bytes of element data */
    uint64_t nitems;        /* number of elements */
    uint64_t size;          /* the block's size (bytes after the data are allowed) */
    int64_t shape[PSHM_ARRAY_MAXDIM];   /* ndim entries used */
    int64_t strides[PSHM_ARRAY_MAXDIM]; /* as pshm_array_strides */
} pshm_array_info;

static inline void pshm_array_info_init(pshm_array_info *i)
{
    memset(i, 0, sizeof *i);
    i->struct_size = sizeof *i;
}

/*
 * pshm_array_stat: check that the block `name` holds an array and describe
 * it, without mapping the block, without becoming one of its holders and
 * without waiting: the header is copied out with pread from a read-only
 * descriptor and checked as pshm_array_open checks it (a peer that shrinks
 * or rewrites the block meanwhile makes this fail with a code, never
 * crash). Unlike open, a block whose first bytes are zero is not waited
 * for: -PSHM_EARRAY_MAGIC. A stale AUTO/OWNED block is described, not
 * removed. out must come from pshm_array_info_init(). Returns 0, -EINVAL,
 * -PSHM_ENAME_*, -ENOENT, -EACCES, -PSHM_EFTYPE, -ENOMEM, or the header
 * codes of pshm_array_open (-PSHM_EARRAY_MAGIC: not an array). Thread-safe.
 */
PSHM_API int pshm_array_stat(const char *name, pshm_array_info *out);



/* ======================================================================== */
/* Synchronisation (sync.c): locks, semaphores, events, barriers            */
/* ======================================================================== */

/* (section: sync) */

/*
 * Six primitives for processes (and threads) that share memory: mutex,
 * condition variable, counting semaphore, read-write lock, barrier and event.
 * Every one of them keeps working when a process that uses it is killed at
 * any instruction, and tells the survivors what happened.
 *
 * Two ways to have one
 * --------------------
 * Embedded: inside any memory that every user maps MAP_SHARED (a pshm block,
 *   an array's spare bytes, your own mmap). Reserve PSHM_<KIND>_SIZE bytes,
 *   aligned to at least PSHM_SYNC_ALIGN (8; a cache line, 64, avoids false
 *   sharing with neighbours), call pshm_<kind>_init(mem, size, ...) exactly
 *   once before anyone else touches it (as for pthread_mutex_init), and
 *   nothing else in the block is assumed. Other processes that map the same
 *   bytes use the object through a cast, or pshm_<kind>_attach() which checks
 *   it first. pshm_<kind>_destroy() marks the bytes dead, so later calls fail
 *   with -PSHM_EBADFORMAT instead of misbehaving.
 *   An embedded object is not a handle: it has no close, and its memory is
 *   yours to keep mapped while anyone uses it.
 * Named: pshm_sync_create("name", PSHM_SYNC_MUTEX, &opt, &h) makes a block
 *   holding a 64-byte header and the object, and returns a pshm_sync handle
 *   that maps it; pshm_sync_open("name", kind, &opt, &h) attaches to one;
 *   pshm_sync_mutex(h) (and _cond, _sem, _rwlock, _barrier, _event) gives
 *   the object to lock and wait on; pshm_sync_close(h) unmaps. `pshm ls`
 *   shows it with its kind and state. pshm_unlink(name) (or `pshm rm`)
 *   removes the name; lifetimes are the block's (PSHM_PERSIST, PSHM_AUTO,
 *   PSHM_OWNED, see above).
 *
 * Both kinds of object carry a 64-bit tag: a magic, the kind, the layout
 * version (1) and an ABI word folding in the sizes that shape the layout
 * (pthread_mutex_t, pointers, slot counts). Every call checks it first, so
 * bytes that are not such an object - never initialised, destroyed,
 * overwritten, or made by a build with other sizes - give -PSHM_EBADFORMAT,
 * -PSHM_EKIND, -PSHM_EVERSION or -PSHM_EABI, never a crash inside pshm.
 * A named block's header is checked the same way at open. (A process that
 * writes wild bytes over the inside of a live lock can still make it
 * misbehave: the tag is a guard against mistakes, not a security boundary.)
 *
 * What death means, and who witnesses it
 * --------------------------------------
 * A process that dies (SIGKILL, a crash, _exit with a lock held) runs no
 * code, so the survivors must learn of it from the kernel; pshm never relies
 * on heartbeats. Two witnesses are used:
 * 1. pshm's own robust lock: a futex word holding the holder's tid, and
 *    beside it the holder's identity (tid + kernel start time, as in 2).
 *    Nothing else - no pointer, no list link, no address - is in shared
 *    memory, so a peer that rewrites a lock can make you wait (until your
 *    deadline) or get an error, never write where it chose. A waiter that
 *    has slept a slice without news (a few ms at first, growing to
 *    PSHM_SYNC_RECHECK_MS) asks the kernel whether the holder lives; a dead
 *    holder's lock is taken over by exactly one waiter, which gets
 *    -PSHM_EOWNERDEAD. A failed trylock asks once too. (A wake-up taken by a
 *    waiter that then died is picked up by the others within their slice.)
 *    The mutex, the read-write lock (a gate lock plus one lock per reader
 *    slot), and the semaphore's undo bookkeeping are built on it. A lock
 *    word that holds no value a lock can hold gives -PSHM_EBADFORMAT.
 * 2. An identity recorded in shared memory: a pid or tid together with the
 *    start time the kernel gives that task (/proc/PID/stat field 22), so a
 *    reused pid is not taken for the old holder, and a zombie counts as
 *    dead. A waiter that has slept PSHM_SYNC_RECHECK_MS without news asks the
 *    kernel whether the recorded tasks still live. Barrier participants and
 *    the semaphore's undo records use this.
 * Only a whole process or thread ending counts as death: a thread that is
 * merely stopped, or slow, holds what it holds.
 *
 * Signals
 * -------
 * A signal handler that runs during a wait does not end it: every blocking
 * call resumes waiting afterwards (as pthread_mutex_lock and
 * pthread_cond_wait do), against the same absolute deadline, so a signal
 * never lengthens a timed wait. No call here returns -EINTR. To react to
 * signals while waiting (as a Python binding must), wait with the timed
 * variants in short slices and check your flags between them.
 *
 * Deadlines
 * ---------
 * The timed variants take an absolute time on CLOCK_MONOTONIC (unaffected by
 * setting the wall clock); pshm_deadline() makes one from a timeout in
 * milliseconds. A deadline already past means "try once". tv_nsec must be in
 * [0, 1e9): otherwise -EINVAL.
 *
 * Threads and fork()
 * ------------------
 * Every operation is thread-safe and works between threads of one process as
 * well as between processes. Locks are owned by the thread that took them
 * (as POSIX mutexes are); unlocking from another thread gives -EPERM. A
 * forked child inherits the mapping but owns none of its parent's locks,
 * semaphore units or barrier membership. Named handles inherited across fork
 * may be used and closed in the child (closing only unmaps there).
 *
 * Named objects never hold a lock that belongs to the handle: closing a
 * handle whose object this process holds locked returns -EBUSY (the kernel
 * could no longer release it at death once it is unmapped).
 */


/* Alignment every embedded object needs; PSHM_SYNC_CACHELINE is better. */
#define PSHM_SYNC_ALIGN 8
#define PSHM_SYNC_CACHELINE 64

/* Sizes are part of the ABI. The unit holds one lock (16 bytes) with room
 * to spare (it held a glibc pthread_mutex_t up to layout version 1). */
#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
#define PSHM__SYNC_UNIT 64
#else
#define PSHM__SYNC_UNIT 128
#endif
#define PSHM_MUTEX_SIZE PSHM__SYNC_UNIT
#define PSHM_COND_SIZE 64
#define PSHM_SEM_SIZE 64
#define PSHM_SEM_UNDO_SLOTS 64
#define PSHM_SEM_UNDO_SIZE (64 + PSHM__SYNC_UNIT + 64 + 16 * PSHM_SEM_UNDO_SLOTS)
#define PSHM_RWLOCK_READERS 32
#define PSHM_RWLOCK_SIZE ((2 + PSHM_RWLOCK_READERS) * PSHM__SYNC_UNIT)
#define PSHM_BARRIER_MAX 4096
#define PSHM_BARRIER_SIZE(count) (64 + 8 * (size_t)(count))
#define PSHM_EVENT_SIZE 64

/* How long a waiter sleeps before it re-checks what no wake-up can tell it:
 * a wake-up taken by a waiter that then died, a dead barrier participant, a
 * dead semaphore holder in undo mode. So recovery from such deaths takes at
 * most about this long (plus the time to read /proc). */
#define PSHM_SYNC_RECHECK_MS 100

typedef enum pshm_sync_kind {
    PSHM_SYNC_NONE = 0,
    PSHM_SYNC_MUTEX = 1,
    PSHM_SYNC_COND = 2,
    PSHM_SYNC_SEM = 3,
    PSHM_SYNC_RWLOCK = 4,
    PSHM_SYNC_BARRIER = 5,
    PSHM_SYNC_EVENT = 6
} pshm_sync_kind;

/* "mutex", "cond", "sem", "rwlock", "barrier", "event"; "none" otherwise. */
PSHM_API const char *pshm_sync_kind_name(pshm_sync_kind kind);

/* The objects, embedded or reached through a named handle. */
typedef struct pshm_mutex pshm_mutex;
typedef struct pshm_cond pshm_cond;
typedef struct pshm_sem pshm_sem;
typedef struct pshm_rwlock pshm_rwlock;
typedef struct pshm_barrier pshm_barrier;
typedef struct pshm_event pshm_event;

/*
 * Options for pshm_sync_create and pshm_sync_open: the block options' fields
 * (same names, types and defaults; see pshm_block_options), then what the
 * object is made with. Start from pshm_sync_options_init(). With
 * open_existing, an existing object of the same kind is attached instead and
 * value, count and flags are ignored: the object keeps its own.
 */
typedef struct pshm_sync_options {
    size_t struct_size;     /* set by _init; do not touch */
    unsigned mode;          /* as pshm_block_options, default 0600 */
    pshm_lifetime lifetime; /* default PSHM_PERSIST */
    int readonly;           /* refused with -EINVAL: every primitive writes its object */
    int open_existing;
    int prefault;
    int huge_pages;
    int sparse;
    int watch;
    unsigned open_timeout_ms; /* open: how long to wait for a creator that is still
                               initialising the object; default 2000 */
    unsigned value;         /* create, sem: the initial value (<= PSHM_SEM_VALUE_MAX) */
    unsigned count;         /* create, barrier: the number of participants (required) */
    unsigned flags;         /* create: sem PSHM_SEM_UNDO; event PSHM_EVENT_MANUAL,
                               PSHM_EVENT_SET; 0 for the other kinds */
} pshm_sync_options;

static inline void pshm_sync_options_init(pshm_sync_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->mode = 0600;
    o->lifetime = PSHM_PERSIST;
    o->open_timeout_ms = 2000;
}

/* A named synchronisation object: the handle that maps its block. */
typedef struct pshm_sync pshm_sync;

/*
 * pshm_sync_create: create the named object `name` (NULL: a random name, as
 * for pshm_block_create) of `kind`, made with opt's value, count and flags
 * (opt may be NULL for defaults; a barrier needs opt->count), and return a
 * handle on it. Returns 0 and *h, or:
 *   -EINVAL  kind is PSHM_SYNC_NONE or unknown; value, count or flags out of
 *            range for the kind; opt->readonly
 *   with open_existing and an existing object: what pshm_sync_open returns
 *   (-PSHM_EKIND if it is another kind)
 *   the errors every named create/open can return (below).
 * The handle is the caller's: pshm_sync_close() it. Thread-safe.
 */
PSHM_API int pshm_sync_create(const char *name, pshm_sync_kind kind,
                              const pshm_sync_options *opt, pshm_sync **h);

/*
 * pshm_sync_open: attach to the named object `name`, which must be of
 * `kind` (PSHM_SYNC_NONE: any kind; pshm_sync_fstat tells which), waiting
 * up to opt->open_timeout_ms for a creator still initialising it. Only
 * open_timeout_ms and prefault are read from opt. Returns 0 and *h, or the
 * errors below. Thread-safe.
 */
PSHM_API int pshm_sync_open(const char *name, pshm_sync_kind kind,
                            const pshm_sync_options *opt, pshm_sync **h);

/*
 * pshm_sync_close: unmap the object and free the handle; NULL is a no-op
 * returning 0. Returns 0, -EBUSY if a thread of this process holds the
 * object (a mutex, or an rwlock for reading or writing): the handle stays
 * open, because the object's recovery needs it mapped while it is held; or
 * the code of pshm_block_close (the handle is freed anyway).
 */
PSHM_API int pshm_sync_close(pshm_sync *h);

/*
 * The object of a handle, typed: NULL if h is NULL or holds another kind.
 * Valid until pshm_sync_close(h).
 */
PSHM_API pshm_mutex *pshm_sync_mutex(const pshm_sync *h);
PSHM_API pshm_cond *pshm_sync_cond(const pshm_sync *h);
PSHM_API pshm_sem *pshm_sync_sem(const pshm_sync *h);
PSHM_API pshm_rwlock *pshm_sync_rwlock(const pshm_sync *h);
PSHM_API pshm_barrier *pshm_sync_barrier(const pshm_sync *h);
PSHM_API pshm_event *pshm_sync_event(const pshm_sync *h);

/* The block under a named object, for its name, pshm_block_unlink or its
 * descriptor (owned by h: do not close it). NULL for NULL. */
PSHM_API pshm_block *pshm_sync_block(const pshm_sync *h);

/* Errors pshm_sync_create and pshm_sync_open can return, besides those listed at each:
 *   -PSHM_ENAME_*, -EEXIST (create), -ENOENT (open), -EACCES, -ENOSPC,
 *   -ENOMEM, -PSHM_ESTALE, -PSHM_ENOMARK (as pshm_block_create/open);
 *   -PSHM_EKIND       the block is not a named sync object (another pshm
 *                     kind, a raw block, or zeros that nobody started
 *                     initialising within open_timeout_ms), or, for open with
 *                     a kind, a sync object of another kind;
 *   -PSHM_EBADFORMAT  a sync object's header or object bytes are corrupt;
 *   -PSHM_EVERSION, -PSHM_EABI  made by an incompatible build;
 *   -ETIMEDOUT        its creator is alive but still initialising it;
 *   -PSHM_ENOTRECOVERABLE  its creator died while initialising it (remove it).
 * Create leaves nothing behind on failure. */

/* ------------------------------------------------------------------------ */
/* Mutex                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * A robust error-checking mutex: pshm's own lock (see "What death means"):
 * a futex word with the holder's tid, the holder's identity, a waiter
 * count and a state for `pshm ls`. Uncontended lock and unlock are one
 * compare-and-swap and one exchange, as glibc's; the kernel is asked about
 * the holder only by waiters, after a slice of waiting.
 *
 * Owner death: the next locker gets -PSHM_EOWNERDEAD, exactly once, and holds
 * the mutex. It repairs what the mutex protects and calls
 * pshm_mutex_consistent(); if it unlocks without doing so, the mutex becomes
 * not recoverable: every later lock returns -PSHM_ENOTRECOVERABLE (as in
 * POSIX). A locker that dies after -PSHM_EOWNERDEAD but before marking it
 * consistent passes the -PSHM_EOWNERDEAD on to the next locker.
 * Death is noticed by waiters within their slice (at most about
 * PSHM_SYNC_RECHECK_MS), and by any trylock. A holder is its thread: a
 * thread that ends (even if its process goes on) with a mutex held is a dead
 * owner. pshm_sync_close of a named mutex you hold returns -EBUSY.
 */

/* Initialise PSHM_MUTEX_SIZE bytes at mem (aligned to PSHM_SYNC_ALIGN).
 * Returns 0 and *out (== mem), or -EINVAL (NULL, size too small,
 * misaligned). Not thread-safe with any other use of the same bytes. */
PSHM_API int pshm_mutex_init(void *mem, size_t size, pshm_mutex **out);
/* Check that mem holds an initialised mutex of this build's layout; *out = mem.
 * -EINVAL, -PSHM_EBADFORMAT, -PSHM_EKIND, -PSHM_EVERSION, -PSHM_EABI. */
PSHM_API int pshm_mutex_attach(void *mem, size_t size, pshm_mutex **out);
/* Mark the bytes dead. -EBUSY if it is locked (by anyone alive). */
PSHM_API int pshm_mutex_destroy(pshm_mutex *m);

/*
 * lock: block until the caller's thread holds m. trylock: -EBUSY instead of
 * blocking. timedlock: -ETIMEDOUT at the deadline.
 * Returns 0, or
 *   -PSHM_EOWNERDEAD       the previous owner died; the caller holds m (see above)
 *   -PSHM_ENOTRECOVERABLE  an earlier owner-died was never made consistent
 *   -EDEADLK               lock, timedlock: the calling thread already holds m
 *   -EBUSY                 trylock: held by anyone, the calling thread included
 *                          (through any handle), as POSIX's trylock
 *   -ETIMEDOUT             timedlock only;  -EINVAL bad deadline
 *   -PSHM_EBADFORMAT etc.  m is not a mutex (see the tag, above), or its lock
 *                          word holds no value a lock can hold (overwritten)
 */
PSHM_API int pshm_mutex_lock(pshm_mutex *m);
PSHM_API int pshm_mutex_trylock(pshm_mutex *m);
PSHM_API int pshm_mutex_timedlock(pshm_mutex *m, const struct timespec *deadline);
/* 0, or -EPERM if the calling thread does not hold m. */
PSHM_API int pshm_mutex_unlock(pshm_mutex *m);
/* After -PSHM_EOWNERDEAD, with the state repaired: 0, -EPERM (not the
 * holder), -EINVAL (m is not in the owner-died state). */
PSHM_API int pshm_mutex_consistent(pshm_mutex *m);

/* ------------------------------------------------------------------------ */
/* Condition variable                                                       */
/* ------------------------------------------------------------------------ */

/*
 * A condition variable used with a pshm_mutex; no pthread_cond_t (whose
 * glibc implementation lets a waiter killed at the wrong moment block every
 * later signal). It is a 32-bit sequence number: a waiter notes it, unlocks
 * the mutex and sleeps on the futex while it is unchanged; signal and
 * broadcast advance it and wake one or all. There is no internal lock and no
 * hand-off, so a waiter that dies at any point blocks no signaller and no
 * other waiter. If a woken waiter dies before it returns, the wake-up dies
 * with it; the other waiters then notice the advanced sequence within
 * PSHM_SYNC_RECHECK_MS and return as for a spurious wake-up. Spurious
 * wake-ups happen (as with POSIX): always wait in a loop on your predicate.
 * There is no "try" variant: checking the predicate is the try.
 */

PSHM_API int pshm_cond_init(void *mem, size_t size, pshm_cond **out);
PSHM_API int pshm_cond_attach(void *mem, size_t size, pshm_cond **out);
PSHM_API int pshm_cond_destroy(pshm_cond *c);

/*
 * wait: atomically (with respect to signal/broadcast) release m, which the
 * calling thread must hold, and sleep until signalled; m is locked again
 * before returning, whatever the result (except -EPERM and -EINVAL).
 * timedwait: also returns at the deadline with -ETIMEDOUT (m relocked).
 * Returns 0, -ETIMEDOUT, -EPERM (m not held by the caller), -EINVAL, a tag
 * error, or what relocking m reported: -PSHM_EOWNERDEAD (m's previous owner
 * died; the caller holds m and must repair as for pshm_mutex_lock) or
 * -PSHM_ENOTRECOVERABLE (m is not held then).
 */
PSHM_API int pshm_cond_wait(pshm_cond *c, pshm_mutex *m);
PSHM_API int pshm_cond_timedwait(pshm_cond *c, pshm_mutex *m, const struct timespec *deadline);
/* Wake one / every waiter blocked now. Cheap (no system call) when nobody
 * waits. Need not hold the mutex. Returns 0 or a tag error. */
PSHM_API int pshm_cond_signal(pshm_cond *c);
PSHM_API int pshm_cond_broadcast(pshm_cond *c);

/* ------------------------------------------------------------------------ */
/* Counting semaphore                                                       */
/* ------------------------------------------------------------------------ */

/*
 * A counting semaphore: a value that post raises and wait lowers, sleeping
 * while it is 0. Lock-free: a futex on the value and a waiter count.
 *
 * A counting semaphore has no owner: a unit taken by wait may be given back
 * by any process, or never. So, by default, a process that dies after wait
 * and before its post simply never posts: the unit is gone (like any post a
 * dead process did not make). A waiter that dies changes nothing; a wake-up
 * taken by a waiter that then died is picked up by another waiter within
 * PSHM_SYNC_RECHECK_MS.
 *
 * PSHM_SEM_UNDO (like SysV SEM_UNDO) makes units owned: each process's held
 * units (its waits minus its posts, never below 0) are recorded, and when it
 * dies they are returned to the value. Waiters notice within
 * PSHM_SYNC_RECHECK_MS. Every change of the value and of the record happens
 * under a robust lock with an intent record, so a process killed in the
 * middle of a wait or post is rolled back as a whole, never half-counted.
 * The price: each operation takes that mutex (about as fast as an
 * uncontended pshm_mutex), the object needs PSHM_SEM_UNDO_SIZE bytes, and at
 * most PSHM_SEM_UNDO_SLOTS processes can hold units at once (the next wait
 * gets -ENOSPC). Units belong to the process (not the thread) that waited.
 */

#define PSHM_SEM_UNDO 1u
#define PSHM_SEM_VALUE_MAX 0x7fffffffu

/* value <= PSHM_SEM_VALUE_MAX; flags 0 or PSHM_SEM_UNDO; size at least
 * PSHM_SEM_SIZE, or PSHM_SEM_UNDO_SIZE with PSHM_SEM_UNDO. -EINVAL otherwise. */
PSHM_API int pshm_sem_init(void *mem, size_t size, unsigned value, unsigned flags, pshm_sem **out);
PSHM_API int pshm_sem_attach(void *mem, size_t size, pshm_sem **out);
PSHM_API int pshm_sem_destroy(pshm_sem *s);

/*
 * wait: lower the value by 1, sleeping while it is 0. trywait: -EAGAIN
 * instead of sleeping. timedwait: -ETIMEDOUT at the deadline.
 * Returns 0, -EAGAIN, -ETIMEDOUT, -EINVAL, -ENOSPC (undo mode: no free
 * record), a tag error, or (undo mode, only if the semaphore's internal
 * lock was left unrecoverable or overwritten by foreign code)
 * -PSHM_ENOTRECOVERABLE or -PSHM_EBADFORMAT. trywait never waits, not even
 * for the undo-mode lock: -EAGAIN while another thread holds it.
 */
PSHM_API int pshm_sem_wait(pshm_sem *s);
PSHM_API int pshm_sem_trywait(pshm_sem *s);
PSHM_API int pshm_sem_timedwait(pshm_sem *s, const struct timespec *deadline);
/* Raise the value by 1 and wake a waiter. 0, -EOVERFLOW (at
 * PSHM_SEM_VALUE_MAX), a tag error; undo mode: waits at most one second
 * for the internal lock (held for a few stores by a live peer, so only a
 * stopped or misbehaving peer makes it wait): -ETIMEDOUT, and the errors
 * of wait's undo mode. */
PSHM_API int pshm_sem_post(pshm_sem *s);
/* The value now (a snapshot). */
PSHM_API int pshm_sem_getvalue(pshm_sem *s, unsigned *value);

/* ------------------------------------------------------------------------ */
/* Read-write lock                                                          */
/* ------------------------------------------------------------------------ */

/*
 * Many readers or one writer. Built from robust locks, so the kernel
 * witnesses every holder: a gate lock that writers hold while writing, and
 * PSHM_RWLOCK_READERS reader slots, each a robust lock a reader holds while
 * reading. A reader takes a free slot and, if no writer is active, is done
 * (no shared counter, so readers do not contend). A writer takes the gate,
 * announces itself, and waits for each reader still in a slot to leave (or
 * die). Writers are preferred: once a writer waits, new readers queue
 * behind it at the gate. More than PSHM_RWLOCK_READERS concurrent readers
 * share slots (and then take turns). Read locks may be taken recursively,
 * but as with any writer-preferring lock, a recursive read while a writer
 * waits can deadlock. Asking for the write lock while holding a read lock
 * (or the reverse) is refused with -EDEADLK rather than deadlocking.
 *
 * Death of a holder:
 * - a writer that died while holding the write lock: its hold is released
 *   and the lock is marked inconsistent. Every acquisition (read or write)
 *   then returns -PSHM_EOWNERDEAD with the lock held - the data may be half
 *   written - until a writer repairs the data and calls
 *   pshm_rwlock_consistent(). (Unlike the mutex it does not become
 *   unrecoverable: readers cannot repair, so they keep being told.)
 * - a reader that died: its slot is released, and the caller that found it
 *   counts it in the lock, and the next caller that gets the lock (reader
 *   or writer) gets -PSHM_EREADERDEAD with the lock held: once for all the
 *   readers found dead since the last report (a write lock that finds three
 *   dead readers reports once). An attempt that finds a dead reader and
 *   then fails (trywrlock, a timeout) leaves the news for the next one.
 *   Readers do not write, so nothing needs repair; it is news, not an error.
 */

PSHM_API int pshm_rwlock_init(void *mem, size_t size, pshm_rwlock **out);
PSHM_API int pshm_rwlock_attach(void *mem, size_t size, pshm_rwlock **out);
/* -EBUSY if held. */
PSHM_API int pshm_rwlock_destroy(pshm_rwlock *rw);

/*
 * rdlock / wrlock: block until held for reading / writing. try*: -EBUSY
 * instead of blocking. timed*: -ETIMEDOUT at the deadline.
 * Returns 0, -PSHM_EOWNERDEAD or -PSHM_EREADERDEAD (held; see above),
 * -EBUSY, -ETIMEDOUT, -EDEADLK (this thread holds the write lock, or asks
 * to write while it holds a read lock), -EINVAL, a tag error.
 */
PSHM_API int pshm_rwlock_rdlock(pshm_rwlock *rw);
PSHM_API int pshm_rwlock_tryrdlock(pshm_rwlock *rw);
PSHM_API int pshm_rwlock_timedrdlock(pshm_rwlock *rw, const struct timespec *deadline);
PSHM_API int pshm_rwlock_wrlock(pshm_rwlock *rw);
PSHM_API int pshm_rwlock_trywrlock(pshm_rwlock *rw);
PSHM_API int pshm_rwlock_timedwrlock(pshm_rwlock *rw, const struct timespec *deadline);
/* Release this thread's write lock, or one of its read locks. 0, or -EPERM
 * if it holds neither. */
PSHM_API int pshm_rwlock_unlock(pshm_rwlock *rw);
/* Holding the write lock after -PSHM_EOWNERDEAD, data repaired: clear the
 * mark. 0, -EPERM (not the writer), -EINVAL (not marked). */
PSHM_API int pshm_rwlock_consistent(pshm_rwlock *rw);

/* ------------------------------------------------------------------------ */
/* Barrier                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A barrier for `count` participants (1..PSHM_BARRIER_MAX): each wait
 * returns when all count have arrived, then the barrier is ready for the
 * next phase. A participant is a thread; it joins (pshm_barrier_join, or
 * implicitly at its first wait) and its identity is recorded, so that its
 * death is noticed even before it arrives.
 *
 * The barrier breaks - like Python's threading.Barrier - when a joined
 * participant dies (noticed by the waiters within PSHM_SYNC_RECHECK_MS), or
 * a timed wait times out. Every waiter then returns -PSHM_EBROKEN, and so
 * does every wait until pshm_barrier_reset(). Reset frees the dead
 * participants' places for newcomers; waiters present at a reset also get
 * -PSHM_EBROKEN (even if their phase had just completed).
 *
 * Each wait that completes reports its arrival index in the phase, as
 * Python's threading.Barrier.wait returns it: 0 for the first to arrive,
 * count - 1 for the last (the one that completed the phase, POSIX's "serial
 * thread"), each index once per phase.
 */

/* size >= PSHM_BARRIER_SIZE(count). */
PSHM_API int pshm_barrier_init(void *mem, size_t size, unsigned count, pshm_barrier **out);
PSHM_API int pshm_barrier_attach(void *mem, size_t size, pshm_barrier **out);
PSHM_API int pshm_barrier_destroy(pshm_barrier *b);

/* Become a participant (0 if already one). -ENOSPC if count participants
 * have joined (dead ones keep their place until a reset). */
PSHM_API int pshm_barrier_join(pshm_barrier *b);
/* Stop being a participant without breaking the barrier: the place is free
 * for another thread to join. 0, or -ENOENT if not a participant. */
PSHM_API int pshm_barrier_leave(pshm_barrier *b);
/*
 * wait: arrive and sleep until the phase completes. trywait: complete the
 * phase if every other participant is already waiting, else -EAGAIN without
 * arriving. timedwait: at the deadline, break the barrier and return
 * -ETIMEDOUT. On success *arrival (may be NULL) is this wait's arrival index
 * (0 .. count-1; count-1 completed the phase). Returns 0, -PSHM_EBROKEN,
 * -EAGAIN, -ETIMEDOUT, -ENOSPC (not a participant and no free place),
 * -EINVAL, a tag error.
 */
PSHM_API int pshm_barrier_wait(pshm_barrier *b, unsigned *arrival);
PSHM_API int pshm_barrier_trywait(pshm_barrier *b, unsigned *arrival);
PSHM_API int pshm_barrier_timedwait(pshm_barrier *b, const struct timespec *deadline,
                                    unsigned *arrival);
/* Make a broken barrier usable: drop dead participants, empty the phase,
 * wake waiters (-PSHM_EBROKEN). 0 or a tag error. */
PSHM_API int pshm_barrier_reset(pshm_barrier *b);

/* ------------------------------------------------------------------------ */
/* Event                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * An event: a flag that waiters wait for. Manual reset (PSHM_EVENT_MANUAL):
 * set releases every waiter, present and future, until reset. Auto reset
 * (default): set releases exactly one waiter, and the event resets as that
 * waiter returns; with nobody waiting it stays set for the next one. A flag
 * word and a waiter count; no owner, so death means nothing to it, except
 * that an auto-reset wake-up taken by a waiter that then died passes to
 * another waiter within PSHM_SYNC_RECHECK_MS.
 */

#define PSHM_EVENT_MANUAL 1u
#define PSHM_EVENT_SET 2u /* start set */

PSHM_API int pshm_event_init(void *mem, size_t size, unsigned flags, pshm_event **out);
PSHM_API int pshm_event_attach(void *mem, size_t size, pshm_event **out);
PSHM_API int pshm_event_destroy(pshm_event *e);

/* 0 or a tag error. */
PSHM_API int pshm_event_set(pshm_event *e);
PSHM_API int pshm_event_reset(pshm_event *e);
/* wait until set (auto: and consume it). trywait: -EAGAIN if not set.
 * timedwait: -ETIMEDOUT. Also -EINVAL, a tag error. */
PSHM_API int pshm_event_wait(pshm_event *e);
PSHM_API int pshm_event_trywait(pshm_event *e);
PSHM_API int pshm_event_timedwait(pshm_event *e, const struct timespec *deadline);

/* ------------------------------------------------------------------------ */
/* Inspection (what `pshm ls` and `pshm sync info` show)                    */
/* ------------------------------------------------------------------------ */

typedef struct pshm_sync_info {
    size_t struct_size;     /* set by pshm_sync_info_init() */
    pshm_sync_kind kind;
    unsigned version;       /* layout version */
    int named;              /* 1: a named object's block (header + object) */
    unsigned flags;         /* PSHM_SEM_UNDO, PSHM_EVENT_MANUAL */
    int locked;             /* mutex/rwlock: held (rwlock: by the writer or >= 1 reader) */
    long owner_pid;         /* mutex holder / rwlock writer: its process, 0 if none */
    long owner_tid;         /* ... and its thread */
    int owner_alive;        /* 1 alive, 0 dead, -1 unknown or no owner */
    int inconsistent;       /* mutex: owner died, not yet made consistent; rwlock: writer died */
    int notrecoverable;     /* mutex */
    unsigned waiters;       /* blocked now (a hint: a waiter killed while blocked stays counted) */
    unsigned readers;       /* rwlock: read holds */
    unsigned value;         /* sem: value; event: 1 set, 0 not; barrier: arrived in this phase */
    unsigned count;         /* barrier: participants it waits for */
    unsigned members;       /* barrier: joined; sem undo: processes holding units */
    unsigned dead;          /* barrier/sem undo: of those, how many are dead */
    int broken;             /* barrier */
    unsigned long long seq; /* cond: signals so far (mod 2^32); barrier: phase (mod 256) */
} pshm_sync_info;

static inline void pshm_sync_info_init(pshm_sync_info *i)
{
    memset(i, 0, sizeof *i);
    i->struct_size = sizeof *i;
}

/*
 * Inspection reads only, never trusts the bytes, never waits and takes no
 * lock, so the result is a snapshot. out must come from
 * pshm_sync_info_init().
 * pshm_sync_stat: the named object `name`, read without mapping it and
 *   without becoming one of its holders (looking never changes a block's
 *   lifetime, even a stale one's). Returns 0, -EINVAL, -PSHM_ENAME_*,
 *   -ENOENT, -EACCES, -PSHM_EFTYPE, -EAGAIN (still being initialised),
 *   -PSHM_EKIND (a block that is not a named sync object), -PSHM_EBADFORMAT,
 *   -PSHM_EVERSION, -PSHM_EABI.
 * pshm_sync_fstat: the object of an open named handle. Returns 0, -EINVAL,
 *   or a tag error if its bytes were overwritten since open.
 * pshm_sync_stat_mem: the object in size bytes at mem (8-byte aligned):
 *   either a named object's whole block (header first) or a bare embedded
 *   object. Returns 0, -EINVAL, -EAGAIN, -PSHM_EBADFORMAT, -PSHM_EVERSION,
 *   -PSHM_EABI.
 */
PSHM_API int pshm_sync_stat(const char *name, pshm_sync_info *out);
PSHM_API int pshm_sync_fstat(const pshm_sync *h, pshm_sync_info *out);
PSHM_API int pshm_sync_stat_mem(const void *mem, size_t size, pshm_sync_info *out);

/*
 * pshm_sync_describe: one line for `pshm ls`, e.g. "mutex locked pid=1234
 * waiters=0", "sem value=3 waiters=0", "barrier 2/4 broken", written to buf
 * as text is written everywhere (see Conventions: cap, *len, -ERANGE).
 * Returns 0, -ERANGE, -EINVAL.
 */
PSHM_API int pshm_sync_describe(const pshm_sync_info *info, char *buf, size_t cap, size_t *len);


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
 *                       reported to it (pshm_queue_msginfo, info.overruns).
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
 *   reserved is skipped. Either way it counts in info.lost_reservations. A
 *   committed message is never lost by a producer's death.
 * - A consumer that dies between peek and release did not consume the
 *   message: it is delivered again (at least once) - in SPSC to the next
 *   consumer, in MPMC to any consumer - and counts in info.redeliveries.
 *   A message whose consumers died max_deliveries times is treated as
 *   poison: it is dropped and counts in info.drops. max_deliveries = 1
 *   makes delivery at most once: the first death drops (and counts) it.
 *   A consumer that closes its handle while holding a peeked message gives
 *   it back the same way (counted as a redelivery, not towards poison).
 * - BROADCAST: a subscriber that dies holds nothing back: a waiting producer
 *   drops it from the set it waits for. Nothing is redelivered (no other
 *   subscriber wanted its copy).
 * So: every committed message is delivered to a live consumer (in BROADCAST,
 * to every live subscriber that was subscribed when it was committed), or
 * counted in info.drops; duplicates happen only after a consumer died or
 * closed holding the message, and each counts in info.redeliveries. No
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
 * opened with keep_open do not count), or anyone calls pshm_queue_shutdown,
 * the queue is shut down for good: consumers drain what was committed, then
 * get -PSHM_ECLOSED; producers get -PSHM_ECLOSED from reserve/send and from
 * open. A crash is not a shutdown.
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
 * one process, but share its one mapping of the queue (so a process may hold
 * many handles on one queue at no cost per message; pshm_block_data() of
 * each handle's pshm_queue_block() is that mapping, which goes with the
 * process's last handle). fork(): a child must not use the parent's handles; it may
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
 * Options for create and open: the block options' fields (same names, types
 * and defaults; see pshm_block_options), then the queue's own. Start from
 * pshm_queue_options_init(). The fields marked "create" shape the queue and
 * are ignored by open (the queue has its own); the others belong to the
 * handle.
 */
typedef struct pshm_queue_options {
    size_t struct_size;         /* set by _init; do not touch */
    unsigned mode;              /* create: as pshm_block_options, default 0600 */
    pshm_lifetime lifetime;     /* create: default PSHM_PERSIST */
    int readonly;               /* refused with -EINVAL: every role writes the queue */
    int open_existing;          /* create: attach to an existing queue instead of -EEXIST */
    int prefault;
    int huge_pages;             /* create */
    int sparse;                 /* create */
    int watch;                  /* create */
    unsigned open_timeout_ms;   /* open: how long to wait for a queue being initialised,
                                   default 2000 */
    pshm_queue_mode queue_mode; /* create: default PSHM_QUEUE_SPSC */
    size_t ring_bytes;          /* create: bytes of ring, default 1 MiB. SPSC rounds up to
                                   a power of two of at least 2 records of max_msg (a record:
                                   the message + 16, rounded up to 64 bytes); MPMC and
                                   BROADCAST cut it into ring_bytes / slot bytes slots (slot =
                                   max_msg + 16 rounded up to 64), rounded up to a power of
                                   two, at least 2 */
    size_t messages;            /* create: if > 0, size the ring to hold at least this many
                                   messages of max_msg bytes instead (ring_bytes is ignored) */
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
    int keep_open;              /* producer: closing this handle never shuts the queue down
                                   (for a passing producer, e.g. `pshm queue send`) */
} pshm_queue_options;

static inline void pshm_queue_options_init(pshm_queue_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->mode = 0600;
    o->lifetime = PSHM_PERSIST;
    o->open_timeout_ms = 2000;
    o->queue_mode = PSHM_QUEUE_SPSC;
    o->ring_bytes = (size_t)1 << 20;
    o->max_msg = 4096;
    o->max_participants = 64;
    o->max_deliveries = 3;
    o->spin = 2000;
    o->recover_ms = 50;
}

typedef struct pshm_queue pshm_queue;

/*
 * pshm_queue_create: create the queue `name` (NULL: a random name, as for
 * blocks) and open a handle on it in `role`. opt may be NULL for defaults.
 * The block is fully initialised before any attacher can use it.
 * Returns 0 and *out, or:
 *   -EINVAL   bad role or option values (queue_mode, sizes, max_deliveries,
 *             readonly, ...)
 *   -EEXIST   the name is taken (and !opt->open_existing)
 *   -PSHM_ENAME_*, -ENOSPC, -EACCES, -PSHM_ENOMARK, ...: as pshm_block_create
 *   -ENOTSUP  the platform cannot witness a participant's death (the portable
 *             fallback, src/os/posix.c: queues need Linux's OFD locks)
 *   with open_existing and an existing queue: whatever pshm_queue_open returns
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
 *   -PSHM_EKIND        the block is not a queue (another kind, a raw
 *                      block, or zeros: a queue is named already marked as
 *                      being made, so zeros are never a queue)
 *   -PSHM_EVERSION     a queue of a layout version this build does not know
 *   -PSHM_EABI         a queue made by a build with a different layout
 *   -PSHM_EBADFORMAT   the header is corrupt, or the block is shorter than
 *                      its header says (a peer shrank it)
 *   -ETIMEDOUT         its creator is alive and still initialising it after
 *                      open_timeout_ms
 *   -PSHM_ENOTRECOVERABLE  its creator died while initialising it, at any
 *                      point after the name appeared (remove the block)
 *   -PSHM_EROLE        SPSC producer/consumer or BROADCAST producer: that role
 *                      is held by another live handle
 *   -PSHM_ENOSLOT      every participant slot is held by a live handle
 *   -PSHM_ECLOSED      producer: the queue has been shut down
 *   -ENOTSUP           the platform cannot witness a participant's death (the
 *                      portable fallback)
 * Thread-safe. The handle is the caller's: pshm_queue_close() it.
 */
PSHM_API int pshm_queue_open(const char *name, pshm_queue_role role,
                             const pshm_queue_options *opt, pshm_queue **out);

/*
 * pshm_queue_close: leave the queue and free the handle; NULL is a no-op.
 * A pending reservation is cancelled (counted as a lost reservation); a
 * peeked, unreleased message is given back for redelivery. Closing the last
 * producer shuts the queue down (see Closing). The block is closed as by
 * pshm_block_close (an AUTO/OWNED queue may go away). In a forked child
 * this only unmaps. Returns 0 or the code of pshm_block_close.
 */
PSHM_API int pshm_queue_close(pshm_queue *q);

/*
 * pshm_queue_shutdown: end the stream for every participant, for good (any
 * handle, producer or consumer, may call it): consumers drain what was
 * committed, then get -PSHM_ECLOSED; every reserve and send, and every
 * producer open, gets -PSHM_ECLOSED. Sleepers are woken. The handle stays
 * open (close it as usual). Returns 0 or -EINVAL (q NULL).
 */
PSHM_API int pshm_queue_shutdown(pshm_queue *q);

/*
 * Reserve room for a message of up to n bytes and return a pointer to it in
 * the ring (*ptr, PSHM_QUEUE_ALIGN-aligned, valid until commit or cancel).
 * Nothing is visible to consumers until pshm_queue_commit.
 * Returns 0, or:
 *   -PSHM_ETOOBIG   n > max_msg
 *   -PSHM_EORDER    a reservation is already pending on this handle
 *   -PSHM_EROLE     the handle is a consumer
 *   -PSHM_ECLOSED   the queue has been shut down
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
 *   -PSHM_ECLOSED   the queue is shut down and everything was consumed
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
 * Batch claims on one handle (SPSC and MPMC; symbol version PSHM_0.3): peek up to max
 * ready messages in one call. On 0, *n (1..max) messages were claimed and
 * ptrs[i], lens[i] (i < *n) describe them as pshm_queue_peek does one:
 * each pointer stays valid until that message is released. The handle may
 * go on claiming while it holds a batch (the new claims join the batch
 * after the old ones), up to as many messages as the ring can hold.
 * pshm_queue_releasemany(q, n) consumes the first n held messages, oldest
 * first (n <= the number held; n = 0 does nothing). The blocking form waits
 * until at least one message can be claimed; none waits for max.
 * A batch is recorded in the handle's participant slot, so crashes are
 * what they are for one peek (Participants and crashes): if the process
 * dies holding a batch, every message of it is delivered again (counted,
 * one by one, in info.redeliveries) or, having reached max_deliveries,
 * dropped (info.drops); closing the handle gives every held message back.
 * In SPSC a batch always starts at the oldest message, so a poison message
 * also costs the messages behind it a try each.
 * Returns 0, or (with *n = 0):
 *   -PSHM_ECLOSED   the queue is shut down and nothing is left beyond what
 *                   this handle holds
 *   -PSHM_EROLE     the handle is a producer
 *   -PSHM_EORDER    a single peek (pshm_queue_peek) is pending, or the
 *                   handle already holds as many messages as the ring holds
 *   -ENOTSUP        a BROADCAST queue (use pshm_queue_peek)
 *   -EINVAL         a NULL argument, max 0, or (timed) a bad deadline
 *   -ENOMEM         no memory for the handle's list of claims
 *   -EAGAIN (try) / -ETIMEDOUT (timed): the queue stayed empty
 *   -PSHM_EBADFORMAT  as for peek; a corrupt MPMC message met after others
 *                   were claimed ends the batch early (and is dropped).
 * While a batch is held, pshm_queue_peek/recv return -PSHM_EORDER and
 * pshm_queue_msginfo -PSHM_EORDER. pshm_queue_releasemany returns 0,
 * -PSHM_EORDER (no batch held, n > 0), -EINVAL (n > the number held),
 * -PSHM_EROLE, or -PSHM_EBADFORMAT (a message was taken from under us:
 * corrupt shared state; the others are released anyway).
 * Thread-safety and fork: as for pshm_queue_peek (one thread per handle; a
 * forked child must not use the handle: the batch stays the parent's).
 */
PSHM_API int pshm_queue_peekmany(pshm_queue *q, const void **ptrs, size_t *lens, size_t max,
                                 size_t *n);
PSHM_API int pshm_queue_trypeekmany(pshm_queue *q, const void **ptrs, size_t *lens, size_t max,
                                    size_t *n);
PSHM_API int pshm_queue_timedpeekmany(pshm_queue *q, const void **ptrs, size_t *lens, size_t max,
                                      size_t *n, const struct timespec *deadline);
PSHM_API int pshm_queue_releasemany(pshm_queue *q, size_t n);

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
 * Delivery: recv consumes the message with its internal release, the last
 * thing it does before it returns 0. A consumer that dies inside recv
 * before that release (waiting, or copying) holds the message as a peek
 * does: it is delivered again (at least once, counted in redeliveries). One
 * that dies after it - in recv's last instructions, or later while it
 * works on its copy - has consumed it: nothing is redelivered. So recv is
 * at-least-once up to its return and at-most-once for what the caller does
 * with the copy; for at-least-once processing, peek, process, then
 * release (zero-copy), as a copy cannot be given back by a dead process.
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
    size_t struct_size;  /* set by pshm_queue_msg_info_init() */
    unsigned attempts;   /* earlier deliveries that ended with the consumer's death (0 normally) */
    unsigned returned;   /* 1 if a consumer closed its handle holding it before (SPSC, MPMC) */
    uint64_t lost;       /* BROADCAST: messages this subscriber lost (overwritten before or
                            while it read them) since the previous one it received intact */
} pshm_queue_msg_info;

static inline void pshm_queue_msg_info_init(pshm_queue_msg_info *mi)
{
    memset(mi, 0, sizeof *mi);
    mi->struct_size = sizeof *mi;
}

/* Returns 0, -EINVAL (NULL, or mi not initialised), or -PSHM_EORDER if no
 * message was peeked or received yet. */
PSHM_API int pshm_queue_msginfo(const pshm_queue *q, pshm_queue_msg_info *mi);

/*
 * A queue's geometry and statistics, summed over every participant that
 * ever used it. A counter a process keeps for itself may miss the one
 * operation it was killed in; what recovery counts for the dead (lost
 * reservations, redeliveries, drops after a death) is counted exactly once.
 */
typedef struct pshm_queue_info {
    size_t struct_size;        /* set by pshm_queue_info_init() */
    pshm_queue_mode queue_mode;
    int overwrite;             /* BROADCAST overwrite mode */
    int shut_down;             /* pshm_queue_shutdown was called, or the last producer closed */
    unsigned max_participants, max_deliveries;
    unsigned producers, consumers; /* live handles by role */
    unsigned dead;             /* slots of dead handles not recovered yet */
    uint64_t ring_bytes;       /* bytes of ring */
    uint64_t slots;            /* MPMC/BROADCAST: fixed message slots in the ring; SPSC: 0
                                  (variable-size records) */
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
} pshm_queue_info;

static inline void pshm_queue_info_init(pshm_queue_info *i)
{
    memset(i, 0, sizeof *i);
    i->struct_size = sizeof *i;
}

/* One participant slot in use, as pshm_queue_participants reports it. */
typedef struct pshm_queue_participant {
    size_t struct_size;        /* set by pshm_queue_participant_init() */
    unsigned index;            /* slot in the table */
    pshm_queue_role role;
    long pid;
    uint64_t start_time;       /* process start, clock ticks since boot */
    int alive;                 /* 1: holds its liveness lock; 0: dead, not recovered yet */
    uint64_t sent, received, waits_full, waits_empty;
} pshm_queue_participant;

static inline void pshm_queue_participant_init(pshm_queue_participant *p)
{
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
}

/*
 * pshm_queue_stat: describe the queue `name` without joining it, without
 * mapping it and without becoming one of its holders: the header and the
 * participant table (and, for SPSC depth, the record headers) are copied
 * out with pread from a read-only descriptor and checked; each
 * participant's liveness is asked of the kernel (a lock query, which never
 * waits). Changes nothing, never waits (a queue still being initialised is
 * -EAGAIN); a peer that shrinks or rewrites the block meanwhile makes it
 * fail with a code, never crash; a stale AUTO/OWNED block is described, not
 * removed. pshm_queue_fstat: the same through an open handle. Both read the
 * shared counters without locking: approximate while the queue moves. out
 * must come from pshm_queue_info_init().
 * Returns 0, -EINVAL, or (stat) -PSHM_ENAME_*, -ENOENT, -EACCES,
 * -PSHM_EFTYPE, -ENOMEM, -PSHM_EKIND (not a queue), -EAGAIN,
 * -PSHM_EVERSION, -PSHM_EABI, -PSHM_EBADFORMAT. Thread-safe.
 */
PSHM_API int pshm_queue_stat(const char *name, pshm_queue_info *out);
PSHM_API int pshm_queue_fstat(const pshm_queue *q, pshm_queue_info *out);

/*
 * pshm_queue_participants: the participant slots in use of the queue
 * `name`, read as pshm_queue_stat reads: up to cap of them into parts
 * (parts[0].struct_size, set by pshm_queue_participant_init(), gives the
 * element size: initialise the first element), *n (may be NULL) = the
 * number of slots in use (which may exceed cap). Returns 0 or the errors of
 * pshm_queue_stat.
 */
PSHM_API int pshm_queue_participants(const char *name, pshm_queue_participant *parts,
                                     size_t cap, size_t *n);

/* Accessors. The queue's mode and geometry: pshm_queue_fstat. */
PSHM_API pshm_block *pshm_queue_block(const pshm_queue *q); /* owned by q */
PSHM_API size_t pshm_queue_max_msg(const pshm_queue *q);
/* "spsc", "mpmc", "broadcast" (or "unknown"). */
PSHM_API const char *pshm_queue_mode_name(pshm_queue_mode m);


#ifdef __cplusplus
}
#endif
#endif /* PSHM_H */
