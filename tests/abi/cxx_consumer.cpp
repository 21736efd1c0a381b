// SPDX-License-Identifier: MIT
// A C++ program that includes pshm.h and uses every inline function and
// struct of the header: it must compile without a single warning under
// -Wall -Wextra -pedantic with g++ and clang++ (scripts/test-install.sh).
#include <pshm.h>

#include <cstdio>
#include <ctime>

int main()
{
    pshm_block_options bo;
    pshm_sync_options so;
    pshm_queue_options qo;
    pshm_block_info bi;
    pshm_sync_info si;
    pshm_queue_info qi;
    pshm_queue_participant qp;
    pshm_queue_msg_info mi;
    pshm_block_options_init(&bo);
    pshm_sync_options_init(&so);
    pshm_queue_options_init(&qo);
    pshm_block_info_init(&bi);
    pshm_sync_info_init(&si);
    pshm_queue_info_init(&qi);
    pshm_queue_participant_init(&qp);
    pshm_queue_msg_info_init(&mi);
    pshm_value v[] = {pshm_value_none(), pshm_value_int(1), pshm_value_float(2.5),
                      pshm_value_bool(1), pshm_value_str("hi", 2), pshm_value_bytes("ab", 2)};
    pshm_span s = v[4].s;
    struct timespec ts;
    if (pshm_deadline(&ts, 10) != 0)
        return 1;
    std::printf("pshm %s (%u): %s %zu %d %u\n", pshm_version_string(), pshm_version(),
                pshm_strerror(-PSHM_ENAME_EMPTY), s.len, static_cast<int>(bo.mode),
                qo.max_participants);
    return pshm_version() == PSHM_VERSION_NUMBER ? 0 : 1;
}
