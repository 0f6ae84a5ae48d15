/*
 * tests/test_task.c - asyncio.Task: SEMANTICS items 13-21, plus names,
 * coro_spawn / coro_task_release, coro_frame_new ownership and the debug
 * reports ("exception was never retrieved", "destroyed but it is pending").
 *
 * Most tests use one frame, `waiter`: it awaits a future, a task or a child
 * frame, or sleeps, optionally catching the error (AWAIT_ERR), and counts
 * its cleanup runs.
 */
#include "helpers.h"

#include <stdio.h>

#define E1 (CORO_EUSER - 1)

/* ---- sleeper: a child frame that sleeps, with a cleanup ---- */

struct sleeper {
    coro_frame co;
    double secs;
    int fin;
    tlog *log;
    int id;
};

static CORO_FN(sleeper_step)
{
    struct sleeper *self = CORO_SELF(struct sleeper);
    CORO_BEGIN();
    CORO_SLEEP(self->secs);
    CORO_RETURN(coro_int(self->id));
    CORO_FINALLY
    self->fin++;
    if (self->log)
        tlog_add(self->log, self->id);
    CORO_END();
}

static void sleeper_init(struct sleeper *s, double secs, int id, tlog *log)
{
    coro_frame_init(&s->co, sleeper_step);
    s->secs = secs;
    s->fin = 0;
    s->id = id;
    s->log = log;
}

/* ---- waiter ---- */

enum { ON_FUTURE = 1, ON_TASK, ON_CHILD, ON_SLEEP };

struct waiter {
    coro_frame co;
    int on;           /* ON_* */
    int catch_;       /* AWAIT_ERR, and return 42 after an error */
    coro_future *fut; /* ON_FUTURE */
    coro_task *task;  /* ON_TASK */
    double secs;      /* ON_SLEEP, and the child's sleep for ON_CHILD */
    struct sleeper child;
    int err, fin, resumed;
    tlog *log;
    int id;
};

static CORO_FN(waiter_step)
{
    struct waiter *self = CORO_SELF(struct waiter);
    CORO_BEGIN();
    if (self->on == ON_CHILD)
        sleeper_init(&self->child, self->secs, self->id + 1, self->log);
    if (self->on == ON_FUTURE && self->catch_)
        CORO_AWAIT_ERR(self->fut, self->err);
    else if (self->on == ON_FUTURE)
        CORO_AWAIT(self->fut);
    else if (self->on == ON_TASK && self->catch_)
        CORO_AWAIT_ERR(self->task, self->err);
    else if (self->on == ON_TASK)
        CORO_AWAIT(self->task);
    else if (self->on == ON_CHILD && self->catch_)
        CORO_AWAIT_ERR(&self->child.co, self->err);
    else if (self->on == ON_CHILD)
        CORO_AWAIT(&self->child.co);
    else
        CORO_SLEEP(self->secs);
    self->resumed++;
    if (self->err)
        CORO_RETURN(coro_int(42));
    CORO_RETURN(CORO_RESULT);
    CORO_FINALLY
    self->fin++;
    if (self->log)
        tlog_add(self->log, self->id);
    CORO_END();
}

static void waiter_init(struct waiter *w, int on)
{
    memset(w, 0, sizeof *w);
    coro_frame_init(&w->co, waiter_step);
    w->on = on;
}

/* ---- 13. a task awaiting itself ---- */

struct selfish {
    coro_frame co;
    coro_loop *loop;
    int catch_, err;
};

static CORO_FN(selfish_step)
{
    struct selfish *self = CORO_SELF(struct selfish);
    CORO_BEGIN();
    if (self->catch_)
        CORO_AWAIT_ERR(coro_current_task(self->loop), self->err);
    if (!self->catch_)
        CORO_AWAIT(coro_current_task(self->loop));
    CORO_RETURN(coro_int(1));
    CORO_END();
}

static void test_task_awaits_itself(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct selfish s = { .loop = &loop, .catch_ = 1 };
    coro_task t;
    coro_value v;
    coro_frame_init(&s.co, selfish_step);
    assert_int_equal(coro_task_init(&t, &loop, &s.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(s.err, CORO_EINVAL);
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.u.i, 1);

    s = (struct selfish){ .loop = &loop, .catch_ = 0 };
    coro_frame_init(&s.co, selfish_step);
    assert_int_equal(coro_task_init(&t, &loop, &s.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_EINVAL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 14. a cancelled sleeping task ---- */

static void test_cancel_sleeping_task(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct waiter w;
    coro_task t;
    waiter_init(&w, ON_SLEEP);
    w.secs = 10;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(loop.heap_len, 1); /* its timer */
    assert_int_equal(loop.heap_dead, 0);
    assert_int_equal(coro_task_result(&t, NULL), CORO_ESTATE);
    int64_t t0 = mono_ns();
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(loop.heap_len - loop.heap_dead, 0); /* the timer was cancelled */
    assert_int_equal(coro_task_cancelling(&t), 1);
    assert_int_equal(coro_task_done(&t), 0); /* the cancel is delivered by the loop */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_true(mono_ns() - t0 < 5000 * MS);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(coro_task_cancelled(&t), 1);
    assert_int_equal(coro_task_result(&t, NULL), CORO_ECANCELLED);
    assert_int_equal(w.fin, 1);
    assert_int_equal(w.resumed, 0);
    assert_int_equal(coro_task_cancel(&t), 0); /* done: false */
    run_for(&loop, 0.002);
    assert_int_equal(loop.heap_len - loop.heap_dead, 0); /* no live timer */
    assert_int_equal(coro_task_cancel(NULL), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 15. a task and the future it waits on ---- */

static void test_cancel_task_cancels_waited_future(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future f;
    struct waiter w;
    coro_task t;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    waiter_init(&w, ON_FUTURE);
    w.fut = &f;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(coro_future_cancelled(&f), 1); /* at once, as asyncio */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(coro_task_cancelled(&t), 1);
    assert_int_equal(w.fin, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_cancel_inner_future_cancels_task(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future f;
    struct waiter w;
    coro_task t;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    waiter_init(&w, ON_FUTURE);
    w.fut = &f;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_future_cancel(&f), 1);
    assert_int_equal(coro_task_done(&t), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(coro_task_cancelled(&t), 1);
    assert_int_equal(w.fin, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A task is a future: cancelling a task that waits on another task cancels
 * that task (asyncio: Task.cancel -> self._fut_waiter.cancel(), and for a
 * Task that is Task.cancel again).
 *
 * Regression (a bug until 8d4b9d7): coro_future_cancel() did not know
 * about tasks and marked the inner task's future CANCELLED on the spot
 * while its coroutine still slept: its cleanup never ran, and its timer
 * later stepped a task that was already done. */
static void test_cancel_task_cancels_awaited_task(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct waiter inner, outer;
    coro_task ti, to;
    waiter_init(&inner, ON_SLEEP);
    inner.secs = 10;
    inner.id = 2;
    inner.log = &log;
    waiter_init(&outer, ON_TASK);
    outer.task = &ti;
    outer.id = 1;
    outer.log = &log;
    assert_int_equal(coro_task_init(&ti, &loop, &inner.co), 0);
    assert_int_equal(coro_task_init(&to, &loop, &outer.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancel(&to), 1);
    assert_int_equal(coro_task_done(&ti), 0); /* the inner task ends by itself */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&to)), CORO_ECANCELLED);
    assert_int_equal(coro_task_cancelled(&ti), 1);
    assert_int_equal(inner.fin, 1); /* its cleanup ran */
    TLOG_EXPECT(&log, 2, 1);
    assert_int_equal(loop.heap_len - loop.heap_dead, 0); /* no live timer left */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* The same through the Future API: coro_future_cancel(coro_task_future(t))
 * is Task.cancel in asyncio (the method is overridden). See above. */
static void test_future_cancel_on_a_task(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct waiter w;
    coro_task t;
    waiter_init(&w, ON_SLEEP);
    w.secs = 10;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_future_cancel(coro_task_future(&t)), 1);
    assert_int_equal(coro_task_done(&t), 0); /* not done before its coroutine */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(w.fin, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A task's outcome is its coroutine's: asyncio's Task.set_result and
 * Task.set_exception raise RuntimeError ("Task does not support
 * set_result operation").
 *
 * Regression (a bug until 29133a8): set_result / set_error accepted a
 * task's future and completed the task while its coroutine still slept; the
 * timer then stepped a done task and completed it a second time. */
static void test_set_result_on_task_refused(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct waiter w;
    coro_task t;
    coro_value v;
    waiter_init(&w, ON_SLEEP);
    w.secs = 0.002;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_future_set_result(coro_task_future(&t), coro_int(99)), CORO_EINVAL);
    assert_int_equal(coro_future_set_error(coro_task_future(&t), E1), CORO_EINVAL);
    assert_int_equal(coro_task_done(&t), 0);
    run_for(&loop, 0.02);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(w.resumed, 1);
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.tag, CORO_NONE); /* its own outcome, not 99 */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 16. cancellation travels down the await chain ---- */

struct chain {
    coro_frame co;
    int depth, catch_, err;
    struct chain *child;
    coro_future *fut;
    tlog *log;
};

static CORO_FN(chain_step)
{
    struct chain *self = CORO_SELF(struct chain);
    CORO_BEGIN();
    if (!self->child)
        CORO_AWAIT(self->fut);
    if (!self->child)
        CORO_RETURN(CORO_RESULT);
    coro_frame_init(&self->child->co, chain_step);
    self->child->depth = self->depth + 1;
    self->child->fut = self->fut;
    self->child->log = self->log;
    if (self->catch_)
        CORO_AWAIT_ERR(&self->child->co, self->err);
    if (!self->catch_)
        CORO_AWAIT(&self->child->co);
    tlog_add(self->log, 10 + self->depth);
    CORO_RETURN(coro_int(100));
    CORO_FINALLY
    tlog_add(self->log, self->depth);
    CORO_END();
}

static void test_cancel_travels_down_the_chain(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int catch_ = 0; catch_ < 2; catch_++) {
        tlog log = { 0 };
        coro_future f;
        struct chain c[3];
        coro_task t;
        coro_value v;
        memset(c, 0, sizeof c);
        assert_int_equal(coro_future_init(&f, &loop), 0);
        coro_frame_init(&c[0].co, chain_step);
        c[0].fut = &f;
        c[0].log = &log;
        c[0].catch_ = catch_; /* the outermost may catch (test_yield_future_passes_cancel) */
        c[0].child = &c[1];
        c[1].child = &c[2];
        assert_int_equal(coro_task_init(&t, &loop, &c[0].co), 0);
        run_one_pass(&loop);
        assert_int_equal(coro_task_cancel(&t), 1);
        assert_int_equal(coro_future_cancelled(&f), 1); /* the innermost's future */
        int rc = coro_loop_run_until_complete(&loop, coro_task_future(&t));
        if (!catch_) {
            assert_int_equal(rc, CORO_ECANCELLED);
            assert_int_equal(coro_task_cancelled(&t), 1);
            TLOG_EXPECT(&log, 2, 1, 0);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(c[0].err, CORO_ECANCELLED);
            assert_int_equal(coro_task_result(&t, &v), 0);
            assert_int_equal(v.u.i, 100);
            TLOG_EXPECT(&log, 2, 1, 10, 0);
        }
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 17. a task catching the cancel finishes with its value ---- */

static void test_task_catching_cancel(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int on = ON_FUTURE; on <= ON_CHILD; on += ON_CHILD - ON_FUTURE) {
        coro_future f;
        struct waiter w;
        coro_task t;
        coro_value v;
        assert_int_equal(coro_future_init(&f, &loop), 0);
        waiter_init(&w, on);
        w.catch_ = 1;
        w.fut = &f;
        w.secs = 10; /* ON_CHILD: the child sleeps */
        assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
        run_one_pass(&loop);
        assert_int_equal(coro_task_cancel(&t), 1);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
        assert_int_equal(w.err, CORO_ECANCELLED);
        assert_int_equal(coro_task_cancelled(&t), 0);
        assert_int_equal(coro_task_result(&t, &v), 0);
        assert_int_equal(v.tag, CORO_INT);
        assert_int_equal(v.u.i, 42);
        assert_int_equal(coro_task_cancelling(&t), 1); /* asyncio keeps the count */
        if (on == ON_CHILD)
            assert_int_equal(w.child.fin, 1);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 18. a task that cancels itself ---- */

enum { THEN_RETURN = 1, THEN_AWAIT, THEN_SLEEP };

struct selfcancel {
    coro_frame co;
    coro_loop *loop;
    coro_future *fut;
    int then, rc, after;
};

static CORO_FN(selfcancel_step)
{
    struct selfcancel *self = CORO_SELF(struct selfcancel);
    CORO_BEGIN();
    self->rc = coro_task_cancel(coro_current_task(self->loop));
    if (self->then == THEN_AWAIT)
        CORO_AWAIT(self->fut);
    if (self->then == THEN_SLEEP)
        CORO_SLEEP(100);
    self->after++;
    CORO_RETURN(coro_int(5));
    CORO_END();
}

static void test_task_cancels_itself(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int then = THEN_RETURN; then <= THEN_SLEEP; then++) {
        coro_future f;
        coro_task t;
        struct selfcancel s = { .loop = &loop, .fut = &f, .then = then };
        assert_int_equal(coro_future_init(&f, &loop), 0);
        coro_frame_init(&s.co, selfcancel_step);
        assert_int_equal(coro_task_init(&t, &loop, &s.co), 0);
        int64_t t0 = mono_ns();
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)),
                         CORO_ECANCELLED);
        assert_true(mono_ns() - t0 < 5000 * MS);
        assert_int_equal(s.rc, 1);
        assert_int_equal(coro_task_cancelled(&t), 1);
        assert_int_equal(s.after, then == THEN_RETURN ? 1 : 0);
        if (then == THEN_AWAIT)
            assert_int_equal(coro_future_cancelled(&f), 1); /* cancelled at that await */
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- cancel before the first step: the coroutine never runs ----
 *
 * asyncio: the first __step throws CancelledError into a coroutine that
 * never started, which raises at once: no line of the body runs, not even
 * its finally (its try was never entered).
 *
 * Regression (a bug until 8d4b9d7): the cancel was put in *io and the
 * root resumed at resume point 0, where CORO_BEGIN ignores *io: the body
 * ran as if nothing happened and the task finished with its result. */
struct starter {
    coro_frame co;
    int ran, fin;
};

static CORO_FN(starter_step)
{
    struct starter *self = CORO_SELF(struct starter);
    CORO_BEGIN();
    self->ran++;
    CORO_RETURN(coro_int(5));
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

static void test_cancel_before_first_step(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct starter s = { .ran = 0 };
    coro_task t;
    coro_frame_init(&s.co, starter_step);
    assert_int_equal(coro_task_init(&t, &loop, &s.co), 0);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(coro_task_cancelled(&t), 1);
    assert_int_equal(s.ran, 0); /* the body never ran */
    assert_int_equal(s.fin, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 19. cancelling() and uncancel() ---- */

struct uncanceller {
    coro_frame co;
    coro_loop *loop;
    struct sleeper child;
    int err, after_uncancel;
};

static CORO_FN(uncanceller_step)
{
    struct uncanceller *self = CORO_SELF(struct uncanceller);
    CORO_BEGIN();
    sleeper_init(&self->child, 10, 0, NULL);
    CORO_AWAIT_ERR(&self->child.co, self->err);
    if (self->err == CORO_ECANCELLED)
        self->after_uncancel = coro_task_uncancel(coro_current_task(self->loop));
    CORO_SLEEP(10);
    CORO_END();
}

static void test_cancelling_and_uncancel(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    /* asyncio's test_uncancel_basic */
    struct uncanceller u = { .loop = &loop, .after_uncancel = -1 };
    coro_task t;
    coro_frame_init(&u.co, uncanceller_step);
    assert_int_equal(coro_task_init(&t, &loop, &u.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelling(&t), 0);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(coro_task_cancelling(&t), 1);
    run_for(&loop, 0.005);
    assert_int_equal(u.err, CORO_ECANCELLED);
    assert_int_equal(u.after_uncancel, 0);
    assert_int_equal(coro_task_cancelling(&t), 0);
    assert_int_equal(coro_task_done(&t), 0); /* caught: sleeping again */
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(coro_task_cancelling(&t), 2);
    assert_int_equal(coro_task_uncancel(&t), 1);
    assert_int_equal(coro_task_cancelling(&t), 1);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(coro_task_cancelled(&t), 1);
    /* once done, uncancel does nothing */
    assert_int_equal(coro_task_uncancel(&t), 1);
    assert_int_equal(coro_task_cancelling(&t), 1);
    assert_int_equal(coro_task_cancelling(NULL), 0);
    assert_int_equal(coro_task_uncancel(NULL), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* Never below zero, and counted per request. */
static void test_uncancel_counts(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future f;
    struct waiter w;
    coro_task t;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    waiter_init(&w, ON_FUTURE);
    w.fut = &f;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_uncancel(&t), 0);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(coro_task_cancel(&t), 1);
        assert_int_equal(coro_task_cancelling(&t), i);
    }
    assert_int_equal(coro_task_uncancel(&t), 2);
    assert_int_equal(coro_task_uncancel(&t), 1);
    assert_int_equal(coro_task_uncancel(&t), 0);
    assert_int_equal(coro_task_uncancel(&t), 0);
    /* the waited future was cancelled by the first request: that stands */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* cancelling() is a count, not a flag with a ceiling.
 *
 * Regression (a bug until 3bf41dd): the count lived in 4 bits and
 * saturated at 15, so after 20 cancel() and 15 uncancel() the task reported
 * 0 outstanding requests where asyncio reports 5 (asyncio.timeout and
 * TaskGroup compare uncancel() with the count they saw). */
static void test_cancelling_counts_past_15(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct waiter w;
    coro_task t;
    waiter_init(&w, ON_SLEEP);
    w.secs = 10;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    for (int i = 1; i <= 20; i++)
        assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(coro_task_cancelling(&t), 20);
    for (int i = 19; i >= 5; i--)
        assert_int_equal(coro_task_uncancel(&t), i);
    assert_int_equal(coro_task_cancelling(&t), 5);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_ECANCELLED);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* asyncio.sleep is a future the cancel cancels: an uncancel() after the
 * cancel() cannot take that back, so the task still ends cancelled.
 *
 * Regression (a bug until 8d4b9d7): uncancel() cleared the pending cancel
 * of a sleeping task when the count reached 0, and the sleep returned early
 * and normally, as if it had slept its time. */
static void test_uncancel_after_cancel_of_sleep(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct waiter w;
    coro_task t;
    waiter_init(&w, ON_SLEEP);
    w.secs = 10;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(coro_task_uncancel(&t), 0);
    run_for(&loop, 0.005);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(w.resumed, 0); /* the sleep did not return normally */
    assert_int_equal(coro_task_cancelled(&t), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 20. sleep(0) yields exactly one loop step ---- */

struct zero {
    coro_frame co;
    coro_loop *loop;
    int flag, seen;
};

static int set_flag(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

static CORO_FN(zero_step)
{
    struct zero *self = CORO_SELF(struct zero);
    CORO_BEGIN();
    assert_int_equal(coro_call_soon(self->loop, NULL, set_flag, &self->flag), 0);
    CORO_SLEEP(0);
    self->seen = self->flag;
    CORO_END();
}

static void test_sleep_zero_one_step(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int i = 0; i < 3; i++) {
        struct zero z = { .loop = &loop, .seen = -1 };
        coro_task t;
        coro_frame_init(&z.co, zero_step);
        assert_int_equal(coro_task_init(&t, &loop, &z.co), 0);
        run_one_pass(&loop); /* the first step: call_soon, then sleep(0) */
        assert_int_equal(coro_task_done(&t), 0);
        assert_int_equal(z.flag, 0);
        assert_int_equal(z.seen, -1);
        run_one_pass(&loop); /* the callback, then the task, in this one pass */
        assert_int_equal(z.flag, 1);
        assert_int_equal(coro_task_done(&t), 1);
        assert_int_equal(z.seen, 1);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 21. current_task ---- */

struct who {
    coro_frame co;
    coro_loop *loop;
    coro_task *me;
    int id, i, wrong;
    tlog *log;
};

static CORO_FN(who_step)
{
    struct who *self = CORO_SELF(struct who);
    CORO_BEGIN();
    for (self->i = 0; self->i < 3; self->i++) {
        if (coro_current_task(self->loop) != self->me)
            self->wrong++;
        tlog_add(self->log, self->id * 10 + self->i);
        CORO_SLEEP(0);
        if (coro_current_task(self->loop) != self->me)
            self->wrong++;
    }
    CORO_END();
}

struct outside {
    coro_loop *loop;
    int seen_null;
};

static int outside_cb(void *arg)
{
    struct outside *o = arg;
    o->seen_null += coro_current_task(o->loop) == NULL;
    return 0;
}

static void test_current_task_interleaved(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    coro_task ta, tb;
    struct who a = { .loop = &loop, .me = &ta, .id = 1, .log = &log };
    struct who b = { .loop = &loop, .me = &tb, .id = 2, .log = &log };
    struct outside o = { &loop, 0 };
    coro_frame_init(&a.co, who_step);
    coro_frame_init(&b.co, who_step);
    assert_null(coro_current_task(&loop));
    assert_int_equal(coro_task_init(&ta, &loop, &a.co), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, outside_cb, &o), 0);
    assert_int_equal(coro_task_init(&tb, &loop, &b.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tb)), 0);
    TLOG_EXPECT(&log, 10, 20, 11, 21, 12, 22);
    assert_int_equal(a.wrong, 0);
    assert_int_equal(b.wrong, 0);
    assert_int_equal(o.seen_null, 1);
    assert_null(coro_current_task(&loop));
    assert_null(coro_current_task(NULL));
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- awaiting tasks ---- */

static void test_await_task_result_and_error(void **state)
{
    (void)state;
    coro_loop loop, other;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_init(&other, NULL), 0);
    struct waiter inner, outer;
    coro_task ti, to;
    coro_value v;
    coro_future ef, of;
    /* a result */
    waiter_init(&inner, ON_SLEEP);
    inner.secs = 0.001;
    waiter_init(&outer, ON_TASK);
    outer.task = &ti;
    assert_int_equal(coro_task_init(&to, &loop, &outer.co), 0);
    assert_int_equal(coro_task_init(&ti, &loop, &inner.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&to)), 0);
    assert_int_equal(coro_task_result(&to, &v), 0);
    assert_int_equal(v.tag, CORO_NONE);
    assert_int_equal(coro_task_done(&ti), 1);
    /* an error */
    assert_int_equal(coro_future_init(&ef, &loop), 0);
    waiter_init(&inner, ON_FUTURE);
    inner.fut = &ef;
    waiter_init(&outer, ON_TASK);
    outer.task = &ti;
    assert_int_equal(coro_task_init(&ti, &loop, &inner.co), 0);
    assert_int_equal(coro_task_init(&to, &loop, &outer.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_future_set_error(&ef, E1), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&to)), E1);
    assert_int_equal(outer.fin, 1);
    assert_int_equal(coro_task_result(&ti, NULL), E1);
    /* a future of another loop is refused */
    assert_int_equal(coro_future_init(&of, &other), 0);
    waiter_init(&outer, ON_FUTURE);
    outer.fut = &of;
    outer.catch_ = 1;
    assert_int_equal(coro_task_init(&to, &loop, &outer.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&to)), 0);
    assert_int_equal(outer.err, CORO_EINVAL);
    assert_int_equal(coro_loop_close(&other), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- bad arguments ---- */

static CORO_FN(nothing_step)
{
    CORO_BEGIN();
    CORO_END();
}

static void test_task_bad_arguments(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_task t, t2;
    coro_frame fr = CORO_FRAME_INIT(nothing_step), nostep = CORO_FRAME_INIT(NULL);
    assert_int_equal(coro_task_init(NULL, &loop, &fr), CORO_EINVAL);
    assert_int_equal(coro_task_init(&t, NULL, &fr), CORO_EINVAL);
    assert_int_equal(coro_task_init(&t, &loop, NULL), CORO_EINVAL);
    assert_int_equal(coro_task_init(&t, &loop, &nostep), CORO_EINVAL);
    assert_int_equal(coro_task_init(&t, &loop, &fr), 0);
    assert_int_equal(coro_task_init(&t2, &loop, &fr), CORO_EINVAL); /* running */
    assert_null(coro_spawn(&loop, &fr));                            /* running */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(coro_task_init(&t2, &loop, &fr), CORO_EINVAL); /* done, not fresh */
    assert_null(coro_spawn(NULL, &fr));
    assert_null(coro_spawn(&loop, NULL));
    assert_int_equal(coro_task_done(NULL), 0);
    assert_int_equal(coro_task_cancelled(NULL), 0);
    assert_int_equal(coro_task_result(NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_task_resume_line(NULL), 0);
    assert_null(coro_frame_new(NULL, 64, nothing_step));
    assert_null(coro_frame_new(&loop, sizeof(coro_frame) - 1, nothing_step));
    coro_task_release(NULL);
    coro_task_release(&t); /* caller-owned: never freed */
    assert_int_equal(coro_task_done(&t), 1);
    coro_frame_free(&loop, NULL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- a NULL loop is the running loop (asyncio.create_task, Lock(), ...) ---- */

struct null_loop_main {
    coro_frame co;
    struct waiter child;
    coro_task t;
    coro_task *spawned;
    coro_future fut;
    coro_lock lock;
    coro_event ev;
    coro_semaphore sem;
    coro_queue q;
    int checked;
};

static CORO_FN(null_loop_main_step)
{
    struct null_loop_main *self = CORO_SELF(struct null_loop_main);
    coro_loop *running = coro_get_running_loop();
    CORO_BEGIN();
    assert_non_null(running);
    waiter_init(&self->child, ON_SLEEP);
    assert_int_equal(coro_task_init(&self->t, NULL, &self->child.co), 0);
    assert_ptr_equal(self->t.fut.loop, running);
    struct waiter *w = coro_frame_new(NULL, sizeof *w, waiter_step);
    assert_non_null(w);
    w->on = ON_SLEEP;
    self->spawned = coro_spawn(NULL, &w->co);
    assert_non_null(self->spawned);
    assert_int_equal(coro_future_init(&self->fut, NULL), 0);
    assert_ptr_equal(self->fut.loop, running);
    coro_future *nf = coro_future_new(NULL);
    assert_non_null(nf);
    coro_future_free(nf);
    assert_int_equal(coro_lock_init(&self->lock, NULL), 0);
    assert_int_equal(coro_event_init(&self->ev, NULL), 0);
    assert_int_equal(coro_semaphore_init(&self->sem, NULL, 1), 0);
    assert_int_equal(coro_queue_init(&self->q, NULL, 2), 0);
    assert_int_equal(coro_queue_put_nowait(&self->q, coro_int(7)), 0);
    CORO_AWAIT(&self->t);
    CORO_AWAIT(self->spawned);
    coro_task_release(self->spawned);
    self->checked = 1;
    coro_queue_fini(&self->q);
    CORO_END();
}

static void test_null_loop_is_the_running_loop(void **state)
{
    (void)state;
    struct null_loop_main m;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, null_loop_main_step);
    assert_int_equal(coro_run(&m.co, NULL, NULL), 0);
    assert_int_equal(m.checked, 1);
    /* no loop running: NULL is a missing argument again */
    coro_task t;
    coro_future f;
    coro_lock l;
    coro_queue q;
    coro_frame fr = CORO_FRAME_INIT(nothing_step);
    assert_null(coro_get_running_loop());
    assert_int_equal(coro_task_init(&t, NULL, &fr), CORO_EINVAL);
    assert_null(coro_spawn(NULL, &fr));
    assert_null(coro_frame_new(NULL, 64, nothing_step));
    assert_int_equal(coro_future_init(&f, NULL), CORO_EINVAL);
    assert_null(coro_future_new(NULL));
    assert_int_equal(coro_lock_init(&l, NULL), CORO_EINVAL);
    assert_int_equal(coro_queue_init(&q, NULL, 1), CORO_EINVAL);
}

/* ---- names ---- */

static void test_task_names(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_frame f1 = CORO_FRAME_INIT(nothing_step), f2 = CORO_FRAME_INIT(nothing_step);
    coro_task t1, t2;
    char b1[32], b2[32], b3[32];
    unsigned n1 = 0, n2 = 0;
    assert_int_equal(coro_task_init(&t1, &loop, &f1), 0);
    assert_int_equal(coro_task_init(&t2, &loop, &f2), 0);
    assert_ptr_equal(coro_task_get_name(&t1, b1, sizeof b1), b1);
    coro_task_get_name(&t2, b2, sizeof b2);
    assert_int_equal(sscanf(b1, "Task-%u", &n1), 1);
    assert_int_equal(sscanf(b2, "Task-%u", &n2), 1);
    assert_true(n1 != n2);
    coro_task_get_name(&t1, b3, sizeof b3);
    assert_string_equal(b1, b3); /* stable */

    assert_int_equal(coro_task_set_name(&t1, "worker"), 0);
    assert_string_equal(coro_task_get_name(&t1, b1, sizeof b1), "worker");
    assert_int_equal(coro_task_set_name(&t1, "worker-2"), 0);
    assert_string_equal(coro_task_get_name(&t1, b1, sizeof b1), "worker-2");
    assert_string_equal(coro_task_get_name(&t1, b3, 4), "wor"); /* truncated to fit */
    assert_string_equal(coro_task_get_name(&t2, b3, sizeof b3), b2);
    assert_int_equal(coro_task_set_name(NULL, "x"), CORO_EINVAL);
    assert_int_equal(coro_task_set_name(&t1, NULL), CORO_EINVAL);
    assert_string_equal(coro_task_get_name(NULL, b3, sizeof b3), "");
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t2)), 0);
    /* a done task keeps its name */
    assert_string_equal(coro_task_get_name(&t1, b1, sizeof b1), "worker-2");
    assert_int_equal(coro_task_set_name(&t2, "after"), 0);
    assert_string_equal(coro_task_get_name(&t2, b1, sizeof b1), "after");
    /* the same storage for a new task: a new task, a new (default) name */
    coro_frame f3 = CORO_FRAME_INIT(nothing_step);
    assert_int_equal(coro_task_init(&t2, &loop, &f3), 0);
    assert_int_equal(sscanf(coro_task_get_name(&t2, b1, sizeof b1), "Task-%u", &n2), 1);
    assert_true(n2 != n1);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t2)), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- coro_spawn, coro_task_release, coro_frame_new ---- */

struct spawned {
    coro_frame co;
    int id;
    int err;
};

static int spawned_sleep_line;

static CORO_FN(spawned_step)
{
    struct spawned *self = CORO_SELF(struct spawned);
    CORO_BEGIN();
    spawned_sleep_line = __LINE__; CORO_SLEEP(0);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(self->id));
    CORO_END();
}

static struct spawned *new_spawned(coro_loop *loop, size_t size, int id, int err)
{
    struct spawned *s = coro_frame_new(loop, size, spawned_step);
    assert_non_null(s);
    assert_int_equal(s->co.resume, 0);
    assert_int_equal(s->id, 0); /* zeroed */
    s->id = id;
    s->err = err;
    return s;
}

struct read_result {
    int64_t value;
    int rc, runs;
};

static void read_result_done(coro_future *f, void *arg)
{
    struct read_result *r = arg;
    coro_value v = coro_none();
    r->runs++;
    r->rc = coro_future_result(f, &v);
    r->value = v.u.i;
}

static void test_spawn_and_release(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    /* kept: readable after it is done, until released */
    coro_task *kept = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 7, 0)->co);
    assert_non_null(kept);
    /* released at once: freed after its done callbacks ran */
    struct read_result rr = { 0, -1, 0 };
    coro_task *gone = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 8, 0)->co);
    assert_non_null(gone);
    assert_int_equal(coro_future_add_done_callback(coro_task_future(gone), read_result_done, &rr),
                     0);
    coro_task_release(gone);
    coro_task_release(gone); /* twice: a no-op */
    assert_int_equal(loop.tasks_alive, 2);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(kept)), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(rr.runs, 1);
    assert_int_equal(rr.rc, 0);
    assert_int_equal(rr.value, 8);
    assert_int_equal(loop.tasks_alive, 1); /* `gone` was freed */
    coro_value v;
    assert_int_equal(coro_task_result(kept, &v), 0);
    assert_int_equal(v.u.i, 7);
    coro_task_release(kept); /* done already: freed on a later pass */
    run_one_pass(&loop);
    assert_int_equal(loop.tasks_alive, 0);
    /* one never released: close frees it */
    assert_non_null(coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 9, 0)->co));
    assert_int_equal(loop.tasks_alive, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* When a release frees a done task: at once when nothing queued will read
 * it; after the callback when one was added once it was done; and a task
 * released before its last step is freed by that step. */
static void test_release_frees_at_once_when_nothing_waits(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_task *a = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 1, 0)->co);
    coro_task *b = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 2, 0)->co);
    coro_task *c = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 3, 0)->co);
    coro_task_release(c); /* fire and forget: its last step frees it */
    run_one_pass(&loop); /* each sleeps once, */
    assert_int_equal(loop.tasks_alive, 3);
    run_one_pass(&loop); /* then returns */
    assert_true(coro_task_done(a) && coro_task_done(b));
    assert_int_equal(loop.tasks_alive, 2); /* c is gone already */
    /* a: no done callback ever: the release frees it now */
    coro_task_release(a);
    assert_int_equal(loop.tasks_alive, 1);
    /* b: a callback added after it finished is queued and reads it later */
    struct read_result rr = { 0, -1, 0 };
    assert_int_equal(coro_future_add_done_callback(coro_task_future(b), read_result_done, &rr), 0);
    coro_task_release(b);
    assert_int_equal(loop.tasks_alive, 1); /* kept for the callback */
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(rr.runs, 1);
    assert_int_equal(rr.rc, 0);
    assert_int_equal(rr.value, 2);
    assert_int_equal(loop.tasks_alive, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* Releasing a task from its own done callback, while run_until_complete
 * waits for it: the result is still there for run_until_complete, and the
 * task is freed afterwards. */
static void release_done(coro_future *f, void *arg)
{
    (void)arg;
    coro_task_release((coro_task *)(void *)f); /* a task is its future */
}

static void test_release_from_done_callback(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int err = 0; err >= E1; err += E1) {
        coro_task *t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 6, err)->co);
        assert_non_null(t);
        assert_ptr_equal(coro_task_future(t), (coro_future *)(void *)t);
        assert_int_equal(coro_future_add_done_callback(coro_task_future(t), release_done, NULL), 0);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), err);
        run_one_pass(&loop);
        run_one_pass(&loop);
        assert_int_equal(loop.tasks_alive, 0);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_frame_new_ownership(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    /* the task owns its root from coro_frame_new and frees it when done: a
     * thousand spawn/release rounds do not grow the loop's memory */
    size_t live_after_first = 0;
    for (int round = 0; round < 1000; round++) {
        coro_task *t = coro_spawn(&loop, &new_spawned(&loop, 200, round, 0)->co);
        assert_non_null(t);
        coro_task_release(t);
        run_one_pass(&loop);
        run_one_pass(&loop);
        run_one_pass(&loop);
        assert_int_equal(loop.tasks_alive, 0);
        if (round == 0)
            live_after_first = a.live;
    }
    assert_int_equal(a.live, live_after_first);
    /* a frame never given to a task is freed with coro_frame_free */
    for (int round = 0; round < 1000; round++)
        coro_frame_free(&loop, &new_spawned(&loop, 200, 0, 0)->co);
    assert_int_equal(a.live, live_after_first);
    /* large frames too (they bypass the small-object pool) */
    for (int round = 0; round < 100; round++) {
        coro_task *t = coro_spawn(&loop, &new_spawned(&loop, 5000, round, 0)->co);
        assert_non_null(t);
        coro_task_release(t);
        run_one_pass(&loop);
        run_one_pass(&loop);
        run_one_pass(&loop);
    }
    assert_int_equal(a.live, live_after_first);
    /* spawn refuses a running root and leaves it alone (the task owns it) */
    struct spawned *s = new_spawned(&loop, 200, 1, 0);
    coro_task *t = coro_spawn(&loop, &s->co);
    assert_non_null(t);
    assert_null(coro_spawn(&loop, &s->co));
    coro_frame_free(&loop, &s->co); /* running: a no-op */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
}

/* ---- coro_spawn_new: a task and its root frame in one allocation ---- */

/* a root that awaits a child frame, so the task's innermost frame is not
 * its root while it waits */
struct nesting {
    coro_frame co;
    struct spawned child;
    int id;
};

static CORO_FN(nesting_step)
{
    struct nesting *self = CORO_SELF(struct nesting);
    CORO_BEGIN();
    coro_frame_init(&self->child.co, spawned_step);
    self->child.id = self->id;
    CORO_AWAIT(&self->child.co);
    CORO_RETURN(coro_int(CORO_RESULT.u.i + 1));
    CORO_END();
}

static void test_spawn_new(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    /* the frame comes zeroed, is filled before the first step, and the
     * task's result is its coroutine's */
    coro_task *t = coro_spawn_new(&loop, sizeof(struct spawned), spawned_step);
    assert_non_null(t);
    struct spawned *s = coro_task_frame(t);
    assert_non_null(s);
    assert_int_equal(s->id, 0);
    assert_int_equal(s->co.resume, 0);
    s->id = 41;
    /* the root belongs to the task: it cannot start a second one, and
     * coro_frame_free leaves it alone */
    assert_null(coro_spawn(&loop, &s->co));
    coro_frame_free(&loop, &s->co);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), 0);
    coro_value v;
    assert_int_equal(coro_task_result(t, &v), 0);
    assert_int_equal(v.u.i, 41);
    assert_null(coro_task_frame(t)); /* done: the frame is no longer yours */
    coro_task_release(t);
    run_one_pass(&loop);
    assert_int_equal(loop.tasks_alive, 0);
    /* the root while the task waits deeper in its chain */
    t = coro_spawn_new(&loop, sizeof(struct nesting), nesting_step);
    struct nesting *n = coro_task_frame(t);
    assert_non_null(n);
    n->id = 5;
    run_one_pass(&loop); /* the child sleeps(0) */
    assert_ptr_equal(coro_task_frame(t), n);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), 0);
    assert_int_equal(coro_task_result(t, &v), 0);
    assert_int_equal(v.u.i, 6);
    coro_task_release(t);
    /* a failure, released: reported and freed like any task */
    t = coro_spawn_new(&loop, sizeof(struct spawned), spawned_step);
    ((struct spawned *)coro_task_frame(t))->err = E1;
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), E1);
    coro_task_release(t);
    run_one_pass(&loop);
    assert_int_equal(loop.tasks_alive, 0);
    /* a thousand rounds, small and large frames, never grow the memory;
     * a frame whose size is a multiple of 16 is 16-aligned on 64-bit
     * targets, as one from coro_frame_new is */
    size_t live = a.live;
    static const size_t sizes[] = { sizeof(struct spawned), 48, 56, 64, 200, 5000, 5008 };
    for (int round = 0; round < 1400; round++) {
        size_t size = sizes[round % 7];
        t = coro_spawn_new(&loop, size, spawned_step);
        assert_non_null(t);
        s = coro_task_frame(t);
        assert_int_equal((uintptr_t)s % 8, 0);
        if (sizeof(void *) == 8 && size % 16 == 0)
            assert_int_equal((uintptr_t)s % 16, 0);
        s->id = round;
        coro_task_release(t);
        run_one_pass(&loop);
        run_one_pass(&loop);
        assert_int_equal(loop.tasks_alive, 0);
        if (round == 6)
            live = a.live;
    }
    assert_int_equal(a.live, live);
    /* tasks of the other kinds have no frame of their own */
    assert_null(coro_task_frame(NULL));
    t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 1, 0)->co);
    assert_null(coro_task_frame(t));
    coro_task_release(t);
    struct spawned own = { CORO_FRAME_INIT(spawned_step), 2, 0 };
    coro_task ct;
    assert_int_equal(coro_task_init(&ct, &loop, &own.co), 0);
    assert_null(coro_task_frame(&ct));
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&ct)), 0);
    /* bad input: NULL, never a crash */
    assert_null(coro_spawn_new(&loop, sizeof(coro_frame), NULL));
    assert_null(coro_spawn_new(&loop, sizeof(coro_frame) - 1, spawned_step));
    assert_null(coro_spawn_new(&loop, (size_t)1 << 20, spawned_step));
    assert_null(coro_spawn_new(NULL, sizeof(coro_frame), spawned_step)); /* no loop running */
    /* out of memory: NULL, and nothing left allocated */
    a.fail_at = a.calls + 1;
    a.persistent = 1;
    int refused = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        t = coro_spawn_new(&loop, 5000, spawned_step); /* each one through the hook */
        if (t)
            coro_task_release(t);
        else
            refused = 1;
    }
    assert_true(refused);
    a.fail_at = 0;
    a.persistent = 0;
    /* one never released: close frees it with the rest */
    assert_non_null(coro_spawn_new(&loop, sizeof(struct spawned), spawned_step));
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_null(coro_spawn_new(&loop, sizeof(coro_frame), spawned_step)); /* closed */
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
}

/* ---- debug reports ---- */

/* a coroutine that spawns a failing child after a sleep, and forgets it */
static int spawner_line;
struct spawner {
    coro_frame co;
    int name_it;
};

static CORO_FN(spawner_step)
{
    struct spawner *self = CORO_SELF(struct spawner);
    CORO_BEGIN();
    spawner_line = __LINE__ + 1;
    CORO_SLEEP(0);
    coro_task *t = coro_spawn(NULL, &new_spawned(NULL, sizeof(struct spawned), 1, E1)->co);
    assert_non_null(t);
    if (self->name_it)
        assert_int_equal(coro_task_set_name(t, "named later"), 0);
    coro_task_release(t);
    CORO_SLEEP(0.002);
    CORO_END();
}

/* debug mode: the report says which coroutine created the failed task and
 * the line its step had resumed at (asyncio's source_traceback, one frame
 * deep), named or not; off debug mode, nothing is recorded */
static void test_never_retrieved_says_where_created(void **state)
{
    (void)state;
    for (int debug = 1; debug >= -1; debug -= 2) {
        for (int name_it = 0; name_it < 2; name_it++) {
            coro_loop loop;
            coro_loop_options o = { .debug = debug, .slow_callback_ns = 10000 * MS };
            assert_int_equal(coro_loop_init(&loop, &o), 0);
            texc x = { 0 };
            coro_loop_set_exception_handler(&loop, texc_handler, &x);
            struct spawner sp = { CORO_FRAME_INIT(spawner_step), name_it };
            coro_task t;
            assert_int_equal(coro_task_init(&t, &loop, &sp.co), 0);
            assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
            assert_int_equal(x.never_retrieved, 1);
            assert_string_equal(x.last_task_name, name_it ? "named later" : "Task-2");
            if (debug > 0) {
                assert_string_equal(x.last_created_function, "spawner_step");
                assert_int_equal(x.last_created_line, spawner_line);
            } else {
                assert_string_equal(x.last_created_function, "");
                assert_int_equal(x.last_created_line, 0);
            }
            assert_int_equal(coro_loop_close(&loop), 0);
        }
    }
}

static void test_error_never_retrieved(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options o = { .debug = 1, .slow_callback_ns = 10000 * MS };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    texc x = { 0 };
    coro_loop_set_exception_handler(&loop, texc_handler, &x);
    /* released, failed, never looked at: reported when freed */
    coro_task *t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 1, E1)->co);
    assert_non_null(t);
    assert_int_equal(coro_task_set_name(t, "doomed"), 0);
    coro_task_release(t);
    run_for(&loop, 0.002);
    assert_int_equal(loop.tasks_alive, 0);
    assert_int_equal(x.never_retrieved, 1);
    assert_int_equal(x.count, 1);
    assert_int_equal(x.last_error, E1);
    assert_string_equal(x.last_task_name, "doomed");

    /* retrieved by a done callback: nothing to report */
    struct read_result rr = { 0, 0, 0 };
    t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 2, E1)->co);
    assert_int_equal(coro_future_add_done_callback(coro_task_future(t), read_result_done, &rr), 0);
    coro_task_release(t);
    run_for(&loop, 0.002);
    assert_int_equal(rr.rc, E1);
    assert_int_equal(x.never_retrieved, 1);

    /* kept and never looked at: reported at close */
    t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 3, E1)->co);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), E1);
    t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 4, E1)->co);
    run_for(&loop, 0.002);
    assert_int_equal(x.never_retrieved, 1); /* run_until_complete retrieved the first */
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(x.never_retrieved, 2);
    assert_int_equal(x.count, 2);
    /* named by its creation number (the 4th task of the loop), and the line
     * its failing step resumed at, whatever order names were asked in */
    assert_string_equal(x.last_task_name, "Task-4");
    assert_int_equal(x.last_line, spawned_sleep_line);

    /* not in debug mode: reported all the same, as asyncio logs it in every
     * mode; the line is known only in debug mode */
    o.debug = -1;
    texc y = { 0 };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    coro_loop_set_exception_handler(&loop, texc_handler, &y);
    t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 1, E1)->co);
    coro_task_release(t);
    run_for(&loop, 0.002);
    assert_int_equal(y.never_retrieved, 1);
    assert_int_equal(y.last_error, E1);
    assert_int_equal(y.last_line, 0);
    /* a failed task whose outcome was read: nothing */
    t = coro_spawn(&loop, &new_spawned(&loop, sizeof(struct spawned), 2, E1)->co);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), E1);
    coro_task_release(t);
    run_for(&loop, 0.002);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(y.count, 1);
}

static void test_destroyed_but_pending(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options o = { .debug = 1, .slow_callback_ns = 10000 * MS };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    texc x = { 0 };
    coro_loop_set_exception_handler(&loop, texc_handler, &x);
    struct waiter w;
    coro_task t;
    waiter_init(&w, ON_SLEEP);
    w.secs = 10;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    struct spawned *s = new_spawned(&loop, sizeof(struct spawned), 1, 0);
    coro_task *sp = coro_spawn(&loop, &s->co);
    assert_non_null(sp);
    assert_int_equal(coro_task_set_name(sp, "never-ran"), 0);
    coro_task_release(sp);
    run_one_pass(&loop); /* both started; the spawned one sleeps(0) */
    assert_int_equal(coro_task_cancel(sp), 1);
    assert_int_equal(x.count, 0);
    /* t sleeps, sp has a step queued: both pending at close */
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(x.destroyed_pending, 2);
    assert_int_equal(x.count, 2);
    assert_int_equal(w.fin, 0); /* dropped without running its cleanup */

    /* not in debug mode: silence */
    o.debug = -1;
    texc y = { 0 };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    coro_loop_set_exception_handler(&loop, texc_handler, &y);
    waiter_init(&w, ON_SLEEP);
    w.secs = 10;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(y.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_awaits_itself),
        cmocka_unit_test(test_cancel_sleeping_task),
        cmocka_unit_test(test_cancel_task_cancels_waited_future),
        cmocka_unit_test(test_cancel_inner_future_cancels_task),
        cmocka_unit_test(test_cancel_task_cancels_awaited_task),
        cmocka_unit_test(test_future_cancel_on_a_task),
        cmocka_unit_test(test_set_result_on_task_refused),
        cmocka_unit_test(test_cancel_travels_down_the_chain),
        cmocka_unit_test(test_task_catching_cancel),
        cmocka_unit_test(test_task_cancels_itself),
        cmocka_unit_test(test_cancel_before_first_step),
        cmocka_unit_test(test_cancelling_and_uncancel),
        cmocka_unit_test(test_uncancel_counts),
        cmocka_unit_test(test_uncancel_after_cancel_of_sleep),
        cmocka_unit_test(test_cancelling_counts_past_15),
        cmocka_unit_test(test_sleep_zero_one_step),
        cmocka_unit_test(test_current_task_interleaved),
        cmocka_unit_test(test_await_task_result_and_error),
        cmocka_unit_test(test_task_bad_arguments),
        cmocka_unit_test(test_null_loop_is_the_running_loop),
        cmocka_unit_test(test_task_names),
        cmocka_unit_test(test_spawn_and_release),
        cmocka_unit_test(test_spawn_new),
        cmocka_unit_test(test_release_from_done_callback),
        cmocka_unit_test(test_release_frees_at_once_when_nothing_waits),
        cmocka_unit_test(test_frame_new_ownership),
        cmocka_unit_test(test_error_never_retrieved),
        cmocka_unit_test(test_never_retrieved_says_where_created),
        cmocka_unit_test(test_destroyed_but_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
