/* SPDX-License-Identifier: MIT */
/*
 * block.c - named blocks and their lifetimes.
 *
 * A block is a raw POSIX shared-memory object: nothing is stored inside it,
 * so CPython and any other POSIX program see exactly the user's bytes. What
 * pshm needs to know about a block lives beside the bytes:
 *   - the lifetime record, an xattr "pshm1 <lifetime> <pid> <starttime>";
 *   - the hold lock, a shared OFD lock on a byte far past the end, held by
 *     each AUTO handle and by an OWNED block's creator. The kernel drops it
 *     when the holder closes or dies, so "no lock" means "no live holder".
 *
 * Removal protocol (last closer, owner, stale-block collector): take the
 * hold byte exclusively without waiting (failure means someone still holds
 * it), check that the name still refers to our inode, unlink, then close.
 * A closer whose attempt fails lets go of its own hold and tries once more:
 * two holders closing at once each fail on the other's hold, and without
 * the second try both would leave the block behind.
 * An attacher takes the hold byte shared, waiting, and only then checks that
 * the name still refers to the inode it opened; if a remover got there
 * first, the check fails and the attacher retries. So a name is never
 * removed under a holder, and a holder never keeps a removed name.
 */
#include "fault.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RETRIES 64

struct pshm_block {
    void *data;
    size_t size;
    int fd;
    pshm_lifetime lifetime;
    int readonly;
    int created;
    int holding;       /* this handle's description holds the hold byte */
    int shared_map;    /* data is a queue's shared mapping: not ours to unmap */
    pid_t pid;         /* process that made the handle; a forked copy ends no lifetime */
    uint64_t dev, ino; /* the object: its name is removed only while it still leads here */
    struct pshm_block *prev, *next;
    char name[PSHM_NAME_MAX + 1];
};

/* ---------------------------------------------------------------- names */

int pshm_name_check(const char *name, size_t len)
{
    if (name && len > 0 && name[0] == '/')
        name++, len--;
    if (!name || len == 0)
        return -PSHM_ENAME_EMPTY;
    if (memchr(name, '\0', len))
        return -PSHM_ENAME_NUL;
    if (memchr(name, '/', len))
        return -PSHM_ENAME_SLASH;
    if (len > PSHM_NAME_MAX)
        return -PSHM_ENAME_LONG;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return -PSHM_ENAME_DOT;
    return 0;
}

int pshm__name_norm(const char *name, char *out)
{
    size_t len;
    int r;

    if (!name)
        return -PSHM_ENAME_EMPTY;
    /* Bounded scan: a name longer than the limit is reported, not read to its end. */
    len = strnlen(name, PSHM_NAME_MAX + 2);
    r = pshm_name_check(name, len);
    if (r != 0)
        return r;
    if (name[0] == '/')
        name++, len--;
    memcpy(out, name, len);
    out[len] = 0;
    return 0;
}

const char *pshm_lifetime_name(pshm_lifetime lt)
{
    switch (lt) {
    case PSHM_PERSIST: return "persist";
    case PSHM_AUTO: return "auto";
    case PSHM_OWNED: return "owned";
    case PSHM_GROUP: return "group";
    }
    return "unknown";
}

/* ------------------------------------------------------- lifetime record */

typedef struct mark {
    pshm_lifetime lifetime;
    long pid;
    uint64_t start;
} mark;

/* This process's pid and start time, read once (and again in a forked child):
 * /proc/self/stat costs three syscalls, a create should not pay them. */
static struct {
    pid_t pid;
    uint64_t start;
} self_cache;
static pthread_mutex_t self_lock = PTHREAD_MUTEX_INITIALIZER;

static pid_t pid_cache; /* 0 after fork until asked again */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
    __atomic_store_n(&pid_cache, 0, __ATOMIC_RELAXED);
}

static void pid_init(void)
{
    (void)pthread_atfork(NULL, NULL, pid_forget);
}

/* getpid() without a syscall per handle. */
static pid_t self_pid(void)
{
    pid_t p;

    (void)pthread_once(&pid_once, pid_init);
    p = __atomic_load_n(&pid_cache, __ATOMIC_RELAXED);
    if (p == 0) {
        p = getpid();
        __atomic_store_n(&pid_cache, p, __ATOMIC_RELAXED);
    }
    return p;
}

static void self_identity(long *pid, uint64_t *start)
{
    pid_t now = self_pid();

    PSHM__CHECK(pthread_mutex_lock(&self_lock));
    if (self_cache.pid != now) {
        self_cache.start = 0;
        (void)pshm__os_proc_start((long)now, &self_cache.start);
        self_cache.pid = now;
    }
    *pid = (long)now;
    *start = self_cache.start;
    PSHM__CHECK(pthread_mutex_unlock(&self_lock));
}

static void mark_format(char *out, size_t cap, pshm_lifetime lt)
{
    uint64_t start;
    long pid;

    self_identity(&pid, &start);
    snprintf(out, cap, "pshm1 %s %ld %" PRIu64, pshm_lifetime_name(lt), pid, start);
}

static int parse_u64(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s == end || *s < '0' || *s > '9')
        return -1;
    if (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
        return -1; /* no leading zeros: one spelling per number */
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return 0;
}

/* The record is read from the file system, where anyone with write access
 * may have put anything: accept exactly what mark_format writes. */
int pshm__mark_parse(const char *buf, size_t n, pshm_lifetime *lt, long *pid_out,
                     uint64_t *start)
{
    static const char *const words[] = {"persist ", "auto ", "owned "};
    const char *p = buf, *end = buf + n;
    uint64_t pid;
    size_t i;

    if (n < 6 || memcmp(p, "pshm1 ", 6) != 0)
        return -1;
    p += 6;
    for (i = 0; i < 3; i++) {
        size_t w = strlen(words[i]);
        if ((size_t)(end - p) >= w && memcmp(p, words[i], w) == 0) {
            p += w;
            break;
        }
    }
    if (i == 3)
        return -1;
    if (parse_u64(&p, end, &pid) != 0 || pid == 0 || pid > INT32_MAX)
        return -1;
    if (p == end || *p++ != ' ')
        return -1;
    if (parse_u64(&p, end, start) != 0 || p != end)
        return -1;
    *lt = (pshm_lifetime)i;
    *pid_out = (long)pid;
    return 0;
}

/*
 * A mark counts only if the object's owner (or root) put it there: a mark
 * is what lets pshm remove a block, and a peer must never get a block
 * removed that it could not remove itself. trusted.pshm only a privileged
 * process writes. user.pshm anyone who can write the object can set, so it
 * counts on an object only its owner can write (no group or other write
 * bit; with an ACL the group bits are its mask), or on one that carries the
 * sticky bit, which only the owner or root can set and which a create of an
 * AUTO or OWNED block writable by others sets for exactly this reason.
 */
static int mark_trusted(int fd, const struct stat *known, int trusted)
{
    struct stat st;

    if (trusted)
        return 1;
    if (!known) {
        if (fstat(fd, &st) != 0)
            return 0;
        known = &st;
    }
    return (known->st_mode & 022) == 0 || (known->st_mode & S_ISVTX) != 0;
}

/* The object's record, or PERSIST with pid 0 for raw and foreign objects
 * and for marks that may have been forged (mark_trusted). st: the
 * descriptor's fstat when the caller has it (one system call less), or NULL. */
static int mark_read_st(int fd, const struct stat *st, mark *m)
{
    char buf[128];
    int trusted = 0;
    int n = pshm__os_mark_get(fd, buf, sizeof buf, &trusted);

    memset(m, 0, sizeof *m);
    m->lifetime = PSHM_PERSIST;
    if (n < 0 || pshm__mark_parse(buf, (size_t)n, &m->lifetime, &m->pid, &m->start) != 0 ||
        !mark_trusted(fd, st, trusted)) {
        memset(m, 0, sizeof *m);
        return 0;
    }
    return 1;
}

static int mark_read(int fd, mark *m) { return mark_read_st(fd, NULL, m); }

/* ------------------------------------------------------------- registry */

/* Handles still open at exit() end their lifetimes there: a normal exit
 * cleans up at once, like a close. The memory is left mapped: other threads
 * may still be running while exit handlers do. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static pshm_block *reg_head;

static int end_lifetime(pshm_block *b);

static void reg_atexit(void)
{
    /* exit() may run while another thread is inside reg_add/reg_remove:
     * wait briefly, but never hang the exit for it. */
    for (int i = 0; pthread_mutex_trylock(&reg_lock) != 0; i++) {
        if (i == 100)
            return;
        usleep(1000);
    }
    for (pshm_block *b = reg_head; b; b = b->next)
        (void)end_lifetime(b);
    PSHM__CHECK(pthread_mutex_unlock(&reg_lock));
}

/* A fork while another thread holds reg_lock must not leave the child a
 * locked mutex. */
static void reg_prefork(void)
{
    PSHM__CHECK(pthread_mutex_lock(&reg_lock));
}

static void reg_postfork(void)
{
    PSHM__CHECK(pthread_mutex_unlock(&reg_lock));
}

static void reg_init(void)
{
    (void)atexit(reg_atexit);
    (void)pthread_atfork(reg_prefork, reg_postfork, reg_postfork);
}

static void reg_add(pshm_block *b)
{
    (void)pthread_once(&reg_once, reg_init);
    PSHM__CHECK(pthread_mutex_lock(&reg_lock));
    b->prev = NULL;
    b->next = reg_head;
    if (reg_head)
        reg_head->prev = b;
    reg_head = b;
    PSHM__CHECK(pthread_mutex_unlock(&reg_lock));
}

static void reg_remove(pshm_block *b)
{
    PSHM__CHECK(pthread_mutex_lock(&reg_lock));
    if (b->prev)
        b->prev->next = b->next;
    else if (reg_head == b)
        reg_head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->prev = b->next = NULL;
    PSHM__CHECK(pthread_mutex_unlock(&reg_lock));
}

/* -------------------------------------------------------------- removal */

/*
 * Remove `name` if it still refers to the object open as fd and nobody holds
 * it. fd must be open read-write. Returns 0 if removed (or already gone),
 * 1 if a holder appeared (the object is live after all), -errno otherwise.
 * On success fd keeps the exclusive hold until it is closed, so attachers
 * that opened the old inode wait, then see the name gone.
 */
static int remove_unheld_as(const char *name, int fd, uint64_t dev, uint64_t ino)
{
    int r = pshm__os_hold_lock(fd, 'w', 0);

    if (r == -EAGAIN)
        return 1;
    if (r != 0)
        return r;
    PSHM__FAULT("block.remove.locked");
    if (!pshm__os_is(name, dev, ino))
        return 0;
    r = pshm__os_unlink(name);
    PSHM__FAULT("block.remove.unlinked");
    return r == -ENOENT ? 0 : r;
}

static int remove_unheld(const char *name, int fd)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return -errno;
    return remove_unheld_as(name, fd, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

/*
 * If `name` is a stale AUTO/OWNED object (marked, no holder), remove it.
 * Returns 1 if it was removed, 0 if it is live or not ours to judge, -errno
 * (-ENOENT: no such name) otherwise.
 */
static int collect_if_stale(const char *name)
{
    mark m;
    int fd, r;

    r = pshm__os_open(name, 1, &fd);
    if (r == -EACCES || r == -EPERM) {
        /* Not writable by us: we can still tell a stale block and say so. */
        if (pshm__os_open(name, 0, &fd) != 0)
            return r;
        int stale = mark_read(fd, &m) && m.lifetime != PSHM_PERSIST &&
                    pshm__os_hold_query(fd) == 0;
        close(fd);
        return stale ? r : 0;
    }
    if (r != 0)
        return r;
    r = 0;
    if (mark_read(fd, &m) && m.lifetime != PSHM_PERSIST && pshm__os_hold_query(fd) == 0) {
        r = remove_unheld(name, fd);
        r = r == 0 ? 1 : r == 1 ? 0 : r;
    }
    close(fd);
    return r;
}

int pshm_block_collect(const char *name, int *removed)
{
    char nm[PSHM_NAME_MAX + 1];
    struct stat st;
    int r = pshm__name_norm(name, nm);

    if (removed)
        *removed = 0;
    if (r != 0)
        return r;
    r = pshm__os_stat_object(nm, &st);
    if (r != 0)
        return r;
    r = collect_if_stale(nm);
    if (r < 0)
        return r;
    if (removed)
        *removed = r;
    return 0;
}

static int end_lifetime(pshm_block *b)
{
    int r;

    /* Only AUTO handles and an OWNED block's creator hold the hold byte. */
    if (b->pid != self_pid() || !b->holding)
        return 0; /* a forked child's copy, or nothing to end */
    b->holding = 0;
    r = remove_unheld_as(b->name, b->fd, b->dev, b->ino);
    if (r == 1) {
        /* Another holder lives - or is closing at this very moment and has
         * just failed the same way because of our hold. Let go of the hold
         * and look once more: every closer lets go before its second look,
         * so whoever lets go last finds nobody and removes the block. */
        (void)pshm__os_hold_unlock(b->fd);
        PSHM__FAULT("block.close.let_go");
        r = remove_unheld_as(b->name, b->fd, b->dev, b->ino);
    }
    if (r == 1)
        return 0; /* another holder lives: the block stays */
    if (r == -EBADF)
        return 0; /* read-only, not ours to remove: it goes at gc or by its owner */
    return r;
}

/* ------------------------------------------------------------- mapping */

typedef struct opts {
    unsigned mode;
    pshm_lifetime lifetime;
    int readonly, open_existing, prefault, huge_pages, sparse, watch;
} opts;

static int read_opts(const pshm_block_options *o, opts *out)
{
    pshm_block_options d;

    pshm_block_options_init(&d);
    if (!o)
        o = &d;
    if (o->struct_size < offsetof(pshm_block_options, mode) + sizeof o->mode)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->mode = o->mode;
#define TAKE(f)                                                                 \
    if (PSHM__HAS_FIELD(o, pshm_block_options, f))                              \
        out->f = o->f;
    TAKE(lifetime)
    TAKE(readonly)
    TAKE(open_existing)
    TAKE(prefault)
    TAKE(huge_pages)
    TAKE(sparse)
    TAKE(watch)
#undef TAKE
    if (out->mode & ~07777u)
        return -EINVAL;
    out->mode &= 0777u; /* never a setuid, setgid or sticky file */
    if (out->lifetime != PSHM_PERSIST && out->lifetime != PSHM_AUTO &&
        out->lifetime != PSHM_OWNED && out->lifetime != PSHM_GROUP)
        return -EINVAL;
    if (out->watch && out->lifetime == PSHM_GROUP)
        return -EINVAL; /* the group has its own watcher */
    if (out->watch && out->lifetime == PSHM_PERSIST)
        return -EINVAL; /* nothing to watch for */
    if (out->huge_pages)
        return pshm__os_huge_available();
    return 0;
}

static int map_block(pshm_block *b, const opts *o)
{
    int prot = b->readonly ? PROT_READ : PROT_READ | PROT_WRITE;
    int flags = MAP_SHARED;

    if (o->prefault)
        flags |= MAP_POPULATE;
    b->data = mmap(NULL, b->size, prot, flags, b->fd, 0);
    if (b->data == MAP_FAILED) {
        b->data = NULL;
        return errno ? -errno : -ENOMEM;
    }
    if (o->huge_pages) {
        int r = pshm__os_huge_advise(b->data, b->size);
        if (r != 0) {
            munmap(b->data, b->size);
            b->data = NULL;
            return r;
        }
    }
    return 0;
}

static pshm_block *block_new(const char *name, int fd)
{
    pshm_block *b = calloc(1, sizeof *b);

    if (!b)
        return NULL;
    b->fd = fd;
    b->pid = self_pid();
    snprintf(b->name, sizeof b->name, "%s", name);
    return b;
}

/* ------------------------------------------------------------- create */

static int try_create(const char *name, size_t size, const opts *o, const pshm__prep *prep,
                      pshm_block **out)
{
    char rec[96];
    struct stat st;
    int fd, r;
    pshm_block *b;

    mark_format(rec, sizeof rec, o->lifetime);
    r = pshm__os_create(name, o->mode, size, !o->sparse, rec, o->lifetime != PSHM_PERSIST,
                        o->lifetime != PSHM_PERSIST, prep, &fd, &st);
    if (r != 0)
        return r;
    PSHM__FAULT("block.create.named");
    b = block_new(name, fd);
    if (!b) {
        r = -ENOMEM;
        goto fail_named;
    }
    b->dev = (uint64_t)st.st_dev;
    b->ino = (uint64_t)st.st_ino;
    b->size = size;
    b->lifetime = o->lifetime;
    b->created = 1;
    b->holding = o->lifetime != PSHM_PERSIST;
    r = map_block(b, o);
    if (r != 0)
        goto fail_block;
    if (o->watch) {
        r = pshm__os_watch(name, fd);
        if (r != 0)
            goto fail_mapped;
    }
    reg_add(b);
    *out = b;
    return 0;
fail_mapped:
    munmap(b->data, b->size);
fail_block:
    free(b);
fail_named:
    /* The name is already published: take it back before anyone relies on it. */
    if (pshm__os_is(name, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
        (void)pshm__os_unlink(name);
    close(fd);
    return r;
}

/* A GROUP block is a PERSIST object registered with this process's
 * lifetime group (group.c), whose watcher removes it when the program ends. */
static int try_create_group(const char *name, size_t size, const opts *o, const pshm__prep *prep,
                            pshm_block **out)
{
    opts p = *o;
    int r;

    p.lifetime = PSHM_PERSIST;
    r = pshm_group_join(NULL);
    if (r != 0)
        return r;
    r = try_create(name, size, &p, prep, out);
    if (r != 0)
        return r;
    (*out)->lifetime = PSHM_GROUP;
    r = pshm__group_add(name, (*out)->dev, (*out)->ino);
    if (r != 0) {
        (void)pshm_block_unlink(*out);
        (void)pshm_block_close(*out);
        *out = NULL;
    }
    return r;
}

static int random_name(char *out)
{
    unsigned char rnd[8];
    int r = pshm__os_random(rnd, sizeof rnd);

    if (r != 0)
        return r;
    /* CPython's style (psm_ + hex), with 64 random bits instead of 32. */
    snprintf(out, PSHM_NAME_MAX + 1, "psm_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    return 0;
}

static int do_open(const char *name, const opts *o, pshm_block **out);

int pshm_block_create(const char *name, size_t size, const pshm_block_options *opt,
                      pshm_block **out)
{
    return pshm__block_create_prep(name, size, opt, NULL, out);
}

int pshm__block_create_prep(const char *name, size_t size, const pshm_block_options *opt,
                            const pshm__prep *prep, pshm_block **out)
{
    char nm[PSHM_NAME_MAX + 1];
    opts o;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    r = read_opts(opt, &o);
    if (r != 0)
        return r;
    if (name) {
        r = pshm__name_norm(name, nm);
        if (r != 0)
            return r;
    }
    if (size == 0)
        return -EINVAL;
    for (int i = 0; i < RETRIES; i++) {
        if (!name) {
            r = random_name(nm);
            if (r != 0)
                return r;
        }
        r = o.lifetime == PSHM_GROUP ? try_create_group(nm, size, &o, prep, out)
                                     : try_create(nm, size, &o, prep, out);
        if (r != -EEXIST)
            return r;
        if (!name)
            continue; /* a random name collided: draw another */
        if (o.open_existing) {
            r = do_open(nm, &o, out);
            if (r != -ENOENT && r != -PSHM_ESTALE)
                return r;
            continue; /* it vanished between our create and open: create again */
        }
        r = collect_if_stale(nm);
        if (r != 1 && r != -ENOENT)
            return -EEXIST; /* live, or stale but not ours to remove */
    }
    return -EEXIST;
}

/* --------------------------------------------------------------- open */

/* For an AUTO block opened read-only, a read-write descriptor (if we may)
 * lets the last closer take the exclusive hold and remove the name. */
static void upgrade_fd(const char *name, int *fd)
{
    int wfd;

    if (pshm__os_open(name, 1, &wfd) != 0)
        return;
    if (!pshm__os_same(name, wfd)) {
        close(wfd);
        return;
    }
    close(*fd);
    *fd = wfd;
}

static int do_open(const char *name, const opts *o, pshm_block **out)
{
    for (int i = 0; i < RETRIES; i++) {
        struct stat st;
        mark m;
        int fd, r, holding = 0;

        r = pshm__os_open(name, !o->readonly, &fd);
        if (r != 0)
            return r;
        PSHM__FAULT("block.open.opened");
        /* One fstat serves the mark's check (mode bits) and the mapping
         * (size, identity): the inode behind fd does not change. */
        if (fstat(fd, &st) != 0) {
            r = -errno;
            close(fd);
            return r;
        }
        mark_read_st(fd, &st, &m);
        if (m.lifetime != PSHM_PERSIST) {
            if (o->readonly && m.lifetime == PSHM_AUTO) {
                int was = fd;
                upgrade_fd(name, &fd);
                if (fd != was && fstat(fd, &st) != 0) { /* another description, maybe inode */
                    r = -errno;
                    close(fd);
                    return r;
                }
            }
            if (pshm__os_hold_query(fd) == 0) {
                /* Every holder is gone: the block is stale. Collect it if we may. */
                int wfd = fd;
                if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR && pshm__os_open(name, 1, &wfd) != 0)
                    wfd = -1;
                r = wfd >= 0 ? remove_unheld(name, wfd) : 0;
                if (wfd >= 0 && wfd != fd)
                    close(wfd);
                close(fd);
                if (r == 1)
                    continue; /* someone attached meanwhile: it lives, open again */
                return -PSHM_ESTALE;
            }
            if (m.lifetime == PSHM_AUTO) {
                r = pshm__os_hold_lock(fd, 'r', 1);
                if (r != 0) {
                    close(fd);
                    return r;
                }
                PSHM__FAULT("block.open.held");
                if (!pshm__os_same(name, fd)) {
                    close(fd); /* removed while we waited: look again */
                    continue;
                }
                holding = 1;
            }
        }
        if (st.st_size == 0 || (uint64_t)st.st_size > SIZE_MAX) {
            /* An AUTO handle that maps nothing would still be a holder: drop it. */
            close(fd);
            return st.st_size == 0 ? -PSHM_EEMPTY : -EFBIG;
        }
        pshm_block *b = block_new(name, fd);
        if (!b) {
            close(fd);
            return -ENOMEM;
        }
        b->size = (size_t)st.st_size;
        b->dev = (uint64_t)st.st_dev;
        b->ino = (uint64_t)st.st_ino;
        b->lifetime = m.lifetime;
        b->readonly = o->readonly;
        b->holding = holding;
        r = map_block(b, o);
        if (r != 0) {
            free(b);
            close(fd);
            return r;
        }
        reg_add(b);
        *out = b;
        return 0;
    }
    return -ENOENT;
}

int pshm_block_open(const char *name, const pshm_block_options *opt, pshm_block **out)
{
    char nm[PSHM_NAME_MAX + 1];
    opts o;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    r = read_opts(opt, &o);
    if (r != 0)
        return r;
    r = pshm__name_norm(name, nm);
    if (r != 0)
        return r;
    return do_open(nm, &o, out);
}

/* -------------------------------------------------------------- close */

int pshm_block_close(pshm_block *b)
{
    int r;

    if (!b)
        return 0;
    reg_remove(b);
    if (b->data && !b->shared_map)
        munmap(b->data, b->size);
    r = end_lifetime(b);
    close(b->fd); /* releases the hold byte, shared or exclusive */
    free(b);
    return r;
}

int pshm_block_unlink(pshm_block *b)
{
    if (!b)
        return -EINVAL;
    if (!pshm__os_is(b->name, b->dev, b->ino))
        return -ENOENT;
    return pshm__os_unlink(b->name);
}

int pshm_unlink(const char *name)
{
    char nm[PSHM_NAME_MAX + 1];
    int r = pshm__name_norm(name, nm);

    return r != 0 ? r : pshm__os_unlink(nm);
}

void *pshm__block_take_map(pshm_block *b)
{
    b->shared_map = 1;
    return b->data;
}

void pshm__block_use_map(pshm_block *b, void *data)
{
    if (b->data && !b->shared_map)
        munmap(b->data, b->size);
    b->data = data;
    b->shared_map = 1;
}

void *pshm_block_data(const pshm_block *b) { return b ? b->data : NULL; }
size_t pshm_block_size(const pshm_block *b) { return b ? b->size : 0; }
const char *pshm_block_name(const pshm_block *b) { return b ? b->name : NULL; }
pshm_lifetime pshm_block_lifetime(const pshm_block *b) { return b ? b->lifetime : PSHM_PERSIST; }
int pshm_block_readonly(const pshm_block *b) { return b ? b->readonly : 0; }
int pshm_block_created(const pshm_block *b) { return b ? b->created : 0; }
int pshm_block_fd(const pshm_block *b) { return b ? b->fd : -1; }

/* pread, not memcpy from the mapping: a peer may have shrunk the object. */
int pshm_block_read(const pshm_block *b, uint64_t off, void *buf, size_t n, size_t *got)
{
    size_t done = 0;

    if (got)
        *got = 0;
    if (!b || (!buf && n > 0))
        return -EINVAL;
    while (done < n && off + done >= off && off + done <= (uint64_t)INT64_MAX) {
        ssize_t k = pread(b->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break; /* the object's end */
        done += (size_t)k;
    }
    if (got)
        *got = done;
    return 0;
}

/* --------------------------------------------------------- inspection */

static int info_ok(const pshm_block_info *out)
{
    return out && out->struct_size >= offsetof(pshm_block_info, name) + sizeof out->name;
}

/* What stat(2) and the mark of an open descriptor tell; out->struct_size
 * bytes at most are written (the caller's struct may be older than ours). */
static void fill_info(const char *name, const struct stat *st, int fd, pshm_block_info *out)
{
    pshm_block_info in;
    mark m;
    int r;

    pshm_block_info_init(&in);
    snprintf(in.name, sizeof in.name, "%s", name);
    pshm__os_path(name, in.path, sizeof in.path);
    in.size = (uint64_t)st->st_size;
    in.mode = (unsigned)(st->st_mode & 07777);
    in.uid = (unsigned)st->st_uid;
    in.gid = (unsigned)st->st_gid;
    in.mtime = (int64_t)st->st_mtim.tv_sec;
    in.mtime_nsec = (int32_t)st->st_mtim.tv_nsec;
    in.lifetime = PSHM_PERSIST;
    in.creator_alive = -1;
    in.holders = -1;
    in.nmapped = -1;
    if (fd >= 0) {
        in.readable = 1;
        if (mark_read(fd, &m)) {
            in.marked = 1;
            in.lifetime = m.lifetime;
            in.creator_pid = m.pid;
            r = pshm__os_proc_alive(m.pid, m.start);
            in.creator_alive = r < 0 ? -1 : r;
            if (m.lifetime != PSHM_PERSIST) {
                long n;
                if (pshm__os_hold_count((uint64_t)st->st_dev, (uint64_t)st->st_ino, &n) == 0)
                    in.holders = n;
                else if ((r = pshm__os_hold_query(fd)) == 0)
                    in.holders = 0;
            }
        }
    }
    size_t n = out->struct_size < sizeof in ? out->struct_size : sizeof in;
    in.struct_size = out->struct_size;
    memcpy(out, &in, n);
}

/* Describe `name` (normalised): regular objects only. */
static int stat_name(const char *name, pshm_block_info *out, uint64_t *ino)
{
    struct stat st;
    int fd = -1, r;

    r = pshm__os_stat_object(name, &st);
    if (r != 0)
        return r;
    if (pshm__os_open(name, 0, &fd) != 0)
        fd = -1; /* not readable by us: what stat tells is all we know */
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOENT; /* replaced between the two looks */
    }
    fill_info(name, &st, fd, out);
    if (fd >= 0)
        close(fd);
    *ino = (uint64_t)st.st_ino;
    return 0;
}

static void set_nmapped(pshm_block_info *out, long n)
{
    if (PSHM__HAS_FIELD(out, pshm_block_info, nmapped))
        out->nmapped = n;
}

int pshm_block_stat(const char *name, pshm_block_info *out)
{
    char nm[PSHM_NAME_MAX + 1];
    uint64_t ino;
    int r, n;

    if (!info_ok(out))
        return -EINVAL;
    r = pshm__name_norm(name, nm);
    if (r != 0)
        return r;
    r = stat_name(nm, out, &ino);
    if (r != 0)
        return r;
    if (pshm__os_count_mappers(&ino, 1, &n) == 0)
        set_nmapped(out, n);
    return 0;
}

int pshm_block_fstat(const pshm_block *b, pshm_block_info *out)
{
    struct stat st;
    uint64_t ino;
    int n;

    if (!b || !info_ok(out))
        return -EINVAL;
    if (fstat(b->fd, &st) != 0)
        return -errno;
    fill_info(b->name, &st, b->fd, out);
    ino = (uint64_t)st.st_ino;
    if (pshm__os_count_mappers(&ino, 1, &n) == 0)
        set_nmapped(out, n);
    return 0;
}

typedef struct scan {
    const char *pattern;
    char **names;
    size_t n, cap;
} scan;

static int scan_one(const char *name, void *ud)
{
    scan *s = ud;

    if (pshm_name_check(name, strlen(name)) != 0)
        return 0;
    if (s->pattern && fnmatch(s->pattern, name, 0) != 0)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **nn = realloc(s->names, cap * sizeof *nn);
        if (!nn)
            return -ENOMEM;
        s->names = nn;
        s->cap = cap;
    }
    s->names[s->n] = strdup(name);
    if (!s->names[s->n])
        return -ENOMEM;
    s->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_ino(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Mapper counts for every entry: one pass over /proc for the whole table. */
static void count_all(pshm_block_info *infos, const uint64_t *inos, size_t n)
{
    uint64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    int *counts = malloc((n ? n : 1) * sizeof *counts);

    if (sorted && counts) {
        memcpy(sorted, inos, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_ino);
        if (pshm__os_count_mappers(sorted, n, counts) == 0) {
            for (size_t i = 0; i < n; i++) {
                uint64_t *hit = bsearch(&inos[i], sorted, n, sizeof *sorted, cmp_ino);
                infos[i].nmapped = counts[hit - sorted];
            }
        }
    }
    free(sorted);
    free(counts);
}

static void scan_free(scan *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
}

int pshm_block_scan(const char *pattern, pshm_block_scan_cb cb, void *ud)
{
    scan s = {pattern, NULL, 0, 0};
    pshm_block_info *infos = NULL;
    uint64_t *inos = NULL;
    size_t n = 0;
    int r;

    if (!cb)
        return -EINVAL;
    r = pshm__os_list(scan_one, &s);
    if (r != 0)
        goto out;
    if (s.n) /* nothing matched: names is NULL, which qsort must not get */
        qsort(s.names, s.n, sizeof *s.names, cmp_str);
    infos = malloc((s.n ? s.n : 1) * sizeof *infos);
    inos = malloc((s.n ? s.n : 1) * sizeof *inos);
    r = -ENOMEM;
    if (!infos || !inos)
        goto out;
    for (size_t i = 0; i < s.n; i++) {
        pshm_block_info_init(&infos[n]);
        if (stat_name(s.names[i], &infos[n], &inos[n]) == 0)
            n++; /* vanished, or not an object: skipped */
    }
    count_all(infos, inos, n);
    r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = cb(&infos[i], ud);
    if (r > 0)
        r = -EINVAL; /* a callback must not return positive codes */
out:
    free(infos);
    free(inos);
    scan_free(&s);
    return r;
}

typedef struct gc_run {
    unsigned flags;
    pshm_gc_cb cb;
    void *ud;
    size_t removed;
    int first_err;
} gc_run;

static int gc_one(const pshm_block_info *in, void *ud)
{
    gc_run *g = ud;
    int r;

    if (!in->marked || in->lifetime == PSHM_PERSIST || in->holders != 0)
        return 0;
    if (g->flags & PSHM_GC_DRY_RUN) {
        /* Would we be allowed to? Removing needs write access to the object. */
        int fd;
        r = pshm__os_open(in->name, 1, &fd);
        if (r == 0) {
            close(fd);
            g->removed++;
        }
    } else {
        r = collect_if_stale(in->name);
        if (r == 1)
            g->removed++;
        if (r == -ENOENT)
            return 0; /* gone meanwhile: not ours to report */
        if (r == 0)
            return 0; /* it came back to life (a new holder): not stale */
        r = r == 1 ? 0 : r;
    }
    if (r != 0 && g->first_err == 0)
        g->first_err = r;
    if (g->cb)
        g->cb(in, r, g->ud);
    return 0;
}

int pshm_block_gc(const char *pattern, unsigned flags, pshm_gc_cb cb, void *ud, size_t *removed)
{
    gc_run g = {flags, cb, ud, 0, 0};
    int r;

    if (removed)
        *removed = 0;
    if (flags & ~PSHM_GC_DRY_RUN)
        return -EINVAL;
    r = pshm_block_scan(pattern, gc_one, &g);
    if (removed)
        *removed = g.removed;
    return r != 0 ? r : g.first_err;
}
