/* SPDX-License-Identifier: MIT */
/* bench_array.c - what the array layer costs on top of raw blocks:
 *   open       pshm_array_open + close vs pshm_block_open + close (same block)
 *   create     pshm_array_create + close + unlink vs the raw block equivalent
 *   import     pshm_array_create_from_npy of a 64 MiB image vs block create + memcpy
 * Each row: the median of 5 runs, per operation. */
#include <pshm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef void (*op_fn)(void *ctx, int n);

/* Median over 5 runs of the time per operation, in nanoseconds. */
static double measure(op_fn fn, void *ctx, int n)
{
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        fn(ctx, n);
        t[r] = (now() - t0) / n * 1e9;
    }
    qsort(t, 5, sizeof t[0], cmp);
    return t[2];
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

static void row(const char *what, double ns, const char *vs, double base)
{
    if (base > 0)
        printf("  %-44s %12.0f ns   (%s: %.0f ns, x%.2f)\n", what, ns, vs, base, ns / base);
    else
        printf("  %-44s %12.0f ns\n", what, ns);
}

int main(void)
{
    pshm_array *a;
    int r;

    snprintf(name, sizeof name, "pshm_bench_array_%ld", (long)getpid());

    printf("bench_array: arrays over blocks (median of 5 runs, per operation)\n");

    r = pshm_array_create(name, "<f8", 2, (int64_t[]){1000, 3}, 0, NULL, &a);
    if (r != 0)
        die("create", r);
    double ao = measure(op_array_open, NULL, 2000), bo = measure(op_block_open, NULL, 2000);
    row("pshm_array_open + close", ao, "pshm_block_open + close", bo);
    pshm_block_unlink(pshm_array_block(a));
    pshm_array_close(a);

    double ac = measure(op_array_create, NULL, 500), bc = measure(op_block_create, NULL, 500);
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
    double ci = measure(op_import, &g, 3), cr = measure(op_raw_copy, &g, 3);
    row("pshm_array_create_from_npy, 64 MiB", ci, "block create + memcpy", cr);
    printf("  (import: %.2f GiB/s)\n", 64.0 / 1024 / (ci * 1e-9));
    free(g.img);
    return sink == 42 ? 1 : 0;
}
