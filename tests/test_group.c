// SPDX-License-Identifier: MIT
/*
 * test_group.c - PSHM_GROUP: a block lives until unlinked or until the
 * program (the process that joined first and every process started from
 * it) ends, SIGKILL included; a member that creates a block and exits does
 * not take it along; the group's watcher removes only what still is the
 * object registered.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

static pshm_block_options group_opts(void)
{
    pshm_block_options o;

    pshm_block_options_init(&o);
    o.lifetime = PSHM_GROUP;
    return o;
}

static int gone(void *name) { return !th_exists((const char *)name); }

/* what a forked "program" reports back to the test */
typedef struct report {
    int ready;
    char group[PSHM_NAME_MAX + 1];
} report;

static int make_block(const char *name)
{
    pshm_block_options o = group_opts();
    pshm_block *b;
    int r = pshm_block_create(name, 4096, &o, &b);

    if (r != 0)
        return r;
    CHECK_EQ(pshm_block_lifetime(b), PSHM_GROUP);
    ((char *)pshm_block_data(b))[0] = 42;
    return pshm_block_close(b); /* close keeps a GROUP block */
}

static const char *g_name1, *g_name2;
static report *g_rep;

static int program_creates_then_waits(void *arg)
{
    (void)arg;
    unsetenv(PSHM_GROUP_ENV);
    if (make_block(g_name1) != 0)
        return 1;
    if (pshm_group_id(g_rep->group, sizeof g_rep->group, NULL) != 0)
        return 2;
    ASTORE(&g_rep->ready, 1);
    for (;;)
        pause();
}

TEST(block_outlives_close_and_goes_when_the_program_is_killed)
{
    pid_t p;

    g_name1 = th_name("g1");
    g_rep = th_shared(sizeof *g_rep);
    p = th_fork(program_creates_then_waits, NULL);
    while (!ALOAD(&g_rep->ready))
        th_sleep_ms(2);
    CHECK(th_exists(g_name1));
    CHECK(th_exists(g_rep->group));
    {
        pshm_block *b;
        CHECK_OK(pshm_block_open(g_name1, NULL, &b)); /* attach: no effect on lifetime */
        CHECK_EQ(((char *)pshm_block_data(b))[0], 42);
        CHECK_EQ(pshm_block_lifetime(b), PSHM_PERSIST); /* recorded as persist */
        CHECK_OK(pshm_block_close(b));
    }
    th_sleep_ms(100);
    CHECK(th_exists(g_name1)); /* nobody died: it stays */
    kill(p, SIGKILL);
    CHECK_EQ(th_wait(p, 10000), 128 + SIGKILL);
    CHECK(th_until(gone, (void *)g_name1, 5000));
    CHECK(th_until(gone, g_rep->group, 5000)); /* and the anchor */
}

static int member_creates_and_exits(void *arg)
{
    int how = *(int *)arg;

    if (make_block(g_name2) != 0)
        return 1;
    if (how == SIGKILL)
        raise(SIGKILL);
    return 0;
}

static int program_with_a_child(void *arg)
{
    pid_t c;
    int st;

    unsetenv(PSHM_GROUP_ENV);
    if (pshm_group_join(NULL) != 0)
        return 1;
    if (pshm_group_id(g_rep->group, sizeof g_rep->group, NULL) != 0)
        return 2;
    c = th_fork(member_creates_and_exits, arg); /* a member by inheritance */
    st = th_wait(c, 10000);
    if (st != 0 && st != 128 + SIGKILL)
        return 3;
    ASTORE(&g_rep->ready, 1);
    for (;;)
        pause();
}

static void child_creator_leaves(int how)
{
    pid_t p;

    g_name2 = th_name("g2");
    g_rep = th_shared(sizeof *g_rep);
    p = th_fork(program_with_a_child, &how);
    while (!ALOAD(&g_rep->ready))
        th_sleep_ms(2);
    th_sleep_ms(200); /* the watcher acts within milliseconds: give it time to err */
    CHECK(th_exists(g_name2));
    kill(p, SIGTERM);
    CHECK_EQ(th_wait(p, 10000), 128 + SIGTERM);
    CHECK(th_until(gone, (void *)g_name2, 5000));
    CHECK(th_until(gone, g_rep->group, 5000));
}

TEST(a_child_that_creates_and_exits_does_not_take_the_block)
{
    child_creator_leaves(0);
}

TEST(a_child_that_creates_and_is_killed_does_not_take_the_block)
{
    child_creator_leaves(SIGKILL);
}

HELPER(exec_member)
{
    /* argv[0]: the block to create; the group comes from the environment */
    const char *env = getenv(PSHM_GROUP_ENV);
    char id[PSHM_NAME_MAX + 1];

    if (!env || make_block(argv[0]) != 0)
        return 1;
    if (pshm_group_id(id, sizeof id, NULL) != 0 || strcmp(id, env) != 0)
        return 2; /* joined another group than the parent's */
    return 0;
}

static int program_execs_a_member(void *arg)
{
    pid_t c;

    (void)arg;
    unsetenv(PSHM_GROUP_ENV);
    if (pshm_group_join(NULL) != 0)
        return 1;
    if (pshm_group_id(g_rep->group, sizeof g_rep->group, NULL) != 0)
        return 2;
    c = th_spawn("exec_member", g_name1, (char *)NULL); /* exec: rejoins through PSHM_GROUP */
    if (th_wait(c, 10000) != 0)
        return 3;
    ASTORE(&g_rep->ready, 1);
    for (;;)
        pause();
}

TEST(an_exec_child_joins_through_the_environment)
{
    pid_t p;

    g_name1 = th_name("g3");
    g_rep = th_shared(sizeof *g_rep);
    p = th_fork(program_execs_a_member, NULL);
    while (!ALOAD(&g_rep->ready))
        th_sleep_ms(2);
    th_sleep_ms(200);
    CHECK(th_exists(g_name1)); /* the exec'd creator exited; the program lives */
    kill(p, SIGKILL);
    CHECK_EQ(th_wait(p, 10000), 128 + SIGKILL);
    CHECK(th_until(gone, (void *)g_name1, 5000));
}

static int program_unlinks_and_reuses(void *arg)
{
    pshm_block_options o = group_opts();
    pshm_block *b;

    (void)arg;
    unsetenv(PSHM_GROUP_ENV);
    if (pshm_block_create(g_name1, 4096, &o, &b) != 0)
        return 1;
    if (pshm_block_unlink(b) != 0 || pshm_block_close(b) != 0)
        return 2;
    /* the same name, now a PERSIST block: not the group's to remove */
    if (pshm_block_create(g_name1, 4096, NULL, &b) != 0)
        return 3;
    pshm_block_close(b);
    if (pshm_group_id(g_rep->group, sizeof g_rep->group, NULL) != 0)
        return 4;
    return 0;
}

TEST(the_watcher_removes_only_the_object_it_registered)
{
    pid_t p;

    g_name1 = th_name("g4");
    g_rep = th_shared(sizeof *g_rep);
    p = th_fork(program_unlinks_and_reuses, NULL);
    CHECK_EQ(th_wait(p, 10000), 0);
    CHECK(th_until(gone, g_rep->group, 5000)); /* the group has ended and was reaped */
    CHECK(th_exists(g_name1));
    CHECK_OK(pshm_unlink(g_name1));
}

TEST(options_names_and_ids)
{
    pshm_block_options o = group_opts();
    pshm_block *b;
    char id[PSHM_NAME_MAX + 1], small[8];
    size_t len;

    unsetenv(PSHM_GROUP_ENV);
    CHECK_STR(pshm_lifetime_name(PSHM_GROUP), "group");
    CHECK_ERR(pshm_group_id(id, sizeof id, NULL), -ENOENT); /* not a member yet */
    o.watch = 1;
    CHECK_ERR(pshm_block_create(th_name("g5"), 4096, &o, &b), -EINVAL);
    CHECK(b == NULL);
    CHECK(!th_exists(th_name("g5")));
    CHECK_ERR(pshm_group_join("not_a_group"), -EINVAL);
    CHECK_OK(pshm_group_join(NULL));
    CHECK_OK(pshm_group_id(id, sizeof id, &len));
    CHECK_EQ(len, strlen(id));
    CHECK(strncmp(id, "pshm_group_", 11) == 0);
    CHECK_STR(getenv(PSHM_GROUP_ENV), id);
    CHECK_ERR(pshm_group_id(small, sizeof small, &len), -ERANGE);
    CHECK_OK(pshm_group_id(NULL, 0, &len));
    CHECK_OK(pshm_group_join(NULL)); /* already a member: nothing changes */
    CHECK_OK(pshm_group_id(small, sizeof small, NULL) == -ERANGE ? 0 : -1);
    CHECK_OK(pshm_group_id(id + 1, sizeof id - 1, NULL));
    CHECK_STR(id + 1, getenv(PSHM_GROUP_ENV));
}

static int program_joins_and_exits(void *arg)
{
    (void)arg;
    unsetenv(PSHM_GROUP_ENV);
    if (pshm_group_join(NULL) != 0)
        return 1;
    return pshm_group_id(g_rep->group, sizeof g_rep->group, NULL) != 0;
}

TEST(an_ended_group_is_not_rejoined)
{
    char id[PSHM_NAME_MAX + 1];
    pid_t p;

    g_rep = th_shared(sizeof *g_rep);
    p = th_fork(program_joins_and_exits, NULL);
    CHECK_EQ(th_wait(p, 10000), 0);
    CHECK(th_until(gone, g_rep->group, 5000));
    /* its id is stale: joining it makes a new group instead */
    CHECK_OK(pshm_group_join(g_rep->group));
    CHECK_OK(pshm_group_id(id, sizeof id, NULL));
    CHECK(strcmp(id, g_rep->group) != 0);
}

/* The pid of the process (other than `not`) that has `name` open: the
 * group's watcher, once its members are gone. 0 if none. */
static pid_t opener_of(const char *name, pid_t not)
{
    char want[PSHM_PATH_MAX + 16], link[PSHM_PATH_MAX + 64], path[64];
    DIR *proc = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;

    snprintf(want, sizeof want, "/dev/shm/%s", name);
    while (proc && !found && (e = readdir(proc))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        DIR *fds;
        struct dirent *f;

        if (pid <= 0 || pid == not)
            continue;
        snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
        fds = opendir(path);
        while (fds && !found && (f = readdir(fds))) {
            char fp[64 + 256 + 2];
            ssize_t n;

            snprintf(fp, sizeof fp, "%s/%s", path, f->d_name);
            n = readlink(fp, link, sizeof link - 1);
            if (n > 0) {
                link[n] = 0;
                if (strcmp(link, want) == 0)
                    found = pid;
            }
        }
        if (fds)
            closedir(fds);
    }
    if (proc)
        closedir(proc);
    return found;
}

TEST(a_group_whose_watcher_was_killed_is_reaped_by_the_next_group)
{
    pid_t p, w;

    /* Ours alone: any group made on the machine meanwhile (another test
     * run's) would reap this ended group before our own join does. */
    th_private_shm("size=64m");
    g_name1 = th_name("g6");
    g_rep = th_shared(sizeof *g_rep);
    p = th_fork(program_creates_then_waits, NULL);
    while (!ALOAD(&g_rep->ready))
        th_sleep_ms(2);
    w = opener_of(g_rep->group, p);
    CHECK(w > 0);
    kill(w, SIGKILL); /* the watcher dies first: nobody will reap */
    kill(p, SIGKILL);
    CHECK_EQ(th_wait(p, 10000), 128 + SIGKILL);
    th_sleep_ms(200);
    CHECK(th_exists(g_name1));
    CHECK(th_exists(g_rep->group));
    unsetenv(PSHM_GROUP_ENV);
    CHECK_OK(pshm_group_join(NULL)); /* a new group reaps the ended one */
    CHECK(!th_exists(g_name1));
    CHECK(!th_exists(g_rep->group));
}
