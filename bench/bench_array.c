/* SPDX-License-Identifier: MIT */
/* bench_array.c - what the array layer costs on top of raw blocks:
 *   open       pshm_array_open + close vs pshm_block_open + close (same block)
 *   create     pshm_array_create + close + unlink vs the raw block equivalent
 *   import     pshm_array_create_from_npy of a 64 MiB image vs block create + memcpy
 * Each row: the median of 5 runs, per operation.
 *   build/bench/bench_array [--quick] [--json FILE] */
#include "common.h"
#include <pshm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define now bench_now

typedef void (*op_fn)(void *ctx, int n);

/* Median over 5 runs of the time per operation, in nanoseconds. */
static int quick;

static double measure(op_fn fn, void *ctx, int n)
{
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        fn(ctx, n);
        t[r] = (now() - t0) / n * 1e9;
    }
    return bench_stat_of(t, 5).med;
}

static char name[64];
static volatile size_t sink;

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_array: %s: %s\n", what, pshm_strerror(r));
    exit(1);
}

static void op_array_open(void *ctx, int n)
{
    for (int i = 0; i < n; i++) {
        pshm_array *a;
        int r = pshm_array_open(name, NULL, &a);
        if (r != 0)
            die("pshm_array_open", r);
        sink += pshm_array_nbytes(a);
        pshm_array_close(a);
    }
}

static void op_block_open(void *ctx, int n)
{
    for (int i = 0; i < n; i++) {
        pshm_block *b;
        int r = pshm_block_open(name, NULL, &b);
        if (r != 0)
            die("pshm_block_open", r);
        sink += pshm_block_size(b);
        pshm_block_close(b);
    }
}

static void op_array_create(void *ctx, int n)
{
    for (int i = 0; i < n; i++) {
        pshm_array *a;
        int r = pshm_array_create(name, "<f8", 2, (int64_t[]){1000, 3}, 0, NULL, &a);
        if (r != 0)
            die("pshm_array_create", r);
        pshm_block_unlink(pshm_array_block(a));
        pshm_array_close(a);
    }
}

static void op_block_create(void *ctx, int n)
{
    for (int i = 0; i < n; i++) {
        pshm_block *b;
        int r = pshm_block_create(name, 128 + 24000, NULL, &b);
        if (r != 0)
            die("pshm_block_create", r);
        pshm_block_unlink(b);
        pshm_block_close(b);
    }
}

typedef struct big {
    unsigned char *img;
    size_t len;
} big;

static void op_import(void *ctx, int n)
{
    big *g = ctx;
    for (int i = 0; i < n; i++) {
        pshm_array *a;
        int r = pshm_array_create_from_npy(name, g->img, g->len, NULL, &a);
        if (r != 0)
            die("pshm_array_create_from_npy", r);
        pshm_block_unlink(pshm_array_block(a));
        pshm_array_close(a);
    }
}

static void op_raw_copy(void *ctx, int n)
{
    big *g = ctx;
    for (int i = 0; i < n; i++) {
        pshm_block *b;
        int r = pshm_block_create(name, g->len, NULL, &b);
        if (r != 0)
            die("pshm_block_create", r);
        memcpy(pshm_block_data(b), g->img, g->len);
        pshm_block_unlink(b);
        pshm_block_close(b);
    }
}

static btable *T;

static void row(const char *what, double ns, const char *vs, double base)
{
    bt_row(T, BT_COLS(what, bench_fmt_ns(ns), vs, bench_fmt_ns(base),
                      bench_fmt_ratio(base > 0 ? ns / base : -1)));
}

int main(int argc, char **argv)
{
    pshm_array *a;
    bench_opts opt;
    int r;

    bench_parse(&argc, argv, &opt, 5, 5);
    snprintf(name, sizeof name, "pshm_bench_array_%ld", (long)getpid());
    bjson *j = bj_open(opt.json);
    bj_begin_report(j, "array", "Arrays: what the .npy layer costs over raw blocks", 50, &opt);
    T = bt_new("arrays over blocks, ns per operation (median of 5 runs)", 5,
               BT_COLS("operation", "ns", "the same on a raw block", "ns", "ratio"));

    r = pshm_array_create(name, "<f8", 2, (int64_t[]){1000, 3}, 0, NULL, &a);
    if (r != 0)
        die("create", r);
    quick = opt.quick;
    int k = quick ? 5 : 1; /* the quick run does a fifth of the operations */
    double ao = measure(op_array_open, NULL, 2000 / k), bo = measure(op_block_open, NULL, 2000 / k);
    row("pshm_array_open + close", ao, "pshm_block_open + close", bo);
    pshm_block_unlink(pshm_array_block(a));
    pshm_array_close(a);

    double ac = measure(op_array_create, NULL, 500 / k), bc = measure(op_block_create, NULL, 500 / k);
    row("pshm_array_create (1000, 3) <f8 + close", ac, "pshm_block_create", bc);

    /* a 64 MiB .npy image: the block pshm writes is one */
    big g;
    r = pshm_array_create(name, "<f8", 1, (int64_t[]){8 << 20}, 0, NULL, &a);
    if (r != 0)
        die("create", r);
    g.len = pshm_block_size(pshm_array_block(a));
    g.img = malloc(g.len);
    if (!g.img)
        die("malloc", -12);
    memcpy(g.img, pshm_block_data(pshm_array_block(a)), pshm_array_data_offset(a));
    memset(g.img + pshm_array_data_offset(a), 1, pshm_array_nbytes(a));
    pshm_block_unlink(pshm_array_block(a));
    pshm_array_close(a);
    double ci = measure(op_import, &g, quick ? 1 : 3), cr = measure(op_raw_copy, &g, quick ? 1 : 3);
    row("pshm_array_create_from_npy, 64 MiB", ci, "block create + memcpy", cr);
    bt_note(T, "import: %.2f GiB/s", 64.0 / 1024 / (ci * 1e-9));
    bt_emit(T, j);
    free(g.img);
    bj_end_report(j);
    if (bj_close(j) != 0)
        return 1;
    return sink == 42 ? 1 : 0;
}
