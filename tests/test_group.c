/*
 * tests/test_group.c - gather, wait, as_completed, shield, timeout scopes,
 * wait_for and task groups: SEMANTICS items 22-32 and 41, a cancel at each
 * suspension point of each operation, the loop never holding a pointer into
 * a finished operation, and the bad-argument paths.
 *
 * The children are `kid` frames run as caller-owned tasks (struct env):
 * a kid sleeps (or awaits a future), then returns its value or fails; it
 * may catch a cancel, and its cleanup may itself sleep or fail. Kids log
 * their id when they complete normally, so a test can check the order.
 * Every test ends with env_close: the kids still pending are cancelled and
 * run out, and the loop must close cleanly.
 *
 * The *_in_flight tests build the races where the loop still holds a
 * pointer into an operation (a done callback or a fired timer queued behind
 * the task's wakeup) and check the operation waits a pass before returning;
 * under ASan the gather one also catches a use after free. The last test
 * pins down the core behaviour that makes this necessary (a BUG note).
 */
#include "helpers.h"

#include <math.h>

#define E1 (CORO_EUSER - 1)
#define E2 (CORO_EUSER - 2)
#define E3 (CORO_EUSER - 3)
#define LONG 10.0 /* a sleep only a cancel ends */
#define NKIDS 4

/* ---- nap: a child frame that sleeps ---- */

struct nap {
    coro_frame co;
    double secs;
};

static CORO_FN(nap_step)
{
    struct nap *self = CORO_SELF(struct nap);
    CORO_BEGIN();
    CORO_SLEEP(self->secs);
    CORO_END();
}

static coro_frame *nap(struct nap *n, double secs)
{
    coro_frame_init(&n->co, nap_step);
    n->secs = secs;
    return &n->co;
}

/* ---- kid: the child coroutine ---- */

struct kid {
    coro_frame co;
    double secs; /* sleep this long, unless `fut` is set: await it */
    coro_future *fut;
    int value, err; /* then return coro_int(value), or fail with err */
    int catch_;     /* a cancel: return catch_value instead */
    int catch_value;
    double fin_secs; /* the cleanup sleeps this long */
    int fin_err;     /* then fails with this */
    int started, fin, fin_done, got;
    tlog *log;
    int id;
    struct nap nap;
};

static CORO_FN(kid_step)
{
    struct kid *self = CORO_SELF(struct kid);
    CORO_BEGIN();
    self->started = 1;
    if (self->fut)
        CORO_AWAIT_ERR(self->fut, self->got);
    else
        CORO_AWAIT_ERR(nap(&self->nap, self->secs), self->got);
    if (self->got == CORO_ECANCELLED && self->catch_)
        CORO_RETURN(coro_int(self->catch_value));
    if (self->got)
        CORO_RAISE(self->got);
    if (self->log)
        tlog_add(self->log, self->id);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(self->value));
    CORO_FINALLY
    self->fin++;
    if (self->fin_secs > 0)
        CORO_AWAIT(nap(&self->nap, self->fin_secs));
    self->fin_done = 1;
    if (self->fin_err)
        CORO_RAISE(self->fin_err);
    CORO_END();
}

static coro_frame *kid_init(struct kid *k, double secs, int value, tlog *log, int id)
{
    memset(k, 0, sizeof *k);
    coro_frame_init(&k->co, kid_step);
    k->secs = secs;
    k->value = value;
    k->log = log;
    k->id = id;
    return &k->co;
}

/* ---- the clock: the env's loop runs on virtual time ---- */

static coro_loop *clock_loop;
static int64_t now_ns(void) { return coro_loop_time_ns(clock_loop); }
/* Let the (virtual) clock reach `until`, as a busy task would. */
static void spin_to(int64_t until)
{
    int64_t d = until - now_ns();
    if (d > 0)
        assert_int_equal(coro_loop_advance(clock_loop, d), 0);
}

/* ---- env: a loop, a log, kids as caller-owned tasks ---- */

struct env {
    coro_loop loop;
    tlog log;
    struct kid kids[NKIDS];
    coro_task tasks[NKIDS];
    int ntasks;
};

static void env_init(struct env *e)
{
    memset(e, 0, sizeof *e);
    /* these tests check the order of events, never the real clock: the
     * loop runs on virtual time, so a 10 s sleep costs nothing */
    coro_loop_options o = { .virtual_time = 1 };
    assert_int_equal(coro_loop_init(&e->loop, &o), 0);
    clock_loop = &e->loop;
}

/* Start kid i: sleeps `secs`, then returns `value` (or fails with `err`). */
static coro_task *kid_start(struct env *e, int i, double secs, int value, int err)
{
    kid_init(&e->kids[i], secs, value, &e->log, i + 1);
    e->kids[i].err = err;
    assert_int_equal(coro_task_init(&e->tasks[i], &e->loop, &e->kids[i].co), 0);
    if (i >= e->ntasks)
        e->ntasks = i + 1;
    return &e->tasks[i];
}

static coro_future *kid_fut(struct env *e, int i) { return coro_task_future(&e->tasks[i]); }

/* Cancel the kids still pending, run them out, close the loop. */
static void env_close(struct env *e)
{
    for (int i = 0; i < e->ntasks; i++) {
        if (coro_task_done(&e->tasks[i]))
            continue;
        coro_task_cancel(&e->tasks[i]);
        coro_loop_run_until_complete(&e->loop, coro_task_future(&e->tasks[i]));
    }
    run_one_pass(&e->loop);
    assert_int_equal(coro_loop_close(&e->loop), 0);
}

/* Run `root` as a task to completion; returns its error code. */
static int run_main(struct env *e, coro_task *t, coro_frame *root)
{
    assert_int_equal(coro_task_init(t, &e->loop, root), 0);
    return coro_loop_run_until_complete(&e->loop, coro_task_future(t));
}

static double since(int64_t t0) { return (double)(now_ns() - t0) / 1e9; }

static int live_timers(const coro_loop *loop) { return (int)(loop->heap_len - loop->heap_dead); }

/* loop callbacks */
static int cancel_cb(void *task)
{
    coro_task_cancel(task);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* gather                                                                   */
/* ------------------------------------------------------------------------ */

struct gmain {
    coro_frame co;
    CORO_GATHER_OP(g, NKIDS);
    size_t n;
    int flags, propagate;
    int err, done;
    coro_value res, snap1; /* snap1: results[1] as the await returned */
};

static CORO_FN(gmain_step)
{
    struct gmain *self = CORO_SELF(struct gmain);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_gather(&self->g.op, self->g.futs, self->n, self->g.results, self->g.nodes,
                               self->flags),
                   self->err);
    self->res = CORO_RESULT;
    self->snap1 = self->g.results[1];
    self->done = 1;
    if (self->propagate && self->err)
        CORO_RAISE(self->err);
    CORO_END();
}

static void gmain_init(struct gmain *m, size_t n, int flags)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, gmain_step);
    m->n = n;
    m->flags = flags;
}

/* 22. results in argument order, whatever the completion order */
static void test_gather_argument_order(void **state)
{
    (void)state;
    struct env e;
    struct gmain m;
    coro_task mt;
    env_init(&e);
    gmain_init(&m, 3, 0);
    m.g.futs[0] = coro_task_future(kid_start(&e, 0, 0.03, 10, 0));
    m.g.futs[1] = coro_task_future(kid_start(&e, 1, 0.01, 20, 0));
    m.g.futs[2] = coro_task_future(kid_start(&e, 2, 0.02, 30, 0));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    TLOG_EXPECT(&e.log, 2, 3, 1); /* they completed in another order */
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.tag, CORO_PTR);
    assert_ptr_equal(m.res.u.p, m.g.results);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m.g.results[i].tag, CORO_INT);
        assert_int_equal(m.g.results[i].u.i, 10 * (i + 1));
    }
    env_close(&e);
}

/* The storage macro for N children, and a future given twice. */
struct gmacro {
    coro_frame co;
    CORO_GATHER_OP(g, 3);
    int err;
};

static CORO_FN(gmacro_step)
{
    struct gmacro *self = CORO_SELF(struct gmacro);
    CORO_BEGIN();
    CORO_AWAIT_ERR(CORO_GATHER(&self->g, 0), self->err);
    CORO_END();
}

static void test_gather_macro_and_duplicates(void **state)
{
    (void)state;
    struct env e;
    struct gmacro m;
    coro_task mt;
    env_init(&e);
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, gmacro_step);
    m.g.futs[0] = coro_task_future(kid_start(&e, 0, 0.01, 5, 0));
    m.g.futs[1] = coro_task_future(kid_start(&e, 1, 0, 6, 0));
    m.g.futs[2] = m.g.futs[0];
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.g.results[0].u.i, 5);
    assert_int_equal(m.g.results[1].u.i, 6);
    assert_int_equal(m.g.results[2].u.i, 5);
    env_close(&e);
}

/* 23. the first error completes the gather; the others are not cancelled */
static void test_gather_first_error_others_run_on(void **state)
{
    (void)state;
    struct env e;
    struct gmain m;
    coro_task mt;
    env_init(&e);
    gmain_init(&m, 3, 0);
    m.g.futs[0] = coro_task_future(kid_start(&e, 0, 0.08, 1, 0));
    m.g.futs[1] = coro_task_future(kid_start(&e, 1, 0.01, 0, E1));
    m.g.futs[2] = coro_task_future(kid_start(&e, 2, 0.02, 0, E2));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, E1); /* the first, not E2 */
    assert_int_equal(coro_value_error(m.g.results[1]), E1);
    assert_int_equal(coro_task_done(&e.tasks[0]), 0); /* still running */
    assert_int_equal(e.kids[0].got, 0);
    /* and they finish normally: nobody cancelled them */
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 0)), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 2)), E2);
    assert_int_equal(coro_task_cancelled(&e.tasks[0]), 0);
    assert_int_equal(coro_task_cancelled(&e.tasks[2]), 0);
    TLOG_EXPECT(&e.log, 2, 3, 1);
    env_close(&e);
}

/* A cancelled child, without return-errors, fails the gather with the
 * cancel (asyncio: outer.set_exception(CancelledError)); the awaiting task
 * itself was not cancelled. */
static void test_gather_cancelled_child(void **state)
{
    (void)state;
    struct env e;
    struct gmain m;
    coro_task mt;
    coro_handle h;
    env_init(&e);
    gmain_init(&m, 2, 0);
    m.g.futs[0] = coro_task_future(kid_start(&e, 0, LONG, 1, 0));
    m.g.futs[1] = coro_task_future(kid_start(&e, 1, 0.05, 2, 0));
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(&e.loop, &h, 0.01, cancel_cb, &e.tasks[0]), 0);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(coro_task_cancelling(&mt), 0);
    assert_int_equal(coro_task_done(&e.tasks[1]), 0); /* not cancelled */
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 1)), 0);
    env_close(&e);
}

/* 24. return-errors: every slot holds its value or its error, cancel too */
static void test_gather_return_errors(void **state)
{
    (void)state;
    struct env e;
    struct gmain m;
    coro_task mt;
    coro_handle h;
    env_init(&e);
    gmain_init(&m, 4, CORO_RETURN_ERRORS);
    m.g.futs[0] = coro_task_future(kid_start(&e, 0, 0.03, 1, 0));
    m.g.futs[1] = coro_task_future(kid_start(&e, 1, 0.01, 0, E1));
    m.g.futs[2] = coro_task_future(kid_start(&e, 2, LONG, 3, 0));
    m.g.futs[3] = coro_task_future(kid_start(&e, 3, 0.02, 0, E2));
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(&e.loop, &h, 0.015, cancel_cb, &e.tasks[2]), 0);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.g.results[0].tag, CORO_INT);
    assert_int_equal(m.g.results[0].u.i, 1);
    assert_int_equal(coro_value_error(m.g.results[1]), E1);
    assert_int_equal(coro_value_error(m.g.results[2]), CORO_ECANCELLED);
    assert_int_equal(coro_value_error(m.g.results[3]), E2);
    assert_int_equal(coro_task_done(&e.tasks[0]), 1); /* it waited for all */
    env_close(&e);
}

static void test_gather_empty(void **state)
{
    (void)state;
    struct env e;
    struct gmain m;
    coro_task mt;
    env_init(&e);
    gmain_init(&m, 0, 0);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.tag, CORO_PTR);
    env_close(&e);
}

/* 25. cancelling the task that awaits gather cancels every child
 * (test_cancellation_broadcast: both children wait on one future). */
static void test_gather_cancel_broadcast(void **state)
{
    (void)state;
    for (int flags = 0; flags <= CORO_RETURN_ERRORS; flags++) {
        struct env e;
        struct gmain m;
        coro_task mt;
        coro_future waiter;
        env_init(&e);
        assert_int_equal(coro_future_init(&waiter, &e.loop), 0);
        gmain_init(&m, 2, flags);
        m.propagate = 1;
        for (int i = 0; i < 2; i++) {
            kid_start(&e, i, 0, 0, 0);
            e.kids[i].fut = &waiter;
            m.g.futs[i] = kid_fut(&e, i);
        }
        assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
        run_one_pass(&e.loop);
        run_one_pass(&e.loop);
        assert_int_equal(coro_task_cancel(&mt), 1);
        assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)),
                         CORO_ECANCELLED);
        assert_int_equal(coro_task_cancelled(&mt), 1);
        assert_int_equal(m.err, CORO_ECANCELLED);
        assert_int_equal(coro_future_cancelled(&waiter), 1);
        if (flags) { /* with return-errors it waited for both */
            assert_int_equal(coro_task_cancelled(&e.tasks[0]), 1);
            assert_int_equal(coro_task_cancelled(&e.tasks[1]), 1);
            assert_int_equal(coro_value_error(m.g.results[0]), CORO_ECANCELLED);
            assert_int_equal(coro_value_error(m.g.results[1]), CORO_ECANCELLED);
        }
        run_one_pass(&e.loop);
        assert_int_equal(coro_task_cancelled(&e.tasks[0]), 1);
        assert_int_equal(coro_task_cancelled(&e.tasks[1]), 1);
        assert_int_equal(e.log.n, 0); /* proof == 0: no kid completed */
        env_close(&e);
    }
}

/* The cancel reaches the children at once, as _GatheringFuture.cancel
 * does inside task.cancel(): a child failed between the cancel and the
 * task's next step cannot overtake it (found by fuzz/fuzz_sched). Also
 * through a task that awaits the gathering task: the request goes down. */
struct gfut {
    coro_frame co;
    CORO_GATHER_OP(g, 2);
    int err;
};

static CORO_FN(gfut_step)
{
    struct gfut *self = CORO_SELF(struct gfut);
    CORO_BEGIN();
    CORO_AWAIT_ERR(CORO_GATHER(&self->g, 0), self->err);
    CORO_RAISE(self->err ? self->err : CORO_EUSER - 2);
    CORO_END();
}

struct gouter {
    coro_frame co;
    coro_task *inner;
};

static CORO_FN(gouter_step)
{
    struct gouter *self = CORO_SELF(struct gouter);
    CORO_BEGIN();
    CORO_AWAIT(self->inner);
    CORO_END();
}

static void test_gather_cancel_not_overtaken(void **state)
{
    (void)state;
    for (int through = 0; through <= 1; through++) {
        coro_loop loop;
        coro_future f0, f1;
        coro_task t, outer;
        struct gfut m;
        struct gouter o;
        assert_int_equal(coro_loop_init(&loop, NULL), 0);
        assert_int_equal(coro_future_init(&f0, &loop), 0);
        assert_int_equal(coro_future_init(&f1, &loop), 0);
        memset(&m, 0, sizeof m);
        coro_frame_init(&m.co, gfut_step);
        m.g.futs[0] = &f0;
        m.g.futs[1] = &f1;
        assert_int_equal(coro_task_init(&t, &loop, &m.co), 0);
        o.inner = &t;
        coro_frame_init(&o.co, gouter_step);
        assert_int_equal(coro_task_init(&outer, &loop, &o.co), 0);
        run_one_pass(&loop); /* both wait: t in gather, outer on t */
        assert_int_equal(coro_task_cancel(through ? &outer : &t), 1);
        assert_int_equal(coro_future_cancelled(&f0), 1); /* at once */
        assert_int_equal(coro_future_set_error(&f0, CORO_EUSER - 1), CORO_ESTATE);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)),
                         CORO_ECANCELLED);
        assert_int_equal(coro_task_cancelled(&t), 1);
        assert_int_equal(m.err, CORO_ECANCELLED);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&outer)),
                         CORO_ECANCELLED);
        assert_int_equal(coro_loop_close(&loop), 0);
    }
}

/* Children that catch the cancel and return: the gather still fails with
 * the cancel (asyncio: _cancel_requested), after all of them. */
static void test_gather_cancel_children_catch(void **state)
{
    (void)state;
    struct env e;
    struct gmain m;
    coro_task mt;
    coro_handle h;
    env_init(&e);
    gmain_init(&m, 2, 0);
    for (int i = 0; i < 2; i++) {
        m.g.futs[i] = coro_task_future(kid_start(&e, i, LONG, 0, 0));
        e.kids[i].catch_ = 1;
        e.kids[i].catch_value = 7 + i;
        e.kids[i].fin_secs = 0.01 * (i + 1);
    }
    coro_handle_init(&h);
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    assert_int_equal(coro_call_later(&e.loop, &h, 0.01, cancel_cb, &mt), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), 0);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(e.kids[0].fin_done, 1);
    assert_int_equal(e.kids[1].fin_done, 1); /* it waited for both */
    assert_int_equal(m.g.results[0].u.i, 7);
    assert_int_equal(m.g.results[1].u.i, 8);
    env_close(&e);
}

/* A child completes while the failed gather's task is being woken: its
 * done callback is queued and cannot be taken back. The gather lets it run
 * before returning (results[1] is filled when the await returns), and
 * never leaves the loop a pointer into its frame, which here is freed with
 * its task (ASan / valgrind would see a use after free). */
struct inflight {
    coro_loop *loop;
    coro_future a, b;
    coro_handle h1, h2, h3;
    coro_task *victim; /* cancelled during the drain, if set */
    int err, done;
    coro_value snap1;
};

static int set_b(void *arg)
{
    struct inflight *f = arg;
    return coro_future_set_result(&f->b, coro_int(2));
}

static int fail_a(void *arg)
{
    struct inflight *f = arg;
    coro_future_set_error(&f->a, E1);
    return coro_call_soon(f->loop, &f->h2, set_b, f); /* runs after a's callback */
}

struct gheap {
    coro_frame co;
    struct inflight *out;
    CORO_GATHER_OP(g, 2);
};

static CORO_FN(gheap_step)
{
    struct gheap *self = CORO_SELF(struct gheap);
    CORO_BEGIN();
    CORO_AWAIT_ERR(CORO_GATHER(&self->g, 0), self->out->err);
    self->out->snap1 = self->g.results[1];
    self->out->done = 1;
    CORO_END();
}

static int cancel_victim(void *arg)
{
    struct inflight *f = arg;
    coro_task_cancel(f->victim);
    return 0;
}

static void test_gather_callback_in_flight(void **state)
{
    (void)state;
    for (int cancel = 0; cancel < 2; cancel++) {
        coro_loop loop;
        struct inflight f;
        memset(&f, 0, sizeof f);
        assert_int_equal(coro_loop_init(&loop, NULL), 0);
        f.loop = &loop;
        assert_int_equal(coro_future_init(&f.a, &loop), 0);
        assert_int_equal(coro_future_init(&f.b, &loop), 0);
        struct gheap *m = CORO_FRAME_NEW(&loop, struct gheap, gheap_step);
        assert_non_null(m);
        m->out = &f;
        m->g.futs[0] = &f.a;
        m->g.futs[1] = &f.b;
        coro_task *t = coro_spawn(&loop, &m->co);
        assert_non_null(t);
        run_one_pass(&loop); /* the gather waits */
        assert_int_equal(coro_call_soon(&loop, &f.h1, fail_a, &f), 0);
        run_one_pass(&loop); /* a fails, b's setter is queued */
        run_one_pass(&loop); /* a's callback completes the gather; b completes */
        assert_int_equal(f.done, 0);
        if (cancel) { /* a cancel during the drain (the task's yield) */
            f.victim = t;
            assert_int_equal(coro_call_soon(&loop, &f.h3, cancel_victim, &f), 0);
        }
        run_one_pass(&loop); /* the task wakes: E1; b's callback is queued: drain */
        assert_int_equal(f.done, 0);
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), 0);
        assert_int_equal(f.done, 1);
        /* a cancel during the drain replaces the outcome, as an error in a
         * finally clause does */
        assert_int_equal(f.err, cancel ? CORO_ECANCELLED : E1);
        assert_int_equal(f.snap1.tag, CORO_INT); /* b's callback ran first */
        assert_int_equal(f.snap1.u.i, 2);
        coro_task_release(t);
        run_one_pass(&loop);
        run_one_pass(&loop);
        assert_int_equal(loop.tasks_alive, 0);
        assert_int_equal(coro_loop_close(&loop), 0);
    }
}

static void test_gather_bad_arguments(void **state)
{
    (void)state;
    struct env e;
    struct gmain m;
    coro_task mt;
    coro_loop other;
    coro_future fo, f0;
    coro_gather_op op;
    coro_future *futs[2];
    coro_value res[2];
    coro_child_node nodes[2];
    env_init(&e);
    assert_int_equal(coro_loop_init(&other, NULL), 0);
    assert_int_equal(coro_future_init(&f0, &e.loop), 0);
    assert_int_equal(coro_future_init(&fo, &other), 0);
    futs[0] = &f0;
    futs[1] = NULL;
    assert_null(coro_gather(NULL, futs, 1, res, nodes, 0));
    assert_null(coro_gather(&op, NULL, 1, res, nodes, 0));
    assert_null(coro_gather(&op, futs, 1, NULL, nodes, 0));
    assert_null(coro_gather(&op, futs, 1, res, NULL, 0));
    assert_null(coro_gather(&op, futs, 2, res, nodes, 0)); /* a NULL entry */
    assert_null(coro_gather(&op, futs, 1, res, nodes, 4)); /* unknown flag */
    futs[1] = &fo;
    assert_null(coro_gather(&op, futs, 2, res, nodes, 0));     /* two loops */
    assert_non_null(coro_gather(&op, NULL, 0, NULL, NULL, 0)); /* empty is fine */
    /* awaiting what a bad call returns fails with CORO_EINVAL */
    gmain_init(&m, 2, 0);
    m.g.futs[0] = &f0;
    m.g.futs[1] = NULL;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_EINVAL);
    /* futures of another loop than the awaiting task's: refused, no hang */
    gmain_init(&m, 1, 0);
    m.g.futs[0] = &fo;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_EINVAL);
    assert_null(fo.callbacks); /* its node was taken back */
    assert_int_equal(coro_loop_close(&other), 0);
    env_close(&e);
}

/* ---- gather as a future (coro_gather_start) ---- */

/* a task that awaits one future and keeps its outcome */
struct awaiter {
    coro_frame co;
    coro_future *fut;
    int err;
    coro_value res;
};

static CORO_FN(awaiter_step)
{
    struct awaiter *self = CORO_SELF(struct awaiter);
    CORO_BEGIN();
    CORO_AWAIT_ERR(self->fut, self->err);
    self->res = CORO_RESULT;
    CORO_END();
}

static coro_frame *awaiter_init(struct awaiter *a, coro_future *fut)
{
    memset(a, 0, sizeof *a);
    coro_frame_init(&a->co, awaiter_step);
    a->fut = fut;
    return &a->co;
}

static void count_done(coro_future *f, void *arg)
{
    (void)f;
    (*(int *)arg)++;
}

struct gstarted {
    coro_gather_op op;
    coro_future *futs[3];
    coro_value results[3];
    coro_child_node nodes[3];
};

/* g = gather(a, b, c): awaited from two tasks, a done callback, results in
 * argument order; cancel() is False once it is done */
static void test_gather_future_two_awaiters(void **state)
{
    (void)state;
    struct env e;
    struct gstarted g;
    struct awaiter a1, a2;
    coro_task t1, t2;
    int callbacks = 0;
    env_init(&e);
    for (int i = 0; i < 3; i++)
        g.futs[i] = coro_task_future(kid_start(&e, i, 0.01 * (3 - i), 10 + i, 0));
    assert_int_equal(coro_gather_start(&g.op, NULL, g.futs, 3, g.results, g.nodes, 0), 0);
    coro_future *fut = coro_gather_future(&g.op);
    assert_non_null(fut);
    assert_int_equal(coro_future_add_done_callback(fut, count_done, &callbacks), 0);
    assert_int_equal(coro_task_init(&t1, &e.loop, awaiter_init(&a1, fut)), 0);
    assert_int_equal(coro_task_init(&t2, &e.loop, awaiter_init(&a2, fut)), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&t2)), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&t1)), 0);
    TLOG_EXPECT(&e.log, 3, 2, 1);
    for (int i = 0; i < 2; i++) {
        struct awaiter *a = i ? &a2 : &a1;
        assert_int_equal(a->err, 0);
        assert_ptr_equal(a->res.u.p, g.results);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(g.results[i].u.i, 10 + i);
    assert_int_equal(callbacks, 1);
    assert_int_equal(coro_future_cancel(fut), 0); /* done: False */
    assert_int_equal(coro_gather_close(&g.op), 0);
    env_close(&e);
}

/* g.cancel() while children run: True, every child is cancelled, and the
 * future (and both awaiters) end cancelled once they are done */
static void test_gather_future_cancel(void **state)
{
    (void)state;
    struct env e;
    struct gstarted g;
    struct awaiter a1, a2;
    coro_task t1, t2;
    env_init(&e);
    for (int i = 0; i < 3; i++)
        g.futs[i] = coro_task_future(kid_start(&e, i, i == 0 ? 0 : LONG, i, 0));
    assert_int_equal(coro_gather_start(&g.op, NULL, g.futs, 3, g.results, g.nodes, CORO_RETURN_ERRORS), 0);
    coro_future *fut = coro_gather_future(&g.op);
    assert_int_equal(coro_task_init(&t1, &e.loop, awaiter_init(&a1, fut)), 0);
    assert_int_equal(coro_task_init(&t2, &e.loop, awaiter_init(&a2, fut)), 0);
    run_one_pass(&e.loop);
    run_one_pass(&e.loop); /* kid 0 done */
    assert_int_equal(coro_future_cancel(fut), 1);
    assert_false(coro_future_done(fut)); /* until the children are done */
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&t1)), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&t2)), 0);
    assert_true(coro_future_cancelled(fut));
    assert_int_equal(a1.err, CORO_ECANCELLED);
    assert_int_equal(a2.err, CORO_ECANCELLED);
    assert_int_equal(g.results[0].u.i, 0);
    assert_int_equal(coro_value_error(g.results[1]), CORO_ECANCELLED);
    assert_true(coro_task_cancelled(&e.tasks[2]));
    assert_int_equal(coro_future_cancel(fut), 0);
    assert_int_equal(coro_gather_close(&g.op), 0);
    env_close(&e);
}

/* the first error fails the future; the others run on and still fill
 * their slots; close takes the callbacks off the ones still pending; close
 * of an unfinished gather cancels its future, not the children */
static void test_gather_future_error_and_close(void **state)
{
    (void)state;
    struct env e;
    struct gstarted g;
    env_init(&e);
    g.futs[0] = coro_task_future(kid_start(&e, 0, 0.02, 1, 0));
    g.futs[1] = coro_task_future(kid_start(&e, 1, 0, 0, E1));
    g.futs[2] = coro_task_future(kid_start(&e, 2, LONG, 3, 0));
    assert_int_equal(coro_gather_start(&g.op, NULL, g.futs, 3, g.results, g.nodes, 0), 0);
    coro_future *fut = coro_gather_future(&g.op);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, fut), E1);
    assert_int_equal(coro_future_error(fut), E1);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, g.futs[0]), 0);
    run_one_pass(&e.loop);
    assert_int_equal(g.results[0].u.i, 1); /* filled after the failure */
    assert_int_equal(coro_gather_close(&g.op), 0);
    assert_false(coro_task_done(&e.tasks[2])); /* not cancelled by close */
    env_close(&e);

    env_init(&e);
    g.futs[0] = coro_task_future(kid_start(&e, 0, LONG, 1, 0));
    assert_int_equal(coro_gather_start(&g.op, NULL, g.futs, 1, g.results, g.nodes, 0), 0);
    fut = coro_gather_future(&g.op);
    assert_int_equal(coro_gather_close(&g.op), 0);
    assert_true(coro_future_cancelled(fut));
    assert_false(coro_task_done(&e.tasks[0]));
    assert_int_equal(coro_gather_close(&g.op), 0); /* again: nothing */
    env_close(&e);
}

/* gather() of nothing is done at once; bad arguments */
static void test_gather_future_empty_and_bad(void **state)
{
    (void)state;
    struct env e;
    struct gstarted g;
    coro_gather_op frame_form;
    env_init(&e);
    assert_int_equal(coro_gather_start(&g.op, &e.loop, NULL, 0, NULL, NULL, 0), 0);
    assert_true(coro_future_done(coro_gather_future(&g.op)));
    coro_value v;
    assert_int_equal(coro_future_result(coro_gather_future(&g.op), &v), 0);
    assert_int_equal(v.tag, CORO_PTR);
    assert_int_equal(coro_gather_close(&g.op), 0);
    /* no loop given and none running */
    assert_int_equal(coro_gather_start(&g.op, NULL, NULL, 0, NULL, NULL, 0), CORO_EINVAL);
    g.futs[0] = coro_task_future(kid_start(&e, 0, 0, 1, 0));
    assert_int_equal(coro_gather_start(NULL, NULL, g.futs, 1, g.results, g.nodes, 0), CORO_EINVAL);
    assert_int_equal(coro_gather_start(&g.op, NULL, g.futs, 1, NULL, g.nodes, 0), CORO_EINVAL);
    assert_int_equal(coro_gather_start(&g.op, NULL, g.futs, 1, g.results, g.nodes, 8), CORO_EINVAL);
    assert_null(coro_gather_future(NULL));
    assert_int_equal(coro_gather_close(NULL), CORO_EINVAL);
    assert_non_null(coro_gather(&frame_form, g.futs, 1, g.results, g.nodes, 0));
    assert_null(coro_gather_future(&frame_form)); /* the frame form has no future */
    assert_int_equal(coro_gather_close(&frame_form), CORO_EINVAL);
    env_close(&e);
}

/* ------------------------------------------------------------------------ */
/* wait                                                                     */
/* ------------------------------------------------------------------------ */

struct wmain {
    coro_frame co;
    CORO_WAIT_OP(w, NKIDS);
    size_t n;
    int when;
    double timeout;
    int err, done;
    int64_t ndone;
};

static CORO_FN(wmain_step)
{
    struct wmain *self = CORO_SELF(struct wmain);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_wait(&self->w.op, self->w.futs, self->n, self->w.nodes, self->w.done,
                             self->when, self->timeout),
                   self->err);
    self->ndone = CORO_RESULT.u.i;
    self->done = 1;
    CORO_END();
}

static void wmain_init(struct wmain *m, size_t n, int when, double timeout)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, wmain_step);
    m->n = n;
    m->when = when;
    m->timeout = timeout;
    for (size_t i = 0; i < NKIDS; i++)
        m->w.done[i] = 9; /* must be overwritten */
}

/* 26. FIRST_COMPLETED: done and pending, and the pending keep running */
static void test_wait_first_completed(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    env_init(&e);
    wmain_init(&m, 2, CORO_FIRST_COMPLETED, CORO_NO_TIMEOUT);
    m.w.futs[0] = coro_task_future(kid_start(&e, 0, 0.05, 1, 0));
    m.w.futs[1] = coro_task_future(kid_start(&e, 1, 0.01, 2, 0));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.ndone, 1);
    assert_int_equal(m.w.done[0], 0);
    assert_int_equal(m.w.done[1], 1);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 0)), 0);
    assert_int_equal(coro_task_cancelled(&e.tasks[0]), 0);
    env_close(&e);
}

static void test_wait_all_completed(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    env_init(&e);
    wmain_init(&m, 3, CORO_ALL_COMPLETED, 5.0);
    m.w.futs[0] = coro_task_future(kid_start(&e, 0, 0.02, 1, 0));
    m.w.futs[1] = coro_task_future(kid_start(&e, 1, 0.01, 0, E1)); /* errors don't stop it */
    m.w.futs[2] = coro_task_future(kid_start(&e, 2, 0.0, 3, 0));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.ndone, 3);
    assert_memory_equal(m.w.done, "\1\1\1", 3);
    assert_int_equal(live_timers(&e.loop), 0); /* its timer was disarmed */
    assert_int_equal(coro_future_error(kid_fut(&e, 1)), E1);
    env_close(&e);
}

/* 26. a timeout returns the pending without cancelling them */
static void test_wait_timeout_does_not_cancel(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    env_init(&e);
    wmain_init(&m, 2, CORO_ALL_COMPLETED, 0.02);
    m.w.futs[0] = coro_task_future(kid_start(&e, 0, 0.001, 1, 0));
    m.w.futs[1] = coro_task_future(kid_start(&e, 1, 0.08, 2, 0));
    int64_t t0 = now_ns();
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_true(since(t0) >= 0.015);
    assert_true(since(t0) < 2.0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.ndone, 1);
    assert_int_equal(m.w.done[0], 1);
    assert_int_equal(m.w.done[1], 0);
    assert_int_equal(coro_task_done(&e.tasks[1]), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 1)), 0);
    assert_int_equal(e.kids[1].got, 0); /* never cancelled */
    env_close(&e);
}

/* 26. FIRST_EXCEPTION returns early on an error, not on a cancel */
static void test_wait_first_exception(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    coro_handle h;
    env_init(&e);
    wmain_init(&m, 3, CORO_FIRST_EXCEPTION, CORO_NO_TIMEOUT);
    m.w.futs[0] = coro_task_future(kid_start(&e, 0, 0.005, 1, 0));
    m.w.futs[1] = coro_task_future(kid_start(&e, 1, 0.02, 0, E1));
    m.w.futs[2] = coro_task_future(kid_start(&e, 2, LONG, 3, 0));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.ndone, 2);
    assert_memory_equal(m.w.done, "\1\1\0", 3);
    env_close(&e);

    /* a cancelled one is no exception: it waits for all */
    env_init(&e);
    wmain_init(&m, 2, CORO_FIRST_EXCEPTION, CORO_NO_TIMEOUT);
    m.w.futs[0] = coro_task_future(kid_start(&e, 0, LONG, 1, 0));
    m.w.futs[1] = coro_task_future(kid_start(&e, 1, 0.03, 2, 0));
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(&e.loop, &h, 0.005, cancel_cb, &e.tasks[0]), 0);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.ndone, 2);
    assert_int_equal(coro_task_cancelled(&e.tasks[0]), 1);
    assert_int_equal(coro_task_done(&e.tasks[1]), 1);
    env_close(&e);
}

/* Futures already done are reported after one pass (callbacks are
 * scheduled, as asyncio). */
static void test_wait_already_done(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    coro_future f[2];
    env_init(&e);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(coro_future_init(&f[i], &e.loop), 0);
        assert_int_equal(coro_future_set_result(&f[i], coro_int(i)), 0);
    }
    wmain_init(&m, 2, CORO_ALL_COMPLETED, 0);
    m.w.futs[0] = &f[0];
    m.w.futs[1] = &f[1];
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.ndone, 2);
    env_close(&e);
}

/* Cancel at wait's suspension point: the await fails, the futures and the
 * timer are left alone / disarmed. */
static void test_wait_cancelled(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    env_init(&e);
    wmain_init(&m, 2, CORO_ALL_COMPLETED, 5.0);
    m.w.futs[0] = coro_task_future(kid_start(&e, 0, 0.03, 1, 0));
    m.w.futs[1] = coro_task_future(kid_start(&e, 1, 0.03, 2, 0));
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(live_timers(&e.loop), 3); /* two kids' sleeps, wait's timer */
    assert_int_equal(coro_task_cancel(&mt), 1);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), 0);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(live_timers(&e.loop), 2);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 0)), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 1)), 0);
    env_close(&e);
}

/* The timer fired and was queued behind the task's wakeup: the wait's
 * cleanup cancels it, which takes it back from the ready queue, so the wait
 * returns in that same pass and the timer never runs. */
static void test_wait_timer_in_flight(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    coro_future f[2];
    env_init(&e);
    for (int i = 0; i < 2; i++)
        assert_int_equal(coro_future_init(&f[i], &e.loop), 0);
    wmain_init(&m, 2, CORO_FIRST_COMPLETED, 0.05);
    m.w.futs[0] = &f[0];
    m.w.futs[1] = &f[1];
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    int64_t t0 = now_ns();
    run_one_pass(&e.loop); /* armed: deadline in 50 ms */
    assert_int_equal(coro_future_set_result(&f[0], coro_int(1)), 0);
    run_one_pass(&e.loop); /* f[0]'s callback: the task's wakeup is queued */
    spin_to(t0 + 70 * MS);
    run_one_pass(&e.loop); /* the timer joins behind the wakeup, which takes it back */
    assert_int_equal(coro_task_done(&mt), 1);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.ndone, 1);
    env_close(&e);
}

static void test_wait_bad_arguments(void **state)
{
    (void)state;
    struct env e;
    struct wmain m;
    coro_task mt;
    coro_wait_op op;
    coro_future f;
    coro_future *futs[1];
    coro_child_node nodes[1];
    env_init(&e);
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    futs[0] = &f;
    assert_non_null(coro_wait(&op, futs, 1, nodes, NULL, CORO_ALL_COMPLETED, 1));
    assert_null(coro_wait(NULL, futs, 1, nodes, NULL, CORO_ALL_COMPLETED, 1));
    assert_null(coro_wait(&op, futs, 0, nodes, NULL, CORO_ALL_COMPLETED, 1)); /* empty */
    assert_null(coro_wait(&op, NULL, 1, nodes, NULL, CORO_ALL_COMPLETED, 1));
    assert_null(coro_wait(&op, futs, 1, NULL, NULL, CORO_ALL_COMPLETED, 1));
    assert_null(coro_wait(&op, futs, 1, nodes, NULL, 7, 1));
    assert_null(coro_wait(&op, futs, 1, nodes, NULL, CORO_ALL_COMPLETED, NAN));
    futs[0] = NULL;
    assert_null(coro_wait(&op, futs, 1, nodes, NULL, CORO_ALL_COMPLETED, 1));
    /* an empty set: the await fails with CORO_EINVAL (asyncio's ValueError) */
    wmain_init(&m, 0, CORO_ALL_COMPLETED, 1);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_EINVAL);
    /* a future of another loop than the awaiting task's */
    coro_loop other;
    coro_future fo;
    assert_int_equal(coro_loop_init(&other, NULL), 0);
    assert_int_equal(coro_future_init(&fo, &other), 0);
    wmain_init(&m, 1, CORO_ALL_COMPLETED, 1);
    m.w.futs[0] = &fo;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_EINVAL);
    assert_null(fo.callbacks);
    assert_int_equal(live_timers(&other), 0);
    assert_int_equal(coro_loop_close(&other), 0);
    env_close(&e);
}

/* ------------------------------------------------------------------------ */
/* as_completed                                                             */
/* ------------------------------------------------------------------------ */

struct acmain {
    coro_frame co;
    CORO_AS_COMPLETED_ITER(ac, NKIDS);
    coro_as_completed_op next;
    double timeout;
    int count; /* how many nexts to make (0: until remaining() is 0) */
    int got;   /* nexts made */
    coro_future *order[NKIDS + 2];
    int errs[NKIDS + 2];
    int init_rc, close_rc;
};

static CORO_FN(acmain_step)
{
    struct acmain *self = CORO_SELF(struct acmain);
    CORO_BEGIN();
    self->init_rc = CORO_AS_COMPLETED_INIT(&self->ac, self->timeout);
    if (self->init_rc)
        CORO_RETURN(coro_none());
    while (self->count ? self->got < self->count : coro_as_completed_remaining(&self->ac.it) > 0) {
        CORO_AWAIT_ERR(coro_as_completed_next(&self->next, &self->ac.it), self->errs[self->got]);
        self->order[self->got] = self->errs[self->got] ? NULL : CORO_RESULT.u.p;
        self->got++;
    }
    self->close_rc = coro_as_completed_close(&self->ac.it);
    CORO_END();
}

static void acmain_init(struct acmain *m, double timeout, int count)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, acmain_step);
    m->timeout = timeout;
    m->count = count;
}

/* 27. completion order, then nothing left */
static void test_as_completed_order(void **state)
{
    (void)state;
    struct env e;
    struct acmain m;
    coro_task mt;
    env_init(&e);
    acmain_init(&m, CORO_NO_TIMEOUT, NKIDS); /* one next too many */
    m.ac.futs[0] = coro_task_future(kid_start(&e, 0, 0.03, 1, 0));
    m.ac.futs[1] = coro_task_future(kid_start(&e, 1, 0.01, 0, E1));
    m.ac.futs[2] = coro_task_future(kid_start(&e, 2, 0.02, 3, 0));
    /* futs[3] unused: the iterator covers 4 here, so use a done future */
    coro_future done;
    assert_int_equal(coro_future_init(&done, &e.loop), 0);
    assert_int_equal(coro_future_set_result(&done, coro_int(0)), 0);
    m.ac.futs[3] = &done;
    m.count = 5;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.init_rc, 0);
    assert_int_equal(m.got, 5);
    assert_ptr_equal(m.order[0], &done);
    assert_ptr_equal(m.order[1], kid_fut(&e, 1));
    assert_int_equal(m.errs[1], 0); /* its error is its own, not next's */
    assert_int_equal(coro_future_error(m.order[1]), E1);
    assert_ptr_equal(m.order[2], kid_fut(&e, 2));
    assert_ptr_equal(m.order[3], kid_fut(&e, 0));
    assert_int_equal(m.errs[4], CORO_ESTATE); /* more nexts than futures */
    assert_int_equal(m.close_rc, 0);
    env_close(&e);
}

/* 27. the timeout is reported for each future left; they are not
 * cancelled */
static void test_as_completed_timeout(void **state)
{
    (void)state;
    struct env e;
    struct acmain m;
    coro_task mt;
    env_init(&e);
    acmain_init(&m, 0.03, 0);
    m.ac.futs[0] = coro_task_future(kid_start(&e, 0, LONG, 1, 0));
    m.ac.futs[1] = coro_task_future(kid_start(&e, 1, 0.005, 2, 0));
    m.ac.futs[2] = coro_task_future(kid_start(&e, 2, 0.01, 3, 0));
    m.ac.futs[3] = coro_task_future(kid_start(&e, 3, LONG, 4, 0));
    int64_t t0 = now_ns();
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_true(since(t0) >= 0.025);
    assert_true(since(t0) < 2.0);
    assert_int_equal(m.got, 4);
    assert_ptr_equal(m.order[0], kid_fut(&e, 1));
    assert_ptr_equal(m.order[1], kid_fut(&e, 2));
    assert_int_equal(m.errs[2], CORO_ETIMEDOUT);
    assert_int_equal(m.errs[3], CORO_ETIMEDOUT);
    assert_int_equal(coro_task_done(&e.tasks[0]), 0); /* still running */
    assert_int_equal(e.kids[0].got, 0);
    assert_int_equal(m.close_rc, 0);
    env_close(&e);
}

/* A future done before the timer runs still comes as itself (its
 * callback was queued first), the pending one as a timeout. */
static void test_as_completed_result_beats_timer(void **state)
{
    (void)state;
    struct env e;
    struct acmain m;
    coro_task mt;
    coro_future f[NKIDS];
    env_init(&e);
    acmain_init(&m, 0, 2);
    for (int i = 0; i < NKIDS; i++) {
        assert_int_equal(coro_future_init(&f[i], &e.loop), 0);
        m.ac.futs[i] = &f[i];
    }
    assert_int_equal(coro_future_set_result(&f[2], coro_int(2)), 0);
    assert_int_equal(coro_future_set_result(&f[3], coro_int(3)), 0);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_ptr_equal(m.order[0], &f[2]);
    assert_ptr_equal(m.order[1], &f[3]);
    assert_int_equal(coro_future_done(&f[0]), 0);
    env_close(&e);
}

/* Cancel at next's suspension point: the await fails, nothing is lost, and
 * a second waiter gets what the first was woken for. */
struct acnext {
    coro_frame co;
    coro_as_completed *it;
    coro_as_completed_op op;
    int err;
    coro_future *fut;
};

static CORO_FN(acnext_step)
{
    struct acnext *self = CORO_SELF(struct acnext);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_as_completed_next(&self->op, self->it), self->err);
    self->fut = self->err ? NULL : CORO_RESULT.u.p;
    CORO_END();
}

static void acnext_init(struct acnext *n, coro_as_completed *it)
{
    memset(n, 0, sizeof *n);
    coro_frame_init(&n->co, acnext_step);
    n->it = it;
}

static void test_as_completed_cancelled_next(void **state)
{
    (void)state;
    struct env e;
    coro_as_completed it;
    coro_future f[2];
    coro_future *futs[2] = { &f[0], &f[1] };
    coro_child_node nodes[2];
    struct acnext a, b, c;
    coro_task ta, tb, tc;
    env_init(&e);
    for (int i = 0; i < 2; i++)
        assert_int_equal(coro_future_init(&f[i], &e.loop), 0);
    assert_int_equal(coro_as_completed_init(&it, futs, 2, nodes, CORO_NO_TIMEOUT), 0);
    assert_int_equal(coro_as_completed_remaining(&it), 2);
    acnext_init(&a, &it);
    acnext_init(&b, &it);
    assert_int_equal(coro_task_init(&ta, &e.loop, &a.co), 0);
    assert_int_equal(coro_task_init(&tb, &e.loop, &b.co), 0);
    run_one_pass(&e.loop); /* both wait, a first */
    /* cancelled while waiting */
    assert_int_equal(coro_task_cancel(&ta), 1);
    run_one_pass(&e.loop);
    assert_int_equal(a.err, CORO_ECANCELLED);
    assert_int_equal(coro_as_completed_remaining(&it), 2);
    /* woken, then cancelled before it ran: b gets it instead */
    acnext_init(&a, &it);
    assert_int_equal(coro_task_init(&ta, &e.loop, &a.co), 0);
    run_one_pass(&e.loop); /* a waits again, behind b */
    assert_int_equal(coro_future_set_result(&f[1], coro_int(1)), 0);
    run_one_pass(&e.loop); /* the callback wakes b (FIFO) */
    assert_int_equal(coro_task_cancel(&tb), 1);
    run_one_pass(&e.loop); /* b is cancelled and passes the wakeup on to a */
    assert_int_equal(b.err, CORO_ECANCELLED);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&ta)), 0);
    assert_int_equal(a.err, 0);
    assert_ptr_equal(a.fut, &f[1]);
    assert_int_equal(coro_as_completed_remaining(&it), 1);
    /* close fails a waiter still there */
    acnext_init(&c, &it);
    assert_int_equal(coro_task_init(&tc, &e.loop, &c.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(coro_as_completed_close(&it), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&tc)), 0);
    assert_int_equal(c.err, CORO_ESTATE);
    assert_int_equal(coro_as_completed_remaining(&it), 0);
    env_close(&e);
}

/* Breaking out early: close says when the loop still holds a callback. */
static void test_as_completed_close_in_flight(void **state)
{
    (void)state;
    struct env e;
    coro_as_completed it;
    coro_future f[2];
    coro_future *futs[2] = { &f[0], &f[1] };
    coro_child_node nodes[2];
    env_init(&e);
    for (int i = 0; i < 2; i++)
        assert_int_equal(coro_future_init(&f[i], &e.loop), 0);
    assert_int_equal(coro_as_completed_init(&it, futs, 2, nodes, 5.0), 0);
    assert_int_equal(live_timers(&e.loop), 1);
    assert_int_equal(coro_future_set_result(&f[0], coro_int(0)), 0); /* callback queued */
    assert_int_equal(coro_as_completed_close(&it), 1);
    assert_int_equal(live_timers(&e.loop), 0);
    run_one_pass(&e.loop);
    assert_int_equal(coro_as_completed_close(&it), 0);
    assert_int_equal(coro_as_completed_remaining(&it), 0);
    assert_int_equal(coro_future_set_result(&f[1], coro_int(1)), 0); /* no callback left */
    run_one_pass(&e.loop);
    env_close(&e);
}

static void test_as_completed_bad_arguments(void **state)
{
    (void)state;
    struct env e;
    coro_as_completed it;
    coro_as_completed_op op;
    coro_future f;
    coro_future *futs[1] = { &f };
    coro_child_node nodes[1];
    struct acnext n;
    coro_task t;
    env_init(&e);
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    assert_int_equal(coro_as_completed_init(NULL, futs, 1, nodes, 1), CORO_EINVAL);
    assert_int_equal(coro_as_completed_init(&it, NULL, 1, nodes, 1), CORO_EINVAL);
    assert_int_equal(coro_as_completed_init(&it, futs, 1, NULL, 1), CORO_EINVAL);
    assert_int_equal(coro_as_completed_init(&it, futs, 1, nodes, NAN), CORO_EINVAL);
    assert_int_equal(coro_as_completed_close(NULL), CORO_EINVAL);
    assert_int_equal(coro_as_completed_remaining(NULL), 0);
    assert_null(coro_as_completed_next(NULL, &it));
    assert_null(coro_as_completed_next(&op, NULL));
    /* empty: nothing to hand out */
    assert_int_equal(coro_as_completed_init(&it, NULL, 0, NULL, 1), 0);
    assert_int_equal(coro_as_completed_remaining(&it), 0);
    acnext_init(&n, &it);
    assert_int_equal(run_main(&e, &t, &n.co), 0);
    assert_int_equal(n.err, CORO_ESTATE);
    assert_int_equal(coro_as_completed_close(&it), 0);
    env_close(&e);
}

/* ------------------------------------------------------------------------ */
/* shield                                                                   */
/* ------------------------------------------------------------------------ */

struct smain {
    coro_frame co;
    coro_shield_op op;
    coro_future *inner;
    int err, done;
    coro_value res;
};

static CORO_FN(smain_step)
{
    struct smain *self = CORO_SELF(struct smain);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_shield(&self->op, self->inner), self->err);
    self->res = CORO_RESULT;
    self->done = 1;
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(self->res);
    CORO_END();
}

static void smain_init(struct smain *m, coro_future *inner)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, smain_step);
    m->inner = inner;
}

/* 28. cancelling the outer leaves the inner running; its result arrives */
static void test_shield_effect(void **state)
{
    (void)state;
    struct env e;
    struct smain m;
    coro_task mt;
    coro_future waiter;
    coro_value v;
    env_init(&e);
    assert_int_equal(coro_future_init(&waiter, &e.loop), 0);
    kid_start(&e, 0, 0, 5, 0);
    e.kids[0].fut = &waiter;
    smain_init(&m, kid_fut(&e, 0));
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    run_one_pass(&e.loop);
    assert_int_equal(coro_task_cancel(&mt), 1);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), CORO_ECANCELLED);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(coro_task_done(&e.tasks[0]), 0); /* untouched */
    assert_int_equal(coro_future_cancelled(&waiter), 0);
    assert_int_equal(coro_future_set_result(&waiter, coro_int(1)), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, kid_fut(&e, 0)), 0);
    assert_int_equal(coro_task_result(&e.tasks[0], &v), 0);
    assert_int_equal(v.u.i, 5);
    TLOG_EXPECT(&e.log, 1);
    env_close(&e);
}

/* 28. cancelling the inner cancels the outer */
static void test_shield_cancel_inner(void **state)
{
    (void)state;
    struct env e;
    struct smain m;
    coro_task mt;
    env_init(&e);
    kid_start(&e, 0, LONG, 5, 0);
    smain_init(&m, kid_fut(&e, 0));
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(coro_task_cancel(&e.tasks[0]), 1);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), CORO_ECANCELLED);
    assert_int_equal(coro_task_cancelled(&mt), 1);
    assert_int_equal(coro_task_cancelled(&e.tasks[0]), 1);
    env_close(&e);
}

/* The inner's outcome passes through: a result, an error, a done future
 * without suspending. */
static void test_shield_outcomes(void **state)
{
    (void)state;
    struct env e;
    struct smain m;
    coro_task mt;
    coro_future f;
    coro_value v;
    env_init(&e);
    smain_init(&m, coro_task_future(kid_start(&e, 0, 0.01, 42, 0)));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.res.u.i, 42);
    smain_init(&m, coro_task_future(kid_start(&e, 1, 0.01, 0, E1)));
    assert_int_equal(run_main(&e, &mt, &m.co), E1);
    /* done already: the outcome in the same step */
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    assert_int_equal(coro_future_set_result(&f, coro_int(9)), 0);
    smain_init(&m, &f);
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(m.done, 1);
    assert_int_equal(coro_task_result(&mt, &v), 0);
    assert_int_equal(v.u.i, 9);
    assert_null(coro_shield(NULL, &f));
    assert_null(coro_shield(&m.op, NULL));
    smain_init(&m, NULL);
    assert_int_equal(run_main(&e, &mt, &m.co), CORO_EINVAL);
    env_close(&e);
}

/* The outer task is cancelled, then the inner completes before the task
 * runs: the shield's callback is queued behind the task's wakeup. The
 * await fails with the cancel (as asyncio) only after letting that callback
 * run (one more pass), and the inner keeps its result. */
static void test_shield_cancel_with_callback_in_flight(void **state)
{
    (void)state;
    struct env e;
    struct smain m;
    coro_task mt;
    coro_future f;
    env_init(&e);
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    smain_init(&m, &f);
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(coro_task_cancel(&mt), 1);                   /* wakeup queued */
    assert_int_equal(coro_future_set_result(&f, coro_int(3)), 0); /* callback behind it */
    run_one_pass(&e.loop); /* the task gets the cancel, and drains */
    assert_int_equal(m.done, 0);
    assert_int_equal(coro_task_done(&mt), 0);
    run_one_pass(&e.loop);
    assert_int_equal(m.done, 1);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(coro_task_done(&mt), 1);
    assert_int_equal(coro_task_cancelled(&mt), 1);
    assert_int_equal(coro_future_result(&f, NULL), 0);
    env_close(&e);
}

/* ------------------------------------------------------------------------ */
/* timeout scopes                                                           */
/* ------------------------------------------------------------------------ */

struct tomain {
    coro_frame co;
    coro_timeout_op to;
    coro_frame *body;
    double secs;
    int64_t when;
    int use_at;
    int err, done, expired, cancelling_after;
    coro_value res;
};

static CORO_FN(tomain_step)
{
    struct tomain *self = CORO_SELF(struct tomain);
    CORO_BEGIN();
    if (self->use_at)
        CORO_AWAIT_ERR(coro_timeout_at(&self->to, self->when, self->body), self->err);
    else
        CORO_AWAIT_ERR(coro_timeout(&self->to, self->secs, self->body), self->err);
    self->res = CORO_RESULT;
    self->done = 1;
    self->expired = coro_timeout_expired(&self->to);
    self->cancelling_after = coro_task_cancelling(coro_current_task(NULL));
    CORO_END();
}

static void tomain_init(struct tomain *m, double secs, coro_frame *body)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, tomain_step);
    m->secs = secs;
    m->body = body;
}

static void tomain_init_at(struct tomain *m, int64_t when, coro_frame *body)
{
    tomain_init(m, 0, body);
    m->use_at = 1;
    m->when = when;
}

static void test_timeout_expires(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    coro_task mt;
    env_init(&e);
    tomain_init(&m, 0.02, kid_init(&e.kids[0], LONG, 1, NULL, 1));
    int64_t t0 = now_ns();
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_true(since(t0) >= 0.015);
    assert_true(since(t0) < 2.0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.expired, 1);
    assert_int_equal(e.kids[0].got, CORO_ECANCELLED); /* the body saw a cancel */
    assert_int_equal(e.kids[0].fin, 1);
    assert_int_equal(m.cancelling_after, 0);
    assert_int_equal(live_timers(&e.loop), 0);
    env_close(&e);
}

static void test_timeout_not_reached(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    coro_task mt;
    env_init(&e);
    tomain_init(&m, 10, kid_init(&e.kids[0], 0.01, 5, NULL, 1));
    int64_t now = coro_loop_time_ns(&e.loop);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 5);
    assert_int_equal(m.expired, 0);
    assert_true(coro_timeout_when(&m.to) > now + 5000 * MS);
    assert_int_equal(live_timers(&e.loop), 0); /* disarmed */
    /* no deadline: nothing armed at all */
    tomain_init(&m, CORO_NO_TIMEOUT, kid_init(&e.kids[0], 0.01, 6, NULL, 1));
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(live_timers(&e.loop), 1); /* the body's sleep only */
    assert_int_equal(coro_timeout_when(&m.to), CORO_NO_DEADLINE);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), 0);
    assert_int_equal(m.res.u.i, 6);
    env_close(&e);
}

static void test_timeout_at(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    coro_task mt;
    env_init(&e);
    int64_t when = coro_loop_time_ns(&e.loop) + 20 * MS;
    tomain_init_at(&m, when, kid_init(&e.kids[0], LONG, 1, NULL, 1));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_true(coro_loop_time_ns(&e.loop) >= when);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(coro_timeout_when(&m.to), when);
    tomain_init_at(&m, CORO_NO_DEADLINE, kid_init(&e.kids[0], 0, 2, NULL, 1));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 2);
    env_close(&e);
}

/* A deadline of 0 or in the past fires before the body's next step, even
 * a sleep(0) (asyncio: reschedule uses call_soon). */
static void test_timeout_zero_and_past(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    coro_task mt;
    const double secs[] = { 0, -11 };
    const double body[] = { LONG, 0 };
    env_init(&e);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            tomain_init(&m, secs[i], kid_init(&e.kids[0], body[j], 1, NULL, 1));
            assert_int_equal(run_main(&e, &mt, &m.co), 0);
            assert_int_equal(m.err, CORO_ETIMEDOUT);
            assert_int_equal(m.expired, 1);
            assert_int_equal(m.cancelling_after, 0);
        }
    env_close(&e);
}

/* The body catches the timeout's cancel: its own outcome stands (a value,
 * or an error raised by its cleanup), and the scope still reads expired. */
static void test_timeout_body_outcome_wins(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    coro_task mt;
    env_init(&e);
    tomain_init(&m, 0.01, kid_init(&e.kids[0], LONG, 1, NULL, 1));
    e.kids[0].catch_ = 1;
    e.kids[0].catch_value = 7;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 7);
    assert_int_equal(m.expired, 1);
    assert_int_equal(m.cancelling_after, 0);
    /* test_foreign_exception_on_timeout */
    tomain_init(&m, 0.01, kid_init(&e.kids[0], LONG, 1, NULL, 1));
    e.kids[0].fin_err = E1;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, E1);
    assert_int_equal(m.expired, 1);
    assert_int_equal(m.cancelling_after, 0);
    /* test_foreign_exception_passed */
    tomain_init(&m, 10, kid_init(&e.kids[0], 0, 0, NULL, 1));
    e.kids[0].err = E2;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, E2);
    assert_int_equal(m.expired, 0);
    env_close(&e);
}

/* A body that cancels its own task, then sleeps (optionally first nesting
 * another scope). */
struct selfcancel {
    coro_frame co;
    struct nap nap;
};

static CORO_FN(selfcancel_step)
{
    struct selfcancel *self = CORO_SELF(struct selfcancel);
    CORO_BEGIN();
    coro_task_cancel(coro_current_task(NULL));
    CORO_AWAIT(nap(&self->nap, LONG));
    CORO_END();
}

static coro_frame *selfcancel_init(struct selfcancel *s)
{
    coro_frame_init(&s->co, selfcancel_step);
    return &s->co;
}

/* 32. a foreign cancel inside an unexpired scope stays a cancel */
static void test_timeout_foreign_cancel(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    struct selfcancel s;
    coro_task mt;
    env_init(&e);
    tomain_init(&m, 10, selfcancel_init(&s));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(m.expired, 0);
    assert_int_equal(m.cancelling_after, 1); /* the foreign request stays */
    env_close(&e);
}

/* Scopes inside scopes: `mid` runs as the outer scope's body, awaits the
 * inner scope around `body`, records what the inner gave, and passes it on. */
struct mid {
    coro_frame co;
    coro_timeout_op inner;
    coro_frame *body;
    double secs;
    int64_t when;
    int use_at, err, expired;
};

static CORO_FN(mid_step)
{
    struct mid *self = CORO_SELF(struct mid);
    CORO_BEGIN();
    if (self->use_at)
        CORO_AWAIT_ERR(coro_timeout_at(&self->inner, self->when, self->body), self->err);
    else
        CORO_AWAIT_ERR(coro_timeout(&self->inner, self->secs, self->body), self->err);
    self->expired = coro_timeout_expired(&self->inner);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_END();
}

static coro_frame *mid_init(struct mid *md, double secs, coro_frame *body)
{
    memset(md, 0, sizeof *md);
    coro_frame_init(&md->co, mid_step);
    md->secs = secs;
    md->body = body;
    return &md->co;
}

/* 32. nested equal deadlines: only the outermost reports the timeout, the
 * inner one propagates the cancel; both expired; the task is not left
 * cancelled (test_nested_timeouts) */
static void test_timeout_nested_equal_deadlines(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    struct mid md;
    coro_task mt;
    env_init(&e);
    int64_t when = coro_loop_time_ns(&e.loop) + 20 * MS;
    mid_init(&md, 0, kid_init(&e.kids[0], LONG, 1, NULL, 1));
    md.use_at = 1;
    md.when = when;
    tomain_init_at(&m, when, &md.co);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(md.err, CORO_ECANCELLED);
    assert_int_equal(md.expired, 1);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.expired, 1);
    assert_int_equal(m.cancelling_after, 0);
    assert_int_equal(coro_task_cancelled(&mt), 0);
    env_close(&e);
}

/* The outer deadline passes while the loop is busy inside the inner one:
 * the inner scope is not expired and passes the cancel on; the outer one
 * reports (test_nested_timeouts_concurrent). And the other way round: the
 * inner one expires and its timeout is caught, then the outer one expires
 * around the next await. */
struct spinner {
    coro_frame co;
    struct nap nap;
    int64_t spin;
};

static CORO_FN(spinner_step)
{
    struct spinner *self = CORO_SELF(struct spinner);
    CORO_BEGIN();
    spin_to(now_ns() + self->spin); /* busy: the clock moves on */
    CORO_AWAIT(nap(&self->nap, LONG));
    CORO_END();
}

struct catcher { /* awaits mid, catches ETIMEDOUT, then sleeps */
    coro_frame co;
    struct mid *md;
    struct nap nap;
    int err;
};

static CORO_FN(catcher_step)
{
    struct catcher *self = CORO_SELF(struct catcher);
    CORO_BEGIN();
    CORO_AWAIT_ERR(&self->md->co, self->err);
    if (self->err != CORO_ETIMEDOUT)
        CORO_RAISE(self->err);
    CORO_AWAIT(nap(&self->nap, LONG));
    CORO_END();
}

static void test_timeout_nested_concurrent(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    struct mid md;
    struct spinner sp;
    struct catcher c;
    coro_task mt;
    env_init(&e);
    memset(&sp, 0, sizeof sp);
    coro_frame_init(&sp.co, spinner_step);
    sp.spin = 10 * MS;
    tomain_init(&m, 0.002, mid_init(&md, 0.5, &sp.co));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(md.err, CORO_ECANCELLED);
    assert_int_equal(md.expired, 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.cancelling_after, 0);

    /* the inner one expires first and is caught (test_nested_timeouts_loop_busy) */
    coro_frame_init(&sp.co, spinner_step);
    sp.spin = 0;
    mid_init(&md, 0.005, &sp.co);
    memset(&c, 0, sizeof c);
    coro_frame_init(&c.co, catcher_step);
    c.md = &md;
    tomain_init(&m, 0.04, &c.co);
    int64_t t0 = now_ns();
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_true(since(t0) < 2.0);
    assert_int_equal(md.err, CORO_ETIMEDOUT);
    assert_int_equal(c.err, CORO_ETIMEDOUT);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.cancelling_after, 0);
    env_close(&e);
}

/* 32. the enclosing task is not left cancelled: it catches the timeout and
 * finishes normally (test_outer_task_is_not_cancelled) */
struct outer_catch {
    coro_frame co;
    coro_timeout_op to;
    struct kid k;
    int err, cancelling;
};

static CORO_FN(outer_catch_step)
{
    struct outer_catch *self = CORO_SELF(struct outer_catch);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_timeout(&self->to, 0.001, kid_init(&self->k, LONG, 0, NULL, 0)), self->err);
    self->cancelling = coro_task_cancelling(coro_current_task(NULL));
    CORO_SLEEP(0); /* not cancelled at its next await either */
    CORO_RETURN(coro_int(self->err == CORO_ETIMEDOUT));
    CORO_END();
}

static void test_timeout_outer_task_not_cancelled(void **state)
{
    (void)state;
    struct env e;
    struct outer_catch o;
    coro_task t;
    coro_value v;
    env_init(&e);
    memset(&o, 0, sizeof o);
    coro_frame_init(&o.co, outer_catch_step);
    assert_int_equal(run_main(&e, &t, &o.co), 0);
    assert_int_equal(coro_task_cancelled(&t), 0);
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.u.i, 1);
    assert_int_equal(o.cancelling, 0);
    env_close(&e);
}

/* A task that caught a cancel of its own (cancelling() == 1 at entry):
 * a timeout still reports as one, a new cancel still as a cancel
 * (test_timeout_after_cancellation, test_cancel_in_timeout_after_cancellation). */
struct after_cancel {
    coro_frame co;
    coro_timeout_op to;
    struct kid k;
    struct selfcancel s;
    struct nap nap;
    int mode, first, err;
};

static CORO_FN(after_cancel_step)
{
    struct after_cancel *self = CORO_SELF(struct after_cancel);
    CORO_BEGIN();
    coro_task_cancel(coro_current_task(NULL));
    CORO_AWAIT_ERR(nap(&self->nap, LONG), self->first);
    if (self->mode == 0)
        CORO_AWAIT_ERR(coro_timeout(&self->to, 0, kid_init(&self->k, LONG, 0, NULL, 0)), self->err);
    else
        CORO_AWAIT_ERR(coro_timeout(&self->to, 1.0, selfcancel_init(&self->s)), self->err);
    CORO_END();
}

static void test_timeout_after_cancellation(void **state)
{
    (void)state;
    struct env e;
    struct after_cancel a;
    coro_task t;
    env_init(&e);
    for (int mode = 0; mode < 2; mode++) {
        memset(&a, 0, sizeof a);
        coro_frame_init(&a.co, after_cancel_step);
        a.mode = mode;
        assert_int_equal(run_main(&e, &t, &a.co), 0);
        assert_int_equal(a.first, CORO_ECANCELLED);
        assert_int_equal(a.err, mode == 0 ? CORO_ETIMEDOUT : CORO_ECANCELLED);
    }
    env_close(&e);
}

/* A body that reschedules its own scope (and checks it cannot once the
 * scope expired). */
struct resched {
    coro_frame co;
    coro_timeout_op *scope;
    int64_t to;
    double secs;
    int rc, rc_after, got;
    struct nap nap;
};

static CORO_FN(resched_step)
{
    struct resched *self = CORO_SELF(struct resched);
    CORO_BEGIN();
    self->rc = coro_timeout_reschedule(self->scope, self->to);
    CORO_AWAIT_ERR(nap(&self->nap, self->secs), self->got);
    self->rc_after = coro_timeout_reschedule(self->scope, CORO_NO_DEADLINE);
    if (self->got)
        CORO_RAISE(self->got);
    CORO_RETURN(coro_int(3));
    CORO_END();
}

static void test_timeout_reschedule(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    struct resched r;
    coro_task mt;
    env_init(&e);
    /* earlier: from 10 s to 20 ms */
    memset(&r, 0, sizeof r);
    coro_frame_init(&r.co, resched_step);
    r.scope = &m.to;
    r.secs = LONG;
    tomain_init(&m, 10, &r.co);
    r.to = coro_loop_time_ns(&e.loop) + 20 * MS;
    int64_t t0 = now_ns();
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_true(since(t0) >= 0.015);
    assert_true(since(t0) < 2.0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(coro_timeout_when(&m.to), r.to);
    assert_int_equal(r.rc_after, CORO_ESTATE); /* expired: can't move it */
    /* disabled: the body outlives the first deadline */
    memset(&r, 0, sizeof r);
    coro_frame_init(&r.co, resched_step);
    r.scope = &m.to;
    r.secs = 0.03;
    r.to = CORO_NO_DEADLINE;
    tomain_init(&m, 0.01, &r.co);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 3);
    assert_int_equal(m.expired, 0);
    assert_int_equal(coro_timeout_when(&m.to), CORO_NO_DEADLINE);
    assert_int_equal(r.rc_after, 0);
    /* not running */
    assert_int_equal(coro_timeout_reschedule(&m.to, 0), CORO_ESTATE);
    assert_int_equal(coro_timeout_reschedule(NULL, 0), CORO_EINVAL);
    assert_int_equal(coro_timeout_when(NULL), CORO_NO_DEADLINE);
    assert_int_equal(coro_timeout_expired(NULL), 0);
    env_close(&e);
}

/* A reschedule while the timer's run is already queued: the run looks at
 * the new deadline and arms the timer again instead of expiring. */
struct resched_cb {
    coro_timeout_op *scope;
    int64_t to;
    int rc;
};

static int resched_cb(void *arg)
{
    struct resched_cb *r = arg;
    r->rc = coro_timeout_reschedule(r->scope, r->to);
    return 0;
}

static void test_timeout_reschedule_while_queued(void **state)
{
    (void)state;
    struct env e;
    struct tomain m;
    coro_task mt;
    coro_future f;
    coro_handle h;
    struct resched_cb r;
    env_init(&e);
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    kid_init(&e.kids[0], 0, 4, NULL, 1);
    e.kids[0].fut = &f;
    tomain_init(&m, 0.01, &e.kids[0].co);
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    spin_to(now_ns() + 15 * MS); /* the deadline passed; the next poll queues the timer */
    r.scope = &m.to;
    r.to = coro_loop_time_ns(&e.loop) + 30 * MS;
    coro_handle_init(&h);
    assert_int_equal(coro_call_soon(&e.loop, &h, resched_cb, &r), 0); /* runs first */
    run_one_pass(&e.loop);
    assert_int_equal(r.rc, 0);
    assert_int_equal(coro_timeout_expired(&m.to), 0); /* moved, not expired */
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), 0);
    assert_true(coro_loop_time_ns(&e.loop) >= r.to);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    env_close(&e);
}

/* The body finishes in the pass that queued the timer's run: the scope
 * cancels that run, which takes it back from the ready queue, so the scope
 * returns in that pass and a cancel queued behind finds the task done. */
static void test_timeout_timer_in_flight(void **state)
{
    (void)state;
    for (int cancel = 0; cancel < 2; cancel++) {
        struct env e;
        struct tomain m;
        coro_task mt;
        coro_future f;
        coro_handle h;
        env_init(&e);
        assert_int_equal(coro_future_init(&f, &e.loop), 0);
        kid_init(&e.kids[0], 0, 4, NULL, 1);
        e.kids[0].fut = &f;
        tomain_init(&m, 10, &e.kids[0].co);
        assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
        run_one_pass(&e.loop);
        assert_int_equal(coro_future_set_result(&f, coro_int(1)), 0); /* wakeup queued */
        assert_int_equal(coro_timeout_reschedule(&m.to, 0), 0);       /* run queued behind */
        if (cancel) {
            coro_handle_init(&h);
            assert_int_equal(coro_call_soon(&e.loop, &h, cancel_cb, &mt), 0);
        }
        run_one_pass(&e.loop); /* the body returns; the scope takes its timer back */
        assert_int_equal(m.done, 1);
        assert_int_equal(m.err, 0); /* the cancel came after: the task was done */
        assert_int_equal(m.res.u.i, 4);
        assert_int_equal(m.expired, 0); /* its run was cancelled: it never fired */
        assert_int_equal(coro_task_done(&mt), 1);
        env_close(&e);
    }
}

/* Outside a task: CORO_ESTATE and the body never starts. */
static void test_timeout_outside_task(void **state)
{
    (void)state;
    coro_timeout_op op;
    struct kid k;
    coro_gen g;
    kid_init(&k, 0, 1, NULL, 1);
    assert_int_equal(coro_gen_init(&g, coro_timeout(&op, 1, &k.co)), 0);
    assert_int_equal(coro_gen_next(&g, NULL), CORO_ESTATE);
    assert_int_equal(k.started, 0);
    assert_null(coro_timeout(NULL, 1, &k.co));
    assert_null(coro_timeout(&op, 1, NULL));
    assert_null(coro_timeout(&op, NAN, &k.co));
    assert_null(coro_timeout_at(NULL, 0, &k.co));
    assert_null(coro_timeout_at(&op, 0, NULL));
}

/* ------------------------------------------------------------------------ */
/* wait_for                                                                 */
/* ------------------------------------------------------------------------ */

struct wfmain {
    coro_frame co;
    coro_wait_for_op op;
    coro_frame *body;
    coro_future *fut;
    double secs;
    struct kid *watch; /* its cleanup state when the await returned */
    int err, done, watch_fin_done, cancelling_after;
    coro_value res;
};

static CORO_FN(wfmain_step)
{
    struct wfmain *self = CORO_SELF(struct wfmain);
    CORO_BEGIN();
    if (self->fut)
        CORO_AWAIT_ERR(coro_wait_for_future(&self->op, self->secs, self->fut), self->err);
    else
        CORO_AWAIT_ERR(coro_wait_for(&self->op, self->secs, self->body), self->err);
    self->res = CORO_RESULT;
    self->done = 1;
    self->watch_fin_done = self->watch ? self->watch->fin_done : -1;
    self->cancelling_after = coro_task_cancelling(coro_current_task(NULL));
    CORO_END();
}

static void wfmain_init(struct wfmain *m, double secs, coro_frame *body, coro_future *fut)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, wfmain_step);
    m->secs = secs;
    m->body = body;
    m->fut = fut;
}

/* 29. on timeout the inner task is cancelled, its cleanup (which itself
 * sleeps) finishes, then the timeout is reported */
static void test_wait_for_timeout_waits_for_cleanup(void **state)
{
    (void)state;
    struct env e;
    struct wfmain m;
    coro_task mt;
    env_init(&e);
    kid_start(&e, 0, LONG, 1, 0);
    e.kids[0].fin_secs = 0.02;
    wfmain_init(&m, 0.02, NULL, kid_fut(&e, 0));
    m.watch = &e.kids[0];
    int64_t t0 = now_ns();
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_true(since(t0) >= 0.035);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.watch_fin_done, 1);
    assert_int_equal(coro_task_cancelled(&e.tasks[0]), 1);
    assert_int_equal(m.cancelling_after, 0);
    /* the coroutine form: the body runs in the caller's task */
    wfmain_init(&m, 0.02, kid_init(&e.kids[1], LONG, 1, NULL, 2), NULL);
    e.kids[1].fin_secs = 0.01;
    m.watch = &e.kids[1];
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.watch_fin_done, 1);
    assert_int_equal(m.cancelling_after, 0);
    env_close(&e);
}

static void test_wait_for_in_time(void **state)
{
    (void)state;
    struct env e;
    struct wfmain m;
    coro_task mt;
    env_init(&e);
    wfmain_init(&m, 1.0, NULL, coro_task_future(kid_start(&e, 0, 0.01, 11, 0)));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 11);
    wfmain_init(&m, 1.0, NULL, coro_task_future(kid_start(&e, 1, 0.01, 0, E1)));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, E1);
    wfmain_init(&m, 1.0, kid_init(&e.kids[2], 0.01, 12, NULL, 3), NULL);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 12);
    wfmain_init(&m, CORO_NO_TIMEOUT, kid_init(&e.kids[2], 0.01, 13, NULL, 3), NULL);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.res.u.i, 13);
    assert_int_equal(live_timers(&e.loop), 0);
    env_close(&e);
}

/* 30. wait_for(coroutine, 0) times out without starting it; wait_for(done
 * future, 0) returns its outcome; a pending one is cancelled and waited. */
static void test_wait_for_zero(void **state)
{
    (void)state;
    struct env e;
    struct wfmain m;
    coro_task mt;
    coro_future f;
    env_init(&e);
    for (int i = 0; i < 2; i++) {
        wfmain_init(&m, i ? -1 : 0, kid_init(&e.kids[0], 0, 1, NULL, 1), NULL);
        assert_int_equal(run_main(&e, &mt, &m.co), 0);
        assert_int_equal(m.err, CORO_ETIMEDOUT);
        assert_int_equal(e.kids[0].started, 0);
        assert_int_equal(e.kids[0].co.resume, 0);
    }
    /* done futures */
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    assert_int_equal(coro_future_set_result(&f, coro_int(21)), 0);
    wfmain_init(&m, 0, NULL, &f);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 21);
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    assert_int_equal(coro_future_set_error(&f, E2), 0);
    wfmain_init(&m, 0, NULL, &f);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, E2);
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    assert_int_equal(coro_future_cancel(&f), 1);
    wfmain_init(&m, 0, NULL, &f);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_ECANCELLED); /* cancelled before: not a timeout */
    /* pending: a future is cancelled, a task too and waited for */
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    wfmain_init(&m, 0, NULL, &f);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(coro_future_cancelled(&f), 1);
    kid_start(&e, 1, LONG, 1, 0);
    e.kids[1].fin_secs = 0.01;
    run_one_pass(&e.loop);
    wfmain_init(&m, 0, NULL, kid_fut(&e, 1));
    m.watch = &e.kids[1];
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.watch_fin_done, 1);
    /* a pending task that catches the cancel: its value */
    kid_start(&e, 2, LONG, 1, 0);
    e.kids[2].catch_ = 1;
    e.kids[2].catch_value = 8;
    wfmain_init(&m, 0, NULL, kid_fut(&e, 2));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 8);
    env_close(&e);
}

/* 31. cancelling the caller of wait_for cancels the inner and waits for
 * it; at each suspension point: the scope's body, and the immediate wait */
static void test_wait_for_caller_cancelled(void **state)
{
    (void)state;
    struct env e;
    struct wfmain m;
    coro_task mt;
    coro_handle h;
    env_init(&e);
    /* waiting on a task under the scope */
    kid_start(&e, 0, LONG, 1, 0);
    e.kids[0].fin_secs = 0.01;
    wfmain_init(&m, 5.0, NULL, kid_fut(&e, 0));
    m.watch = &e.kids[0];
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(coro_task_cancel(&mt), 1);
    assert_int_equal(coro_task_cancelling(&e.tasks[0]), 1); /* reached the inner at once */
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), 0);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(m.watch_fin_done, 1);
    assert_int_equal(coro_task_cancelled(&e.tasks[0]), 1);
    assert_int_equal(m.cancelling_after, 1);
    assert_int_equal(live_timers(&e.loop), 0);
    /* the coroutine form */
    wfmain_init(&m, 5.0, kid_init(&e.kids[1], LONG, 1, NULL, 2), NULL);
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    run_one_pass(&e.loop);
    assert_int_equal(coro_task_cancel(&mt), 1);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), 0);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(e.kids[1].fin, 1);
    /* during wait_for(task, 0)'s wait for the cancelled task's cleanup */
    kid_start(&e, 2, LONG, 1, 0);
    e.kids[2].fin_secs = 0.03;
    run_one_pass(&e.loop);
    wfmain_init(&m, 0, NULL, kid_fut(&e, 2));
    assert_int_equal(coro_task_init(&mt, &e.loop, &m.co), 0);
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(&e.loop, &h, 0.01, cancel_cb, &mt), 0);
    assert_int_equal(coro_loop_run_until_complete(&e.loop, coro_task_future(&mt)), 0);
    assert_int_equal(m.err, CORO_ECANCELLED); /* someone else's cancel: not a timeout */
    assert_int_equal(coro_task_done(&e.tasks[2]), 1);
    env_close(&e);
}

/* 31. a result that races the timeout is returned: the future completes
 * and the timer fires in the same pass (the loop was busy past both), so
 * the timer's cancel reaches the task after the future's result. */
struct race {
    coro_frame co;
    coro_loop *loop;
    coro_wait_for_op op;
    coro_future fut;
    coro_handle spin, set;
    int64_t t0;
    int err, cancelling_after;
    coro_value res;
};

static int race_spin(void *arg)
{
    struct race *r = arg;
    spin_to(r->t0 + 60 * MS);
    return 0;
}

static int race_set(void *arg)
{
    struct race *r = arg;
    return coro_future_set_result(&r->fut, coro_int(77));
}

static CORO_FN(race_step)
{
    struct race *self = CORO_SELF(struct race);
    CORO_BEGIN();
    coro_future_init(&self->fut, self->loop);
    self->t0 = coro_loop_time_ns(self->loop);
    coro_call_at(self->loop, &self->spin, self->t0 + 20 * MS, race_spin, self);
    coro_call_at(self->loop, &self->set, self->t0 + 30 * MS, race_set, self);
    CORO_AWAIT_ERR(coro_wait_for_future(&self->op, 0.04, &self->fut), self->err);
    self->res = CORO_RESULT;
    self->cancelling_after = coro_task_cancelling(coro_current_task(NULL));
    CORO_END();
}

static void test_wait_for_result_races_timeout(void **state)
{
    (void)state;
    struct env e;
    struct race r;
    coro_task t;
    env_init(&e);
    memset(&r, 0, sizeof r);
    coro_frame_init(&r.co, race_step);
    r.loop = &e.loop;
    coro_handle_init(&r.spin);
    coro_handle_init(&r.set);
    assert_int_equal(run_main(&e, &t, &r.co), 0);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.res.u.i, 77);
    assert_int_equal(r.cancelling_after, 0);
    assert_int_equal(coro_task_cancelled(&t), 0);
    env_close(&e);
}

/* The inner catches the cancel and returns: its value, not a timeout
 * (test_wait_for_cancellation_race_condition) */
static void test_wait_for_inner_catches(void **state)
{
    (void)state;
    struct env e;
    struct wfmain m;
    coro_task mt;
    env_init(&e);
    kid_start(&e, 0, LONG, 1, 0);
    e.kids[0].catch_ = 1;
    e.kids[0].catch_value = 5;
    wfmain_init(&m, 0.01, NULL, kid_fut(&e, 0));
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 5);
    assert_int_equal(m.cancelling_after, 0);
    wfmain_init(&m, 0.01, kid_init(&e.kids[1], LONG, 1, NULL, 2), NULL);
    e.kids[1].catch_ = 1;
    e.kids[1].catch_value = 6;
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 6);
    env_close(&e);
}

static void test_wait_for_bad_arguments(void **state)
{
    (void)state;
    struct env e;
    struct wfmain m;
    coro_task mt;
    coro_wait_for_op op;
    coro_future f;
    struct kid k;
    env_init(&e);
    assert_int_equal(coro_future_init(&f, &e.loop), 0);
    kid_init(&k, 0, 1, NULL, 1);
    assert_null(coro_wait_for(NULL, 1, &k.co));
    assert_null(coro_wait_for(&op, 1, NULL));
    assert_null(coro_wait_for(&op, NAN, &k.co));
    assert_null(coro_wait_for_future(NULL, 1, &f));
    assert_null(coro_wait_for_future(&op, 1, NULL));
    assert_null(coro_wait_for_future(&op, NAN, &f));
    wfmain_init(&m, NAN, &k.co, NULL);
    assert_int_equal(run_main(&e, &mt, &m.co), 0);
    assert_int_equal(m.err, CORO_EINVAL);
    assert_int_equal(k.started, 0);
    env_close(&e);
}

/* ------------------------------------------------------------------------ */
/* task groups                                                              */
/* ------------------------------------------------------------------------ */

struct tgenv {
    struct env e;
    coro_group_task g[NKIDS];
};

/* The body: starts kids 0..nkids-1 (initialised by the test) into the
 * group, cancels one if asked, sleeps, tries a late start, returns. */
struct tgbody {
    coro_frame co;
    coro_task_group_op *tg;
    struct tgenv *t;
    int nkids, spawn;
    coro_task *spawned[NKIDS];
    int rc[NKIDS];
    int cancel_kid; /* 1-based */
    double secs;
    int catch_, raise_, value;
    int late, late_rc; /* start kid `late` (1-based) after the sleep */
    int got;
    int spawn_self, self_rc;
    struct nap nap;
};

static CORO_FN(tgbody_step)
{
    struct tgbody *self = CORO_SELF(struct tgbody);
    CORO_BEGIN();
    for (int i = 0; i < self->nkids; i++) {
        coro_frame *root = &self->t->e.kids[i].co;
        if (self->spawn)
            self->rc[i] = coro_task_group_spawn(self->tg, root, &self->spawned[i]);
        else
            self->rc[i] = coro_task_group_start(self->tg, &self->t->g[i], root);
    }
    if (self->spawn_self)
        self->self_rc = coro_task_group_spawn(self->tg, &self->co, NULL);
    if (self->cancel_kid)
        coro_task_cancel(&self->t->g[self->cancel_kid - 1].task);
    if (self->secs > 0)
        CORO_AWAIT_ERR(nap(&self->nap, self->secs), self->got);
    if (self->late)
        self->late_rc = coro_task_group_start(self->tg, &self->t->g[self->late - 1],
                                              &self->t->e.kids[self->late - 1].co);
    if (self->got && !self->catch_)
        CORO_RAISE(self->got);
    if (self->raise_)
        CORO_RAISE(self->raise_);
    CORO_RETURN(coro_int(self->value));
    CORO_END();
}

struct tgmain {
    coro_frame co;
    coro_task_group_op tg;
    struct tgbody body;
    int errs[NKIDS];
    int err, after, after_err, cancelling_after;
    coro_value res;
    struct nap nap;
};

static CORO_FN(tgmain_step)
{
    struct tgmain *self = CORO_SELF(struct tgmain);
    CORO_BEGIN();
    self->body.tg = &self->tg;
    CORO_AWAIT_ERR(coro_task_group(&self->tg, &self->body.co, self->errs, NKIDS), self->err);
    self->res = CORO_RESULT;
    self->cancelling_after = coro_task_cancelling(coro_current_task(NULL));
    if (self->after)
        CORO_AWAIT_ERR(nap(&self->nap, 0), self->after_err);
    CORO_END();
}

static void tg_setup(struct tgenv *t, struct tgmain *m, int nkids)
{
    env_init(&t->e);
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, tgmain_step);
    coro_frame_init(&m->body.co, tgbody_step);
    m->body.t = t;
    m->body.nkids = nkids;
}

static coro_task *tg_kid(struct tgenv *t, int i) { return &t->g[i].task; }

/* 41. the group waits for every child; the body's result is the outcome */
static void test_task_group_waits_for_children(void **state)
{
    (void)state;
    struct tgenv t;
    struct tgmain m;
    coro_task mt;
    coro_value v;
    tg_setup(&t, &m, 3);
    kid_init(&t.e.kids[0], 0.03, 1, &t.e.log, 1);
    kid_init(&t.e.kids[1], 0.01, 2, &t.e.log, 2);
    kid_init(&t.e.kids[2], 0.02, 3, &t.e.log, 3);
    m.body.value = 9;
    assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 9);
    TLOG_EXPECT(&t.e.log, 2, 3, 1); /* all done before the group returned */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m.body.rc[i], 0);
        assert_int_equal(coro_task_result(tg_kid(&t, i), &v), 0);
        assert_int_equal(v.u.i, i + 1);
    }
    assert_int_equal(coro_task_group_error_count(&m.tg), 0);
    /* finished: no more tasks */
    kid_init(&t.e.kids[3], 0, 0, NULL, 4);
    assert_int_equal(coro_task_group_start(&m.tg, &t.g[3], &t.e.kids[3].co), CORO_ESTATE);
    assert_int_equal(coro_task_group_spawn(&m.tg, &t.e.kids[3].co, NULL), CORO_ESTATE);
    env_close(&t.e);
}

/* 41. the first failure cancels the siblings and the body; cancelled
 * children are no failures; the parent is not left cancelled */
static void test_task_group_failure_cancels_all(void **state)
{
    (void)state;
    for (int body_done = 0; body_done < 2; body_done++) {
        struct tgenv t;
        struct tgmain m;
        coro_task mt;
        tg_setup(&t, &m, 3);
        kid_init(&t.e.kids[0], 0.01, 0, NULL, 1);
        t.e.kids[0].err = E1;
        kid_init(&t.e.kids[1], LONG, 2, NULL, 2);
        kid_init(&t.e.kids[2], LONG, 3, NULL, 3);
        t.e.kids[2].catch_ = 1; /* returns normally after the cancel */
        m.body.secs = body_done ? 0 : LONG;
        m.after = 1;
        int64_t t0 = now_ns();
        assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
        assert_true(since(t0) < 2.0);
        assert_int_equal(m.err, E1);
        assert_int_equal(coro_task_group_error_count(&m.tg), 1);
        assert_int_equal(m.errs[0], E1);
        assert_int_equal(coro_task_cancelled(tg_kid(&t, 1)), 1);
        assert_int_equal(t.e.kids[2].got, CORO_ECANCELLED);
        assert_int_equal(coro_task_cancelled(tg_kid(&t, 2)), 0);
        if (!body_done)
            assert_int_equal(m.body.got, CORO_ECANCELLED); /* the body was cancelled */
        assert_int_equal(m.cancelling_after, 0);
        assert_int_equal(m.after_err, 0); /* and its next await is not */
        env_close(&t.e);
    }
}

/* 41. every failure is reported, in the order they happened */
static void test_task_group_several_failures(void **state)
{
    (void)state;
    struct tgenv t;
    struct tgmain m;
    coro_task mt;
    tg_setup(&t, &m, 3);
    kid_init(&t.e.kids[0], 0.01, 0, NULL, 1);
    t.e.kids[0].err = E1;
    kid_init(&t.e.kids[1], LONG, 0, NULL, 2);
    t.e.kids[1].fin_err = E2; /* fails in its cleanup when cancelled */
    kid_init(&t.e.kids[2], LONG, 0, NULL, 3);
    m.body.secs = LONG;
    m.body.raise_ = E3; /* after catching the cancel */
    m.body.catch_ = 1;
    assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
    assert_int_equal(m.err, E1);
    assert_int_equal(coro_task_group_error_count(&m.tg), 3);
    assert_int_equal(m.errs[0], E1);
    assert_int_equal(m.errs[1], E2);
    assert_int_equal(m.errs[2], E3); /* the body's comes last */
    assert_int_equal(coro_task_cancelled(tg_kid(&t, 2)), 1);
    env_close(&t.e);
}

/* 41. no task can be added after a failure (nor before the group runs) */
static void test_task_group_no_spawn_after_failure(void **state)
{
    (void)state;
    struct tgenv t;
    struct tgmain m;
    coro_task mt;
    coro_task *out = (coro_task *)&mt;
    tg_setup(&t, &m, 1);
    kid_init(&t.e.kids[0], 0.01, 0, NULL, 1);
    t.e.kids[0].err = E1;
    kid_init(&t.e.kids[1], 0, 2, NULL, 2);
    m.body.secs = LONG;
    m.body.catch_ = 1;
    m.body.late = 2;
    /* not entered yet */
    assert_int_equal(coro_task_group_spawn(&m.tg, &t.e.kids[1].co, &out), CORO_ESTATE);
    assert_null(out);
    assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
    assert_int_equal(m.body.got, CORO_ECANCELLED);
    assert_int_equal(m.body.late_rc, CORO_ESTATE);
    assert_int_equal(t.e.kids[1].started, 0);
    assert_int_equal(m.err, E1);
    env_close(&t.e);
}

/* 41. a cancel from outside cancels every child and the body, and the
 * group ends cancelled; while the body runs, and while the group waits */
static void test_task_group_cancelled_from_outside(void **state)
{
    (void)state;
    for (int body_done = 0; body_done < 2; body_done++) {
        struct tgenv t;
        struct tgmain m;
        coro_task mt;
        tg_setup(&t, &m, 2);
        kid_init(&t.e.kids[0], LONG, 1, NULL, 1);
        kid_init(&t.e.kids[1], LONG, 2, NULL, 2);
        t.e.kids[1].fin_secs = 0.01; /* waited for */
        m.body.secs = body_done ? 0 : LONG;
        assert_int_equal(coro_task_init(&mt, &t.e.loop, &m.co), 0);
        run_one_pass(&t.e.loop);
        assert_int_equal(coro_task_cancel(&mt), 1);
        assert_int_equal(coro_loop_run_until_complete(&t.e.loop, coro_task_future(&mt)), 0);
        assert_int_equal(m.err, CORO_ECANCELLED);
        assert_int_equal(coro_task_cancelled(tg_kid(&t, 0)), 1);
        assert_int_equal(coro_task_cancelled(tg_kid(&t, 1)), 1);
        assert_int_equal(t.e.kids[1].fin_done, 1);
        if (!body_done)
            assert_int_equal(m.body.got, CORO_ECANCELLED);
        assert_int_equal(coro_task_group_error_count(&m.tg), 0);
        assert_int_equal(m.cancelling_after, 1);
        env_close(&t.e);
    }
}

/* An outside cancel and a failure together: the failure is reported, and
 * the cancel is not lost (the task's next await is cancelled). */
static void test_task_group_failure_and_outside_cancel(void **state)
{
    (void)state;
    struct tgenv t;
    struct tgmain m;
    coro_task mt;
    tg_setup(&t, &m, 1);
    kid_init(&t.e.kids[0], LONG, 0, NULL, 1);
    t.e.kids[0].fin_err = E1;
    m.body.secs = LONG;
    m.after = 1;
    assert_int_equal(coro_task_init(&mt, &t.e.loop, &m.co), 0);
    run_one_pass(&t.e.loop);
    assert_int_equal(coro_task_cancel(&mt), 1);
    assert_int_equal(coro_loop_run_until_complete(&t.e.loop, coro_task_future(&mt)), 0);
    assert_int_equal(m.err, E1);
    assert_int_equal(m.errs[0], E1);
    assert_int_equal(m.after_err, CORO_ECANCELLED);
    env_close(&t.e);
}

/* A body failing with an error cancels the children: its error. A child
 * cancelled by the body is no failure. */
static void test_task_group_body_error_and_cancelled_child(void **state)
{
    (void)state;
    struct tgenv t;
    struct tgmain m;
    coro_task mt;
    tg_setup(&t, &m, 2);
    kid_init(&t.e.kids[0], LONG, 1, NULL, 1);
    kid_init(&t.e.kids[1], LONG, 2, NULL, 2);
    m.body.raise_ = E3;
    assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
    assert_int_equal(m.err, E3);
    assert_int_equal(coro_task_group_error_count(&m.tg), 1);
    assert_int_equal(m.errs[0], E3);
    assert_int_equal(coro_task_cancelled(tg_kid(&t, 0)), 1);
    assert_int_equal(coro_task_cancelled(tg_kid(&t, 1)), 1);
    env_close(&t.e);

    tg_setup(&t, &m, 2);
    kid_init(&t.e.kids[0], LONG, 1, NULL, 1);
    kid_init(&t.e.kids[1], 0.01, 2, NULL, 2);
    m.body.cancel_kid = 1;
    m.body.value = 4;
    assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.res.u.i, 4);
    assert_int_equal(coro_task_group_error_count(&m.tg), 0);
    assert_int_equal(coro_task_cancelled(tg_kid(&t, 0)), 1);
    assert_int_equal(coro_task_done(tg_kid(&t, 1)), 1);
    env_close(&t.e);
}

/* coro_task_group_spawn: allocated tasks, kept (released by the caller) or
 * dropped; frames from coro_frame_new are freed with their tasks. */
static void test_task_group_spawn(void **state)
{
    (void)state;
    struct tgenv t;
    struct tgmain m;
    coro_task mt;
    coro_value v;
    tg_setup(&t, &m, 2);
    m.body.spawn = 1;
    kid_init(&t.e.kids[0], 0.01, 1, NULL, 1);
    kid_init(&t.e.kids[1], 0.02, 2, NULL, 2);
    assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(m.body.rc[i], 0);
        assert_non_null(m.body.spawned[i]);
        assert_int_equal(coro_task_result(m.body.spawned[i], &v), 0); /* ours to read */
        assert_int_equal(v.u.i, i + 1);
        coro_task_release(m.body.spawned[i]);
    }
    run_one_pass(&t.e.loop);
    assert_int_equal(t.e.loop.tasks_alive, 0);
    env_close(&t.e);
}

/* Children from coro_frame_new, spawned with out == NULL by a body that
 * uses the group pointer in its frame. */
struct fnbody {
    coro_frame co;
    coro_task_group_op *tg;
    coro_loop *loop;
    int rc[3];
};

static CORO_FN(fnbody_step)
{
    struct fnbody *self = CORO_SELF(struct fnbody);
    CORO_BEGIN();
    for (int i = 0; i < 3; i++) {
        struct kid *k = CORO_FRAME_NEW(self->loop, struct kid, kid_step);
        if (!k)
            CORO_RAISE(CORO_ENOMEM);
        k->secs = 0.005 * i;
        k->value = i;
        k->err = i == 2 ? E2 : 0;
        self->rc[i] = coro_task_group_spawn(self->tg, &k->co, NULL);
    }
    CORO_END();
}

static void test_task_group_spawn_dropped(void **state)
{
    (void)state;
    struct env e;
    struct tgmain m; /* its body is replaced */
    struct fnbody b;
    coro_task mt;
    int errs[1];
    env_init(&e);
    memset(&m, 0, sizeof m);
    memset(&b, 0, sizeof b);
    coro_frame_init(&b.co, fnbody_step);
    b.tg = &m.tg;
    b.loop = &e.loop;
    assert_int_equal(run_main(&e, &mt, coro_task_group(&m.tg, &b.co, errs, 1)), E2); /* as a root */
    assert_int_equal(b.rc[0] | b.rc[1] | b.rc[2], 0);
    assert_int_equal(errs[0], E2);
    run_one_pass(&e.loop);
    run_one_pass(&e.loop);
    assert_int_equal(e.loop.tasks_alive, 0); /* all freed */
    env_close(&e);
}

static void test_task_group_bad_arguments(void **state)
{
    (void)state;
    struct tgenv t;
    struct tgmain m;
    coro_task mt;
    coro_task_group_op g;
    coro_gen gen;
    int errs[1];
    tg_setup(&t, &m, 0);
    kid_init(&t.e.kids[0], 0, 1, NULL, 1);
    assert_null(coro_task_group(NULL, &m.body.co, errs, 1));
    assert_null(coro_task_group(&g, NULL, errs, 1));
    assert_null(coro_task_group(&g, &m.body.co, NULL, 1));
    assert_non_null(coro_task_group(&g, &m.body.co, NULL, 0));
    assert_int_equal(coro_task_group_spawn(NULL, &t.e.kids[0].co, NULL), CORO_EINVAL);
    assert_int_equal(coro_task_group_spawn(&g, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_task_group_start(NULL, &t.g[0], &t.e.kids[0].co), CORO_EINVAL);
    assert_int_equal(coro_task_group_start(&g, NULL, &t.e.kids[0].co), CORO_EINVAL);
    assert_int_equal(coro_task_group_start(&g, &t.g[0], NULL), CORO_EINVAL);
    assert_int_equal(coro_task_group_start(&g, &t.g[0], &t.e.kids[0].co), CORO_ESTATE);
    assert_int_equal(coro_task_group_error_count(NULL), 0);
    /* outside a task: CORO_ESTATE, the body never starts */
    m.body.tg = &g;
    m.body.nkids = 1;
    assert_int_equal(coro_gen_init(&gen, coro_task_group(&g, &m.body.co, NULL, 0)), 0);
    assert_int_equal(coro_gen_next(&gen, NULL), CORO_ESTATE);
    assert_int_equal(m.body.co.resume, 0);
    env_close(&t.e);
    /* a root already running (the body itself) or started is refused */
    tg_setup(&t, &m, 0);
    m.body.spawn_self = 1;
    assert_int_equal(run_main(&t.e, &mt, &m.co), 0);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.body.self_rc, CORO_EINVAL);
    assert_int_equal(coro_task_group_start(&m.tg, &t.g[0], &m.body.co), CORO_ESTATE);
    env_close(&t.e);
}

/* ------------------------------------------------------------------------ */
/* what the core does that group.c works around                             */
/* ------------------------------------------------------------------------ */

/* A timer that fired (moved to the ready queue) and is cancelled before it
 * runs is taken back: it never runs, and the loop holds no pointer to it,
 * so it can be armed again at once (regression: the loop used to keep it
 * queued, marked, until it reached it). */
struct queued_cancel {
    coro_loop *loop;
    coro_handle *victim;
    int cancel_rc, rearm_rc, runs;
};

static int count_cb(void *arg)
{
    ++*(int *)arg;
    return 0;
}

static int cancel_queued(void *arg)
{
    struct queued_cancel *q = arg;
    q->cancel_rc = coro_handle_cancel(q->victim);
    q->rearm_rc = coro_call_later(q->loop, q->victim, 10, count_cb, &q->runs);
    return 0;
}

static void test_cancelled_queued_handle_is_taken_back(void **state)
{
    (void)state;
    coro_loop loop;
    coro_handle first, victim;
    struct queued_cancel q = { &loop, &victim, 0, 0, 0 };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_handle_init(&first);
    coro_handle_init(&victim);
    assert_int_equal(coro_call_soon(&loop, &first, cancel_queued, &q), 0);
    assert_int_equal(coro_call_at(&loop, &victim, 0, count_cb, &q.runs), 0); /* due: queued behind */
    run_one_pass(&loop);
    assert_int_equal(q.cancel_rc, 1);
    assert_int_equal(q.rearm_rc, 0); /* free at once: armed again, 10 s away */
    run_one_pass(&loop);
    assert_int_equal(q.runs, 0); /* the cancelled run never happened */
    assert_int_equal(coro_handle_cancel(&victim), 1);
    assert_int_equal(coro_handle_cancel(&victim), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather_argument_order),
        cmocka_unit_test(test_gather_macro_and_duplicates),
        cmocka_unit_test(test_gather_first_error_others_run_on),
        cmocka_unit_test(test_gather_cancelled_child),
        cmocka_unit_test(test_gather_return_errors),
        cmocka_unit_test(test_gather_empty),
        cmocka_unit_test(test_gather_cancel_broadcast),
        cmocka_unit_test(test_gather_cancel_not_overtaken),
        cmocka_unit_test(test_gather_cancel_children_catch),
        cmocka_unit_test(test_gather_callback_in_flight),
        cmocka_unit_test(test_gather_bad_arguments),
        cmocka_unit_test(test_gather_future_two_awaiters),
        cmocka_unit_test(test_gather_future_cancel),
        cmocka_unit_test(test_gather_future_error_and_close),
        cmocka_unit_test(test_gather_future_empty_and_bad),
        cmocka_unit_test(test_wait_first_completed),
        cmocka_unit_test(test_wait_all_completed),
        cmocka_unit_test(test_wait_timeout_does_not_cancel),
        cmocka_unit_test(test_wait_first_exception),
        cmocka_unit_test(test_wait_already_done),
        cmocka_unit_test(test_wait_cancelled),
        cmocka_unit_test(test_wait_timer_in_flight),
        cmocka_unit_test(test_wait_bad_arguments),
        cmocka_unit_test(test_as_completed_order),
        cmocka_unit_test(test_as_completed_timeout),
        cmocka_unit_test(test_as_completed_result_beats_timer),
        cmocka_unit_test(test_as_completed_cancelled_next),
        cmocka_unit_test(test_as_completed_close_in_flight),
        cmocka_unit_test(test_as_completed_bad_arguments),
        cmocka_unit_test(test_shield_effect),
        cmocka_unit_test(test_shield_cancel_inner),
        cmocka_unit_test(test_shield_outcomes),
        cmocka_unit_test(test_shield_cancel_with_callback_in_flight),
        cmocka_unit_test(test_timeout_expires),
        cmocka_unit_test(test_timeout_not_reached),
        cmocka_unit_test(test_timeout_at),
        cmocka_unit_test(test_timeout_zero_and_past),
        cmocka_unit_test(test_timeout_body_outcome_wins),
        cmocka_unit_test(test_timeout_foreign_cancel),
        cmocka_unit_test(test_timeout_nested_equal_deadlines),
        cmocka_unit_test(test_timeout_nested_concurrent),
        cmocka_unit_test(test_timeout_outer_task_not_cancelled),
        cmocka_unit_test(test_timeout_after_cancellation),
        cmocka_unit_test(test_timeout_reschedule),
        cmocka_unit_test(test_timeout_reschedule_while_queued),
        cmocka_unit_test(test_timeout_timer_in_flight),
        cmocka_unit_test(test_timeout_outside_task),
        cmocka_unit_test(test_wait_for_timeout_waits_for_cleanup),
        cmocka_unit_test(test_wait_for_in_time),
        cmocka_unit_test(test_wait_for_zero),
        cmocka_unit_test(test_wait_for_caller_cancelled),
        cmocka_unit_test(test_wait_for_result_races_timeout),
        cmocka_unit_test(test_wait_for_inner_catches),
        cmocka_unit_test(test_wait_for_bad_arguments),
        cmocka_unit_test(test_task_group_waits_for_children),
        cmocka_unit_test(test_task_group_failure_cancels_all),
        cmocka_unit_test(test_task_group_several_failures),
        cmocka_unit_test(test_task_group_no_spawn_after_failure),
        cmocka_unit_test(test_task_group_cancelled_from_outside),
        cmocka_unit_test(test_task_group_failure_and_outside_cancel),
        cmocka_unit_test(test_task_group_body_error_and_cancelled_child),
        cmocka_unit_test(test_task_group_spawn),
        cmocka_unit_test(test_task_group_spawn_dropped),
        cmocka_unit_test(test_task_group_bad_arguments),
        cmocka_unit_test(test_cancelled_queued_handle_is_taken_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
