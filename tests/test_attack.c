/* SPDX-License-Identifier: MIT */
/*
 * test_attack.c - the library against a peer that writes what it likes:
 * forged lifetime marks from a second, unprivileged user (made here with
 * useradd; skipped when not root), a peer that shrinks a block under its
 * users, and corruption of every header word of every object kind through
 * every opener, each attempt in a child with a deadline that must end in
 * success or an error code, never a signal or a wait past the deadline.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ another user */

#define OTHER_USER "pshmcli" /* the CLI tests' second user: one is enough */

static void other_user(uid_t *uid, gid_t *gid)
{
    struct passwd *pw;

    if (geteuid() != 0)
        th_skip("needs root to make a second, unprivileged user (useradd)");
    pw = getpwnam(OTHER_USER);
    if (!pw) {
        if (system("useradd --system --no-create-home --shell /usr/sbin/nologin " OTHER_USER
                   " >/dev/null 2>&1") != 0)
            th_skip("useradd " OTHER_USER " failed");
        pw = getpwnam(OTHER_USER);
        if (!pw)
            th_skip("useradd made no " OTHER_USER);
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
}

static void become(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        _exit(90);
}

static void shm_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "/dev/shm/%s", name);
}

/* As the other user: write `rec` as the user.pshm mark of `name`. Exit
 * 0 written, 77 user xattrs unsupported here, else a failure. */
static int forge_mark(const char *name, const char *rec, uid_t uid, gid_t gid)
{
    pid_t pid = fork();

    if (pid == 0) {
        char path[300];
        become(uid, gid);
        shm_path(name, path, sizeof path);
        int fd = open(path, O_RDWR);
        if (fd < 0)
            _exit(91);
        if (fsetxattr(fd, "user.pshm", rec, strlen(rec), 0) != 0)
            _exit(errno == EOPNOTSUPP ? 77 : 92);
        _exit(0);
    }
    return th_wait(pid, 10000);
}

/* A record pshm would write itself, for a process that is long dead. */
#define DEAD_AUTO "pshm1 auto 2147483646 1"
#define DEAD_OWNED "pshm1 owned 2147483646 1"

static size_t gc_removed(const char *pattern)
{
    size_t n = 0;
    (void)pshm_block_gc(pattern, 0, NULL, NULL, &n);
    return n;
}

TEST(forged_lifetime_mark_on_a_block_others_may_write_removes_nothing)
{
    uid_t uid;
    gid_t gid;
    char path[300];
    const char *recs[] = {DEAD_AUTO, DEAD_OWNED};

    other_user(&uid, &gid);
    for (int i = 0; i < 2; i++) {
        const char *name = th_name(i ? "forged_owned" : "forged_auto");
        pshm_block *b = NULL;
        pshm_block_info info;
        int removed = -1;

        CHECK_OK(pshm_block_create(name, 4096, NULL, &b)); /* root's, PERSIST */
        shm_path(name, path, sizeof path);
        CHECK_EQ(chmod(path, 0666), 0); /* others may write it, not remove it */
        CHECK_OK(pshm_block_close(b));
        int r = forge_mark(name, recs[i], uid, gid);
        if (r == 77) {
            pshm_unlink(name);
            th_skip("user xattrs on /dev/shm are not supported here: no mark to forge");
        }
        CHECK_EQ(r, 0);
        /* The owner's calls see a PERSIST block and never remove it. */
        pshm_block_info_init(&info);
        CHECK_OK(pshm_block_stat(name, &info));
        CHECK_EQ(info.lifetime, PSHM_PERSIST);
        CHECK_EQ(info.marked, 0);
        CHECK_OK(pshm_block_open(name, NULL, &b));
        CHECK_OK(pshm_block_close(b));
        CHECK(th_exists(name));
        CHECK_OK(pshm_block_collect(name, &removed));
        CHECK_EQ(removed, 0);
        CHECK_EQ(gc_removed(name), 0);
        CHECK(th_exists(name));
        CHECK_OK(pshm_unlink(name));
    }
}

TEST(auto_block_writable_by_others_keeps_its_lifetime)
{
    uid_t uid;
    gid_t gid;
    const char *name = th_name("shared_auto");
    pshm_block_options o;
    pshm_block_info info;
    pshm_block *b = NULL, *a = NULL;

    other_user(&uid, &gid);
    pshm_block_options_init(&o);
    o.lifetime = PSHM_AUTO;
    o.mode = 0666;
    mode_t old = umask(0);
    int r = pshm_block_create(name, 4096, &o, &b);
    umask(old);
    if (r == -PSHM_ENOMARK)
        th_skip("lifetimes cannot be recorded here");
    CHECK_OK(r);
    pshm_block_info_init(&info);
    CHECK_OK(pshm_block_fstat(b, &info));
    CHECK_EQ(info.mode, 01666); /* the owner's sticky bit vouches for the mark */
    CHECK_EQ(info.lifetime, PSHM_AUTO);
    /* An attacher is a holder: the creator's close leaves the block. */
    CHECK_OK(pshm_block_open(name, NULL, &a));
    CHECK_EQ(pshm_block_lifetime(a), PSHM_AUTO);
    CHECK_OK(pshm_block_close(b));
    CHECK(th_exists(name));
    /* The other user may rewrite the mark (it can write the block), but the
     * block stays AUTO, held, and its owner's. */
    CHECK_EQ(forge_mark(name, DEAD_AUTO, uid, gid), 0);
    CHECK_EQ(gc_removed(name), 0);
    CHECK(th_exists(name));
    CHECK_OK(pshm_block_close(a)); /* the last holder */
    CHECK(!th_exists(name));
}

TEST(forged_mark_on_a_private_block_is_refused_by_the_kernel)
{
    uid_t uid;
    gid_t gid;
    const char *name = th_name("private");
    pshm_block *b = NULL;

    other_user(&uid, &gid);
    CHECK_OK(pshm_block_create(name, 4096, NULL, &b)); /* 0600 */
    CHECK_EQ(forge_mark(name, DEAD_AUTO, uid, gid), 91);
    CHECK_OK(pshm_block_close(b));
    int removed = -1;
    CHECK_OK(pshm_block_collect(name, &removed));
    CHECK_EQ(removed, 0);
    CHECK_OK(pshm_unlink(name));
}

/* ------------------------------------------------ a peer shrinks a block */

#include "fault.h"

enum kind { K_LIST, K_ARRAY, K_QUEUE, K_NKINDS };
static const char *const kind_tag[] = {"list", "array", "queue"};
static const char *const open_point[] = {"list.open.mapped", "array.open.mapped",
                                         "queue.open.mapped"};

/* Make an object of kind k named name; returns its size. The handle is
 * closed again (the queue's creator keeps its participant slot until then). */
static size_t make_object(enum kind k, const char *name)
{
    size_t size = 0;

    switch (k) {
    case K_LIST: {
        pshm_value v[64];
        pshm_list *l = NULL;
        for (int i = 0; i < 64; i++)
            v[i] = i % 2 ? pshm_value_int(i) : pshm_value_str("a string of some length", 23);
        CHECK_OK(pshm_list_create(name, v, 64, NULL, &l));
        size = pshm_block_size(pshm_list_block(l));
        CHECK_OK(pshm_list_close(l));
        break;
    }
    case K_ARRAY: {
        int64_t shape[2] = {64, 128};
        pshm_array *a = NULL;
        CHECK_OK(pshm_array_create(name, "<f8", 2, shape, 0, NULL, &a));
        size = pshm_block_size(pshm_array_block(a));
        CHECK_OK(pshm_array_close(a));
        break;
    }
    case K_QUEUE: {
        pshm_queue_options o;
        pshm_queue *q = NULL;
        pshm_queue_options_init(&o);
        o.queue_mode = PSHM_QUEUE_MPMC;
        o.ring_bytes = 64 * 1024;
        o.max_msg = 256;
        CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q));
        CHECK_OK(pshm_queue_send(q, "hello", 5));
        size = pshm_block_size(pshm_queue_block(q));
        CHECK_OK(pshm_queue_close(q));
        break;
    }
    default:
        break;
    }
    return size;
}

/* Open name as kind k: 0 or the code (the handle closed again). */
static int open_object(enum kind k, const char *name)
{
    int r = -EINVAL;

    switch (k) {
    case K_LIST: {
        pshm_list *l = NULL;
        r = pshm_list_open(name, NULL, &l);
        pshm_list_close(l);
        break;
    }
    case K_ARRAY: {
        pshm_array *a = NULL;
        r = pshm_array_open(name, NULL, &a);
        pshm_array_close(a);
        break;
    }
    case K_QUEUE: {
        pshm_queue_options o;
        pshm_queue *q = NULL;
        pshm_queue_options_init(&o);
        o.open_timeout_ms = 200;
        r = pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &q);
        pshm_queue_close(q);
        break;
    }
    default:
        break;
    }
    return r;
}

/* Wait for pid to stop (WUNTRACED) or end; 1 stopped, 0 ended, -1 late. */
static int await_stop(pid_t pid, int *st, int ms)
{
    for (int i = 0; i < ms; i++) {
        pid_t r = waitpid(pid, st, WUNTRACED | WNOHANG);
        if (r == pid)
            return WIFSTOPPED(*st) ? 1 : 0;
        th_sleep_ms(1);
    }
    return -1;
}

TEST(open_of_a_block_a_peer_shrank_after_it_was_mapped_is_an_error_not_sigbus)
{
    if (!pshm__fault_enabled())
        th_skip("the library has no fault points");
    for (int k = 0; k < K_NKINDS; k++) {
        const char *name = th_name(kind_tag[k]);
        size_t full = make_object(k, name);
        size_t to[] = {0, 100, 4096, full / 2, full - 1};

        for (size_t t = 0; t < sizeof to / sizeof *to; t++) {
            char path[300];
            int *res = th_shared(sizeof *res);
            int st;

            shm_path(name, path, sizeof path);
            CHECK_EQ(truncate(path, (off_t)full), 0);
            /* The opener stops with the block mapped at its full size,
             * before reading anything of the object; the block shrinks. */
            pid_t pid = fork();
            if (pid == 0) {
                pshm__fault_arm_stop(open_point[k], 0);
                *res = open_object(k, name);
                _exit(0);
            }
            CHECK_EQ(await_stop(pid, &st, 10000), 1);
            CHECK_EQ(truncate(path, (off_t)to[t]), 0);
            CHECK_EQ(kill(pid, SIGCONT), 0);
            int code = th_wait(pid, 10000);
            if (code != 0)
                th_fail(__FILE__, __LINE__, "%s open, shrunk from %zu to %zu bytes: exit %d "
                        "(128 + %d is SIGBUS)", kind_tag[k], full, to[t], code, SIGBUS);
            if (*res == 0)
                th_fail(__FILE__, __LINE__, "%s open, shrunk from %zu to %zu bytes: succeeded",
                        kind_tag[k], full, to[t]);
        }
        CHECK_OK(pshm_unlink(name));
    }
}

TEST(block_read_copies_out_of_a_shrunk_block_without_faulting)
{
    const char *name = th_name("read");
    pshm_block *b = NULL;
    unsigned char buf[3 * 4096];
    size_t got = 99;
    char path[300];

    CHECK_OK(pshm_block_create(name, sizeof buf, NULL, &b));
    memset(pshm_block_data(b), 0xab, sizeof buf);
    CHECK_OK(pshm_block_read(b, 0, buf, sizeof buf, &got));
    CHECK_EQ(got, sizeof buf);
    CHECK_EQ(buf[sizeof buf - 1], 0xab);
    shm_path(name, path, sizeof path);
    CHECK_EQ(truncate(path, 5000), 0); /* a peer shrinks it: the mapping's last page faults now */
    memset(buf, 0, sizeof buf);
    CHECK_OK(pshm_block_read(b, 4096, buf, 8192, &got));
    CHECK_EQ(got, 5000 - 4096);
    CHECK_EQ(buf[0], 0xab);
    CHECK_OK(pshm_block_read(b, 8192, buf, 100, &got));
    CHECK_EQ(got, 0);
    CHECK_OK(pshm_block_read(b, UINT64_MAX - 2, buf, 100, &got)); /* offset beyond any file */
    CHECK_EQ(got, 0);
    CHECK_ERR(pshm_block_read(NULL, 0, buf, 1, &got), -EINVAL);
    CHECK_ERR(pshm_block_read(b, 0, NULL, 1, &got), -EINVAL);
    CHECK_OK(pshm_block_read(b, 0, NULL, 0, NULL));
    pshm_block_info info;
    pshm_block_info_init(&info);
    CHECK_OK(pshm_block_fstat(b, &info));
    CHECK_EQ(info.size, 5000); /* the size now, beside pshm_block_size's mapped one */
    CHECK_EQ(pshm_block_size(b), sizeof buf);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
}

/* ------------------------------------------- corruption, word by word */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Every opener and stat function of a kind, on the object as it is now,
 * in this (child) process: what a victim does with a block a peer wrote.
 * Returns 0 if every call gave 0 or a negative code; 1 if one returned a
 * positive int (never allowed).
 */
static int victim(enum kind k, const char *name)
{
    int bad = 0;
#define RC(call)                                                                \
    do {                                                                        \
        int rc_ = (call);                                                       \
        if (rc_ > 0)                                                            \
            bad = 1;                                                            \
    } while (0)
    switch (k) { /* (pshm_block_stat reads no byte of the block: the marks' test) */
    case K_LIST: {
        pshm_list *l = NULL, *s = NULL;
        pshm_list_info li;
        char text[256];
        size_t len;
        pshm_list_info_init(&li);
        RC(pshm_list_stat(name, &li));
        RC(pshm_list_snapshot(name, &s));
        RC(pshm_list_open(name, NULL, &l));
        if (l) {
            for (int64_t i = 0; i < (int64_t)pshm_list_len(l) && i < 100; i++) {
                pshm_value v;
                RC(pshm_list_get(l, i, &v));
            }
            RC(pshm_list_format(l, text, sizeof text, &len));
        }
        pshm_list_close(l);
        pshm_list_close(s);
        break;
    }
    case K_ARRAY: {
        pshm_array *a = NULL;
        pshm_array_info ai;
        pshm_array_info_init(&ai);
        pshm_block_options bo;
        pshm_block_options_init(&bo);
        bo.open_timeout_ms = 20; /* zeros for a magic: how long to wait for a writer */
        RC(pshm_array_stat(name, &ai));
        RC(pshm_array_open(name, &bo, &a));
        if (a) {
            /* the data the handle says it has must be there */
            volatile unsigned char *d = pshm_array_data(a);
            size_t nb = pshm_block_size(pshm_array_block(a)) - pshm_array_data_offset(a);
            if (nb)
                (void)d[nb - 1];
        }
        pshm_array_close(a);
        break;
    }
    case K_QUEUE: {
        pshm_queue_options o;
        pshm_queue *c = NULL, *p = NULL;
        pshm_queue_info qi;
        pshm_queue_participant parts[8];
        char buf[512];
        size_t n;
        pshm_queue_info_init(&qi);
        RC(pshm_queue_stat(name, &qi));
        RC(pshm_queue_participants(name, parts, 8, &n));
        pshm_queue_options_init(&o);
        o.open_timeout_ms = 20;
        o.recover_ms = 10;
        RC(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
        if (c) {
            const void *m;
            RC(pshm_queue_tryrecv(c, buf, sizeof buf, &n));
            if (pshm_queue_trypeek(c, &m, &n) == 0) {
                /* every byte of what a peek hands out must be in the block */
                volatile unsigned sum = 0;
                for (size_t i = 0; i < n; i++)
                    sum += ((const unsigned char *)m)[i];
                RC(pshm_queue_release(c));
            }
            RC(pshm_queue_fstat(c, &qi));
        }
        RC(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
        if (p) {
            void *w;
            RC(pshm_queue_trysend(p, "attack", 6));
            if (pshm_queue_tryreserve(p, 8, &w) == 0)
                RC(pshm_queue_commit(p, 8));
        }
        pshm_queue_close(c);
        pshm_queue_close(p);
        break;
    }
    default:
        break;
    }
#undef RC
    return bad;
}

/* Wait for pid up to ms; its exit code, 128 + signal, or -1 (then killed). */
static __attribute__((unused)) int wait_deadline(pid_t pid, int ms)
{
    int st;

    for (int i = 0; i < ms; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (i < 20)
            usleep(100); /* most attempts end at once */
        else
            th_sleep_ms(1);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* The block image: written back before each attempt. */
typedef struct image {
    char path[300];
    unsigned char *bytes;
    size_t size;
} image;

static void image_take(image *im, const char *name)
{
    struct stat st;

    shm_path(name, im->path, sizeof im->path);
    CHECK_EQ(stat(im->path, &st), 0);
    im->size = (size_t)st.st_size;
    im->bytes = malloc(im->size);
    CHECK(im->bytes != NULL);
    int fd = open(im->path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pread(fd, im->bytes, im->size, 0), (ssize_t)im->size);
    close(fd);
}

/* Where a run of attempts is: shared with the child that makes them. */
typedef struct progress {
    uint64_t done;   /* attempts finished */
    size_t off[4];   /* the one under way */
    uint32_t val[4];
    int n;
} progress;

/* In the child: write the image back with pr's words replaced, then be
 * the victim. Returns 0, or 1 if a call returned a positive int. */
static int attempt_here(enum kind k, const char *name, const image *im, const progress *pr)
{
    int fd = open(im->path, O_RDWR);

    if (fd < 0 || ftruncate(fd, (off_t)im->size) != 0 ||
        pwrite(fd, im->bytes, im->size, 0) != (ssize_t)im->size)
        _exit(4);
    for (int i = 0; i < pr->n; i++)
        if (pwrite(fd, &pr->val[i], 4, (off_t)pr->off[i]) != 4)
            _exit(4);
    close(fd);
    return victim(k, name);
}

/* The attempts of a run: next(i, pr, ud) fills attempt i (0 if none left). */
typedef int (*next_fn)(uint64_t i, progress *pr, void *ud);

/*
 * Make every attempt of a run in one child (a fork per attempt costs more
 * than the attempts), which ends each attempt with its handles closed. The
 * child must get through all of them: a signal, a positive return or an
 * attempt still running after 5 s fails the test, naming the attempt.
 */
static void run_attempts(enum kind k, const char *name, const image *im, next_fn next, void *ud)
{
    progress *pr = th_shared(sizeof *pr);
    uint64_t seen = 0;
    long long since = now_ms();
    int st, code = -1;

    memset(pr, 0, sizeof *pr);
    pid_t pid = fork();
    if (pid == 0) {
        for (uint64_t i = 0; next(i, pr, ud); i++) {
            if (attempt_here(k, name, im, pr))
                _exit(3);
            __atomic_store_n(&pr->done, i + 1, __ATOMIC_RELEASE);
        }
        _exit(0);
    }
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        uint64_t d = __atomic_load_n(&pr->done, __ATOMIC_ACQUIRE);
        if (d != seen) {
            seen = d;
            since = now_ms();
        } else if (now_ms() - since > 5000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        th_sleep_ms(2);
    }
    if (code != 0)
        th_fail(__FILE__, __LINE__, "%s, attempt %llu: word at %zu = 0x%08x%s: %s %d",
                kind_tag[k], (unsigned long long)pr->done, pr->off[0], pr->val[0],
                pr->n > 1 ? " (and others)" : "",
                code < 0 ? "still running after 5 s" : code == 3 ? "positive return" : "exit",
                code);
}

/* How many bytes of each kind's block are header (what a peer attacks):
 * all of a list (tables and data) and of a small queue (header, participant
 * table and the ring's cells), the .npy header of an array. */
static size_t header_bytes(enum kind k, const image *im)
{
    switch (k) {
    case K_LIST: return im->size;
    case K_ARRAY: return 128 < im->size ? 128 : im->size;
    case K_QUEUE: return im->size; /* small: header, participants and ring */
    default: return 0;
    }
}

static size_t make_small(enum kind k, const char *name)
{
    if (k != K_QUEUE)
        return make_object(k, name);
    pshm_queue_options o;
    pshm_queue *q = NULL;
    pshm_queue_options_init(&o);
    o.queue_mode = PSHM_QUEUE_MPMC;
    o.ring_bytes = 1024;
    o.max_msg = 64;
    o.max_participants = 4;
    o.keep_open = 1;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q));
    CHECK_OK(pshm_queue_send(q, "hello", 5));
    CHECK_OK(pshm_queue_send(q, "world", 5)); /* one for recv, one for peek */
    size_t size = pshm_block_size(pshm_queue_block(q));
    CHECK_OK(pshm_queue_close(q));
    return size;
}

typedef struct sys_run {
    const image *im;
    size_t hb;
    uint32_t vals[8];
} sys_run;

/* Attempt i: word i / 8 of the header set to value i % 8 (the word's own
 * value is replaced by 0xa5a5a5a5 so that every attempt changes a byte). */
static int sys_next(uint64_t i, progress *pr, void *ud)
{
    sys_run *s = ud;
    size_t off = (size_t)(i / 8) * 4;
    uint32_t old;

    if (off + 4 > s->hb)
        return 0;
    memcpy(&old, s->im->bytes + off, 4);
    pr->n = 1;
    pr->off[0] = off;
    pr->val[0] = s->vals[i % 8] == old ? 0xa5a5a5a5u : s->vals[i % 8];
    return 1;
}

TEST_TIMEOUT(every_header_word_set_to_hostile_values_gives_a_code_never_a_crash, 120)
{
    for (int k = 0; k < K_NKINDS; k++) {
        const char *name = th_name(kind_tag[k]);
        image im;
        long long t0 = now_ms();

        make_small(k, name);
        image_take(&im, name);
        sys_run s = {&im, header_bytes(k, &im),
                     {0, 1, ~0u, 0x80000000u, 0x7fffffffu, (uint32_t)im.size,
                      (uint32_t)im.size + 1, (uint32_t)im.size - 1}};
        run_attempts(k, name, &im, sys_next, &s);
        printf("    %s: %zu header bytes, %zu corruptions, %lld ms\n", kind_tag[k], s.hb,
               s.hb / 4 * 8, now_ms() - t0);
        free(im.bytes);
        CHECK_OK(pshm_unlink(name));
    }
}

typedef struct rnd_run {
    const image *im;
    size_t hb;
    uint64_t rounds;
} rnd_run;

/* Attempt i: 1 to 4 words, each random, one bit flipped, nudged, or a
 * size-ish number (th_rnd: the child's stream, from PSHM_SEED). */
static int rnd_next(uint64_t i, progress *pr, void *ud)
{
    rnd_run *s = ud;

    if (i >= s->rounds)
        return 0;
    pr->n = 1 + (int)(th_rnd() % 4);
    for (int j = 0; j < pr->n; j++) {
        uint32_t old;
        pr->off[j] = (th_rnd() % (s->hb / 4)) * 4;
        memcpy(&old, s->im->bytes + pr->off[j], 4);
        switch (th_rnd() % 4) {
        case 0: pr->val[j] = th_rnd(); break;
        case 1: pr->val[j] = old ^ (1u << (th_rnd() % 32)); break;
        case 2: pr->val[j] = old + (th_rnd() % 17) - 8; break;
        default: pr->val[j] = (uint32_t)(th_rnd() % (s->im->size * 2 + 1)); break;
        }
    }
    return 1;
}

TEST_TIMEOUT(random_corruption_of_headers_gives_a_code_never_a_crash, 120)
{
    th_rnd_seed("attack");
    for (int k = 0; k < K_NKINDS; k++) {
        const char *name = th_name(kind_tag[k]);
        image im;

        make_small(k, name);
        image_take(&im, name);
        rnd_run s = {&im, header_bytes(k, &im), 1000 * (uint64_t)th_soak()};
        run_attempts(k, name, &im, rnd_next, &s);
        free(im.bytes);
        CHECK_OK(pshm_unlink(name));
    }
}
