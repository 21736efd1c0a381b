/* SPDX-License-Identifier: MIT */
/*
 * cmd_sync.c - `pshm sync ...`: make, inspect and use named synchronisation
 * objects from the shell, and the KIND column of `pshm ls` for them.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- probe */

int cli_probe_sync(const pshm_block_info *info, char *out, size_t cap)
{
    pshm_sync_info in;
    int r;

    pshm_sync_info_init(&in);
    /* pshm_sync_stat maps read-only without the block layer: probing has no
     * effect on any block's lifetime, stale or not. */
    if (info->size < 128 || info->size > 64 + PSHM_BARRIER_SIZE(PSHM_BARRIER_MAX))
        return 0;
    r = pshm_sync_stat(info->name, &in);
    if (r == -EAGAIN) {
        snprintf(out, cap, "sync (initialising)");
        return 1;
    }
    if (r == -PSHM_EVERSION || r == -PSHM_EABI) {
        snprintf(out, cap, "sync (%s)", r == -PSHM_EABI ? "other ABI" : "other version");
        return 1;
    }
    if (r != 0 || !in.named)
        return 0;
    (void)pshm_sync_describe(&in, out, cap, NULL); /* a cut line is fine here */
    return 1;
}

/* -------------------------------------------------------------- helpers */

static pshm_sync_kind kind_from(const char *s)
{
    for (int k = PSHM_SYNC_MUTEX; k <= PSHM_SYNC_EVENT; k++)
        if (strcmp(s, pshm_sync_kind_name((pshm_sync_kind)k)) == 0)
            return (pshm_sync_kind)k;
    return PSHM_SYNC_NONE;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    return cli_parse_u64(s, 0, out) == 0 && *out <= max ? 0 : -EINVAL;
}

/* Open `name` as whatever kind it is; *kind tells which. */
static int open_any(const char *name, pshm_sync_kind *kind, pshm_sync **h)
{
    pshm_sync_info in;
    int r = pshm_sync_open(name, PSHM_SYNC_NONE, NULL, h);

    if (r != 0)
        return r;
    pshm_sync_info_init(&in);
    r = pshm_sync_fstat(*h, &in);
    if (r != 0) {
        pshm_sync_close(*h);
        *h = NULL;
        return r;
    }
    *kind = in.kind;
    return 0;
}

/* ----------------------------------------------------------------- info */

static const char *yesno(int v)
{
    return v ? "yes" : "no";
}

static void print_owner(const pshm_sync_info *in)
{
    if (in->owner_tid && in->owner_tid != in->owner_pid)
        printf("pid %ld tid %ld", in->owner_pid, in->owner_tid);
    else
        printf("pid %ld", in->owner_pid);
    printf(" (%s)", in->owner_alive == 1 ? "alive" : in->owner_alive == 0 ? "dead" : "?");
}

static void info_text(const char *name, const pshm_sync_info *in)
{
    printf("name:      %s\n", name);
    printf("kind:      %s\n", pshm_sync_kind_name(in->kind));
    switch (in->kind) {
    case PSHM_SYNC_MUTEX:
        printf("locked:    %s", yesno(in->locked));
        if (in->locked && in->owner_pid) {
            printf(" by ");
            print_owner(in);
        }
        printf("\nstate:     %s\n", in->notrecoverable ? "not recoverable (an owner died and was never repaired)"
                                    : in->inconsistent ? "inconsistent (owner died; the holder must repair)"
                                                       : "consistent");
        printf("waiters:   %u\n", in->waiters);
        break;
    case PSHM_SYNC_COND:
        printf("waiters:   %u\n", in->waiters);
        printf("signals:   %llu\n", in->seq);
        break;
    case PSHM_SYNC_SEM:
        printf("value:     %u\n", in->value);
        printf("waiters:   %u\n", in->waiters);
        printf("undo:      %s\n", yesno(in->flags & PSHM_SEM_UNDO));
        if (in->flags & PSHM_SEM_UNDO)
            printf("holders:   %u (%u dead, not yet returned)\n", in->members, in->dead);
        break;
    case PSHM_SYNC_RWLOCK:
        if (in->owner_pid) {
            printf("held:      for writing by ");
            print_owner(in);
            printf("\n");
        } else if (in->readers) {
            printf("held:      for reading by %u\n", in->readers);
        } else {
            printf("held:      no\n");
        }
        printf("state:     %s\n", in->inconsistent ? "inconsistent (a writer died; a writer must repair)"
                                                   : "consistent");
        printf("waiters:   %u\n", in->waiters);
        break;
    case PSHM_SYNC_BARRIER:
        printf("parties:   %u\n", in->count);
        printf("arrived:   %u\n", in->value);
        printf("members:   %u (%u dead)\n", in->members, in->dead);
        printf("broken:    %s\n", yesno(in->broken));
        break;
    case PSHM_SYNC_EVENT:
        printf("reset:     %s\n", (in->flags & PSHM_EVENT_MANUAL) ? "manual" : "auto");
        printf("set:       %s\n", yesno(in->value));
        printf("waiters:   %u\n", in->waiters);
        break;
    case PSHM_SYNC_NONE:
        break;
    }
}

static void info_json(const char *name, const pshm_sync_info *in)
{
    char desc[160];

    (void)pshm_sync_describe(in, desc, sizeof desc, NULL);
    fputs("{\"name\":", stdout);
    cli_json_string(stdout, name);
    printf(",\"kind\":\"%s\",\"summary\":", pshm_sync_kind_name(in->kind));
    cli_json_string(stdout, desc);
    printf(",\"locked\":%s,\"owner_pid\":", in->locked ? "true" : "false");
    if (in->owner_pid)
        printf("%ld,\"owner_alive\":%s", in->owner_pid,
               in->owner_alive == 1 ? "true" : in->owner_alive == 0 ? "false" : "null");
    else
        printf("null,\"owner_alive\":null");
    printf(",\"inconsistent\":%s,\"notrecoverable\":%s,\"waiters\":%u,\"readers\":%u,"
           "\"value\":%u,\"count\":%u,\"members\":%u,\"dead\":%u,\"broken\":%s,\"flags\":%u}\n",
           in->inconsistent ? "true" : "false", in->notrecoverable ? "true" : "false", in->waiters,
           in->readers, in->value, in->count, in->members, in->dead, in->broken ? "true" : "false",
           in->flags);
}

static int sync_info(int argc, char **argv)
{
    int json = 0, any = 0, rc = CLI_OK;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        pshm_sync_info in;
        pshm_sync_info_init(&in);
        int r = pshm_sync_stat(argv[i], &in);
        any = 1;
        if (r == 0 && !in.named)
            r = -PSHM_EBADFORMAT;
        if (r != 0) {
            rc = cli_fail(argv[i], r == -PSHM_EBADFORMAT ? -PSHM_EKIND : r);
            continue;
        }
        if (json)
            info_json(argv[i], &in);
        else
            info_text(argv[i], &in);
    }
    if (!any)
        return cli_usage("sync info: NAME expected");
    return rc;
}

/* --------------------------------------------------------------- create */

static int sync_create(int argc, char **argv)
{
    pshm_sync_options o;
    const char *pos[2] = {0};
    int npos = 0;
    unsigned long long value = 0, count = 0;
    int undo = 0, manual = 0, set = 0;
    pshm_sync *obj = NULL;
    int r;

    pshm_sync_options_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--undo") == 0) {
            undo = 1;
        } else if (strcmp(a, "--manual") == 0) {
            manual = 1;
        } else if (strcmp(a, "--set") == 0) {
            set = 1;
        } else if (strcmp(a, "--value") == 0 || strcmp(a, "--count") == 0 ||
                   strcmp(a, "--mode") == 0) {
            if (i + 1 >= argc)
                return cli_usage("sync create: %s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'v' && parse_uint(v, PSHM_SEM_VALUE_MAX, &value) != 0)
                return cli_usage("sync create: bad value '%s'", v);
            if (a[2] == 'c' && (parse_uint(v, PSHM_BARRIER_MAX, &count) != 0 || count == 0))
                return cli_usage("sync create: bad count '%s'", v);
            if (a[2] == 'm' && cli_parse_mode(v, &o.mode) != 0)
                return cli_usage("sync create: bad mode '%s'", v);
        } else if (a[0] == '-' && a[1] == '-') {
            return cli_usage("sync create: unknown option '%s'", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_usage("sync create: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_usage("sync create: KIND and NAME expected");
    pshm_sync_kind kind = kind_from(pos[0]);
    if (kind == PSHM_SYNC_NONE)
        return cli_usage("sync create: unknown kind '%s'", pos[0]);
    if (undo && kind != PSHM_SYNC_SEM)
        return cli_usage("sync create: --undo is for sem");
    if ((manual || set) && kind != PSHM_SYNC_EVENT)
        return cli_usage("sync create: --manual and --set are for event");
    if (value && kind != PSHM_SYNC_SEM)
        return cli_usage("sync create: --value is for sem");
    if (kind == PSHM_SYNC_BARRIER && !count)
        return cli_usage("sync create: a barrier needs --count N");
    if (count && kind != PSHM_SYNC_BARRIER)
        return cli_usage("sync create: --count is for barrier");
    o.value = (unsigned)value;
    o.count = (unsigned)count;
    o.flags = (undo ? PSHM_SEM_UNDO : 0) | (manual ? PSHM_EVENT_MANUAL : 0) | (set ? PSHM_EVENT_SET : 0);
    r = pshm_sync_create(pos[1], kind, &o, &obj);
    if (r != 0)
        return cli_fail(pos[1], r);
    pshm_sync_close(obj);
    return CLI_OK;
}

/* ------------------------------------------------------ post, wait, ... */

/* NAME [--timeout MS] [extra flags]: the name and an optional deadline. */
typedef struct use_args {
    const char *name;
    const char *num;
    int has_deadline, read, consistent;
    struct timespec deadline;
} use_args;

static int parse_use(const char *cmd, int argc, char **argv, int allow_num, int allow_lock,
                     use_args *u)
{
    memset(u, 0, sizeof *u);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--timeout") == 0) {
            unsigned long long ms;
            if (i + 1 >= argc || cli_parse_u64(argv[i + 1], 0, &ms) != 0 || ms > 1000000000ULL)
                return cli_usage("sync %s: --timeout needs milliseconds", cmd);
            pshm_deadline(&u->deadline, (long long)ms);
            u->has_deadline = 1;
            i++;
        } else if (allow_lock && strcmp(a, "--read") == 0) {
            u->read = 1;
        } else if (allow_lock && strcmp(a, "--consistent") == 0) {
            u->consistent = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            return cli_usage("sync %s: unknown option '%s'", cmd, a);
        } else if (!u->name) {
            u->name = a;
        } else if (allow_num && !u->num) {
            u->num = a;
        } else {
            return cli_usage("sync %s: unexpected argument '%s'", cmd, a);
        }
    }
    if (!u->name)
        return cli_usage("sync %s: NAME expected", cmd);
    return CLI_OK;
}

static int wrong_kind(const char *name, pshm_sync_kind kind, pshm_sync *obj, const char *what)
{
    fprintf(stderr, "pshm: %s: is a %s; %s\n", name, pshm_sync_kind_name(kind), what);
    pshm_sync_close(obj);
    return CLI_FAIL;
}

static int sync_post(int argc, char **argv)
{
    use_args u;
    unsigned long long n = 1;
    pshm_sync_kind kind;
    pshm_sync *obj;
    int r = parse_use("post", argc, argv, 1, 0, &u);

    if (r != CLI_OK)
        return r;
    if (u.num && (parse_uint(u.num, PSHM_SEM_VALUE_MAX, &n) != 0 || n == 0))
        return cli_usage("sync post: bad count '%s'", u.num);
    r = open_any(u.name, &kind, &obj);
    if (r != 0)
        return cli_fail(u.name, r);
    if (kind != PSHM_SYNC_SEM)
        return wrong_kind(u.name, kind, obj, "post is for sem");
    for (unsigned long long i = 0; i < n && r == 0; i++)
        r = pshm_sem_post(pshm_sync_sem(obj));
    pshm_sync_close(obj);
    return r == 0 ? CLI_OK : cli_fail(u.name, r);
}

static int sync_wait(int argc, char **argv)
{
    use_args u;
    pshm_sync_kind kind;
    pshm_sync *obj;
    int r = parse_use("wait", argc, argv, 0, 0, &u);
    const struct timespec *d;

    if (r != CLI_OK)
        return r;
    r = open_any(u.name, &kind, &obj);
    if (r != 0)
        return cli_fail(u.name, r);
    d = u.has_deadline ? &u.deadline : NULL;
    switch (kind) {
    case PSHM_SYNC_SEM:
        r = d ? pshm_sem_timedwait(pshm_sync_sem(obj), d) : pshm_sem_wait(pshm_sync_sem(obj));
        break;
    case PSHM_SYNC_EVENT:
        r = d ? pshm_event_timedwait(pshm_sync_event(obj), d) : pshm_event_wait(pshm_sync_event(obj));
        break;
    case PSHM_SYNC_BARRIER:
    {
        pshm_barrier *b = pshm_sync_barrier(obj);
        unsigned arrival = 0;
        r = d ? pshm_barrier_timedwait(b, d, &arrival) : pshm_barrier_wait(b, &arrival);
        pshm_sync_info in;
        pshm_sync_info_init(&in);
        if (r == 0 && pshm_sync_fstat(obj, &in) == 0 && arrival + 1 == in.count)
            printf("serial\n");
        if (r == 0)
            (void)pshm_barrier_leave(b); /* this process is done with it */
    }
        break;
    default:
        return wrong_kind(u.name, kind, obj, "wait is for sem, event and barrier");
    }
    pshm_sync_close(obj);
    return r == 0 ? CLI_OK : cli_fail(u.name, r);
}

static int sync_set_reset(int argc, char **argv, int set)
{
    use_args u;
    pshm_sync_kind kind;
    pshm_sync *obj;
    int r = parse_use(set ? "set" : "reset", argc, argv, 0, 0, &u);

    if (r != CLI_OK)
        return r;
    r = open_any(u.name, &kind, &obj);
    if (r != 0)
        return cli_fail(u.name, r);
    if (kind == PSHM_SYNC_EVENT)
        r = set ? pshm_event_set(pshm_sync_event(obj)) : pshm_event_reset(pshm_sync_event(obj));
    else if (kind == PSHM_SYNC_BARRIER && !set)
        r = pshm_barrier_reset(pshm_sync_barrier(obj));
    else
        return wrong_kind(u.name, kind, obj, set ? "set is for event" : "reset is for event and barrier");
    pshm_sync_close(obj);
    return r == 0 ? CLI_OK : cli_fail(u.name, r);
}

static int sync_set(int argc, char **argv)
{
    return sync_set_reset(argc, argv, 1);
}

static int sync_reset(int argc, char **argv)
{
    return sync_set_reset(argc, argv, 0);
}

/* Take a mutex or rwlock and hold it until a signal: for scripts that need
 * to keep others out, and to watch `pshm ls` report a holder. */
static int sync_lock(int argc, char **argv)
{
    use_args u;
    pshm_sync_kind kind;
    pshm_sync *obj;
    int r = parse_use("lock", argc, argv, 0, 1, &u);

    if (r != CLI_OK)
        return r;
    r = open_any(u.name, &kind, &obj);
    if (r != 0)
        return cli_fail(u.name, r);
    if (kind != PSHM_SYNC_MUTEX && kind != PSHM_SYNC_RWLOCK)
        return wrong_kind(u.name, kind, obj, "lock is for mutex and rwlock");
    if (kind == PSHM_SYNC_MUTEX && u.read)
        return wrong_kind(u.name, kind, obj, "--read is for rwlock");
    cli_signals_hold();
    /* Wait in slices: the signals that end the hold are held back, so look
     * for them between slices - Ctrl-C must still stop a waiting lock. */
    for (;;) {
        struct timespec slice;
        sigset_t pending;
        pshm_deadline(&slice, 100);
        if (u.has_deadline && u.deadline.tv_sec * 1000000000LL + u.deadline.tv_nsec <
                                  slice.tv_sec * 1000000000LL + slice.tv_nsec)
            slice = u.deadline;
        if (kind == PSHM_SYNC_MUTEX)
            r = pshm_mutex_timedlock(pshm_sync_mutex(obj), &slice);
        else
            r = u.read ? pshm_rwlock_timedrdlock(pshm_sync_rwlock(obj), &slice)
                       : pshm_rwlock_timedwrlock(pshm_sync_rwlock(obj), &slice);
        if (r != -ETIMEDOUT || (u.has_deadline && slice.tv_sec == u.deadline.tv_sec &&
                                slice.tv_nsec == u.deadline.tv_nsec))
            break;
        sigpending(&pending);
        if (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM) ||
            sigismember(&pending, SIGHUP)) {
            pshm_sync_close(obj);
            fprintf(stderr, "pshm: %s: interrupted\n", u.name);
            return CLI_FAIL;
        }
    }
    if (r == -PSHM_EOWNERDEAD || r == -PSHM_EREADERDEAD) {
        fprintf(stderr, "pshm: %s: %s\n", u.name, pshm_strerror(r));
        if (r == -PSHM_EOWNERDEAD && !u.consistent)
            fprintf(stderr, "pshm: %s: releasing without --consistent leaves it %s\n", u.name,
                    kind == PSHM_SYNC_MUTEX ? "not recoverable" : "marked inconsistent");
        r = 0;
    } else if (r != 0) {
        pshm_sync_close(obj);
        return cli_fail(u.name, r);
    }
    printf("locked\n");
    fflush(stdout);
    cli_signals_wait();
    if (u.consistent) {
        if (kind == PSHM_SYNC_MUTEX)
            (void)pshm_mutex_consistent(pshm_sync_mutex(obj));
        else if (!u.read)
            (void)pshm_rwlock_consistent(pshm_sync_rwlock(obj));
    }
    r = kind == PSHM_SYNC_MUTEX ? pshm_mutex_unlock(pshm_sync_mutex(obj))
                                : pshm_rwlock_unlock(pshm_sync_rwlock(obj));
    pshm_sync_close(obj);
    return r == 0 ? CLI_OK : cli_fail(u.name, r);
}

/* ------------------------------------------------------------- dispatch */

static const cli_sub subs[] = {
    {"info", sync_info}, {"create", sync_create}, {"post", sync_post}, {"wait", sync_wait},
    {"set", sync_set},   {"reset", sync_reset},   {"lock", sync_lock},
};

static void help_sync(FILE *o)
{
    fputs("usage: pshm sync SUBCOMMAND ...\n\n"
          "Named synchronisation objects (see `pshm ls` for their state):\n"
          "  pshm sync info [--json] NAME...   state of each object\n"
          "  pshm sync create KIND NAME [--value N] [--undo] [--count N]\n"
          "                   [--manual] [--set] [--mode OCTAL]\n"
          "      KIND is mutex, cond, sem, rwlock, barrier or event. --value and\n"
          "      --undo are for sem (undo: a dying holder's units come back),\n"
          "      --count for barrier (required), --manual and --set for event.\n"
          "      The object persists until `pshm rm NAME`.\n"
          "  pshm sync post NAME [N]           sem: add N units (default 1)\n"
          "  pshm sync wait NAME [--timeout MS]\n"
          "      sem: take a unit; event: wait until set; barrier: arrive and wait\n"
          "      for the others (prints 'serial' for the last to arrive)\n"
          "  pshm sync set NAME                event: set it\n"
          "  pshm sync reset NAME              event: clear it; barrier: repair it\n"
          "  pshm sync lock NAME [--read] [--timeout MS] [--consistent]\n"
          "      mutex or rwlock (--read: shared): take it, print 'locked', hold it\n"
          "      until SIGINT, SIGTERM or SIGHUP, then release it. If the previous\n"
          "      holder died, says so; --consistent then marks it repaired.\n"
          "Waits that time out fail with 'Connection timed out' (exit status 1).\n", o);
}

static int cmd_sync(int argc, char **argv)
{
    return cli_dispatch("sync", "SUBCOMMAND expected (info, create, post, wait, set, reset, lock)",
                        subs, sizeof subs / sizeof subs[0], argc, argv);
}

const cli_cmd cli_cmds_sync[] = {
    {"sync", "info|create|post|wait|set|reset|lock ...", "mutexes, semaphores, events, barriers",
     cmd_sync, help_sync},
    {NULL, NULL, NULL, NULL, NULL},
};
