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
 *
 * Small objects come from the loop's slab (mem.c), which calls the
 * allocator only to get a new chunk: so the plain walk fails the slab's
 * refills, not each object. The third walk makes every object site meet a
 * failing refill in turn: it warms the loop up (task list and timer heap
 * allocated), fills the current chunk so that exactly `leave` bytes remain,
 * then fails every allocation from there on, for leave = 0, 16, 32, ...
 * (the chunk header size and the grain are mem.c's; were they to
 * change, the sweep still runs, only less precisely aimed).
 */
#include "helpers.h"

#define ENOMEM_OR_OK(rc)                                             \
    do {                                                             \
        int rc_ = (rc);                                              \
        if (rc_ != 0 && rc_ != CORO_ENOMEM)                          \
            fail_msg("%s returned %d (N=%ld)", #rc, rc_, g_fail_at); \
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

/* What the boss found, outside its frame (the frame is freed with its task). */
struct boss_out {
    int nomem, ok;
    int64_t sum;
};

struct boss {
    coro_frame co;
    coro_task *kids[NWORKERS];
    struct boss_out *out;
    int i, err;
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
            self->out->nomem++;
        else if (self->err != 0)
            CORO_RAISE(self->err); /* anything else is a failure of the test */
        else
            self->out->sum += CORO_RESULT.u.i;
        if (self->err == 0)
            self->out->ok++;
    }
    CORO_RETURN(coro_int(self->out->sum));
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

/* ---- the slab sweep's preparation ---- */

static CORO_FN(filler_step)
{
    CORO_BEGIN();
    CORO_END();
}

struct napper {
    coro_frame co;
};

static CORO_FN(napper_step)
{
    CORO_BEGIN();
    CORO_SLEEP(0.0001);
    CORO_END();
}

/* A caller-owned task that sleeps: the loop's task list and timer heap get
 * their arrays, and no slab object is used. */
static void warm_up(coro_loop *loop)
{
    struct napper n;
    coro_task t;
    coro_frame_init(&n.co, napper_step);
    assert_int_equal(coro_task_init(&t, loop, &n.co), 0);
    assert_int_equal(coro_loop_run_until_complete(loop, coro_task_future(&t)), 0);
}

#define CHUNK_HDR 16 /* mem.c */

/* Leave about `leave` bytes in the slab's current chunk. */
static void fill_slab(coro_loop *loop, talloc *a, size_t leave)
{
    long calls = a->calls;
    _Static_assert(sizeof(coro_future) == 32, "the 32-byte filler is a future");
    while (a->calls == calls) /* up to the start of a fresh chunk */
        assert_non_null(coro_future_new(loop));
    size_t left = a->last_nsize - CHUNK_HDR - 32;
    if (leave >= left)
        return;
    size_t fill = left - leave;
    if (fill % 32) { /* 48 + 32k covers every multiple of 16 from 48 on */
        assert_non_null(coro_frame_new(loop, 48, filler_step));
        fill -= fill >= 48 ? 48 : fill;
    }
    for (; fill >= 32; fill -= 32)
        assert_non_null(coro_future_new(loop));
    assert_int_equal(a->calls, calls + 1); /* all in that one chunk */
}

/* One run of the scenario. With leave >= 0, the slab sweep (see the top).
 * Returns 1 when it completed with no failure injected (the walk is over). */
static int scenario(long fail_at, int persistent, long leave)
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
    if (leave >= 0) {
        warm_up(&loop);
        fill_slab(&loop, &a, (size_t)leave);
        a.fail_at = a.calls + 1;
        a.persistent = 1;
    }

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
    struct boss_out bo = { 0, 0, 0 };
    struct boss *b = CORO_FRAME_NEW(&loop, struct boss, boss_step);
    coro_task *bt = NULL;
    if (b) {
        memcpy(b->kids, kids, sizeof kids);
        b->out = &bo;
        bt = coro_spawn(&loop, &b->co); /* owns b from here, even on failure */
    }
    char buf[32];
    if (bt) /* a default name: allocated on first use, or written to buf */
        assert_true(coro_task_get_name(bt, buf, sizeof buf)[0] != '\0');
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
        assert_int_equal(bo.ok + bo.nomem, spawned);
        if (bo.ok == NWORKERS)
            assert_int_equal(v.u.i, 10 + 20 + 30);
    }
    /* let the rest finish: workers without a boss, timers, callbacks */
    for (int i = 0; i < 20; i++)
        run_one_pass(&loop);
    int64_t until = mono_ns() + 200 * MS;
    for (;;) {
        int pending = n.later < later || n.done < callbacks;
        for (int i = 0; i < NWORKERS; i++)
            pending |= kids[i] && !coro_task_done(kids[i]);
        if (!pending || mono_ns() > until)
            break;
        run_one_pass(&loop);
    }
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
        assert_int_equal(bo.ok, NWORKERS);
        assert_int_equal(bo.sum, 60);
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
        if (scenario(n, persistent, -1))
            break;
    assert_true(n > 5); /* the scenario allocates more than that */
    assert_true(n < 10000);
    print_message("walked %ld allocation calls (%s)\n", n - 1,
                  persistent ? "from N on" : "the Nth");
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

static void test_oom_every_slab_object(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    int completed = 0;
    for (long leave = 0; leave <= 1600; leave += 16)
        completed += scenario(0, 1, leave);
    print_message("slab sweep: %d of 101 memory budgets were big enough to finish; the other %d "
                  "ended in a clean CORO_ENOMEM, as intended\n",
                  completed, 101 - completed);
    assert_true(completed > 0);   /* the scenario fits in 1600 bytes... */
    assert_true(completed < 100); /* ...but not in a few */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* No failure at all: the same scenario with a counting allocator. */
/* ---- the task group's spawn under the same sweep ---- */

struct tg_body {
    coro_frame co;
    coro_task_group_op *tg;
    int i, spawned, nomem;
};

static CORO_FN(tg_body_step)
{
    struct tg_body *self = CORO_SELF(struct tg_body);
    CORO_BEGIN();
    for (self->i = 0; self->i < NWORKERS; self->i++) {
        struct napper *n = CORO_FRAME_NEW(coro_get_running_loop(), struct napper, napper_step);
        int rc = n ? coro_task_group_spawn(self->tg, &n->co, NULL) : CORO_ENOMEM;
        ENOMEM_OR_OK(rc);
        self->spawned += rc == 0;
        self->nomem += rc == CORO_ENOMEM;
    }
    CORO_END();
}

struct tg_main {
    coro_frame co;
    coro_task_group_op tg;
    struct tg_body body;
    int errs[4], err;
};

static CORO_FN(tg_main_step)
{
    struct tg_main *self = CORO_SELF(struct tg_main);
    CORO_BEGIN();
    coro_frame_init(&self->body.co, tg_body_step);
    self->body.tg = &self->tg;
    CORO_AWAIT_ERR(coro_task_group(&self->tg, &self->body.co, self->errs, 4), self->err);
    CORO_END();
}

/* Every slab refill failing in turn while a task group spawns its children:
 * each spawn succeeds or says CORO_ENOMEM, the group still ends cleanly
 * with the children it got, and close leaves nothing behind. */
static int group_scenario(long leave)
{
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    warm_up(&loop);
    struct tg_main m = { .err = -1 };
    coro_task t;
    coro_frame_init(&m.co, tg_main_step);
    assert_int_equal(coro_task_init(&t, &loop, &m.co), 0);
    fill_slab(&loop, &a, (size_t)leave);
    a.fail_at = a.calls + 1;
    a.persistent = 1;
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(m.err, 0); /* a spawn refused is not a failure of the group */
    assert_int_equal(m.body.spawned + m.body.nomem, NWORKERS);
    int complete = a.failures == 0;
    if (complete)
        assert_int_equal(m.body.spawned, NWORKERS);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
    return complete;
}

static void test_oom_task_group_spawn(void **state)
{
    (void)state;
    int completed = 0, failed = 0;
    for (long leave = 0; leave <= 1600; leave += 16) {
        int c = group_scenario(leave);
        completed += c;
        failed += !c;
    }
    assert_true(failed > 0);    /* some spawns did meet a failing refill */
    assert_true(completed > 0); /* and some had room enough */
}

static void test_no_oom_baseline(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(scenario(0, 0, -1), 1);
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
        cmocka_unit_test(test_oom_task_group_spawn),
        cmocka_unit_test(test_no_oom_baseline),
        cmocka_unit_test(test_oom_every_site_once),
        cmocka_unit_test(test_oom_every_site_from_then_on),
        cmocka_unit_test(test_oom_every_slab_object),
        cmocka_unit_test(test_loop_new_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
