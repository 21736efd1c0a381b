/* SPDX-License-Identifier: MIT */
/*
 * inspect_internal.h - reading another process's object without trusting
 * it: the by-name stat functions (pshm_list_stat, pshm_array_stat,
 * pshm_queue_stat, ...) open the object read-only and copy bytes out with
 * pread. They never map it (a peer that shrinks the object would turn a
 * read through a mapping into SIGBUS; pread just comes back short), never
 * take its hold lock (an open never waits on a peer, and looking never
 * makes us a holder or removes a stale block), and never block on a FIFO
 * (O_NONBLOCK, O_NOFOLLOW, regular files only).
 */
#ifndef PSHM_INSPECT_INTERNAL_H
#define PSHM_INSPECT_INTERNAL_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Open the object `name` (a user-facing name: checked and normalised) for
 * reading. Returns 0, the descriptor (close it) and the object's size now,
 * or -PSHM_ENAME_*, -ENOENT, -EACCES, -PSHM_EFTYPE (not a regular object,
 * or replaced by one that is not between the looks), -EMFILE, ...
 */
PSHM__HIDDEN int pshm__inspect_open(const char *name, int *fd, uint64_t *size);

/*
 * Read up to n bytes at off into buf (private memory), retrying short reads
 * and EINTR. *got = the bytes read: fewer than n only at the object's end
 * (which a peer may have moved since its size was taken). Returns 0 or
 * -errno.
 */
PSHM__HIDDEN int pshm__inspect_read(int fd, void *buf, size_t n, uint64_t off, size_t *got);

/* The object's size now (fstat): what an opener checks its header against,
 * since a peer may have shrunk the object after it was mapped. Returns 0 or
 * -errno. */
PSHM__HIDDEN int pshm__inspect_size(int fd, uint64_t *size);

/* Allocate n bytes aligned to 64 (objects are read into it as they lie in
 * a page-aligned mapping); free with free(). NULL if out of memory. */
PSHM__HIDDEN void *pshm__inspect_alloc(size_t n);

#endif
