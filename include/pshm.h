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
typedef struct pshm_value {
    pshm_vtype type;
    union {
        int64_t i; /* PSHM_INT */
        double f;  /* PSHM_FLOAT */
        int b;     /* PSHM_BOOL: 0 or 1 from get; any nonzero is True for set */
        struct {
            const char *ptr;
            size_t len;
        } s;       /* PSHM_STR and PSHM_BYTES */
    };
} pshm_value;

/* Constructors, for brevity: pshm_list_set(l, 0, &(pshm_value){...}) works too. */
static inline pshm_value pshm_value_none(void)
{
    pshm_value v = {PSHM_NONE, {0}};
    return v;
}
static inline pshm_value pshm_value_int(int64_t i)
{
    pshm_value v = {PSHM_INT, {0}};
    v.i = i;
    return v;
}
static inline pshm_value pshm_value_float(double f)
{
    pshm_value v = {PSHM_FLOAT, {0}};
    v.f = f;
    return v;
}
static inline pshm_value pshm_value_bool(int b)
{
    pshm_value v = {PSHM_BOOL, {0}};
    v.b = b != 0;
    return v;
}
/* str from UTF-8 bytes (len bytes, not a C string). */
static inline pshm_value pshm_value_str(const char *utf8, size_t len)
{
    pshm_value v = {PSHM_STR, {0}};
    v.s.ptr = utf8;
    v.s.len = len;
    return v;
}
static inline pshm_value pshm_value_bytes(const void *p, size_t len)
{
    pshm_value v = {PSHM_BYTES, {0}};
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
 * is pshm_block_name(pshm_list_block(l)). */
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
#define PSHM_ARRAY_OPEN_WAIT_MS 2000 /* how long open waits for a header being written */

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
 * right now), open waits for the magic, up to PSHM_ARRAY_OPEN_WAIT_MS, and
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
