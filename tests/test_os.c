/* SPDX-License-Identifier: MIT */
/* test_os.c - the platform layer's liveness bytes: the kernel as witness. */
#include "harness.h"
#include "os/os.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

HELPER(hold_byte)
{
    /* argv: name, slot; lock the slot's byte shared, say so, wait to die */
    pshm_block *b = NULL;
    if (pshm_block_open(argv[0], NULL, &b) != 0)
        return 10;
    if (pshm__os_lock_byte(pshm_block_fd(b), PSHM__LIVE_BASE + atoi(argv[1]), 'r', 0) != 0)
        return 11;
    __atomic_add_fetch((int *)pshm_block_data(b), 1, __ATOMIC_SEQ_CST);
    for (;;)
        pause();
}

static int one_ready(void *p) { return __atomic_load_n((int *)p, __ATOMIC_SEQ_CST) == 1; }

TEST(liveness_byte_dies_with_its_holder)
{
    const char *name = th_name("live");
    pshm_block *b = NULL;
    CHECK_OK(pshm_block_create(name, 4096, NULL, &b));
    int fd = pshm_block_fd(b);

    CHECK_EQ(pshm__os_query_byte(fd, PSHM__LIVE_BASE + 5), 0);
    pid_t p = th_spawn("hold_byte", name, "5", NULL);
    CHECK(th_until(one_ready, pshm_block_data(b), 10000));
    CHECK_EQ(pshm__os_query_byte(fd, PSHM__LIVE_BASE + 5), 1);
    CHECK_EQ(pshm__os_query_byte(fd, PSHM__LIVE_BASE + 4), 0);
    CHECK_EQ(pshm__os_query_byte(fd, PSHM__LIVE_BASE + 6), 0);
    CHECK_ERR(pshm__os_lock_byte(fd, PSHM__LIVE_BASE + 5, 'w', 0), -EAGAIN);
    CHECK_OK(pshm__os_lock_byte(fd, PSHM__LIVE_BASE + 5, 'r', 0)); /* shared with it */
    CHECK_OK(pshm__os_lock_byte(fd, PSHM__LIVE_BASE + 5, 'u', 0));
    kill(p, SIGKILL);
    CHECK_EQ(th_wait(p, 10000), 128 + SIGKILL);
    CHECK_EQ(pshm__os_query_byte(fd, PSHM__LIVE_BASE + 5), 0);
    CHECK_OK(pshm__os_lock_byte(fd, PSHM__LIVE_BASE + 5, 'w', 0));
    /* our own lock is not "another holder" */
    CHECK_EQ(pshm__os_query_byte(fd, PSHM__LIVE_BASE + 5), 0);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
}

TEST(each_handle_is_its_own_description)
{
    const char *name = th_name("desc");
    pshm_block *a = NULL, *b = NULL;
    CHECK_OK(pshm_block_create(name, 4096, NULL, &a));
    CHECK_OK(pshm_block_open(name, NULL, &b));
    CHECK_OK(pshm__os_lock_byte(pshm_block_fd(a), PSHM__LIVE_BASE, 'w', 0));
    CHECK_EQ(pshm__os_query_byte(pshm_block_fd(b), PSHM__LIVE_BASE), 1);
    CHECK_ERR(pshm__os_lock_byte(pshm_block_fd(b), PSHM__LIVE_BASE, 'r', 0), -EAGAIN);
    CHECK_OK(pshm_block_close(a)); /* closing the handle drops its locks */
    CHECK_EQ(pshm__os_query_byte(pshm_block_fd(b), PSHM__LIVE_BASE), 0);
    CHECK_OK(pshm_block_unlink(b));
    CHECK_OK(pshm_block_close(b));
}

static int wait_for_pipe(void *arg)
{
    int *fds = arg;
    char c;
    close(fds[1]);
    return read(fds[0], &c, 1) == 0 ? 0 : 1; /* until the test closes its end */
}

TEST(process_start_time_tells_reused_pids)
{
    uint64_t start = 0;
    CHECK_OK(pshm__os_proc_start(getpid(), &start));
    CHECK(start > 0);
    CHECK_EQ(pshm__os_proc_alive(getpid(), start), 1);
    CHECK_EQ(pshm__os_proc_alive(getpid(), start + 1), 0); /* same pid, other process */
    /* a child that lives until we let it go */
    int fds[2];
    CHECK_OK(pipe(fds));
    pid_t p = th_fork(wait_for_pipe, fds);
    close(fds[0]);
    uint64_t cs = 0;
    CHECK_OK(pshm__os_proc_start(p, &cs));
    CHECK(cs >= start); /* started after us */
    CHECK_EQ(pshm__os_proc_alive(p, cs), 1);
    CHECK_EQ(pshm__os_proc_alive(p, cs + 1), 0);
    close(fds[1]);
    CHECK_EQ(th_wait(p, 5000), 0);
    CHECK_EQ(pshm__os_proc_alive(p, cs), 0); /* reaped: gone */
    CHECK_ERR(pshm__os_proc_start(p, &cs), -ENOENT);
}
