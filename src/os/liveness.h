/* SPDX-License-Identifier: MIT */
/*
 * liveness.h - who am I, and is that process or thread still alive?
 *
 * An identity is one 64-bit word: the pid (or tid) in the high half and the
 * low 32 bits of its start time (clock ticks since boot, field 22 of
 * /proc/PID/stat) in the low half. A pid alone can be reused; a pid with the
 * start time of its owner cannot (a reuse would have to land on the same
 * tick, 2^32 ticks - about 16 months at 100 Hz - apart). 0 is never an
 * identity. The kernel is the witness: the checks read what the kernel says
 * about the task now, nothing the task itself has to refresh.
 *
 * On the portable fallback the start time is 0 and liveness is kill(pid, 0)
 * (which takes a zombie for alive); a thread is its process id and a number
 * unique within the process.
 */
#ifndef PSHM_OS_LIVENESS_H
#define PSHM_OS_LIVENESS_H

#include "../internal.h"

#include <stdint.h>

#define PSHM__ID_PID(id) ((uint32_t)((id) >> 32))
#define PSHM__ID_START(id) ((uint32_t)(id))

/* This process's identity (cached; a forked child recomputes its own). */
PSHM__HIDDEN uint64_t pshm__self_process(void);
/* This thread's identity: its tid and its own start time (cached per thread;
 * inline, as every lock and unlock records or checks it). */
PSHM__HIDDEN uint64_t pshm__self_thread_slow(void);
extern PSHM__HIDDEN __thread uint64_t pshm__tl_self __attribute__((tls_model("initial-exec")));

static inline uint64_t pshm__self_thread(void)
{
    uint64_t id = pshm__tl_self;
    return __builtin_expect(id != 0, 1) ? id : pshm__self_thread_slow();
}

/*
 * 1 if the process or thread `id` names is alive, 0 if it has ended (exited,
 * killed, a zombie not yet reaped, or its pid now belongs to another task),
 * -errno if the kernel would not say (then treat it as alive: waiting longer
 * is safer than breaking a live holder's lock).
 */
PSHM__HIDDEN int pshm__id_alive(uint64_t id);


/* 1 if id names a live thread of the calling process, else 0. */
PSHM__HIDDEN int pshm__id_mine(uint64_t id);

/* The process (thread group) of the thread id names, or 0 if unknown. */
PSHM__HIDDEN long pshm__id_tgid(uint64_t id);

#endif
