/* SPDX-License-Identifier: MIT */
/*
 * common.c - the helpers of common.h. Plain C11 + POSIX; no pshm internals.
 */
#include "common.h"

#include "pshm.h"

#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* format a printf-style argument list into the array buf */
#define VFORMAT(buf, fmt)                                                       \
    do {                                                                        \
        va_list ap_;                                                            \
        va_start(ap_, fmt);                                                     \
        vsnprintf(buf, sizeof buf, fmt, ap_);                                   \
        va_end(ap_);                                                            \
    } while (0)

/* ------------------------------------------------------------ run options */

void bench_parse(int *argc, char **argv, bench_opts *o, int default_rounds, int quick_rounds)
{
    int out = 1;
    const char *q = getenv("PSHM_BENCH_QUICK");

    o->quick = q && *q && strcmp(q, "0") != 0;
    o->json = NULL;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            o->quick = 1;
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < *argc)
            o->json = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            /* not a run: a mistyped option must not start a 20-minute one */
            printf("usage: %s [--quick] [--json FILE] [ARGS]: see the comment at the top of "
                   "bench/%s.c and bench/README.md\n",
                   argv[0], strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]);
            exit(0);
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "%s: unknown option %s (--help)\n", argv[0], argv[i]);
            exit(2);
        } else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    const char *r = getenv("PSHM_BENCH_ROUNDS");
    o->rounds = r && atoi(r) > 0 ? atoi(r) : o->quick ? quick_rounds : default_rounds;
}

/* ------------------------------------------------------------ clocks, cpus */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_tsc_ns = 1.0;

void bench_calibrate(void)
{
    double t0 = bench_now();
    uint64_t c0 = bench_ticks();
    while (bench_now() - t0 < 0.1)
        ;
    double t1 = bench_now();
    uint64_t c1 = bench_ticks();
    bench_tsc_ns = (t1 - t0) * 1e9 / (double)(c1 - c0);
}

static int cpus[2] = {-2, -2};

int bench_cpu(int which)
{
    if (cpus[0] == -2) {
        cpu_set_t s;
        int n = 0;
        cpus[0] = cpus[1] = -1;
        if (sched_getaffinity(0, sizeof s, &s) == 0 && CPU_COUNT(&s) >= 2)
            for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
                if (CPU_ISSET(c, &s))
                    cpus[n++] = c;
    }
    return cpus[which & 1];
}

void bench_pin(int which)
{
    int c = bench_cpu(which);
    if (c < 0)
        return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(c, &s);
    if (sched_setaffinity(0, sizeof s, &s) != 0)
        perror("sched_setaffinity");
}

void bench_loadavg(char *out, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    out[0] = 0;
    if (!f)
        return;
    if (!fgets(out, (int)cap, f))
        out[0] = 0;
    fclose(f);
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
}

/* ------------------------------------------------------------ statistics */

int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bench_stat bench_stat_of(const double *v, int n)
{
    bench_stat s = {-1, -1, -1, 0};
    double *k = malloc(sizeof *k * (size_t)(n > 0 ? n : 1));
    if (!k)
        return s;
    for (int i = 0; i < n; i++)
        if (v[i] >= 0)
            k[s.n++] = v[i];
    if (s.n) {
        qsort(k, (size_t)s.n, sizeof *k, bench_cmp_double);
        s.min = k[0];
        s.max = k[s.n - 1];
        s.med = s.n % 2 ? k[s.n / 2] : (k[s.n / 2 - 1] + k[s.n / 2]) / 2;
    }
    free(k);
    return s;
}

/* ------------------------------------------------------------ progress */

static const char *prog_name = "bench";
static int prog_tty = -1;
static double prog_t0;

void bench_progress_init(const char *prog)
{
    prog_name = prog;
    prog_tty = isatty(STDERR_FILENO);
    prog_t0 = bench_now();
}

void bench_progress(double done, const char *fmt, ...)
{
    char what[160];

    if (prog_tty <= 0)
        return;
    VFORMAT(what, fmt);
    if (done < 0)
        done = 0;
    if (done > 1)
        done = 1;
    fprintf(stderr, "\r\033[K[%s %3.0f%% %4.0fs] %s", prog_name, done * 100,
            bench_now() - prog_t0, what);
    fflush(stderr);
}

void bench_progress_end(void)
{
    if (prog_tty > 0) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}

/* ------------------------------------------------------------ formatting */

static char *fmt_slot(void)
{
    static char ring[64][48];
    static unsigned next;
    return ring[next++ % 64];
}

const char *bench_fmt(const char *fmt, double v)
{
    char *b = fmt_slot();
    if (v < 0 || isnan(v))
        return "n/a";
    snprintf(b, 48, fmt, v);
    return b;
}

/* 1234567 -> "1,234,567" */
const char *bench_fmt_ns(double ns)
{
    char raw[40], *b = fmt_slot();
    if (ns < 0 || isnan(ns))
        return "n/a";
    snprintf(raw, sizeof raw, "%.0f", ns);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n && o < 46; i++) {
        if (i && (n - i) % 3 == 0)
            b[o++] = ',';
        b[o++] = raw[i];
    }
    b[o] = 0;
    return b;
}

const char *bench_fmt_ratio(double r)
{
    if (r < 0 || isnan(r) || isinf(r))
        return "n/a";
    return bench_fmt(r >= 100 ? "%.0fx" : r >= 10 ? "%.1fx" : "%.2fx", r);
}

const char *bench_fmt_rate(double v)
{
    if (v < 0 || isnan(v))
        return "n/a";
    if (v >= 1e6)
        return bench_fmt("%.2f M/s", v / 1e6);
    if (v >= 1e3)
        return bench_fmt("%.1f k/s", v / 1e3);
    return bench_fmt("%.1f /s", v);
}

const char *bench_fmt_gbs(double v)
{
    return bench_fmt(v >= 10 ? "%.1f GB/s" : "%.2f GB/s", v);
}

const char *bench_fmt_spread(double lo, double hi, const char *unit_fmt)
{
    char *b = fmt_slot(), x[24], y[24];
    if (lo < 0 || hi < 0)
        return "n/a";
    snprintf(x, sizeof x, unit_fmt, lo);
    snprintf(y, sizeof y, unit_fmt, hi);
    snprintf(b, 48, "%s-%s", x, y);
    return b;
}

const char *bench_fmt_size(size_t n)
{
    char *b = fmt_slot();
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(b, 48, "%zu MiB", n >> 20);
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(b, 48, "%zu KiB", n >> 10);
    else
        snprintf(b, 48, "%zu B", n);
    return b;
}

/* ------------------------------------------------------------ JSON */

/*
 * The report is written in parts, each into its own memory buffer, so a
 * program can add a table, a plot, a version or a finding whenever it has
 * one; bj_close assembles {top..., "versions": {...}, "missing": [...],
 * "tables": [...], "plots": [...], "findings": [...]}.
 */
enum { P_TOP, P_VERSIONS, P_MISSING, P_TABLES, P_PLOTS, P_FINDINGS, P_N };
static const char *const part_key[P_N] = {NULL, "versions", "missing", "tables", "plots",
                                          "findings"};

typedef struct part {
    char *buf;
    size_t len;
    FILE *f;
    int depth;          /* 1 = directly inside the part's container */
    int used[64];       /* an element was written at this depth: the next needs a comma */
    char closer[64];
} part;

struct bjson {
    char *path;
    part p[P_N];
    int cur, failed;
};

bjson *bj_open(const char *path)
{
    if (!path)
        return NULL;
    bjson *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->path = strdup(path);
    for (int i = 0; i < P_N; i++) {
        j->p[i].f = open_memstream(&j->p[i].buf, &j->p[i].len);
        j->p[i].depth = 1;
        if (!j->p[i].f)
            j->failed = 1;
    }
    if (j->failed || !j->path) {
        fprintf(stderr, "bench: cannot buffer the JSON report\n");
        exit(1);
    }
    return j;
}

int bj_close(bjson *j)
{
    if (!j)
        return 0;
    FILE *f = fopen(j->path, "w");
    if (!f) {
        perror(j->path);
        j->failed = 1;
    }
    for (int i = 0; i < P_N; i++) {
        part *p = &j->p[i];
        while (p->depth > 1) {
            j->cur = i;
            bj_end(j);
        }
        fclose(p->f);
        if (!f)
            continue;
        if (i == P_TOP)
            fputc('{', f);
        if (i != P_TOP && p->len == 0)
            continue;
        if (i != P_TOP)
            fprintf(f, ",\n  \"%s\": %c", part_key[i], i == P_VERSIONS ? '{' : '[');
        fwrite(p->buf, 1, p->len, f);
        if (i != P_TOP)
            fprintf(f, "\n  %c", i == P_VERSIONS ? '}' : ']');
    }
    if (f) {
        fputs("\n}\n", f);
        j->failed |= ferror(f);
        j->failed |= fclose(f) != 0;
    }
    for (int i = 0; i < P_N; i++)
        free(j->p[i].buf);
    int bad = j->failed;
    free(j->path);
    free(j);
    return bad ? -1 : 0;
}

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* comma, newline + indent, "key": */
static part *lead(bjson *j, const char *key)
{
    part *p = &j->p[j->cur];
    if (p->used[p->depth])
        fputc(',', p->f);
    p->used[p->depth] = 1;
    fprintf(p->f, "\n%*s", 2 * p->depth, "");
    if (key) {
        put_string(p->f, key);
        fputs(": ", p->f);
    }
    return p;
}

static void open_(bjson *j, const char *key, char c, char closer)
{
    if (!j)
        return;
    part *p = &j->p[j->cur];
    if (p->depth >= 63) {
        j->failed = 1;
        return;
    }
    lead(j, key);
    fputc(c, p->f);
    p->depth++;
    p->used[p->depth] = 0;
    p->closer[p->depth] = closer;
}

void bj_obj(bjson *j, const char *key) { open_(j, key, '{', '}'); }
void bj_arr(bjson *j, const char *key) { open_(j, key, '[', ']'); }

void bj_end(bjson *j)
{
    if (!j)
        return;
    part *p = &j->p[j->cur];
    if (p->depth <= 1)
        return;
    int had = p->used[p->depth];
    char c = p->closer[p->depth];
    p->depth--;
    if (had)
        fprintf(p->f, "\n%*s", 2 * p->depth, "");
    fputc(c, p->f);
}

static void put_num(FILE *f, double v)
{
    if (v < 0 || isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

void bj_num(bjson *j, const char *key, double v)
{
    if (j)
        put_num(lead(j, key)->f, v);
}

void bj_int(bjson *j, const char *key, long long v)
{
    if (j)
        fprintf(lead(j, key)->f, "%lld", v);
}

void bj_str(bjson *j, const char *key, const char *s)
{
    if (j)
        put_string(lead(j, key)->f, s);
}

void bj_strf(bjson *j, const char *key, const char *fmt, ...)
{
    char buf[4096];
    if (!j)
        return;
    VFORMAT(buf, fmt);
    bj_str(j, key, buf);
}

void bj_nums(bjson *j, const char *key, const double *v, int n)
{
    if (!j)
        return;
    FILE *f = lead(j, key)->f;
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        put_num(f, v[i]);
    }
    fputc(']', f);
}

/* run the following calls against part i, then go back */
static int enter(bjson *j, int i)
{
    int was = j->cur;
    j->cur = i;
    return was;
}

void bj_begin_report(bjson *j, const char *bench, const char *title, int order,
                     const bench_opts *o)
{
    char la[128];
    bj_str(j, "bench", bench);
    bj_str(j, "title", title);
    bj_int(j, "order", order);
    bj_int(j, "quick", o->quick);
    bj_int(j, "rounds", o->rounds);
    bench_loadavg(la, sizeof la);
    bj_str(j, "loadavg_start", la);
    bj_int(j, "cpu0", bench_cpu(0));
    bj_int(j, "cpu1", bench_cpu(1));
    bj_version(j, "pshm", PSHM_VERSION_STRING);
}

void bj_end_report(bjson *j)
{
    char la[128];
    if (!j)
        return;
    int was = enter(j, P_TOP);
    bench_loadavg(la, sizeof la);
    bj_str(j, "loadavg_end", la);
    j->cur = was;
}

void bj_version(bjson *j, const char *peer, const char *version)
{
    if (!j)
        return;
    int was = enter(j, P_VERSIONS);
    bj_str(j, peer, version);
    j->cur = was;
}

void bj_missing(bjson *j, const char *peer, const char *fmt, ...)
{
    char buf[1024];
    VFORMAT(buf, fmt);
    fprintf(stderr, "bench: %s skipped: %s\n", peer, buf);
    if (!j)
        return;
    int was = enter(j, P_MISSING);
    bj_obj(j, NULL);
    bj_str(j, "peer", peer);
    bj_str(j, "reason", buf);
    bj_end(j);
    j->cur = was;
}

void bj_finding(bjson *j, const char *fmt, ...)
{
    char buf[2048];
    VFORMAT(buf, fmt);
    printf("  %s\n", buf);
    if (!j)
        return;
    int was = enter(j, P_FINDINGS);
    bj_str(j, NULL, buf);
    j->cur = was;
}

void bj_plot_begin(bjson *j, const char *file, const char *kind, const char *title,
                   const char *xlabel, const char *ylabel, int logx, int logy)
{
    if (!j)
        return;
    j->cur = P_PLOTS;
    bj_obj(j, NULL);
    bj_str(j, "file", file);
    bj_str(j, "kind", kind);
    bj_str(j, "title", title);
    bj_str(j, "xlabel", xlabel);
    bj_str(j, "ylabel", ylabel);
    bj_int(j, "logx", logx);
    bj_int(j, "logy", logy);
    bj_arr(j, "series");
}

void bj_series(bjson *j, const char *label, int ref, const double *x, const double *y, int n)
{
    if (!j)
        return;
    bj_obj(j, NULL);
    bj_str(j, "label", label);
    bj_int(j, "ref", ref);
    bj_nums(j, "x", x, n);
    bj_nums(j, "y", y, n);
    bj_end(j);
}

void bj_plot_end(bjson *j)
{
    if (!j)
        return;
    bj_end(j); /* series */
    bj_end(j); /* the plot */
    j->cur = P_TOP;
}

/* ------------------------------------------------------------ tables */

struct btable {
    char *title, *note;
    int ncols, nrows, cap, main, readme;
    char **cols;
    char ***rows; /* a row whose cells[1] is NULL is a section heading */
};

static char *dup_(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

btable *bt_new(const char *title, int ncols, const char *const *cols)
{
    btable *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->title = dup_(title);
    t->ncols = ncols;
    t->cols = calloc((size_t)ncols, sizeof *t->cols);
    if (!t->cols)
        abort();
    for (int i = 0; i < ncols; i++)
        t->cols[i] = dup_(cols[i]);
    return t;
}

static void add_row(btable *t, char **cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->rows = realloc(t->rows, sizeof *t->rows * (size_t)t->cap);
        if (!t->rows)
            abort();
    }
    t->rows[t->nrows++] = cells;
}

void bt_row(btable *t, const char *const *cells)
{
    char **r = calloc((size_t)t->ncols, sizeof *r);
    if (!r)
        abort();
    for (int i = 0; i < t->ncols; i++)
        r[i] = dup_(cells[i]);
    add_row(t, r);
}

void bt_section(btable *t, const char *label)
{
    char **r = calloc((size_t)t->ncols, sizeof *r);
    if (!r)
        abort();
    r[0] = dup_(label);
    add_row(t, r);
}

void bt_note(btable *t, const char *fmt, ...)
{
    char buf[4096];
    VFORMAT(buf, fmt);
    free(t->note);
    t->note = dup_(buf);
}

void bt_main(btable *t) { t->main = 1; }
void bt_readme(btable *t) { t->readme = 1; }

static int is_section(const btable *t, int r) { return t->ncols > 1 && !t->rows[r][1]; }

void bt_emit(btable *t, bjson *j)
{
    int w[32] = {0};
    int nc = t->ncols < 32 ? t->ncols : 32;

    for (int c = 0; c < nc; c++)
        w[c] = (int)strlen(t->cols[c]);
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < nc && !is_section(t, r); c++)
            if ((int)strlen(t->rows[r][c]) > w[c])
                w[c] = (int)strlen(t->rows[r][c]);
    printf("\n%s\n", t->title);
    for (int c = 0; c < nc; c++)
        printf(c ? "  %*s" : "  %-*s", w[c], t->cols[c]);
    printf("\n");
    for (int r = 0; r < t->nrows; r++) {
        if (is_section(t, r)) {
            printf(" %s\n", t->rows[r][0]);
            continue;
        }
        for (int c = 0; c < nc; c++)
            printf(c ? "  %*s" : "  %-*s", w[c], t->rows[r][c]);
        printf("\n");
    }
    if (t->note)
        printf("  %s\n", t->note);
    fflush(stdout);

    int was = j ? enter(j, P_TABLES) : 0;
    bj_obj(j, NULL);
    bj_str(j, "title", t->title);
    bj_int(j, "main", t->main);
    bj_int(j, "readme", t->readme);
    bj_arr(j, "columns");
    for (int c = 0; c < t->ncols; c++)
        bj_str(j, NULL, t->cols[c]);
    bj_end(j);
    bj_arr(j, "rows");
    for (int r = 0; r < t->nrows; r++) {
        bj_arr(j, NULL);
        for (int c = 0; c < (is_section(t, r) ? 1 : t->ncols); c++)
            bj_str(j, NULL, t->rows[r][c]);
        bj_end(j);
    }
    bj_end(j);
    if (t->note)
        bj_str(j, "note", t->note);
    bj_end(j);
    if (j)
        j->cur = was;

    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    for (int c = 0; c < t->ncols; c++)
        free(t->cols[c]);
    free(t->rows);
    free(t->cols);
    free(t->title);
    free(t->note);
    free(t);
}
