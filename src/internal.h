/* SPDX-License-Identifier: MIT */
/* internal.h - what the library's files share and the world does not see. */
#ifndef PSHM_INTERNAL_H
#define PSHM_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pshm.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define PSHM__HIDDEN __attribute__((visibility("hidden")))
#else
#define PSHM__HIDDEN
#endif

/* Impossible failures abort loudly rather than corrupt shared state. */
PSHM__HIDDEN void pshm__panic(const char *what, int err) __attribute__((noreturn));
#define PSHM__CHECK(expr)                                                       \
    do {                                                                        \
        int pshm__rc_ = (expr);                                                 \
        if (pshm__rc_ != 0)                                                     \
            pshm__panic(#expr, pshm__rc_);                                      \
    } while (0)

/*
 * The block options of a sync or queue options struct `o` (a full-size copy):
 * every options struct begins with the block options' fields, same names and
 * types, so this is one list.
 */
#define PSHM__BLOCK_OPTIONS_OF(bo, o)                                           \
    do {                                                                        \
        pshm_block_options_init(bo);                                            \
        (bo)->mode = (o)->mode;                                                 \
        (bo)->lifetime = (o)->lifetime;                                         \
        (bo)->readonly = (o)->readonly;                                         \
        (bo)->open_existing = (o)->open_existing;                               \
        (bo)->prefault = (o)->prefault;                                         \
        (bo)->huge_pages = (o)->huge_pages;                                     \
        (bo)->sparse = (o)->sparse;                                             \
        (bo)->watch = (o)->watch;                                               \
        (bo)->open_timeout_ms = (o)->open_timeout_ms;                           \
    } while (0)

/* Does `o` (a caller's options struct of o->struct_size bytes) carry field f? */
#define PSHM__HAS_FIELD(o, type, f)                                             \
    ((o)->struct_size >= offsetof(type, f) + sizeof((o)->f))

/*
 * Normalise a user name: drop one leading '/', validate, copy into out
 * (PSHM_NAME_MAX + 1 bytes). Returns 0 or -PSHM_ENAME_*.
 */
PSHM__HIDDEN int pshm__name_norm(const char *name, char *out);

/* Queues share one mapping per process among their handles (queue_map.c).
 * pshm__block_take_map: the caller now owns b's mapping (b keeps using it;
 * closing b no longer unmaps it). pshm__block_use_map: b unmaps its own
 * mapping (unless taken) and uses data, which the caller owns. */
PSHM__HIDDEN void *pshm__block_take_map(pshm_block *b);
PSHM__HIDDEN void pshm__block_use_map(pshm_block *b, void *data);

/*
 * Parse a block's lifetime record ("pshm1 <lifetime> <pid> <starttime>", the
 * xattr pshm writes): 0 and the fields, or -1 for anything else. Exposed for
 * the fuzz target.
 */
#include <stdint.h>
PSHM__HIDDEN int pshm__mark_parse(const char *buf, size_t n, pshm_lifetime *lt, long *pid,
                                  uint64_t *start);

/*
 * Register the block `name` (the object dev/ino) with this process's
 * lifetime group, joining (or creating) the group first (group.c). Returns
 * 0, -ENOSPC (the group's table is full) or the codes of pshm_group_join.
 */
PSHM__HIDDEN int pshm__group_add(const char *name, uint64_t dev, uint64_t ino);

#endif
