/* SPDX-License-Identifier: MIT */
/*
 * test_inspect.c - the by-name stat functions read other people's objects:
 * they agree with what opening would say, never wait on a peer, never die
 * of a peer that shrinks the object, and never change a lifetime.
 */
#include "harness.h"
#include "list_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The hold byte of src/os/linux.c: whoever holds it exclusively is removing
 * the block, and pshm_block_open waits for that. */
#define HOLD_OFFSET ((off_t)0x7fffffff00000000LL)

static int shm_fd(const char *name, int flags)
{
    char path[512];

    snprintf(path, sizeof path, "/dev/shm/%s", name);
    return open(path, flags | O_CLOEXEC);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pshm_list *mk_list(const char *name, const pshm_block_options *o)
{
    pshm_value v[] = {pshm_value_int(1), pshm_value_float(2.5), pshm_value_str("hi", 2),
                      pshm_value_bytes("ab", 2), pshm_value_none(), pshm_value_bool(1)};
    pshm_list *l = NULL;

    CHECK_OK(pshm_list_create(name, v, 6, o, &l));
    return l;
}

/* ------------------------------------------------------------- lists */

TEST(list_stat_and_snapshot_agree_with_open)
{
    const char *name = th_name("lst");
    pshm_list *l = mk_list(name, NULL), *s = NULL;
    pshm_list_info in;
    pshm_value v;
    char f[64];
    size_t n;

    pshm_list_info_init(&in);
    CHECK_OK(pshm_list_stat(name, &in));
    CHECK_EQ(in.len, 6);
    CHECK_EQ(in.size, 166); /* CPython's bytes for this list */
    CHECK_EQ(in.size, pshm_block_size(pshm_list_block(l)));
    CHECK_OK(pshm_list_snapshot(name, &s));
    CHECK_EQ(pshm_list_len(s), 6);
    CHECK(pshm_list_block(s) == NULL);
    CHECK_OK(pshm_list_get(s, 2, &v));
    CHECK_EQ(v.type, PSHM_STR);
    CHECK(v.s.len == 2 && memcmp(v.s.ptr, "hi", 2) == 0);
    CHECK_OK(pshm_list_format(s, f, sizeof f, &n));
    CHECK_STR(f, "qd8s8sxxxxxx?xxxxxxxx?");
    CHECK_ERR(pshm_list_set(s, 0, &v), -PSHM_ELIST_READONLY);
    /* a copy: later sets through the block are not seen */
    v = pshm_value_int(42);
    CHECK_OK(pshm_list_set(l, 0, &v));
    CHECK_OK(pshm_list_get(s, 0, &v));
    CHECK_EQ(v.i, 1);
    CHECK_OK(pshm_list_close(s));
    CHECK_ERR(pshm_list_stat(name, NULL), -EINVAL);
    in.struct_size = 0;
    CHECK_ERR(pshm_list_stat(name, &in), -EINVAL);
    CHECK_ERR(pshm_list_snapshot(name, NULL), -EINVAL);
    CHECK_OK(pshm_block_unlink(pshm_list_block(l)));
    CHECK_OK(pshm_list_close(l));
    pshm_list_info_init(&in);
    CHECK_ERR(pshm_list_stat(name, &in), -ENOENT);
    CHECK_ERR(pshm_list_stat("a/b", &in), -PSHM_ENAME_SLASH);
}

TEST(list_stat_refuses_what_open_refuses)
{
    const char *name = th_name("lbad");
    pshm_block *b = NULL;
    pshm_list *s = (pshm_list *)1;
    pshm_list_info in;

    pshm_list_info_init(&in);
    CHECK_OK(pshm_block_create(name, 4096, NULL, &b));
    CHECK_ERR(pshm_list_stat(name, &in), -PSHM_ELIST_SIZE); /* zeroed is not [] */
    CHECK_ERR(pshm_list_snapshot(name, &s), -PSHM_ELIST_SIZE);
    CHECK(s == NULL);
    memset(pshm_block_data(b), 0xa5, 4096);
    CHECK_ERR(pshm_list_stat(name, &in), -PSHM_ELIST_COUNT);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
    CHECK_OK(pshm_block_create(name, 8, NULL, &b));
    CHECK_ERR(pshm_list_stat(name, &in), -PSHM_ELIST_SIZE);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
}

/*
 * Every single-byte corruption of a list: stat accepts exactly what the
 * parser accepts (so what open accepts), and then reports its length.
 */
TEST(list_stat_accepts_exactly_what_the_parser_accepts)
{
    const char *name = th_name("lcor");
    pshm_list *l = mk_list(name, NULL);
    unsigned char *p = pshm_block_data(pshm_list_block(l));
    size_t size = pshm_block_size(pshm_list_block(l));
    uint64_t *copy = malloc(size + 8);
    static const unsigned char vals[] = {0x00, 0x01, 0x07, 0x08, 0x30, 0x73, 0x80, 0xff};
    int accepted = 0, refused = 0;

    CHECK(copy != NULL);
    for (size_t i = 0; i < size; i++) {
        unsigned char keep = p[i];
        for (size_t k = 0; k < sizeof vals; k++) {
            pshm__list_layout lay;
            pshm_list_info in;
            p[i] = vals[k];
            memcpy(copy, p, size);
            int want = pshm__list_parse(copy, size, &lay);
            pshm_list_info_init(&in);
            int got = pshm_list_stat(name, &in);
            if ((want == 0) != (got == 0))
                th_fail(__FILE__, __LINE__, "byte %zu = 0x%02x: parse %s, stat %s", i, vals[k],
                        pshm_errname(want), pshm_errname(got));
            if (got == 0) {
                CHECK_EQ(in.len, lay.n);
                accepted++;
            } else {
                CHECK(got <= -PSHM_ELIST_SIZE && got >= -PSHM_ELIST_MISMATCH);
                refused++;
            }
        }
        p[i] = keep;
    }
    CHECK(accepted > 0 && refused > 0);
    free(copy);
    CHECK_OK(pshm_block_unlink(pshm_list_block(l)));
    CHECK_OK(pshm_list_close(l));
}

/* ------------------------------------------------------------- arrays */

TEST(array_stat_agrees_with_open)
{
    const char *name = th_name("arr");
    int64_t shape[3] = {4, 5, 6};
    pshm_array *a = NULL;
    pshm_array_info in;

    CHECK_OK(pshm_array_create(name, "<i4", 3, shape, 1, NULL, &a));
    pshm_array_info_init(&in);
    CHECK_OK(pshm_array_stat(name, &in));
    CHECK_STR(in.dtype.descr, pshm_array_descr(a));
    CHECK_EQ(in.ndim, 3);
    CHECK_EQ(in.fortran_order, 1);
    CHECK_EQ(in.version, pshm_array_version(a));
    CHECK_EQ(in.data_offset, pshm_array_data_offset(a));
    CHECK_EQ(in.nbytes, 4 * 5 * 6 * 4);
    CHECK_EQ(in.nitems, 120);
    CHECK_EQ(in.size, pshm_block_size(pshm_array_block(a)));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(in.shape[i], shape[i]);
        CHECK_EQ(in.strides[i], pshm_array_strides(a)[i]);
    }
    /* a list is not an array */
    pshm_list *l = mk_list(th_name("arrl"), NULL);
    CHECK_ERR(pshm_array_stat(pshm_block_name(pshm_list_block(l)), &in), -PSHM_EARRAY_MAGIC);
    CHECK_OK(pshm_block_unlink(pshm_list_block(l)));
    CHECK_OK(pshm_list_close(l));
    /* a header that promises more data than the block has */
    unsigned char *p = pshm_block_data(pshm_array_block(a));
    char *dict = memchr(p, '(', 128);
    CHECK(dict != NULL);
    dict[1] = '9'; /* (4, 5, 6) -> (9, 5, 6) */
    CHECK_ERR(pshm_array_stat(name, &in), -PSHM_EARRAY_TRUNCATED);
    /* a zeroed block is refused at once, not waited for as open waits */
    memset(p, 0, 16);
    long long t0 = now_ms();
    CHECK_ERR(pshm_array_stat(name, &in), -PSHM_EARRAY_MAGIC);
    CHECK(now_ms() - t0 < 1500); /* open would wait open_timeout_ms = 2000 */
    in.struct_size = 0;
    CHECK_ERR(pshm_array_stat(name, &in), -EINVAL);
    CHECK_OK(pshm_block_unlink(pshm_array_block(a)));
    CHECK_OK(pshm_array_close(a));
}

/* ------------------------------------------------------------- queues */

static pshm_queue *mk_queue(const char *name, pshm_queue_mode mode, pshm_queue **cons)
{
    pshm_queue_options o;
    pshm_queue *p = NULL;

    pshm_queue_options_init(&o);
    o.queue_mode = mode;
    o.ring_bytes = 4096;
    o.messages = 8;
    o.max_msg = 200;
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, cons));
    return p;
}

static void same_stats(const char *name, pshm_queue *q)
{
    pshm_queue_info a, b;

    pshm_queue_info_init(&a);
    pshm_queue_info_init(&b);
    CHECK_OK(pshm_queue_stat(name, &a));
    CHECK_OK(pshm_queue_fstat(q, &b));
    CHECK_EQ(a.queue_mode, b.queue_mode);
    CHECK_EQ(a.depth, b.depth);
    CHECK_EQ(a.depth_bytes, b.depth_bytes);
    CHECK_EQ(a.messages, b.messages);
    CHECK_EQ(a.received, b.received);
    CHECK_EQ(a.producers, b.producers);
    CHECK_EQ(a.consumers, b.consumers);
    CHECK_EQ(a.ring_bytes, b.ring_bytes);
    CHECK_EQ(a.slots, b.slots);
}

TEST(queue_stat_agrees_with_fstat_across_laps)
{
    static const pshm_queue_mode modes[] = {PSHM_QUEUE_SPSC, PSHM_QUEUE_MPMC};

    for (size_t m = 0; m < 2; m++) {
        const char *name = th_name(m ? "qm" : "qs");
        pshm_queue *c = NULL, *p = mk_queue(name, modes[m], &c);
        char msg[200];
        memset(msg, 'x', sizeof msg);
        /* Fill and drain in steps of different sizes, so the SPSC ring wraps
         * (PAD records) at different places; compare at each step. */
        for (int round = 0; round < 60; round++) {
            size_t len = (size_t)(round * 37 % 190) + 1;
            while (pshm_queue_trysend(p, msg, len) == 0)
                same_stats(name, p);
            for (int k = 0; k < round % 5 + 1; k++) {
                size_t got;
                if (pshm_queue_tryrecv(c, msg, sizeof msg, &got) != 0)
                    break;
            }
            same_stats(name, p);
        }
        pshm_queue_participant parts[4];
        size_t n = 0;
        pshm_queue_participant_init(&parts[0]);
        CHECK_OK(pshm_queue_participants(name, parts, 4, &n));
        CHECK_EQ(n, 2);
        CHECK_EQ(parts[0].alive, 1);
        CHECK_EQ(parts[1].alive, 1);
        CHECK_EQ(parts[0].pid, getpid());
        CHECK_OK(pshm_unlink(name));
        CHECK_OK(pshm_queue_close(c));
        CHECK_OK(pshm_queue_close(p));
    }
}

/* ----------------------------------------------------- hostile peers */

/* Hold the hold byte of `name` exclusively (what a closing last holder
 * does, and what a hostile user can do for ever), then wait to be killed. */
HELPER(hog_hold_byte)
{
    int fd = shm_fd(argv[0], O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = HOLD_OFFSET, .l_len = 1};

    if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) != 0)
        return 1;
    write(1, "x", 1);
    for (;;)
        pause();
}

/* Every stat function on `name`; which ones must succeed is the caller's.
 * rb == &stat_all_no_block: not pshm_block_stat (slow: it reads /proc). */
static int stat_all_no_block;
static void stat_all(const char *name, int *rl, int *ra, int *rq, int *rs, int *rb)
{
    pshm_list_info li;
    pshm_array_info ai;
    pshm_queue_info qi;
    pshm_sync_info si;
    pshm_block_info bi;

    pshm_list_info_init(&li);
    pshm_array_info_init(&ai);
    pshm_queue_info_init(&qi);
    pshm_sync_info_init(&si);
    pshm_block_info_init(&bi);
    *rl = pshm_list_stat(name, &li);
    *ra = pshm_array_stat(name, &ai);
    *rq = pshm_queue_stat(name, &qi);
    *rs = pshm_sync_stat(name, &si);
    *rb = rb == &stat_all_no_block ? 0 : pshm_block_stat(name, &bi);
}

static pid_t spawn_and_wait_ready(const char *helper, const char *name)
{
    int pfd[2];
    char c;
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        execl(th_self(), th_self(), "--helper", helper, name, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    CHECK(read(pfd[0], &c, 1) == 1);
    close(pfd[0]);
    return pid;
}

/* Make a list, an array, a queue and a mutex named <base>l/a/q/s with the
 * given lifetime, in a child that then dies by SIGKILL: AUTO objects are
 * left stale, with no holder. */
typedef struct made {
    char names[4][128];
    pshm_lifetime lt;
} made;

static int make_objects(void *arg)
{
    made *m = arg;
    pshm_block_options o;
    pshm_queue_options qo;
    pshm_sync_options so;
    int64_t shape[2] = {10, 3};
    pshm_array *a;
    pshm_queue *q;
    pshm_sync *s;

    pshm_block_options_init(&o);
    o.lifetime = m->lt;
    pshm_queue_options_init(&qo);
    qo.lifetime = m->lt;
    qo.keep_open = 1;
    qo.queue_mode = PSHM_QUEUE_SPSC;
    qo.ring_bytes = 4096;
    pshm_sync_options_init(&so);
    so.lifetime = m->lt;
    pshm_value v[] = {pshm_value_int(7), pshm_value_str("seven", 5)};
    pshm_list *l;
    int r = pshm_list_create(m->names[0], v, 2, &o, &l);
    if (r == -PSHM_ENOMARK)
        return 10;
    if (r != 0)
        return 2;
    if (pshm_array_create(m->names[1], "<f8", 2, shape, 0, &o, &a) != 0)
        return 3;
    if (pshm_queue_create(m->names[2], PSHM_QUEUE_PRODUCER, &qo, &q) != 0 ||
        pshm_queue_send(q, "one", 3) != 0 || pshm_queue_send(q, "two", 3) != 0)
        return 4;
    if (pshm_sync_create(m->names[3], PSHM_SYNC_MUTEX, &so, &s) != 0)
        return 5;
    if (m->lt == PSHM_PERSIST)
        return 0;
    kill(getpid(), SIGKILL); /* stale: nobody closes anything */
    return 6;
}

static made *make_all(const char *tag, pshm_lifetime lt)
{
    made *m = th_shared(sizeof *m);
    static const char kinds[] = "laqs";

    for (int i = 0; i < 4; i++)
        snprintf(m->names[i], sizeof m->names[i], "%s%c", th_name(tag), kinds[i]);
    m->lt = lt;
    int r = th_wait(th_fork(make_objects, m), 20000);
    if (r == 10)
        th_skip("AUTO lifetimes cannot be recorded here (no tmpfs xattrs)");
    CHECK_EQ(r, lt == PSHM_PERSIST ? 0 : 128 + SIGKILL);
    return m;
}

static void check_stats(const made *m)
{
    int r[5];

    for (int i = 0; i < 4; i++) {
        stat_all(m->names[i], &r[0], &r[1], &r[2], &r[3], &r[4]);
        CHECK_OK(r[i]); /* each is found as its own kind */
        CHECK_OK(r[4]);
        for (int k = 0; k < 4; k++)
            if (k != i)
                CHECK(r[k] != 0);
    }
}

static void remove_all(const made *m)
{
    for (int i = 0; i < 4; i++)
        CHECK_OK(pshm_unlink(m->names[i]));
}

TEST(stat_never_waits_for_a_peer_holding_the_hold_byte)
{
    made *m = make_all("hog", PSHM_AUTO);
    pid_t hogs[4];

    for (int i = 0; i < 4; i++)
        hogs[i] = spawn_and_wait_ready("hog_hold_byte", m->names[i]);
    long long t0 = now_ms();
    check_stats(m);
    /* generous: a wait would last for ever; a slow machine is not a wait */
    CHECK(now_ms() - t0 < 10000);
    for (int i = 0; i < 4; i++) {
        pshm_block_info bi;
        pshm_block_info_init(&bi);
        CHECK_OK(pshm_block_stat(m->names[i], &bi));
        CHECK(th_exists(m->names[i])); /* looking removed nothing */
        kill(hogs[i], SIGKILL);
        CHECK_EQ(th_wait(hogs[i], 10000), 128 + SIGKILL);
    }
    remove_all(m);
}

/* Shrink `name` to 0 and grow it back with its old bytes, for ever. */
HELPER(shrinker)
{
    int fd = shm_fd(argv[0], O_RDWR);
    struct stat st;

    if (fd < 0 || fstat(fd, &st) != 0)
        return 1;
    char *keep = malloc((size_t)st.st_size);
    if (!keep || pread(fd, keep, (size_t)st.st_size, 0) != st.st_size)
        return 2;
    write(1, "x", 1);
    for (;;) {
        if (ftruncate(fd, 0) != 0 || ftruncate(fd, st.st_size) != 0 ||
            pwrite(fd, keep, (size_t)st.st_size, 0) != st.st_size)
            return 3;
    }
}

static int stat_loop(void *arg)
{
    const made *m = arg;
    int r[5], ok[4] = {0, 0, 0, 0};
    long long t0 = now_ms();

    th_default_signals(); /* a SIGBUS must kill us, not a sanitizer's handler */
    for (int round = 0; round < 20 || (now_ms() - t0 < 3000 && round < 5000); round++)
        for (int i = 0; i < 4; i++) {
            stat_all(m->names[i], &r[0], &r[1], &r[2], &r[3], &stat_all_no_block);
            ok[i] += r[i] == 0;
        }
    /* every kind was still recognised now and then (the shrinker restores it) */
    for (int i = 0; i < 4; i++)
        fprintf(stderr, "    %s: recognised %d times\n", m->names[i], ok[i]);
    return 0;
}

TEST_TIMEOUT(stat_survives_a_peer_that_shrinks_the_block, 120)
{
    made *m = make_all("shr", PSHM_PERSIST);
    pid_t shrinkers[4];

    check_stats(m);
    for (int i = 0; i < 4; i++)
        shrinkers[i] = spawn_and_wait_ready("shrinker", m->names[i]);
    CHECK_EQ(th_wait(th_fork(stat_loop, m), 100000), 0); /* 128 + SIGBUS if it faulted */
    for (int i = 0; i < 4; i++) {
        kill(shrinkers[i], SIGKILL);
        th_wait(shrinkers[i], 10000);
    }
    remove_all(m);
}
