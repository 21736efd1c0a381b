/* SPDX-License-Identifier: MIT */
/*
 * futex.c - see futex.h. The Linux version is two system calls; the fallback
 * polls, because POSIX has no way to sleep on a word in shared memory.
 */
#include "futex.h"

#include <errno.h>

#if defined(__linux__) && !defined(PSHM_FORCE_POSIX)

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int pshm__futex_wait(uint32_t *addr, uint32_t expected, const struct timespec *abs_deadline)
{
    /* FUTEX_WAIT_BITSET takes an absolute time, on CLOCK_MONOTONIC unless
     * FUTEX_CLOCK_REALTIME is given: a deadline never stretches when the wall
     * clock is set, and a retried wait needs no recomputed relative timeout. */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, abs_deadline, NULL,
                     FUTEX_BITSET_MATCH_ANY);

    if (r == 0)
        return 0;
    switch (errno) {
    case EAGAIN: /* EWOULDBLOCK is the same value on Linux */
        return -EAGAIN;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        return -EINTR;
    default:
        return -errno;
    }
}

int pshm__futex_wake(uint32_t *addr, int n)
{
    long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);

    return r < 0 ? -errno : (int)r;
}

#else /* portable fallback */

/* Sleep a little and look again. The step grows from 50 us to 2 ms, so a
 * short wait stays responsive and a long one costs little. */
int pshm__futex_wait(uint32_t *addr, uint32_t expected, const struct timespec *abs_deadline)
{
    long step_ns = 50000;

    if (abs_deadline && (abs_deadline->tv_nsec < 0 || abs_deadline->tv_nsec >= 1000000000L))
        return -EINVAL;
    if (__atomic_load_n(addr, __ATOMIC_ACQUIRE) != expected)
        return -EAGAIN;
    for (;;) {
        struct timespec now, d;
        if (abs_deadline) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > abs_deadline->tv_sec ||
                (now.tv_sec == abs_deadline->tv_sec && now.tv_nsec >= abs_deadline->tv_nsec))
                return -ETIMEDOUT;
        }
        d.tv_sec = 0;
        d.tv_nsec = step_ns;
        if (nanosleep(&d, NULL) != 0 && errno == EINTR)
            return -EINTR;
        if (__atomic_load_n(addr, __ATOMIC_ACQUIRE) != expected)
            return 0;
        if (step_ns < 2000000)
            step_ns *= 2;
    }
}

int pshm__futex_wake(uint32_t *addr, int n)
{
    (void)addr, (void)n;
    return 0; /* pollers see the word change by themselves */
}

#endif
