/* SPDX-License-Identifier: MIT */
/*
 * fault.c - fault points for the crash tests (see fault.h). Compiled to
 * nothing unless PSHM_FAULTS is defined: release builds carry no points.
 */
#include "fault.h"

#include <string.h>

uint32_t pshm__fault_id(const char *point)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)point; p && *p; p++)
        h = (h ^ *p) * 16777619u;
    return h ? h : 1;
}

#ifdef PSHM_FAULTS

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

/* One armed point per process. Plain statics: a forked child inherits them
 * and in_child() clears what it must not inherit; the counters are atomics
 * because several threads of one process may pass a point. */
static char armed[96];
static unsigned long skip_left;
static unsigned long hits;
static int inherit;
static int stop; /* armed with pshm__fault_arm_stop: SIGSTOP once, then go on */
static pshm__fault_trace *trace;

static void in_child(void)
{
    if (inherit)
        return; /* armed for the processes it forks (a watcher): traced with it */
    trace = NULL;
    armed[0] = '\0';
}

/* PSHM_FAULT is read before main, so a spawned process that forks before it
 * passes a point does not arm its children too. */
__attribute__((constructor)) static void fault_init(void)
{
    const char *e = getenv("PSHM_FAULT");

    (void)pthread_atfork(NULL, NULL, in_child);
    if (!e || !*e)
        return;
    const char *colon = strchr(e, ':');
    size_t n = colon ? (size_t)(colon - e) : strlen(e);
    if (n >= sizeof armed)
        return;
    memcpy(armed, e, n);
    armed[n] = '\0';
    skip_left = colon ? strtoul(colon + 1, NULL, 10) : 0;
}

static void arm(const char *point, unsigned long skip, int inherited)
{
    armed[0] = '\0';
    inherit = 0;
    stop = 0;
    __atomic_store_n(&hits, 0, __ATOMIC_SEQ_CST);
    if (!point)
        return;
    strncpy(armed, point, sizeof armed - 1);
    armed[sizeof armed - 1] = '\0';
    __atomic_store_n(&skip_left, skip, __ATOMIC_SEQ_CST);
    inherit = inherited;
}

void pshm__fault_arm(const char *point, unsigned long skip) { arm(point, skip, 0); }
void pshm__fault_arm_inherited(const char *point, unsigned long skip) { arm(point, skip, 1); }
void pshm__fault_arm_stop(const char *point, unsigned long skip)
{
    arm(point, skip, 0);
    stop = point != NULL;
}

unsigned long pshm__fault_hits(const char *point)
{
    (void)point;
    return __atomic_load_n(&hits, __ATOMIC_SEQ_CST);
}

void pshm__fault_trace_to(pshm__fault_trace *t)
{
    if (t)
        memset(t, 0, sizeof *t);
    trace = t;
}

int pshm__fault_enabled(void) { return 1; }

void pshm__fault_tag(const char *point, const void *tag, size_t n)
{
    pshm__fault_trace *t = trace;

    if (t) {
        /* the tag first: once point is written, the window is told */
        if (tag) {
            unsigned char b[PSHM__FAULT_TAG_MAX] = {0};
            memcpy(b, tag, n < sizeof b ? n : sizeof b);
            memcpy(t->tag, b, sizeof b);
        }
        __atomic_store_n(&t->point, pshm__fault_id(point), __ATOMIC_RELEASE);
        __atomic_store_n(&t->passes, __atomic_load_n(&t->passes, __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELAXED);
    }
    if (!armed[0] || strcmp(point, armed) != 0)
        return;
    __atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST);
    unsigned long left = __atomic_load_n(&skip_left, __ATOMIC_SEQ_CST);
    while (left > 0) {
        if (__atomic_compare_exchange_n(&skip_left, &left, left - 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return;
    }
    if (stop) {
        armed[0] = '\0'; /* once */
        raise(SIGSTOP); /* the test changes the world, then SIGCONT */
        return;
    }
    if (t)
        __atomic_store_n(&t->killed, 1, __ATOMIC_RELEASE);
    raise(SIGKILL); /* dies here, exactly in the window */
}

void pshm__fault(const char *point) { pshm__fault_tag(point, NULL, 0); }

#else

/* Release builds: arming does nothing and no point is ever passed. */
void pshm__fault_arm(const char *point, unsigned long skip)
{
    (void)point, (void)skip;
}

void pshm__fault_arm_stop(const char *point, unsigned long skip)
{
    (void)point, (void)skip;
}

void pshm__fault_arm_inherited(const char *point, unsigned long skip)
{
    (void)point, (void)skip;
}

unsigned long pshm__fault_hits(const char *point)
{
    (void)point;
    return 0;
}

void pshm__fault_trace_to(pshm__fault_trace *t)
{
    if (t)
        memset(t, 0, sizeof *t);
}

int pshm__fault_enabled(void) { return 0; }

#endif
