/*
 * examples/fetch_all.c - the tour's scene 6 as a program: fetch the weather
 * of every city from examples/http_server, all at once with gather, then
 * one after the other.
 *
 *   ./build/examples/http_server 8080 &
 *   ./build/examples/fetch_all 8080 Paris Tokyo Lima Oslo
 *
 * The asyncio it retells:
 *
 *   async def fetch(port, city):
 *       reader, writer = await asyncio.open_connection('127.0.0.1', port)
 *       try:
 *           writer.write(f'GET /city/{city} HTTP/1.1\r\nHost: ...\r\n'
 *                        'Connection: close\r\n\r\n'.encode())
 *           await writer.drain()
 *           head = await reader.readuntil(b'\r\n\r\n')    # status, Content-Length
 *           return await reader.readexactly(length)
 *       finally:
 *           writer.close(); await writer.wait_closed()
 *
 *   answers = await asyncio.gather(*(fetch(port, c) for c in cities))
 *   for c in cities: answers.append(await fetch(port, c))
 *
 * The server answers each city after 0.1 s, so the gather takes about 0.1 s
 * whatever the number of cities, and the loop about 0.1 s per city. The
 * answers print in argument order both times. Exit status 1 if any fetch
 * failed (its line says why).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "coro.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define E_HTTP_STATUS (CORO_EUSER - 1) /* the server did not answer 200 */
#define E_BAD_ANSWER (CORO_EUSER - 2)  /* not an HTTP answer we can read */
#define ANSWER_MAX 256

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The status and Content-Length of a response head ("HTTP/1.1 200 OK\r\n
 * ...\r\n\r\n", n bytes). Returns 0, or E_BAD_ANSWER. */
static int read_head(const char *h, size_t n, int *status, long *length)
{
    *length = -1;
    if (n < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
        return E_BAD_ANSWER;
    *status = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return E_BAD_ANSWER;
        *status = *status * 10 + (h[i] - '0');
    }
    /* each line after the first: is it Content-Length? */
    static const char name[] = "content-length:";
    for (size_t i = 0; i < n; i++) {
        if (h[i] != '\n' || n - (i + 1) < sizeof name - 1)
            continue;
        size_t k = 0;
        while (k < sizeof name - 1 && (h[i + 1 + k] | 0x20) == name[k])
            k++;
        if (k < sizeof name - 1)
            continue;
        long v = 0;
        size_t j = i + 1 + k;
        while (j < n && (h[j] == ' ' || h[j] == '\t'))
            j++;
        if (j >= n || h[j] < '0' || h[j] > '9')
            return E_BAD_ANSWER;
        while (j < n && h[j] >= '0' && h[j] <= '9' && v < 1000000)
            v = v * 10 + (h[j++] - '0');
        *length = v;
    }
    return *length < 0 ? E_BAD_ANSWER : 0;
}

/* "New York" -> "New%20York": a city as a request target. */
static void url_encode(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* async def fetch(port, city) */
struct fetch {
    coro_frame co;
    int port;
    const char *city;
    coro_open_connection_op open;
    coro_stream s;
    int opened;
    coro_stream_op op;
    int status, err;
    long length;
    char answer[ANSWER_MAX]; /* the body, without its newline */
};

static CORO_FN(fetch_step)
{
    struct fetch *self = CORO_SELF(struct fetch);
    char req[512], target[3 * 128];
    const char *data;
    size_t n;
    CORO_BEGIN();
    CORO_AWAIT(coro_open_connection(&self->open, &self->s, "127.0.0.1", self->port, NULL));
    self->opened = 1;
    url_encode(target, sizeof target, self->city);
    n = (size_t)snprintf(req, sizeof req,
                         "GET /city/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                         "Connection: close\r\n\r\n",
                         target, self->port);
    self->err = coro_stream_write(&self->s, req, n); /* copied if not sent at once */
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(coro_stream_drain(&self->op, &self->s));

    CORO_AWAIT(coro_stream_readuntil(&self->op, &self->s, "\r\n\r\n", 4));
    data = coro_stream_data(&self->s, &n);
    self->err = read_head(data, n, &self->status, &self->length);
    if (self->err == 0 && self->length >= ANSWER_MAX)
        self->err = E_BAD_ANSWER;
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(coro_stream_readexactly(&self->op, &self->s, self->length));
    data = coro_stream_data(&self->s, &n);
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
        n--;
    memcpy(self->answer, data, n);
    self->answer[n] = '\0';
    if (self->status != 200)
        CORO_RAISE(E_HTTP_STATUS);
    CORO_FINALLY;
    if (self->opened) { /* writer.close(); await writer.wait_closed() */
        self->opened = 0;
        coro_stream_close(&self->s);
        CORO_AWAIT_ERR(coro_stream_wait_closed(&self->op, &self->s), self->err);
    }
    CORO_END();
}

static coro_frame *fetch_init(struct fetch *f, int port, const char *city)
{
    memset(f, 0, sizeof *f);
    coro_frame_init(&f->co, fetch_step);
    f->port = port;
    f->city = city;
    return &f->co;
}

/* One answer line: "Paris: 21 C, sunny", or what went wrong. */
static void show(const struct fetch *f, int err)
{
    if (err == 0)
        printf("  %s\n", f->answer);
    else if (err == E_HTTP_STATUS)
        printf("  %s: HTTP %d (%s)\n", f->city, f->status, f->answer);
    else if (err == E_BAD_ANSWER)
        printf("  %s: an answer that is not HTTP/1.x with a Content-Length\n", f->city);
    else
        printf("  %s: %s\n", f->city, coro_strerror(err));
}

struct main_frame {
    coro_frame co;
    coro_loop *loop;
    int port, n, i, err, failed;
    char **cities;
    struct fetch *f; /* n of each, from main() */
    coro_task *tasks;
    coro_future **futs;
    coro_value *results;
    coro_child_node *nodes;
    coro_gather_op g;
    double t0, concurrent, sequential;
};

static CORO_FN(main_step)
{
    struct main_frame *self = CORO_SELF(struct main_frame);
    CORO_BEGIN();
    self->loop = coro_get_running_loop();

    printf("all at once: await gather(*(fetch(city) for city in cities))\n");
    self->t0 = now();
    for (self->i = 0; self->i < self->n; self->i++) {
        coro_frame *f = fetch_init(&self->f[self->i], self->port, self->cities[self->i]);
        self->err = coro_task_init(&self->tasks[self->i], self->loop, f);
        if (self->err)
            CORO_RAISE(self->err); /* the tasks started are cancelled by coro_run */
        self->futs[self->i] = coro_task_future(&self->tasks[self->i]);
    }
    CORO_AWAIT(coro_gather(&self->g, self->futs, (size_t)self->n, self->results, self->nodes,
                           CORO_RETURN_ERRORS));
    self->concurrent = now() - self->t0;
    for (self->i = 0; self->i < self->n; self->i++) {
        int err = coro_value_error(self->results[self->i]);
        show(&self->f[self->i], err);
        self->failed += err != 0;
    }
    printf("  %d fetch%s in %.3f s\n\n", self->n, self->n == 1 ? "" : "es", self->concurrent);

    printf("one after the other: for city in cities: await fetch(city)\n");
    self->t0 = now();
    for (self->i = 0; self->i < self->n; self->i++) {
        CORO_AWAIT_ERR(fetch_init(&self->f[self->i], self->port, self->cities[self->i]), self->err);
        show(&self->f[self->i], self->err);
        self->failed += self->err != 0;
    }
    self->sequential = now() - self->t0;
    printf("  %d fetch%s in %.3f s", self->n, self->n == 1 ? "" : "es", self->sequential);
    if (self->failed == 0 && self->concurrent > 0)
        printf(": %.1f times the concurrent time", self->sequential / self->concurrent);
    printf("\n");
    CORO_RETURN(coro_int(self->failed));
    CORO_END();
}

int main(int argc, char **argv)
{
    struct main_frame m;
    coro_value out;
    char *end;
    long port = argc >= 3 ? strtol(argv[1], &end, 10) : -1;
    if (argc < 3 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr,
                "usage: %s PORT CITY...   (GET /city/CITY from 127.0.0.1:PORT for each,\n"
                "       concurrently, then one after the other; see examples/http_server)\n",
                argv[0]);
        return 2;
    }
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, main_step);
    m.port = (int)port;
    m.n = argc - 2;
    m.cities = argv + 2;
    m.f = calloc((size_t)m.n, sizeof *m.f);
    m.tasks = calloc((size_t)m.n, sizeof *m.tasks);
    m.futs = calloc((size_t)m.n, sizeof *m.futs);
    m.results = calloc((size_t)m.n, sizeof *m.results);
    m.nodes = calloc((size_t)m.n, sizeof *m.nodes);
    int rc = CORO_ENOMEM;
    if (m.f && m.tasks && m.futs && m.results && m.nodes)
        rc = coro_run(&m.co, &out, NULL);
    free(m.f);
    free(m.tasks);
    free(m.futs);
    free(m.results);
    free(m.nodes);
    if (rc != 0) {
        fprintf(stderr, "fetch_all: %s\n", coro_strerror(rc));
        return 1;
    }
    return out.tag == CORO_INT && out.u.i == 0 ? 0 : 1;
}
