// SPDX-License-Identifier: MIT
// peer_boost_mq.cpp - Boost.Interprocess's message_queue as a bench_queue
// transport: one queue a direction, created by side 0, opened by both.
// Busy: try_send / try_receive in a loop; otherwise send / receive (they
// sleep on the queue's interprocess condition). Both copy: send copies the
// message into the queue, receive copies it out.
#include "peers.h"

#include <boost/interprocess/ipc/message_queue.hpp>

#include <cstdio>
#include <string>

namespace bi = boost::interprocess;

namespace {

std::string mq_name[2];
bi::message_queue *mq[2];
qb_cfg cfg;

void mq_names()
{
    for (int d = 0; d < 2; d++) {
        char n[128];
        qb_name(n, sizeof n, d ? "bmq1" : "bmq0");
        mq_name[d] = n;
    }
}

int mq_init(const qb_cfg *c, char *err, size_t cap)
{
    cfg = *c;
    mq_names();
    try {
        for (int d = 0; d < 2; d++) {
            bi::message_queue::remove(mq_name[d].c_str());
            bi::message_queue q(bi::create_only, mq_name[d].c_str(), (size_t)c->depth, c->max);
        }
    } catch (const std::exception &e) {
        std::snprintf(err, cap, "message_queue: %s", e.what());
        return -1;
    }
    return 0;
}

void mq_fini(void)
{
    for (int d = 0; d < 2; d++)
        bi::message_queue::remove(mq_name[d].c_str());
}

int mq_attach(const qb_cfg *c, int, char *err, size_t cap)
{
    cfg = *c;
    mq_names();
    try {
        for (int d = 0; d < 2; d++)
            mq[d] = new bi::message_queue(bi::open_only, mq_name[d].c_str());
    } catch (const std::exception &e) {
        std::snprintf(err, cap, "message_queue: %s", e.what());
        return -1;
    }
    return 0;
}

void mq_detach(void)
{
    for (int d = 0; d < 2; d++) {
        delete mq[d];
        mq[d] = nullptr;
    }
}

void mq_send(int dir, const void *buf, size_t len)
{
    try {
        if (cfg.wait == QB_BUSY)
            while (!mq[dir]->try_send(buf, len, 0))
                ;
        else
            mq[dir]->send(buf, len, 0);
    } catch (const std::exception &e) {
        qb_fail("message_queue send: %s", e.what());
    }
}

size_t mq_recv(int dir, void *buf, size_t cap)
{
    size_t got = 0;
    unsigned prio = 0;
    try {
        if (cfg.wait == QB_BUSY)
            while (!mq[dir]->try_receive(buf, cap, got, prio))
                ;
        else
            mq[dir]->receive(buf, cap, got, prio);
    } catch (const std::exception &e) {
        qb_fail("message_queue receive: %s", e.what());
    }
    return got;
}

} // namespace

extern "C" const qb_xport qb_boost_mq = {"boost", mq_init, mq_fini, mq_attach,
                                         mq_detach, mq_send, mq_recv};

