/* SPDX-License-Identifier: MIT */
/* list_hello.c - the README's ShareableList example: a list made in C,
 * read and changed by CPython's ShareableList, read back in C. */
#include <pshm.h>

#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    pshm_value items[] = {pshm_value_int(1), pshm_value_float(2.5), pshm_value_str("hi", 2),
                          pshm_value_none()};
    pshm_block_options opt;
    pshm_list *l;
    pshm_value v;
    char cmd[512];
    int rc;

    pshm_block_options_init(&opt);
    opt.lifetime = PSHM_OWNED; /* removed when this process ends */
    rc = pshm_list_create(NULL, items, 4, &opt, &l);
    if (rc != 0) {
        fprintf(stderr, "create: %s\n", pshm_strerror(rc));
        return 1;
    }
    pshm_list_set(l, -1, &(pshm_value){.type = PSHM_BOOL, .b = 1}); /* None -> True */
    if (pshm_list_get(l, 2, &v) == 0) /* str: a pointer into the block */
        printf("C reads item 2: %.*s\n", (int)v.s.len, v.s.ptr);

    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys\n"
             "from multiprocessing import shared_memory, resource_tracker\n"
             "sl = shared_memory.ShareableList(name=sys.argv[1])\n"
             "resource_tracker.unregister(sl.shm._name, \"shared_memory\")\n"
             "print(\"Python reads:\", list(sl))\n"
             "sl[2] = \"from py\"\n"
             "sl.shm.close()' %s",
             pshm_block_name(pshm_list_block(l)));
    fflush(stdout);
    if (system(cmd) != 0)
        fprintf(stderr, "(python3 with multiprocessing.shared_memory not available)\n");
    else if (pshm_list_get(l, 2, &v) == 0)
        printf("C reads item 2: %.*s\n", (int)v.s.len, v.s.ptr);
    return pshm_list_close(l) == 0 ? 0 : 1;
}
