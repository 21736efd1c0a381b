/* SPDX-License-Identifier: MIT */
/* mpi_internal.h - what the files of libpshm_mpi share (pshm_mpi__ names are
 * never exported). libpshm_mpi uses libpshm only through pshm.h. */
#ifndef PSHM_MPI_INTERNAL_H
#define PSHM_MPI_INTERNAL_H

#include "pshm_mpi.h"

#include <errno.h>
#include <stdint.h>

#define PSHM_MPI__HIDDEN __attribute__((visibility("hidden")))

struct pshm_mpi_job {
    MPI_Comm comm;      /* duplicate of the caller's, MPI_ERRORS_RETURN */
    MPI_Comm node_comm; /* the ranks of this (pseudo-)node */
    int rank, size;
    int node, nodes;
    int node_rank, node_size;
    int pseudo;         /* pseudo-nodes per machine (1: none) */
    int *node_off;      /* nodes + 1 offsets into node_ranks */
    int *node_ranks;    /* job ranks, grouped by node, ascending in each */
    unsigned bridges;   /* bridges made so far: gives each its tags */
};

/* Does the caller's struct (of struct_size bytes) reach this field? */
#define PSHM_MPI__HAS(s, field)                                                 \
    ((s)->struct_size >= offsetof(__typeof__(*(s)), field) + sizeof((s)->field))

/* The code of an MPI return value; MPI_SUCCESS is 0. */
#define PSHM_MPI__CALL(expr) pshm_mpi_error(expr)

/* FNV-1a over bytes, chained from h (start with PSHM_MPI__HASH0). */
#define PSHM_MPI__HASH0 UINT64_C(0xcbf29ce484222325)
PSHM_MPI__HIDDEN uint64_t pshm_mpi__hash(uint64_t h, const void *p, size_t n);
PSHM_MPI__HIDDEN uint64_t pshm_mpi__hash_str(uint64_t h, const char *s);

/*
 * pshm_mpi__agree: collective over comm. Every rank passes its own result
 * rc and (for argument checks) a hash of its arguments; every rank gets
 * back the same code: the rc of the lowest rank whose rc is not 0, else
 * -PSHM_EMPI_MISMATCH if the hashes differ, else 0. It is also a barrier.
 * If MPI itself fails, the rank's rc, or the MPI error's code.
 */
PSHM_MPI__HIDDEN int pshm_mpi__agree(MPI_Comm comm, int rc, uint64_t hash);

/* The caller's options (NULL: defaults) as a whole struct of this build:
 * fields past its struct_size keep their defaults. -EINVAL if struct_size
 * is 0. */
PSHM_MPI__HIDDEN int pshm_mpi__options(const pshm_mpi_options *in, pshm_mpi_options *out);
/* The start of every node-collective create: *o from opt (as above), *h a
 * hash of the call's kind, its name and the options. Returns 0 or -EINVAL. */
PSHM_MPI__HIDDEN int pshm_mpi__begin(const char *kind, const char *name,
                                    const pshm_mpi_options *opt, pshm_mpi_options *o,
                                    uint64_t *h);
/* An array's arguments, into the hash. */
PSHM_MPI__HIDDEN uint64_t pshm_mpi__hash_array(uint64_t h, const char *descr, int ndim,
                                              const int64_t *shape);
/* ... as pshm_block_options for the creating rank or an attacher. */
PSHM_MPI__HIDDEN void pshm_mpi__block_options(const pshm_mpi_options *o, pshm_block_options *out,
                                             int creator);
PSHM_MPI__HIDDEN uint64_t pshm_mpi__options_hash(uint64_t h, const pshm_mpi_options *o);

/* The node-collective create of an array (pshm_mpi_array_create's body,
 * also used for darray slabs, whose shape differs per node). */
PSHM_MPI__HIDDEN int pshm_mpi__node_array(pshm_mpi_job *job, const char *name, const char *descr,
                                         int ndim, const int64_t *shape, int fortran_order,
                                         const pshm_mpi_options *opt, uint64_t hash,
                                         pshm_array **out);

/* The ranks of node j, and how many. */
static inline const int *pshm_mpi__node_ranks(const pshm_mpi_job *job, int j, int *n)
{
    *n = job->node_off[j + 1] - job->node_off[j];
    return job->node_ranks + job->node_off[j];
}

#endif
