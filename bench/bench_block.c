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
    int step = 0, steps = 8;
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
    bj_plot_begin(J, "block_create_attach.png", "bars",
                  "block create (sparse) and attach, operations per second (median of rounds)", "",
                  "operations per second", 0, 1);
    for (int i = 0; i < nbars; i++)
        bj_series(J, bar_label[i], bar_ref[i], &bars[i], &bars[i], 1);
    bj_plot_end(J);
    bj_end_report(J);
    return bj_close(J) ? 1 : 0;
}
