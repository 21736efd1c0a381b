/* SPDX-License-Identifier: MIT */
/*
 * os.h - the platform layer under the library. Linux (linux.c) is the real
 * implementation; posix.c is a portable fallback that keeps compiling and
 * offers PERSIST blocks only.
 *
 * Names passed here are already normalised (no leading slash, validated).
 * Every function returns 0 (or a count) on success and -errno on failure.
 */
#ifndef PSHM_OS_H
#define PSHM_OS_H

#include "../internal.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Create an object of `size` bytes and give it `name` only when it is fully
 * made: sized, reserved (posix_fallocate, unless !reserve), marked with the
 * xattr record `mark` (unless NULL; a record the system cannot store is an
 * error only if `need_mark`) and, if `hold`, with this descriptor's shared
 * hold lock taken. Returns the descriptor in *fd (O_RDWR, CLOEXEC) and its
 * stat in *st. -EEXIST if the name is taken; nothing is left behind on any
 * failure.
 */
PSHM__HIDDEN int pshm__os_create(const char *name, unsigned mode, uint64_t size,
                                 int reserve, const char *mark, int need_mark, int hold,
                                 int *fd, struct stat *st);

/* Open an existing object. */
PSHM__HIDDEN int pshm__os_open(const char *name, int rdwr, int *fd);
PSHM__HIDDEN int pshm__os_unlink(const char *name);
PSHM__HIDDEN int pshm__os_stat(const char *name, struct stat *st);
/* pshm__os_stat, then -PSHM_EFTYPE if `name` is not a regular object (a
 * directory, symlink, FIFO or device in the shared-memory directory). */
PSHM__HIDDEN int pshm__os_stat_object(const char *name, struct stat *st);

/* 1 if `name` still refers to the object open as fd, 0 if not (or gone). */
PSHM__HIDDEN int pshm__os_same(const char *name, int fd);
/* 1 if `name` refers to the object (dev, ino), 0 if not (or gone). */
PSHM__HIDDEN int pshm__os_is(const char *name, uint64_t dev, uint64_t ino);

/* The lifetime record: set on fd, read from fd into buf (returns length). */
PSHM__HIDDEN int pshm__os_mark_set(int fd, const char *rec, size_t len);
PSHM__HIDDEN int pshm__os_mark_get(int fd, char *buf, size_t cap);

/*
 * The hold lock: one byte far past any block's end, locked through an open
 * file description (OFD lock), so the kernel drops it when the last
 * descriptor of that description is closed, including at process death.
 * lock: type is 'r' (shared) or 'w' (exclusive); wait blocks. -EAGAIN if
 * busy without wait. query: 1 if another description holds any lock on the
 * byte, 0 if none.
 */
PSHM__HIDDEN int pshm__os_hold_lock(int fd, char type, int wait);
PSHM__HIDDEN int pshm__os_hold_unlock(int fd);
PSHM__HIDDEN int pshm__os_hold_query(int fd);
/* How many open file descriptions hold a lock on the hold byte of the
 * object (dev, ino): 0 and *n, or -errno if the system cannot tell. */
PSHM__HIDDEN int pshm__os_hold_count(uint64_t dev, uint64_t ino, long *n);

/* The file-system path of the object `name`, NUL-terminated in out (cap
 * bytes), e.g. "/dev/shm/NAME"; "" where objects have no path. */
PSHM__HIDDEN void pshm__os_path(const char *name, char *out, size_t cap);

/*
 * Liveness bytes for the modules above blocks (queues, sync objects): an OFD
 * lock on one byte at PSHM__LIVE_BASE + slot of a block's descriptor, far past
 * any data and apart from the hold byte. The kernel drops it when the
 * description is closed or its process dies, so "nobody holds byte k" means
 * "participant k is gone". type: 'r' shared, 'w' exclusive, 'u' unlock;
 * -EAGAIN if busy without wait. query: 1 if another description holds a lock
 * on the byte, 0 if none, -errno.
 */
#define PSHM__LIVE_BASE ((int64_t)0x7ffffffe00000000LL)
PSHM__HIDDEN int pshm__os_lock_byte(int fd, int64_t off, char type, int wait);
PSHM__HIDDEN int pshm__os_query_byte(int fd, int64_t off);

/*
 * Start a detached watcher that removes `name` once nobody holds the hold
 * byte of the object open as fd (see pshm_block_options.watch). 0 once the
 * watcher runs, -errno if it could not be started.
 */
PSHM__HIDDEN int pshm__os_watch(const char *name, int fd);
/* The same, and the watcher calls cb(fd) (fd: its own descriptor of the
 * object, holding the exclusive hold lock) just before it removes `name`.
 * cb runs in a fork of a possibly threaded process: async-signal-safe calls
 * only. Used by lifetime groups (group.c). */
typedef void (*pshm__os_watch_fn)(int fd);
PSHM__HIDDEN int pshm__os_watch_cb(const char *name, int fd, pshm__os_watch_fn cb);

PSHM__HIDDEN int pshm__os_random(void *buf, size_t n);

/* Start time of a process (clock ticks since boot), to tell a reused pid. */
PSHM__HIDDEN int pshm__os_proc_start(long pid, uint64_t *start);
/* 1 if pid lives and started at `start`, 0 if not, -errno if unknown. */
PSHM__HIDDEN int pshm__os_proc_alive(long pid, uint64_t start);

/* 0 if transparent huge pages can back shared memory here, else -PSHM_ENOHUGE. */
PSHM__HIDDEN int pshm__os_huge_available(void);
PSHM__HIDDEN int pshm__os_huge_advise(void *addr, size_t len);

/* Call fn(name, ud) for each regular object in the shared-memory directory. */
PSHM__HIDDEN int pshm__os_list(int (*fn)(const char *name, void *ud), void *ud);

/*
 * For each inode in `inodes` (sorted ascending, n entries), count the
 * processes that map it (one per process); -errno if /proc is unreadable.
 */
PSHM__HIDDEN int pshm__os_count_mappers(const uint64_t *inodes, size_t n, int *counts);

#endif
