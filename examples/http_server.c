/*
 * examples/http_server.c - a small HTTP/1.1 server on coro streams.
 *
 *   ./build/examples/http_server [-c MAXCONN] [-t HEADER] [-k KEEPALIVE] [-w SEND] [-l LOOPS]
 *                                PORT [HOST]
 *
 *   HOST     where to listen: 127.0.0.1 (the default), any IPv4 or IPv6
 *            address or name ("::1", "localhost", "0.0.0.0"), or the path
 *            of a Unix socket (anything with a '/'; PORT is then ignored)
 *   PORT     0 picks a free one
 *   -c N     connections served at once (default: the fd limit less 32);
 *            the others wait in the kernel's accept queue
 *   -t S     seconds a client has to send a request head, from its first
 *            byte (and for the first request, from the connect): nginx's
 *            client_header_timeout (default 10); then "408" and close
 *   -k S     seconds an idle keep-alive connection is kept (default 30)
 *   -w S     seconds an answer may wait for the client to read it before
 *            the connection is dropped: nginx's send_timeout (default 30)
 *   -l N     --loops N: N loops, one per thread (nginx's worker_processes),
 *            each with its own server on the same port (SO_REUSEPORT: the
 *            kernel spreads the connections; examples/loops.h); default 1.
 *            MAXCONN is per loop. TCP only.
 *
 *   GET /            200 "hello, world\n"
 *   GET /city/NAME   200 "NAME: 21 C, sunny\n" (made up from the name, always
 *                    the same for one name) after a simulated 0.1 s lookup
 *   anything else    404; a method other than GET or HEAD 405; a malformed
 *                    request 400, 414, 431, 501 or 505 (examples/http_parse.h
 *                    says which), and the connection is closed
 *
 * asyncio's shape: start_server with one task per connection (the server
 * spawns it and hands it the stream), keep-alive and pipelining (every
 * complete request in what one read brought is answered, in order, and the
 * answers go out in one write), SIGINT or SIGTERM (coro_add_signal_handler)
 * to stop: the server closes, idle connections are cancelled, busy ones
 * finish the request at hand (answering "Connection: close"), and the
 * program exits 0 once every connection has ended (after 5 s the rest are
 * cancelled: their unsent output is dropped, so the exit comes within the
 * grace period whatever the clients do). A second signal cancels them at
 * once.
 *
 * Holding up: the three timeouts are stream deadlines (coro_net.h: one
 * timer per stream, nothing per read), absolute, so a client trickling a
 * byte a second (slowloris) cannot stretch them; an idle connection holds
 * no read buffer (the stream gives it back) and its frame is small (a
 * partial request and gathered answers get a buffer only while they exist).
 * After a spike of connections, once they are all gone, the memory goes
 * back to the system (malloc_trim on glibc, checked once a second).
 *
 * The hot path, GET / on a keep-alive connection, allocates nothing and
 * formats nothing: the responses are formatted once at start-up, a request
 * is parsed where it lies in the stream's read buffer (a partial one is
 * copied aside until the rest comes), the answer is written straight from
 * the table (coro_stream_write sends at once when the socket takes it), and
 * drain is awaited only when the write buffer is above its high-water mark
 * (a client that pipelines without reading).
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

#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

#include "http_parse.h"

#define READ_MAX 16384         /* one read's size, and the partial-request buffer's */
#define OUT_CAP 4096           /* answers gathered before one write */
#define WRITE_HIGH (64 * 1024) /* drain above this */
#define WRITE_LOW (16 * 1024)
#define CITY_DELAY 0.1 /* the simulated lookup */
#define CITY_NAME_MAX 64
#define LINGER 1.0     /* seconds to read out a closing client, in all */
#define STOP_GRACE 5.0 /* seconds busy connections get at shutdown */
#define HEADER_TIMEOUT 10.0
#define KEEPALIVE_TIMEOUT 30.0
#define SEND_TIMEOUT 30.0
#define CAP_LOG_EVERY 10 /* seconds between two "at the cap" lines */
#define TRIM_AFTER 256   /* connections at once that make a trim worth it */

/* ---- canned responses: formatted once ---------------------------------- */

/* How the answer speaks of the connection. */
enum { CONN_DEFAULT, CONN_CLOSE, CONN_KEEP, CONN_MODES };
static const char *const conn_header[CONN_MODES] = {
    "",
    "Connection: close\r\n",
    "Connection: keep-alive\r\n",
};

enum { R_HELLO, R_NOT_FOUND, R_NOT_ALLOWED, R_KINDS };

typedef struct canned {
    char text[256];
    size_t len;
} canned;

static canned answers[R_KINDS][2][CONN_MODES]; /* [kind][head only][mode] */

static const int error_codes[] = { 400, 414, 431, 501, 505, 408 };
static canned errors[sizeof error_codes / sizeof error_codes[0]];

/* Format a response: status line, headers, then the body unless head_only.
 * Returns the length (the text is cut to cap - 1, which never happens for
 * the sizes used here). */
static size_t format_response(char *buf, size_t cap, int status, int mode, const char *extra,
                              const char *body, size_t body_len, int head_only)
{
    int n = snprintf(buf, cap,
                     "HTTP/1.1 %d %s\r\nServer: coro\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n%.*s",
                     status, http_reason(status), body_len, extra, conn_header[mode],
                     head_only ? 0 : (int)body_len, body);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static void make_answers(void)
{
    static const struct {
        int status;
        const char *extra, *body;
    } kinds[R_KINDS] = {
        [R_HELLO] = { 200, "", "hello, world\n" },
        [R_NOT_FOUND] = { 404, "", "not found\n" },
        [R_NOT_ALLOWED] = { 405, "Allow: GET, HEAD\r\n", "method not allowed\n" },
    };
    for (int k = 0; k < R_KINDS; k++)
        for (int head = 0; head < 2; head++)
            for (int mode = 0; mode < CONN_MODES; mode++) {
                canned *c = &answers[k][head][mode];
                c->len =
                    format_response(c->text, sizeof c->text, kinds[k].status, mode, kinds[k].extra,
                                    kinds[k].body, strlen(kinds[k].body), head);
            }
    for (size_t i = 0; i < sizeof error_codes / sizeof error_codes[0]; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "%s\n", http_reason(error_codes[i]));
        errors[i].len = format_response(errors[i].text, sizeof errors[i].text, error_codes[i],
                                        CONN_CLOSE, "", body, (size_t)n, 0);
    }
}

static const canned *error_answer(long rc)
{
    for (size_t i = 0; i < sizeof error_codes / sizeof error_codes[0]; i++)
        if (rc == -error_codes[i])
            return &errors[i];
    return &errors[0];
}

/* ---- the weather ---------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* "/city/NAME": NAME as a span of the head, or len 0 if the target is not
 * one (NAME: 1 to CITY_NAME_MAX of A-Z a-z 0-9 - . _ ~ %). */
static http_span city_name(const char *head, http_span target)
{
    static const char prefix[] = "/city/";
    http_span name = { 0, 0 };
    size_t plen = sizeof prefix - 1;
    if (target.len <= plen || target.len - plen > CITY_NAME_MAX ||
        memcmp(head + target.off, prefix, plen) != 0)
        return name;
    for (size_t i = target.off + plen, end = (size_t)target.off + target.len; i < end; i++) {
        char c = head[i];
        if (c == '%' && end - i > 2 && hex_value(head[i + 1]) >= 0 && hex_value(head[i + 2]) >= 0)
            i += 2; /* an escape: %20 */
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~'))
            return name;
    }
    name.off = (uint16_t)(target.off + plen);
    name.len = (uint16_t)(target.len - plen);
    return name;
}

/* The made-up weather: "NAME: 21 C, sunny\n" (NAME with its %XX escapes
 * decoded; a control byte shows as '?'), the same for the same name. */
static int weather(char *buf, size_t cap, const char *name, size_t len)
{
    static const char *const skies[] = { "sunny", "cloudy", "rainy", "windy", "foggy" };
    char city[CITY_NAME_MAX + 1];
    size_t n = 0;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len && n < CITY_NAME_MAX; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '%' && len - i > 2) { /* city_name checked the hex digits */
            c = (unsigned char)(hex_value(name[i + 1]) * 16 + hex_value(name[i + 2]));
            i += 2;
        }
        city[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)city[i]) * 16777619u;
    int t = (int)(h % 41) - 5;
    return snprintf(buf, cap, "%.*s: %d C, %s\n", (int)n, city, t,
                    t <= 0 ? "snowy" : skies[(h >> 8) % (sizeof skies / sizeof skies[0])]);
}

/* ---- the server and its connections --------------------------------------- */

struct conn;

struct app {
    coro_frame co;
    loops *loops; /* every loop's app, and how they talk (examples/loops.h) */
    int index;    /* 0: the main thread's loop, which owns the signals */
    coro_loop *loop;
    const char *host; /* an address, a name, or a Unix path */
    int port;
    size_t cap;                           /* max_connections */
    double header_s, keepalive_s, send_s; /* the timeouts */
    time_t cap_log;                       /* when "at the cap" was last said */
    coro_handle trim;                     /* the once-a-second memory check */
    int spiked;                           /* TRIM_AFTER connections since the last trim */
    coro_server srv;
    coro_start_server_op start;
    coro_server_op op;
    coro_wait_for_op wf;
    struct conn *conns; /* every live connection */
    int signals;        /* SIGINT/SIGTERM seen */
    int err;
};

struct conn {
    coro_frame co;
    struct app *app;
    struct conn *prev, *next;
    coro_stream *s;
    coro_task *task;
    coro_stream_op op;
    http_request req;
    const char *data; /* the bytes being parsed: the read's view, or pend */
    size_t len, off;  /* data[off, len) is not parsed yet */
    long used;        /* the head being answered: its length */
    int64_t skip;     /* body bytes still to drop */
    size_t plen;      /* a partial request in pend[0, plen) */
    const char *dptr; /* one canned answer not copied to out yet */
    size_t dlen;
    size_t olen; /* answers gathered in out[0, olen) */
    long lingered;
    unsigned reads;
    int idle;       /* waiting for the next request: cancel it to stop */
    int in_request; /* between a request's first byte and its end */
    int closing;    /* answer this one, then close */
    int timed_out;  /* no request head in time: 408, no linger */
    int err;
    char *out;  /* OUT_CAP bytes while answers are gathered, else NULL */
    char *pend; /* READ_MAX bytes while a partial request waits, else NULL */
};

/* Queue an answer. `stable`: the bytes outlive the connection (a canned
 * answer), so the first one can be written from where it is. Returns 0 or
 * the stream's error. */
static int out_put(struct conn *c, const char *p, size_t n)
{
    int err = 0;
    if (!c->out && !(c->out = malloc(OUT_CAP)))
        return CORO_ENOMEM;
    if (c->olen + n > OUT_CAP) {
        err = coro_stream_write(c->s, c->out, c->olen);
        c->olen = 0;
        if (err == 0 && n > OUT_CAP)
            return coro_stream_write(c->s, p, n);
    }
    memcpy(c->out + c->olen, p, n);
    c->olen += n;
    return err;
}

static int emit(struct conn *c, const char *p, size_t n, int stable)
{
    int err = 0;
    if (stable && c->dlen == 0 && c->olen == 0) {
        c->dptr = p;
        c->dlen = n;
        return 0;
    }
    if (c->dlen) {
        err = out_put(c, c->dptr, c->dlen);
        c->dlen = 0;
    }
    return err ? err : out_put(c, p, n);
}

/* Write what was queued: one write for everything one read brought. */
static int flush(struct conn *c)
{
    int err = 0;
    if (c->dlen)
        err = coro_stream_write(c->s, c->dptr, c->dlen);
    else if (c->olen)
        err = coro_stream_write(c->s, c->out, c->olen);
    c->dlen = 0;
    c->olen = 0;
    free(c->out); /* gathered answers are rare: no buffer kept for them */
    c->out = NULL;
    if (err == 0 && coro_stream_write_buffer_size(c->s) > 0) /* the client is slow to read */
        err = coro_stream_set_write_deadline(c->s, c->app->send_s);
    return err;
}

/* The connection mode of the answer to c->req. */
static int answer_mode(struct conn *c)
{
    if (!c->req.keep_alive || c->app->signals)
        c->closing = 1;
    if (c->closing)
        return CONN_CLOSE;
    return c->req.minor == 0 ? CONN_KEEP : CONN_DEFAULT;
}

/* Answer c->req (the head at c->data + c->off) unless it is a city lookup:
 * then return 1, and the caller sleeps and calls answer_city. */
static int answer(struct conn *c)
{
    const char *head = c->data + c->off;
    int is_head = http_span_eq(head, c->req.method, "HEAD");
    int mode = answer_mode(c), kind;
    if (!is_head && !http_span_eq(head, c->req.method, "GET"))
        kind = R_NOT_ALLOWED;
    else if (http_span_eq(head, c->req.target, "/"))
        kind = R_HELLO;
    else if (city_name(head, c->req.target).len > 0)
        return 1;
    else
        kind = R_NOT_FOUND;
    c->err = emit(c, answers[kind][is_head][mode].text, answers[kind][is_head][mode].len, 1);
    return 0;
}

static void answer_city(struct conn *c)
{
    const char *head = c->data + c->off;
    http_span name = city_name(head, c->req.target);
    char body[CITY_NAME_MAX + 64], text[512];
    int n = weather(body, sizeof body, head + name.off, name.len);
    size_t len = format_response(text, sizeof text, 200, answer_mode(c), "", body, (size_t)n,
                                 http_span_eq(head, c->req.method, "HEAD"));
    c->err = emit(c, text, len, 0);
}

/* The request at c->off is answered: step over its head and its body. */
static void consume(struct conn *c)
{
    size_t body;
    c->off += (size_t)c->used;
    body = c->len - c->off;
    if ((int64_t)body > c->req.content_length)
        body = (size_t)c->req.content_length;
    c->off += body;
    c->skip = c->req.content_length - (int64_t)body;
    http_request_init(&c->req);
}

/* The bytes a read brought: drop what belongs to a body being skipped,
 * then parse where they lie, or behind a partial request kept from before. */
static void take_view(struct conn *c)
{
    size_t n;
    const char *v = coro_stream_data(c->s, &n);
    if (c->skip > 0) {
        size_t drop = (int64_t)n < c->skip ? n : (size_t)c->skip;
        v += drop;
        n -= drop;
        c->skip -= (int64_t)drop;
    }
    if (c->plen) { /* the read asked for at most the room left */
        memcpy(c->pend + c->plen, v, n);
        c->data = c->pend;
        c->len = c->plen + n;
        c->plen = 0;
    } else {
        c->data = v;
        c->len = n;
    }
    c->off = 0;
}

/* Keep a partial request for the next read (it is less than HTTP_MAX_HEAD
 * bytes, or the parser would have refused it). */
static int keep_partial(struct conn *c)
{
    size_t rest = c->len - c->off;
    if (rest == 0) {
        free(c->pend); /* nothing pending: hold no buffer */
        c->pend = NULL;
        return 0;
    }
    if (!c->pend && !(c->pend = malloc(READ_MAX)))
        return CORO_ENOMEM;
    memmove(c->pend, c->data + c->off, rest);
    c->plen = rest;
    return 0;
}

/* Name the connection's task after its peer, so a dump (kill -USR1) says
 * which client each task serves: task.set_name(f"conn {peer}"). */
static void name_task(coro_stream *s)
{
    coro_sockaddr peer;
    char addr[CORO_SOCKADDR_STRLEN], name[CORO_SOCKADDR_STRLEN + 8];
    if (coro_stream_peername(s, &peer) != 0)
        return;
    snprintf(name, sizeof name, "conn %s", coro_sockaddr_format(&peer, addr, sizeof addr));
    coro_task_set_name(coro_current_task(NULL), name);
}

static CORO_FN(conn_step)
{
    struct conn *self = CORO_SELF(struct conn);
    CORO_BEGIN();
    name_task(self->s);
    /* the first request head is due header_s after the connect */
    self->in_request = 1;
    self->err = coro_stream_set_read_deadline(self->s, self->app->header_s);
    while (!self->app->signals && !self->closing && self->err == 0) {
        /* wait for bytes: the only place an idle connection sits */
        self->idle = 1;
        CORO_AWAIT_ERR(coro_stream_read(&self->op, self->s,
                                        (ssize_t)(self->plen ? READ_MAX - self->plen : READ_MAX)),
                       self->err);
        self->idle = 0;
        if (self->err == CORO_ETIMEDOUT && self->in_request &&
            coro_stream_read_timed_out(self->s)) {
            /* a head not complete in time (a slowloris): 408 and close */
            const canned *e = error_answer(-408);
            self->err = coro_stream_write(self->s, e->text, e->len);
            self->closing = self->timed_out = 1;
            break;
        }
        if (self->err || CORO_RESULT.u.i == 0)
            break;               /* the client left (EOF, reset), kept idle too long, or we stop */
        if (!self->in_request) { /* a new request's first bytes */
            self->in_request = 1;
            self->err = coro_stream_set_read_deadline(self->s, self->app->header_s);
        }
        take_view(self);

        /* answer every complete request they hold, in order */
        while (self->off < self->len && !self->closing && self->err == 0) {
            self->used =
                http_parse_request(&self->req, self->data + self->off, self->len - self->off);
            if (self->used == HTTP_NEED_MORE)
                break;
            if (self->used < 0) {
                const canned *e = error_answer(self->used);
                self->err = emit(self, e->text, e->len, 1);
                self->closing = 1;
                break;
            }
            if (answer(self)) {
                /* the lookup: what is queued goes out first, then the wait */
                self->err = flush(self);
                if (self->err == 0) {
                    CORO_SLEEP(CITY_DELAY);
                    answer_city(self);
                }
            }
            consume(self);
        }
        if (self->err == 0)
            self->err = flush(self);
        if (self->err == 0 && !self->closing)
            self->err = keep_partial(self);
        if (self->err == 0 && !self->closing && self->plen == 0 && self->skip == 0) {
            /* between requests: the keep-alive timeout replaces the head's */
            self->in_request = 0;
            self->err = coro_stream_set_read_deadline(self->s, self->app->keepalive_s);
        }
        if (self->err == 0 && coro_stream_write_buffer_size(self->s) > WRITE_HIGH)
            CORO_AWAIT_ERR(coro_stream_drain(&self->op, self->s), self->err);
        /* a read that finds data does not suspend: let the other
         * connections run now and then, or a client that pipelines
         * without pause would have the loop to itself */
        if (++self->reads % 16 == 0)
            CORO_YIELD(coro_none());
    }
    if (self->closing && self->err == 0 && !self->timed_out) {
        /* Lingering close: send our FIN, then read what the client still
         * sends until its EOF, for at most LINGER seconds in all (one
         * deadline: a trickling client cannot stretch it), so that closing
         * with unread data does not reset the connection before the client
         * has read the answer. */
        coro_stream_write_eof(self->s);
        self->err = coro_stream_set_read_deadline(self->s, LINGER);
        while (self->err == 0 && self->lingered < 1024 * 1024) {
            CORO_AWAIT_ERR(coro_stream_read(&self->op, self->s, READ_MAX), self->err);
            if (self->err || CORO_RESULT.u.i == 0)
                break;
            self->lingered += CORO_RESULT.u.i;
        }
    }
    CORO_FINALLY;
    /* the server closes the stream (flushing it) once we return */
    free(self->out);
    free(self->pend);
    self->out = self->pend = NULL;
    if (self->prev)
        self->prev->next = self->next;
    else
        self->app->conns = self->next;
    if (self->next)
        self->next->prev = self->prev;
    CORO_END();
}

/* start_server's client_connected_cb: a frame for the connection's task. */
static coro_frame *on_connect(coro_stream *s, void *arg)
{
    struct app *app = arg;
    if (coro_server_connections(&app->srv) >= app->cap &&
        time(NULL) - app->cap_log >= CAP_LOG_EVERY) {
        app->cap_log = time(NULL); /* said once, not once per client */
        fprintf(stderr, "http_server: %zu connections, the cap: new clients wait\n", app->cap);
    }
    if (coro_server_connections(&app->srv) >= TRIM_AFTER)
        app->spiked = 1;
    struct conn *c = CORO_FRAME_NEW(coro_stream_loop(s), struct conn, conn_step);
    if (!c)
        return NULL; /* refused: the server closes the connection */
    c->app = app;
    c->s = s;
    c->task = coro_current_task(NULL);
    http_request_init(&c->req);
    c->next = app->conns;
    if (app->conns)
        app->conns->prev = c;
    app->conns = c;
    return &c->co;
}

/* Once a second: after a spike of connections, once they are all gone,
 * hand the memory they used back to the system. The library gave it back
 * to malloc already (stream buffers, slab chunks, connection objects), but
 * glibc keeps freed memory in the middle of its heap resident until asked. */
static int trim_cb(void *arg)
{
    struct app *app = arg;
    if (app->spiked && coro_server_connections(&app->srv) == 0) {
        app->spiked = 0;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
    return coro_call_later(app->loop, &app->trim, 1.0, trim_cb, app);
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

/* SIGINT, SIGTERM: stop accepting and wake the idle connections; a second
 * signal cancels every connection. Runs as an ordinary loop callback. */
static int on_signal(void *arg)
{
    struct app *app = arg;
    loops_forward(app->loops); /* loop 0: the other loops get it too */
    if (app->signals++ == 0) {
        fprintf(stderr, "http_server: %sstopping (%zu connection%s)\n", loop_name(app),
                coro_server_connections(&app->srv),
                coro_server_connections(&app->srv) == 1 ? "" : "s");
        coro_server_close(&app->srv); /* serve_forever returns */
        coro_handle_cancel(&app->trim);
        for (struct conn *c = app->conns; c; c = c->next)
            if (c->idle)
                coro_task_cancel(c->task);
    } else {
        coro_server_cancel_clients(&app->srv);
    }
    return 0;
}

/* Loop 0: the signals, the other loops, the banner. */
static int app_announce(struct app *self)
{
    coro_sockaddr addr;
    char where[CORO_SOCKADDR_STRLEN];
    int err = coro_add_signal_handler(self->loop, SIGINT, on_signal, self);
    if (err == 0)
        err = coro_add_signal_handler(self->loop, SIGTERM, on_signal, self);
    if (err == 0) /* kill -USR1 PID: every task and where it waits, on stderr */
        err = coro_loop_dump_on_signal(self->loop, SIGUSR1, NULL);
    if (err == 0)
        err = coro_server_sockname(&self->srv, 0, &addr);
    if (err)
        return err;
    if (self->loops->n > 1 && (err = loops_start(self->loops, coro_sockaddr_port(&addr)))) {
        fprintf(stderr, "http_server: no thread: %s\n", coro_strerror(err));
        on_signal(self); /* stop the loops already started */
    }
    printf("http_server: serving on http://%s/", coro_sockaddr_format(&addr, where, sizeof where));
    if (self->loops->n > 1)
        printf(", %d loops", self->loops->n);
    printf(" (Ctrl-C stops)\n");
    fflush(stdout);
    return 0;
}

/* Every loop runs this: loop 0 with the port given, the others (threads of
 * examples/loops.h) with the port loop 0 got. */
static CORO_FN(app_step)
{
    struct app *self = CORO_SELF(struct app);
    loops *L = self->loops;
    coro_server_options opt;
    CORO_BEGIN();
    self->loop = coro_get_running_loop();
    memset(&opt, 0, sizeof opt);
    opt.stream.write_high = WRITE_HIGH;
    opt.stream.write_low = WRITE_LOW;
    opt.backlog = 1024;
    opt.max_connections = self->cap;
    opt.reuse_port = L->n > 1;
    if (strchr(self->host, '/'))
        CORO_AWAIT_ERR(
            coro_start_unix_server(&self->start, &self->srv, self->host, on_connect, self, &opt),
            self->err);
    else
        CORO_AWAIT_ERR(coro_start_server(&self->start, &self->srv, self->host,
                                         self->index ? L->port : self->port, on_connect, self,
                                         &opt),
                       self->err);
    if (self->index > 0 && loops_ready(L, self->index, self->err) != 0) {
        coro_server_close(&self->srv);
        CORO_RETURN(coro_none()); /* loop 0 reports it and stops */
    }
    if (self->index == 0 && (self->err || (self->err = app_announce(self)) != 0)) {
        coro_server_close(&self->srv);
        CORO_RAISE(self->err);
    }
    coro_call_later(self->loop, &self->trim, 1.0, trim_cb, self);
    CORO_AWAIT_ERR(coro_server_serve_forever(&self->op, &self->srv), self->err);
    coro_handle_cancel(&self->trim);
    coro_server_close(&self->srv); /* done already, unless serve_forever failed */

    /* closed by a signal: let the connections finish */
    CORO_AWAIT_ERR(
        coro_wait_for(&self->wf, STOP_GRACE, coro_server_wait_closed(&self->op, &self->srv)),
        self->err);
    if (self->err == CORO_ETIMEDOUT) {
        fprintf(stderr, "http_server: %s%zu connection(s) still busy: cancelling them\n",
                loop_name(self), coro_server_connections(&self->srv));
        coro_server_cancel_clients(&self->srv);
        CORO_AWAIT_ERR(coro_server_wait_closed(&self->op, &self->srv), self->err);
    }
    if (self->index > 0) {
        CORO_AWAIT(loops_done(L, self->index)); /* loop 0 lets it close */
    } else if (L->n > 1) {
        CORO_AWAIT(loops_join(L)); /* every other loop is done */
        loops_release(L);
    }
    if (self->err)
        CORO_RAISE(self->err);
    if (self->index == 0)
        fprintf(stderr, "http_server: stopped\n");
    CORO_END();
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-c MAXCONN] [-t HEADER] [-k KEEPALIVE] [-w SEND] [-l LOOPS] PORT [HOST]\n"
            "  serve HTTP on HOST:PORT (HOST: 127.0.0.1 by default; an IPv4 or IPv6 address\n"
            "  or name, or a Unix socket path containing '/'; PORT 0 picks one)\n"
            "  -c  connections served at once (default: the fd limit less 32)\n"
            "  -t  seconds to send a request head (default %g), then 408\n"
            "  -k  seconds an idle keep-alive connection is kept (default %g)\n"
            "  -w  seconds an answer may wait for the client to read it (default %g)\n"
            "  -l, --loops  loops, one per thread, sharing the port (1-%d; default 1;\n"
            "      TCP only; MAXCONN is per loop)\n",
            argv0, HEADER_TIMEOUT, KEEPALIVE_TIMEOUT, SEND_TIMEOUT, LOOPS_MAX);
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

static int seconds_arg(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return *end == '\0' && *out > 0 && *out < 1e6;
}

static int run_app(void *arg)
{
    struct app *app = arg;
    coro_frame_init(&app->co, app_step);
    return coro_run(&app->co, NULL, NULL);
}

/* The loops' apps: copies of `base`, one per loop (index 0 runs here). */
static int run_loops(const struct app *base, int nloops)
{
    static loops L;
    struct app *apps = calloc((size_t)nloops, sizeof *apps);
    void *ptrs[LOOPS_MAX];
    if (!apps) {
        fprintf(stderr, "http_server: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nloops; i++) {
        apps[i] = *base;
        apps[i].loops = &L;
        apps[i].index = i;
        ptrs[i] = &apps[i];
    }
    loops_init(&L, nloops, ptrs, run_app, on_signal);
    int rc = run_app(&apps[0]);
    int bad = loops_wait(&L); /* loop 0 returned after every other loop */
    free(apps);
    if (rc != 0) {
        fprintf(stderr, "http_server: %s\n", coro_strerror(rc));
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
    int c, ok = 1, nloops = 1;
    memset(&app, 0, sizeof app);
    app.cap = default_cap();
    app.header_s = HEADER_TIMEOUT;
    app.keepalive_s = KEEPALIVE_TIMEOUT;
    app.send_s = SEND_TIMEOUT;
    while (ok && (c = getopt_long(argc, argv, "c:t:k:w:l:", longopts, NULL)) != -1) {
        if (c == 'c') {
            long n = strtol(optarg, &end, 10);
            ok = *end == '\0' && n >= 1;
            app.cap = (size_t)n;
        } else if (c == 't') {
            ok = seconds_arg(optarg, &app.header_s);
        } else if (c == 'k') {
            ok = seconds_arg(optarg, &app.keepalive_s);
        } else if (c == 'w') {
            ok = seconds_arg(optarg, &app.send_s);
        } else if (c == 'l') {
            if ((nloops = loops_arg(optarg)) < 0) {
                fprintf(stderr, "http_server: --loops wants 1 to %d, not '%s'\n", LOOPS_MAX,
                        optarg);
                ok = 0;
            }
        } else {
            ok = 0;
        }
    }
    if (!ok || argc - optind < 1 || argc - optind > 2)
        return usage(argv[0]);
    port = strtol(argv[optind], &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return usage(argv[0]);
    app.host = argc - optind == 2 ? argv[optind + 1] : "127.0.0.1";
    if (nloops > 1 && strchr(app.host, '/')) {
        fprintf(stderr, "http_server: --loops needs TCP (a Unix socket has one listener)\n");
        return usage(argv[0]);
    }
    make_answers();
    app.port = (int)port;
    return run_loops(&app, nloops);
}
