/* SPDX-License-Identifier: MIT */
/* test_array.c - arrays: dtypes, the .npy header byte for byte, the parser's
 * verdict on good and bad headers, create/open across processes. */
#include "harness.h"

#include "array_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* A .npy image: prefix for format major.0 around dict, then data_len bytes
 * of 0x5a. Returns its length. */
static size_t image(unsigned char *out, size_t cap, int major, const char *dict,
                    size_t data_len)
{
    size_t pre = major == 1 ? 10 : 12, n = strlen(dict);

    CHECK(pre + n + data_len <= cap);
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    out[8] = (unsigned char)(n & 0xff);
    out[9] = (unsigned char)(n >> 8 & 0xff);
    if (pre == 12) {
        out[10] = (unsigned char)(n >> 16 & 0xff);
        out[11] = (unsigned char)(n >> 24 & 0xff);
    }
    memcpy(out + pre, dict, n);
    memset(out + pre + n, 0x5a, data_len);
    return pre + n + data_len;
}

/* dict padded with spaces and a final '\n' so a format 1.0 header ends at
 * a multiple of align. Returns a static buffer. */
static const char *padded(const char *dict, size_t align)
{
    static char out[1024];
    size_t n = strlen(dict);
    size_t total = (10 + n + 1 + align - 1) / align * align;

    CHECK(total - 10 < sizeof out);
    memcpy(out, dict, n);
    memset(out + n, ' ', total - 10 - n - 1);
    out[total - 10 - 1] = '\n';
    out[total - 10] = 0;
    return out;
}

static int parse_dict(int major, const char *dict, size_t data_len, pshm__npy *h)
{
    static unsigned char buf[1 << 16];
    size_t n = image(buf, sizeof buf, major, dict, data_len);
    return pshm__npy_parse(buf, n, h);
}

/* Write raw bytes into a new PERSIST block named name. */
static void raw_block(const char *name, const void *bytes, size_t n)
{
    pshm_block *b = NULL;
    CHECK_OK(pshm_block_create(name, n, NULL, &b));
    memcpy(pshm_block_data(b), bytes, n);
    CHECK_OK(pshm_block_close(b));
}

static void drop(pshm_array *a)
{
    CHECK_OK(pshm_block_unlink(pshm_array_block(a)));
    CHECK_OK(pshm_array_close(a));
}

/* ------------------------------------------------------------------ dtypes */

TEST_PORTABLE(dtype_parse_canonical_forms)
{
    static const struct {
        const char *in, *descr;
        char kind, order;
        size_t itemsize;
    } ok[] = {
        {"<f8", "<f8", 'f', '<', 8},     {">f8", ">f8", 'f', '>', 8},
        {"|u1", "|u1", 'u', '|', 1},     {"<i1", "|i1", 'i', '|', 1},
        {"|b1", "|b1", 'b', '|', 1},     {"b1", "|b1", 'b', '|', 1},
        {"<i2", "<i2", 'i', '<', 2},     {">u4", ">u4", 'u', '>', 4},
        {"<i8", "<i8", 'i', '<', 8},     {">u8", ">u8", 'u', '>', 8},
        {"<f2", "<f2", 'f', '<', 2},     {">f4", ">f4", 'f', '>', 4},
        {"<f16", "<f16", 'f', '<', 16},  {"<c8", "<c8", 'c', '<', 8},
        {">c16", ">c16", 'c', '>', 16},  {"<c32", "<c32", 'c', '<', 32},
        {"|S5", "|S5", 'S', '|', 5},     {">S5", "|S5", 'S', '|', 5},
        {"a7", "|S7", 'S', '|', 7},      {"<U10", "<U10", 'U', '<', 40},
        {">U1", ">U1", 'U', '>', 4},     {"|V16", "|V16", 'V', '|', 16},
        {"|S2147483647", "|S2147483647", 'S', '|', 2147483647},
        {"<U536870911", "<U536870911", 'U', '<', 2147483644},
    };
    static const char *const bad[] = {
        "", "<", "f", "<f", "<f3", "<f08", "<f0", "|S0", "<U0", "|V0", "float64", "<f8 ",
        " <f8", "<i3", "<i16", "<b2", "<c4", "|O8", "<M8", "<M8[ns]", "<m8", "<x4", "<<f8",
        "|S2147483648", "<U536870912", "|S99999999999999", "<f8\n", "d",
    };
    pshm_dtype d;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(&d, 0x55, sizeof d);
        CHECK_OK(pshm_dtype_parse(ok[i].in, &d));
        CHECK_STR(d.descr, ok[i].descr);
        CHECK_EQ(d.kind, ok[i].kind);
        CHECK_EQ(d.byteorder, ok[i].order);
        CHECK_EQ(d.itemsize, ok[i].itemsize);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = pshm_dtype_parse(bad[i], &d);
        if (r != -PSHM_EARRAY_DTYPE)
            th_fail(__FILE__, __LINE__, "'%s' gave %s", bad[i], pshm_errname(r));
    }
    CHECK_ERR(pshm_dtype_parse(NULL, &d), -PSHM_EARRAY_DTYPE);
    CHECK_ERR(pshm_dtype_parse("<f8", NULL), -EINVAL);
}

TEST_PORTABLE(dtype_native_constants)
{
    const uint16_t one = 1;
    const char *le = *(const unsigned char *)&one == 1 ? "<" : ">";
    static const struct {
        const char *c, *suffix;
    } t[] = {
        {PSHM_DT_INT16, "i2"}, {PSHM_DT_UINT16, "u2"}, {PSHM_DT_INT32, "i4"},
        {PSHM_DT_UINT32, "u4"}, {PSHM_DT_INT64, "i8"}, {PSHM_DT_UINT64, "u8"},
        {PSHM_DT_FLOAT16, "f2"}, {PSHM_DT_FLOAT32, "f4"}, {PSHM_DT_FLOAT64, "f8"},
        {PSHM_DT_COMPLEX64, "c8"}, {PSHM_DT_COMPLEX128, "c16"}, {"f8", "f8"}, {"|f8", "f8"},
    };
    pshm_dtype d;
    char want[16];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_OK(pshm_dtype_parse(t[i].c, &d));
        snprintf(want, sizeof want, "%s%s", le, t[i].suffix);
        CHECK_STR(d.descr, want);
    }
    CHECK_OK(pshm_dtype_parse(PSHM_DT_BOOL, &d));
    CHECK_STR(d.descr, "|b1");
    CHECK_OK(pshm_dtype_parse(PSHM_DT_INT8, &d));
    CHECK_STR(d.descr, "|i1");
    CHECK_OK(pshm_dtype_parse(PSHM_DT_UINT8, &d));
    CHECK_STR(d.descr, "|u1");
}

/* ----------------------------------------------------------- header bytes */

/* The dict text np.save (numpy 1.24) writes, cut at the padding. */
static void check_header(const char *descr, int ndim, const int64_t *shape, int fortran,
                         const char *want_dict, size_t want_len)
{
    char out[PSHM__NPY_HEADER_CAP];
    pshm_dtype d;
    size_t len, n = strlen(want_dict);

    CHECK_OK(pshm_dtype_parse(descr, &d));
    CHECK_OK(pshm__npy_write_header(&d, ndim, shape, fortran, out, sizeof out, &len));
    CHECK_EQ(len, want_len);
    CHECK_EQ(len % 64, 0);
    CHECK(memcmp(out, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK_EQ((unsigned char)out[8] | (unsigned char)out[9] << 8, len - 10);
    if (memcmp(out + 10, want_dict, n) != 0)
        th_fail(__FILE__, __LINE__, "header '%.*s' != '%s'", (int)n, out + 10, want_dict);
    for (size_t i = 10 + n; i < len - 1; i++)
        CHECK_EQ(out[i], ' ');
    CHECK_EQ(out[len - 1], '\n');
}

TEST_PORTABLE(header_is_what_np_save_writes)
{
    /* Expected bytes taken from np.save output (numpy 1.24): total length,
     * the dict, then spaces (growth room + padding) and '\n'. */
    int64_t s2[] = {1000, 3}, s1[] = {5}, sf[] = {2, 3}, se[] = {0, 3};
    check_header("<f8", 2, s2, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 3), }",
                 128);
    check_header("|i1", 1, s1, 0, "{'descr': '|i1', 'fortran_order': False, 'shape': (5,), }", 128);
    check_header("<f4", 0, NULL, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 128);
    check_header("<f8", 2, sf, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                 128);
    check_header("<f8", 2, se, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }",
                 128);
    check_header(">U3", 1, s1, 0, "{'descr': '>U3', 'fortran_order': False, 'shape': (5,), }", 128);
    /* A 19-digit growth axis leaves 2 spaces of room; 21 dimensions push
     * the dict past 64 bytes. */
    check_header("<f8", 2, (int64_t[]){INT64_MAX, 0}, 0,
                 "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 0), }  ",
                 128);
    int64_t many[21];
    for (int i = 0; i < 21; i++)
        many[i] = i < 20 ? 1 : 12345;
    check_header("|u1", 21, many, 1,
                 "{'descr': '|u1', 'fortran_order': True, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, "
                 "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 12345), }                ",
                 192);
}

TEST_PORTABLE(header_roundtrips_through_parser)
{
    static const char *const descrs[] = {"|b1", "<i2", ">u8", "<f2", ">c16", "|S3", "<U7", "|V9"};
    char out[PSHM__NPY_HEADER_CAP];
    pshm_dtype d;
    pshm__npy h;
    size_t len;

    for (size_t k = 0; k < sizeof descrs / sizeof descrs[0]; k++) {
        CHECK_OK(pshm_dtype_parse(descrs[k], &d));
        for (int ndim = 0; ndim <= PSHM_ARRAY_MAXDIM; ndim += 7) {
            int64_t shape[PSHM_ARRAY_MAXDIM];
            for (int i = 0; i < ndim; i++)
                shape[i] = i < 3 ? i + 2 : 1;
            for (int f = 0; f < 2; f++) {
                CHECK_OK(pshm__npy_write_header(&d, ndim, shape, f, out, sizeof out, &len));
                CHECK_OK(pshm__npy_parse_header(out, len, &h));
                CHECK_EQ(h.data_offset, len);
                CHECK_EQ(h.ndim, ndim);
                CHECK_EQ(h.fortran_order, f);
                CHECK_STR(h.dtype.descr, d.descr);
                for (int i = 0; i < ndim; i++)
                    CHECK_EQ(h.shape[i], shape[i]);
                /* the data must be there too */
                CHECK_ERR(pshm__npy_parse(out, len, &h),
                          h.nbytes ? -PSHM_EARRAY_TRUNCATED : 0);
            }
        }
    }
    /* the longest dict there can be still fits the cap and format 1.0
     * (as an array it overflows, as numpy would say) */
    int64_t shape[PSHM_ARRAY_MAXDIM];
    for (int i = 0; i < PSHM_ARRAY_MAXDIM; i++)
        shape[i] = INT64_MAX;
    CHECK_OK(pshm_dtype_parse("|S2147483647", &d));
    CHECK_OK(pshm__npy_write_header(&d, PSHM_ARRAY_MAXDIM, shape, 0, out, sizeof out, &len));
    CHECK(len < sizeof out);
    CHECK_EQ(out[6], 1);
    CHECK_ERR(pshm__npy_parse_header(out, len, &h), -PSHM_EARRAY_OVERFLOW);
    /* one huge axis, the others empty: valid, no elements */
    for (int i = 1; i < PSHM_ARRAY_MAXDIM; i++)
        shape[i] = 0;
    CHECK_OK(pshm_dtype_parse("|u1", &d));
    CHECK_OK(pshm__npy_write_header(&d, PSHM_ARRAY_MAXDIM, shape, 0, out, sizeof out, &len));
    CHECK_OK(pshm__npy_parse_header(out, len, &h));
    CHECK_EQ(h.shape[0], INT64_MAX);
    CHECK_EQ(h.nbytes, 0);
    CHECK_ERR(pshm__npy_write_header(&d, PSHM_ARRAY_MAXDIM + 1, shape, 0, out, sizeof out, &len),
              -PSHM_EARRAY_NDIM);
    CHECK_ERR(pshm__npy_write_header(&d, 1, (int64_t[]){-1}, 0, out, sizeof out, &len),
              -PSHM_EARRAY_SHAPE);
    CHECK_ERR(pshm__npy_write_header(&d, 1, shape, 0, out, 100, &len), -ENOSPC);
}

/* ------------------------------------------------------------------ parser */

TEST_PORTABLE(parser_accepts_what_numpy_reads)
{
    static const char *const ok[] = {
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }                    \n",
        "{'descr':'<f8','fortran_order':False,'shape':(3,4)}",
        " {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }\n",
        "\n{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }\n",
        "\t{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4)}\t  ",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 4L), }\n",
        "{\"descr\": \"<f8\", 'fortran_order': False, 'shape': (3, 4)}",
        "{u'descr': u'<f8', 'fortran_order': False, 'shape': (3, 4)}",
        "{'shape': (3, 4), 'descr': '<f8', 'fortran_order': False}",
        "{'descr': '<f8',\n 'fortran_order': False,\t'shape': (3,\n 4)}\r\n",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3 , 4 ,) }\x0c",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4)}\n\n\n",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4_0)}",
        "{'descr': 'f8', 'fortran_order': False, 'shape': (3, 4)}",
    };
    pshm__npy h;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int r = parse_dict(1, ok[i], 8 * 3 * 40, &h);
        if (r != 0)
            th_fail(__FILE__, __LINE__, "rejected (%s): %s", pshm_errname(r), ok[i]);
        CHECK_EQ(h.ndim, 2);
        CHECK_EQ(h.shape[0], 3);
        CHECK(h.shape[1] == 4 || h.shape[1] == 40);
        CHECK_EQ(h.dtype.itemsize, 8);
    }
    /* the other shapes numpy takes */
    CHECK_OK(parse_dict(1, "{'descr': '<f8', 'fortran_order': True, 'shape': ()}", 8, &h));
    CHECK_EQ(h.ndim, 0);
    CHECK_EQ(h.nitems, 1);
    CHECK_EQ(h.fortran_order, 1);
    CHECK_OK(parse_dict(1, "{'descr': '<f8', 'fortran_order': False, 'shape': ( )}", 8, &h));
    CHECK_EQ(h.ndim, 0);
    CHECK_OK(parse_dict(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (00,)}", 0, &h));
    CHECK_EQ(h.ndim, 1);
    CHECK_EQ(h.nitems, 0);
    CHECK_OK(parse_dict(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-0,)}", 0, &h));
    /* formats 2.0 and 3.0 */
    CHECK_OK(parse_dict(2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2L,)}", 8, &h));
    CHECK_EQ(h.major, 2);
    CHECK_EQ(h.data_offset, 12 + strlen("{'descr': '<i4', 'fortran_order': False, 'shape': (2L,)}"));
    CHECK_OK(parse_dict(3, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", 8, &h));
    CHECK_EQ(h.major, 3);
    /* trailing bytes after the data are allowed */
    CHECK_OK(parse_dict(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,)}", 100, &h));
    CHECK_EQ(h.nbytes, 2);
}

TEST_PORTABLE(parser_rejects_each_with_its_code)
{
    static const struct {
        int major;
        const char *dict;
        int code;
    } t[] = {
        /* not the dict numpy writes */
        {1, "", -PSHM_EARRAY_HEADER},
        {1, "{}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'descr': '<f4'}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': None, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': false, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': [3, 4]}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3 4)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (03,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0x3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3.0,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1e3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1__0,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (+3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (True,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)},", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} }", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} # c", -PSHM_EARRAY_HEADER},
        {1, "({'descr': '<f8', 'fortran_order': False, 'shape': (3,)})", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,),,}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8' 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr' '<f8', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8, 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<\\x66', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': b'<f8', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{descr: '<f8', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,", -PSHM_EARRAY_HEADER},
        {3, "{'descr': '<f8', 'fortran_order': False, 'shape': (3L,)}", -PSHM_EARRAY_HEADER},
        {1, "{'descr': [('a', '<f8'), 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_HEADER},
        /* dtypes */
        {1, "{'descr': 'float64', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_DTYPE},
        {1, "{'descr': '|O', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_DTYPE},
        {1, "{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_DTYPE},
        {1, "{'descr': '|S0', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_DTYPE},
        {1, "{'descr': '', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_DTYPE},
        {1, "{'descr': '<U99999999999999999999', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_DTYPE},
        {1, "{'descr': ('<f8', (2,)), 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_DTYPE},
        {1, "{'descr': [('a', '<f8'), ('b', '|u1')], 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_STRUCT},
        {3, "{'descr': [('\xc3\xa9', '<f8')], 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_STRUCT},
        /* shapes */
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}", -PSHM_EARRAY_SHAPE},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, - 1)}", -PSHM_EARRAY_SHAPE},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775808,)}", -PSHM_EARRAY_OVERFLOW},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}", -PSHM_EARRAY_OVERFLOW},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807,)}", -PSHM_EARRAY_OVERFLOW},
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", -PSHM_EARRAY_OVERFLOW},
        /* numpy's rule: the non-zero dimensions must not overflow even when one is 0 */
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 0)}", -PSHM_EARRAY_OVERFLOW},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", -PSHM_EARRAY_TRUNCATED},
    };
    pshm__npy h;

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int r = parse_dict(t[i].major, t[i].dict, 0, &h);
        if (r != t[i].code)
            th_fail(__FILE__, __LINE__, "%s: got %s, want %s", t[i].dict, pshm_errname(r),
                    pshm_errname(t[i].code));
    }
    /* (1152921504606846975,) of |u1 fits int64; 2**62 * 2 items of <f8 does not */
    CHECK_ERR(parse_dict(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 2)}", 0, &h),
              -PSHM_EARRAY_OVERFLOW);
    /* too many dimensions */
    char dict[1024];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < PSHM_ARRAY_MAXDIM + 1; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "1, ");
    snprintf(dict + n, sizeof dict - (size_t)n, ")}");
    CHECK_ERR(parse_dict(1, dict, 8, &h), -PSHM_EARRAY_NDIM);
    /* exactly the maximum is fine */
    n = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < PSHM_ARRAY_MAXDIM; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "1, ");
    snprintf(dict + n, sizeof dict - (size_t)n, ")}");
    CHECK_OK(parse_dict(1, dict, 8, &h));
    CHECK_EQ(h.ndim, PSHM_ARRAY_MAXDIM);
    /* a NUL in the header */
    unsigned char buf[256];
    static const char nul_dict[] = "{'descr': '<f8', 'fortran_order': False, 'shape': ()}  ";
    size_t len = image(buf, sizeof buf, 1, nul_dict, 8);
    CHECK_OK(pshm__npy_parse(buf, len, &h));
    buf[10 + sizeof nul_dict - 2] = 0;
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_HEADER);
}

TEST_PORTABLE(parser_prefix_errors)
{
    static const char dict[] = "{'descr': '<f8', 'fortran_order': False, 'shape': ()}";
    unsigned char buf[256];
    pshm__npy h;
    size_t len = image(buf, sizeof buf, 1, dict, 8);

    CHECK_OK(pshm__npy_parse(buf, len, &h));
    /* every truncation fails cleanly, with SHORT inside the header */
    for (size_t n = 0; n < len; n++) {
        int r = pshm__npy_parse(buf, n, &h);
        int want = n == 0 ? -PSHM_EARRAY_MAGIC
                   : n < 10 + sizeof dict - 1 ? -PSHM_EARRAY_SHORT
                                              : -PSHM_EARRAY_TRUNCATED;
        if (r != want)
            th_fail(__FILE__, __LINE__, "len %zu: %s, want %s", n, pshm_errname(r),
                    pshm_errname(want));
    }
    /* bad magic */
    buf[0] = 0x92;
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_MAGIC);
    CHECK_ERR(pshm__npy_parse(buf, 3, &h), -PSHM_EARRAY_MAGIC);
    buf[0] = 0x93;
    buf[5] = 'y';
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_MAGIC);
    buf[5] = 'Y';
    /* versions */
    static const unsigned char versions[][2] = {{0, 0}, {1, 1}, {2, 1}, {4, 0}, {255, 255}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        buf[6] = versions[i][0];
        buf[7] = versions[i][1];
        CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EVERSION);
    }
    /* absurd header length (format 2.0: 32-bit field) */
    len = image(buf, sizeof buf, 2, dict, 8);
    CHECK_OK(pshm__npy_parse(buf, len, &h));
    buf[8] = buf[9] = buf[10] = buf[11] = 0xff;
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_HEADERLEN);
    buf[8] = 1, buf[9] = 0, buf[10] = 0x10, buf[11] = 0; /* just over 1 MiB */
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_HEADERLEN);
    buf[8] = 0, buf[9] = 0, buf[10] = 0x10, buf[11] = 0; /* 1 MiB: allowed, but past the end */
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_SHORT);
    /* a length field that ends the header early */
    len = image(buf, sizeof buf, 1, dict, 8);
    buf[8] = 20;
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_HEADER);
    buf[8] = 0;
    CHECK_ERR(pshm__npy_parse(buf, len, &h), -PSHM_EARRAY_HEADER);
}

/* Random damage to a good image: never a crash, never a read out of bounds
 * (the sanitizer builds watch), always a code or a consistent result. */
TEST_PORTABLE(parser_survives_mutations)
{
    char good[PSHM__NPY_HEADER_CAP];
    pshm_dtype d;
    pshm__npy h;
    size_t len;
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    CHECK_OK(pshm_dtype_parse("<U3", &d));
    CHECK_OK(pshm__npy_write_header(&d, 3, (int64_t[]){2, 3, 4}, 1, good, sizeof good, &len));
    for (int iter = 0; iter < 200000; iter++) {
        unsigned char buf[256];
        memcpy(buf, good, len);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[(x >> 8) % len] = (unsigned char)(x >> 32);
        }
        size_t n = (x >> 40) % (len + 1);
        /* a heap copy of exactly n bytes, so ASan sees any overread */
        unsigned char *heap = malloc(n ? n : 1);
        memcpy(heap, buf, n);
        int r = pshm__npy_parse(heap, n, &h);
        if (r == 0) {
            CHECK(h.data_offset + h.nbytes <= n);
            CHECK(h.ndim >= 0 && h.ndim <= PSHM_ARRAY_MAXDIM);
        } else {
            CHECK(r <= -PSHM_EARRAY_MAGIC || r == -PSHM_EVERSION);
            CHECK(strcmp(pshm_errname(r), "UNKNOWN") != 0);
        }
        free(heap);
    }
}

TEST_PORTABLE(sizes_follow_numpy)
{
    uint64_t items;
    size_t bytes;

    CHECK_OK(pshm__npy_sizes(8, 0, NULL, &items, &bytes));
    CHECK_EQ(items, 1);
    CHECK_EQ(bytes, 8);
    CHECK_OK(pshm__npy_sizes(8, 3, (int64_t[]){2, 0, 3}, &items, &bytes));
    CHECK_EQ(items, 0);
    CHECK_EQ(bytes, 0);
    CHECK_OK(pshm__npy_sizes(1, 1, (int64_t[]){INT64_MAX}, &items, &bytes));
    CHECK_ERR(pshm__npy_sizes(2, 1, (int64_t[]){INT64_MAX}, &items, &bytes), -PSHM_EARRAY_OVERFLOW);
    CHECK_ERR(pshm__npy_sizes(1, 3, (int64_t[]){1LL << 32, 1LL << 32, 0}, &items, &bytes),
              -PSHM_EARRAY_OVERFLOW);
    CHECK_ERR(pshm__npy_sizes(1, 2, (int64_t[]){3, -1}, &items, &bytes), -PSHM_EARRAY_SHAPE);
    CHECK_ERR(pshm__npy_sizes(1, -1, NULL, &items, &bytes), -PSHM_EARRAY_NDIM);
}

/* -------------------------------------------------------- create and open */

TEST_PORTABLE(create_open_every_dtype)
{
    static const char *const descrs[] = {
        "|b1", "|i1", "|u1", "<i2", ">i2", "<u2", "<i4", ">u4", "<i8", ">u8", "<f2", ">f2",
        "<f4", "<f8", ">f8", "<c8", ">c16", "|S1", "|S5", "<U1", ">U10", "|V3",
    };
    const char *name = th_name("dtypes");

    for (size_t k = 0; k < sizeof descrs / sizeof descrs[0]; k++) {
        int64_t shape[] = {3, 5, 2};
        pshm_array *a = NULL, *o = NULL;
        pshm_dtype d;
        CHECK_OK(pshm_dtype_parse(descrs[k], &d));
        for (int f = 0; f < 2; f++) {
            CHECK_OK(pshm_array_create(name, descrs[k], 3, shape, f, NULL, &a));
            CHECK_STR(pshm_array_descr(a), descrs[k]);
            CHECK_EQ(pshm_array_dtype(a)->itemsize, d.itemsize);
            CHECK_EQ(pshm_array_nitems(a), 30);
            CHECK_EQ(pshm_array_nbytes(a), 30 * d.itemsize);
            CHECK_EQ(pshm_array_data_offset(a) % 64, 0);
            CHECK_EQ((uintptr_t)pshm_array_data(a) % 64, 0);
            CHECK_EQ(pshm_block_size(pshm_array_block(a)),
                     pshm_array_data_offset(a) + pshm_array_nbytes(a));
            CHECK_EQ(pshm_array_version(a), 0x100);
            /* the elements are zero; fill them with a pattern */
            unsigned char *p = pshm_array_data(a);
            for (size_t i = 0; i < pshm_array_nbytes(a); i++) {
                CHECK_EQ(p[i], 0);
                p[i] = (unsigned char)(i * 7 + k);
            }
            CHECK_OK(pshm_array_open(name, NULL, &o));
            CHECK_STR(pshm_array_descr(o), descrs[k]);
            CHECK_EQ(pshm_array_dtype(o)->kind, d.kind);
            CHECK_EQ(pshm_array_dtype(o)->byteorder, d.byteorder);
            CHECK_EQ(pshm_array_ndim(o), 3);
            CHECK_EQ(pshm_array_fortran_order(o), f);
            const int64_t *s = pshm_array_shape(o), *st = pshm_array_strides(o);
            int64_t is = (int64_t)d.itemsize;
            CHECK_EQ(s[0], 3);
            CHECK_EQ(s[1], 5);
            CHECK_EQ(s[2], 2);
            if (f) {
                CHECK_EQ(st[0], is);
                CHECK_EQ(st[1], 3 * is);
                CHECK_EQ(st[2], 15 * is);
            } else {
                CHECK_EQ(st[0], 10 * is);
                CHECK_EQ(st[1], 2 * is);
                CHECK_EQ(st[2], is);
            }
            CHECK(memcmp(pshm_array_data(o), p, pshm_array_nbytes(a)) == 0);
            CHECK_OK(pshm_array_close(o));
            drop(a);
        }
    }
}

TEST_PORTABLE(zero_d_and_empty_arrays)
{
    const char *name = th_name("small");
    pshm_array *a = NULL, *o = NULL;

    CHECK_OK(pshm_array_create(name, "<c16", 0, NULL, 0, NULL, &a));
    CHECK_EQ(pshm_array_ndim(a), 0);
    CHECK(pshm_array_shape(a) != NULL);
    CHECK_EQ(pshm_array_nitems(a), 1);
    CHECK_EQ(pshm_array_nbytes(a), 16);
    CHECK_EQ(pshm_block_size(pshm_array_block(a)), 128 + 16);
    CHECK_OK(pshm_array_open(name, NULL, &o));
    CHECK_EQ(pshm_array_ndim(o), 0);
    CHECK_EQ(pshm_array_nitems(o), 1);
    CHECK_OK(pshm_array_close(o));
    drop(a);

    int64_t shape[] = {4, 0, 3};
    CHECK_OK(pshm_array_create(name, "<f8", 3, shape, 0, NULL, &a));
    CHECK_EQ(pshm_array_nitems(a), 0);
    CHECK_EQ(pshm_array_nbytes(a), 0);
    CHECK_EQ(pshm_block_size(pshm_array_block(a)), 128); /* the header alone */
    CHECK_OK(pshm_array_open(name, NULL, &o));
    CHECK_EQ(pshm_array_nbytes(o), 0);
    /* numpy's strides for a mapped empty array: the zero axis counts as 1 */
    CHECK_EQ(pshm_array_strides(o)[0], 24);
    CHECK_EQ(pshm_array_strides(o)[1], 24);
    CHECK_EQ(pshm_array_strides(o)[2], 8);
    CHECK_OK(pshm_array_close(o));
    drop(a);
}

TEST(random_name_and_auto_lifetime)
{
    pshm_block_options opt;
    pshm_array *a = NULL, *o = NULL;
    char name[PSHM_NAME_MAX + 1];

    pshm_block_options_init(&opt);
    opt.lifetime = PSHM_AUTO;
    CHECK_OK(pshm_array_create(NULL, PSHM_DT_FLOAT64, 1, (int64_t[]){10}, 0, &opt, &a));
    snprintf(name, sizeof name, "%s", pshm_block_name(pshm_array_block(a)));
    CHECK(strncmp(name, "psm_", 4) == 0);
    CHECK_OK(pshm_array_open(name, NULL, &o));
    CHECK_OK(pshm_array_close(a));
    CHECK(th_exists(name));
    CHECK_OK(pshm_array_close(o));
    CHECK(!th_exists(name)); /* the last holder closed it */
}

TEST_PORTABLE(create_errors_leave_nothing)
{
    const char *name = th_name("bad");
    pshm_array *a = (pshm_array *)1;
    int64_t shape[] = {2, 3};

    CHECK_ERR(pshm_array_create(name, "<f8", 2, shape, 0, NULL, NULL), -EINVAL);
    CHECK_ERR(pshm_array_create(name, "float64", 2, shape, 0, NULL, &a), -PSHM_EARRAY_DTYPE);
    CHECK(a == NULL);
    CHECK_ERR(pshm_array_create(name, NULL, 2, shape, 0, NULL, &a), -PSHM_EARRAY_DTYPE);
    CHECK_ERR(pshm_array_create(name, "<f8", -1, shape, 0, NULL, &a), -PSHM_EARRAY_NDIM);
    CHECK_ERR(pshm_array_create(name, "<f8", PSHM_ARRAY_MAXDIM + 1, shape, 0, NULL, &a),
              -PSHM_EARRAY_NDIM);
    CHECK_ERR(pshm_array_create(name, "<f8", 2, NULL, 0, NULL, &a), -EINVAL);
    CHECK_ERR(pshm_array_create(name, "<f8", 2, (int64_t[]){2, -3}, 0, NULL, &a),
              -PSHM_EARRAY_SHAPE);
    CHECK_ERR(pshm_array_create(name, "<f8", 2, (int64_t[]){1LL << 40, 1LL << 30}, 0, NULL, &a),
              -PSHM_EARRAY_OVERFLOW);
    CHECK_ERR(pshm_array_create("a/b", "<f8", 2, shape, 0, NULL, &a), -PSHM_ENAME_SLASH);
    CHECK(a == NULL);
    CHECK(!th_exists(name));
    CHECK_ERR(pshm_array_open(name, NULL, &a), -ENOENT);
    CHECK(a == NULL);
    CHECK_ERR(pshm_array_open(name, NULL, NULL), -EINVAL);
    CHECK_OK(pshm_array_close(NULL));
    CHECK(pshm_array_descr(NULL) == NULL);
    CHECK_EQ(pshm_array_ndim(NULL), -1);
}

TEST_PORTABLE(existing_name)
{
    const char *name = th_name("exist");
    pshm_block_options opt;
    pshm_array *a = NULL, *b = NULL;
    int64_t shape[] = {4, 4};

    CHECK_OK(pshm_array_create(name, "<i4", 2, shape, 0, NULL, &a));
    ((int32_t *)pshm_array_data(a))[5] = 55;
    CHECK_ERR(pshm_array_create(name, "<i4", 2, shape, 0, NULL, &b), -EEXIST);
    pshm_block_options_init(&opt);
    opt.open_existing = 1;
    CHECK_OK(pshm_array_create(name, "<i4", 2, shape, 0, &opt, &b));
    CHECK_EQ(pshm_block_created(pshm_array_block(b)), 0);
    CHECK_EQ(((int32_t *)pshm_array_data(b))[5], 55);
    CHECK_OK(pshm_array_close(b));
    CHECK_ERR(pshm_array_create(name, "<i8", 2, shape, 0, &opt, &b), -PSHM_EARRAY_MISMATCH);
    CHECK_ERR(pshm_array_create(name, "<i4", 2, shape, 1, &opt, &b), -PSHM_EARRAY_MISMATCH);
    CHECK_ERR(pshm_array_create(name, "<i4", 1, shape, 0, &opt, &b), -PSHM_EARRAY_MISMATCH);
    CHECK_ERR(pshm_array_create(name, "<i4", 2, (int64_t[]){4, 5}, 0, &opt, &b),
              -PSHM_EARRAY_MISMATCH);
    CHECK(b == NULL);
    CHECK(th_exists(name));
    /* from_npy never attaches */
    CHECK_ERR(pshm_array_create_from_npy(name, "x", 1, &opt, &b), -EINVAL);
    drop(a);
}

TEST_PORTABLE(readonly_open)
{
    const char *name = th_name("ro");
    pshm_block_options opt;
    pshm_array *a = NULL, *r = NULL;

    CHECK_OK(pshm_array_create(name, "<f8", 1, (int64_t[]){100}, 0, NULL, &a));
    ((double *)pshm_array_data(a))[99] = 2.5;
    pshm_block_options_init(&opt);
    opt.readonly = 1;
    CHECK_OK(pshm_array_open(name, &opt, &r));
    CHECK(((const double *)pshm_array_data(r))[99] == 2.5);
    pid_t pid = fork();
    if (pid == 0) {
        /* the default action, even under a sanitizer that catches SIGSEGV */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGSEGV, &sa, NULL);
        ((volatile double *)pshm_array_data(r))[0] = 1;
        _exit(0);
    }
    CHECK_EQ(th_wait(pid, 5000), 128 + SIGSEGV);
    CHECK_OK(pshm_array_close(r));
    drop(a);
}

/* ------------------------------------------------------ foreign blocks */

TEST_PORTABLE(open_checks_foreign_blocks)
{
    const char *name = th_name("foreign");
    unsigned char buf[512];
    pshm_array *a = NULL;
    size_t n;

    /* not an array at all */
    memset(buf, 'x', sizeof buf);
    raw_block(name, buf, 100);
    CHECK_ERR(pshm_array_open(name, NULL, &a), -PSHM_EARRAY_MAGIC);
    CHECK(a == NULL);
    CHECK_OK(pshm_unlink(name));
    /* tiny */
    raw_block(name, "\x93NU", 3);
    CHECK_ERR(pshm_array_open(name, NULL, &a), -PSHM_EARRAY_SHORT);
    CHECK_OK(pshm_unlink(name));
    /* data past the end */
    const char *dict = padded("{'descr': '<f8', 'fortran_order': False, 'shape': (7,), }", 64);
    n = image(buf, sizeof buf, 1, dict, 55);
    CHECK_EQ(n - 55, 128);
    raw_block(name, buf, n);
    CHECK_ERR(pshm_array_open(name, NULL, &a), -PSHM_EARRAY_TRUNCATED);
    CHECK_OK(pshm_unlink(name));
    /* the same with all its data: opens */
    n = image(buf, sizeof buf, 1, dict, 56);
    raw_block(name, buf, n);
    CHECK_OK(pshm_array_open(name, NULL, &a));
    CHECK_EQ(pshm_array_nbytes(a), 56);
    CHECK_OK(pshm_array_close(a));
    CHECK_OK(pshm_unlink(name));
    /* a header padded to 16 (numpy < 1.14): parsed, but the data is not
     * 64-byte aligned */
    n = image(buf, sizeof buf, 1, padded("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16),
              16);
    CHECK_EQ((n - 16) % 16, 0);
    CHECK((n - 16) % 64 != 0);
    raw_block(name, buf, n);
    CHECK_ERR(pshm_array_open(name, NULL, &a), -PSHM_EARRAY_ALIGN);
    CHECK_OK(pshm_unlink(name));
    /* ... and create_from_npy rewrites it as numpy writes today */
    CHECK_OK(pshm_array_create_from_npy(name, buf, n, NULL, &a));
    CHECK_EQ(pshm_array_data_offset(a), 128);
    CHECK_EQ(pshm_array_nbytes(a), 16);
    CHECK_EQ(((unsigned char *)pshm_array_data(a))[15], 0x5a);
    drop(a);
    /* structured */
    n = image(buf, sizeof buf, 1,
              padded("{'descr': [('x', '<f8'), ('y', '<i4')], 'fortran_order': False, 'shape': (1,), }", 64),
              12);
    raw_block(name, buf, n);
    CHECK_ERR(pshm_array_open(name, NULL, &a), -PSHM_EARRAY_STRUCT);
    CHECK_OK(pshm_unlink(name));
}

TEST_PORTABLE(create_from_npy)
{
    const char *name = th_name("npy");
    char hdr[PSHM__NPY_HEADER_CAP];
    unsigned char img[4096];
    pshm_dtype d;
    pshm_array *a = NULL;
    size_t hlen;

    CHECK_OK(pshm_dtype_parse(">i2", &d));
    CHECK_OK(pshm__npy_write_header(&d, 2, (int64_t[]){3, 7}, 1, hdr, sizeof hdr, &hlen));
    memcpy(img, hdr, hlen);
    for (int i = 0; i < 42; i++)
        img[hlen + (size_t)i] = (unsigned char)(i + 1);
    /* trailing bytes are ignored, missing ones are an error */
    CHECK_ERR(pshm_array_create_from_npy(name, img, hlen + 41, NULL, &a), -PSHM_EARRAY_TRUNCATED);
    CHECK(!th_exists(name));
    CHECK_ERR(pshm_array_create_from_npy(name, NULL, 10, NULL, &a), -EINVAL);
    CHECK_ERR(pshm_array_create_from_npy(name, "nope", 4, NULL, &a), -PSHM_EARRAY_MAGIC);
    CHECK_OK(pshm_array_create_from_npy(name, img, hlen + 100, NULL, &a));
    CHECK_STR(pshm_array_descr(a), ">i2");
    CHECK_EQ(pshm_array_fortran_order(a), 1);
    CHECK_EQ(pshm_block_size(pshm_array_block(a)), hlen + 42);
    /* the block is byte for byte the image (its header is canonical) */
    CHECK(memcmp(pshm_block_data(pshm_array_block(a)), img, hlen + 42) == 0);
    drop(a);
    /* a format 2.0 image becomes 1.0, as numpy would write it */
    size_t n = image(img, sizeof img, 2, "{'descr': '|u1', 'fortran_order': False, 'shape': (3L,)}", 3);
    CHECK_OK(pshm_array_create_from_npy(name, img, n, NULL, &a));
    CHECK_EQ(pshm_array_version(a), 0x100);
    CHECK_EQ(pshm_array_data_offset(a), 128);
    CHECK_EQ(((unsigned char *)pshm_array_data(a))[2], 0x5a);
    drop(a);
}

/* ----------------------------------------------------- across processes */

HELPER(array_child)
{
    /* argv: name. Check what the parent made, double every element, add one row marker. */
    pshm_array *a = NULL;
    if (pshm_array_open(argv[0], NULL, &a) != 0)
        return 10;
    if (strcmp(pshm_array_descr(a), "<f8") != 0 || pshm_array_ndim(a) != 2 ||
        pshm_array_shape(a)[0] != 50 || pshm_array_shape(a)[1] != 3 ||
        pshm_array_fortran_order(a))
        return 11;
    double *v = pshm_array_data(a);
    for (int i = 0; i < 150; i++) {
        if (v[i] != i * 0.5)
            return 12;
        v[i] *= 2;
    }
    return pshm_array_close(a) == 0 ? 0 : 13;
}

TEST_PORTABLE(another_process_sees_dtype_shape_and_data)
{
    const char *name = th_name("xproc");
    pshm_array *a = NULL;

    CHECK_OK(pshm_array_create(name, "<f8", 2, (int64_t[]){50, 3}, 0, NULL, &a));
    double *v = pshm_array_data(a);
    for (int i = 0; i < 150; i++)
        v[i] = i * 0.5;
    CHECK_EQ(th_wait(th_spawn("array_child", name, NULL), 10000), 0);
    for (int i = 0; i < 150; i++)
        CHECK(v[i] == i * 1.0);
    drop(a);
}

HELPER(open_and_report)
{
    pshm_array *a = NULL;
    int r = pshm_array_open(argv[0], NULL, &a);
    if (r != 0)
        return r == -PSHM_EARRAY_MAGIC ? 20 : 21;
    r = pshm_array_nitems(a) == 6 ? 0 : 22;
    pshm_array_close(a);
    return r;
}

TEST_PORTABLE(open_waits_for_a_header_being_written)
{
    const char *name = th_name("wait");
    char hdr[PSHM__NPY_HEADER_CAP];
    pshm_block *b = NULL;
    pshm_dtype d;
    size_t hlen;

    /* What a creator does, slowed down: a zeroed block first, the header
     * later, magic last. The attacher waits instead of failing. */
    CHECK_OK(pshm_dtype_parse("<i8", &d));
    CHECK_OK(pshm__npy_write_header(&d, 1, (int64_t[]){6}, 0, hdr, sizeof hdr, &hlen));
    CHECK_OK(pshm_block_create(name, hlen + 48, NULL, &b));
    pid_t pid = th_spawn("open_and_report", name, NULL);
    th_sleep_ms(100);
    unsigned char *p = pshm_block_data(b);
    memcpy(p + 4, hdr + 4, hlen - 4);
    uint32_t w;
    memcpy(&w, hdr, 4);
    __atomic_store_n((uint32_t *)(void *)p, w, __ATOMIC_RELEASE);
    CHECK_EQ(th_wait(pid, 10000), 0);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
}

TEST_PORTABLE(open_gives_up_on_a_zero_block)
{
    const char *name = th_name("zero");
    pshm_block *b = NULL;
    pshm_array *a = NULL;

    CHECK_OK(pshm_block_create(name, 4096, NULL, &b));
    CHECK_ERR(pshm_array_open(name, NULL, &a), -PSHM_EARRAY_MAGIC); /* after the wait */
    CHECK(a == NULL);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
}

TEST_PORTABLE(header_rewritten_later_does_not_change_a_handle)
{
    const char *name = th_name("snap");
    pshm_array *a = NULL, *o = NULL;

    CHECK_OK(pshm_array_create(name, "|u1", 1, (int64_t[]){64}, 0, NULL, &a));
    CHECK_OK(pshm_array_open(name, NULL, &o));
    /* another process scribbles over the header: the open handle keeps its view */
    unsigned char *blk = pshm_block_data(pshm_array_block(a));
    memset(blk + 10, '9', 100);
    CHECK_EQ(pshm_array_nbytes(o), 64);
    CHECK_EQ(pshm_array_shape(o)[0], 64);
    /* and a new open refuses the damage */
    pshm_array *x = NULL;
    CHECK_ERR(pshm_array_open(name, NULL, &x), -PSHM_EARRAY_HEADER);
    CHECK_OK(pshm_array_close(o));
    drop(a);
}

TEST_PORTABLE(error_codes_have_names_and_messages)
{
    for (int c = PSHM_EARRAY_MAGIC; c <= PSHM_EARRAY_MISMATCH; c++) {
        CHECK(strncmp(pshm_errname(-c), "PSHM_EARRAY_", 12) == 0);
        CHECK(strcmp(pshm_strerror(-c), "unknown error") != 0);
        for (int k = PSHM_EARRAY_MAGIC; k < c; k++)
            CHECK(strcmp(pshm_strerror(-c), pshm_strerror(-k)) != 0);
    }
}

HELPER(array_race)
{
    /* argv: name. Everyone asks for the same array with open_existing. */
    pshm_block_options opt;
    pshm_array *a = NULL;
    pshm_block_options_init(&opt);
    opt.open_existing = 1;
    int r = pshm_array_create(argv[0], "<u2", 2, (int64_t[]){300, 7}, 1, &opt, &a);
    if (r != 0)
        return 10;
    if (pshm_array_nbytes(a) != 4200 || !pshm_array_fortran_order(a) ||
        strcmp(pshm_array_descr(a), "<u2") != 0)
        return 11;
    int created = pshm_block_created(pshm_array_block(a));
    pshm_array_close(a);
    return created ? 0 : 1;
}

TEST_PORTABLE(racing_creators_with_open_existing_agree)
{
    const char *name = th_name("arace");
    enum { N = 12 };
    pid_t pids[N];
    int created = 0;

    for (int i = 0; i < N; i++)
        pids[i] = th_spawn("array_race", name, NULL);
    for (int i = 0; i < N; i++) {
        int rc = th_wait(pids[i], 20000);
        CHECK(rc == 0 || rc == 1);
        created += rc == 0;
    }
    CHECK_EQ(created, 1);
    pshm_array *a = NULL;
    CHECK_OK(pshm_array_open(name, NULL, &a));
    CHECK_EQ(pshm_array_shape(a)[1], 7);
    drop(a);
}
