/*
 * tests/test_loop.c - the event loop: SEMANTICS items 1-8, plus stop,
 * run_until_complete, close, error codes, coro_run and debug mode.
 *
 * One "pass" is one iteration of the loop; run_one_pass (helpers.h) runs
 * exactly one (stop before run_forever, as asyncio's run_briefly does).
 * Timing checks only ever say "not before": never "within".
 */
#include "helpers.h"

#include <pthread.h>
#include <signal.h>

#include <math.h>

#define E1 (CORO_EUSER - 1)

/* ---- 1. call_soon is FIFO ---- */

static void test_call_soon_fifo(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    tlog_arg a[10];
    for (int i = 0; i < 10; i++) {
        a[i] = (tlog_arg){ &log, i };
        assert_int_equal(coro_call_soon(&loop, NULL, tlog_cb, &a[i]), 0);
    }
    assert_int_equal(log.n, 0); /* nothing runs inline */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 2. what a pass schedules runs in the next pass ---- */

struct sched {
    coro_loop *loop;
    tlog *log;
    tlog_arg later;
    int stop;
};

static int schedule_later_cb(void *arg)
{
    struct sched *s = arg;
    tlog_add(s->log, 1);
    assert_int_equal(coro_call_soon(s->loop, NULL, tlog_cb, &s->later), 0);
    if (s->stop)
        coro_loop_stop(s->loop);
    return 0;
}

struct again {
    coro_loop *loop;
    int runs;
};

static int again_cb(void *arg)
{
    struct again *a = arg;
    a->runs++;
    assert_int_equal(coro_call_soon(a->loop, NULL, again_cb, a), 0);
    return 0;
}

static void test_scheduled_during_pass_runs_next_pass(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct sched s = { &loop, &log, { &log, 2 }, 1 };
    tlog_arg c = { &log, 3 };
    assert_int_equal(coro_call_soon(&loop, NULL, schedule_later_cb, &s), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, tlog_cb, &c), 0);
    /* stop() inside the pass: the pass finishes (3 runs), the new one waits */
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    TLOG_EXPECT(&log, 1, 3);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 3, 2);

    /* a callback that reschedules itself runs once per pass, never twice */
    struct again a = { &loop, 0 };
    assert_int_equal(coro_call_soon(&loop, NULL, again_cb, &a), 0);
    for (int i = 1; i <= 5; i++) {
        run_one_pass(&loop);
        assert_int_equal(a.runs, i);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 3. a cancelled handle never runs ---- */

struct canceller {
    coro_handle *victim;
    int rc;
};

static int cancel_cb(void *arg)
{
    struct canceller *c = arg;
    c->rc = coro_handle_cancel(c->victim);
    return 0;
}

static void test_cancelled_handle_never_runs(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    tlog_arg a1 = { &log, 1 }, a2 = { &log, 2 }, a3 = { &log, 3 }, a4 = { &log, 4 };
    coro_handle h1, h2, h3, h4, hc;
    coro_handle_init(&h1);
    coro_handle_init(&h2);
    coro_handle_init(&h3);
    coro_handle_init(&h4);
    coro_handle_init(&hc);

    /* cancelled before the pass */
    assert_int_equal(coro_handle_cancel(&h1), 0); /* never scheduled */
    assert_int_equal(coro_call_soon(&loop, &h1, tlog_cb, &a1), 0);
    assert_int_equal(coro_call_soon(&loop, &h1, tlog_cb, &a1), CORO_EINVAL); /* already */
    assert_int_equal(coro_handle_cancel(&h1), 1);
    assert_int_equal(coro_handle_cancel(&h1), 0);
    /* cancelled by an earlier callback of the same pass */
    struct canceller c = { &h2, -1 };
    assert_int_equal(coro_call_soon(&loop, &hc, cancel_cb, &c), 0);
    assert_int_equal(coro_call_soon(&loop, &h2, tlog_cb, &a2), 0);
    run_one_pass(&loop);
    assert_int_equal(c.rc, 1);
    assert_int_equal(log.n, 0);

    /* a timer */
    assert_int_equal(coro_call_later(&loop, &h3, 0.001, tlog_cb, &a3), 0);
    assert_int_equal(coro_handle_cancel(&h3), 1);
    assert_int_equal(coro_handle_cancel(&h3), 0);
    /* a due timer cancelled by the timer before it, in the same pass */
    int64_t when = coro_loop_time_ns(&loop) - MS;
    struct canceller c4 = { &h4, -1 };
    assert_int_equal(coro_call_at(&loop, &hc, when, cancel_cb, &c4), 0);
    assert_int_equal(coro_call_at(&loop, &h4, when, tlog_cb, &a4), 0);
    run_for(&loop, 0.02);
    assert_int_equal(c4.rc, 1);
    assert_int_equal(log.n, 0);

    /* a handle that ran (or was cancelled) can be scheduled again */
    assert_int_equal(coro_call_soon(&loop, &h1, tlog_cb, &a1), 0);
    assert_int_equal(coro_call_later(&loop, &h3, 0, tlog_cb, &a3), 0);
    run_for(&loop, 0.005);
    TLOG_EXPECT(&log, 1, 3);
    assert_int_equal(coro_handle_cancel(&h1), 0); /* it ran */
    assert_int_equal(coro_handle_cancel(NULL), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 4. overdue timers run in deadline order ---- */

static void test_negative_delays_deadline_order(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    tlog_arg a = { &log, 1 }, b = { &log, 2 }, c = { &log, 3 }, d = { &log, 4 };
    assert_int_equal(coro_call_later(&loop, NULL, -1, tlog_cb, &a), 0);
    assert_int_equal(coro_call_later(&loop, NULL, -2, tlog_cb, &b), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0, tlog_cb, &c), 0);
    assert_int_equal(coro_call_later(&loop, NULL, -3, tlog_cb, &d), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 4, 2, 1, 3);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 5. equal deadlines fire FIFO ---- */

static void test_equal_deadlines_fifo(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    tlog_arg a[40];
    int64_t soon = coro_loop_time_ns(&loop) + 2 * MS;
    int64_t past = coro_loop_time_ns(&loop) - 5 * MS;
    /* interleave two deadlines so the heap has to sift: 20 each */
    for (int i = 0; i < 40; i++) {
        a[i] = (tlog_arg){ &log, i };
        assert_int_equal(coro_call_at(&loop, NULL, i % 2 ? soon : past, tlog_cb, &a[i]), 0);
    }
    run_for(&loop, 0.03);
    assert_int_equal(log.n, 40);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(log.ev[i], 2 * i);          /* the overdue ones, FIFO */
        assert_int_equal(log.ev[20 + i], 2 * i + 1); /* then the others, FIFO */
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* Many timers over a few deadlines, armed in a scrambled order with every
 * seventh cancelled: they fire by deadline, FIFO within one (the heap
 * sifts on deadlines alone; each due run is put back in arming order). */
static void test_equal_deadlines_fifo_many(void **state)
{
    (void)state;
    enum { N = 480, D = 5 };
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_handle *h = calloc(N, sizeof *h);
    tlog_arg *a = calloc(N, sizeof *a);
    assert_non_null(h);
    assert_non_null(a);
    tlog log = { 0 };
    int64_t now = coro_loop_time_ns(&loop);
    uint32_t seed = 7;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        int d = (int)((seed >> 8) % D);
        a[i] = (tlog_arg){ &log, d * 1000 + i };
        coro_handle_init(&h[i]);
        assert_int_equal(coro_call_at(&loop, &h[i], now + (d - 1) * MS, tlog_cb, &a[i]), 0);
        if (i % 7 == 3)
            coro_handle_cancel(&h[i]);
    }
    run_for(&loop, 0.02);
    for (int k = 1; k < log.n; k++)
        if (log.ev[k - 1] >= log.ev[k])
            fail_msg("out of order at %d: %d then %d", k, log.ev[k - 1], log.ev[k]);
    assert_int_equal(log.n, N - (N - 4) / 7 - 1);
    assert_int_equal(coro_loop_close(&loop), 0);
    free(h);
    free(a);
}

/* Timers far ahead wait outside the heap (heap.c's buckets) and join it
 * before they are due, in (deadline, arming) order with the timers armed
 * near their deadline, even when virtual time jumps over both at once. */
static void test_far_timers_keep_order(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options o = { .virtual_time = 1 };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    tlog log = { 0 };
    tlog_arg a[6];
    coro_handle h[6];
    for (int i = 0; i < 6; i++) {
        a[i] = (tlog_arg){ &log, i };
        coro_handle_init(&h[i]);
    }
    run_one_pass(&loop); /* the loop has read its clock */
    int64_t t0 = coro_loop_time_ns(&loop), far = t0 + 100 * 1000000000LL;
    assert_int_equal(coro_call_at(&loop, &h[1], far, tlog_cb, &a[1]), 0);
    assert_int_equal(coro_call_at(&loop, &h[2], far, tlog_cb, &a[2]), 0);
    assert_int_equal(coro_call_at(&loop, &h[3], far, tlog_cb, &a[3]), 0);
    assert_int_equal(coro_call_at(&loop, &h[0], t0 + 5 * 1000000000LL, tlog_cb, &a[0]), 0);
    assert_int_equal(loop.heap_len, 1); /* the far ones take no heap entry */
    assert_int_equal(coro_handle_cancel(&h[2]), 1);  /* unlinked from its bucket */
    assert_int_equal(coro_handle_cancel(&h[2]), 0);
    assert_int_equal(coro_loop_advance(&loop, 90 * 1000000000LL), 0);
    run_one_pass(&loop); /* h[0] fires; the bucket is still out of the heap */
    TLOG_EXPECT(&log, 0);
    assert_int_equal(coro_call_at(&loop, &h[4], far, tlog_cb, &a[4]), 0); /* near: the heap */
    assert_int_equal(coro_call_at(&loop, &h[5], far + 1, tlog_cb, &a[5]), 0);
    assert_int_equal(coro_loop_advance(&loop, 3600 * 1000000000LL), 0); /* over all of it */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 0, 1, 3, 4, 5);
    assert_int_equal(loop.heap_len, 0);
    assert_int_equal(loop.far_len, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A far timer left armed at close is released with the loop. */
static void test_far_timer_at_close(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_handle h;
    tlog log = { 0 };
    tlog_arg a = { &log, 1 };
    coro_handle_init(&h);
    run_one_pass(&loop);
    assert_int_equal(coro_call_later(&loop, &h, 3600, tlog_cb, &a), 0);
    assert_int_equal(loop.heap_len, 0);
    assert_int_equal(loop.far_len, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(log.n, 0);
}

/* ---- 6. a timer never fires before its deadline ---- */

struct stamp {
    coro_loop *loop;
    int64_t at;
    int fired;
};

static int stamp_cb(void *arg)
{
    struct stamp *s = arg;
    s->at = coro_loop_time_ns(s->loop);
    s->fired++;
    return 0;
}

struct napper {
    coro_frame co;
    coro_loop *loop;
    int64_t before, after;
};

static CORO_FN(napper_step)
{
    struct napper *self = CORO_SELF(struct napper);
    CORO_BEGIN();
    self->before = coro_loop_time_ns(self->loop);
    CORO_SLEEP(0.02);
    self->after = coro_loop_time_ns(self->loop);
    CORO_END();
}

static void test_timer_never_early(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct stamp s1 = { &loop, 0, 0 }, s2 = { &loop, 0, 0 }, s3 = { &loop, 0, 0 };
    int64_t t0 = coro_loop_time_ns(&loop);
    assert_true(t0 > 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.02, stamp_cb, &s1), 0);
    assert_int_equal(coro_call_at(&loop, NULL, t0 + 30 * MS, stamp_cb, &s2), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.0015, stamp_cb, &s3), 0); /* sub-ms */
    struct napper n = { .loop = &loop };
    coro_task t;
    coro_frame_init(&n.co, napper_step);
    assert_int_equal(coro_task_init(&t, &loop, &n.co), 0);
    run_for(&loop, 0.06);
    assert_int_equal(s1.fired, 1);
    assert_int_equal(s2.fired, 1);
    assert_int_equal(s3.fired, 1);
    assert_true(s1.at - t0 >= 20 * MS);
    assert_true(s2.at - t0 >= 30 * MS);
    assert_true(s3.at - t0 >= 15 * MS / 10);
    assert_int_equal(coro_task_done(&t), 1);
    assert_true(n.after - n.before >= 20 * MS);
    /* the clock in seconds agrees with the one in nanoseconds */
    double secs = coro_loop_time(&loop);
    int64_t ns = coro_loop_time_ns(&loop);
    assert_true(fabs(secs - (double)ns / 1e9) < 1.0);
    assert_true(coro_loop_time_ns(&loop) >= ns);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- timers are checked on every pass, as asyncio's _run_once does ----
 *
 * Regression (a bug until 8d4b9d7): loop.c run_once() moved due timers to
 * the ready queue only in poll_phase(), that is when the ready queue was
 * empty or after CORO__POLL_EVERY callbacks, so while the queue never
 * emptied (tasks doing sleep(0), self-rescheduling callbacks) a due timer
 * waited up to 1024 callbacks instead of one pass. */

struct busy {
    coro_loop *loop;
    int64_t deadline;
    int fired;
    int passes_overdue; /* passes that saw the deadline passed, timer not run */
    int runs;
};

static int busy_cb(void *arg)
{
    struct busy *b = arg;
    b->runs++;
    if (b->fired) {
        coro_loop_stop(b->loop);
        return 0;
    }
    if (coro_loop_time_ns(b->loop) >= b->deadline)
        b->passes_overdue++;
    if (b->runs > 200000) { /* a safety net: never hang */
        coro_loop_stop(b->loop);
        return 0;
    }
    return coro_call_soon(b->loop, NULL, busy_cb, b);
}

static int busy_timer_cb(void *arg)
{
    struct busy *b = arg;
    b->fired = 1;
    return 0;
}

static void test_due_timer_joins_next_pass(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    tlog_arg a = { &log, 1 }, b = { &log, 2 };
    /* already due when the pass begins: runs in that pass */
    assert_int_equal(coro_call_soon(&loop, NULL, tlog_cb, &a), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0, tlog_cb, &b), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_busy_queue_does_not_hold_timers(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    /* a busy ready queue does not hold a due timer back */
    struct busy bz = { &loop, 0, 0, 0, 0 };
    bz.deadline = coro_loop_time_ns(&loop) + 2 * MS;
    assert_int_equal(coro_call_at(&loop, NULL, bz.deadline, busy_timer_cb, &bz), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, busy_cb, &bz), 0);
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    assert_int_equal(bz.fired, 1);
    if (bz.passes_overdue > 3) /* it was up to 1024 */
        fail_msg("the due timer waited %d passes", bz.passes_overdue);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 7. cancelled timers do not hold the heap ---- */

static int nop_cb(void *arg)
{
    (void)arg;
    return 0;
}

static void test_cancelled_timers_purged(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    static coro_handle h[200];
    for (int i = 0; i < 200; i++) {
        coro_handle_init(&h[i]);
        /* under 17 s: in the heap, not a far bucket (heap.c) */
        assert_int_equal(coro_call_later(&loop, &h[i], 5 + i * 0.05, nop_cb, NULL), 0);
    }
    for (int i = 0; i < 150; i++)
        assert_int_equal(coro_handle_cancel(&h[i * 4 / 3]), 1); /* spread over the heap */
    assert_int_equal(loop.heap_len, 200);
    assert_int_equal(loop.heap_dead, 150);
    coro_handle stop;
    coro_handle_init(&stop);
    assert_int_equal(coro_call_later(&loop, &stop, 0, stop_cb, &loop), 0);
    assert_int_equal(coro_loop_run_forever(&loop), 0); /* one iteration */
    assert_true(loop.heap_len < 100);
    assert_int_equal(loop.heap_len, 50);
    assert_int_equal(loop.heap_dead, 0);
    int live = 0;
    for (int i = 0; i < 200; i++)
        live += coro_handle_cancel(&h[i]);
    assert_int_equal(live, 50); /* the survivors are still armed, and cancellable */

    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_small_heap_not_purged(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    /* asyncio rebuilds only a heap of more than 100: below that, only the
     * cancelled timers that reach the top are dropped */
    coro_handle h[40];
    for (int i = 0; i < 40; i++) {
        coro_handle_init(&h[i]);
        assert_int_equal(coro_call_later(&loop, &h[i], 5 + i * 0.25, nop_cb, NULL), 0);
    }
    for (int i = 1; i < 40; i++)
        assert_int_equal(coro_handle_cancel(&h[i]), 1);
    run_one_pass(&loop);
    /* one live timer; the cancelled ones stay as tombstones (the last
     * entry of the array is simply dropped when cancelled) */
    assert_int_equal(loop.heap_len - loop.heap_dead, 1);
    assert_true(loop.heap_dead >= 38);
    assert_int_equal(coro_handle_cancel(&h[0]), 1); /* now the top is dead too */
    run_one_pass(&loop);
    assert_int_equal(loop.heap_len, 0);
    assert_int_equal(loop.heap_dead, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 8. running a running loop is an error; errors go to the handler ---- */

struct nested {
    coro_loop *loop;
    coro_future *fut;
    int forever, until, close, running;
};

static int nested_cb(void *arg)
{
    struct nested *n = arg;
    n->running = coro_loop_is_running(n->loop);
    n->forever = coro_loop_run_forever(n->loop);
    n->until = coro_loop_run_until_complete(n->loop, n->fut);
    n->close = coro_loop_close(n->loop);
    return 0;
}

static void test_run_while_running(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future f;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    struct nested n = { &loop, &f, 1, 1, 1, 0 };
    assert_int_equal(coro_call_soon(&loop, NULL, nested_cb, &n), 0);
    assert_int_equal(coro_loop_is_running(&loop), 0);
    run_one_pass(&loop);
    assert_int_equal(n.running, 1);
    assert_int_equal(n.forever, CORO_ERUNNING);
    assert_int_equal(n.until, CORO_ERUNNING);
    assert_int_equal(n.close, CORO_ERUNNING);
    assert_int_equal(coro_loop_is_running(&loop), 0);
    assert_int_equal(coro_loop_is_closed(&loop), 0);
    /* the loop still works */
    assert_int_equal(coro_future_set_result(&f, coro_int(3)), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static int fail_cb(void *arg)
{
    (void)arg;
    return E1;
}

static void test_callback_error_goes_to_handler(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    texc x = { 0 };
    tlog log = { 0 };
    tlog_arg a = { &log, 1 }, b = { &log, 2 };
    coro_loop_set_exception_handler(&loop, texc_handler, &x);
    assert_int_equal(coro_call_soon(&loop, NULL, fail_cb, NULL), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, tlog_cb, &a), 0);
    assert_int_equal(coro_call_later(&loop, NULL, -1, fail_cb, NULL), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.001, tlog_cb, &b), 0);
    run_for(&loop, 0.02); /* the loop keeps running after each error */
    TLOG_EXPECT(&log, 1, 2);
    assert_int_equal(x.count, 2);
    assert_int_equal(x.callback_errors, 2);
    assert_int_equal(x.last_error, E1);
    assert_null(x.last_task);

    /* call_exception_handler hands the context over as it is */
    coro_exception_context ctx = { .message = "custom", .error = -5 };
    coro_loop_call_exception_handler(&loop, &ctx);
    assert_int_equal(x.count, 3);
    assert_string_equal(x.last_message, "custom");
    assert_int_equal(x.last_error, -5);
    coro_loop_call_exception_handler(&loop, NULL);
    print_message("(an expected report follows: a NULL loop goes to the default handler)\n");
    coro_loop_call_exception_handler(NULL, &ctx); /* prints "coro: custom: ..." */
    assert_int_equal(x.count, 3);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- stop ---- */

static void test_stop(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct sched s = { &loop, &log, { &log, 2 }, 0 };
    /* stop before run: one pass, then return (asyncio) */
    assert_int_equal(coro_call_soon(&loop, NULL, schedule_later_cb, &s), 0);
    coro_loop_stop(&loop);
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    TLOG_EXPECT(&log, 1);
    /* the stop is consumed: the next run goes on until stopped again */
    tlog_arg c = { &log, 3 };
    assert_int_equal(coro_call_later(&loop, NULL, 0.005, tlog_cb, &c), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 0.01, stop_cb, &loop), 0);
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    TLOG_EXPECT(&log, 1, 2, 3);
    coro_loop_stop(NULL); /* a no-op */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- run_until_complete ---- */

struct completer {
    coro_future *fut;
    coro_value v;
    int err, cancel;
};

static int complete_cb(void *arg)
{
    struct completer *c = arg;
    if (c->cancel)
        assert_int_equal(coro_future_cancel(c->fut), 1);
    else if (c->err)
        assert_int_equal(coro_future_set_error(c->fut, c->err), 0);
    else
        assert_int_equal(coro_future_set_result(c->fut, c->v), 0);
    return 0;
}

static void test_run_until_complete(void **state)
{
    (void)state;
    coro_loop loop, other;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_init(&other, NULL), 0);
    coro_future f;
    coro_value v;

    /* a result, set by a timer */
    assert_int_equal(coro_future_init(&f, &loop), 0);
    struct completer c = { &f, coro_int(11), 0, 0 };
    assert_int_equal(coro_call_later(&loop, NULL, 0.002, complete_cb, &c), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), 0);
    assert_int_equal(coro_future_result(&f, &v), 0);
    assert_int_equal(v.u.i, 11);
    /* an error */
    assert_int_equal(coro_future_init(&f, &loop), 0);
    c = (struct completer){ &f, coro_none(), E1, 0 };
    assert_int_equal(coro_call_soon(&loop, NULL, complete_cb, &c), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), E1);
    /* cancelled */
    assert_int_equal(coro_future_init(&f, &loop), 0);
    c = (struct completer){ &f, coro_none(), 0, 1 };
    assert_int_equal(coro_call_soon(&loop, NULL, complete_cb, &c), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), CORO_ECANCELLED);
    /* already done: returns after one pass */
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), CORO_ECANCELLED);

    /* stopped first: CORO_ESTATE, and the future forgets the loop's callback */
    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, stop_cb, &loop), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), CORO_ESTATE);
    c = (struct completer){ &f, coro_int(5), 0, 0 };
    assert_int_equal(coro_call_soon(&loop, NULL, complete_cb, &c), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_future_done(&f), 1);
    run_one_pass(&loop); /* nothing stale may run here */
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), 0);

    /* stopped in the pass that completes the future: it counts as done */
    assert_int_equal(coro_future_init(&f, &loop), 0);
    c = (struct completer){ &f, coro_int(6), 0, 0 };
    assert_int_equal(coro_call_soon(&loop, NULL, stop_cb, &loop), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, complete_cb, &c), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), 0);
    run_one_pass(&loop);

    /* bad arguments */
    assert_int_equal(coro_loop_run_until_complete(NULL, &f), CORO_EINVAL);
    assert_int_equal(coro_loop_run_until_complete(&loop, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_run_until_complete(&other, &f), CORO_EINVAL);
    assert_int_equal(coro_loop_close(&other), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- close and the error codes ---- */

static int never_cb(void *arg)
{
    (void)arg;
    fail_msg("a callback ran on a closed loop");
    return 0;
}

static void never_done(coro_future *f, void *arg)
{
    (void)f;
    (void)arg;
    fail_msg("a done callback ran on a closed loop");
}

static CORO_FN(nothing_step)
{
    CORO_BEGIN();
    CORO_END();
}

static void test_close_and_error_codes(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    assert_int_equal(coro_loop_init(NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_loop_is_closed(&loop), 0);
    coro_handle h;
    coro_handle_init(&h);
    assert_int_equal(coro_call_soon(NULL, NULL, nop_cb, NULL), CORO_EINVAL);
    assert_int_equal(coro_call_soon(&loop, NULL, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_call_later(&loop, NULL, NAN, nop_cb, NULL), CORO_EINVAL);
    assert_int_equal(coro_call_later(NULL, NULL, 1, nop_cb, NULL), CORO_EINVAL);
    assert_int_equal(coro_call_at(&loop, NULL, 0, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_run_forever(NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_close(NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_is_running(NULL), 0);

    /* close with pending work drops it, and releases everything */
    coro_future f;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, never_cb, NULL), 0);
    assert_int_equal(coro_call_later(&loop, NULL, 100, never_cb, NULL), 0);
    assert_int_equal(coro_call_later(&loop, &h, 100, never_cb, NULL), 0);
    assert_int_equal(coro_future_add_done_callback(&f, never_done, NULL), 0);
    assert_non_null(coro_future_new(&loop));
    assert_non_null(coro_frame_new(&loop, 4000, nothing_step));
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
    assert_int_equal(coro_loop_is_closed(&loop), 1);

    /* a closed loop refuses everything with CORO_ECLOSED */
    coro_handle h2;
    coro_handle_init(&h2);
    assert_int_equal(coro_call_soon(&loop, NULL, nop_cb, NULL), CORO_ECLOSED);
    assert_int_equal(coro_call_soon(&loop, &h2, nop_cb, NULL), CORO_ECLOSED);
    assert_int_equal(coro_call_later(&loop, NULL, 0, nop_cb, NULL), CORO_ECLOSED);
    assert_int_equal(coro_call_at(&loop, NULL, 0, nop_cb, NULL), CORO_ECLOSED);
    assert_int_equal(coro_loop_run_forever(&loop), CORO_ECLOSED);
    assert_int_equal(coro_loop_run_until_complete(&loop, &f), CORO_ECLOSED);
    assert_int_equal(coro_future_init(&f, &loop), CORO_ECLOSED);
    assert_null(coro_future_new(&loop));
    assert_null(coro_frame_new(&loop, 64, nothing_step));
    coro_frame fr = CORO_FRAME_INIT(nothing_step);
    coro_task t;
    assert_int_equal(coro_task_init(&t, &loop, &fr), CORO_ECLOSED);
    assert_null(coro_spawn(&loop, &fr));
    coro_loop_stop(&loop);
    assert_int_equal(coro_loop_close(&loop), 0); /* twice is fine */
}

/* ---- coro_run: asyncio.run ---- */

struct mainf {
    coro_frame co;
    int err;
    double nap;
};

static CORO_FN(mainf_step)
{
    struct mainf *self = CORO_SELF(struct mainf);
    CORO_BEGIN();
    CORO_SLEEP(self->nap);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(42));
    CORO_END();
}

static void test_coro_run(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct mainf m = { .nap = 0.001 };
    coro_value v = coro_none();
    coro_frame_init(&m.co, mainf_step);
    assert_int_equal(coro_run(&m.co, &v, &o), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 42);
    assert_int_equal(a.live, 0);
    assert_true(a.calls > 0); /* it used our allocator */

    m = (struct mainf){ .err = E1 };
    coro_frame_init(&m.co, mainf_step);
    assert_int_equal(coro_run(&m.co, NULL, NULL), E1);
    assert_int_equal(coro_run(NULL, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- coro_run cancels what main left behind (asyncio.run) ----
 * main finds its loop with coro_get_running_loop, spawns children that
 * sleep 10 s and returns at once: coro_run cancels them, lets their cleanup
 * run, and returns main's result without waiting. Round 0 keeps the
 * children, round 1 releases them (fire and forget), round 2 also has their
 * cleanup start one more short task through call_soon (asyncio.run returns
 * main's result all the same).
 *
 * Regression, round 2 (a use after free until 29133a8): coro_run's
 * shutdown ran run_until_complete on released tasks, and the pass that ran
 * its stop callback also freed the task, which run_until_complete read
 * afterwards. A callback queued later in that pass spawns a task that the
 * slab (LIFO) puts in the freed slot, which made coro_run return
 * CORO_ESTATE. (Round 1 read freed memory too, silently: slab memory is not
 * poisoned, so the sanitizers do not see such reads.) */

struct child {
    coro_frame co;
    int *fin;
    int spawn_in_cleanup;
};

static CORO_FN(quick_step)
{
    CORO_BEGIN();
    CORO_END();
}

/* A callback that starts one more (short) task. */
static int spawn_quick_cb(void *arg)
{
    coro_loop *loop = coro_get_running_loop();
    (void)arg;
    assert_non_null(loop);
    coro_task *t = coro_spawn(loop, coro_frame_new(loop, sizeof(coro_frame), quick_step));
    assert_non_null(t);
    coro_task_release(t);
    return 0;
}

static CORO_FN(child_step)
{
    struct child *self = CORO_SELF(struct child);
    CORO_BEGIN();
    CORO_SLEEP(10);
    CORO_FINALLY
    ++*self->fin;
    if (self->spawn_in_cleanup)
        assert_int_equal(coro_call_soon(coro_get_running_loop(), NULL, spawn_quick_cb, NULL), 0);
    CORO_END();
}

struct spawner {
    coro_frame co;
    int *fin;
    int release, spawn_in_cleanup;
    coro_loop *seen;
};

static CORO_FN(spawner_step)
{
    struct spawner *self = CORO_SELF(struct spawner);
    CORO_BEGIN();
    self->seen = coro_get_running_loop();
    for (int i = 0; i < 3; i++) {
        struct child *c = CORO_FRAME_NEW(self->seen, struct child, child_step);
        assert_non_null(c);
        c->fin = self->fin;
        c->spawn_in_cleanup = self->spawn_in_cleanup;
        coro_task *t = coro_spawn(self->seen, &c->co);
        assert_non_null(t);
        if (self->release)
            coro_task_release(t); /* fire and forget */
    }
    CORO_SLEEP(0); /* the children start sleeping */
    CORO_RETURN(coro_int(3));
    CORO_END();
}

static void test_coro_run_cancels_leftovers(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int round = 0; round < 3; round++) {
        talloc a = { 0 };
        coro_loop_options o = talloc_options(&a);
        int fin = 0;
        struct spawner s = { .fin = &fin, .release = round > 0, .spawn_in_cleanup = round > 1 };
        coro_value v = coro_none();
        coro_frame_init(&s.co, spawner_step);
        int64_t t0 = mono_ns();
        int rc = coro_run(&s.co, &v, &o);
        if (rc != 0) /* it was CORO_ESTATE in round 2 (see above) */
            fail_msg("round %d: coro_run returned %d (%s)", round, rc, coro_strerror(rc));
        assert_true(mono_ns() - t0 < 5000 * MS);
        assert_non_null(s.seen);
        assert_true(s.seen != &loop);
        assert_int_equal(v.u.i, 3);
        assert_int_equal(fin, 3); /* every child's cleanup ran */
        assert_int_equal(a.live, 0);
    }
    assert_null(coro_get_running_loop());
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- the running loop: one per thread ---- */

struct running {
    coro_loop *other;
    coro_loop *seen;
    coro_task *task_seen;
    int other_rc;
};

static int running_cb(void *arg)
{
    struct running *r = arg;
    r->seen = coro_get_running_loop();
    r->task_seen = coro_current_task(NULL);
    r->other_rc = coro_loop_run_forever(r->other);
    return 0;
}

struct whoami {
    coro_frame co;
    coro_task *seen;
    coro_loop *loop;
};

static CORO_FN(whoami_step)
{
    struct whoami *self = CORO_SELF(struct whoami);
    CORO_BEGIN();
    self->seen = coro_current_task(NULL);
    self->loop = coro_get_running_loop();
    CORO_END();
}

static void test_running_loop(void **state)
{
    (void)state;
    coro_loop loop, other;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_init(&other, NULL), 0);
    assert_null(coro_get_running_loop());
    struct running r = { &other, NULL, NULL, 1 };
    assert_int_equal(coro_call_soon(&loop, NULL, running_cb, &r), 0);
    struct whoami w = { .seen = NULL };
    coro_task t;
    coro_frame_init(&w.co, whoami_step);
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_ptr_equal(r.seen, &loop);
    assert_null(r.task_seen);
    assert_int_equal(r.other_rc, CORO_ERUNNING); /* another loop runs on this thread */
    assert_ptr_equal(w.seen, &t);
    assert_ptr_equal(w.loop, &loop);
    assert_null(coro_get_running_loop());
    assert_null(coro_current_task(NULL));
    run_one_pass(&other); /* and it runs fine on its own */
    assert_int_equal(coro_loop_close(&other), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* coro_current_task is a task only inside its step: a callback that runs
 * right after a task's sleep(0) in the same pass, and a timer's, see NULL. */
struct outside {
    coro_loop *loop;
    int runs, saw_task;
};

static int outside_cb(void *arg)
{
    struct outside *o = arg;
    o->saw_task += coro_current_task(o->loop) != NULL;
    if (++o->runs < 4)
        assert_int_equal(coro_call_soon(o->loop, NULL, outside_cb, o), 0);
    return 0;
}

struct passer {
    coro_frame co;
    int i, saw_other;
    coro_task *self;
};

static CORO_FN(passer_step)
{
    struct passer *self = CORO_SELF(struct passer);
    CORO_BEGIN();
    for (self->i = 0; self->i < 5; self->i++) {
        self->saw_other += coro_current_task(NULL) != self->self;
        CORO_SLEEP(0);
    }
    CORO_END();
}

static void test_current_task_only_inside_a_step(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct passer p = { CORO_FRAME_INIT(passer_step), 0, 0, NULL };
    coro_task t;
    assert_int_equal(coro_task_init(&t, &loop, &p.co), 0);
    p.self = &t;
    struct outside soon = { &loop, 0, 0 }, later = { &loop, 3, 0 };
    assert_int_equal(coro_call_soon(&loop, NULL, outside_cb, &soon), 0); /* after the task */
    assert_int_equal(coro_call_later(&loop, NULL, 0.0, outside_cb, &later), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(soon.runs, 4);
    assert_int_equal(soon.saw_task, 0);
    assert_int_equal(later.runs, 4);
    assert_int_equal(later.saw_task, 0);
    assert_int_equal(p.saw_other, 0);
    assert_null(coro_current_task(&loop));
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- debug mode: slow callbacks and slow task steps ---- */

static int spin_cb(void *arg)
{
    spin_ns(*(int64_t *)arg);
    return 0;
}

struct spinner {
    coro_frame co;
};

static CORO_FN(spinner_step)
{
    CORO_BEGIN();
    spin_ns(5 * MS);
    CORO_END();
}

static void test_debug_slow_callback(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options o = { .debug = 1, .slow_callback_ns = MS };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_loop_get_debug(&loop), 1);
    texc x = { 0 };
    coro_loop_set_exception_handler(&loop, texc_handler, &x);
    int64_t spin = 5 * MS;
    assert_int_equal(coro_call_soon(&loop, NULL, spin_cb, &spin), 0);
    run_one_pass(&loop);
    assert_int_equal(x.slow, 1);
    assert_true(x.last_seconds > 0);
    assert_true(x.last_seconds >= 0.001);
    assert_null(x.last_task);

    /* a slow task step names the task */
    struct spinner s;
    coro_task t;
    coro_frame_init(&s.co, spinner_step);
    assert_int_equal(coro_task_init(&t, &loop, &s.co), 0);
    assert_int_equal(coro_task_set_name(&t, "spinner"), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(x.slow, 2);
    assert_ptr_equal(x.last_task, &t);
    assert_string_equal(x.last_task_name, "spinner");
    assert_true(x.last_seconds >= 0.001);

    /* debug off: nothing reported */
    coro_loop_set_debug(&loop, 0);
    assert_int_equal(coro_loop_get_debug(&loop), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, spin_cb, &spin), 0);
    run_one_pass(&loop);
    assert_int_equal(x.slow, 2);
    assert_int_equal(x.count, 2);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- debug mode from the environment (PYTHONASYNCIODEBUG's CORO_DEBUG) ---- */

static void test_debug_from_environment(void **state)
{
    (void)state;
    coro_loop loop;
    const char *saved = getenv("CORO_DEBUG");
    char keep[64] = "";
    if (saved)
        snprintf(keep, sizeof keep, "%s", saved);
    coro_loop_options on = { .debug = 1 }, off = { .debug = -1 }, env = { .debug = 0 };

    setenv("CORO_DEBUG", "1", 1);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_get_debug(&loop), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(coro_loop_init(&loop, &env), 0);
    assert_int_equal(coro_loop_get_debug(&loop), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(coro_loop_init(&loop, &off), 0); /* -1: off whatever the environment */
    assert_int_equal(coro_loop_get_debug(&loop), 0);
    assert_int_equal(coro_loop_close(&loop), 0);

    unsetenv("CORO_DEBUG");
    assert_int_equal(coro_loop_init(&loop, &on), 0);
    assert_int_equal(coro_loop_get_debug(&loop), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_get_debug(&loop), 0);
    coro_loop_set_debug(&loop, 5);
    assert_int_equal(coro_loop_get_debug(&loop), 1);
    coro_loop_set_debug(NULL, 1);
    assert_int_equal(coro_loop_get_debug(NULL), 0);
    if (saved)
        setenv("CORO_DEBUG", keep, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- strerror ---- */

static void test_strerror(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    const int codes[] = { 0,           CORO_ENOMEM,   CORO_EINVAL,  CORO_ETIMEDOUT, CORO_ECANCELLED,
                          CORO_ESTATE, CORO_ERUNNING, CORO_ECLOSED, CORO_EUSER,     E1,
                          12345,       -4999 };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = coro_strerror(codes[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
    }
    assert_string_not_equal(coro_strerror(CORO_ECANCELLED), coro_strerror(CORO_ESTATE));
    assert_string_not_equal(coro_strerror(CORO_ERUNNING), coro_strerror(CORO_ECLOSED));
    /* coro's words for coro's codes, not the socket's */
    assert_string_equal(coro_strerror(CORO_ETIMEDOUT), "timed out");
    assert_string_equal(coro_strerror(CORO_ECANCELLED), "cancelled");
    assert_string_equal(coro_strerror(CORO_EUSER - 7), "application error");
    assert_string_equal(coro_strerror(12345), "unknown error");
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* The one seconds-to-nanoseconds rule every API shares (sleep, call_later,
 * timeouts): nearest nanosecond, NaN 0, clamped, saturating deadlines. */
static void test_seconds_to_ns(void **state)
{
    (void)state;
    assert_true(coro__seconds_to_ns(1.5) == 1500000000LL);
    assert_true(coro__seconds_to_ns(1e-9 * 0.6) == 1);  /* rounds up past half */
    assert_true(coro__seconds_to_ns(1e-9 * 0.4) == 0);
    assert_true(coro__seconds_to_ns(-0.25) == -250000000LL);
    assert_true(coro__seconds_to_ns(0.0 / 0.0) == 0);
    assert_true(coro__seconds_to_ns(1e300) == INT64_MAX);
    assert_true(coro__seconds_to_ns(-1e300) == -INT64_MAX);
    assert_true(coro__deadline_after(100, 5) == 105);
    assert_true(coro__deadline_after(100, -5) == 95);
    assert_true(coro__deadline_after(100, INT64_MAX) == INT64_MAX);
    assert_true(coro__deadline_after(INT64_MAX - 3, 10) == INT64_MAX);
    assert_true(coro__deadline_after(100, -INT64_MAX) == INT64_MIN / 2);
}

/* One table names every code: coro's own, common system errors, the rest. */
static void test_err_name(void **state)
{
    (void)state;
#define CHECK_NAME(name, value, message)                                        \
    assert_string_equal(coro_err_name(value), "CORO_" #name);                   \
    assert_string_equal(coro_strerror(value), message);
    CORO_ERRNO_MAP(CHECK_NAME)
#undef CHECK_NAME
    assert_string_equal(coro_err_name(0), "CORO_OK");
    assert_string_equal(coro_err_name(CORO_ECANCELLED), "CORO_ECANCELLED");
    assert_string_equal(coro_err_name(-EPIPE), "EPIPE");
    assert_string_equal(coro_err_name(-ECONNREFUSED), "ECONNREFUSED");
    assert_string_equal(coro_err_name(CORO_EUSER), "CORO_EUSER");
    assert_string_equal(coro_err_name(CORO_EUSER - 3), "CORO_EUSER");
    assert_string_equal(coro_err_name(-4999), "UNKNOWN");
    assert_string_equal(coro_err_name(7), "UNKNOWN");
    assert_string_equal(coro_err_name(-3999), "UNKNOWN");
}

/* ---- coro_call_soon_isr: posts from interrupts, signals, other threads ---- */

struct isr_log {
    int n;
    int order[8];
    pthread_t thread[8];
};

struct isr_arg {
    struct isr_log *log;
    int id;
};

static int isr_cb(void *arg)
{
    struct isr_arg *a = arg;
    if (a->log->n < 8) {
        a->log->order[a->log->n] = a->id;
        a->log->thread[a->log->n] = pthread_self();
    }
    a->log->n++;
    return 0;
}

/* Order, coalescing, and a post that runs where the loop runs. */
static void test_isr_post_order_and_coalescing(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct isr_log log = { 0 };
    struct isr_arg a1 = { &log, 1 }, a2 = { &log, 2 }, a3 = { &log, 3 };
    static coro_isr_node n1, n2, n3;
    assert_int_equal(coro_call_soon_isr(&loop, &n1, isr_cb, &a1), 1);
    assert_int_equal(coro_call_soon_isr(&loop, &n2, isr_cb, &a2), 1);
    assert_int_equal(coro_call_soon_isr(&loop, &n1, isr_cb, &a1), 0); /* still queued */
    assert_int_equal(coro_call_soon_isr(&loop, &n3, isr_cb, &a3), 1);
    run_one_pass(&loop);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.order[0], 1);
    assert_int_equal(log.order[1], 2);
    assert_int_equal(log.order[2], 3);
    assert_int_equal(coro_call_soon_isr(&loop, &n1, isr_cb, &a1), 1); /* ran: may go again */
    run_one_pass(&loop);
    assert_int_equal(log.n, 4);
    assert_int_equal(coro_call_soon_isr(NULL, &n1, isr_cb, &a1), CORO_EINVAL);
    assert_int_equal(coro_call_soon_isr(&loop, NULL, isr_cb, &a1), CORO_EINVAL);
    assert_int_equal(coro_call_soon_isr(&loop, &n1, NULL, &a1), CORO_EINVAL);
    /* close lets a post that never ran go: it may be posted again */
    assert_int_equal(coro_call_soon_isr(&loop, &n2, isr_cb, &a2), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(log.n, 4);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_call_soon_isr(&loop, &n2, isr_cb, &a2), 1);
    run_one_pass(&loop);
    assert_int_equal(log.n, 5);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* From another thread: the loop, blocked in its wait with nothing else to
 * do, wakes at once, and the callback runs on the loop's thread. A 2 s
 * timer bounds the test if the wake-up were lost. */
struct poster {
    coro_loop *loop;
    coro_isr_node node;
    struct isr_log log;
    struct isr_arg arg;
};

static int post_and_stop(void *arg)
{
    struct poster *ps = arg;
    isr_cb(&ps->arg);
    coro_loop_stop(ps->loop);
    return 0;
}

static void *poster_main(void *p)
{
    struct poster *ps = p;
    struct timespec ts = { 0, 20 * 1000000L };
    nanosleep(&ts, NULL); /* let the loop block first */
    coro_call_soon_isr(ps->loop, &ps->node, post_and_stop, ps);
    return NULL;
}

static int give_up(void *arg)
{
    coro_loop_stop(arg);
    return 0;
}

static void test_isr_post_from_thread_wakes(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
#if CORO_HOSTED
    if (strcmp(coro_selector_name(), "none") != 0)
        assert_int_equal(coro_threads_init(&loop), 0); /* the wake-up fd */
#endif
    static struct poster ps;
    memset(&ps, 0, sizeof ps);
    ps.loop = &loop;
    ps.arg.log = &ps.log;
    ps.arg.id = 7;
    coro_handle guard;
    coro_handle_init(&guard);
    assert_int_equal(coro_call_later(&loop, &guard, 2.0, give_up, &loop), 0);
    pthread_t th;
    int64_t t0 = coro_loop_time_ns(&loop);
    assert_int_equal(pthread_create(&th, NULL, poster_main, &ps), 0);
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    int64_t waited = coro_loop_time_ns(&loop) - t0;
    pthread_join(th, NULL);
    coro_handle_cancel(&guard);
    assert_int_equal(ps.log.n, 1);
    assert_int_equal(ps.log.order[0], 7);
    assert_true(pthread_equal(ps.log.thread[0], pthread_self()));
    assert_true(waited < 1000000000LL); /* woken by the post, not the 2 s guard */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* From a signal handler (the hosted stand-in for an interrupt). */
static coro_loop *sig_loop;
static coro_isr_node sig_node;
static struct isr_log sig_log;
static struct isr_arg sig_arg = { &sig_log, 9 };

static void on_usr2(int signum)
{
    (void)signum;
    coro_call_soon_isr(sig_loop, &sig_node, isr_cb, &sig_arg);
}

static void test_isr_post_from_signal_handler(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
    sig_loop = &loop;
    raise(SIGUSR2);
    raise(SIGUSR2); /* coalesced: the node is still queued */
    run_one_pass(&loop);
    assert_int_equal(sig_log.n, 1);
    assert_int_equal(sig_log.order[0], 9);
    assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- virtual time ---- */

struct vsleeper {
    coro_frame co;
    double secs;
    int id;
    tlog *log;
};

static CORO_FN(vsleeper_step)
{
    struct vsleeper *self = CORO_SELF(struct vsleeper);
    CORO_BEGIN();
    CORO_SLEEP(self->secs);
    tlog_add(self->log, self->id);
    CORO_END();
}

/* an hour of sleeps runs at once, in real time's order (equal deadlines
 * FIFO), and the loop's clock says exactly how much time passed */
static void test_virtual_time_jumps_in_order(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options o = { .virtual_time = 1 };
    static const double secs[] = { 3600, 60, 1800, 60, 0.001 };
    struct vsleeper s[5];
    coro_task t[5];
    tlog log = { 0 };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    int64_t start = coro_loop_time_ns(&loop);
    int64_t real0 = mono_ns();
    for (int i = 0; i < 5; i++) {
        s[i] = (struct vsleeper){ CORO_FRAME_INIT(vsleeper_step), secs[i], i + 1, &log };
        assert_int_equal(coro_task_init(&t[i], &loop, &s[i].co), 0);
    }
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t[0])), 0);
    TLOG_EXPECT(&log, 5, 2, 4, 3, 1);
    assert_int_equal(coro_loop_time_ns(&loop) - start, 3600 * 1000000000LL);
    assert_true(mono_ns() - real0 < 1000000000LL); /* an hour in well under a second */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* by hand: coro_loop_advance moves the clock; due timers run on the next
 * pass, the others wait */
static void test_virtual_time_advance(void **state)
{
    (void)state;
    coro_loop loop;
    coro_handle h1, h2;
    tlog log = { 0 };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_advance(&loop, 1), CORO_ESTATE); /* real clock */
    assert_int_equal(coro_loop_set_virtual_time(&loop, 1), 0);
    int64_t t0 = coro_loop_time_ns(&loop);
    tlog_arg a1 = { &log, 1 }, a2 = { &log, 2 };
    coro_handle_init(&h1);
    coro_handle_init(&h2);
    assert_int_equal(coro_call_later(&loop, &h1, 10.0, tlog_cb, &a1), 0);
    assert_int_equal(coro_call_later(&loop, &h2, 20.0, tlog_cb, &a2), 0);
    run_one_pass(&loop);
    assert_int_equal(log.n, 0);
    assert_int_equal(coro_loop_time_ns(&loop), t0); /* a pass with a stop pending never jumps */
    assert_int_equal(coro_loop_advance(&loop, 10 * 1000000000LL), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1);
    assert_int_equal(coro_loop_advance(&loop, 5 * 1000000000LL), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1);
    assert_int_equal(coro_loop_advance(&loop, 5 * 1000000000LL), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2);
    assert_int_equal(coro_loop_advance(&loop, -1), CORO_EINVAL);
    assert_int_equal(coro_loop_advance(NULL, 1), CORO_EINVAL);
    assert_int_equal(coro_loop_set_virtual_time(NULL, 1), CORO_EINVAL);
    /* back to the real clock */
    assert_int_equal(coro_loop_set_virtual_time(&loop, 0), 0);
    int64_t r = mono_ns(), l = coro_loop_time_ns(&loop);
    assert_true(l - r < 1000000000LL && r - l < 1000000000LL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_soon_fifo),
        cmocka_unit_test(test_scheduled_during_pass_runs_next_pass),
        cmocka_unit_test(test_cancelled_handle_never_runs),
        cmocka_unit_test(test_negative_delays_deadline_order),
        cmocka_unit_test(test_equal_deadlines_fifo),
        cmocka_unit_test(test_equal_deadlines_fifo_many),
        cmocka_unit_test(test_far_timers_keep_order),
        cmocka_unit_test(test_far_timer_at_close),
        cmocka_unit_test(test_timer_never_early),
        cmocka_unit_test(test_due_timer_joins_next_pass),
        cmocka_unit_test(test_busy_queue_does_not_hold_timers),
        cmocka_unit_test(test_cancelled_timers_purged),
        cmocka_unit_test(test_small_heap_not_purged),
        cmocka_unit_test(test_run_while_running),
        cmocka_unit_test(test_callback_error_goes_to_handler),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_run_until_complete),
        cmocka_unit_test(test_close_and_error_codes),
        cmocka_unit_test(test_coro_run),
        cmocka_unit_test(test_coro_run_cancels_leftovers),
        cmocka_unit_test(test_running_loop),
        cmocka_unit_test(test_current_task_only_inside_a_step),
        cmocka_unit_test(test_debug_slow_callback),
        cmocka_unit_test(test_debug_from_environment),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_err_name),
        cmocka_unit_test(test_seconds_to_ns),
        cmocka_unit_test(test_isr_post_order_and_coalescing),
        cmocka_unit_test(test_isr_post_from_thread_wakes),
        cmocka_unit_test(test_isr_post_from_signal_handler),
        cmocka_unit_test(test_virtual_time_jumps_in_order),
        cmocka_unit_test(test_virtual_time_advance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
