/*
 * bench/net/echo_libuv.c - the libuv peer of the echo benchmarks: one loop,
 * one thread, every byte read is written back.
 *
 *   echo_libuv PORT      listen on 127.0.0.1:PORT until killed
 *
 * Written the way a libuv user after speed writes it: one 64 KiB read buffer
 * per connection (alloc_cb hands it out again and again), uv_try_write
 * first, and only what the socket did not take goes to a uv_write_t with a
 * copy; while such a write is pending the connection stops reading
 * (back-pressure). TCP_NODELAY on every connection, backlog 1024.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUF 65536

struct conn {
    uv_tcp_t tcp;
    char buf[BUF];
    int pending; /* writes in flight */
};

struct wreq {
    uv_write_t req;
    char data[];
};

static uv_loop_t *loop;

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    buf->base = c->buf;
    buf->len = BUF;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void write_cb(uv_write_t *req, int status)
{
    struct conn *c = req->handle->data;
    free(req);
    if (--c->pending == 0 && status == 0 && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (nread == 0)
        return;
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int n = c->pending ? 0 : uv_try_write(s, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (n == nread)
        return;
    /* the rest: copy it out of the read buffer, write it, stop reading until it is written */
    size_t rest = (size_t)nread - (size_t)n;
    struct wreq *w = malloc(sizeof *w + rest);
    if (!w) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    memcpy(w->data, buf->base + n, rest);
    uv_buf_t wb = uv_buf_init(w->data, (unsigned)rest);
    if (uv_write(&w->req, s, &wb, 1, write_cb) < 0) {
        free(w);
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    c->pending++;
    uv_read_stop(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = malloc(sizeof *c);
    if (!c)
        return;
    c->pending = 0;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: echo_libuv PORT\n");
        return 2;
    }
    loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    uv_tcp_init(loop, &server);
    int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (r != 0) {
        fprintf(stderr, "echo_libuv: listen on 127.0.0.1:%s: %s\n", argv[1], uv_strerror(r));
        return 1;
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}
