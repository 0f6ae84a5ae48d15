/*
 * tests/test_future.c - asyncio.Future: SEMANTICS items 9-12.
 *
 *   9  result() of a pending future is CORO_ESTATE; a second set is
 *      CORO_ESTATE; cancel() of a done future returns 0; a cancelled future
 *      reports CORO_ECANCELLED;
 *  10  done callbacks are never called inline, run in registration order,
 *      and remove_done_callback returns how many it removed;
 *  11  add_done_callback on a done future is scheduled, not called;
 *  12  awaiting a done future does not suspend.
 */
#include "helpers.h"

#define E1 (CORO_EUSER - 1)

/* ---- 9. states and their errors ---- */

static void test_result_of_pending_and_set_twice(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future f;
    coro_value v = coro_int(-1);
    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_future_done(&f), 0);
    assert_int_equal(coro_future_cancelled(&f), 0);
    assert_int_equal(coro_future_result(&f, &v), CORO_ESTATE);
    assert_int_equal(coro_future_error(&f), CORO_ESTATE);
    assert_int_equal(v.u.i, -1);

    assert_int_equal(coro_future_set_result(&f, coro_int(4)), 0);
    assert_int_equal(coro_future_done(&f), 1);
    assert_int_equal(coro_future_set_result(&f, coro_int(5)), CORO_ESTATE);
    assert_int_equal(coro_future_set_error(&f, E1), CORO_ESTATE);
    assert_int_equal(coro_future_cancel(&f), 0); /* done: cancel() is false */
    assert_int_equal(coro_future_cancelled(&f), 0);
    assert_int_equal(coro_future_result(&f, &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 4); /* the first result stays */
    assert_int_equal(coro_future_error(&f), 0);
    assert_int_equal(coro_future_result(&f, NULL), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_error_and_cancel(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future f, g;
    coro_value v = coro_int(-1);

    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_future_set_error(&f, E1), 0);
    assert_int_equal(coro_future_result(&f, &v), E1);
    assert_int_equal(v.u.i, -1); /* out untouched */
    assert_int_equal(coro_future_error(&f), E1);
    assert_int_equal(coro_future_cancel(&f), 0);
    assert_int_equal(coro_future_cancelled(&f), 0);

    assert_int_equal(coro_future_init(&g, &loop), 0);
    assert_int_equal(coro_future_cancel(&g), 1);
    assert_int_equal(coro_future_cancel(&g), 0);
    assert_int_equal(coro_future_done(&g), 1);
    assert_int_equal(coro_future_cancelled(&g), 1);
    assert_int_equal(coro_future_result(&g, &v), CORO_ECANCELLED);
    assert_int_equal(coro_future_error(&g), CORO_ECANCELLED);
    assert_int_equal(coro_future_set_result(&g, coro_int(1)), CORO_ESTATE);

    /* bad errors: cancellation goes through cancel(); codes are negative */
    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_future_set_error(&f, CORO_ECANCELLED), CORO_EINVAL);
    assert_int_equal(coro_future_set_error(&f, 0), CORO_EINVAL);
    assert_int_equal(coro_future_set_error(&f, 7), CORO_EINVAL);
    assert_int_equal(coro_future_done(&f), 0);

    /* NULL */
    assert_int_equal(coro_future_init(NULL, &loop), CORO_EINVAL);
    assert_int_equal(coro_future_init(&f, NULL), CORO_EINVAL);
    assert_int_equal(coro_future_result(NULL, &v), CORO_EINVAL);
    assert_int_equal(coro_future_set_result(NULL, v), CORO_EINVAL);
    assert_int_equal(coro_future_set_error(NULL, E1), CORO_EINVAL);
    assert_int_equal(coro_future_cancel(NULL), 0);
    assert_int_equal(coro_future_done(NULL), 0);
    assert_int_equal(coro_future_cancelled(NULL), 0);
    assert_int_equal(coro_future_remove_done_callback(NULL, NULL, NULL), 0);
    assert_null(coro_task_future(NULL));
    run_one_pass(&loop);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static int dummy_target;

static void test_value_kinds(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    const coro_value kinds[] = { coro_int(INT64_MIN), coro_double(1e300), coro_ptr(&dummy_target),
                                 coro_none() };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        coro_future f;
        coro_value v = coro_error(E1);
        assert_int_equal(coro_future_init(&f, &loop), 0);
        assert_int_equal(coro_future_set_result(&f, kinds[k]), 0);
        assert_int_equal(coro_future_result(&f, &v), 0);
        assert_int_equal(v.tag, kinds[k].tag);
        assert_memory_equal(&v.u, &kinds[k].u, sizeof v.u);
    }
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 10. done callbacks: scheduled, in order, removable ---- */

struct cbarg {
    tlog *log;
    int value;
    coro_future *expect;
};

static void log_done(coro_future *f, void *arg)
{
    struct cbarg *a = arg;
    assert_ptr_equal(f, a->expect);
    assert_int_equal(coro_future_done(f), 1);
    tlog_add(a->log, a->value);
}

static void other_done(coro_future *f, void *arg)
{
    struct cbarg *a = arg;
    (void)f;
    tlog_add(a->log, 100 + a->value);
}

static void test_done_callbacks_scheduled_in_order(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    for (int how = 0; how < 3; how++) { /* result, error, cancel */
        coro_future f;
        struct cbarg a[5];
        coro_done_node node;
        log.n = 0;
        assert_int_equal(coro_future_init(&f, &loop), 0);
        for (int i = 0; i < 5; i++) {
            a[i] = (struct cbarg){ &log, i, &f };
            if (i == 2) /* a caller-owned node keeps its place in the order */
                assert_int_equal(coro_future_add_done_node(&f, &node, log_done, &a[i]), 0);
            else
                assert_int_equal(coro_future_add_done_callback(&f, log_done, &a[i]), 0);
        }
        if (how == 0)
            assert_int_equal(coro_future_set_result(&f, coro_int(1)), 0);
        else if (how == 1)
            assert_int_equal(coro_future_set_error(&f, E1), 0);
        else
            assert_int_equal(coro_future_cancel(&f), 1);
        assert_int_equal(log.n, 0); /* never inline */
        run_one_pass(&loop);
        TLOG_EXPECT(&log, 0, 1, 2, 3, 4);
        run_one_pass(&loop);
        assert_int_equal(log.n, 5); /* each ran once */
    }
    assert_int_equal(coro_future_add_done_callback(NULL, log_done, NULL), CORO_EINVAL);
    coro_future f;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_future_add_done_callback(&f, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_future_add_done_node(&f, NULL, log_done, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static void test_remove_done_callback(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    coro_future f;
    struct cbarg a = { &log, 1, NULL }, b = { &log, 2, NULL };
    coro_done_node n1, n2;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    a.expect = b.expect = &f;
    assert_int_equal(coro_future_add_done_callback(&f, log_done, &a), 0);   /* removed */
    assert_int_equal(coro_future_add_done_callback(&f, log_done, &b), 0);   /* stays */
    assert_int_equal(coro_future_add_done_node(&f, &n1, log_done, &a), 0);  /* removed */
    assert_int_equal(coro_future_add_done_callback(&f, other_done, &a), 0); /* stays */
    assert_int_equal(coro_future_add_done_callback(&f, log_done, &a), 0);   /* removed */
    assert_int_equal(coro_future_add_done_node(&f, &n2, log_done, &b), 0);  /* stays */
    assert_int_equal(coro_future_remove_done_callback(&f, log_done, &a), 3);
    assert_int_equal(coro_future_remove_done_callback(&f, log_done, &a), 0);
    assert_int_equal(coro_future_remove_done_callback(&f, other_done, &b), 0);
    assert_int_equal(coro_future_set_result(&f, coro_none()), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 2, 101, 2);
    /* once done, there is nothing left to remove */
    assert_int_equal(coro_future_remove_done_callback(&f, log_done, &b), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 11. a done future schedules a new callback, FIFO with call_soon ---- */

static void test_add_done_callback_on_done_future(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    coro_future f;
    struct cbarg a = { &log, 1, &f }, c = { &log, 3, &f };
    tlog_arg b = { &log, 2 };
    coro_done_node node;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_future_set_result(&f, coro_int(9)), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_future_add_done_callback(&f, log_done, &a), 0);
    assert_int_equal(log.n, 0); /* not inline */
    assert_int_equal(coro_call_soon(&loop, NULL, tlog_cb, &b), 0);
    assert_int_equal(coro_future_add_done_node(&f, &node, log_done, &c), 0);
    assert_int_equal(log.n, 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, 3);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- task wakeups are done callbacks too: registration order ---- */

struct await_log {
    coro_frame co;
    coro_future *fut;
    tlog *log;
};

static CORO_FN(await_log_step)
{
    struct await_log *self = CORO_SELF(struct await_log);
    CORO_BEGIN();
    CORO_AWAIT(self->fut);
    tlog_add(self->log, 50 + (int)CORO_RESULT.u.i);
    CORO_END();
}

static void test_task_wakeup_in_registration_order(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    tlog log = { 0 };
    coro_future f;
    struct cbarg a = { &log, 1, &f }, b = { &log, 2, &f };
    struct await_log w = { .log = &log };
    coro_task t;
    assert_int_equal(coro_future_init(&f, &loop), 0);
    w.fut = &f;
    coro_frame_init(&w.co, await_log_step);
    assert_int_equal(coro_future_add_done_callback(&f, log_done, &a), 0);
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    run_one_pass(&loop); /* the task now waits on f */
    assert_int_equal(coro_future_add_done_callback(&f, log_done, &b), 0);
    assert_int_equal(coro_future_set_result(&f, coro_int(3)), 0);
    assert_int_equal(log.n, 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 53, 2);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- 12. awaiting a done future does not suspend ---- */

struct await_done {
    coro_frame co;
    coro_loop *loop;
    coro_future *fut;
    int flag, flag_after, i;
    int64_t sum;
};

static int set_flag(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

static CORO_FN(await_done_step)
{
    struct await_done *self = CORO_SELF(struct await_done);
    CORO_BEGIN();
    assert_int_equal(coro_call_soon(self->loop, NULL, set_flag, &self->flag), 0);
    for (self->i = 0; self->i < 100; self->i++) {
        CORO_AWAIT(self->fut);
        self->sum += CORO_RESULT.u.i;
    }
    self->flag_after = self->flag;
    CORO_RETURN(coro_int(self->sum));
    CORO_END();
}

static void test_await_done_future_does_not_suspend(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future f;
    coro_task t;
    struct await_done d = { .loop = &loop, .fut = &f, .flag = 0, .flag_after = -1 };
    assert_int_equal(coro_future_init(&f, &loop), 0);
    assert_int_equal(coro_future_set_result(&f, coro_int(2)), 0);
    coro_frame_init(&d.co, await_done_step);
    assert_int_equal(coro_task_init(&t, &loop, &d.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t), 1); /* 100 awaits, one step */
    assert_int_equal(d.flag_after, 0);       /* the callback queued before had not run */
    assert_int_equal(d.sum, 200);
    run_one_pass(&loop);
    assert_int_equal(d.flag, 1);

    /* an awaited error is raised at once too */
    coro_future g;
    struct await_done e = { .loop = &loop, .fut = &g, .flag_after = -1 };
    assert_int_equal(coro_future_init(&g, &loop), 0);
    assert_int_equal(coro_future_set_error(&g, E1), 0);
    coro_frame_init(&e.co, await_done_step);
    assert_int_equal(coro_task_init(&t, &loop, &e.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(coro_task_result(&t, NULL), E1);
    assert_int_equal(e.flag_after, -1);
    run_one_pass(&loop);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- futures from the loop; a closed loop ---- */

static void test_future_new_and_closed_loop(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    coro_future *f = coro_future_new(&loop);
    assert_non_null(f);
    assert_int_equal(coro_future_done(f), 0);
    assert_int_equal(coro_future_set_result(f, coro_int(1)), 0);
    coro_value v;
    assert_int_equal(coro_future_result(f, &v), 0);
    assert_int_equal(v.u.i, 1);
    coro_future_free(f);
    coro_future_free(NULL);
    assert_null(coro_future_new(NULL));
    /* one left for close to release */
    f = coro_future_new(&loop);
    assert_non_null(f);
    assert_int_equal(coro_future_add_done_callback(f, other_done, NULL), 0);

    coro_future g;
    assert_int_equal(coro_future_init(&g, &loop), 0);
    coro_future_free(&g); /* caller-owned: a no-op */
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(a.live, 0);
    /* the loop is closed: the pending future cannot complete */
    assert_int_equal(coro_future_set_result(&g, coro_int(1)), CORO_ECLOSED);
    assert_int_equal(coro_future_set_error(&g, E1), CORO_ECLOSED);
    assert_int_equal(coro_future_add_done_callback(&g, other_done, NULL), CORO_ECLOSED);
    assert_int_equal(coro_future_done(&g), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_of_pending_and_set_twice),
        cmocka_unit_test(test_error_and_cancel),
        cmocka_unit_test(test_value_kinds),
        cmocka_unit_test(test_done_callbacks_scheduled_in_order),
        cmocka_unit_test(test_remove_done_callback),
        cmocka_unit_test(test_add_done_callback_on_done_future),
        cmocka_unit_test(test_task_wakeup_in_registration_order),
        cmocka_unit_test(test_await_done_future_does_not_suspend),
        cmocka_unit_test(test_future_new_and_closed_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
