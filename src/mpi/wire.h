/* SPDX-License-Identifier: MIT */
/* wire.h - the bridge's batch format and its checks (bridge.c), apart from
 * MPI so that tests/fuzz/fuzz_wire.c can feed them any bytes.
 *
 * A batch is a 32-byte header and its messages, each an 8-byte length and
 * its bytes padded to 8; a large message is its length with LARGE_BIT set
 * and no bytes (they come as an MPI message of their own). Everything in a
 * batch arrived over the network from another rank: untrusted input, read
 * only through these checks. */
#ifndef PSHM_MPI_WIRE_H
#define PSHM_MPI_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WIRE_MAGIC 0x31425350u /* "PSB1" */
#define WIRE_END 1u
#define PAD8(n) (((n) + 7) & ~(size_t)7)
/* A message of at least opt.large_bytes travels on its own: its batch entry
 * is its length with this bit set, and its bytes go in a message of their
 * own (tag_large), sent straight from the source slot (or, with
 * opt.large_from_slot = 0 or release_early, from the batch's send buffer)
 * and received straight into a destination reservation. */
#define LARGE_BIT (UINT64_C(1) << 63)

struct wire {        /* 32 bytes, native byte order (one machine architecture per job) */
    uint32_t magic;
    uint32_t flags;
    uint64_t seq;    /* stream sequence number of the first message */
    uint32_t count;  /* messages in the batch */
    uint32_t pad;
    uint64_t bytes;  /* bytes after the header */
};

enum { WIRE_OK = 0, WIRE_EPROTO = -1, WIRE_ESEQ = -2 };

/* The header of a batch of n bytes that arrived, into *w: WIRE_OK,
 * WIRE_EPROTO (too short, bad magic or flags, a byte count other than what
 * arrived, more messages than 8-byte entries fit), or WIRE_ESEQ (not the
 * sequence number expected). */
static inline int wire_head(const void *buf, size_t n, uint64_t expect, struct wire *w)
{
    if (n < sizeof *w)
        return WIRE_EPROTO;
    memcpy(w, buf, sizeof *w);
    if (w->magic != WIRE_MAGIC || (w->flags & ~WIRE_END) || w->bytes != (uint64_t)n - sizeof *w ||
        w->count > (uint64_t)n / 8)
        return WIRE_EPROTO;
    return w->seq == expect ? WIRE_OK : WIRE_ESEQ;
}

/* The entry at offset off of a batch of n bytes (off <= n): its length
 * (*len, at most max_msg) and *big. A small message's bytes are at
 * buf + off + 8 and end inside the batch, its padding too; the next entry
 * is at wire_next(). WIRE_OK or WIRE_EPROTO. */
static inline int wire_entry(const char *buf, size_t n, size_t off, size_t max_msg,
                             uint64_t *len, int *big)
{
    if (off > n || n - off < 8)
        return WIRE_EPROTO;
    memcpy(len, buf + off, 8);
    *big = (*len & LARGE_BIT) != 0;
    *len &= ~LARGE_BIT;
    if (*len > max_msg)
        return WIRE_EPROTO;
    if (!*big && PAD8(*len) > n - off - 8) /* len <= max_msg: no overflow */
        return WIRE_EPROTO;
    return WIRE_OK;
}

static inline size_t wire_next(size_t off, uint64_t len, int big)
{
    return off + 8 + (big ? 0 : PAD8((size_t)len));
}

#endif
