/* SPDX-License-Identifier: MIT */
/*
 * linux.c - the platform layer on Linux. POSIX shared memory on Linux is a
 * tmpfs mounted at /dev/shm (glibc's shm_open opens files there), which lets
 * pshm use file operations shm_open cannot express: O_TMPFILE + linkat to
 * publish a name only once the object is complete, extended attributes for
 * the lifetime record, and OFD locks as the kernel's witness of liveness.
 */
#include "os.h"
#include "../fault.h"

#if defined(__linux__) && !defined(PSHM_FORCE_POSIX)

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"
#define PATH_CAP (sizeof SHM_DIR + 1 + PSHM_NAME_MAX + 1)

/* The hold byte: far past the end of any block, so locking it never touches data. */
#define HOLD_OFFSET ((off_t)0x7fffffff00000000LL)

static void shm_path(char *out, const char *name)
{
    snprintf(out, PATH_CAP, SHM_DIR "/%s", name);
}

static int neg_errno(void)
{
    return errno ? -errno : -EIO;
}

static int eintr_close(int fd)
{
    /* On Linux the descriptor is released even when close reports EINTR. */
    return close(fd);
}

/*
 * A descriptor of an O_TMPFILE object keeps its birth name ("/dev/shm/#1234
 * (deleted)" in /proc/PID/fd, maps and lsof) after linkat. Reopen the object
 * by its name so the creator's descriptor and mapping show the real one; keep
 * the hold (taken on the new description before the old one closes, so it
 * never lapses). If the name no longer leads to our inode, or cannot be
 * opened (a mode without read permission), keep the original descriptor.
 */
static int reopen_named(const char *path, int fd, int hold, const struct stat *st)
{
    struct stat nst;
    int nfd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (nfd < 0)
        return fd;
    if (fstat(nfd, &nst) != 0 || nst.st_dev != st->st_dev || nst.st_ino != st->st_ino ||
        (hold && pshm__os_lock_byte(nfd, HOLD_OFFSET, 'r', 0) != 0)) {
        eintr_close(nfd);
        return fd;
    }
    eintr_close(fd);
    return nfd;
}

int pshm__os_create(const char *name, unsigned mode, uint64_t size, int reserve,
                    const char *mark, int need_mark, int hold, int *fd_out,
                    struct stat *st)
{
    char path[PATH_CAP], proc[64];
    int fd, r;

    *fd_out = -1;
    if (size > (uint64_t)INT64_MAX)
        return -EFBIG;
    fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    if (fd < 0)
        return neg_errno();
    if (reserve) {
        /* Reserving also sets the size. posix_fallocate returns the error
         * rather than setting errno. */
        r = posix_fallocate(fd, 0, (off_t)size);
        if (r != 0) {
            r = -r;
            goto fail;
        }
    } else if (ftruncate(fd, (off_t)size) != 0) {
        r = neg_errno();
        goto fail;
    }
    if (mark) {
        r = pshm__os_mark_set(fd, mark, strlen(mark));
        if (r != 0 && (need_mark || r != -PSHM_ENOMARK))
            goto fail;
    }
    if (hold) {
        r = pshm__os_hold_lock(fd, 'r', 0);
        if (r != 0)
            goto fail;
    }
    /* linkat fails with EEXIST when the name is taken: exactly one creator
     * wins. AT_EMPTY_PATH is the direct way (root, or since Linux 6.10 the
     * opener itself); the /proc path works everywhere else. */
    shm_path(path, name);
    if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) != 0) {
        if (errno != ENOENT && errno != EPERM && errno != EINVAL) {
            r = neg_errno();
            goto fail;
        }
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0) {
            r = neg_errno();
            goto fail;
        }
    }
    PSHM__FAULT("block.create.linked"); /* named, already marked and held */
    if (fstat(fd, st) != 0) {
        r = neg_errno();
        (void)unlink(path);
        goto fail;
    }
    *fd_out = reopen_named(path, fd, hold, st);
    return 0;
fail:
    eintr_close(fd); /* the unnamed inode dies with its last descriptor */
    return r;
}

int pshm__os_open(const char *name, int rdwr, int *fd_out)
{
    char path[PATH_CAP];
    int fd;

    shm_path(path, name);
    fd = open(path, (rdwr ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        *fd_out = -1;
        return errno == ELOOP ? -ENOENT : neg_errno();
    }
    *fd_out = fd;
    return 0;
}

int pshm__os_unlink(const char *name)
{
    char path[PATH_CAP];

    shm_path(path, name);
    return unlink(path) == 0 ? 0 : neg_errno();
}

int pshm__os_stat(const char *name, struct stat *st)
{
    char path[PATH_CAP];

    shm_path(path, name);
    return lstat(path, st) == 0 ? 0 : neg_errno();
}

/* user.* xattrs on tmpfs arrived in Linux 6.6; root can use trusted.* anywhere. */
static const char *const mark_keys[] = {"user.pshm", "trusted.pshm"};

int pshm__os_mark_set(int fd, const char *rec, size_t len)
{
    for (size_t i = 0; i < sizeof mark_keys / sizeof *mark_keys; i++) {
        if (fsetxattr(fd, mark_keys[i], rec, len, 0) == 0)
            return 0;
        if (errno != EOPNOTSUPP && errno != EPERM && errno != EACCES)
            return neg_errno();
    }
    return -PSHM_ENOMARK;
}

int pshm__os_mark_get(int fd, char *buf, size_t cap)
{
    for (size_t i = 0; i < sizeof mark_keys / sizeof *mark_keys; i++) {
        ssize_t n = fgetxattr(fd, mark_keys[i], buf, cap);
        if (n >= 0)
            return (int)n;
        if (errno == ERANGE)
            return -PSHM_EBADFORMAT; /* longer than any record we write */
    }
    return -ENODATA;
}

static struct flock byte_flock(short type, int64_t off)
{
    struct flock fl;

    memset(&fl, 0, sizeof fl); /* OFD locks require l_pid == 0 */
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)off;
    fl.l_len = 1;
    return fl;
}

int pshm__os_lock_byte(int fd, int64_t off, char type, int wait)
{
    struct flock fl = byte_flock(type == 'w' ? F_WRLCK : type == 'r' ? F_RDLCK : F_UNLCK, off);

    if (type == 'u')
        return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : neg_errno();
    for (;;) {
        if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EACCES)
            return -EAGAIN; /* POSIX lets a busy lock report EACCES */
        return neg_errno();
    }
}

int pshm__os_query_byte(int fd, int64_t off)
{
    struct flock fl = byte_flock(F_WRLCK, off);

    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return neg_errno();
    return fl.l_type != F_UNLCK;
}

int pshm__os_hold_lock(int fd, char type, int wait)
{
    return pshm__os_lock_byte(fd, HOLD_OFFSET, type, wait);
}

int pshm__os_hold_unlock(int fd)
{
    return pshm__os_lock_byte(fd, HOLD_OFFSET, 'u', 0);
}

int pshm__os_hold_query(int fd)
{
    return pshm__os_query_byte(fd, HOLD_OFFSET);
}

/*
 * /proc/locks lists every lock; an OFD lock shows as
 *   "N: OFDLCK ADVISORY  READ -1 MAJ:MIN:INO START END"
 * (device numbers in hex), one line per open file description holding it;
 * a blocked request shows as "N: -> OFDLCK ...".
 */
int pshm__os_hold_count(uint64_t dev, uint64_t ino, long *n)
{
    char line[256], want[96];
    long count = 0;
    FILE *f = fopen("/proc/locks", "re");

    if (!f)
        return neg_errno();
    snprintf(want, sizeof want, "%02x:%02x:%" PRIu64 " %lld ", major((dev_t)dev),
             minor((dev_t)dev), ino, (long long)HOLD_OFFSET);
    while (fgets(line, sizeof line, f)) {
        /* "->" marks a waiter (a watcher, a remover), not a holder */
        if (strstr(line, " OFDLCK ") && !strstr(line, "->") && strstr(line, want))
            count++;
    }
    fclose(f);
    *n = count;
    return 0;
}

void pshm__os_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, SHM_DIR "/%s", name);
}

/* ------------------------------------------------------------ watcher */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* In the watcher: drop every mapping of /dev/shm it inherited, so it neither
 * shows as a mapper of anyone's blocks nor keeps them mapped. Only
 * async-signal-safe calls: the watcher is a fork of a possibly threaded
 * process. */
static void watcher_unmap_shm(void)
{
    static char buf[1 << 16];
    char pending[512];
    size_t plen = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    /* Collect ranges first: unmapping while reading maps would skip lines. */
    static uintptr_t ranges[1024][2];
    size_t nr = 0;
    ssize_t n;

    if (fd < 0)
        return;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (plen < sizeof pending - 1)
                    pending[plen++] = buf[i];
                continue;
            }
            pending[plen] = 0;
            if (strstr(pending, " " SHM_DIR "/") && nr < 1024) {
                uintptr_t lo = 0, hi = 0;
                const char *p = pending;
                int v;
                while ((v = hexval(*p)) >= 0)
                    lo = lo * 16 + (uintptr_t)v, p++;
                if (*p == '-') {
                    p++;
                    while ((v = hexval(*p)) >= 0)
                        hi = hi * 16 + (uintptr_t)v, p++;
                    if (hi > lo) {
                        ranges[nr][0] = lo;
                        ranges[nr][1] = hi;
                        nr++;
                    }
                }
            }
            plen = 0;
        }
    }
    close(fd);
    for (size_t i = 0; i < nr; i++)
        munmap((void *)ranges[i][0], ranges[i][1] - ranges[i][0]);
}

static void watcher_main(const char *path, dev_t dev, ino_t ino, pshm__os_watch_fn cb)
{
    sigset_t all;
    struct stat st;
    int fd;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* only SIGKILL/SIGSTOP reach us */
    setsid();
    close_range(0, ~0U, 0); /* nothing inherited: not even the creator's hold */
    fd = open("/dev/null", O_RDWR);
    if (fd == 0) {
        dup2(0, 1);
        dup2(0, 2);
    }
    watcher_unmap_shm();
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino)
        _exit(0);
    /* Granted only when no holder is left: the kernel wakes us when the last
     * one closes or dies. A pending write lock does not hold back new
     * readers, so attachers are not delayed by this wait. */
    PSHM__FAULT("block.watch.waiting");
    if (pshm__os_lock_byte(fd, HOLD_OFFSET, 'w', 1) != 0)
        _exit(0);
    PSHM__FAULT("block.watch.granted");
    if (cb)
        cb(fd);
    if (lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
        unlink(path);
    _exit(0);
}

int pshm__os_watch(const char *name, int fd)
{
    return pshm__os_watch_cb(name, fd, NULL);
}

int pshm__os_watch_cb(const char *name, int fd, pshm__os_watch_fn cb)
{
    char path[PATH_CAP];
    struct stat st;
    pid_t mid;
    int status;

    if (fstat(fd, &st) != 0)
        return neg_errno();
    shm_path(path, name);
    mid = fork();
    if (mid < 0)
        return neg_errno();
    if (mid == 0) {
        /* The intermediate child exits at once, so the watcher is nobody's
         * child but init's (or a subreaper's) and never our zombie. */
        pid_t w = fork();
        if (w == 0)
            watcher_main(path, st.st_dev, st.st_ino, cb);
        _exit(w < 0 ? 1 : 0);
    }
    while (waitpid(mid, &status, 0) < 0) {
        if (errno != EINTR)
            return 0; /* reaped by the caller's SIGCHLD handling: it ran */
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EAGAIN;
}

int pshm__os_random(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return neg_errno();
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int pshm__os_proc_start(long pid, uint64_t *start)
{
    char path[64], buf[1024];
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return neg_errno();
    n = read(fd, buf, sizeof buf - 1);
    eintr_close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    p++;
    /* after ')' come field 3 (state) ... field 22 (starttime) */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -EIO;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p + 1, &end, 10);
    if (errno || end == p + 1)
        return -EIO;
    *start = v;
    return 0;
}

int pshm__os_proc_alive(long pid, uint64_t start)
{
    uint64_t now;
    int r;

    if (pid <= 0)
        return -EINVAL;
    r = pshm__os_proc_start(pid, &now);
    if (r == -ENOENT || r == -ESRCH)
        return 0;
    if (r != 0)
        return r;
    return now == start;
}

static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return neg_errno();
    n = read(fd, buf, cap - 1);
    eintr_close(fd);
    if (n < 0)
        return -EIO;
    buf[n] = 0;
    return 0;
}

int pshm__os_huge_available(void)
{
    char buf[8192];

    /* "force" backs every shmem mapping with huge pages; "deny" none. */
    if (read_small("/sys/kernel/mm/transparent_hugepage/shmem_enabled", buf, sizeof buf) != 0)
        return -PSHM_ENOHUGE;
    if (strstr(buf, "[force]"))
        return 0;
    if (strstr(buf, "[deny]"))
        return -PSHM_ENOHUGE;
    /* Otherwise the tmpfs mount option huge= decides for files in /dev/shm. */
    FILE *f = fopen("/proc/self/mounts", "re");
    if (!f)
        return -PSHM_ENOHUGE;
    int ok = 0;
    while (fgets(buf, sizeof buf, f)) {
        char dev[256], dir[256], type[64], opts[4096];
        if (sscanf(buf, "%255s %255s %63s %4095s", dev, dir, type, opts) != 4)
            continue;
        if (strcmp(dir, SHM_DIR) != 0)
            continue;
        /* the last mount over /dev/shm wins */
        ok = strstr(opts, "huge=always") || strstr(opts, "huge=within_size") ||
             strstr(opts, "huge=advise");
    }
    fclose(f);
    return ok ? 0 : -PSHM_ENOHUGE;
}

int pshm__os_huge_advise(void *addr, size_t len)
{
    return madvise(addr, len, MADV_HUGEPAGE) == 0 ? 0 : neg_errno();
}

int pshm__os_list(int (*fn)(const char *name, void *ud), void *ud)
{
    DIR *d = opendir(SHM_DIR);
    struct dirent *e;
    int r = 0;

    if (!d)
        return neg_errno();
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
            continue;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        r = fn(e->d_name, ud);
        if (r != 0)
            break;
    }
    closedir(d);
    return r;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* One process's maps: add 1 to counts[i] for each distinct listed inode it maps. */
static void count_one(const char *pid, const uint64_t *inodes, size_t n, int *counts,
                      uint64_t *seen, size_t seen_cap)
{
    char path[320], line[PATH_MAX + 256];
    size_t nseen = 0;

    snprintf(path, sizeof path, "/proc/%s/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, " " SHM_DIR "/");
        unsigned long long ino;
        if (!p)
            continue;
        /* addr perms offset dev inode path */
        if (sscanf(line, "%*s %*s %*s %*s %llu", &ino) != 1)
            continue;
        const uint64_t key = ino;
        const uint64_t *hit = bsearch(&key, inodes, n, sizeof *inodes, cmp_u64);
        if (!hit)
            continue;
        size_t k;
        for (k = 0; k < nseen && seen[k] != key; k++)
            ;
        if (k < nseen)
            continue;
        if (nseen < seen_cap)
            seen[nseen++] = key;
        counts[hit - inodes]++;
    }
    fclose(f);
}

int pshm__os_count_mappers(const uint64_t *inodes, size_t n, int *counts)
{
    uint64_t seen[256];
    DIR *d;
    struct dirent *e;

    memset(counts, 0, n * sizeof *counts);
    if (n == 0)
        return 0;
    d = opendir("/proc");
    if (!d)
        return neg_errno();
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        count_one(e->d_name, inodes, n, counts, seen, sizeof seen / sizeof *seen);
    }
    closedir(d);
    return 0;
}

#endif /* __linux__ */
