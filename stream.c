/*
 * stream.c - asyncio/streams.py: a connected stream (StreamReader +
 * StreamWriter in one object). The server that hands streams to
 * connection tasks is server.c.
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
 *
 * Fairness: a read that finds data waiting does not suspend, so a reader
 * fed faster than it reads yields one loop pass every READ_STREAK recvs.
 *
 * Buffers: the read buffer holds rbuf[rpos, rend) unread; a read returns a
 * view into it and consumes by moving rpos, and the next read compacts (or
 * grows, through the loop's allocator, only when the data it needs does not
 * fit). A fresh read buffer is a pooled 16 KiB one, or twice what the
 * read asks for, up to 128 KiB (READ_BULK), while recvs come back large
 * (`bulk`) and the read asks for more. The write buffer holds
 * wbuf[wpos, wend) unsent; it compacts when at least half of it was sent,
 * else doubles. Both are given back when empty (the read buffer when a
 * read must wait with nothing unread, the write buffer once flushed) to
 * the loop's pool of idle buffers (mem.c), which hands them to the next
 * stream: an idle stream holds none, and steady request/response traffic
 * still calls the allocator hook for none. A bulk buffer is not pooled: a
 * reader that waits keeps it for one or two BULK_HOLD_NS (`hold_at`, the
 * deadline timer's fourth deadline), so bulk traffic calls the hook for
 * none either, and a stream still waiting then gives it back.
 *
 * Deadlines: one timer per stream (deadline_cb), armed for the nearest of
 * the read deadline, the write deadline, the next idle check and the end
 * of a bulk buffer's hold, and moved only when a nearer one is set. A
 * read deadline wakes the waiting reader and leaves the stream open; a
 * write deadline with output pending, or IDLE_TICKS idle checks in a row
 * with no byte moved (`active` is the one store a recv or send pays),
 * abort it with CORO_ETIMEDOUT.
 *
 * Invariants:
 *   - `flushing` is 1 exactly while s->flush is on the writability future's
 *     callback list or on the ready queue, and then data is buffered (or a
 *     close is pending); stop_flush takes it back before anything frees or
 *     closes the stream.
 *   - paused implies the buffer went above `high` and has not been at or
 *     below `low` since.
 *   - timer_at is nonzero exactly while the deadline timer is scheduled;
 *     finalize cancels it, so no timer outlives the socket.
 * Never: block, call a user callback from inside write/close, or free a
 * stream that a callback of the loop still points at.
 */
/* The POSIX and GNU interfaces this file uses (memmem), whatever the
 * compiler's default: a plain `cc -std=c11 -c` builds it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "coro_int.h"

#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK CORO__BUF_SIZE  /* the read buffer's first size: a pooled buffer */
#define WRITE_CHUNK CORO__BUF_SIZE /* the write buffer's first size: a pooled buffer */
#define IDLE_TICKS 4               /* idle checks per idle timeout */
#define READ_STREAK 16             /* recvs in a row before a reader yields */
#define READ_BULK (128u * 1024u)   /* the largest first size of a bulk read buffer */
#define BULK_KEEP 8                /* small recvs before bulk traffic is forgotten */
#define BULK_HOLD_NS 100000000     /* how long a waiting reader keeps an empty bulk buffer */

enum { ST_OPEN = 0, ST_CLOSING, ST_CLOSED };
enum { SHUT_NONE = 0, SHUT_PENDING, SHUT_DONE };
enum { K_READ, K_READ_ALL, K_EXACTLY, K_UNTIL, K_LINE, K_DRAIN, K_WAIT_CLOSED };

/* ------------------------------------------------------------------------ */
/* Done callbacks on a readiness future                                     */
/* ------------------------------------------------------------------------ */

/* Register fn(arg) for the next readiness of `dir` on `w`; *armed says it is
 * registered. Returns 0 or CORO_ECLOSED (the watcher is detached). */
int coro__watch_arm(coro_fd *w, unsigned dir, coro_done_node *node, coro_done_fn fn, void *arg,
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
void coro__watch_disarm(coro_loop *loop, coro_future *f, coro_done_node *node, coro_done_fn fn,
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

bool coro__stream_bad_options(const coro_stream_options *o)
{
    return o && ((o->write_high && o->write_low > o->write_high) || !(o->idle_timeout >= 0));
}

/* The deadline `seconds` from now (coro_impl.h's one rounding rule); 0
 * (none) for 0 and for one too far to ever come. */
static int64_t stream_deadline(const coro_stream *s, double seconds)
{
    int64_t ns = coro__seconds_to_ns(seconds), t;
    if (ns <= 0 || ns == INT64_MAX)
        return 0;
    t = coro__deadline_after(coro_loop_time_ns(s->loop), ns);
    return t == INT64_MAX ? 0 : t;
}

/* Everything but the socket, which is open and watched already. */
void coro__stream_setup(coro_stream *s, const coro_stream_options *opt, bool nodelay)
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
    s->eof = s->reading = s->paused = s->shut = s->drained = s->streak = s->bulk = 0;
    s->active = s->quiet = s->rexpired = s->rehold = 0;
    s->flushing = 0;
    coro_handle_init(&s->timer);
    s->timer_at = s->rdl = s->wdl = s->idle_ns = s->idle_at = s->hold_at = 0;
    if (opt && opt->idle_timeout > 0)
        coro_stream_set_idle_timeout(s, opt->idle_timeout);
}

int coro_stream_init(coro_stream *s, coro_loop *loop, int fd, const coro_stream_options *opt)
{
    if (!s || coro__stream_bad_options(opt))
        return CORO_EINVAL;
    int rc = coro_socket_wrap(&s->sock, loop, fd);
    if (rc != 0)
        return rc;
    coro__stream_setup(s, opt, true);
    return 0;
}

static void flush_cb(coro_future *f, void *arg);

static void stop_flush(coro_stream *s)
{
    coro__watch_disarm(s->loop, &s->sock.w.wfut, &s->flush, flush_cb, s, &s->flushing);
}

/* Give the read buffer back (nothing unread in it, the view is dead). */
static void release_rbuf(coro_stream *s)
{
    coro__buf_put(s->loop, s->rbuf, s->rcap);
    s->rbuf = NULL;
    s->rcap = s->rpos = s->rend = 0;
    s->hold_at = 0;
    s->rehold = 0;
}

/* Give the write buffer back (nothing unsent in it). */
static void release_wbuf(coro_stream *s)
{
    coro__buf_put(s->loop, s->wbuf, s->wcap);
    s->wbuf = NULL;
    s->wcap = s->wpos = s->wend = 0;
}

static void free_buffers(coro_stream *s)
{
    release_rbuf(s);
    release_wbuf(s);
    s->view = "";
    s->view_len = 0;
}

/* The socket goes: asyncio's connection_lost. */
static void finalize(coro_stream *s)
{
    stop_flush(s);
    if (s->timer_at && s->loop->state != LOOP_CLOSED)
        coro_handle_cancel(&s->timer);
    s->timer_at = 0;
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
    int rc = coro__watch_arm(&s->sock.w, CORO_WRITABLE, &s->flush, flush_cb, s, &s->flushing);
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
        if (n > 0) {
            s->wpos += (size_t)n;
            s->active = 1;
        }
    }
    resume(s);
    if (s->wpos < s->wend) {
        arm_flush(s);
        return;
    }
    release_wbuf(s); /* drained: the memory goes back (nginx does the same) */
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
            char *p = s->wbuf ? coro__array_realloc(s->loop, s->wbuf, s->wcap, ncap)
                              : coro__buf_get(s->loop, ncap);
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
        if (sent > 0)
            s->active = 1;
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
/* Deadlines: one timer per stream, armed for the nearest one              */
/* ------------------------------------------------------------------------ */

/* A read or write costs nothing here: a deadline is a number the timer
 * compares when it fires, and activity is one byte store (`active`). The
 * timer is armed for the nearest deadline only when that comes before the
 * time it is armed for; moving a deadline later leaves it alone (it fires
 * early, finds nothing due and re-arms). */

static int64_t next_deadline(const coro_stream *s)
{
    int64_t t = 0;
    if (s->rdl && !s->rexpired)
        t = s->rdl;
    if (s->wdl && (t == 0 || s->wdl < t))
        t = s->wdl;
    if (s->idle_ns && (t == 0 || s->idle_at < t))
        t = s->idle_at;
    if (s->hold_at && (t == 0 || s->hold_at < t))
        t = s->hold_at;
    return t;
}

static int deadline_cb(void *arg);

static int timer_arm(coro_stream *s)
{
    int64_t t = next_deadline(s);
    int rc;
    if (t == 0 || (s->timer_at && s->timer_at <= t))
        return 0;
    if (s->timer_at)
        coro_handle_cancel(&s->timer);
    s->timer_at = 0;
    rc = coro_call_at(s->loop, &s->timer, t, deadline_cb, s);
    if (rc == 0)
        s->timer_at = t;
    return rc;
}

/* Resume a read waiting for readability (it then looks at why). */
static void wake_reader(coro_stream *s)
{
    if (s->reading && !coro_future_done(&s->sock.w.rfut))
        coro_future_set_result(&s->sock.w.rfut, coro_int(CORO_READABLE));
}

/* A write deadline or the idle timeout passed: the connection fails with
 * CORO_ETIMEDOUT and is aborted (what is buffered is dropped). */
static void timed_out(coro_stream *s)
{
    if (!s->err)
        s->err = CORO_ETIMEDOUT;
    wake_reader(s);
    coro_stream_abort(s);
}

static int deadline_cb(void *arg)
{
    coro_stream *s = arg;
    int64_t now = coro_loop_time_ns(s->loop);
    s->timer_at = 0;
    if (s->state == ST_CLOSED)
        return 0;
    if (s->rdl && !s->rexpired && now >= s->rdl) {
        s->rexpired = 1; /* the stream stays open: the reader decides */
        wake_reader(s);
    }
    if (s->wdl && now >= s->wdl) {
        s->wdl = 0;
        if (wsize(s) > 0) {
            timed_out(s);
            return 0;
        }
    }
    if (s->idle_ns && now >= s->idle_at) {
        if (s->active)
            s->active = s->quiet = 0;
        else if (++s->quiet >= IDLE_TICKS) {
            timed_out(s);
            return 0;
        }
        s->idle_at = coro__deadline_after(now, s->idle_ns / IDLE_TICKS);
    }
    if (s->hold_at && now >= s->hold_at) {
        if (s->rehold) { /* a wait used it again: keep it */
            s->rehold = 0;
            s->hold_at = coro__deadline_after(now, BULK_HOLD_NS);
        } else if (s->reading && s->rpos == s->rend) {
            release_rbuf(s); /* still waiting: the bulk buffer goes */
        } else {
            s->hold_at = 0; /* in use: the next wait holds it again */
        }
    }
    return timer_arm(s);
}

static int check_deadline_args(const coro_stream *s, double seconds)
{
    if (!s || !(seconds >= 0))
        return CORO_EINVAL;
    return s->state == ST_CLOSED ? CORO_ECLOSED : 0;
}

int coro_stream_set_read_deadline(coro_stream *s, double seconds)
{
    int rc = check_deadline_args(s, seconds);
    if (rc != 0)
        return rc;
    s->rexpired = 0;
    s->rdl = stream_deadline(s, seconds);
    return timer_arm(s);
}

int coro_stream_set_write_deadline(coro_stream *s, double seconds)
{
    int rc = check_deadline_args(s, seconds);
    if (rc != 0)
        return rc;
    s->wdl = stream_deadline(s, seconds);
    return timer_arm(s);
}

int coro_stream_set_idle_timeout(coro_stream *s, double seconds)
{
    int rc = check_deadline_args(s, seconds);
    if (rc != 0)
        return rc;
    s->idle_ns = coro__seconds_to_ns(seconds);
    s->active = s->quiet = 0;
    if (s->idle_ns == INT64_MAX)
        s->idle_ns = 0; /* never */
    if (s->idle_ns) {
        s->idle_ns = s->idle_ns < IDLE_TICKS ? IDLE_TICKS : s->idle_ns;
        s->idle_at = coro__deadline_after(coro_loop_time_ns(s->loop), s->idle_ns / IDLE_TICKS);
    }
    return timer_arm(s);
}

int coro_stream_read_timed_out(const coro_stream *s) { return s && s->rexpired; }

/* A read must wait with nothing unread: the buffer goes back, but a bulk
 * one (not pooled) stays for BULK_HOLD_NS to 2 * BULK_HOLD_NS, so bulk
 * traffic that waits between messages takes no bulk buffer from the hook and
 * gives none back per message. The first wait of a hold reads the clock
 * and arms the timer; the next ones only say the buffer was used again
 * (`rehold`), and deadline_cb extends the hold then, or gives the buffer
 * back if the read is still waiting. */
static void park_rbuf(coro_stream *s)
{
    if (s->bulk && s->rcap > READ_CHUNK && s->rcap <= READ_BULK) {
        if (s->hold_at) {
            s->rehold = 1;
            return;
        }
        s->hold_at = coro__deadline_after(coro_loop_time_ns(s->loop), BULK_HOLD_NS);
        if (timer_arm(s) == 0)
            return;
    }
    release_rbuf(s);
}

size_t coro_stream_memory(const coro_stream *s) { return s ? s->rcap + s->wcap : 0; }

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

/* The size of a fresh read buffer for a read that asked for `ask` bytes:
 * a pooled one, or, while the traffic comes in large pieces (a recv lately
 * took READ_CHUNK bytes or more: `bulk`), twice the ask up to READ_BULK:
 * a 64 KiB message takes one recv, not four, and the room left after it
 * says the socket is empty (fill's `drained`), where a buffer of exactly
 * the message's size would need a second recv, failing with EAGAIN, to
 * learn it. What that recv takes past the ask stays buffered for the next
 * read (asyncio's transport reads 256 KiB whatever read(n) asked). */
static size_t fresh_cap(const coro_stream *s, size_t ask)
{
    if (!s->bulk || ask <= READ_CHUNK)
        return READ_CHUNK;
    return ask < READ_BULK / 2 ? 2 * ask : READ_BULK;
}

/* Make room for `want` unread bytes (at least one more than are
 * buffered; `ask` is what the read asked for, which sizes a fresh buffer),
 * then one recv: bytes read, 0 at EOF, -EAGAIN, CORO_ENOMEM or -errno. */
static ssize_t fill(coro_stream *s, size_t want, size_t ask)
{
    size_t have = s->rend - s->rpos;
    ssize_t n;
    if (have == 0) {
        s->rpos = s->rend = 0;
        if (s->rbuf && s->rcap < fresh_cap(s, ask))
            release_rbuf(s); /* nothing to keep: a bigger one, no copy */
    }
    if (want <= have)
        want = have + 1;
    if (!s->rbuf || s->rend == s->rcap || s->rcap - s->rpos < want) {
        if (s->rpos > 0) {
            memmove(s->rbuf, s->rbuf + s->rpos, have);
            s->rpos = 0;
            s->rend = have;
        }
        if (s->rcap < want || s->rend == s->rcap) {
            size_t ncap = s->rcap ? s->rcap * 2 : fresh_cap(s, ask);
            if (ncap < want)
                ncap = want;
            char *p = s->rbuf ? coro__array_realloc(s->loop, s->rbuf, s->rcap, ncap)
                              : coro__buf_get(s->loop, ncap);
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
    if (n > 0) {
        s->rend += (size_t)n;
        s->active = 1;
        if ((size_t)n >= READ_CHUNK)
            s->bulk = BULK_KEEP;
        else if (s->bulk)
            s->bulk--;
    }
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
    if (s->rexpired)
        CORO_RAISE(CORO_ETIMEDOUT);
    s->reading = 1;
    self->owns = 1;
    consume(s, 0);
    for (;;) {
        rc = satisfy(self);
        if (rc != 0)
            break;
        if (s->drained) {
            if (s->rpos == s->rend)
                park_rbuf(s); /* idle: hold no buffer while waiting (bulk: a moment) */
            CORO_AWAIT(coro_fd_wait_readable(&s->sock.w));
            s->drained = s->streak = 0;
            if (s->rexpired || s->err == CORO_ETIMEDOUT)
                CORO_RAISE(CORO_ETIMEDOUT); /* woken by the deadline timer */
            continue;                       /* (a close may have woken us: satisfy sees it) */
        }
        if (s->streak >= READ_STREAK) {
            /* a peer that sends faster than we read never lets a read wait:
             * let the other tasks run (asyncio reads once per loop pass) */
            s->streak = 0;
            CORO_YIELD(coro_none());
            if (s->rexpired || s->err == CORO_ETIMEDOUT)
                CORO_RAISE(CORO_ETIMEDOUT);
            continue;
        }
        s->streak++;
        n = fill(s, self->kind == K_EXACTLY ? self->n : 0,
                 self->kind == K_READ_ALL ? SIZE_MAX : self->n);
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
        rc = coro__waitq_push(&s->drainers, &self->w, s->loop, FUT_KIND_STREAM);
    } else { /* wait_closed */
        if (s->state == ST_CLOSED) {
            if (s->err)
                CORO_RAISE(s->err);
            CORO_RETURN(coro_int(0));
        }
        rc = coro__waitq_push(&s->closers, &self->w, s->loop, FUT_KIND_STREAM);
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
    coro__stream_setup(s, &self->opt, a->u.sa.sa_family != AF_UNIX);
    CORO_RETURN(coro_ptr(s));
    CORO_END();
}

static coro_frame *open_op(coro_open_connection_op *op, coro_stream *stream,
                           const coro_stream_options *opt)
{
    if (!op || !stream || coro__stream_bad_options(opt))
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
