/* SPDX-License-Identifier: MIT */
/*
 * liveness.c - see liveness.h. /proc/TID/stat answers for any task, process
 * or thread, even one /proc does not list (threads), and gives both the state
 * (a zombie has died: it holds nothing any more) and the start time.
 */
#include "liveness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static uint64_t g_self;             /* atomic: this process's identity, 0 = not yet known */
/* This thread's identity, 0 = not yet known. Initial-exec TLS: one load, no
 * call (it costs a little static TLS space if the library is dlopen()ed). */
__thread uint64_t pshm__tl_self __attribute__((tls_model("initial-exec")));

/* A forked child is a new process with a new main thread: forget both. */
static void forget_in_child(void)
{
    __atomic_store_n(&g_self, 0, __ATOMIC_RELAXED);
    pshm__tl_self = 0;
}

__attribute__((constructor)) static void liveness_init(void)
{
    (void)pthread_atfork(NULL, NULL, forget_in_child);
}

#if defined(__linux__) && !defined(PSHM_FORCE_POSIX)

#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>

/* State (field 3) and start time (field 22) of /proc/<path>/stat. */
static int read_stat(const char *path, char *state, uint64_t *start)
{
    char buf[1024];
    ssize_t n;
    int fd;

    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno == ESRCH ? -ENOENT : -errno;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return errno == ESRCH ? -ENOENT : -EIO;
    if (n == 0)
        return -ENOENT; /* the task went away between open and read */
    buf[n] = 0;
    /* The command name may hold spaces and ')': fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return -EIO;
    *state = p[2];
    p += 2; /* at field 3 */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -EIO;
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno || end == p)
        return -EIO;
    *start = v;
    return 0;
}

static uint64_t make_id(uint32_t pid, const char *path)
{
    char state;
    uint64_t start = 0;

    if (read_stat(path, &state, &start) != 0)
        start = 0; /* /proc unavailable: the pid alone, checked with kill() */
    return ((uint64_t)pid << 32) | (uint32_t)start;
}

uint64_t pshm__self_process(void)
{
    uint64_t id = __atomic_load_n(&g_self, __ATOMIC_RELAXED);

    if (id == 0) {
        id = make_id((uint32_t)getpid(), "/proc/self/stat");
        __atomic_store_n(&g_self, id, __ATOMIC_RELAXED);
    }
    return id;
}

uint64_t pshm__self_thread_slow(void)
{
    if (pshm__tl_self == 0)
        pshm__tl_self = make_id((uint32_t)syscall(SYS_gettid), "/proc/thread-self/stat");
    return pshm__tl_self;
}

int pshm__id_alive(uint64_t id)
{
    char path[64], state;
    uint64_t start;
    uint32_t pid = PSHM__ID_PID(id);
    int r;

    if (pid == 0 || pid > INT32_MAX)
        return 0;
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    r = read_stat(path, &state, &start);
    if (r == -ENOENT) {
        /* Gone - or hidden from us (hidepid=). kill() sees through that. */
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
            return -EACCES;
        return 0;
    }
    if (r != 0)
        return r;
    if (state == 'Z' || state == 'X')
        return 0;
    if (PSHM__ID_START(id) != 0 && (uint32_t)start != PSHM__ID_START(id))
        return 0; /* the pid now names another task */
    return 1;
}

int pshm__id_mine(uint64_t id)
{
    char path[64], state;
    uint64_t start;
    uint32_t tid = PSHM__ID_PID(id);

    if (tid == 0 || tid > INT32_MAX)
        return 0;
    snprintf(path, sizeof path, "/proc/self/task/%u/stat", tid);
    if (read_stat(path, &state, &start) != 0)
        return 0;
    return state != 'Z' && state != 'X' &&
           (PSHM__ID_START(id) == 0 || (uint32_t)start == PSHM__ID_START(id));
}

long pshm__id_tgid(uint64_t id)
{
    char path[64], buf[512];
    uint32_t tid = PSHM__ID_PID(id);
    ssize_t n;
    int fd;

    if (tid == 0 || tid > INT32_MAX)
        return 0;
    snprintf(path, sizeof path, "/proc/%u/status", tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strstr(buf, "\nTgid:");
    if (!p)
        return 0;
    return strtol(p + 6, NULL, 10);
}

#else /* portable fallback */

uint64_t pshm__self_process(void)
{
    uint64_t id = __atomic_load_n(&g_self, __ATOMIC_RELAXED);

    if (id == 0) {
        id = (uint64_t)(uint32_t)getpid() << 32;
        __atomic_store_n(&g_self, id, __ATOMIC_RELAXED);
    }
    return id;
}

uint64_t pshm__self_thread_slow(void)
{
    /* No portable thread id that other processes can check: the process id,
     * and a number unique to the thread within it where the start time
     * would be (liveness is only ever asked of the pid here). */
    static uint32_t next;
    if (pshm__tl_self == 0)
        pshm__tl_self = pshm__self_process() | (__atomic_add_fetch(&next, 1, __ATOMIC_RELAXED) & 0x7fffffffu);
    return pshm__tl_self;
}

int pshm__id_alive(uint64_t id)
{
    uint32_t pid = PSHM__ID_PID(id);

    if (pid == 0 || pid > INT32_MAX)
        return 0;
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
        return 1;
    return errno == ESRCH ? 0 : -errno;
}

int pshm__id_mine(uint64_t id)
{
    return PSHM__ID_PID(id) == (uint32_t)getpid();
}

long pshm__id_tgid(uint64_t id)
{
    return (long)PSHM__ID_PID(id);
}

#endif
