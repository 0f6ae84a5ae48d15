/*
 * tests/test_agen.c - async generators (PEP 525): CORO_ASYNC_FOR, anext,
 * asend, athrow, aclose, and the loop's finalisation.
 *
 * The generators here await between their yields (the consumer's task
 * sleeps meanwhile), keep a log, and have a cleanup section that awaits
 * too, so the tests can check each value arrives in order, the cleanup
 * runs exactly once however the consumer leaves (exhausted, break, return,
 * error, cancel), and asyncio's outcomes: StopAsyncIteration (CORO_ESTOP),
 * the thrown error, "ignored GeneratorExit" (CORO_ESTATE), "already
 * running" (CORO_ESTATE), a non-None send to a fresh generator
 * (CORO_EINVAL). Built in both macro forms.
 */
#include "helpers.h"

#define E1 (CORO_EUSER - 1)
#define E2 (CORO_EUSER - 2)
#define LONG 10.0

/* Every loop here runs on virtual time: the tests check the order of
 * events, and a LONG sleep costs nothing. */
static const coro_loop_options virtual_time = { .virtual_time = 1 };

enum { G_PLAIN, G_CATCH_THROW, G_IGNORE_EXIT, G_RAISE_AT_2, G_ECHO, G_SLOW };

/* async def ticker(n): for i in range(n): yield i; await sleep(0)
 *                      finally: await sleep(0); log -1 */
struct ticker {
    coro_agen ag;
    int i, n, mode, err, finals;
    coro_value got;
    tlog *log;
};

static CORO_FN(ticker_step)
{
    struct ticker *self = CORO_SELF(struct ticker);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        if (self->mode == G_RAISE_AT_2 && self->i == 2)
            CORO_RAISE(E2);
        if (self->mode == G_CATCH_THROW || self->mode == G_IGNORE_EXIT) {
            CORO_TRY {
                CORO_YIELD(coro_int(self->i));
            } CORO_EXCEPT(self->err) {
                tlog_add(self->log, self->err == CORO_EGENEXIT ? -50 : -40);
                CORO_YIELD(coro_int(100 + self->i)); /* ignores it */
            } CORO_TRY_END;
        } else {
            CORO_YIELD(coro_int(self->i));
        }
        if (self->mode == G_ECHO)
            tlog_add(self->log, (int)CORO_RESULT.u.i);
        CORO_SLEEP(self->mode == G_SLOW ? LONG : 0);
    }
    CORO_FINALLY
    CORO_SLEEP(0); /* awaiting inside the cleanup works */
    self->finals++;
    tlog_add(self->log, -1);
    CORO_END();
}

static coro_agen *ticker(struct ticker *t, int n, int mode, tlog *log)
{
    memset(t, 0, sizeof *t);
    coro_agen_init(&t->ag, ticker_step);
    t->n = n;
    t->mode = mode;
    t->log = log;
    return &t->ag;
}

static int run_root(coro_frame *root, coro_value *out)
{
    coro_loop loop;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    assert_int_equal(coro_task_init(&t, &loop, root), 0);
    int rc = coro_loop_run_until_complete(&loop, coro_task_future(&t));
    if (out)
        coro_task_result(&t, out);
    assert_int_equal(coro_loop_close(&loop), 0);
    return rc;
}

/* ---- async for ---- */

enum { C_ALL, C_BREAK_AT_1, C_RETURN_AT_1, C_RAISE_AT_1, C_CONTINUE_ODD };

struct consumer {
    coro_frame co;
    struct ticker t;
    coro_value v;
    int how, err, after;
    tlog log;
};

static CORO_FN(consumer_step)
{
    struct consumer *self = CORO_SELF(struct consumer);
    CORO_BEGIN();
    CORO_TRY {
        CORO_ASYNC_FOR(&self->t.ag, self->v) {
            if (self->how == C_CONTINUE_ODD && (self->v.u.i & 1))
                continue;
            tlog_add(&self->log, 10 + (int)self->v.u.i);
            if (self->v.u.i == 1 && self->how == C_BREAK_AT_1)
                break;
            if (self->v.u.i == 1 && self->how == C_RETURN_AT_1)
                CORO_RETURN(coro_int(99));
            if (self->v.u.i == 1 && self->how == C_RAISE_AT_1)
                CORO_RAISE(E1);
            CORO_SLEEP(0);
        } CORO_ASYNC_FOR_END;
        self->after = 1;
        tlog_add(&self->log, 20);
    } CORO_EXCEPT(self->err) {
        tlog_add(&self->log, 30);
    } CORO_TRY_END;
    CORO_RETURN(coro_int(7));
    CORO_END();
}

static void consumer_init(struct consumer *c, int n, int mode, int how)
{
    memset(c, 0, sizeof *c);
    coro_frame_init(&c->co, consumer_step);
    ticker(&c->t, n, mode, &c->log);
    c->how = how;
}

/* async for x in ticker(3): every value in order, then the generator's
 * cleanup (it ran out), then the code after the loop */
static void test_async_for_all(void **state)
{
    (void)state;
    struct consumer c;
    coro_value v;
    consumer_init(&c, 3, G_PLAIN, C_ALL);
    assert_int_equal(run_root(&c.co, &v), 0);
    TLOG_EXPECT(&c.log, 10, 11, 12, -1, 20);
    assert_int_equal(v.u.i, 7);
    assert_int_equal(c.t.finals, 1);
    assert_true(coro_agen_done(&c.t.ag));
    /* empty: the loop body never runs */
    consumer_init(&c, 0, G_PLAIN, C_ALL);
    assert_int_equal(run_root(&c.co, NULL), 0);
    TLOG_EXPECT(&c.log, -1, 20);
}

/* break, continue, return and raise inside the loop: the unfinished
 * generator is closed at CORO_ASYNC_FOR_END (its awaiting cleanup runs
 * once), and the consumer's outcome is kept */
static void test_async_for_leaves_close_the_generator(void **state)
{
    (void)state;
    struct consumer c;
    coro_value v;
    consumer_init(&c, 5, G_PLAIN, C_BREAK_AT_1);
    assert_int_equal(run_root(&c.co, &v), 0);
    TLOG_EXPECT(&c.log, 10, 11, -1, 20);
    assert_int_equal(c.t.finals, 1);
    assert_true(coro_agen_done(&c.t.ag));

    consumer_init(&c, 5, G_PLAIN, C_RETURN_AT_1);
    assert_int_equal(run_root(&c.co, &v), 0);
    TLOG_EXPECT(&c.log, 10, 11, -1);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 99);

    consumer_init(&c, 5, G_PLAIN, C_RAISE_AT_1);
    assert_int_equal(run_root(&c.co, &v), 0);
    TLOG_EXPECT(&c.log, 10, 11, -1, 30);
    assert_int_equal(c.err, E1);

    consumer_init(&c, 4, G_PLAIN, C_CONTINUE_ODD);
    assert_int_equal(run_root(&c.co, &v), 0);
    TLOG_EXPECT(&c.log, 10, 12, -1, 20);
}

/* the generator raises: the error comes out of the loop (its cleanup ran) */
static void test_async_for_generator_raises(void **state)
{
    (void)state;
    struct consumer c;
    consumer_init(&c, 5, G_RAISE_AT_2, C_ALL);
    assert_int_equal(run_root(&c.co, NULL), 0);
    TLOG_EXPECT(&c.log, 10, 11, -1, 30);
    assert_int_equal(c.err, E2);
    assert_true(coro_agen_done(&c.t.ag));
}

/* the consumer's task is cancelled while the generator awaits (inside it)
 * and while the loop's block awaits (the generator set aside): the cleanup
 * runs once either way and the cancel propagates */
static int cancel_cb(void *task)
{
    coro_task_cancel(task);
    return 0;
}

static void test_async_for_cancelled(void **state)
{
    (void)state;
    for (int in_gen = 0; in_gen < 2; in_gen++) {
        struct consumer c;
        coro_loop loop;
        coro_task t;
        coro_handle h;
        consumer_init(&c, 3, in_gen ? G_SLOW : G_PLAIN, C_ALL);
        assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
        assert_int_equal(coro_task_init(&t, &loop, &c.co), 0);
        coro_handle_init(&h);
        if (in_gen) {
            assert_int_equal(coro_call_later(&loop, &h, 0.01, cancel_cb, &t), 0);
        } else {
            /* one pass: the consumer is at its block's sleep(0) after value 0 */
            assert_int_equal(coro_call_soon(&loop, &h, cancel_cb, &t), 0);
        }
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
        assert_int_equal(c.err, CORO_ECANCELLED);
        assert_int_equal(c.t.finals, 1);
        assert_true(coro_agen_done(&c.t.ag));
        TLOG_EXPECT(&c.log, 10, -1, 30);
        assert_int_equal(coro_loop_close(&loop), 0);
    }
}

/* ---- the protocol by hand ---- */

enum { P_NEXT, P_SEND, P_THROW_CAUGHT, P_THROW_UNCAUGHT, P_THROW_FRESH, P_CLOSE, P_CLOSE_IGNORED,
       P_CLOSE_FRESH, P_SEND_FRESH, P_TWO_AWAITS };

struct manual {
    coro_frame co;
    struct ticker t;
    int what, i;
    int err[6];
    coro_value v[6];
    tlog log;
};

static CORO_FN(manual_step)
{
    struct manual *self = CORO_SELF(struct manual);
    CORO_BEGIN();
    switch (self->what) { /* no suspension point in this switch */
    case P_THROW_FRESH:
        self->i = 5;
        break;
    case P_CLOSE_FRESH:
        self->i = 6;
        break;
    case P_SEND_FRESH:
        self->i = 7;
        break;
    default:
        self->i = 0;
        break;
    }
    if (self->i == 5) {
        CORO_AWAIT_ERR(coro_athrow(&self->t.ag, E1), self->err[0]);
        CORO_AWAIT_ERR(coro_anext(&self->t.ag), self->err[1]);
        CORO_RETURN(coro_none());
    }
    if (self->i == 6) {
        CORO_AWAIT_ERR(coro_aclose(&self->t.ag), self->err[0]);
        CORO_AWAIT_ERR(coro_anext(&self->t.ag), self->err[1]);
        CORO_RETURN(coro_none());
    }
    if (self->i == 7) {
        CORO_AWAIT_ERR(coro_asend(&self->t.ag, coro_int(1)), self->err[0]);
        CORO_AWAIT_ERR(coro_asend(&self->t.ag, coro_none()), self->err[1]);
        self->v[1] = CORO_RESULT;
        CORO_AWAIT_ERR(coro_aclose(&self->t.ag), self->err[2]);
        CORO_RETURN(coro_none());
    }
    CORO_AWAIT_ERR(coro_anext(&self->t.ag), self->err[0]);
    self->v[0] = CORO_RESULT;
    if (self->what == P_SEND) {
        CORO_AWAIT_ERR(coro_asend(&self->t.ag, coro_int(77)), self->err[1]);
        self->v[1] = CORO_RESULT;
        CORO_AWAIT_ERR(coro_asend(&self->t.ag, coro_int(78)), self->err[2]);
        self->v[2] = CORO_RESULT;
    } else if (self->what == P_THROW_CAUGHT || self->what == P_THROW_UNCAUGHT) {
        CORO_AWAIT_ERR(coro_athrow(&self->t.ag, E1), self->err[1]);
        self->v[1] = CORO_RESULT;
    } else if (self->what == P_CLOSE || self->what == P_CLOSE_IGNORED) {
        CORO_AWAIT_ERR(coro_aclose(&self->t.ag), self->err[1]);
        self->v[1] = CORO_RESULT;
    } else {
        CORO_AWAIT_ERR(coro_anext(&self->t.ag), self->err[1]);
        self->v[1] = CORO_RESULT;
    }
    CORO_AWAIT_ERR(coro_anext(&self->t.ag), self->err[3]);
    self->v[3] = CORO_RESULT;
    CORO_AWAIT_ERR(coro_anext(&self->t.ag), self->err[4]);
    CORO_AWAIT_ERR(coro_aclose(&self->t.ag), self->err[5]); /* finished: a no-op */
    CORO_END();
}

static void manual_run(struct manual *m, int what, int n, int mode)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, manual_step);
    ticker(&m->t, n, mode, &m->log);
    m->what = what;
    assert_int_equal(run_root(&m->co, NULL), 0);
}

/* anext: the values, then StopAsyncIteration, again and again */
static void test_anext(void **state)
{
    (void)state;
    struct manual m;
    manual_run(&m, P_NEXT, 2, G_PLAIN);
    assert_int_equal(m.err[0], 0);
    assert_int_equal(m.v[0].u.i, 0);
    assert_int_equal(m.err[1], 0);
    assert_int_equal(m.v[1].u.i, 1);
    assert_int_equal(m.err[3], CORO_ESTOP);
    assert_int_equal(m.err[4], CORO_ESTOP);
    assert_int_equal(m.err[5], 0);
    assert_int_equal(m.t.finals, 1);
}

/* asend: the value lands at the pending yield (the generator logs it) */
static void test_asend(void **state)
{
    (void)state;
    struct manual m;
    manual_run(&m, P_SEND, 3, G_ECHO);
    assert_int_equal(m.v[1].u.i, 1);
    assert_int_equal(m.v[2].u.i, 2);
    assert_int_equal(m.err[3], CORO_ESTOP);
    TLOG_EXPECT(&m.log, 77, 78, 0, -1);
}

/* athrow: caught (the generator yields again), uncaught (it fails with
 * the error and is finished), into a fresh generator (finished unrun) */
static void test_athrow(void **state)
{
    (void)state;
    struct manual m;
    manual_run(&m, P_THROW_CAUGHT, 3, G_CATCH_THROW);
    assert_int_equal(m.err[1], 0);
    assert_int_equal(m.v[1].u.i, 100); /* yielded from its except part */
    assert_int_equal(m.err[3], 0);
    assert_int_equal(m.v[3].u.i, 1);
    assert_int_equal(m.err[4], 0); /* value 2 */
    assert_int_equal(m.err[5], CORO_ESTATE); /* this one catches GeneratorExit too */
    TLOG_EXPECT(&m.log, -40, -50);

    manual_run(&m, P_THROW_UNCAUGHT, 3, G_PLAIN);
    assert_int_equal(m.err[1], E1);
    assert_int_equal(m.err[3], CORO_ESTOP);
    assert_int_equal(m.t.finals, 1);

    manual_run(&m, P_THROW_FRESH, 3, G_PLAIN);
    assert_int_equal(m.err[0], E1);
    assert_int_equal(m.err[1], CORO_ESTOP);
    assert_int_equal(m.t.finals, 0); /* never ran */
}

/* aclose: the cleanup runs (and awaits); a generator that yields instead
 * is "ignoring GeneratorExit" (CORO_ESTATE); a fresh one closes unrun; a
 * non-None asend to a fresh one is refused */
static void test_aclose(void **state)
{
    (void)state;
    struct manual m;
    manual_run(&m, P_CLOSE, 3, G_PLAIN);
    assert_int_equal(m.err[1], 0);
    assert_int_equal(m.v[1].tag, CORO_NONE);
    assert_int_equal(m.t.finals, 1);
    assert_int_equal(m.err[3], CORO_ESTOP);

    manual_run(&m, P_CLOSE_IGNORED, 3, G_IGNORE_EXIT);
    assert_int_equal(m.err[1], CORO_ESTATE);
    assert_int_equal(m.err[3], 0); /* still suspended at its yield: goes on */
    assert_int_equal(m.v[3].u.i, 1);
    assert_int_equal(m.err[5], CORO_ESTATE);
    TLOG_EXPECT(&m.log, -50, -50);

    manual_run(&m, P_CLOSE_FRESH, 3, G_PLAIN);
    assert_int_equal(m.err[0], 0);
    assert_int_equal(m.err[1], CORO_ESTOP);
    assert_int_equal(m.t.finals, 0);

    manual_run(&m, P_SEND_FRESH, 3, G_PLAIN);
    assert_int_equal(m.err[0], CORO_EINVAL);
    assert_int_equal(m.err[1], 0);
    assert_int_equal(m.v[1].u.i, 0);
    assert_int_equal(m.err[2], 0);
    assert_int_equal(m.t.finals, 1);
}

/* two tasks await the same generator at once: "anext(): asynchronous
 * generator is already running" */
struct rival {
    coro_frame co;
    coro_agen *g;
    int err;
};

static CORO_FN(rival_step)
{
    struct rival *self = CORO_SELF(struct rival);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_anext(self->g), self->err);
    CORO_END();
}

static void test_already_running(void **state)
{
    (void)state;
    coro_loop loop;
    coro_task t1, t2;
    struct ticker tk;
    struct rival r1, r2;
    tlog log = { 0 };
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    texc x = { 0 };
    coro_loop_set_exception_handler(&loop, texc_handler, &x);
    ticker(&tk, 2, G_PLAIN, &log);
    tk.i = 0;
    for (int i = 0; i < 2; i++) {
        struct rival *r = i ? &r2 : &r1;
        memset(r, 0, sizeof *r);
        coro_frame_init(&r->co, rival_step);
        r->g = &tk.ag;
    }
    /* r1 takes the first value; then the generator sleeps inside r1's
     * second anext while r2 asks */
    assert_int_equal(coro_task_init(&t1, &loop, &r1.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t1)), 0);
    coro_frame_init(&r1.co, rival_step);
    assert_int_equal(coro_task_init(&t1, &loop, &r1.co), 0);
    assert_int_equal(coro_task_init(&t2, &loop, &r2.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t2)), 0);
    assert_int_equal(r2.err, CORO_ESTATE);
    assert_int_equal(x.count, 1);
    assert_non_null(strstr(x.last_message, "being awaited already"));
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t1)), 0);
    assert_int_equal(r1.err, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* generators chained: async def doubled(src): async for x in src: yield 2x */
struct doubled {
    coro_agen ag;
    struct ticker src;
    coro_value v;
    tlog *log;
};

static CORO_FN(doubled_step)
{
    struct doubled *self = CORO_SELF(struct doubled);
    CORO_BEGIN();
    /* the generator made in the loop's head: evaluated once, not per pass */
    CORO_ASYNC_FOR(ticker(&self->src, 10, G_PLAIN, self->log), self->v) {
        CORO_YIELD(coro_int(2 * self->v.u.i));
    } CORO_ASYNC_FOR_END;
    CORO_END();
}

struct chain {
    coro_frame co;
    struct doubled d;
    coro_value v;
    int64_t sum;
    int err;
    tlog log;
};

static CORO_FN(chain_step)
{
    struct chain *self = CORO_SELF(struct chain);
    CORO_BEGIN();
    CORO_ASYNC_FOR(&self->d.ag, self->v) {
        self->sum += self->v.u.i;
        if (self->v.u.i == 6)
            break; /* closes doubled, whose loop closes the ticker */
    } CORO_ASYNC_FOR_END;
    CORO_END();
}

static void test_chained_generators(void **state)
{
    (void)state;
    struct chain c;
    memset(&c, 0, sizeof c);
    coro_frame_init(&c.co, chain_step);
    coro_agen_init(&c.d.ag, doubled_step);
    c.d.log = &c.log;
    assert_int_equal(run_root(&c.co, NULL), 0);
    assert_int_equal(c.sum, 0 + 2 + 4 + 6);
    assert_int_equal(c.d.src.finals, 1);
    assert_true(coro_agen_done(&c.d.ag));
    assert_true(coro_agen_done(&c.d.src.ag));
}

/* NULL: anext of NULL fails the await with CORO_EINVAL; async for over
 * NULL raises it before the loop */
struct nulls {
    coro_frame co;
    coro_agen *g;
    coro_value v;
    int err1, err2, ran;
};

static CORO_FN(nulls_step)
{
    struct nulls *self = CORO_SELF(struct nulls);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_anext(self->g), self->err1);
    CORO_TRY {
        CORO_ASYNC_FOR(self->g, self->v) {
            self->ran = 1;
        } CORO_ASYNC_FOR_END;
    } CORO_EXCEPT(self->err2) {
    } CORO_TRY_END;
    CORO_END();
}

static void test_null_generator(void **state)
{
    (void)state;
    struct nulls n;
    memset(&n, 0, sizeof n);
    coro_frame_init(&n.co, nulls_step);
    assert_int_equal(run_root(&n.co, NULL), 0);
    assert_int_equal(n.err1, CORO_EINVAL);
    assert_int_equal(n.err2, CORO_EINVAL);
    assert_int_equal(n.ran, 0);
    assert_null(coro_asend(NULL, coro_none()));
    assert_null(coro_athrow(NULL, E1));
    assert_null(coro_aclose(NULL));
    assert_int_equal(coro_agen_done(NULL), 0);
    coro_agen_init(NULL, ticker_step); /* ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_for_all),
        cmocka_unit_test(test_async_for_leaves_close_the_generator),
        cmocka_unit_test(test_async_for_generator_raises),
        cmocka_unit_test(test_async_for_cancelled),
        cmocka_unit_test(test_anext),
        cmocka_unit_test(test_asend),
        cmocka_unit_test(test_athrow),
        cmocka_unit_test(test_aclose),
        cmocka_unit_test(test_already_running),
        cmocka_unit_test(test_chained_generators),
        cmocka_unit_test(test_null_generator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
