/*
 * futex.c - TEMP stand-in for the sync branch's futex layer (same API).
 * Linux: FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline.
 * Elsewhere (and with PSHM_FORCE_POSIX): a polling fallback that sleeps a
 * little and reports a spurious wake; waking is then a no-op.
 */
#include "futex.h"

#include <errno.h>
#include <limits.h>

#if defined(__linux__) && !defined(PSHM_FORCE_POSIX)

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int pshm__futex_wait(uint32_t *addr, uint32_t expected, const struct timespec *deadline)
{
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, deadline, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    switch (errno) {
    case EAGAIN: return -EAGAIN;
    case ETIMEDOUT: return -ETIMEDOUT;
    case EINTR: return -EINTR;
    default: return -errno;
    }
}

int pshm__futex_wake(uint32_t *addr, int n)
{
    long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

#else

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int pshm__futex_wait(uint32_t *addr, uint32_t expected, const struct timespec *deadline)
{
    struct timespec now, nap = {0, 200000}; /* 200 us */

    if (__atomic_load_n(addr, __ATOMIC_ACQUIRE) != expected)
        return -EAGAIN;
    if (deadline) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!before(&now, deadline))
            return -ETIMEDOUT;
    }
    if (nanosleep(&nap, NULL) != 0 && errno == EINTR)
        return -EINTR;
    return 0;
}

int pshm__futex_wake(uint32_t *addr, int n)
{
    (void)addr, (void)n;
    return 0;
}

#endif
