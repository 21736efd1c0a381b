/* SPDX-License-Identifier: MIT */
/*
 * array.c - typed n-dimensional arrays: a block holding a numpy .npy image.
 *
 * The spec is numpy/lib/format.py. Writing follows its _write_array_header
 * exactly (the dict repr, the room left for the growth axis, the padding to
 * ARRAY_ALIGN), so a block and np.save's file are the same bytes. Reading is
 * a small recursive-descent parser over the only shape the dict can take,
 * liberal where numpy's own reader (literal_eval after a tokenize pass) is
 * liberal in ways real writers use (whitespace, quotes, trailing commas,
 * Python 2's L suffix), and strict everywhere else.
 *
 * Publication: a new block is zero-filled. The creator writes everything but
 * the first 4 bytes, then stores them ("\x93NUM") with one 4-byte release
 * store (4-byte atomics are plain loads everywhere, also on a read-only
 * mapping). An attacher that sees 4 zero bytes waits (bounded); once it sees
 * them non-zero with an acquire load, the rest of the header is visible.
 *
 * Shared memory is never trusted: the header is copied out of the block
 * before it is parsed (a parser re-reading live bytes could see them change
 * between check and use), and the handle keeps its own copy of everything.
 */
#include "array_internal.h"
#include "inspect_internal.h"
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define GROWTH_AXIS_MAX_DIGITS 21 /* numpy: len(str(8*2**64-1)) */

struct pshm_array {
    pshm_block *block;
    pshm_dtype dtype;
    int ndim;
    int fortran_order;
    int version;
    size_t data_offset;
    size_t nbytes;
    uint64_t nitems;
    int64_t shape[PSHM_ARRAY_MAXDIM];
    int64_t strides[PSHM_ARRAY_MAXDIM];
};

/* ---------------------------------------------------------------- dtypes */

static int native_order(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1 ? '<' : '>';
}

/* Parse a descr of n bytes (not NUL-terminated). */
static int dtype_parse_n(const char *s, size_t n, pshm_dtype *out)
{
    const char *p = s, *end = s + n;
    char order = 0, kind;
    uint64_t count = 0;
    size_t itemsize;

    if (p < end && (*p == '<' || *p == '>' || *p == '|' || *p == '='))
        order = *p++;
    if (p == end)
        return -PSHM_EARRAY_DTYPE;
    kind = *p++;
    if (kind == 'a')
        kind = 'S'; /* numpy's old name for bytes */
    if (!strchr("biufcSUV", kind) || kind == 0)
        return -PSHM_EARRAY_DTYPE;
    /* A decimal count without leading zeros: numpy writes no other. */
    if (p == end || *p < '1' || *p > '9')
        return -PSHM_EARRAY_DTYPE;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -PSHM_EARRAY_DTYPE;
        count = count * 10 + (uint64_t)(*p - '0');
        if (count > INT32_MAX)
            return -PSHM_EARRAY_DTYPE; /* numpy's item sizes are C ints */
    }
    itemsize = (size_t)count;
    switch (kind) {
    case 'b':
        if (count != 1)
            return -PSHM_EARRAY_DTYPE;
        break;
    case 'i':
    case 'u':
        if (count != 1 && count != 2 && count != 4 && count != 8)
            return -PSHM_EARRAY_DTYPE;
        break;
    case 'f':
        if (count != 2 && count != 4 && count != 8 && count != 16)
            return -PSHM_EARRAY_DTYPE;
        break;
    case 'c':
        if (count != 8 && count != 16 && count != 32)
            return -PSHM_EARRAY_DTYPE;
        break;
    case 'U':
        if (count > INT32_MAX / 4)
            return -PSHM_EARRAY_DTYPE;
        itemsize = (size_t)count * 4;
        break;
    default: /* S, V: any positive size */
        break;
    }
    /* numpy's dtype.str: '|' where byte order cannot matter; otherwise an
     * explicit order, native for '=', '|' or none. */
    if (kind == 'S' || kind == 'V' || (kind != 'U' && itemsize == 1))
        order = '|';
    else if (order != '<' && order != '>')
        order = (char)native_order();
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->byteorder = order;
    out->itemsize = itemsize;
    snprintf(out->descr, sizeof out->descr, "%c%c%llu", order, kind, (unsigned long long)count);
    return 0;
}

int pshm_dtype_parse(const char *descr, pshm_dtype *out)
{
    pshm_dtype dt;
    size_t n;
    int r;

    if (!out)
        return -EINVAL;
    if (!descr)
        return -PSHM_EARRAY_DTYPE;
    n = strnlen(descr, PSHM_ARRAY_DESCR_MAX + 1);
    if (n > PSHM_ARRAY_DESCR_MAX)
        return -PSHM_EARRAY_DTYPE;
    r = dtype_parse_n(descr, n, &dt);
    if (r == 0)
        *out = dt;
    return r;
}

/* ----------------------------------------------------------------- sizes */

int pshm__npy_sizes(size_t itemsize, int ndim, const int64_t *shape, uint64_t *nitems,
                    size_t *nbytes)
{
    uint64_t all = 1, nonzero = itemsize;
    int empty = 0;

    if (ndim < 0 || ndim > PSHM_ARRAY_MAXDIM)
        return -PSHM_EARRAY_NDIM;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return -PSHM_EARRAY_SHAPE;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            empty = 1;
            continue;
        }
        if (__builtin_mul_overflow(nonzero, (uint64_t)shape[i], &nonzero) ||
            __builtin_mul_overflow(all, (uint64_t)shape[i], &all))
            return -PSHM_EARRAY_OVERFLOW;
    }
    if (nonzero > INT64_MAX || nonzero > SIZE_MAX)
        return -PSHM_EARRAY_OVERFLOW;
    *nitems = empty ? 0 : all;
    *nbytes = empty ? 0 : (size_t)nonzero;
    return 0;
}

/* numpy's strides for an array mapped from a .npy file (ndarray over a
 * buffer): contiguous in the given order, a zero dimension counting as 1. */
static void fill_strides(size_t itemsize, int ndim, const int64_t *shape, int fortran,
                         int64_t *strides)
{
    int64_t s = (int64_t)itemsize;

    for (int k = 0; k < ndim; k++) {
        int i = fortran ? k : ndim - 1 - k;
        strides[i] = s;
        if (shape[i] > 0)
            s *= shape[i]; /* bounded by the checked product */
    }
}

/* ---------------------------------------------------------------- prefix */

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int pshm__npy_prefix(const void *buf, size_t avail, int *major, int *minor, size_t *total)
{
    const unsigned char *p = buf;
    size_t pre, hlen;

    if (avail == 0 || memcmp(p, MAGIC, avail < MAGIC_LEN ? avail : MAGIC_LEN) != 0)
        return -PSHM_EARRAY_MAGIC;
    if (avail < MAGIC_LEN + 2)
        return -PSHM_EARRAY_SHORT;
    if ((p[6] != 1 && p[6] != 2 && p[6] != 3) || p[7] != 0)
        return -PSHM_EVERSION;
    pre = p[6] == 1 ? 10 : 12;
    if (avail < pre)
        return -PSHM_EARRAY_SHORT;
    hlen = p[6] == 1 ? le16(p + 8) : le32(p + 8);
    if (hlen > PSHM_ARRAY_HEADER_MAX)
        return -PSHM_EARRAY_HEADERLEN;
    *major = p[6];
    *minor = p[7];
    *total = pre + hlen;
    return 0;
}

/* ----------------------------------------------------------- dict parser */

typedef struct cursor {
    const unsigned char *p, *end;
    int allow_long; /* formats 1.0 and 2.0: numpy strips Python 2's 'L' */
} cursor;

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_ident(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || is_digit(c);
}

/* The next non-space byte, or -1 at the end. */
static int peek(cursor *c)
{
    while (c->p < c->end && is_space(*c->p))
        c->p++;
    return c->p < c->end ? *c->p : -1;
}

static int eat(cursor *c, int ch)
{
    if (peek(c) != ch)
        return 0;
    c->p++;
    return 1;
}

/* A string literal, 'x' or "x", optionally u-prefixed, of printable ASCII
 * without escapes (descrs and keys need none). *s, *n: its contents. */
static int string_lit(cursor *c, const char **s, size_t *n)
{
    int q = peek(c);

    if ((q == 'u' || q == 'U') && c->end - c->p >= 2 && (c->p[1] == '\'' || c->p[1] == '"'))
        q = *++c->p;
    if (q != '\'' && q != '"')
        return -PSHM_EARRAY_HEADER;
    const unsigned char *start = ++c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p < 0x20 || *c->p > 0x7e || *c->p == '\\')
            return -PSHM_EARRAY_HEADER;
        c->p++;
    }
    if (c->p == c->end)
        return -PSHM_EARRAY_HEADER;
    *s = (const char *)start;
    *n = (size_t)(c->p - start);
    c->p++;
    return 0;
}

/* Skip a bracketed value we do not support (a structured dtype's list, or a
 * subarray tuple), checking only that brackets and strings are balanced. */
static int skip_balanced(cursor *c)
{
    char stack[64];
    int depth = 0;

    do {
        if (c->p == c->end)
            return -PSHM_EARRAY_HEADER;
        unsigned char ch = *c->p++;
        if (ch == '(' || ch == '[' || ch == '{') {
            if (depth == (int)sizeof stack)
                return -PSHM_EARRAY_HEADER;
            stack[depth++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
        } else if (ch == ')' || ch == ']' || ch == '}') {
            if (depth == 0 || stack[--depth] != ch)
                return -PSHM_EARRAY_HEADER;
        } else if (ch == '\'' || ch == '"') {
            while (c->p < c->end && *c->p != ch) {
                if (*c->p == 0 || *c->p == '\n')
                    return -PSHM_EARRAY_HEADER;
                if (*c->p == '\\' && c->end - c->p >= 2)
                    c->p++;
                c->p++;
            }
            if (c->p == c->end)
                return -PSHM_EARRAY_HEADER;
            c->p++;
        } else if (ch == 0) {
            return -PSHM_EARRAY_HEADER;
        }
    } while (depth > 0);
    return 0;
}

/* An identifier: True, False, ... */
static int word(cursor *c, const char **s, size_t *n)
{
    int ch = peek(c);

    if (ch < 0 || !is_ident(ch) || is_digit(ch))
        return -PSHM_EARRAY_HEADER;
    *s = (const char *)c->p;
    while (c->p < c->end && is_ident(*c->p))
        c->p++;
    *n = (size_t)((const char *)c->p - *s);
    return 0;
}

/*
 * A dimension: an optional '-', then a Python decimal integer ("0", "00",
 * "123", "1_000"), then, in formats 1.0/2.0, an optional 'L'.
 * *neg: it was negative and non-zero. *big: it does not fit int64.
 */
static int dimension(cursor *c, int64_t *v, int *neg, int *big)
{
    uint64_t x = 0;
    int minus = 0, zero_lead;

    *neg = *big = 0;
    if (peek(c) == '-') {
        minus = 1;
        c->p++;
    }
    if (peek(c) < 0 || !is_digit(*c->p))
        return -PSHM_EARRAY_HEADER;
    zero_lead = *c->p == '0';
    for (;;) {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (zero_lead && d != 0)
            return -PSHM_EARRAY_HEADER; /* "01" is not Python */
        if (x > ((uint64_t)INT64_MAX - d) / 10)
            *big = 1;
        else
            x = x * 10 + d;
        if (c->p < c->end && *c->p == '_' && c->end - c->p >= 2 && is_digit(c->p[1]))
            c->p++;
        if (c->p == c->end || !is_digit(*c->p))
            break;
    }
    if (c->allow_long && c->p < c->end && *c->p == 'L')
        c->p++;
    if (c->p < c->end && is_ident(*c->p))
        return -PSHM_EARRAY_HEADER; /* "3x", "0x3", "1e3" */
    *neg = minus && (x != 0 || *big);
    *v = (int64_t)x;
    return 0;
}

typedef struct dict {
    const char *descr;
    size_t descr_len;
    int descr_kind;      /* 's' string, 'l' list (structured), 't' tuple (subarray) */
    int fortran;
    int ndim;            /* may exceed PSHM_ARRAY_MAXDIM: then only the first are kept */
    int64_t shape[PSHM_ARRAY_MAXDIM];
    int negative, big;
} dict;

static int value_descr(cursor *c, dict *d)
{
    int ch = peek(c);

    if (ch == '[' || ch == '(') {
        d->descr_kind = ch == '[' ? 'l' : 't';
        return skip_balanced(c);
    }
    d->descr_kind = 's';
    return string_lit(c, &d->descr, &d->descr_len);
}

static int value_fortran(cursor *c, dict *d)
{
    const char *s;
    size_t n;
    int r = word(c, &s, &n);

    if (r != 0)
        return r;
    if (n == 4 && memcmp(s, "True", 4) == 0)
        d->fortran = 1;
    else if (n == 5 && memcmp(s, "False", 5) == 0)
        d->fortran = 0;
    else
        return -PSHM_EARRAY_HEADER; /* numpy wants a bool: not 0, 1 or None */
    return 0;
}

/* A tuple of dimensions: (), (n,), (n, m), (n, m,). "(n)" is an int, not a tuple. */
static int value_shape(cursor *c, dict *d)
{
    int items = 0, comma = 0;

    if (!eat(c, '('))
        return -PSHM_EARRAY_HEADER;
    while (!eat(c, ')')) {
        int64_t v;
        int neg, big;
        if (items > 0 && !comma)
            return -PSHM_EARRAY_HEADER;
        int r = dimension(c, &v, &neg, &big);
        if (r != 0)
            return r;
        if (items < PSHM_ARRAY_MAXDIM)
            d->shape[items] = v;
        d->negative |= neg;
        d->big |= big;
        if (items < INT32_MAX)
            items++;
        comma = eat(c, ',');
    }
    if (items == 1 && !comma)
        return -PSHM_EARRAY_HEADER;
    d->ndim = items;
    return 0;
}

static int parse_dict(cursor *c, dict *d)
{
    static const char *const keys[] = {"descr", "fortran_order", "shape"};
    int seen = 0, more = 1;

    memset(d, 0, sizeof *d);
    if (!eat(c, '{'))
        return -PSHM_EARRAY_HEADER;
    while (!eat(c, '}')) {
        const char *k;
        size_t n;
        int i, r;
        if (!more)
            return -PSHM_EARRAY_HEADER;
        r = string_lit(c, &k, &n);
        if (r != 0)
            return r;
        for (i = 0; i < 3; i++)
            if (strlen(keys[i]) == n && memcmp(keys[i], k, n) == 0)
                break;
        if (i == 3 || (seen & (1 << i)))
            return -PSHM_EARRAY_HEADER; /* unknown or duplicate key */
        seen |= 1 << i;
        if (!eat(c, ':'))
            return -PSHM_EARRAY_HEADER;
        r = i == 0 ? value_descr(c, d) : i == 1 ? value_fortran(c, d) : value_shape(c, d);
        if (r != 0)
            return r;
        more = eat(c, ',');
    }
    if (seen != 7)
        return -PSHM_EARRAY_HEADER;
    if (peek(c) != -1)
        return -PSHM_EARRAY_HEADER; /* only padding may follow */
    return 0;
}

int pshm__npy_parse_header(const void *buf, size_t avail, pshm__npy *out)
{
    const unsigned char *p = buf;
    int major, minor, r;
    size_t total;
    dict d;

    r = pshm__npy_prefix(buf, avail, &major, &minor, &total);
    if (r != 0)
        return r;
    if (total > avail)
        return -PSHM_EARRAY_SHORT;
    cursor c = {p + (major == 1 ? 10 : 12), p + total, major < 3};
    r = parse_dict(&c, &d);
    if (r != 0)
        return r;
    if (d.descr_kind == 'l')
        return -PSHM_EARRAY_STRUCT;
    if (d.descr_kind == 't' || d.descr_len > PSHM_ARRAY_DESCR_MAX)
        return -PSHM_EARRAY_DTYPE;
    memset(out, 0, sizeof *out);
    r = dtype_parse_n(d.descr, d.descr_len, &out->dtype);
    if (r != 0)
        return r;
    if (d.negative)
        return -PSHM_EARRAY_SHAPE;
    if (d.ndim > PSHM_ARRAY_MAXDIM)
        return -PSHM_EARRAY_NDIM;
    if (d.big)
        return -PSHM_EARRAY_OVERFLOW;
    r = pshm__npy_sizes(out->dtype.itemsize, d.ndim, d.shape, &out->nitems, &out->nbytes);
    if (r != 0)
        return r;
    out->major = major;
    out->minor = minor;
    out->data_offset = total;
    out->fortran_order = d.fortran;
    out->ndim = d.ndim;
    memcpy(out->shape, d.shape, (size_t)d.ndim * sizeof d.shape[0]);
    return 0;
}

int pshm__npy_parse(const void *buf, size_t len, pshm__npy *out)
{
    int r = pshm__npy_parse_header(buf, len, out);

    if (r != 0)
        return r;
    if (out->nbytes > len - out->data_offset)
        return -PSHM_EARRAY_TRUNCATED;
    return 0;
}

/* ---------------------------------------------------------------- writer */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int over;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->over || n > b->cap - b->n) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void putc_n(sbuf *b, char ch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(b, &ch, 1);
}

int pshm__npy_write_header(const pshm_dtype *dt, int ndim, const int64_t *shape,
                           int fortran_order, char *out, size_t cap, size_t *len)
{
    char num[32];
    sbuf b = {out, 0, cap, 0};
    size_t pre = 10, hlen, pad;
    int major = 1;

    if (ndim < 0 || ndim > PSHM_ARRAY_MAXDIM)
        return -PSHM_EARRAY_NDIM;
    /* The prefix is filled in at the end, once the version is known. */
    putc_n(&b, 0, 12);
    /* Python's repr of the dict, keys sorted, each followed by ", ". */
    puts_(&b, "{'descr': '");
    puts_(&b, dt->descr);
    puts_(&b, "', 'fortran_order': ");
    puts_(&b, fortran_order ? "True" : "False");
    puts_(&b, ", 'shape': (");
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -PSHM_EARRAY_SHAPE;
        snprintf(num, sizeof num, "%lld", (long long)shape[i]);
        if (i > 0)
            puts_(&b, " ");
        puts_(&b, num);
        puts_(&b, ",");
    }
    if (ndim > 1)
        b.n--; /* repr((3, 4)) has no trailing comma; repr((5,)) has one */
    puts_(&b, "), }");
    /* Room for the growth axis (the first in C order, the last in Fortran
     * order) to reach GROWTH_AXIS_MAX_DIGITS, as numpy leaves it. */
    if (ndim > 0) {
        size_t digits = (size_t)snprintf(num, sizeof num, "%lld",
                                         (long long)shape[fortran_order ? ndim - 1 : 0]);
        if (digits < GROWTH_AXIS_MAX_DIGITS)
            putc_n(&b, ' ', GROWTH_AXIS_MAX_DIGITS - digits);
    }
    if (b.over)
        return -ENOSPC;
    /* numpy's _wrap_header: hlen counts the final '\n'; the padding makes
     * magic + version + length + header a multiple of ARRAY_ALIGN, and is
     * never empty. Format 1.0 unless the length does not fit 16 bits. The
     * dict is ASCII (a simple descr), so 3.0 (UTF-8) is never needed. */
    hlen = b.n - 12 + 1;
    pad = PSHM_ARRAY_ALIGN - ((pre + hlen) % PSHM_ARRAY_ALIGN);
    if (hlen + pad > 0xffff) {
        major = 2;
        pre = 12;
        pad = PSHM_ARRAY_ALIGN - ((pre + hlen) % PSHM_ARRAY_ALIGN);
    }
    putc_n(&b, ' ', pad);
    put(&b, "\n", 1);
    if (b.over)
        return -ENOSPC;
    /* Slide the dict to just after the real prefix, then write the prefix. */
    memmove(out + pre, out + 12, b.n - 12);
    b.n -= 12 - pre;
    memcpy(out, MAGIC, MAGIC_LEN);
    out[6] = (char)major;
    out[7] = 0;
    uint32_t field = (uint32_t)(hlen + pad);
    out[8] = (char)(field & 0xff);
    out[9] = (char)(field >> 8 & 0xff);
    if (pre == 12) {
        out[10] = (char)(field >> 16 & 0xff);
        out[11] = (char)(field >> 24 & 0xff);
    }
    *len = b.n;
    return 0;
}

/* ---------------------------------------------------------- publication */

/* Write header (hlen bytes) at dst: all but the first 4 bytes, then those
 * 4 (the start of the magic) in one release store that attachers acquire. */
static void publish_header(unsigned char *dst, const char *hdr, size_t hlen)
{
    uint32_t word;

    memcpy(dst + 4, hdr + 4, hlen - 4);
    memcpy(&word, hdr, 4);
    __atomic_store_n((uint32_t *)(void *)dst, word, __ATOMIC_RELEASE);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first word of the object open as fd, read with pread (1 if it cannot
 * be read: the parse that follows says why). */
static uint32_t first_word_fd(int fd)
{
    uint32_t w = 0;
    size_t got;

    if (pshm__inspect_read(fd, &w, sizeof w, 0, &got) != 0 || got < sizeof w)
        return 1;
    return w;
}

/* A block whose first 4 bytes are zero is an array being created (or a raw
 * zeroed block): wait a little for its magic. Read with pread, not through
 * the mapping: a peer may have shrunk the block since it was mapped. */
static void wait_for_magic(int fd, size_t size, unsigned timeout_ms)
{
    int64_t deadline;
    int ms = 1;

    if (size < 4 || first_word_fd(fd) != 0)
        return;
    deadline = now_ms() + timeout_ms;
    while (first_word_fd(fd) == 0 && now_ms() < deadline) {
        sleep_ms(ms);
        if (ms < 16)
            ms *= 2;
    }
}

/* n bytes at off of the image: from memory at src, or (src NULL) with
 * pread from fd. Returns 0, -PSHM_EARRAY_SHORT (the object ended first,
 * e.g. shrunk by a peer since its size was taken), or -errno. */
static int copy_out(const unsigned char *src, int fd, void *dst, size_t n, size_t off)
{
    size_t got;
    int r;

    if (src) {
        memcpy(dst, src + off, n);
        return 0;
    }
    r = pshm__inspect_read(fd, dst, n, off, &got);
    return r != 0 ? r : got < n ? -PSHM_EARRAY_SHORT : 0;
}

/*
 * Parse the .npy image of len bytes at src (possibly live shared memory, so
 * every byte is read once, into private copies), or, with src NULL, in the
 * object open as fd. Check that its data fits. Returns 0 and *h, or the
 * parser's codes.
 */
static int read_image(const unsigned char *src, int fd, size_t len, pshm__npy *h)
{
    unsigned char pre[12];
    size_t n = len < sizeof pre ? len : sizeof pre, total;
    int major, minor, r;

    r = copy_out(src, fd, pre, n, 0);
    if (r == 0)
        r = pshm__npy_prefix(pre, n, &major, &minor, &total);
    if (r != 0)
        return r;
    if (total > len)
        return -PSHM_EARRAY_SHORT;
    unsigned char *copy = malloc(total);
    if (!copy)
        return -ENOMEM;
    /* The prefix as parsed, then the rest of the header. */
    n = n < total ? n : total;
    memcpy(copy, pre, n);
    r = copy_out(src, fd, copy + n, total - n, n);
    if (r == 0)
        r = pshm__npy_parse_header(copy, total, h);
    free(copy);
    if (r != 0)
        return r;
    if (h->nbytes > len - h->data_offset)
        return -PSHM_EARRAY_TRUNCATED;
    return 0;
}

/* read_image, for an image that must be mapped in place: its data aligned. */
static int read_block_image(const unsigned char *src, int fd, size_t len, pshm__npy *h)
{
    int r = read_image(src, fd, len, h);

    if (r == 0 && h->data_offset % PSHM_ARRAY_ALIGN != 0)
        r = -PSHM_EARRAY_ALIGN;
    return r;
}

/* ---------------------------------------------------------------- handle */

static pshm_array *array_new(pshm_block *b, const pshm__npy *h)
{
    pshm_array *a = calloc(1, sizeof *a);

    if (!a)
        return NULL;
    a->block = b;
    a->dtype = h->dtype;
    a->ndim = h->ndim;
    a->fortran_order = h->fortran_order;
    a->version = h->major << 8 | h->minor;
    a->data_offset = h->data_offset;
    a->nbytes = h->nbytes;
    a->nitems = h->nitems;
    memcpy(a->shape, h->shape, (size_t)h->ndim * sizeof h->shape[0]);
    fill_strides(h->dtype.itemsize, h->ndim, h->shape, h->fortran_order, a->strides);
    return a;
}

/* Make an array handle over an open block b (not consumed on failure). */
/* How long open waits for a header being written: opt->open_timeout_ms. */
static unsigned open_timeout(const pshm_block_options *opt)
{
    pshm_block_options d;

    pshm_block_options_init(&d);
    if (opt && PSHM__HAS_FIELD(opt, pshm_block_options, open_timeout_ms))
        return opt->open_timeout_ms;
    return d.open_timeout_ms;
}

/* The header is read with pread and checked against the object's size now,
 * so a peer that shrank the block since it was mapped gets an error, never
 * a SIGBUS inside open (what it can do later: the header's pshm_block_read). */
static int attach(pshm_block *b, unsigned timeout_ms, pshm_array **out)
{
    int fd = pshm_block_fd(b);
    size_t size = pshm_block_size(b);
    uint64_t now;
    pshm__npy h;
    int r;

    r = pshm__inspect_size(fd, &now);
    if (r != 0)
        return r;
    if (now < size)
        return -PSHM_EARRAY_TRUNCATED; /* shrunk since it was mapped */
    wait_for_magic(fd, size, timeout_ms);
    r = read_block_image(NULL, fd, size, &h);
    if (r != 0)
        return r;
    *out = array_new(b, &h);
    return *out ? 0 : -ENOMEM;
}

int pshm_array_open(const char *name, const pshm_block_options *opt, pshm_array **out)
{
    pshm_block *b;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    r = pshm_block_open(name, opt, &b);
    if (r != 0)
        return r;
    PSHM__FAULT("array.open.mapped"); /* a peer may shrink the block now */
    r = attach(b, open_timeout(opt), out);
    if (r != 0)
        pshm_block_close(b);
    return r;
}

static int same_array(const pshm_array *a, const pshm__npy *h)
{
    if (strcmp(a->dtype.descr, h->dtype.descr) != 0 || a->ndim != h->ndim ||
        a->fortran_order != h->fortran_order)
        return 0;
    for (int i = 0; i < h->ndim; i++)
        if (a->shape[i] != h->shape[i])
            return 0;
    return 1;
}

/* Create the block for the array h describes (already validated), copy in
 * src_data (h->nbytes bytes) if given, then publish the header. */
static int create_block(const char *name, const pshm__npy *h, const pshm_block_options *opt,
                        const void *src_data, pshm_array **out)
{
    char hdr[PSHM__NPY_HEADER_CAP];
    size_t hlen;
    pshm_block *b;
    pshm__npy w = *h;
    int r;

    r = pshm__npy_write_header(&h->dtype, h->ndim, h->shape, h->fortran_order, hdr, sizeof hdr,
                               &hlen);
    if (r != 0)
        return r;
    if (h->nbytes > SIZE_MAX - hlen)
        return -PSHM_EARRAY_OVERFLOW;
    r = pshm_block_create(name, hlen + h->nbytes, opt, &b);
    if (r != 0)
        return r;
    if (!pshm_block_created(b)) {
        /* open_existing found the name taken: it must be this very array. */
        r = attach(b, open_timeout(opt), out);
        if (r == 0 && !same_array(*out, h)) {
            free(*out);
            *out = NULL;
            r = -PSHM_EARRAY_MISMATCH;
        }
        if (r != 0)
            pshm_block_close(b);
        return r;
    }
    unsigned char *dst = pshm_block_data(b);
    if (src_data && h->nbytes)
        memcpy(dst + hlen, src_data, h->nbytes);
    publish_header(dst, hdr, hlen);
    w.major = (unsigned char)hdr[6];
    w.minor = 0;
    w.data_offset = hlen;
    *out = array_new(b, &w);
    if (!*out) {
        /* The block is published: take it back (ours, just made). */
        pshm_block_unlink(b);
        pshm_block_close(b);
        return -ENOMEM;
    }
    return 0;
}

int pshm_array_create(const char *name, const char *descr, int ndim, const int64_t *shape,
                      int fortran_order, const pshm_block_options *opt, pshm_array **out)
{
    pshm__npy h;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    memset(&h, 0, sizeof h);
    r = pshm_dtype_parse(descr, &h.dtype);
    if (r != 0)
        return r;
    if (ndim < 0 || ndim > PSHM_ARRAY_MAXDIM)
        return -PSHM_EARRAY_NDIM;
    if (ndim > 0 && !shape)
        return -EINVAL;
    r = pshm__npy_sizes(h.dtype.itemsize, ndim, shape, &h.nitems, &h.nbytes);
    if (r != 0)
        return r;
    h.ndim = ndim;
    h.fortran_order = fortran_order != 0;
    if (ndim > 0)
        memcpy(h.shape, shape, (size_t)ndim * sizeof *shape);
    return create_block(name, &h, opt, NULL, out);
}

int pshm_array_create_from_npy(const char *name, const void *npy, size_t len,
                               const pshm_block_options *opt, pshm_array **out)
{
    pshm__npy h;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!npy)
        return -EINVAL;
    if (opt && PSHM__HAS_FIELD(opt, pshm_block_options, open_existing) && opt->open_existing)
        return -EINVAL;
    r = read_image(npy, -1, len, &h);
    if (r != 0)
        return r;
    return create_block(name, &h, opt, (const unsigned char *)npy + h.data_offset, out);
}

int pshm_array_close(pshm_array *a)
{
    int r;

    if (!a)
        return 0;
    r = pshm_block_close(a->block);
    free(a);
    return r;
}

int pshm_array_stat(const char *name, pshm_array_info *out)
{
    pshm_array_info in;
    pshm__npy h;
    uint64_t size;
    int fd, r;

    if (!out || !PSHM__HAS_FIELD(out, pshm_array_info, dtype))
        return -EINVAL;
    r = pshm__inspect_open(name, &fd, &size);
    if (r != 0)
        return r;
    r = read_block_image(NULL, fd, size > SIZE_MAX ? SIZE_MAX : (size_t)size, &h);
    close(fd);
    if (r != 0)
        return r;
    pshm_array_info_init(&in);
    in.dtype = h.dtype;
    in.ndim = h.ndim;
    in.fortran_order = h.fortran_order;
    in.version = h.major << 8 | h.minor;
    in.data_offset = h.data_offset;
    in.nbytes = h.nbytes;
    in.nitems = h.nitems;
    in.size = size;
    memcpy(in.shape, h.shape, (size_t)h.ndim * sizeof h.shape[0]);
    fill_strides(h.dtype.itemsize, h.ndim, h.shape, h.fortran_order, in.strides);
    in.struct_size = out->struct_size;
    memcpy(out, &in, out->struct_size < sizeof in ? out->struct_size : sizeof in);
    return 0;
}

/* -------------------------------------------------------------- accessors */

pshm_block *pshm_array_block(const pshm_array *a) { return a ? a->block : NULL; }
const pshm_dtype *pshm_array_dtype(const pshm_array *a) { return a ? &a->dtype : NULL; }
const char *pshm_array_descr(const pshm_array *a) { return a ? a->dtype.descr : NULL; }
int pshm_array_ndim(const pshm_array *a) { return a ? a->ndim : -1; }
const int64_t *pshm_array_shape(const pshm_array *a) { return a ? a->shape : NULL; }
const int64_t *pshm_array_strides(const pshm_array *a) { return a ? a->strides : NULL; }
size_t pshm_array_data_offset(const pshm_array *a) { return a ? a->data_offset : 0; }
size_t pshm_array_nbytes(const pshm_array *a) { return a ? a->nbytes : 0; }
uint64_t pshm_array_nitems(const pshm_array *a) { return a ? a->nitems : 0; }
int pshm_array_fortran_order(const pshm_array *a) { return a ? a->fortran_order : 0; }
int pshm_array_version(const pshm_array *a) { return a ? a->version : 0; }

void *pshm_array_data(const pshm_array *a)
{
    return a ? (unsigned char *)pshm_block_data(a->block) + a->data_offset : NULL;
}
