/* SPDX-License-Identifier: MIT */
/* node.c - one object per node in one collective call: the node's first
 * rank creates it, the others attach, all agree before anyone returns. */
#include "mpi_internal.h"

#include <stdlib.h>

int pshm_mpi__options(const pshm_mpi_options *in, pshm_mpi_options *out)
{
    pshm_mpi_options_init(out);
    if (!in)
        return 0;
    if (in->struct_size == 0)
        return -EINVAL;
    memcpy(out, in, in->struct_size < sizeof *out ? in->struct_size : sizeof *out);
    out->struct_size = sizeof *out;
    return 0;
}

void pshm_mpi__block_options(const pshm_mpi_options *o, pshm_block_options *b, int creator)
{
    pshm_block_options_init(b);
    b->mode = o->mode;
    b->lifetime = o->lifetime;
    b->readonly = creator ? 0 : o->readonly;
    b->open_existing = o->open_existing;
    b->prefault = o->prefault;
    b->huge_pages = o->huge_pages;
    b->sparse = o->sparse;
    /* A PERSIST object has no holders to watch: the default watch = 1 is
     * dropped rather than turned into -EINVAL. */
    b->watch = o->lifetime == PSHM_PERSIST ? 0 : o->watch;
    b->open_timeout_ms = o->open_timeout_ms;
}

uint64_t pshm_mpi__options_hash(uint64_t h, const pshm_mpi_options *o)
{
    int v[9] = {(int)o->mode, (int)o->lifetime, o->readonly, o->open_existing, o->prefault,
                o->huge_pages, o->sparse, o->watch, (int)o->open_timeout_ms};
    return pshm_mpi__hash(h, v, sizeof v);
}

int pshm_mpi__begin(const char *kind, const char *name, const pshm_mpi_options *opt,
                    pshm_mpi_options *o, uint64_t *h)
{
    int rc = pshm_mpi__options(opt, o);
    *h = pshm_mpi__hash_str(PSHM_MPI__HASH0, kind);
    *h = pshm_mpi__hash_str(*h, name);
    *h = pshm_mpi__options_hash(*h, o);
    return rc;
}

uint64_t pshm_mpi__hash_array(uint64_t h, const char *descr, int ndim, const int64_t *shape)
{
    h = pshm_mpi__hash_str(h, descr);
    h = pshm_mpi__hash(h, &ndim, sizeof ndim);
    return pshm_mpi__hash(h, shape, sizeof *shape * (size_t)(ndim > 0 ? ndim : 0));
}

/* What the node creates: a raw block, or an array. */
struct node_obj {
    size_t size;                     /* block */
    const char *descr;               /* array */
    int ndim, fortran_order;
    const int64_t *shape;
    pshm_block *blk;
    pshm_array *arr;
};

static pshm_block *obj_block(const struct node_obj *ob)
{
    return ob->arr ? pshm_array_block(ob->arr) : ob->blk;
}

static int obj_make(struct node_obj *ob, const char *nn, const pshm_block_options *bo,
                    int creator)
{
    if (ob->descr) {
        if (creator)
            return pshm_array_create(nn, ob->descr, ob->ndim, ob->shape, ob->fortran_order, bo,
                                     &ob->arr);
        return pshm_array_open(nn, bo, &ob->arr);
    }
    if (creator)
        return pshm_block_create(nn, ob->size, bo, &ob->blk);
    return pshm_block_open(nn, bo, &ob->blk);
}

/* Undo a failed collective create: the creator removes the name (only if
 * this call created it), then everyone closes. */
static void obj_drop(struct node_obj *ob)
{
    pshm_block *b = obj_block(ob);
    if (b && pshm_block_created(b))
        pshm_block_unlink(b);
    if (ob->arr)
        pshm_array_close(ob->arr);
    else
        pshm_block_close(ob->blk);
    ob->arr = NULL;
    ob->blk = NULL;
}

static int node_create(pshm_mpi_job *job, const char *name, const pshm_mpi_options *opt,
                       uint64_t hash, struct node_obj *ob)
{
    char nn[PSHM_NAME_MAX + 1];
    pshm_block_options bo;
    int rc;

    rc = pshm_mpi_node_name(job, job->node, name, nn, sizeof nn, NULL);
    /* Everyone checks arguments and names before anything is made. */
    rc = pshm_mpi__agree(job->comm, rc, hash);
    if (rc != 0)
        return rc;
    if (job->node_rank == 0) {
        pshm_mpi__block_options(opt, &bo, 1);
        rc = obj_make(ob, nn, &bo, 1);
    }
    int e = MPI_Bcast(&rc, 1, MPI_INT, 0, job->node_comm);
    if (e != MPI_SUCCESS && rc == 0)
        rc = pshm_mpi_error(e);
    if (job->node_rank != 0 && rc == 0) {
        pshm_mpi__block_options(opt, &bo, 0);
        rc = obj_make(ob, nn, &bo, 0);
    }
    rc = pshm_mpi__agree(job->comm, rc, 0);
    if (rc != 0) {
        obj_drop(ob);
        MPI_Barrier(job->comm); /* nobody returns before everything is gone */
    }
    return rc;
}

int pshm_mpi_block_create(pshm_mpi_job *job, const char *name, size_t size,
                          const pshm_mpi_options *opt, pshm_block **out)
{
    pshm_mpi_options o;
    struct node_obj ob = {.size = size};
    uint64_t h;
    int rc;

    if (!job)
        return -EINVAL;
    if (out)
        *out = NULL;
    rc = pshm_mpi__begin("block", name, opt, &o, &h);
    if (rc == 0 && (!name || !out || size == 0))
        rc = -EINVAL;
    h = pshm_mpi__hash(h, &size, sizeof size);
    if (rc != 0) {
        pshm_mpi__agree(job->comm, rc, h); /* the others must not wait for us */
        return rc;
    }
    rc = node_create(job, name, &o, h, &ob);
    if (rc == 0)
        *out = ob.blk;
    return rc;
}

int pshm_mpi__node_array(pshm_mpi_job *job, const char *name, const char *descr, int ndim,
                         const int64_t *shape, int fortran_order, const pshm_mpi_options *opt,
                         uint64_t hash, pshm_array **out)
{
    struct node_obj ob = {.descr = descr, .ndim = ndim, .shape = shape,
                          .fortran_order = fortran_order};
    int rc = node_create(job, name, opt, hash, &ob);
    if (rc == 0)
        *out = ob.arr;
    return rc;
}

int pshm_mpi_array_create(pshm_mpi_job *job, const char *name, const char *descr, int ndim,
                          const int64_t *shape, int fortran_order, const pshm_mpi_options *opt,
                          pshm_array **out)
{
    pshm_mpi_options o;
    uint64_t h;
    int rc;

    if (!job)
        return -EINVAL;
    if (out)
        *out = NULL;
    rc = pshm_mpi__begin("array", name, opt, &o, &h);
    if (rc == 0 && (!name || !out || !descr || ndim < 0 || ndim > PSHM_ARRAY_MAXDIM ||
                    (ndim > 0 && !shape)))
        rc = -EINVAL;
    if (rc == 0) {
        h = pshm_mpi__hash_array(h, descr, ndim, shape);
        h = pshm_mpi__hash(h, &fortran_order, sizeof fortran_order);
    }
    if (rc != 0) {
        pshm_mpi__agree(job->comm, rc, h);
        return rc;
    }
    return pshm_mpi__node_array(job, name, descr, ndim, shape, fortran_order, &o, h, out);
}
