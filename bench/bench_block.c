/* SPDX-License-Identifier: MIT */
/*
 * bench_block.c - create+close+unlink and attach+close per second, side by
 * side: pshm, the raw syscalls doing the same work, Boost.Interprocess's
 * shared_memory_object (+ mapped_region) and managed_shared_memory, and
 * CPython's multiprocessing.shared_memory (when python3 is present). One
 * run, interleaved rounds, ratios.
 *
 *   build/bench/bench_block [--quick] [--json FILE] [seconds-per-cell]
 */
#include "common.h"
#include "peers.h"
#include "pshm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static double cell_seconds = 1.0;
static bench_opts O;

#define now bench_now

static void die(const char *what, int code)
{
    fprintf(stderr, "bench_block: %s: %s\n", what, pshm_strerror(code));
    exit(1);
}

typedef void (*op_fn)(const char *name, size_t size);

/* Run op repeatedly for secs (at least 3 times); ops per second. */
static double rate_for(op_fn op, const char *name, size_t size, double secs)
{
    long n = 0;
    double t0, t;
    op(name, size); /* warm up */
    t0 = now();
    do {
        op(name, size);
        n++;
        t = now();
    } while (t - t0 < secs || n < 3);
    return (double)n / (t - t0);
}

/* Several ways of doing the same thing in interleaved rounds, each its
 * median round: all see the same machine, and a burst of noise on a shared
 * machine does not decide a ratio. A NULL op is not measured (-1). */
static void rate_multi(op_fn *ops, int n, const char *name, size_t size, double *rate)
{
    double v[8][64];
    int rounds = O.rounds > 64 ? 64 : O.rounds;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++)
            v[i][r] = ops[i] ? rate_for(ops[i], name, size, cell_seconds / rounds) : -1;
    for (int i = 0; i < n; i++)
        rate[i] = bench_stat_of(v[i], rounds).med;
}

/* ------------------------------------------------------------- pshm */

/* create, then end the block: unlink+close (PERSIST) or close (AUTO: the
 * last holder unlinks) */
static void pshm_create_with(const char *name, size_t size, pshm_lifetime lt, int sparse)
{
    pshm_block_options o;
    pshm_block *b;
    pshm_block_options_init(&o);
    o.lifetime = lt;
    o.sparse = sparse;
    int r = pshm_block_create(name, size, &o, &b);
    if (r)
        die("pshm_block_create", r);
    if (lt == PSHM_PERSIST)
        pshm_block_unlink(b);
    pshm_block_close(b);
}

static void pshm_create_persist(const char *name, size_t size)
{
    pshm_create_with(name, size, PSHM_PERSIST, 0);
}

static void pshm_create_auto(const char *name, size_t size)
{
    pshm_create_with(name, size, PSHM_AUTO, 0);
}

static void pshm_create_sparse(const char *name, size_t size)
{
    pshm_create_with(name, size, PSHM_PERSIST, 1);
}

static void pshm_attach(const char *name, size_t size)
{
    pshm_block *b;
    int r = pshm_block_open(name, NULL, &b);
    (void)size;
    if (r)
        die("pshm_block_open", r);
    pshm_block_close(b);
}

/* ------------------------------------------------------------- raw */

/* What pshm's create does, in the plain syscalls (reserving like pshm unless sparse). */
static void raw_create_with(const char *name, size_t size, int reserve)
{
    char n[300];
    snprintf(n, sizeof n, "/%s", name);
    int fd = shm_open(n, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0)
        die("shm_open", -errno);
    if (ftruncate(fd, (off_t)size) != 0)
        die("ftruncate", -errno);
    if (reserve) {
        int r = posix_fallocate(fd, 0, (off_t)size);
        if (r)
            die("posix_fallocate", -r);
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap", -errno);
    munmap(p, size);
    close(fd);
    shm_unlink(n);
}

static void raw_create(const char *name, size_t size)
{
    raw_create_with(name, size, 1);
}

static void raw_create_sparse(const char *name, size_t size)
{
    raw_create_with(name, size, 0);
}

static void raw_attach(const char *name, size_t size)
{
    char n[300];
    struct stat st;
    (void)size;
    snprintf(n, sizeof n, "/%s", name);
    int fd = shm_open(n, O_RDWR, 0);
    if (fd < 0)
        die("shm_open", -errno);
    if (fstat(fd, &st) != 0)
        die("fstat", -errno);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap", -errno);
    munmap(p, (size_t)st.st_size);
    close(fd);
}

/* ------------------------------------------------- pshm's steps, timed */

/*
 * pshm's create (PERSIST, reserved) and attach, system call by system call
 * as `strace` shows them on Linux (src/os/linux.c, src/block.c), each timed
 * alone, with what it buys. A replica, not the library: it shows where the
 * microseconds of the pshm rows above go. Keep it in step with
 * `strace build/bench/bench_block` when src/block.c or src/os/ change.
 */
enum { ST_CREATE, ST_END, ST_ATTACH, ST_DETACH };
typedef struct {
    int op;
    const char *call, *buys;
} step_t;
static const step_t STEPS[] = {
    {ST_CREATE, "openat(/dev/shm, O_TMPFILE)",
     "atomic appearance: the object is built without a name, nobody sees it half made"},
    {ST_CREATE, "fallocate(size)",
     "reserved space: a full /dev/shm is -ENOSPC here, never SIGBUS at a later write"},
    {ST_CREATE, "fsetxattr(user.pshm)",
     "the lifetime record (lifetime, creator pid and start): stale blocks are recognised and "
     "collected, `pshm ls` shows who made it"},
    {ST_CREATE, "linkat(fd, name)",
     "exactly one creator wins: the name appears complete, every other gets EEXIST"},
    {ST_CREATE, "fstat(fd)",
     "the identity (device, inode) behind safe unlink and close: never remove a successor"},
    {ST_CREATE, "openat(name)",
     "the creator's descriptor and mapping show the block's name, not '#ino (deleted)', in "
     "/proc/PID/fd, maps and lsof (tests/test_block.c holds it; pshm's own counts go by inode)"},
    {ST_CREATE, "fstat(new fd)", "... and are the same inode (the name was not replaced meanwhile)"},
    {ST_CREATE, "close(unnamed fd)", "(the reopen's other half)"},
    {ST_CREATE, "mmap", "the mapping"},
    {ST_END, "lstat(name)", "safe unlink: the name still leads to our inode"},
    {ST_END, "unlink(name)", "the name goes"},
    {ST_END, "munmap", "the mapping goes"},
    {ST_END, "close", "the descriptor goes"},
    {ST_ATTACH, "openat(name)", "O_NOFOLLOW: a symlink planted under the name is refused"},
    {ST_ATTACH, "fstat(fd)",
     "the size and identity to map, and the mode bits that say whether a user.pshm record may "
     "be trusted (writable by others without the sticky bit: ignored)"},
    {ST_ATTACH, "fgetxattr(trusted.pshm)",
     "a record only root can write, preferred when there (ENODATA otherwise)"},
    {ST_ATTACH, "fgetxattr(user.pshm)",
     "the lifetime record: an AUTO block is held (one more fcntl), a stale one collected "
     "instead of handed out"},
    {ST_ATTACH, "mmap", "the mapping"},
    {ST_DETACH, "munmap", "the mapping goes"},
    {ST_DETACH, "close", "the descriptor goes"},
};
#define NSTEPS ((int)(sizeof STEPS / sizeof *STEPS))

/* what the steps share */
typedef struct {
    char path[300], rec[96], buf[128];
    struct stat st;
    int fd, nfd;
    void *p;
    size_t size;
} step_ctx;

/* step i of STEPS (their order) */
static void step_do(int i, step_ctx *c)
{
    switch (i) {
    case 0: c->fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); break;
    case 1: c->fd = posix_fallocate(c->fd, 0, (off_t)c->size) ? -1 : c->fd; break;
    case 2: c->fd = fsetxattr(c->fd, "user.pshm", c->rec, strlen(c->rec), 0) ? -1 : c->fd; break;
    case 3: c->fd = linkat(c->fd, "", AT_FDCWD, c->path, AT_EMPTY_PATH) ? -1 : c->fd; break;
    case 4: fstat(c->fd, &c->st); break;
    case 5: c->nfd = open(c->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK); break;
    case 6: fstat(c->nfd, &c->st); break;
    case 7: close(c->fd); break;
    case 8: c->p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->nfd, 0); break;
    case 9: lstat(c->path, &c->st); break;
    case 10: unlink(c->path); break;
    case 11: munmap(c->p, c->size); break;
    case 12: close(c->nfd); break;
    case 13: c->fd = open(c->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK); break;
    case 14: fstat(c->fd, &c->st); break;
    case 15: (void)fgetxattr(c->fd, "trusted.pshm", c->buf, sizeof c->buf); break;
    case 16: (void)fgetxattr(c->fd, "user.pshm", c->buf, sizeof c->buf); break;
    case 17: c->p = mmap(NULL, (size_t)c->st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0); break;
    case 18: munmap(c->p, (size_t)c->st.st_size); break;
    case 19: close(c->fd); break;
    }
}

/* one pass through every step; t[i] += the seconds step i took. The
 * attach steps open a block pshm made (its record in place). */
static void steps_once(const char *name, size_t size, double *t)
{
    step_ctx c = {.fd = -1, .nfd = -1, .size = size};
    pshm_block *keep = NULL;

    snprintf(c.path, sizeof c.path, "/dev/shm/%s", name);
    snprintf(c.rec, sizeof c.rec, "pshm1 persist %ld 1", (long)getpid());
    for (int i = 0; i < NSTEPS; i++) {
        if (STEPS[i].op == ST_ATTACH && !keep) {
            int r = pshm_block_create(name, size, NULL, &keep);
            if (r)
                die("create", r);
        }
        double t0 = now();
        step_do(i, &c);
        t[i] += now() - t0;
        if (c.fd < 0 || c.p == MAP_FAILED)
            die(STEPS[i].call, -errno);
    }
    pshm_block_unlink(keep);
    pshm_block_close(keep);
}

static const char *const op_name[] = {"create", "unlink+close", "attach", "close (attached)"};

static void steps_table(bjson *J, const char *name, size_t size, const double *rate, int n_rates)
{
    int iters = O.quick ? 300 : 3000;
    double *v = malloc(sizeof *v * (size_t)iters * NSTEPS), t[NSTEPS], med[NSTEPS];
    if (!v)
        die("steps", -ENOMEM);
    for (int k = 0; k < iters; k++) {
        memset(t, 0, sizeof t);
        steps_once(name, size, t);
        for (int i = 0; i < NSTEPS; i++)
            v[(size_t)i * (size_t)iters + (size_t)k] = t[i] * 1e6;
    }
    for (int i = 0; i < NSTEPS; i++)
        med[i] = bench_stat_of(v + (size_t)i * (size_t)iters, iters).med;
    free(v);
    btable *tb = bt_new("what pshm's create and attach do, system call by system call (4 KiB, "
                        "median us of each step)",
                        4, BT_COLS("operation", "system call", "us", "what it buys"));
    double sum[4] = {0, 0, 0, 0};
    char us[32];
    for (int i = 0; i < NSTEPS; i++) {
        snprintf(us, sizeof us, "%.2f", med[i]);
        sum[STEPS[i].op] += med[i];
        bt_row(tb, BT_COLS(i && STEPS[i - 1].op == STEPS[i].op ? "" : op_name[STEPS[i].op],
                           STEPS[i].call, us, STEPS[i].buys));
    }
    char tot[160];
    for (int o = 0; o < 4; o += 2) {
        double op_us = n_rates > o / 2 && rate[o / 2] > 0 ? 1e6 / rate[o / 2] : -1;
        snprintf(us, sizeof us, "%.2f", sum[o] + sum[o + 1]);
        snprintf(tot, sizeof tot, "the steps' sum; Boost shared_memory_object: %.2f us a %s in "
                                  "the table above",
                 op_us, o ? "attach+close" : "create+close+unlink (sparse: it reserves nothing)");
        bt_row(tb, BT_COLS(o ? "attach+close" : "create+close+unlink", "all of the above", us,
                           op_us > 0 ? tot : "the steps' sum"));
    }
    bt_note(tb, "%d passes through a replica of pshm's system calls (strace of pshm_block_create "
                "with the default PERSIST lifetime, pshm_block_open, pshm_block_unlink + close), "
                "each step timed alone, median per step; the library adds its checks between "
                "them. An AUTO block adds fchmod (sticky bit: the record is the owner's), one "
                "OFD lock at create and attach and one more at close",
            iters);
    bt_emit(tb, J);
}

/* ----------------------------------------------------------- CPython */

static const char *python(void)
{
    const char *p = getenv("PYTHON");
    if (p && *p)
        return p;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

static const char py_script[] =
    "import sys, time\n"
    "from multiprocessing import shared_memory\n"
    "what, name, size, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])\n"
    "def create():\n"
    "    s = shared_memory.SharedMemory(name=name, create=True, size=size)\n"
    "    s.close(); s.unlink()\n"
    "def attach():\n"
    "    s = shared_memory.SharedMemory(name=name)\n"
    "    s.close()\n"
    "op = create if what == 'create' else attach\n"
    "op(); n = 0; t0 = time.perf_counter()\n"
    "while True:\n"
    "    op(); n += 1; t = time.perf_counter()\n"
    "    if t - t0 >= secs and n >= 3: break\n"
    "print(n / (t - t0))\n";

/* ops/s for CPython's module doing the same, or -1 if python3 cannot run it.
 * CPython registers every block, created or attached, with its resource
 * tracker process: that cost is part of what its users pay. */
static double cpython_rate(const char *what, const char *name, size_t size)
{
    char cmd[512];

    setenv("PSHM_BENCH_PY", py_script, 1);
    snprintf(cmd, sizeof cmd, "'%s' -c \"$PSHM_BENCH_PY\" %s %s %zu %f 2>/dev/null", python(),
             what, name, size, cell_seconds);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    double v = -1;
    if (fscanf(f, "%lf", &v) != 1)
        v = -1;
    if (pclose(f) != 0)
        return -1;
    return v;
}

/* ------------------------------------------------------- Boost.Interprocess */

#ifdef PSHM_BENCH_BOOST
static void boost_fail(const char *what)
{
    fprintf(stderr, "bench_block: Boost %s failed\n", what);
    exit(1);
}
static void boost_create(const char *name, size_t size)
{
    if (bp_shm_create(name, size) != 0)
        boost_fail("shared_memory_object create");
}
static void boost_managed_create(const char *name, size_t size)
{
    if (bp_managed_create(name, size) != 0)
        boost_fail("managed_shared_memory create");
}
static void boost_attach(const char *name, size_t size)
{
    (void)size;
    if (bp_shm_attach(name) != 0)
        boost_fail("shared_memory_object open");
}
static char managed_name[80];
static void boost_managed_attach(const char *name, size_t size)
{
    (void)name, (void)size;
    if (bp_managed_attach(managed_name) != 0)
        boost_fail("managed_shared_memory open");
}
#define BOOST_OP(f) f
#else
#define BOOST_OP(f) NULL
#endif

enum { PSHM, RAW, BOOST, MANAGED, NSYS };
static const char *const sys_name[NSYS] = {"pshm", "raw syscalls", "Boost shared_memory_object",
                                           "Boost managed_shared_memory"};

static void row(btable *t, const char *op, size_t size, const double *v, double py)
{
    bt_row(t, BT_COLS(op, bench_fmt_size(size), bench_fmt_rate(v[PSHM]), bench_fmt_rate(v[RAW]),
                      bench_fmt_rate(v[BOOST]), bench_fmt_rate(v[MANAGED]), bench_fmt_rate(py),
                      bench_fmt_ratio(v[RAW] > 0 ? v[PSHM] / v[RAW] : -1),
                      bench_fmt_ratio(v[BOOST] > 0 ? v[PSHM] / v[BOOST] : -1),
                      bench_fmt_ratio(v[MANAGED] > 0 ? v[PSHM] / v[MANAGED] : -1),
                      bench_fmt_ratio(py > 0 ? v[PSHM] / py : -1)));
}

/* one bar a system for each measured operation */
static double bars[64];
static char bar_label[64][96];
static int bar_ref[64], nbars;

static void add_bars(const char *op, size_t size, const double *v, double py)
{
    for (int i = 0; i <= NSYS && nbars < 64; i++) {
        double x = i < NSYS ? v[i] : py;
        if (x <= 0)
            continue;
        snprintf(bar_label[nbars], sizeof bar_label[nbars], "%s %s: %s", op, bench_fmt_size(size),
                 i < NSYS ? sys_name[i] : "CPython");
        bar_ref[nbars] = i == RAW;
        bars[nbars++] = x;
    }
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {4096, 64u << 20};
    char name[64];

    bench_parse(&argc, argv, &O, 5, 3);
    cell_seconds = argc > 1 ? atof(argv[1]) : O.quick ? 0.05 : 1.0;
    if (!(cell_seconds > 0))
        cell_seconds = 1.0;
    bench_progress_init("bench_block");
    bjson *J = bj_open(O.json);
    bj_begin_report(J, "block", "Blocks: create and attach", 30, &O);
    bench_note_boost(J);
    snprintf(name, sizeof name, "pshm_bench_%ld", (long)getpid());
    btable *t = bt_new("block create and attach, operations per second", 11,
                       BT_COLS("operation", "size", "pshm", "raw syscalls",
                               "Boost shared_memory_object", "Boost managed_shared_memory",
                               "CPython", "pshm vs raw", "pshm vs Boost shm", "pshm vs Boost managed",
                               "pshm vs CPython"));
    int step = 0, steps = 9;
    double boost4k[2] = {-1, -1}; /* Boost shared_memory_object at 4 KiB: create, attach */
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t sz = sizes[i];
        double v[NSYS], py;
        op_fn create[NSYS] = {pshm_create_persist, raw_create, NULL, NULL};
        bench_progress((double)step++ / steps, "create %s", bench_fmt_size(sz));
        rate_multi(create, NSYS, name, sz, v);
        py = -1;
        row(t, "create+close+unlink (reserved)", sz, v, py);
        op_fn autos[NSYS] = {pshm_create_auto, raw_create, NULL, NULL};
        bench_progress((double)step++ / steps, "create AUTO %s", bench_fmt_size(sz));
        rate_multi(autos, NSYS, name, sz, v);
        row(t, "  same, AUTO lifetime", sz, v, py);
        /* Boost and CPython only truncate: compare like with like, without reserving */
        op_fn sparse[NSYS] = {pshm_create_sparse, raw_create_sparse, BOOST_OP(boost_create),
                              BOOST_OP(boost_managed_create)};
        bench_progress((double)step++ / steps, "create sparse %s", bench_fmt_size(sz));
        rate_multi(sparse, NSYS, name, sz, v);
        py = cpython_rate("create", name, sz);
        row(t, "create+close+unlink, sparse", sz, v, py);
        if (i == 0)
            boost4k[0] = v[BOOST];
        add_bars("create, sparse", sz, v, py);

        pshm_block *keep;
        int r = pshm_block_create(name, sz, NULL, &keep);
        if (r)
            die("create", r);
#ifdef PSHM_BENCH_BOOST
        snprintf(managed_name, sizeof managed_name, "%s_managed", name);
        if (bp_managed_make(managed_name, sz) != 0)
            die("managed_shared_memory", -EIO);
#endif
        /* Boost opens pshm's block: it is a plain POSIX shared memory object */
        op_fn attach[NSYS] = {pshm_attach, raw_attach, BOOST_OP(boost_attach),
                              BOOST_OP(boost_managed_attach)};
        bench_progress((double)step++ / steps, "attach %s", bench_fmt_size(sz));
        rate_multi(attach, NSYS, name, sz, v);
        py = cpython_rate("attach", name, sz);
        row(t, "attach+close", sz, v, py);
        if (i == 0)
            boost4k[1] = v[BOOST];
        add_bars("attach", sz, v, py);
        pshm_block_unlink(keep);
        pshm_block_close(keep);
#ifdef PSHM_BENCH_BOOST
        bp_managed_remove(managed_name);
#endif
    }
    bench_progress_end();
    bt_note(t, "median of %d interleaved rounds of %.2f s a cell (CPython: one run of %.2f s in "
               "python3, resource tracker included); 'vs' columns: pshm operations per second "
               "over the other's; sparse = no space reserved (Boost, CPython and truncate-only "
               "creation never reserve; pshm's default does, so a full /dev/shm is -ENOSPC at "
               "create, not SIGBUS later); Boost attaches to pshm's block, managed_shared_memory "
               "to a segment it made",
            O.rounds, cell_seconds, cell_seconds);
    bt_readme(t);
    bt_emit(t, J);
    bench_progress((double)step++ / steps, "steps");
    steps_table(J, name, sizes[0], boost4k, 2);
    bj_plot_begin(J, "block_create_attach.png", "bars",
                  "block create (sparse) and attach, operations per second (median of rounds)", "",
                  "operations per second", 0, 1);
    for (int i = 0; i < nbars; i++)
        bj_series(J, bar_label[i], bar_ref[i], &bars[i], &bars[i], 1);
    bj_plot_end(J);
    bj_end_report(J);
    return bj_close(J) ? 1 : 0;
}
