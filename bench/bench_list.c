/* SPDX-License-Identifier: MIT */
/*
 * bench_list.c - ShareableList get and set per second: pshm in C next to
 * CPython's multiprocessing.shared_memory.ShareableList, measured in the
 * same run (CPython in a child python3 with timeit).
 *
 *   build/bench/bench_list [--quick] [--json FILE] [SECONDS_PER_CASE]  (default 0.3)
 *   PSHM_BENCH_ROUNDS=n   interleaved rounds (default 5, --quick 2)
 *   PSHM_PYTHON=/path/to/python3 to choose the interpreter.
 *
 * The C str get returns a pointer into the block (after checking UTF-8);
 * CPython's builds a new str object. Both are what a caller of each gets.
 */
#include "common.h"
#include <pshm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint64_t sink;

enum { GET, SET };
typedef struct bcase {
    const char *label;
    int op;
    int64_t index;
    const char *py; /* the statement timeit runs */
    double c_rate, py_rate;
} bcase;

static bcase cases[] = {
    {"get int", GET, 0, "sl[0]", 0, 0},
    {"get float", GET, 1, "sl[1]", 0, 0},
    {"get str (11 B)", GET, 2, "sl[2]", 0, 0},
    {"set int", SET, 0, "sl[0] = 12345", 0, 0},
    {"set float", SET, 1, "sl[1] = 0.25", 0, 0},
    {"set str (11 B)", SET, 2, "sl[2] = 'hello again'", 0, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* Run one case in batches until `secs` have passed; operations per second. */
static double run_c(pshm_list *l, const bcase *c, double secs)
{
    pshm_value vals[3] = {pshm_value_int(12345), pshm_value_float(0.25),
                          pshm_value_str("hello again", 11)};
    const pshm_value *v = &vals[c->index];
    long long ops = 0;
    double t0 = now(), t;
    uint64_t acc = 0;

    do {
        for (int k = 0; k < 100000; k++) {
            if (c->op == GET) {
                pshm_value g;
                if (pshm_list_get(l, c->index, &g) != 0)
                    abort();
                acc += (uint64_t)g.i;
            } else if (pshm_list_set(l, c->index, v) != 0) {
                abort();
            }
        }
        ops += 100000;
        t = now() - t0;
    } while (t < secs);
    sink = acc;
    return (double)ops / t;
}

static const char *PY =
    "import sys, timeit\n"
    "from multiprocessing import shared_memory\n"
    "secs = float(sys.argv[1])\n"
    "sl = shared_memory.ShareableList([1, 2.5, 'hello world'])\n"
    "try:\n"
    "    for stmt in sys.argv[2:]:\n"
    "        t = timeit.Timer(stmt, globals={'sl': sl})\n"
    "        n = 1\n"  /* timeit's autorange would take 0.2 s a statement */
    "        while t.timeit(n) < secs / 4:\n"
    "            n *= 2\n"
    "        best = min(t.repeat(3, n)) / n\n"
    "        print(1.0 / best, flush=True)\n"
    "finally:\n"
    "    sl.shm.close()\n"
    "    sl.shm.unlink()\n";

/* Write s as one single-quoted shell word. */
static void shell_quote(FILE *o, const char *s)
{
    fputc('\'', o);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", o);
        else
            fputc(*s, o);
    }
    fputc('\'', o);
}

static int run_python(double secs)
{
    const char *py = getenv("PSHM_PYTHON");
    char *cmd = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&cmd, &len), *p;
    int got = 0;

    if (!py)
        py = "/usr/bin/python3";
    fprintf(m, "%s -c ", py);
    shell_quote(m, PY);
    fprintf(m, " %g", secs);
    for (size_t i = 0; i < NCASES; i++) {
        fputc(' ', m);
        shell_quote(m, cases[i].py);
    }
    fclose(m);
    p = popen(cmd, "r");
    free(cmd);
    if (!p)
        return -1;
    for (size_t i = 0; i < NCASES; i++)
        if (fscanf(p, "%lf", &cases[i].py_rate) == 1)
            got++;
    pclose(p);
    return got == (int)NCASES ? 0 : -1;
}

int main(int argc, char **argv)
{
    bench_opts opt;
    bench_parse(&argc, argv, &opt, 5, 2);
    if (opt.rounds > 16)
        opt.rounds = 16;
    double secs = argc > 1 ? atof(argv[1]) : opt.quick ? 0.05 : 0.3;
    pshm_value items[] = {pshm_value_int(1), pshm_value_float(2.5),
                          pshm_value_str("hello world", 11)};
    pshm_block_options o;
    pshm_list *l;
    int r;

    if (!(secs > 0))
        secs = 0.3;
    pshm_block_options_init(&o);
    o.lifetime = PSHM_OWNED; /* gone when this process ends, whatever happens */
    r = pshm_list_create(NULL, items, 3, &o, &l);
    if (r != 0) {
        fprintf(stderr, "bench_list: create: %s\n", pshm_strerror(r));
        return 1;
    }
    /* interleaved rounds: C, then CPython, then C again ... */
    static double c_r[NCASES][16], py_r[NCASES][16];
    int have_py = 1;
    for (int rd = 0; rd < opt.rounds; rd++) {
        for (size_t i = 0; i < NCASES; i++)
            c_r[i][rd] = run_c(l, &cases[i], secs);
        have_py = have_py && run_python(secs) == 0;
        for (size_t i = 0; i < NCASES; i++)
            py_r[i][rd] = have_py ? cases[i].py_rate : -1;
    }
    pshm_list_close(l);

    bjson *j = bj_open(opt.json);
    bj_begin_report(j, "list", "ShareableList: C against CPython", 40, &opt);
    char title[96];
    snprintf(title, sizeof title, "ShareableList get/set, one process, %.2f s per case", secs);
    btable *t = bt_new(title, 5, BT_COLS("operation", "pshm (C)", "CPython 3",
                                         "pshm / CPython (rate)", "its range"));
    for (size_t i = 0; i < NCASES; i++) {
        double ratio[16];
        for (int rd = 0; rd < opt.rounds; rd++)
            ratio[rd] = have_py && py_r[i][rd] > 0 ? c_r[i][rd] / py_r[i][rd] : -1;
        bench_stat c = bench_stat_of(c_r[i], opt.rounds);
        bench_stat py = bench_stat_of(py_r[i], opt.rounds);
        bench_stat q = bench_stat_of(ratio, opt.rounds);
        cases[i].c_rate = c.med;
        bt_row(t, BT_COLS(cases[i].label, bench_fmt_rate(c.med), bench_fmt_rate(have_py ? py.med : -1),
                          bench_fmt_ratio(have_py ? q.med : -1),
                          have_py ? bench_fmt_spread(q.min, q.max, "%.1f") : "n/a"));
    }
    bt_note(t, "Medians of %d interleaved rounds (C, then CPython, per round); the ratio is taken "
               "within each round, its range is over the rounds",
            opt.rounds);
    if (!have_py)
        bt_note(t, "CPython figures unavailable: could not run the interpreter");
    bt_readme(t);
    bt_emit(t, j);
    bj_end_report(j);
    if (bj_close(j) != 0)
        return 1;
    return 0;
}
