/*
 * examples/echo_server.c - every byte back, on coro streams.
 *
 *   ./build/examples/echo_server [-c MAXCONN] [-i IDLE] [-l LOOPS] PORT [HOST]
 *
 *   HOST     where to listen: 127.0.0.1 (the default), any IPv4 or IPv6
 *            address or name ("::1", "localhost", "0.0.0.0"), or the path
 *            of a Unix socket (anything with a '/'; PORT is then ignored)
 *   PORT     0 picks a free one
 *   -c N     connections served at once (default: the fd limit less 32);
 *            the others wait in the kernel's accept queue
 *   -i S     seconds a connection may stay silent before it is dropped
 *            (default 60; 0: never)
 *   -l N     --loops N: N loops, one per thread, each with its own server
 *            on the same port (SO_REUSEPORT: the kernel spreads the
 *            connections; examples/loops.h); default 1. TCP only.
 *
 * asyncio's echo server, line for line:
 *
 *   async def handle(reader, writer):
 *       while data := await reader.read(65536):
 *           writer.write(data)
 *           await writer.drain()
 *       writer.close()
 *   server = await asyncio.start_server(handle, '127.0.0.1', port)
 *   loop.add_signal_handler(SIGINT, server.close)
 *   await server.serve_forever(); await server.wait_closed()
 *
 * One task per connection, which the server spawns and hands the stream.
 * No allocation per message: a read leaves its bytes in the stream's read
 * buffer (the data view), the write sends them from there (the stream copies
 * only what the socket does not take at once), and drain waits only while
 * the write buffer is above its high-water mark. An idle connection holds
 * no buffer (the stream gives them back; a bulk one after 0.2 s), and
 * the idle timeout (one timer per stream, coro_stream_options.idle_timeout)
 * drops a client that sends nothing and reads nothing. SIGINT or SIGTERM
 * stops it: the server closes, every connection is cancelled at its next
 * wait (its unsent output is dropped and the socket closed: a client that
 * stopped reading cannot hold the shutdown), and the program exits 0.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "coro.h"
#include "loops.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define READ_MAX 65536
#define IDLE_DEFAULT 60.0 /* seconds */
#define CAP_LOG_EVERY 10  /* seconds between two "at the cap" lines */

struct app {
    coro_frame co;
    loops *loops; /* every loop's app, and how they talk (examples/loops.h) */
    int index;    /* 0: the main thread's loop, which owns the signals */
    coro_loop *loop;
    const char *host; /* an address, a name, or a Unix path */
    int port;
    size_t cap;     /* max_connections */
    double idle;    /* the idle timeout */
    time_t cap_log; /* when "at the cap" was last said */
    coro_server srv;
    coro_start_server_op start;
    coro_server_op op;
    int signals;
    int err;
};

/* async def handle(reader, writer) */
struct echo {
    coro_frame co;
    coro_stream *s;
    coro_stream_op op;
    unsigned reads;
    int err;
};

static CORO_FN(echo_step)
{
    struct echo *self = CORO_SELF(struct echo);
    const char *data;
    size_t n;
    CORO_BEGIN();
    for (;;) {
        CORO_AWAIT_ERR(coro_stream_read(&self->op, self->s, READ_MAX), self->err);
        if (self->err || CORO_RESULT.u.i == 0)
            break; /* EOF, a reset, or a cancel: stopping */
        data = coro_stream_data(self->s, &n);
        self->err = coro_stream_write(self->s, data, n);
        if (self->err)
            break;
        CORO_AWAIT_ERR(coro_stream_drain(&self->op, self->s), self->err);
        if (self->err)
            break;
        /* a read that finds data waiting does not suspend: let the other
         * connections in now and then */
        if (++self->reads % 16 == 0)
            CORO_YIELD(coro_none());
    }
    /* returning closes the stream (the server does it, flushing first) */
    CORO_END();
}

/* start_server's client_connected_cb: the handler's frame, freed by the
 * server when it is done. */
static coro_frame *on_connect(coro_stream *s, void *arg)
{
    struct app *app = arg;
    if (coro_server_connections(&app->srv) >= app->cap &&
        time(NULL) - app->cap_log >= CAP_LOG_EVERY) {
        app->cap_log = time(NULL); /* said once, not once per client */
        fprintf(stderr, "echo_server: %zu connections, the cap: new clients wait\n", app->cap);
    }
    struct echo *e = CORO_FRAME_NEW(coro_stream_loop(s), struct echo, echo_step);
    if (!e)
        return NULL; /* refused: the server closes the connection */
    e->s = s;
    return &e->co;
}

/* "loop 2: " with --loops, nothing without. */
static const char *loop_name(const struct app *app)
{
    static _Thread_local char name[32];
    if (app->loops->n == 1)
        return "";
    snprintf(name, sizeof name, "loop %d: ", app->index);
    return name;
}

/* SIGINT, SIGTERM: close the server and cancel the connections (each one's
 * read, or drain, fails with CORO_ECANCELLED and its handler returns). */
static int on_signal(void *arg)
{
    struct app *app = arg;
    if (app->signals++ == 0)
        fprintf(stderr, "echo_server: %sstopping (%zu connection%s)\n", loop_name(app),
                coro_server_connections(&app->srv),
                coro_server_connections(&app->srv) == 1 ? "" : "s");
    coro_server_close(&app->srv);
    coro_server_cancel_clients(&app->srv);
    loops_forward(app->loops); /* loop 0: the other loops stop too */
    return 0;
}

/* Loops 1..N-1: serve on the port loop 0 got until loop 0 hands the stop
 * over, then wait for its leave to close (examples/loops.h). */
static CORO_FN(worker_step)
{
    struct app *self = CORO_SELF(struct app);
    loops *L = self->loops;
    coro_server_options opt;
    CORO_BEGIN();
    memset(&opt, 0, sizeof opt);
    opt.backlog = 1024;
    opt.max_connections = self->cap;
    opt.stream.idle_timeout = self->idle;
    opt.reuse_port = 1;
    CORO_AWAIT_ERR(
        coro_start_server(&self->start, &self->srv, self->host, L->port, on_connect, self, &opt),
        self->err);
    if (loops_ready(L, self->index, self->err) != 0) {
        coro_server_close(&self->srv);
        CORO_RETURN(coro_none()); /* loop 0 reports it and stops */
    }
    CORO_AWAIT_ERR(coro_server_serve_forever(&self->op, &self->srv), self->err);
    CORO_AWAIT_ERR(coro_server_wait_closed(&self->op, &self->srv), self->err);
    CORO_AWAIT(loops_done(L, self->index));
    CORO_END();
}

static int run_worker(void *arg)
{
    struct app *app = arg;
    coro_frame_init(&app->co, worker_step);
    return coro_run(&app->co, NULL, NULL);
}

static CORO_FN(app_step)
{
    struct app *self = CORO_SELF(struct app);
    coro_server_options opt;
    coro_sockaddr addr;
    char where[CORO_SOCKADDR_STRLEN];
    CORO_BEGIN();
    self->loop = coro_get_running_loop();
    memset(&opt, 0, sizeof opt);
    opt.backlog = 1024;
    opt.max_connections = self->cap;
    opt.stream.idle_timeout = self->idle;
    opt.reuse_port = self->loops->n > 1;
    if (strchr(self->host, '/'))
        CORO_AWAIT(
            coro_start_unix_server(&self->start, &self->srv, self->host, on_connect, self, &opt));
    else
        CORO_AWAIT(coro_start_server(&self->start, &self->srv, self->host, self->port, on_connect,
                                     self, &opt));
    self->err = coro_add_signal_handler(self->loop, SIGINT, on_signal, self);
    if (self->err == 0)
        self->err = coro_add_signal_handler(self->loop, SIGTERM, on_signal, self);
    if (self->err == 0)
        self->err = coro_server_sockname(&self->srv, 0, &addr);
    if (self->err) {
        coro_server_close(&self->srv);
        CORO_RAISE(self->err);
    }
    if (self->loops->n > 1 && (self->err = loops_start(self->loops, coro_sockaddr_port(&addr)))) {
        fprintf(stderr, "echo_server: no thread: %s\n", coro_strerror(self->err));
        on_signal(self); /* stop the loops already started */
    }
    if (self->loops->n == 1)
        printf("echo_server: serving on %s (Ctrl-C stops)\n",
               coro_sockaddr_format(&addr, where, sizeof where));
    else
        printf("echo_server: serving on %s, %d loops (Ctrl-C stops)\n",
               coro_sockaddr_format(&addr, where, sizeof where), self->loops->n);
    fflush(stdout);
    CORO_AWAIT(coro_server_serve_forever(&self->op, &self->srv));
    CORO_AWAIT(coro_server_wait_closed(&self->op, &self->srv));
    if (self->loops->n > 1) {
        CORO_AWAIT(loops_join(self->loops)); /* every other loop is done */
        loops_release(self->loops);
    }
    fprintf(stderr, "echo_server: stopped\n");
    CORO_END();
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-c MAXCONN] [-i IDLE] [-l LOOPS] PORT [HOST]\n"
            "  echo on HOST:PORT (HOST: 127.0.0.1 by default; an IPv4 or IPv6 address or\n"
            "  name, or a Unix socket path containing '/'; PORT 0 picks one)\n"
            "  -c  connections served at once (default: the fd limit less 32)\n"
            "  -i  seconds a silent connection is kept (default %g; 0: forever)\n"
            "  -l, --loops  loops, one per thread, sharing the port (1-%d; default 1;\n"
            "      TCP only)\n",
            argv0, IDLE_DEFAULT, LOOPS_MAX);
    return 2;
}

/* The default cap: what the descriptor limit allows, less a margin. */
static size_t default_cap(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000)
        return 100000;
    return rl.rlim_cur > 64 ? (size_t)rl.rlim_cur - 32 : 32;
}

/* The loops' apps: copies of `base`, one per loop (index 0 runs here). */
static int run_loops(const struct app *base, int nloops)
{
    static loops L;
    struct app *apps = calloc((size_t)nloops, sizeof *apps);
    void *ptrs[LOOPS_MAX];
    if (!apps) {
        fprintf(stderr, "echo_server: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nloops; i++) {
        apps[i] = *base;
        apps[i].loops = &L;
        apps[i].index = i;
        ptrs[i] = &apps[i];
    }
    loops_init(&L, nloops, ptrs, run_worker, on_signal);
    coro_frame_init(&apps[0].co, app_step);
    int rc = coro_run(&apps[0].co, NULL, NULL);
    int bad = loops_wait(&L); /* loop 0 returned after every other loop */
    free(apps);
    if (rc != 0) {
        fprintf(stderr, "echo_server: %s\n", coro_strerror(rc));
        return 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = { { "loops", required_argument, NULL, 'l' },
                                              { NULL, 0, NULL, 0 } };
    struct app app;
    char *end;
    long port;
    int c, nloops = 1;
    memset(&app, 0, sizeof app);
    app.cap = default_cap();
    app.idle = IDLE_DEFAULT;
    while ((c = getopt_long(argc, argv, "c:i:l:", longopts, NULL)) != -1) {
        if (c == 'c') {
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1)
                return usage(argv[0]);
            app.cap = (size_t)n;
        } else if (c == 'i') {
            app.idle = strtod(optarg, &end);
            if (*end != '\0' || !(app.idle >= 0))
                return usage(argv[0]);
        } else if (c == 'l') {
            if ((nloops = loops_arg(optarg)) < 0) {
                fprintf(stderr, "echo_server: --loops wants 1 to %d, not '%s'\n", LOOPS_MAX,
                        optarg);
                return usage(argv[0]);
            }
        } else {
            return usage(argv[0]);
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return usage(argv[0]);
    port = strtol(argv[optind], &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return usage(argv[0]);
    app.host = argc - optind == 2 ? argv[optind + 1] : "127.0.0.1";
    if (nloops > 1 && strchr(app.host, '/')) {
        fprintf(stderr, "echo_server: --loops needs TCP (a Unix socket has one listener)\n");
        return usage(argv[0]);
    }
    app.port = (int)port;
    return run_loops(&app, nloops);
}
