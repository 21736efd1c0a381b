/* SPDX-License-Identifier: MIT */
/* deadline.c - absolute CLOCK_MONOTONIC deadlines, which every timed call takes. */
#include "internal.h"

#include <errno.h>
#include <time.h>

int pshm_deadline(struct timespec *out, long long timeout_ms)
{
    struct timespec now;

    if (!out || timeout_ms < 0)
        return -EINVAL;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* Saturate instead of overflowing: a huge timeout means "never". */
    long long sec = timeout_ms / 1000, nsec = now.tv_nsec + (timeout_ms % 1000) * 1000000LL;
    if (nsec >= 1000000000LL) {
        nsec -= 1000000000LL;
        sec++;
    }
    if (sec > (long long)INT64_MAX / 2 - now.tv_sec)
        sec = (long long)INT64_MAX / 2 - now.tv_sec;
    out->tv_sec = now.tv_sec + (time_t)sec;
    out->tv_nsec = (long)nsec;
    return 0;
}
