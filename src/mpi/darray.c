/* SPDX-License-Identifier: MIT */
/* darray.c - one array split along its first axis across the nodes: each
 * node's slab a pshm array block, every rank exposing its node's slab in
 * one MPI window, hyperslabs moved by direct copies (this node) and
 * passive-target MPI_Get / MPI_Put (the others). */
#include "mpi_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAXD PSHM_ARRAY_MAXDIM
/* Largest transfer in one MPI call: counts are ints, and a bounded size
 * keeps one call from monopolising a link. */
#define OP_MAX ((int64_t)1 << 30)
/* Distinct targets remembered for per-target flushes; past it, flush all. */
#define FLUSH_TRACK 8

/* A set of target ranks (a call's, or the puts not yet flushed), so that
 * flushes go to just those: MPI_Win_flush_all costs a round per peer on
 * some transports, and a job has many peers. */
struct targets {
    int n, all;
    int r[FLUSH_TRACK];
};

static void targets_add(struct targets *t, int rank)
{
    for (int i = 0; i < t->n; i++)
        if (t->r[i] == rank)
            return;
    if (t->n < FLUSH_TRACK)
        t->r[t->n++] = rank;
    else
        t->all = 1;
}

struct pshm_mpi_darray {
    pshm_mpi_job *job;
    char name[PSHM_NAME_MAX + 1];
    int ndim;
    int64_t shape[MAXD];
    int64_t stride[MAXD]; /* byte strides of every slab (C order) */
    pshm_dtype dtype;
    pshm_array *local;
    char *data;           /* this node's slab */
    int64_t first, rows;  /* this node's rows */
    int64_t *bound;       /* node j holds rows [bound[j], bound[j + 1]) */
    MPI_Win win;
    int locked;
    struct targets dirty; /* targets of puts since the last flush */
};

/* Node i of n holds rows [first(i), first(i + 1)): i * N / n without
 * overflowing for any N. */
static int64_t row_first(int64_t N, int n, int i)
{
    return (N / n) * i + (N % n) * i / n;
}

/* A selection after dropping single-element axes and merging the
 * innermost contiguous ones: nd outer axes (count, byte stride in the slab)
 * around a contiguous run of `run` bytes. */
struct sel {
    int nd;
    int64_t count[MAXD];
    int64_t sstride[MAXD];
    int64_t run;
};

static void sel_make(const pshm_mpi_darray *a, const int64_t *count, const int64_t *step,
                     int64_t rows0, struct sel *s)
{
    s->nd = 0;
    s->run = (int64_t)a->dtype.itemsize;
    for (int d = 0; d < a->ndim; d++) {
        int64_t c = d == 0 ? rows0 : count[d];
        if (c == 1)
            continue; /* its offset is in the base address already */
        s->count[s->nd] = c;
        s->sstride[s->nd] = (step ? step[d] : 1) * a->stride[d];
        s->nd++;
    }
    while (s->nd > 0 && s->sstride[s->nd - 1] == s->run) {
        s->run *= s->count[s->nd - 1];
        s->nd--;
    }
}

/* Copy between the slab (at base) and dense memory, to_slab or from it. */
static void sel_copy(const struct sel *s, char *base, char *dense, int to_slab)
{
    int64_t idx[MAXD] = {0};
    for (;;) {
        char *p = base;
        for (int d = 0; d < s->nd; d++)
            p += idx[d] * s->sstride[d];
        if (to_slab)
            memcpy(p, dense, (size_t)s->run);
        else
            memcpy(dense, p, (size_t)s->run);
        dense += s->run;
        int d = s->nd - 1;
        while (d >= 0 && ++idx[d] == s->count[d])
            idx[d--] = 0;
        if (d < 0)
            return;
    }
}


/* One remote part: an MPI_Get or MPI_Put of selection s at displacement
 * disp in target's window, to or from dense. */
static int sel_rma(pshm_mpi_darray *a, const struct sel *s, int put, char *dense, int target,
                   MPI_Aint disp)
{
    MPI_Datatype tt = MPI_DATATYPE_NULL, ot = MPI_DATATYPE_NULL, nt;
    int rc = 0;

    if (s->nd == 0) { /* contiguous: plain bytes, as plain MPI RMA moves them */
        for (int64_t off = 0; off < s->run && rc == 0; off += OP_MAX) {
            int n = (int)(s->run - off < OP_MAX ? s->run - off : OP_MAX);
            rc = put ? PSHM_MPI__CALL(MPI_Put(dense + off, n, MPI_BYTE, target, disp + off, n,
                                              MPI_BYTE, a->win))
                     : PSHM_MPI__CALL(MPI_Get(dense + off, n, MPI_BYTE, target, disp + off, n,
                                              MPI_BYTE, a->win));
        }
        return rc;
    }
    if (s->run > INT_MAX)
        return -EOVERFLOW;
    for (int d = 0; d < s->nd; d++)
        if (s->count[d] > INT_MAX)
            return -EOVERFLOW;
    /* Target: nested hvectors over the slab; origin: the same shape dense. */
    rc = PSHM_MPI__CALL(MPI_Type_contiguous((int)s->run, MPI_BYTE, &tt));
    if (rc == 0)
        rc = PSHM_MPI__CALL(MPI_Type_contiguous((int)s->run, MPI_BYTE, &ot));
    for (int d = s->nd - 1; d >= 0 && rc == 0; d--) {
        rc = PSHM_MPI__CALL(MPI_Type_create_hvector((int)s->count[d], 1,
                                                    (MPI_Aint)s->sstride[d], tt, &nt));
        if (rc == 0) {
            MPI_Type_free(&tt);
            tt = nt;
            rc = PSHM_MPI__CALL(MPI_Type_contiguous((int)s->count[d], ot, &nt));
        }
        if (rc == 0) {
            MPI_Type_free(&ot);
            ot = nt;
        }
    }
    if (rc == 0)
        rc = PSHM_MPI__CALL(MPI_Type_commit(&tt));
    if (rc == 0)
        rc = PSHM_MPI__CALL(MPI_Type_commit(&ot));
    if (rc == 0)
        rc = put ? PSHM_MPI__CALL(MPI_Put(dense, 1, ot, target, disp, 1, tt, a->win))
                 : PSHM_MPI__CALL(MPI_Get(dense, 1, ot, target, disp, 1, tt, a->win));
    /* Freeing a type in use by a pending operation is allowed: MPI keeps it
     * until the operation completes. */
    if (tt != MPI_DATATYPE_NULL)
        MPI_Type_free(&tt);
    if (ot != MPI_DATATYPE_NULL)
        MPI_Type_free(&ot);
    return rc;
}

/* Bounds of a hyperslab; *empty = 1 if it selects nothing. */
static int slab_check(const pshm_mpi_darray *a, const int64_t *start, const int64_t *count,
                      const int64_t *step, int *empty)
{
    *empty = 0;
    if (!a || !start || !count)
        return -EINVAL;
    for (int d = 0; d < a->ndim; d++) {
        int64_t st = step ? step[d] : 1;
        if (st < 1)
            return -EINVAL;
        if (count[d] < 0)
            return -PSHM_EMPI_BOUNDS;
        if (count[d] == 0) {
            *empty = 1;
            continue;
        }
        if (start[d] < 0 || start[d] >= a->shape[d] ||
            (count[d] - 1) > (a->shape[d] - 1 - start[d]) / st)
            return -PSHM_EMPI_BOUNDS;
    }
    return 0;
}

/* The node holding global row r: the last j with bound[j] <= r. */
static int node_of(const pshm_mpi_darray *a, int64_t r)
{
    int j = 0;
    for (int hi = a->job->nodes - 1; j < hi;) {
        int mid = j + (hi - j + 1) / 2;
        if (a->bound[mid] <= r)
            j = mid;
        else
            hi = mid - 1;
    }
    return j;
}

/* The common small case in one step: whole rows (every axis after the
 * first taken in full, no steps) on one other node, at most OP_MAX bytes:
 * one MPI_Get / MPI_Put and its flush, as plain MPI RMA does. Returns 1 if
 * it took the call (*rc its result), 0 to leave it to the general path. */
static int xfer_rows(pshm_mpi_darray *a, const int64_t *start, const int64_t *count,
                     const int64_t *step, char *buf, int put, int *rc)
{
    pshm_mpi_job *job = a->job;
    if (step || !buf || count[0] < 1 || start[0] < 0 || start[0] >= a->shape[0] ||
        count[0] > a->shape[0] - start[0] || count[0] > OP_MAX / a->stride[0])
        return 0;
    for (int d = 1; d < a->ndim; d++)
        if (start[d] != 0 || count[d] != a->shape[d])
            return 0;
    int j = node_of(a, start[0]), nr = 0;
    if (j == job->node || start[0] + count[0] > a->bound[j + 1])
        return 0;
    const int *ranks = pshm_mpi__node_ranks(job, j, &nr);
    int target = ranks[job->rank % nr], n = (int)(count[0] * a->stride[0]);
    MPI_Aint disp = (MPI_Aint)((start[0] - a->bound[j]) * a->stride[0]);
    int r = put ? PSHM_MPI__CALL(MPI_Put(buf, n, MPI_BYTE, target, disp, n, MPI_BYTE, a->win))
                : PSHM_MPI__CALL(MPI_Get(buf, n, MPI_BYTE, target, disp, n, MPI_BYTE, a->win));
    int fr = PSHM_MPI__CALL(put ? MPI_Win_flush_local(target, a->win)
                                : MPI_Win_flush(target, a->win));
    if (put)
        targets_add(&a->dirty, target);
    *rc = r != 0 ? r : fr;
    return 1;
}

static int xfer(pshm_mpi_darray *a, const int64_t *start, const int64_t *count,
                const int64_t *step, char *buf, int put)
{
    pshm_mpi_job *job;
    struct targets tg = {0};
    int64_t rowsel = 0, st0, disp;
    int empty, rc;

    if (a && start && count && a->stride[0] > 0 && xfer_rows(a, start, count, step, buf, put, &rc))
        return rc;
    rc = slab_check(a, start, count, step, &empty);
    if (rc != 0 || empty)
        return rc;
    if (!buf)
        return -EINVAL;
    job = a->job;
    rowsel = (int64_t)a->dtype.itemsize; /* dense bytes per selected row */
    for (int d = 1; d < a->ndim; d++)
        rowsel *= count[d];
    st0 = step ? step[0] : 1;
    disp = 0; /* the offset of the selection's start within a row */
    for (int d = 1; d < a->ndim; d++)
        disp += start[d] * a->stride[d];

    /* The node holding the first selected row (the last j with
     * bound[j] <= start[0]), then each node up to the last selected row.
     * The bounds are computed once at create: this path has no division
     * when steps are 1, so a small get costs what plain MPI_Get does. */
    int64_t last = start[0] + (count[0] - 1) * st0; /* <= shape[0] - 1: slab_check */
    int j = node_of(a, start[0]);
    for (; j < job->nodes && a->bound[j] <= last && rc == 0; j++) {
        int64_t f = a->bound[j];
        int64_t n = a->bound[j + 1] - f;
        int64_t klo, khi;
        if (n == 0)
            continue;
        /* selected rows k with f <= start0 + k * st0 < f + n */
        if (st0 == 1) {
            klo = f > start[0] ? f - start[0] : 0;
            khi = f + n - 1 - start[0];
        } else {
            klo = f > start[0] ? (f - start[0] + st0 - 1) / st0 : 0;
            khi = (f + n - 1 - start[0]) / st0;
        }
        if (khi > count[0] - 1)
            khi = count[0] - 1;
        if (klo > khi)
            continue;
        int nr = 0;
        const int *ranks = pshm_mpi__node_ranks(job, j, &nr);
        int target = ranks[job->rank % nr];
        /* bounded chunks of rows: each at most OP_MAX dense bytes (one row
         * at least) */
        int64_t chunk = (khi - klo + 1) * rowsel <= OP_MAX ? khi - klo + 1
                        : rowsel > 0 && rowsel < OP_MAX ? OP_MAX / rowsel : 1;
        for (int64_t k = klo; k <= khi && rc == 0; k += chunk) {
            int64_t rows = khi - k + 1 < chunk ? khi - k + 1 : chunk;
            int64_t lrow = start[0] + k * st0 - f; /* row within node j's slab */
            struct sel s;
            sel_make(a, count, step, rows, &s);
            char *dense = buf + k * rowsel;
            int64_t off = lrow * a->stride[0] + disp;
            if (j == job->node) {
                sel_copy(&s, a->data + off, dense, put);
            } else {
                rc = sel_rma(a, &s, put, dense, target, (MPI_Aint)off);
                targets_add(&tg, target);
                if (put)
                    targets_add(&a->dirty, target);
            }
        }
    }
    /* Complete what was issued even after an error, so buf is not still
     * in use by MPI when we return. */
    int fr = 0;
    if (tg.all)
        fr = PSHM_MPI__CALL(put ? MPI_Win_flush_local_all(a->win) : MPI_Win_flush_all(a->win));
    else
        for (int i = 0; i < tg.n && fr == 0; i++)
            fr = PSHM_MPI__CALL(put ? MPI_Win_flush_local(tg.r[i], a->win)
                                    : MPI_Win_flush(tg.r[i], a->win));
    return rc != 0 ? rc : fr;
}

int pshm_mpi_darray_get(pshm_mpi_darray *a, const int64_t *start, const int64_t *count,
                        const int64_t *step, void *buf)
{
    return xfer(a, start, count, step, buf, 0);
}

int pshm_mpi_darray_put(pshm_mpi_darray *a, const int64_t *start, const int64_t *count,
                        const int64_t *step, const void *buf)
{
    /* MPI_Put reads buf only; the cast is for the shared copy loop. */
    return xfer(a, start, count, step, (char *)(uintptr_t)buf, 1);
}

int pshm_mpi_darray_flush(pshm_mpi_darray *a)
{
    int rc = 0;
    if (!a)
        return -EINVAL;
    /* Only the targets this rank put to since the last flush (gets
     * complete in their own call). */
    if (a->dirty.all)
        rc = PSHM_MPI__CALL(MPI_Win_flush_all(a->win));
    else
        for (int i = 0; i < a->dirty.n && rc == 0; i++)
            rc = PSHM_MPI__CALL(MPI_Win_flush(a->dirty.r[i], a->win));
    if (rc == 0)
        a->dirty = (struct targets){0};
    return rc;
}

int pshm_mpi_darray_sync(pshm_mpi_darray *a)
{
    int rc;
    if (!a)
        return -EINVAL;
    /* Every target, so that the caller's own operations on the window
     * (pshm_mpi_darray_win) are completed too; rare and collective. */
    rc = PSHM_MPI__CALL(MPI_Win_flush_all(a->win));
    if (rc == 0) {
        a->dirty = (struct targets){0};
        rc = PSHM_MPI__CALL(MPI_Win_sync(a->win));
    }
    rc = pshm_mpi__agree(a->job->comm, rc, 0); /* the barrier */
    if (rc == 0)
        rc = PSHM_MPI__CALL(MPI_Win_sync(a->win));
    return rc;
}

int pshm_mpi_darray_view(pshm_mpi_darray *a, const int64_t *start, const int64_t *count,
                         const int64_t *step, void **ptr, int64_t *strides)
{
    int empty, rc;
    char *p;

    if (!ptr)
        return -EINVAL;
    rc = slab_check(a, start, count, step, &empty);
    if (rc != 0)
        return rc;
    if (!empty) {
        int64_t last = start[0] + (count[0] - 1) * (step ? step[0] : 1);
        if (start[0] < a->first || last >= a->first + a->rows)
            return -PSHM_EMPI_NOTLOCAL;
    }
    p = a->data;
    if (!empty) {
        p += (start[0] - a->first) * a->stride[0];
        for (int d = 1; d < a->ndim; d++)
            p += start[d] * a->stride[d];
    }
    *ptr = p;
    if (strides)
        for (int d = 0; d < a->ndim; d++)
            strides[d] = (step ? step[d] : 1) * a->stride[d];
    return 0;
}

int pshm_mpi_darray_rows(const pshm_mpi_darray *a, int node, int64_t *first, int64_t *rows)
{
    if (!a || !first || !rows || node < 0 || node >= a->job->nodes)
        return -EINVAL;
    *first = a->bound[node];
    *rows = a->bound[node + 1] - *first;
    return 0;
}

static void slab_drop(pshm_array *arr)
{
    pshm_block *b = pshm_array_block(arr);
    if (b && pshm_block_created(b))
        pshm_block_unlink(b);
    pshm_array_close(arr);
}

int pshm_mpi_darray_create(pshm_mpi_job *job, const char *name, const char *descr, int ndim,
                           const int64_t *shape, const pshm_mpi_options *opt,
                           pshm_mpi_darray **out)
{
    pshm_mpi_options o;
    pshm_mpi_darray *a = NULL;
    int64_t slab[MAXD];
    char rname[32];
    uint64_t h;
    int rc;

    if (!job)
        return -EINVAL;
    if (out)
        *out = NULL;
    rc = pshm_mpi__begin("darray", name, opt, &o, &h);
    if (rc == 0 && (!out || !descr || ndim < 1 || ndim > MAXD || !shape))
        rc = -EINVAL;
    if (rc == 0 && o.readonly)
        rc = -EINVAL; /* remote puts write every rank's mapping */
    /* Every rank's mapping of its slab is a window other nodes read through
     * (on one machine by the kernel's copy, CMA): populated at once. A get of
     * 16 - 64 MiB from pages the owner had not mapped measured 1.15x - 1.55x
     * the time of one from mapped pages (paired rounds, bench_mpi); a
     * network's memory registration pins them anyway. */
    o.prefault = 1;
    if (rc == 0) {
        a = calloc(1, sizeof *a);
        if (!a)
            rc = -ENOMEM;
        else
            a->win = MPI_WIN_NULL;
        if (a && !(a->bound = malloc(sizeof *a->bound * ((size_t)job->nodes + 1))))
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = pshm_dtype_parse(descr, &a->dtype);
    for (int d = 0; rc == 0 && d < ndim; d++)
        if (shape[d] < 0)
            rc = -PSHM_EARRAY_SHAPE;
    if (rc == 0)
        h = pshm_mpi__hash_array(h, a->dtype.descr, ndim, shape);
    rc = pshm_mpi__agree(job->comm, rc, h);
    if (rc != 0)
        goto fail;

    a->job = job;
    a->ndim = ndim;
    memcpy(a->shape, shape, sizeof *shape * (size_t)ndim);
    if (!name) {
        /* One random name for the whole job, drawn by rank 0. */
        uint64_t r = 0;
        if (job->rank == 0 && getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        snprintf(rname, sizeof rname, "psm_%016llx", (unsigned long long)r);
        rc = PSHM_MPI__CALL(MPI_Bcast(rname, sizeof rname, MPI_CHAR, 0, job->comm));
        if (rc != 0)
            goto fail;
        name = rname;
    }
    snprintf(a->name, sizeof a->name, "%s", name[0] == '/' ? name + 1 : name);
    for (int j = 0; j <= job->nodes; j++)
        a->bound[j] = row_first(shape[0], job->nodes, j);
    a->first = a->bound[job->node];
    a->rows = a->bound[job->node + 1] - a->first;
    memcpy(slab, shape, sizeof *shape * (size_t)ndim);
    slab[0] = a->rows;
    rc = pshm_mpi__node_array(job, a->name, descr, ndim, slab, 0, &o, 0, &a->local);
    if (rc != 0)
        goto fail;
    a->data = pshm_array_data(a->local);
    a->stride[ndim - 1] = (int64_t)a->dtype.itemsize;
    for (int d = ndim - 2; d >= 0; d--)
        a->stride[d] = a->stride[d + 1] * shape[d + 1];

    rc = PSHM_MPI__CALL(MPI_Win_create(a->data, (MPI_Aint)pshm_array_nbytes(a->local), 1,
                                       MPI_INFO_NULL, job->comm, &a->win));
    if (rc == 0) {
        MPI_Win_set_errhandler(a->win, MPI_ERRORS_RETURN);
        rc = PSHM_MPI__CALL(MPI_Win_lock_all(MPI_MODE_NOCHECK, a->win));
        a->locked = rc == 0;
    }
    rc = pshm_mpi__agree(job->comm, rc, 0);
    if (rc != 0)
        goto fail;
    *out = a;
    return 0;
fail:
    if (a) {
        if (a->locked)
            MPI_Win_unlock_all(a->win);
        if (a->win != MPI_WIN_NULL)
            MPI_Win_free(&a->win);
        if (a->local) {
            slab_drop(a->local);
            MPI_Barrier(job->comm); /* nobody returns before every slab is gone */
        }
        free(a->bound);
        free(a);
    }
    return rc;
}

int pshm_mpi_darray_close(pshm_mpi_darray *a)
{
    int rc = 0, r;
    if (!a)
        return 0;
    if (a->locked)
        rc = PSHM_MPI__CALL(MPI_Win_unlock_all(a->win));
    r = PSHM_MPI__CALL(MPI_Win_free(&a->win));
    if (rc == 0)
        rc = r;
    r = pshm_array_close(a->local);
    if (rc == 0)
        rc = r;
    free(a->bound);
    free(a);
    return rc;
}

pshm_array *pshm_mpi_darray_local(const pshm_mpi_darray *a) { return a ? a->local : NULL; }
int pshm_mpi_darray_ndim(const pshm_mpi_darray *a) { return a ? a->ndim : -1; }
const int64_t *pshm_mpi_darray_shape(const pshm_mpi_darray *a) { return a ? a->shape : NULL; }
const pshm_dtype *pshm_mpi_darray_dtype(const pshm_mpi_darray *a)
{
    return a ? &a->dtype : NULL;
}
const char *pshm_mpi_darray_name(const pshm_mpi_darray *a) { return a ? a->name : NULL; }
MPI_Win pshm_mpi_darray_win(const pshm_mpi_darray *a) { return a ? a->win : MPI_WIN_NULL; }
