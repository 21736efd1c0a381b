/* SPDX-License-Identifier: MIT */
/* job.c - the node layout of a communicator (machines, pseudo-nodes), node
 * names, and the agreement step every collective call ends with. */
#include "mpi_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t pshm_mpi__hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

uint64_t pshm_mpi__hash_str(uint64_t h, const char *s)
{
    /* The terminating NUL is hashed too, so "ab"+"c" != "a"+"bc". NULL
     * hashes as a lone 0xff byte, which no string gives. */
    static const unsigned char none = 0xff;
    return s ? pshm_mpi__hash(h, s, strlen(s) + 1) : pshm_mpi__hash(h, &none, 1);
}

int pshm_mpi__agree(MPI_Comm comm, int rc, uint64_t hash)
{
    int rank = 0, e;
    uint64_t in[3], out[3];

    MPI_Comm_rank(comm, &rank);
    /* One allreduce (MIN) answers three questions: the lowest failing rank,
     * and the smallest and largest hash (min of ~h is ~max of h). */
    in[0] = rc != 0 ? (uint64_t)rank : UINT64_MAX;
    in[1] = hash;
    in[2] = ~hash;
    e = MPI_Allreduce(in, out, 3, MPI_UINT64_T, MPI_MIN, comm);
    if (e != MPI_SUCCESS)
        return rc != 0 ? rc : pshm_mpi_error(e);
    if (out[0] != UINT64_MAX) {
        int code = rc;
        e = MPI_Bcast(&code, 1, MPI_INT, (int)out[0], comm);
        if (e != MPI_SUCCESS)
            return rc != 0 ? rc : pshm_mpi_error(e);
        return code;
    }
    return out[1] == ~out[2] ? 0 : -PSHM_EMPI_MISMATCH;
}

/* PSHM_MPI_PSEUDO_NODES: a decimal number, nothing else; unset is 1. */
static int pseudo_from_env(int *k)
{
    const char *s = getenv("PSHM_MPI_PSEUDO_NODES");
    long v = 0;

    *k = 1;
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > INT_MAX / 10)
            return -PSHM_EMPI_PSEUDO;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > INT_MAX)
        return -PSHM_EMPI_PSEUDO;
    *k = (int)v;
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Number the nodes by their lowest rank; fill node_off / node_ranks. */
static int layout(pshm_mpi_job *job)
{
    int leader = job->rank, e, *leaders = NULL, *uniq = NULL;
    int n = job->size, nn = 0, rc = 0;

    e = MPI_Allreduce(&job->rank, &leader, 1, MPI_INT, MPI_MIN, job->node_comm);
    if (e != MPI_SUCCESS)
        return pshm_mpi_error(e);
    leaders = malloc(sizeof(int) * (size_t)n);
    uniq = malloc(sizeof(int) * (size_t)n);
    job->node_off = calloc((size_t)n + 1, sizeof(int));
    job->node_ranks = malloc(sizeof(int) * (size_t)n);
    if (!leaders || !uniq || !job->node_off || !job->node_ranks) {
        rc = -ENOMEM;
        goto out;
    }
    e = MPI_Allgather(&leader, 1, MPI_INT, leaders, 1, MPI_INT, job->comm);
    if (e != MPI_SUCCESS) {
        rc = pshm_mpi_error(e);
        goto out;
    }
    memcpy(uniq, leaders, sizeof(int) * (size_t)n);
    qsort(uniq, (size_t)n, sizeof(int), cmp_int);
    for (int i = 0; i < n; i++)
        if (i == 0 || uniq[i] != uniq[i - 1])
            uniq[nn++] = uniq[i];
    job->nodes = nn;
    /* node of each rank: the index of its leader among the sorted leaders */
    for (int r = 0; r < n; r++) {
        int *hit = bsearch(&leaders[r], uniq, (size_t)nn, sizeof(int), cmp_int);
        leaders[r] = (int)(hit - uniq);
        job->node_off[leaders[r] + 1]++;
    }
    for (int j = 0; j < nn; j++)
        job->node_off[j + 1] += job->node_off[j];
    for (int j = 0, *fill = uniq; j < nn; j++)
        fill[j] = job->node_off[j];
    for (int r = 0; r < n; r++)
        job->node_ranks[uniq[leaders[r]]++] = r;
    job->node = leaders[job->rank];
out:
    free(leaders);
    free(uniq);
    return rc;
}

static void job_free(pshm_mpi_job *job)
{
    if (job->node_comm != MPI_COMM_NULL)
        MPI_Comm_free(&job->node_comm);
    if (job->comm != MPI_COMM_NULL)
        MPI_Comm_free(&job->comm);
    free(job->node_off);
    free(job->node_ranks);
    free(job);
}

int pshm_mpi_job_open(MPI_Comm comm, const pshm_mpi_job_options *opt, pshm_mpi_job **out)
{
    pshm_mpi_job *job;
    MPI_Comm machine = MPI_COMM_NULL;
    int inited = 0, finalized = 0, inter = 0, e, rc, k, mrank, msize, minsize;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (MPI_Initialized(&inited) != MPI_SUCCESS || !inited ||
        MPI_Finalized(&finalized) != MPI_SUCCESS || finalized)
        return -PSHM_EMPI_NOTINIT;
    if (comm == MPI_COMM_NULL || MPI_Comm_test_inter(comm, &inter) != MPI_SUCCESS || inter)
        return -EINVAL;
    if (opt && opt->struct_size == 0)
        return -EINVAL;
    job = calloc(1, sizeof *job);
    if (!job)
        return -ENOMEM; /* the others then hang in MPI_Comm_dup: as MPI would */
    job->comm = job->node_comm = MPI_COMM_NULL;
    e = MPI_Comm_dup(comm, &job->comm);
    if (e != MPI_SUCCESS) {
        job->comm = MPI_COMM_NULL;
        job_free(job);
        return pshm_mpi_error(e);
    }
    MPI_Comm_set_errhandler(job->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(job->comm, &job->rank);
    MPI_Comm_size(job->comm, &job->size);

    rc = PSHM_MPI__CALL(MPI_Comm_split_type(job->comm, MPI_COMM_TYPE_SHARED, job->rank,
                                            MPI_INFO_NULL, &machine));
    if (rc == 0) {
        MPI_Comm_rank(machine, &mrank);
        MPI_Comm_size(machine, &msize);
        rc = PSHM_MPI__CALL(MPI_Allreduce(&msize, &minsize, 1, MPI_INT, MPI_MIN, job->comm));
    }
    if (rc == 0) {
        int kk = opt && PSHM_MPI__HAS(opt, pseudo_nodes) ? opt->pseudo_nodes : 0;
        if (kk != 0)
            k = kk;
        else
            rc = pseudo_from_env(&k);
        if (rc == 0 && (k < 1 || k > minsize))
            rc = -PSHM_EMPI_PSEUDO;
    }
    /* Every rank must agree on k: a different environment on one rank is a
     * mismatch, not a silently different layout. */
    rc = pshm_mpi__agree(job->comm, rc, pshm_mpi__hash(PSHM_MPI__HASH0, &k, sizeof k));
    if (rc == 0)
        rc = PSHM_MPI__CALL(MPI_Comm_split(machine, (int)((long long)mrank * k / msize),
                                           job->rank, &job->node_comm));
    if (machine != MPI_COMM_NULL)
        MPI_Comm_free(&machine);
    if (rc == 0) {
        MPI_Comm_set_errhandler(job->node_comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(job->node_comm, &job->node_rank);
        MPI_Comm_size(job->node_comm, &job->node_size);
        job->pseudo = k;
        rc = layout(job);
    }
    rc = pshm_mpi__agree(job->comm, rc, 0);
    if (rc != 0) {
        job_free(job);
        return rc;
    }
    *out = job;
    return 0;
}

int pshm_mpi_job_close(pshm_mpi_job *job)
{
    if (job)
        job_free(job);
    return 0;
}

int pshm_mpi_job_rank(const pshm_mpi_job *job) { return job ? job->rank : -1; }
int pshm_mpi_job_size(const pshm_mpi_job *job) { return job ? job->size : -1; }
int pshm_mpi_job_node(const pshm_mpi_job *job) { return job ? job->node : -1; }
int pshm_mpi_job_nodes(const pshm_mpi_job *job) { return job ? job->nodes : -1; }
int pshm_mpi_job_node_rank(const pshm_mpi_job *job) { return job ? job->node_rank : -1; }
int pshm_mpi_job_node_size(const pshm_mpi_job *job) { return job ? job->node_size : -1; }
int pshm_mpi_job_pseudo_nodes(const pshm_mpi_job *job) { return job ? job->pseudo : -1; }
MPI_Comm pshm_mpi_job_comm(const pshm_mpi_job *job) { return job ? job->comm : MPI_COMM_NULL; }
MPI_Comm pshm_mpi_job_node_comm(const pshm_mpi_job *job)
{
    return job ? job->node_comm : MPI_COMM_NULL;
}

int pshm_mpi_job_node_leader(const pshm_mpi_job *job, int node, int *rank)
{
    if (!job || !rank || node < 0 || node >= job->nodes)
        return -EINVAL;
    *rank = job->node_ranks[job->node_off[node]];
    return 0;
}

int pshm_mpi_node_name(const pshm_mpi_job *job, int node, const char *name, char *buf,
                       size_t cap, size_t *len)
{
    char tmp[PSHM_NAME_MAX + 32];
    int n, rc;

    if (!job || !name || node < 0 || node >= job->nodes || (!buf && cap))
        return -EINVAL;
    if (name[0] == '/')
        name++; /* pshm's names: one leading slash is accepted and dropped */
    rc = pshm_name_check(name, strlen(name));
    if (rc != 0)
        return rc;
    if (job->pseudo > 1)
        n = snprintf(tmp, sizeof tmp, "%s.pn%d", name, node);
    else
        n = snprintf(tmp, sizeof tmp, "%s", name);
    if (n < 0 || (size_t)n >= sizeof tmp || (size_t)n > PSHM_NAME_MAX)
        return -PSHM_ENAME_LONG;
    if (len)
        *len = (size_t)n;
    if (!buf)
        return 0;
    if (cap == 0)
        return -ERANGE;
    snprintf(buf, cap, "%s", tmp);
    return (size_t)n < cap ? 0 : -ERANGE;
}
