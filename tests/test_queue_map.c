/* SPDX-License-Identifier: MIT */
/* test_queue_map.c - the handles of one process share one mapping of a
 * queue (src/queue_map.c), and a handle opened after a message was put back
 * behind the consumers still finds it (the orphan scan a new MPMC handle
 * may skip, src/queue_ops.c). */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pshm_queue_options mpmc_opts(void)
{
    pshm_queue_options o;
    pshm_queue_options_init(&o);
    o.queue_mode = PSHM_QUEUE_MPMC;
    o.max_msg = 64;
    o.messages = 64;
    o.keep_open = 1;
    return o;
}

static void *mem(pshm_queue *q) { return pshm_block_data(pshm_queue_block(q)); }

static void send_u32(pshm_queue *p, uint32_t v) { CHECK_OK(pshm_queue_send(p, &v, sizeof v)); }

static uint32_t recv_u32(pshm_queue *c)
{
    uint32_t v = 0;
    size_t len = 0;
    CHECK_OK(pshm_queue_tryrecv(c, &v, sizeof v, &len));
    CHECK_EQ(len, sizeof v);
    return v;
}

TEST(handles_of_one_process_share_one_mapping)
{
    const char *name = th_name("share");
    pshm_queue_options o = mpmc_opts();
    pshm_queue *p, *c1, *c2, *p2, *c3;

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c1));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c2));
    CHECK(mem(p) != NULL);
    CHECK(mem(c1) == mem(p));
    CHECK(mem(c2) == mem(p));
    /* a reserved pointer lies in the block's memory, as before */
    void *w;
    CHECK_OK(pshm_queue_reserve(p, 4, &w));
    CHECK((unsigned char *)w > (unsigned char *)mem(c1) &&
          (unsigned char *)w < (unsigned char *)mem(c1) + pshm_block_size(pshm_queue_block(c1)));
    memcpy(w, &(uint32_t){7}, 4);
    CHECK_OK(pshm_queue_commit(p, 4));
    CHECK_EQ(recv_u32(c2), 7);

    /* the handle whose block made the mapping goes first: the others keep it */
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p2));
    CHECK(mem(p2) == mem(c1));
    send_u32(p2, 8);
    send_u32(p2, 9);
    CHECK_OK(pshm_queue_close(c1));
    CHECK_EQ(recv_u32(c2), 8);
    CHECK_EQ(recv_u32(c2), 9);
    CHECK_OK(pshm_queue_close(c2));
    CHECK_OK(pshm_queue_close(p2));

    /* every handle closed: a new one maps the queue again, and works */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c3));
    CHECK(mem(c3) == mem(p));
    send_u32(p, 10);
    CHECK_EQ(recv_u32(c3), 10);
    CHECK_OK(pshm_queue_close(c3));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_unlink(name));
}

TEST(a_queue_made_again_under_the_same_name_is_another_mapping)
{
    const char *name = th_name("again");
    pshm_queue_options o = mpmc_opts();
    pshm_queue *p, *c, *p2, *c2;

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    send_u32(p, 1);
    CHECK_OK(pshm_unlink(name));
    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p2));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c2));
    CHECK(mem(p2) != mem(p));
    CHECK(mem(c2) == mem(p2));
    send_u32(p2, 2);
    CHECK_EQ(recv_u32(c), 1); /* the old queue's message, on the old queue only */
    CHECK_EQ(recv_u32(c2), 2);
    const void *m;
    size_t len;
    CHECK_ERR(pshm_queue_trypeek(c, &m, &len), -EAGAIN);
    CHECK_ERR(pshm_queue_trypeek(c2, &m, &len), -EAGAIN);
    CHECK_OK(pshm_queue_close(c));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_queue_close(c2));
    CHECK_OK(pshm_queue_close(p2));
    CHECK_OK(pshm_unlink(name));
}

/* A consumer that peeks and dies holding the message. */
static int peek_and_die(void *arg)
{
    pshm_queue *c;
    const void *m;
    size_t len;
    pshm_queue_options o = mpmc_opts();
    if (pshm_queue_open((const char *)arg, PSHM_QUEUE_CONSUMER, &o, &c) != 0)
        return 2;
    if (pshm_queue_trypeek(c, &m, &len) != 0)
        return 3;
    raise(SIGKILL);
    return 4;
}

TEST(a_new_mpmc_handle_finds_a_message_put_back_before_it_opened)
{
    const char *name = th_name("orphan");
    pshm_queue_options o = mpmc_opts();
    pshm_queue *p, *c, *c2;
    const void *m;
    size_t len;
    pshm_queue_msg_info mi;

    CHECK_OK(pshm_queue_create(name, PSHM_QUEUE_PRODUCER, &o, &p));
    /* an earlier consumer peeks once and leaves: a scan that found nothing */
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c));
    send_u32(p, 0);
    CHECK_EQ(recv_u32(c), 0);
    CHECK_OK(pshm_queue_close(c));
    send_u32(p, 1);
    send_u32(p, 2);
    pid_t pid = th_fork(peek_and_die, (void *)name);
    int st = th_wait(pid, 10000);
    CHECK_EQ(st, 128 + SIGKILL); /* it died holding message 1 */
    /* Another handle's open recovers the dead consumer: message 1 goes back
     * behind the dequeue position, which already passed it. A handle opened
     * after that must look behind at its first peek. */
    pshm_queue *rec;
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &rec));
    CHECK_OK(pshm_queue_close(rec));
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c2));
    CHECK_OK(pshm_queue_trypeek(c2, &m, &len));
    CHECK_EQ(len, 4);
    uint32_t v;
    memcpy(&v, m, 4);
    CHECK_EQ(v, 1);
    pshm_queue_msg_info_init(&mi);
    CHECK_OK(pshm_queue_msginfo(c2, &mi));
    CHECK_EQ(mi.attempts, 1); /* one earlier delivery ended with a death */
    CHECK_OK(pshm_queue_release(c2));
    CHECK_EQ(recv_u32(c2), 2);
    CHECK_ERR(pshm_queue_trypeek(c2, &m, &len), -EAGAIN);
    /* and one more handle, after a scan that found nothing, finds nothing */
    pshm_queue *c3;
    CHECK_OK(pshm_queue_open(name, PSHM_QUEUE_CONSUMER, &o, &c3));
    CHECK_ERR(pshm_queue_trypeek(c3, &m, &len), -EAGAIN);
    send_u32(p, 3);
    CHECK_EQ(recv_u32(c3), 3);
    CHECK_OK(pshm_queue_close(c3));
    CHECK_OK(pshm_queue_close(c2));
    CHECK_OK(pshm_queue_close(p));
    CHECK_OK(pshm_unlink(name));
}
