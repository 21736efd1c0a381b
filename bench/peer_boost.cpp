// SPDX-License-Identifier: MIT
// peer_boost.cpp - Boost.Interprocess for bench_sync (its mutexes and
// conditions) and bench_block (its shared memory objects); the
// message_queue transport of bench_queue is in peer_boost_mq.cpp. Each is
// used the way its documentation shows; exceptions are caught at this C
// boundary.
#include "peers.h"

#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/interprocess_condition.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/named_condition.hpp>
#include <boost/interprocess/sync/named_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <boost/version.hpp>

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

namespace bi = boost::interprocess;

extern "C" const char *qb_boost_version(void)
{
    static char v[32];
    std::snprintf(v, sizeof v, "%d.%d.%d", BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                  BOOST_VERSION % 100);
    return v;
}

// ------------------------------------------------------------ mutexes

static_assert(sizeof(bi::interprocess_mutex) <= BP_MUTEX_SIZE, "BP_MUTEX_SIZE");
static_assert(sizeof(bi::interprocess_condition) <= BP_COND_SIZE, "BP_COND_SIZE");

extern "C" int bp_mutex_init(void *mem)
{
    try {
        new (mem) bi::interprocess_mutex();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "interprocess_mutex: %s\n", e.what());
        return -1;
    }
    return 0;
}

extern "C" void bp_mutex_lock(void *m) { static_cast<bi::interprocess_mutex *>(m)->lock(); }
extern "C" void bp_mutex_unlock(void *m) { static_cast<bi::interprocess_mutex *>(m)->unlock(); }

extern "C" int bp_cond_init(void *mem)
{
    try {
        new (mem) bi::interprocess_condition();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "interprocess_condition: %s\n", e.what());
        return -1;
    }
    return 0;
}

extern "C" void bp_cond_wait(void *c, void *m)
{
    auto *mx = static_cast<bi::interprocess_mutex *>(m);
    bi::scoped_lock<bi::interprocess_mutex> lk(*mx, bi::accept_ownership);
    static_cast<bi::interprocess_condition *>(c)->wait(lk);
    lk.release(); // still held: the caller unlocks
}

extern "C" void bp_cond_signal(void *c) { static_cast<bi::interprocess_condition *>(c)->notify_one(); }

struct bp_named {
    bi::named_mutex *m;
    bi::named_condition *c;
};

static std::string cond_name(const char *name) { return std::string(name) + "_cond"; }

template <class Tag> static int named_make(const char *name, bp_named **out, Tag tag)
{
    auto *n = new (std::nothrow) bp_named{nullptr, nullptr};
    if (!n)
        return -1;
    try {
        n->m = new bi::named_mutex(tag, name);
        n->c = new bi::named_condition(tag, cond_name(name).c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "named_mutex: %s\n", e.what());
        bp_named_close(n);
        return -1;
    }
    *out = n;
    return 0;
}

extern "C" int bp_named_create(const char *name, bp_named **out)
{
    bp_named_remove(name);
    return named_make(name, out, bi::create_only);
}

extern "C" int bp_named_open(const char *name, bp_named **out)
{
    return named_make(name, out, bi::open_only);
}

extern "C" void bp_named_lock(bp_named *n) { n->m->lock(); }
extern "C" void bp_named_unlock(bp_named *n) { n->m->unlock(); }

extern "C" void bp_named_wait(bp_named *n)
{
    bi::scoped_lock<bi::named_mutex> lk(*n->m, bi::accept_ownership);
    n->c->wait(lk);
    lk.release();
}

extern "C" void bp_named_signal(bp_named *n) { n->c->notify_one(); }

extern "C" void bp_named_close(bp_named *n)
{
    if (!n)
        return;
    delete n->c;
    delete n->m;
    delete n;
}

extern "C" void bp_named_remove(const char *name)
{
    bi::named_mutex::remove(name);
    bi::named_condition::remove(cond_name(name).c_str());
}

// ------------------------------------------------------------ shared memory

extern "C" int bp_managed_make(const char *name, size_t size)
{
    try {
        bi::shared_memory_object::remove(name);
        bi::managed_shared_memory seg(bi::create_only, name, size);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "managed_shared_memory: %s\n", e.what());
        return -1;
    }
    return 0;
}

extern "C" void bp_managed_remove(const char *name) { bi::shared_memory_object::remove(name); }

extern "C" int bp_shm_create(const char *name, size_t size)
{
    int r = 0;
    try {
        bi::shared_memory_object shm(bi::create_only, name, bi::read_write);
        shm.truncate((bi::offset_t)size);
        bi::mapped_region region(shm, bi::read_write);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "shared_memory_object: %s\n", e.what());
        r = -1;
    }
    bi::shared_memory_object::remove(name);
    return r;
}

extern "C" int bp_shm_attach(const char *name)
{
    try {
        bi::shared_memory_object shm(bi::open_only, name, bi::read_write);
        bi::mapped_region region(shm, bi::read_write);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "shared_memory_object: %s\n", e.what());
        return -1;
    }
    return 0;
}

extern "C" int bp_managed_create(const char *name, size_t size)
{
    int r = 0;
    try {
        bi::managed_shared_memory seg(bi::create_only, name, size);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "managed_shared_memory: %s\n", e.what());
        r = -1;
    }
    bi::shared_memory_object::remove(name);
    return r;
}

extern "C" int bp_managed_attach(const char *name)
{
    try {
        bi::managed_shared_memory seg(bi::open_only, name);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "managed_shared_memory: %s\n", e.what());
        return -1;
    }
    return 0;
}
