/*
 * test_hotpath.c - the hot paths allocate nothing.
 *
 * DESIGN.md: "an await allocates nothing on the heap in steady state". A
 * counting allocator is the loop's hook; after a warm-up (the timer heap and
 * the slab have grown once) a task awaits child frames, pending futures,
 * sleeps 0 and sleeps on timers many times, and the allocator must not be
 * called once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "coro.h"
#include "helpers.h"

/* every allocation call of the loops below (tests/helpers.h's talloc) */
static talloc ta;

struct leaf {
    coro_frame co;
};

static CORO_FN(leaf_step)
{
    CORO_BEGIN();
    CORO_SLEEP(0);
    CORO_RETURN(coro_int(7));
    CORO_END();
}

static int resolve(void *arg)
{
    coro_future_set_result(arg, coro_int(1));
    return 0;
}

struct worker {
    coro_frame co;
    int i, rounds;
    long sum;
    long calls_after_warmup;
    uint64_t slab_after_warmup;
    coro_loop *loop;
    struct leaf leaf;
};

static CORO_FN(worker_step)
{
    struct worker *self = CORO_SELF(struct worker);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->rounds; self->i++) {
        if (self->i == 1) {
            self->calls_after_warmup = ta.calls; /* round 0 warmed everything up */
            self->slab_after_warmup = self->loop->slab_allocs;
        }
        coro_frame_init(&self->leaf.co, leaf_step);
        CORO_AWAIT(&self->leaf.co);
        self->sum += CORO_RESULT.u.i;
        CORO_SLEEP(0);
        CORO_SLEEP(0.000001);
    }
    CORO_END();
}

struct waiter {
    coro_frame co;
    int i, rounds;
    coro_loop *loop;
    coro_future fut;
    coro_handle h;
    long sum;
};

static CORO_FN(waiter_step)
{
    struct waiter *self = CORO_SELF(struct waiter);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->rounds; self->i++) {
        coro_future_init(&self->fut, self->loop);
        coro_handle_init(&self->h);
        coro_call_soon(self->loop, &self->h, resolve, &self->fut);
        CORO_AWAIT(&self->fut);
        self->sum += CORO_RESULT.u.i;
    }
    CORO_END();
}

static void test_await_and_sleep_allocate_nothing(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options opt = { .alloc = talloc_fn, .alloc_ud = &ta, .debug = -1 };
    assert_int_equal(coro_loop_init(&loop, &opt), 0);

    struct worker w = { .rounds = 200, .loop = &loop };
    struct waiter f = { .rounds = 200, .loop = &loop };
    coro_task tw, tf;
    coro_frame_init(&w.co, worker_step);
    coro_frame_init(&f.co, waiter_step);
    assert_int_equal(coro_task_init(&tw, &loop, &w.co), 0);
    assert_int_equal(coro_task_init(&tf, &loop, &f.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tw)), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tf)), 0);

    assert_int_equal(w.sum, 7 * 200);
    assert_int_equal(f.sum, 200);
    assert_true(w.calls_after_warmup > 0);
    assert_int_equal(ta.calls, w.calls_after_warmup); /* nothing since round 1 */
    assert_int_equal(loop.slab_allocs, w.slab_after_warmup);
    assert_int_equal(coro_loop_close(&loop), 0);
}

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

struct churn {
    coro_loop *loop;
    coro_handle far, near;
    int failures;
};

/* Arm two timers and cancel both, 100k times, inside one callback (no loop
 * pass in between, as a timeout around a body that never suspends): the
 * cancelled entries must not make the heap grow. */
static int churn_cb(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 100000; i++) {
        c->failures += coro_call_later(c->loop, &c->far, 16, nop, NULL) != 0; /* heap, not a */
        c->failures += coro_call_later(c->loop, &c->near, 8, nop, NULL) != 0; /* far bucket */
        c->failures += coro_handle_cancel(&c->far) != 1;  /* the last entry */
        c->failures += coro_handle_cancel(&c->near) != 1; /* a tombstone at the top */
    }
    return 0;
}

static void test_timer_churn_does_not_grow_the_heap(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options opt = { .alloc = talloc_fn, .alloc_ud = &ta, .debug = -1 };
    assert_int_equal(coro_loop_init(&loop, &opt), 0);
    struct churn c = { .loop = &loop };
    coro_handle_init(&c.far);
    coro_handle_init(&c.near);
    coro_handle h;
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(&loop, &h, 16.5, nop, NULL), 0); /* the heap exists */
    long before = ta.calls;
    assert_int_equal(churn_cb(&c), 0);
    assert_int_equal(c.failures, 0);
    assert_int_equal(ta.calls, before);      /* no growth: tombstones were purged */
    assert_true(loop.heap_cap <= 64);
    assert_int_equal(loop.heap_len - loop.heap_dead, 1);
    assert_int_equal(coro_handle_cancel(&h), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_await_and_sleep_allocate_nothing),
        cmocka_unit_test(test_timer_churn_does_not_grow_the_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
