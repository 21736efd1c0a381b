/* SPDX-License-Identifier: MIT */
/*
 * futex.h - waiting on a 32-bit word in shared memory, for every module that
 * blocks (sync.c today, queue.c next). Linux: futex(2) without
 * FUTEX_PRIVATE_FLAG, so waiters and wakers may be different processes that
 * map the word at different addresses. Elsewhere (and with PSHM_FORCE_POSIX)
 * a portable sleep-and-recheck loop stands in: correct, only slower to wake.
 *
 * Both functions are async-signal-safe and thread-safe. Neither keeps any
 * state: a process that dies while waiting leaves nothing behind (the kernel
 * drops it from the wait queue), which is what lets the primitives built on
 * these words survive crashed waiters.
 */
#ifndef PSHM_OS_FUTEX_H
#define PSHM_OS_FUTEX_H

#include "../internal.h"

#include <stdint.h>
#include <time.h>

/*
 * Sleep while *addr == expected, until woken, until the absolute
 * CLOCK_MONOTONIC time *abs_deadline_monotonic (NULL: no deadline), or until a
 * signal handler runs. addr must be 4-byte aligned.
 * Returns 0 when woken (callers must re-check the word: wake-ups may be
 * spurious), -EAGAIN if *addr != expected at the call, -ETIMEDOUT once the
 * deadline has passed, -EINTR if a signal handler ran, -EINVAL for a bad
 * deadline or address. Never retries by itself: callers choose what a signal
 * means for them.
 */
PSHM__HIDDEN int pshm__futex_wait(uint32_t *addr, uint32_t expected,
                                  const struct timespec *abs_deadline_monotonic);

/*
 * Wake at most n waiters (n >= 1; INT32_MAX for all) sleeping on addr, in any
 * process. Returns how many were woken (the fallback cannot tell and returns
 * 0), or -errno.
 */
PSHM__HIDDEN int pshm__futex_wake(uint32_t *addr, int n);

#endif
