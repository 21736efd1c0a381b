/*
 * futex.h - waiting on a 32-bit word in shared memory (TEMP stand-in; the
 * sync branch provides the real one with this exact API).
 *
 * Shared (not private) futexes: the word may live in memory mapped by
 * several processes. Deadlines are absolute CLOCK_MONOTONIC times.
 */
#ifndef PSHM_OS_FUTEX_H
#define PSHM_OS_FUTEX_H

#include "../internal.h"

#include <stdint.h>
#include <time.h>

/*
 * Sleep while *addr == expected, until woken, the deadline passes (NULL:
 * never) or a signal arrives. Returns 0 (woken, or spuriously: re-check),
 * -EAGAIN (*addr != expected on entry), -ETIMEDOUT, -EINTR.
 */
PSHM__HIDDEN int pshm__futex_wait(uint32_t *addr, uint32_t expected,
                                  const struct timespec *abs_deadline_monotonic);

/* Wake up to n sleepers on addr (INT_MAX: all). Returns the number woken or -errno. */
PSHM__HIDDEN int pshm__futex_wake(uint32_t *addr, int n);

#endif
