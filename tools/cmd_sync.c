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
#include <unistd.h>

/* ---------------------------------------------------------------- probe */

/* The object's state as JSON members ("kind": "mutex", "locked": ...):
 * the details of `pshm info --json` and each object of `sync info --json`. */
static void json_state(cli_json *j, const pshm_sync_info *in)
{
    char desc[160];

    cj_kstr(j, "kind", pshm_sync_kind_name(in->kind));
    (void)pshm_sync_describe(in, desc, sizeof desc, NULL);
    cj_kstr(j, "summary", desc);
    cj_kbool(j, "locked", in->locked);
    cj_key(j, "owner_pid");
    in->owner_pid ? cj_int(j, in->owner_pid) : cj_null(j);
    cj_key(j, "owner_tid");
    in->owner_tid ? cj_int(j, in->owner_tid) : cj_null(j);
    cj_key(j, "owner_alive");
    in->owner_pid && in->owner_alive >= 0 ? cj_bool(j, in->owner_alive) : cj_null(j);
    cj_kbool(j, "inconsistent", in->inconsistent);
    cj_kbool(j, "notrecoverable", in->notrecoverable);
    cj_kuint(j, "waiters", in->waiters);
    cj_kuint(j, "readers", in->readers);
    cj_kuint(j, "value", in->value);
    cj_kuint(j, "count", in->count);
    cj_kuint(j, "members", in->members);
    cj_kuint(j, "dead", in->dead);
    cj_kbool(j, "broken", in->broken);
    cj_kbool(j, "undo", in->kind == PSHM_SYNC_SEM && (in->flags & PSHM_SEM_UNDO));
    cj_kbool(j, "manual", in->kind == PSHM_SYNC_EVENT && (in->flags & PSHM_EVENT_MANUAL));
}

int cli_probe_sync(const pshm_block_info *info, cli_kind *out)
{
    pshm_sync_info in;
    cli_details d;
    int r;

    pshm_sync_info_init(&in);
    /* pshm_sync_stat reads with pread, without the block layer: probing has
     * no effect on any block's lifetime, stale or not. */
    if (info->size < 128 || info->size > 64 + PSHM_BARRIER_SIZE(PSHM_BARRIER_MAX))
        return 0;
    r = pshm_sync_stat(info->name, &in);
    if (r == 0 && !in.named)
        return 0;
    snprintf(out->kind, sizeof out->kind, "sync");
    if (r == -EAGAIN || r == -PSHM_EVERSION || r == -PSHM_EABI) {
        snprintf(out->text, sizeof out->text, "sync (%s)",
                 r == -EAGAIN ? "initialising" : r == -PSHM_EABI ? "other ABI" : "other version");
        cli_details_error(out, r);
        return 1;
    }
    if (r != 0)
        return 0;
    (void)pshm_sync_describe(&in, out->text, sizeof out->text, NULL); /* a cut line is fine */
    snprintf(out->what, sizeof out->what, "%s", pshm_sync_kind_name(in.kind));
    cli_details_begin(&d);
    json_state(&d.j, &in);
    cli_details_end(&d, out);
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
    cli_guard_mapping(name);
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
    char safe[4 * PSHM_PATH_MAX];

    cli_safe(name[0] == '/' ? name + 1 : name, safe, sizeof safe);
    printf("name:      %s\n", safe);
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

static int sync_info(int argc, char **argv)
{
    int json = 0, n = 0, rc = CLI_OK;
    cli_json j;
    cli_args a;

    cli_args_init(&a, "sync info", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt)
            n++;
        else if (strcmp(s, "--json") == 0)
            json = 1;
        else
            return cli_unknown(&a);
    }
    if (!n)
        return cli_usage("sync info: NAME expected");
    if (json) {
        cj_document(&j, stdout);
        cj_key(&j, "objects");
        cj_open(&j, '[');
    }
    cli_args_init(&a, "sync info", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (a.opt)
            continue;
        pshm_sync_info in;
        pshm_sync_info_init(&in);
        int r = pshm_sync_stat(s, &in);
        if (r == 0 && !in.named)
            r = -PSHM_EKIND;
        if (r != 0) {
            rc = cli_fail_kind(s, r, "sync", "a sync object");
            continue;
        }
        if (json) {
            cj_open(&j, '{');
            cj_kname(&j, "name", s[0] == '/' ? s + 1 : s);
            json_state(&j, &in);
            cj_close(&j, '}');
        } else {
            info_text(s, &in);
        }
    }
    if (json) {
        cj_close(&j, ']');
        cj_close(&j, '}');
        putchar('\n');
    }
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

    cli_args a;
    pshm_sync_options_init(&o);
    cli_args_init(&a, "sync create", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        const char *v;
        if (!a.opt) {
            if (npos == 2)
                return cli_extra(&a);
            pos[npos++] = s;
        } else if (strcmp(s, "--undo") == 0) {
            undo = 1;
        } else if (strcmp(s, "--manual") == 0) {
            manual = 1;
        } else if (strcmp(s, "--set") == 0) {
            set = 1;
        } else if (strcmp(s, "--value") == 0 || strcmp(s, "--count") == 0 ||
                   strcmp(s, "--mode") == 0) {
            if (!(v = cli_value(&a)))
                return CLI_USAGE;
            if (s[2] == 'v' && parse_uint(v, PSHM_SEM_VALUE_MAX, &value) != 0)
                return cli_usage("sync create: bad --value '%s' (0 to %u)", v, PSHM_SEM_VALUE_MAX);
            if (s[2] == 'c' && (parse_uint(v, PSHM_BARRIER_MAX, &count) != 0 || count == 0))
                return cli_usage("sync create: bad --count '%s' (1 to %d)", v, PSHM_BARRIER_MAX);
            if (s[2] == 'm' && cli_parse_mode(v, &o.mode) != 0)
                return cli_bad_mode("sync create", v);
        } else {
            return cli_unknown(&a);
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
    char what[32];
    cli_args a;

    memset(u, 0, sizeof *u);
    snprintf(what, sizeof what, "sync %s", cmd);
    cli_args_init(&a, what, argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt && !u->name) {
            u->name = s;
        } else if (!a.opt && allow_num && !u->num) {
            u->num = s;
        } else if (!a.opt) {
            return cli_extra(&a);
        } else if (strcmp(s, "--timeout") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                return CLI_USAGE;
            if (cli_parse_timeout(v, &u->deadline) != 0)
                return cli_usage("sync %s: --timeout needs milliseconds", cmd);
            u->has_deadline = 1;
        } else if (allow_lock && strcmp(s, "--read") == 0) {
            u->read = 1;
        } else if (allow_lock && strcmp(s, "--consistent") == 0) {
            u->consistent = 1;
        } else {
            return cli_unknown(&a);
        }
    }
    if (!u->name)
        return cli_usage("sync %s: NAME expected", cmd);
    return CLI_OK;
}

static int wrong_kind(const char *name, pshm_sync_kind kind, pshm_sync *obj, const char *what)
{
    pshm_sync_close(obj);
    return cli_failf(name, "is a %s; %s", pshm_sync_kind_name(kind), what);
}

/* A failed open: name what was found if it is not a sync object. */
static int open_fail(const char *name, int r)
{
    return cli_fail_kind(name, r, "sync", "a sync object");
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
        return open_fail(u.name, r);
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
        return open_fail(u.name, r);
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
        return open_fail(u.name, r);
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

/* Wait for a mutex (or the write side of an rwlock, or its read side with
 * `read`) in slices: while the signals that end a hold are held back, look
 * for them between slices - Ctrl-C must still stop a waiting lock. Returns
 * the lock's code; -EINTR if a signal came first. */
static int take_lock(pshm_sync_kind kind, pshm_sync *obj, const use_args *u)
{
    for (;;) {
        struct timespec slice;
        int r, last;
        pshm_deadline(&slice, 100);
        last = u->has_deadline && (u->deadline.tv_sec < slice.tv_sec ||
                                   (u->deadline.tv_sec == slice.tv_sec &&
                                    u->deadline.tv_nsec <= slice.tv_nsec));
        if (last)
            slice = u->deadline;
        if (kind == PSHM_SYNC_MUTEX)
            r = pshm_mutex_timedlock(pshm_sync_mutex(obj), &slice);
        else
            r = u->read ? pshm_rwlock_timedrdlock(pshm_sync_rwlock(obj), &slice)
                        : pshm_rwlock_timedwrlock(pshm_sync_rwlock(obj), &slice);
        if (r != -ETIMEDOUT || last)
            return r;
        if (cli_signal_pending())
            return -EINTR;
    }
}

/* The dead owner's pid, for messages (0 if unknown). */
static long dead_owner(pshm_sync *obj)
{
    pshm_sync_info in;

    pshm_sync_info_init(&in);
    return pshm_sync_fstat(obj, &in) == 0 ? in.owner_pid : 0;
}

/*
 * Leave a mutex whose owner died as we found it: owner-dead, for the next
 * locker (or `pshm sync recover`) to repair. Unlocking without repair
 * would make it unrecoverable for good; instead this process ends holding
 * it, and its death is witnessed as the previous owner's was (the kernel
 * releases it as owner-dead). Nothing else runs: no unmapping at exit.
 */
static void leave_owner_dead(const char *name)
{
    char safe[4 * PSHM_PATH_MAX];

    cli_safe(name, safe, sizeof safe);
    fprintf(stderr,
            "pshm: %s: the previous owner died holding it; left as it was (owner dead) for "
            "the next locker.\n"
            "pshm: %s: repair what it protects, then run `pshm sync recover %s`\n",
            safe, safe, safe);
    fflush(NULL);
    _exit(CLI_FAIL);
}

/* The arguments of lock or recover, and the mutex or rwlock they name. */
static int open_lock(const char *cmd, int argc, char **argv, use_args *u, pshm_sync_kind *kind,
                     pshm_sync **obj)
{
    char what[64];
    int r = parse_use(cmd, argc, argv, 0, strcmp(cmd, "lock") == 0, u);

    if (r != CLI_OK)
        return r;
    r = open_any(u->name, kind, obj);
    if (r != 0)
        return open_fail(u->name, r);
    snprintf(what, sizeof what, "%s is for mutex and rwlock", cmd);
    if (*kind != PSHM_SYNC_MUTEX && *kind != PSHM_SYNC_RWLOCK)
        return wrong_kind(u->name, *kind, *obj, what);
    return CLI_OK;
}

/* Take a mutex or rwlock and hold it until a signal: for scripts that need
 * to keep others out, and to watch `pshm ls` report a holder. */
static int sync_lock(int argc, char **argv)
{
    use_args u;
    pshm_sync_kind kind;
    pshm_sync *obj;
    int r = open_lock("lock", argc, argv, &u, &kind, &obj);

    if (r != CLI_OK)
        return r;
    if (kind == PSHM_SYNC_MUTEX && u.read)
        return wrong_kind(u.name, kind, obj, "--read is for rwlock");
    cli_signals_hold();
    r = take_lock(kind, obj, &u);
    if (r == -EINTR) {
        pshm_sync_close(obj);
        return cli_failf(u.name, "interrupted");
    }
    if (r == -PSHM_EOWNERDEAD && kind == PSHM_SYNC_MUTEX && !u.consistent)
        leave_owner_dead(u.name); /* does not return */
    if (r == -PSHM_EOWNERDEAD || r == -PSHM_EREADERDEAD) {
        cli_failf(u.name, "%s%s", pshm_strerror(r),
                  r == -PSHM_EOWNERDEAD && !u.consistent
                      ? " (it stays marked inconsistent: --consistent, or `pshm sync recover`, "
                        "marks it repaired)"
                      : "");
        r = 0;
    } else if (r == -ETIMEDOUT) {
        pshm_sync_close(obj);
        return cli_failf(u.name, "timed out: still held by another process");
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

/*
 * `pshm sync recover NAME`: the shell's pshm_mutex_consistent. Take the
 * lock (waiting up to --timeout for a live holder, else not at all); if its
 * owner had died, mark it consistent; release it. One command, so there is
 * no window in which an innocent unlock makes it unrecoverable.
 */
static int sync_recover(int argc, char **argv)
{
    use_args u;
    pshm_sync_kind kind;
    pshm_sync *obj;
    int r = open_lock("recover", argc, argv, &u, &kind, &obj);

    if (r != CLI_OK)
        return r;
    long pid = dead_owner(obj);
    int waited = u.has_deadline;
    if (!u.has_deadline)
        pshm_deadline(&u.deadline, 0); /* try once: never wait for a live holder */
    u.has_deadline = 1;
    cli_signals_hold();
    r = take_lock(kind, obj, &u);
    if (r == -EINTR || r == -ETIMEDOUT || r == -EBUSY) {
        pshm_sync_close(obj);
        return r == -EINTR ? cli_failf(u.name, "interrupted")
                           : cli_failf(u.name, "held by a live process%s: nothing to recover",
                                       waited ? " until the timeout" : "");
    }
    if (r == -PSHM_ENOTRECOVERABLE) {
        pshm_sync_close(obj);
        return cli_failf(u.name, "not recoverable: a holder released it without repairing it; "
                         "remove it (pshm rm) and create it again");
    }
    int was_dead = r == -PSHM_EOWNERDEAD;
    if (r != 0 && !was_dead && r != -PSHM_EREADERDEAD) {
        pshm_sync_close(obj);
        return cli_fail(u.name, r);
    }
    if (was_dead)
        r = kind == PSHM_SYNC_MUTEX ? pshm_mutex_consistent(pshm_sync_mutex(obj))
                                    : pshm_rwlock_consistent(pshm_sync_rwlock(obj));
    int ur = kind == PSHM_SYNC_MUTEX ? pshm_mutex_unlock(pshm_sync_mutex(obj))
                                     : pshm_rwlock_unlock(pshm_sync_rwlock(obj));
    pshm_sync_close(obj);
    if (r != 0 && r != -PSHM_EREADERDEAD)
        return cli_fail(u.name, r);
    if (ur != 0)
        return cli_fail(u.name, ur);
    if (was_dead && pid)
        printf("recovered: its owner, pid %ld, had died holding it; consistent and unlocked now\n",
               pid);
    else if (was_dead)
        printf("recovered: its owner had died holding it; consistent and unlocked now\n");
    else
        printf("nothing to recover: no owner had died holding it\n");
    return CLI_OK;
}

/* ------------------------------------------------------------- dispatch */

static const cli_sub subs[] = {
    {"info", sync_info}, {"create", sync_create}, {"post", sync_post},
    {"wait", sync_wait}, {"set", sync_set},       {"reset", sync_reset},
    {"lock", sync_lock}, {"recover", sync_recover},
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
          "      owner of a mutex died holding it, lock refuses and leaves it as it\n"
          "      was (owner dead), so that nobody loses the chance to repair it;\n"
          "      --consistent takes it anyway and marks it repaired on release.\n"
          "  pshm sync recover NAME [--timeout MS]\n"
          "      mutex or rwlock whose owner (writer) died: take it, mark it\n"
          "      consistent, release it, after you repaired what it protects.\n"
          "      Never waits for a live holder unless --timeout says how long.\n"
          "A wait that ends at --timeout fails with 'timed out' (exit status 1).\n"
          "A NAME starting with '-' goes after '--'.\n", o);
}

static int cmd_sync(int argc, char **argv)
{
    return cli_dispatch("sync", "SUBCOMMAND expected (info, create, post, wait, set, reset, lock, "
                        "recover)",
                        subs, sizeof subs / sizeof subs[0], argc, argv);
}

const cli_cmd cli_cmds_sync[] = {
    {"sync", "info|create|post|wait|set|reset|lock|recover ...",
     "mutexes, semaphores, events, barriers",
     cmd_sync, help_sync},
    {NULL, NULL, NULL, NULL, NULL},
};
