// SPDX-License-Identifier: MIT
/*
 * bench_cma.c - the single copy under Open MPI's RMA on one machine, without
 * MPI: process_vm_readv / process_vm_writev of SIZE bytes from / to a
 * child's memory, for the three kinds a window can sit on: malloc'd
 * memory (the Win_create baseline), an anonymous mmap, and a /dev/shm
 * MAP_SHARED mapping, and one made as pshm's slab is (posix_fallocate,
 * MAP_POPULATE). Best of 7 interleaved rounds. Not a test: it tells whether
 * shmem pages make the kernel's copy dearer.
 *
 *   bench_cma [-o OFFSET] [-l] [SIZE_KIB...]   (default 32 256 2048 16384 65536)
 *   -o: the remote data starts OFFSET bytes into its (page-aligned) region;
 *   the local buffer is malloc'd (16 bytes into a page for large sizes).
 *   pshm's slab data starts 128 bytes into a page (after the .npy header).
 *   -l: the slab-like region's pages are allocated last, after the others
 *   are written (default: first). On the development VM the shmem region
 *   whose pages were allocated first read 1.2x - 1.4x slower at 64 MiB,
 *   whichever it was (see bench_mpi.c, rma).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static size_t offset;
static int slab_last;

/* A /dev/shm region as pshm's slab: reserved, mapped with MAP_POPULATE. */
static char *slab_like(size_t span)
{
    char name[64];
    void *m;
    int fd;
    snprintf(name, sizeof name, "/pshmbench_cmp_%ld", (long)getpid());
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return NULL;
    shm_unlink(name);
    m = ftruncate(fd, (off_t)span) == 0 && posix_fallocate(fd, 0, (off_t)span) == 0
            ? mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0)
            : MAP_FAILED;
    close(fd);
    return m == MAP_FAILED ? NULL : m;
}

static int one(size_t size)
{
    static const char *names[4] = {"malloc", "mmap anon", "/dev/shm", "as a slab"};
    char name[64], *mem[4], *base[4], *buf = malloc(size);
    size_t span = size + offset;
    double best[2][4];
    int it = (int)((256u << 20) / size), p[2], fd;
    pid_t child;

    it = it < 8 ? 8 : it > 2000 ? 2000 : it;
    snprintf(name, sizeof name, "/pshmbench_cma_%ld", (long)getpid());
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)span) != 0 || !buf)
        return perror("shm"), 1;
    base[0] = aligned_alloc(4096, span);
    base[1] = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base[2] = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    shm_unlink(name);
    close(fd);
    if (!slab_last)
        base[3] = slab_like(span);
    if (!base[0] || base[1] == MAP_FAILED || base[2] == MAP_FAILED || pipe(p) != 0)
        return perror("mmap"), 1;
    for (int k = 0; k < 3; k++) /* every page present, as the MPI baselines' memset */
        memset(base[k], 1, span);
    if (slab_last)
        base[3] = slab_like(span);
    if (!base[3])
        return perror("slab"), 1;
    memset(base[3], 1, span);
    for (int k = 0; k < 4; k++)
        mem[k] = base[k] + offset;
    memset(buf, 2, size);
    child = fork();
    if (child == 0) { /* holds the memory until the parent is done */
        char x;
        close(p[1]);
        _exit(read(p[0], &x, 1) < 0);
    }
    close(p[0]);
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 4; k++)
            best[w][k] = 1e9;
    for (int r = 0; r < 7; r++)
        for (int k = 0; k < 4; k++)
            for (int w = 0; w < 2; w++) {
                struct iovec l = {buf, size}, rm = {mem[k], size};
                double t = now();
                for (int i = 0; i < it; i++)
                    if ((w ? process_vm_writev(child, &l, 1, &rm, 1, 0)
                           : process_vm_readv(child, &l, 1, &rm, 1, 0)) != (ssize_t)size)
                        return perror("process_vm"), 1;
                t = (now() - t) / it;
                if (t < best[w][k])
                    best[w][k] = t;
            }
    for (int k = 0; k < 4; k++)
        printf("%8zu KiB  %-10s remote %% 4096 = %4zu, local %4zu  read %10.1f us %6.2f GB/s   write %10.1f us %6.2f GB/s\n", size >> 10,
               names[k], (size_t)((uintptr_t)mem[k] % 4096), (size_t)((uintptr_t)buf % 4096), best[0][k] * 1e6, (double)size / best[0][k] * 1e-9, best[1][k] * 1e6,
               (double)size / best[1][k] * 1e-9);
    close(p[1]);
    waitpid(child, NULL, 0);
    free(base[0]);
    munmap(base[1], span);
    munmap(base[2], span);
    munmap(base[3], span);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t dflt[] = {32, 256, 2048, 16384, 65536};
    int rc = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            offset = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-l") == 0)
            slab_last = 1;
        else
            return fprintf(stderr, "usage: bench_cma [-o OFFSET] [-l] [SIZE_KIB...]\n"), 2;
    }
    if (argc > i)
        for (; i < argc && rc == 0; i++)
            rc = one((size_t)strtoull(argv[i], NULL, 10) << 10);
    else
        for (size_t k = 0; k < sizeof dflt / sizeof *dflt && rc == 0; k++)
            rc = one(dflt[k] << 10);
    return rc;
}
