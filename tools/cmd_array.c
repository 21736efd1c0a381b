/* SPDX-License-Identifier: MIT */
/*
 * cmd_array.c - `pshm array info|create|load|save`, and the "array <f8
 * (1000, 3)" kind that `pshm ls` and `pshm info` show for array blocks.
 * info, save and the kind read the block with pread (pshm_array_stat and
 * the block's path), never through a mapping.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- text */

/* Python's repr of the shape tuple: (), (5,), (3, 4). */
static void shape_text(const int64_t *v, int n, char *out, size_t cap)
{
    size_t k = 0;

    k += (size_t)snprintf(out, cap, "(");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (k < cap)
        snprintf(out + k, cap - k, n == 1 ? ",)" : ")");
}

/* numpy's name for a dtype: float64, int8, <U10 is str (U10), ... */
static void dtype_name(const pshm_dtype *d, char *out, size_t cap)
{
    const char *n = d->descr + 2; /* the size digits */

    switch (d->kind) {
    case 'b': snprintf(out, cap, "bool"); break;
    case 'i': snprintf(out, cap, "int%zu", d->itemsize * 8); break;
    case 'u': snprintf(out, cap, "uint%zu", d->itemsize * 8); break;
    case 'f': snprintf(out, cap, d->itemsize == 16 ? "longdouble" : "float%zu", d->itemsize * 8); break;
    case 'c': snprintf(out, cap, d->itemsize == 32 ? "clongdouble" : "complex%zu", d->itemsize * 8); break;
    case 'S': snprintf(out, cap, "bytes S%s", n); break;
    case 'U': snprintf(out, cap, "str U%s", n); break;
    default: snprintf(out, cap, "void V%s", n); break;
    }
}

static const char *order_text(char bo)
{
    const uint16_t one = 1;
    int little = *(const unsigned char *)&one == 1;

    if (bo == '<')
        return little ? "little-endian" : "little-endian, NOT this machine's order";
    if (bo == '>')
        return little ? "big-endian, NOT this machine's order" : "big-endian";
    return "no byte order";
}

/* Which of the two a failed array call should be blamed on. */
static int is_format_error(int code)
{
    return code == -PSHM_EVERSION || (code <= -PSHM_EARRAY_MAGIC && code >= -PSHM_EARRAY_MISMATCH);
}

/* ---------------------------------------------------------------- info */

static void help_array(FILE *o)
{
    fputs("usage: pshm array info [--json] NAME\n"
          "       pshm array create NAME DTYPE [DIM...] [--fortran] [--mode OCTAL]\n"
          "       pshm array load FILE.npy [NAME] [--mode OCTAL]\n"
          "       pshm array save NAME FILE.npy\n\n"
          "Arrays are blocks holding a numpy .npy image (header, then the\n"
          "elements): numpy.load('/dev/shm/NAME', mmap_mode='r+') maps one in place.\n"
          "  info    dtype, shape, order, strides and sizes of an array block\n"
          "  create  a new zeroed array block (persist lifetime) of DTYPE and\n"
          "          shape DIM... (none: a 0-d array); C order, or Fortran\n"
          "          order with --fortran. DTYPE is a numpy descr ('<f8', 'u1',\n"
          "          'S10') or name (float64, int32, uint8, bool, complex128, ...)\n"
          "  load    copy a .npy file into a new block (persist lifetime; a random\n"
          "          psm_... name unless NAME is given) and print the block's name\n"
          "  save    write an array block to FILE.npy ('-' for stdout): the block's\n"
          "          header and elements, a file numpy.load reads\n"
          "--mode sets the permission bits, 0 to 0777 (default 0600).\n"
          "Supported dtypes: bool, int8-64, uint8-64, float16/32/64, complex64/128,\n"
          "S<n>, U<n>, V<n>, either byte order. Structured dtypes are refused.\n", o);
}

/* The array's geometry as JSON members (shared by `array info --json` and
 * the details of `pshm info --json`). */
static void json_geometry(cli_json *j, const pshm_array_info *in)
{
    char version[16];

    snprintf(version, sizeof version, "%d.%d", in->version >> 8, in->version & 0xff);
    cj_kstr(j, "dtype", in->dtype.descr);
    cj_key(j, "shape");
    cj_open(j, '[');
    for (int i = 0; i < in->ndim; i++)
        cj_int(j, in->shape[i]);
    cj_close(j, ']');
    cj_kstr(j, "order", in->fortran_order ? "F" : "C");
    cj_key(j, "strides");
    cj_open(j, '[');
    for (int i = 0; i < in->ndim; i++)
        cj_int(j, in->strides[i]);
    cj_close(j, ']');
    cj_kuint(j, "itemsize", in->dtype.itemsize);
    cj_kuint(j, "nitems", in->nitems);
    cj_kuint(j, "nbytes", in->nbytes);
    cj_kuint(j, "data_offset", in->data_offset);
    cj_kstr(j, "version", version);
}

static int array_info(int argc, char **argv)
{
    const char *name = NULL;
    int json = 0;
    pshm_array_info in;
    char shape[2048], strides[2048], tname[64], safe[4 * PSHM_PATH_MAX];
    int rc = cli_name_json("array info", argc, argv, &name, &json);

    if (rc != CLI_OK)
        return rc;
    pshm_array_info_init(&in);
    int r = pshm_array_stat(name, &in);
    if (r != 0)
        return cli_fail_kind(name, r, "array", "an array");
    if (json) {
        cli_json j;
        cj_document(&j, stdout);
        cj_kname(&j, "name", name[0] == '/' ? name + 1 : name);
        cj_kstr(&j, "kind", "array");
        json_geometry(&j, &in);
        cj_kstr(&j, "byteorder", (char[2]){in.dtype.byteorder, 0});
        cj_kuint(&j, "size", in.size);
        cj_close(&j, '}');
        putchar('\n');
        return CLI_OK;
    }
    shape_text(in.shape, in.ndim, shape, sizeof shape);
    shape_text(in.strides, in.ndim, strides, sizeof strides);
    dtype_name(&in.dtype, tname, sizeof tname);
    cli_safe(name[0] == '/' ? name + 1 : name, safe, sizeof safe);
    printf("name:     %s\n", safe);
    printf("dtype:    %s (%s, %s, %zu byte%s per item)\n", in.dtype.descr, tname,
           order_text(in.dtype.byteorder), in.dtype.itemsize, in.dtype.itemsize == 1 ? "" : "s");
    printf("shape:    %s\n", shape);
    printf("order:    %s\n", in.fortran_order ? "Fortran (column-major)" : "C (row-major)");
    printf("strides:  %s\n", strides);
    printf("items:    %llu\n", (unsigned long long)in.nitems);
    printf("nbytes:   %llu\n", (unsigned long long)in.nbytes);
    printf("header:   .npy format %d.%d, data at offset %llu\n", in.version >> 8,
           in.version & 0xff, (unsigned long long)in.data_offset);
    printf("block:    %llu bytes\n", (unsigned long long)in.size);
    return CLI_OK;
}

/* -------------------------------------------------------------- create */

/* numpy's names for the native dtypes pshm supports, and their descrs. */
static const char *dtype_from_name(const char *s)
{
    static const struct {
        const char *name, *descr;
    } names[] = {
        {"bool", PSHM_DT_BOOL},        {"int8", PSHM_DT_INT8},
        {"uint8", PSHM_DT_UINT8},      {"int16", PSHM_DT_INT16},
        {"uint16", PSHM_DT_UINT16},    {"int32", PSHM_DT_INT32},
        {"uint32", PSHM_DT_UINT32},    {"int64", PSHM_DT_INT64},
        {"uint64", PSHM_DT_UINT64},    {"float16", PSHM_DT_FLOAT16},
        {"float32", PSHM_DT_FLOAT32},  {"float64", PSHM_DT_FLOAT64},
        {"complex64", PSHM_DT_COMPLEX64}, {"complex128", PSHM_DT_COMPLEX128},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].descr;
    return s;
}

static int array_create(int argc, char **argv)
{
    const char *name = NULL, *dtype = NULL;
    int64_t shape[PSHM_ARRAY_MAXDIM];
    int ndim = 0, fortran = 0;
    pshm_block_options o;
    pshm_dtype dt;
    cli_args a;

    pshm_block_options_init(&o);
    cli_args_init(&a, "array create", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt && !name) {
            name = s;
        } else if (!a.opt && !dtype) {
            dtype = s;
        } else if (!a.opt) {
            unsigned long long d;
            if (ndim == PSHM_ARRAY_MAXDIM)
                return cli_usage("array create: at most %d dimensions", PSHM_ARRAY_MAXDIM);
            if (cli_parse_u64(s, 0, &d) != 0 || d > INT64_MAX)
                return cli_usage("array create: bad dimension '%s' (a whole number >= 0)", s);
            shape[ndim++] = (int64_t)d;
        } else if (strcmp(s, "--fortran") == 0) {
            fortran = 1;
        } else if (strcmp(s, "--mode") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                return CLI_USAGE;
            if (cli_parse_mode(v, &o.mode) != 0)
                return cli_bad_mode("array create", v);
        } else {
            return cli_unknown(&a);
        }
    }
    if (!name || !dtype)
        return cli_usage("array create: NAME and DTYPE expected");
    dtype = dtype_from_name(dtype);
    if (pshm_dtype_parse(dtype, &dt) != 0)
        return cli_usage("array create: unknown dtype '%s' (a numpy descr such as '<f8', 'u1', "
                         "'S10', or a name: float64, int32, uint8, bool, ...)", dtype);
    pshm_array *arr;
    int r = pshm_array_create(name, dtype, ndim, shape, fortran, &o, &arr);
    if (r != 0)
        return cli_fail(name, r);
    r = pshm_array_close(arr);
    return r == 0 ? CLI_OK : cli_fail(name, r);
}

/* ---------------------------------------------------------------- load */

static int array_load(int argc, char **argv)
{
    const char *pos[2] = {0};
    int npos = 0;
    pshm_block_options o;
    cli_args a;

    pshm_block_options_init(&o);
    cli_args_init(&a, "array load", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt) {
            if (npos == 2)
                return cli_extra(&a);
            pos[npos++] = s;
        } else if (strcmp(s, "--mode") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                return CLI_USAGE;
            if (cli_parse_mode(v, &o.mode) != 0)
                return cli_bad_mode("array load", v);
        } else {
            return cli_unknown(&a);
        }
    }
    if (npos < 1)
        return cli_usage("array load: FILE.npy expected");
    const char *file = pos[0], *name = pos[1];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(file, -errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fstat(fd, &st) != 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        close(fd);
        return cli_fail(file, e);
    }
    unsigned char *img;
    size_t len;
    int r = cli_read_all(fd, SIZE_MAX / 2, &img, &len); /* a copy: the file may change */
    close(fd);
    if (r != 0)
        return cli_fail(file, r);
    pshm_array *arr;
    r = pshm_array_create_from_npy(name, img, len, &o, &arr);
    free(img);
    if (r != 0)
        return cli_fail(is_format_error(r) || !name ? file : name, r);
    char safe[4 * PSHM_PATH_MAX];
    cli_safe(pshm_block_name(pshm_array_block(arr)), safe, sizeof safe);
    printf("%s\n", safe);
    pshm_array_close(arr);
    return CLI_OK;
}

/* ---------------------------------------------------------------- save */

static int array_save(int argc, char **argv)
{
    const char *pos[2] = {0};
    int npos = 0;
    cli_args a;

    cli_args_init(&a, "array save", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (a.opt)
            return cli_unknown(&a);
        if (npos == 2)
            return cli_extra(&a);
        pos[npos++] = s;
    }
    if (npos != 2)
        return cli_usage("array save: NAME and FILE.npy expected");
    const char *name = pos[0], *file = pos[1];
    pshm_array_info in;
    pshm_array_info_init(&in);
    int r = pshm_array_stat(name, &in);
    if (r != 0)
        return cli_fail_kind(name, r, "array", "an array");
    /* The block as it is: its header (checked by stat) and its elements,
     * copied out with pread into our memory, then written. */
    uint64_t size, want = in.data_offset + in.nbytes;
    int fd = cli_open_object(name, 0, &size);
    if (fd < 0)
        return cli_fail(name, fd);
    if (want > SIZE_MAX) {
        close(fd);
        return cli_fail(name, -EFBIG);
    }
    unsigned char *img = malloc(want ? (size_t)want : 1);
    size_t got = 0;
    while (img && got < want) {
        ssize_t k = pread(fd, img + got, (size_t)want - got, (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!img)
        return cli_fail(name, -ENOMEM);
    if (got < want) {
        free(img);
        return cli_failf(name, "the block was cut short by another process while it was read");
    }
    int out = strcmp(file, "-") == 0 ? STDOUT_FILENO
                                     : open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        r = -errno;
        free(img);
        return cli_fail(file, r);
    }
    r = cli_write_all(out, img, (size_t)want);
    free(img);
    if (out != STDOUT_FILENO && close(out) != 0 && r == 0)
        r = -errno;
    return r == 0 ? CLI_OK : cli_fail(file, r);
}

/* ------------------------------------------------------------ dispatch */

static int cmd_array(int argc, char **argv)
{
    static const cli_sub subs[] = {{"info", array_info},
                                   {"create", array_create},
                                   {"load", array_load},
                                   {"save", array_save}};
    return cli_dispatch("array", "info, create, load or save expected", subs,
                        sizeof subs / sizeof *subs, argc, argv);
}

const cli_cmd cli_cmds_array[] = {
    {"array", "info|create|load|save ...",
     "numpy .npy arrays in blocks: inspect, create, import, export", cmd_array, help_array},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---------------------------------------------------------------- probe */

static const char *short_reason(int code)
{
    switch (-code) {
    case PSHM_EARRAY_STRUCT: return "structured dtype";
    case PSHM_EARRAY_DTYPE: return "unsupported dtype";
    case PSHM_EARRAY_ALIGN: return "unaligned data";
    case PSHM_EARRAY_TRUNCATED: return "truncated";
    case PSHM_EVERSION: return "unknown version";
    default: return "bad header";
    }
}

/* Only blocks that start with the .npy magic are arrays; those that then do
 * not parse are shown as damaged arrays. */
int cli_probe_array(const pshm_block_info *info, cli_kind *out)
{
    pshm_array_info in;
    cli_details d;
    char shape[200];

    if (info->size < 10)
        return 0;
    pshm_array_info_init(&in);
    int r = pshm_array_stat(info->name, &in);
    if (r == -PSHM_EARRAY_MAGIC || r == -ENOENT || r == -EACCES || r == -PSHM_EFTYPE ||
        r == -ENOMEM)
        return 0;
    snprintf(out->kind, sizeof out->kind, "array");
    if (r != 0) {
        snprintf(out->text, sizeof out->text, "array (%s)", short_reason(r));
        cli_details_error(out, r);
        return 1;
    }
    shape_text(in.shape, in.ndim, shape, sizeof shape);
    snprintf(out->text, sizeof out->text, "array %s %s%s", in.dtype.descr, shape,
             in.fortran_order ? " F" : "");
    cli_details_begin(&d);
    json_geometry(&d.j, &in);
    cli_details_end(&d, out);
    return 1;
}
