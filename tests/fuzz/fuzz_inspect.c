/* SPDX-License-Identifier: MIT */
/* fuzz_inspect.c - what `pshm ls` and the stat functions read from other
 * people's objects, through a descriptor as they read it (pread, never a
 * mapping): the input becomes a memfd, and
 *  1. pshm__list_stat_fd must accept it exactly when pshm__list_parse
 *     accepts the same bytes, and then agree on the layout;
 *  2. pshm__queue_inspect_fd (header, participants, SPSC record walk) must
 *     end in 0 or a code, never crash, never run away, and report a depth
 *     the geometry allows. */
#include "list_internal.h"
#include "queue_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;

    if (size > ((size_t)1 << 22))
        return 0;
    if (fd < 0 && (fd = memfd_create("fuzz_inspect", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();

    /* 1. lists */
    pshm__list_layout a, b;
    void *copy = NULL;
    if (posix_memalign(&copy, 64, size ? size : 1) != 0)
        return 0;
    memcpy(copy, data, size);
    int want = pshm__list_parse(copy, size, &a);
    int got = pshm__list_stat_fd(fd, size, &b);
    free(copy);
    if ((want == 0) != (got == 0))
        abort(); /* stat and open disagree on what is a list */
    if (got == 0 && (a.n != b.n || a.size != b.size || a.data_len != b.data_len))
        abort();

    /* 2. queues */
    pshm_queue_info st;
    pshm_queue_participant parts[8];
    size_t n = 0;
    pshm_queue_info_init(&st);
    pshm_queue_participant_init(&parts[0]);
    if (pshm__queue_inspect_fd(fd, size, &st, parts, 8, &n) == 0) {
        if (st.queue_mode == PSHM_QUEUE_SPSC && st.depth_bytes > st.ring_bytes)
            abort();
        if (st.queue_mode != PSHM_QUEUE_SPSC && st.depth > st.slots)
            abort();
        if (n > st.max_participants)
            abort();
    }
    return 0;
}
