/*
 * fuzz/fuzz_stream.c - a stream's reads (coro_net.h) against a model.
 *
 * Input: [cfg][chunk seed][nops][nops x (op, arg)][payload...]
 *   cfg     the reader's limit: 1 + (cfg & 63), or the default when cfg & 64
 *   seed    the writer's chunk sizes (1 to 1 + (seed & 31) * 8 bytes);
 *           the echo: (seed >> 5) & 3 copies of every successful read's
 *           bytes are written back on the stream (coro_stream_write, then
 *           drain), with a write high-water mark of 64 bytes, or 1024 when
 *           seed & 128, and a small socket send buffer
 *   op      0 readline, 1 readuntil(seps[arg]), 2 readexactly(arg % 80),
 *           3 read(arg % 80), 4 read(-1), 5 yield one pass,
 *           6 wait_for(one of the reads above, a timeout of 0-350 us)
 *   payload what the peer sends, then it shuts down its writing side (EOF)
 *
 * One loop, a socketpair: a coro_stream over one end, and a writer task
 * that writes the payload into the other end in chunks, yielding between
 * them, while a reader task runs the ops, then read(-1), then closes the
 * stream and waits for it to be closed.
 *
 * The model is the payload and a cursor: how much of it the reads have
 * consumed. What a read consumed is measured, not trusted: bytes written,
 * minus what the socket still holds (FIONREAD), minus what the stream has
 * buffered (coro_stream_buffered). After each read the harness checks the
 * outcome asyncio's StreamReader gives for the rest of the payload
 * (coro_net.h; SEMANTICS 42): the bytes returned are the next bytes of the
 * payload and the count consumed is theirs; readexactly and readuntil at
 * EOF fail with CORO_EINCOMPLETE and hand the rest over; the limit gives
 * CORO_ELIMIT exactly where asyncio raises LimitOverrunError (a separator
 * starting past the limit, or more than the limit buffered without one),
 * consuming nothing for readuntil and the line (or what was buffered of it)
 * for readline; a timed out read consumed nothing. At the end everything
 * returned, plus what readline's limit dropped, is the payload. The peer
 * reads the echo until the stream's close reaches it, and gets exactly the
 * bytes written, in order (the write buffer, backpressure and the flush on
 * close). The loop closes with every allocation returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coro.h"
#include "fuzz/fuzz.h"

#define MAX_OPS 64

static const struct {
    const char *s;
    size_t n;
} seps[] = {
    { "\n", 1 },  { "\r\n", 2 },  { "ab", 2 }, { "\0", 1 },
    { "abc", 3 }, { "xyzzy", 5 }, { "a", 1 },  { "\n\n", 2 },
};
#define NSEPS (sizeof seps / sizeof seps[0])

typedef struct ctx {
    coro_loop loop;
    talloc alloc;
    coro_stream s;
    int peer;
    coro_fd pw; /* the peer's readiness, while it waits for the echo's end */
    size_t limit;
    uint32_t seed;
    unsigned maxchunk;
    const uint8_t *ops;
    int nops;
    const uint8_t *payload;
    size_t len;
    size_t written; /* bytes the writer handed to the socket */
    size_t cur;     /* bytes of the payload consumed, as the model says */
    size_t dropped; /* of those, what readline's limit consumed */
    int writer_done;
    int echo;         /* copies of each read written back (0: none) */
    char *want, *got; /* the echo: as written, as the peer received it */
    size_t want_len, got_len, echo_cap;
} ctx;

/* ---- the writer ---- */

typedef struct writer {
    coro_frame co;
    ctx *x;
    size_t chunk;
} writer;

/* The peer's side of the echo: take what has arrived. 1 at EOF. */
static int receive_echo(ctx *x)
{
    for (;;) {
        char buf[512];
        ssize_t n = recv(x->peer, buf, sizeof buf, 0);
        if (n == 0)
            return 1;
        if (n < 0) {
            FUZZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %d", errno);
            return 0;
        }
        FUZZ_CHECK(x->got_len + (size_t)n <= x->echo_cap, "more echo than was written");
        memcpy(x->got + x->got_len, buf, (size_t)n);
        x->got_len += (size_t)n;
    }
}

static CORO_FN(writer_step)
{
    writer *self = CORO_SELF(writer);
    ctx *x = self->x;
    CORO_BEGIN();
    while (x->written < x->len) {
        self->chunk = 1 + fuzz_rand(&x->seed) % x->maxchunk;
        if (self->chunk > x->len - x->written)
            self->chunk = x->len - x->written;
        {
            ssize_t n = write(x->peer, x->payload + x->written, self->chunk);
            if (n > 0)
                x->written += (size_t)n;
            else
                FUZZ_CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "write: %d", errno);
        }
        FUZZ_CHECK(!receive_echo(x), "the echo ended early");
        CORO_YIELD(coro_none()); /* one chunk per loop pass */
    }
    FUZZ_CHECK(shutdown(x->peer, SHUT_WR) == 0, "shutdown: %d", errno);
    x->writer_done = 1;
    while (!receive_echo(x)) /* until the stream's close */
        CORO_AWAIT(coro_fd_wait_readable(&x->pw));
    CORO_END();
}

/* ---- the model ---- */

/* Bytes of the payload the stream has consumed, measured. */
static size_t consumed(ctx *x)
{
    int pending = 0;
    FUZZ_CHECK(ioctl(coro_stream_fd(&x->s), FIONREAD, &pending) == 0, "FIONREAD: %d", errno);
    size_t held = (size_t)pending + coro_stream_buffered(&x->s);
    FUZZ_CHECK(held <= x->written, "%zu bytes held of %zu written", held, x->written);
    return x->written - held;
}

enum { R_LINE, R_UNTIL, R_EXACTLY, R_READ, R_ALL };

typedef struct readop {
    int kind;
    size_t sep; /* R_UNTIL: index in seps */
    ssize_t n;  /* R_EXACTLY, R_READ */
} readop;

static readop decode_read(int op, uint8_t arg)
{
    readop r;
    r.kind = op;
    r.sep = arg % NSEPS;
    r.n = arg % 80;
    return r;
}

static coro_frame *start_read(ctx *x, coro_stream_op *op, const readop *r)
{
    switch (r->kind) {
    case R_LINE:
        return coro_stream_readline(op, &x->s);
    case R_UNTIL:
        return coro_stream_readuntil(op, &x->s, seps[r->sep].s, seps[r->sep].n);
    case R_EXACTLY:
        return coro_stream_readexactly(op, &x->s, r->n);
    case R_READ:
        return coro_stream_read(op, &x->s, r->n);
    default:
        return coro_stream_read(op, &x->s, -1);
    }
}

static const uint8_t *find(const uint8_t *p, size_t n, const char *sep, size_t seplen)
{
    for (size_t i = 0; i + seplen <= n; i++)
        if (memcmp(p + i, sep, seplen) == 0)
            return p + i;
    return NULL;
}

/* The view holds exactly the next `n` bytes of the payload. */
static void expect_view(ctx *x, size_t n, const char *what)
{
    size_t vlen;
    const char *v = coro_stream_data(&x->s, &vlen);
    FUZZ_CHECK(vlen == n, "%s: a view of %zu bytes, not %zu", what, vlen, n);
    FUZZ_CHECK(n == 0 || memcmp(v, x->payload + x->cur, n) == 0, "%s: the bytes differ", what);
}

/* The read `r` ended with `err` and `count` (its CORO_INT result); `timed`:
 * it ran under wait_for, so CORO_ETIMEDOUT is allowed. Check it against the
 * model and move the cursor. */
static void check_read(ctx *x, const readop *r, int err, int64_t count, int timed)
{
    size_t before = x->cur, now = consumed(x);
    size_t rem = x->len - x->cur, want_n = 0;
    int want_err = 0;
    const uint8_t *p = x->payload + x->cur;
    FUZZ_CHECK(now >= before, "consumed went back: %zu < %zu", now, before);
    size_t delta = now - before;
    if (timed && err == CORO_ETIMEDOUT) {
        FUZZ_CHECK(delta == 0, "a timed out read (kind %d) consumed %zu bytes", r->kind, delta);
        return;
    }
    switch (r->kind) {
    case R_READ:
        FUZZ_CHECK(err == 0, "read(%zd): error %d", r->n, err);
        if (r->n == 0 || rem == 0)
            want_n = 0;
        else {
            size_t most = (size_t)r->n < rem ? (size_t)r->n : rem;
            FUZZ_CHECK(count >= 1 && (size_t)count <= most, "read(%zd) gave %lld of %zu", r->n,
                       (long long)count, rem);
            want_n = (size_t)count;
        }
        break;
    case R_ALL:
        want_n = rem;
        break;
    case R_EXACTLY:
        if ((size_t)r->n <= rem)
            want_n = (size_t)r->n;
        else
            want_n = rem, want_err = CORO_EINCOMPLETE;
        break;
    case R_UNTIL:
    case R_LINE: {
        const char *sep = r->kind == R_LINE ? "\n" : seps[r->sep].s;
        size_t seplen = r->kind == R_LINE ? 1 : seps[r->sep].n;
        const uint8_t *hit = find(p, rem, sep, seplen);
        size_t i = hit ? (size_t)(hit - p) : 0;
        int over = hit ? i > x->limit : rem >= seplen && rem + 1 - seplen > x->limit;
        if (over) {
            FUZZ_CHECK(err == CORO_ELIMIT, "kind %d: %d, not ELIMIT (rem %zu, sep at %zu%s)",
                       r->kind, err, rem, i, hit ? "" : " none");
            if (r->kind == R_UNTIL) {
                FUZZ_CHECK(delta == 0, "readuntil's ELIMIT consumed %zu", delta);
            } else {
                /* the whole line, or more than the limit buffered of it */
                FUZZ_CHECK((hit && delta == i + 1) ||
                               (delta > x->limit && delta <= (hit ? i : rem)),
                           "readline's ELIMIT consumed %zu (line end %zu, limit %zu)", delta,
                           hit ? i + 1 : 0, x->limit);
                x->dropped += delta;
                x->cur += delta;
            }
            return;
        }
        if (hit)
            want_n = i + seplen;
        else if (r->kind == R_LINE)
            want_n = rem; /* the partial line at EOF */
        else
            want_n = rem, want_err = CORO_EINCOMPLETE;
        if (!want_err)
            FUZZ_CHECK(want_n - (hit ? seplen : 0) <= x->limit, "a chunk over the limit");
        break;
    }
    default:
        break;
    }
    FUZZ_CHECK(err == want_err, "kind %d: error %d, not %d (rem %zu)", r->kind, err, want_err, rem);
    if (!err)
        FUZZ_CHECK(count == (int64_t)want_n, "kind %d: count %lld, not %zu", r->kind,
                   (long long)count, want_n);
    expect_view(x, want_n, "read");
    FUZZ_CHECK(delta == want_n, "kind %d: consumed %zu, returned %zu", r->kind, delta, want_n);
    x->cur += want_n;
}

/* ---- the reader ---- */

typedef struct reader {
    coro_frame co;
    ctx *x;
    int i, err;
    readop r;
    double timeout;
    coro_stream_op op;
    coro_wait_for_op wf;
} reader;

static CORO_FN(reader_step)
{
    reader *self = CORO_SELF(reader);
    ctx *x = self->x;
    CORO_BEGIN();
    for (self->i = 0; self->i < x->nops; self->i++) {
        {
            int op = x->ops[2 * self->i] % 7;
            uint8_t arg = x->ops[2 * self->i + 1];
            if (op == 5) {
                CORO_YIELD(coro_none());
                continue;
            }
            if (op == 6) {
                self->r = decode_read(arg % 4, (uint8_t)(arg >> 2));
                self->timeout = (double)((arg >> 5) & 7) * 50e-6;
            } else {
                self->r = decode_read(op, arg);
                self->timeout = -1;
            }
        }
        if (self->timeout < 0) {
            CORO_AWAIT_ERR(start_read(x, &self->op, &self->r), self->err);
        } else {
            CORO_AWAIT_ERR(
                coro_wait_for(&self->wf, self->timeout, start_read(x, &self->op, &self->r)),
                self->err);
        }
        check_read(x, &self->r, self->err, self->err ? 0 : CORO_RESULT.u.i, self->timeout >= 0);
        if (self->err || x->echo == 0)
            continue;
        {
            size_t n;
            const char *v = coro_stream_data(&x->s, &n);
            for (int k = 0; k < x->echo && n > 0; k++) {
                int rc = coro_stream_write(&x->s, v, n);
                FUZZ_CHECK(rc == 0, "write: %d", rc);
                FUZZ_CHECK(x->want_len + n <= x->echo_cap, "echo overflow");
                memcpy(x->want + x->want_len, v, n);
                x->want_len += n;
            }
        }
        CORO_AWAIT_ERR(coro_stream_drain(&self->op, &x->s), self->err);
        FUZZ_CHECK(self->err == 0, "drain: %d", self->err);
    }
    /* what is left */
    self->r.kind = R_ALL;
    CORO_AWAIT_ERR(start_read(x, &self->op, &self->r), self->err);
    check_read(x, &self->r, self->err, self->err ? 0 : CORO_RESULT.u.i, 0);
    FUZZ_CHECK(x->cur == x->len, "%zu of %zu bytes read", x->cur, x->len);
    FUZZ_CHECK(coro_stream_at_eof(&x->s), "not at EOF after read(-1)");
    FUZZ_CHECK(x->writer_done, "EOF before the writer was done");
    /* EOF is sticky: another read gives nothing */
    CORO_AWAIT_ERR(coro_stream_read(&self->op, &x->s, 10), self->err);
    FUZZ_CHECK(self->err == 0 && CORO_RESULT.u.i == 0, "a read after EOF: %d", self->err);
    FUZZ_CHECK(coro_stream_close(&x->s) == 0, "close");
    CORO_AWAIT_ERR(coro_stream_wait_closed(&self->op, &x->s), self->err);
    FUZZ_CHECK(self->err == 0, "wait_closed: %d", self->err);
    CORO_END();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ctx x;
    static writer w;
    static reader rd;
    coro_task tw, tr;
    int sv[2];
    if (size < 3)
        return 0;
    memset(&x, 0, sizeof x);
    x.limit = data[0] & 64 ? CORO_STREAM_LIMIT : 1 + (size_t)(data[0] & 63);
    x.seed = 0x5bd1e995u * (data[1] + 1u);
    x.maxchunk = 1 + (data[1] & 31) * 8u;
    x.echo = (data[1] >> 5) & 3;
    x.nops = data[2] % (MAX_OPS + 1);
    if ((size_t)x.nops * 2 > size - 3)
        x.nops = (int)((size - 3) / 2);
    x.ops = data + 3;
    x.payload = data + 3 + 2 * x.nops;
    x.len = size - 3 - 2 * (size_t)x.nops;

    coro_loop_options o = talloc_options(&x.alloc); /* counted, debug off */
    FUZZ_CHECK(coro_loop_init(&x.loop, &o) == 0, "loop_init");
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair: %d", errno);
    coro_stream_options so;
    memset(&so, 0, sizeof so);
    so.limit = x.limit;
    so.write_high = data[1] & 128 ? 1024 : 64;
    so.write_low = so.write_high / 4;
    x.echo_cap = x.len * (size_t)x.echo + 1;
    x.want = malloc(x.echo_cap);
    x.got = malloc(x.echo_cap);
    FUZZ_CHECK(x.want && x.got, "out of memory");
    if (x.echo) {
        int small = 2048; /* the kernel rounds it up to its minimum */
        FUZZ_CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0,
                   "SO_SNDBUF: %d", errno);
    }
    FUZZ_CHECK(coro_stream_init(&x.s, &x.loop, sv[0], &so) == 0, "stream_init");
    FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0, "fcntl");
    x.peer = sv[1];
    FUZZ_CHECK(coro_fd_init(&x.pw, &x.loop, x.peer) == 0, "fd_init");

    memset(&w, 0, sizeof w);
    coro_frame_init(&w.co, writer_step);
    w.x = &x;
    memset(&rd, 0, sizeof rd);
    coro_frame_init(&rd.co, reader_step);
    rd.x = &x;
    FUZZ_CHECK(coro_task_init(&tw, &x.loop, &w.co) == 0, "task_init");
    FUZZ_CHECK(coro_task_init(&tr, &x.loop, &rd.co) == 0, "task_init");
    int rc = coro_loop_run_until_complete(&x.loop, coro_task_future(&tr));
    FUZZ_CHECK(rc == 0, "the reader ended with %d", rc);
    rc = coro_loop_run_until_complete(&x.loop, coro_task_future(&tw));
    FUZZ_CHECK(rc == 0, "the writer ended with %d", rc);
    FUZZ_CHECK(coro_stream_is_closed(&x.s), "the stream is not closed");
    FUZZ_CHECK(x.cur == x.len, "the model read %zu of %zu", x.cur, x.len);
    FUZZ_CHECK(x.got_len == x.want_len, "the peer got %zu echo bytes of %zu", x.got_len,
               x.want_len);
    FUZZ_CHECK(memcmp(x.got, x.want, x.want_len) == 0, "the echo differs");
    free(x.want);
    free(x.got);
    FUZZ_CHECK(coro_fd_detach(&x.pw) == 0, "fd_detach");
    close(x.peer);
    FUZZ_CHECK(coro_loop_close(&x.loop) == 0, "loop_close");
    FUZZ_CHECK(x.alloc.live == 0 && x.alloc.blocks == 0, "%zu bytes in %ld blocks left",
               x.alloc.live, x.alloc.blocks);
    FUZZ_CHECK(x.alloc.bad_osize == 0, "%ld frees with a wrong size", x.alloc.bad_osize);
    return 0;
}
