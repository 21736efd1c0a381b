/* SPDX-License-Identifier: MIT */
/* test_list.c - ShareableList: layout, get/set, errors, validation, processes. */
#include "harness.h"
#include "list_internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static pshm_list *mk(const char *name, const pshm_value *v, size_t n)
{
    pshm_list *l = NULL;
    CHECK_OK(pshm_list_create(name, v, n, NULL, &l));
    CHECK(l != NULL);
    return l;
}

static void drop(pshm_list *l)
{
    CHECK_OK(pshm_block_unlink(pshm_list_block(l)));
    CHECK_OK(pshm_list_close(l));
}

static unsigned char *bytes_of(pshm_list *l)
{
    return pshm_block_data(pshm_list_block(l));
}

static size_t size_of(pshm_list *l)
{
    return pshm_block_size(pshm_list_block(l));
}

/* A copy of a list's bytes in its own exactly-sized, 8-aligned allocation,
 * so AddressSanitizer sees any read past the end. */
static unsigned char *copy_of(const void *p, size_t n)
{
    unsigned char *c = aligned_alloc(8, (n + 7) / 8 * 8);
    CHECK(c != NULL);
    memcpy(c, p, n);
    return c;
}

static void check_value(pshm_list *l, int64_t i, const pshm_value *want)
{
    pshm_value got;
    CHECK_OK(pshm_list_get(l, i, &got));
    if (got.type != want->type)
        th_fail(__FILE__, __LINE__, "item %lld: type %s, want %s", (long long)i,
                pshm_vtype_name(got.type), pshm_vtype_name(want->type));
    switch (want->type) {
    case PSHM_INT: CHECK_EQ(got.i, want->i); break;
    case PSHM_FLOAT:
        CHECK(memcmp(&got.f, &want->f, 8) == 0 || (isnan(got.f) && isnan(want->f)));
        break;
    case PSHM_BOOL: CHECK_EQ(got.b, want->b != 0); break;
    case PSHM_NONE: break;
    default:
        CHECK_EQ(got.s.len, want->s.len);
        CHECK(want->s.len == 0 || memcmp(got.s.ptr, want->s.ptr, want->s.len) == 0);
    }
}

static void check_format(pshm_list *l, const char *want)
{
    char buf[4096];
    size_t len;
    CHECK_OK(pshm_list_format(l, buf, sizeof buf, &len));
    CHECK_STR(buf, want);
    CHECK_EQ(len, strlen(want));
}

#define STR(lit) pshm_value_str(lit, sizeof(lit) - 1)
#define BYTES(lit) pshm_value_bytes(lit, sizeof(lit) - 1)

/* ------------------------------------------------------------- layout */

TEST_PORTABLE(worked_example_is_cpythons_166_bytes)
{
    const char *name = th_name("ex");
    pshm_value v[] = {pshm_value_int(1), pshm_value_float(2.5), STR("hi"), BYTES("ab"),
                      pshm_value_none(), pshm_value_bool(1)};
    pshm_list *l = mk(name, v, 6);

    /* The table of the issue, built natively. */
    unsigned char want[166] = {0};
    int64_t q = 6;
    double d = 2.5;
    memcpy(want, &q, 8);
    for (int i = 0; i <= 6; i++) {
        q = 8 * i;
        memcpy(want + 8 + 8 * i, &q, 8);
    }
    q = 1;
    memcpy(want + 64, &q, 8);
    memcpy(want + 72, &d, 8);
    memcpy(want + 80, "hi", 2);
    memcpy(want + 88, "ab", 2);
    want[111] = 1;
    memcpy(want + 112, "q\0\0\0\0\0\0\0d\0\0\0\0\0\0\08s\0\0\0\0\0\08s\0\0\0\0\0\0"
                       "xxxxxx?xxxxxxxx?", 48);
    memcpy(want + 160, "\0\0\1\2\3\0", 6);
    /* spot checks against the hex */
    CHECK_EQ(want[72 + 6], 0x04);
    CHECK_EQ(want[72 + 7], 0x40);

    CHECK_EQ(size_of(l), 166);
    CHECK(memcmp(bytes_of(l), want, 166) == 0);
    CHECK_EQ(pshm_list_len(l), 6);
    check_format(l, "qd8s8sxxxxxx?xxxxxxxx?");
    for (int i = 0; i < 6; i++)
        check_value(l, i, &v[i]);
    drop(l);
}

TEST_PORTABLE(empty_list_is_16_bytes)
{
    const char *name = th_name("empty");
    pshm_list *l = mk(name, NULL, 0), *a = NULL;
    pshm_value v;

    CHECK_EQ(size_of(l), 16);
    CHECK_EQ(pshm_list_len(l), 0);
    CHECK_ERR(pshm_list_get(l, 0, &v), -PSHM_ELIST_INDEX);
    CHECK_ERR(pshm_list_get(l, -1, &v), -PSHM_ELIST_INDEX);
    check_format(l, "");
    CHECK_OK(pshm_list_open(name, NULL, &a));
    CHECK_EQ(pshm_list_len(a), 0);
    CHECK_OK(pshm_list_close(a));
    drop(l);
}

TEST_PORTABLE(every_type_round_trips_through_another_handle)
{
    const char *name = th_name("types");
    static const char utf8[] = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"; /* a é 中 😀: 1-4 bytes */
    pshm_value v[] = {
        pshm_value_int(INT64_MIN), pshm_value_int(INT64_MAX), pshm_value_int(-1),
        pshm_value_int(0), pshm_value_float(NAN), pshm_value_float(INFINITY),
        pshm_value_float(-INFINITY), pshm_value_float(-0.0), pshm_value_float(1e-310),
        pshm_value_bool(0), pshm_value_bool(1), pshm_value_none(),
        pshm_value_str("", 0), pshm_value_bytes(NULL, 0), STR("1234567"), STR("12345678"),
        BYTES("\x00\x01\xff"), pshm_value_str(utf8, sizeof utf8 - 1), STR("a\0b"),
    };
    size_t n = sizeof v / sizeof v[0];
    pshm_list *l = mk(name, v, n), *a = NULL;
    pshm_vtype t;

    CHECK_OK(pshm_list_open(name, NULL, &a));
    CHECK_EQ(pshm_list_len(a), n);
    for (size_t i = 0; i < n; i++) {
        check_value(a, (int64_t)i, &v[i]);
        CHECK_OK(pshm_list_type(a, (int64_t)i, &t));
        CHECK_EQ(t, v[i].type);
    }
    /* -0.0 keeps its sign, NaN stays NaN */
    pshm_value g;
    CHECK_OK(pshm_list_get(a, 7, &g));
    CHECK(signbit(g.f));
    check_format(a, "qqqqddddd" "xxxxxxx?xxxxxxx?xxxxxx?x" "8s8s8s16s" "8s16s8s");
    CHECK_OK(pshm_list_close(a));
    drop(l);
}

TEST_PORTABLE(str_slots_are_sized_by_utf8_length)
{
    const char *name = th_name("utf8");
    /* 'é'*5: 5 characters, 10 bytes. CPython gives it 8 bytes (gh-88336). */
    static const char e5[] = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
    static const char emoji[] = "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"; /* 2 chars, 8 bytes */
    pshm_value v[] = {pshm_value_str(e5, 10), pshm_value_str(emoji, 8)};
    pshm_list *l = mk(name, v, 2);
    size_t cap;

    check_format(l, "16s16s");
    CHECK_OK(pshm_list_capacity(l, 0, &cap));
    CHECK_EQ(cap, 16);
    check_value(l, 0, &v[0]);
    check_value(l, 1, &v[1]);
    drop(l);
}

TEST_PORTABLE(trailing_nuls_are_stripped_as_cpython_does)
{
    const char *name = th_name("nul");
    pshm_value v[] = {STR("ab\0\0"), BYTES("\0x\0")};
    pshm_list *l = mk(name, v, 2);
    pshm_value want0 = STR("ab"), want1 = BYTES("\0x");

    check_value(l, 0, &want0);
    check_value(l, 1, &want1);
    drop(l);
}

/* ------------------------------------------------------------ get/set */

TEST_PORTABLE(negative_indices_count_from_the_end)
{
    const char *name = th_name("neg");
    pshm_value v[] = {pshm_value_int(10), pshm_value_int(20), pshm_value_int(30)};
    pshm_list *l = mk(name, v, 3);
    pshm_value g;

    check_value(l, -1, &v[2]);
    check_value(l, -3, &v[0]);
    CHECK_ERR(pshm_list_get(l, -4, &g), -PSHM_ELIST_INDEX);
    CHECK_ERR(pshm_list_get(l, 3, &g), -PSHM_ELIST_INDEX);
    CHECK_ERR(pshm_list_get(l, INT64_MIN, &g), -PSHM_ELIST_INDEX);
    CHECK_ERR(pshm_list_get(l, INT64_MAX, &g), -PSHM_ELIST_INDEX);
    CHECK_OK(pshm_list_set(l, -2, &v[0]));
    check_value(l, 1, &v[0]);
    CHECK_ERR(pshm_list_set(l, -4, &v[0]), -PSHM_ELIST_INDEX);
    drop(l);
}

TEST_PORTABLE(set_may_change_the_type)
{
    const char *name = th_name("retype");
    pshm_value v[] = {pshm_value_int(1), STR("sixteen bytes..!")}; /* slots 8 and 24 */
    pshm_list *l = mk(name, v, 2);
    pshm_value s = STR("12345678"), b = BYTES("xyz"), f = pshm_value_float(-2.25),
               t = pshm_value_bool(1), nn = pshm_value_none(), i = pshm_value_int(-5);

    check_format(l, "q24s");
    CHECK_OK(pshm_list_set(l, 0, &s)); /* int -> str: the slot is 8 bytes */
    check_value(l, 0, &s);
    check_format(l, "8s24s");
    CHECK_OK(pshm_list_set(l, 0, &b));
    check_value(l, 0, &b);
    check_format(l, "8s24s");
    CHECK_OK(pshm_list_set(l, 0, &f));
    check_value(l, 0, &f);
    CHECK_OK(pshm_list_set(l, 1, &t)); /* str -> bool */
    check_value(l, 1, &t);
    check_format(l, "dxxxxxxx?");
    CHECK_OK(pshm_list_set(l, 1, &nn));
    check_value(l, 1, &nn);
    CHECK_OK(pshm_list_set(l, 1, &i));
    check_value(l, 1, &i);
    CHECK_OK(pshm_list_set(l, 1, &s)); /* back to str: the whole slot is the room */
    check_value(l, 1, &s);
    check_format(l, "d24s");
    pshm_value big = STR("twenty-four bytes, full!");
    CHECK_OK(pshm_list_set(l, 1, &big));
    check_value(l, 1, &big);
    drop(l);
}

TEST_PORTABLE(exactly_full_slots_fit_one_more_byte_does_not)
{
    const char *name = th_name("full");
    pshm_value v[] = {STR("1234567"), pshm_value_int(0)};
    pshm_list *l = mk(name, v, 2);
    pshm_value eight = STR("abcdefgh"), nine = STR("abcdefghi");
    size_t cap;

    CHECK_OK(pshm_list_capacity(l, -1, &cap));
    CHECK_EQ(cap, 8);
    CHECK_OK(pshm_list_set(l, 0, &eight));
    check_value(l, 0, &eight); /* no NUL left in the slot: still read right */
    CHECK_OK(pshm_list_set(l, 1, &eight));
    check_value(l, 1, &eight);
    check_value(l, 0, &eight);
    CHECK_ERR(pshm_list_set(l, 0, &nine), -PSHM_ELIST_NOSPACE);
    check_value(l, 0, &eight);
    drop(l);
}

TEST_PORTABLE(a_failed_set_changes_nothing)
{
    const char *name = th_name("failset");
    pshm_value v[] = {STR("abc"), pshm_value_int(7), pshm_value_none()};
    pshm_list *l = mk(name, v, 3), *ro = NULL;
    size_t n = size_of(l);
    unsigned char *before = copy_of(bytes_of(l), n);
    pshm_value bad_utf8 = STR("\xc3("), too_long = STR("123456789"), bad_type = v[0],
               null_ptr = pshm_value_bytes(NULL, 3), ok = pshm_value_int(1);
    bad_type.type = (pshm_vtype)42;

    CHECK_ERR(pshm_list_set(l, 0, &too_long), -PSHM_ELIST_NOSPACE);
    CHECK_ERR(pshm_list_set(l, 1, &too_long), -PSHM_ELIST_NOSPACE);
    CHECK_ERR(pshm_list_set(l, 0, &bad_utf8), -PSHM_ELIST_UTF8);
    CHECK_ERR(pshm_list_set(l, 1, &bad_type), -EINVAL);
    CHECK_ERR(pshm_list_set(l, 2, &null_ptr), -EINVAL);
    CHECK_ERR(pshm_list_set(l, 3, &ok), -PSHM_ELIST_INDEX);
    CHECK_ERR(pshm_list_set(l, -4, &ok), -PSHM_ELIST_INDEX);
    CHECK_ERR(pshm_list_set(l, 0, NULL), -EINVAL);
    CHECK_ERR(pshm_list_set(NULL, 0, &ok), -EINVAL);
    pshm_block_options o;
    pshm_block_options_init(&o);
    o.readonly = 1;
    CHECK_OK(pshm_list_open(name, &o, &ro));
    CHECK_ERR(pshm_list_set(ro, 0, &ok), -PSHM_ELIST_READONLY);
    check_value(ro, 0, &v[0]);
    CHECK_OK(pshm_list_close(ro));
    CHECK(memcmp(before, bytes_of(l), n) == 0);
    free(before);
    drop(l);
}

TEST_PORTABLE(a_failed_create_leaves_no_block)
{
    const char *name = th_name("failcreate");
    pshm_list *l = (pshm_list *)1;
    pshm_value v[] = {pshm_value_int(1), STR("\xed\xa0\x80")}; /* a UTF-8 surrogate */
    pshm_block_options o;

    CHECK_ERR(pshm_list_create(name, v, 2, NULL, &l), -PSHM_ELIST_UTF8);
    CHECK(l == NULL);
    CHECK(!th_exists(name));
    v[1].type = (pshm_vtype)-1;
    CHECK_ERR(pshm_list_create(name, v, 2, NULL, &l), -EINVAL);
    v[1] = pshm_value_str(NULL, 1);
    CHECK_ERR(pshm_list_create(name, v, 2, NULL, &l), -EINVAL);
    CHECK_ERR(pshm_list_create(name, NULL, 2, NULL, &l), -EINVAL);
    CHECK_ERR(pshm_list_create(name, v, 1, NULL, NULL), -EINVAL);
    pshm_block_options_init(&o);
    o.open_existing = 1;
    CHECK_ERR(pshm_list_create(name, v, 1, &o, &l), -EINVAL);
    pshm_block_options_init(&o);
    o.lifetime = (pshm_lifetime)9;
    CHECK_ERR(pshm_list_create(name, v, 1, &o, &l), -EINVAL);
    CHECK_ERR(pshm_list_create("a/b", v, 1, NULL, &l), -PSHM_ENAME_SLASH);
    CHECK(!th_exists(name));

    /* Longest item: 9999991 bytes in a "9999992s" slot; one more byte is too big. */
    char *big = malloc(PSHM_LIST_ITEM_MAX + 1);
    CHECK(big != NULL);
    memset(big, 'z', PSHM_LIST_ITEM_MAX + 1);
    v[1] = pshm_value_bytes(big, PSHM_LIST_ITEM_MAX + 1);
    CHECK_ERR(pshm_list_create(name, v, 2, NULL, &l), -PSHM_ELIST_TOOBIG);
    CHECK(!th_exists(name));
    v[1].s.len = PSHM_LIST_ITEM_MAX;
    CHECK_OK(pshm_list_create(name, v, 2, NULL, &l));
    check_format(l, "q9999992s");
    check_value(l, 1, &v[1]);
    free(big);

    /* A taken name: -EEXIST, and the list there is untouched. */
    pshm_list *l2 = (pshm_list *)1;
    unsigned char *before = copy_of(bytes_of(l), 16);
    CHECK_ERR(pshm_list_create(name, v, 1, NULL, &l2), -EEXIST);
    CHECK(l2 == NULL);
    CHECK(memcmp(before, bytes_of(l), 16) == 0);
    free(before);
    drop(l);
}

TEST(random_names_and_lifetimes)
{
    pshm_value v[] = {pshm_value_int(5)};
    pshm_block_options o;
    pshm_list *l = NULL, *a = NULL;
    char name[PSHM_NAME_MAX + 1];

    CHECK_OK(pshm_list_create(NULL, v, 1, NULL, &l));
    snprintf(name, sizeof name, "%s", pshm_block_name(pshm_list_block(l)));
    CHECK(strncmp(name, "psm_", 4) == 0);
    CHECK(th_exists(name));
    drop(l);

    pshm_block_options_init(&o);
    o.lifetime = PSHM_AUTO;
    CHECK_OK(pshm_list_create(NULL, v, 1, &o, &l));
    snprintf(name, sizeof name, "%s", pshm_block_name(pshm_list_block(l)));
    CHECK_EQ(pshm_block_lifetime(pshm_list_block(l)), PSHM_AUTO);
    CHECK_OK(pshm_list_open(name, NULL, &a));
    CHECK_OK(pshm_list_close(l));
    CHECK(th_exists(name)); /* a still holds it */
    check_value(a, 0, &v[0]);
    CHECK_OK(pshm_list_close(a));
    CHECK(!th_exists(name));

    o.lifetime = PSHM_OWNED;
    CHECK_OK(pshm_list_create(NULL, v, 1, &o, &l));
    snprintf(name, sizeof name, "%s", pshm_block_name(pshm_list_block(l)));
    CHECK_OK(pshm_list_close(l));
    CHECK(!th_exists(name));
    CHECK_OK(pshm_list_close(NULL));
}

/* ------------------------------------------------------ count / index */

TEST_PORTABLE(count_and_index_use_pythons_equality)
{
    const char *name = th_name("count");
    pshm_value v[] = {pshm_value_int(1), pshm_value_float(1.0), pshm_value_bool(1),
                      pshm_value_float(NAN), pshm_value_float(-0.0), pshm_value_int(0),
                      STR("ab"), BYTES("ab"), pshm_value_none(), pshm_value_int(INT64_MAX),
                      pshm_value_float(9223372036854775807.0)};
    pshm_list *l = mk(name, v, sizeof v / sizeof v[0]);
    size_t k;
    pshm_value q;

    q = pshm_value_int(1);
    CHECK_OK(pshm_list_count(l, &q, &k));
    CHECK_EQ(k, 3); /* 1, 1.0, True */
    q = pshm_value_bool(1);
    CHECK_OK(pshm_list_count(l, &q, &k));
    CHECK_EQ(k, 3);
    q = pshm_value_float(0.0);
    CHECK_OK(pshm_list_count(l, &q, &k));
    CHECK_EQ(k, 2); /* -0.0 and 0 */
    q = pshm_value_bool(0);
    CHECK_OK(pshm_list_index(l, &q, &k));
    CHECK_EQ(k, 4);
    q = pshm_value_float(NAN);
    CHECK_OK(pshm_list_count(l, &q, &k));
    CHECK_EQ(k, 0);
    CHECK_ERR(pshm_list_index(l, &q, &k), -PSHM_ELIST_NOTFOUND);
    q = STR("ab");
    CHECK_OK(pshm_list_index(l, &q, &k));
    CHECK_EQ(k, 6);
    q = BYTES("ab");
    CHECK_OK(pshm_list_index(l, &q, &k));
    CHECK_EQ(k, 7);
    q = pshm_value_none();
    CHECK_OK(pshm_list_index(l, &q, &k));
    CHECK_EQ(k, 8);
    /* int64 max is not 2^63 (the double), exactly compared */
    q = pshm_value_int(INT64_MAX);
    CHECK_OK(pshm_list_count(l, &q, &k));
    CHECK_EQ(k, 1);
    q = pshm_value_float(9223372036854775807.0);
    CHECK_OK(pshm_list_count(l, &q, &k));
    CHECK_EQ(k, 1);
    q = STR("\xff");
    CHECK_ERR(pshm_list_count(l, &q, &k), -PSHM_ELIST_UTF8);
    q.type = (pshm_vtype)77;
    CHECK_ERR(pshm_list_index(l, &q, &k), -EINVAL);
    drop(l);
}

TEST_PORTABLE(format_buffer_sizes)
{
    const char *name = th_name("fmt");
    pshm_value v[] = {pshm_value_int(1), STR("hi")};
    pshm_list *l = mk(name, v, 2);
    char buf[8];
    size_t len = 0;

    CHECK_OK(pshm_list_format(l, NULL, 0, &len));
    CHECK_EQ(len, 3);
    CHECK_OK(pshm_list_format(l, buf, 4, &len));
    CHECK_STR(buf, "q8s");
    CHECK_ERR(pshm_list_format(l, buf, 3, &len), -ERANGE);
    CHECK_EQ(len, 3);
    CHECK_STR(buf, "q"); /* whole item formats only */
    CHECK_ERR(pshm_list_format(l, buf, 0, &len), -EINVAL);
    CHECK_ERR(pshm_list_format(l, NULL, 5, &len), -EINVAL);
    drop(l);
}

/* -------------------------------------------------------- validation */

/* A valid list's bytes, in an exactly-sized buffer: [7, 'abc', None, True]. */
static unsigned char *sample(size_t *n, pshm__list_layout *lay)
{
    const char *name = th_name("sample");
    pshm_value v[] = {pshm_value_int(7), STR("abc"), pshm_value_none(), pshm_value_bool(1)};
    pshm_list *l = mk(name, v, 4);
    *n = size_of(l);
    unsigned char *c = copy_of(bytes_of(l), *n);
    drop(l);
    CHECK_OK(pshm__list_parse(c, *n, lay));
    return c;
}

static void put64(unsigned char *p, int64_t v)
{
    memcpy(p, &v, 8);
}

/* Mutate a fresh copy with fn, then parse: expect `want`. */
static void expect_parse(const unsigned char *orig, size_t n, const pshm__list_layout *lay,
                         void (*fn)(unsigned char *, const pshm__list_layout *), int want,
                         const char *what)
{
    unsigned char *c = copy_of(orig, n);
    pshm__list_layout out;
    fn(c, lay);
    int r = pshm__list_parse(c, n, &out);
    if (r != want)
        th_fail(__FILE__, __LINE__, "%s: got %s, want %s", what, pshm_errname(r), pshm_errname(want));
    free(c);
}

static void m_neg_count(unsigned char *p, const pshm__list_layout *l) { put64(p, -1); }
static void m_huge_count(unsigned char *p, const pshm__list_layout *l) { put64(p, INT64_MAX); }
static void m_count_plus(unsigned char *p, const pshm__list_layout *l) { put64(p, 5); }
static void m_count_big(unsigned char *p, const pshm__list_layout *l) { put64(p, 13); }
static void m_off0(unsigned char *p, const pshm__list_layout *l) { put64(p + 8, 8); }
static void m_decreasing(unsigned char *p, const pshm__list_layout *l) { put64(p + 24, 0); }
static void m_equal(unsigned char *p, const pshm__list_layout *l) { put64(p + 24, 8); }
static void m_misaligned(unsigned char *p, const pshm__list_layout *l) { put64(p + 24, 12); }
static void m_past_end(unsigned char *p, const pshm__list_layout *l) { put64(p + 40, 1 << 20); }
static void m_neg_off(unsigned char *p, const pshm__list_layout *l) { put64(p + 40, -8); }
static void m_fmt_unknown(unsigned char *p, const pshm__list_layout *l) { p[l->fmt_off] = 'z'; }
static void m_fmt_long(unsigned char *p, const pshm__list_layout *l)
{
    memcpy(p + l->fmt_off + 8, "9s\0\0\0\0\0\0", 8); /* 9 bytes in an 8-byte slot */
}
static void m_fmt_zero(unsigned char *p, const pshm__list_layout *l)
{
    memcpy(p + l->fmt_off + 8, "08s\0\0\0\0\0", 8);
}
static void m_fmt_tail(unsigned char *p, const pshm__list_layout *l) { p[l->fmt_off + 15] = 'x'; }
static void m_fmt_empty(unsigned char *p, const pshm__list_layout *l) { memset(p + l->fmt_off, 0, 8); }
static void m_code_4(unsigned char *p, const pshm__list_layout *l) { p[l->code_off] = 4; }
static void m_code_neg(unsigned char *p, const pshm__list_layout *l) { p[l->code_off + 3] = 0xff; }
static void m_q_str(unsigned char *p, const pshm__list_layout *l) { p[l->code_off] = 1; }
static void m_s_value(unsigned char *p, const pshm__list_layout *l) { p[l->code_off + 1] = 0; }
static void m_none_value(unsigned char *p, const pshm__list_layout *l) { p[l->code_off + 2] = 0; }
static void m_bool_none(unsigned char *p, const pshm__list_layout *l) { p[l->code_off + 3] = 3; }
static void m_nothing(unsigned char *p, const pshm__list_layout *l) {}

TEST_PORTABLE(parse_names_each_failure_class)
{
    pshm__list_layout lay, out;
    size_t n;
    unsigned char *c = sample(&n, &lay);

    CHECK_EQ(n, 8 * 6 + 32 + 32 + 4);
    CHECK_EQ(lay.n, 4);
    CHECK_EQ(lay.data_off, 48);
    CHECK_EQ(lay.data_len, 32);
    expect_parse(c, n, &lay, m_nothing, 0, "valid");
    expect_parse(c, n, &lay, m_neg_count, -PSHM_ELIST_COUNT, "N = -1");
    expect_parse(c, n, &lay, m_huge_count, -PSHM_ELIST_COUNT, "N = INT64_MAX");
    expect_parse(c, n, &lay, m_count_big, -PSHM_ELIST_COUNT, "N = 13: no room for 14 offsets");
    /* N + 1: offsets[5] would be the first item's value (7), less than offsets[4] */
    expect_parse(c, n, &lay, m_count_plus, -PSHM_ELIST_OFFSETS, "N + 1");
    expect_parse(c, n, &lay, m_off0, -PSHM_ELIST_OFFSETS, "offsets[0] != 0");
    expect_parse(c, n, &lay, m_decreasing, -PSHM_ELIST_OFFSETS, "decreasing");
    expect_parse(c, n, &lay, m_equal, -PSHM_ELIST_OFFSETS, "empty slot");
    expect_parse(c, n, &lay, m_misaligned, -PSHM_ELIST_OFFSETS, "misaligned");
    expect_parse(c, n, &lay, m_past_end, -PSHM_ELIST_OFFSETS, "past the end");
    expect_parse(c, n, &lay, m_neg_off, -PSHM_ELIST_OFFSETS, "negative offset");
    expect_parse(c, n, &lay, m_fmt_unknown, -PSHM_ELIST_FORMAT, "format 'z'");
    expect_parse(c, n, &lay, m_fmt_long, -PSHM_ELIST_FORMAT, "9s in 8 bytes");
    expect_parse(c, n, &lay, m_fmt_zero, -PSHM_ELIST_FORMAT, "08s");
    expect_parse(c, n, &lay, m_fmt_tail, -PSHM_ELIST_FORMAT, "bytes after the NULs");
    expect_parse(c, n, &lay, m_fmt_empty, -PSHM_ELIST_FORMAT, "empty format");
    expect_parse(c, n, &lay, m_code_4, -PSHM_ELIST_CODE, "code 4");
    expect_parse(c, n, &lay, m_code_neg, -PSHM_ELIST_CODE, "code -1");
    expect_parse(c, n, &lay, m_q_str, -PSHM_ELIST_MISMATCH, "q with code 1");
    expect_parse(c, n, &lay, m_s_value, -PSHM_ELIST_MISMATCH, "8s with code 0");
    expect_parse(c, n, &lay, m_none_value, -PSHM_ELIST_MISMATCH, "None with code 0");
    expect_parse(c, n, &lay, m_bool_none, -PSHM_ELIST_MISMATCH, "bool with code 3");

    /* sizes: short, truncated, trailing bytes, a zeroed block */
    CHECK_ERR(pshm__list_parse(c, 15, &out), -PSHM_ELIST_SIZE);
    CHECK_ERR(pshm__list_parse(c, n - 1, &out), -PSHM_ELIST_SIZE);
    unsigned char *big = calloc(1, n + 8);
    memcpy(big, c, n);
    CHECK_ERR(pshm__list_parse(big, n + 8, &out), -PSHM_ELIST_SIZE);
    memset(big, 0, n + 8);
    CHECK_ERR(pshm__list_parse(big, n + 8, &out), -PSHM_ELIST_SIZE);
    CHECK_OK(pshm__list_parse(big, 16, &out)); /* 16 zero bytes are [] */
    CHECK_EQ(out.n, 0);
    CHECK_ERR(pshm__list_parse(big + 1, 16, &out), -EINVAL); /* misaligned buffer */
    CHECK_ERR(pshm__list_parse(NULL, 16, &out), -EINVAL);
    free(big);
    free(c);
}

/* Every prefix of a valid list, and random corruptions: an error or a list
 * whose items all decode; never a read outside (ASan runs this too). */
TEST_FLAGS(parse_survives_truncation_and_random_bytes, 120, TH_PORTABLE)
{
    pshm__list_layout lay, out;
    size_t n;
    unsigned char *c = sample(&n, &lay);
    uint64_t seed = 0x9e3779b97f4a7c15u;

    for (size_t k = 0; k < n; k++) {
        unsigned char *t = copy_of(c, k ? k : 1);
        int r = pshm__list_parse(t, k, &out);
        /* cut before the offsets end, inside the data area, after it */
        CHECK_ERR(r, k < 16   ? -PSHM_ELIST_SIZE
                     : k < 48 ? -PSHM_ELIST_COUNT
                     : k < 80 ? -PSHM_ELIST_OFFSETS
                              : -PSHM_ELIST_SIZE);
        free(t);
    }
    for (int round = 0; round < 20000; round++) {
        unsigned char *t = copy_of(c, n);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            t[(seed >> 33) % n] = (unsigned char)(seed >> 17);
        }
        int r = pshm__list_parse(t, n, &out);
        if (r == 0) {
            for (uint64_t i = 0; i < out.n; i++) {
                pshm_value v;
                char f[9];
                r = pshm__list_item_get(t, &out, i, &v);
                CHECK(r == 0 || r == -PSHM_ELIST_UTF8);
                CHECK_OK(pshm__list_item_format(t, &out, i, f));
            }
        } else {
            CHECK(r <= -PSHM_ELIST_SIZE && r >= -PSHM_ELIST_MISMATCH);
        }
        free(t);
    }
    free(c);
}

TEST_PORTABLE(open_rejects_invalid_blocks_cleanly)
{
    const char *name = th_name("invalid");
    pshm_block *b = NULL;
    pshm_list *l = (pshm_list *)1;

    /* A zeroed 4 KiB block is not an empty list. */
    CHECK_OK(pshm_block_create(name, 4096, NULL, &b));
    CHECK_ERR(pshm_list_open(name, NULL, &l), -PSHM_ELIST_SIZE);
    CHECK(l == NULL);
    /* Random-looking bytes: a huge N. */
    memset(pshm_block_data(b), 0xa5, 4096);
    CHECK_ERR(pshm_list_open(name, NULL, &l), -PSHM_ELIST_COUNT);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
    CHECK_ERR(pshm_list_open(name, NULL, &l), -ENOENT);
    CHECK_ERR(pshm_list_open(name, NULL, NULL), -EINVAL);
    /* A block too small for a header */
    CHECK_OK(pshm_block_create(name, 8, NULL, &b));
    CHECK_ERR(pshm_list_open(name, NULL, &l), -PSHM_ELIST_SIZE);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
}

TEST_PORTABLE(items_corrupted_after_open_are_reported)
{
    const char *name = th_name("corrupt");
    pshm_value v[] = {pshm_value_int(1), STR("abc"), pshm_value_int(3)};
    pshm_list *l = mk(name, v, 3);
    unsigned char *p = bytes_of(l);
    pshm_value g, ok = pshm_value_int(9);
    pshm_vtype t;
    size_t k;
    int64_t saved;
    /* layout: N, 4 offsets, data at 40 (8 + 8 + 8), formats at 64, codes at 88 */

    p[64] = '!';
    CHECK_ERR(pshm_list_get(l, 0, &g), -PSHM_ELIST_FORMAT);
    CHECK_ERR(pshm_list_type(l, 0, &t), -PSHM_ELIST_FORMAT);
    CHECK_ERR(pshm_list_count(l, &ok, &k), -PSHM_ELIST_FORMAT);
    char f[64];
    CHECK_ERR(pshm_list_format(l, f, sizeof f, &k), -PSHM_ELIST_FORMAT);
    CHECK_OK(pshm_list_set(l, 0, &ok)); /* a set rewrites the format */
    check_value(l, 0, &ok);
    p[89] = 9;
    CHECK_ERR(pshm_list_get(l, 1, &g), -PSHM_ELIST_CODE);
    p[89] = 2;
    CHECK_OK(pshm_list_get(l, 1, &g));
    CHECK_EQ(g.type, PSHM_BYTES);
    p[89] = 1;
    memcpy(&saved, p + 16, 8);
    put64(p + 16, 1 << 30); /* offsets[1] far out */
    CHECK_ERR(pshm_list_get(l, 0, &g), -PSHM_ELIST_OFFSETS);
    CHECK_ERR(pshm_list_get(l, 1, &g), -PSHM_ELIST_OFFSETS);
    CHECK_ERR(pshm_list_set(l, 1, &ok), -PSHM_ELIST_OFFSETS);
    CHECK_ERR(pshm_list_capacity(l, 1, &k), -PSHM_ELIST_OFFSETS);
    put64(p + 16, saved);
    check_value(l, 2, &v[2]);
    /* a str item made invalid UTF-8 */
    p[40 + 8] = 0xc3;
    CHECK_ERR(pshm_list_get(l, 1, &g), -PSHM_ELIST_UTF8);
    drop(l);
}

/* ------------------------------------------------------- big and fork */

static pshm_value big_item(size_t i, char *buf)
{
    switch (i % 6) {
    case 0: return pshm_value_int((int64_t)i * 7 - 3);
    case 1: return pshm_value_float((double)i + 0.5);
    case 2: return pshm_value_str(buf, (size_t)sprintf(buf, "s%zu", i));
    case 3: return pshm_value_bytes(buf, (size_t)sprintf(buf, "b%zu\x01", i));
    case 4: return pshm_value_none();
    default: return pshm_value_bool(i % 4 == 1);
    }
}

#define BIG_N 100000

HELPER(verify_big)
{
    pshm_list *l;
    char buf[32];

    if (argc < 1 || pshm_list_open(argv[0], NULL, &l) != 0)
        return 2;
    if (pshm_list_len(l) != BIG_N)
        return 3;
    for (size_t i = 0; i < BIG_N; i++) {
        pshm_value want = big_item(i, buf), got;
        if (pshm_list_get(l, (int64_t)i, &got) != 0 || !pshm__value_equal(&want, &got) ||
            got.type != want.type)
            return 4;
    }
    /* write back, for the parent to see */
    pshm_value v = pshm_value_str("child!", 6);
    if (pshm_list_set(l, -2, &v) != 0) /* item 99998: a str (99998 % 6 == 2) */
        return 5;
    pshm_list_close(l);
    return 0;
}

TEST_FLAGS(hundred_thousand_items_across_processes, 120, TH_PORTABLE)
{
    const char *name = th_name("big");
    pshm_value *v = calloc(BIG_N, sizeof *v);
    char (*bufs)[32] = calloc(BIG_N, 32);
    pshm_list *l;

    CHECK(v && bufs);
    for (size_t i = 0; i < BIG_N; i++)
        v[i] = big_item(i, bufs[i]);
    CHECK_OK(pshm_list_create(name, v, BIG_N, NULL, &l));
    CHECK_EQ(pshm_list_len(l), BIG_N);
    CHECK_EQ(th_wait(th_spawn("verify_big", name, NULL), 60000), 0);
    pshm_value want = STR("child!");
    check_value(l, 99998, &want);
    size_t k;
    pshm_value none = pshm_value_none();
    CHECK_OK(pshm_list_count(l, &none, &k));
    CHECK_EQ(k, BIG_N / 6 + (BIG_N % 6 > 4));
    free(v);
    free(bufs);
    drop(l);
}

TEST_PORTABLE(forked_child_uses_the_inherited_handle)
{
    const char *name = th_name("fork");
    pshm_value v[] = {pshm_value_int(1)};
    pshm_list *l = mk(name, v, 1);
    pid_t pid = fork();

    if (pid == 0) {
        pshm_value n = pshm_value_int(2);
        int r = pshm_list_set(l, 0, &n);
        pshm_list_close(l); /* only unmaps in a child */
        _exit(r == 0 ? 0 : 1);
    }
    CHECK_EQ(th_wait(pid, 10000), 0);
    CHECK(th_exists(name));
    pshm_value two = pshm_value_int(2);
    check_value(l, 0, &two);
    drop(l);
}

/* -------------------------------------------------------- concurrency */

/* Patterns whose halves differ, so a torn 8-byte value is visible. */
static const uint64_t PAT[4] = {0x0101010101010101u, 0x0202020202020202u,
                                0xfefefefe01010101u, 0x01010101fefefefeu};
#define MAX_WRITES 400000000L /* a bound, in case the readers never finish */
/* Reads per reader. A set that stores twice (zero, then the value) leaves
 * a window of a few cycles: 2M reads saw it in 4 runs of 10 on 2 busy cores,
 * 20M in 9 of 10 (tests/BREAKS.md, torn-write). */
#define READS 20000000

static uint64_t bits_of(const pshm_value *v)
{
    uint64_t w;
    memcpy(&w, v->type == PSHM_INT ? (const void *)&v->i : (const void *)&v->f, 8);
    return w;
}

/*
 * Items: 0 int and 1 float, written by two writers (argv[1] = pair 0 or 1,
 * two patterns each); 2 and 3, each reader's "done" flag. Writers run
 * until both readers are done.
 */
HELPER(tear_writer)
{
    pshm_list *l;
    int pair = atoi(argv[1]);

    if (pshm_list_open(argv[0], NULL, &l) != 0)
        return 2;
    for (long k = 0; k < MAX_WRITES; k++) {
        uint64_t w = PAT[2 * pair + (k & 1)];
        int64_t i;
        double d;
        memcpy(&i, &w, 8);
        memcpy(&d, &w, 8);
        pshm_value vi = pshm_value_int(i), vf = pshm_value_float(d), d0, d1;
        if (pshm_list_set(l, 0, &vi) != 0 || pshm_list_set(l, 1, &vf) != 0)
            return 3;
        if ((k & 1023) == 0 && pshm_list_get(l, 2, &d0) == 0 && pshm_list_get(l, 3, &d1) == 0 &&
            d0.b && d1.b)
            break;
    }
    pshm_list_close(l);
    return 0;
}

static int known(uint64_t w)
{
    for (int p = 0; p < 4; p++)
        if (w == PAT[p])
            return 1;
    return 0;
}

/* argv: name, which done flag to set (2 or 3). */
HELPER(tear_reader)
{
    pshm_list *l;
    long changes = 0;
    uint64_t last = 0;
    pshm_value v;

    if (pshm_list_open(argv[0], NULL, &l) != 0)
        return 2;
    /* Wait until a writer has set both items (item 0 first, then 1; the
     * test's timeout bounds this): from then on, 0 is never a value of
     * either - a set that zeroes the bytes before writing them, as
     * CPython's does, would show it. */
    do {
        if (pshm_list_get(l, 1, &v) != 0)
            return 3;
    } while (bits_of(&v) == 0);
    for (long k = 0; k < READS; k++) {
        int64_t item = k & 1;
        if (pshm_list_get(l, item, &v) != 0)
            return 3;
        uint64_t w = bits_of(&v);
        if (!known(w)) {
            fprintf(stderr, "torn value %016llx in item %lld\n", (unsigned long long)w,
                    (long long)item);
            return 4;
        }
        changes += w != last;
        last = w;
    }
    v = pshm_value_bool(1);
    if (pshm_list_set(l, atoi(argv[1]), &v) != 0)
        return 5;
    fprintf(stderr, "    reader saw %ld changes in %d reads\n", changes, READS);
    pshm_list_close(l);
    return 0;
}

TEST_FLAGS(concurrent_scalar_sets_never_tear, 150, TH_PORTABLE)
{
    const char *name = th_name("tear");
    pshm_value v[] = {pshm_value_int(0), pshm_value_float(0.0), pshm_value_bool(0),
                      pshm_value_bool(0)};
    pshm_list *l = mk(name, v, 4);
    pid_t r0 = th_spawn("tear_reader", name, "2", NULL);
    pid_t r1 = th_spawn("tear_reader", name, "3", NULL);
    pid_t w0 = th_spawn("tear_writer", name, "0", NULL);
    pid_t w1 = th_spawn("tear_writer", name, "1", NULL);

    CHECK_EQ(th_wait(r0, 120000), 0);
    CHECK_EQ(th_wait(r1, 120000), 0);
    CHECK_EQ(th_wait(w0, 120000), 0);
    CHECK_EQ(th_wait(w1, 120000), 0);
    drop(l);
}
