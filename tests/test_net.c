/*
 * tests/test_net.c - sockets on the loop (net.c): asyncio's loop.sock_*
 * calls and getaddrinfo.
 *
 * Covers: addresses (parse, format, Unix paths); getaddrinfo without the
 * resolver (numeric, localhost, wildcard, family filter) and through the
 * thread pool; recv/send/sendall/accept/connect over a socketpair, loopback
 * TCP on 127.0.0.1 and ::1 (skipped when the host has no IPv6) and a Unix
 * socket in /tmp; a recv that finds data ready completes without waiting;
 * refused connections; peer reset (SO_LINGER 0); EPIPE without SIGPIPE
 * death; cancellation mid-read and mid-sendall (the socket stays usable);
 * a timeout around a read (coro_wait_for); close waking a waiting read;
 * sendall of a large buffer to a slow reader; FD_CLOEXEC and O_NONBLOCK on
 * every descriptor the module makes; bad arguments.
 *
 * Every test closes its loop, asserts it closed cleanly, and checks that no
 * descriptor leaked.
 */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "coro.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- helpers ---- */

/* O_NONBLOCK and FD_CLOEXEC, as every fd coro makes must have. */
static void assert_fd_flags(int fd)
{
    assert_true(fd >= 0);
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0);
    assert_true(fl & FD_CLOEXEC);
    fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_true(fl & O_NONBLOCK);
}

typedef struct env {
    coro_loop loop;
    int fds_before;
} env;

static void env_open(env *e)
{
    e->fds_before = count_fds();
    assert_int_equal(coro_loop_init(&e->loop, NULL), 0);
}

static void env_close(env *e)
{
    assert_int_equal(coro_loop_close(&e->loop), 0);
    assert_int_equal(count_fds(), e->fds_before); /* nothing leaked */
}

static int run_task(coro_loop *loop, coro_task *t)
{
    return coro_loop_run_until_complete(loop, coro_task_future(t));
}

/* A listening TCP socket on ip:0; its address (with the port) in *addr. */
static int listen_on(coro_socket *ls, coro_loop *loop, const char *ip, coro_sockaddr *addr)
{
    coro_sockaddr a;
    assert_int_equal(coro_sockaddr_ip(&a, ip, 0), 0);
    int rc = coro_socket_open(ls, loop, a.u.sa.sa_family, SOCK_STREAM, 0);
    if (rc != 0)
        return rc;
    rc = coro_socket_bind(ls, &a);
    if (rc == 0)
        rc = coro_socket_listen(ls, 16);
    if (rc == 0)
        rc = coro_socket_sockname(ls, addr);
    if (rc != 0)
        coro_socket_close(ls);
    return rc;
}

/* ---- one socket operation as a task ---- */

enum { T_RECV, T_SEND, T_SENDALL, T_ACCEPT, T_CONNECT, T_RECV_TIMEOUT };

struct sock_task {
    coro_frame co;
    int kind;
    coro_socket *s;
    void *buf;
    size_t len;
    coro_socket *out;
    coro_sockaddr addr, peer;
    double timeout;
    coro_sock_op op;
    coro_wait_for_op wf;
    int err;
    int64_t result;
    size_t count;
};

static coro_frame *sock_task_op(struct sock_task *t)
{
    switch (t->kind) {
    case T_RECV:
        return coro_sock_recv(&t->op, t->s, t->buf, t->len);
    case T_SEND:
        return coro_sock_send(&t->op, t->s, t->buf, t->len);
    case T_SENDALL:
        return coro_sock_sendall(&t->op, t->s, t->buf, t->len);
    case T_ACCEPT:
        return coro_sock_accept(&t->op, t->s, t->out, &t->peer);
    case T_CONNECT:
        return coro_sock_connect(&t->op, t->s, &t->addr);
    default:
        return coro_wait_for(&t->wf, t->timeout, coro_sock_recv(&t->op, t->s, t->buf, t->len));
    }
}

static CORO_FN(sock_task_step)
{
    struct sock_task *self = CORO_SELF(struct sock_task);
    CORO_BEGIN();
    CORO_AWAIT_ERR(sock_task_op(self), self->err);
    if (self->err == 0)
        self->result = CORO_RESULT.tag == CORO_PTR ? 1 : CORO_RESULT.u.i;
    self->count = coro_sock_op_count(&self->op);
    CORO_RETURN(coro_int(self->err));
    CORO_END();
}

static void sock_task_init(struct sock_task *t, int kind, coro_socket *s, void *buf, size_t len)
{
    memset(t, 0, sizeof *t);
    coro_frame_init(&t->co, sock_task_step);
    t->kind = kind;
    t->s = s;
    t->buf = buf;
    t->len = len;
    t->result = -1;
}

/* Run one operation to its end; returns its error (0 on success). */
static int run_op(coro_loop *loop, struct sock_task *st)
{
    coro_task t;
    assert_int_equal(coro_task_init(&t, loop, &st->co), 0);
    assert_int_equal(run_task(loop, &t), 0);
    return st->err;
}


/* Connect a TCP client to a fresh listener on `ip`: client, server side. */
static int tcp_pair(coro_loop *loop, const char *ip, coro_socket *cli, coro_socket *srv)
{
    coro_socket ls;
    coro_sockaddr addr;
    struct sock_task acc, con;
    coro_task ta, tc;
    int rc = listen_on(&ls, loop, ip, &addr);
    if (rc != 0)
        return rc;
    assert_int_equal(coro_socket_open(cli, loop, addr.u.sa.sa_family, SOCK_STREAM, 0), 0);
    sock_task_init(&acc, T_ACCEPT, &ls, NULL, 0);
    acc.out = srv;
    sock_task_init(&con, T_CONNECT, cli, NULL, 0);
    con.addr = addr;
    assert_int_equal(coro_task_init(&ta, loop, &acc.co), 0);
    assert_int_equal(coro_task_init(&tc, loop, &con.co), 0);
    assert_int_equal(run_task(loop, &ta), 0);
    assert_int_equal(run_task(loop, &tc), 0);
    assert_int_equal(acc.err, 0);
    assert_int_equal(con.err, 0);
    assert_fd_flags(coro_socket_fd(&ls));
    assert_fd_flags(coro_socket_fd(cli));
    assert_fd_flags(coro_socket_fd(srv));
    /* the peer address accept reported is the client's own */
    coro_sockaddr mine;
    char a[CORO_SOCKADDR_STRLEN], b[CORO_SOCKADDR_STRLEN];
    assert_int_equal(coro_socket_sockname(cli, &mine), 0);
    assert_string_equal(coro_sockaddr_format(&acc.peer, a, sizeof a),
                        coro_sockaddr_format(&mine, b, sizeof b));
    assert_int_equal(coro_socket_close(&ls), 0);
    return 0;
}

/* A ping-pong over a connected pair: a -> b, then b -> a. */
static void exchange(coro_loop *loop, coro_socket *a, coro_socket *b)
{
    char in[64];
    struct sock_task snd, rcv;
    coro_task ts, tr;
    sock_task_init(&rcv, T_RECV, b, in, sizeof in);
    sock_task_init(&snd, T_SENDALL, a, "ping", 4);
    assert_int_equal(coro_task_init(&tr, loop, &rcv.co), 0); /* waits first */
    assert_int_equal(coro_task_init(&ts, loop, &snd.co), 0);
    assert_int_equal(run_task(loop, &tr), 0);
    assert_int_equal(run_task(loop, &ts), 0);
    assert_int_equal(rcv.err, 0);
    assert_int_equal(rcv.result, 4);
    assert_memory_equal(in, "ping", 4);
    assert_int_equal(snd.result, 4);
    sock_task_init(&snd, T_SEND, b, "pong!", 5);
    assert_int_equal(run_op(loop, &snd), 0);
    assert_int_equal(snd.result, 5);
    sock_task_init(&rcv, T_RECV, a, in, sizeof in);
    assert_int_equal(run_op(loop, &rcv), 0);
    assert_int_equal(rcv.result, 5);
    assert_memory_equal(in, "pong!", 5);
}

/* ---- addresses ---- */

static void test_sockaddr(void **state)
{
    (void)state;
    coro_sockaddr a;
    char buf[CORO_SOCKADDR_STRLEN];

    assert_int_equal(coro_sockaddr_ip(&a, "127.0.0.1", 8080), 0);
    assert_int_equal(a.u.sa.sa_family, AF_INET);
    assert_int_equal(coro_sockaddr_port(&a), 8080);
    assert_string_equal(coro_sockaddr_format(&a, buf, sizeof buf), "127.0.0.1:8080");
    assert_int_equal(coro_sockaddr_ip(&a, "::1", 443), 0);
    assert_int_equal(a.u.sa.sa_family, AF_INET6);
    assert_string_equal(coro_sockaddr_format(&a, buf, sizeof buf), "[::1]:443");
    assert_int_equal(coro_sockaddr_ip(&a, "localhost", 1), CORO_EINVAL); /* never resolves */
    assert_int_equal(coro_sockaddr_ip(&a, "1.2.3.4", 65536), CORO_EINVAL);
    assert_int_equal(coro_sockaddr_ip(&a, "1.2.3.4", -1), CORO_EINVAL);
    assert_int_equal(coro_sockaddr_ip(NULL, "1.2.3.4", 1), CORO_EINVAL);
    assert_int_equal(coro_sockaddr_unix(&a, "/tmp/x.sock"), 0);
    assert_string_equal(coro_sockaddr_format(&a, buf, sizeof buf), "/tmp/x.sock");
    assert_int_equal(coro_sockaddr_port(&a), -1);
    char long_path[200];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    assert_int_equal(coro_sockaddr_unix(&a, long_path), CORO_EINVAL);
    assert_int_equal(coro_sockaddr_unix(&a, ""), CORO_EINVAL);
    assert_string_equal(coro_sockaddr_format(NULL, buf, sizeof buf), "");
    /* truncation keeps the string terminated */
    assert_int_equal(coro_sockaddr_ip(&a, "127.0.0.1", 8080), 0);
    assert_string_equal(coro_sockaddr_format(&a, buf, 4), "127");
}

/* ---- getaddrinfo ---- */

struct gai_task {
    coro_frame co;
    const char *host;
    int port, family, flags;
    coro_sockaddr addrs[4];
    coro_getaddrinfo_op op;
    int err;
    int64_t n;
};

static CORO_FN(gai_task_step)
{
    struct gai_task *self = CORO_SELF(struct gai_task);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_getaddrinfo(&self->op, self->host, self->port, self->family, self->flags,
                                    self->addrs, 4),
                   self->err);
    if (self->err == 0)
        self->n = CORO_RESULT.u.i;
    CORO_END();
}

static int resolve(coro_loop *loop, struct gai_task *g, const char *host, int port, int family,
                   int flags)
{
    coro_task t;
    memset(g, 0, sizeof *g);
    coro_frame_init(&g->co, gai_task_step);
    g->host = host;
    g->port = port;
    g->family = family;
    g->flags = flags;
    assert_int_equal(coro_task_init(&t, loop, &g->co), 0);
    assert_int_equal(run_task(loop, &t), 0);
    return g->err;
}

static const char *fmt(const coro_sockaddr *a)
{
    static char buf[4][CORO_SOCKADDR_STRLEN];
    static int i;
    i = (i + 1) % 4;
    return coro_sockaddr_format(a, buf[i], sizeof buf[i]);
}

static void test_getaddrinfo(void **state)
{
    (void)state;
    env e;
    struct gai_task g;
    env_open(&e);

    assert_int_equal(resolve(&e.loop, &g, "127.0.0.1", 80, AF_UNSPEC, 0), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(fmt(&g.addrs[0]), "127.0.0.1:80");
    assert_int_equal(resolve(&e.loop, &g, "localhost", 81, AF_UNSPEC, 0), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(fmt(&g.addrs[0]), "127.0.0.1:81");
    assert_string_equal(fmt(&g.addrs[1]), "[::1]:81");
    assert_int_equal(resolve(&e.loop, &g, "localhost", 82, AF_INET6, 0), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(fmt(&g.addrs[0]), "[::1]:82");
    assert_int_equal(resolve(&e.loop, &g, NULL, 83, AF_UNSPEC, AI_PASSIVE), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(fmt(&g.addrs[0]), "0.0.0.0:83");
    assert_string_equal(fmt(&g.addrs[1]), "[::]:83");
    assert_int_equal(resolve(&e.loop, &g, NULL, 84, AF_INET, 0), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(fmt(&g.addrs[0]), "127.0.0.1:84");
    /* a numeric address of the wrong family */
    assert_int_equal(resolve(&e.loop, &g, "::1", 85, AF_INET, 0), CORO_EADDRINFO);
    assert_int_equal(coro_getaddrinfo_error(&g.op), EAI_FAMILY);
    /* not for inet_pton: getaddrinfo(3) on the pool (no DNS involved) */
    assert_int_equal(resolve(&e.loop, &g, "127.1", 86, AF_INET, 0), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(fmt(&g.addrs[0]), "127.0.0.1:86");
    assert_int_equal(coro_getaddrinfo_error(&g.op), 0);

    /* bad arguments: the init refuses, the await fails with EINVAL */
    coro_getaddrinfo_op op;
    coro_sockaddr a;
    assert_null(coro_getaddrinfo(&op, "x", 70000, AF_UNSPEC, 0, &a, 1));
    assert_null(coro_getaddrinfo(&op, "x", 1, AF_UNIX, 0, &a, 1));
    assert_null(coro_getaddrinfo(&op, "x", 1, AF_UNSPEC, 0, &a, 0));
    assert_null(coro_getaddrinfo(&op, "x", 1, AF_UNSPEC, 0, NULL, 1));
    assert_null(coro_getaddrinfo(NULL, "x", 1, AF_UNSPEC, 0, &a, 1));
    env_close(&e);
}


/* A lookup on the pool, cancelled while it runs: the lookup's memory is
 * given back once the thread is done with it, and so after a normal one. */
static void test_getaddrinfo_cancel(void **state)
{
    (void)state;
    talloc ta = { 0 };
    coro_loop_options o;
    coro_loop loop;
    struct gai_task g;
    coro_task t;
    memset(&o, 0, sizeof o);
    o.alloc = talloc_fn;
    o.alloc_ud = &ta;
    o.debug = -1;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(resolve(&loop, &g, "127.1", 1, AF_INET, 0), 0); /* the pool starts */
    run_for(&loop, 0.001);                                           /* the timer heap too */
    size_t base = ta.live;
    assert_int_equal(resolve(&loop, &g, "127.1", 2, AF_INET, 0), 0);
    assert_int_equal(ta.live, base);
    for (int i = 0; i < 20; i++) {
        memset(&g, 0, sizeof g);
        coro_frame_init(&g.co, gai_task_step);
        g.host = "127.0.1";
        g.port = 3;
        g.family = AF_INET;
        assert_int_equal(coro_task_init(&t, &loop, &g.co), 0);
        coro_loop_stop(&loop); /* one pass: the lookup is submitted */
        assert_int_equal(coro_loop_run_forever(&loop), 0);
        assert_false(coro_task_done(&t));
        coro_task_cancel(&t);
        assert_int_equal(run_task(&loop, &t), 0);
        assert_int_equal(g.err, CORO_ECANCELLED);
    }
    for (int i = 0; i < 100 && ta.live != base; i++)
        run_for(&loop, 0.005); /* the threads finish, the discards run */
    assert_int_equal(ta.live, base);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
    assert_int_equal(ta.bad_osize, 0); /* every free passed its size */
}

/* ---- socket operations ---- */

static void test_socketpair_ops(void **state)
{
    (void)state;
    env e;
    coro_socket sp[2];
    env_open(&e);
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    assert_fd_flags(coro_socket_fd(&sp[0]));
    assert_fd_flags(coro_socket_fd(&sp[1]));
    exchange(&e.loop, &sp[0], &sp[1]);
    /* the non-blocking attempts */
    char nb[8];
    assert_int_equal(coro_socket_recv(&sp[1], nb, sizeof nb), -EAGAIN);
    assert_int_equal(coro_socket_send(&sp[0], "abc", 3), 3);
    assert_int_equal(coro_socket_recv(&sp[1], nb, sizeof nb), 3);
    assert_memory_equal(nb, "abc", 3);
    assert_int_equal(coro_socket_recv(NULL, nb, 1), CORO_EINVAL);
    assert_int_equal(coro_socket_send(&sp[0], NULL, 1), CORO_EINVAL);
    /* EOF: recv gives 0 */
    char c;
    struct sock_task rcv;
    assert_int_equal(shutdown(coro_socket_fd(&sp[0]), SHUT_WR), 0);
    sock_task_init(&rcv, T_RECV, &sp[1], &c, 1);
    assert_int_equal(run_op(&e.loop, &rcv), 0);
    assert_int_equal(rcv.result, 0);
    assert_int_equal(coro_socket_close(&sp[0]), 0);
    assert_int_equal(coro_socket_close(&sp[1]), 0);
    assert_int_equal(coro_socket_close(&sp[1]), 0); /* twice is fine */
    assert_int_equal(coro_socket_fd(&sp[1]), -1);
    assert_int_equal(coro_socket_recv(&sp[1], nb, 1), CORO_ECLOSED);
    assert_int_equal(coro_socket_send(&sp[1], "x", 1), CORO_ECLOSED);
    env_close(&e);
}

/* Data already there: the recv completes in the task's first step, and the
 * socket is never registered with the selector. */
static void test_recv_ready_no_wait(void **state)
{
    (void)state;
    env e;
    coro_socket sp[2];
    char in[16];
    struct sock_task rcv;
    coro_task t;
    env_open(&e);
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    assert_int_equal(write(coro_socket_fd(&sp[0]), "ready", 5), 5);
    sock_task_init(&rcv, T_RECV, &sp[1], in, sizeof in);
    assert_int_equal(coro_task_init(&t, &e.loop, &rcv.co), 0);
    coro_loop_stop(&e.loop); /* exactly one pass */
    assert_int_equal(coro_loop_run_forever(&e.loop), 0);
    assert_true(coro_task_done(&t));
    assert_int_equal(rcv.result, 5);
    assert_int_equal(sp[1].w.armed, 0); /* no wait, no epoll_ctl */
    assert_int_equal(e.loop.nwatched, 0);
    coro_socket_close(&sp[0]);
    coro_socket_close(&sp[1]);
    env_close(&e);
}

static void test_tcp_ipv4(void **state)
{
    (void)state;
    env e;
    coro_socket c, s;
    env_open(&e);
    assert_int_equal(tcp_pair(&e.loop, "127.0.0.1", &c, &s), 0);
    exchange(&e.loop, &c, &s);
    coro_sockaddr pa;
    assert_int_equal(coro_socket_peername(&c, &pa), 0);
    assert_int_equal(pa.u.sa.sa_family, AF_INET);
    coro_socket_close(&c);
    coro_socket_close(&s);
    env_close(&e);
}

static void test_tcp_ipv6(void **state)
{
    (void)state;
    env e;
    coro_socket c, s;
    env_open(&e);
    int rc = tcp_pair(&e.loop, "::1", &c, &s);
    if (rc != 0) {
        env_close(&e);
        print_message("no IPv6 loopback here (%s): skipped\n", coro_strerror(rc));
        skip();
    }
    exchange(&e.loop, &c, &s);
    coro_socket_close(&c);
    coro_socket_close(&s);
    env_close(&e);
}

static void test_unix_socket(void **state)
{
    (void)state;
    env e;
    char path[64];
    coro_socket ls, c, s;
    coro_sockaddr a;
    struct sock_task acc, con;
    coro_task ta, tc;
    env_open(&e);
    snprintf(path, sizeof path, "/tmp/coro-test-net-%ld.sock", (long)getpid());
    unlink(path);
    assert_int_equal(coro_sockaddr_unix(&a, path), 0);
    assert_int_equal(coro_socket_open(&ls, &e.loop, AF_UNIX, SOCK_STREAM, 0), 0);
    assert_int_equal(coro_socket_bind(&ls, &a), 0);
    assert_int_equal(coro_socket_listen(&ls, 0), 0);
    assert_int_equal(coro_socket_open(&c, &e.loop, AF_UNIX, SOCK_STREAM, 0), 0);
    sock_task_init(&acc, T_ACCEPT, &ls, NULL, 0);
    acc.out = &s;
    sock_task_init(&con, T_CONNECT, &c, NULL, 0);
    con.addr = a;
    assert_int_equal(coro_task_init(&ta, &e.loop, &acc.co), 0);
    assert_int_equal(coro_task_init(&tc, &e.loop, &con.co), 0);
    assert_int_equal(run_task(&e.loop, &ta), 0);
    assert_int_equal(run_task(&e.loop, &tc), 0);
    assert_int_equal(acc.err, 0);
    assert_int_equal(con.err, 0);
    assert_fd_flags(coro_socket_fd(&s));
    exchange(&e.loop, &c, &s);
    coro_socket_close(&c);
    coro_socket_close(&s);
    coro_socket_close(&ls);
    unlink(path);
    env_close(&e);
}

static void test_connect_refused(void **state)
{
    (void)state;
    env e;
    coro_socket bound, c;
    coro_sockaddr a;
    struct sock_task con;
    env_open(&e);
    /* a port that is bound but not listening refuses */
    assert_int_equal(coro_sockaddr_ip(&a, "127.0.0.1", 0), 0);
    assert_int_equal(coro_socket_open(&bound, &e.loop, AF_INET, SOCK_STREAM, 0), 0);
    assert_int_equal(coro_socket_bind(&bound, &a), 0);
    assert_int_equal(coro_socket_sockname(&bound, &a), 0);
    assert_int_equal(coro_socket_open(&c, &e.loop, AF_INET, SOCK_STREAM, 0), 0);
    sock_task_init(&con, T_CONNECT, &c, NULL, 0);
    con.addr = a;
    assert_int_equal(run_op(&e.loop, &con), -ECONNREFUSED);
    coro_socket_close(&c);
    coro_socket_close(&bound);
    env_close(&e);
}

/* The peer closes with SO_LINGER 0 (a RST) while a recv waits. */
static void test_peer_reset(void **state)
{
    (void)state;
    env e;
    coro_socket c, s;
    char in[16];
    struct sock_task rcv;
    coro_task t;
    struct linger lg = { 1, 0 };
    env_open(&e);
    assert_int_equal(tcp_pair(&e.loop, "127.0.0.1", &c, &s), 0);
    sock_task_init(&rcv, T_RECV, &c, in, sizeof in);
    assert_int_equal(coro_task_init(&t, &e.loop, &rcv.co), 0);
    run_for(&e.loop, 0.01);
    assert_false(coro_task_done(&t)); /* waiting for data */
    assert_int_equal(setsockopt(coro_socket_fd(&s), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    coro_socket_close(&s);
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(rcv.err, -ECONNRESET);
    /* sending on the reset connection fails too, and nobody dies of SIGPIPE */
    struct sock_task snd;
    sock_task_init(&snd, T_SENDALL, &c, "x", 1);
    int rc = run_op(&e.loop, &snd);
    assert_true(rc == -EPIPE || rc == -ECONNRESET);
    coro_socket_close(&c);
    env_close(&e);
}

static void test_epipe_no_sigpipe(void **state)
{
    (void)state;
    env e;
    coro_socket sp[2];
    struct sock_task snd;
    void (*old)(int) = signal(SIGPIPE, SIG_DFL); /* SIGPIPE would kill us */
    env_open(&e);
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    coro_socket_close(&sp[1]);
    sock_task_init(&snd, T_SENDALL, &sp[0], "data", 4);
    assert_int_equal(run_op(&e.loop, &snd), -EPIPE);
    sock_task_init(&snd, T_SEND, &sp[0], "data", 4);
    assert_int_equal(run_op(&e.loop, &snd), -EPIPE);
    coro_socket_close(&sp[0]);
    env_close(&e);
    signal(SIGPIPE, old);
}

static void test_cancel_mid_read(void **state)
{
    (void)state;
    env e;
    coro_socket sp[2];
    char in[16];
    struct sock_task rcv;
    coro_task t;
    env_open(&e);
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    sock_task_init(&rcv, T_RECV, &sp[1], in, sizeof in);
    assert_int_equal(coro_task_init(&t, &e.loop, &rcv.co), 0);
    run_for(&e.loop, 0.01);
    assert_false(coro_task_done(&t));
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(rcv.err, CORO_ECANCELLED);
    /* the socket still works: a new recv gets what comes next */
    assert_int_equal(write(coro_socket_fd(&sp[0]), "after", 5), 5);
    sock_task_init(&rcv, T_RECV, &sp[1], in, sizeof in);
    assert_int_equal(run_op(&e.loop, &rcv), 0);
    assert_int_equal(rcv.result, 5);
    assert_memory_equal(in, "after", 5);
    coro_socket_close(&sp[0]);
    coro_socket_close(&sp[1]);
    env_close(&e);
}

static void test_cancel_mid_sendall(void **state)
{
    (void)state;
    env e;
    coro_socket sp[2];
    size_t len = 4u << 20;
    char *big = calloc(1, len);
    struct sock_task snd;
    coro_task t;
    assert_non_null(big);
    env_open(&e);
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    sock_task_init(&snd, T_SENDALL, &sp[0], big, len);
    assert_int_equal(coro_task_init(&t, &e.loop, &snd.co), 0);
    run_for(&e.loop, 0.01); /* nobody reads: sendall waits for room */
    assert_false(coro_task_done(&t));
    coro_task_cancel(&t);
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(snd.err, CORO_ECANCELLED);
    assert_true(snd.count > 0 && snd.count < len); /* how much went out */
    coro_socket_close(&sp[0]);
    coro_socket_close(&sp[1]);
    env_close(&e);
    free(big);
}

static void test_recv_timeout(void **state)
{
    (void)state;
    env e;
    coro_socket sp[2];
    char in[16];
    struct sock_task rcv;
    env_open(&e);
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    sock_task_init(&rcv, T_RECV_TIMEOUT, &sp[1], in, sizeof in);
    rcv.timeout = 0.02;
    int64_t t0 = coro_loop_time_ns(&e.loop);
    assert_int_equal(run_op(&e.loop, &rcv), CORO_ETIMEDOUT);
    assert_true(coro_loop_time_ns(&e.loop) - t0 >= 20 * 1000000LL);
    /* with data there, the same read returns it */
    assert_int_equal(write(coro_socket_fd(&sp[0]), "x", 1), 1);
    sock_task_init(&rcv, T_RECV_TIMEOUT, &sp[1], in, sizeof in);
    rcv.timeout = 1;
    assert_int_equal(run_op(&e.loop, &rcv), 0);
    assert_int_equal(rcv.result, 1);
    coro_socket_close(&sp[0]);
    coro_socket_close(&sp[1]);
    env_close(&e);
}

static int cb_close_socket(void *arg) { return coro_socket_close(arg); }

static void test_close_wakes_waiter(void **state)
{
    (void)state;
    env e;
    coro_socket sp[2];
    char in[16];
    struct sock_task rcv;
    coro_task t;
    env_open(&e);
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    sock_task_init(&rcv, T_RECV, &sp[1], in, sizeof in);
    assert_int_equal(coro_task_init(&t, &e.loop, &rcv.co), 0);
    assert_int_equal(coro_call_later(&e.loop, NULL, 0.01, cb_close_socket, &sp[1]), 0);
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(rcv.err, CORO_ECLOSED);
    assert_int_equal(e.loop.nwatched, 0);
    /* operations on a closed socket fail at once */
    sock_task_init(&rcv, T_RECV, &sp[1], in, sizeof in);
    assert_int_equal(run_op(&e.loop, &rcv), CORO_ECLOSED);
    coro_socket_close(&sp[0]);
    env_close(&e);
}

/* A slow reader drains 2 MiB in small pieces while sendall waits for room. */
struct slow_reader {
    coro_frame co;
    coro_socket *s;
    coro_sock_op op;
    unsigned char buf[8192];
    size_t total, want;
    int bad, reads;
};

static CORO_FN(slow_reader_step)
{
    struct slow_reader *self = CORO_SELF(struct slow_reader);
    CORO_BEGIN();
    while (self->total < self->want) {
        CORO_AWAIT(coro_sock_recv(&self->op, self->s, self->buf, sizeof self->buf));
        if (CORO_RESULT.u.i == 0)
            break;
        for (int64_t i = 0; i < CORO_RESULT.u.i; i++)
            if (self->buf[i] != (unsigned char)((self->total + (size_t)i) * 7u))
                self->bad++;
        self->total += (size_t)CORO_RESULT.u.i;
        if (++self->reads % 16 == 0)
            CORO_SLEEP(0.001);
    }
    CORO_END();
}

static void test_sendall_large_slow_reader(void **state)
{
    (void)state;
    env e;
    coro_socket c, s;
    size_t len = 2u << 20;
    unsigned char *big = malloc(len);
    struct sock_task snd;
    struct slow_reader rd;
    coro_task ts, tr;
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (unsigned char)(i * 7u);
    env_open(&e);
    assert_int_equal(tcp_pair(&e.loop, "127.0.0.1", &c, &s), 0);
    int small = 64 * 1024; /* kernel buffers far below the 2 MiB */
    setsockopt(coro_socket_fd(&c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(coro_socket_fd(&s), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sock_task_init(&snd, T_SENDALL, &c, big, len);
    memset(&rd, 0, sizeof rd);
    coro_frame_init(&rd.co, slow_reader_step);
    rd.s = &s;
    rd.want = len;
    assert_int_equal(coro_task_init(&ts, &e.loop, &snd.co), 0);
    run_for(&e.loop, 0.01);
    assert_false(coro_task_done(&ts)); /* nobody reads yet: sendall waits for room */
    assert_true(snd.op.done > 0 && snd.op.done < len);
    assert_int_equal(coro_task_init(&tr, &e.loop, &rd.co), 0);
    assert_int_equal(run_task(&e.loop, &ts), 0);
    assert_int_equal(run_task(&e.loop, &tr), 0);
    assert_int_equal(snd.err, 0);
    assert_int_equal(snd.result, (int64_t)len);
    assert_int_equal(rd.total, len);
    assert_int_equal(rd.bad, 0);
    coro_socket_close(&c);
    coro_socket_close(&s);
    env_close(&e);
    free(big);
}

static void test_bad_args(void **state)
{
    (void)state;
    env e;
    coro_sock_op op;
    coro_socket s;
    char b;
    coro_sockaddr a;
    env_open(&e);
    assert_null(coro_sock_recv(NULL, &s, &b, 1));
    assert_null(coro_sock_recv(&op, NULL, &b, 1));
    assert_null(coro_sock_recv(&op, &s, NULL, 1));
    assert_null(coro_sock_send(&op, &s, NULL, 1));
    assert_null(coro_sock_sendall(&op, NULL, &b, 1));
    assert_null(coro_sock_accept(&op, &s, NULL, NULL));
    assert_null(coro_sock_connect(&op, &s, NULL));
    assert_int_equal(coro_sock_op_count(NULL), 0);
    assert_int_equal(coro_socket_open(NULL, &e.loop, AF_INET, SOCK_STREAM, 0), CORO_EINVAL);
    assert_int_equal(coro_socket_open(&s, NULL, AF_INET, SOCK_STREAM, 0), CORO_EINVAL);
    assert_int_equal(coro_socket_open(&s, &e.loop, 12345, SOCK_STREAM, 0), -EAFNOSUPPORT);
    assert_int_equal(coro_socket_fd(&s), -1);
    assert_int_equal(coro_socket_wrap(&s, &e.loop, -1), CORO_EINVAL);
    assert_int_equal(coro_socket_close(NULL), CORO_EINVAL);
    assert_int_equal(coro_socket_bind(&s, NULL), CORO_EINVAL);
    assert_int_equal(coro_socket_accept(NULL, &s, NULL), CORO_EINVAL);
    assert_int_equal(coro_socketpair(NULL, &e.loop), CORO_EINVAL);
    /* accept on a socket that is not listening */
    coro_socket sp[2];
    assert_int_equal(coro_socketpair(sp, &e.loop), 0);
    assert_int_equal(coro_socket_accept(&sp[0], &s, &a), -EINVAL);
    coro_socket_close(&sp[0]);
    coro_socket_close(&sp[1]);
    assert_int_equal(coro_socket_accept(&sp[0], &s, &a), CORO_ECLOSED);
    /* wrap adopts an fd: flags set, closed by close */
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(coro_socket_wrap(&s, &e.loop, fds[0]), 0);
    assert_fd_flags(fds[0]);
    coro_socket_close(&s);
    assert_int_equal(fcntl(fds[0], F_GETFD), -1);
    close(fds[1]);
    env_close(&e);
    /* after the loop closed */
    assert_int_equal(coro_socket_open(&s, &e.loop, AF_INET, SOCK_STREAM, 0), CORO_ECLOSED);
}

/* Closing a socket after its loop is closed still closes the fd. */
static void test_close_after_loop(void **state)
{
    (void)state;
    coro_loop loop;
    coro_socket sp[2];
    int before = count_fds();
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_socketpair(sp, &loop), 0);
    exchange(&loop, &sp[0], &sp[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(coro_socket_close(&sp[0]), 0);
    assert_int_equal(coro_socket_close(&sp[1]), 0);
    assert_int_equal(count_fds(), before);
}

/* A NULL loop is the running loop for sockets and servers too; outside a
 * running loop it is CORO_EINVAL. */
struct null_net {
    coro_frame co;
    coro_socket sp[2];
    coro_socket s;
    int rc_pair, rc_open;
};

static CORO_FN(null_net_step)
{
    struct null_net *self = CORO_SELF(struct null_net);
    CORO_BEGIN();
    self->rc_pair = coro_socketpair(self->sp, NULL);
    self->rc_open = coro_socket_open(&self->s, NULL, AF_INET, SOCK_STREAM, 0);
    if (self->rc_pair == 0) {
        coro_socket_close(&self->sp[0]);
        coro_socket_close(&self->sp[1]);
    }
    if (self->rc_open == 0)
        coro_socket_close(&self->s);
    CORO_END();
}

static void test_null_loop_sockets(void **state)
{
    (void)state;
    struct null_net m;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, null_net_step);
    assert_int_equal(coro_run(&m.co, NULL, NULL), 0);
    assert_int_equal(m.rc_pair, 0);
    assert_int_equal(m.rc_open, 0);
    coro_socket sp[2];
    assert_int_equal(coro_socketpair(sp, NULL), CORO_EINVAL);
    assert_int_equal(coro_socket_open(&m.s, NULL, AF_INET, SOCK_STREAM, 0), CORO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_loop_sockets),
        cmocka_unit_test(test_sockaddr),           cmocka_unit_test(test_getaddrinfo),
        cmocka_unit_test(test_getaddrinfo_cancel), cmocka_unit_test(test_socketpair_ops),
        cmocka_unit_test(test_recv_ready_no_wait), cmocka_unit_test(test_tcp_ipv4),
        cmocka_unit_test(test_tcp_ipv6),           cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_connect_refused),    cmocka_unit_test(test_peer_reset),
        cmocka_unit_test(test_epipe_no_sigpipe),   cmocka_unit_test(test_cancel_mid_read),
        cmocka_unit_test(test_cancel_mid_sendall), cmocka_unit_test(test_recv_timeout),
        cmocka_unit_test(test_close_wakes_waiter), cmocka_unit_test(test_sendall_large_slow_reader),
        cmocka_unit_test(test_bad_args),           cmocka_unit_test(test_close_after_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
