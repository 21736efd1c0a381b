/* SPDX-License-Identifier: MIT */
/*
 * pshm.c - the command line: list, inspect, create, write, remove and
 * collect POSIX shared memory. `ipcs` and `lsipc` show System V objects
 * only; this shows what lives in /dev/shm, with pshm's lifetimes and kinds.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static int stale(const pshm_block_info *in)
{
    return in->readable && in->marked && in->lifetime != PSHM_PERSIST && in->holders == 0;
}

static const char *lifetime_text(const pshm_block_info *in)
{
    if (!in->readable)
        return "?";
    if (!in->marked)
        return "persist";
    if (stale(in))
        return in->lifetime == PSHM_AUTO ? "auto(stale)" : "owned(stale)";
    return pshm_lifetime_name(in->lifetime);
}

static const char *alive_text(int alive)
{
    return alive == 1 ? "alive" : alive == 0 ? "dead" : "?";
}

/* The object as one JSON object (schema: README and man page). */
static void json_object(cli_json *j, const pshm_block_info *in, const cli_kind *k)
{
    char mode[8], user[256], group[256], when[64];
    time_t t = (time_t)in->mtime;
    struct tm tm;

    snprintf(mode, sizeof mode, "%04o", in->mode);
    cli_user(in->uid, user, sizeof user);
    cli_group(in->gid, group, sizeof group);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    cj_open(j, '{');
    cj_kname(j, "name", in->name);
    cj_kname(j, "path", in->path);
    cj_kuint(j, "size", in->size);
    cj_kuint(j, "uid", in->uid);
    cj_kname(j, "user", user);
    cj_kuint(j, "gid", in->gid);
    cj_kname(j, "group", group);
    cj_kstr(j, "mode", mode);
    cj_kstr(j, "modified", when);
    cj_kint(j, "mtime_ns", (long long)in->mtime * 1000000000LL + in->mtime_nsec);
    cj_kbool(j, "readable", in->readable);
    cj_key(j, "lifetime");
    cj_str(j, !in->readable ? NULL : in->marked ? pshm_lifetime_name(in->lifetime) : "persist");
    cj_key(j, "marked");
    in->readable ? cj_bool(j, in->marked) : cj_null(j);
    cj_key(j, "stale");
    in->readable ? cj_bool(j, stale(in)) : cj_null(j);
    cj_key(j, "holders");
    in->holders >= 0 ? cj_int(j, in->holders) : cj_null(j);
    cj_key(j, "mapped"); /* who maps what we may not read is not ours to count */
    in->nmapped >= 0 && in->readable ? cj_int(j, in->nmapped) : cj_null(j);
    cj_key(j, "creator_pid");
    in->creator_pid ? cj_int(j, in->creator_pid) : cj_null(j);
    cj_key(j, "creator_alive");
    in->creator_alive >= 0 && in->creator_pid ? cj_bool(j, in->creator_alive) : cj_null(j);
    cj_key(j, "kind");
    cj_str(j, in->readable ? k->kind : NULL);
    cj_key(j, "summary");
    cj_str(j, in->readable ? k->text : NULL);
    cj_key(j, "details");
    cj_raw(j, k->details ? k->details : "{}");
    cj_close(j, '}');
}

static void json_error(cli_json *j, const char *name, int code)
{
    cj_open(j, '{');
    cj_kname(j, "name", name);
    cj_kstr(j, "error", pshm_errname(code));
    cj_kstr(j, "message", pshm_strerror(code));
    cj_close(j, '}');
}

/* ----------------------------------------------------------------- ls */

static void help_ls(FILE *o)
{
    fputs("usage: pshm ls [--json] [PATTERN...]\n\n"
          "List the POSIX shared-memory objects on the machine (/dev/shm), or only\n"
          "those whose names match a shell PATTERN ('job_*'; quote it):\n"
          "  NAME      the name, as shm_open and CPython's SharedMemory take it\n"
          "            (control characters and bytes that are not UTF-8 escaped)\n"
          "  SIZE      bytes, in KiB, MiB, ... when round\n"
          "  OWNER     the owning user (its number when it has no name)\n"
          "  MODE      permission bits\n"
          "  LIFETIME  persist, auto or owned; '(stale)' when every holder died\n"
          "            (`pshm gc` removes those)\n"
          "  MAPPED    processes that map it now (from /proc; ? if unreadable)\n"
          "  CREATOR   the creating pid and whether it lives (pshm-made objects)\n"
          "  KIND      raw, or what pshm finds inside: list, array, queue, mutex, ...\n"
          "An object this user may not read shows ? for what only its bytes tell.\n"
          "Looking never waits for another process, never maps an object and\n"
          "never changes one (a stale block is shown, not removed).\n"
          "--json prints one JSON document: {\"schema\": 1, \"objects\": [...]}, each\n"
          "object as `pshm info --json` prints it (see `man pshm`).\n", o);
}

enum { C_NAME, C_SIZE, C_OWNER, C_MODE, C_LIFETIME, C_MAPPED, C_CREATOR, C_KIND, NCOLS };

typedef struct ls_run {
    int json;
    cli_json j;
    char **patterns;
    int npatterns;
    char *(*rows)[NCOLS];
    size_t n, cap;
} ls_run;

static int ls_one(const pshm_block_info *in, void *ud)
{
    ls_run *run = ud;
    char text[NCOLS][4 * PSHM_PATH_MAX];
    cli_kind k;

    if (run->npatterns > 1) { /* several patterns: the scan took all */
        int hit = 0;
        for (int i = 0; i < run->npatterns && !hit; i++)
            hit = fnmatch(run->patterns[i], in->name, 0) == 0;
        if (!hit)
            return 0;
    }
    cli_kind_of(in, &k);
    if (run->json) {
        json_object(&run->j, in, &k);
        cli_kind_free(&k);
        return 0;
    }
    char user[256];
    cli_safe(in->name, text[C_NAME], sizeof text[C_NAME]);
    cli_human_size(in->size, text[C_SIZE], sizeof text[C_SIZE]);
    cli_user(in->uid, user, sizeof user);
    cli_safe(user, text[C_OWNER], sizeof text[C_OWNER]);
    snprintf(text[C_MODE], sizeof text[C_MODE], "%04o", in->mode);
    snprintf(text[C_LIFETIME], sizeof text[C_LIFETIME], "%s", lifetime_text(in));
    if (in->nmapped < 0 || !in->readable)
        snprintf(text[C_MAPPED], sizeof text[C_MAPPED], "?");
    else
        snprintf(text[C_MAPPED], sizeof text[C_MAPPED], "%ld", in->nmapped);
    if (!in->readable)
        snprintf(text[C_CREATOR], sizeof text[C_CREATOR], "?");
    else if (in->creator_pid)
        snprintf(text[C_CREATOR], sizeof text[C_CREATOR], "%ld(%s)", in->creator_pid,
                 alive_text(in->creator_alive));
    else
        snprintf(text[C_CREATOR], sizeof text[C_CREATOR], "-");
    cli_safe(k.text, text[C_KIND], sizeof text[C_KIND]);
    cli_kind_free(&k);
    if (run->n == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 64;
        void *p = realloc(run->rows, cap * sizeof *run->rows);
        if (!p)
            return -ENOMEM;
        run->rows = p;
        run->cap = cap;
    }
    for (int c = 0; c < NCOLS; c++)
        if (!(run->rows[run->n][c] = strdup(text[c])))
            return -ENOMEM; /* the row's earlier columns leak: we exit now */
    run->n++;
    return 0;
}

/* Columns as wide as their widest cell; numbers right-aligned. */
static void ls_print(ls_run *run)
{
    static const char *const heads[NCOLS] = {"NAME",   "SIZE",   "OWNER",   "MODE",
                                             "LIFETIME", "MAPPED", "CREATOR", "KIND"};
    int width[NCOLS];

    for (int c = 0; c < NCOLS; c++) {
        width[c] = cli_width(heads[c]);
        for (size_t r = 0; r < run->n; r++) {
            int w = cli_width(run->rows[r][c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (size_t r = 0; r <= run->n; r++) {
        for (int c = 0; c < NCOLS; c++) {
            const char *s = r == 0 ? heads[c] : run->rows[r - 1][c];
            int right = c == C_SIZE || c == C_MAPPED;
            if (right)
                for (int w = cli_width(s); w < width[c]; w++)
                    putchar(' ');
            if (c == NCOLS - 1 || right)
                fputs(s, stdout);
            else
                cli_pad(stdout, s, width[c]);
            fputs(c == NCOLS - 1 ? "\n" : "  ", stdout);
        }
    }
}

static int cmd_ls(int argc, char **argv)
{
    ls_run run;
    cli_args a;
    int r;

    memset(&run, 0, sizeof run);
    run.patterns = calloc((size_t)argc, sizeof *run.patterns);
    if (!run.patterns)
        return cli_fail("ls", -ENOMEM);
    cli_args_init(&a, "ls", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt)
            run.patterns[run.npatterns++] = (char *)s;
        else if (strcmp(s, "--json") == 0)
            run.json = 1;
        else
            return cli_unknown(&a);
    }
    if (run.json) {
        cj_document(&run.j, stdout);
        cj_key(&run.j, "objects");
        cj_open(&run.j, '[');
    }
    r = pshm_block_scan(run.npatterns == 1 ? run.patterns[0] : NULL, ls_one, &run);
    if (run.json) {
        cj_close(&run.j, ']');
        cj_close(&run.j, '}');
        putchar('\n');
    } else {
        ls_print(&run);
    }
    for (size_t i = 0; i < run.n; i++)
        for (int c = 0; c < NCOLS; c++)
            free(run.rows[i][c]);
    free(run.rows);
    free(run.patterns);
    if (r != 0)
        return cli_fail("/dev/shm", r);
    return CLI_OK;
}

/* --------------------------------------------------------------- info */

static void help_info(FILE *o)
{
    fputs("usage: pshm info [--json] NAME...\n\n"
          "Describe objects: path, size, owner, mode, modification time, lifetime,\n"
          "holders, kind (with what pshm finds inside), processes mapping it, and\n"
          "the creator and whether it lives. Looking never waits for another\n"
          "process, never maps the object and never changes it.\n"
          "--json prints one JSON document, {\"schema\": 1, \"objects\": [...],\n"
          "\"errors\": [...]}, with every field the text shows (see `man pshm`).\n", o);
}

static void info_text(const pshm_block_info *in, const cli_kind *k)
{
    char name[4 * PSHM_PATH_MAX], path[4 * PSHM_PATH_MAX], human[32], tbuf[64];
    char user[256], group[256], su[1024], sg[1024], kind[1024];
    time_t t = (time_t)in->mtime;
    struct tm tm;

    cli_safe(in->name, name, sizeof name);
    cli_safe(in->path, path, sizeof path);
    cli_human_size(in->size, human, sizeof human);
    cli_user(in->uid, user, sizeof user);
    cli_group(in->gid, group, sizeof group);
    cli_safe(user, su, sizeof su);
    cli_safe(group, sg, sizeof sg);
    cli_safe(k->text, kind, sizeof kind);
    strftime(tbuf, sizeof tbuf, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    printf("name:     %s\n", name);
    printf("path:     %s\n", path);
    if (in->size < 1024)
        printf("size:     %llu\n", (unsigned long long)in->size);
    else
        printf("size:     %llu (%s)\n", (unsigned long long)in->size, human);
    printf("owner:    %s (uid %u), group %s (gid %u)\n", su, in->uid, sg, in->gid);
    printf("mode:     %04o\n", in->mode);
    printf("modified: %s\n", tbuf);
    if (!in->readable) {
        printf("lifetime: ?\n");
        printf("kind:     ? (no permission to read it: lifetime, holders, kind and creator "
               "are unknown)\n");
    } else {
        printf("lifetime: %s%s\n", lifetime_text(in),
               in->marked ? "" : " (no pshm record: raw or foreign)");
        if (in->marked && in->lifetime != PSHM_PERSIST) {
            if (in->holders > 0)
                printf("holders:  %ld\n", in->holders);
            else
                printf("holders:  %s\n",
                       in->holders == 0 ? "none (stale: pshm gc removes it)" : "?");
        }
        printf("kind:     %s\n", kind);
    }
    if (in->nmapped >= 0 && in->readable)
        printf("mapped:   %ld process%s\n", in->nmapped, in->nmapped == 1 ? "" : "es");
    else
        printf("mapped:   ?\n");
    if (!in->readable)
        printf("creator:  ?\n");
    else if (in->creator_pid)
        printf("creator:  pid %ld (%s)\n", in->creator_pid, alive_text(in->creator_alive));
    else
        printf("creator:  unknown\n");
}

static int cmd_info(int argc, char **argv)
{
    int json = 0, rc = CLI_OK, n = 0, nerr = 0, shown = 0;
    const char **names = calloc((size_t)argc, sizeof *names);
    int *codes = calloc((size_t)argc, sizeof *codes);
    cli_json j;
    cli_args a;

    if (!names || !codes) {
        free(names);
        free(codes);
        return cli_fail("info", -ENOMEM);
    }
    cli_args_init(&a, "info", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt) {
            names[n++] = s;
        } else if (strcmp(s, "--json") == 0) {
            json = 1;
        } else {
            free(names);
            free(codes);
            return cli_unknown(&a);
        }
    }
    if (!n) {
        free(names);
        free(codes);
        return cli_usage("info: NAME expected");
    }
    if (json) {
        cj_document(&j, stdout);
        cj_key(&j, "objects");
        cj_open(&j, '[');
    }
    for (int i = 0; i < n; i++) {
        pshm_block_info in;
        cli_kind k;
        pshm_block_info_init(&in);
        codes[i] = pshm_block_stat(names[i], &in);
        if (codes[i] != 0) {
            rc = cli_fail(names[i], codes[i]);
            nerr++;
            continue;
        }
        cli_kind_of(&in, &k);
        if (json) {
            json_object(&j, &in, &k);
        } else {
            if (shown++)
                putchar('\n'); /* a blank line between objects */
            info_text(&in, &k);
        }
        cli_kind_free(&k);
    }
    if (json) {
        cj_close(&j, ']');
        cj_key(&j, "errors");
        cj_open(&j, '[');
        for (int i = 0; i < n && nerr; i++)
            if (codes[i] != 0)
                json_error(&j, names[i], codes[i]);
        cj_close(&j, ']');
        cj_close(&j, '}');
        putchar('\n');
    }
    free(names);
    free(codes);
    return rc;
}

/* ------------------------------------------------------ create and hold */

/* Print b's name, keep b open until SIGINT/SIGTERM/SIGHUP, then close it
 * (ending an AUTO or OWNED lifetime if this was the last holder or the
 * owner). The name is printed once those signals are held back, so one sent
 * as soon as it is read is not lost and does not kill us holding b. */
static int hold_until_signal(pshm_block *b)
{
    char name[4 * PSHM_PATH_MAX];

    cli_signals_hold();
    cli_safe(pshm_block_name(b), name, sizeof name);
    printf("%s\n", name);
    fflush(stdout);
    cli_signals_wait();
    int r = pshm_block_close(b);
    return r == 0 ? CLI_OK : cli_fail("close", r);
}

static void help_create(FILE *o)
{
    fputs("usage: pshm create NAME SIZE [--lifetime persist|auto|owned] [--mode OCTAL]\n"
          "                   [--sparse] [--hold [--watch]]\n\n"
          "Create a zeroed block. SIZE takes K, M, G, T suffixes (powers of 1024)\n"
          "and decimals that make whole bytes (1.5M).\n"
          "  --lifetime  persist (default): until removed; auto: until the last\n"
          "              process that has it open closes it or dies; owned: until\n"
          "              the creating process (this one) ends\n"
          "  --mode      permission bits, 0 to 0777 (default 0600, umask applies)\n"
          "  --sparse    do not reserve the memory now\n"
          "  --hold      keep the block open in this process until it gets\n"
          "              SIGINT, SIGTERM or SIGHUP (an auto or owned block needs\n"
          "              a holder); prints the name once the block exists\n"
          "  --watch     (auto, owned) remove the block the moment its last\n"
          "              holder dies, even by SIGKILL, not at the next gc\n"
          "Without --hold, auto and owned blocks would end with this command, so\n"
          "they require --hold. A NAME starting with '-' goes after '--'.\n", o);
}

static int cmd_create(int argc, char **argv)
{
    pshm_block_options o;
    const char *pos[2] = {0};
    int npos = 0, hold = 0;
    cli_args a;

    pshm_block_options_init(&o);
    cli_args_init(&a, "create", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        const char *v;
        if (!a.opt) {
            if (npos == 2)
                return cli_extra(&a);
            pos[npos++] = s;
        } else if (strcmp(s, "--hold") == 0) {
            hold = 1;
        } else if (strcmp(s, "--sparse") == 0) {
            o.sparse = 1;
        } else if (strcmp(s, "--watch") == 0) {
            o.watch = 1;
        } else if (strcmp(s, "--lifetime") == 0) {
            if (!(v = cli_value(&a)))
                return CLI_USAGE;
            if (strcmp(v, "persist") == 0)
                o.lifetime = PSHM_PERSIST;
            else if (strcmp(v, "auto") == 0)
                o.lifetime = PSHM_AUTO;
            else if (strcmp(v, "owned") == 0)
                o.lifetime = PSHM_OWNED;
            else
                return cli_usage("create: unknown lifetime '%s' (persist, auto or owned)", v);
        } else if (strcmp(s, "--mode") == 0) {
            if (!(v = cli_value(&a)))
                return CLI_USAGE;
            if (cli_parse_mode(v, &o.mode) != 0)
                return cli_bad_mode("create", v);
        } else {
            return cli_unknown(&a);
        }
    }
    if (npos != 2)
        return cli_usage("create: NAME and SIZE expected");
    unsigned long long size;
    int r = cli_parse_u64(pos[1], 1, &size);
    if (r != 0 || size == 0 || size > SIZE_MAX)
        return cli_usage("create: bad size '%s' (bytes > 0; K, M, G, T suffixes; 1.5M)", pos[1]);
    if (o.lifetime != PSHM_PERSIST && !hold)
        return cli_usage("create: --lifetime %s needs --hold", pshm_lifetime_name(o.lifetime));
    if (o.watch && o.lifetime == PSHM_PERSIST)
        return cli_usage("create: --watch needs --lifetime auto or owned");
    pshm_block *b;
    r = pshm_block_create(pos[0], (size_t)size, &o, &b);
    if (r != 0)
        return cli_fail(pos[0], r);
    if (!hold) {
        pshm_block_close(b);
        return CLI_OK;
    }
    return hold_until_signal(b);
}

static void help_hold(FILE *o)
{
    fputs("usage: pshm hold NAME\n\n"
          "Attach to a block and keep it open until SIGINT, SIGTERM or SIGHUP.\n"
          "For an auto block this process is then one of its holders; an owned\n"
          "block stays its owner's (holding only maps it). Prints the name once\n"
          "attached.\n", o);
}

/* Exactly one NAME operand (after "--" it may start with '-'). */
static int one_name(const char *cmd, int argc, char **argv, const char **name)
{
    cli_args a;

    *name = NULL;
    cli_args_init(&a, cmd, argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (a.opt)
            return cli_unknown(&a);
        if (*name)
            return cli_extra(&a);
        *name = s;
    }
    return *name ? CLI_OK : cli_usage("%s: NAME expected", cmd);
}

static int cmd_hold(int argc, char **argv)
{
    const char *name;
    pshm_block *b;
    int r = one_name("hold", argc, argv, &name);

    if (r != CLI_OK)
        return r;
    r = pshm_block_open(name, NULL, &b);
    if (r != 0)
        return cli_fail(name, r);
    return hold_until_signal(b);
}

/* -------------------------------------------------------------- write */

/* The object NAME opened for pread/pwrite with byte `off` inside it (or at
 * its end); its descriptor, or -1 after a message. */
static int open_at(const char *name, int writable, unsigned long long off, uint64_t *size)
{
    int fd = cli_open_object(name, writable, size);

    if (fd < 0) {
        cli_fail(name, fd);
        return -1;
    }
    if (off > *size) {
        close(fd);
        cli_failf(name, "offset %llu is past the end (size %llu)", off, (unsigned long long)*size);
        return -1;
    }
    return fd;
}

static void help_write(FILE *o)
{
    fputs("usage: pshm write NAME [--offset N] [FILE | -]\n\n"
          "Write the bytes of FILE (or of standard input, without FILE or with\n"
          "'-') into the block NAME at byte N (default 0; K, M, G, T suffixes and\n"
          "0x hex). The block keeps its size: input that would not fit between N\n"
          "and its end is refused before anything is written. Nothing is printed.\n", o);
}

static int cmd_write(int argc, char **argv)
{
    const char *name = NULL, *file = NULL;
    unsigned long long off = 0;
    unsigned char *data = NULL;
    size_t len = 0;
    uint64_t size;
    cli_args a;
    int fd, in, r;

    cli_args_init(&a, "write", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt && !name) {
            name = s;
        } else if (!a.opt && !file) {
            file = s;
        } else if (!a.opt) {
            return cli_extra(&a);
        } else if (strcmp(s, "--offset") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                return CLI_USAGE;
            if (cli_parse_u64(v, 1, &off) != 0)
                return cli_usage("write: bad offset '%s'", v);
        } else {
            return cli_unknown(&a);
        }
    }
    if (!name)
        return cli_usage("write: NAME expected");
    fd = open_at(name, 1, off, &size);
    if (fd < 0)
        return CLI_FAIL;
    in = !file || strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        r = -errno;
        close(fd);
        return cli_fail(file, r);
    }
    r = cli_read_all(in, (size_t)(size - off), &data, &len);
    if (in != STDIN_FILENO)
        close(in);
    if (r == -EFBIG) {
        close(fd);
        return cli_failf(name, "the input does not fit: %llu bytes from offset %llu to the end",
                         (unsigned long long)(size - off), off);
    }
    if (r != 0) {
        close(fd);
        return cli_fail(file ? file : "stdin", r);
    }
    size_t done = 0;
    while (r == 0 && done < len) {
        ssize_t w = pwrite(fd, data + done, len - done, (off_t)(off + done));
        if (w < 0 && errno != EINTR)
            r = -errno;
        else if (w > 0)
            done += (size_t)w;
    }
    free(data);
    close(fd);
    return r == 0 ? CLI_OK : cli_fail(name, r);
}

/* ------------------------------------------------------------ rm and gc */

static void help_rm(FILE *o)
{
    fputs("usage: pshm rm NAME...\n\n"
          "Remove names (like shm_unlink). Processes that map a block keep it\n"
          "until they unmap. Fails for names that do not exist; the others are\n"
          "still removed. A NAME starting with '-' goes after '--'.\n", o);
}

static int cmd_rm(int argc, char **argv)
{
    int rc = CLI_OK, n = 0;
    cli_args a;

    cli_args_init(&a, "rm", argc, argv);
    for (const char *s; (s = cli_next(&a));)
        if (a.opt)
            return cli_unknown(&a);
    cli_args_init(&a, "rm", argc, argv);
    for (const char *s; (s = cli_next(&a)); n++) {
        int r = pshm_unlink(s);
        if (r != 0)
            rc = cli_fail(s, r);
    }
    return n ? rc : cli_usage("rm: NAME expected");
}

static void help_gc(FILE *o)
{
    fputs("usage: pshm gc [--dry-run] [NAME...]\n\n"
          "Remove auto and owned blocks whose holders are all dead (after a\n"
          "SIGKILL nothing else removes them): every such block, or only the\n"
          "NAMEs given. Persist and foreign objects are never touched, nor are\n"
          "blocks this user could not remove with rm. Prints each name removed;\n"
          "--dry-run only prints what it would remove. Exit status 1 if a stale\n"
          "block could not be removed (permission denied).\n", o);
}

static void gc_print(const pshm_block_info *in, int err, void *ud)
{
    const int *dry = ud;
    char name[4 * PSHM_PATH_MAX];

    if (err) {
        cli_fail(in->name, err);
        return;
    }
    cli_safe(in->name, name, sizeof name);
    printf("%s %s\n", *dry ? "would remove" : "removed", name);
}

static int gc_name(int dry, const char *name)
{
    pshm_block_info in;
    int removed = 0;

    pshm_block_info_init(&in);
    int r = pshm_block_stat(name, &in);
    if (r != 0)
        return cli_fail(name, r);
    if (!in.marked || in.lifetime == PSHM_PERSIST || in.holders != 0)
        return CLI_OK; /* not stale: nothing to do, and not an error */
    if (dry)
        removed = 1;
    else
        r = pshm_block_collect(name, &removed);
    if (r == 0 && removed)
        gc_print(&in, 0, &dry);
    else if (r < 0 && r != -ENOENT)
        return cli_fail(name, r);
    return CLI_OK;
}

static int cmd_gc(int argc, char **argv)
{
    int dry = 0, names = 0, rc = CLI_OK;
    cli_args a;

    cli_args_init(&a, "gc", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt)
            names++;
        else if (strcmp(s, "--dry-run") == 0 || strcmp(s, "-n") == 0)
            dry = 1;
        else
            return cli_unknown(&a);
    }
    if (names) {
        cli_args_init(&a, "gc", argc, argv);
        for (const char *s; (s = cli_next(&a));)
            if (!a.opt && gc_name(dry, s) != CLI_OK)
                rc = CLI_FAIL;
        return rc;
    }
    int r = pshm_block_gc(NULL, dry ? PSHM_GC_DRY_RUN : 0, gc_print, &dry, NULL);
    if (r == -EACCES || r == -EPERM)
        return CLI_FAIL; /* each refusal was reported by gc_print */
    if (r < 0)
        return cli_fail("gc", r);
    return CLI_OK;
}

/* ---------------------------------------------------------------- dump */

static void help_dump(FILE *o)
{
    fputs("usage: pshm dump NAME [--offset N] [--length N]\n\n"
          "Hex dump of a block, 16 bytes a line with ASCII, as `hexdump -C`\n"
          "prints it: a run of identical lines shows as one line and '*', and\n"
          "the last line is the offset where the dump ends. Offset and length\n"
          "take K, M, G, T suffixes and 0x hex; the length is cut at the block's\n"
          "end. The bytes are read with pread, never through a mapping: a block\n"
          "that another process shrinks meanwhile ends the dump with an error.\n", o);
}

typedef struct dumper {
    unsigned char prev[16];
    int have_prev, starred;
} dumper;

static void dump_line(dumper *d, const unsigned char *p, size_t n, uint64_t at)
{
    if (n == 16 && d->have_prev && memcmp(p, d->prev, 16) == 0) {
        if (!d->starred)
            puts("*");
        d->starred = 1;
        return;
    }
    d->starred = 0;
    d->have_prev = n == 16;
    memcpy(d->prev, p, n);
    printf("%08llx ", (unsigned long long)at);
    for (size_t i = 0; i < 16; i++) {
        if (i == 8)
            putchar(' ');
        if (i < n)
            printf(" %02x", p[i]);
        else
            printf("   ");
    }
    printf("  |");
    for (size_t i = 0; i < n; i++)
        putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
    printf("|\n");
}

static int cmd_dump(int argc, char **argv)
{
    const char *name = NULL;
    unsigned long long off = 0, len = ~0ULL;
    static unsigned char buf[1 << 16];
    uint64_t size, pos;
    dumper d;
    cli_args a;

    cli_args_init(&a, "dump", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt) {
            if (name)
                return cli_extra(&a);
            name = s;
        } else if (strcmp(s, "--offset") == 0 || strcmp(s, "--length") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                return CLI_USAGE;
            if (cli_parse_u64(v, 1, s[2] == 'o' ? &off : &len) != 0)
                return cli_usage("dump: bad %s '%s'", s + 2, v);
        } else {
            return cli_unknown(&a);
        }
    }
    if (!name)
        return cli_usage("dump: NAME expected");
    int fd = open_at(name, 0, off, &size);
    if (fd < 0)
        return CLI_FAIL;
    if (len > size - off)
        len = size - off;
    memset(&d, 0, sizeof d);
    for (pos = 0; pos < len;) {
        size_t want = len - pos < sizeof buf ? (size_t)(len - pos) : sizeof buf, got = 0;
        while (got < want) {
            ssize_t k = pread(fd, buf + got, want - got, (off_t)(off + pos + got));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        for (size_t i = 0; i < got; i += 16)
            dump_line(&d, buf + i, got - i < 16 ? got - i : 16, off + pos + i);
        pos += got;
        if (got < want)
            break;
    }
    printf("%08llx\n", (unsigned long long)(off + pos));
    close(fd);
    if (pos < len)
        return cli_failf(name, "the block was cut short by another process at %llu bytes while "
                         "it was read", (unsigned long long)(off + pos));
    return CLI_OK;
}

/* ------------------------------------------------------------ dispatch */

static const cli_cmd core_cmds[] = {
    {"ls", "[--json] [PATTERN...]", "list shared-memory objects", cmd_ls, help_ls},
    {"info", "[--json] NAME...", "describe objects", cmd_info, help_info},
    {"create", "NAME SIZE [--lifetime L] [--hold]", "create a block", cmd_create, help_create},
    {"write", "NAME [--offset N] [FILE|-]", "write bytes into a block", cmd_write, help_write},
    {"hold", "NAME", "keep a block open until signalled", cmd_hold, help_hold},
    {"rm", "NAME...", "remove names", cmd_rm, help_rm},
    {"gc", "[--dry-run] [NAME...]", "remove auto/owned blocks whose holders all died", cmd_gc, help_gc},
    {"dump", "NAME [--offset N] [--length N]", "hex dump of a block", cmd_dump, help_dump},
    {NULL, NULL, NULL, NULL, NULL},
};

/* The module command tables, in the order `pshm --help` lists them. */
static const cli_cmd *module_tables(int i)
{
    switch (i) {
    case 0: return cli_cmds_list;
    case 1: return cli_cmds_array;
    case 2: return cli_cmds_sync;
    case 3: return cli_cmds_queue;
    }
    return NULL;
}
#define NMODULES 4

static void print_cmds(FILE *o, const cli_cmd *t)
{
    for (; t && t->name; t++) {
        char head[96];
        snprintf(head, sizeof head, "%s %s", t->name, t->args);
        if (strlen(head) > 44)
            fprintf(o, "  pshm %s\n  %49s %s\n", head, "", t->summary);
        else
            fprintf(o, "  pshm %-44s %s\n", head, t->summary);
    }
}

static void help_main(FILE *o)
{
    fputs("usage: pshm COMMAND [ARGS]   (pshm help COMMAND, or pshm COMMAND --help, for more)\n"
          "       pshm -V | --version\n\n"
          "Inspect and manage POSIX shared memory (/dev/shm).\n\n"
          "Commands:\n", o);
    print_cmds(o, core_cmds);
    for (int i = 0; i < NMODULES; i++)
        print_cmds(o, module_tables(i));
    fputs("\nEvery command takes '--' to end its options: a NAME that starts with '-'\n"
          "goes after it (pshm rm -- -x).\n"
          "\nExit status:\n"
          "  0  success\n"
          "  1  the operation failed (message on stderr as 'pshm: NAME: reason')\n"
          "  2  bad command line\n",
          o);
}

static const cli_cmd *find_cmd(const char *name)
{
    for (const cli_cmd *t = core_cmds; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    for (int i = 0; i < NMODULES; i++)
        for (const cli_cmd *t = module_tables(i); t && t->name; t++)
            if (strcmp(t->name, name) == 0)
                return t;
    return NULL;
}

/* Display widths need a UTF-8 locale: the user's, else C.UTF-8. Only the
 * character classes change (LC_CTYPE): messages and numbers stay C. */
static void utf8_locale(void)
{
    if (setlocale(LC_CTYPE, "") && strcmp(nl_langinfo(CODESET), "UTF-8") == 0)
        return;
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "C");
}

int main(int argc, char **argv)
{
    utf8_locale();
    if (argc < 2) {
        fputs("usage: pshm COMMAND [ARGS]   (pshm --help lists the commands)\n", stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        help_main(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "help") == 0) { /* pshm help [CMD] */
        const cli_cmd *h = argc > 2 ? find_cmd(argv[2]) : NULL;
        if (argc > 2 && !h)
            return cli_usage("help: unknown command '%s'", argv[2]);
        if (h)
            h->help(stdout);
        else
            help_main(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        /* the library's version: the CLI is built with it */
        printf("pshm %s\n", pshm_version_string());
        return CLI_OK;
    }
    const cli_cmd *c = find_cmd(argv[1]);
    if (!c)
        return cli_usage("unknown command '%s'", argv[1]);
    if (cli_wants_help(argc - 1, argv + 1)) {
        c->help(stdout);
        return CLI_OK;
    }
    return c->run(argc - 1, argv + 1);
}
