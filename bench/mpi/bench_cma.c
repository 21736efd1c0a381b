// SPDX-License-Identifier: MIT
/*
 * bench_cma.c - the single copy under Open MPI's RMA on one machine, without
 * MPI: process_vm_readv / process_vm_writev of SIZE bytes from / to a
 * child's memory, for the three kinds a window can sit on: malloc'd
 * memory (the Win_create baseline), an anonymous mmap, and a /dev/shm
 * MAP_SHARED mapping (pshm's slab). Best of 7 interleaved rounds. Not a
 * test: it tells whether shmem pages make the kernel's copy dearer.
 *
 *   bench_cma [SIZE_KIB...]   (default 32 256 2048 16384 65536)
 */
#include <fcntl.h>
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

static int one(size_t size)
{
    static const char *names[3] = {"malloc", "mmap anon", "/dev/shm"};
    char name[64], *mem[3], *buf = malloc(size);
    double best[2][3];
    int it = (int)((256u << 20) / size), p[2], fd;
    pid_t child;

    it = it < 8 ? 8 : it > 2000 ? 2000 : it;
    snprintf(name, sizeof name, "/pshmbench_cma_%ld", (long)getpid());
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0 || !buf)
        return perror("shm"), 1;
    mem[0] = malloc(size);
    mem[1] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mem[2] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    shm_unlink(name);
    close(fd);
    if (!mem[0] || mem[1] == MAP_FAILED || mem[2] == MAP_FAILED || pipe(p) != 0)
        return perror("mmap"), 1;
    for (int k = 0; k < 3; k++) /* every page present, as the MPI baselines' memset */
        memset(mem[k], 1, size);
    memset(buf, 2, size);
    child = fork();
    if (child == 0) { /* holds the memory until the parent is done */
        char x;
        close(p[1]);
        _exit(read(p[0], &x, 1) < 0);
    }
    close(p[0]);
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 3; k++)
            best[w][k] = 1e9;
    for (int r = 0; r < 7; r++)
        for (int k = 0; k < 3; k++)
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
    for (int k = 0; k < 3; k++)
        printf("%8zu KiB  %-10s read %10.1f us %6.2f GB/s   write %10.1f us %6.2f GB/s\n", size >> 10,
               names[k], best[0][k] * 1e6, (double)size / best[0][k] * 1e-9, best[1][k] * 1e6,
               (double)size / best[1][k] * 1e-9);
    close(p[1]);
    waitpid(child, NULL, 0);
    free(mem[0]);
    munmap(mem[1], size);
    munmap(mem[2], size);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t dflt[] = {32, 256, 2048, 16384, 65536};
    int rc = 0;
    if (argc > 1)
        for (int i = 1; i < argc && rc == 0; i++)
            rc = one((size_t)strtoull(argv[i], NULL, 10) << 10);
    else
        for (size_t i = 0; i < sizeof dflt / sizeof *dflt && rc == 0; i++)
            rc = one(dflt[i] << 10);
    return rc;
}
