/*
 * tests/test_queue.c - asyncio's queues: SEMANTICS items 37-40, asyncio
 * 3.13's shutdown, cancellation at every suspension point, storage
 * (growth, out of memory, caller-given arrays) and the argument checks.
 *
 * Most tests drive `actor` tasks: an actor gets, puts or joins `n` times
 * on one queue, recording what it got and the first error. The test body
 * steps the loop pass by pass (run_one_pass) and acts between passes, which
 * is how "cancelled at the same pass as it was woken" is reached: the wakeup
 * is queued, and the cancel arrives before it runs. Every scenario ends with
 * check_quiet: no waiter left on any wait list, nothing parked.
 */
#include "helpers.h"

#include <math.h>

#include "coro_int.h" /* LOOP_CLOSED, and the waitq fields the tests read */

/* ---- the actor ---- */

enum { OP_GET = 1, OP_PUT, OP_JOIN };

#define MAX_OPS 16

struct actor {
    coro_frame co;
    coro_queue *q;
    int op, n;              /* what, and how many times */
    int64_t items[MAX_OPS]; /* OP_PUT: what to put */
    int task_done;          /* OP_GET: task_done after each get */
    double sleep_after;     /* sleep this long after each operation (< 0: no) */
    int i, err, done;       /* err: the first error; done: operations that succeeded */
    int64_t got[MAX_OPS];   /* OP_GET: the items, in order */
    tlog *log;              /* if set: id * 100 + item for each get, id for others */
    int id;
    union {
        coro_queue_get_op get;
        coro_queue_put_op put;
        coro_queue_join_op join;
    } u;
};

static CORO_FN(actor_step)
{
    struct actor *self = CORO_SELF(struct actor);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        if (self->op == OP_GET)
            CORO_AWAIT_ERR(coro_queue_get(&self->u.get, self->q), self->err);
        else if (self->op == OP_PUT)
            CORO_AWAIT_ERR(coro_queue_put(&self->u.put, self->q, coro_int(self->items[self->i])),
                           self->err);
        else
            CORO_AWAIT_ERR(coro_queue_join(&self->u.join, self->q), self->err);
        if (self->err)
            break;
        if (self->op == OP_GET) {
            assert_int_equal(CORO_RESULT.tag, CORO_INT);
            self->got[self->done] = CORO_RESULT.u.i;
        }
        if (self->log)
            tlog_add(self->log,
                     self->op == OP_GET ? self->id * 100 + (int)CORO_RESULT.u.i : self->id);
        self->done++;
        if (self->op == OP_GET && self->task_done)
            assert_int_equal(coro_queue_task_done(self->q), 0);
        if (self->sleep_after >= 0)
            CORO_SLEEP(self->sleep_after);
    }
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(self->done));
    CORO_END();
}

static void actor_init(struct actor *a, coro_queue *q, int op, int n)
{
    memset(a, 0, sizeof *a);
    coro_frame_init(&a->co, actor_step);
    a->q = q;
    a->op = op;
    a->n = n;
    a->sleep_after = -1;
}

static void start(coro_task *t, coro_loop *loop, struct actor *a)
{
    assert_int_equal(coro_task_init(t, loop, &a->co), 0);
}

static void start_getter(coro_task *t, coro_loop *loop, struct actor *a, coro_queue *q, int n)
{
    actor_init(a, q, OP_GET, n);
    start(t, loop, a);
}

static void start_putter(coro_task *t, coro_loop *loop, struct actor *a, coro_queue *q,
                         int64_t item)
{
    actor_init(a, q, OP_PUT, 1);
    a->items[0] = item;
    start(t, loop, a);
}

static void start_joiner(coro_task *t, coro_loop *loop, struct actor *a, coro_queue *q)
{
    actor_init(a, q, OP_JOIN, 1);
    start(t, loop, a);
}

static int waitq_len(const coro_waitq *wq)
{
    int n = 0;
    for (const coro__link *l = wq->list.first; l; l = l->next)
        n++;
    return n;
}

/* Nobody waits, nobody is parked: cancelled waiters left the lists. */
static void check_quiet(const coro_queue *q)
{
    assert_null(q->getters.list.first);
    assert_null(q->getters.list.last);
    assert_null(q->putters.list.first);
    assert_null(q->putters.list.last);
    assert_null(q->joiners.list.first);
    assert_null(q->joiners.list.last);
    assert_int_equal(q->parked, 0);
}

static int64_t get_int(coro_queue *q)
{
    coro_value v = coro_none();
    assert_int_equal(coro_queue_get_nowait(q, &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    return v.u.i;
}

static void put_int(coro_queue *q, int64_t i)
{
    assert_int_equal(coro_queue_put_nowait(q, coro_int(i)), 0);
}

/* Run until `t` is done, for 2 s at most (a regression fails, not hangs);
 * returns its outcome. */
static int finish(coro_loop *loop, coro_task *t)
{
    int64_t t0 = mono_ns();
    while (!coro_task_done(t) && mono_ns() - t0 < 2000 * MS)
        run_one_pass(loop);
    assert_true(coro_task_done(t));
    return coro_task_result(t, NULL);
}

static void close_loop(coro_loop *loop) { assert_int_equal(coro_loop_close(loop), 0); }

/* ---- 37. order, the nowait errors, maxsize ---- */

static void test_fifo_order(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    int64_t items[] = { 1, 3, 2 };
    for (int i = 0; i < 3; i++)
        put_int(&q, items[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(get_int(&q), items[i]);

    /* the same through awaitable gets: no suspension, in one pass */
    for (int i = 0; i < 3; i++)
        put_int(&q, items[i]);
    struct actor g;
    coro_task t;
    start_getter(&t, &loop, &g, &q, 3);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(g.done, 3);
    assert_int_equal(g.got[0], 1);
    assert_int_equal(g.got[1], 3);
    assert_int_equal(g.got[2], 2);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_nowait_errors_and_state(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    coro_value v = coro_int(77);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    assert_int_equal(coro_queue_maxsize(&q), 1);
    assert_int_equal(coro_queue_qsize(&q), 0);
    assert_int_equal(coro_queue_empty(&q), 1);
    assert_int_equal(coro_queue_full(&q), 0);
    assert_int_equal(coro_queue_get_nowait(&q, &v), CORO_EEMPTY);
    assert_int_equal(v.u.i, 77); /* untouched */
    put_int(&q, 1);
    assert_int_equal(coro_queue_qsize(&q), 1);
    assert_int_equal(coro_queue_empty(&q), 0);
    assert_int_equal(coro_queue_full(&q), 1);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(2)), CORO_EFULL);
    assert_int_equal(coro_queue_qsize(&q), 1);
    assert_int_equal(q.unfinished, 1); /* the refused put is not counted */
    assert_int_equal(get_int(&q), 1);
    assert_int_equal(coro_queue_get_nowait(&q, NULL), CORO_EEMPTY);
    put_int(&q, 5);
    assert_int_equal(coro_queue_get_nowait(&q, NULL), 0); /* dropped */
    assert_int_equal(coro_queue_qsize(&q), 0);
    assert_int_equal(coro_queue_fini(&q), 0);

    /* unbounded: never full */
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    assert_int_equal(coro_queue_maxsize(&q), 0);
    for (int i = 0; i < 100; i++)
        put_int(&q, i);
    assert_int_equal(coro_queue_full(&q), 0);
    assert_int_equal(coro_queue_qsize(&q), 100);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio test_maxsize: with maxsize 2 the third put waits. */
static void test_maxsize_third_put_waits(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor p;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 2), 0);
    actor_init(&p, &q, OP_PUT, 3);
    p.items[0] = 0;
    p.items[1] = 1;
    p.items[2] = 2;
    start(&t, &loop, &p);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(p.done, 2); /* blocked after two */
    assert_int_equal(coro_queue_full(&q), 1);
    assert_int_equal(waitq_len(&q.putters), 1);
    assert_int_equal(q.parked, 1);
    assert_int_equal(get_int(&q), 0);
    assert_int_equal(coro_task_done(&t), 0);
    run_one_pass(&loop); /* the putter resumes and puts the last item */
    assert_int_equal(p.done, 3);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(get_int(&q), 1);
    assert_int_equal(get_int(&q), 2);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- waking: a put wakes the next getter, a get the next putter ---- */

static void test_getters_wake_in_order(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g[3];
    coro_task t[3];
    tlog log = { 0 };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    for (int i = 0; i < 3; i++) {
        start_getter(&t[i], &loop, &g[i], &q, 1);
        g[i].log = &log;
        g[i].id = i + 1;
    }
    run_one_pass(&loop);
    assert_int_equal(waitq_len(&q.getters), 3);
    assert_int_equal(log.n, 0);
    put_int(&q, 7); /* wakes getter 1 only */
    assert_null(g[0].u.get.w.q);
    assert_int_equal(waitq_len(&q.getters), 2);
    put_int(&q, 8);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 107, 208);
    put_int(&q, 9);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 107, 208, 309);
    for (int i = 0; i < 3; i++)
        assert_int_equal(coro_task_done(&t[i]), 1);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_putters_wake_in_order(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor p[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    put_int(&q, 0);
    for (int i = 0; i < 3; i++)
        start_putter(&t[i], &loop, &p[i], &q, 10 * (i + 1));
    run_one_pass(&loop);
    assert_int_equal(waitq_len(&q.putters), 3);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(get_int(&q), 10 * i); /* wakes the next putter */
        run_one_pass(&loop);
    }
    assert_int_equal(coro_queue_qsize(&q), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(coro_task_done(&t[i]), 1);
    assert_int_equal(q.unfinished, 4);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio's rule: a woken getter takes an item only when it runs. If
 * get_nowait takes it first, the getter looks again, finds nothing and
 * waits again, at the end of the line (asyncio does exactly this). */
static void test_woken_getter_finds_item_taken(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor a, b;
    coro_task ta, tb;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    start_getter(&ta, &loop, &a, &q, 1);
    start_getter(&tb, &loop, &b, &q, 1);
    run_one_pass(&loop);
    put_int(&q, 1);                   /* wakes a */
    assert_int_equal(get_int(&q), 1); /* and someone else takes the item */
    run_one_pass(&loop);              /* a resumes, waits again: behind b */
    assert_int_equal(coro_task_done(&ta), 0);
    assert_int_equal(waitq_len(&q.getters), 2);
    assert_ptr_equal(q.getters.list.first, &(b.u.get.w).link);
    put_int(&q, 2);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tb), 1);
    assert_int_equal(b.got[0], 2);
    /* cancelled after it resumed and parked again: it leaves the list */
    assert_int_equal(coro_task_cancel(&ta), 1);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelled(&ta), 1);
    assert_int_equal(a.err, CORO_ECANCELLED);
    assert_int_equal(a.done, 0);
    check_quiet(&q);
    put_int(&q, 3); /* nobody to wake: it stays */
    assert_int_equal(coro_queue_qsize(&q), 1);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- 38. cancellation at every suspension point: getters ---- */

/* asyncio test_cancelled_getters_not_being_held_in_self_getters. */
static void test_getter_cancelled_while_waiting(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 5), 0);
    start_getter(&t, &loop, &g, &q, 1);
    run_one_pass(&loop);
    assert_int_equal(waitq_len(&q.getters), 1);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(finish(&loop, &t), CORO_ECANCELLED);
    assert_int_equal(g.err, CORO_ECANCELLED);
    check_quiet(&q);
    put_int(&q, 1); /* the item stays: nobody took it */
    assert_int_equal(coro_queue_qsize(&q), 1);
    assert_int_equal(get_int(&q), 1);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* The cancel reaches a waiting getter (its waiter cancelled, still on the
 * list) and, in the same pass, an item arrives: the put skips it and wakes
 * the next getter; the cancelled one passes nothing on (it was not woken:
 * a spurious wakeup would send c to the back of the line, behind d). */
static void test_getter_cancelled_then_item_same_pass(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g[4];
    coro_task t[4];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    for (int i = 0; i < 4; i++)
        start_getter(&t[i], &loop, &g[i], &q, 1);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancel(&t[0]), 1);
    assert_int_equal(waitq_len(&q.getters), 4); /* a leaves when it runs */
    put_int(&q, 5);
    assert_null(g[1].u.get.w.q); /* b was woken, not a */
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelled(&t[0]), 1);
    assert_int_equal(coro_task_done(&t[1]), 1);
    assert_int_equal(g[1].got[0], 5);
    assert_int_equal(g[0].done, 0);
    assert_int_equal(coro_queue_qsize(&q), 0);
    assert_int_equal(waitq_len(&q.getters), 2);
    assert_ptr_equal(q.getters.list.first, &(g[2].u.get.w).link);
    put_int(&q, 6);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t[2]), 1);
    assert_int_equal(g[2].got[0], 6);
    coro_task_cancel(&t[3]);
    assert_int_equal(finish(&loop, &t[3]), CORO_ECANCELLED);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* Woken by a put, cancelled before it runs: the item is not lost (it is
 * still in the queue) and the wakeup goes to the next getter. */
static void test_getter_cancelled_after_wakeup(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor a, b;
    coro_task ta, tb;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    start_getter(&ta, &loop, &a, &q, 1);
    start_getter(&tb, &loop, &b, &q, 1);
    run_one_pass(&loop);
    put_int(&q, 5); /* wakes a */
    assert_null(a.u.get.w.q);
    assert_non_null(b.u.get.w.q);
    assert_int_equal(coro_task_cancel(&ta),
                     1); /* its waiter is done: the cancel is for its next step */
    run_one_pass(&loop); /* a: cancelled; passes the wakeup on to b */
    assert_int_equal(coro_task_cancelled(&ta), 1);
    assert_int_equal(a.done, 0);
    assert_int_equal(coro_queue_qsize(&q), 1); /* not lost */
    assert_null(b.u.get.w.q);                  /* b woken */
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tb), 1);
    assert_int_equal(b.got[0], 5);
    assert_int_equal(coro_queue_qsize(&q), 0); /* not duplicated */
    check_quiet(&q);

    /* with nobody behind it, the item simply stays */
    start_getter(&ta, &loop, &a, &q, 1);
    run_one_pass(&loop);
    put_int(&q, 6);
    assert_int_equal(coro_task_cancel(&ta), 1);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelled(&ta), 1);
    assert_int_equal(coro_queue_qsize(&q), 1);
    assert_int_equal(get_int(&q), 6);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* Woken, then the item is taken by someone else, then cancelled before it
 * runs: nothing is left for the next getter, so nothing is passed on (b
 * keeps its place at the head of the line). */
static void test_getter_woken_robbed_cancelled(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    for (int i = 0; i < 3; i++)
        start_getter(&t[i], &loop, &g[i], &q, 1);
    run_one_pass(&loop);
    put_int(&q, 1);                   /* wakes a */
    assert_int_equal(get_int(&q), 1); /* taken by someone else */
    coro_task_cancel(&t[0]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelled(&t[0]), 1);
    assert_int_equal(waitq_len(&q.getters), 2);
    assert_ptr_equal(q.getters.list.first, &(g[1].u.get.w).link);
    put_int(&q, 2);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t[1]), 1);
    assert_int_equal(g[1].got[0], 2);
    coro_task_cancel(&t[2]);
    assert_int_equal(finish(&loop, &t[2]), CORO_ECANCELLED);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio test_get_cancel_drop_one_pending_reader: if the retry got 2,
 * 1 was dropped. */
static void test_get_cancel_drop_one_pending_reader(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor r;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    start_getter(&t, &loop, &r, &q, 1);
    run_one_pass(&loop);
    put_int(&q, 1);
    put_int(&q, 2);
    coro_task_cancel(&t);
    assert_int_equal(finish(&loop, &t), CORO_ECANCELLED);
    start_getter(&t, &loop, &r, &q, 1); /* try again */
    assert_int_equal(finish(&loop, &t), 0);
    assert_int_equal(r.got[0], 1);
    assert_int_equal(get_int(&q), 2);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio test_get_cancel_drop_many_pending_readers. */
static void test_get_cancel_drop_many_pending_readers(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor r[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    for (int i = 0; i < 3; i++)
        start_getter(&t[i], &loop, &r[i], &q, 1);
    run_one_pass(&loop);
    put_int(&q, 1); /* wakes r0 */
    put_int(&q, 2); /* wakes r1 */
    coro_task_cancel(&t[0]);
    assert_int_equal(finish(&loop, &t[0]), CORO_ECANCELLED);
    assert_int_equal(finish(&loop, &t[2]), 0);
    assert_int_equal(coro_task_done(&t[1]), 1);
    assert_int_equal(r[1].got[0] + r[2].got[0], 3); /* {1, 2} between them */
    assert_int_equal(r[1].got[0] * r[2].got[0], 2);
    assert_int_equal(coro_queue_qsize(&q), 0);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio test_get_cancelled_race. */
static void test_get_cancelled_race(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor r1, r2;
    coro_task t1, t2;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    start_getter(&t1, &loop, &r1, &q, 1);
    start_getter(&t2, &loop, &r2, &q, 1);
    run_one_pass(&loop);
    coro_task_cancel(&t1);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t1), 1);
    put_int(&q, 'a');
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t2), 1);
    assert_int_equal(r2.got[0], 'a');
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* Cancelled after it got its item: the item is the task's (it was handed
 * over in the same step), and the cancel hits the next suspension point. */
static void test_getter_cancelled_after_it_got_the_item(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    start_getter(&t, &loop, &g, &q, 2);
    g.sleep_after = 10;
    run_one_pass(&loop);
    put_int(&q, 4);
    run_one_pass(&loop); /* got 4, now sleeping */
    assert_int_equal(g.done, 1);
    assert_int_equal(g.got[0], 4);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(finish(&loop, &t), CORO_ECANCELLED);
    assert_int_equal(g.done, 1);
    assert_int_equal(coro_queue_qsize(&q), 0);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- 38. cancellation at every suspension point: putters ---- */

/* asyncio test_cancelled_puts_not_being_held_in_self_putters. */
static void test_putter_cancelled_while_waiting(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor p;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    put_int(&q, 1);
    start_putter(&t, &loop, &p, &q, 2);
    run_one_pass(&loop);
    assert_int_equal(waitq_len(&q.putters), 1);
    assert_int_equal(coro_task_cancel(&t), 1);
    assert_int_equal(finish(&loop, &t), CORO_ECANCELLED);
    check_quiet(&q);
    assert_int_equal(q.unfinished, 1);
    assert_int_equal(get_int(&q), 1);
    assert_int_equal(coro_queue_qsize(&q), 0); /* 2 was never added */
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio test_put_cancel_drop: woken by a get, cancelled before it runs:
 * its item is not added, and a retry adds it exactly once. */
static void test_put_cancel_drop(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor p;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    put_int(&q, 1);
    start_putter(&t, &loop, &p, &q, 2);
    run_one_pass(&loop);
    assert_int_equal(get_int(&q), 1); /* wakes the putter */
    assert_null(p.u.put.w.q);
    coro_task_cancel(&t);
    assert_int_equal(finish(&loop, &t), CORO_ECANCELLED);
    assert_int_equal(coro_queue_qsize(&q), 0);
    start_putter(&t, &loop, &p, &q, 2); /* try again */
    assert_int_equal(finish(&loop, &t), 0);
    assert_int_equal(get_int(&q), 2);
    assert_int_equal(coro_queue_qsize(&q), 0);
    assert_int_equal(q.unfinished, 2);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* Woken by a get and cancelled before it runs, with a putter behind it:
 * the room goes to that one. */
static void test_putter_cancelled_at_the_pass_it_gets_room(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor a, b;
    coro_task ta, tb;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    put_int(&q, 1);
    start_putter(&ta, &loop, &a, &q, 2);
    start_putter(&tb, &loop, &b, &q, 3);
    run_one_pass(&loop);
    assert_int_equal(get_int(&q), 1); /* wakes a */
    coro_task_cancel(&ta);
    run_one_pass(&loop); /* a: cancelled, wakes b */
    assert_int_equal(coro_task_cancelled(&ta), 1);
    assert_int_equal(coro_queue_qsize(&q), 0);
    assert_null(b.u.put.w.q);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tb), 1);
    assert_int_equal(coro_queue_qsize(&q), 1);
    assert_int_equal(get_int(&q), 3);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* The putter's side of the same: woken by a get, the room taken by a
 * put_nowait, cancelled before it runs: nothing to pass on. */
static void test_putter_woken_robbed_cancelled(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor p[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    put_int(&q, 0);
    for (int i = 0; i < 3; i++)
        start_putter(&t[i], &loop, &p[i], &q, 10 + i);
    run_one_pass(&loop);
    assert_int_equal(get_int(&q), 0); /* wakes p0 */
    put_int(&q, 1);                   /* the room is taken */
    coro_task_cancel(&t[0]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelled(&t[0]), 1);
    assert_int_equal(waitq_len(&q.putters), 2);
    assert_ptr_equal(q.putters.list.first, &(p[1].u.put.w).link);
    assert_int_equal(get_int(&q), 1); /* wakes p1 */
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t[1]), 1);
    assert_int_equal(get_int(&q), 11);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t[2]), 1);
    assert_int_equal(get_int(&q), 12);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio test_put_cancelled_race. */
static void test_put_cancelled_race(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor a, b, c;
    coro_task ta, tb, tc;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    start_putter(&ta, &loop, &a, &q, 'a');
    start_putter(&tb, &loop, &b, &q, 'b');
    start_putter(&tc, &loop, &c, &q, 'X');
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&ta), 1);
    assert_int_equal(coro_task_done(&tb), 0);
    coro_task_cancel(&tc);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tc), 1);
    assert_int_equal(get_int(&q), 'a');
    run_one_pass(&loop);
    assert_int_equal(get_int(&q), 'b');
    assert_int_equal(finish(&loop, &tb), 0);
    assert_int_equal(coro_queue_qsize(&q), 0);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* A putter cancelled after it put (while sleeping): the item stays. */
static void test_putter_cancelled_after_it_put(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor p;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    put_int(&q, 1);
    actor_init(&p, &q, OP_PUT, 2);
    p.items[0] = 2;
    p.items[1] = 3;
    p.sleep_after = 10;
    start(&t, &loop, &p);
    run_one_pass(&loop);
    assert_int_equal(get_int(&q), 1);
    run_one_pass(&loop); /* put 2, now sleeping */
    assert_int_equal(p.done, 1);
    coro_task_cancel(&t);
    assert_int_equal(finish(&loop, &t), CORO_ECANCELLED);
    assert_int_equal(get_int(&q), 2);
    assert_int_equal(coro_queue_qsize(&q), 0);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* A task that cancelled itself and then gets from a non-empty queue:
 * the get does not suspend, so the cancel waits for a real suspension
 * (asyncio: `await q.get()` on a non-empty queue never yields). */
struct self_cancel {
    coro_frame co;
    coro_loop *loop;
    coro_queue *q;
    coro_queue_get_op get;
    int64_t got;
    int err;
};

static CORO_FN(self_cancel_step)
{
    struct self_cancel *self = CORO_SELF(struct self_cancel);
    CORO_BEGIN();
    coro_task_cancel(coro_current_task(self->loop));
    CORO_AWAIT(coro_queue_get(&self->get, self->q));
    self->got = CORO_RESULT.u.i;
    CORO_AWAIT_ERR(coro_queue_get(&self->get, self->q), self->err); /* empty: the cancel lands */
    CORO_RAISE(self->err);
    CORO_END();
}

static void test_get_fast_path_with_pending_cancel(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    coro_task t;
    struct self_cancel s = { 0 };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    put_int(&q, 9);
    coro_frame_init(&s.co, self_cancel_step);
    s.loop = &loop;
    s.q = &q;
    assert_int_equal(coro_task_init(&t, &loop, &s.co), 0);
    assert_int_equal(finish(&loop, &t), CORO_ECANCELLED);
    assert_int_equal(s.got, 9);
    assert_int_equal(s.err, CORO_ECANCELLED);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* An error value put in a queue comes out of the awaitable get as that
 * error (the await protocol), and out of get_nowait as a value. */
#define E_ITEM (CORO_EUSER - 7)

static void test_error_items(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g;
    coro_task t;
    coro_value v;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_error(E_ITEM)), 0);
    assert_int_equal(coro_queue_get_nowait(&q, &v), 0);
    assert_int_equal(coro_value_error(v), E_ITEM);
    put_int(&q, 1);
    assert_int_equal(coro_queue_put_nowait(&q, coro_error(E_ITEM)), 0);
    put_int(&q, 2);
    start_getter(&t, &loop, &g, &q, 3);
    assert_int_equal(finish(&loop, &t), E_ITEM);
    assert_int_equal(g.done, 1);
    assert_int_equal(g.err, E_ITEM);
    assert_int_equal(coro_queue_qsize(&q), 1); /* the error item was taken */
    assert_int_equal(get_int(&q), 2);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- 39. task_done and join ---- */

static void test_task_done_underflow(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    assert_int_equal(coro_queue_task_done(&q), CORO_EINVAL);
    put_int(&q, 1);
    put_int(&q, 2);
    get_int(&q);
    assert_int_equal(coro_queue_task_done(&q), 0);
    assert_int_equal(coro_queue_task_done(&q), 0); /* task_done counts puts, not gets */
    assert_int_equal(coro_queue_task_done(&q), CORO_EINVAL);
    assert_int_equal(q.unfinished, 0);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_join_empty_queue(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor j;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    actor_init(&j, &q, OP_JOIN, 3); /* three joins, one step */
    start(&t, &loop, &j);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t), 1);
    assert_int_equal(j.done, 3);

    /* everything put was marked done: the same */
    put_int(&q, 1);
    get_int(&q);
    assert_int_equal(coro_queue_task_done(&q), 0);
    start_joiner(&t, &loop, &j, &q);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t), 1);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* asyncio test_task_done: consumers call task_done; join returns once
 * every item is done, and every joiner wakes. */
static void test_join_waits_for_task_done(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor j[2];
    coro_task tj[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    put_int(&q, 1);
    put_int(&q, 2);
    start_joiner(&tj[0], &loop, &j[0], &q);
    start_joiner(&tj[1], &loop, &j[1], &q);
    run_one_pass(&loop);
    assert_int_equal(waitq_len(&q.joiners), 2);
    get_int(&q);
    get_int(&q);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tj[0]), 0); /* got, but not done */
    assert_int_equal(coro_queue_task_done(&q), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tj[0]), 0);
    assert_int_equal(coro_queue_task_done(&q), 0);
    put_int(&q, 3); /* a woken joiner stays woken (asyncio's Event) */
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tj[0]), 1);
    assert_int_equal(coro_task_done(&tj[1]), 1);
    assert_int_equal(j[0].err, 0);

    /* with consumer tasks */
    struct actor c[2];
    coro_task tc[2];
    for (int i = 0; i < 2; i++) {
        actor_init(&c[i], &q, OP_GET, 2);
        c[i].task_done = 1;
        c[i].sleep_after = 0.001;
        start(&tc[i], &loop, &c[i]);
    }
    for (int i = 4; i <= 6; i++)
        put_int(&q, i);
    start_joiner(&tj[0], &loop, &j[0], &q);
    assert_int_equal(finish(&loop, &tj[0]), 0);
    assert_int_equal(q.unfinished, 0);
    assert_int_equal(finish(&loop, &tc[0]), 0);
    assert_int_equal(finish(&loop, &tc[1]), 0);
    assert_int_equal(c[0].done + c[1].done, 4);
    assert_int_equal(c[0].got[0] + c[0].got[1] + c[1].got[0] + c[1].got[1], 3 + 4 + 5 + 6);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_joiner_cancelled(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor a, b;
    coro_task ta, tb;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    put_int(&q, 1);
    start_joiner(&ta, &loop, &a, &q);
    start_joiner(&tb, &loop, &b, &q);
    run_one_pass(&loop);
    coro_task_cancel(&ta);
    assert_int_equal(finish(&loop, &ta), CORO_ECANCELLED);
    assert_int_equal(waitq_len(&q.joiners), 1);
    get_int(&q);
    assert_int_equal(coro_queue_task_done(&q), 0);
    /* woken and cancelled before it runs: it ends cancelled, nothing to pass on */
    coro_task_cancel(&tb);
    assert_int_equal(finish(&loop, &tb), CORO_ECANCELLED);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- shutdown (asyncio 3.13) ---- */

static void test_shutdown_drains_then_fails(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g, j;
    coro_task tg, tj;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    put_int(&q, 1);
    put_int(&q, 2);
    start_joiner(&tj, &loop, &j, &q);
    run_one_pass(&loop);
    assert_int_equal(coro_queue_shutdown(&q, 0), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(3)), CORO_ESHUTDOWN);
    assert_int_equal(coro_queue_qsize(&q), 2);
    start_getter(&tg, &loop, &g, &q, 3); /* gets 1 and 2, then fails */
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tg), 1);
    assert_int_equal(g.done, 2);
    assert_int_equal(g.got[0], 1);
    assert_int_equal(g.got[1], 2);
    assert_int_equal(g.err, CORO_ESHUTDOWN);
    assert_int_equal(coro_task_result(&tg, NULL), CORO_ESHUTDOWN);
    assert_int_equal(coro_queue_get_nowait(&q, NULL), CORO_ESHUTDOWN);
    /* a plain shutdown does not wake joiners: task_done does */
    assert_int_equal(coro_task_done(&tj), 0);
    assert_int_equal(coro_queue_task_done(&q), 0);
    assert_int_equal(coro_queue_task_done(&q), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tj), 1);
    assert_int_equal(j.err, 0);
    assert_int_equal(coro_queue_shutdown(&q, 0), 0); /* again: fine */
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_shutdown_wakes_getters_and_putters(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue e, f;
    struct actor g[2], p[2];
    coro_task tg[2], tp[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&e, &loop, 1), 0); /* empty: getters wait */
    assert_int_equal(coro_queue_init(&f, &loop, 1), 0); /* full: putters wait */
    put_int(&f, 1);
    for (int i = 0; i < 2; i++) {
        start_getter(&tg[i], &loop, &g[i], &e, 1);
        start_putter(&tp[i], &loop, &p[i], &f, 10 + i);
    }
    run_one_pass(&loop);
    assert_int_equal(waitq_len(&e.getters), 2);
    assert_int_equal(waitq_len(&f.putters), 2);
    assert_int_equal(coro_queue_shutdown(&e, 0), 0);
    assert_int_equal(coro_queue_shutdown(&f, 0), 0);
    run_one_pass(&loop);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(coro_task_result(&tg[i], NULL), CORO_ESHUTDOWN);
        assert_int_equal(coro_task_result(&tp[i], NULL), CORO_ESHUTDOWN);
    }
    assert_int_equal(coro_queue_qsize(&f), 1); /* no putter's item went in */
    assert_int_equal(f.unfinished, 1);
    assert_int_equal(get_int(&f), 1); /* what was there is still handed out */
    check_quiet(&e);
    check_quiet(&f);
    /* new waits fail at once */
    start_getter(&tg[0], &loop, &g[0], &e, 1);
    start_putter(&tp[0], &loop, &p[0], &e, 5);
    run_one_pass(&loop);
    assert_int_equal(coro_task_result(&tg[0], NULL), CORO_ESHUTDOWN);
    assert_int_equal(coro_task_result(&tp[0], NULL), CORO_ESHUTDOWN);
    check_quiet(&e);
    assert_int_equal(coro_queue_fini(&e), 0);
    assert_int_equal(coro_queue_fini(&f), 0);
    close_loop(&loop);
}

/* A getter woken by a put, then the queue is shut down before it runs:
 * the item is still there, so it gets it (3.13: gets drain). */
static void test_shutdown_after_getter_woken(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    start_getter(&t, &loop, &g, &q, 1);
    run_one_pass(&loop);
    put_int(&q, 8);
    assert_int_equal(coro_queue_shutdown(&q, 0), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_result(&t, NULL), 0);
    assert_int_equal(g.got[0], 8);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_shutdown_immediate(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q, f;
    struct actor j, g, p;
    coro_task tj, tg, tp;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    assert_int_equal(coro_queue_init(&f, &loop, 2), 0);
    for (int i = 0; i < 3; i++)
        put_int(&q, i);
    start_joiner(&tj, &loop, &j, &q);
    put_int(&f, 1);
    put_int(&f, 2);
    start_putter(&tp, &loop, &p, &f, 3);
    run_one_pass(&loop);
    assert_int_equal(coro_queue_shutdown(&q, 1), 0);
    assert_int_equal(coro_queue_qsize(&q), 0);
    assert_int_equal(q.unfinished, 0);
    assert_int_equal(coro_queue_shutdown(&f, 1), 0);
    assert_int_equal(coro_queue_qsize(&f), 0);
    start_getter(&tg, &loop, &g, &q, 1);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tj), 1); /* unfinished reached 0 */
    assert_int_equal(j.err, 0);
    assert_int_equal(coro_task_result(&tg, NULL), CORO_ESHUTDOWN);
    assert_int_equal(coro_task_result(&tp, NULL), CORO_ESHUTDOWN); /* its item not added */
    assert_int_equal(coro_queue_qsize(&f), 0);
    assert_int_equal(coro_queue_get_nowait(&f, NULL), CORO_ESHUTDOWN);
    assert_int_equal(coro_queue_put_nowait(&f, coro_int(1)), CORO_ESHUTDOWN);
    check_quiet(&q);
    check_quiet(&f);
    assert_int_equal(coro_queue_fini(&q), 0);
    assert_int_equal(coro_queue_fini(&f), 0);
    close_loop(&loop);
}

/* Immediate: the unfinished count drops by one per item dropped, not
 * below 0: items already got but not marked done keep joiners waiting. */
static void test_shutdown_immediate_unfinished(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor j, g;
    coro_task tj, tg;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    for (int i = 0; i < 4; i++)
        put_int(&q, i);
    get_int(&q); /* two got, not done */
    get_int(&q);
    start_joiner(&tj, &loop, &j, &q);
    run_one_pass(&loop);
    assert_int_equal(coro_queue_shutdown(&q, 0), 0); /* plain first: nothing dropped */
    assert_int_equal(q.unfinished, 4);
    assert_int_equal(coro_queue_shutdown(&q, 1), 0); /* then immediate drops 2 */
    assert_int_equal(q.unfinished, 2);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tj), 0);
    assert_int_equal(coro_queue_task_done(&q), 0);
    assert_int_equal(coro_queue_task_done(&q), 0);
    assert_int_equal(coro_queue_task_done(&q), CORO_EINVAL);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tj), 1);
    /* and the shut down, empty queue refuses a get */
    start_getter(&tg, &loop, &g, &q, 1);
    run_one_pass(&loop);
    assert_int_equal(coro_task_result(&tg, NULL), CORO_ESHUTDOWN);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- 40. LIFO and priority keep their order under the same rules ---- */

static void test_lifo_order(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g, p;
    coro_task tg, tp;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lifo_queue_init(&q, &loop, 3), 0);
    put_int(&q, 1);
    put_int(&q, 3);
    put_int(&q, 2);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(4)), CORO_EFULL);
    start_putter(&tp, &loop, &p, &q, 4); /* waits for room */
    run_one_pass(&loop);
    assert_int_equal(get_int(&q), 2);
    run_one_pass(&loop); /* 4 goes on top */
    assert_int_equal(coro_task_done(&tp), 1);
    start_getter(&tg, &loop, &g, &q, 3);
    run_one_pass(&loop);
    assert_int_equal(g.got[0], 4);
    assert_int_equal(g.got[1], 3);
    assert_int_equal(g.got[2], 1);
    check_quiet(&q);

    /* a waiting getter gets the item put; cancel at the wakeup passes it on */
    struct actor a, b;
    coro_task ta, tb;
    start_getter(&ta, &loop, &a, &q, 1);
    start_getter(&tb, &loop, &b, &q, 1);
    run_one_pass(&loop);
    put_int(&q, 5);
    put_int(&q, 6);
    coro_task_cancel(&ta);
    run_one_pass(&loop); /* b (woken by 6) takes the top; a passes on: nobody left */
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelled(&ta), 1);
    assert_int_equal(b.got[0], 6);
    assert_int_equal(get_int(&q), 5);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* (priority, id) packed as priority * 1000 + id: ties on the priority */
static int by_thousands(coro_value a, coro_value b, void *arg)
{
    int *calls = arg;
    (*calls)++;
    int64_t x = a.u.i / 1000, y = b.u.i / 1000;
    return (x > y) - (x < y);
}

static void test_priority_order_and_ties(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    int calls = 0;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_priority_queue_init(&q, &loop, 0, by_thousands, &calls), 0);
    /* asyncio test_order for PriorityQueue: 1, 3, 2 -> 1, 2, 3 */
    put_int(&q, 1000);
    put_int(&q, 3000);
    put_int(&q, 2000);
    assert_int_equal(get_int(&q), 1000);
    assert_int_equal(get_int(&q), 2000);
    assert_int_equal(get_int(&q), 3000);
    assert_true(calls > 0); /* our comparator, with our arg */

    /* a pseudo-random sequence with many ties comes out as a stable sort */
    enum { N = 500 };
    static int64_t in[N], want[N];
    uint32_t x = 12345;
    int count[10] = { 0 };
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        int prio = (int)((x >> 16) % 10);
        in[i] = prio * 1000 + i; /* i < 1000: the id */
        count[prio]++;
        put_int(&q, in[i]);
    }
    int k = 0;
    for (int prio = 0; prio < 10; prio++)
        for (int i = 0; i < N; i++)
            if (in[i] / 1000 == prio)
                want[k++] = in[i];
    assert_int_equal(k, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(get_int(&q), want[i]);
    /* interleaved puts and gets keep the ties in insertion order */
    put_int(&q, 5001);
    put_int(&q, 5002);
    put_int(&q, 1003);
    assert_int_equal(get_int(&q), 1003);
    put_int(&q, 5004);
    put_int(&q, 1005);
    assert_int_equal(get_int(&q), 1005);
    assert_int_equal(get_int(&q), 5001);
    assert_int_equal(get_int(&q), 5002);
    assert_int_equal(get_int(&q), 5004);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_priority_default_order(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    coro_value v;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_priority_queue_init(&q, &loop, 0, NULL, NULL), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(5)), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_double(NAN)), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_double(2.5)), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(INT64_MIN)), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(-3)), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(INT64_MAX)), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(INT64_MAX - 1)), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_double(-INFINITY)), 0);
    /* not numbers: refused, nothing added, nothing counted */
    assert_int_equal(coro_queue_put_nowait(&q, coro_ptr(&q)), CORO_EINVAL);
    assert_int_equal(coro_queue_put_nowait(&q, coro_none()), CORO_EINVAL);
    assert_int_equal(coro_queue_put_nowait(&q, coro_error(CORO_EUSER - 1)), CORO_EINVAL);
    assert_int_equal(coro_queue_qsize(&q), 8);
    assert_int_equal(q.unfinished, 8);
    assert_int_equal(coro_queue_get_nowait(&q, &v), 0);
    assert_int_equal(v.tag, CORO_DOUBLE);
    assert_true(v.u.d == -INFINITY);
    assert_int_equal(get_int(&q), INT64_MIN);
    assert_int_equal(get_int(&q), -3);
    assert_int_equal(coro_queue_get_nowait(&q, &v), 0);
    assert_true(v.tag == CORO_DOUBLE && v.u.d == 2.5);
    assert_int_equal(get_int(&q), 5);
    assert_int_equal(get_int(&q), INT64_MAX - 1); /* int against int: exact */
    assert_int_equal(get_int(&q), INT64_MAX);
    assert_int_equal(coro_queue_get_nowait(&q, &v), 0);
    assert_true(v.tag == CORO_DOUBLE && isnan(v.u.d)); /* NaN last */

    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* A putter of a non-number to a default priority queue fails at once, even
 * when the queue is full (the argument is checked first). */
struct bad_putter {
    coro_frame co;
    coro_queue *q;
    coro_queue_put_op put;
};

static CORO_FN(bad_putter_step)
{
    struct bad_putter *self = CORO_SELF(struct bad_putter);
    CORO_BEGIN();
    CORO_AWAIT(coro_queue_put(&self->put, self->q, coro_ptr(self)));
    CORO_END();
}

static void test_priority_bad_item_put(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    coro_task t;
    struct bad_putter b;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_priority_queue_init(&q, &loop, 1, NULL, NULL), 0);
    put_int(&q, 1);
    coro_frame_init(&b.co, bad_putter_step);
    b.q = &q;
    assert_int_equal(coro_task_init(&t, &loop, &b.co), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_task_result(&t, NULL), CORO_EINVAL);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* The waking rules are the queue's, not the kind's: a bounded priority
 * queue with waiting getters and putters, cancellations included. */
static void test_priority_under_the_same_rules(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g[2], p[3];
    coro_task tg[2], tp[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_priority_queue_init(&q, &loop, 2, NULL, NULL), 0);
    start_getter(&tg[0], &loop, &g[0], &q, 1);
    start_getter(&tg[1], &loop, &g[1], &q, 1);
    run_one_pass(&loop);
    put_int(&q, 9); /* wakes g0 */
    put_int(&q, 4); /* wakes g1 */
    coro_task_cancel(&tg[0]);
    run_one_pass(&loop); /* g0 cancelled (nobody behind to pass on to); g1 takes the smallest */
    assert_int_equal(coro_task_cancelled(&tg[0]), 1);
    assert_int_equal(g[1].got[0], 4);
    assert_int_equal(coro_queue_qsize(&q), 1);
    put_int(&q, 7);
    for (int i = 0; i < 3; i++)
        start_putter(&tp[i], &loop, &p[i], &q, 3 - i); /* 3, 2, 1 wait */
    run_one_pass(&loop);
    assert_int_equal(waitq_len(&q.putters), 3);
    assert_int_equal(get_int(&q), 7); /* wakes the putter of 3 */
    coro_task_cancel(&tp[0]);         /* ... cancelled at that pass: 2's turn */
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancelled(&tp[0]), 1);
    assert_int_equal(coro_task_done(&tp[1]), 1);
    assert_int_equal(get_int(&q), 2);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&tp[2]), 1);
    assert_int_equal(get_int(&q), 1);
    assert_int_equal(get_int(&q), 9);
    assert_int_equal(coro_queue_qsize(&q), 0);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- storage: growth, caller-given arrays, allocation counts ---- */

static void test_unbounded_growth(void **state)
{
    (void)state;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    coro_loop loop;
    coro_queue q;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    for (int kind = 0; kind < 3; kind++) {
        long calls0 = a.calls;
        size_t live0 = a.live;
        int rc = kind == 0   ? coro_queue_init(&q, &loop, 0)
                 : kind == 1 ? coro_lifo_queue_init(&q, &loop, 0)
                             : coro_priority_queue_init(&q, &loop, 0, NULL, NULL);
        assert_int_equal(rc, 0);
        assert_int_equal(a.calls, calls0); /* nothing until the first put */
        /* move the ring's head first, so the FIFO growths wrap */
        put_int(&q, -1);
        put_int(&q, -2);
        get_int(&q);
        get_int(&q);
        assert_int_equal(a.calls, calls0 + 1); /* 8 slots */
        for (int i = 0; i < 1000; i++)
            put_int(&q, i);
        assert_int_equal(q.cap, 1024);
        assert_int_equal(a.calls, calls0 + 8); /* 8 -> 16 -> ... -> 1024 */
        for (int i = 0; i < 1000; i++)
            assert_int_equal(get_int(&q), kind == 1 ? 999 - i : i);
        /* wrap again at the new size, then grow once more while wrapped */
        for (int i = 0; i < 1500; i++)
            put_int(&q, i);
        for (int i = 0; i < 1500; i++)
            assert_int_equal(get_int(&q), kind == 1 ? 1499 - i : i);
        assert_int_equal(a.calls, calls0 + 9);
        assert_int_equal(coro_queue_fini(&q), 0);
        assert_int_equal(a.live, live0);
    }
    close_loop(&loop);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
}

/* The ring grows while wrapped: order survives. */
static void test_fifo_growth_while_wrapped(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    int64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 3 + round % 5; i++)
            put_int(&q, next_in++);
        for (int i = 0; i < 2; i++)
            assert_int_equal(get_int(&q), next_out++);
    }
    while (next_out < next_in)
        assert_int_equal(get_int(&q), next_out++);
    assert_int_equal(coro_queue_get_nowait(&q, NULL), CORO_EEMPTY);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

static void test_caller_storage(void **state)
{
    (void)state;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    coro_loop loop;
    coro_queue q;
    coro_value buf[3];
    coro_queue_pentry pbuf[3];
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    long calls0 = a.calls;
    for (int kind = 0; kind < 3; kind++) {
        int rc = kind == 0   ? coro_queue_init_buf(&q, &loop, buf, 3)
                 : kind == 1 ? coro_lifo_queue_init_buf(&q, &loop, buf, 3)
                             : coro_priority_queue_init_buf(&q, &loop, pbuf, 3, NULL, NULL);
        assert_int_equal(rc, 0);
        assert_int_equal(coro_queue_maxsize(&q), 3);
        for (int round = 0; round < 4; round++) {
            put_int(&q, 2);
            put_int(&q, 1);
            put_int(&q, 3);
            assert_int_equal(coro_queue_full(&q), 1);
            assert_int_equal(coro_queue_put_nowait(&q, coro_int(4)), CORO_EFULL);
            int64_t want[3][3] = { { 2, 1, 3 }, { 3, 1, 2 }, { 1, 2, 3 } };
            for (int i = 0; i < 3; i++)
                assert_int_equal(get_int(&q), want[kind][i]);
        }
        /* a waiting putter, the caller's array and all */
        struct actor p;
        coro_task t;
        put_int(&q, 1);
        put_int(&q, 1);
        put_int(&q, 1);
        start_putter(&t, &loop, &p, &q, 0);
        run_one_pass(&loop);
        get_int(&q);
        run_one_pass(&loop);
        assert_int_equal(coro_task_done(&t), 1);
        assert_int_equal(coro_queue_qsize(&q), 3);
        assert_int_equal(coro_queue_fini(&q), 0); /* frees nothing */
    }
    assert_int_equal(a.calls, calls0 + 1); /* the loop's task list, once */
    close_loop(&loop);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
}

/* A producer and a consumer ping-pong through a queue of 2 for a while,
 * waiting on each other: after the first round, no allocation at all. */
struct pingpong {
    coro_frame co;
    coro_queue *q;
    int producer, i, n;
    int64_t sum;
    long *calls;
    uint64_t *slab;
    coro_loop *loop;
    union {
        coro_queue_get_op get;
        coro_queue_put_op put;
    } u;
};

static CORO_FN(pingpong_step)
{
    struct pingpong *self = CORO_SELF(struct pingpong);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        if (self->producer)
            CORO_AWAIT(coro_queue_put(&self->u.put, self->q, coro_int(self->i)));
        else
            CORO_AWAIT(coro_queue_get(&self->u.get, self->q));
        if (!self->producer)
            self->sum += CORO_RESULT.u.i;
        if (self->i % 3 == 0)
            CORO_SLEEP(0);
    }
    CORO_END();
}

static void test_no_allocation_on_waits(void **state)
{
    (void)state;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    coro_loop loop;
    coro_queue q;
    struct pingpong pr = { 0 }, co = { 0 };
    coro_task tp, tc;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 2), 0);
    coro_frame_init(&pr.co, pingpong_step);
    coro_frame_init(&co.co, pingpong_step);
    pr.q = co.q = &q;
    pr.producer = 1;
    pr.n = co.n = 3000;
    assert_int_equal(coro_task_init(&tp, &loop, &pr.co), 0);
    assert_int_equal(coro_task_init(&tc, &loop, &co.co), 0);
    run_one_pass(&loop); /* warm up: the first pass may poll the selector */
    long calls0 = a.calls;
    uint64_t slab0 = loop.slab_allocs;
    assert_int_equal(finish(&loop, &tc), 0);
    assert_int_equal(finish(&loop, &tp), 0);
    assert_int_equal(co.sum, (int64_t)2999 * 3000 / 2);
    assert_int_equal(a.calls, calls0);
    assert_int_equal(loop.slab_allocs, slab0);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
    assert_int_equal(a.live, 0);
}

/* ---- out of memory at the init and growth allocation sites ---- */

static int init_kind(coro_queue *q, coro_loop *loop, int kind, size_t maxsize)
{
    if (kind == 0)
        return coro_queue_init(q, loop, maxsize);
    if (kind == 1)
        return coro_lifo_queue_init(q, loop, maxsize);
    return coro_priority_queue_init(q, loop, maxsize, NULL, NULL);
}

/* One scenario under an allocator that fails its Nth call (or every call
 * from the Nth on). Returns how many failures were injected. */
static long oom_scenario(int kind, long fail_at, int persistent)
{
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    coro_loop loop;
    coro_queue q;
    a.fail_at = fail_at;
    a.persistent = persistent;
    int rc = coro_loop_init(&loop, &o);
    if (rc != 0) {
        assert_int_equal(rc, CORO_ENOMEM);
        assert_int_equal(a.live, 0);
        return a.failures;
    }
    /* init of a bounded queue: its one allocation */
    rc = init_kind(&q, &loop, kind, 50);
    if (rc == 0) {
        for (int i = 0; i < 50; i++)
            put_int(&q, i);
        assert_int_equal(coro_queue_put_nowait(&q, coro_int(50)), CORO_EFULL);
        assert_int_equal(coro_queue_fini(&q), 0);
    } else {
        assert_int_equal(rc, CORO_ENOMEM);
    }
    /* growth of an unbounded one: a failed put changes nothing */
    assert_int_equal(init_kind(&q, &loop, kind, 0), 0);
    int64_t in[100];
    int n = 0;
    for (int i = 0; i < 100; i++) {
        size_t before = coro_queue_qsize(&q), unfinished = q.unfinished;
        rc = coro_queue_put_nowait(&q, coro_int(i));
        if (rc == 0) {
            in[n++] = i;
        } else {
            assert_int_equal(rc, CORO_ENOMEM);
            assert_int_equal(coro_queue_qsize(&q), before);
            assert_int_equal(q.unfinished, unfinished);
        }
        assert_int_equal(coro_queue_qsize(&q), n);
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(get_int(&q), kind == 1 ? in[n - 1 - i] : in[i]);
    assert_int_equal(coro_queue_get_nowait(&q, NULL), CORO_EEMPTY);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
    return a.failures;
}

static void test_out_of_memory_walk(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        for (int persistent = 0; persistent < 2; persistent++) {
            long n = 1;
            while (oom_scenario(kind, n, persistent) > 0) {
                n++;
                assert_true(n < 1000);
            }
            assert_true(n > 4); /* the walk did reach the queue's sites */
        }
    }
}

/* The awaitable put on an unbounded queue whose growth fails: the task
 * fails with CORO_ENOMEM, nothing was added, and a retry succeeds. */
static void test_put_growth_failure(void **state)
{
    (void)state;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    coro_loop loop;
    coro_queue q;
    struct actor p;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    for (int i = 0; i < 8; i++)
        put_int(&q, i); /* exactly full: the next put grows */
    start_putter(&t, &loop, &p, &q, 8);
    a.fail_at = a.calls + 1;
    assert_int_equal(finish(&loop, &t), CORO_ENOMEM);
    assert_int_equal(a.failures, 1);
    assert_int_equal(coro_queue_qsize(&q), 8);
    assert_int_equal(q.unfinished, 8);
    start_putter(&t, &loop, &p, &q, 8);
    assert_int_equal(finish(&loop, &t), 0);
    for (int i = 0; i < 9; i++)
        assert_int_equal(get_int(&q), i);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
    assert_int_equal(a.live, 0);
}

/* ---- fini ---- */

static void test_fini_refuses_while_waited_on(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    struct actor g;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 4), 0);
    start_getter(&t, &loop, &g, &q, 1);
    run_one_pass(&loop);
    assert_int_equal(coro_queue_fini(&q), CORO_ESTATE);
    put_int(&q, 1); /* woken, not yet resumed: still refused */
    assert_int_equal(coro_queue_fini(&q), CORO_ESTATE);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t), 1);
    /* shut down, let it run: then fini */
    start_getter(&t, &loop, &g, &q, 1);
    run_one_pass(&loop);
    assert_int_equal(coro_queue_shutdown(&q, 1), 0);
    assert_int_equal(coro_queue_fini(&q), CORO_ESTATE);
    run_one_pass(&loop);
    assert_int_equal(coro_task_result(&t, NULL), CORO_ESHUTDOWN);
    assert_int_equal(coro_queue_fini(&q), 0);
    /* finalised: everything refuses; fini again is fine */
    assert_int_equal(coro_queue_fini(&q), 0);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(1)), CORO_EINVAL);
    assert_int_equal(coro_queue_get_nowait(&q, NULL), CORO_EINVAL);
    assert_int_equal(coro_queue_task_done(&q), CORO_EINVAL);
    assert_int_equal(coro_queue_shutdown(&q, 0), CORO_EINVAL);
    assert_null(coro_queue_get(&g.u.get, &q));
    assert_null(coro_queue_put(&g.u.put, &q, coro_int(1)));
    assert_null(coro_queue_join(&g.u.join, &q));
    close_loop(&loop);
}

/* A task parked on a queue when the loop is closed is dropped; fini then
 * succeeds (nothing can resume), and the closed loop's queue refuses. */
static void test_fini_after_loop_close(void **state)
{
    (void)state;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    coro_loop loop;
    coro_queue q;
    struct actor g;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 4), 0);
    start_getter(&t, &loop, &g, &q, 1);
    run_one_pass(&loop);
    close_loop(&loop);
    assert_int_equal(coro_queue_put_nowait(&q, coro_int(1)), CORO_ECLOSED);
    assert_int_equal(coro_queue_get_nowait(&q, NULL), CORO_ECLOSED);
    assert_int_equal(coro_queue_task_done(&q), CORO_ECLOSED);
    assert_int_equal(coro_queue_shutdown(&q, 1), CORO_ECLOSED);
    assert_int_equal(a.live, 0); /* close released the queue's array too */
    assert_int_equal(coro_queue_fini(&q), 0);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.bad_osize, 0);
    assert_int_equal(coro_queue_init(&q, &loop, 4), CORO_ECLOSED);
}

/* ---- arguments ---- */

struct await_null {
    coro_frame co;
    int err;
};

static CORO_FN(await_null_step)
{
    struct await_null *self = CORO_SELF(struct await_null);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_queue_get(NULL, NULL), self->err);
    CORO_END();
}

static void test_null_arguments(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    coro_value buf[2];
    coro_queue_pentry pbuf[2];
    coro_queue_get_op gop;
    coro_queue_put_op pop;
    coro_queue_join_op jop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(NULL, &loop, 0), CORO_EINVAL);
    assert_int_equal(coro_queue_init(&q, NULL, 0), CORO_EINVAL);
    assert_int_equal(coro_lifo_queue_init(NULL, &loop, 1), CORO_EINVAL);
    assert_int_equal(coro_priority_queue_init(&q, NULL, 1, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_queue_init_buf(&q, &loop, NULL, 2), CORO_EINVAL);
    assert_int_equal(coro_queue_init_buf(&q, &loop, buf, 0), CORO_EINVAL);
    assert_int_equal(coro_queue_init_buf(NULL, &loop, buf, 2), CORO_EINVAL);
    assert_int_equal(coro_lifo_queue_init_buf(&q, NULL, buf, 2), CORO_EINVAL);
    assert_int_equal(coro_lifo_queue_init_buf(&q, &loop, NULL, 2), CORO_EINVAL);
    assert_int_equal(coro_priority_queue_init_buf(&q, &loop, NULL, 2, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_priority_queue_init_buf(&q, &loop, pbuf, 0, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_queue_init(&q, &loop, SIZE_MAX), CORO_ENOMEM); /* cannot be sized */
    assert_int_equal(coro_priority_queue_init(&q, &loop, SIZE_MAX / 16, NULL, NULL), CORO_ENOMEM);
    assert_int_equal(coro_queue_fini(NULL), CORO_EINVAL);
    assert_int_equal(coro_queue_qsize(NULL), 0);
    assert_int_equal(coro_queue_empty(NULL), 0);
    assert_int_equal(coro_queue_full(NULL), 0);
    assert_int_equal(coro_queue_maxsize(NULL), 0);
    assert_int_equal(coro_queue_put_nowait(NULL, coro_int(1)), CORO_EINVAL);
    assert_int_equal(coro_queue_get_nowait(NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_queue_task_done(NULL), CORO_EINVAL);
    assert_int_equal(coro_queue_shutdown(NULL, 1), CORO_EINVAL);
    assert_int_equal(coro_queue_init(&q, &loop, 1), 0);
    assert_null(coro_queue_get(NULL, &q));
    assert_null(coro_queue_get(&gop, NULL));
    assert_null(coro_queue_put(NULL, &q, coro_int(1)));
    assert_null(coro_queue_put(&pop, NULL, coro_int(1)));
    assert_null(coro_queue_join(NULL, &q));
    assert_null(coro_queue_join(&jop, NULL));
    assert_non_null(coro_queue_get(&gop, &q));
    /* awaiting NULL fails with CORO_EINVAL */
    struct await_null an = { 0 };
    coro_task t;
    coro_frame_init(&an.co, await_null_step);
    assert_int_equal(coro_task_init(&t, &loop, &an.co), 0);
    assert_int_equal(finish(&loop, &t), 0);
    assert_int_equal(an.err, CORO_EINVAL);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* A generator cannot wait (only a task can): a get on an empty queue
 * driven by coro_gen fails with CORO_EINVAL, and leaves no waiter. */
static void test_generator_cannot_wait(void **state)
{
    (void)state;
    coro_loop loop;
    coro_queue q;
    coro_queue_get_op op;
    coro_gen g;
    coro_value v;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_queue_init(&q, &loop, 0), 0);
    put_int(&q, 3);
    assert_int_equal(coro_gen_init(&g, coro_queue_get(&op, &q)), 0);
    assert_int_equal(coro_gen_next(&g, &v), 0); /* returned at once */
    assert_int_equal(v.u.i, 3);
    assert_int_equal(coro_gen_init(&g, coro_queue_get(&op, &q)), 0);
    assert_int_equal(coro_gen_next(&g, &v), CORO_EINVAL);
    check_quiet(&q);
    assert_int_equal(coro_queue_fini(&q), 0);
    close_loop(&loop);
}

/* ---- the producer/consumer example of docs/queues.md ---- */

struct worker {
    coro_frame co;
    coro_queue *q;
    coro_queue_get_op get;
    int64_t *total;
};

static CORO_FN(worker_step)
{
    struct worker *self = CORO_SELF(struct worker);
    CORO_BEGIN();
    for (;;) {
        CORO_AWAIT(coro_queue_get(&self->get, self->q));
        *self->total += CORO_RESULT.u.i;
        CORO_SLEEP(0.001); /* the work */
        coro_queue_task_done(self->q);
    }
    CORO_END();
}

struct main_frame {
    coro_frame co;
    coro_loop *loop;
    coro_queue q;
    struct worker w[3];
    coro_task *t[3];
    coro_queue_put_op put;
    coro_queue_join_op join;
    int i, err;
    int64_t total;
};

static CORO_FN(main_step)
{
    struct main_frame *self = CORO_SELF(struct main_frame);
    CORO_BEGIN();
    self->err = coro_queue_init(&self->q, self->loop, 4);
    if (self->err)
        CORO_RAISE(self->err);
    for (self->i = 0; self->i < 3; self->i++) {
        self->w[self->i].q = &self->q;
        self->w[self->i].total = &self->total;
        coro_frame_init(&self->w[self->i].co, worker_step);
        self->t[self->i] = coro_spawn(self->loop, &self->w[self->i].co);
        if (!self->t[self->i])
            CORO_RAISE(CORO_ENOMEM);
    }
    for (self->i = 1; self->i <= 20; self->i++)
        CORO_AWAIT(coro_queue_put(&self->put, &self->q, coro_int(self->i)));
    CORO_AWAIT(coro_queue_join(&self->join, &self->q)); /* every item processed */
    for (self->i = 0; self->i < 3; self->i++)
        coro_task_cancel(self->t[self->i]);
    for (self->i = 0; self->i < 3; self->i++)
        CORO_AWAIT_ERR(self->t[self->i], self->err); /* let them finish */
    CORO_RETURN(coro_int(self->total));
    CORO_FINALLY
    for (self->i = 0; self->i < 3; self->i++)
        coro_task_release(self->t[self->i]);
    coro_queue_fini(&self->q);
    CORO_END();
}

static void test_producer_consumer_example(void **state)
{
    (void)state;
    coro_loop loop;
    coro_task t;
    struct main_frame m;
    memset(&m, 0, sizeof m);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_frame_init(&m.co, main_step);
    m.loop = &loop;
    assert_int_equal(coro_task_init(&t, &loop, &m.co), 0);
    assert_int_equal(finish(&loop, &t), 0);
    coro_value v;
    assert_int_equal(coro_task_result(&t, &v), 0);
    assert_int_equal(v.u.i, 210);
    assert_null(m.q.loop); /* finalised */
    close_loop(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_nowait_errors_and_state),
        cmocka_unit_test(test_maxsize_third_put_waits),
        cmocka_unit_test(test_getters_wake_in_order),
        cmocka_unit_test(test_putters_wake_in_order),
        cmocka_unit_test(test_woken_getter_finds_item_taken),
        cmocka_unit_test(test_getter_cancelled_while_waiting),
        cmocka_unit_test(test_getter_cancelled_then_item_same_pass),
        cmocka_unit_test(test_getter_cancelled_after_wakeup),
        cmocka_unit_test(test_getter_woken_robbed_cancelled),
        cmocka_unit_test(test_get_cancel_drop_one_pending_reader),
        cmocka_unit_test(test_get_cancel_drop_many_pending_readers),
        cmocka_unit_test(test_get_cancelled_race),
        cmocka_unit_test(test_getter_cancelled_after_it_got_the_item),
        cmocka_unit_test(test_putter_cancelled_while_waiting),
        cmocka_unit_test(test_put_cancel_drop),
        cmocka_unit_test(test_putter_cancelled_at_the_pass_it_gets_room),
        cmocka_unit_test(test_putter_woken_robbed_cancelled),
        cmocka_unit_test(test_put_cancelled_race),
        cmocka_unit_test(test_putter_cancelled_after_it_put),
        cmocka_unit_test(test_get_fast_path_with_pending_cancel),
        cmocka_unit_test(test_error_items),
        cmocka_unit_test(test_task_done_underflow),
        cmocka_unit_test(test_join_empty_queue),
        cmocka_unit_test(test_join_waits_for_task_done),
        cmocka_unit_test(test_joiner_cancelled),
        cmocka_unit_test(test_shutdown_drains_then_fails),
        cmocka_unit_test(test_shutdown_wakes_getters_and_putters),
        cmocka_unit_test(test_shutdown_after_getter_woken),
        cmocka_unit_test(test_shutdown_immediate),
        cmocka_unit_test(test_shutdown_immediate_unfinished),
        cmocka_unit_test(test_lifo_order),
        cmocka_unit_test(test_priority_order_and_ties),
        cmocka_unit_test(test_priority_default_order),
        cmocka_unit_test(test_priority_bad_item_put),
        cmocka_unit_test(test_priority_under_the_same_rules),
        cmocka_unit_test(test_unbounded_growth),
        cmocka_unit_test(test_fifo_growth_while_wrapped),
        cmocka_unit_test(test_caller_storage),
        cmocka_unit_test(test_no_allocation_on_waits),
        cmocka_unit_test(test_out_of_memory_walk),
        cmocka_unit_test(test_put_growth_failure),
        cmocka_unit_test(test_fini_refuses_while_waited_on),
        cmocka_unit_test(test_fini_after_loop_close),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_generator_cannot_wait),
        cmocka_unit_test(test_producer_consumer_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
