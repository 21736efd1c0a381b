/* SPDX-License-Identifier: MIT */
/*
 * fault.h - fault points: places inside the library where a test can make
 * the process die, exactly there, to prove a crash guarantee.
 *
 *   PSHM__FAULT("queue.commit.after_data");
 *
 * marks a crash window by name (<module>.<operation>.<where>). In a release
 * build the macro is empty: the points exist only when the library is built
 * with PSHM_FAULTS defined (the test binaries link such a build, the
 * pshm_faults library; libpshm.so and libpshm.a never have them).
 *
 * Arming (test builds only): pshm__fault_arm(point, skip) in the process
 * that is to die - typically a forked child right after fork - makes the
 * (skip+1)-th pass through `point` raise SIGKILL; NULL disarms. The
 * environment variable PSHM_FAULT=point[:skip] arms a spawned process the
 * same way. Each process has one armed point. Every point a test build
 * passes through is also counted, so a storm can check that its kills
 * landed in the window it claims (pshm__fault_hits).
 */
#ifndef PSHM_FAULT_H
#define PSHM_FAULT_H

#include "internal.h"

#ifdef PSHM_FAULTS
PSHM__HIDDEN void pshm__fault(const char *point);
#define PSHM__FAULT(point) pshm__fault(point)
#else
#define PSHM__FAULT(point) ((void)0)
#endif

/* Test builds only (declared always, defined only with PSHM_FAULTS; the
 * test harness is the only caller). Visible to the tests, which link the
 * static pshm_faults library. */
void pshm__fault_arm(const char *point, unsigned long skip);
/* Passes through `point` by this process since it was armed (any point
 * when point is NULL: the armed one). */
unsigned long pshm__fault_hits(const char *point);

#endif
