/* SPDX-License-Identifier: MIT */
/*
 * pshm.c - the command line: list, inspect, create, remove and collect POSIX
 * shared memory. `ipcs` and `lsipc` show System V objects only; this shows
 * what lives in /dev/shm, with pshm's lifetimes and kinds.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

int cli_fail(const char *what, int code)
{
    fprintf(stderr, "pshm: %s: %s\n", what, pshm_strerror(code));
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

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

int cli_parse_u64(const char *s, int allow_suffix, unsigned long long *out)
{
    char *end;
    unsigned long long v, mul = 1;

    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno == ERANGE)
        return -ERANGE;
    if (end == s)
        return -EINVAL;
    if (*end && allow_suffix) {
        switch (*end) {
        case 'k': case 'K': mul = 1ULL << 10; break;
        case 'm': case 'M': mul = 1ULL << 20; break;
        case 'g': case 'G': mul = 1ULL << 30; break;
        default: return -EINVAL;
        }
        end++;
        if (*end == 'i' || *end == 'I') /* KiB, MiB, GiB */
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
    }
    if (*end)
        return -EINVAL;
    if (v > ~0ULL / mul)
        return -ERANGE;
    *out = v * mul;
    return 0;
}

int cli_parse_mode(const char *s, unsigned *out)
{
    char *end;
    unsigned long m;

    if (!s || !*s)
        return -EINVAL;
    m = strtoul(s, &end, 8);
    if (*end || m > 07777)
        return -EINVAL;
    *out = (unsigned)m;
    return 0;
}

void cli_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

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

static cli_probe_fn module_probe(int i)
{
    switch (i) {
    case 0: return cli_probe_list;
    case 1: return cli_probe_array;
    case 2: return cli_probe_sync;
    case 3: return cli_probe_queue;
    }
    return NULL;
}

/* The kind of an object: a module's description, or "raw". */
static void kind_of(const pshm_block_info *in, char *out, size_t cap)
{
    if (strncmp(in->name, "sem.", 4) == 0) {
        snprintf(out, cap, "posix-sem"); /* glibc's sem_open objects */
        return;
    }
    for (int i = 0; i < NMODULES; i++) {
        cli_probe_fn probe = module_probe(i);
        if (probe && probe(in, out, cap))
            return;
    }
    snprintf(out, cap, "raw");
}

static const char *lifetime_text(const pshm_block_info *in)
{
    if (!in->marked)
        return "persist";
    if (in->lifetime != PSHM_PERSIST && in->holders == 0)
        return in->lifetime == PSHM_AUTO ? "auto(stale)" : "owned(stale)";
    return pshm_lifetime_name(in->lifetime);
}

static const char *alive_text(int alive)
{
    return alive == 1 ? "alive" : alive == 0 ? "dead" : "?";
}

static void human_size(uint64_t n, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double v = (double)n;

    while (v >= 1024 && u < 4 && (n % 1024 == 0 || v >= 10 * 1024)) {
        v /= 1024;
        u++;
    }
    if (u == 0 || v == (double)(uint64_t)v)
        snprintf(out, cap, "%llu%s", (unsigned long long)v, units[u]);
    else
        snprintf(out, cap, "%.1f%s", v, units[u]);
}

static void print_json(FILE *out, const pshm_block_info *in, const char *kind)
{
    fputs("{\"name\":", out);
    cli_json_string(out, in->name);
    fprintf(out, ",\"size\":%llu,\"uid\":%u,\"gid\":%u,\"mode\":\"%04o\",\"lifetime\":\"%s\",",
            (unsigned long long)in->size, in->uid, in->gid, in->mode,
            in->marked ? pshm_lifetime_name(in->lifetime) : "persist");
    fprintf(out, "\"marked\":%s,\"stale\":%s,\"kind\":", in->marked ? "true" : "false",
            in->marked && in->lifetime != PSHM_PERSIST && in->holders == 0 ? "true" : "false");
    cli_json_string(out, kind);
    fprintf(out, ",\"mapped\":%ld,", in->nmapped);
    if (in->creator_pid)
        fprintf(out, "\"creator_pid\":%ld,\"creator_alive\":%s", in->creator_pid,
                in->creator_alive == 1 ? "true" : in->creator_alive == 0 ? "false" : "null");
    else
        fputs("\"creator_pid\":null,\"creator_alive\":null", out);
    fputc('}', out);
}

/* ----------------------------------------------------------------- ls */

static void help_ls(FILE *o)
{
    fputs("usage: pshm ls [--json]\n\n"
          "List every POSIX shared-memory object on the machine (/dev/shm):\n"
          "  NAME      the name, as shm_open and CPython's SharedMemory take it\n"
          "  SIZE      bytes\n"
          "  OWNER     user id and permission bits\n"
          "  LIFETIME  persist, auto or owned; '(stale)' when every holder died\n"
          "            (`pshm gc` removes those)\n"
          "  KIND      raw, or what pshm finds inside (list, array, ...)\n"
          "  MAPPED    processes that map it now (from /proc; ? if unreadable)\n"
          "  CREATOR   the creating pid and whether it lives (pshm-made objects)\n"
          "--json prints one JSON array of objects with the same fields.\n", o);
}

typedef struct ls_run {
    int json;
    size_t n;
} ls_run;

static int ls_one(const pshm_block_info *in, void *ud)
{
    ls_run *run = ud;
    char kind[128], size[32], owner[32], mapped[24], creator[32];

    kind_of(in, kind, sizeof kind);
    if (run->json) {
        if (run->n++)
            fputc(',', stdout);
        print_json(stdout, in, kind);
        return 0;
    }
    human_size(in->size, size, sizeof size);
    snprintf(owner, sizeof owner, "%u:%04o", in->uid, in->mode);
    if (in->nmapped < 0)
        snprintf(mapped, sizeof mapped, "?");
    else
        snprintf(mapped, sizeof mapped, "%ld", in->nmapped);
    if (in->creator_pid)
        snprintf(creator, sizeof creator, "%ld(%s)", in->creator_pid,
                 alive_text(in->creator_alive));
    else
        snprintf(creator, sizeof creator, "-");
    printf("%-32s %10s %-11s %-13s %-24s %6s %s\n", in->name, size, owner, lifetime_text(in),
           kind, mapped, creator);
    return 0;
}

static int cmd_ls(int argc, char **argv)
{
    ls_run run = {0, 0};
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            run.json = 1;
        else
            return cli_usage("ls: unexpected argument '%s'", argv[i]);
    }
    if (run.json)
        fputc('[', stdout);
    else
        printf("%-32s %10s %-11s %-13s %-24s %6s %s\n", "NAME", "SIZE", "OWNER", "LIFETIME",
               "KIND", "MAPPED", "CREATOR");
    r = pshm_block_scan(NULL, ls_one, &run);
    if (run.json)
        fputs("]\n", stdout);
    if (r != 0)
        return cli_fail("/dev/shm", r);
    return CLI_OK;
}

/* --------------------------------------------------------------- info */

static void help_info(FILE *o)
{
    fputs("usage: pshm info [--json] NAME...\n\n"
          "Describe objects: size, owner, mode, lifetime, kind, holders,\n"
          "processes mapping it, creator and whether it lives.\n", o);
}

static int cmd_info(int argc, char **argv)
{
    int json = 0, rc = CLI_OK, any = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        pshm_block_info in;
        char kind[128], tbuf[64];
        pshm_block_info_init(&in);
        int r = pshm_block_stat(argv[i], &in);
        any = 1;
        if (r != 0) {
            rc = cli_fail(argv[i], r);
            continue;
        }
        kind_of(&in, kind, sizeof kind);
        if (json) {
            print_json(stdout, &in, kind);
            fputc('\n', stdout);
            continue;
        }
        time_t t = (time_t)in.mtime;
        struct tm tm;
        strftime(tbuf, sizeof tbuf, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
        printf("name:     %s\n", in.name);
        printf("path:     /dev/shm/%s\n", in.name);
        printf("size:     %llu\n", (unsigned long long)in.size);
        printf("owner:    uid %u gid %u mode %04o\n", in.uid, in.gid, in.mode);
        printf("modified: %s\n", tbuf);
        printf("lifetime: %s%s\n", lifetime_text(&in), in.marked ? "" : " (no pshm record: raw or foreign)");
        if (in.marked && in.lifetime != PSHM_PERSIST)
        {
            if (in.holders > 0)
                printf("holders:  %ld\n", in.holders);
            else
                printf("holders:  %s\n", in.holders == 0 ? "none (stale: pshm gc removes it)" : "?");
        }
        printf("kind:     %s\n", kind);
        if (in.nmapped >= 0)
            printf("mapped:   %ld process%s\n", in.nmapped, in.nmapped == 1 ? "" : "es");
        else
            printf("mapped:   ?\n");
        if (in.creator_pid)
            printf("creator:  pid %ld (%s)\n", in.creator_pid, alive_text(in.creator_alive));
        else
            printf("creator:  unknown\n");
    }
    if (!any)
        return cli_usage("info: NAME expected");
    return rc;
}

/* ------------------------------------------------------ create and hold */

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

/* Print b's name, keep b open until SIGINT/SIGTERM/SIGHUP, then close it
 * (ending an AUTO or OWNED lifetime if this was the last holder or the
 * owner). The name is printed once those signals are held back, so one sent
 * as soon as it is read is not lost and does not kill us holding b. */
static int hold_until_signal(pshm_block *b)
{
    cli_signals_hold();
    printf("%s\n", pshm_block_name(b));
    fflush(stdout);
    cli_signals_wait();
    int r = pshm_block_close(b);
    return r == 0 ? CLI_OK : cli_fail("close", r);
}

static void help_create(FILE *o)
{
    fputs("usage: pshm create NAME SIZE [--lifetime persist|auto|owned] [--mode OCTAL]\n"
          "                   [--sparse] [--hold [--watch]]\n\n"
          "Create a zeroed block. SIZE takes K, M, G suffixes (powers of 1024).\n"
          "  --lifetime  persist (default): until removed; auto: until the last\n"
          "              process that has it open closes it or dies; owned: until\n"
          "              the creating process (this one) ends\n"
          "  --mode      permission bits (default 0600, umask applies)\n"
          "  --sparse    do not reserve the memory now\n"
          "  --hold      keep the block open in this process until it gets\n"
          "              SIGINT, SIGTERM or SIGHUP (an auto or owned block needs\n"
          "              a holder); prints the name once the block exists\n"
          "  --watch     (auto, owned) remove the block the moment its last\n"
          "              holder dies, even by SIGKILL, not at the next gc\n"
          "Without --hold, auto and owned blocks would end with this command, so\n"
          "they require --hold.\n", o);
}

static int cmd_create(int argc, char **argv)
{
    pshm_block_options o;
    const char *pos[2] = {0};
    int npos = 0, hold = 0;

    pshm_block_options_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--hold") == 0) {
            hold = 1;
        } else if (strcmp(a, "--sparse") == 0) {
            o.sparse = 1;
        } else if (strcmp(a, "--watch") == 0) {
            o.watch = 1;
        } else if (strcmp(a, "--lifetime") == 0 || strcmp(a, "--mode") == 0) {
            if (i + 1 >= argc)
                return cli_usage("create: %s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'l') {
                if (strcmp(v, "persist") == 0)
                    o.lifetime = PSHM_PERSIST;
                else if (strcmp(v, "auto") == 0)
                    o.lifetime = PSHM_AUTO;
                else if (strcmp(v, "owned") == 0)
                    o.lifetime = PSHM_OWNED;
                else
                    return cli_usage("create: unknown lifetime '%s'", v);
            } else if (cli_parse_mode(v, &o.mode) != 0) {
                return cli_usage("create: bad mode '%s'", v);
            }
        } else if (a[0] == '-' && a[1] == '-') {
            return cli_usage("create: unknown option '%s'", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_usage("create: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_usage("create: NAME and SIZE expected");
    unsigned long long size;
    int r = cli_parse_u64(pos[1], 1, &size);
    if (r != 0 || size == 0 || size > SIZE_MAX)
        return cli_usage("create: bad size '%s'", pos[1]);
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

static int cmd_hold(int argc, char **argv)
{
    pshm_block *b;
    int r;

    if (argc != 2)
        return cli_usage("hold: NAME expected");
    r = pshm_block_open(argv[1], NULL, &b);
    if (r != 0)
        return cli_fail(argv[1], r);
    return hold_until_signal(b);
}

/* ------------------------------------------------------------ rm and gc */

static void help_rm(FILE *o)
{
    fputs("usage: pshm rm NAME...\n\n"
          "Remove names (like shm_unlink). Processes that map a block keep it\n"
          "until they unmap. Fails for names that do not exist; the others are\n"
          "still removed.\n", o);
}

static int cmd_rm(int argc, char **argv)
{
    int rc = CLI_OK;

    if (argc < 2)
        return cli_usage("rm: NAME expected");
    for (int i = 1; i < argc; i++) {
        int r = pshm_unlink(argv[i]);
        if (r != 0)
            rc = cli_fail(argv[i], r);
    }
    return rc;
}

static void help_gc(FILE *o)
{
    fputs("usage: pshm gc [--dry-run] [NAME...]\n\n"
          "Remove auto and owned blocks whose holders are all dead (after a\n"
          "SIGKILL nothing else removes them): every such block, or only the\n"
          "NAMEs given. Persist and foreign objects are never touched. Prints\n"
          "each name removed; --dry-run only prints what it would remove.\n", o);
}

static void gc_print(const pshm_block_info *in, int err, void *ud)
{
    const int *dry = ud;
    if (err)
        fprintf(stderr, "pshm: %s: %s\n", in->name, pshm_strerror(err));
    else
        printf("%s %s\n", *dry ? "would remove" : "removed", in->name);
}

static int gc_names(int dry, int argc, char **argv)
{
    int rc = CLI_OK;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        pshm_block_info in;
        int removed = 0;
        pshm_block_info_init(&in);
        int r = pshm_block_stat(argv[i], &in);
        if (r != 0) {
            rc = cli_fail(argv[i], r);
            continue;
        }
        if (!in.marked || in.lifetime == PSHM_PERSIST || in.holders != 0)
            continue; /* not stale: nothing to do, and not an error */
        if (dry)
            removed = 1;
        else
            r = pshm_block_collect(argv[i], &removed);
        if (r == 0 && removed)
            gc_print(&in, 0, &dry);
        else if (r < 0 && r != -ENOENT)
            rc = cli_fail(argv[i], r);
    }
    return rc;
}

static int cmd_gc(int argc, char **argv)
{
    int dry = 0, names = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-n") == 0)
            dry = 1;
        else if (argv[i][0] == '-')
            return cli_usage("gc: unknown option '%s'", argv[i]);
        else
            names++;
    }
    if (names)
        return gc_names(dry, argc, argv);
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
          "Hex dump of a block (read-only), 16 bytes a line with ASCII, like\n"
          "`hexdump -C`. Offset and length take K, M, G suffixes and 0x hex;\n"
          "the length is cut at the block's end.\n", o);
}

static void dump_bytes(const unsigned char *p, size_t off, size_t len)
{
    for (size_t line = 0; line < len; line += 16) {
        size_t n = len - line < 16 ? len - line : 16;
        printf("%08zx ", off + line);
        for (size_t i = 0; i < 16; i++) {
            if (i == 8)
                putchar(' ');
            if (i < n)
                printf(" %02x", p[line + i]);
            else
                printf("   ");
        }
        printf("  |");
        for (size_t i = 0; i < n; i++) {
            unsigned char c = p[line + i];
            putchar(c >= 0x20 && c < 0x7f ? c : '.');
        }
        printf("|\n");
    }
}

static int cmd_dump(int argc, char **argv)
{
    const char *name = NULL;
    unsigned long long off = 0, len = ~0ULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--offset") == 0 || strcmp(argv[i], "--length") == 0) {
            if (i + 1 >= argc)
                return cli_usage("dump: %s needs a value", argv[i]);
            unsigned long long *dst = argv[i][2] == 'o' ? &off : &len;
            if (cli_parse_u64(argv[i + 1], 1, dst) != 0)
                return cli_usage("dump: bad %s '%s'", argv[i] + 2, argv[i + 1]);
            i++;
        } else if (!name && argv[i][0] != '-') {
            name = argv[i];
        } else {
            return cli_usage("dump: unexpected argument '%s'", argv[i]);
        }
    }
    if (!name)
        return cli_usage("dump: NAME expected");
    pshm_block_options o;
    pshm_block *b;
    pshm_block_options_init(&o);
    o.readonly = 1;
    int r = pshm_block_open(name, &o, &b);
    if (r != 0)
        return cli_fail(name, r);
    size_t size = pshm_block_size(b);
    if (off > size) {
        pshm_block_close(b);
        fprintf(stderr, "pshm: %s: offset %llu is past the end (size %zu)\n", name, off, size);
        return CLI_FAIL;
    }
    if (len > size - off)
        len = size - off;
    dump_bytes((const unsigned char *)pshm_block_data(b) + off, (size_t)off, (size_t)len);
    pshm_block_close(b);
    return CLI_OK;
}

/* ------------------------------------------------------------ dispatch */

static const cli_cmd core_cmds[] = {
    {"ls", "[--json]", "list every shared-memory object", cmd_ls, help_ls},
    {"info", "[--json] NAME...", "describe objects", cmd_info, help_info},
    {"create", "NAME SIZE [--lifetime L] [--hold]", "create a block", cmd_create, help_create},
    {"hold", "NAME", "keep a block open until signalled", cmd_hold, help_hold},
    {"rm", "NAME...", "remove names", cmd_rm, help_rm},
    {"gc", "[--dry-run] [NAME...]", "remove auto/owned blocks whose holders all died", cmd_gc, help_gc},
    {"dump", "NAME [--offset N] [--length N]", "hex dump of a block", cmd_dump, help_dump},
    {NULL, NULL, NULL, NULL, NULL},
};

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
    fputs("\nExit status:\n"
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

int main(int argc, char **argv)
{
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
