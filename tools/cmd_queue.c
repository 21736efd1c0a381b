/* SPDX-License-Identifier: MIT */
/*
 * cmd_queue.c - `pshm queue ...`: create, inspect, feed and drain queues
 * from the shell, and the KIND probe for `pshm ls` / `pshm info`.
 * Inspection goes through pshm_queue_stat, which reads the block with pread
 * and validates everything it reads; send, recv and close join the queue.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SHOWN 1024

static const char *role_name(pshm_queue_role r, pshm_queue_mode m)
{
    if (r == PSHM_QUEUE_PRODUCER)
        return "producer";
    return m == PSHM_QUEUE_BROADCAST ? "subscriber" : "consumer";
}

/* The queue's state as JSON members: the details of `pshm info --json` and
 * the body of `queue stat --json`. */
static void json_state(cli_json *j, const pshm_queue_info *st)
{
    cj_kstr(j, "mode", pshm_queue_mode_name(st->queue_mode));
    cj_kbool(j, "overwrite", st->overwrite);
    cj_kbool(j, "shut_down", st->shut_down);
    cj_kuint(j, "depth", st->depth);
    cj_kuint(j, "depth_bytes", st->depth_bytes);
    cj_kuint(j, "slots", st->slots);
    cj_kuint(j, "ring_bytes", st->ring_bytes);
    cj_kuint(j, "max_msg", st->max_msg);
    cj_kuint(j, "max_deliveries", st->max_deliveries);
    cj_kuint(j, "max_participants", st->max_participants);
    cj_kuint(j, "producers", st->producers);
    cj_kuint(j, "consumers", st->consumers);
    cj_kuint(j, "dead", st->dead);
}

static void json_counters(cli_json *j, const pshm_queue_info *st)
{
    cj_kuint(j, "messages", st->messages);
    cj_kuint(j, "bytes", st->bytes);
    cj_kuint(j, "received", st->received);
    cj_kuint(j, "waits_full", st->waits_full);
    cj_kuint(j, "waits_empty", st->waits_empty);
    cj_kuint(j, "drops", st->drops);
    cj_kuint(j, "lost_reservations", st->lost_reservations);
    cj_kuint(j, "redeliveries", st->redeliveries);
    cj_kuint(j, "overruns", st->overruns);
}

int cli_probe_queue(const pshm_block_info *info, cli_kind *out)
{
    pshm_queue_info st;
    cli_details d;

    if (info->size < 512)
        return 0; /* too small for a queue */
    pshm_queue_info_init(&st);
    int r = pshm_queue_stat(info->name, &st);
    if (r == -PSHM_EKIND || r == -ENOENT || r == -EACCES || r == -PSHM_EFTYPE || r == -ENOMEM)
        return 0;
    snprintf(out->kind, sizeof out->kind, "queue");
    if (r == -EAGAIN) {
        snprintf(out->text, sizeof out->text, "queue (initialising)");
        cli_details_error(out, r);
        return 1;
    }
    if (r != 0) {
        snprintf(out->text, sizeof out->text, "queue (%s)",
                 r == -PSHM_EVERSION ? "other version" : r == -PSHM_EABI ? "other ABI" : "corrupt");
        cli_details_error(out, r);
        return 1;
    }
    if (st.queue_mode == PSHM_QUEUE_SPSC) {
        char c[32];
        cli_human_size(st.ring_bytes, c, sizeof c);
        snprintf(out->text, sizeof out->text, "queue spsc depth=%llu/%s",
                 (unsigned long long)st.depth, c);
    } else {
        snprintf(out->text, sizeof out->text, "queue %s%s depth=%llu/%llu",
                 pshm_queue_mode_name(st.queue_mode), st.overwrite ? "(ow)" : "",
                 (unsigned long long)st.depth, (unsigned long long)st.slots);
    }
    snprintf(out->what, sizeof out->what, "queue (%s)", pshm_queue_mode_name(st.queue_mode));
    cli_details_begin(&d);
    json_state(&d.j, &st);
    cli_details_end(&d, out);
    return 1;
}

/* ------------------------------------------------------------ stat */

static void stat_text(const char *name, const pshm_queue_info *st,
                      const pshm_queue_participant *p, size_t np)
{
    char safe[4 * PSHM_PATH_MAX];

    cli_safe(name, safe, sizeof safe);
    printf("name:              %s\n", safe);
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
    cli_json j;

    cj_document(&j, stdout);
    cj_kname(&j, "name", name[0] == '/' ? name + 1 : name);
    cj_kstr(&j, "kind", "queue");
    json_state(&j, st);
    json_counters(&j, st);
    cj_key(&j, "participants");
    cj_open(&j, '[');
    for (size_t i = 0; i < np; i++) {
        cj_open(&j, '{');
        cj_kuint(&j, "slot", p[i].index);
        cj_kstr(&j, "role", role_name(p[i].role, st->queue_mode));
        cj_kint(&j, "pid", p[i].pid);
        cj_kbool(&j, "alive", p[i].alive);
        cj_kuint(&j, "sent", p[i].sent);
        cj_kuint(&j, "received", p[i].received);
        cj_close(&j, '}');
    }
    cj_close(&j, ']');
    cj_close(&j, '}');
    putchar('\n');
}

static int q_stat(int argc, char **argv)
{
    const char *name = NULL;
    int json = 0;
    int rc = cli_name_json("queue stat", argc, argv, &name, &json);

    if (rc != CLI_OK)
        return rc;
    pshm_queue_info st;
    static pshm_queue_participant parts[MAX_SHOWN];
    size_t n = 0;
    pshm_queue_info_init(&st);
    pshm_queue_participant_init(&parts[0]);
    int r = pshm_queue_stat(name, &st);
    if (r == 0)
        r = pshm_queue_participants(name, parts, MAX_SHOWN, &n);
    if (r != 0)
        return cli_fail_kind(name, r, "queue", "a queue");
    if (n > MAX_SHOWN)
        n = MAX_SHOWN;
    if (json)
        stat_json(name, &st, parts, n);
    else
        stat_text(name, &st, parts, n);
    return CLI_OK;
}

/* ------------------------------------------------------------ create */

static int parse_qmode(const char *s, pshm_queue_mode *m)
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

/* A numeric option of queue create: its value, within [min, max]. */
static int q_number(cli_args *a, int suffix, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    const char *v = cli_value(a);

    if (!v)
        return CLI_USAGE;
    if (cli_parse_u64(v, suffix, out) != 0 || *out < min || *out > max)
        return cli_usage("queue create: bad %s '%s': %s %llu to %llu", a->cur, v,
                         suffix ? "bytes, from" : "from", min, max);
    return CLI_OK;
}

static int q_create(int argc, char **argv)
{
    pshm_queue_options o;
    const char *name = NULL;
    unsigned long long v;
    cli_args a;
    int rc = CLI_OK;

    pshm_queue_options_init(&o);
    o.keep_open = 1;
    cli_args_init(&a, "queue create", argc, argv);
    for (const char *s; rc == CLI_OK && (s = cli_next(&a));) {
        if (!a.opt) {
            if (name)
                return cli_extra(&a);
            name = s;
        } else if (strcmp(s, "--overwrite") == 0) {
            o.overwrite = 1;
        } else if (strcmp(s, "--mode") == 0) {
            const char *m = cli_value(&a);
            if (!m)
                return CLI_USAGE;
            if (parse_qmode(m, &o.queue_mode) != 0)
                return cli_usage("queue create: bad mode '%s' (spsc, mpmc, broadcast)", m);
        } else if (strcmp(s, "--ring-bytes") == 0) {
            if ((rc = q_number(&a, 1, 1, 1ULL << 40, &v)) == CLI_OK)
                o.ring_bytes = (size_t)v;
        } else if (strcmp(s, "--messages") == 0) {
            if ((rc = q_number(&a, 1, 1, 1ULL << 40, &v)) == CLI_OK)
                o.messages = (size_t)v;
        } else if (strcmp(s, "--max-msg") == 0) {
            if ((rc = q_number(&a, 1, 1, 1ULL << 30, &v)) == CLI_OK)
                o.max_msg = (size_t)v;
        } else if (strcmp(s, "--participants") == 0) {
            /* a queue needs a producer's and a consumer's slot at least */
            if ((rc = q_number(&a, 0, 2, PSHM_QUEUE_MAX_PARTICIPANTS, &v)) == CLI_OK)
                o.max_participants = (unsigned)v;
        } else if (strcmp(s, "--max-deliveries") == 0) {
            if ((rc = q_number(&a, 0, 1, PSHM_QUEUE_MAX_DELIVERIES, &v)) == CLI_OK)
                o.max_deliveries = (unsigned)v;
        } else {
            return cli_unknown(&a);
        }
    }
    if (rc != CLI_OK)
        return rc;
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

/* Open name in role, or say why not (naming what it is if not a queue). */
static int q_open(const char *name, pshm_queue_role role, pshm_queue **q)
{
    pshm_queue_options o;

    pshm_queue_options_init(&o);
    o.keep_open = 1; /* a passing producer does not end the stream */
    cli_guard_mapping(name);
    int r = pshm_queue_open(name, role, &o, q);
    return r == 0 ? CLI_OK : cli_fail_kind(name, r, "queue", "a queue");
}

static int q_send(int argc, char **argv)
{
    const char *name = NULL;
    struct timespec dl;
    int timed = 0, from_stdin = 0, nmsg = 0;
    const char **msgs = calloc((size_t)argc, sizeof *msgs);
    cli_args a;
    int rc = CLI_OK;

    if (!msgs)
        return cli_fail("queue send", -ENOMEM);
    cli_args_init(&a, "queue send", argc, argv);
    for (const char *s; rc == CLI_OK && (s = cli_next(&a));) {
        if (!a.opt && !name) {
            name = s;
        } else if (!a.opt && strcmp(s, "-") == 0 && !a.rest) {
            from_stdin = 1;
        } else if (!a.opt) {
            msgs[nmsg++] = s;
        } else if (strcmp(s, "--stdin") == 0) {
            from_stdin = 1;
        } else if (strcmp(s, "--timeout") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                rc = CLI_USAGE;
            else if (cli_parse_timeout(v, &dl) != 0)
                rc = cli_usage("queue send: --timeout needs milliseconds");
            timed = 1;
        } else {
            rc = cli_unknown(&a);
        }
    }
    if (rc == CLI_OK && (!name || (!nmsg && !from_stdin)))
        rc = cli_usage("queue send: NAME and MESSAGE... (or --stdin) expected");
    if (rc == CLI_OK && nmsg && from_stdin)
        rc = cli_usage("queue send: MESSAGEs or --stdin, not both");
    unsigned char *in = NULL;
    size_t inlen = 0;
    if (rc == CLI_OK && from_stdin) {
        /* one message: all of standard input, bytes as they are */
        int r = cli_read_all(STDIN_FILENO, (size_t)1 << 30, &in, &inlen);
        if (r != 0)
            rc = cli_fail("stdin", r == -EFBIG ? -PSHM_ETOOBIG : r);
    }
    pshm_queue *q = NULL;
    if (rc == CLI_OK)
        rc = q_open(name, PSHM_QUEUE_PRODUCER, &q);
    if (rc != CLI_OK) {
        free(in);
        free(msgs);
        return rc;
    }
    int r = 0;
    for (int i = 0; i < (from_stdin ? 1 : nmsg) && r == 0; i++) {
        const void *p = from_stdin ? (const void *)in : msgs[i];
        size_t len = from_stdin ? inlen : strlen(msgs[i]);
        r = timed ? pshm_queue_timedsend(q, p, len, &dl) : pshm_queue_send(q, p, len);
    }
    pshm_queue_close(q);
    free(in);
    free(msgs);
    if (r == -ETIMEDOUT)
        return cli_failf(name, "timed out: the queue is still full");
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
    int timed = 0, raw = 0;
    cli_args a;

    cli_args_init(&a, "queue recv", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (!a.opt && !name) {
            name = s;
        } else if (!a.opt) {
            return cli_extra(&a);
        } else if (strcmp(s, "--raw") == 0) {
            raw = 1;
        } else if (strcmp(s, "--timeout") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                return CLI_USAGE;
            if (cli_parse_timeout(v, &dl) != 0)
                return cli_usage("queue recv: --timeout needs milliseconds");
            timed = 1;
        } else if (strcmp(s, "--count") == 0) {
            const char *v = cli_value(&a);
            if (!v)
                return CLI_USAGE;
            if (cli_parse_u64(v, 0, &count) != 0 || count == 0)
                return cli_usage("queue recv: --count needs a positive number");
        } else {
            return cli_unknown(&a);
        }
    }
    if (!name)
        return cli_usage("queue recv: NAME expected");
    pshm_queue *q = NULL;
    int r = q_open(name, PSHM_QUEUE_CONSUMER, &q);
    if (r != CLI_OK)
        return r;
    for (unsigned long long k = 0; k < count; k++) {
        const void *p;
        size_t n;
        r = timed ? pshm_queue_timedpeek(q, &p, &n, &dl) : pshm_queue_peek(q, &p, &n);
        if (r != 0)
            break;
        if (raw) {
            fflush(stdout);
            r = cli_write_all(STDOUT_FILENO, p, n);
        } else {
            print_msg(p, n);
        }
        if (r != 0) {
            pshm_queue_close(q); /* not consumed: the message stays for the next consumer */
            return cli_fail("stdout", r);
        }
        r = pshm_queue_release(q);
        if (r != 0 && r != -PSHM_EOVERWRITTEN)
            break;
        r = 0;
    }
    fflush(stdout);
    pshm_queue_close(q);
    if (r == -ETIMEDOUT)
        return cli_failf(name, "timed out: no message came");
    return r == 0 ? CLI_OK : cli_fail(name, r);
}

static int q_close(int argc, char **argv)
{
    const char *name = NULL;
    cli_args a;

    cli_args_init(&a, "queue close", argc, argv);
    for (const char *s; (s = cli_next(&a));) {
        if (a.opt)
            return cli_unknown(&a);
        if (name)
            return cli_extra(&a);
        name = s;
    }
    if (!name)
        return cli_usage("queue close: NAME expected");
    pshm_queue *q = NULL;
    pshm_queue_options o;
    pshm_queue_options_init(&o);
    o.keep_open = 1;
    cli_guard_mapping(name);
    /* a consumer handle may be refused in SPSC (role taken): try both */
    int r = pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &q);
    if (r == -PSHM_EROLE)
        r = pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &q);
    if (r != 0)
        return cli_fail_kind(name, r, "queue", "a queue");
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
          "       pshm queue send NAME [--timeout MS] --stdin   (or -)\n"
          "       pshm queue recv NAME [--count N] [--timeout MS] [--raw]\n"
          "       pshm queue close NAME\n"
          "\n"
          "Zero-copy message queues (see pshm.h).\n"
          "  stat    mode, depth, ring size, participants (pid, role, alive) and\n"
          "          the counters: messages, bytes, waits on full and empty,\n"
          "          drops, lost reservations, redeliveries (and overruns);\n"
          "          read without joining the queue or waiting for anyone\n"
          "  create  a persistent queue: --ring-bytes of ring (default 1M)\n"
          "          or --messages of --max-msg bytes (default 4096);\n"
          "          --participants 2 to 1024 slots (default 64),\n"
          "          --max-deliveries 1 to 31 (default 3)\n"
          "  send    each MESSAGE as one message; with --stdin (or -), all of\n"
          "          standard input as one message, bytes as they are (waits\n"
          "          while full)\n"
          "  recv    print N messages, one a line (non-printable bytes as \\xNN);\n"
          "          --raw writes their bytes to standard output as they are,\n"
          "          with nothing between them; waits while empty, up to --timeout\n"
          "  close   shut the queue down: consumers drain, then see the end\n"
          "Remove a queue with `pshm rm NAME`. A wait that ends at --timeout\n"
          "fails with 'timed out' (exit status 1).\n",
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
