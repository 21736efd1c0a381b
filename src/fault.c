/* SPDX-License-Identifier: MIT */
/*
 * fault.c - fault points for the crash tests (see fault.h). Compiled to
 * nothing unless PSHM_FAULTS is defined: release builds carry no points.
 */
#include "fault.h"

#ifdef PSHM_FAULTS

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One armed point per process. Plain statics: a forked child inherits the
 * parent's state and then arms its own; the counters are atomics because
 * several threads of one process may pass a point. */
static char armed[96];
static unsigned long skip_left;
static unsigned long hits;
static pid_t armed_pid;
static int env_read;

static void read_env(void)
{
    const char *e = getenv("PSHM_FAULT");

    env_read = 1;
    if (!e || !*e)
        return;
    const char *colon = strchr(e, ':');
    size_t n = colon ? (size_t)(colon - e) : strlen(e);
    if (n >= sizeof armed)
        return;
    memcpy(armed, e, n);
    armed[n] = '\0';
    skip_left = colon ? strtoul(colon + 1, NULL, 10) : 0;
    armed_pid = getpid();
}

void pshm__fault_arm(const char *point, unsigned long skip)
{
    env_read = 1;
    armed[0] = '\0';
    __atomic_store_n(&hits, 0, __ATOMIC_SEQ_CST);
    if (!point)
        return;
    strncpy(armed, point, sizeof armed - 1);
    armed[sizeof armed - 1] = '\0';
    __atomic_store_n(&skip_left, skip, __ATOMIC_SEQ_CST);
    armed_pid = getpid();
}

unsigned long pshm__fault_hits(const char *point)
{
    (void)point;
    return __atomic_load_n(&hits, __ATOMIC_SEQ_CST);
}

void pshm__fault(const char *point)
{
    if (!env_read)
        read_env();
    if (!armed[0] || armed_pid != getpid() || strcmp(point, armed) != 0)
        return;
    __atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST);
    unsigned long left = __atomic_load_n(&skip_left, __ATOMIC_SEQ_CST);
    while (left > 0) {
        if (__atomic_compare_exchange_n(&skip_left, &left, left - 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return;
    }
    raise(SIGKILL); /* dies here, exactly in the window */
}

#else

/* Release builds: arming does nothing and no point is ever passed. */
void pshm__fault_arm(const char *point, unsigned long skip)
{
    (void)point, (void)skip;
}

unsigned long pshm__fault_hits(const char *point)
{
    (void)point;
    return 0;
}

#endif
