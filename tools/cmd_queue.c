/* SPDX-License-Identifier: MIT */
/*
 * cmd_queue.c - `pshm queue ...`: create, inspect, feed and drain queues
 * from the shell, and the KIND probe for `pshm ls` / `pshm info`.
 * Only the public API: inspection goes through pshm_queue_stat, which
 * opens the block read-only and validates everything it reads.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SHOWN 1024

static void human(uint64_t n, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (n >= 1024 && n % 1024 == 0 && u < 4) {
        n /= 1024;
        u++;
    }
    snprintf(out, cap, "%llu%s", (unsigned long long)n, units[u]);
}

int cli_probe_queue(const pshm_block_info *info, char *out, size_t cap)
{
    pshm_queue_info st;
    pshm_queue_info_init(&st);
    if (info->size < 512 || (info->marked && info->lifetime != PSHM_PERSIST && info->holders == 0))
        return 0; /* too small for a queue; or stale, and opening it would remove it */
    int r = pshm_queue_stat(info->name, &st);

    if (r == -PSHM_EKIND || r == -ENOENT || r == -EACCES || r == -PSHM_ESTALE ||
        r == -PSHM_EEMPTY)
        return 0;
    if (r == -PSHM_EVERSION || r == -PSHM_EABI || r == -PSHM_EBADFORMAT) {
        snprintf(out, cap, "queue (%s)", r == -PSHM_EBADFORMAT ? "corrupt"
                                         : r == -PSHM_EVERSION ? "other version"
                                                               : "other ABI");
        return 1;
    }
    if (r != 0)
        return 0;
    if (st.queue_mode == PSHM_QUEUE_SPSC) {
        char c[32];
        human(st.ring_bytes, c, sizeof c);
        snprintf(out, cap, "queue spsc depth=%llu/%s", (unsigned long long)st.depth, c);
    } else {
        snprintf(out, cap, "queue %s%s depth=%llu/%llu", pshm_queue_mode_name(st.queue_mode),
                 st.overwrite ? "(ow)" : "", (unsigned long long)st.depth,
                 (unsigned long long)st.slots);
    }
    return 1;
}

/* ------------------------------------------------------------ stat */

static const char *role_name(pshm_queue_role r, pshm_queue_mode m)
{
    if (r == PSHM_QUEUE_PRODUCER)
        return "producer";
    return m == PSHM_QUEUE_BROADCAST ? "subscriber" : "consumer";
}

static void stat_text(const char *name, const pshm_queue_info *st,
                      const pshm_queue_participant *p, size_t np)
{
    printf("name:              %s\n", name);
    printf("mode:              %s%s\n", pshm_queue_mode_name(st->queue_mode),
           st->queue_mode == PSHM_QUEUE_BROADCAST ? (st->overwrite ? " (overwrite: slow subscribers lose)"
                                                             : " (blocking: waits for the slowest)")
                                            : "");
    printf("state:             %s\n", st->shut_down ? "shut down (no more messages)" : "open");
    if (st->queue_mode == PSHM_QUEUE_SPSC)
        printf("depth:             %llu messages (%llu of %llu ring bytes)\n",
               (unsigned long long)st->depth, (unsigned long long)st->depth_bytes,
               (unsigned long long)st->ring_bytes);
    else
        printf("depth:             %llu of %llu messages\n", (unsigned long long)st->depth,
               (unsigned long long)st->slots);
    printf("max message:       %llu bytes\n", (unsigned long long)st->max_msg);
    if (st->queue_mode != PSHM_QUEUE_BROADCAST)
        printf("max deliveries:    %u\n", st->max_deliveries);
    printf("participants:      %u producers, %u %ss, %u dead (of %u slots)\n", st->producers,
           st->consumers, st->queue_mode == PSHM_QUEUE_BROADCAST ? "subscriber" : "consumer", st->dead,
           st->max_participants);
    for (size_t i = 0; i < np; i++)
        printf("  slot %-4u %-10s pid %ld (%s)  sent %llu  received %llu\n", p[i].index,
               role_name(p[i].role, st->queue_mode), p[i].pid, p[i].alive ? "alive" : "dead",
               (unsigned long long)p[i].sent, (unsigned long long)p[i].received);
    printf("messages:          %llu\n", (unsigned long long)st->messages);
    printf("bytes:             %llu\n", (unsigned long long)st->bytes);
    printf("received:          %llu\n", (unsigned long long)st->received);
    printf("waits on full:     %llu\n", (unsigned long long)st->waits_full);
    printf("waits on empty:    %llu\n", (unsigned long long)st->waits_empty);
    printf("drops:             %llu\n", (unsigned long long)st->drops);
    printf("lost reservations: %llu\n", (unsigned long long)st->lost_reservations);
    printf("redeliveries:      %llu\n", (unsigned long long)st->redeliveries);
    if (st->queue_mode == PSHM_QUEUE_BROADCAST)
        printf("overruns:          %llu\n", (unsigned long long)st->overruns);
}

static void stat_json(const char *name, const pshm_queue_info *st,
                      const pshm_queue_participant *p, size_t np)
{
    printf("{\"name\":");
    cli_json_string(stdout, name);
    printf(",\"mode\":\"%s\",\"overwrite\":%s,\"shut_down\":%s", pshm_queue_mode_name(st->queue_mode),
           st->overwrite ? "true" : "false", st->shut_down ? "true" : "false");
    printf(",\"ring_bytes\":%llu,\"slots\":%llu,\"max_msg\":%llu,\"depth\":%llu,\"depth_bytes\":%llu",
           (unsigned long long)st->ring_bytes, (unsigned long long)st->slots, (unsigned long long)st->max_msg,
           (unsigned long long)st->depth, (unsigned long long)st->depth_bytes);
    printf(",\"max_deliveries\":%u,\"max_participants\":%u,\"producers\":%u,\"consumers\":%u"
           ",\"dead\":%u",
           st->max_deliveries, st->max_participants, st->producers, st->consumers, st->dead);
    printf(",\"messages\":%llu,\"bytes\":%llu,\"received\":%llu,\"waits_full\":%llu"
           ",\"waits_empty\":%llu,\"drops\":%llu,\"lost_reservations\":%llu"
           ",\"redeliveries\":%llu,\"overruns\":%llu",
           (unsigned long long)st->messages, (unsigned long long)st->bytes,
           (unsigned long long)st->received, (unsigned long long)st->waits_full,
           (unsigned long long)st->waits_empty, (unsigned long long)st->drops,
           (unsigned long long)st->lost_reservations, (unsigned long long)st->redeliveries,
           (unsigned long long)st->overruns);
    printf(",\"participants\":[");
    for (size_t i = 0; i < np; i++)
        printf("%s{\"slot\":%u,\"role\":\"%s\",\"pid\":%ld,\"alive\":%s,\"sent\":%llu"
               ",\"received\":%llu}",
               i ? "," : "", p[i].index, role_name(p[i].role, st->queue_mode), p[i].pid,
               p[i].alive ? "true" : "false", (unsigned long long)p[i].sent,
               (unsigned long long)p[i].received);
    printf("]}\n");
}

static int q_stat(int argc, char **argv)
{
    const char *name = NULL;
    int json = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (!name && argv[i][0] != '-')
            name = argv[i];
        else
            return cli_usage("queue stat: unexpected argument '%s'", argv[i]);
    }
    if (!name)
        return cli_usage("queue stat: NAME expected");
    pshm_queue_info st;
    static pshm_queue_participant parts[MAX_SHOWN];
    size_t n = 0;
    pshm_queue_info_init(&st);
    pshm_queue_participant_init(&parts[0]);
    int r = pshm_queue_stat(name, &st);
    if (r == 0)
        r = pshm_queue_participants(name, parts, MAX_SHOWN, &n);
    if (r != 0)
        return cli_fail(name, r);
    if (n > MAX_SHOWN)
        n = MAX_SHOWN;
    if (json)
        stat_json(name, &st, parts, n);
    else
        stat_text(name, &st, parts, n);
    return CLI_OK;
}

/* ------------------------------------------------------------ create */

static int parse_mode(const char *s, pshm_queue_mode *m)
{
    if (strcmp(s, "spsc") == 0)
        *m = PSHM_QUEUE_SPSC;
    else if (strcmp(s, "mpmc") == 0)
        *m = PSHM_QUEUE_MPMC;
    else if (strcmp(s, "broadcast") == 0)
        *m = PSHM_QUEUE_BROADCAST;
    else
        return -1;
    return 0;
}

static int q_create(int argc, char **argv)
{
    pshm_queue_options o;
    const char *name = NULL;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long v;
        if (strcmp(a, "--overwrite") == 0) {
            o.overwrite = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc)
                return cli_usage("queue create: %s needs a value", a);
            const char *val = argv[++i];
            if (strcmp(a, "--mode") == 0) {
                if (parse_mode(val, &o.queue_mode) != 0)
                    return cli_usage("queue create: bad mode '%s' (spsc, mpmc, broadcast)", val);
                continue;
            }
            if (cli_parse_u64(val, 1, &v) != 0 || v == 0 || v > (1ULL << 40))
                return cli_usage("queue create: bad %s '%s'", a + 2, val);
            if (strcmp(a, "--ring-bytes") == 0)
                o.ring_bytes = (size_t)v;
            else if (strcmp(a, "--messages") == 0)
                o.messages = (size_t)v;
            else if (strcmp(a, "--max-msg") == 0)
                o.max_msg = (size_t)v;
            else if (strcmp(a, "--participants") == 0 && v <= PSHM_QUEUE_MAX_PARTICIPANTS)
                o.max_participants = (unsigned)v;
            else if (strcmp(a, "--max-deliveries") == 0 && v <= PSHM_QUEUE_MAX_DELIVERIES)
                o.max_deliveries = (unsigned)v;
            else
                return cli_usage("queue create: bad option '%s'", a);
            continue;
        }
        if (name)
            return cli_usage("queue create: unexpected argument '%s'", a);
        name = a;
    }
    if (!name)
        return cli_usage("queue create: NAME expected");
    if (o.overwrite && o.queue_mode != PSHM_QUEUE_BROADCAST)
        return cli_usage("queue create: --overwrite is for broadcast queues");
    pshm_queue *q = NULL;
    int r = pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &q);
    if (r != 0)
        return cli_fail(name, r);
    pshm_queue_close(q);
    return CLI_OK;
}

/* ------------------------------------------------------------ send / recv / close */

static int parse_timeout(const char *s, struct timespec *dl)
{
    unsigned long long ms;
    if (cli_parse_u64(s, 0, &ms) != 0 || ms > 86400000ULL)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, dl);
    dl->tv_sec += (time_t)(ms / 1000);
    dl->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl->tv_nsec >= 1000000000L) {
        dl->tv_sec++;
        dl->tv_nsec -= 1000000000L;
    }
    return 0;
}

static int q_send(int argc, char **argv)
{
    const char *name = NULL;
    struct timespec dl;
    int first = 0, timed = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0) {
            if (i + 1 >= argc || parse_timeout(argv[i + 1], &dl) != 0)
                return cli_usage("queue send: --timeout needs milliseconds");
            timed = 1;
            i++;
        } else if (!name) {
            name = argv[i];
        } else {
            first = i;
            break;
        }
    }
    if (!name || !first)
        return cli_usage("queue send: NAME MESSAGE... expected");
    pshm_queue_options o;
    pshm_queue *q = NULL;
    pshm_queue_options_init(&o);
    o.keep_open = 1; /* a passing producer does not end the stream */
    int r = pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &q);
    if (r != 0)
        return cli_fail(name, r);
    for (int i = first; i < argc && r == 0; i++) {
        size_t len = strlen(argv[i]);
        r = timed ? pshm_queue_timedsend(q, argv[i], len, &dl) : pshm_queue_send(q, argv[i], len);
    }
    pshm_queue_close(q);
    if (r == -ETIMEDOUT) {
        fprintf(stderr, "pshm: %s: still full at the timeout\n", name);
        return CLI_FAIL;
    }
    return r == 0 ? CLI_OK : cli_fail(name, r);
}

static void print_msg(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\')
            fputs("\\\\", stdout);
        else if (p[i] >= 0x20 && p[i] < 0x7f)
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
    putchar('\n');
}

static int q_recv(int argc, char **argv)
{
    const char *name = NULL;
    unsigned long long count = 1;
    struct timespec dl;
    int timed = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0) {
            if (i + 1 >= argc || parse_timeout(argv[i + 1], &dl) != 0)
                return cli_usage("queue recv: --timeout needs milliseconds");
            timed = 1;
            i++;
        } else if (strcmp(argv[i], "--count") == 0) {
            if (i + 1 >= argc || cli_parse_u64(argv[i + 1], 0, &count) != 0 || count == 0)
                return cli_usage("queue recv: --count needs a positive number");
            i++;
        } else if (!name && argv[i][0] != '-') {
            name = argv[i];
        } else {
            return cli_usage("queue recv: unexpected argument '%s'", argv[i]);
        }
    }
    if (!name)
        return cli_usage("queue recv: NAME expected");
    pshm_queue *q = NULL;
    int r = pshm_queue_open(name, PSHM_QUEUE_CONSUMER, NULL, &q);
    if (r != 0)
        return cli_fail(name, r);
    for (unsigned long long k = 0; k < count; k++) {
        const void *p;
        size_t n;
        r = timed ? pshm_queue_timedpeek(q, &p, &n, &dl) : pshm_queue_peek(q, &p, &n);
        if (r != 0)
            break;
        print_msg(p, n);
        r = pshm_queue_release(q);
        if (r != 0 && r != -PSHM_EOVERWRITTEN)
            break;
        r = 0;
    }
    fflush(stdout);
    pshm_queue_close(q);
    if (r == -ETIMEDOUT) {
        fprintf(stderr, "pshm: %s: no message before the timeout\n", name);
        return CLI_FAIL;
    }
    return r == 0 ? CLI_OK : cli_fail(name, r);
}

static int q_close(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage("queue close: NAME expected");
    pshm_queue *q = NULL;
    pshm_queue_options o;
    pshm_queue_options_init(&o);
    o.keep_open = 1;
    /* a consumer handle may be refused in SPSC (role taken): try both */
    int r = pshm_queue_open(argv[1], PSHM_QUEUE_CONSUMER, &o, &q);
    if (r == -PSHM_EROLE)
        r = pshm_queue_open(argv[1], PSHM_QUEUE_PRODUCER, &o, &q);
    if (r != 0)
        return cli_fail(argv[1], r);
    pshm_queue_shutdown(q);
    pshm_queue_close(q);
    return CLI_OK;
}

/* ------------------------------------------------------------ dispatch */

static void help_queue(FILE *o)
{
    fputs("usage: pshm queue stat [--json] NAME\n"
          "       pshm queue create NAME [--mode spsc|mpmc|broadcast] [--ring-bytes SIZE]\n"
          "                         [--messages N] [--max-msg SIZE] [--overwrite]\n"
          "                         [--participants N] [--max-deliveries N]\n"
          "       pshm queue send NAME [--timeout MS] MESSAGE...\n"
          "       pshm queue recv NAME [--count N] [--timeout MS]\n"
          "       pshm queue close NAME\n"
          "\n"
          "Zero-copy message queues (see pshm.h).\n"
          "  stat    mode, depth, ring size, participants (pid, role, alive) and\n"
          "          the counters: messages, bytes, waits on full and empty,\n"
          "          drops, lost reservations, redeliveries (and overruns)\n"
          "  create  a persistent queue: --ring-bytes of ring (default 1M)\n"
          "          or --messages of --max-msg bytes (default 4096)\n"
          "  send    each MESSAGE as one message (waits while full)\n"
          "  recv    print N messages, one a line (non-printable bytes as \\xNN);\n"
          "          waits while empty, up to --timeout\n"
          "  close   shut the queue down: consumers drain, then see the end\n"
          "Remove a queue with `pshm rm NAME`.\n",
          o);
}

static int cmd_queue(int argc, char **argv)
{
    static const cli_sub subs[] = {{"stat", q_stat},
                                   {"create", q_create},
                                   {"send", q_send},
                                   {"recv", q_recv},
                                   {"close", q_close}};
    return cli_dispatch("queue", "stat, create, send, recv or close expected", subs,
                        sizeof subs / sizeof *subs, argc, argv);
}

const cli_cmd cli_cmds_queue[] = {
    {"queue", "stat|create|send|recv|close ...", "zero-copy message queues", cmd_queue, help_queue},
    {NULL, NULL, NULL, NULL, NULL},
};
