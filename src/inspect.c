/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - how the stat functions read objects they do not trust: a
 * read-only descriptor and pread into private memory, never a mapping, never
 * the hold lock (inspect_internal.h says why).
 */
#include "inspect_internal.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int pshm__inspect_open(const char *name, int *fd_out, uint64_t *size)
{
    char nm[PSHM_NAME_MAX + 1];
    struct stat st;
    int fd, r;

    *fd_out = -1;
    r = pshm__name_norm(name, nm);
    if (r != 0)
        return r;
    r = pshm__os_stat_object(nm, &st);
    if (r != 0)
        return r;
    r = pshm__os_open(nm, 0, &fd); /* O_NONBLOCK | O_NOFOLLOW: a FIFO never blocks us */
    if (r != 0)
        return r;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -PSHM_EFTYPE; /* replaced between the two looks */
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}

int pshm__inspect_read(int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    size_t done = 0;

    while (done < n) {
        ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break; /* the end of the object */
        done += (size_t)k;
    }
    *got = done;
    return 0;
}

void *pshm__inspect_alloc(size_t n)
{
    void *p = NULL;

    return posix_memalign(&p, 64, n ? n : 1) == 0 ? p : NULL;
}

int pshm__inspect_size(int fd, uint64_t *size)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}
