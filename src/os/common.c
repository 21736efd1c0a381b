/* SPDX-License-Identifier: MIT */
/* common.c - platform code that only needs the other platform calls. */
#include "os.h"

#include <sys/stat.h>

int pshm__os_same(const char *name, int fd)
{
    struct stat a;

    if (fstat(fd, &a) != 0)
        return 0;
    return pshm__os_is(name, (uint64_t)a.st_dev, (uint64_t)a.st_ino);
}

int pshm__os_is(const char *name, uint64_t dev, uint64_t ino)
{
    struct stat b;

    if (pshm__os_stat(name, &b) != 0)
        return 0;
    return (uint64_t)b.st_dev == dev && (uint64_t)b.st_ino == ino;
}

int pshm__os_stat_object(const char *name, struct stat *st)
{
    int r = pshm__os_stat(name, st);

    if (r == 0 && !S_ISREG(st->st_mode))
        r = -PSHM_EFTYPE;
    return r;
}
