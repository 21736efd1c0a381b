/* SPDX-License-Identifier: MIT */
/*
 * common.h - what every bench_*.c shares: clocks, pinning, statistics over
 * interleaved rounds, the progress line, tables printed and written as JSON.
 *
 * Each bench program prints its tables to stdout and, given --json FILE,
 * writes the same tables (and the raw series behind its plots) to FILE in
 * the report format that bench/report.py reads:
 *
 *   { "bench": "queue", "title": "...", "order": 10, "summary": "markdown",
 *     "versions": {"pshm": "0.1.0", "iceoryx": "2.0.3", ...},
 *     "missing":  [{"peer": "...", "reason": "..."}],
 *     "tables":   [{"title": "...", "main": 0, "readme": 0, "columns": [...],
 *                   "rows": [["cell", ...], ...], "note": "..."}],
 *     "plots":    [{"file": "x.png", "kind": "lines"|"cdf"|"bars", "title": "...",
 *                   "xlabel": "...", "ylabel": "...", "logx": 1, "logy": 0,
 *                   "series": [{"label": "...", "ref": 0, "x": [...], "y": [...]}]}],
 *     "findings": ["markdown line", ...] }
 *
 * Every key but "bench" is optional; any program (bench/python later) that
 * writes a file of this shape into build/bench/ gets its section in the
 * report. Not a test: nothing here asserts a timing.
 */
#ifndef PSHM_BENCH_COMMON_H
#define PSHM_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------ run options */

typedef struct bench_opts {
    int quick;          /* --quick or PSHM_BENCH_QUICK=1: the one-minute run */
    const char *json;   /* --json FILE: where the report data goes (NULL: none) */
    int rounds;         /* PSHM_BENCH_ROUNDS, else the program's default */
} bench_opts;

/* Parse and remove --quick and --json FILE from argv (the rest is the
 * program's own); *argc is updated. */
void bench_parse(int *argc, char **argv, bench_opts *o, int default_rounds,
                 int quick_rounds);

/* ------------------------------------------------------------ clocks, cpus */

double bench_now(void);   /* CLOCK_MONOTONIC, seconds */
uint64_t bench_now_ns(void);

/* The cycle counter and its calibration (nanoseconds per tick). */
static inline uint64_t bench_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return bench_now_ns();
#endif
}
extern double bench_tsc_ns;
void bench_calibrate(void);

/* The two CPUs two-process benchmarks run on: the first two this process
 * may run on (cpu0 and cpu1 normally). bench_pin(0/1) pins the caller to
 * one of them; with fewer than two CPUs it does nothing. */
int bench_cpu(int which); /* -1 when not pinned */
void bench_pin(int which);

void bench_loadavg(char *out, size_t cap);

/* ------------------------------------------------------------ statistics */

int bench_cmp_u64(const void *a, const void *b);
int bench_cmp_double(const void *a, const void *b);

/* min / median / max over n values; values < 0 mean "not measured" and are
 * skipped (n = how many were kept; all -1 when none). */
typedef struct bench_stat {
    double min, med, max;
    int n;
} bench_stat;
bench_stat bench_stat_of(const double *v, int n);

/* ------------------------------------------------------------ progress */

/* A one-line progress display on stderr, only when stderr is a terminal:
 * "[bench_queue  42%] what". bench_progress_end clears it. */
void bench_progress_init(const char *prog);
void bench_progress(double done, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bench_progress_end(void);

/* ------------------------------------------------------------ formatting */

/* Each returns a pointer into a ring of static buffers (valid for the next
 * 63 calls), "n/a" for v < 0: fine for building one table row. */
const char *bench_fmt(const char *fmt, double v);
const char *bench_fmt_ns(double ns);      /* 1,234 */
const char *bench_fmt_ratio(double r);    /* 1.04x */
const char *bench_fmt_rate(double per_s); /* 12.0 M/s */
const char *bench_fmt_gbs(double gbs);    /* 7.52 GB/s */
const char *bench_fmt_spread(double lo, double hi, const char *unit_fmt); /* 230-260 */
const char *bench_fmt_size(size_t bytes); /* 64 B, 4 KiB, 1 MiB */

/* ------------------------------------------------------------ JSON */

typedef struct bjson bjson;

/* NULL path: every call below is a no-op on a NULL writer. */
bjson *bj_open(const char *path);       /* the report is written at bj_close */
int bj_close(bjson *j);           /* 0, or -1 if writing failed */
void bj_obj(bjson *j, const char *key); /* key NULL inside an array */
void bj_arr(bjson *j, const char *key);
void bj_end(bjson *j);            /* closes the innermost object or array */
void bj_num(bjson *j, const char *key, double v); /* v < 0 or NaN: null */
void bj_int(bjson *j, const char *key, long long v);
void bj_str(bjson *j, const char *key, const char *s);
void bj_strf(bjson *j, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bj_nums(bjson *j, const char *key, const double *v, int n);

/* The report's top keys, written first (bench, title, order, run options,
 * load average, CPUs, pshm's version) and last (load average at the end). */
void bj_begin_report(bjson *j, const char *bench, const char *title, int order,
                     const bench_opts *o);
void bj_end_report(bjson *j);

/* Add to the report's "versions", "missing" (also said on stderr) and
 * "findings" (also printed). Any time, from the top level. */
void bj_version(bjson *j, const char *peer, const char *version);
void bj_missing(bjson *j, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bj_finding(bjson *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A plot: begin, one bj_series per line (ref = 1: a hardware reference,
 * drawn dashed), end. kind "lines" (x/y), "cdf" (x = values, y = fraction),
 * "bars" (x ignored; one bar per series, y[0]; labels on the axis). */
void bj_plot_begin(bjson *j, const char *file, const char *kind, const char *title,
                   const char *xlabel, const char *ylabel, int logx, int logy);
void bj_series(bjson *j, const char *label, int ref, const double *x, const double *y, int n);
void bj_plot_end(bjson *j);

/* ------------------------------------------------------------ tables */

/* A table printed to stdout (columns aligned, first left, the rest right)
 * and written to the report's "tables". */
typedef struct btable btable;
btable *bt_new(const char *title, int ncols, const char *const *cols);
void bt_row(btable *t, const char *const *cells); /* ncols strings, copied */
void bt_section(btable *t, const char *label);    /* a sub-heading row */
void bt_note(btable *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bt_main(btable *t);                          /* the report's headline table */
void bt_readme(btable *t);                        /* shown in the README's bench:NAME block */
void bt_emit(btable *t, bjson *j);                /* print, write, free */

#define BT_COLS(...) ((const char *const[]){__VA_ARGS__})

#endif
