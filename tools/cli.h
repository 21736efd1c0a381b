/* SPDX-License-Identifier: MIT */
/*
 * cli.h - how the pshm command line is put together. tools/pshm.c holds the
 * core commands (ls, info, create, write, rm, gc, dump, hold) and the
 * dispatcher; tools/util.c the helpers every command shares (arguments,
 * numbers, safe text, JSON, what kind an object is); each module adds its
 * own commands in tools/cmd_<module>.c by defining the weak symbols below,
 * so adding a module never edits the core.
 *
 * The CLI sits on the public library only (include/pshm.h): it never reaches
 * around it. Commands that read other people's objects (ls, info, dump,
 * list, array info, queue stat, sync info) use the library's stat functions
 * and pread: they never map such an object and never wait on its peers.
 */
#ifndef PSHM_CLI_H
#define PSHM_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pshm.h"

/* Exit codes, documented in `pshm --help`. */
enum {
    CLI_OK = 0,    /* success */
    CLI_FAIL = 1,  /* the operation failed (message on stderr) */
    CLI_USAGE = 2, /* bad command line */
};

/* The version of the JSON documents `--json` prints ("schema": 1). */
#define CLI_JSON_SCHEMA 1

typedef struct cli_cmd {
    const char *name;    /* e.g. "list" -> `pshm list ...` */
    const char *args;    /* e.g. "NAME [INDEX VALUE]" for the usage line */
    const char *summary; /* one line for `pshm --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    void (*help)(FILE *out);           /* the `pshm CMD --help` text */
} cli_cmd;

/* ------------------------------------------------------------ JSON */

/* A small JSON writer: it places the commas. Strings are written as strict
 * UTF-8 JSON whatever their bytes (see cli_json_str). */
typedef struct cli_json {
    FILE *o;
    int depth, after_key;
    int count[32]; /* members or elements written at each depth */
} cli_json;

void cj_init(cli_json *j, FILE *o);
void cj_open(cli_json *j, char bracket); /* '{' or '[' */
void cj_close(cli_json *j, char bracket);
void cj_key(cli_json *j, const char *key);
void cj_str(cli_json *j, const char *s);
void cj_strn(cli_json *j, const char *s, size_t n);
void cj_int(cli_json *j, long long v);
void cj_uint(cli_json *j, unsigned long long v);
void cj_bool(cli_json *j, int v);
void cj_null(cli_json *j);
void cj_raw(cli_json *j, const char *text); /* an already formed JSON value */
/* "key": value shorthands */
void cj_kstr(cli_json *j, const char *key, const char *s);
void cj_kint(cli_json *j, const char *key, long long v);
void cj_kuint(cli_json *j, const char *key, unsigned long long v);
void cj_kbool(cli_json *j, const char *key, int v);
/* A name: "key": its text, with invalid UTF-8 replaced by U+FFFD, and, only
 * if it had any, "key_hex": its bytes in hex, so scripts get them back. */
void cj_kname(cli_json *j, const char *key, const char *s);
/* {"schema": CLI_JSON_SCHEMA, ... : every document starts so. */
void cj_document(cli_json *j, FILE *o);

/* ------------------------------------------------------------ kinds */

/*
 * What an object holds, as `pshm ls` and `pshm info` show it. A module's
 * probe fills it and returns 1 if the object is of its kind (also when it
 * is one that is damaged: then text says so and details carry "error"), or
 * returns 0. Probes read only through the library's stat functions: they
 * never map, hold or wait for the object.
 */
typedef struct cli_kind {
    char kind[16];       /* "list", "array", "queue", "sync", "posix-sem", "raw" */
    char text[256];      /* one line: "list len=6", "queue spsc depth=2/1MiB" */
    char what[64];       /* for messages, when text is a state: "mutex", "queue (spsc)" */
    char *details;       /* a JSON object of the kind's fields (malloc'd; may be NULL) */
} cli_kind;

typedef int (*cli_probe_fn)(const pshm_block_info *info, cli_kind *out);

/* Each module defines these in tools/cmd_<module>.c (weak: optional).
 * The command tables end with an entry whose name is NULL. */
extern const cli_cmd cli_cmds_list[] __attribute__((weak));
extern const cli_cmd cli_cmds_array[] __attribute__((weak));
extern const cli_cmd cli_cmds_sync[] __attribute__((weak));
extern const cli_cmd cli_cmds_queue[] __attribute__((weak));
int cli_probe_list(const pshm_block_info *info, cli_kind *out) __attribute__((weak));
int cli_probe_array(const pshm_block_info *info, cli_kind *out) __attribute__((weak));
int cli_probe_sync(const pshm_block_info *info, cli_kind *out) __attribute__((weak));
int cli_probe_queue(const pshm_block_info *info, cli_kind *out) __attribute__((weak));

/* The kind of the object `in` describes ("?" if it is not readable by us).
 * Free with cli_kind_free. */
void cli_kind_of(const pshm_block_info *in, cli_kind *out);
void cli_kind_free(cli_kind *k);
/* A probe's details: cli_details_begin opens a JSON object in memory (write
 * its members with d.j); cli_details_end closes it into k->details. */
typedef struct cli_details {
    cli_json j;
    FILE *f;
    char *buf;
    size_t len;
} cli_details;
void cli_details_begin(cli_details *d);
void cli_details_end(cli_details *d, cli_kind *k);
/* The details of an object of the right kind that failed to parse. */
void cli_details_error(cli_kind *k, int code);

/* ------------------------------------------------------------ messages */

/* Print "pshm: NAME: message" for code to stderr (NAME made safe for a
 * terminal, see cli_safe; for -PSHM_EFTYPE the message says what NAME is:
 * a directory, a symbolic link, a FIFO, ...); returns CLI_FAIL. */
int cli_fail(const char *what, int code);
/* Print "pshm: NAME: " + printf text + "\n" to stderr; returns CLI_FAIL. */
int cli_failf(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "pshm: message" (printf-style) to stderr; returns CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A command that wanted an object of kind `want` ("a ShareableList", "an
 * array", "a queue", "a sync object") failed on NAME with code. If code says
 * the bytes are not of that kind, say what was found instead ("NAME: is an
 * array <f8 (3,), not a ShareableList"); otherwise as cli_fail.
 */
int cli_fail_kind(const char *name, int code, const char *want_kind, const char *want_text);

/* ------------------------------------------------------------ arguments */

/* A subcommand of a module's command: `pshm CMD SUB ...`. */
typedef struct cli_sub {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand */
} cli_sub;
/* Run the subcommand argv[1] of command `cmd` (argv[0]) from subs[0..n).
 * Without one: "CMD: <expected>" as a usage error; an unknown one is one too. */
int cli_dispatch(const char *cmd, const char *expected, const cli_sub *subs, size_t n, int argc,
                 char **argv);

/*
 * Walking a command's arguments. Every command takes "--" to end its
 * options: what follows is an operand even if it starts with '-' (a name
 * like "-x"). Before it, an argument starting with '-' is an option, except
 * "-" alone and negative numbers ("-1", "-2.5", "-inf"), which are operands.
 *
 *   cli_args a;
 *   cli_args_init(&a, "queue send", argc, argv);
 *   for (const char *s; (s = cli_next(&a));) {
 *       if (!a.opt) operand(s);
 *       else if (strcmp(s, "--timeout") == 0) { if (!(v = cli_value(&a))) return CLI_USAGE; }
 *       else return cli_unknown(&a);
 *   }
 */
typedef struct cli_args {
    const char *cmd; /* for messages: "queue send" */
    int argc, i;
    char **argv;
    int rest;        /* "--" seen: only operands follow */
    int opt;         /* the argument cli_next returned is an option */
    const char *cur; /* ... and its text */
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
const char *cli_next(cli_args *a);
/* The value of the current option (the next argument, whatever it looks
 * like). NULL, after a usage message, if there is none. */
const char *cli_value(cli_args *a);
/* "CMD: unknown option 'X'" as a usage error. */
int cli_unknown(cli_args *a);
/* "CMD: unexpected argument 'X'" as a usage error. */
int cli_extra(cli_args *a);
/* The arguments of `CMD [--json] NAME`: CLI_OK, or CLI_USAGE after a message. */
int cli_name_json(const char *cmd, int argc, char **argv, const char **name, int *json);
/* 1 if argv holds -h or --help before any "--". */
int cli_wants_help(int argc, char **argv);

/* ------------------------------------------------------------ numbers */

/*
 * Parse a size, offset or count: decimal or 0x hex; with allow_suffix also a
 * K, M, G or T suffix (powers of 1024; "KiB", "kb" and the like accepted),
 * and then a decimal fraction that still makes whole bytes ("1.5M"; "1.5"
 * or "0.1K" are refused). Returns 0, -EINVAL (not a number, or a fraction
 * of a byte) or -ERANGE (beyond 2^64 - 1).
 */
int cli_parse_u64(const char *s, int allow_suffix, unsigned long long *out);
/* Parse permission bits: octal 0 to 0777. Returns 0 or -EINVAL (with the
 * setuid, setgid or sticky bits, or anything else). */
int cli_parse_mode(const char *s, unsigned *out);
/* "Mode" usage message for cli_parse_mode failures. */
int cli_bad_mode(const char *cmd, const char *s);
/* 1024-based human size: "1MiB", "1.5KiB", "100B". */
void cli_human_size(uint64_t n, char *out, size_t cap);
/* Absolute deadline from a --timeout in milliseconds. 0 or -EINVAL. */
int cli_parse_timeout(const char *s, struct timespec *deadline);

/* ------------------------------------------------------------ text */

/*
 * A name or other untrusted text made safe for a terminal: valid UTF-8 that
 * prints is kept; a backslash becomes \\, tab, newline and return \t \n
 * \r, other control bytes and bytes that are not UTF-8 \xNN, invisible or
 * direction-changing code points (C1 controls, bidi overrides, zero-width
 * characters) \uNNNN. Written NUL-terminated to out (cut if cap is short);
 * returns its display width in terminal columns.
 */
int cli_safe(const char *s, char *out, size_t cap);
/* Display width of UTF-8 text already made safe. */
int cli_width(const char *s);
/* Print s and pad it with spaces to `width` columns (left-aligned). */
void cli_pad(FILE *o, const char *s, int width);
/* A user or group name for an id ("root"), or its number when unknown
 * (as it is: cli_safe it for a terminal). */
void cli_user(unsigned uid, char *out, size_t cap);
void cli_group(unsigned gid, char *out, size_t cap);

/* ------------------------------------------------------------ signals */

/* From cli_signals_hold on, SIGINT, SIGTERM and SIGHUP are held back (one
 * that comes early is neither lost nor fatal while we hold something);
 * cli_signals_wait sleeps until one has come, then restores the mask. */
void cli_signals_hold(void);
void cli_signals_wait(void);
/* 1 if SIGINT, SIGTERM or SIGHUP is pending (while held back). */
int cli_signal_pending(void);

/*
 * Commands that must use an object through a mapping (queue send and recv,
 * sync operations, list --set) call this with the object's name: if another
 * process shrinks the object under the mapping, the SIGBUS that follows is
 * reported as "NAME: the object was cut short by another process" with exit
 * status 1, instead of killing the command. Inspection never needs it: it
 * never maps.
 */
void cli_guard_mapping(const char *name);

/* ------------------------------------------------------------ files */

/*
 * Open the object `name` by its path (pshm_block_stat tells it) for pread
 * or pwrite, never following a link and never blocking on a FIFO; only
 * regular objects. Returns the descriptor or a negative code (-PSHM_EFTYPE
 * for what is not a shared-memory object). *size = its size.
 */
int cli_open_object(const char *name, int writable, uint64_t *size);
/* Read all of a descriptor (a file or stdin) into a malloc'd buffer, at
 * most max bytes (-EFBIG beyond). 0 or a negative code. */
int cli_read_all(int fd, size_t max, unsigned char **buf, size_t *len);
/* write(2) all of it, retrying on EINTR. 0 or -errno. */
int cli_write_all(int fd, const void *p, size_t n);

#endif
