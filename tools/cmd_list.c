/* SPDX-License-Identifier: MIT */
/*
 * cmd_list.c - `pshm list` and `pshm list-create`: ShareableLists from the
 * shell, printed and parsed the way Python writes them, so the output can
 * be pasted into Python and a Python literal can be pasted here.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- repr */

/* Code points Python's str.isprintable() rejects, as far as a table this
 * small can say: controls, format characters, separators other than the
 * space, surrogates, private use, and the noncharacters U+xxFFFE/F. Other
 * unassigned code points are printed as they are (Python escapes them). */
static int unprintable(uint32_t c)
{
    static const uint32_t ranges[][2] = {
        {0x00, 0x1f}, {0x7f, 0xa0}, {0xad, 0xad}, {0x600, 0x605}, {0x61c, 0x61c},
        {0x6dd, 0x6dd}, {0x70f, 0x70f}, {0x1680, 0x1680}, {0x180e, 0x180e},
        {0x2000, 0x200f}, {0x2028, 0x202f}, {0x205f, 0x2064}, {0x2066, 0x206f},
        {0x3000, 0x3000}, {0xd800, 0xf8ff}, {0xfeff, 0xfeff}, {0xfff9, 0xfffb},
        {0x110bd, 0x110bd}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
        {0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
    };
    if ((c & 0xfffe) == 0xfffe)
        return 1;
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (c >= ranges[i][0] && c <= ranges[i][1])
            return 1;
    return 0;
}

/* Decode one code point of valid UTF-8 (the library has checked it). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (s[0] < 0x80 || len < 2) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xe0) {
        *cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (s[0] < 0xf0 || len < 4) {
        *cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return 3;
    }
    *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
          (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
    return 4;
}

/* Python's quote choice: ' unless the text has ' and no ". */
static char pick_quote(const char *s, size_t len)
{
    return memchr(s, '\'', len) && !memchr(s, '"', len) ? '"' : '\'';
}

static void repr_str(FILE *o, const char *s, size_t len, int is_bytes)
{
    const unsigned char *p = (const unsigned char *)s;
    char q = pick_quote(s, len);

    if (is_bytes)
        fputc('b', o);
    fputc(q, o);
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t k = is_bytes ? (c = p[i], 1) : utf8_next(p + i, len - i, &c);
        if (c == (uint32_t)q || c == '\\')
            fprintf(o, "\\%c", (char)c);
        else if (c == '\t')
            fputs("\\t", o);
        else if (c == '\n')
            fputs("\\n", o);
        else if (c == '\r')
            fputs("\\r", o);
        else if (c < 0x20 || c == 0x7f || (is_bytes && c >= 0x80))
            fprintf(o, "\\x%02x", c);
        else if (c < 0x80 || !unprintable(c))
            fwrite(p + i, 1, k, o);
        else if (c <= 0xff)
            fprintf(o, "\\x%02x", c);
        else if (c <= 0xffff)
            fprintf(o, "\\u%04x", c);
        else
            fprintf(o, "\\U%08x", c);
        i += k;
    }
    fputc(q, o);
}

/* repr(float): the shortest digits that read back as d, placed as Python
 * places them (exponent form when the decimal point is at or before the
 * 4th zero after it, or beyond 16 digits). */
static void repr_float(FILE *o, double d)
{
    char tmp[40], digits[24];
    int prec, nd = 0, exp10;

    if (isnan(d)) {
        fputs("nan", o);
        return;
    }
    if (isinf(d)) {
        fputs(d > 0 ? "inf" : "-inf", o);
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *t = tmp;
    if (*t == '-') {
        fputc('-', o);
        t++;
    }
    for (; *t && *t != 'e'; t++)
        if (*t >= '0' && *t <= '9')
            digits[nd++] = *t;
    exp10 = atoi(t + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    int decpt = exp10 + 1;
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            fputs("0.", o);
            for (int i = 0; i < -decpt; i++)
                fputc('0', o);
            fputs(digits, o);
        } else if (decpt >= nd) {
            fputs(digits, o);
            for (int i = nd; i < decpt; i++)
                fputc('0', o);
            fputs(".0", o);
        } else {
            fprintf(o, "%.*s.%s", decpt, digits, digits + decpt);
        }
    } else {
        fputc(digits[0], o);
        if (nd > 1)
            fprintf(o, ".%s", digits + 1);
        fprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
}

static void repr_value(FILE *o, const pshm_value *v)
{
    switch (v->type) {
    case PSHM_NONE: fputs("None", o); break;
    case PSHM_INT: fprintf(o, "%lld", (long long)v->i); break;
    case PSHM_FLOAT: repr_float(o, v->f); break;
    case PSHM_BOOL: fputs(v->b ? "True" : "False", o); break;
    case PSHM_STR: repr_str(o, v->s.ptr, v->s.len, 0); break;
    case PSHM_BYTES: repr_str(o, v->s.ptr, v->s.len, 1); break;
    }
}

/* -------------------------------------------------------------- parse */

/* Append code point c as UTF-8; 0 if it is not a scalar value. */
static int put_utf8(char *out, size_t *n, uint32_t c)
{
    if (c < 0x80) {
        out[(*n)++] = (char)c;
    } else if (c < 0x800) {
        out[(*n)++] = (char)(0xc0 | c >> 6);
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        if (c >= 0xd800 && c <= 0xdfff)
            return 0;
        out[(*n)++] = (char)(0xe0 | c >> 12);
        out[(*n)++] = (char)(0x80 | (c >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    } else if (c <= 0x10ffff) {
        out[(*n)++] = (char)(0xf0 | c >> 18);
        out[(*n)++] = (char)(0x80 | (c >> 12 & 0x3f));
        out[(*n)++] = (char)(0x80 | (c >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    } else {
        return 0;
    }
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A quoted literal body (after the opening quote) with Python's escapes.
 * *buf is malloc'd (the caller frees it). Returns 0 or -EINVAL. */
static int parse_quoted(const char *s, int is_bytes, char **buf, size_t *len)
{
    char q = *s++;
    size_t cap = strlen(s) * 4 + 1, n = 0;
    char *out = malloc(cap);

    if (!out)
        return -ENOMEM;
    for (;;) {
        unsigned char c = (unsigned char)*s++;
        if (c == 0)
            goto bad; /* no closing quote */
        if (c == (unsigned char)q)
            break;
        if (c != '\\') {
            if (is_bytes && c >= 0x80)
                goto bad; /* bytes literals are ASCII */
            out[n++] = (char)c;
            continue;
        }
        c = (unsigned char)*s++;
        uint32_t v = 0;
        int digits = 0;
        switch (c) {
        case '\\': case '\'': case '"': out[n++] = (char)c; continue;
        case 'n': out[n++] = '\n'; continue;
        case 't': out[n++] = '\t'; continue;
        case 'r': out[n++] = '\r'; continue;
        case 'a': out[n++] = '\a'; continue;
        case 'b': out[n++] = '\b'; continue;
        case 'f': out[n++] = '\f'; continue;
        case 'v': out[n++] = '\v'; continue;
        case 'x': digits = 2; break;
        case 'u': digits = is_bytes ? 0 : 4; break;
        case 'U': digits = is_bytes ? 0 : 8; break;
        default:
            if (c >= '0' && c <= '7') { /* up to three octal digits */
                v = c - '0';
                for (int k = 0; k < 2 && *s >= '0' && *s <= '7'; k++)
                    v = v * 8 + (uint32_t)(*s++ - '0');
                goto emit;
            }
            goto bad;
        }
        if (!digits)
            goto bad;
        for (int k = 0; k < digits; k++) {
            int h = hexval(*s);
            if (h < 0)
                goto bad;
            v = v * 16 + (uint32_t)h;
            s++;
        }
    emit:
        if (is_bytes) {
            if (v > 0xff)
                goto bad;
            out[n++] = (char)v;
        } else if (!put_utf8(out, &n, v)) {
            goto bad;
        }
    }
    if (*s)
        goto bad; /* text after the closing quote */
    *buf = out;
    *len = n;
    return 0;
bad:
    free(out);
    return -EINVAL;
}

/* An int literal: [+-] then decimal, 0x, 0o or 0b digits. -ERANGE outside int64. */
static int parse_int(const char *s, int64_t *out)
{
    int neg = 0, base = 10;
    uint64_t v = 0, lim;

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, s += 2;
    else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        base = 8, s += 2;
    else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        base = 2, s += 2;
    if (!*s)
        return -EINVAL;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    int range = 0;
    for (; *s; s++) {
        int d = hexval(*s);
        if (d < 0 || d >= base)
            return -EINVAL;
        if (v > (lim - (uint64_t)d) / (uint64_t)base)
            range = 1; /* keep checking the syntax */
        else
            v = v * (uint64_t)base + (uint64_t)d;
    }
    if (range)
        return -ERANGE;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int parse_float(const char *s, double *out)
{
    char *end;

    if (!*s || strchr(" \t\n", *s))
        return -EINVAL;
    errno = 0;
    *out = strtod(s, &end);
    if (*end)
        return -EINVAL;
    /* strtod also takes hex floats and "infinity": fine, Python's float() does too. */
    return 0;
}

/*
 * Parse a Python-literal-ish VALUE. Strings come back in a malloc'd *mem
 * (free it). Returns 0, -EINVAL (not a literal) or -ERANGE (int beyond int64).
 */
static int parse_value(const char *s, pshm_value *v, char **mem)
{
    size_t len;
    int r;

    *mem = NULL;
    memset(v, 0, sizeof *v);
    if (strcmp(s, "None") == 0) {
        v->type = PSHM_NONE;
        return 0;
    }
    if (strcmp(s, "True") == 0 || strcmp(s, "False") == 0) {
        *v = pshm_value_bool(s[0] == 'T');
        return 0;
    }
    if (s[0] == '\'' || s[0] == '"' || ((s[0] == 'b' || s[0] == 'B') && (s[1] == '\'' || s[1] == '"'))) {
        int is_bytes = s[0] == 'b' || s[0] == 'B';
        r = parse_quoted(s + is_bytes, is_bytes, mem, &len);
        if (r != 0)
            return r;
        *v = is_bytes ? pshm_value_bytes(*mem, len) : pshm_value_str(*mem, len);
        return 0;
    }
    int64_t i;
    r = parse_int(s, &i);
    if (r == 0) {
        *v = pshm_value_int(i);
        return 0;
    }
    if (r == -ERANGE)
        return r;
    double d;
    if (parse_float(s, &d) == 0) {
        *v = pshm_value_float(d);
        return 0;
    }
    return -EINVAL;
}

static int parse_index(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!*s)
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || errno)
        return -EINVAL;
    *out = v;
    return 0;
}

/* ---------------------------------------------------------- commands */

static void help_list(FILE *o)
{
    fputs("usage: pshm list NAME                    print the items\n"
          "       pshm list NAME --get INDEX        print one item\n"
          "       pshm list NAME --set INDEX VALUE  store VALUE in item INDEX\n"
          "       pshm list NAME --format           print the struct format\n\n"
          "NAME holds a ShareableList (CPython's multiprocessing.shared_memory\n"
          "layout, made by pshm or by Python). Items print as Python's repr()\n"
          "writes them: [1, 2.5, 'hi', b'ab', None, True].\n"
          "INDEX counts from 0; negative counts from the end (-1 is the last).\n"
          "VALUE is a Python literal: an int (42, -7, 0x2a; int64), a float (2.5,\n"
          "1e-3, inf, nan), True, False, None, a str ('text' or \"text\") or bytes\n"
          "(b'\\x00ab'), with Python's escapes. Quote it for the shell:\n"
          "  pshm list NAME --set 2 \"'hello'\"\n"
          "An item may change type; str and bytes must fit the item's storage.\n"
          "A set that fails changes nothing. Printing reads a copy of the list\n"
          "(pread): it never maps the block nor waits for another process.\n", o);
}

static void help_create(FILE *o)
{
    fputs("usage: pshm list-create NAME VALUE...\n\n"
          "Create a ShareableList named NAME (lifetime persist: until removed)\n"
          "holding the VALUEs, written as for `pshm list --set`. Python opens it\n"
          "with ShareableList(name=NAME). A str or bytes item gets room for its\n"
          "length in bytes rounded up to the next multiple of 8 above it (1 to 8\n"
          "bytes more); a later `pshm list --set` must fit there.\n", o);
}

/* Open a list for the command line: messages name the list. Reading goes
 * through a snapshot (a private copy, read with pread: never a mapping,
 * never a wait on another process); only --set opens the block itself. */
static int open_list(const char *name, int readonly, pshm_list **l)
{
    int r;

    if (readonly) {
        r = pshm_list_snapshot(name, l);
    } else {
        cli_guard_mapping(name);
        r = pshm_list_open(name, NULL, l);
    }
    return r == 0 ? CLI_OK : cli_fail_kind(name, r, "list", "a ShareableList");
}

static int item_fail(const char *name, int64_t i, int r)
{
    char safe[4 * PSHM_PATH_MAX];

    cli_safe(name, safe, sizeof safe);
    fprintf(stderr, "pshm: %s[%lld]: %s\n", safe, (long long)i, pshm_strerror(r));
    return CLI_FAIL;
}

static int print_all(const char *name, pshm_list *l)
{
    char *text = NULL;
    size_t tlen = 0;
    FILE *o = open_memstream(&text, &tlen);
    int rc = CLI_OK;

    if (!o)
        return cli_fail(name, -ENOMEM);
    fputc('[', o);
    for (size_t i = 0; i < pshm_list_len(l); i++) {
        pshm_value v;
        int r = pshm_list_get(l, (int64_t)i, &v);
        if (r != 0) {
            rc = item_fail(name, (int64_t)i, r);
            break;
        }
        if (i)
            fputs(", ", o);
        repr_value(o, &v);
    }
    fputs("]\n", o);
    fclose(o);
    if (rc == CLI_OK)
        fwrite(text, 1, tlen, stdout); /* all or nothing */
    free(text);
    return rc;
}

static int cmd_list(int argc, char **argv)
{
    const char *name = NULL, *index = NULL, *value = NULL;
    enum { SHOW, GET, SET, FORMAT } mode = SHOW;
    pshm_list *l;
    int64_t i = 0;
    int rc;

    cli_args a;
    cli_args_init(&a, "list", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt) {
            if (name)
                return cli_extra(&a);
            name = s;
        } else if (strcmp(s, "--get") == 0 || strcmp(s, "--set") == 0) {
            int set = s[2] == 's';
            if (mode != SHOW)
                return cli_usage("list: one of --get, --set, --format");
            if (a.i + set >= argc)
                return cli_usage("list: %s needs %s", s, set ? "INDEX and VALUE" : "INDEX");
            mode = set ? SET : GET;
            index = cli_value(&a);
            if (set)
                value = cli_value(&a);
        } else if (strcmp(s, "--format") == 0) {
            if (mode != SHOW)
                return cli_usage("list: one of --get, --set, --format");
            mode = FORMAT;
        } else {
            return cli_unknown(&a);
        }
    }
    if (!name)
        return cli_usage("list: NAME expected");
    if (index && parse_index(index, &i) != 0)
        return cli_usage("list: bad INDEX '%s'", index);

    pshm_value v;
    char *mem = NULL;
    if (mode == SET) {
        int r = parse_value(value, &v, &mem);
        if (r == -ERANGE) {
            free(mem);
            return cli_failf(name, "item %s: int %s does not fit in int64 (nothing changed)", index,
                             value);
        }
        if (r != 0)
            return cli_usage("list: not a Python literal: %s (str is 'text', bytes b'text')", value);
    }
    rc = open_list(name, mode != SET, &l);
    if (rc != CLI_OK) {
        free(mem);
        return rc;
    }
    if (mode == SHOW) {
        rc = print_all(name, l);
    } else if (mode == GET) {
        int r = pshm_list_get(l, i, &v);
        if (r != 0) {
            rc = item_fail(name, i, r);
        } else {
            repr_value(stdout, &v);
            fputc('\n', stdout);
        }
    } else if (mode == SET) {
        int r = pshm_list_set(l, i, &v);
        if (r != 0)
            rc = item_fail(name, i, r);
    } else {
        size_t len;
        int r = pshm_list_format(l, NULL, 0, &len);
        char *f = r == 0 ? malloc(len + 1) : NULL;
        if (r == 0 && !f)
            r = -ENOMEM;
        if (r == 0)
            r = pshm_list_format(l, f, len + 1, &len);
        if (r != 0)
            rc = cli_fail(name, r);
        else
            printf("%s\n", f);
        free(f);
    }
    free(mem);
    int r = pshm_list_close(l);
    if (r != 0 && rc == CLI_OK)
        rc = cli_fail(name, r);
    return rc;
}

static int cmd_list_create(int argc, char **argv)
{
    const char *name = NULL;
    pshm_value *vals;
    char **mems;
    int n = 0, rc = CLI_OK;
    cli_args a;

    vals = calloc((size_t)argc + 1, sizeof *vals);
    mems = calloc((size_t)argc + 1, sizeof *mems);
    if (!vals || !mems) {
        free(vals);
        free(mems);
        return cli_fail("list-create", -ENOMEM);
    }
    cli_args_init(&a, "list-create", argc, argv);
    for (const char *s; rc == CLI_OK && (s = cli_next(&a));) {
        if (a.opt) {
            rc = cli_unknown(&a);
        } else if (!name) {
            name = s;
        } else {
            int r = parse_value(s, &vals[n], &mems[n]);
            n++;
            if (r == -ERANGE)
                rc = cli_failf(name, "int %s does not fit in int64", s);
            else if (r != 0)
                rc = cli_usage("list-create: not a Python literal: %s (str is 'text', bytes b'text')",
                               s);
        }
    }
    if (rc == CLI_OK && !name)
        rc = cli_usage("list-create: NAME expected");
    if (rc == CLI_OK) {
        pshm_list *l;
        int r = pshm_list_create(name, vals, (size_t)n, NULL, &l);
        if (r != 0)
            rc = cli_fail(name, r);
        else if ((r = pshm_list_close(l)) != 0)
            rc = cli_fail(name, r);
    }
    for (int k = 0; k < n; k++)
        free(mems[k]);
    free(mems);
    free(vals);
    return rc;
}

const cli_cmd cli_cmds_list[] = {
    {"list", "NAME [--get I | --set I VALUE | --format]", "print or set a ShareableList's items",
     cmd_list, help_list},
    {"list-create", "NAME VALUE...", "create a ShareableList", cmd_list_create, help_create},
    {NULL, NULL, NULL, NULL, NULL},
};

/* `pshm ls` and `pshm info`: "list len=N" for blocks that validate. A list
 * has no magic: a block that does not validate is simply not one. */
int cli_probe_list(const pshm_block_info *info, cli_kind *out)
{
    pshm_list_info in;
    cli_details d;

    if (info->size < 16)
        return 0;
    pshm_list_info_init(&in);
    if (pshm_list_stat(info->name, &in) != 0)
        return 0;
    snprintf(out->kind, sizeof out->kind, "list");
    snprintf(out->text, sizeof out->text, "list len=%llu", (unsigned long long)in.len);
    cli_details_begin(&d);
    cj_kuint(&d.j, "len", in.len);
    cj_kuint(&d.j, "data_bytes", in.data_bytes);
    cli_details_end(&d, out);
    return 1;
}
