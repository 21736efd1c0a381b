/* SPDX-License-Identifier: MIT */
/*
 * test_mpi_darray.c - node layout, node-collective blocks and arrays, and
 * distributed arrays, run as one MPI job (tests/mpi/run.sh) with
 * pseudo-nodes so that remote slabs really go through MPI.
 *
 * The reference: every rank keeps a private copy of the whole global array,
 * updated by a plain element loop (not the library's code) with every write
 * any rank makes - the writes come from a random stream all ranks share -
 * and every read through the library is compared with it byte for byte.
 */
#include "mpitest.h"

#include <errno.h>
#include <sys/wait.h>

#define MAXD 4

static pshm_mpi_job *job;
static uint64_t seed;

/* ---- the reference ---- */

struct ref {
    int ndim;
    int64_t shape[MAXD];
    size_t itemsize;
    unsigned char *bytes; /* C order */
    size_t nbytes;
};

static int64_t nsel(int ndim, const int64_t *count)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= count[d];
    return n;
}

/* Copy between the reference and a dense buffer, one element at a time. */
static void ref_xfer(struct ref *r, const int64_t *start, const int64_t *count,
                     const int64_t *step, unsigned char *dense, int to_ref)
{
    int64_t n = nsel(r->ndim, count), idx[MAXD] = {0};
    for (int64_t e = 0; e < n; e++) {
        int64_t off = 0;
        for (int d = 0; d < r->ndim; d++)
            off = off * r->shape[d] + start[d] + idx[d] * step[d];
        if (to_ref)
            memcpy(r->bytes + off * (int64_t)r->itemsize, dense + e * (int64_t)r->itemsize, r->itemsize);
        else
            memcpy(dense + e * (int64_t)r->itemsize, r->bytes + off * (int64_t)r->itemsize, r->itemsize);
        for (int d = r->ndim - 1; d >= 0 && ++idx[d] == count[d]; d--)
            idx[d] = 0;
    }
}

/* A random hyperslab inside shape (every count >= 1 when the shape allows).
 * A third of them are whole rows without steps (the one-call path when they
 * lie on one node). Returns the step to pass: NULL (all ones) half the time
 * the steps allow it, so both spellings of "no step" are run. */
static const int64_t *rand_slab(uint64_t *st, const struct ref *r, int64_t *start,
                                int64_t *count, int64_t *step)
{
    int rows = mt_range(st, 0, 2) == 0, ones = 1;
    for (int d = 0; d < r->ndim; d++) {
        if (rows && r->shape[d] > 0) {
            step[d] = 1;
            start[d] = d == 0 ? mt_range(st, 0, r->shape[0] - 1) : 0;
            count[d] = d == 0 ? mt_range(st, 1, r->shape[0] - start[0]) : r->shape[d];
            continue;
        }
        if (r->shape[d] == 0) {
            start[d] = 0, count[d] = 0, step[d] = 1;
            continue;
        }
        start[d] = mt_range(st, 0, r->shape[d] - 1);
        step[d] = mt_range(st, 0, 3) == 0 ? mt_range(st, 2, 3) : 1;
        int64_t maxc = (r->shape[d] - 1 - start[d]) / step[d] + 1;
        count[d] = mt_range(st, 1, maxc);
    }
    for (int d = 0; d < r->ndim; d++)
        ones &= step[d] == 1;
    return ones && mt_range(st, 0, 1) == 0 ? NULL : step;
}

static void fill_rand(uint64_t *st, unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)mt_next(st);
}

/* ---- cases ---- */

static void layout(void)
{
    int k = pshm_mpi_job_pseudo_nodes(job), size = pshm_mpi_job_size(job);
    int rank = pshm_mpi_job_rank(job);
    char buf[64];
    size_t len = 0;

    CHECK(k >= 2); /* run.sh asks for pseudo-nodes: the cross-node path must run */
    CHECK_EQ(pshm_mpi_job_nodes(job), k);
    CHECK_EQ(pshm_mpi_job_node(job), rank * k / size);
    for (int j = 0; j < k; j++) {
        int lead = -1;
        CHECK_OK(pshm_mpi_job_node_leader(job, j, &lead));
        CHECK_EQ(lead, (j * size + k - 1) / k); /* the first r with r*k/size == j */
    }
    CHECK_OK(pshm_mpi_node_name(job, 1, "field", buf, sizeof buf, &len));
    CHECK(strcmp(buf, "field.pn1") == 0);
    CHECK_EQ(len, 9);
    CHECK_ERR(pshm_mpi_node_name(job, 1, "field", buf, 5, &len), -ERANGE);
    CHECK_ERR(pshm_mpi_node_name(job, k, "field", buf, sizeof buf, NULL), -EINVAL);
    CHECK_ERR(pshm_mpi_node_name(job, 0, "a/b", buf, sizeof buf, NULL), -PSHM_ENAME_SLASH);
    CHECK(strcmp(pshm_mpi_errname(-PSHM_EMPI_SEQ), "PSHM_EMPI_SEQ") == 0);
    CHECK(strcmp(pshm_mpi_errname(-ENOENT), "ENOENT") == 0);
    CHECK(strstr(pshm_mpi_strerror(-PSHM_EMPI_RMA), "one-sided") != NULL);
    CHECK_EQ(pshm_mpi_error(MPI_SUCCESS), 0);
    CHECK_EQ(pshm_mpi_error(MPI_ERR_RMA_SYNC), -PSHM_EMPI_RMA);
    CHECK_EQ(pshm_mpi_error(MPI_ERR_NO_MEM), -ENOMEM);
    CHECK_EQ(pshm_mpi_error(MPI_ERR_TRUNCATE), -PSHM_EMPI_TRUNCATE);
    CHECK_EQ(pshm_mpi_error(MPI_ERR_RANK), -PSHM_EMPI_COMM);
    CHECK_EQ(pshm_mpi_error(MPI_ERR_INTERN), -PSHM_EMPI);
}

/* One block per node: each node's ranks see their own, not the others'. */
static void node_blocks(void)
{
    const char *name = mt_name("blk");
    pshm_block *b = NULL;
    char nn[PSHM_NAME_MAX + 1];
    int node = pshm_mpi_job_node(job), nodes = pshm_mpi_job_nodes(job);

    CHECK_OK(pshm_mpi_block_create(job, name, 4096, NULL, &b));
    CHECK_EQ(pshm_block_lifetime(b), PSHM_AUTO);
    CHECK_OK(pshm_mpi_node_name(job, node, name, nn, sizeof nn, NULL));
    CHECK(strcmp(pshm_block_name(b), nn) == 0);
    CHECK_EQ(pshm_block_created(b), pshm_mpi_job_node_rank(job) == 0);
    /* every rank writes its rank into its slot of its node's block */
    ((int *)pshm_block_data(b))[pshm_mpi_job_rank(job)] = 1000 + pshm_mpi_job_rank(job);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int r = 0; r < pshm_mpi_job_size(job); r++) {
        int same = r * nodes / pshm_mpi_job_size(job) == node;
        CHECK_EQ(((int *)pshm_block_data(b))[r], same ? 1000 + r : 0);
    }
    /* the same name again: -EEXIST on every rank (the node's creator
     * failed), and the existing blocks are untouched */
    pshm_block *b2 = (pshm_block *)1;
    CHECK_ERR(pshm_mpi_block_create(job, name, 4096, NULL, &b2), -EEXIST);
    CHECK(b2 == NULL);
    /* arguments that differ between ranks: a mismatch everywhere */
    CHECK_ERR(pshm_mpi_block_create(job, mt_name("mm"), 4096 + (size_t)pshm_mpi_job_rank(job) % 2,
                                    NULL, &b2),
              -PSHM_EMPI_MISMATCH);
    CHECK(!pshm_block_stat(mt_name("mm"), &(pshm_block_info){.struct_size = sizeof(pshm_block_info)}) == 0);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pshm_block_close(b));
    MPI_Barrier(MPI_COMM_WORLD);
    /* AUTO: the last holder closed, the name is gone */
    CHECK(pshm_block_stat(nn, &(pshm_block_info){.struct_size = sizeof(pshm_block_info)}) == -ENOENT);
}

static void node_arrays(void)
{
    const char *name = mt_name("arr");
    int64_t shape[2] = {3, 5};
    pshm_array *a = NULL;
    pshm_mpi_options o;

    pshm_mpi_options_init(&o);
    o.lifetime = PSHM_PERSIST; /* watch is then dropped, not -EINVAL */
    CHECK_OK(pshm_mpi_array_create(job, name, PSHM_DT_INT32, 2, shape, 0, &o, &a));
    CHECK_EQ(pshm_array_shape(a)[1], 5);
    CHECK_EQ(pshm_block_lifetime(pshm_array_block(a)), PSHM_PERSIST);
    MPI_Barrier(MPI_COMM_WORLD);
    if (pshm_mpi_job_node_rank(job) == 0)
        CHECK_OK(pshm_block_unlink(pshm_array_block(a)));
    CHECK_OK(pshm_array_close(a));
    /* a bad dtype is the creator's error, the same on every rank */
    CHECK_ERR(pshm_mpi_array_create(job, name, "<x9", 2, shape, 0, NULL, &a), -PSHM_EARRAY_DTYPE);
}

/* Random shapes and dtypes; random hyperslabs (also spanning nodes) written
 * by one rank at a time and read by every rank, against the reference. */
static void hyperslabs(void)
{
    static const char *dtypes[] = {"|u1", "<i2", "<u4", "<f8", "<c16", "|S5", "<U3", "|b1",
                                   "<f2", "<i8"};
    uint64_t shared = seed, mine = seed ^ (UINT64_C(0x51ed2701) * (uint64_t)(pshm_mpi_job_rank(job) + 1));
    int rounds = getenv("PSHM_SOAK") ? 120 : 30, arrays = getenv("PSHM_SOAK") ? 60 : 14;
    int size = pshm_mpi_job_size(job), rank = pshm_mpi_job_rank(job);

    for (int t = 0; t < arrays; t++) {
        struct ref r = {0};
        char tag[32];
        pshm_mpi_darray *a = NULL;
        const char *dt = dtypes[mt_range(&shared, 0, 9)];
        r.ndim = (int)mt_range(&shared, 1, MAXD);
        r.shape[0] = mt_range(&shared, 0, 13);
        for (int d = 1; d < r.ndim; d++)
            r.shape[d] = mt_range(&shared, 0, 12) == 0 ? 0 : mt_range(&shared, 1, 6);
        snprintf(tag, sizeof tag, "h%d", t);
        CHECK_OK(pshm_mpi_darray_create(job, mt_name(tag), dt, r.ndim, r.shape, NULL, &a));
        r.itemsize = pshm_mpi_darray_dtype(a)->itemsize;
        r.nbytes = (size_t)nsel(r.ndim, r.shape) * r.itemsize;
        r.bytes = calloc(1, r.nbytes + 1);
        CHECK(r.bytes);

        /* the slabs cover the array, in node order */
        int64_t next = 0;
        for (int j = 0; j < pshm_mpi_job_nodes(job); j++) {
            int64_t f, n;
            CHECK_OK(pshm_mpi_darray_rows(a, j, &f, &n));
            CHECK_EQ(f, next);
            next = f + n;
        }
        CHECK_EQ(next, r.shape[0]);

        for (int round = 0; round < rounds; round++) {
            int64_t start[MAXD], count[MAXD], step[MAXD];
            int writer = round % size;
            const int64_t *ustep = rand_slab(&shared, &r, start, count, step);
            size_t n = (size_t)nsel(r.ndim, count) * r.itemsize;
            unsigned char *w = malloc(n + 1);
            fill_rand(&shared, w, n);
            if (rank == writer) {
                CHECK_OK(pshm_mpi_darray_put(a, start, count, ustep, w));
                if (round % 3 == 0)
                    CHECK_OK(pshm_mpi_darray_flush(a));
            }
            ref_xfer(&r, start, count, step, w, 1);
            free(w);
            CHECK_OK(pshm_mpi_darray_sync(a));

            /* every rank reads a hyperslab of its own choosing */
            ustep = rand_slab(&mine, &r, start, count, step);
            n = (size_t)nsel(r.ndim, count) * r.itemsize;
            unsigned char *got = malloc(n + 1), *want = malloc(n + 1);
            memset(got, 0xa5, n);
            CHECK_OK(pshm_mpi_darray_get(a, start, count, ustep, got));
            ref_xfer(&r, start, count, step, want, 0);
            if (memcmp(got, want, n) != 0) {
                size_t bad = 0;
                while (got[bad] == want[bad])
                    bad++;
                for (int d = 0; d < r.ndim; d++)
                    fprintf(stderr, "rank %d: axis %d: shape %lld start %lld count %lld step %lld\n",
                            rank, d, (long long)r.shape[d], (long long)start[d],
                            (long long)count[d], (long long)step[d]);
                MT_FAIL("array %d (%s, ndim %d) round %d: get differs from the reference at "
                        "byte %zu of %zu", t, dt, r.ndim, round, bad, n);
            }
            free(got);
            free(want);
            /* the next round's writer must not overwrite what others read */
            CHECK_OK(pshm_mpi_darray_sync(a));
        }
        /* the local slab, through the zero-copy view, is the reference's rows */
        int64_t f, nrows;
        CHECK_OK(pshm_mpi_darray_rows(a, pshm_mpi_job_node(job), &f, &nrows));
        if (nrows > 0 && r.nbytes > 0) {
            int64_t start[MAXD] = {f}, count[MAXD] = {nrows}, strides[MAXD];
            void *p = NULL;
            for (int d = 1; d < r.ndim; d++)
                count[d] = r.shape[d];
            CHECK_OK(pshm_mpi_darray_view(a, start, count, NULL, &p, strides));
            CHECK(p == pshm_array_data(pshm_mpi_darray_local(a)));
            CHECK_EQ(strides[r.ndim - 1], (int64_t)r.itemsize);
            size_t rowb = r.nbytes / (size_t)r.shape[0];
            CHECK(memcmp(p, r.bytes + (size_t)f * rowb, (size_t)nrows * rowb) == 0);
        }
        CHECK_OK(pshm_mpi_darray_sync(a));
        CHECK_OK(pshm_mpi_darray_close(a));
        free(r.bytes);
    }
}

/* Views are zero-copy and strided; a store through one is seen remotely
 * after sync; a local process that is not in the job sees it by name. */
static void views_and_local_processes(void)
{
    int64_t shape[3] = {10, 4, 3}, start[3], count[3], step[3], strides[3];
    pshm_mpi_darray *a = NULL;
    int node = pshm_mpi_job_node(job), nodes = pshm_mpi_job_nodes(job);
    int64_t f, n;
    void *p;

    CHECK_OK(pshm_mpi_darray_create(job, mt_name("views"), "<i4", 3, shape, NULL, &a));
    CHECK_OK(pshm_mpi_darray_rows(a, node, &f, &n));
    CHECK(n > 0);
    /* element (i, j, k) = i*100 + j*10 + k, stored by each node's first
     * rank through a view of its whole slab */
    if (pshm_mpi_job_node_rank(job) == 0) {
        int64_t s0[3] = {f, 0, 0}, c0[3] = {n, 4, 3};
        CHECK_OK(pshm_mpi_darray_view(a, s0, c0, NULL, &p, strides));
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 3; k++)
                    *(int32_t *)((char *)p + i * strides[0] + j * strides[1] + k * strides[2]) =
                        (int32_t)((f + i) * 100 + j * 10 + k);
    }
    CHECK_OK(pshm_mpi_darray_sync(a));
    /* a strided view: every other row, column 1.., last channel */
    start[0] = f, start[1] = 1, start[2] = 2;
    count[0] = (n + 1) / 2, count[1] = 3, count[2] = 1;
    step[0] = 2, step[1] = 1, step[2] = 1;
    CHECK_OK(pshm_mpi_darray_view(a, start, count, step, &p, strides));
    CHECK_EQ(strides[0], 2 * 4 * 3 * 4);
    for (int64_t i = 0; i < count[0]; i++)
        for (int j = 0; j < 3; j++)
            CHECK_EQ(*(int32_t *)((char *)p + i * strides[0] + j * strides[1]),
                     (f + 2 * i) * 100 + (1 + j) * 10 + 2);
    /* not local: a row of another node */
    start[0] = node == 0 ? shape[0] - 1 : 0, count[0] = 1;
    CHECK_ERR(pshm_mpi_darray_view(a, start, count, NULL, &p, NULL), -PSHM_EMPI_NOTLOCAL);
    /* out of bounds, bad step */
    start[0] = 9, count[0] = 2;
    CHECK_ERR(pshm_mpi_darray_view(a, start, count, NULL, &p, NULL), -PSHM_EMPI_BOUNDS);
    int32_t buf[64];
    CHECK_ERR(pshm_mpi_darray_get(a, start, count, NULL, buf), -PSHM_EMPI_BOUNDS);
    start[0] = 0, count[0] = 1, step[0] = 0;
    CHECK_ERR(pshm_mpi_darray_get(a, start, count, step, buf), -EINVAL);
    /* a whole remote column through get: every row, j = 3, k = 0 */
    int64_t s1[3] = {0, 3, 0}, c1[3] = {10, 1, 1};
    CHECK_OK(pshm_mpi_darray_get(a, s1, c1, NULL, buf));
    for (int i = 0; i < 10; i++)
        CHECK_EQ(buf[i], i * 100 + 30);

    /* a process outside the job opens this node's slab by name */
    if (pshm_mpi_job_node_rank(job) == 0) {
        const char *slab = pshm_block_name(pshm_array_block(pshm_mpi_darray_local(a)));
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            pshm_array *la = NULL;
            int ok = pshm_array_open(slab, NULL, &la) == 0 && pshm_array_shape(la)[0] == n &&
                     strcmp(pshm_array_descr(la), "<i4") == 0 &&
                     ((int32_t *)pshm_array_data(la))[5] == (int32_t)(f * 100 + 12);
            pshm_array_close(la);
            _exit(ok ? 0 : 1);
        }
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    (void)nodes;
    CHECK_OK(pshm_mpi_darray_close(a));
}

/* Failures are collective: a creator's -EEXIST on one node fails every
 * rank, and the slabs made on the other nodes are removed again. */
static void darray_failures(void)
{
    const char *name = mt_name("taken");
    char nn[PSHM_NAME_MAX + 1], other[PSHM_NAME_MAX + 1];
    int64_t shape[1] = {8};
    pshm_mpi_darray *a = (pshm_mpi_darray *)1;
    pshm_block *squat = NULL;
    pshm_block_info bi;

    CHECK_OK(pshm_mpi_node_name(job, 1, name, nn, sizeof nn, NULL));
    CHECK_OK(pshm_mpi_node_name(job, 0, name, other, sizeof other, NULL));
    if (pshm_mpi_job_rank(job) == 0)
        CHECK_OK(pshm_block_create(nn, 64, NULL, &squat)); /* node 1's name is taken */
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_ERR(pshm_mpi_darray_create(job, name, "<f8", 1, shape, NULL, &a), -EEXIST);
    CHECK(a == NULL);
    pshm_block_info_init(&bi);
    CHECK_ERR(pshm_block_stat(other, &bi), -ENOENT); /* node 0's slab was removed */
    MPI_Barrier(MPI_COMM_WORLD);
    if (squat) {
        CHECK_OK(pshm_block_unlink(squat));
        pshm_block_close(squat);
    }
    /* different shapes on different ranks */
    shape[0] = 8 + pshm_mpi_job_rank(job);
    CHECK_ERR(pshm_mpi_darray_create(job, name, "<f8", 1, shape, NULL, &a), -PSHM_EMPI_MISMATCH);
    shape[0] = 8;
    pshm_mpi_options o;
    pshm_mpi_options_init(&o);
    o.readonly = 1;
    CHECK_ERR(pshm_mpi_darray_create(job, name, "<f8", 1, shape, &o, &a), -EINVAL);
    int64_t bad[1] = {-1};
    CHECK_ERR(pshm_mpi_darray_create(job, name, "<f8", 1, bad, NULL, &a), -PSHM_EARRAY_SHAPE);
}

/* A larger contiguous transfer across the node boundary (several RMA ops
 * of plain bytes) and a random-named darray. */
static void big(void)
{
    int64_t shape[2] = {64, 16384}; /* 64 x 16384 float64 = 8 MiB */
    pshm_mpi_darray *a = NULL;
    CHECK_OK(pshm_mpi_darray_create(job, NULL, "<f8", 2, shape, NULL, &a));
    CHECK(strncmp(pshm_mpi_darray_name(a), "psm_", 4) == 0);
    size_t n = 64 * 16384;
    double *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
    CHECK(w && g);
    for (size_t i = 0; i < n; i++)
        w[i] = (double)i * 0.5;
    int64_t s[2] = {0, 0};
    if (pshm_mpi_job_rank(job) == pshm_mpi_job_size(job) - 1)
        CHECK_OK(pshm_mpi_darray_put(a, s, shape, NULL, w));
    CHECK_OK(pshm_mpi_darray_sync(a));
    CHECK_OK(pshm_mpi_darray_get(a, s, shape, NULL, g));
    CHECK(memcmp(w, g, n * sizeof *w) == 0);
    free(w);
    free(g);
    CHECK_OK(pshm_mpi_darray_close(a));
}

/* kB of the mapping holding p that this process has mapped (smaps Rss),
 * or -1 when no mapping holds it. */
static long mapped_kb(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        /* a mapping's first line starts with its lowercase hex address,
         * its fields with a capital letter */
        if (!(line[0] >= 'A' && line[0] <= 'Z') && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/* Every rank's mapping of its slab is populated at create (other nodes
 * read through it: pshm_mpi_darray_create), though nobody wrote it. */
static void slab_mapped(void)
{
    int64_t shape[1] = {(int64_t)pshm_mpi_job_nodes(job) * (8 << 20)};
    pshm_mpi_darray *a = NULL;
    CHECK_OK(pshm_mpi_darray_create(job, mt_name("mapped"), "|u1", 1, shape, NULL, &a));
    long kb = mapped_kb(pshm_array_data(pshm_mpi_darray_local(a)));
    if (kb < 8 << 10)
        MT_FAIL("rank %d: %ld kB of its 8 MiB slab mapped", pshm_mpi_job_rank(job), kb);
    CHECK_OK(pshm_mpi_darray_close(a));
}

/* flush alone (no sync) completes puts at their targets: a writer puts
 * into every other node's rows in many small puts (a transport may hold
 * small ones back until a flush: osc/pt2pt packs them), flushes, and tells
 * each rank of those nodes by a message; they read their own slab directly
 * and must see every byte. */
static void flush_then_message(void)
{
    int64_t shape[2] = {12, 40};
    pshm_mpi_darray *a = NULL;
    int size = pshm_mpi_job_size(job), rank = pshm_mpi_job_rank(job);
    int me = pshm_mpi_job_node(job);
    CHECK_OK(pshm_mpi_darray_create(job, mt_name("flush"), "|u1", 2, shape, NULL, &a));
    for (int w = 0; w < size; w++) {
        int wnode;
        MPI_Allreduce(rank == w ? &me : &(int){-1}, &wnode, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        for (int round = 0; round < 4; round++) {
            unsigned char v = (unsigned char)(1 + w * 16 + round);
            if (rank == w) {
                unsigned char row[40];
                memset(row, v, sizeof row);
                for (int j = 0; j < pshm_mpi_job_nodes(job); j++) {
                    int64_t f, n;
                    CHECK_OK(pshm_mpi_darray_rows(a, j, &f, &n));
                    for (int64_t r = f; j != me && r < f + n; r++)
                        for (int64_t c = 0; c < 40; c += 8) { /* 8-byte puts */
                            int64_t st[2] = {r, c}, cnt[2] = {1, 8};
                            CHECK_OK(pshm_mpi_darray_put(a, st, cnt, NULL, row));
                        }
                }
                CHECK_OK(pshm_mpi_darray_flush(a));
                for (int q = 0; q < size; q++) {
                    int qnode;
                    MPI_Sendrecv(&me, 0, MPI_INT, q, 90, &qnode, 0, MPI_INT, q, 90,
                                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                }
            } else {
                MPI_Sendrecv(&me, 0, MPI_INT, w, 90, &v, 0, MPI_INT, w, 90, MPI_COMM_WORLD,
                             MPI_STATUS_IGNORE);
                v = (unsigned char)(1 + w * 16 + round);
                int64_t f, n, strides[2];
                CHECK_OK(pshm_mpi_darray_rows(a, me, &f, &n));
                if (me != wnode && n > 0) {
                    int64_t st[2] = {f, 0}, cnt[2] = {n, 40};
                    void *p;
                    CHECK_OK(pshm_mpi_darray_view(a, st, cnt, NULL, &p, strides));
                    for (int64_t i = 0; i < n * 40; i++) {
                        unsigned char got = ((volatile unsigned char *)p)[i];
                        if (got != v)
                            MT_FAIL("writer %d round %d: byte %lld of node %d's slab is %d, "
                                    "want %d: the flush did not complete the puts",
                                    w, round, (long long)i, me, got, v);
                    }
                }
            }
            MPI_Barrier(MPI_COMM_WORLD); /* everyone checked before the next round */
        }
    }
    CHECK_OK(pshm_mpi_darray_sync(a));
    CHECK_OK(pshm_mpi_darray_close(a));
}

int main(int argc, char **argv)
{
    mt_init(&argc, &argv);
    CHECK_OK(pshm_mpi_job_open(MPI_COMM_WORLD, NULL, &job));
    seed = mt_seed("test_mpi_darray");
    MT_RUN(layout);
    MT_RUN(node_blocks);
    MT_RUN(node_arrays);
    MT_RUN(hyperslabs);
    MT_RUN(flush_then_message);
    MT_RUN(views_and_local_processes);
    MT_RUN(darray_failures);
    MT_RUN(big);
    MT_RUN(slab_mapped);
    CHECK_OK(pshm_mpi_job_close(job));
    return mt_finish();
}
