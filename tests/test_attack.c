/* SPDX-License-Identifier: MIT */
/*
 * test_attack.c - the library against a peer that writes what it likes:
 * forged lifetime marks from a second, unprivileged user (made here with
 * useradd; skipped when not root), a peer that shrinks a block under its
 * users, and corruption of every header word of every object kind through
 * every opener, each attempt in a child with a deadline that must end in
 * success or an error code, never a signal or a wait past the deadline.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ another user */

#define OTHER_USER "pshmcli" /* the CLI tests' second user: one is enough */

static void other_user(uid_t *uid, gid_t *gid)
{
    struct passwd *pw;

    if (geteuid() != 0)
        th_skip("needs root to make a second, unprivileged user (useradd)");
    pw = getpwnam(OTHER_USER);
    if (!pw) {
        if (system("useradd --system --no-create-home --shell /usr/sbin/nologin " OTHER_USER
                   " >/dev/null 2>&1") != 0)
            th_skip("useradd " OTHER_USER " failed");
        pw = getpwnam(OTHER_USER);
        if (!pw)
            th_skip("useradd made no " OTHER_USER);
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
}

static void become(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        _exit(90);
}

static void shm_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "/dev/shm/%s", name);
}

/* As the other user: write `rec` as the user.pshm mark of `name`. Exit
 * 0 written, 77 user xattrs unsupported here, else a failure. */
static int forge_mark(const char *name, const char *rec, uid_t uid, gid_t gid)
{
    pid_t pid = fork();

    if (pid == 0) {
        char path[300];
        become(uid, gid);
        shm_path(name, path, sizeof path);
        int fd = open(path, O_RDWR);
        if (fd < 0)
            _exit(91);
        if (fsetxattr(fd, "user.pshm", rec, strlen(rec), 0) != 0)
            _exit(errno == EOPNOTSUPP ? 77 : 92);
        _exit(0);
    }
    return th_wait(pid, 10000);
}

/* A record pshm would write itself, for a process that is long dead. */
#define DEAD_AUTO "pshm1 auto 2147483646 1"
#define DEAD_OWNED "pshm1 owned 2147483646 1"

static size_t gc_removed(const char *pattern)
{
    size_t n = 0;
    (void)pshm_block_gc(pattern, 0, NULL, NULL, &n);
    return n;
}

TEST(forged_lifetime_mark_on_a_block_others_may_write_removes_nothing)
{
    uid_t uid;
    gid_t gid;
    char path[300];
    const char *recs[] = {DEAD_AUTO, DEAD_OWNED};

    other_user(&uid, &gid);
    for (int i = 0; i < 2; i++) {
        const char *name = th_name(i ? "forged_owned" : "forged_auto");
        pshm_block *b = NULL;
        pshm_block_info info;
        int removed = -1;

        CHECK_OK(pshm_block_create(name, 4096, NULL, &b)); /* root's, PERSIST */
        shm_path(name, path, sizeof path);
        CHECK_EQ(chmod(path, 0666), 0); /* others may write it, not remove it */
        CHECK_OK(pshm_block_close(b));
        int r = forge_mark(name, recs[i], uid, gid);
        if (r == 77) {
            pshm_unlink(name);
            th_skip("user xattrs on /dev/shm are not supported here: no mark to forge");
        }
        CHECK_EQ(r, 0);
        /* The owner's calls see a PERSIST block and never remove it. */
        pshm_block_info_init(&info);
        CHECK_OK(pshm_block_stat(name, &info));
        CHECK_EQ(info.lifetime, PSHM_PERSIST);
        CHECK_EQ(info.marked, 0);
        CHECK_OK(pshm_block_open(name, NULL, &b));
        CHECK_OK(pshm_block_close(b));
        CHECK(th_exists(name));
        CHECK_OK(pshm_block_collect(name, &removed));
        CHECK_EQ(removed, 0);
        CHECK_EQ(gc_removed(name), 0);
        CHECK(th_exists(name));
        CHECK_OK(pshm_unlink(name));
    }
}

TEST(auto_block_writable_by_others_keeps_its_lifetime)
{
    uid_t uid;
    gid_t gid;
    const char *name = th_name("shared_auto");
    pshm_block_options o;
    pshm_block_info info;
    pshm_block *b = NULL, *a = NULL;

    other_user(&uid, &gid);
    pshm_block_options_init(&o);
    o.lifetime = PSHM_AUTO;
    o.mode = 0666;
    mode_t old = umask(0);
    int r = pshm_block_create(name, 4096, &o, &b);
    umask(old);
    if (r == -PSHM_ENOMARK)
        th_skip("lifetimes cannot be recorded here");
    CHECK_OK(r);
    pshm_block_info_init(&info);
    CHECK_OK(pshm_block_fstat(b, &info));
    CHECK_EQ(info.mode, 01666); /* the owner's sticky bit vouches for the mark */
    CHECK_EQ(info.lifetime, PSHM_AUTO);
    /* An attacher is a holder: the creator's close leaves the block. */
    CHECK_OK(pshm_block_open(name, NULL, &a));
    CHECK_EQ(pshm_block_lifetime(a), PSHM_AUTO);
    CHECK_OK(pshm_block_close(b));
    CHECK(th_exists(name));
    /* The other user may rewrite the mark (it can write the block), but the
     * block stays AUTO, held, and its owner's. */
    CHECK_EQ(forge_mark(name, DEAD_AUTO, uid, gid), 0);
    CHECK_EQ(gc_removed(name), 0);
    CHECK(th_exists(name));
    CHECK_OK(pshm_block_close(a)); /* the last holder */
    CHECK(!th_exists(name));
}

TEST(forged_mark_on_a_private_block_is_refused_by_the_kernel)
{
    uid_t uid;
    gid_t gid;
    const char *name = th_name("private");
    pshm_block *b = NULL;

    other_user(&uid, &gid);
    CHECK_OK(pshm_block_create(name, 4096, NULL, &b)); /* 0600 */
    CHECK_EQ(forge_mark(name, DEAD_AUTO, uid, gid), 91);
    CHECK_OK(pshm_block_close(b));
    int removed = -1;
    CHECK_OK(pshm_block_collect(name, &removed));
    CHECK_EQ(removed, 0);
    CHECK_OK(pshm_unlink(name));
}
