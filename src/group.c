// SPDX-License-Identifier: MIT
/*
 * group.c - lifetime groups (PSHM_GROUP): blocks that live as long as a
 * program - its top-level process and every process it started - however
 * those processes end.
 *
 * Why this shape: the stdlib's resource tracker gives "one tracker per
 * program"; we want that promise with the kernel as the only witness. Every
 * member holds a shared OFD lock on the hold byte of one anchor object
 * (pshm_group_<hex>): a forked child shares its parent's open file
 * description, so it is a member for free; an exec'd child re-joins through
 * the PSHM_GROUP environment variable. One watcher per group (the block
 * watcher of os/linux.c, forked once when the group is made) waits for the
 * exclusive lock, which the kernel grants only when no member is left, and
 * then removes the names listed in the anchor's table (each only if it
 * still names the object that was registered) and the anchor.
 *
 * The anchor: a 64-byte header and GROUP_CAP entries {dev, ino, name},
 * created sparse (only the pages touched use memory). Members append with
 * an atomic fetch-add on the count. The table is shared memory, so the
 * watcher trusts nothing in it: counts are clamped, names are checked, and
 * a name is removed only while it leads to the registered inode.
 */
#include "internal.h"
#include "os/os.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GROUP_PREFIX "pshm_group_"
#define GROUP_MAGIC 0x3170726d6873707fULL
#define GROUP_VERSION 1u
#define GROUP_CAP 65536u

typedef struct ghead {
    uint64_t magic;
    uint32_t version;
    uint32_t entry_size;
    uint64_t cap;
    uint64_t count; /* entries claimed (fetch-add); may exceed cap */
    uint8_t pad[32];
} ghead;

typedef struct gentry {
    uint64_t dev, ino;
    char name[PSHM_NAME_MAX + 1];
} gentry;

#define GROUP_SIZE (sizeof(ghead) + (size_t)GROUP_CAP * sizeof(gentry))

/* This process's membership. A forked child inherits it (the descriptor
 * shares the parent's open file description, hence its lock). */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_fd = -1;
static ghead *g_map;
static char g_name[PSHM_NAME_MAX + 1];

/* fork() takes g_lock (so a child never inherits it held by a thread that
 * does not exist there) - except when the forking thread holds it itself:
 * making a group forks its watcher under the lock. */
static _Thread_local int g_mine;     /* this thread holds g_lock */
static _Thread_local int g_forklock; /* the prepare handler took it */

static void g_prefork(void)
{
    if (g_mine)
        return;
    PSHM__CHECK(pthread_mutex_lock(&g_lock));
    g_forklock = 1;
}

static void g_postfork(void)
{
    if (!g_forklock)
        return;
    g_forklock = 0;
    PSHM__CHECK(pthread_mutex_unlock(&g_lock));
}

static void g_init(void) { (void)pthread_atfork(g_prefork, g_postfork, g_postfork); }

static void g_enter(void)
{
    (void)pthread_once(&g_once, g_init);
    PSHM__CHECK(pthread_mutex_lock(&g_lock));
    g_mine = 1;
}

static void g_leave(void)
{
    g_mine = 0;
    PSHM__CHECK(pthread_mutex_unlock(&g_lock));
}

static int map_anchor(int fd, ghead **out)
{
    struct stat st;
    void *p;

    if (fstat(fd, &st) != 0)
        return -errno;
    if ((uint64_t)st.st_size < GROUP_SIZE)
        return -PSHM_EBADFORMAT;
    p = mmap(NULL, GROUP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *out = p;
    return 0;
}

/* In the watcher, once no member is left: remove what the table lists.
 * Async-signal-safe calls only (it is a fork of a possibly threaded
 * process); nothing in the table is trusted. */
static void group_reap(int fd)
{
    ghead *h;
    uint64_t n;

    if (map_anchor(fd, &h) != 0)
        return;
    if (h->magic != GROUP_MAGIC || h->version != GROUP_VERSION) {
        munmap(h, GROUP_SIZE);
        return;
    }
    n = __atomic_load_n(&h->count, __ATOMIC_ACQUIRE);
    if (n > GROUP_CAP)
        n = GROUP_CAP;
    for (uint64_t i = 0; i < n; i++) {
        gentry *e = (gentry *)((char *)(h + 1) + i * sizeof(gentry));
        char name[PSHM_NAME_MAX + 1];

        memcpy(name, e->name, sizeof name);
        name[PSHM_NAME_MAX] = 0;
        if (pshm_name_check(name, strlen(name)) != 0 || name[0] == '/')
            continue;
        if (pshm__os_is(name, e->dev, e->ino))
            (void)pshm__os_unlink(name);
    }
    munmap(h, GROUP_SIZE);
}

static int join_existing(const char *id)
{
    char nm[PSHM_NAME_MAX + 1];
    ghead *h = NULL;
    int fd, r;

    r = pshm__name_norm(id, nm);
    if (r != 0)
        return r;
    if (strncmp(nm, GROUP_PREFIX, sizeof GROUP_PREFIX - 1) != 0)
        return -EINVAL;
    r = pshm__os_open(nm, 1, &fd);
    if (r != 0)
        return r;
    /* Fails (-EAGAIN) once the watcher holds the exclusive lock: the group
     * has ended and is being reaped. */
    r = pshm__os_hold_lock(fd, 'r', 0);
    if (r == 0)
        r = map_anchor(fd, &h);
    if (r == 0 && (h->magic != GROUP_MAGIC || h->version != GROUP_VERSION ||
                   h->entry_size != sizeof(gentry) || h->cap != GROUP_CAP)) {
        munmap(h, GROUP_SIZE);
        r = -PSHM_EBADFORMAT;
    }
    if (r != 0) {
        close(fd);
        return r;
    }
    g_fd = fd;
    g_map = h;
    snprintf(g_name, sizeof g_name, "%s", nm);
    return 0;
}

/* An anchor nobody holds - its group ended and its watcher is gone too
 * (killed, or never started) - is reaped by the next process that makes a
 * group: the kernel grants the exclusive lock only when no member is left,
 * and a live watcher's pending request does not block us. */
static int reap_if_ended(const char *name, void *ud)
{
    struct stat st;
    int fd;

    (void)ud;
    if (strncmp(name, GROUP_PREFIX, sizeof GROUP_PREFIX - 1) != 0)
        return 0;
    if (pshm__os_open(name, 1, &fd) != 0)
        return 0;
    if (pshm__os_hold_lock(fd, 'w', 0) == 0 && fstat(fd, &st) == 0) {
        group_reap(fd);
        if (pshm__os_is(name, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
            (void)pshm__os_unlink(name);
    }
    close(fd);
    return 0;
}

static int create_group(void)
{
    unsigned char rnd[8];
    char nm[PSHM_NAME_MAX + 1];
    struct stat st;
    ghead *h;
    int fd, r;

    (void)pshm__os_list(reap_if_ended, NULL);
    r = pshm__os_random(rnd, sizeof rnd);
    if (r != 0)
        return r;
    snprintf(nm, sizeof nm, GROUP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    /* sparse (reserve 0), unmarked, with our shared hold taken */
    r = pshm__os_create(nm, 0600, GROUP_SIZE, 0, NULL, 0, 1, NULL, &fd, &st);
    if (r != 0)
        return r;
    r = map_anchor(fd, &h);
    if (r != 0)
        goto fail;
    h->entry_size = sizeof(gentry);
    h->cap = GROUP_CAP;
    h->version = GROUP_VERSION;
    __atomic_store_n(&h->magic, GROUP_MAGIC, __ATOMIC_RELEASE);
    r = pshm__os_watch_cb(nm, fd, group_reap);
    if (r != 0) {
        munmap(h, GROUP_SIZE);
        goto fail;
    }
    g_fd = fd;
    g_map = h;
    snprintf(g_name, sizeof g_name, "%s", nm);
    return 0;
fail:
    if (pshm__os_is(nm, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
        (void)pshm__os_unlink(nm);
    close(fd);
    return r;
}

static int join_locked(const char *id)
{
    int r;
    int asked = id != NULL;

    if (g_fd >= 0)
        return 0;
    if (!id)
        id = getenv(PSHM_GROUP_ENV);
    r = -ENOENT;
    if (id && *id)
        r = join_existing(id);
    if (asked && (r == -EINVAL || (-r >= PSHM_ENAME_EMPTY && -r <= PSHM_ENAME_DOT)))
        return r; /* the caller named no group; a bad environment is ignored */
    if (r != 0) /* none, ended (-EAGAIN), gone (-ENOENT) or not a group: a new one */
        r = create_group();
    if (r == 0 && setenv(PSHM_GROUP_ENV, g_name, 1) != 0)
        r = -errno; /* still a member; only exec'd children would miss it */
    return r;
}

int pshm_group_join(const char *id)
{
    int r;

    g_enter();
    r = join_locked(id);
    g_leave();
    return r;
}

int pshm_group_id(char *buf, size_t cap, size_t *len)
{
    size_t n;
    int r = 0;

    g_enter();
    if (g_fd < 0) {
        r = -ENOENT;
        goto out;
    }
    n = strlen(g_name);
    if (len)
        *len = n;
    if (!buf && cap == 0)
        goto out;
    if (!buf) {
        r = -EINVAL;
        goto out;
    }
    if (cap > 0)
        snprintf(buf, cap, "%s", g_name);
    if (cap <= n)
        r = -ERANGE;
out:
    g_leave();
    return r;
}

int pshm__group_add(const char *name, uint64_t dev, uint64_t ino)
{
    uint64_t i;
    gentry *e;
    int r;

    g_enter();
    r = join_locked(NULL);
    if (r != 0)
        goto out;
    i = __atomic_fetch_add(&g_map->count, 1, __ATOMIC_ACQ_REL);
    if (i >= GROUP_CAP) {
        r = -ENOSPC;
        goto out;
    }
    e = (gentry *)((char *)(g_map + 1) + i * sizeof(gentry));
    e->dev = dev;
    e->ino = ino;
    snprintf(e->name, sizeof e->name, "%s", name);
out:
    g_leave();
    return r;
}
