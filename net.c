/*
 * net.c - sockets on the loop: asyncio's loop.sock_* calls and
 * loop.getaddrinfo, over coro_fd readiness.
 *
 * The mapping to asyncio/selector_events.py:
 *   sock_recv / sock_recv_into   coro_sock_recv
 *   sock_sendall                 coro_sock_sendall (and coro_sock_send: once)
 *   sock_connect                 coro_sock_connect (connect, wait writable,
 *                                SO_ERROR: _sock_connect_cb)
 *   sock_accept                  coro_sock_accept over coro_socket_accept
 *   getaddrinfo                  coro_getaddrinfo (numeric and "localhost"
 *                                at once; names on the thread pool)
 * Every operation is one step function (sock_step) written with the CORO_
 * macros: try the system call; on EAGAIN await the direction's readiness
 * future (coro_fd keeps the interest registered across events, so a busy
 * socket costs no epoll_ctl) and try again. No operation allocates.
 *
 * Invariants:
 *   - every descriptor made here is non-blocking and close-on-exec from the
 *     system call that creates it (fcntl only where the flags don't exist);
 *   - no send can raise SIGPIPE: MSG_NOSIGNAL, or SO_NOSIGPIPE on the socket;
 *   - a closed coro_socket has fd -1 and a detached watcher; operations that
 *     were waiting on it are woken (their readiness future completes) and
 *     fail with CORO_ECLOSED when they resume.
 * Never: block (no blocking resolver call on the loop thread), or touch a
 * watcher's future other than through the public future API.
 */
/* The POSIX and GNU interfaces this file uses (getaddrinfo flags, NI_MAXHOST), whatever the
 * compiler's default: a plain `cc -std=c11 -c` builds it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "coro_int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* the BSDs: SO_NOSIGPIPE on the socket instead */
#endif

enum { OP_RECV = 1, OP_SEND, OP_SENDALL, OP_ACCEPT, OP_CONNECT };

#define GAI_MAX 16 /* addresses a lookup keeps */

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */
/* ------------------------------------------------------------------------ */

int coro_sockaddr_ip(coro_sockaddr *a, const char *ip, int port)
{
    if (!a || !ip || port < 0 || port > 65535)
        return CORO_EINVAL;
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, ip, &a->u.in.sin_addr) == 1) {
        a->u.in.sin_family = AF_INET;
        a->u.in.sin_port = htons((uint16_t)port);
        a->len = sizeof a->u.in;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a->u.in6.sin6_addr) == 1) {
        a->u.in6.sin6_family = AF_INET6;
        a->u.in6.sin6_port = htons((uint16_t)port);
        a->len = sizeof a->u.in6;
        return 0;
    }
    return CORO_EINVAL;
}

int coro_sockaddr_unix(coro_sockaddr *a, const char *path)
{
    size_t n;
    if (!a || !path || !*path || (n = strlen(path)) >= sizeof a->u.un.sun_path)
        return CORO_EINVAL;
    memset(a, 0, sizeof *a);
    a->u.un.sun_family = AF_UNIX;
    memcpy(a->u.un.sun_path, path, n + 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int coro_sockaddr_port(const coro_sockaddr *a)
{
    if (!a)
        return -1;
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return -1;
}

const char *coro_sockaddr_format(const coro_sockaddr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    if (!a)
        return buf;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &a->u.in.sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%d", ip, coro_sockaddr_port(a));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof ip);
        if (a->u.in6.sin6_scope_id)
            snprintf(buf, len, "[%s%%%u]:%d", ip, (unsigned)a->u.in6.sin6_scope_id,
                     coro_sockaddr_port(a));
        else
            snprintf(buf, len, "[%s]:%d", ip, coro_sockaddr_port(a));
        break;
    case AF_UNIX:
        snprintf(buf, len, "%.*s", (int)sizeof a->u.un.sun_path, a->u.un.sun_path);
        break;
    default:
        snprintf(buf, len, "?");
        break;
    }
    return buf;
}

/* ------------------------------------------------------------------------ */
/* getaddrinfo                                                              */
/* ------------------------------------------------------------------------ */

/* Add ip:port to the results if the family allows it and there is room. */
static void add_ip(coro_getaddrinfo_op *op, size_t *n, const char *ip)
{
    coro_sockaddr a;
    if (*n >= op->max || coro_sockaddr_ip(&a, ip, op->port) != 0)
        return;
    if (op->family != AF_UNSPEC && a.u.sa.sa_family != op->family)
        return;
    op->addrs[(*n)++] = a;
}

/* What needs no resolver: numeric addresses, "localhost" and the empty or
 * NULL host. Returns the count (0 when the family excludes them all), or -1
 * for a name that needs the resolver. */
static int resolve_now(coro_getaddrinfo_op *op)
{
    size_t n = 0;
    const char *h = op->host;
    coro_sockaddr probe;
    if (!h || !*h) {
        int passive = (op->flags & AI_PASSIVE) != 0;
        add_ip(op, &n, passive ? "0.0.0.0" : "127.0.0.1");
        add_ip(op, &n, passive ? "::" : "::1");
    } else if (strcmp(h, "localhost") == 0) {
        add_ip(op, &n, "127.0.0.1");
        add_ip(op, &n, "::1");
    } else if (coro_sockaddr_ip(&probe, h, 0) == 0) {
        add_ip(op, &n, h);
    } else {
        return -1;
    }
    return (int)n;
}

/* The lookup a pool thread runs: its own storage, so a cancelled await
 * may leave while the thread still works (the discard frees it). */
struct coro__gai {
    coro_loop *loop;
    char host[NI_MAXHOST];
    char port[8];
    int family, flags;
    int gai_err;
    size_t n;
    coro_sockaddr addrs[GAI_MAX];
};

static coro_value gai_work(void *arg)
{
    struct coro__gai *job = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = job->family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = job->flags | AI_NUMERICSERV;
    job->gai_err = getaddrinfo(job->host, job->port, &hints, &res);
    job->n = 0;
    for (struct addrinfo *ai = res; ai && job->n < GAI_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof job->addrs[0].u)
            continue;
        memset(&job->addrs[job->n], 0, sizeof job->addrs[0]);
        memcpy(&job->addrs[job->n].u, ai->ai_addr, ai->ai_addrlen);
        job->addrs[job->n++].len = ai->ai_addrlen;
    }
    if (res)
        freeaddrinfo(res);
    if (job->gai_err == 0 && job->n == 0)
        job->gai_err = EAI_NONAME;
    return job->gai_err ? coro_error(CORO_EADDRINFO) : coro_int((int64_t)job->n);
}

static void gai_free(struct coro__gai *job) { coro__array_realloc(job->loop, job, sizeof *job, 0); }

/* The await was cancelled: the lookup's outcome is nobody's. */
static void gai_discard(void *arg, coro_value result)
{
    (void)result;
    gai_free(arg);
}

static struct coro__gai *gai_job(coro_getaddrinfo_op *op, coro_loop *loop)
{
    struct coro__gai *job = coro__array_realloc(loop, NULL, 0, sizeof *job);
    if (!job)
        return NULL;
    job->loop = loop;
    memcpy(job->host, op->host, strlen(op->host) + 1); /* length checked at init */
    snprintf(job->port, sizeof job->port, "%d", op->port);
    job->family = op->family;
    job->flags = op->flags;
    job->gai_err = 0;
    job->n = 0;
    return job;
}

static CORO_FN(gai_step)
{
    coro_getaddrinfo_op *self = CORO_SELF(coro_getaddrinfo_op);
    coro_loop *loop = coro_get_running_loop();
    int n;
    CORO_BEGIN();
    self->gai_err = 0;
    n = resolve_now(self);
    if (n > 0)
        CORO_RETURN(coro_int(n));
    if (n == 0) { /* a numeric address of a family not asked for */
        self->gai_err = EAI_FAMILY;
        CORO_RAISE(CORO_EADDRINFO);
    }
    if (!loop || !(self->job = gai_job(self, loop)))
        CORO_RAISE(loop ? CORO_ENOMEM : CORO_ESTATE);
    CORO_AWAIT_ERR(coro_to_thread_ex(&self->thread, gai_work, self->job, gai_discard), self->err);
    if (self->err == CORO_ECANCELLED) {
        self->job = NULL; /* the discard has it */
        CORO_RAISE(CORO_ECANCELLED);
    }
    self->gai_err = self->job->gai_err;
    n = 0;
    while (self->err == 0 && (size_t)n < self->job->n && (size_t)n < self->max) {
        self->addrs[n] = self->job->addrs[n];
        n++;
    }
    gai_free(self->job);
    self->job = NULL;
    if (self->err != 0)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(n));
    CORO_END();
}

coro_frame *coro_getaddrinfo(coro_getaddrinfo_op *op, const char *host, int port, int family,
                             int flags, coro_sockaddr *addrs, size_t max)
{
    if (!op || !addrs || max == 0 || port < 0 || port > 65535)
        return NULL;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return NULL;
    if (host && strlen(host) >= NI_MAXHOST)
        return NULL;
    coro_frame_init(&op->co, gai_step);
    op->host = host;
    op->port = port;
    op->family = family;
    op->flags = flags;
    op->addrs = addrs;
    op->max = max;
    op->gai_err = 0;
    op->err = 0;
    op->job = NULL;
    return &op->co;
}

int coro_getaddrinfo_error(const coro_getaddrinfo_op *op) { return op ? op->gai_err : 0; }

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */
/* ------------------------------------------------------------------------ */

/* No SIGPIPE from this socket where the flag lives on the socket. */
static void no_sigpipe(int fd)
{
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#else
    (void)fd;
#endif
}

/* O_NONBLOCK and FD_CLOEXEC on an fd that may lack them. */
static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0))
        return -errno;
    return 0;
}

/* A system call's result: the count, or -errno (EWOULDBLOCK as -EAGAIN). */
static ssize_t io_result(ssize_t n)
{
    return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : n;
}

/* Watch an fd that is already non-blocking and close-on-exec. */
static int adopt(coro_socket *s, coro_loop *loop, int fd)
{
    int rc = coro_fd_init(&s->w, loop, fd);
    if (rc != 0)
        return rc;
    no_sigpipe(fd);
    s->fd = fd;
    return 0;
}

static int check_loop(const void *obj, const coro_loop *loop)
{
    if (!obj || !loop)
        return CORO_EINVAL;
    return loop->state == LOOP_CLOSED ? CORO_ECLOSED : 0;
}

int coro_socket_open(coro_socket *s, coro_loop *loop, int family, int type, int protocol)
{
    loop = coro__loop_or_running(loop);
    int fd, rc;
    if (s)
        s->fd = -1;
    if ((rc = check_loop(s, loop)) != 0)
        return rc;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return -errno;
#else
    fd = socket(family, type, protocol);
    if (fd < 0)
        return -errno;
    if ((rc = set_flags(fd)) != 0) {
        close(fd);
        return rc;
    }
#endif
    if ((rc = adopt(s, loop, fd)) != 0)
        close(fd);
    return rc;
}

int coro_socket_wrap(coro_socket *s, coro_loop *loop, int fd)
{
    loop = coro__loop_or_running(loop);
    int rc;
    if (s)
        s->fd = -1;
    if ((rc = check_loop(s, loop)) != 0)
        return rc;
    if (fd < 0)
        return CORO_EINVAL;
    if ((rc = set_flags(fd)) != 0)
        return rc;
    return adopt(s, loop, fd);
}

int coro_socketpair(coro_socket pair[2], coro_loop *loop)
{
    loop = coro__loop_or_running(loop);
    int sv[2], rc;
    if (pair)
        pair[0].fd = pair[1].fd = -1;
    if ((rc = check_loop(pair, loop)) != 0)
        return rc;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -errno;
    if ((rc = set_flags(sv[0])) != 0 || (rc = set_flags(sv[1])) != 0) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
#endif
    if ((rc = adopt(&pair[0], loop, sv[0])) != 0 || (rc = adopt(&pair[1], loop, sv[1])) != 0) {
        pair[0].fd = pair[1].fd = -1;
        close(sv[0]);
        close(sv[1]);
    }
    return rc;
}

/* Resume whoever waits on a readiness future, so it sees the close. */
static void wake(coro_future *f)
{
    if (!coro_future_done(f))
        coro_future_set_result(f, coro_int(CORO_READABLE | CORO_WRITABLE));
}

int coro_socket_close(coro_socket *s)
{
    int fd;
    if (!s)
        return CORO_EINVAL;
    if (s->fd < 0)
        return 0;
    if (s->w.loop) {
        wake(&s->w.rfut);
        wake(&s->w.wfut);
    }
    coro_fd_detach(&s->w);
    fd = s->fd;
    s->fd = -1;
    if (close(fd) < 0 && errno != EINTR)
        return -errno;
    return 0;
}

int coro_socket_fd(const coro_socket *s) { return s ? s->fd : -1; }

int coro_socket_bind(coro_socket *s, const coro_sockaddr *addr)
{
    if (!s || !addr || s->fd < 0)
        return CORO_EINVAL;
    return bind(s->fd, &addr->u.sa, addr->len) < 0 ? -errno : 0;
}

int coro_socket_listen(coro_socket *s, int backlog)
{
    if (!s || s->fd < 0)
        return CORO_EINVAL;
    return listen(s->fd, backlog > 0 ? backlog : SOMAXCONN) < 0 ? -errno : 0;
}

static int name_of(const coro_socket *s, coro_sockaddr *addr, int peer)
{
    if (!s || !addr || s->fd < 0)
        return CORO_EINVAL;
    memset(addr, 0, sizeof *addr);
    addr->len = sizeof addr->u;
    int rc = peer ? getpeername(s->fd, &addr->u.sa, &addr->len)
                  : getsockname(s->fd, &addr->u.sa, &addr->len);
    return rc < 0 ? -errno : 0;
}

int coro_socket_sockname(const coro_socket *s, coro_sockaddr *addr) { return name_of(s, addr, 0); }
int coro_socket_peername(const coro_socket *s, coro_sockaddr *addr) { return name_of(s, addr, 1); }

int coro_socket_accept(coro_socket *listener, coro_socket *out, coro_sockaddr *peer)
{
    coro_sockaddr tmp;
    coro_sockaddr *a = peer ? peer : &tmp;
    int fd, rc;
    if (out)
        out->fd = -1;
    if (!listener || !out)
        return CORO_EINVAL;
    if (listener->fd < 0 || !listener->w.loop)
        return CORO_ECLOSED;
    memset(a, 0, sizeof *a);
    a->len = sizeof a->u;
    do {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
        fd = accept4(listener->fd, &a->u.sa, &a->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        fd = accept(listener->fd, &a->u.sa, &a->len);
#endif
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return (int)io_result(fd);
#if !(defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC))
    if ((rc = set_flags(fd)) != 0) {
        close(fd);
        return rc;
    }
#endif
    if ((rc = adopt(out, listener->w.loop, fd)) != 0)
        close(fd);
    return rc;
}

ssize_t coro_socket_recv(coro_socket *s, void *buf, size_t len)
{
    ssize_t n;
    if (!s || (!buf && len))
        return CORO_EINVAL;
    if (s->fd < 0)
        return CORO_ECLOSED;
    do
        n = recv(s->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return io_result(n);
}

ssize_t coro_socket_send(coro_socket *s, const void *buf, size_t len)
{
    ssize_t n;
    if (!s || (!buf && len))
        return CORO_EINVAL;
    if (s->fd < 0)
        return CORO_ECLOSED;
    do
        n = send(s->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return io_result(n);
}

/* ------------------------------------------------------------------------ */
/* Socket operations                                                        */
/* ------------------------------------------------------------------------ */

/* connect(2), then (after writability) SO_ERROR: 1 connected, -EAGAIN
 * in progress, or -errno. */
static int connect_attempt(coro_sock_op *op)
{
    int fd = op->sock->fd, err = 0;
    socklen_t len = sizeof err;
    if (!op->started) {
        op->started = 1;
        if (connect(fd, &op->addr.u.sa, op->addr.len) == 0)
            return 1;
        if (errno == EINPROGRESS || errno == EINTR)
            return -EAGAIN;
        return -errno;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    if (err == EINPROGRESS || err == EALREADY)
        return -EAGAIN; /* woken early: keep waiting */
    return err ? -err : 1;
}

/* One attempt of `op`: 1 when it has finished (its result in op), -EAGAIN to
 * wait for op's direction, or -errno. */
static int attempt(coro_sock_op *op)
{
    ssize_t n;
    switch (op->kind) {
    case OP_RECV:
        n = coro_socket_recv(op->sock, op->buf.in, op->len);
        if (n < 0)
            return (int)n;
        op->done = (size_t)n;
        return 1;
    case OP_SEND:
    case OP_SENDALL:
        if (op->done == op->len)
            return 1;
        n = coro_socket_send(op->sock, (const char *)op->buf.out + op->done, op->len - op->done);
        if (n < 0)
            return (int)n;
        op->done += (size_t)n;
        /* a partial send means the socket is full: wait rather than retry */
        return op->kind == OP_SEND || op->done == op->len ? 1 : -EAGAIN;
    case OP_ACCEPT: {
        int rc = coro_socket_accept(op->sock, op->conn, op->peer);
        return rc == 0 ? 1 : rc;
    }
    default:
        return connect_attempt(op);
    }
}

static bool waits_writable(const coro_sock_op *op)
{
    return op->kind == OP_SEND || op->kind == OP_SENDALL || op->kind == OP_CONNECT;
}

static CORO_FN(sock_step)
{
    coro_sock_op *self = CORO_SELF(coro_sock_op);
    int rc;
    CORO_BEGIN();
    for (;;) {
        if (self->sock->fd < 0 || !self->sock->w.loop)
            CORO_RAISE(CORO_ECLOSED);
        rc = attempt(self);
        if (rc == 1)
            break;
        if (rc != -EAGAIN)
            CORO_RAISE(rc);
        CORO_AWAIT(waits_writable(self) ? coro_fd_wait_writable(&self->sock->w)
                                        : coro_fd_wait_readable(&self->sock->w));
    }
    if (self->kind == OP_ACCEPT)
        CORO_RETURN(coro_ptr(self->conn));
    if (self->kind == OP_CONNECT)
        CORO_RETURN(coro_int(0));
    CORO_RETURN(coro_int((int64_t)self->done));
    CORO_END();
}

static coro_frame *sock_op(coro_sock_op *op, coro_socket *s, int kind)
{
    coro_frame_init(&op->co, sock_step);
    op->sock = s;
    op->buf.in = NULL;
    op->len = op->done = 0;
    op->conn = NULL;
    op->peer = NULL;
    op->kind = kind;
    op->started = 0;
    return &op->co;
}

coro_frame *coro_sock_recv(coro_sock_op *op, coro_socket *s, void *buf, size_t len)
{
    if (!op || !s || !buf)
        return NULL;
    sock_op(op, s, OP_RECV);
    op->buf.in = buf;
    op->len = len;
    return &op->co;
}

static coro_frame *sock_send_op(coro_sock_op *op, coro_socket *s, const void *buf, size_t len,
                                int kind)
{
    if (!op || !s || !buf)
        return NULL;
    sock_op(op, s, kind);
    op->buf.out = buf;
    op->len = len;
    return &op->co;
}

coro_frame *coro_sock_send(coro_sock_op *op, coro_socket *s, const void *buf, size_t len)
{
    return sock_send_op(op, s, buf, len, OP_SEND);
}

coro_frame *coro_sock_sendall(coro_sock_op *op, coro_socket *s, const void *buf, size_t len)
{
    return sock_send_op(op, s, buf, len, OP_SENDALL);
}

coro_frame *coro_sock_accept(coro_sock_op *op, coro_socket *s, coro_socket *out,
                             coro_sockaddr *peer)
{
    if (!op || !s || !out)
        return NULL;
    sock_op(op, s, OP_ACCEPT);
    op->conn = out;
    op->peer = peer;
    return &op->co;
}

coro_frame *coro_sock_connect(coro_sock_op *op, coro_socket *s, const coro_sockaddr *addr)
{
    if (!op || !s || !addr || addr->len == 0 || addr->len > sizeof addr->u)
        return NULL;
    sock_op(op, s, OP_CONNECT);
    op->addr = *addr;
    return &op->co;
}

size_t coro_sock_op_count(const coro_sock_op *op) { return op ? op->done : 0; }
