/* SPDX-License-Identifier: MIT */
/*
 * cmd_array.c - `pshm array info|load|save`, and the "array <f8 (1000, 3)"
 * kind that `pshm ls` and `pshm info` show for array blocks.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

static void json_ints(FILE *o, const int64_t *v, int n)
{
    fputc('[', o);
    for (int i = 0; i < n; i++)
        fprintf(o, "%s%lld", i ? "," : "", (long long)v[i]);
    fputc(']', o);
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
          "       pshm array load FILE.npy [NAME] [--mode OCTAL]\n"
          "       pshm array save NAME FILE.npy\n\n"
          "Arrays are blocks holding a numpy .npy image (header, then the\n"
          "elements): numpy.load('/dev/shm/NAME', mmap_mode='r+') maps one in place.\n"
          "  info  dtype, shape, order, strides and sizes of an array block\n"
          "  load  copy a .npy file into a new block (persist lifetime; a random\n"
          "        psm_... name unless NAME is given; --mode sets its permission\n"
          "        bits, default 0600) and print the block's name\n"
          "  save  write an array block to FILE.npy ('-' for stdout): the block's\n"
          "        header and elements, a file numpy.load reads\n"
          "Supported dtypes: bool, int8-64, uint8-64, float16/32/64, complex64/128,\n"
          "S<n>, U<n>, V<n>, either byte order. Structured dtypes are refused.\n", o);
}

static int open_ro(const char *name, pshm_array **a)
{
    pshm_block_options o;

    pshm_block_options_init(&o);
    o.readonly = 1;
    return pshm_array_open(name, &o, a);
}

static int array_info(int argc, char **argv)
{
    const char *name = NULL;
    int json = 0;
    pshm_array *a;
    char shape[2048], strides[2048], tname[64];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (!name && argv[i][0] != '-')
            name = argv[i];
        else
            return cli_usage("array info: unexpected argument '%s'", argv[i]);
    }
    if (!name)
        return cli_usage("array info: NAME expected");
    int r = open_ro(name, &a);
    if (r != 0)
        return cli_fail(name, r);
    const pshm_dtype *d = pshm_array_dtype(a);
    int nd = pshm_array_ndim(a), v = pshm_array_version(a);
    pshm_block *b = pshm_array_block(a);
    if (json) {
        fputs("{\"name\":", stdout);
        cli_json_string(stdout, pshm_block_name(b));
        printf(",\"descr\":\"%s\",\"kind\":\"%c\",\"byteorder\":\"%c\",\"itemsize\":%zu,\"shape\":",
               d->descr, d->kind, d->byteorder, d->itemsize);
        json_ints(stdout, pshm_array_shape(a), nd);
        printf(",\"fortran_order\":%s,\"strides\":", pshm_array_fortran_order(a) ? "true" : "false");
        json_ints(stdout, pshm_array_strides(a), nd);
        printf(",\"nitems\":%llu,\"nbytes\":%zu,\"version\":\"%d.%d\",\"data_offset\":%zu,"
               "\"size\":%zu}\n",
               (unsigned long long)pshm_array_nitems(a), pshm_array_nbytes(a), v >> 8, v & 0xff,
               pshm_array_data_offset(a), pshm_block_size(b));
    } else {
        shape_text(pshm_array_shape(a), nd, shape, sizeof shape);
        shape_text(pshm_array_strides(a), nd, strides, sizeof strides);
        dtype_name(d, tname, sizeof tname);
        printf("name:     %s\n", pshm_block_name(b));
        printf("dtype:    %s (%s, %s, %zu byte%s per item)\n", d->descr, tname,
               order_text(d->byteorder), d->itemsize, d->itemsize == 1 ? "" : "s");
        printf("shape:    %s\n", shape);
        printf("order:    %s\n", pshm_array_fortran_order(a) ? "Fortran (column-major)" : "C (row-major)");
        printf("strides:  %s\n", strides);
        printf("items:    %llu\n", (unsigned long long)pshm_array_nitems(a));
        printf("nbytes:   %zu\n", pshm_array_nbytes(a));
        printf("header:   .npy format %d.%d, data at offset %zu\n", v >> 8, v & 0xff,
               pshm_array_data_offset(a));
        printf("block:    %zu bytes\n", pshm_block_size(b));
    }
    pshm_array_close(a);
    return CLI_OK;
}

/* ---------------------------------------------------------------- load */

static int array_load(int argc, char **argv)
{
    const char *pos[2] = {0};
    int npos = 0;
    pshm_block_options o;

    pshm_block_options_init(&o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0) {
            if (i + 1 >= argc)
                return cli_usage("array load: --mode needs a value");
            const char *v = argv[++i];
            if (cli_parse_mode(v, &o.mode) != 0)
                return cli_usage("array load: bad mode '%s'", v);
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return cli_usage("array load: unknown option '%s'", argv[i]);
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return cli_usage("array load: unexpected argument '%s'", argv[i]);
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
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return cli_fail(file, -EFBIG);
    }
    size_t len = (size_t)st.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : (void *)"";
    close(fd);
    if (map == MAP_FAILED)
        return cli_fail(file, -errno);
    pshm_array *a;
    int r = pshm_array_create_from_npy(name, map, len, &o, &a);
    if (len)
        munmap(map, len);
    if (r != 0)
        return cli_fail(is_format_error(r) || !name ? file : name, r);
    printf("%s\n", pshm_block_name(pshm_array_block(a)));
    pshm_array_close(a);
    return CLI_OK;
}

/* ---------------------------------------------------------------- save */

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int array_save(int argc, char **argv)
{
    if (argc != 3)
        return cli_usage("array save: NAME and FILE.npy expected");
    const char *name = argv[1], *file = argv[2];
    pshm_array *a;
    int r = open_ro(name, &a);
    if (r != 0)
        return cli_fail(name, r);
    int out = strcmp(file, "-") == 0 ? STDOUT_FILENO
                                     : open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        r = -errno;
        pshm_array_close(a);
        return cli_fail(file, r);
    }
    /* The block as it is: its header (checked at open) and its elements. */
    r = write_all(out, pshm_block_data(pshm_array_block(a)),
                  pshm_array_data_offset(a) + pshm_array_nbytes(a));
    if (out != STDOUT_FILENO && close(out) != 0 && r == 0)
        r = -errno;
    pshm_array_close(a);
    return r == 0 ? CLI_OK : cli_fail(file, r);
}

/* ------------------------------------------------------------ dispatch */

static int cmd_array(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"info", array_info}, {"load", array_load}, {"save", array_save}};
    return cli_dispatch("array", "info, load or save expected", subs, sizeof subs / sizeof *subs,
                        argc, argv);
}

const cli_cmd cli_cmds_array[] = {
    {"array", "info|load|save ...", "numpy .npy arrays in blocks: inspect, import, export",
     cmd_array, help_array},
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

int cli_probe_array(const pshm_block_info *info, char *out, size_t cap)
{
    pshm_block_options o;
    pshm_block *b;
    pshm_array *a;
    int is_npy, r;

    /* Opening a stale AUTO/OWNED block would remove it: `ls` must not. */
    if (info->marked && info->lifetime != PSHM_PERSIST && info->holders == 0)
        return 0;
    if (info->size < 10)
        return 0;
    pshm_block_options_init(&o);
    o.readonly = 1;
    if (pshm_block_open(info->name, &o, &b) != 0)
        return 0;
    /* Only blocks that start with the magic are arrays: no waiting on
     * zeroed raw blocks. */
    is_npy = pshm_block_size(b) >= 6 && memcmp(pshm_block_data(b), "\x93NUMPY", 6) == 0;
    pshm_block_close(b);
    if (!is_npy)
        return 0;
    r = pshm_array_open(info->name, &o, &a);
    if (r != 0) {
        if (r == -ENOENT || r == -PSHM_ESTALE || r == -EACCES)
            return 0;
        snprintf(out, cap, "array (%s)", short_reason(r));
        return 1;
    }
    char shape[256];
    shape_text(pshm_array_shape(a), pshm_array_ndim(a), shape, sizeof shape);
    snprintf(out, cap, "array %s %s%s", pshm_array_descr(a), shape,
             pshm_array_fortran_order(a) ? " F" : "");
    pshm_array_close(a);
    return 1;
}
