/*
 * tests/test_fd.c - awaitable fd readiness (fd.c) over the selected backend.
 *
 * Pipes and socketpairs only, so the suite runs anywhere and under every
 * selector (make test runs it with the default one, then SELECTOR=poll).
 * Covers: readable/writable waits, interest kept across a read loop, HUP
 * waking both directions, detach (cancels waiters, twice is fine, no stale
 * event on a reused fd number), lazy disarm when nobody waits (the watcher's
 * `armed` mask and loop.nwatched are read to prove it), several fds in one
 * batch, allocation failure while arming, bad arguments, and the bound on
 * how long a busy ready queue may delay a ready fd.
 *
 * Every test closes its loop and asserts it closed cleanly.
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

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RW (CORO_READABLE | CORO_WRITABLE)

/* ---- helpers ---- */

static void nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
    assert_int_equal(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe(p), 0);
    nonblock(p[0]);
    nonblock(p[1]);
}

static void make_socketpair(int s[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    nonblock(s[0]);
    nonblock(s[1]);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Write until the kernel buffer is full. */
static void fill(int fd)
{
    static char chunk[65536];
    while (write(fd, chunk, sizeof chunk) > 0)
        ;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static int cb_write_byte(void *arg)
{
    char c = 'x';
    return write(*(int *)arg, &c, 1) == 1 ? 0 : -errno;
}

static int cb_close(void *arg)
{
    close_fd(arg);
    return 0;
}

static int cb_detach(void *arg)
{
    return coro_fd_detach(arg);
}

static int cb_cancel(void *arg)
{
    coro_task_cancel(arg);
    return 0;
}

/* ---- coroutines ---- */

/* Wait once for `dir` on `w`; return what the wait returned. */
struct waiter {
    coro_frame co;
    coro_fd *w;
    unsigned dir;
    int64_t got;
};

static CORO_FN(waiter_step)
{
    struct waiter *self = CORO_SELF(struct waiter);
    CORO_BEGIN();
    CORO_AWAIT(self->dir == CORO_READABLE ? coro_fd_wait_readable(self->w)
                                          : coro_fd_wait_writable(self->w));
    self->got = CORO_RESULT.u.i;
    CORO_RETURN(CORO_RESULT);
    CORO_END();
}

static void waiter_init(struct waiter *f, coro_fd *w, unsigned dir)
{
    memset(f, 0, sizeof *f);
    coro_frame_init(&f->co, waiter_step);
    f->w = w;
    f->dir = dir;
}

/* Sleep `seconds`, then return. */
struct sleeper {
    coro_frame co;
    double seconds;
};

static CORO_FN(sleeper_step)
{
    struct sleeper *self = CORO_SELF(struct sleeper);
    CORO_BEGIN();
    CORO_SLEEP(self->seconds);
    CORO_END();
}

/* Run a task that sleeps `seconds`: lets the loop poll a few times. */
static void run_for(coro_loop *loop, double seconds)
{
    struct sleeper s;
    coro_task t;
    coro_frame_init(&s.co, sleeper_step);
    s.seconds = seconds;
    assert_int_equal(coro_task_init(&t, loop, &s.co), 0);
    assert_int_equal(coro_loop_run_until_complete(loop, coro_task_future(&t)), 0);
}

/* ---- readable / writable ---- */

static void test_wait_readable(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task t;
    struct waiter fr;
    int p[2];
    coro_value v;

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    waiter_init(&fr, &w, CORO_READABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.01, cb_write_byte, &p[1]), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, CORO_READABLE);
    /* interest outlives the event: the next wait costs no selector call */
    assert_int_equal(w.armed, CORO_READABLE);
    assert_int_equal(loop.nwatched, 1);
    assert_int_equal(coro_fd_detach(&w), 0);
    assert_int_equal(loop.nwatched, 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_wait_writable(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task t;
    struct waiter fr;
    int p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[1]), 0);
    waiter_init(&fr, &w, CORO_WRITABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(fr.got, CORO_WRITABLE);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A full pipe becomes writable once the reader drains it. */
static int cb_drain(void *arg)
{
    char buf[65536];
    while (read(*(int *)arg, buf, sizeof buf) > 0)
        ;
    return 0;
}

static void test_wait_writable_after_drain(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task t;
    struct waiter fr;
    int p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    fill(p[1]);
    assert_int_equal(coro_fd_init(&w, &loop, p[1]), 0);
    waiter_init(&fr, &w, CORO_WRITABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    run_for(&loop, 0.02);
    assert_false(coro_task_done(&t)); /* full: not writable yet */
    assert_int_equal(coro_call_soon(&loop, NULL, cb_drain, &p[0]), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(fr.got, CORO_WRITABLE);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A read loop: wait, read, wait again. Interest stays armed throughout. */
struct reader {
    coro_frame co;
    coro_fd *w;
    int n, sum, armed_ok;
    coro_loop *loop;
};

static CORO_FN(reader_step)
{
    struct reader *self = CORO_SELF(struct reader);
    char c;
    CORO_BEGIN();
    for (self->n = 0; self->n < 3; self->n++) {
        CORO_AWAIT(coro_fd_wait_readable(self->w));
        if (self->w->armed != CORO_READABLE || self->loop->nwatched != 1)
            self->armed_ok = 0;
        assert_int_equal(read(self->w->fd, &c, 1), 1);
        self->sum += c;
    }
    CORO_RETURN(coro_int(self->sum));
    CORO_END();
}

struct writer {
    coro_frame co;
    int fd, n;
};

static CORO_FN(writer_step)
{
    struct writer *self = CORO_SELF(struct writer);
    char c;
    CORO_BEGIN();
    for (self->n = 1; self->n <= 3; self->n++) {
        CORO_SLEEP(0.005);
        c = (char)self->n;
        assert_int_equal(write(self->fd, &c, 1), 1);
    }
    CORO_END();
}

static void test_read_loop_keeps_interest(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task tr, tw;
    struct reader r;
    struct writer wr;
    int p[2];
    coro_value v;

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    memset(&r, 0, sizeof r);
    coro_frame_init(&r.co, reader_step);
    r.w = &w;
    r.loop = &loop;
    r.armed_ok = 1;
    coro_frame_init(&wr.co, writer_step);
    wr.fd = p[1];
    assert_int_equal(coro_task_init(&tr, &loop, &r.co), 0);
    assert_int_equal(coro_task_init(&tw, &loop, &wr.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tr)), 0);
    assert_int_equal(coro_task_result(&tr, &v), 0);
    assert_int_equal(v.u.i, 1 + 2 + 3);
    assert_true(r.armed_ok);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tw)), 0);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* Both directions on one watcher: each wait gets its own future, and the
 * direction nobody waits for any more is disarmed alone. */
static void test_both_directions(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task tr, tw;
    struct waiter fr, fw;
    int s[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_socketpair(s);
    assert_int_equal(coro_fd_init(&w, &loop, s[0]), 0);
    waiter_init(&fr, &w, CORO_READABLE);
    waiter_init(&fw, &w, CORO_WRITABLE);
    assert_int_equal(coro_task_init(&tr, &loop, &fr.co), 0);
    assert_int_equal(coro_task_init(&tw, &loop, &fw.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tw)), 0);
    assert_int_equal(fw.got, CORO_WRITABLE);
    assert_false(coro_task_done(&tr));
    run_for(&loop, 0.01); /* writable again, nobody waits: disarm that only */
    assert_int_equal(w.armed, CORO_READABLE);
    assert_int_equal(loop.nwatched, 1);
    assert_false(coro_task_done(&tr));
    assert_int_equal(coro_call_soon(&loop, NULL, cb_write_byte, &s[1]), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tr)), 0);
    assert_int_equal(fr.got & CORO_READABLE, CORO_READABLE);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&s[0]);
    close_fd(&s[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- hang-up ---- */

static void test_hup_wakes_reader(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task t;
    struct waiter fr;
    int p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    waiter_init(&fr, &w, CORO_READABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.01, cb_close, &p[1]), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(fr.got, RW); /* HUP wakes both directions */
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A writer blocked on a full socket and a reader on the same socket both
 * wake when the peer closes. */
static void test_hup_wakes_writer(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task tr, tw;
    struct waiter fr, fw;
    int s[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_socketpair(s);
    fill(s[0]);
    assert_int_equal(coro_fd_init(&w, &loop, s[0]), 0);
    waiter_init(&fw, &w, CORO_WRITABLE);
    waiter_init(&fr, &w, CORO_READABLE);
    assert_int_equal(coro_task_init(&tw, &loop, &fw.co), 0);
    assert_int_equal(coro_task_init(&tr, &loop, &fr.co), 0);
    run_for(&loop, 0.01);
    assert_false(coro_task_done(&tw));
    assert_false(coro_task_done(&tr));
    assert_int_equal(w.armed, RW);
    assert_int_equal(coro_call_soon(&loop, NULL, cb_close, &s[1]), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tw)), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tr)), 0);
    assert_int_equal(fw.got & CORO_WRITABLE, CORO_WRITABLE);
    assert_int_equal(fr.got & CORO_READABLE, CORO_READABLE);
    assert_int_equal(fw.got, RW);
    /* HUP persists, nobody waits any more: both directions get disarmed */
    run_for(&loop, 0.01);
    assert_int_equal(w.armed, 0);
    assert_int_equal(loop.nwatched, 0);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&s[0]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- detach ---- */

static void test_detach_cancels_waiter(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task t;
    struct waiter fr;
    int p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    waiter_init(&fr, &w, CORO_READABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.01, cb_detach, &w), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_true(coro_task_cancelled(&t));
    assert_int_equal(loop.nwatched, 0);
    assert_null(coro_fd_wait_readable(&w));
    assert_null(coro_fd_wait_writable(&w));
    /* the fd stays open, and a detached watcher can be initialised again */
    assert_int_equal(coro_fd_init(&w, &loop, p[1]), 0);
    waiter_init(&fr, &w, CORO_WRITABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_detach_twice(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    int p[2];
    coro_future *f, *g;

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    /* never armed */
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    assert_int_equal(coro_fd_detach(&w), 0);
    assert_int_equal(coro_fd_detach(&w), 0);
    /* armed, with a pending wait nobody awaits */
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    f = coro_fd_wait_readable(&w);
    assert_non_null(f);
    g = coro_fd_wait_readable(&w);
    assert_ptr_equal(f, g); /* a pending wait is shared */
    assert_ptr_not_equal(f, coro_fd_wait_writable(&w));
    assert_int_equal(loop.nwatched, 1);
    assert_int_equal(coro_fd_detach(&w), 0);
    assert_true(coro_future_cancelled(f));
    assert_int_equal(loop.nwatched, 0);
    assert_int_equal(coro_fd_detach(&w), 0);
    assert_int_equal(loop.nwatched, 0);
    assert_null(coro_fd_wait_readable(&w));
    run_for(&loop, 0.005);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* Detach, close, reuse the fd number for a new pipe: the old readiness
 * must not reach the new watcher. */
struct detacher {
    coro_frame co;
    coro_fd *w;
};

static CORO_FN(detacher_step)
{
    struct detacher *self = CORO_SELF(struct detacher);
    CORO_BEGIN();
    coro_fd_detach(self->w);
    CORO_END();
}

static void test_no_stale_event_on_reused_fd(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w, w2;
    coro_task t, td, t2;
    struct waiter fr, fr2;
    struct detacher d;
    int a[2], b[2], num;

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(a);
    assert_int_equal(write(a[1], "x", 1), 1); /* readable from the start */
    assert_int_equal(coro_fd_init(&w, &loop, a[0]), 0);
    waiter_init(&fr, &w, CORO_READABLE);
    coro_frame_init(&d.co, detacher_step);
    d.w = &w;
    /* same pass: the waiter arms, then the detacher detaches, before any poll */
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_task_init(&td, &loop, &d.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&td)), 0);

    num = a[0];
    close_fd(&a[0]);
    close_fd(&a[1]);
    make_pipe(b);
    if (b[0] != num) { /* force the reuse of the number */
        assert_int_equal(dup2(b[0], num), num);
        close(b[0]);
        b[0] = num;
        nonblock(b[0]);
    }
    assert_int_equal(coro_fd_init(&w2, &loop, b[0]), 0);
    waiter_init(&fr2, &w2, CORO_READABLE);
    assert_int_equal(coro_task_init(&t2, &loop, &fr2.co), 0);
    run_for(&loop, 0.03);
    assert_false(coro_task_done(&t2)); /* no stale event */
    assert_int_equal(coro_call_soon(&loop, NULL, cb_write_byte, &b[1]), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t2)), 0);
    assert_int_equal(fr2.got, CORO_READABLE);
    assert_int_equal(coro_fd_detach(&w2), 0);
    close_fd(&b[0]);
    close_fd(&b[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- nobody waits: lazy disarm ---- */

static void test_cancelled_waiter_disarms(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task t;
    struct waiter fr;
    int p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    waiter_init(&fr, &w, CORO_READABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.01, cb_cancel, &t), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(w.armed, CORO_READABLE); /* still armed until it fires */
    assert_int_equal(loop.nwatched, 1);

    assert_int_equal(write(p[1], "x", 1), 1);
    run_for(&loop, 0.02); /* the event finds nobody: disarm, no spinning */
    assert_int_equal(w.armed, 0);
    assert_int_equal(loop.nwatched, 0);
    run_for(&loop, 0.01);
    assert_int_equal(w.armed, 0);

    /* a new wait re-arms and sees the byte still there */
    waiter_init(&fr, &w, CORO_READABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(fr.got, CORO_READABLE);
    assert_int_equal(w.armed, CORO_READABLE);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* Many fds ready in one poll; half of their waiters were cancelled, so
 * those get disarmed while the batch is being dispatched (the poll backend
 * swap-removes entries mid-walk). Every live waiter still wakes, once. */
#define NPIPES 16

static int cb_cancel_odd(void *arg)
{
    coro_task *ts = arg;
    for (int i = 1; i < NPIPES; i += 2)
        coro_task_cancel(&ts[i]);
    return 0;
}

static void test_batch_with_disarms(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w[NPIPES];
    coro_task t[NPIPES];
    struct waiter fr[NPIPES];
    int p[NPIPES][2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int i = 0; i < NPIPES; i++) {
        make_pipe(p[i]);
        assert_int_equal(write(p[i][1], "x", 1), 1);
        assert_int_equal(coro_fd_init(&w[i], &loop, p[i][0]), 0);
        waiter_init(&fr[i], &w[i], CORO_READABLE);
        assert_int_equal(coro_task_init(&t[i], &loop, &fr[i].co), 0);
    }
    /* runs in the first pass, after every waiter armed, before any poll */
    assert_int_equal(coro_call_soon(&loop, NULL, cb_cancel_odd, t), 0);
    for (int i = 0; i < NPIPES; i++) {
        int rc = coro_loop_run_until_complete(&loop, coro_task_future(&t[i]));
        assert_int_equal(rc, i % 2 ? CORO_ECANCELLED : 0);
    }
    for (int i = 0; i < NPIPES; i += 2)
        assert_int_equal(fr[i].got, CORO_READABLE);
    /* the bytes were never read: the next events find nobody, all disarm */
    run_for(&loop, 0.01);
    for (int i = 0; i < NPIPES; i++)
        assert_int_equal(w[i].armed, 0);
    assert_int_equal(loop.nwatched, 0);
    for (int i = 0; i < NPIPES; i++) {
        assert_int_equal(coro_fd_detach(&w[i]), 0);
        close_fd(&p[i][0]);
        close_fd(&p[i][1]);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- a ready fd is never starved by a busy ready queue ---- */

struct yielder {
    coro_frame co;
    long i;
    long *count;
    int *stop;
};

static CORO_FN(yielder_step)
{
    struct yielder *self = CORO_SELF(struct yielder);
    CORO_BEGIN();
    for (self->i = 0; self->i < 1000000 && !*self->stop; self->i++) {
        (*self->count)++;
        CORO_SLEEP(0);
    }
    CORO_END();
}

struct stopper {
    coro_frame co;
    coro_fd *w;
    long *count;
    int *stop;
    long seen;
};

static CORO_FN(stopper_step)
{
    struct stopper *self = CORO_SELF(struct stopper);
    CORO_BEGIN();
    CORO_AWAIT(coro_fd_wait_readable(self->w));
    self->seen = *self->count;
    *self->stop = 1;
    CORO_END();
}

static void test_ready_fd_not_starved(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    coro_task ty[2], tr;
    struct yielder y[2];
    struct stopper r;
    long count = 0;
    int stop = 0, p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    for (int i = 0; i < 2; i++) {
        coro_frame_init(&y[i].co, yielder_step);
        y[i].count = &count;
        y[i].stop = &stop;
        assert_int_equal(coro_task_init(&ty[i], &loop, &y[i].co), 0);
    }
    coro_frame_init(&r.co, stopper_step);
    r.w = &w;
    r.count = &count;
    r.stop = &stop;
    r.seen = -1;
    assert_int_equal(coro_task_init(&tr, &loop, &r.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tr)), 0);
    assert_in_range(r.seen, 0, 100000);
    for (int i = 0; i < 2; i++)
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&ty[i])), 0);
    assert_true(count < 100000 + 2);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- allocation failure while arming ---- */

struct failing {
    int fail;
    int failures;
};

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct failing *f = ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (f->fail && nsize > osize) {
        f->failures++;
        return NULL;
    }
    return realloc(ptr, nsize);
}

static void test_arm_out_of_memory(void **state)
{
    (void)state;
    struct failing ctl = { 0, 0 };
    coro_loop_options opt = { .alloc = failing_alloc, .alloc_ud = &ctl };
    coro_loop loop;
    coro_fd w;
    coro_task t;
    struct waiter fr;
    int p[2];
    coro_future *f;

    assert_int_equal(coro_loop_init(&loop, &opt), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    ctl.fail = 1;
    f = coro_fd_wait_readable(&w);
    ctl.fail = 0;
    assert_non_null(f);
    if (ctl.failures > 0) { /* the backend allocates when arming (poll) */
        assert_int_equal(coro_future_error(f), CORO_ENOMEM); /* the reason, */
        assert_int_equal(w.armed, 0);                          /* nothing half-done */
        assert_int_equal(loop.nwatched, 0);
    }
    assert_int_equal(write(p[1], "x", 1), 1);
    waiter_init(&fr, &w, CORO_READABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(fr.got, CORO_READABLE);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A second watcher of one fd is refused with the selector's reason, the
 * same under every backend; the first keeps working. */
static void test_second_watcher_refused(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd a, b;
    coro_task t;
    struct waiter fr;
    int p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&a, &loop, p[0]), 0);
    assert_int_equal(coro_fd_init(&b, &loop, p[0]), 0);
    assert_non_null(coro_fd_wait_readable(&a));
    coro_future *f = coro_fd_wait_readable(&b);
    assert_non_null(f);
    assert_int_equal(coro_future_error(f), -EEXIST);
    assert_int_equal(write(p[1], "x", 1), 1);
    waiter_init(&fr, &a, CORO_READABLE);
    assert_int_equal(coro_task_init(&t, &loop, &fr.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(fr.got, CORO_READABLE);
    assert_int_equal(coro_fd_detach(&b), 0);
    assert_int_equal(coro_fd_detach(&a), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* make test runs the suite once per selector and says which in
 * CORO_SELECTOR: the library under test must be built with that one. */
static void test_selector_is_the_one_asked_for(void **state)
{
    (void)state;
    const char *want = getenv("CORO_SELECTOR");
    const char *have = coro_selector_name();
    assert_non_null(have);
    assert_true(strcmp(have, "epoll") == 0 || strcmp(have, "poll") == 0 ||
                strcmp(have, "kqueue") == 0);
    if (want && *want)
        assert_string_equal(have, want);
}

/* ---- bad arguments, closed loop ---- */

static void test_bad_arguments(void **state)
{
    (void)state;
    coro_loop loop, closed;
    coro_fd w;

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_fd_init(NULL, &loop, 0), CORO_EINVAL);
    assert_int_equal(coro_fd_init(&w, NULL, 0), CORO_EINVAL);
    assert_int_equal(coro_fd_init(&w, &loop, -1), CORO_EINVAL);
    assert_null(coro_fd_wait_readable(NULL));
    assert_null(coro_fd_wait_writable(NULL));
    assert_int_equal(coro_fd_detach(NULL), CORO_EINVAL);

    assert_int_equal(coro_loop_init(&closed, NULL), 0);
    assert_int_equal(coro_loop_close(&closed), 0);
    assert_int_equal(coro_fd_init(&w, &closed, 0), CORO_ECLOSED);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A watcher that outlives its loop: waits fail, detach is harmless. */
static void test_loop_closed_under_watcher(void **state)
{
    (void)state;
    coro_loop loop;
    coro_fd w;
    int p[2];

    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    make_pipe(p);
    assert_int_equal(coro_fd_init(&w, &loop, p[0]), 0);
    assert_non_null(coro_fd_wait_readable(&w));
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_null(coro_fd_wait_readable(&w));
    assert_int_equal(coro_fd_detach(&w), 0);
    assert_int_equal(coro_fd_detach(&w), 0);
    close_fd(&p[0]);
    close_fd(&p[1]);
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_readable),
        cmocka_unit_test(test_wait_writable),
        cmocka_unit_test(test_wait_writable_after_drain),
        cmocka_unit_test(test_read_loop_keeps_interest),
        cmocka_unit_test(test_both_directions),
        cmocka_unit_test(test_hup_wakes_reader),
        cmocka_unit_test(test_hup_wakes_writer),
        cmocka_unit_test(test_detach_cancels_waiter),
        cmocka_unit_test(test_detach_twice),
        cmocka_unit_test(test_no_stale_event_on_reused_fd),
        cmocka_unit_test(test_cancelled_waiter_disarms),
        cmocka_unit_test(test_batch_with_disarms),
        cmocka_unit_test(test_ready_fd_not_starved),
        cmocka_unit_test(test_arm_out_of_memory),
        cmocka_unit_test(test_selector_is_the_one_asked_for),
        cmocka_unit_test(test_second_watcher_refused),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_loop_closed_under_watcher),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
