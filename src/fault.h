/* SPDX-License-Identifier: MIT */
/*
 * fault.h - fault points: places inside the library where a test can make
 * the process die, exactly there, to prove a crash guarantee.
 *
 *   PSHM__FAULT("queue.commit.after_data");
 *   PSHM__FAULT_TAG("queue.peek.claimed", payload, len);
 *
 * marks a crash window by name (<module>.<operation>.<where>). In a release
 * build the macros are empty: the points exist only when the library is
 * built with PSHM_FAULTS defined (the test binaries link such a build, the
 * pshm_faults library; libpshm.so and libpshm.a never have them).
 *
 * Arming (test builds only): pshm__fault_arm(point, skip) in the process
 * that is to die - typically a forked child right after fork - makes the
 * (skip+1)-th pass through `point` raise SIGKILL; NULL disarms. The
 * environment variable PSHM_FAULT=point[:skip] arms a spawned process the
 * same way. Each process has one armed point; a forked child starts
 * disarmed and untraced, unless the point was armed with
 * pshm__fault_arm_inherited (for a process the library forks itself, such
 * as a block's watcher), which the children keep, and their trace with it. Every point
 * a test build passes through is also counted, so a storm can check that
 * its kills landed in the window it claims (pshm__fault_hits).
 *
 * Tracing (test builds only): pshm__fault_trace_to(t) makes this process
 * write, at every point it passes, the point's id into *t - memory the
 * test shares with it - and at a PSHM__FAULT_TAG point also the first bytes
 * of the tag (say, of the message it holds), which stay until the next
 * tagged point. After the process dies, from any cause, t says in which window
 * it was: after t->point and before the next point. t->killed says that it
 * died by its armed point. A forked child does not trace until it sets its
 * own.
 */
#ifndef PSHM_FAULT_H
#define PSHM_FAULT_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#ifdef PSHM_FAULTS
PSHM__HIDDEN void pshm__fault(const char *point);
PSHM__HIDDEN void pshm__fault_tag(const char *point, const void *tag, size_t n);
#define PSHM__FAULT(point) pshm__fault(point)
#define PSHM__FAULT_TAG(point, tag, n) pshm__fault_tag((point), (tag), (n))
#else
#define PSHM__FAULT(point) ((void)0)
#define PSHM__FAULT_TAG(point, tag, n) ((void)0)
#endif

/* What a traced process leaves behind (see Tracing). */
#define PSHM__FAULT_TAG_MAX 16
typedef struct pshm__fault_trace {
    uint32_t point;  /* pshm__fault_id() of the last point passed; 0: none yet */
    uint32_t killed; /* 1: the process raised SIGKILL at its armed point */
    uint64_t passes; /* points passed since the trace was set */
    unsigned char tag[PSHM__FAULT_TAG_MAX]; /* the last tagged point's tag, zero-padded */
} pshm__fault_trace;

/* Test builds only (declared always, defined only with PSHM_FAULTS; the
 * test harness is the only caller). Visible to the tests, which link the
 * static pshm_faults library. */
void pshm__fault_arm(const char *point, unsigned long skip);
void pshm__fault_arm_inherited(const char *point, unsigned long skip);
/* Like pshm__fault_arm, but the point stops the process (SIGSTOP) once
 * instead of killing it: a test changes what the process is about to read
 * (shrinks its block, say), then sends SIGCONT. */
void pshm__fault_arm_stop(const char *point, unsigned long skip);
/* Passes through `point` by this process since it was armed (any point
 * when point is NULL: the armed one). */
unsigned long pshm__fault_hits(const char *point);
/* Trace into t (NULL stops). */
void pshm__fault_trace_to(pshm__fault_trace *t);
/* The id a point's name has in a trace: never 0 (in every build). */
uint32_t pshm__fault_id(const char *point);
/* 1 if this build has fault points (the pshm_faults library), else 0. */
int pshm__fault_enabled(void);

#endif
