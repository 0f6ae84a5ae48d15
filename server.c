/*
 * server.c - the Server of asyncio's base_events.py: listening sockets, an
 * accept loop, and one task per accepted connection, which runs the
 * program's handler on a stream (stream.c) and cleans up after it.
 *
 * The mapping:
 *   Server._start_serving / _accept_connection   listener_arm, accept_cb,
 *       accept_some; the EMFILE pause is accept_pause + the retry timer
 *   start_server's client_connected_cb task      conn_step + conn_done
 *   Server.close / wait_closed / serve_forever   coro_server_*
 *   Server.close_clients / abort_clients (3.13)  coro_server_cancel_clients
 *
 * Invariants:
 *   - a listener's `waiting` is 1 exactly while its callback is on the
 *     readability future's list or on the ready queue.
 *   - a connection is on its server's list from its accept until its task's
 *     done callback; that callback (conn_done) runs even when the task was
 *     cancelled before its first step, and is what closes the stream, frees
 *     the connection and lets the server accept again.
 *   - once its task was cancelled, a connection never waits for its client:
 *     its stream is aborted (SHUTDOWN in conn_step), so cancel_clients ends
 *     every connection within a loop pass or two, whatever the clients do.
 * Never: block, accept while paused or full, or free a connection whose
 * task is not done.
 */
/* The POSIX and GNU interfaces this file uses (S_ISSOCK, getaddrinfo flags), whatever the
 * compiler's default: a plain `cc -std=c11 -c` builds it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "coro_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCEPT_BATCH 64                  /* accepts per readiness event */
#define ACCEPT_RETRY 0.1                 /* seconds paused after EMFILE & co */
#define LOG_EVERY_NS (10 * 1000000000LL) /* one report of a pause per this */

enum { SRV_NEW = 0, SRV_SERVING, SRV_CLOSED };
enum { SOP_FOREVER = 1, SOP_WAIT_CLOSED };

/* A connection: its task, its stream, the handler it runs. Allocated from
 * the loop; freed by conn_done once the task is done. */
struct conn {
    coro_frame co;
    coro_task task;
    coro_done_node done;
    coro_stream stream;
    coro_server *srv;
    coro_frame *user;
    coro__link link; /* on srv->conns */
    coro_stream_op op;
    int err;
};

static void accept_some(coro_server *srv, coro__listener *l);

static void wake_closers(coro_server *srv)
{
    if (srv->state == SRV_CLOSED && srv->nconns == 0)
        coro__waitq_wake_all(&srv->closers, coro_int(0));
}

/* The connection's body: run the handler, then close and let the buffer
 * flush. A cancel ends it at once; conn_done aborts what is left. */
static CORO_FN(conn_step)
{
    struct conn *self = CORO_SELF(struct conn);
    CORO_BEGIN();
    self->user = self->srv->on_connect(&self->stream, self->srv->arg);
    if (self->user) {
        CORO_AWAIT_ERR(self->user, self->err);
        if (self->err == CORO_ECANCELLED)
            CORO_RAISE(CORO_ECANCELLED);
        /* a stream that timed out (its deadline or idle timeout, the
         * server's own policy) is no error of the handler */
        if (self->err != 0 && !(self->err == CORO_ETIMEDOUT &&
                                (self->stream.err == CORO_ETIMEDOUT || self->stream.rexpired)))
            coro__report(self->stream.loop, "Unhandled exception in client_connected_cb", self->err,
                         NULL);
    }
    /* SHUTDOWN: a handler that was cancelled (even one that caught the
     * cancel and returned) has its output dropped, so a client that stopped
     * reading cannot hold a shutdown; otherwise the output is flushed,
     * bounded by the stream's write deadline and idle timeout if set. */
    if (coro_task_cancelling(&self->task) > 0) {
        coro_stream_abort(&self->stream);
        CORO_RAISE(CORO_ECANCELLED);
    }
    coro_stream_close(&self->stream);
    CORO_AWAIT_ERR(coro_stream_wait_closed(&self->op, &self->stream), self->err);
    CORO_END();
}

/* The task is done (however: even cancelled before it ever ran). */
static void conn_done(coro_future *f, void *arg)
{
    struct conn *c = arg;
    coro_server *srv = c->srv;
    coro_loop *loop = c->stream.loop;
    (void)coro_future_error(f); /* the outcome was reported, or is a cancel */
    coro_stream_abort(&c->stream);
    if (c->user && (c->user->flags & CORO__F_OWNED))
        coro_frame_free(loop, c->user);
    coro__list_remove(&srv->conns, &c->link);
    srv->nconns--;
    if (!srv->spare && srv->state == SRV_SERVING)
        srv->spare = c; /* the next accept reuses it */
    else
        coro__free(loop, c, sizeof *c);
    if (srv->full && srv->nconns < srv->opt.max_connections) {
        srv->full = 0;
        for (unsigned i = 0; i < srv->nls && !srv->full; i++)
            accept_some(srv, &srv->ls[i]);
    }
    wake_closers(srv);
}

/* An accepted socket is in c->stream.sock: start its task. */
static int conn_start(coro_server *srv, struct conn *c, bool tcp)
{
    coro_loop *loop = srv->loop;
    int rc;
    coro__stream_setup(&c->stream, &srv->opt.stream, tcp);
    coro_frame_init(&c->co, conn_step);
    c->srv = srv;
    c->user = NULL;
    c->err = 0;
    rc = coro_task_init(&c->task, loop, &c->co);
    if (rc != 0)
        return rc;
    coro_future_add_done_node(&c->task.fut, &c->done, conn_done, c);
    coro__list_push(&srv->conns, &c->link);
    if (++srv->nconns > srv->peak)
        srv->peak = srv->nconns;
    return 0;
}

static void accept_cb(coro_future *f, void *arg);

static void listener_arm(coro__listener *l)
{
    coro__watch_arm(&l->sock.w, CORO_READABLE, &l->node, accept_cb, l, &l->waiting);
}

static void listener_disarm(coro__listener *l)
{
    coro__watch_disarm(l->server->loop, &l->sock.w.rfut, &l->node, accept_cb, l, &l->waiting);
}

static int retry_cb(void *arg)
{
    coro_server *srv = arg;
    srv->paused = 0;
    for (unsigned i = 0; i < srv->nls && srv->state == SRV_SERVING && !srv->paused; i++)
        accept_some(srv, &srv->ls[i]);
    return 0;
}

/* Report a pause at most once every LOG_EVERY_NS: out of descriptors, the
 * server would otherwise say so ten times a second. */
static void report_pause(coro_server *srv, int err)
{
    static const char what[] = "accept() failed: pausing before the next attempt";
    int64_t now = coro_loop_time_ns(srv->loop);
    char msg[128];
    if (srv->logged_at && now - srv->logged_at < LOG_EVERY_NS) {
        srv->unlogged++;
        return;
    }
    if (srv->unlogged)
        snprintf(msg, sizeof msg, "%s (%llu more since the last report)", what,
                 (unsigned long long)srv->unlogged);
    else
        snprintf(msg, sizeof msg, "%s", what);
    srv->logged_at = now;
    srv->unlogged = 0;
    coro__report(srv->loop, msg, err, NULL);
}

/* Out of descriptors or memory: stop accepting for ACCEPT_RETRY (asyncio's
 * _accept_connection does the same with a 1 s delay). */
static void accept_pause(coro_server *srv, int err)
{
    srv->paused = 1;
    srv->pauses++;
    for (unsigned i = 0; i < srv->nls; i++)
        listener_disarm(&srv->ls[i]);
    report_pause(srv, err);
    if (coro_call_later(srv->loop, &srv->retry, ACCEPT_RETRY, retry_cb, srv) != 0) {
        srv->paused = 0; /* no timer: readiness retries */
        for (unsigned i = 0; i < srv->nls; i++)
            listener_arm(&srv->ls[i]);
    }
}

/* Errors of one connection that the next accept does not share. */
static bool accept_transient(int err)
{
    return err == -ECONNABORTED || err == -EPROTO || err == -EPERM || err == -ENETDOWN ||
           err == -EHOSTUNREACH || err == -ENETUNREACH || err == -EOPNOTSUPP;
}

static void accept_some(coro_server *srv, coro__listener *l)
{
    coro_sockaddr peer;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (srv->state != SRV_SERVING || srv->paused || l->sock.fd < 0)
            return;
        if (srv->opt.max_connections && srv->nconns >= srv->opt.max_connections) {
            srv->full = 1; /* conn_done resumes */
            return;
        }
        struct conn *c = srv->spare ? srv->spare : coro__alloc(srv->loop, sizeof *c);
        srv->spare = NULL;
        if (!c) {
            accept_pause(srv, CORO_ENOMEM);
            return;
        }
        int rc = coro_socket_accept(&l->sock, &c->stream.sock, &peer);
        srv->accepts++;
        if (rc == 0) {
            rc = conn_start(srv, c, peer.u.sa.sa_family != AF_UNIX);
            if (rc == 0)
                continue;
            coro_socket_close(&c->stream.sock);
            coro__free(srv->loop, c, sizeof *c);
            accept_pause(srv, rc);
            return;
        }
        srv->spare = c; /* kept for the next connection */
        if (rc == -EAGAIN)
            break;
        if (accept_transient(rc))
            continue;
        accept_pause(srv, rc); /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse */
        return;
    }
    listener_arm(l);
}

static void accept_cb(coro_future *f, void *arg)
{
    coro__listener *l = arg;
    int err = coro_future_error(f);
    l->waiting = 0;
    if (err == CORO_ECANCELLED || l->server->state != SRV_SERVING)
        return;
    if (err != 0) {
        accept_pause(l->server, err);
        return;
    }
    accept_some(l->server, l);
}

int coro_server_init(coro_server *srv, coro_loop *loop, coro_connect_fn on_connect, void *arg,
                     const coro_server_options *opt)
{
    loop = coro__loop_or_running(loop);
    if (!srv || !loop || !on_connect || (opt && coro__stream_bad_options(&opt->stream)))
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->on_connect = on_connect;
    srv->arg = arg;
    if (opt)
        srv->opt = *opt;
    coro_handle_init(&srv->retry);
    srv->state = SRV_NEW;
    return 0;
}

static int set_int_opt(int fd, int level, int name)
{
    int one = 1;
    return setsockopt(fd, level, name, &one, sizeof one) < 0 ? -errno : 0;
}

/* SO_REUSEPORT, so that several servers (one per loop, one loop per
 * thread) can listen on one TCP port and the kernel spreads the incoming
 * connections over them. Refused, rather than silently dropped, where it
 * cannot work: a Unix socket (a path has one listener), or a platform
 * without the option. */
static int reuse_port(int fd, int fam)
{
    if (fam == AF_UNIX)
        return -EOPNOTSUPP;
#ifdef SO_REUSEPORT
    return set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT);
#else
    (void)fd;
    return -EOPNOTSUPP;
#endif
}

/* A Unix path left by a dead server is replaced, as asyncio does. */
static void unlink_stale(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
}

static int listener_setup(coro_server *srv, coro__listener *l, const coro_sockaddr *addr)
{
    int fam = addr->u.sa.sa_family, fd = l->sock.fd, rc = 0;
    struct stat st;
    if (fam != AF_UNIX)
        rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR);
    if (rc == 0 && fam == AF_INET6)
        rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY);
    if (rc == 0 && srv->opt.reuse_port)
        rc = reuse_port(fd, fam);
    if (rc != 0)
        return rc;
    if (fam == AF_UNIX)
        unlink_stale(addr->u.un.sun_path);
    if ((rc = coro_socket_bind(&l->sock, addr)) != 0 ||
        (rc = coro_socket_listen(&l->sock, srv->opt.backlog)) != 0)
        return rc;
    if (fam == AF_UNIX && stat(addr->u.un.sun_path, &st) == 0) {
        memcpy(srv->unix_path, addr->u.un.sun_path, sizeof srv->unix_path);
        srv->unix_dev = st.st_dev;
        srv->unix_ino = st.st_ino;
    }
    return 0;
}

int coro_server_listen(coro_server *srv, const coro_sockaddr *addr)
{
    coro__listener *l;
    int rc;
    if (!srv || !addr || !srv->loop)
        return CORO_EINVAL;
    if (srv->state == SRV_CLOSED)
        return CORO_ESTATE;
    if (srv->nls == CORO_SERVER_MAX_SOCKETS)
        return CORO_ENOMEM;
    l = &srv->ls[srv->nls];
    rc = coro_socket_open(&l->sock, srv->loop, addr->u.sa.sa_family, SOCK_STREAM, 0);
    if (rc != 0)
        return rc;
    if ((rc = listener_setup(srv, l, addr)) != 0) {
        coro_socket_close(&l->sock);
        return rc;
    }
    memset(&l->node, 0, sizeof l->node);
    l->server = srv;
    l->waiting = 0;
    srv->nls++;
    if (srv->state == SRV_SERVING)
        accept_some(srv, l);
    return 0;
}

int coro_server_start(coro_server *srv)
{
    if (!srv || !srv->loop)
        return CORO_EINVAL;
    if (srv->state == SRV_CLOSED)
        return CORO_ESTATE;
    if (srv->state == SRV_SERVING)
        return 0;
    srv->state = SRV_SERVING;
    for (unsigned i = 0; i < srv->nls; i++)
        listener_arm(&srv->ls[i]);
    return 0;
}

int coro_server_close(coro_server *srv)
{
    struct stat st;
    if (!srv)
        return CORO_EINVAL;
    if (srv->state == SRV_CLOSED)
        return 0;
    srv->state = SRV_CLOSED;
    srv->paused = srv->full = 0;
    if (srv->loop && srv->loop->state != LOOP_CLOSED)
        coro_handle_cancel(&srv->retry); /* a closed loop dropped its timers */
    if (srv->spare) {
        coro__free(srv->loop, srv->spare, sizeof(struct conn));
        srv->spare = NULL;
    }
    for (unsigned i = 0; i < srv->nls; i++) {
        listener_disarm(&srv->ls[i]);
        coro_socket_close(&srv->ls[i].sock);
    }
    if (srv->unix_path[0] && stat(srv->unix_path, &st) == 0 && st.st_dev == srv->unix_dev &&
        st.st_ino == srv->unix_ino)
        unlink(srv->unix_path); /* 3.13's cleanup_socket */
    srv->unix_path[0] = '\0';
    if (srv->loop && srv->loop->state != LOOP_CLOSED) {
        coro__waitq_wake_all(&srv->forever, coro_int(0));
        wake_closers(srv);
    }
    return 0;
}

size_t coro_server_cancel_clients(coro_server *srv)
{
    size_t n = 0;
    if (!srv)
        return 0;
    CORO__LIST_FOREACH(c, &srv->conns, struct conn, link)
    {
        n += (size_t)coro_task_cancel(&c->task);
    }
    return n;
}

int coro_server_is_serving(const coro_server *srv) { return srv && srv->state == SRV_SERVING; }
size_t coro_server_connections(const coro_server *srv) { return srv ? srv->nconns : 0; }

int coro_server_sockname(const coro_server *srv, unsigned i, coro_sockaddr *addr)
{
    if (!srv || i >= srv->nls || srv->state == SRV_CLOSED)
        return CORO_EINVAL;
    return coro_socket_sockname(&srv->ls[i].sock, addr);
}

/* ---- start_server ---- */

static CORO_FN(start_step)
{
    coro_start_server_op *self = CORO_SELF(coro_start_server_op);
    coro_loop *loop = coro_get_running_loop();
    int rc;
    CORO_BEGIN();
    if (!loop || !coro_current_task(loop))
        CORO_RAISE(CORO_ESTATE);
    rc = coro_server_init(self->srv, loop, self->on_connect, self->arg, &self->opt);
    if (rc != 0)
        CORO_RAISE(rc);
    if (!self->is_unix) {
        CORO_AWAIT(coro_getaddrinfo(&self->gai, self->host, self->port, AF_UNSPEC, AI_PASSIVE,
                                    self->addrs, CORO__COUNTOF(self->addrs)));
        self->n = (size_t)CORO_RESULT.u.i;
    }
    for (size_t i = 0; i < self->n; i++) {
        rc = coro_server_listen(self->srv, &self->addrs[i]);
        /* a family the host cannot make a socket of is skipped, as asyncio does */
        if (rc == -EAFNOSUPPORT && self->srv->nls > 0)
            continue;
        if (rc != 0)
            CORO_RAISE(rc);
    }
    if (self->srv->nls == 0)
        CORO_RAISE(-EAFNOSUPPORT);
    coro_server_start(self->srv);
    CORO_RETURN(coro_ptr(self->srv));
    CORO_FINALLY
    if (CORO_RESULT.tag == CORO_ERROR)
        coro_server_close(self->srv);
    CORO_END();
}

static coro_frame *start_op(coro_start_server_op *op, coro_server *srv, coro_connect_fn on_connect,
                            void *arg, const coro_server_options *opt)
{
    if (!op || !srv || !on_connect || (opt && coro__stream_bad_options(&opt->stream)))
        return NULL;
    memset(srv, 0, sizeof *srv);
    srv->state = SRV_CLOSED; /* until started: closing it is harmless */
    coro_frame_init(&op->co, start_step);
    op->srv = srv;
    op->host = NULL;
    op->port = 0;
    op->on_connect = on_connect;
    op->arg = arg;
    memset(&op->opt, 0, sizeof op->opt);
    if (opt)
        op->opt = *opt;
    op->is_unix = 0;
    op->n = 0;
    return &op->co;
}

coro_frame *coro_start_server(coro_start_server_op *op, coro_server *srv, const char *host,
                              int port, coro_connect_fn on_connect, void *arg,
                              const coro_server_options *opt)
{
    if (port < 0 || port > 65535 || !start_op(op, srv, on_connect, arg, opt))
        return NULL;
    op->host = host;
    op->port = port;
    return &op->co;
}

coro_frame *coro_start_unix_server(coro_start_server_op *op, coro_server *srv, const char *path,
                                   coro_connect_fn on_connect, void *arg,
                                   const coro_server_options *opt)
{
    if (!op || coro_sockaddr_unix(&op->addrs[0], path) != 0)
        return NULL;
    coro_sockaddr a = op->addrs[0];
    if (!start_op(op, srv, on_connect, arg, opt))
        return NULL;
    op->addrs[0] = a;
    op->is_unix = 1;
    op->n = 1;
    return &op->co;
}

/* ---- serve_forever and wait_closed ---- */

static CORO_FN(server_step)
{
    coro_server_op *self = CORO_SELF(coro_server_op);
    coro_server *srv = self->srv;
    int rc;
    CORO_BEGIN();
    if (self->kind == SOP_FOREVER) {
        if (srv->state == SRV_CLOSED || srv->forever_running)
            CORO_RAISE(CORO_ESTATE);
        coro_server_start(srv);
        srv->forever_running = 1;
        self->kind = -SOP_FOREVER; /* ours to clear */
        rc = coro__waitq_push(&srv->forever, &self->w, srv->loop, FUT_KIND_SERVER);
        if (rc != 0)
            CORO_RAISE(rc);
        CORO_AWAIT_ERR(&self->w.fut, self->err);
        coro__waitq_remove(&self->w);
        if (self->err == 0)
            CORO_RETURN(coro_int(0)); /* closed */
        coro_server_close(srv);       /* cancelled: close, wait, re-raise */
    }
    if (srv->state != SRV_CLOSED || srv->nconns > 0) {
        rc = coro__waitq_push(&srv->closers, &self->w, srv->loop, FUT_KIND_SERVER);
        if (rc != 0)
            CORO_RAISE(rc);
        CORO_AWAIT_ERR(&self->w.fut, rc);
        if (rc != 0)
            CORO_RAISE(rc);
    }
    if (self->err != 0)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(0));
    CORO_FINALLY
    coro__waitq_remove(&self->w);
    if (self->kind == -SOP_FOREVER)
        srv->forever_running = 0;
    CORO_END();
}

static coro_frame *server_op(coro_server_op *op, coro_server *srv, int kind)
{
    if (!op || !srv)
        return NULL;
    coro_frame_init(&op->co, server_step);
    op->srv = srv;
    op->w.q = NULL;
    op->kind = kind;
    op->err = 0;
    return &op->co;
}

coro_frame *coro_server_serve_forever(coro_server_op *op, coro_server *srv)
{
    return server_op(op, srv, SOP_FOREVER);
}

coro_frame *coro_server_wait_closed(coro_server_op *op, coro_server *srv)
{
    return server_op(op, srv, SOP_WAIT_CLOSED);
}
