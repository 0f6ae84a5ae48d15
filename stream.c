/*
 * stream.c - asyncio/streams.py and the Server of base_events.py: a
 * connected stream (StreamReader + StreamWriter in one object) and a
 * server that runs one task per accepted connection.
 *
 * The mapping:
 *   StreamReader.read/readexactly/readuntil/readline   read_step, through
 *       satisfy() (what asyncio does once data is in _buffer) and fill()
 *       (what its transport's _read_ready does, but only when a read needs
 *       data: there is no background reader and no pause_reading)
 *   StreamWriter.write             coro_stream_write: send at once when the
 *       buffer is empty (transport.write), else append; flush_cb is
 *       _write_ready, a done callback on the socket's writability future
 *   drain / pause_writing / resume_writing   drain_step, `paused`, resume()
 *   close / wait_closed / abort    coro_stream_close, finalize(), closers
 *   Server._start_serving / _accept_connection   listener_arm, accept_cb,
 *       accept_some; the EMFILE pause is accept_pause + the retry timer
 *   Server.close / wait_closed / serve_forever   coro_server_*
 *
 * Fairness: a read that finds data waiting does not suspend, so a reader
 * fed faster than it reads yields one loop pass every READ_STREAK recvs.
 *
 * Buffers: the read buffer holds rbuf[rpos, rend) unread; a read returns a
 * view into it and consumes by moving rpos, and the next read compacts (or
 * grows, through the loop's allocator, only when the data it needs does not
 * fit). The write buffer holds wbuf[wpos, wend) unsent; it compacts when at
 * least half of it was sent, else doubles. Nothing is allocated per read or
 * write in steady state.
 *
 * Invariants:
 *   - `flushing` is 1 exactly while s->flush is on the writability future's
 *     callback list or on the ready queue, and then data is buffered (or a
 *     close is pending); stop_flush takes it back before anything frees or
 *     closes the stream. The same holds for a listener's `waiting`.
 *   - paused implies the buffer went above `high` and has not been at or
 *     below `low` since.
 *   - a connection is on its server's list from its accept until its task's
 *     done callback; that callback (conn_done) runs even when the task was
 *     cancelled before its first step, and is what closes the stream, frees
 *     the connection and lets the server accept again.
 * Never: block, call a user callback from inside write/close, or free a
 * stream that a callback of the loop still points at.
 */
#include "coro_int.h"

#include <netinet/tcp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (16u * 1024u)  /* the read buffer's first size */
#define WRITE_CHUNK (16u * 1024u) /* the write buffer's first size */
#define BUF_KEEP (256u * 1024u)   /* an emptied buffer bigger than this is released */
#define READ_STREAK 16            /* recvs in a row before a reader yields */
#define ACCEPT_BATCH 64           /* accepts per readiness event */
#define ACCEPT_RETRY 0.1          /* seconds paused after EMFILE & co */

enum { ST_OPEN = 0, ST_CLOSING, ST_CLOSED };
enum { SHUT_NONE = 0, SHUT_PENDING, SHUT_DONE };
enum { K_READ, K_READ_ALL, K_EXACTLY, K_UNTIL, K_LINE, K_DRAIN, K_WAIT_CLOSED };
enum { SRV_NEW = 0, SRV_SERVING, SRV_CLOSED };
enum { SOP_FOREVER = 1, SOP_WAIT_CLOSED };

/* ------------------------------------------------------------------------ */
/* Done callbacks on a readiness future                                     */
/* ------------------------------------------------------------------------ */

/* Register fn(arg) for the next readiness of `dir` on `w`; *armed says it is
 * registered. Returns 0 or CORO_ECLOSED (the watcher is detached). */
static int watch_arm(coro_fd *w, unsigned dir, coro_done_node *node, coro_done_fn fn, void *arg,
                     int *armed)
{
    coro_future *f;
    if (*armed)
        return 0;
    f = dir == CORO_READABLE ? coro_fd_wait_readable(w) : coro_fd_wait_writable(w);
    if (!f || coro_future_add_done_node(f, node, fn, arg) != 0)
        return CORO_ECLOSED;
    *armed = 1;
    return 0;
}

/* Take the callback back: off the future, or off the ready queue if the
 * future already completed. */
static void watch_disarm(coro_loop *loop, coro_future *f, coro_done_node *node, coro_done_fn fn,
                         void *arg, int *armed)
{
    if (!*armed)
        return;
    *armed = 0;
    if (coro_future_remove_done_callback(f, fn, arg) == 0)
        coro__ready_remove(loop, &node->node);
}

/* ------------------------------------------------------------------------ */
/* Stream set-up and teardown                                               */
/* ------------------------------------------------------------------------ */

static bool bad_options(const coro_stream_options *o)
{
    return o && o->write_high && o->write_low > o->write_high;
}

/* Everything but the socket, which is open and watched already. */
static void stream_setup(coro_stream *s, const coro_stream_options *opt, bool nodelay)
{
    if (nodelay) { /* asyncio sets TCP_NODELAY on every TCP transport */
        int one = 1;
        setsockopt(s->sock.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    s->loop = s->sock.w.loop;
    s->rbuf = s->wbuf = NULL;
    s->rcap = s->rpos = s->rend = 0;
    s->wcap = s->wpos = s->wend = 0;
    s->limit = opt && opt->limit ? opt->limit : CORO_STREAM_LIMIT;
    s->high = opt && opt->write_high ? opt->write_high : CORO_STREAM_HIGH;
    s->low = opt && opt->write_high ? opt->write_low : CORO_STREAM_LOW;
    s->view = "";
    s->view_len = 0;
    memset(&s->flush, 0, sizeof s->flush);
    coro__list_init(&s->drainers.list);
    coro__list_init(&s->closers.list);
    s->err = 0;
    s->state = ST_OPEN;
    s->eof = s->reading = s->paused = s->shut = s->drained = s->streak = 0;
    s->flushing = 0;
}

int coro_stream_init(coro_stream *s, coro_loop *loop, int fd, const coro_stream_options *opt)
{
    if (!s || bad_options(opt))
        return CORO_EINVAL;
    int rc = coro_socket_wrap(&s->sock, loop, fd);
    if (rc != 0)
        return rc;
    stream_setup(s, opt, true);
    return 0;
}

static void flush_cb(coro_future *f, void *arg);

static void stop_flush(coro_stream *s)
{
    watch_disarm(s->loop, &s->sock.w.wfut, &s->flush, flush_cb, s, &s->flushing);
}

static void free_buffers(coro_stream *s)
{
    if (s->rbuf)
        coro__array_realloc(s->loop, s->rbuf, s->rcap, 0);
    if (s->wbuf)
        coro__array_realloc(s->loop, s->wbuf, s->wcap, 0);
    s->rbuf = s->wbuf = NULL;
    s->rcap = s->rpos = s->rend = 0;
    s->wcap = s->wpos = s->wend = 0;
    s->view = "";
    s->view_len = 0;
}

/* The socket goes: asyncio's connection_lost. */
static void finalize(coro_stream *s)
{
    stop_flush(s);
    s->state = ST_CLOSED;
    coro_socket_close(&s->sock); /* a read waiting on it resumes, at EOF */
    free_buffers(s);
    s->paused = 0;
    coro__waitq_fail_all(&s->drainers, s->err ? s->err : -ECONNRESET);
    if (s->err)
        coro__waitq_fail_all(&s->closers, s->err);
    else
        coro__waitq_wake_all(&s->closers, coro_int(0));
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

static size_t wsize(const coro_stream *s) { return s->wend - s->wpos; }

/* The connection failed while writing (asyncio's _fatal_error): the error
 * sticks, the buffer goes, drainers fail. */
static void write_failed(coro_stream *s, int err)
{
    if (!s->err)
        s->err = err;
    stop_flush(s);
    s->wpos = s->wend = 0;
    s->paused = 0;
    coro__waitq_fail_all(&s->drainers, s->err);
    if (s->state == ST_CLOSING)
        finalize(s);
}

/* resume_writing: at or below the low-water mark. */
static void resume(coro_stream *s)
{
    if (s->paused && wsize(s) <= s->low) {
        s->paused = 0;
        coro__waitq_wake_all(&s->drainers, coro_int(0));
    }
}

static void arm_flush(coro_stream *s)
{
    int rc = watch_arm(&s->sock.w, CORO_WRITABLE, &s->flush, flush_cb, s, &s->flushing);
    if (rc != 0)
        write_failed(s, rc);
}

/* _write_ready: one send of what is buffered, then wait again, or finish
 * what write_eof and close left pending. */
static void flush(coro_stream *s)
{
    if (s->wpos < s->wend) {
        ssize_t n = coro_socket_send(&s->sock, s->wbuf + s->wpos, wsize(s));
        if (n < 0 && n != -EAGAIN) {
            write_failed(s, (int)n);
            return;
        }
        if (n > 0)
            s->wpos += (size_t)n;
    }
    resume(s);
    if (s->wpos < s->wend) {
        arm_flush(s);
        return;
    }
    s->wpos = s->wend = 0;
    if (s->wcap > BUF_KEEP) { /* a burst is over: give the memory back */
        coro__array_realloc(s->loop, s->wbuf, s->wcap, 0);
        s->wbuf = NULL;
        s->wcap = 0;
    }
    if (s->shut == SHUT_PENDING) {
        s->shut = SHUT_DONE;
        shutdown(s->sock.fd, SHUT_WR);
    }
    if (s->state == ST_CLOSING)
        finalize(s);
}

static void flush_cb(coro_future *f, void *arg)
{
    coro_stream *s = arg;
    int err = coro_future_error(f);
    s->flushing = 0;
    if (s->state == ST_CLOSED || err == CORO_ECANCELLED)
        return;
    if (err != 0)
        write_failed(s, err);
    else
        flush(s);
}

/* Append to the write buffer: compact when at least half of what it holds
 * was sent (the move costs no more than it frees), else grow. */
static int wbuf_append(coro_stream *s, const char *data, size_t n)
{
    size_t used = wsize(s);
    if (s->wcap - s->wend < n) {
        if (s->wpos < used || s->wcap - used < n) {
            size_t ncap = s->wcap ? s->wcap : WRITE_CHUNK;
            while (ncap < used + n) {
                if (ncap > SIZE_MAX / 2)
                    return CORO_ENOMEM;
                ncap *= 2;
            }
            char *p = coro__array_realloc(s->loop, s->wbuf, s->wcap, ncap);
            if (!p)
                return CORO_ENOMEM;
            s->wbuf = p;
            s->wcap = ncap;
        }
        if (s->wpos > 0) {
            memmove(s->wbuf, s->wbuf + s->wpos, used);
            s->wpos = 0;
            s->wend = used;
        }
    }
    memcpy(s->wbuf + s->wend, data, n);
    s->wend += n;
    return 0;
}

int coro_stream_write(coro_stream *s, const void *data, size_t n)
{
    ssize_t sent = 0;
    int rc;
    if (!s || (!data && n))
        return CORO_EINVAL;
    if (s->err)
        return s->err;
    if (s->state != ST_OPEN)
        return CORO_ECLOSED;
    if (s->shut)
        return CORO_ESTATE;
    if (n == 0)
        return 0;
    if (s->wpos == s->wend) { /* nothing queued: straight to the socket */
        sent = coro_socket_send(&s->sock, data, n);
        if (sent < 0 && sent != -EAGAIN) {
            write_failed(s, (int)sent);
            return s->err;
        }
        if (sent == (ssize_t)n)
            return 0;
        if (sent < 0)
            sent = 0;
    }
    rc = wbuf_append(s, (const char *)data + sent, n - (size_t)sent);
    if (rc != 0) {
        write_failed(s, rc);
        return rc;
    }
    arm_flush(s);
    if (s->err)
        return s->err;
    if (wsize(s) > s->high)
        s->paused = 1; /* pause_writing */
    return 0;
}

int coro_stream_write_eof(coro_stream *s)
{
    if (!s)
        return CORO_EINVAL;
    if (s->err)
        return s->err;
    if (s->state != ST_OPEN)
        return CORO_ECLOSED;
    if (s->shut)
        return 0;
    if (s->wpos < s->wend) {
        s->shut = SHUT_PENDING; /* after the flush */
        return 0;
    }
    s->shut = SHUT_DONE;
    return shutdown(s->sock.fd, SHUT_WR) < 0 ? -errno : 0;
}

int coro_stream_close(coro_stream *s)
{
    if (!s)
        return CORO_EINVAL;
    if (s->state != ST_OPEN)
        return 0;
    s->state = ST_CLOSING;
    /* a read waiting now resumes and sees the close (asyncio feeds EOF) */
    if (s->reading && !coro_future_done(&s->sock.w.rfut))
        coro_future_set_result(&s->sock.w.rfut, coro_int(CORO_READABLE));
    if (s->wpos == s->wend || s->err)
        finalize(s);
    return 0;
}

int coro_stream_abort(coro_stream *s)
{
    if (!s)
        return CORO_EINVAL;
    if (s->state != ST_CLOSED) {
        s->wpos = s->wend = 0;
        s->state = ST_CLOSING;
        finalize(s);
    }
    return 0;
}

int coro_stream_is_closing(const coro_stream *s) { return s && s->state != ST_OPEN; }
int coro_stream_is_closed(const coro_stream *s) { return s && s->state == ST_CLOSED; }
size_t coro_stream_write_buffer_size(const coro_stream *s) { return s ? wsize(s) : 0; }

int coro_stream_set_write_limits(coro_stream *s, size_t high, size_t low)
{
    if (!s || low > high)
        return CORO_EINVAL;
    s->high = high;
    s->low = low;
    if (wsize(s) > high)
        s->paused = 1;
    else
        resume(s);
    return 0;
}

int coro_stream_peername(const coro_stream *s, coro_sockaddr *addr)
{
    if (s && s->state == ST_CLOSED)
        return CORO_ECLOSED;
    return s ? coro_socket_peername(&s->sock, addr) : CORO_EINVAL;
}

int coro_stream_sockname(const coro_stream *s, coro_sockaddr *addr)
{
    if (s && s->state == ST_CLOSED)
        return CORO_ECLOSED;
    return s ? coro_socket_sockname(&s->sock, addr) : CORO_EINVAL;
}

coro_loop *coro_stream_loop(const coro_stream *s) { return s ? s->loop : NULL; }
int coro_stream_fd(const coro_stream *s) { return s ? s->sock.fd : -1; }

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

const char *coro_stream_data(const coro_stream *s, size_t *len)
{
    if (len)
        *len = s ? s->view_len : 0;
    return s && s->view ? s->view : "";
}

size_t coro_stream_buffered(const coro_stream *s) { return s ? s->rend - s->rpos : 0; }

static bool ended(const coro_stream *s) { return s->eof || s->state != ST_OPEN; }

int coro_stream_at_eof(const coro_stream *s) { return s && ended(s) && s->rend == s->rpos; }

/* Hand out n bytes from the front of the buffer as the data view. */
static void consume(coro_stream *s, size_t n)
{
    s->view = n ? s->rbuf + s->rpos : "";
    s->view_len = n;
    s->rpos += n;
}

/* Make room for `want` unread bytes (at least one more than are
 * buffered), then one recv: bytes read, 0 at EOF, -EAGAIN, CORO_ENOMEM or
 * -errno. */
static ssize_t fill(coro_stream *s, size_t want)
{
    size_t have = s->rend - s->rpos;
    ssize_t n;
    if (have == 0) {
        s->rpos = s->rend = 0;
        if (s->rcap > BUF_KEEP) { /* a big read is over: give the memory back */
            coro__array_realloc(s->loop, s->rbuf, s->rcap, 0);
            s->rbuf = NULL;
            s->rcap = 0;
        }
    }
    if (want <= have)
        want = have + 1;
    if (s->rend == s->rcap || s->rcap - s->rpos < want) {
        if (s->rpos > 0) {
            memmove(s->rbuf, s->rbuf + s->rpos, have);
            s->rpos = 0;
            s->rend = have;
        }
        if (s->rcap < want || s->rend == s->rcap) {
            size_t ncap = s->rcap ? s->rcap * 2 : READ_CHUNK;
            if (ncap < want)
                ncap = want;
            char *p = coro__array_realloc(s->loop, s->rbuf, s->rcap, ncap);
            if (!p)
                return CORO_ENOMEM;
            s->rbuf = p;
            s->rcap = ncap;
        }
    }
    n = coro_socket_recv(&s->sock, s->rbuf + s->rend, s->rcap - s->rend);
    /* less than the room offered: the socket is empty now (libuv's
     * UV_HANDLE_READ_PARTIAL), so the next fill waits for readiness first
     * instead of paying a recv that would say EAGAIN */
    s->drained = n < 0 ? n == -EAGAIN : (size_t)n < s->rcap - s->rend;
    if (n > 0)
        s->rend += (size_t)n;
    return n;
}

/* readuntil / readline once data is buffered (asyncio's loop body). */
static int satisfy_until(coro_stream_op *op, size_t have)
{
    coro_stream *s = op->s;
    if (have >= op->offset + op->seplen) {
        const char *p = s->rbuf + s->rpos;
        const char *hit = memmem(p + op->offset, have - op->offset, op->sep, op->seplen);
        if (hit) {
            size_t isep = (size_t)(hit - p);
            if (isep > s->limit) { /* found, but the chunk is over the limit */
                if (op->kind == K_LINE)
                    consume(s, isep + op->seplen);
                consume(s, 0);
                return CORO_ELIMIT;
            }
            consume(s, isep + op->seplen);
            op->n = isep + op->seplen;
            return 1;
        }
        op->offset = have + 1 - op->seplen;
        if (op->offset > s->limit) { /* not found, and over the limit */
            if (op->kind == K_LINE)
                consume(s, have);
            consume(s, 0);
            return CORO_ELIMIT;
        }
    }
    if (!ended(s))
        return 0;
    consume(s, have);
    op->n = have;
    return op->kind == K_LINE ? 1 : CORO_EINCOMPLETE;
}

/* Can `op` complete with what is buffered? 1 yes (op->n is the count), 0
 * it needs more data, or an error (the view then holds any partial data). */
static int satisfy(coro_stream_op *op)
{
    coro_stream *s = op->s;
    size_t have = s->rend - s->rpos;
    switch (op->kind) {
    case K_READ:
        if (have == 0 && !ended(s) && op->n > 0)
            return 0;
        op->n = op->n < have ? op->n : have;
        consume(s, op->n);
        return 1;
    case K_READ_ALL:
        if (!ended(s))
            return 0;
        op->n = have;
        consume(s, have);
        return 1;
    case K_EXACTLY:
        if (have >= op->n) {
            consume(s, op->n);
            return 1;
        }
        if (!ended(s))
            return 0;
        consume(s, have);
        return CORO_EINCOMPLETE;
    default:
        return satisfy_until(op, have);
    }
}

static CORO_FN(read_step)
{
    coro_stream_op *self = CORO_SELF(coro_stream_op);
    coro_stream *s = self->s;
    ssize_t n;
    int rc;
    CORO_BEGIN();
    if (s->reading)
        CORO_RAISE(CORO_ESTATE); /* asyncio: "already waiting for incoming data" */
    if (s->err)
        CORO_RAISE(s->err);
    s->reading = 1;
    self->owns = 1;
    consume(s, 0);
    for (;;) {
        rc = satisfy(self);
        if (rc != 0)
            break;
        if (s->drained) {
            CORO_AWAIT(coro_fd_wait_readable(&s->sock.w));
            s->drained = s->streak = 0;
            continue; /* (a close may have woken us: satisfy sees it) */
        }
        if (s->streak >= READ_STREAK) {
            /* a peer that sends faster than we read never lets a read wait:
             * let the other tasks run (asyncio reads once per loop pass) */
            s->streak = 0;
            CORO_YIELD(coro_none());
            continue;
        }
        s->streak++;
        n = fill(s, self->kind == K_EXACTLY ? self->n : 0);
        if (n == 0)
            s->eof = 1;
        else if (n < 0 && n != -EAGAIN) {
            if (n != CORO_ENOMEM)
                s->err = (int)n; /* the connection failed: it sticks */
            CORO_RAISE((int)n);
        }
    }
    if (rc < 0)
        CORO_RAISE(rc);
    CORO_RETURN(coro_int((int64_t)self->n));
    CORO_FINALLY
    if (self->owns) {
        self->owns = 0;
        s->reading = 0;
    }
    CORO_END();
}

static coro_frame *read_op(coro_stream_op *op, coro_stream *s, int kind, size_t n)
{
    if (!op || !s)
        return NULL;
    coro_frame_init(&op->co, read_step);
    op->s = s;
    op->sep = NULL;
    op->seplen = 0;
    op->n = n;
    op->offset = 0;
    op->w.q = NULL;
    op->kind = kind;
    op->owns = 0;
    return &op->co;
}

coro_frame *coro_stream_read(coro_stream_op *op, coro_stream *s, ssize_t n)
{
    return read_op(op, s, n < 0 ? K_READ_ALL : K_READ, n < 0 ? 0 : (size_t)n);
}

coro_frame *coro_stream_readexactly(coro_stream_op *op, coro_stream *s, ssize_t n)
{
    return n < 0 ? NULL : read_op(op, s, K_EXACTLY, (size_t)n);
}

coro_frame *coro_stream_readuntil(coro_stream_op *op, coro_stream *s, const void *sep,
                                  size_t seplen)
{
    if (!sep || seplen == 0 || !read_op(op, s, K_UNTIL, 0))
        return NULL;
    op->sep = sep;
    op->seplen = seplen;
    return &op->co;
}

coro_frame *coro_stream_readline(coro_stream_op *op, coro_stream *s)
{
    if (!read_op(op, s, K_LINE, 0))
        return NULL;
    op->sep = "\n";
    op->seplen = 1;
    return &op->co;
}

/* ------------------------------------------------------------------------ */
/* drain and wait_closed                                                    */
/* ------------------------------------------------------------------------ */

/* Park on `q` until woken (0) or failed; the cleanup unlinks. */
static CORO_FN(drain_step)
{
    coro_stream_op *self = CORO_SELF(coro_stream_op);
    coro_stream *s = self->s;
    int rc;
    CORO_BEGIN();
    if (self->kind == K_DRAIN) {
        if (s->err)
            CORO_RAISE(s->err);
        if (s->state == ST_CLOSED)
            CORO_RAISE(-ECONNRESET); /* asyncio: "Connection lost" */
        if (!s->paused)
            CORO_RETURN(coro_int(0));
        rc = coro__waitq_push(&s->drainers, &self->w, s->loop);
    } else { /* wait_closed */
        if (s->state == ST_CLOSED) {
            if (s->err)
                CORO_RAISE(s->err);
            CORO_RETURN(coro_int(0));
        }
        rc = coro__waitq_push(&s->closers, &self->w, s->loop);
    }
    if (rc != 0)
        CORO_RAISE(rc);
    CORO_AWAIT(&self->w.fut);
    CORO_RETURN(coro_int(0));
    CORO_FINALLY
    coro__waitq_remove(&self->w);
    CORO_END();
}

static coro_frame *park_op(coro_stream_op *op, coro_stream *s, int kind)
{
    if (!read_op(op, s, kind, 0))
        return NULL;
    op->co.step = drain_step;
    return &op->co;
}

coro_frame *coro_stream_drain(coro_stream_op *op, coro_stream *s)
{
    return park_op(op, s, K_DRAIN);
}

coro_frame *coro_stream_wait_closed(coro_stream_op *op, coro_stream *s)
{
    return park_op(op, s, K_WAIT_CLOSED);
}

/* ------------------------------------------------------------------------ */
/* open_connection                                                          */
/* ------------------------------------------------------------------------ */

static CORO_FN(open_step)
{
    coro_open_connection_op *self = CORO_SELF(coro_open_connection_op);
    coro_stream *s = self->stream;
    coro_loop *loop = coro_get_running_loop();
    coro_sockaddr *a;
    int rc;
    CORO_BEGIN();
    if (!loop || !coro_current_task(loop))
        CORO_RAISE(CORO_ESTATE);
    if (self->host) { /* (open_unix_connection has its path in addrs[0]) */
        CORO_AWAIT(coro_getaddrinfo(&self->gai, self->host, self->port, AF_UNSPEC, 0, self->addrs,
                                    CORO__COUNTOF(self->addrs)));
        self->n = (size_t)CORO_RESULT.u.i;
    }
    for (self->i = 0; self->i < self->n; self->i++) {
        a = &self->addrs[self->i];
        rc = coro_socket_open(&s->sock, loop, a->u.sa.sa_family, SOCK_STREAM, 0);
        if (rc == 0) {
            CORO_AWAIT_ERR(coro_sock_connect(&self->conn, &s->sock, &self->addrs[self->i]), rc);
            if (rc == 0)
                break;
            coro_socket_close(&s->sock);
            if (rc == CORO_ECANCELLED)
                CORO_RAISE(rc);
        }
        if (!self->first_err)
            self->first_err = rc;
    }
    if (self->i == self->n)
        CORO_RAISE(self->first_err ? self->first_err : CORO_EADDRINFO);
    a = &self->addrs[self->i];
    stream_setup(s, &self->opt, a->u.sa.sa_family != AF_UNIX);
    CORO_RETURN(coro_ptr(s));
    CORO_END();
}

static coro_frame *open_op(coro_open_connection_op *op, coro_stream *stream,
                           const coro_stream_options *opt)
{
    if (!op || !stream || bad_options(opt))
        return NULL;
    coro_frame_init(&op->co, open_step);
    op->stream = stream;
    memset(stream, 0, sizeof *stream); /* until connected: closing it is harmless */
    stream->sock.fd = -1;
    stream->state = ST_CLOSED;
    stream->view = "";
    memset(&op->opt, 0, sizeof op->opt);
    if (opt)
        op->opt = *opt;
    op->host = NULL;
    op->port = 0;
    op->n = op->i = 0;
    op->first_err = 0;
    return &op->co;
}

coro_frame *coro_open_connection(coro_open_connection_op *op, coro_stream *stream, const char *host,
                                 int port, const coro_stream_options *opt)
{
    if (!host || port < 0 || port > 65535 || !open_op(op, stream, opt))
        return NULL;
    op->host = host;
    op->port = port;
    return &op->co;
}

coro_frame *coro_open_unix_connection(coro_open_connection_op *op, coro_stream *stream,
                                      const char *path, const coro_stream_options *opt)
{
    if (!op || coro_sockaddr_unix(&op->addrs[0], path) != 0 || !open_op(op, stream, opt))
        return NULL;
    op->n = 1;
    return &op->co;
}

/* ------------------------------------------------------------------------ */
/* Servers: one task per connection                                         */
/* ------------------------------------------------------------------------ */

/* A connection: its task, its stream, the handler it runs. Allocated from
 * the loop; freed by conn_done once the task is done. */
struct conn {
    coro_frame co;
    coro_task task;
    coro_done_node done;
    coro_stream stream;
    coro_server *srv;
    coro_frame *user;
    struct conn *prev, *next;
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
        if (self->err != 0)
            coro__report(self->stream.loop, "Unhandled exception in client_connected_cb", self->err,
                         NULL);
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
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
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
    stream_setup(&c->stream, &srv->opt.stream, tcp);
    coro_frame_init(&c->co, conn_step);
    c->srv = srv;
    c->user = NULL;
    c->err = 0;
    rc = coro_task_init(&c->task, loop, &c->co);
    if (rc != 0)
        return rc;
    coro_future_add_done_node(&c->task.fut, &c->done, conn_done, c);
    c->prev = NULL;
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    if (++srv->nconns > srv->peak)
        srv->peak = srv->nconns;
    return 0;
}

static void accept_cb(coro_future *f, void *arg);

static void listener_arm(coro__listener *l)
{
    watch_arm(&l->sock.w, CORO_READABLE, &l->node, accept_cb, l, &l->waiting);
}

static void listener_disarm(coro__listener *l)
{
    watch_disarm(l->server->loop, &l->sock.w.rfut, &l->node, accept_cb, l, &l->waiting);
}

static int retry_cb(void *arg)
{
    coro_server *srv = arg;
    srv->paused = 0;
    for (unsigned i = 0; i < srv->nls && srv->state == SRV_SERVING && !srv->paused; i++)
        accept_some(srv, &srv->ls[i]);
    return 0;
}

/* Out of descriptors or memory: stop accepting for ACCEPT_RETRY (asyncio's
 * _accept_connection does the same with a 1 s delay). */
static void accept_pause(coro_server *srv, int err)
{
    srv->paused = 1;
    srv->pauses++;
    for (unsigned i = 0; i < srv->nls; i++)
        listener_disarm(&srv->ls[i]);
    coro__report(srv->loop, "accept() failed: pausing before the next attempt", err, NULL);
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
    if (!srv || !loop || !on_connect || (opt && bad_options(&opt->stream)))
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
#ifdef SO_REUSEPORT
    if (rc == 0 && srv->opt.reuse_port)
        rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT);
#endif
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
    for (struct conn *c = srv->conns; c; c = c->next)
        n += (size_t)coro_task_cancel(&c->task);
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
    if (!op || !srv || !on_connect || (opt && bad_options(&opt->stream)))
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
        rc = coro__waitq_push(&srv->forever, &self->w, srv->loop);
        if (rc != 0)
            CORO_RAISE(rc);
        CORO_AWAIT_ERR(&self->w.fut, self->err);
        coro__waitq_remove(&self->w);
        if (self->err == 0)
            CORO_RETURN(coro_int(0)); /* closed */
        coro_server_close(srv);       /* cancelled: close, wait, re-raise */
    }
    if (srv->state != SRV_CLOSED || srv->nconns > 0) {
        rc = coro__waitq_push(&srv->closers, &self->w, srv->loop);
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
