/* SPDX-License-Identifier: MIT */
/*
 * posix.c - portable fallback over shm_open, for systems other than Linux
 * (and Linux built with -DPSHM_FORCE_POSIX, which make test builds and runs
 * the portable tests against). It offers PERSIST blocks, and the lists and
 * arrays built on them: without a way to create an object unnamed, nor
 * extended attributes on shared-memory objects, the AUTO and OWNED
 * lifetimes report -PSHM_ENOMARK and a block is visible at size 0 for a
 * moment while it is created, as with CPython.
 *
 * What it cannot do it refuses (-ENOTSUP) rather than pretends: POSIX record
 * locks belong to a process, not to an open description, and vanish when any
 * descriptor of the file closes, so they cannot witness a holder's death -
 * no hold lock, no liveness bytes (queues need them: their create and open
 * fail with -ENOTSUP), no watcher; no process start time (so no telling a
 * reused pid); no listing of the objects (scan and gc fail).
 */
#include "os.h"

#if !defined(__linux__) || defined(PSHM_FORCE_POSIX)

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void posix_name(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "/%s", name);
}

static int neg_errno(void)
{
    return errno ? -errno : -EIO;
}

int pshm__os_create(const char *name, unsigned mode, uint64_t size, int reserve,
                    const char *mark, int need_mark, int hold, const pshm__prep *prep,
                    int *fd_out, struct stat *st)
{
    char n[PSHM_NAME_MAX + 2];
    int fd, r;

    (void)hold, (void)mark;
    *fd_out = -1;
    if (prep && prep->lock_off >= 0)
        return -ENOTSUP; /* no OFD locks: no witness of the creator's death (no queues) */
    if (need_mark)
        return -PSHM_ENOMARK;
    posix_name(n, sizeof n, name);
    fd = shm_open(n, O_CREAT | O_EXCL | O_RDWR, (mode_t)mode);
    if (fd < 0)
        return neg_errno();
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (ftruncate(fd, (off_t)size) != 0) {
        r = neg_errno();
        goto fail;
    }
    if (reserve) {
        r = posix_fallocate(fd, 0, (off_t)size);
        /* some systems cannot reserve shared memory: that is not an error */
        if (r != 0 && r != EINVAL && r != EOPNOTSUPP && r != ENODEV) {
            r = -r;
            goto fail;
        }
    }
    if (fstat(fd, st) != 0) {
        r = neg_errno();
        goto fail;
    }
    *fd_out = fd;
    return 0;
fail:
    close(fd);
    shm_unlink(n);
    return r;
}

int pshm__os_open(const char *name, int rdwr, int *fd_out)
{
    char n[PSHM_NAME_MAX + 2];
    int fd;

    posix_name(n, sizeof n, name);
    fd = shm_open(n, rdwr ? O_RDWR : O_RDONLY, 0);
    if (fd < 0) {
        *fd_out = -1;
        return neg_errno();
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    *fd_out = fd;
    return 0;
}

int pshm__os_unlink(const char *name)
{
    char n[PSHM_NAME_MAX + 2];

    posix_name(n, sizeof n, name);
    return shm_unlink(n) == 0 ? 0 : neg_errno();
}

int pshm__os_stat(const char *name, struct stat *st)
{
    int fd, r;

    r = pshm__os_open(name, 0, &fd);
    if (r != 0)
        return r;
    r = fstat(fd, st) == 0 ? 0 : neg_errno();
    close(fd);
    return r;
}

int pshm__os_mark_set(int fd, const char *rec, size_t len)
{
    (void)fd, (void)rec, (void)len;
    return -PSHM_ENOMARK;
}

int pshm__os_mark_get(int fd, char *buf, size_t cap, int *trusted)
{
    (void)fd, (void)buf, (void)cap;
    *trusted = 0;
    return -ENODATA;
}

int pshm__os_hold_lock(int fd, char type, int wait)
{
    (void)fd, (void)type, (void)wait;
    return -ENOTSUP;
}

int pshm__os_hold_unlock(int fd)
{
    (void)fd;
    return -ENOTSUP;
}

int pshm__os_hold_query(int fd)
{
    (void)fd;
    return -ENOTSUP;
}

int pshm__os_hold_count(uint64_t dev, uint64_t ino, long *n)
{
    (void)dev, (void)ino, (void)n;
    return -ENOTSUP;
}

void pshm__os_path(const char *name, char *out, size_t cap)
{
    (void)name;
    if (cap)
        out[0] = '\0'; /* POSIX objects have no path */
}

/* Classic POSIX record locks are per process, not per description, and
 * released when any descriptor of the file closes: no witness of a death. */
int pshm__os_lock_byte(int fd, int64_t off, char type, int wait)
{
    (void)fd, (void)off, (void)type, (void)wait;
    return -ENOTSUP;
}

int pshm__os_query_byte(int fd, int64_t off)
{
    (void)fd, (void)off;
    return -ENOTSUP;
}

int pshm__os_watch(const char *name, int fd)
{
    (void)name, (void)fd;
    return -ENOTSUP;
}

int pshm__os_watch_cb(const char *name, int fd, pshm__os_watch_fn cb)
{
    (void)name, (void)fd, (void)cb;
    return -ENOTSUP;
}

int pshm__os_random(void *buf, size_t n)
{
#if defined(__APPLE__) || defined(__OpenBSD__) || defined(__FreeBSD__)
    arc4random_buf(buf, n);
    return 0;
#else
    int fd = open("/dev/urandom", O_RDONLY);
    unsigned char *p = buf;
    if (fd < 0)
        return neg_errno();
    while (n > 0) {
        ssize_t got = read(fd, p, n);
        if (got <= 0) {
            close(fd);
            return -EIO;
        }
        p += got;
        n -= (size_t)got;
    }
    close(fd);
    return 0;
#endif
}

/* No portable way to read a process's start time, and without it a pid
 * that was reused looks alive. */
int pshm__os_proc_start(long pid, uint64_t *start)
{
    (void)pid;
    *start = 0;
    return -ENOTSUP;
}

int pshm__os_proc_alive(long pid, uint64_t start)
{
    (void)start;
    return pid <= 0 ? -EINVAL : -ENOTSUP;
}

int pshm__os_huge_available(void)
{
    return -PSHM_ENOHUGE;
}

int pshm__os_huge_advise(void *addr, size_t len)
{
    (void)addr, (void)len;
    return -PSHM_ENOHUGE;
}

int pshm__os_list(int (*fn)(const char *name, void *ud), void *ud)
{
    (void)fn, (void)ud;
    return -ENOTSUP; /* POSIX offers no way to enumerate shared-memory objects */
}

int pshm__os_count_mappers(const uint64_t *inodes, size_t n, int *counts)
{
    (void)inodes;
    for (size_t i = 0; i < n; i++)
        counts[i] = -1;
    return -ENOTSUP;
}

#endif
