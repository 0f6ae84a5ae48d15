/*
 * examples/echo_server.c - every byte back, on coro streams.
 *
 *   ./build/examples/echo_server PORT      serve on 127.0.0.1:PORT (0: any free port)
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
 * the write buffer is above its high-water mark. SIGINT or SIGTERM stops it:
 * the server closes, every connection is cancelled at its next wait (its
 * unsent output is dropped and the socket closed: a client that stopped
 * reading cannot hold the shutdown), and the program exits 0.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "coro.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_MAX 65536

struct app {
    coro_frame co;
    coro_loop *loop;
    int port;
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
    (void)arg;
    struct echo *e = CORO_FRAME_NEW(coro_stream_loop(s), struct echo, echo_step);
    if (!e)
        return NULL; /* refused: the server closes the connection */
    e->s = s;
    return &e->co;
}

/* SIGINT, SIGTERM: close the server and cancel the connections (each one's
 * read, or drain, fails with CORO_ECANCELLED and its handler returns). */
static int on_signal(void *arg)
{
    struct app *app = arg;
    if (app->signals++ == 0)
        fprintf(stderr, "echo_server: stopping (%zu connection%s)\n",
                coro_server_connections(&app->srv),
                coro_server_connections(&app->srv) == 1 ? "" : "s");
    coro_server_close(&app->srv);
    coro_server_cancel_clients(&app->srv);
    return 0;
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
    CORO_AWAIT(coro_start_server(&self->start, &self->srv, "127.0.0.1", self->port, on_connect,
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
    printf("echo_server: serving on %s (Ctrl-C stops)\n",
           coro_sockaddr_format(&addr, where, sizeof where));
    fflush(stdout);
    CORO_AWAIT(coro_server_serve_forever(&self->op, &self->srv));
    CORO_AWAIT(coro_server_wait_closed(&self->op, &self->srv));
    fprintf(stderr, "echo_server: stopped\n");
    CORO_END();
}

int main(int argc, char **argv)
{
    struct app app;
    char *end;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT   (echo on 127.0.0.1:PORT; 0 picks one)\n", argv[0]);
        return 2;
    }
    memset(&app, 0, sizeof app);
    coro_frame_init(&app.co, app_step);
    app.port = (int)port;
    int rc = coro_run(&app.co, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "echo_server: %s\n", coro_strerror(rc));
        return 1;
    }
    return 0;
}
