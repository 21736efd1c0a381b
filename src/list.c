/* SPDX-License-Identifier: MIT */
/*
 * list.c - CPython's ShareableList, byte for byte (layout in include/pshm.h).
 *
 * The bytes belong to every process that maps the block, CPython's among
 * them, so nothing read from them is trusted: pshm__list_parse checks the
 * whole layout once at open, and every item access checks that item's
 * offsets, format and code again before using them. N and the offsets are
 * never rewritten by a correct writer, so the handle keeps N (and what
 * follows from it) and only re-reads the per-item words.
 *
 * Words are read and written with 8-byte atomic loads and stores on 8-byte
 * aligned addresses: a same-type scalar set is a single store, which is the
 * whole of the "no torn value" guarantee. Multi-word updates (type changes,
 * str and bytes) are ordered value, format, code, and are not atomic.
 */
#include "list_internal.h"
#include "inspect_internal.h"
#include "fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOT_ALIGN 8
#define FMT_N_MAX 9999999u /* "<n>s" must fit in 8 characters */

/* Back-transform codes. */
enum { CODE_VALUE = 0, CODE_STR = 1, CODE_BYTES = 2, CODE_NONE = 3 };

struct pshm_list {
    pshm_block *block;   /* NULL for a snapshot */
    unsigned char *base; /* the block's mapping, or a snapshot's private copy */
    pshm__list_layout lay;
    int readonly;
};

/* ------------------------------------------------------------ words */

static inline uint64_t ld64(const unsigned char *p)
{
    return __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_RELAXED);
}

static inline void st64(unsigned char *p, uint64_t v)
{
    __atomic_store_n((uint64_t *)(void *)p, v, __ATOMIC_RELAXED);
}

static inline signed char ld_code(const unsigned char *p)
{
    return (signed char)__atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void st_code(unsigned char *p, int code)
{
    __atomic_store_n(p, (unsigned char)code, __ATOMIC_RELAXED);
}

/* An 8-byte format as the word it is in memory (compilers fold this). */
static inline uint64_t fmt_word(const char s[8])
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

#define W_INT fmt_word("q\0\0\0\0\0\0")
#define W_FLOAT fmt_word("d\0\0\0\0\0\0")
#define W_BOOL fmt_word("xxxxxxx?")
#define W_NONE fmt_word("xxxxxx?x")

/* ----------------------------------------------------------- UTF-8 */

int pshm__utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return 0;
        }
        if (len - i <= need)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* ---------------------------------------------------------- values */

static uint64_t new_slot(const pshm_value *v)
{
    if (v->type == PSHM_STR || v->type == PSHM_BYTES)
        return SLOT_ALIGN * (v->s.len / SLOT_ALIGN + 1);
    return SLOT_ALIGN;
}

/* Check a caller's value; its slot's size if it were created now. */
static int value_check(const pshm_value *v, uint64_t *slot)
{
    switch (v->type) {
    case PSHM_NONE:
    case PSHM_INT:
    case PSHM_FLOAT:
    case PSHM_BOOL:
        *slot = SLOT_ALIGN;
        return 0;
    case PSHM_STR:
    case PSHM_BYTES:
        if (!v->s.ptr && v->s.len)
            return -EINVAL;
        if (v->type == PSHM_STR && !pshm__utf8_valid((const unsigned char *)v->s.ptr, v->s.len))
            return -PSHM_ELIST_UTF8;
        /* CPython's rule, 8*(len//8 + 1), but over the UTF-8 length. */
        *slot = v->s.len > PSHM_LIST_ITEM_MAX ? UINT64_MAX : new_slot(v);
        return 0;
    }
    return -EINVAL;
}

const char *pshm_vtype_name(pshm_vtype t)
{
    switch (t) {
    case PSHM_NONE: return "NoneType";
    case PSHM_INT: return "int";
    case PSHM_FLOAT: return "float";
    case PSHM_BOOL: return "bool";
    case PSHM_STR: return "str";
    case PSHM_BYTES: return "bytes";
    }
    return "unknown";
}

/* int64 == double, exactly, as Python compares int and float. */
static int int_eq_double(int64_t i, double d)
{
    /* [-2^63, 2^63) is exactly representable at both ends. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return 0; /* NaN, infinities, out of range */
    if (d != (double)(int64_t)d)
        return 0; /* has a fraction */
    return (int64_t)d == i;
}

static int is_number(pshm_vtype t)
{
    return t == PSHM_INT || t == PSHM_FLOAT || t == PSHM_BOOL;
}

int pshm__value_equal(const pshm_value *a, const pshm_value *b)
{
    if (is_number(a->type) && is_number(b->type)) {
        if (a->type == PSHM_FLOAT && b->type == PSHM_FLOAT)
            return a->f == b->f;
        if (a->type == PSHM_FLOAT || b->type == PSHM_FLOAT) {
            const pshm_value *fv = a->type == PSHM_FLOAT ? a : b;
            const pshm_value *iv = a->type == PSHM_FLOAT ? b : a;
            return int_eq_double(iv->type == PSHM_BOOL ? iv->b != 0 : iv->i, fv->f);
        }
        int64_t x = a->type == PSHM_BOOL ? a->b != 0 : a->i;
        int64_t y = b->type == PSHM_BOOL ? b->b != 0 : b->i;
        return x == y;
    }
    if (a->type != b->type)
        return 0;
    if (a->type == PSHM_NONE)
        return 1;
    return a->s.len == b->s.len && (a->s.len == 0 || memcmp(a->s.ptr, b->s.ptr, a->s.len) == 0);
}

/* ---------------------------------------------------------- formats */

/*
 * Decode one item's format word and code for a slot of `slot` bytes.
 * *n is the byte count of a "<n>s" format.
 */
static int classify(uint64_t w, signed char code, uint64_t slot, pshm_vtype *type, uint32_t *n)
{
    pshm_vtype t;

    *n = 0;
    if (w == W_INT)
        t = PSHM_INT;
    else if (w == W_FLOAT)
        t = PSHM_FLOAT;
    else if (w == W_BOOL)
        t = PSHM_BOOL;
    else if (w == W_NONE)
        t = PSHM_NONE;
    else {
        /* "<n>s": 1-7 digits without a leading zero (as '%d' writes), 's', NULs. */
        unsigned char f[8];
        uint32_t v = 0;
        int k = 0;
        memcpy(f, &w, 8);
        while (k < 7 && f[k] >= '0' && f[k] <= '9') {
            v = v * 10 + (uint32_t)(f[k] - '0');
            k++;
        }
        if (k == 0 || f[0] == '0' || f[k] != 's')
            return -PSHM_ELIST_FORMAT;
        for (int j = k + 1; j < 8; j++)
            if (f[j] != 0)
                return -PSHM_ELIST_FORMAT;
        if (v > slot)
            return -PSHM_ELIST_FORMAT; /* would read past its slot */
        t = PSHM_STR;
        *n = v;
    }
    if (code < CODE_VALUE || code > CODE_NONE)
        return -PSHM_ELIST_CODE;
    switch (t) {
    case PSHM_INT:
    case PSHM_FLOAT:
    case PSHM_BOOL:
        if (code != CODE_VALUE)
            return -PSHM_ELIST_MISMATCH;
        break;
    case PSHM_NONE:
        if (code != CODE_NONE)
            return -PSHM_ELIST_MISMATCH;
        break;
    default:
        if (code == CODE_BYTES)
            t = PSHM_BYTES;
        else if (code != CODE_STR)
            return -PSHM_ELIST_MISMATCH;
        break;
    }
    *type = t;
    return 0;
}

/* ----------------------------------------------------------- parsing */

/*
 * The first half of the parse: N and the offsets table, from head (the
 * block's first avail bytes; 8-byte aligned) of a block of len bytes.
 * Fills *out (n, data_off, data_len, fmt_off, code_off, size).
 */
static int parse_head(const unsigned char *p, size_t avail, uint64_t len, pshm__list_layout *out)
{
    uint64_t n, prev;

    memset(out, 0, sizeof *out);
    if (len < 16 || avail < 16)
        return -PSHM_ELIST_SIZE; /* not even N and offsets[0] */
    /* Acquire: pshm_list_create stores N last, with release. */
    n = __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_ACQUIRE);
    /* The offsets table must fit; n > INT64_MAX is a negative count. */
    if (n > INT64_MAX || n > (len - 16) / 8 || n > (avail - 16) / 8)
        return -PSHM_ELIST_COUNT;
    out->n = n;
    out->data_off = (n + 2) * 8; /* <= len */

    prev = ld64(p + 8);
    if (prev != 0)
        return -PSHM_ELIST_OFFSETS;
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t cur = ld64(p + 8 + 8 * i);
        if (cur <= prev || cur - prev < SLOT_ALIGN || cur % SLOT_ALIGN != 0 ||
            cur > len - out->data_off)
            return -PSHM_ELIST_OFFSETS; /* decreasing, short, misaligned, past the block */
        prev = cur;
    }
    out->data_len = prev;
    out->fmt_off = out->data_off + prev; /* <= len */
    /* Formats and codes, 9n bytes, must follow. */
    if (n > (len - out->fmt_off) / 9)
        return -PSHM_ELIST_SIZE; /* the block ends inside the list: truncated */
    out->code_off = out->fmt_off + 8 * n;
    out->size = out->code_off + n;
#if defined(__APPLE__)
    /* macOS reports shared memory sizes rounded up to whole pages. */
    if (len > ((out->size + 16383) & ~(uint64_t)16383))
        return -PSHM_ELIST_SIZE;
#else
    /* CPython and pshm size the block exactly. A larger block is not a list:
     * in particular a zeroed block (N = 0) is not an empty list. */
    if (len != out->size)
        return -PSHM_ELIST_SIZE;
#endif
    return 0;
}

/* The second half: every item's format and code, from head (as above) and
 * fc, the 9n bytes at lay->fmt_off (8-byte aligned). */
static int parse_items(const unsigned char *head, const unsigned char *fc,
                       const pshm__list_layout *lay)
{
    for (uint64_t i = 0; i < lay->n; i++) {
        pshm_vtype t;
        uint32_t sn;
        uint64_t slot = ld64(head + 16 + 8 * i) - ld64(head + 8 + 8 * i);
        int r = classify(ld64(fc + 8 * i), ld_code(fc + 8 * lay->n + i), slot, &t, &sn);
        if (r != 0)
            return r;
    }
    return 0;
}

int pshm__list_parse(const void *buf, size_t len, pshm__list_layout *out)
{
    int r;

    if (!buf || !out || ((uintptr_t)buf & 7))
        return -EINVAL;
    r = parse_head(buf, len, len, out);
    if (r == 0)
        r = parse_items(buf, (const unsigned char *)buf + out->fmt_off, out);
    return r;
}

/* ------------------------------------------------------------- items */

typedef struct item {
    uint64_t off;  /* slot start, from the block's start */
    uint64_t slot; /* slot size */
} item;

/* Item i's slot, with its offsets checked again. */
static int locate(const unsigned char *p, const pshm__list_layout *lay, uint64_t i, item *it)
{
    uint64_t a = ld64(p + 8 + 8 * i), b = ld64(p + 16 + 8 * i);

    if (b <= a || b - a < SLOT_ALIGN || a % SLOT_ALIGN != 0 || b % SLOT_ALIGN != 0 ||
        b > lay->data_len)
        return -PSHM_ELIST_OFFSETS;
    it->off = lay->data_off + a;
    it->slot = b - a;
    return 0;
}

static int item_decode(const unsigned char *p, const pshm__list_layout *lay, uint64_t i, item *it,
                       pshm_vtype *t, uint32_t *n)
{
    int r = locate(p, lay, i, it);

    if (r != 0)
        return r;
    return classify(ld64(p + lay->fmt_off + 8 * i), ld_code(p + lay->code_off + i), it->slot, t,
                    n);
}

int pshm__list_item_type(const void *buf, const pshm__list_layout *lay, uint64_t i,
                         pshm_vtype *out)
{
    item it;
    uint32_t n;

    return item_decode(buf, lay, i, &it, out, &n);
}

int pshm__list_item_get(const void *buf, const pshm__list_layout *lay, uint64_t i,
                        pshm_value *out)
{
    const unsigned char *p = buf;
    item it;
    pshm_vtype t;
    uint32_t n;
    uint64_t w;
    unsigned char bytes[8];
    int r = item_decode(p, lay, i, &it, &t, &n);

    if (r != 0)
        return r;
    switch (t) {
    case PSHM_INT:
        w = ld64(p + it.off);
        out->type = t;
        memcpy(&out->i, &w, 8);
        return 0;
    case PSHM_FLOAT:
        w = ld64(p + it.off);
        out->type = t;
        memcpy(&out->f, &w, 8);
        return 0;
    case PSHM_BOOL:
        /* "xxxxxxx?": the bool is byte 7; struct's '?' is true if nonzero. */
        w = ld64(p + it.off);
        memcpy(bytes, &w, 8);
        out->type = t;
        out->b = bytes[7] != 0;
        return 0;
    case PSHM_NONE:
        out->type = t;
        out->i = 0;
        return 0;
    case PSHM_STR:
    case PSHM_BYTES: {
        const char *s = (const char *)p + it.off;
        size_t len = n;
        /* CPython's reading: rstrip(b'\0'). */
        while (len > 0 && s[len - 1] == 0)
            len--;
        if (t == PSHM_STR && !pshm__utf8_valid((const unsigned char *)s, len))
            return -PSHM_ELIST_UTF8;
        out->type = t;
        out->s.ptr = s;
        out->s.len = len;
        return 0;
    }
    }
    return -PSHM_ELIST_FORMAT; /* unreachable */
}

static uint64_t str_capacity(uint64_t slot)
{
    return slot > FMT_N_MAX ? FMT_N_MAX : slot;
}

int pshm__list_item_capacity(const void *buf, const pshm__list_layout *lay, uint64_t i,
                             size_t *out)
{
    item it;
    int r = locate(buf, lay, i, &it);

    if (r != 0)
        return r;
    *out = (size_t)str_capacity(it.slot);
    return 0;
}

int pshm__list_item_format(const void *buf, const pshm__list_layout *lay, uint64_t i,
                           char out[9])
{
    const unsigned char *p = buf;
    item it;
    pshm_vtype t;
    uint32_t n;
    uint64_t w;
    int r = locate(p, lay, i, &it);

    if (r != 0)
        return r;
    /* One load, so the text checked is the text returned. */
    w = ld64(p + lay->fmt_off + 8 * i);
    r = classify(w, ld_code(p + lay->code_off + i), it.slot, &t, &n);
    if (r != 0)
        return r;
    memcpy(out, &w, 8);
    out[8] = 0;
    return 0;
}

/* The word for "<n>s" (n <= FMT_N_MAX: at most 7 digits), NUL-padded. */
static uint64_t str_format(uint64_t n)
{
    char digits[8], f[8] = {0};
    int k = 0, j = 0;

    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (k)
        f[j++] = digits[--k];
    f[j] = 's';
    return fmt_word(f);
}

/* Store a checked value in a located slot (str/bytes: v->s.len <= capacity). */
static void write_item(unsigned char *p, const pshm__list_layout *lay, uint64_t i, const item *it,
                       const pshm_value *v)
{
    uint64_t w, fw;
    unsigned char bytes[8] = {0};
    int code;

    if (v->type == PSHM_STR || v->type == PSHM_BYTES) {
        uint64_t cap = str_capacity(it->slot);
        /* The format always spans the whole slot, as CPython's own do. */
        fw = str_format(cap);
        code = v->type == PSHM_STR ? CODE_STR : CODE_BYTES;
        if (v->s.len)
            memcpy(p + it->off, v->s.ptr, v->s.len);
        memset(p + it->off + v->s.len, 0, (size_t)(cap - v->s.len));
    } else {
        switch (v->type) {
        case PSHM_INT:
            fw = W_INT;
            memcpy(&w, &v->i, 8);
            break;
        case PSHM_FLOAT:
            fw = W_FLOAT;
            memcpy(&w, &v->f, 8);
            break;
        case PSHM_BOOL:
            fw = W_BOOL;
            bytes[7] = v->b != 0; /* "xxxxxxx?": the pad bytes are written as zero */
            memcpy(&w, bytes, 8);
            break;
        default:
            fw = W_NONE;
            w = 0; /* "xxxxxx?x" packs None as False: eight zero bytes */
            break;
        }
        code = v->type == PSHM_NONE ? CODE_NONE : CODE_VALUE;
        st64(p + it->off, w);
    }
    /* A same-type set ends here: the value was one store (or, for str and
     * bytes, one slot's bytes). */
    if (ld64(p + lay->fmt_off + 8 * i) != fw)
        st64(p + lay->fmt_off + 8 * i, fw);
    if (ld_code(p + lay->code_off + i) != code)
        st_code(p + lay->code_off + i, code);
}

int pshm__list_item_set(void *buf, const pshm__list_layout *lay, uint64_t i, const pshm_value *v)
{
    unsigned char *p = buf;
    item it;
    uint64_t slot;
    int r;

    /* Everything is checked before the first byte is written. */
    r = value_check(v, &slot);
    if (r != 0)
        return r;
    r = locate(p, lay, i, &it);
    if (r != 0)
        return r;
    if ((v->type == PSHM_STR || v->type == PSHM_BYTES) && v->s.len > str_capacity(it.slot))
        return -PSHM_ELIST_NOSPACE;
    write_item(p, lay, i, &it, v);
    return 0;
}

/* ----------------------------------------------------------- handles */

static int norm_index(const pshm_list *l, int64_t i, uint64_t *out)
{
    uint64_t n = l->lay.n;

    if (i < 0) {
        uint64_t back = (uint64_t)(-(i + 1)) + 1; /* -i without overflow at INT64_MIN */
        if (back > n)
            return -PSHM_ELIST_INDEX;
        *out = n - back;
        return 0;
    }
    if ((uint64_t)i >= n)
        return -PSHM_ELIST_INDEX;
    *out = (uint64_t)i;
    return 0;
}

/* Write checked values into a fresh (zeroed) block of exactly the list's size. */
static void write_list(unsigned char *p, const pshm_value *items, size_t n,
                       const pshm__list_layout *lay)
{
    uint64_t off = 0;

    st64(p + 8, 0);
    for (size_t i = 0; i < n; i++) {
        item it = {lay->data_off + off, new_slot(&items[i])};
        off += it.slot;
        st64(p + 16 + 8 * i, off);
        write_item(p, lay, i, &it, &items[i]);
    }
    /* Publish: an opener that sees N sees the rest. */
    __atomic_store_n((uint64_t *)(void *)p, (uint64_t)n, __ATOMIC_RELEASE);
}

int pshm_list_create(const char *name, const pshm_value *items, size_t n,
                     const pshm_block_options *opt, pshm_list **out)
{
    pshm__list_layout lay;
    uint64_t data = 0, size;
    pshm_list *l;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (n > 0 && !items)
        return -EINVAL;
    if (opt && PSHM__HAS_FIELD(opt, pshm_block_options, open_existing) && opt->open_existing)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        uint64_t slot;
        r = value_check(&items[i], &slot);
        if (r != 0)
            return r;
        if (slot == UINT64_MAX)
            return -PSHM_ELIST_TOOBIG;
        if (__builtin_add_overflow(data, slot, &data) || data > INT64_MAX)
            return -EOVERFLOW;
    }
    /* 8 (N) + 8(N+1) (offsets) + D + 8N (formats) + N (codes) */
    if ((uint64_t)n > (INT64_MAX - 16) / 17 || 17 * (uint64_t)n + 16 > INT64_MAX - data)
        return -EOVERFLOW;
    size = 17 * (uint64_t)n + 16 + data;
    if (size > SIZE_MAX)
        return -EOVERFLOW;
    lay.n = n;
    lay.data_off = ((uint64_t)n + 2) * 8;
    lay.data_len = data;
    lay.fmt_off = lay.data_off + data;
    lay.code_off = lay.fmt_off + 8 * (uint64_t)n;
    lay.size = size;

    /* Allocate first: once the block exists nothing can fail. */
    l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    r = pshm_block_create(name, (size_t)size, opt, &l->block);
    if (r != 0) {
        free(l);
        return r;
    }
    l->base = pshm_block_data(l->block);
    l->lay = lay;
    write_list(l->base, items, n, &lay);
    *out = l;
    return 0;
}

int pshm_list_open(const char *name, const pshm_block_options *opt, pshm_list **out)
{
    pshm_list *l;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    r = pshm_block_open(name, opt, &l->block);
    if (r != 0) {
        free(l);
        return r;
    }
    PSHM__FAULT("list.open.mapped"); /* a peer may shrink the block now */
    l->base = pshm_block_data(l->block);
    l->readonly = pshm_block_readonly(l->block);
    /* Against the size now: a peer that shrank the block since it was
     * mapped is an error, not a SIGBUS in the parse below. */
    uint64_t now = 0;
    r = pshm__inspect_size(pshm_block_fd(l->block), &now);
    if (r == 0 && now != pshm_block_size(l->block))
        r = -PSHM_ELIST_SIZE;
    if (r == 0)
        r = pshm__list_parse(l->base, pshm_block_size(l->block), &l->lay);
    if (r != 0) {
        (void)pshm_block_close(l->block);
        free(l);
        return r;
    }
    *out = l;
    return 0;
}

int pshm_list_close(pshm_list *l)
{
    int r;

    if (!l)
        return 0;
    r = pshm_block_close(l->block);
    if (!l->block)
        free(l->base); /* a snapshot's copy */
    free(l);
    return r;
}

/* ------------------------------------------------------------ inspection */

/*
 * Before reading a list's tables, two words tell whether it can be one: N,
 * and offsets[N] = D, which must make the block exactly 16 + 17N + D bytes.
 * So a large raw block is refused after two small reads, not after copying
 * gigabytes. Returns 0 and *n, or the code the full parse would give.
 */
static int list_plausible(int fd, uint64_t size, uint64_t *n)
{
    uint64_t w[1], d;
    size_t got;
    int r;

    r = pshm__inspect_read(fd, w, 8, 0, &got);
    if (r != 0)
        return r;
    if (got < 8 || size < 16)
        return -PSHM_ELIST_SIZE;
    *n = w[0];
    if (*n > INT64_MAX || *n > (size - 16) / 8)
        return -PSHM_ELIST_COUNT;
    r = pshm__inspect_read(fd, w, 8, 8 + 8 * *n, &got);
    if (r != 0)
        return r;
    if (got < 8)
        return -PSHM_ELIST_SIZE;
    d = w[0];
    if (d > size - 16 - 8 * *n)
        return -PSHM_ELIST_OFFSETS; /* the data would end past the block */
#if !defined(__APPLE__)
    if (*n > (size - 16) / 17 || d != size - 16 - 17 * *n)
        return -PSHM_ELIST_SIZE;
#else
    (void)d;
#endif
    return 0;
}

int pshm_list_snapshot(const char *name, pshm_list **out)
{
    pshm_list *l = NULL;
    uint64_t size;
    size_t got;
    int fd, r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    uint64_t n;
    r = pshm__inspect_open(name, &fd, &size);
    if (r != 0)
        return r;
    r = list_plausible(fd, size, &n);
    if (r == 0 && size > SIZE_MAX - 8)
        r = -ENOMEM;
    if (r != 0) {
        close(fd);
        return r;
    }
    l = calloc(1, sizeof *l);
    /* One byte more than the size: a block that grew since is not a list
     * of this size, and parse says so (its length is not the layout's). */
    if (l)
        l->base = pshm__inspect_alloc((size_t)size + 1);
    r = l && l->base ? pshm__inspect_read(fd, l->base, (size_t)size + 1, 0, &got) : -ENOMEM;
    close(fd);
    if (r == 0)
        r = pshm__list_parse(l->base, got, &l->lay);
    if (r != 0) {
        if (l)
            free(l->base);
        free(l);
        return r;
    }
    l->readonly = 1;
    *out = l;
    return 0;
}

int pshm__list_stat_fd(int fd, uint64_t size, pshm__list_layout *lay)
{
    unsigned char *head = NULL, *fc = NULL;
    uint64_t n;
    size_t got;
    int r;

    /* N first, then exactly the offsets table N asks for (bounded by the
     * size), then the formats and codes: never the data area. */
    r = list_plausible(fd, size, &n);
    if (r == 0) {
        head = pshm__inspect_alloc((size_t)(n + 2) * 8);
        r = head ? pshm__inspect_read(fd, head, (size_t)(n + 2) * 8, 0, &got) : -ENOMEM;
    }
    if (r == 0)
        r = parse_head(head, got, size, lay);
    if (r == 0) {
        fc = pshm__inspect_alloc((size_t)(9 * lay->n));
        r = fc ? pshm__inspect_read(fd, fc, (size_t)(9 * lay->n), lay->fmt_off, &got) : -ENOMEM;
        if (r == 0 && got < 9 * lay->n)
            r = -PSHM_ELIST_SIZE; /* cut short since we took its size */
    }
    if (r == 0)
        r = parse_items(head, fc, lay);
    free(head);
    free(fc);
    return r;
}

int pshm_list_stat(const char *name, pshm_list_info *out)
{
    pshm__list_layout lay;
    pshm_list_info in;
    uint64_t size;
    int fd, r;

    if (!out || !PSHM__HAS_FIELD(out, pshm_list_info, len))
        return -EINVAL;
    r = pshm__inspect_open(name, &fd, &size);
    if (r != 0)
        return r;
    r = pshm__list_stat_fd(fd, size, &lay);
    close(fd);
    if (r != 0)
        return r;
    pshm_list_info_init(&in);
    in.len = lay.n;
    in.size = lay.size;
    in.data_bytes = lay.data_len;
    in.struct_size = out->struct_size;
    memcpy(out, &in, out->struct_size < sizeof in ? out->struct_size : sizeof in);
    return 0;
}

size_t pshm_list_len(const pshm_list *l)
{
    return l ? (size_t)l->lay.n : 0;
}

pshm_block *pshm_list_block(const pshm_list *l)
{
    return l ? l->block : NULL;
}

int pshm_list_type(const pshm_list *l, int64_t i, pshm_vtype *out)
{
    uint64_t k;
    int r;

    if (!l || !out)
        return -EINVAL;
    r = norm_index(l, i, &k);
    return r != 0 ? r : pshm__list_item_type(l->base, &l->lay, k, out);
}

int pshm_list_get(const pshm_list *l, int64_t i, pshm_value *out)
{
    pshm_value v;
    uint64_t k;
    int r;

    if (!l || !out)
        return -EINVAL;
    r = norm_index(l, i, &k);
    if (r != 0)
        return r;
    r = pshm__list_item_get(l->base, &l->lay, k, &v);
    if (r == 0)
        *out = v;
    return r;
}

int pshm_list_set(pshm_list *l, int64_t i, const pshm_value *v)
{
    uint64_t k;
    int r;

    if (!l || !v)
        return -EINVAL;
    r = norm_index(l, i, &k);
    if (r != 0)
        return r;
    if (l->readonly)
        return -PSHM_ELIST_READONLY;
    return pshm__list_item_set(l->base, &l->lay, k, v);
}

int pshm_list_capacity(const pshm_list *l, int64_t i, size_t *out)
{
    uint64_t k;
    int r;

    if (!l || !out)
        return -EINVAL;
    r = norm_index(l, i, &k);
    return r != 0 ? r : pshm__list_item_capacity(l->base, &l->lay, k, out);
}

/* Scan for items equal to *v: count them all, or stop at the first. */
static int scan(const pshm_list *l, const pshm_value *v, int first, size_t *out)
{
    uint64_t slot;
    size_t hits = 0;
    int r;

    if (!l || !v || !out)
        return -EINVAL;
    r = value_check(v, &slot);
    if (r != 0)
        return r;
    for (uint64_t i = 0; i < l->lay.n; i++) {
        pshm_value e;
        r = pshm__list_item_get(l->base, &l->lay, i, &e);
        if (r != 0)
            return r;
        if (pshm__value_equal(v, &e)) {
            if (first) {
                *out = (size_t)i;
                return 0;
            }
            hits++;
        }
    }
    if (first)
        return -PSHM_ELIST_NOTFOUND;
    *out = hits;
    return 0;
}

int pshm_list_count(const pshm_list *l, const pshm_value *v, size_t *out)
{
    return scan(l, v, 0, out);
}

int pshm_list_index(const pshm_list *l, const pshm_value *v, size_t *out)
{
    return scan(l, v, 1, out);
}

int pshm_list_format(const pshm_list *l, char *buf, size_t cap, size_t *len)
{
    size_t need = 0, put = 0;
    int r;

    if (!l || (!buf) != (!cap))
        return -EINVAL;
    for (uint64_t i = 0; i < l->lay.n; i++) {
        char f[9];
        r = pshm__list_item_format(l->base, &l->lay, i, f);
        if (r != 0)
            return r;
        size_t k = strlen(f);
        if (put == need && need + k < cap) {
            memcpy(buf + need, f, k);
            put += k;
        }
        need += k;
    }
    if (len)
        *len = need;
    if (!buf)
        return 0;
    buf[put] = 0;
    return put == need ? 0 : -ERANGE;
}
