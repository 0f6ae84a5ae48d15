/*
 * tests/test_oom.c - out of memory at every allocation site.
 *
 * The allocator (helpers.h talloc) fails its Nth call; the walk runs the
 * whole scenario for N = 1, 2, 3, ... until a run completes with no failure
 * injected, once failing only the Nth call and once failing every call from
 * the Nth on. Each run must see every API return success or CORO_ENOMEM
 * (NULL where it returns a pointer), never crash, close the loop with 0 and
 * leave no byte allocated (the allocator counts live bytes, and checks that
 * every free passes the size that was allocated).
 */
#include "helpers.h"

#define ENOMEM_OR_OK(rc)                                                        \
    do {                                                                        \
        int rc_ = (rc);                                                         \
        if (rc_ != 0 && rc_ != CORO_ENOMEM)                                     \
            fail_msg("%s returned %d (N=%ld)", #rc, rc_, g_fail_at);            \
    } while (0)

static long g_fail_at;

/* ---- the scenario's coroutines ---- */

struct worker {
    coro_frame co;
    int id;
};

static CORO_FN(worker_step)
{
    struct worker *self = CORO_SELF(struct worker);
    CORO_BEGIN();
    CORO_SLEEP(0.001);
    CORO_SLEEP(0);
    CORO_RETURN(coro_int(self->id * 10));
    CORO_END();
}

#define NWORKERS 3

struct boss {
    coro_frame co;
    coro_task *kids[NWORKERS];
    int i, err, nomem, ok;
    int64_t sum;
};

static CORO_FN(boss_step)
{
    struct boss *self = CORO_SELF(struct boss);
    CORO_BEGIN();
    for (self->i = 0; self->i < NWORKERS; self->i++) {
        if (!self->kids[self->i])
            continue;
        CORO_AWAIT_ERR(self->kids[self->i], self->err);
        if (self->err == CORO_ENOMEM)
            self->nomem++;
        else if (self->err != 0)
            CORO_RAISE(self->err); /* anything else is a failure of the test */
        else
            self->sum += CORO_RESULT.u.i;
        if (self->err == 0)
            self->ok++;
    }
    CORO_RETURN(coro_int(self->sum));
    CORO_END();
}

struct counts {
    int soon, later, done;
};

static int soon_cb(void *arg)
{
    ((struct counts *)arg)->soon++;
    return 0;
}

static int later_cb(void *arg)
{
    ((struct counts *)arg)->later++;
    return 0;
}

static void done_cb(coro_future *f, void *arg)
{
    (void)f;
    ((struct counts *)arg)->done++;
}

static void quiet_handler(coro_loop *loop, const coro_exception_context *c, void *arg)
{
    (void)loop;
    (void)arg;
    assert_non_null(c->message);
    if (c->task)
        assert_non_null(c->task_name);
}

/* One run of the scenario. Returns 1 when it completed with no failure
 * injected (the walk is over). */
static int scenario(long fail_at, int persistent)
{
    talloc a = { 0 };
    a.fail_at = fail_at;
    a.persistent = persistent;
    g_fail_at = fail_at;
    coro_loop_options o = talloc_options(&a);
    o.debug = 1; /* the report paths allocate too (task names) */
    o.slow_callback_ns = 10000 * MS;
    coro_loop loop;
    int rc = coro_loop_init(&loop, &o);
    ENOMEM_OR_OK(rc);
    if (rc != 0) {
        assert_int_equal(a.live, 0);
        assert_int_equal(a.bad_osize, 0);
        return 0;
    }
    coro_loop_set_exception_handler(&loop, quiet_handler, NULL);

    struct counts n = { 0, 0, 0 };
    coro_task *kids[NWORKERS] = { NULL };
    int spawned = 0, named = 0, callbacks = 0, soon = 0, later = 0;
    for (int i = 0; i < NWORKERS; i++) {
        struct worker *w = CORO_FRAME_NEW(&loop, struct worker, worker_step);
        if (!w)
            continue;
        w->id = i + 1;
        kids[i] = coro_spawn(&loop, &w->co); /* frees w when it fails */
        if (!kids[i])
            continue;
        spawned++;
        rc = coro_task_set_name(kids[i], i == 0 ? "first" : "a-rather-long-task-name-for-the-pool");
        ENOMEM_OR_OK(rc);
        named += rc == 0;
        rc = coro_future_add_done_callback(coro_task_future(kids[i]), done_cb, &n);
        ENOMEM_OR_OK(rc);
        callbacks += rc == 0;
    }
    char buf[32];
    if (kids[1]) /* a default name: allocated on first use, or written to buf */
        assert_true(coro_task_get_name(kids[1], buf, sizeof buf)[0] != '\0');

    struct boss *b = CORO_FRAME_NEW(&loop, struct boss, boss_step);
    coro_task *bt = NULL;
    if (b) {
        memcpy(b->kids, kids, sizeof kids);
        bt = coro_spawn(&loop, &b->co);
    }
    rc = coro_call_soon(&loop, NULL, soon_cb, &n);
    ENOMEM_OR_OK(rc);
    soon += rc == 0;
    rc = coro_call_later(&loop, NULL, 0.001, later_cb, &n);
    ENOMEM_OR_OK(rc);
    later += rc == 0;
    coro_future *f = coro_future_new(&loop);
    if (f) {
        rc = coro_future_add_done_callback(f, done_cb, &n);
        ENOMEM_OR_OK(rc);
        callbacks += rc == 0;
        assert_int_equal(coro_future_set_result(f, coro_int(1)), 0);
    }

    if (bt) {
        rc = coro_loop_run_until_complete(&loop, coro_task_future(bt));
        ENOMEM_OR_OK(rc); /* the boss only fails if its workers' sleeps did */
        assert_int_equal(rc, 0);
        coro_value v;
        assert_int_equal(coro_task_result(bt, &v), 0);
        assert_int_equal(b->ok + b->nomem, spawned);
        if (b->ok == NWORKERS)
            assert_int_equal(v.u.i, 10 + 20 + 30);
    }
    /* let the rest finish: workers without a boss, timers, callbacks */
    for (int i = 0; i < 20; i++)
        run_one_pass(&loop);
    int64_t until = mono_ns() + 50 * MS;
    while ((n.later < later || n.done < callbacks) && mono_ns() < until)
        run_one_pass(&loop);
    assert_int_equal(n.soon, soon);
    assert_int_equal(n.later, later);
    assert_int_equal(n.done, callbacks);
    for (int i = 0; i < NWORKERS; i++) {
        if (!kids[i])
            continue;
        assert_int_equal(coro_task_done(kids[i]), 1);
        int err = coro_task_result(kids[i], NULL);
        ENOMEM_OR_OK(err);
        if (i != 0)
            coro_task_release(kids[i]); /* the first one is left to close */
    }
    if (f && fail_at % 2)
        coro_future_free(f);
    run_one_pass(&loop);

    int complete = a.failures == 0;
    if (complete) { /* nothing failed: everything must have worked */
        assert_int_equal(spawned, NWORKERS);
        assert_int_equal(named, NWORKERS);
        assert_non_null(bt);
        assert_int_equal(b->ok, NWORKERS);
        assert_int_equal(n.done, NWORKERS + 1);
        assert_int_equal(n.soon + n.later, 2);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
    return complete;
}

static void walk(int persistent)
{
    long n;
    for (n = 1; n < 10000; n++)
        if (scenario(n, persistent))
            break;
    assert_true(n > 5); /* the scenario allocates more than that */
    assert_true(n < 10000);
}

static void test_oom_every_site_once(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    walk(0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_oom_every_site_from_then_on(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    walk(1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* No failure at all: the same scenario with a counting allocator. */
static void test_no_oom_baseline(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(scenario(0, 0), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- NULL options, coro_loop_new / coro_loop_free ---- */

static void test_loop_new_and_free(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0); /* NULL options: defaults */
    struct worker *w = CORO_FRAME_NEW(&loop, struct worker, worker_step);
    assert_non_null(w);
    w->id = 4;
    coro_task *t = coro_spawn(&loop, &w->co);
    assert_non_null(t);
    coro_value v;
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), 0);
    assert_int_equal(coro_task_result(t, &v), 0);
    assert_int_equal(v.u.i, 40);

    coro_loop *l = coro_loop_new(NULL);
    assert_non_null(l);
    assert_int_equal(coro_loop_is_closed(l), 0);
    w = CORO_FRAME_NEW(l, struct worker, worker_step);
    assert_non_null(w);
    w->id = 5;
    t = coro_spawn(l, &w->co);
    assert_int_equal(coro_loop_run_until_complete(l, coro_task_future(t)), 0);
    assert_int_equal(coro_task_result(t, &v), 0);
    assert_int_equal(v.u.i, 50);
    coro_loop_free(l); /* closes it too */
    coro_loop_free(NULL);

    /* with our allocator: nothing left once freed */
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    l = coro_loop_new(&o);
    assert_non_null(l);
    assert_true(a.live > 0);
    assert_non_null(coro_spawn(l, &CORO_FRAME_NEW(l, struct worker, worker_step)->co));
    assert_int_equal(coro_loop_close(l), 0);
    assert_int_equal(a.live, 0);
    coro_loop_free(l); /* already closed: just freed */

    /* a loop whose allocator fails at once is not made */
    a = (talloc){ .fail_at = 1, .persistent = 1 };
    assert_null(coro_loop_new(&o));
    assert_int_equal(a.live, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_oom_baseline),
        cmocka_unit_test(test_oom_every_site_once),
        cmocka_unit_test(test_oom_every_site_from_then_on),
        cmocka_unit_test(test_loop_new_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
