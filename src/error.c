/* SPDX-License-Identifier: MIT */
/* error.c - one table gives the codes, their messages and their names. */
#include "internal.h"

#include <errno.h>
#include <string.h>

const char *pshm_strerror(int code)
{
    if (code == 0)
        return "success";
    switch (-code) {
#define PSHM__ERR_MSG(name, value, msg) case PSHM_##name: return msg;
        PSHM_ERRNO_MAP(PSHM__ERR_MSG)
#undef PSHM__ERR_MSG
    default:
        break;
    }
    /* glibc's text for ETIMEDOUT, "Connection timed out", misleads for a
     * lock, a semaphore or a queue: every timed wait in pshm ends so. */
    if (code == -ETIMEDOUT)
        return "timed out";
    if (code < 0 && -code < PSHM_ENAME_EMPTY) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
        /* strerrordesc_np returns static text and never formats into a buffer. */
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
#else
        const char *s = strerror(-code);
        if (s)
            return s;
#endif
    }
    return "unknown error";
}

const char *pshm_errname(int code)
{
    if (code == 0)
        return "OK";
    switch (-code) {
#define PSHM__ERR_NAME(name, value, msg) case PSHM_##name: return "PSHM_" #name;
        PSHM_ERRNO_MAP(PSHM__ERR_NAME)
#undef PSHM__ERR_NAME
    default:
        break;
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
    if (code < 0 && -code < PSHM_ENAME_EMPTY) {
        const char *s = strerrorname_np(-code);
        if (s)
            return s;
    }
#endif
    return "UNKNOWN";
}

#include <stdio.h>
#include <stdlib.h>

void pshm__panic(const char *what, int err)
{
    fprintf(stderr, "pshm: fatal: %s failed: %s\n", what, pshm_strerror(err));
    abort();
}
