/* SPDX-License-Identifier: MIT */
/*
 * peer_iceoryx.c - iceoryx v2 (its C binding) as a bench_queue transport,
 * and the RouDi daemon it needs, started and stopped by the bench.
 *
 * Each side of a cell is a fresh process that registers its own runtime
 * ("pshm_bench_<cell pid>_iox<side>"), publishes on its outgoing direction
 * and subscribes to the incoming one, and waits until both are connected.
 * Sending is iceoryx's zero-copy path: loan a chunk, write the payload,
 * publish. Receiving takes the chunk, reads it in place (qb_consume) and
 * releases it. Busy: take in a loop. Otherwise take, and when nothing is
 * there wait on a WaitSet (QB_DEFAULT first polls as often as pshm's
 * default spin). The publisher waits for a slow subscriber
 * (WAIT_FOR_CONSUMER / BLOCK_PRODUCER), so nothing is lost.
 *
 * RouDi runs with a generated config (one mempool per message size of the
 * run), its output in a log file, PR_SET_PDEATHSIG so it ends with the
 * bench, and is stopped with SIGTERM (it then removes its shared memory
 * and sockets); a RouDi that does not stop in 5 s is killed and its files
 * are removed by hand.
 *
 * Readiness: RouDi writes and so faults in every page of its mempools
 * before it says "RouDi is ready" (2.0.3: 65 MB of management data, plus
 * the pools: ~1 GB for the full run's sizes up to 64 MiB before the
 * counts below were trimmed, 8.5 s of waiting at load average 4 on the
 * 2-vCPU VM, more than the 10 s the bench allowed at load 11-19). So the
 * bench waits as long as RouDi makes progress (its page faults and CPU
 * time grow, read from /proc), up to 5 minutes, and gives up only when
 * it stalls for 15 s. Whether another RouDi runs is asked of the lock
 * RouDi holds (flock on /tmp/iox-unique-roudi.lock), not of the files a
 * killed RouDi leaves: the next RouDi removes those itself.
 */
#include "common.h"
#include "peers.h"

#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PSHM_BENCH_ICEORYX_VERSION
#define PSHM_BENCH_ICEORYX_VERSION "2"
#endif

const char *qb_iceoryx_version(void) { return PSHM_BENCH_ICEORYX_VERSION; }

/* ------------------------------------------------------------ RouDi */

static pid_t roudi = -1, starter = -1; /* RouDi, and the process that started it */
static char roudi_dir[64];

static void remove_dir(void)
{
    char p[128];
    if (!roudi_dir[0])
        return;
    snprintf(p, sizeof p, "%s/roudi.toml", roudi_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/roudi.log", roudi_dir);
    unlink(p);
    rmdir(roudi_dir);
    roudi_dir[0] = 0;
}

/* What a RouDi leaves when it cannot clean up itself (SIGKILL). */
static void remove_leftovers(void)
{
    struct passwd *pw = getpwuid(getuid());
    char p[256];
    unlink("/dev/shm/iceoryx_mgmt");
    if (pw) {
        snprintf(p, sizeof p, "/dev/shm/%s", pw->pw_name);
        unlink(p);
    }
    unlink("/tmp/roudi");
    unlink("/tmp/roudi.lock");
    unlink("/tmp/iox-unique-roudi.lock");
}

void qb_iceoryx_stop(void)
{
    if (getpid() != starter)
        return; /* a forked child (a worker at exit): not ours to stop */
    if (roudi > 0) {
        pid_t pid = roudi;
        int st, gone = 0;
        roudi = -1;
        kill(pid, SIGTERM);
        for (int i = 0; i < 500 && !gone; i++) {
            if (waitpid(pid, &st, WNOHANG) == pid)
                gone = 1;
            else
                nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
        if (!gone) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        /* RouDi removes its files when it exits normally; it aborts when
         * it finds a registered process already gone (2.0.3) */
        if (!gone || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            remove_leftovers();
    }
    remove_dir();
}

static void stop_at_exit(void) { qb_iceoryx_stop(); }

/* the start of RouDi's log (empty if there is none yet); its length */
static size_t read_log(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = 0;
    return n;
}

static int file_has(const char *path, const char *what)
{
    char buf[8192];
    read_log(path, buf, sizeof buf);
    return strstr(buf, what) != NULL;
}

static void last_line(const char *path, char *out, size_t cap)
{
    char buf[8192];
    size_t n = read_log(path, buf, sizeof buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    char *l = strrchr(buf, '\n');
    snprintf(out, cap, "%.180s", l ? l + 1 : buf);
}

/* Another RouDi holds its unique lock (RouDi 2.0.3 flocks it for its
 * whole life); a lock file nobody holds is a RouDi's that has ended. */
static int other_roudi(void)
{
    int fd = open("/tmp/iox-unique-roudi.lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases the lock if we took it */
    return held;
}

/* What RouDi has done so far: its minor page faults plus its CPU ticks
 * (/proc/PID/stat fields 10, 14, 15); 0 if it cannot be read. */
static unsigned long long progress_of(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%ld/stat", (long)pid);
    read_log(p, buf, sizeof buf);
    char *c = strrchr(buf, ')'); /* the command may hold spaces */
    unsigned long long minflt = 0, utime = 0, stime = 0;
    if (c && sscanf(c + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu", &minflt,
                    &utime, &stime) == 3)
        return minflt + utime + stime;
    return 0;
}

int qb_iceoryx_start(const size_t *sizes, const int *depths, int n, char *err, size_t cap)
{
    char conf[128], log[128], exe[] = "iox-roudi";
    static int hooked;

    if (other_roudi()) {
        snprintf(err, cap, "another RouDi is running (it holds /tmp/iox-unique-roudi.lock)");
        return -1;
    }
    /* named like everything the bench makes, so a later run removes it
     * if this one is killed (bench_queue.c, sweep) */
    snprintf(roudi_dir, sizeof roudi_dir, "/tmp/pshm_bench_%ld_roudi_XXXXXX", (long)getpid());
    if (!mkdtemp(roudi_dir)) {
        snprintf(err, cap, "mkdtemp: %s", strerror(errno));
        roudi_dir[0] = 0;
        return -1;
    }
    snprintf(conf, sizeof conf, "%s/roudi.toml", roudi_dir);
    snprintf(log, sizeof log, "%s/roudi.log", roudi_dir);
    FILE *f = fopen(conf, "w");
    if (!f) {
        snprintf(err, cap, "%s: %s", conf, strerror(errno));
        remove_dir();
        return -1;
    }
    /* one mempool per size; enough chunks for a channel of that depth
     * (throughput cells send one way: the subscriber's queue, the chunk it
     * reads, the one the publisher has loaned, one spare) and for the
     * latency cells' 64-byte ping-pong both ways. RouDi writes every chunk
     * before it is ready: at 64 MiB each one costs ~0.6 s on the VM */
    fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
    for (int i = 0; i < n; i++) {
        int count = depths[i] + 3;
        if (sizes[i] <= 64 && count < 2 * (64 + 8))
            count = 2 * (64 + 8);
        fprintf(f, "\n[[segment.mempool]]\nsize = %zu\ncount = %d\n", sizes[i] < 64 ? 64 : sizes[i],
                count);
    }
    fclose(f);
    if (!hooked) {
        atexit(stop_at_exit);
        hooked = 1;
    }
    pid_t parent = getpid();
    starter = parent;
    roudi = fork();
    if (roudi < 0) {
        snprintf(err, cap, "fork: %s", strerror(errno));
        remove_dir();
        return -1;
    }
    if (roudi == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execlp(exe, exe, "-c", conf, "-l", "warning", "-m", "on", (char *)NULL);
        _exit(127);
    }
    double t0 = bench_now(), moved = t0;
    unsigned long long last = 0;
    for (;;) {
        int st;
        if (file_has(log, "RouDi is ready"))
            return 0;
        double t = bench_now();
        unsigned long long work = progress_of(roudi);
        if (work != last) {
            last = work;
            moved = t;
        }
        if (t - moved > 15 || t - t0 > 300)
            break;
        if (waitpid(roudi, &st, WNOHANG) == roudi) {
            char line[200];
            last_line(log, line, sizeof line);
            roudi = -1;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
                snprintf(err, cap, "iox-roudi not found (package iceoryx)");
            else
                snprintf(err, cap, "iox-roudi exited: %.160s", line[0] ? line : "no output");
            remove_dir();
            return -1;
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    snprintf(err, cap, "iox-roudi not ready after %.0f s (no progress for %.0f s)", bench_now() - t0,
             bench_now() - moved);
    qb_iceoryx_stop();
    return -1;
}

/* ------------------------------------------------------------ the transport */

static qb_cfg cfg;
static iox_pub_storage_t pub_st;
static iox_sub_storage_t sub_st;
static iox_ws_storage_t ws_st;
static iox_pub_t pub;
static iox_sub_t sub;
static iox_ws_t ws;
static pid_t runtime_pid; /* the runtime is set up once per process */

static int ix_init(const qb_cfg *c, char *err, size_t cap)
{
    (void)c, (void)err, (void)cap;
    return 0;
}

static void ix_fini(void) {}

static int ix_attach(const qb_cfg *c, int side, char *err, size_t cap)
{
    char instance[96], ev_out[8], ev_in[8];
    cfg = *c;
    qb_name(instance, sizeof instance, "iox");
    snprintf(ev_out, sizeof ev_out, "d%d", side);
    snprintf(ev_in, sizeof ev_in, "d%d", !side);
    if (runtime_pid != getpid()) {
        char name[64];
        snprintf(name, sizeof name, "pshm_bench_%ld_iox", (long)getpid());
        iox_set_loglevel(Iceoryx_LogLevel_Warn);
        iox_runtime_init(name); /* unregisters when the process exits (not _exit) */
        runtime_pid = getpid();
    }

    iox_pub_options_t po;
    iox_pub_options_init(&po);
    po.historyCapacity = 0;
    po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    pub = iox_pub_init(&pub_st, "pshm_bench", instance, ev_out, &po);

    iox_sub_options_t so;
    iox_sub_options_init(&so);
    so.queueCapacity = (uint64_t)(cfg.depth > 256 ? 256 : cfg.depth);
    so.historyRequest = 0;
    so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    sub = iox_sub_init(&sub_st, "pshm_bench", instance, ev_in, &so);

    ws = iox_ws_init(&ws_st);
    if (iox_ws_attach_subscriber_state(ws, sub, SubscriberState_HAS_DATA, 0, NULL) !=
        WaitSetResult_SUCCESS) {
        snprintf(err, cap, "iceoryx: cannot attach the subscriber to a WaitSet");
        return -1;
    }
    for (int i = 0; i < 30000; i++) { /* RouDi connects them in its discovery loop */
        if (iox_sub_get_subscription_state(sub) == SubscribeState_SUBSCRIBED &&
            iox_pub_has_subscribers(pub))
            return 0;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    snprintf(err, cap, "iceoryx: publisher and subscriber not connected after 30 s");
    return -1;
}

static void ix_detach(void)
{
    iox_ws_detach_subscriber_state(ws, sub, SubscriberState_HAS_DATA);
    iox_ws_deinit(ws);
    iox_sub_deinit(sub);
    iox_pub_deinit(pub);
}

static void ix_send(int dir, const void *buf, size_t len)
{
    void *chunk;
    enum iox_AllocationResult r;
    (void)dir;
    while ((r = iox_pub_loan_chunk(pub, &chunk, (uint32_t)len)) != AllocationResult_SUCCESS)
        if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS)
            qb_fail("iox_pub_loan_chunk: error %d", (int)r);
    memcpy(chunk, buf, len);
    iox_pub_publish_chunk(pub, chunk);
}

static size_t ix_recv(int dir, void *buf, size_t cap)
{
    const void *chunk;
    unsigned spins = 0, spin = cfg.wait == QB_DEFAULT ? 2000 : 0;
    (void)dir;
    for (;;) {
        enum iox_ChunkReceiveResult r = iox_sub_take_chunk(sub, &chunk);
        if (r == ChunkReceiveResult_SUCCESS)
            break;
        if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE)
            qb_fail("iox_sub_take_chunk: error %d", (int)r);
        if (cfg.wait == QB_BUSY)
            continue;
        if (spins < spin) {
            spins++;
            qb_relax();
            continue;
        }
        iox_notification_info_t info[1];
        uint64_t missed = 0;
        (void)iox_ws_wait(ws, info, 1, &missed);
    }
    qb_consume(chunk, cap, buf);
    iox_sub_release_chunk(sub, chunk);
    return cap;
}

const qb_xport qb_iceoryx = {"iceoryx", ix_init, ix_fini, ix_attach, ix_detach, ix_send, ix_recv};
