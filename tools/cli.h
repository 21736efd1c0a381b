/* SPDX-License-Identifier: MIT */
/*
 * cli.h - how the pshm command line is put together. tools/pshm.c holds the
 * core commands (ls, info, create, rm, gc, dump, hold) and the dispatcher;
 * each module adds its own in tools/cmd_<module>.c by defining the weak
 * symbols below, so adding a module never edits the core.
 *
 * The CLI sits on the public library only (include/pshm.h): it never reaches
 * around it.
 */
#ifndef PSHM_CLI_H
#define PSHM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "pshm.h"

/* Exit codes, documented in `pshm --help`. */
enum {
    CLI_OK = 0,    /* success */
    CLI_FAIL = 1,  /* the operation failed (message on stderr) */
    CLI_USAGE = 2, /* bad command line */
};

typedef struct cli_cmd {
    const char *name;    /* e.g. "list" -> `pshm list ...` */
    const char *args;    /* e.g. "NAME [INDEX VALUE]" for the usage line */
    const char *summary; /* one line for `pshm --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    void (*help)(FILE *out);           /* the `pshm CMD --help` text */
} cli_cmd;

/*
 * A module's kind probe: if the object `info` describes is of this module's
 * kind, write a short description ("list len=6", "array <f8 (1000, 3)",
 * "mutex unlocked") to `out` and return 1; return 0 if it is not. It opens
 * the block itself (read-only) and must not trust its bytes.
 */
typedef int (*cli_probe_fn)(const pshm_block_info *info, char *out, size_t cap);

/* Each module defines these in tools/cmd_<module>.c (weak: optional).
 * The command tables end with an entry whose name is NULL. */
extern const cli_cmd cli_cmds_list[] __attribute__((weak));
extern const cli_cmd cli_cmds_array[] __attribute__((weak));
extern const cli_cmd cli_cmds_sync[] __attribute__((weak));
extern const cli_cmd cli_cmds_queue[] __attribute__((weak));
int cli_probe_list(const pshm_block_info *info, char *out, size_t cap) __attribute__((weak));
int cli_probe_array(const pshm_block_info *info, char *out, size_t cap) __attribute__((weak));
int cli_probe_sync(const pshm_block_info *info, char *out, size_t cap) __attribute__((weak));
int cli_probe_queue(const pshm_block_info *info, char *out, size_t cap) __attribute__((weak));

/* Print "pshm: WHAT: message" for code to stderr; returns CLI_FAIL. */
int cli_fail(const char *what, int code);
/* Print "pshm: message" (printf-style) to stderr; returns CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A subcommand of a module's command: `pshm CMD NAME ...`. */
typedef struct cli_sub {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand */
} cli_sub;
/* Run the subcommand argv[1] of command `cmd` (argv[0]) from subs[0..n).
 * Without one: "CMD: <expected>" as a usage error; an unknown one is one too. */
int cli_dispatch(const char *cmd, const char *expected, const cli_sub *subs, size_t n, int argc,
                 char **argv);
/* From cli_signals_hold on, SIGINT, SIGTERM and SIGHUP are held back (one
 * that comes early is neither lost nor fatal while we hold something);
 * cli_signals_wait sleeps until one has come, then restores the mask. */
void cli_signals_hold(void);
void cli_signals_wait(void);
/* 1 if argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* Parse a size/offset/index: decimal or 0x hex, with optional K/M/G (1024) suffix
 * when allow_suffix. Returns 0 or -EINVAL/-ERANGE. */
int cli_parse_u64(const char *s, int allow_suffix, unsigned long long *out);
/* Parse permission bits: octal, at most 07777. Returns 0 or -EINVAL. */
int cli_parse_mode(const char *s, unsigned *out);
/* Print s as a JSON string (with quotes) to out. */
void cli_json_string(FILE *out, const char *s);

#endif
