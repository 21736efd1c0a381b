/* SPDX-License-Identifier: MIT */
/*
 * util.c - what every pshm command shares: walking arguments, numbers,
 * text that is safe on a terminal, strict JSON, the kind of an object,
 * messages, signals, and reading objects without mapping them.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

/* ------------------------------------------------------------ UTF-8 */

/* One code point of strict UTF-8 at s (n bytes): its length, or 0 if the
 * bytes there are not UTF-8 (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c, min;
    size_t len;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, c = s[0] & 0x1f, min = 0x80;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, c = s[0] & 0x0f, min = 0x800;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, c = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Code points that print nothing yet change what a terminal shows: C1
 * controls, zero-width and direction-changing characters. */
static int invisible(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || c == 0x061c || (c >= 0x200b && c <= 0x200f) ||
           (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f) || c == 0xfeff ||
           (c >= 0xfff9 && c <= 0xfffb);
}

typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, b->len++)
        if (b->len + 1 < b->cap)
            b->p[b->len] = s[i];
    if (b->cap)
        b->p[b->len < b->cap ? b->len : b->cap - 1] = 0;
}

int cli_safe(const char *text, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    sbuf b = {out, cap, 0};
    int width = 0;
    char esc[16];

    if (cap)
        out[0] = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = utf8_decode(s + i, n - i, &c);
        int w;
        if (k == 0) {
            snprintf(esc, sizeof esc, "\\x%02x", s[i]);
            k = 1;
        } else if (c == '\\') {
            snprintf(esc, sizeof esc, "\\\\");
        } else if (c == '\n' || c == '\t' || c == '\r') {
            snprintf(esc, sizeof esc, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", (unsigned)c);
        } else if (c < 0x7f) {
            esc[0] = (char)c, esc[1] = 0;
        } else if (invisible(c) || (w = wcwidth((wchar_t)c)) < 0) {
            snprintf(esc, sizeof esc, c > 0xffff ? "\\U%08x" : "\\u%04x", (unsigned)c);
        } else {
            sb_put(&b, (const char *)s + i, k);
            width += w;
            i += k;
            continue;
        }
        sb_put(&b, esc, strlen(esc));
        width += (int)strlen(esc);
        i += k;
    }
    return width;
}

int cli_width(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    int width = 0;

    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = utf8_decode(s + i, n - i, &c);
        if (k == 0) {
            width++;
            i++;
            continue;
        }
        int w = c < 0x7f ? 1 : wcwidth((wchar_t)c);
        width += w > 0 ? w : 0;
        i += k;
    }
    return width;
}

void cli_pad(FILE *o, const char *s, int width)
{
    fputs(s, o);
    for (int w = cli_width(s); w < width; w++)
        fputc(' ', o);
}

/* ------------------------------------------------------------ JSON */

void cj_init(cli_json *j, FILE *o)
{
    memset(j, 0, sizeof *j);
    j->o = o;
}

/* Before a value or a key: the comma, unless it follows its key. */
static void cj_sep(cli_json *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->count[j->depth]++)
        fputc(',', j->o);
}

void cj_open(cli_json *j, char bracket)
{
    cj_sep(j);
    fputc(bracket, j->o);
    if (j->depth + 1 < (int)(sizeof j->count / sizeof j->count[0]))
        j->depth++;
    j->count[j->depth] = 0;
}

void cj_close(cli_json *j, char bracket)
{
    fputc(bracket, j->o);
    if (j->depth > 0)
        j->depth--;
}

/* Strict UTF-8 JSON: escapes for quotes, backslashes and controls (C1 and
 * the line separators too), U+FFFD for bytes that are not UTF-8. */
static void json_text(FILE *o, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;

    fputc('"', o);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = utf8_decode(s + i, n - i, &c);
        if (k == 0) {
            fputs("\\ufffd", o);
            i++;
            continue;
        }
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", (char)c);
        else if (c == '\n')
            fputs("\\n", o);
        else if (c == '\t')
            fputs("\\t", o);
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029)
            fprintf(o, "\\u%04x", (unsigned)c);
        else
            fwrite(s + i, 1, k, o);
        i += k;
    }
    fputc('"', o);
}

static int utf8_valid(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = utf8_decode(s + i, n - i, &c);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

void cj_key(cli_json *j, const char *key)
{
    cj_sep(j);
    json_text(j->o, key, strlen(key));
    fputc(':', j->o);
    j->after_key = 1;
}

void cj_strn(cli_json *j, const char *s, size_t n)
{
    cj_sep(j);
    json_text(j->o, s, n);
}

void cj_str(cli_json *j, const char *s)
{
    if (!s) {
        cj_null(j);
        return;
    }
    cj_strn(j, s, strlen(s));
}

void cj_int(cli_json *j, long long v)
{
    cj_sep(j);
    fprintf(j->o, "%lld", v);
}

void cj_uint(cli_json *j, unsigned long long v)
{
    cj_sep(j);
    fprintf(j->o, "%llu", v);
}

void cj_bool(cli_json *j, int v)
{
    cj_sep(j);
    fputs(v ? "true" : "false", j->o);
}

void cj_null(cli_json *j)
{
    cj_sep(j);
    fputs("null", j->o);
}

void cj_raw(cli_json *j, const char *text)
{
    cj_sep(j);
    fputs(text, j->o);
}

void cj_kstr(cli_json *j, const char *key, const char *s)
{
    cj_key(j, key);
    cj_str(j, s);
}

void cj_kint(cli_json *j, const char *key, long long v)
{
    cj_key(j, key);
    cj_int(j, v);
}

void cj_kuint(cli_json *j, const char *key, unsigned long long v)
{
    cj_key(j, key);
    cj_uint(j, v);
}

void cj_kbool(cli_json *j, const char *key, int v)
{
    cj_key(j, key);
    cj_bool(j, v);
}

void cj_kname(cli_json *j, const char *key, const char *s)
{
    size_t n = strlen(s);
    char hk[64];

    cj_kstr(j, key, s);
    if (utf8_valid(s, n))
        return;
    snprintf(hk, sizeof hk, "%s_hex", key);
    cj_key(j, hk);
    cj_sep(j);
    fputc('"', j->o);
    for (size_t i = 0; i < n; i++)
        fprintf(j->o, "%02x", (unsigned char)s[i]);
    fputc('"', j->o);
}

void cj_document(cli_json *j, FILE *o)
{
    cj_init(j, o);
    cj_open(j, '{');
    cj_kint(j, "schema", CLI_JSON_SCHEMA);
}

/* ------------------------------------------------------------ kinds */

static cli_probe_fn module_probe(int i)
{
    switch (i) { /* cheapest and most specific first: magic words, then shapes */
    case 0: return cli_probe_sync;
    case 1: return cli_probe_queue;
    case 2: return cli_probe_array;
    case 3: return cli_probe_list;
    }
    return NULL;
}

void cli_kind_of(const pshm_block_info *in, cli_kind *out)
{
    memset(out, 0, sizeof *out);
    if (!in->readable) {
        snprintf(out->kind, sizeof out->kind, "?");
        snprintf(out->text, sizeof out->text, "?");
        return;
    }
    if (strncmp(in->name, "sem.", 4) == 0) {
        snprintf(out->kind, sizeof out->kind, "posix-sem"); /* glibc's sem_open objects */
        snprintf(out->text, sizeof out->text, "posix-sem");
        return;
    }
    for (int i = 0; i < 4; i++) {
        cli_probe_fn probe = module_probe(i);
        if (probe && probe(in, out))
            return;
        cli_kind_free(out);
        memset(out, 0, sizeof *out);
    }
    snprintf(out->kind, sizeof out->kind, "raw");
    snprintf(out->text, sizeof out->text, "raw");
}

void cli_kind_free(cli_kind *k)
{
    free(k->details);
    k->details = NULL;
}

void cli_details_begin(cli_details *d)
{
    d->buf = NULL;
    d->len = 0;
    d->f = open_memstream(&d->buf, &d->len);
    cj_init(&d->j, d->f ? d->f : stderr);
    if (d->f)
        cj_open(&d->j, '{');
}

void cli_details_end(cli_details *d, cli_kind *k)
{
    if (!d->f)
        return;
    cj_close(&d->j, '}');
    fclose(d->f);
    free(k->details);
    k->details = d->buf;
}

void cli_details_error(cli_kind *k, int code)
{
    cli_details d;

    cli_details_begin(&d);
    cj_kstr(&d.j, "error", pshm_errname(code));
    cj_kstr(&d.j, "message", pshm_strerror(code));
    cli_details_end(&d, k);
}

/* ------------------------------------------------------------ messages */

/* What a directory entry that is not a shared-memory object is. */
static const char *ftype_text(const char *name)
{
    char path[PSHM_PATH_MAX + 16];
    struct stat st;

    snprintf(path, sizeof path, "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
    if (lstat(path, &st) != 0)
        return "not a shared-memory object";
    if (S_ISDIR(st.st_mode))
        return "is a directory, not a shared-memory object";
    if (S_ISLNK(st.st_mode))
        return "is a symbolic link, not a shared-memory object (pshm never follows links)";
    if (S_ISFIFO(st.st_mode))
        return "is a FIFO, not a shared-memory object";
    if (S_ISSOCK(st.st_mode))
        return "is a socket, not a shared-memory object";
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        return "is a device, not a shared-memory object";
    return "not a shared-memory object";
}

int cli_fail(const char *what, int code)
{
    return cli_failf(what, "%s", code == -PSHM_EFTYPE ? ftype_text(what) : pshm_strerror(code));
}

int cli_failf(const char *what, const char *fmt, ...)
{
    char safe[4 * PSHM_PATH_MAX];
    va_list ap;

    cli_safe(what, safe, sizeof safe);
    fprintf(stderr, "pshm: %s: ", safe);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("pshm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see pshm --help)\n", stderr);
    return CLI_USAGE;
}

/* Codes that say "these bytes are not the object you asked for". */
static int is_kind_code(int code)
{
    int c = -code;
    return c == PSHM_EKIND || c == PSHM_EBADFORMAT || c == PSHM_EVERSION || c == PSHM_EABI ||
           c == PSHM_EEMPTY || (c >= PSHM_ELIST_SIZE && c <= PSHM_ELIST_MISMATCH) ||
           (c >= PSHM_EARRAY_MAGIC && c <= PSHM_EARRAY_ALIGN);
}

int cli_fail_kind(const char *name, int code, const char *want_kind, const char *want_text)
{
    pshm_block_info in;
    cli_kind k;

    if (!is_kind_code(code))
        return cli_fail(name, code);
    pshm_block_info_init(&in);
    if (pshm_block_stat(name, &in) != 0)
        return cli_fail(name, code);
    cli_kind_of(&in, &k);
    if (strcmp(k.kind, want_kind) == 0) { /* the right kind, damaged */
        cli_kind_free(&k);
        return cli_fail(name, code);
    }
    if (strcmp(k.kind, "raw") == 0 && code == -PSHM_EKIND)
        cli_failf(name, "is a raw block, not %s", want_text);
    else if (strcmp(k.kind, "raw") == 0)
        cli_failf(name, "is a raw block, not %s (%s)", want_text, pshm_strerror(code));
    else
    {
        const char *what = k.what[0] ? k.what : k.text;
        cli_failf(name, "is %s %s, not %s", strchr("aeiou", what[0]) ? "an" : "a", what, want_text);
    }
    cli_kind_free(&k);
    return CLI_FAIL;
}

/* ------------------------------------------------------------ arguments */

int cli_dispatch(const char *cmd, const char *expected, const cli_sub *subs, size_t n, int argc,
                 char **argv)
{
    if (argc < 2)
        return cli_usage("%s: %s", cmd, expected);
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    return cli_usage("%s: unknown subcommand '%s'", cmd, argv[1]);
}

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
}

/* "-1", "-2.5", "-.5", "-inf", "-nan": a negative number, an operand. */
static int negative_number(const char *s)
{
    if (s[0] != '-')
        return 0;
    if ((s[1] >= '0' && s[1] <= '9') || (s[1] == '.' && s[2] >= '0' && s[2] <= '9'))
        return 1;
    return strcasecmp(s + 1, "inf") == 0 || strcasecmp(s + 1, "infinity") == 0 ||
           strcasecmp(s + 1, "nan") == 0;
}

const char *cli_next(cli_args *a)
{
    for (;;) {
        if (a->i >= a->argc)
            return NULL;
        const char *s = a->argv[a->i++];
        if (!a->rest && strcmp(s, "--") == 0) {
            a->rest = 1;
            continue;
        }
        a->opt = !a->rest && s[0] == '-' && s[1] != 0 && !negative_number(s);
        a->cur = s;
        return s;
    }
}

const char *cli_value(cli_args *a)
{
    if (a->i >= a->argc) {
        cli_usage("%s: %s needs a value", a->cmd, a->cur);
        return NULL;
    }
    return a->argv[a->i++];
}

int cli_unknown(cli_args *a)
{
    return cli_usage("%s: unknown option '%s'", a->cmd, a->cur);
}

int cli_extra(cli_args *a)
{
    char safe[4 * PSHM_PATH_MAX];
    cli_safe(a->cur, safe, sizeof safe);
    return cli_usage("%s: unexpected argument '%s'", a->cmd, safe);
}

int cli_name_json(const char *cmd, int argc, char **argv, const char **name, int *json)
{
    cli_args a;

    *name = NULL;
    *json = 0;
    cli_args_init(&a, cmd, argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt && !*name)
            *name = s;
        else if (!a.opt)
            return cli_extra(&a);
        else if (strcmp(s, "--json") == 0)
            *json = 1;
        else
            return cli_unknown(&a);
    }
    return *name ? CLI_OK : cli_usage("%s: NAME expected", cmd);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ numbers */

int cli_parse_u64(const char *s, int allow_suffix, unsigned long long *out)
{
    unsigned __int128 ip = 0, frac = 0, scale = 1, mul = 1, v;
    int hex = 0, digits = 0;

    if (!s)
        return -EINVAL;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        hex = 1;
        s += 2;
    }
    for (; *s; s++, digits++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0'
                : hex && *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                : hex && *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
        if (d < 0)
            break;
        ip = ip * (hex ? 16 : 10) + (unsigned)d;
        if (ip > UINT64_MAX)
            return -ERANGE;
    }
    if (digits == 0)
        return -EINVAL;
    if (*s == '.' && !hex && allow_suffix) {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            if (scale > (unsigned __int128)1e30)
                return -EINVAL; /* absurdly many digits */
            frac = frac * 10 + (unsigned)(*s - '0');
            scale *= 10;
        }
    }
    if (*s && allow_suffix) {
        switch (*s) {
        case 'k': case 'K': mul = 1ULL << 10; break;
        case 'm': case 'M': mul = 1ULL << 20; break;
        case 'g': case 'G': mul = 1ULL << 30; break;
        case 't': case 'T': mul = 1ULL << 40; break;
        default: return -EINVAL;
        }
        s++;
        if (*s == 'i' || *s == 'I') /* KiB, MiB, GiB, TiB */
            s++;
        if (*s == 'b' || *s == 'B')
            s++;
    }
    if (*s)
        return -EINVAL;
    if ((frac * mul) % scale != 0)
        return -EINVAL; /* a fraction of a byte */
    v = ip * mul + frac * mul / scale;
    if (v > UINT64_MAX)
        return -ERANGE;
    *out = (unsigned long long)v;
    return 0;
}

int cli_parse_mode(const char *s, unsigned *out)
{
    unsigned long m = 0;

    if (!s || !*s || strlen(s) > 4)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return -EINVAL;
        m = m * 8 + (unsigned long)(*p - '0');
    }
    if (m > 0777)
        return -EINVAL;
    *out = (unsigned)m;
    return 0;
}

int cli_bad_mode(const char *cmd, const char *s)
{
    return cli_usage("%s: bad mode '%s': permission bits in octal, 0 to 0777 (setuid, setgid "
                     "and sticky bits are refused)", cmd, s);
}

void cli_human_size(uint64_t n, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    double v = (double)n;

    while (v >= 1024 && u < 5 && (n % 1024 == 0 || v >= 10 * 1024)) {
        v /= 1024;
        u++;
    }
    if (u == 0 || v == (double)(uint64_t)v)
        snprintf(out, cap, "%llu%s", (unsigned long long)v, units[u]);
    else
        snprintf(out, cap, "%.1f%s", v, units[u]);
}

int cli_parse_timeout(const char *s, struct timespec *deadline)
{
    unsigned long long ms;

    if (cli_parse_u64(s, 0, &ms) != 0 || ms > 1000000000ULL)
        return -EINVAL;
    return pshm_deadline(deadline, (long long)ms);
}

/* ------------------------------------------------------------ users */

void cli_user(unsigned uid, char *out, size_t cap)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(out, cap, "%s", res->pw_name);
    else
        snprintf(out, cap, "%u", uid);
}

void cli_group(unsigned gid, char *out, size_t cap)
{
    struct group gr, *res = NULL;
    char buf[4096];

    if (getgrgid_r((gid_t)gid, &gr, buf, sizeof buf, &res) == 0 && res)
        snprintf(out, cap, "%s", res->gr_name);
    else
        snprintf(out, cap, "%u", gid);
}

/* ------------------------------------------------------------ signals */

static volatile sig_atomic_t got_signal;
static sigset_t old_mask;

static void on_signal(int sig)
{
    got_signal = sig;
}

void cli_signals_hold(void)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void cli_signals_wait(void)
{
    while (!got_signal)
        sigsuspend(&old_mask);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
}

int cli_signal_pending(void)
{
    sigset_t pending;

    sigpending(&pending);
    return sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM) ||
           sigismember(&pending, SIGHUP);
}

static char guard_msg[4 * PSHM_PATH_MAX + 128];
static size_t guard_len;

static void on_sigbus(int sig)
{
    (void)sig;
    ssize_t r = write(STDERR_FILENO, guard_msg, guard_len);
    (void)r;
    _exit(CLI_FAIL);
}

void cli_guard_mapping(const char *name)
{
    struct sigaction sa;
    char safe[4 * PSHM_PATH_MAX];

    cli_safe(name, safe, sizeof safe);
    snprintf(guard_msg, sizeof guard_msg,
             "pshm: %s: the object was cut short by another process while in use\n", safe);
    guard_len = strlen(guard_msg);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
}

/* ------------------------------------------------------------ files */

int cli_open_object(const char *name, int writable, uint64_t *size)
{
    pshm_block_info in;
    struct stat st;
    int fd, r;

    pshm_block_info_init(&in);
    r = pshm_block_stat(name, &in);
    if (r != 0)
        return r;
    fd = open(in.path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ELOOP ? -PSHM_EFTYPE : -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -PSHM_EFTYPE;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

int cli_read_all(int fd, size_t max, unsigned char **buf, size_t *len)
{
    size_t cap = 65536, n = 0;
    unsigned char *p = malloc(cap);

    if (!p)
        return -ENOMEM;
    for (;;) {
        if (n == cap) {
            unsigned char *q = cap <= max ? realloc(p, cap * 2) : NULL;
            if (!q) {
                free(p);
                return cap > max ? -EFBIG : -ENOMEM;
            }
            p = q;
            cap *= 2;
        }
        ssize_t k = read(fd, p + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = -errno;
            free(p);
            return e;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > max) {
            free(p);
            return -EFBIG;
        }
    }
    *buf = p;
    *len = n;
    return 0;
}

int cli_write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;

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
