/*
 * tests/test_coro.c - the macro core, driven by generators and by tasks.
 *
 * Generators (coro_gen_*) are Python's generator protocol: next/send/throw/
 * close, with CORO_AWAIT of a child frame as `yield from`. Tasks drive the
 * same macros with futures and sleeps. What is pinned down here:
 *   - yield / send / return / throw / close, and FINALLY on every way out;
 *   - await of child frames (yield from), 64 frames deep, errors through 3
 *     levels with every cleanup in order, AWAIT_ERR catching and going on;
 *   - cancellation running the cleanup of every frame of the chain;
 *   - a cleanup section that awaits keeps the outcome; one that raises
 *     replaces it;
 *   - awaiting a done (or running) frame is CORO_EINVAL;
 *   - every value kind comes back intact, through FINALLY and through a
 *     parent.
 * Remember the rules: frame fields, not locals, across suspension points;
 * one suspension point per line; none inside a switch.
 */
#include "helpers.h"

#define E1 (CORO_EUSER - 1)
#define E2 (CORO_EUSER - 2)
#define E3 (CORO_EUSER - 3)
#define E4 (CORO_EUSER - 4)
#define E7 (CORO_EUSER - 7)

/* ---- counter: yields 0..n-1, returns n * 10; logs 100+i after each
 * resume and -1 in its cleanup ---- */

struct counter {
    coro_frame co;
    int n, i;
    tlog *log;
};

static CORO_FN(counter_step)
{
    struct counter *self = CORO_SELF(struct counter);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        CORO_YIELD(coro_int(self->i));
        tlog_add(self->log, 100 + self->i);
    }
    CORO_RETURN(coro_int(self->n * 10));
    CORO_FINALLY
    tlog_add(self->log, -1);
    CORO_END();
}

static void counter_init(struct counter *c, int n, tlog *log)
{
    coro_frame_init(&c->co, counter_step);
    c->n = n;
    c->i = 0;
    c->log = log;
}

static void test_gen_yields_then_returns(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct counter c;
    coro_gen g;
    coro_value v;
    counter_init(&c, 3, &log);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    for (int i = 0; i < 3; i++) {
        v = coro_none();
        assert_int_equal(coro_gen_next(&g, &v), 1);
        assert_int_equal(v.tag, CORO_INT);
        assert_int_equal(v.u.i, i);
        assert_int_equal(g.done, 0);
    }
    assert_int_equal(coro_gen_next(&g, &v), 0); /* StopIteration(30) */
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 30);
    assert_int_equal(g.done, 1);
    TLOG_EXPECT(&log, 100, 101, 102, -1);
    assert_int_equal(coro_gen_next(&g, &v), CORO_ESTATE);
    assert_int_equal(coro_gen_send(&g, coro_int(1), NULL), CORO_ESTATE);
    /* a finished frame is not fresh: it cannot be bound again */
    assert_int_equal(coro_gen_init(&g, &c.co), CORO_EINVAL);
    /* n = 0: returns at once; `out` may be NULL */
    counter_init(&c, 0, &log);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), 0);
    assert_int_equal(coro_gen_init(NULL, &c.co), CORO_EINVAL);
    assert_int_equal(coro_gen_init(&g, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- echo: send() values come back as CORO_RESULT ---- */

struct echo {
    coro_frame co;
    int n, i;
    int64_t total;
    tlog *log;
};

static CORO_FN(echo_step)
{
    struct echo *self = CORO_SELF(struct echo);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        CORO_YIELD(coro_int(self->total));
        tlog_add(self->log, CORO_RESULT.tag);
        if (CORO_RESULT.tag == CORO_INT)
            self->total += CORO_RESULT.u.i;
    }
    CORO_RETURN(coro_int(self->total));
    CORO_END();
}

static void echo_init(struct echo *e, int n, tlog *log)
{
    coro_frame_init(&e->co, echo_step);
    e->n = n;
    e->i = 0;
    e->total = 0;
    e->log = log;
}

static void test_gen_send(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct echo e;
    coro_gen g;
    coro_value v;
    echo_init(&e, 3, &log);
    assert_int_equal(coro_gen_init(&g, &e.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(v.u.i, 0);
    assert_int_equal(coro_gen_send(&g, coro_int(5), &v), 1);
    assert_int_equal(v.u.i, 5);
    assert_int_equal(coro_gen_next(&g, &v), 1); /* next sends CORO_NONE */
    assert_int_equal(v.u.i, 5);
    assert_int_equal(coro_gen_send(&g, coro_int(7), &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 12);
    TLOG_EXPECT(&log, CORO_INT, CORO_NONE, CORO_INT);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_gen_throw(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct counter c;
    coro_gen g;
    coro_value v = coro_int(-99);
    counter_init(&c, 5, &log);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), 1);
    assert_int_equal(coro_gen_next(&g, NULL), 1); /* suspended at yield 1 */
    assert_int_equal(coro_gen_throw(&g, E7, &v), E7);
    TLOG_EXPECT(&log, 100, -1);   /* no 101: the yield raised; cleanup ran */
    assert_int_equal(v.u.i, -99); /* out untouched on failure */
    assert_int_equal(g.done, 1);
    assert_int_equal(coro_gen_throw(&g, E7, NULL), CORO_ESTATE);
    assert_int_equal(coro_gen_next(&g, NULL), CORO_ESTATE);

    /* into a generator that never started: it fails without running */
    log.n = 0;
    counter_init(&c, 5, &log);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    assert_int_equal(coro_gen_throw(&g, E2, NULL), E2);
    assert_int_equal(log.n, 0);
    assert_int_equal(g.done, 1);

    /* a non-negative "error" is refused */
    counter_init(&c, 5, &log);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    assert_int_equal(coro_gen_throw(&g, 0, NULL), CORO_EINVAL);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(v.u.i, 0);
    assert_int_equal(coro_gen_close(&g), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- stubborn: its cleanup yields, so it ignores close ---- */

struct stubborn {
    coro_frame co;
};

static CORO_FN(stubborn_step)
{
    CORO_BEGIN();
    CORO_YIELD(coro_int(1));
    CORO_FINALLY
    CORO_YIELD(coro_int(2));
    CORO_END();
}

static void test_gen_close(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct counter c;
    coro_gen g;
    counter_init(&c, 5, &log);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), 1);
    assert_int_equal(coro_gen_close(&g), 0);
    TLOG_EXPECT(&log, -1); /* the cleanup ran, nothing after the yield */
    assert_int_equal(g.done, 1);
    assert_int_equal(coro_gen_close(&g), 0); /* closing twice is fine */
    assert_int_equal(coro_gen_next(&g, NULL), CORO_ESTATE);

    /* never started: nothing runs */
    log.n = 0;
    counter_init(&c, 5, &log);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    assert_int_equal(coro_gen_close(&g), 0);
    assert_int_equal(log.n, 0);

    /* a cleanup that yields ignored the close (RuntimeError in Python); the
     * close is re-raised when that cleanup ends */
    struct stubborn s;
    coro_value v;
    coro_frame_init(&s.co, stubborn_step);
    assert_int_equal(coro_gen_init(&g, &s.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(v.u.i, 1);
    assert_int_equal(coro_gen_close(&g), CORO_ESTATE);
    assert_int_equal(g.done, 0);
    assert_int_equal(coro_gen_next(&g, &v), CORO_ECANCELLED);
    assert_int_equal(g.done, 1);
    assert_int_equal(coro_gen_close(NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- yield from: a parent generator awaiting a child generator ---- */

struct outer_gen {
    coro_frame co;
    struct counter child;
    int64_t got;
    tlog *log;
};

static CORO_FN(outer_gen_step)
{
    struct outer_gen *self = CORO_SELF(struct outer_gen);
    CORO_BEGIN();
    CORO_YIELD(coro_int(-5));
    counter_init(&self->child, 3, self->log);
    CORO_AWAIT(&self->child.co);
    self->got = CORO_RESULT.u.i;
    CORO_YIELD(coro_int(self->got + 1));
    CORO_RETURN(coro_int(7));
    CORO_FINALLY
    tlog_add(self->log, -2);
    CORO_END();
}

static void outer_gen_init(struct outer_gen *o, tlog *log)
{
    coro_frame_init(&o->co, outer_gen_step);
    o->got = 0;
    o->log = log;
}

static void test_gen_yield_from(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct outer_gen o;
    coro_gen g;
    coro_value v;
    outer_gen_init(&o, &log);
    assert_int_equal(coro_gen_init(&g, &o.co), 0);
    const int64_t want[] = { -5, 0, 1, 2, 31 };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(coro_gen_next(&g, &v), 1);
        assert_int_equal(v.tag, CORO_INT);
        assert_int_equal(v.u.i, want[i]);
    }
    assert_int_equal(coro_gen_next(&g, &v), 0);
    assert_int_equal(v.u.i, 7);
    TLOG_EXPECT(&log, 100, 101, 102, -1, -2);

    /* throw goes to the innermost frame; both cleanups run, inner first */
    log.n = 0;
    outer_gen_init(&o, &log);
    assert_int_equal(coro_gen_init(&g, &o.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1); /* -5 */
    assert_int_equal(coro_gen_next(&g, &v), 1); /* 0, from the child */
    assert_int_equal(v.u.i, 0);
    assert_int_equal(coro_gen_throw(&g, E7, NULL), E7);
    TLOG_EXPECT(&log, -1, -2);

    /* close too */
    log.n = 0;
    outer_gen_init(&o, &log);
    assert_int_equal(coro_gen_init(&g, &o.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(coro_gen_next(&g, &v), 1); /* 1, child resumed once */
    assert_int_equal(coro_gen_close(&g), 0);
    TLOG_EXPECT(&log, 100, -1, -2);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* send through yield from reaches the child */
struct outer_echo {
    coro_frame co;
    struct echo child;
    tlog *log;
};

static CORO_FN(outer_echo_step)
{
    struct outer_echo *self = CORO_SELF(struct outer_echo);
    CORO_BEGIN();
    echo_init(&self->child, 2, self->log);
    CORO_AWAIT(&self->child.co);
    CORO_RETURN(coro_int(CORO_RESULT.u.i * 100));
    CORO_END();
}

static void test_gen_send_through_yield_from(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct outer_echo o;
    coro_gen g;
    coro_value v;
    coro_frame_init(&o.co, outer_echo_step);
    o.log = &log;
    assert_int_equal(coro_gen_init(&g, &o.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(v.u.i, 0);
    assert_int_equal(coro_gen_send(&g, coro_int(4), &v), 1);
    assert_int_equal(v.u.i, 4);
    assert_int_equal(coro_gen_send(&g, coro_int(6), &v), 0);
    assert_int_equal(v.u.i, 1000);
    TLOG_EXPECT(&log, CORO_INT, CORO_INT);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- a generator cannot be resumed from inside itself ----
 * Python: ValueError "generator already executing" (and the same for
 * send/throw/close).
 *
 * Regression (a bug until 29133a8): gen.c resume() had no "executing"
 * state, so a next() from inside the body drove the same frame again from
 * its last resume point and the body ran again, nested (without the depth
 * guard below it recursed until the stack overflowed). */
struct reentrant {
    coro_frame co;
    coro_gen *g;
    int depth, rc_next, rc_throw, rc_close;
};

static CORO_FN(reentrant_step)
{
    struct reentrant *self = CORO_SELF(struct reentrant);
    CORO_BEGIN();
    if (++self->depth < 3) { /* a guard: the bug must not overflow the stack */
        self->rc_next = coro_gen_next(self->g, NULL);
        self->rc_throw = coro_gen_throw(self->g, E1, NULL);
        self->rc_close = coro_gen_close(self->g);
    }
    CORO_YIELD(coro_int(self->depth));
    CORO_END();
}

static void test_gen_already_executing(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct reentrant r = { .depth = 0 };
    coro_gen g;
    coro_value v;
    coro_frame_init(&r.co, reentrant_step);
    r.g = &g;
    assert_int_equal(coro_gen_init(&g, &r.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(r.depth, 1); /* the body did not run again from inside */
    assert_int_equal(r.rc_next, CORO_EINVAL);
    assert_int_equal(r.rc_throw, CORO_EINVAL);
    assert_int_equal(r.rc_close, CORO_EINVAL);
    assert_int_equal(v.u.i, 1);
    assert_int_equal(g.done, 0);
    assert_int_equal(coro_gen_next(&g, NULL), 0); /* it still works */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- only tasks can sleep or wait on a pending future ---- */

struct gen_waits {
    coro_frame co;
    coro_future *fut; /* NULL: sleep instead */
    int err;
    int64_t got;
};

static CORO_FN(gen_waits_step)
{
    struct gen_waits *self = CORO_SELF(struct gen_waits);
    CORO_BEGIN();
    if (!self->fut)
        CORO_SLEEP(0);
    if (self->fut)
        CORO_AWAIT_ERR(self->fut, self->err);
    if (self->err == 0)
        self->got = CORO_RESULT.u.i;
    CORO_RETURN(coro_int(1));
    CORO_END();
}

static void test_gen_cannot_sleep_or_wait(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct gen_waits w = { .fut = NULL };
    coro_gen g;
    coro_frame_init(&w.co, gen_waits_step);
    assert_int_equal(coro_gen_init(&g, &w.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), CORO_EINVAL);

    coro_future f;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    w = (struct gen_waits){ .fut = &f };
    coro_frame_init(&w.co, gen_waits_step);
    assert_int_equal(coro_gen_init(&g, &w.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), 0);
    assert_int_equal(w.err, CORO_EINVAL);

    /* a done future does not suspend, so even a generator may await it */
    assert_int_equal(coro_future_set_result(&f, coro_int(77)), 0);
    w = (struct gen_waits){ .fut = &f };
    coro_frame_init(&w.co, gen_waits_step);
    assert_int_equal(coro_gen_init(&g, &w.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), 0);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.got, 77);
    run_one_pass(&loop);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 64 frames deep in a task ---- */

#define DEPTH 64

struct level {
    coro_frame co;
    int depth, i;
    struct level *child;
};

static CORO_FN(level_step);

static void level_init(struct level *l, int depth, struct level *child)
{
    coro_frame_init(&l->co, level_step);
    l->depth = depth;
    l->i = 0;
    l->child = child;
}

static CORO_FN(level_step)
{
    struct level *self = CORO_SELF(struct level);
    CORO_BEGIN();
    if (!self->child) {
        for (self->i = 0; self->i < 3; self->i++)
            CORO_SLEEP(0);
        CORO_RETURN(coro_int(1000));
    }
    level_init(self->child, self->depth + 1, self->depth + 2 < DEPTH ? self->child + 1 : NULL);
    CORO_AWAIT(&self->child->co);
    CORO_RETURN(coro_int(CORO_RESULT.u.i + self->depth));
    CORO_END();
}

static void test_await_64_deep(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    static struct level levels[DEPTH];
    coro_task t;
    coro_value v;
    level_init(&levels[0], 0, &levels[1]);
    assert_int_equal(coro_task_init(&t, &loop, &levels[0].co), 0);
    run_one_pass(&loop); /* down to the innermost, which sleeps */
    assert_int_equal(coro_task_done(&t), 0);
    assert_int_equal(levels[DEPTH - 1].depth, DEPTH - 1);
    assert_int_equal(coro_task_resume_line(&t), levels[DEPTH - 1].co.resume);
    assert_true(coro_task_resume_line(&t) != 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 1000 + (DEPTH - 2) * (DEPTH - 1) / 2);
    assert_int_equal(levels[DEPTH - 1].i, 3);
    for (int i = 0; i < DEPTH; i++)
        assert_int_equal(levels[i].co.resume, CORO__RS_DONE);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- errors through three levels; every cleanup runs, innermost first ---- */

struct lvl3 {
    coro_frame co;
    int depth;
    struct lvl3 *child;
    tlog *log;
};

static CORO_FN(lvl3_step)
{
    struct lvl3 *self = CORO_SELF(struct lvl3);
    CORO_BEGIN();
    if (!self->child)
        CORO_RAISE(E1);
    self->child->depth = self->depth + 1;
    self->child->log = self->log;
    coro_frame_init(&self->child->co, lvl3_step);
    CORO_AWAIT(&self->child->co);
    tlog_add(self->log, 50 + self->depth); /* must not run */
    CORO_FINALLY
    tlog_add(self->log, self->depth);
    CORO_END();
}

static void lvl3_chain(struct lvl3 l[3], tlog *log)
{
    memset(l, 0, 3 * sizeof *l);
    coro_frame_init(&l[0].co, lvl3_step);
    l[0].log = log;
    l[0].child = &l[1];
    l[1].child = &l[2];
    l[2].child = NULL;
}

static void test_error_through_three_levels(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    struct lvl3 l[3];
    coro_task t;
    coro_value v;
    lvl3_chain(l, &log);
    assert_int_equal(coro_task_init(&t, &loop, &l[0].co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), E1);
    TLOG_EXPECT(&log, 2, 1, 0);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(coro_task_cancelled(&t), 0);
    assert_int_equal(coro_task_result(&t, &v), E1);

    /* the same chain, driven by a generator */
    log.n = 0;
    coro_gen g;
    lvl3_chain(l, &log);
    assert_int_equal(coro_gen_init(&g, &l[0].co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), E1);
    TLOG_EXPECT(&log, 2, 1, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- AWAIT_ERR hands the error over, and the body goes on ---- */

struct thrower {
    coro_frame co;
    int err;
    int64_t val;
};

static CORO_FN(thrower_step)
{
    struct thrower *self = CORO_SELF(struct thrower);
    CORO_BEGIN();
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(self->val));
    CORO_END();
}

static void thrower_init(struct thrower *t, int err, int64_t val)
{
    coro_frame_init(&t->co, thrower_step);
    t->err = err;
    t->val = val;
}

struct catcher {
    coro_frame co;
    struct thrower kid;
    int err1, err2;
    int64_t val2;
    int after;
};

static CORO_FN(catcher_step)
{
    struct catcher *self = CORO_SELF(struct catcher);
    CORO_BEGIN();
    thrower_init(&self->kid, E2, 0);
    CORO_AWAIT_ERR(&self->kid.co, self->err1);
    self->after = 1;
    thrower_init(&self->kid, 0, 5);
    CORO_AWAIT_ERR(&self->kid.co, self->err2);
    self->val2 = CORO_RESULT.u.i;
    CORO_RETURN(coro_int(self->val2 + 1));
    CORO_END();
}

static void test_await_err_catches(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    struct catcher c;
    coro_task t;
    coro_value v;
    memset(&c, 0, sizeof c);
    coro_frame_init(&c.co, catcher_step);
    assert_int_equal(coro_task_init(&t, &loop, &c.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(c.err1, E2);
    assert_int_equal(c.after, 1);
    assert_int_equal(c.err2, 0);
    assert_int_equal(c.val2, 5);
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.u.i, 6);

    /* and in a generator */
    coro_gen g;
    memset(&c, 0, sizeof c);
    coro_frame_init(&c.co, catcher_step);
    assert_int_equal(coro_gen_init(&g, &c.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 0);
    assert_int_equal(v.u.i, 6);
    assert_int_equal(c.err1, E2);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- cancel: every cleanup of the chain runs ---- */

struct sleeper {
    coro_frame co;
    int id;
    double secs;
    tlog *log;
};

static CORO_FN(sleeper_step)
{
    struct sleeper *self = CORO_SELF(struct sleeper);
    CORO_BEGIN();
    tlog_add(self->log, self->id * 10);
    CORO_SLEEP(self->secs);
    tlog_add(self->log, self->id * 10 + 1);
    CORO_RETURN(coro_int(self->id));
    CORO_FINALLY
    tlog_add(self->log, self->id * 10 + 9);
    CORO_END();
}

struct sleep_parent {
    coro_frame co;
    struct sleeper child;
    int id;
    int fin_sleeps;
    tlog *log;
};

static CORO_FN(sleep_parent_step)
{
    struct sleep_parent *self = CORO_SELF(struct sleep_parent);
    CORO_BEGIN();
    coro_frame_init(&self->child.co, sleeper_step);
    self->child.id = self->id + 1;
    self->child.log = self->log;
    CORO_AWAIT(&self->child.co);
    tlog_add(self->log, self->id * 10 + 1);
    CORO_RETURN(CORO_RESULT);
    CORO_FINALLY
    if (self->fin_sleeps)
        CORO_SLEEP(0); /* a cleanup may await after a cancel */
    tlog_add(self->log, self->id * 10 + 9);
    CORO_END();
}

static void test_cancel_runs_cleanup(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    for (int fin_sleeps = 0; fin_sleeps < 2; fin_sleeps++) {
        tlog log = { 0 };
        struct sleep_parent p;
        coro_task t;
        memset(&p, 0, sizeof p);
        coro_frame_init(&p.co, sleep_parent_step);
        p.id = 1;
        p.fin_sleeps = fin_sleeps;
        p.log = &log;
        p.child.secs = 10;
        assert_int_equal(coro_task_init(&t, &loop, &p.co), 0);
        run_one_pass(&loop);
        TLOG_EXPECT(&log, 20); /* the child sleeps */
        int64_t t0 = mono_ns();
        assert_int_equal(coro_task_cancel(&t), 1);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)),
                         CORO_ECANCELLED);
        assert_true(mono_ns() - t0 < 5000 * MS); /* did not sit out the 10 s */
        TLOG_EXPECT(&log, 20, 29, 19);
        assert_int_equal(coro_task_cancelled(&t), 1);
        assert_int_equal(coro_task_result(&t, NULL), CORO_ECANCELLED);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- a cleanup that awaits keeps the outcome; one that raises replaces it ---- */

struct slowfin {
    coro_frame co;
    coro_value ret;
    int body_err, fin_err;
    int i;
    tlog *log;
};

static CORO_FN(slowfin_step)
{
    struct slowfin *self = CORO_SELF(struct slowfin);
    CORO_BEGIN();
    if (self->body_err)
        CORO_RAISE(self->body_err);
    CORO_RETURN(self->ret);
    CORO_FINALLY
    for (self->i = 0; self->i < 2; self->i++) {
        CORO_SLEEP(0);
        tlog_add(self->log, self->i);
    }
    if (self->fin_err)
        CORO_RAISE(self->fin_err);
    CORO_END();
}

static int run_slowfin(coro_loop *loop, coro_value ret, int body_err, int fin_err, coro_value *out)
{
    tlog log = { 0 };
    struct slowfin s;
    coro_task t;
    memset(&s, 0, sizeof s);
    coro_frame_init(&s.co, slowfin_step);
    s.ret = ret;
    s.body_err = body_err;
    s.fin_err = fin_err;
    s.log = &log;
    assert_int_equal(coro_task_init(&t, loop, &s.co), 0);
    int rc = coro_loop_run_until_complete(loop, coro_task_future(&t));
    TLOG_EXPECT(&log, 0, 1); /* the cleanup ran to its end, across 2 sleeps */
    assert_int_equal(coro_task_result(&t, out), rc);
    return rc;
}

static void test_finally_awaits_keeps_outcome(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_value v;
    assert_int_equal(run_slowfin(&loop, coro_int(42), 0, 0, &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 42);
    assert_int_equal(run_slowfin(&loop, coro_double(2.5), 0, 0, &v), 0);
    assert_int_equal(v.tag, CORO_DOUBLE);
    assert_true(v.u.d == 2.5);
    assert_int_equal(run_slowfin(&loop, coro_int(42), E4, 0, &v), E4); /* the error survives */
    assert_int_equal(coro_loop_close(&loop), 0);
}

struct finraise {
    coro_frame co;
    int fin;
    tlog *log;
};

static CORO_FN(finraise_step)
{
    struct finraise *self = CORO_SELF(struct finraise);
    CORO_BEGIN();
    CORO_YIELD(coro_int(0));
    CORO_RETURN(coro_int(42));
    CORO_FINALLY
    self->fin++;
    CORO_RAISE(E3);
    CORO_END();
}

static void test_finally_error_replaces_outcome(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(run_slowfin(&loop, coro_int(42), 0, E3, NULL), E3);
    assert_int_equal(run_slowfin(&loop, coro_int(42), E4, E3, NULL), E3);

    /* in a generator too, on return and on throw */
    struct finraise f = { .log = NULL };
    coro_gen g;
    coro_frame_init(&f.co, finraise_step);
    assert_int_equal(coro_gen_init(&g, &f.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), 1);
    assert_int_equal(coro_gen_next(&g, NULL), E3);
    assert_int_equal(f.fin, 1);
    coro_frame_init(&f.co, finraise_step);
    f.fin = 0;
    assert_int_equal(coro_gen_init(&g, &f.co), 0);
    assert_int_equal(coro_gen_next(&g, NULL), 1);
    assert_int_equal(coro_gen_throw(&g, E1, NULL), E3);
    assert_int_equal(f.fin, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- awaiting a frame that is done (or running) is an invalid argument ---- */

struct reawait {
    coro_frame co;
    struct thrower kid;
    int err_again, err_self, err_null;
    int line_again, line_self;
    int64_t first;
};

static CORO_FN(reawait_step)
{
    struct reawait *self = CORO_SELF(struct reawait);
    CORO_BEGIN();
    thrower_init(&self->kid, 0, 9);
    CORO_AWAIT(&self->kid.co);
    self->first = CORO_RESULT.u.i;
    self->line_again = __LINE__; CORO_AWAIT_ERR(&self->kid.co, self->err_again); /* done */
    self->line_self = __LINE__; CORO_AWAIT_ERR(co, self->err_self); /* running: itself */
    CORO_AWAIT_ERR((coro_future *)NULL, self->err_null);
    CORO_END(); /* falls off the end: CORO_NONE */
}

/* What the exception handler was told about a faulty coroutine. */
struct fault_log {
    int count;
    int error[4], line[4];
    char message[4][160];
    const char *function[4], *file[4];
};

static void fault_handler(coro_loop *loop, const coro_exception_context *c, void *arg)
{
    struct fault_log *fl = arg;
    (void)loop;
    if (fl->count >= 4)
        return;
    int i = fl->count++;
    fl->error[i] = c->error;
    fl->line[i] = c->resume_line;
    snprintf(fl->message[i], sizeof fl->message[i], "%s", c->message);
    fl->function[i] = c->function;
    fl->file[i] = c->file;
}

/* A loop whose exception handler logs into `fl`. */
static void fault_loop_init(coro_loop *loop, struct fault_log *fl)
{
    memset(fl, 0, sizeof *fl);
    assert_int_equal(coro_loop_init(loop, NULL), 0);
    coro_loop_set_exception_handler(loop, fault_handler, fl);
}

/* Awaiting a frame that already ran, or one on a chain, fails the await
 * with CORO_ESTATE and is reported at the awaiting function and line. */
static void test_await_done_frame_estate(void **state)
{
    (void)state;
    coro_loop loop;
    struct fault_log fl;
    fault_loop_init(&loop, &fl);
    struct reawait r;
    coro_task t;
    coro_value v = coro_int(1);
    memset(&r, 0, sizeof r);
    coro_frame_init(&r.co, reawait_step);
    assert_int_equal(coro_task_init(&t, &loop, &r.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(r.first, 9);
    assert_int_equal(r.err_again, CORO_ESTATE);
    assert_int_equal(r.err_self, CORO_ESTATE);
    assert_int_equal(r.err_null, CORO_EINVAL); /* no awaitable at all: a bad argument */
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.tag, CORO_NONE);
    assert_int_equal(fl.count, 2);
    assert_int_equal(fl.error[0], CORO_ESTATE);
    assert_int_equal(fl.line[0], r.line_again);
    assert_string_equal(fl.function[0], "reawait_step");
    assert_non_null(strstr(fl.file[0], "test_coro.c"));
    assert_non_null(strstr(fl.message[0], "not re-initialised"));
    assert_int_equal(fl.line[1], r.line_self);
    assert_non_null(strstr(fl.message[1], "awaited already"));

    /* the same under a generator (no loop runs: the default handler prints) */
    print_message("(two expected reports follow: a generator outside any loop)\n");
    coro_gen g;
    memset(&r, 0, sizeof r);
    coro_frame_init(&r.co, reawait_step);
    assert_int_equal(coro_gen_init(&g, &r.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 0);
    assert_int_equal(r.first, 9);
    assert_int_equal(r.err_again, CORO_ESTATE);
    assert_int_equal(r.err_self, CORO_ESTATE);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A suspension point inside a switch of the body: in the switch form its
 * `case __LINE__:` belongs to the inner switch, so the resume cannot find
 * it. The coroutine must fail with CORO_ESTATE (its cleanup runs) and the
 * fault be reported with the function and the line, never finish quietly.
 * In the labels form the same body is legal and runs to the end. */
struct switcher {
    coro_frame co;
    int kind, after, fin, line;
};

static CORO_FN(switcher_step)
{
    struct switcher *self = CORO_SELF(struct switcher);
    CORO_BEGIN();
    switch (self->kind) {
    case 1:
        self->line = __LINE__; CORO_SLEEP(0);
        break;
    default:
        break;
    }
    self->after = 1;
    CORO_RETURN(coro_int(5));
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

static void test_suspension_inside_switch(void **state)
{
    (void)state;
    coro_loop loop;
    struct fault_log fl;
    fault_loop_init(&loop, &fl);
    struct switcher sw;
    memset(&sw, 0, sizeof sw);
    sw.kind = 1;
    coro_frame_init(&sw.co, switcher_step);
    coro_task t;
    coro_value v = coro_none();
    assert_int_equal(coro_task_init(&t, &loop, &sw.co), 0);
    int rc = coro_loop_run_until_complete(&loop, coro_task_future(&t));
    assert_int_equal(sw.fin, 1);
#ifdef CORO_LABELS
    assert_int_equal(rc, 0);
    assert_int_equal(sw.after, 1);
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.u.i, 5);
    assert_int_equal(fl.count, 0);
#else
    assert_int_equal(rc, CORO_ESTATE);
    assert_int_equal(sw.after, 0);
    assert_int_equal(fl.count, 1);
    assert_int_equal(fl.error[0], CORO_ESTATE);
    assert_int_equal(fl.line[0], sw.line);
    assert_string_equal(fl.function[0], "switcher_step");
    assert_non_null(strstr(fl.message[0], "inside a switch"));
#endif
    (void)v;
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- try/except inside one body (CORO_TRY) ---- */

enum { T_CHILD = 1, T_RAISE, T_NESTED, T_RERAISE, T_NONE, T_RETURN, T_SLEEP, T_EXCEPT_AWAIT };

struct trier {
    coro_frame co;
    struct thrower kid;
    int mode, err, err2, fin, after, skipped, in_except;
    int64_t got;
};

static CORO_FN(trier_step)
{
    struct trier *self = CORO_SELF(struct trier);
    CORO_BEGIN();
    CORO_TRY
        if (self->mode == T_CHILD || self->mode == T_NONE) {
            thrower_init(&self->kid, self->mode == T_CHILD ? CORO_EUSER - 1 : 0, 5);
            CORO_AWAIT(&self->kid.co); /* an error here lands in the except part */
            self->got = CORO_RESULT.u.i;
        } else if (self->mode == T_RETURN) {
            CORO_RETURN(coro_int(3)); /* leaves through the finally, not the except */
        } else if (self->mode == T_SLEEP) {
            CORO_SLEEP(10); /* cancelled here */
        } else if (self->mode == T_EXCEPT_AWAIT) {
            CORO_RAISE(CORO_EUSER - 4);
        } else if (self->mode == T_NESTED || self->mode == T_RERAISE) {
            CORO_TRY
                CORO_SLEEP(0);
                CORO_RAISE(CORO_EUSER - 2);
            CORO_EXCEPT(self->err2)
                CORO_SLEEP(0); /* awaits are fine in the except part */
                if (self->mode == T_RERAISE)
                    CORO_RAISE(CORO_EUSER - 3); /* to the enclosing try */
            CORO_TRY_END
        } else {
            CORO_YIELD(coro_none());
            CORO_RAISE(CORO_EUSER - 1);
        }
        self->skipped = 1; /* not reached after an error */
    CORO_EXCEPT(self->err)
        self->in_except++;
        if (self->mode == T_EXCEPT_AWAIT) {
            CORO_SLEEP(10); /* cancelled here: no enclosing try, so it leaves */
        }
    CORO_TRY_END
    self->after = 1;
    CORO_RETURN(coro_int(7));
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

static int run_trier(struct trier *t, int mode, int cancel_after_passes, coro_value *out)
{
    coro_loop loop;
    coro_task task;
    memset(t, 0, sizeof *t);
    t->mode = mode;
    coro_frame_init(&t->co, trier_step);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_task_init(&task, &loop, &t->co), 0);
    for (int i = 0; i < cancel_after_passes; i++)
        run_one_pass(&loop);
    if (cancel_after_passes)
        assert_int_equal(coro_task_cancel(&task), 1);
    int rc = coro_loop_run_until_complete(&loop, coro_task_future(&task));
    *out = coro_none();
    coro_task_result(&task, out);
    assert_int_equal(coro_loop_close(&loop), 0);
    return rc;
}

static void test_try_except(void **state)
{
    (void)state;
    struct trier t;
    coro_value v;
    /* an awaited child's error lands in the except part; the rest of the
     * try part is skipped; the body goes on after CORO_TRY_END */
    assert_int_equal(run_trier(&t, T_CHILD, 0, &v), 0);
    assert_int_equal(t.err, CORO_EUSER - 1);
    assert_int_equal(t.skipped, 0);
    assert_int_equal(t.in_except, 1);
    assert_int_equal(t.after, 1);
    assert_int_equal(v.u.i, 7);
    assert_int_equal(t.fin, 1);
    /* no error: the except part is skipped */
    assert_int_equal(run_trier(&t, T_NONE, 0, &v), 0);
    assert_int_equal(t.got, 5);
    assert_int_equal(t.in_except, 0);
    assert_int_equal(t.skipped, 1);
    assert_int_equal(t.err, 0);
    /* a return in the try part leaves through the finally, not the except */
    assert_int_equal(run_trier(&t, T_RETURN, 0, &v), 0);
    assert_int_equal(v.u.i, 3);
    assert_int_equal(t.in_except, 0);
    assert_int_equal(t.fin, 1);
    /* nested: the inner except catches, awaits, and the outer sees nothing */
    assert_int_equal(run_trier(&t, T_NESTED, 0, &v), 0);
    assert_int_equal(t.err2, CORO_EUSER - 2);
    assert_int_equal(t.in_except, 0);
    assert_int_equal(t.skipped, 1);
    /* a raise in the inner except goes to the outer except */
    assert_int_equal(run_trier(&t, T_RERAISE, 0, &v), 0);
    assert_int_equal(t.err2, CORO_EUSER - 2);
    assert_int_equal(t.err, CORO_EUSER - 3);
    assert_int_equal(t.in_except, 1);
    assert_int_equal(t.after, 1);
}

/* The cancel error lands in the except part too (the task may go on, as a
 * coroutine catching CancelledError does); a cancel at an await of the
 * except part leaves the body, through its finally. */
static void test_try_except_cancel(void **state)
{
    (void)state;
    struct trier t;
    coro_value v;
    assert_int_equal(run_trier(&t, T_SLEEP, 1, &v), 0);
    assert_int_equal(t.err, CORO_ECANCELLED);
    assert_int_equal(t.in_except, 1);
    assert_int_equal(t.after, 1);
    assert_int_equal(v.u.i, 7);
    assert_int_equal(run_trier(&t, T_EXCEPT_AWAIT, 1, &v), CORO_ECANCELLED);
    assert_int_equal(t.err, CORO_EUSER - 4);
    assert_int_equal(t.in_except, 1);
    assert_int_equal(t.after, 0);
    assert_int_equal(t.fin, 1);
}

/* In a generator: an error thrown in at a CORO_YIELD of the try part. */
static void test_try_except_generator(void **state)
{
    (void)state;
    struct trier t;
    coro_gen g;
    coro_value v;
    memset(&t, 0, sizeof t);
    t.mode = 99; /* yield, then raise */
    coro_frame_init(&t.co, trier_step);
    assert_int_equal(coro_gen_init(&g, &t.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(coro_gen_throw(&g, CORO_EUSER - 9, &v), 0); /* caught, then returns 7 */
    assert_int_equal(t.err, CORO_EUSER - 9);
    assert_int_equal(v.u.i, 7);
    assert_int_equal(t.fin, 1);
}

/* A body names itself when asked, without running (CORO_BEGIN's RS_INFO). */
static void test_frame_describe(void **state)
{
    (void)state;
    struct switcher sw;
    memset(&sw, 0, sizeof sw);
    coro_frame_init(&sw.co, switcher_step);
    coro__frame_info info;
    coro_value io;
    io.u.p = &info;
    sw.co.resume = CORO__RS_INFO;
    assert_int_equal(switcher_step(&sw.co, &io), CORO__DONE);
    assert_string_equal(info.function, "switcher_step");
    assert_non_null(strstr(info.file, "test_coro.c"));
    assert_int_equal(sw.fin, 0);
    assert_int_equal(sw.after, 0);
}

/* ---- every value kind comes back intact ---- */

struct returner {
    coro_frame co;
    coro_value v;
    int fin;
};

static CORO_FN(returner_step)
{
    struct returner *self = CORO_SELF(struct returner);
    CORO_BEGIN();
    CORO_RETURN(self->v);
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

struct passthru {
    coro_frame co;
    struct returner kid;
    coro_value v;
};

static CORO_FN(passthru_step)
{
    struct passthru *self = CORO_SELF(struct passthru);
    CORO_BEGIN();
    coro_frame_init(&self->kid.co, returner_step);
    self->kid.v = self->v;
    self->kid.fin = 0;
    CORO_AWAIT(&self->kid.co);
    CORO_RETURN(CORO_RESULT);
    CORO_END();
}

static int dummy_target;

static void check_same(coro_value a, coro_value b)
{
    assert_int_equal(a.tag, b.tag);
    switch (a.tag) {
    case CORO_INT:
        assert_true(a.u.i == b.u.i);
        break;
    case CORO_DOUBLE:
        assert_true(a.u.d == b.u.d);
        break;
    case CORO_PTR:
        assert_ptr_equal(a.u.p, b.u.p);
        break;
    default:
        break;
    }
}

static void test_return_each_kind(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    const coro_value kinds[] = { coro_int(INT64_C(1) << 40), coro_int(-3), coro_double(-0.25),
                                 coro_ptr(&dummy_target), coro_none() };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        coro_value out;
        /* a task's root */
        struct returner r;
        coro_task t;
        coro_frame_init(&r.co, returner_step);
        r.v = kinds[k];
        r.fin = 0;
        assert_int_equal(coro_task_init(&t, &loop, &r.co), 0);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
        assert_int_equal(coro_task_result(&t, &out), 0);
        check_same(out, kinds[k]);
        assert_int_equal(r.fin, 1);
        /* through a parent */
        struct passthru p;
        coro_frame_init(&p.co, passthru_step);
        p.v = kinds[k];
        assert_int_equal(coro_task_init(&t, &loop, &p.co), 0);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
        assert_int_equal(coro_task_result(&t, &out), 0);
        check_same(out, kinds[k]);
        assert_int_equal(p.kid.fin, 1);
        /* a generator's return value */
        coro_gen g;
        coro_frame_init(&p.co, passthru_step);
        assert_int_equal(coro_gen_init(&g, &p.co), 0);
        out = coro_error(E1);
        assert_int_equal(coro_gen_next(&g, &out), 0);
        check_same(out, kinds[k]);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- inside a task, CORO_YIELD(none) is a bare yield; a value is an error ---- */

struct yielder {
    coro_frame co;
    int bad;
    int passes;
    int *counter;
};

static int count_cb(void *arg)
{
    ++*(int *)arg;
    return 0;
}

static CORO_FN(yielder_step)
{
    struct yielder *self = CORO_SELF(struct yielder);
    CORO_BEGIN();
    CORO_YIELD(coro_none());
    self->passes = *self->counter;
    if (self->bad)
        CORO_YIELD(coro_int(5));
    CORO_RETURN(coro_int(1));
    CORO_END();
}

static void test_task_bare_yield(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    int counter = 0;
    struct yielder y = { .counter = &counter };
    coro_task t;
    coro_frame_init(&y.co, yielder_step);
    assert_int_equal(coro_task_init(&t, &loop, &y.co), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, count_cb, &counter), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(y.passes, 1); /* the callback queued after the first step ran first */

    y = (struct yielder){ .counter = &counter, .bad = 1 };
    coro_frame_init(&y.co, yielder_step);
    assert_int_equal(coro_task_init(&t, &loop, &y.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), CORO_EINVAL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gen_yields_then_returns),
        cmocka_unit_test(test_gen_send),
        cmocka_unit_test(test_gen_throw),
        cmocka_unit_test(test_gen_close),
        cmocka_unit_test(test_gen_yield_from),
        cmocka_unit_test(test_gen_send_through_yield_from),
        cmocka_unit_test(test_gen_already_executing),
        cmocka_unit_test(test_gen_cannot_sleep_or_wait),
        cmocka_unit_test(test_await_64_deep),
        cmocka_unit_test(test_error_through_three_levels),
        cmocka_unit_test(test_await_err_catches),
        cmocka_unit_test(test_cancel_runs_cleanup),
        cmocka_unit_test(test_finally_awaits_keeps_outcome),
        cmocka_unit_test(test_finally_error_replaces_outcome),
        cmocka_unit_test(test_await_done_frame_estate),
        cmocka_unit_test(test_suspension_inside_switch),
        cmocka_unit_test(test_frame_describe),
        cmocka_unit_test(test_try_except),
        cmocka_unit_test(test_try_except_cancel),
        cmocka_unit_test(test_try_except_generator),
        cmocka_unit_test(test_return_each_kind),
        cmocka_unit_test(test_task_bare_yield),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
