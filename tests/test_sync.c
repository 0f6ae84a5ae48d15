/*
 * tests/test_sync.c - asyncio/locks.py in C: SEMANTICS items 33-36 (Lock,
 * Event, Semaphore, Condition), Barrier, the scoped `async with` frames,
 * cancellation at every suspension point, NULL arguments, no allocation.
 *
 * Cancellation is tried at each suspension point in three places: before
 * the waiter is woken (it leaves the queue, nobody else notices), in the
 * same pass it is woken (what it was given passes to the next waiter:
 * nothing lost, nothing given twice), and after it resumed (a scoped frame
 * gives the lock or permit back).
 *
 * Most tests use one frame, `actor`: it awaits one operation, logs its id
 * on success or -id on failure (and then fails with the same error),
 * optionally holds what it got for a few loop passes and releases it
 * (logging 100 + id). The scoped forms run a `body` child frame, which logs
 * its id on entry. Tests compare the whole log (TLOG_EXPECT).
 */
#include "helpers.h"

#include <limits.h>

#define E1 (CORO_EUSER - 1)

enum { A_LOCK = 1, A_EVENT, A_SEM, A_BARRIER, A_WITH_LOCK, A_WITH_SEM, A_COND };

/* ---- body: the child frame of the scoped forms ---- */

struct body {
    coro_frame co;
    tlog *log;
    int id, passes, fail, i, fin;
    coro_lock *lock;     /* if set: is it held on entry? */
    coro_semaphore *sem; /* if set: release it inside (a misuse) */
    int held_on_entry;
};

static CORO_FN(body_step)
{
    struct body *self = CORO_SELF(struct body);
    CORO_BEGIN();
    if (self->lock)
        self->held_on_entry = coro_lock_locked(self->lock);
    tlog_add(self->log, self->id);
    for (self->i = 0; self->i < self->passes; self->i++)
        CORO_SLEEP(0);
    if (self->sem)
        coro_semaphore_release(self->sem);
    if (self->fail)
        CORO_RAISE(self->fail);
    CORO_RETURN(coro_int(self->id * 7));
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

/* ---- cond_body: async with cond: await cond.wait() (or wait_for) ---- */

struct cond_body {
    coro_frame co;
    coro_condition *cond;
    coro_predicate pred;
    void *parg;
    coro_condition_wait_op w;
    coro_condition_wait_for_op wf;
    tlog *log;
    int id, passes, i, err;
    int locked_after; /* the lock was held when the wait ended, even on error */
    int64_t value;
};

static CORO_FN(cond_body_step)
{
    struct cond_body *self = CORO_SELF(struct cond_body);
    CORO_BEGIN();
    if (self->pred)
        CORO_AWAIT_ERR(coro_condition_wait_for(&self->wf, self->cond, self->pred, self->parg),
                       self->err);
    else
        CORO_AWAIT_ERR(coro_condition_wait(&self->w, self->cond), self->err);
    self->locked_after = coro_lock_locked(coro_condition_lock(self->cond));
    if (self->err)
        CORO_RAISE(self->err);
    self->value = CORO_RESULT.u.i;
    tlog_add(self->log, self->id);
    for (self->i = 0; self->i < self->passes; self->i++)
        CORO_SLEEP(0);
    CORO_RETURN(coro_int(self->value));
    CORO_END();
}

/* ---- actor ---- */

struct actor {
    coro_frame co;
    int kind, id;
    tlog *log;
    coro_lock *lock;
    coro_event *ev;
    coro_semaphore *sem;
    coro_condition *cond;
    coro_barrier *bar;
    int hold;         /* passes to stay before releasing (A_LOCK, A_SEM) or returning
                         (A_EVENT, A_BARRIER); -1: return at once, keeping it */
    int passes, fail; /* for the body */
    coro_predicate pred;
    void *parg;
    union {
        coro_lock_acquire_op lock;
        coro_event_wait_op ev;
        coro_semaphore_acquire_op sem;
        coro_barrier_wait_op bar;
        coro_with_lock_op wl;
        coro_with_semaphore_op ws;
    } op;
    struct body body;
    struct cond_body cb;
    int i, err, fin, got;
    int64_t value;
};

static void body_init(struct body *b, struct actor *a)
{
    memset(b, 0, sizeof *b);
    coro_frame_init(&b->co, body_step);
    b->log = a->log;
    b->id = a->id;
    b->passes = a->passes;
    b->fail = a->fail;
    b->lock = a->lock;
}

static void cond_body_init(struct cond_body *b, struct actor *a)
{
    memset(b, 0, sizeof *b);
    coro_frame_init(&b->co, cond_body_step);
    b->cond = a->cond;
    b->pred = a->pred;
    b->parg = a->parg;
    b->log = a->log;
    b->id = a->id;
    b->passes = a->passes;
}

static CORO_FN(actor_step)
{
    struct actor *self = CORO_SELF(struct actor);
    CORO_BEGIN();
    if (self->kind == A_WITH_LOCK || self->kind == A_WITH_SEM)
        body_init(&self->body, self);
    if (self->kind == A_COND)
        cond_body_init(&self->cb, self);
    if (self->kind == A_LOCK)
        CORO_AWAIT_ERR(coro_lock_acquire(&self->op.lock, self->lock), self->err);
    else if (self->kind == A_EVENT)
        CORO_AWAIT_ERR(coro_event_wait(&self->op.ev, self->ev), self->err);
    else if (self->kind == A_SEM)
        CORO_AWAIT_ERR(coro_semaphore_acquire(&self->op.sem, self->sem), self->err);
    else if (self->kind == A_BARRIER)
        CORO_AWAIT_ERR(coro_barrier_wait(&self->op.bar, self->bar), self->err);
    else if (self->kind == A_WITH_LOCK)
        CORO_AWAIT_ERR(coro_with_lock(&self->op.wl, self->lock, &self->body.co), self->err);
    else if (self->kind == A_WITH_SEM)
        CORO_AWAIT_ERR(coro_with_semaphore(&self->op.ws, self->sem, &self->body.co), self->err);
    else
        CORO_AWAIT_ERR(coro_with_lock(&self->op.wl, coro_condition_lock(self->cond), &self->cb.co),
                       self->err);
    if (self->err) {
        tlog_add(self->log, -self->id);
        CORO_RAISE(self->err);
    }
    self->value = CORO_RESULT.u.i;
    self->got = 1;
    if (self->kind <= A_BARRIER)
        tlog_add(self->log, self->id);
    if (self->hold < 0 || self->kind > A_BARRIER)
        CORO_RETURN(coro_int(self->value));
    for (self->i = 0; self->i < self->hold; self->i++)
        CORO_SLEEP(0);
    if (self->kind == A_LOCK)
        assert_int_equal(coro_lock_release(self->lock), 0);
    if (self->kind == A_SEM)
        assert_int_equal(coro_semaphore_release(self->sem), 0);
    if (self->kind == A_LOCK || self->kind == A_SEM)
        tlog_add(self->log, 100 + self->id);
    CORO_RETURN(coro_int(self->value));
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

static struct actor *actor_init(struct actor *a, int kind, int id, tlog *log)
{
    memset(a, 0, sizeof *a);
    coro_frame_init(&a->co, actor_step);
    a->kind = kind;
    a->id = id;
    a->log = log;
    a->hold = -1;
    return a;
}

static void start(coro_loop *loop, coro_task *t, struct actor *a)
{
    assert_int_equal(coro_task_init(t, loop, &a->co), 0);
}

static int task_error(coro_task *t) { return coro_task_result(t, NULL); }

/* Run loop passes until `t` is done and return its error; a task still
 * pending after 100 passes fails the test (rather than hanging it). */
static int run_task(coro_loop *loop, coro_task *t)
{
    for (int i = 0; i < 100 && !coro_task_done(t); i++)
        run_one_pass(loop);
    assert_true(coro_task_done(t));
    return task_error(t);
}

/* Cancel what is left, let it finish, close: every test ends here. */
static void finish(coro_loop *loop, coro_task *tasks, int n)
{
    for (int i = 0; i < n; i++)
        coro_task_cancel(&tasks[i]);
    for (int i = 0; i < n; i++)
        run_task(loop, &tasks[i]);
    assert_int_equal(coro_loop_close(loop), 0);
}

/* Acquire from outside any task: a generator drives the frame, so the fast
 * path works and a wait is refused (a generator cannot await a future). */
static int lock_now(coro_lock *l)
{
    coro_lock_acquire_op op;
    coro_gen g;
    coro_value out = coro_none();
    assert_int_equal(coro_gen_init(&g, coro_lock_acquire(&op, l)), 0);
    int rc = coro_gen_next(&g, &out);
    if (rc == 0)
        assert_int_equal(out.u.i, 1);
    return rc;
}

static int sem_now(coro_semaphore *s)
{
    coro_semaphore_acquire_op op;
    coro_gen g;
    assert_int_equal(coro_gen_init(&g, coro_semaphore_acquire(&op, s)), 0);
    return coro_gen_next(&g, NULL);
}

/* ======================================================================== */
/* Lock (33)                                                                */
/* ======================================================================== */

static void test_lock_fifo(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    tlog log = { 0 };
    struct actor a[4];
    coro_task t[4];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(coro_lock_locked(&l), 0);
    assert_int_equal(lock_now(&l), 0);
    assert_int_equal(coro_lock_locked(&l), 1);
    for (int i = 0; i < 3; i++) {
        actor_init(&a[i], A_LOCK, i + 1, &log)->lock = &l;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(log.n, 0);
    assert_int_equal(coro_lock_release(&l), 0);
    assert_int_equal(coro_lock_locked(&l), 0); /* asyncio: until the waiter runs */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1);
    assert_int_equal(coro_lock_locked(&l), 1);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1); /* nobody else got in */

    /* a newcomer that runs before the woken waiter does not overtake it */
    actor_init(&a[3], A_LOCK, 4, &log)->lock = &l;
    start(&loop, &t[3], &a[3]);
    assert_int_equal(coro_lock_release(&l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2);
    assert_int_equal(coro_task_done(&t[3]), 0);
    assert_int_equal(coro_lock_release(&l), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_lock_release(&l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, 3, 4);
    for (int i = 0; i < 4; i++) {
        coro_value v;
        assert_int_equal(coro_task_result(&t[i], &v), 0);
        assert_int_equal(v.u.i, 1);
    }
    assert_null(l.waiters.list.first);

    /* the same when the woken waiter is the only one: the newcomer must not
     * take the lock it was released to (both would hold it) */
    log.n = 0;
    actor_init(&a[0], A_LOCK, 5, &log)->lock = &l;
    start(&loop, &t[0], &a[0]);
    run_one_pass(&loop);
    actor_init(&a[1], A_LOCK, 6, &log)->lock = &l;
    start(&loop, &t[1], &a[1]);
    assert_int_equal(coro_lock_release(&l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 5);
    assert_int_equal(coro_task_done(&t[1]), 0);
    assert_int_equal(coro_lock_release(&l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 5, 6);
    assert_int_equal(coro_lock_release(&l), 0);
    assert_int_equal(coro_lock_locked(&l), 0);
    finish(&loop, t, 4);
}

/* Holders that release after a pass: each gets in, in order, once. */
static void test_lock_fifo_with_holders(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    for (int i = 0; i < 3; i++) {
        actor_init(&a[i], A_LOCK, i + 1, &log)->lock = &l;
        a[i].hold = 2;
        start(&loop, &t[i], &a[i]);
    }
    assert_int_equal(run_task(&loop, &t[2]), 0);
    TLOG_EXPECT(&log, 1, 101, 2, 102, 3, 103);
    assert_int_equal(coro_lock_locked(&l), 0);
    finish(&loop, t, 3);
}

static void test_lock_release_unlocked(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(coro_lock_release(&l), CORO_ESTATE);
    assert_int_equal(lock_now(&l), 0);
    assert_int_equal(coro_lock_release(&l), 0);
    assert_int_equal(coro_lock_release(&l), CORO_ESTATE);
    assert_int_equal(coro_lock_locked(&l), 0);
    /* a generator cannot wait: refused, and the queue is left clean */
    assert_int_equal(lock_now(&l), 0);
    assert_int_equal(lock_now(&l), CORO_EINVAL);
    assert_null(l.waiters.list.first);
    assert_int_equal(coro_lock_locked(&l), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* Cancelled before it is woken: it leaves the queue, the others are served
 * in order (asyncio test_cancel_race / test_cancel_release_race). */
static void test_lock_cancel_before_woken(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(lock_now(&l), 0);
    for (int i = 0; i < 3; i++) {
        actor_init(&a[i], A_LOCK, i + 1, &log)->lock = &l;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_task_cancel(&t[1]), 1);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -2);
    assert_int_equal(task_error(&t[1]), CORO_ECANCELLED);
    assert_true(coro_task_cancelled(&t[1]));
    assert_int_equal(a[1].op.lock.w.q, NULL); /* left the queue */
    assert_int_equal(coro_lock_locked(&l), 1);
    /* cancel the first, then release, in one go: the third gets it */
    assert_int_equal(coro_task_cancel(&t[0]), 1);
    assert_int_equal(coro_lock_release(&l), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -2, -1, 3);
    assert_int_equal(coro_lock_locked(&l), 1);
    assert_null(l.waiters.list.first);
    finish(&loop, t, 3);
}

/* Woken, then cancelled in the same pass: the lock passes to the next
 * waiter (asyncio test_finished_waiter_cancelled); with no next waiter it
 * is free again. */
static void test_lock_cancel_when_woken(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(lock_now(&l), 0);
    for (int i = 0; i < 2; i++) {
        actor_init(&a[i], A_LOCK, i + 1, &log)->lock = &l;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_lock_release(&l), 0); /* wakes 1 */
    assert_int_equal(coro_task_cancel(&t[0]), 1);
    run_one_pass(&loop); /* 1 sees the cancel, hands over to 2 */
    TLOG_EXPECT(&log, -1);
    assert_int_equal(coro_lock_locked(&l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2);
    assert_int_equal(coro_lock_locked(&l), 1);
    assert_true(coro_task_cancelled(&t[0]));
    assert_int_equal(task_error(&t[1]), 0);

    /* alone: the lock is not lost */
    actor_init(&a[2], A_LOCK, 3, &log)->lock = &l;
    start(&loop, &t[2], &a[2]);
    run_one_pass(&loop);
    assert_int_equal(coro_lock_release(&l), 0);
    assert_int_equal(coro_task_cancel(&t[2]), 1);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2, -3);
    assert_int_equal(coro_lock_locked(&l), 0);
    assert_int_equal(lock_now(&l), 0); /* free: the fast path */
    assert_null(l.waiters.list.first);
    finish(&loop, t, 3);
}

/* ======================================================================== */
/* async with lock                                                          */
/* ======================================================================== */

static void test_with_lock_return_error_cancel(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    tlog log = { 0 };
    struct actor a[4];
    coro_task t[4];
    coro_value v;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    actor_init(&a[0], A_WITH_LOCK, 1, &log)->lock = &l;
    a[0].passes = 2; /* returns */
    actor_init(&a[1], A_WITH_LOCK, 2, &log)->lock = &l;
    a[1].passes = 1;
    a[1].fail = E1; /* fails */
    actor_init(&a[2], A_WITH_LOCK, 3, &log)->lock = &l;
    a[2].passes = 1000; /* cancelled inside the body */
    actor_init(&a[3], A_WITH_LOCK, 4, &log)->lock = &l;
    for (int i = 0; i < 4; i++)
        start(&loop, &t[i], &a[i]);
    assert_int_equal(run_task(&loop, &t[0]), 0);
    assert_int_equal(coro_task_result(&t[0], &v), 0);
    assert_int_equal(v.u.i, 7); /* the body's result */
    assert_int_equal(a[0].body.held_on_entry, 1);
    assert_int_equal(run_task(&loop, &t[1]), E1);
    assert_int_equal(a[1].body.fin, 1);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, -2, 3);
    assert_int_equal(coro_lock_locked(&l), 1); /* 3 is in its body */
    assert_int_equal(coro_task_cancel(&t[2]), 1);
    assert_int_equal(run_task(&loop, &t[3]), 0);
    TLOG_EXPECT(&log, 1, 2, -2, 3, -3, 4);
    assert_true(coro_task_cancelled(&t[2]));
    assert_int_equal(a[2].body.fin, 1);
    assert_int_equal(a[3].body.held_on_entry, 1);
    assert_int_equal(coro_lock_locked(&l), 0); /* every exit released it */
    finish(&loop, t, 4);
}

/* Cancelled while queued for the lock: the body never runs and the lock
 * (held by someone else) is not released by it. */
static void test_with_lock_cancel_while_queued(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    tlog log = { 0 };
    struct actor a[2];
    coro_task t[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(lock_now(&l), 0);
    actor_init(&a[0], A_WITH_LOCK, 1, &log)->lock = &l;
    actor_init(&a[1], A_WITH_LOCK, 2, &log)->lock = &l;
    start(&loop, &t[0], &a[0]);
    start(&loop, &t[1], &a[1]);
    run_one_pass(&loop);
    coro_task_cancel(&t[0]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1);
    assert_int_equal(a[0].body.fin, 0); /* never started */
    assert_int_equal(coro_lock_locked(&l), 1);
    assert_int_equal(coro_lock_release(&l), 0);
    assert_int_equal(run_task(&loop, &t[1]), 0);
    TLOG_EXPECT(&log, -1, 2);
    assert_int_equal(coro_lock_locked(&l), 0);
    finish(&loop, t, 2);
}

/* A body that releases the lock itself: the scoped release then fails
 * with CORO_ESTATE, replacing the outcome (asyncio's __aexit__ raises). */
struct releasing_body {
    coro_frame co;
    coro_lock *lock;
};

static CORO_FN(releasing_body_step)
{
    struct releasing_body *self = CORO_SELF(struct releasing_body);
    CORO_BEGIN();
    assert_int_equal(coro_lock_release(self->lock), 0);
    CORO_RETURN(coro_int(5));
    CORO_END();
}

struct with_null {
    coro_frame co;
    coro_lock *lock;
    coro_semaphore *sem;
    coro_with_lock_op wl;
    coro_with_semaphore_op ws;
    struct releasing_body rb;
    struct body body;
    tlog log;
    int e[6];
};

static CORO_FN(with_null_step)
{
    struct with_null *self = CORO_SELF(struct with_null);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_with_lock(&self->wl, self->lock, NULL), self->e[0]);
    CORO_AWAIT_ERR(coro_with_lock(&self->wl, NULL, &self->rb.co), self->e[1]);
    CORO_AWAIT_ERR(coro_with_semaphore(&self->ws, self->sem, NULL), self->e[2]);
    CORO_AWAIT_ERR(coro_with_semaphore(NULL, self->sem, &self->rb.co), self->e[3]);
    coro_frame_init(&self->rb.co, releasing_body_step);
    self->rb.lock = self->lock;
    CORO_AWAIT_ERR(coro_with_lock(&self->wl, self->lock, &self->rb.co), self->e[4]);
    memset(&self->body, 0, sizeof self->body);
    coro_frame_init(&self->body.co, body_step);
    self->body.log = &self->log;
    self->body.sem = self->sem; /* releases inside: the bounded sem refuses the 2nd */
    CORO_AWAIT_ERR(coro_with_semaphore(&self->ws, self->sem, &self->body.co), self->e[5]);
    CORO_END();
}

static void test_with_null_and_misuse(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock l;
    coro_semaphore s;
    coro_task t;
    struct with_null w;
    memset(&w, 0, sizeof w);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(coro_bsemaphore_init(&s, &loop, 1), 0);
    coro_frame_init(&w.co, with_null_step);
    w.lock = &l;
    w.sem = &s;
    assert_int_equal(coro_task_init(&t, &loop, &w.co), 0);
    assert_int_equal(run_task(&loop, &t), 0);
    assert_int_equal(w.e[0], CORO_EINVAL);
    assert_int_equal(w.e[1], CORO_EINVAL);
    assert_int_equal(w.e[2], CORO_EINVAL);
    assert_int_equal(w.e[3], CORO_EINVAL);
    assert_int_equal(w.e[4], CORO_ESTATE);
    assert_int_equal(w.e[5], CORO_EINVAL);
    assert_int_equal(coro_lock_locked(&l), 0);
    assert_int_equal(coro_semaphore_value(&s), 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ======================================================================== */
/* Event (34)                                                               */
/* ======================================================================== */

static void test_event_wait(void **state)
{
    (void)state;
    coro_loop loop;
    coro_event e;
    tlog log = { 0 };
    struct actor a[5];
    coro_task t[5];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_event_init(&e, &loop), 0);
    assert_int_equal(coro_event_is_set(&e), 0);
    for (int i = 0; i < 3; i++) {
        actor_init(&a[i], A_EVENT, i + 1, &log)->ev = &e;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(log.n, 0);
    assert_int_equal(coro_event_set(&e), 0);
    assert_int_equal(coro_event_is_set(&e), 1);
    assert_int_equal(coro_event_set(&e), 0); /* twice: nothing more */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, 3); /* every waiter, in order, in one pass */
    for (int i = 0; i < 3; i++) {
        coro_value v;
        assert_int_equal(coro_task_result(&t[i], &v), 0);
        assert_int_equal(v.u.i, 1);
    }
    /* set: a wait does not block */
    actor_init(&a[3], A_EVENT, 4, &log)->ev = &e;
    start(&loop, &t[3], &a[3]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, 3, 4);
    /* cleared: it blocks again; set then clear before it runs still wakes it */
    assert_int_equal(coro_event_clear(&e), 0);
    assert_int_equal(coro_event_is_set(&e), 0);
    actor_init(&a[4], A_EVENT, 5, &log)->ev = &e;
    start(&loop, &t[4], &a[4]);
    run_one_pass(&loop);
    assert_int_equal(coro_task_done(&t[4]), 0);
    assert_int_equal(coro_event_set(&e), 0);
    assert_int_equal(coro_event_clear(&e), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, 3, 4, 5);
    assert_int_equal(task_error(&t[4]), 0);
    assert_null(e.waiters.list.first);
    finish(&loop, t, 5);
}

static void test_event_cancel(void **state)
{
    (void)state;
    coro_loop loop;
    coro_event e;
    tlog log = { 0 };
    struct actor a[4];
    coro_task t[4];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_event_init(&e, &loop), 0);
    for (int i = 0; i < 4; i++) {
        actor_init(&a[i], A_EVENT, i + 1, &log)->ev = &e;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    coro_task_cancel(&t[1]); /* before the set */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -2);
    assert_null(a[1].op.ev.w.q);
    assert_int_equal(coro_event_set(&e), 0);
    coro_task_cancel(&t[2]); /* in the same pass as the set */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -2, 1, -3, 4);
    assert_true(coro_task_cancelled(&t[1]));
    assert_true(coro_task_cancelled(&t[2]));
    assert_int_equal(task_error(&t[0]), 0);
    assert_int_equal(task_error(&t[3]), 0);
    assert_null(e.waiters.list.first);
    finish(&loop, t, 4);
}

/* Cancelled after it resumed: the event is not touched, the others are
 * not disturbed. */
static void test_event_cancel_after_resumed(void **state)
{
    (void)state;
    coro_loop loop;
    coro_event e;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_event_init(&e, &loop), 0);
    for (int i = 0; i < 2; i++) {
        actor_init(&a[i], A_EVENT, i + 1, &log)->ev = &e;
        a[i].hold = 1000;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_event_set(&e), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2);
    coro_task_cancel(&t[0]);
    assert_int_equal(run_task(&loop, &t[0]), CORO_ECANCELLED);
    assert_int_equal(a[0].fin, 1);
    assert_false(coro_task_done(&t[1]));
    assert_int_equal(coro_event_is_set(&e), 1);
    actor_init(&a[2], A_EVENT, 3, &log)->ev = &e;
    start(&loop, &t[2], &a[2]);
    assert_int_equal(run_task(&loop, &t[2]), 0);
    TLOG_EXPECT(&log, 1, 2, 3);
    finish(&loop, t, 3);
}

/* ======================================================================== */
/* Semaphore (35)                                                           */
/* ======================================================================== */

/* asyncio test_acquire_fifo_order: acquire, hold, release, twice each. */
struct cycler {
    coro_frame co;
    coro_semaphore *sem;
    tlog *log;
    int id, round;
    coro_semaphore_acquire_op op;
};

static CORO_FN(cycler_step)
{
    struct cycler *self = CORO_SELF(struct cycler);
    CORO_BEGIN();
    for (self->round = 1; self->round <= 2; self->round++) {
        CORO_AWAIT(coro_semaphore_acquire(&self->op, self->sem));
        tlog_add(self->log, self->id * 10 + self->round);
        CORO_SLEEP(0);
        CORO_SLEEP(0);
        assert_int_equal(coro_semaphore_release(self->sem), 0);
    }
    CORO_END();
}

static void test_semaphore_fifo(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore s;
    tlog log = { 0 };
    struct cycler c[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 1), 0);
    for (int i = 0; i < 3; i++) {
        memset(&c[i], 0, sizeof c[i]);
        coro_frame_init(&c[i].co, cycler_step);
        c[i].sem = &s;
        c[i].log = &log;
        c[i].id = i + 1;
        assert_int_equal(coro_task_init(&t[i], &loop, &c[i].co), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(run_task(&loop, &t[i]), 0);
    TLOG_EXPECT(&log, 11, 21, 31, 12, 22, 32);
    assert_int_equal(coro_semaphore_value(&s), 1);
    finish(&loop, t, 3);
}

static void test_semaphore_values(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore s;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, -1), CORO_EINVAL);
    assert_int_equal(coro_bsemaphore_init(&s, &loop, -1), CORO_EINVAL);
    assert_int_equal(coro_semaphore_init(&s, &loop, 0), 0);
    assert_int_equal(coro_semaphore_locked(&s), 1);
    assert_int_equal(sem_now(&s), CORO_EINVAL); /* would wait: refused */
    assert_null(s.waiters.list.first);
    assert_int_equal(coro_semaphore_release(&s), 0); /* unbounded: fine */
    assert_int_equal(coro_semaphore_release(&s), 0);
    assert_int_equal(coro_semaphore_value(&s), 2);
    assert_int_equal(coro_semaphore_locked(&s), 0);
    assert_int_equal(sem_now(&s), 0);
    assert_int_equal(sem_now(&s), 0);
    assert_int_equal(coro_semaphore_locked(&s), 1);

    assert_int_equal(coro_bsemaphore_init(&s, &loop, 2), 0);
    assert_int_equal(coro_semaphore_release(&s), CORO_EINVAL); /* above 2 */
    assert_int_equal(sem_now(&s), 0);
    assert_int_equal(coro_semaphore_value(&s), 1);
    assert_int_equal(coro_semaphore_release(&s), 0);
    assert_int_equal(coro_semaphore_release(&s), CORO_EINVAL);
    assert_int_equal(coro_semaphore_value(&s), 2);

    assert_int_equal(coro_semaphore_init(&s, &loop, INT_MAX), 0);
    assert_int_equal(coro_semaphore_release(&s), CORO_EINVAL); /* overflow */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* asyncio test_acquire_hang / test_acquire_cancel_before_awoken: cancelled
 * waiters never eat a release. */
static void test_semaphore_cancel_before_woken(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore s;
    tlog log = { 0 };
    struct actor a[4];
    coro_task t[4];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 0), 0);
    for (int i = 0; i < 4; i++) {
        actor_init(&a[i], A_SEM, i + 1, &log)->sem = &s;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    coro_task_cancel(&t[0]);
    coro_task_cancel(&t[1]);
    assert_int_equal(coro_semaphore_release(&s), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, -2, 3);
    assert_true(coro_task_done(&t[2]));
    assert_false(coro_task_done(&t[3]));
    assert_int_equal(coro_semaphore_value(&s), 0);
    assert_int_equal(coro_semaphore_locked(&s), 1);
    assert_null(a[0].op.sem.w.q);
    assert_null(a[1].op.sem.w.q);
    finish(&loop, t, 4);
}

/* Woken (holding the permit) and cancelled in the same pass: the permit
 * goes to the next waiter, or back to the count. */
static void test_semaphore_cancel_when_woken(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore s;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 0), 0);
    for (int i = 0; i < 2; i++) {
        actor_init(&a[i], A_SEM, i + 1, &log)->sem = &s;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_semaphore_release(&s), 0); /* to 1 */
    assert_int_equal(coro_semaphore_value(&s), 0);
    coro_task_cancel(&t[0]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2);
    assert_true(coro_task_cancelled(&t[0]));
    assert_int_equal(coro_semaphore_value(&s), 0);

    actor_init(&a[2], A_SEM, 3, &log)->sem = &s;
    start(&loop, &t[2], &a[2]);
    run_one_pass(&loop);
    assert_int_equal(coro_semaphore_release(&s), 0);
    coro_task_cancel(&t[2]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2, -3);
    assert_int_equal(coro_semaphore_value(&s), 1); /* given back */
    assert_int_equal(coro_semaphore_locked(&s), 0);
    finish(&loop, t, 3);
}

/* A newcomer that runs while a woken waiter has not yet: it queues even
 * though a permit is free, and the woken one wakes it (asyncio 3.12). */
static void test_semaphore_newcomer_queues(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore s;
    tlog log = { 0 };
    struct actor a[2];
    coro_task t[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 0), 0);
    actor_init(&a[0], A_SEM, 1, &log)->sem = &s;
    start(&loop, &t[0], &a[0]);
    run_one_pass(&loop);
    actor_init(&a[1], A_SEM, 2, &log)->sem = &s;
    start(&loop, &t[1], &a[1]); /* its first step runs before 1's wakeup */
    assert_int_equal(coro_semaphore_release(&s), 0);
    assert_int_equal(coro_semaphore_release(&s), 0);
    assert_int_equal(coro_semaphore_value(&s), 1);
    assert_int_equal(coro_semaphore_locked(&s), 1); /* 1 is ahead */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1);
    assert_false(coro_task_done(&t[1]));
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2);
    assert_int_equal(coro_semaphore_value(&s), 0);
    finish(&loop, t, 2);
}

/* Two permits released at once to three waiters: the first two, in order. */
static void test_semaphore_several_permits(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore s;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 0), 0);
    for (int i = 0; i < 3; i++) {
        actor_init(&a[i], A_SEM, i + 1, &log)->sem = &s;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_semaphore_release(&s), 0);
    assert_int_equal(coro_semaphore_release(&s), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2);
    assert_false(coro_task_done(&t[2]));
    assert_int_equal(coro_semaphore_value(&s), 0);
    finish(&loop, t, 3);
}

/* asyncio test_acquire_no_hang: `async with sem` in two tasks; the first
 * releases (waking the second) and cancels it at once; the permit is not
 * lost. Also: the scoped form releases on return, error and cancel. */
struct no_hang {
    coro_frame co;
    coro_semaphore *sem;
    coro_task *other;
    coro_with_semaphore_op ws;
    struct body body;
    tlog *log;
};

static CORO_FN(no_hang_step)
{
    struct no_hang *self = CORO_SELF(struct no_hang);
    CORO_BEGIN();
    memset(&self->body, 0, sizeof self->body);
    coro_frame_init(&self->body.co, body_step);
    self->body.log = self->log;
    self->body.id = 1;
    self->body.passes = 1;
    CORO_AWAIT(coro_with_semaphore(&self->ws, self->sem, &self->body.co));
    coro_task_cancel(self->other);
    CORO_END();
}

static void test_with_semaphore(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore s;
    tlog log = { 0 };
    struct no_hang nh;
    struct actor a[4];
    coro_task t[5];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_bsemaphore_init(&s, &loop, 1), 0);
    memset(&nh, 0, sizeof nh);
    coro_frame_init(&nh.co, no_hang_step);
    nh.sem = &s;
    nh.other = &t[1];
    nh.log = &log;
    assert_int_equal(coro_task_init(&t[0], &loop, &nh.co), 0);
    actor_init(&a[0], A_WITH_SEM, 2, &log)->sem = &s;
    start(&loop, &t[1], &a[0]);
    assert_int_equal(run_task(&loop, &t[0]), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, -2);
    assert_true(coro_task_cancelled(&t[1]));
    assert_int_equal(a[0].body.fin, 0); /* the body never ran */
    assert_int_equal(coro_semaphore_value(&s), 1);

    /* return, error, cancel inside the body: the permit always comes back */
    log.n = 0;
    actor_init(&a[1], A_WITH_SEM, 3, &log)->sem = &s;
    a[1].passes = 1;
    actor_init(&a[2], A_WITH_SEM, 4, &log)->sem = &s;
    a[2].fail = E1;
    actor_init(&a[3], A_WITH_SEM, 5, &log)->sem = &s;
    a[3].passes = 1000;
    for (int i = 1; i < 4; i++)
        start(&loop, &t[i + 1], &a[i]);
    assert_int_equal(run_task(&loop, &t[2]), 0);
    assert_int_equal(run_task(&loop, &t[3]), E1);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 3, 4, -4, 5);
    assert_int_equal(coro_semaphore_value(&s), 0);
    coro_task_cancel(&t[4]);
    assert_int_equal(run_task(&loop, &t[4]), CORO_ECANCELLED);
    TLOG_EXPECT(&log, 3, 4, -4, 5, -5);
    assert_int_equal(a[3].body.fin, 1);
    assert_int_equal(coro_semaphore_value(&s), 1);
    finish(&loop, t, 5);
}

/* ======================================================================== */
/* Condition (36)                                                           */
/* ======================================================================== */

static void cond_waiters(coro_loop *loop, coro_condition *c, struct actor *a, coro_task *t, int n,
                         tlog *log)
{
    for (int i = 0; i < n; i++) {
        actor_init(&a[i], A_COND, i + 1, log)->cond = c;
        start(loop, &t[i], &a[i]);
    }
    run_one_pass(loop);
    assert_int_equal(log->n, 0);
    assert_int_equal(coro_lock_locked(coro_condition_lock(c)), 0); /* all waiting */
}

static void test_condition_notify(void **state)
{
    (void)state;
    coro_loop loop;
    coro_condition c;
    coro_lock *l;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    l = coro_condition_lock(&c);
    assert_non_null(l);
    cond_waiters(&loop, &c, a, t, 3, &log);

    assert_int_equal(lock_now(l), 0);
    assert_int_equal(coro_condition_notify(&c, 1), 1);
    run_one_pass(&loop);
    assert_int_equal(log.n, 0); /* notified, but the lock is still ours */
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1);
    assert_int_equal(a[0].cb.locked_after, 1);
    assert_int_equal(a[0].value, 1);

    assert_int_equal(lock_now(l), 0);
    assert_int_equal(coro_condition_notify(&c, 1), 1);
    assert_int_equal(coro_condition_notify(&c, 2048), 1);
    assert_int_equal(coro_condition_notify(&c, 1), 0); /* nobody left */
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, 3);
    assert_int_equal(coro_lock_locked(l), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(task_error(&t[i]), 0);
    assert_null(c.waiters.list.first);
    finish(&loop, t, 3);
}

static void test_condition_notify_all(void **state)
{
    (void)state;
    coro_loop loop;
    coro_condition c;
    coro_lock lock;
    tlog log = { 0 };
    struct actor a[4];
    coro_task t[4];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_lock_init(&lock, &loop), 0);
    assert_int_equal(coro_condition_init(&c, &loop, &lock), 0);
    assert_ptr_equal(coro_condition_lock(&c), &lock);
    cond_waiters(&loop, &c, a, t, 3, &log);
    assert_int_equal(lock_now(&lock), 0);
    assert_int_equal(coro_condition_notify(&c, 0), 0);
    assert_int_equal(coro_condition_notify(&c, -1), 0);
    assert_int_equal(coro_condition_notify_all(&c), 3);
    assert_int_equal(coro_lock_release(&lock), 0);
    for (int i = 0; i < 4; i++)
        run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2, 3);
    assert_int_equal(coro_lock_locked(&lock), 0);
    assert_int_equal(coro_condition_notify_all(&c), CORO_ESTATE);
    finish(&loop, t, 3);
}

/* Waiting or notifying without the lock is an error. */
struct bare_wait {
    coro_frame co;
    coro_condition *cond;
    coro_condition_wait_op op;
    int err;
};

static CORO_FN(bare_wait_step)
{
    struct bare_wait *self = CORO_SELF(struct bare_wait);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_condition_wait(&self->op, self->cond), self->err);
    CORO_END();
}

static void test_condition_needs_the_lock(void **state)
{
    (void)state;
    coro_loop loop, other;
    coro_condition c;
    coro_lock foreign;
    coro_task t;
    struct bare_wait b;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_init(&other, NULL), 0);
    assert_int_equal(coro_lock_init(&foreign, &other), 0);
    assert_int_equal(coro_condition_init(&c, &loop, &foreign), CORO_EINVAL);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    assert_int_equal(coro_condition_notify(&c, 1), CORO_ESTATE);
    assert_int_equal(coro_condition_notify_all(&c), CORO_ESTATE);
    memset(&b, 0, sizeof b);
    coro_frame_init(&b.co, bare_wait_step);
    b.cond = &c;
    assert_int_equal(coro_task_init(&t, &loop, &b.co), 0);
    assert_int_equal(run_task(&loop, &t), 0);
    assert_int_equal(b.err, CORO_ESTATE);
    assert_null(c.waiters.list.first);
    assert_int_equal(coro_loop_close(&other), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

struct counter {
    int value, target, calls;
};

static int reached(void *arg)
{
    struct counter *k = arg;
    k->calls++;
    return k->value >= k->target ? k->value : 0;
}

static void test_condition_wait_for(void **state)
{
    (void)state;
    coro_loop loop;
    coro_condition c;
    coro_lock *l;
    tlog log = { 0 };
    struct counter k = { 0, 2, 0 };
    struct actor a[2];
    coro_task t[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    l = coro_condition_lock(&c);
    actor_init(&a[0], A_COND, 1, &log)->cond = &c;
    a[0].pred = reached;
    a[0].parg = &k;
    start(&loop, &t[0], &a[0]);
    run_one_pass(&loop);
    assert_int_equal(k.calls, 1);
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(lock_now(l), 0);
        k.value = round;
        assert_int_equal(coro_condition_notify_all(&c), 1);
        assert_int_equal(coro_lock_release(l), 0);
        run_one_pass(&loop);
        run_one_pass(&loop);
    }
    TLOG_EXPECT(&log, 1);
    assert_int_equal(k.calls, 3);
    assert_int_equal(a[0].value, 2); /* the predicate's value */
    assert_int_equal(coro_lock_locked(l), 0);

    /* already true: no wait, no suspension */
    actor_init(&a[1], A_COND, 2, &log)->cond = &c;
    a[1].pred = reached;
    a[1].parg = &k;
    start(&loop, &t[1], &a[1]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, 2);
    assert_int_equal(k.calls, 4);
    finish(&loop, t, 2);
}

/* Cancelled before it is notified: it leaves the queue, takes the lock
 * back (waiting for it: the lock is held elsewhere), and only then fails;
 * a later notify goes to the next waiter. */
static void test_condition_cancel_before_notify(void **state)
{
    (void)state;
    coro_loop loop;
    coro_condition c;
    coro_lock *l;
    tlog log = { 0 };
    struct actor a[2];
    coro_task t[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    l = coro_condition_lock(&c);
    cond_waiters(&loop, &c, a, t, 2, &log);
    assert_int_equal(lock_now(l), 0);
    coro_task_cancel(&t[0]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_false(coro_task_done(&t[0])); /* waiting for the lock */
    assert_null(a[0].cb.w.w.q);
    assert_int_equal(log.n, 0);
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1);
    assert_true(coro_task_cancelled(&t[0]));
    assert_int_equal(a[0].cb.locked_after, 1); /* failed holding the lock */
    assert_int_equal(coro_lock_locked(l), 0);  /* and the scope released it */
    assert_int_equal(lock_now(l), 0);
    assert_int_equal(coro_condition_notify(&c, 1), 1); /* the second waiter */
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2);
    finish(&loop, t, 2);
}

/* Notified, then cancelled in the same pass: the notification passes to
 * the next waiter; the one after stays waiting. */
static void test_condition_cancel_when_notified(void **state)
{
    (void)state;
    coro_loop loop;
    coro_condition c;
    coro_lock *l;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    l = coro_condition_lock(&c);
    cond_waiters(&loop, &c, a, t, 3, &log);
    assert_int_equal(lock_now(l), 0);
    assert_int_equal(coro_condition_notify(&c, 1), 1);
    coro_task_cancel(&t[0]);
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2);
    assert_true(coro_task_cancelled(&t[0]));
    assert_int_equal(a[0].cb.locked_after, 1);
    assert_false(coro_task_done(&t[2]));
    assert_int_equal(coro_lock_locked(l), 0);
    assert_int_equal(lock_now(l), 0);
    assert_int_equal(coro_condition_notify_all(&c), 1);
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2, 3);
    finish(&loop, t, 3);
}

/* Notified, then cancelled while taking the lock back: the re-acquire is
 * retried (the cancel is kept and raised once the lock is held), and the
 * notification passes on. */
static void test_condition_cancel_while_reacquiring(void **state)
{
    (void)state;
    coro_loop loop;
    coro_condition c;
    coro_lock *l;
    tlog log = { 0 };
    struct actor a[2];
    coro_task t[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    l = coro_condition_lock(&c);
    cond_waiters(&loop, &c, a, t, 2, &log);
    assert_int_equal(lock_now(l), 0);
    assert_int_equal(coro_condition_notify(&c, 1), 1);
    run_one_pass(&loop); /* 1 wakes and queues for the lock */
    assert_non_null(a[0].cb.w.acq.w.q);
    coro_task_cancel(&t[0]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_false(coro_task_done(&t[0])); /* still after the lock */
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, 2);
    assert_true(coro_task_cancelled(&t[0]));
    assert_int_equal(a[0].cb.locked_after, 1);
    assert_int_equal(task_error(&t[1]), 0);
    assert_int_equal(coro_lock_locked(l), 0);
    finish(&loop, t, 2);
}

/* Cancelled after it resumed (inside `async with cond`, after the wait):
 * the lock is released and the next notified waiter gets it. */
static void test_condition_cancel_after_resumed(void **state)
{
    (void)state;
    coro_loop loop;
    coro_condition c;
    coro_lock *l;
    tlog log = { 0 };
    struct actor a[2];
    coro_task t[2];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    l = coro_condition_lock(&c);
    for (int i = 0; i < 2; i++) {
        actor_init(&a[i], A_COND, i + 1, &log)->cond = &c;
        a[i].passes = 1000;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(lock_now(l), 0);
    assert_int_equal(coro_condition_notify_all(&c), 2);
    assert_int_equal(coro_lock_release(l), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1); /* 1 holds the lock, 2 waits for it */
    coro_task_cancel(&t[0]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 1, -1, 2);
    assert_int_equal(coro_lock_locked(l), 1); /* 2's now */
    finish(&loop, t, 2);
    assert_int_equal(log.ev[log.n - 1], -2);
}

/* ======================================================================== */
/* Barrier                                                                  */
/* ======================================================================== */

static void test_barrier_wait(void **state)
{
    (void)state;
    coro_loop loop;
    coro_barrier b;
    tlog log = { 0 };
    struct actor a[6];
    coro_task t[6];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 3), 0);
    assert_int_equal(coro_barrier_parties(&b), 3);
    for (int round = 0; round < 2; round++) {
        struct actor *r = &a[round * 3];
        coro_task *rt = &t[round * 3];
        for (int i = 0; i < 3; i++) {
            actor_init(&r[i], A_BARRIER, round * 3 + i + 1, &log)->bar = &b;
            start(&loop, &rt[i], &r[i]);
            if (i < 2) {
                run_one_pass(&loop);
                assert_int_equal(coro_barrier_n_waiting(&b), i + 1);
            }
        }
        run_one_pass(&loop); /* the third fills it and goes on at once */
        assert_int_equal(log.n, round * 3 + 1);
        assert_int_equal(log.ev[log.n - 1], round * 3 + 3);
        assert_int_equal(coro_barrier_n_waiting(&b), 0); /* draining */
        run_one_pass(&loop);
        assert_int_equal(log.n, round * 3 + 3);
        assert_int_equal(r[0].value, 0); /* distinct: the arrival order */
        assert_int_equal(r[1].value, 1);
        assert_int_equal(r[2].value, 2);
        assert_int_equal(coro_barrier_n_waiting(&b), 0);
        assert_int_equal(b.count, 0);
    }
    TLOG_EXPECT(&log, 3, 1, 2, 6, 4, 5);
    assert_int_equal(coro_barrier_broken(&b), 0);
    finish(&loop, t, 6);
}

/* One party: wait returns 0 without suspending, again and again. */
struct solo {
    coro_frame co;
    coro_barrier *b;
    coro_barrier_wait_op op;
    int i;
    int64_t sum;
};

static CORO_FN(solo_step)
{
    struct solo *self = CORO_SELF(struct solo);
    CORO_BEGIN();
    for (self->i = 0; self->i < 3; self->i++) {
        CORO_AWAIT(coro_barrier_wait(&self->op, self->b));
        self->sum += CORO_RESULT.u.i + 1;
    }
    CORO_END();
}

/* A task that arrives while the last round drains waits for the next one. */
static void test_barrier_draining_blocks(void **state)
{
    (void)state;
    coro_loop loop;
    coro_barrier b;
    tlog log = { 0 };
    struct actor a[4];
    coro_task t[4];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 2), 0);
    actor_init(&a[0], A_BARRIER, 1, &log)->bar = &b;
    start(&loop, &t[0], &a[0]);
    run_one_pass(&loop);
    actor_init(&a[1], A_BARRIER, 2, &log)->bar = &b;
    actor_init(&a[2], A_BARRIER, 3, &log)->bar = &b;
    start(&loop, &t[1], &a[1]); /* fills it */
    start(&loop, &t[2], &a[2]); /* arrives while 1 has not left yet */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 2);
    assert_int_equal(coro_barrier_n_waiting(&b), 0);
    run_one_pass(&loop); /* 1 leaves: the barrier fills again; 3 is let in */
    TLOG_EXPECT(&log, 2, 1);
    run_one_pass(&loop);
    assert_int_equal(coro_barrier_n_waiting(&b), 1);
    actor_init(&a[3], A_BARRIER, 4, &log)->bar = &b;
    start(&loop, &t[3], &a[3]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 2, 1, 4, 3);
    assert_int_equal(a[2].value, 0);
    assert_int_equal(a[3].value, 1);

    struct solo s;
    coro_task st;
    memset(&s, 0, sizeof s);
    coro_frame_init(&s.co, solo_step);
    assert_int_equal(coro_barrier_init(&b, &loop, 1), 0);
    s.b = &b;
    assert_int_equal(coro_task_init(&st, &loop, &s.co), 0);
    run_one_pass(&loop);
    assert_true(coro_task_done(&st)); /* three waits in one step */
    assert_int_equal(s.sum, 3);
    finish(&loop, t, 4);
}

static void test_barrier_abort_reset(void **state)
{
    (void)state;
    coro_loop loop;
    coro_barrier b;
    tlog log = { 0 };
    struct actor a[8];
    coro_task t[8];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 0), CORO_EINVAL);
    assert_int_equal(coro_barrier_init(&b, &loop, 3), 0);
    for (int i = 0; i < 2; i++) {
        actor_init(&a[i], A_BARRIER, i + 1, &log)->bar = &b;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_barrier_n_waiting(&b), 2);
    assert_int_equal(coro_barrier_abort(&b), 0);
    assert_int_equal(coro_barrier_broken(&b), 1);
    assert_int_equal(coro_barrier_n_waiting(&b), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, -2);
    assert_int_equal(task_error(&t[0]), CORO_EBROKEN);
    assert_int_equal(task_error(&t[1]), CORO_EBROKEN);
    /* broken: a new wait fails at once */
    actor_init(&a[2], A_BARRIER, 3, &log)->bar = &b;
    start(&loop, &t[2], &a[2]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -1, -2, -3);
    assert_int_equal(task_error(&t[2]), CORO_EBROKEN);
    /* reset with nobody inside: usable again */
    assert_int_equal(coro_barrier_reset(&b), 0);
    assert_int_equal(coro_barrier_broken(&b), 0);
    log.n = 0;
    for (int i = 3; i < 5; i++) {
        actor_init(&a[i], A_BARRIER, i + 1, &log)->bar = &b;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_barrier_n_waiting(&b), 2);
    /* reset with two inside: they fail, then it fills from empty; one that
     * arrives while they leave waits for the reset to end */
    actor_init(&a[5], A_BARRIER, 6, &log)->bar = &b;
    start(&loop, &t[5], &a[5]); /* runs before they wake */
    assert_int_equal(coro_barrier_reset(&b), 0);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -4, -5);
    assert_false(coro_task_done(&t[5])); /* it was blocked: not counted yet */
    assert_int_equal(b.count, 0);
    assert_int_equal(coro_barrier_n_waiting(&b), 0);
    assert_int_equal(task_error(&t[3]), CORO_EBROKEN);
    assert_int_equal(coro_barrier_broken(&b), 0);
    run_one_pass(&loop);
    assert_int_equal(coro_barrier_n_waiting(&b), 1);
    for (int i = 6; i < 8; i++) {
        actor_init(&a[i], A_BARRIER, i + 1, &log)->bar = &b;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -4, -5, 8, 6, 7);
    assert_int_equal(a[5].value, 0);
    assert_int_equal(a[6].value, 1);
    assert_int_equal(a[7].value, 2);
    finish(&loop, t, 8);
}

/* Cancelled while the barrier fills: the task leaves, the barrier is not
 * broken and needs one more arrival. Cancelled in the pass the barrier
 * fills: that task fails, the others get their indices, the barrier fills
 * again afterwards. Cancelled while blocked by a draining round: leaves
 * without a trace. */
static void test_barrier_cancel(void **state)
{
    (void)state;
    coro_loop loop;
    coro_barrier b;
    tlog log = { 0 };
    struct actor a[7];
    coro_task t[7];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 3), 0);
    for (int i = 0; i < 3; i++) {
        actor_init(&a[i], A_BARRIER, i + 1, &log)->bar = &b;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_barrier_n_waiting(&b), 0); /* filled: draining */
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 3, 1, 2);
    log.n = 0;

    /* while filling */
    for (int i = 3; i < 5; i++) {
        actor_init(&a[i], A_BARRIER, i + 1, &log)->bar = &b;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    assert_int_equal(coro_barrier_n_waiting(&b), 2);
    coro_task_cancel(&t[3]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -4);
    assert_true(coro_task_cancelled(&t[3]));
    assert_int_equal(coro_barrier_n_waiting(&b), 1);
    assert_int_equal(coro_barrier_broken(&b), 0);

    /* in the pass it fills: 7 fills it (6 joins first), 5 is cancelled */
    actor_init(&a[5], A_BARRIER, 6, &log)->bar = &b;
    start(&loop, &t[5], &a[5]);
    run_one_pass(&loop);
    actor_init(&a[6], A_BARRIER, 7, &log)->bar = &b;
    start(&loop, &t[6], &a[6]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -4, 7);
    coro_task_cancel(&t[4]);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, -4, 7, -5, 6);
    assert_true(coro_task_cancelled(&t[4]));
    assert_int_equal(a[5].value, 1);
    assert_int_equal(a[6].value, 2);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.state, 0); /* filling */
    assert_null(b.waiters.list.first);
    finish(&loop, t, 7);
}

static void test_barrier_cancel_while_blocked(void **state)
{
    (void)state;
    coro_loop loop;
    coro_barrier b;
    tlog log = { 0 };
    struct actor a[3];
    coro_task t[3];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 2), 0);
    actor_init(&a[0], A_BARRIER, 1, &log)->bar = &b;
    start(&loop, &t[0], &a[0]);
    run_one_pass(&loop);
    actor_init(&a[1], A_BARRIER, 2, &log)->bar = &b;
    actor_init(&a[2], A_BARRIER, 3, &log)->bar = &b;
    start(&loop, &t[1], &a[1]);
    start(&loop, &t[2], &a[2]); /* blocked by the draining round */
    run_one_pass(&loop);
    assert_non_null(a[2].op.bar.w.q);
    coro_task_cancel(&t[2]);
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 2, 1, -3);
    assert_true(coro_task_cancelled(&t[2]));
    assert_int_equal(b.count, 0);
    assert_int_equal(coro_barrier_n_waiting(&b), 0);
    assert_null(b.waiters.list.first);
    finish(&loop, t, 3);
}

/* Cancelled after it passed the barrier: the barrier does not notice. */
static void test_barrier_cancel_after_resumed(void **state)
{
    (void)state;
    coro_loop loop;
    coro_barrier b;
    tlog log = { 0 };
    struct actor a[4];
    coro_task t[4];
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 2), 0);
    for (int i = 0; i < 2; i++) {
        actor_init(&a[i], A_BARRIER, i + 1, &log)->bar = &b;
        a[i].hold = 1000;
        start(&loop, &t[i], &a[i]);
    }
    run_one_pass(&loop);
    run_one_pass(&loop);
    TLOG_EXPECT(&log, 2, 1);
    coro_task_cancel(&t[0]);
    assert_int_equal(run_task(&loop, &t[0]), CORO_ECANCELLED);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.state, 0); /* filling */
    for (int i = 2; i < 4; i++) {
        actor_init(&a[i], A_BARRIER, i + 1, &log)->bar = &b;
        start(&loop, &t[i], &a[i]);
    }
    assert_int_equal(run_task(&loop, &t[2]), 0);
    TLOG_EXPECT(&log, 2, 1, 4, 3);
    assert_int_equal(a[2].value, 0);
    assert_int_equal(a[3].value, 1);
    finish(&loop, t, 4);
}

/* ======================================================================== */
/* Fast paths, allocation, NULL                                             */
/* ======================================================================== */

static int set_flag(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

struct fast {
    coro_frame co;
    coro_lock *lock;
    coro_event *ev;
    coro_semaphore *sem;
    coro_condition *cond;
    coro_barrier *bar;
    struct counter *k;
    int *flag;
    int flag_seen;
    union {
        coro_lock_acquire_op l;
        coro_event_wait_op e;
        coro_semaphore_acquire_op s;
        coro_condition_wait_for_op c;
        coro_barrier_wait_op b;
    } op;
};

static CORO_FN(fast_step)
{
    struct fast *self = CORO_SELF(struct fast);
    CORO_BEGIN();
    CORO_AWAIT(coro_lock_acquire(&self->op.l, self->lock));
    CORO_AWAIT(coro_event_wait(&self->op.e, self->ev));
    CORO_AWAIT(coro_semaphore_acquire(&self->op.s, self->sem));
    CORO_AWAIT(coro_semaphore_acquire(&self->op.s, self->sem));
    CORO_AWAIT(coro_condition_wait_for(&self->op.c, self->cond, reached, self->k));
    CORO_AWAIT(coro_barrier_wait(&self->op.b, self->bar));
    self->flag_seen = *self->flag; /* still 0: we never left this step */
    CORO_END();
}

static void test_fast_paths_do_not_suspend(void **state)
{
    (void)state;
    talloc ta = { 0 };
    coro_loop_options o = talloc_options(&ta);
    coro_loop loop;
    coro_lock l;
    coro_event e;
    coro_semaphore s;
    coro_condition c;
    coro_barrier b;
    struct counter k = { 1, 1, 0 };
    struct fast f;
    coro_task t;
    int flag = 0;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    run_one_pass(&loop); /* warm the selector up */
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(coro_event_init(&e, &loop), 0);
    assert_int_equal(coro_event_set(&e), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 2), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 1), 0);
    memset(&f, 0, sizeof f);
    coro_frame_init(&f.co, fast_step);
    f.lock = &l;
    f.ev = &e;
    f.sem = &s;
    f.cond = &c;
    f.bar = &b;
    f.k = &k;
    f.flag = &flag;
    f.flag_seen = -1;
    assert_int_equal(coro_task_init(&t, &loop, &f.co), 0);
    coro_handle h;
    coro_handle_init(&h);
    assert_int_equal(coro_call_soon(&loop, &h, set_flag, &flag), 0); /* runs after the step */
    long calls = ta.calls;
    run_one_pass(&loop);
    assert_true(coro_task_done(&t));
    assert_int_equal(task_error(&t), 0);
    assert_int_equal(f.flag_seen, 0);
    assert_int_equal(flag, 1);
    assert_int_equal(coro_lock_locked(&l), 1);
    assert_int_equal(coro_semaphore_value(&s), 0);
    assert_int_equal(ta.calls, calls); /* nothing allocated */
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
}

/* Contention on every primitive, to completion, allocates nothing. */
static void test_waiting_allocates_nothing(void **state)
{
    (void)state;
    talloc ta = { 0 };
    coro_loop_options o = talloc_options(&ta);
    coro_loop loop;
    coro_lock l;
    coro_event e;
    coro_semaphore s;
    coro_condition c;
    coro_barrier b;
    tlog log = { 0 };
    struct actor a[12];
    coro_task t[12];
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    run_one_pass(&loop); /* warm the selector up */
    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(coro_event_init(&e, &loop), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 1), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 3), 0);
    for (int i = 0; i < 3; i++) {
        actor_init(&a[i], A_WITH_LOCK, 1 + i, &log)->lock = &l;
        a[i].passes = 1;
        actor_init(&a[3 + i], A_WITH_SEM, 11 + i, &log)->sem = &s;
        a[3 + i].passes = 1;
        actor_init(&a[6 + i], A_EVENT, 21 + i, &log)->ev = &e;
        actor_init(&a[9 + i], A_BARRIER, 31 + i, &log)->bar = &b;
    }
    for (int i = 0; i < 12; i++)
        start(&loop, &t[i], &a[i]);
    long calls = ta.calls;
    for (int i = 0; i < 6; i++)
        run_one_pass(&loop);
    assert_int_equal(coro_event_set(&e), 0);
    for (int i = 0; i < 12; i++)
        assert_int_equal(run_task(&loop, &t[i]), 0);
    assert_int_equal(log.n, 12);
    assert_int_equal(ta.calls, calls);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(ta.live, 0);
}

static void test_null_arguments(void **state)
{
    (void)state;
    coro_loop loop, closed;
    coro_lock l;
    coro_event e;
    coro_semaphore s;
    coro_condition c;
    coro_barrier b;
    coro_lock_acquire_op lo;
    coro_event_wait_op eo;
    coro_semaphore_acquire_op so;
    coro_condition_wait_op co;
    coro_condition_wait_for_op cfo;
    coro_barrier_wait_op bo;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_init(&closed, NULL), 0);
    assert_int_equal(coro_loop_close(&closed), 0);

    assert_int_equal(coro_lock_init(NULL, &loop), CORO_EINVAL);
    assert_int_equal(coro_lock_init(&l, NULL), CORO_EINVAL);
    assert_int_equal(coro_lock_init(&l, &closed), CORO_ECLOSED);
    assert_int_equal(coro_event_init(NULL, &loop), CORO_EINVAL);
    assert_int_equal(coro_event_init(&e, NULL), CORO_EINVAL);
    assert_int_equal(coro_event_init(&e, &closed), CORO_ECLOSED);
    assert_int_equal(coro_semaphore_init(NULL, &loop, 1), CORO_EINVAL);
    assert_int_equal(coro_semaphore_init(&s, NULL, 1), CORO_EINVAL);
    assert_int_equal(coro_semaphore_init(&s, &closed, 1), CORO_ECLOSED);
    assert_int_equal(coro_bsemaphore_init(NULL, &loop, 1), CORO_EINVAL);
    assert_int_equal(coro_condition_init(NULL, &loop, NULL), CORO_EINVAL);
    assert_int_equal(coro_condition_init(&c, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_condition_init(&c, &closed, NULL), CORO_ECLOSED);
    assert_int_equal(coro_barrier_init(NULL, &loop, 1), CORO_EINVAL);
    assert_int_equal(coro_barrier_init(&b, NULL, 1), CORO_EINVAL);
    assert_int_equal(coro_barrier_init(&b, &closed, 1), CORO_ECLOSED);

    assert_int_equal(coro_lock_locked(NULL), 0);
    assert_int_equal(coro_lock_release(NULL), CORO_EINVAL);
    assert_int_equal(coro_event_set(NULL), CORO_EINVAL);
    assert_int_equal(coro_event_clear(NULL), CORO_EINVAL);
    assert_int_equal(coro_event_is_set(NULL), 0);
    assert_null(coro_condition_lock(NULL));
    assert_int_equal(coro_condition_notify(NULL, 1), CORO_EINVAL);
    assert_int_equal(coro_condition_notify_all(NULL), CORO_EINVAL);
    assert_int_equal(coro_semaphore_locked(NULL), 0);
    assert_int_equal(coro_semaphore_value(NULL), 0);
    assert_int_equal(coro_semaphore_release(NULL), CORO_EINVAL);
    assert_int_equal(coro_barrier_abort(NULL), CORO_EINVAL);
    assert_int_equal(coro_barrier_reset(NULL), CORO_EINVAL);
    assert_int_equal(coro_barrier_parties(NULL), 0);
    assert_int_equal(coro_barrier_n_waiting(NULL), 0);
    assert_int_equal(coro_barrier_broken(NULL), 0);

    assert_int_equal(coro_lock_init(&l, &loop), 0);
    assert_int_equal(coro_event_init(&e, &loop), 0);
    assert_int_equal(coro_semaphore_init(&s, &loop, 1), 0);
    assert_int_equal(coro_condition_init(&c, &loop, NULL), 0);
    assert_int_equal(coro_barrier_init(&b, &loop, 1), 0);
    assert_null(coro_lock_acquire(NULL, &l));
    assert_null(coro_lock_acquire(&lo, NULL));
    assert_null(coro_event_wait(NULL, &e));
    assert_null(coro_event_wait(&eo, NULL));
    assert_null(coro_semaphore_acquire(NULL, &s));
    assert_null(coro_semaphore_acquire(&so, NULL));
    assert_null(coro_condition_wait(NULL, &c));
    assert_null(coro_condition_wait(&co, NULL));
    assert_null(coro_condition_wait_for(NULL, &c, reached, NULL));
    assert_null(coro_condition_wait_for(&cfo, NULL, reached, NULL));
    assert_null(coro_condition_wait_for(&cfo, &c, NULL, NULL));
    assert_null(coro_barrier_wait(NULL, &b));
    assert_null(coro_barrier_wait(&bo, NULL));
    assert_non_null(coro_lock_acquire(&lo, &l));

    /* awaiting the NULL an init returned fails with CORO_EINVAL */
    struct actor a;
    coro_task t;
    tlog log = { 0 };
    actor_init(&a, A_LOCK, 1, &log)->lock = NULL;
    start(&loop, &t, &a);
    assert_int_equal(run_task(&loop, &t), CORO_EINVAL);
    TLOG_EXPECT(&log, -1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* A primitive belongs to its loop: a task of another loop cannot wait on
 * it (asyncio: "bound to a different event loop"), and leaves no trace. */
static void test_other_loop(void **state)
{
    (void)state;
    coro_loop a_loop, b_loop;
    coro_lock l;
    tlog log = { 0 };
    struct actor a;
    coro_task t;
    assert_int_equal(coro_loop_init(&a_loop, NULL), 0);
    assert_int_equal(coro_loop_init(&b_loop, NULL), 0);
    assert_int_equal(coro_lock_init(&l, &a_loop), 0);
    assert_int_equal(lock_now(&l), 0);
    actor_init(&a, A_LOCK, 1, &log)->lock = &l;
    start(&b_loop, &t, &a);
    assert_int_equal(run_task(&b_loop, &t), CORO_EINVAL);
    TLOG_EXPECT(&log, -1);
    assert_null(l.waiters.list.first);
    assert_int_equal(coro_lock_locked(&l), 1);
    assert_int_equal(coro_loop_close(&b_loop), 0);
    assert_int_equal(coro_loop_close(&a_loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_fifo),
        cmocka_unit_test(test_lock_fifo_with_holders),
        cmocka_unit_test(test_lock_release_unlocked),
        cmocka_unit_test(test_lock_cancel_before_woken),
        cmocka_unit_test(test_lock_cancel_when_woken),
        cmocka_unit_test(test_with_lock_return_error_cancel),
        cmocka_unit_test(test_with_lock_cancel_while_queued),
        cmocka_unit_test(test_with_null_and_misuse),
        cmocka_unit_test(test_event_wait),
        cmocka_unit_test(test_event_cancel),
        cmocka_unit_test(test_event_cancel_after_resumed),
        cmocka_unit_test(test_semaphore_fifo),
        cmocka_unit_test(test_semaphore_values),
        cmocka_unit_test(test_semaphore_cancel_before_woken),
        cmocka_unit_test(test_semaphore_cancel_when_woken),
        cmocka_unit_test(test_semaphore_newcomer_queues),
        cmocka_unit_test(test_semaphore_several_permits),
        cmocka_unit_test(test_with_semaphore),
        cmocka_unit_test(test_condition_notify),
        cmocka_unit_test(test_condition_notify_all),
        cmocka_unit_test(test_condition_needs_the_lock),
        cmocka_unit_test(test_condition_wait_for),
        cmocka_unit_test(test_condition_cancel_before_notify),
        cmocka_unit_test(test_condition_cancel_when_notified),
        cmocka_unit_test(test_condition_cancel_while_reacquiring),
        cmocka_unit_test(test_condition_cancel_after_resumed),
        cmocka_unit_test(test_barrier_wait),
        cmocka_unit_test(test_barrier_draining_blocks),
        cmocka_unit_test(test_barrier_abort_reset),
        cmocka_unit_test(test_barrier_cancel),
        cmocka_unit_test(test_barrier_cancel_while_blocked),
        cmocka_unit_test(test_barrier_cancel_after_resumed),
        cmocka_unit_test(test_fast_paths_do_not_suspend),
        cmocka_unit_test(test_waiting_allocates_nothing),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_other_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
