/* SPDX-License-Identifier: MIT */
/* test_harness.c - the harness keeps its promises: a skip is never a pass,
 * a mistyped test name fails, and a seed gives each storm worker the same
 * random numbers whatever its pid. */
#include "harness.h"

#include <errno.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run another test binary with args (NULL-terminated), as an unprivileged
 * user if we are root; its exit code and up to cap bytes of its stdout. */
static int run_bin(const char *bin, char *out, size_t cap, const char *const *args)
{
    char path[4096];
    const char *argv[16];
    int fds[2], n = 0, st;

    snprintf(path, sizeof path, "%s/tests/%s", th_bindir(), bin);
    argv[n++] = path;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    CHECK_OK(pipe(fds));
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
            _exit(126);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(fds[0], out + got, cap - 1 - got)) > 0 && got < cap - 1)
        got += (size_t)r;
    out[got] = 0;
    close(fds[0]);
    CHECK(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* test_block's full_shm_is_enospc_at_create needs a private mount
 * namespace: an unprivileged user is refused one, so there it skips. */
TEST(a_skip_is_never_a_pass_and_unknown_names_fail)
{
    char out[8192];

    int code = run_bin("test_block", out, sizeof out,
                       (const char *[]){"full_shm_is_enospc_at_create", NULL});
    if (code != 77 || !strstr(out, "skip full_shm_is_enospc_at_create") ||
        !strstr(out, "0 passed, 0 failed, 1 skipped"))
        th_fail(__FILE__, __LINE__, "a run that only skipped: exit %d, output:\n%s", code, out);
    /* a pass and a skip: the run passes, and says what it skipped */
    code = run_bin("test_block", out, sizeof out,
                   (const char *[]){"create_open_close_unlink", "full_shm_is_enospc_at_create", NULL});
    if (code != 0 || !strstr(out, "1 passed, 0 failed, 1 skipped: full_shm_is_enospc_at_create"))
        th_fail(__FILE__, __LINE__, "a pass and a skip: exit %d, output:\n%s", code, out);
    /* a mistyped name runs nothing and fails */
    code = run_bin("test_block", out, sizeof out, (const char *[]){"create_open_close_unlnk", NULL});
    CHECK_EQ(code, 2);
    CHECK(strstr(out, "passed") == NULL);
    code = run_bin("test_block", out, sizeof out, (const char *[]){"--lsit", NULL});
    CHECK_EQ(code, 2);
    /* --list: one "name timeout" line per test */
    code = run_bin("test_block", out, sizeof out, (const char *[]){"--list", NULL});
    CHECK_EQ(code, 0);
    CHECK(strstr(out, "\nfull_shm_is_enospc_at_create 30\n") != NULL);
}

typedef struct draws {
    uint32_t v[3][8];
} draws;

static draws *DR;
static int draw_as(void *arg)
{
    int slot = (int)(intptr_t)arg;
    th_rnd_worker(slot == 2 ? 6 : 5); /* children 0 and 1: the same worker, 5 */
    for (int i = 0; i < 8; i++)
        DR->v[slot][i] = th_rnd();
    return 0;
}

/* PSHM_SEED=n: worker w draws the same numbers in any process, at any time;
 * another worker draws others. */
TEST(a_seed_replays_each_worker_s_numbers)
{
    DR = th_shared(sizeof *DR);
    CHECK_OK(setenv("PSHM_SEED", "12345", 1));
    th_rnd_seed("harness");
    CHECK_EQ(th_rnd_seed_value(), 12345);
    CHECK_EQ(th_wait(th_fork(draw_as, (void *)0), 5000), 0);
    th_rnd(); /* the parent's own stream moving on changes nothing */
    CHECK_EQ(th_wait(th_fork(draw_as, (void *)1), 5000), 0);
    CHECK_EQ(th_wait(th_fork(draw_as, (void *)2), 5000), 0);
    CHECK(memcmp(DR->v[0], DR->v[1], sizeof DR->v[0]) == 0);
    CHECK(memcmp(DR->v[0], DR->v[2], sizeof DR->v[0]) != 0);
    /* another seed, another stream for the same worker */
    uint32_t first = DR->v[0][0];
    CHECK_OK(setenv("PSHM_SEED", "12346", 1));
    th_rnd_seed("harness");
    CHECK_EQ(th_wait(th_fork(draw_as, (void *)0), 5000), 0);
    CHECK(DR->v[0][0] != first);
}
