/* SPDX-License-Identifier: MIT */
/* harness.c - see harness.h. */
#include "harness.h"
#include "fault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 512
#define SKIP_CODE 77

static struct {
    const char *name;
    th_test_fn fn;
    int timeout_s;
    unsigned flags;
} tests[MAX_TESTS];
static int ntests;

/* Why the running test skipped: written by th_skip in the test's process,
 * read by the runner (shared memory set up before the test forks). */
#define REASON_MAX 400
static char *skip_reason;
static pshm__fault_trace *arm_trace; /* th_arm's child writes, th_died_at reads */
static uint64_t forks; /* th_fork calls so far: a forked child's number */

static struct {
    const char *name;
    th_helper_fn fn;
} helpers[MAX_TESTS];
static int nhelpers;

static char self_path[PATH_MAX];
static char bin_dir[PATH_MAX];

void th_register_flags(const char *name, th_test_fn fn, int timeout_s, unsigned flags)
{
    if (ntests == MAX_TESTS)
        abort();
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    tests[ntests].timeout_s = timeout_s;
    tests[ntests].flags = flags;
    ntests++;
}

void th_register(const char *name, th_test_fn fn, int timeout_s)
{
    th_register_flags(name, fn, timeout_s, 0);
}

void th_register_helper(const char *name, th_helper_fn fn)
{
    if (nhelpers == MAX_TESTS)
        abort();
    helpers[nhelpers].name = name;
    helpers[nhelpers].fn = fn;
    nhelpers++;
}

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

void th_skip(const char *fmt, ...)
{
    char why[REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (!why[0])
        snprintf(why, sizeof why, "(no reason given)");
    if (skip_reason)
        memcpy(skip_reason, why, sizeof why);
    fflush(NULL);
    _exit(SKIP_CODE);
}

static pid_t test_pid; /* the process running the current test */

const char *th_name(const char *tag)
{
    static char bufs[16][128];
    static int next;
    char *b = bufs[next++ % 16];

    snprintf(b, 128, "pshmt_%ld_%s", (long)test_pid, tag);
    return b;
}

int th_exists(const char *name)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof path, "/dev/shm/%s", name);
    return lstat(path, &st) == 0;
}

const char *th_self(void) { return self_path; }
const char *th_bindir(void) { return bin_dir; }

pshm_queue_info th_queue_stat(pshm_queue *q)
{
    pshm_queue_info st;
    pshm_queue_info_init(&st);
    CHECK_OK(pshm_queue_fstat(q, &st));
    return st;
}

void th_queue_pair_close(pshm_queue *p, pshm_queue *c)
{
    CHECK_OK(pshm_block_unlink(pshm_queue_block(p)));
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_queue_close(p));
}

pid_t th_spawn(const char *helper, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;

    argv[argc++] = self_path;
    argv[argc++] = (char *)"--helper";
    argv[argc++] = (char *)helper;
    va_start(ap, helper);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 62;)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        th_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    if (pid == 0) {
        char env[64];
        snprintf(env, sizeof env, "PSHM_TEST_PID=%ld", (long)test_pid);
        putenv(env);
        execv(self_path, argv);
        _exit(127);
    }
    return pid;
}

pid_t th_fork(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    forks++;
    pid_t pid = fork();
    if (pid < 0)
        th_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

void th_default_signals(void)
{
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGFPE, SIG_DFL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void *th_shared(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        th_fail(__FILE__, __LINE__, "mmap of %zu shared bytes: %s", n, strerror(errno));
    return p;
}

void th_check_workers(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(pids[i], &st, WNOHANG) == pids[i])
            th_fail(__FILE__, __LINE__, "worker %d exited by itself: %s %d", i,
                    WIFEXITED(st) ? "code" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

void th_await_progress(const uint64_t *counters, const pid_t *pids, int n, int ms)
{
    uint64_t snap[64];
    long long end = now_ms() + ms;

    if (n > 64)
        th_fail(__FILE__, __LINE__, "%d workers: at most 64", n);
    for (int i = 0; i < n; i++)
        snap[i] = ALOAD(&counters[i]);
    for (int i = 0; i < n; i++) {
        while (ALOAD(&counters[i]) <= snap[i]) {
            if (now_ms() > end) {
                th_check_workers(pids, n);
                th_fail(__FILE__, __LINE__, "worker %d made no progress in %d ms", i, ms);
            }
            usleep(100);
        }
    }
}

void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static unsigned rnd_seed;

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint32_t th_rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state >> 11);
}

void th_rnd_seed(const char *label)
{
    const char *s = getenv("PSHM_SEED");
    struct timespec ts;
    unsigned seed;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed = s ? (unsigned)strtoul(s, NULL, 0) : (unsigned)(ts.tv_nsec ^ getpid());
    rnd_seed = seed;
    rnd_state = ((uint64_t)seed << 1 | 1) * 0x9e3779b97f4a7c15ULL;
    printf("    %s: PSHM_SEED=%u\n", label, seed);
    fflush(stdout);
}

unsigned th_rnd_seed_value(void) { return rnd_seed; }

void th_rnd_worker(uint64_t worker)
{
    /* (seed, worker) alone: not the pid, not the time */
    rnd_state = mix64(mix64((uint64_t)rnd_seed) ^ mix64(worker + 1));
    if (!rnd_state)
        rnd_state = 1;
}

void th_rnd_child(void)
{
    th_rnd_worker(forks | (uint64_t)1 << 63);
}

int th_soak(void)
{
    const char *s = getenv("PSHM_SOAK");
    return s && *s && strcmp(s, "0") != 0 ? 10 : 1;
}

int th_wait(pid_t pid, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    int st;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            th_fail(__FILE__, __LINE__, "waitpid(%ld): %s", (long)pid, strerror(errno));
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            th_fail(__FILE__, __LINE__, "child %ld did not finish in %d ms", (long)pid,
                    timeout_ms);
        }
        th_sleep_ms(2);
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int th_until(int (*cond)(void *), void *arg, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;

    while (!cond(arg)) {
        if (now_ms() > end)
            return 0;
        th_sleep_ms(2);
    }
    return 1;
}

/*
 * The sentinel: a stale AUTO block of the runner's own (its creator died),
 * the kind of object a global gc or a careless pattern would collect. A
 * test that removes it touched a name that was not its own, and fails.
 */
static char sentinel[64];

static int make_sentinel(void)
{
    int st;

    snprintf(sentinel, sizeof sentinel, "pshmt_%ld_sentinel", (long)getpid());
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        pshm_block_options o;
        pshm_block *b = NULL;
        pshm_block_options_init(&o);
        o.lifetime = PSHM_AUTO;
        if (pshm_block_create(sentinel, 64, &o, &b) != 0)
            _exit(1); /* no lifetimes here (the POSIX fallback): no sentinel */
        raise(SIGKILL); /* dies holding it: stale */
    }
    waitpid(pid, &st, 0);
    if (!th_exists(sentinel))
        sentinel[0] = 0;
    return 0;
}

static void drop_sentinel(void)
{
    char path[PATH_MAX];

    if (!sentinel[0])
        return;
    snprintf(path, sizeof path, "/dev/shm/%s", sentinel);
    unlink(path);
}

/* Objects a test left behind in /dev/shm: removed, and the test fails. */
static int sweep(pid_t pid, int report)
{
    char prefix[64], path[PATH_MAX];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    if (!d)
        return 0;
    snprintf(prefix, sizeof prefix, "pshmt_%ld_", (long)pid);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (report)
            fprintf(stderr, "    left behind: /dev/shm/%s\n", e->d_name);
        snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
        unlink(path);
        n++;
    }
    closedir(d);
    return n;
}

void th_arm(const char *point, unsigned long skip)
{
    pshm__fault_trace_to(arm_trace);
    pshm__fault_arm(point, skip);
}

void th_died_at(pid_t pid, const char *point, int timeout_ms)
{
    int code = th_wait(pid, timeout_ms);
    if (!pshm__fault_enabled())
        th_fail(__FILE__, __LINE__, "this build has no fault points");
    if (code != 128 + SIGKILL || !arm_trace->killed || arm_trace->point != pshm__fault_id(point))
        th_fail(__FILE__, __LINE__, "child %ld: exit %d, killed by its point %u, last point %#x: "
                "it did not die at %s", (long)pid, code, arm_trace->killed, arm_trace->point, point);
    memset(arm_trace, 0, sizeof *arm_trace);
}

void th_private_shm(const char *opts)
{
    if (unshare(CLONE_NEWNS) != 0)
        th_skip("unshare(CLONE_NEWNS): %s (a private /dev/shm needs root or CAP_SYS_ADMIN)",
                strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        th_skip("making mounts private: %s", strerror(errno));
    if (mount("pshmtest", "/dev/shm", "tmpfs", 0, opts) != 0)
        th_skip("mounting a tmpfs with \"%s\" on /dev/shm: %s", opts, strerror(errno));
}

static int run_one(int i)
{
    long long t0 = now_ms();
    int st, code;

    skip_reason[0] = '\0';
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        test_pid = getpid();
        tests[i].fn();
        fflush(NULL);
        _exit(0);
    }
    setpgid(pid, pid);
    long long end = t0 + (long long)tests[i].timeout_s * 1000;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (now_ms() > end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "    timed out after %d s\n", tests[i].timeout_s);
            st = -1;
            break;
        }
        th_sleep_ms(1);
    }
    kill(-pid, SIGKILL); /* helpers the test left running */
    if (st == -1)
        code = 1;
    else if (WIFEXITED(st))
        code = WEXITSTATUS(st);
    else {
        fprintf(stderr, "    killed by signal %d (%s)\n", WTERMSIG(st), strsignal(WTERMSIG(st)));
        code = 1;
    }
    if (code == SKIP_CODE && !skip_reason[0]) {
        /* 77 from anything but th_skip is not a skip */
        fprintf(stderr, "    exited %d without th_skip\n", SKIP_CODE);
        code = 1;
    }
    th_sleep_ms(0);
    /* give killed helpers a moment, then look for leftovers */
    if (sweep(pid, code == 0) > 0 && code == 0)
        code = 1;
    if (sentinel[0] && !th_exists(sentinel)) {
        fprintf(stderr, "    removed /dev/shm/%s, a stale block that is not its own "
                "(a global gc, or a pattern wider than its names)\n", sentinel);
        code = 1;
        make_sentinel();
    }
    if (code == SKIP_CODE)
        printf("skip %s (%lld ms): %s\n", tests[i].name, now_ms() - t0, skip_reason);
    else
        printf("%-4s %s (%lld ms)\n", code == 0 ? "ok" : "FAIL", tests[i].name, now_ms() - t0);
    fflush(stdout);
    return code;
}

static int usage(const char *why, const char *arg)
{
    fprintf(stderr, "%s: %s%s\nusage: %s [--portable] [TEST...] | --list [--portable] | "
            "--helper NAME [ARG...]\n", self_path, why, arg, self_path);
    return 2;
}

int main(int argc, char **argv)
{
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n > 0) {
        self_path[n] = 0;
    } else {
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
    }
    snprintf(bin_dir, sizeof bin_dir, "%s", self_path);
    char *slash = strrchr(bin_dir, '/');
    if (slash)
        *slash = 0;
    /* tests live in build/tests; the CLI in build/ */
    if (strlen(bin_dir) > 6 && strcmp(bin_dir + strlen(bin_dir) - 6, "/tests") == 0)
        bin_dir[strlen(bin_dir) - 6] = 0;
    skip_reason = mmap(NULL, REASON_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    arm_trace = mmap(NULL, sizeof *arm_trace, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (skip_reason == MAP_FAILED || arm_trace == MAP_FAILED)
        return 1;

    if (argc >= 3 && strcmp(argv[1], "--helper") == 0) {
        const char *tp = getenv("PSHM_TEST_PID");
        test_pid = tp ? (pid_t)atol(tp) : getpid();
        for (int i = 0; i < nhelpers; i++)
            if (strcmp(helpers[i].name, argv[2]) == 0)
                return helpers[i].fn(argc - 3, argv + 3);
        fprintf(stderr, "no helper %s\n", argv[2]);
        return 127;
    }
    int list = 0, portable = 0, named = 0;
    static char want[MAX_TESTS];
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--list") == 0) {
            list = 1;
        } else if (strcmp(argv[a], "--portable") == 0) {
            portable = 1;
        } else if (argv[a][0] == '-') {
            return usage("unknown option ", argv[a]);
        } else {
            int found = 0;
            for (int i = 0; i < ntests; i++)
                if (strcmp(argv[a], tests[i].name) == 0)
                    want[i] = 1, found = 1;
            if (!found)
                return usage("no test named ", argv[a]);
            named = 1;
        }
    }
    if (list && named)
        return usage("--list takes no test names", "");
    int selected = 0;
    for (int i = 0; i < ntests; i++) {
        if (!named)
            want[i] = 1;
        if (portable && !(tests[i].flags & TH_PORTABLE))
            want[i] = 0;
        selected += want[i];
    }
    if (list) {
        for (int i = 0; i < ntests; i++)
            if (want[i])
                printf("%s %d\n", tests[i].name, tests[i].timeout_s);
        return 0;
    }
    if (selected == 0)
        return usage("no test selected", "");
    int passed = 0, failed = 0, skipped = 0;
    char skips[4096] = "";
    make_sentinel();
    for (int i = 0; i < ntests; i++) {
        if (!want[i])
            continue;
        int code = run_one(i);
        if (code == 0) {
            passed++;
        } else if (code == SKIP_CODE) {
            skipped++;
            size_t l = strlen(skips);
            snprintf(skips + l, sizeof skips - l, "%s%s", l ? ", " : "", tests[i].name);
        } else {
            failed++;
        }
    }
    printf("%d passed, %d failed, %d skipped%s%s\n", passed, failed, skipped,
           skipped ? ": " : "", skips);
    drop_sentinel();
    if (failed)
        return 1;
    return passed == 0 && skipped > 0 ? SKIP_CODE : 0;
}
