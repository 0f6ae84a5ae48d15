/*
 * tests/test_stream.c - streams and servers (stream.c): asyncio's
 * StreamReader/StreamWriter, open_connection, start_server and Server.
 *
 * Covers SEMANTICS 42 (readexactly at EOF: incomplete with what was read;
 * readline past the limit fails and consumes the line, with asyncio's
 * test_readline_limit cases; readuntil at EOF: incomplete; read(-1) reads
 * to EOF) and 43 (drain waits above the high-water mark and resumes at the
 * low one, never in between), then: read(n) and at_eof; readuntil with a
 * separator split across reads, and its limit leaving the data buffered;
 * write_eof half-close (also with data still buffered); close while
 * another task reads; two reads at once refused; a reader that never has to
 * wait still lets other tasks run; peer reset (sticky for reads, writes,
 * drain, wait_closed); EPIPE without SIGPIPE death; a timeout around
 * readline that consumes nothing; cancellation mid-read and mid-drain; no
 * allocation per read or write in steady state; a server with echo,
 * "localhost" and Unix sockets; memory per connection given back; handler
 * errors reported while the server keeps serving; serve_forever ended by
 * close and by cancellation; cancel_clients; a connection limit (never more
 * handlers at once than allowed, all served); EMFILE: the server pauses (a
 * handful of accept calls, not a spin) and recovers when descriptors come
 * back; and a bounded stress test: 500 concurrent connections through an
 * echo server on one loop, each checking 8 KiB of pseudo-random bytes.
 *
 * Every test closes its loop, asserts it closed cleanly, and checks that no
 * descriptor leaked and no unexpected error was reported.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct env {
    coro_loop loop;
    int fds_before;
    int reports; /* exception handler calls */
    int last_error;
    char last_message[128];
} env;

static void on_report(coro_loop *loop, const coro_exception_context *c, void *arg)
{
    env *e = arg;
    (void)loop;
    e->reports++;
    e->last_error = c->error;
    snprintf(e->last_message, sizeof e->last_message, "%s", c->message);
}

static void env_open(env *e)
{
    memset(e, 0, sizeof *e);
    e->fds_before = count_fds();
    assert_int_equal(coro_loop_init(&e->loop, NULL), 0);
    coro_loop_set_exception_handler(&e->loop, on_report, e);
}

/* Close the loop; `reports` exception reports were expected. */
static void env_close(env *e, int reports)
{
    assert_int_equal(coro_loop_close(&e->loop), 0);
    assert_int_equal(count_fds(), e->fds_before); /* nothing leaked */
    if (e->reports != reports)
        fail_msg("%d reports (last: %s, %d), expected %d", e->reports, e->last_message,
                 e->last_error, reports);
}

static int run_task(coro_loop *loop, coro_task *t)
{
    return coro_loop_run_until_complete(loop, coro_task_future(t));
}

/* A stream over one end of a socketpair; the other end is a raw fd. */
static void stream_peer(coro_loop *loop, coro_stream *s, int *peer, const coro_stream_options *o)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(coro_stream_init(s, loop, sv[0], o), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    *peer = sv[1];
}

static void put(int fd, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
}

static void assert_view(const coro_stream *s, const char *want)
{
    size_t len;
    const char *p = coro_stream_data(s, &len);
    if (len != strlen(want) || memcmp(p, want, len) != 0)
        fail_msg("data view is \"%.*s\" (%zu), expected \"%s\"", (int)len, p, len, want);
}

/* ---- one stream operation as a task ---- */

enum { R_READ, R_EXACTLY, R_UNTIL, R_LINE, R_DRAIN, R_WAIT_CLOSED, R_LINE_TIMEOUT };

struct sop {
    coro_frame co;
    int kind;
    coro_stream *s;
    ssize_t n;
    const char *sep;
    double timeout;
    coro_stream_op op;
    coro_wait_for_op wf;
    int err;
    int64_t result;
};

static coro_frame *sop_frame(struct sop *t)
{
    switch (t->kind) {
    case R_READ:
        return coro_stream_read(&t->op, t->s, t->n);
    case R_EXACTLY:
        return coro_stream_readexactly(&t->op, t->s, t->n);
    case R_UNTIL:
        return coro_stream_readuntil(&t->op, t->s, t->sep, strlen(t->sep));
    case R_LINE:
        return coro_stream_readline(&t->op, t->s);
    case R_DRAIN:
        return coro_stream_drain(&t->op, t->s);
    case R_WAIT_CLOSED:
        return coro_stream_wait_closed(&t->op, t->s);
    default:
        return coro_wait_for(&t->wf, t->timeout, coro_stream_readline(&t->op, t->s));
    }
}

static CORO_FN(sop_step)
{
    struct sop *self = CORO_SELF(struct sop);
    CORO_BEGIN();
    CORO_AWAIT_ERR(sop_frame(self), self->err);
    if (self->err == 0)
        self->result = CORO_RESULT.u.i;
    CORO_END();
}

static void sop_init(struct sop *t, int kind, coro_stream *s, ssize_t n)
{
    memset(t, 0, sizeof *t);
    coro_frame_init(&t->co, sop_step);
    t->kind = kind;
    t->s = s;
    t->n = n;
    t->result = -1;
}

static int run_sop(coro_loop *loop, struct sop *t)
{
    coro_task task;
    assert_int_equal(coro_task_init(&task, loop, &t->co), 0);
    assert_int_equal(run_task(loop, &task), 0);
    return t->err;
}

/* Run one stream operation; returns its error. A read's count is the length
 * of the data view. */
static int op(coro_loop *loop, int kind, coro_stream *s, ssize_t n)
{
    struct sop t;
    size_t len;
    sop_init(&t, kind, s, n);
    int rc = run_sop(loop, &t);
    coro_stream_data(s, &len);
    if (rc == 0 && kind != R_DRAIN && kind != R_WAIT_CLOSED)
        assert_int_equal(t.result, (int64_t)len);
    return rc;
}

static int until(coro_loop *loop, coro_stream *s, const char *sep)
{
    struct sop t;
    sop_init(&t, R_UNTIL, s, 0);
    t.sep = sep;
    return run_sop(loop, &t);
}

static int cb_put_tail(void *arg)
{
    put(*(int *)arg, "67890");
    return 0;
}

static int cb_shut_wr(void *arg) { return shutdown(*(int *)arg, SHUT_WR) < 0 ? -errno : 0; }

/* ---- reading: SEMANTICS 42 and friends ---- */

static void test_read_n_and_eof(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    put(peer, "hello world");
    assert_int_equal(op(&e.loop, R_READ, &s, 5), 0);
    assert_view(&s, "hello");
    assert_int_equal(s.sock.w.armed, 0); /* data was there: no wait, no epoll_ctl */
    assert_int_equal(coro_stream_buffered(&s), 6);
    assert_int_equal(op(&e.loop, R_READ, &s, 0), 0); /* read(0): b'' at once */
    assert_view(&s, "");
    assert_int_equal(op(&e.loop, R_READ, &s, 100), 0);
    assert_view(&s, " world");
    assert_false(coro_stream_at_eof(&s));
    /* data that comes later: the read waits for it */
    assert_int_equal(coro_call_later(&e.loop, NULL, 0.01, cb_put_tail, &peer), 0);
    assert_int_equal(op(&e.loop, R_READ, &s, 100), 0);
    assert_view(&s, "67890");
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    assert_int_equal(op(&e.loop, R_READ, &s, 100), 0);
    assert_view(&s, "");
    assert_true(coro_stream_at_eof(&s));
    assert_int_equal(op(&e.loop, R_READ, &s, 100), 0); /* EOF again */
    assert_view(&s, "");
    coro_stream_close(&s);
    assert_true(coro_stream_is_closed(&s));
    close(peer);
    env_close(&e, 0);
}

static void test_readexactly(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    /* across two arrivals */
    put(peer, "12345");
    assert_int_equal(coro_call_later(&e.loop, NULL, 0.01, cb_put_tail, &peer), 0);
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, 10), 0);
    assert_view(&s, "1234567890");
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, 0), 0);
    assert_view(&s, "");
    /* test_readexactly_eof: EOF first: incomplete, with what was read */
    put(peer, "abc");
    assert_int_equal(coro_call_later(&e.loop, NULL, 0.01, cb_shut_wr, &peer), 0);
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, 10), CORO_EINCOMPLETE);
    assert_view(&s, "abc");
    assert_int_equal(coro_stream_buffered(&s), 0);
    assert_true(coro_stream_at_eof(&s));
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, 1), CORO_EINCOMPLETE);
    assert_view(&s, "");
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

/* asyncio's test_readline_limit, case by case (limit 7). */
static void test_readline_limit(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    coro_stream_options o = { .limit = 7 };
    env_open(&e);

    /* one line over the limit: the line is consumed with the failure */
    stream_peer(&e.loop, &s, &peer, &o);
    put(peer, "chunk1chunk2chunk3\n");
    shutdown(peer, SHUT_WR);
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), CORO_ELIMIT);
    assert_int_equal(coro_stream_buffered(&s), 0);
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), 0); /* then EOF: b'' */
    assert_view(&s, "");
    coro_stream_close(&s);
    close(peer);

    /* the next line is intact */
    stream_peer(&e.loop, &s, &peer, &o);
    put(peer, "chunk1chunk2\nchunk3\n");
    shutdown(peer, SHUT_WR);
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), CORO_ELIMIT);
    assert_int_equal(coro_stream_buffered(&s), 7);
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), 0);
    assert_view(&s, "chunk3\n");
    coro_stream_close(&s);
    close(peer);

    /* strictness: 7 bytes before the separator pass, 8 do not */
    stream_peer(&e.loop, &s, &peer, &o);
    put(peer, "1234567\n");
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), 0);
    assert_view(&s, "1234567\n");
    assert_int_equal(coro_stream_buffered(&s), 0);
    put(peer, "12345678\n");
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), CORO_ELIMIT);
    assert_int_equal(coro_stream_buffered(&s), 0);
    put(peer, "12345678");
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), CORO_ELIMIT);
    assert_int_equal(coro_stream_buffered(&s), 0);
    /* readline at EOF returns the partial line */
    put(peer, "tail");
    shutdown(peer, SHUT_WR);
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), 0);
    assert_view(&s, "tail");
    assert_true(coro_stream_at_eof(&s));
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

struct later_put {
    int fd;
    const char *text;
};

static int cb_put(void *arg)
{
    struct later_put *lp = arg;
    put(lp->fd, lp->text);
    return 0;
}

static void test_readuntil(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    coro_stream_options o = { .limit = 7 };
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    /* a separator split between two arrivals */
    struct later_put lp = { peer, "\ncd" };
    put(peer, "ab\r");
    assert_int_equal(coro_call_later(&e.loop, NULL, 0.01, cb_put, &lp), 0);
    assert_int_equal(until(&e.loop, &s, "\r\n"), 0);
    assert_view(&s, "ab\r\n");
    assert_int_equal(op(&e.loop, R_READ, &s, 10), 0);
    assert_view(&s, "cd");
    /* test_readuntil_eof: incomplete, with the whole rest */
    put(peer, "some dataAA");
    shutdown(peer, SHUT_WR);
    assert_int_equal(until(&e.loop, &s, "AAA"), CORO_EINCOMPLETE);
    assert_view(&s, "some dataAA");
    assert_int_equal(coro_stream_buffered(&s), 0);
    assert_true(coro_stream_at_eof(&s));
    coro_stream_close(&s);
    close(peer);

    /* the limit: LimitOverrunError leaves the data in the buffer */
    stream_peer(&e.loop, &s, &peer, &o);
    put(peer, "aaaaaaaaaa;");
    assert_int_equal(until(&e.loop, &s, ";"), CORO_ELIMIT);
    assert_int_equal(coro_stream_buffered(&s), 11);
    assert_int_equal(op(&e.loop, R_READ, &s, 100), 0);
    assert_view(&s, "aaaaaaaaaa;");
    put(peer, "xxxxxxxxxx"); /* not found, and past the limit */
    assert_int_equal(until(&e.loop, &s, ";"), CORO_ELIMIT);
    assert_int_equal(coro_stream_buffered(&s), 10);
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, 10), 0);
    put(peer, "1234567;"); /* exactly the limit before it: fine */
    assert_int_equal(until(&e.loop, &s, ";"), 0);
    assert_view(&s, "1234567;");
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

/* Write `total` bytes of a pattern into a raw fd, a slice per loop pass,
 * then shut it down for writing. */
struct feeder {
    coro_frame co;
    int fd;
    size_t total, sent;
};

static CORO_FN(feeder_step)
{
    struct feeder *self = CORO_SELF(struct feeder);
    unsigned char chunk[1024];
    ssize_t n;
    CORO_BEGIN();
    while (self->sent < self->total) {
        size_t k =
            self->total - self->sent < sizeof chunk ? self->total - self->sent : sizeof chunk;
        for (size_t i = 0; i < k; i++)
            chunk[i] = (unsigned char)((self->sent + i) * 13u);
        n = write(self->fd, chunk, k);
        if (n > 0)
            self->sent += (size_t)n;
        else if (errno != EAGAIN)
            CORO_RAISE(-errno);
        CORO_SLEEP(0);
    }
    shutdown(self->fd, SHUT_WR);
    CORO_END();
}

/* test_read_until_eof: read(-1) gathers everything until EOF. */
static void test_read_all(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    struct feeder f;
    coro_task t;
    size_t len, total = 200 * 1024;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    memset(&f, 0, sizeof f);
    coro_frame_init(&f.co, feeder_step);
    f.fd = peer;
    f.total = total;
    assert_int_equal(coro_task_init(&t, &e.loop, &f.co), 0);
    assert_int_equal(op(&e.loop, R_READ, &s, -1), 0);
    const unsigned char *p = (const unsigned char *)coro_stream_data(&s, &len);
    assert_int_equal(len, total);
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(i * 13u))
            fail_msg("byte %zu differs", i);
    assert_true(coro_stream_at_eof(&s));
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(op(&e.loop, R_READ, &s, -1), 0); /* at EOF: b'' */
    assert_view(&s, "");
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

/* A reader whose socket always has data never has to wait: it still lets
 * the other tasks run now and then. */
struct hog {
    coro_frame co;
    coro_stream *s;
    coro_stream_op op;
    int *ticks;
    int reads, ticks_seen, full_reads;
};

static CORO_FN(hog_step)
{
    struct hog *self = CORO_SELF(struct hog);
    CORO_BEGIN();
    for (self->reads = 0; self->reads < 20; self->reads++) {
        CORO_AWAIT(coro_stream_read(&self->op, self->s, 16384));
        self->full_reads += CORO_RESULT.u.i == 16384;
    }
    self->ticks_seen = *self->ticks;
    CORO_END();
}

struct ticker {
    coro_frame co;
    int ticks, stop;
};

static CORO_FN(ticker_step)
{
    struct ticker *self = CORO_SELF(struct ticker);
    CORO_BEGIN();
    while (!self->stop) {
        self->ticks++;
        CORO_SLEEP(0);
    }
    CORO_END();
}

static void test_reader_fairness(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer, big = 4 << 20;
    struct hog h;
    struct ticker tk;
    coro_task th, tt;
    static char chunk[65536];
    size_t queued = 0;
    ssize_t n;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    while ((n = write(peer, chunk, sizeof chunk)) > 0)
        queued += (size_t)n;
    if (queued < 20 * 16384) { /* 20 full reads: more than the 16 in a row allowed */
        close(peer);
        coro_stream_close(&s);
        env_close(&e, 0);
        print_message("only %zu bytes fit in the socket: skipped\n", queued);
        skip();
    }
    memset(&h, 0, sizeof h);
    memset(&tk, 0, sizeof tk);
    coro_frame_init(&h.co, hog_step);
    coro_frame_init(&tk.co, ticker_step);
    h.s = &s;
    h.ticks = &tk.ticks;
    assert_int_equal(coro_task_init(&th, &e.loop, &h.co), 0);
    assert_int_equal(coro_task_init(&tt, &e.loop, &tk.co), 0);
    assert_int_equal(run_task(&e.loop, &th), 0);
    tk.stop = 1;
    assert_int_equal(run_task(&e.loop, &tt), 0);
    assert_int_equal(h.full_reads, 20); /* it never had to wait... */
    assert_true(h.ticks_seen >= 1);     /* ...and yet the ticker ran */
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

/* Two reads at once: the second is refused, the first unharmed. */
static void test_concurrent_reads(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    struct sop a, b;
    coro_task ta, tb;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    sop_init(&a, R_LINE, &s, 0);
    sop_init(&b, R_LINE, &s, 0);
    assert_int_equal(coro_task_init(&ta, &e.loop, &a.co), 0);
    assert_int_equal(coro_task_init(&tb, &e.loop, &b.co), 0);
    assert_int_equal(run_task(&e.loop, &tb), 0);
    assert_int_equal(b.err, CORO_ESTATE);
    put(peer, "line\n");
    assert_int_equal(run_task(&e.loop, &ta), 0);
    assert_int_equal(a.err, 0);
    assert_view(&s, "line\n");
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

static int cb_close_stream(void *arg) { return coro_stream_close(arg); }

/* close() from elsewhere while a read waits: the read ends as at EOF. */
static void test_close_while_reading(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    struct sop a;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    sop_init(&a, R_READ, &s, 100);
    assert_int_equal(coro_call_later(&e.loop, NULL, 0.01, cb_close_stream, &s), 0);
    assert_int_equal(run_sop(&e.loop, &a), 0);
    assert_int_equal(a.result, 0);
    assert_true(coro_stream_is_closed(&s));
    assert_true(coro_stream_at_eof(&s));
    /* later reads: EOF; writes: closed; wait_closed: at once */
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, 3), CORO_EINCOMPLETE);
    assert_int_equal(coro_stream_write(&s, "x", 1), CORO_ECLOSED);
    assert_int_equal(op(&e.loop, R_WAIT_CLOSED, &s, 0), 0);
    assert_int_equal(op(&e.loop, R_DRAIN, &s, 0), -ECONNRESET);
    close(peer);
    env_close(&e, 0);
}

/* ---- writing: SEMANTICS 43 and friends ---- */

#define HIGH (32 * 1024)
#define LOW (8 * 1024)

struct drain_test {
    coro_frame co;
    coro_stream *s;
    int peer;
    char *big;
    size_t big_len;
    coro_stream_op op;
    int soon_ran;   /* a call_soon queued before a drain has run */
    int drain_done; /* the paused drain returned */
    size_t size_at_return;
    int stop;
    /* what the reader saw */
    int saw_between; /* drain pending while low < size <= high */
    int saw_bad;     /* drain done while size > low */
    size_t got;
};

static int cb_flag(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

/* The peer: read 4 KiB per loop pass and watch the writer. */
struct slow_peer {
    coro_frame co;
    struct drain_test *t;
};

static CORO_FN(slow_peer_step)
{
    struct drain_test *self = CORO_SELF(struct slow_peer)->t;
    char buf[4096];
    ssize_t n;
    size_t size;
    CORO_BEGIN();
    while (!self->stop) {
        n = read(self->peer, buf, sizeof buf);
        if (n > 0)
            self->got += (size_t)n;
        size = coro_stream_write_buffer_size(self->s);
        if (!self->drain_done && size > LOW && size <= HIGH)
            self->saw_between = 1;
        if (self->drain_done && size > LOW)
            self->saw_bad = 1;
        CORO_SLEEP(0);
    }
    CORO_END();
}

static CORO_FN(drain_test_step)
{
    struct drain_test *self = CORO_SELF(struct drain_test);
    CORO_BEGIN();
    /* below the high-water mark: drain returns without suspending */
    if (coro_stream_write(self->s, self->big, 4096) != 0)
        CORO_RAISE(CORO_EINVAL);
    coro_call_soon(coro_stream_loop(self->s), NULL, cb_flag, &self->soon_ran);
    CORO_AWAIT(coro_stream_drain(&self->op, self->s));
    if (self->soon_ran)
        CORO_RAISE(-5001); /* it suspended */
    /* far above it: paused; drain waits until the buffer is at `low` */
    if (coro_stream_write(self->s, self->big, self->big_len) != 0)
        CORO_RAISE(CORO_EINVAL);
    if (coro_stream_write_buffer_size(self->s) <= HIGH)
        CORO_RAISE(-5002);
    CORO_AWAIT(coro_stream_drain(&self->op, self->s));
    self->size_at_return = coro_stream_write_buffer_size(self->s);
    self->drain_done = 1;
    CORO_END();
}

static void test_drain_backpressure(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    struct drain_test d;
    struct slow_peer sp;
    coro_task td, tp;
    int small = 4096;
    env_open(&e);
    memset(&d, 0, sizeof d);
    stream_peer(&e.loop, &s, &d.peer, NULL);
    setsockopt(coro_stream_fd(&s), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(d.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(coro_stream_set_write_limits(&s, HIGH, LOW), 0);
    assert_int_equal(coro_stream_set_write_limits(&s, LOW, HIGH), CORO_EINVAL);
    d.s = &s;
    d.big_len = 256 * 1024;
    d.big = calloc(1, d.big_len);
    assert_non_null(d.big);
    coro_frame_init(&d.co, drain_test_step);
    coro_frame_init(&sp.co, slow_peer_step);
    sp.t = &d;
    assert_int_equal(coro_task_init(&td, &e.loop, &d.co), 0);
    assert_int_equal(coro_task_init(&tp, &e.loop, &sp.co), 0);
    assert_int_equal(run_task(&e.loop, &td), 0);
    assert_true(d.soon_ran);              /* the second drain did suspend */
    assert_true(d.size_at_return <= LOW); /* resumed at the low-water mark... */
    assert_true(d.saw_between);           /* ...not as soon as it was below high */
    run_for(&e.loop, 0.05);
    d.stop = 1;
    assert_int_equal(run_task(&e.loop, &tp), 0);
    assert_false(d.saw_bad);
    /* everything arrives */
    while (d.got < 4096 + d.big_len) {
        run_for(&e.loop, 0.001);
        char buf[4096];
        ssize_t n = read(d.peer, buf, sizeof buf);
        if (n > 0)
            d.got += (size_t)n;
    }
    assert_int_equal(d.got, 4096 + d.big_len);
    assert_int_equal(coro_stream_write_buffer_size(&s), 0);
    coro_stream_close(&s);
    close(d.peer);
    free(d.big);
    env_close(&e, 0);
}

/* A drain cancelled while paused: the writer keeps flushing. */
static void test_cancel_drain(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    struct sop d;
    coro_task t;
    size_t len = 512 * 1024, got = 0;
    char *big = calloc(1, len), buf[65536];
    assert_non_null(big);
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    assert_int_equal(coro_stream_write(&s, big, len), 0);
    sop_init(&d, R_DRAIN, &s, 0);
    assert_int_equal(coro_task_init(&t, &e.loop, &d.co), 0);
    run_for(&e.loop, 0.01);
    assert_false(coro_task_done(&t));
    coro_task_cancel(&t);
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(d.err, CORO_ECANCELLED);
    while (got < len) {
        ssize_t n = read(peer, buf, sizeof buf);
        if (n > 0)
            got += (size_t)n;
        else
            run_for(&e.loop, 0.001);
    }
    assert_int_equal(coro_stream_write_buffer_size(&s), 0);
    assert_int_equal(op(&e.loop, R_DRAIN, &s, 0), 0);
    coro_stream_close(&s);
    close(peer);
    free(big);
    env_close(&e, 0);
}

/* write_eof: the peer reads EOF, this side still reads the reply. */
static void test_write_eof_half_close(void **state)
{
    (void)state;
    env e;
    coro_stream a, b;
    int sv[2];
    env_open(&e);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(coro_stream_init(&a, &e.loop, sv[0], NULL), 0);
    assert_int_equal(coro_stream_init(&b, &e.loop, sv[1], NULL), 0);
    assert_int_equal(coro_stream_write(&a, "request", 7), 0);
    assert_int_equal(coro_stream_write_eof(&a), 0);
    assert_int_equal(coro_stream_write_eof(&a), 0); /* twice: fine */
    assert_int_equal(coro_stream_write(&a, "more", 4), CORO_ESTATE);
    assert_int_equal(op(&e.loop, R_READ, &b, -1), 0);
    assert_view(&b, "request");
    assert_true(coro_stream_at_eof(&b));
    assert_int_equal(coro_stream_write(&b, "reply", 5), 0);
    assert_int_equal(coro_stream_close(&b), 0);
    assert_int_equal(op(&e.loop, R_WAIT_CLOSED, &b, 0), 0);
    assert_int_equal(op(&e.loop, R_READ, &a, -1), 0);
    assert_view(&a, "reply");
    assert_true(coro_stream_at_eof(&a));
    coro_stream_close(&a);

    /* write_eof with data still buffered: the shutdown waits for the flush */
    size_t len = 300 * 1024;
    char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i * 31u);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(coro_stream_init(&a, &e.loop, sv[0], NULL), 0);
    assert_int_equal(coro_stream_init(&b, &e.loop, sv[1], NULL), 0);
    assert_int_equal(coro_stream_write(&a, big, len), 0);
    assert_true(coro_stream_write_buffer_size(&a) > 0);
    assert_int_equal(coro_stream_write_eof(&a), 0);
    assert_int_equal(op(&e.loop, R_READ, &b, -1), 0);
    size_t got;
    const char *p = coro_stream_data(&b, &got);
    assert_int_equal(got, len);
    assert_memory_equal(p, big, len);
    coro_stream_close(&a);
    coro_stream_close(&b);
    free(big);
    env_close(&e, 0);
}

static void test_epipe_no_sigpipe(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    void (*old)(int) = signal(SIGPIPE, SIG_DFL); /* SIGPIPE would kill us */
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    close(peer);
    assert_int_equal(coro_stream_write(&s, "data", 4), -EPIPE);
    assert_int_equal(coro_stream_write(&s, "data", 4), -EPIPE); /* it sticks */
    assert_int_equal(op(&e.loop, R_DRAIN, &s, 0), -EPIPE);
    assert_int_equal(op(&e.loop, R_READ, &s, 10), -EPIPE);
    coro_stream_close(&s);
    assert_int_equal(op(&e.loop, R_WAIT_CLOSED, &s, 0), -EPIPE);
    env_close(&e, 0);
    signal(SIGPIPE, old);
}

/* A timed-out readline consumes nothing: the partial line stays. */
static void test_readline_timeout(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    struct sop t;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    put(peer, "par");
    sop_init(&t, R_LINE_TIMEOUT, &s, 0);
    t.timeout = 0.02;
    assert_int_equal(run_sop(&e.loop, &t), CORO_ETIMEDOUT);
    put(peer, "tial\n");
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), 0);
    assert_view(&s, "partial\n");
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

static void test_cancel_mid_read(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    struct sop t;
    coro_task task;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    put(peer, "12345");
    sop_init(&t, R_EXACTLY, &s, 10);
    assert_int_equal(coro_task_init(&task, &e.loop, &t.co), 0);
    run_for(&e.loop, 0.01);
    assert_false(coro_task_done(&task));
    coro_task_cancel(&task);
    assert_int_equal(run_task(&e.loop, &task), 0);
    assert_int_equal(t.err, CORO_ECANCELLED);
    assert_int_equal(coro_stream_buffered(&s), 5); /* nothing consumed */
    put(peer, "67890");
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, 10), 0);
    assert_view(&s, "1234567890");
    coro_stream_close(&s);
    close(peer);
    env_close(&e, 0);
}

/* Steady state: reads and writes reuse their buffers. */
struct pingpong {
    coro_frame co;
    coro_stream *a, *b;
    coro_stream_op op;
    char msg[1024];
    int i;
    long *calls;
    long calls_warm, calls_end;
};

static CORO_FN(pingpong_step)
{
    struct pingpong *self = CORO_SELF(struct pingpong);
    CORO_BEGIN();
    for (self->i = 0; self->i < 220; self->i++) {
        if (self->i == 20)
            self->calls_warm = *self->calls;
        if (coro_stream_write(self->a, self->msg, sizeof self->msg) != 0)
            CORO_RAISE(CORO_EINVAL);
        CORO_AWAIT(coro_stream_drain(&self->op, self->a));
        CORO_AWAIT(coro_stream_readexactly(&self->op, self->b, sizeof self->msg));
        if (coro_stream_write(self->b, "ok\n", 3) != 0)
            CORO_RAISE(CORO_EINVAL);
        CORO_AWAIT(coro_stream_readline(&self->op, self->a));
    }
    self->calls_end = *self->calls;
    CORO_END();
}

static void test_no_alloc_steady_state(void **state)
{
    (void)state;
    coro_loop loop;
    talloc ta = { 0 };
    coro_loop_options o;
    coro_stream a, b;
    int sv[2];
    struct pingpong pp;
    coro_task t;
    memset(&o, 0, sizeof o);
    o.alloc = talloc_fn;
    o.alloc_ud = &ta;
    o.debug = -1;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(coro_stream_init(&a, &loop, sv[0], NULL), 0);
    assert_int_equal(coro_stream_init(&b, &loop, sv[1], NULL), 0);
    memset(&pp, 0, sizeof pp);
    coro_frame_init(&pp.co, pingpong_step);
    pp.a = &a;
    pp.b = &b;
    pp.calls = &ta.calls;
    assert_int_equal(coro_task_init(&t, &loop, &pp.co), 0);
    assert_int_equal(run_task(&loop, &t), 0);
    assert_true(pp.calls_warm > 0);
    assert_int_equal(pp.calls_end, pp.calls_warm); /* 200 rounds, no allocation */
    coro_stream_close(&a);
    coro_stream_close(&b);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_stream_bad_args(void **state)
{
    (void)state;
    env e;
    coro_stream_op sop;
    coro_stream s;
    coro_stream_options bad = { .write_high = 10, .write_low = 20 };
    int peer;
    env_open(&e);
    assert_null(coro_stream_read(NULL, &s, 1));
    assert_null(coro_stream_read(&sop, NULL, 1));
    assert_null(coro_stream_readexactly(&sop, &s, -1));
    assert_null(coro_stream_readuntil(&sop, &s, NULL, 1));
    assert_null(coro_stream_readuntil(&sop, &s, "x", 0));
    assert_null(coro_stream_readline(NULL, &s));
    assert_null(coro_stream_drain(&sop, NULL));
    assert_null(coro_stream_wait_closed(NULL, &s));
    assert_int_equal(coro_stream_write(NULL, "x", 1), CORO_EINVAL);
    assert_int_equal(coro_stream_write_eof(NULL), CORO_EINVAL);
    assert_int_equal(coro_stream_close(NULL), CORO_EINVAL);
    assert_int_equal(coro_stream_abort(NULL), CORO_EINVAL);
    assert_int_equal(coro_stream_init(&s, &e.loop, -1, NULL), CORO_EINVAL);
    assert_int_equal(coro_stream_init(&s, &e.loop, 0, &bad), CORO_EINVAL);
    assert_int_equal(coro_stream_at_eof(NULL), 0);
    assert_int_equal(coro_stream_buffered(NULL), 0);
    size_t len = 9;
    assert_string_equal(coro_stream_data(NULL, &len), "");
    assert_int_equal(len, 0);
    /* awaiting what a bad init returned fails with EINVAL */
    stream_peer(&e.loop, &s, &peer, NULL);
    assert_int_equal(op(&e.loop, R_EXACTLY, &s, -1), CORO_EINVAL);
    assert_int_equal(coro_stream_write(&s, NULL, 0), 0);
    assert_int_equal(coro_stream_write(&s, NULL, 1), CORO_EINVAL);
    coro_sockaddr a;
    assert_int_equal(coro_stream_sockname(&s, &a), 0);
    assert_int_equal(a.u.sa.sa_family, AF_UNIX);
    assert_int_equal(coro_stream_abort(&s), 0);
    assert_int_equal(coro_stream_abort(&s), 0);
    assert_int_equal(coro_stream_peername(&s, &a), CORO_ECLOSED);
    close(peer);
    env_close(&e, 0);
}

/* ---- servers ---- */

/* What the handlers share with a test. */
struct shared {
    int active, max_active, started, served, failed;
    int reset;    /* hold handlers: abort with a RST instead of greeting */
    int fail;     /* hold handlers: raise this instead */
    int last_err; /* flood handlers: how the drain ended */
};

/* echo: read what comes and send it back, until EOF. */
struct echo {
    coro_frame co;
    coro_stream *s;
    coro_stream_op op;
};

static CORO_FN(echo_step)
{
    struct echo *self = CORO_SELF(struct echo);
    const char *p;
    size_t len;
    int rc;
    CORO_BEGIN();
    for (;;) {
        CORO_AWAIT(coro_stream_read(&self->op, self->s, 65536));
        if (CORO_RESULT.u.i == 0)
            break;
        p = coro_stream_data(self->s, &len);
        if ((rc = coro_stream_write(self->s, p, len)) != 0)
            CORO_RAISE(rc);
        CORO_AWAIT(coro_stream_drain(&self->op, self->s));
    }
    CORO_END();
}

static coro_frame *echo_connect(coro_stream *s, void *arg)
{
    (void)arg;
    struct echo *h = CORO_FRAME_NEW(coro_stream_loop(s), struct echo, echo_step);
    if (!h)
        return NULL;
    h->s = s;
    return &h->co;
}

/* hold: greet, then stay until the client closes; count what runs at once. */
struct hold {
    coro_frame co;
    coro_stream *s;
    struct shared *sh;
    coro_stream_op op;
    int counted;
};

static CORO_FN(hold_step)
{
    struct hold *self = CORO_SELF(struct hold);
    struct linger lg = { 1, 0 };
    CORO_BEGIN();
    self->sh->started++;
    if (++self->sh->active > self->sh->max_active)
        self->sh->max_active = self->sh->active;
    self->counted = 1;
    if (self->sh->fail)
        CORO_RAISE(self->sh->fail);
    if (self->sh->reset) {
        setsockopt(coro_stream_fd(self->s), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        coro_stream_abort(self->s);
        CORO_RETURN(coro_none());
    }
    coro_stream_write(self->s, "hi\n", 3);
    CORO_AWAIT(coro_stream_drain(&self->op, self->s));
    CORO_AWAIT(coro_stream_read(&self->op, self->s, -1));
    self->sh->served++;
    CORO_FINALLY
    if (self->counted) {
        self->counted = 0;
        self->sh->active--;
        if (CORO_RESULT.tag == CORO_ERROR)
            self->sh->failed++;
    }
    CORO_END();
}

static coro_frame *hold_connect(coro_stream *s, void *arg)
{
    struct hold *h = CORO_FRAME_NEW(coro_stream_loop(s), struct hold, hold_step);
    if (!h)
        return NULL;
    h->s = s;
    h->sh = arg;
    return &h->co;
}

/* A client: connect, send `msg`, read back `expect` bytes (or a line),
 * close. */
struct client {
    coro_frame co;
    const char *host; /* NULL with `path`: a Unix socket */
    const char *path;
    int port;
    const char *msg;
    size_t expect; /* bytes to read back; 0: one line */
    double linger; /* seconds to stay connected after the reply */
    coro_stream s;
    coro_open_connection_op open;
    coro_stream_op op;
    char got[256];
    size_t got_len;
    int err, close_err;
};

static CORO_FN(client_step)
{
    struct client *self = CORO_SELF(struct client);
    const char *p;
    CORO_BEGIN();
    if (self->path)
        CORO_AWAIT(coro_open_unix_connection(&self->open, &self->s, self->path, NULL));
    else
        CORO_AWAIT(coro_open_connection(&self->open, &self->s, self->host, self->port, NULL));
    if (self->msg) {
        coro_stream_write(&self->s, self->msg, strlen(self->msg));
        CORO_AWAIT(coro_stream_drain(&self->op, &self->s));
    }
    if (self->expect)
        CORO_AWAIT(coro_stream_readexactly(&self->op, &self->s, (ssize_t)self->expect));
    else
        CORO_AWAIT(coro_stream_readline(&self->op, &self->s));
    p = coro_stream_data(&self->s, &self->got_len);
    if (self->got_len >= sizeof self->got)
        self->got_len = sizeof self->got - 1;
    memcpy(self->got, p, self->got_len);
    if (self->linger > 0)
        CORO_SLEEP(self->linger);
    CORO_FINALLY
    self->err = coro_value_error(CORO_RESULT);
    coro_stream_close(&self->s);
    CORO_AWAIT_ERR(coro_stream_wait_closed(&self->op, &self->s), self->close_err);
    CORO_END();
}

static void client_init(struct client *c, const char *host, int port, const char *msg)
{
    memset(c, 0, sizeof *c);
    coro_frame_init(&c->co, client_step);
    c->host = host;
    c->port = port;
    c->msg = msg;
}

static int server_port(coro_server *srv)
{
    coro_sockaddr a;
    assert_int_equal(coro_server_sockname(srv, 0, &a), 0);
    return coro_sockaddr_port(&a);
}

/* Start a server in a task; returns its error. */
struct starter {
    coro_frame co;
    coro_server *srv;
    const char *host, *path;
    coro_connect_fn fn;
    void *arg;
    coro_server_options *opt;
    coro_start_server_op op;
    int err;
};

static CORO_FN(starter_step)
{
    struct starter *self = CORO_SELF(struct starter);
    CORO_BEGIN();
    if (self->path)
        CORO_AWAIT_ERR(coro_start_unix_server(&self->op, self->srv, self->path, self->fn, self->arg,
                                              self->opt),
                       self->err);
    else
        CORO_AWAIT_ERR(
            coro_start_server(&self->op, self->srv, self->host, 0, self->fn, self->arg, self->opt),
            self->err);
    CORO_END();
}

static int start_server(coro_loop *loop, coro_server *srv, const char *host, const char *path,
                        coro_connect_fn fn, void *arg, coro_server_options *opt)
{
    struct starter st;
    coro_task t;
    memset(&st, 0, sizeof st);
    coro_frame_init(&st.co, starter_step);
    st.srv = srv;
    st.host = host;
    st.path = path;
    st.fn = fn;
    st.arg = arg;
    st.opt = opt;
    assert_int_equal(coro_task_init(&t, loop, &st.co), 0);
    assert_int_equal(run_task(loop, &t), 0);
    return st.err;
}

/* Close a server and wait for its connections, in a task. */
struct closer {
    coro_frame co;
    coro_server *srv;
    coro_server_op op;
};

static CORO_FN(closer_step)
{
    struct closer *self = CORO_SELF(struct closer);
    CORO_BEGIN();
    coro_server_close(self->srv);
    CORO_AWAIT(coro_server_wait_closed(&self->op, self->srv));
    CORO_END();
}

static void stop_server(coro_loop *loop, coro_server *srv)
{
    struct closer c;
    coro_task t;
    coro_frame_init(&c.co, closer_step);
    c.srv = srv;
    assert_int_equal(coro_task_init(&t, loop, &c.co), 0);
    assert_int_equal(run_task(loop, &t), 0);
    assert_false(coro_server_is_serving(srv));
    assert_int_equal(coro_server_connections(srv), 0);
}

static int run_client(coro_loop *loop, struct client *c)
{
    coro_task t;
    assert_int_equal(coro_task_init(&t, loop, &c->co), 0);
    int rc = run_task(loop, &t);
    assert_int_equal(rc, c->err); /* the task fails as the client did */
    return c->err;
}

/* Connections come and go; the memory they used comes back. */
static void test_server_memory_per_connection(void **state)
{
    (void)state;
    talloc ta = { 0 };
    coro_loop_options o;
    coro_loop loop;
    coro_server srv;
    struct client c;
    size_t live_after_warmup = 0;
    char msg[3000];
    memset(&o, 0, sizeof o);
    o.alloc = talloc_fn;
    o.alloc_ud = &ta;
    o.debug = -1;
    memset(msg, 'm', sizeof msg - 2);
    msg[sizeof msg - 2] = '\n';
    msg[sizeof msg - 1] = '\0';
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(start_server(&loop, &srv, "127.0.0.1", NULL, echo_connect, NULL, NULL), 0);
    for (int i = 0; i < 60; i++) {
        if (i == 10)
            live_after_warmup = ta.live;
        client_init(&c, "127.0.0.1", server_port(&srv), msg);
        assert_int_equal(run_client(&loop, &c), 0);
        assert_int_equal(c.got_len, sizeof c.got - 1);
        run_for(&loop, 0.002); /* the server side ends too */
    }
    assert_int_equal(coro_server_connections(&srv), 0);
    assert_true(ta.live <= live_after_warmup); /* nothing kept per connection */
    stop_server(&loop, &srv);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
    assert_int_equal(ta.bad_osize, 0); /* every free passed its size */
}

static void test_server_echo(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct client c;
    env_open(&e);
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, echo_connect, NULL, NULL), 0);
    assert_true(coro_server_is_serving(&srv));
    coro_sockaddr a;
    assert_int_equal(coro_server_sockname(&srv, 0, &a), 0);
    assert_int_equal(a.u.sa.sa_family, AF_INET);
    int port = server_port(&srv);
    assert_true(port > 0);
    client_init(&c, "127.0.0.1", port, "hello, echo\n");
    assert_int_equal(run_client(&e.loop, &c), 0);
    assert_int_equal(c.close_err, 0);
    assert_string_equal(c.got, "hello, echo\n");
    /* "localhost": 127.0.0.1 first */
    client_init(&c, "localhost", port, "again\n");
    assert_int_equal(run_client(&e.loop, &c), 0);
    assert_string_equal(c.got, "again\n");
    stop_server(&e.loop, &srv);
    assert_int_equal(coro_server_sockname(&srv, 0, &a), CORO_EINVAL);
    /* now the port refuses */
    client_init(&c, "127.0.0.1", port, "x\n");
    assert_int_equal(run_client(&e.loop, &c), -ECONNREFUSED);
    assert_int_equal(coro_server_close(&srv), 0); /* twice: fine */
    env_close(&e, 0);
}

static void test_server_unix(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct client c;
    char path[64];
    struct stat st;
    env_open(&e);
    snprintf(path, sizeof path, "/tmp/coro-test-stream-%ld.sock", (long)getpid());
    unlink(path);
    assert_int_equal(start_server(&e.loop, &srv, NULL, path, echo_connect, NULL, NULL), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    client_init(&c, NULL, 0, "over unix\n");
    c.path = path;
    assert_int_equal(run_client(&e.loop, &c), 0);
    assert_string_equal(c.got, "over unix\n");
    stop_server(&e.loop, &srv);
    assert_int_equal(stat(path, &st), -1); /* removed by close */
    /* a stale socket file is replaced by the next server */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    coro_sockaddr a;
    assert_int_equal(coro_sockaddr_unix(&a, path), 0);
    assert_int_equal(bind(fd, &a.u.sa, a.len), 0);
    close(fd);
    assert_int_equal(start_server(&e.loop, &srv, NULL, path, echo_connect, NULL, NULL), 0);
    stop_server(&e.loop, &srv);
    client_init(&c, NULL, 0, "x\n");
    c.path = path;
    assert_int_equal(run_client(&e.loop, &c), -ENOENT);
    env_close(&e, 0);
}

static void test_open_connection_errors(void **state)
{
    (void)state;
    env e;
    coro_open_connection_op o;
    coro_stream s;
    struct client c;
    env_open(&e);
    assert_null(coro_open_connection(NULL, &s, "h", 1, NULL));
    assert_null(coro_open_connection(&o, NULL, "h", 1, NULL));
    assert_null(coro_open_connection(&o, &s, "h", 65536, NULL));
    assert_null(coro_open_connection(&o, &s, NULL, 1, NULL));
    assert_null(coro_open_unix_connection(&o, &s, NULL, NULL));
    assert_null(coro_open_unix_connection(&o, &s, "", NULL));
    /* refused, on a bound port that does not listen */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    coro_sockaddr a;
    assert_int_equal(coro_sockaddr_ip(&a, "127.0.0.1", 0), 0);
    assert_int_equal(bind(fd, &a.u.sa, a.len), 0);
    a.len = sizeof a.u;
    assert_int_equal(getsockname(fd, &a.u.sa, &a.len), 0);
    client_init(&c, "127.0.0.1", coro_sockaddr_port(&a), "x");
    assert_int_equal(run_client(&e.loop, &c), -ECONNREFUSED);
    close(fd);
    /* a server start that fails leaves nothing to close */
    coro_server srv;
    assert_int_equal(start_server(&e.loop, &srv, "203.0.113.77", NULL, echo_connect, NULL, NULL),
                     -EADDRNOTAVAIL);
    assert_int_equal(coro_server_close(&srv), 0);
    env_close(&e, 0);
}

/* A handler that fails is reported; the server keeps serving. A handler
 * that resets the connection: the client's reads, writes and drain fail
 * with ECONNRESET, for good. */
static void test_server_handler_errors(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct shared sh;
    struct client c;
    env_open(&e);
    memset(&sh, 0, sizeof sh);
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, hold_connect, &sh, NULL), 0);
    int port = server_port(&srv);
    sh.fail = CORO_EUSER - 1;
    client_init(&c, "127.0.0.1", port, NULL);
    assert_int_equal(run_client(&e.loop, &c), 0); /* readline at EOF: b'' */
    assert_int_equal(c.got_len, 0);
    run_for(&e.loop, 0.01);
    assert_int_equal(e.reports, 1);
    assert_int_equal(e.last_error, CORO_EUSER - 1);
    assert_non_null(strstr(e.last_message, "client_connected_cb"));
    assert_int_equal(sh.failed, 1);
    sh.fail = 0;
    client_init(&c, "127.0.0.1", port, NULL);
    assert_int_equal(run_client(&e.loop, &c), 0);
    assert_string_equal(c.got, "hi\n");
    run_for(&e.loop, 0.01); /* the handler sees the EOF */
    assert_int_equal(sh.served, 1);

    /* reset */
    sh.reset = 1;
    client_init(&c, "127.0.0.1", port, NULL);
    assert_int_equal(run_client(&e.loop, &c), -ECONNRESET);
    assert_int_equal(c.close_err, -ECONNRESET);
    stop_server(&e.loop, &srv);
    env_close(&e, 1);
}

/* serve_forever: ends with 0 when the server is closed; when cancelled it
 * closes the server, waits for the connections, and is cancelled. */
struct forever {
    coro_frame co;
    coro_server *srv;
    coro_server_op op;
    int err;
};

static CORO_FN(forever_step)
{
    struct forever *self = CORO_SELF(struct forever);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_server_serve_forever(&self->op, self->srv), self->err);
    CORO_END();
}

static int cb_close_server(void *arg) { return coro_server_close(arg); }

static void test_serve_forever(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct forever f, f2;
    struct shared sh;
    coro_task t, t2, tc;
    struct client c;
    env_open(&e);
    memset(&sh, 0, sizeof sh);
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, hold_connect, &sh, NULL), 0);
    memset(&f, 0, sizeof f);
    coro_frame_init(&f.co, forever_step);
    f.srv = &srv;
    f2 = f;
    assert_int_equal(coro_task_init(&t, &e.loop, &f.co), 0);
    assert_int_equal(coro_task_init(&t2, &e.loop, &f2.co), 0);
    assert_int_equal(coro_call_later(&e.loop, NULL, 0.02, cb_close_server, &srv), 0);
    assert_int_equal(run_task(&e.loop, &t2), 0);
    assert_int_equal(f2.err, CORO_ESTATE); /* one serve_forever at a time */
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(f.err, 0);
    assert_false(coro_server_is_serving(&srv));
    assert_int_equal(run_task(&e.loop, &t2), 0);

    /* cancelled while a connection is open: waits for it */
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, hold_connect, &sh, NULL), 0);
    memset(&f, 0, sizeof f);
    coro_frame_init(&f.co, forever_step);
    f.srv = &srv;
    client_init(&c, "127.0.0.1", server_port(&srv), NULL);
    c.linger = 0.1;
    assert_int_equal(coro_task_init(&t, &e.loop, &f.co), 0);
    assert_int_equal(coro_task_init(&tc, &e.loop, &c.co), 0);
    run_for(&e.loop, 0.03);
    assert_int_equal(coro_server_connections(&srv), 1);
    coro_task_cancel(&t);
    run_for(&e.loop, 0.01);
    assert_false(coro_server_is_serving(&srv)); /* closed at once */
    assert_false(coro_task_done(&t));           /* but waiting for the client */
    assert_int_equal(run_task(&e.loop, &t), 0); /* forever_step caught it */
    assert_int_equal(f.err, CORO_ECANCELLED);
    assert_true(coro_task_done(&tc));
    assert_int_equal(c.err, 0);
    assert_string_equal(c.got, "hi\n");
    assert_int_equal(coro_server_connections(&srv), 0);
    env_close(&e, 0);
}

/* max_connections: never more handlers at once; everyone is served. */
static void test_server_connection_limit(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct shared sh;
    struct client c[5];
    coro_task t[5];
    coro_server_options o;
    env_open(&e);
    memset(&sh, 0, sizeof sh);
    memset(&o, 0, sizeof o);
    o.max_connections = 2;
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, hold_connect, &sh, &o), 0);
    int port = server_port(&srv);
    for (int i = 0; i < 5; i++) {
        client_init(&c[i], "127.0.0.1", port, NULL);
        c[i].linger = 0.02;
        assert_int_equal(coro_task_init(&t[i], &e.loop, &c[i].co), 0);
    }
    run_for(&e.loop, 0.01);
    assert_int_equal(coro_server_connections(&srv), 2); /* the others wait */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(run_task(&e.loop, &t[i]), 0);
        assert_int_equal(c[i].err, 0);
        assert_string_equal(c[i].got, "hi\n");
    }
    run_for(&e.loop, 0.01);
    assert_int_equal(sh.max_active, 2);
    assert_int_equal(srv.peak, 2);
    assert_int_equal(sh.served, 5);
    stop_server(&e.loop, &srv);
    env_close(&e, 0);
}

/* cancel_clients: every handler is cancelled, its connection aborted. */
static void test_server_cancel_clients(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct shared sh;
    struct client c[3];
    coro_task t[3];
    env_open(&e);
    memset(&sh, 0, sizeof sh);
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, hold_connect, &sh, NULL), 0);
    for (int i = 0; i < 3; i++) {
        client_init(&c[i], "127.0.0.1", server_port(&srv), NULL);
        c[i].expect = 100; /* more than "hi\n": waits for EOF */
        assert_int_equal(coro_task_init(&t[i], &e.loop, &c[i].co), 0);
    }
    run_for(&e.loop, 0.02);
    assert_int_equal(coro_server_connections(&srv), 3);
    assert_int_equal(coro_server_cancel_clients(&srv), 3);
    for (int i = 0; i < 3; i++) {
        int rc = run_task(&e.loop, &t[i]);
        assert_int_equal(rc, c[i].err);
        assert_true(c[i].err == CORO_EINCOMPLETE || c[i].err == -ECONNRESET);
    }
    assert_int_equal(sh.active, 0);
    assert_int_equal(sh.served, 0);
    stop_server(&e.loop, &srv);
    env_close(&e, 0);
}

/* ---- EMFILE: pause, retry, recover ---- */

/* The smallest soft limit under which exactly `n` more fds can be opened. */
static rlim_t limit_for(int n)
{
    int fd = 0;
    for (int free_slots = 0;; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && ++free_slots == n)
            break;
    }
    return (rlim_t)fd + 1;
}

static int raw_connect(int port)
{
    coro_sockaddr a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(coro_sockaddr_ip(&a, "127.0.0.1", port), 0);
    int rc = connect(fd, &a.u.sa, a.len);
    assert_true(rc == 0 || errno == EINPROGRESS);
    return fd;
}

#define EMFILE_CLIENTS 6

static void test_server_emfile(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct shared sh;
    struct rlimit saved, low;
    int cfd[EMFILE_CLIENTS];
    if (under_valgrind()) {
        /* valgrind emulates RLIMIT_NOFILE by closing what accept(2) returned
         * above the limit: the kernel has dequeued that connection, and it is
         * lost, which a real EMFILE never does */
        print_message("skipped under valgrind (its RLIMIT_NOFILE is emulated)\n");
        skip();
    }
    env_open(&e);
    memset(&sh, 0, sizeof sh);
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, hold_connect, &sh, NULL), 0);
    int port = server_port(&srv);
    /* the connections wait in the kernel's backlog... */
    for (int i = 0; i < EMFILE_CLIENTS; i++)
        cfd[i] = raw_connect(port);
    /* ...and the server may open only two more descriptors */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = limit_for(2);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    run_for(&e.loop, 0.35);
    uint64_t accepts = srv.accepts, pauses = srv.pauses;
    size_t conns = coro_server_connections(&srv);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    print_message("emfile: %zu served, %llu accept calls, %llu pauses in 0.35 s\n", conns,
                  (unsigned long long)accepts, (unsigned long long)pauses);
    assert_int_equal(conns, 2);
    assert_true(pauses >= 2 && pauses <= 5); /* retried every 100 ms */
    assert_true(accepts <= 2 + pauses + 2);  /* no spinning on accept */
    assert_int_equal(e.reports, 1);          /* and one report, not one per pause */
    assert_true(coro_server_is_serving(&srv));
    /* descriptors are back: the others get in at the next retry */
    double t0 = now_s();
    while (sh.started < EMFILE_CLIENTS && now_s() - t0 < 5)
        run_for(&e.loop, 0.01);
    assert_int_equal(sh.started, EMFILE_CLIENTS);
    for (int i = 0; i < EMFILE_CLIENTS; i++) {
        char buf[8];
        ssize_t n;
        t0 = now_s();
        while ((n = recv(cfd[i], buf, sizeof buf, 0)) < 0 && now_s() - t0 < 5)
            run_for(&e.loop, 0.005);
        assert_int_equal(n, 3);
        assert_memory_equal(buf, "hi\n", 3);
        close(cfd[i]);
    }
    t0 = now_s();
    while (sh.active > 0 && now_s() - t0 < 5)
        run_for(&e.loop, 0.01);
    assert_int_equal(sh.served, EMFILE_CLIENTS);
    stop_server(&e.loop, &srv);
    env_close(&e, 1); /* every pause, reported once (rate-limited) */
}

/* ---- stress: many concurrent connections through one echo server ---- */

#define STRESS_BYTES 8192

struct stress {
    int port, n;
    int connected, ok, bad;
    coro_event all_in;         /* every client is connected */
    coro_semaphore connecting; /* SYNs in flight at once */
};

struct stress_client {
    coro_frame co;
    struct stress *st;
    coro_stream s;
    coro_open_connection_op open;
    coro_stream_op op;
    coro_semaphore_acquire_op acq;
    coro_event_wait_op ev;
    int held, cerr;
    unsigned char out[STRESS_BYTES];
};

static CORO_FN(stress_client_step)
{
    struct stress_client *self = CORO_SELF(struct stress_client);
    struct stress *st = self->st;
    CORO_BEGIN();
    CORO_AWAIT(coro_semaphore_acquire(&self->acq, &st->connecting));
    self->held = 1;
    CORO_AWAIT(coro_open_connection(&self->open, &self->s, "127.0.0.1", st->port, NULL));
    self->held = 0;
    coro_semaphore_release(&st->connecting);
    if (++st->connected == st->n)
        coro_event_set(&st->all_in);
    CORO_AWAIT(coro_event_wait(&self->ev, &st->all_in));
    if (coro_stream_write(&self->s, self->out, sizeof self->out) != 0)
        CORO_RAISE(CORO_EINVAL);
    CORO_AWAIT(coro_stream_drain(&self->op, &self->s));
    CORO_AWAIT(coro_stream_readexactly(&self->op, &self->s, STRESS_BYTES));
    if (memcmp(coro_stream_data(&self->s, NULL), self->out, STRESS_BYTES) == 0)
        st->ok++;
    else
        st->bad++;
    CORO_FINALLY
    if (self->held)
        coro_semaphore_release(&st->connecting);
    coro_stream_close(&self->s);
    CORO_AWAIT_ERR(coro_stream_wait_closed(&self->op, &self->s), self->cerr);
    CORO_END();
}

struct stress_main {
    coro_frame co;
    struct stress *st;
    coro_server srv;
    coro_start_server_op start;
    coro_server_op wc;
    coro_task **tasks;
    int i, failures;
    uint32_t seed;
};

static CORO_FN(stress_main_step)
{
    struct stress_main *self = CORO_SELF(struct stress_main);
    struct stress *st = self->st;
    coro_loop *loop = coro_get_running_loop();
    struct stress_client *c;
    CORO_BEGIN();
    CORO_AWAIT(
        coro_start_server(&self->start, &self->srv, "127.0.0.1", 0, echo_connect, NULL, NULL));
    st->port = server_port(&self->srv);
    for (self->i = 0; self->i < st->n; self->i++) {
        c = CORO_FRAME_NEW(loop, struct stress_client, stress_client_step);
        if (!c)
            CORO_RAISE(CORO_ENOMEM);
        c->st = st;
        for (size_t k = 0; k < sizeof c->out; k++) { /* xorshift32 */
            self->seed ^= self->seed << 13;
            self->seed ^= self->seed >> 17;
            self->seed ^= self->seed << 5;
            c->out[k] = (unsigned char)self->seed;
        }
        self->tasks[self->i] = coro_spawn(loop, &c->co);
        if (!self->tasks[self->i])
            CORO_RAISE(CORO_ENOMEM);
    }
    for (self->i = 0; self->i < st->n; self->i++) {
        CORO_AWAIT_ERR(self->tasks[self->i], self->failures);
        if (self->failures)
            st->bad++;
        coro_task_release(self->tasks[self->i]);
    }
    coro_server_close(&self->srv);
    CORO_AWAIT(coro_server_wait_closed(&self->wc, &self->srv));
    CORO_END();
}

static void test_stress_echo(void **state)
{
    (void)state;
    env e;
    struct stress st;
    struct stress_main m;
    coro_task t;
    struct rlimit rl, saved;
    int n = 500;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rl = saved;
    if (rl.rlim_cur < (rlim_t)(2 * n + 64)) { /* both ends of every connection are ours */
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)(2 * n + 64))
            n = ((int)rl.rlim_cur - 64) / 2;
    }
    print_message("stress: %d connections x %d bytes\n", n, STRESS_BYTES);
    env_open(&e);
    memset(&st, 0, sizeof st);
    st.n = n;
    assert_int_equal(coro_event_init(&st.all_in, &e.loop), 0);
    assert_int_equal(coro_semaphore_init(&st.connecting, &e.loop, 64), 0);
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, stress_main_step);
    m.st = &st;
    m.seed = 2463534242u;
    m.tasks = calloc((size_t)n, sizeof *m.tasks);
    assert_non_null(m.tasks);
    double t0 = now_s();
    assert_int_equal(coro_task_init(&t, &e.loop, &m.co), 0);
    assert_int_equal(run_task(&e.loop, &t), 0);
    double took = now_s() - t0;
    print_message("stress: %.2f s, peak %zu connections\n", took, m.srv.peak);
    assert_int_equal(st.ok, n);
    assert_int_equal(st.bad, 0);
    assert_int_equal(m.srv.peak, (size_t)n); /* all of them at once */
    if (!under_valgrind())
        assert_true(took < 10.0);
    free(m.tasks);
    env_close(&e, 0);
    setrlimit(RLIMIT_NOFILE, &saved);
}

/* The building blocks under coro_start_server, each on its own: init,
 * listen and start refuse bad arguments and a closed server, and a server
 * put together by hand serves. */
/* ---- servers that hold up: shutdown, deadlines, memory ---- */

/* flood: write to a client that never reads until the writer is paused,
 * wait for the drain, swallow whatever ends it (a cancel too), return. */
struct flood {
    coro_frame co;
    coro_stream *s;
    struct shared *sh;
    coro_stream_op op;
    int err;
};

static CORO_FN(flood_step)
{
    struct flood *self = CORO_SELF(struct flood);
    static const char block[4096];
    CORO_BEGIN();
    self->sh->started++;
    while (coro_stream_write_buffer_size(self->s) <= 64 * 1024)
        if (coro_stream_write(self->s, block, sizeof block) != 0)
            break;
    self->sh->active++;
    CORO_AWAIT_ERR(coro_stream_drain(&self->op, self->s), self->err);
    self->sh->active--;
    self->sh->last_err = self->err;
    CORO_END(); /* returns normally, as echo_server's handler does */
}

static coro_frame *flood_connect(coro_stream *s, void *arg)
{
    struct flood *f = CORO_FRAME_NEW(coro_stream_loop(s), struct flood, flood_step);
    if (!f)
        return NULL;
    f->s = s;
    f->sh = arg;
    return &f->co;
}

/* The graceful-shutdown recipe: close, cancel the clients, wait_closed,
 * all bounded by wait_for. */
struct shutdown_task {
    coro_frame co;
    coro_server *srv;
    double grace;
    coro_server_op op;
    coro_wait_for_op wf;
    size_t cancelled;
    int err;
};

static CORO_FN(shutdown_step)
{
    struct shutdown_task *self = CORO_SELF(struct shutdown_task);
    CORO_BEGIN();
    coro_server_close(self->srv);
    self->cancelled = coro_server_cancel_clients(self->srv);
    CORO_AWAIT_ERR(
        coro_wait_for(&self->wf, self->grace, coro_server_wait_closed(&self->op, self->srv)),
        self->err);
    CORO_END();
}

/* A client that never reads, a handler that catches the cancel and
 * returns: the shutdown still ends at once (the output is dropped). */
static void test_server_shutdown_non_reading_client(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    struct shared sh;
    struct shutdown_task st;
    coro_task t;
    int fds[2];
    env_open(&e);
    memset(&sh, 0, sizeof sh);
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, flood_connect, &sh, NULL), 0);
    for (int i = 0; i < 2; i++) {
        fds[i] = raw_connect(server_port(&srv));
        int small = 4096; /* fill the path quickly */
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    for (int i = 0; i < 100 && sh.active < 2; i++)
        run_for(&e.loop, 0.01);
    assert_int_equal(sh.active, 2); /* both paused in drain */
    memset(&st, 0, sizeof st);
    coro_frame_init(&st.co, shutdown_step);
    st.srv = &srv;
    st.grace = 0.5;
    double t0 = now_s();
    assert_int_equal(coro_task_init(&t, &e.loop, &st.co), 0);
    assert_int_equal(run_task(&e.loop, &t), 0);
    assert_int_equal(st.cancelled, 2);
    assert_int_equal(st.err, 0); /* not CORO_ETIMEDOUT: nobody held it */
    assert_true(now_s() - t0 < 0.4);
    assert_int_equal(coro_server_connections(&srv), 0);
    assert_int_equal(sh.last_err, CORO_ECANCELLED);
    for (int i = 0; i < 2; i++)
        close(fds[i]);
    env_close(&e, 0);
}

/* ---- deadlines ---- */

/* A slowloris peer: one byte every `every` seconds, `left` times. */
struct trickle {
    coro_loop *loop;
    coro_handle h;
    int fd;
    int left;
    double every;
};

static int trickle_cb(void *arg)
{
    struct trickle *t = arg;
    if (t->left-- > 0) {
        put(t->fd, "x");
        coro_call_later(t->loop, &t->h, t->every, trickle_cb, t);
    }
    return 0;
}

static void trickle_start(struct trickle *t, coro_loop *loop, int fd, int n, double every)
{
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->fd = fd;
    t->left = n;
    t->every = every;
    coro_handle_init(&t->h);
    assert_int_equal(coro_call_later(loop, &t->h, every, trickle_cb, t), 0);
}

/* The read deadline spans reads: a trickling peer cannot stretch it. The
 * stream stays open; what came is still there once the deadline goes. */
static void test_stream_read_deadline(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    struct trickle tr;
    char buf[64];
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    /* success: the line comes before the deadline */
    assert_int_equal(coro_stream_set_read_deadline(&s, 0.2), 0);
    put(peer, "GET /\n");
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), 0);
    assert_view(&s, "GET /\n");
    /* a slowloris: a byte every 10 ms, never the newline */
    assert_int_equal(coro_stream_set_read_deadline(&s, 0.08), 0);
    trickle_start(&tr, &e.loop, peer, 1000, 0.01);
    double t0 = now_s();
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), CORO_ETIMEDOUT);
    double took = now_s() - t0;
    assert_true(took >= 0.075);
    assert_true(took < 0.5);
    coro_handle_cancel(&tr.h);
    assert_true(coro_stream_read_timed_out(&s));
    assert_int_equal(op(&e.loop, R_READ, &s, 10), CORO_ETIMEDOUT); /* it sticks */
    /* the stream is the caller's: it still writes */
    assert_int_equal(coro_stream_write(&s, "408\n", 4), 0);
    assert_int_equal(read(peer, buf, sizeof buf), 4);
    /* clearing the deadline: nothing was consumed */
    size_t had = coro_stream_buffered(&s);
    assert_true(had >= 5);
    assert_int_equal(coro_stream_set_read_deadline(&s, 0), 0);
    assert_false(coro_stream_read_timed_out(&s));
    put(peer, "\n");
    assert_int_equal(op(&e.loop, R_LINE, &s, 0), 0);
    size_t len;
    coro_stream_data(&s, &len);
    assert_true(len > had);
    /* bad arguments */
    assert_int_equal(coro_stream_set_read_deadline(NULL, 1), CORO_EINVAL);
    assert_int_equal(coro_stream_set_read_deadline(&s, -1), CORO_EINVAL);
    assert_int_equal(coro_stream_set_write_deadline(&s, 0.0 / 0.0), CORO_EINVAL);
    assert_int_equal(coro_stream_set_idle_timeout(NULL, 1), CORO_EINVAL);
    coro_stream_close(&s);
    assert_int_equal(coro_stream_set_read_deadline(&s, 1), CORO_ECLOSED);
    close(peer);
    env_close(&e, 0);
}

/* Fill the write buffer of a stream whose peer does not read. */
static void fill_unread(coro_stream *s)
{
    static const char block[4096];
    while (coro_stream_write_buffer_size(s) <= 64 * 1024)
        assert_int_equal(coro_stream_write(s, block, sizeof block), 0);
}

/* Output still buffered at the write deadline: the stream is aborted with
 * CORO_ETIMEDOUT; output all sent by then: the deadline lapses. */
static void test_stream_write_deadline(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    char buf[8];
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    /* success: a small write goes at once; the deadline lapses */
    assert_int_equal(coro_stream_set_write_deadline(&s, 0.03), 0);
    assert_int_equal(coro_stream_write(&s, "ok\n", 3), 0);
    run_for(&e.loop, 0.06);
    assert_false(coro_stream_is_closing(&s));
    assert_int_equal(read(peer, buf, sizeof buf), 3);
    assert_int_equal(coro_stream_write(&s, "ok\n", 3), 0);
    /* the peer stops reading */
    fill_unread(&s);
    assert_int_equal(coro_stream_set_write_deadline(&s, 0.05), 0);
    double t0 = now_s();
    assert_int_equal(op(&e.loop, R_DRAIN, &s, 0), CORO_ETIMEDOUT);
    assert_true(now_s() - t0 >= 0.045);
    assert_true(now_s() - t0 < 0.5);
    assert_true(coro_stream_is_closed(&s)); /* aborted */
    assert_int_equal(coro_stream_memory(&s), 0);
    assert_int_equal(coro_stream_write(&s, "x", 1), CORO_ETIMEDOUT);
    assert_int_equal(op(&e.loop, R_WAIT_CLOSED, &s, 0), CORO_ETIMEDOUT);
    close(peer);
    env_close(&e, 0);
}

/* close() flushes at most until the write deadline. */
static void test_stream_write_deadline_bounds_close(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    fill_unread(&s);
    assert_int_equal(coro_stream_set_write_deadline(&s, 0.05), 0);
    coro_stream_close(&s);
    assert_false(coro_stream_is_closed(&s)); /* flushing */
    assert_int_equal(op(&e.loop, R_WAIT_CLOSED, &s, 0), CORO_ETIMEDOUT);
    assert_true(coro_stream_is_closed(&s));
    close(peer);
    env_close(&e, 0);
}

/* Idle: aborted after 1 to 1.25 times the timeout with nothing moving;
 * a byte now and then keeps it alive. */
static void test_stream_idle_timeout(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    coro_stream_options o;
    int peer;
    struct trickle tr;
    env_open(&e);
    memset(&o, 0, sizeof o);
    o.idle_timeout = 0.08;
    stream_peer(&e.loop, &s, &peer, &o);
    /* success: a byte every 20 ms for 0.3 s keeps it open */
    trickle_start(&tr, &e.loop, peer, 15, 0.02);
    for (int i = 0; i < 15; i++)
        assert_int_equal(op(&e.loop, R_READ, &s, 1), 0);
    assert_false(coro_stream_is_closing(&s));
    /* silence */
    double t0 = now_s();
    assert_int_equal(op(&e.loop, R_READ, &s, 1), CORO_ETIMEDOUT);
    double took = now_s() - t0;
    assert_true(took >= 0.075);
    assert_true(took < 0.5);
    assert_true(coro_stream_is_closed(&s));
    assert_int_equal(op(&e.loop, R_WAIT_CLOSED, &s, 0), CORO_ETIMEDOUT);
    close(peer);
    env_close(&e, 0);
}

/* ---- memory: buffers go back when a stream goes idle ---- */

#define IDLE_STREAMS 48

/* Bulk traffic: once a recv took a whole pooled buffer (16 KiB), a read
 * that asks for more gets a buffer twice its size (at most 128 KiB) and
 * takes a 64 KiB message in one recv; what that recv takes past the ask
 * stays buffered for the next read; small messages bring the pooled size
 * back. A bulk buffer the allocator refuses fails that read with
 * CORO_ENOMEM, and the stream reads on. */
static void test_bulk_reads(void **state)
{
    (void)state;
    coro_loop loop;
    talloc ta = { 0 };
    coro_loop_options lo = talloc_options(&ta);
    coro_stream s;
    int peer;
    static char msg[64 * 1024];
    size_t len;
    const char *p;
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)(i * 7 + i / 251);
    assert_int_equal(coro_loop_init(&loop, &lo), 0);
    stream_peer(&loop, &s, &peer, NULL);
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    /* the first read: a pooled buffer, filled */
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, 16 * 1024);
    assert_memory_equal(p, msg, len);
    /* the rest in one read, into a 64 KiB buffer */
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, sizeof msg - 16 * 1024);
    assert_memory_equal(p, msg + 16 * 1024, len);
    assert_int_equal(coro_stream_memory(&s), 128 * 1024);
    /* the next message: 64 KiB in one read */
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, sizeof msg);
    assert_memory_equal(p, msg, len);
    /* more than the read asked for: one recv takes it all, the rest stays
     * buffered for the next read */
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(write(peer, msg, 100), 100);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, sizeof msg);
    assert_memory_equal(p, msg, len);
    assert_int_equal(coro_stream_buffered(&s), 100);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, 100);
    assert_memory_equal(p, msg, len);
    /* a read that asks for little still gets a pooled buffer */
    assert_int_equal(write(peer, msg, 100), 100);
    assert_int_equal(op(&loop, R_READ, &s, 10), 0);
    assert_int_equal(coro_stream_memory(&s), 128 * 1024); /* (the one it held, not empty) */
    assert_int_equal(op(&loop, R_READ, &s, 100), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, 90);
    assert_memory_equal(p, msg + 10, len);
    /* small messages: after a few, bulk is forgotten */
    for (int i = 0; i < 10; i++) {
        put(peer, "x");
        assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
        assert_view(&s, "x");
    }
    assert_int_equal(coro_stream_memory(&s), 16 * 1024);
    /* bulk again, and the allocator refuses the 64 KiB buffer */
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    coro_stream_data(&s, &len);
    assert_int_equal(len, 16 * 1024);
    ta.fail_at = ta.calls + 1; /* the next call: the 64 KiB buffer */
    assert_int_equal(op(&loop, R_READ, &s, 65536), CORO_ENOMEM);
    ta.fail_at = 0;
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, sizeof msg - 16 * 1024);
    assert_memory_equal(p, msg + 16 * 1024, len);
    coro_stream_close(&s);
    close(peer);
    /* a bulk read that asks for 20,000 bytes: a buffer of twice that */
    stream_peer(&loop, &s, &peer, NULL);
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    assert_int_equal(coro_stream_memory(&s), 16 * 1024);
    assert_int_equal(op(&loop, R_READ, &s, 20000), 0);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, 20000);
    assert_memory_equal(p, msg + 16 * 1024, len);
    assert_int_equal(coro_stream_memory(&s), 40000);
    coro_stream_close(&s);
    close(peer);
    run_for(&loop, 0.01);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
}

/* A bulk reader that waits keeps its (not pooled) 64 KiB buffer for a
 * moment: the next message takes it without calling the allocator; a
 * read still waiting 0.1 to 0.2 s later gives it back. When the timer that gives
 * it back cannot be armed (out of memory), the buffer goes at once. */
static void test_bulk_buffer_held_across_waits(void **state)
{
    (void)state;
    coro_loop loop;
    talloc ta = { 0 };
    coro_loop_options lo = talloc_options(&ta);
    coro_stream s;
    struct sop t;
    coro_task task;
    coro_handle stop;
    int peer;
    size_t calls;
    static char msg[64 * 1024];
    const char *p;
    size_t len;
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)(i * 13 + i / 509);
    assert_int_equal(coro_loop_init(&loop, &lo), 0);
    stream_peer(&loop, &s, &peer, NULL);
    /* bulk: 16 KiB, then the rest into a 64 KiB buffer */
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    assert_int_equal(coro_stream_memory(&s), 128 * 1024);
    /* a read waits with nothing unread: the buffer stays */
    sop_init(&t, R_READ, &s, 65536);
    assert_int_equal(coro_task_init(&task, &loop, &t.co), 0);
    run_for(&loop, 0.01);
    assert_false(coro_future_done(coro_task_future(&task)));
    assert_int_equal(coro_stream_memory(&s), 128 * 1024);
    /* the next message: read into it, the allocator is not called */
    calls = ta.calls;
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(run_task(&loop, &task), 0);
    assert_int_equal(t.result, (int64_t)sizeof msg);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, sizeof msg);
    assert_memory_equal(p, msg, len);
    assert_int_equal(ta.calls, calls);
    /* a message every 50 ms for 0.4 s: every wait keeps it (the hold is
     * extended), still no allocator call */
    for (int i = 0; i < 8; i++) {
        sop_init(&t, R_READ, &s, 65536);
        assert_int_equal(coro_task_init(&task, &loop, &t.co), 0);
        run_for(&loop, 0.05);
        assert_int_equal(coro_stream_memory(&s), 128 * 1024);
        assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
        assert_int_equal(run_task(&loop, &task), 0);
        assert_int_equal(t.result, (int64_t)sizeof msg);
    }
    assert_int_equal(ta.calls, calls);
    /* still waiting 0.2 s later: the buffer goes back */
    sop_init(&t, R_READ, &s, 65536);
    assert_int_equal(coro_task_init(&task, &loop, &t.co), 0);
    run_for(&loop, 0.3);
    assert_false(coro_future_done(coro_task_future(&task)));
    assert_int_equal(coro_stream_memory(&s), 0);
    /* and a message after that still reads whole */
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(run_task(&loop, &task), 0);
    assert_int_equal(t.result, (int64_t)sizeof msg);
    p = coro_stream_data(&s, &len);
    assert_int_equal(len, sizeof msg);
    assert_memory_equal(p, msg, len);
    coro_stream_close(&s);
    close(peer);
    run_for(&loop, 0.01);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);

    /* no timer (the allocator refuses the loop's timer heap): the bulk
     * buffer goes back at the wait, as any other */
    assert_int_equal(coro_loop_init(&loop, &lo), 0);
    stream_peer(&loop, &s, &peer, NULL);
    assert_int_equal(write(peer, msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    assert_int_equal(op(&loop, R_READ, &s, 65536), 0);
    assert_int_equal(coro_stream_memory(&s), 128 * 1024);
    sop_init(&t, R_READ, &s, 65536);
    assert_int_equal(coro_task_init(&task, &loop, &t.co), 0);
    coro_handle_init(&stop);
    assert_int_equal(coro_call_soon(&loop, &stop, stop_cb, &loop), 0);
    /* one pass: the read parks, and its timer (the loop's first: the
     * heap's array) is refused */
    ta.fail_at = ta.calls + 1;
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    ta.fail_at = 0;
    assert_false(coro_future_done(coro_task_future(&task)));
    assert_int_equal(coro_stream_memory(&s), 0);
    assert_int_equal(write(peer, msg, 100), 100);
    assert_int_equal(run_task(&loop, &task), 0);
    assert_int_equal(t.result, 100);
    coro_stream_close(&s);
    close(peer);
    run_for(&loop, 0.01);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
}

static void test_stream_buffers_released_when_idle(void **state)
{
    (void)state;
    coro_loop loop;
    talloc ta = { 0 };
    coro_loop_options lo = talloc_options(&ta);
    static coro_stream s[IDLE_STREAMS];
    static struct sop t[IDLE_STREAMS];
    coro_task task[IDLE_STREAMS];
    int peer[IDLE_STREAMS];
    assert_int_equal(coro_loop_init(&loop, &lo), 0);
    for (int i = 0; i < IDLE_STREAMS; i++) {
        stream_peer(&loop, &s[i], &peer[i], NULL);
        put(peer[i], "hello\n");
        assert_int_equal(op(&loop, R_READ, &s[i], 3), 0); /* "hel" read, "lo\n" left */
        assert_true(coro_stream_memory(&s[i]) >= 16 * 1024);
    }
    size_t busy = ta.live;
    /* each reads the rest, then waits for more with nothing buffered */
    for (int i = 0; i < IDLE_STREAMS; i++) {
        assert_int_equal(op(&loop, R_READ, &s[i], 10), 0);
        sop_init(&t[i], R_READ, &s[i], 10);
        assert_int_equal(coro_task_init(&task[i], &loop, &t[i].co), 0);
    }
    run_for(&loop, 0.01);
    for (int i = 0; i < IDLE_STREAMS; i++)
        assert_int_equal(coro_stream_memory(&s[i]), 0);
    /* the loop keeps a few for reuse; the rest went back to the hook */
    assert_true(busy - ta.live >= (IDLE_STREAMS - 32) * 15 * 1024); /* (the waits took a little) */
    /* data again: a buffer is taken again, the read completes */
    put(peer[0], "again\n");
    assert_int_equal(run_task(&loop, &task[0]), 0);
    assert_int_equal(t[0].result, 6);
    for (int i = 0; i < IDLE_STREAMS; i++) {
        coro_stream_close(&s[i]);
        close(peer[i]);
    }
    run_for(&loop, 0.01);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
    assert_int_equal(ta.bad_osize, 0);
}

/* A spike of small objects (frames of 64 bytes: slab objects): once they
 * are all freed, the slab's chunks go back to the allocator hook; half of
 * them freed, scattered, keeps every chunk (no chunk is empty). */
#define SPIKE 40000

static CORO_FN(nothing_step)
{
    CORO_BEGIN();
    CORO_END();
}

static void test_slab_chunks_released(void **state)
{
    (void)state;
    coro_loop loop;
    talloc ta = { 0 };
    coro_loop_options lo = talloc_options(&ta);
    static coro_frame *f[SPIKE];
    assert_int_equal(coro_loop_init(&loop, &lo), 0);
    size_t base = ta.live;
    for (int i = 0; i < SPIKE; i++)
        assert_non_null(f[i] = coro_frame_new(&loop, 64, nothing_step));
    size_t peak = ta.live;
    assert_true(peak - base >= SPIKE * 64);
    for (int i = 0; i < SPIKE; i += 2) /* every other one: no chunk empties */
        coro_frame_free(&loop, f[i]);
    assert_true(ta.live >= peak - 64 * 1024);
    for (int i = 1; i < SPIKE; i += 2)
        coro_frame_free(&loop, f[i]);
    run_one_pass(&loop); /* the loop goes idle: now the slab gives back */
    print_message("slab: %zu bytes at the peak, %zu after\n", peak - base, ta.live - base);
    /* what is left: the chunks that were still needed when the last pass ran */
    assert_true(ta.live - base <= (peak - base) / 4);
    /* and the slab still works */
    for (int i = 0; i < SPIKE; i++)
        assert_non_null(f[i] = coro_frame_new(&loop, 64, nothing_step));
    for (int i = 0; i < SPIKE; i++)
        coro_frame_free(&loop, f[i]);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
    assert_int_equal(ta.bad_osize, 0);
}

/* A server's idle timeout ends a connection that sends nothing. */
static void test_server_idle_timeout(void **state)
{
    (void)state;
    env e;
    coro_server srv;
    coro_server_options o;
    struct shared sh;
    char buf[16];
    env_open(&e);
    memset(&sh, 0, sizeof sh);
    memset(&o, 0, sizeof o);
    o.stream.idle_timeout = 0.08;
    assert_int_equal(start_server(&e.loop, &srv, "127.0.0.1", NULL, echo_connect, &sh, &o), 0);
    int fd = raw_connect(server_port(&srv));
    run_for(&e.loop, 0.02);
    assert_int_equal(coro_server_connections(&srv), 1);
    for (int i = 0; i < 50 && coro_server_connections(&srv) > 0; i++)
        run_for(&e.loop, 0.01);
    assert_int_equal(coro_server_connections(&srv), 0);
    ssize_t n = read(fd, buf, sizeof buf);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET)); /* closed on us */
    close(fd);
    stop_server(&e.loop, &srv);
    env_close(&e, 0);
}

static void test_server_building_blocks(void **state)
{
    (void)state;
    env e;
    coro_loop closed;
    coro_server srv, other;
    coro_sockaddr a;
    coro_server_options bad = { 0 };
    bad.stream.write_high = 10;
    bad.stream.write_low = 20;
    env_open(&e);
    assert_int_equal(coro_server_init(NULL, &e.loop, echo_connect, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_server_init(&srv, NULL, echo_connect, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_server_init(&srv, &e.loop, NULL, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_server_init(&srv, &e.loop, echo_connect, NULL, &bad), CORO_EINVAL);
    assert_int_equal(coro_loop_init(&closed, NULL), 0);
    assert_int_equal(coro_loop_close(&closed), 0);
    assert_int_equal(coro_server_init(&srv, &closed, echo_connect, NULL, NULL), CORO_ECLOSED);

    assert_int_equal(coro_server_init(&srv, &e.loop, echo_connect, NULL, NULL), 0);
    assert_int_equal(coro_server_listen(&srv, NULL), CORO_EINVAL);
    assert_int_equal(coro_server_listen(NULL, &a), CORO_EINVAL);
    assert_int_equal(coro_sockaddr_ip(&a, "127.0.0.1", 0), 0);
    assert_int_equal(coro_server_listen(&srv, &a), 0);
    assert_int_equal(coro_server_sockname(&srv, 0, &a), 0);
    int port = coro_sockaddr_port(&a);
    assert_true(port > 0);
    /* the port is taken: a second server cannot listen there */
    assert_int_equal(coro_server_init(&other, &e.loop, echo_connect, NULL, NULL), 0);
    assert_int_equal(coro_server_listen(&other, &a), -EADDRINUSE);
    assert_int_equal(coro_server_close(&other), 0);

    assert_int_equal(coro_server_is_serving(&srv), 0);
    assert_int_equal(coro_server_start(NULL), CORO_EINVAL);
    assert_int_equal(coro_server_start(&srv), 0);
    assert_int_equal(coro_server_start(&srv), 0); /* already serving */
    assert_int_equal(coro_server_is_serving(&srv), 1);

    /* it serves: a plain client gets its bytes back */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, &a.u.sa, a.len), 0);
    assert_int_equal(write(c, "abc", 3), 3);
    char buf[8];
    ssize_t got = -1;
    for (int i = 0; i < 200 && got != 3; i++) {
        run_for(&e.loop, 0.005);
        got = recv(c, buf, sizeof buf, MSG_DONTWAIT);
    }
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "abc", 3);

    assert_int_equal(coro_server_close(&srv), 0);
    assert_int_equal(coro_server_start(&srv), CORO_ESTATE);
    assert_int_equal(coro_server_listen(&srv, &a), CORO_ESTATE);
    close(c); /* the echo handler reads EOF and ends */
    for (int i = 0; i < 200 && coro_server_connections(&srv) > 0; i++)
        run_for(&e.loop, 0.005);
    assert_int_equal(coro_server_connections(&srv), 0);
    env_close(&e, 0);
}

/* writer.is_closing(): 0 while open, 1 from close on, 0 for NULL. */
static void test_stream_is_closing(void **state)
{
    (void)state;
    env e;
    coro_stream s;
    int peer;
    env_open(&e);
    stream_peer(&e.loop, &s, &peer, NULL);
    assert_int_equal(coro_stream_is_closing(NULL), 0);
    assert_int_equal(coro_stream_is_closing(&s), 0);
    assert_int_equal(coro_stream_close(&s), 0);
    assert_int_equal(coro_stream_is_closing(&s), 1);
    assert_int_equal(op(&e.loop, R_WAIT_CLOSED, &s, 0), 0);
    assert_int_equal(coro_stream_is_closed(&s), 1);
    assert_int_equal(coro_stream_is_closing(&s), 1);
    close(peer);
    env_close(&e, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_n_and_eof),
        cmocka_unit_test(test_bulk_reads),
        cmocka_unit_test(test_bulk_buffer_held_across_waits),
        cmocka_unit_test(test_readexactly),
        cmocka_unit_test(test_readline_limit),
        cmocka_unit_test(test_readuntil),
        cmocka_unit_test(test_read_all),
        cmocka_unit_test(test_reader_fairness),
        cmocka_unit_test(test_concurrent_reads),
        cmocka_unit_test(test_close_while_reading),
        cmocka_unit_test(test_drain_backpressure),
        cmocka_unit_test(test_cancel_drain),
        cmocka_unit_test(test_write_eof_half_close),
        cmocka_unit_test(test_epipe_no_sigpipe),
        cmocka_unit_test(test_readline_timeout),
        cmocka_unit_test(test_cancel_mid_read),
        cmocka_unit_test(test_no_alloc_steady_state),
        cmocka_unit_test(test_stream_bad_args),
        cmocka_unit_test(test_server_building_blocks),
        cmocka_unit_test(test_stream_is_closing),
        cmocka_unit_test(test_server_echo),
        cmocka_unit_test(test_server_memory_per_connection),
        cmocka_unit_test(test_server_unix),
        cmocka_unit_test(test_open_connection_errors),
        cmocka_unit_test(test_server_handler_errors),
        cmocka_unit_test(test_serve_forever),
        cmocka_unit_test(test_server_connection_limit),
        cmocka_unit_test(test_server_cancel_clients),
        cmocka_unit_test(test_server_emfile),
        cmocka_unit_test(test_stress_echo),
        cmocka_unit_test(test_server_shutdown_non_reading_client),
        cmocka_unit_test(test_stream_read_deadline),
        cmocka_unit_test(test_stream_write_deadline),
        cmocka_unit_test(test_stream_write_deadline_bounds_close),
        cmocka_unit_test(test_stream_idle_timeout),
        cmocka_unit_test(test_stream_buffers_released_when_idle),
        cmocka_unit_test(test_server_idle_timeout),
        cmocka_unit_test(test_slab_chunks_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
