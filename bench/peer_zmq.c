/* SPDX-License-Identifier: MIT */
/*
 * peer_zmq.c - ZeroMQ over ipc:// as a bench_queue transport: one PAIR
 * socket a side (side 0 binds, side 1 connects), one I/O thread per
 * context, high-water marks set to the cell's depth. Busy: zmq_send /
 * zmq_recv with ZMQ_DONTWAIT in a loop; otherwise blocking calls. The
 * receiver copies each message into its buffer (zmq_recv), as a copying
 * consumer does.
 */
#include "peers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static char endpoint[160], path[128];
static void *ctx, *sock;
static qb_cfg cfg;

const char *qb_zmq_version(void)
{
    static char v[32];
    int a, b, c;
    zmq_version(&a, &b, &c);
    snprintf(v, sizeof v, "%d.%d.%d", a, b, c);
    return v;
}

static void zmq_names(void)
{
    char n[96];
    qb_name(n, sizeof n, "zmq");
    snprintf(path, sizeof path, "/tmp/%s", n);
    snprintf(endpoint, sizeof endpoint, "ipc://%s", path);
}

static int zmq_init_(const qb_cfg *c, char *err, size_t cap)
{
    (void)c, (void)err, (void)cap;
    zmq_names();
    return 0;
}

static void zmq_fini_(void) { unlink(path); }

static int zmq_attach_(const qb_cfg *c, int side, char *err, size_t cap)
{
    cfg = *c;
    int hwm = cfg.depth;
    zmq_names();
    ctx = zmq_ctx_new();
    if (!ctx)
        goto fail;
    sock = zmq_socket(ctx, ZMQ_PAIR);
    if (!sock)
        goto fail;
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if ((side == 0 ? zmq_bind(sock, endpoint) : zmq_connect(sock, endpoint)) != 0)
        goto fail;
    if (side == 0) {
        /* wait for the peer: the first message is a hello from side 1 */
        char b;
        if (zmq_recv(sock, &b, 1, 0) != 1)
            goto fail;
    } else if (zmq_send(sock, "h", 1, 0) != 1) {
        goto fail;
    }
    return 0;
fail:
    snprintf(err, cap, "zmq: %s", zmq_strerror(zmq_errno()));
    return -1;
}

static void zmq_detach_(void)
{
    /* the default linger: closing waits until what was sent is delivered
     * (the producer may close before the consumer has read the end) */
    zmq_close(sock);
    zmq_ctx_term(ctx);
    sock = ctx = NULL;
}

static void zmq_send_(int dir, const void *buf, size_t len)
{
    (void)dir;
    int flags = cfg.wait == QB_BUSY ? ZMQ_DONTWAIT : 0;
    while (zmq_send(sock, buf, len, flags) < 0)
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            qb_fail("zmq_send: %s", zmq_strerror(zmq_errno()));
}

static size_t zmq_recv_(int dir, void *buf, size_t cap)
{
    (void)dir;
    int flags = cfg.wait == QB_BUSY ? ZMQ_DONTWAIT : 0, n;
    while ((n = zmq_recv(sock, buf, cap, flags)) < 0)
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            qb_fail("zmq_recv: %s", zmq_strerror(zmq_errno()));
    return (size_t)n;
}

const qb_xport qb_zmq = {"zmq", zmq_init_, zmq_fini_, zmq_attach_, zmq_detach_, zmq_send_, zmq_recv_};
