// SPDX-License-Identifier: MIT
/*
 * queue_map.c - one mapping of a queue per process, shared by its handles.
 *
 * Every queue handle needs its own descriptor (its liveness lock is an OFD
 * lock, which belongs to the open file description), but not its own
 * mapping. Handles used to work through their block's own mapping, one per
 * handle, and a process with many handles on one queue (the MPI bridge
 * holds one per message in flight) paid for that on every message: each
 * page of the ring was faulted in, and its translation cached, once per
 * handle (on the development VM the first pass over a ring through 64
 * mappings cost 70 us a cell against 1 us through one; bench_mpmc). Now
 * the handles of one process share one mapping of the queue's file,
 * counted, keyed by the file's identity (device, inode): a queue unlinked
 * and created again under the same name is another file and gets its own.
 *
 * The first handle's block gives its mapping to the list (with its
 * prefault and huge-page advice); the blocks of later handles unmap theirs
 * and use it, so pshm_block_data(pshm_queue_block(q)) is still the queue's
 * memory. The mapping goes when the last handle of the process closes.
 *
 * Fork: the child inherits the list and the mappings. A handle the child
 * inherited is only unmapped when the child closes it (queue.c), which
 * drops its count here; entries made by another process are never reused,
 * so a child's own handles get a mapping of their own.
 */
#include "queue_internal.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct qmap {
    struct qmap *next;
    dev_t dev;
    ino_t ino;
    size_t size;
    pid_t pid;
    unsigned refs;
    unsigned char *base;
};

static pthread_mutex_t qmap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t qmap_once = PTHREAD_ONCE_INIT;
static struct qmap *qmaps;

/* A fork while another thread holds the lock must not leave the child a
 * locked mutex. */
static void qmap_prefork(void) { PSHM__CHECK(pthread_mutex_lock(&qmap_lock)); }
static void qmap_postfork(void) { PSHM__CHECK(pthread_mutex_unlock(&qmap_lock)); }
static void qmap_init(void) { (void)pthread_atfork(qmap_prefork, qmap_postfork, qmap_postfork); }

int pshm__q_map(pshm_block *blk, struct qmap **out)
{
    struct stat st;
    struct qmap *m;
    size_t size = pshm_block_size(blk);
    pid_t me = getpid();
    int r = 0;

    *out = NULL;
    if (fstat(pshm_block_fd(blk), &st) != 0)
        return -errno;
    (void)pthread_once(&qmap_once, qmap_init);
    PSHM__CHECK(pthread_mutex_lock(&qmap_lock));
    for (m = qmaps; m; m = m->next)
        if (m->dev == st.st_dev && m->ino == st.st_ino && m->size == size && m->pid == me)
            break;
    if (m) {
        m->refs++;
        pshm__block_use_map(blk, m->base);
    } else if ((m = calloc(1, sizeof *m)) != NULL) {
        m->dev = st.st_dev;
        m->ino = st.st_ino;
        m->size = size;
        m->pid = me;
        m->refs = 1;
        m->base = pshm__block_take_map(blk);
        m->next = qmaps;
        qmaps = m;
    } else {
        r = -ENOMEM;
    }
    PSHM__CHECK(pthread_mutex_unlock(&qmap_lock));
    *out = m;
    return r;
}

void pshm__q_unmap(struct qmap *m)
{
    if (!m)
        return;
    PSHM__CHECK(pthread_mutex_lock(&qmap_lock));
    if (--m->refs == 0) {
        struct qmap **pp = &qmaps;
        while (*pp != m)
            pp = &(*pp)->next;
        *pp = m->next;
        munmap(m->base, m->size);
        free(m);
    }
    PSHM__CHECK(pthread_mutex_unlock(&qmap_lock));
}
